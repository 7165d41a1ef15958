/*
 * Case-insensitive substring search over UTF-8 text fed in chunks: both
 * sides are decoded to code points, folded one to one (see mime_codec.h
 * for what is and is not folded) and compared with Knuth-Morris-Pratt, so
 * the text is read once whatever the needle.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/casemap.h"
#include "mime/mime_codec.h"

/* Code points no decoded character can have. */
#define TEXT_INVALID 0xFFFFFFFFu   /* malformed UTF-8 in the text */
#define NEEDLE_INVALID 0xFFFFFFFEu /* malformed UTF-8 in the needle */

uint32_t mailproto_mime_fold(uint32_t c) {
  return mailproto_casefold(c);
}

/* Decodes one byte; returns 1 and sets *cp when a character is complete
 * (or malformed: cp = invalid), 0 while a sequence goes on. A byte that
 * breaks a sequence completes it as invalid and is itself kept for the
 * caller to feed again (*again = 1). */
static int utf8_step(mailproto_mime_matcher *m, uint8_t b, uint32_t invalid,
                     uint32_t *cp, int *again) {
  *again = 0;
  if (m->need > 0) {
    if ((b & 0xC0) == 0x80) {
      m->cp = (m->cp << 6) | (b & 0x3Fu);
      if (--m->need > 0)
        return 0;
      uint32_t c = m->cp;
      *cp = (c < m->min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
                ? invalid
                : c;
      return 1;
    }
    m->need = 0;
    *cp = invalid;
    *again = 1;
    return 1;
  }
  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    m->cp = b & 0x1Fu, m->need = 1, m->min = 0x80;
  } else if (b >= 0xE0 && b <= 0xEF) {
    m->cp = b & 0x0Fu, m->need = 2, m->min = 0x800;
  } else if (b >= 0xF0 && b <= 0xF4) {
    m->cp = b & 0x07u, m->need = 3, m->min = 0x10000;
  } else {
    *cp = invalid;
    return 1;
  }
  return 0;
}

/* The bytes a match can begin with (see mime_codec.h). Only U+017F LONG
 * S and U+212A KELVIN SIGN fold to ASCII, to "s" and "k" (the generator
 * of the folding table checks that this stays so): their lead bytes are
 * candidates too. */
static void set_first_bytes(mailproto_mime_matcher *m) {
  uint32_t c = m->needle[0];
  m->first_count = 0;
  if (c >= 0x80)
    return;
  m->first[m->first_count++] = (uint8_t)c;
  if (c >= 'a' && c <= 'z')
    m->first[m->first_count++] = (uint8_t)(c - 32);
  if (c == 's')
    m->first[m->first_count++] = 0xC5;
  else if (c == 'k')
    m->first[m->first_count++] = 0xE2;
}

/* The next offset at or after `i` where a match can begin, or `len`.
 * pos[] caches each byte's next occurrence (SIZE_MAX: not looked for
 * yet), so the text is scanned once per candidate byte. */
static size_t next_start(const mailproto_mime_matcher *m, const uint8_t *text,
                         size_t len, size_t i, size_t pos[3]) {
  size_t best = len;
  for (unsigned k = 0; k < m->first_count; k++) {
    if (pos[k] == SIZE_MAX || pos[k] < i) {
      const uint8_t *p = memchr(text + i, m->first[k], len - i);
      pos[k] = p ? (size_t)(p - text) : len;
    }
    if (pos[k] < best)
      best = pos[k];
  }
  return best;
}

int mailproto_mime_matcher_init(mailproto_mime_matcher *m,
                                const mailproto_allocator *alloc,
                                const uint8_t *needle, size_t len) {
  memset(m, 0, sizeof *m);
  m->alloc = alloc;
  if (len == 0) {
    m->matched = 1;
    return 0;
  }
  m->needle = mailproto_mem_calloc(alloc, len, sizeof *m->needle);
  m->next = mailproto_mem_calloc(alloc, len, sizeof *m->next);
  if (!m->needle || !m->next) {
    mailproto_mime_matcher_free(m);
    return MAILPROTO_ERR_NOMEM;
  }
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    uint32_t cp;
    int again;
    if (utf8_step(m, needle[i], NEEDLE_INVALID, &cp, &again)) {
      m->needle[n++] = cp == NEEDLE_INVALID ? cp : mailproto_mime_fold(cp);
      if (again)
        i--;
    }
  }
  if (m->need > 0)
    m->needle[n++] = NEEDLE_INVALID;
  m->need = 0;
  m->len = n;
  /* KMP: next[i] = length of the longest proper border of needle[0..i] */
  set_first_bytes(m);
  m->next[0] = 0;
  for (size_t i = 1, k = 0; i < n; i++) {
    while (k > 0 && m->needle[i] != m->needle[k])
      k = m->next[k - 1];
    if (m->needle[i] == m->needle[k])
      k++;
    m->next[i] = k;
  }
  return 0;
}

void mailproto_mime_matcher_reset(mailproto_mime_matcher *m) {
  m->state = 0;
  m->need = 0;
  m->matched = m->len == 0;
}

int mailproto_mime_matcher_feed(mailproto_mime_matcher *m, const uint8_t *text,
                                size_t len) {
  if (m->matched)
    return 1;
  size_t pos[3] = {SIZE_MAX, SIZE_MAX, SIZE_MAX};
  for (size_t i = 0; i < len; i++) {
    /* Between matches (and characters) nothing before the next possible
     * first byte can start one: skip there. A byte skipped in the middle
     * of a character would only have ended it as malformed, which
     * matches nothing either. */
    if (m->state == 0 && m->need == 0 && m->first_count > 0 &&
        (i = next_start(m, text, len, i, pos)) == len)
      break;
    uint32_t cp;
    int again;
    uint8_t b = text[i];
    if (b < 0x80 && m->need == 0) {
      cp = b >= 'A' && b <= 'Z' ? b + 32u : b; /* the common case */
    } else {
      if (!utf8_step(m, b, TEXT_INVALID, &cp, &again))
        continue;
      if (again)
        i--;
      if (cp != TEXT_INVALID)
        cp = mailproto_mime_fold(cp);
    }
    size_t k = m->state;
    while (k > 0 && m->needle[k] != cp)
      k = m->next[k - 1];
    if (m->needle[k] == cp)
      k++;
    if (k == m->len) {
      m->matched = 1;
      return 1;
    }
    m->state = k;
  }
  return 0;
}

int mailproto_mime_out_match(void *arg, const uint8_t *data, size_t len) {
  mailproto_mime_matcher_feed(arg, data, len);
  return 0;
}

void mailproto_mime_matcher_free(mailproto_mime_matcher *m) {
  mailproto_mem_free(m->alloc, m->needle);
  mailproto_mem_free(m->alloc, m->next);
  m->needle = NULL;
  m->next = NULL;
  m->len = 0;
}
