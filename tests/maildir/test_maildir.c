/*
 * The Maildir store: the conformance suite (directly, and through the
 * fault store with every operation deferred), then what only a Maildir
 * promises: the files other programs see, crash safety, several
 * processes, names that cannot escape the root, damaged index files.
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/op.h"
#include "maildir/maildir_internal.h"
#include "mailproto/maildir.h"
#include "store/conformance.h"
#include "store/store_call.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"
#include "support/overread.h"

/* ------------------------------------------------------------------ */
/* Temporary roots                                                     */
/* ------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    return rmdir(path);
  return unlink(path);
}

static void rm_tree(const char *path) {
  nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under $TMPDIR (or /tmp). */
static void make_root(char *out, size_t size) {
  const char *t = getenv("TMPDIR");
  snprintf(out, size, "%s/mailproto-maildir-XXXXXX", t && *t ? t : "/tmp");
  ck_assert_ptr_nonnull(mkdtemp(out));
}

static mailproto_maildir *open_store(const char *root, int fsync_on,
                                     const mailproto_allocator *a) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = fsync_on;
  cfg.allocator = a;
  mailproto_maildir *m = NULL;
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &m), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "bob", "hunter2"), 0);
  return m;
}

/* ------------------------------------------------------------------ */
/* Conformance backends                                                */
/* ------------------------------------------------------------------ */

typedef struct md_backend {
  char root[256];
  mailproto_maildir *m;
  mailproto_store inner;
  faultstore *fault;
} md_backend;

static int mb_create(void *arg, mailproto_store *out, void **handle) {
  int deferred = *(const int *)arg;
  md_backend *b = calloc(1, sizeof *b);
  if (!b)
    return MAILPROTO_ERR_NOMEM;
  make_root(b->root, sizeof b->root);
  /* fsync on for the direct run (the real configuration), off through the
   * fault store (same code paths, faster). */
  b->m = open_store(b->root, !deferred, NULL);
  mailproto_maildir_store(b->m, &b->inner);
  *out = b->inner;
  if (deferred) {
    ck_assert_int_eq(faultstore_new(&b->inner, NULL, &b->fault), 0);
    faultstore_defer_all(b->fault, 1);
    faultstore_store(b->fault, out);
  }
  *handle = b;
  return 0;
}

static void mb_destroy(void *handle) {
  md_backend *b = handle;
  if (b->fault) {
    ck_assert_uint_eq(faultstore_pending(b->fault), 0);
    faultstore_free(b->fault);
  }
  mailproto_maildir_free(b->m);
  rm_tree(b->root);
  free(b);
}

static int mb_turn(void *handle) {
  md_backend *b = handle;
  return b->fault ? faultstore_run_pending(b->fault) : 0;
}

/* ------------------------------------------------------------------ */
/* A small synchronous client                                          */
/* ------------------------------------------------------------------ */

enum { KEEP = 64 };

typedef struct client {
  mailproto_op op;
  mailproto_store st;
  mailproto_maildir *m;
  void *alice, *bob;
  /* What the last call reported (the first KEEP of each). */
  mailproto_message_info msgs[KEEP];
  size_t nmsgs;
  uint32_t exp[KEEP];
  size_t nexp;
  char kwname[KEEP][64];
  unsigned kwidx[KEEP];
  size_t nkws;
  uint32_t map[KEEP][2];
  size_t nmap;
  size_t mailboxes;
  char list[4096];
} client;

static int on_message(mailproto_op *op, const mailproto_message_info *m) {
  client *c = op->owner;
  if (c->nmsgs < KEEP)
    c->msgs[c->nmsgs] = *m;
  c->nmsgs++;
  return 0;
}

static int on_expunged(mailproto_op *op, uint32_t uid) {
  client *c = op->owner;
  if (c->nexp < KEEP)
    c->exp[c->nexp] = uid;
  c->nexp++;
  return 0;
}

static int on_keyword(mailproto_op *op, unsigned index, const char *name) {
  client *c = op->owner;
  if (c->nkws < KEEP) {
    snprintf(c->kwname[c->nkws], sizeof c->kwname[0], "%s", name);
    c->kwidx[c->nkws] = index;
  }
  c->nkws++;
  return 0;
}

static int on_map(mailproto_op *op, uint32_t a, uint32_t b) {
  client *c = op->owner;
  if (c->nmap < KEEP) {
    c->map[c->nmap][0] = a;
    c->map[c->nmap][1] = b;
  }
  c->nmap++;
  return 0;
}

static int on_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  client *c = op->owner;
  size_t n = strlen(c->list);
  snprintf(c->list + n, sizeof c->list - n, "%s %x\n", mb->name,
           mb->attributes);
  c->mailboxes++;
  return 0;
}

static const mailproto_op_sink sink = {.message = on_message,
                                       .expunged = on_expunged,
                                       .keyword = on_keyword,
                                       .uid_map = on_map,
                                       .mailbox = on_mailbox};

static mailproto_op *cop(client *c) {
  c->nmsgs = c->nexp = c->nkws = c->nmap = c->mailboxes = 0;
  c->list[0] = '\0';
  mailproto_op_init(&c->op, &sink, c);
  return &c->op;
}

static int c_auth(client *c, const char *user, const char *pw, void **acct) {
  return mailproto_store_call_authenticate(&c->st, cop(c), 0, "", user, pw,
                                           strlen(pw), acct);
}

static void c_init(client *c, mailproto_maildir *m) {
  memset(c, 0, sizeof *c);
  c->m = m;
  mailproto_maildir_store(m, &c->st);
  ck_assert_int_eq(c_auth(c, "alice", "secret", &c->alice), 0);
  ck_assert_int_eq(c_auth(c, "bob", "hunter2", &c->bob), 0);
}

static int c_append(client *c, void *acct, const char *box, const char *text,
                    uint32_t flags, const char *kw, uint32_t *uid) {
  const char *kws[1] = {kw};
  mailproto_append_info info = {sizeof info,  flags, kw ? kws : NULL,
                                kw ? 1u : 0u, NULL,  0};
  void *w = NULL;
  uint32_t uv, dummy;
  int rc = mailproto_store_call_append_begin(&c->st, cop(c), 0, acct, box,
                                             &info, &w);
  if (rc != 0)
    return rc;
  size_t len = strlen(text), half = len / 2;
  rc = mailproto_store_call_write(&c->st, cop(c), 0, w, (const uint8_t *)text,
                                  half);
  if (rc == 0)
    rc = mailproto_store_call_write(&c->st, cop(c), 0, w,
                                    (const uint8_t *)text + half, len - half);
  if (rc != 0) {
    mailproto_store_call_abort(&c->st, w);
    return rc;
  }
  return mailproto_store_call_append_commit(&c->st, cop(c), 0, w, &uv,
                                            uid ? uid : &dummy);
}

static int c_deliver(client *c, void *const *to, size_t n, const char *text,
                     int all, int *results) {
  void *w = NULL;
  int rc =
      mailproto_store_call_deliver_begin(&c->st, cop(c), 0, to, n, NULL, &w);
  if (rc != 0)
    return rc;
  rc = mailproto_store_call_write(&c->st, cop(c), 0, w, (const uint8_t *)text,
                                  strlen(text));
  if (rc != 0) {
    mailproto_store_call_abort(&c->st, w);
    return rc;
  }
  return mailproto_store_call_deliver_commit(&c->st, cop(c), 0, w, all, results,
                                             n);
}

static int c_open(client *c, void *acct, const char *box, unsigned flags,
                  void **h, mailproto_mailbox_status *st) {
  mailproto_mailbox_status dummy;
  return mailproto_store_call_open(&c->st, cop(c), 0, acct, box, flags, NULL,
                                   NULL, h, st ? st : &dummy);
}

static int c_sync(client *c, void *h, mailproto_mailbox_status *st) {
  mailproto_mailbox_status dummy;
  return mailproto_store_call_sync(&c->st, cop(c), 0, h, st ? st : &dummy);
}

static mailproto_mailbox_status c_status(client *c, void *acct,
                                         const char *box) {
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      mailproto_store_call_status(&c->st, cop(c), 0, acct, box, &st), 0);
  return st;
}

static int c_flags(client *c, void *h, uint32_t first, uint32_t last,
                   mailproto_flag_mode mode, uint32_t flags, const char *kw) {
  mailproto_uid_range r = {first, last};
  const char *kws[1] = {kw};
  return mailproto_store_call_set_flags(&c->st, cop(c), 0, h, &r, 1, mode,
                                        flags, kw ? kws : NULL, kw ? 1 : 0, 0);
}

static int c_expunge(client *c, void *h, uint32_t first, uint32_t last) {
  mailproto_uid_range r = {first, last};
  return mailproto_store_call_expunge(&c->st, cop(c), 0, h, &r, 1, 0);
}

static int c_create(client *c, void *acct, const char *name) {
  return mailproto_store_call_create(&c->st, cop(c), 0, acct, name, 0);
}

/* Reads a whole message into out (NUL-terminated); returns its length. */
static size_t c_read(client *c, void *h, uint32_t uid, char *out, size_t size) {
  size_t total = 0;
  for (;;) {
    const uint8_t *data;
    size_t len = 0;
    ck_assert_int_eq(mailproto_store_call_read(&c->st, cop(c), 0, h, uid, total,
                                               7, &data, &len),
                     0);
    if (len == 0)
      break;
    ck_assert_uint_lt(total + len, size);
    memcpy(out + total, data, len);
    total += len;
  }
  out[total] = '\0';
  return total;
}

/* ------------------------------------------------------------------ */
/* Looking at the files                                                */
/* ------------------------------------------------------------------ */

/* Files (not starting with '.') in root/sub. */
static size_t count_files(const char *root, const char *sub) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, sub);
  DIR *d = opendir(path);
  if (!d)
    return 0;
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The name of the only file in root/sub (asserts there is exactly one). */
static void only_file(const char *root, const char *sub, char *out,
                      size_t size) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", root, sub);
  DIR *d = opendir(path);
  ck_assert_ptr_nonnull(d);
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.')
      continue;
    snprintf(out, size, "%s", e->d_name);
    n++;
  }
  closedir(d);
  ck_assert_uint_eq(n, 1);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
  ck_assert_int_eq(fclose(f), 0);
}

static size_t read_text(const char *path, char *out, size_t size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    out[0] = '\0';
    return 0;
  }
  size_t n = fread(out, 1, size - 1, f);
  out[n] = '\0';
  fclose(f);
  return n;
}

static const mailproto_message_info *find_msg(const client *c, uint32_t uid) {
  for (size_t i = 0; i < c->nmsgs && i < KEEP; i++)
    if (c->msgs[i].uid == uid)
      return &c->msgs[i];
  return NULL;
}

/* ------------------------------------------------------------------ */
/* The files other programs see                                        */
/* ------------------------------------------------------------------ */

START_TEST(test_set_flags_shows_in_file_names) {
  char root[256], dir[512], name[300], text[1024];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  uint32_t uid;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "hi\r\n", 0, NULL, &uid), 0);
  /* APPEND puts the message straight into cur/ with an empty info. */
  only_file(dir, "cur", name, sizeof name);
  ck_assert_ptr_nonnull(strstr(name, ",S=4,W=4:2,"));
  ck_assert_str_eq(strstr(name, ":2,"), ":2,");
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  ck_assert_int_eq(c_flags(&c, h, uid, uid, MAILPROTO_FLAGS_ADD,
                           MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_FLAGGED |
                               MAILPROTO_FLAG_ANSWERED,
                           "$Label1"),
                   0);
  /* maildir(5): letters in ASCII order, keywords as a..z. */
  only_file(dir, "cur", name, sizeof name);
  ck_assert_str_eq(strstr(name, ":2,"), ":2,FRSa");
  snprintf(text, sizeof text, "%s/dovecot-keywords", dir);
  read_text(text, text, sizeof text);
  ck_assert_str_eq(text, "0 $Label1\n");
  ck_assert_int_eq(c_flags(&c, h, uid, uid, MAILPROTO_FLAGS_REPLACE,
                           MAILPROTO_FLAG_DELETED | MAILPROTO_FLAG_DRAFT, NULL),
                   0);
  only_file(dir, "cur", name, sizeof name);
  ck_assert_str_eq(strstr(name, ":2,"), ":2,DT");
  ck_assert_int_eq(c_expunge(&c, h, uid, uid), 0);
  ck_assert_uint_eq(count_files(dir, "cur"), 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_open_read_write_moves_new_to_cur) {
  char root[256], dir[512], name[300];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  void *to[1] = {c.alice};
  int results[1];
  ck_assert_int_eq(c_deliver(&c, to, 1, "Subject: d\r\n\r\nx\r\n", 1, results),
                   0);
  ck_assert_int_eq(results[0], 0);
  /* Delivery: into new/, no info. */
  only_file(dir, "new", name, sizeof name);
  ck_assert_ptr_null(strchr(name, ':'));
  ck_assert_ptr_nonnull(strstr(name, ",S=17,W=17"));
  /* A read-only open leaves it there; a read-write one moves it. */
  void *ro = NULL, *rw = NULL;
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_READONLY, &ro, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(count_files(dir, "new"), 1);
  uint32_t uid = c.msgs[0].uid;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &rw, NULL), 0);
  ck_assert_uint_eq(c.msgs[0].uid, uid);
  ck_assert_uint_eq(count_files(dir, "new"), 0);
  only_file(dir, "cur", name, sizeof name);
  ck_assert_str_eq(strstr(name, ":2,"), ":2,");
  /* The read-only handle still reads it where it went. */
  char buf[64];
  ck_assert_uint_eq(c_read(&c, ro, uid, buf, sizeof buf), 17);
  mailproto_store_call_close(&c.st, ro);
  mailproto_store_call_close(&c.st, rw);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_sync_finds_files_of_other_programs) {
  char root[256], dir[512], path[1024];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  uint32_t u1;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "mine\r\n", 0, NULL, &u1), 0);
  void *h = NULL;
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_READONLY, &h, NULL), 0);
  /* procmail-style: tmp/, then rename into new/; and a file that a
   * mail reader put into cur/ already seen. */
  snprintf(path, sizeof path, "%s/tmp/1700000000.P1.otherhost", dir);
  write_file(path, "From: x\nbare lf\n");
  char dst[1024];
  snprintf(dst, sizeof dst, "%s/new/1700000000.P1.otherhost", dir);
  ck_assert_int_eq(rename(path, dst), 0);
  snprintf(path, sizeof path, "%s/cur/1700000001.P2.otherhost:2,S", dir);
  write_file(path, "seen\r\n");
  /* Not messages: dot files, names with spaces. */
  snprintf(path, sizeof path, "%s/cur/.hidden", dir);
  write_file(path, "x");
  snprintf(path, sizeof path, "%s/cur/with space:2,", dir);
  write_file(path, "x");
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, 2);
  ck_assert_uint_eq(st.messages, 3);
  /* Fresh UIDs, above everything before, in arrival (name) order. */
  ck_assert_uint_gt(c.msgs[0].uid, u1);
  ck_assert_uint_gt(c.msgs[1].uid, c.msgs[0].uid);
  ck_assert_uint_eq(c.msgs[0].stored_size, 16);
  ck_assert_uint_eq(c.msgs[0].size, 18); /* two bare LFs */
  ck_assert_uint_eq(c.msgs[0].flags & MAILPROTO_FLAGS_SETTABLE, 0);
  ck_assert_uint_eq(c.msgs[1].flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_SEEN);
  char buf[64];
  ck_assert_uint_eq(c_read(&c, h, c.msgs[0].uid, buf, sizeof buf), 16);
  ck_assert_str_eq(buf, "From: x\nbare lf\n");
  /* A file that goes away is expunged; its UID never comes back. */
  uint32_t gone = c.msgs[1].uid;
  ck_assert_int_eq(unlink(path), 0);
  snprintf(path, sizeof path, "%s/cur/1700000001.P2.otherhost:2,S", dir);
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nexp, 1);
  ck_assert_uint_eq(c.exp[0], gone);
  uint32_t next;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "later\r\n", 0, NULL, &next),
                   0);
  ck_assert_uint_gt(next, gone);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* A file another program wrote, without ",W=" in its name, is counted as
 * the sessions send it: bare CRs and LFs as CRLF, a CRLF pair split by the
 * store's 8 KiB read buffer only once, a final CR too. */
START_TEST(test_sync_counts_bare_cr_of_other_programs) {
  char root[256], path[1024];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  void *h = NULL;
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_READONLY, &h, NULL), 0);
  static char text[8192 + 16];
  memset(text, 'x', sizeof text - 1);
  text[sizeof text - 1] = '\0';
  memcpy(text, "A\rb\nc\r\n", 7); /* one bare CR, one bare LF */
  text[8191] = '\r';              /* a CRLF across the read buffer */
  text[8192] = '\n';
  text[sizeof text - 2] = '\r'; /* a bare CR ends the file */
  snprintf(path, sizeof path, "%s/alice/cur/1700000002.P3.otherhost:2,", root);
  write_file(path, text);
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(c.msgs[0].stored_size, strlen(text));
  ck_assert_uint_eq(c.msgs[0].size, strlen(text) + 3);
  ck_assert_uint_eq(st.size, strlen(text) + 3);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_sync_keeps_uid_of_file_renamed_elsewhere) {
  char root[256], dir[512], name[300], from[1024], to[1024];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  uint32_t u1, u2;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "one\r\n", 0, NULL, &u1), 0);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "two\r\n", 0, NULL, &u2), 0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  uint64_t before = c.msgs[0].modseq;
  /* A mail reader marks u1 seen and replied by renaming its file; it also
   * writes a flag of its own (P) that this store keeps. */
  snprintf(from, sizeof from, "%s/cur", dir);
  DIR *d = opendir(from);
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, "Q") && e->d_name[0] != '.') {
      char p[2048];
      snprintf(p, sizeof p, "%s/%s", from, e->d_name);
      char buf[16];
      read_text(p, buf, sizeof buf);
      if (strcmp(buf, "one\r\n") == 0)
        snprintf(name, sizeof name, "%s", e->d_name);
    }
  closedir(d);
  snprintf(from, sizeof from, "%s/cur/%s", dir, name);
  *strstr(name, ":2,") = '\0';
  snprintf(to, sizeof to, "%s/cur/%s:2,PRS", dir, name);
  ck_assert_int_eq(rename(from, to), 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nexp, 0);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(c.msgs[0].uid, u1);
  ck_assert_uint_eq(c.msgs[0].flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_ANSWERED);
  ck_assert_uint_gt(c.msgs[0].modseq, before);
  /* Reading follows the new name; a flag change keeps the P. */
  char buf[64];
  ck_assert_uint_eq(c_read(&c, h, u1, buf, sizeof buf), 5);
  ck_assert_int_eq(
      c_flags(&c, h, u1, u1, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_FLAGGED, NULL),
      0);
  snprintf(to, sizeof to, "%s/cur/%s:2,FPRS", dir, name);
  ck_assert_int_eq(access(to, F_OK), 0);
  mailproto_store_call_close(&c.st, h);
  /* A new store object (a restart) keeps every UID and the flags. */
  mailproto_maildir_free(m);
  m = open_store(root, 1, NULL);
  c_init(&c, m);
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_READONLY, &h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, 2);
  ck_assert_uint_eq(c.msgs[0].uid, u1);
  ck_assert_uint_eq(c.msgs[1].uid, u2);
  const mailproto_message_info *m1 = find_msg(&c, u1);
  ck_assert_ptr_nonnull(m1);
  ck_assert_uint_eq(m1 ? m1->flags & MAILPROTO_FLAGS_SETTABLE : 0,
                    MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_ANSWERED |
                        MAILPROTO_FLAG_FLAGGED);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_set_flags_keywords_in_dovecot_files) {
  char root[256], dir[512], path[1024], text[512];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  /* Keywords another program (Dovecot) defined, and a file using b. */
  snprintf(path, sizeof path, "%s/dovecot-keywords", dir);
  write_file(path, "0 $Junk\n1 Work\nbad line\n99 TooHigh\n");
  snprintf(path, sizeof path, "%s/cur/1700000000.P9.dovecot:2,Sb", dir);
  write_file(path, "kw\r\n");
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(c.nkws, 2);
  unsigned work = 99;
  for (size_t i = 0; i < c.nkws; i++)
    if (strcmp(c.kwname[i], "Work") == 0)
      work = c.kwidx[i];
  ck_assert_uint_eq(work, 1);
  ck_assert_uint_eq(c.msgs[0].keywords, (uint64_t)1 << 1);
  uint32_t uid = c.msgs[0].uid;
  /* New keywords take the next letter; the first 26 are Dovecot's file,
   * the rest live in mailproto-keywords. */
  char names[40][16];
  for (int i = 0; i < 30; i++) {
    snprintf(names[i], sizeof names[i], "k%d", i);
    ck_assert_int_eq(c_flags(&c, h, uid, uid, MAILPROTO_FLAGS_ADD, 0, names[i]),
                     0);
  }
  snprintf(path, sizeof path, "%s/dovecot-keywords", dir);
  read_text(path, text, sizeof text);
  ck_assert_ptr_nonnull(strstr(text, "0 $Junk\n1 Work\n2 k0\n"));
  ck_assert_ptr_nonnull(strstr(text, "25 k23\n"));
  ck_assert_ptr_null(strstr(text, "26 "));
  snprintf(path, sizeof path, "%s/mailproto-keywords", dir);
  read_text(path, text, sizeof text);
  ck_assert_str_eq(text, "26 k24\n27 k25\n28 k26\n29 k27\n30 k28\n31 k29\n");
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  /* After a restart the high keywords are still there (kept in the index,
   * named in mailproto-keywords). */
  m = open_store(root, 1, NULL);
  c_init(&c, m);
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nkws, 32);
  ck_assert_uint_eq(c.msgs[0].keywords, ((uint64_t)1 << 32) - 1 - 1);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_subscribe_writes_dovecot_format) {
  char root[256], path[1024], text[512];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  ck_assert_int_eq(mailproto_store_call_subscribe(&c.st, cop(&c), 0, c.alice,
                                                  "Entw\xc3\xbcrfe/x", 1),
                   0);
  ck_assert_int_eq(
      mailproto_store_call_subscribe(&c.st, cop(&c), 0, c.alice, "inbox", 1),
      0);
  snprintf(path, sizeof path, "%s/alice/subscriptions", root);
  read_text(path, text, sizeof text);
  ck_assert_str_eq(text, "V\t2\n\nEntw&APw-rfe\tx\nINBOX\n");
  /* A version 1 file (Maildir++ names, '.' between levels) is read too. */
  write_file(path, "Sent\nLists.dev\n&AOQ-\n\xff\xfe\n");
  ck_assert_int_eq(mailproto_store_call_list(&c.st, cop(&c), 0, c.alice, "*",
                                             MAILPROTO_LIST_SUBSCRIBED),
                   0);
  ck_assert_uint_eq(c.mailboxes, 3);
  ck_assert_ptr_nonnull(strstr(c.list, "Lists/dev "));
  ck_assert_ptr_nonnull(strstr(c.list, "\xc3\xa4 "));
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Crash safety                                                        */
/* ------------------------------------------------------------------ */

/* Fails (or, in a child process, "crashes" at) the n-th system call. */
typedef struct fault_plan {
  unsigned long calls, at;
  int crash;
} fault_plan;

enum { CRASHED = 41, DONE_OK = 42, DONE_FAILED = 43 };

static int fault_fn(void *arg, const char *call) {
  fault_plan *p = arg;
  (void)call;
  if (++p->calls != p->at)
    return 0;
  if (p->crash)
    _exit(CRASHED);
  return EIO;
}

static const char full_text[] = "From: a@b\r\nSubject: whole\r\n\r\nbody\r\n";

/* What a run did to the mailbox: APPEND to alice's INBOX (which already
 * holds "one" and "two"), or a delivery to alice and bob. */
enum { OP_APPEND, OP_DELIVER, OP_FLAGS, OP_EXPUNGE, OP_COPY };

static int run_op(mailproto_maildir *m, int what) {
  client c;
  c_init(&c, m);
  void *h = NULL;
  int rc;
  switch (what) {
  case OP_APPEND:
    return c_append(&c, c.alice, "INBOX", full_text, MAILPROTO_FLAG_SEEN,
                    "$Crash", NULL);
  case OP_DELIVER: {
    void *to[2] = {c.alice, c.bob};
    int results[2];
    rc = c_deliver(&c, to, 2, full_text, 1, results);
    return rc != 0 ? rc : results[0] != 0 ? results[0] : results[1];
  }
  case OP_FLAGS:
  case OP_EXPUNGE:
  case OP_COPY:
    if ((rc = c_open(&c, c.alice, "INBOX", 0, &h, NULL)) != 0)
      return rc;
    if (what == OP_FLAGS)
      rc = c_flags(&c, h, 1, UINT32_MAX, MAILPROTO_FLAGS_ADD,
                   MAILPROTO_FLAG_FLAGGED, "$Both");
    else if (what == OP_EXPUNGE)
      rc = c_expunge(&c, h, 1, UINT32_MAX);
    else {
      mailproto_uid_range all = {1, UINT32_MAX};
      uint32_t uv;
      rc = mailproto_store_call_copy(&c.st, cop(&c), 0, h, &all, 1, "Other", 0,
                                     &uv);
    }
    mailproto_store_call_close(&c.st, h);
    return rc;
  }
  return MAILPROTO_ERR_INTERNAL;
}

/* A store with "one" and "two" in alice's INBOX and an empty "Other". */
static void prepare(const char *root) {
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "one\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "two\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(c_create(&c, c.alice, "Other"), 0);
  ck_assert_uint_eq(c_status(&c, c.bob, "INBOX").messages, 0);
  mailproto_maildir_free(m);
}

/* Opens a mailbox with a fresh store and checks that every message is
 * whole (one of `allowed`), that the index agrees with the files, and
 * returns how many messages there are. */
static size_t check_box(const char *root, const char *user, const char *box,
                        const char *subdir, const char *const *allowed) {
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  void *acct = strcmp(user, "alice") == 0 ? c.alice : c.bob;
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c, acct, box, MAILPROTO_OPEN_READONLY, &h, &st), 0);
  size_t n = c.nmsgs;
  ck_assert_uint_le(n, KEEP);
  mailproto_message_info msgs[KEEP];
  memcpy(msgs, c.msgs, n * sizeof *msgs);
  for (size_t i = 0; i < n; i++) {
    char buf[256];
    c_read(&c, h, msgs[i].uid, buf, sizeof buf);
    int ok = 0;
    for (size_t k = 0; allowed[k]; k++)
      ok |= strcmp(buf, allowed[k]) == 0;
    ck_assert_msg(ok, "partial or unknown message: \"%s\"", buf);
    if (i > 0)
      ck_assert_uint_gt(msgs[i].uid, msgs[i - 1].uid);
  }
  /* Nothing visible that the store does not account for. */
  char dir[512];
  snprintf(dir, sizeof dir, "%s/%s/%s", root, user, subdir);
  ck_assert_uint_eq(count_files(dir, "new") + count_files(dir, "cur"), n);
  ck_assert_uint_eq(st.messages, n);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  return n;
}

static const char *const any_text[] = {"one\r\n", "two\r\n", full_text, NULL};

/* After a failed or crashed run: the mailbox is as before or as after,
 * and a run that reported success had its whole effect. */
static void check_after(const char *root, int what, int outcome) {
  size_t a = check_box(root, "alice", "INBOX", "", any_text);
  size_t b = check_box(root, "bob", "INBOX", "", any_text);
  size_t o = check_box(root, "alice", "Other", ".Other", any_text);
  switch (what) {
  case OP_APPEND:
    ck_assert(a == 2 || a == 3);
    if (outcome == DONE_OK)
      ck_assert_uint_eq(a, 3);
    if (outcome == DONE_FAILED)
      ck_assert_uint_eq(a, 2);
    break;
  case OP_DELIVER:
    ck_assert(a == 2 || a == 3);
    ck_assert(b <= 1);
    if (outcome == DONE_OK)
      ck_assert(a == 3 && b == 1);
    /* All or nothing: a reported failure left it nowhere. */
    if (outcome == DONE_FAILED)
      ck_assert(a == 2 && b == 0);
    break;
  case OP_EXPUNGE:
    if (outcome == DONE_OK)
      ck_assert_uint_eq(a, 0);
    break;
  case OP_COPY:
    ck_assert_uint_eq(a, 2);
    ck_assert(o <= 2);
    if (outcome == DONE_OK)
      ck_assert_uint_eq(o, 2);
    if (outcome == DONE_FAILED)
      ck_assert_uint_eq(o, 0);
    break;
  default:
    ck_assert_uint_eq(a, 2);
    break;
  }
}

/* Runs `what` with the n-th system call failing (crash 0) or the process
 * dying there (crash 1), for n = 1, 2, ... until the run gets through
 * without reaching n. Every time the Maildir must be consistent. */
static void fault_every_call(int what, int crash) {
  int finished = 0;
  unsigned long points = 0;
  for (unsigned long n = 1; n < 400 && !finished; n++) {
    points = n;
    char root[256];
    make_root(root, sizeof root);
    prepare(root);
    int outcome;
    if (crash) {
      fflush(NULL);
      pid_t pid = fork();
      ck_assert_int_ge(pid, 0);
      if (pid == 0) {
        mailproto_maildir_config cfg;
        mailproto_maildir_config_init(&cfg, sizeof cfg);
        cfg.root = root;
        mailproto_maildir *m = NULL;
        if (mailproto_maildir_new(&cfg, &m) != 0 ||
            mailproto_maildir_add_user(m, "alice", "secret") != 0 ||
            mailproto_maildir_add_user(m, "bob", "hunter2") != 0)
          _exit(1);
        fault_plan plan = {0, n, 1};
        mailproto_maildir_set_fault(m, fault_fn, &plan);
        _exit(run_op(m, what) == 0 ? DONE_OK : DONE_FAILED);
      }
      int status = 0;
      ck_assert_int_eq(waitpid(pid, &status, 0), pid);
      ck_assert(WIFEXITED(status));
      outcome = WEXITSTATUS(status);
      ck_assert(outcome == CRASHED || outcome == DONE_OK ||
                outcome == DONE_FAILED);
      finished = outcome != CRASHED;
    } else {
      mailproto_maildir *m = open_store(root, 1, NULL);
      fault_plan plan = {0, n, 0};
      mailproto_maildir_set_fault(m, fault_fn, &plan);
      int rc = run_op(m, what);
      outcome = rc == 0 ? DONE_OK : DONE_FAILED;
      finished = plan.calls < n;
      ck_assert(rc == 0 || rc == MAILPROTO_ERR_IO);
      if (finished)
        ck_assert_int_eq(rc, 0);
      mailproto_maildir_free(m);
    }
    check_after(root, what, outcome);
    rm_tree(root);
  }
  ck_assert_msg(finished, "the operation never got through");
  /* Each operation makes several system calls worth failing at. */
  ck_assert_uint_ge(points, 8);
}

START_TEST(test_append_fails_at_every_call) {
  fault_every_call(OP_APPEND, 0);
}
END_TEST

START_TEST(test_append_crashes_at_every_call) {
  fault_every_call(OP_APPEND, 1);
}
END_TEST

START_TEST(test_deliver_fails_at_every_call) {
  fault_every_call(OP_DELIVER, 0);
}
END_TEST

START_TEST(test_deliver_crashes_at_every_call) {
  fault_every_call(OP_DELIVER, 1);
}
END_TEST

START_TEST(test_set_flags_expunge_copy_fail_and_crash_at_every_call) {
  fault_every_call(OP_FLAGS, 0);
  fault_every_call(OP_FLAGS, 1);
  fault_every_call(OP_EXPUNGE, 0);
  fault_every_call(OP_EXPUNGE, 1);
  fault_every_call(OP_COPY, 0);
  fault_every_call(OP_COPY, 1);
}
END_TEST

START_TEST(test_open_removes_stale_tmp_files) {
  char root[256], dir[512], oldp[1024], young[1024];
  make_root(root, sizeof root);
  snprintf(dir, sizeof dir, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  snprintf(oldp, sizeof oldp, "%s/tmp/1600000000.M1P1.crashed", dir);
  snprintf(young, sizeof young, "%s/tmp/1600000001.M1P1.writing", dir);
  write_file(oldp, "half a mess");
  write_file(young, "being written");
  /* maildir(5): 36 hours untouched. */
  struct timespec ts[2];
  ts[0].tv_sec = time(NULL) - 37 * 3600;
  ts[0].tv_nsec = 0;
  ts[1] = ts[0];
  ck_assert_int_eq(utimensat(AT_FDCWD, oldp, ts, 0), 0);
  ts[0].tv_sec = time(NULL) - 35 * 3600;
  ts[1] = ts[0];
  ck_assert_int_eq(utimensat(AT_FDCWD, young, ts, 0), 0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 0);
  ck_assert_int_ne(access(oldp, F_OK), 0);
  ck_assert_int_eq(access(young, F_OK), 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Several processes                                                   */
/* ------------------------------------------------------------------ */

enum { APPENDERS = 2, PER_APPENDER = 1000, DELIVERIES = 500 };

/* In a child: appends PER_APPENDER messages and writes their UIDs to fd. */
static void appender(const char *root, int id, int fd) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = 0; /* the race is the point here, not the disk */
  cfg.lock_timeout_ms = 30000;
  mailproto_maildir *m = NULL;
  if (mailproto_maildir_new(&cfg, &m) != 0 ||
      mailproto_maildir_add_user(m, "alice", "secret") != 0)
    _exit(1);
  mailproto_store st;
  mailproto_maildir_store(m, &st);
  mailproto_op op;
  mailproto_op_init(&op, &sink, NULL);
  void *a = NULL;
  if (mailproto_store_call_authenticate(&st, &op, 0, "", "alice", "secret", 6,
                                        &a) != 0)
    _exit(2);
  for (int i = 0; i < PER_APPENDER; i++) {
    char text[64];
    int n = snprintf(text, sizeof text, "appender %d message %d\r\n", id, i);
    mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
    void *w = NULL;
    uint32_t uv, uid = 0;
    if (mailproto_store_call_append_begin(&st, &op, 0, a, "INBOX", &info, &w) !=
            0 ||
        mailproto_store_call_write(&st, &op, 0, w, (const uint8_t *)text,
                                   (size_t)n) != 0 ||
        mailproto_store_call_append_commit(&st, &op, 0, w, &uv, &uid) != 0)
      _exit(3);
    if (write(fd, &uid, sizeof uid) != (ssize_t)sizeof uid)
      _exit(4);
  }
  mailproto_maildir_free(m);
  _exit(0);
}

/* In a child: delivers DELIVERIES messages to alice. */
static void deliverer(const char *root) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = 0;
  mailproto_maildir *m = NULL;
  if (mailproto_maildir_new(&cfg, &m) != 0 ||
      mailproto_maildir_add_user(m, "alice", "secret") != 0)
    _exit(1);
  client c;
  memset(&c, 0, sizeof c);
  mailproto_maildir_store(m, &c.st);
  if (mailproto_store_call_lookup_recipient(&c.st, cop(&c), 0, "alice@x",
                                            &c.alice) != 0)
    _exit(2);
  for (int i = 0; i < DELIVERIES; i++) {
    char text[64];
    snprintf(text, sizeof text, "delivery %d\r\n", i);
    void *to[1] = {c.alice};
    int results[1];
    if (c_deliver(&c, to, 1, text, 1, results) != 0 || results[0] != 0)
      _exit(3);
  }
  mailproto_maildir_free(m);
  _exit(0);
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

START_TEST(test_append_from_concurrent_processes) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  /* A session of this process watches while the others write. */
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  int fds[APPENDERS][2];
  pid_t pids[APPENDERS + 1];
  fflush(NULL);
  for (int i = 0; i < APPENDERS; i++) {
    ck_assert_int_eq(pipe(fds[i]), 0);
    pids[i] = fork();
    ck_assert_int_ge(pids[i], 0);
    if (pids[i] == 0) {
      close(fds[i][0]);
      appender(root, i, fds[i][1]);
    }
    close(fds[i][1]);
  }
  pids[APPENDERS] = fork();
  ck_assert_int_ge(pids[APPENDERS], 0);
  if (pids[APPENDERS] == 0)
    deliverer(root);
  /* Meanwhile: syncs see the mailbox grow, never shrink. */
  uint32_t seen = 0, last_uid = 0;
  for (int i = 0; i < 20; i++) {
    mailproto_mailbox_status st;
    ck_assert_int_eq(c_sync(&c, h, &st), 0);
    ck_assert_uint_eq(c.nexp, 0);
    for (size_t k = 0; k < c.nmsgs && k < KEEP; k++) {
      ck_assert_uint_gt(c.msgs[k].uid, last_uid);
      last_uid = c.msgs[k].uid;
    }
    ck_assert_uint_ge(st.messages, seen);
    seen = st.messages;
  }
  static uint32_t uids[APPENDERS][PER_APPENDER];
  for (int i = 0; i < APPENDERS; i++) {
    size_t got = 0;
    while (got < sizeof uids[i]) {
      ssize_t n = read(fds[i][0], (char *)uids[i] + got, sizeof uids[i] - got);
      ck_assert_int_gt(n, 0);
      got += (size_t)n;
    }
    close(fds[i][0]);
  }
  for (int i = 0; i <= APPENDERS; i++) {
    int status = 0;
    ck_assert_int_eq(waitpid(pids[i], &status, 0), pids[i]);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  /* Each writer's UIDs ascend; together they are all different. */
  static uint32_t all[APPENDERS * PER_APPENDER];
  for (int i = 0; i < APPENDERS; i++)
    for (int k = 0; k < PER_APPENDER; k++) {
      if (k > 0)
        ck_assert_uint_gt(uids[i][k], uids[i][k - 1]);
      all[i * PER_APPENDER + k] = uids[i][k];
    }
  qsort(all, APPENDERS * PER_APPENDER, sizeof *all, cmp_u32);
  for (int i = 1; i < APPENDERS * PER_APPENDER; i++)
    ck_assert_uint_ne(all[i], all[i - 1]);
  /* Nothing lost: every message is there, with its text under its UID. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(st.messages, APPENDERS * PER_APPENDER + DELIVERIES);
  ck_assert_uint_eq(c.nexp, 0);
  for (int i = 0; i < APPENDERS; i++)
    for (int k = 0; k < PER_APPENDER; k += 97) {
      char buf[64], want[64];
      snprintf(want, sizeof want, "appender %d message %d\r\n", i, k);
      c_read(&c, h, uids[i][k], buf, sizeof buf);
      ck_assert_str_eq(buf, want);
    }
  mailproto_store_call_close(&c.st, h);
  /* A fresh process view agrees: strictly ascending UIDs, none twice. */
  mailproto_maildir_free(m);
  m = open_store(root, 0, NULL);
  c_init(&c, m);
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_READONLY, &h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, APPENDERS * PER_APPENDER + DELIVERIES);
  ck_assert_uint_eq(st.uidnext > st.messages, 1);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* Pipes of a parent and a child taking turns. */
static void say(int fd, char c) {
  ck_assert_int_eq(write(fd, &c, 1), 1);
}
static char hear(int fd) {
  char c = 0;
  ck_assert_int_eq(read(fd, &c, 1), 1);
  return c;
}

START_TEST(test_open_exclusive_excludes_other_process) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  int to_child[2], to_parent[2];
  ck_assert_int_eq(pipe(to_child), 0);
  ck_assert_int_eq(pipe(to_parent), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* The child takes turns trying the maildrop lock. */
    mailproto_maildir *cm = open_store(root, 1, NULL);
    client cc;
    c_init(&cc, cm);
    for (char cmd; (cmd = hear(to_child[0])) == 't';) {
      void *ch = NULL;
      int rc =
          c_open(&cc, cc.alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, &ch, NULL);
      if (rc == 0)
        mailproto_store_call_close(&cc.st, ch);
      say(to_parent[1], rc == 0 ? 'y' : rc == MAILPROTO_ERR_IN_USE ? 'n' : 'e');
    }
    _exit(0);
  }
  void *h = NULL;
  ck_assert_int_eq(
      c_open(&c, c.alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, &h, NULL), 0);
  say(to_child[1], 't');
  ck_assert_int_eq(hear(to_parent[0]), 'n'); /* RFC 1939 8: in use */
  mailproto_store_call_close(&c.st, h);
  say(to_child[1], 't');
  ck_assert_int_eq(hear(to_parent[0]), 'y');
  say(to_child[1], 'q');
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_open_exclusive_excludes_other_store_object) {
  /* Two store objects of one process (one per thread) on one root: the
   * maildrop lock holds between them as between processes. */
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m1 = open_store(root, 1, NULL);
  mailproto_maildir *m2 = open_store(root, 1, NULL);
  client c1, c2;
  c_init(&c1, m1);
  c_init(&c2, m2);
  void *h1 = NULL, *h2 = NULL;
  ck_assert_int_eq(
      c_open(&c1, c1.alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, &h1, NULL), 0);
  ck_assert_int_eq(
      c_open(&c2, c2.alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, &h2, NULL),
      MAILPROTO_ERR_IN_USE);
  /* A plain open of the other store, and its writes, still work. */
  ck_assert_int_eq(c_open(&c2, c2.alice, "INBOX", 0, &h2, NULL), 0);
  ck_assert_int_eq(c_append(&c2, c2.alice, "INBOX", "x\r\n", 0, NULL, NULL), 0);
  mailproto_store_call_close(&c2.st, h2);
  mailproto_store_call_close(&c1.st, h1);
  ck_assert_int_eq(
      c_open(&c2, c2.alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, &h2, NULL), 0);
  ck_assert_uint_eq(c2.nmsgs, 1);
  mailproto_store_call_close(&c2.st, h2);
  mailproto_maildir_free(m1);
  mailproto_maildir_free(m2);
  rm_tree(root);
}
END_TEST

START_TEST(test_sync_finds_changes_of_other_process) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  uint32_t u1, u2;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "1\r\n", 0, NULL, &u1), 0);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "2\r\n", 0, NULL, &u2), 0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* Another server process: flags one message, expunges the other,
     * appends a third. */
    mailproto_maildir *cm = open_store(root, 1, NULL);
    client cc;
    c_init(&cc, cm);
    void *ch = NULL;
    int ok = c_open(&cc, cc.alice, "INBOX", 0, &ch, NULL) == 0 &&
             c_flags(&cc, ch, u1, u1, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_SEEN,
                     "Other") == 0 &&
             c_expunge(&cc, ch, u2, u2) == 0 &&
             c_append(&cc, cc.alice, "INBOX", "3\r\n", 0, NULL, NULL) == 0;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* No notification crosses processes: the next sync finds it all. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nexp, 1);
  ck_assert_uint_eq(c.exp[0], u2);
  ck_assert_uint_eq(c.nkws, 1);
  ck_assert_str_eq(c.kwname[0], "Other");
  ck_assert_uint_eq(c.nmsgs, 2);
  ck_assert_uint_eq(c.msgs[0].uid, u1);
  ck_assert_uint_ne(c.msgs[0].flags & MAILPROTO_FLAG_SEEN, 0);
  ck_assert_uint_eq(c.msgs[0].keywords, (uint64_t)1 << c.kwidx[0]);
  ck_assert_uint_gt(c.msgs[1].uid, u2);
  ck_assert_uint_eq(st.messages, 2);
  /* The other process claimed nothing \Recent for us: it opened before
   * the third arrived, so this session is the one to see it. */
  ck_assert_uint_ne(c.msgs[1].flags & MAILPROTO_FLAG_RECENT, 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_append_lock_wait_is_bounded) {
  char root[256], lock[512];
  make_root(root, sizeof root);
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.lock_timeout_ms = 300;
  mailproto_maildir *m = NULL;
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &m), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "alice", "secret"), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "bob", "hunter2"), 0);
  client c;
  c_init(&c, m);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  snprintf(lock, sizeof lock, "%s/alice/mailproto-index.lock", root);
  int ready[2];
  ck_assert_int_eq(pipe(ready), 0);
  fflush(NULL);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    /* Another process holds the index lock for a second. */
    int fd = open(lock, O_RDWR);
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fd < 0 || fcntl(fd, F_SETLK, &fl) != 0)
      _exit(1);
    say(ready[1], 'L');
    sleep(1);
    _exit(0);
  }
  ck_assert_int_eq(hear(ready[0]), 'L');
  time_t t0 = time(NULL);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "x\r\n", 0, NULL, NULL),
                   MAILPROTO_ERR_TEMPORARY);
  ck_assert_int_le(time(NULL) - t0, 1);
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  /* Released: the same append goes through, and nothing half-done shows. */
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "x\r\n", 0, NULL, NULL), 0);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 1);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

START_TEST(test_dir_name_maps_names_reversibly) {
  static const struct {
    const char *name, *dir;
  } cases[] = {
      {"INBOX", ""},
      {"INBOX/kid", ".INBOX.kid"},
      {"a/b", ".a.b"},
      {"a.b", ".a%2Eb"},
      {".hidden", ".%2Ehidden"},
      {"..x/y..", ".%2E%2Ex.y%2E%2E"},
      {"100%", ".100%25"},
      {"~user", ".%7Euser"},
      {"a/~b", ".a.~b"},
      {"Entw\xc3\xbcrfe", ".Entw&APw-rfe"},
      {"&", ".&-"},
      {"\xe6\x97\xa5\xe6\x9c\xac/x", ".&ZeVnLA-.x"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char dir[MD_FILE_MAX + 1], back[MAILPROTO_MAILBOX_NAME_MAX + 1];
    int hashed = 1;
    ck_assert_int_eq(mailproto_maildir_dir_name(cases[i].name, 0, dir, &hashed),
                     0);
    ck_assert_int_eq(hashed, 0);
    ck_assert_str_eq(dir, cases[i].dir);
    if (!dir[0])
      continue;
    ck_assert_int_eq(mailproto_maildir_dir_decode(dir, back), 0);
    ck_assert_str_eq(back, cases[i].name);
  }
  /* Only the one spelling a name has is a folder: no aliases. */
  static const char *const not_folders[] = {
      ".",    "..",     ".inbox.x", ".INBOX", ".a..b", ".a.",  ".%41",
      ".%2e", ".a%7Eb", ".%7",      ".&AGE-", ".&Jjo", ".a/b", ".\x01",
      "a.b",  ".~zz",   ".~0123",   ".a.%2",  NULL};
  for (size_t i = 0; not_folders[i]; i++) {
    char back[MAILPROTO_MAILBOX_NAME_MAX + 1];
    ck_assert_msg(mailproto_maildir_dir_decode(not_folders[i], back) == -1,
                  "%s decoded as a folder", not_folders[i]);
  }
  /* Names too long for a directory entry get a hashed one. */
  char longname[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_FILE_MAX + 1];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  int hashed = 0;
  ck_assert_int_eq(mailproto_maildir_dir_name(longname, 0, dir, &hashed), 0);
  ck_assert_int_eq(hashed, 1);
  ck_assert_uint_eq(strlen(dir), 18);
  ck_assert_int_eq(strncmp(dir, ".~", 2), 0);
  ck_assert_int_eq(mailproto_maildir_dir_decode(dir, longname), 1);
  ck_assert_int_eq(mailproto_maildir_dir_name("x", 3, dir, &hashed), 0);
  ck_assert_str_eq(dir, ".x");
  /* 255 bytes fit, 256 do not. */
  memset(longname, 'a', 254);
  longname[254] = '\0';
  ck_assert_int_eq(mailproto_maildir_dir_name(longname, 0, dir, &hashed), 0);
  ck_assert_int_eq(hashed, 0);
  longname[254] = 'a';
  longname[255] = '\0';
  ck_assert_int_eq(mailproto_maildir_dir_name(longname, 0, dir, &hashed), 0);
  ck_assert_int_eq(hashed, 1);
}
END_TEST

START_TEST(test_info_parse_and_dir_decode_never_read_past_the_end) {
  overread_guard g;
  ck_assert_int_eq(overread_init(&g, 1024), 0);
  static const char *const inputs[] = {
      "1700000000.M1P2Q3.host,S=5,W=6:2,DFRSTabcz,ext",
      "x:2,",
      "x:2",
      "x:",
      ":2,S",
      ".a%2Eb.&AOQ-.%7E",
      ".~0123456789abcdef-7",
      ".%",
      ".%2",
      ".&",
      ".&AO",
      NULL};
  for (size_t i = 0; inputs[i]; i++) {
    size_t n = strlen(inputs[i]);
    for (size_t len = 0; len <= n; len++) {
      /* Length-bounded: the bytes end right at the guard page. */
      const char *p = (const char *)overread_place(&g, inputs[i], len);
      md_info info;
      int rc = mailproto_maildir_info_parse(p, len, &info);
      ck_assert(rc == 0 || rc == -1);
      if (rc == 0)
        ck_assert_uint_le(info.base_len, len);
      /* NUL-terminated: the NUL is the last readable byte. */
      char copy[128];
      memcpy(copy, inputs[i], len);
      copy[len] = '\0';
      p = (const char *)overread_place(&g, copy, len + 1);
      char out[MAILPROTO_MAILBOX_NAME_MAX + 1];
      rc = mailproto_maildir_dir_decode(p, out);
      ck_assert(rc >= -1 && rc <= 1);
    }
  }
  /* Over-long input is refused, not truncated into a different name. */
  char longdir[600];
  longdir[0] = '.';
  memset(longdir + 1, 'a', sizeof longdir - 2);
  longdir[sizeof longdir - 1] = '\0';
  char out[MAILPROTO_MAILBOX_NAME_MAX + 1];
  ck_assert_int_eq(mailproto_maildir_dir_decode(longdir, out), -1);
  md_info info;
  ck_assert_int_eq(mailproto_maildir_info_parse(longdir + 1, 300, &info), -1);
  overread_free(&g);
}
END_TEST

/* Entries directly in `dir`, as "name\n" lines, sorted. */
static void listing(const char *dir, char *out, size_t size) {
  struct dirent **names = NULL;
  int n = scandir(dir, &names, NULL, alphasort);
  ck_assert_int_ge(n, 0);
  out[0] = '\0';
  for (int i = 0; i < n; i++) {
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s\n", names[i]->d_name);
    free(names[i]);
  }
  free(names);
}

START_TEST(test_create_traversal_names_stay_inside_root) {
  char parent[256], root[512], before[4096], after[4096];
  make_root(parent, sizeof parent);
  snprintf(root, sizeof root, "%s/mail", parent);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  listing(parent, before, sizeof before);
  static const char *const refused[] = {"..",
                                        "../x",
                                        "a/../../b",
                                        "/etc",
                                        "x/",
                                        ".",
                                        "a/./b",
                                        "a//b",
                                        "../../..",
                                        "\x01",
                                        "a\nb",
                                        "tab\there",
                                        "\xc0\xae\xc0\xae",
                                        NULL};
  for (size_t i = 0; refused[i]; i++) {
    ck_assert_int_eq(c_create(&c, c.alice, refused[i]), MAILPROTO_ERR_BAD_NAME);
    ck_assert_int_eq(c_append(&c, c.alice, refused[i], "x\r\n", 0, NULL, NULL),
                     MAILPROTO_ERR_BAD_NAME);
    ck_assert_int_eq(mailproto_store_call_rename(&c.st, cop(&c), 0, c.alice,
                                                 "INBOX", refused[i]),
                     MAILPROTO_ERR_BAD_NAME);
  }
  /* Odd but valid names are escaped into one directory each. */
  static const char *const odd[] = {".x", "..y", "a.b", "a/.b", "~", "%2E",
                                    "%",  "&",   "-",   "...",  NULL};
  for (size_t i = 0; odd[i]; i++)
    ck_assert_msg(c_create(&c, c.alice, odd[i]) == 0, "create %s", odd[i]);
  ck_assert_int_eq(
      mailproto_store_call_list(&c.st, cop(&c), 0, c.alice, "*", 0), 0);
  for (size_t i = 0; odd[i]; i++) {
    char line[64];
    snprintf(line, sizeof line, "\n%s ", odd[i]);
    char with_nl[4200];
    snprintf(with_nl, sizeof with_nl, "\n%s", c.list);
    ck_assert_msg(strstr(with_nl, line) != NULL, "%s not listed", odd[i]);
  }
  /* Nothing appeared next to the root; every folder is one ".name"
   * directory inside the user's Maildir. */
  listing(parent, after, sizeof after);
  ck_assert_str_eq(before, after);
  char user[600], entries[8192];
  snprintf(user, sizeof user, "%s/alice", root);
  listing(user, entries, sizeof entries);
  for (char *line = entries; *line;) {
    char *nl = strchr(line, '\n');
    *nl = '\0';
    int known = strcmp(line, ".") == 0 || strcmp(line, "..") == 0 ||
                strcmp(line, "tmp") == 0 || strcmp(line, "new") == 0 ||
                strcmp(line, "cur") == 0 ||
                strcmp(line, "subscriptions") == 0 ||
                strncmp(line, "mailproto-", 10) == 0 ||
                (line[0] == '.' && !strchr(line, '/'));
    ck_assert_msg(known, "unexpected entry %s", line);
    line = nl + 1;
  }
  /* User names become directory names: the same rules. */
  static const char *const bad_users[] = {"",    "..",  ".hidden", "a/b",
                                          "a@b", "x\n", NULL};
  for (size_t i = 0; bad_users[i]; i++)
    ck_assert_int_eq(mailproto_maildir_add_user(m, bad_users[i], "pw"),
                     MAILPROTO_ERR_INVALID_ARGUMENT);
  char longuser[70];
  memset(longuser, 'u', 65);
  longuser[65] = '\0';
  ck_assert_int_eq(mailproto_maildir_add_user(m, longuser, "pw"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  longuser[64] = '\0';
  ck_assert_int_eq(mailproto_maildir_add_user(m, longuser, "pw"), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "ALICE", "pw"),
                   MAILPROTO_ERR_EXISTS);
  mailproto_maildir_free(m);
  rm_tree(parent);
}
END_TEST

START_TEST(test_create_long_names_get_hashed_directories) {
  char root[256], user[512], name[MAILPROTO_MAILBOX_NAME_MAX + 1];
  char child[MAILPROTO_MAILBOX_NAME_MAX + 8];
  make_root(root, sizeof root);
  snprintf(user, sizeof user, "%s/alice", root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  /* 300 bytes of "\xc3\xa9" (200 characters) and a child. */
  for (int i = 0; i < 150; i++)
    memcpy(name + 2 * i, "\xc3\xa9", 2);
  name[300] = '\0';
  snprintf(child, sizeof child, "%s/kid", name);
  ck_assert_int_eq(c_create(&c, c.alice, name), 0);
  ck_assert_int_eq(c_create(&c, c.alice, child), 0);
  ck_assert_int_eq(c_append(&c, c.alice, child, "deep\r\n", 0, NULL, NULL), 0);
  ck_assert_int_eq(
      mailproto_store_call_list(&c.st, cop(&c), 0, c.alice, "*", 0), 0);
  ck_assert_uint_eq(c.mailboxes, 3);
  ck_assert_ptr_nonnull(strstr(c.list, child));
  char entries[4096];
  listing(user, entries, sizeof entries);
  ck_assert_ptr_nonnull(strstr(entries, "\n.~"));
  /* Renamed to a short name, it becomes a plain Maildir++ folder. */
  ck_assert_int_eq(
      mailproto_store_call_rename(&c.st, cop(&c), 0, c.alice, name, "short"),
      0);
  listing(user, entries, sizeof entries);
  ck_assert_ptr_null(strstr(entries, "\n.~"));
  ck_assert_ptr_nonnull(strstr(entries, "\n.short.kid\n"));
  ck_assert_uint_eq(c_status(&c, c.alice, "short/kid").messages, 1);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Damaged index files                                                 */
/* ------------------------------------------------------------------ */

/* A Maildir with three messages; returns its UIDVALIDITY. */
static uint32_t three_messages(const char *root) {
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "m\r\n",
                              i == 1 ? MAILPROTO_FLAG_SEEN : 0, NULL, NULL),
                     0);
  uint32_t uv = c_status(&c, c.alice, "INBOX").uidvalidity;
  mailproto_maildir_free(m);
  return uv;
}

/* Opens INBOX with a fresh store: the three messages, UIDs ascending. */
static mailproto_mailbox_status reopen_three(const char *root) {
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, 3);
  ck_assert_uint_lt(c.msgs[0].uid, c.msgs[1].uid);
  ck_assert_uint_lt(c.msgs[1].uid, c.msgs[2].uid);
  ck_assert_uint_eq(c.msgs[1].flags & MAILPROTO_FLAG_SEEN, MAILPROTO_FLAG_SEEN);
  char buf[16];
  c_read(&c, h, c.msgs[2].uid, buf, sizeof buf);
  ck_assert_str_eq(buf, "m\r\n");
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  return st;
}

START_TEST(test_open_rebuilds_damaged_index) {
  static const char *const garbage[] = {
      "",
      "not an index\n",
      "mailproto-maildir 1 0 1 1 1 0\n",
      "mailproto-maildir 2 5 1 1 1 0\n",
      "mailproto-maildir 1 5 1 1 1 0 extra\n",
      "mailproto-maildir 1 99999999999 1 1 1 0\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 1 1 0 0 3 3 0 0 x\nQ what\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 2 1 0 0 3 3 0 0 x\nA 1 1 0 0 3 3 0 0 "
      "y\n",
      "mailproto-maildir 1 5 4 9 1 0\nF 7 2 1 0\n",
      "mailproto-maildir 1 5 4 9 1 0\nX 1 2\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 1 1 0 0 3 3 0 0 a/b\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 1 1 0 0 3 3 0 9999 a\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 1 1 0 0 3 3 0 0 a:2,S\n",
      "mailproto-maildir 1 5 4 9 1 0\nA 1 1 0 0 3 3 0 0\n",
      "mailproto-maildir 1 5 4 9 1 0\nA  1 1 0 0 3 3 0 0 a\n",
      "mailproto-maildir 1 5 4 9 1 0\nR 99\n",
      "\0\0\0\0\0\0\0\0",
      NULL};
  for (size_t i = 0; garbage[i]; i++) {
    char root[256], path[512], damaged[600];
    make_root(root, sizeof root);
    uint32_t uv = three_messages(root);
    snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
    write_file(path, garbage[i]);
    /* Rebuilt from the files, under a UIDVALIDITY clients have not seen. */
    mailproto_mailbox_status st = reopen_three(root);
    ck_assert_msg(st.uidvalidity > uv, "case %zu kept UIDVALIDITY", i);
    snprintf(damaged, sizeof damaged, "%s.damaged", path);
    ck_assert_int_eq(access(damaged, F_OK), 0);
    /* And it works on from there. */
    mailproto_maildir *m = open_store(root, 0, NULL);
    client c;
    c_init(&c, m);
    uint32_t uid;
    ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "n\r\n", 0, NULL, &uid), 0);
    ck_assert_uint_gt(uid, 3);
    ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 4);
    mailproto_maildir_free(m);
    rm_tree(root);
  }
}
END_TEST

START_TEST(test_open_ignores_torn_index_line) {
  char root[256], path[512], text[4096];
  make_root(root, sizeof root);
  uint32_t uv = three_messages(root);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  size_t n = read_text(path, text, sizeof text);
  /* A crash in the middle of the last record: its end is missing. */
  ck_assert_int_eq(truncate(path, (off_t)(n - 5)), 0);
  mailproto_mailbox_status st = reopen_three(root);
  /* The torn record's message got its UID again: same UIDVALIDITY. */
  ck_assert_uint_eq(st.uidvalidity, uv);
  ck_assert_uint_eq(st.messages, 3);
  /* A line longer than any record is damage, not a torn line. */
  FILE *f = fopen(path, "ab");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < 2000; i++)
    fputc('x', f);
  fclose(f);
  st = reopen_three(root);
  ck_assert_uint_gt(st.uidvalidity, uv);
  rm_tree(root);
}
END_TEST

START_TEST(test_open_index_with_long_names_is_safe) {
  char root[256], path[512], text[2048], base[256];
  make_root(root, sizeof root);
  three_messages(root);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  read_text(path, text, sizeof text);
  /* A record whose name leaves no room for flag letters, for a file that
   * exists in cur/ without them, and one for a file that does not. */
  memset(base, 'b', 253);
  base[253] = '\0';
  size_t n = strlen(text);
  snprintf(text + n, sizeof text - n,
           "A 10 9 1f ffffffffffffffff 3 3 0 0 %s\n"
           "A 11 9 1 0 3 3 0 0 c%s\n",
           base, base + 1);
  write_file(path, text);
  char file[1024];
  snprintf(file, sizeof file, "%s/alice/cur/%s", root, base);
  write_file(file, "m\r\n");
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_uint_eq(st.messages, 4);
  const mailproto_message_info *m10 = find_msg(&c, 10);
  ck_assert_ptr_nonnull(m10);
  char buf[16];
  c_read(&c, h, 10, buf, sizeof buf);
  ck_assert_str_eq(buf, "m\r\n");
  /* No room for letters: its flags cannot change (the name would not
   * fit), everything else can. */
  ck_assert_int_lt(
      c_flags(&c, h, 10, 10, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_SEEN, NULL),
      0);
  ck_assert_int_eq(
      c_flags(&c, h, 1, 3, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_SEEN, NULL), 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_open_random_index_bytes_never_crash) {
  char root[256], path[512];
  make_root(root, sizeof root);
  three_messages(root);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  char good[4096];
  size_t len = read_text(path, good, sizeof good);
  uint32_t seed = 12345;
  for (int round = 0; round < 200; round++) {
    char bad[4096];
    memcpy(bad, good, len);
    /* Flip a few bytes of a good index. */
    for (int k = 0; k < 1 + round % 4; k++) {
      seed = seed * 1103515245u + 12345u;
      size_t at = (seed >> 8) % len;
      seed = seed * 1103515245u + 12345u;
      bad[at] = (char)(seed >> 16);
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(bad, 1, len, f);
    fclose(f);
    mailproto_maildir *m = open_store(root, 0, NULL);
    client c;
    c_init(&c, m);
    void *h = NULL;
    mailproto_mailbox_status st;
    /* Whatever the bytes: the mailbox opens, every file shows once. */
    ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
    ck_assert_uint_eq(st.messages, 3);
    for (size_t i = 1; i < c.nmsgs; i++)
      ck_assert_uint_gt(c.msgs[i].uid, c.msgs[i - 1].uid);
    mailproto_store_call_close(&c.st, h);
    mailproto_maildir_free(m);
    len = read_text(path, good, sizeof good);
  }
  rm_tree(root);
}
END_TEST

/* Rewrites the header of `path` with the mod-sequence `modseq`. */
static void set_index_modseq(const char *path, unsigned long long modseq) {
  char text[4096], out[4200];
  read_text(path, text, sizeof text);
  unsigned long uv, next, recent;
  unsigned use;
  unsigned long long old;
  int used = 0;
  ck_assert_int_eq(sscanf(text, "mailproto-maildir 1 %lu %lu %llu %lu %u\n%n",
                          &uv, &next, &old, &recent, &use, &used),
                   5);
  ck_assert_int_gt(used, 0);
  snprintf(out, sizeof out, "mailproto-maildir 1 %lu %lu %llu %lu %u\n%s", uv,
           next, modseq, recent, use, text + used);
  write_file(path, out);
}

/* Mod-sequences are positive 63-bit values (RFC 7162 3.1) and each change
 * adds one: an index claiming the top of that range would make the next
 * change's value invalid (and unreadable for the next reader). Such an
 * index is damage: rebuilt, and every value stays in range. A claim just
 * inside the bound is kept. */
START_TEST(test_open_index_modseq_beyond_range_is_damage) {
  char root[256], path[512];
  make_root(root, sizeof root);
  uint32_t uv = three_messages(root);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  set_index_modseq(path, 9223372036854775807ull);
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_uint_gt(st.uidvalidity, uv);
  ck_assert_int_eq(
      c_flags(&c, h, 1, 3, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_FLAGGED, NULL),
      0);
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(c.nmsgs, 3);
  for (size_t i = 0; i < c.nmsgs; i++)
    ck_assert_uint_le(c.msgs[i].modseq, st.highest_modseq);
  ck_assert_uint_lt(st.highest_modseq, 1000);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  /* What the changes wrote reads back: no second rebuild. */
  mailproto_mailbox_status again = reopen_three(root);
  ck_assert_uint_eq(again.uidvalidity, st.uidvalidity);

  uv = again.uidvalidity;
  set_index_modseq(path, 4611686018427387903ull);
  m = open_store(root, 0, NULL);
  c_init(&c, m);
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_uint_eq(st.uidvalidity, uv);
  ck_assert_uint_eq(st.highest_modseq, 4611686018427387903ull);
  ck_assert_int_eq(
      c_flags(&c, h, 1, 3, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_DRAFT, NULL), 0);
  ck_assert_int_eq(c_sync(&c, h, &st), 0);
  ck_assert_uint_eq(st.highest_modseq, 4611686018427387904ull);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory, handles, API                                                */
/* ------------------------------------------------------------------ */

/* Every hook once, stopping at the first failure; returns it. */
static int everything(mailproto_maildir *m) {
  client c;
  memset(&c, 0, sizeof c);
  mailproto_maildir_store(m, &c.st);
  int rc;
  void *h = NULL, *w = NULL;
  mailproto_mailbox_status st;
  if ((rc = c_auth(&c, "alice", "secret", &c.alice)) != 0 ||
      (rc = mailproto_store_call_lookup_recipient(&c.st, cop(&c), 0, "bob@x",
                                                  &c.bob)) != 0)
    return rc;
  void *to[2] = {c.alice, c.bob};
  int results[2];
  if ((rc = c_append(&c, c.alice, "INBOX", "Subject: a\r\n\r\nx\r\n",
                     MAILPROTO_FLAG_SEEN, "$Kw", NULL)) != 0 ||
      (rc = c_deliver(&c, to, 2, "Subject: d\r\n\r\ny\r\n", 1, results)) != 0 ||
      (rc = c_create(&c, c.alice, "Box/Sub")) != 0 ||
      (rc = mailproto_store_call_subscribe(&c.st, cop(&c), 0, c.alice, "Box",
                                           1)) != 0 ||
      (rc = mailproto_store_call_list(&c.st, cop(&c), 0, c.alice, "*", 0)) !=
          0 ||
      (rc = mailproto_store_call_status(&c.st, cop(&c), 0, c.bob, "INBOX",
                                        &st)) != 0 ||
      (rc = c_open(&c, c.alice, "INBOX", 0, &h, &st)) != 0)
    return rc;
  mailproto_uid_range all = {1, UINT32_MAX};
  uint32_t uv;
  char buf[64];
  const uint8_t *data;
  size_t len;
  if ((rc = c_flags(&c, h, 1, UINT32_MAX, MAILPROTO_FLAGS_ADD,
                    MAILPROTO_FLAG_FLAGGED, "$Other")) == 0 &&
      (rc = mailproto_store_call_read(&c.st, cop(&c), 0, h, 1, 0, sizeof buf,
                                      &data, &len)) == 0 &&
      (rc = mailproto_store_call_copy(&c.st, cop(&c), 0, h, &all, 1, "Box/Sub",
                                      1, &uv)) == 0 &&
      (rc = c_sync(&c, h, &st)) == 0)
    rc = c_expunge(&c, h, 1, UINT32_MAX);
  mailproto_store_call_close(&c.st, h);
  if (rc != 0)
    return rc;
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  if ((rc = mailproto_store_call_append_begin(&c.st, cop(&c), 0, c.alice,
                                              "INBOX", &info, &w)) != 0)
    return rc;
  mailproto_store_call_abort(&c.st, w);
  if ((rc = mailproto_store_call_rename(&c.st, cop(&c), 0, c.alice, "Box",
                                        "Moved")) != 0)
    return rc;
  return mailproto_store_call_delete(&c.st, cop(&c), 0, c.alice, "Moved/Sub");
}

START_TEST(test_maildir_alloc_failures_are_clean) {
  int completed = 0;
  unsigned long n;
  for (n = 1; n < 5000 && !completed; n++) {
    char root[256];
    make_root(root, sizeof root);
    alloc_fail af;
    alloc_fail_init(&af, n);
    mailproto_maildir_config cfg;
    mailproto_maildir_config_init(&cfg, sizeof cfg);
    cfg.root = root;
    cfg.fsync = 0;
    cfg.allocator = &af.allocator;
    mailproto_maildir *m = NULL;
    int rc = mailproto_maildir_new(&cfg, &m);
    if (rc == 0 && (rc = mailproto_maildir_add_user(m, "alice", "secret")) == 0)
      rc = mailproto_maildir_add_user(m, "bob", "hunter2");
    if (rc == 0)
      rc = everything(m);
    ck_assert_msg(rc == 0 || rc == MAILPROTO_ERR_NOMEM, "n=%lu: %d", n, rc);
    completed = !alloc_fail_triggered(&af);
    if (completed)
      ck_assert_int_eq(rc, 0);
    mailproto_maildir_free(m);
    ck_assert_msg(af.live == 0, "n=%lu: %ld blocks leaked", n, af.live);
    /* What was done is whole: a plain store opens it all. */
    if (rc == 0 || n % 7 == 0) {
      mailproto_maildir *ok = open_store(root, 0, NULL);
      client c;
      c_init(&c, ok);
      void *h = NULL;
      ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
      mailproto_store_call_close(&c.st, h);
      mailproto_maildir_free(ok);
    }
    rm_tree(root);
  }
  ck_assert(completed);
  ck_assert_uint_gt(n, 50);
}
END_TEST

START_TEST(test_delete_and_rename_detach_open_handles) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  ck_assert_int_eq(c_create(&c, c.alice, "Gone"), 0);
  ck_assert_int_eq(c_create(&c, c.alice, "Moving"), 0);
  uint32_t u1, u2;
  ck_assert_int_eq(c_append(&c, c.alice, "Gone", "g\r\n", 0, NULL, &u1), 0);
  ck_assert_int_eq(c_append(&c, c.alice, "Moving", "m\r\n", 0, NULL, &u2), 0);
  void *hg = NULL, *hm = NULL;
  int notified = 0;
  mailproto_mailbox_status st;
  ck_assert_int_eq(mailproto_store_call_open(&c.st, cop(&c), 0, c.alice, "Gone",
                                             0, NULL, NULL, &hg, &st),
                   0);
  ck_assert_int_eq(c_open(&c, c.alice, "Moving", 0, &hm, NULL), 0);
  (void)notified;
  ck_assert_int_eq(
      mailproto_store_call_delete(&c.st, cop(&c), 0, c.alice, "Gone"), 0);
  ck_assert_int_eq(mailproto_store_call_rename(&c.st, cop(&c), 0, c.alice,
                                               "Moving", "Moved"),
                   0);
  /* Both handles see their message expunged, then nothing. */
  ck_assert_int_eq(c_sync(&c, hg, &st), 0);
  ck_assert_uint_eq(c.nexp, 1);
  ck_assert_uint_eq(c.exp[0], u1);
  ck_assert_uint_eq(st.messages, 0);
  ck_assert_int_eq(c_sync(&c, hm, &st), 0);
  ck_assert_uint_eq(c.nexp, 1);
  ck_assert_uint_eq(c.exp[0], u2);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(
      mailproto_store_call_read(&c.st, cop(&c), 0, hm, u2, 0, 10, &data, &len),
      MAILPROTO_ERR_EXPUNGED);
  ck_assert_int_eq(
      c_flags(&c, hm, 1, 9, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_SEEN, NULL), 0);
  ck_assert_int_eq(c_sync(&c, hm, &st), 0);
  ck_assert_uint_eq(c.nexp + c.nmsgs, 0);
  mailproto_store_call_close(&c.st, hg);
  mailproto_store_call_close(&c.st, hm);
  /* The message lives on under the new name, under a new UIDVALIDITY;
   * a mailbox made again under the old name starts empty. */
  ck_assert_uint_eq(c_status(&c, c.alice, "Moved").messages, 1);
  ck_assert_int_eq(c_create(&c, c.alice, "Gone"), 0);
  ck_assert_uint_eq(c_status(&c, c.alice, "Gone").messages, 0);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_maildir_new_and_users_check_arguments) {
  char root[256], file[512];
  make_root(root, sizeof root);
  mailproto_maildir *m = NULL;
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  ck_assert_int_eq(cfg.fsync, 1);
  ck_assert_uint_eq(cfg.lock_timeout_ms, 5000);
  ck_assert_int_eq(cfg.create_users, 1);
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &m),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_maildir_new(NULL, &m),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_maildir_new(&cfg, NULL),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  /* A root that is a file cannot be used; a missing one is made. */
  snprintf(file, sizeof file, "%s/file", root);
  write_file(file, "x");
  cfg.root = file;
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &m), MAILPROTO_ERR_IO);
  ck_assert_ptr_null(m);
  snprintf(file, sizeof file, "%s/made/deeper", root);
  cfg.root = file;
  cfg.create_users = 0;
  ck_assert_int_eq(mailproto_maildir_new(&cfg, &m), 0);
  struct stat st;
  ck_assert_int_eq(stat(file, &st), 0);
  ck_assert_uint_eq(st.st_mode & 0777, 0700);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "carol", "pw"), 0);
  ck_assert_int_eq(mailproto_maildir_add_user(m, "carol", "pw"),
                   MAILPROTO_ERR_EXISTS);
  char longpw[MAILPROTO_SECRET_MAX + 2];
  memset(longpw, 'p', sizeof longpw - 1);
  longpw[sizeof longpw - 1] = '\0';
  ck_assert_int_eq(mailproto_maildir_add_user(m, "dave", longpw),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_maildir_add_user(NULL, "x", "y"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  /* Without create_users a missing Maildir is no mailbox to deliver to. */
  client c;
  memset(&c, 0, sizeof c);
  mailproto_maildir_store(m, &c.st);
  void *a = NULL;
  ck_assert_int_eq(mailproto_store_call_lookup_recipient(
                       &c.st, cop(&c), 0, "Carol@example.org", &a),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(c_auth(&c, "carol", "pw", &a), 0);
  ck_assert_int_eq(c_open(&c, a, "INBOX", 0, &a, NULL),
                   MAILPROTO_ERR_NOT_FOUND);
  mailproto_maildir_free(m);
  mailproto_maildir_free(NULL);
  mailproto_store out = {NULL, NULL};
  mailproto_maildir_store(NULL, &out);
  ck_assert_ptr_null(out.ops);
  mailproto_maildir_config_init(NULL, 0);
  rm_tree(root);
}
END_TEST

START_TEST(test_deliver_to_one_account_twice_gives_two_messages) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  void *to[3] = {c.alice, c.bob, c.alice};
  int results[3] = {1, 1, 1};
  ck_assert_int_eq(c_deliver(&c, to, 3, "twice\r\n", 0, results), 0);
  ck_assert_int_eq(results[0] | results[1] | results[2], 0);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 2);
  ck_assert_uint_eq(c_status(&c, c.bob, "INBOX").messages, 1);
  /* A large message in small writes: never held whole, sizes counted. */
  void *w = NULL;
  void *one[1] = {c.bob};
  ck_assert_int_eq(
      mailproto_store_call_deliver_begin(&c.st, cop(&c), 0, one, 1, NULL, &w),
      0);
  char chunk[1000];
  for (size_t i = 0; i < sizeof chunk; i++)
    chunk[i] = i % 100 == 99 ? '\n' : 'x';
  for (int i = 0; i < 3000; i++)
    ck_assert_int_eq(mailproto_store_call_write(&c.st, cop(&c), 0, w,
                                                (const uint8_t *)chunk,
                                                sizeof chunk),
                     0);
  ck_assert_int_eq(
      mailproto_store_call_deliver_commit(&c.st, cop(&c), 0, w, 1, results, 1),
      0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.bob, "INBOX", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 2);
  ck_assert_uint_eq(c.msgs[1].stored_size, 3000000);
  ck_assert_uint_eq(c.msgs[1].size, 3030000);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(mailproto_store_call_read(&c.st, cop(&c), 0, h,
                                             c.msgs[1].uid, 2999990, 100, &data,
                                             &len),
                   0);
  ck_assert_uint_eq(len, 10);
  ck_assert_int_eq(mailproto_store_call_read(&c.st, cop(&c), 0, h,
                                             c.msgs[1].uid, 0, 5000000, &data,
                                             &len),
                   0);
  ck_assert_uint_eq(len, 1 << 20); /* one read is bounded */
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Other paths                                                         */
/* ------------------------------------------------------------------ */

/* Fails calls by name: every `call` with errno `err`, or only the n-th. */
typedef struct call_fault {
  const char *call;
  int err;
  unsigned long nth, seen;
} call_fault;

static int call_fault_fn(void *arg, const char *call) {
  call_fault *cf = arg;
  if (strcmp(call, cf->call) != 0)
    return 0;
  cf->seen++;
  return cf->nth == 0 || cf->seen == cf->nth ? cf->err : 0;
}

START_TEST(test_copy_and_deliver_without_hard_links) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  /* A file system without hard links (or another one): copies instead. */
  call_fault cf = {"link", EXDEV, 0, 0};
  mailproto_maildir_set_fault(m, call_fault_fn, &cf);
  void *to[2] = {c.alice, c.bob};
  int results[2];
  ck_assert_int_eq(
      c_deliver(&c, to, 2, "Subject: both\r\n\r\nx\r\n", 1, results), 0);
  ck_assert_int_eq(results[0] | results[1], 0);
  uint32_t uid;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "kept\r\n",
                            MAILPROTO_FLAG_FLAGGED, "$Tag", &uid),
                   0);
  ck_assert_int_eq(c_create(&c, c.alice, "Copies"), 0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, NULL), 0);
  mailproto_uid_range r = {uid, uid};
  uint32_t uv;
  ck_assert_int_eq(
      mailproto_store_call_copy(&c.st, cop(&c), 0, h, &r, 1, "Copies", 0, &uv),
      0);
  ck_assert_uint_eq(c.nmap, 1);
  ck_assert_uint_gt(cf.seen, 2);
  mailproto_store_call_close(&c.st, h);
  ck_assert_int_eq(c_open(&c, c.alice, "Copies", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(c.msgs[0].flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(c.nkws, 1);
  ck_assert_str_eq(c.kwname[0], "$Tag");
  char buf[32];
  c_read(&c, h, c.msgs[0].uid, buf, sizeof buf);
  ck_assert_str_eq(buf, "kept\r\n");
  mailproto_store_call_close(&c.st, h);
  ck_assert_uint_eq(c_status(&c, c.bob, "INBOX").messages, 1);
  mailproto_maildir_set_fault(m, NULL, NULL);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_deliver_commit_fails_for_one_recipient) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  void *to[2] = {c.alice, c.bob};
  int results[2] = {1, 1};
  /* LMTP: bob's copy fails, alice's stays. */
  call_fault cf = {"link", ENOSPC, 2, 0};
  mailproto_maildir_set_fault(m, call_fault_fn, &cf);
  ck_assert_int_eq(c_deliver(&c, to, 2, "lmtp\r\n", 0, results), 0);
  ck_assert_int_eq(results[0], 0);
  ck_assert_int_eq(results[1], MAILPROTO_ERR_LIMIT);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 1);
  ck_assert_uint_eq(c_status(&c, c.bob, "INBOX").messages, 0);
  /* SMTP: all or nothing, alice's copy is taken back. */
  cf.seen = 0;
  ck_assert_int_eq(c_deliver(&c, to, 2, "smtp\r\n", 1, results),
                   MAILPROTO_ERR_LIMIT);
  ck_assert_int_eq(results[0], MAILPROTO_ERR_LIMIT);
  ck_assert_int_eq(results[1], MAILPROTO_ERR_LIMIT);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 1);
  ck_assert_uint_eq(c_status(&c, c.bob, "INBOX").messages, 0);
  /* Nothing of either is left in tmp/. */
  char dir[512];
  snprintf(dir, sizeof dir, "%s/alice", root);
  ck_assert_uint_eq(count_files(dir, "tmp"), 0);
  mailproto_maildir_set_fault(m, NULL, NULL);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

START_TEST(test_set_flags_compacts_index_other_views_follow) {
  char root[256], path[512];
  make_root(root, sizeof root);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  mailproto_maildir *m1 = open_store(root, 0, NULL);
  mailproto_maildir *m2 = open_store(root, 0, NULL);
  client c1, c2;
  c_init(&c1, m1);
  c_init(&c2, m2);
  for (int i = 0; i < 10; i++)
    ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "m\r\n", 0, NULL, NULL),
                     0);
  void *h1 = NULL, *h2 = NULL;
  ck_assert_int_eq(c_open(&c1, c1.alice, "INBOX", 0, &h1, NULL), 0);
  ck_assert_int_eq(c_open(&c2, c2.alice, "INBOX", 0, &h2, NULL), 0);
  struct stat before, after;
  ck_assert_int_eq(stat(path, &before), 0);
  /* Every change appends records; past twice the messages (or 1024) the
   * index is written anew, small again. */
  for (int i = 0; i < 120; i++)
    ck_assert_int_eq(
        c_flags(&c1, h1, 1, UINT32_MAX,
                i % 2 ? MAILPROTO_FLAGS_REMOVE : MAILPROTO_FLAGS_ADD,
                MAILPROTO_FLAG_SEEN, NULL),
        0);
  ck_assert_int_eq(
      c_flags(&c1, h1, 3, 3, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_FLAGGED, NULL),
      0);
  ck_assert_int_eq(c_expunge(&c1, h1, 10, 10), 0);
  ck_assert_int_eq(stat(path, &after), 0);
  ck_assert_uint_ne(before.st_ino, after.st_ino);
  /* 1,230 records were written; far fewer lines are left. */
  static char text[65536];
  read_text(path, text, sizeof text);
  size_t lines = 0;
  for (const char *p = text; (p = strchr(p, '\n')); p++)
    lines++;
  ck_assert_uint_lt(lines, 500);
  /* The other store's view reloads and reports exactly what changed. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_sync(&c2, h2, &st), 0);
  ck_assert_uint_eq(c2.nexp, 1);
  ck_assert_uint_eq(c2.exp[0], 10);
  ck_assert_uint_eq(st.messages, 9);
  ck_assert_uint_eq(st.unseen, 9);
  const mailproto_message_info *m3 = find_msg(&c2, 3);
  ck_assert_ptr_nonnull(m3);
  ck_assert_uint_eq(m3 ? m3->flags & MAILPROTO_FLAGS_SETTABLE : 0,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(st.uidvalidity,
                    c_status(&c1, c1.alice, "INBOX").uidvalidity);
  mailproto_store_call_close(&c1.st, h1);
  mailproto_store_call_close(&c2.st, h2);
  mailproto_maildir_free(m1);
  mailproto_maildir_free(m2);
  rm_tree(root);
}
END_TEST

START_TEST(test_rename_inbox_keeps_keywords_special_use_persists) {
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 1, NULL);
  client c;
  c_init(&c, m);
  uint32_t uid;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "kw\r\n", MAILPROTO_FLAG_SEEN,
                            "$Important", &uid),
                   0);
  void *to[1] = {c.alice};
  int results[1];
  ck_assert_int_eq(c_deliver(&c, to, 1, "in new/\r\n", 1, results), 0);
  ck_assert_int_eq(
      mailproto_store_call_rename(&c.st, cop(&c), 0, c.alice, "INBOX", "Old"),
      0);
  ck_assert_int_eq(mailproto_store_call_create(&c.st, cop(&c), 0, c.alice,
                                               "Sent",
                                               MAILPROTO_MBOX_SPECIAL_SENT),
                   0);
  mailproto_maildir_free(m);
  m = open_store(root, 1, NULL);
  c_init(&c, m);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 0);
  void *h = NULL;
  ck_assert_int_eq(c_open(&c, c.alice, "Old", 0, &h, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 2);
  ck_assert_uint_eq(c.msgs[0].uid, uid);
  ck_assert_uint_eq(c.nkws, 1);
  ck_assert_str_eq(c.kwname[0], "$Important");
  ck_assert_uint_eq(c.msgs[0].keywords, (uint64_t)1 << c.kwidx[0]);
  ck_assert_uint_eq(c.msgs[0].flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_SEEN);
  mailproto_store_call_close(&c.st, h);
  ck_assert_int_eq(
      mailproto_store_call_list(&c.st, cop(&c), 0, c.alice, "Sent", 0), 0);
  char want[64];
  snprintf(want, sizeof want, "Sent %x\n",
           MAILPROTO_MBOX_SPECIAL_SENT | MAILPROTO_MBOX_HAS_NO_CHILDREN);
  ck_assert_str_eq(c.list, want);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The structure cache and message_get                                 */
/* ------------------------------------------------------------------ */

/* The entry of `uid` into out (NUL-terminated); returns the code. */
static int c_cache_get(client *c, void *h, uint32_t uid, char *out,
                       size_t size) {
  const uint8_t *data;
  size_t len;
  int rc = mailproto_store_call_cache_get(&c->st, h, uid, &data, &len);
  out[0] = '\0';
  if (rc == 0) {
    ck_assert_uint_lt(len, size);
    memcpy(out, data, len);
    out[len] = '\0';
  }
  return rc;
}

static int c_cache_put(client *c, void *h, uint32_t uid, const char *text) {
  return mailproto_store_call_cache_put(&c->st, h, uid, (const uint8_t *)text,
                                        strlen(text));
}

static int c_lookup(client *c, void *h, uint32_t uid, uint64_t *size) {
  mailproto_message_info info;
  int rc = mailproto_store_call_message_get(&c->st, h, uid, &info);
  *size = rc == 0 ? info.size : 0;
  return rc;
}

/* Whether alice's INBOX has a cache file for uv.uid. */
static int has_entry(const char *root, uint32_t uv, uint32_t uid) {
  char path[1024];
  snprintf(path, sizeof path, "%s/alice/mailproto-cache/%lu.%lu", root,
           (unsigned long)uv, (unsigned long)uid);
  return access(path, F_OK) == 0;
}

START_TEST(test_message_get_after_index_rewritten_elsewhere) {
  /* Another process expunges a message and then writes the index anew
   * (its records outnumber the messages): this process reads the index
   * whole again, and must still answer for the expunged message it
   * reports until the sync after. */
  char root[256];
  make_root(root, sizeof root);
  mailproto_maildir *m1 = open_store(root, 0, NULL);
  mailproto_maildir *m2 = open_store(root, 0, NULL);
  client c1, c2;
  c_init(&c1, m1);
  c_init(&c2, m2);
  uint32_t u[3];
  ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "a\r\n", 0, NULL, &u[0]),
                   0);
  ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "bb\r\n", 0, NULL, &u[1]),
                   0);
  ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "ccc\r\n", 0, NULL, &u[2]),
                   0);
  void *h1 = NULL, *h2 = NULL;
  ck_assert_int_eq(c_open(&c1, c1.alice, "INBOX", 0, &h1, NULL), 0);
  ck_assert_int_eq(c_open(&c2, c2.alice, "INBOX", 0, &h2, NULL), 0);
  ck_assert_int_eq(c_expunge(&c2, h2, u[1], u[1]), 0);
  char path[512];
  struct stat before, after;
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  ck_assert_int_eq(stat(path, &before), 0);
  for (int i = 0; i < 600; i++)
    ck_assert_int_eq(
        c_flags(&c2, h2, 1, UINT32_MAX,
                i % 2 ? MAILPROTO_FLAGS_REMOVE : MAILPROTO_FLAGS_ADD,
                MAILPROTO_FLAG_SEEN, NULL),
        0);
  ck_assert_int_eq(stat(path, &after), 0);
  ck_assert_uint_ne(before.st_ino, after.st_ino); /* written anew */
  uint64_t size;
  ck_assert_int_eq(c_sync(&c1, h1, NULL), 0);
  ck_assert_uint_eq(c1.nexp, 1);
  ck_assert_uint_eq(c1.exp[0], u[1]);
  ck_assert_int_eq(c_lookup(&c1, h1, u[1], &size), 0);
  ck_assert_uint_eq(size, 4);
  ck_assert_int_eq(c_lookup(&c1, h1, u[2], &size), 0);
  ck_assert_uint_eq(size, 5);
  ck_assert_int_eq(c_sync(&c1, h1, NULL), 0);
  ck_assert_int_eq(c_lookup(&c1, h1, u[1], &size), MAILPROTO_ERR_NOT_FOUND);
  mailproto_store_call_close(&c1.st, h1);
  mailproto_store_call_close(&c2.st, h2);
  mailproto_maildir_free(m1);
  mailproto_maildir_free(m2);
  rm_tree(root);
}
END_TEST

START_TEST(test_handle_never_sees_uids_of_rebuilt_folder) {
  /* A damaged index is rebuilt under a new UIDVALIDITY, and the UIDs
   * start again: UID 1 of the new folder is another message than UID 1
   * of an open handle that has not synced yet. That handle must not get
   * its size, its cache entry or its bytes; what it knew, it keeps. */
  char root[256], path[512], buf[64];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  uint32_t u1, u2;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "one\r\n", 0, NULL, &u1), 0);
  ck_assert_int_eq(
      c_append(&c, c.alice, "INBOX", "second message\r\n", 0, NULL, &u2), 0);
  ck_assert_uint_eq(u1, 1);
  void *h = NULL, *h2 = NULL;
  mailproto_mailbox_status st, st2;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_int_eq(c_expunge(&c, h, u1, u1), 0);
  ck_assert_int_eq(c_sync(&c, h, NULL), 0);
  ck_assert_int_eq(c_sync(&c, h, NULL), 0);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  write_file(path, "damaged\n");
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h2, &st2), 0);
  ck_assert_uint_ne(st2.uidvalidity, st.uidvalidity);
  ck_assert_uint_eq(c.nmsgs, 1);
  ck_assert_uint_eq(c.msgs[0].uid, 1); /* "second message" again */
  ck_assert_int_eq(c_cache_put(&c, h2, 1, "entry of the new UID 1"), 0);
  ck_assert_int_eq(c_cache_get(&c, h2, 1, buf, sizeof buf), 0);
  /* the old handle: UID 1 was expunged and forgotten */
  uint64_t size;
  ck_assert_int_eq(c_lookup(&c, h, 1, &size), MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_ne(c_cache_get(&c, h, 1, buf, sizeof buf), 0);
  ck_assert_int_ne(c_cache_put(&c, h, 1, "wrong"), 0);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(
      mailproto_store_call_read(&c.st, cop(&c), 0, h, 1, 0, 64, &data, &len),
      MAILPROTO_ERR_EXPUNGED);
  /* UID 2, which it knew, keeps its size until the sync after the one
   * that reports it expunged */
  for (int pass = 0; pass < 2; pass++) {
    ck_assert_int_eq(c_lookup(&c, h, u2, &size), 0);
    ck_assert_uint_eq(size, 16);
    ck_assert_int_eq(c_sync(&c, h, NULL), 0);
    ck_assert_uint_eq(c.nexp, pass == 0 ? 1 : 0);
  }
  ck_assert_int_eq(c_lookup(&c, h, u2, &size), MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(c_cache_get(&c, h2, 1, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "entry of the new UID 1");
  mailproto_store_call_close(&c.st, h2);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* The same rebuild seen by the changing hooks: a handle that has not
 * synced since must not flag, expunge, copy or move the new folder's
 * messages that now carry its old UIDs (they are other messages, or the
 * same ones under new UIDs); like a mailbox gone, it changes nothing and
 * its next sync reports its messages expunged. */
START_TEST(test_stale_handle_changes_nothing_after_rebuild) {
  char root[256], path[512];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  ck_assert_int_eq(c_create(&c, c.alice, "Other"), 0);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "text\r\n", 0, NULL, NULL),
                     0);
  void *h = NULL, *h2 = NULL;
  mailproto_mailbox_status st, st2;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  snprintf(path, sizeof path, "%s/alice/mailproto-index", root);
  write_file(path, "damaged\n");
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h2, &st2), 0);
  ck_assert_uint_ne(st2.uidvalidity, st.uidvalidity);

  ck_assert_int_eq(c_flags(&c, h, 1, 2, MAILPROTO_FLAGS_ADD,
                           MAILPROTO_FLAG_FLAGGED | MAILPROTO_FLAG_DELETED,
                           "$Stale"),
                   0);
  ck_assert_int_eq(c_expunge(&c, h, 1, 2), 0);
  mailproto_uid_range all = {1, 2};
  uint32_t uv = 0;
  for (int move = 0; move < 2; move++)
    ck_assert_int_eq(mailproto_store_call_copy(&c.st, cop(&c), 0, h, &all, 1,
                                               "Other", move, &uv),
                     0);
  ck_assert_uint_eq(c_status(&c, c.alice, "Other").messages, 0);
  ck_assert_uint_eq(c_status(&c, c.alice, "INBOX").messages, 2);
  /* A fresh look at INBOX: both messages, neither flagged. */
  void *h3 = NULL;
  c.nmsgs = 0;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h3, NULL), 0);
  ck_assert_uint_eq(c.nmsgs, 2);
  for (size_t i = 0; i < 2; i++) {
    ck_assert_uint_eq(c.msgs[i].flags, 0);
    ck_assert_uint_eq(c.msgs[i].keywords, 0);
  }
  /* The stale handle learns that its messages are gone. */
  c.nexp = 0;
  ck_assert_int_eq(c_sync(&c, h, NULL), 0);
  ck_assert_uint_eq(c.nexp, 2);
  mailproto_store_call_close(&c.st, h3);
  mailproto_store_call_close(&c.st, h2);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* Another process expunges the message while this one writes its cache
 * entry: at the first file this store creates for the entry. */
typedef struct race {
  client *other;
  void *h;
  uint32_t uid;
  int done;
} race;

static int expunge_meanwhile(void *arg, const char *call) {
  race *r = arg;
  if (!r->done && strcmp(call, "open") == 0) {
    r->done = 1;
    ck_assert_int_eq(c_expunge(r->other, r->h, r->uid, r->uid), 0);
  }
  return 0;
}

START_TEST(test_cache_put_racing_expunge_leaves_no_entry) {
  char root[256], buf[64];
  make_root(root, sizeof root);
  mailproto_maildir *m1 = open_store(root, 0, NULL);
  mailproto_maildir *m2 = open_store(root, 0, NULL);
  client c1, c2;
  c_init(&c1, m1);
  c_init(&c2, m2);
  uint32_t u1, u2;
  ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "one\r\n", 0, NULL, &u1),
                   0);
  ck_assert_int_eq(c_append(&c1, c1.alice, "INBOX", "two\r\n", 0, NULL, &u2),
                   0);
  void *h1 = NULL, *h2 = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c1, c1.alice, "INBOX", 0, &h1, &st), 0);
  ck_assert_int_eq(c_open(&c2, c2.alice, "INBOX", 0, &h2, NULL), 0);
  /* the cache directory exists already: the first file made is the
   * entry's */
  ck_assert_int_eq(c_cache_put(&c2, h2, u2, "two's entry"), 0);
  race r = {&c1, h1, u1, 0};
  mailproto_maildir_set_fault(m2, expunge_meanwhile, &r);
  (void)c_cache_put(&c2, h2, u1, "one's entry");
  mailproto_maildir_set_fault(m2, NULL, NULL);
  ck_assert(r.done);
  /* the expunge removed the message's entry before this one was in
   * place: the writer must not leave it behind */
  ck_assert(!has_entry(root, st.uidvalidity, u1));
  ck_assert(has_entry(root, st.uidvalidity, u2));
  ck_assert_int_eq(c_cache_get(&c2, h2, u2, buf, sizeof buf), 0);
  char tmp[600];
  snprintf(tmp, sizeof tmp, "%s/alice", root);
  ck_assert_uint_eq(count_files(tmp, "tmp"), 0);
  mailproto_store_call_close(&c1.st, h1);
  mailproto_store_call_close(&c2.st, h2);
  mailproto_maildir_free(m1);
  mailproto_maildir_free(m2);
  rm_tree(root);
}
END_TEST

START_TEST(test_cache_hostile_entries_only_miss) {
  /* Whoever can write the folder may put anything in the cache
   * directory: the store never follows a link, blocks, reads without
   * bound or fails a lookup for it; a miss is all it costs. */
  char root[256], dir[512], path[1024], other[600], buf[64];
  make_root(root, sizeof root);
  mailproto_maildir *m = open_store(root, 0, NULL);
  client c;
  c_init(&c, m);
  uint32_t u1;
  ck_assert_int_eq(c_append(&c, c.alice, "INBOX", "one\r\n", 0, NULL, &u1), 0);
  void *h = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(c_open(&c, c.alice, "INBOX", 0, &h, &st), 0);
  ck_assert_int_eq(c_cache_put(&c, h, u1, "good"), 0);
  ck_assert_int_eq(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "good");
  snprintf(dir, sizeof dir, "%s/alice/mailproto-cache", root);
  snprintf(path, sizeof path, "%s/%lu.%lu", dir, (unsigned long)st.uidvalidity,
           (unsigned long)u1);
  snprintf(other, sizeof other, "%s/alice/elsewhere", root);
  /* a valid entry behind a symlink */
  ck_assert_int_eq(rename(path, other), 0);
  ck_assert_int_eq(symlink(other, path), 0);
  ck_assert_int_ne(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  /* a FIFO nobody writes to */
  ck_assert_int_eq(unlink(path), 0);
  ck_assert_int_eq(mkfifo(path, 0600), 0);
  ck_assert_int_ne(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  /* garbage, a torn identity line, a huge file */
  static const char *const junk[] = {"", "MPC1", "MPC1 1 2 3.4 x\ngood",
                                     "\0\0\0", NULL};
  for (int i = 0; junk[i]; i++) {
    (void)unlink(path);
    write_file(path, junk[i]);
    ck_assert_int_ne(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  }
  ck_assert_int_eq(truncate(path, (off_t)1 << 40), 0);
  ck_assert_int_ne(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  /* a put replaces any of it */
  ck_assert_int_eq(c_cache_put(&c, h, u1, "again"), 0);
  ck_assert_int_eq(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "again");
  /* the directory itself a symlink: nothing is read or written there */
  char moved[600];
  snprintf(moved, sizeof moved, "%s/alice/moved-cache", root);
  ck_assert_int_eq(rename(dir, moved), 0);
  ck_assert_int_eq(symlink(moved, dir), 0);
  ck_assert_int_ne(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
  ck_assert_int_ne(c_cache_put(&c, h, u1, "through the link"), 0);
  ck_assert_int_eq(c_cache_put(&c, h, u1, ""), 0); /* a drop never fails */
  snprintf(path, sizeof path, "%s/%lu.%lu", moved,
           (unsigned long)st.uidvalidity, (unsigned long)u1);
  char text[1024];
  ck_assert_uint_gt(read_text(path, text, sizeof text), 0);
  ck_assert_ptr_nonnull(strstr(text, "again"));
  /* an unwritable folder: puts fail, reads of the message go on */
  ck_assert_int_eq(unlink(dir), 0);
  ck_assert_int_eq(rename(moved, dir), 0);
  if (geteuid() != 0) {
    ck_assert_int_eq(chmod(dir, 0500), 0);
    ck_assert_int_ne(c_cache_put(&c, h, u1, "cannot"), 0);
    ck_assert_int_eq(c_cache_get(&c, h, u1, buf, sizeof buf), 0);
    ck_assert_str_eq(buf, "again");
    ck_assert_int_eq(chmod(dir, 0700), 0);
  }
  ck_assert_uint_eq(c_read(&c, h, u1, buf, sizeof buf), 5);
  char tmpdir[600];
  snprintf(tmpdir, sizeof tmpdir, "%s/alice", root);
  ck_assert_uint_eq(count_files(tmpdir, "tmp"), 0);
  mailproto_store_call_close(&c.st, h);
  mailproto_maildir_free(m);
  rm_tree(root);
}
END_TEST

/* ------------------------------------------------------------------ */

Suite *suite_store_maildir(void) {
  static int direct = 0, deferred = 1;
  static const conformance_backend plain = {"maildir", mb_create, mb_destroy,
                                            NULL, &direct};
  static const conformance_backend through_fault = {
      "maildir (every op deferred)", mb_create, mb_destroy, mb_turn, &deferred};
  Suite *s = conformance_suite("store_maildir", &plain);
  conformance_add_cases(s, &through_fault);

  TCase *files = tcase_create("maildir files");
  tcase_set_timeout(files, 60);
  tcase_add_test(files, test_set_flags_shows_in_file_names);
  tcase_add_test(files, test_open_read_write_moves_new_to_cur);
  tcase_add_test(files, test_sync_finds_files_of_other_programs);
  tcase_add_test(files, test_sync_counts_bare_cr_of_other_programs);
  tcase_add_test(files, test_sync_keeps_uid_of_file_renamed_elsewhere);
  tcase_add_test(files, test_set_flags_keywords_in_dovecot_files);
  tcase_add_test(files, test_subscribe_writes_dovecot_format);
  suite_add_tcase(s, files);

  TCase *crash = tcase_create("maildir crash safety");
  tcase_set_timeout(crash, 600);
  tcase_add_test(crash, test_append_fails_at_every_call);
  tcase_add_test(crash, test_append_crashes_at_every_call);
  tcase_add_test(crash, test_deliver_fails_at_every_call);
  tcase_add_test(crash, test_deliver_crashes_at_every_call);
  tcase_add_test(crash,
                 test_set_flags_expunge_copy_fail_and_crash_at_every_call);
  tcase_add_test(crash, test_open_removes_stale_tmp_files);
  suite_add_tcase(s, crash);

  TCase *procs = tcase_create("maildir processes");
  tcase_set_timeout(procs, 600);
  tcase_add_test(procs, test_append_from_concurrent_processes);
  tcase_add_test(procs, test_open_exclusive_excludes_other_process);
  tcase_add_test(procs, test_open_exclusive_excludes_other_store_object);
  tcase_add_test(procs, test_sync_finds_changes_of_other_process);
  tcase_add_test(procs, test_append_lock_wait_is_bounded);
  suite_add_tcase(s, procs);

  TCase *names = tcase_create("maildir names and damage");
  tcase_set_timeout(names, 120);
  tcase_add_test(names, test_dir_name_maps_names_reversibly);
  tcase_add_test(names, test_info_parse_and_dir_decode_never_read_past_the_end);
  tcase_add_test(names, test_create_traversal_names_stay_inside_root);
  tcase_add_test(names, test_create_long_names_get_hashed_directories);
  tcase_add_test(names, test_open_rebuilds_damaged_index);
  tcase_add_test(names, test_open_ignores_torn_index_line);
  tcase_add_test(names, test_open_index_with_long_names_is_safe);
  tcase_add_test(names, test_open_random_index_bytes_never_crash);
  tcase_add_test(names, test_open_index_modseq_beyond_range_is_damage);
  suite_add_tcase(s, names);

  TCase *misc = tcase_create("maildir memory and API");
  tcase_set_timeout(misc, 600);
  tcase_add_test(misc, test_maildir_alloc_failures_are_clean);
  tcase_add_test(misc, test_delete_and_rename_detach_open_handles);
  tcase_add_test(misc, test_maildir_new_and_users_check_arguments);
  tcase_add_test(misc, test_deliver_to_one_account_twice_gives_two_messages);
  tcase_add_test(misc, test_copy_and_deliver_without_hard_links);
  tcase_add_test(misc, test_deliver_commit_fails_for_one_recipient);
  tcase_add_test(misc, test_set_flags_compacts_index_other_views_follow);
  tcase_add_test(misc, test_rename_inbox_keeps_keywords_special_use_persists);
  suite_add_tcase(s, misc);

  TCase *cache = tcase_create("maildir cache and lookup");
  tcase_set_timeout(cache, 120);
  tcase_add_test(cache, test_message_get_after_index_rewritten_elsewhere);
  tcase_add_test(cache, test_handle_never_sees_uids_of_rebuilt_folder);
  tcase_add_test(cache, test_stale_handle_changes_nothing_after_rebuild);
  tcase_add_test(cache, test_cache_put_racing_expunge_leaves_no_entry);
  tcase_add_test(cache, test_cache_hostile_entries_only_miss);
  suite_add_tcase(s, cache);
  return s;
}
