/*
 * The not authenticated state (RFC 3501 6.2): the greeting with the
 * connect policy, STARTTLS, LOGIN and AUTHENTICATE (SASL through the core
 * engine, with the initial response of RFC 4959), and what follows every
 * successful check: the application's auth policy, then the
 * authenticated state with a CAPABILITY response code (RFC 9051 6.2.3:
 * the client must learn the capabilities again).
 *
 * Failures answer with the RFC 5530 codes: AUTHENTICATIONFAILED for
 * credentials (counted toward max_auth_failures), AUTHORIZATIONFAILED
 * for a rejected login as someone else, PRIVACYREQUIRED for plaintext on
 * an insecure transport, UNAVAILABLE when the store is in trouble.
 *
 * The secrets of an attempt live only in the SASL engine or in the
 * imap_login of that attempt, and are wiped with it.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/saslprep.h"
#include "imap/imap_internal.h"
#include "store/store_call.h"

#define PLAINTEXT_REFUSED                                                      \
  "Plaintext authentication disallowed on non-secure connection"

/* ------------------------------------------------------------------ */
/* Greeting                                                            */
/* ------------------------------------------------------------------ */

/* Splits a policy text "[CODE] text" into its response code (copied into
 * `code`) and the text after it. */
static const char *split_code(const char *text, char *code, size_t size) {
  code[0] = '\0';
  if (!text || text[0] != '[')
    return text;
  const char *end = strchr(text, ']');
  size_t n = end ? (size_t)(end - text - 1) : 0;
  if (!end || n == 0 || n >= size)
    return text;
  memcpy(code, text + 1, n);
  code[n] = '\0';
  text = end + 1;
  while (*text == ' ')
    text++;
  return text;
}

int mailproto_imap_greeting(mailproto_imap *s) {
  char caps[IMAP_CAPABILITY_MAX];
  s->state = IMAP_NOT_AUTH;
  mailproto_imap_set_reader_limits(s);
  if (mailproto_imap_capabilities(s, caps, sizeof caps) < 0)
    return MAILPROTO_ERR_INTERNAL;
  /* RFC 3501 7.1.1, RFC 9051 7.1: the greeting may carry the
   * capabilities, saving the client a round trip. */
  return mailproto_imap_untagged(s, "OK", caps, s->config.greeting);
}

int mailproto_imap_connect_done(mailproto_imap *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  if (s->reply.nomem)
    return MAILPROTO_ERR_NOMEM;
  if (rc < 0 || s->reply.code >= 400) {
    char code[IMAP_POLICY_TEXT_MAX + 1];
    const char *text;
    if (rc < 0) {
      strcpy(code, "UNAVAILABLE");
      text = "Service temporarily unavailable";
    } else {
      text = split_code(s->reply.text ? s->reply.text : "Service not available",
                        code, sizeof code);
    }
    /* RFC 3501 7.1.5: BYE as the greeting refuses the connection. */
    mailproto_imap_close(s);
    return mailproto_imap_untagged(s, "BYE", code, text);
  }
  return mailproto_imap_greeting(s);
}

/* ------------------------------------------------------------------ */
/* Attempts                                                            */
/* ------------------------------------------------------------------ */

static void login_free(mailproto_imap *s) {
  if (!s->login)
    return;
  mailproto_store_call_release_account(&s->store, s->login->account);
  mailproto_secure_zero(s->login, sizeof *s->login);
  mailproto_mem_free(&s->alloc, s->login);
  s->login = NULL;
}

static void sasl_end(mailproto_imap *s) {
  mailproto_sasl_free(s->sasl);
  s->sasl = NULL;
}

void mailproto_imap_auth_reset(mailproto_imap *s) {
  sasl_end(s);
  login_free(s);
}

static int login_new(mailproto_imap *s, const char *user, size_t len) {
  s->login = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->login);
  if (!s->login)
    return MAILPROTO_ERR_NOMEM;
  memcpy(s->login->user, user, len);
  s->login->user[len] = '\0';
  /* A store's verdict must not be dressed in an old policy text. */
  mailproto_reply_clear(&s->reply, &s->alloc);
  return 0;
}

/* Credentials were refused (or the policy said no): counted; at the limit
 * the session ends (issue 7: failed logins before BYE). */
static int login_failed(mailproto_imap *s, const char *code, const char *text) {
  char policy_code[IMAP_POLICY_TEXT_MAX + 1];
  sasl_end(s);
  login_free(s);
  if (s->reply.text) {
    text = split_code(s->reply.text, policy_code, sizeof policy_code);
    code = policy_code[0] ? policy_code : NULL;
  }
  int limit =
      mailproto_session_count(&s->auth_failures, s->config.max_auth_failures);
  int rc = mailproto_imap_done(s, "NO", code, text);
  if (rc == 0 && limit)
    rc = mailproto_imap_bye_after(s, "Too many authentication failures");
  return rc;
}

static int temporary(int code) {
  return code == MAILPROTO_ERR_TEMPORARY || code == MAILPROTO_ERR_IO ||
         code == MAILPROTO_ERR_IN_USE || code == MAILPROTO_ERR_LIMIT ||
         code == MAILPROTO_ERR_CANCELLED;
}

/* A store hook checking credentials failed. */
static int check_failed(mailproto_imap *s, int code) {
  if (mailproto_is_fatal(code))
    return code;
  sasl_end(s);
  if (temporary(code)) {
    login_free(s);
    return mailproto_imap_done(s, "NO", "UNAVAILABLE",
                               "Authentication temporarily unavailable");
  }
  /* A store that cannot check this way is a setup problem, not the
   * user's: the credentials were never looked at. */
  if (code == MAILPROTO_ERR_UNSUPPORTED) {
    login_free(s);
    return mailproto_imap_done(s, "NO", "CANNOT",
                               "Authentication method not available");
  }
  return login_failed(s, "AUTHENTICATIONFAILED", "Authentication failed");
}

static int login_complete(mailproto_imap *s) {
  char caps[IMAP_CAPABILITY_MAX];
  s->user = mailproto_mem_strdup(&s->alloc, s->login->user);
  if (!s->user)
    return MAILPROTO_ERR_NOMEM;
  s->account = s->login->account;
  s->login->account = NULL;
  login_free(s);
  s->state = IMAP_AUTH;
  mailproto_imap_set_reader_limits(s);
  if (mailproto_imap_capabilities(s, caps, sizeof caps) < 0)
    return MAILPROTO_ERR_INTERNAL;
  return mailproto_imap_done(s, "OK", caps, "Logged in");
}

/* The credentials are right: ask the policy, then log in. */
static int login_verified(mailproto_imap *s) {
  sasl_end(s);
  if (!s->cb.auth)
    return login_complete(s);
  mailproto_imap_policy_begin(s, IMAP_OP_AUTH_POLICY);
  int rc = s->cb.auth(s, &s->io.op, s->login->user, s->user_data);
  return mailproto_imap_after_op(s, IMAP_OP_AUTH_POLICY,
                                 mailproto_imap_policy_end(s, rc));
}

/* The secret fits its buffer: store_call refuses a longer secret_len. */
static int secret_found(mailproto_imap *s) {
  imap_login *l = s->login;
  int ok = mailproto_sasl_verify_secret(s->sasl, l->secret, l->secret_len) ==
           MAILPROTO_SASL_SUCCESS;
  mailproto_secure_zero(l->secret, sizeof l->secret);
  return ok ? login_verified(s)
            : login_failed(s, "AUTHENTICATIONFAILED", "Authentication failed");
}

int mailproto_imap_auth_done(mailproto_imap *s, int kind, int rc) {
  switch (kind) {
  case IMAP_OP_AUTHENTICATE:
    return rc == 0 ? login_verified(s) : check_failed(s, rc);
  case IMAP_OP_LOOKUP_SECRET:
    return rc == 0 ? secret_found(s) : check_failed(s, rc);
  case IMAP_OP_AUTH_POLICY:
    if (mailproto_is_fatal(rc))
      return rc;
    if (s->reply.nomem)
      return MAILPROTO_ERR_NOMEM;
    if (rc < 0) {
      login_free(s);
      return mailproto_imap_done(s, "NO", "UNAVAILABLE",
                                 "Authentication temporarily unavailable");
    }
    if (s->reply.code >= 400)
      return login_failed(s, "AUTHENTICATIONFAILED", "Authentication failed");
    return login_complete(s);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

/* ------------------------------------------------------------------ */
/* LOGIN (RFC 3501 6.2.3)                                              */
/* ------------------------------------------------------------------ */

static int plaintext_allowed(const mailproto_imap *s) {
  return s->io.secure || s->config.allow_insecure_auth;
}

int mailproto_imap_cmd_login(mailproto_imap *s) {
  const mailproto_imap_str *user = &s->cmd.u.login.user;
  const mailproto_imap_str *pass = &s->cmd.u.login.password;
  /* RFC 3501 6.2.3 and 7.2.1 (LOGINDISABLED). */
  if (!plaintext_allowed(s))
    return mailproto_imap_done(s, "NO", "PRIVACYREQUIRED", PLAINTEXT_REFUSED);
  /* Prepared as every login path prepares them (core/saslprep.h). */
  char name[MAILPROTO_SASL_FIELD_MAX + 1];
  char password[MAILPROTO_SASL_FIELD_MAX + 1];
  size_t name_len, password_len;
  if (user->len == 0 || user->len > MAILPROTO_SASL_FIELD_MAX ||
      pass->len > MAILPROTO_SASL_FIELD_MAX ||
      mailproto_credential_prepare(user->data, user->len, MAILPROTO_PREP_QUERY,
                                   name, sizeof name, &name_len) != 0 ||
      mailproto_credential_prepare(pass->data, pass->len, MAILPROTO_PREP_QUERY,
                                   password, sizeof password,
                                   &password_len) != 0) {
    mailproto_secure_zero(password, sizeof password);
    mailproto_reply_clear(&s->reply, &s->alloc);
    return login_failed(s, "AUTHENTICATIONFAILED", "Authentication failed");
  }
  int rc = login_new(s, name, name_len);
  if (rc == 0)
    rc = mailproto_imap_after_op(s, IMAP_OP_AUTHENTICATE,
                                 mailproto_store_call_authenticate(
                                     &s->store, &s->io.op, IMAP_OP_AUTHENTICATE,
                                     "", s->login->user, password, password_len,
                                     &s->login->account));
  mailproto_secure_zero(password, sizeof password);
  return rc;
}

/* ------------------------------------------------------------------ */
/* AUTHENTICATE (RFC 3501 6.2.2, RFC 4959)                             */
/* ------------------------------------------------------------------ */

static int sasl_next(mailproto_imap *s, int step) {
  mailproto_sasl *x = s->sasl;
  imap_login *l = s->login;
  switch (step) {
  case MAILPROTO_SASL_CHALLENGE: {
    /* RFC 3501 6.2.2: "+" SP base64 (empty for an empty challenge); the
     * client's answer is one line, read raw. */
    int rc = mailproto_imap_write_continuation(&s->line, x->out, 1);
    if (rc == 0)
      rc = mailproto_imap_emit(s);
    if (rc == 0)
      rc = mailproto_imap_reader_raw_line(&s->reader);
    if (rc != 0)
      return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
    s->phase = IMAP_PHASE_INPUT;
    return 0;
  }
  case MAILPROTO_SASL_CHECK_PASSWORD: {
    const char *user = x->authzid[0] ? x->authzid : x->authcid;
    memcpy(l->user, user, strlen(user) + 1);
    s->phase = IMAP_PHASE_NONE;
    return mailproto_imap_after_op(
        s, IMAP_OP_AUTHENTICATE,
        mailproto_store_call_authenticate(
            &s->store, &s->io.op, IMAP_OP_AUTHENTICATE, x->authzid, x->authcid,
            x->password, x->password_len, &l->account));
  }
  case MAILPROTO_SASL_NEED_SECRET:
    memcpy(l->user, x->authcid, strlen(x->authcid) + 1);
    s->phase = IMAP_PHASE_NONE;
    return mailproto_imap_after_op(
        s, IMAP_OP_LOOKUP_SECRET,
        mailproto_store_call_lookup_secret(
            &s->store, &s->io.op, IMAP_OP_LOOKUP_SECRET, x->authcid, l->secret,
            sizeof l->secret, &l->secret_len, &l->account));
  case MAILPROTO_ERR_AUTH_FAILED:
    return login_failed(s, "AUTHENTICATIONFAILED", "Authentication failed");
  default:
    mailproto_imap_auth_reset(s);
    if (step < 0 && mailproto_is_fatal(step))
      return step;
    /* RFC 3501 6.2.2: "*" or an invalid base64 string: tagged BAD. */
    if (step == MAILPROTO_ERR_CANCELLED)
      return mailproto_imap_done_uncounted(s, "BAD",
                                           "Authentication cancelled");
    return mailproto_imap_done(s, "BAD", NULL, "Invalid authentication data");
  }
}

int mailproto_imap_sasl_line(mailproto_imap *s, const uint8_t *data, size_t len,
                             int too_long) {
  if (too_long) {
    mailproto_imap_auth_reset(s);
    return mailproto_imap_done(s, "BAD", NULL, "Response too long");
  }
  return sasl_next(s, mailproto_sasl_step(s->sasl, (const char *)data, len));
}

int mailproto_imap_cmd_authenticate(mailproto_imap *s) {
  const mailproto_imap_str *name = &s->cmd.u.authenticate.mechanism;
  const mailproto_sasl_mech *mech = mailproto_sasl_find(name->data, name->len);
  int rc = mailproto_sasl_allowed(mech, s->config.sasl_mechanisms, s->io.secure,
                                  s->config.allow_insecure_auth);
  if (rc == MAILPROTO_ERR_ENCRYPTION_REQUIRED)
    return mailproto_imap_done(s, "NO", "PRIVACYREQUIRED", PLAINTEXT_REFUSED);
  if (rc != 0)
    return mailproto_imap_done(s, "NO", "CANNOT",
                               "Unsupported authentication mechanism");
  char challenge[256];
  if (mech->server_first &&
      (rc = mailproto_imap_challenge(s, challenge, sizeof challenge)) != 0)
    return rc;
  if ((rc = mailproto_sasl_new(&s->alloc, &s->sasl)) != 0 ||
      (rc = login_new(s, "", 0)) != 0)
    return rc;
  /* RFC 4959 3: "=" is an empty initial response (the parser gives ""),
   * which the engine takes as "=". */
  const char *ir = NULL;
  size_t ir_len = 0;
  if (s->cmd.u.authenticate.has_initial) {
    ir = s->cmd.u.authenticate.initial.len ? s->cmd.u.authenticate.initial.data
                                           : "=";
    ir_len = s->cmd.u.authenticate.initial.len
                 ? s->cmd.u.authenticate.initial.len
                 : 1;
  }
  return sasl_next(
      s, mailproto_sasl_start(
             s->sasl, mech, mech->server_first ? challenge : NULL, ir, ir_len));
}

/* ------------------------------------------------------------------ */
/* STARTTLS (RFC 3501 6.2.1)                                           */
/* ------------------------------------------------------------------ */

int mailproto_imap_cmd_starttls(mailproto_imap *s) {
  if (!s->cb.start_tls || s->io.secure)
    return mailproto_imap_done(s, "NO", "CANNOT", "STARTTLS not available");
  s->tls_go = 1;
  return mailproto_imap_done(s, "OK", NULL, "Begin TLS negotiation now");
}
