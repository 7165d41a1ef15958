/*
 * Writers: APPEND to one mailbox and SMTP/LMTP delivery to the INBOX of
 * each recipient. maildir(5) delivery: the message is written to tmp/
 * under a unique name as it arrives (never held in memory), fsynced, then
 * renamed (APPEND: into cur/ with its flags) or hard-linked (delivery:
 * into every recipient's new/) and the directory fsynced; only then is the
 * commit reported. A crash before that leaves at most a file in tmp/,
 * which nobody reads and an open removes after 36 hours.
 *
 * APPEND also records the message in the index (it must report the UID,
 * RFC 4315). A delivery does not: its files get UIDs when a session next
 * looks at new/, as any file another program delivers.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"
#include "store/store_util.h"

enum { W_APPEND = 0x41505044, W_DELIVER = 0x444c5652 };

typedef struct md_writer {
  unsigned kind;
  int fd;
  char tmp[MD_PATH_MAX];
  uint64_t psize;
  mailproto_store_size vsize; /* RFC822.SIZE of what was written */
  int error;                  /* a write failed: the commit fails with it */
  /* APPEND */
  md_folder *f;
  mailproto_store_append ap;
  /* delivery */
  md_user **accounts;
  size_t account_count;
} md_writer;

void mailproto_maildir_message_base(mailproto_maildir *s, uint64_t psize,
                                    uint64_t vsize, char *out) {
  char unique[160];
  mailproto_maildir_unique(s, unique, sizeof unique);
  /* Dovecot's ",S=" and ",W=" spare readers a stat and a byte count. */
  snprintf(out, MD_FILE_MAX + 1, "%s,S=%llu,W=%llu", unique,
           (unsigned long long)psize, (unsigned long long)vsize);
}

int mailproto_maildir_copy_file(mailproto_maildir *s, const char *from,
                                const char *to, int64_t date) {
  int in = mailproto_maildir_open(s, from, O_RDONLY, 0);
  if (in < 0)
    return mailproto_maildir_errno(errno);
  int out = mailproto_maildir_open(s, to, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (out < 0) {
    int err = errno;
    close(in);
    return mailproto_maildir_errno(err);
  }
  char buf[65536];
  int rc = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = MAILPROTO_ERR_IO;
      break;
    }
    if (n == 0)
      break;
    if (mailproto_maildir_write_all(s, out, buf, (size_t)n) != 0) {
      rc = mailproto_maildir_errno(errno);
      break;
    }
  }
  if (rc == 0 && (mailproto_maildir_set_mtime(s, out, date) != 0 ||
                  mailproto_maildir_sync_fd(s, out) != 0))
    rc = mailproto_maildir_errno(errno);
  close(in);
  if (close(out) != 0 && rc == 0)
    rc = MAILPROTO_ERR_IO;
  if (rc != 0)
    (void)unlink(to);
  return rc;
}

static void writer_free(mailproto_maildir *s, md_writer *w) {
  if (!w)
    return;
  if (w->fd >= 0)
    close(w->fd);
  if (w->tmp[0])
    (void)unlink(w->tmp);
  mailproto_store_append_drop(&s->alloc, &w->ap);
  mailproto_mem_free(&s->alloc, w->accounts);
  mailproto_maildir_folder_put(s, w->f);
  mailproto_mem_free(&s->alloc, w);
}

/* A new writer with its file open in dir/tmp/. */
static int writer_new(mailproto_maildir *s, unsigned kind, const char *dir,
                      md_writer **out) {
  md_writer *w = mailproto_mem_calloc(&s->alloc, 1, sizeof *w);
  if (!w)
    return MAILPROTO_ERR_NOMEM;
  w->kind = kind;
  w->fd = -1;
  /* The name is unique by construction; O_EXCL makes sure of it. */
  for (int attempt = 0; attempt < 3 && w->fd < 0; attempt++) {
    char unique[160];
    mailproto_maildir_unique(s, unique, sizeof unique);
    if (mailproto_maildir_path(w->tmp, "%s/tmp/%s", dir, unique) != 0) {
      mailproto_mem_free(&s->alloc, w);
      return MAILPROTO_ERR_BAD_NAME;
    }
    w->fd =
        mailproto_maildir_open(s, w->tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (w->fd < 0 && errno != EEXIST)
      break;
  }
  if (w->fd < 0) {
    int rc = mailproto_maildir_errno(errno);
    w->tmp[0] = '\0';
    mailproto_mem_free(&s->alloc, w);
    return rc == MAILPROTO_ERR_EXISTS ? MAILPROTO_ERR_TEMPORARY : rc;
  }
  *out = w;
  return 0;
}

int mailproto_maildir_hook_append_begin(void *ctx, mailproto_op *op,
                                        void *account, const char *name,
                                        const mailproto_append_info *info,
                                        void **writer) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_PATH_MAX];
  int kind;
  (void)op;
  if (!s || !u || !name || !writer)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *writer = NULL;
  mailproto_append_info in;
  if (mailproto_store_append_info(info, &in) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int rc = mailproto_maildir_locate(s, u, canon, dir, &kind);
  if (rc != 0)
    return rc;
  if (kind != 2)
    return MAILPROTO_ERR_NOT_FOUND;
  md_folder *f = NULL;
  if ((rc = mailproto_maildir_folder_get(s, u, canon, dir, &f)) != 0)
    return rc;
  /* Fail early on bad or too many keywords; commit checks again, as the
   * table may fill up meanwhile. */
  md_kw_plan plan;
  uint64_t mask;
  rc = mailproto_maildir_refresh(s, f, MD_REFRESH_INDEX_ONLY);
  if (rc == 0)
    rc = mailproto_maildir_keywords_load(s, f);
  if (rc == 0)
    rc = mailproto_maildir_kw_plan(f, &plan, in.keywords, in.keyword_count, 1,
                                   0, &mask);
  md_writer *w = NULL;
  if (rc == 0)
    rc = writer_new(s, W_APPEND, dir, &w);
  if (rc != 0) {
    mailproto_maildir_folder_put(s, f);
    return rc;
  }
  w->f = f;
  if (mailproto_store_append_keep(&s->alloc, &w->ap, &in) != 0)
    goto nomem;
  *writer = w;
  return 0;
nomem:
  writer_free(s, w);
  return MAILPROTO_ERR_NOMEM;
}

int mailproto_maildir_hook_deliver_begin(void *ctx, mailproto_op *op,
                                         void *const *accounts,
                                         size_t account_count,
                                         const mailproto_delivery_info *info,
                                         void **writer) {
  mailproto_maildir *s = ctx;
  (void)op;
  (void)info;
  if (!s || mailproto_store_deliver_args(accounts, account_count, writer) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* Written once, in the first recipient's tmp/; linked to the others. */
  const md_user *first = accounts[0];
  md_writer *w = NULL;
  int rc = writer_new(s, W_DELIVER, first->dir, &w);
  if (rc != 0)
    return rc;
  w->accounts =
      mailproto_mem_calloc(&s->alloc, account_count, sizeof *w->accounts);
  if (!w->accounts) {
    writer_free(s, w);
    return MAILPROTO_ERR_NOMEM;
  }
  for (size_t i = 0; i < account_count; i++)
    w->accounts[i] = accounts[i];
  w->account_count = account_count;
  *writer = w;
  return 0;
}

int mailproto_maildir_hook_write(void *ctx, mailproto_op *op, void *writer,
                                 const uint8_t *data, size_t len) {
  mailproto_maildir *s = ctx;
  md_writer *w = writer;
  (void)op;
  if (!s || !w || (len && !data))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (w->error)
    return w->error;
  if (len == 0)
    return 0;
  if (mailproto_maildir_write_all(s, w->fd, data, len) != 0) {
    w->error = mailproto_maildir_errno(errno);
    return w->error;
  }
  mailproto_store_size_add(&w->vsize, data, len);
  w->psize += len;
  return 0;
}

/* fsyncs and closes the written file, dated `date`. */
static int finish_file(mailproto_maildir *s, md_writer *w, int64_t date) {
  int rc = w->error;
  if (rc == 0 && (mailproto_maildir_set_mtime(s, w->fd, date) != 0 ||
                  mailproto_maildir_sync_fd(s, w->fd) != 0))
    rc = mailproto_maildir_errno(errno);
  if (close(w->fd) != 0 && rc == 0)
    rc = MAILPROTO_ERR_IO;
  w->fd = -1;
  return rc;
}

/* Moves the written file into cur/ and records it (folder lock held). */
static int append_place(mailproto_maildir *s, md_writer *w, uint32_t *uid) {
  md_folder *f = w->f;
  md_kw_plan plan;
  uint64_t kw = 0;
  int rc = mailproto_maildir_refresh(s, f, MD_REFRESH_INDEX_ONLY);
  if (rc == 0)
    rc = mailproto_maildir_keywords_load(s, f);
  if (rc == 0)
    rc =
        mailproto_maildir_kw_plan(f, &plan, (const char *const *)w->ap.keywords,
                                  w->ap.keyword_count, 1, 0, &kw);
  if (rc == 0 && f->uidnext > MD_UID_MAX)
    rc = MAILPROTO_ERR_LIMIT;
  md_msg m;
  memset(&m, 0, sizeof m);
  char base[MD_FILE_MAX + 1], name[MD_FILE_MAX + 1], to[MD_PATH_MAX];
  char cur[MD_PATH_MAX];
  if (rc == 0) {
    mailproto_maildir_message_base(s, w->psize,
                                   mailproto_store_size_total(&w->vsize), base);
    m.base_len = m.name_len = (uint8_t)strlen(base);
    mailproto_maildir_plain_name(base, m.base_len, 0, w->ap.flags, kw, name);
    if (mailproto_maildir_path(to, "%s/cur/%s", f->dir, name) != 0 ||
        mailproto_maildir_path(cur, "%s/cur", f->dir) != 0)
      rc = MAILPROTO_ERR_BAD_NAME;
  }
  if (rc == 0)
    rc = mailproto_maildir_reserve(s, f, 1);
  if (rc == 0)
    rc = mailproto_maildir_pool_reserve(s, f, m.base_len);
  if (rc == 0)
    rc = mailproto_maildir_kw_commit(s, f, &plan);
  if (rc != 0)
    return rc;
  m.uid = f->uidnext;
  m.modseq = f->modseq + 1;
  m.flags = w->ap.flags;
  m.kw = kw;
  m.psize = w->psize;
  m.vsize = mailproto_store_size_total(&w->vsize);
  m.date = w->ap.date.utc;
  m.tz = (int16_t)w->ap.date.tz_minutes;
  if (mailproto_maildir_rename(s, w->tmp, to) != 0)
    return mailproto_maildir_errno(errno);
  w->tmp[0] = '\0';
  md_text rec = {NULL, 0, 0};
  if (mailproto_maildir_sync_dir(s, cur) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc == 0)
    rc = mailproto_maildir_rec_add(s, &rec, &m, base);
  if (rc == 0)
    rc = mailproto_maildir_index_append(s, f, rec.p, rec.len, 1);
  mailproto_maildir_text_free(s, &rec);
  if (rc != 0) {
    /* Not recorded: the message must not stay visible. */
    (void)mailproto_maildir_unlink(s, to);
    (void)mailproto_maildir_sync_dir(s, cur);
    return rc;
  }
  (void)mailproto_maildir_pool_add(s, f, base, m.base_len, &m.name);
  mailproto_maildir_push(f, &m);
  f->uidnext = m.uid + 1;
  f->modseq = m.modseq;
  f->cur_dirty = 1;
  *uid = m.uid;
  return 0;
}

int mailproto_maildir_hook_append_commit(void *ctx, mailproto_op *op,
                                         void *writer, uint32_t *uidvalidity,
                                         uint32_t *uid) {
  mailproto_maildir *s = ctx;
  md_writer *w = writer;
  (void)op;
  if (!s || !w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = 0;
  if (w->kind != W_APPEND || !uidvalidity || !uid)
    rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  if (!w->ap.has_date) {
    w->ap.date.utc = mailproto_maildir_now();
    w->ap.date.tz_minutes = 0;
  }
  /* maildir(5) and Dovecot: the file's mtime is the INTERNALDATE. */
  if (rc == 0)
    rc = finish_file(s, w, w->ap.date.utc);
  md_folder *f = w->f;
  if (rc == 0)
    rc = mailproto_maildir_folder_lock(s, f);
  if (rc == 0) {
    rc = append_place(s, w, uid);
    if (rc == 0)
      *uidvalidity = f->uidvalidity;
    mailproto_maildir_folder_unlock(s, f);
    if (rc == 0)
      mailproto_maildir_notify(f, NULL);
  }
  writer_free(s, w);
  return rc;
}

/* Places the written file in one recipient's new/. */
static int deliver_one(mailproto_maildir *s, md_writer *w, const md_user *u,
                       char *placed) {
  char base[MD_FILE_MAX + 1], tmp[MD_PATH_MAX];
  mailproto_maildir_message_base(s, w->psize,
                                 mailproto_store_size_total(&w->vsize), base);
  if (mailproto_maildir_path(placed, "%s/new/%s", u->dir, base) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (mailproto_maildir_link(s, w->tmp, placed) == 0)
    return 0;
  int err = errno;
  if (err != EXDEV && err != EPERM && err != EMLINK
#ifdef ENOTSUP
      && err != ENOTSUP
#endif
  ) {
    placed[0] = '\0';
    return mailproto_maildir_errno(err);
  }
  /* Another file system, or no hard links: a copy through its tmp/. */
  int rc =
      mailproto_maildir_path(tmp, "%s/tmp/%s", u->dir, base) == 0
          ? mailproto_maildir_copy_file(s, w->tmp, tmp, mailproto_maildir_now())
          : MAILPROTO_ERR_BAD_NAME;
  if (rc == 0 && mailproto_maildir_rename(s, tmp, placed) != 0) {
    rc = mailproto_maildir_errno(errno);
    (void)unlink(tmp);
  }
  if (rc != 0)
    placed[0] = '\0';
  return rc;
}

int mailproto_maildir_hook_deliver_commit(void *ctx, mailproto_op *op,
                                          void *writer, int all_or_nothing,
                                          int *results) {
  mailproto_maildir *s = ctx;
  md_writer *w = writer;
  (void)op;
  if (!s || !w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (w->kind != W_DELIVER || !results) {
    writer_free(s, w);
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  size_t n = w->account_count;
  int rc = finish_file(s, w, mailproto_maildir_now());
  char(*placed)[MD_PATH_MAX] =
      rc == 0 ? mailproto_mem_calloc(&s->alloc, n, sizeof *placed) : NULL;
  if (rc == 0 && !placed)
    rc = MAILPROTO_ERR_NOMEM;
  if (rc != 0) {
    for (size_t i = 0; i < n; i++)
      results[i] = rc;
    writer_free(s, w);
    return rc;
  }
  int first_error = 0;
  for (size_t i = 0; i < n; i++) {
    results[i] = deliver_one(s, w, w->accounts[i], placed[i]);
    if (results[i] == 0) {
      char dir[MD_PATH_MAX];
      if (mailproto_maildir_path(dir, "%s/new", w->accounts[i]->dir) != 0 ||
          mailproto_maildir_sync_dir(s, dir) != 0) {
        results[i] = mailproto_maildir_errno(errno);
        (void)mailproto_maildir_unlink(s, placed[i]);
        placed[i][0] = '\0';
      }
    }
    if (results[i] != 0 && first_error == 0)
      first_error = results[i];
    if (first_error && all_or_nothing)
      break;
  }
  if (first_error && all_or_nothing) {
    /* SMTP: every recipient or none. Take back what was placed. */
    for (size_t i = 0; i < n; i++) {
      if (placed[i][0]) {
        (void)mailproto_maildir_unlink(s, placed[i]);
        char dir[MD_PATH_MAX];
        if (mailproto_maildir_path(dir, "%s/new", w->accounts[i]->dir) == 0)
          (void)mailproto_maildir_sync_dir(s, dir);
        placed[i][0] = '\0';
      }
      results[i] = first_error;
    }
  }
  size_t delivered = 0;
  for (size_t i = 0; i < n; i++) {
    if (!placed[i][0])
      continue;
    delivered++;
    md_folder *f = mailproto_maildir_folder_find(s, w->accounts[i]->dir);
    if (f) {
      f->new_dirty = 1;
      mailproto_maildir_notify(f, NULL);
    }
  }
  mailproto_mem_free(&s->alloc, placed);
  writer_free(s, w);
  return delivered ? 0 : first_error;
}

void mailproto_maildir_hook_abort(void *ctx, void *writer) {
  if (ctx)
    writer_free(ctx, writer);
}
