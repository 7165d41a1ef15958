#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_time(void (*fn)(void *arg), void *arg, double min_seconds) {
  /* Best of several rounds: the minimum is the least disturbed by other
   * load on a shared machine. */
  double best = 0;
  double start = bench_now();
  int rounds = 0;
  do {
    double t0 = bench_now();
    fn(arg);
    double dt = bench_now() - t0;
    if (rounds == 0 || dt < best)
      best = dt;
    rounds++;
  } while (bench_now() - start < min_seconds || rounds < 3);
  return best > 0 ? best : 1e-9;
}

static volatile uint8_t sink_byte;

void bench_sink(const void *p, size_t n) {
  if (p && n)
    sink_byte = (uint8_t)(sink_byte ^ ((const uint8_t *)p)[n - 1]);
}

typedef struct ref_arg {
  const uint8_t *data;
  uint8_t *copy;
  size_t len;
} ref_arg;

static void run_memcpy(void *arg) {
  ref_arg *r = arg;
  memcpy(r->copy, r->data, r->len);
  bench_sink(r->copy, r->len);
}

/* memchr for a byte that is absent scans everything: the speed of light for
 * any parser that looks at every byte. */
static void run_memchr(void *arg) {
  ref_arg *r = arg;
  const void *hit = memchr(r->data, 0, r->len);
  bench_sink(&hit, sizeof hit);
}

void bench_measure_reference(const uint8_t *data, size_t len,
                             double min_seconds, bench_reference *out) {
  ref_arg r = {data, malloc(len), len};
  if (!r.copy) {
    out->memcpy_mbps = out->memchr_mbps = 0;
    return;
  }
  out->memcpy_mbps = (double)len / bench_time(run_memcpy, &r, min_seconds) / 1e6;
  out->memchr_mbps = (double)len / bench_time(run_memchr, &r, min_seconds) / 1e6;
  free(r.copy);
}

void bench_print_header(const char *title, const bench_reference *ref) {
  printf("\n%s\n", title);
  printf("  reference in this run: memcpy %.0f MB/s, memchr %.0f MB/s\n",
         ref->memcpy_mbps, ref->memchr_mbps);
  printf("  %-34s %10s %9s %9s  %s\n", "what", "MB/s", "/memcpy", "/memchr",
         "note");
}

void bench_print_row(const char *name, double mbps, const bench_reference *ref,
                     const char *note) {
  printf("  %-34s %10.1f %9.3f %9.3f  %s\n", name, mbps,
         ref->memcpy_mbps > 0 ? mbps / ref->memcpy_mbps : 0,
         ref->memchr_mbps > 0 ? mbps / ref->memchr_mbps : 0, note ? note : "");
}

void bench_fill_mail_text(uint8_t *buf, size_t len, uint32_t seed) {
  uint32_t x = seed ? seed : 1;
  size_t i = 0;
  while (i < len) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    size_t line = 60 + x % 19;
    for (size_t k = 0; k < line && i < len; k++, i++) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      buf[i] = (uint8_t)(' ' + x % 95);
    }
    if (i < len)
      buf[i++] = '\r';
    if (i < len)
      buf[i++] = '\n';
  }
}
