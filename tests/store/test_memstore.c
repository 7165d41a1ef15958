/*
 * The in-memory store: the conformance suite, then what only the memstore
 * promises (memstore.h), allocation failures, large mailboxes, and the
 * store_call wrappers' own rules.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/memstore.h"
#include "store/conformance.h"
#include "store/store_call.h"
#include "store/store_util.h"
#include "suites.h"
#include "support/alloc_fail.h"

/* ------------------------------------------------------------------ */
/* Conformance backend                                                 */
/* ------------------------------------------------------------------ */

static int ms_create(void *arg, mailproto_store *out, void **handle) {
  (void)arg;
  mailproto_memstore *m = NULL;
  int rc = mailproto_memstore_new(NULL, &m);
  if (rc == 0)
    rc = mailproto_memstore_add_user(m, "alice", "secret");
  if (rc == 0)
    rc = mailproto_memstore_add_user(m, "bob", "hunter2");
  if (rc != 0) {
    mailproto_memstore_free(m);
    return rc;
  }
  mailproto_memstore_store(m, out);
  *handle = m;
  return 0;
}

static void ms_destroy(void *handle) {
  mailproto_memstore_free(handle);
}

/* ------------------------------------------------------------------ */
/* A small synchronous client for the memstore-specific tests          */
/* ------------------------------------------------------------------ */

enum { KEEP = 8 };

typedef struct client {
  mailproto_op op;
  mailproto_store st;
  /* What the last call reported. */
  size_t messages, expunged, mailboxes;
  uint64_t sizes;
  size_t unseen;
  uint32_t uids[KEEP];
  mailproto_datetime dates[KEEP];
  char list[4096]; /* "name attrs\n" per mailbox */
  size_t list_len;
} client;

static int c_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  client *c = op->owner;
  int n = snprintf(c->list + c->list_len, sizeof c->list - c->list_len,
                   "%s %x\n", mb->name, mb->attributes);
  ck_assert_int_gt(n, 0);
  ck_assert_uint_lt(c->list_len + (size_t)n, sizeof c->list);
  c->list_len += (size_t)n;
  c->mailboxes++;
  return 0;
}

static int c_message(mailproto_op *op, const mailproto_message_info *m) {
  client *c = op->owner;
  if (c->messages < KEEP) {
    c->uids[c->messages] = m->uid;
    c->dates[c->messages] = m->internal_date;
  }
  c->messages++;
  c->sizes += m->size;
  c->unseen += !(m->flags & MAILPROTO_FLAG_SEEN);
  return 0;
}

static int c_expunged(mailproto_op *op, uint32_t uid) {
  client *c = op->owner;
  (void)uid;
  c->expunged++;
  return 0;
}

static const mailproto_op_sink client_sink = {
    .mailbox = c_mailbox, .message = c_message, .expunged = c_expunged};

static mailproto_op *cop(client *c) {
  c->messages = c->unseen = c->expunged = c->mailboxes = 0;
  c->sizes = 0;
  c->list_len = 0;
  c->list[0] = '\0';
  mailproto_op_init(&c->op, &client_sink, c);
  return &c->op;
}

static void c_init(client *c, mailproto_memstore *m) {
  memset(c, 0, sizeof *c);
  mailproto_memstore_store(m, &c->st);
}

static int c_auth(client *c, const char *user, const char *pw, void **acct) {
  return mailproto_store_call_authenticate(&c->st, cop(c), 0, "", user, pw,
                                           strlen(pw), acct);
}

static int c_append(client *c, void *acct, const char *box, const char *text,
                    uint32_t flags, const char *kw, uint32_t *uid) {
  const char *kws[1] = {kw};
  mailproto_append_info info = {sizeof info,  flags, kw ? kws : NULL,
                                kw ? 1u : 0u, NULL,  0};
  void *w = NULL;
  uint32_t uv, dummy;
  int rc = mailproto_store_call_append_begin(&c->st, cop(c), 0, acct, box,
                                             &info, &w);
  if (rc != 0)
    return rc;
  size_t len = strlen(text), half = len / 2;
  rc = mailproto_store_call_write(&c->st, cop(c), 0, w, (const uint8_t *)text,
                                  half);
  if (rc == 0)
    rc = mailproto_store_call_write(&c->st, cop(c), 0, w,
                                    (const uint8_t *)text + half, len - half);
  if (rc != 0) {
    mailproto_store_call_abort(&c->st, w);
    return rc;
  }
  return mailproto_store_call_append_commit(&c->st, cop(c), 0, w, &uv,
                                            uid ? uid : &dummy);
}

static int c_status(client *c, void *acct, const char *box,
                    mailproto_mailbox_status *st) {
  return mailproto_store_call_status(&c->st, cop(c), 0, acct, box, st);
}

static int c_open(client *c, void *acct, const char *box, void **h) {
  mailproto_mailbox_status st;
  return mailproto_store_call_open(&c->st, cop(c), 0, acct, box, 0, NULL, NULL,
                                   h, &st);
}

static int c_flags(client *c, void *h, uint32_t first, uint32_t last,
                   mailproto_flag_mode mode, uint32_t flags, const char *kw) {
  mailproto_uid_range r = {first, last};
  const char *kws[1] = {kw};
  return mailproto_store_call_set_flags(&c->st, cop(c), 0, h, &r, 1, mode,
                                        flags, kw ? kws : NULL, kw ? 1 : 0, 0);
}

static int c_expunge(client *c, void *h, uint32_t first, uint32_t last) {
  mailproto_uid_range r = {first, last};
  return mailproto_store_call_expunge(&c->st, cop(c), 0, h, &r, 1, 0);
}

static int c_copy(client *c, void *h, uint32_t first, uint32_t last,
                  const char *dest, int move) {
  mailproto_uid_range r = {first, last};
  uint32_t uv;
  return mailproto_store_call_copy(&c->st, cop(c), 0, h, &r, 1, dest, move,
                                   &uv);
}

static int c_sync(client *c, void *h) {
  mailproto_mailbox_status st;
  return mailproto_store_call_sync(&c->st, cop(c), 0, h, &st);
}

static int c_deliver(client *c, void *const *to, size_t n, const char *text,
                     int all, int *results) {
  void *w = NULL;
  int rc =
      mailproto_store_call_deliver_begin(&c->st, cop(c), 0, to, n, NULL, &w);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_write(&c->st, cop(c), 0, w, (const uint8_t *)text,
                                  strlen(text));
  if (rc != 0) {
    mailproto_store_call_abort(&c->st, w);
    return rc;
  }
  return mailproto_store_call_deliver_commit(&c->st, cop(c), 0, w, all, results,
                                             n);
}

static mailproto_datetime fixed_clock(void *arg) {
  mailproto_datetime dt = {*(int64_t *)arg, 60};
  return dt;
}

static mailproto_memstore *new_store(const mailproto_allocator *a) {
  mailproto_memstore *m = NULL;
  ck_assert_int_eq(mailproto_memstore_new(a, &m), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "bob", "hunter2"), 0);
  return m;
}

/* ------------------------------------------------------------------ */
/* memstore.h promises                                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_memstore_new_rejects_null) {
  ck_assert_int_eq(mailproto_memstore_new(NULL, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_memstore_free(NULL);
  mailproto_store st = {NULL, NULL};
  mailproto_memstore_store(NULL, &st);
  ck_assert_ptr_null(st.ops);
  mailproto_memstore_set_clock(NULL, NULL, NULL);
}
END_TEST

START_TEST(test_add_user_rejects_bad_input) {
  mailproto_memstore *m = NULL;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &m), 0);
  /* U+FF20 and U+FE6B prepare (NFKC) to "@". */
  static const char *const bad[] = {"",
                                    "a@b",
                                    "a\xef\xbc\xa0"
                                    "b",
                                    "a\xef\xb9\xab"
                                    "b",
                                    "tab\tbed",
                                    "del\x7f",
                                    "nl\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(mailproto_memstore_add_user(m, bad[i], "pw"),
                     MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_memstore_add_user(m, NULL, "pw"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "x", NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_memstore_add_user(NULL, "x", "y"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  char longpw[MAILPROTO_SECRET_MAX + 2];
  memset(longpw, 'p', sizeof longpw - 1);
  longpw[sizeof longpw - 1] = '\0';
  ck_assert_int_eq(mailproto_memstore_add_user(m, "long", longpw),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  longpw[MAILPROTO_SECRET_MAX] = '\0';
  ck_assert_int_eq(mailproto_memstore_add_user(m, "long", longpw), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "Carol", "pw"), 0);
  /* Names differing only in case would make recipients ambiguous. */
  ck_assert_int_eq(mailproto_memstore_add_user(m, "carol", "pw2"),
                   MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "Carol", "pw2"),
                   MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "empty-pw", ""), 0);
  client c;
  c_init(&c, m);
  void *a = NULL, *b = NULL;
  ck_assert_int_eq(c_auth(&c, "long", longpw, &b), 0);
  ck_assert_int_eq(c_auth(&c, "empty-pw", "", &a), 0);
  ck_assert_int_eq(c_auth(&c, "Carol", "pw2", &b), MAILPROTO_ERR_AUTH_FAILED);
  /* Every user has an INBOX. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_status(&c, a, "INBOX", &st), 0);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_lookup_recipient_ignores_case_and_domain) {
  mailproto_memstore *m = NULL;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &m), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(m, "Alice", "pw"), 0);
  client c;
  c_init(&c, m);
  void *a = NULL, *b = NULL;
  ck_assert_int_eq(c_auth(&c, "Alice", "pw", &a), 0);
  static const char *const good[] = {"alice@example.org", "ALICE@elsewhere",
                                     "Alice", "aLiCe@"};
  for (size_t i = 0; i < 4; i++) {
    ck_assert_int_eq(
        mailproto_store_call_lookup_recipient(&c.st, cop(&c), 0, good[i], &b),
        0);
    ck_assert_ptr_eq(a, b);
  }
  static const char *const bad[] = {"alic@x", "alicee@x", "@x", "",
                                    "alice@x@y"};
  for (size_t i = 0; i < 5; i++)
    ck_assert_int_eq(
        mailproto_store_call_lookup_recipient(&c.st, cop(&c), 0, bad[i], &b),
        MAILPROTO_ERR_NOT_FOUND);
  /* Login names are exact. */
  ck_assert_int_eq(c_auth(&c, "alice", "pw", &b), MAILPROTO_ERR_AUTH_FAILED);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_set_clock_dates_new_messages) {
  mailproto_memstore *m = new_store(NULL);
  int64_t now = 1000000000;
  mailproto_memstore_set_clock(m, fixed_clock, &now);
  client c;
  c_init(&c, m);
  void *a = NULL, *h = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  ck_assert_int_eq(c_append(&c, a, "INBOX", "x\r\n", 0, NULL, NULL), 0);
  now += 5;
  void *to[1] = {a};
  int results[1];
  ck_assert_int_eq(c_deliver(&c, to, 1, "y\r\n", 1, results), 0);
  ck_assert_int_eq(results[0], 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h), 0);
  ck_assert_uint_eq(c.messages, 2);
  ck_assert_int_eq(c.dates[0].utc, 1000000000);
  ck_assert_int_eq(c.dates[0].tz_minutes, 60);
  ck_assert_int_eq(c.dates[1].utc, 1000000005);
  mailproto_store_call_close(&c.st, h);
  /* NULL restores the system clock. */
  mailproto_memstore_set_clock(m, NULL, NULL);
  ck_assert_int_eq(c_append(&c, a, "INBOX", "z\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h), 0);
  ck_assert_int_gt(c.dates[2].utc, 1500000000);
  ck_assert_int_eq(c.dates[2].tz_minutes, 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_memstore_empty_message) {
  mailproto_memstore *m = new_store(NULL);
  client c;
  c_init(&c, m);
  void *a = NULL, *w = NULL, *h = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  uint32_t uv, uid;
  ck_assert_int_eq(mailproto_store_call_append_begin(&c.st, cop(&c), 0, a,
                                                     "INBOX", &info, &w),
                   0);
  ck_assert_int_eq(
      mailproto_store_call_append_commit(&c.st, cop(&c), 0, w, &uv, &uid), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h), 0);
  ck_assert_uint_eq(c.messages, 1);
  ck_assert_uint_eq(c.sizes, 0);
  const uint8_t *data;
  size_t len = 99;
  ck_assert_int_eq(
      mailproto_store_call_read(&c.st, cop(&c), 0, h, uid, 0, 10, &data, &len),
      0);
  ck_assert_uint_eq(len, 0);
  /* A UID that never existed is not "expunged". */
  ck_assert_int_eq(mailproto_store_call_read(&c.st, cop(&c), 0, h, uid + 1, 0,
                                             10, &data, &len),
                   MAILPROTO_ERR_NOT_FOUND);
  mailproto_store_call_close(&c.st, h);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_memstore_rejects_invalid_arguments) {
  mailproto_memstore *m = new_store(NULL);
  client c;
  c_init(&c, m);
  void *a = NULL, *h = NULL, *w = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h), 0);
  mailproto_mailbox_status st;
  const mailproto_store_ops *ops = c.st.ops;
  ck_assert_int_eq(ops->status(m, cop(&c), NULL, "INBOX", &st),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ops->status(m, cop(&c), a, NULL, &st),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ops->list(m, cop(&c), a, "*", 0x80),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(ops->create(m, cop(&c), a, "x", MAILPROTO_MBOX_NOSELECT),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      ops->open(m, cop(&c), a, "INBOX", 0x100, NULL, NULL, &w, &st),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_uid_range bad = {5, 4}, ok = {1, 1};
  ck_assert_int_eq(c_flags(&c, h, 1, 1, (mailproto_flag_mode)7, 0, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      c_flags(&c, h, 1, 1, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_RECENT, NULL),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_store_call_set_flags(&c.st, cop(&c), 0, h, &bad, 1,
                                                  MAILPROTO_FLAGS_ADD, 0, NULL,
                                                  0, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      mailproto_store_call_expunge(&c.st, cop(&c), 0, h, NULL, 1, 0),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      mailproto_store_call_expunge(&c.st, cop(&c), 0, h, &ok, 1, 0x10),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  const char *nullkw[1] = {NULL};
  ck_assert_int_eq(mailproto_store_call_set_flags(&c.st, cop(&c), 0, h, &ok, 1,
                                                  MAILPROTO_FLAGS_ADD, 0,
                                                  nullkw, 1, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_append_info info = {
      sizeof info, MAILPROTO_FLAG_RECENT, NULL, 0, NULL, 0};
  ck_assert_int_eq(mailproto_store_call_append_begin(&c.st, cop(&c), 0, a,
                                                     "INBOX", &info, &w),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_datetime baddate = {0, 1440};
  info.flags = 0;
  info.internal_date = &baddate;
  ck_assert_int_eq(mailproto_store_call_append_begin(&c.st, cop(&c), 0, a,
                                                     "INBOX", &info, &w),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  void *none[1] = {NULL};
  ck_assert_int_eq(
      mailproto_store_call_deliver_begin(&c.st, cop(&c), 0, none, 1, NULL, &w),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      mailproto_store_call_deliver_begin(&c.st, cop(&c), 0, &a, 0, NULL, &w),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  /* A delivery writer cannot be committed as an append, and vice versa;
   * either way the writer is gone. */
  ck_assert_int_eq(
      mailproto_store_call_deliver_begin(&c.st, cop(&c), 0, &a, 1, NULL, &w),
      0);
  uint32_t uv, uid;
  ck_assert_int_eq(
      mailproto_store_call_append_commit(&c.st, cop(&c), 0, w, &uv, &uid),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  info.internal_date = NULL;
  ck_assert_int_eq(mailproto_store_call_append_begin(&c.st, cop(&c), 0, a,
                                                     "INBOX", &info, &w),
                   0);
  int results[1];
  ck_assert_int_eq(
      mailproto_store_call_deliver_commit(&c.st, cop(&c), 0, w, 1, results, 1),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(c_status(&c, a, "INBOX", &st), 0);
  ck_assert_uint_eq(st.messages, 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_memstore_free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memstore behaviour store.h leaves open                              */
/* ------------------------------------------------------------------ */

START_TEST(test_memstore_open_mailbox_deleted_or_renamed) {
  mailproto_memstore *m = new_store(NULL);
  client c;
  c_init(&c, m);
  void *a = NULL, *h1 = NULL, *h2 = NULL, *h3 = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  ck_assert_int_eq(mailproto_store_call_create(&c.st, cop(&c), 0, a, "old", 0),
                   0);
  ck_assert_int_eq(
      mailproto_store_call_create(&c.st, cop(&c), 0, a, "old/kid", 0), 0);
  ck_assert_int_eq(c_append(&c, a, "old", "1\r\n", 0, "$K", NULL), 0);
  ck_assert_int_eq(c_append(&c, a, "old/kid", "2\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_open(&c, a, "old", &h1), 0);
  ck_assert_int_eq(c_open(&c, a, "old/kid", &h2), 0);
  uint32_t kid_uid = c.uids[0];
  /* Renamed away: the handles see their messages go; the new names have
   * them, with the keyword table. */
  ck_assert_int_eq(
      mailproto_store_call_rename(&c.st, cop(&c), 0, a, "old", "new"), 0);
  ck_assert_int_eq(c_sync(&c, h1), 0);
  ck_assert_uint_eq(c.expunged, 1);
  ck_assert_int_eq(c_sync(&c, h2), 0);
  ck_assert_uint_eq(c.expunged, 1);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(mailproto_store_call_read(&c.st, cop(&c), 0, h2, kid_uid, 0,
                                             9, &data, &len),
                   MAILPROTO_ERR_EXPUNGED);
  ck_assert_int_eq(c_open(&c, a, "new", &h3), 0);
  ck_assert_uint_eq(c.messages, 1);
  mailproto_store_call_close(&c.st, h3);
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_status(&c, a, "new/kid", &st), 0);
  ck_assert_uint_eq(st.messages, 1);
  /* Changes on the old handles touch nothing. */
  ck_assert_int_eq(
      c_flags(&c, h1, 1, UINT32_MAX, MAILPROTO_FLAGS_ADD, 1, "$Other"), 0);
  ck_assert_int_eq(c_expunge(&c, h1, 1, UINT32_MAX), 0);
  ck_assert_int_eq(c_copy(&c, h1, 1, UINT32_MAX, "INBOX", 1), 0);
  mailproto_store_call_close(&c.st, h1);
  mailproto_store_call_close(&c.st, h2);
  /* Deleted while open: same story; the handle outlives the mailbox. */
  ck_assert_int_eq(c_open(&c, a, "new", &h1), 0);
  ck_assert_int_eq(mailproto_store_call_delete(&c.st, cop(&c), 0, a, "new"), 0);
  ck_assert_int_eq(c_sync(&c, h1), 0);
  ck_assert_uint_eq(c.expunged, 1);
  ck_assert_int_eq(c_status(&c, a, "new", &st), MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(mailproto_store_call_create(&c.st, cop(&c), 0, a, "new", 0),
                   0);
  ck_assert_int_eq(c_append(&c, a, "new", "fresh\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_sync(&c, h1), 0);
  ck_assert_uint_eq(c.messages, 0);
  mailproto_store_call_close(&c.st, h1);
  /* INBOX renamed while open: INBOX handles see the messages leave. */
  ck_assert_int_eq(c_append(&c, a, "INBOX", "in\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h1), 0);
  ck_assert_int_eq(
      mailproto_store_call_rename(&c.st, cop(&c), 0, a, "INBOX", "Saved"), 0);
  ck_assert_int_eq(c_sync(&c, h1), 0);
  ck_assert_uint_gt(c.expunged, 0);
  ck_assert_int_eq(c_append(&c, a, "INBOX", "again\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_sync(&c, h1), 0);
  ck_assert_uint_eq(c.messages, 1);
  mailproto_store_call_close(&c.st, h1);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_memstore_read_survives_expunge) {
  mailproto_memstore *m = new_store(NULL);
  client c;
  c_init(&c, m);
  void *a = NULL, *h1 = NULL, *h2 = NULL;
  uint32_t uid;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  ck_assert_int_eq(
      c_append(&c, a, "INBOX", "precious bytes\r\n", 0, NULL, &uid), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h1), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h2), 0);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(
      mailproto_store_call_read(&c.st, cop(&c), 0, h1, uid, 0, 64, &data, &len),
      0);
  /* Another session expunges it; h1's bytes stay valid until its next
   * read (ASan would catch a use after free). */
  ck_assert_int_eq(c_expunge(&c, h2, uid, uid), 0);
  ck_assert_uint_eq(len, 16);
  ck_assert_int_eq(memcmp(data, "precious bytes\r\n", 16), 0);
  mailproto_store_call_close(&c.st, h2);
  mailproto_store_call_close(&c.st, h1);
  mailproto_memstore_free(m);
}
END_TEST

START_TEST(test_memstore_change_log_stays_bounded) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_memstore *m = new_store(&af.allocator);
  client c;
  c_init(&c, m);
  void *a = NULL, *h1 = NULL, *h2 = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(c_append(&c, a, "INBOX", "m\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h1), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h2), 0);
  size_t early = 0;
  for (int round = 0; round < 500; round++) {
    mailproto_flag_mode mode =
        round % 2 ? MAILPROTO_FLAGS_REMOVE : MAILPROTO_FLAGS_ADD;
    ck_assert_int_eq(
        c_flags(&c, h1, 1, UINT32_MAX, mode, MAILPROTO_FLAG_SEEN, NULL), 0);
    ck_assert_int_eq(c_sync(&c, h2), 0);
    ck_assert_uint_eq(c.messages, 20);
    ck_assert_int_eq(c_sync(&c, h1), 0);
    if (round == 10)
      early = af.live_bytes;
  }
  /* Once every handle has seen a change it is forgotten. */
  ck_assert_uint_eq(af.live_bytes, early);
  mailproto_store_call_close(&c.st, h1);
  mailproto_store_call_close(&c.st, h2);
  mailproto_memstore_free(m);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

/* A handle that never syncs (a POP3 session holding the maildrop, an IMAP
 * session whose client stopped reading) must not let another session
 * grow the log without bound by re-flagging the same messages: the lagging
 * handle only needs each message's latest change. */
START_TEST(test_memstore_change_log_bounded_with_lagging_handle) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_memstore *m = new_store(&af.allocator);
  client c;
  c_init(&c, m);
  void *a = NULL, *h1 = NULL, *h2 = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  for (int i = 0; i < 20; i++)
    ck_assert_int_eq(c_append(&c, a, "INBOX", "m\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h1), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h2), 0);
  /* One message goes, so the log also holds an expunge to keep. */
  ck_assert_int_eq(c_expunge(&c, h1, 20, 20), 0);
  size_t early = 0;
  for (int round = 0; round < 500; round++) {
    mailproto_flag_mode mode =
        round % 2 ? MAILPROTO_FLAGS_REMOVE : MAILPROTO_FLAGS_ADD;
    ck_assert_int_eq(
        c_flags(&c, h1, 1, UINT32_MAX, mode, MAILPROTO_FLAG_SEEN, NULL), 0);
    ck_assert_int_eq(c_sync(&c, h1), 0);
    if (round == 10)
      early = af.live_bytes;
  }
  ck_assert_uint_eq(af.live_bytes, early);
  /* The lagging handle still learns everything, each message once. */
  ck_assert_int_eq(c_sync(&c, h2), 0);
  ck_assert_uint_eq(c.expunged, 1);
  ck_assert_uint_eq(c.messages, 19);
  ck_assert_uint_eq(c.unseen, 19);
  mailproto_store_call_close(&c.st, h1);
  mailproto_store_call_close(&c.st, h2);
  mailproto_memstore_free(m);
  ck_assert_int_eq(af.live, 0);
}
END_TEST

START_TEST(test_memstore_large_mailbox) {
  enum { N = 100000 };
  mailproto_memstore *m = new_store(NULL);
  client c;
  c_init(&c, m);
  void *a = NULL, *h = NULL, *h2 = NULL;
  ck_assert_int_eq(c_auth(&c, "alice", "secret", &a), 0);
  for (int i = 0; i < N; i++)
    ck_assert_int_eq(c_append(&c, a, "INBOX", "Subject: s\r\n\r\nb\r\n", 0,
                              i % 7 ? NULL : "$Seventh", NULL),
                     0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h), 0);
  ck_assert_uint_eq(c.messages, N);
  ck_assert_int_eq(c_open(&c, a, "INBOX", &h2), 0);
  /* Mark every odd UID deleted with one call of many ranges. */
  mailproto_uid_range *r = calloc(N / 2, sizeof *r);
  ck_assert_ptr_nonnull(r);
  for (uint32_t i = 0; i < N / 2; i++)
    r[i].first = r[i].last = 2 * i + 1;
  ck_assert_int_eq(mailproto_store_call_set_flags(
                       &c.st, cop(&c), 0, h, r, N / 2, MAILPROTO_FLAGS_ADD,
                       MAILPROTO_FLAG_DELETED, NULL, 0, 0),
                   0);
  ck_assert_int_eq(mailproto_store_call_expunge(&c.st, cop(&c), 0, h, r, N / 2,
                                                MAILPROTO_EXPUNGE_ONLY_DELETED),
                   0);
  free(r);
  ck_assert_int_eq(c_sync(&c, h2), 0);
  ck_assert_uint_eq(c.expunged, N / 2);
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_status(&c, a, "INBOX", &st), 0);
  ck_assert_uint_eq(st.messages, N / 2);
  ck_assert_uint_eq(st.deleted, 0);
  /* Single-message operations on the big mailbox. */
  size_t touched = 0;
  for (uint32_t uid = 2; uid < N; uid += 998, touched++) {
    const uint8_t *data;
    size_t len;
    ck_assert_int_eq(mailproto_store_call_read(&c.st, cop(&c), 0, h, uid, 0,
                                               100, &data, &len),
                     0);
    ck_assert_uint_eq(len, 17);
    ck_assert_int_eq(c_flags(&c, h, uid, uid, MAILPROTO_FLAGS_ADD,
                             MAILPROTO_FLAG_SEEN, NULL),
                     0);
  }
  ck_assert_int_eq(c_sync(&c, h2), 0);
  ck_assert_uint_eq(c.messages, touched);
  ck_assert_int_eq(mailproto_store_call_create(&c.st, cop(&c), 0, a, "Big", 0),
                   0);
  ck_assert_int_eq(c_copy(&c, h, 1, UINT32_MAX, "Big", 1), 0);
  ck_assert_int_eq(c_status(&c, a, "Big", &st), 0);
  ck_assert_uint_eq(st.messages, N / 2);
  ck_assert_int_eq(c_sync(&c, h2), 0);
  ck_assert_uint_eq(c.expunged, N / 2);
  mailproto_store_call_close(&c.st, h);
  mailproto_store_call_close(&c.st, h2);
  mailproto_memstore_free(m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failures                                                 */
/* ------------------------------------------------------------------ */

/* Everything a client can observe without allocating in the store. */
static void snapshot(client *c, void *const *accts, char *out, size_t size) {
  size_t used = 0;
  out[0] = '\0';
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(
        mailproto_store_call_list(&c->st, cop(c), 0, accts[i], "*", 0), 0);
    char names[4096];
    memcpy(names, c->list, c->list_len + 1);
    int n = snprintf(out + used, size - used, "%s", names);
    used += (size_t)n;
    for (char *line = names, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
      *nl = '\0';
      *strrchr(line, ' ') = '\0';
      mailproto_mailbox_status st;
      if (c_status(c, accts[i], line, &st) != 0)
        continue;
      n = snprintf(out + used, size - used, "%s: %u %u %u %u %u %u %llu %llu\n",
                   line, st.messages, st.recent, st.unseen, st.deleted,
                   st.uidnext, st.uidvalidity, (unsigned long long)st.size,
                   (unsigned long long)st.highest_modseq);
      used += (size_t)n;
      ck_assert_uint_lt(used, size);
    }
    ck_assert_int_eq(mailproto_store_call_list(&c->st, cop(c), 0, accts[i], "*",
                                               MAILPROTO_LIST_SUBSCRIBED),
                     0);
    n = snprintf(out + used, size - used, "subs:%s", c->list);
    used += (size_t)n;
    ck_assert_uint_lt(used, size);
  }
}

/* Every selectable mailbox: what open reports agrees with status. */
static void check_consistent(client *c, void *const *accts) {
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(
        mailproto_store_call_list(&c->st, cop(c), 0, accts[i], "*", 0), 0);
    char names[4096];
    memcpy(names, c->list, c->list_len + 1);
    for (char *line = names, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
      *nl = '\0';
      *strrchr(line, ' ') = '\0';
      mailproto_mailbox_status st, st2;
      void *h = NULL;
      if (c_status(c, accts[i], line, &st) != 0)
        continue;
      ck_assert_int_eq(mailproto_store_call_open(&c->st, cop(c), 0, accts[i],
                                                 line, MAILPROTO_OPEN_READONLY,
                                                 NULL, NULL, &h, &st2),
                       0);
      ck_assert_uint_eq(c->messages, st.messages);
      ck_assert_uint_eq(c->sizes, st.size);
      ck_assert_uint_eq(c->unseen, st.unseen);
      ck_assert_uint_eq(st2.messages, st.messages);
      mailproto_store_call_close(&c->st, h);
    }
  }
}

typedef struct scenario {
  alloc_fail *af;
  client c;
  void *acct[2];
  void *h[4];
  char before[8192], after[8192];
} scenario;

/* Runs one step; on NOMEM checks that it changed nothing the snapshot
 * can see, then reports the failure to stop the scenario. */
#define STEP(sc, expr)                                                         \
  do {                                                                         \
    unsigned long fail_at_ = (sc)->af->fail_at;                                \
    (sc)->af->fail_at = 0;                                                     \
    snapshot(&(sc)->c, (sc)->acct, (sc)->before, sizeof(sc)->before);          \
    (sc)->af->fail_at = fail_at_;                                              \
    int rc_ = (expr);                                                          \
    if (rc_ == MAILPROTO_ERR_NOMEM) {                                          \
      (sc)->af->fail_at = 0;                                                   \
      snapshot(&(sc)->c, (sc)->acct, (sc)->after, sizeof(sc)->after);          \
      ck_assert_str_eq((sc)->before, (sc)->after);                             \
      return rc_;                                                              \
    }                                                                          \
    ck_assert_msg(rc_ == 0, "step %s: %d", #expr, rc_);                        \
  } while (0)

static int run_scenario(scenario *sc) {
  client *c = &sc->c;
  void *alice = sc->acct[0];
  STEP(sc, mailproto_store_call_create(&c->st, cop(c), 0, alice, "a/b/c", 0));
  STEP(sc, mailproto_store_call_create(&c->st, cop(c), 0, alice, "a/b", 0));
  STEP(sc, mailproto_store_call_create(&c->st, cop(c), 0, alice, "Sent",
                                       MAILPROTO_MBOX_SPECIAL_SENT));
  STEP(sc, mailproto_store_call_subscribe(&c->st, cop(c), 0, alice, "a", 1));
  STEP(sc, mailproto_store_call_subscribe(&c->st, cop(c), 0, alice, "gone", 1));
  STEP(sc,
       c_append(c, alice, "INBOX", "one\r\n", MAILPROTO_FLAG_SEEN, "$A", NULL));
  STEP(sc, c_append(c, alice, "INBOX", "two\nlines\n", 0, "$B", NULL));
  STEP(sc, c_append(c, alice, "a/b", "three\r\n", 0, NULL, NULL));
  int results[2];
  STEP(sc, c_deliver(c, sc->acct, 2, "deliver\r\n", 1, results));
  STEP(sc, mailproto_store_call_open(&c->st, cop(c), 0, alice, "INBOX", 0, NULL,
                                     NULL, &sc->h[0],
                                     &(mailproto_mailbox_status){0}));
  STEP(sc, mailproto_store_call_open(&c->st, cop(c), 0, alice, "INBOX", 0, NULL,
                                     NULL, &sc->h[1],
                                     &(mailproto_mailbox_status){0}));
  STEP(sc,
       mailproto_store_call_open(&c->st, cop(c), 0, alice, "a/b", 0, NULL, NULL,
                                 &sc->h[2], &(mailproto_mailbox_status){0}));
  STEP(sc, mailproto_store_call_open(&c->st, cop(c), 0, alice, "Sent", 0, NULL,
                                     NULL, &sc->h[3],
                                     &(mailproto_mailbox_status){0}));
  STEP(sc, c_flags(c, sc->h[0], 1, UINT32_MAX, MAILPROTO_FLAGS_ADD,
                   MAILPROTO_FLAG_FLAGGED, "$New"));
  STEP(sc, c_sync(c, sc->h[1]));
  STEP(sc, c_copy(c, sc->h[0], 1, 2, "a/b", 0));
  STEP(sc, c_copy(c, sc->h[0], 1, 1, "Sent", 1));
  STEP(sc, c_flags(c, sc->h[1], 2, 2, MAILPROTO_FLAGS_REPLACE,
                   MAILPROTO_FLAG_DELETED, "$Gone"));
  STEP(sc, c_expunge(c, sc->h[1], 2, 2));
  STEP(sc, c_sync(c, sc->h[0]));
  STEP(sc, c_sync(c, sc->h[2]));
  STEP(sc, mailproto_store_call_rename(&c->st, cop(c), 0, alice, "a", "z/y"));
  STEP(sc,
       mailproto_store_call_rename(&c->st, cop(c), 0, alice, "INBOX", "Old"));
  STEP(sc, mailproto_store_call_delete(&c->st, cop(c), 0, alice, "Sent"));
  STEP(sc, mailproto_store_call_delete(&c->st, cop(c), 0, alice, "z/y/b"));
  for (int i = 0; i < 4; i++)
    STEP(sc, c_sync(c, sc->h[i]));
  STEP(sc, mailproto_store_call_subscribe(&c->st, cop(c), 0, alice, "a", 0));
  return 0;
}

START_TEST(test_memstore_alloc_failures_leave_store_consistent) {
  int completed = 0;
  for (unsigned long n = 1; n < 20000 && !completed; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_memstore *m = NULL;
    int rc = mailproto_memstore_new(&af.allocator, &m);
    if (rc == 0)
      rc = mailproto_memstore_add_user(m, "alice", "secret");
    if (rc == 0)
      rc = mailproto_memstore_add_user(m, "bob", "hunter2");
    if (rc != 0) {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      if (m) {
        /* A user that failed to be added is not there at all. */
        client c;
        c_init(&c, m);
        void *x;
        af.fail_at = 0;
        int bob = c_auth(&c, "bob", "hunter2", &x);
        ck_assert(bob == 0 || bob == MAILPROTO_ERR_AUTH_FAILED);
        mailproto_memstore_free(m);
      }
      ck_assert_int_eq(af.live, 0);
      continue;
    }
    scenario *sc = calloc(1, sizeof *sc);
    ck_assert_ptr_nonnull(sc);
    sc->af = &af;
    c_init(&sc->c, m);
    ck_assert_int_eq(c_auth(&sc->c, "alice", "secret", &sc->acct[0]), 0);
    ck_assert_int_eq(c_auth(&sc->c, "bob", "hunter2", &sc->acct[1]), 0);
    rc = run_scenario(sc);
    af.fail_at = 0;
    if (rc == 0)
      completed = !alloc_fail_triggered(&af);
    check_consistent(&sc->c, sc->acct);
    for (int i = 0; i < 4; i++)
      mailproto_store_call_close(&sc->c.st, sc->h[i]);
    mailproto_memstore_free(m);
    free(sc);
    ck_assert_msg(af.live == 0, "leak after failing allocation %lu", n);
  }
  ck_assert(completed);
}
END_TEST

START_TEST(test_memstore_alloc_failures_in_lmtp_delivery) {
  int completed = 0;
  for (unsigned long n = 1; n < 1000 && !completed; n++) {
    alloc_fail af;
    alloc_fail_init(&af, 0);
    mailproto_memstore *m = new_store(&af.allocator);
    client c;
    c_init(&c, m);
    void *to[2];
    ck_assert_int_eq(c_auth(&c, "alice", "secret", &to[0]), 0);
    ck_assert_int_eq(c_auth(&c, "bob", "hunter2", &to[1]), 0);
    /* Grow bob's INBOX so the delivery's growth fails there first. */
    for (int i = 0; i < 8; i++)
      ck_assert_int_eq(c_append(&c, to[1], "INBOX", "x\r\n", 0, NULL, NULL), 0);
    af.fail_at = af.calls + n;
    int results[2] = {1, 1};
    int rc = c_deliver(&c, to, 2, "hello\r\n", 0, results);
    completed = !alloc_fail_triggered(&af);
    af.fail_at = 0;
    mailproto_mailbox_status st[2];
    ck_assert_int_eq(c_status(&c, to[0], "INBOX", &st[0]), 0);
    ck_assert_int_eq(c_status(&c, to[1], "INBOX", &st[1]), 0);
    if (rc == 0) {
      ck_assert_uint_eq(st[0].messages, results[0] == 0 ? 1 : 0);
      ck_assert_uint_eq(st[1].messages, results[1] == 0 ? 9 : 8);
      ck_assert(results[0] == 0 || results[1] == 0);
    } else {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      ck_assert_uint_eq(st[0].messages, 0);
      ck_assert_uint_eq(st[1].messages, 8);
    }
    mailproto_memstore_free(m);
    ck_assert_int_eq(af.live, 0);
  }
  ck_assert(completed);
}
END_TEST

/* ------------------------------------------------------------------ */
/* store_call wrappers                                                 */
/* ------------------------------------------------------------------ */

static int fake_calls;

static int fake_status(void *ctx, mailproto_op *op, void *account,
                       const char *name, mailproto_mailbox_status *st) {
  (void)ctx;
  (void)account;
  (void)name;
  fake_calls++;
  ck_assert_int_eq(op->state, MAILPROTO_OP_RUNNING);
  ck_assert_uint_eq(st->struct_size, sizeof *st);
  ck_assert_uint_eq(st->messages, 0);
  return 7; /* a backend bug: positive but not DEFERRED */
}

static int fake_create(void *ctx, mailproto_op *op, void *account,
                       const char *name, unsigned special) {
  (void)ctx;
  (void)op;
  (void)account;
  (void)name;
  (void)special;
  fake_calls++;
  return MAILPROTO_DEFERRED;
}

static int fake_list(void *ctx, mailproto_op *op, void *account,
                     const char *pattern, unsigned flags) {
  (void)ctx;
  (void)op;
  (void)account;
  (void)pattern;
  (void)flags;
  fake_calls++;
  return MAILPROTO_ERR_IO;
}

static void fake_cancel(void *ctx, mailproto_op *op) {
  (void)ctx;
  (void)op;
  fake_calls += 100;
}

static int fake_deliver_commit(void *ctx, mailproto_op *op, void *writer,
                               int all, int *results) {
  (void)ctx;
  (void)op;
  (void)writer;
  (void)all;
  results[0] = 0; /* forgets results[1] */
  return 0;
}

static int complete_count;
static int count_complete(mailproto_op *op, int status) {
  (void)op;
  (void)status;
  complete_count++;
  return 0;
}

START_TEST(test_store_call_maps_hook_returns) {
  mailproto_store_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.struct_size = sizeof ops;
  ops.status = fake_status;
  ops.create = fake_create;
  ops.list = fake_list;
  ops.cancel = fake_cancel;
  ops.deliver_commit = fake_deliver_commit;
  mailproto_store st = {&ops, NULL};
  static const mailproto_op_sink sink = {.complete = count_complete};
  mailproto_op op;
  mailproto_op_init(&op, &sink, NULL);
  mailproto_mailbox_status status;
  memset(&status, 0xab, sizeof status);
  fake_calls = 0;
  ck_assert_int_eq(mailproto_store_call_status(&st, &op, 3, NULL, "x", &status),
                   MAILPROTO_ERR_INTERNAL);
  ck_assert_int_eq(op.state, MAILPROTO_OP_IDLE);
  ck_assert_int_eq(op.kind, 3);
  ck_assert_int_eq(mailproto_store_call_list(&st, &op, 4, NULL, "*", 0),
                   MAILPROTO_ERR_IO);
  ck_assert_int_eq(op.state, MAILPROTO_OP_IDLE);
  /* A deferred op is pending until completed; no second call meanwhile. */
  ck_assert_int_eq(mailproto_store_call_create(&st, &op, 5, NULL, "x", 0),
                   MAILPROTO_DEFERRED);
  ck_assert(mailproto_op_pending(&op));
  ck_assert_int_eq(mailproto_store_call_list(&st, &op, 4, NULL, "*", 0),
                   MAILPROTO_ERR_STATE);
  complete_count = 0;
  ck_assert_int_eq(mailproto_op_complete(&op, 0), 0);
  ck_assert_int_eq(complete_count, 1);
  ck_assert_int_eq(mailproto_op_complete(&op, 0), MAILPROTO_ERR_STATE);
  /* Cancel: calls the hook and frees the op for reuse. */
  ck_assert_int_eq(mailproto_store_call_create(&st, &op, 5, NULL, "x", 0),
                   MAILPROTO_DEFERRED);
  mailproto_store_call_cancel(&st, &op);
  ck_assert_int_eq(op.state, MAILPROTO_OP_IDLE);
  ck_assert_int_eq(fake_calls, 3 + 1 + 100);
  mailproto_store_call_cancel(&st, &op); /* not pending: nothing */
  ck_assert_int_eq(fake_calls, 104);
  ck_assert_int_eq(mailproto_store_call_create(&st, NULL, 5, NULL, "x", 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  /* Results the backend forgot read as failures. */
  int results[2] = {5, 5};
  ck_assert_int_eq(
      mailproto_store_call_deliver_commit(&st, &op, 1, NULL, 1, results, 2), 0);
  ck_assert_int_eq(results[0], 0);
  ck_assert_int_eq(results[1], MAILPROTO_ERR_INTERNAL);
}
END_TEST

START_TEST(test_store_call_missing_hooks_unsupported) {
  /* A table from an "older header": it ends before `status`. */
  mailproto_store_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.struct_size = offsetof(mailproto_store_ops, status);
  ops.status = fake_status; /* beyond struct_size: must not be called */
  mailproto_store st = {&ops, NULL};
  mailproto_op op;
  mailproto_op_init(&op, NULL, NULL);
  mailproto_mailbox_status status;
  void *p = (void *)1;
  fake_calls = 0;
  ck_assert_int_eq(mailproto_store_call_status(&st, &op, 0, NULL, "x", &status),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(fake_calls, 0);
  ck_assert_uint_eq(status.struct_size, sizeof status);
  ck_assert_int_eq(
      mailproto_store_call_authenticate(&st, &op, 0, "", "u", "p", 1, &p),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_ptr_null(p);
  char secret[4];
  size_t len = 9;
  ck_assert_int_eq(
      mailproto_store_call_lookup_secret(&st, &op, 0, "u", secret, 4, &len, &p),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(mailproto_store_call_lookup_recipient(&st, &op, 0, "u", &p),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_list(&st, &op, 0, NULL, "*", 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_create(&st, &op, 0, NULL, "x", 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_delete(&st, &op, 0, NULL, "x"),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_rename(&st, &op, 0, NULL, "x", "y"),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_subscribe(&st, &op, 0, NULL, "x", 1),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_open(&st, &op, 0, NULL, "x", 0, NULL,
                                             NULL, &p, &status),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_sync(&st, &op, 0, p, &status),
                   MAILPROTO_ERR_UNSUPPORTED);
  const uint8_t *data = (const uint8_t *)"x";
  ck_assert_int_eq(
      mailproto_store_call_read(&st, &op, 0, p, 1, 0, 1, &data, &len),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_ptr_null(data);
  mailproto_uid_range r = {1, 1};
  ck_assert_int_eq(mailproto_store_call_set_flags(&st, &op, 0, p, &r, 1,
                                                  MAILPROTO_FLAGS_ADD, 0, NULL,
                                                  0, 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_expunge(&st, &op, 0, p, &r, 1, 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  uint32_t uv = 5, uid = 5;
  ck_assert_int_eq(
      mailproto_store_call_copy(&st, &op, 0, p, &r, 1, "x", 0, &uv),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_uint_eq(uv, 0);
  ck_assert_int_eq(
      mailproto_store_call_append_begin(&st, &op, 0, NULL, "x", NULL, &p),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(
      mailproto_store_call_deliver_begin(&st, &op, 0, &p, 1, NULL, &p),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_store_call_write(&st, &op, 0, p, data, 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(
      mailproto_store_call_append_commit(&st, &op, 0, p, &uv, &uid),
      MAILPROTO_ERR_UNSUPPORTED);
  int results[1] = {0};
  ck_assert_int_eq(
      mailproto_store_call_deliver_commit(&st, &op, 0, p, 1, results, 1),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(results[0], MAILPROTO_ERR_UNSUPPORTED);
  /* The void hooks are skipped quietly. */
  mailproto_store_call_release_account(&st, p);
  mailproto_store_call_close(&st, p);
  mailproto_store_call_abort(&st, p);
  /* No store at all. */
  mailproto_store none = {NULL, NULL};
  ck_assert_int_eq(
      mailproto_store_call_status(&none, &op, 0, NULL, "x", &status),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(
      mailproto_store_call_status(NULL, &op, 0, NULL, "x", &status),
      MAILPROTO_ERR_UNSUPPORTED);
  mailproto_store_call_close(NULL, p);
  ck_assert_int_eq(op.state, MAILPROTO_OP_IDLE);
}
END_TEST

/* ------------------------------------------------------------------ */
/* store_util: what both backends share                                */
/* ------------------------------------------------------------------ */

/* The RFC822.SIZE of `text` counted in one piece, two pieces split at
 * every point, and byte by byte: always what the sessions send. */
START_TEST(test_mailproto_store_size_add_any_split) {
  static const char text[] = "\r\nA\r\rB\n\nC\r\n\rD\n\r\r\n\r";
  const uint8_t *p = (const uint8_t *)text;
  size_t n = strlen(text);
  /* Three CRLF pairs; five bare CRs (one at the end) and three bare LFs. */
  uint64_t want = 0;
  for (size_t i = 0; i < n; i++)
    want += text[i] == '\n' && i > 0 && text[i - 1] == '\r' ? 0
            : text[i] == '\r' || text[i] == '\n'            ? 2
                                                            : 1;
  for (size_t cut = 0; cut <= n; cut++) {
    mailproto_store_size z = {0, 0, 0};
    mailproto_store_size_add(&z, p, cut);
    mailproto_store_size_add(&z, p + cut, n - cut);
    ck_assert_uint_eq(z.octets, n);
    ck_assert_msg(mailproto_store_size_total(&z) == want, "cut %zu", cut);
  }
  mailproto_store_size z = {0, 0, 0};
  for (size_t i = 0; i < n; i++)
    mailproto_store_size_add(&z, p + i, 1);
  ck_assert_uint_eq(mailproto_store_size_total(&z), want);
  ck_assert_uint_eq(want, n + 8);
  mailproto_store_size empty = {0, 0, 0};
  mailproto_store_size_add(&empty, NULL, 0);
  ck_assert_uint_eq(mailproto_store_size_total(&empty), 0);
}
END_TEST

START_TEST(test_mailproto_store_password_check_cases) {
  const char *stored = "secret";
  ck_assert_int_eq(
      mailproto_store_password_check(NULL, "alice", stored, 6, "secret", 6), 0);
  ck_assert_int_eq(
      mailproto_store_password_check("", "alice", stored, 6, "secret", 6), 0);
  ck_assert_int_eq(
      mailproto_store_password_check("alice", "alice", stored, 6, "secret", 6),
      0);
  static const struct {
    const char *pw;
    size_t len;
  } bad[] = {{"secreT", 6},   {"secre", 5}, {"secret!", 7},
             {"secret\0", 7}, {"", 0},      {"xsecret", 7}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(mailproto_store_password_check(NULL, "alice", stored, 6,
                                                    bad[i].pw, bad[i].len),
                     MAILPROTO_ERR_AUTH_FAILED);
  /* Proxy authorisation and unknown users. */
  ck_assert_int_eq(
      mailproto_store_password_check("bob", "alice", stored, 6, "secret", 6),
      MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(
      mailproto_store_password_check(NULL, "nobody", NULL, 0, "", 0),
      MAILPROTO_ERR_AUTH_FAILED);
}
END_TEST

START_TEST(test_mailproto_store_user_is_and_local_part) {
  ck_assert_int_eq(mailproto_store_user_is("alice", "alice", 5, 0), 1);
  ck_assert_int_eq(mailproto_store_user_is("alice", "ALICE", 5, 0), 0);
  ck_assert_int_eq(mailproto_store_user_is("alice", "ALICE", 5, 1), 1);
  ck_assert_int_eq(mailproto_store_user_is("alice", "alice@x", 5, 0), 1);
  ck_assert_int_eq(mailproto_store_user_is("alice", "alic", 4, 1), 0);
  ck_assert_int_eq(mailproto_store_user_is("alice", "alicea", 6, 1), 0);
  ck_assert_uint_eq(mailproto_store_local_part("alice@example.org"), 5);
  ck_assert_uint_eq(mailproto_store_local_part("\"a@b\"@example.org"), 5);
  ck_assert_uint_eq(mailproto_store_local_part("postmaster"), 10);
  ck_assert_uint_eq(mailproto_store_local_part("@example.org"), 0);
}
END_TEST

/* Keeping an APPEND's details copies the keywords; every allocation may
 * fail, and then nothing is left behind. */
START_TEST(test_mailproto_store_append_keep_alloc_failures) {
  static const char *const kws[] = {"$Work", "Later", "x"};
  mailproto_datetime when = {1700000000, 60};
  mailproto_append_info in, info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.flags = MAILPROTO_FLAG_SEEN;
  info.keywords = kws;
  info.keyword_count = 3;
  info.internal_date = &when;
  ck_assert_int_eq(mailproto_store_append_info(&info, &in), 0);
  for (unsigned long fail = 1;; fail++) {
    alloc_fail af;
    alloc_fail_init(&af, fail);
    mailproto_store_append k;
    int rc = mailproto_store_append_keep(&af.allocator, &k, &in);
    if (rc == 0) {
      ck_assert(!alloc_fail_triggered(&af));
      ck_assert_uint_eq(k.flags, MAILPROTO_FLAG_SEEN);
      ck_assert_uint_eq(k.keyword_count, 3);
      ck_assert_str_eq(k.keywords[1], "Later");
      ck_assert_int_eq(k.has_date, 1);
      ck_assert_int_eq(k.date.tz_minutes, 60);
      mailproto_store_append_drop(&af.allocator, &k);
      ck_assert_int_eq(af.live, 0);
      break;
    }
    ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
    ck_assert_ptr_null(k.keywords);
    ck_assert_int_eq(af.live, 0);
  }
  /* Bad details are refused; an older caller's short struct is fine. */
  info.flags = MAILPROTO_FLAG_RECENT;
  ck_assert_int_eq(mailproto_store_append_info(&info, &in),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  info.flags = 0;
  info.keywords = NULL;
  ck_assert_int_eq(mailproto_store_append_info(&info, &in),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  info.keyword_count = 0;
  when.tz_minutes = 1440;
  ck_assert_int_eq(mailproto_store_append_info(&info, &in),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  info.struct_size = offsetof(mailproto_append_info, keywords);
  ck_assert_int_eq(mailproto_store_append_info(&info, &in), 0);
  ck_assert_ptr_null(in.internal_date);
  ck_assert_int_eq(mailproto_store_append_info(NULL, &in), 0);
}
END_TEST

START_TEST(test_mailproto_uid_ranges_add_and_has) {
  mailproto_uid_range r[4];
  size_t n = 0;
  mailproto_uid_ranges_add(r, &n, 5, 5); /* empty */
  ck_assert_uint_eq(n, 0);
  mailproto_uid_ranges_add(r, &n, 3, 6);
  mailproto_uid_ranges_add(r, &n, 6, 8); /* adjacent: merged */
  ck_assert_uint_eq(n, 1);
  ck_assert_uint_eq(r[0].first, 3);
  ck_assert_uint_eq(r[0].last, 7);
  mailproto_uid_ranges_add(r, &n, 10, 11);
  ck_assert_uint_eq(n, 2);
  static const uint32_t in[] = {3, 5, 7, 10}, out[] = {0, 2, 8, 9, 11};
  for (size_t i = 0; i < 4; i++)
    ck_assert_int_eq(mailproto_uid_ranges_has(r, n, in[i]), 1);
  for (size_t i = 0; i < 5; i++)
    ck_assert_int_eq(mailproto_uid_ranges_has(r, n, out[i]), 0);
  ck_assert_int_eq(mailproto_uid_ranges_has(r, 0, 3), 0);
}
END_TEST

/* A status struct from an older caller gets only the fields it knows. */
START_TEST(test_mailproto_store_put_status_sizes) {
  mailproto_mailbox_status full, st;
  memset(&full, 0, sizeof full);
  full.messages = 3;
  full.highest_modseq = 9;
  memset(&st, 0xee, sizeof st);
  st.struct_size = offsetof(mailproto_mailbox_status, size);
  mailproto_store_put_status(&st, &full);
  ck_assert_uint_eq(st.messages, 3);
  ck_assert_uint_eq(st.struct_size, offsetof(mailproto_mailbox_status, size));
  ck_assert_uint_ne(st.highest_modseq, 9); /* untouched */
  st.struct_size = 0;
  mailproto_store_put_status(&st, &full);
  ck_assert_uint_eq(st.struct_size, sizeof st);
  ck_assert_uint_eq(st.highest_modseq, 9);
}
END_TEST

Suite *suite_store_memstore(void) {
  static const conformance_backend memstore = {"memstore", ms_create,
                                               ms_destroy, NULL, NULL};
  Suite *s = conformance_suite("store_memstore", &memstore);
  TCase *tc = tcase_create("memstore");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_memstore_new_rejects_null);
  tcase_add_test(tc, test_add_user_rejects_bad_input);
  tcase_add_test(tc, test_lookup_recipient_ignores_case_and_domain);
  tcase_add_test(tc, test_set_clock_dates_new_messages);
  tcase_add_test(tc, test_memstore_empty_message);
  tcase_add_test(tc, test_memstore_rejects_invalid_arguments);
  tcase_add_test(tc, test_memstore_open_mailbox_deleted_or_renamed);
  tcase_add_test(tc, test_memstore_read_survives_expunge);
  tcase_add_test(tc, test_memstore_change_log_stays_bounded);
  tcase_add_test(tc, test_memstore_change_log_bounded_with_lagging_handle);
  tcase_add_test(tc, test_memstore_large_mailbox);
  tcase_add_test(tc, test_memstore_alloc_failures_leave_store_consistent);
  tcase_add_test(tc, test_memstore_alloc_failures_in_lmtp_delivery);
  suite_add_tcase(s, tc);
  TCase *calls = tcase_create("store_call");
  tcase_add_test(calls, test_store_call_maps_hook_returns);
  tcase_add_test(calls, test_store_call_missing_hooks_unsupported);
  suite_add_tcase(s, calls);
  TCase *util = tcase_create("store_util");
  tcase_add_test(util, test_mailproto_store_size_add_any_split);
  tcase_add_test(util, test_mailproto_store_password_check_cases);
  tcase_add_test(util, test_mailproto_store_user_is_and_local_part);
  tcase_add_test(util, test_mailproto_store_append_keep_alloc_failures);
  tcase_add_test(util, test_mailproto_uid_ranges_add_and_has);
  tcase_add_test(util, test_mailproto_store_put_status_sizes);
  suite_add_tcase(s, util);
  return s;
}
