/*
 * Direct tests of the SMTP/LMTP session for what transcripts cannot show:
 * the bytes that reach the store (dot-unstuffing, the Received: header,
 * normalised line ends), that nothing is visible after a refused, failed
 * or abandoned delivery, freeing with operations pending, bounded memory
 * for endless lines, the recipient counter, the size of an idle session,
 * deferred callbacks, fatal transport errors, backpressure and the config
 * checks.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/memstore.h"
#include "mailproto/smtp.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

#define HOST "mx.example.org"
#define DATE "Thu, 26 Nov 2026 14:18:27 +0000"
#define EHLO "EHLO client.example.org\r\n"
#define PLAIN_ALICE "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"

/* ------------------------------------------------------------------ */
/* The harness: a session over a faultstore over a memstore            */
/* ------------------------------------------------------------------ */

typedef struct harness {
  alloc_fail af; /* the session's allocator; the stores use libc */
  mailproto_memstore *ms;
  mailproto_store inner;
  faultstore *fault;
  mailproto_store store;
  mailproto_smtp_config cfg;
  mailproto_smtp_callbacks cb;
  const char *client;
  mailproto_smtp *s;

  char *out;
  size_t out_len, out_cap;
  size_t send_max;     /* bytes send takes per call; 0: all */
  ptrdiff_t send_fail; /* not 0: send returns this */
  unsigned long sends;

  /* Policy scripting. */
  int defer;             /* policy callbacks defer */
  mailproto_op *pending; /* the deferred one */
  int reject_kind;       /* SMTP_OP_* to refuse, or 0 */
  int reject_code;
  const char *reject_text;
  int set_reply_rc; /* what the last set_reply returned */
  int callbacks;    /* policy callbacks so far */
  int tls_asked;
  uint64_t message_size;
  size_t message_rcpts;
  char *body; /* what the body callback saw */
  size_t body_len;
  int delivered;
  int results[4];
} harness;

static ptrdiff_t h_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                        void *ud) {
  harness *t = ud;
  (void)s;
  t->sends++;
  if (t->send_fail)
    return t->send_fail;
  size_t take = t->send_max && t->send_max < len ? t->send_max : len;
  if (t->out_len + take + 1 > t->out_cap) {
    t->out_cap = (t->out_len + take + 1) * 2;
    t->out = realloc(t->out, t->out_cap);
    ck_assert_ptr_nonnull(t->out);
  }
  memcpy(t->out + t->out_len, data, take);
  t->out_len += take;
  t->out[t->out_len] = '\0';
  return (ptrdiff_t)take;
}

static mailproto_datetime h_now(mailproto_smtp *s, void *ud) {
  (void)s;
  (void)ud;
  mailproto_datetime dt = {1795702707, 0};
  return dt;
}

static int h_decide(harness *t, mailproto_op *op, int kind) {
  t->callbacks++;
  if (t->reject_kind == kind) {
    t->set_reply_rc =
        mailproto_op_set_reply(op, t->reject_code, NULL, t->reject_text);
  }
  if (t->defer) {
    t->pending = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static int h_start_tls(mailproto_smtp *s, void *ud) {
  harness *t = ud;
  (void)s;
  t->tls_asked++;
  return 0;
}

static int h_connect(mailproto_smtp *s, mailproto_op *op, const char *client,
                     void *ud) {
  (void)s;
  (void)client;
  return h_decide(ud, op, SMTP_OP_CONNECT);
}

static int h_helo(mailproto_smtp *s, mailproto_op *op, const char *verb,
                  const char *domain, void *ud) {
  (void)s;
  (void)verb;
  (void)domain;
  return h_decide(ud, op, SMTP_OP_HELO);
}

static int h_mail(mailproto_smtp *s, mailproto_op *op,
                  const mailproto_smtp_mail *m, void *ud) {
  (void)s;
  (void)m;
  return h_decide(ud, op, SMTP_OP_MAIL);
}

static int h_rcpt(mailproto_smtp *s, mailproto_op *op,
                  const mailproto_smtp_rcpt *r, void *ud) {
  (void)s;
  (void)r;
  return h_decide(ud, op, SMTP_OP_RCPT);
}

static int h_auth(mailproto_smtp *s, mailproto_op *op, const char *user,
                  void *ud) {
  (void)s;
  (void)user;
  return h_decide(ud, op, SMTP_OP_AUTH_POLICY);
}

static int h_data(mailproto_smtp *s, mailproto_op *op, void *ud) {
  (void)s;
  return h_decide(ud, op, SMTP_OP_DATA_START);
}

static void h_body(mailproto_smtp *s, const uint8_t *data, size_t len,
                   void *ud) {
  harness *t = ud;
  (void)s;
  t->body = realloc(t->body, t->body_len + len + 1);
  ck_assert_ptr_nonnull(t->body);
  memcpy(t->body + t->body_len, data, len);
  t->body_len += len;
}

static int h_message(mailproto_smtp *s, mailproto_op *op,
                     const mailproto_smtp_message *m, void *ud) {
  harness *t = ud;
  (void)s;
  t->message_size = m->size;
  t->message_rcpts = m->recipient_count;
  return h_decide(ud, op, SMTP_OP_MESSAGE);
}

static int h_vrfy(mailproto_smtp *s, mailproto_op *op, const char *arg,
                  void *ud) {
  (void)s;
  (void)arg;
  return h_decide(ud, op, SMTP_OP_VRFY);
}

static void h_delivered(mailproto_smtp *s, const mailproto_smtp_message *m,
                        const int *results, void *ud) {
  harness *t = ud;
  (void)s;
  t->delivered++;
  for (size_t i = 0; i < m->recipient_count && i < 4; i++)
    t->results[i] = results[i];
}

/* Stores and defaults; the test may change cfg and cb before h_start. */
static void h_init(harness *t) {
  memset(t, 0, sizeof *t);
  alloc_fail_init(&t->af, 0);
  ck_assert_int_eq(mailproto_memstore_new(NULL, &t->ms), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(t->ms, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_memstore_add_user(t->ms, "bob", "hunter2"), 0);
  mailproto_memstore_store(t->ms, &t->inner);
  ck_assert_int_eq(faultstore_new(&t->inner, NULL, &t->fault), 0);
  faultstore_store(t->fault, &t->store);
  mailproto_smtp_config_init(&t->cfg, sizeof t->cfg);
  t->cfg.hostname = HOST;
  t->cfg.allocator = &t->af.allocator;
  mailproto_smtp_callbacks_init(&t->cb, sizeof t->cb);
  t->cb.send = h_send;
  t->cb.now = h_now;
  t->cb.start_tls = h_start_tls;
  t->cb.connect = h_connect;
  t->cb.helo = h_helo;
  t->cb.mail = h_mail;
  t->cb.rcpt = h_rcpt;
  t->cb.auth = h_auth;
  t->cb.data_start = h_data;
  t->cb.body = h_body;
  t->cb.message = h_message;
  t->cb.vrfy = h_vrfy;
  t->cb.delivered = h_delivered;
  t->client = "192.0.2.7";
}

/* Output so far, as a string; clears it. The string lives until the
 * next call. */
static const char *h_take(harness *t) {
  static char *last;
  free(last);
  last = t->out ? t->out : calloc(1, 1);
  t->out = NULL;
  t->out_len = t->out_cap = 0;
  return last;
}

/* Completes deferred store operations and flushes output until nothing
 * moves. */
static void h_pump(harness *t) {
  for (int i = 0; i < 1000; i++) {
    int done = faultstore_run_pending(t->fault);
    ck_assert_int_ge(done, 0);
    int wrote = 0;
    if (mailproto_smtp_want_write(t->s)) {
      size_t before = t->out_len;
      ck_assert_int_eq(mailproto_smtp_writable(t->s), 0);
      wrote = t->out_len > before;
    }
    if (done == 0 && !wrote)
      return;
  }
  ck_abort_msg("the session does not settle");
}

static void h_start(harness *t) {
  ck_assert_int_eq(mailproto_smtp_new(&t->cfg, &t->cb, &t->store, t, &t->s), 0);
  if (t->client)
    ck_assert_int_eq(mailproto_smtp_set_client(t->s, t->client), 0);
  ck_assert_int_eq(mailproto_smtp_start(t->s), 0);
  h_pump(t);
}

/* Feeds all of data, letting deferred operations finish in between. */
static void h_feedn(harness *t, const void *data, size_t len) {
  const uint8_t *p = data;
  size_t used = 0;
  for (int spins = 0; used < len; spins++) {
    ck_assert_int_lt(spins, 10000000);
    if (mailproto_smtp_want_read(t->s)) {
      ptrdiff_t n = mailproto_smtp_feed(t->s, p + used, len - used);
      ck_assert_int_ge(n, 0);
      used += (size_t)n;
    }
    if (!mailproto_smtp_want_read(t->s) && mailproto_smtp_closed(t->s))
      break;
    h_pump(t);
  }
  h_pump(t);
}

static void h_feed(harness *t, const char *text) {
  h_feedn(t, text, strlen(text));
}

static void h_expect(harness *t, const char *text, const char *want) {
  h_feed(t, text);
  ck_assert_str_eq(h_take(t), want);
}

static void h_end(harness *t) {
  mailproto_smtp_free(t->s);
  t->s = NULL;
  ck_assert_int_eq(t->af.live, 0);
  ck_assert_uint_eq(faultstore_pending(t->fault), 0);
  faultstore_free(t->fault);
  mailproto_memstore_free(t->ms);
  free(t->body);
  h_take(t); /* frees the output */
}

/* ------------------------------------------------------------------ */
/* Reading the store                                                   */
/* ------------------------------------------------------------------ */

typedef struct uid_list {
  uint32_t uids[64];
  size_t n;
} uid_list;

static int collect_uid(mailproto_op *op, const mailproto_message_info *m) {
  uid_list *l = op->owner;
  if (l->n < 64)
    l->uids[l->n++] = m->uid;
  return 0;
}

static const mailproto_op_sink uid_sink = {.message = collect_uid};

/* Returns the number of messages in `user`'s INBOX; with `buf`, copies
 * message `index` there (NUL-terminated) and sets *len. */
static size_t inbox(harness *t, const char *user, size_t index, char *buf,
                    size_t size, size_t *len) {
  uid_list l = {{0}, 0};
  mailproto_op op;
  mailproto_op_init(&op, &uid_sink, &l);
  void *account, *mailbox;
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      mailproto_store_call_lookup_recipient(&t->inner, &op, 0, user, &account),
      0);
  ck_assert_int_eq(mailproto_store_call_open(&t->inner, &op, 0, account,
                                             "INBOX", MAILPROTO_OPEN_READONLY,
                                             NULL, NULL, &mailbox, &st),
                   0);
  if (buf && index < l.n) {
    size_t off = 0;
    for (;;) {
      const uint8_t *d;
      size_t n;
      ck_assert_int_eq(mailproto_store_call_read(&t->inner, &op, 0, mailbox,
                                                 l.uids[index], off, 65536, &d,
                                                 &n),
                       0);
      if (n == 0)
        break;
      ck_assert_uint_lt(off + n, size);
      memcpy(buf + off, d, n);
      off += n;
    }
    buf[off] = '\0';
    *len = off;
  }
  mailproto_store_call_close(&t->inner, mailbox);
  mailproto_store_call_release_account(&t->inner, account);
  return l.n;
}

static size_t count(harness *t, const char *user) {
  return inbox(t, user, 0, NULL, 0, NULL);
}

/* The id from "250 2.0.0 Message accepted as ID\r\n". */
static void accepted_id(const char *reply, char *id, size_t size) {
  const char *p = strstr(reply, "accepted as ");
  ck_assert_ptr_nonnull(p);
  p += strlen("accepted as ");
  size_t n = strcspn(p, "\r");
  ck_assert_uint_lt(n, size);
  memcpy(id, p, n);
  id[n] = '\0';
}

static void envelope(harness *t, const char *rcpts) {
  h_feed(t, EHLO "MAIL FROM:<carol@example.net>\r\n");
  h_feed(t, rcpts);
  h_feed(t, "DATA\r\n");
  const char *got = h_take(t);
  ck_assert_msg(strstr(got, "354 ") != NULL, "no 354 in %s", got);
}

/* ------------------------------------------------------------------ */
/* What reaches the store                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_smtp_feed_stores_exact_bytes) {
  harness t;
  h_init(&t);
  h_start(&t);
  ck_assert_str_eq(h_take(&t), "220 " HOST " ESMTP ready\r\n");
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  h_feed(&t, "Subject: test\r\n\r\n..leading dot\r\n...\r\nmid.dot\r\n"
             ".\tx\r\nlast line\r\n.\r\n");
  char id[64], want[1024], got[4096];
  accepted_id(h_take(&t), id, sizeof id);
  snprintf(want, sizeof want,
           "Received: from client.example.org (192.0.2.7)\r\n"
           "\tby " HOST " with ESMTP id %s\r\n"
           "\tfor <alice@mx.example.org>; " DATE "\r\n"
           "Subject: test\r\n\r\n.leading dot\r\n..\r\nmid.dot\r\n\tx\r\n"
           "last line\r\n",
           id);
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_str_eq(got, want);
  /* The callbacks saw the stored message: its size and its bytes. */
  ck_assert_uint_eq(t.message_size, len);
  ck_assert_uint_eq(t.body_len, len);
  ck_assert_mem_eq(t.body, got, len);
  ck_assert_int_eq(t.delivered, 1);
  ck_assert_uint_eq(count(&t, "bob"), 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_stores_without_received) {
  harness t;
  h_init(&t);
  t.cfg.add_received = 0;
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  /* A message that is only the terminator is empty. */
  h_feed(&t, ".\r\n");
  h_take(&t);
  char got[64];
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_uint_eq(len, 0);
  h_end(&t);
}
END_TEST

/* One delivery in a fresh session; returns the stored message's header
 * line that names the protocol, e.g. "\tby mx with ESMTPSA id ...". */
typedef struct proto_case {
  int lmtp, secure, insecure_auth, starttls;
  const char *script; /* after the greeting, before DATA */
  const char *want;   /* in the Received: header */
} proto_case;

static const proto_case proto_cases[] = {
    {0, 0, 0, 0, "HELO client.example.org\r\n", " with SMTP id "},
    {0, 0, 0, 0, EHLO, " with ESMTP id "},
    {0, 1, 0, 0, EHLO, " with ESMTPS id "},
    {0, 1, 0, 0, EHLO PLAIN_ALICE, " with ESMTPSA id "},
    {0, 0, 1, 0, EHLO PLAIN_ALICE, " with ESMTPA id "},
    {0, 0, 0, 1, EHLO, " with ESMTPS id "},
    {1, 0, 0, 0, "LHLO client.example.org\r\n", " with LMTP id "},
    {1, 1, 0, 0, "LHLO client.example.org\r\n" PLAIN_ALICE, " with LMTPSA id "},
    {0, 0, 0, 0, EHLO "SMTPUTF8", " with UTF8SMTP id "},
    {1, 1, 0, 0, "LHLO client.example.org\r\nSMTPUTF8", " with UTF8LMTPS id "},
};

START_TEST(test_mailproto_smtp_feed_received_protocol_names) {
  const proto_case *c = &proto_cases[_i];
  harness t;
  h_init(&t);
  t.cfg.lmtp = c->lmtp;
  t.cfg.secure = c->secure;
  t.cfg.allow_insecure_auth = c->insecure_auth;
  h_start(&t);
  const char *utf8 = strstr(c->script, "SMTPUTF8");
  char script[256];
  snprintf(script, sizeof script, "%.*s",
           (int)(utf8 ? utf8 - c->script : (long)strlen(c->script)), c->script);
  h_feed(&t, script);
  if (c->starttls) {
    h_feed(&t, "STARTTLS\r\n");
    ck_assert_int_eq(t.tls_asked, 1);
    ck_assert_int_eq(mailproto_smtp_set_secure(t.s), 0);
    h_feed(&t, EHLO);
  }
  h_feed(&t, utf8 ? "MAIL FROM:<j\xc3\xb6sef@example.org> SMTPUTF8\r\n"
                  : "MAIL FROM:<carol@example.net>\r\n");
  h_feed(&t, "RCPT TO:<alice@mx.example.org>\r\nDATA\r\nhi\r\n.\r\n");
  const char *out = h_take(&t);
  ck_assert_msg(strstr(out, "250 2.1.5 <alice@mx.example.org> Delivered") ||
                    strstr(out, "250 2.0.0 Message accepted"),
                "%s", out);
  char got[1024];
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_msg(strstr(got, c->want) != NULL, "%s lacks \"%s\"", got, c->want);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_received_several_recipients) {
  harness t;
  h_init(&t);
  t.client = NULL;
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n"
               "RCPT TO:<bob@mx.example.org>\r\n");
  h_feed(&t, "hi\r\n.\r\n");
  char id[64], want[512], got[1024];
  accepted_id(h_take(&t), id, sizeof id);
  /* RFC 5321 4.4: no "for" clause with more than one recipient. */
  snprintf(want, sizeof want,
           "Received: from client.example.org (unknown)\r\n"
           "\tby " HOST " with ESMTP id %s;\r\n\t" DATE "\r\nhi\r\n",
           id);
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_str_eq(got, want);
  ck_assert_uint_eq(inbox(&t, "bob", 0, got, sizeof got, &len), 1);
  ck_assert_str_eq(got, want);
  h_end(&t);
}
END_TEST

/* The four smuggling vectors, each followed by a would-be second
 * transaction for bob. */
static const char *const smuggle[] = {"\n.\n", "\r.\r", "\r\n.\n", "\n.\r\n"};

static void smuggle_message(harness *t, const char *vector) {
  char body[512];
  snprintf(body, sizeof body,
           "Subject: a\r\n\r\nhi%sMAIL FROM:<admin@mx.example.org>\r\n"
           "RCPT TO:<bob@mx.example.org>\r\nDATA\r\nforged\r\n.\r\n",
           vector);
  envelope(t, "RCPT TO:<alice@mx.example.org>\r\n");
  h_feed(t, body);
}

START_TEST(test_mailproto_smtp_feed_smuggling_rejected) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_take(&t);
  smuggle_message(&t, smuggle[_i]);
  /* One message, refused: no second transaction ever started. */
  ck_assert_str_eq(h_take(&t), "550 5.6.0 Message contains bare CR or LF\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 0);
  ck_assert_uint_eq(count(&t, "bob"), 0);
  ck_assert_int_eq(t.delivered, 0);
  h_end(&t);
}
END_TEST

/* Every LF is preceded by CR and every CR followed by LF. */
static int canonical(const char *m, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
      return 0;
    if (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n'))
      return 0;
  }
  return 1;
}

START_TEST(test_mailproto_smtp_feed_smuggling_normalized) {
  static const char *const stored[] = {
      "Subject: a\r\n\r\nhi\r\n\r\nMAIL FROM:<admin@mx.example.org>\r\n",
      "Subject: a\r\n\r\nhi\r\n\r\nMAIL FROM:<admin@mx.example.org>\r\n",
      "Subject: a\r\n\r\nhi\r\n\r\nMAIL FROM:<admin@mx.example.org>\r\n",
      "Subject: a\r\n\r\nhi\r\n\r\nMAIL FROM:<admin@mx.example.org>\r\n"};
  harness t;
  h_init(&t);
  t.cfg.bare_eol = MAILPROTO_SMTP_BARE_EOL_NORMALIZE;
  t.cfg.add_received = 0;
  h_start(&t);
  h_take(&t);
  smuggle_message(&t, smuggle[_i]);
  const char *out = h_take(&t);
  ck_assert_msg(strncmp(out, "250 2.0.0 Message accepted", 26) == 0, "%s", out);
  char got[1024], want[512];
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_uint_eq(count(&t, "bob"), 0);
  snprintf(want, sizeof want,
           "%sRCPT TO:<bob@mx.example.org>\r\nDATA\r\nforged\r\n", stored[_i]);
  ck_assert_str_eq(got, want);
  ck_assert(canonical(got, len));
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_normalize_every_bare_form) {
  harness t;
  h_init(&t);
  t.cfg.bare_eol = MAILPROTO_SMTP_BARE_EOL_NORMALIZE;
  t.cfg.add_received = 0;
  h_start(&t);
  h_take(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  /* bare LF, bare CR, "." CR x, "." CR CR LF, dot after bare LF, CR at
   * the end of a chunk, CR CR LF. */
  h_feed(&t, "a\nb\rc\r\n.\rx\r\n.\r\r\n.y\n.z\rw\r");
  h_feed(&t, "\r\nend\r\r\n.\r\n");
  h_take(&t);
  char got[256];
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert_str_eq(got, "a\r\nb\r\nc\r\n\r\nx\r\n\r\n\r\ny\r\nz\r\nw\r\n\r\n"
                        "end\r\n\r\n");
  ck_assert(canonical(got, len));
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Nothing visible after a refused or failed delivery                  */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_smtp_feed_nothing_visible_when_too_big) {
  harness t;
  h_init(&t);
  t.cfg.max_message_size = 200;
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  for (int i = 0; i < 20; i++)
    h_feed(&t, "0123456789012345678901234567890123456789\r\n");
  h_feed(&t, ".\r\n");
  ck_assert_str_eq(h_take(&t), "552 5.3.4 Message too big\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 0);
  /* No desync: the next transaction works. */
  h_feed(&t, "MAIL FROM:<carol@example.net>\r\n"
             "RCPT TO:<alice@mx.example.org>\r\nDATA\r\nsmall\r\n.\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 1);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_nothing_visible_when_policy_refuses) {
  harness t;
  h_init(&t);
  t.reject_kind = SMTP_OP_MESSAGE;
  t.reject_code = 554;
  t.reject_text = "no";
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n"
               "RCPT TO:<bob@mx.example.org>\r\n");
  h_feed(&t, "spam\r\n.\r\n");
  ck_assert_str_eq(h_take(&t), "554 5.7.1 no\r\n");
  ck_assert_uint_eq(count(&t, "alice") + count(&t, "bob"), 0);
  ck_assert_int_eq(t.delivered, 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_nothing_visible_when_commit_fails) {
  harness t;
  h_init(&t);
  ck_assert_int_eq(
      faultstore_fail_hook(t.fault, "deliver_commit", MAILPROTO_ERR_IO), 0);
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n"
               "RCPT TO:<bob@mx.example.org>\r\n");
  h_feed(&t, "hello\r\n.\r\n");
  ck_assert_str_eq(h_take(&t),
                   "451 4.3.0 Temporary failure, try again later\r\n");
  ck_assert_uint_eq(count(&t, "alice") + count(&t, "bob"), 0);
  ck_assert_int_eq(t.delivered, 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_nothing_visible_after_rset_in_bdat) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO "MAIL FROM:<carol@example.net>\r\n"
                  "RCPT TO:<alice@mx.example.org>\r\n");
  h_take(&t);
  h_expect(&t, "BDAT 5\r\nhello", "250 2.0.0 5 octets received\r\n");
  h_expect(&t, "RSET\r\n", "250 2.0.0 Reset OK\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 0);
  /* A chunk without a transaction is read and refused. */
  h_expect(&t, "BDAT 3 LAST\r\nbye", "503 5.5.1 Error: need MAIL command\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_free_mid_data_leaves_nothing) {
  harness t;
  h_init(&t);
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  h_feed(&t, "half a message\r\nand more");
  mailproto_smtp_free(t.s);
  t.s = NULL;
  ck_assert_int_eq(t.af.live, 0);
  ck_assert_uint_eq(count(&t, "alice"), 0);
  faultstore_free(t.fault);
  mailproto_memstore_free(t.ms);
  free(t.out);
  free(t.body);
}
END_TEST

/* An LMTP store whose commit fails for bob only (sync, for the test):
 * bob's account is left out of the inner delivery and reported LIMIT. */
typedef struct partial_store {
  mailproto_store inner;
  mailproto_store_ops ops;
  void *bob;
  size_t index_of_bob;
  size_t count;
} partial_store;

static partial_store partial;

static int ps_deliver_begin(void *ctx, mailproto_op *op, void *const *accounts,
                            size_t n, const mailproto_delivery_info *info,
                            void **writer) {
  partial_store *p = ctx;
  void *kept[8];
  size_t k = 0;
  ck_assert_uint_le(n, 8);
  p->count = n;
  p->index_of_bob = n;
  for (size_t i = 0; i < n; i++)
    if (accounts[i] == p->bob)
      p->index_of_bob = i;
    else
      kept[k++] = accounts[i];
  return p->inner.ops->deliver_begin(p->inner.ctx, op, kept, k, info, writer);
}

static int ps_deliver_commit(void *ctx, mailproto_op *op, void *writer,
                             int all_or_nothing, int *results) {
  partial_store *p = ctx;
  int inner[8];
  int rc = p->inner.ops->deliver_commit(p->inner.ctx, op, writer,
                                        all_or_nothing, inner);
  for (size_t i = 0, k = 0; i < p->count; i++)
    results[i] = i == p->index_of_bob ? MAILPROTO_ERR_LIMIT : inner[k++];
  return rc;
}

#define PS_FORWARD(name, params, args)                                         \
  static int ps_##name params {                                                \
    partial_store *p = ctx;                                                    \
    return p->inner.ops->name args;                                            \
  }
PS_FORWARD(lookup_recipient,
           (void *ctx, mailproto_op *op, const char *a, void **acct),
           (p->inner.ctx, op, a, acct))
PS_FORWARD(write,
           (void *ctx, mailproto_op *op, void *w, const uint8_t *d, size_t n),
           (p->inner.ctx, op, w, d, n))

static void ps_abort(void *ctx, void *w) {
  partial_store *p = ctx;
  p->inner.ops->abort(p->inner.ctx, w);
}

START_TEST(test_mailproto_smtp_feed_lmtp_one_recipient_fails) {
  harness t;
  h_init(&t);
  t.cfg.lmtp = 1;
  memset(&partial, 0, sizeof partial);
  partial.inner = t.inner;
  partial.ops.struct_size = sizeof partial.ops;
  partial.ops.lookup_recipient = ps_lookup_recipient;
  partial.ops.deliver_begin = ps_deliver_begin;
  partial.ops.write = ps_write;
  partial.ops.deliver_commit = ps_deliver_commit;
  partial.ops.abort = ps_abort;
  mailproto_op op;
  mailproto_op_init(&op, &uid_sink, NULL);
  ck_assert_int_eq(mailproto_store_call_lookup_recipient(&t.inner, &op, 0,
                                                         "bob", &partial.bob),
                   0);
  t.store.ops = &partial.ops;
  t.store.ctx = &partial;
  h_start(&t);
  h_take(&t);
  h_feed(&t,
         "LHLO client.example.org\r\nMAIL FROM:<carol@example.net>\r\n"
         "RCPT TO:<alice@mx.example.org>\r\nRCPT TO:<bob@mx.example.org>\r\n"
         "RCPT TO:<alice@mx.example.org>\r\nDATA\r\n");
  h_take(&t);
  h_feed(&t, "hi\r\n.\r\n");
  /* RFC 2033 4.2: one reply per accepted RCPT, each its own result. */
  ck_assert_str_eq(h_take(&t),
                   "250 2.1.5 <alice@mx.example.org> Delivered\r\n"
                   "452 4.2.2 <bob@mx.example.org> Mailbox full, try again "
                   "later\r\n"
                   "250 2.1.5 <alice@mx.example.org> Delivered\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 1);
  ck_assert_uint_eq(count(&t, "bob"), 0);
  ck_assert_int_eq(t.delivered, 1);
  ck_assert_int_eq(t.results[0], 0);
  ck_assert_int_eq(t.results[1], MAILPROTO_ERR_LIMIT);
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Freeing with an operation pending                                   */
/* ------------------------------------------------------------------ */

/* A session that exercises every deferrable store hook: authenticate,
 * lookup_recipient, deliver_begin, write, deliver_commit, over DATA and
 * BDAT. */
static const char free_script[] = EHLO PLAIN_ALICE
    "MAIL FROM:<carol@example.net>\r\n"
    "RCPT TO:<alice@mx.example.org>\r\nRCPT TO:<bob@mx.example.org>\r\n"
    "DATA\r\nhello\r\n..dot\r\n.\r\n"
    "MAIL FROM:<carol@example.net>\r\nRCPT TO:<bob@mx.example.org>\r\n"
    "BDAT 5\r\nhelloBDAT 3 LAST\r\nbye";

/* Runs free_script with every store op deferred and frees the session
 * at the moment its `stop`-th operation is pending. Returns 1 if the
 * script ended before that. */
static int free_at(int stop, int defer_policy) {
  harness t;
  h_init(&t);
  t.cfg.secure = 1;
  faultstore_defer_all(t.fault, 1);
  ck_assert_int_eq(mailproto_smtp_new(&t.cfg, &t.cb, &t.store, &t, &t.s), 0);
  ck_assert_int_eq(mailproto_smtp_start(t.s), 0);
  t.defer = defer_policy;
  size_t used = 0, len = sizeof free_script - 1;
  int seen = 0, finished = 0;
  for (int turn = 0; turn < 100000; turn++) {
    if (t.pending) {
      if (++seen == stop)
        break;
      mailproto_op *op = t.pending;
      t.pending = NULL;
      ck_assert_int_ge(mailproto_op_complete(op, 0), 0);
      continue;
    }
    if (faultstore_pending(t.fault) > 0) {
      if (++seen == stop)
        break;
      ck_assert_int_ge(faultstore_run_pending(t.fault), 0);
      continue;
    }
    if (mailproto_smtp_want_write(t.s))
      ck_assert_int_eq(mailproto_smtp_writable(t.s), 0);
    if (used == len) {
      finished = 1;
      break;
    }
    ck_assert(mailproto_smtp_want_read(t.s));
    ptrdiff_t n = mailproto_smtp_feed(t.s, (const uint8_t *)free_script + used,
                                      len - used);
    ck_assert_int_ge(n, 0);
    used += (size_t)n;
  }
  /* Replies acknowledged so far: each is a delivery that must be visible;
   * one more may be visible, its commit having been in flight. */
  size_t acked = 0;
  const char *out = h_take(&t);
  for (const char *p = out; (p = strstr(p, "Message accepted")); p++)
    acked++;
  int callbacks = t.callbacks;
  mailproto_smtp_free(t.s);
  t.s = NULL;
  ck_assert_int_eq(t.callbacks, callbacks); /* none during free */
  ck_assert_int_eq(t.af.live, 0);
  ck_assert_uint_eq(faultstore_pending(t.fault), 0);
  /* The DATA message goes to two inboxes, the BDAT one to one. */
  static const size_t min_visible[] = {0, 2, 3}, max_visible[] = {2, 3, 3};
  size_t visible = count(&t, "alice") + count(&t, "bob");
  ck_assert_uint_le(acked, 2);
  ck_assert_uint_ge(visible, min_visible[acked]);
  ck_assert_uint_le(visible, max_visible[acked]);
  faultstore_free(t.fault);
  mailproto_memstore_free(t.ms);
  free(t.out);
  free(t.body);
  return finished;
}

START_TEST(test_mailproto_smtp_free_with_store_op_pending) {
  int stop = 1;
  while (!free_at(stop, 0))
    stop++;
  /* Every hook of the script was deferred at least once. */
  ck_assert_int_ge(stop, 10);
}
END_TEST

START_TEST(test_mailproto_smtp_free_with_callback_pending) {
  int stop = 1;
  while (!free_at(stop, 1))
    stop++;
  ck_assert_int_ge(stop, 15);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Bounded memory                                                      */
/* ------------------------------------------------------------------ */

#define TEN_MB (10u * 1024 * 1024)

static void feed_endless_line(harness *t, char fill) {
  static char chunk[65536];
  memset(chunk, fill, sizeof chunk);
  for (size_t sent = 0; sent < TEN_MB; sent += sizeof chunk) {
    ptrdiff_t n =
        mailproto_smtp_feed(t->s, (const uint8_t *)chunk, sizeof chunk);
    ck_assert_int_eq(n, (ptrdiff_t)sizeof chunk);
  }
}

START_TEST(test_mailproto_smtp_feed_long_command_line_bounded) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  size_t base = t.af.peak_bytes;
  feed_endless_line(&t, 'A');
  /* Only max_line bytes of the line are kept. */
  ck_assert_uint_le(t.af.peak_bytes, base + 2 * t.cfg.max_line + 256);
  h_expect(&t, "\r\n", "500 5.5.2 Error: line too long\r\n");
  h_expect(&t, "NOOP\r\n", "250 2.0.0 OK\r\n");
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_long_data_line_bounded) {
  harness t;
  h_init(&t);
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  size_t base = t.af.peak_bytes;
  feed_endless_line(&t, 'B');
  /* The body went to the store (its own allocator); the session kept
   * nothing of it. */
  ck_assert_uint_le(t.af.peak_bytes, base + 256);
  h_feed(&t, "\r\n.\r\n");
  const char *out = h_take(&t);
  ck_assert_msg(strncmp(out, "250 2.0.0 Message accepted", 26) == 0, "%s", out);
  ck_assert_uint_eq(t.message_size, t.body_len);
  ck_assert_uint_gt(t.message_size, TEN_MB);
  ck_assert_uint_eq(count(&t, "alice"), 1);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_long_data_line_over_limit) {
  harness t;
  h_init(&t);
  t.cfg.max_message_size = 1024 * 1024;
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  size_t base = t.af.peak_bytes;
  feed_endless_line(&t, 'C');
  ck_assert_uint_le(t.af.peak_bytes, base + 256);
  h_expect(&t, "\r\n.\r\n", "552 5.3.4 Message too big\r\n");
  ck_assert_uint_eq(count(&t, "alice"), 0);
  h_expect(&t, "NOOP\r\n", "250 2.0.0 OK\r\n");
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_recipient_counter_never_wraps) {
  enum { LIMIT = 70000 }; /* past 65535, where a 16-bit counter wraps */
  static const char line[] = "RCPT TO:<alice@mx.example.org>\r\n";
  size_t n = LIMIT + 2, len = sizeof line - 1;
  char *script = malloc(n * len + 1);
  ck_assert_ptr_nonnull(script);
  for (size_t i = 0; i < n; i++)
    memcpy(script + i * len, line, len);
  script[n * len] = '\0';
  harness t;
  h_init(&t);
  t.cfg.max_recipients = LIMIT;
  t.cfg.add_received = 0;
  h_start(&t);
  h_feed(&t, EHLO "MAIL FROM:<carol@example.net>\r\n");
  h_take(&t);
  h_feed(&t, script);
  free(script);
  const char *out = h_take(&t);
  size_t ok = 0, full = 0;
  for (const char *p = out; *p; p = strchr(p, '\n') + 1) {
    ok += strncmp(p, "250 2.1.5 ", 10) == 0;
    full += strncmp(p, "452 4.5.3 ", 10) == 0;
  }
  ck_assert_uint_eq(ok, LIMIT);
  ck_assert_uint_eq(full, 2);
  h_feed(&t, "DATA\r\nhi\r\n.\r\n");
  /* Accepted 70000 times, one account: delivered once. */
  ck_assert_uint_eq(t.message_rcpts, 1);
  ck_assert_uint_eq(count(&t, "alice"), 1);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_new_idle_session_is_small) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  /* Beyond its configured buffers (the output queue and the partial line)
   * an idle session costs at most 1 KiB (DESIGN.md). */
  size_t buffers = t.s->io.out.buf.cap + t.s->io.lines.partial.cap;
  ck_assert_uint_le(t.af.live_bytes - buffers, 1024);
  h_end(&t);
}
END_TEST

/* A burst leaves nothing behind: after a pipelined batch whose replies
 * filled the output queue to its watermark, and a SASL response line far
 * longer than a command, the idle session is back to its size after EHLO,
 * buffers included. */
START_TEST(test_mailproto_smtp_feed_idle_after_burst_is_small) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  size_t idle = t.af.live_bytes;
  enum { NOOPS = 3000, LONG = 8000 };
  char *script = malloc(NOOPS * 6 + 1);
  ck_assert_ptr_nonnull(script);
  for (int i = 0; i < NOOPS; i++)
    memcpy(script + 6 * i, "NOOP\r\n", 6);
  h_feedn(&t, script, NOOPS * 6);
  free(script);
  /* Split, so the reader has to hold the line. */
  char *line = malloc(LONG + 2);
  ck_assert_ptr_nonnull(line);
  memset(line, '!', LONG);
  memcpy(line + LONG, "\r\n", 2);
  h_feed(&t, "AUTH CRAM-MD5\r\n");
  h_feedn(&t, line, LONG / 2);
  h_feedn(&t, line + LONG / 2, LONG / 2 + 2);
  free(line);
  const char *out = h_take(&t);
  /* The engine refuses a response that long once the line is whole. */
  ck_assert_ptr_nonnull(strstr(out, "500 5.5.6 "));
  /* The burst did buffer: the queue grew to the 16 KiB watermark. */
  ck_assert_uint_gt(t.af.peak_bytes, idle + 16 * 1024);
  fprintf(stderr,
          "smtp: idle session %zu bytes after EHLO, %zu after a "
          "burst (peak %zu)\n",
          idle, t.af.live_bytes, t.af.peak_bytes);
  ck_assert_uint_le(t.af.live_bytes, idle);
  ck_assert_uint_le(t.s->io.out.buf.cap, 1024);
  ck_assert_uint_le(t.s->io.lines.partial.cap, 1024);
  /* And it still works. */
  h_feed(&t, "NOOP\r\n");
  ck_assert_str_eq(h_take(&t), "250 2.0.0 OK\r\n");
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Deferred callbacks                                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_op_complete_deferred_policy_reply) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  t.defer = 1;
  static const char pipelined[] =
      "MAIL FROM:<carol@example.net>\r\nRCPT TO:<alice@mx.example.org>\r\n";
  ptrdiff_t n = mailproto_smtp_feed(t.s, (const uint8_t *)pipelined,
                                    sizeof pipelined - 1);
  /* Only MAIL was read: the rest waits for the answer, in order. */
  ck_assert_int_eq(n, 31);
  ck_assert_ptr_nonnull(t.pending);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_want_write(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)pipelined + n,
                                       sizeof pipelined - 1 - (size_t)n),
                   0);
  /* The reply may be set after the callback returned, before completing;
   * a code the command cannot use is refused. */
  mailproto_op *op = t.pending;
  t.pending = NULL;
  ck_assert_int_eq(mailproto_op_set_reply(op, 354, NULL, "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_op_set_reply(op, 550, "4.7.1", "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_op_set_reply(op, 550, "5.7.1", "later: no"), 0);
  ck_assert_int_eq(mailproto_op_complete(op, 0), 0);
  ck_assert_str_eq(h_take(&t), "550 5.7.1 later: no\r\n");
  ck_assert_int_eq(mailproto_op_complete(op, 0), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 1);
  t.defer = 0;
  h_expect(&t, (const char *)pipelined + n,
           "503 5.5.1 Error: need MAIL command\r\n");
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_op_complete_deferred_failure) {
  harness t;
  h_init(&t);
  t.defer = 1;
  ck_assert_int_eq(mailproto_smtp_new(&t.cfg, &t.cb, &t.store, &t, &t.s), 0);
  ck_assert_int_eq(mailproto_smtp_start(t.s), 0);
  /* The greeting waits for the connect callback. */
  ck_assert_uint_eq(t.out_len, 0);
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 0);
  mailproto_op *op = t.pending;
  t.pending = NULL;
  ck_assert_int_eq(mailproto_op_complete(op, 0), 0);
  ck_assert_str_eq(h_take(&t), "220 " HOST " ESMTP ready\r\n");
  ptrdiff_t n = mailproto_smtp_feed(t.s, (const uint8_t *)EHLO, strlen(EHLO));
  ck_assert_int_eq(n, (ptrdiff_t)strlen(EHLO));
  op = t.pending;
  t.pending = NULL;
  /* A non-fatal failure: a temporary refusal without enhanced code (a
   * reply to EHLO, RFC 2034). */
  ck_assert_int_eq(mailproto_op_complete(op, MAILPROTO_ERR_TEMPORARY), 0);
  ck_assert_str_eq(h_take(&t), "451 Temporary failure, try again later\r\n");
  n = mailproto_smtp_feed(t.s, (const uint8_t *)EHLO, strlen(EHLO));
  op = t.pending;
  t.pending = NULL;
  /* A fatal one: 421 and the session closes. */
  ck_assert_int_eq(mailproto_op_complete(op, MAILPROTO_ERR_CALLBACK_FAILURE),
                   0);
  ck_assert_str_eq(h_take(&t), "421 " HOST " Error: internal failure\r\n");
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 1);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 0);
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The transport                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_smtp_feed_send_error_is_fatal) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_take(&t);
  t.send_fail = -1;
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"NOOP\r\n", 6),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  unsigned long sends = t.sends;
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 1);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_want_write(t.s), 0);
  /* Sticky: every later call says the same and sends nothing. */
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"NOOP\r\n", 6),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_smtp_writable(t.s),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_uint_eq(t.sends, sends);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_send_overclaim_is_fatal) {
  harness t;
  h_init(&t);
  h_start(&t);
  t.send_fail = 1000; /* claims more than it was offered */
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"NOOP\r\n", 6),
                   MAILPROTO_ERR_CALLBACK_FAILURE);
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 1);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_feed_backpressure) {
  harness t;
  h_init(&t);
  t.cfg.output_watermark = 256;
  h_start(&t);
  h_take(&t);
  t.send_max = 1;
  char script[100 * 6 + 1] = "";
  for (int i = 0; i < 100; i++)
    strcat(script, "NOOP\r\n");
  /* The client does not read: input stops once the replies queued reach
   * the watermark. */
  ptrdiff_t n = mailproto_smtp_feed(t.s, (const uint8_t *)script, 600);
  ck_assert_int_gt(n, 0);
  ck_assert_int_lt(n, 600);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_want_write(t.s), 1);
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)script + n, 6), 0);
  ck_assert_uint_le(t.s->io.out.buf.len, 256 + SMTP_REPLY_SLACK);
  t.send_max = 0;
  ck_assert_int_eq(mailproto_smtp_writable(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 1);
  h_feedn(&t, script + n, 600 - (size_t)n);
  const char *out = h_take(&t);
  size_t replies = 0;
  for (const char *p = out; (p = strstr(p, "250 2.0.0 OK\r\n")); p++)
    replies++;
  ck_assert_uint_eq(replies, 100);
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Lifecycle and configuration                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_smtp_new_rejects_bad_config) {
  harness t;
  h_init(&t);
  mailproto_smtp *s = NULL;
  mailproto_smtp_config c;
  mailproto_smtp_callbacks cb = t.cb;
  /* Each case breaks one thing. */
  for (int i = 0; i < 14; i++) {
    c = t.cfg;
    cb = t.cb;
    const mailproto_store *store = &t.store;
    switch (i) {
    case 0:
      cb.send = NULL;
      break;
    case 1:
      store = NULL;
      break;
    case 2:
      c.hostname = NULL;
      break;
    case 3:
      c.hostname = "bad..host";
      break;
    case 4:
      c.hostname = "host\r\n250 injected";
      break;
    case 5:
      c.greeting = "ready\r\n250 injected";
      break;
    case 6:
      c.max_line = 63;
      break;
    case 7:
      c.max_line = (1u << 20) + 1;
      break;
    case 8:
      c.max_recipients = 0;
      break;
    case 9:
      c.max_recipients = 100001;
      break;
    case 10:
      c.output_watermark = 255;
      break;
    case 11:
      c.extensions = 0x400;
      break;
    case 12:
      c.sasl_mechanisms = 0x8;
      break;
    case 13:
      c.bare_eol = (mailproto_smtp_bare_eol)2;
      break;
    }
    ck_assert_msg(mailproto_smtp_new(&c, &cb, store, &t, &s) ==
                      MAILPROTO_ERR_INVALID_ARGUMENT,
                  "case %d accepted", i);
    ck_assert_ptr_null(s);
  }
  c = t.cfg;
  c.struct_size = sizeof(size_t); /* too old to name the allocator */
  ck_assert_int_eq(mailproto_smtp_new(&c, &t.cb, &t.store, &t, &s),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_smtp_new(&t.cfg, &t.cb, &t.store, &t, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(t.af.live, 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_new_older_structs) {
  harness t;
  h_init(&t);
  /* A caller built before add_received existed: the default applies. */
  t.cfg.struct_size = offsetof(mailproto_smtp_config, add_received);
  t.cfg.add_received = 0;
  /* ... and before the delivered callback. */
  t.cb.struct_size = offsetof(mailproto_smtp_callbacks, delivered);
  h_start(&t);
  envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
  h_feed(&t, "hi\r\n.\r\n");
  char got[1024];
  size_t len;
  ck_assert_uint_eq(inbox(&t, "alice", 0, got, sizeof got, &len), 1);
  ck_assert(strncmp(got, "Received: ", 10) == 0);
  ck_assert_int_eq(t.delivered, 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_config_init_defaults) {
  mailproto_smtp_config c;
  memset(&c, 0xff, sizeof c);
  mailproto_smtp_config_init(&c, sizeof c);
  ck_assert_uint_eq(c.struct_size, sizeof c);
  ck_assert_str_eq(c.hostname, "localhost");
  ck_assert_ptr_null(c.greeting);
  ck_assert_uint_eq(c.extensions, MAILPROTO_SMTP_EXT_ALL);
  ck_assert_uint_eq(c.max_line, 512);
  ck_assert_uint_eq(c.max_message_size, 32u * 1024 * 1024);
  ck_assert_uint_eq(c.max_recipients, 100);
  ck_assert_uint_eq(c.max_errors, 10);
  ck_assert_uint_eq(c.max_auth_failures, 3);
  ck_assert_uint_eq(c.output_watermark, 16 * 1024);
  ck_assert_int_eq(c.bare_eol, MAILPROTO_SMTP_BARE_EOL_REJECT);
  ck_assert_int_eq(c.add_received, 1);
  ck_assert_int_eq(c.secure, 0);
  ck_assert_int_eq(c.allow_insecure_auth, 0);
  /* An older, shorter struct is filled only as far as it goes. */
  unsigned char raw[sizeof c + 8];
  memset(raw, 0xab, sizeof raw);
  mailproto_smtp_config_init((mailproto_smtp_config *)(void *)raw,
                             offsetof(mailproto_smtp_config, lmtp));
  ck_assert_uint_eq(raw[offsetof(mailproto_smtp_config, lmtp)], 0xab);
  mailproto_smtp_callbacks cb;
  memset(&cb, 0xff, sizeof cb);
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  ck_assert_ptr_null(cb.send);
  ck_assert_ptr_null(cb.delivered);
}
END_TEST

START_TEST(test_mailproto_smtp_start_lifecycle_errors) {
  harness t;
  h_init(&t);
  ck_assert_int_eq(mailproto_smtp_new(&t.cfg, &t.cb, &t.store, &t, &t.s), 0);
  /* Nothing is sent before start; feed and writable refuse. */
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"x", 1),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_smtp_writable(t.s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_set_client(t.s, "bad (client)"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_smtp_set_client(t.s, "192.0.2.1\r\n"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_smtp_set_client(t.s, "IPv6:2001:db8::1"), 0);
  ck_assert_str_eq(mailproto_smtp_client(t.s), "IPv6:2001:db8::1");
  /* Implicit TLS is announced before start. */
  ck_assert_int_eq(mailproto_smtp_set_secure(t.s), 0);
  ck_assert_uint_eq(t.out_len, 0);
  ck_assert_int_eq(mailproto_smtp_start(t.s), 0);
  ck_assert_int_eq(mailproto_smtp_start(t.s), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_smtp_set_client(t.s, "192.0.2.1"),
                   MAILPROTO_ERR_STATE);
  /* Only after STARTTLS's handshake. */
  ck_assert_int_eq(mailproto_smtp_set_secure(t.s), MAILPROTO_ERR_STATE);
  h_feed(&t, EHLO);
  ck_assert_ptr_null(strstr(h_take(&t), "STARTTLS"));
  ck_assert_str_eq(mailproto_smtp_helo(t.s), "client.example.org");
  ck_assert_ptr_null(mailproto_smtp_user(t.s));
  h_expect(&t, PLAIN_ALICE, "235 2.7.0 Authentication successful\r\n");
  ck_assert_str_eq(mailproto_smtp_user(t.s), "alice");
  h_expect(&t, "QUIT\r\n", "221 2.0.0 " HOST " closing connection\r\n");
  ck_assert_int_eq(mailproto_smtp_closed(t.s), 1);
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"NOOP\r\n", 6), 0);
  ck_assert_ptr_null(mailproto_smtp_helo(NULL));
  ck_assert_int_eq(mailproto_smtp_closed(NULL), 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_smtp_set_secure_after_starttls) {
  harness t;
  h_init(&t);
  t.send_max = 4; /* the 220 goes out in pieces */
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  static const char cmd[] = "STARTTLS\r\nRSET\r\n";
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)cmd, 16), 16);
  /* start_tls only once the 220 is out in full; until then, no
   * handshake, and set_secure is refused. */
  ck_assert_int_eq(t.tls_asked, 0);
  ck_assert_int_eq(mailproto_smtp_set_secure(t.s), MAILPROTO_ERR_STATE);
  while (mailproto_smtp_want_write(t.s))
    ck_assert_int_eq(mailproto_smtp_writable(t.s), 0);
  ck_assert_int_eq(t.tls_asked, 1);
  ck_assert_str_eq(h_take(&t), "220 2.0.0 Ready to start TLS\r\n");
  /* Until set_secure, input is dropped. */
  ck_assert_int_eq(mailproto_smtp_want_read(t.s), 1);
  ck_assert_int_eq(mailproto_smtp_feed(t.s, (const uint8_t *)"NOOP\r\n", 6), 6);
  ck_assert_uint_eq(t.out_len, 0);
  ck_assert_int_eq(mailproto_smtp_set_secure(t.s), 0);
  ck_assert_ptr_null(mailproto_smtp_helo(t.s));
  t.send_max = 0;
  h_feed(&t, EHLO);
  const char *out = h_take(&t);
  ck_assert_ptr_null(strstr(out, "STARTTLS"));
  ck_assert_ptr_nonnull(strstr(out, "AUTH PLAIN LOGIN CRAM-MD5"));
  ck_assert_int_eq(t.tls_asked, 1);
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Policy replies                                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_op_set_reply_text_is_one_line) {
  harness t;
  h_init(&t);
  t.reject_kind = SMTP_OP_RCPT;
  t.reject_code = 550;
  t.reject_text = "no\r\n250 2.1.5 forged\x7f";
  h_start(&t);
  h_feed(&t, EHLO "MAIL FROM:<carol@example.net>\r\n");
  h_take(&t);
  h_expect(&t, "RCPT TO:<alice@mx.example.org>\r\n",
           "550 5.7.1 no  250 2.1.5 forged \r\n");
  ck_assert_int_eq(t.set_reply_rc, 0);
  h_end(&t);
}
END_TEST

START_TEST(test_mailproto_op_set_reply_codes_per_step) {
  static const struct {
    int kind, code, rc;
  } cases[] = {
      {SMTP_OP_CONNECT, 550, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_CONNECT, 250, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_HELO, 354, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_MAIL, 251, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_RCPT, 252, 0},
      {SMTP_OP_DATA_START, 250, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_MESSAGE, 600, MAILPROTO_ERR_INVALID_ARGUMENT},
      {SMTP_OP_MESSAGE, 199, MAILPROTO_ERR_INVALID_ARGUMENT},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    harness t;
    h_init(&t);
    t.reject_kind = cases[i].kind;
    t.reject_code = cases[i].code;
    h_start(&t);
    envelope(&t, "RCPT TO:<alice@mx.example.org>\r\n");
    h_feed(&t, "hi\r\n.\r\n");
    ck_assert_msg(t.set_reply_rc == cases[i].rc, "case %zu: %d", i,
                  t.set_reply_rc);
    h_end(&t);
  }
}
END_TEST

/* A store hook that tries to set a reply on its op: refused. */
static int sr_rc = 1;
static int sr_lookup(void *ctx, mailproto_op *op, const char *a,
                     void **account) {
  const mailproto_store *inner = ctx;
  sr_rc = mailproto_op_set_reply(op, 550, NULL, "x");
  return inner->ops->lookup_recipient(inner->ctx, op, a, account);
}

START_TEST(test_mailproto_op_set_reply_refused_for_store_ops) {
  harness t;
  h_init(&t);
  static mailproto_store_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.struct_size = sizeof ops;
  ops.lookup_recipient = sr_lookup;
  t.store.ops = &ops;
  t.store.ctx = &t.inner;
  h_start(&t);
  h_feed(&t, EHLO "MAIL FROM:<carol@example.net>\r\n");
  h_take(&t);
  h_expect(&t, "RCPT TO:<alice@mx.example.org>\r\n",
           "250 2.1.5 Recipient OK\r\n");
  ck_assert_int_eq(sr_rc, MAILPROTO_ERR_STATE);
  h_end(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CRAM-MD5 challenges and ids                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_mailproto_smtp_feed_cram_md5_challenges_unique) {
  harness t;
  h_init(&t);
  h_start(&t);
  h_feed(&t, EHLO);
  h_take(&t);
  h_feed(&t, "AUTH CRAM-MD5\r\n");
  char first[128];
  snprintf(first, sizeof first, "%s", h_take(&t));
  h_expect(&t, "*\r\n", "501 5.0.0 Authentication cancelled\r\n");
  h_feed(&t, "AUTH CRAM-MD5\r\n");
  const char *second = h_take(&t);
  ck_assert(strncmp(first, "334 ", 4) == 0);
  ck_assert(strncmp(second, "334 ", 4) == 0);
  ck_assert_str_ne(first, second);
  h_end(&t);

  /* Without a `now` callback, two sessions at the same second still get
   * different ids (the session's address is mixed in). */
  harness a, b;
  h_init(&a);
  h_init(&b);
  a.cb.now = NULL;
  b.cb.now = NULL;
  h_start(&a);
  h_start(&b);
  ck_assert_str_ne(a.s->tag, b.s->tag);
  h_end(&a);
  h_end(&b);
}
END_TEST

Suite *suite_smtp_session(void) {
  Suite *s = suite_create("smtp_session");
  TCase *tc = tcase_create("session");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_mailproto_smtp_feed_stores_exact_bytes);
  tcase_add_test(tc, test_mailproto_smtp_feed_stores_without_received);
  tcase_add_loop_test(tc, test_mailproto_smtp_feed_received_protocol_names, 0,
                      (int)(sizeof proto_cases / sizeof proto_cases[0]));
  tcase_add_test(tc, test_mailproto_smtp_feed_received_several_recipients);
  tcase_add_loop_test(tc, test_mailproto_smtp_feed_smuggling_rejected, 0, 4);
  tcase_add_loop_test(tc, test_mailproto_smtp_feed_smuggling_normalized, 0, 4);
  tcase_add_test(tc, test_mailproto_smtp_feed_normalize_every_bare_form);
  tcase_add_test(tc, test_mailproto_smtp_feed_nothing_visible_when_too_big);
  tcase_add_test(tc,
                 test_mailproto_smtp_feed_nothing_visible_when_policy_refuses);
  tcase_add_test(tc,
                 test_mailproto_smtp_feed_nothing_visible_when_commit_fails);
  tcase_add_test(tc,
                 test_mailproto_smtp_feed_nothing_visible_after_rset_in_bdat);
  tcase_add_test(tc, test_mailproto_smtp_free_mid_data_leaves_nothing);
  tcase_add_test(tc, test_mailproto_smtp_feed_lmtp_one_recipient_fails);
  tcase_add_test(tc, test_mailproto_smtp_free_with_store_op_pending);
  tcase_add_test(tc, test_mailproto_smtp_free_with_callback_pending);
  tcase_add_test(tc, test_mailproto_smtp_feed_long_command_line_bounded);
  tcase_add_test(tc, test_mailproto_smtp_feed_long_data_line_bounded);
  tcase_add_test(tc, test_mailproto_smtp_feed_long_data_line_over_limit);
  tcase_add_test(tc, test_mailproto_smtp_feed_recipient_counter_never_wraps);
  tcase_add_test(tc, test_mailproto_smtp_new_idle_session_is_small);
  tcase_add_test(tc, test_mailproto_smtp_feed_idle_after_burst_is_small);
  tcase_add_test(tc, test_mailproto_op_complete_deferred_policy_reply);
  tcase_add_test(tc, test_mailproto_op_complete_deferred_failure);
  tcase_add_test(tc, test_mailproto_smtp_feed_send_error_is_fatal);
  tcase_add_test(tc, test_mailproto_smtp_feed_send_overclaim_is_fatal);
  tcase_add_test(tc, test_mailproto_smtp_feed_backpressure);
  tcase_add_test(tc, test_mailproto_smtp_new_rejects_bad_config);
  tcase_add_test(tc, test_mailproto_smtp_new_older_structs);
  tcase_add_test(tc, test_mailproto_smtp_config_init_defaults);
  tcase_add_test(tc, test_mailproto_smtp_start_lifecycle_errors);
  tcase_add_test(tc, test_mailproto_smtp_set_secure_after_starttls);
  tcase_add_test(tc, test_mailproto_op_set_reply_text_is_one_line);
  tcase_add_test(tc, test_mailproto_op_set_reply_codes_per_step);
  tcase_add_test(tc, test_mailproto_op_set_reply_refused_for_store_ops);
  tcase_add_test(tc, test_mailproto_smtp_feed_cram_md5_challenges_unique);
  suite_add_tcase(s, tc);
  return s;
}
