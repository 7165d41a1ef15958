/*
 * A fault-injecting wrapper around any mailproto_store, for tests.
 *
 * Every hook that takes an op runs the inner store's hook into the
 * wrapper's own op and records what it reported. Then either
 *  - (default) the results go to the caller's op at once, exactly as if the
 *    caller had called the inner store itself; or
 *  - with faultstore_defer_all(f, 1), the hook returns MAILPROTO_DEFERRED,
 *    and the next faultstore_run_pending() replays the recorded reports and
 *    out-parameters into the caller's op and completes it, so the caller
 *    sees its results arrive after the hook returned, as from a real
 *    asynchronous store. (If the inner store itself defers, its completion
 *    is passed on the same way.)
 * Faults: fail the N-th call, every call of a named hook, or calls at
 * random; an injected failure never reaches the inner store (an injected
 * append_commit or deliver_commit failure aborts the inner writer, so
 * nothing becomes visible). Failures are delivered deferred when
 * defer_all is on.
 * Cancel is honoured: a cancelled op is dropped and never completed; its
 * inner effects were already applied, except that a writer, account or
 * mailbox handle the caller never received is aborted, released or closed.
 *
 * Differences from the API first proposed (callers may ignore them):
 *  - faultstore_fail_hook() returns int: 0, or -1 for an unknown hook name.
 *  - faultstore_run_pending() returns a negative fatal code if an owner
 *    returned one from its completion (the remaining ops stay pending).
 *
 * Calls are counted per hook that takes an op (release_account, close,
 * abort and cancel are passed through and never fail). Account and mailbox
 * handles are the inner store's own; writers are wrapped. Not thread-safe.
 * All memory comes from the allocator given to faultstore_new().
 */
#ifndef MAILPROTO_TEST_FAULTSTORE_H
#define MAILPROTO_TEST_FAULTSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/store.h"

typedef struct faultstore faultstore;

/* Wraps `inner` (borrowed: it must outlive the faultstore). `a` NULL: the
 * C library. Returns 0, INVALID_ARGUMENT or NOMEM. */
int faultstore_new(const mailproto_store *inner, const mailproto_allocator *a,
                   faultstore **out);

/* Frees the wrapper. Pending ops are dropped as if cancelled. */
void faultstore_free(faultstore *f);

/* Fills *out with the wrapper's hooks. */
void faultstore_store(faultstore *f, mailproto_store *out);

/* Defers every op (on != 0) or answers at once (0, the default). */
void faultstore_defer_all(faultstore *f, int on);

/* Defers only the n-th op call counted since faultstore_new() (1-based);
 * the others answer at once unless defer_all is on. n = 0 turns it off.
 * Pausing each operation once in turn finds sessions that resume wrongly
 * from one particular wait. */
void faultstore_defer_nth(faultstore *f, unsigned long n);

/* Fails the n-th op call counted since faultstore_new() (1-based, as
 * faultstore_calls() counts) with `error`. n = 0 turns it off. */
void faultstore_fail_nth(faultstore *f, unsigned long n, int error);

/* Fails every call of the named hook (the field names of
 * mailproto_store_ops: "append_commit", "deliver_commit", "expunge", ...;
 * "delete" works for "delete_mailbox") with `error`; error 0 stops it.
 * Returns 0, or -1 if no hook has that name. */
int faultstore_fail_hook(faultstore *f, const char *hook, int error);

/* Fails each call with probability percent/100, from a reproducible
 * generator seeded with `seed`. percent 0 turns it off. */
void faultstore_fail_random(faultstore *f, uint32_t seed, unsigned percent,
                            int error);

/*
 * One event-loop turn: completes, in call order, every op that was ready
 * when the turn began (ops deferred while completing wait for the next
 * turn). Returns how many it completed, or a negative fatal code an
 * owner's completion returned.
 */
int faultstore_run_pending(faultstore *f);

/* Ops not yet completed (deferred by the wrapper or by the inner store). */
size_t faultstore_pending(const faultstore *f);

/* Op calls so far (including failed ones). */
unsigned long faultstore_calls(const faultstore *f);

#endif
