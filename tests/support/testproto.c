/*
 * testproto: the session contract in its smallest complete form, on the
 * shared plumbing of lib/core/session.h as the real protocol sessions use
 * it: one entry point per contract function, each bracketing its work
 * with mailproto_session_enter()/leave(), one embedded op whose sink
 * resumes the command that deferred, and fatal errors made sticky by the
 * plumbing.
 */
#include "support/testproto.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sasl.h"
#include "core/session.h"
#include "store/store_call.h"

#define TESTPROTO_LINE_MIN 16u
#define TESTPROTO_LINE_MAX (1u << 20)
#define TESTPROTO_WATERMARK_MAX (1u << 30)
/* Beyond the watermark the queue must hold the longest single reply (at
 * most 3 bytes out per byte of the command line, plus error lines). */
#define TESTPROTO_REPLY_SLACK 1024u

enum state {
  ST_COMMAND, /* reading command lines */
  ST_SASL,    /* reading the client's next SASL response */
  ST_LITERAL, /* APPEND bytes go to the store's writer */
  ST_SKIP,    /* APPEND bytes are dropped: the writer failed */
  ST_CLOSING  /* the last reply is being flushed */
};

/* What the embedded op is doing (op.kind). */
enum op_kind {
  OP_AUTHENTICATE = 1,
  OP_LOOKUP_SECRET,
  OP_STATUS,
  OP_APPEND_BEGIN,
  OP_APPEND_WRITE,
  OP_APPEND_COMMIT
};

struct testproto {
  mailproto_allocator alloc;
  testproto_config config;
  char *challenge; /* copy of config.cram_challenge, or NULL */
  testproto_callbacks cb;
  mailproto_store store;
  void *user_data;
  mailproto_session_io io;
  enum state state;
  unsigned errors; /* consecutive ERR replies */

  void *account;   /* after a successful AUTH */
  void *candidate; /* account handle of an exchange being checked */
  mailproto_sasl *sasl;
  char secret[MAILPROTO_SECRET_MAX];
  size_t secret_len;
  unsigned long cram_count;

  char *mailbox; /* argument of the STATUS or APPEND in progress */
  mailproto_mailbox_status status;
  void *writer;
  uint64_t literal_size;
  uint64_t literal_left;
  int literal_error;
  uint32_t uidvalidity;
  uint32_t uid;

  int big_active;
  uint64_t big_next;
  uint64_t big_last;
};

void testproto_config_init(testproto_config *config) {
  memset(config, 0, sizeof *config);
  config->struct_size = sizeof *config;
  config->max_line = 256;
  config->max_errors = 3;
  config->output_watermark = 4096;
  config->max_append = 1024 * 1024;
  config->sasl_mechanisms = MAILPROTO_SASL_ALL;
  config->secure = 1;
}

void testproto_callbacks_init(testproto_callbacks *callbacks) {
  memset(callbacks, 0, sizeof *callbacks);
  callbacks->struct_size = sizeof *callbacks;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int send_to_transport(void *owner, const uint8_t *data, size_t len,
                             size_t *sent) {
  testproto *s = owner;
  return mailproto_session_sent(s->cb.send(s, data, len, s->user_data), len,
                                sent);
}

/* Queues "<head><text>\r\n". The queue's limit leaves room for any reply
 * above the watermark, so a failure here is fatal. */
static int put_line(testproto *s, const char *head, const void *text,
                    size_t len) {
  int rc = mailproto_outq_write_str(&s->io.out, head);
  if (rc == 0)
    rc = mailproto_outq_write(&s->io.out, text, len);
  if (rc == 0)
    rc = mailproto_outq_write(&s->io.out, "\r\n", 2);
  return rc;
}

static int ok(testproto *s, const void *text, size_t len) {
  s->errors = 0;
  return put_line(s, "OK ", text, len);
}

static int ok_str(testproto *s, const char *text) {
  return ok(s, text, strlen(text));
}

static int err(testproto *s, const char *text) {
  int rc = put_line(s, "ERR ", text, strlen(text));
  if (rc == 0 && mailproto_session_count(&s->errors, s->config.max_errors)) {
    rc = put_line(s, "ERR ", "too many errors", 15);
    s->state = ST_CLOSING;
  }
  return rc;
}

/* A store hook's failure: fatal codes end the session, the others are
 * this command's error. */
static int err_code(testproto *s, int code) {
  if (mailproto_is_fatal(code))
    return code;
  return err(s, mailproto_strerror(code));
}

static void event(testproto *s, const char *text) {
  if (s->cb.event)
    s->cb.event(s, text, s->user_data);
}

/* Every entry point ends here: send what the batch queued, make any
 * failure sticky, and give back the buffers of a burst once idle. */
static int end_batch(testproto *s, int rc) {
  return mailproto_session_leave(&s->io, rc, s->big_active);
}

/* ------------------------------------------------------------------ */
/* Store operations                                                    */
/* ------------------------------------------------------------------ */

static void end_sasl(testproto *s) {
  mailproto_sasl_free(s->sasl);
  s->sasl = NULL;
  mailproto_secure_zero(s->secret, sizeof s->secret);
  s->secret_len = 0;
  if (s->candidate)
    mailproto_store_call_release_account(&s->store, s->candidate);
  s->candidate = NULL;
  if (s->state == ST_SASL)
    s->state = ST_COMMAND;
}

static int auth_success(testproto *s) {
  char text[MAILPROTO_SASL_FIELD_MAX + 8];
  const char *user = s->sasl->authzid[0] ? s->sasl->authzid : s->sasl->authcid;
  snprintf(text, sizeof text, "auth %s", user);
  s->account = s->candidate;
  s->candidate = NULL;
  end_sasl(s);
  event(s, text);
  return ok_str(s, "authenticated");
}

static int auth_failed(testproto *s, int code) {
  end_sasl(s);
  if (mailproto_is_fatal(code))
    return code;
  return err(s, code == MAILPROTO_ERR_CANCELLED ? "cancelled"
                                                : "authentication failed");
}

static void end_mailbox_command(testproto *s) {
  mailproto_mem_free(&s->alloc, s->mailbox);
  s->mailbox = NULL;
  s->state = ST_COMMAND;
}

static int append_commit(testproto *s);

/* The result of a store hook of `kind`, at once or after it was deferred.
 * (The kind is passed, not read from the op: a wrapper that refuses a
 * missing hook never begins the op.) */
static int finish_op(testproto *s, int kind, int rc) {
  char text[MAILPROTO_MAILBOX_NAME_MAX + 64];
  switch (kind) {
  case OP_AUTHENTICATE:
    return rc == 0 ? auth_success(s) : auth_failed(s, rc);
  case OP_LOOKUP_SECRET:
    if (rc == 0) {
      rc = mailproto_sasl_verify_secret(s->sasl, s->secret, s->secret_len);
      if (rc == MAILPROTO_SASL_SUCCESS)
        return auth_success(s);
    }
    return auth_failed(s, rc);
  case OP_STATUS:
    end_mailbox_command(s);
    if (rc != 0)
      return err_code(s, rc);
    snprintf(text, sizeof text, "messages=%lu uidnext=%lu uidvalidity=%lu",
             (unsigned long)s->status.messages,
             (unsigned long)s->status.uidnext,
             (unsigned long)s->status.uidvalidity);
    return ok_str(s, text);
  case OP_APPEND_BEGIN:
    if (rc != 0) {
      end_mailbox_command(s);
      return err_code(s, rc);
    }
    s->state = ST_LITERAL;
    s->literal_left = s->literal_size;
    rc = put_line(s, "+ ", "go", 2);
    return rc == 0 && s->literal_left == 0 ? append_commit(s) : rc;
  case OP_APPEND_WRITE:
    if (rc != 0) {
      if (mailproto_is_fatal(rc))
        return rc;
      /* The rest of the literal still arrives; drop it, then answer. */
      mailproto_store_call_abort(&s->store, s->writer);
      s->writer = NULL;
      s->literal_error = rc;
      s->state = ST_SKIP;
      if (s->literal_left > 0)
        return 0;
      end_mailbox_command(s);
      return err_code(s, rc);
    }
    return s->literal_left == 0 ? append_commit(s) : 0;
  case OP_APPEND_COMMIT:
    if (rc == 0) {
      snprintf(text, sizeof text, "append %s %llu", s->mailbox,
               (unsigned long long)s->literal_size);
      event(s, text);
    }
    end_mailbox_command(s);
    if (rc != 0)
      return err_code(s, rc);
    snprintf(text, sizeof text, "uid=%lu", (unsigned long)s->uid);
    return ok_str(s, text);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

/* After a store call: a deferred op stops parsing until it completes. */
static int after_store(testproto *s, int kind, int rc) {
  return rc == MAILPROTO_DEFERRED ? 0 : finish_op(s, kind, rc);
}

static int append_commit(testproto *s) {
  void *writer = s->writer;
  /* The writer is gone after commit whatever happens, even if the commit
   * is deferred and later cancelled. */
  s->writer = NULL;
  return after_store(
      s, OP_APPEND_COMMIT,
      mailproto_store_call_append_commit(&s->store, &s->io.op, OP_APPEND_COMMIT,
                                         writer, &s->uidvalidity, &s->uid));
}

static int op_complete(mailproto_op *op, int status) {
  testproto *s = op->owner;
  int rc = mailproto_session_resume(&s->io);
  if (rc != 0)
    return rc;
  return end_batch(s, finish_op(s, op->kind, status));
}

static const mailproto_op_sink op_sink = {.complete = op_complete};

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

typedef struct args {
  const char *text;
  size_t len;
  int present; /* the verb was followed by a space */
} args;

/* Parses 1..20 decimal digits into *out. Returns 0 or -1. */
static int parse_u64(const char *p, size_t len, uint64_t *out) {
  uint64_t v = 0;
  if (len == 0 || len > 20)
    return -1;
  for (size_t i = 0; i < len; i++) {
    if (p[i] < '0' || p[i] > '9')
      return -1;
    uint64_t digit = (uint64_t)(p[i] - '0');
    if (v > (UINT64_MAX - digit) / 10)
      return -1;
    v = v * 10 + digit;
  }
  *out = v;
  return 0;
}

/* A scratch buffer of n * factor + extra bytes, or NULL. */
static char *scratch(testproto *s, size_t n, size_t factor, size_t extra,
                     size_t *size) {
  if (mailproto_size_mul(n, factor, size) != 0 ||
      mailproto_size_add(*size, extra, size) != 0)
    return NULL;
  return mailproto_mem_malloc(&s->alloc, *size);
}

static int cmd_echo(testproto *s, const args *a) {
  return a->present ? ok(s, a->text, a->len) : err(s, "syntax");
}

static int b64_encode(testproto *s, const char *text, size_t len) {
  size_t size;
  char *out = scratch(s, len / 3 + 1, 4, 0, &size);
  if (!out)
    return MAILPROTO_ERR_NOMEM;
  long n = mailproto_base64_encode(text, len, out, size);
  int rc = n < 0 ? MAILPROTO_ERR_INTERNAL : ok(s, out, (size_t)n);
  mailproto_mem_free(&s->alloc, out);
  return rc;
}

static int b64_decode(testproto *s, const char *text, size_t len) {
  size_t size;
  char *out = scratch(s, len / 4 + 1, 3, 0, &size);
  if (!out)
    return MAILPROTO_ERR_NOMEM;
  long n = mailproto_base64_decode(text, len, out, size);
  int rc;
  /* The result goes on one line: line ends and NULs cannot. */
  if (n < 0 || memchr(out, '\r', (size_t)n) || memchr(out, '\n', (size_t)n) ||
      memchr(out, '\0', (size_t)n))
    rc = err(s, "syntax");
  else
    rc = ok(s, out, (size_t)n);
  mailproto_mem_free(&s->alloc, out);
  return rc;
}

static int cmd_b64(testproto *s, const args *a) {
  const char *sp = a->present ? memchr(a->text, ' ', a->len) : NULL;
  if (!sp)
    return err(s, "syntax");
  size_t word = (size_t)(sp - a->text);
  const char *rest = sp + 1;
  size_t rest_len = a->len - word - 1;
  if (mailproto_session_verb_is(a->text, word, "ENC"))
    return b64_encode(s, rest, rest_len);
  if (mailproto_session_verb_is(a->text, word, "DEC"))
    return b64_decode(s, rest, rest_len);
  return err(s, "syntax");
}

static int cmd_date(testproto *s, const args *a) {
  mailproto_datetime dt;
  char out[MAILPROTO_DATE_BUFSIZE];
  if (!a->present || mailproto_date_parse_rfc5322(a->text, a->len, &dt) != 0)
    return err(s, "syntax");
  int n = mailproto_date_format_imap(&dt, out, sizeof out);
  return n < 0 ? err(s, "syntax") : ok(s, out, (size_t)n);
}

/* MUTF7 and UTF8: the result is at most 3 bytes per input byte. */
static int convert(testproto *s, const args *a,
                   long (*fn)(const char *, size_t, char *, size_t)) {
  if (!a->present)
    return err(s, "syntax");
  size_t size;
  char *out = scratch(s, a->len, 3, 2, &size);
  if (!out)
    return MAILPROTO_ERR_NOMEM;
  long n = fn(a->text, a->len, out, size);
  int rc = n < 0 ? err(s, "syntax") : ok(s, out, (size_t)n);
  mailproto_mem_free(&s->alloc, out);
  return rc;
}

static int cmd_mutf7(testproto *s, const args *a) {
  return convert(s, a, mailproto_mutf7_to_utf8);
}

static int cmd_utf8(testproto *s, const args *a) {
  return convert(s, a, mailproto_utf8_to_mutf7);
}

/* The engine's verdict: send a challenge, ask the store, or fail. */
static int sasl_next(testproto *s, int rc) {
  mailproto_sasl *x = s->sasl;
  switch (rc) {
  case MAILPROTO_SASL_CHALLENGE:
    s->state = ST_SASL;
    return put_line(s, "+ ", x->out, x->out_len);
  case MAILPROTO_SASL_CHECK_PASSWORD:
    s->state = ST_COMMAND;
    return after_store(
        s, OP_AUTHENTICATE,
        mailproto_store_call_authenticate(&s->store, &s->io.op, OP_AUTHENTICATE,
                                          x->authzid, x->authcid, x->password,
                                          x->password_len, &s->candidate));
  case MAILPROTO_SASL_NEED_SECRET:
    s->state = ST_COMMAND;
    return after_store(s, OP_LOOKUP_SECRET,
                       mailproto_store_call_lookup_secret(
                           &s->store, &s->io.op, OP_LOOKUP_SECRET, x->authcid,
                           s->secret, sizeof s->secret, &s->secret_len,
                           &s->candidate));
  default:
    return auth_failed(s, rc < 0 ? rc : MAILPROTO_ERR_INTERNAL);
  }
}

static int cmd_auth(testproto *s, const args *a) {
  if (!a->present || a->len == 0)
    return err(s, "syntax");
  if (s->account)
    return err(s, "already authenticated");
  const char *sp = memchr(a->text, ' ', a->len);
  size_t name_len = sp ? (size_t)(sp - a->text) : a->len;
  const mailproto_sasl_mech *mech = mailproto_sasl_find(a->text, name_len);
  int rc = mailproto_sasl_allowed(mech, s->config.sasl_mechanisms, s->io.secure,
                                  s->config.allow_plaintext);
  if (rc == MAILPROTO_ERR_ENCRYPTION_REQUIRED)
    return err(s, "encryption required");
  if (rc != 0)
    return err(s, "unsupported mechanism");
  char generated[64];
  const char *challenge = NULL;
  if (mech->server_first) {
    /* RFC 2195 wants a unique challenge; the count makes it unique per
     * session and still reproducible for transcripts. */
    s->cram_count++;
    snprintf(generated, sizeof generated, "<%lu.testproto@localhost>",
             s->cram_count);
    challenge = s->challenge ? s->challenge : generated;
  }
  if ((rc = mailproto_sasl_new(&s->alloc, &s->sasl)) != 0)
    return rc;
  const char *ir = sp ? sp + 1 : NULL;
  size_t ir_len = sp ? a->len - name_len - 1 : 0;
  return sasl_next(s,
                   mailproto_sasl_start(s->sasl, mech, challenge, ir, ir_len));
}

/* STATUS and APPEND take a mailbox name; keeps a copy for the store. */
static int take_mailbox(testproto *s, const char *name, size_t len) {
  s->mailbox = mailproto_mem_strndup(&s->alloc, name, len);
  return s->mailbox ? 0 : MAILPROTO_ERR_NOMEM;
}

static int cmd_status(testproto *s, const args *a) {
  if (!a->present || a->len == 0 || a->len > MAILPROTO_MAILBOX_NAME_MAX)
    return err(s, "syntax");
  if (!s->account)
    return err(s, "not authenticated");
  int rc = take_mailbox(s, a->text, a->len);
  if (rc != 0)
    return rc;
  return after_store(s, OP_STATUS,
                     mailproto_store_call_status(&s->store, &s->io.op,
                                                 OP_STATUS, s->account,
                                                 s->mailbox, &s->status));
}

/* "APPEND <mailbox> {n}": the name is everything before the last space. */
static int cmd_append(testproto *s, const args *a) {
  const char *t = a->text;
  size_t last = a->len;
  while (last > 0 && t[last - 1] != ' ')
    last--;
  uint64_t size;
  if (!a->present || last < 2 || last - 1 > MAILPROTO_MAILBOX_NAME_MAX ||
      a->len - last < 3 || t[last] != '{' || t[a->len - 1] != '}' ||
      parse_u64(t + last + 1, a->len - last - 2, &size) != 0)
    return err(s, "syntax");
  if (!s->account)
    return err(s, "not authenticated");
  if (size > s->config.max_append)
    return err(s, "literal too big");
  int rc = take_mailbox(s, t, last - 1);
  if (rc != 0)
    return rc;
  s->literal_size = size;
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.size_hint = size;
  return after_store(s, OP_APPEND_BEGIN,
                     mailproto_store_call_append_begin(
                         &s->store, &s->io.op, OP_APPEND_BEGIN, s->account,
                         s->mailbox, &info, &s->writer));
}

/* Produces BIG lines while the queue has room below its watermark. */
static int produce_big(testproto *s) {
  while (s->big_active && !mailproto_outq_congested(&s->io.out)) {
    if (s->big_next > s->big_last) {
      s->big_active = 0;
      return ok_str(s, "big");
    }
    int rc = mailproto_outq_printf(&s->io.out, "* line %llu\r\n",
                                   (unsigned long long)s->big_next);
    if (rc != 0)
      return rc;
    s->big_next++;
  }
  return 0;
}

static int cmd_big(testproto *s, const args *a) {
  uint64_t n;
  if (!a->present || parse_u64(a->text, a->len, &n) != 0)
    return err(s, "syntax");
  s->big_active = 1;
  s->big_next = 1;
  s->big_last = n;
  return produce_big(s);
}

static int cmd_quit(testproto *s, const args *a) {
  if (a->present)
    return err(s, "syntax");
  s->state = ST_CLOSING;
  return ok_str(s, "bye");
}

static const struct command {
  const char *verb;
  int (*run)(testproto *s, const args *a);
} commands[] = {
    {"ECHO", cmd_echo},     {"B64", cmd_b64},       {"DATE", cmd_date},
    {"MUTF7", cmd_mutf7},   {"UTF8", cmd_utf8},     {"AUTH", cmd_auth},
    {"STATUS", cmd_status}, {"APPEND", cmd_append}, {"BIG", cmd_big},
    {"QUIT", cmd_quit},
};

static int process_line(testproto *s, const mailproto_line *line) {
  const char *text = (const char *)line->data;
  const char *problem = NULL;
  if (line->flags & MAILPROTO_LINE_TOO_LONG)
    problem = "line too long";
  else if (line->flags & MAILPROTO_LINE_HAS_NUL)
    problem = "nul";
  else if (line->flags & MAILPROTO_LINE_BARE_CR)
    problem = "syntax"; /* a CR inside a line would come back in a reply */
  if (problem) {
    end_sasl(s);
    return err(s, problem);
  }
  if (s->state == ST_SASL)
    return sasl_next(s, mailproto_sasl_step(s->sasl, text, line->len));
  const char *sp = memchr(text, ' ', line->len);
  size_t verb_len = sp ? (size_t)(sp - text) : line->len;
  args a = {sp ? sp + 1 : text + line->len, sp ? line->len - verb_len - 1 : 0,
            sp != NULL};
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (mailproto_session_verb_is(text, verb_len, commands[i].verb))
      return commands[i].run(s, &a);
  return err(s, "unknown command");
}

/* APPEND bytes: everything up to the announced size, in whatever chunks
 * the input arrives in. */
static int literal_bytes(testproto *s, const uint8_t *data, size_t len,
                         size_t *used) {
  size_t take = len;
  if (take > s->literal_left)
    take = (size_t)s->literal_left;
  s->literal_left -= take;
  *used = take;
  if (s->state == ST_SKIP) {
    if (s->literal_left > 0)
      return 0;
    end_mailbox_command(s);
    return err_code(s, s->literal_error);
  }
  return after_store(s, OP_APPEND_WRITE,
                     mailproto_store_call_write(&s->store, &s->io.op,
                                                OP_APPEND_WRITE, s->writer,
                                                data, take));
}

/* ------------------------------------------------------------------ */
/* The contract                                                        */
/* ------------------------------------------------------------------ */

int testproto_new(const testproto_config *config,
                  const testproto_callbacks *callbacks,
                  const mailproto_store *store, void *user_data,
                  testproto **out) {
  testproto_config cfg;
  testproto_callbacks cb;
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  testproto_config_init(&cfg);
  testproto_callbacks_init(&cb);
  if (!callbacks ||
      mailproto_session_copy_sized(&cb, sizeof cb, callbacks,
                                   offsetof(testproto_callbacks, send) +
                                       sizeof cb.send) != 0 ||
      !cb.send)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (config &&
      mailproto_session_copy_sized(&cfg, sizeof cfg, config,
                                   offsetof(testproto_config, max_line)) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t challenge_len = cfg.cram_challenge ? strlen(cfg.cram_challenge) : 1;
  size_t reply_room, limit;
  if (cfg.max_line < TESTPROTO_LINE_MIN || cfg.max_line > TESTPROTO_LINE_MAX ||
      cfg.output_watermark == 0 ||
      cfg.output_watermark > TESTPROTO_WATERMARK_MAX || challenge_len == 0 ||
      challenge_len > MAILPROTO_SASL_CHALLENGE_MAX ||
      mailproto_size_mul(cfg.max_line, 3, &reply_room) != 0 ||
      mailproto_size_add(reply_room, TESTPROTO_REPLY_SLACK, &reply_room) != 0 ||
      mailproto_size_add(cfg.output_watermark, reply_room, &limit) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;

  const mailproto_allocator *alloc =
      cfg.allocator ? cfg.allocator : mailproto_default_allocator();
  testproto *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *alloc;
  cfg.allocator = NULL; /* the session's copy is s->alloc */
  if (cfg.cram_challenge) {
    s->challenge = mailproto_mem_strdup(&s->alloc, cfg.cram_challenge);
    if (!s->challenge) {
      mailproto_mem_free(&s->alloc, s);
      return MAILPROTO_ERR_NOMEM;
    }
  }
  cfg.cram_challenge = NULL;
  s->config = cfg;
  s->cb = cb;
  if (store)
    s->store = *store;
  s->user_data = user_data;
  mailproto_session_setup io = {.alloc = &s->alloc,
                                .max_line = cfg.max_line,
                                .out_limit = limit,
                                .watermark = cfg.output_watermark,
                                .send = send_to_transport,
                                .sink = &op_sink,
                                .owner = s,
                                .secure = cfg.secure};
  mailproto_session_init(&s->io, &io);
  s->state = ST_COMMAND;
  *out = s;
  return 0;
}

int testproto_start(testproto *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_start(&s->io);
  if (rc != 0)
    return rc;
  return end_batch(
      s, mailproto_outq_write_str(&s->io.out, "* READY testproto\r\n"));
}

/* Whether the next input byte may be consumed now. */
static int can_consume(const testproto *s) {
  return mailproto_session_can_read(&s->io) && s->state != ST_CLOSING &&
         !s->big_active;
}

ptrdiff_t testproto_feed(testproto *s, const uint8_t *data, size_t len) {
  if (!s || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  size_t used = 0;
  while (mailproto_session_feeding(&s->io, rc, &used, len, can_consume(s))) {
    size_t n = 0;
    if (s->state == ST_LITERAL || s->state == ST_SKIP) {
      rc = literal_bytes(s, data + used, len - used, &n);
      used += n;
      continue;
    }
    mailproto_line line;
    int got =
        mailproto_line_read(&s->io.lines, data + used, len - used, &n, &line);
    used += n;
    if (got < 0)
      rc = got;
    else if (got == 1)
      rc = process_line(s, &line);
  }
  return mailproto_session_fed(&s->io, rc, used, s->big_active);
}

int testproto_writable(testproto *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_flush(&s->io);
  /* A fast transport takes each batch at once: keep producing until it
   * pushes back or the reply is complete. */
  while (rc == 0 && s->big_active && !mailproto_outq_congested(&s->io.out)) {
    mailproto_session_begin(&s->io);
    rc = end_batch(s, produce_big(s));
  }
  return rc != 0 ? rc : mailproto_session_settle(&s->io, s->big_active);
}

int testproto_want_read(const testproto *s) {
  return s && can_consume(s);
}

int testproto_want_write(const testproto *s) {
  return s && mailproto_session_want_write(&s->io, s->big_active);
}

int testproto_pending(const testproto *s) {
  return s && mailproto_session_pending(&s->io);
}

void testproto_free(testproto *s) {
  if (!s)
    return;
  /* A handle the cancelled hook was to return is the backend's to free:
   * the cancel clears it (store_call.h), so only a writer the session
   * holds is aborted. */
  mailproto_store_call_cancel(&s->store, &s->io.op);
  mailproto_store_call_abort(&s->store, s->writer);
  end_sasl(s);
  mailproto_store_call_release_account(&s->store, s->account);
  mailproto_mem_free(&s->alloc, s->mailbox);
  mailproto_mem_free(&s->alloc, s->challenge);
  mailproto_session_free(&s->io);
  mailproto_allocator alloc = s->alloc;
  mailproto_mem_free(&alloc, s);
}
