/*
 * Users from the command line (--user NAME:PASSWORD) and from a users file
 * (--users FILE): one NAME:PASSWORD per line, '#' starts a comment line,
 * blank lines are skipped, LF or CRLF line ends. The password is everything
 * after the first ':' (it may hold ':' and spaces).
 */
#ifndef MAILPROTO_SERVER_USERS_H
#define MAILPROTO_SERVER_USERS_H

#include <stddef.h>

/* Longest accepted line or --user value, in bytes. */
#define USERS_LINE_MAX 1024
/* Largest users file read. */
#define USERS_FILE_MAX (1024 * 1024)

/* Receives one user; returns 0, or -1 after writing why into err. */
typedef int (*users_add_fn)(void *arg, const char *name, const char *password,
                            char *err, size_t err_size);

/* Splits one "NAME:PASSWORD" entry of `len` bytes (no NUL needed, none
 * allowed inside) into NUL-terminated `name` and `password`, each buffer
 * USERS_LINE_MAX + 1 bytes. Returns 0, or -1 with a reason in err. */
int users_split(const char *entry, size_t len, char *name, char *password,
                char *err, size_t err_size);

/* Parses a whole users file held in `data` (`len` bytes, no NUL needed) and
 * calls `add` for each user in order. Returns the number of users, or -1
 * with "line N: reason" in err. */
long users_parse(const char *data, size_t len, users_add_fn add, void *arg,
                 char *err, size_t err_size);

/* Reads `path` (at most USERS_FILE_MAX bytes) and parses it. Returns the
 * number of users or -1 with the reason in err. */
long users_load(const char *path, users_add_fn add, void *arg, char *err,
                size_t err_size);

#endif
