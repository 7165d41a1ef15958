/*
 * A heap sort whose comparison gets a context (C11's qsort passes none,
 * and qsort_r is not portable): O(n log n) comparisons in the worst case
 * and no memory beyond the array. Not stable: callers that need a
 * deterministic order break ties in the comparison.
 */
#ifndef MAILPROTO_CORE_SORT_H
#define MAILPROTO_CORE_SORT_H

#include <stddef.h>

/* Negative, zero or positive as *a sorts before, with or after *b. */
typedef int (*mailproto_sort_cmp)(const void *a, const void *b,
                                  const void *ctx);

/* Sorts `n` elements of `size` bytes at `base` into ascending order. */
void mailproto_heap_sort(void *base, size_t n, size_t size,
                         mailproto_sort_cmp cmp, const void *ctx);

#endif
