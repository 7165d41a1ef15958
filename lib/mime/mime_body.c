/*
 * BODY and BODYSTRUCTURE (RFC 3501 7.4.2 and 9 "body", RFC 9051 7.5.2)
 * from the part tree and its kept MIME fields. The walk recurses once per
 * nesting level, which the parser and the loader bound (max_depth).
 */
#include <string.h>

#include "imap/imap_writer.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"

/* Parameters read from one field (RFC 2231 joins are quadratic in it). */
#define MAX_PARAMS 256
#define SCRATCH_MAX ((size_t)1 << 22)

typedef struct ctx {
  mailproto_buf *b;
  const mailproto_mime_tree *t;
  int ext;
  unsigned flags;
  mailproto_buf scratch;
} ctx;

static int raw(ctx *c, const char *s) {
  return mailproto_imap_write_raw(c->b, s);
}

static int str(ctx *c, const uint8_t *s, size_t n) {
  return mailproto_imap_write_string(c->b, (const char *)s, n, c->flags);
}

static const uint8_t *field(const ctx *c, const mailproto_mime_part *p,
                            mailproto_mime_field f, size_t *len) {
  mailproto_mime_ref r = p->fields[f];
  *len = r.len;
  return mailproto_mime_ref_data(c->t, r);
}

/* A kept value as an nstring: NIL when absent or empty. */
static int nstr_field(ctx *c, const mailproto_mime_part *p,
                      mailproto_mime_field f) {
  size_t n;
  const uint8_t *v = field(c, p, f, &n);
  return v && n > 0 ? str(c, v, n) : raw(c, "NIL");
}

typedef struct param_out {
  ctx *c;
  unsigned written;
  int charset_seen;
} param_out;

static int emit_param(void *arg, const uint8_t *name, size_t name_len,
                      const uint8_t *value, size_t value_len) {
  param_out *o = arg;
  int rc = raw(o->c, o->written == 0 ? "(" : " ");
  if (rc == 0)
    rc = str(o->c, name, name_len);
  if (rc == 0)
    rc = raw(o->c, " ");
  if (rc == 0)
    rc = str(o->c, value, value_len);
  /* an RFC 2231 "charset*" names the charset too: no default after it */
  if (mailproto_mime_span_is(name, name_len, "charset") ||
      mailproto_mime_span_is(name, name_len, "charset*"))
    o->charset_seen = 1;
  o->written++;
  return rc;
}

/* "(name value ...)" or NIL; `text_default` adds the charset text/ * has
 * when none is given (RFC 2046 4.1.2). */
static int params(ctx *c, const uint8_t *v, size_t len, size_t at,
                  int text_default) {
  param_out o = {c, 0, 0};
  int rc = 0;
  if (v)
    rc = mailproto_mime_params_decode(v, len, at, MAX_PARAMS, &c->scratch,
                                      emit_param, &o);
  if (rc == 0 && text_default && !o.charset_seen)
    rc = emit_param(&o, (const uint8_t *)"charset", 7,
                    (const uint8_t *)"us-ascii", 8);
  if (rc == 0)
    rc = raw(c, o.written ? ")" : "NIL");
  return rc;
}

/* Content-Disposition: "(type params)" or NIL (RFC 2183). */
static int disposition(ctx *c, const mailproto_mime_part *p) {
  size_t n, at;
  const uint8_t *v = field(c, p, MAILPROTO_MIME_CONTENT_DISPOSITION, &n);
  mailproto_mime_span type;
  if (!v || !mailproto_mime_token_parse(v, n, &type, &at))
    return raw(c, "NIL");
  int rc = raw(c, "(");
  if (rc == 0)
    rc = str(c, type.data, type.len);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = params(c, v, n, at, 0);
  return rc ? rc : raw(c, ")");
}

/* Content-Language: a list of tags (RFC 3282), or NIL. */
static int language(ctx *c, const mailproto_mime_part *p) {
  size_t n;
  const uint8_t *v = field(c, p, MAILPROTO_MIME_CONTENT_LANGUAGE, &n);
  unsigned count = 0;
  int rc = 0;
  size_t pos = 0;
  while (v && rc == 0 && pos < n) {
    pos = mailproto_mime_skip_cfws(v, n, pos);
    size_t start = pos;
    while (pos < n && v[pos] != ',' && v[pos] != ' ' && v[pos] != '\t' &&
           v[pos] != '(')
      pos++;
    if (pos > start) {
      rc = raw(c, count == 0 ? "(" : " ");
      if (rc == 0)
        rc = str(c, v + start, pos - start);
      count++;
    }
    pos = mailproto_mime_skip_cfws(v, n, pos);
    if (pos < n && v[pos] == ',')
      pos++;
    else if (pos < n && pos == start)
      pos++; /* a stray character */
  }
  if (rc == 0)
    rc = raw(c, count ? ")" : "NIL");
  return rc;
}

static int extension_tail(ctx *c, const mailproto_mime_part *p) {
  int rc = raw(c, " ");
  if (rc == 0)
    rc = disposition(c, p);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = language(c, p);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = nstr_field(c, p, MAILPROTO_MIME_CONTENT_LOCATION);
  return rc;
}

/* The part IMAP requires inside a multipart that has none. */
static int empty_part(ctx *c) {
  int rc = raw(c, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL "
                  "\"7bit\" 0 0");
  if (rc == 0 && c->ext)
    rc = raw(c, " NIL NIL NIL NIL");
  return rc ? rc : raw(c, ")");
}

static int envelope_nil(ctx *c) {
  return raw(c, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
}

static int body(ctx *c, uint32_t i);

static int multipart(ctx *c, uint32_t i) {
  const mailproto_mime_part *p = &c->t->parts[i];
  int rc = raw(c, "(");
  if (rc == 0 && p->child_count == 0)
    rc = empty_part(c);
  for (uint32_t k = 0, child = i + 1; rc == 0 && k < p->child_count; k++) {
    rc = body(c, child);
    child += c->t->parts[child].subtree;
  }
  size_t n;
  const uint8_t *v = field(c, p, MAILPROTO_MIME_CONTENT_TYPE, &n);
  mailproto_mime_ctype ct;
  int valid = v && mailproto_mime_ctype_parse(v, n, &ct);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = valid ? str(c, ct.subtype.data, ct.subtype.len)
               : raw(c, "\"mixed\""); /* only a loaded tree can lack it */
  if (rc == 0 && c->ext) {
    rc = raw(c, " ");
    if (rc == 0)
      rc = valid ? params(c, v, n, ct.params, 0) : raw(c, "NIL");
    if (rc == 0)
      rc = extension_tail(c, p);
  }
  return rc ? rc : raw(c, ")");
}

static int single(ctx *c, uint32_t i) {
  const mailproto_mime_part *p = &c->t->parts[i];
  size_t n;
  const uint8_t *v = field(c, p, MAILPROTO_MIME_CONTENT_TYPE, &n);
  mailproto_mime_ctype ct;
  int valid = v && mailproto_mime_ctype_parse(v, n, &ct);
  /* The form (RFC 3501 9 body-type-text / body-type-msg) follows the type
   * as written, so the output parses whatever the flags say. */
  int message, text;
  if (valid) {
    text = mailproto_mime_span_is(ct.type.data, ct.type.len, "text");
    message =
        mailproto_mime_span_is(ct.type.data, ct.type.len, "message") &&
        (mailproto_mime_span_is(ct.subtype.data, ct.subtype.len, "rfc822") ||
         (mailproto_mime_span_is(ct.subtype.data, ct.subtype.len, "global") &&
          (c->flags & MAILPROTO_MIME_WRITE_GLOBAL)));
  } else {
    message = (p->flags & MAILPROTO_MIME_PART_MESSAGE_TYPE) != 0;
    text = !message;
  }
  int rc = raw(c, "(");
  if (rc == 0 && valid) {
    rc = str(c, ct.type.data, ct.type.len);
    if (rc == 0)
      rc = raw(c, " ");
    if (rc == 0)
      rc = str(c, ct.subtype.data, ct.subtype.len);
    if (rc == 0)
      rc = raw(c, " ");
    if (rc == 0)
      rc = params(c, v, n, ct.params, text);
  } else if (rc == 0) {
    /* RFC 2045 5.2, RFC 2046 5.1.5: the default type */
    rc = raw(c, message ? "\"message\" \"rfc822\" NIL"
                        : "\"text\" \"plain\" (\"charset\" \"us-ascii\")");
  }
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = nstr_field(c, p, MAILPROTO_MIME_CONTENT_ID);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = nstr_field(c, p, MAILPROTO_MIME_CONTENT_DESCRIPTION);
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0) {
    mailproto_mime_span enc;
    const uint8_t *e =
        field(c, p, MAILPROTO_MIME_CONTENT_TRANSFER_ENCODING, &n);
    if (e && mailproto_mime_token_parse(e, n, &enc, NULL))
      rc = str(c, enc.data, enc.len);
    else
      rc = raw(c, "\"7bit\"");
  }
  if (rc == 0)
    rc = raw(c, " ");
  if (rc == 0)
    rc = mailproto_imap_write_number(c->b, p->body_vsize);
  if (rc == 0 && message) {
    rc = raw(c, " ");
    if ((p->flags & MAILPROTO_MIME_PART_MESSAGE) && i + 1 < c->t->part_count) {
      if (rc == 0)
        rc = mailproto_mime_write_envelope(c->b, c->t, i + 1, c->flags);
      if (rc == 0)
        rc = raw(c, " ");
      if (rc == 0)
        rc = body(c, i + 1);
    } else {
      if (rc == 0)
        rc = envelope_nil(c);
      if (rc == 0)
        rc = raw(c, " ");
      if (rc == 0)
        rc = empty_part(c);
    }
  }
  if (rc == 0 && (message || text)) {
    rc = raw(c, " ");
    if (rc == 0)
      rc = mailproto_imap_write_number(c->b, p->lines);
  }
  if (rc == 0 && c->ext) {
    rc = raw(c, " ");
    if (rc == 0)
      rc = nstr_field(c, p, MAILPROTO_MIME_CONTENT_MD5);
    if (rc == 0)
      rc = extension_tail(c, p);
  }
  return rc ? rc : raw(c, ")");
}

static int body(ctx *c, uint32_t i) {
  if (c->t->parts[i].flags & MAILPROTO_MIME_PART_MULTIPART)
    return multipart(c, i);
  return single(c, i);
}

int mailproto_mime_write_body(mailproto_buf *b, const mailproto_mime_tree *t,
                              uint32_t part, int extended, unsigned flags) {
  if (part >= t->part_count)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ctx c = {b, t, extended, flags, {0}};
  mailproto_buf_init(&c.scratch, b->alloc, SCRATCH_MAX);
  size_t mark = b->len;
  int rc = body(&c, part);
  mailproto_buf_free(&c.scratch);
  if (rc != 0)
    b->len = mark;
  return rc;
}
