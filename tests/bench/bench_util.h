/*
 * Benchmark helpers. Machines here are shared and noisy, so every figure is
 * printed next to a reference measured in the same run (memcpy and memchr
 * over the same bytes) and as a ratio to it; compare ratios, not MB/s,
 * across runs and machines.
 */
#ifndef MAILPROTO_BENCH_UTIL_H
#define MAILPROTO_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic seconds. */
double bench_now(void);

/* Repeats fn(arg) until at least `min_seconds` have passed (at least once)
 * and returns the best-of-rounds seconds per call. */
double bench_time(void (*fn)(void *arg), void *arg, double min_seconds);

/* Reference throughputs over `len` bytes, in MB/s (1e6 bytes). */
typedef struct bench_reference {
  double memcpy_mbps;
  double memchr_mbps;
} bench_reference;
void bench_measure_reference(const uint8_t *data, size_t len,
                             double min_seconds, bench_reference *out);

/* Prints the table header, then rows: name, MB/s, ratio to memcpy and to
 * memchr, and a free-form note. */
void bench_print_header(const char *title, const bench_reference *ref);
void bench_print_row(const char *name, double mbps, const bench_reference *ref,
                     const char *note);

/* Keeps a result alive so the compiler cannot drop the work. */
void bench_sink(const void *p, size_t n);

/* Fills `buf` with deterministic mail-like text: lines of 60..78 printable
 * characters ending in CRLF. */
void bench_fill_mail_text(uint8_t *buf, size_t len, uint32_t seed);

#endif
