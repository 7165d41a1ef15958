/*
 * SASLprep; see saslprep.h. The B and C tables are stringprep's (RFC 3454
 * appendices B.1 and C), as RFC 4013 2.1 and 2.3 name them; the Unicode
 * data for normalisation, A.1 and the bidi check are in saslprep_tables.c.
 */
#include "core/saslprep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/unicode_tables.h"
#include "core/utf8.h"
#include "mailproto/mailproto.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* bsearch() comparators: the key is a code point (or a pair of them). */
static int cmp_range(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_range *r = elem;
  return cp < r->first ? -1 : cp > r->last;
}

static int cmp_class(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_class *c = elem;
  return cp < c->first ? -1 : cp > c->last;
}

static int cmp_decomposition(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_decomposition *d = elem;
  return cp < d->code_point ? -1 : cp > d->code_point;
}

static int cmp_pair(const void *key, const void *elem) {
  const uint32_t *ab = key;
  const mailproto_ucd_pair *p = elem;
  if (ab[0] != p->first)
    return ab[0] < p->first ? -1 : 1;
  return ab[1] < p->second ? -1 : ab[1] > p->second;
}

static int in_ranges(uint32_t cp, const mailproto_ucd_range *r, size_t n) {
  return bsearch(&cp, r, n, sizeof *r, cmp_range) != NULL;
}

/* B.1: commonly mapped to nothing. */
static const mailproto_ucd_range map_to_nothing[] = {
    {0x00AD, 0x00AD}, {0x034F, 0x034F}, {0x1806, 0x1806}, {0x180B, 0x180D},
    {0x200B, 0x200D}, {0x2060, 0x2060}, {0xFE00, 0xFE0F}, {0xFEFF, 0xFEFF},
};

/* C.1.2: non-ASCII space characters, mapped to SPACE (U+200B is in B.1,
 * which is applied first). */
static const mailproto_ucd_range non_ascii_space[] = {
    {0x00A0, 0x00A0}, {0x1680, 0x1680}, {0x2000, 0x200A},
    {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
};

/* C.2.1 to C.9 merged: controls, private use, non-characters,
 * surrogates, characters inappropriate for plain text or canonical
 * representation, display-changing or deprecated ones, tags. (The
 * non-characters U+nFFFE..U+nFFFF of the planes above 0 are tested
 * apart.) */
static const mailproto_ucd_range prohibited[] = {
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
  return in_ranges(cp, prohibited, COUNT(prohibited)) ||
         in_ranges(cp, non_ascii_space, COUNT(non_ascii_space));
}

/* ---- normalisation form KC (Unicode 3.2, UAX #15) ---- */

/* Hangul syllables (Unicode 3.2 section 3.12): composed of a leading
 * consonant, a vowel and an optional trailing consonant by arithmetic. */
enum {
  S_BASE = 0xAC00,
  L_BASE = 0x1100,
  V_BASE = 0x1161,
  T_BASE = 0x11A7,
  L_COUNT = 19,
  V_COUNT = 21,
  T_COUNT = 28,
  N_COUNT = V_COUNT * T_COUNT,
  S_COUNT = L_COUNT * N_COUNT
};

static unsigned combining_class(uint32_t cp) {
  if (cp < 0x300) /* the first combining mark */
    return 0;
  const mailproto_ucd_class *c =
      bsearch(&cp, mailproto_ucd_combining, mailproto_ucd_combining_count,
              sizeof *c, cmp_class);
  return c ? c->combining_class : 0;
}

static const mailproto_ucd_decomposition *decomposition(uint32_t cp) {
  if (cp < 0xA0) /* the first character with a decomposition */
    return NULL;
  return bsearch(&cp, mailproto_ucd_decompositions,
                 mailproto_ucd_decompositions_count,
                 sizeof mailproto_ucd_decompositions[0], cmp_decomposition);
}

/* The primary composite of `a` followed by `b`, or 0 when there is none. */
static uint32_t composite(uint32_t a, uint32_t b) {
  if (a - L_BASE < L_COUNT && b - V_BASE < V_COUNT)
    return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
  if (a - S_BASE < S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE &&
      b - T_BASE < T_COUNT)
    return a + (b - T_BASE);
  const uint32_t key[2] = {a, b};
  const mailproto_ucd_pair *p =
      bsearch(key, mailproto_ucd_compositions, mailproto_ucd_compositions_count,
              sizeof *p, cmp_pair);
  return p ? p->composite : 0;
}

typedef struct prep_work {
  uint32_t cp[MAILPROTO_SASLPREP_MAX_CODE_POINTS];
  size_t n;
} prep_work;

static int push(prep_work *w, uint32_t cp) {
  if (w->n == MAILPROTO_SASLPREP_MAX_CODE_POINTS)
    return MAILPROTO_ERR_TOO_LONG;
  w->cp[w->n++] = cp;
  return 0;
}

/* Appends the full compatibility decomposition of `cp`. */
static int decompose(prep_work *w, uint32_t cp) {
  int rc = 0;
  if (cp - S_BASE < S_COUNT) {
    uint32_t s = cp - S_BASE;
    rc = push(w, L_BASE + s / N_COUNT);
    if (rc == 0)
      rc = push(w, V_BASE + s % N_COUNT / T_COUNT);
    if (rc == 0 && s % T_COUNT != 0)
      rc = push(w, T_BASE + s % T_COUNT);
    return rc;
  }
  const mailproto_ucd_decomposition *d = decomposition(cp);
  if (!d)
    return push(w, cp);
  for (size_t k = 0; k < d->length && rc == 0; k++)
    rc = push(w, mailproto_ucd_decomposition_pool[d->offset + k]);
  return rc;
}

/* Canonical ordering: each run of combining marks sorted by class, marks
 * of one class keeping their order (an insertion sort: runs are short). */
static void canonical_order(prep_work *w) {
  for (size_t i = 1; i < w->n; i++) {
    uint32_t cp = w->cp[i];
    unsigned cls = combining_class(cp);
    if (cls == 0)
      continue;
    size_t j = i;
    while (j > 0 && combining_class(w->cp[j - 1]) > cls) {
      w->cp[j] = w->cp[j - 1];
      j--;
    }
    w->cp[j] = cp;
  }
}

/* Canonical composition: each character joins the last starter unless a
 * character between them is a starter or has a class at least its own
 * (is "blocked"). */
static void compose(prep_work *w) {
  size_t starter = SIZE_MAX, out = 0;
  unsigned last = 0;
  for (size_t i = 0; i < w->n; i++) {
    uint32_t cp = w->cp[i];
    unsigned cls = combining_class(cp);
    if (starter != SIZE_MAX && (last < cls || last == 0)) {
      uint32_t joined = composite(w->cp[starter], cp);
      if (joined) {
        w->cp[starter] = joined;
        continue;
      }
    }
    if (cls == 0)
      starter = out;
    last = cls;
    w->cp[out++] = cp;
  }
  w->n = out;
}

/* ---- the profile ---- */

/* RFC 3454 6: a string with a right-to-left character has no
 * left-to-right one, and starts and ends with a right-to-left one. */
static int bidi_ok(const prep_work *w) {
  int rtl = 0, ltr = 0;
  for (size_t i = 0; i < w->n; i++) {
    rtl |= in_ranges(w->cp[i], mailproto_ucd_bidi_r_al,
                     mailproto_ucd_bidi_r_al_count);
    ltr |=
        in_ranges(w->cp[i], mailproto_ucd_bidi_l, mailproto_ucd_bidi_l_count);
  }
  if (!rtl)
    return 1;
  return !ltr &&
         in_ranges(w->cp[0], mailproto_ucd_bidi_r_al,
                   mailproto_ucd_bidi_r_al_count) &&
         in_ranges(w->cp[w->n - 1], mailproto_ucd_bidi_r_al,
                   mailproto_ucd_bidi_r_al_count);
}

int mailproto_unicode32_unassigned(uint32_t cp) {
  return in_ranges(cp, mailproto_ucd_unassigned,
                   mailproto_ucd_unassigned_count);
}

/* Steps 2.1 (mapping) and 2.5 (unassigned, stored strings) on the input,
 * with the mapped string decomposed as it goes. */
static int map_and_decompose(const char *in, size_t len,
                             mailproto_prep_kind kind, prep_work *w) {
  const uint8_t *p = (const uint8_t *)in;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = mailproto_utf8_decode(p + i, len - i, &cp);
    if (n == 0)
      return MAILPROTO_ERR_SYNTAX;
    i += n;
    if (in_ranges(cp, map_to_nothing, COUNT(map_to_nothing)))
      continue;
    if (in_ranges(cp, non_ascii_space, COUNT(non_ascii_space)))
      cp = ' ';
    if (kind == MAILPROTO_PREP_STORED && mailproto_unicode32_unassigned(cp))
      return MAILPROTO_ERR_SYNTAX;
    int rc = decompose(w, cp);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int encode(const prep_work *w, char *out, size_t out_size,
                  size_t *out_len) {
  size_t o = 0;
  uint8_t bytes[4];
  for (size_t i = 0; i < w->n; i++) {
    size_t n = mailproto_utf8_encode(bytes, w->cp[i]);
    if (n > out_size - o) {
      mailproto_secure_zero(out, o);
      mailproto_secure_zero(bytes, sizeof bytes);
      return MAILPROTO_ERR_TOO_LONG;
    }
    memcpy(out + o, bytes, n);
    o += n;
  }
  mailproto_secure_zero(bytes, sizeof bytes);
  *out_len = o;
  return 0;
}

/* The work area held a password: cleared before the stack frame goes. */
static int finish(prep_work *w, int rc) {
  mailproto_secure_zero(w, sizeof *w);
  return rc;
}

int mailproto_nfkc(const char *in, size_t len, char *out, size_t out_size,
                   size_t *out_len) {
  const uint8_t *p = (const uint8_t *)in;
  prep_work w;
  w.n = 0;
  for (size_t i = 0; i < len;) {
    uint32_t cp;
    size_t n = mailproto_utf8_decode(p + i, len - i, &cp);
    if (n == 0)
      return finish(&w, MAILPROTO_ERR_SYNTAX);
    i += n;
    int rc = decompose(&w, cp);
    if (rc != 0)
      return finish(&w, rc);
  }
  canonical_order(&w);
  compose(&w);
  return finish(&w, encode(&w, out, out_size, out_len));
}

int mailproto_saslprep(const char *in, size_t len, mailproto_prep_kind kind,
                       char *out, size_t out_size, size_t *out_len) {
  prep_work w;
  w.n = 0;
  int rc = map_and_decompose(in, len, kind, &w);
  if (rc != 0)
    return finish(&w, rc);
  canonical_order(&w);
  compose(&w);
  for (size_t i = 0; i < w.n; i++)
    if (is_prohibited(w.cp[i]))
      return finish(&w, MAILPROTO_ERR_SYNTAX);
  if (!bidi_ok(&w))
    return finish(&w, MAILPROTO_ERR_SYNTAX);
  return finish(&w, encode(&w, out, out_size, out_len));
}

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

int mailproto_credential_prepare(const char *in, size_t len,
                                 mailproto_prep_kind kind, char *out,
                                 size_t out_size, size_t *out_len) {
  if (out_size == 0)
    return MAILPROTO_ERR_TOO_LONG;
  out[0] = '\0';
  int ascii = 1;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    /* ASCII controls are prohibited output (C.2.1) whatever the rest. */
    if (c < 0x20 || c == 0x7f)
      return MAILPROTO_ERR_SYNTAX;
    ascii &= c < 0x80;
  }
  if (ascii || !utf8_valid(in, len)) {
    if (len >= out_size)
      return MAILPROTO_ERR_TOO_LONG;
    memcpy(out, in, len);
    *out_len = len;
  } else {
    int rc = mailproto_saslprep(in, len, kind, out, out_size - 1, out_len);
    if (rc != 0) {
      out[0] = '\0';
      return rc;
    }
  }
  out[*out_len] = '\0';
  return len > 0 && *out_len == 0 ? MAILPROTO_ERR_SYNTAX : 0;
}
