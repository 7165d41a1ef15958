/*
 * The fault-injecting store wrapper (see faultstore.h).
 *
 * Each op call gets a record holding the wrapper's own op for the inner
 * call, every report the inner store made, and private out-parameters.
 * Delivering a record replays the reports into the caller's op, copies the
 * out-parameters, and completes the caller's op if it was deferred.
 */
#include "support/faultstore.h"

#include <string.h>

#include "core/alloc.h"
#include "core/op.h"
#include "store/store_call.h"

enum hook {
  H_AUTHENTICATE,
  H_LOOKUP_SECRET,
  H_LOOKUP_RECIPIENT,
  H_LIST,
  H_CREATE,
  H_DELETE,
  H_RENAME,
  H_SUBSCRIBE,
  H_STATUS,
  H_OPEN,
  H_SYNC,
  H_READ,
  H_SET_FLAGS,
  H_EXPUNGE,
  H_COPY,
  H_APPEND_BEGIN,
  H_DELIVER_BEGIN,
  H_WRITE,
  H_APPEND_COMMIT,
  H_DELIVER_COMMIT,
  H_COUNT
};

static const char *const hook_names[H_COUNT] = {
    "authenticate",  "lookup_secret", "lookup_recipient",
    "list",          "create",        "delete_mailbox",
    "rename",        "subscribe",     "status",
    "open",          "sync",          "read",
    "set_flags",     "expunge",       "copy",
    "append_begin",  "deliver_begin", "write",
    "append_commit", "deliver_commit"};

/* A writer handed to the caller: the inner writer plus what replaying a
 * deliver_commit needs to know. */
typedef struct fs_writer {
  void *inner;
  size_t accounts; /* 0 for an APPEND */
} fs_writer;

enum ev_type {
  EV_MAILBOX,
  EV_MESSAGE,
  EV_KEYWORD,
  EV_EXPUNGED,
  EV_MODIFIED,
  EV_UID_MAP
};

typedef struct fs_event {
  int type;
  unsigned attrs_or_index;
  uint32_t a, b;
  char *name;
  mailproto_message_info msg;
} fs_event;

enum { REC_WAITING, REC_READY };

typedef struct record {
  faultstore *f;
  struct record *next;
  mailproto_op inner;
  mailproto_op *outer;
  int hook;
  int state;
  int rc;
  int deferred; /* the caller was told DEFERRED */
  unsigned long turn;
  fs_event *events;
  size_t nevents, cap;
  /* Private out-parameters, copied to the caller's on delivery. */
  void *handle;
  void **out_handle;
  fs_writer *writer; /* a begin's new wrapper */
  mailproto_mailbox_status status;
  mailproto_mailbox_status *out_status;
  char secret[MAILPROTO_SECRET_MAX];
  char *out_secret;
  size_t secret_len, *out_secret_len;
  const uint8_t *data;
  const uint8_t **out_data;
  size_t len, *out_len;
  uint32_t u1, u2, *out_u1, *out_u2;
  int *results, *out_results;
  size_t nresults;
  int defer; /* answer this call deferred (defer_all or defer_nth) */
} record;

struct faultstore {
  mailproto_allocator alloc;
  mailproto_store inner;
  int defer_all;
  unsigned long defer_nth; /* defer only this call (1-based); 0: none */
  unsigned long calls;
  unsigned long fail_nth;
  int fail_nth_error;
  int hook_error[H_COUNT];
  uint32_t rng;
  unsigned fail_percent;
  int fail_random_error;
  unsigned long turn;
  record *head, *tail;
  size_t pending;
  /* faultstore_ops, less the optional hooks the inner store lacks (a
   * caller decides by the hook's presence what it must keep itself). */
  mailproto_store_ops ops;
};

/* ---- records ---- */

static int push_event(record *r, const fs_event *e) {
  if (r->nevents == r->cap) {
    size_t cap = r->cap ? r->cap * 2 : 8;
    fs_event *ev =
        mailproto_mem_reallocarray(&r->f->alloc, r->events, cap, sizeof *ev);
    if (!ev)
      return MAILPROTO_ERR_NOMEM;
    r->events = ev;
    r->cap = cap;
  }
  r->events[r->nevents++] = *e;
  return 0;
}

static int push_named(record *r, int type, unsigned v, const char *name) {
  fs_event e;
  memset(&e, 0, sizeof e);
  e.type = type;
  e.attrs_or_index = v;
  e.name = mailproto_mem_strdup(&r->f->alloc, name);
  if (!e.name)
    return MAILPROTO_ERR_NOMEM;
  int rc = push_event(r, &e);
  if (rc != 0)
    mailproto_mem_free(&r->f->alloc, e.name);
  return rc;
}

static int push_uids(record *r, int type, uint32_t a, uint32_t b) {
  fs_event e;
  memset(&e, 0, sizeof e);
  e.type = type;
  e.a = a;
  e.b = b;
  return push_event(r, &e);
}

static int on_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  return push_named(op->owner, EV_MAILBOX, mb->attributes, mb->name);
}

static int on_message(mailproto_op *op, const mailproto_message_info *m) {
  fs_event e;
  memset(&e, 0, sizeof e);
  e.type = EV_MESSAGE;
  e.msg = *m;
  return push_event(op->owner, &e);
}

static int on_keyword(mailproto_op *op, unsigned index, const char *name) {
  return push_named(op->owner, EV_KEYWORD, index, name);
}

static int on_expunged(mailproto_op *op, uint32_t uid) {
  return push_uids(op->owner, EV_EXPUNGED, uid, 0);
}

static int on_modified(mailproto_op *op, uint32_t uid) {
  return push_uids(op->owner, EV_MODIFIED, uid, 0);
}

static int on_uid_map(mailproto_op *op, uint32_t s, uint32_t d) {
  return push_uids(op->owner, EV_UID_MAP, s, d);
}

static int deliver(record *r);
static void unlink_record(faultstore *f, record *r);

/* The inner store finished an op it had deferred. */
static int on_complete(mailproto_op *op, int status) {
  record *r = op->owner;
  faultstore *f = r->f;
  r->rc = status;
  r->state = REC_READY;
  r->turn = f->turn;
  if (r->defer)
    return 0; /* the next faultstore_run_pending() passes it on */
  unlink_record(f, r);
  return deliver(r);
}

static const mailproto_op_sink inner_sink = {.mailbox = on_mailbox,
                                             .message = on_message,
                                             .keyword = on_keyword,
                                             .expunged = on_expunged,
                                             .modified = on_modified,
                                             .uid_map = on_uid_map,
                                             .complete = on_complete};

static void free_record(record *r) {
  const mailproto_allocator *a = &r->f->alloc;
  for (size_t i = 0; i < r->nevents; i++)
    mailproto_mem_free(a, r->events[i].name);
  mailproto_mem_free(a, r->events);
  mailproto_mem_free(a, r->results);
  mailproto_mem_free(a, r->writer);
  mailproto_mem_free(a, r);
}

static void link_record(faultstore *f, record *r) {
  r->next = NULL;
  if (f->tail)
    f->tail->next = r;
  else
    f->head = r;
  f->tail = r;
  f->pending++;
}

static void unlink_record(faultstore *f, record *r) {
  record **pp = &f->head, *prev = NULL;
  while (*pp && *pp != r) {
    prev = *pp;
    pp = &(*pp)->next;
  }
  if (!*pp)
    return;
  *pp = r->next;
  if (f->tail == r)
    f->tail = prev;
  f->pending--;
}

/* Gives back what the inner store handed out for a caller that will never
 * see it: the op failed while replaying, or was cancelled. */
static void drop_outputs(record *r) {
  const mailproto_store *in = &r->f->inner;
  if (r->rc != 0 || !r->handle)
    return;
  switch (r->hook) {
  case H_AUTHENTICATE:
  case H_LOOKUP_SECRET:
  case H_LOOKUP_RECIPIENT:
    mailproto_store_call_release_account(in, r->handle);
    break;
  case H_OPEN:
    mailproto_store_call_close(in, r->handle);
    break;
  case H_APPEND_BEGIN:
  case H_DELIVER_BEGIN:
    mailproto_store_call_abort(in, r->handle);
    break;
  default:
    break;
  }
  r->handle = NULL;
}

static int replay(record *r) {
  mailproto_op *op = r->outer;
  for (size_t i = 0; i < r->nevents; i++) {
    const fs_event *e = &r->events[i];
    int rc = 0;
    switch (e->type) {
    case EV_MAILBOX: {
      mailproto_mailbox_info mb;
      memset(&mb, 0, sizeof mb);
      mb.struct_size = sizeof mb;
      mb.name = e->name;
      mb.attributes = e->attrs_or_index;
      rc = mailproto_op_add_mailbox(op, &mb);
      break;
    }
    case EV_MESSAGE:
      rc = mailproto_op_add_message(op, &e->msg);
      break;
    case EV_KEYWORD:
      rc = mailproto_op_add_keyword(op, e->attrs_or_index, e->name);
      break;
    case EV_EXPUNGED:
      rc = mailproto_op_add_expunged(op, e->a);
      break;
    case EV_MODIFIED:
      rc = mailproto_op_add_modified(op, e->a);
      break;
    default:
      rc = mailproto_op_add_uid_map(op, e->a, e->b);
      break;
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void copy_outputs(record *r) {
  if (r->out_status)
    memcpy(r->out_status, &r->status,
           r->out_status->struct_size < sizeof r->status
               ? r->out_status->struct_size
               : sizeof r->status);
  if (r->out_secret_len) {
    memcpy(r->out_secret, r->secret, r->secret_len);
    *r->out_secret_len = r->secret_len;
  }
  if (r->out_data) {
    *r->out_data = r->data;
    *r->out_len = r->len;
  }
  if (r->out_u1)
    *r->out_u1 = r->u1;
  if (r->out_u2)
    *r->out_u2 = r->u2;
  for (size_t i = 0; r->out_results && i < r->nresults; i++)
    r->out_results[i] = r->results ? r->results[i] : r->rc;
  if (r->out_handle && r->rc == 0) {
    if (r->writer) {
      r->writer->inner = r->handle;
      *r->out_handle = r->writer;
      r->writer = NULL;
    } else {
      *r->out_handle = r->handle;
    }
    r->handle = NULL;
  }
}

/* Passes a finished record on to the caller and frees it. Returns what
 * the hook returns (not deferred) or what completing the op returned. */
static int deliver(record *r) {
  int rc = r->rc;
  if (rc == 0) {
    int replayed = replay(r);
    if (replayed != 0) {
      drop_outputs(r);
      rc = r->rc = replayed;
    }
  }
  copy_outputs(r);
  drop_outputs(r);
  mailproto_op *outer = r->outer;
  int deferred = r->deferred;
  free_record(r);
  return deferred ? mailproto_op_complete(outer, rc) : rc;
}

static uint32_t next_random(faultstore *f) {
  /* xorshift32: reproducible from the seed, good enough to pick faults. */
  uint32_t x = f->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return f->rng = x;
}

static int injected(faultstore *f, int hook) {
  f->calls++;
  if (f->fail_nth && f->calls == f->fail_nth)
    return f->fail_nth_error;
  if (f->hook_error[hook])
    return f->hook_error[hook];
  if (f->fail_percent && next_random(f) % 100 < f->fail_percent)
    return f->fail_random_error;
  return 0;
}

/*
 * Starts a call: counts it, injects a fault, allocates its record.
 * Returns 0 with *out set when the inner hook should run; otherwise the
 * hook's return value (an injected failure, deferred or not, or NOMEM).
 */
static int start(faultstore *f, mailproto_op *op, int hook, record **out) {
  *out = NULL;
  if (!op)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int fault = injected(f, hook);
  record *r = mailproto_mem_calloc(&f->alloc, 1, sizeof *r);
  if (!r)
    return MAILPROTO_ERR_NOMEM;
  r->f = f;
  r->outer = op;
  r->hook = hook;
  r->defer = f->defer_all || (f->defer_nth && f->calls == f->defer_nth);
  mailproto_op_init(&r->inner, &inner_sink, r);
  if (fault == 0) {
    *out = r;
    return 0;
  }
  r->rc = fault < 0 ? fault : MAILPROTO_ERR_IO;
  if (!r->defer) {
    free_record(r);
    return fault < 0 ? fault : MAILPROTO_ERR_IO;
  }
  r->state = REC_READY;
  r->deferred = 1;
  r->turn = f->turn;
  link_record(f, r);
  return MAILPROTO_DEFERRED;
}

/* Ends a call after the inner hook returned `rc`. */
static int finish(faultstore *f, record *r, int rc) {
  if (rc == MAILPROTO_DEFERRED) {
    r->state = REC_WAITING;
    r->deferred = 1;
    link_record(f, r);
    return MAILPROTO_DEFERRED;
  }
  r->rc = rc;
  if (r->defer) {
    r->state = REC_READY;
    r->deferred = 1;
    r->turn = f->turn;
    link_record(f, r);
    return MAILPROTO_DEFERRED;
  }
  return deliver(r);
}

/* ---- the hooks ---- */

static int fs_authenticate(void *ctx, mailproto_op *op, const char *authzid,
                           const char *authcid, const char *password,
                           size_t password_len, void **account) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_AUTHENTICATE, &r);
  if (rc != 0)
    return rc;
  r->out_handle = account;
  return finish(f, r,
                mailproto_store_call_authenticate(
                    &f->inner, &r->inner, H_AUTHENTICATE, authzid, authcid,
                    password, password_len, &r->handle));
}

static int fs_lookup_secret(void *ctx, mailproto_op *op, const char *user,
                            char *secret, size_t secret_size,
                            size_t *secret_len, void **account) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_LOOKUP_SECRET, &r);
  if (rc != 0)
    return rc;
  r->out_handle = account;
  r->out_secret = secret;
  r->out_secret_len = secret_len;
  size_t size = secret_size < sizeof r->secret ? secret_size : sizeof r->secret;
  return finish(f, r,
                mailproto_store_call_lookup_secret(
                    &f->inner, &r->inner, H_LOOKUP_SECRET, user, r->secret,
                    size, &r->secret_len, &r->handle));
}

static int fs_lookup_recipient(void *ctx, mailproto_op *op, const char *address,
                               void **account) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_LOOKUP_RECIPIENT, &r);
  if (rc != 0)
    return rc;
  r->out_handle = account;
  return finish(f, r,
                mailproto_store_call_lookup_recipient(&f->inner, &r->inner,
                                                      H_LOOKUP_RECIPIENT,
                                                      address, &r->handle));
}

static void fs_release_account(void *ctx, void *account) {
  faultstore *f = ctx;
  mailproto_store_call_release_account(&f->inner, account);
}

static int fs_list(void *ctx, mailproto_op *op, void *account,
                   const char *pattern, unsigned flags) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_LIST, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_list(&f->inner, &r->inner, H_LIST, account,
                                          pattern, flags));
}

static int fs_create(void *ctx, mailproto_op *op, void *account,
                     const char *name, unsigned special_use) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_CREATE, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_create(&f->inner, &r->inner, H_CREATE,
                                            account, name, special_use));
}

static int fs_delete(void *ctx, mailproto_op *op, void *account,
                     const char *name) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_DELETE, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_delete(&f->inner, &r->inner, H_DELETE,
                                            account, name));
}

static int fs_rename(void *ctx, mailproto_op *op, void *account,
                     const char *from, const char *to) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_RENAME, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_rename(&f->inner, &r->inner, H_RENAME,
                                            account, from, to));
}

static int fs_subscribe(void *ctx, mailproto_op *op, void *account,
                        const char *name, int subscribed) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_SUBSCRIBE, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_subscribe(&f->inner, &r->inner,
                                               H_SUBSCRIBE, account, name,
                                               subscribed));
}

static int fs_status(void *ctx, mailproto_op *op, void *account,
                     const char *name, mailproto_mailbox_status *status) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_STATUS, &r);
  if (rc != 0)
    return rc;
  r->out_status = status;
  return finish(f, r,
                mailproto_store_call_status(&f->inner, &r->inner, H_STATUS,
                                            account, name, &r->status));
}

static int fs_open(void *ctx, mailproto_op *op, void *account, const char *name,
                   unsigned flags, mailproto_store_notify_fn notify,
                   void *notify_arg, void **mailbox,
                   mailproto_mailbox_status *status) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_OPEN, &r);
  if (rc != 0)
    return rc;
  r->out_handle = mailbox;
  r->out_status = status;
  return finish(f, r,
                mailproto_store_call_open(&f->inner, &r->inner, H_OPEN, account,
                                          name, flags, notify, notify_arg,
                                          &r->handle, &r->status));
}

static void fs_close(void *ctx, void *mailbox) {
  faultstore *f = ctx;
  mailproto_store_call_close(&f->inner, mailbox);
}

static int fs_sync(void *ctx, mailproto_op *op, void *mailbox,
                   mailproto_mailbox_status *status) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_SYNC, &r);
  if (rc != 0)
    return rc;
  r->out_status = status;
  return finish(f, r,
                mailproto_store_call_sync(&f->inner, &r->inner, H_SYNC, mailbox,
                                          &r->status));
}

static int fs_read(void *ctx, mailproto_op *op, void *mailbox, uint32_t uid,
                   uint64_t offset, size_t max, const uint8_t **data,
                   size_t *len) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_READ, &r);
  if (rc != 0)
    return rc;
  r->out_data = data;
  r->out_len = len;
  return finish(f, r,
                mailproto_store_call_read(&f->inner, &r->inner, H_READ, mailbox,
                                          uid, offset, max, &r->data, &r->len));
}

static int fs_set_flags(void *ctx, mailproto_op *op, void *mailbox,
                        const mailproto_uid_range *ranges, size_t range_count,
                        mailproto_flag_mode mode, uint32_t flags,
                        const char *const *keywords, size_t keyword_count,
                        uint64_t unchanged_since) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_SET_FLAGS, &r);
  if (rc != 0)
    return rc;
  return finish(
      f, r,
      mailproto_store_call_set_flags(&f->inner, &r->inner, H_SET_FLAGS, mailbox,
                                     ranges, range_count, mode, flags, keywords,
                                     keyword_count, unchanged_since));
}

static int fs_expunge(void *ctx, mailproto_op *op, void *mailbox,
                      const mailproto_uid_range *ranges, size_t range_count,
                      unsigned flags) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_EXPUNGE, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_expunge(&f->inner, &r->inner, H_EXPUNGE,
                                             mailbox, ranges, range_count,
                                             flags));
}

static int fs_copy(void *ctx, mailproto_op *op, void *mailbox,
                   const mailproto_uid_range *ranges, size_t range_count,
                   const char *dest, int move, uint32_t *dest_uidvalidity) {
  faultstore *f = ctx;
  record *r;
  int rc = start(f, op, H_COPY, &r);
  if (rc != 0)
    return rc;
  r->out_u1 = dest_uidvalidity;
  return finish(f, r,
                mailproto_store_call_copy(&f->inner, &r->inner, H_COPY, mailbox,
                                          ranges, range_count, dest, move,
                                          &r->u1));
}

/* Starts a begin hook: its caller-facing wrapper is allocated up front so
 * a success can always be handed out. */
static int start_writer(faultstore *f, mailproto_op *op, int hook,
                        size_t accounts, void **writer, record **out) {
  int rc = start(f, op, hook, out);
  if (rc != 0)
    return rc;
  record *r = *out;
  r->writer = mailproto_mem_calloc(&f->alloc, 1, sizeof *r->writer);
  if (!r->writer) {
    free_record(r);
    return MAILPROTO_ERR_NOMEM;
  }
  r->writer->accounts = accounts;
  r->out_handle = writer;
  return 0;
}

static int fs_append_begin(void *ctx, mailproto_op *op, void *account,
                           const char *name, const mailproto_append_info *info,
                           void **writer) {
  faultstore *f = ctx;
  record *r;
  int rc = start_writer(f, op, H_APPEND_BEGIN, 0, writer, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_append_begin(&f->inner, &r->inner,
                                                  H_APPEND_BEGIN, account, name,
                                                  info, &r->handle));
}

static int fs_deliver_begin(void *ctx, mailproto_op *op, void *const *accounts,
                            size_t account_count,
                            const mailproto_delivery_info *info,
                            void **writer) {
  faultstore *f = ctx;
  record *r;
  int rc = start_writer(f, op, H_DELIVER_BEGIN, account_count, writer, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_deliver_begin(
                    &f->inner, &r->inner, H_DELIVER_BEGIN, accounts,
                    account_count, info, &r->handle));
}

static int fs_write(void *ctx, mailproto_op *op, void *writer,
                    const uint8_t *data, size_t len) {
  faultstore *f = ctx;
  fs_writer *w = writer;
  record *r;
  if (!w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = start(f, op, H_WRITE, &r);
  if (rc != 0)
    return rc;
  return finish(f, r,
                mailproto_store_call_write(&f->inner, &r->inner, H_WRITE,
                                           w->inner, data, len));
}

/* A commit consumes the writer whatever happens; an injected failure
 * aborts the inner one so nothing of the message becomes visible. */
static int fs_append_commit(void *ctx, mailproto_op *op, void *writer,
                            uint32_t *uidvalidity, uint32_t *uid) {
  faultstore *f = ctx;
  fs_writer *w = writer;
  record *r;
  if (!w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  void *inner = w->inner;
  mailproto_mem_free(&f->alloc, w);
  int rc = start(f, op, H_APPEND_COMMIT, &r);
  if (rc != 0) {
    mailproto_store_call_abort(&f->inner, inner);
    return rc;
  }
  r->out_u1 = uidvalidity;
  r->out_u2 = uid;
  return finish(f, r,
                mailproto_store_call_append_commit(&f->inner, &r->inner,
                                                   H_APPEND_COMMIT, inner,
                                                   &r->u1, &r->u2));
}

static int fs_deliver_commit(void *ctx, mailproto_op *op, void *writer,
                             int all_or_nothing, int *results) {
  faultstore *f = ctx;
  fs_writer *w = writer;
  record *r;
  if (!w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  void *inner = w->inner;
  size_t n = w->accounts;
  mailproto_mem_free(&f->alloc, w);
  int rc = start(f, op, H_DELIVER_COMMIT, &r);
  if (rc == 0) {
    r->results = mailproto_mem_calloc(&f->alloc, n, sizeof *r->results);
    if (!r->results) {
      free_record(r);
      rc = MAILPROTO_ERR_NOMEM;
    }
  }
  if (rc != 0) {
    mailproto_store_call_abort(&f->inner, inner);
    /* An injected failure fails every account; a deferred one says so
     * when it is delivered (copy_outputs fills them from rc). */
    for (size_t i = 0; rc < 0 && results && i < n; i++)
      results[i] = rc;
    if (rc == MAILPROTO_DEFERRED) {
      f->tail->out_results = results;
      f->tail->nresults = n;
    }
    return rc;
  }
  r->out_results = results;
  r->nresults = n;
  return finish(f, r,
                mailproto_store_call_deliver_commit(
                    &f->inner, &r->inner, H_DELIVER_COMMIT, inner,
                    all_or_nothing, r->results, n));
}

static void fs_abort(void *ctx, void *writer) {
  faultstore *f = ctx;
  fs_writer *w = writer;
  if (!w)
    return;
  mailproto_store_call_abort(&f->inner, w->inner);
  mailproto_mem_free(&f->alloc, w);
}

/* Drops a record the caller gave up on, undoing what it cannot receive. */
static void drop_record(faultstore *f, record *r) {
  unlink_record(f, r);
  if (r->state == REC_WAITING)
    mailproto_store_call_cancel(&f->inner, &r->inner);
  else
    drop_outputs(r);
  free_record(r);
}

static void fs_cancel(void *ctx, mailproto_op *op) {
  faultstore *f = ctx;
  for (record *r = f->head; r; r = r->next)
    if (r->outer == op) {
      drop_record(f, r);
      return;
    }
}

/* The cache hooks take no op and never defer: passed through, never
 * failed (a cache miss is not a fault the session could show). */
static int fs_cache_get(void *ctx, void *mailbox, uint32_t uid,
                        const uint8_t **data, size_t *len) {
  faultstore *f = ctx;
  return mailproto_store_call_cache_get(&f->inner, mailbox, uid, data, len);
}

static int fs_cache_put(void *ctx, void *mailbox, uint32_t uid,
                        const uint8_t *data, size_t len) {
  faultstore *f = ctx;
  return mailproto_store_call_cache_put(&f->inner, mailbox, uid, data, len);
}

/* The message lookup takes no op and never defers: passed through like
 * the cache hooks (the session relies on it for sizes and dates it no
 * longer keeps). */
static int fs_message_get(void *ctx, void *mailbox, uint32_t uid,
                          mailproto_message_info *info) {
  faultstore *f = ctx;
  mailproto_message_info got;
  int rc = mailproto_store_call_message_get(&f->inner, mailbox, uid, &got);
  if (rc == 0)
    *info = got;
  return rc;
}

static const mailproto_store_ops faultstore_ops = {
    sizeof(mailproto_store_ops),
    fs_authenticate,
    fs_lookup_secret,
    fs_lookup_recipient,
    fs_release_account,
    fs_list,
    fs_create,
    fs_delete,
    fs_rename,
    fs_subscribe,
    fs_status,
    fs_open,
    fs_close,
    fs_sync,
    fs_read,
    fs_set_flags,
    fs_expunge,
    fs_copy,
    fs_append_begin,
    fs_deliver_begin,
    fs_write,
    fs_append_commit,
    fs_deliver_commit,
    fs_abort,
    fs_cancel,
    fs_cache_get,
    fs_cache_put,
    fs_message_get,
};

/* ---- public API ---- */

int faultstore_new(const mailproto_store *inner, const mailproto_allocator *a,
                   faultstore **out) {
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!inner)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (!a)
    a = mailproto_default_allocator();
  faultstore *f = mailproto_mem_calloc(a, 1, sizeof *f);
  if (!f)
    return MAILPROTO_ERR_NOMEM;
  f->alloc = *a;
  f->inner = *inner;
  f->rng = 1;
  f->ops = faultstore_ops;
  if (!mailproto_store_has_message_get(inner))
    f->ops.message_get = NULL;
  *out = f;
  return 0;
}

void faultstore_free(faultstore *f) {
  if (!f)
    return;
  while (f->head)
    drop_record(f, f->head);
  mailproto_allocator a = f->alloc;
  mailproto_mem_free(&a, f);
}

void faultstore_store(faultstore *f, mailproto_store *out) {
  out->ops = &f->ops;
  out->ctx = f;
}

void faultstore_defer_nth(faultstore *f, unsigned long n) {
  f->defer_nth = n;
}

void faultstore_defer_all(faultstore *f, int on) {
  f->defer_all = on != 0;
}

void faultstore_fail_nth(faultstore *f, unsigned long n, int error) {
  f->fail_nth = n;
  f->fail_nth_error = error;
}

int faultstore_fail_hook(faultstore *f, const char *hook, int error) {
  if (!hook)
    return -1;
  if (strcmp(hook, "delete") == 0)
    hook = "delete_mailbox";
  for (int i = 0; i < H_COUNT; i++)
    if (strcmp(hook_names[i], hook) == 0) {
      f->hook_error[i] = error;
      return 0;
    }
  return -1;
}

void faultstore_fail_random(faultstore *f, uint32_t seed, unsigned percent,
                            int error) {
  /* xorshift never leaves 0, so 0 cannot be a state. */
  f->rng = seed ? seed : 0x9e3779b9u;
  f->fail_percent = percent > 100 ? 100 : percent;
  f->fail_random_error = error;
}

int faultstore_run_pending(faultstore *f) {
  unsigned long now = f->turn++;
  int done = 0;
  for (;;) {
    record *r = f->head;
    while (r && !(r->state == REC_READY && r->turn <= now))
      r = r->next;
    if (!r)
      return done;
    unlink_record(f, r);
    int rc = deliver(r);
    done++;
    if (rc < 0 && mailproto_is_fatal(rc))
      return rc;
  }
}

size_t faultstore_pending(const faultstore *f) {
  return f->pending;
}

unsigned long faultstore_calls(const faultstore *f) {
  return f->calls;
}
