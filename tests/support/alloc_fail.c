#include "support/alloc_fail.h"

#include <stdlib.h>
#include <string.h>

/* A header before each block records its size, so live bytes and peaks are
 * exact; max_align_t keeps the user part aligned. */
typedef union header {
  size_t size;
  max_align_t align;
} header;

static int should_fail(alloc_fail *af) {
  af->calls++;
  if (af->fail_at != 0 && af->calls == af->fail_at) {
    af->failures++;
    return 1;
  }
  return 0;
}

static void account(alloc_fail *af, size_t add, size_t remove) {
  af->live_bytes = af->live_bytes + add - remove;
  if (af->live_bytes > af->peak_bytes)
    af->peak_bytes = af->live_bytes;
}

static void *af_malloc(size_t size, void *user_data) {
  alloc_fail *af = user_data;
  if (should_fail(af) || size > (size_t)-1 - sizeof(header))
    return NULL;
  header *h = malloc(sizeof(header) + size);
  if (!h)
    return NULL;
  h->size = size;
  af->live++;
  account(af, size, 0);
  return h + 1;
}

static void af_free(void *ptr, void *user_data) {
  alloc_fail *af = user_data;
  if (!ptr)
    return;
  header *h = (header *)ptr - 1;
  af->live--;
  account(af, 0, h->size);
  /* Scribble so use-after-free shows up even without ASan. */
  memset(ptr, 0xdd, h->size);
  free(h);
}

static void *af_realloc(void *ptr, size_t size, void *user_data) {
  alloc_fail *af = user_data;
  if (!ptr)
    return af_malloc(size, user_data);
  if (should_fail(af) || size > (size_t)-1 - sizeof(header))
    return NULL;
  header *old = (header *)ptr - 1;
  size_t old_size = old->size;
  /* Always move, so callers that keep stale pointers fail loudly. */
  header *h = malloc(sizeof(header) + size);
  if (!h)
    return NULL;
  h->size = size;
  memcpy(h + 1, ptr, old_size < size ? old_size : size);
  memset(ptr, 0xdd, old_size);
  free(old);
  account(af, size, old_size);
  return h + 1;
}

void alloc_fail_init(alloc_fail *af, unsigned long fail_at) {
  memset(af, 0, sizeof *af);
  af->allocator.malloc = af_malloc;
  af->allocator.realloc = af_realloc;
  af->allocator.free = af_free;
  af->allocator.user_data = af;
  af->fail_at = fail_at;
}
