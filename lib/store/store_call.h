/*
 * The one way the library calls a store. Sessions never touch
 * mailproto_store_ops directly: each wrapper below
 *  - returns MAILPROTO_ERR_UNSUPPORTED when the store, its ops, or the hook
 *    is missing, or when the hook lies beyond ops->struct_size (a backend
 *    compiled against an older header);
 *  - returns MAILPROTO_ERR_STATE if `op` is still pending (one op, one call);
 *  - initialises out-structs (struct_size set, everything else zero) and
 *    clears pointer out-parameters before the call;
 *  - brackets the hook with mailproto_op_begin()/mailproto_op_end(), so the
 *    op is DEFERRED afterwards exactly when MAILPROTO_DEFERRED came back;
 *  - maps a positive return other than MAILPROTO_DEFERRED (a backend bug)
 *    to MAILPROTO_ERR_INTERNAL;
 *  - checks bounded out-values when the call finishes, at once or through
 *    mailproto_op_complete(): a lookup_secret *secret_len above
 *    secret_size, or a read *len above max (or with *data NULL), is
 *    MAILPROTO_ERR_INTERNAL, so callers may trust them (mailproto_op_check).
 * A handle out-parameter (account, mailbox, writer) of a call that is then
 * cancelled is cleared by mailproto_store_call_cancel(): the backend owns
 * it (store.h, `cancel`), so the caller must not release, close or abort
 * it.
 * `kind` is the caller's note of what the op is doing (op->kind).
 * Returns what the hook returned: 0, MAILPROTO_DEFERRED or a negative code.
 */
#ifndef MAILPROTO_STORE_STORE_CALL_H
#define MAILPROTO_STORE_STORE_CALL_H

#include "core/op.h"
#include "mailproto/store.h"

/* ---- accounts ---- */

int mailproto_store_call_authenticate(const mailproto_store *st,
                                      mailproto_op *op, int kind,
                                      const char *authzid, const char *authcid,
                                      const char *password, size_t password_len,
                                      void **account);

int mailproto_store_call_lookup_secret(const mailproto_store *st,
                                       mailproto_op *op, int kind,
                                       const char *user, char *secret,
                                       size_t secret_size, size_t *secret_len,
                                       void **account);

int mailproto_store_call_lookup_recipient(const mailproto_store *st,
                                          mailproto_op *op, int kind,
                                          const char *address, void **account);

/* Does nothing for a NULL account or a store without the hook. */
void mailproto_store_call_release_account(const mailproto_store *st,
                                          void *account);

/* ---- mailboxes ---- */

int mailproto_store_call_list(const mailproto_store *st, mailproto_op *op,
                              int kind, void *account, const char *pattern,
                              unsigned flags);

int mailproto_store_call_create(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name,
                                unsigned special_use);

int mailproto_store_call_delete(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name);

int mailproto_store_call_rename(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *from,
                                const char *to);

int mailproto_store_call_subscribe(const mailproto_store *st, mailproto_op *op,
                                   int kind, void *account, const char *name,
                                   int subscribed);

int mailproto_store_call_status(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name,
                                mailproto_mailbox_status *out);

/* ---- an open mailbox ---- */

int mailproto_store_call_open(const mailproto_store *st, mailproto_op *op,
                              int kind, void *account, const char *name,
                              unsigned flags, mailproto_store_notify_fn notify,
                              void *notify_arg, void **mailbox,
                              mailproto_mailbox_status *status);

/* Does nothing for a NULL mailbox or a store without the hook. */
void mailproto_store_call_close(const mailproto_store *st, void *mailbox);

int mailproto_store_call_sync(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox,
                              mailproto_mailbox_status *status);

int mailproto_store_call_read(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox, uint32_t uid,
                              uint64_t offset, size_t max, const uint8_t **data,
                              size_t *len);

int mailproto_store_call_set_flags(const mailproto_store *st, mailproto_op *op,
                                   int kind, void *mailbox,
                                   const mailproto_uid_range *ranges,
                                   size_t range_count, mailproto_flag_mode mode,
                                   uint32_t flags, const char *const *keywords,
                                   size_t keyword_count,
                                   uint64_t unchanged_since);

int mailproto_store_call_expunge(const mailproto_store *st, mailproto_op *op,
                                 int kind, void *mailbox,
                                 const mailproto_uid_range *ranges,
                                 size_t range_count, unsigned flags);

int mailproto_store_call_copy(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox,
                              const mailproto_uid_range *ranges,
                              size_t range_count, const char *dest, int move,
                              uint32_t *dest_uidvalidity);

/* ---- writing messages ---- */

int mailproto_store_call_append_begin(const mailproto_store *st,
                                      mailproto_op *op, int kind, void *account,
                                      const char *name,
                                      const mailproto_append_info *info,
                                      void **writer);

int mailproto_store_call_deliver_begin(const mailproto_store *st,
                                       mailproto_op *op, int kind,
                                       void *const *accounts,
                                       size_t account_count,
                                       const mailproto_delivery_info *info,
                                       void **writer);

int mailproto_store_call_write(const mailproto_store *st, mailproto_op *op,
                               int kind, void *writer, const uint8_t *data,
                               size_t len);

/* Like the hook, the writer is gone afterwards whatever the result (a
 * backend without the hook gets its `abort` called). */
int mailproto_store_call_append_commit(const mailproto_store *st,
                                       mailproto_op *op, int kind, void *writer,
                                       uint32_t *uidvalidity, uint32_t *uid);

/* `results` has `result_count` slots, one per account of the writer. They
 * start as MAILPROTO_ERR_INTERNAL (so a backend that forgets one never
 * reports a delivery it did not make); when the call fails at once, every
 * slot receives the failure code. The writer is gone afterwards, as with
 * append_commit. */
int mailproto_store_call_deliver_commit(const mailproto_store *st,
                                        mailproto_op *op, int kind,
                                        void *writer, int all_or_nothing,
                                        int *results, size_t result_count);

/* Does nothing for a NULL writer or a store without the hook. */
void mailproto_store_call_abort(const mailproto_store *st, void *writer);

/* ---- the optional MIME structure cache (no op, never deferred) ---- */

/* The cached bytes of message `uid`: 0 with *data and *len set (valid until
 * the next store call), or a negative code (NOT_FOUND: no entry;
 * UNSUPPORTED: no cache hook). *data and *len are cleared first. */
int mailproto_store_call_cache_get(const mailproto_store *st, void *mailbox,
                                   uint32_t uid, const uint8_t **data,
                                   size_t *len);

/* Offers bytes to the cache: 0, UNSUPPORTED, or the backend's code. */
int mailproto_store_call_cache_put(const mailproto_store *st, void *mailbox,
                                   uint32_t uid, const uint8_t *data,
                                   size_t len);

/* ---- the optional message lookup (no op, never deferred) ---- */

/* Message `uid` of an open mailbox into *info (cleared first, struct_size
 * set): 0, NOT_FOUND, UNSUPPORTED (no hook), or the backend's code. An
 * answer for another UID is taken as INTERNAL. */
int mailproto_store_call_message_get(const mailproto_store *st, void *mailbox,
                                     uint32_t uid,
                                     mailproto_message_info *info);
/* Whether the store has the message lookup. */
int mailproto_store_has_message_get(const mailproto_store *st);

/*
 * Gives up on a pending op: calls the store's cancel hook (if it has one),
 * clears the handle out-parameter of the call (the backend releases what
 * it had put there) and returns the op to IDLE, so the owner may reuse or
 * free it. Does nothing for an op that is not pending.
 */
void mailproto_store_call_cancel(const mailproto_store *st, mailproto_op *op);

#endif
