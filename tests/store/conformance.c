/*
 * The store conformance suite (see conformance.h). Every test runs as a
 * Check loop test whose index picks the backend from a small registry,
 * so several backends can be tested in one process.
 */
#include "store/conformance.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/op.h"
#include "store/store_call.h"

/* ------------------------------------------------------------------ */
/* The recording op                                                    */
/* ------------------------------------------------------------------ */

enum { MAX_BACKENDS = 8, TURNS_MAX = 1000 };

static conformance_backend backends[MAX_BACKENDS];
static size_t backend_count;

typedef struct rec_box {
  char *name;
  unsigned attrs;
} rec_box;

typedef struct rec_kw {
  unsigned index;
  char *name;
} rec_kw;

typedef struct cx {
  mailproto_op op;
  const conformance_backend *b;
  void *handle;
  mailproto_store st;
  void *alice, *bob;
  int done, status;
  rec_box *boxes;
  size_t nboxes;
  mailproto_message_info *msgs;
  size_t nmsgs;
  rec_kw *kws;
  size_t nkws;
  uint32_t *exp;
  size_t nexp;
  uint32_t *mod;
  size_t nmod;
  uint32_t (*map)[2];
  size_t nmap;
} cx;

static void *grow(void *p, size_t n, size_t size) {
  void *q = realloc(p, (n + 1) * size);
  ck_assert_ptr_nonnull(q);
  return q;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  ck_assert_ptr_nonnull(p);
  memcpy(p, s, n);
  return p;
}

static int on_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  cx *c = op->owner;
  c->boxes = grow(c->boxes, c->nboxes, sizeof *c->boxes);
  c->boxes[c->nboxes].name = dup_str(mb->name);
  c->boxes[c->nboxes++].attrs = mb->attributes;
  return 0;
}

static int on_message(mailproto_op *op, const mailproto_message_info *m) {
  cx *c = op->owner;
  c->msgs = grow(c->msgs, c->nmsgs, sizeof *c->msgs);
  c->msgs[c->nmsgs++] = *m;
  return 0;
}

static int on_keyword(mailproto_op *op, unsigned index, const char *name) {
  cx *c = op->owner;
  c->kws = grow(c->kws, c->nkws, sizeof *c->kws);
  c->kws[c->nkws].index = index;
  c->kws[c->nkws++].name = dup_str(name);
  return 0;
}

static int on_expunged(mailproto_op *op, uint32_t uid) {
  cx *c = op->owner;
  c->exp = grow(c->exp, c->nexp, sizeof *c->exp);
  c->exp[c->nexp++] = uid;
  return 0;
}

static int on_modified(mailproto_op *op, uint32_t uid) {
  cx *c = op->owner;
  c->mod = grow(c->mod, c->nmod, sizeof *c->mod);
  c->mod[c->nmod++] = uid;
  return 0;
}

static int on_uid_map(mailproto_op *op, uint32_t s, uint32_t d) {
  cx *c = op->owner;
  c->map = grow(c->map, c->nmap, sizeof *c->map);
  c->map[c->nmap][0] = s;
  c->map[c->nmap++][1] = d;
  return 0;
}

static int on_complete(mailproto_op *op, int status) {
  cx *c = op->owner;
  c->done = 1;
  c->status = status;
  return 0;
}

static const mailproto_op_sink recorder = {.mailbox = on_mailbox,
                                           .message = on_message,
                                           .keyword = on_keyword,
                                           .expunged = on_expunged,
                                           .modified = on_modified,
                                           .uid_map = on_uid_map,
                                           .complete = on_complete};

static void forget(cx *c) {
  for (size_t i = 0; i < c->nboxes; i++)
    free(c->boxes[i].name);
  for (size_t i = 0; i < c->nkws; i++)
    free(c->kws[i].name);
  free(c->boxes);
  free(c->msgs);
  free(c->kws);
  free(c->exp);
  free(c->mod);
  free(c->map);
  c->boxes = NULL;
  c->msgs = NULL;
  c->kws = NULL;
  c->exp = c->mod = NULL;
  c->map = NULL;
  c->nboxes = c->nmsgs = c->nkws = c->nexp = c->nmod = c->nmap = 0;
}

/* Clears the records before a call. */
static void begin(cx *c) {
  forget(c);
  c->done = 0;
  c->status = 0;
  mailproto_op_init(&c->op, &recorder, c);
}

/* The call's final result: waits through turns for a deferred one. */
static int end(cx *c, int rc) {
  if (rc != MAILPROTO_DEFERRED) {
    ck_assert_int_le(rc, 0);
    return rc;
  }
  ck_assert_msg(c->b->turn != NULL, "%s deferred without a turn function",
                c->b->name);
  for (int i = 0; i < TURNS_MAX && !c->done; i++)
    c->b->turn(c->handle);
  ck_assert_msg(c->done, "%s: a deferred operation never completed",
                c->b->name);
  ck_assert_int_eq(c->op.state, MAILPROTO_OP_IDLE);
  return c->status;
}

static int do_auth(cx *c, const char *authz, const char *user, const char *pw,
                   void **acct) {
  begin(c);
  return end(c, mailproto_store_call_authenticate(&c->st, &c->op, 1, authz,
                                                  user, pw, strlen(pw), acct));
}

static cx *setup(int i) {
  cx *c = calloc(1, sizeof *c);
  ck_assert_ptr_nonnull(c);
  c->b = &backends[i];
  ck_assert_int_eq(c->b->create(c->b->arg, &c->st, &c->handle), 0);
  ck_assert_int_eq(do_auth(c, "", "alice", "secret", &c->alice), 0);
  ck_assert_int_eq(do_auth(c, "", "bob", "hunter2", &c->bob), 0);
  ck_assert_ptr_nonnull(c->alice);
  ck_assert_ptr_nonnull(c->bob);
  return c;
}

static void teardown(cx *c) {
  mailproto_store_call_release_account(&c->st, c->alice);
  mailproto_store_call_release_account(&c->st, c->bob);
  forget(c);
  c->b->destroy(c->handle);
  free(c);
}

/* ------------------------------------------------------------------ */
/* One helper per hook                                                 */
/* ------------------------------------------------------------------ */

static int do_list(cx *c, void *acct, const char *pattern, unsigned flags) {
  begin(c);
  return end(
      c, mailproto_store_call_list(&c->st, &c->op, 1, acct, pattern, flags));
}

static int do_create(cx *c, void *acct, const char *name, unsigned special) {
  begin(c);
  return end(
      c, mailproto_store_call_create(&c->st, &c->op, 1, acct, name, special));
}

static int do_delete(cx *c, void *acct, const char *name) {
  begin(c);
  return end(c, mailproto_store_call_delete(&c->st, &c->op, 1, acct, name));
}

static int do_rename(cx *c, void *acct, const char *from, const char *to) {
  begin(c);
  return end(c, mailproto_store_call_rename(&c->st, &c->op, 1, acct, from, to));
}

static int do_subscribe(cx *c, void *acct, const char *name, int on) {
  begin(c);
  return end(c,
             mailproto_store_call_subscribe(&c->st, &c->op, 1, acct, name, on));
}

static int do_status(cx *c, void *acct, const char *name,
                     mailproto_mailbox_status *st) {
  begin(c);
  return end(c, mailproto_store_call_status(&c->st, &c->op, 1, acct, name, st));
}

static void count_notify(void *arg) {
  ++*(int *)arg;
}

static int do_open(cx *c, void *acct, const char *name, unsigned flags,
                   int *notified, void **mbx, mailproto_mailbox_status *st) {
  begin(c);
  return end(c, mailproto_store_call_open(&c->st, &c->op, 1, acct, name, flags,
                                          notified ? count_notify : NULL,
                                          notified, mbx, st));
}

static int do_sync(cx *c, void *mbx, mailproto_mailbox_status *st) {
  begin(c);
  return end(c, mailproto_store_call_sync(&c->st, &c->op, 1, mbx, st));
}

static int do_read(cx *c, void *mbx, uint32_t uid, uint64_t off, size_t max,
                   const uint8_t **data, size_t *len) {
  begin(c);
  return end(c, mailproto_store_call_read(&c->st, &c->op, 1, mbx, uid, off, max,
                                          data, len));
}

static int do_flags(cx *c, void *mbx, uint32_t first, uint32_t last,
                    mailproto_flag_mode mode, uint32_t flags,
                    const char *const *kws, size_t nkw, uint64_t unchanged) {
  mailproto_uid_range r = {first, last};
  begin(c);
  return end(c,
             mailproto_store_call_set_flags(&c->st, &c->op, 1, mbx, &r, 1, mode,
                                            flags, kws, nkw, unchanged));
}

static int do_expunge(cx *c, void *mbx, uint32_t first, uint32_t last,
                      unsigned flags) {
  mailproto_uid_range r = {first, last};
  begin(c);
  return end(
      c, mailproto_store_call_expunge(&c->st, &c->op, 1, mbx, &r, 1, flags));
}

static int do_copy(cx *c, void *mbx, const mailproto_uid_range *r, size_t n,
                   const char *dest, int move, uint32_t *uv) {
  begin(c);
  return end(c, mailproto_store_call_copy(&c->st, &c->op, 1, mbx, r, n, dest,
                                          move, uv));
}

static int do_append_begin(cx *c, void *acct, const char *name,
                           const mailproto_append_info *info, void **w) {
  begin(c);
  return end(c, mailproto_store_call_append_begin(&c->st, &c->op, 1, acct, name,
                                                  info, w));
}

/* An APPEND with no flags, keywords or date. */
static const mailproto_append_info plain = {
    sizeof(mailproto_append_info), 0, NULL, 0, NULL, 0};

static int do_write(cx *c, void *w, const char *data, size_t len) {
  begin(c);
  return end(c, mailproto_store_call_write(&c->st, &c->op, 1, w,
                                           (const uint8_t *)data, len));
}

static int do_commit(cx *c, void *w, uint32_t *uv, uint32_t *uid) {
  begin(c);
  return end(c,
             mailproto_store_call_append_commit(&c->st, &c->op, 1, w, uv, uid));
}

/* A whole APPEND, written in chunks of `chunk` bytes. */
static int append_full(cx *c, void *acct, const char *name, uint32_t flags,
                       const char *const *kws, size_t nkw,
                       const mailproto_datetime *date, const char *data,
                       size_t chunk, uint32_t *uv, uint32_t *uid) {
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.flags = flags;
  info.keywords = kws;
  info.keyword_count = nkw;
  info.internal_date = date;
  info.size_hint = strlen(data);
  void *w = NULL;
  int rc = do_append_begin(c, acct, name, &info, &w);
  if (rc != 0)
    return rc;
  ck_assert_ptr_nonnull(w);
  size_t len = strlen(data);
  for (size_t off = 0; off < len; off += chunk) {
    size_t n = len - off < chunk ? len - off : chunk;
    rc = do_write(c, w, data + off, n);
    if (rc != 0) {
      mailproto_store_call_abort(&c->st, w);
      return rc;
    }
  }
  return do_commit(c, w, uv, uid);
}

/* Appends a plain message and returns its UID. */
static uint32_t add(cx *c, void *acct, const char *name, const char *data) {
  uint32_t uv = 0, uid = 0;
  ck_assert_int_eq(
      append_full(c, acct, name, 0, NULL, 0, NULL, data, 1000, &uv, &uid), 0);
  ck_assert_uint_ne(uv, 0);
  ck_assert_uint_ne(uid, 0);
  return uid;
}

static uint32_t add_flagged(cx *c, void *acct, const char *name, uint32_t flags,
                            const char *kw) {
  uint32_t uv = 0, uid = 0;
  const char *kws[1] = {kw};
  ck_assert_int_eq(append_full(c, acct, name, flags, kw ? kws : NULL,
                               kw ? 1 : 0, NULL, "Subject: x\r\n\r\nbody\r\n",
                               1000, &uv, &uid),
                   0);
  return uid;
}

static mailproto_mailbox_status status_of(cx *c, void *acct, const char *name) {
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_status(c, acct, name, &st), 0);
  ck_assert_uint_eq(st.struct_size, sizeof st);
  return st;
}

static void *open_rw(cx *c, void *acct, const char *name, int *notified) {
  void *mbx = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_open(c, acct, name, 0, notified, &mbx, &st), 0);
  ck_assert_ptr_nonnull(mbx);
  return mbx;
}

static void sync_ok(cx *c, void *mbx) {
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
}

/* Index of a listed mailbox, or -1. */
static int listed(const cx *c, const char *name) {
  for (size_t i = 0; i < c->nboxes; i++)
    if (strcmp(c->boxes[i].name, name) == 0)
      return (int)i;
  return -1;
}

/* The message the last call reported with `uid`, or NULL. */
static const mailproto_message_info *find_msg(const cx *c, uint32_t uid) {
  for (size_t i = 0; i < c->nmsgs; i++)
    if (c->msgs[i].uid == uid)
      return &c->msgs[i];
  return NULL;
}

/* The same, for a message that must have been reported. */
static const mailproto_message_info *msg(const cx *c, uint32_t uid) {
  static const mailproto_message_info none;
  const mailproto_message_info *m = find_msg(c, uid);
  ck_assert_msg(m != NULL, "UID %u was not reported", (unsigned)uid);
  return m ? m : &none;
}

static int expunged(const cx *c, uint32_t uid) {
  for (size_t i = 0; i < c->nexp; i++)
    if (c->exp[i] == uid)
      return 1;
  return 0;
}

/* Bit of keyword `name` in the last call's table, case-insensitively. */
static uint64_t kw_bit(const cx *c, const char *name) {
  for (size_t i = 0; i < c->nkws; i++) {
    const char *a = c->kws[i].name, *b = name;
    while (*a && *b && (*a | 0x20) == (*b | 0x20))
      a++, b++;
    if (!*a && !*b)
      return (uint64_t)1 << c->kws[i].index;
  }
  return 0;
}

/* Reads a whole message in pieces of `max` bytes. */
static size_t read_all(cx *c, void *mbx, uint32_t uid, size_t max, char *out,
                       size_t out_size) {
  size_t total = 0;
  for (;;) {
    const uint8_t *data = NULL;
    size_t len = 0;
    ck_assert_int_eq(do_read(c, mbx, uid, total, max, &data, &len), 0);
    ck_assert_uint_le(len, max);
    if (len == 0)
      break;
    ck_assert_uint_le(total + len, out_size);
    memcpy(out + total, data, len);
    total += len;
  }
  return total;
}

/* ------------------------------------------------------------------ */
/* Accounts                                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_authenticate_accepts_valid_password) {
  cx *c = setup(_i);
  void *a = NULL;
  ck_assert_int_eq(do_auth(c, "", "bob", "hunter2", &a), 0);
  ck_assert_ptr_nonnull(a);
  mailproto_store_call_release_account(&c->st, a);
  a = NULL;
  /* Acting as oneself is not proxy authorisation. */
  ck_assert_int_eq(do_auth(c, "alice", "alice", "secret", &a), 0);
  ck_assert_ptr_nonnull(a);
  /* The account works like the one from setup. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_status(c, a, "INBOX", &st), 0);
  mailproto_store_call_release_account(&c->st, a);
  teardown(c);
}
END_TEST

START_TEST(test_authenticate_rejects_bad_credentials) {
  cx *c = setup(_i);
  void *a = NULL;
  ck_assert_int_eq(do_auth(c, "", "alice", "wrong", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(do_auth(c, "", "alice", "secre", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(do_auth(c, "", "alice", "secret!", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(do_auth(c, "", "alice", "", &a), MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(do_auth(c, "", "alice", "hunter2", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_int_eq(do_auth(c, "", "nobody", "secret", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  /* Proxy authorisation is not supported: acting as bob fails. */
  ck_assert_int_eq(do_auth(c, "bob", "alice", "secret", &a),
                   MAILPROTO_ERR_AUTH_FAILED);
  ck_assert_ptr_null(a);
  /* The password is counted, not NUL-terminated. */
  begin(c);
  ck_assert_int_eq(
      end(c, mailproto_store_call_authenticate(&c->st, &c->op, 1, "", "alice",
                                               "secretXYZ", 6, &a)),
      0);
  mailproto_store_call_release_account(&c->st, a);
  teardown(c);
}
END_TEST

START_TEST(test_lookup_secret_returns_password) {
  cx *c = setup(_i);
  char secret[MAILPROTO_SECRET_MAX];
  size_t len = 0;
  void *a = NULL;
  begin(c);
  ck_assert_int_eq(
      end(c, mailproto_store_call_lookup_secret(
                 &c->st, &c->op, 1, "bob", secret, sizeof secret, &len, &a)),
      0);
  ck_assert_uint_eq(len, 7);
  ck_assert_int_eq(memcmp(secret, "hunter2", 7), 0);
  ck_assert_ptr_nonnull(a);
  mailproto_store_call_release_account(&c->st, a);
  a = NULL;
  begin(c);
  int rc =
      end(c, mailproto_store_call_lookup_secret(
                 &c->st, &c->op, 1, "nobody", secret, sizeof secret, &len, &a));
  ck_assert_msg(rc == MAILPROTO_ERR_AUTH_FAILED ||
                    rc == MAILPROTO_ERR_NOT_FOUND,
                "unknown user: %d", rc);
  ck_assert_ptr_null(a);
  /* A buffer too small for the secret is never overrun. */
  memset(secret, 'z', sizeof secret);
  begin(c);
  rc = end(c, mailproto_store_call_lookup_secret(&c->st, &c->op, 1, "bob",
                                                 secret, 3, &len, &a));
  ck_assert_int_lt(rc, 0);
  ck_assert_int_eq(secret[3], 'z');
  ck_assert_ptr_null(a);
  teardown(c);
}
END_TEST

START_TEST(test_lookup_recipient_maps_address_to_account) {
  cx *c = setup(_i);
  void *a = NULL;
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_lookup_recipient(
                              &c->st, &c->op, 1, "alice@example.org", &a)),
                   0);
  ck_assert_ptr_nonnull(a);
  /* The account is alice's: a delivery there shows up in her INBOX. */
  mailproto_mailbox_status before = status_of(c, c->alice, "INBOX");
  add(c, a, "INBOX", "x\r\n");
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages,
                    before.messages + 1);
  mailproto_store_call_release_account(&c->st, a);
  a = NULL;
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_lookup_recipient(
                              &c->st, &c->op, 1, "carol@example.org", &a)),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_ptr_null(a);
  teardown(c);
}
END_TEST

START_TEST(test_release_account_keeps_other_handles) {
  cx *c = setup(_i);
  void *a1 = NULL, *a2 = NULL;
  ck_assert_int_eq(do_auth(c, "", "alice", "secret", &a1), 0);
  ck_assert_int_eq(do_auth(c, "", "alice", "secret", &a2), 0);
  mailproto_store_call_release_account(&c->st, a1);
  add(c, a2, "INBOX", "still works\r\n");
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  mailproto_store_call_release_account(&c->st, a2);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Mailboxes                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_list_reports_inbox_always) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_str_eq(c->boxes[0].name, "INBOX");
  ck_assert_uint_eq(c->boxes[0].attrs & MAILPROTO_MBOX_NOSELECT, 0);
  ck_assert_int_eq(do_list(c, c->alice, "inbox", 0), 0);
  ck_assert_int_ge(listed(c, "INBOX"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "%", 0), 0);
  ck_assert_int_ge(listed(c, "INBOX"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "nothing*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 0);
  teardown(c);
}
END_TEST

START_TEST(test_list_matches_star_and_percent) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "a", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "a/b", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "a/b/c", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "b", 0), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 5);
  ck_assert_int_eq(do_list(c, c->alice, "%", 0), 0);
  ck_assert_uint_eq(c->nboxes, 3);
  ck_assert_int_ge(listed(c, "INBOX"), 0);
  ck_assert_int_ge(listed(c, "a"), 0);
  ck_assert_int_ge(listed(c, "b"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "a/%", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_int_ge(listed(c, "a/b"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "a/*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 2);
  ck_assert_int_ge(listed(c, "a/b/c"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*c", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_int_eq(do_list(c, c->alice, "%/%", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  /* Bob sees only his own. */
  ck_assert_int_eq(do_list(c, c->bob, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  teardown(c);
}
END_TEST

START_TEST(test_list_reports_child_attributes) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "p", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "p/q", 0), 0);
  /* A parent created on the way exists in some form: as a mailbox or as a
   * NOSELECT hierarchy level. */
  ck_assert_int_eq(do_create(c, c->alice, "x/y/z", 0), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  int p = listed(c, "p"), q = listed(c, "p/q"), x = listed(c, "x"),
      y = listed(c, "x/y");
  ck_assert_int_ge(p, 0);
  ck_assert_int_ge(q, 0);
  ck_assert_int_ge(x, 0);
  ck_assert_int_ge(y, 0);
  ck_assert_uint_ne(c->boxes[p].attrs & MAILPROTO_MBOX_HAS_CHILDREN, 0);
  ck_assert_uint_eq(c->boxes[p].attrs & MAILPROTO_MBOX_HAS_NO_CHILDREN, 0);
  ck_assert_uint_ne(c->boxes[q].attrs & MAILPROTO_MBOX_HAS_NO_CHILDREN, 0);
  ck_assert_uint_eq(c->boxes[q].attrs & MAILPROTO_MBOX_HAS_CHILDREN, 0);
  ck_assert_uint_ne(c->boxes[x].attrs & MAILPROTO_MBOX_HAS_CHILDREN, 0);
  ck_assert_uint_eq(c->boxes[q].attrs & MAILPROTO_MBOX_NOSELECT, 0);
  /* What LIST says about selectability is what status says. */
  char names[8][16];
  unsigned attrs[8];
  size_t n = c->nboxes;
  ck_assert_uint_le(n, 8);
  for (size_t i = 0; i < n; i++) {
    snprintf(names[i], sizeof names[i], "%s", c->boxes[i].name);
    attrs[i] = c->boxes[i].attrs;
  }
  for (size_t i = 0; i < n; i++) {
    mailproto_mailbox_status st;
    int rc = do_status(c, c->alice, names[i], &st);
    if (attrs[i] & MAILPROTO_MBOX_NOSELECT)
      ck_assert_int_lt(rc, 0);
    else
      ck_assert_int_eq(rc, 0);
  }
  teardown(c);
}
END_TEST

START_TEST(test_list_subscribed_includes_nonexistent) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "news", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "other", 0), 0);
  ck_assert_int_eq(do_subscribe(c, c->alice, "news", 1), 0);
  ck_assert_int_eq(do_subscribe(c, c->alice, "gone", 1), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 2);
  int n = listed(c, "news"), g = listed(c, "gone");
  ck_assert_int_ge(n, 0);
  ck_assert_int_ge(g, 0);
  ck_assert_uint_ne(c->boxes[n].attrs & MAILPROTO_MBOX_SUBSCRIBED, 0);
  ck_assert_uint_eq(c->boxes[n].attrs & MAILPROTO_MBOX_NONEXISTENT, 0);
  ck_assert_uint_ne(c->boxes[g].attrs & MAILPROTO_MBOX_SUBSCRIBED, 0);
  ck_assert_uint_ne(c->boxes[g].attrs & MAILPROTO_MBOX_NONEXISTENT, 0);
  /* The pattern applies to subscriptions too. */
  ck_assert_int_eq(do_list(c, c->alice, "n*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  /* A plain LIST marks subscribed mailboxes. */
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_ne(
      c->boxes[listed(c, "news")].attrs & MAILPROTO_MBOX_SUBSCRIBED, 0);
  ck_assert_uint_eq(
      c->boxes[listed(c, "other")].attrs & MAILPROTO_MBOX_SUBSCRIBED, 0);
  ck_assert_int_eq(listed(c, "gone"), -1);
  teardown(c);
}
END_TEST

START_TEST(test_list_reports_special_use) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Sent", MAILPROTO_MBOX_SPECIAL_SENT),
                   0);
  ck_assert_int_eq(do_create(c, c->alice, "Bin", MAILPROTO_MBOX_SPECIAL_TRASH),
                   0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->boxes[listed(c, "Sent")].attrs &
                        MAILPROTO_MBOX_SPECIAL_USE_MASK,
                    MAILPROTO_MBOX_SPECIAL_SENT);
  ck_assert_uint_eq(c->boxes[listed(c, "Bin")].attrs &
                        MAILPROTO_MBOX_SPECIAL_USE_MASK,
                    MAILPROTO_MBOX_SPECIAL_TRASH);
  ck_assert_uint_eq(
      c->boxes[listed(c, "INBOX")].attrs & MAILPROTO_MBOX_SPECIAL_USE_MASK, 0);
  teardown(c);
}
END_TEST

START_TEST(test_create_makes_selectable_mailbox) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Work", 0), 0);
  mailproto_mailbox_status st = status_of(c, c->alice, "Work");
  ck_assert_uint_eq(st.messages, 0);
  ck_assert_uint_ne(st.uidvalidity, 0);
  ck_assert_uint_ge(st.uidnext, 1);
  ck_assert_int_eq(do_create(c, c->alice, "Work", 0), MAILPROTO_ERR_EXISTS);
  /* Names are per account. */
  ck_assert_int_eq(do_create(c, c->bob, "Work", 0), 0);
  /* UTF-8 names are names. */
  ck_assert_int_eq(do_create(c, c->alice, "Entw\xc3\xbcrfe", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "\xe6\x97\xa5\xe6\x9c\xac/x", 0), 0);
  status_of(c, c->alice, "Entw\xc3\xbcrfe");
  status_of(c, c->alice, "\xe6\x97\xa5\xe6\x9c\xac/x");
  teardown(c);
}
END_TEST

START_TEST(test_create_refuses_inbox) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "INBOX", 0), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_create(c, c->alice, "inbox", 0), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_create(c, c->alice, "InBoX", 0), MAILPROTO_ERR_EXISTS);
  /* ...and INBOX in any case is the inbox everywhere. */
  uint32_t uid = add(c, c->alice, "inbox", "hi\r\n");
  mailproto_mailbox_status st = status_of(c, c->alice, "Inbox");
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_gt(st.uidnext, uid);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_str_eq(c->boxes[0].name, "INBOX");
  teardown(c);
}
END_TEST

START_TEST(test_create_makes_missing_parents) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "a/b/c", 0), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_int_ge(listed(c, "a"), 0);
  ck_assert_int_ge(listed(c, "a/b"), 0);
  ck_assert_int_ge(listed(c, "a/b/c"), 0);
  status_of(c, c->alice, "a/b/c");
  /* The parent can still be created as a real mailbox (or already is). */
  int rc = do_create(c, c->alice, "a", 0);
  ck_assert(rc == 0 || rc == MAILPROTO_ERR_EXISTS);
  status_of(c, c->alice, "a");
  teardown(c);
}
END_TEST

static const char *const bad_names[] = {"",
                                        "/",
                                        "/a",
                                        "a/",
                                        "a//b",
                                        ".",
                                        "..",
                                        "a/..",
                                        "../a",
                                        "a/./b",
                                        "a\x01"
                                        "b",
                                        "a\tb",
                                        "a\nb",
                                        "a\x7f"
                                        "b",
                                        "\xc2\x85",
                                        "a\xc3",
                                        "\xc3\x28",
                                        "\xc0\xaf",
                                        "\xe0\x80\xaf",
                                        "\xed\xa0\x80",
                                        "\xf4\x90\x80\x80",
                                        "\xff",
                                        "\x80x",
                                        NULL};

START_TEST(test_create_rejects_bad_names) {
  cx *c = setup(_i);
  for (size_t i = 0; bad_names[i]; i++) {
    ck_assert_msg(do_create(c, c->alice, bad_names[i], 0) ==
                      MAILPROTO_ERR_BAD_NAME,
                  "create accepted bad name #%zu", i);
    ck_assert_msg(do_subscribe(c, c->alice, bad_names[i], 1) ==
                      MAILPROTO_ERR_BAD_NAME,
                  "subscribe accepted bad name #%zu", i);
  }
  char longname[MAILPROTO_MAILBOX_NAME_MAX + 2];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  ck_assert_int_eq(do_create(c, c->alice, longname, 0), MAILPROTO_ERR_BAD_NAME);
  /* The longest name a store must accept. */
  longname[MAILPROTO_MAILBOX_NAME_MAX] = '\0';
  ck_assert_int_eq(do_create(c, c->alice, longname, 0), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 2);
  ck_assert_int_eq(do_list(c, c->alice, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 0);
  teardown(c);
}
END_TEST

START_TEST(test_hooks_reject_bad_names) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "ok", 0), 0);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  add(c, c->alice, "INBOX", "m\r\n");
  for (size_t i = 0; bad_names[i]; i++) {
    const char *n = bad_names[i];
    mailproto_mailbox_status st;
    void *h = NULL, *w = NULL;
    uint32_t uv;
    mailproto_uid_range all = {1, UINT32_MAX};
    ck_assert_int_lt(do_status(c, c->alice, n, &st), 0);
    ck_assert_int_lt(do_open(c, c->alice, n, 0, NULL, &h, &st), 0);
    ck_assert_ptr_null(h);
    ck_assert_int_lt(do_delete(c, c->alice, n), 0);
    ck_assert_int_eq(do_rename(c, c->alice, "ok", n), MAILPROTO_ERR_BAD_NAME);
    ck_assert_int_lt(do_append_begin(c, c->alice, n, &plain, &w), 0);
    ck_assert_ptr_null(w);
    ck_assert_int_lt(do_copy(c, mbx, &all, 1, n, 0, &uv), 0);
  }
  mailproto_store_call_close(&c->st, mbx);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 2);
  ck_assert_uint_eq(status_of(c, c->alice, "ok").messages, 0);
  teardown(c);
}
END_TEST

START_TEST(test_delete_removes_mailbox_and_messages) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "tmp", 0), 0);
  add(c, c->alice, "tmp", "a\r\n");
  ck_assert_int_eq(do_delete(c, c->alice, "tmp"), 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_status(c, c->alice, "tmp", &st), MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_int_eq(listed(c, "tmp"), -1);
  ck_assert_int_eq(do_delete(c, c->alice, "tmp"), MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(do_delete(c, c->alice, "never"), MAILPROTO_ERR_NOT_FOUND);
  /* Re-created, it starts empty. */
  ck_assert_int_eq(do_create(c, c->alice, "tmp", 0), 0);
  ck_assert_uint_eq(status_of(c, c->alice, "tmp").messages, 0);
  teardown(c);
}
END_TEST

START_TEST(test_delete_refuses_inbox) {
  cx *c = setup(_i);
  add(c, c->alice, "INBOX", "keep\r\n");
  ck_assert_int_eq(do_delete(c, c->alice, "INBOX"), MAILPROTO_ERR_PERMISSION);
  ck_assert_int_eq(do_delete(c, c->alice, "inBox"), MAILPROTO_ERR_PERMISSION);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  teardown(c);
}
END_TEST

START_TEST(test_delete_parent_keeps_children) {
  cx *c = setup(_i);
  /* RFC 3501 6.3.4 and its example. */
  ck_assert_int_eq(do_create(c, c->alice, "foo", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "foo/bar", 0), 0);
  add(c, c->alice, "foo", "parent\r\n");
  add(c, c->alice, "foo/bar", "child\r\n");
  ck_assert_int_eq(do_delete(c, c->alice, "foo"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  int f = listed(c, "foo");
  ck_assert_int_ge(f, 0);
  ck_assert_uint_ne(c->boxes[f].attrs & MAILPROTO_MBOX_NOSELECT, 0);
  ck_assert_uint_ne(c->boxes[f].attrs & MAILPROTO_MBOX_HAS_CHILDREN, 0);
  mailproto_mailbox_status st;
  ck_assert_int_lt(do_status(c, c->alice, "foo", &st), 0);
  ck_assert_uint_eq(status_of(c, c->alice, "foo/bar").messages, 1);
  ck_assert_int_eq(do_delete(c, c->alice, "foo"), MAILPROTO_ERR_HAS_CHILDREN);
  ck_assert_int_eq(do_delete(c, c->alice, "foo/bar"), 0);
  ck_assert_int_eq(do_delete(c, c->alice, "foo"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  teardown(c);
}
END_TEST

START_TEST(test_delete_recreate_gives_new_uidvalidity) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "again", 0), 0);
  add(c, c->alice, "again", "1\r\n");
  uint32_t uid2 = add(c, c->alice, "again", "2\r\n");
  mailproto_mailbox_status a = status_of(c, c->alice, "again");
  ck_assert_int_eq(do_delete(c, c->alice, "again"), 0);
  ck_assert_int_eq(do_create(c, c->alice, "again", 0), 0);
  mailproto_mailbox_status b = status_of(c, c->alice, "again");
  /* RFC 3501 2.3.1.1: the new incarnation either never reuses a UID or has
   * a greater UIDVALIDITY. */
  ck_assert_msg(b.uidvalidity > a.uidvalidity ||
                    (b.uidvalidity == a.uidvalidity && b.uidnext > uid2),
                "UIDs of the deleted mailbox may come back");
  teardown(c);
}
END_TEST

START_TEST(test_rename_moves_children) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "a", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "a/b", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "a/b/c", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "ab", 0), 0);
  uint32_t uid = add(c, c->alice, "a/b", "moved along\r\n");
  ck_assert_int_eq(do_rename(c, c->alice, "a", "z/y"), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_int_eq(listed(c, "a"), -1);
  ck_assert_int_eq(listed(c, "a/b"), -1);
  ck_assert_int_eq(listed(c, "a/b/c"), -1);
  ck_assert_int_ge(listed(c, "ab"), 0); /* not a child */
  ck_assert_int_ge(listed(c, "z"), 0);
  ck_assert_int_ge(listed(c, "z/y"), 0);
  ck_assert_int_ge(listed(c, "z/y/b"), 0);
  ck_assert_int_ge(listed(c, "z/y/b/c"), 0);
  ck_assert_uint_eq(status_of(c, c->alice, "z/y/b").messages, 1);
  void *mbx = open_rw(c, c->alice, "z/y/b", NULL);
  ck_assert_uint_eq(c->nmsgs, 1);
  char buf[64];
  uid = c->msgs[0].uid;
  size_t n = read_all(c, mbx, uid, 100, buf, sizeof buf);
  ck_assert_uint_eq(n, 13);
  ck_assert_int_eq(memcmp(buf, "moved along\r\n", 13), 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_rename_inbox_moves_messages_only) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "INBOX/kid", 0), 0);
  add(c, c->alice, "INBOX", "one\r\n");
  add(c, c->alice, "INBOX", "two\r\n");
  mailproto_mailbox_status before = status_of(c, c->alice, "INBOX");
  ck_assert_int_eq(do_rename(c, c->alice, "INBOX", "old-mail"), 0);
  mailproto_mailbox_status in = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(in.messages, 0);
  /* RFC 3501 6.3.5: UIDs of INBOX are not reused. */
  ck_assert_msg(in.uidvalidity > before.uidvalidity ||
                    (in.uidvalidity == before.uidvalidity &&
                     in.uidnext >= before.uidnext),
                "INBOX UIDs may be reused after RENAME INBOX");
  ck_assert_uint_eq(status_of(c, c->alice, "old-mail").messages, 2);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_int_ge(listed(c, "INBOX"), 0);
  ck_assert_int_ge(listed(c, "INBOX/kid"), 0);
  ck_assert_int_ge(listed(c, "old-mail"), 0);
  ck_assert_int_eq(listed(c, "old-mail/kid"), -1);
  /* INBOX still takes mail. */
  add(c, c->alice, "INBOX", "three\r\n");
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  teardown(c);
}
END_TEST

START_TEST(test_rename_reports_errors) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "a", 0), 0);
  ck_assert_int_eq(do_create(c, c->alice, "b", 0), 0);
  ck_assert_int_eq(do_rename(c, c->alice, "missing", "c"),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "b"), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "a"), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "INBOX"), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "inbox"), MAILPROTO_ERR_EXISTS);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "a/b"), MAILPROTO_ERR_BAD_NAME);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "a/b/c"),
                   MAILPROTO_ERR_BAD_NAME);
  ck_assert_int_eq(do_rename(c, c->alice, "a", "../x"), MAILPROTO_ERR_BAD_NAME);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 3);
  /* A sibling with a common prefix is not a child. */
  ck_assert_int_eq(do_rename(c, c->alice, "a", "ab"), 0);
  teardown(c);
}
END_TEST

START_TEST(test_rename_never_reuses_uidvalidity) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "x", 0), 0);
  uint32_t uid = add(c, c->alice, "x", "1\r\n");
  mailproto_mailbox_status old = status_of(c, c->alice, "x");
  ck_assert_int_eq(do_delete(c, c->alice, "x"), 0);
  ck_assert_int_eq(do_create(c, c->alice, "y", 0), 0);
  add(c, c->alice, "y", "2\r\n");
  ck_assert_int_eq(do_rename(c, c->alice, "y", "x"), 0);
  mailproto_mailbox_status now = status_of(c, c->alice, "x");
  ck_assert_uint_eq(now.messages, 1);
  /* (name, UIDVALIDITY, UID) never names two messages (RFC 3501
   * 2.3.1.1): a client that cached the old "x" must notice. */
  ck_assert_msg(now.uidvalidity > old.uidvalidity ||
                    (now.uidvalidity == old.uidvalidity && now.uidnext > uid),
                "renamed mailbox reuses the old name's UIDVALIDITY");
  teardown(c);
}
END_TEST

START_TEST(test_subscribe_adds_and_removes_names) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_subscribe(c, c->alice, "future", 1), 0);
  ck_assert_int_eq(do_subscribe(c, c->alice, "future", 1), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_int_eq(do_subscribe(c, c->alice, "future", 0), 0);
  ck_assert_int_eq(do_subscribe(c, c->alice, "future", 0),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(do_subscribe(c, c->alice, "never", 0),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(do_list(c, c->alice, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 0);
  /* Subscriptions are per account. */
  ck_assert_int_eq(do_subscribe(c, c->bob, "INBOX", 1), 0);
  ck_assert_int_eq(do_list(c, c->alice, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 0);
  ck_assert_int_eq(do_list(c, c->bob, "*", MAILPROTO_LIST_SUBSCRIBED), 0);
  ck_assert_uint_eq(c->nboxes, 1);
  ck_assert_str_eq(c->boxes[0].name, "INBOX");
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Status, UIDs, mod-sequences                                         */
/* ------------------------------------------------------------------ */

START_TEST(test_status_counts_messages) {
  cx *c = setup(_i);
  mailproto_mailbox_status e = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(e.messages, 0);
  ck_assert_uint_eq(e.size, 0);
  add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_SEEN, NULL);
  uint32_t u2 = add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_DELETED, NULL);
  add_flagged(c, c->alice, "INBOX", 0, NULL);
  mailproto_mailbox_status st = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(st.messages, 3);
  ck_assert_uint_eq(st.unseen, 2);
  ck_assert_uint_eq(st.deleted, 1);
  ck_assert_uint_eq(st.recent, 3);
  ck_assert_uint_gt(st.uidnext, u2 + 1);
  ck_assert_uint_eq(st.uidvalidity, e.uidvalidity);
  ck_assert_uint_eq(st.size, 3 * strlen("Subject: x\r\n\r\nbody\r\n"));
  ck_assert_uint_gt(st.highest_modseq, e.highest_modseq);
  ck_assert_int_eq(do_status(c, c->alice, "nope", &st),
                   MAILPROTO_ERR_NOT_FOUND);
  /* Bob's INBOX is his own. */
  ck_assert_uint_eq(status_of(c, c->bob, "INBOX").messages, 0);
  teardown(c);
}
END_TEST

START_TEST(test_uid_strictly_ascending_never_reused) {
  cx *c = setup(_i);
  uint32_t prev = 0;
  for (int i = 0; i < 5; i++) {
    uint32_t uid = add(c, c->alice, "INBOX", "m\r\n");
    ck_assert_uint_gt(uid, prev);
    ck_assert_uint_lt(uid, status_of(c, c->alice, "INBOX").uidnext);
    prev = uid;
  }
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  /* Expunging the highest UID must not let it come back. */
  ck_assert_int_eq(do_expunge(c, mbx, prev, prev, 0), 0);
  mailproto_mailbox_status st = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(st.messages, 4);
  ck_assert_uint_gt(st.uidnext, prev);
  uint32_t next = add(c, c->alice, "INBOX", "n\r\n");
  ck_assert_uint_gt(next, prev);
  mailproto_store_call_close(&c->st, mbx);
  /* Nor after closing everything. */
  mbx = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(do_expunge(c, mbx, 1, UINT32_MAX, 0), 0);
  mailproto_store_call_close(&c->st, mbx);
  ck_assert_uint_gt(add(c, c->alice, "INBOX", "o\r\n"), next);
  teardown(c);
}
END_TEST

START_TEST(test_modseq_grows_with_every_change) {
  cx *c = setup(_i);
  uint64_t m0 = status_of(c, c->alice, "INBOX").highest_modseq;
  uint32_t u1 = add(c, c->alice, "INBOX", "a\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "b\r\n");
  uint64_t m1 = status_of(c, c->alice, "INBOX").highest_modseq;
  ck_assert_uint_gt(m1, m0);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  const mailproto_message_info *i1 = msg(c, u1), *i2 = msg(c, u2);
  ck_assert_ptr_nonnull(i1);
  ck_assert_ptr_nonnull(i2);
  ck_assert_uint_ge(i1->modseq, 1);
  ck_assert_uint_le(i2->modseq, m1);
  uint64_t old2 = i2->modseq;
  ck_assert_int_eq(do_flags(c, mbx, u1, u1, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN, NULL, 0, 0),
                   0);
  uint64_t m2 = status_of(c, c->alice, "INBOX").highest_modseq;
  ck_assert_uint_gt(m2, m1);
  sync_ok(c, mbx);
  ck_assert_ptr_nonnull(find_msg(c, u1));
  ck_assert_uint_eq(msg(c, u1)->modseq, m2);
  ck_assert_ptr_null(find_msg(c, u2)); /* unchanged: not reported */
  ck_assert_int_eq(do_expunge(c, mbx, u1, u1, 0), 0);
  uint64_t m3 = status_of(c, c->alice, "INBOX").highest_modseq;
  ck_assert_uint_gt(m3, m2);
  mailproto_store_call_close(&c->st, mbx);
  mbx = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_uint_eq(msg(c, u2)->modseq, old2);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Open, sync, watch                                                   */
/* ------------------------------------------------------------------ */

START_TEST(test_open_reports_messages_ascending) {
  cx *c = setup(_i);
  mailproto_datetime when = {1700000000, 120};
  const char *kws[] = {"$Work", "Later"};
  uint32_t uv, u1, u2, u3;
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", MAILPROTO_FLAG_FLAGGED,
                               kws, 2, &when, "A: 1\r\n\r\nx\r\n", 3, &uv, &u1),
                   0);
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", MAILPROTO_FLAG_SEEN,
                               kws + 1, 1, &when, "B\nC\n", 2, &uv, &u2),
                   0);
  ck_assert_int_eq(
      append_full(c, c->alice, "INBOX", 0, NULL, 0, NULL, "\r\n", 1, &uv, &u3),
      0);
  void *mbx = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_open(c, c->alice, "INBOX", 0, NULL, &mbx, &st), 0);
  ck_assert_uint_eq(st.messages, 3);
  ck_assert_uint_eq(st.uidvalidity, uv);
  ck_assert_uint_eq(c->nmsgs, 3);
  for (size_t i = 1; i < c->nmsgs; i++)
    ck_assert_uint_gt(c->msgs[i].uid, c->msgs[i - 1].uid);
  const mailproto_message_info *m1 = msg(c, u1), *m2 = msg(c, u2);
  ck_assert_uint_eq(m1->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(m1->keywords, kw_bit(c, "$Work") | kw_bit(c, "Later"));
  ck_assert_uint_ne(kw_bit(c, "$work"), 0);
  ck_assert_uint_eq(m2->keywords, kw_bit(c, "Later"));
  ck_assert_uint_eq(m1->internal_date.utc, when.utc);
  ck_assert_int_eq(m1->internal_date.tz_minutes, 120);
  ck_assert_uint_eq(m1->size, 11);
  ck_assert_uint_eq(m1->stored_size, 11);
  ck_assert_uint_eq(m2->stored_size, 4);
  ck_assert_uint_eq(m2->size, 6);
  ck_assert_uint_ge(m1->modseq, 1);
  ck_assert_uint_eq(msg(c, u3)->size, 2);
  mailproto_store_call_close(&c->st, mbx);
  void *h = NULL;
  ck_assert_int_eq(do_open(c, c->alice, "missing", 0, NULL, &h, &st),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_ptr_null(h);
  teardown(c);
}
END_TEST

START_TEST(test_open_exclusive_locks_out_exclusive) {
  cx *c = setup(_i);
  void *a = NULL, *b = NULL, *n = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      do_open(c, c->alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, NULL, &a, &st),
      0);
  ck_assert_int_eq(
      do_open(c, c->alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, NULL, &b, &st),
      MAILPROTO_ERR_IN_USE);
  ck_assert_ptr_null(b);
  ck_assert_int_eq(do_open(c, c->alice, "INBOX",
                           MAILPROTO_OPEN_EXCLUSIVE | MAILPROTO_OPEN_READONLY,
                           NULL, &b, &st),
                   MAILPROTO_ERR_IN_USE);
  /* Plain opens are not locked out; other mailboxes are not locked. */
  ck_assert_int_eq(do_open(c, c->alice, "INBOX", 0, NULL, &n, &st), 0);
  ck_assert_int_eq(
      do_open(c, c->bob, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, NULL, &b, &st), 0);
  mailproto_store_call_close(&c->st, b);
  b = NULL;
  mailproto_store_call_close(&c->st, a);
  ck_assert_int_eq(
      do_open(c, c->alice, "INBOX", MAILPROTO_OPEN_EXCLUSIVE, NULL, &b, &st),
      0);
  mailproto_store_call_close(&c->st, b);
  mailproto_store_call_close(&c->st, n);
  teardown(c);
}
END_TEST

START_TEST(test_sync_reports_new_messages_and_notifies) {
  cx *c = setup(_i);
  int notified = 0;
  void *mbx = open_rw(c, c->alice, "INBOX", &notified);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs + c->nexp + c->nkws, 0);
  uint32_t u1 = add(c, c->alice, "INBOX", "new\r\n");
  ck_assert_int_gt(notified, 0);
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, u1);
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_gt(st.uidnext, u1);
  /* Once told, never told again. */
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs + c->nexp, 0);
  /* Mail to another mailbox or account does not concern this handle. */
  notified = 0;
  add(c, c->bob, "INBOX", "bob's\r\n");
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 0);
  ck_assert_int_eq(notified, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_sync_reports_changes_of_others) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "2\r\n");
  int n1 = 0, n2 = 0;
  void *h1 = open_rw(c, c->alice, "INBOX", &n1);
  void *h2 = open_rw(c, c->alice, "INBOX", &n2);
  const char *kw[] = {"$Label1"};
  ck_assert_int_eq(do_flags(c, h2, u2, u2, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_ANSWERED, kw, 1, 0),
                   0);
  ck_assert_int_gt(n1, 0);
  ck_assert_int_eq(n2, 0); /* not told of its own change */
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, h1, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, u2);
  ck_assert_uint_ne(c->msgs[0].flags & MAILPROTO_FLAG_ANSWERED, 0);
  /* The new keyword comes with its index. */
  ck_assert_uint_eq(c->nkws, 1);
  ck_assert_str_eq(c->kws[0].name, "$Label1");
  ck_assert_uint_eq(c->msgs[0].keywords, (uint64_t)1 << c->kws[0].index);
  ck_assert_ptr_null(find_msg(c, u1));
  /* The changer learns of its change in its own sync as well. */
  ck_assert_int_eq(do_sync(c, h2, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, u2);
  ck_assert_int_eq(n2, 0);
  mailproto_store_call_close(&c->st, h1);
  mailproto_store_call_close(&c->st, h2);
  teardown(c);
}
END_TEST

START_TEST(test_sync_reports_expunges_to_every_handle) {
  cx *c = setup(_i);
  uint32_t u[4];
  for (int i = 0; i < 4; i++)
    u[i] = add(c, c->alice, "INBOX", "m\r\n");
  int n1 = 0, n2 = 0, n3 = 0;
  void *h1 = open_rw(c, c->alice, "INBOX", &n1);
  void *h2 = open_rw(c, c->alice, "INBOX", &n2);
  void *h3 = open_rw(c, c->alice, "INBOX", &n3);
  ck_assert_int_eq(do_expunge(c, h1, u[1], u[1], 0), 0);
  ck_assert_int_eq(n1, 0);
  ck_assert_int_gt(n2, 0);
  ck_assert_int_gt(n3, 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, h2, &st), 0);
  ck_assert_uint_eq(c->nexp, 1);
  ck_assert_uint_eq(c->exp[0], u[1]);
  ck_assert_uint_eq(st.messages, 3);
  ck_assert_int_eq(do_expunge(c, h1, u[2], u[3], 0), 0);
  ck_assert_int_eq(do_sync(c, h2, &st), 0);
  ck_assert_uint_eq(c->nexp, 2);
  ck_assert(expunged(c, u[2]) && expunged(c, u[3]));
  /* h3 synced nothing in between: it still learns of all three. */
  ck_assert_int_eq(do_sync(c, h3, &st), 0);
  ck_assert_uint_eq(c->nexp, 3);
  ck_assert(expunged(c, u[1]) && expunged(c, u[2]) && expunged(c, u[3]));
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_eq(c->nmsgs, 0);
  /* So does the expunger. */
  ck_assert_int_eq(do_sync(c, h1, &st), 0);
  ck_assert_uint_eq(c->nexp, 3);
  ck_assert_int_eq(do_sync(c, h3, &st), 0);
  ck_assert_uint_eq(c->nexp, 0);
  /* A handle opened after the expunge never hears of it. */
  void *h4 = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_int_eq(do_sync(c, h4, &st), 0);
  ck_assert_uint_eq(c->nexp, 0);
  mailproto_store_call_close(&c->st, h1);
  mailproto_store_call_close(&c->st, h2);
  mailproto_store_call_close(&c->st, h3);
  mailproto_store_call_close(&c->st, h4);
  teardown(c);
}
END_TEST

START_TEST(test_sync_hides_messages_that_came_and_went) {
  cx *c = setup(_i);
  add(c, c->alice, "INBOX", "old\r\n");
  void *h1 = open_rw(c, c->alice, "INBOX", NULL);
  void *h2 = open_rw(c, c->alice, "INBOX", NULL);
  uint32_t u = add(c, c->alice, "INBOX", "brief\r\n");
  sync_ok(c, h2);
  ck_assert_int_eq(do_expunge(c, h2, u, u, 0), 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, h1, &st), 0);
  /* h1 never knew u: neither new nor expunged for it. */
  ck_assert_ptr_null(find_msg(c, u));
  ck_assert(!expunged(c, u));
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_gt(st.uidnext, u);
  mailproto_store_call_close(&c->st, h1);
  mailproto_store_call_close(&c->st, h2);
  teardown(c);
}
END_TEST

START_TEST(test_sync_after_close_of_others) {
  cx *c = setup(_i);
  for (int i = 0; i < 3; i++)
    add(c, c->alice, "INBOX", "m\r\n");
  void *h1 = open_rw(c, c->alice, "INBOX", NULL);
  void *h2 = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(do_flags(c, h2, 1, UINT32_MAX, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_DELETED, NULL, 0, 0),
                   0);
  ck_assert_int_eq(
      do_expunge(c, h2, 1, UINT32_MAX, MAILPROTO_EXPUNGE_ONLY_DELETED), 0);
  mailproto_store_call_close(&c->st, h2);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, h1, &st), 0);
  ck_assert_uint_eq(c->nexp, 3);
  ck_assert_uint_eq(st.messages, 0);
  mailproto_store_call_close(&c->st, h1);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Read                                                                */
/* ------------------------------------------------------------------ */

START_TEST(test_read_honours_offset_and_max) {
  cx *c = setup(_i);
  const char *text = "From: a@b\r\nSubject: hello\r\n\r\nbody line\n";
  uint32_t uid = add(c, c->alice, "INBOX", text);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(do_read(c, mbx, uid, 0, 1 << 20, &data, &len), 0);
  ck_assert_uint_eq(len, strlen(text));
  ck_assert_int_eq(memcmp(data, text, len), 0);
  ck_assert_int_eq(do_read(c, mbx, uid, 11, 7, &data, &len), 0);
  ck_assert_uint_eq(len, 7);
  ck_assert_int_eq(memcmp(data, "Subject", 7), 0);
  ck_assert_int_eq(do_read(c, mbx, uid, strlen(text) - 2, 100, &data, &len), 0);
  ck_assert_uint_eq(len, 2);
  ck_assert_int_eq(do_read(c, mbx, uid, strlen(text), 100, &data, &len), 0);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(do_read(c, mbx, uid, strlen(text) + 100, 100, &data, &len),
                   0);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(do_read(c, mbx, uid, 3, 0, &data, &len), 0);
  ck_assert_uint_eq(len, 0);
  char buf[128];
  for (size_t max = 1; max < 8; max++) {
    size_t n = read_all(c, mbx, uid, max, buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(text));
    ck_assert_int_eq(memcmp(buf, text, n), 0);
  }
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_read_expunged_message_fails) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "one\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "two\r\n");
  void *h1 = open_rw(c, c->alice, "INBOX", NULL);
  void *h2 = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(do_expunge(c, h2, u1, u1, 0), 0);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(do_read(c, h2, u1, 0, 10, &data, &len),
                   MAILPROTO_ERR_EXPUNGED);
  ck_assert_int_eq(do_read(c, h1, u1, 0, 10, &data, &len),
                   MAILPROTO_ERR_EXPUNGED);
  ck_assert_int_eq(do_read(c, h1, u2, 0, 10, &data, &len), 0);
  ck_assert_uint_eq(len, 5);
  mailproto_store_call_close(&c->st, h1);
  mailproto_store_call_close(&c->st, h2);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Flags and keywords                                                  */
/* ------------------------------------------------------------------ */

/* The message's flags and keyword names as the mailbox reports them now. */
static const mailproto_message_info *reopen(cx *c, void **mbx, uint32_t uid) {
  mailproto_store_call_close(&c->st, *mbx);
  *mbx = open_rw(c, c->alice, "INBOX", NULL);
  return msg(c, uid);
}

START_TEST(test_set_flags_replace_add_remove) {
  cx *c = setup(_i);
  uint32_t u = add(c, c->alice, "INBOX", "m\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  const char *ab[] = {"alpha", "beta"}, *b[] = {"beta"}, *g[] = {"gamma"};
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_FLAGGED, ab, 2,
                            0),
                   0);
  const mailproto_message_info *m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(m->keywords, kw_bit(c, "alpha") | kw_bit(c, "beta"));
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_REMOVE,
                            MAILPROTO_FLAG_SEEN, b, 1, 0),
                   0);
  m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(m->keywords, kw_bit(c, "alpha"));
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_REPLACE,
                            MAILPROTO_FLAG_DRAFT, g, 1, 0),
                   0);
  m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE, MAILPROTO_FLAG_DRAFT);
  ck_assert_uint_eq(m->keywords, kw_bit(c, "gamma"));
  ck_assert_uint_ne(kw_bit(c, "gamma"), 0);
  /* Removing a keyword nobody has is fine. */
  const char *z[] = {"zeta"};
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_REMOVE, 0, z, 1, 0),
                   0);
  ck_assert_int_eq(
      do_flags(c, mbx, u, u, MAILPROTO_FLAGS_REPLACE, 0, NULL, 0, 0), 0);
  m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE, 0);
  ck_assert_uint_eq(m->keywords, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_skips_missing_uids) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "2\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(do_expunge(c, mbx, u1, u1, 0), 0);
  ck_assert_int_eq(do_flags(c, mbx, 1, UINT32_MAX, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN, NULL, 0, 0),
                   0);
  ck_assert_int_eq(do_flags(c, mbx, u2 + 10, u2 + 20, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_FLAGGED, NULL, 0, 0),
                   0);
  /* Several ranges, overlapping and out of order. */
  mailproto_uid_range r[] = {{u2, u2}, {1, u2}, {u2, u2 + 5}};
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_set_flags(
                              &c->st, &c->op, 1, mbx, r, 3, MAILPROTO_FLAGS_ADD,
                              MAILPROTO_FLAG_ANSWERED, NULL, 0, 0)),
                   0);
  const mailproto_message_info *m = reopen(c, &mbx, u2);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_ANSWERED);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_keyword_table_limit) {
  cx *c = setup(_i);
  uint32_t u = add(c, c->alice, "INBOX", "m\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  char names[MAILPROTO_KEYWORDS_MAX + 1][16];
  const char *kw[MAILPROTO_KEYWORDS_MAX + 1];
  for (int i = 0; i <= MAILPROTO_KEYWORDS_MAX; i++) {
    snprintf(names[i], sizeof names[i], "kw%d", i);
    kw[i] = names[i];
  }
  /* 65 new keywords at once: refused as a whole. */
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD, 0, kw,
                            MAILPROTO_KEYWORDS_MAX + 1, 0),
                   MAILPROTO_ERR_LIMIT);
  const mailproto_message_info *m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->keywords, 0);
  ck_assert_uint_eq(c->nkws, 0);
  /* 64 fit (one at a time as well as at once). */
  for (int i = 0; i < 32; i++)
    ck_assert_int_eq(
        do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD, 0, kw + i, 1, 0), 0);
  ck_assert_int_eq(
      do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD, 0, kw + 32, 32, 0), 0);
  m = reopen(c, &mbx, u);
  ck_assert_uint_eq(c->nkws, MAILPROTO_KEYWORDS_MAX);
  ck_assert_uint_eq(m->keywords, UINT64_MAX);
  /* A known one still works, in any case; the 65th does not. */
  const char *known[] = {"KW7"};
  ck_assert_int_eq(
      do_flags(c, mbx, u, u, MAILPROTO_FLAGS_REMOVE, 0, known, 1, 0), 0);
  ck_assert_int_eq(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD, 0,
                            kw + MAILPROTO_KEYWORDS_MAX, 1, 0),
                   MAILPROTO_ERR_LIMIT);
  m = reopen(c, &mbx, u);
  ck_assert_uint_eq(m->keywords, UINT64_MAX & ~kw_bit(c, "kw7"));
  ck_assert_uint_eq(c->nkws, MAILPROTO_KEYWORDS_MAX);
  /* Appending with a 65th keyword fails too, and adds nothing. */
  uint32_t uv, uid;
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0,
                               kw + MAILPROTO_KEYWORDS_MAX, 1, NULL, "x\r\n",
                               10, &uv, &uid),
                   MAILPROTO_ERR_LIMIT);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_rejects_invalid_keywords) {
  cx *c = setup(_i);
  uint32_t u = add(c, c->alice, "INBOX", "m\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  static const char *const bad[] = {
      "",   "two words", "(x", "x)",    "{x",   "\\Seen",   "a%",
      "a*", "q\"",       "]x", "tab\t", "\x7f", "\xc3\xa9", NULL};
  for (size_t i = 0; bad[i]; i++) {
    const char *kw[] = {"good", bad[i]};
    ck_assert_msg(do_flags(c, mbx, u, u, MAILPROTO_FLAGS_ADD,
                           MAILPROTO_FLAG_SEEN, kw, 2,
                           0) == MAILPROTO_ERR_BAD_NAME,
                  "keyword #%zu accepted", i);
    uint32_t uv, uid;
    ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0, kw + 1, 1, NULL,
                                 "x\r\n", 10, &uv, &uid),
                     MAILPROTO_ERR_BAD_NAME);
  }
  const mailproto_message_info *m = reopen(c, &mbx, u);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE, 0);
  ck_assert_uint_eq(c->nkws, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_keywords_ignore_case) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "2\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  const char *a[] = {"$Label1"}, *b[] = {"$LABEL1"};
  ck_assert_int_eq(do_flags(c, mbx, u1, u1, MAILPROTO_FLAGS_ADD, 0, a, 1, 0),
                   0);
  ck_assert_int_eq(do_flags(c, mbx, u2, u2, MAILPROTO_FLAGS_ADD, 0, b, 1, 0),
                   0);
  reopen(c, &mbx, u1);
  ck_assert_uint_eq(c->nkws, 1);
  ck_assert_uint_eq(msg(c, u1)->keywords, msg(c, u2)->keywords);
  ck_assert_uint_ne(msg(c, u1)->keywords, 0);
  ck_assert_int_eq(do_flags(c, mbx, u1, u2, MAILPROTO_FLAGS_REMOVE, 0, b, 1, 0),
                   0);
  reopen(c, &mbx, u1);
  ck_assert_uint_eq(msg(c, u1)->keywords | msg(c, u2)->keywords, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_unchanged_since) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "2\r\n");
  uint32_t u3 = add(c, c->alice, "INBOX", "3\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  uint64_t base = 0;
  for (size_t i = 0; i < c->nmsgs; i++)
    if (c->msgs[i].modseq > base)
      base = c->msgs[i].modseq;
  /* u2 changes after `base`... */
  ck_assert_int_eq(do_flags(c, mbx, u2, u2, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_FLAGGED, NULL, 0, 0),
                   0);
  /* ...so a conditional store at `base` leaves it alone (RFC 7162
   * 3.1.3) and reports it; the others change. */
  ck_assert_int_eq(do_flags(c, mbx, u1, u3, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN, NULL, 0, base),
                   0);
  ck_assert_uint_eq(c->nmod, 1);
  ck_assert_uint_eq(c->mod[0], u2);
  reopen(c, &mbx, u1);
  ck_assert_uint_ne(msg(c, u1)->flags & MAILPROTO_FLAG_SEEN, 0);
  ck_assert_uint_ne(msg(c, u3)->flags & MAILPROTO_FLAG_SEEN, 0);
  ck_assert_uint_eq(msg(c, u2)->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_gt(msg(c, u1)->modseq, base);
  /* With a current modseq everything passes. */
  uint64_t now = status_of(c, c->alice, "INBOX").highest_modseq;
  ck_assert_int_eq(do_flags(c, mbx, u1, u3, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_ANSWERED, NULL, 0, now),
                   0);
  ck_assert_uint_eq(c->nmod, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_set_flags_readonly_refused) {
  cx *c = setup(_i);
  uint32_t u = add(c, c->alice, "INBOX", "m\r\n");
  void *ro = NULL;
  mailproto_mailbox_status st;
  ck_assert_int_eq(
      do_open(c, c->alice, "INBOX", MAILPROTO_OPEN_READONLY, NULL, &ro, &st),
      0);
  ck_assert_int_eq(do_flags(c, ro, u, u, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN, NULL, 0, 0),
                   MAILPROTO_ERR_PERMISSION);
  ck_assert_int_eq(do_expunge(c, ro, u, u, 0), MAILPROTO_ERR_PERMISSION);
  mailproto_uid_range r = {u, u};
  uint32_t uv;
  ck_assert_int_eq(do_copy(c, ro, &r, 1, "INBOX", 1, &uv),
                   MAILPROTO_ERR_PERMISSION);
  /* Reading and copying are fine. */
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(do_read(c, ro, u, 0, 10, &data, &len), 0);
  ck_assert_int_eq(do_create(c, c->alice, "copy", 0), 0);
  ck_assert_int_eq(do_copy(c, ro, &r, 1, "copy", 0, &uv), 0);
  st = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_eq(st.unseen, 1);
  mailproto_store_call_close(&c->st, ro);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Expunge, copy, move                                                 */
/* ------------------------------------------------------------------ */

START_TEST(test_expunge_only_deleted) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_DELETED, NULL);
  uint32_t u3 = add(c, c->alice, "INBOX", "3\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(
      do_expunge(c, mbx, 1, UINT32_MAX, MAILPROTO_EXPUNGE_ONLY_DELETED), 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nexp, 1);
  ck_assert_uint_eq(c->exp[0], u2);
  ck_assert_uint_eq(st.messages, 2);
  ck_assert_uint_eq(st.deleted, 0);
  /* Only within the ranges. */
  ck_assert_int_eq(do_flags(c, mbx, u1, u3, MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_DELETED, NULL, 0, 0),
                   0);
  ck_assert_int_eq(do_expunge(c, mbx, u3, u3, MAILPROTO_EXPUNGE_ONLY_DELETED),
                   0);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  /* Without the flag (POP3) everything in the ranges goes. */
  ck_assert_int_eq(do_flags(c, mbx, u1, u1, MAILPROTO_FLAGS_REMOVE,
                            MAILPROTO_FLAG_DELETED, NULL, 0, 0),
                   0);
  ck_assert_int_eq(do_expunge(c, mbx, u1, u1, 0), 0);
  st = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(st.messages, 0);
  ck_assert_uint_eq(st.size, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_copy_maps_uids_and_keeps_flags) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Dest", 0), 0);
  uint32_t d0 = add(c, c->alice, "Dest", "already there\r\n");
  uint32_t u1 = add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_SEEN, "$Work");
  uint32_t u2 = add(c, c->alice, "INBOX", "skip\r\n");
  uint32_t u3 =
      add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_FLAGGED, "$Home");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_uid_range r[] = {{u1, u1}, {u3, u3 + 100}};
  uint32_t uv = 0;
  ck_assert_int_eq(do_copy(c, mbx, r, 2, "Dest", 0, &uv), 0);
  /* RFC 4315: pairs in ascending order, new UIDs above the old ones. */
  ck_assert_uint_eq(c->nmap, 2);
  ck_assert_uint_eq(c->map[0][0], u1);
  ck_assert_uint_eq(c->map[1][0], u3);
  ck_assert_uint_gt(c->map[0][1], d0);
  ck_assert_uint_gt(c->map[1][1], c->map[0][1]);
  uint32_t c1 = c->map[0][1], c3 = c->map[1][1];
  ck_assert_uint_eq(uv, status_of(c, c->alice, "Dest").uidvalidity);
  /* The source is untouched. */
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nexp + c->nmsgs, 0);
  ck_assert_uint_eq(st.messages, 3);
  void *dst = open_rw(c, c->alice, "Dest", NULL);
  ck_assert_uint_eq(c->nmsgs, 3);
  const mailproto_message_info *m1 = msg(c, c1), *m3 = msg(c, c3);
  ck_assert_ptr_nonnull(m1);
  ck_assert_ptr_nonnull(m3);
  ck_assert_uint_eq(m1->flags & MAILPROTO_FLAGS_SETTABLE, MAILPROTO_FLAG_SEEN);
  ck_assert_uint_eq(m3->flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_FLAGGED);
  ck_assert_uint_eq(m1->keywords, kw_bit(c, "$Work"));
  ck_assert_uint_eq(m3->keywords, kw_bit(c, "$Home"));
  ck_assert_uint_ne(m1->keywords, 0);
  /* Copies are new arrivals: \Recent for the first to open them. */
  ck_assert_uint_ne(m1->flags & MAILPROTO_FLAG_RECENT, 0);
  char buf[64];
  size_t n = read_all(c, dst, c1, 64, buf, sizeof buf);
  ck_assert_uint_eq(n, strlen("Subject: x\r\n\r\nbody\r\n"));
  (void)u2;
  mailproto_store_call_close(&c->st, dst);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_copy_missing_destination_copies_nothing) {
  cx *c = setup(_i);
  uint32_t u = add(c, c->alice, "INBOX", "m\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_uid_range r = {u, u};
  uint32_t uv = 0;
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "Nowhere", 0, &uv),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_uint_eq(c->nmap, 0);
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "Nowhere", 1, &uv),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  /* Another account's mailbox is not a destination. */
  ck_assert_int_eq(do_create(c, c->bob, "BobOnly", 0), 0);
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "BobOnly", 0, &uv),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_uint_eq(status_of(c, c->bob, "BobOnly").messages, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_copy_is_all_or_nothing) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Full", 0), 0);
  /* Fill the destination's keyword table. */
  uint32_t f = add(c, c->alice, "Full", "f\r\n");
  void *full = open_rw(c, c->alice, "Full", NULL);
  char names[MAILPROTO_KEYWORDS_MAX][16];
  const char *kw[MAILPROTO_KEYWORDS_MAX];
  for (int i = 0; i < MAILPROTO_KEYWORDS_MAX; i++) {
    snprintf(names[i], sizeof names[i], "full%d", i);
    kw[i] = names[i];
  }
  ck_assert_int_eq(do_flags(c, full, f, f, MAILPROTO_FLAGS_ADD, 0, kw,
                            MAILPROTO_KEYWORDS_MAX, 0),
                   0);
  mailproto_store_call_close(&c->st, full);
  uint32_t u1 = add(c, c->alice, "INBOX", "plain\r\n");
  uint32_t u2 = add_flagged(c, c->alice, "INBOX", 0, "$NotThere");
  mailproto_mailbox_status before = status_of(c, c->alice, "Full");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_uid_range r = {u1, u2};
  uint32_t uv;
  /* The second message's keyword does not fit: neither is copied. */
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "Full", 0, &uv), MAILPROTO_ERR_LIMIT);
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "Full", 1, &uv), MAILPROTO_ERR_LIMIT);
  mailproto_mailbox_status after = status_of(c, c->alice, "Full");
  ck_assert_uint_eq(after.messages, before.messages);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 2);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nexp, 0);
  /* The first alone fits. */
  r.last = u1;
  ck_assert_int_eq(do_copy(c, mbx, &r, 1, "Full", 0, &uv), 0);
  ck_assert_uint_eq(status_of(c, c->alice, "Full").messages,
                    before.messages + 1);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_move_expunges_from_source) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Archive", 0), 0);
  uint32_t u1 =
      add_flagged(c, c->alice, "INBOX", MAILPROTO_FLAG_ANSWERED, "$Done");
  uint32_t u2 = add(c, c->alice, "INBOX", "stays\r\n");
  int n_other = 0, n_arch = 0;
  void *mover = open_rw(c, c->alice, "INBOX", NULL);
  void *other = open_rw(c, c->alice, "INBOX", &n_other);
  void *arch = open_rw(c, c->alice, "Archive", &n_arch);
  mailproto_uid_range r = {u1, u1};
  uint32_t uv = 0;
  ck_assert_int_eq(do_copy(c, mover, &r, 1, "Archive", 1, &uv), 0);
  ck_assert_uint_eq(c->nmap, 1);
  uint32_t moved = c->map[0][1];
  ck_assert_int_gt(n_other, 0);
  ck_assert_int_gt(n_arch, 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, other, &st), 0);
  ck_assert_uint_eq(c->nexp, 1);
  ck_assert_uint_eq(c->exp[0], u1);
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_int_eq(do_sync(c, mover, &st), 0);
  ck_assert_uint_eq(c->nexp, 1);
  ck_assert_int_eq(do_sync(c, arch, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, moved);
  ck_assert_uint_eq(c->msgs[0].flags & MAILPROTO_FLAGS_SETTABLE,
                    MAILPROTO_FLAG_ANSWERED);
  ck_assert_uint_eq(c->msgs[0].keywords, kw_bit(c, "$Done"));
  ck_assert_uint_eq(st.uidvalidity, uv);
  const uint8_t *data;
  size_t len;
  ck_assert_int_eq(do_read(c, mover, u1, 0, 10, &data, &len),
                   MAILPROTO_ERR_EXPUNGED);
  ck_assert_int_eq(do_read(c, arch, moved, 0, 100, &data, &len), 0);
  ck_assert_uint_eq(len, strlen("Subject: x\r\n\r\nbody\r\n"));
  (void)u2;
  mailproto_store_call_close(&c->st, mover);
  mailproto_store_call_close(&c->st, other);
  mailproto_store_call_close(&c->st, arch);
  teardown(c);
}
END_TEST

START_TEST(test_copy_within_same_mailbox) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "1\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "2\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_uid_range all = {1, UINT32_MAX};
  uint32_t uv;
  ck_assert_int_eq(do_copy(c, mbx, &all, 1, "INBOX", 0, &uv), 0);
  ck_assert_uint_eq(c->nmap, 2);
  ck_assert_uint_gt(c->map[0][1], u2);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(st.messages, 4);
  ck_assert_uint_eq(c->nmsgs, 2);
  /* Move within: the originals go, copies with new UIDs stay. */
  ck_assert_int_eq(do_copy(c, mbx, &all, 1, "INBOX", 1, &uv), 0);
  ck_assert_uint_eq(c->nmap, 4);
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(st.messages, 4);
  ck_assert_uint_eq(c->nexp, 4);
  ck_assert(expunged(c, u1) && expunged(c, u2));
  ck_assert_uint_eq(c->nmsgs, 4);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Append and deliver                                                  */
/* ------------------------------------------------------------------ */

START_TEST(test_append_commit_assigns_uid) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Drafts", 0), 0);
  mailproto_mailbox_status before = status_of(c, c->alice, "Drafts");
  mailproto_datetime when = {1234567890, -300};
  const char *kw[] = {"$Draft1"};
  uint32_t uv = 0, uid = 0;
  ck_assert_int_eq(append_full(c, c->alice, "NoSuchBox", 0, NULL, 0, NULL, "x",
                               1, &uv, &uid),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(append_full(c, c->alice, "Drafts", MAILPROTO_FLAG_DRAFT, kw,
                               1, &when, "To: x\r\n\r\nhi\r\n", 4, &uv, &uid),
                   0);
  ck_assert_uint_eq(uv, before.uidvalidity);
  ck_assert_uint_ge(uid, before.uidnext);
  mailproto_mailbox_status st = status_of(c, c->alice, "Drafts");
  ck_assert_uint_eq(st.messages, 1);
  ck_assert_uint_gt(st.uidnext, uid);
  void *mbx = open_rw(c, c->alice, "Drafts", NULL);
  const mailproto_message_info *m = msg(c, uid);
  ck_assert_ptr_nonnull(m);
  ck_assert_uint_eq(m->flags & MAILPROTO_FLAGS_SETTABLE, MAILPROTO_FLAG_DRAFT);
  ck_assert_uint_eq(m->keywords, kw_bit(c, "$Draft1"));
  ck_assert_int_eq(m->internal_date.utc, when.utc);
  ck_assert_int_eq(m->internal_date.tz_minutes, -300);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_append_abort_leaves_nothing) {
  cx *c = setup(_i);
  mailproto_mailbox_status before = status_of(c, c->alice, "INBOX");
  void *w = NULL;
  ck_assert_int_eq(do_append_begin(c, c->alice, "INBOX", &plain, &w), 0);
  ck_assert_int_eq(do_write(c, w, "half a message", 14), 0);
  mailproto_store_call_abort(&c->st, w);
  mailproto_mailbox_status after = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(after.messages, before.messages);
  ck_assert_uint_eq(after.size, before.size);
  /* An abort right after begin is fine too. */
  ck_assert_int_eq(do_append_begin(c, c->alice, "INBOX", &plain, &w), 0);
  mailproto_store_call_abort(&c->st, w);
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 0);
  teardown(c);
}
END_TEST

START_TEST(test_append_invisible_until_commit) {
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Box", 0), 0);
  int notified = 0;
  void *mbx = open_rw(c, c->alice, "Box", &notified);
  void *w = NULL;
  ck_assert_int_eq(do_append_begin(c, c->alice, "Box", &plain, &w), 0);
  ck_assert_int_eq(do_write(c, w, "Subject: pending\r\n\r\n", 20), 0);
  /* While the writer is open: status, sync, open and list show nothing. */
  mailproto_mailbox_status st = status_of(c, c->alice, "Box");
  ck_assert_uint_eq(st.messages, 0);
  ck_assert_uint_eq(st.size, 0);
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 0);
  void *other = NULL;
  ck_assert_int_eq(
      do_open(c, c->alice, "Box", MAILPROTO_OPEN_READONLY, NULL, &other, &st),
      0);
  ck_assert_uint_eq(c->nmsgs, 0);
  ck_assert_uint_eq(st.messages, 0);
  mailproto_store_call_close(&c->st, other);
  ck_assert_int_eq(do_list(c, c->alice, "*", 0), 0);
  ck_assert_uint_eq(c->nboxes, 2);
  ck_assert_int_eq(notified, 0);
  ck_assert_int_eq(do_write(c, w, "body\r\n", 6), 0);
  uint32_t uv, uid;
  ck_assert_int_eq(do_commit(c, w, &uv, &uid), 0);
  ck_assert_int_gt(notified, 0);
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, uid);
  ck_assert_uint_eq(c->msgs[0].size, 26);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

/* The octets of `text` as the sessions send it: every line end, a bare CR
 * or LF as much as a CRLF, goes out as CRLF. */
static uint64_t sent_size(const char *text) {
  uint64_t n = 0;
  int after_cr = 0;
  for (const char *p = text; *p; p++) {
    if (*p == '\n' && after_cr)
      n += 0; /* the LF of a CRLF went out with its CR */
    else
      n += *p == '\r' || *p == '\n' ? 2 : 1;
    after_cr = *p == '\r';
  }
  return n;
}

/* RFC822.SIZE is what the sessions send: a bare CR counts two like a bare
 * LF, whatever chunks the message was written in (a CR ending a chunk may
 * be half of a CRLF or alone), also as the last byte. */
START_TEST(test_append_counts_bare_cr_twice) {
  cx *c = setup(_i);
  static const char text[] = "S: x\r\ra\rb\r\n\r\rc\n\rd\r";
  ck_assert_uint_eq(sent_size(text), strlen(text) + 8);
  uint32_t uv, uids[sizeof text];
  for (size_t chunk = 1; chunk < sizeof text; chunk++)
    ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0, NULL, 0, NULL, text,
                                 chunk, &uv, &uids[chunk]),
                     0);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  for (size_t chunk = 1; chunk < sizeof text; chunk++) {
    const mailproto_message_info *m = msg(c, uids[chunk]);
    ck_assert_uint_eq(m->stored_size, strlen(text));
    ck_assert_msg(m->size == sent_size(text), "chunk %zu: size %llu", chunk,
                  (unsigned long long)m->size);
  }
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_append_counts_bare_lf_twice) {
  cx *c = setup(_i);
  /* Written so a CR ends one chunk and its LF starts the next. */
  static const char text[] = "a\nb\r\nc\nd\r\n\n";
  uint32_t uv, uid1, uid2;
  ck_assert_int_eq(
      append_full(c, c->alice, "INBOX", 0, NULL, 0, NULL, text, 4, &uv, &uid1),
      0);
  ck_assert_int_eq(
      append_full(c, c->alice, "INBOX", 0, NULL, 0, NULL, text, 1, &uv, &uid2),
      0);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  for (int i = 0; i < 2; i++) {
    const mailproto_message_info *m = msg(c, i ? uid2 : uid1);
    ck_assert_uint_eq(m->stored_size, strlen(text));
    ck_assert_uint_eq(m->size, strlen(text) + 3);
  }
  mailproto_mailbox_status st = status_of(c, c->alice, "INBOX");
  ck_assert_uint_eq(st.size, 2 * (strlen(text) + 3));
  char buf[32];
  ck_assert_uint_eq(read_all(c, mbx, uid2, 5, buf, sizeof buf), strlen(text));
  ck_assert_int_eq(memcmp(buf, text, strlen(text)), 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_append_dates_from_clock) {
  cx *c = setup(_i);
  time_t before = time(NULL);
  uint32_t uid = add(c, c->alice, "INBOX", "m\r\n");
  time_t after = time(NULL);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  const mailproto_message_info *m = msg(c, uid);
  /* A backend may use a fixed test clock; it must still be a date. */
  ck_assert_int_ge(m->internal_date.tz_minutes, -1439);
  ck_assert_int_le(m->internal_date.tz_minutes, 1439);
  ck_assert_msg(m->internal_date.utc >= (int64_t)before - 86400 * 366 * 30 &&
                    m->internal_date.utc <= (int64_t)after + 86400,
                "internal date %lld is not near now",
                (long long)m->internal_date.utc);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

static int do_deliver(cx *c, void *const *accts, size_t n, const char *data,
                      int all, int *results) {
  mailproto_delivery_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.reverse_path = "sender@example.net";
  info.size_hint = strlen(data);
  static const char *const rcpts[] = {"alice@example.org", "bob@example.org"};
  info.recipients = rcpts;
  void *w = NULL;
  begin(c);
  int rc = end(c, mailproto_store_call_deliver_begin(&c->st, &c->op, 1, accts,
                                                     n, &info, &w));
  if (rc != 0)
    return rc;
  size_t len = strlen(data), half = len / 2;
  ck_assert_int_eq(do_write(c, w, data, half), 0);
  ck_assert_int_eq(do_write(c, w, data + half, len - half), 0);
  begin(c);
  return end(c, mailproto_store_call_deliver_commit(&c->st, &c->op, 1, w, all,
                                                    results, n));
}

START_TEST(test_deliver_reaches_every_account) {
  cx *c = setup(_i);
  void *to[2] = {NULL, NULL};
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_lookup_recipient(
                              &c->st, &c->op, 1, "alice@example.org", &to[0])),
                   0);
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_lookup_recipient(
                              &c->st, &c->op, 1, "bob@example.org", &to[1])),
                   0);
  static const char text[] = "From: s@x\r\nSubject: both\r\n\r\nhello\r\n";
  for (int all = 1; all >= 0; all--) {
    int results[2] = {99, 99};
    ck_assert_int_eq(do_deliver(c, to, 2, text, all, results), 0);
    ck_assert_int_eq(results[0], 0);
    ck_assert_int_eq(results[1], 0);
  }
  void *accts[2] = {c->alice, c->bob};
  for (int a = 0; a < 2; a++) {
    ck_assert_uint_eq(status_of(c, accts[a], "INBOX").messages, 2);
    void *mbx = open_rw(c, accts[a], "INBOX", NULL);
    ck_assert_uint_eq(c->nmsgs, 2);
    uint32_t uid = c->msgs[1].uid;
    ck_assert_uint_eq(c->msgs[1].size, strlen(text));
    char buf[64];
    ck_assert_uint_eq(read_all(c, mbx, uid, 7, buf, sizeof buf), strlen(text));
    ck_assert_int_eq(memcmp(buf, text, strlen(text)), 0);
    mailproto_store_call_close(&c->st, mbx);
  }
  mailproto_store_call_release_account(&c->st, to[0]);
  mailproto_store_call_release_account(&c->st, to[1]);
  teardown(c);
}
END_TEST

START_TEST(test_deliver_abort_leaves_nothing) {
  cx *c = setup(_i);
  void *to[1] = {c->bob};
  void *w = NULL;
  int notified = 0;
  void *mbx = open_rw(c, c->bob, "INBOX", &notified);
  mailproto_delivery_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.reverse_path = "";
  info.recipients = (const char *const[]){"bob@example.org"};
  begin(c);
  ck_assert_int_eq(end(c, mailproto_store_call_deliver_begin(&c->st, &c->op, 1,
                                                             to, 1, &info, &w)),
                   0);
  ck_assert_int_eq(do_write(c, w, "partial", 7), 0);
  ck_assert_uint_eq(status_of(c, c->bob, "INBOX").messages, 0);
  mailproto_store_call_abort(&c->st, w);
  ck_assert_uint_eq(status_of(c, c->bob, "INBOX").messages, 0);
  mailproto_mailbox_status st;
  ck_assert_int_eq(do_sync(c, mbx, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 0);
  ck_assert_int_eq(notified, 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* \Recent                                                             */
/* ------------------------------------------------------------------ */

static size_t recent_count(const cx *c) {
  size_t n = 0;
  for (size_t i = 0; i < c->nmsgs; i++)
    n += (c->msgs[i].flags & MAILPROTO_FLAG_RECENT) != 0;
  return n;
}

START_TEST(test_recent_claimed_by_one_session) {
  cx *c = setup(_i);
  add(c, c->alice, "INBOX", "1\r\n");
  add(c, c->alice, "INBOX", "2\r\n");
  mailproto_mailbox_status st;
  void *ro = NULL, *h1 = NULL, *h2 = NULL;
  /* Read-only opens see \Recent but do not take it away. */
  ck_assert_int_eq(
      do_open(c, c->alice, "INBOX", MAILPROTO_OPEN_READONLY, NULL, &ro, &st),
      0);
  ck_assert_uint_eq(recent_count(c), 2);
  ck_assert_uint_eq(st.recent, 2);
  ck_assert_int_eq(do_open(c, c->alice, "INBOX", 0, NULL, &h1, &st), 0);
  ck_assert_uint_eq(recent_count(c), 2);
  ck_assert_uint_eq(st.recent, 2);
  ck_assert_int_eq(do_open(c, c->alice, "INBOX", 0, NULL, &h2, &st), 0);
  ck_assert_uint_eq(recent_count(c), 0);
  ck_assert_uint_eq(st.recent, 0);
  /* A new message is \Recent in exactly one of the read-write handles. */
  uint32_t u3 = add(c, c->alice, "INBOX", "3\r\n");
  ck_assert_int_eq(do_sync(c, h2, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  int in_h2 = (c->msgs[0].flags & MAILPROTO_FLAG_RECENT) != 0;
  ck_assert_uint_eq(st.recent, (unsigned)in_h2);
  ck_assert_int_eq(do_sync(c, h1, &st), 0);
  ck_assert_uint_eq(c->nmsgs, 1);
  ck_assert_uint_eq(c->msgs[0].uid, u3);
  int in_h1 = (c->msgs[0].flags & MAILPROTO_FLAG_RECENT) != 0;
  ck_assert_int_eq(in_h1 + in_h2, 1);
  ck_assert_uint_eq(st.recent, 2u + (unsigned)in_h1);
  mailproto_store_call_close(&c->st, h1);
  mailproto_store_call_close(&c->st, h2);
  /* Claimed messages are not \Recent for later sessions. */
  void *h3 = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_uint_eq(recent_count(c), 0);
  mailproto_store_call_close(&c->st, h3);
  mailproto_store_call_close(&c->st, ro);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Cancel                                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_cancel_drops_pending_operation) {
  cx *c = setup(_i);
  add(c, c->alice, "INBOX", "m\r\n");
  /* Cancelling an op that is not pending does nothing. */
  begin(c);
  mailproto_store_call_cancel(&c->st, &c->op);
  ck_assert_int_eq(c->op.state, MAILPROTO_OP_IDLE);
  mailproto_mailbox_status st;
  begin(c);
  int rc =
      mailproto_store_call_status(&c->st, &c->op, 1, c->alice, "INBOX", &st);
  if (rc == MAILPROTO_DEFERRED) {
    mailproto_store_call_cancel(&c->st, &c->op);
    ck_assert_int_eq(c->op.state, MAILPROTO_OP_IDLE);
    for (int i = 0; i < 10; i++)
      c->b->turn(c->handle);
    ck_assert_int_eq(c->done, 0);
  } else {
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(st.messages, 1);
  }
  /* A cancelled writer start leaves nothing behind. */
  void *w = NULL;
  begin(c);
  rc = mailproto_store_call_append_begin(&c->st, &c->op, 1, c->alice, "INBOX",
                                         &plain, &w);
  if (rc == MAILPROTO_DEFERRED) {
    mailproto_store_call_cancel(&c->st, &c->op);
    for (int i = 0; i < 10; i++)
      c->b->turn(c->handle);
    ck_assert_int_eq(c->done, 0);
  } else {
    ck_assert_int_eq(rc, 0);
    mailproto_store_call_abort(&c->st, w);
  }
  /* The store still works. */
  ck_assert_uint_eq(status_of(c, c->alice, "INBOX").messages, 1);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */

enum { GROUPS = 7 };
static char tcase_names[MAX_BACKENDS][GROUPS][96];

/* ------------------------------------------------------------------ */
/* The optional parsed-structure cache (cache_get, cache_put)          */
/* ------------------------------------------------------------------ */

/* Gets the entry of uid into out (up to size bytes); returns the code. */
static int cache_get(cx *c, void *mbx, uint32_t uid, char *out, size_t size,
                     size_t *len) {
  const uint8_t *data;
  int rc = mailproto_store_call_cache_get(&c->st, mbx, uid, &data, len);
  if (rc == 0) {
    ck_assert_uint_le(*len, size);
    if (*len)
      memcpy(out, data, *len);
  }
  return rc;
}

START_TEST(test_cache_keeps_entry_per_message) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "Subject: 1\r\n\r\none\r\n");
  uint32_t u2 = add(c, c->alice, "INBOX", "Subject: 2\r\n\r\ntwo\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  static const uint8_t e1[] = {'M', 'P', 'M', 0, 1, 2, 0xff};
  int rc = mailproto_store_call_cache_put(&c->st, mbx, u1, e1, sizeof e1);
  if (rc == MAILPROTO_ERR_UNSUPPORTED) {
    /* The hooks are optional: a backend without them has no cache. */
    mailproto_store_call_close(&c->st, mbx);
    teardown(c);
    return;
  }
  ck_assert_int_eq(rc, 0);
  char buf[64];
  size_t len;
  /* a message without an entry misses */
  ck_assert_int_eq(cache_get(c, mbx, u2, buf, sizeof buf, &len),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(cache_get(c, mbx, u1, buf, sizeof buf, &len), 0);
  ck_assert_uint_eq(len, sizeof e1);
  ck_assert_int_eq(memcmp(buf, e1, len), 0);
  /* a put replaces the entry; an empty one drops it (store.h) */
  ck_assert_int_eq(
      mailproto_store_call_cache_put(&c->st, mbx, u1, (const uint8_t *)"xy", 2),
      0);
  ck_assert_int_eq(
      mailproto_store_call_cache_put(&c->st, mbx, u2, (const uint8_t *)"", 0),
      0);
  ck_assert_int_eq(cache_get(c, mbx, u1, buf, sizeof buf, &len), 0);
  ck_assert_uint_eq(len, 2);
  ck_assert_int_eq(memcmp(buf, "xy", 2), 0);
  ck_assert_int_eq(cache_get(c, mbx, u2, buf, sizeof buf, &len),
                   MAILPROTO_ERR_NOT_FOUND);
  /* another handle, and a later open, see the same entry */
  void *other = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(cache_get(c, other, u1, buf, sizeof buf, &len), 0);
  ck_assert_uint_eq(len, 2);
  mailproto_store_call_close(&c->st, other);
  mailproto_store_call_close(&c->st, mbx);
  mbx = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(cache_get(c, mbx, u1, buf, sizeof buf, &len), 0);
  ck_assert_int_eq(memcmp(buf, "xy", 2), 0);
  /* no entry for a UID that is no message */
  ck_assert_int_ne(mailproto_store_call_cache_put(&c->st, mbx, u2 + 100,
                                                  (const uint8_t *)"z", 1),
                   0);
  ck_assert_int_ne(cache_get(c, mbx, u2 + 100, buf, sizeof buf, &len), 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_cache_entry_goes_with_message) {
  cx *c = setup(_i);
  uint32_t u1 = add(c, c->alice, "INBOX", "Subject: 1\r\n\r\none\r\n");
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  int rc =
      mailproto_store_call_cache_put(&c->st, mbx, u1, (const uint8_t *)"e", 1);
  if (rc == MAILPROTO_ERR_UNSUPPORTED) {
    mailproto_store_call_close(&c->st, mbx);
    teardown(c);
    return;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(do_expunge(c, mbx, u1, u1, 0), 0);
  sync_ok(c, mbx);
  char buf[16];
  size_t len;
  ck_assert_int_ne(cache_get(c, mbx, u1, buf, sizeof buf, &len), 0);
  /* a new message starts without an entry */
  uint32_t u2 = add(c, c->alice, "INBOX", "Subject: 2\r\n\r\ntwo\r\n");
  sync_ok(c, mbx);
  ck_assert_int_eq(cache_get(c, mbx, u2, buf, sizeof buf, &len),
                   MAILPROTO_ERR_NOT_FOUND);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_cache_entry_goes_with_mailbox) {
  /* Deleting a mailbox with cache entries works as without them, and a
   * mailbox created again under the name starts with none. */
  cx *c = setup(_i);
  ck_assert_int_eq(do_create(c, c->alice, "Box", 0), 0);
  uint32_t u1 = add(c, c->alice, "Box", "Subject: 1\r\n\r\none\r\n");
  void *mbx = open_rw(c, c->alice, "Box", NULL);
  int rc =
      mailproto_store_call_cache_put(&c->st, mbx, u1, (const uint8_t *)"e", 1);
  mailproto_store_call_close(&c->st, mbx);
  if (rc == MAILPROTO_ERR_UNSUPPORTED) {
    teardown(c);
    return;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(do_delete(c, c->alice, "Box"), 0);
  ck_assert_int_eq(do_create(c, c->alice, "Box", 0), 0);
  uint32_t u2 = add(c, c->alice, "Box", "Subject: 2\r\n\r\ntwo\r\n");
  mbx = open_rw(c, c->alice, "Box", NULL);
  char buf[16];
  size_t len;
  ck_assert_int_ne(cache_get(c, mbx, u1, buf, sizeof buf, &len), 0);
  ck_assert_int_ne(cache_get(c, mbx, u2, buf, sizeof buf, &len), 0);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The optional message lookup (message_get)                           */
/* ------------------------------------------------------------------ */

START_TEST(test_message_get_matches_open) {
  cx *c = setup(_i);
  static const mailproto_datetime when = {1700000000, 120};
  uint32_t uv, u1, u2;
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0, NULL, 0, &when,
                               "Subject: 1\r\n\r\none\r\n", 1000, &uv, &u1),
                   0);
  /* bare LFs: RFC822.SIZE counts each as CRLF */
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0, NULL, 0, &when,
                               "Subject: 2\n\ntwo\n", 1000, &uv, &u2),
                   0);
  void *mbx = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_message_info got;
  int rc = mailproto_store_call_message_get(&c->st, mbx, u1, &got);
  if (rc == MAILPROTO_ERR_UNSUPPORTED) {
    /* The hook is optional. */
    mailproto_store_call_close(&c->st, mbx);
    teardown(c);
    return;
  }
  ck_assert_int_eq(rc, 0);
  const uint32_t uids[2] = {u1, u2};
  for (int k = 0; k < 2; k++) {
    const mailproto_message_info *m = find_msg(c, uids[k]);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(
        mailproto_store_call_message_get(&c->st, mbx, uids[k], &got), 0);
    ck_assert_uint_eq(got.uid, uids[k]);
    ck_assert_uint_eq(got.size, m->size);
    ck_assert_uint_eq(got.stored_size, m->stored_size);
    ck_assert_int_eq(got.internal_date.utc, when.utc);
    ck_assert_int_eq(got.internal_date.tz_minutes, when.tz_minutes);
  }
  ck_assert_uint_eq(got.size, got.stored_size + 3);
  /* UIDs that are no message */
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, mbx, u2 + 1, &got),
                   MAILPROTO_ERR_NOT_FOUND);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, mbx, 0, &got),
                   MAILPROTO_ERR_NOT_FOUND);
  /* a message another handle appended, before this one syncs */
  uint32_t u3 = add(c, c->alice, "INBOX", "Subject: 3\r\n\r\n3\r\n");
  rc = mailproto_store_call_message_get(&c->st, mbx, u3, &got);
  ck_assert(rc == 0 || rc == MAILPROTO_ERR_NOT_FOUND);
  sync_ok(c, mbx);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, mbx, u3, &got), 0);
  ck_assert_uint_eq(got.size, 17);
  mailproto_store_call_close(&c->st, mbx);
  teardown(c);
}
END_TEST

START_TEST(test_message_get_keeps_expunged_until_next_sync) {
  /* RFC 2180 4.1: a session may still be asked the size of a message
   * whose expunge its last sync reported but it has not announced. */
  cx *c = setup(_i);
  static const mailproto_datetime when = {1234567890, -300};
  uint32_t uv, u1;
  ck_assert_int_eq(append_full(c, c->alice, "INBOX", 0, NULL, 0, &when,
                               "Subject: 1\r\n\r\none\r\n", 1000, &uv, &u1),
                   0);
  uint32_t u2 = add(c, c->alice, "INBOX", "Subject: 2\r\n\r\ntwo\r\n");
  void *a = open_rw(c, c->alice, "INBOX", NULL);
  void *b = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_message_info got;
  if (mailproto_store_call_message_get(&c->st, a, u1, &got) ==
      MAILPROTO_ERR_UNSUPPORTED) {
    mailproto_store_call_close(&c->st, b);
    mailproto_store_call_close(&c->st, a);
    teardown(c);
    return;
  }
  ck_assert_int_eq(do_expunge(c, b, u1, u1, 0), 0);
  /* gone from the mailbox, but a handle that knew it still finds it
   * before its sync reports the expunge */
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u1, &got), 0);
  ck_assert_uint_eq(got.size, 19);
  sync_ok(c, a);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u1, &got), 0);
  ck_assert_uint_eq(got.uid, u1);
  ck_assert_uint_eq(got.size, 19);
  ck_assert_uint_eq(got.stored_size, 19);
  ck_assert_int_eq(got.internal_date.utc, when.utc);
  ck_assert_int_eq(got.internal_date.tz_minutes, when.tz_minutes);
  /* the other messages are answered as before */
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u2, &got), 0);
  ck_assert_uint_eq(got.uid, u2);
  /* the handle that expunged: the same after its sync */
  sync_ok(c, b);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, b, u1, &got), 0);
  ck_assert_uint_eq(got.size, 19);
  /* the next sync forgets it */
  sync_ok(c, a);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u1, &got),
                   MAILPROTO_ERR_NOT_FOUND);
  sync_ok(c, b);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, b, u1, &got),
                   MAILPROTO_ERR_NOT_FOUND);
  /* a handle opened after the expunge never knew it */
  void *d = open_rw(c, c->alice, "INBOX", NULL);
  ck_assert_int_eq(mailproto_store_call_message_get(&c->st, d, u1, &got),
                   MAILPROTO_ERR_NOT_FOUND);
  mailproto_store_call_close(&c->st, d);
  mailproto_store_call_close(&c->st, b);
  mailproto_store_call_close(&c->st, a);
  teardown(c);
}
END_TEST

START_TEST(test_message_get_answers_expunges_of_several_changes) {
  /* Messages another handle expunged in several changes, between flag
   * changes, are all still answered by a handle that knew them until the
   * sync after the one that reports them. */
  cx *c = setup(_i);
  static const char *const texts[] = {
      "1\r\n\r\n1\r\n",    "22\r\n\r\n2\r\n",    "333\r\n\r\n3\r\n",
      "4444\r\n\r\n4\r\n", "55555\r\n\r\n5\r\n", "666666\r\n\r\n6\r\n"};
  uint32_t u[6];
  for (int k = 0; k < 6; k++)
    u[k] = add(c, c->alice, "INBOX", texts[k]);
  void *a = open_rw(c, c->alice, "INBOX", NULL);
  void *b = open_rw(c, c->alice, "INBOX", NULL);
  mailproto_message_info got;
  if (mailproto_store_call_message_get(&c->st, a, u[0], &got) ==
      MAILPROTO_ERR_UNSUPPORTED) {
    mailproto_store_call_close(&c->st, b);
    mailproto_store_call_close(&c->st, a);
    teardown(c);
    return;
  }
  ck_assert_int_eq(do_expunge(c, b, u[4], u[4], 0), 0);
  ck_assert_int_eq(do_flags(c, b, u[0], u[5], MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_SEEN, NULL, 0, 0),
                   0);
  ck_assert_int_eq(do_expunge(c, b, u[1], u[2], 0), 0);
  ck_assert_int_eq(do_flags(c, b, u[3], u[3], MAILPROTO_FLAGS_ADD,
                            MAILPROTO_FLAG_FLAGGED, NULL, 0, 0),
                   0);
  ck_assert_int_eq(do_expunge(c, b, u[5], u[5], 0), 0);
  for (int pass = 0; pass < 2; pass++) {
    /* before a's sync, then after the sync that reports the expunges */
    for (int k = 0; k < 6; k++) {
      ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u[k], &got),
                       0);
      ck_assert_uint_eq(got.uid, u[k]);
      ck_assert_uint_eq(got.size, strlen(texts[k]));
    }
    ck_assert_int_eq(
        mailproto_store_call_message_get(&c->st, a, u[5] + 1, &got),
        MAILPROTO_ERR_NOT_FOUND);
    sync_ok(c, a);
    if (pass == 0)
      ck_assert_uint_eq(c->nexp, 4);
  }
  /* the next sync forgot the expunged ones */
  for (int k = 1; k < 6; k++)
    ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u[k], &got),
                     k == 3 ? 0 : MAILPROTO_ERR_NOT_FOUND);
  mailproto_store_call_close(&c->st, b);
  mailproto_store_call_close(&c->st, a);
  teardown(c);
}
END_TEST

START_TEST(test_message_get_answers_messages_of_mailbox_gone) {
  /* A mailbox deleted or renamed under an open handle: every message is
   * expunged for it, and answered like any expunged one (RFC 2180 4.1). */
  for (int rename = 0; rename < 2; rename++) {
    cx *c = setup(_i);
    ck_assert_int_eq(do_create(c, c->alice, "Box", 0), 0);
    uint32_t u1 = add(c, c->alice, "Box", "Subject: 1\r\n\r\none\r\n");
    uint32_t u2 = add(c, c->alice, "Box", "Subject: 22\r\n\r\ntwo\r\n");
    void *a = open_rw(c, c->alice, "Box", NULL);
    mailproto_message_info got;
    if (mailproto_store_call_message_get(&c->st, a, u1, &got) ==
        MAILPROTO_ERR_UNSUPPORTED) {
      mailproto_store_call_close(&c->st, a);
      teardown(c);
      return;
    }
    ck_assert_int_eq(rename ? do_rename(c, c->alice, "Box", "Elsewhere")
                            : do_delete(c, c->alice, "Box"),
                     0);
    for (int pass = 0; pass < 2; pass++) {
      /* before a's sync, then after the sync that reports the expunges */
      ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u1, &got),
                       0);
      ck_assert_uint_eq(got.uid, u1);
      ck_assert_uint_eq(got.size, 19);
      ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u2, &got),
                       0);
      ck_assert_uint_eq(got.size, 20);
      sync_ok(c, a);
      if (pass == 0) {
        ck_assert(expunged(c, u1));
        ck_assert(expunged(c, u2));
      }
    }
    ck_assert_int_eq(mailproto_store_call_message_get(&c->st, a, u1, &got),
                     MAILPROTO_ERR_NOT_FOUND);
    mailproto_store_call_close(&c->st, a);
    teardown(c);
  }
}
END_TEST

void conformance_add_cases(Suite *s, const conformance_backend *b) {
  if (backend_count >= MAX_BACKENDS) {
    fprintf(stderr, "conformance: more than %d backends\n", MAX_BACKENDS);
    abort();
  }
  int i = (int)backend_count;
  backends[backend_count++] = *b;

  /* Not static: the test pointers are variables, not constants. */
  const struct {
    const char *tcase;
    const TTest *tests[24];
  } groups[] = {
      {"accounts",
       {test_authenticate_accepts_valid_password,
        test_authenticate_rejects_bad_credentials,
        test_lookup_secret_returns_password,
        test_lookup_recipient_maps_address_to_account,
        test_release_account_keeps_other_handles}},
      {"mailboxes",
       {test_list_reports_inbox_always, test_list_matches_star_and_percent,
        test_list_reports_child_attributes,
        test_list_subscribed_includes_nonexistent,
        test_list_reports_special_use, test_create_makes_selectable_mailbox,
        test_create_refuses_inbox, test_create_makes_missing_parents,
        test_create_rejects_bad_names, test_hooks_reject_bad_names,
        test_delete_removes_mailbox_and_messages, test_delete_refuses_inbox,
        test_delete_parent_keeps_children,
        test_delete_recreate_gives_new_uidvalidity, test_rename_moves_children,
        test_rename_inbox_moves_messages_only, test_rename_reports_errors,
        test_rename_never_reuses_uidvalidity,
        test_subscribe_adds_and_removes_names}},
      {"messages",
       {test_status_counts_messages, test_uid_strictly_ascending_never_reused,
        test_modseq_grows_with_every_change,
        test_open_reports_messages_ascending,
        test_open_exclusive_locks_out_exclusive,
        test_sync_reports_new_messages_and_notifies,
        test_sync_reports_changes_of_others,
        test_sync_reports_expunges_to_every_handle,
        test_sync_hides_messages_that_came_and_went,
        test_sync_after_close_of_others, test_read_honours_offset_and_max,
        test_read_expunged_message_fails, test_recent_claimed_by_one_session,
        test_cancel_drops_pending_operation}},
      {"changes",
       {test_set_flags_replace_add_remove, test_set_flags_skips_missing_uids,
        test_set_flags_keyword_table_limit,
        test_set_flags_rejects_invalid_keywords,
        test_set_flags_keywords_ignore_case, test_set_flags_unchanged_since,
        test_set_flags_readonly_refused, test_expunge_only_deleted,
        test_copy_maps_uids_and_keeps_flags,
        test_copy_missing_destination_copies_nothing,
        test_copy_is_all_or_nothing, test_move_expunges_from_source,
        test_copy_within_same_mailbox}},
      {"writers",
       {test_append_commit_assigns_uid, test_append_abort_leaves_nothing,
        test_append_invisible_until_commit, test_append_counts_bare_lf_twice,
        test_append_counts_bare_cr_twice, test_append_dates_from_clock,
        test_deliver_reaches_every_account, test_deliver_abort_leaves_nothing}},
      {"cache",
       {test_cache_keeps_entry_per_message, test_cache_entry_goes_with_message,
        test_cache_entry_goes_with_mailbox}},
      {"lookup",
       {test_message_get_matches_open,
        test_message_get_keeps_expunged_until_next_sync,
        test_message_get_answers_expunges_of_several_changes,
        test_message_get_answers_messages_of_mailbox_gone}},
  };
  for (size_t g = 0; g < GROUPS; g++) {
    /* Check keeps the name pointer: it must outlive the suite. */
    snprintf(tcase_names[i][g], sizeof tcase_names[i][g], "%s: %s", b->name,
             groups[g].tcase);
    TCase *tc = tcase_create(tcase_names[i][g]);
    tcase_set_timeout(tc, 60);
    for (size_t t = 0; t < 24 && groups[g].tests[t]; t++)
      tcase_add_loop_test(tc, groups[g].tests[t], i, i + 1);
    suite_add_tcase(s, tc);
  }
}

Suite *conformance_suite(const char *suite_name, const conformance_backend *b) {
  Suite *s = suite_create(suite_name);
  conformance_add_cases(s, b);
  return s;
}
