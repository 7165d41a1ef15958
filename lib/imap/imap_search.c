/*
 * SEARCH and UID SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4) with the ESEARCH
 * result forms (RFC 4731, and RFC 9051's default ESEARCH answer after
 * ENABLE IMAP4rev2), the saved result "$" (RFC 5182), SORT and THREAD
 * (RFC 5256): the walk over the visible messages, the store reads it
 * needs (each may defer; the walk resumes where it stood), and the
 * responses, sent in pieces as the transport drains.
 *
 * Per message: the program is first evaluated on what the view knows;
 * only an open answer (or SORT/THREAD's need for header fields) makes the
 * message be read: pass A streams it from its first byte through the
 * header field collector (and, when BODY or TEXT are asked, through the
 * MIME parser to the end); pass B reads the text parts the tree names,
 * transfer-decoded and converted to UTF-8, into the matchers. Each pass
 * stops as soon as the answer is known.
 *
 * RFC 3501 7.4.1: no EXPUNGE goes out during SEARCH (the dispatch sets
 * that up; UID SEARCH may have them).
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "imap/imap_search.h"
#include "mime/mime_header.h"
#include "store/store_call.h"

/* Output piece written per step (well below IMAP_REPLY_SLACK). */
#define OUT_PIECE 16384u
/* Store read size. */
#define READ_MAX (64u * 1024u)

enum stage {
  ST_NEXT = 0, /* decide the next message */
  ST_PASS_A,   /* read the header from the first byte */
  ST_TREE,     /* the MIME tree (imap_mime_tree.c: cache or parse) */
  ST_PASS_B,   /* read the text parts */
  ST_OUTPUT,   /* the response, piece by piece */
};

struct imap_search {
  imap_search_prog prog;
  unsigned ret; /* MAILPROTO_IMAP_RETURN_*; 0: "* SEARCH" (rev1) */
  unsigned char esearch;
  unsigned char parse; /* the text parts are wanted after the header */
  unsigned char stage;
  unsigned char failed;     /* a message could not be read */
  unsigned char records;    /* SORT, THREAD: a record per match */
  unsigned char flags_only; /* the keys are system flags: see below */
  uint32_t flag_mask, flag_want;
  uint32_t next; /* the next index to decide */
  imap_search_msg msg;
  uint64_t offset; /* stored bytes of the message read so far */
  uint32_t part;   /* pass B: the text part being read */
  uint64_t part_end;
  mailproto_mime_decoder dec;
  mailproto_mime_to_utf8 conv;
  const uint8_t *read_data; /* a read's results (stable while deferred) */
  size_t read_len;
  uint32_t *match; /* indexes of matching messages, ascending */
  size_t nmatch, capmatch;
  imap_sort_set sort;
  mailproto_buf out;
  size_t out_pos;
  /* "* SEARCH" and "* SORT" numbers and ESEARCH's ALL set are written a
   * piece at a time as the output drains, not all at once (a million
   * matches would be ~8 MB): which list, and the next entry of it. */
  enum { LIST_NONE, LIST_SEARCH, LIST_SORT, LIST_ESEARCH_ALL } list;
  size_t list_next;
};

typedef struct imap_search imap_search;

/* ------------------------------------------------------------------ */
/* The saved result (RFC 5182)                                         */
/* ------------------------------------------------------------------ */

void mailproto_imap_search_forget(mailproto_imap *s) {
  mailproto_mem_free(&s->alloc, s->saved);
  s->saved = NULL;
  s->saved_count = 0;
}

int mailproto_imap_search_saved_has(const mailproto_imap *s, uint32_t uid) {
  size_t lo = 0, hi = s->saved_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->saved[mid].last < uid)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->saved_count && s->saved[lo].first <= uid;
}

int mailproto_imap_search_saved_spans(mailproto_imap *s,
                                      mailproto_imap_range **spans,
                                      size_t *count) {
  size_t n = s->saved_count;
  *count = 0;
  *spans = mailproto_mem_calloc(&s->alloc, n ? n : 1, sizeof **spans);
  if (!*spans)
    return MAILPROTO_ERR_NOMEM;
  if (n == 0 || s->state != IMAP_SELECTED)
    return 0;
  for (size_t i = 0; i < n; i++) {
    (*spans)[i].first = s->saved[i].first;
    (*spans)[i].last = s->saved[i].last;
  }
  /* UIDs that are gone match nothing: the set follows expunges. */
  if (mailproto_imap_view_resolve_uid(s->sel.view, *spans, n, *spans, count) !=
      0)
    *count = 0;
  return 0;
}

/* Saves the given matches (indexes into s->search->match). Runs of
 * adjacent messages become one UID range: a UID between two messages of
 * the view can never be given to a later message. */
static int save_result(mailproto_imap *s, const uint32_t *idx, size_t n) {
  mailproto_imap_search_forget(s);
  if (n == 0)
    return 0;
  mailproto_uid_range *r = mailproto_mem_calloc(&s->alloc, n, sizeof *r);
  if (!r)
    return MAILPROTO_ERR_NOMEM;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    uint32_t uid = mailproto_imap_view_uid(s->sel.view, idx[i]);
    if (k && idx[i] == idx[i - 1] + 1)
      r[k - 1].last = uid;
    else
      r[k++] = (mailproto_uid_range){uid, uid};
  }
  s->saved = r;
  s->saved_count = k;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

void mailproto_imap_search_reset(mailproto_imap *s) {
  imap_search *q = s->search;
  if (!q)
    return;
  mailproto_imap_search_prog_free(&q->prog);
  mailproto_mem_free(&s->alloc, q->match);
  mailproto_imap_sort_free(&q->sort, &s->alloc);
  mailproto_buf_free(&q->out);
  mailproto_mem_free(&s->alloc, q);
  s->search = NULL;
}

static int charset_ok(const mailproto_imap_str *cs) {
  /* RFC 3501 6.4.4: US-ASCII must be supported; RFC 9051 adds UTF-8.
   * Search strings are compared as UTF-8 (US-ASCII is a subset). */
  return mailproto_mime_span_is((const uint8_t *)cs->data, cs->len, "UTF-8") ||
         mailproto_mime_span_is((const uint8_t *)cs->data, cs->len, "US-ASCII");
}

static unsigned want_of_sort(const mailproto_imap_sort *a) {
  unsigned w = 0;
  for (unsigned i = 0; i < a->criteria_count; i++)
    switch (a->criteria[i].key) {
    case MAILPROTO_IMAP_SORT_CC:
      w |= IMAP_WANT_CC;
      break;
    case MAILPROTO_IMAP_SORT_DATE:
      w |= IMAP_WANT_DATE;
      break;
    case MAILPROTO_IMAP_SORT_FROM:
      w |= IMAP_WANT_FROM;
      break;
    case MAILPROTO_IMAP_SORT_SUBJECT:
      w |= IMAP_WANT_SUBJECT;
      break;
    case MAILPROTO_IMAP_SORT_TO:
      w |= IMAP_WANT_TO;
      break;
    default:
      break;
    }
  return w;
}

int mailproto_imap_cmd_search(mailproto_imap *s) {
  const mailproto_imap_command *c = &s->cmd;
  mailproto_imap_search_key *root;
  const mailproto_imap_str *charset = NULL;
  unsigned want = 0;
  int save = 0;
  switch (c->id) {
  case MAILPROTO_IMAP_CMD_SEARCH:
    root = c->u.search.key;
    if (c->u.search.has_charset)
      charset = &c->u.search.charset;
    save = (c->u.search.return_opts & MAILPROTO_IMAP_RETURN_SAVE) != 0;
    break;
  case MAILPROTO_IMAP_CMD_SORT:
    root = c->u.sort.key;
    charset = &c->u.sort.charset;
    want = want_of_sort(&c->u.sort);
    break;
  default:
    root = c->u.thread.key;
    charset = &c->u.thread.charset;
    want = IMAP_WANT_SUBJECT | IMAP_WANT_DATE;
    if (c->u.thread.algorithm == MAILPROTO_IMAP_THREAD_REFERENCES)
      want |= IMAP_WANT_IDS;
    break;
  }
  if (charset && !charset_ok(charset)) {
    /* RFC 5182 2.1: a failed SEARCH with SAVE empties "$". */
    if (save)
      mailproto_imap_search_forget(s);
    return mailproto_imap_done(s, "NO", "BADCHARSET (UTF-8 US-ASCII)",
                               "Unsupported charset");
  }
  imap_search *q = mailproto_mem_calloc(&s->alloc, 1, sizeof *q);
  if (!q)
    return MAILPROTO_ERR_NOMEM;
  s->search = q;
  q->records = c->id != MAILPROTO_IMAP_CMD_SEARCH;
  mailproto_buf_init(&q->sort.arena, &s->alloc, (size_t)1 << 30);
  mailproto_buf_init(&q->out, &s->alloc, SIZE_MAX);
  int rc = mailproto_imap_search_compile(&q->prog, &s->alloc, root, s, want);
  if (rc != 0)
    return rc;
  /* RFC 7162 3.2.10.2 (and RFC 9051 7.5.1 for EXPUNGE): a UID SEARCH,
   * SORT or THREAD whose keys name sequence numbers announces no
   * expunges, which would shift them. */
  if (q->prog.uses_seqnums)
    s->expunge_ok = 0;
  /* RFC 7162 3.1: a MODSEQ key enables CONDSTORE (BAD for a mailbox
   * without mod-sequences). */
  if (q->prog.uses_modseq &&
      (rc = mailproto_imap_condstore_enable(s, 1)) != 0) {
    if (rc == 1 && save)
      mailproto_imap_search_forget(s);
    return rc < 0 ? rc : 0;
  }
  if (c->id == MAILPROTO_IMAP_CMD_SEARCH) {
    q->ret = c->u.search.return_opts;
    /* RFC 9051 6.4.4: an IMAP4rev2 client gets ESEARCH, RETURN () being
     * the default. */
    q->esearch = c->u.search.has_return || s->rev2;
    if (!c->u.search.has_return && s->rev2)
      q->ret = MAILPROTO_IMAP_RETURN_ALL;
  }
  q->flags_only = !q->records && mailproto_imap_search_flag_masks(
                                     root, &q->flag_mask, &q->flag_want);
  mailproto_imap_view *v = s->sel.view;
  q->msg.exists = mailproto_imap_view_exists(v);
  q->msg.last_uid =
      q->msg.exists ? mailproto_imap_view_uid(v, q->msg.exists - 1) : 0;
  q->stage = ST_NEXT;
  s->phase = IMAP_PHASE_WORK;
  return 0;
}

/* ------------------------------------------------------------------ */
/* The walk                                                            */
/* ------------------------------------------------------------------ */

static int add_match(mailproto_imap *s, imap_search *q) {
  /* SORT and THREAD answer from their records alone. */
  if (q->records)
    return mailproto_imap_sort_add(&q->sort, &q->msg, &q->prog.fields,
                                   q->prog.want);
  if (q->nmatch == q->capmatch) {
    size_t cap = q->capmatch ? 2 * q->capmatch : 64;
    uint32_t *m =
        mailproto_mem_reallocarray(&s->alloc, q->match, cap, sizeof *m);
    if (!m)
      return MAILPROTO_ERR_NOMEM;
    q->match = m;
    q->capmatch = cap;
  }
  q->match[q->nmatch++] = q->msg.index;
  return 0;
}

static void load_msg(mailproto_imap *s, imap_search *q, uint32_t index) {
  mailproto_imap_view *v = s->sel.view;
  imap_search_msg *m = &q->msg;
  m->index = index;
  m->uid = mailproto_imap_view_uid(v, index);
  m->flags = mailproto_imap_view_flags(v, index);
  /* IMAP4rev2 has no \Recent (RFC 9051 2.3.2): RECENT matches nothing. */
  if (s->rev2)
    m->flags &= ~(uint32_t)MAILPROTO_FLAG_RECENT;
  m->keywords =
      q->prog.need_keywords ? mailproto_imap_view_keywords(v, index) : 0;
  m->modseq = q->prog.uses_modseq ? mailproto_imap_view_modseq(v, index) : 0;
  m->have_meta = 0;
  if (q->prog.need_meta || q->records) {
    imap_msg_info info;
    if (mailproto_imap_meta_get(s, m->uid, &info)) {
      m->have_meta = 1;
      m->size = info.size;
      m->date = info.date;
    }
  }
}

static int read_next(mailproto_imap *s, imap_search *q) {
  return mailproto_imap_after_op(
      s, IMAP_OP_SEARCH_READ,
      mailproto_store_call_read(&s->store, &s->io.op, IMAP_OP_SEARCH_READ,
                                s->sel.handle, q->msg.uid, q->offset, READ_MAX,
                                &q->read_data, &q->read_len));
}

/* The message is decided (as far as it can be): record it and move on. */
static int finish_msg(mailproto_imap *s, imap_search *q) {
  q->stage = ST_NEXT;
  q->next = q->msg.index + 1;
  if (mailproto_imap_search_eval(&q->prog, s, &q->msg, 1) == IMAP_SR_YES)
    return add_match(s, q);
  return 0;
}

static int build_output(mailproto_imap *s, imap_search *q);
static int tree_start(mailproto_imap *s, imap_search *q);
static int end_pass_a(mailproto_imap *s, imap_search *q, int eof);

/* Keys on system flags only: one mask test per message. */
static int step_flags(mailproto_imap *s, imap_search *q) {
  const mailproto_imap_view *v = s->sel.view;
  /* IMAP4rev2 has no \Recent (RFC 9051 2.3.2), as in load_msg(). */
  uint32_t hide = s->rev2 ? (uint32_t)MAILPROTO_FLAG_RECENT : 0u;
  for (; q->next < q->msg.exists; q->next++) {
    uint32_t f = mailproto_imap_view_flags(v, q->next) & ~hide;
    if ((f & q->flag_mask) == q->flag_want &&
        !mailproto_imap_view_is_expunged(v, q->next)) {
      q->msg.index = q->next;
      int rc = add_match(s, q);
      if (rc != 0)
        return rc;
    }
  }
  return build_output(s, q);
}

static int step_next(mailproto_imap *s, imap_search *q) {
  if (q->flags_only)
    return step_flags(s, q);
  /* Messages the view decides are done in one go. */
  while (q->next < q->msg.exists) {
    /* A message another session expunged keeps its number until the
     * EXPUNGE is sent, but it is gone: it matches nothing (RFC 2180
     * 4.1), as in Dovecot. */
    if (mailproto_imap_view_is_expunged(s->sel.view, q->next)) {
      q->next++;
      continue;
    }
    load_msg(s, q, q->next);
    /* Content state only matters when something reads the message. */
    if (q->prog.nck || q->records)
      mailproto_imap_search_begin_msg(&q->prog);
    int r = mailproto_imap_search_eval(&q->prog, s, &q->msg, 0);
    if (r == IMAP_SR_NO) {
      q->next++;
      continue;
    }
    if (r == IMAP_SR_YES && !q->prog.want) {
      int rc = add_match(s, q);
      if (rc != 0)
        return rc;
      q->next++;
      continue;
    }
    /* Read it: the header for SORT/THREAD and header keys first (it may
     * decide), then the text parts through the MIME tree for BODY and
     * TEXT. */
    q->parse = r == IMAP_SR_UNKNOWN && q->prog.need_body;
    q->offset = 0;
    if (!q->prog.need_header)
      return tree_start(s, q);
    /* A tree at hand (memory or the store's cache) has the envelope
     * fields: no read for them (issue 9: "from the cached structure"). */
    if (!q->prog.env_short) {
      int rc = mailproto_imap_tree_begin(s, q->msg.uid);
      if (rc < 0)
        return rc;
      if (rc == 1) {
        rc = mailproto_imap_search_envelope(&q->prog,
                                            mailproto_imap_tree_get(s));
        return rc != 0 ? rc : end_pass_a(s, q, 0);
      }
    }
    q->stage = ST_PASS_A;
    return read_next(s, q);
  }
  return build_output(s, q);
}

/* The next text part from q->part on (a leaf of type text/ *, decoded
 * for matching), or MAILPROTO_MIME_NONE. */
static uint32_t next_text_part(const mailproto_mime_tree *t, uint32_t from) {
  for (uint32_t i = from; i < t->part_count; i++) {
    uint32_t f = t->parts[i].flags;
    if ((f & MAILPROTO_MIME_PART_TEXT) &&
        !(f & (MAILPROTO_MIME_PART_MULTIPART | MAILPROTO_MIME_PART_MESSAGE)) &&
        t->parts[i].body_size > 0)
      return i;
  }
  return MAILPROTO_MIME_NONE;
}

static void begin_part(mailproto_imap *s, imap_search *q) {
  const mailproto_mime_tree *t = mailproto_imap_tree_get(s);
  const mailproto_mime_part *p = &t->parts[q->part];
  mailproto_mime_ref r = p->fields[MAILPROTO_MIME_CONTENT_TRANSFER_ENCODING];
  mailproto_mime_cte cte =
      mailproto_mime_cte_of(mailproto_mime_ref_data(t, r), r.len);
  mailproto_mime_charset cs = MAILPROTO_MIME_CHARSET_UNKNOWN;
  r = p->fields[MAILPROTO_MIME_CONTENT_TYPE];
  const uint8_t *v = mailproto_mime_ref_data(t, r);
  mailproto_mime_ctype ct;
  if (v && mailproto_mime_ctype_parse(v, r.len, &ct)) {
    uint8_t name[64];
    long n = mailproto_mime_param_get(v, r.len, ct.params, "charset", name,
                                      sizeof name);
    if (n > 0)
      cs = mailproto_mime_charset_lookup(name, (size_t)n);
  }
  mailproto_mime_to_utf8_init(&q->conv, cs, mailproto_imap_search_text,
                              &q->prog);
  mailproto_mime_decoder_init(&q->dec, cte, mailproto_mime_to_utf8_feed,
                              &q->conv);
  q->offset = p->body_offset;
  q->part_end = p->body_offset + p->body_size;
}

/* Moves pass B to the part after the current one, or ends the message. */
static int end_part(mailproto_imap *s, imap_search *q) {
  mailproto_mime_decoder_finish(&q->dec);
  mailproto_imap_search_text_end(&q->prog);
  if (mailproto_imap_search_eval(&q->prog, s, &q->msg, 0) != IMAP_SR_UNKNOWN)
    return finish_msg(s, q);
  q->part = next_text_part(mailproto_imap_tree_get(s), q->part + 1);
  if (q->part == MAILPROTO_MIME_NONE)
    return finish_msg(s, q);
  begin_part(s, q);
  return 0;
}

/* The tree is ready: pass B over its text parts. */
static int tree_done(mailproto_imap *s, imap_search *q) {
  q->part = next_text_part(mailproto_imap_tree_get(s), 0);
  if (q->part == MAILPROTO_MIME_NONE)
    return finish_msg(s, q);
  begin_part(s, q);
  q->stage = ST_PASS_B;
  return 0;
}

/* The MIME tree of the message (imap_mime_tree.c): from memory or the
 * store's cache at once, else parsed from reads the steps issue. */
static int tree_start(mailproto_imap *s, imap_search *q) {
  int rc = mailproto_imap_tree_begin(s, q->msg.uid);
  if (rc < 0)
    return rc;
  q->stage = ST_TREE;
  return rc == 1 ? tree_done(s, q) : 0;
}

/* Pass A is over (end of message, or the answer is known). */
static int end_pass_a(mailproto_imap *s, imap_search *q, int eof) {
  int rc = mailproto_imap_search_header_end(&q->prog);
  if (rc != 0)
    return rc;
  (void)eof;
  if (!q->parse ||
      mailproto_imap_search_eval(&q->prog, s, &q->msg, 0) != IMAP_SR_UNKNOWN)
    return finish_msg(s, q);
  return tree_start(s, q);
}

static int pass_a(mailproto_imap *s, imap_search *q, const uint8_t *d,
                  size_t n) {
  if (n == 0)
    return end_pass_a(s, q, 1);
  long used = mailproto_imap_search_header(&q->prog, d, n);
  if (used < 0)
    return (int)used;
  q->offset += n;
  return q->prog.hdr.done ? end_pass_a(s, q, 0) : 0;
}

static int pass_b(mailproto_imap *s, imap_search *q, const uint8_t *d,
                  size_t n) {
  if (n == 0) /* shorter than the tree said: the part ends here */
    return end_part(s, q);
  uint64_t left = q->part_end - q->offset;
  if (n > left)
    n = (size_t)left;
  int rc = mailproto_mime_decoder_feed(&q->dec, d, n);
  if (rc != 0)
    return rc;
  q->offset += n;
  if (q->offset >= q->part_end ||
      mailproto_imap_search_eval(&q->prog, s, &q->msg, 0) != IMAP_SR_UNKNOWN)
    return end_part(s, q);
  return 0;
}

int mailproto_imap_search_done(mailproto_imap *s, int rc) {
  imap_search *q = s->search;
  if (mailproto_is_fatal(rc))
    return rc;
  if (!q)
    return MAILPROTO_ERR_INTERNAL;
  if (q->stage == ST_TREE) {
    rc = mailproto_imap_tree_read_done(s, rc);
    if (mailproto_is_fatal(rc))
      return rc;
    if (rc == 0)
      return mailproto_imap_tree_ready(s, q->msg.uid) ? tree_done(s, q) : 0;
    /* The message cannot be read: as below. */
  }
  const uint8_t *d = q->read_data;
  size_t n = q->read_len;
  q->read_data = NULL;
  q->read_len = 0;
  if (rc != 0) {
    /* RFC 2180 4.1.1: a message another session expunged is not found;
     * other failures make the reply NO after the answer. */
    if (rc != MAILPROTO_ERR_EXPUNGED && rc != MAILPROTO_ERR_NOT_FOUND)
      q->failed = 1;
    q->stage = ST_NEXT;
    q->next = q->msg.index + 1;
    return 0;
  }
  if (q->stage == ST_PASS_A)
    return pass_a(s, q, d, n);
  return pass_b(s, q, d, n);
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */
/* ------------------------------------------------------------------ */

static int put(mailproto_buf *b, const char *text) {
  return mailproto_buf_append_str(b, text);
}

int mailproto_imap_search_put_num(mailproto_buf *b, uint64_t n) {
  char t[24];
  size_t k = sizeof t;
  do {
    t[--k] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  return mailproto_buf_append(b, t + k, sizeof t - k);
}

static uint32_t number_of(const mailproto_imap *s, uint32_t index) {
  return s->cmd.uid ? mailproto_imap_view_uid(s->sel.view, index) : index + 1;
}

/* The next piece of "2,4:7,10", runs of consecutive numbers as ranges
 * (RFC 4731 ALL), from q->list_next on. */
static int put_set_piece(mailproto_imap *s, imap_search *q) {
  mailproto_buf *b = &q->out;
  const uint32_t *idx = q->match;
  size_t n = q->nmatch;
  int rc = 0;
  while (rc == 0 && q->list_next < n && b->len < OUT_PIECE) {
    size_t i = q->list_next, j = i + 1;
    uint32_t first = number_of(s, idx[i]), last = first;
    while (j < n && number_of(s, idx[j]) == last + 1)
      last = number_of(s, idx[j++]);
    rc = mailproto_imap_write_uid_run(b, i == 0, first, last);
    q->list_next = j;
  }
  return rc;
}

/* RFC 7162 3.1.5, 3.1.9: with a MODSEQ key, the highest mod-sequence of
 * the messages returned (0: none, or no MODSEQ key). RFC 4731 3.2: for
 * ESEARCH with MIN and/or MAX alone, those messages' only. */
static uint64_t result_modseq(const mailproto_imap *s, const imap_search *q) {
  const mailproto_imap_view *v = s->sel.view;
  size_t n = q->records ? q->sort.n : q->nmatch;
  if (!q->prog.uses_modseq || n == 0)
    return 0;
  unsigned ends = MAILPROTO_IMAP_RETURN_MIN | MAILPROTO_IMAP_RETURN_MAX;
  unsigned whole = MAILPROTO_IMAP_RETURN_ALL | MAILPROTO_IMAP_RETURN_COUNT;
  if (q->esearch && !q->records && (q->ret & ends) && !(q->ret & whole)) {
    uint64_t lo = mailproto_imap_view_modseq(v, q->match[0]);
    uint64_t hi = mailproto_imap_view_modseq(v, q->match[n - 1]);
    if (!(q->ret & MAILPROTO_IMAP_RETURN_MAX))
      return lo;
    if (!(q->ret & MAILPROTO_IMAP_RETURN_MIN))
      return hi;
    return lo > hi ? lo : hi;
  }
  uint64_t top = 0;
  for (size_t i = 0; i < n; i++) {
    uint64_t m = mailproto_imap_view_modseq(v, q->records ? q->sort.r[i].index
                                                          : q->match[i]);
    top = m > top ? m : top;
  }
  return top;
}

/* What follows ALL in an ESEARCH response (RFC 7162 3.1.10: MODSEQ). */
static int esearch_end(mailproto_imap *s, imap_search *q) {
  mailproto_buf *b = &q->out;
  int rc = 0;
  if ((q->ret & MAILPROTO_IMAP_RETURN_COUNT) && (rc = put(b, " COUNT ")) == 0)
    rc = mailproto_imap_search_put_num(b, q->nmatch);
  uint64_t modseq = result_modseq(s, q);
  if (rc == 0 && modseq && (rc = put(b, " MODSEQ ")) == 0)
    rc = mailproto_imap_search_put_num(b, modseq);
  return rc == 0 ? put(b, "\r\n") : rc;
}

static int esearch(mailproto_imap *s, imap_search *q) {
  mailproto_buf *b = &q->out;
  unsigned ret = q->ret;
  const uint32_t *m = q->match;
  size_t n = q->nmatch;
  int rc = 0;
  /* RFC 5182 2.4: with MIN and/or MAX alone, "$" holds just those. */
  if (ret & MAILPROTO_IMAP_RETURN_SAVE) {
    if ((ret & (MAILPROTO_IMAP_RETURN_ALL | MAILPROTO_IMAP_RETURN_COUNT)) ||
        !(ret & (MAILPROTO_IMAP_RETURN_MIN | MAILPROTO_IMAP_RETURN_MAX)) ||
        n == 0) {
      rc = save_result(s, m, n);
    } else {
      uint32_t pick[2];
      size_t k = 0;
      if (ret & MAILPROTO_IMAP_RETURN_MIN)
        pick[k++] = m[0];
      if ((ret & MAILPROTO_IMAP_RETURN_MAX) && (k == 0 || m[n - 1] != m[0]))
        pick[k++] = m[n - 1];
      rc = save_result(s, pick, k);
    }
    if (rc != 0)
      return rc;
    /* RFC 5182 2.4: SAVE alone gives no ESEARCH response. */
    if (!(ret & ~MAILPROTO_IMAP_RETURN_SAVE))
      return 0;
  }
  rc = put(b, "* ESEARCH (TAG \"");
  if (rc == 0)
    rc = put(b, mailproto_imap_tag(s));
  if (rc == 0)
    rc = put(b, "\")");
  if (rc == 0 && s->cmd.uid)
    rc = put(b, " UID");
  if (rc == 0 && n && (ret & MAILPROTO_IMAP_RETURN_MIN) &&
      (rc = put(b, " MIN ")) == 0)
    rc = mailproto_imap_search_put_num(b, number_of(s, m[0]));
  if (rc == 0 && n && (ret & MAILPROTO_IMAP_RETURN_MAX) &&
      (rc = put(b, " MAX ")) == 0)
    rc = mailproto_imap_search_put_num(b, number_of(s, m[n - 1]));
  /* The order Dovecot uses (RFC 4731 leaves it open); the set and the
   * rest come from list_piece(). */
  if (rc == 0 && n && (ret & MAILPROTO_IMAP_RETURN_ALL)) {
    q->list = LIST_ESEARCH_ALL;
    return put(b, " ALL ");
  }
  return rc == 0 ? esearch_end(s, q) : rc;
}

static int build_output(mailproto_imap *s, imap_search *q) {
  mailproto_buf *b = &q->out;
  int rc = 0;
  switch (s->cmd.id) {
  case MAILPROTO_IMAP_CMD_SEARCH:
    if (q->esearch) {
      rc = esearch(s, q);
      break;
    }
    rc = put(b, "* SEARCH");
    q->list = LIST_SEARCH;
    break;
  case MAILPROTO_IMAP_CMD_SORT:
    mailproto_imap_sort_run(&q->sort, s->cmd.u.sort.criteria,
                            s->cmd.u.sort.criteria_count);
    rc = put(b, "* SORT");
    q->list = LIST_SORT;
    break;
  default:
    /* RFC 5256 4: "THREAD" [SP 1*thread-list] */
    rc = put(b, q->sort.n ? "* THREAD " : "* THREAD");
    if (rc == 0)
      rc = mailproto_imap_thread_run(&q->sort, s->cmd.u.thread.algorithm,
                                     s->cmd.uid, &s->alloc, b);
    if (rc == 0)
      rc = put(b, "\r\n");
    break;
  }
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  q->stage = ST_OUTPUT;
  q->out_pos = 0;
  return 0;
}

/* Refills q->out with the next piece of the SEARCH or SORT list or the
 * ESEARCH ALL set, what ends the line after its last number. */
static int list_piece(mailproto_imap *s, imap_search *q) {
  mailproto_buf *b = &q->out;
  mailproto_buf_clear(b);
  q->out_pos = 0;
  if (q->list == LIST_ESEARCH_ALL) {
    int rc = put_set_piece(s, q);
    if (rc == 0 && q->list_next == q->nmatch) {
      rc = esearch_end(s, q);
      q->list = LIST_NONE;
    }
    return rc == 0 || rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  size_t n = q->list == LIST_SEARCH ? q->nmatch : q->sort.n;
  int rc = 0;
  for (; rc == 0 && q->list_next < n && b->len < OUT_PIECE; q->list_next++) {
    size_t i = q->list_next;
    uint32_t num = q->list == LIST_SEARCH ? number_of(s, q->match[i])
                   : s->cmd.uid           ? q->sort.r[i].uid
                                          : q->sort.r[i].index + 1;
    if ((rc = put(b, " ")) == 0)
      rc = mailproto_imap_search_put_num(b, num);
  }
  if (rc == 0 && q->list_next == n) {
    /* RFC 7162 3.1.6, 3.1.9: "(MODSEQ n)" after a non-empty result. */
    uint64_t modseq = result_modseq(s, q);
    if (modseq && (rc = put(b, " (MODSEQ ")) == 0 &&
        (rc = mailproto_imap_search_put_num(b, modseq)) == 0)
      rc = put(b, ")");
    if (rc == 0)
      rc = put(b, "\r\n");
    q->list = LIST_NONE;
  }
  return rc == 0 || rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
}

static int step_output(mailproto_imap *s, imap_search *q) {
  if (q->out_pos == q->out.len && q->list != LIST_NONE) {
    int rc = list_piece(s, q);
    if (rc != 0)
      return rc;
  }
  size_t left = q->out.len - q->out_pos;
  if (left > 0) {
    size_t n = left < OUT_PIECE ? left : OUT_PIECE;
    int rc = mailproto_outq_write(&s->io.out, q->out.data + q->out_pos, n);
    if (rc != 0)
      return rc == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_INTERNAL : rc;
    q->out_pos += n;
    return 0;
  }
  const char *text = s->cmd.id == MAILPROTO_IMAP_CMD_SEARCH ? "SEARCH completed"
                     : s->cmd.id == MAILPROTO_IMAP_CMD_SORT
                         ? "SORT completed"
                         : "THREAD completed";
  if (q->failed) {
    /* RFC 5182 2.1: a SEARCH with SAVE that fails empties "$", whatever
     * the partial result saved. */
    if (s->cmd.id == MAILPROTO_IMAP_CMD_SEARCH &&
        (s->cmd.u.search.return_opts & MAILPROTO_IMAP_RETURN_SAVE))
      mailproto_imap_search_forget(s);
    return mailproto_imap_done(s, "NO", "UNAVAILABLE",
                               "Some messages could not be searched");
  }
  return mailproto_imap_done(s, "OK", NULL, text);
}

int mailproto_imap_search_step(mailproto_imap *s) {
  imap_search *q = s->search;
  if (!q)
    return MAILPROTO_ERR_INTERNAL;
  switch (q->stage) {
  case ST_NEXT:
    return step_next(s, q);
  case ST_PASS_A:
  case ST_PASS_B:
    return read_next(s, q);
  case ST_TREE:
    return mailproto_imap_tree_read(s, IMAP_OP_SEARCH_READ);
  default:
    return step_output(s, q);
  }
}
