/*
 * UTF-8 decoding and the table-light part of SASLprep; see utf8.h.
 * The tables are those of stringprep (RFC 3454 appendices B and C), as
 * RFC 4013 2.1 and 2.3 name them.
 */
#include "core/utf8.h"

#include <string.h>

#include "mailproto/mailproto.h"

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

typedef struct cp_range {
  uint32_t first, last;
} cp_range;

static int in_ranges(uint32_t cp, const cp_range *r, size_t n) {
  /* The tables are sorted: a binary search. */
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (cp < r[mid].first)
      hi = mid;
    else if (cp > r[mid].last)
      lo = mid + 1;
    else
      return 1;
  }
  return 0;
}

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Whether the whole of in[0..len) is UTF-8. */
static int utf8_valid(const char *in, size_t len) {
  const uint8_t *p = (const uint8_t *)in;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = mailproto_utf8_decode(p + i, len - i, &cp);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}

/* B.1: commonly mapped to nothing. */
static const cp_range map_to_nothing[] = {
    {0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806}, {0x180B, 0x180D},
    {0x200B, 0x200D}, {0x2060, 0x2060}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF},
};

/* C.1.2: non-ASCII space characters, mapped to SPACE (U+200B is in B.1,
 * which is applied first). */
static const cp_range non_ascii_space[] = {
    {0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

/* C.2.1 to C.9 merged: controls, private use, non-characters,
 * surrogates, characters inappropriate for plain text or canonical
 * representation, display-changing or deprecated ones, tags. (The
 * non-characters U+nFFFE..U+nFFFF of the planes above 0 are tested
 * apart.) */
static const cp_range prohibited[] = {
    {0x0000, 0x001F},    {0x007F, 0x009F},   {0x0340, 0x0341},
    {0x06DD, 0x06DD},    {0x070F, 0x070F},   {0x180E, 0x180E},
    {0x200C, 0x200F},    {0x2028, 0x202E},   {0x2060, 0x2063},
    {0x206A, 0x206F},    {0x2FF0, 0x2FFB},   {0xD800, 0xF8FF},
    {0xFDD0, 0xFDEF},    {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFF},
    {0x1D173, 0x1D17A},  {0xE0001, 0xE0001}, {0xE0020, 0xE007F},
    {0xF0000, 0x10FFFF},
};

static int is_prohibited(uint32_t cp) {
  if ((cp & 0xFFFEu) == 0xFFFEu) /* C.4: U+nFFFE and U+nFFFF */
    return 1;
  return in_ranges(cp, prohibited, COUNT(prohibited));
}

int mailproto_credential_prepare(const char *in, size_t len, char *out,
                                 size_t *out_len) {
  int ascii = 1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    /* ASCII controls are prohibited output (C.2.1) whatever the rest. */
    if (c < 0x20 || c == 0x7f) {
      out[0] = '\0';
      return MAILPROTO_ERR_SYNTAX;
    }
    ascii &= c < 0x80;
  }
  if (ascii || !utf8_valid(in, len)) {
    memcpy(out, in, len);
    *out_len = len;
  } else if (mailproto_saslprep(in, len, out, out_len) != 0) {
    out[0] = '\0';
    return MAILPROTO_ERR_SYNTAX;
  }
  out[*out_len] = '\0';
  return len > 0 && *out_len == 0 ? MAILPROTO_ERR_SYNTAX : 0;
}

int mailproto_saslprep(const char *in, size_t len, char *out, size_t *out_len) {
  const uint8_t *p = (const uint8_t *)in;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = mailproto_utf8_decode(p + i, len - i, &cp);
    if (n == 0)
      return MAILPROTO_ERR_SYNTAX;
    if (in_ranges(cp, map_to_nothing, COUNT(map_to_nothing))) {
      i += n;
      continue;
    }
    if (in_ranges(cp, non_ascii_space, COUNT(non_ascii_space))) {
      out[o++] = ' ';
      i += n;
      continue;
    }
    if (is_prohibited(cp))
      return MAILPROTO_ERR_SYNTAX;
    for (size_t k = 0; k < n; k++)
      out[o++] = in[i + k];
    i += n;
  }
  *out_len = o;
  return 0;
}
