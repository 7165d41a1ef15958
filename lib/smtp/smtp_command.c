/*
 * Command lines (RFC 5321 4.1): the checks every line goes through, the
 * dispatch, and the commands of the envelope and the session: HELO, EHLO,
 * LHLO (RFC 2033 4.1), MAIL, RCPT, RSET, NOOP, QUIT, VRFY, EXPN, HELP and
 * STARTTLS (RFC 3207). DATA, BDAT and AUTH live in their own files.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"

enum verb {
  V_HELO,
  V_EHLO,
  V_LHLO,
  V_MAIL,
  V_RCPT,
  V_DATA,
  V_BDAT,
  V_RSET,
  V_NOOP,
  V_QUIT,
  V_VRFY,
  V_EXPN,
  V_HELP,
  V_AUTH,
  V_STARTTLS,
  V_COUNT
};

static const char *const verb_names[V_COUNT] = {
    "HELO", "EHLO", "LHLO", "MAIL", "RCPT", "DATA", "BDAT",    "RSET",
    "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "AUTH", "STARTTLS"};

/* A command's arguments: what follows the verb and one space. */
typedef struct args {
  const char *text;
  size_t len;
  int present; /* a space followed the verb */
} args;

static int has_8bit(const char *t, size_t len) {
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)t[i] >= 0x80)
      return 1;
  return 0;
}

/* Verbs of extensions that are not on offer are unknown commands. */
static int offered(const mailproto_smtp *s, enum verb v) {
  switch (v) {
  case V_BDAT:
    return (s->ext & MAILPROTO_SMTP_EXT_CHUNKING) != 0;
  case V_AUTH:
    return (s->ext & MAILPROTO_SMTP_EXT_AUTH) != 0;
  case V_STARTTLS:
    return (s->ext & MAILPROTO_SMTP_EXT_STARTTLS) && s->cb.start_tls;
  default:
    return 1;
  }
}

static int unknown(mailproto_smtp *s) {
  return mailproto_smtp_error(s, 500, "5.5.2", "Error: command not recognized");
}

/* ------------------------------------------------------------------ */
/* HELO, EHLO, LHLO                                                    */
/* ------------------------------------------------------------------ */

static int cmd_hello(mailproto_smtp *s, enum verb v, const args *a) {
  /* RFC 2033 4.1: LMTP has LHLO instead of HELO and EHLO. */
  if (s->config.lmtp && v != V_LHLO)
    return mailproto_smtp_error(s, 500, "5.5.1", "Error: use LHLO in LMTP");
  if (!s->config.lmtp && v == V_LHLO)
    return unknown(s);
  /* RFC 2034 3: no enhanced codes in replies to HELO and EHLO. */
  int utf8 = (s->ext & MAILPROTO_SMTP_EXT_SMTPUTF8) != 0;
  if (!a->present || a->len == 0 || a->len > MAILPROTO_SMTP_DOMAIN_MAX + 2 ||
      mailproto_smtp_check_domain(a->text, a->len, utf8) != 0) {
    char text[32];
    snprintf(text, sizeof text, "Syntax: %s domain", verb_names[v]);
    return mailproto_smtp_error(s, 501, NULL, text);
  }
  /* RFC 5321 4.1.4: a greeting resets the transaction; the old name is
   * forgotten until the new one is accepted. */
  mailproto_smtp_txn_reset(s);
  mailproto_mem_free(&s->alloc, s->helo);
  s->helo = NULL;
  s->pending = mailproto_mem_strndup(&s->alloc, a->text, a->len);
  if (!s->pending)
    return MAILPROTO_ERR_NOMEM;
  s->pending_verb = (int)v;
  mailproto_smtp_policy_begin(s, SMTP_OP_HELO);
  int rc = s->cb.helo ? s->cb.helo(s, &s->io.op, verb_names[v], s->pending,
                                   s->user_data)
                      : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_HELO, rc);
}

/* The EHLO/LHLO keyword lines (RFC 5321 4.1.1.1), in a fixed order. */
static int ehlo_keywords(mailproto_smtp *s, char lines[][320]) {
  size_t n = 0;
  unsigned e = s->ext;
  if (e & MAILPROTO_SMTP_EXT_PIPELINING)
    snprintf(lines[n++], 320, "PIPELINING");
  if (e & MAILPROTO_SMTP_EXT_SIZE) {
    /* RFC 1870 4: SIZE with no number means no fixed limit. */
    if (s->config.max_message_size)
      snprintf(lines[n++], 320, "SIZE %llu",
               (unsigned long long)s->config.max_message_size);
    else
      snprintf(lines[n++], 320, "SIZE");
  }
  if (e & MAILPROTO_SMTP_EXT_8BITMIME)
    snprintf(lines[n++], 320, "8BITMIME");
  if (e & MAILPROTO_SMTP_EXT_ENHANCED)
    snprintf(lines[n++], 320, "ENHANCEDSTATUSCODES");
  if (e & MAILPROTO_SMTP_EXT_SMTPUTF8)
    snprintf(lines[n++], 320, "SMTPUTF8");
  if (e & MAILPROTO_SMTP_EXT_CHUNKING)
    snprintf(lines[n++], 320, "CHUNKING");
  if (e & MAILPROTO_SMTP_EXT_BINARYMIME)
    snprintf(lines[n++], 320, "BINARYMIME");
  if (e & MAILPROTO_SMTP_EXT_DSN)
    snprintf(lines[n++], 320, "DSN");
  /* RFC 3207 4.2: not offered again once the transport is secure. */
  if ((e & MAILPROTO_SMTP_EXT_STARTTLS) && s->cb.start_tls && !s->io.secure)
    snprintf(lines[n++], 320, "STARTTLS");
  if (e & MAILPROTO_SMTP_EXT_AUTH) {
    char mechs[64];
    if (mailproto_smtp_auth_mechs(s, mechs, sizeof mechs) > 0)
      snprintf(lines[n++], 320, "AUTH %s", mechs);
  }
  return (int)n;
}

int mailproto_smtp_helo_done(mailproto_smtp *s, int rc) {
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  char *name = s->pending;
  s->pending = NULL;
  if (verdict != SMTP_ACCEPT) {
    mailproto_mem_free(&s->alloc, name);
    if (verdict == SMTP_CLOSE)
      return mailproto_smtp_close_421(s, NULL, "Error: internal failure");
    smtp_reply r = {451, NULL, "Temporary failure, try again later"};
    if (verdict == SMTP_REJECT)
      mailproto_smtp_policy_reply(s, &r, &r);
    /* RFC 2034 3: still no enhanced code. */
    if (r.code == 421)
      return mailproto_smtp_close_421(s, NULL, r.text);
    return mailproto_smtp_reply(s, r.code, NULL, r.text);
  }
  s->helo = name;
  s->esmtp = s->pending_verb != V_HELO;
  char first[SMTP_REPLY_LINE_MAX];
  if (s->preply.text)
    snprintf(first, sizeof first, "%s %s", s->hostname, s->preply.text);
  else
    snprintf(first, sizeof first, "%s", s->hostname);
  if (!s->esmtp)
    return mailproto_smtp_reply(s, 250, NULL, first);
  char lines[12][320];
  int n = ehlo_keywords(s, lines);
  if (n == 0)
    return mailproto_smtp_reply(s, 250, NULL, first);
  int out = mailproto_smtp_reply_more(s, 250, first);
  for (int i = 0; out == 0 && i < n - 1; i++)
    out = mailproto_smtp_reply_more(s, 250, lines[i]);
  return out != 0 ? out : mailproto_smtp_reply(s, 250, NULL, lines[n - 1]);
}

/* ------------------------------------------------------------------ */
/* MAIL and RCPT                                                       */
/* ------------------------------------------------------------------ */

static int parse_failed(mailproto_smtp *s,
                        const mailproto_smtp_envelope_args *e) {
  return mailproto_smtp_error(s, e->reply.code, e->reply.enhanced,
                              e->reply.text);
}

static int cmd_mail(mailproto_smtp *s, const char *after_verb, size_t len) {
  if (!s->helo)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: send HELO/EHLO first");
  /* RFC 4954 6 (submission): 530 until the client authenticates. */
  if (s->config.require_auth && !s->user)
    return mailproto_smtp_reply(s, 530, "5.7.0", "Authentication required");
  if (s->txn.active)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: nested MAIL command");
  mailproto_smtp_envelope_args e;
  if (mailproto_smtp_parse_mail(after_verb, len, s->ext, &e) != 0)
    return parse_failed(s, &e);
  /* RFC 1870 6.1: a declared size over the limit is refused at once. */
  if (e.has_size && s->config.max_message_size &&
      e.size > s->config.max_message_size)
    return mailproto_smtp_reply(
        s, 552, "5.3.4", "Message size exceeds fixed maximum message size");
  mailproto_smtp_txn_reset(s);
  s->txn.reverse_path = mailproto_mem_strndup(&s->alloc, e.path, e.path_len);
  if (!s->txn.reverse_path)
    return MAILPROTO_ERR_NOMEM;
  s->txn.declared_size = e.has_size ? e.size : 0;
  s->txn.body = e.body;
  s->txn.smtputf8 = e.smtputf8;

  mailproto_smtp_mail m;
  memset(&m, 0, sizeof m);
  m.struct_size = sizeof m;
  m.reverse_path = s->txn.reverse_path;
  m.size = s->txn.declared_size;
  m.body = e.body;
  m.smtputf8 = e.smtputf8;
  m.auth = e.has_auth ? e.auth : NULL;
  m.ret = e.ret;
  m.envid = e.has_envid ? e.envid : NULL;
  mailproto_smtp_policy_begin(s, SMTP_OP_MAIL);
  int rc = s->cb.mail ? s->cb.mail(s, &s->io.op, &m, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_MAIL, rc);
}

int mailproto_smtp_mail_done(mailproto_smtp *s, int rc) {
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  if (verdict != SMTP_ACCEPT) {
    mailproto_smtp_txn_reset(s);
    smtp_reply fallback = {550, "5.7.1", "Sender rejected"};
    return mailproto_smtp_reply_verdict(s, verdict, &fallback);
  }
  s->txn.active = 1;
  smtp_reply r, fallback = {250, "2.1.0", "Sender OK"};
  mailproto_smtp_policy_reply(s, &fallback, &r);
  return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
}

static int cmd_rcpt(mailproto_smtp *s, const char *after_verb, size_t len) {
  if (!s->txn.active)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: need MAIL command");
  /* The writer was opened for the recipients known at the first BDAT. */
  if (s->txn.data_used)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: RCPT after BDAT");
  mailproto_smtp_envelope_args e;
  if (mailproto_smtp_parse_rcpt(after_verb, len, s->ext, s->txn.smtputf8, &e) !=
      0)
    return parse_failed(s, &e);
  /* RFC 5321 4.5.3.1.10: 452 for too many recipients. */
  if (s->txn.accepted >= s->config.max_recipients)
    return mailproto_smtp_reply(s, 452, "4.5.3", "Error: too many recipients");
  s->pending = mailproto_mem_strndup(&s->alloc, e.path, e.path_len);
  if (!s->pending)
    return MAILPROTO_ERR_NOMEM;

  mailproto_smtp_rcpt r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  r.forward_path = s->pending;
  r.notify = e.notify;
  r.orcpt_type = e.has_orcpt ? e.orcpt_type : NULL;
  r.orcpt = e.has_orcpt ? e.orcpt : NULL;
  mailproto_smtp_policy_begin(s, SMTP_OP_RCPT);
  int rc = s->cb.rcpt ? s->cb.rcpt(s, &s->io.op, &r, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_RCPT, rc);
}

int mailproto_smtp_rcpt_done(mailproto_smtp *s, int rc) {
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  if (verdict != SMTP_ACCEPT) {
    mailproto_mem_free(&s->alloc, s->pending);
    s->pending = NULL;
    smtp_reply fallback = {550, "5.7.1", "Recipient rejected"};
    return mailproto_smtp_reply_verdict(s, verdict, &fallback);
  }
  /* The policy's reply (if any) waits for the lookup's result. */
  return mailproto_smtp_after_store(
      s, SMTP_OP_LOOKUP,
      mailproto_store_call_lookup_recipient(
          &s->store, &s->io.op, SMTP_OP_LOOKUP, s->pending, &s->rcpt_account));
}

int mailproto_smtp_lookup_done(mailproto_smtp *s, int rc) {
  char *addr = s->pending;
  void *account = s->rcpt_account;
  s->pending = NULL;
  s->rcpt_account = NULL;
  if (rc != 0) {
    mailproto_mem_free(&s->alloc, addr);
    mailproto_store_call_release_account(&s->store, account);
    if (mailproto_is_fatal(rc))
      return rc;
    smtp_reply r;
    if (rc == MAILPROTO_ERR_NOT_FOUND)
      r = (smtp_reply){550, "5.1.1", "User unknown"};
    else
      mailproto_smtp_store_failure(rc, &r);
    return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
  }
  rc = mailproto_smtp_txn_add(s, addr, account);
  if (rc != 0)
    return rc;
  smtp_reply r, fallback = {250, "2.1.5", "Recipient OK"};
  mailproto_smtp_policy_reply(s, &fallback, &r);
  return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
}

/* ------------------------------------------------------------------ */
/* The rest                                                            */
/* ------------------------------------------------------------------ */

static int cmd_vrfy(mailproto_smtp *s, const args *a) {
  if (!a->present || a->len == 0)
    return mailproto_smtp_error(s, 501, "5.5.4", "Syntax: VRFY address");
  s->pending = mailproto_mem_strndup(&s->alloc, a->text, a->len);
  if (!s->pending)
    return MAILPROTO_ERR_NOMEM;
  mailproto_smtp_policy_begin(s, SMTP_OP_VRFY);
  int rc = s->cb.vrfy ? s->cb.vrfy(s, &s->io.op, s->pending, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_VRFY, rc);
}

int mailproto_smtp_vrfy_done(mailproto_smtp *s, int rc) {
  mailproto_mem_free(&s->alloc, s->pending);
  s->pending = NULL;
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  if (verdict != SMTP_ACCEPT) {
    smtp_reply fallback = {550, "5.1.1", "User unknown"};
    return mailproto_smtp_reply_verdict(s, verdict, &fallback);
  }
  /* RFC 5321 3.5.3: 252 when the server will not say. */
  smtp_reply r,
      fallback = {252, "2.5.0",
                  "Cannot VRFY user, but will accept message and attempt "
                  "delivery"};
  mailproto_smtp_policy_reply(s, &fallback, &r);
  return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
}

static int cmd_help(mailproto_smtp *s) {
  char text[200];
  snprintf(text, sizeof text,
           "Commands: %s MAIL RCPT DATA%s RSET NOOP QUIT "
           "VRFY HELP%s%s",
           s->config.lmtp ? "LHLO" : "HELO EHLO",
           offered(s, V_BDAT) ? " BDAT" : "", offered(s, V_AUTH) ? " AUTH" : "",
           offered(s, V_STARTTLS) ? " STARTTLS" : "");
  return mailproto_smtp_reply(s, 214, "2.0.0", text);
}

static int cmd_starttls(mailproto_smtp *s, const args *a) {
  if (s->io.secure)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: TLS already active");
  /* RFC 3207 4: "501 Syntax error (no parameters allowed)". */
  if (a->present)
    return mailproto_smtp_error(s, 501, "5.5.4", "Syntax: STARTTLS");
  int rc = mailproto_smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
  if (rc != 0)
    return rc;
  /* Whatever follows in the input is dropped by the feed loop. */
  mailproto_session_tls_begin(&s->io);
  return 0;
}

/* RSET, QUIT and DATA take no arguments (RFC 5321 4.1.1). */
static int syntax(mailproto_smtp *s, enum verb v) {
  char text[32];
  snprintf(text, sizeof text, "Syntax: %s", verb_names[v]);
  return mailproto_smtp_error(s, 501, "5.5.4", text);
}

static int dispatch(mailproto_smtp *s, enum verb v, const args *a,
                    const char *after_verb, size_t after_len) {
  switch (v) {
  case V_HELO:
  case V_EHLO:
  case V_LHLO:
    return cmd_hello(s, v, a);
  case V_MAIL:
    return cmd_mail(s, after_verb, after_len);
  case V_RCPT:
    return cmd_rcpt(s, after_verb, after_len);
  case V_DATA:
    if (a->present)
      return syntax(s, v);
    return mailproto_smtp_cmd_data(s);
  case V_BDAT:
    return mailproto_smtp_cmd_bdat(s, a->text, a->len, a->present);
  case V_RSET:
    if (a->present)
      return syntax(s, v);
    mailproto_smtp_txn_reset(s);
    return mailproto_smtp_reply(s, 250, "2.0.0", "Reset OK");
  case V_NOOP:
    return mailproto_smtp_reply(s, 250, "2.0.0", "OK");
  case V_QUIT:
    if (a->present)
      return syntax(s, v);
    s->state = SMTP_ST_CLOSING;
    return mailproto_smtp_replyf(s, 221, "2.0.0", "%s closing connection",
                                 s->hostname);
  case V_VRFY:
    return cmd_vrfy(s, a);
  case V_EXPN:
    return mailproto_smtp_reply(s, 502, "5.5.1", "EXPN not supported");
  case V_HELP:
    return cmd_help(s);
  case V_AUTH:
    return mailproto_smtp_cmd_auth(s, a->text, a->len, a->present);
  case V_STARTTLS:
    return cmd_starttls(s, a);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

int mailproto_smtp_command(mailproto_smtp *s, const mailproto_line *line) {
  const char *text = (const char *)line->data;
  size_t len = line->len;
  if (line->flags & MAILPROTO_LINE_TOO_LONG)
    return mailproto_smtp_error(s, 500, "5.5.2", "Error: line too long");
  if (line->flags & MAILPROTO_LINE_HAS_NUL)
    return mailproto_smtp_error(s, 500, "5.5.2",
                                "Error: NUL character in command");
  if (line->flags & MAILPROTO_LINE_BARE_CR)
    return mailproto_smtp_error(s, 500, "5.5.2", "Error: bare CR in command");
  /* RFC 6531 3.2: 8-bit command text only with SMTPUTF8 on offer; MAIL
   * and RCPT check their addresses against the parameter themselves. */
  if (!(s->ext & MAILPROTO_SMTP_EXT_SMTPUTF8) && has_8bit(text, len))
    return mailproto_smtp_error(s, 500, "5.5.2",
                                "Error: non-ASCII character in command");
  /* Trailing spaces are a common client slip, never meaningful. */
  while (len > 0 && text[len - 1] == ' ')
    len--;
  size_t verb_len = 0;
  while (verb_len < len && text[verb_len] != ' ')
    verb_len++;
  enum verb v = V_COUNT;
  for (int i = 0; i < V_COUNT; i++)
    if (mailproto_session_verb_is(text, verb_len, verb_names[i])) {
      v = (enum verb)i;
      break;
    }
  if (v == V_COUNT || !offered(s, v))
    return unknown(s);
  /* RFC 5321 3.1: after a 554 greeting only QUIT is answered normally. */
  if (s->rejected && v != V_QUIT)
    return mailproto_smtp_error(s, 503, "5.5.1",
                                "Error: no service here, send QUIT");
  args a = {text + len, 0, 0};
  if (verb_len < len) {
    a.text = text + verb_len + 1;
    a.len = len - verb_len - 1;
    a.present = 1;
  }
  return dispatch(s, v, &a, text + verb_len, len - verb_len);
}
