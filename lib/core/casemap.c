/* i;unicode-casemap; see casemap.h. Tables in casemap_tables.c. */
#include "core/casemap.h"

#include <stdlib.h>

#include "core/unicode_tables.h"

/* A two-stage mapping lookup (unicode_tables.h): two loads, so text in
 * any script costs about what ASCII does. */
static uint32_t two_level(const uint8_t *stage1, size_t blocks,
                          const int32_t (*stage2)[128], uint32_t cp) {
  uint32_t b = cp / 128;
  if (b >= blocks || stage1[b] == 0)
    return cp;
  return (uint32_t)((int32_t)cp + stage2[stage1[b] - 1][cp % 128]);
}

static int cmp_decomposition(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_decomposition *d = elem;
  return cp < d->code_point ? -1 : cp > d->code_point;
}

static uint32_t titlecase(uint32_t cp) {
  if (cp < 0x80)
    return cp >= 'a' && cp <= 'z' ? cp - 32 : cp;
  return two_level(mailproto_ucd_titlecase_stage1,
                   mailproto_ucd_titlecase_blocks,
                   mailproto_ucd_titlecase_stage2, cp);
}

size_t mailproto_casemap(uint32_t cp, uint32_t *out) {
  if (cp < 0xC0) { /* nothing below decomposes */
    out[0] = titlecase(cp);
    return 1;
  }
  /* A work stack, last first: a decomposition's parts are titlecased and
   * decomposed again in turn (a part may have its own titlecase). Every
   * table decomposition is short (at most 4 parts), so the room is never
   * reached in practice; were it, the character stays as it is. */
  uint32_t stack[MAILPROTO_CASEMAP_MAX];
  size_t sp = 0, n = 0;
  stack[sp++] = cp;
  while (sp > 0) {
    uint32_t c = titlecase(stack[--sp]);
    const mailproto_ucd_decomposition *d =
        c < 0xC0 ? NULL
                 : bsearch(&c, mailproto_ucd_canonical,
                           mailproto_ucd_canonical_count, sizeof *d,
                           cmp_decomposition);
    if (d && sp + d->length <= MAILPROTO_CASEMAP_MAX &&
        n + sp + d->length <= MAILPROTO_CASEMAP_MAX) {
      for (size_t k = d->length; k-- > 0;)
        stack[sp++] = mailproto_ucd_canonical_pool[d->offset + k];
      continue;
    }
    if (n == MAILPROTO_CASEMAP_MAX)
      break;
    out[n++] = c;
  }
  return n;
}

uint32_t mailproto_casefold(uint32_t cp) {
  if (cp < 0x80)
    return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
  return two_level(mailproto_ucd_casefold_stage1, mailproto_ucd_casefold_blocks,
                   mailproto_ucd_casefold_stage2, cp);
}
