#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "log.h"
#include "mem.h"

/* Connections accepted per readiness event of one listener. */
enum { ACCEPT_BATCH = 64 };

/* Which adapter serves each listener. Adding a protocol: its adapter
 * file, and its entries here. */
static const proto_adapter *const adapters[LISTEN_COUNT] = {
    [LISTEN_SMTP] = &proto_smtp,  [LISTEN_LMTP] = &proto_lmtp,
    [LISTEN_POP3] = &proto_pop3,  [LISTEN_IMAP] = &proto_imap,
    [LISTEN_SMTPS] = &proto_smtp, [LISTEN_POP3S] = &proto_pop3,
    [LISTEN_IMAPS] = &proto_imap,
};
static const int implicit_tls[LISTEN_COUNT] = {
    [LISTEN_SMTPS] = 1, [LISTEN_POP3S] = 1, [LISTEN_IMAPS] = 1};

/* The write end of the self-pipe, for the signal handler. */
static volatile sig_atomic_t signal_fd = -1;

uint64_t server_clock_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void server_timer_hint(server *srv, uint64_t due_ms) {
  if (due_ms < srv->next_timer_ms)
    srv->next_timer_ms = due_ms;
}

static void on_signal(int sig) {
  /* After cleanup (signal_fd -1) a late signal changes nothing: the
   * process is already on its way to exit 0. */
  if (signal_fd < 0)
    return;
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  ssize_t r = write(signal_fd, &b, 1);
  (void)r; /* a full pipe already holds a wake-up */
  errno = saved;
}

static int set_flags(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
                 fcntl(fd, F_SETFD, FD_CLOEXEC) != 0
             ? -1
             : 0;
}

/* ---- listeners ---- */

static void set_listeners(server *srv, unsigned events) {
  for (size_t i = 0; i < srv->listener_count; i++)
    if (srv->listeners[i].fd >= 0)
      (void)loop_set(srv->loop, srv->listeners[i].fd, events);
}

static void pause_listeners(server *srv, int err) {
  if (srv->listeners_paused)
    return;
  log_line("accept: %s; not accepting for %u ms", strerror(err),
           SERVER_ACCEPT_PAUSE_MS);
  set_listeners(srv, 0);
  srv->listeners_paused = 1;
  srv->listeners_resume_at = server_clock_ms() + SERVER_ACCEPT_PAUSE_MS;
}

static void resume_listeners(server *srv) {
  if (!srv->listeners_paused || srv->stopping)
    return;
  srv->listeners_paused = 0;
  set_listeners(srv, LOOP_READ);
}

static void on_accept(void *arg, unsigned events) {
  (void)events;
  listener *ls = arg;
  server *srv = ls->srv;
  for (int i = 0; i < ACCEPT_BATCH && !srv->stopping; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = accept(ls->fd, (struct sockaddr *)&ss, &len);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
          errno == ENOMEM) {
        /* Level-triggered: the pending connection would wake us again at
         * once. Wait for a descriptor to be freed instead. */
        pause_listeners(srv, errno);
        return;
      }
      log_line("accept on %s: %s", ls->address, strerror(errno));
      return;
    }
    conn_accept(srv, ls, fd, (struct sockaddr *)&ss);
  }
}

static int open_listener(server *srv, listener_kind kind,
                         const listen_addr *a) {
  listener *ls = &srv->listeners[srv->listener_count];
  memset(ls, 0, sizeof *ls);
  ls->srv = srv;
  ls->kind = kind;
  ls->proto = adapters[kind];
  ls->implicit_tls = implicit_tls[kind];
  ls->fd = -1;
  address_format((const struct sockaddr *)&a->ss, ls->address,
                 sizeof ls->address);
  const char *name = options_listener_name(kind);
  if (!ls->proto) {
    log_line("%s is not available in this build", name);
    return -1;
  }
  int fd = socket(a->ss.ss_family, SOCK_STREAM, 0);
  if (fd < 0 || set_flags(fd) != 0)
    goto failed;
  int one = 1;
  (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  /* Let "0.0.0.0:N" and "[::]:N" be two listeners, as on most systems. */
  if (a->ss.ss_family == AF_INET6 &&
      setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0)
    goto failed;
  if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 ||
      listen(fd, SOMAXCONN) != 0)
    goto failed;
  /* With port 0 the system chose one: log the real address. */
  struct sockaddr_storage bound;
  socklen_t blen = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
    address_format((const struct sockaddr *)&bound, ls->address,
                   sizeof ls->address);
  if (loop_add(srv->loop, fd, LOOP_READ, on_accept, ls) != 0)
    goto failed;
  ls->fd = fd;
  srv->listener_count++;
  log_line("listening %s on %s", name, ls->address);
  return 0;
failed:
  log_line("cannot listen for %s on %s: %s", name, ls->address,
           strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

static void close_listeners(server *srv) {
  for (size_t i = 0; i < srv->listener_count; i++) {
    listener *ls = &srv->listeners[i];
    if (ls->fd < 0)
      continue;
    loop_del(srv->loop, ls->fd);
    close(ls->fd);
    ls->fd = -1;
  }
}

/* ---- stopping ---- */

static void close_all(server *srv, const char *reason) {
  while (!list_empty(&srv->conns))
    conn_close(LIST_ENTRY(srv->conns.next, conn, link), reason);
}

static void begin_stop(server *srv) {
  srv->stopping = 1;
  srv->stop_deadline = server_clock_ms() + SERVER_SHUTDOWN_GRACE_MS;
  close_listeners(srv);
  log_line("stopping: no new connections; %zu open", srv->conn_count);
  /* Closing one connection never closes another, so `next` stays valid. */
  list_node *n = srv->conns.next;
  while (n != &srv->conns) {
    list_node *next = n->next;
    (void)conn_try_shutdown(LIST_ENTRY(n, conn, link));
    n = next;
  }
}

static void on_signal_pipe(void *arg, unsigned events) {
  (void)events;
  server *srv = arg;
  unsigned char buf[64];
  ssize_t n;
  while ((n = read(srv->signal_pipe[0], buf, sizeof buf)) > 0) {
    for (ssize_t i = 0; i < n; i++) {
      if (!srv->stopping) {
        log_line("signal %d: stopping", buf[i]);
        begin_stop(srv);
      } else if (srv->running) {
        log_line("signal %d again: closing every connection now", buf[i]);
        close_all(srv, "server stopped");
        srv->running = 0;
      }
    }
  }
}

void server_conn_gone(server *srv) {
  /* A descriptor was freed: accept() can work again. */
  resume_listeners(srv);
}

static int setup_signals(server *srv) {
  if (pipe(srv->signal_pipe) != 0 || set_flags(srv->signal_pipe[0]) != 0 ||
      set_flags(srv->signal_pipe[1]) != 0)
    return -1;
  signal_fd = srv->signal_pipe[1];
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
    return -1;
  /* A client that vanishes mid-write is an EPIPE, not a dead server. */
  sa.sa_handler = SIG_IGN;
  if (sigaction(SIGPIPE, &sa, NULL) != 0)
    return -1;
  return loop_add(srv->loop, srv->signal_pipe[0], LOOP_READ, on_signal_pipe,
                  srv);
}

/* Every connection is a descriptor: take what the hard limit allows. */
static void raise_fd_limit(const server *srv) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
    (void)getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t need = (rlim_t)srv->opts->max_connections + 32;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    log_line("warning: %llu file descriptors allowed; --max-connections %u "
             "needs about %llu",
             (unsigned long long)rl.rlim_cur, srv->opts->max_connections,
             (unsigned long long)need);
}

int server_init(server *srv, const server_options *opts, const char *hostname,
                const mailproto_store *store, tls_server *tls,
                loop_backend backend) {
  memset(srv, 0, sizeof *srv);
  srv->opts = opts;
  srv->hostname = hostname;
  srv->store = *store;
  srv->tls = tls;
  srv->signal_pipe[0] = srv->signal_pipe[1] = -1;
  srv->next_timer_ms = UINT64_MAX;
  list_init(&srv->conns);
  list_init(&srv->ready);
  const char *t = getenv("MAILPROTO_SERVER_IDLE_TIMEOUT_MS");
  if (t && *t) {
    char *end;
    unsigned long v = strtoul(t, &end, 10);
    srv->timeout_override_ms =
        *end == '\0' && v > 0 && v <= UINT_MAX ? (unsigned)v : 0;
  }
  srv->scratch = mem_malloc(SERVER_READ_CHUNK);
  if (!srv->scratch) {
    log_line("out of memory");
    return -1;
  }
  if (loop_new(backend, &srv->loop) != 0) {
    log_line("event loop: %s", strerror(errno));
    return -1;
  }
  if (setup_signals(srv) != 0) {
    log_line("signals: %s", strerror(errno));
    return -1;
  }
  raise_fd_limit(srv);
  for (int k = 0; k < LISTEN_COUNT; k++)
    if (opts->listen[k].enabled &&
        open_listener(srv, (listener_kind)k, &opts->listen[k]) != 0)
      return -1;
  return 0;
}

/* ---- the loop ---- */

static int next_timeout(const server *srv, uint64_t now) {
  if (!list_empty(&srv->ready))
    return 0;
  uint64_t due = srv->next_timer_ms;
  if (srv->listeners_paused && srv->listeners_resume_at < due)
    due = srv->listeners_resume_at;
  if (srv->stopping && srv->stop_deadline < due)
    due = srv->stop_deadline;
  if (due == UINT64_MAX)
    return -1;
  if (due <= now)
    return 0;
  uint64_t wait = due - now;
  return wait > (uint64_t)INT_MAX ? INT_MAX : (int)wait;
}

static void run_ready(server *srv) {
  list_node batch;
  list_take(&batch, &srv->ready);
  while (!list_empty(&batch)) {
    conn *c = LIST_ENTRY(batch.next, conn, ready);
    list_unlink(&c->ready);
    (void)conn_pump(c);
  }
}

static void run_timers(server *srv, uint64_t now) {
  if (now < srv->next_timer_ms)
    return;
  uint64_t next = UINT64_MAX;
  list_node *n = srv->conns.next;
  while (n != &srv->conns) {
    list_node *following = n->next;
    int closed;
    uint64_t due = conn_timers(LIST_ENTRY(n, conn, link), now, &closed);
    if (!closed && due < next)
      next = due;
    n = following;
  }
  srv->next_timer_ms = next;
}

int server_run(server *srv) {
  srv->running = 1;
  while (srv->running) {
    srv->now_ms = server_clock_ms();
    if (loop_wait(srv->loop, next_timeout(srv, srv->now_ms)) < 0) {
      if (errno != ENOMEM) {
        log_line("event loop: %s", strerror(errno));
        return -1;
      }
      /* Level-triggered: the events come again once memory is back. */
      log_line("event loop: out of memory; retrying in 100 ms");
      (void)poll(NULL, 0, 100);
    }
    srv->now_ms = server_clock_ms();
    run_timers(srv, srv->now_ms);
    run_ready(srv);
    if (srv->listeners_paused && srv->now_ms >= srv->listeners_resume_at)
      resume_listeners(srv);
    if (srv->stopping && srv->conn_count == 0)
      break;
    if (srv->stopping && srv->now_ms >= srv->stop_deadline) {
      log_line("stopping: %zu connections still busy after %u ms; closing "
               "them",
               srv->conn_count, SERVER_SHUTDOWN_GRACE_MS);
      close_all(srv, "server stopped");
      break;
    }
  }
  srv->running = 0;
  log_line("stopped");
  return 0;
}

void server_cleanup(server *srv) {
  if (srv->loop) {
    close_all(srv, "server stopped");
    close_listeners(srv);
    if (srv->signal_pipe[0] >= 0)
      loop_del(srv->loop, srv->signal_pipe[0]);
  }
  signal_fd = -1;
  for (int i = 0; i < 2; i++)
    if (srv->signal_pipe[i] >= 0)
      close(srv->signal_pipe[i]);
  loop_free(srv->loop);
  mem_free(srv->scratch);
  memset(srv, 0, sizeof *srv);
}
