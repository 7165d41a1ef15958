/* i;unicode-casemap; see casemap.h. Tables in casemap_tables.c. */
#include "core/casemap.h"

#include <stdlib.h>

#include "core/unicode_tables.h"

static int cmp_mapping(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_mapping *m = elem;
  return cp < m->from ? -1 : cp > m->from;
}

static int cmp_decomposition(const void *key, const void *elem) {
  uint32_t cp = *(const uint32_t *)key;
  const mailproto_ucd_decomposition *d = elem;
  return cp < d->code_point ? -1 : cp > d->code_point;
}

static uint32_t titlecase(uint32_t cp) {
  const mailproto_ucd_mapping *m =
      bsearch(&cp, mailproto_ucd_titlecase, mailproto_ucd_titlecase_count,
              sizeof *m, cmp_mapping);
  return m ? m->to : cp;
}

size_t mailproto_casemap(uint32_t cp, uint32_t *out) {
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
  const mailproto_ucd_mapping *m =
      bsearch(&cp, mailproto_ucd_casefold, mailproto_ucd_casefold_count,
              sizeof *m, cmp_mapping);
  return m ? m->to : cp;
}
