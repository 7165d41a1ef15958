/* Helpers shared by the store backends (see store_util.h). */
#include "store/store_util.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

int mailproto_store_keyword_valid(const char *kw) {
  size_t n = 0;
  /* flag-keyword = atom; ATOM-CHAR is any CHAR but atom-specials
   * (RFC 3501 9): no "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]". */
  for (; kw[n]; n++) {
    unsigned char c = (unsigned char)kw[n];
    if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c))
      return 0;
    if (n >= MAILPROTO_STORE_KEYWORD_MAX)
      return 0;
  }
  return n > 0;
}

int mailproto_store_ascii_casecmp(const char *a, const char *b) {
  for (;; a++, b++) {
    unsigned char x = (unsigned char)*a, y = (unsigned char)*b;
    if (x >= 'A' && x <= 'Z')
      x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z')
      y = (unsigned char)(y + 32);
    if (x != y || x == 0)
      return x - y;
  }
}

int mailproto_store_canon_name(const char *name, char *out) {
  if (mailproto_mailbox_name_check(name) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  strcpy(out, name);
  /* RFC 3501 5.1: INBOX in any case is the inbox; its children's names
   * get the same spelling of it. */
  char first[6];
  if (strcspn(out, "/") == 5) {
    memcpy(first, out, 5);
    first[5] = '\0';
    if (mailproto_mailbox_is_inbox(first))
      memcpy(out, "INBOX", 5);
  }
  return 0;
}

static int cmp_range(const void *a, const void *b) {
  const mailproto_uid_range *x = a, *y = b;
  return (x->first > y->first) - (x->first < y->first);
}

int mailproto_uid_set_init(const mailproto_allocator *a, mailproto_uid_set *set,
                           const mailproto_uid_range *r, size_t n) {
  memset(set, 0, sizeof *set);
  if (n && !r)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int sorted = 1;
  for (size_t i = 0; i < n; i++) {
    if (r[i].first > r[i].last)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    if (i > 0 && r[i].first <= r[i - 1].last)
      sorted = 0;
  }
  set->r = r;
  set->n = n;
  if (sorted)
    return 0;
  /* Overlaps would visit a message twice (and copy it twice). */
  mailproto_uid_range *o = mailproto_mem_calloc(a, n, sizeof *o);
  if (!o)
    return MAILPROTO_ERR_NOMEM;
  memcpy(o, r, n * sizeof *o);
  qsort(o, n, sizeof *o, cmp_range);
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (o[i].first <= o[k].last ||
        (o[k].last != UINT32_MAX && o[i].first == o[k].last + 1)) {
      if (o[i].last > o[k].last)
        o[k].last = o[i].last;
    } else {
      o[++k] = o[i];
    }
  }
  set->r = set->owned = o;
  set->n = k + 1;
  return 0;
}

void mailproto_uid_set_free(const mailproto_allocator *a,
                            mailproto_uid_set *set) {
  mailproto_mem_free(a, set->owned);
  set->owned = NULL;
}

int mailproto_uid_set_has(const mailproto_uid_set *set, uint32_t uid) {
  size_t lo = 0, hi = set->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (set->r[mid].last < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < set->n && set->r[lo].first <= uid;
}

uint64_t mailproto_store_bare_lf(const uint8_t *p, size_t n, int prev_cr) {
  uint64_t bare = 0;
  const uint8_t *end = p + n, *start = p;
  while (p < end && (p = memchr(p, '\n', (size_t)(end - p)))) {
    if (p == start ? !prev_cr : p[-1] != '\r')
      bare++;
    p++;
  }
  return bare;
}
