/*
 * The Maildir store's cache hooks (store.h: cache_get, cache_put): each
 * message's parsed MIME structure kept on disk, so it survives restarts
 * and is shared by every process that serves the folder.
 *
 * Layout: FOLDER/mailproto-cache/<uidvalidity>.<uid>, one small file per
 * message: an identity line, then the caller's bytes. The identity names
 * the message file the entry was made from (its base name, inode, size
 * and modification time): other programs may replace a file behind the
 * store's back (a rewrite by a filter, a restore from backup, another
 * message under the same UID after a damaged list), and an entry whose
 * identity no longer matches the file is a miss, not a wrong structure.
 *
 * Entries are written to the folder's tmp/ (which the store already
 * clears of files older than 36 hours, so a crash leaves nothing behind
 * for ever) and renamed into place, so readers in other processes see a
 * whole entry or none. Nothing here is fsynced: losing an entry costs
 * one parse. The cache directory is opened without following a symlink,
 * and entries without following one or blocking on a FIFO: whoever can
 * write the folder must not make the server read elsewhere or hang.
 * Entries of messages this store expunges are removed with them
 * (mailproto_maildir_cache_drop); those of messages removed by other
 * programs, or of a folder whose UIDVALIDITY changed, stay as unused
 * files until the folder is deleted.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"

/* Larger entries are not kept (a tree at the parser's limits is about
 * 2 MiB serialised). */
#define MD_CACHE_ENTRY_MAX (8u * 1024u * 1024u)
/* "MPC1 <ino> <size> <sec>.<nsec> <base>\n" */
#define MD_CACHE_ID_MAX (MD_FILE_MAX + 96)

static int entry_name(const md_folder *f, uint32_t uid, char *out,
                      size_t size) {
  int n = snprintf(out, size, "%lu.%lu", (unsigned long)f->uidvalidity,
                   (unsigned long)uid);
  return n > 0 && (size_t)n < size ? 0 : -1;
}

/* The folder of a handle when `uid` is one of its live messages (under
 * the UIDVALIDITY the entry names use). */
static md_msg *live(md_handle *h, uint32_t uid, md_folder **out) {
  *out = h->f;
  return mailproto_maildir_handle_msg(h, uid);
}

/* The identity line of message m's file as it is now; its length, or 0
 * when the file cannot be seen. */
static size_t identity(const md_folder *f, const md_msg *m, char *out) {
  char path[MD_PATH_MAX], name[MD_FILE_MAX + 1];
  struct stat st;
  if (mailproto_maildir_msg_path(f, m, path) != 0 || stat(path, &st) != 0 ||
      !S_ISREG(st.st_mode))
    return 0;
  mailproto_maildir_name_of(f, m, name);
  name[m->base_len] = '\0'; /* the base: up to ':' (uint8_t < sizeof name) */
  int n =
      snprintf(out, MD_CACHE_ID_MAX, "MPC1 %llu %llu %lld.%09ld %s\n",
               (unsigned long long)st.st_ino, (unsigned long long)st.st_size,
               (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec, name);
  return n > 0 && n < MD_CACHE_ID_MAX ? (size_t)n : 0;
}

/* The cache directory, opened without following a symlink; -1 if it
 * cannot be (absent, a symlink, not a directory). */
static int cache_dir(const md_folder *f, int create, mailproto_maildir *s) {
  char dir[MD_PATH_MAX];
  if (mailproto_maildir_path(dir, "%s/" MD_CACHE_DIR, f->dir) != 0)
    return -1;
  if (create && mailproto_maildir_mkdir(s, dir) != 0 && errno != EEXIST)
    return -1;
  int fd;
  do
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  return fd;
}

/* Reads entry `name` of directory dfd whole into fresh memory. */
static int read_entry(mailproto_maildir *s, int dfd, const char *name,
                      char **out, size_t *len) {
  int fd;
  do
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  struct stat st;
  int rc = 0;
  if (fstat(fd, &st) != 0)
    rc = MAILPROTO_ERR_IO;
  else if (!S_ISREG(st.st_mode)) /* a FIFO or device must not block us */
    rc = MAILPROTO_ERR_NOT_FOUND;
  else if (st.st_size < 0 || (uint64_t)st.st_size > MD_CACHE_ENTRY_MAX)
    rc = MAILPROTO_ERR_TOO_LONG;
  char *buf = NULL;
  size_t got = 0;
  if (rc == 0) {
    size_t cap = (size_t)st.st_size + 1;
    buf = mailproto_mem_malloc(&s->alloc, cap);
    if (!buf)
      rc = MAILPROTO_ERR_NOMEM;
    /* the file may change while it is read: never more than it had */
    while (rc == 0 && got < cap - 1) {
      ssize_t n = read(fd, buf + got, cap - 1 - got);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        rc = MAILPROTO_ERR_IO;
      else if (n == 0)
        break;
      else
        got += (size_t)n;
    }
  }
  close(fd);
  if (rc != 0) {
    mailproto_mem_free(&s->alloc, buf);
    return rc;
  }
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

int mailproto_maildir_hook_cache_get(void *ctx, void *mailbox, uint32_t uid,
                                     const uint8_t **data, size_t *len) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  if (!s || !h || !data || !len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  /* The last entry was kept only until this call (store.h): a lookup
   * that misses (the library asks for UID 0 once it has decoded an
   * entry) frees it, so an open mailbox does not hold it. */
  mailproto_mem_free(&s->alloc, h->cache);
  h->cache = NULL;
  md_folder *f = NULL;
  md_msg *m = live(h, uid, &f);
  char name[64], id[MD_CACHE_ID_MAX];
  size_t idlen;
  if (!m || entry_name(f, uid, name, sizeof name) != 0 ||
      (idlen = identity(f, m, id)) == 0)
    return MAILPROTO_ERR_NOT_FOUND;
  int dfd = cache_dir(f, 0, s);
  if (dfd < 0)
    return MAILPROTO_ERR_NOT_FOUND;
  char *bytes = NULL;
  size_t n = 0;
  int rc = read_entry(s, dfd, name, &bytes, &n);
  close(dfd);
  if (rc != 0)
    return rc;
  if (n < idlen || memcmp(bytes, id, idlen) != 0) {
    /* made from another file: stale */
    mailproto_mem_free(&s->alloc, bytes);
    return MAILPROTO_ERR_NOT_FOUND;
  }
  h->cache = bytes;
  *data = (const uint8_t *)bytes + idlen;
  *len = n - idlen;
  return 0;
}

int mailproto_maildir_hook_cache_put(void *ctx, void *mailbox, uint32_t uid,
                                     const uint8_t *data, size_t len) {
  mailproto_maildir *s = ctx;
  md_handle *h = mailbox;
  if (!s || !h || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  md_folder *f = NULL;
  md_msg *m = live(h, uid, &f);
  if (!m)
    return MAILPROTO_ERR_NOT_FOUND;
  if (len == 0) { /* store.h: len 0 drops the entry */
    mailproto_maildir_cache_drop(s, f, uid);
    return 0;
  }
  char id[MD_CACHE_ID_MAX];
  size_t idlen = identity(f, m, id);
  if (len > MD_CACHE_ENTRY_MAX - idlen)
    return MAILPROTO_ERR_TOO_LONG;
  if (idlen == 0)
    return MAILPROTO_ERR_NOT_FOUND;
  char name[64], tmp[MD_PATH_MAX], unique[MD_FILE_MAX + 1];
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (entry_name(f, uid, name, sizeof name) != 0 ||
      mailproto_maildir_path(tmp, "%s/tmp/%s.cache", f->dir, unique) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int dfd = cache_dir(f, 1, s);
  if (dfd < 0)
    return errno == ELOOP || errno == ENOTDIR ? MAILPROTO_ERR_PERMISSION
                                              : mailproto_maildir_errno(errno);
  int fd = mailproto_maildir_open(s, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  int rc = fd < 0 ? mailproto_maildir_errno(errno) : 0;
  if (rc == 0 && (mailproto_maildir_write_all(s, fd, id, idlen) != 0 ||
                  mailproto_maildir_write_all(s, fd, data, len) != 0))
    rc = mailproto_maildir_errno(errno);
  if (fd >= 0 && close(fd) != 0 && rc == 0)
    rc = MAILPROTO_ERR_IO;
  /* into the directory opened above, never through a swapped symlink */
  if (rc == 0 && renameat(AT_FDCWD, tmp, dfd, name) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0 && fd >= 0)
    (void)mailproto_maildir_unlink(s, tmp);
  /* Another process may have expunged the message meanwhile: it removes
   * the file, then the entry, which may have been before ours was in
   * place. The file gone now, the entry goes too, or nothing would. */
  if (rc == 0 && identity(f, m, id) == 0) {
    (void)unlinkat(dfd, name, 0);
    rc = MAILPROTO_ERR_NOT_FOUND;
  }
  close(dfd);
  return rc;
}

void mailproto_maildir_cache_drop(mailproto_maildir *s, const md_folder *f,
                                  uint32_t uid) {
  char name[64];
  if (entry_name(f, uid, name, sizeof name) != 0)
    return;
  int dfd = cache_dir(f, 0, s);
  if (dfd < 0)
    return;
  (void)unlinkat(dfd, name, 0);
  close(dfd);
}
