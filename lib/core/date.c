/*
 * Dates: RFC 5322 section 3.3 date-time (with the obsolete syntax of 4.3),
 * IMAP date-time and IMAP search dates (RFC 3501 / RFC 9051 section 9).
 *
 * The calendar arithmetic is done here, in the proleptic Gregorian calendar,
 * instead of with timegm()/strptime(): those are not C11, depend on the
 * locale and the TZ environment, and cover a platform-dependent range.
 *
 * Supported range: local dates 0000-01-01 to 9999-12-31 (a 4-digit year, as
 * both formats need). A parse never returns a value the formatters cannot
 * print, so format(parse(x)) always parses back to the same instant.
 */
#include <stdint.h>
#include <string.h>

#include "mailproto/mailproto.h"

#define SECS_PER_DAY INT64_C(86400)

static const char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                        "May", "Jun", "Jul", "Aug",
                                        "Sep", "Oct", "Nov", "Dec"};
/* Indexed by days since a Sunday. */
static const char day_names[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                     "Thu", "Fri", "Sat"};

/* ------------------------------------------------------------------ */
/* Calendar arithmetic                                                 */
/* ------------------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

static int is_leap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m) {
  static const unsigned char len[12] = {31, 28, 31, 30, 31, 30,
                                        31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/*
 * Days from 1970-01-01 to y-m-d. Counting years from March makes the leap
 * day the last day of the counted year, so each 400-year cycle (146097
 * days) has a fixed shape and the day of year follows from the month by a
 * linear formula: months from March have lengths 31,30,31,30,31 repeating,
 * which (153 * mp + 2) / 5 reproduces.
 */
static int64_t days_from_civil(int64_t y, int m, int d) {
  if (m <= 2)
    y--;
  int64_t cycle = floor_div(y, 400);
  int64_t year_of_cycle = y - cycle * 400;          /* 0..399 */
  int64_t mp = m > 2 ? m - 3 : m + 9;               /* March = 0 */
  int64_t day_of_year = (153 * mp + 2) / 5 + d - 1; /* 0..365 */
  int64_t day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 -
                         year_of_cycle / 100 + day_of_year;
  /* 719468 days separate 0000-03-01 from 1970-01-01. */
  return cycle * 146097 + day_of_cycle - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d) {
  days += 719468;
  int64_t cycle = floor_div(days, 146097);
  int64_t day_of_cycle = days - cycle * 146097; /* 0..146096 */
  /* Undo the 4/100/400 leap corrections to find the year in the cycle. */
  int64_t year_of_cycle = (day_of_cycle - day_of_cycle / 1460 +
                           day_of_cycle / 36524 - day_of_cycle / 146096) /
                          365;
  int64_t day_of_year =
      day_of_cycle -
      (365 * year_of_cycle + year_of_cycle / 4 - year_of_cycle / 100);
  int64_t mp = (5 * day_of_year + 2) / 153; /* March = 0 */
  *d = (int)(day_of_year - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = cycle * 400 + year_of_cycle + (*m <= 2);
}

/* Bounds of local time, in seconds since the epoch: [MIN_LOCAL, MAX_LOCAL). */
#define MIN_LOCAL (INT64_C(-719528) * SECS_PER_DAY) /* 0000-01-01 */
#define MAX_LOCAL (INT64_C(2932897) * SECS_PER_DAY) /* 10000-01-01 */

/* The broken-down fields every parser collects. */
typedef struct fields {
  int64_t year;
  int month, day, hour, minute, second;
  int tz; /* minutes east of UTC */
} fields;

/* Validates the fields and converts them (RFC 5322 3.3 "semantically
 * valid"). A leap second counts as the first second of the next minute, as
 * POSIX time has no 60th second. Returns 0 or MAILPROTO_ERR_SYNTAX. */
static int fields_to_datetime(const fields *f, mailproto_datetime *out) {
  if (f->year < 0 || f->year > 9999 || f->month < 1 || f->month > 12 ||
      f->day < 1 || f->day > days_in_month(f->year, f->month) || f->hour > 23 ||
      f->minute > 59 || f->second > 60 || f->tz < -1439 || f->tz > 1439)
    return MAILPROTO_ERR_SYNTAX;
  int64_t local = days_from_civil(f->year, f->month, f->day) * SECS_PER_DAY +
                  f->hour * 3600 + f->minute * 60 + f->second;
  /* Only 9999-12-31 23:59:60 can leave the range. */
  if (local >= MAX_LOCAL)
    return MAILPROTO_ERR_SYNTAX;
  out->utc = local - (int64_t)f->tz * 60;
  out->tz_minutes = f->tz;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Formatting                                                          */
/* ------------------------------------------------------------------ */

static char *put_digits(char *p, unsigned v, int width) {
  for (int i = width - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + width;
}

static char *put_text(char *p, const char *s) {
  size_t n = strlen(s);
  memcpy(p, s, n);
  return p + n;
}

/* " 14:05:07 +0000" */
static char *put_time_zone(char *p, const fields *f) {
  *p++ = ' ';
  p = put_digits(p, (unsigned)f->hour, 2);
  *p++ = ':';
  p = put_digits(p, (unsigned)f->minute, 2);
  *p++ = ':';
  p = put_digits(p, (unsigned)f->second, 2);
  *p++ = ' ';
  *p++ = f->tz < 0 ? '-' : '+';
  unsigned tz = (unsigned)(f->tz < 0 ? -f->tz : f->tz);
  p = put_digits(p, tz / 60, 2);
  return put_digits(p, tz % 60, 2);
}

/* Splits dt into local fields; *weekday gets days since Sunday. */
static int datetime_to_fields(const mailproto_datetime *dt, fields *f,
                              int *weekday) {
  if (dt == NULL || dt->tz_minutes < -1439 || dt->tz_minutes > 1439)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* Checked before adding the offset, so the sum cannot overflow. */
  if (dt->utc < MIN_LOCAL - SECS_PER_DAY || dt->utc > MAX_LOCAL + SECS_PER_DAY)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int64_t local = dt->utc + (int64_t)dt->tz_minutes * 60;
  if (local < MIN_LOCAL || local >= MAX_LOCAL)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int64_t days = floor_div(local, SECS_PER_DAY);
  int64_t secs = local - days * SECS_PER_DAY;
  civil_from_days(days, &f->year, &f->month, &f->day);
  f->hour = (int)(secs / 3600);
  f->minute = (int)(secs / 60 % 60);
  f->second = (int)(secs % 60);
  f->tz = dt->tz_minutes;
  /* 1970-01-01 was a Thursday. */
  int64_t w = (days + 4) % 7;
  *weekday = (int)(w < 0 ? w + 7 : w);
  return 0;
}

static int finish(const char *buf, size_t len, char *out, size_t out_size) {
  if (out == NULL)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (out_size <= len) /* the NUL needs a byte too */
    return MAILPROTO_ERR_BUFFER_FULL;
  memcpy(out, buf, len);
  out[len] = '\0';
  return (int)len;
}

int mailproto_date_format_rfc5322(const mailproto_datetime *dt, char *out,
                                  size_t out_size) {
  fields f;
  int weekday;
  int rc = datetime_to_fields(dt, &f, &weekday);
  if (rc != 0)
    return rc;
  char buf[MAILPROTO_DATE_BUFSIZE];
  char *p = put_text(buf, day_names[weekday]);
  p = put_text(p, ", ");
  p = put_digits(p, (unsigned)f.day, 2);
  *p++ = ' ';
  p = put_text(p, month_names[f.month - 1]);
  *p++ = ' ';
  p = put_digits(p, (unsigned)f.year, 4);
  p = put_time_zone(p, &f);
  return finish(buf, (size_t)(p - buf), out, out_size);
}

int mailproto_date_format_imap(const mailproto_datetime *dt, char *out,
                               size_t out_size) {
  fields f;
  int weekday;
  int rc = datetime_to_fields(dt, &f, &weekday);
  if (rc != 0)
    return rc;
  char buf[MAILPROTO_DATE_BUFSIZE];
  char *p = buf;
  /* date-day-fixed: a single-digit day is padded with a space. */
  if (f.day < 10) {
    *p++ = ' ';
    p = put_digits(p, (unsigned)f.day, 1);
  } else {
    p = put_digits(p, (unsigned)f.day, 2);
  }
  *p++ = '-';
  p = put_text(p, month_names[f.month - 1]);
  *p++ = '-';
  p = put_digits(p, (unsigned)f.year, 4);
  p = put_time_zone(p, &f);
  return finish(buf, (size_t)(p - buf), out, out_size);
}

/* ------------------------------------------------------------------ */
/* Scanning                                                            */
/* ------------------------------------------------------------------ */

typedef struct cursor {
  const unsigned char *s;
  size_t len, pos;
} cursor;

static int peek(const cursor *c) {
  return c->pos < c->len ? c->s[c->pos] : -1;
}

static int is_digit(int ch) {
  return ch >= '0' && ch <= '9';
}

static int is_alpha(int ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z');
}

static int lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* Reads a maximal run of digits. Returns the digit count (0 if none) and
 * the value in *v; more than `max` digits gives -1. */
static int read_digits(cursor *c, int max, int64_t *v) {
  int n = 0;
  *v = 0;
  while (is_digit(peek(c))) {
    if (++n > max)
      return -1;
    *v = *v * 10 + (peek(c) - '0');
    c->pos++;
  }
  return n;
}

/* Reads exactly `n` digits (no more follow). Returns 0 or -1. */
static int read_fixed(cursor *c, int n, int *v) {
  int64_t x;
  if (read_digits(c, n, &x) != n)
    return -1;
  *v = (int)x;
  return 0;
}

/* Reads a maximal run of letters into word (lower case, NUL-terminated).
 * Returns its length (0 if none), or -1 if longer than cap - 1. */
static int read_word(cursor *c, char *word, size_t cap) {
  size_t n = 0;
  while (is_alpha(peek(c))) {
    if (n + 1 >= cap)
      return -1;
    word[n++] = (char)lower(peek(c));
    c->pos++;
  }
  word[n] = '\0';
  return (int)n;
}

/* Index of `word` (lower case) in a table of capitalised names, or -1.
 * ABNF literals are case-insensitive (RFC 5234 2.3). */
static int lookup(const char *word, const char (*names)[4], int count) {
  for (int i = 0; i < count; i++) {
    const char *n = names[i];
    if (word[0] == lower(n[0]) && word[1] == n[1] && word[2] == n[2] &&
        word[3] == '\0')
      return i;
  }
  return -1;
}

/* Reads a month name; returns 1..12 or -1. */
static int read_month(cursor *c) {
  char word[8];
  if (read_word(c, word, sizeof word) != 3)
    return -1;
  int m = lookup(word, month_names, 12);
  return m < 0 ? -1 : m + 1;
}

/* "+hhmm" / "-hhmm" (RFC 5322 3.3 zone, RFC 3501 zone). The range checks
 * happen in fields_to_datetime; minutes must be below 60 here. */
static int read_numeric_zone(cursor *c, int *tz) {
  int sign = peek(c);
  if (sign != '+' && sign != '-')
    return -1;
  c->pos++;
  int hhmm;
  if (read_fixed(c, 4, &hhmm) != 0 || hhmm % 100 > 59)
    return -1;
  int minutes = hhmm / 100 * 60 + hhmm % 100;
  *tz = sign == '-' ? -minutes : minutes;
  return 0;
}

/* ------------------------------------------------------------------ */
/* RFC 5322                                                            */
/* ------------------------------------------------------------------ */

/*
 * Skips CFWS (RFC 5322 3.2.2, 4.1, 4.2): WSP, folds (CRLF followed by
 * WSP) and nested comments with quoted-pairs. Comments may hold obs-ctext
 * controls and, per RFC 6532 3.2, UTF-8. Returns 0, or -1 for a bare CR or
 * LF, a NUL, or an unterminated comment.
 */
static int skip_cfws(cursor *c) {
  size_t depth = 0;
  while (c->pos < c->len) {
    unsigned char ch = c->s[c->pos];
    if (ch == ' ' || ch == '\t') {
      c->pos++;
    } else if (ch == '\r') {
      /* A fold: CRLF is only allowed when WSP follows. */
      if (c->len - c->pos < 3 || c->s[c->pos + 1] != '\n' ||
          (c->s[c->pos + 2] != ' ' && c->s[c->pos + 2] != '\t'))
        return -1;
      c->pos += 3;
    } else if (ch == '(') {
      depth++;
      c->pos++;
    } else if (depth == 0) {
      return 0;
    } else if (ch == ')') {
      depth--;
      c->pos++;
    } else if (ch == '\\') {
      /* quoted-pair and obs-qp: any following byte. */
      if (c->len - c->pos < 2)
        return -1;
      c->pos += 2;
    } else if (ch == '\0' || ch == '\n') {
      return -1;
    } else {
      c->pos++;
    }
  }
  return depth == 0 ? 0 : -1;
}

/* Zones of RFC 5322 4.3 other than numeric ones. Military letters and
 * unknown names mean -0000: their meaning is unreliable. */
static int read_named_zone(cursor *c, int *tz) {
  static const struct {
    char name[4];
    int minutes;
  } zones[] = {{"ut", 0},        {"gmt", 0},       {"est", -5 * 60},
               {"edt", -4 * 60}, {"cst", -6 * 60}, {"cdt", -5 * 60},
               {"mst", -7 * 60}, {"mdt", -6 * 60}, {"pst", -8 * 60},
               {"pdt", -7 * 60}};
  char word[6]; /* "usually between 3 and 5" letters (4.3) */
  int n = read_word(c, word, sizeof word);
  if (n <= 0)
    return -1;
  for (size_t i = 0; i < sizeof zones / sizeof zones[0]; i++) {
    if (strcmp(word, zones[i].name) == 0) {
      *tz = zones[i].minutes;
      return 0;
    }
  }
  /* "J" is not a military zone; other single letters are. Longer unknown
   * names ("UTC", "CEST") are the "other multi-character alphabetic time
   * zones" 4.3 says to treat as -0000. */
  if (n == 1 && word[0] == 'j')
    return -1;
  *tz = 0;
  return 0;
}

/* Parses the tokens after CFWS has been skipped; each reader leaves the
 * cursor on the next token. */
static int parse_rfc5322(cursor *c, fields *f) {
  char word[8];
  int64_t v;
  if (skip_cfws(c) != 0)
    return -1;
  if (is_alpha(peek(c))) {
    /* day-of-week: checked for form only; an inconsistent one is ignored
     * (RFC 5322 3.3 makes it the sender's error, not a reason to reject). */
    if (read_word(c, word, sizeof word) != 3 ||
        lookup(word, day_names, 7) < 0 || skip_cfws(c) != 0 || peek(c) != ',')
      return -1;
    c->pos++;
    if (skip_cfws(c) != 0)
      return -1;
  }
  if (read_digits(c, 2, &v) < 1 || skip_cfws(c) != 0)
    return -1;
  f->day = (int)v;
  if ((f->month = read_month(c)) < 0 || skip_cfws(c) != 0)
    return -1;
  /* year: 4*DIGIT, or obs-year's two or three digits (RFC 5322 4.3). A
   * longer run is allowed for leading zeros; the range check follows. */
  int ndigits = read_digits(c, 9, &v);
  if (ndigits < 2 || skip_cfws(c) != 0)
    return -1;
  if (ndigits == 2)
    f->year = v < 50 ? 2000 + v : 1900 + v;
  else if (ndigits == 3)
    f->year = 1900 + v;
  else if (v < 1900) /* 3.3: "any numeric year 1900 or later" */
    return -1;
  else
    f->year = v;
  /* time-of-day; obs-hour etc. allow CFWS around each number. */
  if (read_fixed(c, 2, &f->hour) != 0 || skip_cfws(c) != 0 || peek(c) != ':')
    return -1;
  c->pos++;
  if (skip_cfws(c) != 0 || read_fixed(c, 2, &f->minute) != 0 ||
      skip_cfws(c) != 0)
    return -1;
  f->second = 0;
  if (peek(c) == ':') {
    c->pos++;
    if (skip_cfws(c) != 0 || read_fixed(c, 2, &f->second) != 0 ||
        skip_cfws(c) != 0)
      return -1;
  }
  if (peek(c) == '+' || peek(c) == '-') {
    if (read_numeric_zone(c, &f->tz) != 0)
      return -1;
  } else if (read_named_zone(c, &f->tz) != 0) {
    return -1;
  }
  if (skip_cfws(c) != 0 || c->pos != c->len)
    return -1;
  return 0;
}

int mailproto_date_parse_rfc5322(const char *s, size_t len,
                                 mailproto_datetime *out) {
  if ((s == NULL && len != 0) || out == NULL)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  cursor c = {(const unsigned char *)s, len, 0};
  fields f;
  if (parse_rfc5322(&c, &f) != 0)
    return MAILPROTO_ERR_SYNTAX;
  return fields_to_datetime(&f, out);
}

/* ------------------------------------------------------------------ */
/* IMAP                                                                */
/* ------------------------------------------------------------------ */

static int expect(cursor *c, int ch) {
  if (peek(c) != ch)
    return -1;
  c->pos++;
  return 0;
}

/* "-Mon-yyyy" after the day (RFC 3501 date-text / date-time). */
static int read_imap_month_year(cursor *c, fields *f) {
  int year;
  if (expect(c, '-') != 0 || (f->month = read_month(c)) < 0 ||
      expect(c, '-') != 0 || read_fixed(c, 4, &year) != 0)
    return -1;
  f->year = year;
  return 0;
}

/*
 * date-time = date-day-fixed "-" date-month "-" date-year SP time SP zone
 * (RFC 3501 and RFC 9051 section 9), without the DQUOTEs. date-day-fixed
 * is " 6" or "06"; a bare "6" is also taken, as some clients send it and
 * it cannot be mistaken for anything else.
 */
static int parse_imap(cursor *c, fields *f) {
  int64_t v;
  if (peek(c) == ' ') {
    c->pos++;
    if (read_digits(c, 1, &v) != 1)
      return -1;
  } else if (read_digits(c, 2, &v) < 1) {
    return -1;
  }
  f->day = (int)v;
  if (read_imap_month_year(c, f) != 0 || expect(c, ' ') != 0 ||
      read_fixed(c, 2, &f->hour) != 0 || expect(c, ':') != 0 ||
      read_fixed(c, 2, &f->minute) != 0 || expect(c, ':') != 0 ||
      read_fixed(c, 2, &f->second) != 0 || expect(c, ' ') != 0 ||
      read_numeric_zone(c, &f->tz) != 0 || c->pos != c->len)
    return -1;
  return 0;
}

int mailproto_date_parse_imap(const char *s, size_t len,
                              mailproto_datetime *out) {
  if ((s == NULL && len != 0) || out == NULL)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  cursor c = {(const unsigned char *)s, len, 0};
  fields f;
  if (parse_imap(&c, &f) != 0)
    return MAILPROTO_ERR_SYNTAX;
  return fields_to_datetime(&f, out);
}

/* date = date-text / DQUOTE date-text DQUOTE;
 * date-text = date-day "-" date-month "-" date-year (RFC 3501 section 9). */
int mailproto_date_parse_imap_day(const char *s, size_t len,
                                  mailproto_datetime *out) {
  if ((s == NULL && len != 0) || out == NULL)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (len >= 1 && s[0] == '"') {
    if (len < 2 || s[len - 1] != '"')
      return MAILPROTO_ERR_SYNTAX;
    s++;
    len -= 2;
  }
  cursor c = {(const unsigned char *)s, len, 0};
  fields f = {0};
  int64_t day;
  if (read_digits(&c, 2, &day) < 1 || read_imap_month_year(&c, &f) != 0 ||
      c.pos != c.len)
    return MAILPROTO_ERR_SYNTAX;
  f.day = (int)day;
  return fields_to_datetime(&f, out);
}
