/*
 * SORT (RFC 5256 3): base-subject extraction (2.1), the per-message sort
 * record, and the ordering. Strings compare with i;ascii-casemap (RFC
 * 5256 3: the default collation), stored uppercased and cut at
 * IMAP_SORT_STRING_MAX octets; ties fall back to the sequence number.
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_search.h"
#include "mime/mime_header.h"

/* ------------------------------------------------------------------ */
/* Base subject (RFC 5256 2.1)                                         */
/* ------------------------------------------------------------------ */

static int lower(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* [p, e) begins with the lowercase ASCII `w`, ignoring case. */
static int starts(const uint8_t *p, const uint8_t *e, const char *w) {
  size_t n = strlen(w);
  if ((size_t)(e - p) < n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower(p[i]) != (uint8_t)w[i])
      return 0;
  return 1;
}

/* subj-blob = "[" *BLOBCHAR "]" *WSP: returns the end, or NULL. */
static const uint8_t *blob(const uint8_t *p, const uint8_t *e) {
  if (p >= e || *p != '[')
    return NULL;
  for (p++; p < e && *p != ']'; p++)
    if (*p == '[')
      return NULL;
  if (p >= e)
    return NULL;
  for (p++; p < e && *p == ' '; p++)
    ;
  return p;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static const uint8_t *refwd(const uint8_t *p, const uint8_t *e) {
  if (starts(p, e, "re"))
    p += 2;
  else if (starts(p, e, "fwd"))
    p += 3;
  else if (starts(p, e, "fw"))
    p += 2;
  else
    return NULL;
  while (p < e && *p == ' ')
    p++;
  const uint8_t *b = blob(p, e);
  if (b)
    p = b;
  return p < e && *p == ':' ? p + 1 : NULL;
}

/* subj-leader = (*subj-blob subj-refwd) / WSP */
static const uint8_t *leader(const uint8_t *p, const uint8_t *e, int *reply) {
  if (p < e && *p == ' ')
    return p + 1;
  const uint8_t *q = p, *b;
  while ((b = blob(q, e)) != NULL)
    q = b;
  const uint8_t *r = refwd(q, e);
  if (r)
    *reply = 1;
  return r;
}

int mailproto_imap_base_subject(const uint8_t *subject, size_t len,
                                mailproto_buf *out, int *is_reply) {
  mailproto_buf dec;
  mailproto_buf_init(&dec, out->alloc, out->max);
  *is_reply = 0;
  /* (1) decode, white space runs to one space. */
  int rc = mailproto_mime_decode_words(subject, len, &dec);
  if (rc != 0) {
    mailproto_buf_free(&dec);
    return rc;
  }
  size_t w = 0;
  for (size_t i = 0; i < dec.len; i++) {
    uint8_t c = dec.data[i];
    if (c == '\t' || c == '\r' || c == '\n')
      c = ' ';
    if (c == ' ' && w > 0 && dec.data[w - 1] == ' ')
      continue;
    dec.data[w++] = c;
  }
  const uint8_t *p = dec.data ? dec.data : (const uint8_t *)"";
  const uint8_t *e = p + w;
  for (;;) {
    /* (2) trailers: "(fwd)" and white space. */
    for (;;) {
      if (e > p && e[-1] == ' ')
        e--;
      else if (e - p >= 5 && starts(e - 5, e, "(fwd)")) {
        e -= 5;
        *is_reply = 1;
      } else
        break;
    }
    /* (3) leaders, (4) a leading blob that does not leave nothing;
     * (5) until neither applies. */
    int changed;
    do {
      changed = 0;
      const uint8_t *n;
      while ((n = leader(p, e, is_reply)) != NULL)
        p = n;
      const uint8_t *b = blob(p, e);
      if (b && b < e) {
        p = b;
        changed = 1;
      }
    } while (changed);
    /* (6) "[fwd: ... ]" */
    if (e - p >= 6 && starts(p, e, "[fwd:") && e[-1] == ']') {
      p += 5;
      e--;
      *is_reply = 1;
      continue;
    }
    break;
  }
  rc = 0;
  for (const uint8_t *c = p; rc == 0 && c < e; c++) {
    uint8_t u = *c >= 'a' && *c <= 'z' ? (uint8_t)(*c - 32) : *c;
    rc = mailproto_buf_append_byte(out, u);
  }
  mailproto_buf_free(&dec);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Records                                                             */
/* ------------------------------------------------------------------ */

static int arena_put(imap_sort_set *set, const uint8_t *d, size_t n,
                     uint32_t *off, uint16_t *len) {
  if (n > IMAP_SORT_STRING_MAX)
    n = IMAP_SORT_STRING_MAX;
  if (set->arena.len > UINT32_MAX - n)
    return MAILPROTO_ERR_NOMEM;
  *off = (uint32_t)set->arena.len;
  *len = (uint16_t)n;
  int rc = n ? mailproto_buf_append(&set->arena, d, n) : 0;
  return rc == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_NOMEM : rc;
}

/* The addr-mailbox of the first address (RFC 5256 3), uppercased. */
static int first_mailbox(imap_sort_set *set, const mailproto_buf *v,
                         uint32_t *off, uint16_t *len) {
  mailproto_buf scratch;
  mailproto_buf_init(&scratch, set->arena.alloc, IMAP_FIELD_MAX);
  mailproto_mime_addr_iter it;
  mailproto_mime_address a;
  uint8_t tmp[IMAP_SORT_STRING_MAX];
  size_t n = 0;
  int rc;
  mailproto_mime_addr_init(&it, v->data ? v->data : (const uint8_t *)"", v->len,
                           &scratch);
  while ((rc = mailproto_mime_addr_next(&it, &a)) == 1)
    if (a.kind == MAILPROTO_MIME_ADDR_MAILBOX) {
      n = a.mailbox.len < sizeof tmp ? a.mailbox.len : sizeof tmp;
      for (size_t i = 0; i < n; i++) {
        uint8_t c = a.mailbox.data[i];
        tmp[i] = c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
      }
      break;
    }
  mailproto_buf_free(&scratch);
  if (rc == MAILPROTO_ERR_NOMEM)
    return rc;
  return arena_put(set, tmp, n, off, len);
}

/* Appends every "<...>" msg-id of a value (NUL after each); keeps at most
 * `max`, the last ones. Returns how many, or NOMEM. */
static long put_ids(imap_sort_set *set, const mailproto_buf *v, unsigned max,
                    int first_only) {
  if (!v->data || v->len == 0)
    return 0;
  const uint8_t *d = v->data, *e = d + v->len;
  long count = 0;
  size_t starts_at[IMAP_THREAD_REFS_MAX + 1];
  size_t base = set->arena.len;
  while (d < e) {
    const uint8_t *lt = memchr(d, '<', (size_t)(e - d));
    if (!lt)
      break;
    const uint8_t *gt = memchr(lt, '>', (size_t)(e - lt));
    if (!gt)
      break;
    size_t n = (size_t)(gt - lt) + 1;
    d = gt + 1;
    if (n > IMAP_THREAD_ID_MAX || memchr(lt + 1, '<', n - 1))
      continue;
    if ((unsigned long)count == max) {
      /* Drop the oldest: the parent is the last reference. */
      size_t drop = starts_at[1] - starts_at[0];
      memmove(set->arena.data + base, set->arena.data + base + drop,
              set->arena.len - base - drop);
      set->arena.len -= drop;
      for (unsigned i = 0; i + 1 < max; i++)
        starts_at[i] = starts_at[i + 1] - drop;
      count--;
    }
    starts_at[count] = set->arena.len;
    int rc = mailproto_buf_append(&set->arena, lt, n);
    if (rc == 0)
      rc = mailproto_buf_append_byte(&set->arena, 0);
    if (rc != 0)
      return MAILPROTO_ERR_NOMEM;
    count++;
    starts_at[count] = set->arena.len;
    if (first_only)
      break;
  }
  return count;
}

static int put_thread_ids(imap_sort_set *set, imap_sort_rec *r,
                          const imap_search_fields *f) {
  size_t start = set->arena.len;
  if (start > UINT32_MAX - 2 * IMAP_FIELD_MAX)
    return MAILPROTO_ERR_NOMEM;
  r->ids = (uint32_t)start;
  /* The message's own id ("" when it has none). */
  long n = put_ids(set, &f->message_id, 1, 1);
  if (n < 0)
    return (int)n;
  if (n == 0 && mailproto_buf_append_byte(&set->arena, 0) != 0)
    return MAILPROTO_ERR_NOMEM;
  /* RFC 5256 3 (1): References, else the first id of In-Reply-To. */
  long refs = put_ids(set, &f->references, IMAP_THREAD_REFS_MAX, 0);
  if (refs == 0)
    refs = put_ids(set, &f->in_reply_to, 1, 1);
  if (refs < 0)
    return (int)refs;
  r->ids_count = (uint16_t)(1 + refs);
  r->ids_len = (uint16_t)(set->arena.len - start);
  return 0;
}

int mailproto_imap_sort_add(imap_sort_set *set, const imap_search_msg *m,
                            const imap_search_fields *f, unsigned want) {
  const mailproto_allocator *a = set->arena.alloc;
  if (set->n == set->cap) {
    size_t cap = set->cap ? 2 * set->cap : 64;
    imap_sort_rec *r = mailproto_mem_reallocarray(a, set->r, cap, sizeof *r);
    if (!r)
      return MAILPROTO_ERR_NOMEM;
    set->r = r;
    set->cap = cap;
  }
  imap_sort_rec *r = &set->r[set->n];
  memset(r, 0, sizeof *r);
  r->index = m->index;
  r->uid = m->uid;
  r->size = m->have_meta ? m->size : 0;
  r->arrival = m->have_meta ? m->date.utc : 0;
  /* RFC 5256 2.2: no usable Date header: the internal date. */
  r->sent = f->have_date ? f->date.utc : r->arrival;
  int rc = 0;
  if (want & IMAP_WANT_SUBJECT) {
    mailproto_buf b;
    int reply = 0;
    mailproto_buf_init(&b, a, 4 * IMAP_FIELD_MAX);
    rc = mailproto_imap_base_subject(f->subject.data, f->subject.len, &b,
                                     &reply);
    if (rc == MAILPROTO_ERR_BUFFER_FULL)
      rc = 0;
    if (rc == 0)
      rc = arena_put(set, b.data, b.len, &r->str[IMAP_SORT_S_SUBJECT],
                     &r->len[IMAP_SORT_S_SUBJECT]);
    r->is_reply = (uint8_t)reply;
    mailproto_buf_free(&b);
  }
  if (rc == 0 && (want & IMAP_WANT_FROM))
    rc = first_mailbox(set, &f->from, &r->str[IMAP_SORT_S_FROM],
                       &r->len[IMAP_SORT_S_FROM]);
  if (rc == 0 && (want & IMAP_WANT_TO))
    rc = first_mailbox(set, &f->to, &r->str[IMAP_SORT_S_TO],
                       &r->len[IMAP_SORT_S_TO]);
  if (rc == 0 && (want & IMAP_WANT_CC))
    rc = first_mailbox(set, &f->cc, &r->str[IMAP_SORT_S_CC],
                       &r->len[IMAP_SORT_S_CC]);
  if (rc == 0 && (want & IMAP_WANT_IDS))
    rc = put_thread_ids(set, r, f);
  if (rc != 0)
    return rc;
  set->n++;
  return 0;
}

void mailproto_imap_sort_free(imap_sort_set *set,
                              const mailproto_allocator *alloc) {
  mailproto_mem_free(alloc, set->r);
  mailproto_buf_free(&set->arena);
  memset(set, 0, sizeof *set);
}

/* ------------------------------------------------------------------ */
/* Ordering                                                            */
/* ------------------------------------------------------------------ */

static int cmp_str(const imap_sort_set *set, const imap_sort_rec *a,
                   const imap_sort_rec *b, int k) {
  size_t la = a->len[k], lb = b->len[k];
  int c = memcmp(imap_sort_at(set, a->str[k]), imap_sort_at(set, b->str[k]),
                 la < lb ? la : lb);
  if (c == 0)
    c = (la > lb) - (la < lb);
  return c;
}

#define CMP(x, y) (((x) > (y)) - ((x) < (y)))

static int compare(const imap_sort_set *set,
                   const mailproto_imap_sort_criterion *c, unsigned n,
                   const imap_sort_rec *a, const imap_sort_rec *b) {
  for (unsigned i = 0; i < n; i++) {
    int r;
    switch (c[i].key) {
    case MAILPROTO_IMAP_SORT_ARRIVAL:
      r = CMP(a->arrival, b->arrival);
      break;
    case MAILPROTO_IMAP_SORT_CC:
      r = cmp_str(set, a, b, IMAP_SORT_S_CC);
      break;
    case MAILPROTO_IMAP_SORT_DATE:
      r = CMP(a->sent, b->sent);
      break;
    case MAILPROTO_IMAP_SORT_FROM:
      r = cmp_str(set, a, b, IMAP_SORT_S_FROM);
      break;
    case MAILPROTO_IMAP_SORT_SIZE:
      r = CMP(a->size, b->size);
      break;
    case MAILPROTO_IMAP_SORT_SUBJECT:
      r = cmp_str(set, a, b, IMAP_SORT_S_SUBJECT);
      break;
    default:
      r = cmp_str(set, a, b, IMAP_SORT_S_TO);
      break;
    }
    if (r != 0)
      return c[i].reverse ? -r : r;
  }
  /* RFC 5256 3: ties in sequence order (not reversed). */
  return CMP(a->index, b->index);
}

typedef struct sort_ctx {
  const imap_sort_set *set;
  const mailproto_imap_sort_criterion *c;
  unsigned n;
} sort_ctx;

/* Moves r[root] down its heap of `end` records. */
static void sift(const sort_ctx *x, imap_sort_rec *r, size_t root, size_t end) {
  for (size_t child; (child = 2 * root + 1) < end; root = child) {
    if (child + 1 < end &&
        compare(x->set, x->c, x->n, &r[child], &r[child + 1]) < 0)
      child++;
    if (compare(x->set, x->c, x->n, &r[root], &r[child]) >= 0)
      return;
    imap_sort_rec t = r[root];
    r[root] = r[child];
    r[child] = t;
  }
}

void mailproto_imap_sort_run(imap_sort_set *set,
                             const mailproto_imap_sort_criterion *c,
                             unsigned n) {
  /* A heap sort: O(n log n) and no memory beyond the records. The
   * comparison is total (sequence numbers break ties), so the order is
   * deterministic although the sort is not stable. */
  sort_ctx x = {set, c, n};
  imap_sort_rec *r = set->r;
  for (size_t i = set->n / 2; i-- > 0;)
    sift(&x, r, i, set->n);
  for (size_t end = set->n; end-- > 1;) {
    imap_sort_rec t = r[0];
    r[0] = r[end];
    r[end] = t;
    sift(&x, r, 0, end);
  }
}
