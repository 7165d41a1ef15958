/* The in-memory view of a folder: its messages, ascending by UID, their
 * names in one string pool, and the counters status needs. */
#define _POSIX_C_SOURCE 200809L

#include <string.h>

#include "maildir/maildir_internal.h"

static void bury(mailproto_maildir *s, md_folder *f);

void mailproto_maildir_folder_reset(md_folder *f) {
  /* The index is read whole again (another process wrote it anew, or it
   * was rebuilt under a new UIDVALIDITY): every message leaves msgs here
   * and gets a grave as in a compaction, or message_get could not answer
   * for those the handles' next sync reports expunged. Graves of messages
   * the index still holds cost memory only until every handle has synced
   * (message_get finds them live). */
  for (size_t i = 0; i < f->count; i++)
    f->msgs[i].state |= MD_GONE;
  bury(f->store, f);
  f->count = 0;
  f->pool_len = f->pool_garbage = 0;
  f->seen = f->deleted = f->in_new = 0;
  f->vsize = 0;
  f->gen++;
  f->loaded = 0;
  f->uidvalidity = f->uidnext = f->recent_from = 0;
  f->modseq = 0;
  f->special_use = 0;
  f->ix_len = 0;
  f->ix_records = 0;
  f->new_dirty = f->cur_dirty = 1;
}

size_t mailproto_maildir_lower_bound(const md_folder *f, uint32_t uid) {
  size_t lo = 0, hi = f->count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->msgs[mid].uid < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

md_msg *mailproto_maildir_find(const md_folder *f, uint32_t uid) {
  size_t i = mailproto_maildir_lower_bound(f, uid);
  if (i < f->count && f->msgs[i].uid == uid && !(f->msgs[i].state & MD_GONE))
    return &f->msgs[i];
  return NULL;
}

int mailproto_maildir_reserve(mailproto_maildir *s, md_folder *f,
                              size_t extra) {
  size_t need;
  if (mailproto_size_add(f->count, extra, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  return mailproto_store_grow(&s->alloc, (void **)&f->msgs, &f->cap, need,
                              sizeof *f->msgs);
}

int mailproto_maildir_pool_reserve(mailproto_maildir *s, md_folder *f,
                                   size_t extra) {
  size_t need;
  if (mailproto_size_add(f->pool_len, extra, &need) != 0 || need > UINT32_MAX)
    return MAILPROTO_ERR_LIMIT;
  if (need > f->pool_cap) {
    size_t cap = f->pool_cap ? f->pool_cap : 4096;
    while (cap < need)
      if (mailproto_size_mul(cap, 2, &cap) != 0)
        return MAILPROTO_ERR_NOMEM;
    char *p = mailproto_mem_realloc(&s->alloc, f->pool, cap);
    if (!p)
      return MAILPROTO_ERR_NOMEM;
    f->pool = p;
    f->pool_cap = cap;
  }
  return 0;
}

int mailproto_maildir_pool_add(mailproto_maildir *s, md_folder *f,
                               const char *name, size_t len, uint32_t *off) {
  int rc = mailproto_maildir_pool_reserve(s, f, len);
  if (rc != 0)
    return rc;
  size_t need = f->pool_len + len;
  memcpy(f->pool + f->pool_len, name, len);
  *off = (uint32_t)f->pool_len;
  f->pool_len = need;
  return 0;
}

static void count(md_folder *f, const md_msg *m, int sign) {
  size_t seen = (m->flags & MAILPROTO_FLAG_SEEN) != 0;
  size_t del = (m->flags & MAILPROTO_FLAG_DELETED) != 0;
  size_t in_new = (m->state & MD_IN_NEW) != 0;
  if (sign > 0) {
    f->seen += seen;
    f->deleted += del;
    f->in_new += in_new;
    f->vsize += m->vsize;
  } else {
    f->seen -= seen;
    f->deleted -= del;
    f->in_new -= in_new;
    f->vsize -= m->vsize;
  }
}

void mailproto_maildir_push(md_folder *f, const md_msg *m) {
  f->msgs[f->count++] = *m;
  count(f, m, 1);
}

void mailproto_maildir_set_msg_flags(md_folder *f, md_msg *m, uint8_t flags,
                                     uint64_t kw) {
  count(f, m, -1);
  m->flags = flags;
  m->kw = kw;
  count(f, m, 1);
}

void mailproto_maildir_remove(md_folder *f, md_msg *m) {
  if (m->state & MD_GONE)
    return;
  count(f, m, -1);
  m->state |= MD_GONE;
  f->pool_garbage += m->name_len;
}

/* Copies the live names into a fresh pool. Keeps the old one on NOMEM:
 * garbage costs memory, never correctness. */
static void pool_compact(mailproto_maildir *s, md_folder *f) {
  size_t live = f->pool_len - f->pool_garbage;
  char *p = mailproto_mem_malloc(&s->alloc, live ? live : 1);
  if (!p)
    return;
  size_t o = 0;
  for (size_t i = 0; i < f->count; i++) {
    md_msg *m = &f->msgs[i];
    memcpy(p + o, f->pool + m->name, m->name_len);
    m->name = (uint32_t)o;
    o += m->name_len;
  }
  mailproto_mem_free(&s->alloc, f->pool);
  f->pool = p;
  f->pool_len = f->pool_cap = o;
  f->pool_garbage = 0;
}

/* Keeps what message_get needs of the removed messages while handles may
 * still report them (merged into the ascending graves). */
static void bury(mailproto_maildir *s, md_folder *f) {
  size_t gone = 0;
  for (size_t i = 0; i < f->count; i++)
    gone += (f->msgs[i].state & MD_GONE) != 0;
  size_t total;
  if (!f->handles || gone == 0 ||
      mailproto_size_add(f->grave_count, gone, &total) != 0)
    return;
  md_tomb *g = mailproto_mem_reallocarray(&s->alloc, NULL, total, sizeof *g);
  if (!g)
    return;
  size_t a = 0, n = 0;
  for (size_t i = 0; i < f->count; i++) {
    const md_msg *m = &f->msgs[i];
    if (!(m->state & MD_GONE))
      continue;
    while (a < f->grave_count && f->graves[a].uid < m->uid)
      g[n++] = f->graves[a++];
    if (a < f->grave_count && f->graves[a].uid == m->uid)
      a++; /* the same UID again: the newer one counts */
    g[n].uid = m->uid;
    g[n].tz = m->tz;
    g[n].vsize = m->vsize;
    g[n].psize = m->psize;
    g[n].date = m->date;
    n++;
  }
  while (a < f->grave_count)
    g[n++] = f->graves[a++];
  mailproto_mem_free(&s->alloc, f->graves);
  f->graves = g;
  f->grave_count = n;
}

const md_tomb *mailproto_maildir_tomb_find(const md_tomb *t, size_t n,
                                           uint32_t uid) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (t[mid].uid < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && t[lo].uid == uid ? &t[lo] : NULL;
}

void mailproto_maildir_graves_trim(mailproto_maildir *s, md_folder *f) {
  for (const md_handle *h = f->handles; h; h = h->next)
    if (h->known_gen != f->gen && !h->detached)
      return;
  mailproto_mem_free(&s->alloc, f->graves);
  f->graves = NULL;
  f->grave_count = 0;
}

void mailproto_maildir_compact(mailproto_maildir *s, md_folder *f) {
  bury(s, f);
  size_t w = 0;
  for (size_t i = 0; i < f->count; i++)
    if (!(f->msgs[i].state & MD_GONE))
      f->msgs[w++] = f->msgs[i];
  if (w != f->count)
    f->gen++;
  f->count = w;
  if (f->pool_garbage > 65536 && f->pool_garbage > f->pool_len / 2)
    pool_compact(s, f);
}

int mailproto_maildir_rename_msg(mailproto_maildir *s, md_folder *f, md_msg *m,
                                 const char *name, int in_new, int odd) {
  size_t len = strlen(name);
  if (odd) {
    uint32_t off;
    int rc = mailproto_maildir_pool_add(s, f, name, len, &off);
    if (rc != 0)
      return rc;
    f->pool_garbage += m->name_len;
    m->name = off;
    m->name_len = (uint8_t)len;
    m->state |= MD_ODD;
  } else if (m->state & MD_ODD) {
    /* The pooled name starts with the base: keep just that part. */
    f->pool_garbage += (size_t)(m->name_len - m->base_len);
    m->name_len = m->base_len;
    m->state &= (uint8_t)~MD_ODD;
  }
  if (in_new != ((m->state & MD_IN_NEW) != 0)) {
    if (in_new) {
      m->state |= MD_IN_NEW;
      f->in_new++;
    } else {
      m->state &= (uint8_t)~MD_IN_NEW;
      f->in_new--;
    }
  }
  return 0;
}
