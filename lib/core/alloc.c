#include "core/alloc.h"

#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t size, void *user_data) {
  (void)user_data;
  return malloc(size);
}

static void *libc_realloc(void *ptr, size_t size, void *user_data) {
  (void)user_data;
  return realloc(ptr, size);
}

static void libc_free(void *ptr, void *user_data) {
  (void)user_data;
  free(ptr);
}

static const mailproto_allocator libc_allocator = {libc_malloc, libc_realloc,
                                                   libc_free, NULL};

const mailproto_allocator *mailproto_default_allocator(void) {
  return &libc_allocator;
}

static const mailproto_allocator *pick(const mailproto_allocator *a) {
  return a ? a : &libc_allocator;
}

void *mailproto_mem_malloc(const mailproto_allocator *a, size_t size) {
  a = pick(a);
  /* malloc(0) may return NULL legitimately; never ask for zero bytes so
   * NULL always means failure. */
  return a->malloc(size ? size : 1, a->user_data);
}

void *mailproto_mem_calloc(const mailproto_allocator *a, size_t n,
                           size_t size) {
  size_t total;
  if (mailproto_size_mul(n, size, &total) != 0)
    return NULL;
  void *p = mailproto_mem_malloc(a, total);
  if (p)
    memset(p, 0, total);
  return p;
}

void *mailproto_mem_realloc(const mailproto_allocator *a, void *ptr,
                            size_t size) {
  a = pick(a);
  return a->realloc(ptr, size ? size : 1, a->user_data);
}

void *mailproto_mem_reallocarray(const mailproto_allocator *a, void *ptr,
                                 size_t n, size_t size) {
  size_t total;
  if (mailproto_size_mul(n, size, &total) != 0)
    return NULL;
  return mailproto_mem_realloc(a, ptr, total);
}

void mailproto_mem_free(const mailproto_allocator *a, void *ptr) {
  if (ptr) {
    a = pick(a);
    a->free(ptr, a->user_data);
  }
}

char *mailproto_mem_strndup(const mailproto_allocator *a, const char *s,
                            size_t len) {
  size_t total;
  if (mailproto_size_add(len, 1, &total) != 0)
    return NULL;
  char *p = mailproto_mem_malloc(a, total);
  if (p) {
    if (len)
      memcpy(p, s, len);
    p[len] = '\0';
  }
  return p;
}

char *mailproto_mem_strdup(const mailproto_allocator *a, const char *s) {
  return mailproto_mem_strndup(a, s, strlen(s));
}

void mailproto_secure_zero(void *ptr, size_t len) {
  volatile unsigned char *p = ptr;
  while (len--)
    *p++ = 0;
}
