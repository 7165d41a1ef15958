/*
 * The IMAP response writer (see imap_writer.h). Every public function
 * restores the buffer on failure, so a caller never sends half a token.
 */
#include "imap/imap_writer.h"

#include <string.h>

#include "mailproto/store.h"

/* RFC 3501 does not limit quoted strings; long ones go as literals so a
 * client's line limit is never the problem. */
#define QUOTED_MAX 1024u

/* Restores the buffer when a step failed. */
static int undo(mailproto_buf *b, size_t mark, int rc) {
  if (rc != 0)
    b->len = mark;
  return rc;
}

static int put(mailproto_buf *b, const void *s, size_t n) {
  return mailproto_buf_append(b, s, n);
}

static int puts_(mailproto_buf *b, const char *s) {
  return mailproto_buf_append(b, s, strlen(s));
}

mailproto_imap_string_form mailproto_imap_string_form_of(const char *s,
                                                         size_t len,
                                                         unsigned flags,
                                                         int allow_atom) {
  const unsigned char *u = (const unsigned char *)s;
  if (allow_atom && len > 0) {
    size_t i = 0;
    while (i < len && mailproto_imap_is_astring_char(u[i]))
      i++;
    int nil = len == 3 && (u[0] | 0x20) == 'n' && (u[1] | 0x20) == 'i' &&
              (u[2] | 0x20) == 'l';
    if (i == len && !nil)
      return MAILPROTO_IMAP_FORM_ATOM;
  }
  if (len > QUOTED_MAX)
    return MAILPROTO_IMAP_FORM_LITERAL;
  int high = 0;
  for (size_t i = 0; i < len; i++) {
    if (u[i] == '\r' || u[i] == '\n' || u[i] == '\0')
      return MAILPROTO_IMAP_FORM_LITERAL;
    high |= u[i] >= 0x80;
  }
  if (high &&
      (!(flags & MAILPROTO_IMAP_WRITE_UTF8) || !mailproto_imap_is_utf8(u, len)))
    return MAILPROTO_IMAP_FORM_LITERAL;
  return MAILPROTO_IMAP_FORM_QUOTED;
}

static int quoted(mailproto_buf *b, const char *s, size_t len) {
  /* Room for every byte escaped plus the quotes, reserved once. */
  size_t escapes = 0;
  for (size_t i = 0; i < len; i++)
    escapes += s[i] == '"' || s[i] == '\\';
  int rc = mailproto_buf_reserve(b, len + escapes + 2);
  if (rc != 0)
    return rc;
  uint8_t *d = b->data + b->len;
  size_t n = 0;
  d[n++] = '"';
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '"' || s[i] == '\\')
      d[n++] = '\\';
    d[n++] = (uint8_t)s[i];
  }
  d[n++] = '"';
  b->len += n;
  return 0;
}

int mailproto_imap_write_number(mailproto_buf *b, uint64_t n) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + n % 10);
    n /= 10;
  } while (n);
  return put(b, tmp + i, sizeof tmp - i);
}

int mailproto_imap_write_literal(mailproto_buf *b, const void *data, size_t len,
                                 int binary) {
  if (!binary && len && memchr(data, '\0', len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t mark = b->len;
  int rc = puts_(b, binary ? "~{" : "{");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, len);
  if (rc == 0)
    rc = put(b, "}\r\n", 3);
  if (rc == 0)
    rc = put(b, data, len);
  return undo(b, mark, rc);
}

static int string_as(mailproto_buf *b, const char *s, size_t len,
                     unsigned flags, int allow_atom) {
  if (len && memchr(s, '\0', len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t mark = b->len;
  int rc;
  switch (mailproto_imap_string_form_of(s, len, flags, allow_atom)) {
  case MAILPROTO_IMAP_FORM_ATOM:
    rc = put(b, s, len);
    break;
  case MAILPROTO_IMAP_FORM_QUOTED:
    rc = quoted(b, s, len);
    break;
  default:
    rc = mailproto_imap_write_literal(b, s, len, 0);
    break;
  }
  return undo(b, mark, rc);
}

int mailproto_imap_write_astring(mailproto_buf *b, const char *s, size_t len,
                                 unsigned flags) {
  return string_as(b, s, len, flags, 1);
}

int mailproto_imap_write_string(mailproto_buf *b, const char *s, size_t len,
                                unsigned flags) {
  return string_as(b, s, len, flags, 0);
}

int mailproto_imap_write_nstring(mailproto_buf *b, const char *s, size_t len,
                                 unsigned flags) {
  if (!s)
    return put(b, "NIL", 3);
  return string_as(b, s, len, flags, 0);
}

int mailproto_imap_write_raw(mailproto_buf *b, const char *s) {
  return puts_(b, s);
}

int mailproto_imap_write_mailbox(mailproto_buf *b, const char *name, size_t len,
                                 unsigned flags) {
  if (mailproto_imap_is_inbox(name, len))
    return put(b, "INBOX", 5);
  if (flags & MAILPROTO_IMAP_WRITE_UTF8) {
    const unsigned char *u = (const unsigned char *)name;
    if (!mailproto_imap_is_utf8(u, len))
      return MAILPROTO_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < len; i++)
      if (u[i] < 0x20 || u[i] == 0x7f)
        return MAILPROTO_ERR_INVALID_ARGUMENT;
    return mailproto_imap_write_astring(b, name, len, flags);
  }
  /* Modified UTF-7 needs at most 8/3 bytes per UTF-16 unit plus the
   * shift characters: 3 bytes of output per input byte and a little more
   * is always enough. */
  char out[3 * MAILPROTO_MAILBOX_NAME_MAX + 16];
  if (len > MAILPROTO_MAILBOX_NAME_MAX)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  long n = mailproto_utf8_to_mutf7(name, len, out, sizeof out);
  if (n < 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return mailproto_imap_write_astring(b, out, (size_t)n, 0);
}

int mailproto_imap_write_flags(mailproto_buf *b, unsigned system,
                               const char *const *keywords, unsigned count,
                               int perm_star) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{MAILPROTO_FLAG_SEEN, "\\Seen"},
               {MAILPROTO_FLAG_ANSWERED, "\\Answered"},
               {MAILPROTO_FLAG_FLAGGED, "\\Flagged"},
               {MAILPROTO_FLAG_DELETED, "\\Deleted"},
               {MAILPROTO_FLAG_DRAFT, "\\Draft"},
               {MAILPROTO_FLAG_RECENT, "\\Recent"}};
  size_t mark = b->len;
  int rc = put(b, "(", 1);
  int first = 1;
  for (size_t i = 0; rc == 0 && i < sizeof names / sizeof names[0]; i++) {
    if (!(system & names[i].bit))
      continue;
    if (!first)
      rc = put(b, " ", 1);
    if (rc == 0)
      rc = puts_(b, names[i].name);
    first = 0;
  }
  for (unsigned i = 0; rc == 0 && i < count; i++) {
    const char *k = keywords[i];
    /* A keyword that is no atom cannot be sent: leave it out. */
    if (!k || !mailproto_imap_is_atom(k, strlen(k)))
      continue;
    if (!first)
      rc = put(b, " ", 1);
    if (rc == 0)
      rc = puts_(b, k);
    first = 0;
  }
  if (rc == 0 && perm_star)
    rc = puts_(b, first ? "\\*" : " \\*");
  if (rc == 0)
    rc = put(b, ")", 1);
  return undo(b, mark, rc);
}

int mailproto_imap_write_seqset(mailproto_buf *b,
                                const mailproto_imap_seqset *set) {
  size_t mark = b->len;
  int rc = 0;
  if (set->saved)
    return put(b, "$", 1);
  for (unsigned i = 0; rc == 0 && i < set->count; i++) {
    mailproto_imap_seqset one = {0, 1, &set->ranges[i]};
    char tmp[32];
    long n = mailproto_imap_seqset_format(&one, tmp, sizeof tmp);
    if (n < 0)
      rc = (int)n;
    if (rc == 0 && i > 0)
      rc = put(b, ",", 1);
    if (rc == 0)
      rc = put(b, tmp, (size_t)n);
  }
  return undo(b, mark, rc);
}

int mailproto_imap_write_text(mailproto_buf *b, const char *s, size_t len,
                              unsigned flags) {
  const unsigned char *u = (const unsigned char *)s;
  if (len == 0)
    return put(b, ".", 1);
  int keep_high =
      (flags & MAILPROTO_IMAP_WRITE_UTF8) && mailproto_imap_is_utf8(u, len);
  int rc = mailproto_buf_reserve(b, len);
  if (rc != 0)
    return rc;
  uint8_t *d = b->data + b->len;
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = u[i];
    if (ch < 0x20 || ch == 0x7f)
      ch = ' ';
    else if (ch >= 0x80 && !keep_high)
      ch = '?';
    d[i] = ch;
  }
  b->len += len;
  return 0;
}

static int valid_tag(const char *tag) {
  size_t n = strlen(tag);
  if (n == 0)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (tag[i] == '+' || !mailproto_imap_is_astring_char((unsigned char)tag[i]))
      return 0;
  return 1;
}

int mailproto_imap_write_status(mailproto_buf *b, const char *tag,
                                const char *status, const char *code,
                                const char *text, unsigned flags) {
  if (tag && !valid_tag(tag))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  size_t mark = b->len;
  int rc = puts_(b, tag ? tag : "*");
  if (rc == 0)
    rc = put(b, " ", 1);
  if (rc == 0)
    rc = puts_(b, status);
  if (rc == 0)
    rc = put(b, " ", 1);
  if (rc == 0 && code && code[0]) {
    /* resp-text-code never holds "]" or a control character. */
    size_t n = strlen(code);
    rc = put(b, "[", 1);
    if (rc == 0)
      rc = mailproto_buf_reserve(b, n + 2);
    if (rc == 0) {
      for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)code[i];
        b->data[b->len++] =
            ch < 0x20 || ch == 0x7f || ch == ']' || ch >= 0x80 ? ' ' : ch;
      }
      rc = put(b, "] ", 2);
    }
  }
  if (rc == 0) {
    size_t n = text ? strlen(text) : 0;
    size_t at = b->len;
    rc = mailproto_imap_write_text(b, text ? text : "", n, flags);
    /* Without a code, a leading "[" would be read as one. */
    if (rc == 0 && b->data[at] == '[')
      b->data[at] = '(';
  }
  if (rc == 0)
    rc = put(b, "\r\n", 2);
  return undo(b, mark, rc);
}

int mailproto_imap_write_continuation(mailproto_buf *b, const char *text,
                                      int base64) {
  size_t n = text ? strlen(text) : 0;
  size_t mark = b->len;
  int rc;
  if (base64) {
    for (size_t i = 0; i < n; i++) {
      char ch = text[i];
      if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            (ch >= '0' && ch <= '9') || ch == '+' || ch == '/' || ch == '='))
        return MAILPROTO_ERR_INVALID_ARGUMENT;
    }
    rc = put(b, "+ ", 2);
    if (rc == 0)
      rc = put(b, text, n);
  } else {
    rc = put(b, "+ ", 2);
    if (rc == 0)
      rc = mailproto_imap_write_text(b, text ? text : "", n, 0);
  }
  if (rc == 0)
    rc = put(b, "\r\n", 2);
  return undo(b, mark, rc);
}
