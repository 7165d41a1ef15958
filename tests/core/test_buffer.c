/* The bounded byte buffer: the hard maximum, growth, consume, NOMEM. */
#include <stdint.h>
#include <string.h>

#include "core/buffer.h"
#include "suites.h"
#include "support/alloc_fail.h"

START_TEST(test_buf_init_allocates_nothing) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_buf b;
  mailproto_buf_init(&b, &af.allocator, 100);
  ck_assert_ptr_null(b.data);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_uint_eq(b.cap, 0);
  ck_assert_uint_eq(mailproto_buf_room(&b), 100);
  ck_assert_uint_eq(af.calls, 0);
  /* Appending nothing allocates nothing either. */
  ck_assert_int_eq(mailproto_buf_append(&b, "", 0), 0);
  ck_assert_uint_eq(af.calls, 0);
  mailproto_buf_free(&b);
}
END_TEST

START_TEST(test_buf_append_enforces_max) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 10);
  ck_assert_int_eq(mailproto_buf_append(&b, "0123456", 7), 0);
  /* A failed append leaves the contents alone. */
  ck_assert_int_eq(mailproto_buf_append(&b, "7890", 4),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(b.len, 7);
  ck_assert_mem_eq(b.data, "0123456", 7);
  ck_assert_int_eq(mailproto_buf_append(&b, "789", 3), 0);
  ck_assert_uint_eq(b.len, 10);
  ck_assert_uint_eq(mailproto_buf_room(&b), 0);
  ck_assert_int_eq(mailproto_buf_append_byte(&b, 'x'),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(mailproto_buf_append_str(&b, "y"),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_mem_eq(b.data, "0123456789", 10);
  mailproto_buf_free(&b);
}
END_TEST

/* len + extra must not wrap around and slip under the maximum. */
START_TEST(test_buf_reserve_overflow) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, SIZE_MAX);
  ck_assert_int_eq(mailproto_buf_append(&b, "abc", 3), 0);
  ck_assert_int_eq(mailproto_buf_reserve(&b, SIZE_MAX),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(mailproto_buf_reserve(&b, SIZE_MAX - 2),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(b.len, 3);
  mailproto_buf_free(&b);
}
END_TEST

/* Growth is geometric (few reallocations for many appends) and never
 * passes the maximum. */
START_TEST(test_buf_append_grows_geometrically) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_buf b;
  mailproto_buf_init(&b, &af.allocator, 100000);
  for (int i = 0; i < 100000; i++)
    if (mailproto_buf_append_byte(&b, (uint8_t)i) != 0)
      ck_abort_msg("append %d failed", i);
  ck_assert_uint_eq(b.len, 100000);
  ck_assert_uint_eq(b.cap, 100000);
  /* 64, 128, ... 65536, then the maximum: a dozen or so. */
  ck_assert_uint_le(af.calls, 20);
  for (int i = 0; i < 100000; i++)
    if (b.data[i] != (uint8_t)i)
      ck_abort_msg("byte %d changed", i);
  ck_assert_int_eq(mailproto_buf_append_byte(&b, 0), MAILPROTO_ERR_BUFFER_FULL);
  mailproto_buf_free(&b);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_buf_reserve_makes_room) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 1000);
  ck_assert_int_eq(mailproto_buf_reserve(&b, 300), 0);
  ck_assert_uint_ge(b.cap, 300);
  ck_assert_uint_le(b.cap, 1000);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(mailproto_buf_reserve(&b, 1000), 0);
  ck_assert_uint_eq(b.cap, 1000);
  ck_assert_int_eq(mailproto_buf_reserve(&b, 1001), MAILPROTO_ERR_BUFFER_FULL);
  mailproto_buf_free(&b);
}
END_TEST

START_TEST(test_buf_consume_and_clear) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 64);
  ck_assert_int_eq(mailproto_buf_append_str(&b, "hello world"), 0);
  mailproto_buf_consume(&b, 6);
  ck_assert_uint_eq(b.len, 5);
  ck_assert_mem_eq(b.data, "world", 5);
  mailproto_buf_consume(&b, 0);
  ck_assert_uint_eq(b.len, 5);
  mailproto_buf_consume(&b, 5);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(mailproto_buf_append_str(&b, "again"), 0);
  size_t cap = b.cap;
  mailproto_buf_clear(&b);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_uint_eq(b.cap, cap); /* memory kept for reuse */
  ck_assert_uint_eq(mailproto_buf_room(&b), 64);
  mailproto_buf_free(&b);
  ck_assert_ptr_null(b.data);
  ck_assert_uint_eq(b.cap, 0);
  /* Freeing twice is harmless. */
  mailproto_buf_free(&b);
}
END_TEST

/* Fail the N-th allocation for every N: each failure is a clean NOMEM
 * that leaves the contents as they were, and nothing leaks. */
START_TEST(test_buf_append_nomem_loop) {
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_buf b;
    mailproto_buf_init(&b, &af.allocator, 5000);
    uint8_t shadow[4000];
    size_t expect = 0;
    int failures = 0;
    for (int i = 0; i < 40; i++) {
      uint8_t chunk[100];
      memset(chunk, 'a' + i % 26, sizeof chunk);
      int rc = mailproto_buf_append(&b, chunk, sizeof chunk);
      if (rc == MAILPROTO_ERR_NOMEM) {
        failures++;
        ck_assert_uint_eq(b.len, expect);
        continue;
      }
      ck_assert_int_eq(rc, 0);
      memcpy(shadow + expect, chunk, sizeof chunk);
      expect += sizeof chunk;
    }
    ck_assert_uint_eq(b.len, expect);
    ck_assert_mem_eq(b.data, shadow, expect);
    ck_assert_int_eq(failures, alloc_fail_triggered(&af) ? 1 : 0);
    mailproto_buf_free(&b);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
}
END_TEST

Suite *suite_core_buffer(void) {
  Suite *s = suite_create("core_buffer");
  TCase *tc = tcase_create("buffer");
  tcase_add_test(tc, test_buf_init_allocates_nothing);
  tcase_add_test(tc, test_buf_append_enforces_max);
  tcase_add_test(tc, test_buf_reserve_overflow);
  tcase_add_test(tc, test_buf_append_grows_geometrically);
  tcase_add_test(tc, test_buf_reserve_makes_room);
  tcase_add_test(tc, test_buf_consume_and_clear);
  tcase_add_test(tc, test_buf_append_nomem_loop);
  suite_add_tcase(s, tc);
  return s;
}
