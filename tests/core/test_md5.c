/* MD5 (RFC 1321), HMAC-MD5 (RFC 2104/2202), hex and constant-time compare. */
#include <string.h>

#include "core/md5.h"
#include "suites.h"

static void md5_hex(const void *data, size_t len, char hex[33]) {
  mailproto_md5 ctx;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  mailproto_md5_init(&ctx);
  mailproto_md5_update(&ctx, data, len);
  mailproto_md5_final(&ctx, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
}

/* RFC 1321 appendix A.5, the whole test suite. */
static const struct {
  const char *in;
  const char *digest;
} rfc1321_suite[] = {
    {"", "d41d8cd98f00b204e9800998ecf8427e"},
    {"a", "0cc175b9c0f1b6a831c399e269772661"},
    {"abc", "900150983cd24fb0d6963f7d28e17f72"},
    {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
    {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
     "d174ab98d277d9f5a5611c2c9f419d9f"},
    {"1234567890123456789012345678901234567890123456789012345678901234567890"
     "1234567890",
     "57edf4a22be3c955ac49da2e2107b67a"},
};
enum { RFC1321_COUNT = sizeof rfc1321_suite / sizeof rfc1321_suite[0] };

START_TEST(test_md5_final_rfc1321_suite) {
  char hex[33];
  md5_hex(rfc1321_suite[_i].in, strlen(rfc1321_suite[_i].in), hex);
  ck_assert_str_eq(hex, rfc1321_suite[_i].digest);
}
END_TEST

/* Inputs around the padding boundaries (55, 56, 63, 64, 65 bytes) take
 * different paths through final(); every chunking must agree with the
 * one-shot digest. */
START_TEST(test_md5_update_streaming_equals_one_shot) {
  static const size_t chunks[] = {1, 2, 3, 5, 7, 13, 31, 63, 64, 65, 100};
  uint8_t data[300];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 7 + 3);
  for (size_t len = 0; len <= sizeof data; len++) {
    char want[33];
    md5_hex(data, len, want);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
      mailproto_md5 ctx;
      uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
      char got[33];
      mailproto_md5_init(&ctx);
      for (size_t off = 0; off < len; off += chunks[c]) {
        size_t n = len - off < chunks[c] ? len - off : chunks[c];
        mailproto_md5_update(&ctx, data + off, n);
      }
      mailproto_md5_final(&ctx, digest);
      mailproto_hex_lower(digest, sizeof digest, got);
      ck_assert_msg(strcmp(got, want) == 0, "len %zu chunk %zu", len,
                    chunks[c]);
    }
  }
}
END_TEST

/* A million 'a's, the classic long-message check (several length bytes
 * in the padding are non-zero). */
START_TEST(test_md5_update_million_a) {
  uint8_t block[1000];
  memset(block, 'a', sizeof block);
  mailproto_md5 ctx;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[33];
  mailproto_md5_init(&ctx);
  for (int i = 0; i < 1000; i++)
    mailproto_md5_update(&ctx, block, sizeof block);
  mailproto_md5_final(&ctx, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  ck_assert_str_eq(hex, "7707d6ae4e027c70eea2a935c2296f21");
}
END_TEST

/* RFC 2202 section 2, test cases 1-7. */
START_TEST(test_hmac_md5_rfc2202) {
  uint8_t key[80], data[80];
  size_t key_len = 0, data_len = 0;
  const char *want = NULL;
  switch (_i) {
  case 1:
    memset(key, 0x0b, key_len = 16);
    memcpy(data, "Hi There", data_len = 8);
    want = "9294727a3638bb1c13f48ef8158bfc9d";
    break;
  case 2:
    memcpy(key, "Jefe", key_len = 4);
    memcpy(data, "what do ya want for nothing?", data_len = 28);
    want = "750c783e6ab0b503eaa86e310a5db738";
    break;
  case 3:
    memset(key, 0xaa, key_len = 16);
    memset(data, 0xdd, data_len = 50);
    want = "56be34521d144c88dbb8c733f0e8b3f6";
    break;
  case 4:
    for (key_len = 0; key_len < 25; key_len++)
      key[key_len] = (uint8_t)(key_len + 1);
    memset(data, 0xcd, data_len = 50);
    want = "697eaf0aca3a3aea3a75164746ffaa79";
    break;
  case 5:
    memset(key, 0x0c, key_len = 16);
    memcpy(data, "Test With Truncation", data_len = 20);
    want = "56461ef2342edc00f9bab995690efd4c";
    break;
  case 6:
    memset(key, 0xaa, key_len = 80);
    memcpy(data, "Test Using Larger Than Block-Size Key - Hash Key First",
           data_len = 54);
    want = "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd";
    break;
  default:
    memset(key, 0xaa, key_len = 80);
    memcpy(data,
           "Test Using Larger Than Block-Size Key and Larger "
           "Than One Block-Size Data",
           data_len = 73);
    want = "6f630fad67cda0ee1fb1f562db3aa53e";
    break;
  }
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[33];
  mailproto_hmac_md5(key, key_len, data, data_len, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  ck_assert_str_eq(hex, want);
}
END_TEST

/* RFC 2104 section 2: a key of exactly the block size is used as is, one
 * byte more is hashed first; the two must give different MACs, and an
 * empty key must work. */
START_TEST(test_hmac_md5_key_lengths) {
  uint8_t key[65];
  memset(key, 0x42, sizeof key);
  uint8_t d64[16], d65[16], d0[16], d0b[16];
  mailproto_hmac_md5(key, 64, "x", 1, d64);
  mailproto_hmac_md5(key, 65, "x", 1, d65);
  ck_assert_mem_ne(d64, d65, 16);
  mailproto_hmac_md5(NULL, 0, "x", 1, d0);
  /* An empty key equals an all-zero 64-byte key (zero padding). */
  memset(key, 0, sizeof key);
  mailproto_hmac_md5(key, 64, "x", 1, d0b);
  ck_assert_mem_eq(d0, d0b, 16);
}
END_TEST

START_TEST(test_hex_lower_formats_and_terminates) {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff, 0x5c};
  char out[11];
  memset(out, 'Z', sizeof out);
  mailproto_hex_lower(bytes, sizeof bytes, out);
  ck_assert_str_eq(out, "000fa0ff5c");
  mailproto_hex_lower(bytes, 0, out);
  ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_memcmp_const_equal_and_different) {
  const uint8_t a[] = {1, 2, 3, 4};
  const uint8_t b[] = {1, 2, 3, 5};
  const uint8_t c[] = {0, 2, 3, 4};
  ck_assert_int_eq(mailproto_memcmp_const(a, a, 4), 0);
  ck_assert_int_ne(mailproto_memcmp_const(a, b, 4), 0);
  ck_assert_int_ne(mailproto_memcmp_const(a, c, 4), 0);
  ck_assert_int_eq(mailproto_memcmp_const(a, b, 3), 0);
  ck_assert_int_eq(mailproto_memcmp_const(a, b, 0), 0);
}
END_TEST

Suite *suite_core_md5(void) {
  Suite *s = suite_create("core_md5");
  TCase *tc = tcase_create("md5");
  tcase_add_loop_test(tc, test_md5_final_rfc1321_suite, 0, RFC1321_COUNT);
  tcase_add_test(tc, test_md5_update_streaming_equals_one_shot);
  tcase_add_test(tc, test_md5_update_million_a);
  tcase_add_loop_test(tc, test_hmac_md5_rfc2202, 1, 8);
  tcase_add_test(tc, test_hmac_md5_key_lengths);
  tcase_add_test(tc, test_hex_lower_formats_and_terminates);
  tcase_add_test(tc, test_memcmp_const_equal_and_different);
  suite_add_tcase(s, tc);
  return s;
}
