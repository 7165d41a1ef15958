/*
 * Flags in Maildir file names and the keyword table.
 *
 * maildir(5): "<base>:2,<letters>", letters in ASCII order. System flags
 * are D (\Draft), F (\Flagged), R (\Answered), S (\Seen), T (\Deleted); P
 * (passed) has no IMAP flag and is kept as it is. Keywords 0..25 are the
 * letters a..z, named by the folder's dovecot-keywords file ("<index>
 * <name>" per line, Dovecot's format, so Dovecot and this store read each
 * other's keywords); keywords 26..63 have no letter, live only in the
 * index, and are named in mailproto-keywords (same format), a file Dovecot
 * does not rewrite. Letters of unknown keywords and a ",<extension>" after
 * the letters (a Dovecot extension) are left as other programs wrote them.
 *
 * The table only grows: an index, once named, keeps its name as long as
 * the folder lives, so a letter in a file name never changes meaning.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "maildir/maildir_internal.h"
#include "store/store_util.h"

/* Most bytes of a keyword file: 64 lines of an index and a keyword. */
#define KW_FILE_MAX (64 * (MAILPROTO_STORE_KEYWORD_MAX + 8))

static const struct {
  char letter;
  uint8_t flag;
} sys_letters[] = {{'D', MAILPROTO_FLAG_DRAFT},
                   {'F', MAILPROTO_FLAG_FLAGGED},
                   {'R', MAILPROTO_FLAG_ANSWERED},
                   {'S', MAILPROTO_FLAG_SEEN},
                   {'T', MAILPROTO_FLAG_DELETED}};

static uint8_t flag_of(char c) {
  for (size_t i = 0; i < sizeof sys_letters / sizeof *sys_letters; i++)
    if (sys_letters[i].letter == c)
      return sys_letters[i].flag;
  return 0;
}

int mailproto_maildir_info_parse(const char *name, size_t len, md_info *out) {
  memset(out, 0, sizeof *out);
  if (len == 0 || len > MD_FILE_MAX || name[0] == '.')
    return -1;
  /* Index records are space-separated lines: names with spaces or control
   * characters cannot be recorded, so such files are not messages here. */
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c <= 0x20 || c == 0x7f || c == '/')
      return -1;
  }
  const char *colon = memchr(name, ':', len);
  out->base_len = colon ? (size_t)(colon - name) : len;
  if (out->base_len == 0)
    return -1;
  if (!colon || len - out->base_len < 3 || colon[1] != '2' || colon[2] != ',')
    return 0;
  out->has_info = 1;
  for (const char *p = colon + 3; p < name + len && *p != ','; p++) {
    if (*p >= 'a' && *p <= 'z')
      out->letters |= 1u << (*p - 'a');
    else
      out->flags |= flag_of(*p);
  }
  return 0;
}

uint64_t mailproto_maildir_letters_kw(const md_folder *f, uint32_t letters) {
  uint64_t kw = 0;
  for (unsigned i = 0; i < MD_LETTERS; i++)
    if ((letters >> i & 1u) && f->kw[i])
      kw |= (uint64_t)1 << i;
  return kw;
}

void mailproto_maildir_plain_name(const char *base, size_t base_len, int in_new,
                                  uint8_t flags, uint64_t kw, char *out) {
  char letters[40];
  size_t n = 0;
  for (char c = 'A'; c <= 'Z' && !in_new; c++)
    if (flags & flag_of(c))
      letters[n++] = c;
  for (unsigned i = 0; i < MD_LETTERS && !in_new; i++)
    if (kw >> i & 1u)
      letters[n++] = (char)('a' + i);
  if (base_len > MD_FILE_MAX)
    base_len = MD_FILE_MAX;
  memcpy(out, base, base_len);
  size_t o = base_len;
  /* A base too long for its info (only a damaged index can say so) gets
   * none: the file is then looked up by a scan. */
  if (!in_new && base_len + 3 + n <= MD_FILE_MAX) {
    memcpy(out + o, ":2,", 3);
    memcpy(out + o + 3, letters, n);
    o += 3 + n;
  }
  out[o] = '\0';
}

void mailproto_maildir_name_of(const md_folder *f, const md_msg *m, char *out) {
  const char *pooled = f->pool + m->name;
  if (m->state & MD_ODD) {
    memcpy(out, pooled, m->name_len);
    out[m->name_len] = '\0';
    return;
  }
  mailproto_maildir_plain_name(pooled, m->base_len, (m->state & MD_IN_NEW) != 0,
                               m->flags, m->kw, out);
}

int mailproto_maildir_name_for(const md_folder *f, const md_msg *m, int in_new,
                               uint8_t flags, uint64_t kw, char *out,
                               int *odd) {
  char old[MD_FILE_MAX + 1];
  mailproto_maildir_name_of(f, m, old);
  size_t len = strlen(old);
  if (in_new) {
    memcpy(out, old, len + 1);
    *odd = (m->state & MD_ODD) != 0;
    return 0;
  }
  md_info info;
  if (mailproto_maildir_info_parse(old, len, &info) != 0)
    return -1;
  /* What other programs put there and this store does not manage. */
  uint32_t keep_upper = 0, keep_lower = 0;
  const char *ext = "";
  if (info.has_info) {
    for (const char *p = old + info.base_len + 3; *p; p++) {
      if (*p == ',') {
        ext = p;
        break;
      }
      if (*p >= 'A' && *p <= 'Z' && !flag_of(*p))
        keep_upper |= 1u << (*p - 'A');
      else if (*p >= 'a' && *p <= 'z' && !f->kw[*p - 'a'])
        keep_lower |= 1u << (*p - 'a');
    }
  }
  char letters[64];
  size_t n = 0;
  for (char c = 'A'; c <= 'Z'; c++)
    if ((flags & flag_of(c)) || (keep_upper >> (c - 'A') & 1u))
      letters[n++] = c;
  for (unsigned i = 0; i < MD_LETTERS; i++)
    if ((kw >> i & 1u) || (keep_lower >> i & 1u))
      letters[n++] = (char)('a' + i);
  size_t el = strlen(ext);
  if (info.base_len + 3 + n + el > MD_FILE_MAX)
    return -1;
  memcpy(out, old, info.base_len);
  memcpy(out + info.base_len, ":2,", 3);
  memcpy(out + info.base_len + 3, letters, n);
  memcpy(out + info.base_len + 3 + n, ext, el + 1);
  *odd = keep_upper || keep_lower || el > 0;
  return 0;
}

int mailproto_maildir_msg_path(const md_folder *f, const md_msg *m, char *out) {
  char name[MD_FILE_MAX + 1];
  mailproto_maildir_name_of(f, m, name);
  return mailproto_maildir_path(out, "%s/%s/%s", f->dir,
                                (m->state & MD_IN_NEW) ? "new" : "cur", name);
}

int mailproto_maildir_keyword_find(const md_folder *f, const char *kw) {
  for (unsigned i = 0; i < 64; i++)
    if (f->kw[i] && mailproto_store_ascii_casecmp(f->kw[i], kw) == 0)
      return (int)i;
  return -1;
}

/* Adds the entries of keyword file `which` (0: indices 0..25, 1: 26..63),
 * if `force` or it changed since it was last read. */
static int load_file(mailproto_maildir *s, md_folder *f, int which, int force) {
  static const char *const files[2] = {MD_KEYWORDS, MD_KEYWORDS_HIGH};
  unsigned lo = which ? MD_LETTERS : 0, hi = which ? 64 : MD_LETTERS;
  char path[MD_PATH_MAX], *text = NULL;
  size_t len = 0;
  struct stat st;
  if (mailproto_maildir_path(path, "%s/%s", f->dir, files[which]) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (stat(path, &st) != 0)
    return errno == ENOENT ? 0 : mailproto_maildir_errno(errno);
  /* Keyword files are replaced by rename: a new file shows in mtime or
   * size (a rewrite within one timestamp tick adds a line). */
  if (!force && st.st_mtim.tv_sec == f->kw_mtime[which].tv_sec &&
      st.st_mtim.tv_nsec == f->kw_mtime[which].tv_nsec &&
      st.st_size == f->kw_size[which])
    return 0;
  f->kw_mtime[which] = st.st_mtim;
  f->kw_size[which] = st.st_size;
  int rc = mailproto_maildir_read_file(s, path, KW_FILE_MAX, &text, &len);
  if (rc == MAILPROTO_ERR_NOT_FOUND)
    return 0;
  if (rc == MAILPROTO_ERR_TOO_LONG)
    return 0; /* not a keyword file this store wrote: no names from it */
  if (rc != 0)
    return rc;
  /* Lines that do not parse are skipped, as Dovecot does: the file is
   * another program's as much as ours. */
  for (char *line = text; line < text + len;) {
    char *nl = memchr(line, '\n', (size_t)(text + len - line));
    char *end = nl ? nl : text + len;
    *end = '\0';
    char *sp = strchr(line, ' ');
    char *stop = NULL;
    unsigned long idx = sp ? strtoul(line, &stop, 10) : 0;
    if (sp && stop == sp && sp > line && line[0] >= '0' && line[0] <= '9' &&
        idx >= lo && idx < hi && mailproto_store_keyword_valid(sp + 1) &&
        !f->kw[idx] && mailproto_maildir_keyword_find(f, sp + 1) < 0) {
      f->kw[idx] = mailproto_mem_strdup(&s->alloc, sp + 1);
      if (!f->kw[idx]) {
        rc = MAILPROTO_ERR_NOMEM;
        break;
      }
      f->kw_count++;
    }
    line = end + 1;
  }
  mailproto_mem_free(&s->alloc, text);
  return rc;
}

int mailproto_maildir_keywords_load(mailproto_maildir *s, md_folder *f) {
  int rc = load_file(s, f, 0, 1);
  if (rc == 0)
    rc = load_file(s, f, 1, 1);
  return rc;
}

int mailproto_maildir_keywords_refresh(mailproto_maildir *s, md_folder *f) {
  int rc = load_file(s, f, 0, 0);
  if (rc == 0)
    rc = load_file(s, f, 1, 0);
  return rc;
}

int mailproto_maildir_kw_plan_one(const md_folder *f, md_kw_plan *plan,
                                  const char *name, unsigned *index) {
  int k = mailproto_maildir_keyword_find(f, name);
  if (k >= 0) {
    *index = (unsigned)k;
    return 0;
  }
  uint64_t taken = 0;
  for (unsigned i = 0; i < plan->count; i++) {
    if (mailproto_store_ascii_casecmp(plan->names[i], name) == 0) {
      *index = plan->index[i];
      return 0;
    }
    taken |= (uint64_t)1 << plan->index[i];
  }
  /* The lowest free index: letters (and Dovecot) get the first 26. */
  for (unsigned i = 0; i < 64; i++) {
    if (f->kw[i] || (taken >> i & 1u))
      continue;
    plan->names[plan->count] = name;
    plan->index[plan->count++] = i;
    *index = i;
    return 0;
  }
  return MAILPROTO_ERR_LIMIT;
}

int mailproto_maildir_kw_plan(const md_folder *f, md_kw_plan *plan,
                              const char *const *keywords, size_t count,
                              int add_new, int keep, uint64_t *mask) {
  if (!keep)
    plan->count = 0;
  *mask = 0;
  if (count && !keywords)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  for (size_t i = 0; i < count; i++) {
    if (!keywords[i])
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    if (!mailproto_store_keyword_valid(keywords[i]))
      return MAILPROTO_ERR_BAD_NAME;
  }
  for (size_t i = 0; i < count; i++) {
    unsigned index;
    if (!add_new && mailproto_maildir_keyword_find(f, keywords[i]) < 0) {
      /* Removing a keyword nobody has: nothing to do, unless the same
       * call plans it (it then has an index). */
      int planned = 0;
      for (unsigned k = 0; k < plan->count && !planned; k++)
        if (mailproto_store_ascii_casecmp(plan->names[k], keywords[i]) == 0) {
          *mask |= (uint64_t)1 << plan->index[k];
          planned = 1;
        }
      continue;
    }
    int rc = mailproto_maildir_kw_plan_one(f, plan, keywords[i], &index);
    if (rc != 0)
      return rc;
    *mask |= (uint64_t)1 << index;
  }
  return 0;
}

/* The text of the keyword file for indices [lo, hi) of table + plan. */
static int file_text(mailproto_maildir *s, const md_folder *f,
                     const md_kw_plan *plan, unsigned lo, unsigned hi,
                     md_text *t) {
  for (unsigned i = lo; i < hi; i++) {
    const char *name = f->kw[i];
    for (unsigned k = 0; !name && k < plan->count; k++)
      if (plan->index[k] == i)
        name = plan->names[k];
    if (name && mailproto_maildir_text_add(s, t, "%u %s\n", i, name) != 0)
      return MAILPROTO_ERR_NOMEM;
  }
  return 0;
}

int mailproto_maildir_keywords_save(mailproto_maildir *s, const md_folder *f,
                                    const char *dir) {
  md_kw_plan none;
  none.count = 0;
  md_text t = {NULL, 0, 0};
  int rc = file_text(s, f, &none, 0, MD_LETTERS, &t);
  if (rc == 0 && t.len)
    rc = mailproto_maildir_replace_file(s, dir, MD_KEYWORDS, t.p, t.len);
  t.len = 0;
  if (rc == 0)
    rc = file_text(s, f, &none, MD_LETTERS, 64, &t);
  if (rc == 0 && t.len)
    rc = mailproto_maildir_replace_file(s, dir, MD_KEYWORDS_HIGH, t.p, t.len);
  mailproto_maildir_text_free(s, &t);
  return rc;
}

int mailproto_maildir_kw_commit(mailproto_maildir *s, md_folder *f,
                                md_kw_plan *plan) {
  if (plan->count == 0)
    return 0;
  char *copies[64] = {NULL};
  int low = 0, high = 0, rc = 0;
  for (unsigned i = 0; i < plan->count; i++) {
    copies[i] = mailproto_mem_strdup(&s->alloc, plan->names[i]);
    if (!copies[i])
      rc = MAILPROTO_ERR_NOMEM;
    if (plan->index[i] < MD_LETTERS)
      low = 1;
    else
      high = 1;
  }
  md_text t = {NULL, 0, 0};
  if (rc == 0 && low && (rc = file_text(s, f, plan, 0, MD_LETTERS, &t)) == 0)
    rc = mailproto_maildir_replace_file(s, f->dir, MD_KEYWORDS, t.p, t.len);
  t.len = 0;
  if (rc == 0 && high && (rc = file_text(s, f, plan, MD_LETTERS, 64, &t)) == 0)
    rc =
        mailproto_maildir_replace_file(s, f->dir, MD_KEYWORDS_HIGH, t.p, t.len);
  mailproto_maildir_text_free(s, &t);
  if (rc != 0) {
    for (unsigned i = 0; i < plan->count; i++)
      mailproto_mem_free(&s->alloc, copies[i]);
    return rc;
  }
  for (unsigned i = 0; i < plan->count; i++) {
    f->kw[plan->index[i]] = copies[i];
    f->kw_count++;
  }
  plan->count = 0;
  return 0;
}
