/*
 * Load on the example server over loopback, each figure printed with its
 * conditions and beside a reference measured in the same run:
 *  - SMTP messages per second with N concurrent pipelining clients, on the
 *    memory store (protocol and event-loop cost) and on the Maildir store
 *    with fsync (durable delivery);
 *  - POP3 RETR throughput in MB/s, beside a plain loopback TCP copy of the
 *    same number of bytes (the transport's own ceiling);
 *  - the server's resident memory per idle connection: RSS growth over
 *    1,000 idle connections (/proc/PID/status VmRSS).
 *
 *   bench_server --server PATH [--quick]
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
static void
die(const char *fmt, ...);

/* The server running now, so a failure does not leave it behind. */
static struct server *running;
static void server_discard(struct server *s);

static void die(const char *fmt, ...) {
  if (running)
    server_discard(running);
  va_list ap;
  va_start(ap, fmt);
  fputs("bench_server: ", stderr);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

/* ---- the server process ---- */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

struct server {
  pid_t pid;
  int smtp_port;
  int pop3_port;
  char dir[64];
  char log[96];
};
typedef struct server server;

static int find_port(const char *log, const char *proto) {
  char key[64];
  snprintf(key, sizeof key, "listening %s on 127.0.0.1:", proto);
  const char *p = strstr(log, key);
  return p ? atoi(p + strlen(key)) : 0;
}

static char *read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 16);
  size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  if (buf)
    buf[n] = '\0';
  return buf;
}

/* Starts the server with the Maildir store (memory == 0) or the memory
 * store; its log goes to a file so a busy log never blocks it. */
static void server_start(server *s, const char *path, int memory,
                         unsigned max_conns) {
  memset(s, 0, sizeof *s);
  snprintf(s->dir, sizeof s->dir, "/tmp/mailproto-bench-XXXXXX");
  if (!mkdtemp(s->dir))
    die("mkdtemp: %s", strerror(errno));
  snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
  char maildir[96], conns[16];
  snprintf(maildir, sizeof maildir, "%s/maildata", s->dir);
  snprintf(conns, sizeof conns, "%u", max_conns);
  s->pid = fork();
  if (s->pid < 0)
    die("fork: %s", strerror(errno));
  if (s->pid > 0)
    running = s;
  if (s->pid == 0) {
    int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 2) < 0)
      _exit(127);
    /* execv wants writable strings: copies of ours. */
    static char store[16][256];
    char *args[16];
    /* IMAP's fixed default port would clash with other servers. */
    const char *list[] = {path,          memory ? "--memory" : "--maildir",
                          maildir,       "--smtp",
                          "127.0.0.1:0", "--pop3",
                          "127.0.0.1:0", "--imap",
                          "off",         "--user",
                          "bench:bench", "--max-connections",
                          conns};
    int n = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) {
      if (memory && list[i] == maildir)
        continue;
      snprintf(store[n], sizeof store[n], "%s", list[i]);
      args[n] = store[n];
      n++;
    }
    args[n] = NULL;
    execv(path, args);
    _exit(127);
  }
  for (int i = 0; i < 400; i++) {
    char *log = read_file(s->log);
    if (log && strstr(log, "ready; try:")) {
      s->smtp_port = find_port(log, "smtp");
      s->pop3_port = find_port(log, "pop3");
      free(log);
      if (!s->smtp_port || !s->pop3_port)
        die("no listening ports in the server log");
      return;
    }
    free(log);
    int st;
    if (waitpid(s->pid, &st, WNOHANG) == s->pid)
      die("the server exited at start");
    sleep_ms(50);
  }
  die("the server did not get ready");
}

static void remove_dir(const char *dir) {
  char cmd[160];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_server: could not remove %s\n", dir);
}

/* After a failure: kill the server, keep its log next to the error. */
static void server_discard(server *s) {
  running = NULL;
  kill(s->pid, SIGKILL);
  waitpid(s->pid, NULL, 0);
  char *log = read_file(s->log);
  if (log)
    fprintf(stderr, "---- server log:\n%s---- end of server log\n", log);
  free(log);
  remove_dir(s->dir);
}

static void server_stop(server *s) {
  kill(s->pid, SIGTERM);
  int st;
  running = NULL;
  if (waitpid(s->pid, &st, 0) != s->pid || !WIFEXITED(st) ||
      WEXITSTATUS(st) != 0) {
    char *log = read_file(s->log);
    die("the server did not exit 0 after SIGTERM; its log:\n%s",
        log ? log : "(none)");
  }
  remove_dir(s->dir);
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static int connect_to(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    die("socket: %s", strerror(errno));
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(0x7f000001);
  struct sockaddr sa;
  memcpy(&sa, &a, sizeof sa);
  if (connect(fd, &sa, sizeof a) != 0)
    die("connect to %d: %s", port, strerror(errno));
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

/* Reads one line (through LF) into buf; returns its length. */
static size_t read_line(int fd, char *buf, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    ssize_t r = read(fd, buf + n, 1);
    if (r <= 0)
      die("connection closed while reading a line");
    if (buf[n++] == '\n')
      break;
  }
  buf[n] = '\0';
  return n;
}

/* ---- SMTP load: N clients, each a little state machine ---- */

typedef struct client {
  int fd;
  int state;
  int expect;    /* final replies still awaited in this state */
  unsigned sent; /* messages acknowledged */
  unsigned quota;
  char in[4096];
  size_t in_len;
  const uint8_t *out;
  size_t out_len;
  size_t out_off;
} client;

enum { C_GREET, C_EHLO, C_ENVELOPE, C_DATA, C_QUIT, C_DONE };

static const char envelope[] = "MAIL FROM:<load@example.org>\r\n"
                               "RCPT TO:<bench@localhost>\r\nDATA\r\n";

/* The message with dots stuffed and the end-of-data line. */
static uint8_t *make_message(size_t size, size_t *len) {
  uint8_t *text = malloc(size);
  uint8_t *msg = malloc(2 * size + 64);
  if (!text || !msg)
    die("out of memory");
  bench_fill_mail_text(text, size, 42);
  size_t n = (size_t)sprintf((char *)msg, "Subject: load\r\n\r\n");
  int bol = 1;
  for (size_t i = 0; i < size; i++) {
    if (bol && text[i] == '.')
      msg[n++] = '.'; /* RFC 5321 4.5.2 */
    msg[n++] = text[i];
    bol = text[i] == '\n';
  }
  if (!bol) {
    msg[n++] = '\r';
    msg[n++] = '\n';
  }
  memcpy(msg + n, ".\r\n", 3);
  *len = n + 3;
  free(text);
  return msg;
}

static void client_send(client *c, const void *data, size_t len, int state,
                        int expect) {
  c->out = data;
  c->out_len = len;
  c->out_off = 0;
  c->state = state;
  c->expect = expect;
}

/* One final reply arrived with `code`: advance the state machine. */
static void client_reply(client *c, int code, const uint8_t *msg,
                         size_t msg_len) {
  static const int want[] = {220, 250, 0, 250, 221};
  if (c->state == C_ENVELOPE) {
    int w = c->expect == 1 ? 354 : 250;
    if (code != w)
      die("SMTP: got %d, expected %d", code, w);
  } else if (code != want[c->state]) {
    die("SMTP: got %d, expected %d in state %d", code, want[c->state],
        c->state);
  }
  if (--c->expect > 0)
    return;
  switch (c->state) {
  case C_GREET:
    client_send(c, "EHLO bench\r\n", 12, C_EHLO, 1);
    break;
  case C_ENVELOPE:
    client_send(c, msg, msg_len, C_DATA, 1);
    break;
  case C_DATA:
  case C_EHLO:
    if (c->state == C_DATA)
      c->sent++;
    if (c->sent < c->quota)
      client_send(c, envelope, sizeof envelope - 1, C_ENVELOPE, 3);
    else
      client_send(c, "QUIT\r\n", 6, C_QUIT, 1);
    break;
  case C_QUIT:
    c->state = C_DONE;
    break;
  }
}

static void client_read(client *c, const uint8_t *msg, size_t msg_len) {
  ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (r <= 0)
    die("SMTP: the server closed a connection");
  c->in_len += (size_t)r;
  char *start = c->in;
  char *nl;
  while ((nl = memchr(start, '\n', c->in_len - (size_t)(start - c->in)))) {
    if (nl - start >= 4 && start[3] == ' ')
      client_reply(c, atoi(start), msg, msg_len);
    start = nl + 1;
  }
  c->in_len -= (size_t)(start - c->in);
  memmove(c->in, start, c->in_len);
}

static double run_smtp(int port, unsigned nclients, unsigned messages,
                       const uint8_t *msg, size_t msg_len) {
  client *cs = calloc(nclients, sizeof *cs);
  struct pollfd *pf = calloc(nclients, sizeof *pf);
  if (!cs || !pf)
    die("out of memory");
  double t0 = bench_now();
  for (unsigned i = 0; i < nclients; i++) {
    cs[i].fd = connect_to(port);
    fcntl(cs[i].fd, F_SETFL, O_NONBLOCK);
    cs[i].quota = messages / nclients + (i < messages % nclients);
    cs[i].state = C_GREET;
    cs[i].expect = 1;
  }
  unsigned done = 0;
  while (done < nclients) {
    for (unsigned i = 0; i < nclients; i++) {
      pf[i].fd = cs[i].state == C_DONE ? -1 : cs[i].fd;
      pf[i].events = POLLIN;
      if (cs[i].out_off < cs[i].out_len)
        pf[i].events |= POLLOUT;
    }
    if (poll(pf, nclients, 30000) <= 0)
      die("SMTP: no progress for 30 s");
    for (unsigned i = 0; i < nclients; i++) {
      client *c = &cs[i];
      if (c->state == C_DONE)
        continue;
      if ((pf[i].revents & POLLOUT) && c->out_off < c->out_len) {
        ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (w > 0)
          c->out_off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
          die("SMTP write: %s", strerror(errno));
      }
      if (pf[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        client_read(c, msg, msg_len);
        if (c->state == C_DONE) {
          close(c->fd);
          done++;
        }
      }
    }
  }
  double t = bench_now() - t0;
  free(cs);
  free(pf);
  return t;
}

/* ---- POP3 RETR ---- */

static double run_retr(int port, unsigned first, unsigned count,
                       uint64_t *bytes) {
  int fd = connect_to(port);
  char line[512];
  read_line(fd, line, sizeof line);
  const char *login = "USER bench\r\nPASS bench\r\n";
  if (write(fd, login, strlen(login)) < 0)
    die("POP3 write: %s", strerror(errno));
  read_line(fd, line, sizeof line);
  read_line(fd, line, sizeof line);
  if (strncmp(line, "+OK", 3) != 0)
    die("POP3 login failed: %s", line);
  static uint8_t buf[1 << 16];
  *bytes = 0;
  double t0 = bench_now();
  for (unsigned m = first; m < first + count; m++) {
    char cmd[32];
    int n = snprintf(cmd, sizeof cmd, "RETR %u\r\n", m);
    if (write(fd, cmd, (size_t)n) != n)
      die("POP3 write: %s", strerror(errno));
    /* Until the stream ends in "\r\n.\r\n": dot-stuffing (RFC 1939 3)
     * keeps that sequence out of the message itself. */
    uint8_t last[5] = {0};
    while (memcmp(last, "\r\n.\r\n", 5) != 0) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0)
        die("POP3: closed during RETR");
      *bytes += (uint64_t)r;
      if (r >= 5) {
        memcpy(last, buf + r - 5, 5);
      } else {
        memmove(last, last + r, 5 - (size_t)r);
        memcpy(last + 5 - r, buf, (size_t)r);
      }
    }
  }
  double t = bench_now() - t0;
  if (write(fd, "QUIT\r\n", 6) != 6)
    die("POP3 write: %s", strerror(errno));
  read_line(fd, line, sizeof line);
  close(fd);
  return t;
}

/* Reference: the same number of bytes through one loopback TCP socket. */
static double loopback_mbps(uint64_t total) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  struct sockaddr sa;
  memcpy(&sa, &a, sizeof sa);
  socklen_t len = sizeof a;
  if (lfd < 0 || bind(lfd, &sa, sizeof a) != 0 || listen(lfd, 1) != 0 ||
      getsockname(lfd, &sa, &len) != 0)
    die("loopback reference: %s", strerror(errno));
  memcpy(&a, &sa, sizeof a);
  int wfd = connect_to(ntohs(a.sin_port));
  int rfd = accept(lfd, NULL, NULL);
  close(lfd);
  fcntl(wfd, F_SETFL, O_NONBLOCK);
  fcntl(rfd, F_SETFL, O_NONBLOCK);
  static uint8_t buf[1 << 16];
  uint64_t sent = 0, got = 0;
  double t0 = bench_now();
  while (got < total) {
    struct pollfd pf[2] = {{wfd, sent < total ? POLLOUT : 0, 0},
                           {rfd, POLLIN, 0}};
    poll(pf, 2, 10000);
    if (pf[0].revents & POLLOUT) {
      size_t n =
          total - sent < sizeof buf ? (size_t)(total - sent) : sizeof buf;
      ssize_t w = write(wfd, buf, n);
      if (w > 0)
        sent += (uint64_t)w;
    }
    if (pf[1].revents & POLLIN) {
      ssize_t r = read(rfd, buf, sizeof buf);
      if (r > 0)
        got += (uint64_t)r;
    }
  }
  double t = bench_now() - t0;
  close(wfd);
  close(rfd);
  return (double)total / 1e6 / t;
}

/* ---- idle connections ---- */

/* Opens `n` connections that stay idle after the greeting; returns the
 * server's RSS growth per connection. The descriptors go to *fds_out (the
 * caller closes them), so a later measurement does not reuse their memory. */
static double idle_bytes_each(server *s, int port, unsigned n, int **fds_out) {
  int *fds = calloc(n, sizeof *fds);
  if (!fds)
    die("out of memory");
  sleep_ms(200);
  long before = rss_kb(s->pid);
  char line[512];
  for (unsigned i = 0; i < n; i++) {
    fds[i] = connect_to(port);
    read_line(fds[i], line, sizeof line); /* accepted and greeted */
    if (line[0] != '2' && line[0] != '+')
      die("idle connection %u refused: %s", i, line);
  }
  sleep_ms(200);
  long after = rss_kb(s->pid);
  *fds_out = fds;
  return (double)(after - before) * 1024.0 / n;
}

static void close_all(int *fds, unsigned n) {
  for (unsigned i = 0; i < n; i++)
    close(fds[i]);
  free(fds);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  const char *path = NULL;
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc)
      path = argv[++i];
    else
      die("usage: bench_server --server PATH [--quick]");
  }
  if (!path)
    die("usage: bench_server --server PATH [--quick]");
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();

  const unsigned clients = quick ? 4 : 16;
  const size_t msg_size = 4096;
  const unsigned mem_msgs = quick ? 200 : 20000;
  const unsigned disk_msgs = quick ? 50 : 2000;
  const unsigned big_msgs = quick ? 4 : 32;
  const size_t big_size = 1 << 20;
  const unsigned idle = quick ? 100 : 1000;
  size_t msg_len, big_len;
  uint8_t *msg = make_message(msg_size, &msg_len);
  uint8_t *big = make_message(big_size, &big_len);

  printf("mailproto-server over loopback TCP; clients and server share this "
         "machine (%ld CPUs online)%s\n",
         sysconf(_SC_NPROCESSORS_ONLN), quick ? "; --quick: small counts" : "");

  server s;
  server_start(&s, path, 1, 2 * idle + 64);
  double t = run_smtp(s.smtp_port, clients, mem_msgs, msg, msg_len);
  printf("SMTP, memory store:  %8.0f messages/s  (%u messages of %zu bytes, "
         "%u pipelining clients, %.2f s)\n",
         mem_msgs / t, mem_msgs, msg_size, clients, t);
  server_stop(&s);

  server_start(&s, path, 0, 2 * idle + 64);
  t = run_smtp(s.smtp_port, clients, disk_msgs, msg, msg_len);
  printf("SMTP, Maildir store: %8.0f messages/s  (%u messages of %zu bytes, "
         "%u clients, fsync on: each 250 waits for the disk, %.2f s)\n",
         disk_msgs / t, disk_msgs, msg_size, clients, t);

  /* RETR: big messages, one client (the POP3 maildrop lock allows one). */
  t = run_smtp(s.smtp_port, 1, big_msgs, big, big_len);
  uint64_t bytes;
  t = run_retr(s.pop3_port, disk_msgs + 1, big_msgs, &bytes);
  double ref = loopback_mbps(bytes);
  printf("POP3 RETR:           %8.1f MB/s        (%u messages of %zu bytes, "
         "1 client, Maildir; loopback TCP copy of the same bytes: %.1f MB/s, "
         "ratio %.2f)\n",
         (double)bytes / 1e6 / t, big_msgs, big_size, ref,
         (double)bytes / 1e6 / t / ref);

  int *smtp_fds, *pop3_fds;
  double smtp_each = idle_bytes_each(&s, s.smtp_port, idle, &smtp_fds);
  double pop3_each = idle_bytes_each(&s, s.pop3_port, idle, &pop3_fds);
  close_all(smtp_fds, idle);
  close_all(pop3_fds, idle);
  printf("idle connections:    %8.0f bytes each (SMTP, after the greeting), "
         "%.0f bytes each (POP3); the server's RSS growth over %u connections "
         "(kernel socket buffers are not in RSS)\n",
         smtp_each, pop3_each, idle);
  server_stop(&s);
  free(msg);
  free(big);
  return 0;
}
