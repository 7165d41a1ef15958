/*
 * Base64 (RFC 4648 section 4): padded encoder and a strict decoder.
 *
 * The decoder sits on the SASL path, where lenient decoding would let two
 * different wire strings carry the same credentials, so it accepts exactly
 * one encoding per byte string: no whitespace, padding required, and the
 * unused bits of the last group must be zero (RFC 4648 section 3.5).
 */
#include <limits.h>
#include <stdint.h>

#include "mailproto/mailproto.h"

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of each byte in the alphabet; BAD (bit 7 set) for everything else,
 * including '=', which is only allowed where the final group checks it. */
#define BAD 0xff
static const uint8_t values[256] = {
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  0x3e, BAD,  BAD,  BAD,  0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
    0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
    0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
    0x31, 0x32, 0x33, BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,  BAD,
    BAD,  BAD,  BAD,  BAD,
};

size_t mailproto_base64_encoded_len(size_t len) {
  size_t groups = len / 3 + (len % 3 != 0);
  if (groups > SIZE_MAX / 4)
    return 0;
  return groups * 4;
}

long mailproto_base64_encode(const void *in, size_t in_len, char *out,
                             size_t out_size) {
  if ((in == NULL && in_len != 0) || (out == NULL && out_size != 0))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t need = mailproto_base64_encoded_len(in_len);
  if (need == 0 && in_len != 0)
    return MAILPROTO_ERR_BUFFER_FULL; /* no buffer can be that large */
  if (need > (size_t)LONG_MAX)
    return MAILPROTO_ERR_TOO_LONG; /* the count would not fit the result */
  if (out_size < need)
    return MAILPROTO_ERR_BUFFER_FULL;

  const uint8_t *p = in;
  char *o = out;
  size_t full = in_len / 3 * 3;
  for (size_t i = 0; i < full; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[v >> 12 & 0x3f];
    o[2] = alphabet[v >> 6 & 0x3f];
    o[3] = alphabet[v & 0x3f];
    o += 4;
  }
  size_t rest = in_len - full;
  if (rest != 0) {
    uint32_t v = (uint32_t)p[full] << 16;
    if (rest == 2)
      v |= (uint32_t)p[full + 1] << 8;
    o[0] = alphabet[v >> 18];
    o[1] = alphabet[v >> 12 & 0x3f];
    o[2] = rest == 2 ? alphabet[v >> 6 & 0x3f] : '=';
    o[3] = '=';
    o += 4;
  }
  return (long)(o - out);
}

/*
 * Decodes the final group "abcd", "abc=" or "ab==" into dst (which may be
 * NULL to only validate). Returns the byte count (1..3) or -1.
 */
static int decode_last(const uint8_t *s, uint8_t *dst) {
  unsigned a = values[s[0]], b = values[s[1]];
  if ((a | b) & 0x80)
    return -1;
  if (s[2] == '=') {
    /* "ab==": one byte; the low four bits of b are padding. */
    if (s[3] != '=' || (b & 0x0f) != 0)
      return -1;
    if (dst)
      dst[0] = (uint8_t)(a << 2 | b >> 4);
    return 1;
  }
  unsigned c = values[s[2]];
  if (c & 0x80)
    return -1;
  if (s[3] == '=') {
    /* "abc=": two bytes; the low two bits of c are padding. */
    if ((c & 0x03) != 0)
      return -1;
    if (dst) {
      dst[0] = (uint8_t)(a << 2 | b >> 4);
      dst[1] = (uint8_t)((b & 0x0f) << 4 | c >> 2);
    }
    return 2;
  }
  unsigned d = values[s[3]];
  if (d & 0x80)
    return -1;
  if (dst) {
    dst[0] = (uint8_t)(a << 2 | b >> 4);
    dst[1] = (uint8_t)((b & 0x0f) << 4 | c >> 2);
    dst[2] = (uint8_t)((c & 0x03) << 6 | d);
  }
  return 3;
}

/* Decodes `groups` unpadded groups of four from s into dst (NULL: only
 * validate). Returns 0 or -1. */
static int decode_groups(const uint8_t *s, size_t groups, uint8_t *dst) {
  for (size_t g = 0; g < groups; g++, s += 4) {
    uint32_t a = values[s[0]], b = values[s[1]];
    uint32_t c = values[s[2]], d = values[s[3]];
    /* One test for all four: an invalid byte has bit 7 set. */
    if ((a | b | c | d) & 0x80)
      return -1;
    if (dst) {
      uint32_t v = a << 18 | b << 12 | c << 6 | d;
      dst[0] = (uint8_t)(v >> 16);
      dst[1] = (uint8_t)(v >> 8);
      dst[2] = (uint8_t)v;
      dst += 3;
    }
  }
  return 0;
}

long mailproto_base64_decode(const char *in, size_t in_len, void *out,
                             size_t out_size) {
  if ((in == NULL && in_len != 0) || (out == NULL && out_size != 0))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (in_len == 0)
    return 0;
  if (in_len % 4 != 0)
    return MAILPROTO_ERR_SYNTAX;

  const uint8_t *s = (const uint8_t *)in;
  size_t groups = in_len / 4 - 1; /* all but the final, maybe padded, one */
  const uint8_t *last = s + groups * 4;
  size_t pad = (size_t)(last[3] == '=') + (size_t)(last[2] == '=');
  size_t need = (groups + 1) * 3 - pad;
  if (need > (size_t)LONG_MAX)
    return MAILPROTO_ERR_TOO_LONG;

  if (out_size < need) {
    /* Report malformed input as such even when the buffer is also short. */
    if (decode_groups(s, groups, NULL) != 0 || decode_last(last, NULL) < 0)
      return MAILPROTO_ERR_SYNTAX;
    return MAILPROTO_ERR_BUFFER_FULL;
  }
  uint8_t *o = out;
  if (decode_groups(s, groups, o) != 0)
    return MAILPROTO_ERR_SYNTAX;
  int n = decode_last(last, o + groups * 3);
  if (n < 0)
    return MAILPROTO_ERR_SYNTAX;
  return (long)(groups * 3 + (size_t)n);
}
