/*
 * mailproto-server: the example server of libmailproto. SMTP, LMTP, POP3
 * and IMAP sessions of the library in one single-threaded, non-blocking
 * event loop, over a Maildir (or memory) store. `mailproto-server --help` lists
 * the options; with none it serves ./maildata on loopback ports with a
 * demo user and prints how to connect.
 *
 * Exit status: 0 after SIGTERM/SIGINT, 1 if it could not start, 2 for bad
 * arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "log.h"
#include "mem.h"
#include "options.h"
#include "server.h"
#include "tls.h"
#include "users.h"

#define DEMO_USER "demo"
#define DEMO_PASSWORD "demo"

static unsigned build_features(void) {
#ifdef MAILPROTO_SERVER_TLS
  return OPTIONS_HAVE_TLS;
#else
  return 0;
#endif
}

static void default_hostname(char *out, size_t size) {
  if (gethostname(out, size) != 0 || memchr(out, '\0', size) == NULL ||
      !options_domain_valid(out))
    snprintf(out, size, "localhost");
}

/* MAILPROTO_SERVER_LOOP: "epoll", "poll" or unset. */
static int loop_from_env(loop_backend *out) {
  const char *v = getenv("MAILPROTO_SERVER_LOOP");
  *out = LOOP_BACKEND_DEFAULT;
  if (!v || !*v)
    return 0;
  if (strcmp(v, "poll") == 0)
    *out = LOOP_BACKEND_POLL;
  else if (strcmp(v, "epoll") == 0)
    *out = LOOP_BACKEND_EPOLL;
  else
    return -1;
  return 0;
}

/* Users from --user and --users, checked for syntax before the store is
 * opened, so a typo creates no Maildir root. */
typedef struct user_list {
  char **entries; /* "name\0password\0" */
  size_t count;
  size_t cap;
} user_list;

static int collect_user(void *arg, const char *name, const char *password,
                        char *err, size_t err_size) {
  user_list *l = arg;
  if (l->count == l->cap) {
    size_t n = l->cap ? l->cap * 2 : 16;
    char **e = mem_realloc_array(l->entries, n, sizeof *e);
    if (!e) {
      snprintf(err, err_size, "out of memory");
      return -1;
    }
    l->entries = e;
    l->cap = n;
  }
  size_t nl = strlen(name) + 1, pl = strlen(password) + 1;
  char *entry = mem_malloc(nl + pl);
  if (!entry) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  memcpy(entry, name, nl);
  memcpy(entry + nl, password, pl);
  l->entries[l->count++] = entry;
  return 0;
}

static void free_users(user_list *l) {
  for (size_t i = 0; i < l->count; i++)
    mem_free(l->entries[i]);
  mem_free(l->entries);
  memset(l, 0, sizeof *l);
}

static int read_users(const server_options *o, user_list *l, char *err,
                      size_t err_size) {
  char name[USERS_LINE_MAX + 1];
  char password[USERS_LINE_MAX + 1];
  char why[256];
  for (size_t i = 0; i < o->user_count; i++) {
    if (users_split(o->users[i], strlen(o->users[i]), name, password, why,
                    sizeof why) != 0 ||
        collect_user(l, name, password, why, sizeof why) != 0) {
      snprintf(err, err_size, "--user: %s", why);
      return -1;
    }
  }
  if (o->users_file &&
      users_load(o->users_file, collect_user, l, why, sizeof why) < 0) {
    snprintf(err, err_size, "--users: %s", why);
    return -1;
  }
  return 0;
}

static int add_users(const user_list *l, backend *b, char *err,
                     size_t err_size) {
  for (size_t i = 0; i < l->count; i++) {
    const char *name = l->entries[i];
    if (backend_add_user(b, name, name + strlen(name) + 1, err, err_size) != 0)
      return -1;
  }
  return 0;
}

/* The listener's address split for a command line: host and port. */
static void split_address(const char *addr, char *host, size_t hsize,
                          const char **port) {
  const char *colon = strrchr(addr, ':');
  size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
  if (n >= 2 && addr[0] == '[') { /* "[::1]:25" */
    addr++;
    n -= 2;
  }
  snprintf(host, hsize, "%.*s", (int)n, addr);
  *port = colon ? colon + 1 : "";
}

static void print_howto(const server *srv, const char *demo,
                        const char *domain) {
  const listener *smtp = NULL, *pop3 = NULL, *imap = NULL;
  for (size_t i = 0; i < srv->listener_count; i++) {
    if (srv->listeners[i].kind == LISTEN_SMTP)
      smtp = &srv->listeners[i];
    if (srv->listeners[i].kind == LISTEN_POP3)
      pop3 = &srv->listeners[i];
    if (srv->listeners[i].kind == LISTEN_IMAP)
      imap = &srv->listeners[i];
  }
  const char *user = demo ? demo : "USER";
  char host[ADDRESS_TEXT_MAX];
  const char *port;
  log_line("ready; try:");
  if (smtp) {
    split_address(smtp->address, host, sizeof host, &port);
    log_line("  send a message:  swaks --server %s --port %s --to %s@%s", host,
             port, user, domain);
  }
  if (pop3)
    log_line("  list and read:   curl -u %s%s%s pop3://%s/ (then .../1)", user,
             demo ? ":" : "", demo ? DEMO_PASSWORD : "", pop3->address);
  if (imap)
    log_line("  read in place:   curl -u %s%s%s 'imap://%s/INBOX;UID=1'", user,
             demo ? ":" : "", demo ? DEMO_PASSWORD : "", imap->address);
  log_line("  stop:            Ctrl-C (or SIGTERM)");
}

int main(int argc, char **argv) {
  unsigned features = build_features();
  server_options o;
  char err[512];
  if (options_parse(&o, argc, argv, features, err, sizeof err) != 0) {
    fprintf(stderr, "mailproto-server: %s\n", err);
    options_free(&o);
    return 2;
  }
  if (o.help) {
    options_usage(stdout, features);
    options_free(&o);
    return 0;
  }
  loop_backend lb;
  if (loop_from_env(&lb) != 0) {
    fprintf(stderr, "mailproto-server: MAILPROTO_SERVER_LOOP must be "
                    "\"epoll\" or \"poll\"\n");
    options_free(&o);
    return 2;
  }
  char hostbuf[256];
  if (o.hostname)
    snprintf(hostbuf, sizeof hostbuf, "%s", o.hostname);
  else
    default_hostname(hostbuf, sizeof hostbuf);

  int status = 2;
  user_list users = {0};
  backend b = {0};
  tls_server *tls = NULL;
  server srv;
  int srv_used = 0; /* server_init ran: server_cleanup has work to do */
  if (read_users(&o, &users, err, sizeof err) != 0) {
    fprintf(stderr, "mailproto-server: %s\n", err);
    goto out;
  }
#ifdef MAILPROTO_SERVER_TLS
  if (o.tls_cert &&
      tls_server_new(o.tls_cert, o.tls_key, &tls, err, sizeof err) != 0) {
    fprintf(stderr, "mailproto-server: --tls-cert/--tls-key: %s\n", err);
    status = 2;
    goto out;
  }
#endif
  if (backend_open(&b, o.maildir, err, sizeof err) != 0) {
    fprintf(stderr, "mailproto-server: %s\n", err);
    status = 1;
    goto out;
  }
  if (add_users(&users, &b, err, sizeof err) != 0) {
    fprintf(stderr, "mailproto-server: %s\n", err);
    goto out;
  }
  const char *demo = NULL;
  if (b.users == 0) {
    if (backend_add_user(&b, DEMO_USER, DEMO_PASSWORD, err, sizeof err) != 0) {
      fprintf(stderr, "mailproto-server: %s\n", err);
      status = 1;
      goto out;
    }
    demo = DEMO_USER;
  }
  const char *version;
  mailproto_version(&version);
  log_line("mailproto-server (libmailproto %s) as %s; store: %s%s; TLS: %s",
           version, hostbuf, o.maildir ? "Maildir under " : "memory",
           o.maildir ? o.maildir : " (lost at exit)",
#ifdef MAILPROTO_SERVER_TLS
           tls ? tls_library_version() : "off (no --tls-cert/--tls-key)"
#else
           "not in this build"
#endif
  );
  if (demo)
    log_line("no --user or --users given: created the demo user \"%s\" with "
             "password \"%s\"",
             DEMO_USER, DEMO_PASSWORD);
  else
    log_line("%zu user(s)", b.users);

  srv_used = 1;
  status = 1;
  if (server_init(&srv, &o, hostbuf, &b.store, tls, lb) != 0)
    goto out;
  log_line("event loop: %s; up to %u connections", loop_backend_name(srv.loop),
           o.max_connections);
  print_howto(&srv, demo, o.domain_count ? o.domains[0] : "localhost");
  status = server_run(&srv) == 0 ? 0 : 1;

out:
  if (srv_used)
    server_cleanup(&srv);
#ifdef MAILPROTO_SERVER_TLS
  tls_server_free(tls);
#endif
  backend_close(&b);
  free_users(&users);
  options_free(&o);
  return status;
}
