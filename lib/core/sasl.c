/*
 * The SASL server engine (RFC 4422) and its mechanisms: PLAIN (RFC 4616),
 * LOGIN (draft-murchison-sasl-login) and CRAM-MD5 (RFC 2195).
 *
 * The engine decodes and length-checks every client response before a
 * mechanism sees it, so a mechanism only parses bytes. A mechanism is one
 * table entry plus its start/step/verify_secret functions; `step` in the
 * engine is its private progress counter.
 *
 * Every exchange starts from a wiped engine and every failure wipes it
 * again and ends the exchange, so nothing of an earlier, abandoned or
 * failed exchange can leak into the next one (the CVE-2011-1720 class,
 * where a second mechanism ran on state left by the first).
 */
#include "core/sasl.h"

#include <string.h>

#include "core/alloc.h"
#include "core/md5.h"
#include "core/saslprep.h"

/* Longest decoded client response: PLAIN's three fields and two NULs, with
 * room for one more byte so an over-long message is seen as such. */
#define SASL_RESPONSE_MAX (3 * MAILPROTO_SASL_FIELD_MAX + 3)

/* ------------------------------------------------------------------ */
/* Helpers shared by the mechanisms                                    */
/* ------------------------------------------------------------------ */

/* Sets `out` to the base64 form of `raw`, the challenge to send. */
static int set_challenge(mailproto_sasl *s, const void *raw, size_t len) {
  long n = mailproto_base64_encode(raw, len, s->out, sizeof s->out - 1);
  if (n < 0)
    return MAILPROTO_ERR_INTERNAL;
  s->out_len = (size_t)n;
  s->out[s->out_len] = '\0';
  return MAILPROTO_SASL_CHALLENGE;
}

/* Copies an identity or password into a NUL-terminated field, prepared
 * as every login path prepares it (RFC 4616 2: SASLprep, see
 * core/saslprep.h); sets *out_len when not NULL. A NUL inside would silently
 * shorten the C string ("admin\0junk"), so it is refused. */
static int set_field(char *field, const uint8_t *in, size_t len,
                     int allow_empty, size_t *out_len) {
  if (len > MAILPROTO_SASL_FIELD_MAX)
    return MAILPROTO_ERR_TOO_LONG;
  if ((len == 0 && !allow_empty) || memchr(in, '\0', len))
    return MAILPROTO_ERR_SYNTAX;
  size_t n;
  int rc =
      mailproto_credential_prepare((const char *)in, len, MAILPROTO_PREP_QUERY,
                                   field, MAILPROTO_SASL_FIELD_MAX + 1, &n);
  if (rc == 0 && out_len)
    *out_len = n;
  /* A short line whose credential normalises beyond the field is not an
   * over-long line: it fails preparation (RFC 4616 2). */
  return rc == MAILPROTO_ERR_TOO_LONG ? MAILPROTO_ERR_SYNTAX : rc;
}

/* ------------------------------------------------------------------ */
/* PLAIN (RFC 4616)                                                    */
/* ------------------------------------------------------------------ */

enum { PLAIN_WAIT_MESSAGE = 1 };

/* RFC 4616 section 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd,
 * where authcid and passwd are 1*SAFE (no NUL). */
static int plain_parse(mailproto_sasl *s, const uint8_t *in, size_t len) {
  const uint8_t *nul1 = memchr(in, '\0', len);
  if (!nul1)
    return MAILPROTO_ERR_SYNTAX;
  size_t zid_len = (size_t)(nul1 - in);
  const uint8_t *cid = nul1 + 1;
  const uint8_t *nul2 = memchr(cid, '\0', len - zid_len - 1);
  if (!nul2)
    return MAILPROTO_ERR_SYNTAX;
  size_t cid_len = (size_t)(nul2 - cid);
  const uint8_t *pw = nul2 + 1;
  size_t pw_len = len - zid_len - cid_len - 2;

  /* set_field refuses a third NUL, which would land in the password. */
  int rc = set_field(s->authzid, in, zid_len, 1, NULL);
  if (rc == 0)
    rc = set_field(s->authcid, cid, cid_len, 0, NULL);
  if (rc == 0)
    rc = set_field(s->password, pw, pw_len, 0, &s->password_len);
  if (rc != 0)
    return rc;
  return MAILPROTO_SASL_CHECK_PASSWORD;
}

static int plain_start(mailproto_sasl *s, const uint8_t *ir, size_t ir_len,
                       int has_ir) {
  if (has_ir)
    return plain_parse(s, ir, ir_len);
  /* RFC 4422 section 5: no initial response, so an empty challenge. */
  s->step = PLAIN_WAIT_MESSAGE;
  return set_challenge(s, "", 0);
}

static int plain_step(mailproto_sasl *s, const uint8_t *in, size_t len) {
  if (s->step != PLAIN_WAIT_MESSAGE)
    return MAILPROTO_ERR_STATE;
  return plain_parse(s, in, len);
}

/* ------------------------------------------------------------------ */
/* LOGIN (draft-murchison-sasl-login)                                  */
/* ------------------------------------------------------------------ */

enum { LOGIN_WAIT_USER = 1, LOGIN_WAIT_PASSWORD };

static int login_ask_password(mailproto_sasl *s) {
  s->step = LOGIN_WAIT_PASSWORD;
  return set_challenge(s, "Password:", 9);
}

static int login_start(mailproto_sasl *s, const uint8_t *ir, size_t ir_len,
                       int has_ir) {
  if (has_ir) {
    /* The initial response carries the user name. */
    int rc = set_field(s->authcid, ir, ir_len, 0, NULL);
    return rc != 0 ? rc : login_ask_password(s);
  }
  s->step = LOGIN_WAIT_USER;
  return set_challenge(s, "Username:", 9);
}

static int login_step(mailproto_sasl *s, const uint8_t *in, size_t len) {
  int rc;
  switch (s->step) {
  case LOGIN_WAIT_USER:
    rc = set_field(s->authcid, in, len, 0, NULL);
    return rc != 0 ? rc : login_ask_password(s);
  case LOGIN_WAIT_PASSWORD:
    rc = set_field(s->password, in, len, 0, &s->password_len);
    if (rc != 0)
      return rc;
    return MAILPROTO_SASL_CHECK_PASSWORD;
  default:
    return MAILPROTO_ERR_STATE;
  }
}

/* ------------------------------------------------------------------ */
/* CRAM-MD5 (RFC 2195)                                                 */
/* ------------------------------------------------------------------ */

enum { CRAM_WAIT_RESPONSE = 1, CRAM_WAIT_SECRET };

#define CRAM_DIGEST_HEX (2 * MAILPROTO_MD5_DIGEST_LEN)

static int cram_start(mailproto_sasl *s, const uint8_t *ir, size_t ir_len,
                      int has_ir) {
  (void)ir;
  (void)ir_len;
  (void)has_ir; /* refused by the engine: CRAM-MD5 is server-first */
  s->step = CRAM_WAIT_RESPONSE;
  return set_challenge(s, s->challenge, strlen(s->challenge));
}

static int is_lower_hex(uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* RFC 2195 section 2: "user SP digest", the digest as 32 lowercase hex
 * digits. The digest has no space, so the last space separates them and a
 * user name may itself contain spaces. */
static int cram_step(mailproto_sasl *s, const uint8_t *in, size_t len) {
  if (s->step != CRAM_WAIT_RESPONSE)
    return MAILPROTO_ERR_STATE;
  if (len < CRAM_DIGEST_HEX + 2)
    return MAILPROTO_ERR_SYNTAX;
  size_t user_len = len - CRAM_DIGEST_HEX - 1;
  const uint8_t *digest = in + user_len + 1;
  if (in[user_len] != ' ')
    return MAILPROTO_ERR_SYNTAX;
  for (size_t i = 0; i < CRAM_DIGEST_HEX; i++)
    if (!is_lower_hex(digest[i]))
      return MAILPROTO_ERR_SYNTAX;
  int rc = set_field(s->authcid, in, user_len, 0, NULL);
  if (rc != 0)
    return rc;
  memcpy(s->digest_hex, digest, CRAM_DIGEST_HEX);
  s->step = CRAM_WAIT_SECRET;
  return MAILPROTO_SASL_NEED_SECRET;
}

static int cram_verify_secret(mailproto_sasl *s, const uint8_t *secret,
                              size_t len) {
  if (s->step != CRAM_WAIT_SECRET)
    return MAILPROTO_ERR_STATE;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[CRAM_DIGEST_HEX + 1];
  mailproto_hmac_md5(secret, len, s->challenge, strlen(s->challenge), digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  int differ = mailproto_memcmp_const(hex, s->digest_hex, CRAM_DIGEST_HEX);
  mailproto_secure_zero(digest, sizeof digest);
  mailproto_secure_zero(hex, sizeof hex);
  return differ ? MAILPROTO_ERR_AUTH_FAILED : MAILPROTO_SASL_SUCCESS;
}

/* ------------------------------------------------------------------ */
/* The mechanism table and the engine                                  */
/* ------------------------------------------------------------------ */

/* In the order they are advertised. */
static const mailproto_sasl_mech mechs[] = {
    {"PLAIN", MAILPROTO_SASL_PLAIN, 1, 0, plain_start, plain_step, NULL},
    {"LOGIN", MAILPROTO_SASL_LOGIN, 1, 0, login_start, login_step, NULL},
    {"CRAM-MD5", MAILPROTO_SASL_CRAM_MD5, 0, 1, cram_start, cram_step,
     cram_verify_secret},
};

enum { MECH_COUNT = sizeof mechs / sizeof mechs[0] };

/* Wipes everything but the allocator; the engine is then idle. */
static void wipe(mailproto_sasl *s) {
  const mailproto_allocator *alloc = s->alloc;
  mailproto_secure_zero(s, sizeof *s);
  s->alloc = alloc;
}

/* A mechanism's answer: a failure ends the exchange and forgets it; so
 * does a final answer (the credentials stay readable for the session). */
static int finish_step(mailproto_sasl *s, int rc) {
  if (rc < 0)
    wipe(s);
  else if (rc == MAILPROTO_SASL_CHECK_PASSWORD || rc == MAILPROTO_SASL_SUCCESS)
    s->mech = NULL;
  return rc;
}

/* Decodes one client response into `raw` (SASL_RESPONSE_MAX bytes). */
static long decode_response(const char *text, size_t len, uint8_t *raw) {
  if (len > mailproto_base64_encoded_len(SASL_RESPONSE_MAX))
    return MAILPROTO_ERR_TOO_LONG;
  if (len == 0)
    return 0;
  long n = mailproto_base64_decode(text, len, raw, SASL_RESPONSE_MAX);
  return n == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_TOO_LONG : n;
}

static int is_cancel(const char *text, size_t len) {
  return len == 1 && text[0] == '*';
}

int mailproto_sasl_new(const mailproto_allocator *alloc, mailproto_sasl **out) {
  mailproto_sasl *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  *out = s;
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = alloc;
  return 0;
}

void mailproto_sasl_free(mailproto_sasl *s) {
  if (!s)
    return;
  const mailproto_allocator *alloc = s->alloc;
  mailproto_secure_zero(s, sizeof *s);
  mailproto_mem_free(alloc, s);
}

const mailproto_sasl_mech *mailproto_sasl_find(const char *name, size_t len) {
  for (size_t i = 0; i < MECH_COUNT; i++) {
    const char *m = mechs[i].name;
    if (strlen(m) != len)
      continue;
    size_t j = 0;
    for (; j < len; j++) {
      char c = name[j];
      if (c >= 'a' && c <= 'z')
        c = (char)(c - 'a' + 'A');
      if (c != m[j])
        break;
    }
    if (j == len)
      return &mechs[i];
  }
  return NULL;
}

int mailproto_sasl_allowed(const mailproto_sasl_mech *mech, unsigned mask,
                           int secure, int allow_plaintext) {
  if (!mech || !(mask & mech->bit))
    return MAILPROTO_ERR_UNSUPPORTED;
  /* RFC 4616 section 5, RFC 2595 section 2.3: no cleartext passwords over
   * an unprotected transport unless the operator says so. */
  if (mech->plaintext && !secure && !allow_plaintext)
    return MAILPROTO_ERR_ENCRYPTION_REQUIRED;
  return 0;
}

int mailproto_sasl_list(unsigned mask, int secure, int allow_plaintext,
                        char *out, size_t out_size) {
  size_t len = 0;
  if (out_size == 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  out[0] = '\0';
  for (size_t i = 0; i < MECH_COUNT; i++) {
    if (mailproto_sasl_allowed(&mechs[i], mask, secure, allow_plaintext))
      continue;
    size_t name_len = strlen(mechs[i].name);
    size_t sep = len > 0;
    if (sep + name_len >= out_size - len)
      return MAILPROTO_ERR_BUFFER_FULL;
    if (sep)
      out[len++] = ' ';
    memcpy(out + len, mechs[i].name, name_len + 1);
    len += name_len;
  }
  return (int)len;
}

int mailproto_sasl_start(mailproto_sasl *s, const mailproto_sasl_mech *mech,
                         const char *challenge, const char *ir, size_t ir_len) {
  wipe(s);
  if (!mech)
    return MAILPROTO_ERR_UNSUPPORTED;
  if (mech->server_first) {
    /* RFC 4954 section 4: an initial response to a mechanism where the
     * server speaks first is refused (501). */
    if (ir)
      return MAILPROTO_ERR_SYNTAX;
    size_t clen = challenge ? strlen(challenge) : 0;
    if (clen == 0 || clen > MAILPROTO_SASL_CHALLENGE_MAX)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    memcpy(s->challenge, challenge, clen + 1);
  }

  int has_ir = ir != NULL;
  uint8_t raw[SASL_RESPONSE_MAX];
  long n = 0;
  if (has_ir) {
    if (is_cancel(ir, ir_len))
      return finish_step(s, MAILPROTO_ERR_CANCELLED);
    /* RFC 4954 section 4: "=" is an initial response of zero length; a
     * literally empty argument is not base64 (which needs one group). */
    if (ir_len == 1 && ir[0] == '=')
      n = 0;
    else if (ir_len == 0)
      n = MAILPROTO_ERR_SYNTAX;
    else
      n = decode_response(ir, ir_len, raw);
    if (n < 0)
      return finish_step(s, (int)n);
  }
  s->mech = mech;
  int rc = mech->start(s, raw, (size_t)n, has_ir);
  mailproto_secure_zero(raw, sizeof raw);
  return finish_step(s, rc);
}

int mailproto_sasl_step(mailproto_sasl *s, const char *line, size_t len) {
  if (!s->mech || !s->mech->step)
    return MAILPROTO_ERR_STATE;
  /* RFC 4954 section 4, RFC 3501 6.2.2, RFC 5034 4: "*" cancels. */
  if (is_cancel(line, len))
    return finish_step(s, MAILPROTO_ERR_CANCELLED);
  uint8_t raw[SASL_RESPONSE_MAX];
  long n = decode_response(line, len, raw);
  int rc = n < 0 ? (int)n : s->mech->step(s, raw, (size_t)n);
  mailproto_secure_zero(raw, sizeof raw);
  return finish_step(s, rc);
}

int mailproto_sasl_verify_secret(mailproto_sasl *s, const void *secret,
                                 size_t len) {
  if (!s->mech || !s->mech->verify_secret)
    return MAILPROTO_ERR_STATE;
  return finish_step(s, s->mech->verify_secret(s, secret, len));
}
