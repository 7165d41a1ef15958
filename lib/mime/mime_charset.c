/*
 * The charsets mail is written in most, converted to UTF-8 with tables in
 * this file (the library uses libc only, so no iconv): UTF-8 itself
 * (checked), US-ASCII, ISO-8859-1, Windows-1252 and ISO-8859-15.
 */
#include <string.h>

#include "core/utf8.h"
#include "mime/mime_codec.h"
#include "mime/mime_header.h"

static const struct {
  const char *name;
  mailproto_mime_charset cs;
} names[] = {
    {"utf-8", MAILPROTO_MIME_CHARSET_UTF8},
    {"utf8", MAILPROTO_MIME_CHARSET_UTF8},
    {"us-ascii", MAILPROTO_MIME_CHARSET_ASCII},
    {"ascii", MAILPROTO_MIME_CHARSET_ASCII},
    {"us", MAILPROTO_MIME_CHARSET_ASCII},
    {"ansi_x3.4-1968", MAILPROTO_MIME_CHARSET_ASCII},
    {"iso646-us", MAILPROTO_MIME_CHARSET_ASCII},
    {"iso-8859-1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"iso8859-1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"iso_8859-1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"latin1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"latin-1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"l1", MAILPROTO_MIME_CHARSET_LATIN1},
    {"iso-ir-100", MAILPROTO_MIME_CHARSET_LATIN1},
    {"cp819", MAILPROTO_MIME_CHARSET_LATIN1},
    {"windows-1252", MAILPROTO_MIME_CHARSET_CP1252},
    {"cp1252", MAILPROTO_MIME_CHARSET_CP1252},
    {"x-cp1252", MAILPROTO_MIME_CHARSET_CP1252},
    {"iso-8859-15", MAILPROTO_MIME_CHARSET_LATIN9},
    {"iso8859-15", MAILPROTO_MIME_CHARSET_LATIN9},
    {"iso_8859-15", MAILPROTO_MIME_CHARSET_LATIN9},
    {"latin-9", MAILPROTO_MIME_CHARSET_LATIN9},
    {"latin9", MAILPROTO_MIME_CHARSET_LATIN9},
    {"l9", MAILPROTO_MIME_CHARSET_LATIN9},
};

mailproto_mime_charset mailproto_mime_charset_lookup(const uint8_t *name,
                                                     size_t len) {
  /* RFC 2231 5: "charset*language" */
  const uint8_t *star = name ? memchr(name, '*', len) : NULL;
  if (star)
    len = (size_t)(star - name);
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (mailproto_mime_span_is(name, len, names[i].name))
      return names[i].cs;
  return MAILPROTO_MIME_CHARSET_UNKNOWN;
}

/* Windows-1252 0x80..0x9F (the five unassigned positions keep their
 * ISO-8859-1 C1 code points, as Windows itself maps them). */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0x0081, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
    0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008D, 0x017D, 0x008F,
    0x0090, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
    0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x009D, 0x017E, 0x0178};

static uint32_t latin9(uint8_t c) {
  switch (c) {
  case 0xA4:
    return 0x20AC;
  case 0xA6:
    return 0x0160;
  case 0xA8:
    return 0x0161;
  case 0xB4:
    return 0x017D;
  case 0xB8:
    return 0x017E;
  case 0xBC:
    return 0x0152;
  case 0xBD:
    return 0x0153;
  case 0xBE:
    return 0x0178;
  default:
    return c;
  }
}

/* The code point of an 8-bit byte in a single-byte charset (U+FFFD for
 * US-ASCII, where no 8-bit byte is valid). */
static uint32_t single_byte(mailproto_mime_charset cs, uint8_t c) {
  switch (cs) {
  case MAILPROTO_MIME_CHARSET_LATIN1:
    return c;
  case MAILPROTO_MIME_CHARSET_CP1252:
    return c < 0xA0 ? cp1252_high[c - 0x80] : c;
  case MAILPROTO_MIME_CHARSET_LATIN9:
    return latin9(c);
  default:
    return 0xFFFD;
  }
}

void mailproto_mime_to_utf8_init(mailproto_mime_to_utf8 *c,
                                 mailproto_mime_charset cs,
                                 mailproto_mime_out_fn out, void *arg) {
  c->cs = cs;
  c->out = out;
  c->arg = arg;
}

int mailproto_mime_to_utf8_feed(void *conv, const uint8_t *in, size_t len) {
  mailproto_mime_to_utf8 *c = conv;
  if (c->cs == MAILPROTO_MIME_CHARSET_UTF8 ||
      c->cs == MAILPROTO_MIME_CHARSET_UNKNOWN)
    return len ? c->out(c->arg, in, len) : 0;
  uint8_t buf[1024];
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (n + 4 > sizeof buf) {
      int rc = c->out(c->arg, buf, n);
      if (rc)
        return rc;
      n = 0;
    }
    if (in[i] < 0x80)
      buf[n++] = in[i];
    else
      n += mailproto_utf8_encode(buf + n, single_byte(c->cs, in[i]));
  }
  return n ? c->out(c->arg, buf, n) : 0;
}

int mailproto_mime_charset_to_utf8(mailproto_mime_charset cs, const uint8_t *in,
                                   size_t len, mailproto_buf *out) {
  if (cs == MAILPROTO_MIME_CHARSET_UNKNOWN)
    return mailproto_buf_append(out, in, len);
  size_t mark = out->len;
  size_t i = 0;
  int rc = 0;
  while (i < len && rc == 0) {
    /* ASCII runs are copied as they are */
    size_t j = i;
    while (j < len && in[j] < 0x80)
      j++;
    if (j > i) {
      rc = mailproto_buf_append(out, in + i, j - i);
      i = j;
      continue;
    }
    uint8_t tmp[4];
    size_t n;
    size_t used = 1;
    if (cs == MAILPROTO_MIME_CHARSET_UTF8) {
      uint32_t cp;
      used = mailproto_utf8_decode(in + i, len - i, &cp);
      if (used == 0) {
        used = 1;
        n = mailproto_utf8_encode(tmp, 0xFFFD);
      } else {
        memcpy(tmp, in + i, used);
        n = used;
      }
    } else {
      n = mailproto_utf8_encode(tmp, single_byte(cs, in[i]));
    }
    rc = mailproto_buf_append(out, tmp, n);
    i += used;
  }
  if (rc != 0)
    out->len = mark;
  return rc;
}
