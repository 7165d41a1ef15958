/*
 * The POP3 session contract: one entry point per contract function, each
 * bracketing its work with cork/uncork (end_batch); one embedded op whose
 * sink resumes whatever deferred; every fatal error made sticky in one
 * place (fail). The protocol itself lives in the other pop3_*.c files.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/md5.h"
#include "pop3/pop3_internal.h"
#include "store/store_call.h"

#define POP3_LINE_MIN 32u
#define POP3_LINE_MAX 65536u
#define POP3_WATERMARK_MIN 64u
#define POP3_WATERMARK_MAX (1u << 30)
/* An idle session gives back an output buffer larger than this. */
#define POP3_OUT_KEEP 1024u

void mailproto_pop3_config_init(mailproto_pop3_config *config,
                                size_t struct_size) {
  if (!config || struct_size < sizeof(size_t))
    return;
  mailproto_pop3_config d;
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
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
  /* A caller compiled against an older header gets the fields it knows. */
  size_t n = struct_size < sizeof d ? struct_size : sizeof d;
  memcpy(config, &d, n);
  config->struct_size = n;
}

void mailproto_pop3_callbacks_init(mailproto_pop3_callbacks *callbacks,
                                   size_t struct_size) {
  if (!callbacks || struct_size < sizeof(size_t))
    return;
  size_t n = struct_size < sizeof *callbacks ? struct_size : sizeof *callbacks;
  memset(callbacks, 0, n);
  callbacks->struct_size = n;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int send_to_transport(void *owner, const uint8_t *data, size_t len,
                             size_t *sent) {
  mailproto_pop3 *s = owner;
  ptrdiff_t n = s->cb.send(s, data, len, s->user_data);
  if (n < 0 || (size_t)n > len)
    return MAILPROTO_ERR_CALLBACK_FAILURE;
  *sent = (size_t)n;
  return 0;
}

static int status_line(mailproto_pop3 *s, const char *status,
                       const char *text) {
  int rc = mailproto_outq_write_str(&s->out, status);
  if (rc == 0 && text && *text) {
    rc = mailproto_outq_write(&s->out, " ", 1);
    if (rc == 0)
      rc = mailproto_outq_write_str(&s->out, text);
  }
  return rc == 0 ? mailproto_outq_write(&s->out, "\r\n", 2) : rc;
}

int mailproto_pop3_ok(mailproto_pop3 *s, const char *text) {
  return status_line(s, "+OK", text);
}

int mailproto_pop3_err(mailproto_pop3 *s, const char *text) {
  return status_line(s, "-ERR", text);
}

int mailproto_pop3_bad(mailproto_pop3 *s, const char *text) {
  s->errors++;
  if (s->config.max_errors != 0 && s->errors >= s->config.max_errors) {
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
  return mailproto_outq_write(&s->out, text, (size_t)n);
}

/* The session can no longer be used: nothing more is sent. */
static int fail(mailproto_pop3 *s, int code) {
  if (!mailproto_is_fatal(code))
    code = MAILPROTO_ERR_INTERNAL;
  if (!s->fatal)
    s->fatal = code;
  mailproto_outq_discard(&s->out);
  return s->fatal;
}

/* After output drained: start TLS once STLS's "+OK" is on the wire, and
 * give back a large output buffer an idle session no longer needs. */
static int settle(mailproto_pop3 *s) {
  if (mailproto_outq_pending(&s->out) != 0)
    return 0;
  if (!mailproto_pop3_streaming(s) && s->out.buf.cap > POP3_OUT_KEEP) {
    mailproto_buf_free(&s->out.buf);
    s->out.head = 0;
  }
  if (s->state == POP3_TLS_FLUSH) {
    /* RFC 2595 4: the negotiation begins right after the +OK's CRLF. The
     * state changes first, so the callback may call set_secure. */
    s->state = POP3_TLS_WAIT;
    int rc = s->cb.start_tls(s, s->user_data);
    if (rc < 0)
      return fail(s,
                  mailproto_is_fatal(rc) ? rc : MAILPROTO_ERR_CALLBACK_FAILURE);
  }
  return 0;
}

/* Every entry point ends here: send what the batch queued, make any
 * failure sticky. */
static int end_batch(mailproto_pop3 *s, int rc) {
  int sent = mailproto_outq_uncork(&s->out);
  if (rc >= 0 && sent < 0)
    rc = sent;
  if (rc < 0)
    return fail(s, rc);
  return settle(s);
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

/* Without the nonce callback: the clock in nanoseconds, the session's
 * address and its challenge count, hashed. Unique across the sessions of
 * a process and, through the clock, across processes. */
static uint64_t default_nonce(mailproto_pop3 *s) {
  struct {
    struct timespec ts;
    uintptr_t self;
    uint64_t count;
  } seed;
  memset(&seed, 0, sizeof seed);
  if (timespec_get(&seed.ts, TIME_UTC) == 0)
    seed.ts.tv_sec = time(NULL);
  seed.self = (uintptr_t)s;
  seed.count = s->challenges;
  mailproto_md5 md5;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  mailproto_md5_init(&md5);
  mailproto_md5_update(&md5, &seed, sizeof seed);
  mailproto_md5_final(&md5, digest);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | digest[i];
  return v;
}

int mailproto_pop3_challenge(mailproto_pop3 *s, char *out, size_t size) {
  s->challenges++;
  uint64_t nonce =
      s->cb.nonce ? s->cb.nonce(s, s->user_data) : default_nonce(s);
  int64_t now =
      s->cb.now ? s->cb.now(s, s->user_data).utc : (int64_t)time(NULL);
  /* RFC 1939 7: the msg-id form <process-ID.clock@hostname>. */
  int n = snprintf(out, size, "<%llx.%lld@%s>", (unsigned long long)nonce,
                   (long long)now, s->config.hostname);
  return n < 0 || (size_t)n >= size ? MAILPROTO_ERR_INTERNAL : 0;
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
  if (rc < 0 || s->reply_code >= 400) {
    const char *text = rc < 0 ? "[SYS/TEMP] Service temporarily unavailable"
                       : s->reply_text ? s->reply_text
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
  mailproto_mem_free(&s->alloc, s->reply_text);
  s->reply_text = NULL;
  s->reply_code = 0;
  mailproto_op_begin(&s->op, kind);
}

int mailproto_pop3_policy_end(mailproto_pop3 *s, int rc) {
  if (rc > 0 && rc != MAILPROTO_DEFERRED)
    rc = MAILPROTO_ERR_CALLBACK_FAILURE;
  return mailproto_op_end(&s->op, rc);
}

static int op_message(mailproto_op *op, const mailproto_message_info *msg) {
  mailproto_pop3 *s = op->owner;
  return op->kind == POP3_OP_OPEN ? mailproto_pop3_drop_add(s, msg) : 0;
}

static int op_complete(mailproto_op *op, int status) {
  mailproto_pop3 *s = op->owner;
  if (s->fatal)
    return s->fatal;
  mailproto_outq_cork(&s->out);
  int rc = finish_op(s, op->kind, status);
  if (rc == 0)
    rc = mailproto_pop3_produce(s);
  return end_batch(s, rc);
}

/* A policy callback's reply. The text becomes one line after "-ERR ":
 * control characters (which could forge a reply) and bytes beyond ASCII
 * (RFC 1939 3: responses are ASCII) are replaced. */
static int op_reply(mailproto_op *op, int code, const char *enhanced,
                    const char *text) {
  mailproto_pop3 *s = op->owner;
  (void)enhanced; /* POP3 has no enhanced codes */
  if (op->kind != POP3_OP_CONNECT && op->kind != POP3_OP_AUTH_POLICY)
    return MAILPROTO_ERR_STATE;
  char *copy = NULL;
  size_t len = 0;
  if (text) {
    while (len < POP3_POLICY_TEXT_MAX && text[len])
      len++;
    if (len > 0 && !(copy = mailproto_mem_malloc(&s->alloc, len + 1)))
      return MAILPROTO_ERR_NOMEM;
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)text[i];
      copy[i] = c < 0x20 || c == 0x7f ? ' ' : c > 0x7f ? '?' : (char)c;
    }
    if (copy)
      copy[len] = '\0';
  }
  mailproto_mem_free(&s->alloc, s->reply_text);
  s->reply_text = copy;
  s->reply_code = code;
  return 0;
}

static const mailproto_op_sink op_sink = {
    .message = op_message, .complete = op_complete, .reply = op_reply};

/* ------------------------------------------------------------------ */
/* The contract                                                        */
/* ------------------------------------------------------------------ */

/* Copies a caller's struct that may come from an older header (a smaller
 * struct_size) over the defaults. */
static int copy_sized(void *dst, size_t dst_size, const void *src,
                      size_t min_size) {
  size_t n = *(const size_t *)src;
  if (n < min_size)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  memcpy(dst, src, n < dst_size ? n : dst_size);
  *(size_t *)dst = dst_size;
  return 0;
}

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

static int check_config(const mailproto_pop3_config *c, size_t lens[3]) {
  long h = c->hostname ? text_len(c->hostname, host_char) : -1;
  long g = c->greeting ? text_len(c->greeting, greeting_char) : -1;
  long i = c->implementation ? text_len(c->implementation, printable_char) : 0;
  if (h <= 0 || g < 0 || i < 0 || (c->implementation && i == 0) ||
      c->max_line < POP3_LINE_MIN || c->max_line > POP3_LINE_MAX ||
      c->output_watermark < POP3_WATERMARK_MIN ||
      c->output_watermark > POP3_WATERMARK_MAX || c->login_delay < -1 ||
      c->expire < -2)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  lens[0] = (size_t)h;
  lens[1] = (size_t)g;
  lens[2] = (size_t)i;
  return 0;
}

/* The config's strings, copied into one block. */
static int copy_strings(mailproto_pop3 *s, const size_t lens[3]) {
  const char *src[3] = {s->config.hostname, s->config.greeting,
                        s->config.implementation};
  size_t total = lens[0] + lens[1] + lens[2] + 3;
  s->strings = mailproto_mem_malloc(&s->alloc, total);
  if (!s->strings)
    return MAILPROTO_ERR_NOMEM;
  char *p = s->strings;
  const char **dst[3] = {&s->config.hostname, &s->config.greeting,
                         &s->config.implementation};
  for (int k = 0; k < 3; k++) {
    if (k == 2 && !src[2])
      break;
    memcpy(p, src[k], lens[k] + 1);
    *dst[k] = p;
    p += lens[k] + 1;
  }
  return 0;
}

int mailproto_pop3_new(const mailproto_pop3_config *config,
                       const mailproto_pop3_callbacks *callbacks,
                       const mailproto_store *store, void *user_data,
                       mailproto_pop3 **out) {
  mailproto_pop3_config cfg;
  mailproto_pop3_callbacks cb;
  size_t lens[3];
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  if (!callbacks || !store || !store->ops ||
      copy_sized(&cb, sizeof cb, callbacks,
                 offsetof(mailproto_pop3_callbacks, send) + sizeof cb.send) !=
          0 ||
      !cb.send)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (config && copy_sized(&cfg, sizeof cfg, config,
                           offsetof(mailproto_pop3_config, hostname)) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = check_config(&cfg, lens);
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
  if (copy_strings(s, lens) != 0) {
    mailproto_mem_free(&s->alloc, s);
    return MAILPROTO_ERR_NOMEM;
  }
  s->cb = cb;
  s->store = *store;
  s->user_data = user_data;
  s->secure = cfg.secure != 0;
  mailproto_line_reader_init(&s->lines, &s->alloc, cfg.max_line);
  mailproto_outq_init(&s->out, &s->alloc,
                      cfg.output_watermark + POP3_REPLY_SLACK,
                      cfg.output_watermark, send_to_transport, s);
  mailproto_op_init(&s->op, &op_sink, s);
  s->state = POP3_GREETING;
  *out = s;
  return 0;
}

int mailproto_pop3_set_client(mailproto_pop3 *s, const char *address) {
  if (!s || !address)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->started)
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
  if (s->fatal)
    return s->fatal;
  if (s->started)
    return MAILPROTO_ERR_STATE;
  s->started = 1;
  mailproto_outq_cork(&s->out);
  int rc;
  if (s->cb.connect) {
    mailproto_pop3_policy_begin(s, POP3_OP_CONNECT);
    rc = s->cb.connect(s, &s->op, s->client ? s->client : "", s->user_data);
    rc = mailproto_pop3_after_op(s, POP3_OP_CONNECT,
                                 mailproto_pop3_policy_end(s, rc));
  } else
    rc = send_greeting(s);
  return end_batch(s, rc);
}

/* Whether the next input byte may be consumed now. */
static int can_consume(const mailproto_pop3 *s) {
  return s->started && !s->fatal && s->state != POP3_GREETING &&
         s->state != POP3_CLOSING && !mailproto_op_pending(&s->op) &&
         !mailproto_pop3_streaming(s) && !mailproto_outq_congested(&s->out);
}

ptrdiff_t mailproto_pop3_feed(mailproto_pop3 *s, const uint8_t *data,
                              size_t len) {
  if (!s || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->fatal)
    return s->fatal;
  if (!s->started)
    return MAILPROTO_ERR_STATE;
  size_t used = 0;
  int rc = 0;
  mailproto_outq_cork(&s->out);
  while (rc == 0 && used < len && can_consume(s)) {
    if (s->state == POP3_TLS_FLUSH || s->state == POP3_TLS_WAIT) {
      /* Bytes pipelined after STLS came in the clear: a man in the
       * middle may have put them there (RFC 2595 3.1 and 4). */
      used = len;
      break;
    }
    size_t n = 0;
    mailproto_line line;
    int got =
        mailproto_line_read(&s->lines, data + used, len - used, &n, &line);
    used += n;
    if (got < 0)
      rc = got;
    else if (got == 1 && (rc = mailproto_pop3_command(s, &line)) == 0)
      rc = mailproto_pop3_produce(s);
  }
  rc = end_batch(s, rc);
  return rc < 0 ? rc : (ptrdiff_t)used;
}

int mailproto_pop3_writable(mailproto_pop3 *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->fatal)
    return s->fatal;
  if (!s->started)
    return MAILPROTO_ERR_STATE;
  int rc = mailproto_outq_flush(&s->out);
  if (rc < 0)
    return fail(s, rc);
  /* A fast transport takes each batch at once: keep producing until it
   * pushes back, a read is deferred, or the response is complete. */
  while (mailproto_pop3_streaming(s) && !mailproto_op_pending(&s->op) &&
         !mailproto_outq_congested(&s->out)) {
    mailproto_outq_cork(&s->out);
    if ((rc = end_batch(s, mailproto_pop3_produce(s))) < 0)
      return rc;
  }
  return settle(s);
}

int mailproto_pop3_set_secure(mailproto_pop3 *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->fatal)
    return s->fatal;
  if (!s->started) {
    s->secure = 1; /* implicit TLS (port 995) */
    return 0;
  }
  if (s->state != POP3_TLS_WAIT)
    return MAILPROTO_ERR_STATE;
  /* RFC 2595 4: back to AUTHORIZATION, with nothing the client said in
   * the clear remembered; no new greeting. */
  s->secure = 1;
  s->state = POP3_AUTHORIZATION;
  s->utf8 = 0;
  mailproto_pop3_auth_reset(s);
  mailproto_line_reader_reset(&s->lines);
  return 0;
}

int mailproto_pop3_want_read(const mailproto_pop3 *s) {
  return s && can_consume(s);
}

int mailproto_pop3_want_write(const mailproto_pop3 *s) {
  return s && s->started && !s->fatal &&
         (mailproto_outq_pending(&s->out) > 0 ||
          (mailproto_pop3_streaming(s) && !mailproto_op_pending(&s->op)));
}

int mailproto_pop3_closed(const mailproto_pop3 *s) {
  if (!s)
    return 0;
  if (s->fatal)
    return 1;
  return s->state == POP3_CLOSING && !mailproto_op_pending(&s->op) &&
         mailproto_outq_pending(&s->out) == 0;
}

const char *mailproto_pop3_user(const mailproto_pop3 *s) {
  return s ? s->user : NULL;
}

void mailproto_pop3_free(mailproto_pop3 *s) {
  if (!s)
    return;
  if (mailproto_op_pending(&s->op)) {
    int kind = s->op.kind;
    if (kind == POP3_OP_CONNECT || kind == POP3_OP_AUTH_POLICY ||
        kind == POP3_OP_DELAY)
      /* A policy op is abandoned: the application must not complete it
       * (smtp.h, mailproto_smtp_free). */
      s->op.state = MAILPROTO_OP_IDLE;
    else
      mailproto_store_call_cancel(&s->store, &s->op);
  }
  s->stream.kind = POP3_STREAM_NONE;
  mailproto_pop3_auth_reset(s);
  /* RFC 1939 6: without QUIT nothing is removed. */
  mailproto_pop3_drop_close(s);
  mailproto_store_call_release_account(&s->store, s->account);
  mailproto_mem_free(&s->alloc, s->ranges);
  mailproto_mem_free(&s->alloc, s->reply_text);
  mailproto_mem_free(&s->alloc, s->user);
  mailproto_mem_free(&s->alloc, s->timestamp);
  mailproto_mem_free(&s->alloc, s->client);
  mailproto_mem_free(&s->alloc, s->strings);
  mailproto_line_reader_free(&s->lines);
  mailproto_outq_free(&s->out);
  mailproto_allocator alloc = s->alloc;
  mailproto_mem_free(&alloc, s);
}
