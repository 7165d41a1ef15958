/*
 * SORT (RFC 5256 3): base-subject extraction (2.1), the per-message sort
 * record, and the ordering. Strings compare with i;unicode-casemap (RFC
 * 5256 7, RFC 5051): stored in that form, cut at IMAP_SORT_STRING_MAX
 * octets, and compared as octets; ties fall back to the sequence number.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/sort.h"
#include "core/utf8.h"
#include "imap/imap_search.h"
#include "mime/mime_header.h"

/* ------------------------------------------------------------------ */
/* Collation (RFC 5256 7: i;unicode-casemap, RFC 5051)                 */
/* ------------------------------------------------------------------ */

/*
 * RFC 5051 2: every character becomes its titlecase form, then its
 * canonical decomposition; the results compare as octets. So "Échange"
 * equals "ÉCHANGE" and sorts among the E's ("E" U+0301), not after "Z".
 * A libc-only library carries no Unicode database: this covers the
 * letters the search matcher folds (mime_codec.h: ASCII, Latin-1, Latin
 * Extended-A, Greek, Cyrillic); other characters stay as they are.
 */

/* Simple titlecase mapping (UnicodeData.txt field 14) of those letters. */
static uint32_t title(uint32_t c) {
  if (c < 0x80)
    return c >= 'a' && c <= 'z' ? c - 32 : c;
  if (c < 0x100) {
    if (c == 0xB5) /* micro sign */
      return 0x39C;
    if (c == 0xFF)
      return 0x178;
    return c >= 0xE0 && c != 0xF7 ? c - 32 : c;
  }
  if (c <= 0x17F) { /* Latin Extended-A: upper and lower case in pairs */
    if (c == 0x131) /* dotless i */
      return 'I';
    if (c == 0x17F) /* long s */
      return 'S';
    if ((c <= 0x12F || (c >= 0x132 && c <= 0x137) ||
         (c >= 0x14A && c <= 0x177)) &&
        (c & 1))
      return c - 1;
    if (((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) && !(c & 1))
      return c - 1;
    return c;
  }
  if (c >= 0x3B1 && c <= 0x3CB) /* Greek small letters */
    return c == 0x3C2 ? 0x3A3 : c - 32;
  if (c == 0x3AC)
    return 0x386;
  if (c >= 0x3AD && c <= 0x3AF)
    return c - 37;
  if (c == 0x3CC)
    return 0x38C;
  if (c == 0x3CD || c == 0x3CE)
    return c - 63;
  if (c >= 0x430 && c <= 0x44F) /* Cyrillic */
    return c - 32;
  if (c >= 0x450 && c <= 0x45F)
    return c - 80;
  return c;
}

/* Canonical decompositions (UnicodeData.txt field 5, applied fully) of
 * the titlecase letters above: the letter, its base, up to two marks. */
static const uint16_t decompositions[][4] = {
    {0xC0, 'A', 0x300},    {0xC1, 'A', 0x301},           {0xC2, 'A', 0x302},
    {0xC3, 'A', 0x303},    {0xC4, 'A', 0x308},           {0xC5, 'A', 0x30A},
    {0xC7, 'C', 0x327},    {0xC8, 'E', 0x300},           {0xC9, 'E', 0x301},
    {0xCA, 'E', 0x302},    {0xCB, 'E', 0x308},           {0xCC, 'I', 0x300},
    {0xCD, 'I', 0x301},    {0xCE, 'I', 0x302},           {0xCF, 'I', 0x308},
    {0xD1, 'N', 0x303},    {0xD2, 'O', 0x300},           {0xD3, 'O', 0x301},
    {0xD4, 'O', 0x302},    {0xD5, 'O', 0x303},           {0xD6, 'O', 0x308},
    {0xD9, 'U', 0x300},    {0xDA, 'U', 0x301},           {0xDB, 'U', 0x302},
    {0xDC, 'U', 0x308},    {0xDD, 'Y', 0x301},           {0x100, 'A', 0x304},
    {0x102, 'A', 0x306},   {0x104, 'A', 0x328},          {0x106, 'C', 0x301},
    {0x108, 'C', 0x302},   {0x10A, 'C', 0x307},          {0x10C, 'C', 0x30C},
    {0x10E, 'D', 0x30C},   {0x112, 'E', 0x304},          {0x114, 'E', 0x306},
    {0x116, 'E', 0x307},   {0x118, 'E', 0x328},          {0x11A, 'E', 0x30C},
    {0x11C, 'G', 0x302},   {0x11E, 'G', 0x306},          {0x120, 'G', 0x307},
    {0x122, 'G', 0x327},   {0x124, 'H', 0x302},          {0x128, 'I', 0x303},
    {0x12A, 'I', 0x304},   {0x12C, 'I', 0x306},          {0x12E, 'I', 0x328},
    {0x130, 'I', 0x307},   {0x134, 'J', 0x302},          {0x136, 'K', 0x327},
    {0x139, 'L', 0x301},   {0x13B, 'L', 0x327},          {0x13D, 'L', 0x30C},
    {0x143, 'N', 0x301},   {0x145, 'N', 0x327},          {0x147, 'N', 0x30C},
    {0x14C, 'O', 0x304},   {0x14E, 'O', 0x306},          {0x150, 'O', 0x30B},
    {0x154, 'R', 0x301},   {0x156, 'R', 0x327},          {0x158, 'R', 0x30C},
    {0x15A, 'S', 0x301},   {0x15C, 'S', 0x302},          {0x15E, 'S', 0x327},
    {0x160, 'S', 0x30C},   {0x162, 'T', 0x327},          {0x164, 'T', 0x30C},
    {0x168, 'U', 0x303},   {0x16A, 'U', 0x304},          {0x16C, 'U', 0x306},
    {0x16E, 'U', 0x30A},   {0x170, 'U', 0x30B},          {0x172, 'U', 0x328},
    {0x174, 'W', 0x302},   {0x176, 'Y', 0x302},          {0x178, 'Y', 0x308},
    {0x179, 'Z', 0x301},   {0x17B, 'Z', 0x307},          {0x17D, 'Z', 0x30C},
    {0x386, 0x391, 0x301}, {0x388, 0x395, 0x301},        {0x389, 0x397, 0x301},
    {0x38A, 0x399, 0x301}, {0x38C, 0x39F, 0x301},        {0x38E, 0x3A5, 0x301},
    {0x38F, 0x3A9, 0x301}, {0x390, 0x3B9, 0x308, 0x301}, {0x3AA, 0x399, 0x308},
    {0x3AB, 0x3A5, 0x308}, {0x3B0, 0x3C5, 0x308, 0x301}, {0x400, 0x415, 0x300},
    {0x401, 0x415, 0x308}, {0x403, 0x413, 0x301},        {0x407, 0x406, 0x308},
    {0x40C, 0x41A, 0x301}, {0x40D, 0x418, 0x300},        {0x40E, 0x423, 0x306},
    {0x419, 0x418, 0x306},
};

/* Writes the decomposition of `c` (or `c` itself) as UTF-8 to `o` (room
 * for 12 bytes); returns its length. */
static size_t decompose(uint32_t c, uint8_t *o) {
  size_t lo = 0, hi = sizeof decompositions / sizeof decompositions[0];
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (decompositions[mid][0] < c)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo == sizeof decompositions / sizeof decompositions[0] ||
      decompositions[lo][0] != c)
    return mailproto_utf8_encode(o, c);
  size_t n = 0;
  for (int i = 1; i < 4 && decompositions[lo][i]; i++)
    n += mailproto_utf8_encode(o + n, decompositions[lo][i]);
  return n;
}

/* Appends the i;unicode-casemap form of [s, s + len) to `out`; bytes that
 * are not UTF-8 are kept as they are. A full `out` ends the string
 * quietly (sort strings are cut anyway). Returns 0 or NOMEM. */
static int casemap(const uint8_t *s, size_t len, mailproto_buf *out) {
  for (size_t i = 0; i < len;) {
    uint8_t t[12];
    uint32_t c;
    size_t n = mailproto_utf8_decode(s + i, len - i, &c), k;
    if (n == 0) {
      t[0] = s[i];
      n = k = 1;
    } else {
      k = decompose(title(c), t);
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
