/*
 * Fuzzes what the FETCH items built on the MIME parser write: BODY,
 * BODYSTRUCTURE and ENVELOPE of every part must always be valid IMAP
 * syntax (checked with tests/mime/imap_check.h, the grammar of RFC 3501 9
 * and RFC 9051's media-message), and sections must resolve and stream
 * within bounds. Input:
 *   byte 0    bit 0: IMAP4rev2 (message/global form); bit 1: UTF-8
 *             strings; bit 2: small parser limits; bit 3: the rest after
 *             the section bytes is a serialised tree (an untrusted cache
 *             entry) instead of a message
 *   byte 1    section: bits 0-2 part count (0-7), bits 3-5 text (ALL,
 *             HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME),
 *             bit 6 BINARY, bit 7 partial
 *   bytes 2-9 part numbers (1-4) and the partial window
 *   the rest  the message (or the serialised tree)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_writer.h"
#include "mime/imap_check.h"
#include "mime/mime.h"
#include "mime/mime_imap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

static void check_writers(const mailproto_mime_tree *t, unsigned flags) {
  int global = (flags & MAILPROTO_MIME_WRITE_GLOBAL) != 0;
  for (uint32_t i = 0; i < t->part_count && i < 64; i++) {
    for (int ext = 0; ext < 2; ext++) {
      mailproto_buf b;
      mailproto_buf_init(&b, NULL, (size_t)-1);
      require(mailproto_mime_write_body(&b, t, i, ext, flags) == 0);
      require(imap_check_body(b.data, b.len, ext, global));
      mailproto_buf_free(&b);
    }
    mailproto_buf b;
    mailproto_buf_init(&b, NULL, (size_t)-1);
    require(mailproto_mime_write_envelope(&b, t, i, flags) == 0);
    require(imap_check_envelope(b.data, b.len));
    mailproto_buf_free(&b);
  }
}

/* Streams a resolved section of message m (NULL: a loaded tree without
 * its message: zeros stand in) and checks the sizes. */
static void check_section(const mailproto_mime_tree *t, const uint8_t *m,
                          const mailproto_mime_range *r, int partial,
                          uint64_t po, uint64_t pl) {
  require(r->empty || r->offset + r->size <= t->size);
  uint64_t off, len;
  mailproto_mime_range_read(r, partial, po, pl, &off, &len);
  require(len == 0 || off + len <= t->size);
  mailproto_mime_stat st = {0, 0};
  mailproto_mime_stream s;
  mailproto_mime_stream_init(&s, r, partial, po, pl, mailproto_mime_out_stat,
                             &st);
  static const uint8_t zeros[4096];
  for (uint64_t pos = 0; pos < len;) {
    size_t n = len - pos < 1000 ? (size_t)(len - pos) : 1000;
    require(mailproto_mime_stream_feed(&s, m ? m + off + pos : zeros, n) == 0);
    pos += n;
  }
  require(mailproto_mime_stream_finish(&s) == 0);
  uint64_t known;
  if (mailproto_mime_range_size(r, partial, po, pl, &known))
    require(known == st.size);
  /* decoding or CRLF never more than doubles the data (plus a pending
   * "=X" or a held-back run of white space) */
  require(st.size <= 2 * r->size + 2);
  if (partial)
    require(st.size <= pl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 10)
    return 0;
  unsigned flags = 0;
  if (data[0] & 1)
    flags |= MAILPROTO_MIME_WRITE_GLOBAL;
  if (data[0] & 2)
    flags |= MAILPROTO_IMAP_WRITE_UTF8;
  mailproto_mime_limits lim;
  mailproto_mime_limits_default(&lim);
  if (data[0] & 4) {
    lim.max_depth = 4;
    lim.max_parts = 16;
    lim.max_field = 64;
    lim.max_kept = 256;
  }
  const uint8_t *rest = data + 10;
  size_t len = size - 10;
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, NULL);
  const uint8_t *msg = rest;
  if (data[0] & 8) {
    /* a cache entry: its message size is the varint after the magic */
    uint64_t msize = 0;
    for (size_t i = 4, shift = 0; i < len && shift < 64; i++, shift += 7) {
      msize |= (uint64_t)(rest[i] & 0x7f) << shift;
      if (!(rest[i] & 0x80))
        break;
    }
    if (mailproto_mime_deserialize(NULL, &lim, rest, len, msize, &t) != 0)
      return 0;
    msg = NULL;
  } else {
    require(mailproto_mime_parse(NULL, &lim, rest, len, &t) == 0);
  }
  check_writers(&t, flags);

  mailproto_imap_section sec;
  memset(&sec, 0, sizeof sec);
  uint32_t parts[7];
  sec.part_count = data[1] & 7;
  for (unsigned i = 0; i < sec.part_count; i++)
    parts[i] = (uint32_t)(data[2 + i] & 3) + 1;
  sec.parts = parts;
  static const mailproto_imap_section_text texts[8] = {
      MAILPROTO_IMAP_SECTION_ALL,
      MAILPROTO_IMAP_SECTION_HEADER,
      MAILPROTO_IMAP_SECTION_HEADER_FIELDS,
      MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT,
      MAILPROTO_IMAP_SECTION_TEXT,
      MAILPROTO_IMAP_SECTION_MIME,
      MAILPROTO_IMAP_SECTION_ALL,
      MAILPROTO_IMAP_SECTION_HEADER};
  sec.text = texts[(data[1] >> 3) & 7];
  static mailproto_imap_str names[] = {
      {"Subject", 7}, {"content-type", 12}, {"X", 1}};
  sec.fields = names;
  sec.field_count = 3;
  int binary = (data[1] & 0x40) != 0;
  int partial = (data[1] & 0x80) != 0;
  uint64_t po = data[8] * 3u, pl = (uint64_t)data[9] + 1;
  mailproto_mime_range r;
  int rc = mailproto_mime_resolve(&t, &sec, binary, &r);
  require(rc == 0 || (binary && rc == MAILPROTO_ERR_UNSUPPORTED));
  if (rc == 0)
    check_section(&t, msg, &r, partial, po, pl);
  mailproto_mime_tree_free(&t);
  return 0;
}
