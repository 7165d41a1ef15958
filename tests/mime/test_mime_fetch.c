/*
 * FETCH items built on the MIME structure, through a real IMAP session,
 * for what transcripts cannot show: the store cache hook (a second FETCH
 * BODYSTRUCTURE reads no message byte; a damaged or lying entry is parsed
 * again with the same answer, issue 8), and sections far larger than one
 * store read and the output watermark, streamed through a transport that
 * takes a few bytes at a time and a store that defers every read, with
 * the data checked byte for byte and the queue bounded. Also what goes
 * wrong when the stored bytes no longer match a cached tree (the entry
 * is dropped; a counting pass that fails gives NIL and NO), Maildir
 * entries tied to their message file (and no symlink or FIFO followed),
 * ENVELOPE reading only the header, and a large structure's buffer
 * given back before the next message.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_adapter.h"
#include "mailproto/imap.h"
#include "mailproto/maildir.h"
#include "mailproto/memstore.h"
#include "suites.h"
#include "support/faultstore.h"

/* ------------------------------------------------------------------ */
/* A session over a store wrapper that counts reads and may damage      */
/* cache entries                                                         */
/* ------------------------------------------------------------------ */

typedef struct harness {
  mailproto_memstore *ms;
  mailproto_store inner;   /* the memstore */
  mailproto_store_ops ops; /* its hooks, read and cache_get wrapped */
  mailproto_store st;      /* what the session uses */
  faultstore *fs;          /* NULL, or deferring every op over `ops` */
  mailproto_imap *s;
  unsigned long reads;
  int read_mode;       /* 0: plain; 1: every read fails; 2: ends at once */
  unsigned long drops; /* cache_put with len 0 (store.h: drop) */
  unsigned long puts;  /* other cache_put calls */
  int damage; /* 1: flip a byte of every entry; 2: serve another entry */
  uint8_t entry[1 << 16];
  uint8_t other[1 << 16]; /* the first entry ever put (damage 2) */
  size_t other_len;
  size_t take; /* bytes the transport takes per send */
  uint8_t *out;
  size_t out_len, out_cap;
  size_t scanned;    /* output already searched for the tagged reply */
  const char *watch; /* when this first shows in the output: */
  size_t live_at;    /* the session's live heap bytes then */
} harness;

/* A counting allocator for the session: each block carries its size in
 * a header that keeps the block aligned for any type. */
typedef union heap_hdr {
  size_t n;
  max_align_t align;
} heap_hdr;

static size_t heap_live;

static void *c_malloc(size_t n, void *u) {
  (void)u;
  heap_hdr *p = malloc(n + sizeof *p);
  if (!p)
    return NULL;
  p->n = n;
  heap_live += n;
  return p + 1;
}

static void c_free(void *ptr, void *u) {
  (void)u;
  if (!ptr)
    return;
  heap_hdr *p = (heap_hdr *)ptr - 1;
  heap_live -= p->n;
  free(p);
}

static void *c_realloc(void *ptr, size_t n, void *u) {
  if (!ptr)
    return c_malloc(n, u);
  heap_hdr *p = (heap_hdr *)ptr - 1;
  size_t old = p->n;
  heap_hdr *q = realloc(p, n + sizeof *q);
  if (!q)
    return NULL;
  q->n = n;
  heap_live = heap_live - old + n;
  return q + 1;
}

static const mailproto_allocator counting = {c_malloc, c_realloc, c_free, NULL};
static const mailproto_allocator *next_alloc; /* for the next start_on */

static harness *self; /* the hooks get the memstore as ctx */

static int w_read(void *ctx, mailproto_op *op, void *mbx, uint32_t uid,
                  uint64_t off, size_t max, const uint8_t **data, size_t *len) {
  self->reads++;
  if (self->read_mode == 1)
    return MAILPROTO_ERR_IO;
  int rc = self->inner.ops->read(ctx, op, mbx, uid, off, max, data, len);
  if (rc == 0 && self->read_mode == 2)
    *len = 0; /* the stored bytes end here (a file cut short) */
  return rc;
}

static int w_cache_get(void *ctx, void *mbx, uint32_t uid, const uint8_t **data,
                       size_t *len) {
  int rc = self->inner.ops->cache_get(ctx, mbx, uid, data, len);
  if (rc != 0 || !self->damage || *len > sizeof self->entry)
    return rc;
  if (self->damage == 2) {
    *data = self->other;
    *len = self->other_len;
    return 0;
  }
  memcpy(self->entry, *data, *len);
  self->entry[*len / 2] ^= 0x40;
  *data = self->entry;
  return 0;
}

static int w_cache_put(void *ctx, void *mbx, uint32_t uid, const uint8_t *data,
                       size_t len) {
  if (len == 0)
    self->drops++;
  else
    self->puts++;
  if (self->other_len == 0 && len > 0 && len <= sizeof self->other) {
    memcpy(self->other, data, len);
    self->other_len = len;
  }
  return self->inner.ops->cache_put(ctx, mbx, uid, data, len);
}

static ptrdiff_t on_send(mailproto_imap *s, const uint8_t *data, size_t len,
                         void *arg) {
  harness *h = arg;
  (void)s;
  if (len > h->take)
    len = h->take;
  if (h->out_len + len > h->out_cap) {
    size_t cap = (h->out_len + len) * 2 + 4096;
    h->out = realloc(h->out, cap);
    ck_assert_ptr_nonnull(h->out);
    h->out_cap = cap;
  }
  memcpy(h->out + h->out_len, data, len);
  size_t from = h->out_len > 64 ? h->out_len - 64 : 0;
  h->out_len += len;
  if (h->watch && h->live_at == 0) {
    size_t w = strlen(h->watch);
    for (size_t i = from; i + w <= h->out_len; i++)
      if (memcmp(h->out + i, h->watch, w) == 0) {
        h->live_at = heap_live;
        break;
      }
  }
  return (ptrdiff_t)len;
}

/* A session over `inner`, or over a new memory store when it is NULL. */
static void start_on(harness *h, const mailproto_store *inner, int defer,
                     size_t watermark, size_t take) {
  memset(h, 0, sizeof *h);
  self = h;
  h->take = take;
  if (inner) {
    h->inner = *inner;
  } else {
    ck_assert_int_eq(mailproto_memstore_new(NULL, &h->ms), 0);
    ck_assert_int_eq(mailproto_memstore_add_user(h->ms, "alice", "secret"), 0);
    mailproto_memstore_store(h->ms, &h->inner);
  }
  h->ops = *h->inner.ops;
  h->ops.read = w_read;
  h->ops.cache_get = w_cache_get;
  h->ops.cache_put = w_cache_put;
  h->st.ops = &h->ops;
  h->st.ctx = h->inner.ctx;
  if (defer) {
    mailproto_store wrapped = h->st;
    ck_assert_int_eq(faultstore_new(&h->st, NULL, &h->fs), 0);
    faultstore_defer_all(h->fs, 1);
    faultstore_store(h->fs, &wrapped);
    h->st = wrapped;
  }
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  c.allow_insecure_auth = 1;
  c.output_watermark = watermark;
  c.allocator = next_alloc;
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  ck_assert_int_eq(mailproto_imap_new(&c, &cb, &h->st, h, &h->s), 0);
}

static void start(harness *h, int defer, size_t watermark, size_t take) {
  start_on(h, NULL, defer, watermark, take);
}

static void finish(harness *h) {
  mailproto_imap_free(h->s);
  if (h->fs)
    faultstore_free(h->fs);
  if (h->ms)
    mailproto_memstore_free(h->ms);
  free(h->out);
  self = NULL;
}

static void add_message(harness *h, const void *data, size_t len) {
  ck_assert_int_eq(
      imap_test_append(h->ms, "alice", "INBOX", data, len, 0, NULL, 0), 0);
}

/* Runs until the tagged reply `tag` is out; returns its start. */
static size_t run_until(harness *h, const char *tag) {
  char want[64];
  size_t n = (size_t)snprintf(want, sizeof want, "\r\n%s ", tag);
  h->scanned = 0;
  for (int turns = 0; turns < 10000000; turns++) {
    size_t i = h->scanned;
    for (; i + n <= h->out_len; i++)
      if (memcmp(h->out + i, want, n) == 0) {
        if (memchr(h->out + i + n, '\n', h->out_len - i - n))
          return i + 2;
        break; /* the reply line is not complete yet */
      }
    h->scanned = i;
    if (h->fs)
      ck_assert_int_ge(faultstore_run_pending(h->fs), 0);
    ck_assert_int_eq(mailproto_imap_writable(h->s), 0);
  }
  ck_abort_msg("no reply %s", tag);
  return 0;
}

/* Feeds a command as the session takes it (not while it waits for the
 * store). */
static void command(harness *h, const char *line) {
  size_t n = strlen(line), done = 0;
  for (int turns = 0; done < n && turns < 1000000; turns++) {
    ptrdiff_t k =
        mailproto_imap_feed(h->s, (const uint8_t *)line + done, n - done);
    ck_assert_int_ge(k, 0);
    done += (size_t)k;
    if (done < n) {
      if (h->fs)
        ck_assert_int_ge(faultstore_run_pending(h->fs), 0);
      ck_assert_int_eq(mailproto_imap_writable(h->s), 0);
    }
  }
  ck_assert_uint_eq(done, n);
}

/* The first line of a response (without the tagged reply). */
static size_t first_line(const char *s) {
  return strcspn(s, "\n");
}

/* Logs in and selects INBOX; clears the output. */
static void open_inbox(harness *h) {
  ck_assert_int_eq(mailproto_imap_start(h->s), 0);
  command(h, "a LOGIN alice secret\r\n");
  run_until(h, "a");
  command(h, "b SELECT INBOX\r\n");
  run_until(h, "b");
  h->out_len = 0;
}

/* The output of one command, NUL-terminated (a copy to free). */
static char *answer(harness *h, const char *line, const char *tag) {
  h->out_len = 0;
  command(h, line);
  size_t end = run_until(h, tag);
  (void)end;
  char *copy = malloc(h->out_len + 1);
  ck_assert_ptr_nonnull(copy);
  memcpy(copy, h->out, h->out_len);
  copy[h->out_len] = '\0';
  return copy;
}

static const char forwarded[] =
    "From: a@example.org\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
    "--b\r\nContent-Type: message/rfc822\r\n\r\n"
    "From: c@example.org\r\nSubject: inner\r\n\r\ninner text\r\n"
    "--b--\r\n";

/* ------------------------------------------------------------------ */
/* The cache hook                                                       */
/* ------------------------------------------------------------------ */

static void cache_case(int defer) {
  harness h;
  start(&h, defer, 16384, 1 << 20);
  add_message(&h, forwarded, sizeof forwarded - 1);
  open_inbox(&h);
  char *first = answer(&h, "c FETCH 1 BODYSTRUCTURE\r\n", "c");
  ck_assert_ptr_nonnull(strstr(first, "(\"message\" \"rfc822\""));
  ck_assert_uint_gt(h.reads, 0);
  ck_assert_uint_gt(h.other_len, 0); /* the tree was offered to the cache */
  /* a second FETCH of the structure, a new command: no message byte read */
  h.reads = 0;
  char *second = answer(&h, "d FETCH 1 (BODYSTRUCTURE ENVELOPE BODY)\r\n", "d");
  ck_assert_uint_eq(h.reads, 0);
  ck_assert_int_eq(strncmp(first, second, strlen("* 1 FETCH (BODYSTRUCTURE")),
                   0);
  /* sections read only their own bytes, located by the cached tree */
  char *text = answer(&h, "e FETCH 1 BODY.PEEK[2.1]\r\n", "e");
  ck_assert_str_eq(text, "* 1 FETCH (BODY[2.1] {10}\r\ninner text)\r\n"
                         "e OK FETCH completed\r\n");
  ck_assert_uint_eq(h.reads, 1);
  /* a damaged entry fails validation: parsed again, the same answer */
  h.damage = 1;
  h.reads = 0;
  char *third = answer(&h, "f FETCH 1 BODYSTRUCTURE\r\n", "f");
  ck_assert_uint_gt(h.reads, 0);
  ck_assert_uint_eq(first_line(first), first_line(third));
  ck_assert_int_eq(strncmp(first, third, first_line(first)), 0);
  free(text);
  free(first);
  free(second);
  free(third);
  finish(&h);
}

START_TEST(test_mime_fetch_cache_saves_the_parse) {
  cache_case(0);
}
END_TEST

START_TEST(test_mime_fetch_cache_saves_the_parse_deferred) {
  cache_case(1);
}
END_TEST

START_TEST(test_mime_fetch_cache_entry_of_another_message) {
  /* A valid entry describing another message: its sizes do not match the
   * message's RFC822.SIZE, so it is not used. */
  harness h;
  start(&h, 0, 16384, 1 << 20);
  add_message(&h, forwarded, sizeof forwarded - 1);
  static const char plain[] = "Subject: x\r\n\r\nplain body\r\n";
  add_message(&h, plain, sizeof plain - 1);
  open_inbox(&h);
  char *one = answer(&h, "c FETCH 1 BODYSTRUCTURE\r\n", "c");
  free(one);
  h.damage = 2; /* every lookup now serves message 1's entry */
  h.reads = 0;
  char *two = answer(&h, "d FETCH 2 BODYSTRUCTURE\r\n", "d");
  ck_assert_uint_gt(h.reads, 0);
  ck_assert_str_eq(two, "* 2 FETCH (BODYSTRUCTURE (\"text\" \"plain\" "
                        "(\"charset\" \"us-ascii\") NIL NIL \"7bit\" 12 1 "
                        "NIL NIL NIL NIL))\r\nd OK FETCH completed\r\n");
  free(two);
  finish(&h);
}
END_TEST

/* A Maildir store at `root` with user alice, and a session on it that
 * has logged in; free with finish(h) then mailproto_maildir_free. */
static mailproto_maildir *maildir_session(const char *root, harness *h) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = 0;
  mailproto_maildir *md;
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &md), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(md, "alice", "secret"), 0);
  mailproto_store st;
  mailproto_maildir_store(md, &st);
  start_on(h, &st, 0, 16384, 1 << 20);
  ck_assert_int_eq(mailproto_imap_start(h->s), 0);
  command(h, "a LOGIN alice secret\r\n");
  run_until(h, "a");
  return md;
}

/* APPENDs `msg` to INBOX through the session. */
static void append_message(harness *h, const char *msg) {
  char append[64];
  snprintf(append, sizeof append, "b APPEND INBOX {%zu+}\r\n", strlen(msg));
  command(h, append);
  command(h, msg);
  command(h, "\r\n");
  run_until(h, "b");
}

START_TEST(test_mime_fetch_maildir_cache_survives_restart) {
  /* The Maildir store keeps entries in files: a new store object (a
   * restarted server) answers the second FETCH without reading. */
  char root[256];
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/mailproto-mimefetch-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(root));
  char *answers[2];
  for (int round = 0; round < 2; round++) {
    harness h;
    mailproto_maildir *md = maildir_session(root, &h);
    if (round == 0)
      append_message(&h, forwarded);
    command(&h, "c SELECT INBOX\r\n");
    run_until(&h, "c");
    h.reads = 0;
    answers[round] = answer(&h, "d FETCH 1 BODYSTRUCTURE\r\n", "d");
    if (round == 0)
      ck_assert_uint_gt(h.reads, 0);
    else
      ck_assert_uint_eq(h.reads, 0);
    finish(&h);
    mailproto_maildir_free(md);
  }
  ck_assert_str_eq(answers[0], answers[1]);
  ck_assert_ptr_nonnull(strstr(answers[0], "\"message\" \"rfc822\""));
  free(answers[0]);
  free(answers[1]);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_mime_fetch_short_section_drops_entry) {
  /* The cached tree announces BODY[1] as 9 octets but the store now ends
   * at once (a file cut short behind the server's back): the literal
   * cannot be completed, so the connection closes, and the entry is
   * dropped first (store.h: cache_put with len 0), so the next session
   * parses the message again instead of disconnecting on every FETCH. */
  harness h;
  start(&h, 0, 16384, 1 << 20);
  add_message(&h, forwarded, sizeof forwarded - 1);
  open_inbox(&h);
  free(answer(&h, "c FETCH 1 BODYSTRUCTURE\r\n", "c"));
  ck_assert_uint_eq(h.puts, 1);
  h.read_mode = 2;
  h.out_len = 0;
  command(&h, "d FETCH 1 BODY.PEEK[1]\r\n");
  for (int i = 0; i < 100 && !mailproto_imap_closed(h.s); i++)
    ck_assert_int_eq(mailproto_imap_writable(h.s), 0);
  ck_assert(mailproto_imap_closed(h.s));
  ck_assert_uint_eq(h.drops, 1);
  /* a new session over the same memory store: the entry is gone */
  harness h2;
  start_on(&h2, &h.inner, 0, 16384, 1 << 20);
  open_inbox(&h2);
  char *again = answer(&h2, "e FETCH 1 BODY.PEEK[1]\r\n", "e");
  ck_assert_str_eq(again, "* 1 FETCH (BODY[1] {9}\r\nsee below)\r\n"
                          "e OK FETCH completed\r\n");
  ck_assert_uint_gt(h2.reads, 1); /* parsed, then the section read */
  free(again);
  finish(&h2);
  self = &h;
  finish(&h);
}
END_TEST

START_TEST(test_mime_fetch_tree_of_other_bytes_not_offered) {
  /* The store's read ends at once, so the parse sees an empty message
   * whose size is not the message's RFC822.SIZE: that tree is not
   * offered to the cache, where every later FETCH would find it. */
  harness h;
  start(&h, 0, 16384, 1 << 20);
  add_message(&h, forwarded, sizeof forwarded - 1);
  open_inbox(&h);
  h.read_mode = 2;
  free(answer(&h, "c FETCH 1 BODYSTRUCTURE\r\n", "c"));
  ck_assert_uint_eq(h.puts, 0);
  h.read_mode = 0;
  free(answer(&h, "d FETCH 1 BODYSTRUCTURE\r\n", "d"));
  ck_assert_uint_eq(h.puts, 1);
  finish(&h);
}
END_TEST

START_TEST(test_mime_fetch_counting_pass_error_is_nil) {
  /* BINARY takes a counting pass before its literal (RFC 3516 4.3): a
   * read error there comes before any of the literal is out, so the item
   * is NIL, the FETCH ends with NO and the session goes on. BINARY.SIZE
   * of this 7bit part needs no read (the structure knows its size); of a
   * base64 part it counts, and having no NIL form it is answered as
   * BINARY[1] NIL. */
  static const char encoded[] =
      "Subject: b64\r\nMIME-Version: 1.0\r\n"
      "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n"
      "\r\nc2VlIGJlbG93\r\n";
  harness h;
  start(&h, 0, 16384, 1 << 20);
  add_message(&h, forwarded, sizeof forwarded - 1);
  add_message(&h, encoded, sizeof encoded - 1);
  open_inbox(&h);
  free(answer(&h, "c FETCH 1:2 BODYSTRUCTURE\r\n", "c"));
  h.read_mode = 1;
  char *nil =
      answer(&h, "d FETCH 1 (UID BINARY.PEEK[1] BINARY.SIZE[1])\r\n", "d");
  ck_assert_str_eq(nil, "* 1 FETCH (UID 1 BINARY[1] NIL BINARY.SIZE[1] 9)\r\n"
                        "d NO [UNAVAILABLE] Some messages could not be "
                        "read\r\n");
  free(nil);
  nil = answer(&h, "f FETCH 2 (UID BINARY.SIZE[1])\r\n", "f");
  ck_assert_str_eq(nil, "* 2 FETCH (UID 2 BINARY[1] NIL)\r\n"
                        "f NO [UNAVAILABLE] Some messages could not be "
                        "read\r\n");
  ck_assert(!mailproto_imap_closed(h.s));
  ck_assert_uint_ge(h.drops, 1);
  h.read_mode = 0;
  char *ok = answer(&h, "e FETCH 1 BINARY.PEEK[1]\r\n", "e");
  ck_assert_str_eq(ok, "* 1 FETCH (BINARY[1] {9}\r\nsee below)\r\n"
                       "e OK FETCH completed\r\n");
  free(nil);
  free(ok);
  finish(&h);
}
END_TEST

/* The one message file under root (popen of find: a test may). */
static void message_file(const char *root, char *out, size_t size) {
  char cmd[600];
  snprintf(cmd, sizeof cmd,
           "find '%s' -type f \\( -path '*/cur/*' -o -path '*/new/*' \\)",
           root);
  FILE *p = popen(cmd, "r");
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_nonnull(fgets(out, (int)size, p));
  out[strcspn(out, "\n")] = '\0';
  pclose(p);
}

static char *maildir_fetch(const char *root, const char *line,
                           unsigned long *reads) {
  harness h;
  mailproto_maildir *md = maildir_session(root, &h);
  command(&h, "s SELECT INBOX\r\n");
  run_until(&h, "s");
  char *a = answer(&h, line, "z");
  *reads = h.reads;
  finish(&h);
  mailproto_maildir_free(md);
  return a;
}

START_TEST(test_mime_fetch_maildir_entry_tied_to_file) {
  /* A Maildir entry names the file it was made from: another program
   * replacing the file (same name, same size, other structure) makes it
   * a miss, not a wrong BODYSTRUCTURE. A FIFO planted as an entry must
   * not block the server, and a symlinked cache directory is not
   * followed. Temporary files go to the folder's tmp/. */
  static const char one[] = "Subject: x\r\n\r\naaaa\r\n";
  static const char two[] = "Subject: x\r\nA:\r\n\r\n\r\n";
  ck_assert_uint_eq(sizeof one, sizeof two);
  char root[256], file[1024], cmd[2400];
  const char *tmp = getenv("TMPDIR");
  snprintf(root, sizeof root, "%s/mailproto-mimeid-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(root));
  {
    harness h;
    mailproto_maildir *md = maildir_session(root, &h);
    append_message(&h, one);
    finish(&h);
    mailproto_maildir_free(md);
  }
  unsigned long reads;
  char *a = maildir_fetch(root, "z FETCH 1 BODYSTRUCTURE\r\n", &reads);
  ck_assert_ptr_nonnull(strstr(a, "\"7bit\" 6 1 "));
  free(a);
  a = maildir_fetch(root, "z FETCH 1 BODYSTRUCTURE\r\n", &reads);
  ck_assert_uint_eq(reads, 0); /* the entry */
  free(a);
  /* no temporary file left in the cache directory */
  message_file(root, file, sizeof file);
  snprintf(cmd, sizeof cmd,
           "test -z \"$(find '%s' -path '*mailproto-cache/*' -name '*tmp*')\"",
           root);
  ck_assert_int_eq(system(cmd), 0);
  /* another program rewrites the file in place: same name, same size */
  FILE *w = fopen(file, "wb");
  ck_assert_ptr_nonnull(w);
  ck_assert_uint_eq(fwrite(two, 1, sizeof two - 1, w), sizeof two - 1);
  ck_assert_int_eq(fclose(w), 0);
  snprintf(cmd, sizeof cmd, "touch -d '2001-01-01' '%s'", file);
  ck_assert_int_eq(system(cmd), 0);
  a = maildir_fetch(root, "z FETCH 1 BODYSTRUCTURE\r\n", &reads);
  ck_assert_uint_gt(reads, 0); /* parsed again */
  ck_assert_ptr_nonnull(strstr(a, "\"7bit\" 2 1 "));
  free(a);
  /* every entry a FIFO: a miss, at once */
  snprintf(cmd, sizeof cmd,
           "for e in $(find '%s' -path '*mailproto-cache/*' -type f); do "
           "rm \"$e\" && mkfifo \"$e\"; done",
           root);
  ck_assert_int_eq(system(cmd), 0);
  a = maildir_fetch(root, "z FETCH 1 BODYSTRUCTURE\r\n", &reads);
  ck_assert_uint_gt(reads, 0);
  ck_assert_ptr_nonnull(strstr(a, "\"7bit\" 2 1 "));
  free(a);
  /* the cache directory a symlink to elsewhere: neither read nor written */
  snprintf(cmd, sizeof cmd,
           "d=$(dirname $(dirname '%s'))/mailproto-cache && rm -rf \"$d\" && "
           "mkdir '%s/elsewhere' && ln -s '%s/elsewhere' \"$d\"",
           file, root, root);
  ck_assert_int_eq(system(cmd), 0);
  for (int i = 0; i < 2; i++) {
    a = maildir_fetch(root, "z FETCH 1 BODYSTRUCTURE\r\n", &reads);
    ck_assert_uint_gt(reads, 0);
    free(a);
  }
  snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s/elsewhere')\"", root);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Large sections, slow transport, deferred reads                      */
/* ------------------------------------------------------------------ */

enum { BIG = 300000 };

/* A message with a BIG-byte binary attachment in base64 (76-character
 * lines) and a text part with bare LF line ends. */
static char *big_message(const uint8_t *bin, size_t *len) {
  static const char head[] =
      "Subject: big\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"zz\"\r\n\r\n"
      "--zz\r\nContent-Type: text/plain\r\n\r\nline\nline\n"
      "--zz\r\nContent-Type: application/octet-stream\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  static const char tail[] = "--zz--\r\n";
  size_t cap = sizeof head + BIG * 2 + sizeof tail;
  char *m = malloc(cap);
  ck_assert_ptr_nonnull(m);
  size_t n = sizeof head - 1;
  memcpy(m, head, n);
  for (size_t off = 0; off < BIG; off += 57) {
    size_t k = BIG - off < 57 ? BIG - off : 57;
    char line[80];
    long w = mailproto_base64_encode(bin + off, k, line, sizeof line);
    ck_assert_int_gt(w, 0);
    memcpy(m + n, line, (size_t)w);
    n += (size_t)w;
    memcpy(m + n, "\r\n", 2);
    n += 2;
  }
  memcpy(m + n, tail, sizeof tail - 1);
  n += sizeof tail - 1;
  *len = n;
  return m;
}

static void big_case(int defer, size_t watermark, size_t take) {
  uint8_t *bin = malloc(BIG);
  ck_assert_ptr_nonnull(bin);
  uint32_t x = 12345;
  for (size_t i = 0; i < BIG; i++) {
    x = x * 1103515245u + 12345u;
    bin[i] = (uint8_t)(x >> 16);
  }
  bin[10] = 0; /* a NUL: literal8 */
  size_t mlen;
  char *msg = big_message(bin, &mlen);
  harness h;
  start(&h, defer, watermark, take);
  add_message(&h, msg, mlen);
  open_inbox(&h);
  char *size = answer(&h, "c FETCH 1 BINARY.SIZE[2]\r\n", "c");
  ck_assert_str_eq(size, "* 1 FETCH (BINARY.SIZE[2] 300000)\r\n"
                         "c OK FETCH completed\r\n");
  free(size);
  h.out_len = 0;
  command(&h, "d FETCH 1 (BINARY.PEEK[2] BINARY.PEEK[2]<299990.100> "
              "BODY.PEEK[1])\r\n");
  run_until(&h, "d");
  static const char pre[] = "* 1 FETCH (BINARY[2] ~{300000}\r\n";
  ck_assert_uint_gt(h.out_len, sizeof pre + BIG);
  ck_assert_int_eq(memcmp(h.out, pre, sizeof pre - 1), 0);
  ck_assert_int_eq(memcmp(h.out + sizeof pre - 1, bin, BIG), 0);
  const char *rest = (const char *)h.out + sizeof pre - 1 + BIG;
  /* literal8 only when the window itself holds a NUL */
  const char *win = memchr(bin + BIG - 10, 0, 10)
                        ? " BINARY[2]<299990> ~{10}\r\n"
                        : " BINARY[2]<299990> {10}\r\n";
  ck_assert_int_eq(memcmp(rest, win, strlen(win)), 0);
  ck_assert_int_eq(memcmp(rest + strlen(win), bin + BIG - 10, 10), 0);
  rest += strlen(win) + 10;
  /* bare LF sent as CRLF; the last line break belongs to the boundary */
  static const char text[] = " BODY[1] {10}\r\nline\r\nline)\r\n"
                             "d OK FETCH completed\r\n";
  ck_assert_int_eq(memcmp(rest, text, sizeof text - 1), 0);
  /* the whole literal went through the store in bounded reads */
  ck_assert_uint_gt(h.reads, 4);
  free(msg);
  free(bin);
  finish(&h);
}

START_TEST(test_mime_fetch_envelope_reads_only_header) {
  /* ENVELOPE and BODY.PEEK[HEADER.FIELDS (...)] of the message itself
   * are what clients ask for every message on a first sync: they read
   * the top-level header, not the 400 KB attachment behind it, and the
   * partial tree is not offered to the cache. */
  uint8_t *bin = calloc(1, BIG);
  ck_assert_ptr_nonnull(bin);
  size_t mlen;
  char *msg = big_message(bin, &mlen);
  harness h;
  start(&h, 0, 16384, 1 << 20);
  add_message(&h, msg, mlen);
  open_inbox(&h);
  h.reads = 0;
  char *env = answer(&h,
                     "c FETCH 1 (ENVELOPE BODY.PEEK[HEADER.FIELDS "
                     "(Subject)] RFC822.SIZE)\r\n",
                     "c");
  ck_assert_ptr_nonnull(strstr(env, "ENVELOPE (NIL \"big\" "));
  ck_assert_ptr_nonnull(strstr(
      env, "BODY[HEADER.FIELDS (Subject)] {16}\r\nSubject: big\r\n\r\n"));
  /* the parse (one read), the fields' counting pass and their bytes */
  ck_assert_uint_le(h.reads, 3);
  ck_assert_uint_eq(h.puts, 0);
  /* a full structure afterwards is parsed whole and cached */
  h.reads = 0;
  char *bs = answer(&h, "d FETCH 1 BODYSTRUCTURE\r\n", "d");
  ck_assert_ptr_nonnull(strstr(bs, "\"base64\" "));
  ck_assert_uint_gt(h.reads, 4);
  ck_assert_uint_eq(h.puts, 1);
  free(env);
  free(bs);
  free(msg);
  free(bin);
  finish(&h);
}
END_TEST

START_TEST(test_mime_fetch_large_structure_not_kept) {
  /* A structure far larger than the message (an ENVELOPE of a To with
   * 30,000 two-byte addresses is ~10 times its header) is written whole
   * before it drains; its buffer is given back once it is out, not kept
   * while the next messages of the same FETCH are answered. */
  size_t n = 30000;
  char *msg = malloc(n * 2 + 64);
  ck_assert_ptr_nonnull(msg);
  size_t k = 0;
  memcpy(msg, "To: ", 4);
  k = 4;
  for (size_t i = 0; i < n; i++, k += 2)
    memcpy(msg + k, i + 1 < n ? "a," : "a\r", 2);
  static const char rest[] = "\nSubject: s\r\n\r\nx\r\n";
  memcpy(msg + k, rest, sizeof rest);
  harness h;
  heap_live = 0;
  next_alloc = &counting;
  start(&h, 0, 16384, 1 << 20);
  next_alloc = NULL;
  add_message(&h, msg, strlen(msg));
  /* message 2's text streams in pieces as the transport drains: the
   * heap is sampled while it does */
  size_t big = 200000;
  char *two = malloc(big + 32);
  ck_assert_ptr_nonnull(two);
  memcpy(two, "Subject: t\r\n\r\n", 15);
  memset(two + 15, 'y', big);
  add_message(&h, two, 15 + big);
  open_inbox(&h);
  size_t before = heap_live;
  h.watch = "* 2 FETCH";
  char *a = answer(&h, "c FETCH 1:2 (ENVELOPE BODY.PEEK[TEXT])\r\n", "c");
  ck_assert_uint_gt(strlen(a), n * 15); /* the structure was large */
  ck_assert_uint_gt(h.live_at, 0);
  ck_assert_uint_lt(h.live_at, before + 128 * 1024);
  free(a);
  free(msg);
  free(two);
  finish(&h);
}
END_TEST

START_TEST(test_mime_fetch_big_binary_slow_transport) {
  big_case(0, 4096, 1000);
}
END_TEST

START_TEST(test_mime_fetch_big_binary_deferred_reads) {
  big_case(1, 64, 7);
}
END_TEST

START_TEST(test_mime_fetch_big_binary_fast) {
  big_case(0, 1u << 20, 1u << 30);
}
END_TEST

Suite *suite_mime_fetch(void) {
  Suite *s = suite_create("mime_fetch");
  TCase *c = tcase_create("cache");
  tcase_add_test(c, test_mime_fetch_cache_saves_the_parse);
  tcase_add_test(c, test_mime_fetch_cache_saves_the_parse_deferred);
  tcase_add_test(c, test_mime_fetch_cache_entry_of_another_message);
  tcase_add_test(c, test_mime_fetch_maildir_cache_survives_restart);
  tcase_add_test(c, test_mime_fetch_short_section_drops_entry);
  tcase_add_test(c, test_mime_fetch_tree_of_other_bytes_not_offered);
  tcase_add_test(c, test_mime_fetch_counting_pass_error_is_nil);
  tcase_add_test(c, test_mime_fetch_maildir_entry_tied_to_file);
  suite_add_tcase(s, c);
  TCase *b = tcase_create("streaming");
  tcase_set_timeout(b, 120);
  tcase_add_test(b, test_mime_fetch_envelope_reads_only_header);
  tcase_add_test(b, test_mime_fetch_large_structure_not_kept);
  tcase_add_test(b, test_mime_fetch_big_binary_slow_transport);
  tcase_add_test(b, test_mime_fetch_big_binary_deferred_reads);
  tcase_add_test(b, test_mime_fetch_big_binary_fast);
  suite_add_tcase(s, b);
  return s;
}
