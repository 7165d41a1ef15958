/* The Maildir store: the store object, users, account hooks and the
 * registry of folder views shared by the handles of this process. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir/maildir_hooks.h"
#include "maildir/maildir_internal.h"

void mailproto_maildir_config_init(mailproto_maildir_config *config,
                                   size_t struct_size) {
  if (!config)
    return;
  mailproto_maildir_config full;
  memset(&full, 0, sizeof full);
  full.struct_size = struct_size < sizeof full ? struct_size : sizeof full;
  full.fsync = 1;
  full.lock_timeout_ms = 5000;
  full.create_users = 1;
  /* A caller built against an older header has a shorter struct. */
  memcpy(config, &full, full.struct_size);
}

/* mkdir -p with mode 0700 for the parts that are missing. */
static int make_root(mailproto_maildir *s, const char *root) {
  char p[MD_PATH_MAX];
  size_t n = strlen(root);
  memcpy(p, root, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (p[i] != '/' && p[i] != '\0')
      continue;
    char c = p[i];
    p[i] = '\0';
    if (mailproto_maildir_mkdir(s, p) != 0 && errno != EEXIST)
      return MAILPROTO_ERR_IO;
    p[i] = c;
  }
  return mailproto_maildir_is_dir(root) == 1 ? 0 : MAILPROTO_ERR_IO;
}

static void set_host(mailproto_maildir *s) {
  char h[64];
  if (gethostname(h, sizeof h) != 0)
    h[0] = '\0';
  h[sizeof h - 1] = '\0';
  /* maildir(5) escapes '/' and ':' in the host part; anything but letters,
   * digits, '.', '-' and '_' is replaced here, which is simpler still. */
  size_t o = 0;
  for (size_t i = 0; h[i] && o < sizeof s->host - 1; i++) {
    char c = h[i];
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    s->host[o++] = ok ? c : '_';
  }
  if (o == 0) {
    memcpy(s->host, "localhost", 10);
    return;
  }
  s->host[o] = '\0';
}

int mailproto_maildir_new(const mailproto_maildir_config *config,
                          mailproto_maildir **out) {
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!config)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  mailproto_maildir_config c;
  mailproto_maildir_config_init(&c, sizeof c);
  size_t sz = config->struct_size;
  memcpy(&c, config, sz >= sizeof(size_t) && sz < sizeof c ? sz : sizeof c);
  if (!c.root || !c.root[0] || strlen(c.root) > MD_ROOT_MAX)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const mailproto_allocator *a =
      c.allocator ? c.allocator : mailproto_default_allocator();
  mailproto_maildir *s = mailproto_mem_calloc(a, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *a;
  s->fsync = c.fsync != 0;
  s->lock_timeout_ms = c.lock_timeout_ms;
  s->create_users = c.create_users != 0;
  set_host(s);
  size_t rl = strlen(c.root);
  while (rl > 1 && c.root[rl - 1] == '/')
    rl--;
  s->root = mailproto_mem_strndup(&s->alloc, c.root, rl);
  int rc = s->root ? make_root(s, s->root) : MAILPROTO_ERR_NOMEM;
  if (rc != 0) {
    mailproto_maildir_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

static void user_free(mailproto_maildir *s, md_user *u) {
  if (!u)
    return;
  mailproto_maildir_unlock(&u->lock);
  mailproto_mem_free(&s->alloc, u->name);
  if (u->password)
    mailproto_secure_zero(u->password, u->password_len);
  mailproto_mem_free(&s->alloc, u->password);
  mailproto_mem_free(&s->alloc, u->dir);
  mailproto_mem_free(&s->alloc, u);
}

static void folder_free(mailproto_maildir *s, md_folder *f) {
  while (f->lock.depth)
    mailproto_maildir_unlock(&f->lock);
  for (unsigned i = 0; i < 64; i++)
    mailproto_mem_free(&s->alloc, f->kw[i]);
  mailproto_mem_free(&s->alloc, f->msgs);
  mailproto_mem_free(&s->alloc, f->graves);
  mailproto_mem_free(&s->alloc, f->pool);
  mailproto_mem_free(&s->alloc, f->name);
  mailproto_mem_free(&s->alloc, f->dir);
  mailproto_mem_free(&s->alloc, f);
}

static void unlink_folder(mailproto_maildir *s, md_folder *f) {
  if (f->prev)
    f->prev->next = f->next;
  else if (s->folders == f)
    s->folders = f->next;
  if (f->next)
    f->next->prev = f->prev;
  f->prev = f->next = NULL;
}

void mailproto_maildir_free(mailproto_maildir *s) {
  if (!s)
    return;
  while (s->folders) {
    md_folder *f = s->folders;
    unlink_folder(s, f);
    folder_free(s, f);
  }
  for (size_t i = 0; i < s->user_count; i++)
    user_free(s, s->users[i]);
  mailproto_mem_free(&s->alloc, s->users);
  mailproto_mem_free(&s->alloc, s->root);
  mailproto_allocator a = s->alloc;
  mailproto_mem_free(&a, s);
}

static md_user *find_user(const mailproto_maildir *s, const char *name,
                          size_t len, int ignore_case) {
  for (size_t i = 0; i < s->user_count; i++)
    if (mailproto_store_user_is(s->users[i]->name, name, len, ignore_case))
      return s->users[i];
  return NULL;
}

/* Adds a user whose name and password are prepared already. */
static int add_user(mailproto_maildir *s, const char *name,
                    const char *password, size_t plen) {
  /* Recipients match names case-insensitively: names differing only in
   * case would be ambiguous. */
  if (find_user(s, name, strlen(name), 1))
    return MAILPROTO_ERR_EXISTS;
  int rc = mailproto_store_grow(&s->alloc, (void **)&s->users, &s->user_cap,
                                s->user_count + 1, sizeof *s->users);
  if (rc != 0)
    return rc;
  md_user *u = mailproto_mem_calloc(&s->alloc, 1, sizeof *u);
  if (!u)
    return MAILPROTO_ERR_NOMEM;
  mailproto_maildir_lock_init(&u->lock);
  char dir[MD_PATH_MAX];
  u->name = mailproto_mem_strdup(&s->alloc, name);
  u->password = mailproto_mem_strndup(&s->alloc, password, plen);
  u->password_len = plen;
  if (mailproto_maildir_path(dir, "%s/%s", s->root, name) == 0)
    u->dir = mailproto_mem_strdup(&s->alloc, dir);
  if (!u->name || !u->password || !u->dir) {
    user_free(s, u);
    return MAILPROTO_ERR_NOMEM;
  }
  s->users[s->user_count++] = u;
  return 0;
}

int mailproto_maildir_add_user(mailproto_maildir *s, const char *name,
                               const char *password) {
  if (!s || !name || !password || !mailproto_maildir_user_name_ok(name))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  char prep_name[MAILPROTO_STORE_NAME_MAX + 1];
  char prep_password[MAILPROTO_SECRET_MAX + 1];
  size_t plen;
  int rc = mailproto_store_prepare_login(name, password, prep_name,
                                         prep_password, &plen);
  if (rc == 0 && !mailproto_maildir_user_name_ok(prep_name))
    rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  if (rc == 0)
    rc = add_user(s, prep_name, prep_password, plen);
  mailproto_secure_zero(prep_password, sizeof prep_password);
  return rc;
}

void mailproto_maildir_set_fault(mailproto_maildir *s,
                                 mailproto_maildir_fault_fn fn, void *arg) {
  s->fault = fn;
  s->fault_arg = arg;
}

/* ---- the folder registry ---- */

md_folder *mailproto_maildir_folder_find(mailproto_maildir *s,
                                         const char *dir) {
  for (md_folder *f = s->folders; f; f = f->next)
    if (!f->gone && strcmp(f->dir, dir) == 0)
      return f;
  return NULL;
}

/* Frees idle views beyond MD_IDLE_MAX, least recently used first. */
static void trim_idle(mailproto_maildir *s) {
  if (s->idle <= MD_IDLE_MAX)
    return;
  md_folder *last = s->folders;
  while (last && last->next)
    last = last->next;
  for (md_folder *f = last; f && s->idle > MD_IDLE_MAX;) {
    md_folder *prev = f->prev;
    if (f->refs == 0) {
      unlink_folder(s, f);
      folder_free(s, f);
      s->idle--;
    }
    f = prev;
  }
}

int mailproto_maildir_folder_get(mailproto_maildir *s, md_user *u,
                                 const char *canon, const char *dir,
                                 md_folder **out) {
  md_folder *f = mailproto_maildir_folder_find(s, dir);
  if (f) {
    if (f->refs++ == 0)
      s->idle--;
    if (s->folders != f) {
      unlink_folder(s, f);
      f->next = s->folders;
      if (s->folders)
        s->folders->prev = f;
      s->folders = f;
    }
    *out = f;
    return 0;
  }
  f = mailproto_mem_calloc(&s->alloc, 1, sizeof *f);
  if (!f)
    return MAILPROTO_ERR_NOMEM;
  f->store = s;
  f->user = u;
  f->name = mailproto_mem_strdup(&s->alloc, canon);
  f->dir = mailproto_mem_strdup(&s->alloc, dir);
  if (!f->name || !f->dir) {
    folder_free(s, f);
    return MAILPROTO_ERR_NOMEM;
  }
  mailproto_maildir_lock_init(&f->lock);
  f->new_dirty = f->cur_dirty = 1;
  f->refs = 1;
  f->next = s->folders;
  if (s->folders)
    s->folders->prev = f;
  s->folders = f;
  *out = f;
  return 0;
}

void mailproto_maildir_folder_put(mailproto_maildir *s, md_folder *f) {
  if (!f || --f->refs > 0)
    return;
  if (f->gone) {
    folder_free(s, f);
    return;
  }
  s->idle++;
  trim_idle(s);
}

void mailproto_maildir_notify(md_folder *f, const md_handle *except) {
  for (md_handle *h = f->handles; h; h = h->next)
    if (h != except && h->notify)
      h->notify(h->notify_arg);
}

void mailproto_maildir_folder_detach(mailproto_maildir *s, md_folder *f) {
  if (f->gone)
    return;
  f->gone = 1;
  unlink_folder(s, f);
  mailproto_maildir_notify(f, NULL);
  if (f->refs == 0) {
    s->idle--;
    folder_free(s, f);
  }
}

/* ---- accounts ---- */

/* The user's Maildir, created when the store may (a known user's mail
 * store appears on first use). */
static int ensure_maildir(mailproto_maildir *s, md_user *u) {
  char cur[MD_PATH_MAX];
  if (mailproto_maildir_path(cur, "%s/cur", u->dir) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int d = mailproto_maildir_is_dir(cur);
  if (d != 0)
    return d < 0 ? d : 0;
  if (!s->create_users)
    return MAILPROTO_ERR_NOT_FOUND;
  int rc = mailproto_maildir_make_maildir(s, u->dir);
  if (rc == 0 && (mailproto_maildir_sync_dir(s, u->dir) != 0 ||
                  mailproto_maildir_sync_dir(s, s->root) != 0))
    rc = mailproto_maildir_errno(errno);
  return rc;
}

int mailproto_maildir_hook_authenticate(void *ctx, mailproto_op *op,
                                        const char *authzid,
                                        const char *authcid,
                                        const char *password,
                                        size_t password_len, void **account) {
  mailproto_maildir *s = ctx;
  (void)op;
  if (!s || !authcid || (!password && password_len) || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  md_user *u = find_user(s, authcid, strlen(authcid), 0);
  int rc = mailproto_store_password_check(
      authzid, authcid, u ? u->password : NULL, u ? u->password_len : 0,
      password, password_len);
  if (rc != 0)
    return rc;
  rc = ensure_maildir(s, u);
  if (rc != 0 && rc != MAILPROTO_ERR_NOT_FOUND)
    return rc;
  *account = u;
  return 0;
}

int mailproto_maildir_hook_lookup_secret(void *ctx, mailproto_op *op,
                                         const char *user, char *secret,
                                         size_t secret_size, size_t *secret_len,
                                         void **account) {
  mailproto_maildir *s = ctx;
  (void)op;
  if (!s || !user || !secret || !secret_len || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  *secret_len = 0;
  md_user *u = find_user(s, user, strlen(user), 0);
  if (!u)
    return MAILPROTO_ERR_AUTH_FAILED;
  if (u->password_len > secret_size)
    return MAILPROTO_ERR_BUFFER_FULL;
  int rc = ensure_maildir(s, u);
  if (rc != 0 && rc != MAILPROTO_ERR_NOT_FOUND)
    return rc;
  memcpy(secret, u->password, u->password_len);
  *secret_len = u->password_len;
  *account = u;
  return 0;
}

int mailproto_maildir_hook_lookup_recipient(void *ctx, mailproto_op *op,
                                            const char *address,
                                            void **account) {
  mailproto_maildir *s = ctx;
  (void)op;
  if (!s || !address || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  size_t len = mailproto_store_local_part(address);
  md_user *u = len ? find_user(s, address, len, 1) : NULL;
  if (!u)
    return MAILPROTO_ERR_NOT_FOUND;
  /* No Maildir and none to be made: no mailbox to deliver to. */
  int rc = ensure_maildir(s, u);
  if (rc != 0)
    return rc;
  *account = u;
  return 0;
}

void mailproto_maildir_hook_release_account(void *ctx, void *account) {
  /* Accounts are the users themselves; they live as long as the store. */
  (void)ctx;
  (void)account;
}

void mailproto_maildir_hook_cancel(void *ctx, mailproto_op *op) {
  /* Every hook finishes before it returns: nothing is ever pending. */
  (void)ctx;
  (void)op;
}

static const mailproto_store_ops maildir_ops = {
    sizeof(mailproto_store_ops),
    mailproto_maildir_hook_authenticate,
    mailproto_maildir_hook_lookup_secret,
    mailproto_maildir_hook_lookup_recipient,
    mailproto_maildir_hook_release_account,
    mailproto_maildir_hook_list,
    mailproto_maildir_hook_create,
    mailproto_maildir_hook_delete,
    mailproto_maildir_hook_rename,
    mailproto_maildir_hook_subscribe,
    mailproto_maildir_hook_status,
    mailproto_maildir_hook_open,
    mailproto_maildir_hook_close,
    mailproto_maildir_hook_sync,
    mailproto_maildir_hook_read,
    mailproto_maildir_hook_set_flags,
    mailproto_maildir_hook_expunge,
    mailproto_maildir_hook_copy,
    mailproto_maildir_hook_append_begin,
    mailproto_maildir_hook_deliver_begin,
    mailproto_maildir_hook_write,
    mailproto_maildir_hook_append_commit,
    mailproto_maildir_hook_deliver_commit,
    mailproto_maildir_hook_abort,
    mailproto_maildir_hook_cancel,
    mailproto_maildir_hook_cache_get,
    mailproto_maildir_hook_cache_put,
    mailproto_maildir_hook_message_get,
};

void mailproto_maildir_store(mailproto_maildir *s, mailproto_store *out) {
  if (!out)
    return;
  out->ops = s ? &maildir_ops : NULL;
  out->ctx = s;
}
