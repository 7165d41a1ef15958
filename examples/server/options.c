#include "options.h"

#include <stdlib.h>
#include <string.h>

#include "mem.h"

static const char *const listener_names[LISTEN_COUNT] = {
    "smtp", "lmtp", "pop3", "imap", "smtps", "pop3s", "imaps"};

const char *options_listener_name(listener_kind kind) {
  return (unsigned)kind < LISTEN_COUNT ? listener_names[kind] : "?";
}

int options_domain_valid(const char *name) {
  size_t len = strlen(name);
  if (len == 0 || len > 253)
    return 0;
  size_t label = 0;
  for (size_t i = 0; i <= len; i++) {
    char c = name[i];
    if (c == '.' || c == '\0') {
      /* No empty label, and no hyphen at either end of one. */
      if (label == 0 || label > 63 || name[i - 1] == '-')
        return 0;
      label = 0;
      continue;
    }
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && label > 0))
      return 0;
    label++;
  }
  return 1;
}

/* Option table: the name, whether it takes a value, and what it sets. */
typedef enum opt_id {
  OPT_MAILDIR,
  OPT_MEMORY,
  OPT_USER,
  OPT_USERS,
  OPT_LISTEN, /* one entry per listener, below */
  OPT_HOSTNAME,
  OPT_DOMAIN,
  OPT_INSECURE,
  OPT_TLS_CERT,
  OPT_TLS_KEY,
  OPT_MAXCONN,
  OPT_VERBOSE,
  OPT_HELP
} opt_id;

typedef struct opt_def {
  const char *name;
  opt_id id;
  int has_value;
  listener_kind listener;
} opt_def;

static const opt_def opt_defs[] = {
    {"maildir", OPT_MAILDIR, 1, LISTEN_COUNT},
    {"memory", OPT_MEMORY, 0, LISTEN_COUNT},
    {"user", OPT_USER, 1, LISTEN_COUNT},
    {"users", OPT_USERS, 1, LISTEN_COUNT},
    {"smtp", OPT_LISTEN, 1, LISTEN_SMTP},
    {"lmtp", OPT_LISTEN, 1, LISTEN_LMTP},
    {"pop3", OPT_LISTEN, 1, LISTEN_POP3},
    {"imap", OPT_LISTEN, 1, LISTEN_IMAP},
    {"smtps", OPT_LISTEN, 1, LISTEN_SMTPS},
    {"pop3s", OPT_LISTEN, 1, LISTEN_POP3S},
    {"imaps", OPT_LISTEN, 1, LISTEN_IMAPS},
    {"hostname", OPT_HOSTNAME, 1, LISTEN_COUNT},
    {"domain", OPT_DOMAIN, 1, LISTEN_COUNT},
    {"allow-insecure-auth", OPT_INSECURE, 0, LISTEN_COUNT},
    {"tls-cert", OPT_TLS_CERT, 1, LISTEN_COUNT},
    {"tls-key", OPT_TLS_KEY, 1, LISTEN_COUNT},
    {"max-connections", OPT_MAXCONN, 1, LISTEN_COUNT},
    {"verbose", OPT_VERBOSE, 0, LISTEN_COUNT},
    {"help", OPT_HELP, 0, LISTEN_COUNT},
};

static const opt_def *find_opt(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
    if (strlen(opt_defs[i].name) == len &&
        memcmp(opt_defs[i].name, name, len) == 0)
      return &opt_defs[i];
  return NULL;
}

static int parse_count(const char *s, unsigned *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 7)
    return -1;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v == 0 || v > OPTIONS_MAX_CONNECTIONS_LIMIT)
    return -1;
  *out = (unsigned)v;
  return 0;
}

static void set_defaults(server_options *o) {
  memset(o, 0, sizeof *o);
  o->maildir = OPTIONS_DEFAULT_MAILDIR;
  o->max_connections = OPTIONS_DEFAULT_MAX_CONNECTIONS;
  (void)address_parse(OPTIONS_DEFAULT_SMTP, &o->listen[LISTEN_SMTP]);
  (void)address_parse(OPTIONS_DEFAULT_POP3, &o->listen[LISTEN_POP3]);
  (void)address_parse(OPTIONS_DEFAULT_IMAP, &o->listen[LISTEN_IMAP]);
}

/* Applies one option with its value (NULL for flags). */
static int apply(server_options *o, const opt_def *d, const char *value,
                 int *seen_maildir, char *err, size_t err_size) {
  switch (d->id) {
  case OPT_MAILDIR:
    if (value[0] == '\0') {
      snprintf(err, err_size, "--maildir: empty directory name");
      return -1;
    }
    o->maildir = value;
    *seen_maildir = 1;
    return 0;
  case OPT_MEMORY:
    o->memory = 1;
    return 0;
  case OPT_USER:
    o->users[o->user_count++] = value;
    return 0;
  case OPT_USERS:
    o->users_file = value;
    return 0;
  case OPT_LISTEN:
    if (address_parse(value, &o->listen[d->listener]) != 0) {
      snprintf(err, err_size,
               "--%s: expected ADDR:PORT ([IPv6]:PORT) or off, got \"%.80s\"",
               d->name, value);
      return -1;
    }
    return 0;
  case OPT_HOSTNAME:
    if (!options_domain_valid(value)) {
      snprintf(err, err_size, "--hostname: not a domain name: \"%.80s\"",
               value);
      return -1;
    }
    o->hostname = value;
    return 0;
  case OPT_DOMAIN:
    if (!options_domain_valid(value)) {
      snprintf(err, err_size, "--domain: not a domain name: \"%.80s\"", value);
      return -1;
    }
    o->domains[o->domain_count++] = value;
    return 0;
  case OPT_INSECURE:
    o->allow_insecure_auth = 1;
    return 0;
  case OPT_TLS_CERT:
    o->tls_cert = value;
    return 0;
  case OPT_TLS_KEY:
    o->tls_key = value;
    return 0;
  case OPT_MAXCONN:
    if (parse_count(value, &o->max_connections) != 0) {
      snprintf(err, err_size,
               "--max-connections: expected 1..%u, got "
               "\"%.40s\"",
               OPTIONS_MAX_CONNECTIONS_LIMIT, value);
      return -1;
    }
    return 0;
  case OPT_VERBOSE:
    o->verbose = 1;
    return 0;
  case OPT_HELP:
    o->help = 1;
    return 0;
  }
  return 0;
}

/* Cross-option rules, checked once everything is read. */
static int check(server_options *o, int seen_maildir, unsigned features,
                 char *err, size_t err_size) {
  if (o->memory && seen_maildir) {
    snprintf(err, err_size, "--maildir and --memory exclude each other");
    return -1;
  }
  if (o->memory)
    o->maildir = NULL;
  int tls_files = (o->tls_cert != NULL) + (o->tls_key != NULL);
  if (tls_files == 1) {
    snprintf(err, err_size, "--tls-cert and --tls-key go together");
    return -1;
  }
  if (tls_files == 2 && !(features & OPTIONS_HAVE_TLS)) {
    snprintf(err, err_size,
             "TLS is not available in this build "
             "(OpenSSL was not found when it was built)");
    return -1;
  }
  static const listener_kind tls_ports[] = {LISTEN_SMTPS, LISTEN_POP3S,
                                            LISTEN_IMAPS};
  for (size_t i = 0; i < sizeof tls_ports / sizeof tls_ports[0]; i++)
    if (o->listen[tls_ports[i]].enabled && tls_files != 2) {
      snprintf(err, err_size, "--%s needs --tls-cert and --tls-key",
               options_listener_name(tls_ports[i]));
      return -1;
    }
  int any = 0;
  for (int k = 0; k < LISTEN_COUNT; k++)
    any |= o->listen[k].enabled;
  if (!any) {
    snprintf(err, err_size, "every listener is off: nothing to serve");
    return -1;
  }
  return 0;
}

int options_parse(server_options *o, int argc, char *const *argv,
                  unsigned features, char *err, size_t err_size) {
  set_defaults(o);
  size_t slots = argc > 0 ? (size_t)argc : 1;
  o->users = mem_calloc(slots, sizeof *o->users);
  o->domains = mem_calloc(slots, sizeof *o->domains);
  if (!o->users || !o->domains) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }

  int seen_maildir = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
      snprintf(err, err_size, "unexpected argument \"%.80s\" (see --help)",
               arg);
      return -1;
    }
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const opt_def *d = find_opt(name, nlen);
    if (!d) {
      snprintf(err, err_size, "unknown option \"%.80s\" (see --help)", arg);
      return -1;
    }
    const char *value = NULL;
    if (d->has_value) {
      if (eq)
        value = eq + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else {
        snprintf(err, err_size, "--%s needs a value", d->name);
        return -1;
      }
    } else if (eq) {
      snprintf(err, err_size, "--%s takes no value", d->name);
      return -1;
    }
    if (apply(o, d, value, &seen_maildir, err, err_size) != 0)
      return -1;
  }
  if (o->help)
    return 0;
  return check(o, seen_maildir, features, err, err_size);
}

void options_free(server_options *o) {
  mem_free(o->users);
  mem_free(o->domains);
  o->users = NULL;
  o->domains = NULL;
}

void options_usage(FILE *f, unsigned features) {
  fputs(
      "usage: mailproto-server [--maildir DIR | --memory] "
      "[--user NAME:PASSWORD]... [--users FILE]\n"
      "         [--smtp ADDR:PORT] [--lmtp ADDR:PORT] [--pop3 ADDR:PORT] "
      "[--imap ADDR:PORT]\n"
      "         [--hostname NAME] [--domain NAME]... [--allow-insecure-auth]\n"
      "         [--tls-cert FILE --tls-key FILE] [--smtps ADDR:PORT] "
      "[--pop3s ADDR:PORT] [--imaps ADDR:PORT]\n"
      "         [--max-connections N] [--verbose]\n"
      "\n"
      "The example server of libmailproto: SMTP, LMTP, POP3 and IMAP "
      "sessions of the\nlibrary in one single-threaded, non-blocking event "
      "loop.\n"
      "\n"
      "Storage\n"
      "  --maildir DIR          one Maildir per user under DIR "
      "(default " OPTIONS_DEFAULT_MAILDIR ")\n"
      "  --memory               keep mail in memory only; it is lost at exit\n"
      "Users (with none given, a demo user demo:demo is created)\n"
      "  --user NAME:PASSWORD   add a user (repeatable); the password may "
      "hold ':'\n"
      "  --users FILE           one NAME:PASSWORD per line; '#' comment lines\n"
      "Listeners: ADDR:PORT is IPv4:PORT, [IPv6]:PORT or localhost:PORT; "
      "\"off\" disables one;\nport 0 takes any free port (the log says "
      "which)\n"
      "  --smtp ADDR:PORT       SMTP (default " OPTIONS_DEFAULT_SMTP ")\n"
      "  --lmtp ADDR:PORT       LMTP (default off)\n"
      "  --pop3 ADDR:PORT       POP3 (default " OPTIONS_DEFAULT_POP3 ")\n"
      "  --imap ADDR:PORT       IMAP (default " OPTIONS_DEFAULT_IMAP ")\n",
      f);
  fputs("  --smtps, --pop3s, --imaps ADDR:PORT\n"
        "                         implicit TLS listeners (default off; need "
        "the TLS files)\n"
        "Mail\n"
        "  --hostname NAME        our name in greetings and Received: "
        "(default: the host's)\n"
        "  --domain NAME          local domain (repeatable); RCPT to another "
        "domain or an\n"
        "                         unknown user gets 550 5.1.1 (default: any "
        "domain). No relaying.\n"
        "Security\n"
        "  --allow-insecure-auth  accept plaintext passwords without TLS from "
        "any client\n"
        "                         (default: only from loopback addresses)\n"
        "  --tls-cert FILE --tls-key FILE\n"
        "                         PEM certificate chain and key: STARTTLS/STLS "
        "on the plain\n"
        "                         ports, implicit TLS on the s ports",
        f);
  fputs((features & OPTIONS_HAVE_TLS) ? "\n"
                                      : " (not available in this build)\n",
        f);
  fputs("Limits and logging\n"
        "  --max-connections N    connections at once (default 512); more "
        "are refused\n"
        "                         politely (421 / -ERR / * BYE)\n"
        "  --verbose              log the protocol transcript too, message "
        "bodies included\n"
        "                         (passwords and SASL data masked)\n"
        "  --help                 print this text\n"
        "Idle timeouts: SMTP and LMTP 5 minutes, POP3 10 minutes, IMAP 30 "
        "minutes\n(a client in IDLE gets a keep-alive every 2 minutes and "
        "stays). Mail delivered\nover SMTP or LMTP shows at once in IMAP "
        "sessions that have the mailbox selected.\nSIGTERM or SIGINT stop "
        "accepting, let deliveries and appends in progress\nfinish, then "
        "exit 0. Exit status 2: bad arguments; 1: the server could not\n"
        "start.\n"
        "Environment (for tests): MAILPROTO_SERVER_LOOP=poll uses poll(2) "
        "instead of epoll;\nMAILPROTO_SERVER_IDLE_TIMEOUT_MS=N replaces every "
        "idle timeout (the IMAP keep-alive\nthen comes every N/2 ms at the "
        "latest).\n",
        f);
}
