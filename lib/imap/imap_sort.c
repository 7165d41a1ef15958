/*
 * SORT (RFC 5256 3): base-subject extraction (2.1), the per-message sort
 * record, and the ordering. Strings compare with i;unicode-casemap (RFC
 * 5256 7, RFC 5051): stored in that form, cut at IMAP_SORT_STRING_MAX
 * octets, and compared as octets; ties fall back to the sequence number.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/casemap.h"
#include "core/sort.h"
#include "core/utf8.h"
#include "imap/imap_search.h"
#include "mime/mime_header.h"

/* ------------------------------------------------------------------ */
/* Collation (RFC 5256 7: i;unicode-casemap, RFC 5051)                 */
/* ------------------------------------------------------------------ */

/* Appends the i;unicode-casemap form of [s, s + len) to `out`; bytes that
 * are not UTF-8 are kept as they are. A full `out` ends the string
 * quietly (sort strings are cut anyway). Returns 0 or NOMEM. */
static int casemap(const uint8_t *s, size_t len, mailproto_buf *out) {
  for (size_t i = 0; i < len;) {
    uint8_t t[4 * MAILPROTO_CASEMAP_MAX];
    uint32_t c, mapped[MAILPROTO_CASEMAP_MAX];
    size_t n = mailproto_utf8_decode(s + i, len - i, &c), k = 0;
    if (n == 0) {
      t[0] = s[i];
      n = k = 1;
    } else {
      size_t m = mailproto_casemap(c, mapped);
      for (size_t j = 0; j < m; j++)
        k += mailproto_utf8_encode(t + k, mapped[j]);
    }
    int rc = mailproto_buf_append(out, t, k);
    if (rc != 0)
      return rc == MAILPROTO_ERR_BUFFER_FULL ? 0 : rc;
    i += n;
  }
  return 0;
}

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
  /* (7) in the collation's form, so equal subjects are equal octets. */
  rc = casemap(p, (size_t)(e - p), out);
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

/* The addr-mailbox of the first address (RFC 5256 3), in the collation's
 * form. The first address is the first of the ENVELOPE's list (RFC 3501
 * 7.4.2): for a group that is its start marker, whose addr-mailbox is
 * the group name ("undisclosed-recipients:;" sorts as that name). */
static int first_mailbox(imap_sort_set *set, const mailproto_buf *v,
                         uint32_t *off, uint16_t *len) {
  mailproto_buf scratch, key;
  mailproto_buf_init(&scratch, set->arena.alloc, IMAP_FIELD_MAX);
  mailproto_buf_init(&key, set->arena.alloc, IMAP_SORT_STRING_MAX);
  mailproto_mime_addr_iter it;
  mailproto_mime_address a;
  mailproto_mime_addr_init(&it, v->data ? v->data : (const uint8_t *)"", v->len,
                           &scratch);
  int rc = mailproto_mime_addr_next(&it, &a);
  if (rc == 1) {
    const mailproto_mime_span *m =
        a.kind == MAILPROTO_MIME_ADDR_GROUP_START ? &a.name : &a.mailbox;
    rc = m->data ? casemap(m->data, m->len, &key) : 0;
  }
  if (rc != MAILPROTO_ERR_NOMEM)
    rc = arena_put(set, key.data, key.len, off, len);
  mailproto_buf_free(&scratch);
  mailproto_buf_free(&key);
  return rc;
}

/* A msg-id "<" id-left "@" id-right ">" (RFC 5322 3.6.4) in a form that
 * compares: quoting and white space dropped, so <"a.b"@x> and <a.b@x>
 * are one id (RFC 5256 3: "MUST normalize"). Writes at most n bytes to
 * `to`; returns the length, or 0 for no valid id (no "@" between a
 * non-empty left and right: RFC 5256 3 uses valid ids only). */
static size_t normalize_id(const uint8_t *lt, size_t n, uint8_t *to) {
  size_t k = 0, first_at = 0, last_at = 0;
  to[k++] = '<';
  for (size_t i = 1; i + 1 < n; i++) {
    uint8_t c = lt[i];
    if (c == '"' || c == ' ' || c == '\t' || c == '\r' || c == '\n')
      continue;
    if (c == '\\' && i + 2 < n) {
      c = lt[++i]; /* quoted-pair */
    } else if (c == '@') {
      if (!first_at)
        first_at = k;
      last_at = k;
    }
    to[k++] = c;
  }
  if (first_at < 2 || last_at + 1 >= k)
    return 0;
  to[k++] = '>';
  return k;
}

/* Appends every valid "<...>" msg-id of a value, normalized (NUL after
 * each); keeps at most `max`, the last ones. Returns how many, or
 * NOMEM. */
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
    uint8_t id[IMAP_THREAD_ID_MAX];
    if (n > IMAP_THREAD_ID_MAX || memchr(lt + 1, '<', n - 1) ||
        (n = normalize_id(lt, n, id)) == 0)
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
    int rc = mailproto_buf_append(&set->arena, id, n);
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

static int compare_records(const void *a, const void *b, const void *ctx) {
  const sort_ctx *x = ctx;
  return compare(x->set, x->c, x->n, a, b);
}

void mailproto_imap_sort_run(imap_sort_set *set,
                             const mailproto_imap_sort_criterion *c,
                             unsigned n) {
  /* The comparison is total (sequence numbers break ties), so the order
   * is deterministic although the sort is not stable. */
  sort_ctx x = {set, c, n};
  mailproto_heap_sort(set->r, set->n, sizeof *set->r, compare_records, &x);
}
