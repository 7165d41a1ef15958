#include "core/buffer.h"

#include <string.h>

#include "core/alloc.h"

void mailproto_buf_init(mailproto_buf *b, const mailproto_allocator *alloc,
                        size_t max) {
  b->alloc = alloc;
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
}

void mailproto_buf_free(mailproto_buf *b) {
  mailproto_mem_free(b->alloc, b->data);
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

int mailproto_buf_reserve(mailproto_buf *b, size_t extra) {
  size_t need;
  if (mailproto_size_add(b->len, extra, &need) != 0 || need > b->max)
    return MAILPROTO_ERR_BUFFER_FULL;
  if (need <= b->cap)
    return 0;
  /* Double, starting at 64 bytes, but never past max: the bound is what
   * keeps a hostile peer from growing the buffer. */
  size_t cap = b->cap ? b->cap : (b->max < 64 ? b->max : 64);
  while (cap < need)
    cap = cap > b->max / 2 ? b->max : cap * 2;
  uint8_t *p = mailproto_mem_realloc(b->alloc, b->data, cap);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int mailproto_buf_append(mailproto_buf *b, const void *data, size_t len) {
  if (len == 0)
    return 0;
  int rc = mailproto_buf_reserve(b, len);
  if (rc != 0)
    return rc;
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

int mailproto_buf_append_byte(mailproto_buf *b, uint8_t byte) {
  return mailproto_buf_append(b, &byte, 1);
}

int mailproto_buf_append_str(mailproto_buf *b, const char *s) {
  return mailproto_buf_append(b, s, strlen(s));
}

void mailproto_buf_consume(mailproto_buf *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}
