/*
 * i;unicode-casemap (RFC 5051 2), the collation of IMAP SORT and THREAD
 * (RFC 5256 7): each character becomes its titlecase, then its canonical
 * decomposition, until nothing changes; the results compare as octets.
 * So "échange" equals "ÉCHANGE" and sorts among the E's.
 */
#ifndef MAILPROTO_CORE_CASEMAP_H
#define MAILPROTO_CORE_CASEMAP_H

#include <stddef.h>
#include <stdint.h>

/* Room that always suffices for one character's result. */
#define MAILPROTO_CASEMAP_MAX 32

/* Writes the casemap form of code point `cp` to `out` (room for
 * MAILPROTO_CASEMAP_MAX code points); returns how many. */
size_t mailproto_casemap(uint32_t cp, uint32_t *out);

/* The simple case folding of `cp` (CaseFolding.txt, one character for
 * one: "A" and "a" fold alike, "ß" stays): what SEARCH compares. */
uint32_t mailproto_casefold(uint32_t cp);

#endif
