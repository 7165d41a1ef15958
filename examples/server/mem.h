/*
 * The server's own allocations go through one replaceable allocator (the
 * library's mailproto_allocator type), so its tests can fail the N-th
 * allocation and check that nothing leaks. The default is the C library's.
 */
#ifndef MAILPROTO_SERVER_MEM_H
#define MAILPROTO_SERVER_MEM_H

#include <stddef.h>

#include "mailproto/core.h"

/* Replaces the allocator (NULL: back to malloc/realloc/free). Not while
 * anything allocated with the previous one is alive. */
void mem_set_allocator(const mailproto_allocator *a);

void *mem_malloc(size_t size);
/* Zeroed; NULL also when count * size overflows. */
void *mem_calloc(size_t count, size_t size);
void *mem_realloc(void *ptr, size_t size);
/* `count` elements of `size`: NULL when the product overflows. */
void *mem_realloc_array(void *ptr, size_t count, size_t size);
void mem_free(void *ptr);

#endif
