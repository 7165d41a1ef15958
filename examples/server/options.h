/*
 * The command line of mailproto-server (issue 6 fixes its shape):
 *
 * mailproto-server [--maildir DIR | --memory] [--user NAME:PASSWORD]...
 *   [--users FILE] [--smtp ADDR:PORT] [--lmtp ADDR:PORT] [--pop3 ADDR:PORT]
 *   [--imap ADDR:PORT] [--hostname NAME] [--domain NAME]...
 *   [--allow-insecure-auth] [--tls-cert FILE --tls-key FILE]
 *   [--smtps ADDR:PORT] [--pop3s ADDR:PORT] [--imaps ADDR:PORT]
 *   [--max-connections N] [--verbose]
 *
 * Each option also takes the "--name=value" form.
 */
#ifndef MAILPROTO_SERVER_OPTIONS_H
#define MAILPROTO_SERVER_OPTIONS_H

#include <stdio.h>

#include "address.h"

/* What this build has, for the checks that depend on it. */
#define OPTIONS_HAVE_TLS 0x1u

#define OPTIONS_DEFAULT_MAILDIR "./maildata"
#define OPTIONS_DEFAULT_SMTP "127.0.0.1:2525"
#define OPTIONS_DEFAULT_POP3 "127.0.0.1:2110"
#define OPTIONS_DEFAULT_IMAP "127.0.0.1:2143"
#define OPTIONS_DEFAULT_MAX_CONNECTIONS 512u
#define OPTIONS_MAX_CONNECTIONS_LIMIT 1000000u

/* The listeners, in the order they are opened and logged. */
typedef enum listener_kind {
  LISTEN_SMTP,
  LISTEN_LMTP,
  LISTEN_POP3,
  LISTEN_IMAP,
  LISTEN_SMTPS,
  LISTEN_POP3S,
  LISTEN_IMAPS,
  LISTEN_COUNT
} listener_kind;

typedef struct server_options {
  const char *maildir; /* NULL with --memory */
  int memory;
  const char **users; /* "NAME:PASSWORD" strings from argv */
  size_t user_count;
  const char *users_file;
  listen_addr listen[LISTEN_COUNT];
  const char *hostname; /* NULL: the default */
  const char **domains;
  size_t domain_count;
  int allow_insecure_auth;
  const char *tls_cert;
  const char *tls_key;
  unsigned max_connections;
  int verbose;
  int help;
} server_options;

/* "smtp", "lmtp", ... as the options and the logs name them. */
const char *options_listener_name(listener_kind kind);

/*
 * Parses argv (strings are borrowed: argv must outlive the options).
 * `features` is OPTIONS_HAVE_* of this build. Returns 0 (check o->help), or
 * -1 with a one-line reason in err. Free with options_free() either way.
 */
int options_parse(server_options *o, int argc, char *const *argv,
                  unsigned features, char *err, size_t err_size);
void options_free(server_options *o);

/* 1 if `name` is a syntactically valid domain name (RFC 1035 letters,
 * digits, hyphens; labels of 1..63, at most 253 in all), else 0. */
int options_domain_valid(const char *name);

void options_usage(FILE *f, unsigned features);

#endif
