/*
 * Unicode data, generated: what SASLprep needs, of Unicode 3.2 (RFC 3454
 * pins that version), in saslprep_tables.c (gen_saslprep_tables.py), and
 * what i;unicode-casemap needs (RFC 5051), of the current database, in
 * casemap_tables.c (gen_casemap_tables.py). Every table is sorted by code
 * point for a binary search.
 */
#ifndef MAILPROTO_CORE_UNICODE_TABLES_H
#define MAILPROTO_CORE_UNICODE_TABLES_H

#include <stddef.h>
#include <stdint.h>

typedef struct mailproto_ucd_range {
  uint32_t first, last;
} mailproto_ucd_range;

typedef struct mailproto_ucd_class {
  uint32_t first, last;
  uint8_t combining_class;
} mailproto_ucd_class;

/* Hangul syllables are left out: they decompose algorithmically. */
typedef struct mailproto_ucd_decomposition {
  uint32_t code_point;
  uint16_t offset; /* into mailproto_ucd_decomposition_pool */
  uint8_t length;
} mailproto_ucd_decomposition;

typedef struct mailproto_ucd_pair {
  uint32_t first, second, composite;
} mailproto_ucd_pair;

extern const mailproto_ucd_class mailproto_ucd_combining[];
extern const size_t mailproto_ucd_combining_count;
extern const mailproto_ucd_decomposition mailproto_ucd_decompositions[];
extern const size_t mailproto_ucd_decompositions_count;
extern const uint32_t mailproto_ucd_decomposition_pool[];
extern const mailproto_ucd_pair mailproto_ucd_compositions[];
extern const size_t mailproto_ucd_compositions_count;
extern const mailproto_ucd_range mailproto_ucd_unassigned[];
extern const size_t mailproto_ucd_unassigned_count;
extern const mailproto_ucd_range mailproto_ucd_bidi_r_al[];
extern const size_t mailproto_ucd_bidi_r_al_count;
extern const mailproto_ucd_range mailproto_ucd_bidi_l[];
extern const size_t mailproto_ucd_bidi_l_count;

/* i;unicode-casemap and simple case folding (casemap_tables.c). */
/* A mapping in two stages: for code point c, block c / 128 is 0 in
 * stage1 (no mappings there) or 1 + the stage2 row holding c's delta. */
extern const size_t mailproto_ucd_titlecase_blocks;
extern const uint8_t mailproto_ucd_titlecase_stage1[];
extern const int32_t mailproto_ucd_titlecase_stage2[][128];
extern const size_t mailproto_ucd_casefold_blocks;
extern const uint8_t mailproto_ucd_casefold_stage1[];
extern const int32_t mailproto_ucd_casefold_stage2[][128];
extern const mailproto_ucd_decomposition mailproto_ucd_canonical[];
extern const size_t mailproto_ucd_canonical_count;
extern const uint32_t mailproto_ucd_canonical_pool[];

#endif
