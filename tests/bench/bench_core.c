/*
 * Core throughput: the line splitter, base64, MD5 and the output queue,
 * each beside memcpy/memchr over the same bytes in the same run; the heap
 * sort (SORT and THREAD use it) beside the C library's qsort over the
 * same elements.
 *   bench_core [--quick]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/line.h"
#include "core/md5.h"
#include "core/outq.h"
#include "core/sort.h"
#include "mailproto/mailproto.h"

typedef struct input {
  const uint8_t *data;
  size_t len;
  size_t chunk; /* feed size, like a socket read */
  uint8_t *scratch;
  size_t scratch_len;
} input;

static void run_lines(void *arg) {
  input *in = arg;
  mailproto_line_reader r;
  mailproto_line_reader_init(&r, NULL, 1000);
  size_t lines = 0;
  for (size_t off = 0; off < in->len;) {
    size_t n = in->len - off < in->chunk ? in->len - off : in->chunk;
    size_t pos = 0;
    while (pos < n) {
      size_t used = 0;
      mailproto_line line;
      int rc =
          mailproto_line_read(&r, in->data + off + pos, n - pos, &used, &line);
      pos += used;
      if (rc == 1)
        lines++;
      else if (rc < 0)
        abort();
    }
    off += n;
  }
  mailproto_line_reader_free(&r);
  bench_sink(&lines, sizeof lines);
}

static void run_b64_encode(void *arg) {
  input *in = arg;
  long n = mailproto_base64_encode(in->data, in->len, (char *)in->scratch,
                                   in->scratch_len);
  if (n < 0)
    abort();
  bench_sink(in->scratch, (size_t)n);
}

typedef struct decode_arg {
  const char *text;
  size_t len;
  uint8_t *out;
  size_t out_len;
} decode_arg;

static void run_b64_decode(void *arg) {
  decode_arg *d = arg;
  long n = mailproto_base64_decode(d->text, d->len, d->out, d->out_len);
  if (n < 0)
    abort();
  bench_sink(d->out, (size_t)n);
}

static void run_md5(void *arg) {
  input *in = arg;
  mailproto_md5 ctx;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  mailproto_md5_init(&ctx);
  mailproto_md5_update(&ctx, in->data, in->len);
  mailproto_md5_final(&ctx, digest);
  bench_sink(digest, sizeof digest);
}

static int accept_all(void *owner, const uint8_t *data, size_t len,
                      size_t *sent) {
  (void)owner;
  bench_sink(data, len);
  *sent = len;
  return 0;
}

/* Many small replies through a corked queue, flushed every 64 KiB: the
 * pattern of a pipelined session. */
static void run_outq(void *arg) {
  input *in = arg;
  mailproto_outq q;
  mailproto_outq_init(&q, NULL, 1u << 20, 1u << 16, accept_all, NULL);
  mailproto_outq_cork(&q);
  for (size_t off = 0; off + 64 <= in->len; off += 64) {
    if (mailproto_outq_write(&q, in->data + off, 64) != 0)
      abort();
    if (mailproto_outq_pending(&q) >= (1u << 16)) {
      mailproto_outq_uncork(&q);
      mailproto_outq_cork(&q);
    }
  }
  mailproto_outq_uncork(&q);
  mailproto_outq_free(&q);
}

/* Elements the size of a SORT record (imap_search.h's imap_sort_rec). */
typedef struct record {
  uint64_t key;
  unsigned char rest[64];
} record;

typedef struct sort_arg {
  record *work;
  const record *orig;
  size_t n;
  int heap; /* 1: mailproto_heap_sort, 0: qsort */
} sort_arg;

static int by_key(const void *a, const void *b) {
  uint64_t x = ((const record *)a)->key, y = ((const record *)b)->key;
  return (x > y) - (x < y);
}

static int by_key_ctx(const void *a, const void *b, const void *ctx) {
  (void)ctx;
  return by_key(a, b);
}

static void run_sort(void *arg) {
  sort_arg *s = arg;
  memcpy(s->work, s->orig, s->n * sizeof *s->work);
  if (s->heap)
    mailproto_heap_sort(s->work, s->n, sizeof *s->work, by_key_ctx, NULL);
  else
    qsort(s->work, s->n, sizeof *s->work, by_key);
  bench_sink(s->work, sizeof *s->work);
}

/* Records per second of both sorts over the same shuffled keys. */
static void sort_table(int quick, double min_s) {
  size_t n = quick ? 10000 : 200000;
  record *orig = calloc(n, sizeof *orig), *work = calloc(n, sizeof *work);
  if (!orig || !work)
    exit(1);
  uint64_t seed = 88172645463325252u;
  for (size_t i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    orig[i].key = seed;
  }
  sort_arg a = {work, orig, n, 0};
  double t_q = bench_time(run_sort, &a, min_s);
  a.heap = 1;
  double t_h = bench_time(run_sort, &a, min_s);
  for (size_t i = 1; i < n; i++)
    if (work[i - 1].key > work[i].key)
      exit(1);
  printf("\nsort: %zu records of %zu bytes, shuffled keys (each run copies "
         "them first)\n",
         n, sizeof(record));
  printf("  %-28s %12.0f records/s\n", "qsort (reference)", (double)n / t_q);
  printf("  %-28s %12.0f records/s  %.2f of qsort\n", "mailproto_heap_sort",
         (double)n / t_h, t_q / t_h);
  free(orig);
  free(work);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  size_t len = quick ? (256u << 10) : (8u << 20);
  double min_s = quick ? 0.01 : 0.5;

  uint8_t *text = malloc(len);
  size_t enc_cap = mailproto_base64_encoded_len(len);
  uint8_t *scratch = malloc(enc_cap);
  uint8_t *decoded = malloc(len);
  if (!text || !scratch || !decoded)
    return 1;
  bench_fill_mail_text(text, len, 42);

  bench_reference ref;
  bench_measure_reference(text, len, min_s, &ref);
  char title[128];
  snprintf(title, sizeof title, "core: %zu bytes of mail-like text%s", len,
           quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);

  input in = {text, len, 65536, scratch, enc_cap};
  double t = bench_time(run_lines, &in, min_s);
  bench_print_row("line splitter, 64 KiB feeds", (double)len / t / 1e6, &ref,
                  "memchr scan, zero copy");
  in.chunk = 1500;
  t = bench_time(run_lines, &in, min_s);
  bench_print_row("line splitter, 1500 B feeds", (double)len / t / 1e6, &ref,
                  "lines straddle feeds");

  t = bench_time(run_b64_encode, &in, min_s);
  bench_print_row("base64 encode", (double)len / t / 1e6, &ref, "MB of input");
  long enc = mailproto_base64_encode(text, len, (char *)scratch, enc_cap);
  if (enc < 0)
    return 1;
  decode_arg d = {(const char *)scratch, (size_t)enc, decoded, len};
  t = bench_time(run_b64_decode, &d, min_s);
  bench_print_row("base64 decode", (double)enc / t / 1e6, &ref,
                  "MB of base64 text");

  t = bench_time(run_md5, &in, min_s);
  bench_print_row("md5", (double)len / t / 1e6, &ref, "");

  t = bench_time(run_outq, &in, min_s);
  bench_print_row("output queue, 64 B replies", (double)len / t / 1e6, &ref,
                  "corked, flushed per 64 KiB");

  sort_table(quick, min_s);

  free(text);
  free(scratch);
  free(decoded);
  return 0;
}
