/*
 * UTF-8 (RFC 3629): decoding with every ill-formed sequence refused, and
 * encoding. SASLprep, built on it, is in saslprep.h.
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

#endif
