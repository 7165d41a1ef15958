/*
 * Locks between processes: fcntl write locks on small lock files, taken
 * with a bounded wait (polling with short sleeps), and the UIDVALIDITY
 * counter they protect.
 *
 * Where the system has them, the locks are open file description locks
 * (F_OFD_SETLK): they also exclude another store object of the same
 * process (one per thread), and closing another descriptor of the file
 * does not drop them. Elsewhere they are classic POSIX locks, which belong
 * to the process: then two store objects of one process do not exclude
 * each other, and all of the process's locks on a file go when any of its
 * descriptors closes, which is why a lock file is opened only by the one
 * md_lock that holds it. Either way nesting inside one store is counted
 * instead of locking twice. (An open file description lock is shared with
 * a child forked while it is held.)
 */
/* F_OFD_SETLK where the C library has it; the code is POSIX otherwise. */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "maildir/maildir_internal.h"

void mailproto_maildir_lock_init(md_lock *l) {
  l->fd = -1;
  l->depth = 0;
}

static int64_t monotonic_ms(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return (int64_t)time(NULL) * 1000;
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int try_lock(int fd) {
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
#ifdef F_OFD_SETLK
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
    return 0;
  if (errno != EINVAL)
    return -1; /* EINVAL: a kernel without them */
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
#endif
  return fcntl(fd, F_SETLK, &fl);
}

static int busy(int err) {
  return err == EACCES || err == EAGAIN || err == EINTR;
}

int mailproto_maildir_lock(mailproto_maildir *s, md_lock *l, const char *dir,
                           const char *file) {
  if (l->depth > 0) {
    l->depth++;
    return 0;
  }
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/%s", dir, file) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int fd = mailproto_maildir_open(s, path, O_RDWR | O_CREAT, 0600);
  if (fd < 0)
    return mailproto_maildir_errno(errno);
  int64_t deadline = monotonic_ms() + (int64_t)s->lock_timeout_ms;
  long pause_us = 500;
  while (try_lock(fd) != 0) {
    int err = errno;
    int64_t now = monotonic_ms();
    if (!busy(err) || now >= deadline) {
      close(fd);
      return busy(err) ? MAILPROTO_ERR_TEMPORARY : mailproto_maildir_errno(err);
    }
    /* Short sleeps at first (the holder usually needs a millisecond),
     * longer ones later; never past the deadline. */
    long left_us = (long)(deadline - now) * 1000;
    long us = pause_us < left_us ? pause_us : left_us;
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
    if (pause_us < 20000)
      pause_us *= 2;
  }
  l->fd = fd;
  l->depth = 1;
  return 0;
}

void mailproto_maildir_unlock(md_lock *l) {
  if (l->depth == 0)
    return;
  if (--l->depth == 0) {
    close(l->fd);
    l->fd = -1;
  }
}

int mailproto_maildir_folder_lock(mailproto_maildir *s, md_folder *f) {
  if (f->gone)
    return MAILPROTO_ERR_NOT_FOUND;
  return mailproto_maildir_lock(s, &f->lock, f->dir, MD_INDEX_LOCK);
}

void mailproto_maildir_folder_unlock(mailproto_maildir *s, md_folder *f) {
  if (f->lock.depth == 1)
    mailproto_maildir_index_tidy(s, f);
  mailproto_maildir_unlock(&f->lock);
}

int mailproto_maildir_lock_exclusive(mailproto_maildir *s, const char *dir,
                                     int *fd) {
  *fd = -1;
  char path[MD_PATH_MAX];
  if (mailproto_maildir_path(path, "%s/%s", dir, MD_POP3_LOCK) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int f = mailproto_maildir_open(s, path, O_RDWR | O_CREAT, 0600);
  if (f < 0)
    return mailproto_maildir_errno(errno);
  /* RFC 1939 8: a second maildrop lock fails at once, it does not wait. */
  while (try_lock(f) != 0) {
    int err = errno;
    if (err == EINTR)
      continue;
    close(f);
    return busy(err) ? MAILPROTO_ERR_IN_USE : mailproto_maildir_errno(err);
  }
  *fd = f;
  return 0;
}

int mailproto_maildir_next_uidvalidity(mailproto_maildir *s, md_user *u,
                                       uint32_t *out) {
  md_lock l;
  mailproto_maildir_lock_init(&l);
  int rc = mailproto_maildir_lock(s, &l, u->dir, MD_UIDVALIDITY_LOCK);
  if (rc != 0)
    return rc;
  char path[MD_PATH_MAX], *text = NULL;
  size_t len = 0;
  uint64_t last = 0;
  if (mailproto_maildir_path(path, "%s/%s", u->dir, MD_UIDVALIDITY) != 0) {
    rc = MAILPROTO_ERR_BAD_NAME;
    goto done;
  }
  rc = mailproto_maildir_read_file(s, path, 64, &text, &len);
  if (rc == 0) {
    /* Damaged contents count as 0: the clock still keeps new values above
     * the ones handed out before. */
    char *end = NULL;
    unsigned long long v = strtoull(text, &end, 10);
    if (end != text && (*end == '\n' || *end == '\0') && v <= 0xffffffffu)
      last = v;
  } else if (rc != MAILPROTO_ERR_NOT_FOUND && rc != MAILPROTO_ERR_TOO_LONG) {
    goto done;
  }
  mailproto_mem_free(&s->alloc, text);
  text = NULL;
  uint64_t next = last + 1;
  int64_t now = mailproto_maildir_now();
  if (now > 0 && (uint64_t)now > next && (uint64_t)now <= 0xffffffffu)
    next = (uint64_t)now;
  if (next > 0xffffffffu) {
    rc = MAILPROTO_ERR_LIMIT;
    goto done;
  }
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%lu\n", (unsigned long)next);
  rc =
      mailproto_maildir_replace_file(s, u->dir, MD_UIDVALIDITY, buf, (size_t)n);
  if (rc == 0)
    *out = (uint32_t)next;
done:
  mailproto_mem_free(&s->alloc, text);
  mailproto_maildir_unlock(&l);
  return rc;
}
