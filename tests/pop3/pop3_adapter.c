/*
 * Plugs mailproto_pop3 into the transcript runner; see pop3_adapter.h for
 * the options a transcript may set.
 */
#include "pop3/pop3_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/pop3.h"
#include "store/store_call.h"

/* ------------------------------------------------------------------ */
/* Store helpers                                                       */
/* ------------------------------------------------------------------ */

/* The memstore answers at once: a sink that takes no reports does. */
static const mailproto_op_sink quiet_sink = {0};

static int account_of(mailproto_memstore *ms, const char *user,
                      mailproto_store *st, mailproto_op *op, void **account) {
  mailproto_memstore_store(ms, st);
  mailproto_op_init(op, &quiet_sink, NULL);
  return mailproto_store_call_lookup_recipient(st, op, 0, user, account);
}

int pop3_test_append(mailproto_memstore *ms, const char *user, const void *data,
                     size_t len, uint32_t flags) {
  mailproto_store st;
  mailproto_op op;
  void *account = NULL, *writer = NULL;
  int rc = account_of(ms, user, &st, &op, &account);
  if (rc != 0)
    return rc;
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.flags = flags;
  info.size_hint = len;
  uint32_t uidvalidity, uid;
  rc = mailproto_store_call_append_begin(&st, &op, 0, account, "INBOX", &info,
                                         &writer);
  if (rc == 0)
    rc = mailproto_store_call_write(&st, &op, 0, writer, data, len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(&st, &op, 0, writer, &uidvalidity,
                                            &uid);
  else
    mailproto_store_call_abort(&st, writer);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

int pop3_test_lock(mailproto_memstore *ms, const char *user, void **account,
                   void **mailbox) {
  mailproto_store st;
  mailproto_op op;
  mailproto_mailbox_status status;
  *mailbox = NULL;
  int rc = account_of(ms, user, &st, &op, account);
  if (rc == 0)
    rc = mailproto_store_call_open(&st, &op, 0, *account, "INBOX",
                                   MAILPROTO_OPEN_EXCLUSIVE, NULL, NULL,
                                   mailbox, &status);
  if (rc != 0) {
    mailproto_store_call_release_account(&st, *account);
    *account = NULL;
  }
  return rc;
}

void pop3_test_unlock(mailproto_memstore *ms, void *account, void *mailbox) {
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_store_call_close(&st, mailbox);
  mailproto_store_call_release_account(&st, account);
}

long pop3_test_count(mailproto_memstore *ms, const char *user) {
  mailproto_store st;
  mailproto_op op;
  void *account;
  mailproto_mailbox_status status;
  int rc = account_of(ms, user, &st, &op, &account);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_status(&st, &op, 0, account, "INBOX", &status);
  mailproto_store_call_release_account(&st, account);
  return rc != 0 ? rc : (long)status.messages;
}

/* ------------------------------------------------------------------ */
/* The session                                                         */
/* ------------------------------------------------------------------ */

enum policy { POLICY_NONE, POLICY_ACCEPT, POLICY_FAIL, POLICY_REJECT };

typedef struct adapter {
  transcript_env *env;
  mailproto_pop3 *s;
  uint64_t nonce;
  enum policy connect, auth;
  const char *connect_text, *auth_text; /* option strings: live long enough */
  int tls_started;
  int secured;
  uint32_t flags; /* for the next @ message */
  void *lock_account, *lock_mailbox;
} adapter;

static ptrdiff_t ad_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return transcript_env_send(((adapter *)user_data)->env, data, len);
}

static void event(adapter *a, const char *what, const char *arg) {
  char text[320];
  size_t n = strlen(what);
  if (n + (arg ? strlen(arg) + 1 : 0) >= sizeof text) {
    transcript_env_event(a->env, what);
    return;
  }
  memcpy(text, what, n + 1);
  if (arg) {
    text[n] = ' ';
    memcpy(text + n + 1, arg, strlen(arg) + 1);
  }
  transcript_env_event(a->env, text);
}

static int policy_answer(mailproto_op *op, enum policy p, const char *text) {
  if (p == POLICY_FAIL)
    return MAILPROTO_ERR_TEMPORARY;
  if (p == POLICY_REJECT) {
    int rc = mailproto_op_set_reply(op, 500, NULL, text);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int ad_connect(mailproto_pop3 *s, mailproto_op *op, const char *client,
                      void *user_data) {
  adapter *a = user_data;
  (void)s;
  event(a, "connect", *client ? client : NULL);
  return policy_answer(op, a->connect, a->connect_text);
}

static int ad_auth(mailproto_pop3 *s, mailproto_op *op, const char *user,
                   void *user_data) {
  adapter *a = user_data;
  (void)s;
  event(a, "auth", user);
  return policy_answer(op, a->auth, a->auth_text);
}

static int ad_delay(mailproto_pop3 *s, mailproto_op *op, unsigned ms,
                    void *user_data) {
  char n[24];
  (void)s;
  (void)op;
  snprintf(n, sizeof n, "%u", ms);
  event(user_data, "delay", n);
  return 0;
}

static int ad_start_tls(mailproto_pop3 *s, void *user_data) {
  adapter *a = user_data;
  (void)s;
  a->tls_started = 1;
  event(a, "starttls", NULL);
  return 0;
}

static mailproto_datetime ad_now(mailproto_pop3 *s, void *user_data) {
  (void)s;
  (void)user_data;
  mailproto_datetime dt = {POP3_TEST_TIME, 0};
  return dt;
}

static uint64_t ad_nonce(mailproto_pop3 *s, void *user_data) {
  (void)s;
  return ++((adapter *)user_data)->nonce;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */
/* ------------------------------------------------------------------ */

static int flag_option(const char *value, int *out) {
  if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
    return -1;
  *out = value[0] == '1';
  return 0;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes the transcript escapes into a malloc'd buffer. */
static uint8_t *unescape(const char *s, size_t *out_len) {
  size_t len = strlen(s), n = 0;
  uint8_t *out = malloc(len + 1);
  if (!out)
    return NULL;
  for (size_t i = 0; i < len; i++) {
    char c = s[i];
    if (c != '\\') {
      out[n++] = (uint8_t)c;
      continue;
    }
    char e = i + 1 < len ? s[++i] : '\0';
    if (e == 'r')
      out[n++] = '\r';
    else if (e == 'n')
      out[n++] = '\n';
    else if (e == 't')
      out[n++] = '\t';
    else if (e == '\\')
      out[n++] = '\\';
    else if (e == 'x' && i + 2 < len && hexval(s[i + 1]) >= 0 &&
             hexval(s[i + 2]) >= 0) {
      out[n++] = (uint8_t)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
      i += 2;
    } else {
      free(out);
      return NULL;
    }
  }
  *out_len = n;
  return out;
}

static int parse_flags(const char *value, uint32_t *out) {
  static const struct {
    const char *name;
    uint32_t bit;
  } names[] = {{"seen", MAILPROTO_FLAG_SEEN},
               {"answered", MAILPROTO_FLAG_ANSWERED},
               {"flagged", MAILPROTO_FLAG_FLAGGED},
               {"deleted", MAILPROTO_FLAG_DELETED},
               {"draft", MAILPROTO_FLAG_DRAFT}};
  *out = 0;
  if (strcmp(value, "none") == 0)
    return 0;
  for (const char *p = value; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    size_t k = 0;
    while (k < sizeof names / sizeof names[0] &&
           (strlen(names[k].name) != n || strncmp(names[k].name, p, n) != 0))
      k++;
    if (k == sizeof names / sizeof names[0])
      return -1;
    *out |= names[k].bit;
    p = end ? end + 1 : p + n;
  }
  return 0;
}

static int parse_sasl(const char *value, unsigned *out) {
  *out = 0;
  if (strcmp(value, "none") == 0)
    return 0;
  for (const char *p = value; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 5 && strncmp(p, "PLAIN", 5) == 0)
      *out |= MAILPROTO_SASL_PLAIN;
    else if (n == 5 && strncmp(p, "LOGIN", 5) == 0)
      *out |= MAILPROTO_SASL_LOGIN;
    else if (n == 8 && strncmp(p, "CRAM-MD5", 8) == 0)
      *out |= MAILPROTO_SASL_CRAM_MD5;
    else
      return -1;
    p = end ? end + 1 : p + n;
  }
  return 0;
}

static int parse_policy(const char *value, enum policy *p, const char **text) {
  *text = NULL;
  if (strcmp(value, "accept") == 0)
    *p = POLICY_ACCEPT;
  else if (strcmp(value, "fail") == 0)
    *p = POLICY_FAIL;
  else if (strncmp(value, "reject", 6) == 0 &&
           (value[6] == '\0' || value[6] == ' ')) {
    *p = POLICY_REJECT;
    *text = value[6] ? value + 7 : NULL;
  } else
    return -1;
  return 0;
}

/* Store options (users, messages, the lock) act on the memstore at once;
 * returns 0, 1 if `key` is not one of them, or a negative code. */
static int store_option(adapter *a, const char *key, const char *value) {
  mailproto_memstore *ms = a->env->memstore;
  if (strcmp(key, "user") == 0) {
    const char *sp = strchr(value, ' ');
    if (!sp)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    char name[128];
    size_t n = (size_t)(sp - value);
    if (n >= sizeof name)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    memcpy(name, value, n);
    name[n] = '\0';
    return mailproto_memstore_add_user(ms, name, sp + 1);
  }
  if (strcmp(key, "flags") == 0)
    return parse_flags(value, &a->flags) == 0 ? 0
                                              : MAILPROTO_ERR_INVALID_ARGUMENT;
  if (strcmp(key, "message") == 0 || strcmp(key, "message_to") == 0) {
    char user[128] = "alice";
    const char *content = value;
    if (key[7] == '_') {
      const char *sp = strchr(value, ' ');
      size_t n = sp ? (size_t)(sp - value) : strlen(value);
      if (n >= sizeof user)
        return MAILPROTO_ERR_INVALID_ARGUMENT;
      memcpy(user, value, n);
      user[n] = '\0';
      content = sp ? sp + 1 : "";
    }
    size_t len;
    uint8_t *data = unescape(content, &len);
    if (!data)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    int rc = pop3_test_append(ms, user, data, len, a->flags);
    free(data);
    return rc;
  }
  if (strcmp(key, "locked") == 0) {
    int on;
    if (flag_option(value, &on) != 0)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    if (!on || a->lock_mailbox)
      return 0;
    return pop3_test_lock(ms, "alice", &a->lock_account, &a->lock_mailbox);
  }
  return 1;
}

static int size_option(const char *key, const char *value,
                       mailproto_pop3_config *c) {
  size_t n;
  if (transcript_option_size(value, &n) != 0)
    return -1;
  if (strcmp(key, "max_line") == 0)
    c->max_line = n;
  else if (strcmp(key, "output_watermark") == 0)
    c->output_watermark = n;
  else if (n > 1000000)
    return -1;
  else if (strcmp(key, "max_errors") == 0)
    c->max_errors = (unsigned)n;
  else if (strcmp(key, "max_auth_failures") == 0)
    c->max_auth_failures = (unsigned)n;
  else if (strcmp(key, "auth_failure_delay_ms") == 0)
    c->auth_failure_delay_ms = (unsigned)n;
  else if (strcmp(key, "login_delay") == 0)
    c->login_delay = (int)n;
  else if (strcmp(key, "expire") == 0)
    c->expire = (int)n;
  else
    return -1;
  return 0;
}

static int configure(adapter *a, mailproto_pop3_config *c,
                     mailproto_pop3_callbacks *cb, const char **client) {
  const transcript_env *env = a->env;
  for (size_t i = 0; i < env->option_count; i++) {
    const char *key = env->options[i].key, *value = env->options[i].value;
    int rc = store_option(a, key, value);
    if (rc <= 0) {
      if (rc < 0)
        return rc;
      continue;
    }
    int bad = 0, on = 0;
    if (strcmp(key, "secure") == 0)
      bad = flag_option(value, &c->secure);
    else if (strcmp(key, "allow_insecure_auth") == 0)
      bad = flag_option(value, &c->allow_insecure_auth);
    else if (strcmp(key, "apop") == 0)
      bad = flag_option(value, &c->apop);
    else if (strcmp(key, "user_pass") == 0)
      bad = flag_option(value, &c->user_pass);
    else if (strcmp(key, "send_8bit_headers") == 0)
      bad = flag_option(value, &c->send_8bit_headers);
    else if (strcmp(key, "hostname") == 0)
      c->hostname = value;
    else if (strcmp(key, "greeting") == 0)
      c->greeting = value;
    else if (strcmp(key, "implementation") == 0)
      c->implementation = value;
    else if (strcmp(key, "expire") == 0 && strcmp(value, "never") == 0)
      c->expire = -1;
    else if (strcmp(key, "sasl") == 0)
      bad = parse_sasl(value, &c->sasl_mechanisms);
    else if (strcmp(key, "client") == 0)
      *client = value;
    else if (strcmp(key, "connect") == 0) {
      bad = parse_policy(value, &a->connect, &a->connect_text);
      cb->connect = ad_connect;
    } else if (strcmp(key, "auth") == 0) {
      bad = parse_policy(value, &a->auth, &a->auth_text);
      cb->auth = ad_auth;
    } else if (strcmp(key, "delay") == 0) {
      bad = flag_option(value, &on);
      cb->delay = on ? ad_delay : NULL;
    } else if (strcmp(key, "tls") == 0) {
      bad = flag_option(value, &on);
      cb->start_tls = on ? ad_start_tls : NULL;
    } else
      bad = size_option(key, value, c);
    if (bad)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  return 0;
}

static void ad_destroy(void *session) {
  adapter *a = session;
  mailproto_pop3_free(a->s);
  if (a->lock_mailbox)
    pop3_test_unlock(a->env->memstore, a->lock_account, a->lock_mailbox);
  free(a);
}

static int ad_create(transcript_env *env, void **session) {
  adapter *a = calloc(1, sizeof *a);
  if (!a)
    return MAILPROTO_ERR_NOMEM;
  a->env = env;
  mailproto_pop3_config c;
  mailproto_pop3_callbacks cb;
  mailproto_pop3_config_init(&c, sizeof c);
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  c.allocator = env->alloc;
  cb.send = ad_send;
  cb.now = ad_now;
  cb.nonce = ad_nonce;
  const char *client = NULL;
  int rc = configure(a, &c, &cb, &client);
  if (rc == 0)
    rc = mailproto_pop3_new(&c, &cb, env->store, a, &a->s);
  if (rc == 0 && client)
    rc = mailproto_pop3_set_client(a->s, client);
  if (rc != 0) {
    ad_destroy(a);
    return rc;
  }
  *session = a;
  return 0;
}

static int ad_start(void *session) {
  return mailproto_pop3_start(((adapter *)session)->s);
}

static ptrdiff_t ad_feed(void *session, const uint8_t *data, size_t len) {
  adapter *a = session;
  if (a->tls_started && !a->secured) {
    const uint8_t *hello = memchr(data, 0x16, len);
    if (hello) {
      size_t before = (size_t)(hello - data);
      ptrdiff_t n = mailproto_pop3_feed(a->s, data, before);
      if (n < 0 || (size_t)n < before)
        return n;
      int rc = mailproto_pop3_set_secure(a->s);
      if (rc != 0)
        return rc;
      a->secured = 1;
      return (ptrdiff_t)before + 1;
    }
  }
  return mailproto_pop3_feed(a->s, data, len);
}

static int ad_writable(void *session) {
  return mailproto_pop3_writable(((adapter *)session)->s);
}

static int ad_want_read(void *session) {
  return mailproto_pop3_want_read(((adapter *)session)->s);
}

static int ad_want_write(void *session) {
  return mailproto_pop3_want_write(((adapter *)session)->s);
}

/* What an application sees: neither reading nor writing, yet not closed,
 * means an operation is pending. */
static int ad_pending(void *session) {
  const mailproto_pop3 *s = ((adapter *)session)->s;
  return !mailproto_pop3_closed(s) && !mailproto_pop3_want_read(s) &&
         !mailproto_pop3_want_write(s);
}

const transcript_adapter pop3_transcript_adapter = {
    "pop3",       ad_create,     ad_start,   ad_feed,   ad_writable,
    ad_want_read, ad_want_write, ad_pending, ad_destroy};
