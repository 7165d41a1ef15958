/* The heap sort of sort.h. */
#include "core/sort.h"

#include <stdint.h>
#include <string.h>

static void swap(unsigned char *a, unsigned char *b, size_t size) {
  /* Word by word where the size allows (every caller's element so far):
   * fixed-size copies the compiler turns into plain loads and stores. */
  size_t i = 0;
  for (; i + sizeof(uint64_t) <= size; i += sizeof(uint64_t)) {
    uint64_t x, y;
    memcpy(&x, a + i, sizeof x);
    memcpy(&y, b + i, sizeof y);
    memcpy(a + i, &y, sizeof y);
    memcpy(b + i, &x, sizeof x);
  }
  for (; i < size; i++) {
    unsigned char t = a[i];
    a[i] = b[i];
    b[i] = t;
  }
}

/* Moves element `root` down the heap of the first `end` elements. */
static void sift(unsigned char *base, size_t size, size_t root, size_t end,
                 mailproto_sort_cmp cmp, const void *ctx) {
  for (size_t child; (child = 2 * root + 1) < end; root = child) {
    if (child + 1 < end &&
        cmp(base + child * size, base + (child + 1) * size, ctx) < 0)
      child++;
    if (cmp(base + root * size, base + child * size, ctx) >= 0)
      return;
    swap(base + root * size, base + child * size, size);
  }
}

void mailproto_heap_sort(void *base, size_t n, size_t size,
                         mailproto_sort_cmp cmp, const void *ctx) {
  unsigned char *b = base;
  for (size_t i = n / 2; i-- > 0;)
    sift(b, size, i, n, cmp, ctx);
  for (size_t end = n; end-- > 1;) {
    swap(b, b + end * size, size);
    sift(b, size, 0, end, cmp, ctx);
  }
}
