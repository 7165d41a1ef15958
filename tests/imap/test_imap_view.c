/*
 * The IMAP mailbox view: random store reports, own changes and
 * announcements checked against a plain-array reference model at every
 * step; sequence-set and UID-set resolution (tables, a brute-force
 * property, huge spans, thousands of ranges, empty and all-expunged
 * views); the announcement rules of RFC 3501 7.4.1; own changes and
 * .SILENT; CONDSTORE modseq announcements; counters; bytes per message
 * for 1,000,000 messages; an allocation-failure loop.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_view.h"
#include "suites.h"
#include "support/alloc_fail.h"

#define SEEN MAILPROTO_FLAG_SEEN
#define ANSWERED MAILPROTO_FLAG_ANSWERED
#define FLAGGED MAILPROTO_FLAG_FLAGGED
#define DELETED MAILPROTO_FLAG_DELETED
#define RECENT MAILPROTO_FLAG_RECENT
#define SETTABLE MAILPROTO_FLAGS_SETTABLE
#define STAR MAILPROTO_IMAP_SEQ_STAR
#define NOMEM MAILPROTO_ERR_NOMEM

/* ------------------------------------------------------------------ */
/* Helpers                                                             */
/* ------------------------------------------------------------------ */

/* Check's assertions record every check that passes (a system call each),
 * which dominates loops over a million messages; this one only calls into
 * Check when the values differ. Both sides are compared as uint64_t. */
#define SAME(x, y)                                                             \
  do {                                                                         \
    uint64_t x_ = (uint64_t)(x), y_ = (uint64_t)(y);                           \
    if (x_ != y_)                                                              \
      ck_abort_msg("%s is %llu (%lld), expected %llu (%lld)", #x,              \
                   (unsigned long long)x_, (long long)x_,                      \
                   (unsigned long long)y_, (long long)y_);                     \
  } while (0)

static mailproto_imap_view *view_new(const mailproto_allocator *a) {
  mailproto_imap_view *v = NULL;
  SAME(mailproto_imap_view_new(a, &v), 0);
  ck_assert_ptr_nonnull(v);
  return v;
}

static void status_set(mailproto_imap_view *v, uint32_t uidnext,
                       uint32_t uidvalidity, uint64_t highest) {
  mailproto_mailbox_status st;
  memset(&st, 0, sizeof st);
  st.struct_size = sizeof st;
  st.uidnext = uidnext;
  st.uidvalidity = uidvalidity;
  st.highest_modseq = highest;
  mailproto_imap_view_status(v, &st);
}

/* A view opened with messages UID 1..n (flags 0, modseq = UID). */
static mailproto_imap_view *view_with(const mailproto_allocator *a,
                                      uint32_t n) {
  mailproto_imap_view *v = view_new(a);
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_message(v, u, 0, 0, u), 0);
  status_set(v, n + 1, 7, n);
  mailproto_imap_view_opened(v);
  SAME(mailproto_imap_view_exists(v), n);
  return v;
}

/* Drains an expunge round into seqs[] (and uids[] if not NULL). */
static size_t drain_expunges(mailproto_imap_view *v, uint32_t *seqs,
                             uint32_t *uids, size_t cap) {
  size_t want = mailproto_imap_view_flush_expunges(v), k = 0;
  uint32_t seq, uid;
  while (mailproto_imap_view_next_expunge(v, &seq, &uid) == 1) {
    ck_assert_uint_lt(k, cap);
    seqs[k] = seq;
    if (uids)
      uids[k] = uid;
    k++;
  }
  SAME(k, want);
  return k;
}

static size_t drain_changes(mailproto_imap_view *v,
                            mailproto_imap_view_change *out, size_t cap) {
  SAME(mailproto_imap_view_flush_changes(v), 0);
  size_t k = 0;
  mailproto_imap_view_change c;
  int rc;
  while ((rc = mailproto_imap_view_next_change(v, &c)) == 1) {
    ck_assert_uint_lt(k, cap);
    out[k++] = c;
  }
  SAME(rc, 0);
  return k;
}

/* xorshift64*: deterministic test randomness. */
static uint64_t rnd_state;
static uint64_t rnd(void) {
  rnd_state ^= rnd_state >> 12;
  rnd_state ^= rnd_state << 25;
  rnd_state ^= rnd_state >> 27;
  return rnd_state * 0x2545F4914F6CDD1DULL;
}
static uint32_t rnd_below(uint32_t n) {
  return n ? (uint32_t)(rnd() % n) : 0;
}

/* ------------------------------------------------------------------ */
/* Reference model: plain arrays, O(n) everything                      */
/* ------------------------------------------------------------------ */

enum { M_PEND_FLAGS = 1, M_PEND_MODSEQ = 2 };

typedef struct mmsg {
  uint32_t uid;
  uint32_t flags;
  uint64_t kw;
  uint64_t modseq;
  int expunged;
  int pend;
} mmsg;

typedef struct model {
  mmsg m[1024];
  size_t n, visible;
  uint32_t uid_last;
  int condstore;
} model;

static size_t model_find(const model *md, uint32_t uid) {
  for (size_t i = 0; i < md->n; i++)
    if (md->m[i].uid == uid)
      return i;
  return md->n;
}

static void model_message(model *md, uint32_t uid, uint32_t flags, uint64_t kw,
                          uint64_t modseq) {
  if (uid > md->uid_last) {
    ck_assert_uint_lt(md->n, 1024);
    mmsg *m = &md->m[md->n++];
    memset(m, 0, sizeof *m);
    m->uid = uid;
    m->flags = flags & (SETTABLE | RECENT);
    m->kw = kw;
    m->modseq = modseq;
    md->uid_last = uid;
    return;
  }
  size_t i = model_find(md, uid);
  if (i == md->n || md->m[i].expunged)
    return;
  mmsg *m = &md->m[i];
  uint32_t nf = (m->flags & RECENT) | (flags & SETTABLE);
  int fd = nf != m->flags || kw != m->kw;
  int msd = modseq != m->modseq;
  if (i < md->visible) {
    if (fd)
      m->pend |= M_PEND_FLAGS;
    else if (msd && md->condstore)
      m->pend |= M_PEND_MODSEQ;
  }
  m->flags = nf;
  m->kw = kw;
  m->modseq = modseq;
}

static void model_expunged(model *md, uint32_t uid) {
  size_t i = model_find(md, uid);
  if (i < md->n)
    md->m[i].expunged = 1;
}

static void model_store_own(model *md, size_t i, mailproto_flag_mode mode,
                            uint32_t flags, uint64_t kw, int announce) {
  mmsg *m = &md->m[i];
  if (m->expunged)
    return;
  flags &= SETTABLE;
  if (mode == MAILPROTO_FLAGS_REPLACE) {
    m->flags = (m->flags & RECENT) | flags;
    m->kw = kw;
  } else if (mode == MAILPROTO_FLAGS_ADD) {
    m->flags |= flags;
    m->kw |= kw;
  } else {
    m->flags &= ~flags;
    m->kw &= ~kw;
  }
  if (announce)
    m->pend |= M_PEND_FLAGS;
}

/* Removes expunged messages at index >= from. */
static void model_remove(model *md, size_t from) {
  size_t w = from, vis_removed = 0;
  for (size_t r = from; r < md->n; r++) {
    if (md->m[r].expunged) {
      if (r < md->visible)
        vis_removed++;
      continue;
    }
    md->m[w++] = md->m[r];
  }
  md->n = w;
  md->visible -= vis_removed;
}

static uint32_t model_recent(const model *md) {
  uint32_t r = 0;
  for (size_t i = 0; i < md->visible; i++)
    if (md->m[i].flags & RECENT)
      r++;
  return r;
}

/* Every query of the view against the model. */
static void check_view(const mailproto_imap_view *v, const model *md) {
  SAME(mailproto_imap_view_exists(v), md->visible);
  SAME(mailproto_imap_view_recent(v), model_recent(md));
  uint32_t pend = 0, unseen = 0;
  for (size_t i = 0; i < md->visible; i++) {
    const mmsg *m = &md->m[i];
    uint32_t idx = (uint32_t)i, found = UINT32_MAX;
    SAME(mailproto_imap_view_uid(v, idx), m->uid);
    SAME(mailproto_imap_view_flags(v, idx), m->flags);
    SAME(mailproto_imap_view_keywords(v, idx), m->kw);
    SAME(mailproto_imap_view_modseq(v, idx), m->modseq);
    SAME(mailproto_imap_view_is_expunged(v, idx), m->expunged);
    SAME(mailproto_imap_view_find_uid(v, m->uid, &found), 1);
    SAME(found, i);
    if (m->expunged)
      pend++;
    if (!unseen && !(m->flags & SEEN))
      unseen = (uint32_t)i + 1;
  }
  /* Messages the client was not told about cannot be found. */
  for (size_t i = md->visible; i < md->n; i++)
    SAME(mailproto_imap_view_find_uid(v, md->m[i].uid, NULL), 0);
  SAME(mailproto_imap_view_uid(v, (uint32_t)md->visible), 0);
  SAME(mailproto_imap_view_pending_expunges(v), pend);
  SAME(mailproto_imap_view_first_unseen(v), unseen);
  ck_assert_uint_gt(mailproto_imap_view_uidnext(v), md->uid_last);
}

/* What the session would send, as text, so whole runs can be compared. */
typedef struct oplog {
  char text[1 << 16];
  size_t len;
} oplog;

static void log_add(oplog *lg, const char *s) {
  size_t n = strlen(s);
  ck_assert_uint_lt(lg->len + n, sizeof lg->text);
  memcpy(lg->text + lg->len, s, n + 1);
  lg->len += n;
}

static void flush_expunges_checked(mailproto_imap_view *v, model *md,
                                   oplog *lg) {
  uint32_t want_seq[1024], want_uid[1024];
  size_t w = 0;
  for (size_t i = md->visible; i-- > 0;)
    if (md->m[i].expunged) {
      want_seq[w] = (uint32_t)i + 1;
      want_uid[w] = md->m[i].uid;
      w++;
    }
  if (w)
    model_remove(md, 0);
  uint32_t seqs[1024], uids[1024];
  size_t k = drain_expunges(v, seqs, uids, 1024);
  SAME(k, w);
  for (size_t i = 0; i < k; i++) {
    SAME(seqs[i], want_seq[i]);
    SAME(uids[i], want_uid[i]);
    char line[64];
    snprintf(line, sizeof line, "* %u EXPUNGE\n", (unsigned)seqs[i]);
    log_add(lg, line);
  }
}

static void flush_exists_checked(mailproto_imap_view *v, model *md, oplog *lg) {
  model_remove(md, md->visible); /* only the invisible expunged ones */
  int news = md->n > md->visible;
  md->visible = md->n;
  uint32_t exists = 0, recent = 0;
  SAME(mailproto_imap_view_flush_exists(v, &exists, &recent), news);
  SAME(exists, md->visible);
  SAME(recent, model_recent(md));
  if (news) {
    char line[64];
    snprintf(line, sizeof line, "* %u EXISTS\n", (unsigned)exists);
    log_add(lg, line);
  }
}

static void flush_changes_checked(mailproto_imap_view *v, model *md,
                                  oplog *lg) {
  mailproto_imap_view_change got[1024];
  size_t k = drain_changes(v, got, 1024), w = 0;
  for (size_t i = 0; i < md->visible; i++) {
    mmsg *m = &md->m[i];
    int pend = m->pend;
    m->pend = 0;
    if (!pend || m->expunged || (!(pend & M_PEND_FLAGS) && !md->condstore))
      continue;
    ck_assert_uint_lt(w, k);
    SAME(got[w].seq, i + 1);
    SAME(got[w].uid, m->uid);
    SAME(got[w].flags, m->flags);
    SAME(got[w].keywords, m->kw);
    SAME(got[w].modseq, m->modseq);
    SAME(got[w].flags_changed, (pend & M_PEND_FLAGS) != 0);
    char line[128];
    snprintf(line, sizeof line, "* %u FETCH %u %x %llx %llu %d\n",
             (unsigned)got[w].seq, (unsigned)got[w].uid, (unsigned)got[w].flags,
             (unsigned long long)got[w].keywords,
             (unsigned long long)got[w].modseq, got[w].flags_changed);
    log_add(lg, line);
    w++;
  }
  SAME(k, w);
}

/* Whether index i of the model is in a sequence or UID set. */
static int in_set(const model *md, size_t i, const mailproto_imap_range *r,
                  size_t count, int uid) {
  uint32_t star = uid ? md->m[md->visible - 1].uid : (uint32_t)md->visible;
  uint32_t x = uid ? md->m[i].uid : (uint32_t)i + 1;
  for (size_t k = 0; k < count; k++) {
    uint32_t a = r[k].first == STAR ? star : r[k].first;
    uint32_t b = r[k].last == STAR ? star : r[k].last;
    uint32_t lo = a < b ? a : b, hi = a < b ? b : a;
    if (x >= lo && x <= hi)
      return 1;
  }
  return 0;
}

static uint32_t rnd_number(const model *md, int uid) {
  uint32_t top = uid ? md->uid_last + 3 : (uint32_t)md->visible + 2;
  switch (rnd_below(6)) {
  case 0:
    return STAR;
  case 1:
    return UINT32_MAX;
  default:
    return 1 + rnd_below(top);
  }
}

/* Random sets against a brute-force membership test. */
static void check_sets(const mailproto_imap_view *v, const model *md) {
  mailproto_imap_range in[8], out[8];
  size_t count = 1 + rnd_below(8), n = 0;
  int uid = (int)rnd_below(2);
  for (size_t k = 0; k < count; k++) {
    in[k].first = rnd_number(md, uid);
    in[k].last = rnd_below(2) ? in[k].first : rnd_number(md, uid);
  }
  int rc = uid ? mailproto_imap_view_resolve_uid(v, in, count, out, &n)
               : mailproto_imap_view_resolve_seq(v, in, count, out, &n);
  if (!uid) {
    int bad = 0;
    for (size_t k = 0; k < count; k++) {
      uint32_t a = in[k].first == STAR ? (uint32_t)md->visible : in[k].first;
      uint32_t b = in[k].last == STAR ? (uint32_t)md->visible : in[k].last;
      if (a == 0 || b == 0 || a > md->visible || b > md->visible)
        bad = 1;
    }
    SAME(mailproto_imap_view_check_seq(v, in, count),
         bad ? MAILPROTO_ERR_NOT_FOUND : 0);
    if (bad) {
      SAME(rc, MAILPROTO_ERR_NOT_FOUND);
      SAME(n, 0);
      return;
    }
  }
  SAME(rc, 0);
  /* Spans: sorted, disjoint, not adjacent, inside the visible range. */
  for (size_t k = 0; k < n; k++) {
    ck_assert_uint_le(out[k].first, out[k].last);
    ck_assert_uint_lt(out[k].last, md->visible);
    if (k)
      ck_assert_uint_gt(out[k].first, (uint64_t)out[k - 1].last + 1);
  }
  mailproto_imap_view_iter it;
  mailproto_imap_view_iter_init(&it, out, n);
  uint32_t next = 0;
  int more = mailproto_imap_view_iter_next(&it, &next);
  uint64_t members = 0;
  for (size_t i = 0; i < md->visible; i++) {
    int want = in_set(md, i, in, count, uid);
    int got = more && next == i;
    SAME(got, want);
    if (got) {
      members++;
      more = mailproto_imap_view_iter_next(&it, &next);
    }
  }
  SAME(more, 0);
  SAME(mailproto_imap_view_spans_total(out, n), members);
  mailproto_uid_range ur[8];
  SAME(mailproto_imap_view_spans_to_uids(v, out, n, ur), n);
  for (size_t k = 0; k < n; k++) {
    SAME(ur[k].first, md->m[out[k].first].uid);
    SAME(ur[k].last, md->m[out[k].last].uid);
  }
}

/* ------------------------------------------------------------------ */
/* The random driver, shared by the property test and the allocation   */
/* failure loop                                                        */
/* ------------------------------------------------------------------ */

typedef struct driver {
  mailproto_imap_view *v;
  model md;
  oplog lg;
  alloc_fail *af; /* NULL: no failure injection */
  unsigned long nomem;
} driver;

/* Runs an operation that may allocate: on NOMEM the view must still match
 * the model (nothing changed); the retry then succeeds because the
 * failing allocator fails exactly one call. */
#define MAY_FAIL(d, call)                                                      \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_ == NOMEM) {                                                        \
      ck_assert_ptr_nonnull((d)->af);                                          \
      (d)->nomem++;                                                            \
      check_view((d)->v, &(d)->md);                                            \
      rc_ = (call);                                                            \
    }                                                                          \
    SAME(rc_, 0);                                                              \
  } while (0)

static uint64_t rnd_modseq(void) {
  /* Mostly small counters; sometimes far away, to exercise the escape
   * table and both sides of the offset base. */
  switch (rnd_below(8)) {
  case 0:
    return (1ULL << 40) + rnd_below(1000);
  case 1:
    return UINT64_MAX - rnd_below(10);
  default:
    return 1 + rnd_below(5000);
  }
}

static uint64_t rnd_keywords(void) {
  return rnd_below(3) == 0 ? (1ULL << rnd_below(64)) | rnd_below(4) : 0;
}

static void driver_step(driver *d) {
  model *md = &d->md;
  mailproto_imap_view *v = d->v;
  uint32_t op = rnd_below(100);
  if (op < 22 && md->n < 900) {
    uint32_t uid = md->uid_last + 1 + rnd_below(3);
    uint32_t flags = (uint32_t)rnd_below(64);
    uint64_t kw = rnd_keywords(), ms = rnd_modseq();
    MAY_FAIL(d, mailproto_imap_view_message(v, uid, flags, kw, ms));
    model_message(md, uid, flags, kw, ms);
  } else if (op < 45 && md->n) {
    /* A change report: sometimes identical to what the view has. */
    const mmsg *m = &md->m[rnd_below((uint32_t)md->n)];
    uint32_t uid = m->uid, flags = m->flags;
    uint64_t kw = m->kw, ms = m->modseq;
    switch (rnd_below(4)) {
    case 0:
      flags = (uint32_t)rnd_below(64);
      break;
    case 1:
      kw = rnd_keywords();
      break;
    case 2:
      ms = rnd_modseq();
      break;
    default:
      break;
    }
    MAY_FAIL(d, mailproto_imap_view_message(v, uid, flags, kw, ms));
    model_message(md, uid, flags, kw, ms);
  } else if (op < 48) {
    /* A UID the view does not hold: ignored. */
    uint32_t uid = 1 + rnd_below(md->uid_last + 1);
    if (model_find(md, uid) == md->n && uid <= md->uid_last)
      MAY_FAIL(d, mailproto_imap_view_message(v, uid, SEEN, 1, 1));
  } else if (op < 60 && md->n) {
    uint32_t uid = md->m[rnd_below((uint32_t)md->n)].uid;
    MAY_FAIL(d, mailproto_imap_view_expunged(v, uid));
    model_expunged(md, uid);
  } else if (op < 70 && md->visible) {
    size_t i = rnd_below((uint32_t)md->visible);
    mailproto_flag_mode mode = (mailproto_flag_mode)rnd_below(3);
    uint32_t flags = (uint32_t)rnd_below(64);
    uint64_t kw = rnd_keywords();
    int announce = (int)rnd_below(2);
    MAY_FAIL(d, mailproto_imap_view_store_own(v, (uint32_t)i, mode, flags, kw,
                                              announce));
    model_store_own(md, i, mode, flags, kw, announce);
  } else if (op < 76) {
    flush_expunges_checked(v, md, &d->lg);
  } else if (op < 82) {
    flush_exists_checked(v, md, &d->lg);
  } else if (op < 90) {
    flush_changes_checked(v, md, &d->lg);
  } else if (op < 92) {
    md->condstore = !md->condstore;
    mailproto_imap_view_set_condstore(v, md->condstore);
  } else if (op < 98 && md->visible) {
    check_sets(v, md);
  } else if (op < 100) {
    char name[16];
    snprintf(name, sizeof name, "$K%u", (unsigned)rnd_below(8));
    unsigned index = rnd_below(64);
    MAY_FAIL(d, mailproto_imap_view_keyword(v, index, name));
  }
  check_view(v, md);
}

static void driver_run(driver *d, uint64_t seed, unsigned steps) {
  rnd_state = seed;
  memset(&d->md, 0, sizeof d->md);
  d->lg.len = 0;
  d->lg.text[0] = '\0';
  d->v = NULL;
  const mailproto_allocator *a = d->af ? &d->af->allocator : NULL;
  int rc = mailproto_imap_view_new(a, &d->v);
  if (rc == NOMEM) {
    ck_assert_ptr_null(d->v);
    d->nomem++;
    rc = mailproto_imap_view_new(a, &d->v);
  }
  SAME(rc, 0);
  /* The open: a few messages, then everything visible. */
  unsigned initial = (unsigned)rnd_below(20);
  for (unsigned i = 0; i < initial; i++) {
    uint32_t uid = d->md.uid_last + 1 + rnd_below(2);
    uint32_t flags = (uint32_t)rnd_below(64);
    uint64_t kw = rnd_keywords(), ms = rnd_modseq();
    MAY_FAIL(d, mailproto_imap_view_message(d->v, uid, flags, kw, ms));
    model_message(&d->md, uid, flags, kw, ms);
  }
  mailproto_imap_view_opened(d->v);
  d->md.visible = d->md.n;
  check_view(d->v, &d->md);
  for (unsigned s = 0; s < steps; s++)
    driver_step(d);
  /* Announce everything that is left, in an order a session may use. */
  flush_expunges_checked(d->v, &d->md, &d->lg);
  flush_exists_checked(d->v, &d->md, &d->lg);
  flush_changes_checked(d->v, &d->md, &d->lg);
  check_view(d->v, &d->md);
  mailproto_imap_view_free(d->v);
  d->v = NULL;
}

/* ------------------------------------------------------------------ */
/* Property test                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_imap_view_random_ops_match_model) {
  static driver d;
  alloc_fail af;
  alloc_fail_init(&af, 0);
  memset(&d, 0, sizeof d);
  d.af = &af;
  driver_run(&d, 0x9E3779B97F4A7C15ULL + (uint64_t)_i * 7919u, 3000);
  SAME(af.live, 0);
  SAME(d.nomem, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failures                                                 */
/* ------------------------------------------------------------------ */

/* Fails the N-th allocation for every N of a 1500-step random run: each
 * failing call leaves the view as it was, the retry succeeds, and the
 * whole transcript of announcements equals the run without failures. */
START_TEST(test_imap_view_alloc_failure_loop) {
  static driver base, d;
  alloc_fail af;
  alloc_fail_init(&af, 0);
  memset(&base, 0, sizeof base);
  base.af = &af;
  const uint64_t seed = 12345 + (uint64_t)_i;
  driver_run(&base, seed, 1500);
  unsigned long total = af.calls;
  ck_assert_uint_gt(total, 20);
  SAME(af.live, 0);
  for (unsigned long n = 1; n <= total; n++) {
    alloc_fail_init(&af, n);
    memset(&d, 0, sizeof d);
    d.af = &af;
    driver_run(&d, seed, 1500);
    SAME(af.live, 0);
    /* A failure inside a best-effort shrink is invisible; any other one
     * came back as NOMEM exactly once. */
    ck_assert_uint_le(d.nomem, 1);
    SAME(d.lg.len, base.lg.len);
    ck_assert_str_eq(d.lg.text, base.lg.text);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sequence sets and UID sets                                          */
/* ------------------------------------------------------------------ */

typedef struct set_case {
  int uid;
  mailproto_imap_range in[6];
  size_t count;
  int rc;
  mailproto_imap_range out[6]; /* 0-based index spans */
  size_t out_count;
} set_case;

/* Over a view of 15 messages with UIDs 10, 20, ..., 150. */
static const set_case set_cases[] = {
    /* RFC 3501 9 example: 2,4:7,9,12:* with 15 messages. */
    {0,
     {{2, 2}, {4, 7}, {9, 9}, {12, STAR}},
     4,
     0,
     {{1, 1}, {3, 6}, {8, 8}, {11, 14}},
     4},
    /* a:b equals b:a; "*:3" too. */
    {0, {{7, 4}}, 1, 0, {{3, 6}}, 1},
    {0, {{STAR, 13}}, 1, 0, {{12, 14}}, 1},
    {0, {{STAR, STAR}}, 1, 0, {{14, 14}}, 1},
    /* Overlapping, adjacent, repeated and unordered ranges merge. */
    {0, {{5, 5}, {1, 3}, {4, 4}, {2, 6}, {3, 3}}, 5, 0, {{0, 5}}, 1},
    {0, {{15, 15}, {1, 1}, {8, 9}}, 3, 0, {{0, 0}, {7, 8}, {14, 14}}, 3},
    /* Beyond the view: BAD for sequence numbers. */
    {0, {{16, 16}}, 1, MAILPROTO_ERR_NOT_FOUND, {{0, 0}}, 0},
    {0, {{1, 4294967295u}}, 1, MAILPROTO_ERR_NOT_FOUND, {{0, 0}}, 0},
    {0, {{1, 2}, {3, 20}}, 2, MAILPROTO_ERR_NOT_FOUND, {{0, 0}}, 0},
    {0, {{0, 0}}, 0, 0, {{0, 0}}, 0},
    /* UIDs: only those held match; no error for the others. */
    {1, {{15, 25}}, 1, 0, {{1, 1}}, 1},
    {1, {{11, 19}}, 1, 0, {{0, 0}}, 0},
    {1, {{1, 4294967295u}}, 1, 0, {{0, 14}}, 1},
    {1, {{1, STAR}}, 1, 0, {{0, 14}}, 1},
    /* RFC 9051 6.4.9: 559:* always includes the last message. */
    {1, {{559, STAR}}, 1, 0, {{14, 14}}, 1},
    {1, {{STAR, STAR}}, 1, 0, {{14, 14}}, 1},
    {1, {{150, 151}}, 1, 0, {{14, 14}}, 1},
    {1, {{151, 4294967295u}}, 1, 0, {{0, 0}}, 0},
    {1, {{30, 10}, {140, 130}, {40, 40}}, 3, 0, {{0, 3}, {12, 13}}, 2},
    {1, {{5, 9}, {1000, 2000}}, 2, 0, {{0, 0}}, 0},
};
enum { SET_CASES = sizeof set_cases / sizeof set_cases[0] };

static mailproto_imap_view *view_uid_step(uint32_t n, uint32_t step) {
  mailproto_imap_view *v = view_new(NULL);
  for (uint32_t i = 1; i <= n; i++)
    SAME(mailproto_imap_view_message(v, i * step, 0, 0, 1), 0);
  mailproto_imap_view_opened(v);
  return v;
}

START_TEST(test_imap_view_resolve_table) {
  const set_case *c = &set_cases[_i];
  mailproto_imap_view *v = view_uid_step(15, 10);
  mailproto_imap_range out[6];
  size_t n = 99;
  int rc = c->uid
               ? mailproto_imap_view_resolve_uid(v, c->in, c->count, out, &n)
               : mailproto_imap_view_resolve_seq(v, c->in, c->count, out, &n);
  SAME(rc, c->rc);
  SAME(n, c->out_count);
  for (size_t k = 0; k < n; k++) {
    SAME(out[k].first, c->out[k].first);
    SAME(out[k].last, c->out[k].last);
  }
  if (!c->uid)
    SAME(mailproto_imap_view_check_seq(v, c->in, c->count), c->rc);
  /* In place: the input array may receive the spans. */
  mailproto_imap_range inplace[6];
  memcpy(inplace, c->in, sizeof inplace);
  rc = c->uid
           ? mailproto_imap_view_resolve_uid(v, inplace, c->count, inplace, &n)
           : mailproto_imap_view_resolve_seq(v, inplace, c->count, inplace, &n);
  SAME(rc, c->rc);
  SAME(n, c->out_count);
  for (size_t k = 0; k < n; k++) {
    SAME(inplace[k].first, c->out[k].first);
    SAME(inplace[k].last, c->out[k].last);
  }
  mailproto_imap_view_free(v);
}
END_TEST

START_TEST(test_imap_view_resolve_empty_view) {
  mailproto_imap_view *v = view_with(NULL, 0);
  mailproto_imap_range in[] = {{STAR, STAR}}, one[] = {{1, 1}}, out[1];
  size_t n = 5;
  /* RFC 3501 9: "*" in an empty mailbox is a bad sequence number. */
  SAME(mailproto_imap_view_check_seq(v, in, 1), MAILPROTO_ERR_NOT_FOUND);
  SAME(mailproto_imap_view_resolve_seq(v, in, 1, out, &n),
       MAILPROTO_ERR_NOT_FOUND);
  SAME(n, 0);
  SAME(mailproto_imap_view_resolve_seq(v, one, 1, out, &n),
       MAILPROTO_ERR_NOT_FOUND);
  /* UID sets of an empty mailbox are empty, never an error. */
  n = 5;
  SAME(mailproto_imap_view_resolve_uid(v, in, 1, out, &n), 0);
  SAME(n, 0);
  SAME(mailproto_imap_view_first_unseen(v), 0);
  SAME(mailproto_imap_view_flush_expunges(v), 0);
  SAME(mailproto_imap_view_flush_exists(v, NULL, NULL), 0);
  mailproto_imap_view_free(v);
}
END_TEST

/* Expunged-pending messages keep their numbers: every set still reaches
 * them until the EXPUNGEs went out; then the view is empty. */
START_TEST(test_imap_view_resolve_all_expunged_view) {
  mailproto_imap_view *v = view_with(NULL, 5);
  for (uint32_t u = 1; u <= 5; u++)
    SAME(mailproto_imap_view_expunged(v, u), 0);
  SAME(mailproto_imap_view_exists(v), 5);
  mailproto_imap_range in[] = {{1, STAR}}, out[1];
  size_t n = 0;
  SAME(mailproto_imap_view_resolve_seq(v, in, 1, out, &n), 0);
  SAME(n, 1);
  SAME(out[0].last, 4);
  SAME(mailproto_imap_view_resolve_uid(v, in, 1, out, &n), 0);
  SAME(n, 1);
  for (uint32_t i = 0; i < 5; i++)
    SAME(mailproto_imap_view_is_expunged(v, i), 1);
  uint32_t seqs[5];
  SAME(drain_expunges(v, seqs, NULL, 5), 5);
  SAME(mailproto_imap_view_exists(v), 0);
  SAME(mailproto_imap_view_resolve_seq(v, in, 1, out, &n),
       MAILPROTO_ERR_NOT_FOUND);
  SAME(mailproto_imap_view_resolve_uid(v, in, 1, out, &n), 0);
  SAME(n, 0);
  mailproto_imap_view_free(v);
}
END_TEST

/* 1:4294967295 over 1,000,000 messages: one span, no allocation, and the
 * walk over it is one step per message. */
START_TEST(test_imap_view_resolve_huge_span) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  const uint32_t n = 1000000;
  mailproto_imap_view *v = view_new(&af.allocator);
  SAME(mailproto_imap_view_reserve(v, n), 0);
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_message(v, 2 * u, 0, 0, 1), 0);
  mailproto_imap_view_opened(v);
  unsigned long calls = af.calls;
  mailproto_imap_range in[] = {{1, 4294967295u}}, out[1];
  size_t k = 0;
  SAME(mailproto_imap_view_resolve_uid(v, in, 1, out, &k), 0);
  SAME(k, 1);
  SAME(out[0].first, 0);
  SAME(out[0].last, n - 1);
  SAME(mailproto_imap_view_spans_total(out, k), n);
  mailproto_uid_range ur[1];
  SAME(mailproto_imap_view_spans_to_uids(v, out, k, ur), 1);
  SAME(ur[0].first, 2);
  SAME(ur[0].last, 2 * n);
  mailproto_imap_range seq[] = {{STAR, 1}};
  SAME(mailproto_imap_view_resolve_seq(v, seq, 1, out, &k), 0);
  SAME(k, 1);
  SAME(out[0].last, n - 1);
  SAME(af.calls, calls);

  mailproto_imap_view_iter it;
  mailproto_imap_view_iter_init(&it, out, k);
  uint32_t idx, expect = 0;
  while (mailproto_imap_view_iter_next(&it, &idx)) {
    SAME(idx, expect);
    expect++;
  }
  SAME(expect, n);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* Ten thousand ranges, out of order and overlapping, over 100,000
 * messages: resolved without allocating, merged correctly. */
START_TEST(test_imap_view_resolve_thousands_of_ranges) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  const uint32_t n = 100000;
  mailproto_imap_view *v = view_new(&af.allocator);
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_message(v, u, 0, 0, 1), 0);
  mailproto_imap_view_opened(v);
  enum { R = 10000 };
  static mailproto_imap_range in[R], out[R];
  /* Odd numbers 1..19999 from the top down, plus a repeat of each. */
  for (uint32_t k = 0; k < R; k++) {
    uint32_t x = 2 * (R / 2 - 1 - (k / 2)) + 1;
    in[k].first = x;
    in[k].last = x;
  }
  unsigned long calls = af.calls;
  size_t got = 0;
  SAME(mailproto_imap_view_resolve_seq(v, in, R, out, &got), 0);
  SAME(got, R / 2);
  for (size_t k = 0; k < got; k++) {
    SAME(out[k].first, 2 * k);
    SAME(out[k].last, 2 * k);
  }
  /* The same as UIDs, plus ranges that join everything below 20000. */
  for (uint32_t k = 0; k < R; k++) {
    in[k].first = 2 * k + 1;
    in[k].last = k % 2 ? 2 * k + 2 : 2 * k + 1;
  }
  SAME(mailproto_imap_view_resolve_uid(v, in, R, out, &got), 0);
  ck_assert_uint_gt(got, 0);
  SAME(out[0].first, 0);
  SAME(mailproto_imap_view_spans_total(out, got), (uint64_t)R + R / 2);
  SAME(af.calls, calls);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* UID ranges for the store stop at the last message the client knows,
 * even when newer messages are already in the view. */
START_TEST(test_imap_view_spans_to_uids_capped_at_visible) {
  mailproto_imap_view *v = view_with(NULL, 3);
  SAME(mailproto_imap_view_message(v, 10, RECENT, 0, 9), 0);
  mailproto_imap_range in[] = {{1, 4294967295u}}, out[1];
  size_t k = 0;
  SAME(mailproto_imap_view_resolve_uid(v, in, 1, out, &k), 0);
  mailproto_uid_range ur[1];
  SAME(mailproto_imap_view_spans_to_uids(v, out, k, ur), 1);
  SAME(ur[0].first, 1);
  SAME(ur[0].last, 3);
  /* "*" is the last message the client knows, not UID 10. */
  mailproto_imap_range star[] = {{STAR, STAR}};
  SAME(mailproto_imap_view_resolve_uid(v, star, 1, out, &k), 0);
  SAME(mailproto_imap_view_uid(v, out[0].first), 3);
  mailproto_imap_range ten[] = {{10, 10}};
  SAME(mailproto_imap_view_resolve_uid(v, ten, 1, out, &k), 0);
  SAME(k, 0);
  /* Spans that are not this view's are skipped. */
  mailproto_imap_range bogus[] = {{2, 1}, {0, 3}};
  SAME(mailproto_imap_view_spans_to_uids(v, bogus, 2, ur), 0);
  mailproto_imap_view_free(v);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Announcement rules                                                  */
/* ------------------------------------------------------------------ */

/* RFC 3501 7.4.1: the last 5 of 9 messages expunged give 9, 8, 7, 6, 5
 * from a higher-to-lower server; applying them in order to the client's
 * list leaves what the view holds. */
START_TEST(test_imap_view_flush_expunges_descending) {
  mailproto_imap_view *v = view_with(NULL, 9);
  for (uint32_t u = 9; u >= 5; u--)
    SAME(mailproto_imap_view_expunged(v, u), 0);
  SAME(mailproto_imap_view_pending_expunges(v), 5);
  uint32_t seqs[9], uids[9];
  SAME(drain_expunges(v, seqs, uids, 9), 5);
  for (uint32_t i = 0; i < 5; i++) {
    SAME(seqs[i], 9 - i);
    SAME(uids[i], 9 - i);
  }
  SAME(mailproto_imap_view_exists(v), 4);

  /* Scattered ones: the client's list after applying each in turn. */
  mailproto_imap_view *w = view_with(NULL, 20);
  uint32_t client[20];
  size_t cn = 20;
  for (uint32_t i = 0; i < 20; i++)
    client[i] = i + 1;
  static const uint32_t gone[] = {2, 3, 7, 8, 9, 15, 20, 1};
  for (size_t i = 0; i < 8; i++)
    SAME(mailproto_imap_view_expunged(w, gone[i]), 0);
  SAME(mailproto_imap_view_expunged(w, 3), 0);  /* repeated */
  SAME(mailproto_imap_view_expunged(w, 99), 0); /* unknown */
  uint32_t s[20];
  size_t k = drain_expunges(w, s, NULL, 20);
  SAME(k, 8);
  for (size_t i = 0; i < k; i++) {
    ck_assert_uint_le(s[i], cn);
    memmove(client + s[i] - 1, client + s[i], (cn - s[i]) * sizeof *client);
    cn--;
  }
  SAME(mailproto_imap_view_exists(w), cn);
  for (size_t i = 0; i < cn; i++)
    SAME(mailproto_imap_view_uid(w, (uint32_t)i), client[i]);
  mailproto_imap_view_free(v);
  mailproto_imap_view_free(w);
}
END_TEST

/* New mail stays invisible until EXISTS; EXISTS may go out while
 * expunges wait (during FETCH), counting the expunged messages; a new
 * message expunged before it was announced never shows up. */
START_TEST(test_imap_view_flush_exists_with_pending_expunges) {
  mailproto_imap_view *v = view_with(NULL, 3);
  SAME(mailproto_imap_view_expunged(v, 2), 0);
  SAME(mailproto_imap_view_message(v, 4, RECENT, 0, 10), 0);
  SAME(mailproto_imap_view_message(v, 5, RECENT, 0, 11), 0);
  SAME(mailproto_imap_view_message(v, 6, 0, 0, 12), 0);
  SAME(mailproto_imap_view_expunged(v, 5), 0);
  SAME(mailproto_imap_view_exists(v), 3);
  SAME(mailproto_imap_view_find_uid(v, 4, NULL), 0);
  uint32_t exists = 0, recent = 9;
  SAME(mailproto_imap_view_flush_exists(v, &exists, &recent), 1);
  SAME(exists, 5); /* 1, 2 (expunged, not announced), 3, 4, 6 */
  SAME(recent, 1);
  SAME(mailproto_imap_view_uid(v, 3), 4);
  SAME(mailproto_imap_view_uid(v, 4), 6);
  SAME(mailproto_imap_view_is_expunged(v, 1), 1);
  /* Nothing new: 0, values unchanged. */
  SAME(mailproto_imap_view_flush_exists(v, &exists, &recent), 0);
  SAME(exists, 5);
  uint32_t seqs[4];
  SAME(drain_expunges(v, seqs, NULL, 4), 1);
  SAME(seqs[0], 2);
  SAME(mailproto_imap_view_exists(v), 4);
  mailproto_imap_view_free(v);
}
END_TEST

/* While an expunge round is being handed out nothing else may carry
 * sequence numbers; expunges reported meanwhile wait for the next round. */
START_TEST(test_imap_view_expunge_round_blocks_other_flushes) {
  mailproto_imap_view *v = view_with(NULL, 6);
  SAME(mailproto_imap_view_expunged(v, 2), 0);
  SAME(mailproto_imap_view_expunged(v, 4), 0);
  SAME(mailproto_imap_view_message(v, 5, SEEN, 0, 50), 0);
  SAME(mailproto_imap_view_flush_expunges(v), 2);
  uint32_t seq, uid;
  SAME(mailproto_imap_view_next_expunge(v, &seq, &uid), 1);
  SAME(seq, 4);
  SAME(mailproto_imap_view_flush_exists(v, NULL, NULL), MAILPROTO_ERR_STATE);
  SAME(mailproto_imap_view_flush_changes(v), MAILPROTO_ERR_STATE);
  mailproto_imap_view_change c;
  SAME(mailproto_imap_view_next_change(v, &c), MAILPROTO_ERR_STATE);
  /* A sync in the middle of the round. */
  SAME(mailproto_imap_view_expunged(v, 6), 0);
  SAME(mailproto_imap_view_flush_expunges(v), 1); /* the rest */
  SAME(mailproto_imap_view_next_expunge(v, &seq, &uid), 1);
  SAME(seq, 2);
  SAME(uid, 2);
  SAME(mailproto_imap_view_next_expunge(v, &seq, &uid), 0);
  /* Client now has 1, 3, 5, 6; UID 6 is seq 4. */
  SAME(mailproto_imap_view_flush_expunges(v), 1);
  SAME(mailproto_imap_view_next_expunge(v, &seq, &uid), 1);
  SAME(seq, 4);
  SAME(uid, 6);
  mailproto_imap_view_change ch[4];
  SAME(drain_changes(v, ch, 4), 1);
  SAME(ch[0].seq, 3);
  SAME(ch[0].uid, 5);
  SAME(ch[0].flags, SEEN);
  mailproto_imap_view_free(v);
}
END_TEST

/* A flag report equal to the view is no announcement; a change queued
 * twice is reported once, with the latest flags; a change made during a
 * round after the message was reported goes into the next round. */
START_TEST(test_imap_view_flush_changes_rounds) {
  mailproto_imap_view *v = view_with(NULL, 5);
  mailproto_imap_view_change ch[8];
  SAME(mailproto_imap_view_message(v, 3, 0, 0, 3), 0);
  SAME(drain_changes(v, ch, 8), 0);
  SAME(mailproto_imap_view_message(v, 4, SEEN, 0, 10), 0);
  SAME(mailproto_imap_view_message(v, 2, FLAGGED, 0, 11), 0);
  SAME(mailproto_imap_view_message(v, 4, SEEN | DELETED, 0, 12), 0);
  SAME(mailproto_imap_view_flush_changes(v), 0);
  mailproto_imap_view_change c;
  SAME(mailproto_imap_view_next_change(v, &c), 1);
  SAME(c.seq, 2);
  SAME(c.flags, FLAGGED);
  SAME(c.flags_changed, 1);
  /* Mid-round: 2 changes again (next round), 4 changes again (this one). */
  SAME(mailproto_imap_view_message(v, 2, 0, 0, 13), 0);
  SAME(mailproto_imap_view_message(v, 4, ANSWERED, 0, 14), 0);
  SAME(mailproto_imap_view_flush_changes(v), 0); /* continues */
  SAME(mailproto_imap_view_next_change(v, &c), 1);
  SAME(c.seq, 4);
  SAME(c.flags, ANSWERED);
  SAME(c.modseq, 14);
  SAME(mailproto_imap_view_next_change(v, &c), 0);
  SAME(drain_changes(v, ch, 8), 1);
  SAME(ch[0].seq, 2);
  SAME(ch[0].flags, 0);
  /* Changes of invisible or expunged messages are not announced. */
  SAME(mailproto_imap_view_message(v, 6, 0, 0, 20), 0);
  SAME(mailproto_imap_view_message(v, 6, SEEN, 0, 21), 0);
  SAME(mailproto_imap_view_message(v, 1, SEEN, 0, 22), 0);
  SAME(mailproto_imap_view_expunged(v, 1), 0);
  SAME(mailproto_imap_view_message(v, 1, 0, 0, 23), 0);
  SAME(drain_changes(v, ch, 8), 0);
  mailproto_imap_view_free(v);
}
END_TEST

/* The STORE flows of the session: .SILENT leaves nothing to announce for
 * the session's own change, yet another session's concurrent change to
 * the same message still shows; without .SILENT every stored message is
 * announced, changed or not. */
START_TEST(test_imap_view_store_own_silent_and_loud) {
  mailproto_imap_view *v = view_with(NULL, 4);
  mailproto_imap_view_change ch[8];
  /* STORE 1 +FLAGS.SILENT (\Seen): own expectation, then the sync. */
  SAME(mailproto_imap_view_store_own(v, 0, MAILPROTO_FLAGS_ADD, SEEN, 0, 0), 0);
  SAME(mailproto_imap_view_flags(v, 0), SEEN);
  SAME(mailproto_imap_view_message(v, 1, SEEN, 0, 20), 0);
  SAME(drain_changes(v, ch, 8), 0);
  SAME(mailproto_imap_view_modseq(v, 0), 20);

  /* Someone else flagged message 2 before our silent +\Seen reached the
   * store: the sync's flags differ from the expectation. */
  SAME(mailproto_imap_view_store_own(v, 1, MAILPROTO_FLAGS_ADD, SEEN, 0, 0), 0);
  SAME(mailproto_imap_view_message(v, 2, SEEN | FLAGGED, 0, 21), 0);
  SAME(drain_changes(v, ch, 8), 1);
  SAME(ch[0].seq, 2);
  SAME(ch[0].flags, SEEN | FLAGGED);

  /* A change by another session queued before our silent store stays. */
  SAME(mailproto_imap_view_message(v, 3, DELETED, 0, 22), 0);
  SAME(mailproto_imap_view_store_own(v, 2, MAILPROTO_FLAGS_ADD, SEEN, 0, 0), 0);
  SAME(mailproto_imap_view_message(v, 3, DELETED | SEEN, 0, 23), 0);
  SAME(drain_changes(v, ch, 8), 1);
  SAME(ch[0].flags, DELETED | SEEN);

  /* STORE 1:4 FLAGS (\Seen) without .SILENT: all four, even the ones
   * whose flags did not change, in sequence order. */
  for (uint32_t i = 4; i-- > 0;)
    SAME(mailproto_imap_view_store_own(v, i, MAILPROTO_FLAGS_REPLACE, SEEN, 0,
                                       1),
         0);
  for (uint32_t u = 1; u <= 4; u++)
    SAME(mailproto_imap_view_message(v, u, SEEN, 0, 30 + u), 0);
  SAME(drain_changes(v, ch, 8), 4);
  for (uint32_t i = 0; i < 4; i++) {
    SAME(ch[i].seq, i + 1);
    SAME(ch[i].flags, SEEN);
    SAME(ch[i].modseq, 31 + i);
  }
  /* Remove, with keywords; expunged messages are left alone. */
  SAME(mailproto_imap_view_store_own(v, 0, MAILPROTO_FLAGS_ADD, 0, 0x5, 0), 0);
  SAME(mailproto_imap_view_store_own(v, 0, MAILPROTO_FLAGS_REMOVE,
                                     SEEN | RECENT, 0x1, 0),
       0);
  SAME(mailproto_imap_view_flags(v, 0), 0);
  SAME(mailproto_imap_view_keywords(v, 0), 0x4);
  SAME(mailproto_imap_view_expunged(v, 4), 0);
  SAME(mailproto_imap_view_store_own(v, 3, MAILPROTO_FLAGS_ADD, FLAGGED, 0, 1),
       0);
  SAME(mailproto_imap_view_flags(v, 3), SEEN);
  /* Bad arguments. */
  SAME(mailproto_imap_view_store_own(v, 4, MAILPROTO_FLAGS_ADD, SEEN, 0, 1),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_store_own(v, 0, (mailproto_flag_mode)7, SEEN, 0, 1),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_imap_view_free(v);
}
END_TEST

/* \Recent comes from the report that adds a message and never changes. */
START_TEST(test_imap_view_recent_is_fixed) {
  mailproto_imap_view *v = view_new(NULL);
  SAME(mailproto_imap_view_message(v, 1, RECENT, 0, 1), 0);
  SAME(mailproto_imap_view_message(v, 2, SEEN, 0, 1), 0);
  mailproto_imap_view_opened(v);
  SAME(mailproto_imap_view_recent(v), 1);
  SAME(mailproto_imap_view_message(v, 1, SEEN, 0, 2), 0);
  SAME(mailproto_imap_view_message(v, 2, SEEN | RECENT, 0, 1), 0);
  SAME(mailproto_imap_view_flags(v, 0), SEEN | RECENT);
  SAME(mailproto_imap_view_flags(v, 1), SEEN);
  mailproto_imap_view_change ch[2];
  SAME(drain_changes(v, ch, 2), 1);
  SAME(ch[0].flags, SEEN | RECENT);
  SAME(mailproto_imap_view_store_own(v, 0, MAILPROTO_FLAGS_REPLACE, 0, 0, 0),
       0);
  SAME(mailproto_imap_view_flags(v, 0), RECENT);
  SAME(mailproto_imap_view_expunged(v, 1), 0);
  SAME(mailproto_imap_view_recent(v), 1);
  uint32_t seqs[1];
  SAME(drain_expunges(v, seqs, NULL, 1), 1);
  SAME(mailproto_imap_view_recent(v), 0);
  mailproto_imap_view_free(v);
}
END_TEST

/* RFC 7162: with CONDSTORE on, a silent own store still yields a
 * modseq-only announcement ("* 7 FETCH (MODSEQ (...))", example 14);
 * without it nothing. */
START_TEST(test_imap_view_condstore_modseq_only) {
  mailproto_imap_view *v = view_with(NULL, 7);
  mailproto_imap_view_change ch[4];
  SAME(mailproto_imap_view_store_own(v, 6, MAILPROTO_FLAGS_ADD, DELETED, 0, 0),
       0);
  SAME(mailproto_imap_view_message(v, 7, DELETED, 0, 100), 0);
  SAME(drain_changes(v, ch, 4), 0);
  SAME(mailproto_imap_view_modseq(v, 6), 100);

  mailproto_imap_view_set_condstore(v, 1);
  SAME(mailproto_imap_view_store_own(v, 6, MAILPROTO_FLAGS_ADD, SEEN, 0, 0), 0);
  SAME(mailproto_imap_view_message(v, 7, DELETED | SEEN, 0, 101), 0);
  SAME(drain_changes(v, ch, 4), 1);
  SAME(ch[0].seq, 7);
  SAME(ch[0].uid, 7);
  SAME(ch[0].modseq, 101);
  SAME(ch[0].flags_changed, 0);
  /* Modseq-only changes queued with CONDSTORE on are dropped once it is
   * off; flag changes are not. */
  SAME(mailproto_imap_view_message(v, 1, 0, 0, 102), 0);
  SAME(mailproto_imap_view_message(v, 2, SEEN, 0, 103), 0);
  mailproto_imap_view_set_condstore(v, 0);
  SAME(drain_changes(v, ch, 4), 1);
  SAME(ch[0].uid, 2);
  SAME(ch[0].flags_changed, 1);
  mailproto_imap_view_free(v);
}
END_TEST

/* Mod-sequences far apart (time stamps, the top of the 63-bit range)
 * are kept exactly. */
START_TEST(test_imap_view_modseq_wide_values) {
  static const uint64_t values[] = {1,
                                    0x7fffffffu,
                                    0x80000000u,
                                    0xfffffffeu,
                                    0xffffffffu,
                                    1ULL << 32,
                                    (1ULL << 63) - 1,
                                    UINT64_MAX,
                                    12121231000ULL,
                                    12121231777ULL,
                                    5,
                                    0};
  enum { N = sizeof values / sizeof values[0] };
  for (size_t start = 0; start < N; start++) {
    alloc_fail af;
    alloc_fail_init(&af, 0);
    mailproto_imap_view *v = view_new(&af.allocator);
    for (uint32_t i = 0; i < N; i++)
      SAME(mailproto_imap_view_message(v, i + 1, 0, 0, values[(start + i) % N]),
           0);
    mailproto_imap_view_opened(v);
    for (uint32_t i = 0; i < N; i++)
      SAME(mailproto_imap_view_modseq(v, i), values[(start + i) % N]);
    /* Rewrite each with its neighbour's value, then expunge half. */
    for (uint32_t i = 0; i < N; i++)
      SAME(mailproto_imap_view_message(v, i + 1, 0, 0,
                                       values[(start + i + 1) % N]),
           0);
    for (uint32_t i = 0; i < N; i++)
      SAME(mailproto_imap_view_modseq(v, i), values[(start + i + 1) % N]);
    for (uint32_t i = 0; i < N; i += 2)
      SAME(mailproto_imap_view_expunged(v, i + 1), 0);
    uint32_t seqs[N];
    drain_expunges(v, seqs, NULL, N);
    for (uint32_t i = 0; i < mailproto_imap_view_exists(v); i++)
      SAME(mailproto_imap_view_modseq(v, i), values[(start + 2 * i + 2) % N]);
    SAME(mailproto_imap_view_memory(v), af.live_bytes);
    mailproto_imap_view_free(v);
    SAME(af.live, 0);
  }
  /* Back to small values: the escape table is given back entirely. */
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_with(&af.allocator, N);
  size_t bytes = af.live_bytes;
  for (uint32_t i = 0; i < N; i++)
    SAME(mailproto_imap_view_message(v, i + 1, 0, 0, values[i] | (1ULL << 62)),
         0);
  ck_assert_uint_gt(af.live_bytes, bytes);
  for (uint32_t i = 0; i < N; i++)
    SAME(mailproto_imap_view_message(v, i + 1, 0, 0, 100 + i), 0);
  SAME(af.live_bytes, bytes);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Counters and the keyword table                                      */
/* ------------------------------------------------------------------ */

START_TEST(test_imap_view_counters_for_select) {
  mailproto_imap_view *v = view_new(NULL);
  SAME(mailproto_imap_view_message(v, 3, SEEN, 0, 5), 0);
  SAME(mailproto_imap_view_message(v, 8, RECENT, 0, 9), 0);
  SAME(mailproto_imap_view_message(v, 9, SEEN | RECENT, 0, 7), 0);
  status_set(v, 10, 3857529045u, 12);
  mailproto_imap_view_opened(v);
  SAME(mailproto_imap_view_exists(v), 3);
  SAME(mailproto_imap_view_recent(v), 2);
  SAME(mailproto_imap_view_first_unseen(v), 2);
  SAME(mailproto_imap_view_uidnext(v), 10);
  SAME(mailproto_imap_view_uidvalidity(v), 3857529045u);
  SAME(mailproto_imap_view_highest_modseq(v), 12);
  SAME(mailproto_imap_view_safe_modseq(v), 12);
  /* UIDNEXT is never at or below a UID the view holds. */
  SAME(mailproto_imap_view_message(v, 40, 0, 0, 13), 0);
  SAME(mailproto_imap_view_uidnext(v), 41);
  mailproto_imap_view_free(v);

  v = view_with(NULL, 0);
  SAME(mailproto_imap_view_message(v, UINT32_MAX, 0, 0, 1), 0);
  SAME(mailproto_imap_view_uidnext(v), UINT32_MAX);
  mailproto_imap_view_free(v);
}
END_TEST

/* HIGHESTMODSEQ may only be announced once everything up to it was. */
START_TEST(test_imap_view_safe_modseq_waits_for_announcements) {
  mailproto_imap_view *v = view_with(NULL, 3);
  SAME(mailproto_imap_view_safe_modseq(v), 3);
  SAME(mailproto_imap_view_expunged(v, 2), 0);
  SAME(mailproto_imap_view_message(v, 3, SEEN, 0, 5), 0);
  SAME(mailproto_imap_view_message(v, 4, 0, 0, 6), 0);
  status_set(v, 5, 7, 6);
  SAME(mailproto_imap_view_highest_modseq(v), 6);
  SAME(mailproto_imap_view_safe_modseq(v), 3);
  mailproto_imap_view_change ch[2];
  SAME(drain_changes(v, ch, 2), 1);
  SAME(mailproto_imap_view_flush_exists(v, NULL, NULL), 1);
  SAME(mailproto_imap_view_safe_modseq(v), 3);
  uint32_t seqs[1];
  SAME(drain_expunges(v, seqs, NULL, 1), 1);
  SAME(mailproto_imap_view_safe_modseq(v), 6);
  mailproto_imap_view_free(v);
}
END_TEST

START_TEST(test_imap_view_keyword_table) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_new(&af.allocator);
  SAME(mailproto_imap_view_keyword(v, 0, "$Forwarded"), 0);
  SAME(mailproto_imap_view_keyword(v, 2, "Junk"), 0);
  mailproto_imap_view_opened(v);
  SAME(mailproto_imap_view_flush_keywords(v), 0);
  SAME(mailproto_imap_view_keyword_count(v), 3);
  ck_assert_ptr_null(mailproto_imap_view_keyword_name(v, 1));
  ck_assert_str_eq(mailproto_imap_view_keyword_name(v, 2), "Junk");
  unsigned idx = 99;
  SAME(mailproto_imap_view_keyword_find(v, "JUNKX", 4, &idx), 1);
  SAME(idx, 2);
  SAME(mailproto_imap_view_keyword_find(v, "junk", 3, &idx), 0);
  SAME(mailproto_imap_view_keyword_find(v, "$forwarded", 10, NULL), 1);
  /* Same name again (any case): nothing new to announce. */
  SAME(mailproto_imap_view_keyword(v, 2, "JUNK"), 0);
  SAME(mailproto_imap_view_flush_keywords(v), 0);
  SAME(mailproto_imap_view_keyword(v, 63, "$Label5"), 0);
  SAME(mailproto_imap_view_flush_keywords(v), 1);
  SAME(mailproto_imap_view_flush_keywords(v), 0);
  SAME(mailproto_imap_view_keyword_count(v), 64);
  SAME(mailproto_imap_view_keyword(v, 64, "x"), MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_keyword(v, 3, ""), MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_keyword(v, 3, NULL), MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_ptr_null(mailproto_imap_view_keyword_name(v, 64));
  /* Out of memory: the old name stays. */
  af.fail_at = af.calls + 1;
  SAME(mailproto_imap_view_keyword(v, 2, "Other"), NOMEM);
  ck_assert_str_eq(mailproto_imap_view_keyword_name(v, 2), "Junk");
  SAME(mailproto_imap_view_memory(v), af.live_bytes);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

START_TEST(test_imap_view_bad_arguments) {
  mailproto_imap_view *v = NULL;
  SAME(mailproto_imap_view_new(NULL, NULL), MAILPROTO_ERR_INVALID_ARGUMENT);
  v = view_with(NULL, 2);
  SAME(mailproto_imap_view_message(v, 0, 0, 0, 1),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_message(NULL, 1, 0, 0, 1),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_expunged(NULL, 1), MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_expunged(v, 0), 0);
  SAME(mailproto_imap_view_find_uid(v, 0, NULL), 0);
  SAME(mailproto_imap_view_flags(v, 2), 0);
  SAME(mailproto_imap_view_modseq(v, UINT32_MAX), 0);
  SAME(mailproto_imap_view_is_expunged(v, 7), 0);
  size_t n = 0;
  mailproto_imap_range r[1] = {{1, 1}};
  SAME(mailproto_imap_view_resolve_seq(v, r, 1, NULL, &n),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_resolve_uid(v, NULL, 1, r, &n),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_resolve_seq(NULL, r, 1, r, &n),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_next_change(v, NULL),
       MAILPROTO_ERR_INVALID_ARGUMENT);
  SAME(mailproto_imap_view_next_expunge(v, NULL, NULL), 0);
  SAME(mailproto_imap_view_memory(NULL), 0);
  SAME(mailproto_imap_view_exists(NULL), 0);
  mailproto_imap_view_status(v, NULL);
  mailproto_imap_view_free(v);
  mailproto_imap_view_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Memory per message                                                  */
/* ------------------------------------------------------------------ */

/* Issue 7: at most 16 bytes per message of a selected mailbox. Measured
 * with the counting allocator on 1,000,000 messages, 1% of them with
 * keywords, both after an open that reported them one by one and after
 * growing by sync, and with every message flagged by another session
 * and announced. */
START_TEST(test_imap_view_memory_per_message) {
  const uint32_t n = 1000000;
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_new(&af.allocator);
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_message(v, u, u % 3 ? SEEN : 0, u % 100 ? 0 : 0x3,
                                     u),
         0);
  status_set(v, n + 1, 1, n);
  mailproto_imap_view_opened(v);
  double per = (double)af.live_bytes / n;
  ck_assert_msg(per <= 16.0, "%.2f bytes per message after open", per);
  SAME(mailproto_imap_view_memory(v), af.live_bytes);

  /* Another 10% arrive by sync: growth steps stay within the goal. */
  for (uint32_t u = n + 1; u <= n + n / 10; u++)
    SAME(mailproto_imap_view_message(v, u, RECENT, 0, u), 0);
  SAME(mailproto_imap_view_flush_exists(v, NULL, NULL), 1);
  per = (double)af.live_bytes / (n + n / 10);
  ck_assert_msg(per <= 16.0, "%.2f bytes per message after sync", per);

  /* Everything flagged elsewhere: the queue is transient. */
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_message(v, u, FLAGGED, 0, n + u), 0);
  mailproto_imap_view_change c;
  SAME(mailproto_imap_view_flush_changes(v), 0);
  uint32_t k = 0;
  while (mailproto_imap_view_next_change(v, &c) == 1) {
    SAME(c.seq, ++k);
    SAME(c.flags, FLAGGED);
  }
  SAME(k, n);
  per = (double)af.live_bytes / (n + n / 10);
  ck_assert_msg(per <= 16.0, "%.2f bytes per message after changes", per);

  /* Expunge them all: 1,000,000 EXPUNGEs, highest first, in O(n). */
  for (uint32_t u = 1; u <= n; u++)
    SAME(mailproto_imap_view_expunged(v, u), 0);
  SAME(mailproto_imap_view_flush_expunges(v), n);
  uint32_t seq, uid, last = UINT32_MAX;
  k = 0;
  while (mailproto_imap_view_next_expunge(v, &seq, &uid) == 1) {
    ck_assert_uint_lt(seq, last);
    SAME(seq, uid);
    last = seq;
    k++;
  }
  SAME(k, n);
  SAME(mailproto_imap_view_exists(v), n / 10);
  SAME(mailproto_imap_view_uid(v, 0), n + 1);
  SAME(mailproto_imap_view_memory(v), af.live_bytes);
  per = (double)af.live_bytes / (n / 10);
  ck_assert_msg(per <= 16.0, "%.2f bytes per message after expunges", per);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* Stores whose modseqs are time stamps (large numbers, RFC 7162's
 * examples use 12121231000) still cost no more than counters: the offset
 * base is centred on the first value, so values on both sides fit. */
START_TEST(test_imap_view_memory_time_stamp_modseqs) {
  const uint32_t n = 100000;
  const uint64_t now = 1700000000000000ULL; /* microseconds */
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_new(&af.allocator);
  rnd_state = 42;
  for (uint32_t u = 1; u <= n; u++) {
    /* Changed within the last half hour, before or after the first. */
    uint64_t ms = now - 1800000000ULL + rnd() % 1800000000ULL;
    SAME(mailproto_imap_view_message(v, u, 0, 0, ms), 0);
  }
  mailproto_imap_view_opened(v);
  double per = (double)af.live_bytes / n;
  ck_assert_msg(per <= 11.0, "%.2f bytes per message", per);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* A message changed over and over is queued once: the queue does not
 * grow with the number of reports. */
START_TEST(test_imap_view_repeated_changes_queue_once) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_with(&af.allocator, 2);
  SAME(mailproto_imap_view_message(v, 2, SEEN, 0, 10), 0);
  size_t bytes = af.live_bytes;
  for (uint32_t k = 0; k < 10000; k++) {
    SAME(mailproto_imap_view_message(v, 2, k % 2 ? SEEN : FLAGGED, 0, 11 + k),
         0);
    SAME(
        mailproto_imap_view_store_own(v, 1, MAILPROTO_FLAGS_ADD, DELETED, 0, 1),
        0);
  }
  SAME(af.live_bytes, bytes);
  mailproto_imap_view_change ch[4];
  SAME(drain_changes(v, ch, 4), 1);
  SAME(ch[0].flags, SEEN | DELETED);
  SAME(ch[0].modseq, 10010);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

/* Keywords set on every message and cleared again: the side table grows
 * and then gives its memory back. */
START_TEST(test_imap_view_keywords_table_shrinks) {
  const uint32_t n = 100000;
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_view *v = view_with(&af.allocator, n);
  size_t base = af.live_bytes;
  for (uint32_t i = 0; i < n; i++)
    SAME(mailproto_imap_view_store_own(v, i, MAILPROTO_FLAGS_ADD, 0,
                                       1ULL << (i % 64), 0),
         0);
  for (uint32_t i = 0; i < n; i += 7)
    SAME(mailproto_imap_view_keywords(v, i), 1ULL << (i % 64));
  ck_assert_uint_gt(af.live_bytes, base + (size_t)n * 12);
  for (uint32_t i = 0; i < n; i++)
    SAME(mailproto_imap_view_store_own(v, i, MAILPROTO_FLAGS_REMOVE, 0,
                                       UINT64_MAX, 0),
         0);
  SAME(af.live_bytes, base);
  for (uint32_t i = 0; i < n; i += 7)
    SAME(mailproto_imap_view_keywords(v, i), 0);
  mailproto_imap_view_free(v);
  SAME(af.live, 0);
}
END_TEST

Suite *suite_imap_view(void) {
  Suite *s = suite_create("imap_view");
  TCase *tc = tcase_create("view");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_imap_view_random_ops_match_model, 0, 24);
  tcase_add_loop_test(tc, test_imap_view_alloc_failure_loop, 0, 6);
  tcase_add_loop_test(tc, test_imap_view_resolve_table, 0, SET_CASES);
  tcase_add_test(tc, test_imap_view_resolve_empty_view);
  tcase_add_test(tc, test_imap_view_resolve_all_expunged_view);
  tcase_add_test(tc, test_imap_view_resolve_huge_span);
  tcase_add_test(tc, test_imap_view_resolve_thousands_of_ranges);
  tcase_add_test(tc, test_imap_view_spans_to_uids_capped_at_visible);
  tcase_add_test(tc, test_imap_view_flush_expunges_descending);
  tcase_add_test(tc, test_imap_view_flush_exists_with_pending_expunges);
  tcase_add_test(tc, test_imap_view_expunge_round_blocks_other_flushes);
  tcase_add_test(tc, test_imap_view_flush_changes_rounds);
  tcase_add_test(tc, test_imap_view_store_own_silent_and_loud);
  tcase_add_test(tc, test_imap_view_recent_is_fixed);
  tcase_add_test(tc, test_imap_view_condstore_modseq_only);
  tcase_add_test(tc, test_imap_view_modseq_wide_values);
  tcase_add_test(tc, test_imap_view_counters_for_select);
  tcase_add_test(tc, test_imap_view_safe_modseq_waits_for_announcements);
  tcase_add_test(tc, test_imap_view_keyword_table);
  tcase_add_test(tc, test_imap_view_bad_arguments);
  tcase_add_test(tc, test_imap_view_memory_per_message);
  tcase_add_test(tc, test_imap_view_memory_time_stamp_modseqs);
  tcase_add_test(tc, test_imap_view_repeated_changes_queue_once);
  tcase_add_test(tc, test_imap_view_keywords_table_shrinks);
  suite_add_tcase(s, tc);
  return s;
}
