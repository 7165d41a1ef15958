/*
 * The in-memory store's data model, shared by the memstore_*.c files.
 *
 * store -> users -> mailboxes (sorted by name) -> messages (sorted by UID).
 * Every mutation first validates and allocates everything it needs, then
 * commits with steps that cannot fail, so NOMEM never leaves half a change.
 *
 * Choices where RFC 3501 leaves room (documented here once):
 *  - CREATE makes missing parents NOSELECT placeholders (hierarchy only);
 *    CREATE of a placeholder's name makes it a real mailbox. Placeholders
 *    stay until deleted, as in the RFC 3501 6.3.4 example.
 *  - A mailbox that RENAME moves gets a new UIDVALIDITY (RFC 3501 2.3.1.1:
 *    a name's UIDVALIDITY must only grow, and the new name may have been
 *    used before); it keeps its UIDs, flags and mod-sequences.
 *  - Deleting or renaming a mailbox that sessions have open detaches their
 *    handles from it: they see every message expunged in their next sync.
 *  - Subscriptions are names: rename and delete leave them alone (RFC 3501
 *    6.3.6: the server must not remove them on its own).
 *  - INBOX in any case is stored and reported as "INBOX", also as the
 *    first level of a child's name ("inbox/x" is "INBOX/x").
 */
#ifndef MAILPROTO_STORE_MEMSTORE_INTERNAL_H
#define MAILPROTO_STORE_MEMSTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "mailproto/memstore.h"
#include "store/store_util.h"

/* Longest keyword name accepted (keywords are IMAP atoms). */
#define MS_KEYWORD_MAX MAILPROTO_STORE_KEYWORD_MAX
/* Highest UID ever assigned; UIDNEXT can then still be represented. */
#define MS_UID_MAX 0xfffffffeu

/* Message bytes, shared by copies of the message (copy, move, delivery to
 * several accounts). */
typedef struct ms_body {
  size_t refs;
  size_t len;    /* stored bytes */
  uint64_t size; /* RFC822.SIZE: bare CRs and LFs count as CRLF */
  /* The cache_put entry (the parsed MIME structure): it describes these
   * bytes, so copies of the message share it and it goes with them. */
  uint8_t *cache;
  size_t cache_len;
  uint8_t data[];
} ms_body;

/* One message: 40 bytes plus its shared body. */
typedef struct ms_msg {
  uint32_t uid;
  uint8_t flags; /* MAILPROTO_FLAGS_SETTABLE bits */
  int16_t tz_minutes;
  uint64_t keywords;
  uint64_t modseq;
  int64_t date;
  ms_body *body;
} ms_msg;

/* What message_get still says of an expunged message (see ms_handle). */
typedef struct ms_tomb {
  uint32_t uid;
  int16_t tz_minutes;
  uint64_t size, stored;
  int64_t date;
} ms_tomb;

/* A change that open handles have not all seen yet. An expunge keeps the
 * message's sizes and date (in `tomb`, whose uid is the change's). */
typedef struct ms_change {
  uint64_t modseq;
  uint32_t expunged; /* 1: expunge, 0: flags or keywords changed */
  ms_tomb tomb;
} ms_change;

typedef struct ms_user ms_user;
typedef struct ms_handle ms_handle;

typedef struct ms_mailbox {
  char *name;
  ms_user *user;
  int selectable; /* 0: a NOSELECT hierarchy placeholder */
  int detached;   /* deleted or renamed away while handles were open */
  unsigned special_use;
  uint32_t uidvalidity;
  uint32_t uidnext;
  uint32_t recent_from; /* messages with UIDs >= this are unclaimed \Recent */
  uint64_t modseq;      /* HIGHESTMODSEQ */

  ms_msg *msgs;
  size_t count, cap;
  size_t seen, deleted; /* messages with \Seen, with \Deleted */
  uint64_t size;

  char *keywords[MAILPROTO_KEYWORDS_MAX];
  unsigned keyword_count;

  /* Changes newer than what every open handle has seen, in modseq order:
   * entries [log_start, log_len) of log. Kept only while handles exist. */
  ms_change *log;
  size_t log_start, log_len, log_cap;
  size_t log_compact_at; /* live entries that trigger a compaction */

  ms_handle *handles;
  ms_handle *exclusive;
} ms_mailbox;

struct ms_handle {
  mailproto_memstore *store;
  ms_mailbox *mb;
  unsigned flags; /* MAILPROTO_OPEN_* */
  mailproto_store_notify_fn notify;
  void *notify_arg;
  /* What this handle has been told. */
  uint64_t known_modseq;
  uint32_t known_uidnext;
  unsigned known_keywords;
  /* UID ranges that are \Recent in this handle, ascending. */
  mailproto_uid_range *recent;
  size_t recent_count, recent_cap;
  ms_body *read_body; /* keeps the last read's bytes alive */
  /* The messages its last sync reported expunged, ascending: message_get
   * still answers for them until the next sync (a session announces an
   * expunge later, and may fetch the message's size meanwhile). */
  ms_tomb *tombs;
  size_t tomb_count;
  ms_handle *prev, *next;
};

struct ms_user {
  char *name;
  char *password;
  size_t password_len;
  ms_mailbox **boxes; /* sorted by name (strcmp) */
  size_t box_count, box_cap;
  char **subs; /* sorted */
  size_t sub_count, sub_cap;
};

struct mailproto_memstore {
  mailproto_allocator alloc;
  ms_user **users;
  size_t user_count, user_cap;
  uint32_t next_uidvalidity;
  mailproto_datetime (*now)(void *);
  void *clock_arg;
};

/* ---- memstore.c: store-wide helpers ---- */

mailproto_datetime mailproto_memstore_now(mailproto_memstore *s);
/* 0 or LIMIT when the counter is spent. */
int mailproto_memstore_next_uidvalidity(mailproto_memstore *s, uint32_t *out);
void mailproto_memstore_body_unref(mailproto_memstore *s, ms_body *b);
/* Validates an IMAP atom keyword (RFC 3501 9, flag-keyword). */
int mailproto_memstore_keyword_valid(const char *kw);
/* Index of keyword `kw` in the table (case-insensitive), or -1. */
int mailproto_memstore_keyword_find(const ms_mailbox *mb, const char *kw);

/* Keywords a change will add to a mailbox's table: planned (checked against
 * the 64-entry limit), then allocated, then committed, so a failure at any
 * step leaves the table alone. */
typedef struct ms_keyword_plan {
  const char *names[MAILPROTO_KEYWORDS_MAX];
  char *copies[MAILPROTO_KEYWORDS_MAX];
  unsigned count;
} ms_keyword_plan;
/* Starts a plan and adds `keywords` (validated: BAD_NAME, INVALID_ARGUMENT;
 * LIMIT when the table would overflow). With add_new 0, names missing from
 * the table are skipped (removing a keyword nobody has). *mask receives the
 * indices the keywords will have. */
int mailproto_memstore_keywords_plan(const ms_mailbox *mb,
                                     ms_keyword_plan *plan,
                                     const char *const *keywords, size_t count,
                                     int add_new, uint64_t *mask);
/* Index `name` (valid) will have; plans it if new. 0 or LIMIT. */
int mailproto_memstore_keywords_plan_one(const ms_mailbox *mb,
                                         ms_keyword_plan *plan,
                                         const char *name, unsigned *index);
int mailproto_memstore_keywords_alloc(mailproto_memstore *s,
                                      ms_keyword_plan *plan);
/* Appends the planned keywords to the table; returns how many. */
unsigned mailproto_memstore_keywords_commit(ms_mailbox *mb,
                                            ms_keyword_plan *plan);
void mailproto_memstore_keywords_free(mailproto_memstore *s,
                                      ms_keyword_plan *plan);

/* ---- memstore_tree.c: the mailbox tree ---- */

/* The mailbox named `name` (canonical) or NULL. */
ms_mailbox *mailproto_memstore_find(const ms_user *u, const char *name);
/* The selectable mailbox named `name` (any form), or NULL; sets *rc to
 * BAD_NAME or NOT_FOUND when there is none. */
ms_mailbox *mailproto_memstore_find_selectable(const ms_user *u,
                                               const char *name, int *rc);
ms_mailbox *mailproto_memstore_mailbox_new(mailproto_memstore *s, ms_user *u,
                                           const char *name);
void mailproto_memstore_mailbox_free(mailproto_memstore *s, ms_mailbox *mb);
void mailproto_memstore_user_free(mailproto_memstore *s, ms_user *u);
/* Makes a placeholder or new mailbox selectable: fresh UIDVALIDITY. */
int mailproto_memstore_make_selectable(mailproto_memstore *s, ms_mailbox *mb);

/* ---- memstore_open.c: messages and handles ---- */

/* Index of the first message with uid >= `uid`. */
size_t mailproto_memstore_lower_bound_from(const ms_mailbox *mb, size_t from,
                                           uint32_t uid);
static inline size_t mailproto_memstore_lower_bound(const ms_mailbox *mb,
                                                    uint32_t uid) {
  return mailproto_memstore_lower_bound_from(mb, 0, uid);
}
/* Ensures room for `extra` more change-log entries if handles need them. */
int mailproto_memstore_log_reserve(mailproto_memstore *s, ms_mailbox *mb,
                                   size_t extra);
/* Appends to the log (room reserved before); no-op without handles. An
 * expunge passes the message (kept as its tomb), a change NULL. */
void mailproto_memstore_log_add(ms_mailbox *mb, const ms_msg *m,
                                uint64_t modseq, int expunged);
/* Calls the notify function of every handle but `except`. */
void mailproto_memstore_notify(ms_mailbox *mb, const ms_handle *except);
/* Empties a mailbox whose messages leave it (delete, rename): logs them as
 * expunged for its handles (room reserved by the caller), moves them with
 * UIDNEXT, modseq and attributes to `dst` (or frees them if NULL) and
 * notifies every handle. */
void mailproto_memstore_empty(mailproto_memstore *s, ms_mailbox *mb,
                              ms_mailbox *dst);
/* Room the log of `mb` needs to empty it; call before anything changes. */
int mailproto_memstore_reserve_empty(mailproto_memstore *s, ms_mailbox *mb);
/* Counts of a mailbox for `status` (no handle: unclaimed \Recent). */
void mailproto_memstore_fill_status(const ms_mailbox *mb, const ms_handle *h,
                                    mailproto_mailbox_status *st);
/* Adds a message at the end (room reserved before). */
void mailproto_memstore_push(ms_mailbox *mb, const ms_msg *m);

#endif
