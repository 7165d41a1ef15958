/*
 * UTF-8 (RFC 3629) decoding, and the parts of SASLprep (RFC 4013) that
 * need no Unicode database: the mapping of section 2.1 and the prohibited
 * output of section 2.3.
 *
 * Not done: normalisation form KC (2.2) and the bidirectional check
 * (2.4), which need the Unicode character tables a libc-only library
 * would have to carry. A string already in NFKC (every ASCII string is)
 * is prepared exactly; another may compare unequal to the stored form a
 * full SASLprep would have matched, which fails safe (a refused login).
 */
#ifndef MAILPROTO_CORE_UTF8_H
#define MAILPROTO_CORE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* One well-formed UTF-8 sequence at p (no overlong forms, surrogates or
 * values above U+10FFFF): sets *cp and returns its length (1..4), or 0
 * when the bytes at p are not one (len 0 included). */
size_t mailproto_utf8_decode(const uint8_t *p, size_t len, uint32_t *cp);

/* Writes code point `cp` (at most U+10FFFF, not a surrogate) as UTF-8
 * to `out` (room for 4 bytes); returns its length. */
size_t mailproto_utf8_encode(uint8_t *out, uint32_t cp);

/* Prepares `len` bytes of UTF-8 as RFC 4013 2.1 and 2.3 say (see above)
 * into `out`, which has room for `len` bytes (the result is never
 * longer), and sets *out_len. Returns 0, or MAILPROTO_ERR_SYNTAX for
 * input that is not UTF-8 or holds a prohibited character. */
int mailproto_saslprep(const char *in, size_t len, char *out, size_t *out_len);

/* A user name or password as every login path prepares it, and as the
 * shipped stores prepare the names and passwords they are given: UTF-8
 * beyond ASCII through mailproto_saslprep(); ASCII, and bytes that are
 * not UTF-8 (a legacy 8-bit credential), copied unchanged; ASCII control
 * characters refused in all of them (RFC 4013 2.3, C.2.1). `out` has room for
 * `len` bytes and a NUL, which is added. Returns 0, or MAILPROTO_ERR_SYNTAX for
 * a prohibited character or when something non-empty prepares to nothing (RFC
 * 4616 2: "if preparation fails or results in an empty string, verification
 * SHALL fail"). */
int mailproto_credential_prepare(const char *in, size_t len, char *out,
                                 size_t *out_len);

#endif
