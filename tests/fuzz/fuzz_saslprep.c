/*
 * Fuzzes SASLprep and NFKC (core/saslprep.h) with oracles:
 *  - an accepted result is UTF-8 and a fixed point: preparing it again
 *    gives it back (normalisation is idempotent, and nothing SASLprep
 *    maps or prohibits survives it);
 *  - what a stored string accepts, a query accepts alike;
 *  - a buffer one byte short of the result is refused as too long;
 *  - mailproto_credential_prepare() always leaves a NUL-terminated string.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/saslprep.h"
#include "core/utf8.h"
#include "mailproto/mailproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*prep_fn)(const char *, size_t, char *, size_t, size_t *);

static void require(int ok) {
  if (!ok)
    abort();
}

enum { CAP = 4 * MAILPROTO_SASLPREP_MAX_CODE_POINTS };

static int nfkc(const char *in, size_t len, char *out, size_t cap, size_t *n) {
  return mailproto_nfkc(in, len, out, cap, n);
}

static int query(const char *in, size_t len, char *out, size_t cap, size_t *n) {
  return mailproto_saslprep(in, len, MAILPROTO_PREP_QUERY, out, cap, n);
}

static int stored(const char *in, size_t len, char *out, size_t cap,
                  size_t *n) {
  return mailproto_saslprep(in, len, MAILPROTO_PREP_STORED, out, cap, n);
}

static void is_utf8(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t k = mailproto_utf8_decode((const uint8_t *)s + i, len - i, &cp);
    require(k > 0);
    i += k;
  }
}

/* Runs `fn` and checks the oracles above; returns its result code. */
static int check(prep_fn fn, const char *in, size_t len, char *out, size_t *n) {
  int rc = fn(in, len, out, CAP, n);
  require(rc == 0 || rc == MAILPROTO_ERR_SYNTAX ||
          rc == MAILPROTO_ERR_TOO_LONG);
  if (rc != 0)
    return rc;
  require(*n <= CAP);
  is_utf8(out, *n);
  static char again[CAP];
  size_t m;
  require(fn(out, *n, again, CAP, &m) == 0 && m == *n &&
          memcmp(again, out, m) == 0);
  if (*n > 0)
    require(fn(in, len, again, *n - 1, &m) == MAILPROTO_ERR_TOO_LONG);
  return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1024)
    return 0;
  const char *in = (const char *)data;
  static char a[CAP], b[CAP];
  size_t n, m;
  check(nfkc, in, size, a, &n);
  int q = check(query, in, size, a, &n);
  if (check(stored, in, size, b, &m) == 0)
    require(q == 0 && m == n && memcmp(a, b, n) == 0);

  char field[256];
  int rc = mailproto_credential_prepare(in, size, MAILPROTO_PREP_QUERY, field,
                                        sizeof field, &n);
  require(rc == 0 || rc == MAILPROTO_ERR_SYNTAX ||
          rc == MAILPROTO_ERR_TOO_LONG);
  require(rc == 0 ? n < sizeof field && field[n] == '\0' : field[0] == '\0');
  return 0;
}
