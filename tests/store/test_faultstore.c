/*
 * The fault-injecting store: the conformance suite through it (deferring
 * every op, passing through, and deferring on top of a deferring store:
 * the results must be those of the plain store), then its own faults,
 * cancel, ordering and memory behaviour.
 */
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/memstore.h"
#include "store/conformance.h"
#include "store/store_call.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

/* ------------------------------------------------------------------ */
/* Conformance backends                                                */
/* ------------------------------------------------------------------ */

typedef struct fs_backend {
  mailproto_memstore *mem;
  mailproto_store mem_store, mid_store;
  faultstore *mid;   /* optional second layer */
  faultstore *fault; /* the outer layer */
} fs_backend;

enum { PASS_THROUGH = 0, DEFERRED = 1, NESTED = 2 };

static int fb_create(void *arg, mailproto_store *out, void **handle) {
  int mode = *(const int *)arg;
  fs_backend *b = calloc(1, sizeof *b);
  if (!b)
    return MAILPROTO_ERR_NOMEM;
  int rc = mailproto_memstore_new(NULL, &b->mem);
  if (rc == 0)
    rc = mailproto_memstore_add_user(b->mem, "alice", "secret");
  if (rc == 0)
    rc = mailproto_memstore_add_user(b->mem, "bob", "hunter2");
  if (rc == 0) {
    mailproto_memstore_store(b->mem, &b->mem_store);
    const mailproto_store *inner = &b->mem_store;
    if (mode == NESTED) {
      rc = faultstore_new(inner, NULL, &b->mid);
      if (rc == 0) {
        faultstore_store(b->mid, &b->mid_store);
        faultstore_defer_all(b->mid, 1);
        inner = &b->mid_store;
      }
    }
    if (rc == 0)
      rc = faultstore_new(inner, NULL, &b->fault);
  }
  if (rc != 0) {
    faultstore_free(b->mid);
    mailproto_memstore_free(b->mem);
    free(b);
    return rc;
  }
  faultstore_defer_all(b->fault, mode != PASS_THROUGH);
  faultstore_store(b->fault, out);
  *handle = b;
  return 0;
}

static void fb_destroy(void *handle) {
  fs_backend *b = handle;
  ck_assert_uint_eq(faultstore_pending(b->fault), 0);
  faultstore_free(b->fault);
  faultstore_free(b->mid);
  mailproto_memstore_free(b->mem);
  free(b);
}

static int fb_turn(void *handle) {
  fs_backend *b = handle;
  int n = 0;
  if (b->mid)
    n += faultstore_run_pending(b->mid);
  return n + faultstore_run_pending(b->fault);
}

/* ------------------------------------------------------------------ */
/* A small client                                                      */
/* ------------------------------------------------------------------ */

typedef struct env {
  alloc_fail af;
  mailproto_memstore *mem;
  mailproto_store inner, outer;
  faultstore *f;
  void *alice, *bob;
} env;

typedef struct call {
  mailproto_op op;
  int done, status, order;
  size_t messages, expunged;
} call;

static int completions;

static int on_complete(mailproto_op *op, int status) {
  call *c = op->owner;
  c->done++;
  c->status = status;
  c->order = ++completions;
  return 0;
}

static int on_message(mailproto_op *op, const mailproto_message_info *m) {
  call *c = op->owner;
  (void)m;
  c->messages++;
  return 0;
}

static int on_expunged(mailproto_op *op, uint32_t uid) {
  call *c = op->owner;
  (void)uid;
  c->expunged++;
  return 0;
}

static const mailproto_op_sink sink = {
    .message = on_message, .expunged = on_expunged, .complete = on_complete};

static mailproto_op *fresh(call *c) {
  memset(c, 0, sizeof *c);
  mailproto_op_init(&c->op, &sink, c);
  return &c->op;
}

/* Runs turns until the call completed; returns its status. */
static int wait_for(env *e, call *c, int rc) {
  if (rc != MAILPROTO_DEFERRED)
    return rc;
  for (int i = 0; i < 10 && !c->done; i++)
    faultstore_run_pending(e->f);
  ck_assert_int_eq(c->done, 1);
  return c->status;
}

static void env_init(env *e) {
  memset(e, 0, sizeof *e);
  alloc_fail_init(&e->af, 0);
  ck_assert_int_eq(mailproto_memstore_new(&e->af.allocator, &e->mem), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(e->mem, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(e->mem, "bob", "hunter2"), 0);
  mailproto_memstore_store(e->mem, &e->inner);
  ck_assert_int_eq(faultstore_new(&e->inner, &e->af.allocator, &e->f), 0);
  faultstore_store(e->f, &e->outer);
  call c;
  ck_assert_int_eq(mailproto_store_call_authenticate(&e->inner, fresh(&c), 0,
                                                     "", "alice", "secret", 6,
                                                     &e->alice),
                   0);
  ck_assert_int_eq(mailproto_store_call_authenticate(&e->inner, fresh(&c), 0,
                                                     "", "bob", "hunter2", 7,
                                                     &e->bob),
                   0);
}

static void env_free(env *e) {
  faultstore_free(e->f);
  mailproto_memstore_free(e->mem);
  ck_assert_int_eq(e->af.live, 0);
}

/* Messages in a mailbox, asked of the inner store directly. */
static uint32_t inner_messages(env *e, void *acct, const char *box) {
  call c;
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      mailproto_store_call_status(&e->inner, fresh(&c), 0, acct, box, &st), 0);
  return st.messages;
}

/* A whole APPEND through the faultstore, each step waited for. */
static int append(env *e, const char *text, uint32_t *uid) {
  call c;
  void *w = NULL;
  uint32_t uv;
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  int rc = wait_for(e, &c,
                    mailproto_store_call_append_begin(
                        &e->outer, fresh(&c), 0, e->alice, "INBOX", &info, &w));
  if (rc != 0)
    return rc;
  ck_assert_ptr_nonnull(w);
  rc =
      wait_for(e, &c,
               mailproto_store_call_write(&e->outer, fresh(&c), 0, w,
                                          (const uint8_t *)text, strlen(text)));
  if (rc != 0) {
    mailproto_store_call_abort(&e->outer, w);
    return rc;
  }
  return wait_for(
      e, &c,
      mailproto_store_call_append_commit(&e->outer, fresh(&c), 0, w, &uv, uid));
}

/* ------------------------------------------------------------------ */
/* Deferral                                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_faultstore_defers_until_next_turn) {
  env e;
  env_init(&e);
  ck_assert_int_eq(append(&e, "x\r\n", NULL), 0);
  faultstore_defer_all(e.f, 1);
  call c;
  mailproto_mailbox_status st;
  memset(&st, 0, sizeof st);
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "INBOX", &st),
                   MAILPROTO_DEFERRED);
  /* Nothing arrives before the turn. */
  ck_assert_int_eq(c.done, 0);
  ck_assert_uint_eq(st.messages, 0);
  ck_assert_uint_eq(faultstore_pending(e.f), 1);
  ck_assert_int_eq(faultstore_run_pending(e.f), 1);
  ck_assert_int_eq(c.done, 1);
  ck_assert_int_eq(c.status, 0);
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_eq(faultstore_pending(e.f), 0);
  ck_assert_int_eq(faultstore_run_pending(e.f), 0);
  /* Reports arrive with the completion too. */
  void *h = NULL;
  ck_assert_int_eq(mailproto_store_call_open(&e.outer, fresh(&c), 0, e.alice,
                                             "INBOX", 0, NULL, NULL, &h, &st),
                   MAILPROTO_DEFERRED);
  ck_assert_ptr_null(h);
  ck_assert_uint_eq(c.messages, 0);
  ck_assert_int_eq(faultstore_run_pending(e.f), 1);
  ck_assert_ptr_nonnull(h);
  ck_assert_uint_eq(c.messages, 1);
  mailproto_store_call_close(&e.outer, h);
  /* Failures are deferred as well. */
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "missing", &st),
                   MAILPROTO_DEFERRED);
  ck_assert_int_eq(faultstore_run_pending(e.f), 1);
  ck_assert_int_eq(c.status, MAILPROTO_ERR_NOT_FOUND);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_passes_through_by_default) {
  env e;
  env_init(&e);
  call c;
  mailproto_mailbox_status st;
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "INBOX", &st),
                   0);
  ck_assert_int_eq(c.done, 0);
  ck_assert_uint_eq(faultstore_pending(e.f), 0);
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "missing", &st),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_uint_eq(faultstore_calls(e.f), 2);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_completes_in_call_order) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, 1);
  call a, b, d;
  mailproto_mailbox_status s1, s2, s3;
  completions = 0;
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&a), 0, e.alice,
                                               "INBOX", &s1),
                   MAILPROTO_DEFERRED);
  ck_assert_int_eq(
      mailproto_store_call_status(&e.outer, fresh(&b), 0, e.bob, "INBOX", &s2),
      MAILPROTO_DEFERRED);
  ck_assert_int_eq(
      mailproto_store_call_status(&e.outer, fresh(&d), 0, e.alice, "nope", &s3),
      MAILPROTO_DEFERRED);
  ck_assert_uint_eq(faultstore_pending(e.f), 3);
  ck_assert_int_eq(faultstore_run_pending(e.f), 3);
  ck_assert_int_eq(a.order, 1);
  ck_assert_int_eq(b.order, 2);
  ck_assert_int_eq(d.order, 3);
  env_free(&e);
}
END_TEST

/* An owner that starts its next call from inside the completion, as a
 * session resuming does: that call waits for the following turn. */
typedef struct chain {
  mailproto_op op;
  env *e;
  int steps, done;
  mailproto_mailbox_status st;
} chain;

static int chain_complete(mailproto_op *op, int status) {
  chain *ch = op->owner;
  ck_assert_int_eq(status, 0);
  ch->done++;
  if (++ch->steps < 3)
    ck_assert_int_eq(mailproto_store_call_status(
                         &ch->e->outer, op, 0, ch->e->alice, "INBOX", &ch->st),
                     MAILPROTO_DEFERRED);
  return 0;
}

static const mailproto_op_sink chain_sink = {.complete = chain_complete};

START_TEST(test_faultstore_ops_started_while_completing_wait) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, 1);
  chain ch;
  memset(&ch, 0, sizeof ch);
  ch.e = &e;
  mailproto_op_init(&ch.op, &chain_sink, &ch);
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, &ch.op, 0, e.alice,
                                               "INBOX", &ch.st),
                   MAILPROTO_DEFERRED);
  for (int turn = 1; turn <= 3; turn++) {
    ck_assert_int_eq(faultstore_run_pending(e.f), 1);
    ck_assert_int_eq(ch.done, turn);
  }
  ck_assert_int_eq(faultstore_run_pending(e.f), 0);
  env_free(&e);
}
END_TEST

static int fatal_complete(mailproto_op *op, int status) {
  (void)op;
  (void)status;
  return MAILPROTO_ERR_CALLBACK_FAILURE;
}

static const mailproto_op_sink fatal_sink = {.complete = fatal_complete};

START_TEST(test_faultstore_run_pending_reports_fatal_owner) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, 1);
  mailproto_op bad;
  mailproto_op_init(&bad, &fatal_sink, NULL);
  call c;
  mailproto_mailbox_status s1, s2;
  ck_assert_int_eq(
      mailproto_store_call_status(&e.outer, &bad, 0, e.alice, "INBOX", &s1),
      MAILPROTO_DEFERRED);
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "INBOX", &s2),
                   MAILPROTO_DEFERRED);
  ck_assert_int_eq(faultstore_run_pending(e.f), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_uint_eq(faultstore_pending(e.f), 1);
  ck_assert_int_eq(faultstore_run_pending(e.f), 1);
  ck_assert_int_eq(c.done, 1);
  env_free(&e);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Faults                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_faultstore_fail_nth_counts_calls) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, _i);
  faultstore_fail_nth(e.f, 3, MAILPROTO_ERR_TEMPORARY);
  call c;
  mailproto_mailbox_status st;
  int expect[5] = {0, 0, MAILPROTO_ERR_TEMPORARY, 0, 0};
  for (int i = 0; i < 5; i++) {
    int rc = mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                         "INBOX", &st);
    ck_assert_int_eq(wait_for(&e, &c, rc), expect[i]);
  }
  ck_assert_uint_eq(faultstore_calls(e.f), 5);
  /* Non-op hooks are neither counted nor failed. */
  mailproto_store_call_release_account(&e.outer, NULL);
  ck_assert_uint_eq(faultstore_calls(e.f), 5);
  faultstore_fail_nth(e.f, 0, 0);
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_status(&e.outer, fresh(&c), 0,
                                                        e.alice, "INBOX", &st)),
                   0);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_failed_append_commit_leaves_nothing) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, _i);
  ck_assert_int_eq(faultstore_fail_hook(e.f, "append_commit", MAILPROTO_ERR_IO),
                   0);
  uint32_t uid = 77;
  ck_assert_int_eq(append(&e, "Subject: lost\r\n\r\nbody\r\n", &uid),
                   MAILPROTO_ERR_IO);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 0);
  /* Writes still work; only the commit fails. */
  ck_assert_int_eq(faultstore_fail_hook(e.f, "append_commit", 0), 0);
  ck_assert_int_eq(faultstore_fail_hook(e.f, "write", MAILPROTO_ERR_LIMIT), 0);
  ck_assert_int_eq(append(&e, "x\r\n", &uid), MAILPROTO_ERR_LIMIT);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 0);
  ck_assert_int_eq(faultstore_fail_hook(e.f, "write", 0), 0);
  ck_assert_int_eq(append(&e, "x\r\n", &uid), 0);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 1);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_failed_deliver_commit_fails_every_account) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, _i);
  ck_assert_int_eq(
      faultstore_fail_hook(e.f, "deliver_commit", MAILPROTO_ERR_TEMPORARY), 0);
  void *to[2] = {e.alice, e.bob};
  call c;
  void *w = NULL;
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_deliver_begin(
                                &e.outer, fresh(&c), 0, to, 2, NULL, &w)),
                   0);
  ck_assert_int_eq(
      wait_for(&e, &c,
               mailproto_store_call_write(&e.outer, fresh(&c), 0, w,
                                          (const uint8_t *)"m\r\n", 3)),
      0);
  int results[2] = {1, 1};
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_deliver_commit(
                                &e.outer, fresh(&c), 0, w, 0, results, 2)),
                   MAILPROTO_ERR_TEMPORARY);
  ck_assert_int_eq(results[0], MAILPROTO_ERR_TEMPORARY);
  ck_assert_int_eq(results[1], MAILPROTO_ERR_TEMPORARY);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 0);
  ck_assert_uint_eq(inner_messages(&e, e.bob, "INBOX"), 0);
  /* Without the fault the per-account results come through. */
  faultstore_fail_hook(e.f, "deliver_commit", 0);
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_deliver_begin(
                                &e.outer, fresh(&c), 0, to, 2, NULL, &w)),
                   0);
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_deliver_commit(
                                &e.outer, fresh(&c), 0, w, 1, results, 2)),
                   0);
  ck_assert_int_eq(results[0], 0);
  ck_assert_int_eq(results[1], 0);
  ck_assert_uint_eq(inner_messages(&e, e.bob, "INBOX"), 1);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_failed_expunge_keeps_messages) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, _i);
  ck_assert_int_eq(append(&e, "1\r\n", NULL), 0);
  ck_assert_int_eq(append(&e, "2\r\n", NULL), 0);
  faultstore_fail_hook(e.f, "expunge", MAILPROTO_ERR_IO);
  call c;
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      wait_for(&e, &c,
               mailproto_store_call_open(&e.outer, fresh(&c), 0, e.alice,
                                         "INBOX", 0, NULL, NULL, &h, &st)),
      0);
  mailproto_uid_range all = {1, UINT32_MAX};
  ck_assert_int_eq(wait_for(&e, &c,
                            mailproto_store_call_expunge(&e.outer, fresh(&c), 0,
                                                         h, &all, 1, 0)),
                   MAILPROTO_ERR_IO);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 2);
  ck_assert_int_eq(
      wait_for(&e, &c,
               mailproto_store_call_sync(&e.outer, fresh(&c), 0, h, &st)),
      0);
  ck_assert_uint_eq(c.expunged, 0);
  mailproto_store_call_close(&e.outer, h);
  ck_assert_int_eq(faultstore_fail_hook(e.f, "no_such_hook", 1), -1);
  ck_assert_int_eq(faultstore_fail_hook(e.f, "delete", MAILPROTO_ERR_IO), 0);
  ck_assert_int_eq(faultstore_fail_hook(e.f, NULL, 1), -1);
  env_free(&e);
}
END_TEST

/* The pattern of failures of `calls` status calls as a bit string. */
static void failure_pattern(uint32_t seed, unsigned percent, char *out,
                            size_t calls) {
  env e;
  env_init(&e);
  faultstore_fail_random(e.f, seed, percent, MAILPROTO_ERR_TEMPORARY);
  call c;
  mailproto_mailbox_status st;
  for (size_t i = 0; i < calls; i++) {
    int rc = mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                         "INBOX", &st);
    ck_assert(rc == 0 || rc == MAILPROTO_ERR_TEMPORARY);
    out[i] = rc ? '1' : '0';
  }
  out[calls] = '\0';
  env_free(&e);
}

START_TEST(test_faultstore_fail_random_is_reproducible) {
  char a[401], b[401], d[401];
  failure_pattern(12345, 30, a, 400);
  failure_pattern(12345, 30, b, 400);
  failure_pattern(54321, 30, d, 400);
  ck_assert_str_eq(a, b);
  ck_assert_str_ne(a, d);
  size_t fails = 0;
  for (size_t i = 0; i < 400; i++)
    fails += a[i] == '1';
  ck_assert_uint_gt(fails, 60);
  ck_assert_uint_lt(fails, 180);
  failure_pattern(7, 0, a, 100);
  ck_assert(strchr(a, '1') == NULL);
  failure_pattern(7, 100, a, 100);
  ck_assert(strchr(a, '0') == NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cancel and teardown                                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_faultstore_cancel_drops_and_undoes) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, 1);
  call c;
  mailproto_mailbox_status st;
  /* A cancelled status never completes. */
  ck_assert_int_eq(mailproto_store_call_status(&e.outer, fresh(&c), 0, e.alice,
                                               "INBOX", &st),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&e.outer, &c.op);
  ck_assert_uint_eq(faultstore_pending(e.f), 0);
  ck_assert_int_eq(faultstore_run_pending(e.f), 0);
  ck_assert_int_eq(c.done, 0);
  /* A cancelled exclusive open does not keep the lock. */
  void *h = NULL;
  ck_assert_int_eq(mailproto_store_call_open(&e.outer, fresh(&c), 0, e.alice,
                                             "INBOX", MAILPROTO_OPEN_EXCLUSIVE,
                                             NULL, NULL, &h, &st),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&e.outer, &c.op);
  ck_assert_ptr_null(h);
  faultstore_defer_all(e.f, 0);
  ck_assert_int_eq(mailproto_store_call_open(&e.outer, fresh(&c), 0, e.alice,
                                             "INBOX", MAILPROTO_OPEN_EXCLUSIVE,
                                             NULL, NULL, &h, &st),
                   0);
  mailproto_store_call_close(&e.outer, h);
  faultstore_defer_all(e.f, 1);
  /* A cancelled append start aborts the writer nobody received. */
  void *w = NULL;
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  ck_assert_int_eq(mailproto_store_call_append_begin(
                       &e.outer, fresh(&c), 0, e.alice, "INBOX", &info, &w),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&e.outer, &c.op);
  ck_assert_ptr_null(w);
  /* A cancelled authentication releases its account. */
  void *acct = NULL;
  ck_assert_int_eq(mailproto_store_call_authenticate(
                       &e.outer, fresh(&c), 0, "", "bob", "hunter2", 7, &acct),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&e.outer, &c.op);
  ck_assert_ptr_null(acct);
  /* A cancelled commit happened anyway (the inner store had run it). */
  faultstore_defer_all(e.f, 0);
  ck_assert_int_eq(mailproto_store_call_append_begin(
                       &e.outer, fresh(&c), 0, e.alice, "INBOX", &info, &w),
                   0);
  faultstore_defer_all(e.f, 1);
  uint32_t uv = 0, uid = 0;
  ck_assert_int_eq(
      mailproto_store_call_append_commit(&e.outer, fresh(&c), 0, w, &uv, &uid),
      MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&e.outer, &c.op);
  ck_assert_uint_eq(uid, 0);
  ck_assert_int_eq(faultstore_run_pending(e.f), 0);
  ck_assert_uint_eq(inner_messages(&e, e.alice, "INBOX"), 1);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_free_with_pending_ops) {
  env e;
  env_init(&e);
  faultstore_defer_all(e.f, 1);
  call c1, c2, c3;
  void *h = NULL, *w = NULL;
  mailproto_mailbox_status st;
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  ck_assert_int_eq(mailproto_store_call_open(&e.outer, fresh(&c1), 0, e.alice,
                                             "INBOX", 0, NULL, NULL, &h, &st),
                   MAILPROTO_DEFERRED);
  ck_assert_int_eq(mailproto_store_call_append_begin(
                       &e.outer, fresh(&c2), 0, e.alice, "INBOX", &info, &w),
                   MAILPROTO_DEFERRED);
  faultstore_fail_nth(e.f, faultstore_calls(e.f) + 1, MAILPROTO_ERR_IO);
  ck_assert_int_eq(
      mailproto_store_call_status(&e.outer, fresh(&c3), 0, e.bob, "INBOX", &st),
      MAILPROTO_DEFERRED);
  ck_assert_uint_eq(faultstore_pending(e.f), 3);
  /* Freeing drops them all: the handle is closed, the writer aborted
   * (env_free checks that nothing leaked). */
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_wraps_a_deferring_store) {
  env e;
  env_init(&e);
  /* A second faultstore that defers, between ours and the memstore. */
  faultstore *mid = NULL;
  mailproto_store mid_store;
  ck_assert_int_eq(faultstore_new(&e.inner, &e.af.allocator, &mid), 0);
  faultstore_store(mid, &mid_store);
  faultstore_defer_all(mid, 1);
  faultstore *top = NULL;
  mailproto_store top_store;
  ck_assert_int_eq(faultstore_new(&mid_store, &e.af.allocator, &top), 0);
  faultstore_store(top, &top_store);
  call c;
  mailproto_mailbox_status st;
  memset(&st, 0, sizeof st);
  /* Ours does not defer, but the store below does: so does the call. */
  ck_assert_int_eq(mailproto_store_call_status(&top_store, fresh(&c), 0,
                                               e.alice, "INBOX", &st),
                   MAILPROTO_DEFERRED);
  ck_assert_uint_eq(faultstore_pending(top), 1);
  ck_assert_int_eq(faultstore_run_pending(top), 0);
  ck_assert_int_eq(faultstore_run_pending(mid), 1);
  ck_assert_int_eq(c.done, 1);
  ck_assert_uint_eq(st.struct_size, sizeof st);
  ck_assert_uint_eq(faultstore_pending(top), 0);
  /* Cancelling ours cancels the one below. */
  ck_assert_int_eq(mailproto_store_call_status(&top_store, fresh(&c), 0,
                                               e.alice, "INBOX", &st),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&top_store, &c.op);
  ck_assert_uint_eq(faultstore_pending(mid), 0);
  ck_assert_int_eq(faultstore_run_pending(mid), 0);
  ck_assert_int_eq(c.done, 0);
  faultstore_free(top);
  faultstore_free(mid);
  env_free(&e);
}
END_TEST

START_TEST(test_faultstore_alloc_failures_are_clean) {
  int completed = 0;
  for (unsigned long n = 1; n < 200 && !completed; n++) {
    env e;
    env_init(&e);
    faultstore_defer_all(e.f, 1);
    e.af.fail_at = e.af.calls + n;
    call c;
    void *h = NULL;
    mailproto_mailbox_status st;
    uint32_t uid;
    int rc = append(&e, "Subject: s\r\n\r\nbody\r\n", &uid);
    ck_assert(rc == 0 || rc == MAILPROTO_ERR_NOMEM);
    if (rc == 0) {
      rc = wait_for(&e, &c,
                    mailproto_store_call_open(&e.outer, fresh(&c), 0, e.alice,
                                              "INBOX", 0, NULL, NULL, &h, &st));
      ck_assert(rc == 0 || rc == MAILPROTO_ERR_NOMEM);
      if (rc == 0) {
        ck_assert_uint_eq(c.messages, 1);
        mailproto_store_call_close(&e.outer, h);
      }
    }
    completed = !alloc_fail_triggered(&e.af);
    e.af.fail_at = 0;
    uint32_t msgs = inner_messages(&e, e.alice, "INBOX");
    ck_assert(msgs <= 1);
    env_free(&e);
  }
  ck_assert(completed);
}
END_TEST

Suite *suite_store_fault(void) {
  static int modes[] = {DEFERRED, PASS_THROUGH, NESTED};
  static const conformance_backend deferred = {"faultstore (every op deferred)",
                                               fb_create, fb_destroy, fb_turn,
                                               &modes[0]};
  static const conformance_backend passing = {
      "faultstore (pass-through)", fb_create, fb_destroy, fb_turn, &modes[1]};
  static const conformance_backend nested = {
      "faultstore (deferred twice)", fb_create, fb_destroy, fb_turn, &modes[2]};
  Suite *s = conformance_suite("store_fault", &deferred);
  conformance_add_cases(s, &passing);
  conformance_add_cases(s, &nested);

  TCase *tc = tcase_create("faultstore");
  tcase_add_test(tc, test_faultstore_defers_until_next_turn);
  tcase_add_test(tc, test_faultstore_passes_through_by_default);
  tcase_add_test(tc, test_faultstore_completes_in_call_order);
  tcase_add_test(tc, test_faultstore_ops_started_while_completing_wait);
  tcase_add_test(tc, test_faultstore_run_pending_reports_fatal_owner);
  tcase_add_loop_test(tc, test_faultstore_fail_nth_counts_calls, 0, 2);
  tcase_add_loop_test(tc, test_faultstore_failed_append_commit_leaves_nothing,
                      0, 2);
  tcase_add_loop_test(
      tc, test_faultstore_failed_deliver_commit_fails_every_account, 0, 2);
  tcase_add_loop_test(tc, test_faultstore_failed_expunge_keeps_messages, 0, 2);
  tcase_add_test(tc, test_faultstore_fail_random_is_reproducible);
  tcase_add_test(tc, test_faultstore_cancel_drops_and_undoes);
  tcase_add_test(tc, test_faultstore_free_with_pending_ops);
  tcase_add_test(tc, test_faultstore_wraps_a_deferring_store);
  tcase_add_test(tc, test_faultstore_alloc_failures_are_clean);
  suite_add_tcase(s, tc);
  return s;
}
