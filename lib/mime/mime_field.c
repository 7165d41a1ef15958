/*
 * The lexical layer of header values (RFC 5322 3.2, RFC 2045 5.1):
 * comments, tokens, quoted strings; Content-Type and parameter lists; the
 * fields of a header block and unfolding.
 */
#include <string.h>

#include "mime/mime_header.h"
#include "mailproto/mailproto.h"

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

int mailproto_mime_span_is(const uint8_t *a, size_t alen, const char *b) {
  size_t blen = strlen(b);
  if (alen != blen)
    return 0;
  for (size_t i = 0; i < alen; i++)
    if (lower(a[i]) != lower((unsigned char)b[i]))
      return 0;
  return 1;
}

static int is_wsp(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

size_t mailproto_mime_skip_cfws(const uint8_t *s, size_t len, size_t pos) {
  while (pos < len) {
    if (is_wsp(s[pos])) {
      pos++;
      continue;
    }
    if (s[pos] != '(')
      break;
    /* A comment; nesting is a counter, so depth costs no stack. */
    size_t depth = 0;
    while (pos < len) {
      uint8_t c = s[pos++];
      if (c == '\\') {
        if (pos < len)
          pos++;
      } else if (c == '(') {
        depth++;
      } else if (c == ')') {
        if (--depth == 0)
          break;
      }
    }
  }
  return pos;
}

/* RFC 2045 5.1 token characters; 8-bit bytes are taken too. */
static int is_token_char(uint8_t c) {
  if (c <= ' ' || c == 0x7f)
    return 0;
  switch (c) {
  case '(':
  case ')':
  case '<':
  case '>':
  case '@':
  case ',':
  case ';':
  case ':':
  case '\\':
  case '"':
  case '/':
  case '[':
  case ']':
  case '?':
  case '=':
    return 0;
  default:
    return 1;
  }
}

static size_t token_end(const uint8_t *s, size_t len, size_t pos) {
  while (pos < len && is_token_char(s[pos]))
    pos++;
  return pos;
}

int mailproto_mime_ctype_parse(const uint8_t *v, size_t len,
                               mailproto_mime_ctype *out) {
  memset(out, 0, sizeof *out);
  size_t pos = mailproto_mime_skip_cfws(v, len, 0);
  size_t end = token_end(v, len, pos);
  if (end == pos)
    return 0;
  out->type.data = v + pos;
  out->type.len = end - pos;
  pos = mailproto_mime_skip_cfws(v, len, end);
  if (pos >= len || v[pos] != '/')
    return 0;
  pos = mailproto_mime_skip_cfws(v, len, pos + 1);
  end = token_end(v, len, pos);
  if (end == pos)
    return 0;
  out->subtype.data = v + pos;
  out->subtype.len = end - pos;
  out->params = end;
  return 1;
}

int mailproto_mime_token_parse(const uint8_t *v, size_t len,
                               mailproto_mime_span *token, size_t *params) {
  size_t pos = mailproto_mime_skip_cfws(v, len, 0);
  size_t end = token_end(v, len, pos);
  if (end == pos)
    return 0;
  token->data = v + pos;
  token->len = end - pos;
  if (params)
    *params = end;
  return 1;
}

/* Skips to just after the next ';' outside quoted strings (or the end). */
static size_t skip_to_semicolon(const uint8_t *v, size_t len, size_t pos) {
  int quoted = 0;
  while (pos < len) {
    uint8_t c = v[pos++];
    if (quoted && c == '\\') {
      if (pos < len)
        pos++;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ';' && !quoted) {
      break;
    }
  }
  return pos;
}

/* Splits "name*12*" into base, section and extended (RFC 2231 3, 4). */
static void split_attribute(mailproto_mime_param *p) {
  const uint8_t *a = p->attr.data;
  size_t n = p->attr.len;
  p->section = -1;
  p->extended = 0;
  p->base = p->attr;
  if (n > 1 && a[n - 1] == '*') {
    p->extended = 1;
    n--;
  }
  /* "*<digits>" before that is a section number */
  size_t i = n;
  while (i > 0 && a[i - 1] >= '0' && a[i - 1] <= '9')
    i--;
  if (i < n && i > 1 && a[i - 1] == '*' && n - i <= 6) {
    long section = 0;
    for (size_t k = i; k < n; k++)
      section = section * 10 + (a[k] - '0');
    p->section = section;
    n = i - 1;
  }
  p->base.len = n;
}

int mailproto_mime_param_next(const uint8_t *v, size_t len, size_t *pos,
                              mailproto_mime_param *out) {
  size_t p = *pos;
  while (p < len) {
    p = mailproto_mime_skip_cfws(v, len, p);
    if (p >= len)
      break;
    if (v[p] == ';') {
      p++;
      continue;
    }
    size_t name_end = token_end(v, len, p);
    if (name_end == p) {
      p = skip_to_semicolon(v, len, p);
      continue;
    }
    size_t q = mailproto_mime_skip_cfws(v, len, name_end);
    if (q >= len || v[q] != '=') {
      p = skip_to_semicolon(v, len, q);
      continue;
    }
    memset(out, 0, sizeof *out);
    out->attr.data = v + p;
    out->attr.len = name_end - p;
    split_attribute(out);
    q = mailproto_mime_skip_cfws(v, len, q + 1);
    if (q < len && v[q] == '"') {
      size_t start = ++q;
      while (q < len && v[q] != '"') {
        if (v[q] == '\\' && q + 1 < len)
          q++;
        q++;
      }
      out->value.data = v + start;
      out->value.len = (q < len ? q : len) - start;
      out->quoted = 1;
      if (q < len)
        q++;
    } else {
      size_t start = q;
      while (q < len && v[q] != ';' && v[q] != '(' && !is_wsp(v[q]))
        q++;
      out->value.data = v + start;
      out->value.len = q - start;
    }
    *pos = q;
    return 1;
  }
  *pos = len;
  return 0;
}

long mailproto_mime_param_get(const uint8_t *v, size_t len, size_t params,
                              const char *name, uint8_t *out, size_t cap) {
  size_t pos = params;
  mailproto_mime_param p;
  while (mailproto_mime_param_next(v, len, &pos, &p)) {
    if (p.section != -1 || p.extended ||
        !mailproto_mime_span_is(p.attr.data, p.attr.len, name))
      continue;
    size_t n = 0;
    for (size_t i = 0; i < p.value.len; i++) {
      uint8_t c = p.value.data[i];
      if (p.quoted && c == '\\' && i + 1 < p.value.len)
        c = p.value.data[++i];
      if (n == cap)
        return -1;
      out[n++] = c;
    }
    return (long)n;
  }
  return -1;
}

int mailproto_mime_unquote(const mailproto_mime_span *value, int quoted,
                           mailproto_buf *out) {
  if (!quoted)
    return mailproto_buf_append(out, value->data, value->len);
  size_t mark = out->len;
  const uint8_t *s = value->data;
  size_t i = 0;
  while (i < value->len) {
    size_t j = i;
    while (j < value->len && s[j] != '\\')
      j++;
    int rc = mailproto_buf_append(out, s + i, j - i);
    if (rc == 0 && j + 1 < value->len)
      rc = mailproto_buf_append_byte(out, s[j + 1]);
    if (rc != 0) {
      out->len = mark;
      return rc;
    }
    i = j + 2;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* Header blocks                                                       */
/* ------------------------------------------------------------------ */

/* End of the line at pos: the index just past its LF (or len). */
static size_t line_end(const uint8_t *h, size_t len, size_t pos) {
  const uint8_t *lf = memchr(h + pos, '\n', len - pos);
  return lf ? (size_t)(lf - h) + 1 : len;
}

static int blank_line(const uint8_t *h, size_t len, size_t pos) {
  return h[pos] == '\n' ||
         (h[pos] == '\r' && pos + 1 < len && h[pos + 1] == '\n');
}

int mailproto_mime_header_next(const uint8_t *h, size_t len, size_t *pos,
                               mailproto_mime_hfield *out) {
  size_t p = *pos;
  while (p < len) {
    if (blank_line(h, len, p)) {
      *pos = len;
      return 0;
    }
    size_t end = line_end(h, len, p);
    if (h[p] == ' ' || h[p] == '\t') {
      p = end; /* a continuation without a field */
      continue;
    }
    const uint8_t *colon = memchr(h + p, ':', end - p);
    if (!colon) {
      p = end;
      continue;
    }
    size_t name_end = (size_t)(colon - h);
    size_t n = name_end;
    while (n > p && (h[n - 1] == ' ' || h[n - 1] == '\t'))
      n--;
    /* the field's continuation lines */
    while (end < len && (h[end] == ' ' || h[end] == '\t'))
      end = line_end(h, len, end);
    out->name.data = h + p;
    out->name.len = n - p;
    out->value.data = h + name_end + 1;
    out->value.len = end - name_end - 1;
    *pos = end;
    return 1;
  }
  *pos = len;
  return 0;
}

int mailproto_mime_unfold(const uint8_t *v, size_t len, mailproto_buf *out) {
  size_t start = 0, end = len;
  while (start < end && (v[start] == ' ' || v[start] == '\t' ||
                         v[start] == '\r' || v[start] == '\n'))
    start++;
  while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t' ||
                         v[end - 1] == '\r' || v[end - 1] == '\n'))
    end--;
  size_t mark = out->len;
  size_t i = start;
  while (i < end) {
    size_t j = i;
    while (j < end && v[j] != '\r' && v[j] != '\n')
      j++;
    int rc = mailproto_buf_append(out, v + i, j - i);
    if (rc != 0) {
      out->len = mark;
      return rc;
    }
    i = j;
    while (i < end && (v[i] == '\r' || v[i] == '\n'))
      i++;
  }
  return 0;
}
