/*
 * Keeping up with the selected mailbox: the store's sync, what open and
 * sync report (into the view, and message sizes and dates into the meta
 * table FETCH needs), and the untagged responses that tell the client:
 * EXPUNGE (only where RFC 3501 7.4.1 allows it), EXISTS and RECENT (RFC
 * 3501 7.3.1-2; no RECENT in IMAP4rev2), FLAGS and PERMANENTFLAGS when
 * keywords were added (7.2.6), and FETCH (FLAGS) for changed messages
 * (7.4.2; with UID for UID commands and IMAP4rev2, RFC 9051 7.5.2).
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "store/store_call.h"

/* ------------------------------------------------------------------ */
/* The meta table                                                      */
/* ------------------------------------------------------------------ */

/* The date field of an expunged entry. */
#define META_DEAD INT64_MIN
/* Dates further than this from 1970 (about 35 million years) are
 * clamped so the packed form cannot overflow. */
#define META_UTC_MAX (INT64_C(1) << 50)

static int64_t pack_date(const mailproto_datetime *d, int canonical) {
  int64_t utc = d->utc;
  if (utc > META_UTC_MAX)
    utc = META_UTC_MAX;
  if (utc < -META_UTC_MAX)
    utc = -META_UTC_MAX;
  int32_t tz = d->tz_minutes;
  if (tz < -1439 || tz > 1439)
    tz = 0;
  return ((utc * 4096) + (tz + 2048)) * 2 + (canonical ? 1 : 0);
}

static void unpack_date(int64_t v, imap_msg_info *out) {
  /* Floor division: the packed value may be negative. */
  int64_t canonical = ((v % 2) + 2) % 2;
  int64_t rest = (v - canonical) / 2;
  int64_t tz = ((rest % 4096) + 4096) % 4096;
  out->canonical = canonical != 0;
  out->date.tz_minutes = (int32_t)(tz - 2048);
  out->date.utc = (rest - tz) / 4096;
}

/* Index of the first entry with a UID >= uid. */
static size_t meta_lower(const imap_meta *m, uint32_t uid) {
  size_t lo = 0, hi = m->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (m->e[mid].uid < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Whether the store answers sizes and dates itself (its message_get
 * hook): then the table keeps only expunged messages (see imap_meta). */
static int meta_from_store(const mailproto_imap *s) {
  return mailproto_store_has_message_get(&s->store);
}

/* The table, allocated on first use; NULL on NOMEM. */
static imap_meta *meta_table(mailproto_imap *s) {
  if (!s->sel.meta)
    s->sel.meta = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->sel.meta);
  return s->sel.meta;
}

/* Adds an entry at its place by UID (the end, for open and sync; the
 * middle for an expunged message kept after a sync). */
static int meta_add(mailproto_imap *s, const mailproto_message_info *msg) {
  imap_meta *m = meta_table(s);
  if (!m)
    return MAILPROTO_ERR_NOMEM;
  size_t at = meta_lower(m, msg->uid);
  /* A UID reported before: sizes and dates never change. */
  if (at < m->n && m->e[at].uid == msg->uid)
    return 0;
  if (m->n == m->cap) {
    /* 1.5x steps, as the view's arrays grow (at least 64: a table cut to
     * fit by mailproto_imap_meta_opened() may hold a single entry). */
    size_t cap = m->cap < 64 ? 64 : m->cap + m->cap / 2;
    imap_meta_entry *e =
        mailproto_mem_reallocarray(&s->alloc, m->e, cap, sizeof *e);
    if (!e)
      return MAILPROTO_ERR_NOMEM;
    m->e = e;
    m->cap = cap;
  }
  if (msg->size >= UINT32_MAX) {
    if (m->big_n == m->big_cap) {
      size_t cap = m->big_cap ? 2 * m->big_cap : 4;
      imap_meta_big *b =
          mailproto_mem_reallocarray(&s->alloc, m->big, cap, sizeof *b);
      if (!b)
        return MAILPROTO_ERR_NOMEM;
      m->big = b;
      m->big_cap = cap;
    }
    size_t b = 0;
    while (b < m->big_n && m->big[b].uid < msg->uid)
      b++;
    memmove(m->big + b + 1, m->big + b, (m->big_n - b) * sizeof *m->big);
    m->big[b].uid = msg->uid;
    m->big[b].size = msg->size;
    m->big_n++;
  }
  memmove(m->e + at + 1, m->e + at, (m->n - at) * sizeof *m->e);
  m->n++;
  imap_meta_entry *e = &m->e[at];
  e->uid = msg->uid;
  e->size = msg->size >= UINT32_MAX ? UINT32_MAX : (uint32_t)msg->size;
  e->date = pack_date(&msg->internal_date, msg->size == msg->stored_size);
  return 0;
}

/* Drops expunged entries once they are many (amortised O(1) each). */
static void meta_compact(mailproto_imap *s) {
  imap_meta *m = s->sel.meta;
  if (m && m->n > 0 && m->dead == m->n && !m->pending) {
    /* All gone (with the store's lookup: every expunge announced). */
    mailproto_imap_meta_free(s);
    return;
  }
  if (!m || m->dead < 64 || m->dead < m->n / 2)
    return;
  size_t k = 0;
  for (size_t i = 0; i < m->n; i++)
    if (m->e[i].date != META_DEAD)
      m->e[k++] = m->e[i];
  m->n = k;
  m->dead = 0;
}

static void meta_expunged(imap_meta *m, uint32_t uid) {
  if (!m)
    return;
  size_t i = meta_lower(m, uid);
  if (i < m->n && m->e[i].uid == uid && m->e[i].date != META_DEAD) {
    m->e[i].date = META_DEAD;
    m->dead++;
  }
}

/* From the store's lookup, in the table's terms (its date limits). */
static int meta_lookup(const mailproto_imap *s, uint32_t uid,
                       imap_msg_info *out) {
  mailproto_message_info info;
  if (!s->sel.handle || mailproto_store_call_message_get(
                            &s->store, s->sel.handle, uid, &info) != 0)
    return 0;
  unpack_date(pack_date(&info.internal_date, info.size == info.stored_size),
              out);
  out->size = info.size;
  return 1;
}

int mailproto_imap_meta_get(const mailproto_imap *s, uint32_t uid,
                            imap_msg_info *out) {
  const imap_meta *m = s->sel.meta;
  size_t i = m ? meta_lower(m, uid) : 0;
  if (!m || i >= m->n || m->e[i].uid != uid || m->e[i].date == META_DEAD)
    return meta_from_store(s) ? meta_lookup(s, uid, out) : 0;
  unpack_date(m->e[i].date, out);
  out->size = m->e[i].size;
  if (m->e[i].size == UINT32_MAX) {
    size_t lo = 0, hi = m->big_n;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (m->big[mid].uid < uid)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo < m->big_n && m->big[lo].uid == uid)
      out->size = m->big[lo].size;
  }
  return 1;
}

void mailproto_imap_meta_opened(mailproto_imap *s) {
  imap_meta *m = s->sel.meta;
  if (!m || m->n == m->cap)
    return;
  if (m->n == 0) {
    /* Nothing to hold (an empty mailbox, or the store answers). */
    if (!m->big && !m->pending)
      mailproto_imap_meta_free(s);
    return;
  }
  /* Best effort: a smaller block that cannot be had leaves the larger. */
  imap_meta_entry *e =
      mailproto_mem_reallocarray(&s->alloc, m->e, m->n, sizeof *e);
  if (e) {
    m->e = e;
    m->cap = m->n;
  }
}

void mailproto_imap_meta_free(mailproto_imap *s) {
  imap_meta *m = s->sel.meta;
  if (!m)
    return;
  mailproto_mem_free(&s->alloc, m->e);
  mailproto_mem_free(&s->alloc, m->big);
  mailproto_mem_free(&s->alloc, m->pending);
  mailproto_mem_free(&s->alloc, m);
  s->sel.meta = NULL;
}

/* ------------------------------------------------------------------ */
/* What open and sync report                                           */
/* ------------------------------------------------------------------ */

int mailproto_imap_report_message(mailproto_imap *s,
                                  const mailproto_message_info *msg) {
  if (!s->sel.view)
    return 0;
  int rc = mailproto_imap_view_message(s->sel.view, msg->uid, msg->flags,
                                       msg->keywords, msg->modseq);
  if (rc == MAILPROTO_ERR_INVALID_ARGUMENT)
    return 0; /* UID 0: a store bug the view ignores */
  if (rc != 0 || meta_from_store(s))
    return rc;
  return meta_add(s, msg);
}

int mailproto_imap_report_keyword(mailproto_imap *s, unsigned index,
                                  const char *name) {
  if (!s->sel.view)
    return 0;
  int rc = mailproto_imap_view_keyword(s->sel.view, index, name);
  return rc == MAILPROTO_ERR_INVALID_ARGUMENT ? 0 : rc;
}

int mailproto_imap_report_expunged(mailproto_imap *s, uint32_t uid) {
  if (!s->sel.view)
    return 0;
  /* The size and date stay until the EXPUNGE goes out: until then the
   * message keeps its number and may still be fetched (RFC 2180 4.1). */
  int rc = mailproto_imap_view_expunged(s->sel.view, uid);
  if (rc != 0 || !meta_from_store(s))
    return rc;
  /* Asked of the store once the sync is done (not from inside it). */
  imap_meta *m = meta_table(s);
  if (!m)
    return MAILPROTO_ERR_NOMEM;
  if (m->pending_n == m->pending_cap) {
    size_t cap = m->pending_cap ? 2 * m->pending_cap : 16;
    uint32_t *p =
        mailproto_mem_reallocarray(&s->alloc, m->pending, cap, sizeof *p);
    if (!p)
      return MAILPROTO_ERR_NOMEM;
    m->pending = p;
    m->pending_cap = cap;
  }
  m->pending[m->pending_n++] = uid;
  return 0;
}

/* After a sync: keeps the sizes and dates of the messages it reported
 * expunged, which the store answers for only until its next sync. */
static int meta_keep_expunged(mailproto_imap *s) {
  imap_meta *m = s->sel.meta;
  if (!m || !m->pending)
    return 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < m->pending_n; i++) {
    mailproto_message_info info;
    if (mailproto_store_call_message_get(&s->store, s->sel.handle,
                                         m->pending[i], &info) == 0)
      rc = meta_add(s, &info);
  }
  m = s->sel.meta;
  mailproto_mem_free(&s->alloc, m->pending);
  m->pending = NULL;
  m->pending_n = m->pending_cap = 0;
  return rc;
}

void mailproto_imap_notify(void *arg) {
  mailproto_imap *s = arg;
  /* From inside some session's store call: only note it (store.h). */
  s->sel.dirty = 1;
  if (s->cb.wakeup)
    s->cb.wakeup(s, s->user_data);
}

int mailproto_imap_sync_start(mailproto_imap *s) {
  s->sel.dirty = 0;
  s->sel.sync_failed = 0;
  return mailproto_imap_after_op(
      s, IMAP_OP_SYNC,
      mailproto_store_call_sync(&s->store, &s->io.op, IMAP_OP_SYNC,
                                s->sel.handle, &s->status));
}

int mailproto_imap_sync_done(mailproto_imap *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  /* A failed sync is repeated whole by the next one, expunges too. */
  int kept = meta_keep_expunged(s);
  if (kept != 0 && rc == 0)
    return kept;
  if (rc != 0) {
    /* What the view got is kept (repeated reports are harmless); the
     * next chance tries again. The command's reply stands. */
    s->sel.dirty = 1;
    s->sel.sync_failed = 1;
    return 0;
  }
  mailproto_imap_view_status(s->sel.view, &s->status);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Flags                                                               */
/* ------------------------------------------------------------------ */

int mailproto_imap_write_msg_flags(mailproto_imap *s, mailproto_buf *b,
                                   uint32_t index) {
  const mailproto_imap_view *v = s->sel.view;
  const char *names[MAILPROTO_KEYWORDS_MAX];
  unsigned count = 0;
  uint64_t kw = mailproto_imap_view_keywords(v, index);
  for (unsigned i = 0; kw && i < MAILPROTO_KEYWORDS_MAX; i++, kw >>= 1)
    if (kw & 1u) {
      const char *name = mailproto_imap_view_keyword_name(v, i);
      if (name)
        names[count++] = name;
    }
  unsigned system = mailproto_imap_view_flags(v, index);
  /* RFC 9051 2.3.2: IMAP4rev2 has no \Recent. */
  if (s->rev2)
    system &= ~MAILPROTO_FLAG_RECENT;
  return mailproto_imap_write_flags(b, system, names, count, 0);
}

int mailproto_imap_write_flag_lists(mailproto_imap *s) {
  const mailproto_imap_view *v = s->sel.view;
  const char *names[MAILPROTO_KEYWORDS_MAX];
  unsigned count = mailproto_imap_view_keyword_count(v), used = 0;
  for (unsigned i = 0; i < count; i++)
    if ((names[i] = mailproto_imap_view_keyword_name(v, i)) != NULL)
      used++;
  mailproto_buf *b = &s->line;
  /* RFC 3501 7.2.6 and 7.1 (PERMANENTFLAGS): "\*" while keywords can
   * still be created; nothing is permanent in a read-only mailbox. */
  int rc = mailproto_imap_write_raw(b, "* FLAGS ");
  if (rc == 0)
    rc = mailproto_imap_write_flags(b, MAILPROTO_FLAGS_SETTABLE, names, count,
                                    0);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, "\r\n* OK [PERMANENTFLAGS ");
  if (rc == 0 && s->sel.readonly)
    rc = mailproto_imap_write_raw(b, "()] No permanent flags permitted\r\n");
  else if (rc == 0) {
    rc = mailproto_imap_write_flags(b, MAILPROTO_FLAGS_SETTABLE, names, count,
                                    used < MAILPROTO_KEYWORDS_MAX);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "] Flags permitted\r\n");
  }
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  return mailproto_imap_emit(s);
}

/* ------------------------------------------------------------------ */
/* Announcements                                                       */
/* ------------------------------------------------------------------ */

int mailproto_imap_write_modseq(mailproto_buf *b, uint64_t modseq) {
  int rc = mailproto_imap_write_raw(b, "MODSEQ (");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, modseq);
  return rc == 0 ? mailproto_imap_write_raw(b, ")") : rc;
}

/* "* n FETCH (FLAGS (...) [UID u])"; with CONDSTORE on, "* n FETCH (UID u
 * MODSEQ (m) [FLAGS (...)])", FLAGS left out when only the mod-sequence
 * changed (RFC 7162 3.1.4.2; 3.2.4 for the UID). */
static int announce_change(mailproto_imap *s,
                           const mailproto_imap_view_change *ch) {
  mailproto_buf *b = &s->line;
  uint32_t index = ch->seq - 1;
  int rc = mailproto_imap_write_raw(b, "* ");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, ch->seq);
  int modseq = mailproto_imap_modseq_on(s);
  if (rc == 0 && modseq) {
    rc = mailproto_imap_write_raw(b, " FETCH (UID ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, ch->uid);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, " ");
    if (rc == 0)
      rc = mailproto_imap_write_modseq(b, ch->modseq);
    if (rc == 0 && ch->flags_changed)
      rc = mailproto_imap_write_raw(b, " FLAGS ");
  } else if (rc == 0) {
    rc = mailproto_imap_write_raw(b, " FETCH (FLAGS ");
  }
  if (rc == 0 && ch->flags_changed)
    rc = mailproto_imap_write_msg_flags(s, b, index);
  if (rc == 0 && !modseq && (s->uid_fetch || s->rev2)) {
    rc = mailproto_imap_write_raw(b, " UID ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, ch->uid);
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, ")\r\n");
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  return mailproto_imap_emit(s);
}

/* A piece of an expunge round as "* VANISHED uids" (at most one line);
 * returns 1 when a line went out, 0 when the round is over. */
static int expunged_as_vanished(mailproto_imap *s) {
  mailproto_imap_view *v = s->sel.view;
  mailproto_buf *b = &s->line;
  uint32_t seq, uid, lo = 0, hi = 0;
  int runs = 0, rc = 0;
  /* Highest sequence number first, so UIDs come down: a run grows at its
   * low end. */
  while (rc == 0 && b->len < IMAP_VANISHED_LINE &&
         mailproto_imap_view_next_expunge(v, &seq, &uid) == 1) {
    meta_expunged(s->sel.meta, uid);
    if (runs > 0 && uid + 1 == lo) {
      lo = uid;
      continue;
    }
    if (runs++ == 0)
      rc = mailproto_imap_write_raw(b, "* VANISHED ");
    else
      rc = mailproto_imap_write_uid_run(b, runs == 2, lo, hi);
    lo = hi = uid;
  }
  if (runs == 0)
    return 0;
  if (rc == 0)
    rc = mailproto_imap_write_uid_run(b, runs == 1, lo, hi);
  s->removed_sent = 1;
  return mailproto_imap_vanished_line_end(s, rc);
}

int mailproto_imap_announce_step(mailproto_imap *s) {
  mailproto_imap_view *v = s->sel.view;
  uint32_t seq, uid, exists, recent;
  int rc;
  if (s->state != IMAP_SELECTED || !v) {
    s->announce = IMAP_ANN_DONE;
    return 0;
  }
  switch (s->announce) {
  case IMAP_ANN_VANISHED_EARLIER:
    rc = mailproto_imap_vanished_step(s);
    if (rc == 0)
      s->announce = IMAP_ANN_EXPUNGE;
    return rc < 0 ? rc : 0;
  case IMAP_ANN_EXPUNGE:
    /* A round, once begun, is sent whole before anything else that
     * carries sequence numbers. RFC 7162 3.2.10.2: after ENABLE QRESYNC,
     * as VANISHED (a mailbox with mod-sequences). */
    if (s->qresync && !s->sel.nomodseq) {
      rc = expunged_as_vanished(s);
      if (rc != 0)
        return rc < 0 ? rc : 0;
    } else if (mailproto_imap_view_next_expunge(v, &seq, &uid) == 1) {
      meta_expunged(s->sel.meta, uid);
      s->removed_sent = 1;
      return mailproto_imap_printf(s, "* %lu EXPUNGE\r\n", (unsigned long)seq);
    }
    if (!s->expunge_ok || mailproto_imap_view_flush_expunges(v) == 0) {
      meta_compact(s);
      s->announce = IMAP_ANN_EXISTS;
    }
    return 0;
  case IMAP_ANN_EXISTS:
    s->announce = IMAP_ANN_KEYWORDS;
    rc = mailproto_imap_view_flush_exists(v, &exists, &recent);
    if (rc < 0)
      return MAILPROTO_ERR_INTERNAL;
    if (rc == 0)
      return 0;
    rc = mailproto_imap_printf(s, "* %lu EXISTS\r\n", (unsigned long)exists);
    if (rc == 0 && !s->rev2)
      rc = mailproto_imap_printf(s, "* %lu RECENT\r\n", (unsigned long)recent);
    return rc;
  case IMAP_ANN_KEYWORDS:
    s->announce = IMAP_ANN_CHANGES_BEGIN;
    return mailproto_imap_view_flush_keywords(v)
               ? mailproto_imap_write_flag_lists(s)
               : 0;
  case IMAP_ANN_CHANGES_BEGIN:
    s->announce = IMAP_ANN_CHANGES;
    return mailproto_imap_view_flush_changes(v) < 0 ? MAILPROTO_ERR_INTERNAL
                                                    : 0;
  case IMAP_ANN_CHANGES: {
    mailproto_imap_view_change ch;
    rc = mailproto_imap_view_next_change(v, &ch);
    if (rc < 0)
      return MAILPROTO_ERR_INTERNAL;
    if (rc == 0) {
      s->announce = IMAP_ANN_DONE;
      return 0;
    }
    /* Without CONDSTORE only flag changes are queued. */
    return ch.flags_changed || mailproto_imap_modseq_on(s)
               ? announce_change(s, &ch)
               : 0;
  }
  default:
    s->announce = IMAP_ANN_DONE;
    return 0;
  }
}
