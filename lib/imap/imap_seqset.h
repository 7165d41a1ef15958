/*
 * IMAP sequence sets (RFC 3501 9 "sequence-set", RFC 9051 9 with "$" of
 * RFC 5182): a list of ranges kept as written, so memory follows the
 * number of ranges and never their span ("1:4294967295" is one range).
 * "*" (the largest number in use) is stored as MAILPROTO_IMAP_SEQ_STAR;
 * it can never be confused with a real number because numbers in a set
 * are non-zero.
 */
#ifndef MAILPROTO_IMAP_SEQSET_H
#define MAILPROTO_IMAP_SEQSET_H

#include <stddef.h>
#include <stdint.h>

#define MAILPROTO_IMAP_SEQ_STAR 0u

typedef struct mailproto_imap_range {
  uint32_t first; /* as written: first may be above last ("5:2") */
  uint32_t last;  /* equal to first for a single number */
} mailproto_imap_range;

typedef struct mailproto_imap_seqset {
  /* "$": the saved search result (RFC 5182); then count is 0. */
  int saved;
  unsigned count;
  mailproto_imap_range *ranges; /* count entries (parser arena) */
} mailproto_imap_seqset;

/*
 * Parses a sequence set from [s, s + len) exactly (the whole range must be
 * the set). `allow_saved` permits "$". Writes at most `cap` ranges to
 * `out` and sets *count. Returns 0, MAILPROTO_ERR_SYNTAX, or
 * MAILPROTO_ERR_TOO_LONG (more than `cap` ranges). *saved is set for "$".
 * Numbers are 1..4294967295 (RFC 3501 nz-number).
 */
int mailproto_imap_seqset_parse(const char *s, size_t len, int allow_saved,
                                mailproto_imap_range *out, unsigned cap,
                                unsigned *count, int *saved);

/* Counts the ranges a syntactically valid set would have: the number of
 * commas plus one. Cheap; used to size the arena allocation first. */
unsigned mailproto_imap_seqset_count_ranges(const char *s, size_t len);

/* Whether `n` is in the set, with "*" standing for `star` (the highest
 * sequence number or UID in use; RFC 3501 9: "*" also means that value in
 * a range like "5:*" even when 5 > star). A saved ("$") set contains
 * nothing here: resolve it first. */
int mailproto_imap_seqset_contains(const mailproto_imap_seqset *set, uint32_t n,
                                   uint32_t star);

/*
 * Normalises: replaces "*" with `star`, orders each range, sorts the
 * ranges and merges overlapping and adjacent ones into `out` (room for
 * set->count ranges always suffices). Returns the number of ranges
 * written. Runs in O(count log count) without allocating. A saved set
 * gives 0.
 */
unsigned mailproto_imap_seqset_normalize(const mailproto_imap_seqset *set,
                                         uint32_t star,
                                         mailproto_imap_range *out);

/* Writes the set in its wire form ("1:5,7,9:*", or "$") to `out` with a
 * NUL. Returns the length, or MAILPROTO_ERR_BUFFER_FULL. At most 22 bytes
 * per range are needed. */
long mailproto_imap_seqset_format(const mailproto_imap_seqset *set, char *out,
                                  size_t out_size);

#endif
