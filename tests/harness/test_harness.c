/*
 * The harness suite: every core transcript through the runner with the
 * testproto adapter in every mode, the allocation-failure loop on some of
 * them, the runner's own parser, and proof that the runner catches what it
 * is for: a wrong expected line, a session that depends on the input
 * split, an operation never completed, a leak on out-of-memory.
 */
#include <check.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/memstore.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"
#include "support/overread.h"
#include "support/testproto.h"
#include "support/transcript.h"

#define CORE_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/core"
#define REPORT_SIZE 4096

/* ------------------------------------------------------------------ */
/* The testproto adapter                                               */
/* ------------------------------------------------------------------ */

static ptrdiff_t tp_send(testproto *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return transcript_env_send(user_data, data, len);
}

static void tp_event(testproto *s, const char *text, void *user_data) {
  (void)s;
  transcript_env_event(user_data, text);
}

static int flag_option(const char *value, int *out) {
  if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
    return -1;
  *out = value[0] == '1';
  return 0;
}

/* The @ options a testproto transcript may set. */
static int tp_configure(const transcript_env *env, testproto_config *c) {
  for (size_t i = 0; i < env->option_count; i++) {
    const char *key = env->options[i].key, *value = env->options[i].value;
    size_t n = 0;
    int bad;
    if (strcmp(key, "cram_challenge") == 0) {
      c->cram_challenge = value;
      bad = 0;
    } else if (strcmp(key, "secure") == 0)
      bad = flag_option(value, &c->secure);
    else if (strcmp(key, "allow_plaintext") == 0)
      bad = flag_option(value, &c->allow_plaintext);
    else {
      bad = transcript_option_size(value, &n);
      if (strcmp(key, "max_line") == 0)
        c->max_line = n;
      else if (strcmp(key, "max_errors") == 0 && n <= 1000)
        c->max_errors = (unsigned)n;
      else if (strcmp(key, "output_watermark") == 0)
        c->output_watermark = n;
      else if (strcmp(key, "max_append") == 0)
        c->max_append = n;
      else
        bad = 1;
    }
    if (bad)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

static int tp_create(transcript_env *env, void **session) {
  testproto_config config;
  testproto_callbacks cb;
  testproto_config_init(&config);
  testproto_callbacks_init(&cb);
  config.allocator = env->alloc;
  cb.send = tp_send;
  cb.event = tp_event;
  int rc = tp_configure(env, &config);
  if (rc != 0)
    return rc;
  testproto *s;
  rc = testproto_new(&config, &cb, env->store, env, &s);
  *session = s;
  return rc;
}

static int tp_start(void *s) {
  return testproto_start(s);
}
static ptrdiff_t tp_feed(void *s, const uint8_t *data, size_t len) {
  return testproto_feed(s, data, len);
}
static int tp_writable(void *s) {
  return testproto_writable(s);
}
static int tp_want_read(void *s) {
  return testproto_want_read(s);
}
static int tp_want_write(void *s) {
  return testproto_want_write(s);
}
static int tp_pending(void *s) {
  return testproto_pending(s);
}
static void tp_destroy(void *s) {
  testproto_free(s);
}

static const transcript_adapter testproto_adapter = {
    "testproto",  tp_create,     tp_start,   tp_feed,   tp_writable,
    tp_want_read, tp_want_write, tp_pending, tp_destroy};

/* ------------------------------------------------------------------ */
/* The core transcripts                                                */
/* ------------------------------------------------------------------ */

/* Listed when the suite is built, so each file is its own test. The list
 * lives as long as the process. */
static transcript_list core_list;

START_TEST(test_transcript_list_dir_core_found) {
  /* An empty or missing directory would make the loop below pass
   * vacuously. */
  ck_assert_uint_ge(core_list.count, 20);
}
END_TEST

START_TEST(test_transcript_run_file_core) {
  char report[REPORT_SIZE];
  const char *path = core_list.paths[_i];
  if (transcript_run_file(path, &testproto_adapter, report, sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

/* Cheap enough (a few dozen allocations per run) to do for every file. */
START_TEST(test_transcript_run_alloc_failures_core) {
  char report[REPORT_SIZE];
  if (transcript_run_alloc_failures(core_list.paths[_i], &testproto_adapter,
                                    report, sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The runner catches problems                                         */
/* ------------------------------------------------------------------ */

static const transcript_mode whole = {.name = "whole"};

/* Parses an inline transcript and runs it in `mode`, or in every mode. */
static int run_text(const char *text, const transcript_adapter *a,
                    const transcript_mode *mode, char *report) {
  transcript *t;
  if (transcript_parse(text, strlen(text), "inline", &t, report, REPORT_SIZE) !=
      0)
    ck_abort_msg("parse failed: %s", report);
  int rc = mode ? transcript_run_mode(t, a, mode, NULL, report, REPORT_SIZE)
                : transcript_run_all(t, a, report, REPORT_SIZE);
  transcript_free(t);
  return rc;
}

static void assert_contains(const char *report, const char *piece) {
  if (!strstr(report, piece))
    ck_abort_msg("report lacks \"%s\":\n%s", piece, report);
}

START_TEST(test_transcript_run_all_correct_inline_passes) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO hi\n"
                            "S: OK hi\n",
                            &testproto_adapter, NULL, report),
                   0);
}
END_TEST

START_TEST(test_transcript_run_all_wrong_line_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO hi\n"
                            "S: OK hello\n",
                            &testproto_adapter, NULL, report),
                   -1);
  assert_contains(report, "inline [whole]");
  assert_contains(report, "transcript line 3 (server line 2)");
  assert_contains(report, "expected: \"OK hello\\r\\n\"");
  assert_contains(report, "got:      \"OK hi\\r\\n\"");
}
END_TEST

START_TEST(test_transcript_run_mode_missing_output_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO hi\n"
                            "S: OK hi\n"
                            "S: OK more\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "transcript line 4");
  assert_contains(report, "got:      (nothing more)");
}
END_TEST

START_TEST(test_transcript_run_mode_extra_output_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO a\n"
                            "C: ECHO b\n"
                            "S: OK a\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "output longer than expected");
  assert_contains(report, "got:      \"OK b\\r\\n\"");
}
END_TEST

START_TEST(test_transcript_run_mode_wrong_event_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\n"
                            "S: OK authenticated\n"
                            "E: auth bob\n"
                            "C: ECHO later\n"
                            "S: OK later\n",
                            &testproto_adapter, &whole, report),
                   -1);
  /* The wrong event stopped the run before "OK later": the report names
   * the event, not the output it never reached. */
  assert_contains(report, "event 1 differs (transcript line 4)");
  assert_contains(report, "got:      \"auth alice\"");
  ck_assert_ptr_null(strstr(report, "output"));
}
END_TEST

START_TEST(test_transcript_run_mode_missing_event_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO x\n"
                            "S: OK x\n"
                            "E: auth alice\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "event 1 missing (transcript line 4)");
}
END_TEST

START_TEST(test_transcript_run_mode_unexpected_close_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: QUIT\n"
                            "S: OK bye\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "the session closed");
}
END_TEST

START_TEST(test_transcript_run_mode_missing_close_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: ECHO x\n"
                            "S: OK x\n"
                            "! close\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "should have closed");
}
END_TEST

START_TEST(test_transcript_run_mode_unknown_option_fails) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text("@ no_such_option 1\n"
                            "S: * READY testproto\n",
                            &testproto_adapter, &whole, report),
                   -1);
  assert_contains(report, "setup failed");
}
END_TEST

/* A session that takes the end of every chunk for the end of a line: it
 * passes when fed whole lines and must be caught by the other modes. */
static ptrdiff_t split_sensitive_feed(void *s, const uint8_t *data,
                                      size_t len) {
  ptrdiff_t n = testproto_feed(s, data, len);
  if (n > 0 && (size_t)n == len && data[len - 1] != '\n') {
    ptrdiff_t extra = testproto_feed(s, (const uint8_t *)"\r\n", 2);
    if (extra < 0)
      return extra;
  }
  return n;
}

START_TEST(test_transcript_run_all_split_sensitive_session_caught) {
  transcript_adapter broken = testproto_adapter;
  broken.name = "split-sensitive";
  broken.feed = split_sensitive_feed;
  const char *text = "S: * READY testproto\n"
                     "C: ECHO one\n"
                     "C: ECHO two\n"
                     "S: OK one\n"
                     "S: OK two\n";
  char report[REPORT_SIZE];
  ck_assert_int_eq(run_text(text, &broken, &whole, report), 0);
  ck_assert_int_eq(run_text(text, &broken, NULL, report), -1);
  assert_contains(report, "[bytes]");
  assert_contains(report, "expected: \"OK one\\r\\n\"");
}
END_TEST

/*
 * A store whose STATUS never completes (and which forwards the account
 * hooks), to show the runner reports the stall instead of hanging, and
 * that freeing the session cancels the operation.
 */
typedef struct blackhole {
  const mailproto_store *inner;
  mailproto_store_ops ops;
  mailproto_store store;
  mailproto_op *held;
} blackhole;

static int cancelled_ops;

static int bh_authenticate(void *ctx, mailproto_op *op, const char *authzid,
                           const char *authcid, const char *password,
                           size_t password_len, void **account) {
  const mailproto_store *in = ((blackhole *)ctx)->inner;
  return in->ops->authenticate(in->ctx, op, authzid, authcid, password,
                               password_len, account);
}

static void bh_release_account(void *ctx, void *account) {
  const mailproto_store *in = ((blackhole *)ctx)->inner;
  in->ops->release_account(in->ctx, account);
}

static int bh_status(void *ctx, mailproto_op *op, void *account,
                     const char *name, mailproto_mailbox_status *status) {
  (void)account;
  (void)name;
  (void)status;
  ((blackhole *)ctx)->held = op;
  return MAILPROTO_DEFERRED;
}

static void bh_cancel(void *ctx, mailproto_op *op) {
  blackhole *bh = ctx;
  ck_assert_ptr_eq(op, bh->held);
  bh->held = NULL;
  cancelled_ops++;
}

static void blackhole_init(blackhole *bh, const mailproto_store *inner) {
  memset(bh, 0, sizeof *bh);
  bh->inner = inner;
  bh->ops.struct_size = sizeof bh->ops;
  bh->ops.authenticate = bh_authenticate;
  bh->ops.release_account = bh_release_account;
  bh->ops.status = bh_status;
  bh->ops.cancel = bh_cancel;
  bh->store.ops = &bh->ops;
  bh->store.ctx = bh;
}

typedef struct bh_session {
  blackhole bh;
  testproto *tp;
} bh_session;

static int bh_create(transcript_env *env, void **session) {
  bh_session *b = malloc(sizeof *b);
  ck_assert_ptr_nonnull(b);
  blackhole_init(&b->bh, env->store);
  testproto_config config;
  testproto_callbacks cb;
  testproto_config_init(&config);
  testproto_callbacks_init(&cb);
  cb.send = tp_send;
  cb.event = tp_event;
  int rc = testproto_new(&config, &cb, &b->bh.store, env, &b->tp);
  if (rc != 0) {
    free(b);
    return rc;
  }
  *session = b;
  return 0;
}

static int bh_start(void *s) {
  return testproto_start(((bh_session *)s)->tp);
}
static ptrdiff_t bh_feed(void *s, const uint8_t *data, size_t len) {
  return testproto_feed(((bh_session *)s)->tp, data, len);
}
static int bh_writable(void *s) {
  return testproto_writable(((bh_session *)s)->tp);
}
static int bh_want_read(void *s) {
  return testproto_want_read(((bh_session *)s)->tp);
}
static int bh_want_write(void *s) {
  return testproto_want_write(((bh_session *)s)->tp);
}
static int bh_pending(void *s) {
  return testproto_pending(((bh_session *)s)->tp);
}
static void bh_destroy(void *s) {
  testproto_free(((bh_session *)s)->tp);
  free(s);
}

static const transcript_adapter blackhole_adapter = {
    "testproto over a black hole",
    bh_create,
    bh_start,
    bh_feed,
    bh_writable,
    bh_want_read,
    bh_want_write,
    bh_pending,
    bh_destroy};

START_TEST(test_transcript_run_mode_never_completed_op_stalls) {
  char report[REPORT_SIZE];
  cancelled_ops = 0;
  ck_assert_int_eq(run_text("S: * READY testproto\n"
                            "C: AUTH PLAIN AGFsaWNlAHNlY3JldA==\n"
                            "S: OK authenticated\n"
                            "E: auth alice\n"
                            "C: STATUS INBOX\n"
                            "S: OK messages=0 uidnext=1 uidvalidity=1\n",
                            &blackhole_adapter, &whole, report),
                   -1);
  assert_contains(report, "stalled");
  assert_contains(report, "operation pending 1");
  /* Destroying the stuck session gave the operation back to the store. */
  ck_assert_int_eq(cancelled_ops, 1);
}
END_TEST

/* A session wrapper that leaks a block whenever the session failed: the
 * allocation-failure loop must notice. */
typedef struct leaky {
  testproto *tp;
  void *block;
  const mailproto_allocator *alloc;
  int failed;
} leaky;

static int leaky_create(transcript_env *env, void **session) {
  leaky *l = calloc(1, sizeof *l);
  ck_assert_ptr_nonnull(l);
  l->alloc = env->alloc;
  l->block = env->alloc->malloc(16, env->alloc->user_data);
  int rc = l->block ? tp_create(env, (void **)&l->tp) : MAILPROTO_ERR_NOMEM;
  if (rc != 0) {
    if (l->block)
      env->alloc->free(l->block, env->alloc->user_data);
    free(l);
    return rc;
  }
  *session = l;
  return 0;
}

static int leaky_note(leaky *l, long rc) {
  if (rc < 0)
    l->failed = 1;
  return (int)rc;
}

static int leaky_start(void *s) {
  leaky *l = s;
  return leaky_note(l, testproto_start(l->tp));
}
static ptrdiff_t leaky_feed(void *s, const uint8_t *data, size_t len) {
  leaky *l = s;
  ptrdiff_t n = testproto_feed(l->tp, data, len);
  leaky_note(l, (long)n);
  return n;
}
static int leaky_writable(void *s) {
  leaky *l = s;
  return leaky_note(l, testproto_writable(l->tp));
}
static int leaky_want_read(void *s) {
  return testproto_want_read(((leaky *)s)->tp);
}
static int leaky_want_write(void *s) {
  return testproto_want_write(((leaky *)s)->tp);
}
static int leaky_pending(void *s) {
  return testproto_pending(((leaky *)s)->tp);
}
/* The leaked block stays reachable from here, so the process-wide leak
 * checker (ASan) does not report this deliberate leak; the loop's own
 * accounting still sees it. */
static void *leaked_block;

static void leaky_destroy(void *s) {
  leaky *l = s;
  testproto_free(l->tp);
  if (!l->failed)
    l->alloc->free(l->block, l->alloc->user_data);
  else
    leaked_block = l->block;
  free(l);
}

static const transcript_adapter leaky_adapter = {
    "leaks on failure", leaky_create,   leaky_start,
    leaky_feed,         leaky_writable, leaky_want_read,
    leaky_want_write,   leaky_pending,  leaky_destroy};

START_TEST(test_transcript_run_alloc_failures_leak_caught) {
  char report[REPORT_SIZE];
  ck_assert_int_eq(transcript_run_alloc_failures(CORE_DIR "/echo.txt",
                                                 &leaky_adapter, report,
                                                 sizeof report),
                   -1);
  assert_contains(report, "leaked");
  /* The same transcript passes with the honest adapter. */
  ck_assert_int_eq(transcript_run_alloc_failures(CORE_DIR "/echo.txt",
                                                 &testproto_adapter, report,
                                                 sizeof report),
                   0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The transcript parser                                               */
/* ------------------------------------------------------------------ */

/* Parses `text` placed right before an unreadable page, without its NUL:
 * the parser must stay inside the length it is given. */
static int parse_guarded(const char *text, transcript **t, char *report) {
  overread_guard g;
  size_t len = strlen(text);
  ck_assert_int_eq(overread_init(&g, len ? len : 1), 0);
  const char *placed = (const char *)overread_place(&g, text, len);
  int rc = transcript_parse(placed, len, "inline", t, report, REPORT_SIZE);
  overread_free(&g);
  return rc;
}

static transcript *parse_ok(const char *text) {
  char report[REPORT_SIZE];
  transcript *t;
  if (parse_guarded(text, &t, report) != 0)
    ck_abort_msg("%s", report);
  return t;
}

static void assert_bytes(const uint8_t *got, size_t got_len,
                         const char *expected, size_t expected_len) {
  ck_assert_uint_eq(got_len, expected_len);
  ck_assert(memcmp(got, expected, expected_len) == 0);
}

START_TEST(test_transcript_parse_records) {
  transcript *t = parse_ok("# a comment\r\n"
                           "\r\n"
                           "   \n"
                           "@ max_line 64\n"
                           "S: * hi\r\n"
                           "C: one\n"
                           "C:\n"
                           "C~ a\\r\\n\\t\\\\\\x00\\xfF\n"
                           "S~ raw\n"
                           "E: auth alice\n"
                           "E: \n"
                           "! close");
  size_t len;
  const uint8_t *c = transcript_client_bytes(t, &len);
  assert_bytes(c, len, "one\r\n\r\na\r\n\t\\\0\xff", 14);
  const uint8_t *srv = transcript_server_bytes(t, &len);
  assert_bytes(srv, len, "* hi\r\nraw", 9);
  ck_assert_uint_eq(transcript_event_count(t), 2);
  ck_assert_str_eq(transcript_event(t, 0), "auth alice");
  ck_assert_str_eq(transcript_event(t, 1), "");
  ck_assert_ptr_null(transcript_event(t, 2));
  ck_assert_int_eq(transcript_expects_close(t), 1);
  transcript_free(t);
}
END_TEST

START_TEST(test_transcript_parse_repeat) {
  transcript *t = parse_ok("S* 1..3 * line {}\n"
                           "C* 7..8 {}:{}\n"
                           "C* 1..2\n");
  size_t len;
  const uint8_t *srv = transcript_server_bytes(t, &len);
  const char *lines = "* line 1\r\n* line 2\r\n* line 3\r\n";
  assert_bytes(srv, len, lines, strlen(lines));
  const uint8_t *c = transcript_client_bytes(t, &len);
  assert_bytes(c, len, "7:7\r\n8:8\r\n\r\n\r\n", 14);
  ck_assert_int_eq(transcript_expects_close(t), 0);
  transcript_free(t);
}
END_TEST

static const struct {
  const char *text;
  const char *error;
} bad_transcripts[] = {
    {"X: foo\n", "inline:1: unknown record"},
    {"S: ok\nC:foo\n", "inline:2: expected a space"},
    {"E~ x\n", "inline:1: unknown record"},
    {"C\n", "inline:1: unknown record"},
    {"C~ \\q\n", "inline:1: unknown escape"},
    {"C~ \\x4\n", "inline:1: \\x needs two hex digits"},
    {"C~ \\xg0\n", "inline:1: \\x needs two hex digits"},
    {"C~ abc\\\n", "inline:1: escape at the end"},
    {"S* 3..1 x\n", "inline:1: repeat needs FIRST..LAST, FIRST <= LAST"},
    {"S* 1..x\n", "inline:1: repeat needs FIRST..LAST"},
    {"S* 1-2 x\n", "inline:1: repeat needs FIRST..LAST"},
    {"S* 1..2x\n", "inline:1: repeat range must be followed by a space"},
    {"S* 1..2000000 x\n", "inline:1: repeat needs FIRST..LAST"},
    {"S* 99999999999..99999999999 x\n", "inline:1: repeat needs"},
    {"! close\nC: x\n", "inline:2: nothing may follow"},
    {"! open\n", "inline:1: unknown directive"},
    {"!close\n", "inline:1: expected a space"},
    {"@ \n", "inline:1: option needs a key"},
    {"@\n", "inline:1: expected a space"},
};

START_TEST(test_transcript_parse_malformed) {
  char report[REPORT_SIZE];
  transcript *t = NULL;
  ck_assert_int_eq(parse_guarded(bad_transcripts[_i].text, &t, report), -1);
  assert_contains(report, bad_transcripts[_i].error);
}
END_TEST

/* Expanding to more than the data limit (64 MiB) is refused, not
 * attempted. */
START_TEST(test_transcript_parse_oversized) {
  char text[512] = "S* 1..999999 ";
  for (int i = 0; i < 40; i++)
    strcat(text, "{}");
  char report[REPORT_SIZE];
  transcript *t = NULL;
  ck_assert_int_eq(parse_guarded(text, &t, report), -1);
  assert_contains(report, "inline:1: transcript data too large");
}
END_TEST

START_TEST(test_transcript_parse_empty) {
  transcript *t = parse_ok("");
  size_t len;
  transcript_client_bytes(t, &len);
  ck_assert_uint_eq(len, 0);
  transcript_server_bytes(t, &len);
  ck_assert_uint_eq(len, 0);
  ck_assert_uint_eq(transcript_event_count(t), 0);
  transcript_free(t);
}
END_TEST

START_TEST(test_transcript_load_missing_file_fails) {
  char report[REPORT_SIZE];
  transcript *t;
  ck_assert_int_eq(
      transcript_load(CORE_DIR "/no-such-file.txt", &t, report, sizeof report),
      -1);
  assert_contains(report, "cannot open");
}
END_TEST

START_TEST(test_transcript_list_dir_missing_dir_fails) {
  transcript_list list;
  ck_assert_int_eq(transcript_list_dir(CORE_DIR "/no-such-dir", &list), -1);
  ck_assert_uint_eq(list.count, 0);
}
END_TEST

START_TEST(test_transcript_option_size_values) {
  size_t n = 0;
  ck_assert_int_eq(transcript_option_size("0", &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(transcript_option_size("4096", &n), 0);
  ck_assert_uint_eq(n, 4096);
  ck_assert_int_eq(transcript_option_size("", &n), -1);
  ck_assert_int_eq(transcript_option_size("12a", &n), -1);
  ck_assert_int_eq(transcript_option_size("-1", &n), -1);
  ck_assert_int_eq(transcript_option_size("999999999999999999999999999999", &n),
                   -1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* testproto itself, where transcripts cannot reach                    */
/* ------------------------------------------------------------------ */

/* A transport for direct tests: collects output, takes at most `budget`
 * bytes until refilled, or fails on demand. */
typedef struct wire {
  char out[8192];
  size_t len;
  size_t total;    /* bytes taken, also those not kept in out */
  size_t budget;   /* (size_t)-1: unlimited */
  ptrdiff_t force; /* not 0: return this instead */
} wire;

static ptrdiff_t wire_send(testproto *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  wire *w = user_data;
  if (w->force)
    return w->force;
  size_t take = len < w->budget ? len : w->budget;
  if (w->budget != (size_t)-1)
    w->budget -= take;
  size_t keep =
      take < sizeof w->out - 1 - w->len ? take : sizeof w->out - 1 - w->len;
  memcpy(w->out + w->len, data, keep);
  w->len += keep;
  w->out[w->len] = '\0';
  w->total += take;
  return (ptrdiff_t)take;
}

static testproto *new_session(const testproto_config *config,
                              const mailproto_store *store, wire *w) {
  testproto_callbacks cb;
  testproto_callbacks_init(&cb);
  cb.send = wire_send;
  memset(w, 0, sizeof *w);
  w->budget = (size_t)-1;
  testproto *s;
  ck_assert_int_eq(testproto_new(config, &cb, store, w, &s), 0);
  return s;
}

static ptrdiff_t feed_str(testproto *s, const char *text) {
  return testproto_feed(s, (const uint8_t *)text, strlen(text));
}

START_TEST(test_testproto_new_invalid_arguments) {
  static char sentinel;
  testproto_config c;
  testproto_callbacks cb;
  testproto *s = (testproto *)(void *)&sentinel;
  testproto_callbacks_init(&cb);
  ck_assert_int_eq(testproto_new(NULL, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT); /* no send */
  ck_assert_ptr_null(s);
  cb.send = wire_send;
  ck_assert_int_eq(testproto_new(NULL, NULL, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(testproto_new(NULL, &cb, NULL, NULL, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  testproto_callbacks old = cb;
  old.struct_size = sizeof(size_t);
  ck_assert_int_eq(testproto_new(NULL, &old, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);

  testproto_config_init(&c);
  c.max_line = 15;
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  testproto_config_init(&c);
  c.max_line = (size_t)-1;
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  testproto_config_init(&c);
  c.output_watermark = 0;
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  testproto_config_init(&c);
  c.cram_challenge = "";
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  char long_challenge[300];
  memset(long_challenge, 'x', sizeof long_challenge - 1);
  long_challenge[sizeof long_challenge - 1] = '\0';
  c.cram_challenge = long_challenge;
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  testproto_config_init(&c);
  c.struct_size = sizeof(size_t);
  ck_assert_int_eq(testproto_new(&c, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
}
END_TEST

/* A caller built against an older, shorter config keeps the defaults of
 * the fields it does not know. */
START_TEST(test_testproto_new_older_config_size) {
  testproto_config c;
  testproto_config_init(&c);
  c.struct_size = offsetof(testproto_config, max_errors);
  c.max_line = 32;
  c.max_errors = 1; /* beyond the old size: ignored */
  wire w;
  testproto *s = new_session(&c, NULL, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  const char *in = "ECHO this line is longer than 32 bytes\r\nECHO a\r\n"
                   "NOPE\r\nECHO b\r\n";
  ck_assert_int_eq(feed_str(s, in), (ptrdiff_t)strlen(in));
  ck_assert_str_eq(w.out, "* READY testproto\r\nERR line too long\r\n"
                          "OK a\r\nERR unknown command\r\nOK b\r\n");
  testproto_free(s);
}
END_TEST

START_TEST(test_testproto_start_twice_refused) {
  wire w;
  testproto *s = new_session(NULL, NULL, &w);
  ck_assert_int_eq(testproto_want_read(s), 0);
  ck_assert_int_eq(feed_str(s, "ECHO x\r\n"), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(testproto_writable(s), MAILPROTO_ERR_STATE);
  ck_assert_uint_eq(w.len, 0); /* nothing before start */
  ck_assert_int_eq(testproto_start(s), 0);
  ck_assert_int_eq(testproto_start(s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(testproto_feed(s, NULL, 3), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(testproto_feed(s, NULL, 0), 0);
  ck_assert_str_eq(w.out, "* READY testproto\r\n");
  testproto_free(s);
}
END_TEST

START_TEST(test_testproto_feed_stops_at_quit) {
  wire w;
  testproto *s = new_session(NULL, NULL, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  ck_assert_int_eq(feed_str(s, "QUIT\r\nECHO never\r\n"), 6);
  ck_assert_int_eq(testproto_want_read(s), 0);
  ck_assert_int_eq(testproto_want_write(s), 0);
  ck_assert_int_eq(testproto_pending(s), 0);
  ck_assert_int_eq(feed_str(s, "ECHO never\r\n"), 0);
  ck_assert_str_eq(w.out, "* READY testproto\r\nOK bye\r\n");
  testproto_free(s);
}
END_TEST

START_TEST(test_testproto_send_failure_is_fatal) {
  static const ptrdiff_t bad[] = {-1, 100}; /* an error; more than offered */
  wire w;
  testproto *s = new_session(NULL, NULL, &w);
  w.force = bad[_i];
  ck_assert_int_eq(testproto_start(s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(feed_str(s, "ECHO x\r\n"), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(testproto_writable(s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(testproto_want_read(s), 0);
  ck_assert_int_eq(testproto_want_write(s), 0);
  testproto_free(s);
}
END_TEST

/* The whole BIG reply is never held at once: the session's memory stays
 * near the watermark while megabytes go out through a slow transport. */
START_TEST(test_testproto_writable_backpressure_bounds_memory) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  testproto_config c;
  testproto_config_init(&c);
  c.allocator = &af.allocator;
  wire w;
  testproto *s = new_session(&c, NULL, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  w.budget = 0; /* the transport is full from here on */
  ck_assert_int_eq(feed_str(s, "BIG 100000\r\nECHO after\r\n"), 12);
  ck_assert_int_eq(testproto_want_read(s), 0);
  ck_assert_int_eq(testproto_want_write(s), 1);
  size_t turns = 0;
  while (testproto_want_write(s)) {
    w.budget = 100;
    ck_assert_int_eq(testproto_writable(s), 0);
    ck_assert_uint_lt(++turns, 100000);
  }
  ck_assert_int_eq(testproto_want_read(s), 1);
  size_t expected = strlen("* READY testproto\r\nOK big\r\n");
  for (unsigned long i = 1; i <= 100000; i++) {
    char line[32];
    expected += (size_t)snprintf(line, sizeof line, "* line %lu\r\n", i);
  }
  ck_assert_uint_eq(w.total, expected);
  ck_assert_uint_gt(expected, 1000000);
  ck_assert_uint_lt(af.peak_bytes, 16 * 1024);
  testproto_free(s);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_testproto_free_cancels_pending_op) {
  mailproto_memstore *ms;
  mailproto_store inner;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(ms, "alice", "secret"), 0);
  mailproto_memstore_store(ms, &inner);
  blackhole bh;
  blackhole_init(&bh, &inner);
  cancelled_ops = 0;
  wire w;
  testproto *s = new_session(NULL, &bh.store, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  const char *in = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTATUS INBOX\r\n"
                   "ECHO later\r\n";
  ck_assert_int_eq(feed_str(s, in), (ptrdiff_t)strlen(in) - 12);
  ck_assert_ptr_nonnull(bh.held);
  /* Deferred: neither reading nor writing, but not closed either. */
  ck_assert_int_eq(testproto_want_read(s), 0);
  ck_assert_int_eq(testproto_want_write(s), 0);
  ck_assert_int_eq(testproto_pending(s), 1);
  ck_assert_int_eq(feed_str(s, "ECHO later\r\n"), 0);
  testproto_free(s);
  ck_assert_int_eq(cancelled_ops, 1);
  ck_assert_ptr_null(bh.held);
  mailproto_memstore_free(ms);
}
END_TEST

/* Freeing a session in the middle of an APPEND aborts the writer: nothing
 * becomes visible and nothing leaks. */
START_TEST(test_testproto_free_aborts_unfinished_append) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_memstore *ms;
  mailproto_store store;
  ck_assert_int_eq(mailproto_memstore_new(&af.allocator, &ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(ms, "alice", "secret"), 0);
  mailproto_memstore_store(ms, &store);
  testproto_config c;
  testproto_config_init(&c);
  c.allocator = &af.allocator;
  wire w;
  testproto *s = new_session(&c, &store, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  const char *in = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAPPEND INBOX {10}\r\n"
                   "abc";
  ck_assert_int_eq(feed_str(s, in), (ptrdiff_t)strlen(in));
  ck_assert_ptr_nonnull(strstr(w.out, "+ go\r\n"));
  testproto_free(s);

  s = new_session(&c, &store, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  in = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTATUS INBOX\r\n";
  ck_assert_int_eq(feed_str(s, in), (ptrdiff_t)strlen(in));
  ck_assert_ptr_nonnull(strstr(w.out, "OK messages=0 uidnext=1 "));
  testproto_free(s);
  mailproto_memstore_free(ms);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* A memstore behind a faultstore, as the runner builds them. */
typedef struct stores {
  mailproto_memstore *memstore;
  faultstore *fault;
  mailproto_store inner;
  mailproto_store outer;
} stores;

static void stores_init(stores *st, const mailproto_allocator *alloc) {
  ck_assert_int_eq(mailproto_memstore_new(alloc, &st->memstore), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(st->memstore, "alice", "secret"),
                   0);
  mailproto_memstore_store(st->memstore, &st->inner);
  ck_assert_int_eq(faultstore_new(&st->inner, alloc, &st->fault), 0);
  faultstore_store(st->fault, &st->outer);
}

static void stores_free(stores *st) {
  faultstore_free(st->fault);
  mailproto_memstore_free(st->memstore);
}

/* Checks alice's INBOX through a fresh session on `store`. */
static void assert_inbox_status(const mailproto_store *store,
                                const char *expected) {
  wire w;
  testproto *s = new_session(NULL, store, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  const char *in = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTATUS INBOX\r\n";
  ck_assert_int_eq(feed_str(s, in), (ptrdiff_t)strlen(in));
  ck_assert_ptr_nonnull(strstr(w.out, expected));
  testproto_free(s);
}

/* A store failure in the middle of an APPEND: the rest of the literal is
 * still read (never parsed as commands), the error comes after it, and
 * nothing of the message is visible. */
static const char *const append_failing_hooks[] = {"write", "append_commit"};

START_TEST(test_testproto_feed_append_store_failure) {
  stores st;
  stores_init(&st, NULL);
  ck_assert_int_eq(faultstore_fail_hook(st.fault, append_failing_hooks[_i],
                                        MAILPROTO_ERR_IO),
                   0);
  wire w;
  testproto *s = new_session(NULL, &st.outer, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  static const char *const in[] = {
      "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAPPEND INBOX {12}\r\n0123", "ECHO",
      "\r\n89STATUS INBOX\r\n"};
  for (size_t i = 0; i < 3; i++)
    ck_assert_int_eq(feed_str(s, in[i]), (ptrdiff_t)strlen(in[i]));
  ck_assert_str_eq(w.out, "* READY testproto\r\nOK authenticated\r\n"
                          "+ go\r\nERR storage input/output error\r\n"
                          "OK messages=0 uidnext=1 uidvalidity=1\r\n");
  testproto_free(s);
  assert_inbox_status(&st.inner, "OK messages=0 ");
  stores_free(&st);
}
END_TEST

/* Freeing a session while a write of its APPEND is deferred: the op is
 * cancelled, the writer aborted, nothing visible, nothing leaked. */
START_TEST(test_testproto_free_during_deferred_write) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  stores st;
  stores_init(&st, &af.allocator);
  faultstore_defer_all(st.fault, 1);
  testproto_config c;
  testproto_config_init(&c);
  c.allocator = &af.allocator;
  wire w;
  testproto *s = new_session(&c, &st.outer, &w);
  ck_assert_int_eq(testproto_start(s), 0);
  const char *in = "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nAPPEND INBOX {10}\r\n"
                   "0123";
  size_t used = 0, len = strlen(in);
  for (int turn = 0; turn < 10 && used < len; turn++) {
    ptrdiff_t n = testproto_feed(s, (const uint8_t *)in + used, len - used);
    ck_assert_int_ge(n, 0);
    used += (size_t)n;
    if (used < len)
      ck_assert_int_eq(faultstore_run_pending(st.fault), 1);
  }
  ck_assert_uint_eq(used, len);
  ck_assert_str_eq(w.out, "* READY testproto\r\nOK authenticated\r\n+ go\r\n");
  ck_assert_int_eq(testproto_pending(s), 1);
  ck_assert_uint_eq(faultstore_pending(st.fault), 1);
  testproto_free(s);
  ck_assert_uint_eq(faultstore_pending(st.fault), 0);
  ck_assert_int_eq(faultstore_run_pending(st.fault), 0);
  assert_inbox_status(&st.inner, "OK messages=0 ");
  stores_free(&st);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* Out of memory anywhere in a session's life: a clean NOMEM, the session
 * wants to close, and nothing leaks. */
START_TEST(test_testproto_new_alloc_failures) {
  const char *in = "ECHO hi\r\nB64 ENC abc\r\nUTF8 \xc3\xa9\r\n"
                   "AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n";
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    testproto_config c;
    testproto_config_init(&c);
    c.allocator = &af.allocator;
    c.cram_challenge = "<x@y>";
    testproto_callbacks cb;
    testproto_callbacks_init(&cb);
    cb.send = wire_send;
    wire w;
    memset(&w, 0, sizeof w);
    w.budget = (size_t)-1;
    testproto *s = NULL;
    int rc = testproto_new(&c, &cb, NULL, &w, &s);
    if (rc == 0)
      rc = testproto_start(s);
    if (rc == 0) {
      ptrdiff_t used = feed_str(s, in);
      rc = used < 0 ? (int)used : 0;
    }
    if (rc != 0) {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      if (s) {
        ck_assert_int_eq(testproto_want_read(s), 0);
        ck_assert_int_eq(testproto_want_write(s), 0);
      }
    }
    testproto_free(s);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af)) {
      ck_assert_int_eq(rc, 0);
      /* Without a store the password check is unsupported. */
      ck_assert_str_eq(w.out, "* READY testproto\r\nOK hi\r\nOK YWJj\r\n"
                              "OK &AOk-\r\n+ \r\n"
                              "ERR authentication failed\r\n");
      break;
    }
    ck_assert_uint_lt(n, 1000);
  }
}
END_TEST

/* faultstore_defer_nth pauses exactly one operation, the n-th, so the
 * runner can pause each of a transcript's operations alone in turn. */
static int nth_completed;
static int nth_complete(mailproto_op *op, int status) {
  (void)op;
  ck_assert_int_eq(status, 0);
  nth_completed++;
  return 0;
}

START_TEST(test_faultstore_defer_nth_pauses_one_call) {
  static const mailproto_op_sink sink = {.complete = nth_complete};
  mailproto_memstore *mem;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &mem), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(mem, "alice", "secret"), 0);
  mailproto_store inner, outer;
  mailproto_memstore_store(mem, &inner);
  faultstore *f;
  ck_assert_int_eq(faultstore_new(&inner, NULL, &f), 0);
  faultstore_store(f, &outer);
  faultstore_defer_nth(f, 2);
  mailproto_op op;
  mailproto_op_init(&op, &sink, NULL);
  void *account = NULL;
  nth_completed = 0;
  for (int call = 1; call <= 3; call++) {
    mailproto_op_begin(&op, 0);
    int rc = mailproto_op_end(&op, outer.ops->authenticate(outer.ctx, &op, "",
                                                           "alice", "secret", 6,
                                                           &account));
    if (call == 2) {
      ck_assert_int_eq(rc, MAILPROTO_DEFERRED);
      ck_assert_uint_eq(faultstore_pending(f), 1);
      ck_assert_int_eq(faultstore_run_pending(f), 1);
      ck_assert_int_eq(nth_completed, 1);
    } else {
      ck_assert_int_eq(rc, 0);
      ck_assert_uint_eq(faultstore_pending(f), 0);
    }
    ck_assert_ptr_nonnull(account);
    outer.ops->release_account(outer.ctx, account);
    account = NULL;
  }
  ck_assert_uint_eq(faultstore_calls(f), 3);
  faultstore_free(f);
  mailproto_memstore_free(mem);
}
END_TEST

Suite *suite_harness(void) {
  Suite *s = suite_create("harness");

  if (transcript_list_dir(CORE_DIR, &core_list) != 0)
    core_list.count = 0;
  TCase *tc = tcase_create("core transcripts");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_transcript_list_dir_core_found);
  tcase_add_loop_test(tc, test_transcript_run_file_core, 0,
                      (int)core_list.count);
  tcase_add_loop_test(tc, test_transcript_run_alloc_failures_core, 0,
                      (int)core_list.count);
  suite_add_tcase(s, tc);

  tc = tcase_create("runner");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_transcript_run_all_correct_inline_passes);
  tcase_add_test(tc, test_transcript_run_all_wrong_line_fails);
  tcase_add_test(tc, test_transcript_run_mode_missing_output_fails);
  tcase_add_test(tc, test_transcript_run_mode_extra_output_fails);
  tcase_add_test(tc, test_transcript_run_mode_wrong_event_fails);
  tcase_add_test(tc, test_transcript_run_mode_missing_event_fails);
  tcase_add_test(tc, test_transcript_run_mode_unexpected_close_fails);
  tcase_add_test(tc, test_transcript_run_mode_missing_close_fails);
  tcase_add_test(tc, test_transcript_run_mode_unknown_option_fails);
  tcase_add_test(tc, test_transcript_run_all_split_sensitive_session_caught);
  tcase_add_test(tc, test_transcript_run_mode_never_completed_op_stalls);
  tcase_add_test(tc, test_transcript_run_alloc_failures_leak_caught);
  suite_add_tcase(s, tc);

  tc = tcase_create("parser");
  tcase_add_test(tc, test_transcript_parse_records);
  tcase_add_test(tc, test_transcript_parse_repeat);
  tcase_add_loop_test(
      tc, test_transcript_parse_malformed, 0,
      (int)(sizeof bad_transcripts / sizeof bad_transcripts[0]));
  tcase_add_test(tc, test_transcript_parse_oversized);
  tcase_add_test(tc, test_transcript_parse_empty);
  tcase_add_test(tc, test_transcript_load_missing_file_fails);
  tcase_add_test(tc, test_transcript_list_dir_missing_dir_fails);
  tcase_add_test(tc, test_transcript_option_size_values);
  suite_add_tcase(s, tc);

  tc = tcase_create("testproto");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_testproto_new_invalid_arguments);
  tcase_add_test(tc, test_testproto_new_older_config_size);
  tcase_add_test(tc, test_testproto_start_twice_refused);
  tcase_add_test(tc, test_testproto_feed_stops_at_quit);
  tcase_add_loop_test(tc, test_testproto_send_failure_is_fatal, 0, 2);
  tcase_add_test(tc, test_testproto_writable_backpressure_bounds_memory);
  tcase_add_test(tc, test_testproto_free_cancels_pending_op);
  tcase_add_test(tc, test_testproto_free_aborts_unfinished_append);
  tcase_add_loop_test(tc, test_testproto_feed_append_store_failure, 0, 2);
  tcase_add_test(tc, test_testproto_free_during_deferred_write);
  tcase_add_test(tc, test_testproto_new_alloc_failures);
  tcase_add_test(tc, test_faultstore_defer_nth_pauses_one_call);
  suite_add_tcase(s, tc);
  return s;
}
