/* Challenge nonces (see nonce.h). */
#include "core/nonce.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/md5.h"
#include "mailproto/mailproto.h"

uint64_t mailproto_nonce_default(const void *self, uint64_t count) {
  struct {
    struct timespec ts;
    uintptr_t self;
    uint64_t count;
  } seed;
  /* Zeroed first: padding bytes are hashed too. */
  memset(&seed, 0, sizeof seed);
  if (timespec_get(&seed.ts, TIME_UTC) == 0)
    seed.ts.tv_sec = time(NULL);
  seed.self = (uintptr_t)self;
  seed.count = count;
  mailproto_md5 md5;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  mailproto_md5_init(&md5);
  mailproto_md5_update(&md5, &seed, sizeof seed);
  mailproto_md5_final(&md5, digest);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++)
    v = v << 8 | digest[i];
  return v;
}

int mailproto_nonce_challenge(char *out, size_t size, const char *unique,
                              int64_t stamp, const char *host) {
  char head[96];
  int n = snprintf(head, sizeof head, "<%s.%lld@", unique, (long long)stamp);
  /* The head and the closing ">" must fit with the NUL. */
  if (n < 0 || (size_t)n >= sizeof head || size < (size_t)n + 2)
    return MAILPROTO_ERR_BUFFER_FULL;
  size_t room = size - (size_t)n - 2, host_len = strlen(host);
  if (host_len > room)
    host_len = room;
  memcpy(out, head, (size_t)n);
  memcpy(out + n, host, host_len);
  out[(size_t)n + host_len] = '>';
  out[(size_t)n + host_len + 1] = '\0';
  return n + (int)host_len + 1;
}
