/*
 * The IMAP command parser: a pure function over one complete command, as
 * the reader hands it out (bytes exactly as received, literals inline as
 * "{n}\r\n<n bytes>"), into a struct. It follows the formal syntax of RFC
 * 3501 section 9 and RFC 9051 section 9, with the extensions the server
 * offers: LITERAL+/LITERAL- (RFC 7888), literal8 (RFC 3516), SASL-IR (RFC
 * 4959), ID (RFC 2971), ENABLE (RFC 5161), UNSELECT (RFC 3691), UIDPLUS
 * (RFC 4315), MOVE (RFC 6851), LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC
 * 5819), SPECIAL-USE with CREATE-SPECIAL-USE (RFC 6154), IDLE (RFC 2177),
 * ESEARCH (RFC 4731), SEARCHRES (RFC 5182), CONDSTORE/QRESYNC modifiers
 * (RFC 7162), SORT and THREAD (RFC 5256), BINARY (RFC 3516), STATUS=SIZE,
 * APPENDLIMIT (RFC 7889), MULTIAPPEND (RFC 3502).
 *
 * Memory: everything the result points to lives in the parser's arena (or
 * in the command bytes themselves): no allocation per token. The arena is
 * reused by the next parse and is bounded (max_memory); a command that
 * would need more is refused with "Command too complex". Strings are
 * decoded (quoted-string escapes removed, literal contents extracted) and
 * NUL-terminated; since a NUL is refused everywhere except in literal8
 * APPEND data, strlen() of a string equals its len.
 *
 * Errors: a parse that fails returns MAILPROTO_ERR_SYNTAX or
 * MAILPROTO_ERR_TOO_LONG (both: reply "tag BAD <text>"), or NOMEM (fatal
 * for the session). The text names what was wrong; see
 * mailproto_imap_parser_error(). The tag and the command id are filled in
 * as far as they could be read, so the session can answer with the tag
 * and count errors per command.
 *
 * Mailbox names are decoded astrings, otherwise kept as sent (modified
 * UTF-7, or UTF-8 after UTF8=ACCEPT: the session converts them), except
 * that "INBOX" in any case is given as "INBOX" (RFC 3501 5.1).
 *
 * Everything is bounded: parenthesis depth by max_nesting, and the
 * recursion of search keys (parentheses, NOT and OR together) by eight
 * times that, both checked before recursing (real clients send OR chains
 * a few dozen deep); ranges per sequence set by max_sequence_ranges;
 * total memory by max_memory. Reads never go outside [data, data + len).
 */
#ifndef MAILPROTO_IMAP_PARSER_H
#define MAILPROTO_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/core.h"
#include "imap/imap_seqset.h"

/* ------------------------------------------------------------------ */
/* Basic values                                                        */
/* ------------------------------------------------------------------ */

/* A decoded string: NUL-terminated, len bytes before the NUL. */
typedef struct mailproto_imap_str {
  const char *data;
  size_t len;
} mailproto_imap_str;

/* An nstring (RFC 3501 9): NIL or a string. */
typedef struct mailproto_imap_nstr {
  int nil;
  mailproto_imap_str str; /* data NULL and len 0 for NIL */
} mailproto_imap_nstr;

/* System flags as bits: the same values as store.h's MAILPROTO_FLAG_*. */
#define MAILPROTO_IMAP_FLAG_SEEN 0x01u
#define MAILPROTO_IMAP_FLAG_ANSWERED 0x02u
#define MAILPROTO_IMAP_FLAG_FLAGGED 0x04u
#define MAILPROTO_IMAP_FLAG_DELETED 0x08u
#define MAILPROTO_IMAP_FLAG_DRAFT 0x10u

/* A flag list (RFC 3501 9 "flag-list", or STORE's flags without
 * parentheses). "\Recent" and unknown "\..." flags are refused (RFC 9051 9
 * "flag": a client may not set them); keywords are atoms, kept in the
 * client's spelling, in order, duplicates included. */
typedef struct mailproto_imap_flags {
  unsigned system; /* MAILPROTO_IMAP_FLAG_* */
  unsigned keyword_count;
  mailproto_imap_str *keywords;
} mailproto_imap_flags;

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

typedef enum mailproto_imap_cmd {
  MAILPROTO_IMAP_CMD_NONE = 0, /* not read (no command name, or unknown) */
  /* any state */
  MAILPROTO_IMAP_CMD_CAPABILITY,
  MAILPROTO_IMAP_CMD_NOOP,
  MAILPROTO_IMAP_CMD_LOGOUT,
  MAILPROTO_IMAP_CMD_ID,
  /* not authenticated */
  MAILPROTO_IMAP_CMD_STARTTLS,
  MAILPROTO_IMAP_CMD_AUTHENTICATE,
  MAILPROTO_IMAP_CMD_LOGIN,
  /* authenticated */
  MAILPROTO_IMAP_CMD_ENABLE,
  MAILPROTO_IMAP_CMD_SELECT,
  MAILPROTO_IMAP_CMD_EXAMINE,
  MAILPROTO_IMAP_CMD_CREATE,
  MAILPROTO_IMAP_CMD_DELETE,
  MAILPROTO_IMAP_CMD_RENAME,
  MAILPROTO_IMAP_CMD_SUBSCRIBE,
  MAILPROTO_IMAP_CMD_UNSUBSCRIBE,
  MAILPROTO_IMAP_CMD_LIST,
  MAILPROTO_IMAP_CMD_LSUB,
  MAILPROTO_IMAP_CMD_NAMESPACE,
  MAILPROTO_IMAP_CMD_STATUS,
  MAILPROTO_IMAP_CMD_APPEND,
  MAILPROTO_IMAP_CMD_IDLE,
  /* selected */
  MAILPROTO_IMAP_CMD_CHECK,
  MAILPROTO_IMAP_CMD_CLOSE,
  MAILPROTO_IMAP_CMD_UNSELECT,
  MAILPROTO_IMAP_CMD_EXPUNGE, /* "UID EXPUNGE" has uid = 1 and a set */
  MAILPROTO_IMAP_CMD_COPY,
  MAILPROTO_IMAP_CMD_MOVE,
  MAILPROTO_IMAP_CMD_FETCH,
  MAILPROTO_IMAP_CMD_STORE,
  MAILPROTO_IMAP_CMD_SEARCH,
  MAILPROTO_IMAP_CMD_SORT,
  MAILPROTO_IMAP_CMD_THREAD,
  MAILPROTO_IMAP_CMD_COUNT_ /* number of ids; not a command */
} mailproto_imap_cmd;

/* The command's name as sent on the wire ("UID" not included), or NULL. */
const char *mailproto_imap_cmd_name(mailproto_imap_cmd id);

/* --- FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5, RFC 3516, RFC 7162) --- */

typedef enum mailproto_imap_fetch_type {
  MAILPROTO_IMAP_FETCH_ENVELOPE = 1,
  MAILPROTO_IMAP_FETCH_FLAGS,
  MAILPROTO_IMAP_FETCH_INTERNALDATE,
  MAILPROTO_IMAP_FETCH_RFC822_SIZE,
  MAILPROTO_IMAP_FETCH_RFC822,        /* = BODY[] (sets \Seen) */
  MAILPROTO_IMAP_FETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER] */
  MAILPROTO_IMAP_FETCH_RFC822_TEXT,   /* = BODY[TEXT] */
  MAILPROTO_IMAP_FETCH_BODY,          /* BODY without section: structure */
  MAILPROTO_IMAP_FETCH_BODYSTRUCTURE,
  MAILPROTO_IMAP_FETCH_UID,
  MAILPROTO_IMAP_FETCH_BODY_SECTION, /* BODY[...] / BODY.PEEK[...] */
  MAILPROTO_IMAP_FETCH_BINARY,       /* BINARY[...] / BINARY.PEEK[...] */
  MAILPROTO_IMAP_FETCH_BINARY_SIZE,  /* BINARY.SIZE[...] */
  MAILPROTO_IMAP_FETCH_MODSEQ        /* RFC 7162 3.1.4 */
} mailproto_imap_fetch_type;

/* What a section names after its part numbers (RFC 3501 6.4.5). */
typedef enum mailproto_imap_section_text {
  MAILPROTO_IMAP_SECTION_ALL = 0, /* "[]" or "[1.2]": the whole part */
  MAILPROTO_IMAP_SECTION_HEADER,
  MAILPROTO_IMAP_SECTION_HEADER_FIELDS,
  MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT,
  MAILPROTO_IMAP_SECTION_TEXT,
  MAILPROTO_IMAP_SECTION_MIME /* only after part numbers */
} mailproto_imap_section_text;

typedef struct mailproto_imap_section {
  unsigned part_count; /* "1.2.3" gives 3 */
  uint32_t *parts;     /* nz-numbers */
  mailproto_imap_section_text text;
  unsigned field_count; /* HEADER.FIELDS[.NOT]: header names (astrings) */
  mailproto_imap_str *fields;
} mailproto_imap_section;

typedef struct mailproto_imap_fetch_item {
  mailproto_imap_fetch_type type;
  int peek;                       /* BODY.PEEK / BINARY.PEEK */
  mailproto_imap_section section; /* BODY_SECTION, BINARY, BINARY_SIZE */
  int has_partial;                /* "<offset.length>" */
  uint64_t partial_offset;
  uint64_t partial_length; /* nz-number64 */
} mailproto_imap_fetch_item;

typedef enum mailproto_imap_fetch_macro {
  MAILPROTO_IMAP_MACRO_NONE = 0,
  MAILPROTO_IMAP_MACRO_ALL,  /* FLAGS INTERNALDATE RFC822.SIZE ENVELOPE */
  MAILPROTO_IMAP_MACRO_FAST, /* FLAGS INTERNALDATE RFC822.SIZE */
  MAILPROTO_IMAP_MACRO_FULL  /* ALL + BODY */
} mailproto_imap_fetch_macro;

typedef struct mailproto_imap_fetch {
  mailproto_imap_seqset set;
  /* A macro is expanded into `items` and remembered here. */
  mailproto_imap_fetch_macro macro;
  int list; /* the items were in parentheses */
  unsigned item_count;
  mailproto_imap_fetch_item *items;
  int has_changedsince; /* RFC 7162 3.1.4.1 */
  uint64_t changedsince;
  int vanished; /* RFC 7162 3.2.6, UID FETCH only */
} mailproto_imap_fetch;

/* --- STORE (RFC 3501 6.4.6, RFC 7162 3.1.3) --- */

typedef enum mailproto_imap_store_op {
  MAILPROTO_IMAP_STORE_REPLACE = 0, /* FLAGS */
  MAILPROTO_IMAP_STORE_ADD,         /* +FLAGS */
  MAILPROTO_IMAP_STORE_REMOVE       /* -FLAGS */
} mailproto_imap_store_op;

typedef struct mailproto_imap_store {
  mailproto_imap_seqset set;
  int has_unchangedsince;
  uint64_t unchangedsince;
  mailproto_imap_store_op op;
  int silent;
  int list; /* the flags were in parentheses */
  mailproto_imap_flags flags;
} mailproto_imap_store;

/* --- SEARCH keys (RFC 3501 6.4.4, RFC 9051 6.4.4, RFC 7162 3.1.5) --- */

typedef enum mailproto_imap_search_type {
  MAILPROTO_IMAP_SEARCH_AND = 1, /* "(k1 k2 ...)" and the top-level list */
  MAILPROTO_IMAP_SEARCH_OR,      /* two children */
  MAILPROTO_IMAP_SEARCH_NOT,     /* one child */
  MAILPROTO_IMAP_SEARCH_SEQSET,  /* a bare sequence set */
  MAILPROTO_IMAP_SEARCH_UID,     /* UID sequence-set */
  MAILPROTO_IMAP_SEARCH_ALL,
  /* flags */
  MAILPROTO_IMAP_SEARCH_ANSWERED,
  MAILPROTO_IMAP_SEARCH_DELETED,
  MAILPROTO_IMAP_SEARCH_DRAFT,
  MAILPROTO_IMAP_SEARCH_FLAGGED,
  MAILPROTO_IMAP_SEARCH_SEEN,
  MAILPROTO_IMAP_SEARCH_RECENT,
  MAILPROTO_IMAP_SEARCH_NEW, /* RECENT UNSEEN */
  MAILPROTO_IMAP_SEARCH_OLD, /* NOT RECENT */
  MAILPROTO_IMAP_SEARCH_UNANSWERED,
  MAILPROTO_IMAP_SEARCH_UNDELETED,
  MAILPROTO_IMAP_SEARCH_UNDRAFT,
  MAILPROTO_IMAP_SEARCH_UNFLAGGED,
  MAILPROTO_IMAP_SEARCH_UNSEEN,
  MAILPROTO_IMAP_SEARCH_KEYWORD,   /* str: the keyword */
  MAILPROTO_IMAP_SEARCH_UNKEYWORD, /* str */
  /* strings (str) */
  MAILPROTO_IMAP_SEARCH_BCC,
  MAILPROTO_IMAP_SEARCH_BODY,
  MAILPROTO_IMAP_SEARCH_CC,
  MAILPROTO_IMAP_SEARCH_FROM,
  MAILPROTO_IMAP_SEARCH_SUBJECT,
  MAILPROTO_IMAP_SEARCH_TEXT,
  MAILPROTO_IMAP_SEARCH_TO,
  MAILPROTO_IMAP_SEARCH_HEADER, /* field and str */
  /* dates (date: midnight UTC of the day, RFC 3501 "date") */
  MAILPROTO_IMAP_SEARCH_BEFORE,
  MAILPROTO_IMAP_SEARCH_ON,
  MAILPROTO_IMAP_SEARCH_SINCE,
  MAILPROTO_IMAP_SEARCH_SENTBEFORE,
  MAILPROTO_IMAP_SEARCH_SENTON,
  MAILPROTO_IMAP_SEARCH_SENTSINCE,
  /* sizes (number) */
  MAILPROTO_IMAP_SEARCH_LARGER,
  MAILPROTO_IMAP_SEARCH_SMALLER,
  /* RFC 7162 3.1.5: number is the mod-sequence; str the optional entry
   * name ("/flags/\\Seen"), entry_type "priv", "shared" or "all" */
  MAILPROTO_IMAP_SEARCH_MODSEQ
} mailproto_imap_search_type;

typedef struct mailproto_imap_search_key mailproto_imap_search_key;
struct mailproto_imap_search_key {
  mailproto_imap_search_type type;
  mailproto_imap_search_key *next;     /* next sibling in an AND list */
  mailproto_imap_search_key *children; /* AND: first; NOT: the one; OR: the
                                          first, whose next is the second */
  mailproto_imap_str str;
  mailproto_imap_str field;      /* HEADER */
  int64_t date;                  /* seconds since the epoch */
  uint64_t number;               /* LARGER, SMALLER, MODSEQ */
  mailproto_imap_str entry_type; /* MODSEQ */
  mailproto_imap_seqset set;     /* SEQSET, UID */
};

/* ESEARCH return options (RFC 4731 3.1, RFC 5182 2). */
#define MAILPROTO_IMAP_RETURN_MIN 0x1u
#define MAILPROTO_IMAP_RETURN_MAX 0x2u
#define MAILPROTO_IMAP_RETURN_ALL 0x4u
#define MAILPROTO_IMAP_RETURN_COUNT 0x8u
#define MAILPROTO_IMAP_RETURN_SAVE 0x10u

typedef struct mailproto_imap_search {
  int has_return;       /* "RETURN (...)" was given (maybe empty) */
  unsigned return_opts; /* MAILPROTO_IMAP_RETURN_*; "RETURN ()" = ALL */
  int has_charset;
  mailproto_imap_str charset;
  mailproto_imap_search_key *key; /* an AND node over the keys */
} mailproto_imap_search;

/* SORT (RFC 5256 3) */
typedef enum mailproto_imap_sort_key {
  MAILPROTO_IMAP_SORT_ARRIVAL = 1,
  MAILPROTO_IMAP_SORT_CC,
  MAILPROTO_IMAP_SORT_DATE,
  MAILPROTO_IMAP_SORT_FROM,
  MAILPROTO_IMAP_SORT_SIZE,
  MAILPROTO_IMAP_SORT_SUBJECT,
  MAILPROTO_IMAP_SORT_TO
} mailproto_imap_sort_key;

typedef struct mailproto_imap_sort_criterion {
  mailproto_imap_sort_key key;
  int reverse;
} mailproto_imap_sort_criterion;

typedef struct mailproto_imap_sort {
  unsigned criteria_count;
  mailproto_imap_sort_criterion *criteria;
  mailproto_imap_str charset;
  mailproto_imap_search_key *key; /* AND node */
} mailproto_imap_sort;

typedef enum mailproto_imap_thread_alg {
  MAILPROTO_IMAP_THREAD_ORDEREDSUBJECT = 1,
  MAILPROTO_IMAP_THREAD_REFERENCES
} mailproto_imap_thread_alg;

typedef struct mailproto_imap_thread {
  mailproto_imap_thread_alg algorithm;
  mailproto_imap_str charset;
  mailproto_imap_search_key *key; /* AND node */
} mailproto_imap_thread;

/* --- LIST (RFC 3501 6.3.8, RFC 5258, RFC 5819, RFC 6154) --- */

#define MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED 0x1u
#define MAILPROTO_IMAP_LIST_SEL_REMOTE 0x2u
#define MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH 0x4u
#define MAILPROTO_IMAP_LIST_SEL_SPECIAL_USE 0x8u

#define MAILPROTO_IMAP_LIST_RET_SUBSCRIBED 0x1u
#define MAILPROTO_IMAP_LIST_RET_CHILDREN 0x2u
#define MAILPROTO_IMAP_LIST_RET_STATUS 0x4u
#define MAILPROTO_IMAP_LIST_RET_SPECIAL_USE 0x8u

/* STATUS items (RFC 3501 6.3.10, RFC 9051 6.3.11, RFC 7889, RFC 7162) */
#define MAILPROTO_IMAP_STATUS_MESSAGES 0x01u
#define MAILPROTO_IMAP_STATUS_RECENT 0x02u
#define MAILPROTO_IMAP_STATUS_UIDNEXT 0x04u
#define MAILPROTO_IMAP_STATUS_UIDVALIDITY 0x08u
#define MAILPROTO_IMAP_STATUS_UNSEEN 0x10u
#define MAILPROTO_IMAP_STATUS_SIZE 0x20u
#define MAILPROTO_IMAP_STATUS_DELETED 0x40u
#define MAILPROTO_IMAP_STATUS_APPENDLIMIT 0x80u
#define MAILPROTO_IMAP_STATUS_HIGHESTMODSEQ 0x100u

typedef struct mailproto_imap_list {
  /* The command used LIST-EXTENDED syntax (selection options, several
   * patterns, or return options): RFC 5258 3 changes the replies. */
  int extended;
  unsigned select_opts; /* MAILPROTO_IMAP_LIST_SEL_* */
  int has_return;
  unsigned return_opts;  /* MAILPROTO_IMAP_LIST_RET_* */
  unsigned status_items; /* RETURN (STATUS (...)), RFC 5819 */
  mailproto_imap_str reference;
  unsigned pattern_count; /* >= 1; LSUB has exactly one */
  mailproto_imap_str *patterns;
} mailproto_imap_list;

/* --- APPEND (RFC 3501 6.3.11, RFC 3502, RFC 3516 4.4) --- */

typedef struct mailproto_imap_append_message {
  int has_flags;
  mailproto_imap_flags flags;
  int has_date;
  mailproto_datetime date;
  uint64_t size; /* the message literal's size */
  int sync;      /* "{n}": needs "+ ..." */
  int binary;    /* "~{n}" */
  /* The message bytes when the whole command was parsed (the literal was
   * accepted inline); NULL after mailproto_imap_parse_append_start/next,
   * whose message is streamed. */
  const uint8_t *data;
} mailproto_imap_append_message;

typedef struct mailproto_imap_append {
  mailproto_imap_str mailbox;
  unsigned message_count; /* >= 1 (MULTIAPPEND: more) */
  mailproto_imap_append_message *messages;
} mailproto_imap_append;

/* --- the rest --- */

/* Special-use attributes (RFC 6154): store.h's MAILPROTO_MBOX_SPECIAL_*
 * bits. */

typedef struct mailproto_imap_select {
  mailproto_imap_str mailbox;
  int condstore; /* (CONDSTORE), RFC 7162 3.1.8 */
  int qresync;   /* (QRESYNC (...)), RFC 7162 3.2.5 */
  uint32_t uidvalidity;
  uint64_t modseq;
  int has_known_uids;
  mailproto_imap_seqset known_uids;
  int has_seq_match;
  mailproto_imap_seqset known_seqs; /* seq-match-data */
  mailproto_imap_seqset known_seq_uids;
} mailproto_imap_select;

typedef struct mailproto_imap_id_param {
  mailproto_imap_str field;
  mailproto_imap_nstr value;
} mailproto_imap_id_param;

typedef struct mailproto_imap_command {
  mailproto_imap_str tag;
  mailproto_imap_cmd id;
  int uid; /* the UID prefix (COPY, MOVE, FETCH, STORE, SEARCH, SORT,
              THREAD, EXPUNGE) */
  union {
    struct {
      mailproto_imap_str user;
      mailproto_imap_str password;
    } login;
    struct {
      mailproto_imap_str mechanism; /* an atom, as sent */
      int has_initial;              /* SASL-IR (RFC 4959) */
      /* base64 as sent (syntax checked, not decoded); "=" gives "" */
      mailproto_imap_str initial;
    } authenticate;
    mailproto_imap_select select; /* SELECT, EXAMINE */
    struct {
      mailproto_imap_str mailbox;
      unsigned use; /* (USE (...)), RFC 6154 3: MAILPROTO_MBOX_SPECIAL_* */
      /* USE attributes this parser does not know (the reply is then
       * "NO [USEATTR]", RFC 6154 3) */
      unsigned use_unknown;
    } create;
    /* DELETE, SUBSCRIBE, UNSUBSCRIBE */
    struct {
      mailproto_imap_str mailbox;
    } mailbox;
    struct {
      mailproto_imap_str from;
      mailproto_imap_str to;
    } rename;
    mailproto_imap_list list; /* LIST, LSUB */
    struct {
      mailproto_imap_str mailbox;
      unsigned items; /* MAILPROTO_IMAP_STATUS_* */
    } status;
    mailproto_imap_append append;
    struct {
      unsigned count;
      mailproto_imap_str *capabilities; /* atoms as sent */
    } enable;
    struct {
      int nil; /* "ID NIL" */
      unsigned count;
      mailproto_imap_id_param *params;
    } id;
    struct {
      mailproto_imap_seqset set;
      mailproto_imap_str mailbox;
    } copy; /* COPY, MOVE */
    mailproto_imap_fetch fetch;
    mailproto_imap_store store;
    mailproto_imap_search search;
    mailproto_imap_sort sort;
    mailproto_imap_thread thread;
    struct {
      mailproto_imap_seqset set; /* UID EXPUNGE only */
    } expunge;
  } u;
} mailproto_imap_command;

/* ------------------------------------------------------------------ */
/* The parser object                                                   */
/* ------------------------------------------------------------------ */

typedef struct mailproto_imap_parser_limits {
  unsigned max_nesting;         /* parenthesis depth: 32 (see above) */
  unsigned max_sequence_ranges; /* ranges in one set: 1000 */
  size_t max_memory;            /* arena bytes for one command: 1 MiB */
} mailproto_imap_parser_limits;

typedef struct mailproto_imap_arena_block mailproto_imap_arena_block;

typedef struct mailproto_imap_parser {
  const mailproto_allocator *alloc;
  mailproto_imap_parser_limits limits;
  mailproto_imap_arena_block *blocks; /* first block kept between parses */
  mailproto_imap_arena_block *cur;    /* the block being filled */
  size_t used;                        /* arena bytes handed out */
  const char *error;                  /* text of the last failure */
  int utf8;                           /* UTF8=ACCEPT / IMAP4rev2 */
} mailproto_imap_parser;

/* Prepares a parser; allocates nothing. NULL limits: the defaults. */
void mailproto_imap_parser_init(mailproto_imap_parser *p,
                                const mailproto_allocator *alloc,
                                const mailproto_imap_parser_limits *limits);
/* Frees the arena; every result of this parser becomes invalid. */
void mailproto_imap_parser_free(mailproto_imap_parser *p);
/* Releases the arena's memory beyond one small block (an idle session). */
void mailproto_imap_parser_trim(mailproto_imap_parser *p);
/* Bytes the arena holds. */
size_t mailproto_imap_parser_memory(const mailproto_imap_parser *p);

/* After ENABLE UTF8=ACCEPT or IMAP4rev2 (RFC 6855 3, RFC 9051): the
 * parser then reads a quoted string's 8-bit bytes as UTF-8 and refuses
 * malformed UTF-8 in them. Without it, 8-bit bytes in quoted strings are
 * passed through as they are (many clients send them; the session checks
 * mailbox names through the modified UTF-7 decoder, which refuses them). */
void mailproto_imap_parser_set_utf8(mailproto_imap_parser *p, int on);

/*
 * Parses one complete command (a COMMAND event's data). On success
 * returns 0 and fills *cmd; the result points into `data` and the arena
 * and stays valid until the next parse, trim or free on this parser (the
 * caller keeps `data` alive as long as it uses the result). On failure
 * returns MAILPROTO_ERR_SYNTAX or MAILPROTO_ERR_TOO_LONG with the text in
 * mailproto_imap_parser_error(), or NOMEM; cmd->tag and cmd->id are set
 * as far as they were read (tag.len 0: none; id NONE: unknown command).
 *
 * Texts of failures (the session replies "tag BAD <text>"):
 *   "Missing tag", "Invalid tag", "Missing command", "Unknown command",
 *   "Command does not take UID", "Missing argument", "Extra arguments",
 *   "Invalid syntax" (a wrong separator), "Invalid sequence set",
 *   "Too many sequence ranges", "Invalid flag", "Invalid mailbox name",
 *   "Invalid string", "NUL in string", "Invalid UTF-8 in string",
 *   "Invalid literal", "Invalid number", "Invalid date", "Invalid fetch
 *   item", "Invalid section", "Invalid store item", "Invalid search key",
 *   "Invalid status item", "Invalid list option", "Invalid return
 *   option", "Invalid parameter", "Invalid sort criterion", "Unknown
 *   thread algorithm", "Invalid base64", "Too deeply nested" and
 *   "Command too complex" (TOO_LONG), "Out of memory" (NOMEM).
 */
int mailproto_imap_parse(mailproto_imap_parser *p, const uint8_t *data,
                         size_t len, mailproto_imap_command *cmd);

/* Text of the last failure of this parser (static; "" if none). */
const char *mailproto_imap_parser_error(const mailproto_imap_parser *p);

/*
 * APPEND with streamed messages. At a LITERAL event, parse the command so
 * far (which ends with the literal header):
 *
 * mailproto_imap_parse_append_start() returns
 *   1  the trailing literal is the message: cmd->id is APPEND and
 *      cmd->u.append holds the mailbox and the messages so far; the
 *      last, messages[message_count - 1], is the one whose literal ends
 *      the data (flags, date, size, sync, binary; data NULL): stream it.
 *      Earlier entries (only if the caller accepted message literals
 *      inline) carry their data.
 *   0  the command is not an APPEND whose message starts here: either
 *      another command or an APPEND argument (a literal mailbox name):
 *      handle the literal as any other (accept it within limits).
 *   MAILPROTO_ERR_SYNTAX / TOO_LONG / NOMEM as mailproto_imap_parse (the
 *      APPEND is malformed before its message: reject the literal and
 *      reply BAD).
 *
 * After the message's RAW_END, the next LITERAL or COMMAND event (with
 * `continued` set) holds the rest of the command; pass it to
 * mailproto_imap_parse_append_next() with `final` set for a COMMAND event:
 *   1  (LITERAL event) another message follows (MULTIAPPEND, RFC 3502):
 *      the last of cmd->u.append.messages describes it; the mailbox and
 *      tag are not repeated (the caller keeps them from the start).
 *   0  (COMMAND event) the command ends here, correctly.
 *   MAILPROTO_ERR_SYNTAX etc.: malformed; reject / reply BAD.
 */
int mailproto_imap_parse_append_start(mailproto_imap_parser *p,
                                      const uint8_t *data, size_t len,
                                      mailproto_imap_command *cmd);
int mailproto_imap_parse_append_next(mailproto_imap_parser *p,
                                     const uint8_t *data, size_t len, int final,
                                     mailproto_imap_command *cmd);

/* ------------------------------------------------------------------ */
/* Small helpers the session shares                                    */
/* ------------------------------------------------------------------ */

/* RFC 3501 9 ATOM-CHAR: any CHAR except atom-specials. */
int mailproto_imap_is_atom_char(unsigned char ch);
/* ASTRING-CHAR: ATOM-CHAR or "]". */
int mailproto_imap_is_astring_char(unsigned char ch);
/* 1 if [s, s + len) is a non-empty atom (RFC 3501 9 "atom"). */
int mailproto_imap_is_atom(const char *s, size_t len);
/* 1 if [data, data + len) is UTF-8 as RFC 3629 defines it (no overlong
 * forms, no surrogates, nothing above U+10FFFF). */
int mailproto_imap_is_utf8(const void *data, size_t len);
/* 1 if [s, s + len) is "INBOX" in any case (RFC 3501 5.1). */
int mailproto_imap_is_inbox(const char *s, size_t len);

#endif
