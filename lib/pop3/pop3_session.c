/*
 * The POP3 session contract on the shared plumbing (core/session.h): one
 * entry point per contract function, each bracketing its work with
 * mailproto_session_enter()/leave() (end_batch); one embedded op whose
 * sink resumes whatever deferred. The protocol itself lives in the other
 * pop3_*.c files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/nonce.h"
#include "pop3/pop3_internal.h"
#include "store/store_call.h"

#define POP3_LINE_MIN 32u
#define POP3_LINE_MAX 65536u
#define POP3_WATERMARK_MIN 64u
#define POP3_WATERMARK_MAX (1u << 30)

void mailproto_pop3_config_init(mailproto_pop3_config *config,
                                size_t struct_size) {
  mailproto_pop3_config d;
  memset(&d, 0, sizeof d);
  d.hostname = "localhost";
  d.greeting = "POP3 server ready";
  d.max_line = 255;
  d.max_errors = 10;
  d.max_auth_failures = 3;
  d.login_delay = -1;
  d.expire = -2;
  d.output_watermark = 16 * 1024;
  d.sasl_mechanisms = MAILPROTO_SASL_ALL;
  d.apop = 1;
  d.user_pass = 1;
  mailproto_session_init_sized(config, struct_size, &d, sizeof d);
}

void mailproto_pop3_callbacks_init(mailproto_pop3_callbacks *callbacks,
                                   size_t struct_size) {
  mailproto_session_init_sized(callbacks, struct_size, NULL, sizeof *callbacks);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int send_to_transport(void *owner, const uint8_t *data, size_t len,
                             size_t *sent) {
  mailproto_pop3 *s = owner;
  return mailproto_session_sent(s->cb.send(s, data, len, s->user_data), len,
                                sent);
}

static int start_tls(void *owner) {
  mailproto_pop3 *s = owner;
  return s->cb.start_tls(s, s->user_data);
}

static int status_line(mailproto_pop3 *s, const char *status,
                       const char *text) {
  mailproto_outq *q = &s->io.out;
  int rc = mailproto_outq_write_str(q, status);
  if (rc == 0 && text && *text) {
    rc = mailproto_outq_write(q, " ", 1);
    if (rc == 0)
      rc = mailproto_outq_write_str(q, text);
  }
  return rc == 0 ? mailproto_outq_write(q, "\r\n", 2) : rc;
}

int mailproto_pop3_ok(mailproto_pop3 *s, const char *text) {
  return status_line(s, "+OK", text);
}

int mailproto_pop3_err(mailproto_pop3 *s, const char *text) {
  return status_line(s, "-ERR", text);
}

int mailproto_pop3_bad(mailproto_pop3 *s, const char *text) {
  if (mailproto_session_count(&s->errors, s->config.max_errors)) {
    mailproto_pop3_close(s);
    return mailproto_pop3_err(s, "Too many errors");
  }
  return mailproto_pop3_err(s, text);
}

int mailproto_pop3_printf(mailproto_pop3 *s, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof text)
    return MAILPROTO_ERR_INTERNAL;
  return mailproto_outq_write(&s->io.out, text, (size_t)n);
}

/* Every entry point ends here: send what the batch queued, make any
 * failure sticky, start TLS once STLS's +OK is out, and give back the
 * buffers of a burst once no response is being produced. */
static int end_batch(mailproto_pop3 *s, int rc) {
  return mailproto_session_leave(&s->io, rc, mailproto_pop3_streaming(s));
}

void mailproto_pop3_close(mailproto_pop3 *s) {
  s->state = POP3_CLOSING;
  s->stream.kind = POP3_STREAM_NONE;
  mailproto_pop3_auth_reset(s);
  mailproto_pop3_drop_close(s);
  mailproto_store_call_release_account(&s->store, s->account);
  s->account = NULL;
}

/* ------------------------------------------------------------------ */
/* Challenges                                                          */
/* ------------------------------------------------------------------ */

int mailproto_pop3_challenge(mailproto_pop3 *s, char *out, size_t size) {
  s->challenges++;
  uint64_t nonce = s->cb.nonce ? s->cb.nonce(s, s->user_data)
                               : mailproto_nonce_default(s, s->challenges);
  int64_t now =
      s->cb.now ? s->cb.now(s, s->user_data).utc : (int64_t)time(NULL);
  char unique[17];
  snprintf(unique, sizeof unique, "%llx", (unsigned long long)nonce);
  /* RFC 1939 7: the msg-id form <process-ID.clock@hostname>. The
   * hostname is short enough (POP3_TEXT_MAX) never to be cut. */
  int n = mailproto_nonce_challenge(out, size, unique, now, s->config.hostname);
  return n < 0 ? MAILPROTO_ERR_INTERNAL : 0;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static int send_greeting(mailproto_pop3 *s) {
  char stamp[256];
  s->state = POP3_AUTHORIZATION;
  if (!s->config.apop)
    return mailproto_pop3_ok(s, s->config.greeting);
  int rc = mailproto_pop3_challenge(s, stamp, sizeof stamp);
  if (rc != 0)
    return rc;
  s->timestamp = mailproto_mem_strdup(&s->alloc, stamp);
  if (!s->timestamp)
    return MAILPROTO_ERR_NOMEM;
  if (!*s->config.greeting)
    return mailproto_pop3_ok(s, stamp);
  return mailproto_pop3_printf(s, "+OK %s %s\r\n", s->config.greeting, stamp);
}

static int connect_done(mailproto_pop3 *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  if (s->reply.nomem)
    return MAILPROTO_ERR_NOMEM;
  if (rc < 0 || s->reply.code >= 400) {
    const char *text = rc < 0 ? "[SYS/TEMP] Service temporarily unavailable"
                       : s->reply.text ? s->reply.text
                                       : "Service not available";
    mailproto_pop3_close(s);
    return mailproto_pop3_err(s, text);
  }
  return send_greeting(s);
}

/* The result of an op of `kind`, at once or after it was deferred. (The
 * kind is passed, not read from the op: a store wrapper that refuses a
 * missing hook never begins the op.) */
static int finish_op(mailproto_pop3 *s, int kind, int rc) {
  switch (kind) {
  case POP3_OP_CONNECT:
    return connect_done(s, rc);
  case POP3_OP_AUTHENTICATE:
  case POP3_OP_LOOKUP_SECRET:
  case POP3_OP_AUTH_POLICY:
  case POP3_OP_OPEN:
  case POP3_OP_DELAY:
    return mailproto_pop3_auth_done(s, kind, rc);
  case POP3_OP_READ:
    return mailproto_pop3_stream_read_done(s, rc);
  case POP3_OP_EXPUNGE:
    return mailproto_pop3_drop_update_done(s, rc);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

int mailproto_pop3_after_op(mailproto_pop3 *s, int kind, int rc) {
  return rc == MAILPROTO_DEFERRED ? 0 : finish_op(s, kind, rc);
}

void mailproto_pop3_policy_begin(mailproto_pop3 *s, int kind) {
  mailproto_reply_clear(&s->reply, &s->alloc);
  mailproto_op_begin(&s->io.op, kind);
}

int mailproto_pop3_policy_end(mailproto_pop3 *s, int rc) {
  if (rc > 0 && rc != MAILPROTO_DEFERRED)
    rc = MAILPROTO_ERR_CALLBACK_FAILURE;
  return mailproto_op_end(&s->io.op, rc);
}

static int op_message(mailproto_op *op, const mailproto_message_info *msg) {
  mailproto_pop3 *s = op->owner;
  return op->kind == POP3_OP_OPEN ? mailproto_pop3_drop_add(s, msg) : 0;
}

static int op_complete(mailproto_op *op, int status) {
  mailproto_pop3 *s = op->owner;
  int rc = mailproto_session_resume(&s->io);
  if (rc != 0)
    return rc;
  rc = finish_op(s, op->kind, status);
  if (rc == 0)
    rc = mailproto_pop3_produce(s);
  return end_batch(s, rc);
}

/* A policy callback's reply. The text becomes one line after "-ERR ",
 * in ASCII (RFC 1939 3: responses are ASCII); POP3 has no enhanced
 * codes. */
static int op_reply(mailproto_op *op, int code, const char *enhanced,
                    const char *text) {
  static const mailproto_reply_rules rules = {POP3_POLICY_TEXT_MAX, 1};
  mailproto_pop3 *s = op->owner;
  if (op->kind != POP3_OP_CONNECT && op->kind != POP3_OP_AUTH_POLICY)
    return MAILPROTO_ERR_STATE;
  return mailproto_reply_set(&s->reply, &s->alloc, &rules, code, enhanced,
                             text);
}

static const mailproto_op_sink op_sink = {
    .message = op_message, .complete = op_complete, .reply = op_reply};

/* ------------------------------------------------------------------ */
/* The contract                                                        */
/* ------------------------------------------------------------------ */

/* Length of a configured text, or -1 if it has bytes outside `ok`. */
static long text_len(const char *t, int (*ok)(unsigned char)) {
  size_t n = 0;
  for (; t[n]; n++)
    if (n >= POP3_TEXT_MAX || !ok((unsigned char)t[n]))
      return -1;
  return (long)n;
}

static int host_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* RFC 2449 3: the greeting's text must not hold a "<" of its own, or the
 * client would take the wrong APOP timestamp. */
static int greeting_char(unsigned char c) {
  return c >= 0x20 && c < 0x7f && c != '<' && c != '>';
}

static int printable_char(unsigned char c) {
  return c >= 0x20 && c < 0x7f;
}

static int check_config(const mailproto_pop3_config *c) {
  long h = c->hostname ? text_len(c->hostname, host_char) : -1;
  long g = c->greeting ? text_len(c->greeting, greeting_char) : -1;
  long i = c->implementation ? text_len(c->implementation, printable_char) : 0;
  if (h <= 0 || g < 0 || i < 0 || (c->implementation && i == 0) ||
      c->max_line < POP3_LINE_MIN || c->max_line > POP3_LINE_MAX ||
      c->output_watermark < POP3_WATERMARK_MIN ||
      c->output_watermark > POP3_WATERMARK_MAX || c->login_delay < -1 ||
      c->expire < -2)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

int mailproto_pop3_new(const mailproto_pop3_config *config,
                       const mailproto_pop3_callbacks *callbacks,
                       const mailproto_store *store, void *user_data,
                       mailproto_pop3 **out) {
  mailproto_pop3_config cfg;
  mailproto_pop3_callbacks cb;
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  if (!callbacks || !store || !store->ops ||
      mailproto_session_copy_sized(&cb, sizeof cb, callbacks,
                                   offsetof(mailproto_pop3_callbacks, send) +
                                       sizeof cb.send) != 0 ||
      !cb.send)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (config && mailproto_session_copy_sized(
                    &cfg, sizeof cfg, config,
                    offsetof(mailproto_pop3_config, hostname)) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = check_config(&cfg);
  if (rc != 0)
    return rc;

  const mailproto_allocator *alloc =
      cfg.allocator ? cfg.allocator : mailproto_default_allocator();
  mailproto_pop3 *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *alloc;
  cfg.allocator = NULL; /* the session's copy is s->alloc */
  cfg.sasl_mechanisms &= MAILPROTO_SASL_ALL;
  s->config = cfg;
  const char **const strings[] = {&s->config.hostname, &s->config.greeting,
                                  &s->config.implementation};
  if (mailproto_session_copy_strings(&s->alloc, strings, 3, &s->strings) != 0) {
    mailproto_mem_free(&s->alloc, s);
    return MAILPROTO_ERR_NOMEM;
  }
  s->cb = cb;
  s->store = *store;
  s->user_data = user_data;
  mailproto_session_setup io = {.alloc = &s->alloc,
                                .max_line = cfg.max_line,
                                .out_limit =
                                    cfg.output_watermark + POP3_REPLY_SLACK,
                                .watermark = cfg.output_watermark,
                                .send = send_to_transport,
                                .start_tls = start_tls,
                                .sink = &op_sink,
                                .owner = s,
                                .secure = cfg.secure};
  mailproto_session_init(&s->io, &io);
  s->state = POP3_GREETING;
  *out = s;
  return 0;
}

int mailproto_pop3_set_client(mailproto_pop3 *s, const char *address) {
  if (!s || !address)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.started)
    return MAILPROTO_ERR_STATE;
  char *copy = mailproto_mem_strdup(&s->alloc, address);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  mailproto_mem_free(&s->alloc, s->client);
  s->client = copy;
  return 0;
}

int mailproto_pop3_start(mailproto_pop3 *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_start(&s->io);
  if (rc != 0)
    return rc;
  if (s->cb.connect) {
    mailproto_pop3_policy_begin(s, POP3_OP_CONNECT);
    rc = s->cb.connect(s, &s->io.op, s->client ? s->client : "", s->user_data);
    rc = mailproto_pop3_after_op(s, POP3_OP_CONNECT,
                                 mailproto_pop3_policy_end(s, rc));
  } else
    rc = send_greeting(s);
  return end_batch(s, rc);
}

/* Whether the next input byte may be consumed now. */
static int can_consume(const mailproto_pop3 *s) {
  return mailproto_session_can_read(&s->io) && s->state != POP3_GREETING &&
         s->state != POP3_CLOSING && !mailproto_pop3_streaming(s);
}

ptrdiff_t mailproto_pop3_feed(mailproto_pop3 *s, const uint8_t *data,
                              size_t len) {
  if (!s || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  size_t used = 0;
  /* RFC 2595 3.1 and 4: bytes pipelined after STLS came in the clear (the
   * loop drops them). */
  while (mailproto_session_feeding(&s->io, rc, &used, len, can_consume(s))) {
    size_t n = 0;
    mailproto_line line;
    int got =
        mailproto_line_read(&s->io.lines, data + used, len - used, &n, &line);
    used += n;
    if (got < 0)
      rc = got;
    else if (got == 1 && (rc = mailproto_pop3_command(s, &line)) == 0)
      rc = mailproto_pop3_produce(s);
  }
  return mailproto_session_fed(&s->io, rc, used, mailproto_pop3_streaming(s));
}

int mailproto_pop3_writable(mailproto_pop3 *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_flush(&s->io);
  if (rc != 0)
    return rc;
  /* A fast transport takes each batch at once: keep producing until it
   * pushes back, a read is deferred, or the response is complete. */
  while (mailproto_pop3_streaming(s) && !mailproto_op_pending(&s->io.op) &&
         !mailproto_outq_congested(&s->io.out)) {
    mailproto_session_begin(&s->io);
    if ((rc = end_batch(s, mailproto_pop3_produce(s))) < 0)
      return rc;
  }
  return mailproto_session_settle(&s->io, mailproto_pop3_streaming(s));
}

int mailproto_pop3_set_secure(mailproto_pop3 *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.fatal)
    return s->io.fatal;
  /* Before start: implicit TLS (port 995). */
  int was_started = s->io.started;
  int rc = mailproto_session_tls_done(&s->io);
  if (rc != 0 || !was_started)
    return rc;
  /* RFC 2595 4: back to AUTHORIZATION, with nothing the client said in
   * the clear remembered; no new greeting. */
  s->state = POP3_AUTHORIZATION;
  s->utf8 = 0;
  mailproto_pop3_auth_reset(s);
  return 0;
}

int mailproto_pop3_want_read(const mailproto_pop3 *s) {
  return s && can_consume(s);
}

int mailproto_pop3_want_write(const mailproto_pop3 *s) {
  return s && mailproto_session_want_write(
                  &s->io, mailproto_pop3_streaming(s) &&
                              !mailproto_op_pending(&s->io.op));
}

int mailproto_pop3_closed(const mailproto_pop3 *s) {
  return s && mailproto_session_closed(&s->io, s->state == POP3_CLOSING);
}

const char *mailproto_pop3_user(const mailproto_pop3 *s) {
  return s ? s->user : NULL;
}

void mailproto_pop3_free(mailproto_pop3 *s) {
  if (!s)
    return;
  /* A policy op is abandoned by mailproto_session_free(): the application
   * must not complete it (smtp.h, mailproto_smtp_free). A store op is
   * cancelled; a handle its hook was to hand over (the account of a
   * login, the maildrop) is then the backend's, and cleared here. */
  int kind = s->io.op.kind;
  if (kind != POP3_OP_CONNECT && kind != POP3_OP_AUTH_POLICY &&
      kind != POP3_OP_DELAY)
    mailproto_store_call_cancel(&s->store, &s->io.op);
  s->stream.kind = POP3_STREAM_NONE;
  mailproto_pop3_auth_reset(s);
  /* RFC 1939 6: without QUIT nothing is removed. */
  mailproto_pop3_drop_close(s);
  mailproto_store_call_release_account(&s->store, s->account);
  mailproto_mem_free(&s->alloc, s->ranges);
  mailproto_reply_clear(&s->reply, &s->alloc);
  mailproto_mem_free(&s->alloc, s->user);
  mailproto_mem_free(&s->alloc, s->timestamp);
  mailproto_mem_free(&s->alloc, s->client);
  mailproto_mem_free(&s->alloc, s->strings);
  mailproto_session_free(&s->io);
  mailproto_allocator alloc = s->alloc;
  mailproto_mem_free(&alloc, s);
}
