/*
 * The Maildir store on this machine's disk:
 *  - deliveries and APPENDs per second with fsync on, beside the same-run
 *    cost of the physical floor (write + fsync + rename of the same bytes,
 *    and that plus the directory fsync a durable delivery needs);
 *  - opening a 100,000-message folder cold (a fresh store object: the
 *    index is parsed and the directories are scanned) and warm (a second
 *    open through the same store object);
 *  - memory per message of the folder view and of an open handle.
 *   bench_maildir [--quick]     (quick: small counts, figures not meaningful)
 * Runs in a fresh directory under $TMPDIR (or /tmp), removed afterwards.
 */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_util.h"
#include "core/op.h"
#include "mailproto/maildir.h"
#include "store/store_call.h"
#include "support/alloc_fail.h"

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void die(const char *what, int rc) {
  fprintf(stderr, "bench_maildir: %s: %s\n", what, mailproto_strerror(rc));
  exit(1);
}

static size_t counted;
static int count_message(mailproto_op *op, const mailproto_message_info *m) {
  (void)op;
  (void)m;
  counted++;
  return 0;
}
static const mailproto_op_sink sink = {.message = count_message};

typedef struct env {
  mailproto_maildir *m;
  mailproto_store st;
  mailproto_op op;
  void *user;
} env;

static mailproto_op *fresh(env *e) {
  mailproto_op_init(&e->op, &sink, NULL);
  return &e->op;
}

static void env_open(env *e, const char *root, int fsync_on,
                     const mailproto_allocator *a) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  cfg.fsync = fsync_on;
  cfg.allocator = a;
  int rc = mailproto_maildir_new(&cfg, &e->m);
  if (rc == 0)
    rc = mailproto_maildir_add_user(e->m, "user", "pw");
  if (rc != 0)
    die("store", rc);
  mailproto_maildir_store(e->m, &e->st);
  rc = mailproto_store_call_authenticate(&e->st, fresh(e), 0, "", "user", "pw",
                                         2, &e->user);
  if (rc != 0)
    die("authenticate", rc);
}

static void deliver(env *e, const uint8_t *msg, size_t len) {
  void *to[1] = {e->user}, *w = NULL;
  int results[1];
  int rc =
      mailproto_store_call_deliver_begin(&e->st, fresh(e), 0, to, 1, NULL, &w);
  if (rc == 0)
    rc = mailproto_store_call_write(&e->st, fresh(e), 0, w, msg, len);
  if (rc == 0)
    rc = mailproto_store_call_deliver_commit(&e->st, fresh(e), 0, w, 1, results,
                                             1);
  if (rc != 0)
    die("deliver", rc);
}

static void append(env *e, const uint8_t *msg, size_t len) {
  mailproto_append_info info = {sizeof info, 0, NULL, 0, NULL, 0};
  void *w = NULL;
  uint32_t uv, uid;
  int rc = mailproto_store_call_append_begin(&e->st, fresh(e), 0, e->user,
                                             "INBOX", &info, &w);
  if (rc == 0)
    rc = mailproto_store_call_write(&e->st, fresh(e), 0, w, msg, len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(&e->st, fresh(e), 0, w, &uv, &uid);
  if (rc != 0)
    die("append", rc);
}

/* The floor: what any durable writer of these bytes must do. */
static double floor_rate(const char *dir, const uint8_t *msg, size_t len, int n,
                         int dir_fsync) {
  char tmp[1200], dst[1200];
  int dfd = open(dir, O_RDONLY);
  if (dfd < 0)
    die("open dir", MAILPROTO_ERR_IO);
  double t0 = bench_now();
  for (int i = 0; i < n; i++) {
    snprintf(tmp, sizeof tmp, "%s/floor.tmp", dir);
    snprintf(dst, sizeof dst, "%s/floor.%d.%d", dir, dir_fsync, i);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, msg, len) != (ssize_t)len || fsync(fd) != 0 ||
        close(fd) != 0 || rename(tmp, dst) != 0 ||
        (dir_fsync && fsync(dfd) != 0))
      die("floor", MAILPROTO_ERR_IO);
  }
  double s = bench_now() - t0;
  close(dfd);
  return n / s;
}

/* Writes `n` message files straight into cur/, as another program (or an
 * older store) would have left them, then lets them age past the
 * timestamp granularity window so a warm open trusts the directory. */
static void make_big_folder(const char *dir, size_t n, const uint8_t *msg,
                            size_t len) {
  char path[1200];
  for (size_t i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/cur/%zu.M%zuP1Q%zu.bench,S=%zu,W=%zu:2,%s",
             dir, (size_t)1600000000 + i, i % 1000000, i, len, len,
             i % 3 ? "S" : "");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, msg, len) != (ssize_t)len || close(fd) != 0)
      die("make folder", MAILPROTO_ERR_IO);
  }
}

static double open_time(env *e, unsigned flags, void **h) {
  mailproto_mailbox_status st;
  counted = 0;
  double t0 = bench_now();
  int rc = mailproto_store_call_open(&e->st, fresh(e), 0, e->user, "INBOX",
                                     flags, NULL, NULL, h, &st);
  double s = bench_now() - t0;
  if (rc != 0)
    die("open", rc);
  return s;
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  int deliveries = quick ? 20 : 300;
  size_t big = quick ? 2000 : 100000;
  const char *t = getenv("TMPDIR");
  char root[512], inbox[700];
  snprintf(root, sizeof root, "%s/bench-maildir-XXXXXX", t && *t ? t : "/tmp");
  if (!mkdtemp(root))
    die("mkdtemp", MAILPROTO_ERR_IO);
  snprintf(inbox, sizeof inbox, "%s/user", root);

  static uint8_t msg[4096];
  bench_fill_mail_text(msg, sizeof msg, 7);
  printf("bench_maildir%s: %s\n",
         quick ? " (quick mode: figures not meaningful)" : "", root);

  /* ---- durable writes ---- */
  env e;
  env_open(&e, root, 1, NULL);
  char newdir[800];
  snprintf(newdir, sizeof newdir, "%s/new", inbox);
  /* fsync times wander on shared machines: the rounds interleave the
   * floor and the store, and each keeps its best round. */
  double floor1 = 0, floor2 = 0, drate = 0, arate = 0;
  for (int round = 0; round < (quick ? 1 : 3); round++) {
    double r = floor_rate(newdir, msg, sizeof msg, deliveries, 0);
    floor1 = r > floor1 ? r : floor1;
    r = floor_rate(newdir, msg, sizeof msg, deliveries, 1);
    floor2 = r > floor2 ? r : floor2;
    double t0 = bench_now();
    for (int i = 0; i < deliveries; i++)
      deliver(&e, msg, sizeof msg);
    r = deliveries / (bench_now() - t0);
    drate = r > drate ? r : drate;
    t0 = bench_now();
    for (int i = 0; i < deliveries; i++)
      append(&e, msg, sizeof msg);
    r = deliveries / (bench_now() - t0);
    arate = r > arate ? r : arate;
  }
  printf("\n%-40s %10s %10s\n", "durable writes of 4 KiB (fsync on)", "per s",
         "vs floor");
  printf("%-40s %10.0f %10s\n", "floor: write+fsync+rename", floor1, "1.00");
  printf("%-40s %10.0f %10.2f\n", "floor + directory fsync", floor2,
         floor2 / floor1);
  printf("%-40s %10.0f %10.2f\n", "delivery (tmp/, fsync, link new/)", drate,
         drate / floor1);
  printf("%-40s %10.0f %10.2f\n", "APPEND (+ UID in the index, fsync)", arate,
         arate / floor1);
  mailproto_maildir_free(e.m);
  nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  if (mkdir(root, 0700) != 0)
    die("mkdir", MAILPROTO_ERR_IO);

  /* ---- a big folder ---- */
  env_open(&e, root, 0, NULL);
  mailproto_store_call_release_account(&e.st, e.user);
  make_big_folder(inbox, big, msg, 2000);
  /* First sight: every file gets its UID (the index is written). */
  void *h = NULL;
  double first = open_time(&e, MAILPROTO_OPEN_READONLY, &h);
  mailproto_store_call_close(&e.st, h);
  mailproto_maildir_free(e.m);
  sleep(3); /* past the window in which directory mtimes are not trusted */

  alloc_fail af;
  alloc_fail_init(&af, 0);
  env_open(&e, root, 0, &af.allocator);
  size_t base = af.live_bytes;
  double cold = open_time(&e, MAILPROTO_OPEN_READONLY, &h);
  size_t with_handle = af.live_bytes - base;
  size_t n = counted;
  mailproto_store_call_close(&e.st, h);
  size_t view = af.live_bytes - base;
  double warm = open_time(&e, MAILPROTO_OPEN_READONLY, &h);
  mailproto_store_call_close(&e.st, h);
  printf("\n%-40s %10s %10s\n", "open a folder", "messages", "ms");
  printf("%-40s %10zu %10.1f\n", "first open (index built from files)", n,
         first * 1e3);
  printf("%-40s %10zu %10.1f\n", "cold (new store object, index on disk)", n,
         cold * 1e3);
  printf("%-40s %10zu %10.1f\n", "warm (second open, same store)", counted,
         warm * 1e3);
  printf("\n%-40s %10s\n", "memory", "bytes/msg");
  printf("%-40s %10.1f\n", "folder view (index in memory)",
         (double)view / (double)n);
  printf("%-40s %10.1f\n", "plus one open handle",
         (double)(with_handle - view) / (double)n);
  printf("(cold means a fresh store object; the OS page cache is warm)\n");
  mailproto_maildir_free(e.m);
  nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}
