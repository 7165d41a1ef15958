/*
 * MIME throughput: the structure parser (CRLF and bare-LF mail, one big
 * message and many small ones), the transfer decoders and the SEARCH
 * matcher, each beside memchr/memcpy over the same bytes in the same run;
 * and FETCH BODYSTRUCTURE for 10,000 messages parsed (cold) against the
 * same from their serialised cache entries (cached); then the same FETCH
 * through a whole IMAP session over the memory store, with its cache hook
 * off (cold: every message read and parsed) and on (cached), beside
 * "FETCH 1:* (UID FLAGS)" of the same mailbox in the same run; and the
 * same over the Maildir store (message files read, cache entries in
 * files; fsync off).
 *   bench_mime [--quick]
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "mime/mime.h"
#include "mime/mime_codec.h"
#include "mime/mime_imap.h"
#include "mailproto/imap.h"
#include "mailproto/maildir.h"
#include "mailproto/memstore.h"

/* A growable byte string for building test mail. */
typedef struct text {
  uint8_t *p;
  size_t n, cap;
} text;

static void put(text *t, const void *s, size_t n) {
  if (t->n + n > t->cap) {
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->n + n)
      cap *= 2;
    uint8_t *g = realloc(t->p, cap);
    if (!g)
      abort();
    t->p = g;
    t->cap = cap;
  }
  memcpy(t->p + t->n, s, n);
  t->n += n;
}

static void puts_(text *t, const char *s) {
  put(t, s, strlen(s));
}

/* base64-looking lines of 76 characters */
static void put_base64(text *t, size_t bytes, uint32_t seed, const char *eol) {
  static const char a[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char line[77];
  for (size_t done = 0; done < bytes; done += 76) {
    for (int i = 0; i < 76; i++) {
      seed = seed * 1103515245u + 12345u;
      line[i] = a[(seed >> 16) & 63];
    }
    put(t, line, 76);
    puts_(t, eol);
  }
}

static void put_lines(text *t, size_t bytes, uint32_t seed, const char *eol) {
  uint8_t buf[4096];
  for (size_t done = 0; done < bytes; done += sizeof buf) {
    bench_fill_mail_text(buf, sizeof buf, seed++);
    /* bench_fill_mail_text ends lines with CRLF; keep its text */
    for (size_t i = 0; i < sizeof buf; i++) {
      if (buf[i] == '\r')
        continue;
      if (buf[i] == '\n')
        puts_(t, eol);
      else
        put(t, &buf[i], 1);
    }
  }
}

/* One message of a given shape (0: plain, 1: alternative + attachment, 2:
 * forwarded message, 3: signed) with about `body` bytes of content. */
static void make_message(text *t, int shape, size_t body, uint32_t seed,
                         const char *eol) {
  char h[512];
  snprintf(h, sizeof h,
           "From: Sender %u <sender%u@example.com>%sTo: rcpt@example.net%s"
           "Subject: message %u%sDate: Mon, 2 Sep 2024 11:14:58 +0200%s"
           "Message-ID: <%u@example.com>%sMIME-Version: 1.0%s",
           seed, seed, eol, eol, seed, eol, eol, seed, eol, eol);
  puts_(t, h);
  switch (shape) {
  case 0:
    snprintf(h, sizeof h, "Content-Type: text/plain; charset=utf-8%s%s", eol,
             eol);
    puts_(t, h);
    put_lines(t, body, seed, eol);
    break;
  case 1:
    snprintf(h, sizeof h,
             "Content-Type: multipart/mixed; boundary=\"mix%u\"%s%s--mix%u%s"
             "Content-Type: multipart/alternative; boundary=\"alt%u\"%s%s"
             "--alt%u%sContent-Type: text/plain; charset=utf-8%s%s",
             seed, eol, eol, seed, eol, seed, eol, eol, seed, eol, eol, eol);
    puts_(t, h);
    put_lines(t, body / 4, seed, eol);
    snprintf(h, sizeof h,
             "%s--alt%u%sContent-Type: text/html; charset=utf-8%s%s", eol, seed,
             eol, eol, eol);
    puts_(t, h);
    put_lines(t, body / 4, seed + 1, eol);
    snprintf(h, sizeof h,
             "%s--alt%u--%s%s--mix%u%sContent-Type: application/pdf; "
             "name=\"a.pdf\"%sContent-Transfer-Encoding: base64%s"
             "Content-Disposition: attachment; filename=\"a.pdf\"%s%s",
             eol, seed, eol, eol, seed, eol, eol, eol, eol, eol);
    puts_(t, h);
    put_base64(t, body / 2, seed, eol);
    snprintf(h, sizeof h, "--mix%u--%s", seed, eol);
    puts_(t, h);
    break;
  case 2:
    snprintf(h, sizeof h,
             "Content-Type: multipart/mixed; boundary=\"f%u\"%s%s--f%u%s%s"
             "see below%s--f%u%sContent-Type: message/rfc822%s%s",
             seed, eol, eol, seed, eol, eol, eol, seed, eol, eol, eol);
    puts_(t, h);
    make_message(t, 1, body, seed + 7, eol);
    snprintf(h, sizeof h, "%s--f%u--%s", eol, seed, eol);
    puts_(t, h);
    break;
  default:
    snprintf(h, sizeof h,
             "Content-Type: multipart/signed; protocol=\"application/"
             "pgp-signature\"; micalg=pgp-sha256; boundary=\"s%u\"%s%s--s%u%s"
             "Content-Type: text/plain; charset=utf-8%s%s",
             seed, eol, eol, seed, eol, eol, eol);
    puts_(t, h);
    put_lines(t, body, seed, eol);
    snprintf(h, sizeof h,
             "%s--s%u%sContent-Type: application/pgp-signature%s%s", eol, seed,
             eol, eol, eol);
    puts_(t, h);
    put_base64(t, 300, seed, eol);
    snprintf(h, sizeof h, "--s%u--%s", seed, eol);
    puts_(t, h);
    break;
  }
}

typedef struct parse_arg {
  const uint8_t *data;
  size_t len;
  size_t chunk;
  mailproto_mime_parser parser;
  size_t parts;
} parse_arg;

static void run_parse(void *arg) {
  parse_arg *a = arg;
  for (size_t off = 0; off < a->len;) {
    size_t n = a->len - off < a->chunk ? a->len - off : a->chunk;
    if (mailproto_mime_parser_feed(&a->parser, a->data + off, n) != 0)
      abort();
    off += n;
  }
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, NULL);
  if (mailproto_mime_parser_finish(&a->parser, &t) != 0)
    abort();
  a->parts = t.part_count;
  mailproto_mime_tree_free(&t);
}

/* Many messages, each parsed alone (the parser is reused). */
typedef struct many_arg {
  const text *msgs;
  size_t count;
  mailproto_mime_parser parser;
} many_arg;

static void run_parse_many(void *arg) {
  many_arg *a = arg;
  for (size_t i = 0; i < a->count; i++) {
    if (mailproto_mime_parser_feed(&a->parser, a->msgs[i].p, a->msgs[i].n))
      abort();
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    if (mailproto_mime_parser_finish(&a->parser, &t) != 0)
      abort();
    bench_sink(&t.part_count, sizeof t.part_count);
    mailproto_mime_tree_free(&t);
  }
}

typedef struct decode_arg {
  mailproto_mime_cte cte;
  const uint8_t *data;
  size_t len;
} decode_arg;

static void run_decode(void *arg) {
  decode_arg *d = arg;
  uint64_t out = 0;
  mailproto_mime_decoder dec;
  mailproto_mime_decoder_init(&dec, d->cte, mailproto_mime_out_count, &out);
  for (size_t off = 0; off < d->len; off += 65536) {
    size_t n = d->len - off < 65536 ? d->len - off : 65536;
    mailproto_mime_decoder_feed(&dec, d->data + off, n);
  }
  mailproto_mime_decoder_finish(&dec);
  bench_sink(&out, sizeof out);
}

typedef struct match_arg {
  mailproto_mime_matcher m;
  const uint8_t *data;
  size_t len;
} match_arg;

static void run_match(void *arg) {
  match_arg *a = arg;
  mailproto_mime_matcher_reset(&a->m);
  int found = mailproto_mime_matcher_feed(&a->m, a->data, a->len);
  bench_sink(&found, sizeof found);
}

/* FETCH 1:* BODYSTRUCTURE over a mailbox: cold parses every message,
 * cached loads every serialised entry. */
typedef struct fetch_arg {
  const text *msgs;
  const text *cache;
  size_t count;
  mailproto_mime_parser parser;
  mailproto_buf out;
} fetch_arg;

static void run_fetch_cold(void *arg) {
  fetch_arg *a = arg;
  for (size_t i = 0; i < a->count; i++) {
    mailproto_buf_clear(&a->out);
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    if (mailproto_mime_parser_feed(&a->parser, a->msgs[i].p, a->msgs[i].n) ||
        mailproto_mime_parser_finish(&a->parser, &t) ||
        mailproto_mime_write_body(&a->out, &t, 0, 1, 0))
      abort();
    mailproto_mime_tree_free(&t);
  }
}

static void run_fetch_cached(void *arg) {
  fetch_arg *a = arg;
  for (size_t i = 0; i < a->count; i++) {
    mailproto_buf_clear(&a->out);
    mailproto_mime_tree t;
    mailproto_mime_tree_init(&t, NULL);
    if (mailproto_mime_deserialize(NULL, NULL, a->cache[i].p, a->cache[i].n,
                                   a->msgs[i].n, &t) ||
        mailproto_mime_write_body(&a->out, &t, 0, 1, 0))
      abort();
    mailproto_mime_tree_free(&t);
  }
}

/* ---- FETCH through a session ---- */

typedef struct session_arg {
  mailproto_imap *s;
  size_t out_bytes;
  char tail[2048]; /* the last bytes sent, for the tagged reply */
  size_t tail_len;
  unsigned tag;
  const char *items;
} session_arg;

static ptrdiff_t count_send(mailproto_imap *s, const uint8_t *d, size_t n,
                            void *u) {
  session_arg *a = u;
  (void)s;
  a->out_bytes += n;
  /* keep the last sizeof tail bytes of the output */
  size_t keep = n < sizeof a->tail ? n : sizeof a->tail;
  if (a->tail_len + keep > sizeof a->tail) {
    size_t drop = a->tail_len + keep - sizeof a->tail;
    memmove(a->tail, a->tail + drop, a->tail_len - drop);
    a->tail_len -= drop;
  }
  memcpy(a->tail + a->tail_len, d + n - keep, keep);
  a->tail_len += keep;
  return (ptrdiff_t)n;
}

/* Sends a command and drives the session until its tagged OK is out. */
static void session_cmd(session_arg *a, const char *tag, const char *cmd) {
  size_t n = strlen(cmd);
  char want[32];
  int w = snprintf(want, sizeof want, "\n%s OK ", tag);
  a->tail_len = 0;
  if (mailproto_imap_feed(a->s, (const uint8_t *)cmd, n) != (ptrdiff_t)n)
    abort();
  for (int turns = 0; turns < 1000000; turns++) {
    /* at a line start: after a LF, or the first output */
    if (a->tail_len >= (size_t)w - 1 &&
        memcmp(a->tail, want + 1, (size_t)w - 1) == 0)
      return;
    for (size_t i = 0; i + (size_t)w <= a->tail_len; i++)
      if (memcmp(a->tail + i, want, (size_t)w) == 0)
        return;
    /* the output waits for the transport between batches */
    if (mailproto_imap_writable(a->s) != 0)
      break;
  }
  fprintf(stderr, "bench_mime: %s failed: %.*s\n", cmd, (int)a->tail_len,
          a->tail);
  abort();
}

static void run_session_fetch(void *arg) {
  session_arg *a = arg;
  char cmd[96];
  char tag[16];
  snprintf(tag, sizeof tag, "t%u", a->tag++);
  snprintf(cmd, sizeof cmd, "%s FETCH 1:* %s\r\n", tag, a->items);
  session_cmd(a, tag, cmd);
}

/* A session on `inner` (user alice/secret); `fill` appends the messages
 * first; `cache` 0 hides the store's cache hooks (every FETCH parses). */
static void session_open(session_arg *a, mailproto_store inner,
                         mailproto_store_ops *ops, mailproto_store *st,
                         const text *msgs, size_t count, int fill, int cache) {
  memset(a, 0, sizeof *a);
  *ops = *inner.ops;
  if (!cache)
    ops->cache_get = NULL, ops->cache_put = NULL;
  st->ops = ops;
  st->ctx = inner.ctx;
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  c.allow_insecure_auth = 1;
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = count_send;
  if (mailproto_imap_new(&c, &cb, st, a, &a->s) || mailproto_imap_start(a->s))
    abort();
  session_cmd(a, "a", "a LOGIN alice secret\r\n");
  for (size_t i = 0; fill && i < count; i++) {
    char cmd[64];
    snprintf(cmd, sizeof cmd, "b APPEND INBOX {%zu+}\r\n", msgs[i].n);
    size_t n = strlen(cmd);
    if (mailproto_imap_feed(a->s, (const uint8_t *)cmd, n) != (ptrdiff_t)n ||
        mailproto_imap_feed(a->s, msgs[i].p, msgs[i].n) != (ptrdiff_t)msgs[i].n)
      abort();
    session_cmd(a, "b", "\r\n");
  }
  session_cmd(a, "c", "c SELECT INBOX\r\n");
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.01 : 0.5;
  size_t big = quick ? (256u << 10) : (16u << 20);

  /* one big multipart message: text, html, a base64 attachment */
  text crlf = {0}, lf = {0};
  make_message(&crlf, 1, big, 1, "\r\n");
  make_message(&lf, 1, big, 1, "\n");

  bench_reference ref;
  bench_measure_reference(crlf.p, crlf.n, min_s, &ref);
  char title[160];
  snprintf(title, sizeof title, "mime: a %zu-byte multipart message%s", crlf.n,
           quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);

  parse_arg pa = {crlf.p, crlf.n, 65536, {0}, 0};
  mailproto_mime_parser_init(&pa.parser, NULL, NULL);
  double t = bench_time(run_parse, &pa, min_s);
  bench_print_row("parse, CRLF, 64 KiB feeds", (double)crlf.n / t / 1e6, &ref,
                  "structure + kept fields");
  pa.chunk = 1500;
  t = bench_time(run_parse, &pa, min_s);
  bench_print_row("parse, CRLF, 1500 B feeds", (double)crlf.n / t / 1e6, &ref,
                  "lines straddle feeds");
  pa.data = lf.p;
  pa.len = lf.n;
  pa.chunk = 65536;
  t = bench_time(run_parse, &pa, min_s);
  bench_print_row("parse, bare LF, 64 KiB feeds", (double)lf.n / t / 1e6, &ref,
                  "Maildir storage form");
  mailproto_mime_parser_free(&pa.parser);

  /* many small messages of the four shapes */
  size_t count = quick ? 400 : 10000;
  text *msgs = calloc(count, sizeof *msgs);
  text *cache = calloc(count, sizeof *cache);
  if (!msgs || !cache)
    return 1;
  size_t total = 0;
  for (size_t i = 0; i < count; i++) {
    make_message(&msgs[i], (int)(i % 4), 2000 + (i % 7) * 700, (uint32_t)i,
                 "\r\n");
    total += msgs[i].n;
  }
  many_arg ma = {msgs, count, {0}};
  mailproto_mime_parser_init(&ma.parser, NULL, NULL);
  t = bench_time(run_parse_many, &ma, min_s);
  char note[96];
  snprintf(note, sizeof note, "%zu messages, %.0f msg/s", count,
           (double)count / t);
  bench_print_row("parse, many small messages", (double)total / t / 1e6, &ref,
                  note);
  mailproto_mime_parser_free(&ma.parser);

  /* decoders and the matcher over the attachment-like text */
  text b64 = {0};
  put_base64(&b64, big, 9, "\r\n");
  decode_arg da = {MAILPROTO_MIME_CTE_BASE64, b64.p, b64.n};
  t = bench_time(run_decode, &da, min_s);
  bench_print_row("base64 decode (streamed)", (double)b64.n / t / 1e6, &ref,
                  "MB of encoded text");
  da.cte = MAILPROTO_MIME_CTE_QP;
  da.data = crlf.p;
  da.len = crlf.n;
  t = bench_time(run_decode, &da, min_s);
  bench_print_row("quoted-printable decode", (double)crlf.n / t / 1e6, &ref,
                  "mostly plain text");
  match_arg mt;
  if (mailproto_mime_matcher_init(&mt.m, NULL,
                                  (const uint8_t *)"needle not there", 16))
    return 1;
  mt.data = crlf.p;
  mt.len = crlf.n;
  t = bench_time(run_match, &mt, min_s);
  bench_print_row("SEARCH matcher, no match", (double)crlf.n / t / 1e6, &ref,
                  "case-folded KMP");
  mailproto_mime_matcher_free(&mt.m);

  /* FETCH 1:* BODYSTRUCTURE, cold and cached */
  size_t cache_bytes = 0;
  for (size_t i = 0; i < count; i++) {
    mailproto_mime_tree tr;
    mailproto_mime_tree_init(&tr, NULL);
    mailproto_buf s;
    mailproto_buf_init(&s, NULL, (size_t)-1);
    if (mailproto_mime_parse(NULL, NULL, msgs[i].p, msgs[i].n, &tr) ||
        mailproto_mime_serialize(&tr, &s))
      return 1;
    put(&cache[i], s.data, s.len);
    cache_bytes += s.len;
    mailproto_buf_free(&s);
    mailproto_mime_tree_free(&tr);
  }
  fetch_arg fa = {msgs, cache, count, {0}, {0}};
  mailproto_mime_parser_init(&fa.parser, NULL, NULL);
  mailproto_buf_init(&fa.out, NULL, (size_t)-1);
  double cold = bench_time(run_fetch_cold, &fa, min_s);
  double cached = bench_time(run_fetch_cached, &fa, min_s);
  printf("\nFETCH 1:* BODYSTRUCTURE, %zu messages (%.1f KB average):\n", count,
         (double)total / (double)count / 1e3);
  printf("  cold   (parse + write):       %8.0f msg/s  %6.2f us/msg\n",
         (double)count / cold, cold / (double)count * 1e6);
  printf("  cached (load entry + write):  %8.0f msg/s  %6.2f us/msg  "
         "(%.1fx; %.0f cache bytes/msg)\n",
         (double)count / cached, cached / (double)count * 1e6, cold / cached,
         (double)cache_bytes / (double)count);
  mailproto_mime_parser_free(&fa.parser);
  mailproto_buf_free(&fa.out);

  /* the same through an IMAP session, over the memory store and over a
   * Maildir (files, fsync off; its cache entries are files too) */
  for (int backend = 0; backend < 2; backend++) {
    char root[256] = "";
    mailproto_memstore *ms = NULL;
    mailproto_maildir *md = NULL;
    mailproto_store inner;
    if (backend == 0) {
      if (mailproto_memstore_new(NULL, &ms) ||
          mailproto_memstore_add_user(ms, "alice", "secret"))
        return 1;
      mailproto_memstore_store(ms, &inner);
    } else {
      const char *tmp = getenv("TMPDIR");
      snprintf(root, sizeof root, "%s/bench-mime-XXXXXX",
               tmp && *tmp ? tmp : "/tmp");
      if (!mkdtemp(root))
        return 1;
      mailproto_maildir_config cfg;
      mailproto_maildir_config_init(&cfg, sizeof cfg);
      cfg.root = root;
      cfg.fsync = 0;
      if (mailproto_maildir_new(&cfg, &md) ||
          mailproto_maildir_add_user(md, "alice", "secret"))
        return 1;
      mailproto_maildir_store(md, &inner);
    }
    session_arg sa;
    mailproto_store_ops ops;
    mailproto_store st;
    session_open(&sa, inner, &ops, &st, msgs, count, 1, 0);
    sa.items = "(UID FLAGS)";
    double ref_t = bench_time(run_session_fetch, &sa, min_s);
    sa.items = "BODYSTRUCTURE";
    double cold_t = bench_time(run_session_fetch, &sa, min_s);
    mailproto_imap_free(sa.s);
    session_open(&sa, inner, &ops, &st, msgs, count, 0, 1);
    sa.items = "BODYSTRUCTURE";
    run_session_fetch(&sa); /* fills the cache */
    double cached_t = bench_time(run_session_fetch, &sa, min_s);
    printf("\nIMAP session over the %s, FETCH 1:* of the same %zu "
           "messages:\n",
           backend ? "Maildir store" : "memory store", count);
    printf("  (UID FLAGS), reference:       %8.0f msg/s  %6.2f us/msg\n",
           (double)count / ref_t, ref_t / (double)count * 1e6);
    printf("  BODYSTRUCTURE, no cache hook: %8.0f msg/s  %6.2f us/msg  "
           "(read + parse + write)\n",
           (double)count / cold_t, cold_t / (double)count * 1e6);
    printf("  BODYSTRUCTURE, cached:        %8.0f msg/s  %6.2f us/msg  "
           "(%.1fx faster than cold)\n",
           (double)count / cached_t, cached_t / (double)count * 1e6,
           cold_t / cached_t);
    mailproto_imap_free(sa.s);
    if (ms)
      mailproto_memstore_free(ms);
    if (md) {
      mailproto_maildir_free(md);
      char cmd[300];
      snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
      if (system(cmd) != 0)
        return 1;
    }
  }

  for (size_t i = 0; i < count; i++) {
    free(msgs[i].p);
    free(cache[i].p);
  }
  free(msgs);
  free(cache);
  free(crlf.p);
  free(lf.p);
  free(b64.p);
  return 0;
}
