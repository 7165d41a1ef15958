/*
 * Open mailboxes: handles, what each has been told, \Recent, and read.
 *
 * A handle remembers the UIDs, HIGHESTMODSEQ, UIDNEXT and keywords it was
 * last told. Sync refreshes the shared folder view from disk, then reports
 * the known UIDs that are gone (a merge of two sorted lists, only when
 * messages left since), messages changed after the known mod-sequence, and
 * every message at or above the known UIDNEXT.
 *
 * \Recent (RFC 3501 2.3.2): the index records from which UID on messages
 * are still unclaimed; a read-write open or sync claims them under the
 * folder lock, so across all processes exactly one session sees each new
 * message as \Recent. Read-only handles see unclaimed ones and claim
 * nothing.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"
#include "store/store_util.h"

/* How often (seconds) an open looks for stale files in tmp/. */
#define TMP_CHECK_SECS 3600

/* ---- \Recent ---- */

static int recent_reserve(mailproto_maildir *s, md_handle *h) {
  return mailproto_store_grow(&s->alloc, (void **)&h->recent, &h->recent_cap,
                              h->recent_count + 1, sizeof *h->recent);
}

/* The UIDs that become \Recent for h now: unclaimed and new to h. */
static uint32_t recent_start(const md_handle *h) {
  const md_folder *f = h->f;
  return f->recent_from > h->known_uidnext ? f->recent_from : h->known_uidnext;
}

/* UIDs [from, UIDNEXT) become h's; a read-write handle claims them for
 * good (folder lock held). Room was reserved. */
static void recent_commit(mailproto_maildir *s, md_handle *h, uint32_t from) {
  md_folder *f = h->f;
  mailproto_uid_ranges_add(h->recent, &h->recent_count, from, f->uidnext);
  if (!(h->flags & MAILPROTO_OPEN_READONLY) && f->recent_from < f->uidnext) {
    char rec[32];
    int n = snprintf(rec, sizeof rec, "R %lu\n", (unsigned long)f->uidnext);
    /* Not worth an fsync: a lost claim only makes messages \Recent once
     * more after a crash. A failed write keeps the claim in this process. */
    (void)mailproto_maildir_index_append(s, f, rec, (size_t)n, 0);
    f->recent_from = f->uidnext;
  }
}

/* ---- reporting ---- */

/* What open, sync and message_get say of a message. */
static void fill_info(const md_handle *h, const md_msg *m, uint32_t new_recent,
                      mailproto_message_info *info) {
  mailproto_store_message_base(info, m->uid, m->vsize, m->psize, m->date,
                               m->tz);
  info->flags = m->flags;
  if (m->uid >= new_recent ||
      mailproto_uid_ranges_has(h->recent, h->recent_count, m->uid))
    info->flags |= MAILPROTO_FLAG_RECENT;
  info->keywords = m->kw;
  info->modseq = m->modseq;
}

static int report_message(mailproto_op *op, const md_handle *h, const md_msg *m,
                          uint32_t new_recent) {
  mailproto_message_info info;
  fill_info(h, m, new_recent, &info);
  return mailproto_op_add_message(op, &info);
}

/* Whether this handle was told of `uid` (and not yet of its expunge). */
static int known(const md_handle *h, uint32_t uid) {
  size_t lo = 0, hi = h->known_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->known[mid] < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < h->known_count && h->known[lo] == uid;
}

md_msg *mailproto_maildir_handle_msg(const md_handle *h, uint32_t uid) {
  const md_folder *f = h->f;
  /* Under another UIDVALIDITY (the index was rebuilt) a UID names another
   * message than the one this handle knows by it. */
  if (h->detached || f->gone || f->uidvalidity != h->uidvalidity)
    return NULL;
  return mailproto_maildir_find(f, uid);
}

/* What the folder still keeps of message `uid`, which h knew and which is
 * no longer one of its live messages: its grave, or, when the folder went
 * away, its entry in the folder's last view (no longer changed). */
static int last_known(const md_handle *h, uint32_t uid, md_tomb *out) {
  const md_folder *f = h->f;
  if (h->detached || !known(h, uid))
    return 0;
  const md_tomb *t =
      mailproto_maildir_tomb_find(f->graves, f->grave_count, uid);
  if (t) {
    *out = *t;
    return 1;
  }
  const md_msg *m = f->gone ? mailproto_maildir_find(f, uid) : NULL;
  if (!m)
    return 0;
  out->uid = uid;
  out->tz = m->tz;
  out->vsize = m->vsize;
  out->psize = m->psize;
  out->date = m->date;
  return 1;
}

/* From the folder view this process keeps (no disk access): a message
 * removed by another program is found until a sync notices it. */
int mailproto_maildir_hook_message_get(void *ctx, void *mailbox, uint32_t uid,
                                       mailproto_message_info *info) {
  const md_handle *h = mailbox;
  if (!ctx || !h || !info || info->struct_size < sizeof *info)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const md_msg *m = mailproto_maildir_handle_msg(h, uid);
  if (m) {
    fill_info(h, m, UINT32_MAX, info);
    return 0;
  }
  /* Expunged, and reported so by the last sync, or gone since and known
   * to this handle: sizes and date only. */
  md_tomb left;
  const md_tomb *t = mailproto_maildir_tomb_find(h->tombs, h->tomb_count, uid);
  if (!t && last_known(h, uid, &left))
    t = &left;
  if (!t)
    return MAILPROTO_ERR_NOT_FOUND;
  mailproto_store_message_base(info, uid, t->vsize, t->psize, t->date, t->tz);
  return 0;
}

static uint64_t table_bits(const md_folder *f) {
  uint64_t bits = 0;
  for (unsigned i = 0; i < 64; i++)
    if (f->kw[i])
      bits |= (uint64_t)1 << i;
  return bits;
}

static int report_keywords(mailproto_op *op, const md_folder *f,
                           uint64_t known) {
  for (unsigned i = 0; i < 64; i++) {
    if (!f->kw[i] || (known >> i & 1u))
      continue;
    int rc = mailproto_op_add_keyword(op, i, f->kw[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Makes h's known UIDs those of f now. */
static int learn(mailproto_maildir *s, md_handle *h) {
  md_folder *f = h->f;
  int rc = mailproto_store_grow(&s->alloc, (void **)&h->known, &h->known_cap,
                                f->count, sizeof *h->known);
  if (rc != 0)
    return rc;
  for (size_t i = 0; i < f->count; i++)
    h->known[i] = f->msgs[i].uid;
  h->known_count = f->count;
  return 0;
}

static void remember(md_handle *h) {
  md_folder *f = h->f;
  h->known_modseq = f->modseq;
  h->known_uidnext = f->uidnext;
  h->known_gen = f->gen;
  h->known_kw = table_bits(f);
}

/* ---- stale tmp/ files ---- */

/* maildir(5): files in tmp/ untouched for 36 hours are what crashed
 * writers left; they are deleted. */
static void clean_tmp(mailproto_maildir *s, md_folder *f) {
  int64_t now = mailproto_maildir_now();
  if (f->tmp_cleaned && f->tmp_cleaned + TMP_CHECK_SECS > now)
    return;
  f->tmp_cleaned = (time_t)now;
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/tmp", f->dir) != 0)
    return;
  DIR *d = opendir(path);
  if (!d)
    return;
  for (struct dirent *e; (e = readdir(d));) {
    char file[MD_PATH_MAX];
    struct stat st;
    if (e->d_name[0] == '.' ||
        mailproto_maildir_path(file, "%s/%s", path, e->d_name) != 0 ||
        lstat(file, &st) != 0 || !S_ISREG(st.st_mode))
      continue;
    int64_t touched = st.st_mtim.tv_sec > st.st_atim.tv_sec ? st.st_mtim.tv_sec
                                                            : st.st_atim.tv_sec;
    if (touched + MD_STALE_TMP_SECS < now)
      (void)mailproto_maildir_unlink(s, file);
  }
  closedir(d);
}

/* ---- hooks ---- */

static void handle_free(mailproto_maildir *s, md_handle *h) {
  if (h->excl_fd >= 0)
    close(h->excl_fd);
  if (h->read_fd >= 0)
    close(h->read_fd);
  mailproto_mem_free(&s->alloc, h->known);
  mailproto_mem_free(&s->alloc, h->recent);
  mailproto_mem_free(&s->alloc, h->buf);
  mailproto_mem_free(&s->alloc, h->cache);
  mailproto_mem_free(&s->alloc, h->tombs);
  mailproto_mem_free(&s->alloc, h);
}

int mailproto_maildir_hook_open(void *ctx, mailproto_op *op, void *account,
                                const char *name, unsigned flags,
                                mailproto_store_notify_fn notify,
                                void *notify_arg, void **mailbox,
                                mailproto_mailbox_status *status) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_PATH_MAX];
  int kind;
  if (!s || !op || !u || !name || !mailbox || !status ||
      (flags & ~(MAILPROTO_OPEN_READONLY | MAILPROTO_OPEN_EXCLUSIVE)))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *mailbox = NULL;
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
  /* The POP3 maildrop lock (RFC 1939 8): in this process by the view, in
   * others by a lock file held as long as the open. */
  if ((flags & MAILPROTO_OPEN_EXCLUSIVE) && f->exclusive) {
    mailproto_maildir_folder_put(s, f);
    return MAILPROTO_ERR_IN_USE;
  }
  md_handle *h = mailproto_mem_calloc(&s->alloc, 1, sizeof *h);
  if (!h) {
    mailproto_maildir_folder_put(s, f);
    return MAILPROTO_ERR_NOMEM;
  }
  h->f = f;
  h->flags = flags;
  h->notify = notify;
  h->notify_arg = notify_arg;
  h->excl_fd = h->read_fd = -1;
  int rw = !(flags & MAILPROTO_OPEN_READONLY), locked = 0;
  if (flags & MAILPROTO_OPEN_EXCLUSIVE)
    rc = mailproto_maildir_lock_exclusive(s, f->dir, &h->excl_fd);
  if (rc == 0 && rw && (rc = mailproto_maildir_folder_lock(s, f)) == 0)
    locked = 1;
  if (rc == 0)
    rc = mailproto_maildir_refresh(s, f, rw ? MD_REFRESH_MOVE_NEW : 0);
  if (rc == 0) {
    clean_tmp(s, f);
    h->uidvalidity = f->uidvalidity;
    rc = recent_reserve(s, h);
  }
  uint32_t from = recent_start(h);
  if (rc == 0)
    rc = report_keywords(op, f, 0);
  for (size_t i = 0; rc == 0 && i < f->count; i++)
    rc = report_message(op, h, &f->msgs[i], from);
  if (rc == 0)
    rc = learn(s, h);
  if (rc != 0) {
    if (locked)
      mailproto_maildir_folder_unlock(s, f);
    handle_free(s, h);
    mailproto_maildir_folder_put(s, f);
    return rc;
  }
  recent_commit(s, h, from);
  remember(h);
  if (locked)
    mailproto_maildir_folder_unlock(s, f);
  h->next = f->handles;
  if (f->handles)
    f->handles->prev = h;
  f->handles = h;
  if (flags & MAILPROTO_OPEN_EXCLUSIVE)
    f->exclusive = h;
  mailproto_maildir_fill_status(f, h, status);
  *mailbox = h;
  return 0;
}

void mailproto_maildir_hook_close(void *ctx, void *mailbox) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  if (!s || !h)
    return;
  md_folder *f = h->f;
  if (h->prev)
    h->prev->next = h->next;
  else
    f->handles = h->next;
  if (h->next)
    h->next->prev = h->prev;
  if (f->exclusive == h)
    f->exclusive = NULL;
  handle_free(s, h);
  mailproto_maildir_graves_trim(s, f);
  mailproto_maildir_folder_put(s, f);
}

/* This sync's expunges replace the last one's as the handle's tombs. */
static void set_tombs(mailproto_maildir *s, md_handle *h, md_tomb *tombs,
                      size_t count) {
  mailproto_mem_free(&s->alloc, h->tombs);
  if (!count) {
    mailproto_mem_free(&s->alloc, tombs);
    tombs = NULL;
  }
  h->tombs = tombs;
  h->tomb_count = count;
}

/* The folder went away or was rebuilt: every known message is gone, and
 * nothing new will come through this handle. What is left of them
 * becomes its tombs, as after any sync that reports expunges (best
 * effort: NOMEM, none). */
static int detach(mailproto_maildir *s, mailproto_op *op, md_handle *h) {
  md_tomb *tombs =
      h->known_count ? mailproto_mem_reallocarray(&s->alloc, NULL,
                                                  h->known_count, sizeof *tombs)
                     : NULL;
  size_t n = 0;
  for (size_t i = 0; i < h->known_count; i++) {
    int rc = mailproto_op_add_expunged(op, h->known[i]);
    if (rc != 0) {
      mailproto_mem_free(&s->alloc, tombs);
      return rc;
    }
    if (tombs && last_known(h, h->known[i], &tombs[n]))
      n++;
  }
  set_tombs(s, h, tombs, n);
  h->known_count = 0;
  h->recent_count = 0;
  h->detached = 1;
  return 0;
}

int mailproto_maildir_hook_sync(void *ctx, mailproto_op *op, void *mailbox,
                                mailproto_mailbox_status *status) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  if (!s || !op || !h || !status)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  md_folder *f = h->f;
  int rc = 0, rw = !(h->flags & MAILPROTO_OPEN_READONLY), locked = 0;
  int was_detached = h->detached;
  if (!h->detached && !f->gone) {
    if (rw && (rc = mailproto_maildir_folder_lock(s, f)) == 0)
      locked = 1;
    if (rc == 0)
      rc = mailproto_maildir_refresh(s, f, rw ? MD_REFRESH_MOVE_NEW : 0);
    if (rc == MAILPROTO_ERR_NOT_FOUND && f->gone)
      rc = 0;
  }
  if (rc == 0 && !h->detached && (f->gone || f->uidvalidity != h->uidvalidity))
    rc = detach(s, op, h);
  else if (rc == 0 && was_detached)
    set_tombs(s, h, NULL, 0); /* the detaching sync was the last one */
  if (rc != 0 || h->detached) {
    if (locked)
      mailproto_maildir_folder_unlock(s, f);
    if (rc == 0) {
      mailproto_maildir_graves_trim(s, f);
      mailproto_maildir_fill_status(f, h, status);
    }
    return rc;
  }

  uint32_t from = recent_start(h);
  int changed_set = 0;
  rc = recent_reserve(s, h);
  if (rc == 0)
    rc = report_keywords(op, f, h->known_kw);
  md_tomb *tombs = NULL;
  size_t tomb_count = 0;
  if (rc == 0 && h->known_gen != f->gen) {
    /* Known UIDs that are no longer there: both lists ascend. Their
     * graves become the handle's tombs (best effort: NOMEM, none). */
    if (f->grave_count)
      tombs = mailproto_mem_reallocarray(&s->alloc, NULL, f->grave_count,
                                         sizeof *tombs);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < h->known_count; i++) {
      uint32_t uid = h->known[i];
      while (k < f->count && f->msgs[k].uid < uid)
        k++;
      if (k >= f->count || f->msgs[k].uid != uid) {
        rc = mailproto_op_add_expunged(op, uid);
        changed_set = 1;
        const md_tomb *t =
            tombs ? mailproto_maildir_tomb_find(f->graves, f->grave_count, uid)
                  : NULL;
        if (t)
          tombs[tomb_count++] = *t;
      }
    }
  }
  if (rc == 0 && f->modseq > h->known_modseq) {
    size_t end = mailproto_maildir_lower_bound(f, h->known_uidnext), k = 0;
    for (size_t i = 0; rc == 0 && i < end; i++) {
      const md_msg *m = &f->msgs[i];
      if (m->modseq <= h->known_modseq)
        continue;
      /* Only messages this handle knows: one it never saw is not its
       * business. */
      while (k < h->known_count && h->known[k] < m->uid)
        k++;
      if (k < h->known_count && h->known[k] == m->uid)
        rc = report_message(op, h, m, from);
    }
  }
  for (size_t i = mailproto_maildir_lower_bound(f, h->known_uidnext);
       rc == 0 && i < f->count; i++) {
    rc = report_message(op, h, &f->msgs[i], from);
    changed_set = 1;
  }
  if (rc == 0 && changed_set)
    rc = learn(s, h);
  if (rc != 0) {
    /* The handle's state is unchanged: a retry reports it all again. */
    mailproto_mem_free(&s->alloc, tombs);
    if (locked)
      mailproto_maildir_folder_unlock(s, f);
    return rc;
  }
  if (tomb_count && tomb_count < f->grave_count) {
    /* Graves may be many more (a view read whole again keeps one per
     * message): keep only what this handle needs (best effort). */
    md_tomb *fit =
        mailproto_mem_reallocarray(&s->alloc, tombs, tomb_count, sizeof *tombs);
    if (fit)
      tombs = fit;
  }
  set_tombs(s, h, tombs, tomb_count);
  recent_commit(s, h, from);
  remember(h);
  mailproto_maildir_graves_trim(s, f);
  if (locked)
    mailproto_maildir_folder_unlock(s, f);
  mailproto_maildir_fill_status(f, h, status);
  return 0;
}

static const uint8_t nothing[1] = {0};

int mailproto_maildir_hook_read(void *ctx, mailproto_op *op, void *mailbox,
                                uint32_t uid, uint64_t offset, size_t max,
                                const uint8_t **data, size_t *len) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  (void)op;
  if (!s || !h || !data || !len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *data = nothing;
  *len = 0;
  md_folder *f = h->f;
  if (h->detached || f->gone || f->uidvalidity != h->uidvalidity)
    return uid != 0 && uid < h->known_uidnext ? MAILPROTO_ERR_EXPUNGED
                                              : MAILPROTO_ERR_NOT_FOUND;
  const md_msg *m = mailproto_maildir_find(f, uid);
  if (!m)
    return uid != 0 && uid < f->uidnext ? MAILPROTO_ERR_EXPUNGED
                                        : MAILPROTO_ERR_NOT_FOUND;
  if (h->read_fd < 0 || h->read_uid != uid) {
    if (h->read_fd >= 0)
      close(h->read_fd);
    h->read_fd = -1;
    char path[MD_PATH_MAX];
    for (int attempt = 0; attempt < 2 && h->read_fd < 0; attempt++) {
      if (attempt == 1) {
        /* Renamed or moved by someone else: look again. */
        int rc = mailproto_maildir_refresh(s, f, 0);
        if (rc != 0 && rc != MAILPROTO_ERR_NOT_FOUND)
          return rc;
        if (!(m = mailproto_maildir_handle_msg(h, uid)))
          return MAILPROTO_ERR_EXPUNGED;
      }
      if (mailproto_maildir_msg_path(f, m, path) != 0)
        return MAILPROTO_ERR_IO;
      h->read_fd = mailproto_maildir_open(s, path, O_RDONLY, 0);
      if (h->read_fd < 0 && errno != ENOENT)
        return mailproto_maildir_errno(errno);
    }
    if (h->read_fd < 0)
      return MAILPROTO_ERR_EXPUNGED;
    h->read_uid = uid;
  }
  if (offset >= m->psize || max == 0)
    return 0;
  uint64_t rest = m->psize - offset;
  size_t n = max < MD_READ_MAX ? max : MD_READ_MAX;
  if (rest < n)
    n = (size_t)rest;
  if (n > h->buf_cap) {
    uint8_t *b = mailproto_mem_realloc(&s->alloc, h->buf, n);
    if (!b)
      return MAILPROTO_ERR_NOMEM;
    h->buf = b;
    h->buf_cap = n;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(h->read_fd, h->buf + got, n - got, (off_t)(offset + got));
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      return MAILPROTO_ERR_IO;
    if (r == 0)
      break; /* shorter than recorded: what is there */
    got += (size_t)r;
  }
  *data = h->buf;
  *len = got;
  return 0;
}
