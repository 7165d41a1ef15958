/*
 * One client connection: a non-blocking socket (plain or TLS), the session
 * its protocol adapter made, and the glue between them that follows the
 * session contract:
 *  - bytes read are fed to the session; what it does not consume now is
 *    kept (bounded by one read) and fed again once it wants to read;
 *  - the send callback writes what the socket takes now and reports the
 *    count; a short write arms LOOP_WRITE, and the session's writable()
 *    runs when the socket drains;
 *  - want_read/want_write decide the loop interest; neither (a deferred
 *    operation) parks the connection until something pumps it again;
 *  - closed() closes the socket.
 */
#ifndef MAILPROTO_SERVER_CONN_H
#define MAILPROTO_SERVER_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "log.h"
#include "server.h"

typedef enum conn_tls_state {
  CONN_TLS_OFF,
  CONN_TLS_HANDSHAKE,
  CONN_TLS_ON
} conn_tls_state;

struct conn {
  list_node link;  /* in srv->conns */
  list_node ready; /* in srv->ready while it must be pumped */
  server *srv;
  const listener *from;
  const proto_adapter *proto;
  void *session;
  mailproto_store store; /* the wrapper of srv->store (store_wrap.h) */
  int fd;
  uint64_t id;
  char peer[ADDRESS_TEXT_MAX];

  tls_conn *tls;
  conn_tls_state tls_state;

  unsigned started : 1;       /* the session's start() ran */
  unsigned write_blocked : 1; /* the socket took less than offered */
  unsigned eof : 1;           /* the client finished sending */
  unsigned tls_asked : 1;     /* start_tls called: handshake after feed */
  unsigned failed : 1;        /* a socket error ended the connection */
  /* Transcript state: inside a client line, masking it, mask next line. */
  unsigned client_midline : 1;
  unsigned client_masking : 1;
  unsigned mask_next_line : 1;
  unsigned server_midline : 1;
  unsigned sync_due : 1; /* conn_notify(): the session's sync hook is due */

  /* Input the session did not consume yet. */
  uint8_t *leftover;
  size_t leftover_off;
  size_t leftover_len;

  uint64_t deadline_ms;   /* idle timeout */
  uint64_t keepalive_ms;  /* next keepalive hook (UINT64_MAX: none) */
  mailproto_op *delay_op; /* a deferred POP3 login-failure delay */
  uint64_t delay_due_ms;
  list_node writers;    /* deliveries or appends in flight (store_wrap) */
  void *secret_account; /* looked up for CRAM-MD5/APOP, not yet verified */
  char secret_user[65];
  uint64_t bytes_in;
  uint64_t bytes_out;
  const char *fail_reason;
  int fail_errno;
};

/* A new connection from listener `ls`, or a polite refusal when the limit
 * is reached. Takes ownership of `fd`. */
void conn_accept(server *srv, const listener *ls, int fd,
                 const struct sockaddr *peer);
/* Runs the connection until it waits for the socket, a deferred operation
 * or a timer. Returns 1 if it closed (and freed) the connection. */
int conn_pump(conn *c);
/* Closes and frees the connection, logging `reason`. */
void conn_close(conn *c, const char *reason);
/* Fires timers due at `now`; may close the connection. Otherwise returns
 * the next time it needs a timer check (UINT64_MAX: none). */
uint64_t conn_timers(conn *c, uint64_t now, int *closed);
/* The server is stopping: closes the connection with the protocol's
 * goodbye unless it is in the middle of work that must finish (a
 * delivery, a deferred operation, output to drain). Returns 1 if closed. */
int conn_try_shutdown(conn *c);

/* Schedules a pump from the event loop (never from here): for whatever
 * finishes outside the socket's own events -- a deferred operation
 * completed, a store notification. Safe from inside any callback. */
void conn_wake(conn *c);
/* The store reported a change to what the session shows (its wakeup
 * callback): the pump calls the adapter's sync hook. Safe from inside any
 * callback, including another connection's. */
void conn_notify(conn *c);

/* For the adapters: the session callbacks' side. */
ptrdiff_t conn_send(conn *c, const uint8_t *data, size_t len);
int conn_start_tls(conn *c);
/* Arms a timer that completes `op` after `ms`; returns MAILPROTO_DEFERRED,
 * or 0 (no wait) if another delay is already running. */
int conn_delay(conn *c, mailproto_op *op, unsigned ms);
/* Logs "#ID PROTO PEER " followed by the formatted text. */
void conn_log(conn *c, const char *fmt, ...) LOG_PRINTF(2, 3);

#endif
