/*
 * Fuzzes the date parsers and formatters. Oracles:
 *  - each parser (RFC 5322, IMAP date-time, IMAP search day): an accepted
 *    input formats (RFC 5322 or IMAP form) and parses back to the same
 *    instant and zone;
 *  - the first 12 bytes as an instant and a zone: if formatting accepts
 *    them, both forms parse back to them (RFC 5322 only from 1900 on, the
 *    first year it allows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproto/mailproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*parse_fn)(const char *, size_t, mailproto_datetime *);
typedef int (*format_fn)(const mailproto_datetime *, char *, size_t);

#define Y1900 INT64_C(-2208988800)

static void require(int ok) {
  if (!ok)
    abort();
}

static int same(const mailproto_datetime *a, const mailproto_datetime *b) {
  return a->utc == b->utc && a->tz_minutes == b->tz_minutes;
}

/* Formats dt and parses the text back; returns the parse result. */
static int reparse(const mailproto_datetime *dt, format_fn format,
                   parse_fn parse) {
  char buf[MAILPROTO_DATE_BUFSIZE];
  int n = format(dt, buf, sizeof buf);
  require(n > 0 && (size_t)n < sizeof buf && buf[n] == '\0');
  /* Exactly n + 1 bytes are needed. */
  char exact[MAILPROTO_DATE_BUFSIZE];
  require(format(dt, exact, (size_t)n) == MAILPROTO_ERR_BUFFER_FULL);
  require(format(dt, exact, (size_t)n + 1) == n);
  require(memcmp(exact, buf, (size_t)n + 1) == 0);
  mailproto_datetime back;
  int rc = parse(buf, (size_t)n, &back);
  if (rc == 0)
    require(same(&back, dt));
  return rc;
}

/* `format` and `reparser` are the form and parser the result goes back
 * through (an IMAP search day comes back as an IMAP date-time). */
static void check_parser(parse_fn parse, format_fn format, parse_fn reparser,
                         const uint8_t *data, size_t size) {
  mailproto_datetime dt;
  int rc = parse((const char *)data, size, &dt);
  require(rc == 0 || rc == MAILPROTO_ERR_SYNTAX);
  if (rc != 0)
    return;
  require(dt.tz_minutes >= -1439 && dt.tz_minutes <= 1439);
  /* Both forms print what any parser accepted... */
  char buf[MAILPROTO_DATE_BUFSIZE];
  require(mailproto_date_format_imap(&dt, buf, sizeof buf) > 0);
  require(mailproto_date_format_rfc5322(&dt, buf, sizeof buf) > 0);
  /* ...and the matching parser reads it back. */
  require(reparse(&dt, format, reparser) == 0);
}

static void check_formatters(const uint8_t *data, size_t size) {
  if (size < 12)
    return;
  uint64_t u = 0;
  uint32_t z = 0;
  for (int i = 0; i < 8; i++)
    u = u << 8 | data[i];
  for (int i = 8; i < 12; i++)
    z = z << 8 | data[i];
  mailproto_datetime dt;
  dt.utc = (int64_t)u;
  /* Mostly valid zones, sometimes anything. */
  dt.tz_minutes = (data[11] & 1) ? (int32_t)z : (int32_t)(z % 2879) - 1439;
  char buf[MAILPROTO_DATE_BUFSIZE];
  int n = mailproto_date_format_imap(&dt, buf, sizeof buf);
  int m = mailproto_date_format_rfc5322(&dt, buf, sizeof buf);
  require(n == m - 5 || (n == MAILPROTO_ERR_INVALID_ARGUMENT && n == m));
  if (n < 0)
    return;
  require(reparse(&dt, mailproto_date_format_imap, mailproto_date_parse_imap) ==
          0);
  int rc =
      reparse(&dt, mailproto_date_format_rfc5322, mailproto_date_parse_rfc5322);
  int64_t local = dt.utc + (int64_t)dt.tz_minutes * 60;
  require(local >= Y1900 ? rc == 0 : rc == MAILPROTO_ERR_SYNTAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16)
    return 0;
  check_parser(mailproto_date_parse_rfc5322, mailproto_date_format_rfc5322,
               mailproto_date_parse_rfc5322, data, size);
  check_parser(mailproto_date_parse_imap, mailproto_date_format_imap,
               mailproto_date_parse_imap, data, size);
  check_parser(mailproto_date_parse_imap_day, mailproto_date_format_imap,
               mailproto_date_parse_imap, data, size);
  check_formatters(data, size);
  return 0;
}
