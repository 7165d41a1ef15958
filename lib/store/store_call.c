#include "store/store_call.h"

#include <stddef.h>
#include <string.h>

/* A hook exists only if the backend's table is long enough to hold it: a
 * backend built against an older header passes a shorter struct, and
 * reading past its end would be reading someone else's memory. */
#define HOOK(st, name)                                                         \
  ((st) && (st)->ops &&                                                        \
           (st)->ops->struct_size >=                                           \
               offsetof(mailproto_store_ops, name) + sizeof((st)->ops->name)   \
       ? (st)->ops->name                                                       \
       : NULL)

static int check_op(const mailproto_op *op) {
  if (!op)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* One op carries one call; reusing it while a call is in flight would
   * let two completions race for the same owner. */
  if (op->state != MAILPROTO_OP_IDLE)
    return MAILPROTO_ERR_STATE;
  return 0;
}

static int finish(mailproto_op *op, int rc) {
  if (rc > 0 && rc != MAILPROTO_DEFERRED)
    rc = MAILPROTO_ERR_INTERNAL;
  /* A deferred call is checked when it completes (mailproto_op_complete). */
  if (rc != MAILPROTO_DEFERRED)
    rc = mailproto_op_check(op, rc);
  return mailproto_op_end(op, rc);
}

/* Begins the op for a hook that hands over a handle through `handle`. */
static void begin_handle(mailproto_op *op, int kind, void **handle) {
  mailproto_op_begin(op, kind);
  op->outs.handle = handle;
}

/* Begins the op for a hook that reports a length bounded by `max`. */
static void begin_len(mailproto_op *op, int kind, const size_t *len,
                      size_t max) {
  mailproto_op_begin(op, kind);
  op->outs.len = len;
  op->outs.len_max = max;
}

static void init_status(mailproto_mailbox_status *st) {
  if (st) {
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
  }
}

static void clear_ptr(void **p) {
  if (p)
    *p = NULL;
}

int mailproto_store_call_authenticate(const mailproto_store *st,
                                      mailproto_op *op, int kind,
                                      const char *authzid, const char *authcid,
                                      const char *password, size_t password_len,
                                      void **account) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  clear_ptr(account);
  if (!HOOK(st, authenticate))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_handle(op, kind, account);
  return finish(op, st->ops->authenticate(st->ctx, op, authzid, authcid,
                                          password, password_len, account));
}

int mailproto_store_call_lookup_secret(const mailproto_store *st,
                                       mailproto_op *op, int kind,
                                       const char *user, char *secret,
                                       size_t secret_size, size_t *secret_len,
                                       void **account) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (secret_len)
    *secret_len = 0;
  clear_ptr(account);
  if (!HOOK(st, lookup_secret))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_len(op, kind, secret_len, secret_size);
  op->outs.handle = account;
  return finish(op, st->ops->lookup_secret(st->ctx, op, user, secret,
                                           secret_size, secret_len, account));
}

int mailproto_store_call_lookup_recipient(const mailproto_store *st,
                                          mailproto_op *op, int kind,
                                          const char *address, void **account) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  clear_ptr(account);
  if (!HOOK(st, lookup_recipient))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_handle(op, kind, account);
  return finish(op, st->ops->lookup_recipient(st->ctx, op, address, account));
}

void mailproto_store_call_release_account(const mailproto_store *st,
                                          void *account) {
  if (account && HOOK(st, release_account))
    st->ops->release_account(st->ctx, account);
}

int mailproto_store_call_list(const mailproto_store *st, mailproto_op *op,
                              int kind, void *account, const char *pattern,
                              unsigned flags) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, list))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->list(st->ctx, op, account, pattern, flags));
}

int mailproto_store_call_create(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name,
                                unsigned special_use) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, create))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->create(st->ctx, op, account, name, special_use));
}

int mailproto_store_call_delete(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, delete_mailbox))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->delete_mailbox(st->ctx, op, account, name));
}

int mailproto_store_call_rename(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *from,
                                const char *to) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, rename))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->rename(st->ctx, op, account, from, to));
}

int mailproto_store_call_subscribe(const mailproto_store *st, mailproto_op *op,
                                   int kind, void *account, const char *name,
                                   int subscribed) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, subscribe))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->subscribe(st->ctx, op, account, name, subscribed));
}

int mailproto_store_call_status(const mailproto_store *st, mailproto_op *op,
                                int kind, void *account, const char *name,
                                mailproto_mailbox_status *out) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  init_status(out);
  if (!HOOK(st, status))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->status(st->ctx, op, account, name, out));
}

int mailproto_store_call_open(const mailproto_store *st, mailproto_op *op,
                              int kind, void *account, const char *name,
                              unsigned flags, mailproto_store_notify_fn notify,
                              void *notify_arg, void **mailbox,
                              mailproto_mailbox_status *status) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  clear_ptr(mailbox);
  init_status(status);
  if (!HOOK(st, open))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_handle(op, kind, mailbox);
  return finish(op, st->ops->open(st->ctx, op, account, name, flags, notify,
                                  notify_arg, mailbox, status));
}

void mailproto_store_call_close(const mailproto_store *st, void *mailbox) {
  if (mailbox && HOOK(st, close))
    st->ops->close(st->ctx, mailbox);
}

int mailproto_store_call_sync(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox,
                              mailproto_mailbox_status *status) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  init_status(status);
  if (!HOOK(st, sync))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->sync(st->ctx, op, mailbox, status));
}

int mailproto_store_call_read(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox, uint32_t uid,
                              uint64_t offset, size_t max, const uint8_t **data,
                              size_t *len) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (data)
    *data = NULL;
  if (len)
    *len = 0;
  if (!HOOK(st, read))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_len(op, kind, len, max);
  op->outs.data = data;
  return finish(
      op, st->ops->read(st->ctx, op, mailbox, uid, offset, max, data, len));
}

int mailproto_store_call_set_flags(const mailproto_store *st, mailproto_op *op,
                                   int kind, void *mailbox,
                                   const mailproto_uid_range *ranges,
                                   size_t range_count, mailproto_flag_mode mode,
                                   uint32_t flags, const char *const *keywords,
                                   size_t keyword_count,
                                   uint64_t unchanged_since) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, set_flags))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->set_flags(st->ctx, op, mailbox, ranges,
                                       range_count, mode, flags, keywords,
                                       keyword_count, unchanged_since));
}

int mailproto_store_call_expunge(const mailproto_store *st, mailproto_op *op,
                                 int kind, void *mailbox,
                                 const mailproto_uid_range *ranges,
                                 size_t range_count, unsigned flags) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, expunge))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(
      op, st->ops->expunge(st->ctx, op, mailbox, ranges, range_count, flags));
}

int mailproto_store_call_copy(const mailproto_store *st, mailproto_op *op,
                              int kind, void *mailbox,
                              const mailproto_uid_range *ranges,
                              size_t range_count, const char *dest, int move,
                              uint32_t *dest_uidvalidity) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (dest_uidvalidity)
    *dest_uidvalidity = 0;
  if (!HOOK(st, copy))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->copy(st->ctx, op, mailbox, ranges, range_count,
                                  dest, move, dest_uidvalidity));
}

int mailproto_store_call_append_begin(const mailproto_store *st,
                                      mailproto_op *op, int kind, void *account,
                                      const char *name,
                                      const mailproto_append_info *info,
                                      void **writer) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  clear_ptr(writer);
  if (!HOOK(st, append_begin))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_handle(op, kind, writer);
  return finish(
      op, st->ops->append_begin(st->ctx, op, account, name, info, writer));
}

int mailproto_store_call_deliver_begin(const mailproto_store *st,
                                       mailproto_op *op, int kind,
                                       void *const *accounts,
                                       size_t account_count,
                                       const mailproto_delivery_info *info,
                                       void **writer) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  clear_ptr(writer);
  if (!HOOK(st, deliver_begin))
    return MAILPROTO_ERR_UNSUPPORTED;
  begin_handle(op, kind, writer);
  return finish(op, st->ops->deliver_begin(st->ctx, op, accounts, account_count,
                                           info, writer));
}

int mailproto_store_call_write(const mailproto_store *st, mailproto_op *op,
                               int kind, void *writer, const uint8_t *data,
                               size_t len) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (!HOOK(st, write))
    return MAILPROTO_ERR_UNSUPPORTED;
  mailproto_op_begin(op, kind);
  return finish(op, st->ops->write(st->ctx, op, writer, data, len));
}

int mailproto_store_call_append_commit(const mailproto_store *st,
                                       mailproto_op *op, int kind, void *writer,
                                       uint32_t *uidvalidity, uint32_t *uid) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  if (uidvalidity)
    *uidvalidity = 0;
  if (uid)
    *uid = 0;
  if (!HOOK(st, append_commit)) {
    /* The writer is gone after a commit whatever the result; keep that
     * promise for a backend that cannot commit. */
    mailproto_store_call_abort(st, writer);
    return MAILPROTO_ERR_UNSUPPORTED;
  }
  mailproto_op_begin(op, kind);
  return finish(op,
                st->ops->append_commit(st->ctx, op, writer, uidvalidity, uid));
}

int mailproto_store_call_deliver_commit(const mailproto_store *st,
                                        mailproto_op *op, int kind,
                                        void *writer, int all_or_nothing,
                                        int *results, size_t result_count) {
  int rc = check_op(op);
  if (rc != 0)
    return rc;
  for (size_t i = 0; results && i < result_count; i++)
    results[i] = MAILPROTO_ERR_INTERNAL;
  if (!HOOK(st, deliver_commit)) {
    mailproto_store_call_abort(st, writer);
    rc = MAILPROTO_ERR_UNSUPPORTED;
  } else {
    mailproto_op_begin(op, kind);
    rc = finish(op, st->ops->deliver_commit(st->ctx, op, writer, all_or_nothing,
                                            results));
  }
  for (size_t i = 0; rc < 0 && results && i < result_count; i++)
    results[i] = rc;
  return rc;
}

void mailproto_store_call_abort(const mailproto_store *st, void *writer) {
  if (writer && HOOK(st, abort))
    st->ops->abort(st->ctx, writer);
}

void mailproto_store_call_cancel(const mailproto_store *st, mailproto_op *op) {
  if (!op || op->state != MAILPROTO_OP_DEFERRED)
    return;
  if (HOOK(st, cancel))
    st->ops->cancel(st->ctx, op);
  /* A handle the backend wrote before deferring was never handed over:
   * releasing it is the cancel hook's job, not the caller's. */
  if (op->outs.handle)
    *op->outs.handle = NULL;
  op->state = MAILPROTO_OP_IDLE;
  op->outs = (mailproto_op_outs){NULL, NULL, 0, NULL};
}

int mailproto_store_call_cache_get(const mailproto_store *st, void *mailbox,
                                   uint32_t uid, const uint8_t **data,
                                   size_t *len) {
  if (!data || !len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *data = NULL;
  *len = 0;
  if (!mailbox || !HOOK(st, cache_get))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = st->ops->cache_get(st->ctx, mailbox, uid, data, len);
  if (rc > 0)
    rc = MAILPROTO_ERR_INTERNAL;
  /* A hit must name bytes; anything else is a miss the caller can use. */
  if (rc == 0 && !*data && *len)
    rc = MAILPROTO_ERR_INTERNAL;
  if (rc != 0) {
    *data = NULL;
    *len = 0;
  }
  return rc;
}

int mailproto_store_call_cache_put(const mailproto_store *st, void *mailbox,
                                   uint32_t uid, const uint8_t *data,
                                   size_t len) {
  if (!mailbox || !HOOK(st, cache_put))
    return MAILPROTO_ERR_UNSUPPORTED;
  if (!data && len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = st->ops->cache_put(st->ctx, mailbox, uid, data, len);
  return rc > 0 ? MAILPROTO_ERR_INTERNAL : rc;
}

int mailproto_store_has_message_get(const mailproto_store *st) {
  return HOOK(st, message_get) != NULL;
}

int mailproto_store_call_message_get(const mailproto_store *st, void *mailbox,
                                     uint32_t uid,
                                     mailproto_message_info *info) {
  if (!info)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  memset(info, 0, sizeof *info);
  info->struct_size = sizeof *info;
  if (!mailbox || !HOOK(st, message_get))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = st->ops->message_get(st->ctx, mailbox, uid, info);
  if (rc > 0)
    rc = MAILPROTO_ERR_INTERNAL;
  /* The caller indexes by UID: an answer about another message would put
   * one message's size on another. */
  if (rc == 0 && info->uid != uid)
    rc = MAILPROTO_ERR_INTERNAL;
  if (rc != 0) {
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
  }
  return rc;
}
