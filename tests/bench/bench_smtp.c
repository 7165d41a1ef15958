/*
 * SMTP sessions in process (a memory store, a send callback that takes
 * everything, no sockets):
 *  - DATA ingest of 10 KB and 10 MB messages fed in 64 KiB chunks, beside
 *    memchr and memcpy over the same wire bytes in the same run; with the
 *    body callback unset and set, and with a store whose write discards
 *    the bytes (the session's own cost without the memory store's copy);
 *  - pipelined envelopes (MAIL, RCPT, DATA, a small body, RSET in one
 *    stream) per second;
 *  - bytes an idle session holds after the greeting and after EHLO,
 *    beside the buffers its configuration allows.
 *   bench_smtp [--quick]      (quick: small sizes, figures not meaningful)
 * Every message must be delivered, with the unstuffed text and a
 * Received: header as its size (the body callback sees exactly that), and
 * no reply may be a 4xx or 5xx: a benchmark of a failing path is worse
 * than none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mailproto/memstore.h"
#include "mailproto/smtp.h"
#include "support/alloc_fail.h"

#define CHUNK ((size_t)64 << 10)

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_smtp: %s: %s\n", what,
          rc ? mailproto_strerror(rc) : "failed");
  exit(1);
}

/* ------------------------------------------------------------------ */
/* Messages                                                            */
/* ------------------------------------------------------------------ */

static uint32_t next_rand(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

/* A message as a client sends it after DATA: a header block, a blank line,
 * text lines of 40..78 characters, every 16th line starting with a dot
 * (so sent as ".."), each line ending in CRLF, and the terminating
 * ".\r\n". Returns its length; *stored gets the octets the session
 * should store (each line's transparency dot dropped, no terminator). */
static size_t make_message(uint8_t *out, size_t target, uint32_t seed,
                           size_t *stored) {
  static const char head[] = "Return-Path: <sender@example.org>\r\n"
                             "From: Sender <sender@example.org>\r\n"
                             "To: Bench <bench@example.net>\r\n"
                             "Subject: Quarterly figures, as promised\r\n"
                             "Date: Tue, 14 Jan 2025 09:30:00 +0100\r\n"
                             "Message-ID: <20250114093000.4711@example.org>\r\n"
                             "MIME-Version: 1.0\r\n"
                             "Content-Type: text/plain; charset=us-ascii\r\n"
                             "\r\n";
  uint32_t x = seed ? seed : 1;
  size_t len = sizeof head - 1, dots = 0;
  memcpy(out, head, len);
  for (unsigned line = 0; len + 80 + 3 <= target; line++) {
    size_t n = 40 + next_rand(&x) % 39;
    size_t k = 0;
    if (line % 16 == 5) {
      out[len + k++] = '.';
      out[len + k++] = '.';
      dots++;
    }
    for (; k < n; k++) {
      /* Words of letters between spaces, as text mostly is. */
      uint32_t r = next_rand(&x);
      out[len + k] = r % 7 == 0 ? ' ' : (uint8_t)('a' + r % 26);
    }
    len += n;
    out[len++] = '\r';
    out[len++] = '\n';
  }
  *stored = len - dots;
  memcpy(out + len, ".\r\n", 3);
  return len + 3;
}

/* ------------------------------------------------------------------ */
/* A store whose write keeps nothing                                   */
/* ------------------------------------------------------------------ */

static mailproto_store_ops discard_ops;

static int discard_write(void *ctx, mailproto_op *op, void *writer,
                         const uint8_t *data, size_t len) {
  (void)ctx;
  (void)op;
  (void)writer;
  bench_sink(data, len);
  return 0;
}

/* ------------------------------------------------------------------ */
/* One session                                                         */
/* ------------------------------------------------------------------ */

typedef struct env {
  mailproto_memstore *ms;
  mailproto_store store;
  mailproto_smtp *s;
  unsigned long delivered;
  uint64_t last_size;
  uint64_t body_seen;
  int at_line_start;
  unsigned long failures; /* 4xx and 5xx replies */
} env;

static ptrdiff_t on_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                         void *user_data) {
  env *e = user_data;
  (void)s;
  for (size_t i = 0; i < len; i++) {
    if (e->at_line_start && (data[i] == '4' || data[i] == '5'))
      e->failures++;
    e->at_line_start = data[i] == '\n';
  }
  return (ptrdiff_t)len;
}

static void on_delivered(mailproto_smtp *s, const mailproto_smtp_message *m,
                         const int *results, void *user_data) {
  env *e = user_data;
  (void)s;
  if (results[0] == 0)
    e->delivered++;
  e->last_size = m->size;
}

/* A body observer that touches what it is given, as a filter would. */
static void on_body(mailproto_smtp *s, const uint8_t *data, size_t len,
                    void *user_data) {
  env *e = user_data;
  (void)s;
  e->body_seen += len;
  bench_sink(data, len);
}

typedef struct variant {
  const char *name;
  int discard; /* the store's write keeps nothing */
  int body_cb; /* the body callback is set */
} variant;

static void feed(env *e, const uint8_t *p, size_t len, size_t chunk) {
  size_t off = 0;
  int idle = 0;
  while (off < len) {
    size_t n = len - off < chunk ? len - off : chunk;
    ptrdiff_t used = mailproto_smtp_feed(e->s, p + off, n);
    if (used < 0)
      die("feed", (int)used);
    off += (size_t)used;
    if (used > 0) {
      idle = 0;
      continue;
    }
    /* The session paused for its output (sent at the end of the feed, as
     * this transport takes everything) or still has some queued. */
    if (mailproto_smtp_want_write(e->s)) {
      int rc = mailproto_smtp_writable(e->s);
      if (rc < 0)
        die("writable", rc);
    } else if (!mailproto_smtp_want_read(e->s) || ++idle > 2) {
      die("feed stalled", 0);
    }
  }
}

static void env_open(env *e, const variant *v,
                     const mailproto_allocator *alloc) {
  memset(e, 0, sizeof *e);
  e->at_line_start = 1;
  int rc = mailproto_memstore_new(NULL, &e->ms);
  if (rc == 0)
    rc = mailproto_memstore_add_user(e->ms, "bench", "pw");
  if (rc != 0)
    die("memstore", rc);
  mailproto_memstore_store(e->ms, &e->store);
  if (v && v->discard) {
    discard_ops = *e->store.ops;
    discard_ops.write = discard_write;
    e->store.ops = &discard_ops;
  }
  mailproto_smtp_config cfg;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  cfg.allocator = alloc;
  cfg.hostname = "mx.example.net";
  mailproto_smtp_callbacks cb;
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  cb.delivered = on_delivered;
  if (v && v->body_cb)
    cb.body = on_body;
  rc = mailproto_smtp_new(&cfg, &cb, &e->store, e, &e->s);
  if (rc == 0)
    rc = mailproto_smtp_set_client(e->s, "192.0.2.1");
  if (rc != 0)
    die("session", rc);
}

/* The greeting, then EHLO. */
static void env_start(env *e) {
  static const char cmd[] = "EHLO client.example.org\r\n";
  int rc = mailproto_smtp_start(e->s);
  if (rc != 0)
    die("start", rc);
  feed(e, (const uint8_t *)cmd, sizeof cmd - 1, CHUNK);
}

static void env_close(env *e) {
  if (e->failures)
    die("a reply was 4xx or 5xx", 0);
  mailproto_smtp_free(e->s);
  mailproto_memstore_free(e->ms);
}

/* ------------------------------------------------------------------ */
/* DATA ingest                                                         */
/* ------------------------------------------------------------------ */

typedef struct message {
  const uint8_t *wire;
  size_t len;
  size_t stored; /* octets the client's text stands for */
} message;

/* The best MB/s of rounds of `per_round` messages, timing only the body
 * (first byte after 354 to the 250 reply): the envelope is measured by
 * the pipelining figure. */
static double ingest(const message *m, const variant *v, unsigned per_round,
                     double min_s) {
  char envelope[160];
  int n = snprintf(envelope, sizeof envelope,
                   "MAIL FROM:<sender@example.org> SIZE=%zu\r\n"
                   "RCPT TO:<bench@example.net>\r\n"
                   "DATA\r\n",
                   m->len);
  double best = 0, start = bench_now();
  int rounds = 0;
  do {
    env e;
    env_open(&e, v, NULL);
    env_start(&e);
    double spent = 0;
    for (unsigned i = 0; i < per_round; i++) {
      e.body_seen = 0; /* the Received: header is written at DATA */
      feed(&e, (const uint8_t *)envelope, (size_t)n, CHUNK);
      unsigned long before = e.delivered;
      double t0 = bench_now();
      feed(&e, m->wire, m->len, CHUNK);
      spent += bench_now() - t0;
      if (e.delivered != before + 1)
        die("message not delivered", 0);
      /* The stored size is the unstuffed text plus our Received: header
       * (its length varies with the message number in its id). */
      if (e.last_size <= m->stored || e.last_size - m->stored > 1536)
        die("stored size is wrong", 0);
      if (v->body_cb && e.body_seen != e.last_size)
        die("body callback saw other bytes", 0);
    }
    env_close(&e);
    double rate = (double)m->len * per_round / spent / 1e6;
    best = rate > best ? rate : best;
    rounds++;
  } while (bench_now() - start < min_s || rounds < 3);
  return best;
}

/* memcpy and memchr over the message, as bench_measure_reference() does,
 * but repeated within each timed call so that a 10 KB message is not
 * timed at the clock's resolution. */
typedef struct ref_arg {
  const uint8_t *p;
  uint8_t *copy;
  size_t len;
  unsigned reps;
} ref_arg;

static void run_ref_memcpy(void *arg) {
  ref_arg *a = arg;
  for (unsigned i = 0; i < a->reps; i++) {
    memcpy(a->copy, a->p, a->len);
    bench_sink(a->copy, a->len);
  }
}

static void run_ref_memchr(void *arg) {
  ref_arg *a = arg;
  for (unsigned i = 0; i < a->reps; i++) {
    const void *hit = memchr(a->p, 0, a->len); /* absent: scans it all */
    bench_sink(&hit, sizeof hit);
  }
}

static void reference(const uint8_t *p, size_t len, double min_s,
                      bench_reference *out) {
  ref_arg a = {p, malloc(len), len, (unsigned)(((size_t)1 << 20) / len + 1)};
  if (!a.copy)
    die("malloc", MAILPROTO_ERR_NOMEM);
  double bytes = (double)len * a.reps;
  out->memcpy_mbps = bytes / bench_time(run_ref_memcpy, &a, min_s) / 1e6;
  out->memchr_mbps = bytes / bench_time(run_ref_memchr, &a, min_s) / 1e6;
  free(a.copy);
}

/* What any line-by-line scanner pays at least: one memchr per line. */
static void run_memchr_lines(void *arg) {
  ref_arg *a = arg;
  size_t lines = 0;
  for (unsigned i = 0; i < a->reps; i++)
    for (const uint8_t *p = a->p, *end = a->p + a->len; p < end; lines++) {
      const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
      p = lf ? lf + 1 : end;
    }
  bench_sink(&lines, sizeof lines);
}

static void data_table(const char *label, const message *m, unsigned per_round,
                       double min_s, int quick) {
  static const variant variants[] = {
      {"DATA, memstore", 0, 0},
      {"DATA, memstore, body callback", 0, 1},
      {"DATA, discarding store", 1, 0},
      {"DATA, discarding store, body cb", 1, 1},
  };
  bench_reference ref;
  reference(m->wire, m->len, min_s, &ref);
  char title[200];
  snprintf(title, sizeof title,
           "SMTP DATA ingest: %s messages (%zu bytes on the wire, 64 KiB "
           "feeds)%s",
           label, m->len, quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);
  ref_arg la = {m->wire, NULL, m->len,
                (unsigned)(((size_t)1 << 20) / m->len + 1)};
  double t = bench_time(run_memchr_lines, &la, min_s);
  double lines_mbps = (double)m->len * la.reps / t / 1e6;
  bench_print_row("(reference) memchr per line", lines_mbps, &ref,
                  "a floor for any line scanner");
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    double mbps = ingest(m, &variants[i], per_round, min_s);
    char note[96];
    if (i == 0)
      snprintf(note, sizeof note, "goal (>= 0.5 memchr) %s",
               mbps >= ref.memchr_mbps / 2 ? "met" : "NOT met");
    else
      snprintf(note, sizeof note, "%.2f of memchr per line", mbps / lines_mbps);
    bench_print_row(variants[i].name, mbps, &ref, note);
  }
}

/* ------------------------------------------------------------------ */
/* Pipelined envelopes                                                 */
/* ------------------------------------------------------------------ */

static const char pipeline_body[] = "From: sender@example.org\r\n"
                                    "To: bench@example.net\r\n"
                                    "Subject: ping\r\n"
                                    "\r\n"
                                    "A short notification body.\r\n";

static uint8_t *make_pipeline(unsigned count, size_t *len) {
  static const char head[] = "MAIL FROM:<sender@example.org>\r\n"
                             "RCPT TO:<bench@example.net>\r\n"
                             "DATA\r\n";
  static const char tail[] = ".\r\nRSET\r\n";
  size_t h = sizeof head - 1, b = sizeof pipeline_body - 1, t = sizeof tail - 1;
  size_t n = h + b + t;
  uint8_t *p = malloc(n * count);
  if (!p)
    die("malloc", MAILPROTO_ERR_NOMEM);
  for (unsigned i = 0; i < count; i++) {
    memcpy(p + n * i, head, h);
    memcpy(p + n * i + h, pipeline_body, b);
    memcpy(p + n * i + h + b, tail, t);
  }
  *len = n * count;
  return p;
}

static double pipelined(const uint8_t *script, size_t len, unsigned count,
                        const variant *v, double min_s) {
  double best = 0, start = bench_now();
  int rounds = 0;
  do {
    env e;
    env_open(&e, v, NULL);
    env_start(&e);
    double t0 = bench_now();
    feed(&e, script, len, CHUNK);
    double spent = bench_now() - t0;
    if (e.delivered != count)
      die("pipelined messages not delivered", 0);
    env_close(&e);
    double rate = count / spent;
    best = rate > best ? rate : best;
    rounds++;
  } while (bench_now() - start < min_s || rounds < 3);
  return best;
}

static void pipeline_table(unsigned count, double min_s, int quick) {
  static const variant variants[] = {
      {"envelopes, memstore", 0, 0},
      {"envelopes, discarding store", 1, 0},
  };
  size_t len;
  uint8_t *script = make_pipeline(count, &len);
  bench_reference ref;
  reference(script, len, min_s, &ref);
  char title[200];
  snprintf(title, sizeof title,
           "SMTP pipelined envelopes: %u x (MAIL, RCPT, DATA, %zu-byte body, "
           "RSET) in one stream%s",
           count, sizeof pipeline_body - 1,
           quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);
  for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
    double per_s = pipelined(script, len, count, &variants[i], min_s);
    char note[64];
    snprintf(note, sizeof note, "%.0f envelopes/s", per_s);
    bench_print_row(variants[i].name, per_s * (double)len / count / 1e6, &ref,
                    note);
  }
  free(script);
}

/* ------------------------------------------------------------------ */
/* Idle sessions                                                       */
/* ------------------------------------------------------------------ */

static void idle_table(void) {
  static const char cmd[] = "EHLO client.example.org\r\n";
  alloc_fail af;
  alloc_fail_init(&af, 0);
  env e;
  env_open(&e, NULL, &af.allocator);
  size_t at[3];
  long blocks[3];
  at[0] = af.live_bytes;
  blocks[0] = af.live;
  if (mailproto_smtp_start(e.s) != 0)
    die("start", 0);
  at[1] = af.live_bytes;
  blocks[1] = af.live;
  feed(&e, (const uint8_t *)cmd, sizeof cmd - 1, CHUNK);
  at[2] = af.live_bytes;
  blocks[2] = af.live;
  env_close(&e);
  if (af.live != 0)
    die("session leaked", 0);

  mailproto_smtp_config cfg;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  size_t buffers = cfg.max_line + cfg.output_watermark;
  static const char *const when[3] = {"created (no buffer yet)",
                                      "after the greeting", "after EHLO"};
  printf("\nSMTP idle session (default config; the session's allocator only, "
         "not the store's)\n");
  printf("  configured buffers: max_line %zu + output_watermark %zu = %zu "
         "bytes\n",
         cfg.max_line, cfg.output_watermark, buffers);
  printf("  %-34s %10s %9s\n", "when", "bytes", "blocks");
  size_t worst = 0;
  for (int i = 0; i < 3; i++) {
    printf("  %-34s %10zu %9ld\n", when[i], at[i], blocks[i]);
    worst = at[i] > worst ? at[i] : worst;
  }
  /* The buffers are allocated as they fill: what an idle session holds
   * beyond its fixed part is the little its replies needed. */
  printf("  goal (at most buffers + 1024 = %zu bytes): %s; fixed part "
         "%zu bytes, idle at most %zu\n",
         buffers + 1024, worst <= buffers + 1024 ? "met" : "NOT met", at[0],
         worst);
  printf("  (bytes asked of the allocator; malloc adds its own header to "
         "each block)\n");
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.01 : 0.5;
  size_t small = 10000, large = quick ? (256u << 10) : 10000000;

  uint8_t *buf = malloc(large + 4096);
  uint8_t *buf_small = malloc(small + 4096);
  if (!buf || !buf_small)
    die("malloc", MAILPROTO_ERR_NOMEM);
  message m;
  m.wire = buf_small;
  m.len = make_message(buf_small, small, 11, &m.stored);
  data_table("10 KB", &m, quick ? 20 : 500, min_s, quick);
  m.wire = buf;
  m.len = make_message(buf, large, 12, &m.stored);
  data_table(quick ? "256 KB" : "10 MB", &m, 1, min_s, quick);
  free(buf);
  free(buf_small);

  pipeline_table(quick ? 50 : 2000, min_s, quick);
  idle_table();
  return 0;
}
