/*
 * The transcript adapter for mailproto_smtp: turns "@" options into the
 * session's config and into scripted policy callbacks, reports callback
 * events, simulates the TLS handshake, and can defer every policy
 * callback. See smtp_adapter.h for the options.
 */
#include "smtp/smtp_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailproto/smtp.h"
#include "support/faultstore.h"

enum kind {
  K_CONNECT,
  K_HELO,
  K_MAIL,
  K_RCPT,
  K_AUTH,
  K_DATA,
  K_MESSAGE,
  K_VRFY,
  K_COUNT
};

static const char *const kind_names[K_COUNT] = {
    "connect", "helo", "mail", "rcpt", "auth", "data", "message", "vrfy"};

/* A scripted reply: for `kind`, when the subject matches. */
typedef struct rule {
  int kind;
  char *match; /* NULL: no subject; "*": any */
  int code;
  char *enhanced; /* NULL: none */
  char *text;     /* NULL: the session's default */
} rule;

#define MAX_RULES 32

/* The client's stand-in for a TLS handshake (see smtp_adapter.h). */
#define TLS_MARKER "[TLS handshake]"

typedef struct adapter {
  transcript_env *env;
  mailproto_smtp *s;
  faultstore *fault; /* only with fail_hook options */
  mailproto_store store;
  int defer;
  int starttls;
  const char *client;
  rule rules[MAX_RULES];
  size_t rule_count;
  int fail[K_COUNT]; /* error a callback returns, or 0 */
  /* A deferred policy callback: its op and what it will answer. */
  mailproto_op *deferred;
  const rule *deferred_rule;
  int deferred_status;
  /* start_tls was called: the "handshake" runs until the client line
   * TLS_MARKER, then set_secure. */
  int handshake;
  char line[sizeof TLS_MARKER + 1];
  size_t line_len;
} adapter;

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static const struct {
  const char *name;
  int code;
} errors[] = {
#define ERROR_NAME_(name, value, text) {#name, value},
    MAILPROTO_ERROR_LIST(ERROR_NAME_)
#undef ERROR_NAME_
};

static int error_code(const char *name, int *out) {
  for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
    if (strcmp(errors[i].name, name) == 0) {
      *out = errors[i].code;
      return 0;
    }
  return -1;
}

typedef struct name_bit {
  const char *name;
  unsigned bit;
} name_bit;

static const name_bit ext_names[] = {
    {"PIPELINING", MAILPROTO_SMTP_EXT_PIPELINING},
    {"SIZE", MAILPROTO_SMTP_EXT_SIZE},
    {"8BITMIME", MAILPROTO_SMTP_EXT_8BITMIME},
    {"ENHANCEDSTATUSCODES", MAILPROTO_SMTP_EXT_ENHANCED},
    {"SMTPUTF8", MAILPROTO_SMTP_EXT_SMTPUTF8},
    {"CHUNKING", MAILPROTO_SMTP_EXT_CHUNKING},
    {"BINARYMIME", MAILPROTO_SMTP_EXT_BINARYMIME},
    {"DSN", MAILPROTO_SMTP_EXT_DSN},
    {"STARTTLS", MAILPROTO_SMTP_EXT_STARTTLS},
    {"AUTH", MAILPROTO_SMTP_EXT_AUTH},
};

static const name_bit mech_names[] = {{"PLAIN", MAILPROTO_SASL_PLAIN},
                                      {"LOGIN", MAILPROTO_SASL_LOGIN},
                                      {"CRAM-MD5", MAILPROTO_SASL_CRAM_MD5}};

/* "A,B,C" or "none" into a mask of the named bits. */
static int parse_names(const char *value, const name_bit *table, size_t count,
                       unsigned *out) {
  unsigned mask = 0;
  if (strcmp(value, "none") == 0) {
    *out = 0;
    return 0;
  }
  const char *p = value;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    int found = 0;
    for (size_t i = 0; i < count; i++)
      if (strlen(table[i].name) == len && memcmp(table[i].name, p, len) == 0) {
        mask |= table[i].bit;
        found = 1;
      }
    if (!found)
      return -1;
    p += len + (comma ? 1 : 0);
  }
  *out = mask;
  return 0;
}

static int flag(const char *value, int *out) {
  if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
    return -1;
  *out = value[0] == '1';
  return 0;
}

static int number(const char *value, unsigned *out) {
  size_t n;
  if (transcript_option_size(value, &n) != 0 || n > 0xffffffffu)
    return -1;
  *out = (unsigned)n;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (c) {
    memcpy(c, s, n);
    c[n] = '\0';
  }
  return c;
}

/* Cuts the next space-separated word off *p. */
static char *word(const char **p) {
  const char *sp = strchr(*p, ' ');
  size_t n = sp ? (size_t)(sp - *p) : strlen(*p);
  char *w = dup_n(*p, n);
  *p += n + (sp ? 1 : 0);
  return w;
}

/* "[MATCH ]CODE ENH TEXT" for `kind`. */
static int add_rule(adapter *a, int kind, int with_match, const char *value) {
  if (a->rule_count == MAX_RULES)
    return -1;
  rule *r = &a->rules[a->rule_count];
  memset(r, 0, sizeof *r);
  r->kind = kind;
  const char *p = value;
  if (with_match && !(r->match = word(&p)))
    return -1;
  char *code = word(&p);
  char *enh = word(&p);
  int bad =
      !code || !enh || strlen(code) != 3 || code[0] < '2' || code[0] > '5';
  if (!bad) {
    r->code = atoi(code);
    if (strcmp(enh, "-") != 0) {
      r->enhanced = enh;
      enh = NULL;
    }
    if (*p && !(r->text = dup_n(p, strlen(p))))
      bad = 1;
  }
  free(code);
  free(enh);
  a->rule_count++; /* freed with the adapter even when bad */
  return bad ? -1 : 0;
}

static int configure(adapter *a, mailproto_smtp_config *c) {
  const transcript_env *env = a->env;
  for (size_t i = 0; i < env->option_count; i++) {
    const char *key = env->options[i].key, *v = env->options[i].value;
    unsigned n = 0;
    int bad = 0;
    if (strcmp(key, "lmtp") == 0)
      bad = flag(v, &c->lmtp);
    else if (strcmp(key, "hostname") == 0)
      c->hostname = v;
    else if (strcmp(key, "greeting") == 0)
      c->greeting = v;
    else if (strcmp(key, "max_line") == 0 && !(bad = number(v, &n)))
      c->max_line = n;
    else if (strcmp(key, "max_message_size") == 0 && !(bad = number(v, &n)))
      c->max_message_size = n;
    else if (strcmp(key, "max_recipients") == 0)
      bad = number(v, &c->max_recipients);
    else if (strcmp(key, "max_errors") == 0)
      bad = number(v, &c->max_errors);
    else if (strcmp(key, "max_auth_failures") == 0)
      bad = number(v, &c->max_auth_failures);
    else if (strcmp(key, "output_watermark") == 0 && !(bad = number(v, &n)))
      c->output_watermark = n;
    else if (strcmp(key, "secure") == 0)
      bad = flag(v, &c->secure);
    else if (strcmp(key, "allow_insecure_auth") == 0)
      bad = flag(v, &c->allow_insecure_auth);
    else if (strcmp(key, "require_auth") == 0)
      bad = flag(v, &c->require_auth);
    else if (strcmp(key, "add_received") == 0)
      bad = flag(v, &c->add_received);
    else if (strcmp(key, "bare_eol") == 0) {
      if (strcmp(v, "reject") == 0)
        c->bare_eol = MAILPROTO_SMTP_BARE_EOL_REJECT;
      else if (strcmp(v, "normalize") == 0)
        c->bare_eol = MAILPROTO_SMTP_BARE_EOL_NORMALIZE;
      else
        bad = 1;
    } else if (strcmp(key, "extensions") == 0)
      bad = parse_names(v, ext_names, sizeof ext_names / sizeof ext_names[0],
                        &c->extensions);
    else if (strcmp(key, "disable") == 0) {
      bad =
          parse_names(v, ext_names, sizeof ext_names / sizeof ext_names[0], &n);
      c->extensions &= ~n;
    } else if (strcmp(key, "sasl_mechanisms") == 0)
      bad = parse_names(v, mech_names, sizeof mech_names / sizeof mech_names[0],
                        &c->sasl_mechanisms);
    else if (strcmp(key, "client") == 0)
      a->client = v;
    else if (strcmp(key, "starttls") == 0)
      bad = flag(v, &a->starttls);
    else if (strcmp(key, "defer_callbacks") == 0) {
      int d = 0;
      bad = flag(v, &d);
      a->defer |= d;
    } else if (strcmp(key, "fail_callback") == 0) {
      const char *p = v;
      char *k = word(&p);
      int code = 0, found = 0;
      for (int j = 0; k && j < K_COUNT; j++)
        if (strcmp(k, kind_names[j]) == 0 && error_code(p, &code) == 0) {
          a->fail[j] = code;
          found = 1;
        }
      free(k);
      bad = !found;
    } else if (strcmp(key, "fail_hook") == 0) {
      const char *p = v;
      char *hook = word(&p);
      int code;
      bad = !hook || error_code(p, &code) != 0;
      if (!bad && !a->fault) {
        bad = faultstore_new(env->store, env->alloc, &a->fault) != 0;
        if (!bad)
          faultstore_store(a->fault, &a->store);
      }
      if (!bad)
        bad = faultstore_fail_hook(a->fault, hook, code) != 0;
      free(hook);
    } else if (strncmp(key, "reject_", 7) == 0 || strcmp(key, "vrfy") == 0) {
      const char *k = strcmp(key, "vrfy") == 0 ? "vrfy" : key + 7;
      bad = 1;
      for (int j = 0; j < K_COUNT; j++)
        if (strcmp(k, kind_names[j]) == 0)
          bad = add_rule(a, j, j != K_CONNECT && j != K_DATA && j != K_MESSAGE,
                         v);
    } else
      bad = 1;
    if (bad)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                           */
/* ------------------------------------------------------------------ */

static int nocase_eq(const char *a, const char *b) {
  for (; *a && *b; a++, b++) {
    char x = *a >= 'A' && *a <= 'Z' ? (char)(*a + 32) : *a;
    char y = *b >= 'A' && *b <= 'Z' ? (char)(*b + 32) : *b;
    if (x != y)
      return 0;
  }
  return *a == *b;
}

static void event(adapter *a, const char *text) {
  transcript_env_event(a->env, text);
}

/* Answers a policy callback: the scripted rule (if any), now or, when
 * deferring, at the next writable. */
static int decide(adapter *a, mailproto_op *op, int kind, const char *subject) {
  const rule *hit = NULL;
  for (size_t i = 0; i < a->rule_count && !hit; i++) {
    const rule *r = &a->rules[i];
    if (r->kind == kind && (!r->match || strcmp(r->match, "*") == 0 ||
                            (subject && nocase_eq(r->match, subject))))
      hit = r;
  }
  int status = a->fail[kind];
  if (a->defer) {
    a->deferred = op;
    a->deferred_rule = hit;
    a->deferred_status = status;
    return MAILPROTO_DEFERRED;
  }
  if (hit) {
    /* A refused reply (a code the session cannot use here) comes back as
     * the callback's error, as a careful application would do. */
    int rc = mailproto_op_set_reply(op, hit->code, hit->enhanced, hit->text);
    if (rc != 0)
      return rc;
  }
  return status;
}

static ptrdiff_t cb_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                         void *ud) {
  (void)s;
  adapter *a = ud;
  return transcript_env_send(a->env, data, len);
}

static int cb_start_tls(mailproto_smtp *s, void *ud) {
  (void)s;
  adapter *a = ud;
  event(a, "starttls");
  a->handshake = 1;
  a->line_len = 0;
  return 0;
}

static int cb_connect(mailproto_smtp *s, mailproto_op *op, const char *client,
                      void *ud) {
  (void)s;
  return decide(ud, op, K_CONNECT, client);
}

static int cb_helo(mailproto_smtp *s, mailproto_op *op, const char *verb,
                   const char *domain, void *ud) {
  (void)s;
  (void)verb;
  return decide(ud, op, K_HELO, domain);
}

/* Appends prefix and value to the event text. */
static void append(char *buf, size_t size, const char *prefix, const char *v) {
  size_t used = strlen(buf);
  snprintf(buf + used, size - used, "%s%s", prefix, v);
}

static int cb_mail(mailproto_smtp *s, mailproto_op *op,
                   const mailproto_smtp_mail *m, void *ud) {
  (void)s;
  static const char *const bodies[] = {"", "7BIT", "8BITMIME", "BINARYMIME"};
  static const char *const rets[] = {"", "FULL", "HDRS"};
  char text[1600], num[32];
  snprintf(text, sizeof text, "mail <%s>", m->reverse_path);
  if (m->size) {
    snprintf(num, sizeof num, "%llu", (unsigned long long)m->size);
    append(text, sizeof text, " size=", num);
  }
  if (m->body)
    append(text, sizeof text, " body=", bodies[m->body]);
  if (m->smtputf8)
    append(text, sizeof text, " smtputf8", "");
  if (m->auth)
    append(text, sizeof text, " auth=", m->auth);
  if (m->ret)
    append(text, sizeof text, " ret=", rets[m->ret]);
  if (m->envid)
    append(text, sizeof text, " envid=", m->envid);
  event(ud, text);
  return decide(ud, op, K_MAIL, m->reverse_path);
}

static int cb_rcpt(mailproto_smtp *s, mailproto_op *op,
                   const mailproto_smtp_rcpt *r, void *ud) {
  (void)s;
  static const char *const notify[] = {"NEVER", "SUCCESS", "FAILURE", "DELAY"};
  char text[1600];
  snprintf(text, sizeof text, "rcpt <%s>", r->forward_path);
  if (r->notify) {
    append(text, sizeof text, " notify=", "");
    int first = 1;
    for (int i = 0; i < 4; i++)
      if (r->notify & (1u << i)) {
        append(text, sizeof text, first ? "" : ",", notify[i]);
        first = 0;
      }
  }
  if (r->orcpt_type) {
    append(text, sizeof text, " orcpt=", r->orcpt_type);
    append(text, sizeof text, ";", r->orcpt);
  }
  event(ud, text);
  return decide(ud, op, K_RCPT, r->forward_path);
}

static int cb_auth(mailproto_smtp *s, mailproto_op *op, const char *user,
                   void *ud) {
  (void)s;
  char text[300];
  snprintf(text, sizeof text, "auth %s", user);
  event(ud, text);
  return decide(ud, op, K_AUTH, user);
}

static int cb_data(mailproto_smtp *s, mailproto_op *op, void *ud) {
  (void)s;
  event(ud, "data");
  return decide(ud, op, K_DATA, NULL);
}

static int cb_message(mailproto_smtp *s, mailproto_op *op,
                      const mailproto_smtp_message *m, void *ud) {
  (void)s;
  char text[64];
  snprintf(text, sizeof text, "message %llu %zu", (unsigned long long)m->size,
           m->recipient_count);
  event(ud, text);
  return decide(ud, op, K_MESSAGE, NULL);
}

static int cb_vrfy(mailproto_smtp *s, mailproto_op *op, const char *arg,
                   void *ud) {
  (void)s;
  return decide(ud, op, K_VRFY, arg);
}

static void cb_delivered(mailproto_smtp *s, const mailproto_smtp_message *m,
                         const int *results, void *ud) {
  (void)s;
  size_t ok = 0;
  for (size_t i = 0; i < m->recipient_count; i++)
    ok += results[i] == 0;
  char text[64];
  if (ok == m->recipient_count)
    snprintf(text, sizeof text, "delivered");
  else
    snprintf(text, sizeof text, "delivered %zu/%zu", ok, m->recipient_count);
  event(ud, text);
}

static mailproto_datetime cb_now(mailproto_smtp *s, void *ud) {
  (void)s;
  (void)ud;
  /* The runner's memstore clock: 2026-11-26 14:18:27 UTC. */
  mailproto_datetime dt = {1795702707, 0};
  return dt;
}

/* ------------------------------------------------------------------ */
/* The adapter                                                         */
/* ------------------------------------------------------------------ */

static void destroy(void *session) {
  adapter *a = session;
  if (!a)
    return;
  mailproto_smtp_free(a->s);
  faultstore_free(a->fault);
  for (size_t i = 0; i < a->rule_count; i++) {
    free(a->rules[i].match);
    free(a->rules[i].enhanced);
    free(a->rules[i].text);
  }
  free(a);
}

static int create_with(transcript_env *env, void **session, int defer) {
  *session = NULL;
  adapter *a = calloc(1, sizeof *a);
  if (!a)
    return MAILPROTO_ERR_NOMEM;
  a->env = env;
  a->store = *env->store;
  a->starttls = 1;
  a->defer = defer;
  mailproto_smtp_config config;
  mailproto_smtp_callbacks cb;
  mailproto_smtp_config_init(&config, sizeof config);
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  config.allocator = env->alloc;
  int rc = configure(a, &config);
  if (rc != 0) {
    destroy(a);
    return rc;
  }
  cb.send = cb_send;
  cb.start_tls = a->starttls ? cb_start_tls : NULL;
  cb.connect = cb_connect;
  cb.helo = cb_helo;
  cb.mail = cb_mail;
  cb.rcpt = cb_rcpt;
  cb.auth = cb_auth;
  cb.data_start = cb_data;
  cb.message = cb_message;
  cb.vrfy = cb_vrfy;
  cb.now = cb_now;
  cb.delivered = cb_delivered;
  rc = mailproto_smtp_new(&config, &cb, &a->store, a, &a->s);
  if (rc == 0 && a->client)
    rc = mailproto_smtp_set_client(a->s, a->client);
  if (rc != 0) {
    destroy(a);
    return rc;
  }
  *session = a;
  return 0;
}

static int create(transcript_env *env, void **session) {
  return create_with(env, session, 0);
}

static int create_deferred(transcript_env *env, void **session) {
  return create_with(env, session, 1);
}

static int start(void *session) {
  adapter *a = session;
  return mailproto_smtp_start(a->s);
}

/* During the simulated handshake the session still gets every byte up to
 * the end of the marker line (it must drop them all); then the transport
 * is secure and the rest is read as commands. */
static ptrdiff_t handshake_feed(adapter *a, const uint8_t *data, size_t len) {
  size_t i = 0;
  int done = 0;
  while (i < len && !done) {
    uint8_t c = data[i++];
    if (c == '\n') {
      size_t n = a->line_len;
      if (n > 0 && a->line[n - 1] == '\r')
        n--;
      done = n == sizeof TLS_MARKER - 1 && memcmp(a->line, TLS_MARKER, n) == 0;
      a->line_len = 0;
    } else if (a->line_len < sizeof a->line)
      a->line[a->line_len++] = (char)c;
  }
  ptrdiff_t used = mailproto_smtp_feed(a->s, data, i);
  if (used < 0)
    return used;
  if ((size_t)used != i)
    return MAILPROTO_ERR_INTERNAL; /* the session must drop it all */
  if (done) {
    a->handshake = 0;
    int rc = mailproto_smtp_set_secure(a->s);
    if (rc < 0)
      return rc;
  }
  return used;
}

static ptrdiff_t feed(void *session, const uint8_t *data, size_t len) {
  adapter *a = session;
  if (a->handshake)
    return handshake_feed(a, data, len);
  return mailproto_smtp_feed(a->s, data, len);
}

/* The event loop's turn: finish deferred callbacks (each completion may
 * start another), then let the session write. */
static int writable(void *session) {
  adapter *a = session;
  while (a->deferred) {
    mailproto_op *op = a->deferred;
    const rule *r = a->deferred_rule;
    int status = a->deferred_status;
    a->deferred = NULL;
    if (r) {
      int e = mailproto_op_set_reply(op, r->code, r->enhanced, r->text);
      if (e != 0)
        status = e;
    }
    int rc = mailproto_op_complete(op, status);
    if (rc < 0)
      return rc;
  }
  return mailproto_smtp_writable(a->s);
}

static int want_read(void *session) {
  adapter *a = session;
  return mailproto_smtp_want_read(a->s);
}

static int want_write(void *session) {
  adapter *a = session;
  return mailproto_smtp_want_write(a->s) || a->deferred != NULL;
}

static int pending(void *session) {
  adapter *a = session;
  return !mailproto_smtp_closed(a->s) && !want_read(a) && !want_write(a);
}

const transcript_adapter smtp_adapter = {"smtp",     create,   start,
                                         feed,       writable, want_read,
                                         want_write, pending,  destroy};

const transcript_adapter smtp_adapter_deferred = {"smtp (callbacks deferred)",
                                                  create_deferred,
                                                  start,
                                                  feed,
                                                  writable,
                                                  want_read,
                                                  want_write,
                                                  pending,
                                                  destroy};
