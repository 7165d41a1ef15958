/*
 * POP3 sessions in process (a memory store, a send callback that takes
 * everything, no sockets):
 *  - RETR output of 10 KB and 10 MB messages stored with CRLF line ends
 *    and lines starting with "." (byte-stuffed on the way out), and of the
 *    same text stored with bare LF (sent as CRLF), beside memchr and memcpy
 *    over the stored bytes in the same run;
 *  - bytes an idle session holds after the greeting and after login,
 *    beside the buffers its configuration allows.
 *   bench_pop3 [--quick]      (quick: small sizes, figures not meaningful)
 * Every response is checked: a +OK first line, then as many octets as the
 * stuffed CRLF form of the message has, and the terminating "." line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/op.h"
#include "mailproto/memstore.h"
#include "mailproto/pop3.h"
#include "store/store_call.h"
#include "support/alloc_fail.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_pop3: %s: %s\n", what,
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

typedef struct message {
  uint8_t *data; /* as stored */
  size_t len;
  size_t wire; /* octets RETR sends between its +OK line and "." CRLF */
} message;

/* Mail text of about `target` bytes as a store holds it: a header block, a
 * blank line, lines of 40..78 characters, every 16th starting with "."
 * (POP3 stuffs those), each ending in CRLF, or in LF when `bare_lf`. */
static void make_message(message *m, size_t target, uint32_t seed,
                         int bare_lf) {
  static const char *const head[] = {
      "Return-Path: <sender@example.org>",
      "From: Sender <sender@example.org>",
      "To: Bench <bench@example.net>",
      "Subject: Quarterly figures, as promised",
      "Date: Tue, 14 Jan 2025 09:30:00 +0100",
      "Message-ID: <20250114093000.4711@example.org>",
      "",
  };
  m->data = malloc(target + 256);
  if (!m->data)
    die("malloc", MAILPROTO_ERR_NOMEM);
  uint32_t x = seed ? seed : 1;
  size_t len = 0, lines = 0, dots = 0;
  for (size_t i = 0; i < sizeof head / sizeof head[0]; i++, lines++) {
    size_t n = strlen(head[i]);
    memcpy(m->data + len, head[i], n);
    len += n;
    if (!bare_lf)
      m->data[len++] = '\r';
    m->data[len++] = '\n';
  }
  for (unsigned line = 0; len + 80 <= target; line++, lines++) {
    size_t n = 40 + next_rand(&x) % 39, k = 0;
    if (line % 16 == 5) {
      m->data[len + k++] = '.';
      dots++;
    }
    for (; k < n; k++) {
      uint32_t r = next_rand(&x);
      m->data[len + k] = r % 7 == 0 ? ' ' : (uint8_t)('a' + r % 26);
    }
    len += n;
    if (!bare_lf)
      m->data[len++] = '\r';
    m->data[len++] = '\n';
  }
  m->len = len;
  m->wire = len + dots + (bare_lf ? lines : 0);
}

static const mailproto_op_sink quiet = {0};

static void add_message(const mailproto_store *st, void *account,
                        const uint8_t *data, size_t len) {
  mailproto_op op;
  void *writer = NULL;
  uint32_t uv, uid;
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.size_hint = len;
  mailproto_op_init(&op, &quiet, NULL);
  int rc = mailproto_store_call_append_begin(st, &op, 0, account, "INBOX",
                                             &info, &writer);
  if (rc == 0)
    rc = mailproto_store_call_write(st, &op, 0, writer, data, len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(st, &op, 0, writer, &uv, &uid);
  if (rc != 0)
    die("append", rc);
}

static void fill_user(mailproto_memstore *ms, const char *user,
                      const message *msgs, size_t count) {
  mailproto_store st;
  mailproto_op op;
  void *account = NULL;
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  int rc = mailproto_store_call_lookup_recipient(&st, &op, 0, user, &account);
  if (rc != 0)
    die("lookup", rc);
  for (size_t i = 0; i < count; i++)
    add_message(&st, account, msgs[i].data, msgs[i].len);
  mailproto_store_call_release_account(&st, account);
}

/* ------------------------------------------------------------------ */
/* One session                                                         */
/* ------------------------------------------------------------------ */

typedef struct env {
  mailproto_pop3 *s;
  /* The response being received. */
  size_t total;      /* octets since reset */
  size_t first_line; /* length of its first line, 0 until it ended */
  int ok;            /* it started with "+OK" */
  uint8_t tail[5];   /* its last octets */
} env;

static void response_reset(env *e) {
  e->total = e->first_line = 0;
  e->ok = 0;
  memset(e->tail, 0, sizeof e->tail);
}

static ptrdiff_t on_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                         void *user_data) {
  env *e = user_data;
  (void)s;
  if (e->total == 0 && len >= 3 && memcmp(data, "+OK", 3) == 0)
    e->ok = 1;
  if (e->first_line == 0) {
    const uint8_t *lf = memchr(data, '\n', len);
    if (lf)
      e->first_line = e->total + (size_t)(lf - data) + 1;
  }
  e->total += len;
  /* The last five octets, across sends of any size. */
  size_t keep = len < 5 ? len : 5;
  memmove(e->tail, e->tail + keep, 5 - keep);
  memcpy(e->tail + 5 - keep, data + len - keep, keep);
  return (ptrdiff_t)len;
}

/* Feeds a command and drains its whole response, as a transport that
 * always has room would. */
static void command(env *e, const char *cmd) {
  response_reset(e);
  size_t len = strlen(cmd), off = 0;
  while (off < len) {
    ptrdiff_t used =
        mailproto_pop3_feed(e->s, (const uint8_t *)cmd + off, len - off);
    if (used < 0)
      die("feed", (int)used);
    off += (size_t)used;
    if (used == 0 && !mailproto_pop3_want_write(e->s))
      die("feed stalled", 0);
    while (mailproto_pop3_want_write(e->s)) {
      int rc = mailproto_pop3_writable(e->s);
      if (rc < 0)
        die("writable", rc);
    }
  }
}

static void session_open(env *e, mailproto_memstore *ms, size_t watermark,
                         const mailproto_allocator *alloc) {
  memset(e, 0, sizeof *e);
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  cfg.allocator = alloc;
  cfg.hostname = "pop.example.net";
  cfg.allow_insecure_auth = 1;
  if (watermark)
    cfg.output_watermark = watermark;
  mailproto_pop3_callbacks cb;
  mailproto_pop3_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  int rc = mailproto_pop3_new(&cfg, &cb, &st, e, &e->s);
  if (rc == 0)
    rc = mailproto_pop3_start(e->s);
  if (rc != 0)
    die("session", rc);
}

static void login(env *e, const char *user) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "USER %s\r\n", user);
  command(e, cmd);
  command(e, "PASS pw\r\n");
  if (!e->ok || !mailproto_pop3_user(e->s))
    die("login", 0);
}

/* ------------------------------------------------------------------ */
/* RETR                                                                */
/* ------------------------------------------------------------------ */

typedef struct retr_arg {
  env *e;
  char cmd[32];
  const message *m;
  unsigned reps;
} retr_arg;

static void run_retr(void *arg) {
  retr_arg *a = arg;
  for (unsigned i = 0; i < a->reps; i++) {
    command(a->e, a->cmd);
    if (!a->e->ok || a->e->total - a->e->first_line != a->m->wire + 3 ||
        memcmp(a->e->tail, "\r\n.\r\n", 5) != 0)
      die("RETR response is not the message", 0);
  }
}

/* memcpy and memchr over the message, repeated within each timed call so
 * that a 10 KB message is not timed at the clock's resolution. */
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

/* What any line-by-line writer pays at least: one memchr per line. */
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

static unsigned reps_for(size_t len) {
  return (unsigned)(((size_t)1 << 20) / len + 1);
}

/* Times RETR of message `number` of user "bench" with the default output
 * watermark and a wider one (one session each: the maildrop lock admits
 * one at a time). */
static double retr_rate(mailproto_memstore *ms, size_t watermark,
                        unsigned number, const message *m, double min_s) {
  env e;
  session_open(&e, ms, watermark, NULL);
  login(&e, "bench");
  retr_arg a = {&e, "", m, reps_for(m->len)};
  snprintf(a.cmd, sizeof a.cmd, "RETR %u\r\n", number);
  double t = bench_time(run_retr, &a, min_s);
  mailproto_pop3_free(e.s);
  return (double)m->len * a.reps / t / 1e6;
}

static void retr_table(const char *label, mailproto_memstore *ms,
                       unsigned number, const message *m, double min_s,
                       int quick) {
  ref_arg ra = {m->data, malloc(m->len), m->len, reps_for(m->len)};
  if (!ra.copy)
    die("malloc", MAILPROTO_ERR_NOMEM);
  double bytes = (double)m->len * ra.reps;
  bench_reference ref;
  ref.memcpy_mbps = bytes / bench_time(run_ref_memcpy, &ra, min_s) / 1e6;
  ref.memchr_mbps = bytes / bench_time(run_ref_memchr, &ra, min_s) / 1e6;
  double lines_mbps = bytes / bench_time(run_memchr_lines, &ra, min_s) / 1e6;
  free(ra.copy);

  char title[200];
  snprintf(title, sizeof title,
           "POP3 RETR: %s (%zu bytes stored, %zu sent; MB/s count the "
           "stored bytes)%s",
           label, m->len, m->wire,
           quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);
  bench_print_row("(reference) memchr per line", lines_mbps, &ref,
                  "a floor for any line scanner");
  double narrow = retr_rate(ms, 0, number, m, min_s);
  double wide = retr_rate(ms, (size_t)64 << 10, number, m, min_s);
  char note[64];
  snprintf(note, sizeof note, "%.2f of memchr per line", narrow / lines_mbps);
  bench_print_row("RETR, output_watermark 16 KiB", narrow, &ref, note);
  snprintf(note, sizeof note, "%.2f of memchr per line", wide / lines_mbps);
  bench_print_row("RETR, output_watermark 64 KiB", wide, &ref, note);
}

/* ------------------------------------------------------------------ */
/* Idle sessions                                                       */
/* ------------------------------------------------------------------ */

static void idle_table(mailproto_memstore *ms, size_t many) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  env e;
  session_open(&e, ms, 0, &af.allocator);
  size_t greeted = af.live_bytes;
  long greeted_blocks = af.live;
  login(&e, "idle");
  size_t empty = af.live_bytes;
  long empty_blocks = af.live;
  mailproto_pop3_free(e.s);
  session_open(&e, ms, 0, &af.allocator);
  login(&e, "many");
  size_t full = af.live_bytes;
  long full_blocks = af.live;
  mailproto_pop3_free(e.s);
  if (af.live != 0)
    die("session leaked", 0);

  mailproto_pop3_config cfg;
  mailproto_pop3_config_init(&cfg, sizeof cfg);
  size_t buffers = cfg.max_line + cfg.output_watermark;
  char many_label[64];
  snprintf(many_label, sizeof many_label, "after login, %zu messages", many);
  printf("\nPOP3 idle session (default config; the session's allocator only, "
         "not the store's)\n");
  printf("  configured buffers: max_line %zu + output_watermark %zu = %zu "
         "bytes\n",
         cfg.max_line, cfg.output_watermark, buffers);
  printf("  %-34s %10s %9s\n", "when", "bytes", "blocks");
  printf("  %-34s %10zu %9ld\n", "after the greeting", greeted, greeted_blocks);
  printf("  %-34s %10zu %9ld\n", "after login, empty maildrop", empty,
         empty_blocks);
  printf("  %-34s %10zu %9ld  (%.1f bytes per message)\n", many_label, full,
         full_blocks, (double)(full - empty) / (double)many);
  size_t worst = greeted > empty ? greeted : empty;
  printf("  goal (at most buffers + 1024 = %zu bytes): %s; the buffers are "
         "allocated as they fill, so an idle session holds only %zu\n",
         buffers + 1024, worst <= buffers + 1024 ? "met" : "NOT met", worst);
  printf("  (bytes asked of the allocator; malloc adds its own header to "
         "each block)\n");
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.01 : 0.5;
  size_t small = 10000, large = quick ? (256u << 10) : 10000000;
  size_t many = quick ? 100 : 1000;

  /* The same texts with CRLF and with bare LF line ends. */
  message msgs[4];
  make_message(&msgs[0], small, 21, 0);
  make_message(&msgs[1], small, 21, 1);
  make_message(&msgs[2], large, 22, 0);
  make_message(&msgs[3], large, 22, 1);
  message tiny;
  make_message(&tiny, 200, 23, 0);

  mailproto_memstore *ms;
  int rc = mailproto_memstore_new(NULL, &ms);
  if (rc == 0)
    rc = mailproto_memstore_add_user(ms, "bench", "pw");
  if (rc == 0)
    rc = mailproto_memstore_add_user(ms, "idle", "pw");
  if (rc == 0)
    rc = mailproto_memstore_add_user(ms, "many", "pw");
  if (rc != 0)
    die("memstore", rc);
  fill_user(ms, "bench", msgs, 4);
  for (size_t i = 0; i < many; i++)
    fill_user(ms, "many", &tiny, 1);

  const char *labels[4] = {"10 KB, CRLF", "10 KB, bare LF",
                           quick ? "256 KB, CRLF" : "10 MB, CRLF",
                           quick ? "256 KB, bare LF" : "10 MB, bare LF"};
  for (unsigned i = 0; i < 4; i++)
    retr_table(labels[i], ms, i + 1, &msgs[i], min_s, quick);
  idle_table(ms, many);
  mailproto_memstore_free(ms);
  for (size_t i = 0; i < 4; i++)
    free(msgs[i].data);
  free(tiny.data);
  return 0;
}
