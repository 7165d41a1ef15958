/*
 * Checks mailproto_nfkc() against the Unicode Character Database's
 * NormalizationTest.txt, read from standard input: on every line
 * c4 == NFKC(c1) == NFKC(c2) == NFKC(c3) == NFKC(c4) == NFKC(c5).
 *
 * The file may be of any Unicode version; SASLprep normalises as Unicode
 * 3.2 did (RFC 3454 6), so lines with code points 3.2 left unassigned
 * are skipped, and so are the five ideographs whose mappings Corrigendum
 * 4 changed after 3.2. Exits 1 on a mismatch, or when too few lines were
 * checked to mean anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/saslprep.h"
#include "core/utf8.h"

enum { FIELDS = 5, MAX_CODE_POINTS = 64 };

static int corrected_after_3_2(uint32_t cp) {
  return cp == 0x2F868 || cp == 0x2F874 || cp == 0x2F91F || cp == 0x2F95F ||
         cp == 0x2F9BF;
}

/* Parses "hex hex ..." up to `;` into UTF-8; returns 0 when the field
 * should be skipped or is malformed. */
static int parse_field(const char **p, char *utf8, size_t *len, int *skip) {
  *len = 0;
  for (int count = 0;; count++) {
    while (**p == ' ')
      (*p)++;
    if (**p == ';') {
      (*p)++;
      return count > 0;
    }
    char *end;
    unsigned long cp = strtoul(*p, &end, 16);
    if (end == *p || count == MAX_CODE_POINTS || cp > 0x10FFFF)
      return 0;
    *p = end;
    if (mailproto_unicode32_unassigned((uint32_t)cp) ||
        corrected_after_3_2((uint32_t)cp))
      *skip = 1;
    *len += mailproto_utf8_encode((uint8_t *)utf8 + *len, (uint32_t)cp);
  }
}

int main(void) {
  char line[4096];
  unsigned long checked = 0, skipped = 0, failed = 0, lineno = 0;
  while (fgets(line, sizeof line, stdin)) {
    lineno++;
    if (line[0] == '#' || line[0] == '@' || line[0] == '\n')
      continue;
    char field[FIELDS][MAX_CODE_POINTS * 4];
    size_t len[FIELDS];
    const char *p = line;
    int skip = 0;
    for (int f = 0; f < FIELDS; f++)
      if (!parse_field(&p, field[f], &len[f], &skip)) {
        fprintf(stderr, "line %lu: cannot parse\n", lineno);
        return 1;
      }
    if (skip) {
      skipped++;
      continue;
    }
    for (int f = 0; f < FIELDS; f++) {
      char out[MAX_CODE_POINTS * 4 * 18];
      size_t n;
      if (mailproto_nfkc(field[f], len[f], out, sizeof out, &n) != 0 ||
          n != len[3] || memcmp(out, field[3], n) != 0) {
        if (failed++ < 20)
          fprintf(stderr, "line %lu: NFKC(c%d) differs from c4\n", lineno,
                  f + 1);
      }
    }
    checked++;
  }
  printf("%lu lines checked, %lu skipped, %lu mismatches\n", checked, skipped,
         failed);
  return failed == 0 && checked >= 10000 ? 0 : 1;
}
