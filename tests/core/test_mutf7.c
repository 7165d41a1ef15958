/*
 * IMAP modified UTF-7 (RFC 3501 section 5.1.3). Expected encodings were
 * computed independently (Python's UTF-16 codec and base64 module).
 */
#include <stdint.h>
#include <string.h>

#include "mailproto/mailproto.h"
#include "suites.h"
#include "support/overread.h"

/* Without fork, Check records every passing ck_assert in a file; loops that
 * check millions of values use this, which calls Check only on failure. */
#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                    \
  } while (0)

static overread_guard guard;

static void guard_setup(void) {
  ck_assert_int_eq(overread_init(&guard, 8192), 0);
}

static void guard_teardown(void) {
  overread_free(&guard);
}

typedef long (*conv_fn)(const char *, size_t, char *, size_t);

#define TO_UTF8 mailproto_mutf7_to_utf8
#define TO_MUTF7 mailproto_utf8_to_mutf7

/* Converts `len` bytes placed right before an unreadable page. */
static long conv_n(conv_fn fn, const char *in, size_t len, char *out,
                   size_t out_size) {
  const char *p = (const char *)overread_place(&guard, in, len);
  REQUIRE(p != NULL);
  return fn(p, len, out, out_size);
}

static void assert_converts(conv_fn fn, const char *in, const char *want) {
  char out[256];
  long n = conv_n(fn, in, strlen(in), out, sizeof out);
  ck_assert_msg(n == (long)strlen(want), "\"%s\" gave %ld", in, n);
  ck_assert_str_eq(out, want);
}

/* Both directions: utf8 <-> mutf7. */
static void assert_pair(const char *utf8, const char *mutf7) {
  assert_converts(TO_MUTF7, utf8, mutf7);
  assert_converts(TO_UTF8, mutf7, utf8);
}

static void assert_rejects_n(conv_fn fn, const char *in, size_t len) {
  char out[256];
  long n = conv_n(fn, in, len, out, sizeof out);
  ck_assert_msg(n == MAILPROTO_ERR_SYNTAX, "\"%s\" gave %ld", in, n);
}

static void assert_rejects(conv_fn fn, const char *in) {
  assert_rejects_n(fn, in, strlen(in));
}

static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

START_TEST(test_mutf7_to_utf8_rfc3501_example) {
  assert_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
              "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
              "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
  /* The corrected forms RFC 3501 gives for its two bad examples. */
  assert_pair("\xe2\x98\xba!", "&Jjo-!");
  assert_pair("\xe5\x8f\xb0\xe5\x8c\x97\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
              "&U,BTF2XlZyyKng-");
}
END_TEST

START_TEST(test_mutf7_to_utf8_ampersand) {
  assert_pair("&", "&-");
  assert_pair("a&b", "a&-b");
  assert_pair("&&", "&-&-");
  assert_pair("&-", "&--");
  assert_pair("Tom & Jerry", "Tom &- Jerry");
}
END_TEST

START_TEST(test_mutf7_to_utf8_plain_ascii) {
  /* Every printable character but "&" represents itself. */
  char all[96];
  size_t n = 0;
  for (int ch = 0x20; ch <= 0x7e; ch++)
    if (ch != '&')
      all[n++] = (char)ch;
  all[n] = '\0';
  assert_pair(all, all);
  assert_pair("", "");
  assert_pair("INBOX", "INBOX");
  assert_pair("-", "-");
  assert_pair("a-b", "a-b");
}
END_TEST

START_TEST(test_mutf7_to_utf8_supplementary_planes) {
  /* Characters above U+FFFF travel as UTF-16 surrogate pairs. */
  assert_pair("\xf0\x9f\x98\x80", "&2D3eAA-"); /* U+1F600 */
  assert_pair("\xf0\x90\x80\x80", "&2ADcAA-"); /* U+10000 */
  assert_pair("\xf4\x8f\xbf\xbf", "&2,,f,w-"); /* U+10FFFF */
  assert_pair("a\xf0\x9f\x98\x80"
              "b\xc3\xa9",
              "a&2D3eAA-b&AOk-");
  /* BMP and supplementary characters share one shift. */
  assert_pair("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xf0\x9f\x98\x80&x",
              "&ZeVnLIqe2D3eAA-&-x");
  assert_pair("\xc2\xa0", "&AKA-"); /* U+00A0, the first non-control */
  assert_pair("\xc3\xa9", "&AOk-");
}
END_TEST

START_TEST(test_mutf7_to_utf8_rejects_rfc3501_cases) {
  /* No implicit shift back to US-ASCII. */
  assert_rejects(TO_UTF8, "&Jjo!");
  assert_rejects(TO_UTF8, "&Jjo");
  assert_rejects(TO_UTF8, "abc&U,BTFw");
  /* Superfluous shift: adjacent runs must be one. */
  assert_rejects(TO_UTF8, "&U,BTFw-&ZeVnLIqe-");
  /* "&" not written "&-", at the end or before a non-base64 byte. */
  assert_rejects(TO_UTF8, "&");
  assert_rejects(TO_UTF8, "a&");
  assert_rejects(TO_UTF8, "& ");
  assert_rejects(TO_UTF8, "&&-");
  assert_rejects(TO_UTF8, "&!-");
  /* Printable US-ASCII in base64: "a", "&", " " and "~". */
  assert_rejects(TO_UTF8, "&AGE-");
  assert_rejects(TO_UTF8, "&ACY-");
  assert_rejects(TO_UTF8, "&ACA-");
  assert_rejects(TO_UTF8, "&AH4-");
  assert_rejects(TO_UTF8, "&JjoAIA-"); /* U+263A then " " */
  assert_rejects(TO_UTF8, "&JjoAQQ-"); /* U+263A then "A" */
}
END_TEST

START_TEST(test_mutf7_to_utf8_rejects_bad_base64) {
  /* Non-zero pad bits: "Jjo" is U+263A, "Jjp" leaves 01 behind. */
  assert_rejects(TO_UTF8, "&Jjp-");
  assert_rejects(TO_UTF8, "&Jjr-");
  assert_rejects(TO_UTF8, "&U,BTFx-");
  /* Non-minimal: a whole spare character, or an incomplete unit. */
  assert_rejects(TO_UTF8, "&JjoA-");
  assert_rejects(TO_UTF8, "&JjoAA-");
  assert_rejects(TO_UTF8, "&J-");
  assert_rejects(TO_UTF8, "&Jj-");
  assert_rejects(TO_UTF8, "&U,BTF-");
  /* Standard base64's "/" and "=" are not in the modified alphabet. */
  assert_rejects(TO_UTF8, "&U/BTFw-");
  assert_rejects(TO_UTF8, "&Jjo=-");
  assert_rejects(TO_UTF8, "&U,B.Fw-");
}
END_TEST

START_TEST(test_mutf7_to_utf8_rejects_bad_surrogates) {
  assert_rejects(TO_UTF8, "&2D0-");      /* lone high surrogate */
  assert_rejects(TO_UTF8, "&3gA-");      /* lone low surrogate */
  assert_rejects(TO_UTF8, "&3gDYPQ-");   /* low before high */
  assert_rejects(TO_UTF8, "&2D1OLQ-");   /* high then a BMP character */
  assert_rejects(TO_UTF8, "&2D0-&3gA-"); /* a pair split over two shifts */
  assert_rejects(TO_UTF8, "&2D0-x&3gA-");
  assert_rejects(TO_UTF8, "&2D3YPQ-"); /* high, high */
}
END_TEST

START_TEST(test_mutf7_to_utf8_rejects_controls_and_raw_bytes) {
  /* Encoded C0, DEL and C1 controls. */
  assert_rejects(TO_UTF8, "&AAA-");
  assert_rejects(TO_UTF8, "&AB8-");
  assert_rejects(TO_UTF8, "&AH8-");
  assert_rejects(TO_UTF8, "&AIA-");
  assert_rejects(TO_UTF8, "&AJ8-");
  /* Raw bytes outside 0x20..0x7e, anywhere. */
  for (int ch = 0; ch < 256; ch++) {
    if (ch >= 0x20 && ch <= 0x7e)
      continue;
    char in[8] = "ab&AOk-";
    in[1] = (char)ch;
    assert_rejects_n(TO_UTF8, in, 7);
    char in2[8] = "&AOk-";
    in2[2] = (char)ch; /* inside the shift */
    assert_rejects_n(TO_UTF8, in2, 5);
  }
}
END_TEST

START_TEST(test_utf8_to_mutf7_rejects_invalid_utf8) {
  static const char *bad[] = {
      "\x80",                     /* lone continuation */
      "a\xbf",                    /* ditto */
      "\xc0\x80",                 /* overlong NUL */
      "\xc1\xbf",                 /* overlong "?" */
      "\xe0\x80\xaf",             /* overlong "/" */
      "\xe0\x9f\xbf",             /* overlong U+07FF */
      "\xf0\x80\x80\xaf",         /* overlong "/" */
      "\xf0\x8f\xbf\xbf",         /* overlong U+FFFF */
      "\xed\xa0\x80",             /* U+D800 */
      "\xed\xbf\xbf",             /* U+DFFF */
      "\xed\xa0\xbd\xed\xb8\x80", /* CESU-8 surrogate pair */
      "\xf4\x90\x80\x80",         /* U+110000 */
      "\xf5\x80\x80\x80",
      "\xf8\x88\x80\x80\x80",
      "\xfe",
      "\xff",
      "\xe6\x97",     /* truncated */
      "\xf0\x9f\x98", /* truncated */
      "\xc3",         /* truncated at the end */
      "\xc3(",        /* bad continuation */
      "\xe6\x97(",
      "\xf0\x9f\x98(",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_rejects(TO_MUTF7, bad[i]);
}
END_TEST

START_TEST(test_utf8_to_mutf7_rejects_controls) {
  for (int ch = 1; ch < 0x20; ch++) {
    char in[4] = {'a', (char)ch, 'b', 0};
    assert_rejects(TO_MUTF7, in);
  }
  assert_rejects(TO_MUTF7, "\x7f");
  assert_rejects(TO_MUTF7, "\xc2\x80");
  assert_rejects(TO_MUTF7, "\xc2\x9f");
  assert_rejects(TO_MUTF7, "\xc3\xa9\xc2\x85"); /* NEL after a shift */
  assert_rejects_n(TO_MUTF7, "a\0b", 3);
}
END_TEST

START_TEST(test_mutf7_buffer_sizes) {
  char out[64];
  const char *m = "~peter/mail/&U,BTFw-/&ZeVnLIqe-";
  const char *u = "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/"
                  "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e";
  size_t mlen = strlen(m), ulen = strlen(u);
  /* The NUL needs a byte too. */
  ck_assert_int_eq(conv_n(TO_UTF8, m, mlen, out, ulen + 1), (long)ulen);
  ck_assert_int_eq(conv_n(TO_UTF8, m, mlen, out, ulen),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(conv_n(TO_MUTF7, u, ulen, out, mlen + 1), (long)mlen);
  ck_assert_int_eq(conv_n(TO_MUTF7, u, ulen, out, mlen),
                   MAILPROTO_ERR_BUFFER_FULL);
  /* Every shorter buffer is refused, and nothing is written past it. */
  for (size_t cap = 0; cap <= ulen; cap++) {
    memset(out, '#', sizeof out);
    ck_assert_int_eq(conv_n(TO_UTF8, m, mlen, out, cap),
                     MAILPROTO_ERR_BUFFER_FULL);
    ck_assert_int_eq(out[cap], '#');
  }
  for (size_t cap = 0; cap <= mlen; cap++) {
    memset(out, '#', sizeof out);
    ck_assert_int_eq(conv_n(TO_MUTF7, u, ulen, out, cap),
                     MAILPROTO_ERR_BUFFER_FULL);
    ck_assert_int_eq(out[cap], '#');
  }
  ck_assert_int_eq(conv_n(TO_UTF8, "", 0, out, 1), 0);
  ck_assert_int_eq(out[0], '\0');
  ck_assert_int_eq(conv_n(TO_UTF8, "", 0, out, 0), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(conv_n(TO_UTF8, "a", 1, NULL, 0), MAILPROTO_ERR_BUFFER_FULL);
  /* Malformed input is reported as such even with a short buffer. */
  ck_assert_int_eq(conv_n(TO_UTF8, "&Jjo!xxxxxxxxxxx", 16, out, 2),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(conv_n(TO_MUTF7, "xxxxxxxxxx\xff", 11, out, 2),
                   MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_mutf7_invalid_arguments) {
  char out[8];
  ck_assert_int_eq(TO_UTF8(NULL, 1, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(TO_UTF8("a", 1, NULL, 8), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(TO_MUTF7(NULL, 1, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(TO_MUTF7("a", 1, NULL, 8), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(TO_UTF8(NULL, 0, out, sizeof out), 0);
  ck_assert_int_eq(TO_MUTF7(NULL, 0, out, sizeof out), 0);
}
END_TEST

/* Appends the UTF-8 form of cp to buf. */
static size_t put_utf8(char *buf, uint32_t cp) {
  if (cp < 0x80) {
    buf[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    buf[0] = (char)(0xc0 | cp >> 6);
    buf[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    buf[0] = (char)(0xe0 | cp >> 12);
    buf[1] = (char)(0x80 | (cp >> 6 & 0x3f));
    buf[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  buf[0] = (char)(0xf0 | cp >> 18);
  buf[1] = (char)(0x80 | (cp >> 12 & 0x3f));
  buf[2] = (char)(0x80 | (cp >> 6 & 0x3f));
  buf[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A random code point that is allowed in a mailbox name. */
static uint32_t random_code_point(void) {
  for (;;) {
    uint32_t cp;
    switch (rng() % 5) {
    case 0:
      cp = 0x20 + rng() % 0x5f; /* printable ASCII */
      break;
    case 1:
      cp = rng() % 2 ? '&' : '-';
      break;
    case 2:
      cp = 0xa0 + rng() % (0x800 - 0xa0);
      break;
    case 3:
      cp = 0x800 + rng() % (0x10000 - 0x800);
      break;
    default:
      cp = 0x10000 + rng() % 0x100000;
      break;
    }
    if (cp >= 0xd800 && cp <= 0xdfff)
      continue;
    return cp;
  }
}

START_TEST(test_utf8_to_mutf7_round_trip_random) {
  /* utf8 -> mutf7 -> utf8 is the identity for any valid name. */
  char utf8[512], mutf7[1200], back[512];
  for (int iter = 0; iter < 20000; iter++) {
    size_t len = 0, count = rng() % 40;
    for (size_t i = 0; i < count; i++)
      len += put_utf8(utf8 + len, random_code_point());
    long n = conv_n(TO_MUTF7, utf8, len, mutf7, sizeof mutf7);
    REQUIRE(n >= 0);
    REQUIRE(strlen(mutf7) == (size_t)n);
    /* The encoding is plain printable ASCII. */
    for (long i = 0; i < n; i++)
      REQUIRE(mutf7[i] >= 0x20 && mutf7[i] <= 0x7e);
    long m = conv_n(TO_UTF8, mutf7, (size_t)n, back, sizeof back);
    REQUIRE(m == (long)len);
    REQUIRE(memcmp(back, utf8, len) == 0);
  }
}
END_TEST

START_TEST(test_mutf7_to_utf8_accepted_round_trip_random) {
  /* Random strings over the interesting bytes: whatever the decoder
   * accepts re-encodes to exactly the input (one spelling per name). */
  const char *chars = "&&&---AAAUBZeVJjo2D3eDdgh,,++/aZ09 !~";
  size_t nchars = strlen(chars);
  int accepted = 0, with_shift = 0;
  for (int iter = 0; iter < 200000; iter++) {
    char in[24], utf8[64], again[64];
    size_t len = rng() % sizeof in;
    for (size_t i = 0; i < len; i++)
      in[i] = chars[rng() % nchars];
    long n = conv_n(TO_UTF8, in, len, utf8, sizeof utf8);
    if (n < 0) {
      REQUIRE(n == MAILPROTO_ERR_SYNTAX);
      continue;
    }
    accepted++;
    if (memchr(in, '&', len) != NULL && memchr(in, '-', len) != NULL)
      with_shift++;
    long m = conv_n(TO_MUTF7, utf8, (size_t)n, again, sizeof again);
    REQUIRE(m == (long)len);
    REQUIRE(memcmp(again, in, len) == 0);
  }
  REQUIRE(accepted > 1000);
  REQUIRE(with_shift > 100);
}
END_TEST

START_TEST(test_mutf7_overread_every_prefix) {
  /* Every prefix of good and bad inputs, ending at the guard page, in
   * both directions: an error code or a result, never a read past. */
  static const char *inputs[] = {
      "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
      "&2D3eAA-",
      "&Jjo!",
      "&-",
      "&",
      "&U,BTF2XlZyyKng-",
      "&2D0-",
      "a&AOk-b",
      "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5",
      "\xf0\x9f\x98\x80",
      "\xe6\x97",
      "\xc3\xa9&"};
  char out[128];
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    size_t len = strlen(inputs[i]);
    for (size_t cut = 0; cut <= len; cut++) {
      long a = conv_n(TO_UTF8, inputs[i], cut, out, sizeof out);
      REQUIRE(a >= 0 || a == MAILPROTO_ERR_SYNTAX);
      long b = conv_n(TO_MUTF7, inputs[i], cut, out, sizeof out);
      REQUIRE(b >= 0 || b == MAILPROTO_ERR_SYNTAX);
    }
  }
  /* Random bytes. */
  for (int iter = 0; iter < 5000; iter++) {
    char in[48];
    size_t len = rng() % sizeof in;
    for (size_t j = 0; j < len; j++)
      in[j] = (char)rng();
    long a = conv_n(TO_UTF8, in, len, out, sizeof out);
    REQUIRE(a >= 0 || a == MAILPROTO_ERR_SYNTAX);
    long b = conv_n(TO_MUTF7, in, len, out, sizeof out);
    REQUIRE(b >= 0 || b == MAILPROTO_ERR_SYNTAX ||
            b == MAILPROTO_ERR_BUFFER_FULL);
  }
}
END_TEST

START_TEST(test_mutf7_long_names) {
  /* A 2000-character name in one shift, and one alternating shifts. */
  static char utf8[8000], mutf7[8000], back[8000];
  size_t len = 0;
  for (int i = 0; i < 2000; i++)
    len += put_utf8(utf8 + len, 0x4e00 + (uint32_t)i);
  long n = conv_n(TO_MUTF7, utf8, len, mutf7, sizeof mutf7);
  ck_assert_int_gt(n, 0);
  ck_assert_int_eq(mutf7[0], '&');
  ck_assert_int_eq(mutf7[n - 1], '-');
  ck_assert_ptr_null(memchr(mutf7 + 1, '-', (size_t)n - 2)); /* one shift */
  /* Decoding makes it longer: 16 bits per 2.67 characters become three
   * UTF-8 bytes, so output buffers must not be sized by the input. */
  ck_assert_int_lt(n, (long)len);
  ck_assert_int_eq(conv_n(TO_UTF8, mutf7, (size_t)n, back, sizeof back),
                   (long)len);
  ck_assert(memcmp(back, utf8, len) == 0);
  len = 0;
  for (int i = 0; i < 1000; i++) {
    len += put_utf8(utf8 + len, 0xe9);
    utf8[len++] = '.';
  }
  n = conv_n(TO_MUTF7, utf8, len, mutf7, sizeof mutf7);
  ck_assert_int_eq(n, 6000); /* "&AOk-." per pair */
  ck_assert_int_eq(conv_n(TO_UTF8, mutf7, (size_t)n, back, sizeof back),
                   (long)len);
}
END_TEST

Suite *suite_core_mutf7(void) {
  Suite *s = suite_create("core_mutf7");
  TCase *tc = tcase_create("mutf7");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mutf7_to_utf8_rfc3501_example);
  tcase_add_test(tc, test_mutf7_to_utf8_ampersand);
  tcase_add_test(tc, test_mutf7_to_utf8_plain_ascii);
  tcase_add_test(tc, test_mutf7_to_utf8_supplementary_planes);
  tcase_add_test(tc, test_mutf7_to_utf8_rejects_rfc3501_cases);
  tcase_add_test(tc, test_mutf7_to_utf8_rejects_bad_base64);
  tcase_add_test(tc, test_mutf7_to_utf8_rejects_bad_surrogates);
  tcase_add_test(tc, test_mutf7_to_utf8_rejects_controls_and_raw_bytes);
  tcase_add_test(tc, test_utf8_to_mutf7_rejects_invalid_utf8);
  tcase_add_test(tc, test_utf8_to_mutf7_rejects_controls);
  tcase_add_test(tc, test_mutf7_buffer_sizes);
  tcase_add_test(tc, test_mutf7_invalid_arguments);
  tcase_add_test(tc, test_utf8_to_mutf7_round_trip_random);
  tcase_add_test(tc, test_mutf7_to_utf8_accepted_round_trip_random);
  tcase_add_test(tc, test_mutf7_overread_every_prefix);
  tcase_add_test(tc, test_mutf7_long_names);
  suite_add_tcase(s, tc);
  return s;
}
