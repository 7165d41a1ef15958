#include "mem.h"

#include <stdint.h>
#include <string.h>

static mailproto_allocator current;
static int replaced;

void mem_set_allocator(const mailproto_allocator *a) {
  replaced = a != NULL;
  if (a)
    current = *a;
}

void *mem_malloc(size_t size) {
  const mailproto_allocator *a =
      replaced ? &current : mailproto_default_allocator();
  return a->malloc(size, a->user_data);
}

void *mem_calloc(size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  void *p = mem_malloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void *mem_realloc(void *ptr, size_t size) {
  const mailproto_allocator *a =
      replaced ? &current : mailproto_default_allocator();
  return a->realloc(ptr, size, a->user_data);
}

void *mem_realloc_array(void *ptr, size_t count, size_t size) {
  if (size != 0 && count > SIZE_MAX / size)
    return NULL;
  return mem_realloc(ptr, count * size);
}

void mem_free(void *ptr) {
  const mailproto_allocator *a =
      replaced ? &current : mailproto_default_allocator();
  a->free(ptr, a->user_data);
}
