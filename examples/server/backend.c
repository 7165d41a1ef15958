#include "backend.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

int backend_open(backend *b, const char *maildir, char *err, size_t err_size) {
  memset(b, 0, sizeof *b);
  int rc;
  if (maildir) {
    mailproto_maildir_config cfg;
    mailproto_maildir_config_init(&cfg, sizeof cfg);
    cfg.root = maildir;
    rc = mailproto_maildir_new(&cfg, &b->maildir);
    if (rc == 0)
      mailproto_maildir_store(b->maildir, &b->store);
  } else {
    rc = mailproto_memstore_new(NULL, &b->memory);
    if (rc == 0)
      mailproto_memstore_store(b->memory, &b->store);
  }
  if (rc < 0) {
    snprintf(err, err_size, "%s%s: %s", maildir ? "Maildir root " : "memory",
             maildir ? maildir : " store", mailproto_strerror(rc));
    return -1;
  }
  return 0;
}

int backend_add_user(void *arg, const char *name, const char *password,
                     char *err, size_t err_size) {
  backend *b = arg;
  int rc = b->maildir ? mailproto_maildir_add_user(b->maildir, name, password)
                      : mailproto_memstore_add_user(b->memory, name, password);
  if (rc == 0) {
    b->users++;
    return 0;
  }
  char clean[96];
  log_clean(clean, sizeof clean, name, strlen(name));
  if (rc == MAILPROTO_ERR_EXISTS)
    snprintf(err, err_size, "user \"%s\" given twice", clean);
  else if (rc == MAILPROTO_ERR_INVALID_ARGUMENT)
    snprintf(err, err_size,
             "user \"%s\" refused: a name is 1..64 bytes without '/', '@', "
             "control characters or a leading '.'; a password has no "
             "control characters",
             clean);
  else
    snprintf(err, err_size, "user \"%s\": %s", clean, mailproto_strerror(rc));
  return -1;
}

void backend_close(backend *b) {
  if (b->maildir)
    mailproto_maildir_free(b->maildir);
  if (b->memory)
    mailproto_memstore_free(b->memory);
  memset(b, 0, sizeof *b);
}
