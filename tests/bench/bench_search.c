/*
 * IMAP SEARCH in process (a memory store, a send callback that takes
 * everything):
 *  - SEARCH BODY over 10,000 messages of about 4 KB (a string that is
 *    not there, so every text part is read, decoded and matched): MB/s of
 *    stored message text, beside memchr over the same bytes in this run;
 *    the first run also parses every message into its MIME tree (which
 *    the memory store caches), later runs read only the text parts;
 *  - SEARCH FLAGGED UNSEEN over 1,000,000 messages (answered from the
 *    view, no message read): messages/s, beside a plain loop over an
 *    array of the same flags in this run.
 *   bench_search [--quick]   (quick: small sizes, figures not meaningful)
 * Every answer is checked (the number of matches).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/op.h"
#include "mailproto/imap.h"
#include "mailproto/memstore.h"
#include "store/store_call.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_search: %s: %s\n", what,
          rc ? mailproto_strerror(rc) : "failed");
  exit(1);
}

static const mailproto_op_sink quiet = {0};

/* Flags of message i: every third \Seen, every tenth \Flagged. */
static uint32_t flags_of(size_t i) {
  return (i % 3 == 0 ? MAILPROTO_FLAG_SEEN : 0u) |
         (i % 10 == 0 ? MAILPROTO_FLAG_FLAGGED : 0u);
}

/* Appends `count` messages to `user`'s INBOX: each `text` of `len` bytes
 * (or the small default). */
static void fill_user(mailproto_memstore *ms, const char *user, size_t count,
                      const uint8_t *text, size_t len, size_t stride) {
  static const char small[] = "From: a@example.org\r\nSubject: hello\r\n\r\n"
                              "a short message\r\n";
  mailproto_store st;
  mailproto_op op;
  void *account = NULL;
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  int rc = mailproto_memstore_add_user(ms, user, "pw");
  if (rc == 0)
    rc = mailproto_store_call_lookup_recipient(&st, &op, 0, user, &account);
  if (rc != 0)
    die("user", rc);
  for (size_t i = 0; i < count; i++) {
    void *writer = NULL;
    uint32_t uv, uid;
    const uint8_t *d =
        text ? text + (i % stride) * len : (const uint8_t *)small;
    size_t n = text ? len : sizeof small - 1;
    mailproto_append_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.flags = flags_of(i);
    info.size_hint = n;
    rc = mailproto_store_call_append_begin(&st, &op, 0, account, "INBOX", &info,
                                           &writer);
    if (rc == 0)
      rc = mailproto_store_call_write(&st, &op, 0, writer, d, n);
    if (rc == 0)
      rc = mailproto_store_call_append_commit(&st, &op, 0, writer, &uv, &uid);
    if (rc != 0)
      die("append", rc);
  }
  mailproto_store_call_release_account(&st, account);
}

/* ------------------------------------------------------------------ */
/* One session                                                         */
/* ------------------------------------------------------------------ */

typedef struct env {
  mailproto_imap *s;
  size_t numbers; /* numbers on "* SEARCH" lines since reset */
  char last[128]; /* the start of the last line */
  size_t last_len;
  int at_line_start;
  int in_search;
} env;

static ptrdiff_t on_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *user_data) {
  env *e = user_data;
  (void)s;
  for (size_t i = 0; i < len; i++) {
    char c = (char)data[i];
    if (e->at_line_start) {
      e->last_len = 0;
      e->at_line_start = 0;
      e->in_search = 0;
    }
    if (c == '\n') {
      e->at_line_start = 1;
      continue;
    }
    if (e->last_len < sizeof e->last - 1) {
      e->last[e->last_len++] = c;
      e->last[e->last_len] = '\0';
      if (e->last_len == 8 && memcmp(e->last, "* SEARCH", 8) == 0)
        e->in_search = 1;
    }
    if (e->in_search && c == ' ')
      e->numbers++;
  }
  return (ptrdiff_t)len;
}

static void command(env *e, const char *tag, const char *cmd) {
  e->numbers = 0;
  e->at_line_start = 1;
  size_t len = strlen(cmd), off = 0;
  while (off < len || mailproto_imap_want_write(e->s)) {
    if (off < len) {
      ptrdiff_t used =
          mailproto_imap_feed(e->s, (const uint8_t *)cmd + off, len - off);
      if (used < 0)
        die("feed", (int)used);
      off += (size_t)used;
    }
    while (mailproto_imap_want_write(e->s))
      if (mailproto_imap_writable(e->s) < 0)
        die("writable", 0);
  }
  size_t t = strlen(tag);
  if (e->last_len < t + 3 || memcmp(e->last, tag, t) != 0 ||
      memcmp(e->last + t, " OK", 3) != 0) {
    fprintf(stderr, "bench_search: %s: %s\n", cmd, e->last);
    die("reply", 0);
  }
}

static void session_open(env *e, mailproto_memstore *ms, const char *user) {
  memset(e, 0, sizeof *e);
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.allow_insecure_auth = 1;
  cfg.output_watermark = 256 * 1024;
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  int rc = mailproto_imap_new(&cfg, &cb, &st, e, &e->s);
  if (rc == 0)
    rc = mailproto_imap_start(e->s);
  if (rc != 0)
    die("session", rc);
  char cmd[96];
  snprintf(cmd, sizeof cmd, "l LOGIN %s pw\r\n", user);
  command(e, "l", cmd);
  command(e, "s", "s SELECT INBOX\r\n");
}

/* ------------------------------------------------------------------ */
/* SEARCH BODY                                                         */
/* ------------------------------------------------------------------ */

typedef struct search_arg {
  env *e;
  const char *cmd;
  size_t expect;
} search_arg;

static void run_search(void *arg) {
  search_arg *a = arg;
  command(a->e, "q", a->cmd);
  if (a->e->numbers != a->expect) {
    fprintf(stderr, "bench_search: %zu matches, expected %zu\n", a->e->numbers,
            a->expect);
    die("SEARCH result", 0);
  }
}

/* Distinct message texts (the store holds `count` messages cycling over
 * them): a header, then mail-like lines. */
#define VARIANTS 64

static uint8_t *make_texts(size_t len) {
  static const char head[] = "From: Sender <sender@example.org>\r\n"
                             "To: Bench <bench@example.net>\r\n"
                             "Subject: Quarterly figures, as promised\r\n"
                             "Date: Tue, 14 Jan 2025 09:30:00 +0100\r\n"
                             "Content-Type: text/plain; charset=utf-8\r\n"
                             "\r\n";
  uint8_t *t = malloc(VARIANTS * len);
  if (!t)
    die("malloc", MAILPROTO_ERR_NOMEM);
  for (size_t v = 0; v < VARIANTS; v++) {
    uint8_t *m = t + v * len;
    memcpy(m, head, sizeof head - 1);
    bench_fill_mail_text(m + sizeof head - 1, len - (sizeof head - 1),
                         (uint32_t)v + 1);
  }
  return t;
}

static void body_table(int quick, double min_s) {
  size_t count = quick ? 200 : 10000, len = 4096;
  uint8_t *texts = make_texts(len);
  mailproto_memstore *ms;
  if (mailproto_memstore_new(NULL, &ms) != 0)
    die("memstore", 0);
  fill_user(ms, "body", count, texts, len, VARIANTS);
  env e;
  session_open(&e, ms, "body");
  search_arg a = {&e, "q SEARCH BODY \"zqxj not here\"\r\n", 0};
  /* The first run parses every message (the trees then go to the
   * store's cache); later runs read only the text parts. */
  double t0 = bench_now();
  run_search(&a);
  double cold = bench_now() - t0;
  double t = bench_time(run_search, &a, min_s);
  double mbps = (double)count * (double)len / t / 1e6;
  /* memchr over as many bytes (the variants, repeated), same run. */
  uint8_t *all = malloc(count * len);
  if (!all)
    die("malloc", MAILPROTO_ERR_NOMEM);
  for (size_t i = 0; i < count; i++)
    memcpy(all + i * len, texts + (i % VARIANTS) * len, len);
  bench_reference ref;
  bench_measure_reference(all, count * len, min_s, &ref);
  free(all);
  bench_print_header("SEARCH BODY (no match: every byte read and matched)",
                     &ref);
  char note[128];
  snprintf(note, sizeof note, "%zu messages of %zu bytes, %.1f ms", count, len,
           t * 1e3);
  bench_print_row("SEARCH BODY, trees cached", mbps, &ref, note);
  snprintf(note, sizeof note, "one run, %.1f ms", cold * 1e3);
  bench_print_row("SEARCH BODY, first run",
                  (double)count * (double)len / cold / 1e6, &ref, note);
  mailproto_imap_free(e.s);
  mailproto_memstore_free(ms);
  free(texts);
}

/* ------------------------------------------------------------------ */
/* SEARCH on flags                                                     */
/* ------------------------------------------------------------------ */

typedef struct loop_arg {
  const uint32_t *flags;
  size_t n;
  size_t found;
} loop_arg;

/* The reference: what a server that keeps flags in an array does. */
static void run_loop(void *arg) {
  loop_arg *a = arg;
  size_t found = 0;
  for (size_t i = 0; i < a->n; i++)
    found += (a->flags[i] & (MAILPROTO_FLAG_FLAGGED | MAILPROTO_FLAG_SEEN)) ==
             MAILPROTO_FLAG_FLAGGED;
  a->found = found;
  bench_sink(&found, sizeof found);
}

static void flags_table(int quick, double min_s) {
  size_t count = quick ? 10000 : 1000000;
  mailproto_memstore *ms;
  if (mailproto_memstore_new(NULL, &ms) != 0)
    die("memstore", 0);
  fill_user(ms, "flags", count, NULL, 0, 1);
  env e;
  session_open(&e, ms, "flags");
  size_t expect = 0;
  uint32_t *flags = malloc(count * sizeof *flags);
  if (!flags)
    die("malloc", MAILPROTO_ERR_NOMEM);
  for (size_t i = 0; i < count; i++) {
    flags[i] = flags_of(i);
    expect += (flags[i] & (MAILPROTO_FLAG_FLAGGED | MAILPROTO_FLAG_SEEN)) ==
              MAILPROTO_FLAG_FLAGGED;
  }
  search_arg a = {&e, "q SEARCH FLAGGED UNSEEN\r\n", expect};
  double t = bench_time(run_search, &a, min_s);
  loop_arg l = {flags, count, 0};
  double tl = bench_time(run_loop, &l, min_s);
  if (l.found != expect)
    die("reference loop", 0);
  printf("\nSEARCH FLAGGED UNSEEN over %zu messages (%zu matches)\n", count,
         expect);
  printf("  %-28s %14.0f messages/s  (%.2f ms)\n", "SEARCH (session, view)",
         (double)count / t, t * 1e3);
  printf("  %-28s %14.0f messages/s  (%.2f ms)\n", "reference: array loop",
         (double)count / tl, tl * 1e3);
  printf("  ratio to the loop: %.3f\n", tl / t);
  mailproto_imap_free(e.s);
  mailproto_memstore_free(ms);
  free(flags);
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.01 : 0.5;
  body_table(quick, min_s);
  flags_table(quick, min_s);
  return 0;
}
