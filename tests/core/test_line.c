/*
 * The line reader: flags, chunking invariance, the length limit and its
 * resynchronisation, bounded memory, allocation failures, over-reads.
 */
#include <stdlib.h>
#include <string.h>

#include "core/line.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/overread.h"

#define BARE_LF MAILPROTO_LINE_BARE_LF
#define BARE_CR MAILPROTO_LINE_BARE_CR
#define TOO_LONG MAILPROTO_LINE_TOO_LONG
#define HAS_NUL MAILPROTO_LINE_HAS_NUL

/* A string literal with its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

typedef struct expect_line {
  const char *data;
  size_t len;
  unsigned flags;
} expect_line;

typedef struct line_case {
  size_t max;
  const char *in;
  size_t in_len;
  expect_line lines[4];
  size_t nlines;
  size_t left; /* bytes still buffered at the end */
} line_case;

static const line_case cases[] = {
    /* Plain CRLF lines, several in one input (pipelining). */
    {64, S("HELO a\r\n"), {{S("HELO a"), 0}}, 1, 0},
    {64,
     S("A\r\nBB\r\nCCC\r\n"),
     {{S("A"), 0}, {S("BB"), 0}, {S("CCC"), 0}},
     3,
     0},
    {64, S("\r\n"), {{S(""), 0}}, 1, 0},
    /* LF alone ends a line and is flagged. */
    {64, S("\n"), {{S(""), BARE_LF}}, 1, 0},
    {64, S("a\nb\r\n"), {{S("a"), BARE_LF}, {S("b"), 0}}, 2, 0},
    /* CR alone never ends a line (SMTP smuggling: "\r.\r" is data). */
    {64, S("a\rb\r\n"), {{S("a\rb"), BARE_CR}}, 1, 0},
    {64, S("x\r.\rMAIL\r\n"), {{S("x\r.\rMAIL"), BARE_CR}}, 1, 0},
    {64, S("a\r\r\n"), {{S("a\r"), BARE_CR}}, 1, 0},
    {64, S("\r\r\n"), {{S("\r"), BARE_CR}}, 1, 0},
    {64, S("a\r\n\rb\n"), {{S("a"), 0}, {S("\rb"), BARE_CR | BARE_LF}}, 2, 0},
    {64, S("\r\rb\n"), {{S("\r\rb"), BARE_CR | BARE_LF}}, 1, 0},
    /* NUL is data, flagged. */
    {64, S("a\0b\r\n"), {{S("a\0b"), HAS_NUL}}, 1, 0},
    {64, S("\0\n"), {{S("\0"), HAS_NUL | BARE_LF}}, 1, 0},
    /* A trailing CR is not yet known to be bare; nothing is reported. */
    {64, S("ok\r\nx\r"), {{S("ok"), 0}}, 1, 2},
    {64, S("partial"), {{NULL, 0, 0}}, 0, 7},
    /* The limit counts the line end: 8 bytes fit in max 8, 9 do not. */
    {8, S("012345\r\n"), {{S("012345"), 0}}, 1, 0},
    {8, S("0123456\n"), {{S("0123456"), BARE_LF}}, 1, 0},
    {8, S("0123456\r\n"), {{S("0123456"), TOO_LONG}}, 1, 0},
    {8, S("01234567\n"), {{S("01234567"), TOO_LONG | BARE_LF}}, 1, 0},
    {8, S("01234567\r\n"), {{S("01234567"), TOO_LONG}}, 1, 0},
    /* After a too-long line reading resumes with the next one. */
    {8,
     S("0123456789abcdef\r\nok\r\n"),
     {{S("01234567"), TOO_LONG}, {S("ok"), 0}},
     2,
     0},
    /* Flags cover the whole line, also the part beyond the limit. */
    {8, S("0123456789\rX\r\n"), {{S("01234567"), TOO_LONG | BARE_CR}}, 1, 0},
    {8,
     S("0123456789\0\n"),
     {{S("01234567"), TOO_LONG | HAS_NUL | BARE_LF}},
     1,
     0},
    {8, S("0123456789abc"), {{NULL, 0, 0}}, 0, 8},
    /* A limit of zero makes every line too long, without storing any. */
    {0, S("ab\r\n\n"), {{S(""), TOO_LONG}, {S(""), TOO_LONG | BARE_LF}}, 2, 0},
};
enum { CASE_COUNT = sizeof cases / sizeof cases[0] };

/* Serialised lines: flags, length, bytes; compared with memcmp. */
typedef struct record {
  uint8_t bytes[1024];
  size_t len;
} record;

static void record_line(record *rec, const uint8_t *data, size_t len,
                        unsigned flags) {
  ck_assert_uint_le(rec->len + len + 2, sizeof rec->bytes);
  rec->bytes[rec->len++] = (uint8_t)flags;
  rec->bytes[rec->len++] = (uint8_t)len;
  if (len)
    memcpy(rec->bytes + rec->len, data, len);
  rec->len += len;
}

static void expected_record(const line_case *c, record *rec) {
  rec->len = 0;
  for (size_t i = 0; i < c->nlines; i++)
    record_line(rec, (const uint8_t *)c->lines[i].data, c->lines[i].len,
                c->lines[i].flags);
}

/* Feeds one chunk, placed right before an unreadable page, reading every
 * line it completes. Returns 0, or NOMEM with the reader unchanged by the
 * failed call (the chunk's remainder is then fed again by the caller). */
static int feed_chunk(mailproto_line_reader *r, overread_guard *g,
                      const uint8_t *chunk, size_t len, size_t *done,
                      record *rec) {
  const uint8_t *p = overread_place(g, chunk, len);
  ck_assert_ptr_nonnull(p);
  while (*done < len) {
    size_t used = 12345;
    mailproto_line line;
    int rc = mailproto_line_read(r, p + *done, len - *done, &used, &line);
    if (rc == MAILPROTO_ERR_NOMEM) {
      ck_assert_uint_eq(used, 0);
      return rc;
    }
    ck_assert_int_ge(rc, 0);
    ck_assert_uint_ge(used, 1);
    ck_assert_uint_le(used, len - *done);
    ck_assert_uint_le(r->partial.len, r->max);
    *done += used;
    if (rc == 1) {
      ck_assert_uint_le(line.len, r->max);
      record_line(rec, line.data, line.len, line.flags);
    } else {
      ck_assert_uint_eq(*done, len);
    }
  }
  return 0;
}

/* One guard region serves every small-input test (mapping one per run
 * would make the split-point loops slow). */
static overread_guard guard;

static void guard_setup(void) {
  ck_assert_int_eq(overread_init(&guard, 4096), 0);
}

static void guard_teardown(void) {
  overread_free(&guard);
}

/* Feeds `in` in the chunks given by `cuts` (ascending split offsets). */
static void run_split(const line_case *c, const size_t *cuts, size_t ncuts,
                      record *rec) {
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, NULL, c->max);
  rec->len = 0;
  size_t start = 0;
  for (size_t i = 0; i <= ncuts; i++) {
    size_t end = i < ncuts ? cuts[i] : c->in_len;
    size_t done = 0;
    ck_assert_int_eq(feed_chunk(&r, &guard, (const uint8_t *)c->in + start,
                                end - start, &done, rec),
                     0);
    start = end;
  }
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), c->left);
  mailproto_line_reader_free(&r);
}

static void assert_same(const record *got, const record *want, int idx,
                        const char *how, size_t arg) {
  ck_assert_msg(got->len == want->len &&
                    memcmp(got->bytes, want->bytes, want->len) == 0,
                "case %d differs when fed %s %zu", idx, how, arg);
}

START_TEST(test_line_read_whole_input) {
  const line_case *c = &cases[_i];
  record want, got;
  expected_record(c, &want);
  run_split(c, NULL, 0, &got);
  assert_same(&got, &want, _i, "whole", 0);
}
END_TEST

START_TEST(test_line_read_byte_by_byte) {
  const line_case *c = &cases[_i];
  record want, got;
  size_t cuts[64];
  expected_record(c, &want);
  ck_assert_uint_le(c->in_len, 64);
  for (size_t i = 1; i < c->in_len; i++)
    cuts[i - 1] = i;
  run_split(c, cuts, c->in_len ? c->in_len - 1 : 0, &got);
  assert_same(&got, &want, _i, "byte by byte", 1);
}
END_TEST

START_TEST(test_line_read_every_split_point) {
  const line_case *c = &cases[_i];
  record want, got;
  expected_record(c, &want);
  for (size_t a = 0; a <= c->in_len; a++) {
    run_split(c, &a, 1, &got);
    assert_same(&got, &want, _i, "split at", a);
    /* And every pair of split points, for CR | middle | LF patterns. */
    for (size_t b = a; b <= c->in_len; b++) {
      size_t cuts[2] = {a, b};
      run_split(c, cuts, 2, &got);
      assert_same(&got, &want, _i, "second split at", b);
    }
  }
}
END_TEST

START_TEST(test_line_read_fixed_chunk_sizes) {
  const line_case *c = &cases[_i];
  record want, got;
  size_t cuts[64];
  expected_record(c, &want);
  for (size_t step = 2; step <= 7; step++) {
    size_t n = 0;
    for (size_t off = step; off < c->in_len; off += step)
      cuts[n++] = off;
    run_split(c, cuts, n, &got);
    assert_same(&got, &want, _i, "in chunks of", step);
  }
}
END_TEST

START_TEST(test_line_read_zero_copy_when_line_in_input) {
  static const uint8_t in[] = "one\r\ntwo\r\nthr";
  mailproto_line_reader r;
  mailproto_line line;
  size_t used;
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_line_reader_init(&r, &af.allocator, 64);
  ck_assert_int_eq(mailproto_line_read(&r, in, 14, &used, &line), 1);
  ck_assert_ptr_eq(line.data, in);
  ck_assert_uint_eq(used, 5);
  ck_assert_int_eq(mailproto_line_read(&r, in + 5, 9, &used, &line), 1);
  ck_assert_ptr_eq(line.data, in + 5);
  /* Nothing has been copied so far. */
  ck_assert_uint_eq(af.calls, 0);
  ck_assert_int_eq(mailproto_line_read(&r, in + 10, 3, &used, &line), 0);
  ck_assert_uint_eq(used, 3);
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), 3);
  /* The carried part is joined in the reader's own buffer. */
  static const uint8_t rest[] = "ee\r\n";
  ck_assert_int_eq(mailproto_line_read(&r, rest, 4, &used, &line), 1);
  ck_assert_ptr_eq(line.data, r.partial.data);
  ck_assert_mem_eq(line.data, "three", 5);
  ck_assert_uint_eq(line.len, 5);
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), 0);
  mailproto_line_reader_free(&r);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_line_read_empty_input) {
  mailproto_line_reader r;
  mailproto_line line;
  size_t used = 99;
  mailproto_line_reader_init(&r, NULL, 16);
  ck_assert_int_eq(mailproto_line_read(&r, NULL, 0, &used, &line), 0);
  ck_assert_uint_eq(used, 0);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"ab", 2, &used, &line), 0);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"", 0, &used, &line), 0);
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), 2);
  mailproto_line_reader_free(&r);
}
END_TEST

START_TEST(test_line_reader_reset_forgets_partial) {
  mailproto_line_reader r;
  mailproto_line line;
  size_t used;
  mailproto_line_reader_init(&r, NULL, 8);
  /* A partial too-long line with a pending CR, then STARTTLS. */
  ck_assert_int_eq(mailproto_line_read(&r, (const uint8_t *)"0123456789\r", 11,
                                       &used, &line),
                   0);
  mailproto_line_reader_reset(&r);
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), 0);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"\nEHLO\r\n", 7, &used, &line),
      1);
  /* The LF now ends an empty line: no CR, no overflow carried over. */
  ck_assert_uint_eq(line.len, 0);
  ck_assert_uint_eq(line.flags, BARE_LF);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"EHLO\r\n", 6, &used, &line), 1);
  ck_assert_mem_eq(line.data, "EHLO", 4);
  ck_assert_uint_eq(line.flags, 0);
  mailproto_line_reader_free(&r);
}
END_TEST

START_TEST(test_line_reader_set_max_applies_to_next_line) {
  mailproto_line_reader r;
  mailproto_line line;
  size_t used;
  mailproto_line_reader_init(&r, NULL, 6);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"abc", 3, &used, &line), 0);
  /* The line in progress keeps the limit it started with. */
  mailproto_line_reader_set_max(&r, 100);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"defgh\r\n", 7, &used, &line),
      1);
  ck_assert_uint_eq(line.flags, TOO_LONG);
  ck_assert_uint_eq(line.len, 6);
  ck_assert_mem_eq(line.data, "abcdef", 6);
  ck_assert_int_eq(mailproto_line_read(&r, (const uint8_t *)"abcdefgh\r\n", 10,
                                       &used, &line),
                   1);
  ck_assert_uint_eq(line.flags, 0);
  ck_assert_uint_eq(line.len, 8);
  /* Lowering it works the same way, for buffered and in-place lines. */
  mailproto_line_reader_set_max(&r, 4);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"abcd\r\n", 6, &used, &line), 1);
  ck_assert_uint_eq(line.flags, TOO_LONG);
  ck_assert_uint_eq(line.len, 4);
  mailproto_line_reader_free(&r);
}
END_TEST

/* A 10 MB line in 1-byte, 7-byte and 64 KiB chunks: memory stays at the
 * limit, the line is reported once, and the next line reads normally. */
START_TEST(test_line_read_huge_line_bounded_memory) {
  static const size_t chunks[] = {1, 7, 65536};
  const size_t big = 10u * 1000 * 1000, max = 1000;
  size_t total = big + 8;
  uint8_t *in = malloc(total);
  ck_assert_ptr_nonnull(in);
  for (size_t i = 0; i < big; i++)
    in[i] = (uint8_t)('a' + i % 26);
  memcpy(in + big, "\r\nnext\r\n", 8);

  size_t step = chunks[_i];
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, &af.allocator, max);
  size_t lines = 0;
  for (size_t off = 0; off < total;) {
    size_t n = total - off < step ? total - off : step;
    size_t used;
    mailproto_line line;
    int rc = mailproto_line_read(&r, in + off, n, &used, &line);
    /* Check's assertions log every call; test plainly in hot loops. */
    if (rc < 0 || r.partial.cap > max)
      ck_abort_msg("rc %d, buffer %zu at offset %zu", rc, r.partial.cap, off);
    off += used;
    if (rc == 1) {
      lines++;
      if (lines == 1) {
        ck_assert_uint_eq(line.flags, TOO_LONG);
        ck_assert_uint_eq(line.len, max);
        ck_assert_mem_eq(line.data, in, max);
      } else {
        ck_assert_uint_eq(line.flags, 0);
        ck_assert_uint_eq(line.len, 4);
        ck_assert_mem_eq(line.data, "next", 4);
      }
    }
  }
  ck_assert_uint_eq(lines, 2);
  ck_assert_uint_le(af.peak_bytes, max);
  mailproto_line_reader_free(&r);
  ck_assert_int_eq(af.live, 0);
  free(in);
}
END_TEST

/* A long line under a large limit, one byte at a time: quadratic
 * rescanning of the partial line would take about 10^11 steps here and
 * never finish within the test timeout. */
START_TEST(test_line_read_long_partial_line_scanned_once) {
  const size_t len = 1u << 20;
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, NULL, 2 * len);
  uint8_t byte = 'x';
  size_t used;
  mailproto_line line;
  for (size_t i = 0; i < len; i++)
    if (mailproto_line_read(&r, &byte, 1, &used, &line) != 0)
      ck_abort_msg("byte %zu ended a line", i);
  ck_assert_uint_eq(mailproto_line_reader_buffered(&r), len);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"\n", 1, &used, &line), 1);
  ck_assert_uint_eq(line.len, len);
  ck_assert_uint_eq(line.flags, BARE_LF);
  mailproto_line_reader_free(&r);
}
END_TEST

/* A line that needed a big buffer does not pin that memory once done. */
START_TEST(test_line_read_releases_large_buffer) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, &af.allocator, 100000);
  uint8_t big[20000];
  memset(big, 'q', sizeof big);
  size_t used;
  mailproto_line line;
  ck_assert_int_eq(mailproto_line_read(&r, big, sizeof big, &used, &line), 0);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"\r\n", 2, &used, &line), 1);
  ck_assert_uint_eq(line.len, sizeof big);
  ck_assert_uint_ge(af.live_bytes, sizeof big);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"x\r\n", 3, &used, &line), 1);
  ck_assert_uint_eq(af.live_bytes, 0);
  /* A small carried line keeps its small buffer for reuse. */
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"ab", 2, &used, &line), 0);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"\n", 1, &used, &line), 1);
  ck_assert_int_eq(
      mailproto_line_read(&r, (const uint8_t *)"c\n", 2, &used, &line), 1);
  ck_assert_uint_gt(af.live_bytes, 0);
  mailproto_line_reader_free(&r);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* Fail the N-th allocation for every N while a script is fed byte by byte;
 * a failed call leaves the reader as it was, so retrying the same bytes
 * gives exactly the lines of a run without failures. */
START_TEST(test_line_read_nomem_loop) {
  static const line_case c = {
      64,
      S("first line\r\nsecond\r\n0123456789012345678901234567890123456789"
        "0123456789012345678901234567890123456789\r\nend\n"),
      {{NULL, 0, 0}},
      0,
      0};
  record want, got;
  want.len = 0;
  {
    mailproto_line_reader r;
    mailproto_line_reader_init(&r, NULL, c.max);
    for (size_t i = 0; i < c.in_len; i++) {
      size_t done = 0;
      ck_assert_int_eq(
          feed_chunk(&r, &guard, (const uint8_t *)c.in + i, 1, &done, &want),
          0);
    }
    mailproto_line_reader_free(&r);
  }
  ck_assert_uint_gt(want.len, 0);

  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_line_reader r;
    mailproto_line_reader_init(&r, &af.allocator, c.max);
    got.len = 0;
    int saw_nomem = 0;
    for (size_t i = 0; i < c.in_len;) {
      size_t done = 0;
      /* On NOMEM the byte was not consumed: offer it again. */
      if (feed_chunk(&r, &guard, (const uint8_t *)c.in + i, 1, &done, &got) ==
          MAILPROTO_ERR_NOMEM)
        saw_nomem = 1;
      else
        i++;
    }
    ck_assert_uint_eq(got.len, want.len);
    ck_assert_mem_eq(got.bytes, want.bytes, want.len);
    mailproto_line_reader_free(&r);
    ck_assert_int_eq(af.live, 0);
    ck_assert_int_eq(saw_nomem, alloc_fail_triggered(&af));
    if (!alloc_fail_triggered(&af))
      break;
  }
}
END_TEST

Suite *suite_core_line(void) {
  Suite *s = suite_create("core_line");
  TCase *tc = tcase_create("line");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_add_loop_test(tc, test_line_read_whole_input, 0, CASE_COUNT);
  tcase_add_loop_test(tc, test_line_read_byte_by_byte, 0, CASE_COUNT);
  tcase_add_loop_test(tc, test_line_read_every_split_point, 0, CASE_COUNT);
  tcase_add_loop_test(tc, test_line_read_fixed_chunk_sizes, 0, CASE_COUNT);
  tcase_add_test(tc, test_line_read_zero_copy_when_line_in_input);
  tcase_add_test(tc, test_line_read_empty_input);
  tcase_add_test(tc, test_line_reader_reset_forgets_partial);
  tcase_add_test(tc, test_line_reader_set_max_applies_to_next_line);
  tcase_add_test(tc, test_line_read_releases_large_buffer);
  tcase_add_test(tc, test_line_read_nomem_loop);
  suite_add_tcase(s, tc);

  /* The big-input tests get their own time budget. */
  TCase *big = tcase_create("big");
  tcase_set_timeout(big, 120);
  tcase_add_loop_test(big, test_line_read_huge_line_bounded_memory, 0, 3);
  tcase_add_test(big, test_line_read_long_partial_line_scanned_once);
  suite_add_tcase(s, big);
  return s;
}
