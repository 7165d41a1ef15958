/* The memstore's implementations of the store.h hooks (see store.h for
 * their contracts); memstore.c puts them in the ops table. */
#ifndef MAILPROTO_STORE_MEMSTORE_HOOKS_H
#define MAILPROTO_STORE_MEMSTORE_HOOKS_H

#include "mailproto/store.h"

/* memstore.c */
int mailproto_memstore_hook_authenticate(void *ctx, mailproto_op *op,
                                         const char *authzid,
                                         const char *authcid,
                                         const char *password,
                                         size_t password_len, void **account);
int mailproto_memstore_hook_lookup_secret(void *ctx, mailproto_op *op,
                                          const char *user, char *secret,
                                          size_t secret_size,
                                          size_t *secret_len, void **account);
int mailproto_memstore_hook_lookup_recipient(void *ctx, mailproto_op *op,
                                             const char *address,
                                             void **account);
void mailproto_memstore_hook_release_account(void *ctx, void *account);
void mailproto_memstore_hook_cancel(void *ctx, mailproto_op *op);

/* memstore_tree.c */
int mailproto_memstore_hook_list(void *ctx, mailproto_op *op, void *account,
                                 const char *pattern, unsigned flags);
int mailproto_memstore_hook_create(void *ctx, mailproto_op *op, void *account,
                                   const char *name, unsigned special_use);
int mailproto_memstore_hook_delete(void *ctx, mailproto_op *op, void *account,
                                   const char *name);
int mailproto_memstore_hook_rename(void *ctx, mailproto_op *op, void *account,
                                   const char *from, const char *to);
int mailproto_memstore_hook_subscribe(void *ctx, mailproto_op *op,
                                      void *account, const char *name,
                                      int subscribed);
int mailproto_memstore_hook_status(void *ctx, mailproto_op *op, void *account,
                                   const char *name,
                                   mailproto_mailbox_status *status);

/* memstore_open.c */
int mailproto_memstore_hook_open(void *ctx, mailproto_op *op, void *account,
                                 const char *name, unsigned flags,
                                 mailproto_store_notify_fn notify,
                                 void *notify_arg, void **mailbox,
                                 mailproto_mailbox_status *status);
void mailproto_memstore_hook_close(void *ctx, void *mailbox);
int mailproto_memstore_hook_sync(void *ctx, mailproto_op *op, void *mailbox,
                                 mailproto_mailbox_status *status);
int mailproto_memstore_hook_read(void *ctx, mailproto_op *op, void *mailbox,
                                 uint32_t uid, uint64_t offset, size_t max,
                                 const uint8_t **data, size_t *len);

/* memstore_change.c */
int mailproto_memstore_hook_set_flags(
    void *ctx, mailproto_op *op, void *mailbox,
    const mailproto_uid_range *ranges, size_t range_count,
    mailproto_flag_mode mode, uint32_t flags, const char *const *keywords,
    size_t keyword_count, uint64_t unchanged_since);
int mailproto_memstore_hook_expunge(void *ctx, mailproto_op *op, void *mailbox,
                                    const mailproto_uid_range *ranges,
                                    size_t range_count, unsigned flags);
int mailproto_memstore_hook_copy(void *ctx, mailproto_op *op, void *mailbox,
                                 const mailproto_uid_range *ranges,
                                 size_t range_count, const char *dest, int move,
                                 uint32_t *dest_uidvalidity);

/* memstore_write.c */
int mailproto_memstore_hook_append_begin(void *ctx, mailproto_op *op,
                                         void *account, const char *name,
                                         const mailproto_append_info *info,
                                         void **writer);
int mailproto_memstore_hook_deliver_begin(void *ctx, mailproto_op *op,
                                          void *const *accounts,
                                          size_t account_count,
                                          const mailproto_delivery_info *info,
                                          void **writer);
int mailproto_memstore_hook_write(void *ctx, mailproto_op *op, void *writer,
                                  const uint8_t *data, size_t len);
int mailproto_memstore_hook_append_commit(void *ctx, mailproto_op *op,
                                          void *writer, uint32_t *uidvalidity,
                                          uint32_t *uid);
int mailproto_memstore_hook_deliver_commit(void *ctx, mailproto_op *op,
                                           void *writer, int all_or_nothing,
                                           int *results);
void mailproto_memstore_hook_abort(void *ctx, void *writer);
int mailproto_memstore_hook_cache_get(void *ctx, void *mailbox, uint32_t uid,
                                      const uint8_t **data, size_t *len);
int mailproto_memstore_hook_cache_put(void *ctx, void *mailbox, uint32_t uid,
                                      const uint8_t *data, size_t len);
int mailproto_memstore_hook_message_get(void *ctx, void *mailbox, uint32_t uid,
                                        mailproto_message_info *info);

#endif
