/*
 * Line splitting for every protocol. Only LF ends a line: a CR on its own
 * is data (flagged BARE_CR), never a line end, so a peer cannot make two
 * parsers disagree about where a line stops (the "SMTP smuggling" class).
 *
 * Each input byte is looked at once: memchr finds the LF in the new input
 * only, and the flags of a partial line are gathered chunk by chunk, so a
 * line dribbled in byte by byte costs O(length), not O(length^2).
 */
#include "core/line.h"

#include "core/alloc.h"

#include <string.h>

/* A reader keeps the buffer of its longest line for reuse; above this size
 * it gives the memory back once that line is done, so one long IMAP line
 * does not make an idle session expensive. */
#define LINE_KEEP_BYTES 4096u

void mailproto_line_reader_init(mailproto_line_reader *r,
                                const mailproto_allocator *alloc, size_t max) {
  mailproto_buf_init(&r->partial, alloc, max);
  r->max = max;
  r->flags = 0;
  r->overflow = 0;
  r->pending_cr = 0;
}

/* A partial line may be half of a SASL response or a password: wipe it
 * rather than leave it in freed or reused memory. */
static void wipe_partial(mailproto_line_reader *r) {
  if (r->partial.data)
    mailproto_secure_zero(r->partial.data, r->partial.cap);
}

void mailproto_line_reader_free(mailproto_line_reader *r) {
  wipe_partial(r);
  mailproto_buf_free(&r->partial);
  r->flags = 0;
  r->overflow = 0;
  r->pending_cr = 0;
}

void mailproto_line_reader_reset(mailproto_line_reader *r) {
  wipe_partial(r);
  mailproto_buf_clear(&r->partial);
  r->partial.max = r->max;
  r->flags = 0;
  r->overflow = 0;
  r->pending_cr = 0;
}

/* Whether some of the current line has been consumed already. Every
 * consumed byte is either kept (partial.len) or dropped (overflow). */
static int mid_line(const mailproto_line_reader *r) {
  return r->partial.len > 0 || r->overflow;
}

void mailproto_line_reader_trim(mailproto_line_reader *r, size_t keep) {
  if (mid_line(r) || r->partial.cap <= keep)
    return;
  wipe_partial(r);
  mailproto_buf_free(&r->partial);
}

void mailproto_line_reader_set_max(mailproto_line_reader *r, size_t max) {
  /* partial.max is the limit of the line in progress; r->max is copied
   * into it when the next line starts. */
  r->max = max;
}

/* The whole line is inside `in`: report it in place, without copying. */
static void line_in_place(const mailproto_line_reader *r, const uint8_t *in,
                          size_t lf, mailproto_line *line) {
  int crlf = lf > 0 && in[lf - 1] == '\r';
  size_t content = lf - (size_t)crlf;
  unsigned flags = crlf ? 0 : MAILPROTO_LINE_BARE_LF;
  if (memchr(in, '\r', content))
    flags |= MAILPROTO_LINE_BARE_CR;
  if (memchr(in, '\0', content))
    flags |= MAILPROTO_LINE_HAS_NUL;
  /* max counts the line end, and the LF alone needs one byte. */
  if (lf >= r->max) {
    flags |= MAILPROTO_LINE_TOO_LONG;
    if (content > r->max)
      content = r->max;
  }
  line->data = in;
  line->len = content;
  line->flags = flags;
}

int mailproto_line_read(mailproto_line_reader *r, const uint8_t *in, size_t len,
                        size_t *consumed, mailproto_line *line) {
  *consumed = 0;
  if (len == 0)
    return 0;

  const uint8_t *lf_at = memchr(in, '\n', len);
  size_t seg = lf_at ? (size_t)(lf_at - in) : len;

  if (!mid_line(r)) {
    /* A new line starts: a changed limit applies from here on. */
    if (r->partial.cap > LINE_KEEP_BYTES)
      mailproto_buf_free(&r->partial);
    r->partial.max = r->max;
    if (lf_at) {
      line_in_place(r, in, seg, line);
      *consumed = seg + 1;
      return 1;
    }
  }

  /* Carry the segment over: keep what fits under the limit, drop the rest
   * (the line is then too long whatever follows). Copy first, so that on
   * NOMEM the reader is unchanged and the caller may retry. */
  size_t room = mailproto_buf_room(&r->partial);
  size_t keep = seg < room ? seg : room;
  int rc = mailproto_buf_append(&r->partial, in, keep);
  if (rc != 0)
    return rc;
  if (keep < seg)
    r->overflow = 1;

  /* A CR is bare when a byte other than LF follows it. Inside the segment
   * that holds for every CR but the last byte; the last byte's fate is
   * known only once the next byte arrives (pending_cr). */
  if (seg > 0) {
    if (r->pending_cr || (seg > 1 && memchr(in, '\r', seg - 1)))
      r->flags |= MAILPROTO_LINE_BARE_CR;
    r->pending_cr = in[seg - 1] == '\r';
    if (memchr(in, '\0', seg))
      r->flags |= MAILPROTO_LINE_HAS_NUL;
  }

  if (!lf_at) {
    *consumed = len;
    return 0;
  }

  unsigned flags = r->flags;
  size_t content = r->partial.len;
  if (!r->pending_cr)
    flags |= MAILPROTO_LINE_BARE_LF;
  /* Kept bytes == limit means at least max bytes plus the LF: too long. */
  if (r->overflow || r->partial.len >= r->partial.max)
    flags |= MAILPROTO_LINE_TOO_LONG;
  /* The CR of CRLF is not content; when it was dropped by the limit,
   * every kept byte is content. */
  if (r->pending_cr && !r->overflow)
    content--;

  line->data = r->partial.len ? r->partial.data : in;
  line->len = content;
  line->flags = flags;
  *consumed = seg + 1;

  /* The bytes stay in place until the next call reuses the buffer. */
  mailproto_buf_clear(&r->partial);
  r->flags = 0;
  r->overflow = 0;
  r->pending_cr = 0;
  return 1;
}
