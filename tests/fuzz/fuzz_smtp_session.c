/*
 * Fuzzes the SMTP/LMTP session. The first eight bytes choose:
 *   0  flags: LMTP, normalise bare line ends, Received: header, implicit
 *      TLS, plaintext AUTH allowed, AUTH required, defer every store op,
 *      defer every policy callback
 *   1  extensions (low 8 bits of the mask)
 *   2  bits 0-1 extensions STARTTLS and AUTH, bits 2-4 SASL mechanisms,
 *      bits 5-7 which policy callback refuses (0: none)
 *   3  limits: max_line (bits 0-1), max_recipients (2-3),
 *      max_message_size (4-5), max_errors / max_auth_failures (6-7)
 *   4  seed of the input chunk sizes (0: all at once; 1: one byte at a
 *      time, which also checks where every DATA ends)
 *   5  bytes the transport takes per send (0: all)
 *   6  a store hook that fails (0: none), or with bit 7 random failures
 *   7  output watermark
 * The rest is the client's input, with a memory store behind a fault
 * store. The session runs to quiescence. Checks: no crash, no leak, no
 * callback after free, the body callback sees exactly the bytes counted
 * in the message, and a message that came through DATA has only CRLF line
 * ends and holds no line "." unless the client sent ".." right after a line
 * break (so no terminator ever ended up inside a message). Fed one byte at
 * a time, DATA must end exactly after the first CRLF "." CRLF of its body
 * (counting the CRLF before it): never at a "." reached by a bare CR or
 * LF, which is what SMTP smuggling needs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproto/memstore.h"
#include "mailproto/smtp.h"
#include "smtp/smtp_internal.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 8
#define BODY_KEEP 65536

static const char *const hooks[] = {
    "authenticate",  "lookup_secret", "lookup_recipient",
    "deliver_begin", "write",         "deliver_commit"};

typedef struct run {
  const uint8_t *input;
  size_t input_len;
  int defer_policy;
  int refuse; /* SMTP_OP_* that refuses, or 0 */
  mailproto_op *pending;
  int freed;
  int tls_asked;
  size_t send_max;
  /* The message being stored. */
  uint8_t body[BODY_KEEP];
  size_t body_len;
  uint64_t body_total;
  int dot_dot; /* the input has ".." right after CR or LF */
} run;

static ptrdiff_t fz_send(mailproto_smtp *s, const uint8_t *d, size_t n,
                         void *ud) {
  run *r = ud;
  (void)s;
  (void)d;
  if (r->freed)
    abort();
  return (ptrdiff_t)(r->send_max && r->send_max < n ? r->send_max : n);
}

static int policy(run *r, mailproto_op *op, int kind) {
  if (r->freed || r->pending)
    abort();
  if (r->refuse == kind)
    mailproto_op_set_reply(op, kind == SMTP_OP_CONNECT ? 554 : 550, NULL,
                           "refused\r\nby policy");
  if (r->defer_policy) {
    r->pending = op;
    return MAILPROTO_DEFERRED;
  }
  return 0;
}

static int fz_connect(mailproto_smtp *s, mailproto_op *op, const char *c,
                      void *ud) {
  (void)s;
  (void)c;
  return policy(ud, op, SMTP_OP_CONNECT);
}

static int fz_helo(mailproto_smtp *s, mailproto_op *op, const char *v,
                   const char *d, void *ud) {
  (void)s;
  (void)v;
  if (strlen(d) > MAILPROTO_SMTP_DOMAIN_MAX + 2)
    abort();
  return policy(ud, op, SMTP_OP_HELO);
}

static int fz_mail(mailproto_smtp *s, mailproto_op *op,
                   const mailproto_smtp_mail *m, void *ud) {
  (void)s;
  if (strlen(m->reverse_path) > MAILPROTO_SMTP_PATH_MAX)
    abort();
  return policy(ud, op, SMTP_OP_MAIL);
}

static int fz_rcpt(mailproto_smtp *s, mailproto_op *op,
                   const mailproto_smtp_rcpt *rc, void *ud) {
  (void)s;
  if (strlen(rc->forward_path) > MAILPROTO_SMTP_PATH_MAX)
    abort();
  return policy(ud, op, SMTP_OP_RCPT);
}

static int fz_auth(mailproto_smtp *s, mailproto_op *op, const char *u,
                   void *ud) {
  (void)s;
  (void)u;
  return policy(ud, op, SMTP_OP_AUTH_POLICY);
}

static int fz_data(mailproto_smtp *s, mailproto_op *op, void *ud) {
  run *r = ud;
  (void)s;
  r->body_len = 0;
  r->body_total = 0;
  return policy(ud, op, SMTP_OP_DATA_START);
}

static int fz_vrfy(mailproto_smtp *s, mailproto_op *op, const char *a,
                   void *ud) {
  (void)s;
  (void)a;
  return policy(ud, op, SMTP_OP_VRFY);
}

static void fz_body(mailproto_smtp *s, const uint8_t *d, size_t n, void *ud) {
  run *r = ud;
  (void)s;
  if (r->freed)
    abort();
  size_t keep = n < BODY_KEEP - r->body_len ? n : BODY_KEEP - r->body_len;
  memcpy(r->body + r->body_len, d, keep);
  r->body_len += keep;
  r->body_total += n;
}

/* A message stored from DATA (the Received: header is CRLF text too):
 * CRLF line ends only, and a line "." only if the client sent "..". */
static void check_data_message(const run *r, const uint8_t *m, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (m[i] == '\n' && (i == 0 || m[i - 1] != '\r'))
      abort();
    if (m[i] == '\r' && (i + 1 == len || m[i + 1] != '\n'))
      abort();
    if ((i == 0 || m[i - 1] == '\n') && m[i] == '.' && i + 2 < len &&
        m[i + 1] == '\r' && m[i + 2] == '\n' && !r->dot_dot)
      abort();
  }
}

static int fz_message(mailproto_smtp *s, mailproto_op *op,
                      const mailproto_smtp_message *msg, void *ud) {
  run *r = ud;
  if (msg->size != r->body_total)
    abort();
  if (!s->txn.bdat && r->body_len == r->body_total)
    check_data_message(r, r->body, r->body_len);
  return policy(ud, op, SMTP_OP_MESSAGE);
}

static int fz_start_tls(mailproto_smtp *s, void *ud) {
  run *r = ud;
  (void)s;
  if (r->freed)
    abort();
  r->tls_asked = 1;
  return 0;
}

static mailproto_datetime fz_now(mailproto_smtp *s, void *ud) {
  (void)s;
  (void)ud;
  mailproto_datetime dt = {1795702707, 0};
  return dt;
}

static void configure(const uint8_t *h, mailproto_smtp_config *c, run *r) {
  static const size_t lines[] = {64, 128, 512, 1000};
  static const unsigned rcpts[] = {1, 2, 5, 100};
  static const uint64_t sizes[] = {0, 150, 2000, 32u * 1024 * 1024};
  static const unsigned errs[] = {0, 1, 3, 10};
  static const size_t marks[] = {256, 1024, 4096, 16384};
  c->lmtp = h[0] & 1;
  c->bare_eol = (h[0] & 2) ? MAILPROTO_SMTP_BARE_EOL_NORMALIZE
                           : MAILPROTO_SMTP_BARE_EOL_REJECT;
  c->add_received = (h[0] >> 2) & 1;
  c->secure = (h[0] >> 3) & 1;
  c->allow_insecure_auth = (h[0] >> 4) & 1;
  c->require_auth = (h[0] >> 5) & 1;
  r->defer_policy = (h[0] >> 7) & 1;
  c->extensions = h[1] | ((unsigned)(h[2] & 3) << 8);
  c->sasl_mechanisms = (h[2] >> 2) & 7;
  static const int refusing[] = {0,
                                 SMTP_OP_CONNECT,
                                 SMTP_OP_HELO,
                                 SMTP_OP_MAIL,
                                 SMTP_OP_RCPT,
                                 SMTP_OP_DATA_START,
                                 SMTP_OP_MESSAGE,
                                 SMTP_OP_AUTH_POLICY};
  r->refuse = refusing[h[2] >> 5];
  c->max_line = lines[h[3] & 3];
  c->max_recipients = rcpts[(h[3] >> 2) & 3];
  c->max_message_size = sizes[(h[3] >> 4) & 3];
  c->max_errors = errs[h[3] >> 6];
  c->max_auth_failures = errs[h[3] >> 6];
  c->output_watermark = marks[h[7] & 3];
  r->send_max = h[5];
}

/* Where DATA must end for a body starting at `start`: after the first
 * CRLF "." CRLF, the CRLF before the body included (RFC 5321 4.1.1.4).
 * Returns the input length if there is none. */
static size_t data_end(const uint8_t *in, size_t len, size_t start) {
  for (size_t i = start; i + 3 <= len; i++) {
    int crlf_before = i == start || (i >= start + 2 && in[i - 2] == '\r' &&
                                     in[i - 1] == '\n');
    if (crlf_before && in[i] == '.' && in[i + 1] == '\r' && in[i + 2] == '\n')
      return i + 3;
  }
  return len;
}

/* One byte at a time: checks the session's DATA state against the model
 * after every step. */
static void check_data_state(const mailproto_smtp *s, const run *r, size_t pos,
                             int *in_data, size_t *end) {
  int now = s->state == SMTP_ST_DATA && !s->io.fatal;
  if (now && !*in_data)
    *end = data_end(r->input, r->input_len, pos);
  if (*in_data && !now && !s->io.fatal && s->state != SMTP_ST_CLOSING &&
      pos != *end)
    abort();
  if (now && pos > *end)
    abort();
  *in_data = now;
}

/* One event-loop turn; returns 1 if anything moved. */
static int turn(mailproto_smtp *s, faultstore *f, run *r) {
  int moved = 0;
  if (r->pending) {
    mailproto_op *op = r->pending;
    r->pending = NULL;
    mailproto_op_complete(op, 0);
    moved = 1;
  }
  if (faultstore_run_pending(f) > 0)
    moved = 1;
  if (r->tls_asked) {
    r->tls_asked = 0;
    mailproto_smtp_set_secure(s);
    moved = 1;
  }
  if (mailproto_smtp_want_write(s)) {
    mailproto_smtp_writable(s);
    moved = 1;
  }
  return moved;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER)
    return 0;
  static run r;
  memset(&r, 0, offsetof(run, body));
  r.input = data + HEADER;
  r.input_len = size - HEADER;
  for (size_t i = 0; i + 2 < r.input_len; i++)
    if ((r.input[i] == '\r' || r.input[i] == '\n') && r.input[i + 1] == '.' &&
        r.input[i + 2] == '.')
      r.dot_dot = 1;

  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_memstore *ms;
  if (mailproto_memstore_new(NULL, &ms) != 0)
    return 0;
  mailproto_memstore_add_user(ms, "alice", "secret");
  mailproto_memstore_add_user(ms, "bob", "hunter2");
  mailproto_store inner, outer;
  mailproto_memstore_store(ms, &inner);
  faultstore *f;
  if (faultstore_new(&inner, NULL, &f) != 0) {
    mailproto_memstore_free(ms);
    return 0;
  }
  faultstore_store(f, &outer);
  faultstore_defer_all(f, (data[0] >> 6) & 1);
  if (data[6] & 0x80)
    faultstore_fail_random(f, data[6], 10, MAILPROTO_ERR_TEMPORARY);
  else if (data[6] & 7)
    faultstore_fail_hook(f, hooks[(data[6] & 7) % 6],
                         (data[6] & 8) ? MAILPROTO_ERR_LIMIT
                                       : MAILPROTO_ERR_IO);

  mailproto_smtp_config c;
  mailproto_smtp_config_init(&c, sizeof c);
  c.allocator = &af.allocator;
  c.hostname = "mx.example.org";
  configure(data, &c, &r);
  mailproto_smtp_callbacks cb;
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  cb.send = fz_send;
  cb.start_tls = fz_start_tls;
  cb.connect = fz_connect;
  cb.helo = fz_helo;
  cb.mail = fz_mail;
  cb.rcpt = fz_rcpt;
  cb.auth = fz_auth;
  cb.data_start = fz_data;
  cb.body = fz_body;
  cb.message = fz_message;
  cb.vrfy = fz_vrfy;
  cb.now = fz_now;
  mailproto_smtp *s;
  if (mailproto_smtp_new(&c, &cb, &outer, &r, &s) == 0) {
    mailproto_smtp_set_client(s, "192.0.2.7");
    mailproto_smtp_start(s);
    uint32_t seed = data[4];
    int bytewise = seed == 1, in_data = 0;
    size_t pos = 0, end = 0;
    for (int idle = 0; idle < 4 && !mailproto_smtp_closed(s);) {
      int moved = turn(s, f, &r);
      if (bytewise)
        check_data_state(s, &r, pos, &in_data, &end);
      if (pos < r.input_len && mailproto_smtp_want_read(s)) {
        size_t n = r.input_len - pos;
        if (bytewise)
          n = 1;
        else if (seed) {
          seed = seed * 1664525u + 1013904223u;
          size_t chunk = 1 + (seed >> 27);
          n = n < chunk ? n : chunk;
        }
        ptrdiff_t used = mailproto_smtp_feed(s, r.input + pos, n);
        if (used < 0)
          break;
        if ((size_t)used > n)
          abort();
        pos += (size_t)used;
        moved |= used > 0;
        if (bytewise)
          check_data_state(s, &r, pos, &in_data, &end);
      }
      idle = moved ? 0 : idle + 1;
    }
    mailproto_smtp_free(s);
  }
  r.freed = 1;
  faultstore_free(f);
  mailproto_memstore_free(ms);
  if (af.live != 0)
    abort();
  return 0;
}
