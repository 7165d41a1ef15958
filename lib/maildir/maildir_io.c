/*
 * System calls of the Maildir store. Every call that changes the disk (and
 * fsync) goes through here, so a test hook can fail or "crash" at each one
 * in turn (mailproto_maildir_set_fault). fsync is skipped when the store
 * was configured without it.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "maildir/maildir_internal.h"

static int fault(mailproto_maildir *s, const char *call) {
  int err = s->fault ? s->fault(s->fault_arg, call) : 0;
  if (err) {
    errno = err > 0 ? err : EIO;
    return -1;
  }
  return 0;
}

int mailproto_maildir_errno(int err) {
  switch (err) {
  case ENOENT:
  case ENOTDIR:
    return MAILPROTO_ERR_NOT_FOUND;
  case EEXIST:
  case ENOTEMPTY:
    return MAILPROTO_ERR_EXISTS;
  case EACCES:
  case EPERM:
  case EROFS:
    return MAILPROTO_ERR_PERMISSION;
  case ENOSPC:
  case EFBIG:
#ifdef EDQUOT
  case EDQUOT:
#endif
    return MAILPROTO_ERR_LIMIT;
  case ENAMETOOLONG:
    return MAILPROTO_ERR_BAD_NAME;
  case ENOMEM:
    return MAILPROTO_ERR_NOMEM;
  case EAGAIN:
  case EINTR:
    return MAILPROTO_ERR_TEMPORARY;
  default:
    return MAILPROTO_ERR_IO;
  }
}

int mailproto_maildir_path(char *out, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(out, MD_PATH_MAX, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= MD_PATH_MAX) {
    out[0] = '\0';
    errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}

int mailproto_maildir_open(mailproto_maildir *s, const char *path, int flags,
                           unsigned mode) {
  if ((flags & (O_CREAT | O_WRONLY | O_RDWR)) && fault(s, "open") != 0)
    return -1;
  int fd;
  do
    fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

int mailproto_maildir_write_all(mailproto_maildir *s, int fd, const void *p,
                                size_t len) {
  if (fault(s, "write") != 0)
    return -1;
  const char *c = p;
  while (len > 0) {
    ssize_t n = write(fd, c, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    c += n;
    len -= (size_t)n;
  }
  return 0;
}

int mailproto_maildir_pwrite_all(mailproto_maildir *s, int fd, const void *p,
                                 size_t len, uint64_t off) {
  if (fault(s, "write") != 0)
    return -1;
  const char *c = p;
  while (len > 0) {
    ssize_t n = pwrite(fd, c, len, (off_t)off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    c += n;
    len -= (size_t)n;
    off += (uint64_t)n;
  }
  return 0;
}

int mailproto_maildir_sync_fd(mailproto_maildir *s, int fd) {
  if (!s->fsync)
    return 0;
  if (fault(s, "fsync") != 0)
    return -1;
  return fsync(fd);
}

int mailproto_maildir_sync_dir(mailproto_maildir *s, const char *path) {
  if (!s->fsync)
    return 0;
  if (fault(s, "fsync") != 0)
    return -1;
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

int mailproto_maildir_rename(mailproto_maildir *s, const char *from,
                             const char *to) {
  if (fault(s, "rename") != 0)
    return -1;
  return rename(from, to);
}

int mailproto_maildir_link(mailproto_maildir *s, const char *from,
                           const char *to) {
  if (fault(s, "link") != 0)
    return -1;
  return link(from, to);
}

int mailproto_maildir_unlink(mailproto_maildir *s, const char *path) {
  if (fault(s, "unlink") != 0)
    return -1;
  return unlink(path);
}

int mailproto_maildir_mkdir(mailproto_maildir *s, const char *path) {
  if (fault(s, "mkdir") != 0)
    return -1;
  return mkdir(path, 0700);
}

int mailproto_maildir_rmdir(mailproto_maildir *s, const char *path) {
  if (fault(s, "rmdir") != 0)
    return -1;
  return rmdir(path);
}

int mailproto_maildir_truncate(mailproto_maildir *s, int fd, uint64_t len) {
  if (fault(s, "ftruncate") != 0)
    return -1;
  return ftruncate(fd, (off_t)len);
}

int mailproto_maildir_set_mtime(mailproto_maildir *s, int fd, int64_t when) {
  if (fault(s, "futimens") != 0)
    return -1;
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)when;
  ts[0].tv_nsec = 0;
  ts[1] = ts[0];
  return futimens(fd, ts);
}

int mailproto_maildir_read_file(mailproto_maildir *s, const char *path,
                                size_t max, char **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = mailproto_maildir_open(s, path, O_RDONLY, 0);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return MAILPROTO_ERR_IO;
  }
  if (st.st_size < 0 || (uint64_t)st.st_size > max) {
    close(fd);
    return MAILPROTO_ERR_TOO_LONG;
  }
  size_t cap = (size_t)st.st_size + 1;
  char *buf = mailproto_mem_malloc(&s->alloc, cap);
  if (!buf) {
    close(fd);
    return MAILPROTO_ERR_NOMEM;
  }
  /* The file may change while it is read: take what is there, up to the
   * size it had, and never more than the buffer. */
  size_t got = 0;
  while (got < cap - 1) {
    ssize_t n = read(fd, buf + got, cap - 1 - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      close(fd);
      mailproto_mem_free(&s->alloc, buf);
      return MAILPROTO_ERR_IO;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  close(fd);
  buf[got] = '\0';
  *out = buf;
  *len = got;
  return 0;
}

int mailproto_maildir_replace_file(mailproto_maildir *s, const char *dir,
                                   const char *name, const void *data,
                                   size_t len) {
  char tmp[MD_PATH_MAX], dst[MD_PATH_MAX], unique[128];
  mailproto_maildir_unique(s, unique, sizeof unique);
  if (mailproto_maildir_path(tmp, "%s/%s.%s.tmp", dir, name, unique) != 0 ||
      mailproto_maildir_path(dst, "%s/%s", dir, name) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int fd = mailproto_maildir_open(s, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  int rc = 0;
  if (mailproto_maildir_write_all(s, fd, data, len) != 0 ||
      mailproto_maildir_sync_fd(s, fd) != 0)
    rc = mailproto_maildir_errno(errno);
  if (close(fd) != 0 && rc == 0)
    rc = MAILPROTO_ERR_IO;
  if (rc == 0 && mailproto_maildir_rename(s, tmp, dst) != 0)
    rc = mailproto_maildir_errno(errno);
  if (rc != 0) {
    unlink(tmp);
    return rc;
  }
  if (mailproto_maildir_sync_dir(s, dir) != 0)
    return mailproto_maildir_errno(errno);
  return 0;
}

void mailproto_maildir_unique(mailproto_maildir *s, char *out, size_t size) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
    ts.tv_sec = time(NULL);
    ts.tv_nsec = 0;
  }
  /* maildir(5): time, then what makes the name unique on this host (the
   * microsecond, the process and a per-process counter), then the host. */
  snprintf(out, size, "%lld.M%ldP%ldQ%lu.%s", (long long)ts.tv_sec,
           (long)(ts.tv_nsec / 1000), (long)getpid(), (unsigned long)++s->seq,
           s->host);
}

static int remove_level(mailproto_maildir *s, const char *path, int depth) {
  DIR *d = opendir(path);
  if (!d)
    return errno == ENOENT ? 0 : mailproto_maildir_errno(errno);
  int rc = 0;
  for (;;) {
    errno = 0;
    struct dirent *e = readdir(d);
    if (!e) {
      if (errno != 0)
        rc = MAILPROTO_ERR_IO;
      break;
    }
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char sub[MD_PATH_MAX];
    if (mailproto_maildir_path(sub, "%s/%s", path, e->d_name) != 0) {
      rc = MAILPROTO_ERR_IO;
      continue;
    }
    struct stat st;
    if (lstat(sub, &st) != 0)
      continue; /* gone meanwhile */
    int r = 0;
    if (S_ISDIR(st.st_mode)) {
      r = depth > 0 ? remove_level(s, sub, depth - 1) : MAILPROTO_ERR_IO;
    } else if (mailproto_maildir_unlink(s, sub) != 0 && errno != ENOENT) {
      r = mailproto_maildir_errno(errno);
    }
    if (r != 0 && rc == 0)
      rc = r;
  }
  closedir(d);
  if (rc == 0 && mailproto_maildir_rmdir(s, path) != 0 && errno != ENOENT)
    rc = mailproto_maildir_errno(errno);
  return rc;
}

int mailproto_maildir_remove_tree(mailproto_maildir *s, const char *path) {
  return remove_level(s, path, 2);
}

int mailproto_maildir_is_dir(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0)
    return errno == ENOENT || errno == ENOTDIR ? 0
                                               : mailproto_maildir_errno(errno);
  return S_ISDIR(st.st_mode) ? 1 : 0;
}

int mailproto_maildir_make_maildir(mailproto_maildir *s, const char *dir) {
  static const char *const subs[] = {"tmp", "new", "cur"};
  if (mailproto_maildir_mkdir(s, dir) != 0 && errno != EEXIST)
    return mailproto_maildir_errno(errno);
  for (size_t i = 0; i < 3; i++) {
    char p[MD_PATH_MAX];
    if (mailproto_maildir_path(p, "%s/%s", dir, subs[i]) != 0)
      return MAILPROTO_ERR_BAD_NAME;
    if (mailproto_maildir_mkdir(s, p) != 0 && errno != EEXIST)
      return mailproto_maildir_errno(errno);
  }
  return 0;
}

int64_t mailproto_maildir_now(void) {
  return (int64_t)time(NULL);
}
