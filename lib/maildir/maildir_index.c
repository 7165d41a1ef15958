/*
 * The per-folder index file, mailproto-index: a header line, then records
 * appended one line each. Appending is cheap (a delivery, a flag change or
 * an expunge writes a line or a few, never the whole file); when records
 * outnumber the messages the file is rewritten (a temporary file, fsync,
 * rename), which is also how UIDVALIDITY changes.
 *
 *   mailproto-maildir 1 <uidvalidity> <uidnext> <modseq> <recent> <use>
 *   A <uid> <modseq> <flags> <keywords> <vsize> <psize> <date> <tz> <base>
 *   F <uid> <modseq> <flags> <keywords>
 *   X <uid> <modseq>
 *   R <recent>
 *
 * A: a message got a UID (flags and keywords in hex; flag 0x80: its file
 * was in new/); F: its flags changed; X: it was expunged; R: UIDs from
 * <recent> on are \Recent for nobody yet. UIDNEXT and HIGHESTMODSEQ grow
 * with the records. Writers hold the folder lock; readers take only the
 * whole lines, so a line being written (or torn by a crash) is not read,
 * and the next writer cuts a torn line off before appending.
 *
 * The file is input from disk, so it is parsed like any other input:
 * bounded lines, strict numbers, every record checked against what came
 * before (UIDs ascending, changes only to messages that exist). Anything
 * else is damage (SYNTAX): the caller rebuilds the index from the files
 * with a new UIDVALIDITY (maildir_sync.c).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_internal.h"

#define MAGIC "mailproto-maildir 1 "
/* Longest line: an A record with a 255-byte base and every number at its
 * widest fits well within this. */
#define LINE_MAX_LEN 1024
#define CHUNK 65536
/* Records beyond this many per message make the next append compact. */
#define COMPACT_MIN 1024
#define FLAG_IN_NEW 0x80u
/* Mod-sequences are positive 63-bit values (RFC 7162 3.1), and each change
 * adds one to the highest. An index claiming more than half of that range
 * cannot come from this store (2^62 changes do not happen): it is damage,
 * and refusing it keeps every value written later far below INT64_MAX. */
#define MODSEQ_MAX ((uint64_t)INT64_MAX / 2)

/* ---- text buffers ---- */

int mailproto_maildir_text_add(mailproto_maildir *s, md_text *t,
                               const char *fmt, ...) {
  va_list ap;
  char small[LINE_MAX_LEN];
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof small)
    return MAILPROTO_ERR_TOO_LONG;
  size_t need;
  if (mailproto_size_add(t->len, (size_t)n, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  if (need > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (cap < need)
      if (mailproto_size_mul(cap, 2, &cap) != 0)
        return MAILPROTO_ERR_NOMEM;
    char *p = mailproto_mem_realloc(&s->alloc, t->p, cap);
    if (!p)
      return MAILPROTO_ERR_NOMEM;
    t->p = p;
    t->cap = cap;
  }
  memcpy(t->p + t->len, small, (size_t)n);
  t->len = need;
  return 0;
}

void mailproto_maildir_text_free(mailproto_maildir *s, md_text *t) {
  mailproto_mem_free(&s->alloc, t->p);
  t->p = NULL;
  t->len = t->cap = 0;
}

int mailproto_maildir_rec_add(mailproto_maildir *s, md_text *t, const md_msg *m,
                              const char *base) {
  unsigned flags = m->flags | ((m->state & MD_IN_NEW) ? FLAG_IN_NEW : 0u);
  return mailproto_maildir_text_add(
      s, t, "A %lu %llu %x %llx %llu %llu %lld %d %.*s\n",
      (unsigned long)m->uid, (unsigned long long)m->modseq, flags,
      (unsigned long long)m->kw, (unsigned long long)m->vsize,
      (unsigned long long)m->psize, (long long)m->date, (int)m->tz,
      (int)m->base_len, base);
}

int mailproto_maildir_rec_flags(mailproto_maildir *s, md_text *t,
                                const md_msg *m) {
  return mailproto_maildir_text_add(
      s, t, "F %lu %llu %x %llx\n", (unsigned long)m->uid,
      (unsigned long long)m->modseq, (unsigned)m->flags,
      (unsigned long long)m->kw);
}

int mailproto_maildir_rec_expunge(mailproto_maildir *s, md_text *t,
                                  uint32_t uid, uint64_t modseq) {
  return mailproto_maildir_text_add(s, t, "X %lu %llu\n", (unsigned long)uid,
                                    (unsigned long long)modseq);
}

/* ---- parsing ---- */

typedef struct cursor {
  const char *p, *end;
  int bad;
} cursor;

/* The next space-separated field; marks the cursor bad if there is none. */
static size_t field(cursor *c, const char **start) {
  *start = c->p;
  const char *q = c->p;
  while (q < c->end && *q != ' ')
    q++;
  size_t n = (size_t)(q - c->p);
  if (n == 0)
    c->bad = 1;
  c->p = q < c->end ? q + 1 : q;
  return n;
}

static uint64_t number(cursor *c, int base, uint64_t max) {
  const char *s;
  size_t n = field(c, &s);
  uint64_t v = 0;
  if (n == 0 || n > 20) {
    c->bad = 1;
    return 0;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned d;
    char ch = s[i];
    if (ch >= '0' && ch <= '9')
      d = (unsigned)(ch - '0');
    else if (base == 16 && ch >= 'a' && ch <= 'f')
      d = (unsigned)(ch - 'a' + 10);
    else {
      c->bad = 1;
      return 0;
    }
    if (v > (max - d) / (uint64_t)base) {
      c->bad = 1;
      return 0;
    }
    v = v * (uint64_t)base + d;
  }
  return v;
}

static int64_t signed_number(cursor *c, int64_t min, int64_t max) {
  int neg = c->p < c->end && *c->p == '-';
  if (neg)
    c->p++;
  uint64_t v = number(c, 10, neg ? (uint64_t)INT64_MAX + 1 : INT64_MAX);
  if (c->bad)
    return 0;
  int64_t r = neg ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v)
                  : (int64_t)v;
  if (r < min || r > max)
    c->bad = 1;
  return r;
}

static int done(const cursor *c) {
  return !c->bad && c->p == c->end;
}

static int header(md_folder *f, const char *line, size_t len) {
  size_t ml = sizeof MAGIC - 1;
  if (len < ml || memcmp(line, MAGIC, ml) != 0)
    return MAILPROTO_ERR_SYNTAX;
  cursor c = {line + ml, line + len, 0};
  uint64_t uv = number(&c, 10, UINT32_MAX);
  uint64_t next = number(&c, 10, (uint64_t)MD_UID_MAX + 1);
  uint64_t modseq = number(&c, 10, MODSEQ_MAX);
  uint64_t recent = number(&c, 10, (uint64_t)MD_UID_MAX + 1);
  uint64_t use = number(&c, 10, MAILPROTO_MBOX_SPECIAL_USE_MASK);
  if (!done(&c) || uv == 0 || next == 0 || modseq == 0 || recent > next ||
      (use & ~(uint64_t)MAILPROTO_MBOX_SPECIAL_USE_MASK))
    return MAILPROTO_ERR_SYNTAX;
  f->uidvalidity = (uint32_t)uv;
  f->uidnext = (uint32_t)next;
  f->modseq = modseq;
  f->recent_from = (uint32_t)recent;
  f->special_use = (unsigned)use;
  return 0;
}

static int record_add(mailproto_maildir *s, md_folder *f, cursor *c) {
  md_msg m;
  memset(&m, 0, sizeof m);
  uint64_t uid = number(c, 10, MD_UID_MAX);
  m.modseq = number(c, 10, MODSEQ_MAX);
  uint64_t flags = number(c, 16, 0xff);
  m.kw = number(c, 16, UINT64_MAX);
  m.vsize = number(c, 10, INT64_MAX);
  m.psize = number(c, 10, INT64_MAX);
  m.date = signed_number(c, INT64_MIN / 2, INT64_MAX / 2);
  m.tz = (int16_t)signed_number(c, -1439, 1439);
  const char *base;
  size_t bl = field(c, &base);
  md_info info;
  /* UIDs ascend. A rewritten index starts with the messages it keeps
   * (below the header's UIDNEXT); every message added later is above. */
  uint32_t last = f->count ? f->msgs[f->count - 1].uid : 0;
  int fresh = f->ix_base ? uid > last : uid >= f->uidnext;
  if (!done(c) || uid == 0 || !fresh || m.modseq == 0 ||
      (flags & ~(uint64_t)(MAILPROTO_FLAGS_SETTABLE | FLAG_IN_NEW)) ||
      m.psize > m.vsize || mailproto_maildir_info_parse(base, bl, &info) != 0 ||
      info.base_len != bl)
    return MAILPROTO_ERR_SYNTAX;
  m.uid = (uint32_t)uid;
  m.flags = (uint8_t)(flags & MAILPROTO_FLAGS_SETTABLE);
  m.state = (flags & FLAG_IN_NEW) ? MD_IN_NEW : 0;
  m.base_len = m.name_len = (uint8_t)bl;
  int rc = mailproto_maildir_reserve(s, f, 1);
  if (rc == 0)
    rc = mailproto_maildir_pool_add(s, f, base, bl, &m.name);
  if (rc != 0)
    return rc;
  mailproto_maildir_push(f, &m);
  if (m.uid >= f->uidnext)
    f->uidnext = m.uid + 1;
  if (m.modseq > f->modseq)
    f->modseq = m.modseq;
  return 0;
}

static int record_change(mailproto_maildir *s, md_folder *f, cursor *c,
                         int expunge) {
  uint64_t uid = number(c, 10, MD_UID_MAX);
  uint64_t modseq = number(c, 10, MODSEQ_MAX);
  uint64_t flags = 0, kw = 0;
  if (!expunge) {
    flags = number(c, 16, MAILPROTO_FLAGS_SETTABLE);
    kw = number(c, 16, UINT64_MAX);
  }
  md_msg *m = mailproto_maildir_find(f, (uint32_t)uid);
  if (!done(c) || !m || modseq == 0)
    return MAILPROTO_ERR_SYNTAX;
  if (modseq > f->modseq)
    f->modseq = modseq;
  if (expunge) {
    mailproto_maildir_remove(f, m);
    return 0;
  }
  /* The file was renamed to carry the new flags; an odd name (letters of
   * other programs) is re-derived the same way its renamer derived it. */
  if (m->state & MD_ODD) {
    char name[MD_FILE_MAX + 1];
    int odd;
    if (mailproto_maildir_name_for(f, m, 0, (uint8_t)flags, kw, name, &odd) ==
        0) {
      int rc = mailproto_maildir_rename_msg(s, f, m, name, 0, odd);
      if (rc != 0)
        return rc;
    }
  } else if (m->state & MD_IN_NEW) {
    m->state &= (uint8_t)~MD_IN_NEW;
    f->in_new--;
  }
  mailproto_maildir_set_msg_flags(f, m, (uint8_t)flags, kw);
  m->modseq = modseq;
  return 0;
}

static int record(mailproto_maildir *s, md_folder *f, const char *line,
                  size_t len) {
  if (len < 2 || line[1] != ' ')
    return MAILPROTO_ERR_SYNTAX;
  cursor c = {line + 2, line + len, 0};
  if (line[0] != 'A')
    f->ix_base = 0;
  switch (line[0]) {
  case 'A':
    return record_add(s, f, &c);
  case 'F':
    return record_change(s, f, &c, 0);
  case 'X':
    return record_change(s, f, &c, 1);
  case 'R': {
    uint64_t r = number(&c, 10, (uint64_t)MD_UID_MAX + 1);
    if (!done(&c) || r > f->uidnext)
      return MAILPROTO_ERR_SYNTAX;
    f->recent_from = (uint32_t)r;
    return 0;
  }
  default:
    return MAILPROTO_ERR_SYNTAX;
  }
}

int mailproto_maildir_index_read(mailproto_maildir *s, md_folder *f) {
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/%s", f->dir, MD_INDEX) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int fd = mailproto_maildir_open(s, path, O_RDONLY, 0);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return MAILPROTO_ERR_IO;
  }
  uint64_t size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
  int full = !f->loaded || st.st_dev != f->ix_dev || st.st_ino != f->ix_ino ||
             size < f->ix_len;
  if (!full && size == f->ix_len) {
    close(fd);
    return 0;
  }
  if (full) {
    mailproto_maildir_folder_reset(f);
    f->ix_dev = st.st_dev;
    f->ix_ino = st.st_ino;
  }
  char *buf = mailproto_mem_malloc(&s->alloc, CHUNK);
  if (!buf) {
    close(fd);
    return MAILPROTO_ERR_NOMEM;
  }
  int rc = 0;
  uint64_t off = f->ix_len;
  size_t have = 0;
  for (;;) {
    ssize_t n = pread(fd, buf + have, CHUNK - have, (off_t)(off + have));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = MAILPROTO_ERR_IO;
      break;
    }
    if (n == 0)
      break; /* what is left is a line being written (or torn) */
    have += (size_t)n;
    size_t used = 0;
    for (;;) {
      char *nl = memchr(buf + used, '\n', have - used);
      if (!nl)
        break;
      size_t len = (size_t)(nl - (buf + used));
      if (len > LINE_MAX_LEN) {
        rc = MAILPROTO_ERR_SYNTAX;
        break;
      }
      if (f->ix_len == 0 && !f->loaded) {
        rc = header(f, buf + used, len);
        if (rc == 0)
          f->loaded = f->ix_base = 1;
      } else {
        rc = record(s, f, buf + used, len);
        f->ix_records++;
      }
      if (rc != 0)
        break;
      used += len + 1;
      f->ix_len += len + 1;
    }
    if (rc != 0)
      break;
    if (have - used > LINE_MAX_LEN) {
      rc = MAILPROTO_ERR_SYNTAX;
      break;
    }
    memmove(buf, buf + used, have - used);
    off += used;
    have -= used;
  }
  mailproto_mem_free(&s->alloc, buf);
  close(fd);
  mailproto_maildir_compact(s, f);
  if (rc == 0 && !f->loaded)
    rc = MAILPROTO_ERR_SYNTAX; /* no complete header line */
  return rc;
}

/* ---- writing ---- */

/* Writes t to fd when it holds at least `min` bytes. */
static int flush(mailproto_maildir *s, int fd, md_text *t, size_t min) {
  if (t->len < min || t->len == 0)
    return 0;
  int rc = mailproto_maildir_write_all(s, fd, t->p, t->len);
  t->len = 0;
  return rc == 0 ? 0 : mailproto_maildir_errno(errno);
}

int mailproto_maildir_index_rewrite(mailproto_maildir *s, md_folder *f,
                                    uint32_t uidvalidity) {
  char tmp[MD_PATH_MAX], dst[MD_PATH_MAX], unique[128];
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (mailproto_maildir_path(tmp, "%s/%s.%s.tmp", f->dir, MD_INDEX, unique) !=
          0 ||
      mailproto_maildir_path(dst, "%s/%s", f->dir, MD_INDEX) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int fd = mailproto_maildir_open(s, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  /* Streamed in chunks: a large folder's index is never held whole. */
  md_text t = {NULL, 0, 0};
  int rc = mailproto_maildir_text_add(
      s, &t, MAGIC "%lu %lu %llu %lu %u\n", (unsigned long)uidvalidity,
      (unsigned long)f->uidnext, (unsigned long long)f->modseq,
      (unsigned long)f->recent_from, f->special_use);
  uint64_t total = 0;
  for (size_t i = 0; rc == 0 && i < f->count; i++) {
    if (f->msgs[i].state & MD_GONE)
      continue;
    rc = mailproto_maildir_rec_add(s, &t, &f->msgs[i],
                                   f->pool + f->msgs[i].name);
    if (rc == 0 && t.len >= CHUNK) {
      total += t.len;
      rc = flush(s, fd, &t, CHUNK);
    }
  }
  total += t.len;
  if (rc == 0)
    rc = flush(s, fd, &t, 0);
  mailproto_maildir_text_free(s, &t);
  if (rc == 0 && mailproto_maildir_sync_fd(s, fd) != 0)
    rc = mailproto_maildir_errno(errno);
  struct stat st;
  if (rc == 0 && fstat(fd, &st) != 0)
    rc = MAILPROTO_ERR_IO;
  if (close(fd) != 0 && rc == 0)
    rc = MAILPROTO_ERR_IO;
  if (rc == 0 && mailproto_maildir_rename(s, tmp, dst) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  f->uidvalidity = uidvalidity;
  f->ix_dev = st.st_dev;
  f->ix_ino = st.st_ino;
  f->ix_len = total;
  f->ix_records = f->count;
  f->ix_base = 0; /* whatever is appended now is new */
  f->loaded = 1;
  if (mailproto_maildir_sync_dir(s, f->dir) != 0)
    return mailproto_maildir_errno(errno);
  return 0;
}

int mailproto_maildir_index_append(mailproto_maildir *s, md_folder *f,
                                   const char *data, size_t len, int durable) {
  if (len == 0)
    return 0;
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/%s", f->dir, MD_INDEX) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int fd = mailproto_maildir_open(s, path, O_WRONLY, 0);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0)
    rc = MAILPROTO_ERR_IO;
  else if (st.st_dev != f->ix_dev || st.st_ino != f->ix_ino)
    rc = MAILPROTO_ERR_TEMPORARY; /* replaced since it was read */
  /* A line torn by a crash ends the file: cut it off first. */
  else if ((uint64_t)st.st_size > f->ix_len &&
           mailproto_maildir_truncate(s, fd, f->ix_len) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc == 0 &&
      (mailproto_maildir_pwrite_all(s, fd, data, len, f->ix_len) != 0 ||
       (durable && mailproto_maildir_sync_fd(s, fd) != 0))) {
    rc = mailproto_maildir_errno(errno);
    /* Take back what may have been written, so no reader keeps a UID
     * this append did not give out. */
    (void)ftruncate(fd, (off_t)f->ix_len);
  }
  close(fd);
  if (rc != 0)
    return rc;
  f->ix_len += len;
  for (size_t i = 0; i < len; i++)
    f->ix_records += data[i] == '\n';
  return 0;
}

void mailproto_maildir_index_tidy(mailproto_maildir *s, md_folder *f) {
  size_t limit = f->count > COMPACT_MIN / 2 ? 2 * f->count : COMPACT_MIN;
  /* A failed compaction leaves the old file, which is still right. */
  if (f->loaded && !f->gone && f->ix_records > limit)
    (void)mailproto_maildir_index_rewrite(s, f, f->uidvalidity);
}

int mailproto_maildir_index_create(mailproto_maildir *s, const char *dir,
                                   uint32_t uidvalidity, unsigned special_use) {
  char line[128];
  int n = snprintf(line, sizeof line, MAGIC "%lu 1 1 1 %u\n",
                   (unsigned long)uidvalidity, special_use);
  return mailproto_maildir_replace_file(s, dir, MD_INDEX, line, (size_t)n);
}

unsigned mailproto_maildir_index_special_use(mailproto_maildir *s,
                                             const char *dir) {
  char path[MD_PATH_MAX], line[LINE_MAX_LEN];
  if (mailproto_maildir_path(path, "%s/%s", dir, MD_INDEX) != 0)
    return 0;
  int fd = mailproto_maildir_open(s, path, O_RDONLY, 0);
  if (fd < 0)
    return 0;
  ssize_t n = pread(fd, line, sizeof line, 0);
  close(fd);
  if (n <= 0)
    return 0;
  char *nl = memchr(line, '\n', (size_t)n);
  md_folder tmp;
  memset(&tmp, 0, sizeof tmp);
  if (!nl || header(&tmp, line, (size_t)(nl - line)) != 0)
    return 0;
  return tmp.special_use;
}
