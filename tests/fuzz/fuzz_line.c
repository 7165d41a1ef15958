/*
 * Fuzzes the line reader. The first byte picks the limit (low five bits,
 * times four) and the chunk size (high three bits); the rest is the
 * stream. Every reported line is checked against the raw input it came
 * from: content, flags and the limit, so any two chunkings must agree with
 * the input itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/line.h"
#include "support/alloc_fail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const size_t chunk_sizes[8] = {1, 2, 3, 5, 7, 16, 64, SIZE_MAX};

/* Checks one line against the raw bytes it stood for: `raw` runs from
 * the start of the line to its LF (excluded). */
static void check_line(const mailproto_line *line, const uint8_t *raw,
                       size_t raw_len, size_t max) {
  int crlf = raw_len > 0 && raw[raw_len - 1] == '\r';
  size_t content = raw_len - (size_t)crlf;
  unsigned want = crlf ? 0 : MAILPROTO_LINE_BARE_LF;
  if (memchr(raw, '\r', content))
    want |= MAILPROTO_LINE_BARE_CR;
  if (memchr(raw, '\0', content))
    want |= MAILPROTO_LINE_HAS_NUL;
  size_t want_len = content;
  if (raw_len + 1 > max) {
    want |= MAILPROTO_LINE_TOO_LONG;
    if (want_len > max)
      want_len = max;
  }
  if (line->flags != want || line->len != want_len || line->len > max)
    abort();
  if (line->len && memcmp(line->data, raw, line->len) != 0)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t max = (size_t)(data[0] & 0x1f) * 4;
  size_t chunk = chunk_sizes[data[0] >> 5];
  const uint8_t *in = data + 1;
  size_t len = size - 1;

  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, &af.allocator, max);

  /* Each chunk is copied to the end of this allocation, so reading past
   * the chunk runs into ASan's redzone. */
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf)
    abort();
  size_t line_start = 0; /* offset in `in` where the current line began */
  for (size_t off = 0; off < len;) {
    size_t n = len - off < chunk ? len - off : chunk;
    uint8_t *copy = buf + len - n;
    memcpy(copy, in + off, n);
    size_t done = 0;
    while (done < n) {
      size_t used;
      mailproto_line line;
      int rc = mailproto_line_read(&r, copy + done, n - done, &used, &line);
      if (rc < 0 || used == 0 || used > n - done ||
          mailproto_line_reader_buffered(&r) > max)
        abort();
      done += used;
      if (rc == 1) {
        size_t lf = off + done - 1;
        if (in[lf] != '\n')
          abort();
        check_line(&line, in + line_start, lf - line_start, max);
        line_start = lf + 1;
      } else if (done != n) {
        abort();
      }
    }
    off += n;
  }
  free(buf);
  /* Whatever follows the last LF is held, up to the limit. */
  size_t tail = len - line_start;
  if (mailproto_line_reader_buffered(&r) != (tail < max ? tail : max))
    abort();
  mailproto_line_reader_free(&r);
  if (af.live != 0)
    abort();
  return 0;
}
