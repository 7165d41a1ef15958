/* The in-memory store: the store object, users and account hooks. */
#include <string.h>
#include <time.h>

#include "store/memstore_hooks.h"
#include "store/memstore_internal.h"
#include "store/store_util.h"

static mailproto_datetime system_now(void *arg) {
  (void)arg;
  mailproto_datetime dt = {(int64_t)time(NULL), 0};
  return dt;
}

mailproto_datetime mailproto_memstore_now(mailproto_memstore *s) {
  return s->now(s->clock_arg);
}

int mailproto_memstore_next_uidvalidity(mailproto_memstore *s, uint32_t *out) {
  /* UIDVALIDITY is a non-zero 32-bit number that must never repeat for a
   * name (RFC 3501 2.3.1.1); a store-wide counter never repeats at all. */
  if (s->next_uidvalidity == 0)
    return MAILPROTO_ERR_LIMIT;
  *out = s->next_uidvalidity++;
  return 0;
}

void mailproto_memstore_body_unref(mailproto_memstore *s, ms_body *b) {
  if (b && --b->refs == 0) {
    mailproto_mem_free(&s->alloc, b->cache);
    mailproto_mem_free(&s->alloc, b);
  }
}

int mailproto_memstore_keyword_valid(const char *kw) {
  return mailproto_store_keyword_valid(kw);
}

static int ascii_casecmp(const char *a, const char *b) {
  return mailproto_store_ascii_casecmp(a, b);
}

int mailproto_memstore_keyword_find(const ms_mailbox *mb, const char *kw) {
  /* Keywords, like all IMAP atoms, compare case-insensitively. */
  for (unsigned i = 0; i < mb->keyword_count; i++)
    if (ascii_casecmp(mb->keywords[i], kw) == 0)
      return (int)i;
  return -1;
}

int mailproto_memstore_keywords_plan_one(const ms_mailbox *mb,
                                         ms_keyword_plan *plan,
                                         const char *name, unsigned *index) {
  int k = mailproto_memstore_keyword_find(mb, name);
  if (k >= 0) {
    *index = (unsigned)k;
    return 0;
  }
  for (unsigned i = 0; i < plan->count; i++)
    if (ascii_casecmp(plan->names[i], name) == 0) {
      *index = mb->keyword_count + i;
      return 0;
    }
  if (mb->keyword_count + plan->count >= MAILPROTO_KEYWORDS_MAX)
    return MAILPROTO_ERR_LIMIT;
  *index = mb->keyword_count + plan->count;
  plan->names[plan->count++] = name;
  return 0;
}

int mailproto_memstore_keywords_plan(const ms_mailbox *mb,
                                     ms_keyword_plan *plan,
                                     const char *const *keywords, size_t count,
                                     int add_new, uint64_t *mask) {
  memset(plan, 0, sizeof *plan);
  if (mask)
    *mask = 0;
  for (size_t i = 0; i < count; i++) {
    const char *kw = keywords[i];
    if (!kw)
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    if (!mailproto_memstore_keyword_valid(kw))
      return MAILPROTO_ERR_BAD_NAME;
  }
  for (size_t i = 0; i < count; i++) {
    unsigned index;
    if (!add_new && mailproto_memstore_keyword_find(mb, keywords[i]) < 0)
      continue;
    int rc =
        mailproto_memstore_keywords_plan_one(mb, plan, keywords[i], &index);
    if (rc != 0)
      return rc;
    *mask |= (uint64_t)1 << index;
  }
  return 0;
}

int mailproto_memstore_keywords_alloc(mailproto_memstore *s,
                                      ms_keyword_plan *plan) {
  for (unsigned i = 0; i < plan->count; i++) {
    plan->copies[i] = mailproto_mem_strdup(&s->alloc, plan->names[i]);
    if (!plan->copies[i]) {
      mailproto_memstore_keywords_free(s, plan);
      return MAILPROTO_ERR_NOMEM;
    }
  }
  return 0;
}

unsigned mailproto_memstore_keywords_commit(ms_mailbox *mb,
                                            ms_keyword_plan *plan) {
  unsigned n = plan->count;
  for (unsigned i = 0; i < n; i++) {
    mb->keywords[mb->keyword_count++] = plan->copies[i];
    plan->copies[i] = NULL;
  }
  plan->count = 0;
  return n;
}

void mailproto_memstore_keywords_free(mailproto_memstore *s,
                                      ms_keyword_plan *plan) {
  for (unsigned i = 0; i < plan->count; i++) {
    mailproto_mem_free(&s->alloc, plan->copies[i]);
    plan->copies[i] = NULL;
  }
}

int mailproto_memstore_new(const mailproto_allocator *alloc,
                           mailproto_memstore **out) {
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!alloc)
    alloc = mailproto_default_allocator();
  mailproto_memstore *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *alloc;
  s->next_uidvalidity = 1;
  s->now = system_now;
  *out = s;
  return 0;
}

void mailproto_memstore_free(mailproto_memstore *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->user_count; i++)
    mailproto_memstore_user_free(s, s->users[i]);
  mailproto_mem_free(&s->alloc, s->users);
  mailproto_allocator a = s->alloc;
  mailproto_mem_free(&a, s);
}

static ms_user *find_user(const mailproto_memstore *s, const char *name,
                          size_t len, int fold) {
  for (size_t i = 0; i < s->user_count; i++)
    if (mailproto_store_user_is(s->users[i]->name, name, len, fold))
      return s->users[i];
  return NULL;
}

/* Adds a user whose name and password are prepared already. */
static int add_user(mailproto_memstore *s, const char *name,
                    const char *password, size_t plen) {
  /* Recipients match user names case-insensitively, so names that differ
   * only in case would be ambiguous. */
  if (find_user(s, name, strlen(name), 1))
    return MAILPROTO_ERR_EXISTS;

  int rc = mailproto_store_grow(&s->alloc, (void **)&s->users, &s->user_cap,
                                s->user_count + 1, sizeof *s->users);
  if (rc != 0)
    return rc;
  ms_user *u = mailproto_mem_calloc(&s->alloc, 1, sizeof *u);
  if (!u)
    return MAILPROTO_ERR_NOMEM;
  u->name = mailproto_mem_strdup(&s->alloc, name);
  u->password = mailproto_mem_strndup(&s->alloc, password, plen);
  u->password_len = plen;
  ms_mailbox *inbox = NULL;
  if (u->name && u->password)
    inbox = mailproto_memstore_mailbox_new(s, u, "INBOX");
  rc = inbox ? mailproto_store_grow(&s->alloc, (void **)&u->boxes, &u->box_cap,
                                    1, sizeof *u->boxes)
             : MAILPROTO_ERR_NOMEM;
  if (rc == 0)
    rc = mailproto_memstore_make_selectable(s, inbox);
  if (rc != 0) {
    mailproto_memstore_mailbox_free(s, inbox);
    mailproto_memstore_user_free(s, u);
    return rc;
  }
  u->boxes[u->box_count++] = inbox;
  s->users[s->user_count++] = u;
  return 0;
}

int mailproto_memstore_add_user(mailproto_memstore *s, const char *name,
                                const char *password) {
  if (!s || !name || !password || !*name)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  char prep_name[MAILPROTO_STORE_NAME_MAX + 1];
  char prep_password[MAILPROTO_SECRET_MAX + 1];
  size_t plen;
  int rc = mailproto_store_prepare_login(name, password, prep_name,
                                         prep_password, &plen);
  /* The prepared name is the one checked: NFKC makes U+FF20 an "@".
   * (Preparation has refused control characters already.) */
  if (rc == 0 && strchr(prep_name, '@'))
    rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  if (rc == 0)
    rc = add_user(s, prep_name, prep_password, plen);
  mailproto_secure_zero(prep_password, sizeof prep_password);
  return rc;
}

void mailproto_memstore_set_clock(mailproto_memstore *s,
                                  mailproto_datetime (*now)(void *),
                                  void *clock_arg) {
  if (!s)
    return;
  s->now = now ? now : system_now;
  s->clock_arg = now ? clock_arg : NULL;
}

/* ---- account hooks ---- */

int mailproto_memstore_hook_authenticate(void *ctx, mailproto_op *op,
                                         const char *authzid,
                                         const char *authcid,
                                         const char *password,
                                         size_t password_len, void **account) {
  mailproto_memstore *s = ctx;
  (void)op;
  if (!s || !authcid || (!password && password_len) || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  ms_user *u = find_user(s, authcid, strlen(authcid), 0);
  int rc = mailproto_store_password_check(
      authzid, authcid, u ? u->password : NULL, u ? u->password_len : 0,
      password, password_len);
  if (rc != 0)
    return rc;
  *account = u;
  return 0;
}

int mailproto_memstore_hook_lookup_secret(void *ctx, mailproto_op *op,
                                          const char *user, char *secret,
                                          size_t secret_size,
                                          size_t *secret_len, void **account) {
  mailproto_memstore *s = ctx;
  (void)op;
  if (!s || !user || !secret || !secret_len || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  *secret_len = 0;
  ms_user *u = find_user(s, user, strlen(user), 0);
  if (!u)
    return MAILPROTO_ERR_AUTH_FAILED;
  if (u->password_len > secret_size)
    return MAILPROTO_ERR_BUFFER_FULL;
  memcpy(secret, u->password, u->password_len);
  *secret_len = u->password_len;
  *account = u;
  return 0;
}

int mailproto_memstore_hook_lookup_recipient(void *ctx, mailproto_op *op,
                                             const char *address,
                                             void **account) {
  mailproto_memstore *s = ctx;
  (void)op;
  if (!s || !address || !account)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *account = NULL;
  size_t len = mailproto_store_local_part(address);
  ms_user *u = len ? find_user(s, address, len, 1) : NULL;
  if (!u)
    return MAILPROTO_ERR_NOT_FOUND;
  *account = u;
  return 0;
}

void mailproto_memstore_hook_release_account(void *ctx, void *account) {
  /* Accounts are the users themselves; they live as long as the store. */
  (void)ctx;
  (void)account;
}

void mailproto_memstore_hook_cancel(void *ctx, mailproto_op *op) {
  /* Nothing is ever deferred here, so there is never anything to drop. */
  (void)ctx;
  (void)op;
}

static const mailproto_store_ops memstore_ops = {
    sizeof(mailproto_store_ops),
    mailproto_memstore_hook_authenticate,
    mailproto_memstore_hook_lookup_secret,
    mailproto_memstore_hook_lookup_recipient,
    mailproto_memstore_hook_release_account,
    mailproto_memstore_hook_list,
    mailproto_memstore_hook_create,
    mailproto_memstore_hook_delete,
    mailproto_memstore_hook_rename,
    mailproto_memstore_hook_subscribe,
    mailproto_memstore_hook_status,
    mailproto_memstore_hook_open,
    mailproto_memstore_hook_close,
    mailproto_memstore_hook_sync,
    mailproto_memstore_hook_read,
    mailproto_memstore_hook_set_flags,
    mailproto_memstore_hook_expunge,
    mailproto_memstore_hook_copy,
    mailproto_memstore_hook_append_begin,
    mailproto_memstore_hook_deliver_begin,
    mailproto_memstore_hook_write,
    mailproto_memstore_hook_append_commit,
    mailproto_memstore_hook_deliver_commit,
    mailproto_memstore_hook_abort,
    mailproto_memstore_hook_cancel,
    mailproto_memstore_hook_cache_get,
    mailproto_memstore_hook_cache_put,
    mailproto_memstore_hook_message_get,
};

void mailproto_memstore_store(mailproto_memstore *s, mailproto_store *out) {
  if (!out)
    return;
  out->ops = s ? &memstore_ops : NULL;
  out->ctx = s;
}
