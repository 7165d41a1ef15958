/*
 * Fuzzes base64. Two oracles:
 *  - the input as base64 text: the strict decoder accepts at most one
 *    spelling per byte string, so whatever it accepts must re-encode to
 *    exactly the input; a buffer one byte short must be refused;
 *  - the input as bytes: decode(encode(x)) == x.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailproto/mailproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

static void check_decode(const uint8_t *data, size_t size) {
  size_t cap = size / 4 * 3; /* the documented always-enough size */
  uint8_t *plain = malloc(cap + 1);
  char *again = malloc(size + 1);
  require(plain != NULL && again != NULL);
  long n = mailproto_base64_decode((const char *)data, size, plain, cap);
  require(n >= 0 || n == MAILPROTO_ERR_SYNTAX);
  if (n > 0) {
    long short_by_one =
        mailproto_base64_decode((const char *)data, size, plain, (size_t)n - 1);
    require(short_by_one == MAILPROTO_ERR_BUFFER_FULL);
    n = mailproto_base64_decode((const char *)data, size, plain, (size_t)n);
  }
  if (n >= 0) {
    long m = mailproto_base64_encode(plain, (size_t)n, again, size);
    require(m == (long)size && memcmp(again, data, size) == 0);
  }
  free(plain);
  free(again);
}

static void check_encode(const uint8_t *data, size_t size) {
  size_t len = mailproto_base64_encoded_len(size);
  require(len / 4 * 3 >= size && len % 4 == 0);
  char *text = malloc(len + 1);
  uint8_t *plain = malloc(size + 1);
  require(text != NULL && plain != NULL);
  if (len > 0)
    require(mailproto_base64_encode(data, size, text, len - 1) ==
            MAILPROTO_ERR_BUFFER_FULL);
  long n = mailproto_base64_encode(data, size, text, len);
  require(n == (long)len);
  long m = mailproto_base64_decode(text, (size_t)n, plain, size);
  require(m == (long)size && memcmp(plain, data, size) == 0);
  free(text);
  free(plain);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20)
    return 0;
  check_decode(data, size);
  check_encode(data, size);
  return 0;
}
