/*
 * The FETCH items built on a parsed message (RFC 3501 6.4.5 and 7.4.2,
 * RFC 9051 6.4.5 and 7.5.2, RFC 3516): ENVELOPE, BODY and BODYSTRUCTURE
 * written with the IMAP writer, and BODY[section] / BINARY[section]
 * resolved to byte ranges of the stored message plus a streaming pipeline
 * (header subsetting, CRLF line ends, transfer decoding, partial window)
 * that turns those bytes, read from the store in chunks, into what the
 * FETCH response carries. All pure functions: the session does the store
 * reads and the output.
 *
 * FETCH BODY[section]<o.n> (or BINARY) in a session, step by step:
 *  1. the tree: from the store cache (mailproto_mime_deserialize) or by
 *     feeding the message's `read` chunks to a mailproto_mime_parser (and
 *     putting mailproto_mime_serialize's bytes into the cache);
 *  2. mailproto_mime_resolve(tree, &item->section, binary, &range);
 *     UNSUPPORTED means "NO [UNKNOWN-CTE]" (RFC 3516 4.1);
 *  3. the literal's size: mailproto_mime_range_size(), or else one pass
 *     of the stream into mailproto_mime_out_stat (which also says whether
 *     BINARY data needs literal8, RFC 3516 4.3);
 *  4. write the item name and "{size}\r\n", then read the stored bytes
 *     mailproto_mime_range_read() names from the store, chunk by chunk,
 *     into a mailproto_mime_stream whose output appends to the output
 *     queue (large sections are never held whole).
 */
#ifndef MAILPROTO_MIME_IMAP_H
#define MAILPROTO_MIME_IMAP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "imap/imap_parser.h"
#include "mime/mime.h"
#include "mime/mime_codec.h"

/* Writer flags: MAILPROTO_IMAP_WRITE_UTF8 (imap_writer.h) passes through
 * to every string; and: */
/* IMAP4rev2 is on: message/global parts are written in the message form
 * (RFC 9051 9 "media-message"); IMAP4rev1 has only message/rfc822 there
 * (RFC 3501 9), so without this flag message/global is a basic part. */
#define MAILPROTO_MIME_WRITE_GLOBAL 0x100u

/*
 * Appends the ENVELOPE of message part i (0: the message; a parsed
 * message/rfc822 part: the encapsulated message; anything else: every
 * member NIL) as RFC 3501 7.4.2 defines it: date, subject, in-reply-to and
 * message-id as the raw unfolded text (NIL when the field is absent, ""
 * when empty), address lists parsed (NIL when absent, empty or holding no
 * address), sender and reply-to defaulting to from, groups as
 * (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). Texts are not decoded (RFC
 * 2047 words stay as they are). Returns 0, NOMEM or BUFFER_FULL (nothing
 * appended); scratch memory comes from the buffer's allocator.
 */
int mailproto_mime_write_envelope(mailproto_buf *b,
                                  const mailproto_mime_tree *t, uint32_t part,
                                  unsigned flags);

/*
 * Appends the body structure of part i (0: the message): BODY without
 * `extended`, BODYSTRUCTURE with it. Media type and subtype as written in
 * the message (the defaults of RFC 2045 5.2 / RFC 2046 5.1.5 when
 * Content-Type is absent or malformed); parameters with RFC 2231
 * continuations and charsets decoded (RFC 9051 7.5.2), text/ * without a
 * charset parameter given ("charset" "us-ascii") (RFC 2046 4.1.2); the
 * encoding "7bit" when none is given; sizes with CRLF line ends; lines for
 * text/ * and message/rfc822; for message/rfc822 the envelope and the
 * structure of the encapsulated message (an unparsed one, e.g. base64
 * encoded, gets an all-NIL envelope and an empty text/plain body);
 * extension data: MD5, disposition with parameters, language, location;
 * for multipart: its parts, subtype, then parameters, disposition,
 * language, location. A multipart without parts gets one empty text/plain
 * part, since IMAP requires at least one. Returns 0, NOMEM, BUFFER_FULL
 * (nothing appended) or INVALID_ARGUMENT (no part i).
 */
int mailproto_mime_write_body(mailproto_buf *b, const mailproto_mime_tree *t,
                              uint32_t part, int extended, unsigned flags);

/* ------------------------------------------------------------------ */
/* Sections                                                            */
/* ------------------------------------------------------------------ */

/* What a section names: a byte range of the stored message and how to
 * transform it. */
typedef struct mailproto_mime_range {
  int empty;       /* no such part: the section is the empty string */
  uint32_t part;   /* the part it resolved to */
  uint64_t offset; /* stored bytes [offset, offset + size) */
  uint64_t size;
  uint64_t vsize; /* the same with every bare LF as CRLF */
  /* HEADER.FIELDS (filter 1) or HEADER.FIELDS.NOT (filter 2): the names
   * (pointing into the section given, which must outlive the range) */
  int filter;
  const mailproto_imap_str *fields;
  unsigned field_count;
  /* BINARY: the transfer encoding to remove, and whether the decoded
   * data is text (then its line ends are made CRLF, RFC 3516 4.2) */
  mailproto_mime_cte cte;
  int text;
} mailproto_mime_range;

/*
 * Resolves a section (RFC 3501 6.4.5, RFC 9051 6.4.5.1; BINARY: RFC 3516
 * 4.1 with `binary` set). Part numbers walk the tree: a multipart's
 * n-th part, a single part's only part 1 (itself), and the numbers after
 * a parsed message/rfc822 part are those of its encapsulated message (so
 * for a message of that type, [1] is its body and [1.1] the body of the
 * message inside, as RFC 3501 6.4.5's example numbers them).
 * HEADER, HEADER.FIELDS(.NOT) and TEXT name the header / body of the
 * message or of the message/rfc822 part the numbers lead to (any other
 * part: empty); MIME the part's own header; [] the whole message and [n]
 * the part's body. BINARY of a leaf part removes its transfer encoding;
 * of the message, a multipart or a message/rfc822 or message/global part
 * (which RFC 3516 4.1 does not allow) it is the raw data.
 * Returns 0, or MAILPROTO_ERR_UNSUPPORTED for BINARY of a part whose
 * encoding is unknown (the session answers NO [UNKNOWN-CTE]).
 */
int mailproto_mime_resolve(const mailproto_mime_tree *t,
                           const mailproto_imap_section *section, int binary,
                           mailproto_mime_range *out);

/* The output size when it is known without reading the data (no header
 * subsetting, no decoding): returns 1 and sets *size (the partial window
 * applied), else 0 (run the stream once with a counting output). */
int mailproto_mime_range_size(const mailproto_mime_range *r, int has_partial,
                              uint64_t partial_offset, uint64_t partial_length,
                              uint64_t *size);

/* The stored bytes to read for the range: [*offset, *offset + *len). With
 * a partial window and no transformation but CRLF-free data, only the
 * window's bytes; else the whole range. */
void mailproto_mime_range_read(const mailproto_mime_range *r, int has_partial,
                               uint64_t partial_offset, uint64_t partial_length,
                               uint64_t *offset, uint64_t *len);

/* The HEADER.FIELDS filter: header lines in, the lines of the selected
 * fields out (continuation lines follow their field; the blank line is
 * always kept; a line without a colon names no field, so only .NOT keeps
 * it). Streaming: any chunks;
 * a field name is looked at in its first bytes only (a name longer than
 * MAILPROTO_MIME_FILTER_HEAD matches nothing). */
#define MAILPROTO_MIME_FILTER_HEAD 256

typedef struct mailproto_mime_hfilter {
  const mailproto_imap_str *fields;
  unsigned field_count;
  int negate; /* HEADER.FIELDS.NOT */
  mailproto_mime_out_fn out;
  void *arg;
  int state; /* 0 line start/head, 1 copying the line, 2 dropping it */
  int keep;  /* the current field is kept (for continuation lines) */
  size_t head_len;
  uint8_t head[MAILPROTO_MIME_FILTER_HEAD];
} mailproto_mime_hfilter;

void mailproto_mime_hfilter_init(mailproto_mime_hfilter *f,
                                 const mailproto_imap_str *fields,
                                 unsigned count, int negate,
                                 mailproto_mime_out_fn out, void *arg);
int mailproto_mime_hfilter_feed(void *filter, const uint8_t *in, size_t len);
int mailproto_mime_hfilter_finish(mailproto_mime_hfilter *f);

/* The whole pipeline for one range: feed it the stored bytes of
 * [offset, offset + len) from mailproto_mime_range_read, in order and in
 * any chunks (bytes past len are ignored), then finish; the output goes
 * to `out`, whose error stops the stream and is returned. The stages
 * point at each other inside the struct: keep it in place from init to
 * finish. It allocates nothing. */
typedef struct mailproto_mime_stream {
  mailproto_mime_range range;
  uint64_t left; /* stored bytes still taken (more are ignored) */
  mailproto_mime_hfilter filter;
  mailproto_mime_crlf crlf;
  mailproto_mime_decoder decoder;
  mailproto_mime_crlf crlf2;
  mailproto_mime_window window;
  mailproto_mime_out_fn first;
  void *first_arg;
} mailproto_mime_stream;

void mailproto_mime_stream_init(mailproto_mime_stream *s,
                                const mailproto_mime_range *r, int has_partial,
                                uint64_t partial_offset,
                                uint64_t partial_length,
                                mailproto_mime_out_fn out, void *arg);
int mailproto_mime_stream_feed(mailproto_mime_stream *s, const uint8_t *in,
                               size_t len);
int mailproto_mime_stream_finish(mailproto_mime_stream *s);

/* An output function that measures (arg: mailproto_mime_stat): the size,
 * and whether a NUL occurs (BINARY data with a NUL must go as literal8,
 * RFC 3516 4.3). */
typedef struct mailproto_mime_stat {
  uint64_t size;
  int has_nul;
} mailproto_mime_stat;
int mailproto_mime_out_stat(void *arg, const uint8_t *data, size_t len);

#endif
