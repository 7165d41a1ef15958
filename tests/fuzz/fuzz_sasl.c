/*
 * Fuzzes the SASL engine. The first byte chooses the mechanism (low two
 * bits; 3 = the first line names it), whether the first line is an
 * initial response (bit 2) and whether a finished exchange starts the next
 * mechanism (bit 3). The rest is split at LF into client lines (base64
 * text or "*"); after NEED_SECRET the next line is the stored secret.
 * Checks: no crash, no leak, and every result leaves the engine in the
 * state it claims.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/md5.h"
#include "core/sasl.h"
#include "support/alloc_fail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const names[3] = {"PLAIN", "LOGIN", "CRAM-MD5"};
static const char challenge[] = "<1896.697170952@postoffice.reston.mci.net>";

/* Cuts the next line off [*p, end); returns its length. */
static size_t next_line(const uint8_t **p, const uint8_t *end,
                        const char **line) {
  const uint8_t *lf = memchr(*p, '\n', (size_t)(end - *p));
  const uint8_t *stop = lf ? lf : end;
  *line = (const char *)*p;
  size_t len = (size_t)(stop - *p);
  *p = lf ? lf + 1 : end;
  return len;
}

static void check_field(const char *field) {
  if (strlen(field) > MAILPROTO_SASL_FIELD_MAX)
    abort();
}

/* The engine's state must match what it just answered. */
static void check_result(const mailproto_sasl *s, int rc) {
  switch (rc) {
  case MAILPROTO_SASL_CHALLENGE:
    if (!s->mech || s->out_len != strlen(s->out))
      abort();
    break;
  case MAILPROTO_SASL_CHECK_PASSWORD:
    check_field(s->authzid);
    check_field(s->authcid);
    if (s->authcid[0] == '\0' || s->password_len == 0 ||
        s->password_len != strlen(s->password) ||
        s->password_len > MAILPROTO_SASL_FIELD_MAX || s->mech)
      abort();
    break;
  case MAILPROTO_SASL_NEED_SECRET:
    check_field(s->authcid);
    if (!s->mech || s->authcid[0] == '\0')
      abort();
    break;
  case MAILPROTO_SASL_SUCCESS:
    if (s->mech)
      abort();
    break;
  case MAILPROTO_ERR_STATE:
    /* A response after the end: refused, and still nothing running. */
    if (s->mech)
      abort();
    break;
  case MAILPROTO_ERR_SYNTAX:
  case MAILPROTO_ERR_TOO_LONG:
  case MAILPROTO_ERR_CANCELLED:
  case MAILPROTO_ERR_AUTH_FAILED:
  case MAILPROTO_ERR_UNSUPPORTED:
    /* A failure forgets the exchange and its credentials. */
    if (s->mech || s->authcid[0] || s->password_len || s->password[0])
      abort();
    break;
  default:
    abort();
  }
}

/* Recomputes the CRAM-MD5 verdict independently of the engine. */
static int cram_expected(const mailproto_sasl *s, const char *secret,
                         size_t len) {
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[2 * MAILPROTO_MD5_DIGEST_LEN + 1];
  mailproto_hmac_md5(secret, len, challenge, strlen(challenge), digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  return memcmp(hex, s->digest_hex, 32) == 0 ? MAILPROTO_SASL_SUCCESS
                                             : MAILPROTO_ERR_AUTH_FAILED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  unsigned ctl = data[0];
  const uint8_t *p = data + 1, *end = data + size;

  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_sasl *s = NULL;
  if (mailproto_sasl_new(&af.allocator, &s) != 0)
    abort();

  unsigned pick = ctl & 3;
  int rc = MAILPROTO_ERR_STATE;
  int started = 0;
  while (p < end || !started) {
    if (!started) {
      const mailproto_sasl_mech *m;
      const char *line;
      size_t len;
      if (pick == 3) {
        len = next_line(&p, end, &line);
        m = mailproto_sasl_find(line, len);
      } else {
        m = mailproto_sasl_find(names[pick], strlen(names[pick]));
      }
      const char *ir = NULL;
      size_t ir_len = 0;
      if (ctl & 4)
        ir_len = next_line(&p, end, &ir);
      rc = mailproto_sasl_start(s, m, challenge, ir, ir_len);
      started = 1;
    } else if (rc == MAILPROTO_SASL_NEED_SECRET) {
      const char *secret;
      size_t len = next_line(&p, end, &secret);
      int want = cram_expected(s, secret, len);
      rc = mailproto_sasl_verify_secret(s, secret, len);
      if (rc != want)
        abort();
    } else {
      const char *line;
      size_t len = next_line(&p, end, &line);
      rc = mailproto_sasl_step(s, line, len);
    }
    check_result(s, rc);
    /* A finished exchange: optionally go on with the next mechanism, to
     * look for state carried from one exchange into another. */
    if (rc != MAILPROTO_SASL_CHALLENGE && rc != MAILPROTO_SASL_NEED_SECRET &&
        (ctl & 8)) {
      pick = (pick + 1) % 3;
      started = 0;
      if (p >= end)
        break;
    }
  }
  mailproto_sasl_free(s);
  if (af.live != 0)
    abort();
  return 0;
}
