/* Allocation through a mailproto_allocator, with overflow-checked sizes. */
#ifndef MAILPROTO_CORE_ALLOC_H
#define MAILPROTO_CORE_ALLOC_H

#include <stddef.h>

#include "mailproto/mailproto.h"

/* NULL means the default allocator in every function below. */
void *mailproto_mem_malloc(const mailproto_allocator *a, size_t size);
/* Zeroed array of n * size bytes; NULL on overflow or failure. */
void *mailproto_mem_calloc(const mailproto_allocator *a, size_t n,
                           size_t size);
void *mailproto_mem_realloc(const mailproto_allocator *a, void *ptr,
                            size_t size);
/* Grows an array to n elements of `size` bytes; NULL on overflow. */
void *mailproto_mem_reallocarray(const mailproto_allocator *a, void *ptr,
                                 size_t n, size_t size);
void mailproto_mem_free(const mailproto_allocator *a, void *ptr);
/* Copies len bytes and adds a NUL. */
char *mailproto_mem_strndup(const mailproto_allocator *a, const char *s,
                            size_t len);
char *mailproto_mem_strdup(const mailproto_allocator *a, const char *s);

/* Sets *out = a + b; returns 0, or -1 on overflow. */
static inline int mailproto_size_add(size_t a, size_t b, size_t *out) {
  if (a > (size_t)-1 - b)
    return -1;
  *out = a + b;
  return 0;
}

/* Sets *out = a * b; returns 0, or -1 on overflow. */
static inline int mailproto_size_mul(size_t a, size_t b, size_t *out) {
  if (b != 0 && a > (size_t)-1 / b)
    return -1;
  *out = a * b;
  return 0;
}

/* Overwrites secrets so the compiler cannot drop the stores. */
void mailproto_secure_zero(void *ptr, size_t len);

#endif
