/*
 * Fuzzes the IMAP command reader of lib/imap/imap_reader.h. The first
 * four bytes choose:
 *   byte 0  bits 0-1: limits (tiny, small, default-like, LITERAL-);
 *           bits 2-7: the chunk size for the second run (1..64)
 *   byte 1-3  decision bits for the literals, two per literal, cycled:
 *           0 accept, 1 stream, 2 reject, 3 accept
 * The rest is the client's byte stream. Oracles:
 *  - the events are the same whether the stream is fed whole or in
 *    chunks (what a session replies must not depend on packet
 *    boundaries);
 *  - memory stays within the configured buffers (line + command);
 *  - a streamed literal hands out exactly the announced bytes;
 *  - every complete command goes through the parser without harm;
 *  - after reset nothing is buffered, and free leaks nothing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_reader.h"
#include "support/alloc_fail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

typedef struct trace {
  uint8_t *log; /* a digest of the events: type, lengths, data */
  size_t len, cap;
  uint32_t decisions;
  unsigned next;
  uint64_t stream_left; /* bytes still due for the streamed literal */
  int streaming;
} trace;

static void put(trace *t, const void *d, size_t n) {
  if (t->len + n > t->cap) {
    size_t cap = (t->len + n) * 2 + 64;
    uint8_t *p = realloc(t->log, cap);
    require(p != NULL);
    t->log = p;
    t->cap = cap;
  }
  memcpy(t->log + t->len, d, n);
  t->len += n;
}

static void put_u64(trace *t, uint64_t v) {
  put(t, &v, sizeof v);
}

static void event(trace *t, mailproto_imap_reader *r, mailproto_imap_parser *p,
                  const mailproto_imap_event *ev) {
  uint8_t type = (uint8_t)ev->type;
  /* RAW chunks depend on the feeding; only their concatenation counts. */
  if (ev->type != MAILPROTO_IMAP_EVENT_RAW)
    put(t, &type, 1);
  switch (ev->type) {
  case MAILPROTO_IMAP_EVENT_COMMAND: {
    put_u64(t, ev->len);
    put(t, ev->data, ev->len);
    put(t, &ev->continued, sizeof ev->continued);
    mailproto_imap_command cmd;
    int rc = mailproto_imap_parse(p, ev->data, ev->len, &cmd);
    require(rc == 0 || rc == MAILPROTO_ERR_SYNTAX ||
            rc == MAILPROTO_ERR_TOO_LONG);
    put(t, &rc, sizeof rc);
    break;
  }
  case MAILPROTO_IMAP_EVENT_LITERAL: {
    put_u64(t, ev->len);
    put(t, ev->data, ev->len);
    put_u64(t, ev->literal_size);
    put(t, &ev->literal_fits, sizeof ev->literal_fits);
    put(t, ev->tag, ev->tag_len);
    unsigned d = (t->decisions >> (2 * (t->next++ % 12))) & 3u;
    int rc;
    if (d == 1) {
      rc = mailproto_imap_reader_stream(r);
      t->streaming = 1;
      t->stream_left = ev->literal_size;
    } else if (d == 2) {
      rc = mailproto_imap_reader_reject(r);
    } else {
      rc = mailproto_imap_reader_accept(r);
      require(rc == 0 ? ev->literal_fits : rc == MAILPROTO_ERR_TOO_LONG);
      if (rc != 0)
        rc = mailproto_imap_reader_reject(r);
    }
    require(rc == 0);
    break;
  }
  case MAILPROTO_IMAP_EVENT_RAW:
    require(t->streaming && ev->len > 0 && ev->len <= t->stream_left);
    t->stream_left -= ev->len;
    put(t, ev->data, ev->len);
    break;
  case MAILPROTO_IMAP_EVENT_RAW_END:
    require(t->streaming && t->stream_left == 0);
    t->streaming = 0;
    break;
  case MAILPROTO_IMAP_EVENT_LINE:
    put_u64(t, ev->len);
    put(t, ev->data, ev->len);
    break;
  case MAILPROTO_IMAP_EVENT_ERROR:
    require(ev->text != NULL && ev->text[0] != '\0');
    put(t, ev->text, strlen(ev->text));
    put(t, ev->tag, ev->tag_len);
    break;
  default:
    abort();
  }
}

static void run(const mailproto_imap_reader_limits *lim, uint32_t decisions,
                const uint8_t *in, size_t len, size_t chunk, trace *t) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_reader r;
  mailproto_imap_reader_init(&r, &af.allocator, lim);
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  memset(t, 0, sizeof *t);
  t->decisions = decisions;
  size_t pos = 0;
  while (pos < len) {
    size_t end = chunk && chunk < len - pos ? pos + chunk : len;
    while (pos < end) {
      size_t used;
      mailproto_imap_event ev;
      int rc = mailproto_imap_reader_next(&r, in + pos, end - pos, &used, &ev);
      require(rc == 0 || rc == 1);
      require(used <= end - pos);
      pos += used;
      if (rc == 0) {
        require(pos == end);
        break;
      }
      event(t, &r, &p, &ev);
      /* IDLE-like commands switch to a raw line, as sessions do. */
      if (ev.type == MAILPROTO_IMAP_EVENT_COMMAND && ev.len >= 5 &&
          memcmp(ev.data + ev.len - 5, " IDLE", 5) == 0)
        require(mailproto_imap_reader_raw_line(&r) == 0);
    }
    /* The line and the command buffer are the only memory. */
    require(af.live_bytes <= lim->max_line + 2 + lim->max_command);
  }
  size_t used;
  mailproto_imap_event ev;
  while (mailproto_imap_reader_next(&r, in, 0, &used, &ev) == 1)
    event(t, &r, &p, &ev);
  mailproto_imap_reader_reset(&r);
  require(!mailproto_imap_reader_busy(&r));
  require(mailproto_imap_reader_buffered(&r) == 0);
  mailproto_imap_reader_free(&r);
  mailproto_imap_parser_free(&p);
  require(af.live == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const mailproto_imap_reader_limits limits[4] = {
      {16, 16, 48, 2, 0},
      {64, 256, 1024, 4, 0},
      {1024, 4096, 16384, 16, 0},
      {256, 8192, 16384, 8, 1}};
  if (size < 4 || size > 65536)
    return 0;
  const mailproto_imap_reader_limits *lim = &limits[data[0] & 3];
  size_t chunk = (size_t)(data[0] >> 2) + 1;
  uint32_t decisions =
      (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16;
  const uint8_t *in = data + 4;
  size_t len = size - 4;
  trace whole, pieces;
  run(lim, decisions, in, len, 0, &whole);
  run(lim, decisions, in, len, chunk, &pieces);
  require(whole.len == pieces.len);
  require(whole.len == 0 || memcmp(whole.log, pieces.log, whole.len) == 0);
  free(whole.log);
  free(pieces.log);
  return 0;
}
