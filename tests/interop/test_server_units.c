/*
 * Unit tests of the example server's own parts that need no socket: the
 * command line, addresses, the users file, log cleaning, the recipient
 * domain rule, the adapters' masking and replies, and the event loop on
 * both backends. Parsers also get truncated, oversized and malformed
 * input placed right before an unreadable page.
 */
#include <check.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address.h"
#include "conn.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "options.h"
#include "proto.h"
#include "store_wrap.h"
#include "support/alloc_fail.h"
#include "support/overread.h"
#include "users.h"

/* ---- addresses ---- */

START_TEST(test_address_parse_forms) {
  listen_addr a;
  char text[ADDRESS_TEXT_MAX];
  ck_assert_int_eq(address_parse("127.0.0.1:2525", &a), 0);
  ck_assert(a.enabled);
  address_format((struct sockaddr *)&a.ss, text, sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:2525");
  ck_assert_int_eq(address_parse("[::1]:0", &a), 0);
  address_format((struct sockaddr *)&a.ss, text, sizeof text);
  ck_assert_str_eq(text, "[::1]:0");
  ck_assert_int_eq(address_parse("[2001:db8::7]:65535", &a), 0);
  address_format((struct sockaddr *)&a.ss, text, sizeof text);
  ck_assert_str_eq(text, "[2001:db8::7]:65535");
  ck_assert_int_eq(address_parse("localhost:25", &a), 0);
  address_format((struct sockaddr *)&a.ss, text, sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:25");
  ck_assert_int_eq(address_parse("0.0.0.0:143", &a), 0);
  ck_assert_int_eq(address_parse("off", &a), 0);
  ck_assert(!a.enabled);
}
END_TEST

START_TEST(test_address_parse_rejects_malformed) {
  static const char *const bad[] = {
      "",
      ":25",
      "127.0.0.1",
      "127.0.0.1:",
      "127.0.0.1:x",
      "127.0.0.1:65536",
      "127.0.0.1:-1",
      "127.0.0.1:+25",
      "127.0.0.1:123456",
      "127.0.0.1: 25",
      "::1:25",
      "[::1]25",
      "[::1]:",
      "[]:25",
      "[::1",
      "[127.0.0.1]:25",
      "host.example:25",
      "256.0.0.1:25",
      "1.2.3:25",
      "OFF",
      "[::1]:25 ",
      "[:::::::::::::::::::::::::::::::::::::::::::::::1]:25"};
  listen_addr a;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(address_parse(bad[i], &a) == -1, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_address_parse_no_overread) {
  /* Every prefix of valid and invalid specs, NUL right before the guard. */
  static const char *const specs[] = {"127.0.0.1:2525", "[2001:db8::1]:110",
                                      "off", "[::1", "localhost:1"};
  overread_guard g;
  ck_assert_int_eq(overread_init(&g, 128), 0);
  for (size_t s = 0; s < sizeof specs / sizeof specs[0]; s++) {
    size_t n = strlen(specs[s]);
    for (size_t k = 0; k <= n; k++) {
      char buf[64];
      memcpy(buf, specs[s], k);
      buf[k] = '\0';
      const char *p = (const char *)overread_place(&g, buf, k + 1);
      listen_addr a;
      (void)address_parse(p, &a);
    }
  }
  /* An oversized spec is refused, not copied past a buffer. */
  char big[120];
  memset(big, '1', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  big[3] = ':';
  listen_addr a;
  ck_assert_int_eq(
      address_parse((const char *)overread_place(&g, big, sizeof big), &a), -1);
  overread_free(&g);
}
END_TEST

START_TEST(test_address_client_literal_and_loopback) {
  struct sockaddr_in v4;
  memset(&v4, 0, sizeof v4);
  v4.sin_family = AF_INET;
  v4.sin_addr.s_addr = htonl(0x7f000105); /* 127.0.1.5 */
  char text[ADDRESS_TEXT_MAX];
  address_client_literal((struct sockaddr *)&v4, text, sizeof text);
  ck_assert_str_eq(text, "127.0.1.5");
  ck_assert(address_is_loopback((struct sockaddr *)&v4));
  v4.sin_addr.s_addr = htonl(0xc0000201); /* 192.0.2.1 */
  ck_assert(!address_is_loopback((struct sockaddr *)&v4));

  struct sockaddr_in6 v6;
  memset(&v6, 0, sizeof v6);
  v6.sin6_family = AF_INET6;
  v6.sin6_addr.s6_addr[15] = 1; /* ::1 */
  address_client_literal((struct sockaddr *)&v6, text, sizeof text);
  ck_assert_str_eq(text, "IPv6:::1");
  ck_assert(address_is_loopback((struct sockaddr *)&v6));
  /* ::ffff:127.0.0.1 is IPv4 loopback, shown as IPv4. */
  v6.sin6_addr.s6_addr[15] = 1;
  v6.sin6_addr.s6_addr[10] = v6.sin6_addr.s6_addr[11] = 0xff;
  v6.sin6_addr.s6_addr[12] = 127;
  v6.sin6_port = htons(25);
  ck_assert(address_is_loopback((struct sockaddr *)&v6));
  address_format((struct sockaddr *)&v6, text, sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:25");
  address_client_literal((struct sockaddr *)&v6, text, sizeof text);
  ck_assert_str_eq(text, "127.0.0.1");
  /* A short buffer is cut and terminated. */
  address_format((struct sockaddr *)&v6, text, 5);
  ck_assert_str_eq(text, "127.");
}
END_TEST

/* ---- users ---- */

typedef struct collected {
  int count;
  char names[8][64];
  char passwords[8][64];
  int refuse_at; /* 1-based, 0: never */
} collected;

static int collect(void *arg, const char *name, const char *password, char *err,
                   size_t err_size) {
  collected *c = arg;
  if (c->refuse_at && c->count + 1 == c->refuse_at) {
    snprintf(err, err_size, "refused by the store");
    return -1;
  }
  if (c->count < 8) {
    snprintf(c->names[c->count], 64, "%s", name);
    snprintf(c->passwords[c->count], 64, "%s", password);
  }
  c->count++;
  return 0;
}

START_TEST(test_users_parse_file_forms) {
  static const char file[] = "# users of the test\n"
                             "alice:secret\r\n"
                             "\n"
                             "   # indented comment\n"
                             "bob:pa:ss word\n"
                             " \t \n"
                             "carol:x";
  collected c = {0};
  char err[128];
  ck_assert_int_eq(
      users_parse(file, sizeof file - 1, collect, &c, err, sizeof err), 3);
  ck_assert_str_eq(c.names[0], "alice");
  ck_assert_str_eq(c.passwords[0], "secret");
  ck_assert_str_eq(c.names[1], "bob");
  ck_assert_str_eq(c.passwords[1], "pa:ss word");
  ck_assert_str_eq(c.names[2], "carol");
  ck_assert_str_eq(c.passwords[2], "x");
  /* Empty input: no users, no error. */
  ck_assert_int_eq(users_parse("", 0, collect, &c, err, sizeof err), 0);
}
END_TEST

START_TEST(test_users_parse_reports_line_numbers) {
  struct {
    const char *text;
    const char *error;
  } cases[] = {
      {"alice:a\nbob\n", "line 2: expected NAME:PASSWORD"},
      {"#\n:pw\n", "line 2: empty user name"},
      {"alice:\n", "line 1: empty password"},
      {"a:b\n\n\nc:d\nnocolon", "line 5: expected NAME:PASSWORD"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    collected c = {0};
    char err[128] = "";
    ck_assert_int_eq(users_parse(cases[i].text, strlen(cases[i].text), collect,
                                 &c, err, sizeof err),
                     -1);
    ck_assert_str_eq(err, cases[i].error);
  }
  /* A NUL byte inside a line. */
  collected c = {0};
  char err[128];
  ck_assert_int_eq(
      users_parse("ok:1\nbad\0x:y\n", 13, collect, &c, err, sizeof err), -1);
  ck_assert_str_eq(err, "line 2: contains a NUL byte");
  /* The store's refusal carries the line too. */
  collected r = {.refuse_at = 2};
  ck_assert_int_eq(users_parse("a:1\nb:2\n", 8, collect, &r, err, sizeof err),
                   -1);
  ck_assert_str_eq(err, "line 2: refused by the store");
}
END_TEST

START_TEST(test_users_parse_oversized_line) {
  size_t n = USERS_LINE_MAX + 10;
  char *text = malloc(n);
  ck_assert_ptr_nonnull(text);
  memset(text, 'a', n);
  text[5] = ':';
  collected c = {0};
  char err[128];
  ck_assert_int_eq(users_parse(text, n, collect, &c, err, sizeof err), -1);
  ck_assert(strstr(err, "longer than") != NULL);
  /* Exactly the limit is fine. */
  ck_assert_int_eq(
      users_parse(text, USERS_LINE_MAX, collect, &c, err, sizeof err), 1);
  free(text);
}
END_TEST

START_TEST(test_users_parse_truncated_no_overread) {
  static const char file[] = "# c\nalice:secret\r\nbob:pa:ss\n\nbad line\n"
                             "carol:x\r";
  overread_guard g;
  ck_assert_int_eq(overread_init(&g, sizeof file), 0);
  for (size_t k = 0; k < sizeof file; k++) {
    const char *p = (const char *)overread_place(&g, file, k);
    collected c = {0};
    char err[128];
    long rc = users_parse(p, k, collect, &c, err, sizeof err);
    ck_assert(rc == -1 || rc == c.count);
    /* The bad line is complete from k >= 36 on: always an error then. */
    if (k >= 36)
      ck_assert_int_eq(rc, -1);
  }
  overread_free(&g);
}
END_TEST

START_TEST(test_users_split_entry) {
  char name[USERS_LINE_MAX + 1], password[USERS_LINE_MAX + 1], err[96];
  ck_assert_int_eq(users_split("u:p:q", 5, name, password, err, sizeof err), 0);
  ck_assert_str_eq(name, "u");
  ck_assert_str_eq(password, "p:q");
  ck_assert_int_eq(users_split("u:p", 1, name, password, err, sizeof err),
                   -1); /* only "u" given */
  ck_assert_str_eq(err, "expected NAME:PASSWORD");
}
END_TEST

START_TEST(test_users_load_files) {
  char dir[] = "/tmp/mailproto-units-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char path[256], err[512];
  snprintf(path, sizeof path, "%s/users", dir);
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs("alice:secret\nbob:x\n", f);
  fclose(f);
  collected c = {0};
  ck_assert_int_eq(users_load(path, collect, &c, err, sizeof err), 2);
  /* Too large: refused before parsing. */
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  for (size_t i = 0; i <= USERS_FILE_MAX / 8; i++)
    fputs("#comment", f);
  fclose(f);
  ck_assert_int_eq(users_load(path, collect, &c, err, sizeof err), -1);
  ck_assert(strstr(err, "larger than") != NULL);
  unlink(path);
  /* Missing, and a directory. */
  ck_assert_int_eq(users_load(path, collect, &c, err, sizeof err), -1);
  ck_assert(strstr(err, strerror(ENOENT)) != NULL);
  ck_assert_int_eq(users_load(dir, collect, &c, err, sizeof err), -1);
  ck_assert(strstr(err, "not a regular file") != NULL);
  rmdir(dir);
}
END_TEST

/* ---- options ---- */

/* argv as main() gets it: writable copies of the strings. */
typedef struct argv_buf {
  char text[64][4096];
  char *argv[65];
  int argc;
} argv_buf;

static void argv_add(argv_buf *b, const char *arg) {
  snprintf(b->text[b->argc], sizeof b->text[0], "%s", arg);
  b->argv[b->argc] = b->text[b->argc];
  b->argc++;
  b->argv[b->argc] = NULL;
}

static int parse(server_options *o, unsigned features, char *err,
                 size_t err_size, ...) {
  static argv_buf b;
  b.argc = 0;
  argv_add(&b, "mailproto-server");
  va_list ap;
  va_start(ap, err_size);
  const char *a;
  while ((a = va_arg(ap, const char *)) != NULL && b.argc < 63)
    argv_add(&b, a);
  va_end(ap);
  return options_parse(o, b.argc, b.argv, features, err, err_size);
}

START_TEST(test_options_parse_defaults) {
  server_options o;
  char err[256];
  ck_assert_int_eq(parse(&o, 0, err, sizeof err, NULL), 0);
  ck_assert_str_eq(o.maildir, "./maildata");
  ck_assert(!o.memory && !o.help && !o.verbose && !o.allow_insecure_auth);
  ck_assert(o.listen[LISTEN_SMTP].enabled);
  ck_assert(o.listen[LISTEN_POP3].enabled);
  ck_assert(!o.listen[LISTEN_LMTP].enabled);
  ck_assert(o.listen[LISTEN_IMAP].enabled);
  ck_assert(!o.listen[LISTEN_SMTPS].enabled);
  ck_assert_uint_eq(o.max_connections, 512);
  char text[ADDRESS_TEXT_MAX];
  address_format((struct sockaddr *)&o.listen[LISTEN_SMTP].ss, text,
                 sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:2525");
  address_format((struct sockaddr *)&o.listen[LISTEN_POP3].ss, text,
                 sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:2110");
  address_format((struct sockaddr *)&o.listen[LISTEN_IMAP].ss, text,
                 sizeof text);
  ck_assert_str_eq(text, "127.0.0.1:2143");
  options_free(&o);
}
END_TEST

START_TEST(test_options_parse_everything) {
  server_options o;
  char err[256];
  ck_assert_int_eq(
      parse(&o, OPTIONS_HAVE_TLS, err, sizeof err,
            "--memory", "--user", "a:1", "--user=b:2", "--users", "f", "--smtp",
            "off", "--lmtp=[::1]:24", "--pop3", "0.0.0.0:110", "--imap",
            "127.0.0.1:143", "--hostname", "mx.example.org", "--domain",
            "example.org", "--domain=Example.NET", "--allow-insecure-auth",
            "--tls-cert", "c.pem", "--tls-key", "k.pem", "--smtps",
            "127.0.0.1:465", "--pop3s=127.0.0.1:995", "--imaps",
            "127.0.0.1:993", "--max-connections", "1000000", "--verbose", NULL),
      0);
  ck_assert(o.memory && o.maildir == NULL);
  ck_assert_uint_eq(o.user_count, 2);
  ck_assert_str_eq(o.users[1], "b:2");
  ck_assert_str_eq(o.users_file, "f");
  ck_assert(!o.listen[LISTEN_SMTP].enabled);
  ck_assert(o.listen[LISTEN_LMTP].enabled && o.listen[LISTEN_IMAPS].enabled);
  ck_assert_str_eq(o.hostname, "mx.example.org");
  ck_assert_uint_eq(o.domain_count, 2);
  ck_assert_str_eq(o.domains[1], "Example.NET");
  ck_assert(o.allow_insecure_auth && o.verbose);
  ck_assert_str_eq(o.tls_key, "k.pem");
  ck_assert_uint_eq(o.max_connections, 1000000);
  options_free(&o);
  ck_assert_int_eq(parse(&o, 0, err, sizeof err, "--smtp", "off", "--help",
                         "--bogus-after-help-is-still-an-error", NULL),
                   -1);
  options_free(&o);
  ck_assert_int_eq(
      parse(&o, 0, err, sizeof err, "--help", "--imap", "127.0.0.1:1", NULL),
      0);
  ck_assert(o.help); /* --help wins over cross-option checks */
  options_free(&o);
}
END_TEST

START_TEST(test_options_parse_errors) {
  struct {
    unsigned features;
    const char *args[5];
    const char *error;
  } cases[] = {
      {0, {"--nope"}, "unknown option \"--nope\" (see --help)"},
      {0, {"-h"}, "unexpected argument \"-h\" (see --help)"},
      {0, {"--"}, "unexpected argument \"--\" (see --help)"},
      {0, {"--users"}, "--users needs a value"},
      {0, {"--memory=1"}, "--memory takes no value"},
      {0, {"--max-connections", "0"}, "--max-connections: expected"},
      {0, {"--max-connections", "1000001"}, "--max-connections: expected"},
      {0, {"--max-connections", "99999999"}, "--max-connections: expected"},
      {OPTIONS_HAVE_TLS, {"--imaps", "127.0.0.1:993"}, "--imaps needs"},
      {0, {"--tls-key", "k"}, "--tls-cert and --tls-key go together"},
      {0, {"--tls-key", "k", "--tls-cert", "c"}, "TLS is not available"},
      {OPTIONS_HAVE_TLS, {"--pop3s", "127.0.0.1:995"}, "--pop3s needs"},
      {0, {"--memory", "--maildir", "d"}, "--maildir and --memory exclude"},
      {0,
       {"--smtp", "off", "--pop3", "off", "--imap=off"},
       "every listener is off"},
      {0, {"--hostname", "a..b"}, "--hostname: not a domain name"},
      {0, {"--domain", "x_y.org"}, "--domain: not a domain name"},
      {0, {"--lmtp", "1.2.3.4"}, "--lmtp: expected ADDR:PORT"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    static argv_buf b;
    b.argc = 0;
    argv_add(&b, "mailproto-server");
    for (int k = 0; k < 5 && cases[i].args[k]; k++)
      argv_add(&b, cases[i].args[k]);
    server_options o;
    char err[256] = "";
    ck_assert_int_eq(
        options_parse(&o, b.argc, b.argv, cases[i].features, err, sizeof err),
        -1);
    ck_assert_msg(strncmp(err, cases[i].error, strlen(cases[i].error)) == 0,
                  "case %zu: \"%s\"", i, err);
    options_free(&o);
  }
}
END_TEST

START_TEST(test_options_parse_long_values_cut_in_messages) {
  char value[4096];
  memset(value, 'z', sizeof value - 1);
  value[sizeof value - 1] = '\0';
  server_options o;
  char err[200];
  ck_assert_int_eq(parse(&o, 0, err, sizeof err, "--smtp", value, NULL), -1);
  ck_assert(strlen(err) < sizeof err);
  options_free(&o);
}
END_TEST

START_TEST(test_options_domain_valid_rules) {
  ck_assert(options_domain_valid("localhost"));
  ck_assert(options_domain_valid("mx-1.example.org"));
  ck_assert(options_domain_valid("a"));
  ck_assert(!options_domain_valid(""));
  ck_assert(!options_domain_valid("."));
  ck_assert(!options_domain_valid("a."));
  ck_assert(!options_domain_valid(".a"));
  ck_assert(!options_domain_valid("-a.org"));
  ck_assert(!options_domain_valid("a-.org"));
  ck_assert(!options_domain_valid("a b"));
  ck_assert(!options_domain_valid("[127.0.0.1]"));
  char label[70];
  memset(label, 'l', 64);
  label[64] = '\0';
  ck_assert(!options_domain_valid(label)); /* 64 > 63 */
  label[63] = '\0';
  ck_assert(options_domain_valid(label));
  char longname[300];
  for (size_t i = 0; i < 127; i++) {
    longname[2 * i] = 'a';
    longname[2 * i + 1] = '.';
  }
  longname[253] = '\0'; /* "a.a....a" of 253 */
  ck_assert(options_domain_valid(longname));
  longname[253] = 'a';
  longname[254] = '\0';
  ck_assert(!options_domain_valid(longname));
}
END_TEST

START_TEST(test_options_usage_mentions_every_option) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  options_usage(f, 0);
  fclose(f);
  static const char *const opts[] = {"--maildir",
                                     "--memory",
                                     "--user",
                                     "--users",
                                     "--smtp",
                                     "--lmtp",
                                     "--pop3",
                                     "--imap",
                                     "--hostname",
                                     "--domain",
                                     "--allow-insecure-auth",
                                     "--tls-cert",
                                     "--tls-key",
                                     "--smtps",
                                     "--pop3s",
                                     "--imaps",
                                     "--max-connections",
                                     "--verbose",
                                     "--help"};
  for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
    ck_assert_msg(strstr(buf, opts[i]) != NULL, "%s missing", opts[i]);
  ck_assert(strstr(buf, "not available in this build") != NULL);
  free(buf);
}
END_TEST

/* ---- logging, domains, adapters ---- */

START_TEST(test_log_clean_escapes_and_cuts) {
  char out[32];
  ck_assert_str_eq(log_clean(out, sizeof out, "a\r\nb\\c\x01", 7),
                   "a\\x0d\\x0ab\\x5cc\\x01");
  ck_assert_str_eq(log_clean(out, sizeof out, "\xff", 1), "\\xff");
  char in[100];
  memset(in, 'x', sizeof in);
  log_clean(out, sizeof out, in, sizeof in);
  ck_assert_uint_eq(strlen(out), sizeof out - 1);
  ck_assert_str_eq(out + sizeof out - 4, "...");
  ck_assert_str_eq(log_clean(out, 4, "abcdef", 6), "...");
  ck_assert_str_eq(log_clean(out, 2, "abcdef", 6), "");
  ck_assert_str_eq(log_clean(out, sizeof out, "", 0), "");
}
END_TEST

START_TEST(test_store_wrap_domain_ok_rules) {
  const char *const domains[] = {"example.org", "mail.test"};
  ck_assert(store_wrap_domain_ok("a@b.c", domains, 0)); /* no --domain */
  ck_assert(store_wrap_domain_ok("alice@EXAMPLE.org", domains, 2));
  ck_assert(store_wrap_domain_ok("bob@mail.test", domains, 2));
  ck_assert(store_wrap_domain_ok("Postmaster", domains, 2));
  ck_assert(store_wrap_domain_ok("\"a@evil.example\"@example.org", domains, 2));
  ck_assert(!store_wrap_domain_ok("alice@example.org.evil", domains, 2));
  ck_assert(!store_wrap_domain_ok("alice@sub.example.org", domains, 2));
  ck_assert(!store_wrap_domain_ok("alice@", domains, 2));
  ck_assert(!store_wrap_domain_ok("alice@[127.0.0.1]", domains, 2));
}
END_TEST

START_TEST(test_proto_visible_masks_secrets) {
  const char *l = "AUTH PLAIN AGFsaWNlAHNlY3JldA==";
  ck_assert_uint_eq(proto_smtp.visible(l, strlen(l)), 11);
  l = "auth login";
  ck_assert_uint_eq(proto_smtp.visible(l, strlen(l)), strlen(l));
  l = "MAIL FROM:<a@b>";
  ck_assert_uint_eq(proto_smtp.visible(l, strlen(l)), strlen(l));
  l = "AUTHX PLAIN x";
  ck_assert_uint_eq(proto_smtp.visible(l, strlen(l)), strlen(l));
  l = "PASS hunter2";
  ck_assert_uint_eq(proto_pop3.visible(l, strlen(l)), 5);
  l = "pass";
  ck_assert_uint_eq(proto_pop3.visible(l, strlen(l)), 4);
  l = "AUTH CRAM-MD5";
  ck_assert_uint_eq(proto_pop3.visible(l, strlen(l)), strlen(l));
  ck_assert_uint_eq(proto_pop3.visible("", 0), 0);
  ck_assert_uint_eq(proto_visible_words("a  b c", 6, 2), 5);
}
END_TEST

START_TEST(test_proto_reply_lines) {
  char out[256];
  size_t n = proto_smtp.reply(PROTO_REPLY_BUSY, "mx.test", out, sizeof out);
  ck_assert_uint_eq(n, strlen(out));
  ck_assert_str_eq(out,
                   "421 4.7.0 mx.test Too many connections, try again later"
                   "\r\n");
  proto_smtp.reply(PROTO_REPLY_TIMEOUT, "mx.test", out, sizeof out);
  ck_assert(strncmp(out, "421 4.4.2 mx.test ", 18) == 0);
  proto_lmtp.reply(PROTO_REPLY_SHUTDOWN, "mx.test", out, sizeof out);
  ck_assert(strncmp(out, "421 4.3.2 mx.test ", 18) == 0);
  ck_assert_uint_eq(proto_smtp.reply(PROTO_REPLY_BUSY, "mx.test", out, 10), 0);
  ck_assert_uint_eq(proto_pop3.reply(PROTO_REPLY_TIMEOUT, "x", out, sizeof out),
                    0);
  proto_pop3.reply(PROTO_REPLY_BUSY, "x", out, sizeof out);
  ck_assert(strncmp(out, "-ERR [SYS/TEMP] ", 16) == 0);
  ck_assert_uint_eq(proto_pop3.reply(PROTO_REPLY_SHUTDOWN, "x", out, 8), 0);
  ck_assert_uint_eq(proto_smtp.idle_timeout_ms, 300000);
  ck_assert_uint_eq(proto_pop3.idle_timeout_ms, 600000);
}
END_TEST

/* ---- the event loop ---- */

typedef struct hits {
  loop *l;
  int fds[2];
  int count;
  unsigned last;
  int remove_other; /* fd to remove from inside the handler */
} hits;

static void on_ready(void *arg, unsigned events) {
  hits *h = arg;
  h->count++;
  h->last = events;
  if (h->remove_other >= 0) {
    loop_del(h->l, h->remove_other);
    h->remove_other = -1;
  }
}

static void loop_scenario(loop_backend backend) {
  loop *l;
  ck_assert_int_eq(loop_new(backend, &l), 0);
  hits a = {.l = l, .remove_other = -1}, b = {.l = l, .remove_other = -1};
  ck_assert_int_eq(pipe(a.fds), 0);
  ck_assert_int_eq(pipe(b.fds), 0);
  ck_assert_int_eq(loop_add(l, a.fds[0], LOOP_READ, on_ready, &a), 0);
  ck_assert_int_eq(loop_add(l, b.fds[0], LOOP_READ, on_ready, &b), 0);
  ck_assert_int_eq(loop_add(l, a.fds[0], LOOP_READ, on_ready, &a), -1);
  ck_assert_int_eq(errno, EEXIST);

  /* Nothing ready: a timeout. */
  ck_assert_int_eq(loop_wait(l, 10), 0);
  /* Level-triggered: a readable pipe is reported until drained. */
  ck_assert_int_eq(write(a.fds[1], "x", 1), 1);
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert_int_eq(a.count, 2);
  ck_assert_uint_eq(a.last & LOOP_READ, LOOP_READ);
  /* Parked (no interest): not reported, even though readable. */
  ck_assert_int_eq(loop_set(l, a.fds[0], 0), 0);
  ck_assert_int_eq(loop_wait(l, 10), 0);
  ck_assert_int_eq(loop_set(l, a.fds[0], LOOP_READ), 0);
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert_int_eq(a.count, 3);

  /* Both ready; the first handler removes the other: no stale call. */
  ck_assert_int_eq(write(b.fds[1], "y", 1), 1);
  int first_is_a = 1;
  a.remove_other = b.fds[0];
  b.remove_other = a.fds[0];
  int called = loop_wait(l, 1000);
  ck_assert_int_eq(called, 1);
  first_is_a = a.count == 4;
  ck_assert_int_eq(a.count + b.count, 4);
  /* What is left still works; the removed one stays silent. */
  int alive = first_is_a ? a.fds[0] : b.fds[0];
  hits *h = first_is_a ? &a : &b;
  h->remove_other = -1;
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert_int_eq(loop_set(l, first_is_a ? b.fds[0] : a.fds[0], LOOP_READ),
                   -1);
  loop_del(l, alive);
  ck_assert_int_eq(loop_wait(l, 10), 0);

  /* Write interest and hang-up. */
  ck_assert_int_eq(loop_add(l, a.fds[1], LOOP_WRITE, on_ready, &a), 0);
  a.count = 0;
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert_uint_eq(a.last & LOOP_WRITE, LOOP_WRITE);
  loop_del(l, a.fds[1]);
  ck_assert_int_eq(loop_add(l, b.fds[0], LOOP_READ, on_ready, &b), 0);
  close(b.fds[1]);
  b.count = 0;
  ck_assert_int_eq(loop_wait(l, 1000), 1);
  ck_assert(b.last & (LOOP_HUP | LOOP_READ));
  loop_del(l, b.fds[0]);
  close(a.fds[0]);
  close(a.fds[1]);
  close(b.fds[0]);
  loop_free(l);
}

START_TEST(test_loop_wait_poll_backend) {
  loop *l;
  ck_assert_int_eq(loop_new(LOOP_BACKEND_POLL, &l), 0);
  ck_assert_str_eq(loop_backend_name(l), "poll");
  loop_free(l);
  loop_scenario(LOOP_BACKEND_POLL);
}
END_TEST

START_TEST(test_loop_wait_default_backend) {
  loop *l;
  ck_assert_int_eq(loop_new(LOOP_BACKEND_DEFAULT, &l), 0);
#ifdef MAILPROTO_SERVER_EPOLL
  ck_assert_str_eq(loop_backend_name(l), "epoll");
#else
  ck_assert_str_eq(loop_backend_name(l), "poll");
#endif
  loop_free(l);
  loop_scenario(LOOP_BACKEND_DEFAULT);
}
END_TEST

START_TEST(test_loop_wait_many_descriptors) {
  /* More ready descriptors than one epoll batch, and a growing fd table. */
  enum { N = 300 };
  loop *l;
  ck_assert_int_eq(loop_new(LOOP_BACKEND_DEFAULT, &l), 0);
  static int fds[N][2];
  static hits h[N];
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(pipe(fds[i]), 0);
    h[i] = (hits){.l = l, .remove_other = -1};
    ck_assert_int_eq(loop_add(l, fds[i][0], LOOP_READ, on_ready, &h[i]), 0);
    ck_assert_int_eq(write(fds[i][1], "z", 1), 1);
  }
  int total = 0;
  while (total < N) {
    int n = loop_wait(l, 1000);
    ck_assert_int_gt(n, 0);
    total += n;
    for (int i = 0; i < N; i++)
      if (h[i].count)
        (void)loop_set(l, fds[i][0], 0);
  }
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(h[i].count, 1);
    loop_del(l, fds[i][0]);
    close(fds[i][0]);
    close(fds[i][1]);
  }
  loop_free(l);
}
END_TEST

/* ---- allocation failures: fail the N-th allocation for every N ---- */

/* Runs `scenario` with allocation N failing, N = 1, 2, ... until it runs
 * without reaching the failure; every run must leak nothing. `scenario`
 * returns 0 on success, -1 on a clean out-of-memory failure. */
static void alloc_loop(int (*scenario)(void *arg), void *arg) {
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mem_set_allocator(&af.allocator);
    int rc = scenario(arg);
    mem_set_allocator(NULL);
    ck_assert_msg(af.live == 0, "%ld allocations leaked (fail at %lu)", af.live,
                  n);
    if (!alloc_fail_triggered(&af)) {
      ck_assert_int_eq(rc, 0);
      break;
    }
    ck_assert_msg(rc == -1, "failure %lu not reported", n);
  }
}

static int options_scenario(void *arg) {
  (void)arg;
  server_options o;
  char err[256];
  int rc = parse(&o, 0, err, sizeof err, "--user", "a:b", "--domain", "x.org",
                 "--memory", NULL);
  options_free(&o);
  if (rc != 0)
    ck_assert_str_eq(err, "out of memory");
  return rc;
}

START_TEST(test_options_parse_alloc_failure) {
  alloc_loop(options_scenario, NULL);
}
END_TEST

static int users_scenario(void *arg) {
  collected c = {0};
  char err[512];
  long rc = users_load(arg, collect, &c, err, sizeof err);
  if (rc < 0) {
    ck_assert(strstr(err, "out of memory") != NULL);
    return -1;
  }
  ck_assert_int_eq(rc, 2);
  return 0;
}

START_TEST(test_users_load_alloc_failure) {
  char path[] = "/tmp/mailproto-units-users-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "a:1\nb:2\n", 8), 8);
  close(fd);
  alloc_loop(users_scenario, path);
  unlink(path);
}
END_TEST

typedef struct loop_arg {
  loop_backend backend;
  int fds[40][2];
} loop_arg;

static int loop_alloc_scenario(void *arg) {
  loop_arg *la = arg;
  loop *l;
  if (loop_new(la->backend, &l) != 0) {
    ck_assert_int_eq(errno, ENOMEM);
    return -1;
  }
  int rc = 0;
  int added = 0;
  hits h = {.l = l, .remove_other = -1};
  for (int i = 0; i < 40 && rc == 0; i++) {
    if (loop_add(l, la->fds[i][0], LOOP_READ, on_ready, &h) != 0) {
      ck_assert_int_eq(errno, ENOMEM);
      rc = -1;
      break;
    }
    added++;
  }
  /* Every pipe is readable: the batch of ready descriptors grows. */
  if (rc == 0 && loop_wait(l, 1000) < 0) {
    ck_assert_int_eq(errno, ENOMEM);
    rc = -1;
  }
  for (int i = 0; i < added; i++)
    loop_del(l, la->fds[i][0]);
  loop_free(l);
  return rc;
}

static void loop_alloc_backend(loop_backend backend) {
  static loop_arg la;
  la.backend = backend;
  for (int i = 0; i < 40; i++) {
    ck_assert_int_eq(pipe(la.fds[i]), 0);
    ck_assert_int_eq(write(la.fds[i][1], "r", 1), 1);
  }
  alloc_loop(loop_alloc_scenario, &la);
  for (int i = 0; i < 40; i++) {
    close(la.fds[i][0]);
    close(la.fds[i][1]);
  }
}

START_TEST(test_loop_add_alloc_failure) {
  loop_alloc_backend(LOOP_BACKEND_POLL);
  loop_alloc_backend(LOOP_BACKEND_DEFAULT);
}
END_TEST

/* ---- the store wrapper over a fake backend ---- */

typedef struct fake {
  int writers;  /* open inner writers */
  int accounts; /* looked-up accounts not released */
  int begin_rc; /* what deliver_begin returns */
  uint64_t written;
} fake;

static int fake_secret(void *ctx, mailproto_op *op, const char *user,
                       char *secret, size_t size, size_t *len, void **account) {
  (void)op;
  (void)user;
  fake *f = ctx;
  ck_assert_uint_ge(size, 1);
  secret[0] = 'x';
  *len = 1;
  *account = f;
  f->accounts++;
  return 0;
}

static void fake_release(void *ctx, void *account) {
  fake *f = ctx;
  ck_assert_ptr_eq(account, f);
  f->accounts--;
}

static int fake_begin(void *ctx, mailproto_op *op, void *const *accounts,
                      size_t count, const mailproto_delivery_info *info,
                      void **writer) {
  (void)op;
  (void)accounts;
  (void)count;
  (void)info;
  fake *f = ctx;
  if (f->begin_rc != 0)
    return f->begin_rc;
  *writer = f;
  f->writers++;
  return 0;
}

static int fake_write(void *ctx, mailproto_op *op, void *writer,
                      const uint8_t *data, size_t len) {
  (void)op;
  (void)data;
  fake *f = ctx;
  ck_assert_ptr_eq(writer, f);
  f->written += len;
  return 0;
}

static int fake_commit(void *ctx, mailproto_op *op, void *writer, int all,
                       int *results) {
  (void)op;
  (void)all;
  fake *f = ctx;
  ck_assert_ptr_eq(writer, f);
  results[0] = 0;
  results[1] = MAILPROTO_ERR_IO;
  f->writers--;
  return 0;
}

static void fake_abort(void *ctx, void *writer) {
  fake *f = ctx;
  ck_assert_ptr_eq(writer, f);
  f->writers--;
}

static const mailproto_store_ops fake_ops = {
    .struct_size = sizeof(mailproto_store_ops),
    .lookup_secret = fake_secret,
    .release_account = fake_release,
    .deliver_begin = fake_begin,
    .write = fake_write,
    .deliver_commit = fake_commit,
    .abort = fake_abort,
};

typedef struct wrap_env {
  fake f;
  server_options opts;
  server srv;
  listener ls;
  conn c;
} wrap_env;

static void wrap_env_init(wrap_env *e) {
  memset(e, 0, sizeof *e);
  e->srv.opts = &e->opts;
  e->srv.store.ops = &fake_ops;
  e->srv.store.ctx = &e->f;
  e->ls.kind = LISTEN_LMTP;
  e->ls.srv = &e->srv;
  e->c.srv = &e->srv;
  e->c.from = &e->ls;
  e->c.id = 7;
  snprintf(e->c.peer, sizeof e->c.peer, "192.0.2.9:1234");
  store_wrap_init(&e->c);
}

static int deliver_scenario(void *arg) {
  wrap_env *e = arg;
  wrap_env_init(e);
  const mailproto_store *st = &e->c.store;
  const char *rcpts[] = {"alice@example.org", "bob\r\n@example.org"};
  int dummy_accounts[2];
  void *accounts[] = {&dummy_accounts[0], &dummy_accounts[1]};
  mailproto_delivery_info info = {sizeof info, "sender@example.org", rcpts, 0};
  void *writer = NULL;
  int rc = st->ops->deliver_begin(st->ctx, NULL, accounts, 2, &info, &writer);
  if (rc == MAILPROTO_ERR_NOMEM) {
    ck_assert_int_eq(e->f.writers, 0);
    ck_assert(!store_wrap_busy(&e->c));
    return -1;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert(store_wrap_busy(&e->c));
  ck_assert_int_eq(
      st->ops->write(st->ctx, NULL, writer, (const uint8_t *)"hello", 5), 0);
  int results[2];
  ck_assert_int_eq(st->ops->deliver_commit(st->ctx, NULL, writer, 0, results),
                   0);
  ck_assert_int_eq(results[1], MAILPROTO_ERR_IO);
  ck_assert_int_eq(e->f.writers, 0);
  ck_assert_uint_eq(e->f.written, 5);
  ck_assert(!store_wrap_busy(&e->c));
  return 0;
}

START_TEST(test_store_wrap_deliver_alloc_failure) {
  static wrap_env e;
  alloc_loop(deliver_scenario, &e);
}
END_TEST

START_TEST(test_store_wrap_abort_and_failed_begin) {
  static wrap_env e;
  wrap_env_init(&e);
  const mailproto_store *st = &e.c.store;
  const char *rcpts[] = {"alice@example.org"};
  void *accounts[] = {&e};
  mailproto_delivery_info info = {sizeof info, "", rcpts, 0};
  void *writer = NULL;
  ck_assert_int_eq(
      st->ops->deliver_begin(st->ctx, NULL, accounts, 1, &info, &writer), 0);
  st->ops->abort(st->ctx, writer);
  ck_assert_int_eq(e.f.writers, 0);
  ck_assert(!store_wrap_busy(&e.c));
  /* The backend refuses to start: nothing stays behind. */
  e.f.begin_rc = MAILPROTO_ERR_TEMPORARY;
  ck_assert_int_eq(
      st->ops->deliver_begin(st->ctx, NULL, accounts, 1, &info, &writer),
      MAILPROTO_ERR_TEMPORARY);
  ck_assert(!store_wrap_busy(&e.c));
  /* Hooks the backend lacks are reported as unsupported. */
  ck_assert_int_eq(
      st->ops->authenticate(st->ctx, NULL, "", "a", "p", 1, &writer),
      MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(st->ops->list(st->ctx, NULL, NULL, "*", 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  store_wrap_release(&e.c);
}
END_TEST

START_TEST(test_store_wrap_recipient_domains) {
  static wrap_env e;
  wrap_env_init(&e);
  const char *domains[] = {"example.org"};
  e.opts.domains = domains;
  e.opts.domain_count = 1;
  const mailproto_store *st = &e.c.store;
  void *account = NULL;
  /* Another domain is refused before the backend is asked (no relaying). */
  ck_assert_int_eq(st->ops->lookup_recipient(st->ctx, NULL,
                                             "alice@elsewhere.test", &account),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_ptr_null(account);
  /* A local domain reaches the backend (which lacks the hook here). */
  ck_assert_int_eq(
      st->ops->lookup_recipient(st->ctx, NULL, "alice@EXAMPLE.ORG", &account),
      MAILPROTO_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_store_wrap_challenge_failure_tracking) {
  static wrap_env e;
  wrap_env_init(&e);
  const mailproto_store *st = &e.c.store;
  char secret[8];
  size_t len;
  void *account;
  /* Looked up, then released without an auth ok: a failed login. */
  ck_assert_int_eq(st->ops->lookup_secret(st->ctx, NULL, "alice", secret,
                                          sizeof secret, &len, &account),
                   0);
  ck_assert_ptr_eq(e.c.secret_account, account);
  st->ops->release_account(st->ctx, account);
  ck_assert_ptr_null(e.c.secret_account);
  ck_assert_int_eq(e.f.accounts, 0);
  /* Looked up, then auth ok: the later release is no failure. */
  ck_assert_int_eq(st->ops->lookup_secret(st->ctx, NULL, "alice", secret,
                                          sizeof secret, &len, &account),
                   0);
  store_wrap_auth_ok(&e.c, "alice");
  ck_assert_ptr_null(e.c.secret_account);
  st->ops->release_account(st->ctx, account);
  ck_assert_int_eq(e.f.accounts, 0);
}
END_TEST

static Suite *server_units(void) {
  Suite *s = suite_create("server_units");
  TCase *t = tcase_create("parsers");
  tcase_add_test(t, test_address_parse_forms);
  tcase_add_test(t, test_address_parse_rejects_malformed);
  tcase_add_test(t, test_address_parse_no_overread);
  tcase_add_test(t, test_address_client_literal_and_loopback);
  tcase_add_test(t, test_users_parse_file_forms);
  tcase_add_test(t, test_users_parse_reports_line_numbers);
  tcase_add_test(t, test_users_parse_oversized_line);
  tcase_add_test(t, test_users_parse_truncated_no_overread);
  tcase_add_test(t, test_users_split_entry);
  tcase_add_test(t, test_users_load_files);
  tcase_add_test(t, test_options_parse_defaults);
  tcase_add_test(t, test_options_parse_everything);
  tcase_add_test(t, test_options_parse_errors);
  tcase_add_test(t, test_options_parse_long_values_cut_in_messages);
  tcase_add_test(t, test_options_domain_valid_rules);
  tcase_add_test(t, test_options_usage_mentions_every_option);
  tcase_add_test(t, test_log_clean_escapes_and_cuts);
  tcase_add_test(t, test_store_wrap_domain_ok_rules);
  tcase_add_test(t, test_proto_visible_masks_secrets);
  tcase_add_test(t, test_proto_reply_lines);
  suite_add_tcase(s, t);
  TCase *lp = tcase_create("loop");
  tcase_add_test(lp, test_loop_wait_poll_backend);
  tcase_add_test(lp, test_loop_wait_default_backend);
  tcase_add_test(lp, test_loop_wait_many_descriptors);
  suite_add_tcase(s, lp);
  TCase *al = tcase_create("alloc_and_store");
  tcase_add_test(al, test_options_parse_alloc_failure);
  tcase_add_test(al, test_users_load_alloc_failure);
  tcase_add_test(al, test_loop_add_alloc_failure);
  tcase_add_test(al, test_store_wrap_deliver_alloc_failure);
  tcase_add_test(al, test_store_wrap_abort_and_failed_begin);
  tcase_add_test(al, test_store_wrap_recipient_domains);
  tcase_add_test(al, test_store_wrap_challenge_failure_tracking);
  tcase_set_timeout(al, 60);
  suite_add_tcase(s, al);
  return s;
}

int main(void) {
  SRunner *r = srunner_create(server_units());
  srunner_run_all(r, CK_NORMAL);
  int failed = srunner_ntests_failed(r);
  srunner_free(r);
  return failed == 0 ? 0 : 1;
}
