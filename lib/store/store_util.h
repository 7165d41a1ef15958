/*
 * Helpers every store backend needs in the same form (the memory and the
 * Maildir store share them): growing arrays, users and their passwords,
 * the arguments of the writing and flag hooks, keyword atoms, ASCII case
 * folding, canonical mailbox names, UID ranges and sets, what the hooks
 * report, and RFC822.SIZE counting.
 */
#ifndef MAILPROTO_STORE_STORE_UTIL_H
#define MAILPROTO_STORE_STORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/store.h"

/* Grows *array (of `elem`-byte elements, *cap of them) to hold `need`,
 * doubling from 8, so n appends cost O(n). Returns 0 or NOMEM. */
int mailproto_store_grow(const mailproto_allocator *a, void **array,
                         size_t *cap, size_t need, size_t elem);

/* ---- users ---- */

/* 1 if the user name `stored` is `name` (len bytes, not NUL-terminated),
 * with ASCII case folded when `fold` (recipients: RFC 5321 2.4 leaves the
 * local part's case to the server, and names differing only in case are
 * refused as ambiguous). */
int mailproto_store_user_is(const char *stored, const char *name, size_t len,
                            int fold);

/* The length of the local part of a recipient address: up to its last
 * '@' (a quoted local part may hold '@' itself); the domain is not the
 * store's to judge. */
size_t mailproto_store_local_part(const char *address);

/* Checks a login against the user's stored password (`stored`, stored_len
 * bytes and a NUL; NULL: no such user): 0 or AUTH_FAILED. Acting as
 * someone else (an authzid other than authcid) is refused: RFC 4616 lets
 * the server decide. Every byte is compared whatever differs first, so
 * the time taken tells nothing about how much of a guess was right. */
/* A user's name and password as a backend keeps them: prepared as the
 * library prepares presented credentials before the authenticate hook
 * (core/saslprep.h: SASLprep for UTF-8, as stored strings), so the two
 * compare as bytes (RFC 4616 2: the database strings are prepared too). `name_out` has room for MAILPROTO_STORE_NAME_MAX + 1
 * bytes, `password_out` for MAILPROTO_SECRET_MAX + 1. Returns 0 or
 * INVALID_ARGUMENT (too long, or preparation fails). */
#define MAILPROTO_STORE_NAME_MAX 255
int mailproto_store_prepare_login(const char *name, const char *password,
                                  char *name_out, char *password_out,
                                  size_t *password_len);

int mailproto_store_password_check(const char *authzid, const char *authcid,
                                   const char *stored, size_t stored_len,
                                   const char *password, size_t password_len);

/* ---- writers ---- */

/* Copies an APPEND's details (a caller built against an older header
 * passes a shorter struct: the rest stays zero) and checks them: settable
 * flags only, keywords present when counted, a possible time zone.
 * Returns 0 or INVALID_ARGUMENT. */
int mailproto_store_append_info(const mailproto_append_info *info,
                                mailproto_append_info *out);

/* The size_hint of a delivery, 0 when the caller's struct lacks it. */
uint64_t mailproto_store_delivery_hint(const mailproto_delivery_info *info);

/* Checks deliver_begin's arguments: at least one account, none NULL, a
 * writer out-parameter (cleared). Returns 0 or INVALID_ARGUMENT. */
int mailproto_store_deliver_args(void *const *accounts, size_t count,
                                 void **writer);

/* What an APPEND writer keeps of its details until the commit. */
typedef struct mailproto_store_append {
  uint8_t flags; /* MAILPROTO_FLAGS_SETTABLE bits */
  char **keywords;
  size_t keyword_count;
  int has_date; /* else the commit's clock gives the INTERNALDATE */
  mailproto_datetime date;
} mailproto_store_append;

/* Keeps the details of `in` (checked by mailproto_store_append_info),
 * copying the keywords. Returns 0 or NOMEM, then *k holds nothing. */
int mailproto_store_append_keep(const mailproto_allocator *a,
                                mailproto_store_append *k,
                                const mailproto_append_info *in);
/* Frees what *k holds. */
void mailproto_store_append_drop(const mailproto_allocator *a,
                                 mailproto_store_append *k);

/* ---- flags ---- */

/* Checks set_flags' flag arguments. Returns 0 or INVALID_ARGUMENT. */
int mailproto_store_flag_args(mailproto_flag_mode mode, uint32_t flags,
                              const char *const *keywords,
                              size_t keyword_count);

/* A message's flags and keyword bits after set_flags in `mode` with
 * `flags` and keyword bits `kw` (RFC 3501 6.4.6: FLAGS, +FLAGS, -FLAGS). */
void mailproto_store_apply_flags(mailproto_flag_mode mode, uint32_t old_flags,
                                 uint64_t old_kw, uint32_t flags, uint64_t kw,
                                 uint8_t *new_flags, uint64_t *new_kw);

/* ---- reporting ---- */

/* Reports one mailbox to `op` (list). */
int mailproto_store_report_mailbox(mailproto_op *op, const char *name,
                                   unsigned attributes);

/* Copies `full` into the caller's *st as far as the caller knows the
 * struct (its struct_size; unset or larger than ours: all of it). */
void mailproto_store_put_status(mailproto_mailbox_status *st,
                                mailproto_mailbox_status *full);

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

/* 1 if `uid` lies in one of the n sorted, disjoint ranges (binary
 * search), else 0. */
/* Fills *info (cleared, struct_size set) with a message's unchanging
 * part: what open, sync and message_get report of it; the caller adds
 * flags, keywords and modseq (none for an expunged message). */
void mailproto_store_message_base(mailproto_message_info *info, uint32_t uid,
                                  uint64_t size, uint64_t stored_size,
                                  int64_t date, int tz_minutes);

int mailproto_uid_ranges_has(const mailproto_uid_range *r, size_t n,
                             uint32_t uid);

/* Adds UIDs [first, end) after the last of n sorted ranges, merging with
 * it when adjacent; nothing for an empty span. Room for one more range
 * must have been made. */
void mailproto_uid_ranges_add(mailproto_uid_range *r, size_t *n, uint32_t first,
                              uint32_t end);

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

/*
 * RFC822.SIZE of a message that arrives in chunks: its octets when every
 * line end is sent as CRLF, which is how the POP3 and IMAP sessions send
 * it. A bare LF and a bare CR each become CRLF, so each counts two; a CR
 * at the end of a chunk is bare or half of a CRLF depending on the next
 * chunk, and bare if none follows. Zero-initialise, add every chunk, then
 * read the total.
 */
typedef struct mailproto_store_size {
  uint64_t octets; /* bytes added */
  uint64_t bare;   /* bare CRs and LFs decided so far */
  int cr;          /* the last byte added is a CR, not yet decided */
} mailproto_store_size;

void mailproto_store_size_add(mailproto_store_size *z, const uint8_t *p,
                              size_t n);
/* The RFC822.SIZE of everything added so far, as a finished message. */
uint64_t mailproto_store_size_total(const mailproto_store_size *z);

#endif
