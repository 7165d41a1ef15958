/*
 * The FETCH items built on the MIME parser: ENVELOPE, BODY, BODYSTRUCTURE
 * and BODY/BINARY sections of the corpus against their expected outputs
 * (tests/mime/corpus/NAME.expected, written from the RFC rules and checked
 * by hand, see the corpus README); IMAP syntax of everything written;
 * section resolution, header subsetting, partial windows and transfer
 * decoding split at every byte; charsets, RFC 2047 words and the SEARCH
 * matcher.
 */
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_writer.h"
#include "imap_check.h"
#include "mime/mime.h"
#include "core/utf8.h"
#include "mime/mime_codec.h"
#include "mime/mime_imap.h"
#include "mime_corpus.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/overread.h"

#define S(lit) (const uint8_t *)lit, sizeof(lit) - 1

static overread_guard guard;
static int guard_ready;

static const uint8_t *place(const void *data, size_t len) {
  if (!guard_ready) {
    ck_assert_int_eq(overread_init(&guard, 4u << 20), 0);
    guard_ready = 1;
  }
  return overread_place(&guard, data, len);
}

/* memcmp that accepts empty (maybe NULL) buffers. */
static int same(const void *a, const void *b, size_t n) {
  return n == 0 || memcmp(a, b, n) == 0;
}

static void parse_ok(const void *data, size_t len, mailproto_mime_tree *t) {
  mailproto_mime_tree_init(t, NULL);
  ck_assert_int_eq(mailproto_mime_parse(NULL, NULL, data, len, t), 0);
}

/* ------------------------------------------------------------------ */
/* Rendering one FETCH item the way the expected files spell it        */
/* ------------------------------------------------------------------ */

/* Streams range r of message m through the pipeline in `chunk`-byte
 * pieces into out. */
static void stream_section(const uint8_t *m, const mailproto_mime_range *r,
                           const mailproto_imap_fetch_item *it, size_t chunk,
                           mailproto_buf *out) {
  uint64_t off, len;
  mailproto_mime_range_read(r, it->has_partial, it->partial_offset,
                            it->partial_length, &off, &len);
  mailproto_mime_stream st;
  mailproto_mime_stream_init(&st, r, it->has_partial, it->partial_offset,
                             it->partial_length, mailproto_mime_out_buf, out);
  for (uint64_t pos = 0; pos < len;) {
    size_t n = len - pos < chunk ? (size_t)(len - pos) : chunk;
    ck_assert_int_eq(
        mailproto_mime_stream_feed(&st, place(m + off + pos, n), n), 0);
    pos += n;
  }
  ck_assert_int_eq(mailproto_mime_stream_finish(&st), 0);
}

/* Appends item `name` of message m / tree t as "NAME value". */
static void render_item(const uint8_t *m, const mailproto_mime_tree *t,
                        const char *name, size_t name_len, mailproto_buf *out) {
  ck_assert_int_eq(mailproto_buf_append(out, name, name_len), 0);
  ck_assert_int_eq(mailproto_buf_append_byte(out, ' '), 0);
  unsigned flags = 0;
  const char *plus = memchr(name, '+', name_len);
  if (plus) { /* "ITEM+rev2": as an IMAP4rev2 session writes it */
    flags = MAILPROTO_MIME_WRITE_GLOBAL | MAILPROTO_IMAP_WRITE_UTF8;
    name_len = (size_t)(plus - name);
  }
#define IS(lit)                                                                \
  (name_len == sizeof(lit) - 1 && memcmp(name, lit, name_len) == 0)
  if (IS("BODYSTRUCTURE") || IS("BODY")) {
    ck_assert_int_eq(
        mailproto_mime_write_body(out, t, 0, IS("BODYSTRUCTURE"), flags), 0);
    return;
  }
  if (IS("ENVELOPE")) {
    ck_assert_int_eq(mailproto_mime_write_envelope(out, t, 0, flags), 0);
    return;
  }
  if (IS("RFC822.SIZE")) {
    ck_assert_int_eq(mailproto_imap_write_number(out, t->vsize), 0);
    return;
  }
#undef IS
  /* a section item: let the IMAP parser read it */
  char cmd[512];
  int n = snprintf(cmd, sizeof cmd, "t FETCH 1 (%.*s)", (int)name_len, name);
  ck_assert(n > 0 && (size_t)n < sizeof cmd);
  mailproto_imap_parser ip;
  mailproto_imap_parser_init(&ip, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      mailproto_imap_parse(&ip, (const uint8_t *)cmd, (size_t)n, &c), 0);
  ck_assert_uint_eq(c.u.fetch.item_count, 1);
  const mailproto_imap_fetch_item *it = &c.u.fetch.items[0];
  int binary = it->type == MAILPROTO_IMAP_FETCH_BINARY ||
               it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE;
  mailproto_mime_range r;
  int rc = mailproto_mime_resolve(t, &it->section, binary, &r);
  if (rc == MAILPROTO_ERR_UNSUPPORTED) {
    ck_assert(binary);
    ck_assert_int_eq(mailproto_buf_append_str(out, "NO [UNKNOWN-CTE]"), 0);
    mailproto_imap_parser_free(&ip);
    return;
  }
  ck_assert_int_eq(rc, 0);
  mailproto_buf data;
  mailproto_buf_init(&data, NULL, (size_t)-1);
  stream_section(m, &r, it, 4096, &data);
  /* the same in small pieces */
  mailproto_buf again;
  mailproto_buf_init(&again, NULL, (size_t)-1);
  stream_section(m, &r, it, 3, &again);
  ck_assert_uint_eq(again.len, data.len);
  ck_assert(same(again.data, data.data, data.len));
  mailproto_buf_free(&again);
  uint64_t known;
  if (mailproto_mime_range_size(&r, it->has_partial, it->partial_offset,
                                it->partial_length, &known))
    ck_assert_uint_eq(known, data.len);
  /* and a counting pass gives the size */
  mailproto_mime_stat st = {0, 0};
  mailproto_mime_stream s2;
  uint64_t off, len;
  mailproto_mime_range_read(&r, it->has_partial, it->partial_offset,
                            it->partial_length, &off, &len);
  mailproto_mime_stream_init(&s2, &r, it->has_partial, it->partial_offset,
                             it->partial_length, mailproto_mime_out_stat, &st);
  ck_assert_int_eq(mailproto_mime_stream_feed(&s2, m + off, (size_t)len), 0);
  ck_assert_int_eq(mailproto_mime_stream_finish(&s2), 0);
  ck_assert_uint_eq(st.size, data.len);
  if (it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE) {
    ck_assert_int_eq(mailproto_imap_write_number(out, data.len), 0);
  } else {
    int nul = data.len > 0 && memchr(data.data, 0, data.len) != NULL;
    ck_assert_int_eq(st.has_nul, nul);
    ck_assert_int_eq(
        mailproto_imap_write_literal(out, data.data, data.len, binary && nul),
        0);
  }
  mailproto_buf_free(&data);
  mailproto_imap_parser_free(&ip);
}

/* Every record of NAME.expected is "ITEM value\r\n"; ITEM is rendered and
 * must give exactly the value. */
START_TEST(test_mime_fetch_items_match_expected) {
  const char *name = mime_corpus[_i];
  size_t mlen = 0, elen = 0;
  unsigned char *m = mime_corpus_read(name, ".eml", &mlen);
  unsigned char *e = mime_corpus_read(name, ".expected", &elen);
  ck_assert_msg(m && e, "corpus files of %s", name);
  mailproto_mime_tree t;
  parse_ok(m, mlen, &t);
  size_t pos = 0;
  unsigned records = 0;
  while (pos < elen) {
    /* the item name ends at the first space outside brackets */
    size_t name_len = 0;
    int depth = 0;
    while (pos + name_len < elen && (e[pos + name_len] != ' ' || depth > 0)) {
      depth += e[pos + name_len] == '[';
      depth -= e[pos + name_len] == ']';
      name_len++;
    }
    ck_assert_uint_lt(pos + name_len, elen);
    mailproto_buf got;
    mailproto_buf_init(&got, NULL, (size_t)-1);
    render_item(m, &t, (const char *)e + pos, name_len, &got);
    ck_assert_msg(got.len + 2 <= elen - pos &&
                      same(got.data, e + pos, got.len) &&
                      memcmp(e + pos + got.len, "\r\n", 2) == 0,
                  "%s: item %.*s differs: got\n%.*s", name, (int)name_len,
                  e + pos, (int)got.len, got.data);
    pos += got.len + 2;
    mailproto_buf_free(&got);
    records++;
  }
  ck_assert_uint_ge(records, 4);
  mailproto_mime_tree_free(&t);
  free(m);
  free(e);
}
END_TEST

/* Every part of every corpus message, in every writer mode, is valid IMAP
 * syntax; BODY is BODYSTRUCTURE without the extension data. */
START_TEST(test_mime_write_body_valid_syntax) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read(mime_corpus[_i], ".eml", &len);
  ck_assert_ptr_nonnull(m);
  mailproto_mime_tree t;
  parse_ok(m, len, &t);
  static const unsigned modes[] = {
      0, MAILPROTO_MIME_WRITE_GLOBAL, MAILPROTO_IMAP_WRITE_UTF8,
      MAILPROTO_IMAP_WRITE_UTF8 | MAILPROTO_MIME_WRITE_GLOBAL};
  for (size_t k = 0; k < 4; k++) {
    for (uint32_t i = 0; i < t.part_count; i++) {
      for (int ext = 0; ext < 2; ext++) {
        mailproto_buf b;
        mailproto_buf_init(&b, NULL, (size_t)-1);
        ck_assert_int_eq(mailproto_mime_write_body(&b, &t, i, ext, modes[k]),
                         0);
        ck_assert_msg(
            imap_check_body(b.data, b.len, ext,
                            (modes[k] & MAILPROTO_MIME_WRITE_GLOBAL) != 0),
            "%s part %u: %.*s", mime_corpus[_i], i, (int)b.len, b.data);
        mailproto_buf_free(&b);
      }
      mailproto_buf b;
      mailproto_buf_init(&b, NULL, (size_t)-1);
      ck_assert_int_eq(mailproto_mime_write_envelope(&b, &t, i, modes[k]), 0);
      ck_assert(imap_check_envelope(b.data, b.len));
      mailproto_buf_free(&b);
    }
  }
  ck_assert_int_eq(mailproto_mime_write_body(NULL, &t, t.part_count, 0, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_mime_tree_free(&t);
  free(m);
}
END_TEST

/* Values that no IMAP string can carry as they are still write. */
START_TEST(test_mime_write_body_hostile_values) {
  static const char m[] =
      "From: \"a\\\"b\" <x\x01y@z>\r\n"
      "Subject: \x7f\xff\r\n"
      "Content-Type: text/plain; a*=utf-8''%00%0D%0A%22; b=\"\\\"\"; "
      "c*0*=''%FF; c*1=\"\\\\\"\r\n"
      "Content-Disposition: x; filename*=''%00\r\n"
      "Content-Language: \xff, , (c) en\r\n"
      "\r\nbody";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  for (unsigned flags = 0; flags < 2; flags++) {
    mailproto_buf b;
    mailproto_buf_init(&b, NULL, (size_t)-1);
    ck_assert_int_eq(mailproto_mime_write_body(
                         &b, &t, 0, 1, flags ? MAILPROTO_IMAP_WRITE_UTF8 : 0),
                     0);
    ck_assert(imap_check_body(b.data, b.len, 1, 0));
    ck_assert_ptr_null(memchr(b.data, 0, b.len));
    mailproto_buf_clear(&b);
    ck_assert_int_eq(mailproto_mime_write_envelope(
                         &b, &t, 0, flags ? MAILPROTO_IMAP_WRITE_UTF8 : 0),
                     0);
    ck_assert(imap_check_envelope(b.data, b.len));
    mailproto_buf_free(&b);
  }
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_write_body_charset_star_no_default) {
  /* RFC 2046 4.1.2 gives text/ * "us-ascii" only when no charset is named;
   * an RFC 2231 charset* names one (RFC 9051 7.5.2 returns it as
   * "charset*"), so no second, contradicting charset is added. */
  static const char m[] =
      "Content-Type: text/plain; charset*=utf-8''utf-8; format=flowed\r\n"
      "\r\nbody";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, (size_t)-1);
  ck_assert_int_eq(mailproto_mime_write_body(&b, &t, 0, 0, 0), 0);
  ck_assert_int_eq(mailproto_buf_append_byte(&b, 0), 0);
  ck_assert_str_eq((const char *)b.data,
                   "(\"text\" \"plain\" (\"charset*\" \"utf-8\" \"format\" "
                   "\"flowed\") NIL NIL \"7bit\" 4 0)");
  mailproto_buf_free(&b);
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_write_nomem_and_full) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read("nonascii_headers", ".eml", &len);
  ck_assert_ptr_nonnull(m);
  mailproto_mime_tree t;
  parse_ok(m, len, &t);
  for (int which = 0; which < 2; which++) {
    mailproto_buf want;
    mailproto_buf_init(&want, NULL, (size_t)-1);
    ck_assert_int_eq(which ? mailproto_mime_write_envelope(&want, &t, 0, 0)
                           : mailproto_mime_write_body(&want, &t, 0, 1, 0),
                     0);
    for (unsigned long n = 1;; n++) {
      alloc_fail af;
      alloc_fail_init(&af, n);
      mailproto_buf b;
      mailproto_buf_init(&b, &af.allocator, (size_t)-1);
      int rc = which ? mailproto_mime_write_envelope(&b, &t, 0, 0)
                     : mailproto_mime_write_body(&b, &t, 0, 1, 0);
      if (alloc_fail_triggered(&af)) {
        ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
        ck_assert_uint_eq(b.len, 0);
      } else {
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(b.len, want.len);
        ck_assert(same(b.data, want.data, b.len));
      }
      mailproto_buf_free(&b);
      ck_assert_int_eq(af.live, 0);
      if (!alloc_fail_triggered(&af))
        break;
    }
    /* a buffer too small: BUFFER_FULL and nothing appended */
    for (size_t max = 2; max < want.len + 2; max += 7) {
      mailproto_buf b;
      mailproto_buf_init(&b, NULL, max);
      ck_assert_int_eq(mailproto_buf_append(&b, "x", 1), 0);
      int rc = which ? mailproto_mime_write_envelope(&b, &t, 0, 0)
                     : mailproto_mime_write_body(&b, &t, 0, 1, 0);
      if (max < want.len + 1) {
        ck_assert_int_eq(rc, MAILPROTO_ERR_BUFFER_FULL);
        ck_assert_uint_eq(b.len, 1);
      } else {
        ck_assert_int_eq(rc, 0);
      }
      mailproto_buf_free(&b);
    }
    mailproto_buf_free(&want);
  }
  mailproto_mime_tree_free(&t);
  free(m);
}
END_TEST

/* Parts nested past every limit still write valid, bounded output. */
START_TEST(test_mime_write_deep_nesting_syntax) {
  for (int messages = 0; messages < 2; messages++) {
    size_t cap = 300 * 120 + 256, pos = 0;
    char *m = malloc(cap);
    for (int i = 0; i < 300; i++)
      pos += (size_t)(messages ? sprintf(m + pos,
                                         "Content-Type: message/rfc822\r\n"
                                         "Subject: level %d\r\n\r\n",
                                         i)
                               : sprintf(m + pos,
                                         "Content-Type: multipart/mixed; "
                                         "boundary=\"b%d\"\r\n\r\n--b%d\r\n",
                                         i, i));
    pos += (size_t)sprintf(m + pos, "\r\ntext\r\n");
    mailproto_mime_tree t;
    parse_ok(m, pos, &t);
    mailproto_buf b;
    mailproto_buf_init(&b, NULL, (size_t)-1);
    ck_assert_int_eq(mailproto_mime_write_body(&b, &t, 0, 1, 0), 0);
    ck_assert(imap_check_body(b.data, b.len, 1, 0));
    mailproto_buf_free(&b);
    mailproto_mime_tree_free(&t);
    free(m);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sections                                                            */
/* ------------------------------------------------------------------ */

static const char nested_msg[] =
    "Subject: top\r\n"
    "Content-Type: multipart/mixed; boundary=o\r\n"
    "\r\n"
    "--o\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "one\r\n"
    "--o\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: inner\r\n"
    "Content-Type: multipart/alternative; boundary=i\r\n"
    "\r\n"
    "--i\r\n"
    "\r\n"
    "plain\r\n"
    "--i\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<b>html</b>\r\n"
    "--i--\r\n"
    "--o\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "Subject: flat\r\n"
    "\r\n"
    "flat body\r\n"
    "--o--\r\n";

/* The range a section names: `len` bytes found `skip` bytes into the first
 * occurrence of `ctx` in the message (NULL: empty). */
static void expect_at(const mailproto_mime_tree *t, const char *spec,
                      const char *ctx, size_t skip, size_t len) {
  char cmd[256];
  int n = snprintf(cmd, sizeof cmd, "t FETCH 1 (BODY[%s])", spec);
  mailproto_imap_parser ip;
  mailproto_imap_parser_init(&ip, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      mailproto_imap_parse(&ip, (const uint8_t *)cmd, (size_t)n, &c), 0);
  mailproto_mime_range r;
  ck_assert_int_eq(
      mailproto_mime_resolve(t, &c.u.fetch.items[0].section, 0, &r), 0);
  if (!ctx) {
    ck_assert_msg(r.empty, "BODY[%s] should be empty", spec);
  } else {
    ck_assert_msg(!r.empty, "BODY[%s] is empty", spec);
    const char *at = strstr(nested_msg, ctx);
    ck_assert_ptr_nonnull(at);
    ck_assert_msg(r.offset == (uint64_t)(at - nested_msg) + skip &&
                      r.size == len,
                  "BODY[%s]: %llu+%llu", spec, (unsigned long long)r.offset,
                  (unsigned long long)r.size);
  }
  mailproto_imap_parser_free(&ip);
}

/* The section is exactly `text`, at its first occurrence. */
static void expect_section(const mailproto_mime_tree *t, const char *spec,
                           const char *text) {
  expect_at(t, spec, text, 0, text ? strlen(text) : 0);
}

START_TEST(test_mime_resolve_sections) {
  mailproto_mime_tree t;
  parse_ok(nested_msg, sizeof nested_msg - 1, &t);
  expect_section(&t, "", nested_msg);
  expect_section(&t, "HEADER",
                 "Subject: top\r\nContent-Type: multipart/mixed; "
                 "boundary=o\r\n\r\n");
  expect_section(&t, "TEXT", strstr(nested_msg, "\r\n\r\n") + 4);
  expect_section(&t, "1", "one");
  expect_section(&t, "1.MIME", "Content-Type: text/plain\r\n\r\n");
  expect_section(&t, "1.1", "one"); /* a leaf's part 1 is itself */
  expect_section(&t, "1.2", NULL);
  expect_section(&t, "1.HEADER", NULL); /* not a message */
  expect_section(&t, "1.TEXT", NULL);
  static const char inner[] = "Subject: inner\r\n"
                              "Content-Type: multipart/alternative; "
                              "boundary=i\r\n\r\n"
                              "--i\r\n\r\nplain\r\n--i\r\nContent-Type: "
                              "text/html\r\n\r\n<b>html</b>\r\n--i--";
  expect_section(&t, "2", inner);
  expect_section(&t, "2.MIME", "Content-Type: message/rfc822\r\n\r\n");
  expect_section(&t, "2.HEADER",
                 "Subject: inner\r\nContent-Type: multipart/"
                 "alternative; boundary=i\r\n\r\n");
  expect_section(&t, "2.TEXT",
                 "--i\r\n\r\nplain\r\n--i\r\nContent-Type: "
                 "text/html\r\n\r\n<b>html</b>\r\n--i--");
  expect_at(&t, "2.1", "\r\nplain\r\n", 2, 5);
  expect_at(&t, "2.1.MIME", "--i\r\n\r\nplain", 5, 2);
  expect_section(&t, "2.2", "<b>html</b>");
  expect_section(&t, "2.2.MIME", "Content-Type: text/html\r\n\r\n");
  expect_section(&t, "2.3", NULL);
  expect_section(&t, "2.1.HEADER", NULL);
  expect_section(&t, "3", "Subject: flat\r\n\r\nflat body");
  expect_section(&t, "3.HEADER", "Subject: flat\r\n\r\n");
  expect_section(&t, "3.TEXT", "flat body");
  expect_section(&t, "3.1", "flat body"); /* the message's only part */
  expect_section(&t, "3.1.MIME", "Subject: flat\r\n\r\n");
  expect_section(&t, "3.2", NULL);
  expect_section(&t, "4", NULL);
  expect_section(&t, "4.1.1", NULL);
  expect_section(&t, "HEADER.FIELDS (Subject)",
                 "Subject: top\r\nContent-Type: multipart/mixed; "
                 "boundary=o\r\n\r\n");
  mailproto_mime_tree_free(&t);
  /* a message that is itself message/rfc822 (numbers as Dovecot gives
   * them) */
  static const char fwd[] = "From: a@b\r\nContent-Type: message/rfc822\r\n\r\n"
                            "Subject: inner\r\n\r\nHallo\r\n";
  mailproto_mime_tree f;
  parse_ok(fwd, sizeof fwd - 1, &f);
  static const struct {
    const char *spec;
    uint64_t off, size;
    int empty;
  } fw[] = {{"1", 43, 25, 0},     {"1.1", 61, 7, 0},    {"1.HEADER", 43, 18, 0},
            {"1.TEXT", 61, 7, 0}, {"1.MIME", 0, 43, 0}, {"TEXT", 43, 25, 0},
            {"2", 0, 0, 1},       {"1.2", 0, 0, 1}};
  for (size_t k = 0; k < sizeof fw / sizeof fw[0]; k++) {
    char cmd[64];
    int n = snprintf(cmd, sizeof cmd, "t FETCH 1 (BODY[%s])", fw[k].spec);
    mailproto_imap_parser ip;
    mailproto_imap_parser_init(&ip, NULL, NULL);
    mailproto_imap_command c;
    ck_assert_int_eq(
        mailproto_imap_parse(&ip, (const uint8_t *)cmd, (size_t)n, &c), 0);
    mailproto_mime_range fr;
    ck_assert_int_eq(
        mailproto_mime_resolve(&f, &c.u.fetch.items[0].section, 0, &fr), 0);
    ck_assert_int_eq(fr.empty, fw[k].empty);
    if (!fw[k].empty) {
      ck_assert_uint_eq(fr.offset, fw[k].off);
      ck_assert_uint_eq(fr.size, fw[k].size);
    }
    mailproto_imap_parser_free(&ip);
  }
  mailproto_mime_tree_free(&f);
  /* a non-multipart message has part 1 */
  mailproto_mime_tree u;
  parse_ok("A: b\r\n\r\nbody", 12, &u);
  mailproto_imap_section sec = {0};
  uint32_t one[] = {1, 1};
  sec.parts = one;
  sec.part_count = 1;
  mailproto_mime_range r;
  ck_assert_int_eq(mailproto_mime_resolve(&u, &sec, 0, &r), 0);
  ck_assert_uint_eq(r.offset, 8);
  ck_assert_uint_eq(r.size, 4);
  sec.part_count = 2;
  ck_assert_int_eq(mailproto_mime_resolve(&u, &sec, 0, &r), 0);
  ck_assert_uint_eq(r.offset, 8);
  uint32_t zero = 0;
  sec.parts = &zero;
  sec.part_count = 1;
  ck_assert_int_eq(mailproto_mime_resolve(&u, &sec, 0, &r), 0);
  ck_assert(r.empty);
  uint64_t size = 1;
  ck_assert_int_eq(mailproto_mime_range_size(&r, 0, 0, 0, &size), 1);
  ck_assert_uint_eq(size, 0);
  uint64_t off, len;
  mailproto_mime_range_read(&r, 1, 2, 3, &off, &len);
  ck_assert_uint_eq(len, 0);
  mailproto_mime_tree_free(&u);
}
END_TEST

/* For every partial window, streamed output equals the slice of the whole
 * output; with bare LFs the window is on the CRLF form. */
/* For every partial window of each section, streamed output equals the
 * slice of the whole output (`whole`, in the CRLF form). */
static void check_windows(const char *m, const char *const *specs,
                          const char *const *whole, size_t count) {
  mailproto_mime_tree t;
  parse_ok(m, strlen(m), &t);
  for (size_t k = 0; k < count; k++) {
    char cmd[128];
    int n = snprintf(cmd, sizeof cmd, "t FETCH 1 (BODY[%s])", specs[k]);
    mailproto_imap_parser ip;
    mailproto_imap_parser_init(&ip, NULL, NULL);
    mailproto_imap_command c;
    ck_assert_int_eq(
        mailproto_imap_parse(&ip, (const uint8_t *)cmd, (size_t)n, &c), 0);
    mailproto_imap_fetch_item it = c.u.fetch.items[0];
    mailproto_mime_range r;
    ck_assert_int_eq(mailproto_mime_resolve(&t, &it.section, 0, &r), 0);
    size_t wl = strlen(whole[k]);
    for (uint64_t o = 0; o <= wl + 2; o++) {
      for (uint64_t l = 1; l <= wl + 2; l++) {
        it.has_partial = 1;
        it.partial_offset = o;
        it.partial_length = l;
        for (size_t chunk = 1; chunk <= 5; chunk += 4) {
          mailproto_buf out;
          mailproto_buf_init(&out, NULL, (size_t)-1);
          stream_section((const uint8_t *)m, &r, &it, chunk, &out);
          size_t from = o < wl ? (size_t)o : wl;
          size_t cnt = wl - from < l ? wl - from : (size_t)l;
          ck_assert_msg(out.len == cnt && same(out.data, whole[k] + from, cnt),
                        "BODY[%s]<%llu.%llu>", specs[k], (unsigned long long)o,
                        (unsigned long long)l);
          uint64_t known;
          if (mailproto_mime_range_size(&r, 1, o, l, &known))
            ck_assert_uint_eq(known, cnt);
          mailproto_buf_free(&out);
        }
      }
    }
    mailproto_imap_parser_free(&ip);
  }
  mailproto_mime_tree_free(&t);
}

START_TEST(test_mime_stream_partial_every_window) {
  /* bare LFs: the window is on the CRLF form */
  static const char *const specs[] = {
      "", "HEADER", "TEXT", "HEADER.FIELDS (X)", "HEADER.FIELDS.NOT (X)", "1"};
  static const char *const whole[] = {
      "Subject: s\r\nX: y\r\n\r\nab\r\ncd\r\nef\r\n",
      "Subject: s\r\nX: y\r\n\r\n",
      "ab\r\ncd\r\nef\r\n",
      "X: y\r\n\r\n",
      "Subject: s\r\n\r\n",
      "ab\r\ncd\r\nef\r\n"};
  check_windows("Subject: s\nX: y\n\nab\ncd\r\nef\n", specs, whole, 6);
  /* CRLF only: windows are read straight from the stored bytes, and one
   * that starts at the LF of a CRLF stays that LF */
  static const char *const crlf_whole[] = {
      "Subject: s\r\nX: y\r\n\r\nab\r\ncd\r\n",
      "Subject: s\r\nX: y\r\n\r\n",
      "ab\r\ncd\r\n",
      "X: y\r\n\r\n",
      "Subject: s\r\n\r\n",
      "ab\r\ncd\r\n"};
  check_windows("Subject: s\r\nX: y\r\n\r\nab\r\ncd\r\n", specs, crlf_whole, 6);
  /* CRLF data: only the window's bytes are read */
  mailproto_mime_tree t;
  static const char crlf[] = "A: b\r\n\r\n0123456789";
  parse_ok(crlf, sizeof crlf - 1, &t);
  mailproto_imap_section sec = {0};
  sec.text = MAILPROTO_IMAP_SECTION_TEXT;
  mailproto_mime_range r;
  ck_assert_int_eq(mailproto_mime_resolve(&t, &sec, 0, &r), 0);
  uint64_t off, len;
  mailproto_mime_range_read(&r, 1, 3, 4, &off, &len);
  ck_assert_uint_eq(off, 11);
  ck_assert_uint_eq(len, 4);
  mailproto_mime_range_read(&r, 1, 30, 4, &off, &len);
  ck_assert_uint_eq(len, 0);
  mailproto_mime_range_read(&r, 0, 0, 0, &off, &len);
  ck_assert_uint_eq(off, 8);
  ck_assert_uint_eq(len, 10);
  mailproto_mime_tree_free(&t);
}
END_TEST

/* HEADER.FIELDS and .NOT split at every byte. */
START_TEST(test_mime_hfilter_every_split) {
  static const char h[] = "From: a\r\n"
                          "To: b,\r\n c\r\n"
                          "junk without colon\r\n"
                          "SUBJECT : s\r\n"
                          "X-Other: o\n"
                          "\tmore\n"
                          "\r\n";
  static const mailproto_imap_str names[] = {{"subject", 7}, {"TO", 2}};
  static const char *const want[] = {"To: b,\r\n c\r\nSUBJECT : s\r\n\r\n",
                                     "From: a\r\njunk without colon\r\n"
                                     "X-Other: o\n\tmore\n\r\n"};
  for (int neg = 0; neg < 2; neg++) {
    size_t n = sizeof h - 1;
    for (size_t a = 0; a <= n; a++) {
      for (size_t b = a; b <= n; b += 3) {
        mailproto_buf out;
        mailproto_buf_init(&out, NULL, 1024);
        mailproto_mime_hfilter f;
        mailproto_mime_hfilter_init(&f, names, 2, neg, mailproto_mime_out_buf,
                                    &out);
        ck_assert_int_eq(mailproto_mime_hfilter_feed(&f, place(h, a), a), 0);
        ck_assert_int_eq(
            mailproto_mime_hfilter_feed(&f, place(h + a, b - a), b - a), 0);
        ck_assert_int_eq(
            mailproto_mime_hfilter_feed(&f, place(h + b, n - b), n - b), 0);
        ck_assert_int_eq(mailproto_mime_hfilter_finish(&f), 0);
        ck_assert_uint_eq(out.len, strlen(want[neg]));
        ck_assert(same(out.data, want[neg], out.len));
        mailproto_buf_free(&out);
      }
    }
  }
  /* a name longer than the head: matches nothing, kept by .NOT */
  char longh[700];
  memset(longh, 'N', 600);
  memcpy(longh + 600, ": v\r\nA: 1\r\n", 11);
  for (int neg = 0; neg < 2; neg++) {
    mailproto_buf out;
    mailproto_buf_init(&out, NULL, 1024);
    mailproto_mime_hfilter f;
    mailproto_mime_hfilter_init(&f, names, 2, neg, mailproto_mime_out_buf,
                                &out);
    ck_assert_int_eq(mailproto_mime_hfilter_feed(&f, place(longh, 611), 611),
                     0);
    ck_assert_int_eq(mailproto_mime_hfilter_finish(&f), 0);
    ck_assert_uint_eq(out.len, neg ? 611 : 0);
    mailproto_buf_free(&out);
  }
  /* an unterminated last line */
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 1024);
  mailproto_mime_hfilter f;
  mailproto_mime_hfilter_init(&f, names, 2, 0, mailproto_mime_out_buf, &out);
  ck_assert_int_eq(mailproto_mime_hfilter_feed(&f, place("To", 2), 2), 0);
  ck_assert_int_eq(mailproto_mime_hfilter_finish(&f), 0);
  ck_assert_uint_eq(out.len, 0);
  mailproto_buf_free(&out);
}
END_TEST

static void binary_of(const char *msg, size_t len, uint32_t part,
                      const char *want, size_t want_len, int want_rc) {
  mailproto_mime_tree t;
  parse_ok(msg, len, &t);
  mailproto_imap_section sec = {0};
  sec.parts = &part;
  sec.part_count = part ? 1 : 0;
  mailproto_mime_range r;
  ck_assert_int_eq(mailproto_mime_resolve(&t, &sec, 1, &r), want_rc);
  if (want_rc == 0) {
    mailproto_imap_fetch_item it = {0};
    for (size_t chunk = 1; chunk < 9; chunk += 7) {
      mailproto_buf out;
      mailproto_buf_init(&out, NULL, (size_t)-1);
      stream_section((const uint8_t *)msg, &r, &it, chunk, &out);
      ck_assert_uint_eq(out.len, want_len);
      ck_assert(same(out.data, want, want_len));
      mailproto_buf_free(&out);
    }
    uint64_t size;
    ck_assert_int_eq(mailproto_mime_range_size(&r, 0, 0, 0, &size),
                     r.cte == MAILPROTO_MIME_CTE_IDENTITY);
  }
  mailproto_mime_tree_free(&t);
}

START_TEST(test_mime_resolve_binary_sections) {
  static const char mp[] =
      "Content-Type: multipart/mixed; boundary=b\n\n"
      "--b\nContent-Transfer-Encoding: base64\nContent-Type: text/plain\n\n"
      "bGluZTEKbGluZTIK\n"
      "--b\nContent-Transfer-Encoding: BASE64\nContent-Type: image/png\n\n"
      "AAEKAg==\n"
      "--b\nContent-Transfer-Encoding: quoted-printable\n\n"
      "caf=C3=A9 =\nsoft   \nhard=00\n"
      "--b\nContent-Transfer-Encoding: x-uuencode\n\n"
      "begin\n"
      "--b\nContent-Transfer-Encoding: 8bit\n\n"
      "raw\nlf\n"
      "--b--\n";
  size_t n = sizeof mp - 1;
  /* base64 text: decoded, then CRLF (RFC 3516 4.2) */
  binary_of(mp, n, 1, "line1\r\nline2\r\n", 14, 0);
  /* base64 binary: exact bytes, a bare LF stays */
  binary_of(mp, n, 2, "\x00\x01\x0a\x02", 4, 0);
  /* quoted-printable text */
  binary_of(mp, n, 3, "caf\xc3\xa9 soft\r\nhard\x00", 17, 0);
  /* unknown encoding */
  binary_of(mp, n, 4, NULL, 0, MAILPROTO_ERR_UNSUPPORTED);
  /* identity: as BODY[] gives it */
  binary_of(mp, n, 5, "raw\r\nlf", 7, 0);
  /* the whole message: raw */
  mailproto_mime_tree t;
  parse_ok(mp, n, &t);
  mailproto_imap_section sec = {0};
  mailproto_mime_range r;
  ck_assert_int_eq(mailproto_mime_resolve(&t, &sec, 1, &r), 0);
  ck_assert_int_eq(r.cte, MAILPROTO_MIME_CTE_IDENTITY);
  ck_assert_uint_eq(r.size, n);
  mailproto_mime_tree_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Decoders                                                            */
/* ------------------------------------------------------------------ */

/* Decodes `in` split at every pair of points; all must agree with want. */
static void decode_every_split(mailproto_mime_cte cte, const char *in,
                               size_t len, const char *want, size_t want_len) {
  for (size_t a = 0; a <= len; a++) {
    for (size_t b = a; b <= len; b++) {
      mailproto_buf out;
      mailproto_buf_init(&out, NULL, (size_t)-1);
      mailproto_mime_decoder d;
      mailproto_mime_decoder_init(&d, cte, mailproto_mime_out_buf, &out);
      ck_assert_int_eq(mailproto_mime_decoder_feed(&d, place(in, a), a), 0);
      ck_assert_int_eq(
          mailproto_mime_decoder_feed(&d, place(in + a, b - a), b - a), 0);
      ck_assert_int_eq(
          mailproto_mime_decoder_feed(&d, place(in + b, len - b), len - b), 0);
      ck_assert_int_eq(mailproto_mime_decoder_finish(&d), 0);
      ck_assert_msg(out.len == want_len && same(out.data, want, want_len),
                    "decoding [%.*s] split %zu/%zu gave [%.*s]", (int)len, in,
                    a, b, (int)out.len, out.data);
      mailproto_buf_free(&out);
    }
  }
}

#define DEC(cte, in, out)                                                      \
  decode_every_split(cte, in, sizeof(in) - 1, out, sizeof(out) - 1)

START_TEST(test_mime_decode_base64) {
  const mailproto_mime_cte B = MAILPROTO_MIME_CTE_BASE64;
  DEC(B, "", "");
  DEC(B, "TWFu", "Man");
  DEC(B, "TWE=", "Ma");
  DEC(B, "TQ==", "M");
  DEC(B, "TW\r\nFu\nTW E=", "ManMa");
  DEC(B, "T*W#F\x01u", "Man"); /* junk ignored */
  DEC(B, "TQ==TWFu", "MMan");  /* a second block after padding */
  DEC(B, "TWF", "Ma");         /* unpadded tail */
  DEC(B, "T", "");             /* a lone symbol */
  DEC(B, "====", "");
  DEC(B, "//79", "\xff\xfe\xfd");
  /* large input in one piece goes through the batch limits */
  static char big[6000], want[4500];
  for (size_t i = 0; i < 1500; i++) {
    memcpy(big + 4 * i, "QUJD", 4);
    memcpy(want + 3 * i, "ABC", 3);
  }
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, (size_t)-1);
  mailproto_mime_decoder d;
  mailproto_mime_decoder_init(&d, B, mailproto_mime_out_buf, &out);
  ck_assert_int_eq(mailproto_mime_decoder_feed(&d, place(big, 6000), 6000), 0);
  ck_assert_int_eq(mailproto_mime_decoder_finish(&d), 0);
  ck_assert_uint_eq(out.len, 4500);
  ck_assert(memcmp(out.data, want, 4500) == 0);
  mailproto_buf_free(&out);
  /* an output error stops the decoder and is returned */
  mailproto_buf tiny;
  mailproto_buf_init(&tiny, NULL, 10);
  mailproto_mime_decoder_init(&d, B, mailproto_mime_out_buf, &tiny);
  ck_assert_int_eq(mailproto_mime_decoder_feed(&d, (const uint8_t *)big, 6000),
                   MAILPROTO_ERR_BUFFER_FULL);
  mailproto_buf_free(&tiny);
}
END_TEST

START_TEST(test_mime_decode_quoted_printable) {
  const mailproto_mime_cte Q = MAILPROTO_MIME_CTE_QP;
  DEC(Q, "", "");
  DEC(Q, "plain text", "plain text");
  DEC(Q, "caf=C3=A9", "caf\xc3\xa9");
  DEC(Q, "lower=e9=c3", "lower\xe9\xc3");
  DEC(Q, "soft=\r\nbreak", "softbreak");
  DEC(Q, "soft=\nbreak", "softbreak");
  DEC(Q, "soft=  \t\r\nbreak", "softbreak"); /* padding after "=" */
  DEC(Q, "trailing   \r\nspace\t\n", "trailing\r\nspace\r\n");
  DEC(Q, "keep  =\r\nspaces", "keep  spaces");
  DEC(Q, "inner  space", "inner  space");
  DEC(Q, "bad=ZZ=4", "bad=ZZ=4");
  DEC(Q, "bad=4Z", "bad=4Z");
  DEC(Q, "=", "=");
  DEC(Q, "= x", "= x");
  DEC(Q, "=\rx", "=\rx");
  DEC(Q, "lone\rcr", "lone\rcr");
  DEC(Q, "end\r", "end\r");
  DEC(Q, "tail ws  ", "tail ws");
  DEC(Q, "=0D=0A", "\r\n");
  /* a run of white space longer than what is held back */
  static char ws[600], want[600];
  memset(ws, ' ', 590);
  memcpy(ws + 590, "x", 1);
  memcpy(want, ws, 591);
  decode_every_split(Q, ws, 591, want, 591);
  /* at a line end the last held-back run goes: 2 * 256 spaces stay */
  memcpy(ws + 590, "\n", 1);
  memset(want, ' ', 512);
  memcpy(want + 512, "\r\n", 2);
  decode_every_split(Q, ws, 591, want, 514);
}
END_TEST

START_TEST(test_mime_crlf_and_window_every_split) {
  /* the store's rule (store_util.h): bare LF and bare CR, also a CR at
   * the very end, each become CRLF */
  static const char in[] = "a\nb\r\nc\rd\n\n\r";
  static const char want[] = "a\r\nb\r\nc\r\nd\r\n\r\n\r\n";
  size_t n = sizeof in - 1;
  for (size_t a = 0; a <= n; a++) {
    for (size_t b = a; b <= n; b++) {
      mailproto_buf out;
      mailproto_buf_init(&out, NULL, 100);
      mailproto_mime_crlf c;
      mailproto_mime_crlf_init(&c, mailproto_mime_out_buf, &out);
      ck_assert_int_eq(mailproto_mime_crlf_feed(&c, place(in, a), a), 0);
      ck_assert_int_eq(
          mailproto_mime_crlf_feed(&c, place(in + a, b - a), b - a), 0);
      ck_assert_int_eq(
          mailproto_mime_crlf_feed(&c, place(in + b, n - b), n - b), 0);
      ck_assert_int_eq(mailproto_mime_crlf_finish(&c), 0);
      ck_assert_uint_eq(out.len, sizeof want - 1);
      ck_assert(same(out.data, want, out.len));
      mailproto_buf_free(&out);
    }
  }
  /* the window on every split */
  for (uint64_t o = 0; o < 12; o++) {
    for (uint64_t l = 0; l < 12; l++) {
      for (size_t cut = 0; cut <= 10; cut++) {
        mailproto_buf out;
        mailproto_buf_init(&out, NULL, 100);
        mailproto_mime_window w;
        mailproto_mime_window_init(&w, o, l, mailproto_mime_out_buf, &out);
        ck_assert_int_eq(
            mailproto_mime_window_feed(&w, (const uint8_t *)"0123456789", cut),
            0);
        ck_assert_int_eq(mailproto_mime_window_feed(
                             &w, (const uint8_t *)&"0123456789"[cut], 10 - cut),
                         0);
        size_t from = o < 10 ? (size_t)o : 10;
        size_t cnt = 10 - from < l ? 10 - from : (size_t)l;
        ck_assert_uint_eq(out.len, cnt);
        ck_assert(same(out.data, &"0123456789"[from], cnt));
        ck_assert_uint_eq(w.total, 10);
        mailproto_buf_free(&out);
      }
    }
  }
  uint64_t count = 0;
  ck_assert_int_eq(mailproto_mime_out_count(&count, S("abc")), 0);
  ck_assert_uint_eq(count, 3);
  ck_assert_int_eq(mailproto_mime_cte_of(NULL, 0), MAILPROTO_MIME_CTE_IDENTITY);
  ck_assert_int_eq(mailproto_mime_cte_of(S(" Binary (c)")),
                   MAILPROTO_MIME_CTE_IDENTITY);
  ck_assert_int_eq(mailproto_mime_cte_of(S("Quoted-Printable")),
                   MAILPROTO_MIME_CTE_QP);
  ck_assert_int_eq(mailproto_mime_cte_of(S("base64")),
                   MAILPROTO_MIME_CTE_BASE64);
  ck_assert_int_eq(mailproto_mime_cte_of(S("x-uue")),
                   MAILPROTO_MIME_CTE_UNKNOWN);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Charsets, RFC 2047, matching                                        */
/* ------------------------------------------------------------------ */

static int converts(const char *cs, const char *in, size_t len,
                    const char *want) {
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 1000);
  mailproto_mime_charset c =
      mailproto_mime_charset_lookup((const uint8_t *)cs, strlen(cs));
  ck_assert_int_eq(mailproto_mime_charset_to_utf8(c, place(in, len), len, &out),
                   0);
  int ok = out.len == strlen(want) && same(out.data, want, out.len);
  mailproto_buf_free(&out);
  return ok;
}

START_TEST(test_mime_charset_to_utf8_forms) {
  ck_assert(converts("ISO-8859-1", "caf\xe9 \xff", 6, "caf\xc3\xa9 \xc3\xbf"));
  ck_assert(converts("latin1", "\xa4", 1, "\xc2\xa4"));
  ck_assert(converts("iso-8859-15", "\xa4\xbe", 2, "\xe2\x82\xac\xc5\xb8"));
  ck_assert(converts("Windows-1252", "\x80\x93\x81", 3,
                     "\xe2\x82\xac\xe2\x80\x9c\xc2\x81"));
  ck_assert(converts("cp1252", "\xe9", 1, "\xc3\xa9"));
  ck_assert(converts("US-ASCII", "a\xe9", 2, "a\xef\xbf\xbd"));
  ck_assert(converts("utf-8", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9,
                     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  /* malformed UTF-8: overlong, surrogate, truncated, stray continuation */
  ck_assert(converts("UTF8", "\xc0\xaf|\xed\xa0\x80|\xe2\x82|\x80", 11,
                     "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef"
                     "\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd"));
  ck_assert(converts("koi8-r", "\xc1\xc2", 2, "\xc1\xc2")); /* unknown */
  ck_assert(converts("utf-8*en", "x", 1, "x"));             /* RFC 2231 5 */
  ck_assert_int_eq(mailproto_mime_charset_lookup(NULL, 0),
                   MAILPROTO_MIME_CHARSET_UNKNOWN);
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 4);
  ck_assert_int_eq(mailproto_mime_charset_to_utf8(MAILPROTO_MIME_CHARSET_LATIN1,
                                                  S("ab\xe9\xe9"), &out),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(out.len, 0);
  mailproto_buf_free(&out);
}
END_TEST

/* The streamed conversion agrees with the whole one at every split. */
START_TEST(test_mime_charset_stream_every_split) {
  static const char in[] = "a\xe9\x80\xa4z\xc3\xa9";
  static const struct {
    mailproto_mime_charset cs;
    const char *want;
  } cases[] = {
      {MAILPROTO_MIME_CHARSET_LATIN1,
       "a\xc3\xa9\xc2\x80\xc2\xa4z\xc3\x83\xc2\xa9"},
      {MAILPROTO_MIME_CHARSET_CP1252,
       "a\xc3\xa9\xe2\x82\xac\xc2\xa4z\xc3\x83\xc2\xa9"},
      {MAILPROTO_MIME_CHARSET_LATIN9,
       "a\xc3\xa9\xc2\x80\xe2\x82\xacz\xc3\x83\xc2\xa9"},
      {MAILPROTO_MIME_CHARSET_ASCII,
       "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd"},
      {MAILPROTO_MIME_CHARSET_UTF8, in}, /* unchanged: the matcher reads it */
      {MAILPROTO_MIME_CHARSET_UNKNOWN, in},
  };
  size_t n = sizeof in - 1;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    for (size_t cut = 0; cut <= n; cut++) {
      mailproto_buf out;
      mailproto_buf_init(&out, NULL, 100);
      mailproto_mime_to_utf8 c;
      mailproto_mime_to_utf8_init(&c, cases[k].cs, mailproto_mime_out_buf,
                                  &out);
      ck_assert_int_eq(mailproto_mime_to_utf8_feed(&c, place(in, cut), cut), 0);
      ck_assert_int_eq(
          mailproto_mime_to_utf8_feed(&c, place(in + cut, n - cut), n - cut),
          0);
      ck_assert_uint_eq(out.len, strlen(cases[k].want));
      ck_assert(same(out.data, cases[k].want, out.len));
      mailproto_buf_free(&out);
    }
  }
  /* a long run goes out in pieces; an output error is returned */
  static uint8_t big[3000];
  memset(big, 0xe9, sizeof big);
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, (size_t)-1);
  mailproto_mime_to_utf8 c;
  mailproto_mime_to_utf8_init(&c, MAILPROTO_MIME_CHARSET_LATIN1,
                              mailproto_mime_out_buf, &out);
  ck_assert_int_eq(mailproto_mime_to_utf8_feed(&c, big, sizeof big), 0);
  ck_assert_uint_eq(out.len, 6000);
  mailproto_buf_free(&out);
  mailproto_buf_init(&out, NULL, 10);
  mailproto_mime_to_utf8_init(&c, MAILPROTO_MIME_CHARSET_LATIN1,
                              mailproto_mime_out_buf, &out);
  ck_assert_int_eq(mailproto_mime_to_utf8_feed(&c, big, sizeof big),
                   MAILPROTO_ERR_BUFFER_FULL);
  mailproto_buf_free(&out);
}
END_TEST

static const char *words(const char *in) {
  static char text[512];
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 4096);
  size_t n = strlen(in);
  ck_assert_int_eq(mailproto_mime_decode_words(place(in, n), n, &out), 0);
  ck_assert_uint_lt(out.len, sizeof text);
  if (out.len > 0)
    memcpy(text, out.data, out.len);
  text[out.len] = 0;
  mailproto_buf_free(&out);
  return text;
}

START_TEST(test_mime_decode_words_rfc2047) {
  /* RFC 2047 8 examples */
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?="), "a");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?= b"), "a b");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?="), "ab");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?="), "ab");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?=\t =?ISO-8859-1?Q?b?="), "ab");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a_b?="), "a b");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?="), "a b");
  ck_assert_str_eq(words("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>"),
                   "Keith Moore <moore@cs.utk.edu>");
  ck_assert_str_eq(words("=?ISO-8859-1?Q?Andr=E9?= Pirard"),
                   "Andr\xc3\xa9 Pirard");
  ck_assert_str_eq(
      words("=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?= "
            "=?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?="),
      "If you can read this you understand the example.");
  /* a UTF-8 character split between two words */
  ck_assert_str_eq(words("=?UTF-8?B?w6k=?= =?UTF-8?Q?=E2=82?= =?utf-8?q?=AC?="),
                   "\xc3\xa9\xe2\x82\xac");
  /* lower case, RFC 2231 language, unknown charset */
  ck_assert_str_eq(words("=?utf-8*de?b?w7w=?="), "\xc3\xbc");
  ck_assert_str_eq(words("=?x-unknown?Q?=C1?="), "\xc1");
  /* malformed words stay text; text between words stays */
  ck_assert_str_eq(words("=?utf-8?X?abc?="), "=?utf-8?X?abc?=");
  ck_assert_str_eq(words("=?utf-8?Q?no end"), "=?utf-8?Q?no end");
  ck_assert_str_eq(words("=??Q?x?="), "=??Q?x?=");
  ck_assert_str_eq(words("=?utf-8?Q?a b?="), "=?utf-8?Q?a b?=");
  ck_assert_str_eq(words("x=?utf-8?Q?y?=z =?utf-8?Q?w?="), "xyz w");
  ck_assert_str_eq(words("=?utf-8?Q?a=?= =?utf-8?Q?=4?="), "a==4");
  ck_assert_str_eq(words("plain =? text ?="), "plain =? text ?=");
  ck_assert_str_eq(words(""), "");
  /* out of room: nothing appended */
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 3);
  ck_assert_int_eq(mailproto_mime_decode_words(S("=?utf-8?Q?abcd?="), &out),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(out.len, 0);
  mailproto_buf_free(&out);
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_buf b;
    mailproto_buf_init(&b, &af.allocator, 1000);
    int rc = mailproto_mime_decode_words(S("a =?utf-8?B?w6k=?= b"), &b);
    ck_assert_int_eq(rc, alloc_fail_triggered(&af) ? MAILPROTO_ERR_NOMEM : 0);
    mailproto_buf_free(&b);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
}
END_TEST

static int finds(const char *needle, const char *text, size_t chunk) {
  mailproto_mime_matcher m;
  ck_assert_int_eq(mailproto_mime_matcher_init(
                       &m, NULL, (const uint8_t *)needle, strlen(needle)),
                   0);
  size_t n = strlen(text);
  int found = 0;
  for (size_t pos = 0; pos < n || (n == 0 && pos == 0);) {
    size_t k = n - pos < chunk ? n - pos : chunk;
    found = mailproto_mime_matcher_feed(&m, place(text + pos, k), k);
    pos += k;
    if (n == 0)
      break;
  }
  int again = mailproto_mime_matcher_feed(&m, (const uint8_t *)"", 0);
  ck_assert_int_eq(again, found);
  mailproto_mime_matcher_free(&m);
  return found;
}

/* A plain model of the matcher for the random test below: whole strings
 * decoded with mailproto_utf8_decode (a byte that starts no valid
 * character stands for itself as "invalid", distinct per side), folded,
 * then searched naively. */
static size_t model_decode(const uint8_t *s, size_t n, uint32_t invalid,
                           uint32_t *out) {
  size_t k = 0;
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    size_t len = mailproto_utf8_decode(s + i, n - i, &cp);
    if (len == 0) {
      /* The matcher ends a broken sequence at the byte that breaks it:
       * skip the lead byte and the continuation bytes that follow it. */
      size_t j = i + 1;
      while (j < n && (s[j] & 0xC0) == 0x80 && s[i] >= 0xC0 && j - i < 4)
        j++;
      out[k++] = invalid;
      i = j;
      continue;
    }
    out[k++] = mailproto_mime_fold(cp);
    i += len;
  }
  return k;
}

static int model_finds(const uint8_t *needle, size_t nn, const uint8_t *text,
                       size_t tn) {
  static uint32_t a[64], b[512];
  size_t na = model_decode(needle, nn, 0xFFFFFFFEu, a);
  size_t nb = model_decode(text, tn, 0xFFFFFFFFu, b);
  if (na == 0)
    return 1;
  for (size_t i = 0; i + na <= nb; i++)
    if (memcmp(a, b + i, na * sizeof *a) == 0)
      return 1;
  return 0;
}

/* The matcher (which jumps ahead between matches) against the model over
 * random texts drawn from pieces that stress it: both cases of the
 * needle's letters, the characters folding to "s" and "k", multi-byte
 * letters, stray continuation and lead bytes, every chunk size 1..5. */
START_TEST(test_mime_matcher_against_model) {
  static const char *const pieces[] = {
      "s",
      "S",
      "k",
      "K",
      "e",
      "\xc5\xbf",
      "\xe2\x84\xaa",
      "\xc3\xa9",
      "\xc3\x89",
      "\xc5",
      "\xe2",
      "\x84",
      "\xaa",
      " ",
      "t",
      "\xc3",
  };
  enum { PIECES = sizeof pieces / sizeof pieces[0] };
  uint32_t seed = 7;
  for (int round = 0; round < 3000; round++) {
    char needle[32], text[256];
    size_t nn = 0, tn = 0;
    seed = seed * 1103515245u + 12345u;
    int parts = 1 + (int)((seed >> 16) % 3);
    for (int i = 0; i < parts; i++) {
      seed = seed * 1103515245u + 12345u;
      const char *p = pieces[(seed >> 16) % 9]; /* valid pieces only */
      memcpy(needle + nn, p, strlen(p));
      nn += strlen(p);
    }
    needle[nn] = '\0';
    seed = seed * 1103515245u + 12345u;
    int tparts = (int)((seed >> 16) % 40);
    for (int i = 0; i < tparts; i++) {
      seed = seed * 1103515245u + 12345u;
      const char *p = pieces[(seed >> 16) % PIECES];
      memcpy(text + tn, p, strlen(p));
      tn += strlen(p);
    }
    text[tn] = '\0';
    int want =
        model_finds((const uint8_t *)needle, nn, (const uint8_t *)text, tn);
    for (size_t chunk = 1; chunk <= 5; chunk++)
      ck_assert_msg(finds(needle, text, chunk) == want, "round %d chunk %zu",
                    round, chunk);
  }
}
END_TEST

START_TEST(test_mime_matcher_case_folding) {
  static const struct {
    const char *needle, *text;
    int found;
  } cases[] = {
      {"", "", 1},
      {"", "anything", 1},
      {"hello", "Say HeLLo world", 1},
      {"HELLO", "say hello", 1},
      {"hello", "hell o", 0},
      {"aab", "aaab", 1}, /* the failure links matter */
      {"abab", "abaabab", 1},
      {"caf\xc3\xa9", "CAF\xc3\x89 au lait", 1},           /* é / É */
      {"\xc5\x93uvre", "\xc5\x92UVRE", 1},                 /* œ / Œ */
      {"\xce\xb1\xce\xb2", "\xce\x91\xce\x92\xce\xb3", 1}, /* Greek */
      {"\xd0\xbf\xd1\x80", "\xd0\x9f\xd0\xa0", 1},         /* Cyrillic */
      {"\xc3\xbf", "\xc5\xb8", 1},                         /* ÿ / Ÿ */
      /* Every script Unicode cases: Vietnamese ệ / Ệ, Romanian ș / Ș,
       * Armenian բ / Բ, Georgian Mtavruli Ა / ა, Cherokee Ꭰ / ꭰ. */
      {"vi\xe1\xbb\x87t", "VI\xe1\xbb\x86T", 1},
      {"\xc8\x99ir", "\xc8\x98IR", 1},
      {"\xd5\xa2", "\xd4\xb2", 1},
      {"\xe1\xb2\x90", "\xe1\x83\x90", 1},
      {"\xea\xad\xb0", "\xe1\x8e\xa0", 1},
      /* Where the text jumps ahead to the needle's first byte: a non-ASCII
       * character folding to it (LONG S to "s", KELVIN SIGN to "k"), an
       * uppercase first letter, a candidate inside a multi-byte
       * character, a first character beyond ASCII. */
      {"stra", "x \xc5\xbftra", 1},
      {"kelvin",
       "300 \xe2\x84\xaa"
       "elvin",
       1},
      {"Zebra", "a zebra", 1},
      {"zebra", "\xc3\xa9z\xc3\xa9zebr\xc3\xa9 zEBRA", 1},
      {"zebra",
       "z\xc3\xa9"
       "bra zebr",
       0},
      {"\xc3\xa9t\xc3\xa9", "x \xc3\x89T\xc3\x89", 1},
      {"aa",
       "\xc3"
       "a\xc3"
       "aa",
       1},
      {"stra\xc3\x9f"
       "e",
       "STRASSE", 0},          /* no full folding (documented) */
      {"x", "\xff\xfex", 1},   /* after malformed bytes */
      {"\xc3\xa9", "\xc3", 0}, /* a truncated sequence */
      {"\xe9", "\xe9", 0},     /* malformed UTF-8 never matches */
      {"a\xe2\x82\xac", "xA\xe2\x82\xac", 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    for (size_t chunk = 1; chunk <= 4; chunk++)
      ck_assert_msg(finds(cases[i].needle, cases[i].text, chunk) ==
                        cases[i].found,
                    "case %zu chunk %zu", i, chunk);
  ck_assert_uint_eq(mailproto_mime_fold('Q'), 'q');
  ck_assert_uint_eq(mailproto_mime_fold(0xD7), 0xD7);
  ck_assert_uint_eq(mailproto_mime_fold(0x130), 0x130);
  ck_assert_uint_eq(mailproto_mime_fold(0x139), 0x13A);
  ck_assert_uint_eq(mailproto_mime_fold(0x386), 0x3AC);
  ck_assert_uint_eq(mailproto_mime_fold(0x3C2), 0x3C3);
  ck_assert_uint_eq(mailproto_mime_fold(0x401), 0x451);
  ck_assert_uint_eq(mailproto_mime_fold(0xB5), 0x3BC);  /* micro: mu */
  ck_assert_uint_eq(mailproto_mime_fold(0x1E9E), 0xDF); /* capital sharp s */
  /* reset; the output function; allocation failure */
  mailproto_mime_matcher m;
  ck_assert_int_eq(mailproto_mime_matcher_init(&m, NULL, S("ab")), 0);
  ck_assert_int_eq(mailproto_mime_out_match(&m, S("xAB")), 0);
  ck_assert_int_eq(m.matched, 1);
  mailproto_mime_matcher_reset(&m);
  ck_assert_int_eq(mailproto_mime_matcher_feed(&m, S("a")), 0);
  mailproto_mime_matcher_free(&m);
  for (unsigned long n = 1; n < 4; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    int rc = mailproto_mime_matcher_init(&m, &af.allocator, S("needle"));
    ck_assert_int_eq(rc, alloc_fail_triggered(&af) ? MAILPROTO_ERR_NOMEM : 0);
    mailproto_mime_matcher_free(&m);
    ck_assert_int_eq(af.live, 0);
  }
}
END_TEST

Suite *suite_mime_imap(void) {
  Suite *s = suite_create("mime_imap");
  TCase *c = tcase_create("corpus");
  tcase_set_timeout(c, 120);
  tcase_add_loop_test(c, test_mime_fetch_items_match_expected, 0,
                      MIME_CORPUS_COUNT);
  tcase_add_loop_test(c, test_mime_write_body_valid_syntax, 0,
                      MIME_CORPUS_COUNT);
  tcase_add_test(c, test_mime_write_body_hostile_values);
  tcase_add_test(c, test_mime_write_body_charset_star_no_default);
  tcase_add_test(c, test_mime_write_nomem_and_full);
  tcase_add_test(c, test_mime_write_deep_nesting_syntax);
  suite_add_tcase(s, c);

  TCase *sec = tcase_create("sections");
  tcase_set_timeout(sec, 120);
  tcase_add_test(sec, test_mime_resolve_sections);
  tcase_add_test(sec, test_mime_stream_partial_every_window);
  tcase_add_test(sec, test_mime_hfilter_every_split);
  tcase_add_test(sec, test_mime_resolve_binary_sections);
  suite_add_tcase(s, sec);

  TCase *d = tcase_create("decoders");
  tcase_add_test(d, test_mime_decode_base64);
  tcase_add_test(d, test_mime_decode_quoted_printable);
  tcase_add_test(d, test_mime_crlf_and_window_every_split);
  tcase_add_test(d, test_mime_charset_to_utf8_forms);
  tcase_add_test(d, test_mime_charset_stream_every_split);
  tcase_add_test(d, test_mime_decode_words_rfc2047);
  tcase_add_test(d, test_mime_matcher_case_folding);
  tcase_add_test(d, test_mime_matcher_against_model);
  suite_add_tcase(s, d);
  return s;
}
