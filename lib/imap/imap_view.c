/*
 * One IMAP session's view of its selected mailbox (see imap_view.h).
 *
 * Layout: messages in ascending UID order in four parallel arrays, 10
 * bytes per message: the UID, the mod-sequence as an offset from a base
 * chosen at the first report, the system flags, and state bits. Keyword
 * masks live in a hash table keyed by UID because most messages have
 * none; mod-sequences that do not fit the 32-bit offset go to a second
 * one. Sequence number = index + 1 for the first `visible` messages; new
 * messages wait after them until EXISTS is announced.
 *
 * Pending announcements are state bits plus queues: the EXPUNGE queue is
 * only reserved while messages are marked (a round fills it during the
 * compaction pass, so flushing never allocates); the change queue holds
 * UIDs, at most once per message (the state bits say whether a message
 * is queued).
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_view.h"

enum {
  ST_EXPUNGED = 0x01,    /* store removed it; not compacted yet */
  ST_PEND_FLAGS = 0x02,  /* queued: flags or keywords to announce */
  ST_PEND_MODSEQ = 0x04, /* queued: modseq alone (CONDSTORE) */
  ST_KEYWORDS = 0x08     /* has an entry in the keyword table */
};
#define ST_PENDING (ST_PEND_FLAGS | ST_PEND_MODSEQ)

/* The flags a message keeps in its byte: the settable ones and \Recent. */
#define VIEW_FLAGS (MAILPROTO_FLAGS_SETTABLE | MAILPROTO_FLAG_RECENT)

/* A mod-sequence offset that says "look in the escape table". */
#define MODSEQ_ESCAPED UINT32_MAX

/* Open addressing with linear probing: UID (never 0) -> 64-bit value. */
typedef struct kvmap {
  uint32_t *keys; /* 0: empty slot */
  uint64_t *vals;
  size_t cap; /* 0 or a power of two */
  size_t count;
} kvmap;

typedef struct expunge_entry {
  uint32_t uid;
  uint32_t seq;
} expunge_entry;

struct mailproto_imap_view {
  mailproto_allocator alloc;

  uint32_t *uids;
  uint32_t *mso; /* modseq - modseq_base, or MODSEQ_ESCAPED */
  uint8_t *flags;
  uint8_t *state;
  size_t n;   /* messages held, invisible new ones included */
  size_t cap; /* room in every one of the four arrays */
  size_t visible;
  size_t tail_expunged; /* expunged among [visible, n) */
  uint32_t uid_last;    /* highest UID ever reported */
  uint32_t exp_min;     /* lowest expunged UID not compacted; 0: none */

  uint64_t modseq_base;
  int have_base;
  kvmap kw;  /* UID -> keyword mask */
  kvmap esc; /* UID -> modseq that does not fit an offset */

  size_t recent_all;     /* \Recent among all n */
  size_t recent_visible; /* \Recent among the visible ones */

  expunge_entry *exp;
  size_t exp_cap;
  size_t exp_pending; /* visible messages marked, not in a round yet */
  size_t exp_round;   /* entries of the current round not handed out */

  uint32_t *chg; /* UIDs queued for FETCH announcements */
  size_t chg_len, chg_cap;
  size_t chg_round, chg_pos; /* the current round: [chg_pos, chg_round) */
  int chg_active;

  uint32_t uidnext, uidvalidity;
  uint64_t highest_modseq, safe_modseq;
  int condstore;
  int keywords_new;
  /* The keyword table, `keyword_slots` long: allocated for the first
   * keyword the mailbox has (most have none; 64 pointers would double
   * an idle session's size). */
  char **keyword;
  unsigned keyword_slots;
};

/* Queues above this many entries give their memory back when emptied. */
#define QUEUE_KEEP 256u

/* ---- the hash tables ---- */

static size_t kv_hash(uint32_t key, size_t mask) {
  /* Mixes all bits so UIDs with a common stride spread out. */
  uint32_t x = key;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return (size_t)x & mask;
}

/* The slot holding `key`, or the empty slot where it would go. */
static size_t kv_slot(const kvmap *m, uint32_t key) {
  size_t mask = m->cap - 1, i = kv_hash(key, mask);
  while (m->keys[i] != 0 && m->keys[i] != key)
    i = (i + 1) & mask;
  return i;
}

static uint64_t kv_get(const kvmap *m, uint32_t key) {
  if (m->cap == 0)
    return 0;
  size_t i = kv_slot(m, key);
  return m->keys[i] == key ? m->vals[i] : 0;
}

static int kv_rehash(const mailproto_allocator *a, kvmap *m, size_t cap) {
  uint32_t *keys = mailproto_mem_calloc(a, cap, sizeof *keys);
  uint64_t *vals = mailproto_mem_reallocarray(a, NULL, cap, sizeof *vals);
  if (!keys || !vals) {
    mailproto_mem_free(a, keys);
    mailproto_mem_free(a, vals);
    return MAILPROTO_ERR_NOMEM;
  }
  kvmap grown = {keys, vals, cap, 0};
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] != 0) {
      size_t j = kv_slot(&grown, m->keys[i]);
      grown.keys[j] = m->keys[i];
      grown.vals[j] = m->vals[i];
      grown.count++;
    }
  mailproto_mem_free(a, m->keys);
  mailproto_mem_free(a, m->vals);
  *m = grown;
  return 0;
}

/* At most 3/4 full keeps linear probes short. */
static int kv_fits(size_t count, size_t cap) {
  return count <= cap / 4 * 3;
}

/* Makes room for `extra` more keys, so kv_put cannot fail. */
static int kv_reserve(const mailproto_allocator *a, kvmap *m, size_t extra) {
  size_t need;
  if (mailproto_size_add(m->count, extra, &need) != 0)
    return MAILPROTO_ERR_NOMEM;
  if (m->cap && kv_fits(need, m->cap))
    return 0;
  size_t cap = m->cap ? m->cap : 16;
  while (!kv_fits(need, cap)) {
    if (cap > (size_t)-1 / 2)
      return MAILPROTO_ERR_NOMEM;
    cap *= 2;
  }
  return kv_rehash(a, m, cap);
}

static void kv_put(kvmap *m, uint32_t key, uint64_t val) {
  size_t i = kv_slot(m, key);
  if (m->keys[i] == 0) {
    m->keys[i] = key;
    m->count++;
  }
  m->vals[i] = val;
}

static void kv_free(const mailproto_allocator *a, kvmap *m) {
  mailproto_mem_free(a, m->keys);
  mailproto_mem_free(a, m->vals);
  memset(m, 0, sizeof *m);
}

static void kv_del(const mailproto_allocator *a, kvmap *m, uint32_t key) {
  if (m->cap == 0)
    return;
  size_t mask = m->cap - 1, hole = kv_slot(m, key);
  if (m->keys[hole] != key)
    return;
  /* Backward shift: pull later entries of the probe run into the hole
   * when their home slot allows it, so lookups never need tombstones. */
  for (size_t j = (hole + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
    size_t home = kv_hash(m->keys[j], mask);
    int movable =
        hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
    if (movable) {
      m->keys[hole] = m->keys[j];
      m->vals[hole] = m->vals[j];
      hole = j;
    }
  }
  m->keys[hole] = 0;
  m->count--;
  if (m->count == 0) {
    kv_free(a, m);
  } else if (m->cap > 64 && m->count < m->cap / 8) {
    /* Best effort: if the smaller table cannot be had, keep this one. */
    (void)kv_rehash(a, m, m->cap / 4);
  }
}

static size_t kv_bytes(const kvmap *m) {
  return m->cap * (sizeof *m->keys + sizeof *m->vals);
}

/* ---- arrays ---- */

/* The next capacity of a growing array: 1.5x steps, at least `need`. */
static size_t next_cap(size_t cap, size_t need, size_t min) {
  size_t c = cap + cap / 2;
  if (c < cap || c < need)
    c = need;
  return c < min ? min : c;
}

static int grow_messages(mailproto_imap_view *v, size_t need) {
  if (need <= v->cap)
    return 0;
  if (need > UINT32_MAX) /* UIDs are 32 bits and strictly ascending */
    return MAILPROTO_ERR_NOMEM;
  size_t c = next_cap(v->cap, need, 64);
  if (c > UINT32_MAX)
    c = UINT32_MAX;
  /* Each array that grew keeps its new block even if a later one fails:
   * `cap` stays the smallest room of the four. */
  void *p = mailproto_mem_reallocarray(&v->alloc, v->uids, c, 4);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  v->uids = p;
  if (!(p = mailproto_mem_reallocarray(&v->alloc, v->mso, c, 4)))
    return MAILPROTO_ERR_NOMEM;
  v->mso = p;
  if (!(p = mailproto_mem_reallocarray(&v->alloc, v->flags, c, 1)))
    return MAILPROTO_ERR_NOMEM;
  v->flags = p;
  if (!(p = mailproto_mem_reallocarray(&v->alloc, v->state, c, 1)))
    return MAILPROTO_ERR_NOMEM;
  v->state = p;
  v->cap = c;
  return 0;
}

/* Gives back room down to `c` messages (c >= n). Best effort: an array
 * whose smaller block cannot be had keeps its larger one, and `cap` stays
 * the smallest room of the four. */
static void shrink_messages(mailproto_imap_view *v, size_t c) {
  if (c >= v->cap)
    return;
  if (c == 0) {
    mailproto_mem_free(&v->alloc, v->uids);
    mailproto_mem_free(&v->alloc, v->mso);
    mailproto_mem_free(&v->alloc, v->flags);
    mailproto_mem_free(&v->alloc, v->state);
    v->uids = v->mso = NULL;
    v->flags = v->state = NULL;
    v->cap = 0;
    return;
  }
  void *p;
  if ((p = mailproto_mem_reallocarray(&v->alloc, v->uids, c, 4)))
    v->uids = p;
  if ((p = mailproto_mem_reallocarray(&v->alloc, v->mso, c, 4)))
    v->mso = p;
  if ((p = mailproto_mem_reallocarray(&v->alloc, v->flags, c, 1)))
    v->flags = p;
  if ((p = mailproto_mem_reallocarray(&v->alloc, v->state, c, 1)))
    v->state = p;
  v->cap = c;
}

/* First index in [lo, hi) whose UID is >= uid. */
static size_t lower_bound(const mailproto_imap_view *v, size_t lo, size_t hi,
                          uint32_t uid) {
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (v->uids[mid] < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Index of `uid` among the first `limit` messages, or `limit`. */
static size_t find(const mailproto_imap_view *v, size_t limit, uint32_t uid) {
  size_t i = lower_bound(v, 0, limit, uid);
  return i < limit && v->uids[i] == uid ? i : limit;
}

/* ---- per-message values ---- */

static uint64_t keywords_at(const mailproto_imap_view *v, size_t i) {
  return (v->state[i] & ST_KEYWORDS) ? kv_get(&v->kw, v->uids[i]) : 0;
}

static uint64_t modseq_at(const mailproto_imap_view *v, size_t i) {
  if (v->mso[i] == MODSEQ_ESCAPED)
    return kv_get(&v->esc, v->uids[i]);
  return v->modseq_base + v->mso[i];
}

/* The offset of `modseq` from `base`, if it fits below MODSEQ_ESCAPED. */
static int modseq_offset(uint64_t base, uint64_t modseq, uint32_t *off) {
  if (modseq < base || modseq - base >= MODSEQ_ESCAPED)
    return 0;
  *off = (uint32_t)(modseq - base);
  return 1;
}

/* Centres the base on the first modseq seen, so stores whose modseqs are
 * large numbers (time stamps) still fit offsets in both directions. */
static uint64_t choose_base(uint64_t modseq) {
  return modseq <= 0x80000000u ? 0 : modseq - 0x80000000u;
}

/* Sets keywords; room in the table was reserved if an entry is added. */
static void put_keywords(mailproto_imap_view *v, size_t i, uint64_t kw) {
  if (kw) {
    kv_put(&v->kw, v->uids[i], kw);
    v->state[i] |= ST_KEYWORDS;
  } else if (v->state[i] & ST_KEYWORDS) {
    kv_del(&v->alloc, &v->kw, v->uids[i]);
    v->state[i] &= (uint8_t)~ST_KEYWORDS;
  }
}

/* Sets the modseq; room in the escape table was reserved if needed. */
static void put_modseq(mailproto_imap_view *v, size_t i, uint64_t modseq) {
  uint32_t off;
  if (modseq_offset(v->modseq_base, modseq, &off)) {
    if (v->mso[i] == MODSEQ_ESCAPED)
      kv_del(&v->alloc, &v->esc, v->uids[i]);
    v->mso[i] = off;
  } else {
    kv_put(&v->esc, v->uids[i], modseq);
    v->mso[i] = MODSEQ_ESCAPED;
  }
  if (modseq > v->highest_modseq)
    v->highest_modseq = modseq;
}

/* Queues a visible message for a FETCH; room was reserved in chg. */
static void queue_change(mailproto_imap_view *v, size_t i, uint8_t bits) {
  if (!(v->state[i] & ST_PENDING))
    v->chg[v->chg_len++] = v->uids[i];
  v->state[i] |= bits;
}

/* Room for one more queued change unless the message is queued already. */
static int reserve_change(mailproto_imap_view *v, size_t i, uint8_t bits) {
  if (!bits || (v->state[i] & ST_PENDING) || v->chg_len < v->chg_cap)
    return 0;
  size_t c = next_cap(v->chg_cap, v->chg_len + 1, 16);
  uint32_t *p = mailproto_mem_reallocarray(&v->alloc, v->chg, c, sizeof *p);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  v->chg = p;
  v->chg_cap = c;
  return 0;
}

/* Nothing waits to be announced: the client is up to date with the
 * store's HIGHESTMODSEQ (RFC 7162 3.2: never claim more than was sent). */
static void update_safe(mailproto_imap_view *v) {
  if (v->exp_pending == 0 && v->exp_round == 0 && v->chg_len == 0 &&
      v->n - v->tail_expunged == v->visible)
    v->safe_modseq = v->highest_modseq;
}

/*
 * Removes every expunged message at index >= from in one pass. Visible
 * ones are written to the EXPUNGE queue with their sequence numbers as
 * the client knows them (the queue has room: it was reserved while they
 * were marked). Returns how many visible ones went.
 */
static size_t compact(mailproto_imap_view *v, size_t from) {
  size_t w = from, out = 0, visible = v->visible;
  for (size_t r = from; r < v->n; r++) {
    if (!(v->state[r] & ST_EXPUNGED)) {
      if (w != r) {
        v->uids[w] = v->uids[r];
        v->mso[w] = v->mso[r];
        v->flags[w] = v->flags[r];
        v->state[w] = v->state[r];
      }
      w++;
      continue;
    }
    uint32_t uid = v->uids[r];
    int recent = (v->flags[r] & MAILPROTO_FLAG_RECENT) != 0;
    if (r < visible) {
      v->exp[out].uid = uid;
      v->exp[out].seq = (uint32_t)(r + 1);
      out++;
      if (recent)
        v->recent_visible--;
    } else {
      v->tail_expunged--;
    }
    if (recent)
      v->recent_all--;
    if (v->state[r] & ST_KEYWORDS)
      kv_del(&v->alloc, &v->kw, uid);
    if (v->mso[r] == MODSEQ_ESCAPED)
      kv_del(&v->alloc, &v->esc, uid);
  }
  v->n = w;
  v->visible -= out;
  return out;
}

/* ---- life cycle ---- */

int mailproto_imap_view_new(const mailproto_allocator *alloc,
                            mailproto_imap_view **out) {
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  mailproto_imap_view *v = mailproto_mem_calloc(alloc, 1, sizeof *v);
  if (!v)
    return MAILPROTO_ERR_NOMEM;
  v->alloc = alloc ? *alloc : *mailproto_default_allocator();
  *out = v;
  return 0;
}

void mailproto_imap_view_free(mailproto_imap_view *v) {
  if (!v)
    return;
  mailproto_allocator a = v->alloc;
  mailproto_mem_free(&a, v->uids);
  mailproto_mem_free(&a, v->mso);
  mailproto_mem_free(&a, v->flags);
  mailproto_mem_free(&a, v->state);
  kv_free(&a, &v->kw);
  kv_free(&a, &v->esc);
  mailproto_mem_free(&a, v->exp);
  mailproto_mem_free(&a, v->chg);
  for (unsigned i = 0; i < v->keyword_slots; i++)
    mailproto_mem_free(&a, v->keyword[i]);
  mailproto_mem_free(&a, v->keyword);
  mailproto_mem_free(&a, v);
}

size_t mailproto_imap_view_memory(const mailproto_imap_view *v) {
  if (!v)
    return 0;
  size_t bytes = sizeof *v + v->cap * 10 + kv_bytes(&v->kw) +
                 kv_bytes(&v->esc) + v->exp_cap * sizeof *v->exp +
                 v->chg_cap * sizeof *v->chg +
                 v->keyword_slots * sizeof *v->keyword;
  for (unsigned i = 0; i < v->keyword_slots; i++)
    if (v->keyword[i])
      bytes += strlen(v->keyword[i]) + 1;
  return bytes;
}

/* ---- store reports ---- */

int mailproto_imap_view_reserve(mailproto_imap_view *v, size_t messages) {
  if (!v)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return grow_messages(v, messages);
}

static int ascii_casecmp_n(const char *a, const char *b, size_t len) {
  for (size_t i = 0; i < len; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z')
      x = (unsigned char)(x + 32);
    if (y >= 'A' && y <= 'Z')
      y = (unsigned char)(y + 32);
    if (x != y)
      return 1;
  }
  return 0;
}

int mailproto_imap_view_keyword(mailproto_imap_view *v, unsigned index,
                                const char *name) {
  if (!v || !name || !*name || index >= MAILPROTO_KEYWORDS_MAX)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t len = strlen(name);
  if (index >= v->keyword_slots) {
    /* Room for a few more at once: stores report tables in order. */
    unsigned slots = (index + 8u) & ~7u;
    if (slots > MAILPROTO_KEYWORDS_MAX)
      slots = MAILPROTO_KEYWORDS_MAX;
    char **t =
        mailproto_mem_reallocarray(&v->alloc, v->keyword, slots, sizeof *t);
    if (!t)
      return MAILPROTO_ERR_NOMEM;
    for (unsigned i = v->keyword_slots; i < slots; i++)
      t[i] = NULL;
    v->keyword = t;
    v->keyword_slots = slots;
  }
  char *old = v->keyword[index];
  if (old && strlen(old) == len && ascii_casecmp_n(old, name, len) == 0)
    return 0;
  char *copy = mailproto_mem_strndup(&v->alloc, name, len);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  mailproto_mem_free(&v->alloc, old);
  v->keyword[index] = copy;
  v->keywords_new = 1;
  return 0;
}

static int add_message(mailproto_imap_view *v, uint32_t uid, uint32_t flags,
                       uint64_t keywords, uint64_t modseq) {
  uint64_t base = v->have_base ? v->modseq_base : choose_base(modseq);
  uint32_t off;
  int escaped = !modseq_offset(base, modseq, &off);
  int rc = grow_messages(v, v->n + 1);
  if (rc == 0 && keywords)
    rc = kv_reserve(&v->alloc, &v->kw, 1);
  if (rc == 0 && escaped)
    rc = kv_reserve(&v->alloc, &v->esc, 1);
  if (rc != 0)
    return rc;

  v->modseq_base = base;
  v->have_base = 1;
  size_t i = v->n++;
  v->uids[i] = uid;
  v->flags[i] = (uint8_t)(flags & VIEW_FLAGS);
  v->state[i] = 0;
  v->mso[i] = 0;
  put_keywords(v, i, keywords);
  put_modseq(v, i, modseq);
  if (flags & MAILPROTO_FLAG_RECENT)
    v->recent_all++;
  v->uid_last = uid;
  return 0;
}

int mailproto_imap_view_message(mailproto_imap_view *v, uint32_t uid,
                                uint32_t flags, uint64_t keywords,
                                uint64_t modseq) {
  if (!v || uid == 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (uid > v->uid_last)
    return add_message(v, uid, flags, keywords, modseq);

  size_t i = find(v, v->n, uid);
  if (i == v->n || (v->state[i] & ST_EXPUNGED))
    return 0; /* gone already, or never ours: nothing to show */

  uint8_t old = v->flags[i];
  uint8_t nf = (uint8_t)((old & MAILPROTO_FLAG_RECENT) |
                         (flags & MAILPROTO_FLAGS_SETTABLE));
  int flags_differ = nf != old || keywords != keywords_at(v, i);
  int modseq_differs = modseq != modseq_at(v, i);
  uint8_t bits = 0;
  /* Messages the client has not been told about need no FETCH: it will
   * ask for their flags after EXISTS. */
  if (i < v->visible) {
    if (flags_differ)
      bits = ST_PEND_FLAGS;
    else if (modseq_differs && v->condstore)
      bits = ST_PEND_MODSEQ;
  }

  uint32_t off;
  int rc = reserve_change(v, i, bits);
  if (rc == 0 && keywords && !(v->state[i] & ST_KEYWORDS))
    rc = kv_reserve(&v->alloc, &v->kw, 1);
  if (rc == 0 && modseq_differs && v->mso[i] != MODSEQ_ESCAPED &&
      !modseq_offset(v->modseq_base, modseq, &off))
    rc = kv_reserve(&v->alloc, &v->esc, 1);
  if (rc != 0)
    return rc;

  v->flags[i] = nf;
  put_keywords(v, i, keywords);
  if (modseq_differs)
    put_modseq(v, i, modseq);
  if (bits)
    queue_change(v, i, bits);
  return 0;
}

int mailproto_imap_view_expunged(mailproto_imap_view *v, uint32_t uid) {
  if (!v)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t i = find(v, v->n, uid);
  if (i == v->n || (v->state[i] & ST_EXPUNGED))
    return 0;
  if (i < v->visible) {
    /* Reserve the queue slot now so the round itself cannot fail. */
    if (v->exp_pending == v->exp_cap) {
      size_t c = next_cap(v->exp_cap, v->exp_pending + 1, 16);
      expunge_entry *p =
          mailproto_mem_reallocarray(&v->alloc, v->exp, c, sizeof *p);
      if (!p)
        return MAILPROTO_ERR_NOMEM;
      v->exp = p;
      v->exp_cap = c;
    }
    v->exp_pending++;
  } else {
    v->tail_expunged++;
  }
  v->state[i] |= ST_EXPUNGED;
  if (v->exp_min == 0 || uid < v->exp_min)
    v->exp_min = uid;
  return 0;
}

void mailproto_imap_view_status(mailproto_imap_view *v,
                                const mailproto_mailbox_status *status) {
  if (!v || !status)
    return;
  v->uidnext = status->uidnext;
  v->uidvalidity = status->uidvalidity;
  /* A struct from an older caller may lack the last field (struct_size 0:
   * not set, taken as complete, as the stores do). */
  size_t size = status->struct_size ? status->struct_size : sizeof *status;
  if (size >= offsetof(mailproto_mailbox_status, highest_modseq) +
                  sizeof status->highest_modseq &&
      status->highest_modseq > v->highest_modseq)
    v->highest_modseq = status->highest_modseq;
  update_safe(v);
}

void mailproto_imap_view_opened(mailproto_imap_view *v) {
  if (!v)
    return;
  if (v->tail_expunged)
    compact(v, v->visible);
  v->visible = v->n;
  v->recent_visible = v->recent_all;
  v->keywords_new = 0;
  shrink_messages(v, v->n);
  update_safe(v);
}

void mailproto_imap_view_set_condstore(mailproto_imap_view *v, int on) {
  if (v)
    v->condstore = on != 0;
}

/* ---- counters ---- */

uint32_t mailproto_imap_view_exists(const mailproto_imap_view *v) {
  return v ? (uint32_t)v->visible : 0;
}

uint32_t mailproto_imap_view_recent(const mailproto_imap_view *v) {
  return v ? (uint32_t)v->recent_visible : 0;
}

uint32_t mailproto_imap_view_first_unseen(const mailproto_imap_view *v) {
  if (!v)
    return 0;
  for (size_t i = 0; i < v->visible; i++)
    if (!(v->flags[i] & MAILPROTO_FLAG_SEEN))
      return (uint32_t)(i + 1);
  return 0;
}

uint32_t mailproto_imap_view_uidnext(const mailproto_imap_view *v) {
  if (!v)
    return 0;
  if (v->uid_last >= v->uidnext)
    return v->uid_last == UINT32_MAX ? UINT32_MAX : v->uid_last + 1;
  return v->uidnext;
}

uint32_t mailproto_imap_view_uidvalidity(const mailproto_imap_view *v) {
  return v ? v->uidvalidity : 0;
}

uint64_t mailproto_imap_view_highest_modseq(const mailproto_imap_view *v) {
  return v ? v->highest_modseq : 0;
}

uint64_t mailproto_imap_view_safe_modseq(const mailproto_imap_view *v) {
  return v ? v->safe_modseq : 0;
}

uint32_t mailproto_imap_view_pending_expunges(const mailproto_imap_view *v) {
  return v ? (uint32_t)v->exp_pending : 0;
}

/* ---- messages by index ---- */

static int visible_index(const mailproto_imap_view *v, uint32_t index) {
  return v && index < v->visible;
}

uint32_t mailproto_imap_view_uid(const mailproto_imap_view *v, uint32_t index) {
  return visible_index(v, index) ? v->uids[index] : 0;
}

uint32_t mailproto_imap_view_flags(const mailproto_imap_view *v,
                                   uint32_t index) {
  return visible_index(v, index) ? v->flags[index] : 0;
}

uint64_t mailproto_imap_view_keywords(const mailproto_imap_view *v,
                                      uint32_t index) {
  return visible_index(v, index) ? keywords_at(v, index) : 0;
}

uint64_t mailproto_imap_view_modseq(const mailproto_imap_view *v,
                                    uint32_t index) {
  return visible_index(v, index) ? modseq_at(v, index) : 0;
}

int mailproto_imap_view_is_expunged(const mailproto_imap_view *v,
                                    uint32_t index) {
  return visible_index(v, index) && (v->state[index] & ST_EXPUNGED) != 0;
}

uint32_t mailproto_imap_view_uid_lower_bound(const mailproto_imap_view *v,
                                             uint32_t uid) {
  return v ? (uint32_t)lower_bound(v, 0, v->visible, uid) : 0;
}

int mailproto_imap_view_find_uid(const mailproto_imap_view *v, uint32_t uid,
                                 uint32_t *index) {
  if (!v || uid == 0)
    return 0;
  size_t i = find(v, v->visible, uid);
  if (i == v->visible)
    return 0;
  if (index)
    *index = (uint32_t)i;
  return 1;
}

/* ---- keyword table ---- */

unsigned mailproto_imap_view_keyword_count(const mailproto_imap_view *v) {
  if (!v)
    return 0;
  for (unsigned i = v->keyword_slots; i > 0; i--)
    if (v->keyword[i - 1])
      return i;
  return 0;
}

const char *mailproto_imap_view_keyword_name(const mailproto_imap_view *v,
                                             unsigned index) {
  if (!v || index >= v->keyword_slots)
    return NULL;
  return v->keyword[index];
}

int mailproto_imap_view_keyword_find(const mailproto_imap_view *v,
                                     const char *name, size_t len,
                                     unsigned *index) {
  if (!v || !name)
    return 0;
  for (unsigned i = 0; i < v->keyword_slots; i++) {
    const char *k = v->keyword[i];
    if (k && strlen(k) == len && ascii_casecmp_n(k, name, len) == 0) {
      if (index)
        *index = i;
      return 1;
    }
  }
  return 0;
}

/* ---- sets ---- */

static int cmp_range(const void *a, const void *b) {
  const mailproto_imap_range *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

/* Sorts spans by their first index and merges overlapping or adjacent
 * ones. Returns the new count. */
static size_t sort_merge(mailproto_imap_range *s, size_t k) {
  for (size_t i = 1; i < k; i++)
    if (s[i].first < s[i - 1].first) {
      qsort(s, k, sizeof *s, cmp_range);
      break;
    }
  size_t w = 0;
  for (size_t r = 0; r < k; r++) {
    if (w > 0 && (uint64_t)s[r].first <= (uint64_t)s[w - 1].last + 1) {
      if (s[r].last > s[w - 1].last)
        s[w - 1].last = s[r].last;
    } else {
      s[w++] = s[r];
    }
  }
  return w;
}

static uint32_t star_or(uint32_t n, uint32_t star) {
  return n == MAILPROTO_IMAP_SEQ_STAR ? star : n;
}

int mailproto_imap_view_check_seq(const mailproto_imap_view *v,
                                  const mailproto_imap_range *ranges,
                                  size_t count) {
  if (!v || (count && !ranges))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  uint32_t exists = (uint32_t)v->visible;
  for (size_t i = 0; i < count; i++) {
    /* "*" in an empty mailbox is 0 here, which no message has. */
    uint32_t a = star_or(ranges[i].first, exists);
    uint32_t b = star_or(ranges[i].last, exists);
    if (a == 0 || b == 0 || a > exists || b > exists)
      return MAILPROTO_ERR_NOT_FOUND;
  }
  return 0;
}

int mailproto_imap_view_resolve_seq(const mailproto_imap_view *v,
                                    const mailproto_imap_range *ranges,
                                    size_t count, mailproto_imap_range *out,
                                    size_t *out_count) {
  if (!out_count || (count && !out))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out_count = 0;
  int rc = mailproto_imap_view_check_seq(v, ranges, count);
  if (rc != 0)
    return rc;
  uint32_t exists = (uint32_t)v->visible;
  for (size_t i = 0; i < count; i++) {
    uint32_t a = star_or(ranges[i].first, exists);
    uint32_t b = star_or(ranges[i].last, exists);
    /* out may be ranges: entry i is read before it is written. */
    out[i].first = (a < b ? a : b) - 1;
    out[i].last = (a < b ? b : a) - 1;
  }
  *out_count = sort_merge(out, count);
  return 0;
}

int mailproto_imap_view_resolve_uid(const mailproto_imap_view *v,
                                    const mailproto_imap_range *ranges,
                                    size_t count, mailproto_imap_range *out,
                                    size_t *out_count) {
  if (!v || !out_count || (count && (!ranges || !out)))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out_count = 0;
  size_t vis = v->visible;
  if (vis == 0)
    return 0; /* every UID set of an empty mailbox is empty */
  uint32_t star = v->uids[vis - 1];
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    uint32_t a = star_or(ranges[i].first, star);
    uint32_t b = star_or(ranges[i].last, star);
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    size_t first = lower_bound(v, 0, vis, lo);
    size_t end = hi == UINT32_MAX ? vis : lower_bound(v, first, vis, hi + 1);
    if (first >= end)
      continue; /* no message here: not an error for UID commands */
    /* k <= i, so this never overwrites a range still to be read. */
    out[k].first = (uint32_t)first;
    out[k].last = (uint32_t)(end - 1);
    k++;
  }
  *out_count = sort_merge(out, k);
  return 0;
}

size_t mailproto_imap_view_spans_to_uids(const mailproto_imap_view *v,
                                         const mailproto_imap_range *spans,
                                         size_t count,
                                         mailproto_uid_range *out) {
  if (!v || !spans || !out)
    return 0;
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    if (spans[i].first > spans[i].last || spans[i].last >= v->visible)
      continue; /* not a span of this view */
    out[k].first = v->uids[spans[i].first];
    out[k].last = v->uids[spans[i].last];
    k++;
  }
  return k;
}

uint64_t mailproto_imap_view_spans_total(const mailproto_imap_range *spans,
                                         size_t count) {
  uint64_t total = 0;
  for (size_t i = 0; spans && i < count; i++)
    if (spans[i].first <= spans[i].last)
      total += (uint64_t)spans[i].last - spans[i].first + 1;
  return total;
}

/* ---- own changes ---- */

int mailproto_imap_view_store_own(mailproto_imap_view *v, uint32_t index,
                                  mailproto_flag_mode mode, uint32_t flags,
                                  uint64_t keywords, int announce) {
  if (!visible_index(v, index))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (v->state[index] & ST_EXPUNGED)
    return 0; /* the store skipped it too */
  uint8_t old = v->flags[index];
  uint8_t f = (uint8_t)(flags & MAILPROTO_FLAGS_SETTABLE);
  uint64_t oldkw = keywords_at(v, index), kw;
  uint8_t nf;
  switch (mode) {
  case MAILPROTO_FLAGS_REPLACE:
    nf = (uint8_t)((old & MAILPROTO_FLAG_RECENT) | f);
    kw = keywords;
    break;
  case MAILPROTO_FLAGS_ADD:
    nf = (uint8_t)(old | f);
    kw = oldkw | keywords;
    break;
  case MAILPROTO_FLAGS_REMOVE:
    nf = (uint8_t)(old & ~f);
    kw = oldkw & ~keywords;
    break;
  default:
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  }
  uint8_t bits = announce ? ST_PEND_FLAGS : 0;
  int rc = reserve_change(v, index, bits);
  if (rc == 0 && kw && !(v->state[index] & ST_KEYWORDS))
    rc = kv_reserve(&v->alloc, &v->kw, 1);
  if (rc != 0)
    return rc;
  v->flags[index] = nf;
  put_keywords(v, index, kw);
  if (bits)
    queue_change(v, index, bits);
  return 0;
}

/* ---- announcements ---- */

size_t mailproto_imap_view_flush_expunges(mailproto_imap_view *v) {
  if (!v)
    return 0;
  if (v->exp_round)
    return v->exp_round;
  if (v->exp_pending == 0)
    return 0;
  /* One pass from the lowest expunged message also drops the invisible
   * ones, so no expunged message is left anywhere. */
  size_t round = compact(v, lower_bound(v, 0, v->n, v->exp_min));
  v->exp_min = 0;
  v->exp_pending = 0;
  v->exp_round = round;
  /* After a mass expunge keep at most half again what is left. */
  if (v->cap > 64 && v->n < v->cap / 4)
    shrink_messages(v, v->n + v->n / 2 < 64 ? 64 : v->n + v->n / 2);
  return round;
}

int mailproto_imap_view_next_expunge(mailproto_imap_view *v, uint32_t *seq,
                                     uint32_t *uid) {
  if (!v || v->exp_round == 0)
    return 0;
  /* The queue is in ascending order: hand it out from the top, so each
   * number is still right after the ones before it were applied. */
  const expunge_entry *e = &v->exp[--v->exp_round];
  if (seq)
    *seq = e->seq;
  if (uid)
    *uid = e->uid;
  if (v->exp_round == 0) {
    if (v->exp_pending == 0 && v->exp_cap > QUEUE_KEEP) {
      mailproto_mem_free(&v->alloc, v->exp);
      v->exp = NULL;
      v->exp_cap = 0;
    }
    update_safe(v);
  }
  return 1;
}

int mailproto_imap_view_flush_exists(mailproto_imap_view *v, uint32_t *exists,
                                     uint32_t *recent) {
  if (!v)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (v->exp_round)
    return MAILPROTO_ERR_STATE;
  if (v->tail_expunged)
    compact(v, v->visible); /* only invisible ones: no EXPUNGE needed */
  int news = v->n > v->visible;
  if (news) {
    v->visible = v->n;
    v->recent_visible = v->recent_all;
  }
  if (exists)
    *exists = (uint32_t)v->visible;
  if (recent)
    *recent = (uint32_t)v->recent_visible;
  update_safe(v);
  return news;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

int mailproto_imap_view_flush_changes(mailproto_imap_view *v) {
  if (!v)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (v->exp_round)
    return MAILPROTO_ERR_STATE;
  if (v->chg_active || v->chg_len == 0)
    return 0;
  /* Each sync queues in ascending UID order; only mixed queues need a
   * sort. UIDs ascend with sequence numbers. */
  for (size_t i = 1; i < v->chg_len; i++)
    if (v->chg[i] < v->chg[i - 1]) {
      qsort(v->chg, v->chg_len, sizeof *v->chg, cmp_u32);
      break;
    }
  v->chg_round = v->chg_len;
  v->chg_pos = 0;
  v->chg_active = 1;
  return 0;
}

static void end_change_round(mailproto_imap_view *v) {
  size_t rest = v->chg_len - v->chg_round;
  memmove(v->chg, v->chg + v->chg_round, rest * sizeof *v->chg);
  v->chg_len = rest;
  v->chg_round = v->chg_pos = 0;
  v->chg_active = 0;
  if (rest == 0 && v->chg_cap > QUEUE_KEEP) {
    mailproto_mem_free(&v->alloc, v->chg);
    v->chg = NULL;
    v->chg_cap = 0;
  }
  update_safe(v);
}

int mailproto_imap_view_next_change(mailproto_imap_view *v,
                                    mailproto_imap_view_change *change) {
  if (!v || !change)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (v->exp_round)
    return MAILPROTO_ERR_STATE;
  if (!v->chg_active)
    return 0;
  while (v->chg_pos < v->chg_round) {
    uint32_t uid = v->chg[v->chg_pos++];
    size_t i = find(v, v->visible, uid);
    if (i == v->visible)
      continue; /* expunged and announced since it was queued */
    uint8_t bits = v->state[i] & ST_PENDING;
    v->state[i] &= (uint8_t)~ST_PENDING;
    if (!bits || (v->state[i] & ST_EXPUNGED))
      continue;
    if (!(bits & ST_PEND_FLAGS) && !v->condstore)
      continue;
    change->seq = (uint32_t)(i + 1);
    change->uid = uid;
    change->flags = v->flags[i];
    change->keywords = keywords_at(v, i);
    change->modseq = modseq_at(v, i);
    change->flags_changed = (bits & ST_PEND_FLAGS) != 0;
    return 1;
  }
  end_change_round(v);
  return 0;
}

int mailproto_imap_view_flush_keywords(mailproto_imap_view *v) {
  if (!v || !v->keywords_new)
    return 0;
  v->keywords_new = 0;
  return 1;
}
