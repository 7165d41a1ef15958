/*
 * The output queue: partial sends, the hard limit, the watermark, cork
 * batching, zero-copy direct sends, compaction, the sticky send error,
 * printf and allocation failures.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/outq.h"
#include "suites.h"
#include "support/alloc_fail.h"

#define ALL SIZE_MAX

/* A fake transport: takes at most `accept` bytes per call and records
 * them; can fail a chosen call or claim more than it was offered. */
typedef struct transport {
  uint8_t got[16384];
  size_t got_len;
  size_t accept;
  unsigned calls;
  unsigned fail_at; /* 1-based call number that fails; 0 = never */
  int fail_rc;
  size_t overclaim;
  const uint8_t *last_data;
  size_t last_len;
} transport;

static int fake_send(void *owner, const uint8_t *data, size_t len,
                     size_t *sent) {
  transport *t = owner;
  t->calls++;
  t->last_data = data;
  t->last_len = len;
  if (t->fail_at != 0 && t->calls == t->fail_at)
    return t->fail_rc;
  size_t n = len < t->accept ? len : t->accept;
  ck_assert_uint_le(t->got_len + n, sizeof t->got);
  memcpy(t->got + t->got_len, data, n);
  t->got_len += n;
  *sent = n + t->overclaim;
  return 0;
}

static void transport_init(transport *t, size_t accept) {
  memset(t, 0, sizeof *t);
  t->accept = accept;
}

static void assert_got(const transport *t, const char *want) {
  ck_assert_uint_eq(t->got_len, strlen(want));
  ck_assert_mem_eq(t->got, want, t->got_len);
}

START_TEST(test_outq_write_direct_send_is_zero_copy) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  transport t;
  transport_init(&t, ALL);
  mailproto_outq q;
  mailproto_outq_init(&q, &af.allocator, 64, 32, fake_send, &t);
  static const char msg[] = "250 OK\r\n";
  ck_assert_int_eq(mailproto_outq_write(&q, msg, 8), 0);
  ck_assert_ptr_eq(t.last_data, (const uint8_t *)msg);
  ck_assert_uint_eq(t.calls, 1);
  ck_assert_uint_eq(af.calls, 0);
  ck_assert_uint_eq(mailproto_outq_pending(&q), 0);
  assert_got(&t, "250 OK\r\n");
  mailproto_outq_free(&q);
}
END_TEST

/* The transport takes 0, 1 or 3 bytes per call; writes queue behind what
 * is pending, and repeated flushes deliver everything in order. */
START_TEST(test_outq_flush_partial_sends) {
  static const size_t accepts[] = {0, 1, 3};
  transport t;
  transport_init(&t, accepts[_i]);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 256, 128, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "+OK hello\r\n"), 0);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "+OK 2 200\r\n"), 0);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "1 100\r\n2 100\r\n.\r\n"), 0);
  const char *all = "+OK hello\r\n+OK 2 200\r\n1 100\r\n2 100\r\n.\r\n";
  ck_assert_uint_eq(mailproto_outq_pending(&q) + t.got_len, strlen(all));
  if (accepts[_i] == 0)
    t.accept = 2; /* the transport becomes writable again */
  for (int guard = 0; mailproto_outq_pending(&q) > 0; guard++) {
    ck_assert_int_lt(guard, 100);
    unsigned before = t.calls;
    ck_assert_int_eq(mailproto_outq_flush(&q), 0);
    /* One offer per flush: a short send means the transport is full. */
    ck_assert_uint_eq(t.calls, before + 1);
  }
  assert_got(&t, all);
  unsigned before = t.calls;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  ck_assert_uint_eq(t.calls, before);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_write_limit_is_all_or_nothing) {
  transport t;
  transport_init(&t, 0);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 16, 8, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write(&q, "0123456789", 10), 0);
  ck_assert_uint_eq(mailproto_outq_room(&q), 6);
  unsigned calls = t.calls;
  ck_assert_int_eq(mailproto_outq_write(&q, "abcdefg", 7),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(t.calls, calls);
  ck_assert_uint_eq(mailproto_outq_pending(&q), 10);
  ck_assert_int_eq(mailproto_outq_write(&q, "abcdef", 6), 0);
  ck_assert_uint_eq(mailproto_outq_pending(&q), 16);
  ck_assert_int_eq(mailproto_outq_write(&q, "x", 1), MAILPROTO_ERR_BUFFER_FULL);
  t.accept = ALL;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  assert_got(&t, "0123456789abcdef");
  /* More than the limit at once is refused even by a willing transport:
   * nothing is sent, so no response goes out half-written. */
  calls = t.calls;
  ck_assert_int_eq(mailproto_outq_write(&q, "0123456789abcdefg", 17),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(t.calls, calls);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_congested_at_watermark) {
  transport t;
  transport_init(&t, 0);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 32, 8, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_congested(&q), 0);
  ck_assert_int_eq(mailproto_outq_write(&q, "1234567", 7), 0);
  ck_assert_int_eq(mailproto_outq_congested(&q), 0);
  ck_assert_int_eq(mailproto_outq_write(&q, "8", 1), 0);
  ck_assert_int_eq(mailproto_outq_congested(&q), 1);
  t.accept = 1;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  ck_assert_int_eq(mailproto_outq_congested(&q), 0);
  mailproto_outq_free(&q);

  /* A watermark above the limit is clamped, so congestion is reachable. */
  transport_init(&t, 0);
  mailproto_outq_init(&q, NULL, 4, 100, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write(&q, "abcd", 4), 0);
  ck_assert_int_eq(mailproto_outq_congested(&q), 1);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_uncork_sends_batch_in_one_call) {
  transport t;
  transport_init(&t, ALL);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 1024, 512, fake_send, &t);
  mailproto_outq_cork(&q);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(mailproto_outq_printf(&q, "250-line %d\r\n", i), 0);
  ck_assert_uint_eq(t.calls, 0);
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  ck_assert_uint_eq(t.calls, 1);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "250 end\r\n"), 0);
  ck_assert_uint_eq(t.calls, 1);
  ck_assert_int_eq(mailproto_outq_uncork(&q), 0);
  ck_assert_uint_eq(t.calls, 2);
  ck_assert_uint_eq(mailproto_outq_pending(&q), 0);
  assert_got(&t, "250-line 0\r\n250-line 1\r\n250-line 2\r\n250-line 3\r\n"
                 "250-line 4\r\n250-line 5\r\n250-line 6\r\n250-line 7\r\n"
                 "250-line 8\r\n250-line 9\r\n250 end\r\n");
  /* Uncorked again, a write goes straight out. */
  ck_assert_int_eq(mailproto_outq_write_str(&q, "x"), 0);
  ck_assert_uint_eq(t.calls, 3);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_write_send_error_is_sticky) {
  transport t;
  transport_init(&t, 2);
  t.fail_at = 2;
  t.fail_rc = MAILPROTO_ERR_CALLBACK_FAILURE;
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 64, 32, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "hello"), 0);
  ck_assert_int_eq(mailproto_outq_flush(&q), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_uint_eq(t.calls, 2);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "x"),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_outq_printf(&q, "%d", 1),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_outq_flush(&q), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_outq_uncork(&q), MAILPROTO_ERR_CALLBACK_FAILURE);
  /* The transport is never called again. */
  ck_assert_uint_eq(t.calls, 2);
  mailproto_outq_free(&q);

  /* Failing on the direct (zero-copy) path is sticky too. */
  transport_init(&t, ALL);
  t.fail_at = 1;
  t.fail_rc = MAILPROTO_ERR_CLOSED;
  mailproto_outq_init(&q, NULL, 64, 32, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "a"), MAILPROTO_ERR_CLOSED);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "b"), MAILPROTO_ERR_CLOSED);
  ck_assert_uint_eq(t.calls, 1);
  mailproto_outq_free(&q);
}
END_TEST

/* A send callback that reports more bytes than it was offered has lost
 * track of the stream; the queue stops for good. */
START_TEST(test_outq_write_overclaimed_send_is_fatal) {
  transport t;
  transport_init(&t, ALL);
  t.overclaim = 1;
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 64, 32, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "abc"),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_outq_flush(&q), MAILPROTO_ERR_CALLBACK_FAILURE);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_printf_formats_and_refuses_truncation) {
  transport t;
  transport_init(&t, ALL);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 4096, 2048, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_printf(&q, "%s %u %s\r\n", "* 3", 7u, "x"),
                   0);
  assert_got(&t, "* 3 7 x\r\n");

  char big[1100];
  memset(big, 'a', sizeof big);
  big[1024] = '\0';
  /* Exactly 1024 bytes fit. */
  ck_assert_int_eq(mailproto_outq_printf(&q, "%s", big), 0);
  ck_assert_uint_eq(t.got_len, 9 + 1024);
  big[1024] = 'a';
  big[1025] = '\0';
  unsigned calls = t.calls;
  ck_assert_int_eq(mailproto_outq_printf(&q, "%s", big),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(t.calls, calls);
  mailproto_outq_free(&q);

  /* Over the queue's limit is refused the same way. */
  transport_init(&t, ALL);
  mailproto_outq_init(&q, NULL, 8, 4, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_printf(&q, "%d", 123456789),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(t.calls, 0);
  mailproto_outq_free(&q);
}
END_TEST

/* A slow reader that keeps taking a little: many limits' worth of output
 * passes through one buffer of at most `limit` bytes, allocated once. */
START_TEST(test_outq_write_compacts_instead_of_growing) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  transport t;
  transport_init(&t, 0);
  mailproto_outq q;
  mailproto_outq_init(&q, &af.allocator, 64, 48, fake_send, &t);
  /* Fill the buffer once so its capacity is the limit. */
  char chunk[64];
  memset(chunk, '.', sizeof chunk);
  ck_assert_int_eq(mailproto_outq_write(&q, chunk, 64), 0);
  t.accept = 50;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  t.accept = 7;
  size_t expect_total = 64;
  for (int i = 0; i < 200; i++) {
    char line[24];
    int n = snprintf(line, sizeof line, "line %03d\r\n", i);
    while (mailproto_outq_room(&q) < (size_t)n)
      ck_assert_int_eq(mailproto_outq_flush(&q), 0);
    ck_assert_int_eq(mailproto_outq_write(&q, line, (size_t)n), 0);
    expect_total += (size_t)n;
    ck_assert_uint_le(q.buf.cap, 64);
  }
  t.accept = ALL;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  ck_assert_uint_eq(t.got_len, expect_total);
  ck_assert_mem_eq(t.got + 64 + 10 * 199, "line 199\r\n", 10);
  ck_assert_uint_le(af.calls, 2);
  mailproto_outq_free(&q);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_outq_discard_forgets_pending) {
  transport t;
  transport_init(&t, 0);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 64, 32, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write_str(&q, "queued"), 0);
  mailproto_outq_discard(&q);
  ck_assert_uint_eq(mailproto_outq_pending(&q), 0);
  ck_assert_uint_eq(mailproto_outq_room(&q), 64);
  t.accept = ALL;
  unsigned calls = t.calls;
  ck_assert_int_eq(mailproto_outq_flush(&q), 0);
  ck_assert_uint_eq(t.calls, calls);
  ck_assert_uint_eq(t.got_len, 0);
  mailproto_outq_free(&q);
}
END_TEST

START_TEST(test_outq_write_empty_is_noop) {
  transport t;
  transport_init(&t, ALL);
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 64, 32, fake_send, &t);
  ck_assert_int_eq(mailproto_outq_write(&q, "", 0), 0);
  ck_assert_int_eq(mailproto_outq_printf(&q, "%s", ""), 0);
  ck_assert_uint_eq(t.calls, 0);
  mailproto_outq_free(&q);
}
END_TEST

/* Fail the N-th allocation for every N. A transport that takes nothing
 * leaves NOMEM recoverable (nothing was sent); one that took part of a
 * write makes it sticky, because the stream would have a hole. */
START_TEST(test_outq_write_nomem_loop) {
  static const size_t accepts[] = {0, 1};
  static const char *const parts[] = {"+OK first\r\n", "+OK second\r\n",
                                      "+OK third\r\n"};
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    transport t;
    transport_init(&t, accepts[_i]);
    mailproto_outq q;
    mailproto_outq_init(&q, &af.allocator, 256, 128, fake_send, &t);
    int failed = 0;
    for (size_t i = 0; i < 3 && !failed; i++) {
      size_t before = t.got_len;
      int rc = mailproto_outq_write_str(&q, parts[i]);
      if (rc == MAILPROTO_ERR_NOMEM) {
        failed = 1;
        if (t.got_len > before) {
          /* Part of the write went out: the queue must refuse more. */
          ck_assert_int_eq(mailproto_outq_flush(&q), MAILPROTO_ERR_NOMEM);
        } else {
          /* Nothing went out: the same write can be retried. */
          ck_assert_int_eq(mailproto_outq_write_str(&q, parts[i]), 0);
          failed = 0;
        }
      } else {
        ck_assert_int_eq(rc, 0);
      }
    }
    if (!failed) {
      t.accept = ALL;
      ck_assert_int_eq(mailproto_outq_flush(&q), 0);
      assert_got(&t, "+OK first\r\n+OK second\r\n+OK third\r\n");
    }
    mailproto_outq_free(&q);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
}
END_TEST

Suite *suite_core_outq(void) {
  Suite *s = suite_create("core_outq");
  TCase *tc = tcase_create("outq");
  tcase_add_test(tc, test_outq_write_direct_send_is_zero_copy);
  tcase_add_loop_test(tc, test_outq_flush_partial_sends, 0, 3);
  tcase_add_test(tc, test_outq_write_limit_is_all_or_nothing);
  tcase_add_test(tc, test_outq_congested_at_watermark);
  tcase_add_test(tc, test_outq_uncork_sends_batch_in_one_call);
  tcase_add_test(tc, test_outq_write_send_error_is_sticky);
  tcase_add_test(tc, test_outq_write_overclaimed_send_is_fatal);
  tcase_add_test(tc, test_outq_printf_formats_and_refuses_truncation);
  tcase_add_test(tc, test_outq_write_compacts_instead_of_growing);
  tcase_add_test(tc, test_outq_discard_forgets_pending);
  tcase_add_test(tc, test_outq_write_empty_is_noop);
  tcase_add_loop_test(tc, test_outq_write_nomem_loop, 0, 2);
  suite_add_tcase(s, tc);
  return s;
}
