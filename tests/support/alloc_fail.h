/*
 * A counting allocator for tests: it tracks live allocations (so a test can
 * assert nothing leaked) and can fail the N-th allocation, for the
 * allocation-failure loop (run a scenario failing allocation 1, 2, 3, ...
 * until it completes without reaching the failure).
 */
#ifndef MAILPROTO_TEST_ALLOC_FAIL_H
#define MAILPROTO_TEST_ALLOC_FAIL_H

#include <stddef.h>

#include "mailproto/mailproto.h"

typedef struct alloc_fail {
  mailproto_allocator allocator; /* pass &af.allocator to the library */
  unsigned long fail_at;         /* 1-based; 0 = never fail */
  unsigned long calls;           /* malloc + realloc calls so far */
  unsigned long failures;        /* failures injected so far */
  long live;                     /* allocations not yet freed */
  size_t live_bytes;
  size_t peak_bytes;
} alloc_fail;

void alloc_fail_init(alloc_fail *af, unsigned long fail_at);

/* True if the failure point was reached in this run. */
static inline int alloc_fail_triggered(const alloc_fail *af) {
  return af->failures > 0;
}

#endif
