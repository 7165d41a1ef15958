/*
 * Changes to an open mailbox: flags (file renames), expunge (unlinks), and
 * copy/move (hard links). Each runs under the folder lock on a view just
 * read from the index, changes the files, fsyncs their directory, then
 * records what it did in the index before the view and the other handles
 * learn of it. A file someone else renamed meanwhile is looked up again
 * once; one that is gone is skipped (it was expunged).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <string.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"
#include "store/store_util.h"

typedef struct uid_list {
  uint32_t *v;
  size_t n, cap;
} uid_list;

static int uid_push(mailproto_maildir *s, uid_list *l, uint32_t uid) {
  if (mailproto_store_grow(&s->alloc, (void **)&l->v, &l->cap, l->n + 1,
                           sizeof *l->v) != 0)
    return MAILPROTO_ERR_NOMEM;
  l->v[l->n++] = uid;
  return 0;
}

/* The UIDs of f's messages in `set` below `limit`, ascending. */
static int select_uids(mailproto_maildir *s, const md_folder *f,
                       const mailproto_uid_set *set, uint32_t limit,
                       uid_list *out) {
  for (size_t r = 0; r < set->n; r++) {
    for (size_t i = mailproto_maildir_lower_bound(f, set->r[r].first);
         i < f->count && f->msgs[i].uid <= set->r[r].last &&
         f->msgs[i].uid < limit;
         i++)
      if (uid_push(s, out, f->msgs[i].uid) != 0)
        return MAILPROTO_ERR_NOMEM;
  }
  return 0;
}

/* Renames m's file for new flags (folder lock held). 1: the file is not
 * where the view says. */
static int rename_flags(mailproto_maildir *s, md_folder *f, md_msg *m,
                        uint8_t nf, uint64_t nk, int *touched_new) {
  char name[MD_FILE_MAX + 1], from[MD_PATH_MAX], to[MD_PATH_MAX];
  int odd;
  /* A name another program made too long to take the letters: the
   * flags of that file cannot be stored. */
  if (mailproto_maildir_name_for(f, m, 0, nf, nk, name, &odd) != 0 ||
      mailproto_maildir_msg_path(f, m, from) != 0 ||
      mailproto_maildir_path(to, "%s/cur/%s", f->dir, name) != 0)
    return MAILPROTO_ERR_IO;
  if (strcmp(from, to) != 0 && mailproto_maildir_rename(s, from, to) != 0)
    return errno == ENOENT ? 1 : mailproto_maildir_errno(errno);
  if (m->state & MD_IN_NEW)
    *touched_new = 1;
  return mailproto_maildir_rename_msg(s, f, m, name, 0, odd);
}

/* Whether h's UIDs still name the folder's messages, checked after the
 * refresh under the folder's lock: after a rebuild under another
 * UIDVALIDITY the same numbers name other messages, and a handle that has
 * not synced since changes nothing (as when its mailbox is gone; its
 * next sync reports its messages expunged). */
static int uids_current(const md_handle *h) {
  return !h->f->gone && h->f->uidvalidity == h->uidvalidity;
}

int mailproto_maildir_hook_set_flags(void *ctx, mailproto_op *op, void *mailbox,
                                     const mailproto_uid_range *ranges,
                                     size_t range_count,
                                     mailproto_flag_mode mode, uint32_t flags,
                                     const char *const *keywords,
                                     size_t keyword_count,
                                     uint64_t unchanged_since) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  if (!s || !op || !h ||
      mailproto_store_flag_args(mode, flags, keywords, keyword_count) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (h->flags & MAILPROTO_OPEN_READONLY)
    return MAILPROTO_ERR_PERMISSION;
  md_folder *f = h->f;
  mailproto_uid_set set;
  int rc = mailproto_uid_set_init(&s->alloc, &set, ranges, range_count);
  if (rc != 0)
    return rc;
  if (h->detached || f->gone) {
    mailproto_uid_set_free(&s->alloc, &set);
    return 0; /* an empty mailbox: nothing to change */
  }
  if ((rc = mailproto_maildir_folder_lock(s, f)) != 0) {
    mailproto_uid_set_free(&s->alloc, &set);
    return rc;
  }
  md_kw_plan plan;
  uint64_t mask = 0;
  uid_list sel = {NULL, 0, 0}, todo = {NULL, 0, 0}, retry = {NULL, 0, 0};
  md_text rec = {NULL, 0, 0};
  rc = mailproto_maildir_refresh(s, f, MD_REFRESH_INDEX_ONLY);
  if (rc == 0)
    rc = mailproto_maildir_keywords_load(s, f);
  if (rc == 0)
    rc = mailproto_maildir_kw_plan(f, &plan, keywords, keyword_count,
                                   mode != MAILPROTO_FLAGS_REMOVE, 0, &mask);
  if (rc == 0 && uids_current(h))
    rc = select_uids(s, f, &set, UINT32_MAX, &sel);
  /* Who fails UNCHANGEDSINCE is reported before anything changes; a
   * message that passes gets a new mod-sequence even if its flags stay
   * (RFC 7162 3.1.3). */
  for (size_t i = 0; rc == 0 && i < sel.n; i++) {
    const md_msg *m = mailproto_maildir_find(f, sel.v[i]);
    uint8_t nf;
    uint64_t nk;
    if (unchanged_since && m->modseq > unchanged_since) {
      rc = mailproto_op_add_modified(op, m->uid);
      continue;
    }
    mailproto_store_apply_flags(mode, m->flags, m->kw, flags, mask, &nf, &nk);
    if (nf != m->flags || nk != m->kw || unchanged_since)
      rc = uid_push(s, &todo, m->uid);
  }
  unsigned added = plan.count;
  if (rc == 0)
    rc = mailproto_maildir_kw_commit(s, f, &plan);
  uint64_t modseq = f->modseq + 1;
  int touched_new = 0, done = 0;
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    uid_list *list = pass == 0 ? &todo : &retry;
    if (pass == 1) {
      if (retry.n == 0)
        break;
      /* Renamed by someone else: read the directories again. */
      if ((rc = mailproto_maildir_refresh(s, f, 0)) != 0)
        break;
      modseq = f->modseq + 1;
    }
    for (size_t i = 0; rc == 0 && i < list->n; i++) {
      md_msg *m = mailproto_maildir_find(f, list->v[i]);
      if (!m)
        continue; /* expunged meanwhile */
      uint8_t nf;
      uint64_t nk;
      mailproto_store_apply_flags(mode, m->flags, m->kw, flags, mask, &nf, &nk);
      int r = rename_flags(s, f, m, nf, nk, &touched_new);
      if (r == 1) {
        if (pass == 0)
          rc = uid_push(s, &retry, m->uid);
        continue;
      }
      if (r != 0) {
        rc = r;
        break;
      }
      mailproto_maildir_set_msg_flags(f, m, nf, nk);
      m->modseq = modseq;
      done++;
      if (mailproto_maildir_rec_flags(s, &rec, m) != 0)
        rc = MAILPROTO_ERR_NOMEM;
    }
  }
  /* What was renamed is recorded even if a later rename failed. */
  if (done) {
    char dir[MD_PATH_MAX];
    int r = 0;
    if (mailproto_maildir_path(dir, "%s/cur", f->dir) != 0 ||
        mailproto_maildir_sync_dir(s, dir) != 0 ||
        (touched_new && (mailproto_maildir_path(dir, "%s/new", f->dir) != 0 ||
                         mailproto_maildir_sync_dir(s, dir) != 0)))
      r = mailproto_maildir_errno(errno);
    if (r == 0)
      r = mailproto_maildir_index_append(s, f, rec.p, rec.len, 1);
    if (r != 0) {
      /* The files carry the flags; the next full read records them. */
      f->loaded = 0;
      if (rc == 0)
        rc = r;
    }
    f->modseq = modseq;
    f->cur_dirty = 1;
  }
  if (done || added)
    mailproto_maildir_notify(f, h);
  mailproto_maildir_text_free(s, &rec);
  mailproto_mem_free(&s->alloc, sel.v);
  mailproto_mem_free(&s->alloc, todo.v);
  mailproto_mem_free(&s->alloc, retry.v);
  mailproto_maildir_folder_unlock(s, f);
  mailproto_uid_set_free(&s->alloc, &set);
  return rc;
}

/* Unlinks the files of `uids` and records the expunges (folder lock
 * held, view fresh from the index). */
static int remove_uids(mailproto_maildir *s, md_folder *f,
                       const uid_list *uids) {
  uid_list retry = {NULL, 0, 0}, gone = {NULL, 0, 0};
  int rc = 0;
  for (int pass = 0; rc == 0 && pass < 2; pass++) {
    const uid_list *list = pass == 0 ? uids : &retry;
    if (pass == 1 &&
        (retry.n == 0 || (rc = mailproto_maildir_refresh(s, f, 0)) != 0))
      break;
    for (size_t i = 0; rc == 0 && i < list->n; i++) {
      md_msg *m = mailproto_maildir_find(f, list->v[i]);
      char path[MD_PATH_MAX];
      if (!m)
        continue;
      if (mailproto_maildir_msg_path(f, m, path) != 0) {
        rc = MAILPROTO_ERR_IO;
        break;
      }
      if (mailproto_maildir_unlink(s, path) != 0) {
        if (errno != ENOENT)
          rc = mailproto_maildir_errno(errno);
        else if (pass == 0)
          rc = uid_push(s, &retry, m->uid);
        /* Gone on the second look too: someone removed it; the record
         * below says so. */
        else
          rc = uid_push(s, &gone, m->uid);
        continue;
      }
      rc = uid_push(s, &gone, m->uid);
    }
  }
  if (gone.n) {
    char dir[MD_PATH_MAX];
    md_text rec = {NULL, 0, 0};
    uint64_t modseq = f->modseq + 1;
    int r = 0;
    for (size_t i = 0; r == 0 && i < gone.n; i++)
      r = mailproto_maildir_rec_expunge(s, &rec, gone.v[i], modseq);
    if (r == 0 && (mailproto_maildir_path(dir, "%s/cur", f->dir) != 0 ||
                   mailproto_maildir_sync_dir(s, dir) != 0 ||
                   mailproto_maildir_path(dir, "%s/new", f->dir) != 0 ||
                   mailproto_maildir_sync_dir(s, dir) != 0))
      r = mailproto_maildir_errno(errno);
    if (r == 0)
      r = mailproto_maildir_index_append(s, f, rec.p, rec.len, 1);
    if (r == 0) {
      for (size_t i = 0; i < gone.n; i++) {
        md_msg *m = mailproto_maildir_find(f, gone.v[i]);
        if (m)
          mailproto_maildir_remove(f, m);
        mailproto_maildir_cache_drop(s, f, gone.v[i]);
      }
      f->modseq = modseq;
      mailproto_maildir_compact(s, f);
    } else {
      /* The files are gone; the next scan records it. */
      f->new_dirty = f->cur_dirty = 1;
      if (rc == 0)
        rc = r;
    }
    f->cur_dirty = 1;
    mailproto_maildir_text_free(s, &rec);
  }
  mailproto_mem_free(&s->alloc, retry.v);
  mailproto_mem_free(&s->alloc, gone.v);
  return rc;
}

int mailproto_maildir_hook_expunge(void *ctx, mailproto_op *op, void *mailbox,
                                   const mailproto_uid_range *ranges,
                                   size_t range_count, unsigned flags) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  (void)op;
  if (!s || !h || (flags & ~MAILPROTO_EXPUNGE_ONLY_DELETED))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (h->flags & MAILPROTO_OPEN_READONLY)
    return MAILPROTO_ERR_PERMISSION;
  md_folder *f = h->f;
  mailproto_uid_set set;
  int rc = mailproto_uid_set_init(&s->alloc, &set, ranges, range_count);
  if (rc != 0)
    return rc;
  if (h->detached || f->gone || (rc = mailproto_maildir_folder_lock(s, f))) {
    mailproto_uid_set_free(&s->alloc, &set);
    return rc;
  }
  uid_list sel = {NULL, 0, 0}, del = {NULL, 0, 0};
  rc = mailproto_maildir_refresh(s, f, MD_REFRESH_INDEX_ONLY);
  if (rc == 0 && uids_current(h))
    rc = select_uids(s, f, &set, UINT32_MAX, &sel);
  for (size_t i = 0; rc == 0 && i < sel.n; i++) {
    const md_msg *m = mailproto_maildir_find(f, sel.v[i]);
    if (!(flags & MAILPROTO_EXPUNGE_ONLY_DELETED) ||
        (m->flags & MAILPROTO_FLAG_DELETED))
      rc = uid_push(s, &del, m->uid);
  }
  uint64_t gen = f->gen;
  if (rc == 0 && del.n)
    rc = remove_uids(s, f, &del);
  if (f->gen != gen)
    mailproto_maildir_notify(f, h);
  mailproto_mem_free(&s->alloc, sel.v);
  mailproto_mem_free(&s->alloc, del.v);
  mailproto_maildir_folder_unlock(s, f);
  mailproto_uid_set_free(&s->alloc, &set);
  return rc;
}

/* ---- copy and move ---- */

typedef struct copy_job {
  mailproto_maildir *s;
  md_folder *src, *dst;
  const md_handle *actor; /* learns of its own copies when it syncs */
  uid_list uids;          /* sources, ascending */
  unsigned map[64];       /* source keyword index -> destination index */
  md_msg *copies;         /* .name: offset of the base in `bases` */
  size_t placed;          /* copies whose file exists */
  md_text bases;
} copy_job;

static uint64_t map_kw(const copy_job *j, uint64_t kw) {
  uint64_t out = 0;
  for (unsigned k = 0; k < 64; k++)
    if (kw >> k & 1u)
      out |= (uint64_t)1 << j->map[k];
  return out;
}

static int copy_path(const copy_job *j, const md_msg *c, char *out) {
  char name[MD_FILE_MAX + 1];
  mailproto_maildir_plain_name(j->bases.p + c->name, c->base_len, 0, c->flags,
                               c->kw, name);
  return mailproto_maildir_path(out, "%s/cur/%s", j->dst->dir, name);
}

/* Links (or copies) source m into the destination's cur/ as c. 1: the
 * source file is not where the view says. */
static int place(copy_job *j, const md_msg *m, md_msg *c) {
  mailproto_maildir *s = j->s;
  char from[MD_PATH_MAX], to[MD_PATH_MAX], base[MD_FILE_MAX + 1];
  memset(c, 0, sizeof *c);
  c->flags = m->flags;
  c->kw = map_kw(j, m->kw);
  c->vsize = m->vsize;
  c->psize = m->psize;
  c->date = m->date;
  c->tz = m->tz;
  mailproto_maildir_message_base(s, m->psize, m->vsize, base);
  c->base_len = (uint8_t)strlen(base);
  if (j->bases.len > UINT32_MAX - MD_FILE_MAX)
    return MAILPROTO_ERR_LIMIT;
  c->name = (uint32_t)j->bases.len;
  if (mailproto_maildir_text_add(s, &j->bases, "%s", base) != 0)
    return MAILPROTO_ERR_NOMEM;
  if (mailproto_maildir_msg_path(j->src, m, from) != 0 ||
      copy_path(j, c, to) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  /* Messages never change, so both mailboxes may share the file (and its
   * mtime, the INTERNALDATE). */
  if (mailproto_maildir_link(s, from, to) == 0)
    return 0;
  int err = errno;
  if (err == ENOENT)
    return 1;
  if (err != EXDEV && err != EPERM && err != EMLINK
#ifdef ENOTSUP
      && err != ENOTSUP
#endif
  )
    return mailproto_maildir_errno(err);
  /* No hard links here: a copy of the bytes, made in tmp/ first. */
  char tmp[MD_PATH_MAX];
  if (mailproto_maildir_path(tmp, "%s/tmp/%s", j->dst->dir, base) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int rc = mailproto_maildir_copy_file(s, from, tmp, m->date);
  if (rc == 0 && mailproto_maildir_rename(s, tmp, to) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0) {
    (void)mailproto_maildir_unlink(s, tmp);
    return rc == MAILPROTO_ERR_NOT_FOUND ? 1 : rc;
  }
  return 0;
}

static int lock_both(mailproto_maildir *s, md_folder *a, md_folder *b) {
  /* Two folder locks are always taken in path order: no two processes
   * can each hold one the other waits for. */
  if (a != b && strcmp(a->dir, b->dir) > 0) {
    md_folder *t = a;
    a = b;
    b = t;
  }
  int rc = mailproto_maildir_folder_lock(s, a);
  if (rc == 0 && a != b && (rc = mailproto_maildir_folder_lock(s, b)) != 0)
    mailproto_maildir_folder_unlock(s, a);
  return rc;
}

/* Places every copy and records them (both folder locks held). */
static int copy_files(copy_job *j) {
  mailproto_maildir *s = j->s;
  md_folder *src = j->src, *dst = j->dst;
  size_t n = j->uids.n;
  int rc = 0;
  for (; rc == 0 && j->placed < n; j->placed++) {
    const md_msg *m = mailproto_maildir_find(src, j->uids.v[j->placed]);
    md_msg *c = &j->copies[j->placed];
    int r = m ? place(j, m, c) : 1;
    if (r == 1) {
      /* Renamed elsewhere: look once more. */
      if ((rc = mailproto_maildir_refresh(s, src, 0)) != 0)
        break;
      m = mailproto_maildir_find(src, j->uids.v[j->placed]);
      r = m ? place(j, m, c) : 1;
      if (r == 1)
        r = MAILPROTO_ERR_EXPUNGED; /* gone: all or nothing fails */
    }
    if ((rc = r) != 0)
      break;
  }
  char cur[MD_PATH_MAX];
  if (rc == 0 && (mailproto_maildir_path(cur, "%s/cur", dst->dir) != 0 ||
                  mailproto_maildir_sync_dir(s, cur) != 0))
    rc = mailproto_maildir_errno(errno);
  md_text rec = {NULL, 0, 0};
  uint64_t modseq = dst->modseq + 1;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    md_msg *c = &j->copies[i];
    c->uid = dst->uidnext + (uint32_t)i;
    c->modseq = modseq;
    rc = mailproto_maildir_rec_add(s, &rec, c, j->bases.p + c->name);
  }
  if (rc == 0)
    rc = mailproto_maildir_pool_reserve(s, dst, j->bases.len);
  if (rc == 0)
    rc = mailproto_maildir_index_append(s, dst, rec.p, rec.len, 1);
  mailproto_maildir_text_free(s, &rec);
  if (rc != 0) {
    /* Nothing recorded: take back every file placed. */
    for (size_t i = 0; i < j->placed; i++) {
      char path[MD_PATH_MAX];
      if (copy_path(j, &j->copies[i], path) == 0)
        (void)mailproto_maildir_unlink(s, path);
    }
    return rc;
  }
  for (size_t i = 0; i < n; i++) {
    md_msg c = j->copies[i];
    (void)mailproto_maildir_pool_add(s, dst, j->bases.p + c.name, c.base_len,
                                     &c.name);
    c.name_len = c.base_len;
    mailproto_maildir_push(dst, &c);
    dst->uidnext = c.uid + 1;
  }
  dst->modseq = modseq;
  dst->cur_dirty = 1;
  return 0;
}

static int copy_run(copy_job *j, mailproto_op *op, int move,
                    uint32_t *dest_uidvalidity) {
  mailproto_maildir *s = j->s;
  md_folder *src = j->src, *dst = j->dst;
  md_kw_plan plan;
  plan.count = 0;
  int rc = mailproto_maildir_refresh(s, dst, MD_REFRESH_INDEX_ONLY);
  if (rc == 0)
    rc = mailproto_maildir_keywords_load(s, dst);
  if (rc != 0)
    return rc;
  /* The destination's indices for the keywords the sources carry; one
   * that does not fit fails the whole copy. */
  uint64_t used = 0;
  for (size_t i = 0; i < j->uids.n; i++) {
    const md_msg *m = mailproto_maildir_find(src, j->uids.v[i]);
    if (m)
      used |= m->kw;
  }
  for (unsigned k = 0; rc == 0 && k < 64; k++)
    if ((used >> k & 1u) && src->kw[k])
      rc = mailproto_maildir_kw_plan_one(dst, &plan, src->kw[k], &j->map[k]);
  size_t n = j->uids.n;
  if (rc == 0 && n && (uint64_t)dst->uidnext + n - 1 > MD_UID_MAX)
    rc = MAILPROTO_ERR_LIMIT;
  if (rc == 0)
    rc = mailproto_maildir_reserve(s, dst, n);
  if (rc == 0 && n &&
      !(j->copies = mailproto_mem_calloc(&s->alloc, n, sizeof *j->copies)))
    rc = MAILPROTO_ERR_NOMEM;
  /* RFC 4315 COPYUID pairs, reported before anything changes. */
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = mailproto_op_add_uid_map(op, j->uids.v[i], dst->uidnext + (uint32_t)i);
  if (rc == 0)
    rc = mailproto_maildir_kw_commit(s, dst, &plan);
  if (rc == 0)
    *dest_uidvalidity = dst->uidvalidity;
  if (rc != 0 || n == 0)
    return rc;
  if ((rc = copy_files(j)) != 0)
    return rc;
  mailproto_maildir_notify(dst, j->actor);
  if (move) {
    /* RFC 6851: the originals go once the copies are safe. */
    uint64_t gen = src->gen;
    rc = remove_uids(s, src, &j->uids);
    if (src->gen != gen && src != dst)
      mailproto_maildir_notify(src, j->actor);
  }
  return rc;
}

int mailproto_maildir_hook_copy(void *ctx, mailproto_op *op, void *mailbox,
                                const mailproto_uid_range *ranges,
                                size_t range_count, const char *dest, int move,
                                uint32_t *dest_uidvalidity) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_PATH_MAX];
  int kind;
  if (!s || !op || !h || !dest || !dest_uidvalidity)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (move && (h->flags & MAILPROTO_OPEN_READONLY))
    return MAILPROTO_ERR_PERMISSION;
  if (mailproto_store_canon_name(dest, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  md_folder *src = h->f;
  int rc = mailproto_maildir_locate(s, src->user, canon, dir, &kind);
  if (rc == 0 && kind != 2)
    rc = MAILPROTO_ERR_NOT_FOUND;
  if (rc != 0)
    return rc;
  mailproto_uid_set set;
  if ((rc = mailproto_uid_set_init(&s->alloc, &set, ranges, range_count)) != 0)
    return rc;
  copy_job j;
  memset(&j, 0, sizeof j);
  j.s = s;
  j.src = src;
  j.actor = h;
  rc = mailproto_maildir_folder_get(s, src->user, canon, dir, &j.dst);
  if (rc == 0 && !h->detached && !src->gone &&
      (rc = lock_both(s, src, j.dst)) == 0) {
    /* Copies within one mailbox land above UIDNEXT and are no sources. */
    rc = mailproto_maildir_refresh(s, src, MD_REFRESH_INDEX_ONLY);
    if (rc == 0 && uids_current(h))
      rc = select_uids(s, src, &set, src->uidnext, &j.uids);
    if (rc == 0)
      rc = copy_run(&j, op, move, dest_uidvalidity);
    if (rc == 0 && j.uids.n == 0)
      *dest_uidvalidity = j.dst->uidvalidity;
    mailproto_maildir_folder_unlock(s, j.dst);
    if (src != j.dst)
      mailproto_maildir_folder_unlock(s, src);
  } else if (rc == 0) {
    /* A handle whose mailbox went away copies nothing. */
    rc = mailproto_maildir_refresh(s, j.dst, MD_REFRESH_INDEX_ONLY);
    if (rc == 0)
      *dest_uidvalidity = j.dst->uidvalidity;
  }
  mailproto_mem_free(&s->alloc, j.uids.v);
  mailproto_mem_free(&s->alloc, j.copies);
  mailproto_maildir_text_free(s, &j.bases);
  mailproto_maildir_folder_put(s, j.dst);
  mailproto_uid_set_free(&s->alloc, &set);
  return rc;
}
