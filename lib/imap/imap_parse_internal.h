/*
 * Shared by the parser's files: the cursor over one command, the arena,
 * and the lexical rules of RFC 3501 9 / RFC 9051 9.
 */
#ifndef MAILPROTO_IMAP_PARSE_INTERNAL_H
#define MAILPROTO_IMAP_PARSE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parser.h"

/* Returned (positive, never an error code) when a literal header ends the
 * data where a string was expected: the reader's LITERAL event stopped
 * there. Every parser passes it up with its "rc != 0" checks; APPEND
 * pieces act on it, everything else turns it into "Invalid literal". */
#define MAILPROTO_IMAP_LEX_TRAILING 2

/* RFC 3501 9 character classes as a table, for the scanning loops. */
extern const uint8_t mailproto_imap_char_class[256];
static inline int mailproto_imap_atom_ch(uint8_t ch) {
  return mailproto_imap_char_class[ch] & 1;
}
static inline int mailproto_imap_astring_ch(uint8_t ch) {
  return (mailproto_imap_char_class[ch] & 2) != 0;
}

typedef struct mailproto_imap_cursor {
  mailproto_imap_parser *p;
  const uint8_t *s;
  size_t len;
  size_t pos;
  unsigned depth;  /* parentheses open (search keys) */
  unsigned frames; /* search recursion (parentheses, NOT, OR) */
} mailproto_imap_cursor;

/* Records the failure text and returns rc (SYNTAX, TOO_LONG, NOMEM). */
int mailproto_imap_lex_fail(mailproto_imap_cursor *c, int rc, const char *text);

/* Arena memory: zeroed, aligned; TOO_LONG past max_memory. */
int mailproto_imap_lex_alloc(mailproto_imap_cursor *c, size_t n, void **out);
/* An array of n elements of `size` bytes (n may be 0: a valid pointer). */
int mailproto_imap_lex_array(mailproto_imap_cursor *c, size_t n, size_t size,
                             void **out);
/* A NUL-terminated copy of [s, s + n) into *out. */
int mailproto_imap_lex_copy(mailproto_imap_cursor *c, const uint8_t *s,
                            size_t n, mailproto_imap_str *out);

/* Elements of one size whose number is known only at the end (list
 * items): gathered in a chain of arena nodes, then made one array. */
typedef struct mailproto_imap_collect {
  size_t size;
  void *head;
  void **tail;
  unsigned count;
} mailproto_imap_collect;

void mailproto_imap_collect_init(mailproto_imap_collect *col, size_t size);
/* A new zeroed element at the end; *out points to it. */
int mailproto_imap_collect_add(mailproto_imap_cursor *c,
                               mailproto_imap_collect *col, void **out);
/* All elements as one array (a valid pointer even for none). */
int mailproto_imap_collect_finish(mailproto_imap_cursor *c,
                                  mailproto_imap_collect *col, void **array,
                                  unsigned *count);

static inline int mailproto_imap_lex_end(const mailproto_imap_cursor *c) {
  return c->pos >= c->len;
}
static inline int mailproto_imap_lex_peek(const mailproto_imap_cursor *c) {
  return c->pos < c->len ? c->s[c->pos] : -1;
}

/* Exactly one SP ("Missing argument" at the end). */
int mailproto_imap_lex_sp(mailproto_imap_cursor *c);
/* Consumes `ch` or fails with `text`. */
int mailproto_imap_lex_char(mailproto_imap_cursor *c, int ch, const char *text);
/* The run of ATOM-CHARs at the cursor (may be empty); *n its length. */
const uint8_t *mailproto_imap_lex_atom_run(mailproto_imap_cursor *c, size_t *n);
/* A run of chars that may form a token: ATOM-CHARs plus "]" (astring
 * atoms) — for keywords and names. */
const uint8_t *mailproto_imap_lex_word(mailproto_imap_cursor *c, size_t *n);
/* Case-insensitive [s, s + n) == word. */
int mailproto_imap_lex_is(const uint8_t *s, size_t n, const char *word);

int mailproto_imap_lex_atom(mailproto_imap_cursor *c, mailproto_imap_str *out,
                            const char *text);
int mailproto_imap_lex_astring(mailproto_imap_cursor *c,
                               mailproto_imap_str *out);
int mailproto_imap_lex_string(mailproto_imap_cursor *c,
                              mailproto_imap_str *out);
int mailproto_imap_lex_nstring(mailproto_imap_cursor *c,
                               mailproto_imap_nstr *out);
/* mailbox = "INBOX" / astring (INBOX case-folded). */
int mailproto_imap_lex_mailbox(mailproto_imap_cursor *c,
                               mailproto_imap_str *out);
/* list-mailbox = 1*list-char / string. */
int mailproto_imap_lex_list_mailbox(mailproto_imap_cursor *c,
                                    mailproto_imap_str *out);

/* number (32-bit), nz-number, number64 (< 2^63), nz-number64. */
int mailproto_imap_lex_number(mailproto_imap_cursor *c, uint32_t *out,
                              int nonzero);
int mailproto_imap_lex_number64(mailproto_imap_cursor *c, uint64_t *out,
                                int nonzero);

int mailproto_imap_lex_seqset(mailproto_imap_cursor *c, int allow_saved,
                              mailproto_imap_seqset *out);
int mailproto_imap_lex_flag_list(mailproto_imap_cursor *c,
                                 mailproto_imap_flags *out);
/* Flags without parentheses (STORE): flag *(SP flag). */
int mailproto_imap_lex_flags_bare(mailproto_imap_cursor *c,
                                  mailproto_imap_flags *out);
/* date-time in quotes (APPEND). */
int mailproto_imap_lex_date_time(mailproto_imap_cursor *c,
                                 mailproto_datetime *out);
/* date, quoted or not (SEARCH). */
int mailproto_imap_lex_date(mailproto_imap_cursor *c, int64_t *out);

/* A literal header at the cursor: 1 when one starts here ("{", "~{"), and
 * then *trailing tells whether it ends the data (no CRLF and bytes yet:
 * the reader's LITERAL event). On 1 with !trailing the cursor is moved
 * past the literal's bytes and *data and *size describe them. */
int mailproto_imap_lex_literal(mailproto_imap_cursor *c, int allow_binary,
                               int *trailing, const uint8_t **data,
                               uint64_t *size, int *sync, int *binary);

/* Per-command parsers: the cursor is right after the command name. */
int mailproto_imap_parse_select(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd);
int mailproto_imap_parse_create(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd);
int mailproto_imap_parse_list(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd);
int mailproto_imap_parse_lsub(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd);
int mailproto_imap_parse_status(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd);
/* STATUS attribute list "(" att *(SP att) ")" into bits. */
int mailproto_imap_parse_status_items(mailproto_imap_cursor *c,
                                      unsigned *items);
/* The messages of APPEND after the mailbox (see imap_parse_mailbox.c). */
int mailproto_imap_parse_append_messages(mailproto_imap_cursor *c,
                                         mailproto_imap_command *cmd,
                                         int allow_trailing, int need_one);
int mailproto_imap_parse_fetch(mailproto_imap_cursor *c,
                               mailproto_imap_command *cmd);
int mailproto_imap_parse_store(mailproto_imap_cursor *c,
                               mailproto_imap_command *cmd);
int mailproto_imap_parse_search(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd);
int mailproto_imap_parse_sort(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd);
int mailproto_imap_parse_thread(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd);

#endif
