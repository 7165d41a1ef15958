/* UTF-8 decoding and encoding (RFC 3629). */
#include <string.h>

#include "core/utf8.h"
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

Suite *suite_core_utf8(void) {
  Suite *s = suite_create("core_utf8");
  TCase *tc = tcase_create("utf8");
  tcase_add_test(tc, test_utf8_decode_lengths_and_values);
  tcase_add_test(tc, test_utf8_decode_refuses_ill_formed);
  tcase_add_test(tc, test_utf8_encode_round_trip);
  suite_add_tcase(s, tc);
  return s;
}
