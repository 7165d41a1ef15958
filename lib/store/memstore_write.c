/*
 * The in-memory store's writers: APPEND (one mailbox) and SMTP/LMTP
 * delivery (the INBOX of each recipient's account). The message is
 * collected in one growing body; commit hands that body to the mailbox
 * (and shares it between the accounts of a delivery), so the bytes are
 * copied exactly once, from the caller's chunks.
 */
#include <string.h>

#include "store/memstore_hooks.h"
#include "store/memstore_internal.h"

/* A size hint preallocates at most this much: the hint comes from the
 * client (SMTP SIZE=, an IMAP literal) and must not reserve memory the
 * message never fills. Only a message that has filled this much gets the
 * rest of its hint (see grow_to). */
#define HINT_MAX ((size_t)1 << 20)
/* Room beyond a delivery's hint for what the session adds to the
 * client's octets (SMTP's Received: header). */
#define HINT_SLACK ((size_t)1024)
/* The first reservation without a hint. */
#define FIRST_CAP ((size_t)4096)

enum { W_APPEND = 0x41505044, W_DELIVER = 0x444c5652 };

typedef struct ms_writer {
  unsigned kind;
  ms_body *body;
  size_t cap;  /* data bytes the body can hold */
  size_t hint; /* the size hint (a delivery: plus HINT_SLACK); 0: none */
  mailproto_store_size size; /* RFC822.SIZE of what was written */
  /* APPEND */
  ms_user *user;
  char *name;
  mailproto_store_append ap;
  /* delivery */
  ms_user **accounts;
  size_t account_count;
} ms_writer;

static void writer_free(mailproto_memstore *s, ms_writer *w) {
  if (!w)
    return;
  mailproto_memstore_body_unref(s, w->body);
  mailproto_mem_free(&s->alloc, w->name);
  mailproto_store_append_drop(&s->alloc, &w->ap);
  mailproto_mem_free(&s->alloc, w->accounts);
  mailproto_mem_free(&s->alloc, w);
}

static ms_writer *writer_new(mailproto_memstore *s, unsigned kind,
                             uint64_t hint) {
  ms_writer *w = mailproto_mem_calloc(&s->alloc, 1, sizeof *w);
  if (w) {
    w->kind = kind;
    /* An APPEND literal's size is exact; a delivery gets a trace header
     * more. A hint past what memory can hold is no use as a target. */
    size_t slack = kind == W_DELIVER ? HINT_SLACK : 0;
    if (hint && hint < SIZE_MAX - slack)
      w->hint = (size_t)hint + slack;
  }
  return w;
}

int mailproto_memstore_hook_append_begin(void *ctx, mailproto_op *op,
                                         void *account, const char *name,
                                         const mailproto_append_info *info,
                                         void **writer) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !name || !writer)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *writer = NULL;
  mailproto_append_info in;
  if (mailproto_store_append_info(info, &in) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  const ms_mailbox *mb = mailproto_memstore_find(u, canon);
  if (!mb || !mb->selectable)
    return MAILPROTO_ERR_NOT_FOUND;
  /* Fail early on bad or too many keywords; commit checks again, as the
   * table may fill up meanwhile. */
  ms_keyword_plan plan;
  uint64_t mask;
  int rc = mailproto_memstore_keywords_plan(mb, &plan, in.keywords,
                                            in.keyword_count, 1, &mask);
  if (rc != 0)
    return rc;

  ms_writer *w = writer_new(s, W_APPEND, in.size_hint);
  if (!w)
    return MAILPROTO_ERR_NOMEM;
  w->user = u;
  w->name = mailproto_mem_strdup(&s->alloc, canon);
  if (!w->name || mailproto_store_append_keep(&s->alloc, &w->ap, &in) != 0)
    goto nomem;
  *writer = w;
  return 0;
nomem:
  writer_free(s, w);
  return MAILPROTO_ERR_NOMEM;
}

int mailproto_memstore_hook_deliver_begin(void *ctx, mailproto_op *op,
                                          void *const *accounts,
                                          size_t account_count,
                                          const mailproto_delivery_info *info,
                                          void **writer) {
  mailproto_memstore *s = ctx;
  (void)op;
  if (!s || mailproto_store_deliver_args(accounts, account_count, writer) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_writer *w = writer_new(s, W_DELIVER, mailproto_store_delivery_hint(info));
  if (!w)
    return MAILPROTO_ERR_NOMEM;
  w->accounts =
      mailproto_mem_calloc(&s->alloc, account_count, sizeof *w->accounts);
  if (!w->accounts) {
    writer_free(s, w);
    return MAILPROTO_ERR_NOMEM;
  }
  for (size_t i = 0; i < account_count; i++)
    w->accounts[i] = accounts[i];
  w->account_count = account_count;
  *writer = w;
  return 0;
}

/* The room to grow to for `need` bytes. The first reservation is the
 * hint, up to HINT_MAX, so a message of the announced size is copied in
 * once and never moved. A message that has filled HINT_MAX has shown
 * that its hint is real: the rest of the hint is reserved in one step
 * (it is bounded by the session's size limit, and the unused end is
 * trimmed at commit). Past the hint, or without one, the room doubles,
 * so long messages written in small chunks cost O(n). */
static size_t grow_to(const ms_writer *w, size_t need) {
  size_t cap;
  if (!w->body)
    cap = w->hint ? (w->hint < HINT_MAX ? w->hint : HINT_MAX) : FIRST_CAP;
  else if (w->hint > w->cap && w->hint >= need)
    cap = w->hint;
  else if (mailproto_size_mul(w->cap, 2, &cap) != 0)
    cap = need;
  return cap > need ? cap : need;
}

/* Gives the body room for `cap` data bytes (allocated on first use).
 * On failure the body stays as it was. */
static int body_resize(mailproto_memstore *s, ms_writer *w, size_t cap) {
  size_t bytes;
  if (mailproto_size_add(sizeof(ms_body), cap, &bytes) != 0)
    return MAILPROTO_ERR_NOMEM;
  ms_body *b = mailproto_mem_realloc(&s->alloc, w->body, bytes);
  if (!b)
    return MAILPROTO_ERR_NOMEM;
  if (!w->body) {
    b->refs = 1;
    b->len = 0;
    b->size = 0;
    b->cache = NULL;
    b->cache_len = 0;
  }
  w->body = b;
  w->cap = cap;
  return 0;
}

int mailproto_memstore_hook_write(void *ctx, mailproto_op *op, void *writer,
                                  const uint8_t *data, size_t len) {
  mailproto_memstore *s = ctx;
  ms_writer *w = writer;
  (void)op;
  if (!s || !w || (len && !data))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (len == 0)
    return 0;
  size_t old = w->body ? w->body->len : 0, need;
  if (mailproto_size_add(old, len, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  if (!w->body || need > w->cap) {
    int rc = body_resize(s, w, grow_to(w, need));
    if (rc != 0)
      return rc;
  }
  ms_body *b = w->body;
  memcpy(b->data + old, data, len);
  b->len = need;
  mailproto_store_size_add(&w->size, data, len);
  return 0;
}

/* The body as committed: allocated even for an empty message, trimmed
 * when the reservation left much unused room. */
static ms_body *take_body(mailproto_memstore *s, ms_writer *w) {
  if (!w->body && body_resize(s, w, 0) != 0)
    return NULL;
  ms_body *b = w->body;
  b->size = mailproto_store_size_total(&w->size);
  if (w->cap - b->len > b->len / 8 + 64)
    (void)body_resize(s, w, b->len); /* keeping the larger block is fine */
  b = w->body;
  w->body = NULL;
  return b;
}

int mailproto_memstore_hook_append_commit(void *ctx, mailproto_op *op,
                                          void *writer, uint32_t *uidvalidity,
                                          uint32_t *uid) {
  mailproto_memstore *s = ctx;
  ms_writer *w = writer;
  (void)op;
  if (!s || !w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = 0;
  ms_mailbox *mb = NULL;
  ms_keyword_plan plan;
  uint64_t mask = 0;
  memset(&plan, 0, sizeof plan);
  if (w->kind != W_APPEND || !uidvalidity || !uid)
    rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  else if (!(mb = mailproto_memstore_find(w->user, w->name)) || !mb->selectable)
    rc = MAILPROTO_ERR_NOT_FOUND; /* deleted since append_begin */
  else
    rc = mailproto_memstore_keywords_plan(mb, &plan,
                                          (const char *const *)w->ap.keywords,
                                          w->ap.keyword_count, 1, &mask);
  if (rc == 0 && mb->uidnext > MS_UID_MAX)
    rc = MAILPROTO_ERR_LIMIT;
  if (rc == 0)
    rc = mailproto_store_grow(&s->alloc, (void **)&mb->msgs, &mb->cap,
                              mb->count + 1, sizeof *mb->msgs);
  if (rc == 0)
    rc = mailproto_memstore_keywords_alloc(s, &plan);
  ms_body *body = NULL;
  if (rc == 0 && !(body = take_body(s, w))) {
    mailproto_memstore_keywords_free(s, &plan);
    rc = MAILPROTO_ERR_NOMEM;
  }
  if (rc != 0) {
    writer_free(s, w);
    return rc;
  }

  mailproto_memstore_keywords_commit(mb, &plan);
  mailproto_datetime date =
      w->ap.has_date ? w->ap.date : mailproto_memstore_now(s);
  ms_msg m;
  memset(&m, 0, sizeof m);
  m.uid = mb->uidnext++;
  m.flags = w->ap.flags;
  m.tz_minutes = (int16_t)date.tz_minutes;
  m.keywords = mask;
  m.modseq = ++mb->modseq;
  m.date = date.utc;
  m.body = body;
  mailproto_memstore_push(mb, &m);
  *uidvalidity = mb->uidvalidity;
  *uid = m.uid;
  writer_free(s, w);
  mailproto_memstore_notify(mb, NULL);
  return 0;
}

int mailproto_memstore_hook_deliver_commit(void *ctx, mailproto_op *op,
                                           void *writer, int all_or_nothing,
                                           int *results) {
  mailproto_memstore *s = ctx;
  ms_writer *w = writer;
  (void)op;
  if (!s || !w)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (w->kind != W_DELIVER || !results) {
    writer_free(s, w);
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  ms_body *body = take_body(s, w);
  if (!body) {
    for (size_t i = 0; i < w->account_count; i++)
      results[i] = MAILPROTO_ERR_NOMEM;
    writer_free(s, w);
    return MAILPROTO_ERR_NOMEM;
  }
  /* Reserve every account's room first; an account named twice needs
   * room (and UIDs) for two messages. */
  int first_error = 0;
  for (size_t i = 0; i < w->account_count; i++) {
    ms_mailbox *mb = mailproto_memstore_find(w->accounts[i], "INBOX");
    size_t twice = 0;
    for (size_t j = 0; j <= i; j++)
      twice += w->accounts[j] == w->accounts[i];
    int rc = 0;
    if ((uint64_t)mb->uidnext + twice - 1 > MS_UID_MAX)
      rc = MAILPROTO_ERR_LIMIT;
    else
      rc = mailproto_store_grow(&s->alloc, (void **)&mb->msgs, &mb->cap,
                                mb->count + twice, sizeof *mb->msgs);
    results[i] = rc;
    if (rc != 0 && first_error == 0)
      first_error = rc;
  }
  if (all_or_nothing && first_error != 0) {
    for (size_t i = 0; i < w->account_count; i++)
      results[i] = first_error;
  }
  mailproto_datetime now = mailproto_memstore_now(s);
  size_t delivered = 0;
  for (size_t i = 0; i < w->account_count; i++) {
    if (results[i] != 0)
      continue;
    ms_mailbox *mb = mailproto_memstore_find(w->accounts[i], "INBOX");
    ms_msg m;
    memset(&m, 0, sizeof m);
    m.uid = mb->uidnext++;
    m.tz_minutes = (int16_t)now.tz_minutes;
    m.modseq = ++mb->modseq;
    m.date = now.utc;
    m.body = body;
    body->refs++;
    mailproto_memstore_push(mb, &m);
    mailproto_memstore_notify(mb, NULL);
    delivered++;
  }
  mailproto_memstore_body_unref(s, body);
  writer_free(s, w);
  return delivered ? 0 : first_error;
}

void mailproto_memstore_hook_abort(void *ctx, void *writer) {
  if (ctx)
    writer_free(ctx, writer);
}
