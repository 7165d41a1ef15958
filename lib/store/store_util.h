/*
 * Helpers every store backend needs in the same form (the memory and the
 * Maildir store share them): keyword atoms, ASCII case folding, canonical
 * mailbox names, UID range sets and RFC822.SIZE counting.
 */
#ifndef MAILPROTO_STORE_STORE_UTIL_H
#define MAILPROTO_STORE_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/store.h"

/* Longest keyword name accepted (keywords are IMAP atoms). */
#define MAILPROTO_STORE_KEYWORD_MAX 128

/* 1 if `kw` is a valid IMAP flag-keyword atom (RFC 3501 9) of at most
 * MAILPROTO_STORE_KEYWORD_MAX bytes, else 0. */
int mailproto_store_keyword_valid(const char *kw);

/* strcmp with ASCII letters folded to lower case (keywords and other IMAP
 * atoms compare case-insensitively). */
int mailproto_store_ascii_casecmp(const char *a, const char *b);

/* Checks `name` (mailproto_mailbox_name_check) and writes its canonical
 * form into `out` (MAILPROTO_MAILBOX_NAME_MAX + 1 bytes): INBOX in any case
 * as the first level becomes "INBOX" (RFC 3501 5.1). 0 or BAD_NAME. */
int mailproto_store_canon_name(const char *name, char *out);

/* The UID ranges of a call, sorted by first UID and disjoint. */
typedef struct mailproto_uid_set {
  const mailproto_uid_range *r;
  size_t n;
  mailproto_uid_range *owned; /* when the caller's ranges needed sorting */
} mailproto_uid_set;

/* Normalises `r` (n ranges): uses them as they are when already sorted and
 * disjoint, else a sorted, merged copy. INVALID_ARGUMENT for a range with
 * first > last or NULL ranges with n > 0; NOMEM. */
int mailproto_uid_set_init(const mailproto_allocator *a, mailproto_uid_set *set,
                           const mailproto_uid_range *r, size_t n);
void mailproto_uid_set_free(const mailproto_allocator *a,
                            mailproto_uid_set *set);
/* 1 if `uid` lies in the set (binary search), else 0. */
int mailproto_uid_set_has(const mailproto_uid_set *set, uint32_t uid);

/* Bare LFs (not preceded by CR) in `p`, which follows a byte that was a CR
 * if `prev_cr`: RFC822.SIZE counts each of them twice, as the message will
 * be sent with CRLF line ends. */
uint64_t mailproto_store_bare_lf(const uint8_t *p, size_t n, int prev_cr);

#endif
