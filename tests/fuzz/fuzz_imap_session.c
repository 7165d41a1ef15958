/*
 * Fuzzes a whole IMAP session. The first 8 bytes choose the setup:
 *   0  config bits: 0 secure, 1 allow_insecure_auth, 2 literal_minus,
 *      3 small limits (max_literal 64, max_append 64, max_literals 3,
 *      max_sequence_ranges 8, max_nesting 4), 4 start_tls callback,
 *      5 connect callback, 6 auth callback, 7 wakeup callback
 *   1  SASL mechanisms (low 3 bits), defer every store op (bit 3),
 *      policy callbacks defer (bit 4) or reject (bit 5), fail store ops
 *      at random (bit 6), sync every turn (bit 7)
 *   2  output watermark: 64 + 64 * value
 *   3  max_line: 256 + 4 * value; max_errors and max_errors_unauth and
 *      max_auth_failures: from its low bits
 *   4  input chunk size (0: random from byte 5's seed)
 *   5  transport bytes per turn (low 4 bits; 0: unlimited) and the seed
 *   6  allocation that fails (0: none)
 *   7  percent of store ops failing at random
 * The rest is the client's input. A 0x16 byte after STARTTLS stands for
 * the finished TLS handshake and 0x01 for a delivery by someone else (as
 * in the transcript adapter); 0x02 asks for a keep-alive.
 * The store is a memstore behind a faultstore with a few messages (CRLF,
 * bare LF and CR, NUL, no header end, empty, a large one) in alice's
 * INBOX and a few mailboxes.
 * Checks: no crash, no leak, the session reaches quiescence, and once it
 * says closed it stays silent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/imap.h"
#include "mailproto/memstore.h"
#include "store/store_call.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 8
#define MAX_TURNS 200000

typedef struct harness {
  mailproto_imap *s;
  mailproto_memstore *ms;
  size_t budget;
  size_t total;
  int closed_seen;
  size_t after_close;
  int tls_started;
  int defer_policy;
  int reject_policy;
  int woken;
  mailproto_op *held;
} harness;

static ptrdiff_t h_send(mailproto_imap *s, const uint8_t *data, size_t len,
                        void *user_data) {
  harness *h = user_data;
  (void)s;
  (void)data;
  size_t take = len < h->budget ? len : h->budget;
  h->budget -= take;
  h->total += take;
  if (h->closed_seen)
    h->after_close += take;
  return (ptrdiff_t)take;
}

static int h_start_tls(mailproto_imap *s, void *user_data) {
  (void)s;
  ((harness *)user_data)->tls_started = 1;
  return 0;
}

static int policy(harness *h, mailproto_op *op) {
  if (h->reject_policy &&
      mailproto_op_set_reply(op, 550, NULL, "[ALERT] no\r\n* BYE x") != 0)
    return MAILPROTO_ERR_NOMEM;
  if (h->defer_policy) {
    h->held = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static int h_connect(mailproto_imap *s, mailproto_op *op, const char *client,
                     void *user_data) {
  (void)s;
  (void)client;
  return policy(user_data, op);
}

static int h_auth(mailproto_imap *s, mailproto_op *op, const char *user,
                  void *user_data) {
  (void)s;
  (void)user;
  return policy(user_data, op);
}

static void h_wakeup(mailproto_imap *s, void *user_data) {
  (void)s;
  ((harness *)user_data)->woken = 1;
}

static mailproto_datetime h_now(mailproto_imap *s, void *user_data) {
  (void)s;
  (void)user_data;
  mailproto_datetime dt = {1795702707, 0};
  return dt;
}

static const mailproto_op_sink quiet = {0};

static int add_message(mailproto_memstore *ms, const char *mailbox,
                       const char *text, size_t len, uint32_t flags) {
  mailproto_store st;
  mailproto_op op;
  void *account = NULL, *writer = NULL;
  uint32_t v, u;
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  if (mailproto_store_call_lookup_recipient(&st, &op, 0, "alice", &account))
    return -1;
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.flags = flags;
  int rc = mailproto_store_call_append_begin(&st, &op, 0, account, mailbox,
                                             &info, &writer);
  if (rc == 0 && len)
    rc = mailproto_store_call_write(&st, &op, 0, writer, (const uint8_t *)text,
                                    len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(&st, &op, 0, writer, &v, &u);
  else
    mailproto_store_call_abort(&st, writer);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

static void fill_store(mailproto_memstore *ms) {
  static const char *const msgs[] = {
      "From: a@example.org\r\nSubject: one\r\n\r\nbody\r\n",
      "Subject: lf\n\nline\nno end",
      "Subject: cr\r\r\n\rmixed\r\n\n.",
      "",
      "no header end",
  };
  mailproto_store st;
  mailproto_op op;
  void *account = NULL;
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  if (mailproto_store_call_lookup_recipient(&st, &op, 0, "alice", &account) ||
      mailproto_store_call_create(&st, &op, 0, account, "Work/Projects", 0) ||
      mailproto_store_call_create(&st, &op, 0, account, "Sent",
                                  MAILPROTO_MBOX_SPECIAL_SENT) ||
      mailproto_store_call_subscribe(&st, &op, 0, account, "Work/Projects", 1))
    abort();
  mailproto_store_call_release_account(&st, account);
  for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
    if (add_message(ms, "INBOX", msgs[i], strlen(msgs[i]),
                    (uint32_t)i & MAILPROTO_FLAGS_SETTABLE) != 0)
      abort();
  if (add_message(ms, "INBOX", "a\0b\r\n", 5, 0) != 0 ||
      add_message(ms, "Sent", "Subject: s\r\n\r\ns\r\n", 17, 0) != 0)
    abort();
  char big[20000];
  for (size_t i = 0; i < sizeof big; i++)
    big[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
  if (add_message(ms, "INBOX", big, sizeof big, 0) != 0)
    abort();
}

/* Feeds at most `len` bytes, or up to a marker. */
static ptrdiff_t feed(harness *h, const uint8_t *p, size_t len) {
  size_t before = 0;
  while (before < len && p[before] != 0x01 && p[before] != 0x02 &&
         !(p[before] == 0x16 && h->tls_started))
    before++;
  if (before == len)
    return mailproto_imap_feed(h->s, p, len);
  ptrdiff_t n = before ? mailproto_imap_feed(h->s, p, before) : 0;
  if (n < 0 || (size_t)n < before)
    return n;
  int rc = 0;
  if (p[before] == 0x16) {
    h->tls_started = 0;
    rc = mailproto_imap_set_secure(h->s);
    if (rc == MAILPROTO_ERR_STATE)
      rc = 0;
  } else if (p[before] == 0x01) {
    /* The store may fail (out of memory): nobody else's problem here. */
    add_message(h->ms, "INBOX", "Subject: new\r\n\r\nHi\r\n", 20, 0);
  } else {
    rc = mailproto_imap_keepalive(h->s);
  }
  return rc < 0 ? rc : (ptrdiff_t)before + 1;
}

static void run(const uint8_t *cfgb, const uint8_t *in, size_t len,
                const mailproto_allocator *alloc, faultstore *fault,
                const mailproto_store *store, mailproto_memstore *ms) {
  harness h;
  memset(&h, 0, sizeof h);
  h.ms = ms;
  h.defer_policy = (cfgb[1] >> 4) & 1;
  h.reject_policy = (cfgb[1] >> 5) & 1;
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  c.allocator = alloc;
  c.secure = cfgb[0] & 1;
  c.allow_insecure_auth = (cfgb[0] >> 1) & 1;
  c.literal_minus = (cfgb[0] >> 2) & 1;
  if (cfgb[0] & 8) {
    c.max_literal = 64;
    c.max_append = 64;
    c.max_literals = 3;
    c.max_sequence_ranges = 8;
    c.max_nesting = 4;
  }
  c.sasl_mechanisms = cfgb[1] & 7u;
  c.output_watermark = 64 + 64 * (size_t)cfgb[2];
  c.max_line = 256 + 4 * (size_t)cfgb[3];
  c.max_errors = cfgb[3] & 15u;
  c.max_errors_unauth = (cfgb[3] >> 2) & 7u;
  c.max_auth_failures = (cfgb[3] >> 4) & 3u;
  c.id_name = cfgb[2] & 1 ? NULL : "fuzz";
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = h_send;
  cb.now = h_now;
  if (cfgb[0] & 0x10)
    cb.start_tls = h_start_tls;
  if (cfgb[0] & 0x20)
    cb.connect = h_connect;
  if (cfgb[0] & 0x40)
    cb.auth = h_auth;
  if (cfgb[0] & 0x80)
    cb.wakeup = h_wakeup;
  if (mailproto_imap_new(&c, &cb, store, &h, &h.s) != 0)
    return;
  mailproto_imap_set_client(h.s, "192.0.2.1");
  size_t chunk = cfgb[4];
  size_t per_turn = cfgb[5] & 0x0f;
  uint32_t seed = 0x9e3779b9u ^ cfgb[5];
  int sync_always = (cfgb[1] >> 7) & 1;
  h.budget = (size_t)-1;
  int rc = mailproto_imap_start(h.s);
  size_t pos = 0;
  for (int turn = 0; rc >= 0 && turn < MAX_TURNS; turn++) {
    h.budget = per_turn ? per_turn : (size_t)-1;
    size_t sent_before = h.total;
    int progress = 0;
    if (h.held) {
      mailproto_op *op = h.held;
      h.held = NULL;
      rc = mailproto_op_complete(op, 0);
      progress = 1;
      if (rc < 0)
        break;
    }
    int done = faultstore_run_pending(fault);
    if (done < 0)
      break;
    progress |= done > 0;
    if (h.woken || sync_always) {
      h.woken = 0;
      if (mailproto_imap_sync(h.s) < 0)
        break;
    }
    if (mailproto_imap_want_read(h.s) && pos < len) {
      size_t n = chunk;
      if (n == 0) {
        seed = seed * 1664525u + 1013904223u;
        n = 1 + (seed >> 27);
      }
      if (n > len - pos)
        n = len - pos;
      ptrdiff_t used = feed(&h, in + pos, n);
      if (used < 0)
        break;
      pos += (size_t)used;
      progress |= used > 0;
    }
    if (mailproto_imap_want_write(h.s)) {
      size_t before = h.total;
      if (mailproto_imap_writable(h.s) < 0)
        break;
      progress |= h.total > before;
    }
    if (mailproto_imap_closed(h.s))
      h.closed_seen = 1;
    /* Any output counts: a sync or a keep-alive may send too. */
    progress |= h.total > sent_before;
    if (!progress && !h.held && faultstore_pending(fault) == 0)
      break;
  }
  /* A closed session never speaks again. */
  if (h.after_close)
    abort();
  mailproto_imap_free(h.s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER)
    return 0;
  alloc_fail af;
  alloc_fail_init(&af, data[6]);
  mailproto_memstore *ms;
  if (mailproto_memstore_new(NULL, &ms) != 0)
    abort();
  if (mailproto_memstore_add_user(ms, "alice", "secret") ||
      mailproto_memstore_add_user(ms, "bob", "hunter2"))
    abort();
  fill_store(ms);
  mailproto_store inner, outer;
  mailproto_memstore_store(ms, &inner);
  faultstore *fault;
  if (faultstore_new(&inner, NULL, &fault) != 0)
    abort();
  faultstore_store(fault, &outer);
  faultstore_defer_all(fault, (data[1] >> 3) & 1);
  if (data[1] & 0x40)
    faultstore_fail_random(fault, data[5], data[7] % 50u,
                           data[7] & 1 ? MAILPROTO_ERR_IO
                                       : MAILPROTO_ERR_TEMPORARY);
  run(data, data + HEADER, size - HEADER, &af.allocator, fault, &outer, ms);
  if (af.live != 0)
    abort();
  faultstore_free(fault);
  mailproto_memstore_free(ms);
  return 0;
}
