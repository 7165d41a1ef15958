/*
 * The mailbox tree of a user: list, create, delete, rename and status.
 *
 * Choices where RFC 3501 leaves room (the memory store makes the same):
 *  - Parents are implied: "a/b/c" needs no directory for "a" or "a/b";
 *    LIST shows them \Noselect. CREATE of such a name makes it a mailbox.
 *  - DELETE of a mailbox with children removes its messages and leaves a
 *    directory without cur/, a \Noselect placeholder, as in the RFC 3501
 *    6.3.4 example; a placeholder without children is removed.
 *  - A renamed mailbox gets a new UIDVALIDITY (RFC 3501 2.3.1.1: the new
 *    name may have been used before) and keeps its UIDs and flags.
 *  - Handles open on a deleted or renamed mailbox (in this process) see
 *    every message expunged at their next sync; other processes' handles
 *    find the directory gone at theirs.
 *
 * Directory changes are made atomic where the file system allows: a new
 * mailbox is built under a temporary name and renamed into place; a deleted
 * one is renamed away first and removed afterwards (leftovers of a crash
 * are removed by the next LIST).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"
#include "store/store_util.h"

/* Temporary directories of a create older than this are debris. */
#define NEWDIR_STALE_SECS 3600

typedef struct entry {
  char *name;
  char *dir; /* NULL for an implied parent */
  int selectable;
} entry;

typedef struct tree {
  entry *e;
  size_t n, cap;
} tree;

static void tree_free(mailproto_maildir *s, tree *t) {
  for (size_t i = 0; i < t->n; i++) {
    mailproto_mem_free(&s->alloc, t->e[i].name);
    mailproto_mem_free(&s->alloc, t->e[i].dir);
  }
  mailproto_mem_free(&s->alloc, t->e);
  t->e = NULL;
  t->n = t->cap = 0;
}

static int tree_add(mailproto_maildir *s, tree *t, const char *name,
                    const char *dir, int selectable) {
  if (mailproto_store_grow(&s->alloc, (void **)&t->e, &t->cap, t->n + 1,
                           sizeof *t->e) != 0)
    return MAILPROTO_ERR_NOMEM;
  entry *e = &t->e[t->n];
  e->name = mailproto_mem_strdup(&s->alloc, name);
  e->dir = dir ? mailproto_mem_strdup(&s->alloc, dir) : NULL;
  e->selectable = selectable;
  if (!e->name || (dir && !e->dir)) {
    mailproto_mem_free(&s->alloc, e->name);
    mailproto_mem_free(&s->alloc, e->dir);
    return MAILPROTO_ERR_NOMEM;
  }
  t->n++;
  return 0;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const entry *)a)->name, ((const entry *)b)->name);
}

/* Index of the first entry whose name is >= key. */
static size_t lower_bound(const tree *t, const char *key) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(t->e[mid].name, key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static entry *tree_find(const tree *t, const char *name) {
  size_t i = lower_bound(t, name);
  return i < t->n && strcmp(t->e[i].name, name) == 0 ? &t->e[i] : NULL;
}

/* Range [*first, *last) of the entries strictly below `name`: their names
 * start with name + "/" and sort next to each other. */
static void children(const tree *t, const char *name, size_t *first,
                     size_t *last) {
  char key[MAILPROTO_MAILBOX_NAME_MAX + 2];
  size_t n = strlen(name);
  memcpy(key, name, n);
  key[n] = '/';
  key[n + 1] = '\0';
  size_t i = lower_bound(t, key), j = i;
  while (j < t->n && strncmp(t->e[j].name, key, n + 1) == 0)
    j++;
  *first = i;
  *last = j;
}

static int has_children(const tree *t, const char *name) {
  size_t a, b;
  children(t, name, &a, &b);
  return b > a;
}

/* The name a hashed directory holds, checked against its hash. */
static int hashed_name(mailproto_maildir *s, const char *dir,
                       const char *dirname, char *out) {
  char path[MD_PATH_MAX], *text = NULL;
  size_t len = 0;
  if (mailproto_maildir_path(path, "%s/%s", dir, MD_NAME_FILE) != 0 ||
      mailproto_maildir_read_file(s, path, MAILPROTO_MAILBOX_NAME_MAX + 1,
                                  &text, &len) != 0)
    return -1;
  if (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  int ok = strlen(text) == len && mailproto_store_canon_name(text, out) == 0 &&
           strcmp(out, text) == 0 && mailproto_maildir_hashed_for(dirname, out);
  mailproto_mem_free(&s->alloc, text);
  return ok ? 0 : -1;
}

/* Removes what interrupted deletes and creates left in the user dir. */
static void sweep(mailproto_maildir *s, const char *path, const char *name) {
  struct stat st;
  size_t tl = sizeof MD_TRASH_PREFIX - 1, nl = sizeof MD_NEWDIR_PREFIX - 1;
  if (strncmp(name, MD_TRASH_PREFIX, tl) == 0)
    (void)mailproto_maildir_remove_tree(s, path);
  else if (strncmp(name, MD_NEWDIR_PREFIX, nl) == 0 && stat(path, &st) == 0 &&
           st.st_mtim.tv_sec < mailproto_maildir_now() - NEWDIR_STALE_SECS)
    (void)mailproto_maildir_remove_tree(s, path);
}

/* Every mailbox of u (INBOX, folders, implied parents), sorted by name. */
static int read_tree(mailproto_maildir *s, const md_user *u, tree *t) {
  memset(t, 0, sizeof *t);
  int rc = tree_add(s, t, "INBOX", u->dir, 1);
  if (rc != 0) {
    tree_free(s, t);
    return rc;
  }
  DIR *d = opendir(u->dir);
  if (!d) {
    rc = errno == ENOENT ? 0 : mailproto_maildir_errno(errno);
    goto sorted;
  }
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      if (errno != 0)
        rc = MAILPROTO_ERR_IO;
      break;
    }
    char path[MD_PATH_MAX], name[MAILPROTO_MAILBOX_NAME_MAX + 1];
    if (mailproto_maildir_path(path, "%s/%s", u->dir, de->d_name) != 0)
      continue;
    if (de->d_name[0] != '.') {
      sweep(s, path, de->d_name);
      continue;
    }
    int kind = mailproto_maildir_dir_decode(de->d_name, name);
    if (kind < 0 || mailproto_maildir_is_dir(path) != 1)
      continue;
    if (kind == 1 && hashed_name(s, path, de->d_name, name) != 0)
      continue;
    char cur[MD_PATH_MAX];
    int sel = mailproto_maildir_path(cur, "%s/cur", path) == 0 &&
              mailproto_maildir_is_dir(cur) == 1;
    if ((rc = tree_add(s, t, name, path, sel)) != 0)
      break;
  }
  closedir(d);
sorted:
  if (rc != 0) {
    tree_free(s, t);
    return rc;
  }
  /* Implied parents of every name, then one entry per name. */
  size_t n = t->n;
  for (size_t i = 0; i < n && rc == 0; i++) {
    char prefix[MAILPROTO_MAILBOX_NAME_MAX + 1];
    const char *name = t->e[i].name;
    for (const char *p = name; rc == 0 && (p = strchr(p, '/')); p++) {
      size_t k = (size_t)(p - name);
      memcpy(prefix, name, k);
      prefix[k] = '\0';
      rc = tree_add(s, t, prefix, NULL, 0);
    }
  }
  if (rc != 0) {
    tree_free(s, t);
    return rc;
  }
  qsort(t->e, t->n, sizeof *t->e, cmp_entry);
  size_t w = 0;
  for (size_t i = 0; i < t->n; i++) {
    if (w > 0 && strcmp(t->e[w - 1].name, t->e[i].name) == 0) {
      /* A real directory wins over an implied parent. */
      entry *keep = &t->e[w - 1], *drop = &t->e[i];
      if (!keep->dir && drop->dir) {
        entry tmp = *keep;
        *keep = *drop;
        *drop = tmp;
      }
      mailproto_mem_free(&s->alloc, drop->name);
      mailproto_mem_free(&s->alloc, drop->dir);
      continue;
    }
    t->e[w++] = t->e[i];
  }
  t->n = w;
  return 0;
}

static unsigned attributes(mailproto_maildir *s, const tree *t, const entry *e,
                           const md_subs *subs) {
  unsigned a = 0;
  if (!e->selectable) {
    a |= MAILPROTO_MBOX_NOSELECT;
  } else {
    md_folder *f = mailproto_maildir_folder_find(s, e->dir);
    a |= f && f->loaded ? f->special_use
                        : mailproto_maildir_index_special_use(s, e->dir);
  }
  a |= has_children(t, e->name) ? MAILPROTO_MBOX_HAS_CHILDREN
                                : MAILPROTO_MBOX_HAS_NO_CHILDREN;
  if (mailproto_maildir_subs_has(subs, e->name))
    a |= MAILPROTO_MBOX_SUBSCRIBED;
  return a;
}

int mailproto_maildir_hook_list(void *ctx, mailproto_op *op, void *account,
                                const char *pattern, unsigned flags) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  if (!s || !op || !u || !pattern || (flags & ~MAILPROTO_LIST_SUBSCRIBED))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  tree t;
  md_subs subs;
  int rc = read_tree(s, u, &t);
  if (rc != 0)
    return rc;
  if ((rc = mailproto_maildir_subs_read(s, u, &subs)) != 0) {
    tree_free(s, &t);
    return rc;
  }
  if (flags & MAILPROTO_LIST_SUBSCRIBED) {
    for (size_t i = 0; rc == 0 && i < subs.count; i++) {
      const char *name = subs.names[i];
      if (!mailproto_mailbox_match(pattern, name))
        continue;
      const entry *e = tree_find(&t, name);
      /* RFC 5258 3: \NonExistent implies \NoSelect. */
      rc = mailproto_store_report_mailbox(op, name,
                                          e ? attributes(s, &t, e, &subs)
                                            : MAILPROTO_MBOX_SUBSCRIBED |
                                                  MAILPROTO_MBOX_NONEXISTENT |
                                                  MAILPROTO_MBOX_NOSELECT);
    }
  } else {
    for (size_t i = 0; rc == 0 && i < t.n; i++)
      if (mailproto_mailbox_match(pattern, t.e[i].name))
        rc = mailproto_store_report_mailbox(op, t.e[i].name,
                                            attributes(s, &t, &t.e[i], &subs));
  }
  mailproto_maildir_subs_free(s, &subs);
  tree_free(s, &t);
  return rc;
}

/* Writes the name file of a hashed folder directory (the name of `dir`
 * starts with ".~"). */
static int write_name(mailproto_maildir *s, const char *dir,
                      const char *canon) {
  const char *base = strrchr(dir, '/');
  if (!base || strncmp(base + 1, ".~", 2) != 0)
    return 0;
  return mailproto_maildir_replace_file(s, dir, MD_NAME_FILE, canon,
                                        strlen(canon));
}

/* Makes a directory a mailbox: marker, index, then tmp/ new/ cur/ (cur/
 * last: it is what makes the directory selectable). */
static int fill_mailbox(mailproto_maildir *s, md_user *u, const char *dir,
                        unsigned special_use) {
  uint32_t uv;
  int rc = mailproto_maildir_next_uidvalidity(s, u, &uv);
  if (rc == 0)
    rc = mailproto_maildir_index_create(s, dir, uv, special_use);
  if (rc == 0)
    rc = mailproto_maildir_replace_file(s, dir, MD_FOLDER_MARK, "", 0);
  if (rc == 0)
    rc = mailproto_maildir_make_maildir(s, dir);
  if (rc == 0 && mailproto_maildir_sync_dir(s, dir) != 0)
    rc = mailproto_maildir_errno(errno);
  return rc;
}

/* A new mailbox at `dir`, built under a temporary name and renamed into
 * place so no one sees half of it. */
static int create_dir(mailproto_maildir *s, md_user *u, const char *canon,
                      const char *dir, unsigned special_use) {
  char tmp[MD_PATH_MAX], unique[128];
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (mailproto_maildir_path(tmp, "%s/%s%s", u->dir, MD_NEWDIR_PREFIX,
                             unique) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (mailproto_maildir_mkdir(s, tmp) != 0)
    return mailproto_maildir_errno(errno);
  int rc = fill_mailbox(s, u, tmp, special_use);
  if (rc == 0 && strstr(dir, "/.~"))
    rc = mailproto_maildir_replace_file(s, tmp, MD_NAME_FILE, canon,
                                        strlen(canon));
  if (rc == 0 && mailproto_maildir_rename(s, tmp, dir) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0) {
    (void)mailproto_maildir_remove_tree(s, tmp);
    return rc;
  }
  if (mailproto_maildir_sync_dir(s, u->dir) != 0)
    return mailproto_maildir_errno(errno);
  return 0;
}

int mailproto_maildir_hook_create(void *ctx, mailproto_op *op, void *account,
                                  const char *name, unsigned special_use) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_PATH_MAX];
  (void)op;
  if (!s || !u || !name || (special_use & ~MAILPROTO_MBOX_SPECIAL_USE_MASK))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (strcmp(canon, "INBOX") == 0)
    return MAILPROTO_ERR_EXISTS;
  int rc = mailproto_maildir_lock(s, &u->lock, u->dir, MD_USER_LOCK);
  if (rc != 0)
    return rc;
  int kind;
  rc = mailproto_maildir_locate(s, u, canon, dir, &kind);
  if (rc == 0) {
    if (kind == 2)
      rc = MAILPROTO_ERR_EXISTS;
    else if (kind == 1)
      rc = fill_mailbox(s, u, dir, special_use); /* a placeholder */
    else
      rc = create_dir(s, u, canon, dir, special_use);
  }
  mailproto_maildir_unlock(&u->lock);
  return rc;
}

/* Moves dir out of the way to a trash name in the user directory (then
 * removed): the mailbox disappears at once, whole. */
static int trash_dir(mailproto_maildir *s, md_user *u, const char *dir,
                     char *trash) {
  char unique[128];
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (mailproto_maildir_path(trash, "%s/%s%s", u->dir, MD_TRASH_PREFIX,
                             unique) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (mailproto_maildir_rename(s, dir, trash) != 0)
    return mailproto_maildir_errno(errno);
  return 0;
}

int mailproto_maildir_hook_delete(void *ctx, mailproto_op *op, void *account,
                                  const char *name) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], trash[MD_PATH_MAX];
  (void)op;
  if (!s || !u || !name)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (strcmp(canon, "INBOX") == 0)
    return MAILPROTO_ERR_PERMISSION; /* RFC 3501 6.3.4 */
  int rc = mailproto_maildir_lock(s, &u->lock, u->dir, MD_USER_LOCK);
  if (rc != 0)
    return rc;
  tree t;
  if ((rc = read_tree(s, u, &t)) != 0) {
    mailproto_maildir_unlock(&u->lock);
    return rc;
  }
  const entry *e = tree_find(&t, canon);
  int kids = has_children(&t, canon);
  if (!e)
    rc = MAILPROTO_ERR_NOT_FOUND;
  else if (!e->selectable && kids)
    rc = MAILPROTO_ERR_HAS_CHILDREN; /* RFC 3501 6.3.4 */
  else if (!e->selectable)
    rc = mailproto_maildir_remove_tree(s, e->dir);
  else {
    md_folder *f = NULL;
    rc = mailproto_maildir_folder_get(s, u, canon, e->dir, &f);
    if (rc == 0)
      rc = mailproto_maildir_folder_lock(s, f);
    if (rc == 0) {
      rc = trash_dir(s, u, e->dir, trash);
      /* The children keep their parent as a \Noselect placeholder. */
      if (rc == 0 && kids && mailproto_maildir_mkdir(s, e->dir) == 0)
        (void)write_name(s, e->dir, canon);
      if (rc == 0) {
        (void)mailproto_maildir_sync_dir(s, u->dir);
        mailproto_maildir_folder_detach(s, f);
      }
      mailproto_maildir_folder_unlock(s, f);
      if (rc == 0)
        (void)mailproto_maildir_remove_tree(s, trash);
    }
    mailproto_maildir_folder_put(s, f);
  }
  tree_free(s, &t);
  mailproto_maildir_unlock(&u->lock);
  return rc;
}

/* RENAME INBOX (RFC 3501 6.3.5): its messages move to a new mailbox with
 * their UIDs and flags; INBOX stays, empty, with its UIDVALIDITY and
 * UIDNEXT. The new mailbox's index is written first and its lock held
 * while the files move, so a crash leaves every message in exactly one of
 * the two (each side's next scan drops what left it). */
static int rename_inbox(mailproto_maildir *s, md_user *u, const char *to,
                        const char *dir) {
  md_folder *in = NULL;
  char tmp[MD_PATH_MAX], unique[128];
  int rc = mailproto_maildir_folder_get(s, u, "INBOX", u->dir, &in);
  if (rc == 0)
    rc = mailproto_maildir_folder_lock(s, in);
  if (rc != 0) {
    mailproto_maildir_folder_put(s, in);
    return rc;
  }
  md_lock lk;
  mailproto_maildir_lock_init(&lk);
  rc = mailproto_maildir_refresh(s, in, MD_REFRESH_FULL_SCAN);
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (rc == 0 && mailproto_maildir_path(tmp, "%s/%s%s", u->dir,
                                        MD_NEWDIR_PREFIX, unique) != 0)
    rc = MAILPROTO_ERR_BAD_NAME;
  if (rc == 0 && mailproto_maildir_mkdir(s, tmp) != 0)
    rc = mailproto_maildir_errno(errno);
  int made = rc == 0;
  if (rc == 0)
    rc = fill_mailbox(s, u, tmp, 0);
  if (rc == 0 && strstr(dir, "/.~"))
    rc = mailproto_maildir_replace_file(s, tmp, MD_NAME_FILE, to, strlen(to));
  /* The keywords' letters mean the same in the new mailbox. */
  if (rc == 0)
    rc = mailproto_maildir_keywords_save(s, in, tmp);
  uint32_t uv = 0;
  if (rc == 0)
    rc = mailproto_maildir_next_uidvalidity(s, u, &uv);
  if (rc == 0) {
    /* The new index: INBOX's messages under a new UIDVALIDITY. */
    md_folder view = *in;
    view.dir = tmp;
    rc = mailproto_maildir_index_rewrite(s, &view, uv);
  }
  if (rc == 0)
    rc = mailproto_maildir_lock(s, &lk, tmp, MD_INDEX_LOCK);
  if (rc == 0 && mailproto_maildir_rename(s, tmp, dir) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0) {
    mailproto_maildir_unlock(&lk);
    if (made)
      (void)mailproto_maildir_remove_tree(s, tmp);
    mailproto_maildir_folder_unlock(s, in);
    mailproto_maildir_folder_put(s, in);
    return rc;
  }
  (void)mailproto_maildir_sync_dir(s, u->dir);
  md_text rec = {NULL, 0, 0};
  uint64_t modseq = in->modseq + 1;
  for (size_t i = 0; i < in->count; i++) {
    md_msg *m = &in->msgs[i];
    char from[MD_PATH_MAX], dst[MD_PATH_MAX], name[MD_FILE_MAX + 1];
    mailproto_maildir_name_of(in, m, name);
    if (mailproto_maildir_msg_path(in, m, from) != 0 ||
        mailproto_maildir_path(dst, "%s/%s/%s", dir,
                               (m->state & MD_IN_NEW) ? "new" : "cur",
                               name) != 0)
      continue;
    if (mailproto_maildir_rename(s, from, dst) != 0) {
      rc = mailproto_maildir_errno(errno);
      break;
    }
    if (mailproto_maildir_rec_expunge(s, &rec, m->uid, modseq) != 0) {
      rc = MAILPROTO_ERR_NOMEM;
      break;
    }
    mailproto_maildir_remove(in, m);
  }
  (void)mailproto_maildir_sync_dir(s, dir);
  if (rec.len) {
    /* Without the records INBOX's next scan finds the files gone and
     * writes them itself. */
    (void)mailproto_maildir_index_append(s, in, rec.p, rec.len, 1);
    in->modseq = modseq;
    mailproto_maildir_compact(s, in);
    in->new_dirty = in->cur_dirty = 1;
    mailproto_maildir_notify(in, NULL);
  }
  mailproto_maildir_text_free(s, &rec);
  mailproto_maildir_unlock(&lk);
  mailproto_maildir_folder_unlock(s, in);
  mailproto_maildir_folder_put(s, in);
  return rc;
}

/* Renames one folder directory, giving its mailbox a new UIDVALIDITY. */
static int rename_one(mailproto_maildir *s, md_user *u, const entry *e,
                      const char *new_name, const char *new_dir) {
  md_folder *f = NULL;
  int rc = 0;
  if (e->selectable) {
    rc = mailproto_maildir_folder_get(s, u, e->name, e->dir, &f);
    if (rc == 0)
      rc = mailproto_maildir_folder_lock(s, f);
    if (rc != 0) {
      mailproto_maildir_folder_put(s, f);
      return rc;
    }
    uint32_t uv;
    rc = mailproto_maildir_refresh(s, f, MD_REFRESH_INDEX_ONLY);
    if (rc == 0)
      rc = mailproto_maildir_next_uidvalidity(s, u, &uv);
    if (rc == 0)
      rc = mailproto_maildir_index_rewrite(s, f, uv);
  }
  if (rc == 0 && mailproto_maildir_rename(s, e->dir, new_dir) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc == 0) {
    char old[MD_PATH_MAX];
    if (strstr(new_dir, "/.~"))
      (void)write_name(s, new_dir, new_name);
    else if (mailproto_maildir_path(old, "%s/%s", new_dir, MD_NAME_FILE) == 0)
      (void)unlink(old);
    if (f)
      mailproto_maildir_folder_detach(s, f);
  }
  if (f) {
    mailproto_maildir_folder_unlock(s, f);
    mailproto_maildir_folder_put(s, f);
  }
  return rc;
}

int mailproto_maildir_hook_rename(void *ctx, mailproto_op *op, void *account,
                                  const char *from, const char *to) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char cf[MAILPROTO_MAILBOX_NAME_MAX + 1], ct[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !from || !to)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(from, cf) != 0 ||
      mailproto_store_canon_name(to, ct) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int rc = mailproto_maildir_lock(s, &u->lock, u->dir, MD_USER_LOCK);
  if (rc != 0)
    return rc;
  tree t;
  if ((rc = read_tree(s, u, &t)) != 0) {
    mailproto_maildir_unlock(&u->lock);
    return rc;
  }
  size_t fl = strlen(cf), tl = strlen(ct), first, last;
  char dir[MD_PATH_MAX];
  int kind;
  if (!tree_find(&t, cf))
    rc = MAILPROTO_ERR_NOT_FOUND;
  else if (tree_find(&t, ct))
    rc = MAILPROTO_ERR_EXISTS; /* also INBOX and from == to */
  else if ((rc = mailproto_maildir_locate(s, u, ct, dir, &kind)) != 0)
    ;
  else if (kind != 0)
    rc = MAILPROTO_ERR_EXISTS;
  else if (strcmp(cf, "INBOX") == 0)
    rc = rename_inbox(s, u, ct, dir);
  else if (strncmp(ct, cf, fl) == 0 && ct[fl] == '/')
    rc = MAILPROTO_ERR_BAD_NAME; /* not into itself */
  else {
    children(&t, cf, &first, &last);
    for (size_t i = first; rc == 0 && i < last; i++)
      if (strlen(t.e[i].name) - fl + tl > MAILPROTO_MAILBOX_NAME_MAX)
        rc = MAILPROTO_ERR_BAD_NAME;
    /* The mailbox, then its children, each with a directory. */
    const entry *self = tree_find(&t, cf);
    for (size_t i = first; rc == 0 && i <= last; i++) {
      const entry *e = i == first ? self : &t.e[i - 1];
      if (!e->dir)
        continue;
      char nn[MAILPROTO_MAILBOX_NAME_MAX + 1], nd[MD_PATH_MAX];
      memcpy(nn, ct, tl);
      memcpy(nn + tl, e->name + fl, strlen(e->name) - fl + 1);
      rc = mailproto_maildir_locate(s, u, nn, nd, &kind);
      if (rc == 0 && kind != 0)
        rc = MAILPROTO_ERR_EXISTS;
      if (rc == 0)
        rc = rename_one(s, u, e, nn, nd);
    }
    if (rc == 0)
      (void)mailproto_maildir_sync_dir(s, u->dir);
  }
  tree_free(s, &t);
  mailproto_maildir_unlock(&u->lock);
  return rc;
}

int mailproto_maildir_hook_status(void *ctx, mailproto_op *op, void *account,
                                  const char *name,
                                  mailproto_mailbox_status *status) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], dir[MD_PATH_MAX];
  int kind;
  (void)op;
  if (!s || !u || !name || !status)
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
  rc = mailproto_maildir_refresh(s, f, 0);
  if (rc == 0)
    mailproto_maildir_fill_status(f, NULL, status);
  mailproto_maildir_folder_put(s, f);
  return rc;
}
