/* MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), for CRAM-MD5 and APOP. */
#ifndef MAILPROTO_CORE_MD5_H
#define MAILPROTO_CORE_MD5_H

#include <stddef.h>
#include <stdint.h>

#define MAILPROTO_MD5_DIGEST_LEN 16

typedef struct mailproto_md5 {
  uint32_t state[4];
  uint64_t length; /* bytes hashed so far */
  uint8_t block[64];
  size_t block_len;
} mailproto_md5;

void mailproto_md5_init(mailproto_md5 *ctx);
void mailproto_md5_update(mailproto_md5 *ctx, const void *data, size_t len);
void mailproto_md5_final(mailproto_md5 *ctx,
                         uint8_t digest[MAILPROTO_MD5_DIGEST_LEN]);

void mailproto_hmac_md5(const void *key, size_t key_len, const void *msg,
                        size_t msg_len,
                        uint8_t digest[MAILPROTO_MD5_DIGEST_LEN]);

/* Writes 32 lowercase hex digits and a NUL. */
void mailproto_hex_lower(const uint8_t *bytes, size_t len, char *out);

/* Compares in time that depends only on len (for digests). 0 if equal. */
int mailproto_memcmp_const(const void *a, const void *b, size_t len);

#endif
