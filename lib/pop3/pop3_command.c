/*
 * POP3 command lines: the checks every line passes, the dispatch table
 * with the states each command is valid in, and the commands that do not
 * authenticate: the TRANSACTION commands (RFC 1939 5 and 7), CAPA (RFC
 * 2449 5), STLS (RFC 2595 4), UTF8 (RFC 6856 2.1) and QUIT.
 *
 * Syntax (RFC 1939 3, RFC 2449 3): a case-insensitive keyword, then
 * arguments each after exactly one space. An empty argument (two spaces
 * in a row, a trailing space) is a syntax error: no client is known to
 * need more leniency, and every reading of a malformed line is a chance
 * for two parsers to disagree. Arguments are limited by the line
 * (RFC 2449 4 raised the 47-octet command of RFC 1939 to 255 octets, so
 * longer user names fit); numbers are decimal digits only.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/utf8.h"
#include "pop3/pop3_internal.h"

#define STATE_AUTH (1u << POP3_AUTHORIZATION)
#define STATE_TRANS (1u << POP3_TRANSACTION)

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Splits "first rest" at the first space. Returns 0, or -1 when the
 * first argument is empty. */
static int split_arg(const char *text, size_t len, size_t *first,
                     const char **rest, size_t *rest_len, int *more) {
  const char *sp = memchr(text, ' ', len);
  *first = sp ? (size_t)(sp - text) : len;
  *more = sp != NULL;
  *rest = sp ? sp + 1 : text + len;
  *rest_len = sp ? len - *first - 1 : 0;
  return *first == 0 ? -1 : 0;
}

int mailproto_pop3_user_pass_usable(const mailproto_pop3 *s) {
  return s->config.user_pass && (s->io.secure || s->config.allow_insecure_auth);
}

/* RFC 6856 2.2: with "UTF8 USER" announced, a client may send UTF-8 user
 * names and passwords, even before the UTF8 command. */
static int utf8_logins(const mailproto_pop3 *s) {
  return s->utf8 || mailproto_pop3_user_pass_usable(s);
}

int mailproto_pop3_text_ok(const mailproto_pop3 *s, const char *text,
                           size_t len, int spaces) {
  const unsigned char *p = (const unsigned char *)text;
  int utf8 = utf8_logins(s);
  for (size_t i = 0; i < len;) {
    if ((p[i] > 0x20 && p[i] < 0x7f) || (p[i] == ' ' && spaces)) {
      i++;
      continue;
    }
    uint32_t cp;
    size_t n =
        utf8 && p[i] >= 0x80 ? mailproto_utf8_decode(p + i, len - i, &cp) : 0;
    if (n == 0)
      return 0;
    i += n;
  }
  return len > 0;
}

/* ------------------------------------------------------------------ */
/* TRANSACTION commands                                                */
/* ------------------------------------------------------------------ */

static int cmd_stat(mailproto_pop3 *s) {
  const pop3_maildrop *d = &s->drop;
  return mailproto_pop3_printf(s, "+OK %zu %llu\r\n", d->count - d->deleted,
                               (unsigned long long)(d->size - d->deleted_size));
}

/* "+OK 2 messages (320 octets)": RFC 1939's drop summary. */
static int drop_summary(mailproto_pop3 *s, const char *head) {
  const pop3_maildrop *d = &s->drop;
  size_t n = d->count - d->deleted;
  return mailproto_pop3_printf(s, "+OK %s%zu message%s (%llu octets)\r\n", head,
                               n, n == 1 ? "" : "s",
                               (unsigned long long)(d->size - d->deleted_size));
}

static int cmd_list(mailproto_pop3 *s, const char *arg, size_t len,
                    int present) {
  size_t i;
  if (!present) {
    int rc = drop_summary(s, "");
    return rc == 0 ? mailproto_pop3_stream_listing(s, POP3_STREAM_LIST) : rc;
  }
  int rc = mailproto_pop3_drop_number(s, arg, len, &i);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  return mailproto_pop3_printf(s, "+OK %zu %llu\r\n", i + 1,
                               (unsigned long long)s->drop.msgs[i].size);
}

static int cmd_uidl(mailproto_pop3 *s, const char *arg, size_t len,
                    int present) {
  size_t i;
  char uid[17];
  if (!present) {
    int rc = mailproto_pop3_ok(s, "Unique-ID listing follows");
    return rc == 0 ? mailproto_pop3_stream_listing(s, POP3_STREAM_UIDL) : rc;
  }
  int rc = mailproto_pop3_drop_number(s, arg, len, &i);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  mailproto_pop3_drop_uid(s, i, uid);
  return mailproto_pop3_printf(s, "+OK %zu %s\r\n", i + 1, uid);
}

static int cmd_retr(mailproto_pop3 *s, const char *arg, size_t len) {
  size_t i;
  int rc = mailproto_pop3_drop_number(s, arg, len, &i);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  return mailproto_pop3_stream_message(s, i, 0, 0);
}

static int cmd_top(mailproto_pop3 *s, const char *args, size_t len) {
  size_t first, rest_len, i;
  const char *rest;
  int more;
  if (split_arg(args, len, &first, &rest, &rest_len, &more) != 0 || !more ||
      rest_len == 0)
    return mailproto_pop3_bad(s, "Syntax error");
  /* RFC 1939 7: a non-negative number of lines; more lines than the body
   * has sends it all, so a value too big to hold means "all". */
  uint64_t lines = 0;
  for (size_t k = 0; k < rest_len; k++) {
    if (rest[k] < '0' || rest[k] > '9')
      return mailproto_pop3_bad(s, "Invalid number of lines");
    unsigned digit = (unsigned)(rest[k] - '0');
    lines = lines > (UINT64_MAX - digit) / 10 ? UINT64_MAX : lines * 10 + digit;
  }
  int rc = mailproto_pop3_drop_number(s, args, first, &i);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  return mailproto_pop3_stream_message(s, i, 1, lines);
}

static int cmd_dele(mailproto_pop3 *s, const char *arg, size_t len) {
  size_t i;
  int rc = mailproto_pop3_drop_number(s, arg, len, &i);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  mailproto_pop3_drop_mark(s, i);
  return mailproto_pop3_printf(s, "+OK Message %zu deleted\r\n", i + 1);
}

static int cmd_rset(mailproto_pop3 *s) {
  mailproto_pop3_drop_unmark_all(s);
  return drop_summary(s, "Maildrop has ");
}

static int cmd_quit(mailproto_pop3 *s) {
  if (s->state == POP3_TRANSACTION)
    return mailproto_pop3_drop_update(s);
  /* RFC 1939 4: QUIT in AUTHORIZATION does not enter UPDATE. */
  mailproto_pop3_close(s);
  return mailproto_pop3_ok(s, "Bye");
}

/* ------------------------------------------------------------------ */
/* CAPA, STLS, UTF8                                                    */
/* ------------------------------------------------------------------ */

static int stls_offered(const mailproto_pop3 *s) {
  /* RFC 2595 4: only in AUTHORIZATION; RFC 6856 2.1: not after UTF8. */
  return s->cb.start_tls && !s->io.secure && s->state == POP3_AUTHORIZATION &&
         !s->utf8;
}

/* RFC 2449 5 and 6; the list is the same in both states (SASL too, RFC
 * 5034 3) except STLS. Small enough to write at once. */
static int cmd_capa(mailproto_pop3 *s) {
  char mechs[64];
  int usable = mailproto_pop3_user_pass_usable(s);
  int n =
      mailproto_sasl_list(s->config.sasl_mechanisms, s->io.secure,
                          s->config.allow_insecure_auth, mechs, sizeof mechs);
  int rc = mailproto_pop3_printf(s,
                                 "+OK Capability list follows\r\n"
                                 "TOP\r\nUIDL\r\n%s",
                                 usable ? "USER\r\n" : "");
  if (rc == 0 && n > 0)
    rc = mailproto_pop3_printf(s, "SASL %s\r\n", mechs);
  if (rc == 0)
    rc = mailproto_pop3_printf(s, "RESP-CODES\r\nAUTH-RESP-CODE\r\n"
                                  "PIPELINING\r\n");
  if (rc == 0 && s->config.expire == -1)
    rc = mailproto_pop3_printf(s, "EXPIRE NEVER\r\n");
  else if (rc == 0 && s->config.expire >= 0)
    rc = mailproto_pop3_printf(s, "EXPIRE %d\r\n", s->config.expire);
  if (rc == 0 && s->config.login_delay >= 0)
    rc = mailproto_pop3_printf(s, "LOGIN-DELAY %d\r\n", s->config.login_delay);
  if (rc == 0 && s->config.implementation)
    rc = mailproto_pop3_printf(s, "IMPLEMENTATION %s\r\n",
                               s->config.implementation);
  if (rc == 0 && stls_offered(s))
    rc = mailproto_pop3_printf(s, "STLS\r\n");
  if (rc == 0)
    rc = mailproto_pop3_printf(s, "UTF8%s\r\n.\r\n", usable ? " USER" : "");
  return rc;
}

static int cmd_stls(mailproto_pop3 *s) {
  if (s->io.secure)
    return mailproto_pop3_err(s, "Command not permitted when TLS active");
  if (!stls_offered(s))
    return mailproto_pop3_bad(s, "Command not valid in this state");
  mailproto_pop3_auth_reset(s);
  int rc = mailproto_pop3_ok(s, "Begin TLS negotiation");
  if (rc == 0)
    mailproto_session_tls_begin(&s->io);
  return rc;
}

static int cmd_utf8(mailproto_pop3 *s) {
  s->utf8 = 1;
  return mailproto_pop3_ok(s, "UTF8 enabled");
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                            */
/* ------------------------------------------------------------------ */

enum arg_rule {
  ARGS_NONE,     /* no argument */
  ARGS_ONE,      /* exactly one (a message number) */
  ARGS_OPTIONAL, /* none or one */
  ARGS_ANY       /* the command parses its arguments itself */
};

enum verb {
  V_USER,
  V_PASS,
  V_APOP,
  V_AUTH,
  V_STLS,
  V_UTF8,
  V_CAPA,
  V_QUIT,
  V_STAT,
  V_LIST,
  V_RETR,
  V_DELE,
  V_NOOP,
  V_RSET,
  V_TOP,
  V_UIDL
};

static const struct command {
  const char *name;
  enum verb verb;
  unsigned states;
  enum arg_rule args;
} commands[] = {
    {"USER", V_USER, STATE_AUTH, ARGS_ANY},
    {"PASS", V_PASS, STATE_AUTH, ARGS_ANY},
    {"APOP", V_APOP, STATE_AUTH, ARGS_ANY},
    {"AUTH", V_AUTH, STATE_AUTH, ARGS_ANY},
    {"STLS", V_STLS, STATE_AUTH, ARGS_NONE},
    {"UTF8", V_UTF8, STATE_AUTH, ARGS_NONE},
    {"CAPA", V_CAPA, STATE_AUTH | STATE_TRANS, ARGS_NONE},
    {"QUIT", V_QUIT, STATE_AUTH | STATE_TRANS, ARGS_NONE},
    {"STAT", V_STAT, STATE_TRANS, ARGS_NONE},
    {"LIST", V_LIST, STATE_TRANS, ARGS_OPTIONAL},
    {"RETR", V_RETR, STATE_TRANS, ARGS_ONE},
    {"DELE", V_DELE, STATE_TRANS, ARGS_ONE},
    {"NOOP", V_NOOP, STATE_TRANS, ARGS_NONE},
    {"RSET", V_RSET, STATE_TRANS, ARGS_NONE},
    {"TOP", V_TOP, STATE_TRANS, ARGS_ANY},
    {"UIDL", V_UIDL, STATE_TRANS, ARGS_OPTIONAL},
};

/* Whether the session implements the command in its configuration: a
 * command it does not offer is answered as unknown (RFC 1939 3). */
static int offered(const mailproto_pop3 *s, enum verb v) {
  switch (v) {
  case V_USER:
  case V_PASS:
    return s->config.user_pass;
  case V_APOP:
    return s->config.apop && s->timestamp;
  case V_STLS:
    return s->cb.start_tls != NULL;
  default:
    return 1;
  }
}

static int run(mailproto_pop3 *s, enum verb v, const char *arg, size_t len,
               int present) {
  switch (v) {
  case V_USER:
    return mailproto_pop3_cmd_user(s, arg, len);
  case V_PASS:
    return mailproto_pop3_cmd_pass(s, arg, len);
  case V_APOP:
    return mailproto_pop3_cmd_apop(s, arg, len);
  case V_AUTH:
    return mailproto_pop3_cmd_auth(s, arg, len, present);
  case V_STLS:
    return cmd_stls(s);
  case V_UTF8:
    return cmd_utf8(s);
  case V_CAPA:
    return cmd_capa(s);
  case V_QUIT:
    return cmd_quit(s);
  case V_STAT:
    return cmd_stat(s);
  case V_LIST:
    return cmd_list(s, arg, len, present);
  case V_RETR:
    return cmd_retr(s, arg, len);
  case V_DELE:
    return cmd_dele(s, arg, len);
  case V_NOOP:
    return mailproto_pop3_ok(s, NULL);
  case V_RSET:
    return cmd_rset(s);
  case V_TOP:
    return cmd_top(s, arg, len);
  case V_UIDL:
    return cmd_uidl(s, arg, len, present);
  }
  return MAILPROTO_ERR_INTERNAL;
}

int mailproto_pop3_command(mailproto_pop3 *s, const mailproto_line *line) {
  const char *text = (const char *)line->data;
  const char *problem = NULL;
  /* Checked before any parser sees the line. */
  if (line->flags & MAILPROTO_LINE_TOO_LONG)
    problem = "Line too long";
  else if (line->flags & MAILPROTO_LINE_HAS_NUL)
    problem = "NUL byte in command";
  else if (line->flags & MAILPROTO_LINE_BARE_CR)
    problem = "Syntax error";
  if (problem) {
    mailproto_pop3_auth_reset(s);
    return mailproto_pop3_bad(s, problem);
  }
  if (s->sasl_active)
    return mailproto_pop3_sasl_line(s, text, line->len);

  size_t verb_len, len;
  const char *arg;
  int present;
  split_arg(text, line->len, &verb_len, &arg, &len, &present);
  const struct command *c = NULL;
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (mailproto_session_verb_is(text, verb_len, commands[i].name))
      c = &commands[i];
  /* RFC 1939 7: PASS only right after USER; anything else forgets the
   * name. */
  if (!c || c->verb != V_PASS)
    mailproto_pop3_auth_reset(s);
  if (!c || !offered(s, c->verb))
    return mailproto_pop3_bad(s, "Unknown command");
  if (!(c->states & (1u << s->state)))
    return mailproto_pop3_bad(s, "Command not valid in this state");
  int bad_args = 0;
  switch (c->args) {
  case ARGS_NONE:
    bad_args = present;
    break;
  case ARGS_ONE:
    bad_args = !present || len == 0 || memchr(arg, ' ', len);
    break;
  case ARGS_OPTIONAL:
    bad_args = present && (len == 0 || memchr(arg, ' ', len));
    break;
  case ARGS_ANY:
    break;
  }
  if (bad_args)
    return mailproto_pop3_bad(s, "Syntax error");
  return run(s, c->verb, arg, len, present);
}
