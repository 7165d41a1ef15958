/*
 * Places test input so that its last byte is the last readable byte before
 * an unreadable page (picohttpparser's trick): a parser that reads even one
 * byte past the end it was given crashes at once, with or without ASan.
 */
#ifndef MAILPROTO_TEST_OVERREAD_H
#define MAILPROTO_TEST_OVERREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct overread_guard {
  uint8_t *region; /* readable pages followed by one PROT_NONE page */
  size_t readable; /* bytes before the guard page */
  size_t page;
} overread_guard;

/* Maps room for inputs of up to `max_len` bytes. Returns 0 or -1. */
int overread_init(overread_guard *g, size_t max_len);
void overread_free(overread_guard *g);

/* Copies `len` bytes (<= max_len) to end right at the guard page and
 * returns where they start. The copy stays until the next place(). */
const uint8_t *overread_place(overread_guard *g, const void *data, size_t len);

#endif
