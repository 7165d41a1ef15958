/*
 * The server: listeners, connections, timers and shutdown around one event
 * loop. Single-threaded; everything runs from server_run().
 */
#ifndef MAILPROTO_SERVER_SERVER_H
#define MAILPROTO_SERVER_SERVER_H

#include <stdint.h>

#include "list.h"
#include "loop.h"
#include "mailproto/mailproto.h"
#include "options.h"
#include "proto.h"
#include "tls.h"

/* Bytes read from a socket at once; shared by all connections (only what
 * a session does not consume at once is copied to the connection). */
#define SERVER_READ_CHUNK 65536
/* How long in-flight deliveries may take after SIGTERM before the server
 * closes whatever is left. */
#define SERVER_SHUTDOWN_GRACE_MS 30000u
/* Pause of the listeners after accept() ran out of descriptors. */
#define SERVER_ACCEPT_PAUSE_MS 1000u

typedef struct server server;

typedef struct listener {
  server *srv;
  listener_kind kind;
  const proto_adapter *proto;
  int implicit_tls;
  int fd;
  char address[ADDRESS_TEXT_MAX];
} listener;

struct server {
  const server_options *opts;
  const char *hostname;
  mailproto_store store; /* the backend every connection wraps */
  tls_server *tls;       /* NULL: no TLS */
  loop *loop;

  listener listeners[LISTEN_COUNT];
  size_t listener_count;
  int listeners_paused;
  uint64_t listeners_resume_at;

  list_node conns; /* every connection */
  list_node ready; /* connections to pump without a socket event */
  size_t conn_count;
  uint64_t next_conn_id;
  uint64_t next_timer_ms;       /* earliest deadline of any connection */
  unsigned timeout_override_ms; /* MAILPROTO_SERVER_IDLE_TIMEOUT_MS, or 0 */

  int signal_pipe[2];
  int stopping;
  uint64_t stop_deadline;
  int running;

  uint64_t now_ms; /* monotonic, at the start of the current loop turn */
  uint8_t *scratch;
};

/* Sets up the loop, the signal handlers and the listeners. `store` and
 * `tls` (may be NULL) are borrowed. Returns 0, or -1 after logging why. */
int server_init(server *srv, const server_options *opts, const char *hostname,
                const mailproto_store *store, tls_server *tls,
                loop_backend backend);
/* Runs until SIGTERM/SIGINT and the end of in-flight work. Returns 0, or
 * -1 if the loop itself failed. */
int server_run(server *srv);
/* Closes every connection and listener; frees what server_init made. */
void server_cleanup(server *srv);

/* Milliseconds of the monotonic clock. */
uint64_t server_clock_ms(void);
/* A connection's deadline moved earlier than the next timer scan. */
void server_timer_hint(server *srv, uint64_t due_ms);
/* A connection closed: resume paused listeners, finish a shutdown. */
void server_conn_gone(server *srv);

#endif
