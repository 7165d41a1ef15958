/*
 * MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), only because CRAM-MD5 and APOP
 * are defined with them; nothing else in the library should hash with MD5.
 */
#include "core/md5.h"

#include <string.h>

#include "core/alloc.h"

/* RFC 1321 3.4: T[i] = floor(2^32 * |sin(i)|), i = 1..64 (radians). Written
 * out so the library needs no libm. */
static const uint32_t md5_t[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a,
    0xa8304613, 0xfd469501, 0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be,
    0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821, 0xf61e2562, 0xc040b340,
    0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8,
    0x676f02d9, 0x8d2a4c8a, 0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c,
    0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70, 0x289b7ec6, 0xeaa127fa,
    0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92,
    0xffeff47d, 0x85845dd1, 0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1,
    0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};

/* RFC 1321 3.4: the rotation amounts repeat every four operations within a
 * round. */
static const unsigned md5_s[4][4] = {
    {7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

static uint32_t rotl(uint32_t x, unsigned n) {
  return (x << n) | (x >> (32u - n));
}

static uint32_t load_le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void store_le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* One 16-word block (RFC 1321 3.4). The 64 operations [abcd k s i] are
 * written as one loop: the word index k follows a per-round pattern, and
 * the registers rotate roles (ABCD, DABC, CDAB, BCDA) after each step. */
static void md5_block(uint32_t state[4], const uint8_t block[64]) {
  uint32_t x[16];
  for (unsigned j = 0; j < 16; j++)
    x[j] = load_le32(block + 4 * j);

  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  for (unsigned i = 0; i < 64; i++) {
    unsigned round = i / 16;
    uint32_t f;
    unsigned k;
    switch (round) {
    case 0:
      f = (b & c) | (~b & d);
      k = i;
      break;
    case 1:
      f = (b & d) | (c & ~d);
      k = (5 * i + 1) % 16;
      break;
    case 2:
      f = b ^ c ^ d;
      k = (3 * i + 5) % 16;
      break;
    default:
      f = c ^ (b | ~d);
      k = (7 * i) % 16;
      break;
    }
    uint32_t t = b + rotl(a + f + x[k] + md5_t[i], md5_s[round][i % 4]);
    a = d;
    d = c;
    c = b;
    b = t;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  mailproto_secure_zero(x, sizeof x);
}

void mailproto_md5_init(mailproto_md5 *ctx) {
  /* RFC 1321 3.3 */
  ctx->state[0] = 0x67452301;
  ctx->state[1] = 0xefcdab89;
  ctx->state[2] = 0x98badcfe;
  ctx->state[3] = 0x10325476;
  ctx->length = 0;
  ctx->block_len = 0;
}

void mailproto_md5_update(mailproto_md5 *ctx, const void *data, size_t len) {
  const uint8_t *p = data;
  ctx->length += len;
  if (ctx->block_len > 0) {
    size_t take = 64 - ctx->block_len;
    if (take > len)
      take = len;
    memcpy(ctx->block + ctx->block_len, p, take);
    ctx->block_len += take;
    p += take;
    len -= take;
    if (ctx->block_len < 64)
      return;
    md5_block(ctx->state, ctx->block);
    ctx->block_len = 0;
  }
  /* Whole blocks straight from the caller's data, without copying. */
  for (; len >= 64; p += 64, len -= 64)
    md5_block(ctx->state, p);
  if (len > 0) {
    memcpy(ctx->block, p, len);
    ctx->block_len = len;
  }
}

void mailproto_md5_final(mailproto_md5 *ctx,
                         uint8_t digest[MAILPROTO_MD5_DIGEST_LEN]) {
  /* RFC 1321 3.1-3.2: a 1 bit, zeros up to 56 mod 64 bytes, then the
   * message length in bits, low-order word first. */
  uint64_t bits = ctx->length * 8u;
  uint8_t pad[72] = {0x80};
  size_t pad_len =
      ctx->block_len < 56 ? 56 - ctx->block_len : 120 - ctx->block_len;
  for (unsigned i = 0; i < 8; i++)
    pad[pad_len + i] = (uint8_t)(bits >> (8 * i));
  mailproto_md5_update(ctx, pad, pad_len + 8);
  for (unsigned i = 0; i < 4; i++)
    store_le32(digest + 4 * i, ctx->state[i]);
  mailproto_secure_zero(ctx, sizeof *ctx);
}

void mailproto_hmac_md5(const void *key, size_t key_len, const void *msg,
                        size_t msg_len,
                        uint8_t digest[MAILPROTO_MD5_DIGEST_LEN]) {
  /* RFC 2104 section 2: keys longer than the block are hashed first; the
   * key is then padded with zeros to the block size B = 64. */
  uint8_t k[64] = {0};
  mailproto_md5 ctx;
  if (key_len > sizeof k) {
    mailproto_md5_init(&ctx);
    mailproto_md5_update(&ctx, key, key_len);
    mailproto_md5_final(&ctx, k);
  } else if (key_len > 0) {
    memcpy(k, key, key_len);
  }

  uint8_t pad[64];
  uint8_t inner[MAILPROTO_MD5_DIGEST_LEN];
  for (unsigned i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x36;
  mailproto_md5_init(&ctx);
  mailproto_md5_update(&ctx, pad, sizeof pad);
  mailproto_md5_update(&ctx, msg, msg_len);
  mailproto_md5_final(&ctx, inner);

  for (unsigned i = 0; i < 64; i++)
    pad[i] = k[i] ^ 0x5c;
  mailproto_md5_init(&ctx);
  mailproto_md5_update(&ctx, pad, sizeof pad);
  mailproto_md5_update(&ctx, inner, sizeof inner);
  mailproto_md5_final(&ctx, digest);

  /* The padded key is as good as the secret itself. */
  mailproto_secure_zero(k, sizeof k);
  mailproto_secure_zero(pad, sizeof pad);
  mailproto_secure_zero(inner, sizeof inner);
}

void mailproto_hex_lower(const uint8_t *bytes, size_t len, char *out) {
  static const char digits[] = "0123456789abcdef";
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 0xf];
  }
  out[2 * len] = '\0';
}

int mailproto_memcmp_const(const void *a, const void *b, size_t len) {
  const volatile uint8_t *x = a;
  const volatile uint8_t *y = b;
  uint8_t diff = 0;
  for (size_t i = 0; i < len; i++)
    diff |= (uint8_t)(x[i] ^ y[i]);
  return diff != 0;
}
