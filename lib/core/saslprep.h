/*
 * SASLprep (RFC 4013), the stringprep profile (RFC 3454) for user names
 * and passwords: mapping (2.1), normalisation form KC over Unicode 3.2
 * (2.2), prohibited output (2.3), the bidirectional check (2.4) and, for
 * stored strings, no unassigned code points (2.5).
 */
#ifndef MAILPROTO_CORE_SASLPREP_H
#define MAILPROTO_CORE_SASLPREP_H

#include <stddef.h>
#include <stdint.h>

/* RFC 3454 7: a query (what a client presents) may hold code points
 * Unicode 3.2 left unassigned; a stored string (what a store keeps and
 * compares against) may not. */
typedef enum mailproto_prep_kind {
  MAILPROTO_PREP_QUERY,
  MAILPROTO_PREP_STORED
} mailproto_prep_kind;

/* The most code points a string may hold between normalisation's steps;
 * a credential that decomposes to more is refused as too long (its
 * normalised form could not fit MAILPROTO_SASL_FIELD_MAX bytes anyway:
 * no Unicode 3.2 character composes from more than four). */
#define MAILPROTO_SASLPREP_MAX_CODE_POINTS 1024

/* Prepares `len` bytes of UTF-8 into `out`, which has room for `out_size`
 * bytes, and sets *out_len; no NUL is added. Normalisation may lengthen
 * a string (U+FDFA gives 18 code points). Returns 0; MAILPROTO_ERR_SYNTAX
 * for input that is not UTF-8, holds a prohibited (or, stored, an
 * unassigned) code point, or fails the bidirectional check; or
 * MAILPROTO_ERR_TOO_LONG when the result does not fit. */
int mailproto_saslprep(const char *in, size_t len, mailproto_prep_kind kind,
                       char *out, size_t out_size, size_t *out_len);

/* Normalisation form KC over Unicode 3.2 alone (UAX #15; no SASLprep
 * mapping or checks), UTF-8 in and out, as mailproto_saslprep() says. */
int mailproto_nfkc(const char *in, size_t len, char *out, size_t out_size,
                   size_t *out_len);

/* Whether Unicode 3.2 left `cp` unassigned (RFC 3454 A.1). */
int mailproto_unicode32_unassigned(uint32_t cp);

/* A user name or password as every login path prepares it, and as the
 * shipped stores prepare the names and passwords they are given: UTF-8
 * beyond ASCII through mailproto_saslprep(); ASCII, and bytes that are
 * not UTF-8 (a legacy 8-bit credential), copied unchanged; ASCII control
 * characters refused in all of them (RFC 4013 2.3, C.2.1). `out` has room
 * for `out_size` bytes, the NUL that is added included. Returns 0, or
 * what mailproto_saslprep() returns, or MAILPROTO_ERR_SYNTAX when
 * something non-empty prepares to nothing (RFC 4616 2: "if preparation
 * fails or results in an empty string, verification SHALL fail"). */
int mailproto_credential_prepare(const char *in, size_t len,
                                 mailproto_prep_kind kind, char *out,
                                 size_t out_size, size_t *out_len);

#endif
