/* UTF-8 (RFC 3629) decoding and encoding; see utf8.h. */
#include "core/utf8.h"

size_t mailproto_utf8_decode(const uint8_t *p, size_t len, uint32_t *cp) {
  if (len == 0)
    return 0;
  uint8_t c = p[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t n;
  uint8_t lo = 0x80, hi = 0xbf;
  uint32_t v;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    v = c & 0x1fu;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    v = c & 0x0fu;
    if (c == 0xe0)
      lo = 0xa0; /* overlong */
    else if (c == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    v = c & 0x07u;
    if (c == 0xf0)
      lo = 0x90; /* overlong */
    else if (c == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return 0;
  }
  if (len < n || p[1] < lo || p[1] > hi)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if (p[i] < 0x80 || p[i] > 0xbf)
      return 0;
    v = v << 6 | (p[i] & 0x3fu);
  }
  *cp = v;
  return n;
}

size_t mailproto_utf8_encode(uint8_t *out, uint32_t cp) {
  if (cp < 0x80) {
    out[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (uint8_t)(0xC0 | (cp >> 6));
    out[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (cp >> 12));
    out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (cp >> 18));
  out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}
