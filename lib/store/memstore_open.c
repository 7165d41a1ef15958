/*
 * The in-memory store's open mailboxes: handles, the change log that lets
 * every handle learn what changed since it last looked, \Recent, and read.
 *
 * A handle remembers the HIGHESTMODSEQ and UIDNEXT it was last told. Sync
 * reports log entries newer than that modseq (expunges of UIDs the handle
 * knew, then changed messages) and every message at or above its UIDNEXT.
 * Log entries every handle has seen are dropped, and a mailbox without
 * handles keeps no log at all, so the log only holds what someone still
 * has to be told.
 */
#include <stdlib.h>
#include <string.h>

#include "store/memstore_hooks.h"
#include "store/memstore_internal.h"

/* Searching only from `from` on keeps a caller's cursor right while expunge
 * compacts the array behind it. */
size_t mailproto_memstore_lower_bound_from(const ms_mailbox *mb, size_t from,
                                           uint32_t uid) {
  size_t lo = from, hi = mb->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mb->msgs[mid].uid < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

void mailproto_memstore_push(ms_mailbox *mb, const ms_msg *m) {
  mb->msgs[mb->count++] = *m;
  mb->size += m->body->size;
  mb->seen += (m->flags & MAILPROTO_FLAG_SEEN) != 0;
  mb->deleted += (m->flags & MAILPROTO_FLAG_DELETED) != 0;
}

/* ---- the change log ---- */

/* Live entries below which the log is never compacted. */
#define LOG_COMPACT_MIN 64u

/*
 * Drops the flag changes a later entry supersedes: a message changed again
 * has a newer entry (every change of an existing message is logged), and
 * one expunged since has its expunge entry. Sync reports a changed message
 * once, from its current state, so a handle that lags behind loses nothing.
 * This bounds the log by the messages (plus expunges) rather than by the
 * changes made while some handle does not sync. Also drops trimmed entries.
 */
static void log_compact(ms_mailbox *mb) {
  size_t w = 0;
  for (size_t i = mb->log_start; i < mb->log_len; i++) {
    const ms_change c = mb->log[i];
    if (!c.expunged) {
      size_t k = mailproto_memstore_lower_bound(mb, c.tomb.uid);
      if (k >= mb->count || mb->msgs[k].uid != c.tomb.uid ||
          mb->msgs[k].modseq != c.modseq)
        continue;
    }
    mb->log[w++] = c;
  }
  mb->log_start = 0;
  mb->log_len = w;
  /* Twice what survived: compactions cost O(log n) per logged change. */
  mb->log_compact_at = 2 * w > LOG_COMPACT_MIN ? 2 * w : LOG_COMPACT_MIN;
}

int mailproto_memstore_log_reserve(mailproto_memstore *s, ms_mailbox *mb,
                                   size_t extra) {
  if (!mb->handles || extra == 0)
    return 0;
  size_t live = mb->log_len - mb->log_start;
  if (live > (mb->log_compact_at ? mb->log_compact_at : LOG_COMPACT_MIN))
    log_compact(mb);
  /* Reuse the room of trimmed entries before growing. */
  if (mb->log_start > 0 && mb->log_cap - mb->log_len < extra) {
    memmove(mb->log, mb->log + mb->log_start,
            (mb->log_len - mb->log_start) * sizeof *mb->log);
    mb->log_len -= mb->log_start;
    mb->log_start = 0;
  }
  size_t need;
  if (mailproto_size_add(mb->log_len, extra, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  return mailproto_store_grow(&s->alloc, (void **)&mb->log, &mb->log_cap, need,
                              sizeof *mb->log);
}

void mailproto_memstore_log_add(ms_mailbox *mb, const ms_msg *m,
                                uint64_t modseq, int expunged) {
  if (!mb->handles)
    return;
  ms_change *c = &mb->log[mb->log_len++];
  memset(c, 0, sizeof *c);
  c->modseq = modseq;
  c->expunged = expunged != 0;
  c->tomb.uid = m->uid;
  if (expunged) {
    c->tomb.tz_minutes = m->tz_minutes;
    c->tomb.size = m->body->size;
    c->tomb.stored = m->body->len;
    c->tomb.date = m->date;
  }
}

/* Drops what every handle has seen; frees the log when no handle is left. */
static void log_trim(mailproto_memstore *s, ms_mailbox *mb) {
  if (!mb->handles) {
    mailproto_mem_free(&s->alloc, mb->log);
    mb->log = NULL;
    mb->log_start = mb->log_len = mb->log_cap = mb->log_compact_at = 0;
    return;
  }
  uint64_t seen = UINT64_MAX;
  for (const ms_handle *h = mb->handles; h; h = h->next)
    if (h->known_modseq < seen)
      seen = h->known_modseq;
  while (mb->log_start < mb->log_len && mb->log[mb->log_start].modseq <= seen)
    mb->log_start++;
  if (mb->log_start == mb->log_len)
    mb->log_start = mb->log_len = mb->log_compact_at = 0;
}

void mailproto_memstore_notify(ms_mailbox *mb, const ms_handle *except) {
  for (ms_handle *h = mb->handles; h; h = h->next)
    if (h != except && h->notify)
      h->notify(h->notify_arg);
}

int mailproto_memstore_reserve_empty(mailproto_memstore *s, ms_mailbox *mb) {
  return mailproto_memstore_log_reserve(s, mb, mb->count);
}

void mailproto_memstore_empty(mailproto_memstore *s, ms_mailbox *mb,
                              ms_mailbox *dst) {
  if (mb->count) {
    uint64_t modseq = ++mb->modseq;
    for (size_t i = 0; i < mb->count; i++)
      mailproto_memstore_log_add(mb, &mb->msgs[i], modseq, 1);
  }
  if (dst) {
    dst->msgs = mb->msgs;
    dst->count = mb->count;
    dst->cap = mb->cap;
    dst->seen = mb->seen;
    dst->deleted = mb->deleted;
    dst->size = mb->size;
    dst->uidnext = mb->uidnext;
    dst->recent_from = mb->recent_from;
    dst->modseq = mb->modseq;
    dst->selectable = mb->selectable;
    dst->special_use = mb->special_use;
  } else {
    for (size_t i = 0; i < mb->count; i++)
      mailproto_memstore_body_unref(s, mb->msgs[i].body);
    mailproto_mem_free(&s->alloc, mb->msgs);
  }
  mb->msgs = NULL;
  mb->count = mb->cap = 0;
  mb->seen = mb->deleted = 0;
  mb->size = 0;
  mailproto_memstore_notify(mb, NULL);
}

/* ---- \Recent ---- */

/* Messages of the mailbox with a UID in [first, last]. */
static size_t count_between(const ms_mailbox *mb, uint32_t first,
                            uint32_t last) {
  return mailproto_memstore_lower_bound(mb, last + 1) -
         mailproto_memstore_lower_bound(mb, first);
}

static int recent_reserve(mailproto_memstore *s, ms_handle *h) {
  return mailproto_store_grow(&s->alloc, (void **)&h->recent, &h->recent_cap,
                              h->recent_count + 1, sizeof *h->recent);
}

/*
 * The UIDs that become \Recent for h now: those nobody has claimed and h
 * has not been told about. A read-write handle claims them (RFC 3501
 * 2.3.2: only the first session to be notified sees \Recent); a read-only
 * one only sees them.
 */
static uint32_t recent_start(const ms_handle *h) {
  const ms_mailbox *mb = h->mb;
  return mb->recent_from > h->known_uidnext ? mb->recent_from
                                            : h->known_uidnext;
}

static void recent_commit(ms_handle *h, uint32_t from) {
  ms_mailbox *mb = h->mb;
  /* Room was reserved before. */
  mailproto_uid_ranges_add(h->recent, &h->recent_count, from, mb->uidnext);
  if (!(h->flags & MAILPROTO_OPEN_READONLY))
    mb->recent_from = mb->uidnext;
}

void mailproto_memstore_fill_status(const ms_mailbox *mb, const ms_handle *h,
                                    mailproto_mailbox_status *st) {
  size_t recent = 0;
  if (h) {
    for (size_t i = 0; i < h->recent_count; i++)
      recent += count_between(mb, h->recent[i].first, h->recent[i].last);
  } else {
    recent = mb->count - mailproto_memstore_lower_bound(mb, mb->recent_from);
  }
  mailproto_mailbox_status full;
  memset(&full, 0, sizeof full);
  full.messages = (uint32_t)mb->count;
  full.recent = (uint32_t)recent;
  full.unseen = (uint32_t)(mb->count - mb->seen);
  full.deleted = (uint32_t)mb->deleted;
  full.uidnext = mb->uidnext;
  full.uidvalidity = mb->uidvalidity;
  full.size = mb->size;
  full.highest_modseq = mb->modseq;
  mailproto_store_put_status(st, &full);
}

/* What open, sync and message_get say of a message. */
static void fill_info(const ms_handle *h, const ms_msg *m, uint32_t new_recent,
                      mailproto_message_info *info) {
  mailproto_store_message_base(info, m->uid, m->body->size, m->body->len,
                               m->date, m->tz_minutes);
  info->flags = m->flags;
  if (m->uid >= new_recent ||
      mailproto_uid_ranges_has(h->recent, h->recent_count, m->uid))
    info->flags |= MAILPROTO_FLAG_RECENT;
  info->keywords = m->keywords;
  info->modseq = m->modseq;
}

static int report_message(mailproto_op *op, const ms_handle *h, const ms_msg *m,
                          uint32_t new_recent) {
  mailproto_message_info info;
  fill_info(h, m, new_recent, &info);
  return mailproto_op_add_message(op, &info);
}

static int report_keywords(mailproto_op *op, const ms_mailbox *mb,
                           unsigned from) {
  for (unsigned i = from; i < mb->keyword_count; i++) {
    int rc = mailproto_op_add_keyword(op, i, mb->keywords[i]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static void handle_free(mailproto_memstore *s, ms_handle *h) {
  mailproto_memstore_body_unref(s, h->read_body);
  mailproto_mem_free(&s->alloc, h->tombs);
  mailproto_mem_free(&s->alloc, h->recent);
  mailproto_mem_free(&s->alloc, h);
}

int mailproto_memstore_hook_open(void *ctx, mailproto_op *op, void *account,
                                 const char *name, unsigned flags,
                                 mailproto_store_notify_fn notify,
                                 void *notify_arg, void **mailbox,
                                 mailproto_mailbox_status *status) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  int rc;
  if (!s || !op || !u || !name || !mailbox || !status ||
      (flags & ~(MAILPROTO_OPEN_READONLY | MAILPROTO_OPEN_EXCLUSIVE)))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *mailbox = NULL;
  ms_mailbox *mb = mailproto_memstore_find_selectable(u, name, &rc);
  if (!mb)
    return rc;
  /* The POP3 maildrop lock (RFC 1939 8): one exclusive open at a time. */
  if ((flags & MAILPROTO_OPEN_EXCLUSIVE) && mb->exclusive)
    return MAILPROTO_ERR_IN_USE;
  ms_handle *h = mailproto_mem_calloc(&s->alloc, 1, sizeof *h);
  if (!h)
    return MAILPROTO_ERR_NOMEM;
  h->store = s;
  h->mb = mb;
  h->flags = flags;
  h->notify = notify;
  h->notify_arg = notify_arg;
  h->known_uidnext = 0;
  uint32_t from = recent_start(h);
  if ((rc = recent_reserve(s, h)) != 0 ||
      (rc = report_keywords(op, mb, 0)) != 0)
    goto fail;
  for (size_t i = 0; i < mb->count; i++)
    if ((rc = report_message(op, h, &mb->msgs[i], from)) != 0)
      goto fail;

  recent_commit(h, from);
  h->known_modseq = mb->modseq;
  h->known_uidnext = mb->uidnext;
  h->known_keywords = mb->keyword_count;
  h->next = mb->handles;
  if (mb->handles)
    mb->handles->prev = h;
  mb->handles = h;
  if (flags & MAILPROTO_OPEN_EXCLUSIVE)
    mb->exclusive = h;
  mailproto_memstore_fill_status(mb, h, status);
  *mailbox = h;
  return 0;
fail:
  handle_free(s, h);
  return rc;
}

void mailproto_memstore_hook_close(void *ctx, void *mailbox) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  if (!s || !h)
    return;
  ms_mailbox *mb = h->mb;
  if (h->prev)
    h->prev->next = h->next;
  else
    mb->handles = h->next;
  if (h->next)
    h->next->prev = h->prev;
  if (mb->exclusive == h)
    mb->exclusive = NULL;
  handle_free(s, h);
  log_trim(s, mb);
  /* A mailbox deleted or renamed away lives until its last handle goes. */
  if (mb->detached && !mb->handles)
    mailproto_memstore_mailbox_free(s, mb);
}

static int cmp_uid(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

/* Sorts and removes duplicates; returns the new count. */
static size_t sort_unique(uint32_t *v, size_t n) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_uid);
  size_t k = 1;
  for (size_t i = 1; i < n; i++)
    if (v[i] != v[k - 1])
      v[k++] = v[i];
  return k;
}

static int cmp_tomb(const void *a, const void *b) {
  uint32_t x = ((const ms_tomb *)a)->uid, y = ((const ms_tomb *)b)->uid;
  return (x > y) - (x < y);
}

static size_t sort_unique_tombs(ms_tomb *v, size_t n) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_tomb);
  size_t k = 1;
  for (size_t i = 1; i < n; i++)
    if (v[i].uid != v[k - 1].uid)
      v[k++] = v[i];
  return k;
}

int mailproto_memstore_hook_sync(void *ctx, mailproto_op *op, void *mailbox,
                                 mailproto_mailbox_status *status) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  if (!s || !op || !h || !status)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_mailbox *mb = h->mb;

  /* The log is in modseq order: find where this handle's news start. */
  size_t lo = mb->log_start, hi = mb->log_len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (mb->log[mid].modseq <= h->known_modseq)
      lo = mid + 1;
    else
      hi = mid;
  }
  size_t news = mb->log_len - lo, nexp = 0, nchg = 0;
  uint32_t *uids = NULL;
  ms_tomb *tombs = NULL;
  if (news) {
    uids = mailproto_mem_calloc(&s->alloc, news, sizeof *uids);
    tombs = mailproto_mem_calloc(&s->alloc, news, sizeof *tombs);
    if (!uids || !tombs) {
      mailproto_mem_free(&s->alloc, uids);
      mailproto_mem_free(&s->alloc, tombs);
      return MAILPROTO_ERR_NOMEM;
    }
  }
  /* UIDs at or above the handle's UIDNEXT are new to it anyway. */
  for (size_t i = lo; i < mb->log_len; i++) {
    const ms_change *c = &mb->log[i];
    if (c->tomb.uid >= h->known_uidnext)
      continue;
    if (c->expunged)
      tombs[nexp++] = c->tomb;
    else
      uids[nchg++] = c->tomb.uid;
  }
  nexp = sort_unique_tombs(tombs, nexp);
  uint32_t *chg = uids;
  nchg = sort_unique(chg, nchg);

  uint32_t from = recent_start(h);
  int rc = recent_reserve(s, h);
  if (rc == 0)
    rc = report_keywords(op, mb, h->known_keywords);
  for (size_t i = 0; rc == 0 && i < nexp; i++)
    rc = mailproto_op_add_expunged(op, tombs[i].uid);
  for (size_t i = 0; rc == 0 && i < nchg; i++) {
    size_t k = mailproto_memstore_lower_bound(mb, chg[i]);
    /* Changed, then expunged: the expunge said it all. */
    if (k < mb->count && mb->msgs[k].uid == chg[i] &&
        mb->msgs[k].modseq > h->known_modseq)
      rc = report_message(op, h, &mb->msgs[k], from);
  }
  for (size_t k = mailproto_memstore_lower_bound(mb, h->known_uidnext);
       rc == 0 && k < mb->count; k++)
    rc = report_message(op, h, &mb->msgs[k], from);
  mailproto_mem_free(&s->alloc, uids);
  if (rc != 0) {
    mailproto_mem_free(&s->alloc, tombs);
    return rc; /* the handle's state is unchanged: a retry repeats it all */
  }

  /* This sync's expunges replace the last one's (see ms_handle). */
  mailproto_mem_free(&s->alloc, h->tombs);
  h->tombs = nexp ? tombs : NULL;
  h->tomb_count = nexp;
  if (!nexp)
    mailproto_mem_free(&s->alloc, tombs);

  recent_commit(h, from);
  h->known_modseq = mb->modseq;
  h->known_uidnext = mb->uidnext;
  h->known_keywords = mb->keyword_count;
  log_trim(s, mb);
  mailproto_memstore_fill_status(mb, h, status);
  return 0;
}

int mailproto_memstore_hook_read(void *ctx, mailproto_op *op, void *mailbox,
                                 uint32_t uid, uint64_t offset, size_t max,
                                 const uint8_t **data, size_t *len) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  (void)op;
  if (!s || !h || !data || !len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *data = NULL;
  *len = 0;
  const ms_mailbox *mb = h->mb;
  size_t k = mailproto_memstore_lower_bound(mb, uid);
  if (k >= mb->count || mb->msgs[k].uid != uid)
    return uid != 0 && uid < mb->uidnext ? MAILPROTO_ERR_EXPUNGED
                                         : MAILPROTO_ERR_NOT_FOUND;
  ms_body *b = mb->msgs[k].body;
  /* Hold the bytes until the next read or close, even if another session
   * expunges the message meanwhile. */
  b->refs++;
  mailproto_memstore_body_unref(s, h->read_body);
  h->read_body = b;
  if (offset >= b->len) {
    *data = b->data + b->len;
    return 0;
  }
  size_t rest = b->len - (size_t)offset;
  *data = b->data + offset;
  *len = rest < max ? rest : max;
  return 0;
}

/* The parsed-structure cache lives with the message's bytes. */
static ms_body *cached_body(const ms_handle *h, uint32_t uid) {
  const ms_mailbox *mb = h->mb;
  size_t k = mailproto_memstore_lower_bound(mb, uid);
  if (k >= mb->count || mb->msgs[k].uid != uid)
    return NULL;
  return mb->msgs[k].body;
}

int mailproto_memstore_hook_cache_get(void *ctx, void *mailbox, uint32_t uid,
                                      const uint8_t **data, size_t *len) {
  ms_handle *h = mailbox;
  if (!ctx || !h || !data || !len)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const ms_body *b = cached_body(h, uid);
  if (!b || !b->cache)
    return MAILPROTO_ERR_NOT_FOUND;
  *data = b->cache;
  *len = b->cache_len;
  return 0;
}

int mailproto_memstore_hook_cache_put(void *ctx, void *mailbox, uint32_t uid,
                                      const uint8_t *data, size_t len) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  if (!s || !h || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_body *b = cached_body(h, uid);
  if (!b)
    return MAILPROTO_ERR_NOT_FOUND;
  if (len == 0) { /* store.h: len 0 drops the entry */
    mailproto_mem_free(&s->alloc, b->cache);
    b->cache = NULL;
    b->cache_len = 0;
    return 0;
  }
  uint8_t *copy = mailproto_mem_malloc(&s->alloc, len);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  if (len)
    memcpy(copy, data, len);
  mailproto_mem_free(&s->alloc, b->cache);
  b->cache = copy;
  b->cache_len = len;
  return 0;
}

/* The tomb of `uid` if the log holds its expunge with a modseq above
 * `since`. Each change logs its messages under a modseq of its own, by
 * ascending UID (and compaction keeps the order), so the log is a series
 * of sorted runs: a binary search finds where the newest starts and
 * another looks in it, newest first, rather than a scan of every change
 * (a session may ask this of every message another one expunged at
 * once). */
static const ms_tomb *logged_expunge(const ms_mailbox *mb, uint64_t since,
                                     uint32_t uid) {
  size_t end = mb->log_len;
  while (end > mb->log_start && mb->log[end - 1].modseq > since) {
    uint64_t modseq = mb->log[end - 1].modseq;
    size_t lo = mb->log_start, hi = end - 1;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (mb->log[mid].modseq < modseq)
        lo = mid + 1;
      else
        hi = mid;
    }
    size_t start = lo;
    hi = end;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (mb->log[mid].tomb.uid < uid)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < end && mb->log[lo].tomb.uid == uid)
      return mb->log[lo].expunged ? &mb->log[lo].tomb : NULL;
    end = start;
  }
  return NULL;
}

int mailproto_memstore_hook_message_get(void *ctx, void *mailbox, uint32_t uid,
                                        mailproto_message_info *info) {
  const ms_handle *h = mailbox;
  if (!ctx || !h || !info || info->struct_size < sizeof *info)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  const ms_mailbox *mb = h->mb;
  size_t k = mailproto_memstore_lower_bound(mb, uid);
  if (k < mb->count && mb->msgs[k].uid == uid) {
    /* \Recent as this handle knows it; messages it has not been told
     * about yet count as not claimed by it. */
    fill_info(h, &mb->msgs[k], UINT32_MAX, info);
    return 0;
  }
  /* Expunged, and reported so by the last sync: sizes and date only. */
  size_t lo = 0, hi = h->tomb_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (h->tombs[mid].uid < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  const ms_tomb *t =
      lo < h->tomb_count && h->tombs[lo].uid == uid ? &h->tombs[lo] : NULL;
  /* Expunged since this handle's last sync, and known to it: in the log
   * of the changes it has not seen yet. */
  if (!t && uid < h->known_uidnext)
    t = logged_expunge(mb, h->known_modseq, uid);
  if (!t)
    return MAILPROTO_ERR_NOT_FOUND;
  mailproto_store_message_base(info, uid, t->size, t->stored, t->date,
                               t->tz_minutes);
  return 0;
}
