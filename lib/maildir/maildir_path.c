/*
 * Mailbox names <-> Maildir++ directory names.
 *
 * "A/B" lives in ROOT/<user>/.A.B (Maildir++, as Dovecot and Courier lay it
 * out); INBOX is the user's directory itself. Each level is written in IMAP
 * modified UTF-7 (RFC 3501 5.1.3), as Dovecot stores names, and then '%'
 * and '.' inside a level become "%25" and "%2E" (the '.' separates levels),
 * as does a '~' that would start the directory name (".~" marks hashed
 * names, below). The mapping is one-to-one: a directory name counts as a
 * folder only if decoding it and encoding the result gives it back, so no
 * two directories claim one name (".inbox.x" is not "INBOX/x").
 *
 * Nothing can leave the user's directory: names with empty, "." or ".."
 * levels or control characters never get this far (the store.h name
 * rules), the result is always a single path component starting with '.',
 * and modified UTF-7 never contains '/'.
 *
 * A name whose directory name would be longer than a file name may be
 * (MD_FILE_MAX) gets ".~<64-bit FNV-1a hash in hex>" instead, with its real
 * name in the file mailproto-name inside; a hash collision takes the next
 * of seven more slots ".~<hash>-<n>".
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "maildir/maildir_internal.h"
#include "store/store_util.h"

/* Slots of one hash: ".~<hash>" and ".~<hash>-1" .. "-7". */
#define HASH_PROBES 8
/* Longest modified UTF-7 form of one level: 4 UTF-8 bytes (2 UTF-16 units)
 * become at most 6 base64 characters, plus the shifts. */
#define LEVEL_MUTF7_MAX (MAILPROTO_MAILBOX_NAME_MAX * 2 + 8)

int mailproto_maildir_user_name_ok(const char *name) {
  size_t n = name ? strlen(name) : 0;
  if (n == 0 || n > MD_USER_MAX || name[0] == '.')
    return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)name[i];
    if (c < 0x20 || c == 0x7f || c == '/' || c == '@')
      return 0;
  }
  return 1;
}

static uint64_t fnv1a(const char *s) {
  uint64_t h = 0xcbf29ce484222325u;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 0x100000001b3u;
  }
  return h;
}

static void hashed_name(const char *canon, unsigned probe, char *out) {
  unsigned long long h = (unsigned long long)fnv1a(canon);
  if (probe == 0)
    snprintf(out, MD_FILE_MAX + 1, ".~%016llx", h);
  else
    snprintf(out, MD_FILE_MAX + 1, ".~%016llx-%u", h, probe);
}

int mailproto_maildir_dir_name(const char *canon, unsigned probe, char *out,
                               int *hashed) {
  *hashed = 0;
  out[0] = '\0';
  if (strcmp(canon, "INBOX") == 0)
    return 0;
  size_t o = 0;
  int fits = 1;
  const char *p = canon;
  while (*p && fits) {
    size_t n = strcspn(p, "/");
    char level[LEVEL_MUTF7_MAX];
    long m = mailproto_utf8_to_mutf7(p, n, level, sizeof level);
    if (m < 0)
      return MAILPROTO_ERR_BAD_NAME;
    if (o + 1 > MD_FILE_MAX) {
      fits = 0;
      break;
    }
    out[o++] = '.';
    for (long i = 0; i < m && fits; i++) {
      char c = level[i];
      const char *esc = NULL;
      if (c == '%')
        esc = "%25";
      else if (c == '.')
        esc = "%2E";
      else if (c == '~' && o == 1)
        esc = "%7E";
      size_t need = esc ? 3 : 1;
      if (o + need > MD_FILE_MAX) {
        fits = 0;
        break;
      }
      if (esc) {
        memcpy(out + o, esc, 3);
        o += 3;
      } else {
        out[o++] = c;
      }
    }
    p += n;
    if (*p == '/')
      p++;
  }
  if (!fits) {
    hashed_name(canon, probe, out);
    *hashed = 1;
    return 0;
  }
  out[o] = '\0';
  return 0;
}

/* 1 if `d` is ".~" + 16 lower-case hex digits, optionally "-1".."-7". */
static int hashed_form(const char *d) {
  if (d[0] != '.' || d[1] != '~')
    return 0;
  for (int i = 2; i < 18; i++)
    if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
      return 0;
  if (d[18] == '\0')
    return 1;
  return d[18] == '-' && d[19] >= '1' && d[19] < '0' + HASH_PROBES &&
         d[20] == '\0';
}

int mailproto_maildir_dir_decode(const char *dirname, char *out) {
  out[0] = '\0';
  size_t dl = strlen(dirname);
  if (dl < 2 || dirname[0] != '.' || dl > MD_FILE_MAX ||
      strcmp(dirname, "..") == 0)
    return -1;
  if (dirname[1] == '~')
    return hashed_form(dirname) ? 1 : -1;
  size_t o = 0;
  const char *p = dirname + 1;
  for (int first = 1; *p; first = 0) {
    size_t n = strcspn(p, ".");
    if (n == 0)
      return -1;
    char level[MD_FILE_MAX + 1];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
      if (p[i] != '%') {
        level[k++] = p[i];
        continue;
      }
      if (i + 3 > n)
        return -1;
      if (memcmp(p + i, "%25", 3) == 0)
        level[k++] = '%';
      else if (memcmp(p + i, "%2E", 3) == 0)
        level[k++] = '.';
      else if (memcmp(p + i, "%7E", 3) == 0 && first && i == 0)
        level[k++] = '~';
      else
        return -1;
      i += 2;
    }
    if (o > 0) {
      if (o + 1 > MAILPROTO_MAILBOX_NAME_MAX)
        return -1;
      out[o++] = '/';
    }
    long m = mailproto_mutf7_to_utf8(level, k, out + o,
                                     MAILPROTO_MAILBOX_NAME_MAX + 1 - o);
    if (m < 0)
      return -1;
    o += (size_t)m;
    p += n;
    if (*p == '.') {
      p++;
      if (*p == '\0')
        return -1; /* a trailing '.' is an empty level */
    }
  }
  out[o] = '\0';
  /* One directory per name: the canonical spelling only, and never the
   * inbox, which is the user's directory itself. */
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1], again[MD_FILE_MAX + 1];
  int hashed;
  if (mailproto_store_canon_name(out, canon) != 0 || strcmp(canon, out) != 0 ||
      strcmp(out, "INBOX") == 0 ||
      mailproto_maildir_dir_name(out, 0, again, &hashed) != 0 || hashed ||
      strcmp(again, dirname) != 0) {
    out[0] = '\0';
    return -1;
  }
  return 0;
}

int mailproto_maildir_hashed_for(const char *dirname, const char *canon) {
  char base[MD_FILE_MAX + 1];
  int hashed;
  if (!hashed_form(dirname) ||
      mailproto_maildir_dir_name(canon, 0, base, &hashed) != 0 || !hashed)
    return 0;
  return strncmp(dirname, base, 18) == 0;
}

/* 0 missing, 1 placeholder, 2 mailbox, or a negative code. */
static int kind_of(const char *dir) {
  int d = mailproto_maildir_is_dir(dir);
  if (d <= 0)
    return d;
  char cur[MD_PATH_MAX];
  if (mailproto_maildir_path(cur, "%s/cur", dir) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  d = mailproto_maildir_is_dir(cur);
  return d < 0 ? d : 1 + d;
}

/* 1 if hashed directory `dir` holds mailbox `canon` (its name file says
 * so), else 0. */
static int holds(mailproto_maildir *s, const char *dir, const char *canon) {
  char path[MD_PATH_MAX], *text = NULL;
  size_t len = 0;
  if (mailproto_maildir_path(path, "%s/%s", dir, MD_NAME_FILE) != 0 ||
      mailproto_maildir_read_file(s, path, MAILPROTO_MAILBOX_NAME_MAX + 1,
                                  &text, &len) != 0)
    return 0;
  if (len > 0 && text[len - 1] == '\n')
    text[--len] = '\0';
  int same = strlen(text) == len && strcmp(text, canon) == 0;
  mailproto_mem_free(&s->alloc, text);
  return same;
}

int mailproto_maildir_locate(mailproto_maildir *s, const md_user *u,
                             const char *canon, char *dir, int *kind) {
  char dn[MD_FILE_MAX + 1];
  int hashed, k;
  *kind = 0;
  int rc = mailproto_maildir_dir_name(canon, 0, dn, &hashed);
  if (rc != 0)
    return rc;
  if (!hashed) {
    if (mailproto_maildir_path(dir, "%s%s%s", u->dir, dn[0] ? "/" : "", dn) !=
        0)
      return MAILPROTO_ERR_BAD_NAME;
    k = kind_of(dir);
    if (k < 0)
      return k;
    *kind = k;
    return 0;
  }
  char free_slot[MD_PATH_MAX] = "";
  for (unsigned probe = 0; probe < HASH_PROBES; probe++) {
    char cand[MD_PATH_MAX];
    hashed_name(canon, probe, dn);
    if (mailproto_maildir_path(cand, "%s/%s", u->dir, dn) != 0)
      return MAILPROTO_ERR_BAD_NAME;
    k = kind_of(cand);
    if (k < 0)
      return k;
    if (k == 0) {
      if (!free_slot[0])
        memcpy(free_slot, cand, strlen(cand) + 1);
      continue;
    }
    if (holds(s, cand, canon)) {
      memcpy(dir, cand, strlen(cand) + 1);
      *kind = k;
      return 0;
    }
  }
  if (!free_slot[0])
    return MAILPROTO_ERR_LIMIT; /* eight names with one 64-bit hash */
  memcpy(dir, free_slot, strlen(free_slot) + 1);
  return 0;
}
