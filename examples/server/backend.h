/*
 * The store behind the server: the Maildir store (--maildir, the default)
 * or the memory store (--memory), with the users of the command line.
 */
#ifndef MAILPROTO_SERVER_BACKEND_H
#define MAILPROTO_SERVER_BACKEND_H

#include <stddef.h>

#include "mailproto/mailproto.h"

typedef struct backend {
  mailproto_maildir *maildir;
  mailproto_memstore *memory;
  mailproto_store store;
  size_t users;
} backend;

/* Opens the Maildir root `maildir`, or a memory store if it is NULL.
 * Returns 0, or -1 with the reason in err. */
int backend_open(backend *b, const char *maildir, char *err, size_t err_size);
/* Adds a user. Returns 0, or -1 with the reason in err. Fits users_add_fn
 * (users.h) with `arg` the backend. */
int backend_add_user(void *arg, const char *name, const char *password,
                     char *err, size_t err_size);
void backend_close(backend *b);

#endif
