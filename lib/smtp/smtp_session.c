/*
 * The SMTP/LMTP session: its lifecycle, the feed loop, the contract's
 * queries, the op sink that resumes deferred steps, and STARTTLS
 * (RFC 3207). The session contract of DESIGN.md comes from the shared
 * plumbing (core/session.h): every entry point opens a batch with
 * mailproto_session_enter(), does its work and ends in end_batch(), which
 * sends what was queued, makes failures sticky and starts TLS once the
 * 220 is out.
 */
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"

#define SMTP_LINE_MIN 64u
#define SMTP_LINE_MAX ((size_t)1 << 20)
#define SMTP_WATERMARK_MIN 256u
#define SMTP_WATERMARK_MAX ((size_t)1 << 30)
#define SMTP_RECIPIENTS_MAX 100000u
#define SMTP_GREETING_MAX 200u
#define SMTP_CLIENT_MAX 255u

void mailproto_smtp_config_init(mailproto_smtp_config *config,
                                size_t struct_size) {
  mailproto_smtp_config d;
  memset(&d, 0, sizeof d);
  d.hostname = "localhost";
  d.extensions = MAILPROTO_SMTP_EXT_ALL;
  d.max_line = 512;
  d.max_message_size = 32u * 1024 * 1024;
  d.max_recipients = 100;
  d.max_errors = 10;
  d.max_auth_failures = 3;
  d.output_watermark = 16 * 1024;
  d.sasl_mechanisms = MAILPROTO_SASL_ALL;
  d.bare_eol = MAILPROTO_SMTP_BARE_EOL_REJECT;
  d.add_received = 1;
  mailproto_session_init_sized(config, struct_size, &d, sizeof d);
}

void mailproto_smtp_callbacks_init(mailproto_smtp_callbacks *callbacks,
                                   size_t struct_size) {
  mailproto_session_init_sized(callbacks, struct_size, NULL, sizeof *callbacks);
}

/* ------------------------------------------------------------------ */
/* Output and failure                                                  */
/* ------------------------------------------------------------------ */

static int send_to_transport(void *owner, const uint8_t *data, size_t len,
                             size_t *sent) {
  mailproto_smtp *s = owner;
  return mailproto_session_sent(s->cb.send(s, data, len, s->user_data), len,
                                sent);
}

static int start_tls(void *owner) {
  mailproto_smtp *s = owner;
  return s->cb.start_tls(s, s->user_data);
}

/* Every entry point ends here: send what the batch queued, make any
 * failure sticky, start TLS once the 220 is out (RFC 3207 4), and give
 * back the buffers of a burst. No reply is produced across calls, so
 * nothing keeps the session busy but a deferred op. */
static int end_batch(mailproto_smtp *s, int rc) {
  return mailproto_session_leave(&s->io, rc, 0);
}

/* ------------------------------------------------------------------ */
/* Deferred steps                                                      */
/* ------------------------------------------------------------------ */

/* The continuation of a step of `kind` that finished with `rc`, at once or
 * after it was deferred. Returns 0 or a fatal code. */
static int resume(mailproto_smtp *s, int kind, int rc) {
  int out;
  switch (kind) {
  case SMTP_OP_CONNECT:
    out = mailproto_smtp_connect_done(s, rc);
    break;
  case SMTP_OP_HELO:
    out = mailproto_smtp_helo_done(s, rc);
    break;
  case SMTP_OP_MAIL:
    out = mailproto_smtp_mail_done(s, rc);
    break;
  case SMTP_OP_RCPT:
    out = mailproto_smtp_rcpt_done(s, rc);
    break;
  case SMTP_OP_VRFY:
    out = mailproto_smtp_vrfy_done(s, rc);
    break;
  case SMTP_OP_AUTH_POLICY:
    out = mailproto_smtp_auth_policy_done(s, rc);
    break;
  case SMTP_OP_DATA_START:
    out = mailproto_smtp_data_start_done(s, rc);
    break;
  case SMTP_OP_MESSAGE:
    out = mailproto_smtp_message_done(s, rc);
    break;
  case SMTP_OP_LOOKUP:
    out = mailproto_smtp_lookup_done(s, rc);
    break;
  case SMTP_OP_AUTHENTICATE:
  case SMTP_OP_SECRET:
    out = mailproto_smtp_auth_store_done(s, kind, rc);
    break;
  case SMTP_OP_BEGIN:
    out = mailproto_smtp_begin_done(s, rc);
    break;
  case SMTP_OP_HEADER:
    out = mailproto_smtp_header_done(s, rc);
    break;
  case SMTP_OP_WRITE:
    out = mailproto_smtp_write_done(s, rc);
    break;
  case SMTP_OP_COMMIT:
    out = mailproto_smtp_commit_done(s, rc);
    break;
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
  /* A policy's reply text is not needed once its step is over. */
  if (smtp_op_is_policy(kind) && !mailproto_op_pending(&s->io.op))
    mailproto_smtp_policy_clear(s);
  return out;
}

void mailproto_smtp_policy_begin(mailproto_smtp *s, int kind) {
  mailproto_smtp_policy_clear(s);
  mailproto_op_begin(&s->io.op, kind);
}

int mailproto_smtp_policy_end(mailproto_smtp *s, int kind, int rc) {
  rc = mailproto_op_end(&s->io.op, rc);
  if (rc == MAILPROTO_DEFERRED)
    return 0;
  /* Any other positive value is a callback bug: a temporary failure. */
  if (rc > 0)
    rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  return resume(s, kind, rc);
}

int mailproto_smtp_after_store(mailproto_smtp *s, int kind, int rc) {
  return rc == MAILPROTO_DEFERRED ? 0 : resume(s, kind, rc);
}

static int sink_complete(mailproto_op *op, int status) {
  mailproto_smtp *s = op->owner;
  int rc = mailproto_session_resume(&s->io);
  if (rc != 0)
    return rc;
  return end_batch(s, resume(s, op->kind, status));
}

static const mailproto_op_sink smtp_sink = {
    .complete = sink_complete, .reply = mailproto_smtp_set_policy_reply};

mailproto_datetime mailproto_smtp_clock(mailproto_smtp *s) {
  if (s->cb.now)
    return s->cb.now(s, s->user_data);
  mailproto_datetime dt = {(int64_t)time(NULL), 0};
  return dt;
}

/* ------------------------------------------------------------------ */
/* Creation                                                            */
/* ------------------------------------------------------------------ */

static int text_ok(const char *t, size_t max) {
  size_t len = strlen(t);
  if (len == 0 || len > max)
    return 0;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)t[i] < 0x20 || t[i] == 0x7f)
      return 0;
  return 1;
}

static int config_ok(const mailproto_smtp_config *c) {
  size_t host_len = c->hostname ? strlen(c->hostname) : 0;
  return host_len > 0 && host_len <= MAILPROTO_SMTP_DOMAIN_MAX &&
         mailproto_smtp_check_domain(c->hostname, host_len, 0) == 0 &&
         (!c->greeting || text_ok(c->greeting, SMTP_GREETING_MAX)) &&
         c->max_line >= SMTP_LINE_MIN && c->max_line <= SMTP_LINE_MAX &&
         c->max_recipients >= 1 && c->max_recipients <= SMTP_RECIPIENTS_MAX &&
         c->output_watermark >= SMTP_WATERMARK_MIN &&
         c->output_watermark <= SMTP_WATERMARK_MAX &&
         (c->extensions & ~MAILPROTO_SMTP_EXT_ALL) == 0 &&
         (c->sasl_mechanisms & ~MAILPROTO_SASL_ALL) == 0 &&
         (c->bare_eol == MAILPROTO_SMTP_BARE_EOL_REJECT ||
          c->bare_eol == MAILPROTO_SMTP_BARE_EOL_NORMALIZE);
}

int mailproto_smtp_new(const mailproto_smtp_config *config,
                       const mailproto_smtp_callbacks *callbacks,
                       const mailproto_store *store, void *user_data,
                       mailproto_smtp **out) {
  mailproto_smtp_config cfg;
  mailproto_smtp_callbacks cb;
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  if (!callbacks || !store ||
      mailproto_session_copy_sized(&cb, sizeof cb, callbacks,
                                   offsetof(mailproto_smtp_callbacks, send) +
                                       sizeof cb.send) != 0 ||
      !cb.send)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (config &&
      mailproto_session_copy_sized(&cfg, sizeof cfg, config,
                                   offsetof(mailproto_smtp_config, allocator) +
                                       sizeof cfg.allocator) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  cfg.lmtp = cfg.lmtp != 0;
  if (!config_ok(&cfg))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* Beyond the watermark the queue holds the replies of one command: an
   * LMTP end of data answers once per recipient. */
  size_t limit = 0, per_rcpt = 0;
  if (mailproto_size_mul(cfg.lmtp ? cfg.max_recipients : 0, SMTP_REPLY_LINE_MAX,
                         &per_rcpt) != 0 ||
      mailproto_size_add(cfg.output_watermark, SMTP_REPLY_SLACK, &limit) != 0 ||
      mailproto_size_add(limit, per_rcpt, &limit) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;

  const mailproto_allocator *alloc =
      cfg.allocator ? cfg.allocator : mailproto_default_allocator();
  mailproto_smtp *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *alloc;
  cfg.allocator = NULL; /* the session's copy is s->alloc */
  s->hostname = mailproto_mem_strdup(&s->alloc, cfg.hostname);
  s->greeting = mailproto_mem_strdup(&s->alloc, cfg.greeting ? cfg.greeting
                                                : cfg.lmtp   ? "LMTP ready"
                                                             : "ESMTP ready");
  if (!s->hostname || !s->greeting) {
    mailproto_mem_free(&s->alloc, s->hostname);
    mailproto_mem_free(&s->alloc, s->greeting);
    mailproto_mem_free(&s->alloc, s);
    return MAILPROTO_ERR_NOMEM;
  }
  cfg.hostname = s->hostname;
  cfg.greeting = s->greeting;
  s->config = cfg;
  s->cb = cb;
  s->store = *store;
  s->user_data = user_data;
  s->ext = cfg.extensions;
  /* RFC 3030 3: BINARYMIME can only be used with CHUNKING. */
  if (!(s->ext & MAILPROTO_SMTP_EXT_CHUNKING))
    s->ext &= ~MAILPROTO_SMTP_EXT_BINARYMIME;
  mailproto_session_setup io = {.alloc = &s->alloc,
                                .max_line = cfg.max_line,
                                .out_limit = limit,
                                .watermark = cfg.output_watermark,
                                .send = send_to_transport,
                                .start_tls = start_tls,
                                .sink = &smtp_sink,
                                .owner = s,
                                .secure = cfg.secure};
  mailproto_session_init(&s->io, &io);
  s->state = SMTP_ST_COMMAND;
  s->dstate = SMTP_D_BOL;
  *out = s;
  return 0;
}

void mailproto_smtp_free(mailproto_smtp *s) {
  if (!s)
    return;
  /* A store op is cancelled through the store (a handle its hook was to
   * hand over, a writer, recipient or login account, is then the
   * backend's, and cleared); a policy callback's op is simply abandoned
   * by mailproto_session_free() (the application was told not to
   * complete it). */
  if (!smtp_op_is_policy(s->io.op.kind))
    mailproto_store_call_cancel(&s->store, &s->io.op);
  mailproto_smtp_auth_end(s);
  mailproto_smtp_txn_reset(s);
  mailproto_store_call_release_account(&s->store, s->rcpt_account);
  mailproto_store_call_release_account(&s->store, s->account);
  mailproto_smtp_policy_clear(s);
  mailproto_mem_free(&s->alloc, s->pending);
  mailproto_mem_free(&s->alloc, s->helo);
  mailproto_mem_free(&s->alloc, s->user);
  mailproto_mem_free(&s->alloc, s->client);
  mailproto_mem_free(&s->alloc, s->hostname);
  mailproto_mem_free(&s->alloc, s->greeting);
  mailproto_session_free(&s->io);
  mailproto_allocator alloc = s->alloc;
  mailproto_mem_free(&alloc, s);
}

int mailproto_smtp_set_client(mailproto_smtp *s, const char *address) {
  if (!s || !address)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.started)
    return MAILPROTO_ERR_STATE;
  /* It goes into a Received: comment, so no comment delimiters either. */
  if (!text_ok(address, SMTP_CLIENT_MAX) || strpbrk(address, "()\\ "))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  char *copy = mailproto_mem_strdup(&s->alloc, address);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  mailproto_mem_free(&s->alloc, s->client);
  s->client = copy;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The greeting                                                        */
/* ------------------------------------------------------------------ */

/* RFC 5321 3.1 and 4.3.2: the greeting is 220, or 554 (then every command
 * but QUIT gets 503), or 421 (closing). RFC 2034 3: no enhanced code. */
int mailproto_smtp_connect_done(mailproto_smtp *s, int rc) {
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  const char *text = s->preply.text;
  switch (verdict) {
  case SMTP_ACCEPT:
    return mailproto_smtp_replyf(s, 220, NULL, "%s %s", s->hostname,
                                 text ? text : s->greeting);
  case SMTP_REJECT:
    if (s->preply.code == 554) {
      s->rejected = 1;
      return mailproto_smtp_replyf(s, 554, NULL, "%s %s", s->hostname,
                                   text ? text : "Service unavailable");
    }
    break;
  default:
    text = NULL;
    break;
  }
  s->state = SMTP_ST_CLOSING;
  return mailproto_smtp_replyf(
      s, 421, NULL, "%s %s", s->hostname,
      text ? text : "Service not available, closing transmission channel");
}

int mailproto_smtp_start(mailproto_smtp *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_start(&s->io);
  if (rc != 0)
    return rc;
  mailproto_smtp_make_tag(s);
  mailproto_smtp_policy_begin(s, SMTP_OP_CONNECT);
  rc = s->cb.connect ? s->cb.connect(s, &s->io.op, s->client, s->user_data) : 0;
  return end_batch(s, mailproto_smtp_policy_end(s, SMTP_OP_CONNECT, rc));
}

/* ------------------------------------------------------------------ */
/* Input                                                               */
/* ------------------------------------------------------------------ */

/* Whether input may be consumed now. Bytes after STARTTLS are consumed
 * (and dropped) even while the 220 is still queued. */
static int can_consume(const mailproto_smtp *s) {
  return mailproto_session_can_read(&s->io) && s->state != SMTP_ST_CLOSING;
}

static int read_line(mailproto_smtp *s, const uint8_t *in, size_t len,
                     size_t *used) {
  mailproto_line line;
  int got = mailproto_line_read(&s->io.lines, in, len, used, &line);
  if (got <= 0)
    return got;
  if (s->state == SMTP_ST_AUTH)
    return mailproto_smtp_auth_line(s, &line);
  return mailproto_smtp_command(s, &line);
}

ptrdiff_t mailproto_smtp_feed(mailproto_smtp *s, const uint8_t *data,
                              size_t len) {
  if (!s || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  size_t used = 0;
  /* RFC 3207 4.2: nothing the client sent before the handshake may count
   * as a command after it (the loop drops it). */
  while (mailproto_session_feeding(&s->io, rc, &used, len, can_consume(s))) {
    size_t n = 0;
    switch (s->state) {
    case SMTP_ST_DATA:
      rc = mailproto_smtp_data_feed(s, data + used, len - used, &n);
      break;
    case SMTP_ST_BDAT:
      rc = mailproto_smtp_bdat_feed(s, data + used, len - used, &n);
      break;
    default:
      rc = read_line(s, data + used, len - used, &n);
      break;
    }
    used += n;
  }
  return mailproto_session_fed(&s->io, rc, used, 0);
}

int mailproto_smtp_writable(mailproto_smtp *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_flush(&s->io);
  return rc != 0 ? rc : mailproto_session_settle(&s->io, 0);
}

/* ------------------------------------------------------------------ */
/* STARTTLS                                                            */
/* ------------------------------------------------------------------ */

void mailproto_smtp_forget_client(mailproto_smtp *s) {
  mailproto_smtp_auth_end(s);
  mailproto_smtp_txn_reset(s);
  mailproto_store_call_release_account(&s->store, s->account);
  s->account = NULL;
  mailproto_mem_free(&s->alloc, s->user);
  s->user = NULL;
  mailproto_mem_free(&s->alloc, s->helo);
  s->helo = NULL;
  s->esmtp = 0;
}

int mailproto_smtp_set_secure(mailproto_smtp *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.fatal)
    return MAILPROTO_ERR_STATE;
  /* Before start: implicit TLS (port 465). */
  int was_started = s->io.started;
  int rc = mailproto_session_tls_done(&s->io);
  if (rc != 0 || !was_started)
    return rc;
  /* RFC 3207 4.2: back to the state right after the greeting; no new
   * greeting is sent, the client starts with EHLO. */
  mailproto_smtp_forget_client(s);
  s->state = SMTP_ST_COMMAND;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Queries                                                             */
/* ------------------------------------------------------------------ */

int mailproto_smtp_want_read(const mailproto_smtp *s) {
  return s && can_consume(s);
}

int mailproto_smtp_want_write(const mailproto_smtp *s) {
  return s && mailproto_session_want_write(&s->io, 0);
}

int mailproto_smtp_closed(const mailproto_smtp *s) {
  return s && mailproto_session_closed(&s->io, s->state == SMTP_ST_CLOSING);
}

const char *mailproto_smtp_helo(const mailproto_smtp *s) {
  return s ? s->helo : NULL;
}

const char *mailproto_smtp_user(const mailproto_smtp *s) {
  return s ? s->user : NULL;
}

const char *mailproto_smtp_client(const mailproto_smtp *s) {
  return s ? s->client : NULL;
}
