/*
 * Splits a byte stream into lines. Line ends are found with memchr; a line
 * arriving in many small chunks is scanned once. A line longer than the
 * limit is reported as TOO_LONG once its end arrives (the reader keeps only
 * the first `max` bytes meanwhile, so memory stays bounded) and reading
 * resynchronises after it.
 */
#ifndef MAILPROTO_CORE_LINE_H
#define MAILPROTO_CORE_LINE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"

/* The line ended with LF without CR before it. */
#define MAILPROTO_LINE_BARE_LF 0x1u
/* The line holds a CR that is not part of its CRLF end. */
#define MAILPROTO_LINE_BARE_CR 0x2u
/* The line was longer than the limit; `data` holds its first `max` bytes. */
#define MAILPROTO_LINE_TOO_LONG 0x4u
/* The line holds a NUL byte. */
#define MAILPROTO_LINE_HAS_NUL 0x8u

typedef struct mailproto_line {
  const uint8_t *data; /* the line without its line end */
  size_t len;
  unsigned flags; /* MAILPROTO_LINE_* */
} mailproto_line;

typedef struct mailproto_line_reader {
  /* An incomplete line carried between chunks: its first partial.max
   * bytes, where partial.max is the limit of the line in progress. */
  mailproto_buf partial;
  size_t max;     /* longest line, counting its line end (next line) */
  unsigned flags; /* flags gathered for the partial line so far */
  int overflow;   /* discarding the rest of a too-long line */
  int pending_cr; /* the partial line's last byte read is a CR */
} mailproto_line_reader;

/* `max` counts the line end (SMTP's 512, POP3's 255 + CRLF, ...). */
void mailproto_line_reader_init(mailproto_line_reader *r,
                                const mailproto_allocator *alloc, size_t max);
void mailproto_line_reader_free(mailproto_line_reader *r);

/* Forgets any partial line (after STARTTLS). Keeps the limit. */
void mailproto_line_reader_reset(mailproto_line_reader *r);

/* Gives the buffer back when no line is in progress and it has grown past
 * `keep` bytes (wiped first: it may have held a password), so one long
 * line does not make an idle session expensive. */
void mailproto_line_reader_trim(mailproto_line_reader *r, size_t keep);

/* Changes the limit; takes effect for the next line. */
void mailproto_line_reader_set_max(mailproto_line_reader *r, size_t max);

/* Bytes held for an incomplete line. */
static inline size_t
mailproto_line_reader_buffered(const mailproto_line_reader *r) {
  return r->partial.len;
}

/*
 * Consumes input up to and including the next line end. Returns 1 and
 * fills *line when a line is complete, 0 when all of the input was
 * consumed without completing one, or NOMEM. *consumed receives the number
 * of input bytes used in either case. line->data points into `in` or into
 * the reader and is valid until the next call on this reader. On NOMEM
 * nothing is consumed and the reader is unchanged, so the same input may
 * be offered again.
 */
int mailproto_line_read(mailproto_line_reader *r, const uint8_t *in, size_t len,
                        size_t *consumed, mailproto_line *line);

#endif
