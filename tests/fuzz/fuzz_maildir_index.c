/*
 * Fuzzes the Maildir store's index file (mailproto-index), which is input
 * from disk: another program or a crash may leave anything in it. The
 * input becomes the index of INBOX and of the folder "Archive" in a
 * Maildir that holds a fixed set of message files (in cur/ and new/, with
 * flags, keyword letters, Dovecot's ,S= and ,W= sizes, a name this store
 * would not give). Then, through the store's hooks:
 *   list "*" (reads each folder's index header), STATUS of Archive, open
 *   INBOX read-write, read the first and the last message, set \Seen on
 *   everything, append a message, expunge the first one, sync, close;
 *   then a second store object opens INBOX again.
 * Checks: no crash, no leak (a counting allocator), UIDs reported in
 * ascending order and below UIDNEXT, mod-sequences within 1..2^63-1
 * (RFC 7162 3.1), no read longer than the size the store reported, and
 * the second store sees exactly the UIDs (under the same UIDVALIDITY) the
 * first one ended with, whatever the index held. The one exception: an
 * index claiming mod-sequences near 2^62, which the store refuses as
 * damage (maildir_index.c) only once its own changes pass that bound.
 * The Maildir lives in a directory made once per process under $TMPDIR
 * (or /tmp) and removed at exit; it is rebuilt before every input, so
 * each input starts from the same files.
 */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/op.h"
#include "mailproto/maildir.h"
#include "store/store_call.h"
#include "support/alloc_fail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The message files, relative to the user's Maildir (INBOX); the seeds'
 * records name them. */
static const struct {
  const char *path;
  const char *text;
} files[] = {
    {"cur/1700000000.M1P100Q1.fuzz:2,S", "Subject: one\r\n\r\nfirst\r\n"},
    {"cur/1700000001.M2P100Q2.fuzz:2,FRS",
     "Subject: two\r\n\r\nsecond\r\n.dot\r\n"},
    {"cur/1700000002.M3P100Q3.fuzz:2,Sab",
     "Subject: three\r\n\r\nkeywords a and b\r\n"},
    {"new/1700000003.M4P100Q4.fuzz", "Subject: four\n\nbare LF\n"},
    {"cur/1700000004.M5P100Q5.fuzz,S=27,W=29:2,ST",
     "Subject: five\n\nsized\r\n"},
    {"cur/1700000005.M6P100Q6.fuzz:2,Sxz,Xext", "Subject: six\r\n\r\nodd\r\n"},
    {".Archive/cur/1700000006.M7P100Q7.fuzz:2,S",
     "Subject: seven\r\n\r\narchived\r\n"},
};

static char root[512];
static char user_dir[600];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void cleanup(void) {
  if (root[0])
    nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void put(const char *rel, const void *data, size_t len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", user_dir, rel);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || (len && write(fd, data, len) != (ssize_t)len) || close(fd))
    abort();
}

static void make_dir(const char *rel) {
  char path[1024];
  snprintf(path, sizeof path, "%s%s%s", user_dir, *rel ? "/" : "", rel);
  if (mkdir(path, 0700) != 0)
    abort();
}

/* The same Maildir before every input, with `index` in both folders. */
static void reset_disk(const uint8_t *index, size_t len) {
  if (!root[0]) {
    const char *t = getenv("TMPDIR");
    snprintf(root, sizeof root, "%s/fuzz-maildir-index-XXXXXX",
             t && *t ? t : "/tmp");
    if (!mkdtemp(root))
      abort();
    snprintf(user_dir, sizeof user_dir, "%s/alice", root);
    atexit(cleanup);
  } else {
    nftw(user_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  static const char *const dirs[] = {
      "",         "tmp",          "new",          "cur",
      ".Archive", ".Archive/tmp", ".Archive/new", ".Archive/cur"};
  for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
    make_dir(dirs[i]);
  static const char kw[] = "0 $Label1\n1 work\n2 later\n";
  put("dovecot-keywords", kw, sizeof kw - 1);
  put(".Archive/maildirfolder", "", 0);
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    put(files[i].path, files[i].text, strlen(files[i].text));
  put("mailproto-index", index, len);
  put(".Archive/mailproto-index", index, len);
}

/* ------------------------------------------------------------------ */
/* What the store reports                                              */
/* ------------------------------------------------------------------ */

#define VIEW_MAX 4096
/* The mod-sequence above which maildir_index.c calls an index damaged. */
#define MODSEQ_DAMAGE ((uint64_t)INT64_MAX / 2)

typedef struct view {
  uint32_t uids[VIEW_MAX];
  uint64_t sizes[VIEW_MAX]; /* stored_size */
  size_t count;
  int overflow; /* more messages than VIEW_MAX: no comparison */
  int unordered;
} view;

/* Adds a new UID (open reports them ascending; sync reports new ones above
 * all it reported before) or updates a known one. */
static int on_message(mailproto_op *op, const mailproto_message_info *m) {
  view *v = op->owner;
  if (m->modseq == 0 || m->modseq > INT64_MAX)
    abort();
  if (!v)
    return 0;
  for (size_t i = v->count; i-- > 0;) {
    if (v->uids[i] == m->uid) {
      v->sizes[i] = m->stored_size;
      return 0;
    }
    if (v->uids[i] < m->uid)
      break;
  }
  if (v->count && m->uid <= v->uids[v->count - 1])
    v->unordered = 1;
  if (v->count == VIEW_MAX) {
    v->overflow = 1;
    return 0;
  }
  v->uids[v->count] = m->uid;
  v->sizes[v->count++] = m->stored_size;
  return 0;
}

static int on_expunged(mailproto_op *op, uint32_t uid) {
  view *v = op->owner;
  for (size_t i = 0; v && i < v->count; i++)
    if (v->uids[i] == uid) {
      memmove(&v->uids[i], &v->uids[i + 1], (v->count - i - 1) * sizeof uid);
      memmove(&v->sizes[i], &v->sizes[i + 1],
              (v->count - i - 1) * sizeof v->sizes[0]);
      v->count--;
      break;
    }
  return 0;
}

static int on_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  (void)op;
  return mb->name && mb->name[0] ? 0 : MAILPROTO_ERR_INTERNAL;
}

static const mailproto_op_sink sink = {
    .mailbox = on_mailbox, .message = on_message, .expunged = on_expunged};

static void notified(void *arg) {
  (void)arg;
}

/* Reads a whole message; never more than the store said it holds. */
static void read_all(const mailproto_store *st, mailproto_op *op, void *h,
                     uint32_t uid, uint64_t stored) {
  uint64_t off = 0;
  for (int i = 0; i < 64; i++) {
    const uint8_t *d = NULL;
    size_t n = 0;
    if (mailproto_store_call_read(st, op, 0, h, uid, off, 16, &d, &n) != 0 ||
        n == 0)
      break;
    if (n > 16 || !d)
      abort();
    volatile uint8_t touch = d[n - 1];
    (void)touch;
    off += n;
  }
  if (off > stored)
    abort();
}

static mailproto_maildir *store_new(const mailproto_allocator *a) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = 0;
  cfg.lock_timeout_ms = 100;
  cfg.allocator = a;
  mailproto_maildir *m = NULL;
  if (mailproto_maildir_new(&cfg, &m) != 0)
    return NULL;
  if (mailproto_maildir_add_user(m, "alice", "pw") != 0) {
    mailproto_maildir_free(m);
    return NULL;
  }
  return m;
}

/* The first store: everything but the final comparison. The steps may
 * fail (a full UID space, a name too long for its flags): nothing may be
 * half-done then. Returns 1 when the last sync succeeded, so that the
 * view must match what is on disk. */
static int first_pass(const mailproto_allocator *a, view *v, uint32_t *uv) {
  mailproto_maildir *m = store_new(a);
  if (!m)
    return 0;
  mailproto_store st;
  mailproto_maildir_store(m, &st);
  mailproto_op op;
  mailproto_op_init(&op, &sink, NULL);
  void *account = NULL, *h = NULL;
  int ok = 0;
  if (mailproto_store_call_authenticate(&st, &op, 0, "", "alice", "pw", 2,
                                        &account) != 0)
    goto done;
  mailproto_store_call_list(&st, &op, 0, account, "*", 0);
  mailproto_mailbox_status status;
  mailproto_store_call_status(&st, &op, 0, account, "Archive", &status);

  mailproto_op_init(&op, &sink, v);
  int rc = mailproto_store_call_open(&st, &op, 0, account, "INBOX", 0, notified,
                                     NULL, &h, &status);
  if (rc != 0)
    goto done;
  if (v->unordered || v->count != status.messages ||
      status.highest_modseq > INT64_MAX)
    abort();
  for (size_t i = 0; i < v->count; i++)
    if (v->uids[i] >= status.uidnext)
      abort();
  *uv = status.uidvalidity;
  if (v->count) {
    read_all(&st, &op, h, v->uids[0], v->sizes[0]);
    read_all(&st, &op, h, v->uids[v->count - 1], v->sizes[v->count - 1]);
  }

  mailproto_uid_range all = {1, 0xffffffffu};
  mailproto_store_call_set_flags(&st, &op, 0, h, &all, 1, MAILPROTO_FLAGS_ADD,
                                 MAILPROTO_FLAG_SEEN, NULL, 0, 0);
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  void *w = NULL;
  uint32_t auv = 0, auid = 0;
  static const char msg[] = "Subject: new\r\n\r\nappended\r\n";
  rc = mailproto_store_call_append_begin(&st, &op, 0, account, "INBOX", &info,
                                         &w);
  if (rc == 0 && mailproto_store_call_write(
                     &st, &op, 0, w, (const uint8_t *)msg, sizeof msg - 1) != 0)
    mailproto_store_call_abort(&st, w);
  else if (rc == 0)
    mailproto_store_call_append_commit(&st, &op, 0, w, &auv, &auid);
  if (v->count) {
    mailproto_uid_range first = {v->uids[0], v->uids[0]};
    mailproto_store_call_expunge(&st, &op, 0, h, &first, 1, 0);
  }
  rc = mailproto_store_call_sync(&st, &op, 0, h, &status);
  if (rc == 0) {
    if (v->unordered || (!v->overflow && v->count != status.messages) ||
        status.highest_modseq > INT64_MAX)
      abort();
    *uv = status.uidvalidity;
    ok = status.highest_modseq <= MODSEQ_DAMAGE;
  }
  mailproto_store_call_close(&st, h);
done:
  mailproto_store_call_release_account(&st, account);
  mailproto_maildir_free(m);
  return ok;
}

/* A second store object reads what the first left. */
static void second_pass(const mailproto_allocator *a, const view *expect,
                        uint32_t uv) {
  mailproto_maildir *m = store_new(a);
  if (!m)
    return;
  mailproto_store st;
  mailproto_maildir_store(m, &st);
  static view v;
  memset(&v, 0, sizeof v);
  mailproto_op op;
  mailproto_op_init(&op, &sink, NULL);
  void *account = NULL, *h = NULL;
  mailproto_mailbox_status status;
  if (mailproto_store_call_authenticate(&st, &op, 0, "", "alice", "pw", 2,
                                        &account) == 0) {
    mailproto_op_init(&op, &sink, &v);
    if (mailproto_store_call_open(&st, &op, 0, account, "INBOX",
                                  MAILPROTO_OPEN_READONLY, NULL, NULL, &h,
                                  &status) == 0) {
      if (expect && !expect->overflow && !v.overflow &&
          (status.uidvalidity != uv || v.count != expect->count ||
           memcmp(v.uids, expect->uids, v.count * sizeof v.uids[0]) != 0))
        abort();
      mailproto_store_call_close(&st, h);
    }
  }
  mailproto_store_call_release_account(&st, account);
  mailproto_maildir_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* An index is a few lines per message; far more is only slower. */
  if (size > 1 << 16)
    return 0;
  reset_disk(data, size);
  static view v;
  memset(&v, 0, sizeof v);
  alloc_fail af;
  alloc_fail_init(&af, 0);
  uint32_t uv = 0;
  int ok = first_pass(&af.allocator, &v, &uv);
  if (af.live != 0)
    abort();
  second_pass(&af.allocator, ok ? &v : NULL, uv);
  if (af.live != 0)
    abort();
  return 0;
}
