/* The plumbing every protocol session shares (see session.h). */
#include "core/session.h"

#include <string.h>

#include "core/alloc.h"

void mailproto_session_init_sized(void *dst, size_t struct_size,
                                  const void *defaults, size_t size) {
  if (!dst || struct_size < sizeof(size_t))
    return;
  /* A caller built against an older header has a shorter struct. */
  size_t n = struct_size < size ? struct_size : size;
  if (defaults)
    memcpy(dst, defaults, n);
  else
    memset(dst, 0, n);
  *(size_t *)dst = n;
}

int mailproto_session_copy_sized(void *dst, size_t dst_size, const void *src,
                                 size_t min_size) {
  size_t n = *(const size_t *)src;
  if (n < min_size)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* Fields a newer caller knows and we do not are left behind; fields we
   * know and an older caller does not keep their defaults. */
  memcpy(dst, src, n < dst_size ? n : dst_size);
  *(size_t *)dst = dst_size;
  return 0;
}

int mailproto_session_copy_strings(const mailproto_allocator *alloc,
                                   const char **const fields[], size_t n,
                                   char **block) {
  size_t total = 1;
  for (size_t k = 0; k < n; k++)
    total += *fields[k] ? strlen(*fields[k]) + 1 : 0;
  char *p = mailproto_mem_malloc(alloc, total);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  *block = p;
  for (size_t k = 0; k < n; k++) {
    if (!*fields[k])
      continue;
    size_t len = strlen(*fields[k]) + 1;
    memcpy(p, *fields[k], len);
    *fields[k] = p;
    p += len;
  }
  return 0;
}

void mailproto_session_init(mailproto_session_io *io,
                            const mailproto_session_setup *setup) {
  memset(io, 0, sizeof *io);
  mailproto_line_reader_init(&io->lines, setup->alloc, setup->max_line);
  mailproto_outq_init(&io->out, setup->alloc, setup->out_limit,
                      setup->watermark, setup->send, setup->owner);
  mailproto_op_init(&io->op, setup->sink, setup->owner);
  io->start_tls = setup->start_tls;
  io->owner = setup->owner;
  io->secure = setup->secure != 0;
}

void mailproto_session_free(mailproto_session_io *io) {
  io->op.state = MAILPROTO_OP_IDLE;
  mailproto_line_reader_free(&io->lines);
  mailproto_outq_free(&io->out);
}

int mailproto_session_sent(ptrdiff_t n, size_t len, size_t *sent) {
  /* A fatal code of ours is passed on; anything else negative, or a claim
   * to have taken more than offered, is the callback failing: the stream
   * position is unknown from then on. */
  if (n < 0)
    return n >= MAILPROTO_ERR_CLOSED && mailproto_is_fatal((int)n)
               ? (int)n
               : MAILPROTO_ERR_CALLBACK_FAILURE;
  if ((size_t)n > len)
    return MAILPROTO_ERR_CALLBACK_FAILURE;
  *sent = (size_t)n;
  return 0;
}

int mailproto_session_callback_error(int rc) {
  return mailproto_is_fatal(rc) ? rc : MAILPROTO_ERR_CALLBACK_FAILURE;
}

int mailproto_session_fail(mailproto_session_io *io, int code) {
  if (!mailproto_is_fatal(code))
    code = MAILPROTO_ERR_INTERNAL;
  if (!io->fatal)
    io->fatal = code;
  mailproto_outq_discard(&io->out);
  return io->fatal;
}

int mailproto_session_start(mailproto_session_io *io) {
  if (io->fatal)
    return io->fatal;
  if (io->started)
    return MAILPROTO_ERR_STATE;
  io->started = 1;
  mailproto_outq_cork(&io->out);
  return 0;
}

int mailproto_session_enter(mailproto_session_io *io) {
  if (io->fatal)
    return io->fatal;
  if (!io->started)
    return MAILPROTO_ERR_STATE;
  mailproto_outq_cork(&io->out);
  return 0;
}

int mailproto_session_resume(mailproto_session_io *io) {
  if (io->fatal)
    return io->fatal;
  mailproto_outq_cork(&io->out);
  return 0;
}

void mailproto_session_trim(mailproto_session_io *io, size_t keep) {
  mailproto_outq_trim(&io->out, keep);
  mailproto_line_reader_trim(&io->lines, keep);
}

int mailproto_session_settle(mailproto_session_io *io, int busy) {
  if (io->fatal)
    return io->fatal;
  if (mailproto_outq_pending(&io->out) != 0)
    return 0;
  if (io->tls == MAILPROTO_TLS_FLUSH) {
    /* RFC 3207 4, RFC 2595 4: the handshake begins right after the
     * go-ahead's CRLF. The state changes first, so the callback may
     * report the transport secure at once. */
    io->tls = MAILPROTO_TLS_WAIT;
    int rc = io->start_tls ? io->start_tls(io->owner) : 0;
    if (rc < 0)
      return mailproto_session_fail(io, mailproto_session_callback_error(rc));
  }
  if (!busy && !mailproto_op_pending(&io->op))
    mailproto_session_trim(io, MAILPROTO_SESSION_KEEP);
  return 0;
}

int mailproto_session_leave(mailproto_session_io *io, int rc, int busy) {
  int sent = mailproto_outq_uncork(&io->out);
  if (rc >= 0 && sent < 0)
    rc = sent;
  if (rc < 0)
    return mailproto_session_fail(io, rc);
  return mailproto_session_settle(io, busy);
}

int mailproto_session_flush(mailproto_session_io *io) {
  if (io->fatal)
    return io->fatal;
  if (!io->started)
    return MAILPROTO_ERR_STATE;
  int rc = mailproto_outq_flush(&io->out);
  return rc < 0 ? mailproto_session_fail(io, rc) : 0;
}

int mailproto_session_can_read(const mailproto_session_io *io) {
  if (!io->started || io->fatal || mailproto_op_pending(&io->op))
    return 0;
  return io->tls != MAILPROTO_TLS_OFF || !mailproto_outq_congested(&io->out);
}

void mailproto_session_tls_begin(mailproto_session_io *io) {
  io->tls = MAILPROTO_TLS_FLUSH;
  mailproto_line_reader_reset(&io->lines);
}

int mailproto_session_tls_done(mailproto_session_io *io) {
  if (!io->started) {
    io->secure = 1;
    return 0;
  }
  if (io->tls != MAILPROTO_TLS_WAIT)
    return MAILPROTO_ERR_STATE;
  /* Nothing read in the clear survives into the secure session. */
  io->tls = MAILPROTO_TLS_OFF;
  io->secure = 1;
  mailproto_line_reader_reset(&io->lines);
  return 0;
}

int mailproto_session_verb_is(const char *text, size_t len, const char *word) {
  size_t i = 0;
  for (; i < len && word[i]; i++) {
    char c = text[i];
    if (c >= 'a' && c <= 'z')
      c = (char)(c - 'a' + 'A');
    if (c != word[i])
      return 0;
  }
  return i == len && word[i] == '\0';
}

int mailproto_session_want_write(const mailproto_session_io *io, int more) {
  return io->started && !io->fatal &&
         (mailproto_outq_pending(&io->out) > 0 || more);
}

int mailproto_session_closed(const mailproto_session_io *io, int closing) {
  return io->fatal || (closing && mailproto_outq_pending(&io->out) == 0 &&
                       !mailproto_op_pending(&io->op));
}

int mailproto_session_pending(const mailproto_session_io *io) {
  return !io->fatal && mailproto_op_pending(&io->op);
}
