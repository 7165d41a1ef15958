/* Base64 (RFC 4648 section 4): encoder, strict decoder. */
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

/* RFC 4648 section 10. */
static const struct {
  const char *plain, *encoded;
} vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};
enum { NVECTORS = sizeof vectors / sizeof vectors[0] };

static overread_guard guard;

static void guard_setup(void) {
  ck_assert_int_eq(overread_init(&guard, 8192), 0);
}

static void guard_teardown(void) {
  overread_free(&guard);
}

/* Decodes `in` placed right before an unreadable page. */
static long decode_guarded(const char *in, size_t len, void *out,
                           size_t out_size) {
  const char *p = (const char *)overread_place(&guard, in, len);
  REQUIRE(p != NULL);
  return mailproto_base64_decode(p, len, out, out_size);
}

static long decode_str(const char *in, void *out, size_t out_size) {
  return decode_guarded(in, strlen(in), out, out_size);
}

/* A small deterministic generator, so failures reproduce. */
static uint32_t rng_state = 12345;
static uint32_t rng(void) {
  rng_state = rng_state * 1103515245u + 12345u;
  return rng_state >> 8;
}

START_TEST(test_base64_encoded_len_sizes) {
  ck_assert_uint_eq(mailproto_base64_encoded_len(0), 0);
  ck_assert_uint_eq(mailproto_base64_encoded_len(1), 4);
  ck_assert_uint_eq(mailproto_base64_encoded_len(2), 4);
  ck_assert_uint_eq(mailproto_base64_encoded_len(3), 4);
  ck_assert_uint_eq(mailproto_base64_encoded_len(4), 8);
  ck_assert_uint_eq(mailproto_base64_encoded_len(57), 76);
  /* The largest length whose encoding still fits in size_t. */
  size_t max_ok = SIZE_MAX / 4 * 3;
  ck_assert_uint_eq(mailproto_base64_encoded_len(max_ok), SIZE_MAX / 4 * 4);
  ck_assert_uint_eq(mailproto_base64_encoded_len(max_ok + 1), 0);
  ck_assert_uint_eq(mailproto_base64_encoded_len(SIZE_MAX), 0);
}
END_TEST

START_TEST(test_base64_encode_rfc4648_vectors) {
  for (int i = 0; i < NVECTORS; i++) {
    char out[16];
    memset(out, '#', sizeof out);
    size_t in_len = strlen(vectors[i].plain);
    long n = mailproto_base64_encode(vectors[i].plain, in_len, out, sizeof out);
    ck_assert_int_eq(n, (long)strlen(vectors[i].encoded));
    ck_assert_uint_eq((size_t)n, mailproto_base64_encoded_len(in_len));
    ck_assert(memcmp(out, vectors[i].encoded, (size_t)n) == 0);
    ck_assert_int_eq(out[n], '#'); /* not NUL-terminated, nothing more */
  }
}
END_TEST

START_TEST(test_base64_decode_rfc4648_vectors) {
  for (int i = 0; i < NVECTORS; i++) {
    char out[16];
    long n = decode_str(vectors[i].encoded, out, sizeof out);
    ck_assert_int_eq(n, (long)strlen(vectors[i].plain));
    ck_assert(memcmp(out, vectors[i].plain, (size_t)n) == 0);
  }
}
END_TEST

START_TEST(test_base64_decode_exact_buffer_size) {
  for (int i = 1; i < NVECTORS; i++) {
    size_t need = strlen(vectors[i].plain);
    char out[16];
    memset(out, '#', sizeof out);
    ck_assert_int_eq(decode_str(vectors[i].encoded, out, need), (long)need);
    ck_assert(memcmp(out, vectors[i].plain, need) == 0);
    ck_assert_int_eq(out[need], '#');
    ck_assert_int_eq(decode_str(vectors[i].encoded, out, need - 1),
                     MAILPROTO_ERR_BUFFER_FULL);
  }
}
END_TEST

START_TEST(test_base64_encode_buffer_too_small) {
  char out[16];
  memset(out, '#', sizeof out);
  ck_assert_int_eq(mailproto_base64_encode("foob", 4, out, 7),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(mailproto_base64_encode("f", 1, out, 3),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(mailproto_base64_encode("f", 1, out, 0),
                   MAILPROTO_ERR_BUFFER_FULL);
  /* Nothing is written when the result does not fit. */
  for (size_t i = 0; i < sizeof out; i++)
    ck_assert_int_eq(out[i], '#');
  ck_assert_int_eq(mailproto_base64_encode("", 0, out, 0), 0);
}
END_TEST

START_TEST(test_base64_decode_buffer_too_small) {
  char out[8];
  ck_assert_int_eq(decode_str("Zm9vYmFy", out, 5), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(decode_str("Zm9v", out, 0), MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(decode_str("Zg==", NULL, 0), MAILPROTO_ERR_BUFFER_FULL);
  /* Malformed input is reported as malformed even when the buffer is
   * also too small. */
  ck_assert_int_eq(decode_str("Zm9v!mFy", out, 5), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(decode_str("Zm9vYh==", out, 3), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(decode_str("Zm9", out, 0), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_base64_decode_documented_bound_is_enough) {
  /* in_len / 4 * 3 bytes always suffice, whatever the padding. */
  uint8_t plain[64], enc[96], out[64];
  for (size_t len = 0; len <= sizeof plain; len++) {
    for (size_t i = 0; i < len; i++)
      plain[i] = (uint8_t)rng();
    long n = mailproto_base64_encode(plain, len, (char *)enc, sizeof enc);
    ck_assert_int_ge(n, 0);
    long m =
        decode_guarded((const char *)enc, (size_t)n, out, (size_t)n / 4 * 3);
    ck_assert_int_eq(m, (long)len);
    ck_assert(memcmp(out, plain, len) == 0);
  }
}
END_TEST

START_TEST(test_base64_decode_rejects_bad_characters) {
  /* Every byte outside the alphabet, in every position of a group. */
  for (int ch = 0; ch < 256; ch++) {
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
        (ch >= '0' && ch <= '9') || ch == '+' || ch == '/')
      continue;
    for (int pos = 0; pos < 8; pos++) {
      char in[9] = "Zm9vYmFy";
      in[pos] = (char)ch;
      uint8_t out[8];
      ck_assert_msg(decode_guarded(in, 8, out, sizeof out) ==
                        MAILPROTO_ERR_SYNTAX,
                    "byte 0x%02x at %d accepted", ch, pos);
    }
  }
}
END_TEST

START_TEST(test_base64_decode_rejects_url_alphabet) {
  uint8_t out[8];
  ck_assert_int_eq(decode_str("-_-_", out, sizeof out), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(decode_str("+/+/", out, sizeof out), 3);
  ck_assert_int_eq(out[0], 0xfb);
  ck_assert_int_eq(out[1], 0xff);
  ck_assert_int_eq(out[2], 0xbf);
}
END_TEST

START_TEST(test_base64_decode_rejects_bad_padding) {
  static const char *bad[] = {
      "Zg=",      /* short */
      "Zg===",    /* too much */
      "Z===",     /* a single character cannot carry a byte */
      "====",     /* padding only */
      "Zg=a",     /* data after padding */
      "Zm=v",     /* padding inside the group */
      "=Zm9",     /* padding first */
      "Zg==Zm9v", /* padding before the last group */
      "Zm9vZg==Zm9v", "Zm9v====", "Zg==\0\0\0\0",
  };
  uint8_t out[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = strlen(bad[i]);
    if (i == sizeof bad / sizeof bad[0] - 1)
      len = 8; /* embedded NULs */
    ck_assert_msg(decode_guarded(bad[i], len, out, sizeof out) ==
                      MAILPROTO_ERR_SYNTAX,
                  "\"%s\" accepted", bad[i]);
  }
  /* RFC 4648 section 3.2: padding is required. */
  ck_assert_int_eq(decode_str("Zg", out, sizeof out), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(decode_str("Zm8", out, sizeof out), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_base64_decode_rejects_nonzero_pad_bits) {
  /* RFC 4648 section 3.5: in "xy==" the low 4 bits of y are padding, in
   * "xyz=" the low 2 bits of z. Try every final character. */
  const char *alpha =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int v = 0; v < 64; v++) {
    uint8_t out[4];
    char two[5] = {'Z', alpha[v], '=', '=', 0};
    long n = decode_guarded(two, 4, out, sizeof out);
    if (v & 0x0f)
      ck_assert_int_eq(n, MAILPROTO_ERR_SYNTAX);
    else
      ck_assert_int_eq(n, 1);
    char three[5] = {'Z', 'm', alpha[v], '=', 0};
    n = decode_guarded(three, 4, out, sizeof out);
    if (v & 0x03)
      ck_assert_int_eq(n, MAILPROTO_ERR_SYNTAX);
    else
      ck_assert_int_eq(n, 2);
  }
}
END_TEST

START_TEST(test_base64_decode_rejects_bad_length) {
  static const char *bad[] = {"Z", "Zm", "Zm9", "Zm9vY", "Zm9vYm", "Zm9vYmF"};
  uint8_t out[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(decode_str(bad[i], out, sizeof out), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_base64_decode_rejects_whitespace) {
  static const char *bad[] = {" Zm9v",        "Zm9v ",    "Zm 9v",
                              "Zm9v\r\n",     "Zm9v\n",   "\tZm9vYmFy",
                              "Zm9v\r\nYmFy", "Zm9 vYm=", "Zm9v    "};
  uint8_t out[16];
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(decode_str(bad[i], out, sizeof out) == MAILPROTO_ERR_SYNTAX,
                  "\"%s\" accepted", bad[i]);
}
END_TEST

START_TEST(test_base64_encode_invalid_arguments) {
  char out[8];
  ck_assert_int_eq(mailproto_base64_encode(NULL, 1, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_base64_encode("a", 1, NULL, 8),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_base64_encode(NULL, 0, NULL, 0), 0);
  ck_assert_int_eq(mailproto_base64_decode(NULL, 4, out, sizeof out),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_base64_decode("Zg==", 4, NULL, 8),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_base64_decode(NULL, 0, NULL, 0), 0);
}
END_TEST

START_TEST(test_base64_encode_every_byte_value) {
  /* All 256 single bytes, and all 65536 pairs, survive a round trip. */
  for (unsigned v = 0; v < 65536; v++) {
    uint8_t in[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    char enc[4];
    uint8_t out[3];
    size_t len = v < 256 ? 1 : 2;
    const uint8_t *src = v < 256 ? in + 1 : in;
    REQUIRE(mailproto_base64_encode(src, len, enc, sizeof enc) == 4);
    REQUIRE(decode_guarded(enc, 4, out, sizeof out) == (long)len);
    REQUIRE(memcmp(out, src, len) == 0);
  }
}
END_TEST

START_TEST(test_base64_encode_round_trip_random) {
  uint8_t plain[3000], out[3000];
  char enc[4000];
  for (int iter = 0; iter < 500; iter++) {
    size_t len = rng() % sizeof plain;
    for (size_t i = 0; i < len; i++)
      plain[i] = (uint8_t)rng();
    long n = mailproto_base64_encode(plain, len, enc, sizeof enc);
    REQUIRE(n == (long)mailproto_base64_encoded_len(len));
    long m = decode_guarded(enc, (size_t)n, out, sizeof out);
    REQUIRE(m == (long)len);
    REQUIRE(memcmp(out, plain, len) == 0);
  }
}
END_TEST

START_TEST(test_base64_decode_canonical_reencodes) {
  /* The decoder is strict, so whatever it accepts is the one encoding of
   * its result: re-encoding gives the input back. Random 4..16 character
   * strings over the alphabet plus "=" and a stray byte. */
  const char *chars =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/==== ";
  size_t nchars = strlen(chars);
  int accepted = 0;
  for (int iter = 0; iter < 20000; iter++) {
    char in[16], enc[16];
    uint8_t out[16];
    size_t len = (size_t)(rng() % 4 + 1) * 4;
    for (size_t i = 0; i < len; i++)
      in[i] = chars[rng() % nchars];
    long m = decode_guarded(in, len, out, sizeof out);
    if (m < 0) {
      REQUIRE(m == MAILPROTO_ERR_SYNTAX);
      continue;
    }
    accepted++;
    long n = mailproto_base64_encode(out, (size_t)m, enc, sizeof enc);
    REQUIRE(n == (long)len);
    REQUIRE(memcmp(enc, in, len) == 0);
  }
  REQUIRE(accepted > 100);
}
END_TEST

START_TEST(test_base64_decode_overread_every_prefix) {
  /* Every prefix of valid and invalid inputs, ending at the guard page. */
  static const char *inputs[] = {"Zm9vYmFy", "Zm9vYg==", "Zm9vYmE=", "Zg==",
                                 "Zm9v!mFy", "Zm9vYmF=", "Zh==",     "===="};
  uint8_t out[16];
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    size_t len = strlen(inputs[i]);
    for (size_t cut = 0; cut <= len; cut++) {
      long n = decode_guarded(inputs[i], cut, out, sizeof out);
      REQUIRE(n >= 0 || n == MAILPROTO_ERR_SYNTAX);
      REQUIRE(cut % 4 == 0 || n == MAILPROTO_ERR_SYNTAX);
    }
  }
  /* Random bytes: an error code or a result, never a crash. */
  for (int iter = 0; iter < 2000; iter++) {
    char in[64];
    size_t len = rng() % sizeof in;
    for (size_t i = 0; i < len; i++)
      in[i] = (char)rng();
    long n = decode_guarded(in, len, out, sizeof out);
    REQUIRE(n >= 0 || n == MAILPROTO_ERR_SYNTAX ||
            n == MAILPROTO_ERR_BUFFER_FULL);
  }
}
END_TEST

START_TEST(test_base64_encode_overread) {
  /* The encoder reads exactly in_len bytes too. */
  uint8_t data[64];
  char enc[100];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 37);
  for (size_t len = 0; len <= sizeof data; len++) {
    const uint8_t *p = overread_place(&guard, data, len);
    long n = mailproto_base64_encode(p, len, enc, sizeof enc);
    ck_assert_int_eq(n, (long)mailproto_base64_encoded_len(len));
  }
}
END_TEST

START_TEST(test_base64_decode_large_input) {
  /* 6 KiB of data through the guard, decoded in one call. */
  static uint8_t plain[6000], out[6000];
  static char enc[8000];
  for (size_t i = 0; i < sizeof plain; i++)
    plain[i] = (uint8_t)rng();
  long n = mailproto_base64_encode(plain, sizeof plain, enc, sizeof enc);
  ck_assert_int_eq(n, 8000);
  ck_assert_int_eq(decode_guarded(enc, (size_t)n, out, sizeof out),
                   (long)sizeof plain);
  ck_assert(memcmp(out, plain, sizeof plain) == 0);
  /* One bad byte anywhere is found. */
  enc[4321] = '.';
  ck_assert_int_eq(decode_guarded(enc, (size_t)n, out, sizeof out),
                   MAILPROTO_ERR_SYNTAX);
}
END_TEST

Suite *suite_core_base64(void) {
  Suite *s = suite_create("core_base64");
  TCase *tc = tcase_create("base64");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_add_test(tc, test_base64_encoded_len_sizes);
  tcase_add_test(tc, test_base64_encode_rfc4648_vectors);
  tcase_add_test(tc, test_base64_decode_rfc4648_vectors);
  tcase_add_test(tc, test_base64_decode_exact_buffer_size);
  tcase_add_test(tc, test_base64_encode_buffer_too_small);
  tcase_add_test(tc, test_base64_decode_buffer_too_small);
  tcase_add_test(tc, test_base64_decode_documented_bound_is_enough);
  tcase_add_test(tc, test_base64_decode_rejects_bad_characters);
  tcase_add_test(tc, test_base64_decode_rejects_url_alphabet);
  tcase_add_test(tc, test_base64_decode_rejects_bad_padding);
  tcase_add_test(tc, test_base64_decode_rejects_nonzero_pad_bits);
  tcase_add_test(tc, test_base64_decode_rejects_bad_length);
  tcase_add_test(tc, test_base64_decode_rejects_whitespace);
  tcase_add_test(tc, test_base64_encode_invalid_arguments);
  tcase_add_test(tc, test_base64_encode_every_byte_value);
  tcase_add_test(tc, test_base64_encode_round_trip_random);
  tcase_add_test(tc, test_base64_decode_canonical_reencodes);
  tcase_add_test(tc, test_base64_decode_overread_every_prefix);
  tcase_add_test(tc, test_base64_encode_overread);
  tcase_add_test(tc, test_base64_decode_large_input);
  suite_add_tcase(s, tc);
  return s;
}
