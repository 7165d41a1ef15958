/*
 * Dates: RFC 5322 date-time (with the obsolete syntax), IMAP date-time and
 * IMAP search dates. Expected instants were computed independently
 * (Python's calendar.timegm) and are written out here as numbers.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mailproto/mailproto.h"
#include "suites.h"
#include "support/overread.h"

/* Without fork, Check records every passing ck_assert in a file; loops that
 * check millions of values use this, which calls Check only on failure. */
#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                    \
  } while (0)

static overread_guard guard;

static void guard_setup(void) {
  ck_assert_int_eq(overread_init(&guard, 4096), 0);
}

static void guard_teardown(void) {
  overread_free(&guard);
}

typedef int (*parse_fn)(const char *, size_t, mailproto_datetime *);

/* Every parse goes through the over-read guard. */
static int parse_n(parse_fn fn, const char *s, size_t len,
                   mailproto_datetime *dt) {
  const char *p = (const char *)overread_place(&guard, s, len);
  REQUIRE(p != NULL);
  return fn(p, len, dt);
}

static int parse(parse_fn fn, const char *s, mailproto_datetime *dt) {
  return parse_n(fn, s, strlen(s), dt);
}

#define P5322 mailproto_date_parse_rfc5322
#define PIMAP mailproto_date_parse_imap
#define PDAY mailproto_date_parse_imap_day

static void assert_parses(parse_fn fn, const char *s, int64_t utc, int tz) {
  mailproto_datetime dt = {-1, -1};
  int rc = parse(fn, s, &dt);
  ck_assert_msg(rc == 0, "\"%s\" rejected (%d)", s, rc);
  ck_assert_msg(dt.utc == utc && dt.tz_minutes == tz,
                "\"%s\" gave %lld/%d, want %lld/%d", s, (long long)dt.utc,
                (int)dt.tz_minutes, (long long)utc, tz);
}

static void assert_rejects(parse_fn fn, const char *s) {
  mailproto_datetime dt;
  int rc = parse(fn, s, &dt);
  ck_assert_msg(rc == MAILPROTO_ERR_SYNTAX, "\"%s\" gave %d", s, rc);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* First second of 0000-01-01 and of 10000-01-01, the supported range. */
#define MIN_LOCAL (INT64_C(-719528) * 86400)
#define MAX_LOCAL (INT64_C(2932897) * 86400)
#define Y1900 INT64_C(-2208988800)

/* ------------------------------------------------------------------ */
/* RFC 5322                                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_date_parse_rfc5322_rfc_examples) {
  assert_parses(P5322, "Fri, 21 Nov 1997 09:55:06 -0600", 880127706, -360);
  assert_parses(P5322, "Tue, 1 Jul 2003 10:52:37 +0200", 1057049557, 120);
  assert_parses(P5322, "Thu, 13 Feb 1969 23:32:54 -0330", -27723426, -210);
  /* A.5: folding white space everywhere, no seconds, trailing comment. */
  assert_parses(P5322,
                "Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      "
                "23:32\r\n               -0330 (Newfoundland Time)",
                -27723480, -210);
  /* A.6.2: no weekday, two-digit year, named zone. */
  assert_parses(P5322, "21 Nov 97 09:55:06 GMT", 880106106, 0);
}
END_TEST

START_TEST(test_date_parse_rfc5322_obsolete_years) {
  /* RFC 5322 4.3: 00-49 -> 20xx, 50-99 -> 19xx, three digits + 1900. */
  assert_parses(P5322, "1 Jan 49 00:00 +0000", 2493072000, 0);
  assert_parses(P5322, "1 Jan 50 00:00 +0000", -631152000, 0);
  assert_parses(P5322, "1 Jan 00 00:00 +0000", 946684800, 0);
  assert_parses(P5322, "1 Jan 100 00:00 +0000", 946684800, 0);
  assert_parses(P5322, "1 Jan 999 00:00 +0000", 29316470400, 0);
  assert_parses(P5322, "1 Jan 000 00:00 +0000", Y1900, 0);
  /* 4*DIGIT: leading zeros are digits of a 4+ digit year. */
  assert_parses(P5322, "1 Jan 02000 00:00 +0000", 946684800, 0);
  assert_rejects(P5322, "1 Jan 0999 00:00 +0000"); /* year 999 < 1900 */
  assert_rejects(P5322, "1 Jan 1899 00:00 +0000");
  assert_rejects(P5322, "1 Jan 7 00:00 +0000");
  assert_rejects(P5322, "1 Jan 0000000002000 00:00 +0000");
}
END_TEST

START_TEST(test_date_parse_rfc5322_named_zones) {
  static const struct {
    const char *name;
    int tz;
  } zones[] = {{"UT", 0},     {"GMT", 0},    {"EST", -300}, {"EDT", -240},
               {"CST", -360}, {"CDT", -300}, {"MST", -420}, {"MDT", -360},
               {"PST", -480}, {"PDT", -420}, {"gmt", 0},    {"pDt", -420},
               {"UTC", 0},    {"CEST", 0},   {"ABCDE", 0},  {"Z", 0},
               {"z", 0},      {"A", 0},      {"M", 0},      {"N", 0},
               {"Y", 0},      {"k", 0}};
  for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
    char buf[64];
    strcpy(buf, "21 Nov 1997 09:55:06 ");
    strcat(buf, zones[i].name);
    assert_parses(P5322, buf, 880106106 - zones[i].tz * 60, zones[i].tz);
  }
  /* Every military letter but J is a zone (4.3); all mean -0000. */
  for (int ch = 'A'; ch <= 'z'; ch++) {
    if (ch > 'Z' && ch < 'a')
      continue;
    char buf[64] = "21 Nov 1997 09:55:06 ";
    size_t n = strlen(buf);
    buf[n] = (char)ch;
    buf[n + 1] = '\0';
    if (ch == 'J' || ch == 'j')
      assert_rejects(P5322, buf);
    else
      assert_parses(P5322, buf, 880106106, 0);
  }
  assert_rejects(P5322, "21 Nov 1997 09:55:06 ABCDEF"); /* too long */
  assert_rejects(P5322, "21 Nov 1997 09:55:06 GMT+0100");
  assert_rejects(P5322, "21 Nov 1997 09:55:06 GMT GMT");
}
END_TEST

START_TEST(test_date_parse_rfc5322_comments_anywhere) {
  assert_parses(P5322,
                "(a)Fri(b),(c)21(d)Nov(e)1997(f)09(g):(h)55(i):(j)06(k)"
                "-0600(l)",
                880127706, -360);
  assert_parses(P5322,
                " ( nested ( deeper ( deepest ) ) \\) \\( quoted ) Fri, 21 "
                "Nov 1997 09:55:06 -0600 (CST (really))  ",
                880127706, -360);
  /* Folding inside a comment, obs-ctext controls, quoted NUL, UTF-8. */
  static const char odd[] = "Fri, 21 Nov 1997 09:55:06 -0600 (a\r\n b\x01\x7f "
                            "\\\x00 \xc3\xa9)";
  mailproto_datetime dt;
  ck_assert_int_eq(parse_n(P5322, odd, sizeof odd - 1, &dt), 0);
  ck_assert(dt.utc == 880127706 && dt.tz_minutes == -360);
  /* The comment after the zone in A.5 is not part of the zone. */
  assert_parses(P5322, "Fri, 21 Nov 1997 09:55:06 -0600(x)", 880127706, -360);
  /* Tabs and obs-FWS with several folds. */
  assert_parses(P5322, "\tFri,\t21\r\n \r\n\tNov 1997 09:55:06\t-0600",
                880127706, -360);
}
END_TEST

START_TEST(test_date_parse_rfc5322_optional_parts) {
  /* No weekday, no seconds, both. */
  assert_parses(P5322, "21 Nov 1997 09:55:06 -0600", 880127706, -360);
  assert_parses(P5322, "Fri, 21 Nov 1997 09:55 -0600", 880127700, -360);
  assert_parses(P5322, "21 Nov 1997 09:55 -0600", 880127700, -360);
  /* Compact obsolete spacing: CFWS is optional between obs tokens. */
  assert_parses(P5322, "Fri,21Nov1997 09:55:06-0600", 880127706, -360);
  assert_parses(P5322, "21 Nov 1997 09 : 55 : 06 -0600", 880127706, -360);
  /* Single-digit day and zero-padded day. */
  assert_parses(P5322, "1 Jul 2003 10:52:37 +0200", 1057049557, 120);
  assert_parses(P5322, "01 Jul 2003 10:52:37 +0200", 1057049557, 120);
}
END_TEST

START_TEST(test_date_parse_rfc5322_inconsistent_weekday_ignored) {
  /* 21 Nov 1997 was a Friday. */
  static const char *days[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  for (int i = 0; i < 7; i++) {
    char buf[64];
    strcpy(buf, days[i]);
    strcat(buf, ", 21 Nov 1997 09:55:06 -0600");
    assert_parses(P5322, buf, 880127706, -360);
  }
  /* But it has to be a day name. */
  assert_rejects(P5322, "Fry, 21 Nov 1997 09:55:06 -0600");
  assert_rejects(P5322, "Friday, 21 Nov 1997 09:55:06 -0600");
  assert_rejects(P5322, "Fr, 21 Nov 1997 09:55:06 -0600");
}
END_TEST

START_TEST(test_date_parse_rfc5322_case_insensitive) {
  /* ABNF literals are case-insensitive (RFC 5234 2.3). */
  assert_parses(P5322, "fri, 21 NOV 1997 09:55:06 -0600", 880127706, -360);
  assert_parses(P5322, "FRI, 21 nOv 1997 09:55:06 Cst", 880127706, -360);
}
END_TEST

START_TEST(test_date_parse_rfc5322_field_boundaries) {
  assert_parses(P5322, "31 Jan 2024 00:00:00 +0000", 1706659200, 0);
  assert_rejects(P5322, "32 Jan 2024 00:00:00 +0000");
  assert_rejects(P5322, "0 Jan 2024 00:00:00 +0000");
  assert_rejects(P5322, "00 Jan 2024 00:00:00 +0000");
  assert_rejects(P5322, "31 Apr 2024 00:00:00 +0000");
  assert_parses(P5322, "30 Apr 2024 00:00:00 +0000", 1714435200, 0);
  /* Leap years: divisible by 4, except centuries, except by 400. */
  assert_parses(P5322, "29 Feb 2024 00:00:00 +0000", 1709164800, 0);
  assert_parses(P5322, "29 Feb 2000 12:00:00 +0000", 951825600, 0);
  assert_rejects(P5322, "29 Feb 2023 00:00:00 +0000");
  assert_rejects(P5322, "29 Feb 1900 00:00:00 +0000");
  assert_rejects(P5322, "29 Feb 2100 00:00:00 +0000");
  assert_rejects(P5322, "30 Feb 2000 00:00:00 +0000");
  /* Times. */
  assert_parses(P5322, "1 Jan 2000 23:59:59 +0000", 946771199, 0);
  assert_rejects(P5322, "1 Jan 2000 24:00:00 +0000");
  assert_rejects(P5322, "1 Jan 2000 23:60:00 +0000");
  assert_rejects(P5322, "1 Jan 2000 23:59:61 +0000");
  assert_rejects(P5322, "1 Jan 2000 99:00:00 +0000");
  /* A leap second is the first second of the next minute. */
  assert_parses(P5322, "31 Dec 1998 23:59:60 +0000", 915148800, 0);
  /* Zones: minutes below 60, within a day. */
  assert_parses(P5322, "1 Jan 2000 00:00:00 +2359", 946684800 - 1439 * 60,
                1439);
  assert_parses(P5322, "1 Jan 2000 00:00:00 -2359", 946684800 + 1439 * 60,
                -1439);
  assert_parses(P5322, "1 Jan 2000 00:00:00 -0000", 946684800, 0);
  assert_rejects(P5322, "1 Jan 2000 00:00:00 +0060");
  assert_rejects(P5322, "1 Jan 2000 00:00:00 +2400");
  assert_rejects(P5322, "1 Jan 2000 00:00:00 -9959");
  /* Years 1900..9999. */
  assert_parses(P5322, "1 Jan 1900 00:00:00 +0000", Y1900, 0);
  assert_parses(P5322, "31 Dec 9999 23:59:59 +0000", MAX_LOCAL - 1, 0);
  assert_parses(P5322, "31 Dec 9999 23:59:59 -2359", MAX_LOCAL - 1 + 1439 * 60,
                -1439);
  assert_rejects(P5322, "1 Jan 10000 00:00:00 +0000");
  /* Only the leap second would step past the end of the range. */
  assert_rejects(P5322, "31 Dec 9999 23:59:60 +0000");
}
END_TEST

START_TEST(test_date_parse_rfc5322_malformed) {
  static const char *bad[] = {
      "",
      "   ",
      "(comment only)",
      "Fri 21 Nov 1997 09:55:06 -0600",   /* weekday without comma */
      "Fri,, 21 Nov 1997 09:55:06 -0600", /* two commas */
      ", 21 Nov 1997 09:55:06 -0600",
      "21 November 1997 09:55:06 -0600",
      "21 Nvo 1997 09:55:06 -0600",
      "21 11 1997 09:55:06 -0600",
      "Nov 21 1997 09:55:06 -0600",
      "1997-11-21T09:55:06Z",
      "123 Nov 1997 09:55:06 -0600",
      "21 Nov 1997 9:55:06 -0600",
      "21 Nov 1997 09:5:06 -0600",
      "21 Nov 1997 09:55:6 -0600",
      "21 Nov 1997 095506 -0600",
      "21 Nov 1997 09:55:06:07 -0600",
      "21 Nov 1997 09.55.06 -0600",
      "21 Nov 1997 09:55:06 -060",
      "21 Nov 1997 09:55:06 -06000",
      "21 Nov 1997 09:55:06 - 0600",
      "21 Nov 1997 09:55:06 0600",
      "21 Nov 1997 09:55:06 +-0600",
      "21 Nov 1997 09:55:06 -0600 x",
      "21 Nov 1997 09:55:06 -0600 -0600",
      "21 Nov 1997 09:55:06 -0600,",
      "21 Nov 1997 09:55:06 -0600 (unterminated",
      "21 Nov 1997 09:55:06 -0600 (a))",
      "21 Nov 1997 09:55:06 -0600 (ends in backslash\\",
      "21 Nov 1997 09:55:06 -0600\r\n",    /* CRLF must be followed by WSP */
      "21 Nov 1997 09:55:06\r\n-0600",     /* ditto */
      "21 Nov 1997\n09:55:06 -0600",       /* bare LF */
      "21 Nov 1997\r09:55:06 -0600",       /* bare CR */
      "21 Nov 1997 09:55:06 -0600 (a\nb)", /* bare LF in a comment */
      "21 Nov 1997 09:55:06 -0600 (a\rb)", /* bare CR in a comment */
      "21\xa0Nov 1997 09:55:06 -0600",     /* non-ASCII outside comments */
      "21 Nov \xd9\xa1\xd9\xa9\xd9\xa9\xd9\xa7 09:55:06 -0600",
      "\"21 Nov 1997 09:55:06 -0600\"",
      "Fri, 21 Nov 1997 09:55:06 -0600 Fri",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_rejects(P5322, bad[i]);
  /* A NUL is not white space, even inside a comment. */
  mailproto_datetime dt;
  static const char nul1[] = "21 Nov 1997 09:55:06\0 -0600";
  static const char nul2[] = "21 Nov 1997 09:55:06 -0600 (a\0b)";
  ck_assert_int_eq(parse_n(P5322, nul1, sizeof nul1 - 1, &dt),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(parse_n(P5322, nul2, sizeof nul2 - 1, &dt),
                   MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_date_parse_rfc5322_truncated) {
  /* No proper prefix of a date ending in a numeric zone is a date, and
   * no prefix that stops inside a comment is either. */
  static const char *full[] = {
      "Fri, 21 Nov 1997 09:55:06 -0600",
      ("Thu,\r\n      13\r\n        Feb\r\n          1969\r\n      "
       "23:32\r\n               -0330"),
      "(x) 21 Nov 97 09:55 +0000",
  };
  for (size_t i = 0; i < sizeof full / sizeof full[0]; i++) {
    mailproto_datetime dt;
    size_t len = strlen(full[i]);
    for (size_t cut = 0; cut < len; cut++)
      ck_assert_msg(parse_n(P5322, full[i], cut, &dt) == MAILPROTO_ERR_SYNTAX,
                    "prefix %zu of \"%s\" accepted", cut, full[i]);
    ck_assert_int_eq(parse_n(P5322, full[i], len, &dt), 0);
  }
  const char *commented = "Fri, 21 Nov 1997 09:55:06 -0600 (a (b) \\) c)";
  size_t zone_end = strlen("Fri, 21 Nov 1997 09:55:06 -0600 ");
  mailproto_datetime dt;
  for (size_t cut = zone_end + 1; cut < strlen(commented); cut++)
    ck_assert_int_eq(parse_n(P5322, commented, cut, &dt), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_date_parse_rfc5322_oversized) {
  /* Long runs of digits, letters, comments and white space: rejected or
   * skipped in one pass, never a crash. */
  static char buf[4000];
  mailproto_datetime dt;
  memset(buf, '9', sizeof buf);
  ck_assert_int_eq(parse_n(P5322, buf, sizeof buf, &dt), MAILPROTO_ERR_SYNTAX);
  memset(buf, 'a', sizeof buf);
  ck_assert_int_eq(parse_n(P5322, buf, sizeof buf, &dt), MAILPROTO_ERR_SYNTAX);
  memset(buf, '(', sizeof buf);
  ck_assert_int_eq(parse_n(P5322, buf, sizeof buf, &dt), MAILPROTO_ERR_SYNTAX);
  /* Deeply nested but balanced comments around a valid date. */
  const char *date = "21 Nov 1997 09:55:06 -0600";
  size_t dlen = strlen(date);
  memset(buf, '(', 1500);
  memset(buf + 1500, ')', 1500);
  memcpy(buf + 3000, date, dlen);
  ck_assert_int_eq(parse_n(P5322, buf, 3000 + dlen, &dt), 0);
  ck_assert_int_eq(dt.utc, 880127706);
  /* Lots of white space. */
  memset(buf, ' ', 3000);
  ck_assert_int_eq(parse_n(P5322, buf, 3000 + dlen, &dt), 0);
  /* A 21-digit year would overflow a naive accumulator. */
  assert_rejects(P5322, "21 Nov 999999999999999999999 09:55:06 -0600");
  assert_rejects(P5322, "21 Nov 1997 09:55:06 -0600999999999999999999999");
}
END_TEST

START_TEST(test_date_parse_rfc5322_invalid_arguments) {
  mailproto_datetime dt;
  ck_assert_int_eq(mailproto_date_parse_rfc5322(NULL, 3, &dt),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_date_parse_rfc5322("x", 1, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_date_parse_rfc5322(NULL, 0, &dt),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(mailproto_date_parse_imap(NULL, 3, &dt),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_date_parse_imap("x", 1, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_date_parse_imap_day(NULL, 3, &dt),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_date_parse_imap_day("x", 1, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

static void assert_formats(int (*fn)(const mailproto_datetime *, char *,
                                     size_t),
                           int64_t utc, int tz, const char *want) {
  mailproto_datetime dt = {utc, tz};
  char out[MAILPROTO_DATE_BUFSIZE];
  int n = fn(&dt, out, sizeof out);
  ck_assert_msg(n == (int)strlen(want), "%lld/%d gave %d", (long long)utc, tz,
                n);
  ck_assert_str_eq(out, want);
}

#define F5322 mailproto_date_format_rfc5322
#define FIMAP mailproto_date_format_imap

START_TEST(test_date_format_rfc5322_known_values) {
  assert_formats(F5322, 880127706, -360, "Fri, 21 Nov 1997 09:55:06 -0600");
  assert_formats(F5322, 1057049557, 120, "Tue, 01 Jul 2003 10:52:37 +0200");
  assert_formats(F5322, -27723426, -210, "Thu, 13 Feb 1969 23:32:54 -0330");
  assert_formats(F5322, 0, 0, "Thu, 01 Jan 1970 00:00:00 +0000");
  assert_formats(F5322, -1, 0, "Wed, 31 Dec 1969 23:59:59 +0000");
  assert_formats(F5322, 0, -1, "Wed, 31 Dec 1969 23:59:00 -0001");
  assert_formats(F5322, 0, 1439, "Thu, 01 Jan 1970 23:59:00 +2359");
  assert_formats(F5322, Y1900, 0, "Mon, 01 Jan 1900 00:00:00 +0000");
  assert_formats(F5322, MAX_LOCAL - 1, 0, "Fri, 31 Dec 9999 23:59:59 +0000");
  /* 0001-01-01 was a Monday in the proleptic calendar; year 0 is leap. */
  assert_formats(F5322, MIN_LOCAL, 0, "Sat, 01 Jan 0000 00:00:00 +0000");
  assert_formats(F5322, MIN_LOCAL + 366 * 86400, 0,
                 "Mon, 01 Jan 0001 00:00:00 +0000");
  assert_formats(F5322, 951825600, 0, "Tue, 29 Feb 2000 12:00:00 +0000");
}
END_TEST

START_TEST(test_date_format_imap_known_values) {
  assert_formats(FIMAP, 1793973907, 0, " 6-Nov-2026 14:05:07 +0000");
  assert_formats(FIMAP, 837596665, -420, "17-Jul-1996 02:44:25 -0700");
  assert_formats(FIMAP, -27723426, -210, "13-Feb-1969 23:32:54 -0330");
  assert_formats(FIMAP, -1, 0, "31-Dec-1969 23:59:59 +0000");
  assert_formats(FIMAP, MIN_LOCAL, 0, " 1-Jan-0000 00:00:00 +0000");
  assert_formats(FIMAP, MAX_LOCAL - 1, 0, "31-Dec-9999 23:59:59 +0000");
}
END_TEST

START_TEST(test_date_format_buffer_sizes) {
  mailproto_datetime dt = {880127706, -360};
  char out[MAILPROTO_DATE_BUFSIZE];
  memset(out, '#', sizeof out);
  /* 31 characters need 32 bytes with the NUL. */
  ck_assert_int_eq(F5322(&dt, out, 31), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(F5322(&dt, out, 0), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(out[0], '#'); /* nothing written */
  ck_assert_int_eq(F5322(&dt, out, 32), 31);
  ck_assert_int_eq(out[31], '\0');
  ck_assert_int_eq(out[32], '#');
  ck_assert_int_eq(FIMAP(&dt, out, 26), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(FIMAP(&dt, out, 27), 26);
  ck_assert_int_eq(F5322(&dt, NULL, 0), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(F5322(NULL, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(FIMAP(NULL, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
}
END_TEST

START_TEST(test_date_format_out_of_range) {
  static const struct {
    int64_t utc;
    int tz;
  } bad[] = {
      {0, 1440},          {0, -1440},          {0, INT32_MAX},
      {0, INT32_MIN},     {INT64_MAX, 0},      {INT64_MIN, 0},
      {INT64_MAX, 1439},  {INT64_MIN, -1439},  {MAX_LOCAL, 0},
      {MIN_LOCAL - 1, 0}, {MAX_LOCAL - 60, 1}, {MIN_LOCAL + 59, -1},
  };
  char out[MAILPROTO_DATE_BUFSIZE];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    mailproto_datetime dt = {bad[i].utc, bad[i].tz};
    ck_assert_int_eq(F5322(&dt, out, sizeof out),
                     MAILPROTO_ERR_INVALID_ARGUMENT);
    ck_assert_int_eq(FIMAP(&dt, out, sizeof out),
                     MAILPROTO_ERR_INVALID_ARGUMENT);
  }
  /* The same instants are fine in a zone that keeps them in range. */
  mailproto_datetime edge = {MAX_LOCAL, -1};
  ck_assert_int_eq(F5322(&edge, out, sizeof out), 31);
  ck_assert_str_eq(out, "Fri, 31 Dec 9999 23:59:00 -0001");
}
END_TEST

/* An independent calendar: walk day by day from 0000-01-01 (a Saturday)
 * with plain month lengths, and compare every day's formatted date. */
START_TEST(test_date_format_every_day_of_the_range) {
  static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  int y = 0, m = 1, d = 1, wd = 6;
  int64_t t = MIN_LOCAL + 12 * 3600; /* noon */
  char out[MAILPROTO_DATE_BUFSIZE], want[64];
  while (y <= 9999) {
    mailproto_datetime dt = {t, 0};
    REQUIRE(F5322(&dt, out, sizeof out) == 31);
    snprintf(want, sizeof want, "%s, %02d %s %04d 12:00:00 +0000", days[wd], d,
             months[m - 1], y);
    REQUIRE(strcmp(out, want) == 0);
    /* Parse back where the RFC 5322 parser's range allows. */
    if (y >= 1900) {
      mailproto_datetime back;
      REQUIRE(P5322(out, 31, &back) == 0);
      REQUIRE(back.utc == t && back.tz_minutes == 0);
    }
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int mdays = m == 2                                    ? 28 + leap
                : (m == 4 || m == 6 || m == 9 || m == 11) ? 30
                                                          : 31;
    if (++d > mdays) {
      d = 1;
      if (++m > 12) {
        m = 1;
        y++;
      }
    }
    wd = (wd + 1) % 7;
    t += 86400;
  }
  REQUIRE(t - 12 * 3600 == MAX_LOCAL);
}
END_TEST

START_TEST(test_date_format_round_trip_random) {
  /* format then parse gives back the same instant and zone, for random
   * instants over the whole range (RFC 5322 from 1900 on, IMAP all). */
  char out[MAILPROTO_DATE_BUFSIZE];
  for (int iter = 0; iter < 200000; iter++) {
    int tz = (int)(rng() % 2879) - 1439;
    int64_t span = MAX_LOCAL - MIN_LOCAL;
    int64_t local = MIN_LOCAL + (int64_t)(rng() % (uint64_t)span);
    mailproto_datetime dt = {local - (int64_t)tz * 60, tz}, back;
    int n = FIMAP(&dt, out, sizeof out);
    REQUIRE(n == 26);
    REQUIRE(parse_n(PIMAP, out, (size_t)n, &back) == 0);
    REQUIRE(back.utc == dt.utc && back.tz_minutes == dt.tz_minutes);
    n = F5322(&dt, out, sizeof out);
    REQUIRE(n == 31);
    if (local >= Y1900) {
      REQUIRE(parse_n(P5322, out, (size_t)n, &back) == 0);
      REQUIRE(back.utc == dt.utc && back.tz_minutes == dt.tz_minutes);
    } else {
      REQUIRE(parse_n(P5322, out, (size_t)n, &back) == MAILPROTO_ERR_SYNTAX);
    }
  }
}
END_TEST

START_TEST(test_date_format_negative_times) {
  /* Seconds before the epoch count down correctly across day, month and
   * year boundaries (floor division, not truncation). */
  assert_formats(FIMAP, -86400, 0, "31-Dec-1969 00:00:00 +0000");
  assert_formats(FIMAP, -86401, 0, "30-Dec-1969 23:59:59 +0000");
  assert_formats(FIMAP, -31536000, 0, " 1-Jan-1969 00:00:00 +0000");
  assert_formats(FIMAP, -31536001, 0, "31-Dec-1968 23:59:59 +0000");
  assert_formats(FIMAP, Y1900 - 1, 0, "31-Dec-1899 23:59:59 +0000");
  assert_formats(FIMAP, -12219292800, 0, "15-Oct-1582 00:00:00 +0000");
}
END_TEST

/* ------------------------------------------------------------------ */
/* IMAP date-time and search dates                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_date_parse_imap_valid) {
  /* RFC 3501 section 6.3.11 example. */
  assert_parses(PIMAP, "17-Jul-1996 02:44:25 -0700", 837596665, -420);
  assert_parses(PIMAP, " 6-Nov-2026 14:05:07 +0000", 1793973907, 0);
  assert_parses(PIMAP, "06-Nov-2026 14:05:07 +0000", 1793973907, 0);
  assert_parses(PIMAP, "6-Nov-2026 14:05:07 +0000", 1793973907, 0);
  assert_parses(PIMAP, "06-nov-2026 14:05:07 +0000", 1793973907, 0);
  assert_parses(PIMAP, "06-NOV-2026 14:05:07 +0000", 1793973907, 0);
  assert_parses(PIMAP, "31-Dec-1998 23:59:60 +0000", 915148800, 0);
  assert_parses(PIMAP, " 1-Jan-0000 00:00:00 +0000", MIN_LOCAL, 0);
  assert_parses(PIMAP, " 1-Jan-0000 00:00:00 +2359", MIN_LOCAL - 1439 * 60,
                1439);
  assert_parses(PIMAP, "31-Dec-9999 23:59:59 -2359", MAX_LOCAL - 1 + 1439 * 60,
                -1439);
  assert_parses(PIMAP, "13-Feb-1969 23:32:54 -0330", -27723426, -210);
}
END_TEST

START_TEST(test_date_parse_imap_malformed) {
  static const char *bad[] = {
      "",
      "\"17-Jul-1996 02:44:25 -0700\"", /* quotes are the caller's */
      "17-Jul-1996 02:44:25",
      "17-Jul-1996 02:44 -0700",
      "17-Jul-96 02:44:25 -0700",
      "17-Jul-19966 02:44:25 -0700",
      "17 Jul 1996 02:44:25 -0700",
      "17-July-1996 02:44:25 -0700",
      "17-Jux-1996 02:44:25 -0700",
      "117-Jul-1996 02:44:25 -0700",
      "  6-Nov-2026 14:05:07 +0000",
      " 16-Nov-2026 14:05:07 +0000",
      "-6-Nov-2026 14:05:07 +0000",
      "17-Jul-1996  02:44:25 -0700",
      "17-Jul-1996 02:44:25  -0700",
      "17-Jul-1996\t02:44:25 -0700",
      "17-Jul-1996 2:44:25 -0700",
      "17-Jul-1996 02:44:25 -700",
      "17-Jul-1996 02:44:25 -07000",
      "17-Jul-1996 02:44:25 0700",
      "17-Jul-1996 02:44:25 PDT",
      "17-Jul-1996 02:44:25 -0700 ",
      " 17-Jul-1996 02:44:25 -0700",
      "17-Jul-1996 02:44:25 -0700 (PDT)",
      "17-Jul-1996 24:00:00 -0700",
      "17-Jul-1996 23:60:00 -0700",
      "17-Jul-1996 23:59:61 -0700",
      "17-Jul-1996 02:44:25 -0760",
      "17-Jul-1996 02:44:25 +2400",
      "31-Jun-1996 02:44:25 -0700",
      "29-Feb-1900 02:44:25 -0700",
      "00-Jul-1996 02:44:25 -0700",
      "31-Dec-9999 23:59:60 +0000",
      "Wed, 17-Jul-1996 02:44:25 -0700",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_rejects(PIMAP, bad[i]);
}
END_TEST

START_TEST(test_date_parse_imap_truncated) {
  const char *full = "17-Jul-1996 02:44:25 -0700";
  mailproto_datetime dt;
  for (size_t cut = 0; cut < strlen(full); cut++)
    ck_assert_int_eq(parse_n(PIMAP, full, cut, &dt), MAILPROTO_ERR_SYNTAX);
  /* Every single-byte substitution outside the digits breaks it. */
  for (size_t pos = 0; pos < strlen(full); pos++) {
    char buf[32];
    strcpy(buf, full);
    buf[pos] = 'x';
    if (pos >= 3 && pos <= 5)
      buf[pos] = '0'; /* a digit in the month name */
    ck_assert_int_eq(parse_n(PIMAP, buf, strlen(buf), &dt),
                     MAILPROTO_ERR_SYNTAX);
  }
}
END_TEST

START_TEST(test_date_parse_imap_day_valid) {
  assert_parses(PDAY, "1-Feb-1994", 760060800, 0);
  assert_parses(PDAY, "01-Feb-1994", 760060800, 0);
  assert_parses(PDAY, "\"1-Feb-1994\"", 760060800, 0);
  assert_parses(PDAY, "\"01-feb-1994\"", 760060800, 0);
  assert_parses(PDAY, "29-Feb-2000", 951782400, 0);
  assert_parses(PDAY, "31-Dec-1969", -86400, 0);
  assert_parses(PDAY, "1-Jan-0000", MIN_LOCAL, 0);
  assert_parses(PDAY, "31-Dec-9999", MAX_LOCAL - 86400, 0);
}
END_TEST

START_TEST(test_date_parse_imap_day_malformed) {
  static const char *bad[] = {
      "",
      "\"",
      "\"\"",
      "\"1-Feb-1994",
      "1-Feb-1994\"",
      "\"\"1-Feb-1994\"\"",
      " 1-Feb-1994",
      "1-Feb-1994 ",
      "001-Feb-1994",
      "1-Feb-94",
      "1-Feb-19940",
      "1 Feb 1994",
      "1-February-1994",
      "1-Feb",
      "Feb-1994",
      "-Feb-1994",
      "29-Feb-1900",
      "32-Jan-1994",
      "0-Jan-1994",
      "1-Feb-1994 00:00:00",
      "'1-Feb-1994'",
      "1/2/1994",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_rejects(PDAY, bad[i]);
  const char *full = "\"01-Feb-1994\"";
  mailproto_datetime dt;
  for (size_t cut = 0; cut < strlen(full); cut++)
    ck_assert_int_eq(parse_n(PDAY, full, cut, &dt), MAILPROTO_ERR_SYNTAX);
  /* Unquoted prefixes: only the whole string is a date. */
  const char *bare = "01-Feb-1994";
  for (size_t cut = 0; cut < strlen(bare); cut++)
    ck_assert_int_eq(parse_n(PDAY, bare, cut, &dt), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_date_parse_random_bytes_overread) {
  /* Valid dates with a few random edits (replace, insert or delete a byte
   * or a date-like piece), each placed against the guard page: an error
   * code or a result, never a crash; an accepted one formats back. */
  static const char *templates[] = {
      "Fri, 21 Nov 1997 09:55:06 -0600",
      "Thu,\r\n 13\r\n Feb\r\n 1969\r\n 23:32\r\n -0330 (Newfoundland Time)",
      "21 Nov 97 09:55:06 GMT",
      "(a (b) \\)) 1 Jan 49 00:00 z",
      "17-Jul-1996 02:44:25 -0700",
      " 6-Nov-2026 14:05:07 +0000",
      "1-Feb-1994",
      "\"29-Feb-2000\"",
  };
  static const char *pieces[] = {"Fri", ",",  " ",      "21", "Nov",  "9999",
                                 ":",   "60", "-",      "+",  "2359", "(",
                                 ")",   "\\", "\r\n ",  "\r", "\n",   "GMT",
                                 "J",   "\"", "29-Feb", "31"};
  size_t ntemplates = sizeof templates / sizeof templates[0];
  size_t npieces = sizeof pieces / sizeof pieces[0];
  parse_fn fns[] = {P5322, PIMAP, PDAY};
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 20000; iter++) {
    char buf[256];
    const char *tpl = templates[rng() % ntemplates];
    size_t len = strlen(tpl);
    memcpy(buf, tpl, len);
    size_t edits = rng() % 4;
    for (size_t e = 0; e < edits && len > 0; e++) {
      size_t at = rng() % len;
      const char *piece = pieces[rng() % npieces];
      size_t plen = strlen(piece);
      switch (rng() % 4) {
      case 0: /* replace a byte with a random one */
        buf[at] = (char)rng();
        break;
      case 1: /* delete a byte */
        memmove(buf + at, buf + at + 1, len - at - 1);
        len--;
        break;
      default: /* insert a piece */
        if (len + plen > sizeof buf)
          break;
        memmove(buf + at + plen, buf + at, len - at);
        memcpy(buf + at, piece, plen);
        len += plen;
        break;
      }
    }
    for (int f = 0; f < 3; f++) {
      mailproto_datetime dt, back;
      int rc = parse_n(fns[f], buf, len, &dt);
      REQUIRE(rc == 0 || rc == MAILPROTO_ERR_SYNTAX);
      if (rc != 0) {
        rejected++;
        continue;
      }
      accepted++;
      char out[MAILPROTO_DATE_BUFSIZE];
      int n =
          f == 0 ? F5322(&dt, out, sizeof out) : FIMAP(&dt, out, sizeof out);
      REQUIRE(n > 0);
      REQUIRE((f == 0 ? P5322 : PIMAP)(out, (size_t)n, &back) == 0);
      REQUIRE(back.utc == dt.utc && back.tz_minutes == dt.tz_minutes);
    }
  }
  REQUIRE(accepted > 1000);
  REQUIRE(rejected > 1000);
}
END_TEST

Suite *suite_core_date(void) {
  Suite *s = suite_create("core_date");
  TCase *tc = tcase_create("date");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_date_parse_rfc5322_rfc_examples);
  tcase_add_test(tc, test_date_parse_rfc5322_obsolete_years);
  tcase_add_test(tc, test_date_parse_rfc5322_named_zones);
  tcase_add_test(tc, test_date_parse_rfc5322_comments_anywhere);
  tcase_add_test(tc, test_date_parse_rfc5322_optional_parts);
  tcase_add_test(tc, test_date_parse_rfc5322_inconsistent_weekday_ignored);
  tcase_add_test(tc, test_date_parse_rfc5322_case_insensitive);
  tcase_add_test(tc, test_date_parse_rfc5322_field_boundaries);
  tcase_add_test(tc, test_date_parse_rfc5322_malformed);
  tcase_add_test(tc, test_date_parse_rfc5322_truncated);
  tcase_add_test(tc, test_date_parse_rfc5322_oversized);
  tcase_add_test(tc, test_date_parse_rfc5322_invalid_arguments);
  tcase_add_test(tc, test_date_format_rfc5322_known_values);
  tcase_add_test(tc, test_date_format_imap_known_values);
  tcase_add_test(tc, test_date_format_buffer_sizes);
  tcase_add_test(tc, test_date_format_out_of_range);
  tcase_add_test(tc, test_date_format_every_day_of_the_range);
  tcase_add_test(tc, test_date_format_round_trip_random);
  tcase_add_test(tc, test_date_format_negative_times);
  tcase_add_test(tc, test_date_parse_imap_valid);
  tcase_add_test(tc, test_date_parse_imap_malformed);
  tcase_add_test(tc, test_date_parse_imap_truncated);
  tcase_add_test(tc, test_date_parse_imap_day_valid);
  tcase_add_test(tc, test_date_parse_imap_day_malformed);
  tcase_add_test(tc, test_date_parse_random_bytes_overread);
  suite_add_tcase(s, tc);
  return s;
}
