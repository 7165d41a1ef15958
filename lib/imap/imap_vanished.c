/*
 * QRESYNC's VANISHED (EARLIER) responses (RFC 7162 3.2.10.1): the UIDs of
 * a set that are no longer in the mailbox, for SELECT/EXAMINE (QRESYNC)
 * and UID FETCH (VANISHED). The stores keep no history of expunges, so
 * every UID of the set that is gone is reported, whenever it went; RFC
 * 7162 3.2.5.2 allows that (its examples show such a server) and the
 * client ignores UIDs it never knew. Written a line at a time as the
 * output drains: a set like 1:4000000 over a sparse mailbox could name
 * millions of gaps.
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"

struct imap_vanished {
  mailproto_imap_range *ranges; /* ascending, disjoint, within the bounds */
  size_t count, pos;
  uint32_t next;  /* ranges[pos]: the next UID to decide */
  uint32_t index; /* the first message of the view with a UID >= next */
  int range_done; /* ranges[pos] is finished */
};

void mailproto_imap_vanished_free(mailproto_imap *s) {
  if (!s->vanished)
    return;
  mailproto_mem_free(&s->alloc, s->vanished->ranges);
  mailproto_mem_free(&s->alloc, s->vanished);
  s->vanished = NULL;
}

int mailproto_imap_vanished_begin(mailproto_imap *s,
                                  const mailproto_imap_seqset *set,
                                  uint32_t lowest) {
  const mailproto_imap_view *v = s->sel.view;
  uint32_t uidnext = mailproto_imap_view_uidnext(v);
  /* Nothing above UIDNEXT - 1 was ever a message. "*" stands for that
   * here, not for the largest UID in use (RFC 3501 9): a client naming
   * "1:*" also knew the UIDs above the last message left, which may have
   * vanished (Dovecot reads it alike). */
  uint32_t highest = uidnext > 0 ? uidnext - 1 : 0;
  mailproto_imap_vanished_free(s);
  imap_vanished *x = mailproto_mem_calloc(&s->alloc, 1, sizeof *x);
  size_t n = set ? set->count : 1;
  if (!x || !(x->ranges = mailproto_mem_calloc(&s->alloc, n ? n : 1,
                                               sizeof *x->ranges))) {
    mailproto_mem_free(&s->alloc, x);
    return MAILPROTO_ERR_NOMEM;
  }
  s->vanished = x;
  if (set) {
    n = mailproto_imap_seqset_normalize(set, highest, x->ranges);
  } else {
    x->ranges[0].first = 1;
    x->ranges[0].last = highest;
    n = highest > 0;
  }
  /* Clip to [lowest, highest]; the ranges stay ascending. */
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    mailproto_imap_range r = x->ranges[i];
    if (r.first < lowest)
      r.first = lowest;
    if (r.last > highest)
      r.last = highest;
    if (r.first <= r.last && r.first > 0)
      x->ranges[k++] = r;
  }
  x->count = k;
  x->pos = 0;
  if (k > 0) {
    x->next = x->ranges[0].first;
    x->index = mailproto_imap_view_uid_lower_bound(v, x->next);
  }
  return 0;
}

int mailproto_imap_write_uid_run(mailproto_buf *b, int first, uint32_t lo,
                                 uint32_t hi) {
  int rc = first ? 0 : mailproto_imap_write_raw(b, ",");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, lo);
  if (rc == 0 && hi != lo && (rc = mailproto_imap_write_raw(b, ":")) == 0)
    rc = mailproto_imap_write_number(b, hi);
  return rc;
}

/* The next run of UIDs of the ranges that no message has: sets *lo and
 * *hi, or returns 0 when the ranges are done. The view's UIDs ascend, and
 * x->index is always the first message with a UID >= x->next. */
static int next_gap(const mailproto_imap_view *v, imap_vanished *x,
                    uint32_t *lo, uint32_t *hi) {
  uint32_t exists = mailproto_imap_view_exists(v);
  while (x->pos < x->count) {
    const mailproto_imap_range *r = &x->ranges[x->pos];
    while (!x->range_done) {
      uint32_t uid =
          x->index < exists ? mailproto_imap_view_uid(v, x->index) : 0;
      if (x->index < exists && uid == x->next) { /* there: skip it */
        x->index++;
        if (x->next == r->last)
          x->range_done = 1;
        else
          x->next++;
        continue;
      }
      /* Gone, up to the next message there or the end of the range. */
      uint32_t until = x->index < exists && uid <= r->last ? uid - 1 : r->last;
      *lo = x->next;
      *hi = until;
      if (until == r->last)
        x->range_done = 1;
      else
        x->next = until + 1;
      return 1;
    }
    x->range_done = 0;
    if (++x->pos < x->count) {
      x->next = x->ranges[x->pos].first;
      x->index = mailproto_imap_view_uid_lower_bound(v, x->next);
    }
  }
  return 0;
}

int mailproto_imap_vanished_step(mailproto_imap *s) {
  imap_vanished *x = s->vanished;
  if (!x)
    return 0;
  mailproto_buf *b = &s->line;
  uint32_t lo, hi;
  int runs = 0, rc = 0;
  while (rc == 0 && b->len < IMAP_VANISHED_LINE &&
         next_gap(s->sel.view, x, &lo, &hi)) {
    if (runs++ == 0)
      rc = mailproto_imap_write_raw(b, "* VANISHED (EARLIER) ");
    if (rc == 0)
      rc = mailproto_imap_write_uid_run(b, runs == 1, lo, hi);
  }
  if (rc == 0 && runs == 0) {
    mailproto_imap_vanished_free(s);
    return 0;
  }
  return mailproto_imap_vanished_line_end(s, rc);
}

int mailproto_imap_vanished_line_end(mailproto_imap *s, int rc) {
  mailproto_buf *b = &s->line;
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, "\r\n");
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  rc = mailproto_imap_emit(s);
  return rc != 0 ? rc : 1;
}
