/* UTF-8 decoding (RFC 3629) and SASLprep's mapping and prohibited output
 * (RFC 4013 2.1, 2.3; tables of RFC 3454 appendices B.1 and C). */
#include <string.h>

#include "core/utf8.h"
#include "mailproto/mailproto.h"
#include "suites.h"

static size_t decode(const char *s, uint32_t *cp) {
  return mailproto_utf8_decode((const uint8_t *)s, strlen(s), cp);
}

START_TEST(test_utf8_decode_lengths_and_values) {
  uint32_t cp;
  ck_assert_uint_eq(decode("A", &cp), 1);
  ck_assert_uint_eq(cp, 0x41);
  ck_assert_uint_eq(decode("\xc3\xa9", &cp), 2); /* é */
  ck_assert_uint_eq(cp, 0xe9);
  ck_assert_uint_eq(decode("\xe2\x82\xac", &cp), 3); /* € */
  ck_assert_uint_eq(cp, 0x20ac);
  ck_assert_uint_eq(decode("\xf0\x9f\x93\xa7", &cp), 4); /* 📧 */
  ck_assert_uint_eq(cp, 0x1f4e7);
  ck_assert_uint_eq(decode("\xf4\x8f\xbf\xbf", &cp), 4);
  ck_assert_uint_eq(cp, 0x10ffff);
}
END_TEST

/* RFC 3629 3 and 10: overlong forms, surrogates, values above U+10FFFF,
 * lone continuation bytes and cut sequences are not UTF-8. */
START_TEST(test_utf8_decode_refuses_ill_formed) {
  static const char *const bad[] = {
      "\xc0\xaf",
      "\xc1\xbf",
      "\xe0\x80\xaf",
      "\xed\xa0\x80",
      "\xf0\x80\x80\xaf",
      "\xf4\x90\x80\x80",
      "\xf5\x80\x80\x80",
      "\x80",
      "\xbf",
      "\xc3",
      "\xe2\x82",
      "\xf0\x9f\x93",
      "\xc3\x28",
      "\xff",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    uint32_t cp;
    ck_assert_msg(decode(bad[i], &cp) == 0, "case %zu", i);
  }
  uint32_t cp;
  ck_assert_uint_eq(mailproto_utf8_decode((const uint8_t *)"", 0, &cp), 0);
}
END_TEST

/* Encoding is decoding's inverse at each length's edges. */
START_TEST(test_utf8_encode_round_trip) {
  static const uint32_t cps[] = {0,      0x7f,    0x80,    0x7ff,
                                 0x800,  0xd7ff,  0xe000,  0xfffd,
                                 0xffff, 0x10000, 0x1f4e7, 0x10ffff};
  static const size_t lens[] = {1, 1, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4};
  for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
    uint8_t buf[4];
    uint32_t back = 0xffffffff;
    size_t n = mailproto_utf8_encode(buf, cps[i]);
    ck_assert_uint_eq(n, lens[i]);
    ck_assert_uint_eq(mailproto_utf8_decode(buf, n, &back), n);
    ck_assert_uint_eq(back, cps[i]);
  }
}
END_TEST

static int prep(const char *in, char *out) {
  size_t n = 0;
  int rc = mailproto_saslprep(in, strlen(in), out, &n);
  out[rc == 0 ? n : 0] = '\0';
  return rc;
}

/* RFC 4013 3's examples, those that need no normalisation. */
START_TEST(test_saslprep_rfc4013_examples) {
  char out[64];
  /* "I<U+00AD>X" -> "IX": SOFT HYPHEN mapped to nothing. */
  ck_assert_int_eq(prep("I\xc2\xadX", out), 0);
  ck_assert_str_eq(out, "IX");
  ck_assert_int_eq(prep("user", out), 0);
  ck_assert_str_eq(out, "user");
  ck_assert_int_eq(prep("USER", out), 0);
  ck_assert_str_eq(out, "USER"); /* case is preserved */
  /* "<U+0007>": prohibited character. */
  ck_assert_int_eq(prep("\x07", out), MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_saslprep_maps_spaces_and_invisibles) {
  char out[64];
  /* NO-BREAK SPACE and IDEOGRAPHIC SPACE -> SPACE (C.1.2). */
  ck_assert_int_eq(prep("a\xc2\xa0"
                        "b\xe3\x80\x80"
                        "c",
                        out),
                   0);
  ck_assert_str_eq(out, "a b c");
  /* ZERO WIDTH SPACE, ZERO WIDTH JOINER, BOM, variation selector: B.1. */
  ck_assert_int_eq(prep("p\xe2\x80\x8b"
                        "a\xe2\x80\x8d"
                        "s\xef\xbb\xbf"
                        "s\xef\xb8\x8f",
                        out),
                   0);
  ck_assert_str_eq(out, "pass");
  /* Other non-ASCII is kept as it is. */
  ck_assert_int_eq(prep("j\xc3\xb6rg", out), 0);
  ck_assert_str_eq(out, "j\xc3\xb6rg");
}
END_TEST

START_TEST(test_saslprep_prohibited_output) {
  static const char *const bad[] = {
      "a\x7f",             /* C.2.1 DELETE */
      "a\xc2\x85",         /* C.2.2 NEXT LINE */
      "a\xe2\x80\xa8",     /* C.2.2 LINE SEPARATOR */
      "a\xee\x80\x80",     /* C.3 private use U+E000 */
      "a\xf3\xb0\x80\x80", /* C.3 plane 15 private use */
      "a\xef\xb7\x90",     /* C.4 non-character U+FDD0 */
      "a\xef\xbf\xbe",     /* C.4 U+FFFE */
      "a\xf0\x9f\xbf\xbf", /* C.4 U+1FFFF */
      "a\xef\xbf\xbd",     /* C.6 REPLACEMENT CHARACTER */
      "a\xe2\xbf\xb0",     /* C.7 U+2FF0 */
      "a\xe2\x80\x8e",     /* C.8 LEFT-TO-RIGHT MARK */
      "a\xe2\x80\xae",     /* C.8 RIGHT-TO-LEFT OVERRIDE */
      "a\xf3\xa0\x80\x81", /* C.9 LANGUAGE TAG */
      "a\xc3",             /* not UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char out[16];
    ck_assert_msg(prep(bad[i], out) == MAILPROTO_ERR_SYNTAX, "case %zu", i);
  }
}
END_TEST

/* What every login path and the shipped stores apply: SASLprep for
 * UTF-8, the rest as it is, ASCII controls refused everywhere, and an
 * input that prepares to nothing refused (RFC 4616 2). */
START_TEST(test_credential_prepare_paths) {
  char out[32];
  size_t n = 99;
  ck_assert_int_eq(mailproto_credential_prepare("", 0, out, &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(mailproto_credential_prepare("p w", 3, out, &n), 0);
  ck_assert_str_eq(out, "p w");
  ck_assert_int_eq(mailproto_credential_prepare("p\xe4ss", 4, out, &n), 0);
  ck_assert_str_eq(out, "p\xe4ss"); /* Latin-1: not UTF-8, as it is */
  ck_assert_int_eq(mailproto_credential_prepare("k\xc2\xa0"
                                                "ey",
                                                5, out, &n),
                   0);
  ck_assert_str_eq(out, "k ey");
  ck_assert_uint_eq(n, 4);
  ck_assert_int_eq(mailproto_credential_prepare("a\tb", 3, out, &n),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(mailproto_credential_prepare("\xe4\x7f", 2, out, &n),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(mailproto_credential_prepare("\xc2\xad", 2, out, &n),
                   MAILPROTO_ERR_SYNTAX);
}
END_TEST

Suite *suite_core_utf8(void) {
  Suite *s = suite_create("core_utf8");
  TCase *tc = tcase_create("utf8");
  tcase_add_test(tc, test_utf8_decode_lengths_and_values);
  tcase_add_test(tc, test_utf8_decode_refuses_ill_formed);
  tcase_add_test(tc, test_utf8_encode_round_trip);
  tcase_add_test(tc, test_saslprep_rfc4013_examples);
  tcase_add_test(tc, test_saslprep_maps_spaces_and_invisibles);
  tcase_add_test(tc, test_saslprep_prohibited_output);
  tcase_add_test(tc, test_credential_prepare_paths);
  suite_add_tcase(s, tc);
  return s;
}
