/*
 * The shared session plumbing (core/session.h, reply.h, nonce.h, the op's
 * out-parameter checks): unit tests on a bare mailproto_session_io, then
 * the rules it enforces seen through every session built on it (the test
 * protocol, SMTP, POP3) with a store that misbehaves on purpose: one that
 * hands over a handle and then defers (a cancel must leave that handle to
 * the backend), and one that reports more bytes than it was allowed.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nonce.h"
#include "core/reply.h"
#include "core/session.h"
#include "mailproto/memstore.h"
#include "mailproto/pop3.h"
#include "mailproto/smtp.h"
#include "pop3/pop3_adapter.h"
#include "store/store_call.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/testproto.h"

/* ------------------------------------------------------------------ */
/* A bare io over a fake transport                                     */
/* ------------------------------------------------------------------ */

typedef struct fake {
  mailproto_session_io io;
  alloc_fail af;
  char got[65536];
  size_t got_len;
  size_t accept;  /* bytes the transport takes per call */
  int send_fail;  /* not 0: send returns this */
  int tls_calls;  /* start_tls calls */
  int tls_rc;     /* what start_tls returns */
  int tls_secure; /* start_tls reports the transport secure at once */
  int completions;
  int last_status;
} fake;

static int fake_send(void *owner, const uint8_t *data, size_t len,
                     size_t *sent) {
  fake *f = owner;
  if (f->send_fail)
    return mailproto_session_sent(f->send_fail, len, sent);
  size_t n = len < f->accept ? len : f->accept;
  ck_assert_uint_le(f->got_len + n, sizeof f->got);
  memcpy(f->got + f->got_len, data, n);
  f->got_len += n;
  return mailproto_session_sent((ptrdiff_t)n, len, sent);
}

static int fake_tls(void *owner) {
  fake *f = owner;
  f->tls_calls++;
  if (f->tls_secure)
    ck_assert_int_eq(mailproto_session_tls_done(&f->io), 0);
  return f->tls_rc;
}

static int fake_complete(mailproto_op *op, int status) {
  fake *f = op->owner;
  f->completions++;
  f->last_status = status;
  return 0;
}

static const mailproto_op_sink fake_sink = {.complete = fake_complete};

static void fake_init(fake *f, size_t max_line, size_t limit,
                      size_t watermark) {
  memset(f, 0, sizeof *f);
  alloc_fail_init(&f->af, 0);
  f->accept = SIZE_MAX;
  mailproto_session_setup setup = {.alloc = &f->af.allocator,
                                   .max_line = max_line,
                                   .out_limit = limit,
                                   .watermark = watermark,
                                   .send = fake_send,
                                   .start_tls = fake_tls,
                                   .sink = &fake_sink,
                                   .owner = f};
  mailproto_session_init(&f->io, &setup);
}

static void fake_free(fake *f) {
  mailproto_session_free(&f->io);
  ck_assert_int_eq(f->af.live, 0);
}

static int put(fake *f, const char *text) {
  return mailproto_outq_write_str(&f->io.out, text);
}

START_TEST(test_mailproto_session_copy_sized_versions) {
  typedef struct {
    size_t struct_size;
    int a, b;
  } cfg;
  cfg dst = {0, 1, 2};
  /* An older caller: b keeps its default. */
  cfg old = {offsetof(cfg, b), 10, 99};
  ck_assert_int_eq(
      mailproto_session_copy_sized(&dst, sizeof dst, &old, offsetof(cfg, a)),
      0);
  ck_assert_uint_eq(dst.struct_size, sizeof dst);
  ck_assert_int_eq(dst.a, 10);
  ck_assert_int_eq(dst.b, 2);
  /* A newer caller: fields we do not know are not copied. */
  struct {
    cfg c;
    int extra;
  } newer = {{sizeof newer, 20, 30}, 40};
  ck_assert_int_eq(
      mailproto_session_copy_sized(&dst, sizeof dst, &newer, offsetof(cfg, a)),
      0);
  ck_assert_int_eq(dst.a, 20);
  ck_assert_int_eq(dst.b, 30);
  ck_assert_uint_eq(dst.struct_size, sizeof dst);
  /* A caller that never set struct_size. */
  cfg unset = {0, 7, 7};
  ck_assert_int_eq(
      mailproto_session_copy_sized(&dst, sizeof dst, &unset, offsetof(cfg, a)),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(dst.a, 20);
}
END_TEST

/* The config's strings go into one block the session owns; NULL fields
 * stay NULL; out of memory leaves the caller's pointers in place. */
START_TEST(test_mailproto_session_copy_strings_one_block) {
  char host[] = "mx.example.net", greeting[] = "ready";
  const char *h = host, *none = NULL, *g = greeting;
  const char **const fields[] = {&h, &none, &g};
  alloc_fail af;
  alloc_fail_init(&af, 1);
  char *block = NULL;
  ck_assert_int_eq(
      mailproto_session_copy_strings(&af.allocator, fields, 3, &block),
      MAILPROTO_ERR_NOMEM);
  ck_assert_ptr_eq(h, host);
  ck_assert_ptr_eq(g, greeting);
  alloc_fail_init(&af, 0);
  ck_assert_int_eq(
      mailproto_session_copy_strings(&af.allocator, fields, 3, &block), 0);
  ck_assert_ptr_eq(h, block);
  ck_assert_ptr_null(none);
  ck_assert_ptr_eq(g, block + sizeof host);
  host[0] = greeting[0] = 'X'; /* the copies do not follow the caller's */
  ck_assert_str_eq(h, "mx.example.net");
  ck_assert_str_eq(g, "ready");
  af.allocator.free(block, af.allocator.user_data);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_mailproto_session_init_sized_versions) {
  typedef struct {
    size_t struct_size;
    int a, b;
  } cfg;
  const cfg defaults = {sizeof(cfg), 1, 2};
  /* An older caller: only what it knows is written. */
  cfg old = {0, 9, 9};
  mailproto_session_init_sized(&old, offsetof(cfg, b), &defaults,
                               sizeof defaults);
  ck_assert_uint_eq(old.struct_size, offsetof(cfg, b));
  ck_assert_int_eq(old.a, 1);
  ck_assert_int_eq(old.b, 9);
  /* A newer caller: its extra fields stay as they were. */
  struct {
    cfg c;
    int extra;
  } newer = {{0, 9, 9}, 9};
  mailproto_session_init_sized(&newer, sizeof newer, &defaults,
                               sizeof defaults);
  ck_assert_uint_eq(newer.c.struct_size, sizeof(cfg));
  ck_assert_int_eq(newer.c.b, 2);
  ck_assert_int_eq(newer.extra, 9);
  /* Callbacks: zeros. */
  cfg zero = {0, 9, 9};
  mailproto_session_init_sized(&zero, sizeof zero, NULL, sizeof zero);
  ck_assert_int_eq(zero.a, 0);
  ck_assert_uint_eq(zero.struct_size, sizeof zero);
  /* Too small to hold struct_size, or no struct: nothing. */
  mailproto_session_init_sized(&zero, sizeof(size_t) - 1, &defaults,
                               sizeof defaults);
  ck_assert_int_eq(zero.a, 0);
  mailproto_session_init_sized(NULL, sizeof zero, &defaults, sizeof zero);
}
END_TEST

START_TEST(test_mailproto_session_sent_maps_callback_results) {
  size_t sent = 99;
  ck_assert_int_eq(mailproto_session_sent(0, 10, &sent), 0);
  ck_assert_uint_eq(sent, 0);
  ck_assert_int_eq(mailproto_session_sent(10, 10, &sent), 0);
  ck_assert_uint_eq(sent, 10);
  sent = 99;
  ck_assert_int_eq(mailproto_session_sent(11, 10, &sent),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_uint_eq(sent, 99);
  ck_assert_int_eq(mailproto_session_sent(-1, 10, &sent),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_session_sent(MAILPROTO_ERR_IO, 10, &sent),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  /* The library's own fatal codes pass; unknown ones do not. */
  ck_assert_int_eq(mailproto_session_sent(MAILPROTO_ERR_NOMEM, 10, &sent),
                   MAILPROTO_ERR_NOMEM);
  ck_assert_int_eq(mailproto_session_sent(MAILPROTO_ERR_CLOSED, 10, &sent),
                   MAILPROTO_ERR_CLOSED);
  ck_assert_int_eq(mailproto_session_sent(-5000, 10, &sent),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_session_callback_error(-1),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_session_callback_error(MAILPROTO_ERR_NOMEM),
                   MAILPROTO_ERR_NOMEM);
}
END_TEST

START_TEST(test_mailproto_session_start_enter_states) {
  fake f;
  fake_init(&f, 64, 256, 128);
  ck_assert_int_eq(mailproto_session_enter(&f.io), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_session_flush(&f.io), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 0);
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 1), 0);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  /* The batch is open: nothing goes out before leave. */
  ck_assert_int_eq(put(&f, "* hello\r\n"), 0);
  ck_assert_uint_eq(f.got_len, 0);
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 0), 1);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_str_eq(f.got, "* hello\r\n");
  ck_assert_int_eq(mailproto_session_start(&f.io), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_session_enter(&f.io), 0);
  ck_assert_int_eq(put(&f, "a\r\n"), 0);
  ck_assert_int_eq(put(&f, "b\r\n"), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_str_eq(f.got, "* hello\r\na\r\nb\r\n");
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 1);
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 0), 0);
  /* `more`: a response is still being produced. */
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 1), 1);
  fake_free(&f);
}
END_TEST

/* A failure sticks: every later entry returns it, queued output is
 * dropped, nothing more is sent, and the session wants to be closed. */
START_TEST(test_mailproto_session_leave_failure_is_sticky) {
  static const int codes[] = {MAILPROTO_ERR_NOMEM, MAILPROTO_ERR_SYNTAX};
  static const int sticky[] = {MAILPROTO_ERR_NOMEM, MAILPROTO_ERR_INTERNAL};
  fake f;
  fake_init(&f, 64, 256, 128);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  /* What the batch queued is offered first; what the transport did not
   * take is dropped. */
  f.accept = 5;
  ck_assert_int_eq(put(&f, "partly sent\r\n"), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, codes[_i], 0), sticky[_i]);
  ck_assert_str_eq(f.got, "partl");
  ck_assert_uint_eq(mailproto_outq_pending(&f.io.out), 0);
  f.accept = SIZE_MAX;
  ck_assert_int_eq(mailproto_session_enter(&f.io), sticky[_i]);
  ck_assert_int_eq(mailproto_session_resume(&f.io), sticky[_i]);
  ck_assert_int_eq(mailproto_session_flush(&f.io), sticky[_i]);
  ck_assert_int_eq(mailproto_session_start(&f.io), sticky[_i]);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), sticky[_i]);
  /* The first failure wins. */
  ck_assert_int_eq(mailproto_session_fail(&f.io, MAILPROTO_ERR_CLOSED),
                   sticky[_i]);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 0);
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 1), 0);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 0), 1);
  ck_assert_int_eq(mailproto_session_pending(&f.io), 0);
  ck_assert_str_eq(f.got, "partl");
  fake_free(&f);
}
END_TEST

START_TEST(test_mailproto_session_leave_send_failure_is_sticky) {
  fake f;
  fake_init(&f, 64, 256, 128);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  f.send_fail = -1;
  ck_assert_int_eq(put(&f, "x\r\n"), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_session_enter(&f.io),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  fake_free(&f);
}
END_TEST

/* The output queue pushes back at the watermark; flush offers what is
 * pending, and a failed flush sticks. */
START_TEST(test_mailproto_session_flush_and_congestion) {
  fake f;
  fake_init(&f, 64, 256, 16);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  f.accept = 0;
  ck_assert_int_eq(put(&f, "0123456789abcdef\r\n"), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 0);
  ck_assert_int_eq(mailproto_session_want_write(&f.io, 0), 1);
  f.accept = 1;
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_uint_eq(f.got_len, 1);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 0);
  /* Below the watermark: input is welcome again. */
  f.accept = 2;
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 1);
  f.accept = SIZE_MAX;
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_str_eq(f.got, "0123456789abcdef\r\n");
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 1);
  ck_assert_int_eq(put(&f, "more\r\n"), 0);
  f.accept = 0;
  ck_assert_int_eq(put(&f, "queued\r\n"), 0);
  f.send_fail = MAILPROTO_ERR_NOMEM;
  ck_assert_int_eq(mailproto_session_flush(&f.io), MAILPROTO_ERR_NOMEM);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 0), 1);
  fake_free(&f);
}
END_TEST

/* STARTTLS: input is dropped from the go-ahead on, even while the queue is
 * congested; start_tls comes once the go-ahead is sent in full, exactly
 * once; set_secure is refused before that and after it; then input is
 * read again. */
START_TEST(test_mailproto_session_tls_sequence) {
  fake f;
  fake_init(&f, 64, 256, 8);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  ck_assert_int_eq(put(&f, "220 go ahead\r\n"), 0);
  mailproto_session_tls_begin(&f.io);
  f.accept = 3;
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_int_eq(f.tls_calls, 0);
  ck_assert_int_eq(mailproto_outq_congested(&f.io.out), 1);
  ck_assert_int_eq(mailproto_session_discarding(&f.io), 1);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 1);
  size_t used = 2;
  ck_assert_int_eq(mailproto_session_drop(&f.io, &used, 40), 1);
  ck_assert_uint_eq(used, 40);
  used = 2;
  ck_assert_int_eq(mailproto_session_feeding(&f.io, 0, &used, 40, 1), 0);
  ck_assert_uint_eq(used, 40);
  ck_assert_int_eq(mailproto_session_tls_done(&f.io), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_int_eq(f.tls_calls, 0);
  f.accept = SIZE_MAX;
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_int_eq(f.tls_calls, 1);
  ck_assert_str_eq(f.got, "220 go ahead\r\n");
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_int_eq(f.tls_calls, 1);
  ck_assert_int_eq(mailproto_session_discarding(&f.io), 1);
  ck_assert_int_eq(f.io.secure, 0);
  ck_assert_int_eq(mailproto_session_tls_done(&f.io), 0);
  ck_assert_int_eq(f.io.secure, 1);
  ck_assert_int_eq(mailproto_session_discarding(&f.io), 0);
  used = 2;
  ck_assert_int_eq(mailproto_session_drop(&f.io, &used, 40), 0);
  ck_assert_uint_eq(used, 2);
  /* The feed loop goes on only with input left, no error, and room. */
  ck_assert_int_eq(mailproto_session_feeding(&f.io, 0, &used, 40, 1), 1);
  ck_assert_int_eq(mailproto_session_feeding(&f.io, 0, &used, 40, 0), 0);
  ck_assert_int_eq(mailproto_session_feeding(&f.io, 0, &used, 2, 1), 0);
  ck_assert_int_eq(
      mailproto_session_feeding(&f.io, MAILPROTO_ERR_NOMEM, &used, 40, 1), 0);
  ck_assert_uint_eq(used, 2);
  ck_assert_int_eq(mailproto_session_tls_done(&f.io), MAILPROTO_ERR_STATE);
  fake_free(&f);
}
END_TEST

/* The go-ahead already drained inside the batch: start_tls at the end of
 * that same batch, and the callback may report the transport secure at
 * once. */
START_TEST(test_mailproto_session_tls_start_inside_leave) {
  fake f;
  fake_init(&f, 64, 256, 128);
  f.tls_secure = 1;
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  ck_assert_int_eq(put(&f, "+OK go\r\n"), 0);
  mailproto_session_tls_begin(&f.io);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_int_eq(f.tls_calls, 1);
  ck_assert_int_eq(f.io.secure, 1);
  ck_assert_int_eq(mailproto_session_discarding(&f.io), 0);
  fake_free(&f);
}
END_TEST

START_TEST(test_mailproto_session_tls_start_failure_is_fatal) {
  static const int rcs[] = {-1, MAILPROTO_ERR_NOMEM};
  static const int want[] = {MAILPROTO_ERR_CALLBACK_FAILURE,
                             MAILPROTO_ERR_NOMEM};
  fake f;
  fake_init(&f, 64, 256, 128);
  f.tls_rc = rcs[_i];
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  ck_assert_int_eq(put(&f, "220 go\r\n"), 0);
  mailproto_session_tls_begin(&f.io);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), want[_i]);
  ck_assert_int_eq(mailproto_session_enter(&f.io), want[_i]);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 0), 1);
  fake_free(&f);
}
END_TEST

/* Implicit TLS is announced before start. */
START_TEST(test_mailproto_session_tls_done_before_start) {
  fake f;
  fake_init(&f, 64, 256, 128);
  ck_assert_int_eq(mailproto_session_tls_done(&f.io), 0);
  ck_assert_int_eq(f.io.secure, 1);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  ck_assert_int_eq(mailproto_session_tls_done(&f.io), MAILPROTO_ERR_STATE);
  fake_free(&f);
}
END_TEST

/* A pending op keeps input out and the session open; abandoning it at
 * free is the owner's choice (a store op is cancelled first). */
START_TEST(test_mailproto_session_pending_op) {
  fake f;
  fake_init(&f, 64, 256, 128);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  mailproto_op_begin(&f.io.op, 7);
  ck_assert_int_eq(mailproto_op_end(&f.io.op, MAILPROTO_DEFERRED),
                   MAILPROTO_DEFERRED);
  ck_assert_int_eq(mailproto_session_pending(&f.io), 1);
  ck_assert_int_eq(mailproto_session_can_read(&f.io), 0);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 1), 0);
  ck_assert_int_eq(mailproto_op_complete(&f.io.op, 0), 0);
  ck_assert_int_eq(f.completions, 1);
  ck_assert_int_eq(mailproto_session_pending(&f.io), 0);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 1), 1);
  ck_assert_int_eq(mailproto_session_closed(&f.io, 0), 0);
  /* Freed while a policy op waits: forgotten, never completed. */
  mailproto_op_begin(&f.io.op, 7);
  mailproto_op_end(&f.io.op, MAILPROTO_DEFERRED);
  fake_free(&f);
  ck_assert_int_eq(f.io.op.state, MAILPROTO_OP_IDLE);
  ck_assert_int_eq(f.completions, 1);
}
END_TEST

/* An idle session gives back the buffers of a burst; a busy one, one with
 * output pending or an op deferred, or a half-read line, keeps them. */
START_TEST(test_mailproto_session_settle_trims_idle_buffers) {
  fake f;
  fake_init(&f, 16384, 65536, 32768);
  ck_assert_int_eq(mailproto_session_start(&f.io), 0);
  char big[20000];
  memset(big, 'x', sizeof big);
  ck_assert_int_eq(mailproto_outq_write(&f.io.out, big, sizeof big),
                   0); /* corked */
  ck_assert_uint_ge(f.io.out.buf.cap, sizeof big);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 1), 0); /* busy */
  ck_assert_uint_ge(f.io.out.buf.cap, sizeof big);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_uint_eq(f.io.out.buf.cap, 0);

  /* Output still pending: kept. */
  ck_assert_int_eq(mailproto_session_enter(&f.io), 0);
  f.accept = 100;
  ck_assert_int_eq(mailproto_outq_write(&f.io.out, big, sizeof big), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_uint_gt(f.io.out.buf.cap, MAILPROTO_SESSION_KEEP);
  f.accept = SIZE_MAX;
  /* An op deferred: kept until it is done. */
  mailproto_op_begin(&f.io.op, 1);
  mailproto_op_end(&f.io.op, MAILPROTO_DEFERRED);
  ck_assert_int_eq(mailproto_session_flush(&f.io), 0);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_uint_gt(f.io.out.buf.cap, MAILPROTO_SESSION_KEEP);
  ck_assert_int_eq(mailproto_op_complete(&f.io.op, 0), 0);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_uint_eq(f.io.out.buf.cap, 0);

  /* A long line: kept while half read, given back once it is done. */
  mailproto_line line;
  size_t used;
  ck_assert_int_eq(mailproto_line_read(&f.io.lines, (const uint8_t *)big, 5000,
                                       &used, &line),
                   0);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_uint_ge(f.io.lines.partial.cap, 5000);
  ck_assert_int_eq(mailproto_line_read(&f.io.lines, (const uint8_t *)"yy\n", 3,
                                       &used, &line),
                   1);
  ck_assert_uint_eq(line.len, 5002);
  ck_assert_int_eq(mailproto_session_settle(&f.io, 0), 0);
  ck_assert_uint_eq(f.io.lines.partial.cap, 0);
  /* Small buffers stay for reuse. */
  ck_assert_int_eq(mailproto_session_enter(&f.io), 0);
  ck_assert_int_eq(put(&f, "short\r\n"), 0);
  ck_assert_int_eq(mailproto_session_leave(&f.io, 0, 0), 0);
  ck_assert_uint_gt(f.io.out.buf.cap, 0);
  ck_assert_uint_le(f.io.out.buf.cap, MAILPROTO_SESSION_KEEP);
  ck_assert_int_eq(memcmp(f.got + f.got_len - 7, "short\r\n", 7), 0);
  fake_free(&f);
}
END_TEST

START_TEST(test_mailproto_outq_trim_keeps_pending) {
  fake f;
  fake_init(&f, 64, 4096, 4096);
  f.accept = 10;
  char text[2000];
  memset(text, 'q', sizeof text);
  ck_assert_int_eq(mailproto_outq_write(&f.io.out, text, sizeof text), 0);
  size_t cap = f.io.out.buf.cap;
  mailproto_outq_trim(&f.io.out, 16);
  ck_assert_uint_eq(f.io.out.buf.cap, cap);
  f.accept = SIZE_MAX;
  ck_assert_int_eq(mailproto_outq_flush(&f.io.out), 0);
  mailproto_outq_trim(&f.io.out, cap);
  ck_assert_uint_eq(f.io.out.buf.cap, cap);
  mailproto_outq_trim(&f.io.out, 16);
  ck_assert_uint_eq(f.io.out.buf.cap, 0);
  /* Usable again afterwards. */
  f.accept = 0;
  ck_assert_int_eq(mailproto_outq_write_str(&f.io.out, "again"), 0);
  ck_assert_uint_eq(mailproto_outq_pending(&f.io.out), 5);
  fake_free(&f);
}
END_TEST

START_TEST(test_mailproto_session_verb_is_case_insensitive) {
  ck_assert_int_eq(mailproto_session_verb_is("quit", 4, "QUIT"), 1);
  ck_assert_int_eq(mailproto_session_verb_is("QuIt", 4, "QUIT"), 1);
  ck_assert_int_eq(mailproto_session_verb_is("QUITX", 4, "QUIT"), 1);
  ck_assert_int_eq(mailproto_session_verb_is("QUI", 3, "QUIT"), 0);
  ck_assert_int_eq(mailproto_session_verb_is("QUITS", 5, "QUIT"), 0);
  ck_assert_int_eq(mailproto_session_verb_is("", 0, "QUIT"), 0);
  ck_assert_int_eq(mailproto_session_verb_is("", 0, ""), 1);
  /* Only ASCII letters fold: no Latin-1 or UTF-8 look-alikes. */
  ck_assert_int_eq(mailproto_session_verb_is("qu\xc4\xb1t", 5, "QUIT"), 0);
  ck_assert_int_eq(mailproto_session_verb_is("QU\x09T", 4, "QUIT"), 0);
}
END_TEST

START_TEST(test_mailproto_session_count_limits) {
  unsigned n = 0;
  ck_assert_int_eq(mailproto_session_count(&n, 3), 0);
  ck_assert_int_eq(mailproto_session_count(&n, 3), 0);
  ck_assert_int_eq(mailproto_session_count(&n, 3), 1);
  ck_assert_int_eq(mailproto_session_count(&n, 3), 1);
  ck_assert_uint_eq(n, 4);
  /* 0: no limit. */
  ck_assert_int_eq(mailproto_session_count(&n, 0), 0);
  n = (unsigned)-1;
  ck_assert_int_eq(mailproto_session_count(&n, 0), 0);
  ck_assert_uint_eq(n, (unsigned)-1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Policy replies                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_reply_set_makes_one_safe_line) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  const mailproto_reply_rules utf8 = {20, 0}, ascii = {20, 1};
  mailproto_reply r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 550, "5.7.1",
                                       "no\r\n250 OK\tfake\x7f"),
                   0);
  ck_assert_int_eq(r.code, 550);
  ck_assert_str_eq(r.enhanced, "5.7.1");
  ck_assert_str_eq(r.text, "no  250 OK fake ");
  /* Beyond ASCII: kept, or '?' for an ASCII protocol. */
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 550, NULL,
                                       "gr\xc3\xbc\xc3\x9f"),
                   0);
  ck_assert_str_eq(r.text, "gr\xc3\xbc\xc3\x9f");
  ck_assert_str_eq(r.enhanced, "");
  ck_assert_int_eq(
      mailproto_reply_set(&r, &af.allocator, &ascii, 550, NULL, "gr\xc3\xbc"),
      0);
  ck_assert_str_eq(r.text, "gr??");
  /* Cut at the limit, never inside a UTF-8 sequence. */
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 550, NULL,
                                       "0123456789012345678\xc3\xa9xyz"),
                   0);
  ck_assert_str_eq(r.text, "0123456789012345678");
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 550, NULL,
                                       "012345678901234567\xc3\xa9xyz"),
                   0);
  ck_assert_str_eq(r.text, "012345678901234567\xc3\xa9");
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 550, NULL,
                                       "01234567890123456789"),
                   0);
  ck_assert_str_eq(r.text, "01234567890123456789");
  /* No text, or an empty one: the session's default. */
  ck_assert_int_eq(mailproto_reply_set(&r, &af.allocator, &utf8, 451, NULL, ""),
                   0);
  ck_assert_ptr_null(r.text);
  ck_assert_int_eq(r.code, 451);
  ck_assert_int_eq(
      mailproto_reply_set(&r, &af.allocator, &utf8, 250, "2.0.0", NULL), 0);
  ck_assert_ptr_null(r.text);
  ck_assert_int_eq(af.live, 0);
  ck_assert_int_eq(
      mailproto_reply_set(&r, &af.allocator, &utf8, 550, NULL, "bye"), 0);
  mailproto_reply_clear(&r, &af.allocator);
  ck_assert_int_eq(r.code, 0);
  ck_assert_ptr_null(r.text);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* Out of memory the code still stands, so a rejection is never taken
 * for an acceptance, and the session learns why the text is missing. */
START_TEST(test_mailproto_reply_set_nomem_keeps_code) {
  alloc_fail af;
  alloc_fail_init(&af, 1);
  const mailproto_reply_rules rules = {200, 0};
  mailproto_reply r;
  memset(&r, 0, sizeof r);
  ck_assert_int_eq(
      mailproto_reply_set(&r, &af.allocator, &rules, 554, "5.7.1", "go away"),
      MAILPROTO_ERR_NOMEM);
  ck_assert_int_eq(r.code, 554);
  ck_assert_int_eq(r.nomem, 1);
  ck_assert_ptr_null(r.text);
  mailproto_reply_clear(&r, &af.allocator);
  ck_assert_int_eq(r.nomem, 0);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Challenge nonces                                                    */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_nonce_challenge_fits) {
  char out[64];
  ck_assert_int_eq(mailproto_nonce_challenge(out, sizeof out, "1a2b", 1700,
                                             "mail.example.org"),
                   (int)strlen("<1a2b.1700@mail.example.org>"));
  ck_assert_str_eq(out, "<1a2b.1700@mail.example.org>");
  ck_assert_int_eq(mailproto_nonce_challenge(out, sizeof out, "x", -5, ""), 7);
  ck_assert_str_eq(out, "<x.-5@>");
  /* The host is cut to fit; the head never is. */
  ck_assert_int_eq(
      mailproto_nonce_challenge(out, 16, "ab", 12, "mail.example.org"), 15);
  ck_assert_str_eq(out, "<ab.12@mail.ex>");
  ck_assert_int_eq(mailproto_nonce_challenge(out, 9, "ab", 12, "host"), 8);
  ck_assert_str_eq(out, "<ab.12@>");
  ck_assert_int_eq(mailproto_nonce_challenge(out, 8, "ab", 12, "host"),
                   MAILPROTO_ERR_BUFFER_FULL);
  char unique[120];
  memset(unique, 'u', sizeof unique - 1);
  unique[sizeof unique - 1] = '\0';
  ck_assert_int_eq(mailproto_nonce_challenge(out, sizeof out, unique, 1, "h"),
                   MAILPROTO_ERR_BUFFER_FULL);
}
END_TEST

START_TEST(test_mailproto_nonce_default_varies) {
  int self;
  uint64_t seen[64];
  for (uint64_t i = 0; i < 64; i++) {
    seen[i] = mailproto_nonce_default(&self, i);
    for (uint64_t j = 0; j < i; j++)
      ck_assert(seen[j] != seen[i]);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Out-parameters of store calls                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_op_check_bounds) {
  fake f;
  fake_init(&f, 64, 256, 128);
  mailproto_op *op = &f.io.op;
  size_t len = 10;
  const uint8_t *data = (const uint8_t *)"0123456789";
  mailproto_op_begin(op, 1);
  ck_assert_int_eq(mailproto_op_check(op, 0), 0); /* nothing to check */
  op->outs.len = &len;
  op->outs.len_max = 10;
  op->outs.data = &data;
  ck_assert_int_eq(mailproto_op_check(op, 0), 0);
  len = 11;
  ck_assert_int_eq(mailproto_op_check(op, 0), MAILPROTO_ERR_INTERNAL);
  /* A failure is reported as it is; out-values then mean nothing. */
  ck_assert_int_eq(mailproto_op_check(op, MAILPROTO_ERR_IO), MAILPROTO_ERR_IO);
  len = 3;
  data = NULL;
  ck_assert_int_eq(mailproto_op_check(op, 0), MAILPROTO_ERR_INTERNAL);
  len = 0; /* the end of a message may come without bytes */
  ck_assert_int_eq(mailproto_op_check(op, 0), 0);
  /* Beginning the next op forgets what to check. */
  mailproto_op_begin(op, 2);
  ck_assert_ptr_null(op->outs.len);
  ck_assert_ptr_null(op->outs.handle);
  mailproto_op_end(op, 0);
  fake_free(&f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A store that misbehaves on purpose                                  */
/* ------------------------------------------------------------------ */

/* What the trapped hook does. */
enum trap_mode {
  TRAP_PASS,       /* nothing: the memory store answers */
  TRAP_FILL_DEFER, /* hands over its handle, then defers (never completes) */
  TRAP_LIE,        /* reports one byte more than allowed, at once */
  TRAP_LIE_DEFER,  /* the same when trap_finish() completes it */
  TRAP_LIE_NULL    /* read: a length without bytes */
};

typedef struct trap {
  mailproto_memstore *ms;
  mailproto_store inner, store;
  mailproto_store_ops ops;
  const char *hook; /* the hook `mode` applies to */
  enum trap_mode mode;
  mailproto_op *held; /* the op the trapped hook deferred */
  void *handle;       /* the handle it handed over before deferring */
  size_t *len;        /* a lying deferred hook's length and its bound */
  size_t max;
  int cancels;
  int backend_freed; /* the handle, released by the cancel hook */
  int caller_freed;  /* the handle, released by the caller: the bug */
} trap;

static int trapped(const trap *t, const char *hook) {
  return t->hook && strcmp(t->hook, hook) == 0;
}

/* After the inner hook answered 0: defer with the handle handed over. */
static int fill_defer(trap *t, mailproto_op *op, void *handle) {
  t->held = op;
  t->handle = handle;
  return MAILPROTO_DEFERRED;
}

/* A release, close or abort of `h` by the caller: one of the trapped
 * handle after the backend took it back is counted, not passed on. */
static int caller_frees(trap *t, void *h) {
  if (!h || h != t->handle)
    return 0;
  t->caller_freed++;
  return 1;
}

static int tr_authenticate(void *ctx, mailproto_op *op, const char *authzid,
                           const char *authcid, const char *password,
                           size_t password_len, void **account) {
  trap *t = ctx;
  int rc = t->inner.ops->authenticate(t->inner.ctx, op, authzid, authcid,
                                      password, password_len, account);
  if (rc == 0 && trapped(t, "authenticate") && t->mode == TRAP_FILL_DEFER)
    return fill_defer(t, op, *account);
  return rc;
}

static int tr_lookup_secret(void *ctx, mailproto_op *op, const char *user,
                            char *secret, size_t secret_size,
                            size_t *secret_len, void **account) {
  trap *t = ctx;
  int rc = t->inner.ops->lookup_secret(t->inner.ctx, op, user, secret,
                                       secret_size, secret_len, account);
  if (rc != 0 || !trapped(t, "lookup_secret"))
    return rc;
  if (t->mode == TRAP_LIE) {
    *secret_len = secret_size + 1;
    return 0;
  }
  if (t->mode == TRAP_LIE_DEFER) {
    t->held = op;
    t->len = secret_len;
    t->max = secret_size;
    return MAILPROTO_DEFERRED;
  }
  return rc;
}

static int tr_lookup_recipient(void *ctx, mailproto_op *op, const char *address,
                               void **account) {
  trap *t = ctx;
  int rc = t->inner.ops->lookup_recipient(t->inner.ctx, op, address, account);
  if (rc == 0 && trapped(t, "lookup_recipient") && t->mode == TRAP_FILL_DEFER)
    return fill_defer(t, op, *account);
  return rc;
}

static void tr_release_account(void *ctx, void *account) {
  trap *t = ctx;
  if (!caller_frees(t, account))
    t->inner.ops->release_account(t->inner.ctx, account);
}

static int tr_status(void *ctx, mailproto_op *op, void *account,
                     const char *name, mailproto_mailbox_status *status) {
  trap *t = ctx;
  return t->inner.ops->status(t->inner.ctx, op, account, name, status);
}

static int tr_open(void *ctx, mailproto_op *op, void *account, const char *name,
                   unsigned flags, mailproto_store_notify_fn notify,
                   void *notify_arg, void **mailbox,
                   mailproto_mailbox_status *status) {
  trap *t = ctx;
  int rc = t->inner.ops->open(t->inner.ctx, op, account, name, flags, notify,
                              notify_arg, mailbox, status);
  if (rc == 0 && trapped(t, "open") && t->mode == TRAP_FILL_DEFER)
    return fill_defer(t, op, *mailbox);
  return rc;
}

static void tr_close(void *ctx, void *mailbox) {
  trap *t = ctx;
  if (!caller_frees(t, mailbox))
    t->inner.ops->close(t->inner.ctx, mailbox);
}

static int tr_read(void *ctx, mailproto_op *op, void *mailbox, uint32_t uid,
                   uint64_t offset, size_t max, const uint8_t **data,
                   size_t *len) {
  trap *t = ctx;
  int rc = t->inner.ops->read(t->inner.ctx, op, mailbox, uid, offset, max, data,
                              len);
  if (rc != 0 || !trapped(t, "read"))
    return rc;
  switch (t->mode) {
  case TRAP_LIE:
    *len = max + 1;
    return 0;
  case TRAP_LIE_NULL:
    *data = NULL;
    *len = 1;
    return 0;
  case TRAP_LIE_DEFER:
    t->held = op;
    t->len = len;
    t->max = max;
    return MAILPROTO_DEFERRED;
  default:
    return rc;
  }
}

static int tr_expunge(void *ctx, mailproto_op *op, void *mailbox,
                      const mailproto_uid_range *ranges, size_t range_count,
                      unsigned flags) {
  trap *t = ctx;
  return t->inner.ops->expunge(t->inner.ctx, op, mailbox, ranges, range_count,
                               flags);
}

static int tr_append_begin(void *ctx, mailproto_op *op, void *account,
                           const char *name, const mailproto_append_info *info,
                           void **writer) {
  trap *t = ctx;
  int rc =
      t->inner.ops->append_begin(t->inner.ctx, op, account, name, info, writer);
  if (rc == 0 && trapped(t, "append_begin") && t->mode == TRAP_FILL_DEFER)
    return fill_defer(t, op, *writer);
  return rc;
}

static int tr_deliver_begin(void *ctx, mailproto_op *op, void *const *accounts,
                            size_t account_count,
                            const mailproto_delivery_info *info,
                            void **writer) {
  trap *t = ctx;
  int rc = t->inner.ops->deliver_begin(t->inner.ctx, op, accounts,
                                       account_count, info, writer);
  if (rc == 0 && trapped(t, "deliver_begin") && t->mode == TRAP_FILL_DEFER)
    return fill_defer(t, op, *writer);
  return rc;
}

static int tr_write(void *ctx, mailproto_op *op, void *writer,
                    const uint8_t *data, size_t len) {
  trap *t = ctx;
  return t->inner.ops->write(t->inner.ctx, op, writer, data, len);
}

static int tr_append_commit(void *ctx, mailproto_op *op, void *writer,
                            uint32_t *uidvalidity, uint32_t *uid) {
  trap *t = ctx;
  return t->inner.ops->append_commit(t->inner.ctx, op, writer, uidvalidity,
                                     uid);
}

static int tr_deliver_commit(void *ctx, mailproto_op *op, void *writer,
                             int all_or_nothing, int *results) {
  trap *t = ctx;
  return t->inner.ops->deliver_commit(t->inner.ctx, op, writer, all_or_nothing,
                                      results);
}

static void tr_abort(void *ctx, void *writer) {
  trap *t = ctx;
  if (!caller_frees(t, writer))
    t->inner.ops->abort(t->inner.ctx, writer);
}

/* The backend's side of a cancel: what it handed over is its own to free
 * (here, through the inner store, as the hook that made it). */
static void tr_cancel(void *ctx, mailproto_op *op) {
  trap *t = ctx;
  t->cancels++;
  if (op != t->held || !t->handle)
    return;
  if (trapped(t, "append_begin") || trapped(t, "deliver_begin"))
    t->inner.ops->abort(t->inner.ctx, t->handle);
  else if (trapped(t, "open"))
    t->inner.ops->close(t->inner.ctx, t->handle);
  else
    t->inner.ops->release_account(t->inner.ctx, t->handle);
  t->backend_freed++;
  t->held = NULL;
}

static void trap_init(trap *t, const char *hook, enum trap_mode mode) {
  memset(t, 0, sizeof *t);
  ck_assert_int_eq(mailproto_memstore_new(NULL, &t->ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(t->ms, "alice", "secret"), 0);
  mailproto_memstore_store(t->ms, &t->inner);
  t->hook = hook;
  t->mode = mode;
  t->ops.struct_size = sizeof t->ops;
  t->ops.authenticate = tr_authenticate;
  t->ops.lookup_secret = tr_lookup_secret;
  t->ops.lookup_recipient = tr_lookup_recipient;
  t->ops.release_account = tr_release_account;
  t->ops.status = tr_status;
  t->ops.open = tr_open;
  t->ops.close = tr_close;
  t->ops.read = tr_read;
  t->ops.expunge = tr_expunge;
  t->ops.append_begin = tr_append_begin;
  t->ops.deliver_begin = tr_deliver_begin;
  t->ops.write = tr_write;
  t->ops.append_commit = tr_append_commit;
  t->ops.deliver_commit = tr_deliver_commit;
  t->ops.abort = tr_abort;
  t->ops.cancel = tr_cancel;
  t->store.ops = &t->ops;
  t->store.ctx = t;
}

/* Completes a lying deferred hook with one byte more than allowed.
 * Returns what mailproto_op_complete() returned. */
static int trap_finish(trap *t) {
  ck_assert_ptr_nonnull(t->held);
  *t->len = t->max + 1;
  mailproto_op *op = t->held;
  t->held = NULL;
  return mailproto_op_complete(op, 0);
}

static void trap_free(trap *t) {
  mailproto_memstore_free(t->ms);
}

/* A CRAM-MD5 response for alice; the digest is checked only after the
 * secret arrives, so any 32 hex digits do. */
static void cram_response(char *out, size_t size) {
  static const char text[] = "alice 0123456789abcdef0123456789abcdef";
  long n = mailproto_base64_encode(text, sizeof text - 1, out, size - 3);
  ck_assert_int_gt(n, 0);
  memcpy(out + n, "\r\n", 3);
}

/* ------------------------------------------------------------------ */
/* The store_call wrappers themselves                                  */
/* ------------------------------------------------------------------ */

/* Synchronous answers that break the hook's contract become INTERNAL. */
START_TEST(test_mailproto_store_call_lookup_secret_checks_length) {
  trap t;
  trap_init(&t, "lookup_secret", TRAP_LIE);
  fake f;
  fake_init(&f, 64, 256, 128);
  char secret[MAILPROTO_SECRET_MAX];
  size_t len = 0;
  void *account = NULL;
  ck_assert_int_eq(
      mailproto_store_call_lookup_secret(&t.store, &f.io.op, 1, "alice", secret,
                                         sizeof secret, &len, &account),
      MAILPROTO_ERR_INTERNAL);
  ck_assert_int_eq(f.io.op.state, MAILPROTO_OP_IDLE);
  /* Honest, it passes. */
  t.hook = NULL;
  ck_assert_int_eq(
      mailproto_store_call_lookup_secret(&t.store, &f.io.op, 1, "alice", secret,
                                         sizeof secret, &len, &account),
      0);
  ck_assert_uint_eq(len, 6);
  /* Deferred, the completion carries INTERNAL to the owner. */
  t.hook = "lookup_secret";
  t.mode = TRAP_LIE_DEFER;
  ck_assert_int_eq(
      mailproto_store_call_lookup_secret(&t.store, &f.io.op, 1, "alice", secret,
                                         sizeof secret, &len, &account),
      MAILPROTO_DEFERRED);
  ck_assert_int_eq(trap_finish(&t), 0);
  ck_assert_int_eq(f.completions, 1);
  ck_assert_int_eq(f.last_status, MAILPROTO_ERR_INTERNAL);
  fake_free(&f);
  trap_free(&t);
}
END_TEST

START_TEST(test_mailproto_store_call_read_checks_length) {
  static const enum trap_mode modes[] = {TRAP_LIE, TRAP_LIE_NULL};
  trap t;
  trap_init(&t, "read", modes[_i]);
  ck_assert_int_eq(
      pop3_test_append(t.ms, "alice", "Subject: x\r\n\r\nbody\r\n", 20, 0), 0);
  fake f;
  fake_init(&f, 64, 256, 128);
  void *account = NULL, *mailbox = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(mailproto_store_call_authenticate(&t.store, &f.io.op, 1, "",
                                                     "alice", "secret", 6,
                                                     &account),
                   0);
  ck_assert_int_eq(mailproto_store_call_open(&t.store, &f.io.op, 1, account,
                                             "INBOX", 0, NULL, NULL, &mailbox,
                                             &st),
                   0);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(mailproto_store_call_read(&t.store, &f.io.op, 1, mailbox, 1,
                                             0, 8, &data, &len),
                   MAILPROTO_ERR_INTERNAL);
  t.hook = NULL;
  ck_assert_int_eq(mailproto_store_call_read(&t.store, &f.io.op, 1, mailbox, 1,
                                             0, 8, &data, &len),
                   0);
  ck_assert_uint_eq(len, 8);
  ck_assert_int_eq(memcmp(data, "Subject:", 8), 0);
  mailproto_store_call_close(&t.store, mailbox);
  mailproto_store_call_release_account(&t.store, account);
  fake_free(&f);
  trap_free(&t);
}
END_TEST

/* A handle written before the hook deferred is the backend's once the op
 * is cancelled: the caller's copy is cleared. */
START_TEST(test_mailproto_store_call_cancel_clears_handle) {
  trap t;
  trap_init(&t, "authenticate", TRAP_FILL_DEFER);
  fake f;
  fake_init(&f, 64, 256, 128);
  void *account = NULL;
  ck_assert_int_eq(mailproto_store_call_authenticate(&t.store, &f.io.op, 1, "",
                                                     "alice", "secret", 6,
                                                     &account),
                   MAILPROTO_DEFERRED);
  ck_assert_ptr_nonnull(account);
  mailproto_store_call_cancel(&t.store, &f.io.op);
  ck_assert_ptr_null(account);
  ck_assert_int_eq(t.cancels, 1);
  ck_assert_int_eq(t.backend_freed, 1);
  ck_assert_int_eq(f.io.op.state, MAILPROTO_OP_IDLE);
  mailproto_store_call_release_account(&t.store, account);
  ck_assert_int_eq(t.caller_freed, 0);
  fake_free(&f);
  trap_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Through the sessions                                                */
/* ------------------------------------------------------------------ */

typedef struct wire {
  char out[16384];
  size_t len;
} wire;

static ptrdiff_t wire_take(wire *w, const uint8_t *data, size_t len) {
  if (len > sizeof w->out - 1 - w->len)
    len = sizeof w->out - 1 - w->len;
  memcpy(w->out + w->len, data, len);
  w->len += len;
  w->out[w->len] = '\0';
  return (ptrdiff_t)len;
}

static ptrdiff_t tp_send(testproto *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return wire_take(user_data, data, len);
}

static ptrdiff_t smtp_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  return wire_take(user_data, data, len);
}

static ptrdiff_t pop3_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  return wire_take(user_data, data, len);
}

#define PLAIN_ALICE "AGFsaWNlAHNlY3JldA==" /* "\0alice\0secret" */

static testproto *tp_open(trap *t, wire *w) {
  testproto_callbacks cb;
  testproto_callbacks_init(&cb);
  cb.send = tp_send;
  testproto *s = NULL;
  memset(w, 0, sizeof *w);
  ck_assert_int_eq(testproto_new(NULL, &cb, &t->store, w, &s), 0);
  ck_assert_int_eq(testproto_start(s), 0);
  return s;
}

static ptrdiff_t tp_say(testproto *s, const char *text) {
  return testproto_feed(s, (const uint8_t *)text, strlen(text));
}

/* testproto_free() used to abort the writer of an APPEND whose
 * append_begin had filled it in before deferring, after cancelling it. */
START_TEST(test_testproto_free_cancelled_append_leaves_writer) {
  trap t;
  trap_init(&t, "append_begin", TRAP_FILL_DEFER);
  wire w;
  testproto *s = tp_open(&t, &w);
  ck_assert_int_gt(tp_say(s, "AUTH PLAIN " PLAIN_ALICE "\r\n"), 0);
  ck_assert_int_gt(tp_say(s, "APPEND INBOX {5}\r\n"), 0);
  ck_assert_int_eq(testproto_pending(s), 1);
  ck_assert_ptr_nonnull(t.handle);
  testproto_free(s);
  ck_assert_int_eq(t.cancels, 1);
  ck_assert_int_eq(t.backend_freed, 1);
  ck_assert_int_eq(t.caller_freed, 0);
  trap_free(&t);
}
END_TEST

/* The same for the account of a pending AUTH. */
START_TEST(test_testproto_free_cancelled_auth_leaves_account) {
  trap t;
  trap_init(&t, "authenticate", TRAP_FILL_DEFER);
  wire w;
  testproto *s = tp_open(&t, &w);
  ck_assert_int_gt(tp_say(s, "AUTH PLAIN " PLAIN_ALICE "\r\n"), 0);
  ck_assert_int_eq(testproto_pending(s), 1);
  testproto_free(s);
  ck_assert_int_eq(t.backend_freed, 1);
  ck_assert_int_eq(t.caller_freed, 0);
  trap_free(&t);
}
END_TEST

/* A secret longer than the buffer the session gave ends the session with
 * INTERNAL, at once or when the lookup completes, instead of being read
 * past the buffer's end. */
START_TEST(test_testproto_feed_overlong_secret_is_internal) {
  static const enum trap_mode modes[] = {TRAP_LIE, TRAP_LIE_DEFER};
  trap t;
  trap_init(&t, "lookup_secret", modes[_i]);
  wire w;
  testproto *s = tp_open(&t, &w);
  char resp[128];
  cram_response(resp, sizeof resp);
  ck_assert_int_gt(tp_say(s, "AUTH CRAM-MD5\r\n"), 0);
  ck_assert_ptr_nonnull(strstr(w.out, "+ "));
  ptrdiff_t n = tp_say(s, resp);
  if (modes[_i] == TRAP_LIE_DEFER) {
    ck_assert_int_eq(n, (ptrdiff_t)strlen(resp));
    ck_assert_int_eq(testproto_pending(s), 1);
    ck_assert_int_eq(trap_finish(&t), MAILPROTO_ERR_INTERNAL);
  } else {
    ck_assert_int_eq(n, MAILPROTO_ERR_INTERNAL);
  }
  ck_assert_int_eq(tp_say(s, "ECHO x\r\n"), MAILPROTO_ERR_INTERNAL);
  ck_assert_ptr_null(strstr(w.out, "OK authenticated"));
  testproto_free(s);
  trap_free(&t);
}
END_TEST

static mailproto_smtp *smtp_open(trap *t, wire *w, int secure) {
  mailproto_smtp_config cfg;
  mailproto_smtp_callbacks cb;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  cfg.secure = secure;
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  cb.send = smtp_send;
  memset(w, 0, sizeof *w);
  mailproto_smtp *s = NULL;
  ck_assert_int_eq(mailproto_smtp_new(&cfg, &cb, &t->store, w, &s), 0);
  ck_assert_int_eq(mailproto_smtp_start(s), 0);
  return s;
}

static ptrdiff_t smtp_say(mailproto_smtp *s, const char *text) {
  return mailproto_smtp_feed(s, (const uint8_t *)text, strlen(text));
}

/* Freeing an SMTP session while a hook that handed over a handle is
 * deferred (recipient lookup, deliver_begin, authenticate): the session
 * never releases or aborts that handle itself. */
START_TEST(test_mailproto_smtp_free_cancelled_handles_stay_with_backend) {
  static const char *const hooks[] = {"lookup_recipient", "deliver_begin",
                                      "authenticate"};
  static const char *const scripts[] = {
      "EHLO c.example\r\nMAIL FROM:<b@example.net>\r\n"
      "RCPT TO:<alice@example.org>\r\n",
      "EHLO c.example\r\nMAIL FROM:<b@example.net>\r\n"
      "RCPT TO:<alice@example.org>\r\nDATA\r\n",
      "EHLO c.example\r\nAUTH PLAIN " PLAIN_ALICE "\r\n"};
  trap t;
  trap_init(&t, hooks[_i], TRAP_FILL_DEFER);
  wire w;
  mailproto_smtp *s = smtp_open(&t, &w, 1);
  ck_assert_int_gt(smtp_say(s, scripts[_i]), 0);
  ck_assert_ptr_nonnull(t.held);
  ck_assert_int_eq(mailproto_smtp_want_read(s), 0);
  mailproto_smtp_free(s);
  ck_assert_int_eq(t.cancels, 1);
  ck_assert_int_eq(t.backend_freed, 1);
  ck_assert_int_eq(t.caller_freed, 0);
  trap_free(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_overlong_secret_is_internal) {
  static const enum trap_mode modes[] = {TRAP_LIE, TRAP_LIE_DEFER};
  trap t;
  trap_init(&t, "lookup_secret", modes[_i]);
  wire w;
  mailproto_smtp *s = smtp_open(&t, &w, 0);
  char resp[128];
  cram_response(resp, sizeof resp);
  ck_assert_int_gt(smtp_say(s, "EHLO c.example\r\nAUTH CRAM-MD5\r\n"), 0);
  ck_assert_ptr_nonnull(strstr(w.out, "334 "));
  ptrdiff_t n = smtp_say(s, resp);
  if (modes[_i] == TRAP_LIE_DEFER) {
    ck_assert_int_eq(n, (ptrdiff_t)strlen(resp));
    ck_assert_int_eq(trap_finish(&t), MAILPROTO_ERR_INTERNAL);
  } else {
    ck_assert_int_eq(n, MAILPROTO_ERR_INTERNAL);
  }
  ck_assert_int_eq(smtp_say(s, "NOOP\r\n"), MAILPROTO_ERR_INTERNAL);
  ck_assert_int_eq(mailproto_smtp_closed(s), 1);
  ck_assert_ptr_null(strstr(w.out, "235 "));
  mailproto_smtp_free(s);
  trap_free(&t);
}
END_TEST

static mailproto_pop3 *pop3_open(trap *t, wire *w) {
  mailproto_pop3_config cfg;
  mailproto_pop3_callbacks cb;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.send = pop3_send;
  memset(w, 0, sizeof *w);
  mailproto_pop3 *s = NULL;
  ck_assert_int_eq(mailproto_pop3_new(&cfg, &cb, &t->store, w, &s), 0);
  ck_assert_int_eq(mailproto_pop3_start(s), 0);
  return s;
}

static ptrdiff_t pop3_say(mailproto_pop3 *s, const char *text) {
  return mailproto_pop3_feed(s, (const uint8_t *)text, strlen(text));
}

/* Freeing a POP3 session while the login's authenticate or the maildrop's
 * open is deferred with its handle already handed over. */
START_TEST(test_mailproto_pop3_free_cancelled_handles_stay_with_backend) {
  static const char *const hooks[] = {"authenticate", "open"};
  trap t;
  trap_init(&t, hooks[_i], TRAP_FILL_DEFER);
  wire w;
  mailproto_pop3 *s = pop3_open(&t, &w);
  ck_assert_int_gt(pop3_say(s, "USER alice\r\nPASS secret\r\n"), 0);
  ck_assert_ptr_nonnull(t.held);
  ck_assert_int_eq(mailproto_pop3_want_read(s), 0);
  mailproto_pop3_free(s);
  ck_assert_int_eq(t.cancels, 1);
  ck_assert_int_eq(t.backend_freed, 1);
  ck_assert_int_eq(t.caller_freed, 0);
  trap_free(&t);
}
END_TEST

/* APOP with an overlong secret, and RETR from a read that reports more
 * bytes than asked for or bytes it does not have: INTERNAL, never an
 * over-read. */
START_TEST(test_mailproto_pop3_feed_lying_store_is_internal) {
  static const struct {
    const char *hook;
    enum trap_mode mode;
  } cases[] = {{"lookup_secret", TRAP_LIE},
               {"lookup_secret", TRAP_LIE_DEFER},
               {"read", TRAP_LIE},
               {"read", TRAP_LIE_NULL},
               {"read", TRAP_LIE_DEFER}};
  trap t;
  trap_init(&t, cases[_i].hook, cases[_i].mode);
  ck_assert_int_eq(
      pop3_test_append(t.ms, "alice", "Subject: x\r\n\r\nbody\r\n", 20, 0), 0);
  wire w;
  mailproto_pop3 *s = pop3_open(&t, &w);
  const char *cmd = strcmp(cases[_i].hook, "read") == 0
                        ? "USER alice\r\nPASS secret\r\nRETR 1\r\n"
                        : "APOP alice 0123456789abcdef0123456789abcdef\r\n";
  ptrdiff_t n = pop3_say(s, cmd);
  if (cases[_i].mode == TRAP_LIE_DEFER) {
    ck_assert_int_eq(n, (ptrdiff_t)strlen(cmd));
    ck_assert_int_eq(trap_finish(&t), MAILPROTO_ERR_INTERNAL);
  } else {
    ck_assert_int_eq(n, MAILPROTO_ERR_INTERNAL);
  }
  ck_assert_int_eq(pop3_say(s, "NOOP\r\n"), MAILPROTO_ERR_INTERNAL);
  ck_assert_int_eq(mailproto_pop3_closed(s), 1);
  /* No +OK for the message, no byte of it. */
  ck_assert_ptr_null(strstr(w.out, "+OK 20 octets"));
  ck_assert_ptr_null(strstr(w.out, "body"));
  mailproto_pop3_free(s);
  trap_free(&t);
}
END_TEST

Suite *suite_core_session(void) {
  Suite *s = suite_create("core_session");
  TCase *tc = tcase_create("plumbing");
  tcase_add_test(tc, test_mailproto_session_copy_sized_versions);
  tcase_add_test(tc, test_mailproto_session_copy_strings_one_block);
  tcase_add_test(tc, test_mailproto_session_init_sized_versions);
  tcase_add_test(tc, test_mailproto_session_sent_maps_callback_results);
  tcase_add_test(tc, test_mailproto_session_start_enter_states);
  tcase_add_loop_test(tc, test_mailproto_session_leave_failure_is_sticky, 0, 2);
  tcase_add_test(tc, test_mailproto_session_leave_send_failure_is_sticky);
  tcase_add_test(tc, test_mailproto_session_flush_and_congestion);
  tcase_add_test(tc, test_mailproto_session_tls_sequence);
  tcase_add_test(tc, test_mailproto_session_tls_start_inside_leave);
  tcase_add_loop_test(tc, test_mailproto_session_tls_start_failure_is_fatal, 0,
                      2);
  tcase_add_test(tc, test_mailproto_session_tls_done_before_start);
  tcase_add_test(tc, test_mailproto_session_pending_op);
  tcase_add_test(tc, test_mailproto_session_settle_trims_idle_buffers);
  tcase_add_test(tc, test_mailproto_outq_trim_keeps_pending);
  tcase_add_test(tc, test_mailproto_session_count_limits);
  tcase_add_test(tc, test_mailproto_session_verb_is_case_insensitive);
  suite_add_tcase(s, tc);

  tc = tcase_create("reply_nonce");
  tcase_add_test(tc, test_mailproto_reply_set_makes_one_safe_line);
  tcase_add_test(tc, test_mailproto_reply_set_nomem_keeps_code);
  tcase_add_test(tc, test_mailproto_nonce_challenge_fits);
  tcase_add_test(tc, test_mailproto_nonce_default_varies);
  suite_add_tcase(s, tc);

  tc = tcase_create("store_outs");
  tcase_add_test(tc, test_mailproto_op_check_bounds);
  tcase_add_test(tc, test_mailproto_store_call_lookup_secret_checks_length);
  tcase_add_loop_test(tc, test_mailproto_store_call_read_checks_length, 0, 2);
  tcase_add_test(tc, test_mailproto_store_call_cancel_clears_handle);
  tcase_add_test(tc, test_testproto_free_cancelled_append_leaves_writer);
  tcase_add_test(tc, test_testproto_free_cancelled_auth_leaves_account);
  tcase_add_loop_test(tc, test_testproto_feed_overlong_secret_is_internal, 0,
                      2);
  tcase_add_loop_test(
      tc, test_mailproto_smtp_free_cancelled_handles_stay_with_backend, 0, 3);
  tcase_add_loop_test(tc, test_mailproto_smtp_feed_overlong_secret_is_internal,
                      0, 2);
  tcase_add_loop_test(
      tc, test_mailproto_pop3_free_cancelled_handles_stay_with_backend, 0, 2);
  tcase_add_loop_test(tc, test_mailproto_pop3_feed_lying_store_is_internal, 0,
                      5);
  suite_add_tcase(s, tc);
  return s;
}
