/* Helpers shared by the store backends (see store_util.h). */
#include "store/store_util.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/saslprep.h"

int mailproto_store_grow(const mailproto_allocator *a, void **array,
                         size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t n = *cap < 8 ? 8 : *cap;
  while (n < need)
    if (mailproto_size_mul(n, 2, &n) != 0)
      return MAILPROTO_ERR_NOMEM;
  void *p = mailproto_mem_reallocarray(a, *array, n, elem);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  *array = p;
  *cap = n;
  return 0;
}

static unsigned char fold_ascii(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int mailproto_store_user_is(const char *stored, const char *name, size_t len,
                            int fold) {
  if (strlen(stored) != len)
    return 0;
  for (size_t k = 0; k < len; k++) {
    unsigned char a = (unsigned char)stored[k], b = (unsigned char)name[k];
    if (fold ? fold_ascii(a) != fold_ascii(b) : a != b)
      return 0;
  }
  return 1;
}

size_t mailproto_store_local_part(const char *address) {
  const char *at = strrchr(address, '@');
  return at ? (size_t)(at - address) : strlen(address);
}

int mailproto_store_prepare_login(const char *name, const char *password,
                                  char *name_out, char *password_out,
                                  size_t *password_len) {
  size_t nlen = strlen(name), plen = strlen(password), n;
  if (nlen > MAILPROTO_STORE_NAME_MAX || plen > MAILPROTO_SECRET_MAX ||
      mailproto_credential_prepare(name, nlen, MAILPROTO_PREP_STORED, name_out,
                                   MAILPROTO_STORE_NAME_MAX + 1, &n) != 0 ||
      n == 0 ||
      mailproto_credential_prepare(password, plen, MAILPROTO_PREP_STORED,
                                   password_out, MAILPROTO_SECRET_MAX + 1,
                                   password_len) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

int mailproto_store_password_check(const char *authzid, const char *authcid,
                                   const char *stored, size_t stored_len,
                                   const char *password, size_t password_len) {
  if (authzid && *authzid && strcmp(authzid, authcid) != 0)
    return MAILPROTO_ERR_AUTH_FAILED;
  if (!stored)
    return MAILPROTO_ERR_AUTH_FAILED;
  /* The stored NUL takes part, so a password one byte longer than the
   * stored one never matches it. */
  unsigned diff = password_len != stored_len;
  for (size_t i = 0; i < password_len; i++)
    diff |= (unsigned)((unsigned char)password[i] ^
                       (unsigned char)stored[i % (stored_len + 1)]);
  return diff ? MAILPROTO_ERR_AUTH_FAILED : 0;
}

int mailproto_store_append_info(const mailproto_append_info *info,
                                mailproto_append_info *out) {
  memset(out, 0, sizeof *out);
  if (info) {
    size_t sz = info->struct_size;
    memcpy(out, info,
           sz >= sizeof(size_t) && sz < sizeof *out ? sz : sizeof *out);
  }
  out->struct_size = sizeof *out;
  const mailproto_datetime *date = out->internal_date;
  if ((out->flags & ~MAILPROTO_FLAGS_SETTABLE) ||
      (out->keyword_count && !out->keywords) ||
      (date && (date->tz_minutes < -1439 || date->tz_minutes > 1439)))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

uint64_t mailproto_store_delivery_hint(const mailproto_delivery_info *info) {
  if (info &&
      info->struct_size >=
          offsetof(mailproto_delivery_info, size_hint) + sizeof info->size_hint)
    return info->size_hint;
  return 0;
}

int mailproto_store_deliver_args(void *const *accounts, size_t count,
                                 void **writer) {
  if (!accounts || count == 0 || !writer)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *writer = NULL;
  for (size_t i = 0; i < count; i++)
    if (!accounts[i])
      return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

int mailproto_store_append_keep(const mailproto_allocator *a,
                                mailproto_store_append *k,
                                const mailproto_append_info *in) {
  memset(k, 0, sizeof *k);
  k->flags = (uint8_t)in->flags;
  if (in->internal_date) {
    k->has_date = 1;
    k->date = *in->internal_date;
  }
  if (in->keyword_count == 0)
    return 0;
  k->keywords = mailproto_mem_calloc(a, in->keyword_count, sizeof *k->keywords);
  if (!k->keywords)
    return MAILPROTO_ERR_NOMEM;
  for (; k->keyword_count < in->keyword_count; k->keyword_count++) {
    char *kw = mailproto_mem_strdup(a, in->keywords[k->keyword_count]);
    if (!kw) {
      mailproto_store_append_drop(a, k);
      return MAILPROTO_ERR_NOMEM;
    }
    k->keywords[k->keyword_count] = kw;
  }
  return 0;
}

void mailproto_store_append_drop(const mailproto_allocator *a,
                                 mailproto_store_append *k) {
  for (size_t i = 0; k->keywords && i < k->keyword_count; i++)
    mailproto_mem_free(a, k->keywords[i]);
  mailproto_mem_free(a, k->keywords);
  memset(k, 0, sizeof *k);
}

int mailproto_store_flag_args(mailproto_flag_mode mode, uint32_t flags,
                              const char *const *keywords,
                              size_t keyword_count) {
  if ((flags & ~MAILPROTO_FLAGS_SETTABLE) || (keyword_count && !keywords) ||
      (mode != MAILPROTO_FLAGS_REPLACE && mode != MAILPROTO_FLAGS_ADD &&
       mode != MAILPROTO_FLAGS_REMOVE))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

void mailproto_store_apply_flags(mailproto_flag_mode mode, uint32_t old_flags,
                                 uint64_t old_kw, uint32_t flags, uint64_t kw,
                                 uint8_t *new_flags, uint64_t *new_kw) {
  switch (mode) {
  case MAILPROTO_FLAGS_ADD:
    *new_flags = (uint8_t)(old_flags | flags);
    *new_kw = old_kw | kw;
    break;
  case MAILPROTO_FLAGS_REMOVE:
    *new_flags = (uint8_t)(old_flags & ~flags);
    *new_kw = old_kw & ~kw;
    break;
  default:
    *new_flags = (uint8_t)flags;
    *new_kw = kw;
    break;
  }
}

int mailproto_store_report_mailbox(mailproto_op *op, const char *name,
                                   unsigned attributes) {
  mailproto_mailbox_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.name = name;
  info.attributes = attributes;
  return mailproto_op_add_mailbox(op, &info);
}

void mailproto_store_put_status(mailproto_mailbox_status *st,
                                mailproto_mailbox_status *full) {
  size_t size = st->struct_size;
  if (size < sizeof(size_t) || size > sizeof *st)
    size = sizeof *st;
  full->struct_size = size;
  memcpy(st, full, size);
}

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

int mailproto_uid_ranges_has(const mailproto_uid_range *r, size_t n,
                             uint32_t uid) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].last < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && r[lo].first <= uid;
}

void mailproto_uid_ranges_add(mailproto_uid_range *r, size_t *n, uint32_t first,
                              uint32_t end) {
  if (first >= end)
    return;
  mailproto_uid_range *last = *n ? &r[*n - 1] : NULL;
  if (last && last->last + 1 == first) {
    last->last = end - 1;
  } else {
    r[*n].first = first;
    r[*n].last = end - 1;
    (*n)++;
  }
}

int mailproto_uid_set_has(const mailproto_uid_set *set, uint32_t uid) {
  return mailproto_uid_ranges_has(set->r, set->n, uid);
}

/* CRs in [p, end), found with memchr. */
static uint64_t count_cr(const uint8_t *p, const uint8_t *end) {
  uint64_t k = 0;
  while (p < end && (p = memchr(p, '\r', (size_t)(end - p)))) {
    k++;
    p++;
  }
  return k;
}

void mailproto_store_size_add(mailproto_store_size *z, const uint8_t *p,
                              size_t n) {
  if (n == 0)
    return;
  /* One pass, line by line: an LF is bare unless a CR precedes it, and a
   * CR is bare unless it is the byte before an LF, so only the CRs before
   * each line's last byte need counting: in CRLF text, one memchr per
   * line that finds none. A chunk's final CR counts as bare until the
   * next chunk begins with LF. */
  const uint8_t *end = p + n, *q = p;
  uint64_t bare = 0;
  if (z->cr && *q == '\n') {
    z->bare--;
    q++;
  }
  for (const uint8_t *lf; q < end && (lf = memchr(q, '\n', (size_t)(end - q)));
       q = lf + 1) {
    if (lf > q && lf[-1] == '\r')
      bare += count_cr(q, lf - 1);
    else
      bare += 1 + count_cr(q, lf);
  }
  bare += count_cr(q, end);
  z->bare += bare;
  z->octets += n;
  z->cr = end[-1] == '\r';
}

uint64_t mailproto_store_size_total(const mailproto_store_size *z) {
  return z->octets + z->bare;
}

void mailproto_store_message_base(mailproto_message_info *info, uint32_t uid,
                                  uint64_t size, uint64_t stored_size,
                                  int64_t date, int tz_minutes) {
  memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
  info->uid = uid;
  info->size = size;
  info->stored_size = stored_size;
  info->internal_date.utc = date;
  info->internal_date.tz_minutes = (int32_t)tz_minutes;
}
