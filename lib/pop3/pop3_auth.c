/*
 * Logging in: USER/PASS and APOP (RFC 1939 7), AUTH with SASL (RFC 5034)
 * through the core engine, and what follows every successful check: the
 * application's auth policy, then the maildrop opened exclusively (the
 * RFC 1939 4 lock). Failures answer with the RFC 2449 / RFC 3206 response
 * codes: [AUTH] for credentials (after the configured delay, counted
 * toward max_auth_failures), [IN-USE] for the lock, [SYS/TEMP] and
 * [SYS/PERM] for the store.
 *
 * The secrets of an attempt (password, looked-up secret) live only in the
 * SASL engine or in the pop3_login of that attempt, and are wiped with it.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/md5.h"
#include "core/saslprep.h"
#include "pop3/pop3_internal.h"
#include "store/store_call.h"

/* The wording widely deployed servers use; clients show it as is. */
#define PLAINTEXT_REFUSED                                                      \
  "[AUTH] Plaintext authentication disallowed on non-secure connection"
#define APOP_DIGEST_LEN 32

/* ------------------------------------------------------------------ */
/* Attempts                                                            */
/* ------------------------------------------------------------------ */

static void login_free(mailproto_pop3 *s) {
  if (!s->login)
    return;
  mailproto_store_call_release_account(&s->store, s->login->account);
  mailproto_secure_zero(s->login, sizeof *s->login);
  mailproto_mem_free(&s->alloc, s->login);
  s->login = NULL;
}

static void sasl_end(mailproto_pop3 *s) {
  mailproto_sasl_free(s->sasl);
  s->sasl = NULL;
  if (s->sasl_active)
    mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
  s->sasl_active = 0;
}

void mailproto_pop3_auth_reset(mailproto_pop3 *s) {
  sasl_end(s);
  login_free(s);
  mailproto_mem_free(&s->alloc, s->user_arg);
  s->user_arg = NULL;
}

/* Starts an attempt for `user` (copied; empty for SASL, which learns it
 * from the exchange). */
static int login_new(mailproto_pop3 *s, const char *user, size_t len) {
  s->login = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->login);
  if (!s->login)
    return MAILPROTO_ERR_NOMEM;
  memcpy(s->login->user, user, len);
  s->login->user[len] = '\0';
  /* A store's verdict must not be dressed in an old policy text. */
  mailproto_reply_clear(&s->reply, &s->alloc);
  return 0;
}

/* The reply of a failed attempt. */
static int failure_reply(mailproto_pop3 *s, enum pop3_failure f) {
  switch (f) {
  case POP3_FAIL_AUTH: {
    const char *text =
        s->reply.text ? s->reply.text : "[AUTH] Authentication failed";
    int rc = mailproto_pop3_err(s, text);
    if (s->config.max_auth_failures != 0 &&
        s->auth_failures >= s->config.max_auth_failures)
      mailproto_pop3_close(s);
    return rc;
  }
  case POP3_FAIL_IN_USE:
    return mailproto_pop3_err(s,
                              "[IN-USE] Mailbox is locked by another session");
  case POP3_FAIL_TEMP:
    return mailproto_pop3_err(s, "[SYS/TEMP] Mailbox temporarily unavailable");
  case POP3_FAIL_PERM:
    return mailproto_pop3_err(s, "[SYS/PERM] Mailbox unavailable");
  }
  return MAILPROTO_ERR_INTERNAL;
}

/* An attempt failed: forget it; a credentials failure counts and waits
 * for the delay first (a rejected policy too, so the timing never tells a
 * right password from a wrong one). */
static int login_failed(mailproto_pop3 *s, enum pop3_failure f) {
  sasl_end(s);
  login_free(s);
  if (f != POP3_FAIL_AUTH)
    return failure_reply(s, f);
  /* failure_reply() compares the count with the limit, after the delay. */
  (void)mailproto_session_count(&s->auth_failures, s->config.max_auth_failures);
  if (s->config.auth_failure_delay_ms == 0 || !s->cb.delay)
    return failure_reply(s, f);
  s->failure = f;
  /* Not policy_begin: the reply text of a rejection must survive. */
  mailproto_op_begin(&s->io.op, POP3_OP_DELAY);
  int rc =
      s->cb.delay(s, &s->io.op, s->config.auth_failure_delay_ms, s->user_data);
  return mailproto_pop3_after_op(s, POP3_OP_DELAY,
                                 mailproto_pop3_policy_end(s, rc));
}

static int temporary(int code) {
  return code == MAILPROTO_ERR_TEMPORARY || code == MAILPROTO_ERR_IO ||
         code == MAILPROTO_ERR_IN_USE || code == MAILPROTO_ERR_LIMIT ||
         code == MAILPROTO_ERR_CANCELLED;
}

/* A store hook checking credentials failed. */
static int check_failed(mailproto_pop3 *s, int code) {
  if (mailproto_is_fatal(code))
    return code;
  if (temporary(code))
    return login_failed(s, POP3_FAIL_TEMP);
  /* A store that cannot check this way is a setup problem, not the
   * user's: the credentials were never looked at. */
  if (code == MAILPROTO_ERR_UNSUPPORTED)
    return login_failed(s, POP3_FAIL_PERM);
  return login_failed(s, POP3_FAIL_AUTH);
}

static int open_maildrop(mailproto_pop3 *s) {
  mailproto_pop3_drop_close(s);
  return mailproto_pop3_after_op(
      s, POP3_OP_OPEN,
      mailproto_store_call_open(&s->store, &s->io.op, POP3_OP_OPEN,
                                s->login->account, "INBOX",
                                MAILPROTO_OPEN_EXCLUSIVE, NULL, NULL,
                                &s->drop.handle, &s->login->status));
}

/* The credentials are right: ask the policy, then lock the maildrop. */
static int login_verified(mailproto_pop3 *s) {
  sasl_end(s);
  if (!s->cb.auth)
    return open_maildrop(s);
  mailproto_pop3_policy_begin(s, POP3_OP_AUTH_POLICY);
  int rc = s->cb.auth(s, &s->io.op, s->login->user, s->user_data);
  return mailproto_pop3_after_op(s, POP3_OP_AUTH_POLICY,
                                 mailproto_pop3_policy_end(s, rc));
}

static int opened(mailproto_pop3 *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc != 0) {
    mailproto_pop3_drop_close(s);
    return login_failed(s, rc == MAILPROTO_ERR_IN_USE ? POP3_FAIL_IN_USE
                           : temporary(rc)            ? POP3_FAIL_TEMP
                                                      : POP3_FAIL_PERM);
  }
  s->user = mailproto_mem_strdup(&s->alloc, s->login->user);
  if (!s->user)
    return MAILPROTO_ERR_NOMEM;
  s->drop.uidvalidity = s->login->status.uidvalidity;
  s->account = s->login->account;
  s->login->account = NULL;
  login_free(s);
  s->state = POP3_TRANSACTION;
  const pop3_maildrop *d = &s->drop;
  return mailproto_pop3_printf(s,
                               "+OK Maildrop has %zu message%s (%llu "
                               "octets)\r\n",
                               d->count, d->count == 1 ? "" : "s",
                               (unsigned long long)d->size);
}

/* RFC 1939 7: MD5 over the greeting's timestamp and the shared secret,
 * compared in constant time. RFC 6856 2.2: the secret is SASLprep'd as a
 * stored string first. */
static int apop_matches(const mailproto_pop3 *s) {
  const pop3_login *l = s->login;
  mailproto_md5 md5;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[2 * MAILPROTO_MD5_DIGEST_LEN + 1];
  char secret[MAILPROTO_SECRET_MAX + 1];
  size_t secret_len;
  if (mailproto_credential_prepare(l->secret, l->secret_len,
                                   MAILPROTO_PREP_STORED, secret, sizeof secret,
                                   &secret_len) != 0) {
    mailproto_secure_zero(secret, sizeof secret);
    return 0;
  }
  mailproto_md5_init(&md5);
  mailproto_md5_update(&md5, s->timestamp, strlen(s->timestamp));
  mailproto_md5_update(&md5, secret, secret_len);
  mailproto_secure_zero(secret, sizeof secret);
  mailproto_md5_final(&md5, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  int same = mailproto_memcmp_const(hex, l->digest, APOP_DIGEST_LEN) == 0;
  mailproto_secure_zero(&md5, sizeof md5);
  mailproto_secure_zero(digest, sizeof digest);
  mailproto_secure_zero(hex, sizeof hex);
  return same;
}

/* The secret fits its buffer: store_call refuses a longer secret_len. */
static int secret_found(mailproto_pop3 *s) {
  pop3_login *l = s->login;
  int ok;
  if (l->apop)
    ok = apop_matches(s);
  else
    ok = mailproto_sasl_verify_secret(s->sasl, l->secret, l->secret_len) ==
         MAILPROTO_SASL_SUCCESS;
  mailproto_secure_zero(l->secret, sizeof l->secret);
  return ok ? login_verified(s) : login_failed(s, POP3_FAIL_AUTH);
}

int mailproto_pop3_auth_done(mailproto_pop3 *s, int kind, int rc) {
  switch (kind) {
  case POP3_OP_AUTHENTICATE:
    return rc == 0 ? login_verified(s) : check_failed(s, rc);
  case POP3_OP_LOOKUP_SECRET:
    return rc == 0 ? secret_found(s) : check_failed(s, rc);
  case POP3_OP_AUTH_POLICY:
    if (mailproto_is_fatal(rc))
      return rc;
    if (s->reply.nomem)
      return MAILPROTO_ERR_NOMEM;
    if (rc < 0)
      return login_failed(s, POP3_FAIL_TEMP);
    if (s->reply.code >= 400)
      return login_failed(s, POP3_FAIL_AUTH);
    return open_maildrop(s);
  case POP3_OP_OPEN:
    return opened(s, rc);
  case POP3_OP_DELAY:
    /* The wait is over, however it ended. */
    return mailproto_is_fatal(rc) ? rc : failure_reply(s, s->failure);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

/* ------------------------------------------------------------------ */
/* USER, PASS, APOP                                                    */
/* ------------------------------------------------------------------ */

int mailproto_pop3_cmd_user(mailproto_pop3 *s, const char *arg, size_t len) {
  if (!mailproto_pop3_user_pass_usable(s))
    return mailproto_pop3_err(s, PLAINTEXT_REFUSED);
  char user[MAILPROTO_SASL_FIELD_MAX + 1];
  size_t user_len;
  if (len > MAILPROTO_SASL_FIELD_MAX ||
      !mailproto_pop3_text_ok(s, arg, len, 0) ||
      mailproto_credential_prepare(arg, len, MAILPROTO_PREP_QUERY, user,
                                   sizeof user, &user_len) != 0)
    return mailproto_pop3_bad(s, "Syntax error");
  mailproto_mem_free(&s->alloc, s->user_arg);
  s->user_arg = mailproto_mem_strndup(&s->alloc, user, user_len);
  if (!s->user_arg)
    return MAILPROTO_ERR_NOMEM;
  /* The same answer for every name: RFC 1939 13 warns that -ERR here
   * tells attackers which names exist. */
  return mailproto_pop3_ok(s, "Send password");
}

int mailproto_pop3_cmd_pass(mailproto_pop3 *s, const char *arg, size_t len) {
  if (!mailproto_pop3_user_pass_usable(s))
    return mailproto_pop3_err(s, PLAINTEXT_REFUSED);
  if (!s->user_arg)
    return mailproto_pop3_bad(s, "Send USER first");
  /* RFC 1939 7: the password is the rest of the line, spaces included. */
  char password[MAILPROTO_SASL_FIELD_MAX + 1];
  size_t password_len;
  if (len > MAILPROTO_SASL_FIELD_MAX ||
      !mailproto_pop3_text_ok(s, arg, len, 1) ||
      mailproto_credential_prepare(arg, len, MAILPROTO_PREP_QUERY, password,
                                   sizeof password, &password_len) != 0) {
    mailproto_secure_zero(password, sizeof password);
    mailproto_pop3_auth_reset(s);
    return mailproto_pop3_bad(s, "Syntax error");
  }
  int rc = login_new(s, s->user_arg, strlen(s->user_arg));
  mailproto_mem_free(&s->alloc, s->user_arg);
  s->user_arg = NULL;
  if (rc == 0)
    rc = mailproto_pop3_after_op(s, POP3_OP_AUTHENTICATE,
                                 mailproto_store_call_authenticate(
                                     &s->store, &s->io.op, POP3_OP_AUTHENTICATE,
                                     "", s->login->user, password, password_len,
                                     &s->login->account));
  mailproto_secure_zero(password, sizeof password);
  return rc;
}

static int lower_hex(const char *p, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
      return 0;
  return 1;
}

int mailproto_pop3_cmd_apop(mailproto_pop3 *s, const char *args, size_t len) {
  const char *sp = memchr(args, ' ', len);
  size_t name_len = sp ? (size_t)(sp - args) : len;
  const char *digest = sp ? sp + 1 : NULL;
  /* "APOP name digest": the digest is 32 lowercase hex digits. */
  if (!digest || len - name_len - 1 != APOP_DIGEST_LEN ||
      !lower_hex(digest, APOP_DIGEST_LEN) ||
      name_len > MAILPROTO_SASL_FIELD_MAX ||
      !mailproto_pop3_text_ok(s, args, name_len, 0))
    return mailproto_pop3_bad(s, "Syntax error");
  char user[MAILPROTO_SASL_FIELD_MAX + 1];
  size_t user_len;
  if (mailproto_credential_prepare(args, name_len, MAILPROTO_PREP_QUERY, user,
                                   sizeof user, &user_len) != 0)
    return mailproto_pop3_bad(s, "Syntax error");
  int rc = login_new(s, user, user_len);
  if (rc != 0)
    return rc;
  pop3_login *l = s->login;
  l->apop = 1;
  memcpy(l->digest, digest, APOP_DIGEST_LEN);
  return mailproto_pop3_after_op(
      s, POP3_OP_LOOKUP_SECRET,
      mailproto_store_call_lookup_secret(
          &s->store, &s->io.op, POP3_OP_LOOKUP_SECRET, l->user, l->secret,
          sizeof l->secret, &l->secret_len, &l->account));
}

/* ------------------------------------------------------------------ */
/* AUTH (RFC 5034)                                                     */
/* ------------------------------------------------------------------ */

/* RFC 5034 4: responses may be as long as the mechanisms need, whatever
 * the command line limit: the engine's longest (PLAIN's three fields, in
 * base64) plus CRLF. */
static size_t sasl_line_max(const mailproto_pop3 *s) {
  size_t n = mailproto_base64_encoded_len(3 * MAILPROTO_SASL_FIELD_MAX + 3) + 2;
  return n > s->config.max_line ? n : s->config.max_line;
}

/* The engine's verdict: send a challenge, ask the store, or fail. */
static int sasl_next(mailproto_pop3 *s, int step) {
  mailproto_sasl *x = s->sasl;
  pop3_login *l = s->login;
  size_t len;
  switch (step) {
  case MAILPROTO_SASL_CHALLENGE:
    if (!s->sasl_active)
      mailproto_line_reader_set_max(&s->io.lines, sasl_line_max(s));
    s->sasl_active = 1;
    /* RFC 5034 4: "+" SP base64; an empty challenge is "+ " alone. */
    return mailproto_pop3_printf(s, "+ %s\r\n", x->out);
  case MAILPROTO_SASL_CHECK_PASSWORD: {
    const char *user = x->authzid[0] ? x->authzid : x->authcid;
    len = strlen(user);
    memcpy(l->user, user, len + 1);
    mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
    s->sasl_active = 0;
    return mailproto_pop3_after_op(
        s, POP3_OP_AUTHENTICATE,
        mailproto_store_call_authenticate(
            &s->store, &s->io.op, POP3_OP_AUTHENTICATE, x->authzid, x->authcid,
            x->password, x->password_len, &l->account));
  }
  case MAILPROTO_SASL_NEED_SECRET:
    len = strlen(x->authcid);
    memcpy(l->user, x->authcid, len + 1);
    mailproto_line_reader_set_max(&s->io.lines, s->config.max_line);
    s->sasl_active = 0;
    return mailproto_pop3_after_op(
        s, POP3_OP_LOOKUP_SECRET,
        mailproto_store_call_lookup_secret(
            &s->store, &s->io.op, POP3_OP_LOOKUP_SECRET, x->authcid, l->secret,
            sizeof l->secret, &l->secret_len, &l->account));
  case MAILPROTO_ERR_AUTH_FAILED:
    return login_failed(s, POP3_FAIL_AUTH);
  default:
    /* RFC 5034 4: a cancelled or undecodable exchange gets -ERR, and the
     * session behaves as if AUTH had never been given. */
    mailproto_pop3_auth_reset(s);
    if (step == MAILPROTO_ERR_CANCELLED)
      return mailproto_pop3_err(s, "Authentication cancelled");
    if (step < 0 && mailproto_is_fatal(step))
      return step;
    return mailproto_pop3_bad(s, "Invalid authentication data");
  }
}

int mailproto_pop3_sasl_line(mailproto_pop3 *s, const char *text, size_t len) {
  return sasl_next(s, mailproto_sasl_step(s->sasl, text, len));
}

/* AUTH without a mechanism lists them, one a line (RFC 1734's form,
 * which clients such as Outlook still probe with). */
static int list_mechanisms(mailproto_pop3 *s) {
  char mechs[64];
  if (mailproto_sasl_list(s->config.sasl_mechanisms, s->io.secure,
                          s->config.allow_insecure_auth, mechs,
                          sizeof mechs) < 0)
    return MAILPROTO_ERR_INTERNAL;
  int rc = mailproto_pop3_ok(s, NULL);
  for (const char *p = mechs; rc == 0 && *p;) {
    size_t word = strcspn(p, " ");
    rc = mailproto_pop3_printf(s, "%.*s\r\n", (int)word, p);
    p += word + (p[word] == ' ');
  }
  return rc == 0 ? mailproto_pop3_printf(s, ".\r\n") : rc;
}

int mailproto_pop3_cmd_auth(mailproto_pop3 *s, const char *args, size_t len,
                            int present) {
  if (!present)
    return list_mechanisms(s);
  const char *sp = memchr(args, ' ', len);
  size_t name_len = sp ? (size_t)(sp - args) : len;
  const char *ir = sp ? sp + 1 : NULL;
  size_t ir_len = sp ? len - name_len - 1 : 0;
  if (name_len == 0 || (ir && memchr(ir, ' ', ir_len)))
    return mailproto_pop3_bad(s, "Syntax error");
  const mailproto_sasl_mech *mech = mailproto_sasl_find(args, name_len);
  int rc = mailproto_sasl_allowed(mech, s->config.sasl_mechanisms, s->io.secure,
                                  s->config.allow_insecure_auth);
  if (rc == MAILPROTO_ERR_ENCRYPTION_REQUIRED)
    return mailproto_pop3_err(s, PLAINTEXT_REFUSED);
  if (rc != 0)
    return mailproto_pop3_err(s, "Unsupported authentication mechanism");
  char challenge[256];
  if (mech->server_first &&
      (rc = mailproto_pop3_challenge(s, challenge, sizeof challenge)) != 0)
    return rc;
  if ((rc = mailproto_sasl_new(&s->alloc, &s->sasl)) != 0 ||
      (rc = login_new(s, "", 0)) != 0)
    return rc;
  return sasl_next(
      s, mailproto_sasl_start(
             s->sasl, mech, mech->server_first ? challenge : NULL, ir, ir_len));
}
