#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "store_wrap.h"
#include "transport.h"

/* Steps of one pump before other connections get their turn. */
enum { PUMP_ROUNDS = 32 };

static void on_event(void *arg, unsigned events);

static unsigned idle_timeout(const conn *c) {
  return c->srv->timeout_override_ms ? c->srv->timeout_override_ms
                                     : c->proto->idle_timeout_ms;
}

/* The keepalive period: the adapter's, but at most half the idle timeout
 * so that an idling session's keep-alive always comes first. */
static uint64_t keepalive_period(const conn *c) {
  uint64_t ms = c->proto->keepalive_ms;
  uint64_t half = idle_timeout(c) / 2u;
  if (half == 0)
    half = 1;
  return ms < half ? ms : half;
}

/* Traffic moves the idle deadline. */
static void touch(conn *c) {
  c->deadline_ms = server_clock_ms() + idle_timeout(c);
}

void conn_log(conn *c, const char *fmt, ...) {
  char msg[LOG_LINE_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  log_line("#%llu %s %s %s", (unsigned long long)c->id,
           options_listener_name(c->from->kind), c->peer, msg);
}

/* ---- transcript (--verbose) ---- */

/* Logs one direction's bytes line by line. Client lines pass through the
 * adapter's mask; a server continuation masks the client's next line. */
static void transcript(conn *c, int from_client, const uint8_t *data,
                       size_t len) {
  if (!c->srv->opts->verbose)
    return;
  const char *p = (const char *)data;
  while (len > 0) {
    const char *nl = memchr(p, '\n', len);
    size_t seg = nl ? (size_t)(nl - p) + 1 : len;
    size_t text = seg;
    while (text > 0 && (p[text - 1] == '\n' || p[text - 1] == '\r'))
      text--;
    size_t show = text;
    int midline = from_client ? c->client_midline : c->server_midline;
    if (from_client) {
      if (!midline) {
        size_t vis = c->mask_next_line ? 0 : c->proto->visible(p, text);
        c->client_masking = vis < text;
        /* A masked line ending in a literal's "{n}" or "{n+}": the secret
         * follows, with no continuation to announce it under LITERAL+. */
        c->mask_next_line = c->client_masking && text > 0 && p[text - 1] == '}';
        show = vis < text ? vis : text;
      } else if (c->client_masking) {
        show = 0;
      }
      c->client_midline = nl == NULL;
    } else {
      const char *cont = c->proto->continuation;
      size_t k = strlen(cont);
      if (!midline && text >= k && memcmp(p, cont, k) == 0)
        c->mask_next_line = 1;
      c->server_midline = nl == NULL;
    }
    char clean[LOG_LINE_MAX / 2];
    log_clean(clean, sizeof clean, p, show);
    conn_log(c, "%c%c %s%s", from_client ? 'C' : 'S', midline ? '+' : ':',
             clean, show < text ? "****" : "");
    p += seg;
    len -= seg;
  }
}

/* ---- closing ---- */

void conn_close(conn *c, const char *reason) {
  server *srv = c->srv;
  /* The reason may point into TLS state freed below: log it first. */
  char why[256];
  snprintf(why, sizeof why, "%s", reason);
  if (c->session) {
    /* Frees the session: an unfinished delivery is aborted (logged by the
     * store wrapper), a pending delay op abandoned. */
    c->proto->destroy(c->session);
    c->session = NULL;
  }
  c->delay_op = NULL;
  store_wrap_release(c);
  conn_log(c, "disconnect: %s (in %llu, out %llu bytes)", why,
           (unsigned long long)c->bytes_in, (unsigned long long)c->bytes_out);
  list_unlink(&c->ready);
  list_unlink(&c->link);
  srv->conn_count--;
  loop_del(srv->loop, c->fd);
  transport_close(c);
  close(c->fd);
  mem_free(c->leftover);
  mem_free(c);
  server_conn_gone(srv);
}

/* Closes after a failure; the reason comes from the transport or the
 * session's error code. */
static void close_failed(conn *c, const char *what, int code) {
  char why[256];
  if (c->failed && c->fail_errno)
    snprintf(why, sizeof why, "%s: %s", c->fail_reason,
             strerror(c->fail_errno));
  else if (c->failed)
    snprintf(why, sizeof why, "%s", c->fail_reason);
  else
    snprintf(why, sizeof why, "%s: %s", what, mailproto_strerror(code));
  conn_close(c, why);
}

/* A line of our own (limit, timeout, shutdown), only where it cannot cut
 * into a reply the session is still sending. Best effort. */
static void say_goodbye(conn *c, proto_reply kind) {
  if (!c->started || c->tls_state == CONN_TLS_HANDSHAKE ||
      c->proto->want_write(c->session) || c->write_blocked ||
      transport_has_output(c))
    return;
  char line[256];
  size_t n = c->proto->reply(kind, c->srv->hostname, line, sizeof line);
  if (n == 0)
    return;
  ssize_t w = transport_write(c, (const uint8_t *)line, n);
  if (w > 0) {
    transcript(c, 0, (const uint8_t *)line, (size_t)w);
    c->bytes_out += (uint64_t)w;
  }
  (void)transport_flush(c);
}

/* ---- the session's callbacks ---- */

ptrdiff_t conn_send(conn *c, const uint8_t *data, size_t len) {
  if (c->failed)
    return MAILPROTO_ERR_CALLBACK_FAILURE;
  if (len == 0 || c->tls_state == CONN_TLS_HANDSHAKE)
    return 0;
  ssize_t n = transport_write(c, data, len);
  if (n < 0)
    return MAILPROTO_ERR_CALLBACK_FAILURE;
  if (n > 0) {
    transcript(c, 0, data, (size_t)n);
    c->bytes_out += (uint64_t)n;
    touch(c);
  }
  return (ptrdiff_t)n;
}

int conn_start_tls(conn *c) {
  /* Called from inside feed or writable: the handshake starts once that
   * call has returned (conn_pump). */
  c->tls_asked = 1;
  return 0;
}

void conn_wake(conn *c) {
  if (!list_linked(&c->ready))
    list_append(&c->srv->ready, &c->ready);
}

void conn_notify(conn *c) {
  c->sync_due = 1;
  conn_wake(c);
}

int conn_delay(conn *c, mailproto_op *op, unsigned ms) {
  if (c->delay_op)
    return 0;
  c->delay_op = op;
  c->delay_due_ms = server_clock_ms() + ms;
  server_timer_hint(c->srv, c->delay_due_ms);
  return MAILPROTO_DEFERRED;
}

/* ---- the pump ---- */

static void drop_leftover(conn *c) {
  mem_free(c->leftover);
  c->leftover = NULL;
  c->leftover_off = c->leftover_len = 0;
}

static int keep_leftover(conn *c, const uint8_t *rest, size_t len) {
  uint8_t *copy = mem_malloc(len);
  if (!copy)
    return -1;
  memcpy(copy, rest, len);
  drop_leftover(c);
  c->leftover = copy;
  c->leftover_len = len;
  return 0;
}

/* After STARTTLS/STLS: RFC 3207 4.2 and RFC 2595 3.1 -- nothing the client
 * sent before the handshake may be taken as a command after it. */
static int begin_starttls(conn *c) {
  c->tls_asked = 0;
  drop_leftover(c);
  return transport_tls_begin(c);
}

/* Each step returns 1 (progress), 0 (nothing to do now) or -1 (the
 * connection must close: *code or c->fail_* say why). */

static int step_handshake(conn *c, int *code) {
  int r = transport_tls_handshake(c);
  if (r == TRANSPORT_AGAIN)
    return 0;
  if (r == TRANSPORT_FAIL)
    return -1;
  char desc[96];
  transport_tls_describe(c, desc, sizeof desc);
  conn_log(c, "tls ok %s", desc);
  touch(c);
  if (!c->started) {
    /* Implicit TLS: the greeting goes out encrypted. */
    c->started = 1;
    *code = c->proto->start(c->session);
  } else {
    *code = c->proto->set_secure(c->session);
  }
  return *code < 0 ? -1 : 1;
}

static int step_output(conn *c, int *code) {
  int r = transport_flush(c);
  if (r == TRANSPORT_FAIL)
    return -1;
  if (r == TRANSPORT_AGAIN || c->write_blocked ||
      !c->proto->want_write(c->session))
    return 0;
  uint64_t before = c->bytes_out;
  *code = c->proto->writable(c->session);
  if (*code < 0 || c->failed)
    return -1;
  return c->bytes_out != before || c->tls_asked;
}

static int feed(conn *c, const uint8_t *data, size_t len, size_t *used,
                int *code) {
  ptrdiff_t n = c->proto->feed(c->session, data, len);
  if (n < 0 || c->failed) {
    *code = n < 0 ? (int)n : 0;
    return -1;
  }
  *used = (size_t)n;
  /* The contract: a session that wants input consumes some. One that
   * takes nothing yet still asks for more would spin this loop. */
  if (n == 0 && c->proto->want_read(c->session) &&
      !c->proto->want_write(c->session) && !c->proto->closed(c->session)) {
    *code = MAILPROTO_ERR_INTERNAL;
    return -1;
  }
  return 0;
}

static int step_input(conn *c, int *code) {
  if (!c->proto->want_read(c->session))
    return 0;
  size_t used;
  if (c->leftover_len > 0) {
    if (feed(c, c->leftover + c->leftover_off, c->leftover_len, &used, code) !=
        0)
      return -1;
    c->leftover_off += used;
    c->leftover_len -= used;
    if (c->leftover_len == 0 || c->tls_asked)
      drop_leftover(c);
    return used > 0;
  }
  if (c->eof)
    return 0;
  uint8_t *buf = c->srv->scratch;
  ssize_t n = transport_read(c, buf, SERVER_READ_CHUNK);
  if (n == TRANSPORT_AGAIN)
    return 0;
  if (n == TRANSPORT_FAIL)
    return -1;
  if (n == 0) {
    c->eof = 1;
    return 1;
  }
  c->bytes_in += (uint64_t)n;
  touch(c);
  transcript(c, 1, buf, (size_t)n);
  if (feed(c, buf, (size_t)n, &used, code) != 0)
    return -1;
  if (used < (size_t)n && !c->tls_asked &&
      keep_leftover(c, buf + used, (size_t)n - used) != 0) {
    *code = MAILPROTO_ERR_NOMEM;
    return -1;
  }
  return 1;
}

static void update_interest(conn *c) {
  int want_read = 0;
  if (c->started && c->tls_state != CONN_TLS_HANDSHAKE && !c->eof &&
      c->leftover_len == 0 && !c->tls_asked)
    want_read = c->proto->want_read(c->session);
  unsigned ev = transport_interest(c, want_read);
  if (loop_set(c->srv->loop, c->fd, ev) != 0) {
    c->failed = 1;
    c->fail_reason = "event loop";
    c->fail_errno = errno;
  }
}

/* Another session changed what this one shows (conn_notify). */
static int step_sync(conn *c, int *code) {
  if (!c->sync_due || !c->proto->sync)
    return 0;
  c->sync_due = 0;
  uint64_t before = c->bytes_out;
  *code = c->proto->sync(c->session);
  if (*code < 0 || c->failed)
    return -1;
  return c->bytes_out != before;
}

/* Returns 1 if the connection was closed. */
static int run(conn *c) {
  int code = 0;
  for (int round = 0; round < PUMP_ROUNDS; round++) {
    int progress = 0, r;
    if (c->tls_state == CONN_TLS_HANDSHAKE) {
      r = step_handshake(c, &code);
      if (r < 0)
        goto failed;
      if (r == 0)
        return 0;
      continue;
    }
    if (!c->started)
      return 0;
    if ((r = step_sync(c, &code)) < 0)
      goto failed;
    progress |= r;
    if ((r = step_output(c, &code)) < 0)
      goto failed;
    progress |= r;
    if (!c->tls_asked) {
      if ((r = step_input(c, &code)) < 0)
        goto failed;
      progress |= r;
    }
    if (c->tls_asked) {
      if (begin_starttls(c) != 0)
        goto failed;
      continue;
    }
    /* Closed, and the last reply (QUIT's) is out of the TLS buffer too. */
    if (c->proto->closed(c->session) && !transport_has_output(c)) {
      conn_close(c, "session ended");
      return 1;
    }
    if (!progress)
      return 0;
  }
  /* Out of rounds with work left: come back after the others had a turn. */
  conn_wake(c);
  return 0;
failed:
  close_failed(c, "session", code);
  return 1;
}

int conn_pump(conn *c) {
  if (run(c))
    return 1;
  /* The client stopped sending and everything it sent was handled: once
   * our output is out, we are done. A deferred operation (neither read nor
   * write wanted) finishes first -- it may be a commit. */
  if (c->eof && c->started && c->tls_state != CONN_TLS_HANDSHAKE &&
      c->leftover_len == 0 && !list_linked(&c->ready) &&
      !c->proto->want_write(c->session) && !c->write_blocked &&
      !transport_has_output(c) &&
      (c->proto->want_read(c->session) || c->proto->closed(c->session))) {
    conn_close(c, "client closed the connection");
    return 1;
  }
  update_interest(c);
  if (c->failed) {
    close_failed(c, "event loop", 0);
    return 1;
  }
  if (c->srv->stopping)
    return conn_try_shutdown(c);
  return 0;
}

static void on_event(void *arg, unsigned events) {
  conn *c = arg;
  if (events & (LOOP_WRITE | LOOP_HUP))
    c->write_blocked = 0;
  (void)conn_pump(c);
}

/* ---- timers and shutdown ---- */

uint64_t conn_timers(conn *c, uint64_t now, int *closed) {
  *closed = 0;
  if (c->delay_op && now >= c->delay_due_ms) {
    mailproto_op *op = c->delay_op;
    c->delay_op = NULL;
    /* The session resumes inside this call and may send; what it wants
     * next is looked at by the pump of the next loop turn. */
    int rc = mailproto_op_complete(op, 0);
    if (rc < 0 && mailproto_is_fatal(rc)) {
      close_failed(c, "session", rc);
      *closed = 1;
      return UINT64_MAX;
    }
    conn_wake(c);
  }
  if (c->proto->keepalive && now >= c->keepalive_ms) {
    c->keepalive_ms = now + keepalive_period(c);
    if (c->started && c->tls_state != CONN_TLS_HANDSHAKE) {
      int rc = c->proto->keepalive(c->session);
      if (rc < 0 || c->failed) {
        close_failed(c, "session", rc);
        *closed = 1;
        return UINT64_MAX;
      }
      conn_wake(c);
    }
  }
  if (now >= c->deadline_ms) {
    say_goodbye(c, PROTO_REPLY_TIMEOUT);
    conn_close(c, "idle timeout");
    *closed = 1;
    return UINT64_MAX;
  }
  uint64_t next = c->deadline_ms;
  if (c->delay_op && c->delay_due_ms < next)
    next = c->delay_due_ms;
  if (c->keepalive_ms < next)
    next = c->keepalive_ms;
  return next;
}

int conn_try_shutdown(conn *c) {
  if (c->started && c->tls_state != CONN_TLS_HANDSHAKE) {
    void *s = c->session;
    int deferred = !c->proto->want_read(s) && !c->proto->want_write(s) &&
                   !c->proto->closed(s);
    /* Work in flight: a delivery or append not yet committed, a deferred
     * operation, a reply still draining. */
    if (store_wrap_busy(c) || deferred || c->delay_op ||
        c->proto->want_write(s) || c->write_blocked || transport_has_output(c))
      return 0;
  }
  say_goodbye(c, PROTO_REPLY_SHUTDOWN);
  conn_close(c, "server shutting down");
  return 1;
}

/* ---- accepting ---- */

static void refuse(server *srv, const listener *ls, int fd, const char *peer) {
  /* Implicit TLS ports cannot be told anything before a handshake. */
  if (!ls->implicit_tls) {
    char line[256];
    size_t n =
        ls->proto->reply(PROTO_REPLY_BUSY, srv->hostname, line, sizeof line);
    if (n > 0)
      (void)send(fd, line, n, MSG_NOSIGNAL);
  }
  log_line("%s %s refused: %zu connections open (--max-connections %u)",
           options_listener_name(ls->kind), peer, srv->conn_count,
           srv->opts->max_connections);
  close(fd);
}

void conn_accept(server *srv, const listener *ls, int fd,
                 const struct sockaddr *peer) {
  char peer_text[ADDRESS_TEXT_MAX];
  address_format(peer, peer_text, sizeof peer_text);
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    log_line("%s %s: fcntl: %s", options_listener_name(ls->kind), peer_text,
             strerror(errno));
    close(fd);
    return;
  }
  if (srv->conn_count >= srv->opts->max_connections) {
    refuse(srv, ls, fd, peer_text);
    return;
  }
  conn *c = mem_calloc(1, sizeof *c);
  if (!c) {
    log_line("%s %s: out of memory", options_listener_name(ls->kind),
             peer_text);
    close(fd);
    return;
  }
  list_init(&c->link);
  list_init(&c->ready);
  c->srv = srv;
  c->from = ls;
  c->proto = ls->proto;
  c->fd = fd;
  c->id = ++srv->next_conn_id;
  memcpy(c->peer, peer_text, sizeof c->peer);
  store_wrap_init(c);
  list_append(&srv->conns, &c->link);
  srv->conn_count++;
  touch(c);
  server_timer_hint(srv, c->deadline_ms);
  c->keepalive_ms = UINT64_MAX;
  if (c->proto->keepalive && c->proto->keepalive_ms) {
    c->keepalive_ms = server_clock_ms() + keepalive_period(c);
    server_timer_hint(srv, c->keepalive_ms);
  }

  /* Replies are batched by the session; Nagle would only delay them. */
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  conn_log(c, "connect (%zu of %u)", srv->conn_count,
           srv->opts->max_connections);
  if (loop_add(srv->loop, fd, 0, on_event, c) != 0) {
    char why[128];
    snprintf(why, sizeof why, "event loop: %s", strerror(errno));
    conn_close(c, why);
    return;
  }

  char client[ADDRESS_TEXT_MAX];
  address_client_literal(peer, client, sizeof client);
  proto_env env;
  env.hostname = srv->hostname;
  env.store = &c->store;
  env.client = client;
  env.secure = ls->implicit_tls;
  env.starttls = srv->tls != NULL && !ls->implicit_tls;
  env.allow_insecure_auth =
      srv->opts->allow_insecure_auth || address_is_loopback(peer);
  int rc = c->proto->create(c, &env, &c->session);
  if (rc < 0) {
    close_failed(c, "session", rc);
    return;
  }
  if (ls->implicit_tls) {
    if (transport_tls_begin(c) != 0) {
      close_failed(c, "tls", 0);
      return;
    }
  } else {
    c->started = 1;
    rc = c->proto->start(c->session);
    if (rc < 0) {
      close_failed(c, "session", rc);
      return;
    }
  }
  (void)conn_pump(c);
}
