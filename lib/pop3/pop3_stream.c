/*
 * Multi-line responses made as the transport drains (RFC 1939 3): RETR
 * and TOP read the message from the store a chunk at a time and never
 * hold more of it than the output queue takes; LIST and UIDL write one
 * scan line at a time.
 *
 * Message bytes go out with CRLF line ends whatever the store holds: a
 * bare LF or a bare CR each end a line and are sent as CRLF, so a message
 * stored with Unix line ends is sent as RFC 5322 wants it and its size
 * matches the CRLF size LIST reports. Lines starting with "." are
 * byte-stuffed, and the response always ends with CRLF "." CRLF, also
 * when the message lacks a final line end.
 *
 * The first read happens before the +OK: a message that cannot be read
 * gets -ERR, not a +OK and an empty body. For a client that did not send
 * UTF8 the header is also scanned before the +OK (RFC 6856 2.1: nothing
 * beyond ASCII goes to it as is): a header with 8-bit bytes gets
 * "-ERR [UTF8]". A header longer than one read is read once more from
 * its start after the scan; the scan stops after 1 MiB.
 *
 * A read that fails later cannot be reported in-band, so the session ends
 * without the final "." and the client sees a cut response, never a
 * wrong one that looks complete.
 */
#include <string.h>

#include "pop3/pop3_internal.h"
#include "store/store_call.h"

static int read_more(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  st->data = NULL;
  st->len = 0;
  return mailproto_pop3_after_op(
      s, POP3_OP_READ,
      mailproto_store_call_read(
          &s->store, &s->io.op, POP3_OP_READ, s->drop.handle, st->uid,
          st->offset, s->config.output_watermark, &st->data, &st->len));
}

int mailproto_pop3_stream_message(mailproto_pop3 *s, size_t index, int top,
                                  uint64_t lines) {
  pop3_stream *st = &s->stream;
  memset(st, 0, sizeof *st);
  st->kind = POP3_STREAM_MESSAGE;
  st->uid = s->drop.msgs[index].uid;
  st->number = (uint32_t)(index + 1);
  st->top = top != 0;
  st->lines_left = lines;
  st->line_start = 1;
  st->scanning = !s->utf8 && !s->config.send_8bit_headers;
  st->scan_start = 1;
  return read_more(s);
}

enum scan_result { SCAN_MORE, SCAN_CLEAN, SCAN_8BIT };

/* How much of a message the header scan reads at most (RFC 5322 sets no
 * limit on a header; real ones are a few KiB, 1 MiB is absurd). */
#define POP3_HEADER_SCAN_MAX ((uint64_t)1 << 20)

/* Scans read bytes for an 8-bit byte up to the end of the header (the
 * first empty line; CRLF, a bare LF or a bare CR each end a line, as for
 * TOP). */
static enum scan_result scan_header(pop3_stream *st, const uint8_t *p,
                                    size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (st->scan_cr) {
      st->scan_cr = 0;
      if (c == '\n')
        continue; /* the LF of a CRLF: that line end was counted */
    }
    if (c == '\r' || c == '\n') {
      if (st->scan_start)
        return SCAN_CLEAN;
      st->scan_start = 1;
      st->scan_cr = c == '\r';
      continue;
    }
    if (c >= 0x80)
      return SCAN_8BIT;
    st->scan_start = 0;
  }
  return SCAN_MORE;
}

/* One read's worth of the scan; returns 1 when the scan needs the next
 * read before the +OK, 0 when the stream may go on, or a negative code
 * (the -ERR went out). */
static int scan_step(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  enum scan_result r =
      st->len == 0 ? SCAN_CLEAN : scan_header(st, st->data, st->len);
  if (r == SCAN_8BIT) {
    st->kind = POP3_STREAM_NONE;
    st->data = NULL;
    st->len = 0;
    int rc = mailproto_pop3_err(
        s, "[UTF8] Message header is not ASCII; send UTF8 first");
    return rc < 0 ? rc : 2;
  }
  if (r == SCAN_MORE && st->offset + st->len < POP3_HEADER_SCAN_MAX) {
    /* The header goes on past this read: the next one. */
    st->offset += st->len;
    st->len = 0;
    st->data = NULL;
    st->scan_reread = 1;
    return 1;
  }
  /* Clean, or a "header" past POP3_HEADER_SCAN_MAX: a message without a
   * blank line is all header, and reading all of it before the +OK (with
   * nothing sent meanwhile) would stall the session on a huge one. */
  st->scanning = 0;
  if (st->scan_reread) {
    /* The first bytes are gone: read the message again from its start. */
    st->offset = 0;
    st->len = 0;
    st->data = NULL;
    return 1;
  }
  return 0;
}

int mailproto_pop3_stream_listing(mailproto_pop3 *s,
                                  enum pop3_stream_kind kind) {
  pop3_stream *st = &s->stream;
  memset(st, 0, sizeof *st);
  st->kind = kind;
  return 0;
}

int mailproto_pop3_stream_read_done(mailproto_pop3 *s, int rc) {
  pop3_stream *st = &s->stream;
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc != 0) {
    int announced = st->announced;
    st->kind = POP3_STREAM_NONE;
    st->data = NULL;
    st->len = 0;
    if (announced) {
      mailproto_pop3_close(s);
      return 0;
    }
    if (rc == MAILPROTO_ERR_EXPUNGED || rc == MAILPROTO_ERR_NOT_FOUND)
      return mailproto_pop3_err(s, "[SYS/PERM] Message no longer available");
    if (rc == MAILPROTO_ERR_TEMPORARY || rc == MAILPROTO_ERR_IO)
      return mailproto_pop3_err(s, "[SYS/TEMP] Cannot read message");
    return mailproto_pop3_err(s, "[SYS/PERM] Cannot read message");
  }
  if (st->scanning) {
    int scan = scan_step(s);
    if (scan != 0)
      return scan < 0 ? scan : 0;
  }
  /* store_call checked the length against what was asked for. */
  st->offset += st->len;
  int out = 0;
  if (!st->announced) {
    st->announced = 1;
    uint64_t size = s->drop.msgs[st->number - 1].size;
    out = st->top ? mailproto_pop3_ok(s, "Top of message follows")
                  : mailproto_pop3_printf(s, "+OK %llu octet%s\r\n",
                                          (unsigned long long)size,
                                          size == 1 ? "" : "s");
  }
  st->eof = st->len == 0;
  return out;
}

/* The terminating line; a last line without a line end gets one. */
static int finish(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  int rc = st->line_start ? 0 : mailproto_outq_write(&s->io.out, "\r\n", 2);
  st->kind = POP3_STREAM_NONE;
  st->data = NULL;
  st->len = 0;
  return rc == 0 ? mailproto_outq_write(&s->io.out, ".\r\n", 3) : rc;
}

static void advance(pop3_stream *st, size_t n) {
  st->data += n;
  st->len -= n;
}

/* A line ended. TOP counts it: the header ends at the first empty line
 * (RFC 1939 7: "the headers of the message, the blank line separating the
 * headers from the body"), then body lines count down. Returns 1 when TOP
 * has sent all it should. */
static int line_ended(pop3_stream *st) {
  unsigned char empty = st->line_start;
  st->line_start = 1;
  if (!st->top)
    return 0;
  if (!st->in_body)
    st->in_body = empty;
  else if (st->lines_left > 0)
    st->lines_left--;
  return st->in_body && st->lines_left == 0;
}

/* Where a span of message bytes that go out unchanged stops. */
enum span_stop {
  SPAN_MORE, /* the span may go on: no byte after it needs a change */
  SPAN_EOL,  /* the byte after it is a CR or LF to send as CRLF */
  SPAN_DONE  /* TOP has sent all it should */
};

/* What one emit() learnt about LFs in the read: `at` is the first LF at
 * or after every position searched since (`found`), or the end of the
 * searched bytes, none of which is an LF. So no byte is searched for LF
 * twice, however many bare CRs a long line holds. */
typedef struct lf_mark {
  const uint8_t *at; /* NULL: nothing searched yet */
  int found;
} lf_mark;

/* The first LF in p[0..n), or NULL. */
static const uint8_t *find_lf(lf_mark *m, const uint8_t *p, size_t n) {
  const uint8_t *end = p + n;
  if (m->at && m->at >= p) {
    if (m->found)
      return m->at < end ? m->at : NULL;
    if (m->at >= end)
      return NULL;
    p = m->at;
  }
  const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
  m->at = lf ? lf : end;
  m->found = lf != NULL;
  return lf;
}

/*
 * The bytes of p[0..n) that go out as they are: whole lines that end in
 * CRLF with no other CR, up to a line that starts with "." (stuffed
 * first), then the text of a last line up to its first CR or LF. Per line
 * one memchr finds the LF and one over the same line the first CR; the
 * line is plain when that CR comes right before the LF. Lines are counted
 * for TOP as they pass. Returns the span's length; *stop says why it
 * ended.
 */
static size_t plain_span(pop3_stream *st, lf_mark *m, const uint8_t *p,
                         size_t n, enum span_stop *stop) {
  size_t pos = 0;
  for (;;) {
    const uint8_t *lf = find_lf(m, p + pos, n - pos);
    size_t end = lf ? (size_t)(lf - p) : n;
    const uint8_t *cr = memchr(p + pos, '\r', end - pos);
    size_t at = cr ? (size_t)(cr - p) : end;
    if (at > pos)
      st->line_start = 0;
    if (!lf || at + 1 != end) {
      *stop = at < n ? SPAN_EOL : SPAN_MORE;
      return at;
    }
    pos = end + 1;
    if (line_ended(st)) {
      *stop = SPAN_DONE;
      return pos;
    }
    if (pos == n || p[pos] == '.') {
      *stop = SPAN_MORE;
      return pos;
    }
  }
}

/* Sends the bytes of the last read while the queue is below its
 * watermark; each step writes at most the room left plus 2 bytes. */
static int emit(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  mailproto_outq *q = &s->io.out;
  lf_mark mark = {NULL, 0};
  int rc = 0;
  while (rc == 0 && st->len > 0 && !mailproto_outq_congested(q)) {
    const uint8_t *p = st->data;
    if (st->skip_lf) {
      st->skip_lf = 0;
      if (*p == '\n') {
        advance(st, 1);
        continue;
      }
    }
    if (st->line_start && *p == '.') {
      /* RFC 1939 3: byte-stuff the termination octet. */
      st->line_start = 0;
      rc = mailproto_outq_write(q, ".", 1);
      continue;
    }
    size_t room = q->watermark - mailproto_outq_pending(q);
    enum span_stop stop;
    size_t run =
        plain_span(st, &mark, p, st->len < room ? st->len : room, &stop);
    if (stop != SPAN_EOL) {
      rc = mailproto_outq_write(q, p, run);
      advance(st, run);
      if (rc == 0 && stop == SPAN_DONE)
        return finish(s);
      continue;
    }
    /* A bare CR or LF ends the line too, sent as CRLF together with the
     * text before it; the LF of a CRLF pair cut by the end of the read (or
     * of the room) is dropped when it comes. */
    st->skip_lf = p[run] == '\r' ? 1 : 0;
    rc = mailproto_outq_write2(q, p, run, "\r\n", 2);
    advance(st, run + 1);
    if (rc == 0 && line_ended(st))
      return finish(s);
  }
  return rc;
}

static int listing_line(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  const pop3_maildrop *d = &s->drop;
  while (st->next < d->count && d->msgs[st->next].deleted)
    st->next++;
  if (st->next >= d->count) {
    st->kind = POP3_STREAM_NONE;
    return mailproto_outq_write(&s->io.out, ".\r\n", 3);
  }
  size_t i = st->next++;
  if (st->kind == POP3_STREAM_LIST)
    return mailproto_pop3_printf(s, "%zu %llu\r\n", i + 1,
                                 (unsigned long long)d->msgs[i].size);
  char uid[17];
  mailproto_pop3_drop_uid(s, i, uid);
  return mailproto_pop3_printf(s, "%zu %s\r\n", i + 1, uid);
}

int mailproto_pop3_produce(mailproto_pop3 *s) {
  pop3_stream *st = &s->stream;
  int rc = 0;
  while (rc == 0 && mailproto_pop3_streaming(s) &&
         !mailproto_op_pending(&s->io.op) &&
         !mailproto_outq_congested(&s->io.out)) {
    if (st->kind != POP3_STREAM_MESSAGE)
      rc = listing_line(s);
    else if (st->len > 0)
      rc = emit(s);
    else if (st->eof)
      rc = finish(s);
    else
      rc = read_more(s);
  }
  return rc;
}
