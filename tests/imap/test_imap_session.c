/*
 * Direct tests of the IMAP session that a transcript cannot express:
 * the API contract (arguments, defaults, queries), two sessions on one
 * mailbox (what each sees of the other's changes, and when), IDLE woken
 * by a delivery, the transport pushing back, deferred callbacks, memory
 * per session, CRAM-MD5 with its unpredictable challenge.
 */
#define _XOPEN_SOURCE 700

#include <check.h>
#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/md5.h"
#include "core/op.h"
#include "imap/imap_adapter.h"
#include "mailproto/imap.h"
#include "mailproto/maildir.h"
#include "mailproto/memstore.h"
#include "suites.h"
#include "mailproto/smtp.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

/* ------------------------------------------------------------------ */
/* A client for direct tests                                           */
/* ------------------------------------------------------------------ */

typedef struct client {
  mailproto_imap *s;
  char out[1 << 16]; /* what the session sent and the test has not taken */
  size_t len;
  size_t take_max; /* bytes send accepts per call; 0: all */
  int wakeups;
  char *sink; /* when set, output goes here instead (sink_cap bytes) */
  size_t sink_len, sink_cap;
} client;

static ptrdiff_t cl_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *user_data) {
  client *c = user_data;
  (void)s;
  if (c->take_max && len > c->take_max)
    len = c->take_max;
  if (c->sink) {
    ck_assert_uint_lt(c->sink_len + len, c->sink_cap);
    memcpy(c->sink + c->sink_len, data, len);
    c->sink_len += len;
    c->sink[c->sink_len] = '\0';
    return (ptrdiff_t)len;
  }
  ck_assert_uint_le(c->len + len, sizeof c->out - 1);
  memcpy(c->out + c->len, data, len);
  c->len += len;
  c->out[c->len] = '\0';
  return (ptrdiff_t)len;
}

static void cl_wakeup(mailproto_imap *s, void *user_data) {
  (void)s;
  ((client *)user_data)->wakeups++;
}

static mailproto_memstore *store_new(void) {
  mailproto_memstore *ms;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(ms, "alice", "secret"), 0);
  return ms;
}

static void client_open(client *c, mailproto_memstore *ms,
                        mailproto_imap_config *cfg) {
  static mailproto_store st; /* tests are single-threaded */
  mailproto_imap_callbacks cb;
  memset(c, 0, sizeof *c);
  mailproto_memstore_store(ms, &st);
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cl_send;
  cb.wakeup = cl_wakeup;
  mailproto_imap_config d;
  if (!cfg) {
    mailproto_imap_config_init(&d, sizeof d);
    d.allow_insecure_auth = 1;
    cfg = &d;
  }
  ck_assert_int_eq(mailproto_imap_new(cfg, &cb, &st, c, &c->s), 0);
  ck_assert_int_eq(mailproto_imap_start(c->s), 0);
}

/* Takes what the session sent so far. */
static const char *take(client *c) {
  static char copy[sizeof((client *)0)->out];
  memcpy(copy, c->out, c->len + 1);
  c->len = 0;
  c->out[0] = '\0';
  return copy;
}

static void say(client *c, const char *text) {
  ptrdiff_t n = mailproto_imap_feed(c->s, (const uint8_t *)text, strlen(text));
  ck_assert_int_eq(n, (ptrdiff_t)strlen(text));
}

/* Sends a command and returns the session's answer. */
static const char *ask(client *c, const char *text) {
  say(c, text);
  return take(c);
}

static void login_select(client *c, const char *select) {
  take(c);
  ck_assert_ptr_nonnull(strstr(ask(c, "a LOGIN alice secret\r\n"), "a OK"));
  const char *r = ask(c, select);
  ck_assert_msg(strstr(r, "s OK") != NULL, "%s", r);
}

static void deliver(mailproto_memstore *ms, const char *text) {
  ck_assert_int_eq(
      imap_test_append(ms, "alice", "INBOX", text, strlen(text), 0, NULL, 0),
      0);
}

/* ------------------------------------------------------------------ */
/* The API                                                             */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_imap_config_init_defaults) {
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  ck_assert_uint_eq(c.struct_size, sizeof c);
  ck_assert_str_eq(c.greeting, "IMAP server ready");
  ck_assert_uint_eq(c.max_line, 8192);
  ck_assert_uint_eq(c.max_literal, 65536);
  ck_assert_uint_eq(c.max_command, 262144);
  ck_assert_uint_eq(c.max_literals, 64);
  ck_assert_uint_eq(c.max_nesting, 32);
  ck_assert_uint_eq(c.max_sequence_ranges, 1000);
  ck_assert_uint_eq(c.max_append, 64u * 1024 * 1024);
  ck_assert_uint_eq(c.max_errors, 20);
  ck_assert_uint_eq(c.max_errors_unauth, 5);
  ck_assert_uint_eq(c.max_auth_failures, 3);
  ck_assert_uint_eq(c.output_watermark, 16 * 1024);
  ck_assert_uint_eq(c.sasl_mechanisms, MAILPROTO_SASL_ALL);
  ck_assert_int_eq(c.secure, 0);
  ck_assert_int_eq(c.allow_insecure_auth, 0);
  ck_assert_int_eq(c.literal_minus, 0);
  ck_assert_str_eq(c.id_name, "libmailproto");
}
END_TEST

START_TEST(test_mailproto_imap_config_init_older_struct) {
  /* A caller built against a header with fewer fields gets those. */
  union {
    mailproto_imap_config c;
    unsigned char bytes[sizeof(mailproto_imap_config)];
  } u;
  memset(&u, 0xab, sizeof u);
  size_t small = offsetof(mailproto_imap_config, max_line);
  mailproto_imap_config_init(&u.c, small);
  ck_assert_uint_eq(u.c.struct_size, small);
  ck_assert_uint_eq(u.bytes[small], 0xab);
}
END_TEST

START_TEST(test_mailproto_imap_new_bad_arguments) {
  mailproto_memstore *ms = store_new();
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  mailproto_imap *s = (mailproto_imap *)&cb;
  ck_assert_int_eq(mailproto_imap_new(NULL, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT); /* no send */
  ck_assert_ptr_null(s);
  cb.send = cl_send;
  ck_assert_int_eq(mailproto_imap_new(NULL, &cb, NULL, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_new(NULL, &cb, &st, NULL, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  c.max_line = 10;
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_imap_config_init(&c, sizeof c);
  c.greeting = "bad\r\n* OK forged";
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_imap_config_init(&c, sizeof c);
  c.max_literal = c.max_command + 1;
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_imap_config_init(&c, sizeof c);
  c.output_watermark = 1;
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  c.struct_size = 1;
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &st, NULL, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_null_session) {
  ck_assert_int_eq(mailproto_imap_start(NULL), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_feed(NULL, NULL, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_writable(NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_sync(NULL), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_keepalive(NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_set_secure(NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_set_client(NULL, "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_want_read(NULL), 0);
  ck_assert_int_eq(mailproto_imap_want_write(NULL), 0);
  ck_assert_int_eq(mailproto_imap_closed(NULL), 0);
  ck_assert_int_eq(mailproto_imap_idling(NULL), 0);
  ck_assert_ptr_null(mailproto_imap_user(NULL));
  mailproto_imap_free(NULL);
}
END_TEST

START_TEST(test_mailproto_imap_feed_before_start) {
  mailproto_memstore *ms = store_new();
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cl_send;
  client c;
  memset(&c, 0, sizeof c);
  ck_assert_int_eq(mailproto_imap_new(NULL, &cb, &st, &c, &c.s), 0);
  ck_assert_int_eq(mailproto_imap_feed(c.s, (const uint8_t *)"a NOOP\r\n", 8),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_imap_set_client(c.s, "192.0.2.1"), 0);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ck_assert_int_eq(mailproto_imap_start(c.s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_set_client(c.s, "192.0.2.2"),
                   MAILPROTO_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(c.out, "* OK [CAPABILITY IMAP4rev1"));
  ck_assert_int_eq(mailproto_imap_want_read(c.s), 1);
  mailproto_imap_free(c.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Two sessions on one mailbox                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_imap_sync_idle_woken_by_delivery) {
  mailproto_memstore *ms = store_new();
  client a;
  client_open(&a, ms, NULL);
  login_select(&a, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&a, "i IDLE\r\n"), "+ idling\r\n");
  ck_assert_int_eq(mailproto_imap_idling(a.s), 1);
  ck_assert_int_eq(a.wakeups, 0);
  deliver(ms, "Subject: hi\r\n\r\nbody\r\n");
  /* The store woke the application, which syncs from its loop. */
  ck_assert_int_eq(a.wakeups, 1);
  ck_assert_str_eq(take(&a), "");
  ck_assert_int_eq(mailproto_imap_sync(a.s), 0);
  ck_assert_str_eq(take(&a), "* 1 EXISTS\r\n* 1 RECENT\r\n");
  ck_assert_int_eq(mailproto_imap_keepalive(a.s), 0);
  ck_assert_str_eq(take(&a), "* OK Still here\r\n");
  ck_assert_str_eq(ask(&a, "DONE\r\n"), "i OK IDLE terminated\r\n");
  ck_assert_int_eq(mailproto_imap_idling(a.s), 0);
  /* Not idling: nothing is sent until a command may carry it. */
  ck_assert_int_eq(mailproto_imap_keepalive(a.s), 0);
  deliver(ms, "Subject: two\r\n\r\nbody\r\n");
  ck_assert_int_eq(mailproto_imap_sync(a.s), 0);
  ck_assert_str_eq(take(&a), "");
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"),
                   "* 2 EXISTS\r\n* 2 RECENT\r\nn OK NOOP completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_sync_expunge_waits_for_allowed_command) {
  mailproto_memstore *ms = store_new();
  deliver(ms, "Subject: 1\r\n\r\n1\r\n");
  deliver(ms, "Subject: 2\r\n\r\n2\r\n");
  deliver(ms, "Subject: 3\r\n\r\n3\r\n");
  client a, b;
  client_open(&a, ms, NULL);
  client_open(&b, ms, NULL);
  login_select(&a, "s SELECT INBOX\r\n");
  login_select(&b, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&b, "x STORE 2 +FLAGS.SILENT (\\Deleted)\r\n"),
                   "x OK STORE completed\r\n");
  ck_assert_str_eq(ask(&b, "y EXPUNGE\r\n"),
                   "* 2 EXPUNGE\r\ny OK EXPUNGE completed\r\n");
  /* RFC 3501 7.4.1: no EXPUNGE during FETCH; the flag change of the
   * expunged message is not announced either; sequence numbers hold. */
  ck_assert_str_eq(ask(&a, "f FETCH 3 (FLAGS)\r\n"),
                   "* 3 FETCH (FLAGS (\\Recent))\r\nf OK FETCH completed\r\n");
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"),
                   "* 2 EXPUNGE\r\nn OK NOOP completed\r\n");
  ck_assert_str_eq(ask(&a, "f FETCH 2 (UID)\r\n"),
                   "* 2 FETCH (UID 3)\r\nf OK FETCH completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_sync_flag_changes_two_sessions) {
  mailproto_memstore *ms = store_new();
  deliver(ms, "Subject: 1\r\n\r\n1\r\n");
  deliver(ms, "Subject: 2\r\n\r\n2\r\n");
  deliver(ms, "Subject: 3\r\n\r\n3\r\n");
  client a, b;
  client_open(&a, ms, NULL);
  client_open(&b, ms, NULL);
  login_select(&a, "s SELECT INBOX\r\n");
  login_select(&b, "s EXAMINE INBOX\r\n");
  ck_assert_str_eq(ask(&a, "x STORE 1 +FLAGS.SILENT (\\Flagged)\r\n"),
                   "x OK STORE completed\r\n");
  /* The other session learns of it with its next command. */
  ck_assert_int_eq(b.wakeups, 1);
  ck_assert_str_eq(ask(&b, "n NOOP\r\n"),
                   "* 1 FETCH (FLAGS (\\Flagged))\r\nn OK NOOP completed\r\n");
  /* FETCH may carry others' flag changes (RFC 3501 7.4.2). */
  ck_assert_str_eq(ask(&a, "y STORE 2 +FLAGS.SILENT (\\Answered)\r\n"),
                   "y OK STORE completed\r\n");
  ck_assert_str_eq(ask(&b, "f FETCH 3 UID\r\n"),
                   "* 3 FETCH (UID 3)\r\n* 2 FETCH (FLAGS (\\Answered))\r\n"
                   "f OK FETCH completed\r\n");
  /* .SILENT hides only the session's own change: a concurrent one by
   * someone else to the same message is still announced. */
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.allow_insecure_auth = 1;
  client c;
  client_open(&c, ms, &cfg);
  login_select(&c, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&a, "z STORE 3 +FLAGS.SILENT (\\Draft)\r\n"),
                   "z OK STORE completed\r\n");
  ck_assert_str_eq(
      ask(&c, "w STORE 3 +FLAGS.SILENT (\\Seen)\r\n"),
      "* 3 FETCH (FLAGS (\\Seen \\Draft))\r\nw OK STORE completed\r\n");
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"),
                   "* 3 FETCH (FLAGS (\\Seen \\Draft \\Recent))\r\n"
                   "n OK NOOP completed\r\n");
  ck_assert_str_eq(
      ask(&b, "n NOOP\r\n"),
      "* 3 FETCH (FLAGS (\\Seen \\Draft))\r\nn OK NOOP completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_imap_free(c.s);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_sync_expunge_timing) {
  mailproto_memstore *ms = store_new();
  for (int i = 0; i < 4; i++)
    deliver(ms, "Subject: m\r\n\r\nm\r\n");
  client a, b;
  client_open(&a, ms, NULL);
  client_open(&b, ms, NULL);
  login_select(&a, "s SELECT INBOX\r\n");
  login_select(&b, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&b, "x STORE 1,3 +FLAGS.SILENT (\\Deleted)\r\n"),
                   "x OK STORE completed\r\n");
  ck_assert_str_eq(ask(&b, "y EXPUNGE\r\n"),
                   "* 3 EXPUNGE\r\n* 1 EXPUNGE\r\ny OK EXPUNGE completed\r\n");
  /* Not during STORE (RFC 3501 7.4.1); the expunged message keeps its
   * number, and the STORE leaves it alone. */
  ck_assert_str_eq(
      ask(&a, "s STORE 1:2 +FLAGS (\\Seen)\r\n"),
      "* 2 FETCH (FLAGS (\\Seen \\Recent))\r\ns OK STORE completed\r\n");
  /* Nor during SEARCH, whose numbers are those the client still has. */
  ck_assert_str_eq(ask(&a, "q SEARCH SEEN\r\n"),
                   "* SEARCH 2\r\nq OK SEARCH completed\r\n");
  /* COPY with sequence numbers: no EXPUNGE either, but the copy into
   * the selected mailbox shows up at once. */
  ck_assert_str_eq(ask(&a, "c COPY 4 INBOX\r\n"),
                   "* 5 EXISTS\r\n* 5 RECENT\r\n"
                   "c OK [COPYUID 1 4 5] COPY completed\r\n");
  /* The text of an expunged message is gone: it is left out and the
   * FETCH says so (RFC 2180 4.1.2); its flags are still there. */
  ck_assert_str_eq(ask(&a, "f FETCH 1:2 BODY.PEEK[TEXT]\r\n"),
                   "* 2 FETCH (BODY[TEXT] {3}\r\nm\r\n)\r\n"
                   "f NO [EXPUNGEISSUED] Some messages no longer exist\r\n");
  ck_assert_str_eq(
      ask(&a, "g FETCH 1 (UID FLAGS RFC822.SIZE)\r\n"),
      "* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent) RFC822.SIZE 17)\r\n"
      "g OK FETCH completed\r\n");
  /* UID FETCH may carry EXPUNGE (RFC 3501 7.4.1). */
  ck_assert_str_eq(ask(&a, "u UID FETCH 2 UID\r\n"),
                   "* 2 FETCH (UID 2)\r\n* 3 EXPUNGE\r\n* 1 EXPUNGE\r\n"
                   "u OK FETCH completed\r\n");
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"), "n OK NOOP completed\r\n");
  ck_assert_str_eq(ask(&a, "f FETCH 1:* UID\r\n"),
                   "* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 4)\r\n"
                   "* 3 FETCH (UID 5)\r\nf OK FETCH completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* Copies a reply the test compares later. */
static void keep(char *dst, size_t size, const char *src) {
  size_t n = strlen(src);
  ck_assert_uint_lt(n, size);
  memcpy(dst, src, n + 1);
}

/* A session on `st` (any backend) with the default test config. */
static void client_open_store(client *c, const mailproto_store *st) {
  mailproto_imap_callbacks cb;
  memset(c, 0, sizeof *c);
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cl_send;
  cb.wakeup = cl_wakeup;
  mailproto_imap_config d;
  mailproto_imap_config_init(&d, sizeof d);
  d.allow_insecure_auth = 1;
  ck_assert_int_eq(mailproto_imap_new(&d, &cb, st, c, &c->s), 0);
  ck_assert_int_eq(mailproto_imap_start(c->s), 0);
}

/* RFC 2177 3: a delivery while IDLE's first sync is still deferred
 * (mailproto_imap_sync can only note it then) is announced as soon as
 * that round is over, not at the next keep-alive. */
START_TEST(test_mailproto_imap_sync_idle_change_during_first_round) {
  mailproto_memstore *ms = store_new();
  mailproto_store mem, st;
  mailproto_memstore_store(ms, &mem);
  faultstore *f;
  ck_assert_int_eq(faultstore_new(&mem, NULL, &f), 0);
  faultstore_store(f, &st);
  client a;
  client_open_store(&a, &st);
  login_select(&a, "s SELECT INBOX\r\n");
  deliver(ms, "Subject: one\r\n\r\nbody\r\n"); /* IDLE starts by syncing */
  faultstore_defer_all(f, 1);
  ck_assert_int_eq(mailproto_imap_feed(a.s, (const uint8_t *)"i IDLE\r\n", 8),
                   8);
  ck_assert_uint_eq(faultstore_pending(f), 1); /* that sync waits */
  deliver(ms, "Subject: two\r\n\r\nbody\r\n");
  ck_assert_int_eq(mailproto_imap_sync(a.s), 0); /* only noted */
  faultstore_defer_all(f, 0);
  while (faultstore_pending(f))
    ck_assert_int_ge(faultstore_run_pending(f), 0);
  const char *out = take(&a);
  ck_assert_msg(strstr(out, "+ idling\r\n") != NULL, "%s", out);
  ck_assert_msg(strstr(out, "* 2 EXISTS\r\n") != NULL, "%s", out);
  ck_assert_str_eq(ask(&a, "DONE\r\n"), "i OK IDLE terminated\r\n");
  mailproto_imap_free(a.s);
  faultstore_free(f);
  mailproto_memstore_free(ms);
}
END_TEST

/* RFC 5182 2.1: a SEARCH with SAVE that fails leaves "$" empty, not
 * holding what it had or what the failed search found before failing. */
START_TEST(test_mailproto_imap_search_failed_save_empties_result) {
  mailproto_memstore *ms = store_new();
  deliver(ms, "Subject: a\r\n\r\nneedle\r\n");
  deliver(ms, "Subject: b\r\n\r\nhay\r\n");
  mailproto_store mem, st;
  mailproto_memstore_store(ms, &mem);
  faultstore *f;
  ck_assert_int_eq(faultstore_new(&mem, NULL, &f), 0);
  faultstore_store(f, &st);
  client a;
  client_open_store(&a, &st);
  login_select(&a, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&a, "k SEARCH RETURN (SAVE) ALL\r\n"),
                   "k OK SEARCH completed\r\n");
  ck_assert_str_eq(ask(&a, "l FETCH $ UID\r\n"),
                   "* 1 FETCH (UID 1)\r\n* 2 FETCH (UID 2)\r\n"
                   "l OK FETCH completed\r\n");
  /* Which of the search's store calls to fail so that message 1 matched
   * before message 2 failed: tried in turn on the plain SEARCH. */
  unsigned long before = faultstore_calls(f), k = 0;
  ck_assert_str_eq(ask(&a, "t SEARCH BODY needle\r\n"),
                   "* SEARCH 1\r\nt OK SEARCH completed\r\n");
  unsigned long calls = faultstore_calls(f) - before;
  for (unsigned long i = 1; i <= calls && !k; i++) {
    faultstore_fail_nth(f, faultstore_calls(f) + i, MAILPROTO_ERR_IO);
    if (strcmp(ask(&a, "t SEARCH BODY needle\r\n"),
               "* SEARCH 1\r\nt NO [UNAVAILABLE] Some messages could not "
               "be searched\r\n") == 0)
      k = i;
  }
  ck_assert_uint_ne(k, 0);
  faultstore_fail_nth(f, faultstore_calls(f) + k, MAILPROTO_ERR_IO);
  ck_assert_str_eq(
      ask(&a, "m SEARCH RETURN (SAVE) BODY needle\r\n"),
      "m NO [UNAVAILABLE] Some messages could not be searched\r\n");
  faultstore_fail_nth(f, 0, 0);
  ck_assert_str_eq(ask(&a, "n FETCH $ UID\r\n"), "n OK FETCH completed\r\n");
  mailproto_imap_free(a.s);
  faultstore_free(f);
  mailproto_memstore_free(ms);
}
END_TEST

/* A "* SEARCH" or "* SORT" list, or an ESEARCH ALL set, longer than one
 * output piece (16 KiB) goes out in pieces as the output drains, whole
 * and in order, and is never held whole. */
START_TEST(test_mailproto_imap_search_long_lists_in_pieces) {
  enum { N = 40000 };
  mailproto_memstore *ms = store_new();
  for (int i = 0; i < N; i++)
    deliver(ms,
            i % 2 ? "Subject: even\r\n\r\nm\r\n" : "Subject: odd\r\n\r\nm\r\n");
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.allow_insecure_auth = 1;
  cfg.allocator = &af.allocator;
  client a;
  client_open(&a, ms, &cfg);
  login_select(&a, "s SELECT INBOX\r\n");
  static char want[1 << 19];
  static const char *const ask_for[] = {
      "q SEARCH ALL\r\n", "q SORT (ARRIVAL) UTF-8 ALL\r\n",
      "q SEARCH RETURN (MIN ALL COUNT) SUBJECT odd\r\n"};
  for (int pass = 0; pass < 3; pass++) {
    size_t n =
        (size_t)snprintf(want, sizeof want, "%s",
                         pass == 0   ? "* SEARCH"
                         : pass == 1 ? "* SORT"
                                     : "* ESEARCH (TAG \"q\") MIN 1 ALL ");
    /* Same arrival times: SORT ties go by number. ESEARCH: the odd
     * numbers, none adjacent, so no ranges. */
    for (int num = 1; num <= N; num += pass == 2 ? 2 : 1)
      n += (size_t)snprintf(want + n, sizeof want - n,
                            pass < 2  ? " %d"
                            : num > 1 ? ",%d"
                                      : "%d",
                            num);
    if (pass == 2)
      n += (size_t)snprintf(want + n, sizeof want - n, " COUNT %d", N / 2);
    snprintf(want + n, sizeof want - n, "\r\nq OK %s completed\r\n",
             pass == 1 ? "SORT" : "SEARCH");
    ck_assert_uint_gt(n, 16384 + 64);
    size_t before = af.live_bytes;
    af.peak_bytes = before;
    /* The transport takes a piece at a time; each writable lets the next
     * one out. */
    static char got[sizeof want];
    a.sink = got;
    a.sink_len = 0;
    a.sink_cap = sizeof got;
    a.take_max = 4096;
    say(&a, ask_for[pass]);
    for (int turn = 0; mailproto_imap_want_write(a.s); turn++) {
      ck_assert_int_lt(turn, 1000);
      ck_assert_int_eq(mailproto_imap_writable(a.s), 0);
    }
    a.sink = NULL;
    a.take_max = 0;
    size_t k = 0;
    while (got[k] && got[k] == want[k])
      k++;
    ck_assert_msg(got[k] == want[k], "pass %d differs at %zu of %zu: %.40s",
                  pass, k, strlen(want), got + k);
    /* The match list grows by doubling: up to three times its size
     * while it moves. The text is one piece on top (the whole ESEARCH
     * line would add ~117 KB, the SEARCH one ~229 KB); SORT's records
     * are too large for the text to show. */
    size_t matches = (pass == 2 ? N / 2 : N) * sizeof(uint32_t);
    if (pass != 1)
      ck_assert_msg(af.peak_bytes - before < 3 * matches + 16 * 1024,
                    "pass %d: %zu bytes", pass, af.peak_bytes - before);
  }
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* RFC 7162 3.1.4.2 Example 14, 3.1.3 Example 10: a CONDSTORE-aware
 * session learns another session's flag change with UID and MODSEQ, one
 * that never enabled CONDSTORE with FLAGS alone; a conditional STORE
 * that loses the race answers MODIFIED and shows the change that beat
 * it. */
START_TEST(test_mailproto_imap_condstore_two_sessions) {
  mailproto_memstore *ms = store_new();
  deliver(ms, "Subject: a\r\n\r\na\r\n"); /* modseq 2; the mailbox had 1 */
  deliver(ms, "Subject: b\r\n\r\nb\r\n"); /* modseq 3 */
  client a, b, c;
  client_open(&a, ms, NULL);
  client_open(&b, ms, NULL);
  client_open(&c, ms, NULL);
  login_select(&a, "s SELECT INBOX (CONDSTORE)\r\n");
  login_select(&b, "s SELECT INBOX (CONDSTORE)\r\n");
  login_select(&c, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&a, "t STORE 1 +FLAGS.SILENT (\\Deleted)\r\n"),
                   "* 1 FETCH (UID 1 MODSEQ (4))\r\nt OK STORE completed\r\n");
  ck_assert_str_eq(ask(&b, "n NOOP\r\n"),
                   "* 1 FETCH (UID 1 MODSEQ (4) FLAGS (\\Deleted))\r\n"
                   "n OK NOOP completed\r\n");
  ck_assert_str_eq(ask(&c, "n NOOP\r\n"), "* 1 FETCH (FLAGS (\\Deleted))\r\n"
                                          "n OK NOOP completed\r\n");
  /* b sets \Seen on 1 (modseq 5); a, still at 4, asks for \Flagged only
   * if nothing changed since. */
  ck_assert_str_eq(ask(&b, "u STORE 1 +FLAGS.SILENT (\\Seen)\r\n"),
                   "* 1 FETCH (UID 1 MODSEQ (5))\r\nu OK STORE completed\r\n");
  ck_assert_str_eq(
      ask(&a, "v STORE 1:2 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\\Flagged)\r\n"),
      "* 1 FETCH (UID 1 MODSEQ (5) FLAGS (\\Seen \\Deleted \\Recent))\r\n"
      "* 2 FETCH (UID 2 MODSEQ (6))\r\n"
      "v OK [MODIFIED 1] Conditional STORE failed\r\n");
  ck_assert_str_eq(ask(&a, "w UID SEARCH MODSEQ 5\r\n"),
                   "* SEARCH 1 2 (MODSEQ 6)\r\nw OK SEARCH completed\r\n");
  /* Example 8's test-and-set: b (up to date) sets $MDNSent on 2; a, which
   * has not seen that yet, asks for the same and must be told it lost.
   * (A session that missed any change of the message fails too: it
   * learns the change with the answer and can try again.) */
  ck_assert_str_eq(ask(&b, "n NOOP\r\n"),
                   "* 2 FETCH (UID 2 MODSEQ (6) FLAGS (\\Flagged))\r\n"
                   "n OK NOOP completed\r\n");
  ck_assert_str_eq(
      ask(&b, "m1 STORE 2 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)\r\n"),
      "* FLAGS (\\Seen \\Answered \\Flagged \\Deleted \\Draft $MDNSent)\r\n"
      "* OK [PERMANENTFLAGS (\\Seen \\Answered \\Flagged \\Deleted "
      "\\Draft $MDNSent \\*)] Flags permitted\r\n"
      "* 2 FETCH (UID 2 MODSEQ (7) FLAGS (\\Flagged $MDNSent))\r\n"
      "m1 OK STORE completed\r\n");
  const char *r =
      ask(&a, "m2 STORE 2 (UNCHANGEDSINCE 0) +FLAGS.SILENT ($MDNSent)\r\n");
  ck_assert_msg(strstr(r, "m2 OK [MODIFIED 2] Conditional STORE failed\r\n"),
                "%s", r);
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_imap_free(c.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* A backend that keeps no mod-sequences (RFC 7162 3.1.2.2): NOMODSEQ once
 * CONDSTORE is on, and BAD for what needs mod-sequences. */
static mailproto_store_ops nomodseq_ops;
static const mailproto_store_ops *nomodseq_inner;

static const mailproto_op_sink *nomodseq_session_sink;
static mailproto_op_sink nomodseq_sink;

/* Messages reported without a mod-sequence (the memory store answers
 * within the call, so the sink can be swapped around it). */
static int nomodseq_message(mailproto_op *op,
                            const mailproto_message_info *msg) {
  mailproto_message_info copy = *msg;
  copy.modseq = 0;
  return nomodseq_session_sink->message(op, &copy);
}

static void nomodseq_wrap(mailproto_op *op) {
  nomodseq_session_sink = op->sink;
  nomodseq_sink = *op->sink;
  nomodseq_sink.message = nomodseq_message;
  op->sink = &nomodseq_sink;
}

static int nomodseq_open(void *ctx, mailproto_op *op, void *account,
                         const char *name, unsigned flags,
                         mailproto_store_notify_fn notify, void *notify_arg,
                         void **mailbox, mailproto_mailbox_status *status) {
  nomodseq_wrap(op);
  int rc = nomodseq_inner->open(ctx, op, account, name, flags, notify,
                                notify_arg, mailbox, status);
  op->sink = nomodseq_session_sink;
  status->highest_modseq = 0;
  return rc;
}

static int nomodseq_sync(void *ctx, mailproto_op *op, void *mailbox,
                         mailproto_mailbox_status *status) {
  nomodseq_wrap(op);
  int rc = nomodseq_inner->sync(ctx, op, mailbox, status);
  op->sink = nomodseq_session_sink;
  status->highest_modseq = 0;
  return rc;
}

START_TEST(test_mailproto_imap_condstore_nomodseq) {
  mailproto_memstore *ms = store_new();
  deliver(ms, "Subject: a\r\n\r\na\r\n");
  mailproto_store mem;
  mailproto_memstore_store(ms, &mem);
  nomodseq_inner = mem.ops;
  nomodseq_ops = *mem.ops;
  nomodseq_ops.open = nomodseq_open;
  nomodseq_ops.sync = nomodseq_sync;
  mailproto_store st = {&nomodseq_ops, mem.ctx};
  client a;
  client_open_store(&a, &st);
  take(&a);
  ck_assert_ptr_nonnull(strstr(ask(&a, "a LOGIN alice secret\r\n"), "a OK"));
  const char *r = ask(&a, "s SELECT INBOX (CONDSTORE)\r\n");
  ck_assert_msg(strstr(r, "* OK [NOMODSEQ] No permanent mod-sequences\r\n") &&
                    !strstr(r, "HIGHESTMODSEQ"),
                "%s", r);
  static const char *const refused[] = {
      "t FETCH 1 (MODSEQ)\r\n", "t FETCH 1 (FLAGS) (CHANGEDSINCE 1)\r\n",
      "t STORE 1 (UNCHANGEDSINCE 5) +FLAGS (\\Seen)\r\n",
      "t SEARCH MODSEQ 1\r\n"};
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
    ck_assert_str_eq(ask(&a, refused[i]),
                     "t BAD The mailbox has no mod-sequences\r\n");
  /* What needs none still works; flag changes carry no MODSEQ, and with
   * QRESYNC on expunges stay EXPUNGE (RFC 7162 3.2.10.2). */
  ck_assert_str_eq(ask(&a, "u FETCH 1 (FLAGS)\r\n"),
                   "* 1 FETCH (FLAGS (\\Recent))\r\nu OK FETCH completed\r\n");
  ck_assert_str_eq(ask(&a, "e ENABLE QRESYNC\r\n"),
                   "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n");
  ck_assert_str_eq(ask(&a, "v STORE 1 +FLAGS (\\Deleted)\r\n"),
                   "* 1 FETCH (FLAGS (\\Deleted \\Recent))\r\n"
                   "v OK STORE completed\r\n");
  ck_assert_str_eq(ask(&a, "w EXPUNGE\r\n"),
                   "* 1 EXPUNGE\r\nw OK EXPUNGE completed\r\n");
  /* Enabled after a plain SELECT: NOMODSEQ then (RFC 7162 3.1), and no
   * MODSEQ in flag changes. */
  client b;
  client_open_store(&b, &st);
  deliver(ms, "Subject: b\r\n\r\nb\r\n");
  take(&b);
  ck_assert_ptr_nonnull(strstr(ask(&b, "a LOGIN alice secret\r\n"), "a OK"));
  r = ask(&b, "s SELECT INBOX\r\n");
  ck_assert_msg(strstr(r, "s OK") && !strstr(r, "MODSEQ"), "%s", r);
  ck_assert_str_eq(ask(&b, "e ENABLE CONDSTORE\r\n"),
                   "* ENABLED CONDSTORE\r\n"
                   "* OK [NOMODSEQ] No permanent mod-sequences\r\n"
                   "e OK ENABLE completed\r\n");
  ck_assert_str_eq(ask(&b, "f STORE 1 +FLAGS.SILENT (\\Seen)\r\n"),
                   "f OK STORE completed\r\n");
  mailproto_imap_free(b.s);
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* Sends a command and lets all its output out (into the sink, when one is
 * set, which then holds this command's output alone). */
static void say_all(client *c, const char *text) {
  c->sink_len = 0;
  say(c, text);
  for (int turn = 0; mailproto_imap_want_write(c->s); turn++) {
    ck_assert_int_lt(turn, 10000);
    ck_assert_int_eq(mailproto_imap_writable(c->s), 0);
  }
}

/* MODIFIED lists every failure; past MODIFIED_RUNS_MAX runs the last run
 * stretches to the last failure (a client rechecks the messages between;
 * none that failed is left out). Every other message of 10,000 carries
 * the keyword, so UNCHANGEDSINCE 0 fails for 5,000 separate ones. */
START_TEST(test_mailproto_imap_condstore_modified_many) {
  enum { N = 10000, RUNS_MAX = 4096 };
  mailproto_memstore *ms = store_new();
  for (int i = 0; i < N; i++)
    deliver(ms, "Subject: m\r\n\r\nm\r\n");
  client a;
  client_open(&a, ms, NULL);
  login_select(&a, "s SELECT INBOX (CONDSTORE)\r\n");
  static char got[1 << 21]; /* a new keyword: 10,000 FETCH lines */
  a.sink = got;
  a.sink_len = 0;
  a.sink_cap = sizeof got;
  say_all(&a, "k STORE 1:* +FLAGS.SILENT ($Done)\r\n");
  say_all(&a, "t STORE 2:* (UNCHANGEDSINCE 0) +FLAGS.SILENT ($Done)\r\n");
  a.sink = NULL;
  char *tagged = strstr(got, "t OK [MODIFIED ");
  ck_assert_ptr_nonnull(tagged);
  /* 2:* fails for every message from 2 on: one range. */
  ck_assert_str_eq(tagged, "t OK [MODIFIED 2:10000] Conditional STORE "
                           "failed\r\n");
  a.sink = got;
  a.sink_len = 0;
  say_all(&a, "r STORE 1:* -FLAGS.SILENT ($Done)\r\n");
  for (int i = 1; i <= N; i += 2) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "p%d STORE %d +FLAGS.SILENT ($Done)\r\n", i, i);
    say_all(&a, cmd);
  }
  a.sink_len = 0;
  say_all(&a, "q STORE 1:* (UNCHANGEDSINCE 0) +FLAGS.SILENT ($Done)\r\n");
  a.sink = NULL;
  tagged = strstr(got, "q OK [MODIFIED ");
  ck_assert_ptr_nonnull(tagged);
  /* 1,3,5,... : the first RUNS_MAX - 1 alone, then one range to N - 1. */
  static char want[1 << 16];
  size_t n = (size_t)snprintf(want, sizeof want, "q OK [MODIFIED ");
  for (int r = 0; r < RUNS_MAX - 1; r++)
    n += (size_t)snprintf(want + n, sizeof want - n, "%s%d", r ? "," : "",
                          2 * r + 1);
  snprintf(want + n, sizeof want - n, ",%d:%d] Conditional STORE failed\r\n",
           2 * (RUNS_MAX - 1) + 1, N - 1);
  ck_assert_str_eq(tagged, want);
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* Collects the UIDs of every "* VANISHED [(EARLIER) ]set" line of `text`
 * into `mark` (mark[uid] = 1); returns how many lines there were. */
static int vanished_uids(const char *text, int earlier, unsigned char *mark,
                         size_t size) {
  const char *head = earlier ? "* VANISHED (EARLIER) " : "* VANISHED ";
  int lines = 0;
  for (const char *p = strstr(text, head); p; p = strstr(p, head)) {
    if (!earlier && strncmp(p, "* VANISHED (EARLIER)", 20) == 0) {
      p++;
      continue;
    }
    lines++;
    p += strlen(head);
    while (*p != '\r') {
      char *end;
      unsigned long lo = strtoul(p, &end, 10), hi = lo;
      if (*end == ':')
        hi = strtoul(end + 1, &end, 10);
      if (lo > hi) {
        unsigned long t = lo;
        lo = hi;
        hi = t;
      }
      for (unsigned long u = lo; u <= hi; u++) {
        ck_assert_uint_lt(u, size);
        ck_assert_msg(!mark[u], "UID %lu twice", u);
        mark[u] = 1;
      }
      p = *end == ',' ? end + 1 : end;
    }
  }
  return lines;
}

/* RFC 7162 3.2.10.2: after ENABLE QRESYNC every expunge goes out as
 * VANISHED, another session's too (and EXPUNGE where QRESYNC is not on);
 * long rounds and long VANISHED (EARLIER) answers are split into lines
 * that each fit the output, together naming each UID exactly once. */
START_TEST(test_mailproto_imap_qresync_vanished) {
  enum { N = 6000 };
  mailproto_memstore *ms = store_new();
  for (int i = 0; i < N; i++)
    deliver(ms, "Subject: m\r\n\r\nm\r\n");
  client a, b;
  client_open(&a, ms, NULL);
  client_open(&b, ms, NULL);
  take(&a);
  ck_assert_ptr_nonnull(strstr(ask(&a, "a LOGIN alice secret\r\n"), "a OK"));
  ck_assert_str_eq(ask(&a, "e ENABLE QRESYNC\r\n"),
                   "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n");
  const char *r = ask(&a, "s SELECT INBOX\r\n");
  ck_assert_msg(strstr(r, "s OK") != NULL, "%s", r);
  login_select(&b, "s SELECT INBOX\r\n");
  /* b deletes every even UID and expunges. */
  static char got[1 << 21];
  b.sink = got;
  b.sink_cap = sizeof got;
  for (int u = 2; u <= N; u += 2) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "d UID STORE %d +FLAGS.SILENT (\\Deleted)\r\n",
             u);
    say_all(&b, cmd);
  }
  say_all(&b, "x EXPUNGE\r\n");
  ck_assert_ptr_nonnull(strstr(got, "* 6000 EXPUNGE\r\n")); /* b: no QRESYNC */
  b.sink = NULL;
  /* a learns of it as VANISHED, in lines of bounded length. */
  static unsigned char mark[N + 2];
  a.sink = got;
  a.sink_cap = sizeof got;
  say_all(&a, "n NOOP\r\n");
  ck_assert_ptr_null(strstr(got, "EXPUNGE"));
  int lines = vanished_uids(got, 0, mark, sizeof mark);
  ck_assert_int_gt(lines, 1);
  for (int u = 1; u <= N; u++)
    ck_assert_msg(mark[u] == (u % 2 == 0), "UID %d", u);
  /* A new SELECT naming all 6000: VANISHED (EARLIER) for the even ones. */
  memset(mark, 0, sizeof mark);
  say_all(&a, "q SELECT INBOX (QRESYNC (1 99999 1:6000))\r\n");
  lines = vanished_uids(got, 1, mark, sizeof mark);
  ck_assert_int_gt(lines, 1);
  for (int u = 1; u <= N; u++)
    ck_assert_msg(mark[u] == (u % 2 == 0), "UID %d", u);
  ck_assert_ptr_nonnull(strstr(got, "q OK [READ-WRITE] SELECT completed"));
  ck_assert_ptr_null(strstr(got, " FETCH ")); /* nothing changed since */
  /* UID FETCH VANISHED over part of it: 100..200 gives the even ones. */
  memset(mark, 0, sizeof mark);
  say_all(&a, "f UID FETCH 100:200 (FLAGS) (CHANGEDSINCE 99999 VANISHED)\r\n");
  ck_assert_int_eq(vanished_uids(got, 1, mark, sizeof mark), 1);
  for (int u = 1; u <= N; u++)
    ck_assert_msg(mark[u] == (u >= 100 && u <= 200 && u % 2 == 0), "UID %d", u);
  a.sink = NULL;
  /* b expunges UID 1 and the highest one left, 5999. A UID SEARCH naming
   * sequence numbers announces nothing (RFC 7162 3.2.10.2); one naming
   * UIDs may. */
  ck_assert_ptr_nonnull(strstr(
      ask(&b, "d UID STORE 1,5999 +FLAGS.SILENT (\\Deleted)\r\n"), "d OK"));
  ck_assert_ptr_nonnull(strstr(ask(&b, "x EXPUNGE\r\n"), "x OK"));
  ck_assert_str_eq(ask(&a, "u UID SEARCH 1:2\r\n"),
                   "* SEARCH 1 3\r\nu OK SEARCH completed\r\n");
  ck_assert_str_eq(ask(&a, "v UID SEARCH UID 3\r\n"),
                   "* SEARCH 3\r\n* VANISHED 5999,1\r\n"
                   "v OK SEARCH completed\r\n");
  /* "*" in a VANISHED set reaches UIDNEXT - 1: 5999 and 6000, above the
   * last message left (5997), are reported. */
  ck_assert_str_eq(
      ask(&a, "f UID FETCH 5990:* (FLAGS) (CHANGEDSINCE 99999 VANISHED)\r\n"),
      "* VANISHED (EARLIER) 5990,5992,5994,5996,5998:6000\r\n"
      "f OK FETCH completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* Sizes and dates are the same whether the store answers them (its
 * message_get hook) or the session keeps them (a backend built before
 * the hook: a shorter ops table), also for a message another session
 * expunged whose EXPUNGE is not out yet (RFC 2180 4.1). */
START_TEST(test_mailproto_imap_sizes_with_and_without_message_get) {
  char first[2][1024], second[2][1024];
  for (int older = 0; older < 2; older++) {
    mailproto_memstore *ms = store_new();
    deliver(ms, "Subject: a\r\n\r\na\r\n");
    deliver(ms, "Subject: bb\n\nbare LF\n");
    deliver(ms, "Subject: c\r\n\r\nc\r\n");
    mailproto_store mem;
    mailproto_memstore_store(ms, &mem);
    mailproto_store_ops ops = *mem.ops;
    if (older)
      ops.struct_size = offsetof(mailproto_store_ops, message_get);
    mailproto_store st = {&ops, mem.ctx};
    client a, b;
    client_open_store(&a, &st);
    client_open_store(&b, &st);
    login_select(&a, "s SELECT INBOX\r\n");
    login_select(&b, "s SELECT INBOX\r\n");
    ck_assert_str_eq(ask(&b, "x STORE 2 +FLAGS.SILENT (\\Deleted)\r\n"),
                     "x OK STORE completed\r\n");
    ck_assert_str_eq(ask(&b, "y EXPUNGE\r\n"),
                     "* 2 EXPUNGE\r\ny OK EXPUNGE completed\r\n");
    /* a's NOOP learns of the expunge but may not announce it here */
    keep(first[older], sizeof first[older],
         ask(&a, "f FETCH 1:3 (RFC822.SIZE INTERNALDATE)\r\n"));
    ck_assert_msg(strstr(first[older], "* 2 FETCH (RFC822.SIZE 24 ") != NULL,
                  "%s", first[older]);
    ck_assert_ptr_null(strstr(first[older], "EXPUNGE"));
    /* after the EXPUNGE is out, the numbers move up */
    keep(second[older], sizeof second[older],
         ask(&a, "u UID FETCH 1:* RFC822.SIZE\r\n"));
    ck_assert_ptr_nonnull(strstr(second[older], "* 2 EXPUNGE"));
    ck_assert_ptr_nonnull(strstr(ask(&a, "g FETCH 2 (UID RFC822.SIZE)\r\n"),
                                 "* 2 FETCH (UID 3 RFC822.SIZE 17)\r\n"));
    mailproto_imap_free(a.s);
    mailproto_imap_free(b.s);
    mailproto_memstore_free(ms);
  }
  ck_assert_str_eq(first[0], first[1]);
  ck_assert_str_eq(second[0], second[1]);
}
END_TEST

/* ------------------------------------------------------------------ */
/* A fuller harness: counting allocator, fault store, a transport with */
/* a budget, output compared with an expected stream                   */
/* ------------------------------------------------------------------ */

typedef struct ctx {
  alloc_fail af;
  mailproto_memstore *ms;
  mailproto_store inner, outer;
  faultstore *fault;
  mailproto_imap *s;
  char *out; /* output kept when expect is NULL */
  size_t len, cap;
  size_t budget;         /* bytes send takes per call */
  const uint8_t *expect; /* when set: output is compared, not kept */
  size_t expect_len, total;
  int mismatch;
  int policy_calls;
  mailproto_op *held; /* a policy op the test completes later */
} ctx;

static ptrdiff_t c_send(mailproto_imap *s, const uint8_t *data, size_t len,
                        void *user_data) {
  ctx *c = user_data;
  (void)s;
  if (len > c->budget)
    len = c->budget;
  if (c->expect) {
    if (c->total + len > c->expect_len ||
        memcmp(c->expect + c->total, data, len) != 0)
      c->mismatch = 1;
  } else {
    if (c->len + len + 1 > c->cap) {
      c->cap = 2 * (c->len + len + 1);
      c->out = realloc(c->out, c->cap);
      ck_assert_ptr_nonnull(c->out);
    }
    memcpy(c->out + c->len, data, len);
    c->len += len;
    c->out[c->len] = '\0';
  }
  c->total += len;
  return (ptrdiff_t)len;
}

static void ctx_init(ctx *c) {
  memset(c, 0, sizeof *c);
  alloc_fail_init(&c->af, 0);
  c->budget = (size_t)-1;
  ck_assert_int_eq(mailproto_memstore_new(NULL, &c->ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(c->ms, "alice", "secret"), 0);
  mailproto_memstore_store(c->ms, &c->inner);
  ck_assert_int_eq(faultstore_new(&c->inner, NULL, &c->fault), 0);
  faultstore_store(c->fault, &c->outer);
}

static void ctx_open(ctx *c, mailproto_imap_config *cfg,
                     const mailproto_imap_callbacks *extra) {
  mailproto_imap_config def;
  mailproto_imap_callbacks cb;
  if (!cfg) {
    mailproto_imap_config_init(&def, sizeof def);
    def.secure = 1;
    cfg = &def;
  }
  cfg->allocator = &c->af.allocator;
  if (extra)
    cb = *extra;
  else
    mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = c_send;
  ck_assert_int_eq(mailproto_imap_new(cfg, &cb, &c->outer, c, &c->s), 0);
}

static void ctx_free(ctx *c) {
  mailproto_imap_free(c->s);
  ck_assert_int_eq(c->af.live, 0);
  faultstore_free(c->fault);
  mailproto_memstore_free(c->ms);
  free(c->out);
}

static const char *ctx_take(ctx *c) {
  static char copy[1 << 16];
  size_t n = c->len < sizeof copy - 1 ? c->len : sizeof copy - 1;
  memcpy(copy, c->out ? c->out : "", n);
  copy[n] = '\0';
  c->len = 0;
  return copy;
}

/* Runs deferred store ops and writes until nothing moves. */
static void pump(ctx *c) {
  for (int turn = 0; turn < 100000; turn++) {
    int done = faultstore_run_pending(c->fault);
    ck_assert_int_ge(done, 0);
    int progress = done > 0;
    if (mailproto_imap_want_write(c->s)) {
      size_t before = c->total;
      ck_assert_int_eq(mailproto_imap_writable(c->s), 0);
      progress |= c->total > before;
    }
    if (!progress)
      return;
  }
  ck_abort_msg("pump never settled");
}

static void ctx_say(ctx *c, const char *text) {
  size_t len = strlen(text), used = 0;
  for (int turn = 0; used < len && turn < 1000; turn++) {
    if (mailproto_imap_want_read(c->s)) {
      ptrdiff_t n =
          mailproto_imap_feed(c->s, (const uint8_t *)text + used, len - used);
      ck_assert_int_ge(n, 0);
      used += (size_t)n;
    }
    pump(c);
  }
  ck_assert_uint_eq(used, len);
}

/* A message of `size` octets with CRLF lines of 70 characters. */
static char *big_message(size_t size) {
  char *m = malloc(size + 1);
  ck_assert_ptr_nonnull(m);
  size_t i = 0;
  const char head[] = "Subject: big\r\n\r\n";
  memcpy(m, head, sizeof head - 1);
  i = sizeof head - 1;
  for (size_t col = 0; i < size; i++) {
    if (col == 70 && i + 2 <= size) {
      m[i++] = '\r';
      m[i] = '\n';
      col = 0;
    } else {
      m[i] = (char)('a' + (i % 26));
      col++;
    }
  }
  m[size] = '\0';
  return m;
}

/* A 2 MB message through a transport that is full, then takes a few
 * bytes per turn: the output is exact, and the session's memory never
 * passes the output bound (watermark plus slack) plus its small state. */
START_TEST(test_mailproto_imap_writable_big_fetch_bounded_memory) {
  ctx c;
  ctx_init(&c);
  size_t size = 2 * 1024 * 1024;
  char *msg = big_message(size);
  ck_assert_int_eq(
      imap_test_append(c.ms, "alice", "INBOX", msg, size, 0, NULL, 0), 0);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  ctx_open(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_say(&c, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
  ck_assert_ptr_nonnull(strstr(ctx_take(&c), "b OK [READ-WRITE]"));
  char head[64];
  int hl = snprintf(head, sizeof head, "* 1 FETCH (BODY[] {%zu}\r\n", size);
  const char tail[] = ")\r\nf OK FETCH completed\r\n";
  size_t expect_len = (size_t)hl + size + sizeof tail - 1;
  uint8_t *expect = malloc(expect_len);
  memcpy(expect, head, (size_t)hl);
  memcpy(expect + hl, msg, size);
  memcpy(expect + hl + size, tail, sizeof tail - 1);
  free(msg);
  c.expect = expect;
  c.expect_len = expect_len;
  c.total = 0;
  c.budget = 0;
  size_t peak_before = c.af.live_bytes;
  const char *cmd = "f FETCH 1 BODY.PEEK[]\r\nn NOOP\r\n";
  ck_assert_int_eq(mailproto_imap_feed(c.s, (const uint8_t *)cmd, 24), 23);
  ck_assert_int_eq(mailproto_imap_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_imap_want_write(c.s), 1);
  size_t turns = 0;
  c.af.peak_bytes = c.af.live_bytes;
  while (mailproto_imap_want_write(c.s)) {
    c.budget = 4093;
    if (mailproto_imap_writable(c.s) != 0 || ++turns > expect_len)
      ck_abort_msg("writable failed or never finished (turn %zu)", turns);
  }
  ck_assert_int_eq(c.mismatch, 0);
  ck_assert_uint_eq(c.total, expect_len);
  ck_assert_uint_lt(c.af.peak_bytes,
                    peak_before + cfg.output_watermark + 2 * 64 * 1024);
  c.expect = NULL;
  c.budget = (size_t)-1;
  ctx_say(&c, "n NOOP\r\n");
  ck_assert_str_eq(ctx_take(&c), "n OK NOOP completed\r\n");
  free(expect);
  ctx_free(&c);
}
END_TEST

/* The same FETCH with every store operation deferred and partial
 * windows in the middle of CRLF pairs of a bare-LF message. */
START_TEST(test_mailproto_imap_writable_deferred_partial_fetch) {
  ctx c;
  ctx_init(&c);
  const char *msg = "A: 1\nB: 2\n\nline one\nline two\n";
  ck_assert_int_eq(
      imap_test_append(c.ms, "alice", "INBOX", msg, strlen(msg), 0, NULL, 0),
      0);
  faultstore_defer_all(c.fault, 1);
  ctx_open(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_say(&c, "a LOGIN alice secret\r\nb SELECT INBOX\r\n");
  ctx_take(&c);
  /* RFC822 form: "A: 1\r\nB: 2\r\n\r\nline one\r\nline two\r\n" (34). */
  ctx_say(&c,
          "f FETCH 1 (RFC822.SIZE BODY.PEEK[]<5.3> BODY.PEEK[TEXT]<9.4>)\r\n");
  ck_assert_str_eq(ctx_take(&c),
                   "* 1 FETCH (RFC822.SIZE 34 BODY[]<5> {3}\r\n\nB: "
                   "BODY[TEXT]<9> {4}\r\n\nlin)\r\nf OK FETCH completed\r\n");
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deferred policy callbacks, freeing with work pending                */
/* ------------------------------------------------------------------ */

static int held_policy(mailproto_imap *s, mailproto_op *op, const char *who,
                       void *user_data) {
  ctx *c = user_data;
  (void)s;
  (void)who;
  c->policy_calls++;
  c->held = op;
  return MAILPROTO_DEFERRED;
}

START_TEST(test_mailproto_imap_start_deferred_connect) {
  ctx c;
  ctx_init(&c);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.connect = held_policy;
  cb.auth = held_policy;
  ctx_open(&c, NULL, &cb);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ck_assert_str_eq(ctx_take(&c), "");
  ck_assert_int_eq(mailproto_imap_want_read(c.s), 0);
  ck_assert_int_eq(mailproto_imap_want_write(c.s), 0);
  ck_assert_int_eq(mailproto_imap_closed(c.s), 0);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  ck_assert_ptr_nonnull(strstr(ctx_take(&c), "* OK [CAPABILITY IMAP4rev1"));
  /* The auth policy waits too; pipelined input waits with it. */
  const char *in = "a LOGIN alice secret\r\nb NOOP\r\n";
  ck_assert_int_eq(mailproto_imap_feed(c.s, (const uint8_t *)in, strlen(in)),
                   22);
  ck_assert_int_eq(c.policy_calls, 2);
  ck_assert_str_eq(ctx_take(&c), "");
  ck_assert_int_eq(mailproto_op_set_reply(c.held, 550, NULL,
                                          "[CONTACTADMIN] Locked\r\n* OK x"),
                   0);
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), 0);
  ck_assert_str_eq(ctx_take(&c), "a NO [CONTACTADMIN] Locked  * OK x\r\n");
  ck_assert_int_eq(mailproto_op_complete(c.held, 0), MAILPROTO_ERR_STATE);
  ctx_say(&c, "b NOOP\r\n");
  ck_assert_str_eq(ctx_take(&c), "b OK NOOP completed\r\n");
  ctx_free(&c);
}
END_TEST

/* Freeing a session while a policy waits (abandoned) or a store op waits
 * (cancelled) leaks nothing and calls back nothing. */
START_TEST(test_mailproto_imap_free_with_pending_work) {
  for (int which = 0; which < 4; which++) {
    ctx c;
    ctx_init(&c);
    deliver(c.ms, "Subject: x\r\n\r\nx\r\n");
    mailproto_imap_callbacks cb;
    mailproto_imap_callbacks_init(&cb, sizeof cb);
    if (which == 0)
      cb.connect = held_policy;
    ctx_open(&c, NULL, &cb);
    ck_assert_int_eq(mailproto_imap_start(c.s), 0);
    if (which >= 1) {
      faultstore_defer_all(c.fault, 1);
      const char *cmd = which == 1 ? "a LOGIN alice secret\r\n"
                        : which == 2
                            ? "a LOGIN alice secret\r\nb SELECT INBOX\r\n"
                            : "a LOGIN alice secret\r\nb APPEND INBOX {3}\r\n";
      size_t len = strlen(cmd), used = 0;
      for (int turn = 0; turn < 20 && used < len; turn++) {
        if (mailproto_imap_want_read(c.s))
          used += (size_t)mailproto_imap_feed(c.s, (const uint8_t *)cmd + used,
                                              len - used);
        if (used < len)
          faultstore_run_pending(c.fault);
      }
      ck_assert_uint_eq(faultstore_pending(c.fault), 1);
    }
    ctx_free(&c);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory, the transport failing, closing                              */
/* ------------------------------------------------------------------ */

/* An idle session costs little: about a kilobyte plus its view. */
START_TEST(test_mailproto_imap_feed_idle_memory) {
  ctx c;
  ctx_init(&c);
  enum { N = 1000 };
  for (int i = 0; i < N; i++)
    deliver(c.ms, "Subject: m\r\n\r\nm\r\n");
  ctx_open(&c, NULL, NULL);
  size_t created = c.af.live_bytes;
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_say(&c, "a LOGIN alice secret\r\n");
  ctx_take(&c);
  size_t logged_in = c.af.live_bytes;
  /* A burst must not leave the session holding its peak. */
  ctx_say(&c, "f FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n");
  ctx_take(&c);
  ctx_say(&c, "s SELECT INBOX\r\n");
  ctx_take(&c);
  ctx_say(&c, "f FETCH 1:* (FLAGS UID RFC822.SIZE INTERNALDATE)\r\n");
  ctx_take(&c);
  ctx_say(&c, "l LIST \"\" *\r\n");
  ctx_take(&c);
  size_t selected = c.af.live_bytes;
  /* Issue 7's goal: an idle authenticated session within 2 KiB plus 16
   * bytes per message of the selected mailbox. Once the client has taken
   * every reply the output buffer is given back, so login adds only the
   * user name. */
  ck_assert_uint_le(created, 2048);
  ck_assert_uint_le(logged_in, 2048);
  /* The view keeps 10 bytes a message; sizes and dates come from the
   * memory store's message_get hook, so the session keeps none. */
  ck_assert_uint_le(selected, 2048u + 16u * N);
  /* An empty mailbox: the view's struct and the name. The goal is 2048
   * in all (not met yet: see the report of issue 7); this bounds it. */
  ctx_say(&c, "c CREATE Empty\r\n");
  ctx_take(&c);
  ctx_say(&c, "s SELECT Empty\r\n");
  ctx_take(&c);
  ck_assert_uint_le(c.af.live_bytes, logged_in + 384u);
  ctx_free(&c);
}
END_TEST

static ptrdiff_t failing_send(mailproto_imap *s, const uint8_t *data,
                              size_t len, void *user_data) {
  (void)s;
  (void)data;
  (void)len;
  (void)user_data;
  return -1;
}

START_TEST(test_mailproto_imap_writable_send_failure_is_sticky) {
  mailproto_memstore *ms = store_new();
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = failing_send;
  mailproto_imap *s;
  ck_assert_int_eq(mailproto_imap_new(NULL, &cb, &st, NULL, &s), 0);
  ck_assert_int_eq(mailproto_imap_start(s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_imap_feed(s, (const uint8_t *)"a NOOP\r\n", 8),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_imap_sync(s), MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_imap_closed(s), 1);
  ck_assert_int_eq(mailproto_imap_want_read(s), 0);
  ck_assert_int_eq(mailproto_imap_want_write(s), 0);
  mailproto_imap_free(s);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_closed_after_logout) {
  mailproto_memstore *ms = store_new();
  client a;
  client_open(&a, ms, NULL);
  take(&a);
  ck_assert_int_eq(mailproto_imap_closed(a.s), 0);
  /* LOGOUT with a pipelined command: the rest is never read. */
  const char *in = "a LOGIN alice secret\r\nb LOGOUT\r\nc NOOP\r\n";
  ck_assert_int_eq(mailproto_imap_feed(a.s, (const uint8_t *)in, strlen(in)),
                   32);
  ck_assert_ptr_nonnull(strstr(take(&a), "* BYE Logging out\r\nb OK LOGOUT"));
  ck_assert_str_eq(mailproto_imap_user(a.s), "alice");
  ck_assert_int_eq(mailproto_imap_closed(a.s), 1);
  ck_assert_int_eq(mailproto_imap_want_read(a.s), 0);
  ck_assert_int_eq(mailproto_imap_want_write(a.s), 0);
  ck_assert_int_eq(mailproto_imap_feed(a.s, (const uint8_t *)"c NOOP\r\n", 8),
                   0);
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

START_TEST(test_mailproto_imap_set_secure_states) {
  mailproto_memstore *ms = store_new();
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cl_send;
  client a;
  memset(&a, 0, sizeof a);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  ck_assert_int_eq(mailproto_imap_new(&cfg, &cb, &st, &a, &a.s), 0);
  /* Before start: implicit TLS. */
  ck_assert_int_eq(mailproto_imap_set_secure(a.s), 0);
  ck_assert_int_eq(mailproto_imap_start(a.s), 0);
  ck_assert_ptr_null(strstr(take(&a), "LOGINDISABLED"));
  /* After start without STARTTLS: a state error. */
  ck_assert_int_eq(mailproto_imap_set_secure(a.s), MAILPROTO_ERR_STATE);
  ck_assert_ptr_nonnull(strstr(ask(&a, "a LOGIN alice secret\r\n"), "a OK"));
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CRAM-MD5 (RFC 2195) with its unpredictable challenge                */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_imap_sasl_line_cram_md5) {
  mailproto_memstore *ms = store_new();
  client a;
  client_open(&a, ms, NULL);
  take(&a);
  const char *r = ask(&a, "a AUTHENTICATE CRAM-MD5\r\n");
  ck_assert_int_eq(strncmp(r, "+ ", 2), 0);
  char b64[512], challenge[512];
  size_t n = strcspn(r + 2, "\r");
  ck_assert_uint_lt(n, sizeof b64);
  memcpy(b64, r + 2, n);
  long cl = mailproto_base64_decode(b64, n, challenge, sizeof challenge - 1);
  ck_assert_int_gt(cl, 0);
  challenge[cl] = '\0';
  ck_assert_int_eq(challenge[0], '<');
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[33], resp[128], line[256];
  mailproto_hmac_md5("secret", 6, challenge, (size_t)cl, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  int rl = snprintf(resp, sizeof resp, "alice %s", hex);
  long bl = mailproto_base64_encode(resp, (size_t)rl, line, sizeof line - 3);
  ck_assert_int_gt(bl, 0);
  memcpy(line + bl, "\r\n", 3);
  ck_assert_ptr_nonnull(strstr(ask(&a, line), "a OK [CAPABILITY"));
  /* A second challenge differs from the first. */
  client b;
  client_open(&b, ms, NULL);
  take(&b);
  const char *r2 = ask(&b, "a AUTHENTICATE CRAM-MD5\r\n");
  ck_assert_int_ne(strncmp(r2 + 2, b64, n), 0);
  ck_assert_ptr_nonnull(
      strstr(ask(&b, "*\r\n"), "a BAD Authentication cancelled"));
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* ------------------------------------------------------------------ */
/* IDLE woken by an SMTP delivery                                       */
/* ------------------------------------------------------------------ */

static ptrdiff_t smtp_sink(mailproto_smtp *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  (void)data;
  (void)user_data;
  return (ptrdiff_t)len;
}

START_TEST(test_mailproto_imap_sync_idle_woken_by_smtp) {
  mailproto_memstore *ms = store_new();
  client a;
  client_open(&a, ms, NULL);
  login_select(&a, "s SELECT INBOX\r\n");
  ck_assert_str_eq(ask(&a, "i IDLE\r\n"), "+ idling\r\n");
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_smtp_callbacks scb;
  mailproto_smtp_callbacks_init(&scb, sizeof scb);
  scb.send = smtp_sink;
  mailproto_smtp *smtp;
  ck_assert_int_eq(mailproto_smtp_new(NULL, &scb, &st, NULL, &smtp), 0);
  ck_assert_int_eq(mailproto_smtp_start(smtp), 0);
  const char *mail = "EHLO client\r\nMAIL FROM:<bob@example.org>\r\n"
                     "RCPT TO:<alice@example.org>\r\nDATA\r\n"
                     "Subject: via SMTP\r\n\r\nHi\r\n.\r\nQUIT\r\n";
  size_t len = strlen(mail), used = 0;
  for (int turn = 0; turn < 100 && used < len; turn++) {
    ptrdiff_t k =
        mailproto_smtp_feed(smtp, (const uint8_t *)mail + used, len - used);
    ck_assert_int_ge(k, 0);
    used += (size_t)k;
  }
  ck_assert_uint_eq(used, len);
  mailproto_smtp_free(smtp);
  ck_assert_int_ge(a.wakeups, 1);
  ck_assert_int_eq(mailproto_imap_sync(a.s), 0);
  ck_assert_str_eq(take(&a), "* 1 EXISTS\r\n* 1 RECENT\r\n");
  ck_assert_str_eq(ask(&a, "DONE\r\n"), "i OK IDLE terminated\r\n");
  const char *r = ask(&a, "f FETCH 1 BODY.PEEK[HEADER]\r\n");
  ck_assert_ptr_nonnull(strstr(r, "Subject: via SMTP\r\n"));
  mailproto_imap_free(a.s);
  mailproto_memstore_free(ms);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Out of memory                                                        */
/* ------------------------------------------------------------------ */

/* Every allocation of a session's life failing in turn: a clean NOMEM
 * (from new or as the session's fatal code), and no leak. */
START_TEST(test_mailproto_imap_new_allocation_failures) {
  static const char *const script =
      "a LOGIN alice secret\r\nb SELECT INBOX\r\nc FETCH 1:* (FLAGS "
      "BODY.PEEK[HEADER])\r\nd STORE 1 +FLAGS (\\Seen $K)\r\ne COPY 1 "
      "INBOX\r\nf LIST \"\" *\r\ng APPEND INBOX {3+}\r\nabc\r\nh EXPUNGE\r\n"
      "i LOGOUT\r\n";
  int completed = 0;
  for (unsigned long n = 1; n < 100000 && !completed; n++) {
    ctx c;
    ctx_init(&c);
    deliver(c.ms, "Subject: 1\r\n\r\n1\r\n");
    alloc_fail_init(&c.af, n);
    mailproto_imap_config cfg;
    mailproto_imap_config_init(&cfg, sizeof cfg);
    cfg.secure = 1;
    cfg.allocator = &c.af.allocator;
    mailproto_imap_callbacks cb;
    mailproto_imap_callbacks_init(&cb, sizeof cb);
    cb.send = c_send;
    int rc = mailproto_imap_new(&cfg, &cb, &c.outer, &c, &c.s);
    if (rc == 0) {
      rc = mailproto_imap_start(c.s);
      size_t len = strlen(script), used = 0;
      for (int turn = 0; rc >= 0 && used < len && turn < 100; turn++) {
        ptrdiff_t k = mailproto_imap_feed(c.s, (const uint8_t *)script + used,
                                          len - used);
        if (k < 0)
          rc = (int)k;
        else
          used += (size_t)k;
      }
      if (rc < 0) {
        ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
        ck_assert_int_eq(mailproto_imap_closed(c.s), 1);
      } else {
        ck_assert_int_eq(mailproto_imap_closed(c.s), 1);
      }
    } else {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      ck_assert_ptr_null(c.s);
    }
    completed = !alloc_fail_triggered(&c.af);
    ctx_free(&c);
  }
  ck_assert_int_eq(completed, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Attack classes of issue 7: bounded memory whatever the input        */
/* ------------------------------------------------------------------ */

/* Feeds `len` bytes made by `gen` in chunks of 4 KiB; returns the peak of
 * live bytes seen after each chunk. */
static size_t feed_generated(ctx *c, size_t len, char (*gen)(size_t)) {
  char chunk[4096];
  size_t peak = 0;
  for (size_t at = 0; at < len;) {
    size_t n = len - at < sizeof chunk ? len - at : sizeof chunk;
    for (size_t i = 0; i < n; i++)
      chunk[i] = gen(at + i);
    size_t used = 0;
    while (used < n) {
      ptrdiff_t k =
          mailproto_imap_feed(c->s, (const uint8_t *)chunk + used, n - used);
      ck_assert_int_ge(k, 0);
      if (k == 0)
        pump(c);
      used += (size_t)k;
    }
    at += n;
    if (c->af.live_bytes > peak)
      peak = c->af.live_bytes;
  }
  return peak;
}

static char gen_x(size_t i) {
  (void)i;
  return 'x';
}

/* A 10 MB line without a line end costs at most the line limit. */
START_TEST(test_mailproto_imap_feed_long_line_bounded) {
  ctx c;
  ctx_init(&c);
  ctx_open(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_take(&c);
  size_t before = c.af.live_bytes;
  size_t peak = feed_generated(&c, 10u * 1024 * 1024, gen_x);
  ck_assert_uint_lt(peak - before, 8192 + 2 + 1024);
  ck_assert_str_eq(ctx_take(&c), "");
  ctx_say(&c, "\r\na NOOP\r\n");
  ck_assert_str_eq(ctx_take(&c),
                   "* BAD Command line too long\r\na OK NOOP completed\r\n");
  ctx_free(&c);
}
END_TEST

/* "{4294967295}" before login allocates nothing and reads nothing. */
START_TEST(test_mailproto_imap_feed_huge_literal_allocates_nothing) {
  ctx c;
  ctx_init(&c);
  ctx_open(&c, NULL, NULL);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_take(&c);
  unsigned long calls = c.af.calls;
  const char *in = "a LOGIN {4294967295}\r\n";
  ck_assert_int_eq(mailproto_imap_feed(c.s, (const uint8_t *)in, strlen(in)),
                   (ptrdiff_t)strlen(in));
  ck_assert_str_eq(ctx_take(&c), "a BAD [TOOBIG] Literal too big\r\n");
  /* Only the reply's own small buffers were allocated (and given back). */
  ck_assert_uint_le(c.af.calls - calls, 4);
  ck_assert_uint_lt(c.af.peak_bytes, c.af.live_bytes + 4096);
  /* The same after login for a literal over max_literal, and an APPEND
   * over APPENDLIMIT: refused before a byte of it is read. */
  ctx_say(&c, "b LOGIN alice secret\r\n");
  ctx_take(&c);
  ctx_say(&c, "c CREATE {4294967295}\r\nd APPEND INBOX {4294967295}\r\n");
  ck_assert_str_eq(ctx_take(&c), "c BAD [TOOBIG] Literal too big\r\n"
                                 "d NO [TOOBIG] Message too big\r\n");
  ctx_free(&c);
}
END_TEST

/* A thousand literals in one command and ten thousand nested
 * parentheses stay within the limits (CVE-2024-34055 class). */
START_TEST(test_mailproto_imap_feed_many_literals_deep_nesting) {
  ctx c;
  ctx_init(&c);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  cfg.max_line = 32768;
  cfg.max_command = 65536;
  ctx_open(&c, &cfg, NULL);
  ck_assert_int_eq(mailproto_imap_start(c.s), 0);
  ctx_say(&c, "a LOGIN alice secret\r\n");
  ctx_take(&c);
  size_t before = c.af.live_bytes;
  /* ID with a thousand parameters, each value a literal. */
  char *cmd = malloc(1000 * 16 + 64);
  size_t n = (size_t)sprintf(cmd, "b ID (");
  for (int i = 0; i < 1000; i++)
    n += (size_t)sprintf(cmd + n, "\"k%d\" {1+}\r\nv ", i);
  n += (size_t)sprintf(cmd + n, ")\r\nc NOOP\r\n");
  c.af.peak_bytes = c.af.live_bytes;
  ctx_say(&c, cmd);
  ck_assert_str_eq(ctx_take(&c), "b BAD [LIMIT] Too many literals\r\n"
                                 "c OK NOOP completed\r\n");
  ck_assert_uint_lt(c.af.peak_bytes - before, 64 * 1024);
  free(cmd);
  /* Ten thousand nested parentheses. */
  cmd = malloc(20100);
  n = (size_t)sprintf(cmd, "d SEARCH ");
  for (int i = 0; i < 10000; i++)
    cmd[n++] = '(';
  n += (size_t)sprintf(cmd + n, "ALL");
  for (int i = 0; i < 10000; i++)
    cmd[n++] = ')';
  n += (size_t)sprintf(cmd + n, "\r\ne NOOP\r\n");
  c.af.peak_bytes = c.af.live_bytes;
  ctx_say(&c, cmd);
  ck_assert_str_eq(ctx_take(&c), "d BAD Too deeply nested\r\n"
                                 "e OK NOOP completed\r\n");
  ck_assert_uint_lt(c.af.peak_bytes - before, 64 * 1024);
  free(cmd);
  /* A sequence set with thousands of ranges, and one that spans
   * everything: refused or cheap. */
  cmd = malloc(3000 * 8 + 64);
  n = (size_t)sprintf(cmd, "f SELECT INBOX\r\ng FETCH 1");
  for (int i = 0; i < 3000; i++)
    n += (size_t)sprintf(cmd + n, ",%d", i + 2);
  n += (size_t)sprintf(cmd + n, " FLAGS\r\nh UID FETCH 1:4294967295 UID\r\n");
  ctx_say(&c, cmd);
  const char *r = ctx_take(&c);
  ck_assert_ptr_nonnull(strstr(r, "g BAD Too many sequence ranges\r\n"));
  ck_assert_ptr_nonnull(strstr(r, "h OK FETCH completed\r\n"));
  free(cmd);
  ctx_free(&c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The Maildir store                                                    */
/* ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* The same session on the Maildir store, with a second session's
 * changes picked up by NOOP (a store that cannot notify is polled). */
/* CONDSTORE and QRESYNC over the Maildir store, whose mod-sequences are
 * kept on disk: another session's flag change reaches a QRESYNC session
 * with UID and MODSEQ, its expunge as VANISHED; a third session opening
 * with what the first had cached learns both with SELECT (QRESYNC). */
START_TEST(test_mailproto_imap_qresync_maildir_store) {
  char root[256];
  const char *t = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/mailproto-imap-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(root));
  mailproto_maildir_config mc;
  mailproto_maildir_config_init(&mc, sizeof mc);
  mc.root = root;
  mc.fsync = 0;
  mailproto_maildir *md;
  ck_assert_int_eq(mailproto_maildir_new(&mc, &md), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(md, "alice", "secret"), 0);
  mailproto_store st;
  mailproto_maildir_store(md, &st);
  client a, b, c;
  client_open_store(&a, &st);
  client_open_store(&b, &st);
  client_open_store(&c, &st);
  client *all[] = {&a, &b, &c};
  for (int i = 0; i < 3; i++) {
    take(all[i]);
    ck_assert_ptr_nonnull(
        strstr(ask(all[i], "a LOGIN alice secret\r\n"), "a OK"));
  }
  for (int i = 0; i < 3; i++) {
    char cmd[64];
    snprintf(cmd, sizeof cmd,
             "p APPEND INBOX {17+}\r\nSubject: %d\r\n\r\n%d\r\n\r\n", i, i);
    ck_assert_ptr_nonnull(strstr(ask(&b, cmd), "p OK [APPENDUID "));
  }
  ck_assert_str_eq(ask(&a, "e ENABLE QRESYNC\r\n"),
                   "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n");
  const char *r = ask(&a, "s SELECT INBOX\r\n");
  unsigned long uidvalidity = 0;
  unsigned long long cached = 0;
  const char *p = strstr(r, "[UIDVALIDITY ");
  ck_assert_ptr_nonnull(p);
  uidvalidity = strtoul(p + 13, NULL, 10);
  p = strstr(r, "[HIGHESTMODSEQ ");
  ck_assert_ptr_nonnull(p);
  cached = strtoull(p + 15, NULL, 10);
  ck_assert_ptr_nonnull(strstr(ask(&b, "s SELECT INBOX\r\n"), "s OK"));
  /* b flags message 2 and expunges message 3. */
  ck_assert_ptr_nonnull(
      strstr(ask(&b, "f STORE 2 +FLAGS.SILENT (\\Flagged)\r\n"), "f OK"));
  ck_assert_ptr_nonnull(
      strstr(ask(&b, "g STORE 3 +FLAGS.SILENT (\\Deleted)\r\n"), "g OK"));
  ck_assert_ptr_nonnull(strstr(ask(&b, "x EXPUNGE\r\n"), "* 3 EXPUNGE"));
  /* a (the Maildir store cannot notify: the NOOP syncs). */
  r = ask(&a, "n NOOP\r\n");
  ck_assert_msg(strstr(r, "* VANISHED 3\r\n") != NULL, "%s", r);
  p = strstr(r, "* 2 FETCH (UID 2 MODSEQ (");
  ck_assert_msg(p != NULL && strstr(p, ") FLAGS (\\Flagged \\Recent))\r\n"),
                "%s", r);
  unsigned long long flagged = strtoull(p + 25, NULL, 10);
  ck_assert_uint_gt(flagged, cached);
  /* c comes back with what a had cached before. */
  ck_assert_str_eq(ask(&c, "e ENABLE QRESYNC\r\n"),
                   "* ENABLED QRESYNC\r\ne OK ENABLE completed\r\n");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "q SELECT INBOX (QRESYNC (%lu %llu 1:3))\r\n",
           uidvalidity, cached);
  r = ask(&c, cmd);
  ck_assert_msg(strstr(r, "* VANISHED (EARLIER) 3\r\n") != NULL, "%s", r);
  char want[96];
  snprintf(want, sizeof want,
           "* 2 FETCH (UID 2 MODSEQ (%llu) FLAGS (\\Flagged))", flagged);
  ck_assert_msg(strstr(r, want) != NULL, "%s", r);
  ck_assert_ptr_null(strstr(r, "* 1 FETCH"));
  for (int i = 0; i < 3; i++)
    mailproto_imap_free(all[i]->s);
  mailproto_maildir_free(md);
  nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
END_TEST

START_TEST(test_mailproto_imap_feed_maildir_store) {
  char root[256];
  const char *t = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/mailproto-imap-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(root));
  mailproto_maildir_config mc;
  mailproto_maildir_config_init(&mc, sizeof mc);
  mc.root = root;
  mc.fsync = 0;
  mailproto_maildir *md;
  ck_assert_int_eq(mailproto_maildir_new(&mc, &md), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(md, "alice", "secret"), 0);
  mailproto_store st;
  mailproto_maildir_store(md, &st);
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cl_send;
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.secure = 1;
  client a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  ck_assert_int_eq(mailproto_imap_new(&cfg, &cb, &st, &a, &a.s), 0);
  ck_assert_int_eq(mailproto_imap_new(&cfg, &cb, &st, &b, &b.s), 0);
  ck_assert_int_eq(mailproto_imap_start(a.s), 0);
  ck_assert_int_eq(mailproto_imap_start(b.s), 0);
  take(&a);
  take(&b);
  ck_assert_ptr_nonnull(strstr(ask(&a, "a LOGIN alice secret\r\n"), "a OK"));
  ck_assert_ptr_nonnull(strstr(ask(&b, "a LOGIN alice secret\r\n"), "a OK"));
  ck_assert_str_eq(ask(&a, "b CREATE Work\r\n"), "b OK CREATE completed\r\n");
  const char *r = ask(&a, "c APPEND INBOX (\\Seen) {21+}\r\n"
                          "Subject: x\n\nBare LF\n\n\r\n");
  ck_assert_msg(strncmp(r, "c OK [APPENDUID ", 16) == 0, "%s", r);
  r = ask(&a, "d SELECT INBOX\r\n");
  ck_assert_ptr_nonnull(strstr(r, "* 1 EXISTS\r\n"));
  ck_assert_ptr_nonnull(strstr(r, "d OK [READ-WRITE]"));
  ck_assert_str_eq(ask(&a, "e FETCH 1 (FLAGS RFC822.SIZE BODY.PEEK[])\r\n"),
                   "* 1 FETCH (FLAGS (\\Seen \\Recent) RFC822.SIZE 25 BODY[] "
                   "{25}\r\nSubject: x\r\n\r\nBare LF\r\n\r\n)\r\n"
                   "e OK FETCH completed\r\n");
  r = ask(&b, "d SELECT INBOX\r\n");
  ck_assert_ptr_nonnull(strstr(r, "* 1 EXISTS\r\n"));
  ck_assert_str_eq(
      ask(&b, "f STORE 1 +FLAGS (\\Deleted)\r\n"),
      "* 1 FETCH (FLAGS (\\Seen \\Deleted))\r\nf OK STORE completed\r\n");
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"),
                   "* 1 FETCH (FLAGS (\\Seen \\Deleted \\Recent))\r\n"
                   "n OK NOOP completed\r\n");
  /* The Maildir store's UIDVALIDITY comes from the clock. */
  r = ask(&b, "g MOVE 1 Work\r\n");
  ck_assert_int_eq(strncmp(r, "* OK [COPYUID ", 14), 0);
  ck_assert_ptr_nonnull(strstr(r, " 1 1] Moved\r\n* 1 EXPUNGE\r\n"
                                  "g OK [HIGHESTMODSEQ 4] MOVE completed\r\n"));
  ck_assert_str_eq(ask(&a, "n NOOP\r\n"),
                   "* 1 EXPUNGE\r\nn OK NOOP completed\r\n");
  ck_assert_str_eq(ask(&a, "s STATUS Work (MESSAGES)\r\n"),
                   "* STATUS Work (MESSAGES 1)\r\ns OK STATUS completed\r\n");
  mailproto_imap_free(a.s);
  mailproto_imap_free(b.s);
  mailproto_maildir_free(md);
  nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
END_TEST

Suite *suite_imap_session(void) {
  Suite *s = suite_create("imap_session");
  TCase *tc = tcase_create("api");
  tcase_add_test(tc, test_mailproto_imap_config_init_defaults);
  tcase_add_test(tc, test_mailproto_imap_config_init_older_struct);
  tcase_add_test(tc, test_mailproto_imap_new_bad_arguments);
  tcase_add_test(tc, test_mailproto_imap_null_session);
  tcase_add_test(tc, test_mailproto_imap_feed_before_start);
  suite_add_tcase(s, tc);

  tc = tcase_create("two sessions");
  tcase_add_test(tc, test_mailproto_imap_sync_idle_woken_by_delivery);
  tcase_add_test(tc, test_mailproto_imap_sync_idle_change_during_first_round);
  tcase_add_test(tc, test_mailproto_imap_search_failed_save_empties_result);
  tcase_add_test(tc, test_mailproto_imap_search_long_lists_in_pieces);
  tcase_add_test(tc, test_mailproto_imap_condstore_two_sessions);
  tcase_add_test(tc, test_mailproto_imap_condstore_nomodseq);
  tcase_add_test(tc, test_mailproto_imap_condstore_modified_many);
  tcase_add_test(tc, test_mailproto_imap_qresync_vanished);
  tcase_add_test(tc,
                 test_mailproto_imap_sync_expunge_waits_for_allowed_command);
  tcase_add_test(tc, test_mailproto_imap_sync_flag_changes_two_sessions);
  tcase_add_test(tc, test_mailproto_imap_sync_expunge_timing);
  tcase_add_test(tc, test_mailproto_imap_sizes_with_and_without_message_get);
  tcase_add_test(tc, test_mailproto_imap_sync_idle_woken_by_smtp);
  tcase_add_test(tc, test_mailproto_imap_feed_maildir_store);
  tcase_add_test(tc, test_mailproto_imap_qresync_maildir_store);
  suite_add_tcase(s, tc);

  tc = tcase_create("contract");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_mailproto_imap_writable_big_fetch_bounded_memory);
  tcase_add_test(tc, test_mailproto_imap_writable_deferred_partial_fetch);
  tcase_add_test(tc, test_mailproto_imap_start_deferred_connect);
  tcase_add_test(tc, test_mailproto_imap_free_with_pending_work);
  tcase_add_test(tc, test_mailproto_imap_feed_idle_memory);
  tcase_add_test(tc, test_mailproto_imap_writable_send_failure_is_sticky);
  tcase_add_test(tc, test_mailproto_imap_closed_after_logout);
  tcase_add_test(tc, test_mailproto_imap_set_secure_states);
  tcase_add_test(tc, test_mailproto_imap_sasl_line_cram_md5);
  tcase_add_test(tc, test_mailproto_imap_new_allocation_failures);
  suite_add_tcase(s, tc);

  tc = tcase_create("bad input");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_mailproto_imap_feed_long_line_bounded);
  tcase_add_test(tc, test_mailproto_imap_feed_huge_literal_allocates_nothing);
  tcase_add_test(tc, test_mailproto_imap_feed_many_literals_deep_nesting);
  suite_add_tcase(s, tc);
  return s;
}
