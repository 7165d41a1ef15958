/*
 * Fuzzes modified UTF-7 both ways, with round-trip oracles:
 *  - input as UTF-8: if utf8 -> mutf7 accepts it, mutf7 -> utf8 must give
 *    it back, and the encoding must be printable US-ASCII;
 *  - input as modified UTF-7: if mutf7 -> utf8 accepts it, utf8 -> mutf7
 *    must give back exactly the input (one spelling per name).
 * Every accepted conversion is also retried with a buffer one byte short,
 * which must be refused (the result and its NUL need len + 1 bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproto/mailproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef long (*conv_fn)(const char *, size_t, char *, size_t);

static void require(int ok) {
  if (!ok)
    abort();
}

/* Converts with `fn` and checks the buffer contract; returns the length or
 * the error. The result is NUL-terminated in out (cap bytes). */
static long convert(conv_fn fn, const char *in, size_t len, char *out,
                    size_t cap) {
  long n = fn(in, len, out, cap);
  require(n >= 0 || n == MAILPROTO_ERR_SYNTAX);
  if (n < 0)
    return n;
  require(out[n] == '\0');
  require(fn(in, len, out, (size_t)n) == MAILPROTO_ERR_BUFFER_FULL);
  require(fn(in, len, out, (size_t)n + 1) == n && out[n] == '\0');
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16)
    return 0;
  const char *in = (const char *)data;
  /* UTF-8 -> mutf7 grows at most 2.5 times ("&AOk-" for two bytes);
   * mutf7 -> UTF-8 at most 9/8 (eight base64 characters carry three BMP
   * characters of three bytes each). */
  size_t cap = size * 3 + 2;
  char *a = malloc(cap), *b = malloc(cap);
  require(a != NULL && b != NULL);

  long n = convert(mailproto_utf8_to_mutf7, in, size, a, cap);
  if (n >= 0) {
    require((size_t)n <= size / 2 * 5 + 3);
    for (long i = 0; i < n; i++)
      require(a[i] >= 0x20 && a[i] <= 0x7e);
    long m = convert(mailproto_mutf7_to_utf8, a, (size_t)n, b, cap);
    require(m == (long)size && memcmp(b, in, size) == 0);
  }

  n = convert(mailproto_mutf7_to_utf8, in, size, a, cap);
  if (n >= 0) {
    require((size_t)n <= size / 8 * 9 + 8);
    long m = convert(mailproto_utf8_to_mutf7, a, (size_t)n, b, cap);
    require(m == (long)size && memcmp(b, in, size) == 0);
  }
  free(a);
  free(b);
  return 0;
}
