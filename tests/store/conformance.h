/*
 * The store conformance suite: every promise of include/mailproto/store.h,
 * checked against any backend. Tests reach the store only through the
 * lib/store/store_call.h wrappers (as the sessions do), with an op whose
 * sink records every report, and wait for deferred operations by calling
 * the backend's turn() until they complete. They test only what store.h
 * promises, never a backend's internals, so later backends (Maildir) run
 * it unchanged.
 */
#ifndef MAILPROTO_TESTS_STORE_CONFORMANCE_H
#define MAILPROTO_TESTS_STORE_CONFORMANCE_H

#include <check.h>

#include "mailproto/store.h"

typedef struct conformance_backend {
  /* Shown in failure messages. */
  const char *name;
  /*
   * Creates a fresh, empty store with the users alice (password "secret")
   * and bob (password "hunter2"), each with an empty INBOX and nothing
   * else. Fills *out with its hooks; *handle is passed back to turn and
   * destroy. Returns 0 or a negative code.
   */
  int (*create)(void *arg, mailproto_store *out, void **handle);
  /* Frees what create made. Every handle, account and writer is gone. */
  void (*destroy)(void *handle);
  /*
   * One event-loop turn: completes pending deferred operations. Returns
   * how many it completed (0 is fine while work is in flight elsewhere).
   * NULL for backends that never defer.
   */
  int (*turn)(void *handle);
  void *arg;
} conformance_backend;

/*
 * Builds a Check suite named `suite_name` running every conformance test
 * against `b`. The descriptor is copied (at most 8 backends per process).
 * More test cases may be added to the returned suite.
 */
Suite *conformance_suite(const char *suite_name, const conformance_backend *b);

/* Adds the conformance test cases for `b` to an existing suite (test case
 * names carry the backend's name), so one suite can check several. */
void conformance_add_cases(Suite *s, const conformance_backend *b);

#endif
