/*
 * Subscriptions: the user directory's "subscriptions" file in Dovecot's
 * version 2 format ("V\t2\n\n", then one name per line, levels separated
 * by a tab, each level in modified UTF-7 as Dovecot stores names), so
 * Dovecot and this store share them. Version 1 files (one name per line,
 * levels separated by '.') are read too. Names that do not decode to a
 * valid mailbox name are skipped. The file is replaced atomically under
 * the user lock.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#include <string.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"
#include "store/store_util.h"

#define V2_HEADER "V\t2\n\n"
/* A subscriptions file larger than this is not read (memory bound). */
#define SUBS_FILE_MAX ((size_t)4 << 20)

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void mailproto_maildir_subs_free(mailproto_maildir *s, md_subs *subs) {
  for (size_t i = 0; i < subs->count; i++)
    mailproto_mem_free(&s->alloc, subs->names[i]);
  mailproto_mem_free(&s->alloc, subs->names);
  subs->names = NULL;
  subs->count = 0;
}

int mailproto_maildir_subs_has(const md_subs *subs, const char *name) {
  size_t lo = 0, hi = subs->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(subs->names[mid], name);
    if (c == 0)
      return 1;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return 0;
}

/* One line to a canonical name in `out`; -1 if it is none. */
static int decode_line(const char *line, size_t len, char sep, char *out) {
  char name[MAILPROTO_MAILBOX_NAME_MAX + 1];
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t n = 0;
    while (i + n < len && line[i + n] != sep)
      n++;
    if (o > 0) {
      if (o >= MAILPROTO_MAILBOX_NAME_MAX)
        return -1;
      name[o++] = '/';
    }
    long m = mailproto_mutf7_to_utf8(line + i, n, name + o, sizeof name - o);
    if (m < 0)
      return -1;
    o += (size_t)m;
    i += n + 1;
    if (i == len && line[len - 1] == sep)
      return -1; /* an empty last level */
  }
  name[o] = '\0';
  return mailproto_store_canon_name(name, out) == 0 ? 0 : -1;
}

int mailproto_maildir_subs_read(mailproto_maildir *s, const md_user *u,
                                md_subs *out) {
  out->names = NULL;
  out->count = 0;
  char path[MD_PATH_MAX], *text = NULL;
  size_t len = 0, cap = 0;
  if (mailproto_maildir_path(path, "%s/%s", u->dir, MD_SUBSCRIPTIONS) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int rc = mailproto_maildir_read_file(s, path, SUBS_FILE_MAX, &text, &len);
  if (rc == MAILPROTO_ERR_NOT_FOUND)
    return 0;
  if (rc != 0)
    return rc;
  size_t hl = sizeof V2_HEADER - 1;
  int v2 = len >= hl && memcmp(text, V2_HEADER, hl) == 0;
  char sep = v2 ? '\t' : '.';
  for (size_t pos = v2 ? hl : 0; pos < len && rc == 0;) {
    const char *nl = memchr(text + pos, '\n', len - pos);
    size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
    char name[MAILPROTO_MAILBOX_NAME_MAX + 1];
    if (n > 0 && decode_line(text + pos, n, sep, name) == 0) {
      rc = mailproto_store_grow(&s->alloc, (void **)&out->names, &cap,
                                out->count + 1, sizeof *out->names);
      char *copy = rc == 0 ? mailproto_mem_strdup(&s->alloc, name) : NULL;
      if (!copy)
        rc = MAILPROTO_ERR_NOMEM;
      else
        out->names[out->count++] = copy;
    }
    pos += n + 1;
  }
  mailproto_mem_free(&s->alloc, text);
  if (rc != 0) {
    mailproto_maildir_subs_free(s, out);
    return rc;
  }
  if (out->count)
    qsort(out->names, out->count, sizeof *out->names, cmp_name);
  size_t k = 0;
  for (size_t i = 0; i < out->count; i++) {
    if (k > 0 && strcmp(out->names[k - 1], out->names[i]) == 0)
      mailproto_mem_free(&s->alloc, out->names[i]);
    else
      out->names[k++] = out->names[i];
  }
  out->count = k;
  return 0;
}

/* The file's text for `subs` without `skip` and with `add` (either NULL). */
static int encode(mailproto_maildir *s, const md_subs *subs, const char *skip,
                  const char *add, md_text *t) {
  int rc = mailproto_maildir_text_add(s, t, "%s", V2_HEADER);
  for (size_t i = 0; rc == 0 && i <= subs->count; i++) {
    const char *name = i < subs->count ? subs->names[i] : add;
    if (!name || (skip && strcmp(name, skip) == 0))
      continue;
    for (const char *p = name; rc == 0 && *p;) {
      size_t n = strcspn(p, "/");
      char level[MAILPROTO_MAILBOX_NAME_MAX * 2 + 8];
      long m = mailproto_utf8_to_mutf7(p, n, level, sizeof level);
      if (m < 0)
        return MAILPROTO_ERR_BAD_NAME;
      rc = mailproto_maildir_text_add(s, t, "%s%s", p == name ? "" : "\t",
                                      level);
      p += n;
      if (*p == '/')
        p++;
    }
    if (rc == 0)
      rc = mailproto_maildir_text_add(s, t, "\n");
  }
  return rc;
}

int mailproto_maildir_hook_subscribe(void *ctx, mailproto_op *op, void *account,
                                     const char *name, int subscribed) {
  mailproto_maildir *s = ctx;
  md_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !name)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int rc = mailproto_maildir_lock(s, &u->lock, u->dir, MD_USER_LOCK);
  if (rc != 0)
    return rc;
  md_subs subs;
  md_text t = {NULL, 0, 0};
  rc = mailproto_maildir_subs_read(s, u, &subs);
  if (rc == 0) {
    int has = mailproto_maildir_subs_has(&subs, canon);
    if (!subscribed && !has)
      rc = MAILPROTO_ERR_NOT_FOUND;
    else if (subscribed != has) {
      rc = encode(s, &subs, subscribed ? NULL : canon,
                  subscribed ? canon : NULL, &t);
      if (rc == 0)
        rc = mailproto_maildir_replace_file(s, u->dir, MD_SUBSCRIPTIONS, t.p,
                                            t.len);
    }
    mailproto_maildir_subs_free(s, &subs);
  }
  mailproto_maildir_text_free(s, &t);
  mailproto_maildir_unlock(&u->lock);
  return rc;
}
