/*
 * The serialised form of a part tree, for a store cache. It is a byte
 * string:
 *
 *   "MPM" version(1)  varint size  varint part_count
 *   per part, in document order:
 *     varint flags, varint child_count,
 *     varint header_offset - previous part's header_offset,
 *     varint header_size, varint header bare LFs and CRs,
 *     varint body_size, varint body bare LFs and CRs, varint lines,
 *     varint mask of kept MIME fields, then each: varint len, bytes;
 *     if PART_ENVELOPE: varint mask of kept envelope fields, then each
 *   4 bytes: FNV-1a of everything before, little-endian.
 *
 * Parents, subtree sizes, depths, body offsets and envelope indexes are
 * not stored: they follow from the child counts and sizes, so a loaded
 * tree cannot contradict itself there. What is stored is validated as if
 * it came from an attacker.
 */
#include <string.h>

#include "core/alloc.h"
#include "mime/mime.h"

#define SERIAL_VERSION 1

static uint32_t fnv1a(const uint8_t *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= s[i];
    h *= 16777619u;
  }
  return h;
}

static int put_varint(mailproto_buf *b, uint64_t v) {
  uint8_t tmp[10];
  size_t n = 0;
  do {
    uint8_t byte = (uint8_t)(v & 0x7f);
    v >>= 7;
    tmp[n++] = (uint8_t)(byte | (v ? 0x80 : 0));
  } while (v);
  return mailproto_buf_append(b, tmp, n);
}

static int put_refs(mailproto_buf *b, const mailproto_mime_tree *t,
                    const mailproto_mime_ref *refs, unsigned count) {
  uint64_t mask = 0;
  for (unsigned i = 0; i < count; i++)
    if (refs[i].off != MAILPROTO_MIME_NONE)
      mask |= (uint64_t)1 << i;
  int rc = put_varint(b, mask);
  for (unsigned i = 0; rc == 0 && i < count; i++) {
    if (refs[i].off == MAILPROTO_MIME_NONE)
      continue;
    rc = put_varint(b, refs[i].len);
    if (rc == 0)
      rc = mailproto_buf_append(b, mailproto_mime_ref_data(t, refs[i]),
                                refs[i].len);
  }
  return rc;
}

int mailproto_mime_serialize(const mailproto_mime_tree *t, mailproto_buf *out) {
  size_t mark = out->len;
  int rc = mailproto_buf_append(out, "MPM", 3);
  if (rc == 0)
    rc = mailproto_buf_append_byte(out, SERIAL_VERSION);
  if (rc == 0)
    rc = put_varint(out, t->size);
  if (rc == 0)
    rc = put_varint(out, t->part_count);
  uint64_t prev = 0;
  for (uint32_t i = 0; rc == 0 && i < t->part_count; i++) {
    const mailproto_mime_part *p = &t->parts[i];
    uint64_t v[] = {p->flags,
                    p->child_count,
                    p->header_offset - prev,
                    p->header_size,
                    p->header_vsize - p->header_size,
                    p->body_size,
                    p->body_vsize - p->body_size,
                    p->lines};
    prev = p->header_offset;
    for (size_t k = 0; rc == 0 && k < sizeof v / sizeof v[0]; k++)
      rc = put_varint(out, v[k]);
    if (rc == 0)
      rc = put_refs(out, t, p->fields, MAILPROTO_MIME_FIELD_COUNT);
    if (rc == 0 && (p->flags & MAILPROTO_MIME_PART_ENVELOPE))
      rc = put_refs(out, t, t->envelopes[p->envelope].fields,
                    MAILPROTO_MIME_ENV_COUNT);
  }
  if (rc == 0) {
    uint32_t h = fnv1a(out->data + mark, out->len - mark);
    uint8_t le[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16),
                     (uint8_t)(h >> 24)};
    rc = mailproto_buf_append(out, le, 4);
  }
  if (rc != 0)
    out->len = mark;
  return rc;
}

/* ------------------------------------------------------------------ */
/* Loading                                                             */
/* ------------------------------------------------------------------ */

typedef struct reader {
  const uint8_t *s;
  size_t len, pos;
  int bad;
} reader;

static uint64_t get_varint(reader *r) {
  uint64_t v = 0;
  for (unsigned shift = 0; shift < 64; shift += 7) {
    if (r->pos >= r->len) {
      r->bad = 1;
      return 0;
    }
    uint8_t byte = r->s[r->pos++];
    if (shift == 63 && byte > 1) {
      r->bad = 1;
      return 0;
    }
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80))
      return v;
  }
  r->bad = 1;
  return 0;
}

typedef struct loader {
  reader r;
  mailproto_mime_tree *t;
  const mailproto_mime_limits *limits;
  size_t pool_cap;
} loader;

static int get_refs(loader *l, mailproto_mime_ref *refs, unsigned count) {
  uint64_t mask = get_varint(&l->r);
  if (l->r.bad || mask >> count)
    return MAILPROTO_ERR_SYNTAX;
  for (unsigned i = 0; i < count; i++) {
    refs[i].off = MAILPROTO_MIME_NONE;
    refs[i].len = 0;
    if (!(mask & ((uint64_t)1 << i)))
      continue;
    uint64_t n = get_varint(&l->r);
    if (l->r.bad || n > l->limits->max_field || n > l->r.len - l->r.pos ||
        n > l->limits->max_kept - l->t->pool_len)
      return MAILPROTO_ERR_SYNTAX;
    const uint8_t *src = l->r.s + l->r.pos;
    if (memchr(src, '\0', (size_t)n))
      return MAILPROTO_ERR_SYNTAX; /* kept values never hold NUL */
    if (l->t->pool_len + n > l->pool_cap) {
      size_t cap = l->pool_cap ? l->pool_cap : 256;
      while (cap < l->t->pool_len + n)
        cap *= 2;
      uint8_t *grown = mailproto_mem_realloc(l->t->alloc, l->t->pool, cap);
      if (!grown)
        return MAILPROTO_ERR_NOMEM;
      l->t->pool = grown;
      l->pool_cap = cap;
    }
    if (n > 0)
      memcpy(l->t->pool + l->t->pool_len, src, (size_t)n);
    refs[i].off = (uint32_t)l->t->pool_len;
    refs[i].len = (uint32_t)n;
    l->t->pool_len += (size_t)n;
    l->r.pos += (size_t)n;
  }
  return 0;
}

/* Checks what the parser guarantees about one part and its place. */
static int part_valid(const mailproto_mime_tree *t, uint32_t i) {
  const mailproto_mime_part *p = &t->parts[i];
  uint32_t f = p->flags;
  if (f & ~MAILPROTO_MIME_PART_ALL_FLAGS)
    return 0;
  if ((f & MAILPROTO_MIME_PART_MULTIPART) &&
      (f & (MAILPROTO_MIME_PART_MESSAGE_TYPE | MAILPROTO_MIME_PART_TEXT)))
    return 0;
  if ((f & MAILPROTO_MIME_PART_TEXT) && (f & MAILPROTO_MIME_PART_MESSAGE_TYPE))
    return 0;
  if ((f & (MAILPROTO_MIME_PART_MESSAGE | MAILPROTO_MIME_PART_GLOBAL)) &&
      !(f & MAILPROTO_MIME_PART_MESSAGE_TYPE))
    return 0;
  if (f & MAILPROTO_MIME_PART_MESSAGE) {
    if (p->child_count != 1 ||
        !(t->parts[i + 1].flags & MAILPROTO_MIME_PART_ENVELOPE))
      return 0;
  } else if (!(f & MAILPROTO_MIME_PART_MULTIPART) && p->child_count != 0) {
    return 0;
  }
  /* an envelope exactly on the root and on encapsulated messages */
  int want_env =
      i == 0 || (t->parts[p->parent].flags & MAILPROTO_MIME_PART_MESSAGE) != 0;
  if (want_env != ((f & MAILPROTO_MIME_PART_ENVELOPE) != 0))
    return 0;
  if (i > 0) {
    const mailproto_mime_part *up = &t->parts[p->parent];
    if (p->header_offset < up->body_offset ||
        p->body_offset + p->body_size > up->body_offset + up->body_size)
      return 0;
  }
  return 1;
}

int mailproto_mime_deserialize(const mailproto_allocator *alloc,
                               const mailproto_mime_limits *limits,
                               const void *data, size_t len,
                               uint64_t message_size,
                               mailproto_mime_tree *out) {
  mailproto_mime_limits lim;
  if (limits)
    lim = *limits;
  else
    mailproto_mime_limits_default(&lim);
  mailproto_mime_tree_free(out);
  out->alloc = alloc;
  const uint8_t *s = data;
  if (!s || len < 8 || memcmp(s, "MPM", 3) != 0 || s[3] != SERIAL_VERSION)
    return MAILPROTO_ERR_SYNTAX;
  uint32_t h = (uint32_t)s[len - 4] | (uint32_t)s[len - 3] << 8 |
               (uint32_t)s[len - 2] << 16 | (uint32_t)s[len - 1] << 24;
  if (fnv1a(s, len - 4) != h)
    return MAILPROTO_ERR_SYNTAX;
  loader l = {{s, len - 4, 4, 0}, out, &lim, 0};
  uint64_t size = get_varint(&l.r);
  uint64_t count = get_varint(&l.r);
  if (l.r.bad || size != message_size || count < 1 || count > lim.max_parts ||
      count > (l.r.len - l.r.pos) / 9)
    return MAILPROTO_ERR_SYNTAX;
  out->size = size;
  out->parts = mailproto_mem_calloc(alloc, (size_t)count, sizeof *out->parts);
  /* open ancestors: part index and children still to come */
  uint32_t *stack =
      mailproto_mem_calloc(alloc, (size_t)count * 2, sizeof *stack);
  if (!out->parts || !stack) {
    mailproto_mem_free(alloc, stack);
    mailproto_mime_tree_free(out);
    return MAILPROTO_ERR_NOMEM;
  }
  int rc = 0;
  unsigned depth = 0;
  uint64_t prev = 0, envs = 0;
  for (uint32_t i = 0; rc == 0 && i < count; i++) {
    mailproto_mime_part *p = &out->parts[i];
    uint64_t v[8];
    for (size_t k = 0; k < 8; k++)
      v[k] = get_varint(&l.r);
    if (l.r.bad || v[0] > MAILPROTO_MIME_PART_ALL_FLAGS || v[1] > count ||
        v[2] > size - prev || v[3] > size - prev - v[2] || v[4] > v[3] ||
        v[5] > size - prev - v[2] - v[3] || v[6] > v[5] || v[7] > v[5]) {
      rc = MAILPROTO_ERR_SYNTAX;
      break;
    }
    p->flags = (uint32_t)v[0];
    p->child_count = (uint32_t)v[1];
    p->header_offset = prev + v[2];
    p->header_size = v[3];
    p->header_vsize = v[3] + v[4];
    p->body_offset = p->header_offset + v[3];
    p->body_size = v[5];
    p->body_vsize = v[5] + v[6];
    p->lines = v[7];
    prev = p->header_offset;
    /* place it under the innermost ancestor that expects a child */
    while (depth > 0 && stack[2 * (depth - 1) + 1] == 0) {
      uint32_t done = stack[2 * (depth - 1)];
      out->parts[done].subtree = i - done;
      depth--;
    }
    if ((i == 0) != (depth == 0) || depth > lim.max_depth) {
      rc = MAILPROTO_ERR_SYNTAX;
      break;
    }
    p->parent = i == 0 ? MAILPROTO_MIME_NONE : stack[2 * (depth - 1)];
    p->depth = depth;
    if (depth > 0)
      stack[2 * (depth - 1) + 1]--;
    stack[2 * depth] = i;
    stack[2 * depth + 1] = p->child_count;
    depth++;
    rc = get_refs(&l, p->fields, MAILPROTO_MIME_FIELD_COUNT);
    p->envelope = MAILPROTO_MIME_NONE;
    if (rc == 0 && (p->flags & MAILPROTO_MIME_PART_ENVELOPE)) {
      if (envs >= (uint64_t)out->envelope_count) {
        size_t cap = out->envelope_count ? (size_t)out->envelope_count * 2 : 4;
        mailproto_mime_envelope *grown = mailproto_mem_reallocarray(
            alloc, out->envelopes, cap, sizeof *grown);
        if (!grown) {
          rc = MAILPROTO_ERR_NOMEM;
          break;
        }
        out->envelopes = grown;
        out->envelope_count = (uint32_t)cap;
      }
      p->envelope = (uint32_t)envs;
      rc =
          get_refs(&l, out->envelopes[envs++].fields, MAILPROTO_MIME_ENV_COUNT);
    }
  }
  if (rc == 0) {
    while (depth > 0) {
      if (stack[2 * (depth - 1) + 1] != 0) {
        rc = MAILPROTO_ERR_SYNTAX; /* a part is missing children */
        break;
      }
      uint32_t done = stack[2 * (depth - 1)];
      out->parts[done].subtree = (uint32_t)count - done;
      depth--;
    }
  }
  mailproto_mem_free(alloc, stack);
  if (rc == 0 && l.r.pos != l.r.len)
    rc = MAILPROTO_ERR_SYNTAX;
  out->part_count = (uint32_t)count;
  out->envelope_count = (uint32_t)envs;
  for (uint32_t i = 0; rc == 0 && i < count; i++)
    if (!part_valid(out, i))
      rc = MAILPROTO_ERR_SYNTAX;
  const mailproto_mime_part *root = &out->parts[0];
  if (rc == 0 &&
      (root->header_offset != 0 || root->body_offset + root->body_size != size))
    rc = MAILPROTO_ERR_SYNTAX;
  if (rc != 0) {
    mailproto_mime_tree_free(out);
    return rc;
  }
  out->vsize = root->header_vsize + root->body_vsize;
  return 0;
}

int mailproto_mime_serial_size(const void *data, size_t len, uint64_t *size) {
  const uint8_t *s = data;
  if (!s || len < 8 || memcmp(s, "MPM", 3) != 0 || s[3] != SERIAL_VERSION)
    return 0;
  reader r = {s, len - 4, 4, 0};
  uint64_t v = get_varint(&r);
  if (r.bad)
    return 0;
  *size = v;
  return 1;
}
