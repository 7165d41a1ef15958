/*
 * The IMAP response writer: every piece of a response the server sends,
 * appended to a mailproto_buf, always in valid syntax (RFC 3501 9, RFC
 * 9051 9) whatever the data. Strings are written as an atom, a quoted
 * string or a literal chosen by content, so no client-supplied bytes (a
 * mailbox name, a keyword, a search string echoed back, a text from a
 * callback) can end a line early, inject an untagged response or break a
 * list: CR, LF and NUL never appear in quoted strings, '"' and '\' are
 * escaped, 8-bit bytes go into literals unless UTF8=ACCEPT is on, and
 * free text is sanitised.
 *
 * Every function returns 0, MAILPROTO_ERR_BUFFER_FULL (the buffer's max),
 * MAILPROTO_ERR_NOMEM, or MAILPROTO_ERR_INVALID_ARGUMENT (data that has no
 * valid form: see each function). On failure nothing is appended: the
 * buffer is as it was. An output queue's buffer (mailproto_outq.buf) can
 * be written to directly, followed by mailproto_outq_flush().
 *
 * Also here: the command writer (a parsed command back to a canonical wire
 * form) used by the tests and the round-trip fuzz oracle.
 */
#ifndef MAILPROTO_IMAP_WRITER_H
#define MAILPROTO_IMAP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"

/* UTF8=ACCEPT or IMAP4rev2 is enabled (RFC 6855 3, RFC 9051): valid UTF-8
 * may go into quoted strings, and mailbox names are sent as UTF-8 rather
 * than modified UTF-7. */
#define MAILPROTO_IMAP_WRITE_UTF8 0x1u

typedef enum mailproto_imap_string_form {
  MAILPROTO_IMAP_FORM_ATOM = 1,
  MAILPROTO_IMAP_FORM_QUOTED,
  MAILPROTO_IMAP_FORM_LITERAL
} mailproto_imap_string_form;

/* The form an astring (allow_atom 1) or string (0) of this content gets:
 * an atom when it is a non-empty run of ASTRING-CHARs and not "NIL" (in
 * any case); quoted when it has no CR, LF or NUL, no 8-bit byte (unless
 * UTF8 is on and it is valid UTF-8) and is at most 1024 bytes; else a
 * literal. */
mailproto_imap_string_form mailproto_imap_string_form_of(const char *s,
                                                         size_t len,
                                                         unsigned flags,
                                                         int allow_atom);

/* An astring (RFC 3501 9): atom, quoted or literal as above. A NUL in
 * `s` is INVALID_ARGUMENT (only literal8 may carry one). */
int mailproto_imap_write_astring(mailproto_buf *b, const char *s, size_t len,
                                 unsigned flags);
/* A string: quoted or literal (never an atom). NUL: INVALID_ARGUMENT. */
int mailproto_imap_write_string(mailproto_buf *b, const char *s, size_t len,
                                unsigned flags);
/* An nstring: NIL when s is NULL, else as write_string. */
int mailproto_imap_write_nstring(mailproto_buf *b, const char *s, size_t len,
                                 unsigned flags);
/* A literal "{n}\r\n" + bytes (binary: "~{n}\r\n", RFC 3516 literal8, NUL
 * allowed; else a NUL is INVALID_ARGUMENT). */
int mailproto_imap_write_literal(mailproto_buf *b, const void *data, size_t len,
                                 int binary);
/* A decimal number. */
int mailproto_imap_write_number(mailproto_buf *b, uint64_t n);
/* Raw protocol text chosen by the caller (keywords of the protocol, not
 * data): appended as is. */
int mailproto_imap_write_raw(mailproto_buf *b, const char *s);

/*
 * A mailbox name given in UTF-8 (as the store holds it), written as an
 * astring: modified UTF-7 (RFC 3501 5.1.3) by default, UTF-8 with the
 * UTF8 flag (RFC 6855 3). "INBOX" in any case is written "INBOX".
 * Invalid UTF-8 or a control character: INVALID_ARGUMENT.
 */
int mailproto_imap_write_mailbox(mailproto_buf *b, const char *name, size_t len,
                                 unsigned flags);

/*
 * A flag list "(\Seen \Flagged $Label1)": system flags (MAILPROTO_FLAG_*
 * of store.h, \Recent included) in a fixed order, then the keywords.
 * A keyword that is not a valid atom, or that begins with "\", is left
 * out (it could not be sent without breaking the syntax); use
 * mailproto_imap_is_atom() to refuse such keywords where they enter.
 * `perm_star` adds "\*" (PERMANENTFLAGS, RFC 3501 7.1).
 */
int mailproto_imap_write_flags(mailproto_buf *b, unsigned system,
                               const char *const *keywords, unsigned count,
                               int perm_star);

/* A sequence set in wire form. */
int mailproto_imap_write_seqset(mailproto_buf *b,
                                const mailproto_imap_seqset *set);

/*
 * Free text (resp-text "text"): every CR, LF, other control character and
 * DEL becomes a space; 8-bit bytes become "?" unless UTF8 is on and the
 * text is valid UTF-8. An empty text becomes "." (text needs at least one
 * character).
 */
int mailproto_imap_write_text(mailproto_buf *b, const char *s, size_t len,
                              unsigned flags);

/*
 * A status response line with its CRLF (RFC 3501 7.1):
 *   "<tag> <status> [<code>] <text>\r\n"
 * tag: the command's tag, or NULL for "*" (it must be a valid tag:
 * INVALID_ARGUMENT otherwise); status: "OK", "NO", "BAD", "BYE" or
 * "PREAUTH"; code: a response code without brackets ("TRYCREATE",
 * "COPYUID 38505 304,319:320 3956:3958") or NULL: controls and "]" in it
 * become spaces; an empty code is left out; text: free text as
 * write_text, except that a text beginning with "[" has it written as "("
 * so it cannot be taken for a response code.
 */
int mailproto_imap_write_status(mailproto_buf *b, const char *tag,
                                const char *status, const char *code,
                                const char *text, unsigned flags);

/* A continuation request "+ <text>\r\n" (RFC 3501 7.5): text as
 * write_text. With `base64` set, `text` is a SASL challenge (RFC 3501
 * 6.2.2): it must be base64 (INVALID_ARGUMENT otherwise) and may be empty
 * ("+ \r\n"). */
int mailproto_imap_write_continuation(mailproto_buf *b, const char *text,
                                      int base64);

/*
 * A section spec as "[1.2.HEADER.FIELDS (a b)]": part numbers, the text
 * part, header names as astrings (flags as above). The command writer
 * and the FETCH response (RFC 3501 7.4.2: the section is echoed) share
 * it.
 */
int mailproto_imap_write_section(mailproto_buf *b,
                                 const mailproto_imap_section *sec,
                                 unsigned flags);

/*
 * The command writer: a parsed command in a canonical wire form with its
 * final CRLF: atoms upper-case, one space between tokens, strings as
 * astring/string by content (literals as "{n}\r\n" + bytes), fetch macros
 * by name. Parsing the output gives an equal command. APPEND messages
 * without data (streamed) are written with their size and no bytes (the
 * form only the reader sees). flags as above (UTF8: 8-bit quoted).
 */
int mailproto_imap_write_command(mailproto_buf *b,
                                 const mailproto_imap_command *cmd,
                                 unsigned flags);

#endif
