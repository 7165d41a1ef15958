/*
 * Fuzzes the MIME structure parser (lib/mime/mime.h) and its serialised
 * form. The first byte chooses:
 *   bits 0-2  the chunk size the message is fed in (whole, 1, 2, 3, 7, 64,
 *             512, 4096)
 *   bit 3     small limits (depth 4, 16 parts, 64-byte fields, 256 kept)
 * The rest is the message. Oracles: no crash; memory bounded by the parts
 * and the kept values (a counting allocator); every part inside the
 * message and inside its parent, sizes and counters consistent; the same
 * tree whole and chunked; serialise -> deserialise -> serialise gives the
 * same bytes and a tree with the same derived links; the message's
 * virtual size is the store's RFC822.SIZE of the same bytes (one
 * line-end rule for both: bare LF and bare CR count as CRLF).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime/mime.h"
#include "store/store_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

typedef struct counter {
  size_t live, peak;
} counter;

/* Every block carries its size in front, so free and realloc can count. */
static void *c_malloc(size_t n, void *ud) {
  counter *c = ud;
  size_t *p = malloc(n + sizeof(size_t));
  if (!p)
    return NULL;
  *p = n;
  c->live += n;
  if (c->live > c->peak)
    c->peak = c->live;
  return p + 1;
}

static void c_free(void *ptr, void *ud) {
  if (!ptr)
    return;
  counter *c = ud;
  size_t *p = (size_t *)ptr - 1;
  c->live -= *p;
  free(p);
}

static void *c_realloc(void *ptr, size_t n, void *ud) {
  if (!ptr)
    return c_malloc(n, ud);
  counter *c = ud;
  size_t *p = (size_t *)ptr - 1;
  size_t old = *p;
  size_t *q = realloc(p, n + sizeof(size_t));
  if (!q)
    return NULL;
  *q = n;
  c->live = c->live - old + n;
  if (c->live > c->peak)
    c->peak = c->live;
  return q + 1;
}

static int parse(const mailproto_allocator *a, const mailproto_mime_limits *l,
                 const uint8_t *m, size_t len, size_t chunk,
                 mailproto_mime_tree *t) {
  mailproto_mime_parser p;
  mailproto_mime_parser_init(&p, a, l);
  int rc = 0;
  for (size_t pos = 0; rc == 0 && pos < len;) {
    size_t n = len - pos < chunk ? len - pos : chunk;
    /* an exact-size copy, so reads past the chunk are caught */
    uint8_t *piece = malloc(n);
    require(piece != NULL);
    memcpy(piece, m + pos, n);
    rc = mailproto_mime_parser_feed(&p, piece, n);
    free(piece);
    pos += n;
  }
  int frc = mailproto_mime_parser_finish(&p, t);
  mailproto_mime_parser_free(&p);
  return rc ? rc : frc;
}

static void check_tree(const mailproto_mime_tree *t,
                       const mailproto_mime_limits *l, size_t len) {
  require(t->part_count >= 1 && t->part_count <= l->max_parts);
  require(t->size == len);
  require(t->vsize >= t->size && t->vsize <= 2 * t->size);
  require(t->pool_len <= l->max_kept);
  for (uint32_t i = 0; i < t->part_count; i++) {
    const mailproto_mime_part *p = &t->parts[i];
    require(p->header_offset + p->header_size == p->body_offset);
    require(p->body_offset + p->body_size <= len);
    require(p->header_vsize >= p->header_size &&
            p->header_vsize <= 2 * p->header_size);
    require(p->body_vsize >= p->body_size && p->body_vsize <= 2 * p->body_size);
    require(p->lines <= p->body_size);
    require(p->depth <= l->max_depth);
    require(p->subtree >= 1 && i + p->subtree <= t->part_count);
    for (int f = 0; f < MAILPROTO_MIME_FIELD_COUNT; f++) {
      mailproto_mime_ref r = p->fields[f];
      require(r.off == MAILPROTO_MIME_NONE ||
              ((size_t)r.off + r.len <= t->pool_len && r.len <= l->max_field));
    }
    if (i == 0) {
      require(p->parent == MAILPROTO_MIME_NONE && p->header_offset == 0 &&
              p->body_offset + p->body_size == len);
      continue;
    }
    const mailproto_mime_part *up = &t->parts[p->parent];
    require(p->parent < i && i < p->parent + up->subtree);
    require(p->depth == up->depth + 1);
    require(p->header_offset >= up->body_offset);
    require(p->body_offset + p->body_size <= up->body_offset + up->body_size);
    require((up->flags & (MAILPROTO_MIME_PART_MULTIPART |
                          MAILPROTO_MIME_PART_MESSAGE)) != 0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  static const size_t chunks[8] = {0, 1, 2, 3, 7, 64, 512, 4096};
  size_t chunk = chunks[data[0] & 7];
  mailproto_mime_limits lim;
  mailproto_mime_limits_default(&lim);
  if (data[0] & 8) {
    lim.max_depth = 4;
    lim.max_parts = 16;
    lim.max_field = 64;
    lim.max_kept = 256;
  }
  const uint8_t *m = data + 1;
  size_t len = size - 1;

  counter c = {0, 0};
  mailproto_allocator a = {c_malloc, c_realloc, c_free, &c};
  mailproto_mime_tree t;
  mailproto_mime_tree_init(&t, &a);
  require(parse(&a, &lim, m, len, chunk ? chunk : len + 1, &t) == 0);
  check_tree(&t, &lim, len);
  mailproto_store_size z;
  memset(&z, 0, sizeof z);
  mailproto_store_size_add(&z, m, len);
  require(t.vsize == mailproto_store_size_total(&z));
  /* memory: the parts (arrays grow by doubling), the kept values (one
   * may be trimmed after it grew to max_field) and a little fixed state
   * (open parts, boundaries); never anything per input byte */
  size_t bound =
      4 * (size_t)t.part_count *
          (sizeof(mailproto_mime_part) + sizeof(mailproto_mime_envelope) + 64) +
      2 * t.pool_len + 2 * lim.max_field + (64u << 10);
  require(c.peak <= bound);

  if (chunk != 0) {
    mailproto_mime_tree whole;
    mailproto_mime_tree_init(&whole, NULL);
    require(parse(NULL, &lim, m, len, len + 1, &whole) == 0);
    mailproto_buf x, y;
    mailproto_buf_init(&x, NULL, (size_t)-1);
    mailproto_buf_init(&y, NULL, (size_t)-1);
    require(mailproto_mime_serialize(&t, &x) == 0);
    require(mailproto_mime_serialize(&whole, &y) == 0);
    require(x.len == y.len && memcmp(x.data, y.data, x.len) == 0);
    mailproto_buf_free(&x);
    mailproto_buf_free(&y);
    mailproto_mime_tree_free(&whole);
  }

  mailproto_buf s1, s2;
  mailproto_buf_init(&s1, NULL, (size_t)-1);
  mailproto_buf_init(&s2, NULL, (size_t)-1);
  require(mailproto_mime_serialize(&t, &s1) == 0);
  /* the size a cache entry claims is the stored size it was made from */
  uint64_t claimed = 0;
  require(mailproto_mime_serial_size(s1.data, s1.len, &claimed) == 1 &&
          claimed == len);
  mailproto_mime_tree u;
  mailproto_mime_tree_init(&u, NULL);
  require(mailproto_mime_deserialize(NULL, &lim, s1.data, s1.len, len, &u) ==
          0);
  require(mailproto_mime_serialize(&u, &s2) == 0);
  require(s1.len == s2.len && memcmp(s1.data, s2.data, s1.len) == 0);
  require(u.part_count == t.part_count && u.vsize == t.vsize);
  for (uint32_t i = 0; i < t.part_count; i++)
    require(u.parts[i].parent == t.parts[i].parent &&
            u.parts[i].subtree == t.parts[i].subtree &&
            u.parts[i].depth == t.parts[i].depth &&
            u.parts[i].child_count == t.parts[i].child_count);
  mailproto_mime_tree_free(&u);
  mailproto_buf_free(&s1);
  mailproto_buf_free(&s2);
  mailproto_mime_tree_free(&t);
  require(c.live == 0);
  return 0;
}
