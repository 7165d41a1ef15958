/*
 * IMAP modified UTF-7 (RFC 3501 section 5.1.3), both directions.
 *
 * Both converters are strict so that every mailbox name has exactly one
 * encoded form: RFC 3501 requires servers to keep the base64 part exact
 * and case-sensitive, so two spellings of one name would be two mailboxes.
 * Whatever one direction accepts, the other gives back unchanged:
 * utf8 -> mutf7 -> utf8 and (accepted) mutf7 -> utf8 -> mutf7 are both
 * identities. For that, control characters (C0, DEL, C1) are refused in
 * both directions; they have no place in a mailbox name (RFC 5198).
 */
#include <limits.h>
#include <stdint.h>

#include "mailproto/mailproto.h"

/* RFC 3501: base64 with "," in place of "/", and no padding. */
static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(unsigned char ch) {
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+')
    return 62;
  if (ch == ',')
    return 63;
  return -1;
}

static int is_control(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Output that keeps counting past the end of the buffer, so the whole
 * input is still validated (malformed input is reported as such even when
 * the buffer is also too small). */
typedef struct sink {
  char *out;
  size_t cap, len;
} sink;

static void put(sink *k, char ch) {
  if (k->len < k->cap)
    k->out[k->len] = ch;
  if (k->len < SIZE_MAX) /* saturate; only reachable with absurd inputs */
    k->len++;
}

static long finish(sink *k) {
  if (k->len >= k->cap)
    return MAILPROTO_ERR_BUFFER_FULL; /* no room for the NUL */
  if (k->len > (size_t)LONG_MAX)
    return MAILPROTO_ERR_TOO_LONG;
  k->out[k->len] = '\0';
  return (long)k->len;
}

static void put_utf8(sink *k, uint32_t cp) {
  if (cp < 0x80) {
    put(k, (char)cp);
  } else if (cp < 0x800) {
    put(k, (char)(0xc0 | cp >> 6));
    put(k, (char)(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    put(k, (char)(0xe0 | cp >> 12));
    put(k, (char)(0x80 | (cp >> 6 & 0x3f)));
    put(k, (char)(0x80 | (cp & 0x3f)));
  } else {
    put(k, (char)(0xf0 | cp >> 18));
    put(k, (char)(0x80 | (cp >> 12 & 0x3f)));
    put(k, (char)(0x80 | (cp >> 6 & 0x3f)));
    put(k, (char)(0x80 | (cp & 0x3f)));
  }
}

/*
 * Decodes one base64 run starting at in[*i] (just after "&") up to and
 * including its closing "-". Returns 0 or -1.
 */
static int decode_shift(const unsigned char *in, size_t len, size_t *i,
                        sink *k) {
  uint32_t bits = 0, high = 0;
  unsigned nbits = 0;
  size_t p = *i;
  int v;
  while (p < len && (v = b64_value(in[p])) >= 0) {
    bits = bits << 6 | (uint32_t)v;
    nbits += 6;
    p++;
    if (nbits < 16)
      continue;
    nbits -= 16;
    uint32_t unit = bits >> nbits;
    bits &= (UINT32_C(1) << nbits) - 1;
    if (high != 0) {
      if (unit < 0xdc00 || unit > 0xdfff)
        return -1; /* high surrogate without its low half */
      put_utf8(k, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
      high = 0;
    } else if (unit >= 0xd800 && unit <= 0xdbff) {
      high = unit;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      return -1; /* low surrogate first */
    } else if (unit <= 0x7e || is_control(unit)) {
      /* "Modified BASE64 MUST NOT be used to represent any printing
       * US-ASCII character which can represent itself"; controls are
       * refused as in the other direction. */
      return -1;
    } else {
      put_utf8(k, unit);
    }
  }
  /* No implicit shift back: the run must end with "-" (5.1.3). At most
   * four zero bits may be left over; six or more would be a superfluous
   * base64 character. A surrogate pair may not straddle two shifts. */
  if (p == len || in[p] != '-' || nbits >= 6 || bits != 0 || high != 0)
    return -1;
  *i = p + 1;
  return 0;
}

long mailproto_mutf7_to_utf8(const char *in, size_t in_len, char *out,
                             size_t out_size) {
  if ((in == NULL && in_len != 0) || (out == NULL && out_size != 0))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const unsigned char *s = (const unsigned char *)in;
  sink k = {out, out_size, 0};
  int after_shift = 0;
  size_t i = 0;
  while (i < in_len) {
    unsigned char ch = s[i];
    if (ch < 0x20 || ch > 0x7e)
      return MAILPROTO_ERR_SYNTAX;
    if (ch != '&') {
      put(&k, (char)ch);
      i++;
      after_shift = 0;
      continue;
    }
    if (++i == in_len)
      return MAILPROTO_ERR_SYNTAX; /* names must end in US-ASCII */
    if (s[i] == '-') {
      put(&k, '&');
      i++;
      after_shift = 0;
      continue;
    }
    /* "-&" while in base64 is a null shift: two adjacent runs must be
     * written as one. */
    if (after_shift || decode_shift(s, in_len, &i, &k) != 0)
      return MAILPROTO_ERR_SYNTAX;
    after_shift = 1;
  }
  return finish(&k);
}

/*
 * Reads one UTF-8 sequence at s[*i] (RFC 3629: shortest form only, no
 * surrogates, nothing above U+10FFFF). Returns the code point or -1.
 */
static long next_code_point(const unsigned char *s, size_t len, size_t *i) {
  size_t p = *i;
  unsigned char b = s[p];
  if (b < 0x80) {
    *i = p + 1;
    return b;
  }
  size_t n;
  uint32_t cp;
  unsigned char lo = 0x80, hi = 0xbf; /* allowed range of the 2nd byte */
  if (b >= 0xc2 && b <= 0xdf) {
    n = 2;
    cp = b & 0x1fu;
  } else if (b >= 0xe0 && b <= 0xef) {
    n = 3;
    cp = b & 0x0fu;
    if (b == 0xe0)
      lo = 0xa0; /* overlong */
    else if (b == 0xed)
      hi = 0x9f; /* surrogates */
  } else if (b >= 0xf0 && b <= 0xf4) {
    n = 4;
    cp = b & 0x07u;
    if (b == 0xf0)
      lo = 0x90; /* overlong */
    else if (b == 0xf4)
      hi = 0x8f; /* above U+10FFFF */
  } else {
    return -1;
  }
  if (len - p < n || s[p + 1] < lo || s[p + 1] > hi)
    return -1;
  for (size_t j = 1; j < n; j++) {
    if ((s[p + j] & 0xc0) != 0x80)
      return -1;
    cp = cp << 6 | (s[p + j] & 0x3fu);
  }
  *i = p + n;
  return (long)cp;
}

/* Base64 state of the encoder: pending bits, written out six at a time. */
typedef struct shift {
  int active;
  unsigned nbits;
  uint32_t bits;
} shift;

static void shift_unit(sink *k, shift *sh, uint32_t unit) {
  if (!sh->active) {
    put(k, '&');
    sh->active = 1;
  }
  sh->bits = sh->bits << 16 | unit;
  sh->nbits += 16;
  while (sh->nbits >= 6) {
    sh->nbits -= 6;
    put(k, alphabet[sh->bits >> sh->nbits & 0x3f]);
  }
  sh->bits &= (UINT32_C(1) << sh->nbits) - 1;
}

static void shift_end(sink *k, shift *sh) {
  if (!sh->active)
    return;
  /* Pad the last character with zero bits, then shift back explicitly. */
  if (sh->nbits > 0)
    put(k, alphabet[sh->bits << (6 - sh->nbits) & 0x3f]);
  put(k, '-');
  sh->active = 0;
  sh->nbits = 0;
  sh->bits = 0;
}

long mailproto_utf8_to_mutf7(const char *in, size_t in_len, char *out,
                             size_t out_size) {
  if ((in == NULL && in_len != 0) || (out == NULL && out_size != 0))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const unsigned char *s = (const unsigned char *)in;
  sink k = {out, out_size, 0};
  shift sh = {0, 0, 0};
  size_t i = 0;
  while (i < in_len) {
    long r = next_code_point(s, in_len, &i);
    if (r < 0)
      return MAILPROTO_ERR_SYNTAX;
    uint32_t cp = (uint32_t)r;
    if (is_control(cp))
      return MAILPROTO_ERR_SYNTAX;
    if (cp < 0x80) {
      /* Printable US-ASCII represents itself; "&" is written "&-". */
      shift_end(&k, &sh);
      put(&k, (char)cp);
      if (cp == '&')
        put(&k, '-');
    } else if (cp < 0x10000) {
      shift_unit(&k, &sh, cp);
    } else {
      cp -= 0x10000;
      shift_unit(&k, &sh, 0xd800 | cp >> 10);
      shift_unit(&k, &sh, 0xdc00 | (cp & 0x3ff));
    }
  }
  /* Names must end in US-ASCII (5.1.3). */
  shift_end(&k, &sh);
  return finish(&k);
}
