/*
 * The selected state's commands on messages (RFC 3501 6.4, RFC 9051 6.4):
 * FETCH with the items that need no MIME parsing (FLAGS, UID,
 * INTERNALDATE, RFC822.SIZE, RFC822, RFC822.HEADER, RFC822.TEXT,
 * BODY[]/BODY.PEEK[] with HEADER and TEXT of the whole message, partial
 * <o.n>; the items that need the MIME structure are handed to
 * imap_fetch_mime.c at the dispatch points below), STORE, COPY, MOVE
 * (RFC 6851) with COPYUID (RFC 4315), EXPUNGE, UID EXPUNGE (RFC 4315
 * 2.1), CLOSE and UNSELECT (RFC 3691).
 *
 * Message text is sent in its RFC822 form (every line end CRLF, as
 * RFC822.SIZE counts it) straight from the store's reads, a chunk at a
 * time as the transport drains; a message is read before its FETCH line
 * begins, so one that cannot be read is left out (the reply is then NO)
 * instead of leaving a broken literal behind.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sort.h"
#include "imap/imap_internal.h"
#include "imap/imap_search.h"
#include "store/store_call.h"

void mailproto_imap_message_reset(mailproto_imap *s) {
  mailproto_mem_free(&s->alloc, s->spans);
  mailproto_mem_free(&s->alloc, s->uids);
  mailproto_mem_free(&s->alloc, (void *)s->keywords);
  mailproto_mem_free(&s->alloc, s->runs);
  mailproto_mem_free(&s->alloc, s->modified);
  mailproto_imap_vanished_free(s);
  s->modified = NULL;
  s->modified_count = s->modified_cap = 0;
  s->spans = NULL;
  s->uids = NULL;
  s->keywords = NULL;
  s->runs = NULL;
  s->span_count = s->uid_count = 0;
  s->run_count = s->run_cap = 0;
  s->runs_overflow = 0;
  mailproto_imap_fetch_mime_reset(s);
  mailproto_imap_tree_reset(s);
  if (s->fetch) {
    mailproto_mem_free(&s->alloc, s->fetch->unseen);
    mailproto_mem_free(&s->alloc, s->fetch);
    s->fetch = NULL;
  }
}

/* Resolves the command's message set into s->spans and s->uids. Returns
 * 0, 1 when a BAD reply was decided, or a fatal code. */
static int resolve(mailproto_imap *s, const mailproto_imap_seqset *set) {
  mailproto_imap_view *v = s->sel.view;
  if (set->saved) { /* RFC 5182 2.1: "$" is the saved result as it is now */
    int rc = mailproto_imap_search_saved_spans(s, &s->spans, &s->span_count);
    if (rc != 0)
      return rc;
    s->uids = mailproto_mem_calloc(&s->alloc, s->span_count ? s->span_count : 1,
                                   sizeof *s->uids);
    if (!s->uids)
      return MAILPROTO_ERR_NOMEM;
    s->uid_count =
        mailproto_imap_view_spans_to_uids(v, s->spans, s->span_count, s->uids);
    return 0;
  }
  size_t n = set->count;
  s->spans = mailproto_mem_calloc(&s->alloc, n ? n : 1, sizeof *s->spans);
  s->uids = mailproto_mem_calloc(&s->alloc, n ? n : 1, sizeof *s->uids);
  if (!s->spans || !s->uids)
    return MAILPROTO_ERR_NOMEM;
  int rc;
  if (s->cmd.uid)
    rc = mailproto_imap_view_resolve_uid(v, set->ranges, n, s->spans,
                                         &s->span_count);
  else
    rc = mailproto_imap_view_resolve_seq(v, set->ranges, n, s->spans,
                                         &s->span_count);
  /* RFC 3501 9 (seq-number): numbers beyond the mailbox are an error. */
  if (rc == MAILPROTO_ERR_NOT_FOUND) {
    rc = mailproto_imap_done(s, "BAD", NULL, "Invalid message sequence number");
    return rc != 0 ? rc : 1;
  }
  if (rc != 0)
    return MAILPROTO_ERR_INTERNAL;
  s->uid_count =
      mailproto_imap_view_spans_to_uids(v, s->spans, s->span_count, s->uids);
  return 0;
}

static int readonly_refused(mailproto_imap *s) {
  return mailproto_imap_done(s, "NO", "CANNOT", "Mailbox is read-only");
}

/* ------------------------------------------------------------------ */
/* FETCH items                                                         */
/* ------------------------------------------------------------------ */

enum body_part { PART_NONE, PART_FULL, PART_HEADER, PART_TEXT };

/* The message text an item asks for; PART_NONE for items that are not
 * message text, or that need the MIME structure. */
static enum body_part part_of(const mailproto_imap_fetch_item *it) {
  switch (it->type) {
  case MAILPROTO_IMAP_FETCH_RFC822:
    return PART_FULL;
  case MAILPROTO_IMAP_FETCH_RFC822_HEADER:
    return PART_HEADER;
  case MAILPROTO_IMAP_FETCH_RFC822_TEXT:
    return PART_TEXT;
  case MAILPROTO_IMAP_FETCH_BODY_SECTION:
    if (it->section.part_count != 0)
      return PART_NONE;
    switch (it->section.text) {
    case MAILPROTO_IMAP_SECTION_ALL:
      return PART_FULL;
    case MAILPROTO_IMAP_SECTION_HEADER:
      return PART_HEADER;
    case MAILPROTO_IMAP_SECTION_TEXT:
      return PART_TEXT;
    default:
      return PART_NONE;
    }
  default:
    return PART_NONE;
  }
}

static int item_supported(const mailproto_imap_fetch_item *it) {
  switch (it->type) {
  case MAILPROTO_IMAP_FETCH_FLAGS:
  case MAILPROTO_IMAP_FETCH_UID:
  case MAILPROTO_IMAP_FETCH_MODSEQ:
  case MAILPROTO_IMAP_FETCH_INTERNALDATE:
  case MAILPROTO_IMAP_FETCH_RFC822_SIZE:
    return 1;
  default:
    return part_of(it) != PART_NONE || mailproto_imap_fetch_is_mime(it);
  }
}

/* RFC 3501 6.4.5: fetching text sets \Seen, except the .PEEK forms and
 * RFC822.HEADER (which is BODY.PEEK[HEADER]); RFC 3516 4.2: so does
 * BINARY[] (not BINARY.PEEK[] or BINARY.SIZE). */
static int item_sets_seen(const mailproto_imap_fetch_item *it) {
  return it->type == MAILPROTO_IMAP_FETCH_RFC822 ||
         it->type == MAILPROTO_IMAP_FETCH_RFC822_TEXT ||
         ((it->type == MAILPROTO_IMAP_FETCH_BODY_SECTION ||
           it->type == MAILPROTO_IMAP_FETCH_BINARY) &&
          !it->peek);
}

static int add_uid(mailproto_imap *s, size_t *n, uint32_t uid);

/* RFC 7162 3.1.4.1: the messages CHANGEDSINCE leaves out are not
 * fetched, so they are not marked \Seen either: s->uids keeps the rest. */
static int uids_changed_since(mailproto_imap *s, uint64_t modseq) {
  const mailproto_imap_view *v = s->sel.view;
  mailproto_imap_view_iter it;
  uint32_t index;
  size_t n = 0;
  int rc = 0;
  mailproto_imap_view_iter_init(&it, s->spans, s->span_count);
  while (rc == 0 && mailproto_imap_view_iter_next(&it, &index))
    if (mailproto_imap_view_modseq(v, index) > modseq)
      rc = add_uid(s, &n, mailproto_imap_view_uid(v, index));
  s->uid_count = n;
  return rc;
}

/* Whether the FETCH asks for MODSEQ (RFC 7162 3.1.4.2). */
static int asks_modseq(const mailproto_imap_fetch *a) {
  for (unsigned i = 0; i < a->item_count; i++)
    if (a->items[i].type == MAILPROTO_IMAP_FETCH_MODSEQ)
      return 1;
  return 0;
}

int mailproto_imap_cmd_fetch(mailproto_imap *s) {
  const mailproto_imap_fetch *a = &s->cmd.u.fetch;
  /* RFC 7162 3.2.6: VANISHED needs ENABLE QRESYNC (and a UID FETCH
   * with CHANGEDSINCE, which the parser checked). */
  if (a->vanished && !s->qresync)
    return mailproto_imap_done(s, "BAD", NULL, "QRESYNC is not enabled");
  int rc;
  if ((a->has_changedsince || asks_modseq(a)) &&
      (rc = mailproto_imap_condstore_enable(s, 1)) != 0)
    return rc < 0 ? rc : 0;
  imap_fetch *f = mailproto_mem_calloc(&s->alloc, 1, sizeof *f);
  if (!f)
    return MAILPROTO_ERR_NOMEM;
  s->fetch = f;
  for (unsigned i = 0; i < a->item_count; i++) {
    const mailproto_imap_fetch_item *it = &a->items[i];
    if (!item_supported(it))
      return mailproto_imap_done(s, "NO", "CANNOT", "Fetch item not available");
    f->need_tree |= mailproto_imap_fetch_is_mime(it) != 0;
    f->has_uid |= it->type == MAILPROTO_IMAP_FETCH_UID;
    f->has_flags |= it->type == MAILPROTO_IMAP_FETCH_FLAGS;
    f->has_modseq |= it->type == MAILPROTO_IMAP_FETCH_MODSEQ;
    f->need_meta |= it->type != MAILPROTO_IMAP_FETCH_FLAGS &&
                    it->type != MAILPROTO_IMAP_FETCH_UID &&
                    it->type != MAILPROTO_IMAP_FETCH_MODSEQ;
    enum body_part p = part_of(it);
    f->need_body |= p != PART_NONE;
    f->need_header |= p == PART_HEADER || p == PART_TEXT;
    f->set_seen |= item_sets_seen(it) && !s->sel.readonly;
  }
  rc = resolve(s, &a->set);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  mailproto_imap_view_iter_init(&f->it, s->spans, s->span_count);
  f->stage = IMAP_FETCH_NEXT;
  if (a->vanished && !s->sel.nomodseq) {
    if ((rc = mailproto_imap_vanished_begin(s, &a->set, 1)) != 0)
      return rc;
    f->stage = IMAP_FETCH_VANISHED;
  }
  s->phase = IMAP_PHASE_WORK;
  if (f->set_seen && a->has_changedsince &&
      (rc = uids_changed_since(s, a->changedsince)) != 0)
    return rc;
  if (!f->set_seen || s->uid_count == 0)
    return 0;
  /* RFC 3501 6.4.5: \Seen, set for all of them at once before the
   * answers, which then show it. */
  return mailproto_imap_after_op(
      s, IMAP_OP_SET_FLAGS,
      mailproto_store_call_set_flags(
          &s->store, &s->io.op, IMAP_OP_SET_FLAGS, s->sel.handle, s->uids,
          s->uid_count, MAILPROTO_FLAGS_ADD, MAILPROTO_FLAG_SEEN, NULL, 0, 0));
}

/* The window of message text an item asks for. */
static void window(const imap_fetch *f, const mailproto_imap_fetch_item *it,
                   uint64_t *start, uint64_t *count) {
  uint64_t base = 0, total = f->info.size;
  enum body_part p = part_of(it);
  uint64_t header = f->header_len < total ? f->header_len : total;
  if (p == PART_HEADER)
    total = header;
  else if (p == PART_TEXT) {
    base = header;
    total -= header;
  }
  if (it->has_partial) {
    /* RFC 3501 6.4.5: octets from the origin, as many as exist. */
    uint64_t off = it->partial_offset < total ? it->partial_offset : total;
    uint64_t n = total - off;
    if (it->partial_length < n)
      n = it->partial_length;
    base += off;
    total = n;
  }
  *start = base;
  *count = total;
}

static void body_begin(mailproto_imap *s, const mailproto_imap_fetch_item *it) {
  imap_fetch *f = s->fetch;
  imap_body *b = &f->body;
  memset(b, 0, sizeof *b);
  window(f, it, &b->start, &b->count);
  /* Stored bytes that are already RFC822 bytes can be read from the
   * window's start; others are converted from the beginning. */
  b->raw = (unsigned char)f->info.canonical;
  if (b->raw)
    b->offset = b->pos = b->start;
}

static size_t read_max(const mailproto_imap *s) {
  size_t max = s->config.output_watermark;
  return max < IMAP_READ_CHUNK ? max : IMAP_READ_CHUNK;
}

static int read_at(mailproto_imap *s, uint64_t offset, size_t max) {
  imap_fetch *f = s->fetch;
  return mailproto_imap_after_op(
      s, IMAP_OP_READ,
      mailproto_store_call_read(&s->store, &s->io.op, IMAP_OP_READ,
                                s->sel.handle, f->uid, offset, max,
                                &f->read_data, &f->read_len));
}

static int body_read(mailproto_imap *s) {
  imap_body *b = &s->fetch->body;
  size_t max = read_max(s);
  if (b->raw && b->count - b->sent < max)
    max = (size_t)(b->count - b->sent);
  if (max == 0)
    max = 1;
  return read_at(s, b->offset, max);
}

/* The header scan over stored bytes: the header ends with its first
 * empty line (RFC 5322 2.1), line ends counted as CRLF. Returns 1 when
 * the end was found. */
static int scan(imap_fetch *f, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (f->scan_cr && c == '\n') {
      f->scan_cr = 0;
      continue;
    }
    f->scan_cr = 0;
    if (c == '\r' || c == '\n') {
      f->scan_pos += 2;
      f->scan_cr = c == '\r';
      if (f->scan_line_start) {
        f->header_len = f->scan_pos;
        return 1;
      }
      f->scan_line_start = 1;
    } else {
      f->scan_pos++;
      f->scan_line_start = 0;
    }
  }
  return 0;
}

/* Writes bytes of a literal, NUL sent as 0x80 (RFC 3501 9: a literal is
 * CHAR8, which excludes NUL; the octet count stays right). */
int mailproto_imap_literal_bytes(mailproto_outq *q, const uint8_t *p,
                                 size_t n) {
  while (n > 0) {
    const uint8_t *nul = memchr(p, 0, n);
    size_t run = nul ? (size_t)(nul - p) : n;
    int rc = mailproto_outq_write(q, p, run);
    if (rc == 0 && nul)
      rc = mailproto_outq_write(q, "\x80", 1);
    if (rc != 0)
      return rc;
    if (nul)
      run++;
    p += run;
    n -= run;
  }
  return 0;
}

static void advance(imap_body *b, size_t n) {
  b->data += n;
  b->len -= n;
}

/* Offset of the first CR or LF in p[0..n), or n. */
static size_t line_end_at(const uint8_t *p, size_t n) {
  const uint8_t *lf = memchr(p, '\n', n);
  size_t limit = lf ? (size_t)(lf - p) : n;
  const uint8_t *cr = memchr(p, '\r', limit);
  return cr ? (size_t)(cr - p) : limit;
}

/* Sends converted bytes of the last read while the queue is below its
 * watermark. */
static int body_emit(mailproto_imap *s) {
  imap_body *b = &s->fetch->body;
  mailproto_outq *q = &s->io.out;
  uint64_t end = b->start + b->count;
  int rc = 0;
  while (rc == 0 && b->len > 0 && b->sent < b->count &&
         !mailproto_outq_congested(q)) {
    size_t room = q->watermark - mailproto_outq_pending(q);
    const uint8_t *p = b->data;
    if (b->raw) {
      uint64_t want = b->len;
      if (want > b->count - b->sent)
        want = b->count - b->sent;
      if (want > room)
        want = room;
      rc = mailproto_imap_literal_bytes(q, p, (size_t)want);
      b->sent += want;
      advance(b, (size_t)want);
      continue;
    }
    if (b->cr && *p == '\n') {
      /* The LF of a CRLF whose CR already went out as CRLF. */
      b->cr = 0;
      advance(b, 1);
      continue;
    }
    b->cr = 0;
    if (*p == '\r' || *p == '\n') {
      static const char crlf[2] = {'\r', '\n'};
      for (int k = 0; rc == 0 && k < 2; k++, b->pos++)
        if (b->pos >= b->start && b->pos < end) {
          rc = mailproto_outq_write(q, &crlf[k], 1);
          b->sent++;
        }
      b->cr = *p == '\r';
      advance(b, 1);
      continue;
    }
    size_t run = line_end_at(p, b->len);
    if (b->pos < b->start) {
      uint64_t skip = b->start - b->pos;
      if (skip > run)
        skip = run;
      b->pos += skip;
      advance(b, (size_t)skip);
      continue;
    }
    uint64_t want = run;
    if (want > end - b->pos)
      want = end - b->pos;
    if (want > room)
      want = room;
    rc = mailproto_imap_literal_bytes(q, p, (size_t)want);
    b->pos += want;
    b->sent += want;
    advance(b, (size_t)want);
  }
  return rc == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_INTERNAL : rc;
}

/* ------------------------------------------------------------------ */
/* FETCH output                                                        */
/* ------------------------------------------------------------------ */

static int first_body_item(const mailproto_imap *s) {
  const mailproto_imap_fetch *a = &s->cmd.u.fetch;
  for (unsigned i = 0; i < a->item_count; i++)
    if (part_of(&a->items[i]) != PART_NONE)
      return (int)i;
  return -1;
}

static int fetch_finish(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  if (f->unseen_nomem)
    return MAILPROTO_ERR_NOMEM;
  if (f->unseen_n > 0) {
    /* RFC 3501 6.4.5, RFC 3516 4.2: \Seen goes with the text sent; the
     * messages left out got it with the others before the answers, so
     * it is taken back (one call; this runs again when it is done). */
    size_t n = f->unseen_n;
    f->unseen_n = 0;
    return mailproto_imap_after_op(
        s, IMAP_OP_SET_FLAGS,
        mailproto_store_call_set_flags(
            &s->store, &s->io.op, IMAP_OP_SET_FLAGS, s->sel.handle, f->unseen,
            n, MAILPROTO_FLAGS_REMOVE, MAILPROTO_FLAG_SEEN, NULL, 0, 0));
  }
  if (!f->skipped)
    return mailproto_imap_done(s, "OK", NULL, "FETCH completed");
  /* RFC 2180 4.1.2: what could be read was sent; the rest is gone. */
  if (f->skip_code == MAILPROTO_ERR_UNSUPPORTED)
    return mailproto_imap_done(s, "NO", "UNKNOWN-CTE",
                               "Unknown Content-Transfer-Encoding");
  if (f->skip_code == MAILPROTO_ERR_LIMIT)
    return mailproto_imap_done(s, "NO", "LIMIT",
                               "Some structures were too large to send");
  if (f->skip_code == MAILPROTO_ERR_EXPUNGED ||
      f->skip_code == MAILPROTO_ERR_NOT_FOUND)
    return mailproto_imap_done(s, "NO", "EXPUNGEISSUED",
                               "Some messages no longer exist");
  return mailproto_imap_done(s, "NO", "UNAVAILABLE",
                             "Some messages could not be read");
}

static void note_unseen(mailproto_imap *s, uint32_t uid) {
  imap_fetch *f = s->fetch;
  if (f->unseen_n == f->unseen_cap) {
    size_t cap = f->unseen_cap ? f->unseen_cap * 2 : 8;
    mailproto_uid_range *r =
        mailproto_mem_reallocarray(&s->alloc, f->unseen, cap, sizeof *r);
    if (!r) {
      f->unseen_nomem = 1; /* reported at the end, as NOMEM */
      return;
    }
    f->unseen = r;
    f->unseen_cap = cap;
  }
  mailproto_uid_range *last = f->unseen_n ? &f->unseen[f->unseen_n - 1] : NULL;
  if (last && last->last + 1 == uid) {
    last->last = uid;
  } else {
    f->unseen[f->unseen_n].first = f->unseen[f->unseen_n].last = uid;
    f->unseen_n++;
  }
}

static void skip_message(mailproto_imap *s, int code) {
  imap_fetch *f = s->fetch;
  const mailproto_imap_view *v = s->sel.view;
  /* The view learns \Seen only with a FETCH line (fetch_head): one it
   * lacks here was set by this command alone. UIDs come in ascending
   * order, so neighbours merge into one range. */
  if (f->set_seen && code != MAILPROTO_ERR_EXPUNGED &&
      !mailproto_imap_view_is_expunged(v, f->index) &&
      !(mailproto_imap_view_flags(v, f->index) & MAILPROTO_FLAG_SEEN))
    note_unseen(s, f->uid);
  f->skipped = 1;
  /* RFC 3516 4.1: UNKNOWN-CTE is the reason the client can act on */
  if (f->skip_code != MAILPROTO_ERR_UNSUPPORTED)
    f->skip_code = code;
  f->stage = IMAP_FETCH_NEXT;
}

void mailproto_imap_fetch_skip(mailproto_imap *s, int code) {
  skip_message(s, code);
}

static int fetch_next(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  const mailproto_imap_view *v = s->sel.view;
  if (!mailproto_imap_view_iter_next(&f->it, &f->index))
    return fetch_finish(s);
  /* RFC 7162 3.1.4.1: only messages changed after the given value. */
  if (s->cmd.u.fetch.has_changedsince &&
      mailproto_imap_view_modseq(v, f->index) <= s->cmd.u.fetch.changedsince)
    return 0;
  f->uid = mailproto_imap_view_uid(v, f->index);
  f->first = 1;
  f->add_flags = 0;
  f->header_len = 0;
  f->probe_item = -1;
  /* FLAGS and UID (what a client's flag resync asks for every message)
   * need no lookup of size and date. */
  if (!f->need_meta || !mailproto_imap_meta_get(s, f->uid, &f->info))
    memset(&f->info, 0, sizeof f->info);
  if (!f->need_body && !f->need_tree) {
    f->stage = IMAP_FETCH_HEAD;
    return 0;
  }
  /* RFC 2180 4.1.1: the text of a message another session expunged is
   * gone; the message is left out. */
  if (mailproto_imap_view_is_expunged(v, f->index)) {
    skip_message(s, MAILPROTO_ERR_EXPUNGED);
    return 0;
  }
  if (f->need_tree) {
    f->stage = IMAP_FETCH_TREE;
    return 0;
  }
  mailproto_imap_fetch_after_tree(s);
  return 0;
}

void mailproto_imap_fetch_after_tree(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  if (!f->need_body) {
    f->stage = IMAP_FETCH_HEAD;
    return;
  }
  f->stage = IMAP_FETCH_PROBE;
  if (f->need_header) {
    f->scan_pos = f->scan_offset = 0;
    f->scan_line_start = 1;
    f->scan_cr = 0;
  } else {
    f->probe_item = first_body_item(s);
    body_begin(s, &s->cmd.u.fetch.items[f->probe_item]);
  }
}

static int fetch_head(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  mailproto_imap_view *v = s->sel.view;
  if (f->set_seen && !mailproto_imap_view_is_expunged(v, f->index) &&
      !(mailproto_imap_view_flags(v, f->index) & MAILPROTO_FLAG_SEEN)) {
    /* The store has it already; the view learns it without queuing an
     * announcement, since this FETCH carries the new FLAGS itself. */
    int rc = mailproto_imap_view_store_own(v, f->index, MAILPROTO_FLAGS_ADD,
                                           MAILPROTO_FLAG_SEEN, 0, 0);
    if (rc == MAILPROTO_ERR_NOMEM)
      return rc;
    f->add_flags = 1;
  }
  /* Written piece by piece, not with printf: this runs once per message
   * and printf was a third of a UID FETCH (UID FLAGS). */
  mailproto_buf *b = &s->line;
  int rc = mailproto_imap_write_raw(b, "* ");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, (uint64_t)f->index + 1);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, " FETCH (");
  /* RFC 3501 6.4.8: a UID command's FETCH responses carry the UID. */
  if (rc == 0 && s->cmd.uid && !f->has_uid) {
    rc = mailproto_imap_write_raw(b, "UID ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, f->uid);
    f->first = 0;
  }
  /* RFC 7162 3.1.4.1: CHANGEDSINCE implies MODSEQ. */
  if (rc == 0 && s->cmd.u.fetch.has_changedsince && !f->has_modseq) {
    rc = mailproto_imap_write_raw(b, f->first ? "" : " ");
    if (rc == 0)
      rc = mailproto_imap_write_modseq(b,
                                       mailproto_imap_view_modseq(v, f->index));
    f->first = 0;
  }
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  f->item = 0;
  f->stage = IMAP_FETCH_ITEM;
  return mailproto_imap_emit(s);
}

static const char *body_name(const mailproto_imap_fetch_item *it) {
  switch (it->type) {
  case MAILPROTO_IMAP_FETCH_RFC822:
    return "RFC822";
  case MAILPROTO_IMAP_FETCH_RFC822_HEADER:
    return "RFC822.HEADER";
  case MAILPROTO_IMAP_FETCH_RFC822_TEXT:
    return "RFC822.TEXT";
  default:
    break;
  }
  switch (part_of(it)) {
  case PART_HEADER:
    return "BODY[HEADER]";
  case PART_TEXT:
    return "BODY[TEXT]";
  default:
    return "BODY[]";
  }
}

static int fetch_item(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  const mailproto_imap_fetch *a = &s->cmd.u.fetch;
  if (f->item >= a->item_count) {
    f->stage = IMAP_FETCH_TAIL;
    return 0;
  }
  const mailproto_imap_fetch_item *it = &a->items[f->item];
  if (mailproto_imap_fetch_is_mime(it))
    return mailproto_imap_fetch_mime_item(s);
  mailproto_buf *b = &s->line;
  int rc = mailproto_imap_write_raw(b, f->first ? "" : " ");
  f->first = 0;
  switch (it->type) {
  case MAILPROTO_IMAP_FETCH_FLAGS:
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "FLAGS ");
    if (rc == 0)
      rc = mailproto_imap_write_msg_flags(s, b, f->index);
    break;
  case MAILPROTO_IMAP_FETCH_UID:
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "UID ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, f->uid);
    break;
  case MAILPROTO_IMAP_FETCH_MODSEQ:
    if (rc == 0)
      rc = mailproto_imap_write_modseq(
          b, mailproto_imap_view_modseq(s->sel.view, f->index));
    break;
  case MAILPROTO_IMAP_FETCH_INTERNALDATE: {
    char date[MAILPROTO_DATE_BUFSIZE];
    if (mailproto_date_format_imap(&f->info.date, date, sizeof date) < 0)
      strcpy(date, " 1-Jan-1970 00:00:00 +0000");
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "INTERNALDATE \"");
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, date);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "\"");
    break;
  }
  case MAILPROTO_IMAP_FETCH_RFC822_SIZE:
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "RFC822.SIZE ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, f->info.size);
    break;
  default: {
    if ((int)f->item != f->probe_item)
      body_begin(s, it);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, body_name(it));
    if (rc == 0 && it->has_partial &&
        it->type == MAILPROTO_IMAP_FETCH_BODY_SECTION) {
      /* RFC 3501 7.4.2: the response names the origin only. */
      uint64_t origin = it->partial_offset;
      rc = mailproto_imap_write_raw(b, "<");
      if (rc == 0)
        rc = mailproto_imap_write_number(b, origin);
      if (rc == 0)
        rc = mailproto_imap_write_raw(b, ">");
    }
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, " {");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, f->body.count);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "}\r\n");
    f->stage = IMAP_FETCH_BODY;
    break;
  }
  }
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  if (f->stage == IMAP_FETCH_ITEM)
    f->item++;
  return mailproto_imap_emit(s);
}

static int fetch_body(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  imap_body *b = &f->body;
  if (b->sent >= b->count) {
    f->item++;
    f->stage = IMAP_FETCH_ITEM;
    return 0;
  }
  if (b->len > 0)
    return body_emit(s);
  if (b->eof) {
    /* The store gave fewer octets than RFC822.SIZE promised: the literal
     * cannot be completed, so the connection ends here. */
    mailproto_imap_close(s);
    return 0;
  }
  return body_read(s);
}

static int fetch_tail(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  mailproto_buf *b = &s->line;
  int rc = 0;
  /* RFC 3501 6.4.5: the \Seen this FETCH set is reported with it; with
   * CONDSTORE, with the UID too (RFC 7162 3.2.4), and its new MODSEQ
   * follows in the announcements after the command. */
  if (f->add_flags && mailproto_imap_modseq_on(s) && !f->has_uid &&
      !s->cmd.uid) {
    rc = mailproto_imap_write_raw(b, f->first ? "UID " : " UID ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, f->uid);
    f->first = 0;
  }
  if (rc == 0 && f->add_flags && !f->has_flags) {
    rc = mailproto_imap_write_raw(b, f->first ? "FLAGS " : " FLAGS ");
    if (rc == 0)
      rc = mailproto_imap_write_msg_flags(s, b, f->index);
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, ")\r\n");
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  f->stage = IMAP_FETCH_NEXT;
  return mailproto_imap_emit(s);
}

int mailproto_imap_fetch_step(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  switch (f->stage) {
  case IMAP_FETCH_NEXT:
    return fetch_next(s);
  case IMAP_FETCH_PROBE:
    if (f->need_header)
      return read_at(s, f->scan_offset, read_max(s));
    return body_read(s);
  case IMAP_FETCH_HEAD:
    return fetch_head(s);
  case IMAP_FETCH_ITEM:
    return fetch_item(s);
  case IMAP_FETCH_BODY:
    return fetch_body(s);
  case IMAP_FETCH_TAIL:
    return fetch_tail(s);
  case IMAP_FETCH_TREE:
    return mailproto_imap_fetch_tree_step(s);
  case IMAP_FETCH_MIME:
    return mailproto_imap_fetch_mime_step(s);
  case IMAP_FETCH_VANISHED: {
    int rc = mailproto_imap_vanished_step(s);
    if (rc == 0)
      f->stage = IMAP_FETCH_NEXT;
    return rc < 0 ? rc : 0;
  }
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

static int fetch_read_done(mailproto_imap *s, int rc) {
  imap_fetch *f = s->fetch;
  imap_body *b = &f->body;
  if (f->stage == IMAP_FETCH_TREE || f->stage == IMAP_FETCH_MIME)
    return mailproto_imap_fetch_mime_read_done(s, rc);
  if (mailproto_is_fatal(rc))
    return rc;
  const uint8_t *data = f->read_data;
  size_t len = f->read_len;
  f->read_data = NULL;
  f->read_len = 0;
  if (f->stage == IMAP_FETCH_PROBE) {
    if (rc != 0) {
      skip_message(s, rc);
      return 0;
    }
    if (f->need_header) {
      f->scan_offset += len;
      if (len == 0 || scan(f, data, len)) {
        if (len == 0)
          f->header_len = f->scan_pos;
        f->stage = IMAP_FETCH_HEAD;
      }
      return 0;
    }
    f->stage = IMAP_FETCH_HEAD;
  } else if (rc != 0) {
    /* A literal is half sent: nothing valid can follow. */
    mailproto_imap_close(s);
    return 0;
  }
  b->data = data;
  b->len = len;
  b->offset += len;
  b->eof = len == 0;
  return 0;
}

static int fetch_seen_done(mailproto_imap *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc != 0)
    return mailproto_imap_fail(s, rc, NULL);
  /* Our change; the sync after the FETCH must not announce it again. */
  s->must_sync = 1;
  return 0;
}

/* ------------------------------------------------------------------ */
/* STORE (RFC 3501 6.4.6)                                              */
/* ------------------------------------------------------------------ */

int mailproto_imap_store_modified(mailproto_imap *s, uint32_t uid) {
  if (s->modified_count == s->modified_cap) {
    size_t cap = s->modified_cap ? 2 * s->modified_cap : 16;
    uint32_t *m =
        mailproto_mem_reallocarray(&s->alloc, s->modified, cap, sizeof *m);
    if (!m)
      return MAILPROTO_ERR_NOMEM;
    s->modified = m;
    s->modified_cap = cap;
  }
  s->modified[s->modified_count++] = uid;
  return 0;
}

/* Appends `uid` to the UID ranges being rebuilt in s->uids (n so far):
 * onto the last range when it follows it; room grows as needed. */
static int add_uid(mailproto_imap *s, size_t *n, uint32_t uid) {
  size_t k = *n;
  if (k > 0 && s->uids[k - 1].last + 1 == uid) {
    s->uids[k - 1].last = uid;
    return 0;
  }
  if (k == s->uid_count) {
    mailproto_uid_range *u =
        mailproto_mem_reallocarray(&s->alloc, s->uids, 2 * k + 1, sizeof *u);
    if (!u)
      return MAILPROTO_ERR_NOMEM;
    s->uids = u;
    s->uid_count = 2 * k + 1;
  }
  s->uids[k].first = s->uids[k].last = uid;
  *n = k + 1;
  return 0;
}

/* RFC 7162 3.1.3: UNCHANGEDSINCE 0 fails wherever the metadata the
 * STORE touches exists: always for a system flag (and for FLAGS, which
 * replaces them all), else where the message has one of the keywords.
 * Those go to s->modified now. The rest are stored on condition that
 * they did not change after this session's last sync: the view knows
 * every change up to its HIGHESTMODSEQ (store_call), so with that as
 * UNCHANGEDSINCE the store fails exactly the messages changed since, at
 * the moment it stores: another session setting the keyword in between
 * makes it fail too (Example 8's test-and-set holds), in one store call.
 * Messages another session expunged are skipped, as the store skips them
 * otherwise. */
static int unchanged_since_zero(mailproto_imap *s) {
  const mailproto_imap_store *a = &s->cmd.u.store;
  mailproto_imap_view *v = s->sel.view;
  uint64_t mask = 0;
  for (unsigned i = 0; i < a->flags.keyword_count; i++) {
    unsigned k;
    if (mailproto_imap_view_keyword_find(v, a->flags.keywords[i].data,
                                         a->flags.keywords[i].len, &k))
      mask |= UINT64_C(1) << k;
  }
  int all = (a->flags.system & MAILPROTO_FLAGS_SETTABLE) != 0 ||
            a->op == MAILPROTO_IMAP_STORE_REPLACE;
  mailproto_imap_view_iter it;
  uint32_t index;
  size_t n = 0;
  int rc = 0;
  mailproto_imap_view_iter_init(&it, s->spans, s->span_count);
  while (rc == 0 && mailproto_imap_view_iter_next(&it, &index)) {
    uint32_t uid = mailproto_imap_view_uid(v, index);
    if (mailproto_imap_view_is_expunged(v, index))
      continue;
    if (all || (mailproto_imap_view_keywords(v, index) & mask))
      rc = mailproto_imap_store_modified(s, uid);
    else
      rc = add_uid(s, &n, uid);
  }
  s->uid_count = n;
  return rc;
}

static int cmp_uid(const void *a, const void *b, const void *ctx) {
  (void)ctx;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static int cmp_uid_key(const void *a, const void *b) {
  return cmp_uid(a, b, NULL);
}

/* Runs written into MODIFIED; beyond them the last run stretches to the
 * last failure, reporting the messages between as failed too (a client
 * rechecks those; leaving a failure out would lose it), so the reply
 * (24 bytes a run at most) always fits IMAP_REPLY_SLACK. */
#define MODIFIED_RUNS_MAX 4096u

/* "MODIFIED set" into `code`: the failed messages (sorted UIDs in
 * s->modified) by sequence number, or by UID for UID STORE (RFC 7162
 * 3.1.3), NUL-terminated. */
static int modified_code(mailproto_imap *s, mailproto_buf *code) {
  int rc = mailproto_imap_write_raw(code, "MODIFIED ");
  size_t runs = 0;
  uint32_t first = 0, last = 0;
  for (size_t i = 0; rc == 0 && i <= s->modified_count; i++) {
    uint32_t num = 0, index;
    if (i < s->modified_count) {
      num = s->modified[i];
      if (!s->cmd.uid) {
        if (!mailproto_imap_view_find_uid(s->sel.view, num, &index))
          continue; /* gone from the view: no number to give */
        num = index + 1;
      }
      if (runs > 0 && (num == last + 1 || runs == MODIFIED_RUNS_MAX)) {
        last = num;
        continue;
      }
    }
    if (runs > 0)
      rc = mailproto_imap_write_uid_run(code, runs == 1, first, last);
    first = last = num;
    runs++;
  }
  return rc == 0 ? mailproto_buf_append(code, "", 1) : rc;
}

static int store_done(mailproto_imap *s, int rc);

/* The store's set_flags for the STORE. */
static int store_call(mailproto_imap *s) {
  const mailproto_imap_store *a = &s->cmd.u.store;
  uint64_t since = a->has_unchangedsince ? a->unchangedsince : 0;
  if (a->has_unchangedsince && since == 0) /* see unchanged_since_zero */
    since = mailproto_imap_view_highest_modseq(s->sel.view);
  return mailproto_store_call_set_flags(
      &s->store, &s->io.op, IMAP_OP_SET_FLAGS, s->sel.handle, s->uids,
      s->uid_count, (mailproto_flag_mode)a->op,
      a->flags.system & MAILPROTO_FLAGS_SETTABLE, s->keywords,
      a->flags.keyword_count, since);
}

int mailproto_imap_cmd_store(mailproto_imap *s) {
  const mailproto_imap_store *a = &s->cmd.u.store;
  int rc;
  if (a->has_unchangedsince &&
      (rc = mailproto_imap_condstore_enable(s, 1)) != 0)
    return rc < 0 ? rc : 0;
  if (s->sel.readonly)
    return readonly_refused(s);
  rc = resolve(s, &a->set);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  if (a->has_unchangedsince && a->unchangedsince == 0 &&
      (rc = unchanged_since_zero(s)) != 0)
    return rc;
  unsigned n = a->flags.keyword_count;
  if (n) {
    s->keywords = mailproto_mem_calloc(&s->alloc, n, sizeof *s->keywords);
    if (!s->keywords)
      return MAILPROTO_ERR_NOMEM;
    for (unsigned i = 0; i < n; i++)
      s->keywords[i] = a->flags.keywords[i].data;
  }
  if (s->uid_count == 0)
    return store_done(s, 0);
  return mailproto_imap_after_op(s, IMAP_OP_SET_FLAGS, store_call(s));
}

static int store_done(mailproto_imap *s, int rc) {
  const mailproto_imap_store *a = &s->cmd.u.store;
  mailproto_imap_view *v = s->sel.view;
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc == MAILPROTO_ERR_LIMIT)
    return mailproto_imap_done(s, "NO", "LIMIT", "Too many keywords");
  if (rc != 0)
    return mailproto_imap_fail(s, rc, NULL);
  /* Keywords the mailbox already knows go into the view now; new ones
   * come with the sync (which then announces them even with .SILENT). */
  uint64_t mask = 0;
  for (unsigned i = 0; i < a->flags.keyword_count; i++) {
    unsigned k;
    if (mailproto_imap_view_keyword_find(v, a->flags.keywords[i].data,
                                         a->flags.keywords[i].len, &k))
      mask |= UINT64_C(1) << k;
  }
  mailproto_heap_sort(s->modified, s->modified_count, sizeof *s->modified,
                      cmp_uid, NULL);
  mailproto_imap_view_iter it;
  uint32_t index;
  mailproto_imap_view_iter_init(&it, s->spans, s->span_count);
  while (mailproto_imap_view_iter_next(&it, &index)) {
    /* What failed UNCHANGEDSINCE keeps its flags. */
    if (s->modified_count &&
        bsearch(&(uint32_t){mailproto_imap_view_uid(v, index)}, s->modified,
                s->modified_count, sizeof *s->modified, cmp_uid_key))
      continue;
    /* RFC 3501 6.4.6: without .SILENT the new flags are sent back (with
     * CONDSTORE on, the sync after the STORE sends the new MODSEQ even
     * with .SILENT, RFC 7162 3.1.3). */
    rc = mailproto_imap_view_store_own(
        v, index, (mailproto_flag_mode)a->op,
        a->flags.system & MAILPROTO_FLAGS_SETTABLE, mask, !a->silent);
    if (rc == MAILPROTO_ERR_NOMEM)
      return rc;
  }
  s->must_sync = 1;
  if (s->modified_count == 0)
    return mailproto_imap_done(s, "OK", NULL, "STORE completed");
  mailproto_buf code;
  mailproto_buf_init(&code, &s->alloc, IMAP_REPLY_SLACK);
  rc = modified_code(s, &code);
  if (rc == 0)
    rc = mailproto_imap_done(s, "OK", (const char *)code.data,
                             "Conditional STORE failed");
  else if (rc != MAILPROTO_ERR_NOMEM)
    rc = MAILPROTO_ERR_INTERNAL; /* the runs are capped to fit */
  mailproto_buf_free(&code);
  return rc;
}

/* ------------------------------------------------------------------ */
/* COPY and MOVE (RFC 3501 6.4.7, RFC 6851, RFC 4315 COPYUID)          */
/* ------------------------------------------------------------------ */

/* Runs kept for COPYUID; beyond this the code is left out (RFC 4315 3
 * lets a server omit it), so the reply (46 bytes a run at most) always
 * fits IMAP_REPLY_SLACK. */
#define COPYUID_RUNS_MAX 1024u

int mailproto_imap_copy_map(mailproto_imap *s, uint32_t src, uint32_t dst) {
  if (s->runs_overflow)
    return 0;
  if (s->run_count > 0) {
    imap_uid_run *r = &s->runs[s->run_count - 1];
    if (src == r->src + r->len && dst == r->dst + r->len &&
        r->len < UINT32_MAX) {
      r->len++;
      return 0;
    }
  }
  if (s->run_count >= COPYUID_RUNS_MAX) {
    s->runs_overflow = 1;
    return 0;
  }
  if (s->run_count == s->run_cap) {
    size_t cap = s->run_cap ? 2 * s->run_cap : 8;
    imap_uid_run *r =
        mailproto_mem_reallocarray(&s->alloc, s->runs, cap, sizeof *r);
    if (!r)
      return MAILPROTO_ERR_NOMEM;
    s->runs = r;
    s->run_cap = cap;
  }
  s->runs[s->run_count++] = (imap_uid_run){src, dst, 1};
  return 0;
}

int mailproto_imap_cmd_copy(mailproto_imap *s, int move) {
  if (move && s->sel.readonly)
    return readonly_refused(s);
  char *dest;
  int rc = mailproto_imap_mailbox_name(s, &s->cmd.u.copy.mailbox, 0, &dest);
  if (rc == MAILPROTO_ERR_SYNTAX)
    return mailproto_imap_done(s, "BAD", NULL, "Invalid mailbox name");
  if (rc == MAILPROTO_ERR_BAD_NAME)
    return mailproto_imap_done(s, "NO", "CANNOT", "Invalid mailbox name");
  if (rc != 0)
    return rc;
  rc = resolve(s, &s->cmd.u.copy.set);
  if (rc != 0 || s->uid_count == 0) {
    mailproto_mem_free(&s->alloc, dest);
    if (rc != 0)
      return rc < 0 ? rc : 0;
    return mailproto_imap_done(
        s, "OK", NULL, move ? "No messages moved" : "No messages copied");
  }
  s->dest_uidvalidity = 0;
  /* The destination may be the selected mailbox itself. */
  s->must_sync = 1;
  rc = mailproto_store_call_copy(&s->store, &s->io.op, IMAP_OP_COPY,
                                 s->sel.handle, s->uids, s->uid_count, dest,
                                 move, &s->dest_uidvalidity);
  mailproto_mem_free(&s->alloc, dest);
  return mailproto_imap_after_op(s, IMAP_OP_COPY, rc);
}

/* Writes one side of the runs as a UID set: ranges in the order of the
 * copy, adjacent ones merged (the two sides still list the same number
 * of UIDs in corresponding order, RFC 4315 3). */
static size_t put_set(char *out, const imap_uid_run *r, size_t n, int dst) {
  size_t len = 0;
  for (size_t i = 0; i < n;) {
    uint32_t first = dst ? r[i].dst : r[i].src;
    uint32_t last = first + (r[i].len - 1);
    for (i++; i < n; i++) {
      uint32_t next = dst ? r[i].dst : r[i].src;
      if (last == UINT32_MAX || next != last + 1)
        break;
      last = next + (r[i].len - 1);
    }
    len += (size_t)sprintf(out + len, "%s%lu", len ? "," : "",
                           (unsigned long)first);
    if (last != first)
      len += (size_t)sprintf(out + len, ":%lu", (unsigned long)last);
  }
  return len;
}

static int copy_done(mailproto_imap *s, int rc) {
  int move = s->cmd.id == MAILPROTO_IMAP_CMD_MOVE;
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc == MAILPROTO_ERR_LIMIT)
    return mailproto_imap_done(s, "NO", "OVERQUOTA", "Quota exceeded");
  if (rc != 0)
    return mailproto_imap_fail(s, rc, "TRYCREATE");
  char *code = NULL;
  if (s->run_count && !s->runs_overflow && s->dest_uidvalidity) {
    /* "COPYUID v set set": at most 23 bytes per run and side. */
    size_t size = 32 + s->run_count * 2 * 23;
    code = mailproto_mem_malloc(&s->alloc, size);
    if (!code)
      return MAILPROTO_ERR_NOMEM;
    size_t len = (size_t)sprintf(code, "COPYUID %lu ",
                                 (unsigned long)s->dest_uidvalidity);
    len += put_set(code + len, s->runs, s->run_count, 0);
    code[len++] = ' ';
    len += put_set(code + len, s->runs, s->run_count, 1);
    code[len] = '\0';
  }
  if (move) {
    /* RFC 6851 3.3: COPYUID comes in an untagged OK before the
     * EXPUNGEs, which the sync after the MOVE reports. */
    rc = code ? mailproto_imap_untagged(s, "OK", code, "Moved") : 0;
    mailproto_mem_free(&s->alloc, code);
    if (rc != 0)
      return rc;
    s->must_sync = 1;
    /* RFC 6851 4.4: the source's new HIGHESTMODSEQ in the OK. */
    if (!s->sel.nomodseq)
      s->modseq_ok = "MOVE completed";
    return mailproto_imap_done(s, "OK", NULL, "MOVE completed");
  }
  rc = mailproto_imap_done(s, "OK", code, "COPY completed");
  mailproto_mem_free(&s->alloc, code);
  return rc;
}

/* ------------------------------------------------------------------ */
/* EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT                               */
/* ------------------------------------------------------------------ */

/* Every visible message as one span (EXPUNGE and CLOSE work on what the
 * client knows: RFC 3501 6.4.3 removes the \Deleted ones it was told
 * about). */
static int all_visible(mailproto_imap *s) {
  uint32_t exists = mailproto_imap_view_exists(s->sel.view);
  s->spans = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->spans);
  s->uids = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->uids);
  if (!s->spans || !s->uids)
    return MAILPROTO_ERR_NOMEM;
  s->span_count = 0;
  if (exists) {
    s->spans[0].first = 0;
    s->spans[0].last = exists - 1;
    s->span_count = 1;
  }
  s->uid_count = mailproto_imap_view_spans_to_uids(s->sel.view, s->spans,
                                                   s->span_count, s->uids);
  return 0;
}

static int expunge_call(mailproto_imap *s) {
  return mailproto_imap_after_op(
      s, IMAP_OP_EXPUNGE,
      mailproto_store_call_expunge(&s->store, &s->io.op, IMAP_OP_EXPUNGE,
                                   s->sel.handle, s->uids, s->uid_count,
                                   MAILPROTO_EXPUNGE_ONLY_DELETED));
}

int mailproto_imap_cmd_expunge(mailproto_imap *s) {
  if (s->sel.readonly)
    return readonly_refused(s);
  int rc = s->cmd.uid ? resolve(s, &s->cmd.u.expunge.set) : all_visible(s);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  s->must_sync = 1;
  if (s->uid_count == 0)
    return mailproto_imap_done(s, "OK", NULL, "EXPUNGE completed");
  return expunge_call(s);
}

static int closed(mailproto_imap *s) {
  mailproto_imap_unselect(s);
  return mailproto_imap_done(s, "OK", NULL,
                             s->cmd.id == MAILPROTO_IMAP_CMD_CLOSE
                                 ? "CLOSE completed"
                                 : "UNSELECT completed");
}

int mailproto_imap_cmd_close(mailproto_imap *s, int expunge) {
  /* RFC 3501 6.4.2: CLOSE removes \Deleted messages silently unless the
   * mailbox is read-only; UNSELECT (RFC 3691) never does. */
  if (!expunge || s->sel.readonly)
    return closed(s);
  int rc = all_visible(s);
  if (rc != 0)
    return rc;
  if (s->uid_count == 0)
    return closed(s);
  return expunge_call(s);
}

int mailproto_imap_message_done(mailproto_imap *s, int kind, int rc) {
  switch (kind) {
  case IMAP_OP_READ:
    return fetch_read_done(s, rc);
  case IMAP_OP_SET_FLAGS:
    if (s->cmd.id == MAILPROTO_IMAP_CMD_FETCH)
      return fetch_seen_done(s, rc);
    return store_done(s, rc);
  case IMAP_OP_EXPUNGE:
    if (mailproto_is_fatal(rc))
      return rc;
    /* RFC 3501 6.4.2: CLOSE has no failure result; the mailbox is left
     * whatever became of the expunge. */
    if (s->cmd.id == MAILPROTO_IMAP_CMD_CLOSE)
      return closed(s);
    if (rc != 0)
      return mailproto_imap_fail(s, rc, NULL);
    /* RFC 7162 3.2.7, 3.2.9: with QRESYNC on, the OK of an EXPUNGE that
     * removed something carries the new HIGHESTMODSEQ, known once the
     * sync after it has run (imap_session.c). */
    if (s->qresync && !s->sel.nomodseq)
      s->modseq_ok = "EXPUNGE completed";
    return mailproto_imap_done(s, "OK", NULL, "EXPUNGE completed");
  case IMAP_OP_COPY:
    return copy_done(s, rc);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}
