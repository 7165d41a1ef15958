#include "store_wrap.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conn.h"
#include "mem.h"

#define INNER(c) (&(c)->srv->store)
#define HOOK(c, name) (INNER(c)->ops->name)
/* An optional hook at the end of the table (cache_get, cache_put,
 * message_get): present only if the backend's table reaches it. */
#define HAS_OPTIONAL(st, name)                                                 \
  ((st)->ops &&                                                                \
   (st)->ops->struct_size >=                                                   \
       offsetof(mailproto_store_ops, name) + sizeof((st)->ops->name) &&        \
   (st)->ops->name != NULL)

/* A writer of ours around the backend's, for the delivery log line. */
typedef struct wrap_writer {
  list_node link; /* in the connection's writers */
  void *inner;
  int delivery; /* 1: SMTP/LMTP delivery, 0: APPEND */
  uint64_t bytes;
  char from[128]; /* reverse path, or the mailbox of an append */
  size_t rcpt_count;
  char **rcpts; /* cleaned recipient addresses */
} wrap_writer;

static int ascii_ieq(const char *a, const char *b) {
  for (;; a++, b++) {
    char x = *a, y = *b;
    if (x >= 'A' && x <= 'Z')
      x = (char)(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z')
      y = (char)(y - 'A' + 'a');
    if (x != y)
      return 0;
    if (x == '\0')
      return 1;
  }
}

int store_wrap_domain_ok(const char *address, const char *const *domains,
                         size_t domain_count) {
  if (domain_count == 0)
    return 1;
  /* The domain follows the last '@': a quoted local part may hold '@'. */
  const char *at = strrchr(address, '@');
  if (!at)
    return 1;
  for (size_t i = 0; i < domain_count; i++)
    if (ascii_ieq(at + 1, domains[i]))
      return 1;
  return 0;
}

static void writer_free(wrap_writer *w) {
  list_unlink(&w->link);
  for (size_t i = 0; i < w->rcpt_count; i++)
    mem_free(w->rcpts[i]);
  mem_free(w->rcpts);
  mem_free(w);
}

static int writer_new(conn *c, int delivery, const char *from,
                      const char *const *rcpts, size_t rcpt_count,
                      wrap_writer **out) {
  wrap_writer *w = mem_calloc(1, sizeof *w);
  if (!w)
    return MAILPROTO_ERR_NOMEM;
  list_init(&w->link);
  w->delivery = delivery;
  log_clean(w->from, sizeof w->from, from, strlen(from));
  if (rcpt_count > 0) {
    w->rcpts = mem_calloc(rcpt_count, sizeof *w->rcpts);
    if (!w->rcpts) {
      writer_free(w);
      return MAILPROTO_ERR_NOMEM;
    }
    for (size_t i = 0; i < rcpt_count; i++) {
      char clean[160];
      log_clean(clean, sizeof clean, rcpts[i], strlen(rcpts[i]));
      w->rcpts[i] = mem_malloc(strlen(clean) + 1);
      if (!w->rcpts[i]) {
        writer_free(w);
        return MAILPROTO_ERR_NOMEM;
      }
      strcpy(w->rcpts[i], clean);
      w->rcpt_count = i + 1;
    }
  }
  list_append(&c->writers, &w->link);
  *out = w;
  return 0;
}

/* ---- accounts ---- */

static int w_authenticate(void *ctx, mailproto_op *op, const char *authzid,
                          const char *authcid, const char *password,
                          size_t password_len, void **account) {
  conn *c = ctx;
  if (!HOOK(c, authenticate))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = HOOK(c, authenticate)(INNER(c)->ctx, op, authzid, authcid, password,
                                 password_len, account);
  if (rc < 0) {
    char user[96];
    conn_log(c, "auth failed user=%s: %s",
             log_clean(user, sizeof user, authcid, strlen(authcid)),
             mailproto_strerror(rc));
  }
  return rc;
}

static int w_lookup_secret(void *ctx, mailproto_op *op, const char *user,
                           char *secret, size_t secret_size, size_t *secret_len,
                           void **account) {
  conn *c = ctx;
  if (!HOOK(c, lookup_secret))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = HOOK(c, lookup_secret)(INNER(c)->ctx, op, user, secret, secret_size,
                                  secret_len, account);
  char name[sizeof c->secret_user];
  log_clean(name, sizeof name, user, strlen(user));
  if (rc < 0) {
    conn_log(c, "auth failed user=%s: %s", name, mailproto_strerror(rc));
  } else if (rc == 0) {
    /* The session checks the response itself (CRAM-MD5, APOP): a wrong
     * one shows as this account released before any auth-ok. */
    c->secret_account = *account;
    memcpy(c->secret_user, name, sizeof name);
  }
  return rc;
}

static int w_lookup_recipient(void *ctx, mailproto_op *op, const char *address,
                              void **account) {
  conn *c = ctx;
  const server_options *o = c->srv->opts;
  char clean[160];
  if (!store_wrap_domain_ok(address, o->domains, o->domain_count)) {
    conn_log(c, "rcpt %s rejected: not a local domain",
             log_clean(clean, sizeof clean, address, strlen(address)));
    return MAILPROTO_ERR_NOT_FOUND;
  }
  if (!HOOK(c, lookup_recipient))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = HOOK(c, lookup_recipient)(INNER(c)->ctx, op, address, account);
  if (rc < 0)
    conn_log(c, "rcpt %s rejected: %s",
             log_clean(clean, sizeof clean, address, strlen(address)),
             rc == MAILPROTO_ERR_NOT_FOUND ? "no such user"
                                           : mailproto_strerror(rc));
  return rc;
}

static void w_release_account(void *ctx, void *account) {
  conn *c = ctx;
  if (account && account == c->secret_account) {
    conn_log(c, "auth failed user=%s: wrong challenge response",
             c->secret_user);
    c->secret_account = NULL;
  }
  if (HOOK(c, release_account))
    HOOK(c, release_account)(INNER(c)->ctx, account);
}

/* ---- mailboxes: forwarded as they are ---- */

static int w_list(void *ctx, mailproto_op *op, void *account,
                  const char *pattern, unsigned flags) {
  conn *c = ctx;
  if (!HOOK(c, list))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, list)(INNER(c)->ctx, op, account, pattern, flags);
}

static int w_create(void *ctx, mailproto_op *op, void *account,
                    const char *name, unsigned special_use) {
  conn *c = ctx;
  if (!HOOK(c, create))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, create)(INNER(c)->ctx, op, account, name, special_use);
}

static int w_delete_mailbox(void *ctx, mailproto_op *op, void *account,
                            const char *name) {
  conn *c = ctx;
  if (!HOOK(c, delete_mailbox))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, delete_mailbox)(INNER(c)->ctx, op, account, name);
}

static int w_rename(void *ctx, mailproto_op *op, void *account,
                    const char *from, const char *to) {
  conn *c = ctx;
  if (!HOOK(c, rename))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, rename)(INNER(c)->ctx, op, account, from, to);
}

static int w_subscribe(void *ctx, mailproto_op *op, void *account,
                       const char *name, int subscribed) {
  conn *c = ctx;
  if (!HOOK(c, subscribe))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, subscribe)(INNER(c)->ctx, op, account, name, subscribed);
}

static int w_status(void *ctx, mailproto_op *op, void *account,
                    const char *name, mailproto_mailbox_status *status) {
  conn *c = ctx;
  if (!HOOK(c, status))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, status)(INNER(c)->ctx, op, account, name, status);
}

static int w_open(void *ctx, mailproto_op *op, void *account, const char *name,
                  unsigned flags, mailproto_store_notify_fn notify,
                  void *notify_arg, void **mailbox,
                  mailproto_mailbox_status *status) {
  conn *c = ctx;
  if (!HOOK(c, open))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, open)(INNER(c)->ctx, op, account, name, flags, notify,
                       notify_arg, mailbox, status);
}

static void w_close(void *ctx, void *mailbox) {
  conn *c = ctx;
  if (HOOK(c, close))
    HOOK(c, close)(INNER(c)->ctx, mailbox);
}

static int w_sync(void *ctx, mailproto_op *op, void *mailbox,
                  mailproto_mailbox_status *status) {
  conn *c = ctx;
  if (!HOOK(c, sync))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, sync)(INNER(c)->ctx, op, mailbox, status);
}

static int w_read(void *ctx, mailproto_op *op, void *mailbox, uint32_t uid,
                  uint64_t offset, size_t max, const uint8_t **data,
                  size_t *len) {
  conn *c = ctx;
  if (!HOOK(c, read))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, read)(INNER(c)->ctx, op, mailbox, uid, offset, max, data, len);
}

static int w_set_flags(void *ctx, mailproto_op *op, void *mailbox,
                       const mailproto_uid_range *ranges, size_t range_count,
                       mailproto_flag_mode mode, uint32_t flags,
                       const char *const *keywords, size_t keyword_count,
                       uint64_t unchanged_since) {
  conn *c = ctx;
  if (!HOOK(c, set_flags))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, set_flags)(INNER(c)->ctx, op, mailbox, ranges, range_count,
                            mode, flags, keywords, keyword_count,
                            unchanged_since);
}

static int w_expunge(void *ctx, mailproto_op *op, void *mailbox,
                     const mailproto_uid_range *ranges, size_t range_count,
                     unsigned flags) {
  conn *c = ctx;
  if (!HOOK(c, expunge))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, expunge)(INNER(c)->ctx, op, mailbox, ranges, range_count,
                          flags);
}

static int w_copy(void *ctx, mailproto_op *op, void *mailbox,
                  const mailproto_uid_range *ranges, size_t range_count,
                  const char *dest, int move, uint32_t *dest_uidvalidity) {
  conn *c = ctx;
  if (!HOOK(c, copy))
    return MAILPROTO_ERR_UNSUPPORTED;
  return HOOK(c, copy)(INNER(c)->ctx, op, mailbox, ranges, range_count, dest,
                       move, dest_uidvalidity);
}

/* ---- writing messages ---- */

static int w_append_begin(void *ctx, mailproto_op *op, void *account,
                          const char *name, const mailproto_append_info *info,
                          void **writer) {
  conn *c = ctx;
  if (!HOOK(c, append_begin))
    return MAILPROTO_ERR_UNSUPPORTED;
  wrap_writer *w;
  int rc = writer_new(c, 0, name, NULL, 0, &w);
  if (rc < 0)
    return rc;
  rc = HOOK(c, append_begin)(INNER(c)->ctx, op, account, name, info, &w->inner);
  if (rc < 0) {
    writer_free(w);
    return rc;
  }
  /* Set now even if deferred: the caller only uses it after completion. */
  *writer = w;
  return rc;
}

static int w_deliver_begin(void *ctx, mailproto_op *op, void *const *accounts,
                           size_t account_count,
                           const mailproto_delivery_info *info, void **writer) {
  conn *c = ctx;
  if (!HOOK(c, deliver_begin))
    return MAILPROTO_ERR_UNSUPPORTED;
  wrap_writer *w;
  int rc =
      writer_new(c, 1, info->reverse_path, info->recipients, account_count, &w);
  if (rc < 0)
    return rc;
  rc = HOOK(c, deliver_begin)(INNER(c)->ctx, op, accounts, account_count, info,
                              &w->inner);
  if (rc < 0) {
    conn_log(c, "delivery failed to start: %s", mailproto_strerror(rc));
    writer_free(w);
    return rc;
  }
  *writer = w;
  return rc;
}

static int w_write(void *ctx, mailproto_op *op, void *writer,
                   const uint8_t *data, size_t len) {
  conn *c = ctx;
  wrap_writer *w = writer;
  if (!HOOK(c, write))
    return MAILPROTO_ERR_UNSUPPORTED;
  int rc = HOOK(c, write)(INNER(c)->ctx, op, w->inner, data, len);
  if (rc >= 0)
    w->bytes += len;
  return rc;
}

static int w_append_commit(void *ctx, mailproto_op *op, void *writer,
                           uint32_t *uidvalidity, uint32_t *uid) {
  conn *c = ctx;
  wrap_writer *w = writer;
  int rc = HOOK(c, append_commit)
               ? HOOK(c, append_commit)(INNER(c)->ctx, op, w->inner,
                                        uidvalidity, uid)
               : MAILPROTO_ERR_UNSUPPORTED;
  if (rc == 0)
    conn_log(c, "appended %llu bytes to %s", (unsigned long long)w->bytes,
             w->from);
  else if (rc < 0)
    conn_log(c, "append of %llu bytes to %s failed: %s",
             (unsigned long long)w->bytes, w->from, mailproto_strerror(rc));
  writer_free(w);
  return rc;
}

/* "a@x ok, b@y failed (no such object)", cut to fit. */
static void format_results(const wrap_writer *w, const int *results, int rc,
                           char *out, size_t size) {
  size_t n = 0;
  out[0] = '\0';
  for (size_t i = 0; i < w->rcpt_count && n + 1 < size; i++) {
    int r = rc == MAILPROTO_DEFERRED ? 1 : results[i];
    int k =
        snprintf(out + n, size - n, "%s%s %s%s%s", i ? ", " : "", w->rcpts[i],
                 r == 1   ? "pending"
                 : r == 0 ? "ok"
                          : "failed (",
                 r < 0 ? mailproto_strerror(r) : "", r < 0 ? ")" : "");
    if (k < 0)
      break;
    n += (size_t)k;
  }
}

static int w_deliver_commit(void *ctx, mailproto_op *op, void *writer,
                            int all_or_nothing, int *results) {
  conn *c = ctx;
  wrap_writer *w = writer;
  int rc = HOOK(c, deliver_commit)
               ? HOOK(c, deliver_commit)(INNER(c)->ctx, op, w->inner,
                                         all_or_nothing, results)
               : MAILPROTO_ERR_UNSUPPORTED;
  char who[LOG_LINE_MAX / 2];
  if (rc >= 0) {
    format_results(w, results, rc, who, sizeof who);
    conn_log(c, "delivery of %llu bytes from <%s> to %s",
             (unsigned long long)w->bytes, w->from, who);
  } else {
    conn_log(c, "delivery of %llu bytes from <%s> failed: %s",
             (unsigned long long)w->bytes, w->from, mailproto_strerror(rc));
  }
  writer_free(w);
  return rc;
}

static void w_abort(void *ctx, void *writer) {
  conn *c = ctx;
  wrap_writer *w = writer;
  if (HOOK(c, abort))
    HOOK(c, abort)(INNER(c)->ctx, w->inner);
  conn_log(c, "%s abandoned after %llu bytes",
           w->delivery ? "delivery" : "append", (unsigned long long)w->bytes);
  writer_free(w);
}

static void w_cancel(void *ctx, mailproto_op *op) {
  conn *c = ctx;
  if (HOOK(c, cancel))
    HOOK(c, cancel)(INNER(c)->ctx, op);
}

/* The optional hooks take no op and never defer: forwarded as they are
 * (a session chooses by their presence what it keeps itself, so the
 * wrapper offers them only when the backend has them: store_wrap_init). */
static int w_cache_get(void *ctx, void *mailbox, uint32_t uid,
                       const uint8_t **data, size_t *len) {
  conn *c = ctx;
  return HOOK(c, cache_get)(INNER(c)->ctx, mailbox, uid, data, len);
}

static int w_cache_put(void *ctx, void *mailbox, uint32_t uid,
                       const uint8_t *data, size_t len) {
  conn *c = ctx;
  return HOOK(c, cache_put)(INNER(c)->ctx, mailbox, uid, data, len);
}

static int w_message_get(void *ctx, void *mailbox, uint32_t uid,
                         mailproto_message_info *info) {
  conn *c = ctx;
  return HOOK(c, message_get)(INNER(c)->ctx, mailbox, uid, info);
}

#define WRAP_REQUIRED_OPS                                                      \
  .struct_size = sizeof(mailproto_store_ops), .authenticate = w_authenticate,  \
  .lookup_secret = w_lookup_secret, .lookup_recipient = w_lookup_recipient,    \
  .release_account = w_release_account, .list = w_list, .create = w_create,    \
  .delete_mailbox = w_delete_mailbox, .rename = w_rename,                      \
  .subscribe = w_subscribe, .status = w_status, .open = w_open,                \
  .close = w_close, .sync = w_sync, .read = w_read, .set_flags = w_set_flags,  \
  .expunge = w_expunge, .copy = w_copy, .append_begin = w_append_begin,        \
  .deliver_begin = w_deliver_begin, .write = w_write,                          \
  .append_commit = w_append_commit, .deliver_commit = w_deliver_commit,        \
  .abort = w_abort, .cancel = w_cancel

/* Every optional hook of the backend forwarded (the shipped stores have
 * them all). */
const mailproto_store_ops store_wrap_ops = {
    WRAP_REQUIRED_OPS,
    .cache_get = w_cache_get,
    .cache_put = w_cache_put,
    .message_get = w_message_get,
};

/* The same, each optional hook only if the backend has it. */
static const mailproto_store_ops wrap_ops_no_cache = {
    WRAP_REQUIRED_OPS,
    .message_get = w_message_get,
};
static const mailproto_store_ops wrap_ops_no_lookup = {
    WRAP_REQUIRED_OPS,
    .cache_get = w_cache_get,
    .cache_put = w_cache_put,
};
static const mailproto_store_ops wrap_ops_required = {WRAP_REQUIRED_OPS};

void store_wrap_init(conn *c) {
  const mailproto_store *in = INNER(c);
  int cache = HAS_OPTIONAL(in, cache_get) && HAS_OPTIONAL(in, cache_put);
  int lookup = HAS_OPTIONAL(in, message_get);
  c->store.ops = cache && lookup ? &store_wrap_ops
                 : cache         ? &wrap_ops_no_lookup
                 : lookup        ? &wrap_ops_no_cache
                                 : &wrap_ops_required;
  c->store.ctx = c;
  list_init(&c->writers);
}

void store_wrap_auth_ok(conn *c, const char *user) {
  char clean[96];
  conn_log(c, "auth ok user=%s",
           log_clean(clean, sizeof clean, user, strlen(user)));
  c->secret_account = NULL;
}

int store_wrap_busy(const conn *c) {
  return !list_empty(&c->writers);
}

void store_wrap_release(conn *c) {
  while (!list_empty(&c->writers))
    writer_free(LIST_ENTRY(c->writers.next, wrap_writer, link));
}
