/* A growable byte buffer with a hard maximum size. */
#ifndef MAILPROTO_CORE_BUFFER_H
#define MAILPROTO_CORE_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/mailproto.h"

typedef struct mailproto_buf {
  const mailproto_allocator *alloc; /* NULL: default */
  uint8_t *data;
  size_t len;
  size_t cap;
  size_t max; /* len never exceeds this */
} mailproto_buf;

/* Prepares an empty buffer; allocates nothing. */
void mailproto_buf_init(mailproto_buf *b, const mailproto_allocator *alloc,
                        size_t max);
void mailproto_buf_free(mailproto_buf *b);

/* Ensures room for `extra` more bytes. Returns 0, BUFFER_FULL if len + extra
 * would pass max, or NOMEM. Grows geometrically. */
int mailproto_buf_reserve(mailproto_buf *b, size_t extra);

/* Appends bytes; same returns as reserve. On failure nothing is appended. */
int mailproto_buf_append(mailproto_buf *b, const void *data, size_t len);
int mailproto_buf_append_byte(mailproto_buf *b, uint8_t byte);
int mailproto_buf_append_str(mailproto_buf *b, const char *s);

/* Removes the first n bytes (n <= len). */
void mailproto_buf_consume(mailproto_buf *b, size_t n);

/* Empties the buffer, keeping its memory. */
static inline void mailproto_buf_clear(mailproto_buf *b) { b->len = 0; }

/* Bytes that can still be appended before max. */
static inline size_t mailproto_buf_room(const mailproto_buf *b) {
  return b->max - b->len;
}

#endif
