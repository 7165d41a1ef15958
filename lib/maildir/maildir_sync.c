/*
 * Bringing a folder's view up to date with the disk.
 *
 * 1. The index: what other processes appended since the last read (or all
 *    of it if it was replaced). A missing index is created (a Maildir made
 *    by another program); a damaged one is set aside as
 *    mailproto-index.damaged and rebuilt from the files with a new
 *    UIDVALIDITY, so clients drop what they cached (never a crash, never a
 *    reused UID under an old UIDVALIDITY).
 * 2. The directories, when their mtime changed since the last scan (or was
 *    too recent to trust: a change within the same timestamp tick leaves
 *    it as it was). Files are matched to messages by base name (the part
 *    before ':'), so a file another program renamed to change its flags
 *    keeps its UID and the new flags get a new mod-sequence; files nobody
 *    indexed get fresh UIDs (above every UID ever given: UIDNEXT only
 *    grows); messages whose file is gone are expunged.
 * 3. For read-write opens, files in new/ move to cur/ (maildir(5)).
 *
 * Scans that may write records run under the folder lock, after reading
 * the index again, so two processes never give out one UID and never
 * record one outside change twice. Every record is written (and fsynced)
 * before the view changes, so nothing is ever reported that the disk does
 * not hold.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_internal.h"
#include "store/store_util.h"

#define LOW_KW (((uint64_t)1 << MD_LETTERS) - 1)

static int stat_mtime(const char *dir, const char *sub, struct timespec *mt) {
  char p[MD_PATH_MAX];
  struct stat st;
  if (mailproto_maildir_path(p, "%s/%s", dir, sub) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (stat(p, &st) != 0)
    return mailproto_maildir_errno(errno);
  if (!S_ISDIR(st.st_mode))
    return MAILPROTO_ERR_NOT_FOUND;
  *mt = st.st_mtim;
  return 0;
}

static int same_time(const struct timespec *a, const struct timespec *b) {
  return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

/* ---- the index ---- */

/* Sets the damaged index aside and starts a new one (folder lock held). */
static int rebuild_index(mailproto_maildir *s, md_folder *f, int exists) {
  char from[MD_PATH_MAX], to[MD_PATH_MAX];
  if (exists) {
    if (mailproto_maildir_path(from, "%s/%s", f->dir, MD_INDEX) != 0 ||
        mailproto_maildir_path(to, "%s/%s.damaged", f->dir, MD_INDEX) != 0)
      return MAILPROTO_ERR_BAD_NAME;
    if (mailproto_maildir_rename(s, from, to) != 0 && errno != ENOENT)
      return mailproto_maildir_errno(errno);
  }
  uint32_t uv;
  int rc = mailproto_maildir_next_uidvalidity(s, f->user, &uv);
  if (rc == 0)
    rc = mailproto_maildir_index_create(s, f->dir, uv, 0);
  if (rc != 0)
    return rc;
  f->loaded = 0;
  rc = mailproto_maildir_index_read(s, f);
  /* Every file needs its UID again. */
  f->new_dirty = f->cur_dirty = 1;
  return rc;
}

static int load_index(mailproto_maildir *s, md_folder *f, int *locked) {
  int rc = mailproto_maildir_index_read(s, f);
  if (rc != MAILPROTO_ERR_NOT_FOUND && rc != MAILPROTO_ERR_SYNTAX)
    return rc;
  if (!*locked) {
    if ((rc = mailproto_maildir_folder_lock(s, f)) != 0)
      return rc;
    *locked = 1;
  }
  /* Again under the lock: someone may have just written it. */
  f->loaded = 0;
  rc = mailproto_maildir_index_read(s, f);
  if (rc == MAILPROTO_ERR_NOT_FOUND || rc == MAILPROTO_ERR_SYNTAX)
    rc = rebuild_index(s, f, rc == MAILPROTO_ERR_SYNTAX);
  return rc;
}

/* ---- scanning the directories ---- */

typedef struct found_file {
  uint32_t off; /* in the names text */
  uint8_t len;
  uint8_t in_new;
} found_file;

typedef struct change {
  size_t index;
  uint8_t flags;
  uint64_t kw;
} change;

typedef struct scan {
  uint32_t *hash; /* message index + 1 by base name; 0: empty */
  size_t hash_mask;
  md_text names; /* names of files no message has */
  found_file *files;
  size_t file_count, file_cap;
  change *changes;
  size_t change_count, change_cap;
} scan;

static uint32_t hash_bytes(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)p[i];
    h *= 16777619u;
  }
  return h;
}

static int hash_build(mailproto_maildir *s, md_folder *f, scan *sc) {
  size_t size = 16;
  while (size < f->count * 2)
    if (mailproto_size_mul(size, 2, &size) != 0)
      return MAILPROTO_ERR_NOMEM;
  sc->hash = mailproto_mem_calloc(&s->alloc, size, sizeof *sc->hash);
  if (!sc->hash)
    return MAILPROTO_ERR_NOMEM;
  sc->hash_mask = size - 1;
  for (size_t i = 0; i < f->count; i++) {
    md_msg *m = &f->msgs[i];
    m->state &= (uint8_t)~MD_FOUND;
    size_t h = hash_bytes(f->pool + m->name, m->base_len) & sc->hash_mask;
    while (sc->hash[h])
      h = (h + 1) & sc->hash_mask;
    sc->hash[h] = (uint32_t)(i + 1);
  }
  return 0;
}

static md_msg *hash_find(md_folder *f, const scan *sc, const char *base,
                         size_t len) {
  size_t h = hash_bytes(base, len) & sc->hash_mask;
  for (; sc->hash[h]; h = (h + 1) & sc->hash_mask) {
    md_msg *m = &f->msgs[sc->hash[h] - 1];
    if (m->base_len == len && memcmp(f->pool + m->name, base, len) == 0)
      return m;
  }
  return NULL;
}

static void scan_free(mailproto_maildir *s, scan *sc) {
  mailproto_mem_free(&s->alloc, sc->hash);
  mailproto_maildir_text_free(s, &sc->names);
  mailproto_mem_free(&s->alloc, sc->files);
  mailproto_mem_free(&s->alloc, sc->changes);
}

/* The name a file with these flags would have if no other program had
 * touched it (a letter of a keyword not in the table is another
 * program's). */
static int canonical(const md_folder *f, const char *name, size_t len,
                     const md_info *in, int in_new) {
  if (in_new)
    return !in->has_info && len == in->base_len;
  if (!in->has_info)
    return 0;
  const char *p = name + in->base_len + 3, *end = name + len;
  char prev = 0;
  /* Exactly the letters this store would write, in ASCII order. */
  for (; p < end; p++) {
    char c = *p;
    if (c <= prev)
      return 0;
    if (!((c >= 'a' && c <= 'z' && f->kw[c - 'a']) || c == 'D' || c == 'F' ||
          c == 'R' || c == 'S' || c == 'T'))
      return 0;
    prev = c;
  }
  return 1;
}

/* One file of a scan: matched to its message or listed as unknown. */
static int scan_file(mailproto_maildir *s, md_folder *f, scan *sc,
                     const char *name, int in_new) {
  size_t len = strlen(name);
  md_info in;
  if (mailproto_maildir_info_parse(name, len, &in) != 0)
    return 0; /* not a message file */
  md_msg *m = hash_find(f, sc, name, in.base_len);
  if (!m) {
    if (mailproto_store_grow(&s->alloc, (void **)&sc->files, &sc->file_cap,
                             sc->file_count + 1, sizeof *sc->files) != 0)
      return MAILPROTO_ERR_NOMEM;
    found_file *ff = &sc->files[sc->file_count];
    if (sc->names.len > UINT32_MAX - MD_FILE_MAX)
      return MAILPROTO_ERR_LIMIT;
    ff->off = (uint32_t)sc->names.len;
    ff->len = (uint8_t)len;
    ff->in_new = (uint8_t)in_new;
    if (mailproto_maildir_text_add(s, &sc->names, "%s", name) != 0)
      return MAILPROTO_ERR_NOMEM;
    sc->file_count++;
    return 0;
  }
  /* A second file with the same base (a copy made by another program) is
   * not a second message: the first one found stays. */
  if (m->state & MD_FOUND)
    return 0;
  m->state |= MD_FOUND;
  int odd = !canonical(f, name, len, &in, in_new);
  char now[MD_FILE_MAX + 1];
  mailproto_maildir_name_of(f, m, now);
  if (odd || (m->state & MD_ODD) || in_new != !!(m->state & MD_IN_NEW) ||
      strcmp(now, name) != 0) {
    int rc = mailproto_maildir_rename_msg(s, f, m, name, in_new, odd);
    if (rc != 0)
      return rc;
  }
  /* A file in new/ without info has no flags yet: that is no change. */
  if (in_new && !in.has_info)
    return 0;
  uint64_t kw = (m->kw & ~LOW_KW) | mailproto_maildir_letters_kw(f, in.letters);
  if (in.flags != m->flags || kw != m->kw) {
    if (mailproto_store_grow(&s->alloc, (void **)&sc->changes, &sc->change_cap,
                             sc->change_count + 1, sizeof *sc->changes) != 0)
      return MAILPROTO_ERR_NOMEM;
    change *c = &sc->changes[sc->change_count++];
    c->index = (size_t)(m - f->msgs);
    c->flags = in.flags;
    c->kw = kw;
  }
  return 0;
}

static int scan_dir(mailproto_maildir *s, md_folder *f, scan *sc,
                    const char *sub) {
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/%s", f->dir, sub) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  DIR *d = opendir(path);
  if (!d)
    return mailproto_maildir_errno(errno);
  int rc = 0, in_new = strcmp(sub, "new") == 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno != 0)
        rc = MAILPROTO_ERR_IO;
      break;
    }
    if (e->d_name[0] == '.')
      continue;
    if ((rc = scan_file(s, f, sc, e->d_name, in_new)) != 0)
      break;
  }
  closedir(d);
  return rc;
}

/* RFC822.SIZE of a file: ",W=<n>" in its name (Dovecot's), else counted. */
static int file_vsize(const char *path, const char *name, size_t base_len,
                      uint64_t psize, uint64_t *vsize) {
  for (const char *p = name; p < name + base_len; p++) {
    if (p[0] != ',' || p + 3 > name + base_len || p[1] != 'W' || p[2] != '=')
      continue;
    uint64_t v = 0;
    const char *q = p + 3;
    for (; q < name + base_len && *q >= '0' && *q <= '9' && v < INT64_MAX / 10;
         q++)
      v = v * 10 + (uint64_t)(*q - '0');
    if (q > p + 3 && (q == name + base_len || *q == ',') && v >= psize) {
      *vsize = v;
      return 0;
    }
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  uint8_t buf[8192];
  mailproto_store_size counted = {0, 0, 0};
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      return MAILPROTO_ERR_IO;
    }
    if (n == 0)
      break;
    mailproto_store_size_add(&counted, buf, (size_t)n);
  }
  close(fd);
  *vsize = psize + counted.bare;
  return 0;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

/* File names in arrival order: runs of digits compare as numbers, so
 * "1.M99" comes before "1.M100" (time, microsecond, sequence). */
static int cmp_file(const char *names, const found_file *x,
                    const found_file *y) {
  const char *a = names + x->off, *ae = a + x->len;
  const char *b = names + y->off, *be = b + y->len;
  while (a < ae && b < be) {
    if (is_digit(*a) && is_digit(*b)) {
      const char *as = a, *bs = b;
      while (as < ae && *as == '0')
        as++;
      while (bs < be && *bs == '0')
        bs++;
      a = as;
      b = bs;
      while (a < ae && is_digit(*a))
        a++;
      while (b < be && is_digit(*b))
        b++;
      if (a - as != b - bs)
        return a - as < b - bs ? -1 : 1;
      int c = memcmp(as, bs, (size_t)(a - as));
      if (c)
        return c;
      continue;
    }
    if (*a != *b)
      return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
    a++;
    b++;
  }
  return (a < ae) - (b < be);
}

/* Heapsort by name (qsort has no context argument). */
static void sift(found_file *a, size_t root, size_t n, const char *names) {
  for (;;) {
    size_t child = 2 * root + 1;
    if (child >= n)
      return;
    if (child + 1 < n && cmp_file(names, &a[child], &a[child + 1]) < 0)
      child++;
    if (cmp_file(names, &a[root], &a[child]) >= 0)
      return;
    found_file t = a[root];
    a[root] = a[child];
    a[child] = t;
    root = child;
  }
}

static void sort_files(found_file *a, size_t n, const char *names) {
  for (size_t i = n / 2; i-- > 0;)
    sift(a, i, n, names);
  for (size_t end = n; end-- > 1;) {
    found_file t = a[0];
    a[0] = a[end];
    a[end] = t;
    sift(a, 0, end, names);
  }
}

/* Describes an unknown file as a new message; 1 if it vanished. */
static int describe(md_folder *f, const found_file *ff, const char *name,
                    md_msg *m, int *odd) {
  char path[MD_PATH_MAX];
  struct stat st;
  md_info in;
  if (mailproto_maildir_path(path, "%s/%s/%s", f->dir,
                             ff->in_new ? "new" : "cur", name) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (stat(path, &st) != 0)
    return errno == ENOENT ? 1 : mailproto_maildir_errno(errno);
  if (!S_ISREG(st.st_mode))
    return 1;
  mailproto_maildir_info_parse(name, ff->len, &in);
  memset(m, 0, sizeof *m);
  m->psize = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  int rc = file_vsize(path, name, in.base_len, m->psize, &m->vsize);
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOT_FOUND ? 1 : rc;
  /* maildir(5) and Dovecot: the mtime is the INTERNALDATE. */
  m->date = (int64_t)st.st_mtim.tv_sec;
  m->flags = (ff->in_new && !in.has_info) ? 0 : in.flags;
  m->kw = (ff->in_new && !in.has_info)
              ? 0
              : mailproto_maildir_letters_kw(f, in.letters);
  m->state = ff->in_new ? MD_IN_NEW : 0;
  m->base_len = (uint8_t)in.base_len;
  *odd = !canonical(f, name, ff->len, &in, ff->in_new);
  return 0;
}

/* Turns what a scan found into records, writes them, then applies them. */
static int scan_commit(mailproto_maildir *s, md_folder *f, scan *sc) {
  uint64_t modseq = f->modseq + 1;
  size_t vanished = 0;
  for (size_t i = 0; i < f->count; i++)
    if (!(f->msgs[i].state & MD_FOUND))
      vanished++;
  if (!sc->file_count && !sc->change_count && !vanished)
    return 0;
  md_text rec = {NULL, 0, 0};
  md_msg *adds = NULL;
  size_t *from = NULL; /* the file of each added message */
  uint8_t *odd = NULL;
  size_t nadd = 0;
  int rc = 0;
  if (sc->file_count) {
    adds = mailproto_mem_calloc(&s->alloc, sc->file_count, sizeof *adds);
    from = mailproto_mem_calloc(&s->alloc, sc->file_count, sizeof *from);
    odd = mailproto_mem_calloc(&s->alloc, sc->file_count, 1);
    if (!adds || !from || !odd)
      rc = MAILPROTO_ERR_NOMEM;
    /* Fresh UIDs in file name order: names start with the arrival time. */
    if (rc == 0)
      sort_files(sc->files, sc->file_count, sc->names.p);
  }
  uint32_t uid = f->uidnext;
  for (size_t i = 0; rc == 0 && i < sc->file_count; i++) {
    const found_file *ff = &sc->files[i];
    char name[MD_FILE_MAX + 1];
    memcpy(name, sc->names.p + ff->off, ff->len);
    name[ff->len] = '\0';
    int o = 0;
    md_msg *m = &adds[nadd];
    int r = describe(f, ff, name, m, &o);
    if (r == 1)
      continue; /* gone again already */
    if (r != 0 || uid > MD_UID_MAX) {
      rc = r != 0 ? r : MAILPROTO_ERR_LIMIT; /* LIMIT: UIDs are spent */
      break;
    }
    m->uid = uid++;
    m->modseq = modseq;
    from[nadd] = i;
    odd[nadd++] = (uint8_t)o;
    rc = mailproto_maildir_rec_add(s, &rec, m, name);
  }
  for (size_t i = 0; rc == 0 && i < sc->change_count; i++) {
    const change *c = &sc->changes[i];
    rc = mailproto_maildir_text_add(
        s, &rec, "F %lu %llu %x %llx\n", (unsigned long)f->msgs[c->index].uid,
        (unsigned long long)modseq, (unsigned)c->flags,
        (unsigned long long)c->kw);
  }
  for (size_t i = 0; rc == 0 && i < f->count; i++)
    if (!(f->msgs[i].state & MD_FOUND))
      rc = mailproto_maildir_rec_expunge(s, &rec, f->msgs[i].uid, modseq);
  if (rc == 0)
    rc = mailproto_maildir_reserve(s, f, nadd);
  if (rc == 0)
    rc = mailproto_maildir_index_append(s, f, rec.p, rec.len, 1);
  if (rc == 0) {
    /* Written: now the view follows. Changes and expunges first, while
     * the indices in `changes` are still right. */
    for (size_t i = 0; i < sc->change_count; i++) {
      md_msg *m = &f->msgs[sc->changes[i].index];
      mailproto_maildir_set_msg_flags(f, m, sc->changes[i].flags,
                                      sc->changes[i].kw);
      m->modseq = modseq;
    }
    for (size_t i = 0; i < f->count; i++)
      if (!(f->msgs[i].state & MD_FOUND))
        mailproto_maildir_remove(f, &f->msgs[i]);
    f->modseq = modseq;
    for (size_t i = 0; i < nadd; i++) {
      md_msg m = adds[i];
      const found_file *ff = &sc->files[from[i]];
      size_t len = odd[i] ? ff->len : m.base_len;
      if (mailproto_maildir_pool_add(s, f, sc->names.p + ff->off, len,
                                     &m.name) != 0) {
        /* The records are written: a full read of the index brings the
         * rest in. */
        f->loaded = 0;
        rc = MAILPROTO_ERR_NOMEM;
        break;
      }
      m.name_len = (uint8_t)len;
      if (odd[i])
        m.state |= MD_ODD;
      mailproto_maildir_push(f, &m);
      f->uidnext = m.uid + 1;
    }
    mailproto_maildir_compact(s, f);
  }
  mailproto_maildir_text_free(s, &rec);
  mailproto_mem_free(&s->alloc, adds);
  mailproto_mem_free(&s->alloc, from);
  mailproto_mem_free(&s->alloc, odd);
  return rc;
}

static int scan_dirs(mailproto_maildir *s, md_folder *f, int do_new,
                     int do_cur) {
  struct timespec new_mt, cur_mt;
  int64_t start = mailproto_maildir_now();
  /* The mtimes are taken before reading: a change during the scan moves
   * them on, so the next refresh looks again. */
  int rc = stat_mtime(f->dir, "new", &new_mt);
  if (rc == 0)
    rc = stat_mtime(f->dir, "cur", &cur_mt);
  if (rc != 0)
    return rc;
  scan sc;
  memset(&sc, 0, sizeof sc);
  rc = hash_build(s, f, &sc);
  if (rc == 0 && do_new)
    rc = scan_dir(s, f, &sc, "new");
  if (rc == 0 && !do_cur) {
    /* A message that left new/ may be in cur/ now (moved by another
     * session): only a scan of cur/ can tell. */
    for (size_t i = 0; i < f->count && !do_cur; i++)
      if ((f->msgs[i].state & (MD_IN_NEW | MD_FOUND)) == MD_IN_NEW)
        do_cur = 1;
  }
  if (rc == 0 && do_cur)
    rc = scan_dir(s, f, &sc, "cur");
  if (rc == 0) {
    /* Messages in a directory that was not scanned are where they were. */
    for (size_t i = 0; i < f->count; i++) {
      md_msg *m = &f->msgs[i];
      if ((m->state & MD_IN_NEW) ? !do_new : !do_cur)
        m->state |= MD_FOUND;
    }
    rc = scan_commit(s, f, &sc);
  }
  scan_free(s, &sc);
  if (rc != 0)
    return rc;
  if (do_new) {
    f->new_mtime = new_mt;
    f->new_dirty = new_mt.tv_sec >= start - MD_DIRTY_SECS;
  }
  if (do_cur) {
    f->cur_mtime = cur_mt;
    f->cur_dirty = cur_mt.tv_sec >= start - MD_DIRTY_SECS;
  }
  return 0;
}

/* Moves new/ files to cur/ (folder lock held). A file someone else moved
 * first is found by the next scan. */
static int move_new(mailproto_maildir *s, md_folder *f) {
  int moved = 0;
  for (size_t i = 0; i < f->count && f->in_new; i++) {
    md_msg *m = &f->msgs[i];
    if (!(m->state & MD_IN_NEW))
      continue;
    char name[MD_FILE_MAX + 1], from[MD_PATH_MAX], to[MD_PATH_MAX];
    int odd;
    if (mailproto_maildir_name_for(f, m, 0, m->flags, m->kw, name, &odd) != 0 ||
        mailproto_maildir_msg_path(f, m, from) != 0 ||
        mailproto_maildir_path(to, "%s/cur/%s", f->dir, name) != 0)
      continue; /* a name too long for cur/: it stays in new/ */
    if (mailproto_maildir_rename(s, from, to) != 0) {
      if (errno != ENOENT)
        return mailproto_maildir_errno(errno);
      f->new_dirty = f->cur_dirty = 1;
      continue;
    }
    moved = 1;
    int rc = mailproto_maildir_rename_msg(s, f, m, name, 0, odd);
    if (rc != 0)
      return rc;
  }
  if (moved)
    f->new_dirty = f->cur_dirty = 1;
  return 0;
}

int mailproto_maildir_refresh(mailproto_maildir *s, md_folder *f,
                              unsigned mode) {
  if (f->gone)
    return MAILPROTO_ERR_NOT_FOUND;
  struct timespec new_mt, cur_mt;
  int rc = stat_mtime(f->dir, "cur", &cur_mt);
  if (rc == MAILPROTO_ERR_NOT_FOUND) {
    mailproto_maildir_folder_detach(s, f);
    return rc;
  }
  if (rc != 0)
    return rc;
  /* A caller that holds the lock lets scans run at once. */
  int locked = f->lock.depth > 0, took = 0;
  rc = load_index(s, f, &took);
  /* Letters in file names and keyword bits need their names. */
  if (rc == 0 && !(mode & MD_REFRESH_INDEX_ONLY))
    rc = mailproto_maildir_keywords_refresh(s, f);
  if (rc != 0 || (mode & MD_REFRESH_INDEX_ONLY))
    goto out;
  for (int repaired = 0;;) {
    rc = stat_mtime(f->dir, "new", &new_mt);
    if (rc == MAILPROTO_ERR_NOT_FOUND && !repaired) {
      /* cur/ without new/ or tmp/: put the missing parts back. */
      repaired = 1;
      if ((rc = mailproto_maildir_make_maildir(s, f->dir)) != 0)
        break;
      continue;
    }
    if (rc != 0 || (rc = stat_mtime(f->dir, "cur", &cur_mt)) != 0)
      break;
    int full = (mode & MD_REFRESH_FULL_SCAN) != 0;
    int do_new = full || f->new_dirty || !same_time(&new_mt, &f->new_mtime);
    int do_cur = full || f->cur_dirty || !same_time(&cur_mt, &f->cur_mtime);
    int do_move = (mode & MD_REFRESH_MOVE_NEW) && (f->in_new || do_new);
    if (!do_new && !do_cur && !do_move)
      break;
    if (!locked && !took) {
      /* Scans may write records: under the lock, after reading what was
       * written meanwhile, and deciding again. */
      if ((rc = mailproto_maildir_folder_lock(s, f)) != 0)
        break;
      took = 1;
      if ((rc = load_index(s, f, &took)) != 0)
        break;
      continue;
    }
    if ((do_new || do_cur) && (rc = scan_dirs(s, f, do_new, do_cur)) != 0)
      break;
    if ((mode & MD_REFRESH_MOVE_NEW) && f->in_new)
      rc = move_new(s, f);
    break;
  }
out:
  if (took)
    mailproto_maildir_folder_unlock(s, f);
  if (rc == MAILPROTO_ERR_NOT_FOUND && !f->gone) {
    /* The folder vanished under us (deleted or renamed elsewhere). */
    if (mailproto_maildir_is_dir(f->dir) != 1 ||
        stat_mtime(f->dir, "cur", &cur_mt) != 0)
      mailproto_maildir_folder_detach(s, f);
  }
  return rc;
}

void mailproto_maildir_fill_status(const md_folder *f, const md_handle *h,
                                   mailproto_mailbox_status *st) {
  size_t recent = 0, count = f->count;
  if (h && h->detached) {
    count = 0;
  } else if (h) {
    for (size_t i = 0; i < h->recent_count; i++)
      recent += mailproto_maildir_lower_bound(f, h->recent[i].last + 1) -
                mailproto_maildir_lower_bound(f, h->recent[i].first);
  } else {
    recent = f->count - mailproto_maildir_lower_bound(f, f->recent_from);
  }
  mailproto_mailbox_status full;
  memset(&full, 0, sizeof full);
  if (h && h->detached) {
    full.uidvalidity = h->uidvalidity;
    full.uidnext = h->known_uidnext;
    full.highest_modseq = h->known_modseq;
  } else {
    full.messages = (uint32_t)count;
    full.recent = (uint32_t)recent;
    full.unseen = (uint32_t)(f->count - f->seen);
    full.deleted = (uint32_t)f->deleted;
    full.uidnext = f->uidnext;
    full.uidvalidity = f->uidvalidity;
    full.size = f->vsize;
    full.highest_modseq = f->modseq;
  }
  mailproto_store_put_status(st, &full);
}
