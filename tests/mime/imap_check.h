/*
 * A strict checker for the IMAP syntax of what the MIME writers emit:
 * "body" and "envelope" of RFC 3501 9 (with RFC 9051's media-message,
 * which adds MESSAGE/GLOBAL, when `global` is set), read the way a client
 * reads them (the form of a part is chosen by its quoted type strings).
 * Shared by the mime_imap suite and the fuzz_bodystructure target.
 */
#ifndef MAILPROTO_TEST_IMAP_CHECK_H
#define MAILPROTO_TEST_IMAP_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct imap_check {
  const uint8_t *s;
  size_t len, pos;
  int global;   /* RFC 9051 media-message */
  int extended; /* BODYSTRUCTURE: the four extension fields must be there */
  unsigned depth;
} imap_check;

/* A parsed string: quoted content (escapes kept) or literal bytes. */
typedef struct imap_check_str {
  const uint8_t *data;
  size_t len;
  int quoted;
} imap_check_str;

static inline int ic_lit(imap_check *c, const char *t) {
  size_t n = strlen(t);
  if (c->len - c->pos < n || memcmp(c->s + c->pos, t, n) != 0)
    return 0;
  c->pos += n;
  return 1;
}

static inline int ic_nil(imap_check *c) {
  if (c->len - c->pos >= 3 && (c->s[c->pos] | 0x20) == 'n' &&
      (c->s[c->pos + 1] | 0x20) == 'i' && (c->s[c->pos + 2] | 0x20) == 'l') {
    c->pos += 3;
    return 1;
  }
  return 0;
}

static inline int ic_number(imap_check *c) {
  size_t start = c->pos;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9')
    c->pos++;
  return c->pos > start && c->pos - start <= 20;
}

/* string = quoted / literal (RFC 3501 9); no NUL, CR or LF in quoted. */
static inline int ic_string(imap_check *c, imap_check_str *out) {
  if (c->pos >= c->len)
    return 0;
  if (c->s[c->pos] == '"') {
    size_t start = ++c->pos;
    while (c->pos < c->len && c->s[c->pos] != '"') {
      uint8_t ch = c->s[c->pos];
      if (ch == '\r' || ch == '\n' || ch == 0)
        return 0;
      if (ch == '\\') {
        if (c->pos + 1 >= c->len ||
            (c->s[c->pos + 1] != '"' && c->s[c->pos + 1] != '\\'))
          return 0;
        c->pos++;
      }
      c->pos++;
    }
    if (c->pos >= c->len)
      return 0;
    if (out) {
      out->data = c->s + start;
      out->len = c->pos - start;
      out->quoted = 1;
    }
    c->pos++;
    return 1;
  }
  if (c->s[c->pos] != '{')
    return 0;
  c->pos++;
  uint64_t n = 0;
  size_t digits = 0;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9' &&
         digits < 19) {
    n = n * 10 + (uint64_t)(c->s[c->pos++] - '0');
    digits++;
  }
  if (digits == 0 || !ic_lit(c, "}\r\n") || n > c->len - c->pos)
    return 0;
  if (memchr(c->s + c->pos, 0, (size_t)n))
    return 0;
  if (out) {
    out->data = c->s + c->pos;
    out->len = (size_t)n;
    out->quoted = 0;
  }
  c->pos += (size_t)n;
  return 1;
}

static inline int ic_nstring(imap_check *c) {
  return ic_nil(c) || ic_string(c, NULL);
}

static inline int ic_quoted_is(const imap_check_str *s, const char *word) {
  size_t n = strlen(word);
  if (!s->quoted || s->len != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    uint8_t a = s->data[i];
    if (a >= 'a' && a <= 'z')
      a = (uint8_t)(a - 32);
    if (a != (uint8_t)word[i])
      return 0;
  }
  return 1;
}

/* body-fld-param */
static inline int ic_params(imap_check *c) {
  if (ic_nil(c))
    return 1;
  if (!ic_lit(c, "(") || !ic_string(c, NULL) || !ic_lit(c, " ") ||
      !ic_string(c, NULL))
    return 0;
  while (ic_lit(c, " "))
    if (!ic_string(c, NULL) || !ic_lit(c, " ") || !ic_string(c, NULL))
      return 0;
  return ic_lit(c, ")");
}

static inline int ic_address_list(imap_check *c) {
  if (ic_nil(c))
    return 1;
  if (!ic_lit(c, "("))
    return 0;
  int n = 0;
  while (ic_lit(c, "(")) {
    for (int i = 0; i < 4; i++)
      if ((i > 0 && !ic_lit(c, " ")) || !ic_nstring(c))
        return 0;
    if (!ic_lit(c, ")"))
      return 0;
    n++;
  }
  return n > 0 && ic_lit(c, ")");
}

/* envelope (RFC 3501 9) */
static inline int ic_envelope(imap_check *c) {
  if (!ic_lit(c, "(") || !ic_nstring(c) || !ic_lit(c, " ") || !ic_nstring(c))
    return 0;
  for (int i = 0; i < 6; i++)
    if (!ic_lit(c, " ") || !ic_address_list(c))
      return 0;
  return ic_lit(c, " ") && ic_nstring(c) && ic_lit(c, " ") && ic_nstring(c) &&
         ic_lit(c, ")");
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static inline int ic_ext_tail(imap_check *c) {
  if (!ic_nil(c)) {
    if (!ic_lit(c, "(") || !ic_string(c, NULL) || !ic_lit(c, " ") ||
        !ic_params(c) || !ic_lit(c, ")"))
      return 0;
  }
  if (!ic_lit(c, " "))
    return 0;
  if (!ic_nil(c)) {
    if (ic_lit(c, "(")) {
      if (!ic_string(c, NULL))
        return 0;
      while (ic_lit(c, " "))
        if (!ic_string(c, NULL))
          return 0;
      if (!ic_lit(c, ")"))
        return 0;
    } else if (!ic_string(c, NULL)) {
      return 0;
    }
  }
  return ic_lit(c, " ") && ic_nstring(c);
}

static inline int ic_body(imap_check *c) {
  if (++c->depth > 1000 || !ic_lit(c, "("))
    return 0;
  int ok;
  if (c->pos < c->len && c->s[c->pos] == '(') {
    /* body-type-mpart: 1*body SP media-subtype [SP body-ext-mpart] */
    while (c->pos < c->len && c->s[c->pos] == '(')
      if (!ic_body(c))
        return 0;
    ok = ic_lit(c, " ") && ic_string(c, NULL);
    if (ok && c->extended)
      ok = ic_lit(c, " ") && ic_params(c) && ic_lit(c, " ") && ic_ext_tail(c);
  } else {
    imap_check_str type, subtype;
    ok = ic_string(c, &type) && ic_lit(c, " ") && ic_string(c, &subtype) &&
         ic_lit(c, " ") && ic_params(c) && ic_lit(c, " ") && ic_nstring(c) &&
         ic_lit(c, " ") && ic_nstring(c) && ic_lit(c, " ") &&
         ic_string(c, NULL) && ic_lit(c, " ") && ic_number(c);
    if (ok && ic_quoted_is(&type, "MESSAGE") &&
        (ic_quoted_is(&subtype, "RFC822") ||
         (c->global && ic_quoted_is(&subtype, "GLOBAL"))))
      ok = ic_lit(c, " ") && ic_envelope(c) && ic_lit(c, " ") && ic_body(c) &&
           ic_lit(c, " ") && ic_number(c);
    else if (ok && ic_quoted_is(&type, "TEXT"))
      ok = ic_lit(c, " ") && ic_number(c);
    if (ok && c->extended)
      ok = ic_lit(c, " ") && ic_nstring(c) && ic_lit(c, " ") && ic_ext_tail(c);
  }
  c->depth--;
  return ok && ic_lit(c, ")");
}

/* 1 if [s, s + len) is exactly one body (extended: BODYSTRUCTURE). */
static inline int imap_check_body(const void *s, size_t len, int extended,
                                  int global) {
  imap_check c = {s, len, 0, global, extended, 0};
  return ic_body(&c) && c.pos == len;
}

/* 1 if [s, s + len) is exactly one envelope. */
static inline int imap_check_envelope(const void *s, size_t len) {
  imap_check c = {s, len, 0, 0, 0, 0};
  return ic_envelope(&c) && c.pos == len;
}

#endif
