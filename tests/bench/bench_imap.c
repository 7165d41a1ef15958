/*
 * IMAP in process (a memory store, a send callback that takes everything,
 * no sockets):
 *  - commands read and parsed per second over a mixed command corpus of
 *    what real clients send (FETCH and UID FETCH with item lists, STORE,
 *    SEARCH, SELECT, LIST, STATUS, APPEND with a small literal, IDLE and
 *    DONE, NOOP), through the reader and the parser as the session uses
 *    them, beside memchr per line over the same bytes;
 *  - "UID FETCH 1:* (UID FLAGS)" on a 100,000-message mailbox through a
 *    whole session: messages per second, beside snprintf of the same
 *    response lines and memcpy of the response bytes;
 *  - bytes an idle authenticated session holds (its allocator only, not
 *    the store's) after login and after SELECT of mailboxes of 0, 1,000
 *    and 100,000 messages, against the goal of at most 2 KiB plus 16
 *    bytes per message of the selected mailbox.
 *   bench_imap [--quick]      (quick: small sizes, figures not meaningful)
 * Every response is checked (the FETCH response line count and its
 * tagged OK); the corpus must parse without a single error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "core/op.h"
#include "imap/imap_parser.h"
#include "imap/imap_reader.h"
#include "mailproto/imap.h"
#include "mailproto/memstore.h"
#include "store/store_call.h"
#include "support/alloc_fail.h"

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_imap: %s: %s\n", what,
          rc ? mailproto_strerror(rc) : "failed");
  exit(1);
}

/* ------------------------------------------------------------------ */
/* The command corpus                                                  */
/* ------------------------------------------------------------------ */

/* One client "round": roughly what Thunderbird, mbsync and a phone client
 * send while syncing and reading. A line starting with "." gets the round
 * number in front (tags vary per round). APPEND carries a 200-byte
 * message as a synchronising literal; IDLE is ended by DONE. */
static const char *const round_lines[] = {
    ".1 NOOP\r\n",
    ".2 SELECT INBOX\r\n",
    ".3 UID FETCH 1:* (UID FLAGS)\r\n",
    ".4 UID FETCH 4100:* (UID RFC822.SIZE FLAGS INTERNALDATE "
    "BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID "
    "Priority X-Priority References Newsgroups In-Reply-To Content-Type "
    "Reply-To)])\r\n",
    ".5 FETCH 17 (BODY.PEEK[] FLAGS)\r\n",
    ".6 UID STORE 4127,4130:4133 +FLAGS.SILENT (\\Seen $Label1)\r\n",
    ".7 STORE 12 -FLAGS (\\Flagged)\r\n",
    ".8 UID SEARCH UNSEEN SINCE 1-Feb-2025 NOT DELETED\r\n",
    ".9 SEARCH OR FROM \"alice@example.org\" SUBJECT \"budget 2025\" "
    "LARGER 10000\r\n",
    ".10 LIST \"\" \"*\"\r\n",
    ".11 LIST (SUBSCRIBED) \"\" \"%\" RETURN (CHILDREN SPECIAL-USE)\r\n",
    ".12 STATUS \"Sent Items\" (MESSAGES UIDNEXT UNSEEN)\r\n",
    ".13 UID FETCH 4127 (BODY.PEEK[1.2]<0.2048> BODYSTRUCTURE)\r\n",
    ".14 APPEND Sent (\\Seen) \"14-Feb-2025 09:30:00 +0100\" {200}\r\n",
    NULL, /* the APPEND literal goes here */
    ".15 UID COPY 4120:4125 Archive\r\n",
    ".16 UID MOVE 4126 Trash\r\n",
    ".17 UID EXPUNGE 4126\r\n",
    ".18 IDLE\r\n",
    "DONE\r\n",
    ".19 EXAMINE \"Archive/2024\"\r\n",
    ".20 FETCH 1:50 (FLAGS UID ENVELOPE)\r\n",
};
enum { ROUND_COMMANDS = 21 }; /* 20 tagged commands and DONE */

static size_t build_corpus(uint8_t *buf, size_t cap, unsigned rounds) {
  char msg[200];
  memset(msg, 'm', sizeof msg);
  memcpy(msg, "From: a@example.org\r\nSubject: draft\r\n\r\n", 39);
  msg[198] = '\r';
  msg[199] = '\n';
  size_t len = 0;
  for (unsigned r = 1; r <= rounds; r++)
    for (size_t i = 0; i < sizeof round_lines / sizeof round_lines[0]; i++) {
      if (len + 1024 > cap)
        die("corpus buffer", 0);
      if (!round_lines[i]) {
        /* The literal, then the CRLF that ends the APPEND command. */
        memcpy(buf + len, msg, 200);
        memcpy(buf + len + 200, "\r\n", 2);
        len += 202;
        continue;
      }
      const char *line = round_lines[i];
      if (line[0] == '.') {
        int n = snprintf((char *)buf + len, cap - len, "%u", r);
        if (n < 0)
          die("snprintf", 0);
        len += (size_t)n;
      }
      size_t n = strlen(line);
      memcpy(buf + len, line, n);
      len += n;
    }
  return len;
}

typedef struct parse_arg {
  const uint8_t *data;
  size_t len;
  size_t commands; /* per call, checked */
  size_t expect;
} parse_arg;

/* The reader and the parser as the session drives them: a command is
 * parsed as it completes; APPEND's message literal is streamed; after
 * IDLE the next line is read raw. */
static void run_parse(void *arg) {
  parse_arg *a = arg;
  mailproto_imap_reader r;
  mailproto_imap_reader_limits lim = {8192, 65536, 262144, 64, 0};
  mailproto_imap_reader_init(&r, NULL, &lim);
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command cmd;
  size_t off = 0, commands = 0;
  while (off < a->len) {
    size_t used;
    mailproto_imap_event ev;
    int rc =
        mailproto_imap_reader_next(&r, a->data + off, a->len - off, &used, &ev);
    off += used;
    if (rc < 0)
      die("reader", rc);
    if (rc == 0)
      continue;
    switch (ev.type) {
    case MAILPROTO_IMAP_EVENT_COMMAND:
      rc = ev.continued
               ? mailproto_imap_parse_append_next(&p, ev.data, ev.len, 1, &cmd)
               : mailproto_imap_parse(&p, ev.data, ev.len, &cmd);
      if (rc != 0) {
        fprintf(stderr, "bench_imap: %.*s\n", (int)ev.len,
                (const char *)ev.data);
        die(mailproto_imap_parser_error(&p), rc);
      }
      commands++;
      if (cmd.id == MAILPROTO_IMAP_CMD_IDLE &&
          mailproto_imap_reader_raw_line(&r) != 0)
        die("raw line", 0);
      break;
    case MAILPROTO_IMAP_EVENT_LITERAL:
      rc = mailproto_imap_parse_append_start(&p, ev.data, ev.len, &cmd);
      if (rc == 1) {
        rc = mailproto_imap_reader_stream(&r);
      } else if (rc == 0) {
        rc = mailproto_imap_reader_accept(&r);
      }
      if (rc != 0)
        die("literal", rc);
      break;
    case MAILPROTO_IMAP_EVENT_RAW:
      bench_sink(ev.data, ev.len);
      break;
    case MAILPROTO_IMAP_EVENT_RAW_END:
      break;
    case MAILPROTO_IMAP_EVENT_LINE: /* IDLE's DONE */
      commands++;
      break;
    case MAILPROTO_IMAP_EVENT_ERROR:
      die(ev.text, 0);
    }
  }
  mailproto_imap_parser_free(&p);
  mailproto_imap_reader_free(&r);
  if (commands != a->expect)
    die("corpus command count", 0);
  a->commands = commands;
}

static size_t count_lines(const uint8_t *data, size_t len) {
  size_t lines = 0;
  for (const uint8_t *p = data, *end = data + len; p < end; lines++) {
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    p = lf ? lf + 1 : end;
  }
  return lines;
}

static void run_memchr_lines(void *arg) {
  parse_arg *a = arg;
  size_t lines = count_lines(a->data, a->len);
  bench_sink(&lines, sizeof lines);
}

static void parse_table(int quick, double min_s) {
  unsigned rounds = quick ? 50 : 5000;
  size_t cap = (size_t)rounds * 2048;
  uint8_t *buf = malloc(cap);
  if (!buf)
    die("malloc", MAILPROTO_ERR_NOMEM);
  size_t len = build_corpus(buf, cap, rounds);
  parse_arg a = {buf, len, 0, (size_t)rounds * ROUND_COMMANDS};
  bench_reference ref;
  bench_measure_reference(buf, len, min_s, &ref);
  double t_lines = bench_time(run_memchr_lines, &a, min_s);
  double t_parse = bench_time(run_parse, &a, min_s);
  char title[200];
  snprintf(title, sizeof title,
           "IMAP command reader + parser: %zu commands, %zu bytes (%.0f "
           "bytes per command)%s",
           a.expect, len, (double)len / (double)a.expect,
           quick ? " (quick mode: figures not meaningful)" : "");
  bench_print_header(title, &ref);
  double lines_mbps = (double)len / t_lines / 1e6;
  double parse_mbps = (double)len / t_parse / 1e6;
  char note[96];
  snprintf(note, sizeof note, "%.0f lines/s",
           (double)count_lines(buf, len) / t_lines);
  bench_print_row("(reference) memchr per line", lines_mbps, &ref, note);
  snprintf(note, sizeof note, "%.0f commands/s; %.2f of memchr per line",
           (double)a.expect / t_parse, parse_mbps / lines_mbps);
  bench_print_row("read + parse", parse_mbps, &ref, note);
  free(buf);
}

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */
/* ------------------------------------------------------------------ */

static const mailproto_op_sink quiet = {0};

/* Appends `count` small messages to `user`'s INBOX; every third is \Seen,
 * every tenth \Flagged too, so FLAGS lists vary as in a real mailbox. */
static void fill_user(mailproto_memstore *ms, const char *user, size_t count) {
  static const char text[] = "From: a@example.org\r\nSubject: hello\r\n\r\n"
                             "a short message\r\n";
  mailproto_store st;
  mailproto_op op;
  void *account = NULL;
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  int rc = mailproto_store_call_lookup_recipient(&st, &op, 0, user, &account);
  if (rc != 0)
    die("lookup", rc);
  for (size_t i = 0; i < count; i++) {
    void *writer = NULL;
    uint32_t uv, uid;
    mailproto_append_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.flags = (i % 3 == 0 ? MAILPROTO_FLAG_SEEN : 0u) |
                 (i % 10 == 0 ? MAILPROTO_FLAG_FLAGGED : 0u);
    info.size_hint = sizeof text - 1;
    rc = mailproto_store_call_append_begin(&st, &op, 0, account, "INBOX", &info,
                                           &writer);
    if (rc == 0)
      rc = mailproto_store_call_write(&st, &op, 0, writer,
                                      (const uint8_t *)text, sizeof text - 1);
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
  size_t total;   /* response bytes since reset */
  size_t lines;   /* line ends since reset */
  char last[128]; /* the start of the last line */
  size_t last_len;
  int at_line_start;
  uint8_t *keep; /* when set, the response is copied here (reference) */
  size_t keep_cap;
} env;

static void response_reset(env *e) {
  e->total = e->lines = e->last_len = 0;
  e->at_line_start = 1;
}

static ptrdiff_t on_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *user_data) {
  env *e = user_data;
  (void)s;
  if (e->keep && e->total + len <= e->keep_cap)
    memcpy(e->keep + e->total, data, len);
  e->total += len;
  const uint8_t *p = data, *end = data + len;
  while (p < end) {
    if (e->at_line_start) {
      e->last_len = 0;
      e->at_line_start = 0;
    }
    const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
    size_t n = (size_t)((lf ? lf : end) - p);
    size_t room = sizeof e->last - 1 - e->last_len;
    memcpy(e->last + e->last_len, p, n < room ? n : room);
    e->last_len += n < room ? n : room;
    e->last[e->last_len] = '\0';
    if (!lf)
      break;
    e->lines++;
    e->at_line_start = 1;
    p = lf + 1;
  }
  return (ptrdiff_t)len;
}

/* Feeds a command and drains its whole response, as a transport that
 * always has room would; checks the tagged reply is OK. */
static void command(env *e, const char *tag, const char *cmd) {
  response_reset(e);
  size_t len = strlen(cmd), off = 0;
  while (off < len || mailproto_imap_want_write(e->s)) {
    if (off < len) {
      ptrdiff_t used =
          mailproto_imap_feed(e->s, (const uint8_t *)cmd + off, len - off);
      if (used < 0)
        die("feed", (int)used);
      off += (size_t)used;
      if (used == 0 && !mailproto_imap_want_write(e->s))
        die("feed stalled", 0);
    }
    while (mailproto_imap_want_write(e->s)) {
      int rc = mailproto_imap_writable(e->s);
      if (rc < 0)
        die("writable", rc);
    }
  }
  size_t t = strlen(tag);
  if (e->last_len < t + 3 || memcmp(e->last, tag, t) != 0 ||
      memcmp(e->last + t, " OK", 3) != 0) {
    fprintf(stderr, "bench_imap: %s: %s\n", cmd, e->last);
    die("reply", 0);
  }
}

static void session_open(env *e, mailproto_memstore *ms,
                         const mailproto_allocator *alloc) {
  memset(e, 0, sizeof *e);
  mailproto_store st;
  mailproto_memstore_store(ms, &st);
  mailproto_imap_config cfg;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  cfg.allocator = alloc;
  cfg.allow_insecure_auth = 1;
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  int rc = mailproto_imap_new(&cfg, &cb, &st, e, &e->s);
  response_reset(e);
  if (rc == 0)
    rc = mailproto_imap_start(e->s);
  if (rc != 0)
    die("session", rc);
}

static void login(env *e, const char *user) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "l LOGIN %s pw\r\n", user);
  command(e, "l", cmd);
}

/* ------------------------------------------------------------------ */
/* UID FETCH 1:* (UID FLAGS)                                           */
/* ------------------------------------------------------------------ */

typedef struct fetch_arg {
  env *e;
  size_t messages;
  size_t bytes; /* of the last response */
} fetch_arg;

static void run_fetch(void *arg) {
  fetch_arg *a = arg;
  command(a->e, "f", "f UID FETCH 1:* (UID FLAGS)\r\n");
  if (a->e->lines != a->messages + 1)
    die("FETCH response line count", 0);
  a->bytes = a->e->total;
}

/* The same lines as a server that knows its answer would print them. */
typedef struct print_arg {
  char *out;
  size_t cap;
  size_t messages;
} print_arg;

static void run_snprintf(void *arg) {
  print_arg *a = arg;
  size_t len = 0;
  for (size_t i = 0; i < a->messages; i++) {
    const char *flags = i % 10 == 0  ? "\\Seen \\Flagged"
                        : i % 3 == 0 ? "\\Seen"
                                     : "";
    int n =
        snprintf(a->out + len, a->cap - len,
                 "* %zu FETCH (UID %zu FLAGS (%s))\r\n", i + 1, i + 1, flags);
    if (n < 0 || (size_t)n >= a->cap - len)
      die("snprintf", 0);
    len += (size_t)n;
  }
  bench_sink(a->out, len);
}

typedef struct copy_arg {
  const uint8_t *src;
  uint8_t *dst;
  size_t len;
} copy_arg;

static void run_memcpy(void *arg) {
  copy_arg *a = arg;
  memcpy(a->dst, a->src, a->len);
  bench_sink(a->dst, a->len);
}

static void fetch_table(mailproto_memstore *ms, const char *user,
                        size_t messages, double min_s, int quick) {
  env e;
  session_open(&e, ms, NULL);
  login(&e, user);
  command(&e, "s", "s SELECT INBOX\r\n");
  fetch_arg fa = {&e, messages, 0};
  run_fetch(&fa);
  /* Keep one response for the memcpy reference. */
  size_t cap = fa.bytes;
  uint8_t *resp = malloc(cap), *copy = malloc(cap);
  char *printed = malloc(cap + 64);
  if (!resp || !copy || !printed)
    die("malloc", MAILPROTO_ERR_NOMEM);
  e.keep = resp;
  e.keep_cap = cap;
  run_fetch(&fa);
  e.keep = NULL;
  double t_fetch = bench_time(run_fetch, &fa, min_s);
  mailproto_imap_free(e.s);

  print_arg pa = {printed, cap + 64, messages};
  double t_print = bench_time(run_snprintf, &pa, min_s);
  copy_arg ca = {resp, copy, cap};
  double t_copy = bench_time(run_memcpy, &ca, min_s);

  printf("\nIMAP \"UID FETCH 1:* (UID FLAGS)\" on %zu messages (memory "
         "store, %zu response bytes)%s\n",
         messages, cap, quick ? " (quick mode: figures not meaningful)" : "");
  printf("  %-40s %14s %10s %12s\n", "", "messages/s", "MB/s", "vs snprintf");
  printf("  %-40s %14.0f %10.1f %12s\n", "(reference) memcpy of the response",
         (double)messages / t_copy, (double)cap / t_copy / 1e6, "");
  printf("  %-40s %14.0f %10.1f %12s\n", "(reference) snprintf of the lines",
         (double)messages / t_print, (double)cap / t_print / 1e6, "1.00");
  printf("  %-40s %14.0f %10.1f %12.2f\n", "session: parse, view, write",
         (double)messages / t_fetch, (double)cap / t_fetch / 1e6,
         t_print / t_fetch);
  free(resp);
  free(copy);
  free(printed);
}

/* ------------------------------------------------------------------ */
/* Idle sessions                                                       */
/* ------------------------------------------------------------------ */

typedef struct idle_case {
  const char *label;
  const char *user;
  size_t messages;
  int select;
} idle_case;

static void idle_table(mailproto_memstore *ms, const idle_case *cases,
                       size_t count) {
  printf("\nIMAP idle authenticated session (default config; the session's "
         "allocator only, not the store's)\n");
  printf("  goal: at most 2048 bytes + 16 bytes per message of the selected "
         "mailbox\n");
  printf("  %-38s %10s %7s %10s %8s  %s\n", "when", "bytes", "blocks", "goal",
         "per msg", "");
  int all_met = 1;
  for (size_t i = 0; i < count; i++) {
    alloc_fail af;
    alloc_fail_init(&af, 0);
    env e;
    session_open(&e, ms, &af.allocator);
    login(&e, cases[i].user);
    if (cases[i].select)
      command(&e, "s", "s SELECT INBOX\r\n");
    size_t bytes = af.live_bytes;
    long blocks = af.live;
    mailproto_imap_free(e.s);
    if (af.live != 0)
      die("session leaked", 0);
    size_t goal = 2048 + 16 * cases[i].messages;
    int met = bytes <= goal;
    all_met &= met;
    char per[32] = "";
    if (cases[i].messages)
      snprintf(per, sizeof per, "%.1f",
               (double)bytes / (double)cases[i].messages);
    printf("  %-38s %10zu %7ld %10zu %8s  %s\n", cases[i].label, bytes, blocks,
           goal, per, met ? "met" : "NOT met");
  }
  printf("  overall: %s (bytes asked of the allocator; malloc adds its own "
         "header to each block)\n",
         all_met ? "met" : "NOT met");
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.01 : 0.5;
  size_t big = quick ? 5000 : 100000;

  parse_table(quick, min_s);

  mailproto_memstore *ms;
  int rc = mailproto_memstore_new(NULL, &ms);
  static const char *const users[] = {"big", "k1", "empty"};
  for (size_t i = 0; rc == 0 && i < 3; i++)
    rc = mailproto_memstore_add_user(ms, users[i], "pw");
  if (rc != 0)
    die("memstore", rc);
  fill_user(ms, "big", big);
  fill_user(ms, "k1", 1000);

  fetch_table(ms, "big", big, min_s, quick);

  char big_label[64];
  snprintf(big_label, sizeof big_label, "after SELECT, %zu messages", big);
  const idle_case cases[] = {
      {"after login", "empty", 0, 0},
      {"after SELECT, empty mailbox", "empty", 0, 1},
      {"after SELECT, 1000 messages", "k1", 1000, 1},
      {big_label, "big", big, 1},
  };
  idle_table(ms, cases, sizeof cases / sizeof cases[0]);
  mailproto_memstore_free(ms);
  return 0;
}
