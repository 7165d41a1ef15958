/*
 * The output queue of the session contract. Responses are appended, then
 * handed to the transport's send function, which may take fewer bytes than
 * offered (even none). What it did not take stays queued, bounded by a hard
 * limit; once the queue holds `watermark` bytes it is congested, and the
 * session stops parsing commands and producing large responses until the
 * application reports the transport writable and the queue drains.
 */
#ifndef MAILPROTO_CORE_OUTQ_H
#define MAILPROTO_CORE_OUTQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"

/* Sets *sent to the number of bytes taken (0..len). Returns 0, or a
 * negative code that ends the session. */
typedef int (*mailproto_outq_send_fn)(void *owner, const uint8_t *data,
                                      size_t len, size_t *sent);

typedef struct mailproto_outq {
  mailproto_buf buf;
  size_t head;      /* bytes of buf already sent */
  size_t watermark; /* congested at or above this many pending bytes */
  mailproto_outq_send_fn send;
  void *owner;
  int error;  /* sticky fatal error from send */
  int corked; /* hold output until uncork (batch many small replies) */
} mailproto_outq;

/* `limit` bounds pending bytes; `watermark` <= limit. */
void mailproto_outq_init(mailproto_outq *q, const mailproto_allocator *alloc,
                         size_t limit, size_t watermark,
                         mailproto_outq_send_fn send, void *owner);
void mailproto_outq_free(mailproto_outq *q);

/* Queues bytes; sends at once unless corked. Returns 0, BUFFER_FULL (over
 * the limit: nothing queued), NOMEM, or the sticky send error. */
int mailproto_outq_write(mailproto_outq *q, const void *data, size_t len);
int mailproto_outq_write_str(mailproto_outq *q, const char *s);
/* Queues two pieces as one write (a line and its CRLF): all or nothing,
 * same returns as mailproto_outq_write(). Both are copied into the queue,
 * so it suits corked batches best. */
int mailproto_outq_write2(mailproto_outq *q, const void *a, size_t a_len,
                          const void *b, size_t b_len);

/* printf-style; the formatted text must fit in 1024 bytes. */
int mailproto_outq_printf(mailproto_outq *q, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Holds output (cork) while a batch of input is processed; uncork sends. */
void mailproto_outq_cork(mailproto_outq *q);
int mailproto_outq_uncork(mailproto_outq *q);

/* Offers pending bytes to send. Returns 0 or the sticky send error. */
int mailproto_outq_flush(mailproto_outq *q);

/* Forgets everything queued (a session that is closing). */
void mailproto_outq_discard(mailproto_outq *q);

/* Gives the buffer back when nothing is pending and it has grown past
 * `keep` bytes: a burst (a long listing, a pipelined batch) must not leave
 * an idle session holding its peak. The next write allocates again. */
void mailproto_outq_trim(mailproto_outq *q, size_t keep);

static inline size_t mailproto_outq_pending(const mailproto_outq *q) {
  return q->buf.len - q->head;
}
static inline int mailproto_outq_congested(const mailproto_outq *q) {
  return mailproto_outq_pending(q) >= q->watermark;
}
/* Bytes that may be queued before the hard limit. */
static inline size_t mailproto_outq_room(const mailproto_outq *q) {
  return q->buf.max - mailproto_outq_pending(q);
}

#endif
