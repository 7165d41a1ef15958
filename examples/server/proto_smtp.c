/* The SMTP and LMTP adapter: mailproto_smtp sessions behind proto_adapter. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "store_wrap.h"

/* RFC 5321 4.5.3.2.7: the server waits at least 5 minutes for a command. */
#define SMTP_IDLE_TIMEOUT_MS (5u * 60u * 1000u)

static ptrdiff_t cb_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return conn_send(user_data, data, len);
}

static int cb_start_tls(mailproto_smtp *s, void *user_data) {
  (void)s;
  return conn_start_tls(user_data);
}

static int cb_auth(mailproto_smtp *s, mailproto_op *op, const char *user,
                   void *user_data) {
  (void)s;
  (void)op;
  store_wrap_auth_ok(user_data, user);
  return 0;
}

static int create(conn *c, const proto_env *env, int lmtp, void **session) {
  mailproto_smtp_config cfg;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  cfg.lmtp = lmtp;
  cfg.hostname = env->hostname;
  cfg.greeting =
      lmtp ? "LMTP mailproto-server ready" : "ESMTP mailproto-server ready";
  cfg.secure = env->secure;
  cfg.allow_insecure_auth = env->allow_insecure_auth;

  mailproto_smtp_callbacks cb;
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  cb.send = cb_send;
  cb.start_tls = env->starttls ? cb_start_tls : NULL;
  cb.auth = cb_auth;

  mailproto_smtp *s;
  int rc = mailproto_smtp_new(&cfg, &cb, env->store, c, &s);
  if (rc < 0)
    return rc;
  rc = mailproto_smtp_set_client(s, env->client);
  if (rc < 0) {
    mailproto_smtp_free(s);
    return rc;
  }
  *session = s;
  return 0;
}

static int create_smtp(conn *c, const proto_env *env, void **session) {
  return create(c, env, 0, session);
}

static int create_lmtp(conn *c, const proto_env *env, void **session) {
  return create(c, env, 1, session);
}

static void destroy(void *s) {
  mailproto_smtp_free(s);
}
static int start(void *s) {
  return mailproto_smtp_start(s);
}
static ptrdiff_t feed(void *s, const uint8_t *data, size_t len) {
  return mailproto_smtp_feed(s, data, len);
}
static int writable(void *s) {
  return mailproto_smtp_writable(s);
}
static int set_secure(void *s) {
  return mailproto_smtp_set_secure(s);
}
static int want_read(const void *s) {
  return mailproto_smtp_want_read(s);
}
static int want_write(const void *s) {
  return mailproto_smtp_want_write(s);
}
static int closed(const void *s) {
  return mailproto_smtp_closed(s);
}

/* "AUTH PLAIN <initial response>": keep the verb and the mechanism. */
static size_t visible(const char *line, size_t len) {
  if (proto_starts_with_word(line, len, "AUTH"))
    return proto_visible_words(line, len, 2);
  return len;
}

static size_t reply(proto_reply kind, const char *hostname, char *out,
                    size_t size) {
  /* RFC 5321 3.8 and 4.2.3: "421 <domain> ..." is the reply of a server
   * that must close the channel; the enhanced code (RFC 2034) leads. */
  const char *code = kind == PROTO_REPLY_BUSY      ? "4.7.0"
                     : kind == PROTO_REPLY_TIMEOUT ? "4.4.2"
                                                   : "4.3.2";
  const char *text =
      kind == PROTO_REPLY_BUSY      ? "Too many connections, try again later"
      : kind == PROTO_REPLY_TIMEOUT ? "Idle timeout, closing connection"
                                    : "Service shutting down";
  int n = snprintf(out, size, "421 %s %s %s\r\n", code, hostname, text);
  return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

const proto_adapter proto_smtp = {
    .name = "smtp",
    .idle_timeout_ms = SMTP_IDLE_TIMEOUT_MS,
    .continuation = "334 ",
    .create = create_smtp,
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

const proto_adapter proto_lmtp = {
    .name = "lmtp",
    .idle_timeout_ms = SMTP_IDLE_TIMEOUT_MS,
    .continuation = "334 ",
    .create = create_lmtp,
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
