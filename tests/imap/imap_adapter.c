/*
 * Plugs mailproto_imap into the transcript runner; see imap_adapter.h for
 * the options a transcript may set.
 */
#include "imap/imap_adapter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/imap.h"
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

int imap_test_append(mailproto_memstore *ms, const char *user,
                     const char *mailbox, const void *data, size_t len,
                     uint32_t flags, const char *const *keywords,
                     size_t keyword_count) {
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
  info.keywords = keywords;
  info.keyword_count = keyword_count;
  info.size_hint = len;
  uint32_t uidvalidity, uid;
  rc = mailproto_store_call_append_begin(&st, &op, 0, account, mailbox, &info,
                                         &writer);
  if (rc == 0 && len)
    rc = mailproto_store_call_write(&st, &op, 0, writer, data, len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(&st, &op, 0, writer, &uidvalidity,
                                            &uid);
  else
    mailproto_store_call_abort(&st, writer);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

int imap_test_create(mailproto_memstore *ms, const char *user,
                     const char *mailbox, unsigned special) {
  mailproto_store st;
  mailproto_op op;
  void *account;
  int rc = account_of(ms, user, &st, &op, &account);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_create(&st, &op, 0, account, mailbox, special);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

int imap_test_subscribe(mailproto_memstore *ms, const char *user,
                        const char *mailbox) {
  mailproto_store st;
  mailproto_op op;
  void *account;
  int rc = account_of(ms, user, &st, &op, &account);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_subscribe(&st, &op, 0, account, mailbox, 1);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

int imap_test_status(mailproto_memstore *ms, const char *user,
                     const char *mailbox, mailproto_mailbox_status *out) {
  mailproto_store st;
  mailproto_op op;
  void *account;
  int rc = account_of(ms, user, &st, &op, &account);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_status(&st, &op, 0, account, mailbox, out);
  mailproto_store_call_release_account(&st, account);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The session                                                         */
/* ------------------------------------------------------------------ */

enum policy { POLICY_NONE, POLICY_ACCEPT, POLICY_FAIL, POLICY_REJECT };

#define MAX_KEYWORDS 8

typedef struct adapter {
  transcript_env *env;
  mailproto_imap *s;
  enum policy connect, auth;
  const char *connect_text, *auth_text; /* option strings: live long enough */
  int tls_started;
  int secured;
  int woken;          /* the wakeup callback fired */
  uint32_t flags;     /* for the next @ message */
  char keywords[256]; /* for the next @ message, comma-separated */
} adapter;

static ptrdiff_t ad_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return transcript_env_send(((adapter *)user_data)->env, data, len);
}

static void event(adapter *a, const char *what, const char *arg) {
  char text[320];
  snprintf(text, sizeof text, "%s%s%s", what, arg ? " " : "", arg ? arg : "");
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

static int ad_connect(mailproto_imap *s, mailproto_op *op, const char *client,
                      void *user_data) {
  adapter *a = user_data;
  (void)s;
  event(a, "connect", *client ? client : NULL);
  return policy_answer(op, a->connect, a->connect_text);
}

static int ad_auth(mailproto_imap *s, mailproto_op *op, const char *user,
                   void *user_data) {
  adapter *a = user_data;
  (void)s;
  event(a, "auth", user);
  return policy_answer(op, a->auth, a->auth_text);
}

static int ad_start_tls(mailproto_imap *s, void *user_data) {
  adapter *a = user_data;
  (void)s;
  a->tls_started = 1;
  event(a, "starttls", NULL);
  return 0;
}

static void ad_wakeup(mailproto_imap *s, void *user_data) {
  (void)s;
  ((adapter *)user_data)->woken = 1;
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

/* Looks `name` (n bytes) up in a table of {name, bit}; -1 if absent. */
typedef struct named_bit {
  const char *name;
  unsigned bit;
} named_bit;

static int parse_list(const char *value, const named_bit *t, size_t count,
                      unsigned *out) {
  *out = 0;
  if (strcmp(value, "none") == 0)
    return 0;
  for (const char *p = value; *p;) {
    const char *end = strchr(p, ',');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    size_t k = 0;
    while (k < count && (strlen(t[k].name) != n || strncmp(t[k].name, p, n)))
      k++;
    if (k == count)
      return -1;
    *out |= t[k].bit;
    p = end ? end + 1 : p + n;
  }
  return 0;
}

static const named_bit flag_names[] = {{"seen", MAILPROTO_FLAG_SEEN},
                                       {"answered", MAILPROTO_FLAG_ANSWERED},
                                       {"flagged", MAILPROTO_FLAG_FLAGGED},
                                       {"deleted", MAILPROTO_FLAG_DELETED},
                                       {"draft", MAILPROTO_FLAG_DRAFT}};

static const named_bit sasl_names[] = {{"PLAIN", MAILPROTO_SASL_PLAIN},
                                       {"LOGIN", MAILPROTO_SASL_LOGIN},
                                       {"CRAM-MD5", MAILPROTO_SASL_CRAM_MD5}};

static const named_bit use_names[] = {
    {"all", MAILPROTO_MBOX_SPECIAL_ALL},
    {"archive", MAILPROTO_MBOX_SPECIAL_ARCHIVE},
    {"drafts", MAILPROTO_MBOX_SPECIAL_DRAFTS},
    {"flagged", MAILPROTO_MBOX_SPECIAL_FLAGGED},
    {"junk", MAILPROTO_MBOX_SPECIAL_JUNK},
    {"sent", MAILPROTO_MBOX_SPECIAL_SENT},
    {"trash", MAILPROTO_MBOX_SPECIAL_TRASH}};

#define COUNT(t) (sizeof(t) / sizeof((t)[0]))

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

/* Splits "WORD rest" into word (copied into out) and rest. */
static const char *first_word(const char *value, char *out, size_t size) {
  const char *sp = strchr(value, ' ');
  size_t n = sp ? (size_t)(sp - value) : strlen(value);
  if (n >= size)
    return NULL;
  memcpy(out, value, n);
  out[n] = '\0';
  return sp ? sp + 1 : "";
}

static int add_message(adapter *a, const char *mailbox, const char *content) {
  size_t len;
  uint8_t *data = unescape(content, &len);
  if (!data)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const char *kw[MAX_KEYWORDS];
  char copy[sizeof a->keywords];
  size_t n = 0;
  memcpy(copy, a->keywords, sizeof copy);
  for (char *p = copy; *p && n < MAX_KEYWORDS;) {
    char *end = strchr(p, ',');
    kw[n++] = p;
    if (!end)
      break;
    *end = '\0';
    p = end + 1;
  }
  int rc = imap_test_append(a->env->memstore, "alice", mailbox, data, len,
                            a->flags, n ? kw : NULL, n);
  free(data);
  return rc;
}

/* Store options act on the memstore at once; returns 0, 1 if `key` is
 * not one of them, or a negative code. */
static int store_option(adapter *a, const char *key, const char *value) {
  mailproto_memstore *ms = a->env->memstore;
  char word[256];
  if (strcmp(key, "user") == 0) {
    const char *rest = first_word(value, word, sizeof word);
    if (!rest || !*rest)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    return mailproto_memstore_add_user(ms, word, rest);
  }
  if (strcmp(key, "flags") == 0) {
    unsigned f;
    if (parse_list(value, flag_names, COUNT(flag_names), &f) != 0)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    a->flags = f;
    return 0;
  }
  if (strcmp(key, "keywords") == 0) {
    if (strlen(value) >= sizeof a->keywords)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    strcpy(a->keywords, strcmp(value, "none") == 0 ? "" : value);
    return 0;
  }
  if (strcmp(key, "message") == 0)
    return add_message(a, "INBOX", value);
  if (strcmp(key, "message_in") == 0) {
    const char *rest = first_word(value, word, sizeof word);
    return rest ? add_message(a, word, rest) : MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  if (strcmp(key, "mailbox") == 0) {
    const char *rest = first_word(value, word, sizeof word);
    unsigned use = 0;
    if (!rest ||
        (*rest && parse_list(rest, use_names, COUNT(use_names), &use) != 0))
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    return imap_test_create(ms, "alice", word, use);
  }
  if (strcmp(key, "subscribe") == 0)
    return imap_test_subscribe(ms, "alice", value);
  return 1;
}

static int size_option(const char *key, const char *value,
                       mailproto_imap_config *c) {
  size_t n;
  if (transcript_option_size(value, &n) != 0)
    return -1;
  if (strcmp(key, "max_line") == 0)
    c->max_line = n;
  else if (strcmp(key, "max_literal") == 0)
    c->max_literal = n;
  else if (strcmp(key, "max_command") == 0)
    c->max_command = n;
  else if (strcmp(key, "output_watermark") == 0)
    c->output_watermark = n;
  else if (strcmp(key, "max_append") == 0)
    c->max_append = n;
  else if (n > 100000000)
    return -1;
  else if (strcmp(key, "max_literals") == 0)
    c->max_literals = (unsigned)n;
  else if (strcmp(key, "max_nesting") == 0)
    c->max_nesting = (unsigned)n;
  else if (strcmp(key, "max_sequence_ranges") == 0)
    c->max_sequence_ranges = (unsigned)n;
  else if (strcmp(key, "max_errors") == 0)
    c->max_errors = (unsigned)n;
  else if (strcmp(key, "max_errors_unauth") == 0)
    c->max_errors_unauth = (unsigned)n;
  else if (strcmp(key, "max_auth_failures") == 0)
    c->max_auth_failures = (unsigned)n;
  else
    return -1;
  return 0;
}

static int configure(adapter *a, mailproto_imap_config *c,
                     mailproto_imap_callbacks *cb, const char **client) {
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
    unsigned mask;
    if (strcmp(key, "secure") == 0)
      bad = flag_option(value, &c->secure);
    else if (strcmp(key, "allow_insecure_auth") == 0)
      bad = flag_option(value, &c->allow_insecure_auth);
    else if (strcmp(key, "literal_minus") == 0)
      bad = flag_option(value, &c->literal_minus);
    else if (strcmp(key, "greeting") == 0)
      c->greeting = value;
    else if (strcmp(key, "id_name") == 0)
      c->id_name = strcmp(value, "none") == 0 ? NULL : value;
    else if (strcmp(key, "sasl") == 0) {
      bad = parse_list(value, sasl_names, COUNT(sasl_names), &mask);
      c->sasl_mechanisms = mask;
    } else if (strcmp(key, "client") == 0)
      *client = value;
    else if (strcmp(key, "connect") == 0) {
      bad = parse_policy(value, &a->connect, &a->connect_text);
      cb->connect = ad_connect;
    } else if (strcmp(key, "auth") == 0) {
      bad = parse_policy(value, &a->auth, &a->auth_text);
      cb->auth = ad_auth;
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
  mailproto_imap_free(a->s);
  free(a);
}

static int ad_create(transcript_env *env, void **session) {
  adapter *a = calloc(1, sizeof *a);
  if (!a)
    return MAILPROTO_ERR_NOMEM;
  a->env = env;
  mailproto_imap_config c;
  mailproto_imap_callbacks cb;
  mailproto_imap_config_init(&c, sizeof c);
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  c.allocator = env->alloc;
  cb.send = ad_send;
  cb.wakeup = ad_wakeup;
  const char *client = NULL;
  int rc = configure(a, &c, &cb, &client);
  if (rc == 0)
    rc = mailproto_imap_new(&c, &cb, env->store, a, &a->s);
  if (rc == 0 && client)
    rc = mailproto_imap_set_client(a->s, client);
  if (rc != 0) {
    ad_destroy(a);
    return rc;
  }
  *session = a;
  return 0;
}

static int ad_start(void *session) {
  return mailproto_imap_start(((adapter *)session)->s);
}

/* An application woken by the store calls sync from its loop. */
static int after_call(adapter *a, int rc) {
  if (rc >= 0 && a->woken) {
    a->woken = 0;
    int sync = mailproto_imap_sync(a->s);
    if (sync < 0)
      return sync;
  }
  return rc;
}

static ptrdiff_t ad_feed(void *session, const uint8_t *data, size_t len) {
  adapter *a = session;
  /* The markers: 0x16 (the TLS handshake, once STARTTLS went out) and
   * 0x01 (a delivery by someone else). */
  size_t before = 0;
  while (before < len && data[before] != 0x01 &&
         !(data[before] == 0x16 && a->tls_started && !a->secured))
    before++;
  if (before == len) {
    ptrdiff_t n = mailproto_imap_feed(a->s, data, len);
    int rc = n < 0 ? 0 : after_call(a, 0);
    return rc < 0 ? rc : n;
  }
  ptrdiff_t n = before ? mailproto_imap_feed(a->s, data, before) : 0;
  if (n < 0 || (size_t)n < before)
    return n;
  int rc;
  if (data[before] == 0x16) {
    rc = mailproto_imap_set_secure(a->s);
    a->secured = 1;
  } else {
    rc =
        imap_test_append(a->env->memstore, "alice", "INBOX", IMAP_TEST_DELIVERY,
                         strlen(IMAP_TEST_DELIVERY), 0, NULL, 0);
    rc = after_call(a, rc);
  }
  return rc < 0 ? rc : (ptrdiff_t)before + 1;
}

static int ad_writable(void *session) {
  adapter *a = session;
  return after_call(a, mailproto_imap_writable(a->s));
}

static int ad_want_read(void *session) {
  return mailproto_imap_want_read(((adapter *)session)->s);
}

static int ad_want_write(void *session) {
  return mailproto_imap_want_write(((adapter *)session)->s);
}

/* What an application sees: neither reading nor writing, yet not closed,
 * means an operation is pending. */
static int ad_pending(void *session) {
  const mailproto_imap *s = ((adapter *)session)->s;
  return !mailproto_imap_closed(s) && !mailproto_imap_want_read(s) &&
         !mailproto_imap_want_write(s);
}

const transcript_adapter imap_transcript_adapter = {
    "imap",       ad_create,     ad_start,   ad_feed,   ad_writable,
    ad_want_read, ad_want_write, ad_pending, ad_destroy};
