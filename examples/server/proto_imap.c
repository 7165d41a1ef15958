/* The IMAP adapter: mailproto_imap sessions behind proto_adapter. */
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "proto.h"
#include "store_wrap.h"

/* RFC 3501 5.4: an inactivity autologout timer of at least 30 minutes. */
#define IMAP_IDLE_TIMEOUT_MS (30u * 60u * 1000u)
/* While a client is in IDLE the session says "* OK Still here" this often
 * (RFC 2177 3: NAT boxes and the client's own 29-minute timer). The output
 * also moves the connection's idle deadline, so an idling client is never
 * logged out; conn.c shortens the interval when the idle timeout is
 * shorter (tests). */
#define IMAP_KEEPALIVE_MS (2u * 60u * 1000u)

static ptrdiff_t cb_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  return conn_send(user_data, data, len);
}

static int cb_start_tls(mailproto_imap *s, void *user_data) {
  (void)s;
  return conn_start_tls(user_data);
}

static int cb_auth(mailproto_imap *s, mailproto_op *op, const char *user,
                   void *user_data) {
  (void)s;
  (void)op;
  store_wrap_auth_ok(user_data, user);
  return 0;
}

/* Called from inside some session's store operation (an SMTP delivery, an
 * APPEND or STORE of another IMAP client): only schedule the sync. */
static void cb_wakeup(mailproto_imap *s, void *user_data) {
  (void)s;
  conn_notify(user_data);
}

static int create(conn *c, const proto_env *env, void **session) {
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.greeting = "mailproto-server ready";
  cfg.id_name = "mailproto-server";
  cfg.secure = env->secure;
  cfg.allow_insecure_auth = env->allow_insecure_auth;

  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = cb_send;
  cb.start_tls = env->starttls ? cb_start_tls : NULL;
  cb.auth = cb_auth;
  cb.wakeup = cb_wakeup;

  mailproto_imap *s;
  int rc = mailproto_imap_new(&cfg, &cb, env->store, c, &s);
  if (rc < 0)
    return rc;
  rc = mailproto_imap_set_client(s, env->client);
  if (rc < 0) {
    mailproto_imap_free(s);
    return rc;
  }
  *session = s;
  return 0;
}

static void destroy(void *s) {
  mailproto_imap_free(s);
}
static int start(void *s) {
  return mailproto_imap_start(s);
}
static ptrdiff_t feed(void *s, const uint8_t *data, size_t len) {
  return mailproto_imap_feed(s, data, len);
}
static int writable(void *s) {
  return mailproto_imap_writable(s);
}
static int set_secure(void *s) {
  return mailproto_imap_set_secure(s);
}
static int want_read(const void *s) {
  return mailproto_imap_want_read(s);
}
static int want_write(const void *s) {
  return mailproto_imap_want_write(s);
}
static int closed(const void *s) {
  return mailproto_imap_closed(s);
}
static int sync_changes(void *s) {
  return mailproto_imap_sync(s);
}

/* The Maildir store notifies only for changes made through this process;
 * a sync at each keep-alive also picks up what other programs did. */
static int keepalive(void *s) {
  if (!mailproto_imap_idling(s))
    return 0;
  int rc = mailproto_imap_sync(s);
  return rc < 0 ? rc : mailproto_imap_keepalive(s);
}

/* "tag LOGIN user password" and "tag AUTHENTICATE PLAIN <initial
 * response>" keep their first three words. A password sent as a literal
 * is masked through the "+ " continuation. */
static size_t visible(const char *line, size_t len) {
  size_t tag = proto_visible_words(line, len, 1);
  if (tag >= len)
    return len;
  if (proto_starts_with_word(line + tag, len - tag, "LOGIN") ||
      proto_starts_with_word(line + tag, len - tag, "AUTHENTICATE"))
    return proto_visible_words(line, len, 3);
  return len;
}

static size_t reply(proto_reply kind, const char *hostname, char *out,
                    size_t size) {
  (void)hostname;
  /* RFC 3501 7.1.5: BYE before the server closes; RFC 5530 3 UNAVAILABLE
   * marks a temporary refusal. */
  const char *text =
      kind == PROTO_REPLY_BUSY
          ? "* BYE [UNAVAILABLE] Too many connections, try again later\r\n"
      : kind == PROTO_REPLY_TIMEOUT
          ? "* BYE Autologout; idle for too long\r\n"
          : "* BYE [UNAVAILABLE] Server shutting down\r\n";
  size_t n = strlen(text);
  if (n >= size)
    return 0;
  memcpy(out, text, n + 1);
  return n;
}

const proto_adapter proto_imap = {
    .name = "imap",
    .idle_timeout_ms = IMAP_IDLE_TIMEOUT_MS,
    .keepalive_ms = IMAP_KEEPALIVE_MS,
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
    .sync = sync_changes,
    .keepalive = keepalive,
    .visible = visible,
    .reply = reply,
};
