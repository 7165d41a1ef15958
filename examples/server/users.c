#include "users.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mem.h"

int users_split(const char *entry, size_t len, char *name, char *password,
                char *err, size_t err_size) {
  if (len > USERS_LINE_MAX) {
    snprintf(err, err_size, "longer than %d bytes", USERS_LINE_MAX);
    return -1;
  }
  if (memchr(entry, '\0', len)) {
    snprintf(err, err_size, "contains a NUL byte");
    return -1;
  }
  const char *colon = memchr(entry, ':', len);
  if (!colon) {
    snprintf(err, err_size, "expected NAME:PASSWORD");
    return -1;
  }
  size_t nlen = (size_t)(colon - entry);
  size_t plen = len - nlen - 1;
  if (nlen == 0) {
    snprintf(err, err_size, "empty user name");
    return -1;
  }
  if (plen == 0) {
    snprintf(err, err_size, "empty password");
    return -1;
  }
  memcpy(name, entry, nlen);
  name[nlen] = '\0';
  memcpy(password, colon + 1, plen);
  password[plen] = '\0';
  return 0;
}

/* A line that is empty, all blanks, or a comment. */
static int is_skipped(const char *line, size_t len) {
  size_t i = 0;
  while (i < len && (line[i] == ' ' || line[i] == '\t'))
    i++;
  return i == len || line[i] == '#';
}

long users_parse(const char *data, size_t len, users_add_fn add, void *arg,
                 char *err, size_t err_size) {
  char name[USERS_LINE_MAX + 1];
  char password[USERS_LINE_MAX + 1];
  char why[160];
  long count = 0;
  unsigned long lineno = 0;
  size_t pos = 0;
  while (pos < len) {
    lineno++;
    const char *line = data + pos;
    const char *nl = memchr(line, '\n', len - pos);
    size_t llen = nl ? (size_t)(nl - line) : len - pos;
    pos += llen + (nl ? 1 : 0);
    if (llen > 0 && line[llen - 1] == '\r')
      llen--;
    if (is_skipped(line, llen))
      continue;
    if (users_split(line, llen, name, password, why, sizeof why) != 0 ||
        add(arg, name, password, why, sizeof why) != 0) {
      snprintf(err, err_size, "line %lu: %s", lineno, why);
      return -1;
    }
    count++;
  }
  return count;
}

long users_load(const char *path, users_add_fn add, void *arg, char *err,
                size_t err_size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, err_size, "%s: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(err, err_size, "%s: not a regular file", path);
    close(fd);
    return -1;
  }
  /* Read at most one byte more than allowed, to tell "too large" apart. */
  char *buf = mem_malloc(USERS_FILE_MAX + 1);
  if (!buf) {
    snprintf(err, err_size, "%s: out of memory", path);
    close(fd);
    return -1;
  }
  size_t used = 0;
  while (used <= USERS_FILE_MAX) {
    ssize_t n = read(fd, buf + used, USERS_FILE_MAX + 1 - used);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      snprintf(err, err_size, "%s: %s", path, strerror(errno));
      mem_free(buf);
      close(fd);
      return -1;
    }
    if (n == 0)
      break;
    used += (size_t)n;
  }
  close(fd);
  long rc;
  if (used > USERS_FILE_MAX) {
    snprintf(err, err_size, "%s: larger than %d bytes", path, USERS_FILE_MAX);
    rc = -1;
  } else {
    char why[256];
    rc = users_parse(buf, used, add, arg, why, sizeof why);
    if (rc < 0)
      snprintf(err, err_size, "%s: %s", path, why);
  }
  mem_free(buf);
  return rc;
}
