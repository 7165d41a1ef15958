/*
 * AUTH (RFC 4954) over the core SASL engine: the engine turns client lines
 * into credentials, the store checks them (and may defer), the auth policy
 * callback has the last word. Every exchange gets a fresh engine and every
 * end (success, failure, "*", a bad line) wipes it, so a failed or
 * cancelled exchange leaves nothing behind for the next one
 * (CVE-2011-1720 class).
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"

int mailproto_smtp_auth_mechs(const mailproto_smtp *s, char *out, size_t size) {
  int n = mailproto_sasl_list(s->config.sasl_mechanisms, s->io.secure,
                              s->config.allow_insecure_auth, out, size);
  return n < 0 ? 0 : n;
}

void mailproto_smtp_auth_end(mailproto_smtp *s) {
  smtp_auth *a = s->auth;
  if (!a)
    return;
  mailproto_sasl_free(a->sasl);
  mailproto_store_call_release_account(&s->store, a->candidate);
  mailproto_secure_zero(a->secret, sizeof a->secret);
  mailproto_mem_free(&s->alloc, a);
  s->auth = NULL;
  if (s->state == SMTP_ST_AUTH)
    s->state = SMTP_ST_COMMAND;
  mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
}

/* Ends the exchange with a reply; `counts` says whether it is a failed
 * attempt toward max_auth_failures (then 421 follows the last one). */
static int auth_fail(mailproto_smtp *s, int code, const char *enhanced,
                     const char *text, int counts) {
  mailproto_smtp_auth_end(s);
  int rc = mailproto_smtp_reply(s, code, enhanced, text);
  if (rc != 0 || !counts)
    return rc;
  if (mailproto_session_count(&s->auth_failures, s->config.max_auth_failures))
    return mailproto_smtp_close_421(s, "4.7.0",
                                    "Error: too many authentication failures");
  return 0;
}

/* The engine's or the store's failure code as an AUTH reply. */
static int auth_error(mailproto_smtp *s, int rc) {
  if (mailproto_is_fatal(rc)) {
    mailproto_smtp_auth_end(s);
    return rc;
  }
  switch (rc) {
  case MAILPROTO_ERR_CANCELLED: /* RFC 4954 4: "*" gets 501 */
    return auth_fail(s, 501, "5.0.0", "Authentication cancelled", 0);
  case MAILPROTO_ERR_SYNTAX:
    mailproto_smtp_auth_end(s);
    return mailproto_smtp_error(s, 501, "5.5.2",
                                "Cannot decode authentication response");
  case MAILPROTO_ERR_TOO_LONG:
    mailproto_smtp_auth_end(s);
    return mailproto_smtp_error(s, 500, "5.5.6",
                                "Authentication exchange line is too long");
  case MAILPROTO_ERR_AUTH_FAILED:
  case MAILPROTO_ERR_NOT_FOUND:
  case MAILPROTO_ERR_PERMISSION:
    return auth_fail(s, 535, "5.7.8", "Authentication credentials invalid", 1);
  default: /* the store could not tell: RFC 4954 6 */
    return auth_fail(s, 454, "4.7.0", "Temporary authentication failure", 0);
  }
}

/* The engine's next step: a challenge, a store call, or a failure. */
static int auth_next(mailproto_smtp *s, int rc) {
  smtp_auth *a = s->auth;
  mailproto_sasl *x = a->sasl;
  switch (rc) {
  case MAILPROTO_SASL_CHALLENGE:
    /* RFC 4954 4: an empty challenge is "334 " with the space. */
    s->state = SMTP_ST_AUTH;
    mailproto_line_reader_set_max(&s->io.lines,
                                  s->config.max_line > SMTP_AUTH_LINE_MAX
                                      ? s->config.max_line
                                      : SMTP_AUTH_LINE_MAX);
    return mailproto_smtp_replyf(s, 334, NULL, "%s", x->out);
  case MAILPROTO_SASL_CHECK_PASSWORD:
    s->state = SMTP_ST_COMMAND;
    mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
    return mailproto_smtp_after_store(
        s, SMTP_OP_AUTHENTICATE,
        mailproto_store_call_authenticate(
            &s->store, &s->io.op, SMTP_OP_AUTHENTICATE, x->authzid, x->authcid,
            x->password, x->password_len, &a->candidate));
  case MAILPROTO_SASL_NEED_SECRET:
    s->state = SMTP_ST_COMMAND;
    mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
    return mailproto_smtp_after_store(
        s, SMTP_OP_SECRET,
        mailproto_store_call_lookup_secret(
            &s->store, &s->io.op, SMTP_OP_SECRET, x->authcid, a->secret,
            sizeof a->secret, &a->secret_len, &a->candidate));
  default:
    return auth_error(s, rc < 0 ? rc : MAILPROTO_ERR_INTERNAL);
  }
}

int mailproto_smtp_cmd_auth(mailproto_smtp *s, const char *args, size_t len,
                            int has_args) {
  /* RFC 4954 4: after EHLO, once per session, not inside a transaction. */
  if (!s->helo)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: send EHLO first");
  if (s->user)
    return mailproto_smtp_error(s, 503, "5.5.1",
                                "Error: already authenticated");
  if (s->txn.active)
    return mailproto_smtp_error(s, 503, "5.5.1",
                                "Error: AUTH not allowed during a transaction");
  if (!has_args || len == 0)
    return mailproto_smtp_error(s, 501, "5.5.4",
                                "Syntax: AUTH mechanism [initial-response]");
  const char *sp = memchr(args, ' ', len);
  size_t name_len = sp ? (size_t)(sp - args) : len;
  const mailproto_sasl_mech *mech = mailproto_sasl_find(args, name_len);
  int rc = mailproto_sasl_allowed(mech, s->config.sasl_mechanisms, s->io.secure,
                                  s->config.allow_insecure_auth);
  if (rc == MAILPROTO_ERR_ENCRYPTION_REQUIRED)
    /* RFC 4954 6: 538 5.7.11 */
    return mailproto_smtp_reply(s, 538, "5.7.11",
                                "Encryption required for requested "
                                "authentication mechanism");
  if (rc != 0)
    return mailproto_smtp_error(s, 504, "5.5.4",
                                "Unrecognized authentication type");
  const char *ir = sp ? sp + 1 : NULL;
  size_t ir_len = sp ? len - name_len - 1 : 0;
  /* RFC 4954 4: an initial response to a server-first mechanism. */
  if (ir && mech->server_first)
    return mailproto_smtp_error(s, 501, "5.7.0",
                                "Initial response not allowed for this "
                                "mechanism");
  char challenge[MAILPROTO_SASL_CHALLENGE_MAX + 1];
  if (mech->server_first)
    mailproto_smtp_cram_challenge(s, challenge, sizeof challenge);
  s->auth = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->auth);
  if (!s->auth)
    return MAILPROTO_ERR_NOMEM;
  if ((rc = mailproto_sasl_new(&s->alloc, &s->auth->sasl)) != 0) {
    mailproto_smtp_auth_end(s);
    return rc;
  }
  return auth_next(s, mailproto_sasl_start(
                          s->auth->sasl, mech,
                          mech->server_first ? challenge : NULL, ir, ir_len));
}

int mailproto_smtp_auth_line(mailproto_smtp *s, const mailproto_line *line) {
  if (line->flags & MAILPROTO_LINE_TOO_LONG)
    return auth_error(s, MAILPROTO_ERR_TOO_LONG);
  /* Base64 has no NUL or CR: such a line cannot decode. */
  if (line->flags & (MAILPROTO_LINE_HAS_NUL | MAILPROTO_LINE_BARE_CR))
    return auth_error(s, MAILPROTO_ERR_SYNTAX);
  return auth_next(s, mailproto_sasl_step(s->auth->sasl,
                                          (const char *)line->data, line->len));
}

/* The store verified the credentials: the auth policy decides. */
static int auth_verified(mailproto_smtp *s) {
  const mailproto_sasl *x = s->auth->sasl;
  /* RFC 4954 4: the authorization identity, which defaults to the
   * authentication identity. */
  const char *who = x->authzid[0] ? x->authzid : x->authcid;
  s->pending = mailproto_mem_strdup(&s->alloc, who);
  if (!s->pending) {
    mailproto_smtp_auth_end(s);
    return MAILPROTO_ERR_NOMEM;
  }
  mailproto_smtp_policy_begin(s, SMTP_OP_AUTH_POLICY);
  int rc = s->cb.auth ? s->cb.auth(s, &s->io.op, s->pending, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_AUTH_POLICY, rc);
}

int mailproto_smtp_auth_store_done(mailproto_smtp *s, int kind, int rc) {
  smtp_auth *a = s->auth;
  if (rc != 0)
    return auth_error(s, rc);
  if (kind == SMTP_OP_SECRET) {
    rc = mailproto_sasl_verify_secret(a->sasl, a->secret, a->secret_len);
    mailproto_secure_zero(a->secret, sizeof a->secret);
    if (rc != MAILPROTO_SASL_SUCCESS)
      return auth_error(s, rc < 0 ? rc : MAILPROTO_ERR_INTERNAL);
  }
  return auth_verified(s);
}

int mailproto_smtp_auth_policy_done(mailproto_smtp *s, int rc) {
  char *user = s->pending;
  s->pending = NULL;
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0 || verdict == SMTP_CLOSE || verdict == SMTP_TEMPFAIL) {
    mailproto_mem_free(&s->alloc, user);
    mailproto_smtp_auth_end(s);
    if (verdict < 0)
      return verdict;
    if (verdict == SMTP_CLOSE)
      return mailproto_smtp_close_421(s, "4.3.0", "Error: internal failure");
    return mailproto_smtp_reply(s, 454, "4.7.0",
                                "Temporary authentication failure");
  }
  if (verdict == SMTP_REJECT) {
    mailproto_mem_free(&s->alloc, user);
    smtp_reply r,
        fallback = {535, "5.7.8", "Authentication credentials invalid"};
    mailproto_smtp_policy_reply(s, &fallback, &r);
    if (r.code == 421) {
      mailproto_smtp_auth_end(s);
      return mailproto_smtp_close_421(s, r.enhanced, r.text);
    }
    return auth_fail(s, r.code, r.enhanced, r.text, 1);
  }
  s->user = user;
  s->account = s->auth->candidate;
  s->auth->candidate = NULL;
  mailproto_smtp_auth_end(s);
  smtp_reply r, fallback = {235, "2.7.0", "Authentication successful"};
  mailproto_smtp_policy_reply(s, &fallback, &r);
  return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
}
