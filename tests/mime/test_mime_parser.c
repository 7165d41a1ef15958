/*
 * The MIME structure parser, its serialised form and the header value
 * readers (Content-Type, parameters with RFC 2231, addresses, header
 * blocks): exact offsets, sizes and line counts; the same tree whatever
 * the chunking; malformed, truncated and oversized input through the
 * over-read guard; bounded memory at every limit; allocation failures; an
 * untrusted cache entry that must never load wrong.
 */
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "mime/mime_header.h"
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
    ck_assert_int_eq(overread_init(&guard, 32u << 20), 0);
    guard_ready = 1;
  }
  return overread_place(&guard, data, len);
}

/* Parses `data` fed in chunks of `chunk` bytes (0: whole), every chunk
 * placed right before an unreadable page. */
static int parse_chunks(const mailproto_allocator *a,
                        const mailproto_mime_limits *lim, const void *data,
                        size_t len, size_t chunk, mailproto_mime_tree *t) {
  mailproto_mime_parser p;
  mailproto_mime_parser_init(&p, a, lim);
  int rc = 0;
  size_t pos = 0;
  if (chunk == 0)
    chunk = len;
  while (rc == 0 && pos < len) {
    size_t n = len - pos < chunk ? len - pos : chunk;
    rc = mailproto_mime_parser_feed(&p, place((const uint8_t *)data + pos, n),
                                    n);
    pos += n;
  }
  int frc = mailproto_mime_parser_finish(&p, t);
  mailproto_mime_parser_free(&p);
  return rc ? rc : frc;
}

static void parse_ok(const void *data, size_t len, mailproto_mime_tree *t) {
  mailproto_mime_tree_init(t, NULL);
  ck_assert_int_eq(parse_chunks(NULL, NULL, data, len, 0, t), 0);
}

/* Two trees are equal if their serialised forms are (everything else is
 * derived from what is serialised). */
static void assert_same_tree(const mailproto_mime_tree *a,
                             const mailproto_mime_tree *b) {
  mailproto_buf x, y;
  mailproto_buf_init(&x, NULL, (size_t)-1);
  mailproto_buf_init(&y, NULL, (size_t)-1);
  ck_assert_int_eq(mailproto_mime_serialize(a, &x), 0);
  ck_assert_int_eq(mailproto_mime_serialize(b, &y), 0);
  ck_assert_uint_eq(x.len, y.len);
  ck_assert(memcmp(x.data, y.data, x.len) == 0);
  mailproto_buf_free(&x);
  mailproto_buf_free(&y);
}

static int ref_is(const mailproto_mime_tree *t, mailproto_mime_ref r,
                  const char *want) {
  if (!want)
    return r.off == MAILPROTO_MIME_NONE;
  return r.off != MAILPROTO_MIME_NONE && r.len == strlen(want) &&
         (r.len == 0 || memcmp(t->pool + r.off, want, r.len) == 0);
}

/* ------------------------------------------------------------------ */
/* Structure                                                           */
/* ------------------------------------------------------------------ */

/* Offsets worked out by hand (see the byte positions in the comments). */
START_TEST(test_mime_parser_offsets_multipart) {
  static const char m[] =
      "Subject: x\r\n"                                    /* 0 */
      "Content-Type: multipart/mixed; boundary=b\r\n\r\n" /* 12, blank 55 */
      "pre\r\n"                                           /* 57 */
      "--b\r\n"                                           /* 62 */
      "Content-Type: text/plain\r\n\r\n"                  /* 67 */
      "hello\r\n"                                         /* 95 */
      "--b\r\n"                                           /* 102 */
      "\r\n"                                              /* 107 */
      "bye\nline\n"                                       /* 109 */
      "--b--\r\n"                                         /* 118 */
      "epi\r\n";                                          /* 125 */
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  ck_assert_uint_eq(t.size, 130);
  ck_assert_uint_eq(t.vsize, 132); /* two bare LFs */
  ck_assert_uint_eq(t.part_count, 3);
  const mailproto_mime_part *r = &t.parts[0];
  ck_assert_uint_eq(r->header_offset, 0);
  ck_assert_uint_eq(r->header_size, 57);
  ck_assert_uint_eq(r->header_vsize, 57);
  ck_assert_uint_eq(r->body_offset, 57);
  ck_assert_uint_eq(r->body_size, 73);
  ck_assert_uint_eq(r->body_vsize, 75);
  ck_assert_uint_eq(r->lines, 11);
  ck_assert_uint_eq(r->child_count, 2);
  ck_assert_uint_eq(r->subtree, 3);
  ck_assert(r->flags & MAILPROTO_MIME_PART_MULTIPART);
  ck_assert(r->flags & MAILPROTO_MIME_PART_ENVELOPE);
  ck_assert(r->flags & MAILPROTO_MIME_PART_BLANK_LINE);
  const mailproto_mime_envelope *env = mailproto_mime_envelope_of(&t, 0);
  ck_assert_ptr_nonnull(env);
  ck_assert(ref_is(&t, env->fields[MAILPROTO_MIME_ENV_SUBJECT], "x"));
  ck_assert(ref_is(&t, env->fields[MAILPROTO_MIME_ENV_FROM], NULL));
  ck_assert(ref_is(&t, r->fields[MAILPROTO_MIME_CONTENT_TYPE],
                   "multipart/mixed; boundary=b"));

  const mailproto_mime_part *p1 = &t.parts[1];
  ck_assert_uint_eq(p1->header_offset, 67);
  ck_assert_uint_eq(p1->header_size, 28);
  ck_assert_uint_eq(p1->body_offset, 95);
  ck_assert_uint_eq(p1->body_size, 5); /* the CRLF before --b is not hers */
  ck_assert_uint_eq(p1->body_vsize, 5);
  ck_assert_uint_eq(p1->lines, 0);
  ck_assert_uint_eq(p1->parent, 0);
  ck_assert_uint_eq(p1->depth, 1);
  ck_assert(p1->flags & MAILPROTO_MIME_PART_TEXT);
  ck_assert(!(p1->flags & MAILPROTO_MIME_PART_ENVELOPE));
  ck_assert_uint_eq(p1->envelope, MAILPROTO_MIME_NONE);

  const mailproto_mime_part *p2 = &t.parts[2];
  ck_assert_uint_eq(p2->header_offset, 107);
  ck_assert_uint_eq(p2->header_size, 2);
  ck_assert_uint_eq(p2->body_offset, 109);
  ck_assert_uint_eq(p2->body_size, 8); /* "bye\nline" */
  ck_assert_uint_eq(p2->body_vsize, 9);
  ck_assert_uint_eq(p2->lines, 1);
  ck_assert(p2->flags & MAILPROTO_MIME_PART_TEXT); /* default text/plain */
  ck_assert_uint_eq(mailproto_mime_child(&t, 0, 1), 2);
  ck_assert_uint_eq(mailproto_mime_child(&t, 0, 2), MAILPROTO_MIME_NONE);
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_parser_bare_lf_sizes) {
  static const char m[] = "A: b\nC: d\n\nline 1\nline 2\r\nline 3";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  const mailproto_mime_part *r = &t.parts[0];
  ck_assert_uint_eq(r->header_size, 11);
  ck_assert_uint_eq(r->header_vsize, 14);
  ck_assert_uint_eq(r->body_size, sizeof m - 1 - 11);
  ck_assert_uint_eq(r->body_vsize, sizeof m - 1 - 11 + 1);
  ck_assert_uint_eq(r->lines, 2);
  ck_assert_uint_eq(t.vsize, sizeof m - 1 + 4);
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_parser_bare_cr_sizes_every_split) {
  /* The store's rule (store_util.h: what RFC822.SIZE counts): a bare CR
   * ends a line and goes out as CRLF like a bare LF, also a CR that ends
   * the message; a CR split from its LF by a chunk edge is no bare CR.
   * "Subject: x\n\nab\rcd\r\n\r" is 22 stored octets: 4 bare. */
  static const char m[] = "Subject: x\n\nab\rcd\r\n\r";
  size_t n = sizeof m - 1;
  for (size_t chunk = 0; chunk <= n; chunk++) {
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    ck_assert_int_eq(parse_chunks(NULL, NULL, m, n, chunk, &t), 0);
    const mailproto_mime_part *r = &t.parts[0];
    ck_assert_uint_eq(t.size, n);
    ck_assert_uint_eq(t.vsize, n + 4);
    ck_assert_uint_eq(r->header_vsize, 14);
    ck_assert_uint_eq(r->body_size, 8);
    ck_assert_uint_eq(r->body_vsize, 10); /* "ab\r\ncd\r\n\r\n" */
    ck_assert_uint_eq(r->lines, 3);
    mailproto_mime_tree_free(&t);
  }
}
END_TEST

START_TEST(test_mime_parser_message_rfc822_nesting) {
  static const char m[] = "Content-Type: multipart/mixed; boundary=o\r\n\r\n"
                          "--o\r\n"
                          "Content-Type: message/rfc822\r\n\r\n"
                          "Subject: inner\r\n"
                          "From: a@b\r\n\r\n"
                          "inner body\r\n"
                          "--o--\r\n";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  ck_assert_uint_eq(t.part_count, 3);
  const mailproto_mime_part *msg = &t.parts[1], *in = &t.parts[2];
  ck_assert(msg->flags & MAILPROTO_MIME_PART_MESSAGE);
  ck_assert(msg->flags & MAILPROTO_MIME_PART_MESSAGE_TYPE);
  ck_assert_uint_eq(msg->child_count, 1);
  ck_assert(in->flags & MAILPROTO_MIME_PART_ENVELOPE);
  ck_assert_uint_eq(in->header_offset, msg->body_offset);
  ck_assert_uint_eq(in->header_size + in->body_size, msg->body_size);
  ck_assert_uint_eq(in->body_size, 10); /* "inner body" */
  ck_assert_uint_eq(msg->lines, 3);
  const mailproto_mime_envelope *e = mailproto_mime_envelope_of(&t, 1);
  ck_assert_ptr_nonnull(e);
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_SUBJECT], "inner"));
  ck_assert_ptr_eq(e, mailproto_mime_envelope_of(&t, 2));
  ck_assert_ptr_null(mailproto_mime_envelope_of(&t, 99));
  /* the outer header's Subject is absent: the inner one is not its */
  ck_assert(
      ref_is(&t, t.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT], NULL));
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_parser_field_values) {
  static const char m[] = "Subject:   folded\r\n \tacross\r\n  lines  \r\n"
                          "Subject: second is ignored\r\n"
                          "Message-ID:\r\n <id@x>\r\n"
                          "In-Reply-To:\r\n"
                          "X-Long-Unkept: a\r\n b\r\n"
                          "To:a@b\r\n"
                          "CONTENT-TYPE : text/plain\r\n"
                          "content-id: <c@d>\r\n"
                          "\r\n";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  const mailproto_mime_envelope *e = &t.envelopes[0];
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_SUBJECT],
                   "folded \tacross  lines"));
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_MESSAGE_ID], "<id@x>"));
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_IN_REPLY_TO], ""));
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_TO], "a@b"));
  ck_assert(
      ref_is(&t, t.parts[0].fields[MAILPROTO_MIME_CONTENT_TYPE], "text/plain"));
  ck_assert(ref_is(&t, t.parts[0].fields[MAILPROTO_MIME_CONTENT_ID], "<c@d>"));
  ck_assert_str_eq(mailproto_mime_field_name(MAILPROTO_MIME_CONTENT_MD5),
                   "Content-MD5");
  ck_assert_str_eq(mailproto_mime_env_field_name(MAILPROTO_MIME_ENV_REPLY_TO),
                   "Reply-To");
  ck_assert_ptr_null(mailproto_mime_field_name(MAILPROTO_MIME_FIELD_COUNT));
  ck_assert_ptr_null(mailproto_mime_env_field_name(MAILPROTO_MIME_ENV_COUNT));
  mailproto_mime_tree_free(&t);
}
END_TEST

START_TEST(test_mime_parser_nul_and_8bit_in_headers) {
  static const char m[] = "Subject: a\0b\xff\r\nFrom:\0x@y\r\n\r\nbody\0";
  mailproto_mime_tree t;
  parse_ok(m, sizeof m - 1, &t);
  const mailproto_mime_envelope *e = &t.envelopes[0];
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_SUBJECT], "a b\xff"));
  ck_assert(ref_is(&t, e->fields[MAILPROTO_MIME_ENV_FROM], "x@y"));
  ck_assert_uint_eq(t.parts[0].body_size, 5);
  ck_assert_ptr_null(memchr(t.pool, 0, t.pool_len));
  mailproto_mime_tree_free(&t);
}
END_TEST

/* Malformed messages: the structure the parser gives them. */
START_TEST(test_mime_parser_malformed_shapes) {
  mailproto_mime_tree t;
  /* empty input: one empty part */
  parse_ok("", 0, &t);
  ck_assert_uint_eq(t.part_count, 1);
  ck_assert_uint_eq(t.parts[0].header_size, 0);
  ck_assert_uint_eq(t.parts[0].body_size, 0);
  mailproto_mime_tree_free(&t);
  /* no blank line: all header, no body */
  parse_ok(S("Subject: x\r\nFrom: y"), &t);
  ck_assert_uint_eq(t.parts[0].header_size, 19);
  ck_assert_uint_eq(t.parts[0].body_size, 0);
  ck_assert(!(t.parts[0].flags & MAILPROTO_MIME_PART_BLANK_LINE));
  ck_assert(ref_is(&t, t.envelopes[0].fields[MAILPROTO_MIME_ENV_FROM], "y"));
  mailproto_mime_tree_free(&t);
  /* a line without colon does not end the header */
  parse_ok(S("junk line\r\nSubject: s\r\n\r\nb"), &t);
  ck_assert(ref_is(&t, t.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT], "s"));
  ck_assert_uint_eq(t.parts[0].body_size, 1);
  mailproto_mime_tree_free(&t);
  /* multipart without boundary parameter: no children */
  parse_ok(S("Content-Type: multipart/mixed\r\n\r\n--x\r\n\r\nt\r\n--x--\r\n"),
           &t);
  ck_assert_uint_eq(t.part_count, 1);
  ck_assert(t.parts[0].flags & MAILPROTO_MIME_PART_MULTIPART);
  mailproto_mime_tree_free(&t);
  /* a part ending inside its header: header to the delimiter, no body */
  parse_ok(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
             "Content-Type: text/html\r\n--b--\r\n"),
           &t);
  ck_assert_uint_eq(t.part_count, 2);
  ck_assert_uint_eq(t.parts[1].header_size, 23);
  ck_assert_uint_eq(t.parts[1].body_size, 0);
  ck_assert(!(t.parts[1].flags & MAILPROTO_MIME_PART_BLANK_LINE));
  mailproto_mime_tree_free(&t);
  /* a delimiter at the very end without a line end opens an empty part */
  parse_ok(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
             "x\r\n--b"),
           &t);
  ck_assert_uint_eq(t.part_count, 3);
  ck_assert_uint_eq(t.parts[1].body_size, 1);
  ck_assert_uint_eq(t.parts[2].header_size, 0);
  ck_assert_uint_eq(t.parts[2].body_offset, t.size);
  mailproto_mime_tree_free(&t);
  /* two delimiters in a row: an empty part between them */
  parse_ok(S("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n"
             "\r\nx\r\n--b--"),
           &t);
  ck_assert_uint_eq(t.part_count, 3);
  ck_assert_uint_eq(t.parts[1].header_size, 0);
  ck_assert_uint_eq(t.parts[1].body_size, 0);
  ck_assert_uint_eq(t.parts[2].body_size, 1);
  mailproto_mime_tree_free(&t);
  /* multipart/digest: parts without Content-Type are messages */
  parse_ok(S("Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\n"
             "Subject: s\r\n\r\nx\r\n--d--\r\n"),
           &t);
  ck_assert_uint_eq(t.part_count, 3);
  ck_assert(t.parts[1].flags & MAILPROTO_MIME_PART_DIGEST_CHILD);
  ck_assert(t.parts[1].flags & MAILPROTO_MIME_PART_MESSAGE);
  mailproto_mime_tree_free(&t);
  /* message/rfc822 in base64: opaque */
  parse_ok(S("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: "
             "base64\r\n\r\nU3ViamVjdDogeA0KDQo=\r\n"),
           &t);
  ck_assert_uint_eq(t.part_count, 1);
  ck_assert(t.parts[0].flags & MAILPROTO_MIME_PART_MESSAGE_TYPE);
  ck_assert(!(t.parts[0].flags & MAILPROTO_MIME_PART_MESSAGE));
  mailproto_mime_tree_free(&t);
  /* message/global with 8bit: parsed */
  parse_ok(S("Content-Type: message/global\r\nContent-Transfer-Encoding: "
             "8bit\r\n\r\nSubject: \xc3\xa9\r\n\r\nx"),
           &t);
  ck_assert_uint_eq(t.part_count, 2);
  ck_assert(t.parts[0].flags & MAILPROTO_MIME_PART_GLOBAL);
  ck_assert(t.parts[0].flags & MAILPROTO_MIME_PART_MESSAGE);
  mailproto_mime_tree_free(&t);
}
END_TEST

/* "--b" and white space past the head buffer: the rest of the line
 * decides. */
START_TEST(test_mime_parser_boundary_long_padding) {
  for (int bad = 0; bad < 2; bad++) {
    char m[2048];
    size_t n = 0;
    n += (size_t)sprintf(m + n, "Content-Type: multipart/mixed; boundary=b"
                                "\r\n\r\n--b\r\n\r\none\r\n--b");
    for (int i = 0; i < 600; i++)
      m[n++] = i % 2 ? ' ' : '\t';
    if (bad)
      m[n++] = 'x';
    n += (size_t)sprintf(m + n, "\r\n\r\ntwo\r\n--b--\r\n");
    for (size_t chunk = 0; chunk < 8; chunk++) {
      mailproto_mime_tree t;
      mailproto_mime_tree_init(&t, NULL);
      ck_assert_int_eq(parse_chunks(NULL, NULL, m, n, chunk ? chunk : 0, &t),
                       0);
      ck_assert_uint_eq(t.part_count, bad ? 2 : 3);
      mailproto_mime_tree_free(&t);
    }
  }
}
END_TEST

START_TEST(test_mime_parser_boundary_length_limit) {
  for (int extra = 0; extra < 2; extra++) {
    size_t bl = MAILPROTO_MIME_MAX_BOUNDARY + (size_t)extra;
    char *b = malloc(bl + 1);
    memset(b, 'q', bl);
    b[bl] = 0;
    size_t cap = 4 * bl + 256;
    char *m = malloc(cap);
    int n = snprintf(m, cap,
                     "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n"
                     "--%s\r\n\r\nx\r\n--%s--\r\n",
                     b, b, b);
    mailproto_mime_tree t;
    parse_ok(m, (size_t)n, &t);
    ck_assert_uint_eq(t.part_count, extra ? 1 : 2);
    mailproto_mime_tree_free(&t);
    free(m);
    free(b);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Chunking, over-reads, limits                                        */
/* ------------------------------------------------------------------ */

START_TEST(test_mime_parser_chunk_invariance) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read(mime_corpus[_i], ".eml", &len);
  ck_assert_ptr_nonnull(m);
  mailproto_mime_tree whole;
  parse_ok(m, len, &whole);
  static const size_t sizes[] = {1,  2,  3,  4,  5,   7,   8,   13,
                                 16, 31, 64, 77, 100, 256, 1000};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    ck_assert_int_eq(parse_chunks(NULL, NULL, m, len, sizes[k], &t), 0);
    assert_same_tree(&whole, &t);
    mailproto_mime_tree_free(&t);
  }
  /* every split into two pieces */
  for (size_t cut = 0; cut <= len; cut++) {
    mailproto_mime_parser p;
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    mailproto_mime_parser_init(&p, NULL, NULL);
    ck_assert_int_eq(mailproto_mime_parser_feed(&p, place(m, cut), cut), 0);
    ck_assert_int_eq(
        mailproto_mime_parser_feed(&p, place(m + cut, len - cut), len - cut),
        0);
    ck_assert_int_eq(mailproto_mime_parser_finish(&p, &t), 0);
    mailproto_mime_parser_free(&p);
    assert_same_tree(&whole, &t);
    mailproto_mime_tree_free(&t);
  }
  /* every part lies inside the message and inside its parent */
  for (uint32_t i = 0; i < whole.part_count; i++) {
    const mailproto_mime_part *pt = &whole.parts[i];
    ck_assert_uint_le(pt->body_offset + pt->body_size, whole.size);
    ck_assert_uint_eq(pt->header_offset + pt->header_size, pt->body_offset);
    ck_assert_uint_ge(pt->body_vsize, pt->body_size);
    ck_assert_uint_le(pt->lines, pt->body_size);
    if (i > 0) {
      const mailproto_mime_part *up = &whole.parts[pt->parent];
      ck_assert_uint_ge(pt->header_offset, up->body_offset);
      ck_assert_uint_le(pt->body_offset + pt->body_size,
                        up->body_offset + up->body_size);
    }
  }
  ck_assert_uint_eq(whole.vsize,
                    whole.parts[0].header_vsize + whole.parts[0].body_vsize);
  mailproto_mime_tree_free(&whole);
  free(m);
}
END_TEST

START_TEST(test_mime_parser_reuse_after_finish) {
  mailproto_mime_parser p;
  mailproto_mime_parser_init(&p, NULL, NULL);
  mailproto_mime_tree a, b;
  mailproto_mime_tree_init(&a, NULL);
  mailproto_mime_tree_init(&b, NULL);
  static const char m1[] =
      "Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n\r\nx";
  static const char m2[] = "Subject: second\r\n\r\nbody";
  ck_assert_int_eq(mailproto_mime_parser_feed(&p, m1, sizeof m1 - 1), 0);
  ck_assert_int_eq(mailproto_mime_parser_finish(&p, &a), 0);
  ck_assert_int_eq(mailproto_mime_parser_feed(&p, m2, sizeof m2 - 1), 0);
  ck_assert_int_eq(mailproto_mime_parser_finish(&p, &b), 0);
  mailproto_mime_parser_free(&p);
  ck_assert_uint_eq(a.part_count, 2);
  ck_assert_uint_eq(b.part_count, 1);
  ck_assert(
      ref_is(&b, b.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT], "second"));
  mailproto_mime_tree c;
  parse_ok(m2, sizeof m2 - 1, &c);
  assert_same_tree(&b, &c);
  /* finishing into a used tree frees what it held */
  mailproto_mime_parser_init(&p, NULL, NULL);
  ck_assert_int_eq(mailproto_mime_parser_finish(&p, &a), 0);
  ck_assert_uint_eq(a.part_count, 1);
  mailproto_mime_parser_free(&p);
  mailproto_mime_tree_free(&a);
  mailproto_mime_tree_free(&b);
  mailproto_mime_tree_free(&c);
}
END_TEST

/* Builds n nested multiparts (or message/rfc822 parts) around a text. */
static char *nested(int n, int messages, size_t *len) {
  size_t cap = (size_t)n * 120 + 256, pos = 0;
  char *m = malloc(cap);
  for (int i = 0; i < n; i++) {
    if (messages)
      pos += (size_t)sprintf(m + pos, "Content-Type: message/rfc822\r\n\r\n");
    else
      pos += (size_t)sprintf(
          m + pos,
          "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
          "--b%d\r\n",
          i, i);
  }
  pos += (size_t)sprintf(m + pos, "Content-Type: text/plain\r\n\r\ndeep\r\n");
  for (int i = n - 1; !messages && i >= 0; i--)
    pos += (size_t)sprintf(m + pos, "--b%d--\r\n", i);
  *len = pos;
  return m;
}

START_TEST(test_mime_parser_depth_capped) {
  for (int messages = 0; messages < 2; messages++) {
    size_t len;
    char *m = nested(300, messages, &len);
    mailproto_mime_tree t;
    parse_ok(m, len, &t);
    unsigned deepest = 0;
    for (uint32_t i = 0; i < t.part_count; i++)
      if (t.parts[i].depth > deepest)
        deepest = t.parts[i].depth;
    ck_assert_uint_eq(deepest, 100);
    const mailproto_mime_part *last = &t.parts[t.part_count - 1];
    ck_assert_uint_eq(last->child_count, 0);
    ck_assert_uint_eq(last->body_offset + last->body_size <= len, 1);
    ck_assert_uint_eq(t.parts[0].subtree, t.part_count);
    /* a smaller cap */
    mailproto_mime_limits lim;
    mailproto_mime_limits_default(&lim);
    lim.max_depth = 3;
    mailproto_mime_tree s;
    mailproto_mime_tree_init(&s, NULL);
    ck_assert_int_eq(parse_chunks(NULL, &lim, m, len, 7, &s), 0);
    ck_assert_uint_eq(s.parts[s.part_count - 1].depth, 3);
    mailproto_mime_tree_free(&s);
    mailproto_mime_tree_free(&t);
    free(m);
  }
}
END_TEST

START_TEST(test_mime_parser_part_cap) {
  size_t cap = 64 * 1024, pos = 0;
  char *m = malloc(cap);
  pos +=
      (size_t)sprintf(m, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
  for (int i = 0; i < 500; i++)
    pos += (size_t)sprintf(m + pos, "--p\r\n\r\npart %d\r\n", i);
  pos += (size_t)sprintf(m + pos, "--p--\r\n");
  mailproto_mime_limits lim;
  mailproto_mime_limits_default(&lim);
  lim.max_parts = 10;
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, NULL);
  ck_assert_int_eq(parse_chunks(NULL, &lim, m, pos, 0, &t), 0);
  ck_assert_uint_eq(t.part_count, 10);
  ck_assert_uint_eq(t.parts[0].child_count, 9);
  ck_assert_uint_eq(t.parts[0].body_offset + t.parts[0].body_size, pos);
  /* the last part ends at its delimiter; the multipart holds the rest */
  const mailproto_mime_part *last = &t.parts[9];
  ck_assert_uint_eq(last->body_size, 6); /* "part 8" */
  ck_assert_uint_eq(t.parts[0].subtree, 10);
  mailproto_mime_tree_free(&t);
  /* the default cap: 10,000 parts */
  size_t big = 20000 * 16 + 128;
  char *h = malloc(big);
  pos = (size_t)sprintf(h, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
  for (int i = 0; i < 20000; i++)
    pos += (size_t)sprintf(h + pos, "--p\r\n\r\nx\r\n");
  mailproto_mime_tree_init(&t, NULL);
  ck_assert_int_eq(parse_chunks(NULL, NULL, h, pos, 4096, &t), 0);
  ck_assert_uint_eq(t.part_count, 10000);
  ck_assert_uint_le(mailproto_mime_tree_memory(&t), 10000 * 200);
  mailproto_mime_tree_free(&t);
  free(h);
  free(m);
}
END_TEST

START_TEST(test_mime_parser_enormous_header_counts) {
  size_t n = 300000, pos = 0;
  char *m = malloc(n * 12 + 64);
  for (size_t i = 0; i < n; i++)
    pos += (size_t)sprintf(m + pos, "X-H%zu: v\r\n", i % 10);
  pos += (size_t)sprintf(m + pos, "Subject: late\r\n\r\nbody");
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, &af.allocator);
  ck_assert_int_eq(parse_chunks(&af.allocator, NULL, m, pos, 65536, &t), 0);
  ck_assert(
      ref_is(&t, t.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT], "late"));
  ck_assert_uint_lt(af.peak_bytes, 4096); /* nothing per header field */
  mailproto_mime_tree_free(&t);
  ck_assert_int_eq(af.live, 0);
  free(m);
}
END_TEST

START_TEST(test_mime_parser_field_and_pool_caps) {
  size_t big = 3u << 20;
  char *m = malloc(2 * big + 1024);
  size_t pos = (size_t)sprintf(m, "Subject: ");
  memset(m + pos, 's', big);
  pos += big;
  pos += (size_t)sprintf(m + pos, "\r\nTo: ");
  memset(m + pos, 't', big);
  pos += big;
  pos += (size_t)sprintf(m + pos, "\r\n\r\nbody");
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, &af.allocator);
  ck_assert_int_eq(parse_chunks(&af.allocator, NULL, m, pos, 100000, &t), 0);
  ck_assert_uint_eq(t.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT].len,
                    64u << 10);
  ck_assert_uint_eq(t.envelopes[0].fields[MAILPROTO_MIME_ENV_TO].len,
                    64u << 10);
  ck_assert_uint_lt(af.peak_bytes, 512u << 10);
  mailproto_mime_tree_free(&t);
  /* the total cap */
  mailproto_mime_limits lim;
  mailproto_mime_limits_default(&lim);
  lim.max_kept = 1000;
  lim.max_field = 600;
  mailproto_mime_tree_init(&t, NULL);
  ck_assert_int_eq(parse_chunks(NULL, &lim, m, pos, 0, &t), 0);
  ck_assert_uint_eq(t.envelopes[0].fields[MAILPROTO_MIME_ENV_SUBJECT].len, 600);
  ck_assert_uint_eq(t.envelopes[0].fields[MAILPROTO_MIME_ENV_TO].len, 400);
  ck_assert_uint_eq(t.pool_len, 1000);
  mailproto_mime_tree_free(&t);
  /* a 10 MB line without a line end costs no memory */
  char *line = malloc(10u << 20);
  memset(line, 'x', 10u << 20);
  memcpy(line, "X-Long: ", 8);
  alloc_fail_init(&af, 0);
  mailproto_mime_tree_init(&t, &af.allocator);
  ck_assert_int_eq(
      parse_chunks(&af.allocator, NULL, line, 10u << 20, 1u << 20, &t), 0);
  ck_assert_uint_lt(af.peak_bytes, 4096);
  mailproto_mime_tree_free(&t);
  free(line);
  free(m);
}
END_TEST

START_TEST(test_mime_parser_nomem_loop) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read(mime_corpus[_i], ".eml", &len);
  ck_assert_ptr_nonnull(m);
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, &af.allocator);
    int rc = parse_chunks(&af.allocator, NULL, m, len, 50, &t);
    if (alloc_fail_triggered(&af)) {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      ck_assert_uint_eq(t.part_count, 0);
    } else {
      ck_assert_int_eq(rc, 0);
    }
    mailproto_mime_tree_free(&t);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
  free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The serialised form                                                 */
/* ------------------------------------------------------------------ */

static void serialize_ok(const mailproto_mime_tree *t, mailproto_buf *out) {
  mailproto_buf_init(out, NULL, (size_t)-1);
  ck_assert_int_eq(mailproto_mime_serialize(t, out), 0);
}

START_TEST(test_mime_serialize_round_trip) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read(mime_corpus[_i], ".eml", &len);
  ck_assert_ptr_nonnull(m);
  mailproto_mime_tree t, u;
  parse_ok(m, len, &t);
  mailproto_buf s;
  serialize_ok(&t, &s);
  mailproto_mime_tree_init(&u, NULL);
  ck_assert_int_eq(mailproto_mime_deserialize(NULL, NULL, place(s.data, s.len),
                                              s.len, len, &u),
                   0);
  assert_same_tree(&t, &u);
  ck_assert_uint_eq(u.vsize, t.vsize);
  ck_assert_uint_eq(u.part_count, t.part_count);
  for (uint32_t i = 0; i < t.part_count; i++) {
    ck_assert_uint_eq(u.parts[i].parent, t.parts[i].parent);
    ck_assert_uint_eq(u.parts[i].subtree, t.parts[i].subtree);
    ck_assert_uint_eq(u.parts[i].depth, t.parts[i].depth);
    ck_assert_uint_eq(u.parts[i].body_offset, t.parts[i].body_offset);
  }
  /* the same BODYSTRUCTURE and ENVELOPE from either */
  mailproto_buf x, y;
  mailproto_buf_init(&x, NULL, (size_t)-1);
  mailproto_buf_init(&y, NULL, (size_t)-1);
  ck_assert_int_eq(mailproto_mime_write_body(&x, &t, 0, 1, 0), 0);
  ck_assert_int_eq(mailproto_mime_write_envelope(&x, &t, 0, 0), 0);
  ck_assert_int_eq(mailproto_mime_write_body(&y, &u, 0, 1, 0), 0);
  ck_assert_int_eq(mailproto_mime_write_envelope(&y, &u, 0, 0), 0);
  ck_assert_uint_eq(x.len, y.len);
  ck_assert(memcmp(x.data, y.data, x.len) == 0);
  /* the size of the message it describes must match; the form names it
   * (for a caller that only knows the RFC822 size) */
  uint64_t claimed = 0;
  ck_assert_int_eq(
      mailproto_mime_serial_size(place(s.data, s.len), s.len, &claimed), 1);
  ck_assert_uint_eq(claimed, len);
  ck_assert_int_eq(mailproto_mime_serial_size(place(s.data, 7), 7, &claimed),
                   0);
  ck_assert_int_eq(
      mailproto_mime_deserialize(NULL, NULL, s.data, s.len, len + 1, &u),
      MAILPROTO_ERR_SYNTAX);
  ck_assert_uint_eq(u.part_count, 0);
  /* every truncation is refused */
  for (size_t cut = 0; cut < s.len; cut++)
    ck_assert_int_eq(mailproto_mime_deserialize(NULL, NULL, place(s.data, cut),
                                                cut, len, &u),
                     MAILPROTO_ERR_SYNTAX);
  /* every flipped bit is caught */
  for (size_t i = 0; i < s.len; i++) {
    for (int bit = 0; bit < 8; bit++) {
      s.data[i] ^= (uint8_t)(1u << bit);
      ck_assert_int_eq(
          mailproto_mime_deserialize(NULL, NULL, s.data, s.len, len, &u),
          MAILPROTO_ERR_SYNTAX);
      s.data[i] ^= (uint8_t)(1u << bit);
    }
  }
  mailproto_buf_free(&x);
  mailproto_buf_free(&y);
  mailproto_buf_free(&s);
  mailproto_mime_tree_free(&t);
  mailproto_mime_tree_free(&u);
  free(m);
}
END_TEST

/* A hand-made serialised form with a valid checksum. */
typedef struct sbuild {
  uint8_t b[4096];
  size_t n;
} sbuild;

static void sb_varint(sbuild *s, uint64_t v) {
  do {
    uint8_t byte = (uint8_t)(v & 0x7f);
    v >>= 7;
    s->b[s->n++] = (uint8_t)(byte | (v ? 0x80 : 0));
  } while (v);
}

static void sb_part(sbuild *s, uint64_t flags, uint64_t children,
                    uint64_t hoff_delta, uint64_t hsize, uint64_t bsize,
                    uint64_t lines) {
  uint64_t v[] = {flags, children, hoff_delta, hsize, 0, bsize, 0, lines};
  for (size_t i = 0; i < 8; i++)
    sb_varint(s, v[i]);
  sb_varint(s, 0); /* no MIME fields */
  if (flags & MAILPROTO_MIME_PART_ENVELOPE)
    sb_varint(s, 0);
}

static int sb_load(sbuild *s, uint64_t size) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < s->n; i++) {
    h ^= s->b[i];
    h *= 16777619u;
  }
  uint8_t buf[4100];
  memcpy(buf, s->b, s->n);
  for (int i = 0; i < 4; i++)
    buf[s->n + (size_t)i] = (uint8_t)(h >> (8 * i));
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, NULL);
  int rc = mailproto_mime_deserialize(NULL, NULL, place(buf, s->n + 4),
                                      s->n + 4, size, &t);
  if (rc == 0)
    ck_assert_uint_ge(t.part_count, 1);
  mailproto_mime_tree_free(&t);
  return rc;
}

static void sb_start(sbuild *s, uint64_t size, uint64_t parts) {
  memcpy(s->b, "MPM\1", 4);
  s->n = 4;
  sb_varint(s, size);
  sb_varint(s, parts);
}

START_TEST(test_mime_deserialize_rejects_inconsistent) {
  const uint32_t E = MAILPROTO_MIME_PART_ENVELOPE,
                 M = MAILPROTO_MIME_PART_MULTIPART,
                 MSG = MAILPROTO_MIME_PART_MESSAGE |
                       MAILPROTO_MIME_PART_MESSAGE_TYPE;
  sbuild s;
  /* valid: a root with a body of 10 */
  sb_start(&s, 20, 1);
  sb_part(&s, E, 0, 0, 10, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), 0);
  /* the root must cover the message */
  sb_start(&s, 20, 1);
  sb_part(&s, E, 0, 0, 10, 9, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a body past the end */
  sb_start(&s, 20, 1);
  sb_part(&s, E, 0, 0, 10, 11, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* more lines than bytes */
  sb_start(&s, 20, 1);
  sb_part(&s, E, 0, 0, 10, 10, 11);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* unknown flags; no envelope on the root */
  sb_start(&s, 20, 1);
  sb_part(&s, E | 0x100, 0, 0, 10, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  sb_start(&s, 20, 1);
  sb_part(&s, 0, 0, 0, 10, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a multipart with one child: valid */
  sb_start(&s, 20, 2);
  sb_part(&s, E | M, 1, 0, 5, 15, 0);
  sb_part(&s, 0, 0, 5, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), 0);
  /* a child claiming more children than follow */
  sb_start(&s, 20, 2);
  sb_part(&s, E | M, 2, 0, 5, 15, 0);
  sb_part(&s, 0, 0, 5, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a part after the root's subtree ended */
  sb_start(&s, 20, 2);
  sb_part(&s, E | M, 0, 0, 5, 15, 0);
  sb_part(&s, 0, 0, 5, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a leaf with children */
  sb_start(&s, 20, 2);
  sb_part(&s, E, 1, 0, 5, 15, 0);
  sb_part(&s, 0, 0, 5, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a child outside its parent's body */
  sb_start(&s, 20, 2);
  sb_part(&s, E | M, 1, 0, 5, 15, 0);
  sb_part(&s, 0, 0, 2, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* message/rfc822 whose child is not a message */
  sb_start(&s, 20, 3);
  sb_part(&s, E | M, 1, 0, 5, 15, 0);
  sb_part(&s, MSG, 1, 5, 2, 13, 0);
  sb_part(&s, 0, 0, 2, 3, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  sb_start(&s, 20, 3);
  sb_part(&s, E | M, 1, 0, 5, 15, 0);
  sb_part(&s, MSG, 1, 5, 2, 13, 0);
  sb_part(&s, E, 0, 2, 3, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), 0);
  /* an envelope where none belongs */
  sb_start(&s, 20, 2);
  sb_part(&s, E | M, 1, 0, 5, 15, 0);
  sb_part(&s, E, 0, 5, 2, 3, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a part count the data cannot hold */
  sb_start(&s, 20, 1000000);
  sb_part(&s, E, 0, 0, 10, 10, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* a value with a NUL, and a value past the data */
  sb_start(&s, 20, 1);
  uint64_t v[] = {E, 0, 0, 10, 0, 10, 0, 0};
  for (size_t i = 0; i < 8; i++)
    sb_varint(&s, v[i]);
  sb_varint(&s, 1); /* Content-Type */
  sb_varint(&s, 3);
  memcpy(s.b + s.n, "a\0b", 3);
  s.n += 3;
  sb_varint(&s, 0);
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  s.b[s.n - 3] = 'x'; /* "axb" */
  ck_assert_int_eq(sb_load(&s, 20), 0);
  s.n -= 1; /* the envelope mask is missing */
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* overlong varint */
  sb_start(&s, 20, 1);
  for (int i = 0; i < 11; i++)
    s.b[s.n++] = 0xff;
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* wrong magic or version */
  sb_start(&s, 20, 1);
  sb_part(&s, E, 0, 0, 10, 10, 0);
  s.b[3] = 2;
  ck_assert_int_eq(sb_load(&s, 20), MAILPROTO_ERR_SYNTAX);
  /* deeper than the limit */
  sb_start(&s, 1000, 150);
  sb_part(&s, E | M, 1, 0, 1, 999, 0);
  for (int i = 1; i < 150; i++)
    sb_part(&s, i < 149 ? M : 0, i < 149 ? 1 : 0, 1, 1, 999u - 2u * (unsigned)i,
            0);
  ck_assert_int_eq(sb_load(&s, 1000), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_mime_deserialize_nomem_loop) {
  size_t len = 0;
  unsigned char *m = mime_corpus_read("forwarded", ".eml", &len);
  ck_assert_ptr_nonnull(m);
  mailproto_mime_tree t;
  parse_ok(m, len, &t);
  mailproto_buf s;
  serialize_ok(&t, &s);
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_mime_tree u;
    mailproto_mime_tree_init(&u, &af.allocator);
    int rc =
        mailproto_mime_deserialize(&af.allocator, NULL, s.data, s.len, len, &u);
    ck_assert_int_eq(rc, alloc_fail_triggered(&af) ? MAILPROTO_ERR_NOMEM : 0);
    mailproto_mime_tree_free(&u);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
  /* serialising into a full buffer leaves it as it was */
  mailproto_buf small;
  mailproto_buf_init(&small, NULL, 10);
  ck_assert_int_eq(mailproto_buf_append(&small, "ab", 2), 0);
  ck_assert_int_eq(mailproto_mime_serialize(&t, &small),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(small.len, 2);
  mailproto_buf_free(&small);
  mailproto_buf_free(&s);
  mailproto_mime_tree_free(&t);
  free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Header value readers                                                */
/* ------------------------------------------------------------------ */

static int span_eq(mailproto_mime_span s, const char *want) {
  if (!want)
    return s.data == NULL;
  return s.data && s.len == strlen(want) && memcmp(s.data, want, s.len) == 0;
}

START_TEST(test_mime_ctype_parse_forms) {
  static const struct {
    const char *v;
    const char *type, *subtype;
  } cases[] = {
      {"text/plain", "text", "plain"},
      {"  TEXT / HTML ; charset=x", "TEXT", "HTML"},
      {"(comment) multipart/mixed(c2);boundary=x", "multipart", "mixed"},
      {"application/vnd.ms-excel", "application", "vnd.ms-excel"},
      {"text", NULL, NULL},
      {"text/", NULL, NULL},
      {"/plain", NULL, NULL},
      {";;;", NULL, NULL},
      {"", NULL, NULL},
      {"te xt/plain", NULL, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t n = strlen(cases[i].v);
    mailproto_mime_ctype ct;
    int ok = mailproto_mime_ctype_parse(place(cases[i].v, n), n, &ct);
    ck_assert_int_eq(ok, cases[i].type != NULL);
    if (ok) {
      ck_assert(span_eq(ct.type, cases[i].type));
      ck_assert(span_eq(ct.subtype, cases[i].subtype));
    }
  }
  mailproto_mime_span tok;
  size_t at;
  ck_assert_int_eq(mailproto_mime_token_parse(S(" inline ; x=y"), &tok, &at),
                   1);
  ck_assert(span_eq(tok, "inline"));
  ck_assert_uint_eq(at, 7);
  ck_assert_int_eq(mailproto_mime_token_parse(S(" ; x"), &tok, NULL), 0);
  ck_assert_int_eq(mailproto_mime_token_parse(NULL, 0, &tok, NULL), 0);
}
END_TEST

START_TEST(test_mime_param_next_forms) {
  static const char v[] =
      "; a=1;B = \"two \\\" q\" ; bad; =x ;c=tok(comment);d*=utf-8''%41; "
      "e*12*=x; f=\"unterminated";
  size_t n = sizeof v - 1;
  const uint8_t *p = place(v, n);
  size_t pos = 0;
  mailproto_mime_param prm;
  static const struct {
    const char *attr, *base, *value;
    long section;
    int ext, quoted;
  } want[] = {
      {"a", "a", "1", -1, 0, 0},     {"B", "B", "two \\\" q", -1, 0, 1},
      {"c", "c", "tok", -1, 0, 0},   {"d*", "d", "utf-8''%41", -1, 1, 0},
      {"e*12*", "e", "x", 12, 1, 0}, {"f", "f", "unterminated", -1, 0, 1},
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    ck_assert_int_eq(mailproto_mime_param_next(p, n, &pos, &prm), 1);
    ck_assert(span_eq(prm.attr, want[i].attr));
    ck_assert(span_eq(prm.base, want[i].base));
    ck_assert(span_eq(prm.value, want[i].value));
    ck_assert_int_eq(prm.section, want[i].section);
    ck_assert_int_eq(prm.extended, want[i].ext);
    ck_assert_int_eq(prm.quoted, want[i].quoted);
  }
  ck_assert_int_eq(mailproto_mime_param_next(p, n, &pos, &prm), 0);
  ck_assert_uint_eq(pos, n);
  uint8_t out[16];
  ck_assert_int_eq(mailproto_mime_param_get(p, n, 0, "b", out, sizeof out), 7);
  ck_assert(memcmp(out, "two \" q", 7) == 0);
  ck_assert_int_eq(mailproto_mime_param_get(p, n, 0, "d", out, sizeof out), -1);
  ck_assert_int_eq(mailproto_mime_param_get(p, n, 0, "b", out, 3), -1);
  ck_assert_int_eq(mailproto_mime_param_get(p, n, 0, "zz", out, 3), -1);
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 100);
  mailproto_mime_span q = {(const uint8_t *)"a\\\"b\\", 5};
  ck_assert_int_eq(mailproto_mime_unquote(&q, 1, &b), 0);
  ck_assert_uint_eq(b.len, 3);
  ck_assert(memcmp(b.data, "a\"b", 3) == 0);
  mailproto_buf_free(&b);
}
END_TEST

typedef struct collected {
  char text[1024];
  size_t n;
} collected;

static int collect_param(void *arg, const uint8_t *name, size_t name_len,
                         const uint8_t *value, size_t value_len) {
  collected *c = arg;
  c->n += (size_t)snprintf(c->text + c->n, sizeof c->text - c->n, "[%.*s=%.*s]",
                           (int)name_len, (const char *)name, (int)value_len,
                           (const char *)value);
  return 0;
}

static const char *decode_params(const char *v, unsigned max) {
  static collected c;
  c.n = 0;
  c.text[0] = 0;
  mailproto_buf scratch;
  mailproto_buf_init(&scratch, NULL, 1u << 20);
  size_t n = strlen(v);
  ck_assert_int_eq(mailproto_mime_params_decode(place(v, n), n, 0, max,
                                                &scratch, collect_param, &c),
                   0);
  mailproto_buf_free(&scratch);
  return c.text;
}

START_TEST(test_mime_params_decode_rfc2231) {
  /* RFC 2231 3, 4, 4.1 examples and their mixtures */
  ck_assert_str_eq(
      decode_params("; URL*0=\"ftp://\"; URL*1=\"cs.utk.edu/pub\"", 64),
      "[URL=ftp://cs.utk.edu/pub]");
  ck_assert_str_eq(
      decode_params("; title*=us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A",
                    64),
      "[title*=This is ***fun***]");
  ck_assert_str_eq(
      decode_params("; title*0*=us-ascii'en'This%20is%20even%20more%20;"
                    " title*1*=%2A%2A%2Afun%2A%2A%2A%20; title*2=\"isn't it!\"",
                    64),
      "[title*=This is even more ***fun*** isn't it!]");
  /* charsets to UTF-8 */
  ck_assert_str_eq(decode_params("; f*=iso-8859-1'de'M%E4rz", 64),
                   "[f*=M\xc3\xa4rz]");
  ck_assert_str_eq(decode_params("; f*=UTF-8''%E2%82%AC", 64),
                   "[f*=\xe2\x82\xac]");
  ck_assert_str_eq(decode_params("; f*=windows-1252''%80", 64),
                   "[f*=\xe2\x82\xac]");
  /* an unknown charset stays one valid extended value */
  ck_assert_str_eq(decode_params("; f*0*=koi8-r'ru'%C1; f*1=\" b\"", 64),
                   "[f*=koi8-r'ru'%C1%20b]");
  /* no charset named: the bytes as they are */
  ck_assert_str_eq(decode_params("; f*=''a%42c", 64), "[f*=aBc]");
  /* sections out of order; a gap ends the value; no section 0: dropped */
  ck_assert_str_eq(decode_params("; a*1=b; a*0=a; a*3=d; x=1", 64),
                   "[a=ab][x=1]");
  ck_assert_str_eq(decode_params("; z*1=b; z*2=c", 64), "");
  /* case-insensitive names join; plain and extended live side by side */
  ck_assert_str_eq(
      decode_params("; name=\"plain.txt\"; NAME*0=a; name*1=b; name*=''c", 64),
      "[name=plain.txt][NAME=ab][name*=c]");
  /* only the first max_params are read */
  ck_assert_str_eq(decode_params("; a=1; b=2; c=3", 2), "[a=1][b=2]");
  /* malformed percent escapes stay; a decoded NUL becomes a space */
  ck_assert_str_eq(decode_params("; f*=''%G1%4", 64), "[f*=%G1%4]");
  ck_assert_str_eq(decode_params("; f*=utf-8''a%00b", 64), "[f*=a b]");
}
END_TEST

START_TEST(test_mime_params_decode_nomem_loop) {
  static const char v[] = "; a*0*=utf-8''x%41; a*1=y; b=c; d*=''e";
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_buf scratch;
    mailproto_buf_init(&scratch, &af.allocator, 1u << 20);
    collected c = {{0}, 0};
    int rc = mailproto_mime_params_decode((const uint8_t *)v, sizeof v - 1, 0,
                                          64, &scratch, collect_param, &c);
    mailproto_buf_free(&scratch);
    ck_assert_int_eq(rc, alloc_fail_triggered(&af) ? MAILPROTO_ERR_NOMEM : 0);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af)) {
      ck_assert_str_eq(c.text, "[a*=xAy][b=c][d*=e]");
      break;
    }
  }
}
END_TEST

/* Addresses rendered "kind:name|route|mailbox|host;" (NIL as "-"). */
static const char *addresses(const char *v) {
  static char out[2048];
  size_t n = 0;
  out[0] = 0;
  mailproto_buf scratch;
  mailproto_buf_init(&scratch, NULL, 1u << 20);
  mailproto_mime_addr_iter it;
  size_t len = strlen(v);
  mailproto_mime_addr_init(&it, place(v, len), len, &scratch);
  mailproto_mime_address a;
  int rc;
  while ((rc = mailproto_mime_addr_next(&it, &a)) == 1) {
    const mailproto_mime_span *m[] = {&a.name, &a.route, &a.mailbox, &a.host};
    n += (size_t)snprintf(out + n, sizeof out - n, "%c:",
                          a.kind == MAILPROTO_MIME_ADDR_MAILBOX       ? 'm'
                          : a.kind == MAILPROTO_MIME_ADDR_GROUP_START ? 'g'
                                                                      : 'e');
    for (int i = 0; i < 4; i++)
      n += (size_t)snprintf(
          out + n, sizeof out - n, "%.*s%s", m[i]->data ? (int)m[i]->len : 1,
          m[i]->data ? (const char *)m[i]->data : "-", i < 3 ? "|" : ";");
  }
  ck_assert_int_eq(rc, 0);
  mailproto_buf_free(&scratch);
  return out;
}

START_TEST(test_mime_addr_next_forms) {
  static const struct {
    const char *in, *out;
  } cases[] = {
      /* RFC 5322 A.1 - A.6 */
      {"\"Joe Q. Public\" <john.q.public@example.com>",
       "m:Joe Q. Public|-|john.q.public|example.com;"},
      {"Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
       "m:Mary Smith|-|mary|x.test;m:-|-|jdoe|example.org;"
       "m:Who?|-|one|y.test;"},
      {"<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" <sysservices@example.net>",
       "m:-|-|boss|nil.test;m:Giant; \"Big\" Box|-|sysservices|example.net;"},
      {"A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
       "g:A Group|-|-|-;m:Ed Jones|-|c|a.test;m:-|-|joe|where.test;"
       "m:John|-|jdoe|one.test;e:-|-|-|-;"},
      {"Undisclosed recipients:;", "g:Undisclosed recipients|-|-|-;e:-|-|-|-;"},
      {"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
       "m:Pete|-|pete|silly.test;"},
      {"John Doe <jdoe@machine(comment).  example>",
       "m:John Doe|-|jdoe|machine.example;"},
      {"Mary Smith\r\n  <mary@example.net>",
       "m:Mary Smith|-|mary|example.net;"},
      /* obsolete forms (RFC 5322 4.4) */
      {"<@a.test,@b.test:route@c.test>", "m:-|@a.test,@b.test|route|c.test;"},
      {"john . doe @ example . com", "m:-|-|john.doe|example.com;"},
      {"a@b,,  , c@d,", "m:-|-|a|b;m:-|-|c|d;"},
      /* names from comments, quoted local parts */
      {"john@x.test (John Doe)", "m:John Doe|-|john|x.test;"},
      {"(before) jim@y", "m:-|-|jim|y;"},
      {"x@y (a (nested) comment)", "m:a (nested) comment|-|x|y;"},
      {"\"john doe\"@x.test", "m:-|-|john doe|x.test;"},
      {"\"\" <e@f>, \"\" \"\" <g@h>", "m:-|-|e|f;m:-|-|g|h;"},
      {"=?UTF-8?Q?Andr=C3=A9?= <andre@x>",
       "m:=?UTF-8?Q?Andr=C3=A9?=|-|andre|x;"},
      /* missing pieces */
      {"user", "m:-|-|user|MISSING_DOMAIN;"},
      {"<>", "m:-|-|MISSING_MAILBOX|MISSING_DOMAIN;"},
      {"@x.test", "m:-|-|MISSING_MAILBOX|x.test;"},
      {"Name <", "m:Name|-|MISSING_MAILBOX|MISSING_DOMAIN;"},
      {"a@[1.2.3.4]", "m:-|-|a|[1.2.3.4];"},
      /* groups: empty name, unclosed, nested, stray specials */
      {":;", "g:|-|-|-;e:-|-|-|-;"},
      {"g: a@b", "g:g|-|-|-;m:-|-|a|b;e:-|-|-|-;"},
      {"g: h: a@b;", "g:g|-|-|-;m:-|-|h|MISSING_DOMAIN;e:-|-|-|-;"},
      {"> ; a@b >junk, c@d", "m:-|-|a|b;m:-|-|c|d;"},
      {"", ""},
      {"   (only a comment)  ", ""},
      {"\"unclosed <u@v>", "m:-|-|unclosed <u@v>|MISSING_DOMAIN;"},
      {"(unclosed comment a@b", ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    ck_assert_str_eq(addresses(cases[i].in), cases[i].out);
}
END_TEST

START_TEST(test_mime_header_next_and_unfold) {
  static const char h[] = "A: 1\r\n"
                          "junk\r\n"
                          " orphan continuation\r\n"
                          "B : two\r\n \tlines\r\n"
                          "C:\n"
                          "\r\n"
                          "D: after the blank line\r\n";
  size_t n = sizeof h - 1, pos = 0;
  const uint8_t *p = place(h, n);
  mailproto_mime_hfield f;
  ck_assert_int_eq(mailproto_mime_header_next(p, n, &pos, &f), 1);
  ck_assert(span_eq(f.name, "A"));
  ck_assert(span_eq(f.value, " 1\r\n"));
  ck_assert_int_eq(mailproto_mime_header_next(p, n, &pos, &f), 1);
  ck_assert(span_eq(f.name, "B"));
  ck_assert(span_eq(f.value, " two\r\n \tlines\r\n"));
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 100);
  ck_assert_int_eq(mailproto_mime_unfold(f.value.data, f.value.len, &b), 0);
  ck_assert_uint_eq(b.len, 10);
  ck_assert(memcmp(b.data, "two \tlines", 10) == 0);
  ck_assert_int_eq(mailproto_mime_header_next(p, n, &pos, &f), 1);
  ck_assert(span_eq(f.name, "C"));
  ck_assert(span_eq(f.value, "\n"));
  ck_assert_int_eq(mailproto_mime_header_next(p, n, &pos, &f), 0);
  ck_assert_uint_eq(pos, n);
  ck_assert_int_eq(mailproto_mime_header_next(p, n, &pos, &f), 0);
  /* unterminated last field */
  pos = 0;
  ck_assert_int_eq(mailproto_mime_header_next(place("X:y", 3), 3, &pos, &f), 1);
  ck_assert(span_eq(f.value, "y"));
  mailproto_buf_clear(&b);
  ck_assert_int_eq(mailproto_mime_unfold((const uint8_t *)" \r\n ", 4, &b), 0);
  ck_assert_uint_eq(b.len, 0);
  mailproto_buf_free(&b);
  /* skip_cfws */
  static const char c[] = " (a (b) \\) c) \t(unclosed";
  ck_assert_uint_eq(
      mailproto_mime_skip_cfws(place(c, sizeof c - 1), sizeof c - 1, 0),
      sizeof c - 1);
  ck_assert_int_eq(mailproto_mime_span_is((const uint8_t *)"AbC", 3, "abc"), 1);
  ck_assert_int_eq(mailproto_mime_span_is((const uint8_t *)"AbC", 3, "ab"), 0);
}
END_TEST

Suite *suite_mime_parser(void) {
  Suite *s = suite_create("mime_parser");
  TCase *tc = tcase_create("parser");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_mime_parser_offsets_multipart);
  tcase_add_test(tc, test_mime_parser_bare_lf_sizes);
  tcase_add_test(tc, test_mime_parser_bare_cr_sizes_every_split);
  tcase_add_test(tc, test_mime_parser_message_rfc822_nesting);
  tcase_add_test(tc, test_mime_parser_field_values);
  tcase_add_test(tc, test_mime_parser_nul_and_8bit_in_headers);
  tcase_add_test(tc, test_mime_parser_malformed_shapes);
  tcase_add_test(tc, test_mime_parser_boundary_long_padding);
  tcase_add_test(tc, test_mime_parser_boundary_length_limit);
  tcase_add_loop_test(tc, test_mime_parser_chunk_invariance, 0,
                      MIME_CORPUS_COUNT);
  tcase_add_test(tc, test_mime_parser_reuse_after_finish);
  tcase_add_test(tc, test_mime_parser_depth_capped);
  tcase_add_test(tc, test_mime_parser_part_cap);
  tcase_add_test(tc, test_mime_parser_enormous_header_counts);
  tcase_add_test(tc, test_mime_parser_field_and_pool_caps);
  tcase_add_loop_test(tc, test_mime_parser_nomem_loop, 0, MIME_CORPUS_COUNT);
  suite_add_tcase(s, tc);

  TCase *sr = tcase_create("serial");
  tcase_set_timeout(sr, 120);
  tcase_add_loop_test(sr, test_mime_serialize_round_trip, 0, MIME_CORPUS_COUNT);
  tcase_add_test(sr, test_mime_deserialize_rejects_inconsistent);
  tcase_add_test(sr, test_mime_deserialize_nomem_loop);
  suite_add_tcase(s, sr);

  TCase *h = tcase_create("header");
  tcase_add_test(h, test_mime_ctype_parse_forms);
  tcase_add_test(h, test_mime_param_next_forms);
  tcase_add_test(h, test_mime_params_decode_rfc2231);
  tcase_add_test(h, test_mime_params_decode_nomem_loop);
  tcase_add_test(h, test_mime_addr_next_forms);
  tcase_add_test(h, test_mime_header_next_and_unfold);
  suite_add_tcase(s, h);
  return s;
}
