/*
 * The mail transaction (RFC 5321 3.3): the reverse-path, the accepted
 * recipients, the writer of the message and why it failed.
 *
 * A recipient given twice, or two addresses of one account, are accepted
 * but delivered once: the account list handed to deliver_begin has each
 * account once. LMTP still answers once per accepted RCPT (RFC 2033 4.2),
 * so each accepted RCPT remembers its account's index. Duplicates are
 * found through a small hash index, so a large recipient limit does not
 * make each RCPT cost O(n).
 */
#include <string.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"

/* The index holds entries+1 (0: empty), two per account: one under the
 * address, one under the account handle. */
static size_t hash_addr(const char *a) {
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *a; a++)
    h = (h ^ (uint8_t)*a) * 16777619u;
  return h;
}

static size_t hash_ptr(const void *p) {
  uintptr_t v = (uintptr_t)p;
  return (size_t)((v >> 4) ^ (v >> 17) ^ (v * 2654435761u));
}

static void index_put(smtp_txn *t, size_t h, uint32_t entry) {
  size_t mask = t->index_cap - 1;
  size_t i = h & mask;
  while (t->index[i])
    i = (i + 1) & mask;
  t->index[i] = entry + 1;
}

/* Grows the index so that it stays at most half full with `count`
 * accounts (two keys each). Returns 0 or NOMEM. */
static int index_reserve(mailproto_smtp *s, size_t count) {
  smtp_txn *t = &s->txn;
  size_t need;
  if (mailproto_size_mul(count, 4, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  if (need <= t->index_cap)
    return 0;
  size_t cap = t->index_cap ? t->index_cap : 16;
  while (cap < need)
    cap *= 2;
  uint32_t *index = mailproto_mem_calloc(&s->alloc, cap, sizeof *index);
  if (!index)
    return MAILPROTO_ERR_NOMEM;
  mailproto_mem_free(&s->alloc, t->index);
  t->index = index;
  t->index_cap = cap;
  for (size_t i = 0; i < t->count; i++) {
    index_put(t, hash_addr(t->addrs[i]), (uint32_t)i);
    index_put(t, hash_ptr(t->accounts[i]), (uint32_t)i);
  }
  return 0;
}

/* The entry with this address or this account, or -1. */
static long index_find(const smtp_txn *t, const char *addr,
                       const void *account) {
  if (!t->index_cap)
    return -1;
  size_t mask = t->index_cap - 1;
  for (size_t i = hash_addr(addr) & mask; t->index[i]; i = (i + 1) & mask)
    if (strcmp(t->addrs[t->index[i] - 1], addr) == 0)
      return (long)t->index[i] - 1;
  for (size_t i = hash_ptr(account) & mask; t->index[i]; i = (i + 1) & mask)
    if (t->accounts[t->index[i] - 1] == account)
      return (long)t->index[i] - 1;
  return -1;
}

static int grow(mailproto_smtp *s, void **array, size_t n, size_t elem) {
  void *p = mailproto_mem_reallocarray(&s->alloc, *array, n, elem);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  *array = p;
  return 0;
}

static int reserve_entry(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  if (t->count < t->cap)
    return index_reserve(s, t->count + 1);
  size_t cap = t->cap ? t->cap * 2 : 4;
  int rc = grow(s, (void **)&t->addrs, cap, sizeof *t->addrs);
  if (rc == 0)
    rc = grow(s, (void **)&t->accounts, cap, sizeof *t->accounts);
  if (rc == 0)
    rc = grow(s, (void **)&t->results, cap, sizeof *t->results);
  if (rc == 0)
    t->cap = cap;
  return rc == 0 ? index_reserve(s, t->count + 1) : rc;
}

static int reserve_slot(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  if (!s->config.lmtp || t->accepted < t->slot_cap)
    return 0;
  size_t cap = t->slot_cap ? t->slot_cap * 2 : 4;
  int rc = grow(s, (void **)&t->slots, cap, sizeof *t->slots);
  if (rc == 0)
    t->slot_cap = cap;
  return rc;
}

int mailproto_smtp_txn_add(mailproto_smtp *s, char *addr, void *account) {
  smtp_txn *t = &s->txn;
  long found = index_find(t, addr, account);
  int rc = reserve_slot(s);
  if (rc == 0 && found < 0)
    rc = reserve_entry(s);
  if (rc != 0) {
    mailproto_mem_free(&s->alloc, addr);
    mailproto_store_call_release_account(&s->store, account);
    return rc;
  }
  size_t entry;
  if (found >= 0) {
    entry = (size_t)found;
    mailproto_mem_free(&s->alloc, addr);
    if (account != t->accounts[entry])
      mailproto_store_call_release_account(&s->store, account);
  } else {
    entry = t->count++;
    t->addrs[entry] = addr;
    t->accounts[entry] = account;
    t->results[entry] = 0;
    index_put(t, hash_addr(addr), (uint32_t)entry);
    index_put(t, hash_ptr(account), (uint32_t)entry);
  }
  if (s->config.lmtp)
    t->slots[t->accepted] = (uint32_t)entry;
  t->accepted++;
  return 0;
}

void mailproto_smtp_txn_reset(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  mailproto_store_call_abort(&s->store, t->writer);
  for (size_t i = 0; i < t->count; i++) {
    mailproto_mem_free(&s->alloc, t->addrs[i]);
    mailproto_store_call_release_account(&s->store, t->accounts[i]);
  }
  mailproto_mem_free(&s->alloc, t->addrs);
  mailproto_mem_free(&s->alloc, t->accounts);
  mailproto_mem_free(&s->alloc, t->results);
  mailproto_mem_free(&s->alloc, t->slots);
  mailproto_mem_free(&s->alloc, t->index);
  mailproto_mem_free(&s->alloc, t->reverse_path);
  mailproto_mem_free(&s->alloc, t->failure.owned);
  memset(t, 0, sizeof *t);
  s->dstate = SMTP_D_BOL;
  s->insert_len = 0;
  s->chunk_done = 0;
  s->bdat_size = 0;
  s->bdat_left = 0;
  s->bdat_last = 0;
}

int mailproto_smtp_txn_fail(mailproto_smtp *s, const smtp_reply *r, int copy) {
  smtp_failure *f = &s->txn.failure;
  mailproto_store_call_abort(&s->store, s->txn.writer);
  s->txn.writer = NULL;
  if (f->code)
    return 0;
  f->code = r->code;
  f->enhanced[0] = '\0';
  if (r->enhanced && strlen(r->enhanced) < sizeof f->enhanced)
    memcpy(f->enhanced, r->enhanced, strlen(r->enhanced) + 1);
  f->text = r->text;
  if (copy) {
    f->owned = mailproto_mem_strdup(&s->alloc, r->text);
    f->text = f->owned ? f->owned : "Error";
    if (!f->owned)
      return MAILPROTO_ERR_NOMEM;
  }
  return 0;
}

void mailproto_smtp_txn_failure(const mailproto_smtp *s, smtp_reply *out) {
  const smtp_failure *f = &s->txn.failure;
  out->code = f->code;
  out->enhanced = f->enhanced[0] ? f->enhanced : NULL;
  out->text = f->text;
}

void mailproto_smtp_txn_clear_failure(mailproto_smtp *s) {
  smtp_failure *f = &s->txn.failure;
  mailproto_mem_free(&s->alloc, f->owned);
  memset(f, 0, sizeof *f);
}
