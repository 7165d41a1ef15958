/*
 * The SASL engine: PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), cancel,
 * bad base64, field limits, stale state between exchanges, mechanism
 * policy and allocation failures.
 */
#include <stdlib.h>
#include <string.h>

#include "core/sasl.h"
#include "suites.h"
#include "support/alloc_fail.h"

#define S(lit) lit, sizeof(lit) - 1

/* Base64 of `len` raw bytes, NUL-terminated, in a static buffer. */
static const char *b64(const void *raw, size_t len) {
  static char out[2048];
  long n = mailproto_base64_encode(raw, len, out, sizeof out - 1);
  ck_assert_int_ge(n, 0);
  out[n] = '\0';
  return out;
}

static mailproto_sasl *new_engine(void) {
  mailproto_sasl *s = NULL;
  ck_assert_int_eq(mailproto_sasl_new(NULL, &s), 0);
  ck_assert_ptr_nonnull(s);
  return s;
}

static const mailproto_sasl_mech *mech(const char *name) {
  const mailproto_sasl_mech *m = mailproto_sasl_find(name, strlen(name));
  ck_assert_ptr_nonnull(m);
  return m;
}

/* Starts with a base64-encoded initial response made of raw bytes. */
static int start_ir(mailproto_sasl *s, const char *name, const void *raw,
                    size_t len) {
  const char *ir = b64(raw, len);
  return mailproto_sasl_start(s, mech(name), NULL, ir, strlen(ir));
}

/* Feeds a response made of raw bytes. */
static int step_raw(mailproto_sasl *s, const void *raw, size_t len) {
  const char *line = b64(raw, len);
  return mailproto_sasl_step(s, line, strlen(line));
}

static int step_text(mailproto_sasl *s, const char *line) {
  return mailproto_sasl_step(s, line, strlen(line));
}

static void assert_wiped(const mailproto_sasl *s) {
  ck_assert_ptr_null(s->mech);
  ck_assert_str_eq(s->authzid, "");
  ck_assert_str_eq(s->authcid, "");
  ck_assert_str_eq(s->password, "");
  ck_assert_uint_eq(s->password_len, 0);
  ck_assert_str_eq(s->challenge, "");
}

/* ------------------------------------------------------------------ */
/* PLAIN                                                               */
/* ------------------------------------------------------------------ */

/* RFC 4616 section 4, first example: no initial response, so an empty
 * challenge, then "<NUL>tim<NUL>tanstaaftanstaaf". */
START_TEST(test_sasl_step_plain_rfc4616_example1) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_uint_eq(s->out_len, 0);
  ck_assert_str_eq(s->out, "");
  ck_assert_int_eq(step_raw(s, S("\0tim\0tanstaaftanstaaf")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authzid, "");
  ck_assert_str_eq(s->authcid, "tim");
  ck_assert_str_eq(s->password, "tanstaaftanstaaf");
  ck_assert_uint_eq(s->password_len, 16);
  /* The exchange is over. */
  ck_assert_int_eq(step_text(s, "AAAA"), MAILPROTO_ERR_STATE);
  mailproto_sasl_free(s);
}
END_TEST

/* RFC 4616 section 4, second example: an initial response asking to act
 * as another identity. */
START_TEST(test_sasl_start_plain_rfc4616_example2) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(start_ir(s, "PLAIN", S("Ursel\0Kurt\0xipj3plmq")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authzid, "Ursel");
  ck_assert_str_eq(s->authcid, "Kurt");
  ck_assert_str_eq(s->password, "xipj3plmq");
  mailproto_sasl_free(s);
}
END_TEST

/* RFC 4616 2: the presented identity and password are prepared with
 * SASLprep before they are verified (core/utf8.h: mapping and prohibited
 * output); bytes that are not UTF-8 are kept as they are. */
START_TEST(test_sasl_start_plain_prepares_credentials) {
  mailproto_sasl *s = new_engine();
  /* SOFT HYPHEN goes, NO-BREAK SPACE becomes SPACE. */
  ck_assert_int_eq(
      start_ir(s, "PLAIN", S("\0j\xc3\xb6\xc2\xadrg\0pass\xc2\xa0word")),
      MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authcid, "j\xc3\xb6rg");
  ck_assert_str_eq(s->password, "pass word");
  ck_assert_uint_eq(s->password_len, 9);
  /* Latin-1, not UTF-8: as it is. */
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0j\xf6rg\0p\xe4ss")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authcid, "j\xf6rg");
  ck_assert_str_eq(s->password, "p\xe4ss");
  /* Prohibited output (a bidi mark), and a name that maps to nothing. */
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0tim\0pw\xe2\x80\x8e")),
                   MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0\xc2\xad\0pw")),
                   MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  /* An ASCII control character is prohibited output too (C.2.1). */
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0tim\0pa\x01ss")),
                   MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  /* LOGIN prepares both fields too. */
  ck_assert_int_eq(start_ir(s, "LOGIN", S("zo\xc3\xab")),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("k\xe3\x80\x80"
                                 "ey")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->password, "k ey");
  ck_assert_uint_eq(s->password_len, 4);
  mailproto_sasl_free(s);
}
END_TEST

static const struct {
  const char *raw;
  size_t len;
  int rc;
} plain_bad[] = {
    {S("timtanstaaf"), MAILPROTO_ERR_SYNTAX},       /* no NUL */
    {S("tim\0tanstaaf"), MAILPROTO_ERR_SYNTAX},     /* one NUL */
    {S("\0\0pw"), MAILPROTO_ERR_SYNTAX},            /* empty authcid */
    {S("zid\0tim\0"), MAILPROTO_ERR_SYNTAX},        /* empty password */
    {S("\0tim\0pass\0word"), MAILPROTO_ERR_SYNTAX}, /* extra NUL */
    {S("\0tim\0pw\0"), MAILPROTO_ERR_SYNTAX},       /* trailing NUL */
    {S("\0\0\0"), MAILPROTO_ERR_SYNTAX},            /* only NULs */
    {S("a\0b\0c\0d\0e"), MAILPROTO_ERR_SYNTAX},     /* many NULs */
    {S(""), MAILPROTO_ERR_SYNTAX},                  /* empty message */
};
enum { PLAIN_BAD_COUNT = sizeof plain_bad / sizeof plain_bad[0] };

START_TEST(test_sasl_step_plain_malformed) {
  mailproto_sasl *s = new_engine();
  /* As an initial response... */
  ck_assert_int_eq(start_ir(s, "PLAIN", plain_bad[_i].raw, plain_bad[_i].len),
                   plain_bad[_i].rc);
  assert_wiped(s);
  /* ...and as a response to the empty challenge. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, plain_bad[_i].raw, plain_bad[_i].len),
                   plain_bad[_i].rc);
  assert_wiped(s);
  mailproto_sasl_free(s);
}
END_TEST

/* RFC 4616 section 2: fields up to 255 octets MUST be accepted; longer
 * ones are refused as too long. */
START_TEST(test_sasl_start_plain_field_limits) {
  char msg[3 * 256 + 2];
  mailproto_sasl *s = new_engine();
  for (int field = 0; field < 3; field++) {
    for (size_t extra = 0; extra <= 1; extra++) {
      size_t lens[3] = {255, 255, 255};
      lens[field] += extra;
      size_t n = 0;
      for (int f = 0; f < 3; f++) {
        memset(msg + n, 'a' + f, lens[f]);
        n += lens[f];
        if (f < 2)
          msg[n++] = '\0';
      }
      int rc = start_ir(s, "PLAIN", msg, n);
      if (extra) {
        ck_assert_int_eq(rc, MAILPROTO_ERR_TOO_LONG);
        assert_wiped(s);
      } else {
        ck_assert_int_eq(rc, MAILPROTO_SASL_CHECK_PASSWORD);
        ck_assert_uint_eq(strlen(s->authzid), 255);
        ck_assert_uint_eq(strlen(s->authcid), 255);
        ck_assert_uint_eq(s->password_len, 255);
      }
    }
  }
  mailproto_sasl_free(s);
}
END_TEST

/* A response far beyond any field is refused before decoding. */
START_TEST(test_sasl_step_oversized_response) {
  mailproto_sasl *s = new_engine();
  size_t len = 4000;
  char *line = malloc(len);
  ck_assert_ptr_nonnull(line);
  memset(line, 'A', len);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(mailproto_sasl_step(s, line, len), MAILPROTO_ERR_TOO_LONG);
  assert_wiped(s);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, line, len),
                   MAILPROTO_ERR_TOO_LONG);
  free(line);
  mailproto_sasl_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* LOGIN                                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_sasl_step_login_without_initial_response) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->out, "VXNlcm5hbWU6"); /* "Username:" */
  ck_assert_uint_eq(s->out_len, 12);
  ck_assert_int_eq(step_text(s, "dGlt"), MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->out, "UGFzc3dvcmQ6"); /* "Password:" */
  ck_assert_int_eq(step_text(s, "dGFuc3RhYWZ0YW5zdGFhZg=="),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authcid, "tim");
  ck_assert_str_eq(s->authzid, "");
  ck_assert_str_eq(s->password, "tanstaaftanstaaf");
  ck_assert_uint_eq(s->password_len, 16);
  ck_assert_int_eq(step_text(s, "dGlt"), MAILPROTO_ERR_STATE);
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_start_login_initial_response) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(mailproto_sasl_start(s, mech("login"), NULL, S("dGlt")),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->out, "UGFzc3dvcmQ6");
  ck_assert_str_eq(s->authcid, "tim");
  ck_assert_int_eq(step_raw(s, S("secret")), MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->password, "secret");
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_step_login_bad_fields) {
  char big[256];
  memset(big, 'u', sizeof big);
  mailproto_sasl *s = new_engine();
  /* "=" is an empty initial response: an empty user name. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, S("=")),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(start_ir(s, "LOGIN", big, 256), MAILPROTO_ERR_TOO_LONG);
  ck_assert_int_eq(start_ir(s, "LOGIN", big, 255), MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, big, 256), MAILPROTO_ERR_TOO_LONG);
  assert_wiped(s);
  /* A short password whose NFKC form (8 x 33 bytes) overflows the field
   * fails preparation; the line itself was not too long. */
  char wide[24];
  for (size_t i = 0; i < sizeof wide; i += 3)
    memcpy(wide + i, "\xef\xb7\xba", 3);
  ck_assert_int_eq(start_ir(s, "LOGIN", S("u")), MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, wide, sizeof wide), MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  /* A NUL would cut the C string short ("admin\0junk" must not become
   * "admin"). */
  ck_assert_int_eq(start_ir(s, "LOGIN", S("admin\0junk")),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(start_ir(s, "LOGIN", S("tim")), MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("pw\0x")), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(start_ir(s, "LOGIN", S("tim")), MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, ""), MAILPROTO_ERR_SYNTAX);
  mailproto_sasl_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* CRAM-MD5                                                            */
/* ------------------------------------------------------------------ */

#define RFC2195_CHALLENGE "<1896.697170952@postoffice.reston.mci.net>"

/* RFC 2195 section 2. */
START_TEST(test_sasl_verify_secret_cram_md5_rfc2195) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->out,
                   "PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+");
  ck_assert_int_eq(
      step_text(s, "dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw"),
      MAILPROTO_SASL_NEED_SECRET);
  ck_assert_str_eq(s->authcid, "tim");
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_SASL_SUCCESS);
  ck_assert_str_eq(s->authcid, "tim");
  /* Finished: nothing more is accepted. */
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_ERR_STATE);
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_verify_secret_cram_md5_wrong_secret) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("tim b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaF", 16),
                   MAILPROTO_ERR_AUTH_FAILED);
  /* One response, one verdict: no second guess against the same digest. */
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_ERR_STATE);
  assert_wiped(s);
  /* A different challenge gives a different digest for the same secret. */
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), "<1.2@host>", NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("tim b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_ERR_AUTH_FAILED);
  mailproto_sasl_free(s);
}
END_TEST

/* A user name may contain spaces: the digest follows the last one. */
START_TEST(test_sasl_step_cram_md5_user_with_space) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("tim smith b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  ck_assert_str_eq(s->authcid, "tim smith");
  mailproto_sasl_free(s);
}
END_TEST

static const struct {
  const char *raw;
  size_t len;
  int rc;
} cram_bad[] = {
    {S("timb913a602c7eda7a495b4e6e7334d3890"), MAILPROTO_ERR_SYNTAX},
    {S("tim b913a602c7eda7a495b4e6e7334d389"), MAILPROTO_ERR_SYNTAX},
    {S("tim b913a602c7eda7a495b4e6e7334d38900"), MAILPROTO_ERR_SYNTAX},
    {S("tim B913A602C7EDA7A495B4E6E7334D3890"), MAILPROTO_ERR_SYNTAX},
    {S("tim b913a602c7eda7a495b4e6e7334d389g"), MAILPROTO_ERR_SYNTAX},
    {S(" b913a602c7eda7a495b4e6e7334d3890"), MAILPROTO_ERR_SYNTAX},
    {S("t\0m b913a602c7eda7a495b4e6e7334d3890"), MAILPROTO_ERR_SYNTAX},
    {S("b913a602c7eda7a495b4e6e7334d3890"), MAILPROTO_ERR_SYNTAX},
    {S(""), MAILPROTO_ERR_SYNTAX},
};
enum { CRAM_BAD_COUNT = sizeof cram_bad / sizeof cram_bad[0] };

START_TEST(test_sasl_step_cram_md5_malformed) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, cram_bad[_i].raw, cram_bad[_i].len),
                   cram_bad[_i].rc);
  assert_wiped(s);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "x", 1),
                   MAILPROTO_ERR_STATE);
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_step_cram_md5_long_user) {
  char resp[300];
  memset(resp, 'u', 256);
  memcpy(resp + 256, " b913a602c7eda7a495b4e6e7334d3890", 33);
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, resp, 256 + 33), MAILPROTO_ERR_TOO_LONG);
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, resp + 1, 255 + 33), MAILPROTO_SASL_NEED_SECRET);
  ck_assert_uint_eq(strlen(s->authcid), 255);
  mailproto_sasl_free(s);
}
END_TEST

/* CRAM-MD5 is server-first (RFC 4954 section 4: 501 for an initial
 * response), and needs a challenge from the caller. */
START_TEST(test_sasl_start_cram_md5_errors) {
  char big[300];
  memset(big, 'c', sizeof big);
  big[256] = '\0';
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, S("dGlt")),
      MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, S("=")),
      MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("CRAM-MD5"), NULL, NULL, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("CRAM-MD5"), "", NULL, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("CRAM-MD5"), big, NULL, 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  /* The longest challenge fits, and its base64 fits `out`. */
  big[255] = '\0';
  ck_assert_int_eq(mailproto_sasl_start(s, mech("CRAM-MD5"), big, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_uint_eq(s->out_len, 340);
  mailproto_sasl_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cancel, base64, state                                               */
/* ------------------------------------------------------------------ */

/* "*" cancels at every point a client may speak (RFC 4954 section 4,
 * RFC 3501 6.2.2, RFC 5034 section 4). */
START_TEST(test_sasl_step_cancel_at_each_step) {
  mailproto_sasl *s = new_engine();

  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, "*"), MAILPROTO_ERR_CANCELLED);
  assert_wiped(s);

  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, "*"), MAILPROTO_ERR_CANCELLED);
  assert_wiped(s);

  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, "dGlt"), MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->authcid, "tim");
  ck_assert_int_eq(step_text(s, "*"), MAILPROTO_ERR_CANCELLED);
  assert_wiped(s);

  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, "*"), MAILPROTO_ERR_CANCELLED);
  assert_wiped(s);

  /* As the initial response too. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, S("*")),
                   MAILPROTO_ERR_CANCELLED);
  assert_wiped(s);

  /* After a cancel the exchange is gone. */
  ck_assert_int_eq(step_text(s, "dGlt"), MAILPROTO_ERR_STATE);
  /* "**" or "* " are not a cancel; they are bad base64. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, "**"), MAILPROTO_ERR_SYNTAX);
  mailproto_sasl_free(s);
}
END_TEST

/* Outside the alphabet, wrong length, misplaced or missing padding,
 * non-zero pad bits, whitespace, UTF-8. */
static const char *const bad_base64[] = {
    "dGlt!", "dGl",     "dG=t",      "=AAA", "AAA=BBBB", "dGltIA",     "dGlt\r",
    "dG lt", "dGltIA=", "dGltIA==A", "====", "dGm=",     "\303\251AA", "A"};
enum { BAD_BASE64_COUNT = sizeof bad_base64 / sizeof bad_base64[0] };

/* RFC 4954 section 4: a response that does not decode is a 501. */
START_TEST(test_sasl_step_bad_base64) {
  mailproto_sasl *s = new_engine();
  const char *bad = bad_base64[_i];
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_text(s, bad), MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("PLAIN"), NULL, bad, strlen(bad)),
      MAILPROTO_ERR_SYNTAX);
  assert_wiped(s);
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_start_empty_initial_response) {
  mailproto_sasl *s = new_engine();
  /* An empty argument is not base64 (which has at least one group);
   * "=" is the zero-length response, which PLAIN cannot parse. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, "", 0),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, S("=")),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(mailproto_sasl_start(s, NULL, NULL, NULL, 0),
                   MAILPROTO_ERR_UNSUPPORTED);
  mailproto_sasl_free(s);
}
END_TEST

START_TEST(test_sasl_step_without_exchange) {
  mailproto_sasl *s = new_engine();
  ck_assert_int_eq(step_text(s, "dGlt"), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "x", 1),
                   MAILPROTO_ERR_STATE);
  /* PLAIN has no secret to verify, and LOGIN waits for a response. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "x", 1),
                   MAILPROTO_ERR_STATE);
  /* CRAM-MD5 waiting for its secret takes no further response. */
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "x", 1),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("tim b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  ck_assert_int_eq(step_raw(s, S("tim b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_ERR_STATE);
  assert_wiped(s);
  mailproto_sasl_free(s);
}
END_TEST

/* CVE-2011-1720 class: an abandoned or failed exchange must leave nothing
 * a following exchange with another mechanism could pick up. */
START_TEST(test_sasl_start_after_failure_has_no_stale_state) {
  mailproto_sasl *s = new_engine();

  /* CRAM-MD5 gets as far as NEED_SECRET and is abandoned... */
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("admin b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  /* ...then LOGIN starts: none of CRAM-MD5's state survives. */
  ck_assert_int_eq(mailproto_sasl_start(s, mech("LOGIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->authcid, "");
  ck_assert_str_eq(s->challenge, "");
  for (size_t i = 0; i < sizeof s->digest_hex; i++)
    ck_assert_uint_eq(s->digest_hex[i], 0);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(step_raw(s, S("bob")), MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->authcid, "bob");

  /* LOGIN fails at the password; PLAIN's derived authzid must not be
   * LOGIN's user, and no old password may remain. */
  ck_assert_int_eq(step_text(s, "!!"), MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0carol\0pw")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_str_eq(s->authzid, "");
  ck_assert_str_eq(s->authcid, "carol");
  ck_assert_str_eq(s->password, "pw");
  ck_assert_uint_eq(s->password_len, 2);

  /* A long password followed by a short one leaves no tail behind. */
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0dave\0longpassword")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_int_eq(start_ir(s, "PLAIN", S("\0dave\0x")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  ck_assert_uint_eq(s->password_len, 1);
  for (size_t i = 1; i < sizeof s->password; i++)
    ck_assert_int_eq(s->password[i], 0);

  /* A failed CRAM-MD5 verification, then PLAIN as someone else. */
  ck_assert_int_eq(
      mailproto_sasl_start(s, mech("CRAM-MD5"), RFC2195_CHALLENGE, NULL, 0),
      MAILPROTO_SASL_CHALLENGE);
  ck_assert_int_eq(step_raw(s, S("tim b913a602c7eda7a495b4e6e7334d3890")),
                   MAILPROTO_SASL_NEED_SECRET);
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "wrong", 5),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(mailproto_sasl_start(s, mech("PLAIN"), NULL, NULL, 0),
                   MAILPROTO_SASL_CHALLENGE);
  ck_assert_str_eq(s->authcid, "");
  ck_assert_int_eq(mailproto_sasl_verify_secret(s, "tanstaaftanstaaf", 16),
                   MAILPROTO_ERR_STATE);
  mailproto_sasl_free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Mechanism table and policy                                          */
/* ------------------------------------------------------------------ */

START_TEST(test_sasl_find_by_name) {
  const mailproto_sasl_mech *m = mailproto_sasl_find(S("plain"));
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(m->name, "PLAIN");
  ck_assert_uint_eq(m->bit, MAILPROTO_SASL_PLAIN);
  m = mailproto_sasl_find(S("Cram-Md5"));
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq(m->bit, MAILPROTO_SASL_CRAM_MD5);
  ck_assert_int_eq(m->server_first, 1);
  ck_assert_int_eq(m->plaintext, 0);
  m = mailproto_sasl_find("LOGIN PLAIN", 5);
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(m->name, "LOGIN");
  ck_assert_ptr_null(mailproto_sasl_find(S("PLAINX")));
  ck_assert_ptr_null(mailproto_sasl_find(S("PLAI")));
  ck_assert_ptr_null(mailproto_sasl_find(S("DIGEST-MD5")));
  ck_assert_ptr_null(mailproto_sasl_find(S("")));
  ck_assert_ptr_null(mailproto_sasl_find("PLAIN\0", 6));
}
END_TEST

START_TEST(test_sasl_allowed_policy) {
  const mailproto_sasl_mech *plain = mech("PLAIN");
  const mailproto_sasl_mech *login = mech("LOGIN");
  const mailproto_sasl_mech *cram = mech("CRAM-MD5");
  ck_assert_int_eq(mailproto_sasl_allowed(plain, MAILPROTO_SASL_ALL, 1, 0), 0);
  ck_assert_int_eq(mailproto_sasl_allowed(plain, MAILPROTO_SASL_ALL, 0, 0),
                   MAILPROTO_ERR_ENCRYPTION_REQUIRED);
  ck_assert_int_eq(mailproto_sasl_allowed(login, MAILPROTO_SASL_ALL, 0, 0),
                   MAILPROTO_ERR_ENCRYPTION_REQUIRED);
  ck_assert_int_eq(mailproto_sasl_allowed(plain, MAILPROTO_SASL_ALL, 0, 1), 0);
  ck_assert_int_eq(mailproto_sasl_allowed(cram, MAILPROTO_SASL_ALL, 0, 0), 0);
  ck_assert_int_eq(mailproto_sasl_allowed(cram, MAILPROTO_SASL_PLAIN, 1, 1),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_sasl_allowed(plain, 0, 1, 1),
                   MAILPROTO_ERR_UNSUPPORTED);
  ck_assert_int_eq(mailproto_sasl_allowed(NULL, MAILPROTO_SASL_ALL, 1, 1),
                   MAILPROTO_ERR_UNSUPPORTED);
}
END_TEST

START_TEST(test_sasl_list_by_transport) {
  char out[64];
  ck_assert_int_eq(
      mailproto_sasl_list(MAILPROTO_SASL_ALL, 1, 0, out, sizeof out), 20);
  ck_assert_str_eq(out, "PLAIN LOGIN CRAM-MD5");
  ck_assert_int_eq(
      mailproto_sasl_list(MAILPROTO_SASL_ALL, 0, 0, out, sizeof out), 8);
  ck_assert_str_eq(out, "CRAM-MD5");
  ck_assert_int_eq(
      mailproto_sasl_list(MAILPROTO_SASL_ALL, 0, 1, out, sizeof out), 20);
  ck_assert_str_eq(out, "PLAIN LOGIN CRAM-MD5");
  ck_assert_int_eq(
      mailproto_sasl_list(MAILPROTO_SASL_PLAIN | MAILPROTO_SASL_CRAM_MD5, 1, 0,
                          out, sizeof out),
      14);
  ck_assert_str_eq(out, "PLAIN CRAM-MD5");
  ck_assert_int_eq(
      mailproto_sasl_list(MAILPROTO_SASL_PLAIN, 0, 0, out, sizeof out), 0);
  ck_assert_str_eq(out, "");
  /* Exactly big enough, then one byte short. */
  ck_assert_int_eq(mailproto_sasl_list(MAILPROTO_SASL_ALL, 1, 0, out, 21), 20);
  ck_assert_int_eq(mailproto_sasl_list(MAILPROTO_SASL_ALL, 1, 0, out, 20),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_int_eq(mailproto_sasl_list(MAILPROTO_SASL_ALL, 1, 0, out, 0),
                   MAILPROTO_ERR_BUFFER_FULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_sasl_new_nomem_loop) {
  for (unsigned long n = 1;; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_sasl *s = (mailproto_sasl *)&af; /* must be overwritten */
    int rc = mailproto_sasl_new(&af.allocator, &s);
    if (alloc_fail_triggered(&af)) {
      ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      ck_assert_ptr_null(s);
    } else {
      ck_assert_int_eq(rc, 0);
      /* A whole exchange allocates nothing more. */
      unsigned long calls = af.calls;
      ck_assert_int_eq(start_ir(s, "PLAIN", S("\0tim\0pw")),
                       MAILPROTO_SASL_CHECK_PASSWORD);
      ck_assert_uint_eq(af.calls, calls);
    }
    mailproto_sasl_free(s);
    ck_assert_int_eq(af.live, 0);
    if (!alloc_fail_triggered(&af))
      break;
  }
  mailproto_sasl_free(NULL);
}
END_TEST

/* An allocator whose free() checks the block was wiped first. */
typedef struct wipe_check {
  size_t size;
  int all_zero;
  int freed;
} wipe_check;

static void *wc_malloc(size_t size, void *user_data) {
  wipe_check *wc = user_data;
  wc->size = size;
  return malloc(size);
}

static void *wc_realloc(void *ptr, size_t size, void *user_data) {
  wipe_check *wc = user_data;
  wc->size = size;
  return realloc(ptr, size);
}

static void wc_free(void *ptr, void *user_data) {
  wipe_check *wc = user_data;
  const unsigned char *p = ptr;
  wc->all_zero = 1;
  for (size_t i = 0; i < wc->size; i++)
    if (p[i] != 0)
      wc->all_zero = 0;
  wc->freed = 1;
  free(ptr);
}

START_TEST(test_sasl_free_wipes_credentials) {
  wipe_check wc = {0, 0, 0};
  mailproto_allocator a = {wc_malloc, wc_realloc, wc_free, &wc};
  mailproto_sasl *s = NULL;
  ck_assert_int_eq(mailproto_sasl_new(&a, &s), 0);
  ck_assert_int_eq(start_ir(s, "PLAIN", S("zid\0tim\0secret")),
                   MAILPROTO_SASL_CHECK_PASSWORD);
  mailproto_sasl_free(s);
  ck_assert_int_eq(wc.freed, 1);
  ck_assert_int_eq(wc.all_zero, 1);
}
END_TEST

Suite *suite_core_sasl(void) {
  Suite *s = suite_create("core_sasl");
  TCase *tc = tcase_create("sasl");
  tcase_add_test(tc, test_sasl_step_plain_rfc4616_example1);
  tcase_add_test(tc, test_sasl_start_plain_rfc4616_example2);
  tcase_add_test(tc, test_sasl_start_plain_prepares_credentials);
  tcase_add_loop_test(tc, test_sasl_step_plain_malformed, 0, PLAIN_BAD_COUNT);
  tcase_add_test(tc, test_sasl_start_plain_field_limits);
  tcase_add_test(tc, test_sasl_step_oversized_response);
  tcase_add_test(tc, test_sasl_step_login_without_initial_response);
  tcase_add_test(tc, test_sasl_start_login_initial_response);
  tcase_add_test(tc, test_sasl_step_login_bad_fields);
  tcase_add_test(tc, test_sasl_verify_secret_cram_md5_rfc2195);
  tcase_add_test(tc, test_sasl_verify_secret_cram_md5_wrong_secret);
  tcase_add_test(tc, test_sasl_step_cram_md5_user_with_space);
  tcase_add_loop_test(tc, test_sasl_step_cram_md5_malformed, 0, CRAM_BAD_COUNT);
  tcase_add_test(tc, test_sasl_step_cram_md5_long_user);
  tcase_add_test(tc, test_sasl_start_cram_md5_errors);
  tcase_add_test(tc, test_sasl_step_cancel_at_each_step);
  tcase_add_loop_test(tc, test_sasl_step_bad_base64, 0, BAD_BASE64_COUNT);
  tcase_add_test(tc, test_sasl_start_empty_initial_response);
  tcase_add_test(tc, test_sasl_step_without_exchange);
  tcase_add_test(tc, test_sasl_start_after_failure_has_no_stale_state);
  tcase_add_test(tc, test_sasl_find_by_name);
  tcase_add_test(tc, test_sasl_allowed_policy);
  tcase_add_test(tc, test_sasl_list_by_transport);
  tcase_add_test(tc, test_sasl_new_nomem_loop);
  tcase_add_test(tc, test_sasl_free_wipes_credentials);
  suite_add_tcase(s, tc);
  return s;
}
