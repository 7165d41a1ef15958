/*
 * Reading header field values: the lexical pieces of RFC 5322 3.2 and RFC
 * 2045 5.1 (comments, quoted strings, tokens), Content-Type and
 * Content-Disposition with their parameters, RFC 2231 parameter
 * continuations and charsets, address lists (RFC 5322 3.4 with the
 * obsolete forms of 4.4), and fields of a complete header block.
 *
 * Everything here works on bytes already in memory, is tolerant (malformed
 * input gives the most sensible reading, never an error), never reads
 * outside [data, data + len), and does not allocate unless it is given a
 * buffer to append to.
 */
#ifndef MAILPROTO_MIME_HEADER_H
#define MAILPROTO_MIME_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"

typedef struct mailproto_mime_span {
  const uint8_t *data;
  size_t len;
} mailproto_mime_span;

/* 1 if [a, a + alen) equals the NUL-terminated `b` ignoring ASCII case. */
int mailproto_mime_span_is(const uint8_t *a, size_t alen, const char *b);

/* Skips white space (SP, HT, CR, LF) and comments (nested, RFC 5322
 * 3.2.2; an unclosed comment runs to the end) from `pos`; returns the new
 * position (<= len). */
size_t mailproto_mime_skip_cfws(const uint8_t *s, size_t len, size_t pos);

/* ------------------------------------------------------------------ */
/* Content-Type, Content-Disposition, parameters (RFC 2045, 2183, 2231) */
/* ------------------------------------------------------------------ */

/* A parsed "type/subtype" (RFC 2045 5.1): raw tokens as written. */
typedef struct mailproto_mime_ctype {
  mailproto_mime_span type;
  mailproto_mime_span subtype;
  size_t params; /* where the parameters begin */
} mailproto_mime_ctype;

/* Returns 1 if the value begins with a syntactically valid "type/subtype"
 * (both tokens non-empty), else 0 (RFC 2045 5.2: treat as the default). */
int mailproto_mime_ctype_parse(const uint8_t *v, size_t len,
                               mailproto_mime_ctype *out);

/* The first token of a value (Content-Disposition's type, a
 * Content-Transfer-Encoding): returns 1 and sets *token (and *params to
 * where the parameters begin, if not NULL), or 0 if there is none. */
int mailproto_mime_token_parse(const uint8_t *v, size_t len,
                               mailproto_mime_span *token, size_t *params);

/* One parameter as written. RFC 2231 3 and 4: an attribute "name*3*" has
 * base "name", section 3 and extended 1. */
typedef struct mailproto_mime_param {
  mailproto_mime_span attr;  /* the whole attribute */
  mailproto_mime_span base;  /* without the section and '*' */
  long section;              /* -1: no section */
  int extended;              /* a trailing '*': charset'lang'%XX form */
  mailproto_mime_span value; /* raw: quoted-pairs still escaped */
  int quoted;
} mailproto_mime_param;

/*
 * The next parameter after *pos (start with the `params` position of the
 * parse functions above). Returns 1 and fills *out, or 0 at the end.
 * Malformed parameters (no "=", no attribute) are skipped to the next
 * ";". An unquoted value runs to ";", white space or "(" (real mail
 * carries tspecials such as "=" in unquoted boundaries).
 */
int mailproto_mime_param_next(const uint8_t *v, size_t len, size_t *pos,
                              mailproto_mime_param *out);

/* The value of a parameter `name` (case-insensitive, plain form, first
 * one) unquoted into out[0 .. cap); returns its length, or -1 if absent
 * or longer than cap. */
long mailproto_mime_param_get(const uint8_t *v, size_t len, size_t params,
                              const char *name, uint8_t *out, size_t cap);

/* Appends a quoted-string's content with its quoted-pairs resolved (or an
 * unquoted value as is). Returns 0, NOMEM or BUFFER_FULL. */
int mailproto_mime_unquote(const mailproto_mime_span *value, int quoted,
                           mailproto_buf *out);

/*
 * RFC 2231 decoding of a parameter list. Parameters are given in order;
 * continuations ("name*0", "name*1", ... extended or not, in any order)
 * are joined; a gap in the sections ends the value. For each resulting
 * parameter `emit` is called once, in the order of first appearance, with
 * its name and value:
 *  - plain parameters and joined plain continuations: name "name", the
 *    unquoted value;
 *  - extended ones (RFC 2231 4: charset'language'%XX in the first
 *    section): name "name*" and the value decoded and converted to UTF-8
 *    (RFC 9051 7.5.2: "return the resulting value as a parameter foo*");
 *    when the charset is not one this library knows the value is kept in
 *    its charset'language'%XX form, re-encoded so it is one valid
 *    extended value. A "%00" becomes a space (IMAP strings have no NUL).
 * At most `max_params` parameters are read (the rest are ignored).
 * `scratch` provides working memory (cleared; its allocator and max
 * apply). Returns 0, NOMEM, BUFFER_FULL, or a non-zero value `emit`
 * returned (which stops the walk).
 */
typedef int (*mailproto_mime_param_fn)(void *arg, const uint8_t *name,
                                       size_t name_len, const uint8_t *value,
                                       size_t value_len);
int mailproto_mime_params_decode(const uint8_t *v, size_t len, size_t params,
                                 unsigned max_params, mailproto_buf *scratch,
                                 mailproto_mime_param_fn emit, void *arg);

/* ------------------------------------------------------------------ */
/* Address lists (RFC 5322 3.4 and 4.4; for ENVELOPE, RFC 3501 7.4.2)   */
/* ------------------------------------------------------------------ */

typedef enum mailproto_mime_addr_kind {
  MAILPROTO_MIME_ADDR_MAILBOX = 1,
  MAILPROTO_MIME_ADDR_GROUP_START, /* name: the group's display name */
  MAILPROTO_MIME_ADDR_GROUP_END
} mailproto_mime_addr_kind;

/* One address. Absent members have data NULL. The texts point into the
 * iterator's scratch buffer (valid until the next call) or the value. */
typedef struct mailproto_mime_address {
  mailproto_mime_addr_kind kind;
  mailproto_mime_span name;    /* display name (phrase or comment) */
  mailproto_mime_span route;   /* obs-route: "@a,@b" */
  mailproto_mime_span mailbox; /* local part, unquoted */
  mailproto_mime_span host;    /* domain */
} mailproto_mime_address;

typedef struct mailproto_mime_addr_iter {
  const uint8_t *data;
  size_t len;
  size_t pos;
  int in_group;
  mailproto_buf *scratch;
} mailproto_mime_addr_iter;

/* Starts reading the address list in [v, v + len). `scratch` holds the
 * unquoted texts; its allocator and max apply. */
void mailproto_mime_addr_init(mailproto_mime_addr_iter *it, const uint8_t *v,
                              size_t len, mailproto_buf *scratch);

/*
 * The next address: returns 1 and fills *out, 0 at the end, or NOMEM /
 * BUFFER_FULL (scratch). Tolerant reading:
 *  - a display name is the phrase's words joined by one space, quoted
 *    strings unquoted, encoded words left as they are (RFC 3501: raw);
 *    without a phrase, the comment after an addr-spec is the name
 *    ("john@x (John Doe)", RFC 822 style); an empty name is absent;
 *  - the local part is unquoted; a missing local part or domain gives the
 *    text "MISSING_MAILBOX" / "MISSING_DOMAIN" (a NIL host would read as
 *    a group marker in IMAP);
 *  - empty list members are skipped (RFC 5322 4.4); text that is not an
 *    address is skipped to the next ","; a group left open is closed at
 *    the end of the list, and a nested group start is read as a plain
 *    address.
 */
int mailproto_mime_addr_next(mailproto_mime_addr_iter *it,
                             mailproto_mime_address *out);

/* ------------------------------------------------------------------ */
/* Header blocks                                                        */
/* ------------------------------------------------------------------ */

/* One field of a header block: the name (trimmed) and the raw value
 * (after the colon, folds and line ends included, up to the line end of
 * its last line). */
typedef struct mailproto_mime_hfield {
  mailproto_mime_span name;
  mailproto_mime_span value;
} mailproto_mime_hfield;

/* The next field of a complete header block from *pos: returns 1, or 0
 * at the blank line or the end. Lines without a colon are skipped. */
int mailproto_mime_header_next(const uint8_t *h, size_t len, size_t *pos,
                               mailproto_mime_hfield *out);

/* Appends a raw value unfolded (CR and LF removed) and trimmed of leading
 * and trailing white space. Returns 0, NOMEM or BUFFER_FULL. */
int mailproto_mime_unfold(const uint8_t *v, size_t len, mailproto_buf *out);

#endif
