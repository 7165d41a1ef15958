/*
 * Sequence sets (RFC 3501 9 "sequence-set", RFC 5182 "$"): parsed into
 * ranges as written; normalised only when a caller knows what "*" is.
 */
#include "imap/imap_seqset.h"

#include <stdlib.h>
#include <string.h>

#include "mailproto/core.h"

/* nz-number = digit-nz *DIGIT, at most 4294967295; or "*". */
static int parse_seq_number(const char *s, size_t len, size_t *pos,
                            uint32_t *out) {
  size_t i = *pos;
  if (i < len && s[i] == '*') {
    *out = MAILPROTO_IMAP_SEQ_STAR;
    *pos = i + 1;
    return 0;
  }
  if (i >= len || s[i] < '1' || s[i] > '9')
    return -1;
  uint64_t v = 0;
  while (i < len && s[i] >= '0' && s[i] <= '9') {
    v = v * 10 + (uint64_t)(s[i] - '0');
    if (v > UINT32_MAX)
      return -1;
    i++;
  }
  *out = (uint32_t)v;
  *pos = i;
  return 0;
}

unsigned mailproto_imap_seqset_count_ranges(const char *s, size_t len) {
  unsigned n = 1;
  const char *end = s + len;
  while ((s = memchr(s, ',', (size_t)(end - s))) != NULL) {
    n++;
    s++;
  }
  return n;
}

int mailproto_imap_seqset_parse(const char *s, size_t len, int allow_saved,
                                mailproto_imap_range *out, unsigned cap,
                                unsigned *count, int *saved) {
  *count = 0;
  *saved = 0;
  if (len == 1 && s[0] == '$') {
    if (!allow_saved)
      return MAILPROTO_ERR_SYNTAX;
    *saved = 1;
    return 0;
  }
  size_t pos = 0;
  unsigned n = 0;
  for (;;) {
    mailproto_imap_range r;
    if (parse_seq_number(s, len, &pos, &r.first) != 0)
      return MAILPROTO_ERR_SYNTAX;
    r.last = r.first;
    if (pos < len && s[pos] == ':') {
      pos++;
      if (parse_seq_number(s, len, &pos, &r.last) != 0)
        return MAILPROTO_ERR_SYNTAX;
    }
    if (n == cap)
      return MAILPROTO_ERR_TOO_LONG;
    out[n++] = r;
    if (pos == len)
      break;
    if (s[pos] != ',')
      return MAILPROTO_ERR_SYNTAX;
    pos++;
  }
  *count = n;
  return 0;
}

static uint32_t resolve(uint32_t v, uint32_t star) {
  return v == MAILPROTO_IMAP_SEQ_STAR ? star : v;
}

int mailproto_imap_seqset_contains(const mailproto_imap_seqset *set, uint32_t n,
                                   uint32_t star) {
  for (unsigned i = 0; i < set->count; i++) {
    uint32_t a = resolve(set->ranges[i].first, star);
    uint32_t b = resolve(set->ranges[i].last, star);
    if (a > b) {
      uint32_t t = a;
      a = b;
      b = t;
    }
    if (n >= a && n <= b)
      return 1;
  }
  return 0;
}

static int by_first(const void *x, const void *y) {
  const mailproto_imap_range *a = x, *b = y;
  if (a->first != b->first)
    return a->first < b->first ? -1 : 1;
  return a->last < b->last ? -1 : a->last > b->last;
}

unsigned mailproto_imap_seqset_normalize(const mailproto_imap_seqset *set,
                                         uint32_t star,
                                         mailproto_imap_range *out) {
  if (set->saved || set->count == 0)
    return 0;
  for (unsigned i = 0; i < set->count; i++) {
    uint32_t a = resolve(set->ranges[i].first, star);
    uint32_t b = resolve(set->ranges[i].last, star);
    out[i].first = a < b ? a : b;
    out[i].last = a < b ? b : a;
  }
  qsort(out, set->count, sizeof *out, by_first);
  unsigned n = 0;
  for (unsigned i = 0; i < set->count; i++) {
    /* Merge overlapping and adjacent ranges; last + 1 cannot overflow
     * when it is compared only below UINT32_MAX. */
    if (n > 0 && (out[n - 1].last == UINT32_MAX ||
                  out[i].first <= out[n - 1].last + 1)) {
      if (out[i].last > out[n - 1].last)
        out[n - 1].last = out[i].last;
      continue;
    }
    out[n++] = out[i];
  }
  return n;
}

static size_t put_seq(char *p, uint32_t v) {
  if (v == MAILPROTO_IMAP_SEQ_STAR) {
    *p = '*';
    return 1;
  }
  char tmp[10];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++)
    p[i] = tmp[n - 1 - i];
  return n;
}

long mailproto_imap_seqset_format(const mailproto_imap_seqset *set, char *out,
                                  size_t out_size) {
  size_t n = 0;
  if (set->saved) {
    if (out_size < 2)
      return MAILPROTO_ERR_BUFFER_FULL;
    out[0] = '$';
    out[1] = '\0';
    return 1;
  }
  for (unsigned i = 0; i < set->count; i++) {
    /* ",4294967295:4294967295" is 22 bytes; keep room for the NUL. */
    if (out_size - n < 23)
      return MAILPROTO_ERR_BUFFER_FULL;
    if (i > 0)
      out[n++] = ',';
    n += put_seq(out + n, set->ranges[i].first);
    if (set->ranges[i].last != set->ranges[i].first) {
      out[n++] = ':';
      n += put_seq(out + n, set->ranges[i].last);
    }
  }
  if (n >= out_size)
    return MAILPROTO_ERR_BUFFER_FULL;
  out[n] = '\0';
  return (long)n;
}
