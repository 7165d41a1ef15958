#include "transport.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "conn.h"

static void fail(conn *c, const char *what, int err) {
  c->failed = 1;
  c->fail_reason = what;
  c->fail_errno = err;
}

#ifdef MAILPROTO_SERVER_TLS
static unsigned tls_to_loop(unsigned wants) {
  return ((wants & TLS_WANT_READ) ? LOOP_READ : 0u) |
         ((wants & TLS_WANT_WRITE) ? LOOP_WRITE : 0u);
}
#endif

ssize_t transport_read(conn *c, uint8_t *buf, size_t len) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls) {
    ssize_t n = tls_read(c->tls, buf, len);
    if (n == TLS_AGAIN)
      return TRANSPORT_AGAIN;
    if (n == TLS_ERROR) {
      fail(c, tls_error(c->tls), 0);
      return TRANSPORT_FAIL;
    }
    return n;
  }
#endif
  for (;;) {
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return TRANSPORT_AGAIN;
    fail(c, "read", errno);
    return TRANSPORT_FAIL;
  }
}

ssize_t transport_write(conn *c, const uint8_t *data, size_t len) {
  ssize_t n;
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls) {
    n = tls_write(c->tls, data, len);
    if (n == TLS_ERROR) {
      fail(c, tls_error(c->tls), 0);
      return TRANSPORT_FAIL;
    }
    if ((size_t)n < len)
      c->write_blocked = 1;
    return n;
  }
#endif
  for (;;) {
    /* MSG_NOSIGNAL: a client that went away is an error, not SIGPIPE. */
    n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n >= 0)
      break;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c->write_blocked = 1;
      return 0;
    }
    fail(c, "write", errno);
    return TRANSPORT_FAIL;
  }
  if ((size_t)n < len)
    c->write_blocked = 1;
  return n;
}

int transport_flush(conn *c) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls && c->tls_state == CONN_TLS_ON) {
    int r = tls_flush(c->tls);
    if (r == TLS_ERROR) {
      fail(c, tls_error(c->tls), 0);
      return TRANSPORT_FAIL;
    }
    if (r == TLS_AGAIN)
      return TRANSPORT_AGAIN;
    /* The staging buffer is empty: the session may send again. */
    c->write_blocked = 0;
    return 0;
  }
#endif
  (void)c;
  return 0;
}

int transport_has_output(const conn *c) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls && c->tls_state == CONN_TLS_ON)
    return tls_has_output(c->tls);
#endif
  (void)c;
  return 0;
}

unsigned transport_interest(const conn *c, int want_read) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls) {
    if (c->tls_state == CONN_TLS_HANDSHAKE)
      return tls_to_loop(tls_read_wants(c->tls));
    unsigned ev = tls_to_loop(tls_write_wants(c->tls));
    if (want_read)
      ev |= tls_to_loop(tls_read_wants(c->tls));
    return ev;
  }
#endif
  return (want_read ? LOOP_READ : 0u) | (c->write_blocked ? LOOP_WRITE : 0u);
}

int transport_tls_begin(conn *c) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->srv->tls && tls_conn_new(c->srv->tls, c->fd, &c->tls) == 0) {
    c->tls_state = CONN_TLS_HANDSHAKE;
    return 0;
  }
  fail(c, "TLS setup: out of memory", 0);
#else
  fail(c, "TLS is not available in this build", 0);
#endif
  return -1;
}

int transport_tls_handshake(conn *c) {
#ifdef MAILPROTO_SERVER_TLS
  int r = tls_handshake(c->tls);
  if (r == 1) {
    c->tls_state = CONN_TLS_ON;
    return 1;
  }
  if (r == TLS_AGAIN)
    return TRANSPORT_AGAIN;
  fail(c, tls_error(c->tls), 0);
#else
  fail(c, "TLS is not available in this build", 0);
#endif
  return TRANSPORT_FAIL;
}

void transport_tls_describe(const conn *c, char *out, size_t size) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls) {
    tls_describe(c->tls, out, size);
    return;
  }
#endif
  (void)c;
  if (size)
    out[0] = '\0';
}

void transport_close(conn *c) {
#ifdef MAILPROTO_SERVER_TLS
  if (c->tls) {
    tls_close(c->tls);
    tls_conn_free(c->tls);
    c->tls = NULL;
  }
#else
  (void)c;
#endif
}
