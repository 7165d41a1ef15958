/*
 * RFC 2231 parameter values: continuations joined, charset'language'%XX
 * values decoded to UTF-8, as RFC 9051 7.5.2 asks of BODYSTRUCTURE.
 * Groups are found by scanning the (capped) parameter list, so the work
 * is at most quadratic in max_params, never in the input length.
 */
#include <string.h>

#include "core/alloc.h"
#include "mime/mime_codec.h"
#include "mime/mime_header.h"

static int same_base(const mailproto_mime_param *a,
                     const mailproto_mime_param *b) {
  if (a->base.len != b->base.len)
    return 0;
  for (size_t i = 0; i < a->base.len; i++) {
    uint8_t x = a->base.data[i], y = b->base.data[i];
    if (x >= 'A' && x <= 'Z')
      x = (uint8_t)(x + 32);
    if (y >= 'A' && y <= 'Z')
      y = (uint8_t)(y + 32);
    if (x != y)
      return 0;
  }
  return 1;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (uint8_t)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends a section's bytes: %XX decoded when extended. */
static int append_section(const mailproto_mime_param *p, size_t skip,
                          mailproto_buf *out) {
  if (!p->extended) {
    mailproto_mime_span v = p->value;
    return mailproto_mime_unquote(&v, p->quoted, out);
  }
  const uint8_t *s = p->value.data + skip;
  size_t n = p->value.len - skip;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = s[i];
    if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
        hexval(s[i + 2]) >= 0) {
      c = (uint8_t)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
      i += 2;
      if (c == 0)
        c = ' '; /* no IMAP string can carry a NUL */
    }
    int rc = mailproto_buf_append_byte(out, c);
    if (rc)
      return rc;
  }
  return 0;
}

/* RFC 2231 attribute-char */
static int attribute_char(uint8_t c) {
  if (c <= ' ' || c >= 0x7f)
    return 0;
  return !strchr("*'%()<>@,;:\\\"/[]?=", c);
}

/* Emits one parameter group: its sections sec[0..n), in order. */
static int emit_group(mailproto_mime_param *const *sec, size_t n,
                      mailproto_buf *scratch, mailproto_mime_param_fn emit,
                      void *arg) {
  mailproto_buf_clear(scratch);
  const mailproto_mime_param *first = sec[0];
  int extended = first->extended;
  /* charset'language' in front of the first extended section */
  mailproto_mime_span charset = {NULL, 0}, prefix = {NULL, 0};
  size_t skip = 0;
  if (extended) {
    const uint8_t *v = first->value.data;
    size_t len = first->value.len;
    const uint8_t *q1 = memchr(v, '\'', len);
    const uint8_t *q2 =
        q1 ? memchr(q1 + 1, '\'', len - (size_t)(q1 + 1 - v)) : NULL;
    if (q2) {
      charset.data = v;
      charset.len = (size_t)(q1 - v);
      prefix.data = v;
      prefix.len = (size_t)(q2 + 1 - v);
      skip = prefix.len;
    }
  }
  int rc = mailproto_buf_append(scratch, first->base.data, first->base.len);
  if (rc == 0 && extended)
    rc = mailproto_buf_append_byte(scratch, '*');
  size_t name_len = scratch->len;
  size_t raw_start = scratch->len;
  for (size_t i = 0; rc == 0 && i < n; i++)
    rc = append_section(sec[i], i == 0 ? skip : 0, scratch);
  if (rc)
    return rc;
  size_t raw_len = scratch->len - raw_start;
  if (!extended)
    return emit(arg, scratch->data, name_len, scratch->data + raw_start,
                raw_len);
  mailproto_mime_charset cs =
      mailproto_mime_charset_lookup(charset.data, charset.len);
  size_t value_start = scratch->len;
  if (cs != MAILPROTO_MIME_CHARSET_UNKNOWN || charset.len == 0) {
    /* a known charset, or none named (the bytes go as they are). The
     * input lies in the same buffer: reserve the most the output can take (3
     * bytes per input byte) so appending never moves it. */
    size_t room;
    if (mailproto_size_mul(raw_len, 3, &room))
      return MAILPROTO_ERR_BUFFER_FULL;
    rc = mailproto_buf_reserve(scratch, room);
    if (rc == 0)
      rc = mailproto_mime_charset_to_utf8(cs, scratch->data + raw_start,
                                          raw_len, scratch);
  } else {
    /* unknown charset: one valid extended value, for the client */
    rc = mailproto_buf_append(scratch, prefix.data, prefix.len);
    for (size_t i = 0; rc == 0 && i < raw_len; i++) {
      uint8_t c = scratch->data[raw_start + i];
      if (attribute_char(c)) {
        rc = mailproto_buf_append_byte(scratch, c);
      } else {
        static const char hex[] = "0123456789ABCDEF";
        uint8_t e[3] = {'%', (uint8_t)hex[c >> 4], (uint8_t)hex[c & 15]};
        rc = mailproto_buf_append(scratch, e, 3);
      }
    }
  }
  if (rc)
    return rc;
  return emit(arg, scratch->data, name_len, scratch->data + value_start,
              scratch->len - value_start);
}

int mailproto_mime_params_decode(const uint8_t *v, size_t len, size_t params,
                                 unsigned max_params, mailproto_buf *scratch,
                                 mailproto_mime_param_fn emit, void *arg) {
  size_t count = 0, pos = params;
  mailproto_mime_param tmp;
  while (count < max_params && mailproto_mime_param_next(v, len, &pos, &tmp))
    count++;
  if (count == 0)
    return 0;
  mailproto_mime_param *all =
      mailproto_mem_calloc(scratch->alloc, count, sizeof *all);
  mailproto_mime_param **sec =
      mailproto_mem_calloc(scratch->alloc, count, sizeof *sec);
  int rc = 0;
  if (!all || !sec)
    rc = MAILPROTO_ERR_NOMEM;
  pos = params;
  for (size_t i = 0; rc == 0 && i < count; i++)
    mailproto_mime_param_next(v, len, &pos, &all[i]);
  for (size_t i = 0; rc == 0 && i < count; i++) {
    mailproto_mime_param *p = &all[i];
    if (p->section < 0) {
      sec[0] = p;
      rc = emit_group(sec, 1, scratch, emit, arg);
      continue;
    }
    /* a continuation group: handled at its first member */
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++)
      seen = all[j].section >= 0 && same_base(&all[j], p);
    if (seen)
      continue;
    size_t n = 0;
    for (long s = 0; n < count; s++) {
      mailproto_mime_param *found = NULL;
      for (size_t j = i; j < count && !found; j++)
        if (all[j].section == s && same_base(&all[j], p))
          found = &all[j];
      if (!found)
        break;
      sec[n++] = found;
    }
    if (n > 0) /* no section 0: the group is unusable */
      rc = emit_group(sec, n, scratch, emit, arg);
  }
  mailproto_mem_free(scratch->alloc, all);
  mailproto_mem_free(scratch->alloc, sec);
  return rc;
}
