/*
 * The in-memory store: a complete backend of store.h that keeps everything
 * in memory. For tests and for embedders that persist mail their own way.
 * One memstore may serve any number of sessions of one thread at once;
 * a change made through one session's handle is reported to the others'
 * watchers (the notify function given to `open`).
 *
 * Recipients (lookup_recipient) are matched by the local part of the
 * address, case-insensitively, against the user names; the domain is
 * ignored. UIDVALIDITY values come from a store-wide counter, so a mailbox
 * deleted and created again never reuses one.
 */
#ifndef MAILPROTO_MEMSTORE_H
#define MAILPROTO_MEMSTORE_H

#include "mailproto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mailproto_memstore mailproto_memstore;

/**
 * Creates an empty memory store. `alloc` (NULL: the C library) is copied
 * and used for all of the store's memory. Returns 0 and sets *out, or
 * MAILPROTO_ERR_NOMEM.
 */
MAILPROTO_EXTERN int mailproto_memstore_new(const mailproto_allocator *alloc,
                                            mailproto_memstore **out);

/**
 * Frees the store and all its mail. Every session using it, every open
 * mailbox, account handle and writer must be gone first.
 */
MAILPROTO_EXTERN void mailproto_memstore_free(mailproto_memstore *store);

/**
 * Adds a user with an INBOX. The password serves PLAIN/LOGIN and is also the
 * shared secret for CRAM-MD5 and APOP. Returns 0, MAILPROTO_ERR_EXISTS,
 * MAILPROTO_ERR_INVALID_ARGUMENT (empty name, name with '@', control
 * characters, or a secret longer than MAILPROTO_SECRET_MAX) or NOMEM.
 */
MAILPROTO_EXTERN int mailproto_memstore_add_user(mailproto_memstore *store,
                                                 const char *name,
                                                 const char *password);

/**
 * Replaces the clock used for internal dates of appended and delivered
 * messages (the default calls time() and reports UTC). For reproducible
 * tests.
 */
MAILPROTO_EXTERN void mailproto_memstore_set_clock(
    mailproto_memstore *store,
    mailproto_datetime (*now)(void *clock_arg), void *clock_arg);

/** Fills *out with the store's hooks and context. */
MAILPROTO_EXTERN void mailproto_memstore_store(mailproto_memstore *store,
                                               mailproto_store *out);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_MEMSTORE_H */
