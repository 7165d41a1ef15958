/*
 * The output queue. Bytes already sent stay at the front of the buffer
 * (before `head`) until it is cheaper to move the rest down than to grow,
 * so a slow reader never makes the queue reallocate past its limit.
 */
#include "core/outq.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

/* The longest text mailproto_outq_printf() formats. */
#define OUTQ_PRINTF_MAX 1024

void mailproto_outq_init(mailproto_outq *q, const mailproto_allocator *alloc,
                         size_t limit, size_t watermark,
                         mailproto_outq_send_fn send, void *owner) {
  mailproto_buf_init(&q->buf, alloc, limit);
  q->head = 0;
  q->watermark = watermark < limit ? watermark : limit;
  q->send = send;
  q->owner = owner;
  q->error = 0;
  q->corked = 0;
}

void mailproto_outq_free(mailproto_outq *q) {
  mailproto_buf_free(&q->buf);
  q->head = 0;
}

/* Calls send once; records a failure as the sticky error. */
static int send_once(mailproto_outq *q, const uint8_t *data, size_t len,
                     size_t *sent) {
  *sent = 0;
  int rc = q->send(q->owner, data, len, sent);
  if (rc < 0)
    q->error = rc;
  else if (*sent > len)
    /* The stream position is now unknown; nothing sensible can follow. */
    q->error = MAILPROTO_ERR_CALLBACK_FAILURE;
  return q->error;
}

int mailproto_outq_flush(mailproto_outq *q) {
  if (q->error)
    return q->error;
  size_t pending = mailproto_outq_pending(q);
  if (pending == 0)
    return 0;
  /* One offer per flush: a transport that took less than everything is
   * full, and asking again at once would only cost another syscall. */
  size_t sent;
  if (send_once(q, q->buf.data + q->head, pending, &sent) != 0)
    return q->error;
  q->head += sent;
  if (q->head == q->buf.len) {
    q->head = 0;
    mailproto_buf_clear(&q->buf);
  }
  return 0;
}

/* Room for `len` more bytes, reusing the space of sent bytes before
 * growing. */
static int make_room(mailproto_outq *q, size_t len) {
  if (q->head > 0 && len > q->buf.cap - q->buf.len) {
    mailproto_buf_consume(&q->buf, q->head);
    q->head = 0;
  }
  return mailproto_buf_reserve(&q->buf, len);
}

static int enqueue(mailproto_outq *q, const uint8_t *data, size_t len) {
  int rc = make_room(q, len);
  return rc != 0 ? rc : mailproto_buf_append(&q->buf, data, len);
}

int mailproto_outq_write(mailproto_outq *q, const void *data, size_t len) {
  if (q->error)
    return q->error;
  /* All or nothing: refuse before any byte reaches the transport, so a
   * caller never sees half a response go out. */
  if (len > mailproto_outq_room(q))
    return MAILPROTO_ERR_BUFFER_FULL;
  if (len == 0)
    return 0;

  const uint8_t *p = data;
  if (q->corked || mailproto_outq_pending(q) > 0) {
    int rc = enqueue(q, p, len);
    if (rc != 0)
      return rc;
    return q->corked ? 0 : mailproto_outq_flush(q);
  }

  /* Nothing queued: offer the caller's bytes directly, copy the rest. */
  size_t sent;
  if (send_once(q, p, len, &sent) != 0)
    return q->error;
  if (sent == len)
    return 0;
  int rc = enqueue(q, p + sent, len - sent);
  /* Part of the response is on the wire and the rest is lost: the output
   * stream is broken for good. */
  if (rc != 0 && sent > 0)
    q->error = rc;
  return rc;
}

int mailproto_outq_write2(mailproto_outq *q, const void *a, size_t a_len,
                          const void *b, size_t b_len) {
  if (q->error)
    return q->error;
  size_t len = a_len + b_len;
  if (len < a_len || len > mailproto_outq_room(q))
    return MAILPROTO_ERR_BUFFER_FULL;
  if (len == 0)
    return 0;
  /* Room for both first, so a failure queues neither. */
  if (len > q->buf.cap - q->buf.len) {
    int rc = make_room(q, len);
    if (rc != 0)
      return rc;
  }
  uint8_t *end = q->buf.data + q->buf.len;
  if (a_len)
    memcpy(end, a, a_len);
  if (b_len)
    memcpy(end + a_len, b, b_len);
  q->buf.len += len;
  return q->corked ? 0 : mailproto_outq_flush(q);
}

int mailproto_outq_write_str(mailproto_outq *q, const char *s) {
  return mailproto_outq_write(q, s, strlen(s));
}

int mailproto_outq_printf(mailproto_outq *q, const char *fmt, ...) {
  char text[OUTQ_PRINTF_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* Never send a silently truncated line. */
  if ((size_t)n > OUTQ_PRINTF_MAX)
    return MAILPROTO_ERR_BUFFER_FULL;
  return mailproto_outq_write(q, text, (size_t)n);
}

void mailproto_outq_cork(mailproto_outq *q) {
  q->corked = 1;
}

int mailproto_outq_uncork(mailproto_outq *q) {
  q->corked = 0;
  return mailproto_outq_flush(q);
}

void mailproto_outq_discard(mailproto_outq *q) {
  q->head = 0;
  mailproto_buf_clear(&q->buf);
}

void mailproto_outq_trim(mailproto_outq *q, size_t keep) {
  if (mailproto_outq_pending(q) == 0 && q->buf.cap > keep) {
    mailproto_buf_free(&q->buf);
    q->head = 0;
  }
}
