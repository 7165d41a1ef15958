/*
 * The streaming MIME structure parser (see mime.h for what it accepts).
 *
 * It works line by line without keeping lines: only the first bytes of a
 * line (its "head", long enough for a field name or a delimiter with its
 * boundary) are looked at, and copied only when a chunk ends inside them.
 * The rest of a line is skipped with memchr, or appended to a kept field
 * value, or (after "--boundary" and white space) checked for more white
 * space. Offsets and line counts are kept as running counters; every part
 * remembers the counters where its header and body began, and a part that
 * ends at a delimiter ends at the line break before it (RFC 2046 5.1.1:
 * that line break belongs to the delimiter).
 */
#include <string.h>

#include "core/alloc.h"
#include "mime/mime.h"
#include "mime/mime_codec.h"
#include "mime/mime_header.h"

struct mailproto_mime_open {
  uint32_t part;
  uint32_t boundary_off; /* in p->boundaries */
  uint32_t boundary_len; /* 0: no boundary */
  int active;            /* the boundary ends lines of this multipart */
  int digest;            /* multipart/digest: children default to message */
  uint64_t hdr_lf, hdr_bare;
  uint64_t body_lf, body_bare;
};

enum { LS_START = 0, LS_HEAD, LS_TAIL };
enum { TAIL_SKIP = 0, TAIL_CAPTURE, TAIL_CANDIDATE };

#define HEAD_CAP (sizeof(((mailproto_mime_parser *)0)->head))

/* Where a part ends: the line break that ends it (its offset, and the LF
 * and bare-LF counters before it), or the end of the message. */
typedef struct mime_end {
  uint64_t off, lf, bare;
} mime_end;

static const char *const field_names[MAILPROTO_MIME_FIELD_COUNT] = {
    "Content-Type",        "Content-Transfer-Encoding",
    "Content-ID",          "Content-Description",
    "Content-Disposition", "Content-Language",
    "Content-Location",    "Content-MD5"};

static const char *const env_names[MAILPROTO_MIME_ENV_COUNT] = {
    "Date", "Subject", "From",        "Sender",     "Reply-To",  "To",
    "Cc",   "Bcc",     "In-Reply-To", "Message-ID", "References"};

const char *mailproto_mime_field_name(mailproto_mime_field f) {
  return (unsigned)f < MAILPROTO_MIME_FIELD_COUNT ? field_names[f] : NULL;
}

const char *mailproto_mime_env_field_name(mailproto_mime_env_field f) {
  return (unsigned)f < MAILPROTO_MIME_ENV_COUNT ? env_names[f] : NULL;
}

void mailproto_mime_limits_default(mailproto_mime_limits *l) {
  l->max_depth = 100;
  l->max_parts = 10000;
  l->max_field = 64u << 10;
  l->max_kept = 1u << 20;
}

static void clamp_limits(mailproto_mime_limits *l) {
  if (l->max_parts < 1)
    l->max_parts = 1;
  if (l->max_parts > 0x0fffffffu)
    l->max_parts = 0x0fffffffu;
  if (l->max_depth > 10000)
    l->max_depth = 10000;
  if (l->max_kept > 0x7fffffffu)
    l->max_kept = 0x7fffffffu;
  if (l->max_field > l->max_kept)
    l->max_field = l->max_kept;
}

void mailproto_mime_tree_init(mailproto_mime_tree *t,
                              const mailproto_allocator *alloc) {
  memset(t, 0, sizeof *t);
  t->alloc = alloc;
}

void mailproto_mime_tree_free(mailproto_mime_tree *t) {
  mailproto_mem_free(t->alloc, t->parts);
  mailproto_mem_free(t->alloc, t->envelopes);
  mailproto_mem_free(t->alloc, t->pool);
  mailproto_mime_tree_init(t, t->alloc);
}

size_t mailproto_mime_tree_memory(const mailproto_mime_tree *t) {
  return (size_t)t->part_count * sizeof(mailproto_mime_part) +
         (size_t)t->envelope_count * sizeof(mailproto_mime_envelope) +
         t->pool_len;
}

uint32_t mailproto_mime_child(const mailproto_mime_tree *t, uint32_t i,
                              uint32_t n) {
  if (i >= t->part_count || n >= t->parts[i].child_count)
    return MAILPROTO_MIME_NONE;
  uint32_t c = i + 1;
  while (n-- > 0)
    c += t->parts[c].subtree;
  return c;
}

const mailproto_mime_envelope *
mailproto_mime_envelope_of(const mailproto_mime_tree *t, uint32_t i) {
  if (i >= t->part_count)
    return NULL;
  const mailproto_mime_part *pt = &t->parts[i];
  if (!(pt->flags & MAILPROTO_MIME_PART_ENVELOPE) &&
      (pt->flags & MAILPROTO_MIME_PART_MESSAGE) && pt->child_count == 1)
    pt = &t->parts[i + 1];
  if (!(pt->flags & MAILPROTO_MIME_PART_ENVELOPE) ||
      pt->envelope >= t->envelope_count)
    return NULL;
  return &t->envelopes[pt->envelope];
}

/* ------------------------------------------------------------------ */
/* Building                                                            */
/* ------------------------------------------------------------------ */

static void reset_position(mailproto_mime_parser *p) {
  p->offset = p->lf_total = p->bare_total = 0;
  p->prev_cr = 0;
  p->nl_off = p->nl_lf = p->nl_bare = 0;
  p->depth = 0;
  p->active = 0;
  p->in_header = 0;
  p->frozen = 0;
  p->line_state = LS_START;
  p->head_len = 0;
  p->tail = TAIL_SKIP;
  p->capture = NULL;
  mailproto_buf_clear(&p->boundaries);
}

void mailproto_mime_parser_init(mailproto_mime_parser *p,
                                const mailproto_allocator *alloc,
                                const mailproto_mime_limits *limits) {
  memset(p, 0, sizeof *p);
  p->alloc = alloc;
  if (limits)
    p->limits = *limits;
  else
    mailproto_mime_limits_default(&p->limits);
  clamp_limits(&p->limits);
  mailproto_buf_init(&p->pool, alloc, p->limits.max_kept);
  /* boundaries of every open multipart, at most max_depth of them */
  mailproto_buf_init(&p->boundaries, alloc, (size_t)-1);
  reset_position(p);
}

void mailproto_mime_parser_free(mailproto_mime_parser *p) {
  mailproto_mem_free(p->alloc, p->parts);
  mailproto_mem_free(p->alloc, p->envelopes);
  mailproto_mem_free(p->alloc, p->stack);
  mailproto_buf_free(&p->pool);
  mailproto_buf_free(&p->boundaries);
  p->parts = NULL;
  p->envelopes = NULL;
  p->stack = NULL;
  p->part_count = p->part_cap = p->envelope_count = p->envelope_cap = 0;
  p->stack_cap = 0;
}

static int fail(mailproto_mime_parser *p) {
  p->status = MAILPROTO_ERR_NOMEM;
  return p->status;
}

static void ref_none(mailproto_mime_ref *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    r[i].off = MAILPROTO_MIME_NONE;
    r[i].len = 0;
  }
}

/* Grows an array geometrically so that it can hold `need` elements. */
static int grow(mailproto_mime_parser *p, void **arr, uint32_t *cap,
                uint32_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  uint32_t n = *cap ? *cap : 4;
  while (n < need)
    n = n > 0x7fffffffu ? need : n * 2;
  void *grown = mailproto_mem_reallocarray(p->alloc, *arr, n, elem);
  if (!grown)
    return fail(p);
  *arr = grown;
  *cap = n;
  return 0;
}

static int new_envelope(mailproto_mime_parser *p, uint32_t *index) {
  if (grow(p, (void **)&p->envelopes, &p->envelope_cap, p->envelope_count + 1,
           sizeof *p->envelopes))
    return p->status;
  ref_none(p->envelopes[p->envelope_count].fields, MAILPROTO_MIME_ENV_COUNT);
  *index = p->envelope_count++;
  return 0;
}

/* Opens a new part whose header begins at the current offset and pushes
 * it, in header mode. Returns 0, 1 if max_parts is reached (nothing
 * opened; the parser freezes) or NOMEM. */
static int open_part(mailproto_mime_parser *p, uint32_t parent,
                     uint32_t flags) {
  if (p->part_count >= p->limits.max_parts) {
    p->frozen = 1;
    return 1;
  }
  if (grow(p, (void **)&p->parts, &p->part_cap, p->part_count + 1,
           sizeof *p->parts) ||
      grow(p, (void **)&p->stack, &p->stack_cap, p->depth + 1,
           sizeof *p->stack))
    return p->status;
  uint32_t env = MAILPROTO_MIME_NONE;
  if ((flags & MAILPROTO_MIME_PART_ENVELOPE) && new_envelope(p, &env))
    return p->status;
  uint32_t index = p->part_count++;
  mailproto_mime_part *pt = &p->parts[index];
  memset(pt, 0, sizeof *pt);
  pt->header_offset = p->offset;
  pt->body_offset = p->offset;
  pt->parent = parent;
  pt->flags = flags;
  pt->envelope = env;
  pt->depth = parent == MAILPROTO_MIME_NONE ? 0 : p->parts[parent].depth + 1;
  ref_none(pt->fields, MAILPROTO_MIME_FIELD_COUNT);
  if (parent != MAILPROTO_MIME_NONE)
    p->parts[parent].child_count++;
  mailproto_mime_open *o = &p->stack[p->depth++];
  memset(o, 0, sizeof *o);
  o->part = index;
  o->hdr_lf = p->lf_total;
  o->hdr_bare = p->bare_total;
  p->in_header = 1;
  return 0;
}

static int ensure_root(mailproto_mime_parser *p) {
  if (p->part_count > 0 || p->status)
    return p->status;
  int rc = open_part(p, MAILPROTO_MIME_NONE, MAILPROTO_MIME_PART_ENVELOPE);
  return rc < 0 ? rc : 0;
}

/* ------------------------------------------------------------------ */
/* Kept field values                                                   */
/* ------------------------------------------------------------------ */

static void end_capture(mailproto_mime_parser *p) {
  mailproto_mime_ref *r = p->capture;
  if (!r)
    return;
  while (r->len > 0 && (p->pool.data[r->off + r->len - 1] == ' ' ||
                        p->pool.data[r->off + r->len - 1] == '\t'))
    r->len--;
  p->pool.len = (size_t)r->off + r->len;
  p->capture = NULL;
}

/* Appends value bytes: CR and LF dropped (unfolding), NUL made a space,
 * leading white space skipped, cut at max_field / max_kept. */
static void capture_bytes(mailproto_mime_parser *p, const uint8_t *s,
                          size_t n) {
  mailproto_mime_ref *r = p->capture;
  if (!r || p->capture_full || p->status)
    return;
  size_t i = 0;
  while (i < n) {
    if (p->capture_lead) {
      while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' ||
                       s[i] == '\n' || s[i] == '\0'))
        i++;
      if (i == n)
        return;
      p->capture_lead = 0;
    }
    size_t j = i;
    while (j < n && s[j] != '\r' && s[j] != '\n' && s[j] != '\0')
      j++;
    size_t take = j - i;
    size_t room = p->limits.max_field - r->len;
    if (take > room)
      take = room;
    if (take > mailproto_buf_room(&p->pool))
      take = mailproto_buf_room(&p->pool);
    if (take > 0) {
      if (mailproto_buf_append(&p->pool, s + i, take) != 0) {
        fail(p);
        return;
      }
      r->len += (uint32_t)take;
    }
    if (take < j - i) {
      p->capture_full = 1;
      return;
    }
    i = j;
    if (i < n) {
      if (s[i] == '\0') {
        if (r->len >= p->limits.max_field ||
            mailproto_buf_append_byte(&p->pool, ' ') != 0) {
          p->capture_full = 1;
          return;
        }
        r->len++;
      }
      i++;
    }
  }
}

/* Starts keeping the value of the field named [name, name + len) of the
 * innermost part if it is one we keep and not kept yet. */
static void begin_capture(mailproto_mime_parser *p, const uint8_t *name,
                          size_t len) {
  mailproto_mime_part *pt = &p->parts[p->stack[p->depth - 1].part];
  mailproto_mime_ref *r = NULL;
  if (len >= 2 && (name[0] | 0x20) == 'c' && (name[1] | 0x20) == 'o') {
    for (int i = 0; i < MAILPROTO_MIME_FIELD_COUNT && !r; i++)
      if (mailproto_mime_span_is(name, len, field_names[i]))
        r = &pt->fields[i];
  }
  if (!r && (pt->flags & MAILPROTO_MIME_PART_ENVELOPE)) {
    for (int i = 0; i < MAILPROTO_MIME_ENV_COUNT && !r; i++)
      if (mailproto_mime_span_is(name, len, env_names[i]))
        r = &p->envelopes[pt->envelope].fields[i];
  }
  if (!r || r->off != MAILPROTO_MIME_NONE)
    return;
  r->off = (uint32_t)p->pool.len;
  r->len = 0;
  p->capture = r;
  p->capture_lead = 1;
  p->capture_full = 0;
}

/* ------------------------------------------------------------------ */
/* Part ends and boundaries                                            */
/* ------------------------------------------------------------------ */

/* Closes the innermost open part at `end` and pops it. A part cannot end
 * before its header (or its blank line) does: the line break before a
 * delimiter may be the one ending the header. Then it ends there, and
 * *end moves up to that point so its parents end no earlier. */
static void close_top(mailproto_mime_parser *p, mime_end *end) {
  mailproto_mime_open *o = &p->stack[p->depth - 1];
  mailproto_mime_part *pt = &p->parts[o->part];
  if (p->in_header) {
    end_capture(p);
    if (end->off < pt->header_offset) {
      end->off = pt->header_offset;
      end->lf = o->hdr_lf;
      end->bare = o->hdr_bare;
    }
    pt->header_size = end->off - pt->header_offset;
    pt->header_vsize = pt->header_size + (end->bare - o->hdr_bare);
    pt->body_offset = end->off;
    pt->body_size = pt->body_vsize = pt->lines = 0;
  } else {
    if (end->off < pt->body_offset) {
      end->off = pt->body_offset;
      end->lf = o->body_lf;
      end->bare = o->body_bare;
    }
    pt->body_size = end->off - pt->body_offset;
    pt->body_vsize = pt->body_size + (end->bare - o->body_bare);
    pt->lines = end->lf - o->body_lf;
  }
  pt->subtree = p->part_count - o->part;
  if (o->active) {
    o->active = 0;
    p->active--;
  }
  if (o->boundary_len)
    p->boundaries.len = o->boundary_off;
  p->depth--;
  p->in_header = 0;
}

/* A delimiter (or close delimiter) of the multipart at stack `level`
 * ended at the current offset; the line before it ended at line_nl_*. */
static void boundary_seen(mailproto_mime_parser *p, unsigned level, int close) {
  mime_end end = {p->line_nl_off, p->line_nl_lf, p->line_nl_bare};
  end_capture(p);
  while (p->depth - 1 > level)
    close_top(p, &end);
  mailproto_mime_open *o = &p->stack[level];
  p->in_header = 0;
  if (close) {
    o->active = 0; /* the rest is the epilogue (RFC 2046 5.1.1) */
    p->active--;
    return;
  }
  uint32_t flags = o->digest ? MAILPROTO_MIME_PART_DIGEST_CHILD : 0;
  open_part(p, o->part, flags);
}

/* Tries the active boundaries on a line head beginning with "--",
 * innermost first. `complete`: the head is the whole line (it ends with
 * LF, or the message ends). Returns 1 (delimiter or close), 2 (the
 * delimiter so far, white space may follow: a candidate) or 0. */
static int match_boundary(mailproto_mime_parser *p, const uint8_t *h, size_t hl,
                          int complete, unsigned *level, int *close) {
  for (unsigned s = p->depth; s-- > 0;) {
    mailproto_mime_open *o = &p->stack[s];
    if (!o->active)
      continue;
    size_t bl = o->boundary_len;
    if (hl < 2 + bl || memcmp(h + 2, p->boundaries.data + o->boundary_off, bl))
      continue;
    const uint8_t *r = h + 2 + bl;
    size_t rl = hl - 2 - bl;
    if (rl >= 2 && r[0] == '-' && r[1] == '-') {
      *level = s;
      *close = 1;
      return 1;
    }
    size_t k = 0;
    while (k < rl && (r[k] == ' ' || r[k] == '\t' || r[k] == '\r'))
      k++;
    if (k < rl && !(r[k] == '\n' && k + 1 == rl))
      continue;
    *level = s;
    *close = 0;
    return complete ? 1 : 2;
  }
  return 0;
}

/* A kept value while parsing (NULL if absent). */
static const uint8_t *pool_value(const mailproto_mime_parser *p,
                                 mailproto_mime_ref r) {
  if (r.off == MAILPROTO_MIME_NONE)
    return NULL;
  return p->pool.data ? p->pool.data + r.off : (const uint8_t *)"";
}

/* The blank line ending the innermost part's header was consumed: the
 * body begins here; its media type decides what the body holds. */
static void header_done(mailproto_mime_parser *p) {
  end_capture(p);
  mailproto_mime_open *o = &p->stack[p->depth - 1];
  uint32_t index = o->part;
  mailproto_mime_part *pt = &p->parts[index];
  pt->header_size = p->offset - pt->header_offset;
  pt->header_vsize = pt->header_size + (p->bare_total - o->hdr_bare);
  pt->body_offset = p->offset;
  pt->flags |= MAILPROTO_MIME_PART_BLANK_LINE;
  o->body_lf = p->lf_total;
  o->body_bare = p->bare_total;
  p->in_header = 0;

  mailproto_mime_ref ct = pt->fields[MAILPROTO_MIME_CONTENT_TYPE];
  mailproto_mime_ref cte = pt->fields[MAILPROTO_MIME_CONTENT_TRANSFER_ENCODING];
  const uint8_t *ctv = pool_value(p, ct);
  const uint8_t *ctev = pool_value(p, cte);
  mailproto_mime_ctype type;
  int valid = ctv && mailproto_mime_ctype_parse(ctv, ct.len, &type);
  int can_nest = pt->depth < p->limits.max_depth && !p->frozen;
  int message = 0;
  if (!valid) {
    /* RFC 2045 5.2 and RFC 2046 5.1.5: the default type */
    if (pt->flags & MAILPROTO_MIME_PART_DIGEST_CHILD)
      message = 1;
    else
      pt->flags |= MAILPROTO_MIME_PART_TEXT;
  } else if (mailproto_mime_span_is(type.type.data, type.type.len,
                                    "multipart")) {
    pt->flags |= MAILPROTO_MIME_PART_MULTIPART;
    uint8_t b[MAILPROTO_MIME_MAX_BOUNDARY];
    long bl = mailproto_mime_param_get(ctv, ct.len, type.params, "boundary", b,
                                       sizeof b);
    if (can_nest && bl > 0) {
      o->boundary_off = (uint32_t)p->boundaries.len;
      if (mailproto_buf_append(&p->boundaries, b, (size_t)bl) != 0) {
        fail(p);
        return;
      }
      o->boundary_len = (uint32_t)bl;
      o->active = 1;
      o->digest =
          mailproto_mime_span_is(type.subtype.data, type.subtype.len, "digest");
      p->active++;
    }
  } else if (mailproto_mime_span_is(type.type.data, type.type.len, "message")) {
    if (mailproto_mime_span_is(type.subtype.data, type.subtype.len, "rfc822"))
      message = 1;
    else if (mailproto_mime_span_is(type.subtype.data, type.subtype.len,
                                    "global"))
      message = 2;
  } else if (mailproto_mime_span_is(type.type.data, type.type.len, "text")) {
    pt->flags |= MAILPROTO_MIME_PART_TEXT;
  }
  if (!message)
    return;
  pt->flags |= MAILPROTO_MIME_PART_MESSAGE_TYPE;
  if (message == 2)
    pt->flags |= MAILPROTO_MIME_PART_GLOBAL;
  /* RFC 2046 5.2.1: only an identity encoding can be read as a message
   * here; an encoded one (allowed for message/global) stays opaque. */
  if (!can_nest ||
      mailproto_mime_cte_of(ctev, cte.len) != MAILPROTO_MIME_CTE_IDENTITY)
    return;
  if (open_part(p, index, MAILPROTO_MIME_PART_ENVELOPE) == 0)
    p->parts[index].flags |= MAILPROTO_MIME_PART_MESSAGE;
}

/* ------------------------------------------------------------------ */
/* Lines                                                               */
/* ------------------------------------------------------------------ */

/* CRs in [s, s + n), found with memchr. */
static uint64_t count_cr(const uint8_t *s, size_t n) {
  uint64_t k = 0;
  const uint8_t *end = s + n;
  while (s < end && (s = memchr(s, '\r', (size_t)(end - s))) != NULL) {
    k++;
    s++;
  }
  return k;
}

/* Accounts for n consumed bytes that contain no LF except maybe the last
 * one. The line-end rule is the store's (store_util.h, RFC822.SIZE): a
 * bare LF and a bare CR each end a line and go out as CRLF, so each
 * counts one extra octet and one line. The CRs before the line end are
 * bare (one memchr over the line, which finds none in CRLF text); a CR
 * that ends a chunk counts as bare until an LF begins the next one (so
 * a message ending in CR counts it as bare, like the store). */
static void consume(mailproto_mime_parser *p, const uint8_t *s, size_t n) {
  if (n == 0)
    return;
  int lf = s[n - 1] == '\n';
  int cr = lf && (n >= 2 ? s[n - 2] == '\r' : p->prev_cr);
  size_t scan = !lf ? n : cr && n >= 2 ? n - 2 : n - 1;
  uint64_t bare = count_cr(s, scan);
  p->bare_total += bare;
  p->lf_total += bare;
  if (lf) {
    if (cr && n == 1) {
      /* the CR ending the last chunk was half of this CRLF */
      p->bare_total--;
      p->lf_total--;
    }
    uint64_t at = p->offset + n - 1;
    p->nl_off = cr ? at - 1 : at;
    p->nl_lf = p->lf_total;
    p->nl_bare = p->bare_total;
    p->lf_total++;
    if (!cr)
      p->bare_total++;
  }
  p->prev_cr = s[n - 1] == '\r';
  p->offset += n;
}

/* Decides what a line is from its head: [h, h + hl) with `ended` when the
 * head holds the whole line with its LF, `eof` when the message ended in
 * it. Sets p->tail for the rest of the line. */
static void classify(mailproto_mime_parser *p, const uint8_t *h, size_t hl,
                     int ended, int eof) {
  p->tail = TAIL_SKIP;
  if (p->active && !p->frozen && hl >= 2 && h[0] == '-' && h[1] == '-') {
    unsigned level;
    int close;
    int m = match_boundary(p, h, hl, ended || eof, &level, &close);
    if (m == 1) {
      boundary_seen(p, level, close);
      return;
    }
    if (m == 2) {
      end_capture(p);
      p->tail = TAIL_CANDIDATE;
      p->cand_level = level;
      return;
    }
  }
  if (!p->in_header)
    return;
  size_t content = hl;
  if (ended) {
    content--;
    if (content > 0 && h[content - 1] == '\r')
      content--;
  }
  if (ended && content == 0) {
    header_done(p);
    return;
  }
  if (h[0] == ' ' || h[0] == '\t') {
    if (p->capture) {
      capture_bytes(p, h, hl);
      p->tail = TAIL_CAPTURE;
    }
    return;
  }
  end_capture(p);
  const uint8_t *colon = memchr(h, ':', hl);
  if (!colon)
    return; /* not a field (or a name too long to be one we keep) */
  size_t n = (size_t)(colon - h);
  while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
    n--;
  begin_capture(p, h, n);
  if (p->capture) {
    size_t after = (size_t)(colon - h) + 1;
    capture_bytes(p, h + after, hl - after);
    p->tail = TAIL_CAPTURE;
  }
}

/* The rest of a line (no LF in it). */
static void tail_bytes(mailproto_mime_parser *p, const uint8_t *s, size_t n) {
  if (p->tail == TAIL_CAPTURE) {
    capture_bytes(p, s, n);
  } else if (p->tail == TAIL_CANDIDATE) {
    for (size_t i = 0; i < n; i++)
      if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') {
        p->tail = TAIL_SKIP; /* "--boundary x": not a delimiter */
        break;
      }
  }
}

/* Skips body lines while nothing can end them: counts LFs only. */
static size_t skip_body(mailproto_mime_parser *p, const uint8_t *d,
                        size_t len) {
  const uint8_t *q = d, *end = d + len;
  const uint8_t *lf;
  while (q < end && (lf = memchr(q, '\n', (size_t)(end - q))) != NULL) {
    consume(p, q, (size_t)(lf - q) + 1);
    q = lf + 1;
  }
  consume(p, q, (size_t)(end - q));
  p->line_state = len > 0 && d[len - 1] == '\n' ? LS_START : LS_TAIL;
  p->tail = TAIL_SKIP;
  return len;
}

int mailproto_mime_parser_feed(mailproto_mime_parser *p, const void *data,
                               size_t len) {
  if (p->status || ensure_root(p))
    return p->status;
  const uint8_t *d = data;
  size_t pos = 0;
  while (pos < len && !p->status) {
    if (p->line_state == LS_START) {
      p->line_nl_off = p->nl_off;
      p->line_nl_lf = p->nl_lf;
      p->line_nl_bare = p->nl_bare;
      if (p->in_header || (p->active && !p->frozen && d[pos] == '-')) {
        p->line_state = LS_HEAD;
        p->head_len = 0;
      } else if (!p->active || p->frozen) {
        pos += skip_body(p, d + pos, len - pos);
        continue;
      } else {
        p->line_state = LS_TAIL;
        p->tail = TAIL_SKIP;
      }
    }
    if (p->line_state == LS_HEAD) {
      size_t want = HEAD_CAP - p->head_len;
      size_t n = len - pos < want ? len - pos : want;
      const uint8_t *lf = memchr(d + pos, '\n', n);
      if (lf)
        n = (size_t)(lf - (d + pos)) + 1;
      const uint8_t *h;
      size_t hl;
      if (p->head_len == 0 && (lf || n == want)) {
        h = d + pos; /* the whole head is in this chunk */
        hl = n;
      } else {
        memcpy(p->head + p->head_len, d + pos, n);
        p->head_len += n;
        h = p->head;
        hl = p->head_len;
      }
      consume(p, d + pos, n);
      pos += n;
      if (lf || hl == HEAD_CAP) {
        p->head_len = 0;
        p->line_state = lf ? LS_START : LS_TAIL;
        classify(p, h, hl, lf != NULL, 0);
      }
      continue;
    }
    /* LS_TAIL */
    size_t avail = len - pos;
    const uint8_t *lf = memchr(d + pos, '\n', avail);
    size_t n = lf ? (size_t)(lf - (d + pos)) + 1 : avail;
    tail_bytes(p, d + pos, lf ? n - 1 : n);
    consume(p, d + pos, n);
    pos += n;
    if (lf) {
      if (p->tail == TAIL_CANDIDATE)
        boundary_seen(p, p->cand_level, 0);
      p->tail = TAIL_SKIP;
      p->line_state = LS_START;
    }
  }
  return p->status;
}

int mailproto_mime_parser_header_done(const mailproto_mime_parser *p) {
  return !p->status && p->part_count > 0 &&
         (p->parts[0].flags & MAILPROTO_MIME_PART_BLANK_LINE) != 0;
}

static void reset_result(mailproto_mime_parser *p) {
  p->parts = NULL;
  p->envelopes = NULL;
  p->part_count = p->part_cap = p->envelope_count = p->envelope_cap = 0;
  mailproto_buf_clear(&p->pool);
  reset_position(p);
}

int mailproto_mime_parser_finish(mailproto_mime_parser *p,
                                 mailproto_mime_tree *out) {
  mailproto_mime_tree_free(out);
  out->alloc = p->alloc;
  if (!p->status && !ensure_root(p)) {
    /* the last line had no line end */
    if (p->line_state == LS_HEAD && p->head_len > 0) {
      p->line_state = LS_TAIL;
      classify(p, p->head, p->head_len, 0, 1);
    }
    if (p->line_state == LS_TAIL && p->tail == TAIL_CANDIDATE)
      boundary_seen(p, p->cand_level, 0);
    end_capture(p);
  }
  if (p->status) {
    int rc = p->status;
    mailproto_mem_free(p->alloc, p->parts);
    mailproto_mem_free(p->alloc, p->envelopes);
    reset_result(p);
    p->status = 0;
    return rc;
  }
  mime_end end = {p->offset, p->lf_total, p->bare_total};
  while (p->depth > 0)
    close_top(p, &end);
  out->size = p->offset;
  out->vsize = p->offset + p->bare_total;
  out->parts = p->parts;
  out->part_count = p->part_count;
  out->envelopes = p->envelopes;
  out->envelope_count = p->envelope_count;
  out->pool_len = p->pool.len;
  if (p->pool.len > 0) {
    out->pool = p->pool.data; /* the buffer moves to the tree */
    p->pool.data = NULL;
    p->pool.cap = 0;
  }
  reset_result(p);
  return 0;
}

int mailproto_mime_parse(const mailproto_allocator *alloc,
                         const mailproto_mime_limits *limits, const void *data,
                         size_t len, mailproto_mime_tree *out) {
  mailproto_mime_parser p;
  mailproto_mime_parser_init(&p, alloc, limits);
  int rc = mailproto_mime_parser_feed(&p, data, len);
  int frc = mailproto_mime_parser_finish(&p, out);
  mailproto_mime_parser_free(&p);
  return rc ? rc : frc;
}
