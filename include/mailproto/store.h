/*
 * The storage interface: one table of hooks that serves SMTP/LMTP delivery,
 * POP3 and IMAP. A backend (the memory store, the Maildir store, or the
 * application's own) fills a mailproto_store_ops table and pairs it with a
 * context pointer in a mailproto_store.
 *
 * Calling convention of every hook that takes a `mailproto_op *op`:
 *  - The hook either finishes at once, returning 0 or a negative
 *    MAILPROTO_ERR_* code, or returns MAILPROTO_DEFERRED, keeps `op`, and
 *    later calls mailproto_op_complete(op, status) from outside any library
 *    call (typically from the application's event loop). It must not call
 *    mailproto_op_complete() before it has returned.
 *  - Results go into the hook's out-parameters and through the
 *    mailproto_op_add_* functions below; both may be written any time
 *    before the operation completes. Out-parameter memory stays valid until
 *    then. Strings and structs passed to mailproto_op_add_* are copied
 *    during the call.
 *  - Input arguments (names, passwords, the bytes given to `write`) are
 *    valid only during the hook call: a backend that defers must copy what
 *    it still needs.
 *  - If the caller gives up on a deferred operation (its session is freed),
 *    it calls the `cancel` hook; from then on the backend must not touch
 *    `op` or the out-parameters, and must undo or finish the operation on
 *    its own (a cancelled append is aborted). A handle the cancelled hook
 *    was to return (an account, a mailbox, a writer) is the backend's to
 *    release even if it already wrote it to the out-parameter: the caller
 *    treats such out-parameters as unset. Handles the caller passed in stay
 *    the caller's (it still aborts the writer of a cancelled `write`),
 *    except the writer given to a commit, which is gone whatever happens.
 *  - Hooks run on the caller's thread. The shipped backends are not
 *    thread-safe: use one store object per thread, or lock around it.
 *  - Durability: a mutating hook reports success only when its effect is
 *    committed (it will survive a crash, for persistent backends). Nothing
 *    that failed or was aborted may be half-visible to any reader.
 *  - A NULL hook means "not supported": callers treat it as returning
 *    MAILPROTO_ERR_UNSUPPORTED.
 *
 * Error codes a hook returns, and what the protocols make of them:
 *  AUTH_FAILED (bad credentials), NOT_FOUND (no such user/mailbox/message),
 *  EXISTS, BAD_NAME (name not acceptable), HAS_CHILDREN, IN_USE (locked),
 *  PERMISSION, LIMIT (quota, too many keywords), TEMPORARY (try later),
 *  IO (storage failure), NOMEM.
 *
 * Names: mailbox names are UTF-8, hierarchy separator '/', no empty
 * component, no leading or trailing '/', no control characters.
 * "INBOX" in any case names the user's inbox and is reported as "INBOX".
 */
#ifndef MAILPROTO_STORE_H
#define MAILPROTO_STORE_H

#include "mailproto/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The hierarchy separator of mailbox names at this interface. */
#define MAILPROTO_MAILBOX_SEPARATOR '/'
/** Longest mailbox name in bytes (UTF-8, without NUL) a store must accept. */
#define MAILPROTO_MAILBOX_NAME_MAX 512
/** Most keywords one mailbox can define (keyword masks are 64 bits). */
#define MAILPROTO_KEYWORDS_MAX 64
/** Longest secret lookup_secret can return. */
#define MAILPROTO_SECRET_MAX 256

/* System flags of a message (RFC 3501 2.3.2). */
#define MAILPROTO_FLAG_SEEN 0x01u
#define MAILPROTO_FLAG_ANSWERED 0x02u
#define MAILPROTO_FLAG_FLAGGED 0x04u
#define MAILPROTO_FLAG_DELETED 0x08u
#define MAILPROTO_FLAG_DRAFT 0x10u
/** \Recent: read-only, set by the store for messages this open claimed. */
#define MAILPROTO_FLAG_RECENT 0x20u
/** Flags a client may set or clear. */
#define MAILPROTO_FLAGS_SETTABLE 0x1fu

/* Mailbox attributes (RFC 3501 7.2.2, RFC 3348, RFC 5258, RFC 6154). */
#define MAILPROTO_MBOX_NOSELECT 0x0001u
#define MAILPROTO_MBOX_NOINFERIORS 0x0002u
#define MAILPROTO_MBOX_HAS_CHILDREN 0x0004u
#define MAILPROTO_MBOX_HAS_NO_CHILDREN 0x0008u
#define MAILPROTO_MBOX_MARKED 0x0010u
#define MAILPROTO_MBOX_UNMARKED 0x0020u
#define MAILPROTO_MBOX_SUBSCRIBED 0x0040u
#define MAILPROTO_MBOX_NONEXISTENT 0x0080u
#define MAILPROTO_MBOX_SPECIAL_ALL 0x0100u
#define MAILPROTO_MBOX_SPECIAL_ARCHIVE 0x0200u
#define MAILPROTO_MBOX_SPECIAL_DRAFTS 0x0400u
#define MAILPROTO_MBOX_SPECIAL_FLAGGED 0x0800u
#define MAILPROTO_MBOX_SPECIAL_JUNK 0x1000u
#define MAILPROTO_MBOX_SPECIAL_SENT 0x2000u
#define MAILPROTO_MBOX_SPECIAL_TRASH 0x4000u
#define MAILPROTO_MBOX_SPECIAL_USE_MASK 0x7f00u

/** One mailbox, as `list` reports it. */
typedef struct mailproto_mailbox_info {
  size_t struct_size;
  const char *name;    /**< UTF-8, '/'-separated */
  unsigned attributes; /**< MAILPROTO_MBOX_* */
} mailproto_mailbox_info;

/** Counters of one mailbox (STATUS, SELECT, POP3 STAT). */
typedef struct mailproto_mailbox_status {
  size_t struct_size;
  uint32_t messages;
  uint32_t recent;
  uint32_t unseen;
  uint32_t deleted;
  uint32_t uidnext;
  uint32_t uidvalidity;
  uint64_t size; /**< sum of the messages' sizes */
  uint64_t highest_modseq;
} mailproto_mailbox_status;

/** One message of an open mailbox. */
typedef struct mailproto_message_info {
  size_t struct_size;
  uint32_t uid;
  uint32_t flags;               /**< MAILPROTO_FLAG_* */
  uint64_t keywords;            /**< bit i: keyword i of the mailbox */
  uint64_t size;                /**< RFC822.SIZE: octets with CRLF line ends */
  uint64_t stored_size;         /**< octets `read` yields (may use bare LF) */
  mailproto_datetime internal_date;
  uint64_t modseq;              /**< mod-sequence of its last change, >= 1 */
} mailproto_message_info;

/** An inclusive range of UIDs, first <= last. */
typedef struct mailproto_uid_range {
  uint32_t first;
  uint32_t last;
} mailproto_uid_range;

/** How set_flags combines the given flags with a message's flags. */
typedef enum mailproto_flag_mode {
  MAILPROTO_FLAGS_REPLACE = 0,
  MAILPROTO_FLAGS_ADD = 1,
  MAILPROTO_FLAGS_REMOVE = 2
} mailproto_flag_mode;

/* `open` flags. */
/** Open for reading only: no flag changes, no expunge, \Recent untouched. */
#define MAILPROTO_OPEN_READONLY 0x1u
/** Exclusive open (the POP3 maildrop lock, RFC 1939 section 8): fails with
 * MAILPROTO_ERR_IN_USE while another exclusive open of the same mailbox
 * exists, in this process or (for persistent backends) any other. */
#define MAILPROTO_OPEN_EXCLUSIVE 0x2u

/* `list` flags. */
/** Report only subscribed names, including subscribed names that no longer
 * exist (with MAILPROTO_MBOX_NONEXISTENT). */
#define MAILPROTO_LIST_SUBSCRIBED 0x1u

/* `expunge` flags. */
/** Expunge only messages in the ranges that carry \Deleted (IMAP EXPUNGE
 * and UID EXPUNGE). Without it every message in the ranges goes (POP3). */
#define MAILPROTO_EXPUNGE_ONLY_DELETED 0x1u

/** Details of an APPEND. */
typedef struct mailproto_append_info {
  size_t struct_size;
  uint32_t flags;                     /**< MAILPROTO_FLAGS_SETTABLE bits */
  const char *const *keywords;        /**< keyword names, or NULL */
  size_t keyword_count;
  const mailproto_datetime *internal_date; /**< NULL: now */
  uint64_t size_hint;                 /**< expected octets, 0 if unknown */
} mailproto_append_info;

/** Details of an SMTP/LMTP delivery. */
typedef struct mailproto_delivery_info {
  size_t struct_size;
  const char *reverse_path;     /**< MAIL FROM address, "" for <> */
  const char *const *recipients; /**< RCPT TO addresses, one per account */
  uint64_t size_hint;           /**< SIZE= parameter, 0 if none */
} mailproto_delivery_info;

/**
 * Called by a backend when another session or process changed a mailbox
 * that this open handle shows (new, expunged or re-flagged messages).
 * It may be called from inside any hook of any session, so it must only
 * record that a sync is due (and wake the event loop); it must not call
 * into the store or the session.
 */
typedef void (*mailproto_store_notify_fn)(void *notify_arg);

typedef struct mailproto_store_ops {
  size_t struct_size;

  /* ---- accounts ---- */

  /**
   * Checks a password. `authzid` is the identity to act as ("" for the same
   * as `authcid`); a store that does not support proxy authorisation
   * refuses a differing one with AUTH_FAILED. The password is not
   * NUL-terminated and may contain any byte but NUL. On success *account
   * receives a handle the caller passes to later hooks and finally to
   * release_account.
   *
   * The identities and the password arrive prepared (RFC 4616 2): UTF-8
   * beyond ASCII went through SASLprep (RFC 4013: U+00AD and other
   * "commonly mapped to nothing" characters dropped, non-ASCII spaces made
   * SPACE, normalisation form KC, prohibited output and bidi checks);
   * ASCII and non-UTF-8 bytes are as the client sent them. A backend compares them with its stored
   * strings prepared the same way, as the shipped stores' add_user does.
   */
  int (*authenticate)(void *ctx, mailproto_op *op, const char *authzid,
                      const char *authcid, const char *password,
                      size_t password_len, void **account);

  /**
   * Looks up a user's shared secret for challenge-response mechanisms
   * (CRAM-MD5, APOP). Writes at most `secret_size` bytes to `secret` and
   * their number to *secret_len; sets *account as authenticate does. The
   * caller verifies the response; if it is wrong it releases the account.
   */
  int (*lookup_secret)(void *ctx, mailproto_op *op, const char *user,
                       char *secret, size_t secret_size, size_t *secret_len,
                       void **account);

  /**
   * Maps an SMTP/LMTP recipient address to an account (NOT_FOUND: no such
   * user, which SMTP answers with 550 5.1.1).
   */
  int (*lookup_recipient)(void *ctx, mailproto_op *op, const char *address,
                          void **account);

  /** Releases an account handle. Never fails; never deferred. */
  void (*release_account)(void *ctx, void *account);

  /* ---- mailboxes ---- */

  /**
   * Reports, with mailproto_op_add_mailbox(), every mailbox of the account
   * whose name matches `pattern` ('*' matches anything, '%' anything but
   * the separator; see mailproto_mailbox_match()), in any order. Parents
   * that exist only as hierarchy are reported with NOSELECT. Attributes
   * include HAS_CHILDREN/HAS_NO_CHILDREN, SUBSCRIBED and special use.
   */
  int (*list)(void *ctx, mailproto_op *op, void *account, const char *pattern,
              unsigned flags);

  /** Creates a mailbox (and missing parents). EXISTS if it exists. */
  int (*create)(void *ctx, mailproto_op *op, void *account, const char *name,
                unsigned special_use);

  /**
   * Deletes a mailbox and its messages (RFC 3501 6.3.4): if it has
   * children it stays as a NOSELECT parent; deleting a NOSELECT parent
   * with children fails with HAS_CHILDREN. INBOX gives PERMISSION.
   */
  int (*delete_mailbox)(void *ctx, mailproto_op *op, void *account,
                        const char *name);

  /**
   * Renames a mailbox and all its children (RFC 3501 6.3.5). Renaming
   * INBOX moves its messages to the new mailbox and leaves INBOX empty.
   * NOT_FOUND if `from` is missing, EXISTS if `to` exists.
   */
  int (*rename)(void *ctx, mailproto_op *op, void *account, const char *from,
                const char *to);

  /** Adds (`subscribed` != 0) or removes a subscription. The name need not
   * exist. Removing a missing subscription gives NOT_FOUND. */
  int (*subscribe)(void *ctx, mailproto_op *op, void *account,
                   const char *name, int subscribed);

  /** Fills *status for a mailbox (it need not be open). */
  int (*status)(void *ctx, mailproto_op *op, void *account, const char *name,
                mailproto_mailbox_status *status);

  /* ---- an open mailbox ---- */

  /**
   * Opens a mailbox. Reports its keyword table with mailproto_op_add_keyword()
   * and every message, in ascending UID order, with
   * mailproto_op_add_message(); fills *status; sets *mailbox to a handle
   * for the hooks below and `close`. A read-write open claims the
   * mailbox's \Recent messages. `notify` (may be NULL) is called when
   * others change the mailbox, until `close`.
   */
  int (*open)(void *ctx, mailproto_op *op, void *account, const char *name,
              unsigned flags, mailproto_store_notify_fn notify,
              void *notify_arg, void **mailbox,
              mailproto_mailbox_status *status);

  /** Closes an open mailbox (releases an exclusive lock). Never fails;
   * never deferred. */
  void (*close)(void *ctx, void *mailbox);

  /**
   * Reports what changed since this handle's last open or sync, by this
   * handle or anyone else: keywords added to the table
   * (mailproto_op_add_keyword), expunged UIDs (mailproto_op_add_expunged),
   * then new and changed messages in ascending UID order
   * (mailproto_op_add_message; a UID above every one reported before is a
   * new message). Fills *status.
   */
  int (*sync)(void *ctx, mailproto_op *op, void *mailbox,
              mailproto_mailbox_status *status);

  /**
   * Reads part of a message: sets *data and *len to at most `max` bytes
   * starting at `offset` of the stored message (*len 0 at the end). The
   * bytes stay valid until the next hook call on this mailbox handle.
   * EXPUNGED if the message is gone.
   */
  int (*read)(void *ctx, mailproto_op *op, void *mailbox, uint32_t uid,
              uint64_t offset, size_t max, const uint8_t **data, size_t *len);

  /**
   * Changes flags and keywords of the messages in `ranges` (UIDs that do
   * not exist are skipped). Keywords new to the mailbox are added to its
   * table (LIMIT when it is full). If `unchanged_since` is not 0, messages
   * whose modseq is greater are left alone (RFC 7162 3.1.3) and reported
   * with mailproto_op_add_modified(). Changes show up in the next sync.
   */
  int (*set_flags)(void *ctx, mailproto_op *op, void *mailbox,
                   const mailproto_uid_range *ranges, size_t range_count,
                   mailproto_flag_mode mode, uint32_t flags,
                   const char *const *keywords, size_t keyword_count,
                   uint64_t unchanged_since);

  /**
   * Removes the messages in `ranges` (see MAILPROTO_EXPUNGE_ONLY_DELETED).
   * Removed UIDs show up in the next sync.
   */
  int (*expunge)(void *ctx, mailproto_op *op, void *mailbox,
                 const mailproto_uid_range *ranges, size_t range_count,
                 unsigned flags);

  /**
   * Copies (or, with `move` != 0, moves: RFC 6851) the messages in `ranges`
   * to mailbox `dest` of the same account, keeping flags and keywords
   * (not \Recent, which the copies get anew). Reports each source UID with
   * its new UID, ascending, with mailproto_op_add_uid_map(), and sets
   * *dest_uidvalidity. All or nothing. NOT_FOUND if `dest` is missing.
   */
  int (*copy)(void *ctx, mailproto_op *op, void *mailbox,
              const mailproto_uid_range *ranges, size_t range_count,
              const char *dest, int move, uint32_t *dest_uidvalidity);

  /* ---- writing messages ---- */

  /**
   * Starts an APPEND to mailbox `name`. Sets *writer to a handle for
   * `write`, then `append_commit` or `abort`. Nothing is visible before
   * the commit.
   */
  int (*append_begin)(void *ctx, mailproto_op *op, void *account,
                      const char *name, const mailproto_append_info *info,
                      void **writer);

  /**
   * Starts an SMTP/LMTP delivery of one message to `account_count`
   * accounts (one per accepted recipient, in order).
   */
  int (*deliver_begin)(void *ctx, mailproto_op *op, void *const *accounts,
                       size_t account_count,
                       const mailproto_delivery_info *info, void **writer);

  /** Adds bytes to a message being written. */
  int (*write)(void *ctx, mailproto_op *op, void *writer, const uint8_t *data,
               size_t len);

  /**
   * Commits an append; sets the new message's *uid and the mailbox's
   * *uidvalidity (for APPENDUID). The writer is gone afterwards, whatever
   * the result; on failure nothing is visible.
   */
  int (*append_commit)(void *ctx, mailproto_op *op, void *writer,
                       uint32_t *uidvalidity, uint32_t *uid);

  /**
   * Commits a delivery. `results` has one slot per account: 0 or a
   * negative code for that account's own commit. With `all_or_nothing`
   * (SMTP) either every account gets the message or none does; without
   * it (LMTP) each succeeds or fails on its own. Returns 0 if at least
   * the operation ran (see `results`), or a negative code if nothing was
   * delivered. The writer is gone afterwards.
   */
  int (*deliver_commit)(void *ctx, mailproto_op *op, void *writer,
                        int all_or_nothing, int *results);

  /** Abandons a writer; nothing becomes visible. Never fails or defers. */
  void (*abort)(void *ctx, void *writer);

  /**
   * The caller gives up on a deferred operation. Never fails. Afterwards
   * the backend must not touch `op` or its out-parameters.
   */
  void (*cancel)(void *ctx, mailproto_op *op);

  /* ---- optional: a cache of each message's parsed MIME structure ---- */
  /* Added at the end: a backend built against an older header has a
   * shorter struct_size and simply has no cache. Both NULL: no cache (the
   * library parses the message whenever it needs its structure). */

  /**
   * Looks up the bytes last given to cache_put for message `uid` of this
   * open mailbox. Sets *data and *len; the bytes stay valid until the
   * next call into the store. Returns 0, NOT_FOUND (no entry; the
   * normal miss), or another negative code (also taken as a miss). Never
   * deferred and takes no op: a cache that would have to wait should
   * miss. The caller does not trust the bytes: it validates them and, if
   * they are damaged, parses the message again and puts a new entry.
   */
  int (*cache_get)(void *ctx, void *mailbox, uint32_t uid, const uint8_t **data,
                   size_t *len);

  /**
   * Keeps `len` bytes (copied during the call) for message `uid`,
   * replacing any entry. The entry describes the message's bytes, which
   * never change: it may be shared by copies of the message and must go
   * when the message goes. A backend may refuse or drop entries at any
   * time (it is a cache, not storage). `len` 0 (data may be NULL) means
   * "drop": the caller found the entry wrong (the message's bytes did
   * not match it) and the next cache_get must miss. Returns 0 or a
   * negative code, which the caller ignores. Never deferred and takes no
   * op.
   */
  int (*cache_put)(void *ctx, void *mailbox, uint32_t uid, const uint8_t *data,
                   size_t len);

  /* ---- optional: one message of an open mailbox by UID ---- */
  /* Added at the end, like the cache: a backend built against an older
   * header has a shorter struct_size and simply has no lookup. NULL: the
   * caller keeps what open and sync reported (16 bytes per message in an
   * IMAP session); with it, the caller asks here instead. */

  /**
   * Looks up message `uid` of this open mailbox and fills *info as open
   * and sync report it (uid, flags, keywords, size, stored_size,
   * internal_date, modseq); the caller sets info->struct_size first and
   * uses only uid, size, stored_size and internal_date, which never
   * change. Expunged messages this handle knew are still answered (uid,
   * sizes and date; the rest 0) until the sync after the one that
   * reported them, or close: an IMAP session announces such an expunge
   * later and may be asked the message's size until then (RFC 2180 4.1);
   * a backend short of memory may forget them (NOT_FOUND). Returns 0, NOT_FOUND (no such
   * message), or another negative code. Never deferred and takes no op:
   * it answers from what the backend keeps of the open mailbox, in
   * O(log n) time, without I/O.
   */
  int (*message_get)(void *ctx, void *mailbox, uint32_t uid,
                     mailproto_message_info *info);
} mailproto_store_ops;

/** A backend: its hooks and their context. Both are borrowed, not copied:
 * they must outlive every session using them. */
typedef struct mailproto_store {
  const mailproto_store_ops *ops;
  void *ctx;
} mailproto_store;

/* ---- reporting results from inside a hook or before completing ---- */

/** Reports one mailbox (list). Copies it. Returns 0, NOMEM, or
 * INVALID_ARGUMENT if mb->struct_size is not set to the struct's size. */
MAILPROTO_EXTERN int mailproto_op_add_mailbox(mailproto_op *op,
                                              const mailproto_mailbox_info *mb);

/** Reports a message (open, sync). Copies it. Returns 0, NOMEM, or
 * INVALID_ARGUMENT if msg->struct_size is not set to the struct's size. */
MAILPROTO_EXTERN int
mailproto_op_add_message(mailproto_op *op, const mailproto_message_info *msg);

/** Reports keyword `index` of the mailbox's table (open, sync). */
MAILPROTO_EXTERN int mailproto_op_add_keyword(mailproto_op *op, unsigned index,
                                              const char *name);

/** Reports an expunged UID (sync). */
MAILPROTO_EXTERN int mailproto_op_add_expunged(mailproto_op *op, uint32_t uid);

/** Reports a message left alone by an UNCHANGEDSINCE test (set_flags). */
MAILPROTO_EXTERN int mailproto_op_add_modified(mailproto_op *op, uint32_t uid);

/** Reports a copied or moved message's new UID (copy). */
MAILPROTO_EXTERN int mailproto_op_add_uid_map(mailproto_op *op,
                                              uint32_t source_uid,
                                              uint32_t dest_uid);

/* ---- helpers for backends ---- */

/**
 * IMAP LIST matching (RFC 3501 6.3.8) of a UTF-8 `name` against `pattern`:
 * '*' matches zero or more characters, '%' zero or more characters other
 * than MAILPROTO_MAILBOX_SEPARATOR. A pattern starting with "INBOX" (any
 * case) followed by the separator, '*', '%' or its end matches INBOX
 * case-insensitively. A name longer than MAILPROTO_MAILBOX_NAME_MAX never
 * matches. Returns 1 on a match, else 0. Runs in
 * O(len(pattern) * len(name)) time without recursion.
 */
MAILPROTO_EXTERN int mailproto_mailbox_match(const char *pattern,
                                             const char *name);

/**
 * Checks a mailbox name against the rules at the top of this header and
 * MAILPROTO_MAILBOX_NAME_MAX, and rejects components "." and "..". Returns
 * 0 or MAILPROTO_ERR_BAD_NAME.
 */
MAILPROTO_EXTERN int mailproto_mailbox_name_check(const char *name);

/** Returns 1 if `name` is INBOX in any case, else 0. */
MAILPROTO_EXTERN int mailproto_mailbox_is_inbox(const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_STORE_H */
