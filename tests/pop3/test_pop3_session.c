/*
 * The POP3 session beyond what transcripts show: the store after QUIT, a
 * failed expunge, the maildrop lock between sessions, memory bounds while
 * streaming a large message through a slow transport, deferred policy
 * callbacks (connect, auth, the failed-login delay), freeing with an
 * operation pending, STLS timing, read failures, and the API's argument
 * checks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "mailproto/memstore.h"
#include "mailproto/pop3.h"
#include "pop3/pop3_adapter.h"
#include "store/store_call.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

/* ------------------------------------------------------------------ */
/* Fixture                                                             */
/* ------------------------------------------------------------------ */

typedef struct ctx {
  mailproto_memstore *ms;
  faultstore *fault;
  mailproto_store inner, outer;
  mailproto_pop3 *s;
  alloc_fail af; /* the session's allocator (not the stores') */

  /* The transport: what send took, up to `budget` bytes per turn. */
  char *out;
  size_t len, cap, total, budget;
  ptrdiff_t force;       /* not 0: send returns this */
  const uint8_t *expect; /* not NULL: compare instead of keeping */
  size_t expect_len;
  int mismatch;

  /* Callback behaviour and what they saw. */
  int start_tls_calls;
  size_t pending_at_start_tls;
  int start_tls_rc;
  int secure_in_start_tls;
  mailproto_op *held; /* a deferred policy op */
  int defer_connect, defer_auth, defer_delay;
  const char *auth_reject;
  unsigned delay_ms;
  int delay_calls, auth_calls, connect_calls;
  uint64_t nonce;
} ctx;

static ptrdiff_t c_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                        void *user_data) {
  ctx *c = user_data;
  (void)s;
  if (c->force)
    return c->force;
  size_t take = len < c->budget ? len : c->budget;
  if (c->budget != (size_t)-1)
    c->budget -= take;
  if (c->expect) {
    if (take > c->expect_len - c->total ||
        memcmp(c->expect + c->total, data, take) != 0)
      c->mismatch = 1;
  } else {
    if (c->len + take + 1 > c->cap) {
      c->cap = (c->len + take + 1) * 2;
      c->out = realloc(c->out, c->cap);
      ck_assert_ptr_nonnull(c->out);
    }
    memcpy(c->out + c->len, data, take);
    c->len += take;
    c->out[c->len] = '\0';
  }
  c->total += take;
  return (ptrdiff_t)take;
}

static int c_start_tls(mailproto_pop3 *s, void *user_data) {
  ctx *c = user_data;
  c->start_tls_calls++;
  c->pending_at_start_tls = (size_t)mailproto_pop3_want_write(s);
  if (c->secure_in_start_tls)
    ck_assert_int_eq(mailproto_pop3_set_secure(s), 0);
  return c->start_tls_rc;
}

static int c_connect(mailproto_pop3 *s, mailproto_op *op, const char *client,
                     void *user_data) {
  ctx *c = user_data;
  (void)s;
  (void)client;
  c->connect_calls++;
  if (c->defer_connect) {
    c->held = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static int c_auth(mailproto_pop3 *s, mailproto_op *op, const char *user,
                  void *user_data) {
  ctx *c = user_data;
  (void)s;
  (void)user;
  c->auth_calls++;
  if (c->auth_reject)
    ck_assert_int_eq(mailproto_op_set_reply(op, 550, NULL, c->auth_reject), 0);
  if (c->defer_auth) {
    c->held = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static int c_delay(mailproto_pop3 *s, mailproto_op *op, unsigned ms,
                   void *user_data) {
  ctx *c = user_data;
  (void)s;
  c->delay_calls++;
  c->delay_ms = ms;
  if (c->defer_delay) {
    c->held = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static mailproto_datetime c_now(mailproto_pop3 *s, void *user_data) {
  (void)s;
  (void)user_data;
  mailproto_datetime dt = {POP3_TEST_TIME, 0};
  return dt;
}

static uint64_t c_nonce(mailproto_pop3 *s, void *user_data) {
  (void)s;
  return ++((ctx *)user_data)->nonce;
}

static void stores_init(ctx *c) {
  ck_assert_int_eq(mailproto_memstore_new(NULL, &c->ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(c->ms, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(c->ms, "bob", "hunter2"), 0);
  mailproto_memstore_store(c->ms, &c->inner);
  ck_assert_int_eq(faultstore_new(&c->inner, NULL, &c->fault), 0);
  faultstore_store(c->fault, &c->outer);
}

static void ctx_init(ctx *c) {
  memset(c, 0, sizeof *c);
  alloc_fail_init(&c->af, 0);
  c->budget = (size_t)-1;
  stores_init(c);
}

/* A session on the faultstore; `config` may be NULL (secure defaults). */
static mailproto_pop3 *open_session(ctx *c, mailproto_pop3_config *config,
                                    const mailproto_pop3_callbacks *extra) {
  mailproto_pop3_config def;
  mailproto_pop3_callbacks cb;
  if (!config) {
    mailproto_pop3_config_init(&def, sizeof def);
    def.secure = 1;
    config = &def;
  }
  config->allocator = &c->af.allocator;
  if (extra)
    cb = *extra;
  else
    mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.send = c_send;
  cb.now = c_now;
  cb.nonce = c_nonce;
  mailproto_pop3 *s = NULL;
  ck_assert_int_eq(mailproto_pop3_new(config, &cb, &c->outer, c, &s), 0);
  c->s = s;
  return s;
}

static void clear_output(ctx *c) {
  c->len = 0;
  if (c->out)
    c->out[0] = '\0';
}

/* Runs deferred store ops and writes until nothing moves. */
static void pump(ctx *c) {
  for (int turn = 0; turn < 100000; turn++) {
    int progress = faultstore_run_pending(c->fault) > 0;
    if (mailproto_pop3_want_write(c->s)) {
      size_t before = c->total;
      ck_assert_int_eq(mailproto_pop3_writable(c->s), 0);
      progress |= c->total > before;
    }
    if (!progress)
      return;
  }
  ck_abort_msg("the session never settled");
}

/* Feeds all of `text`, pumping between feeds as an event loop would. */
static void say(ctx *c, const char *text) {
  size_t len = strlen(text), used = 0;
  for (int turn = 0; used < len; turn++) {
    ck_assert_int_lt(turn, 100000);
    ptrdiff_t n =
        mailproto_pop3_feed(c->s, (const uint8_t *)text + used, len - used);
    ck_assert_int_ge(n, 0);
    used += (size_t)n;
    pump(c);
    if (used < len && n == 0 && !mailproto_pop3_want_read(c->s))
      ck_abort_msg("input not wanted: %s", c->out ? c->out : "");
  }
  pump(c);
}

static void ctx_free(ctx *c) {
  mailproto_pop3_free(c->s);
  c->s = NULL;
  ck_assert_int_eq(c->af.live, 0);
  faultstore_free(c->fault);
  mailproto_memstore_free(c->ms);
  free(c->out);
}

static void append(ctx *c, const char *user, const char *text) {
  ck_assert_int_eq(pop3_test_append(c->ms, user, text, strlen(text), 0), 0);
}

static void assert_out(ctx *c, const char *expected) {
  ck_assert_str_eq(c->out ? c->out : "", expected);
}

#define GREETING "+OK POP3 server ready <1.1795702707@localhost>\r\n"
#define LOGIN "USER alice\r\nPASS secret\r\n"

/* ------------------------------------------------------------------ */
/* UPDATE                                                              */
/* ------------------------------------------------------------------ */

/* RFC 1939 6: after QUIT the marked messages are gone and the others are
 * kept, with their unique-ids, for the next session. */
START_TEST(test_mailproto_pop3_feed_quit_removes_marked_only) {
  ctx c;
  ctx_init(&c);
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  append(&c, "alice", "Subject: 2\r\n\r\ntwo\r\n");
  append(&c, "alice", "Subject: 3\r\n\r\nthree\r\n");
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN "DELE 1\r\nDELE 3\r\nQUIT\r\n");
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Bye\r\n"));
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
  ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 1);
  mailproto_pop3_free(c.s);

  c.nonce = 0;
  open_session(&c, NULL, NULL);
  clear_output(&c);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN "UIDL\r\nRETR 1\r\nQUIT\r\n");
  assert_out(&c, GREETING "+OK Send password\r\n"
                          "+OK Maildrop has 1 message (19 octets)\r\n"
                          "+OK Unique-ID listing follows\r\n"
                          "1 0000000200000001\r\n.\r\n"
                          "+OK 19 octets\r\nSubject: 2\r\n\r\ntwo\r\n.\r\n"
                          "+OK Bye\r\n");
  ctx_free(&c);
}
END_TEST

/* A connection dropped without QUIT removes nothing (RFC 1939 6). */
START_TEST(test_mailproto_pop3_free_without_quit_keeps_all) {
  ctx c;
  ctx_init(&c);
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  append(&c, "alice", "Subject: 2\r\n\r\ntwo\r\n");
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN "DELE 1\r\nDELE 2\r\n");
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Message 2 deleted\r\n"));
  mailproto_pop3_free(c.s);
  c.s = NULL;
  ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 2);
  ctx_free(&c);
}
END_TEST

/* A failed expunge commit: -ERR, the session ends, and nothing is lost. */
START_TEST(test_mailproto_pop3_feed_quit_expunge_failure_loses_nothing) {
  static const int errors[] = {MAILPROTO_ERR_IO, MAILPROTO_ERR_TEMPORARY};
  ctx c;
  ctx_init(&c);
  faultstore_defer_all(c.fault, _i & 1);
  ck_assert_int_eq(faultstore_fail_hook(c.fault, "expunge", errors[_i / 2]), 0);
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  append(&c, "alice", "Subject: 2\r\n\r\ntwo\r\n");
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN "DELE 1\r\nQUIT\r\n");
  ck_assert_ptr_nonnull(
      strstr(c.out, "+OK Message 1 deleted\r\n"
                    "-ERR [SYS/TEMP] Some deleted messages not removed\r\n"));
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
  ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 2);
  /* The lock was released even so. */
  mailproto_pop3_free(c.s);
  c.nonce = 0;
  faultstore_fail_hook(c.fault, "expunge", 0);
  open_session(&c, NULL, NULL);
  clear_output(&c);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN "STAT\r\n");
  ck_assert_ptr_nonnull(strstr(c.out, "+OK 2 38\r\n"));
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The maildrop lock                                                   */
/* ------------------------------------------------------------------ */

/* Two sessions of one user: the second gets [IN-USE] and stays in
 * AUTHORIZATION; once the first has quit, the second can log in. */
START_TEST(test_mailproto_pop3_feed_second_session_in_use) {
  ctx c, d;
  ctx_init(&c);
  memset(&d, 0, sizeof d);
  alloc_fail_init(&d.af, 0);
  d.budget = (size_t)-1;
  d.ms = c.ms;
  d.fault = c.fault;
  d.outer = c.outer;
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  open_session(&c, NULL, NULL);
  open_session(&d, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_start(d.s), 0);
  say(&c, LOGIN);
  say(&d, LOGIN);
  ck_assert_ptr_nonnull(
      strstr(d.out, "-ERR [IN-USE] Mailbox is locked by another session\r\n"));
  ck_assert_ptr_null(mailproto_pop3_user(d.s));
  ck_assert_str_eq(mailproto_pop3_user(c.s), "alice");
  say(&c, "QUIT\r\n");
  clear_output(&d);
  say(&d, LOGIN);
  assert_out(&d, "+OK Send password\r\n"
                 "+OK Maildrop has 1 message (19 octets)\r\n");
  mailproto_pop3_free(d.s);
  ck_assert_int_eq(d.af.live, 0);
  free(d.out);
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Streaming                                                           */
/* ------------------------------------------------------------------ */

/* Builds a message of about `size` bytes with bare LF line ends and lines
 * that start with "." (so the output differs from the store), and the
 * exact RETR response expected for it. */
static void big_message(size_t size, uint8_t **msg, size_t *msg_len,
                        uint8_t **expect, size_t *expect_len, int bare_lf) {
  uint8_t *m = malloc(size + 64);
  uint8_t *e = malloc(2 * size + 256);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(e);
  size_t n = 0, k = 0, crlf_size = 0;
  const char *head = bare_lf ? "Subject: big\n\n" : "Subject: big\r\n\r\n";
  n = strlen(head);
  memcpy(m, head, n);
  for (unsigned long line = 0; n < size; line++) {
    int len = snprintf((char *)m + n, 64, "%s%lu abcdefghijklmnopqrstuvwxyz%s",
                       line % 7 == 0 ? "." : "", line, bare_lf ? "\n" : "\r\n");
    n += (size_t)len;
  }
  /* The expected response: CRLF line ends, dot-stuffing. */
  for (size_t i = 0; i < n; i++) {
    int at_start = i == 0 || m[i - 1] == '\n';
    if (at_start && m[i] == '.')
      e[k++] = '.';
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r')) {
      e[k++] = '\r';
      crlf_size++;
    }
    e[k++] = m[i];
    crlf_size++;
  }
  memcpy(e + k, ".\r\n", 3);
  k += 3;
  /* Prefix "+OK <size> octets\r\n". */
  char okline[64];
  int ol = snprintf(okline, sizeof okline, "+OK %zu octets\r\n", crlf_size);
  memmove(e + ol, e, k);
  memcpy(e, okline, (size_t)ol);
  *msg = m;
  *msg_len = n;
  *expect = e;
  *expect_len = k + (size_t)ol;
}

/* A 10 MB message through a transport that takes 1 byte per turn: the
 * output is exact, and the session's memory never passes the output
 * bound (watermark plus reply slack) plus its own small state. */
START_TEST(test_mailproto_pop3_writable_big_message_bounded_memory) {
  ctx c;
  ctx_init(&c);
  uint8_t *msg, *expect;
  size_t msg_len, expect_len;
  big_message(10 * 1024 * 1024, &msg, &msg_len, &expect, &expect_len, 1);
  ck_assert_int_eq(pop3_test_append(c.ms, "alice", msg, msg_len, 0), 0);
  free(msg);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  open_session(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  size_t before = c.total;
  clear_output(&c);
  c.expect = expect;
  c.expect_len = expect_len;
  c.total = 0;
  c.budget = 0; /* the transport is full from here on */
  const char *cmd = "RETR 1\r\nNOOP\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)cmd, 13), 8);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_want_write(c.s), 1);
  /* Check records every ck_assert (a write to a pipe): not in this loop
   * of ten million turns. */
  size_t turns = 0;
  while (mailproto_pop3_want_write(c.s)) {
    c.budget = 1;
    if (mailproto_pop3_writable(c.s) != 0 || ++turns > 3 * expect_len)
      ck_abort_msg("writable failed or never finished (turn %zu)", turns);
  }
  ck_assert_int_eq(c.mismatch, 0);
  ck_assert_uint_eq(c.total, expect_len);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 1);
  ck_assert_uint_lt(c.af.peak_bytes, cfg.output_watermark + 4096 + 4096);
  (void)before;
  c.expect = NULL;
  c.budget = (size_t)-1;
  say(&c, "NOOP\r\n");
  assert_out(&c, "+OK\r\n");
  free(expect);
  ctx_free(&c);
}
END_TEST

/* The same with every store operation deferred and a transport taking
 * odd amounts: reads wait for the store, output is still exact. */
START_TEST(test_mailproto_pop3_writable_big_message_deferred_reads) {
  ctx c;
  ctx_init(&c);
  uint8_t *msg, *expect;
  size_t msg_len, expect_len;
  big_message(300 * 1024, &msg, &msg_len, &expect, &expect_len, _i);
  ck_assert_int_eq(pop3_test_append(c.ms, "alice", msg, msg_len, 0), 0);
  free(msg);
  faultstore_defer_all(c.fault, 1);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  cfg.output_watermark = 1000;
  open_session(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  c.expect = expect;
  c.expect_len = expect_len;
  c.total = 0;
  const char *cmd = "RETR 1\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)cmd, 8), 8);
  for (size_t turn = 0; c.total < expect_len; turn++) {
    c.budget = 1 + turn % 1500;
    if (turn > 10 * expect_len || faultstore_run_pending(c.fault) < 0 ||
        (mailproto_pop3_want_write(c.s) && mailproto_pop3_writable(c.s) != 0))
      ck_abort_msg("the response stalled or failed at turn %zu", turn);
  }
  ck_assert_int_eq(c.mismatch, 0);
  ck_assert_uint_eq(c.total, expect_len);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 1);
  free(expect);
  c.expect = NULL;
  ctx_free(&c);
}
END_TEST

/* RFC 6856 2.1: the size LIST reports matches the octets RETR sends (not
 * counting byte-stuffing), also for a message stored with bare LF. */
START_TEST(test_mailproto_pop3_feed_bare_lf_size_matches_retr) {
  ctx c;
  ctx_init(&c);
  const char *m = "From: x@example.org\nSubject: lf\n\n.a\nb\n..\n";
  append(&c, "alice", m);
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  clear_output(&c);
  say(&c, "LIST 1\r\nRETR 1\r\n");
  assert_out(&c, "+OK 1 47\r\n+OK 47 octets\r\n"
                 "From: x@example.org\r\nSubject: lf\r\n\r\n"
                 "..a\r\nb\r\n...\r\n.\r\n");
  /* 47 = the body above without the three stuffed dots. */
  ck_assert_uint_eq(strlen("From: x@example.org\r\nSubject: lf\r\n\r\n"
                           ".a\r\nb\r\n..\r\n"),
                    47);
  ctx_free(&c);
}
END_TEST

/* RFC 6856 2.1: the header is scanned for 8-bit bytes before the +OK,
 * but a message without a blank line is all "header": the scan stops
 * after 1 MiB (pop3_stream.c) rather than read a huge message whole
 * before answering. An 8-bit byte inside that first MiB is found; one
 * beyond it goes out with the message. */
START_TEST(test_mailproto_pop3_feed_header_scan_bounded) {
  ctx c;
  ctx_init(&c);
  size_t n = (size_t)3 << 19; /* 1.5 MiB of 64-byte lines, no blank one */
  char *early = malloc(n + 1), *late = malloc(n + 1);
  ck_assert_ptr_nonnull(early);
  ck_assert_ptr_nonnull(late);
  for (size_t i = 0; i < n; i++)
    early[i] = late[i] = (char)(i % 64 == 63 ? '\n' : 'x');
  early[n] = late[n] = '\0';
  early[(size_t)1 << 19] = (char)0xe9; /* at 512 KiB */
  late[(size_t)5 << 18] = (char)0xe9;  /* at 1.25 MiB */
  append(&c, "alice", early);
  append(&c, "alice", late);
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  clear_output(&c);
  say(&c, "TOP 1 0\r\n");
  assert_out(&c,
             "-ERR [UTF8] Message header is not ASCII; send UTF8 first\r\n");
  clear_output(&c);
  say(&c, "TOP 2 0\r\n");
  ck_assert_ptr_nonnull(c.out);
  ck_assert_int_eq(strncmp(c.out, "+OK Top of message follows\r\nxxx", 31), 0);
  ck_assert_uint_gt(c.len, n);
  free(early);
  free(late);
  ctx_free(&c);
}
END_TEST

/* A read that fails before the +OK gets -ERR; one that fails in the
 * middle of the response ends the session without the final ".", so the
 * client never takes a cut message for a whole one. */
START_TEST(test_mailproto_pop3_writable_read_failure) {
  ctx c;
  ctx_init(&c);
  uint8_t *msg, *expect;
  size_t msg_len, expect_len;
  big_message(50 * 1024, &msg, &msg_len, &expect, &expect_len, 0);
  ck_assert_int_eq(pop3_test_append(c.ms, "alice", msg, msg_len, 0), 0);
  free(msg);
  free(expect);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  cfg.output_watermark = 4096;
  open_session(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  /* Calls so far: authenticate, open. The next is RETR's first read. */
  unsigned long calls = faultstore_calls(c.fault);
  faultstore_fail_nth(c.fault, calls + 1, MAILPROTO_ERR_IO);
  clear_output(&c);
  say(&c, "RETR 1\r\nTOP 1 0\r\n");
  assert_out(&c, "-ERR [SYS/TEMP] Cannot read message\r\n"
                 "+OK Top of message follows\r\nSubject: big\r\n\r\n.\r\n");
  calls = faultstore_calls(c.fault);
  faultstore_fail_nth(c.fault, calls + 3, MAILPROTO_ERR_EXPUNGED);
  clear_output(&c);
  const char *in = "RETR 1\r\nNOOP\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in, 14), 8);
  pump(&c);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in + 8, 6), 0);
  ck_assert_uint_gt(c.len, 2 * 4096);
  ck_assert_int_eq(strncmp(c.out, "+OK ", 4), 0);
  ck_assert_ptr_null(strstr(c.out, "\r\n.\r\n"));
  ck_assert_ptr_null(strstr(c.out, "+OK\r\n"));
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
  ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 1);
  ctx_free(&c);
}
END_TEST

/* A message another session removed after the maildrop was opened (an
 * IMAP client of the same user) is reported, not sent empty. */
START_TEST(test_mailproto_pop3_feed_message_removed_elsewhere) {
  ctx c;
  ctx_init(&c);
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  append(&c, "alice", "Subject: 2\r\n\r\ntwo\r\n");
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  /* Another, non-exclusive handle expunges UID 1. */
  mailproto_op op;
  static const mailproto_op_sink sink = {0};
  void *account, *mailbox;
  mailproto_mailbox_status st;
  mailproto_op_init(&op, &sink, NULL);
  ck_assert_int_eq(mailproto_store_call_lookup_recipient(&c.inner, &op, 0,
                                                         "alice", &account),
                   0);
  ck_assert_int_eq(mailproto_store_call_open(&c.inner, &op, 0, account, "INBOX",
                                             0, NULL, NULL, &mailbox, &st),
                   0);
  mailproto_uid_range r = {1, 1};
  ck_assert_int_eq(
      mailproto_store_call_expunge(&c.inner, &op, 0, mailbox, &r, 1, 0), 0);
  mailproto_store_call_close(&c.inner, mailbox);
  mailproto_store_call_release_account(&c.inner, account);
  clear_output(&c);
  say(&c, "RETR 1\r\nRETR 2\r\nDELE 2\r\nQUIT\r\n");
  assert_out(&c, "-ERR [SYS/PERM] Message no longer available\r\n"
                 "+OK 19 octets\r\nSubject: 2\r\n\r\ntwo\r\n.\r\n"
                 "+OK Message 2 deleted\r\n+OK Bye\r\n");
  ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 0);
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

/* An idle session (greeted, or logged in and done with a large reply and
 * a burst of pipelined commands) costs about a kilobyte: the output buffer
 * of a big response or a burst is given back once it drained. */
START_TEST(test_mailproto_pop3_new_idle_session_bytes) {
  ctx c;
  ctx_init(&c);
  uint8_t *msg, *expect;
  size_t msg_len, expect_len;
  big_message(100 * 1024, &msg, &msg_len, &expect, &expect_len, 0);
  ck_assert_int_eq(pop3_test_append(c.ms, "alice", msg, msg_len, 0), 0);
  free(msg);
  free(expect);
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  size_t greeted = c.af.live_bytes;
  say(&c, LOGIN "RETR 1\r\nLIST\r\nCAPA\r\n");
  /* A pipelined burst whose replies fill the queue to its watermark. */
  enum { BURST = 2000 };
  char *burst = malloc(BURST * 8 + 1);
  ck_assert_ptr_nonnull(burst);
  for (int i = 0; i < BURST; i++)
    memcpy(burst + 8 * i, "LIST 1\r\n", 8);
  burst[BURST * 8] = '\0';
  size_t before = c.len;
  say(&c, burst);
  free(burst);
  size_t replies = 0;
  for (const char *p = c.out + before; (p = strstr(p, "+OK 1 ")); p++)
    replies++;
  ck_assert_uint_eq(replies, BURST);
  size_t idle = c.af.live_bytes;
  fprintf(stderr, "pop3: idle session %zu bytes greeted, %zu logged in\n",
          greeted, idle);
  ck_assert_uint_le(greeted, 1536);
  /* Logged in: the view of one message (16 bytes a message), the user
   * name, the line buffer of 255 bytes. */
  ck_assert_uint_le(idle, 2048);
  ck_assert_uint_gt(c.af.peak_bytes, 16 * 1024); /* the RETR did buffer */
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deferred operations                                                 */
/* ------------------------------------------------------------------ */

/* The delay before a failed login's reply, through the delay callback:
 * nothing is answered or read until the application completes the op. */
START_TEST(test_mailproto_pop3_feed_auth_failure_delay) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  cfg.auth_failure_delay_ms = 2000;
  cfg.max_auth_failures = 2;
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.delay = c_delay;
  c.defer_delay = 1;
  open_session(&c, &cfg, &cb);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  clear_output(&c);
  const char *in = "USER alice\r\nPASS wrong\r\nUSER alice\r\nPASS secret\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in, strlen(in)),
                   24);
  assert_out(&c, "+OK Send password\r\n");
  ck_assert_int_eq(c.delay_calls, 1);
  ck_assert_uint_eq(c.delay_ms, 2000);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_want_write(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in + 24, 5), 0);
  /* A policy op takes no reply. */
  ck_assert_int_eq(mailproto_op_set_reply(c.held, 500, NULL, "x"),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), MAILPROTO_ERR_STATE);
  assert_out(&c, "+OK Send password\r\n-ERR [AUTH] Authentication failed\r\n");
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 1);
  say(&c, in + 24);
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Maildrop has 0 messages"));
  ck_assert_int_eq(c.delay_calls, 1);
  ctx_free(&c);
}
END_TEST

/* Deferred connect and auth callbacks: the greeting waits for the first,
 * the login for the second; a rejection's text arrives with the
 * completion. */
START_TEST(test_mailproto_pop3_start_deferred_policy) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.connect = c_connect;
  cb.auth = c_auth;
  c.defer_connect = 1;
  c.defer_auth = 1;
  open_session(&c, NULL, &cb);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  ck_assert_uint_eq(c.total, 0);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 0);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  assert_out(&c, GREETING);
  const char *in = LOGIN "STAT\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in, strlen(in)),
                   (ptrdiff_t)strlen(LOGIN));
  ck_assert_int_eq(c.auth_calls, 1);
  ck_assert_int_eq(
      mailproto_op_set_reply(c.held, 550, NULL, "[LOGIN-DELAY] Not yet\r\n"),
      0);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  assert_out(&c, GREETING "+OK Send password\r\n"
                          "-ERR [LOGIN-DELAY] Not yet  \r\n");
  say(&c, LOGIN);
  ck_assert_int_eq(c.auth_calls, 2);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Maildrop has 0 messages"));
  ctx_free(&c);
}
END_TEST

/* Freeing a session while a store operation is deferred cancels it
 * through the store's cancel hook; while a policy callback is deferred,
 * the op is abandoned. Nothing leaks, no callback runs afterwards. */
START_TEST(test_mailproto_pop3_free_with_op_pending) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.auth = c_auth;
  c.defer_auth = _i == 3;
  faultstore_defer_all(c.fault, _i != 3);
  append(&c, "alice", "Subject: 1\r\n\r\none\r\n");
  open_session(&c, NULL, &cb);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  /* The op left pending: 0 authenticate, 1 open, 2 a read of RETR, 3 the
   * auth callback. */
  ck_assert_int_eq(
      mailproto_pop3_feed(c.s, (const uint8_t *)LOGIN, strlen(LOGIN)),
      (ptrdiff_t)strlen(LOGIN));
  for (int k = 0; k < _i && _i < 3; k++)
    ck_assert_int_eq(faultstore_run_pending(c.fault), 1);
  if (_i == 2)
    ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)"RETR 1\r\n", 8),
                     8);
  ck_assert_int_eq(c.auth_calls, _i == 0 ? 0 : 1);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 0);
  ck_assert_uint_eq(faultstore_pending(c.fault), _i == 3 ? 0 : 1);
  size_t sent = c.total;
  mailproto_pop3_free(c.s);
  c.s = NULL;
  ck_assert_uint_eq(faultstore_pending(c.fault), 0);
  ck_assert_int_eq(faultstore_run_pending(c.fault), 0);
  ck_assert_uint_eq(c.total, sent);
  ck_assert_int_eq(c.af.live, 0);
  /* The lock is free again: a new session logs in. */
  c.nonce = 0;
  faultstore_defer_all(c.fault, 0);
  c.defer_auth = 0;
  open_session(&c, NULL, NULL);
  clear_output(&c);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Maildrop has 1 message "));
  ctx_free(&c);
}
END_TEST

/* Every store operation of a session paused once in turn (deferred, then
 * completed on the next loop turn): the output never changes. */
START_TEST(test_mailproto_pop3_feed_each_op_deferred_once) {
  const char *script = "AUTH PLAIN AGFsaWNlAHdyb25n\r\nAPOP alice "
                       "ca9a1c13133f9bb778a6919588bd152d\r\n"
                       "LIST\r\nRETR 2\r\nTOP 1 1\r\nDELE 1\r\nQUIT\r\n";
  char *reference = NULL;
  unsigned long calls = 0;
  for (unsigned long n = 0;; n++) {
    ctx c;
    ctx_init(&c);
    append(&c, "alice", "Subject: 1\r\n\r\none\r\nmore\r\n");
    append(&c, "alice", "Subject: 2\n\ntwo\n");
    faultstore_defer_nth(c.fault, n);
    open_session(&c, NULL, NULL);
    ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
    say(&c, script);
    ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
    if (n == 0) {
      reference = malloc(c.len + 1);
      ck_assert_ptr_nonnull(reference);
      memcpy(reference, c.out, c.len + 1);
      calls = faultstore_calls(c.fault);
      ck_assert_uint_ge(calls, 5);
    } else
      ck_assert_str_eq(c.out, reference);
    ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 1);
    ctx_free(&c);
    if (n >= calls)
      break;
  }
  ck_assert_ptr_nonnull(strstr(reference, "+OK Bye\r\n"));
  free(reference);
}
END_TEST

/* Store failures during login map to RFC 3206 codes: temporary ones to
 * [SYS/TEMP], a store that cannot check a password to [SYS/PERM]; neither
 * counts as a failed login. */
START_TEST(test_mailproto_pop3_feed_store_failures) {
  static const struct {
    const char *hook;
    int error;
    const char *in;
    const char *reply;
  } cases[] = {
      {"authenticate", MAILPROTO_ERR_TEMPORARY, LOGIN,
       "-ERR [SYS/TEMP] Mailbox temporarily unavailable\r\n"},
      {"authenticate", MAILPROTO_ERR_UNSUPPORTED, LOGIN,
       "-ERR [SYS/PERM] Mailbox unavailable\r\n"},
      {"lookup_secret", MAILPROTO_ERR_IO,
       "APOP alice ca9a1c13133f9bb778a6919588bd152d\r\n",
       "-ERR [SYS/TEMP] Mailbox temporarily unavailable\r\n"},
      {"open", MAILPROTO_ERR_IO, LOGIN,
       "-ERR [SYS/TEMP] Mailbox temporarily unavailable\r\n"},
      {"open", MAILPROTO_ERR_NOT_FOUND, LOGIN,
       "-ERR [SYS/PERM] Mailbox unavailable\r\n"},
      {"authenticate", MAILPROTO_ERR_NOMEM, LOGIN, NULL},
  };
  ctx c;
  ctx_init(&c);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  cfg.max_auth_failures = 1;
  open_session(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  ck_assert_int_eq(
      faultstore_fail_hook(c.fault, cases[_i].hook, cases[_i].error), 0);
  clear_output(&c);
  const char *in = cases[_i].in;
  ptrdiff_t n = mailproto_pop3_feed(c.s, (const uint8_t *)in, strlen(in));
  if (!cases[_i].reply) {
    /* A fatal store error ends the session. */
    ck_assert_int_eq(n, MAILPROTO_ERR_NOMEM);
    ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
    ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
    ck_assert_int_eq(mailproto_pop3_writable(c.s), MAILPROTO_ERR_NOMEM);
    ctx_free(&c);
    return;
  }
  ck_assert_int_eq(n, (ptrdiff_t)strlen(in));
  ck_assert_ptr_nonnull(strstr(c.out, cases[_i].reply));
  /* Not counted: with max_auth_failures 1 the session goes on. */
  faultstore_fail_hook(c.fault, cases[_i].hook, 0);
  clear_output(&c);
  say(&c, LOGIN);
  ck_assert_ptr_nonnull(strstr(c.out, "+OK Maildrop has 0 messages"));
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* STLS                                                                */
/* ------------------------------------------------------------------ */

/* start_tls runs only once the +OK is on the wire; until set_secure every
 * byte is dropped; set_secure is refused in other states. */
START_TEST(test_mailproto_pop3_set_secure_after_stls) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.start_tls = c_start_tls;
  open_session(&c, &cfg, &cb);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s), MAILPROTO_ERR_STATE);
  clear_output(&c);
  c.budget = 5;
  const char *in = "STLS\r\nUSER alice\r\nPASS secret\r\n";
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in, strlen(in)),
                   (ptrdiff_t)strlen(in));
  ck_assert_int_eq(c.start_tls_calls, 0);
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s), MAILPROTO_ERR_STATE);
  while (mailproto_pop3_want_write(c.s)) {
    c.budget = 5;
    ck_assert_int_eq(mailproto_pop3_writable(c.s), 0);
  }
  ck_assert_int_eq(c.start_tls_calls, 1);
  ck_assert_uint_eq(c.pending_at_start_tls, 0);
  assert_out(&c, "+OK Begin TLS negotiation\r\n");
  /* Still in the clear: dropped. */
  c.budget = (size_t)-1;
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 1);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)"CAPA\r\n", 6), 6);
  assert_out(&c, "+OK Begin TLS negotiation\r\n");
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s), MAILPROTO_ERR_STATE);
  clear_output(&c);
  say(&c, LOGIN);
  assert_out(&c, "+OK Send password\r\n+OK Maildrop has 0 messages (0 "
                 "octets)\r\n");
  ctx_free(&c);
}
END_TEST

/* A TLS layer that finishes at once may call set_secure from inside
 * start_tls; one that fails ends the session. */
START_TEST(test_mailproto_pop3_feed_stls_callback_outcomes) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.start_tls = c_start_tls;
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  c.secure_in_start_tls = _i == 0;
  c.start_tls_rc = _i == 0 ? 0 : -1;
  open_session(&c, &cfg, &cb);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  clear_output(&c);
  const char *in = "STLS\r\n";
  ptrdiff_t n = mailproto_pop3_feed(c.s, (const uint8_t *)in, 6);
  if (_i == 0) {
    ck_assert_int_eq(n, 6);
    say(&c, LOGIN);
    assert_out(&c, "+OK Begin TLS negotiation\r\n+OK Send password\r\n"
                   "+OK Maildrop has 0 messages (0 octets)\r\n");
  } else {
    ck_assert_int_eq(n, MAILPROTO_ERR_CALLBACK_FAILURE);
    ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
    ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)in, 6),
                     MAILPROTO_ERR_CALLBACK_FAILURE);
  }
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The API                                                             */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_pop3_new_invalid_arguments) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  mailproto_pop3_config cfg;
  mailproto_pop3 *s = (mailproto_pop3 *)&c;
  ck_assert_int_eq(mailproto_pop3_new(NULL, &cb, &c.outer, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_null(s);
  cb.send = c_send;
  ck_assert_int_eq(mailproto_pop3_new(NULL, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_new(NULL, NULL, &c.outer, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_new(NULL, &cb, &c.outer, NULL, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  char long_text[300];
  memset(long_text, 'a', sizeof long_text - 1);
  long_text[sizeof long_text - 1] = '\0';
  for (int k = 0; k < 14; k++) {
    mailproto_pop3_config_init(&cfg, sizeof cfg);
    switch (k) {
    case 0:
      cfg.hostname = "bad host";
      break;
    case 1:
      cfg.hostname = "";
      break;
    case 2:
      cfg.hostname = long_text;
      break;
    case 3:
      cfg.greeting = "ready <fake@stamp>";
      break;
    case 4:
      cfg.greeting = "two\r\nlines";
      break;
    case 5:
      cfg.implementation = "";
      break;
    case 6:
      cfg.implementation = long_text;
      break;
    case 7:
      cfg.max_line = 31;
      break;
    case 8:
      cfg.output_watermark = 63;
      break;
    case 9:
      cfg.login_delay = -2;
      break;
    case 10:
      cfg.expire = -3;
      break;
    case 11:
      cfg.struct_size = sizeof(size_t);
      break;
    case 12:
      cfg.hostname = NULL;
      break;
    case 13:
      cfg.greeting = NULL;
      break;
    }
    ck_assert_msg(mailproto_pop3_new(&cfg, &cb, &c.outer, NULL, &s) ==
                      MAILPROTO_ERR_INVALID_ARGUMENT,
                  "case %d", k);
  }
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.struct_size = sizeof(size_t);
  ck_assert_int_eq(mailproto_pop3_new(NULL, &cb, &c.outer, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ctx_free(&c);
}
END_TEST

/* Config and callbacks from a caller built against an older, shorter
 * header keep the defaults of the fields it does not know. */
START_TEST(test_mailproto_pop3_new_older_struct_sizes) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_config cfg;
  memset(&cfg, 0x55, sizeof cfg);
  mailproto_pop3_config_init(&cfg, offsetof(mailproto_pop3_config, max_line));
  ck_assert_uint_eq(cfg.struct_size, offsetof(mailproto_pop3_config, max_line));
  ck_assert_str_eq(cfg.greeting, "POP3 server ready");
  cfg.greeting = "old caller";
  cfg.max_line = 1; /* beyond its size: ignored */
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, offsetof(mailproto_pop3_callbacks, now));
  cb.send = c_send;
  cb.now = NULL;
  mailproto_pop3 *s;
  ck_assert_int_eq(mailproto_pop3_new(&cfg, &cb, &c.outer, &c, &s), 0);
  c.s = s;
  ck_assert_int_eq(mailproto_pop3_start(s), 0);
  /* The real clock and the default nonce: "<hex.time@localhost>". */
  ck_assert_int_eq(strncmp(c.out, "+OK old caller <", 16), 0);
  ck_assert_ptr_nonnull(strstr(c.out, "@localhost>\r\n"));
  mailproto_pop3_free(s);
  c.s = NULL;
  ctx_free(&c);
}
END_TEST

/* Without a nonce callback each greeting's timestamp is different, also
 * for two sessions created at the same moment (RFC 1939 7). */
START_TEST(test_mailproto_pop3_start_default_nonce_unique) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.send = c_send;
  cb.now = c_now;
  char first[128] = "";
  for (int k = 0; k < 2; k++) {
    mailproto_pop3 *s;
    clear_output(&c);
    ck_assert_int_eq(mailproto_pop3_new(NULL, &cb, &c.outer, &c, &s), 0);
    ck_assert_int_eq(mailproto_pop3_start(s), 0);
    ck_assert_ptr_nonnull(strstr(c.out, ".1795702707@localhost>\r\n"));
    if (k == 0)
      snprintf(first, sizeof first, "%s", c.out);
    else
      ck_assert_str_ne(first, c.out);
    if (k == 0)
      mailproto_pop3_free(s);
    else
      c.s = s;
  }
  ctx_free(&c);
}
END_TEST

START_TEST(test_mailproto_pop3_start_twice_refused) {
  ctx c;
  ctx_init(&c);
  open_session(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_want_write(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)"QUIT\r\n", 6),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_pop3_writable(c.s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_pop3_set_client(c.s, "192.0.2.9"), 0);
  ck_assert_int_eq(mailproto_pop3_set_client(c.s, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_uint_eq(c.total, 0);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_start(c.s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_pop3_set_client(c.s, "x"), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, NULL, 1),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, NULL, 0), 0);
  ck_assert_ptr_null(mailproto_pop3_user(c.s));
  ck_assert_ptr_null(mailproto_pop3_user(NULL));
  ck_assert_int_eq(mailproto_pop3_start(NULL), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_feed(NULL, NULL, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_writable(NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_set_secure(NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_pop3_want_read(NULL), 0);
  ck_assert_int_eq(mailproto_pop3_want_write(NULL), 0);
  ck_assert_int_eq(mailproto_pop3_closed(NULL), 0);
  mailproto_pop3_free(NULL);
  assert_out(&c, GREETING);
  ctx_free(&c);
}
END_TEST

/* Implicit TLS: set_secure before start makes the session secure. */
START_TEST(test_mailproto_pop3_set_secure_before_start) {
  ctx c;
  ctx_init(&c);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  open_session(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_start(c.s), 0);
  say(&c, LOGIN);
  assert_out(&c, GREETING "+OK Send password\r\n"
                          "+OK Maildrop has 0 messages (0 octets)\r\n");
  ck_assert_str_eq(mailproto_pop3_user(c.s), "alice");
  ctx_free(&c);
}
END_TEST

/* A send callback that fails (or claims more than offered) ends the
 * session: every later call returns the same code and it wants to be
 * closed. */
START_TEST(test_mailproto_pop3_start_send_failure_is_fatal) {
  static const ptrdiff_t bad[] = {-1, 1000};
  ctx c;
  ctx_init(&c);
  open_session(&c, NULL, NULL);
  c.force = bad[_i];
  ck_assert_int_eq(mailproto_pop3_start(c.s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_pop3_feed(c.s, (const uint8_t *)"QUIT\r\n", 6),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_pop3_writable(c.s),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_pop3_set_secure(c.s),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_pop3_start(c.s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_want_write(c.s), 0);
  ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
  ctx_free(&c);
}
END_TEST

/* Out of memory anywhere, through new, start and a full session: a clean
 * NOMEM, the session wants to close, nothing leaks. */
START_TEST(test_mailproto_pop3_new_alloc_failures) {
  const char *in = "CAPA\r\nAUTH CRAM-MD5\r\n*\r\n" LOGIN
                   "LIST\r\nUIDL\r\nTOP 1 1\r\nRETR 1\r\nDELE 1\r\nQUIT\r\n";
  for (unsigned long n = 1;; n++) {
    ctx c;
    ctx_init(&c);
    append(&c, "alice", "Subject: x\n\nbody\n");
    alloc_fail_init(&c.af, n);
    mailproto_pop3_config cfg;
    mailproto_pop3_config_init(&cfg, sizeof cfg);
    cfg.secure = 1;
    cfg.allocator = &c.af.allocator;
    mailproto_pop3_callbacks cb;
    mailproto_pop3_callbacks_init(&cb, sizeof cb);
    cb.send = c_send;
    cb.nonce = c_nonce;
    cb.now = c_now;
    int rc = mailproto_pop3_new(&cfg, &cb, &c.outer, &c, &c.s);
    int started = 0;
    if (rc == 0)
      rc = mailproto_pop3_set_client(c.s, "192.0.2.1");
    if (rc == 0) {
      started = 1;
      rc = mailproto_pop3_start(c.s);
    }
    if (rc == 0) {
      ptrdiff_t used =
          mailproto_pop3_feed(c.s, (const uint8_t *)in, strlen(in));
      rc = used < 0 ? (int)used : 0;
    }
    if (rc != 0) {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      if (started) {
        ck_assert_int_eq(mailproto_pop3_want_read(c.s), 0);
        ck_assert_int_eq(mailproto_pop3_want_write(c.s), 0);
        ck_assert_int_eq(mailproto_pop3_closed(c.s), 1);
      }
      /* Nothing was expunged. */
      ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 1);
    }
    int triggered = alloc_fail_triggered(&c.af);
    if (!triggered) {
      ck_assert_int_eq(rc, 0);
      ck_assert_ptr_nonnull(strstr(c.out, "+OK Bye\r\n"));
      ck_assert_int_eq(pop3_test_count(c.ms, "alice"), 0);
    }
    ctx_free(&c);
    if (!triggered)
      break;
    ck_assert_uint_lt(n, 1000);
  }
}
END_TEST

Suite *suite_pop3_session(void) {
  Suite *s = suite_create("pop3_session");
  TCase *tc = tcase_create("update");
  tcase_add_test(tc, test_mailproto_pop3_feed_quit_removes_marked_only);
  tcase_add_test(tc, test_mailproto_pop3_free_without_quit_keeps_all);
  tcase_add_loop_test(
      tc, test_mailproto_pop3_feed_quit_expunge_failure_loses_nothing, 0, 4);
  tcase_add_test(tc, test_mailproto_pop3_feed_second_session_in_use);
  suite_add_tcase(s, tc);

  tc = tcase_create("streaming");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_mailproto_pop3_writable_big_message_bounded_memory);
  tcase_add_loop_test(
      tc, test_mailproto_pop3_writable_big_message_deferred_reads, 0, 2);
  tcase_add_test(tc, test_mailproto_pop3_feed_bare_lf_size_matches_retr);
  tcase_add_test(tc, test_mailproto_pop3_feed_header_scan_bounded);
  tcase_add_test(tc, test_mailproto_pop3_writable_read_failure);
  tcase_add_test(tc, test_mailproto_pop3_feed_message_removed_elsewhere);
  tcase_add_test(tc, test_mailproto_pop3_new_idle_session_bytes);
  suite_add_tcase(s, tc);

  tc = tcase_create("deferred");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mailproto_pop3_feed_auth_failure_delay);
  tcase_add_test(tc, test_mailproto_pop3_start_deferred_policy);
  tcase_add_loop_test(tc, test_mailproto_pop3_free_with_op_pending, 0, 4);
  tcase_add_test(tc, test_mailproto_pop3_feed_each_op_deferred_once);
  tcase_add_loop_test(tc, test_mailproto_pop3_feed_store_failures, 0, 6);
  suite_add_tcase(s, tc);

  tc = tcase_create("stls");
  tcase_add_test(tc, test_mailproto_pop3_set_secure_after_stls);
  tcase_add_loop_test(tc, test_mailproto_pop3_feed_stls_callback_outcomes, 0,
                      2);
  suite_add_tcase(s, tc);

  tc = tcase_create("api");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_mailproto_pop3_new_invalid_arguments);
  tcase_add_test(tc, test_mailproto_pop3_new_older_struct_sizes);
  tcase_add_test(tc, test_mailproto_pop3_start_default_nonce_unique);
  tcase_add_test(tc, test_mailproto_pop3_start_twice_refused);
  tcase_add_test(tc, test_mailproto_pop3_set_secure_before_start);
  tcase_add_loop_test(tc, test_mailproto_pop3_start_send_failure_is_fatal, 0,
                      2);
  tcase_add_test(tc, test_mailproto_pop3_new_alloc_failures);
  suite_add_tcase(s, tc);
  return s;
}
