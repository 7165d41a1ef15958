#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "support/overread.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int overread_init(overread_guard *g, size_t max_len) {
  long page = sysconf(_SC_PAGESIZE);
  g->page = page > 0 ? (size_t)page : 4096;
  g->readable = (max_len + g->page - 1) / g->page * g->page;
  if (g->readable == 0)
    g->readable = g->page;
  void *p = mmap(NULL, g->readable + g->page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    return -1;
  g->region = p;
  if (mprotect(g->region + g->readable, g->page, PROT_NONE) != 0) {
    munmap(p, g->readable + g->page);
    return -1;
  }
  return 0;
}

void overread_free(overread_guard *g) {
  if (g->region)
    munmap(g->region, g->readable + g->page);
  g->region = NULL;
}

const uint8_t *overread_place(overread_guard *g, const void *data,
                              size_t len) {
  if (len > g->readable)
    return NULL;
  uint8_t *dst = g->region + g->readable - len;
  if (len)
    memcpy(dst, data, len);
  return dst;
}
