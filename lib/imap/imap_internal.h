/*
 * The inside of an IMAP session, shared by the imap_*.c session files:
 *   imap_session.c  the contract (new, start, feed, writable, sync,
 *                   queries, free), the feed loop over the command reader,
 *                   literal decisions, dispatch, the command pipeline
 *                   (work, sync, announcements, tagged reply), output
 *                   helpers, the op sink, the store error table
 *   imap_auth.c     LOGIN, AUTHENTICATE (SASL-IR), STARTTLS, the login
 *                   that follows them, the greeting's connect policy
 *   imap_mailbox.c  CAPABILITY, ID, ENABLE, NAMESPACE, SELECT/EXAMINE,
 *                   CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB,
 *                   STATUS, mailbox name conversion
 *   imap_append.c   APPEND: the message literal streamed to the store
 *   imap_message.c  FETCH (non-MIME items), STORE, COPY, MOVE, EXPUNGE,
 *                   CLOSE, UNSELECT, CHECK
 *   imap_fetch_mime.c  FETCH items built on the MIME structure: ENVELOPE,
 *                   BODY, BODYSTRUCTURE, BODY[section], BINARY[...],
 *                   BINARY.SIZE
 *   imap_mime_tree.c   the parsed MIME tree of one message, from the
 *                   store's cache or by one streamed parse
 *   imap_idle.c     IDLE and its keep-alive
 *   imap_update.c   the store's sync, what it reports (view and message
 *                   sizes and dates), the untagged EXISTS/EXPUNGE/FETCH
 *                   announcements
 *
 * A command runs through phases (enum imap_phase): its own work (store
 * operations and output produced as the transport drains), a sync of the
 * selected mailbox, the announcements RFC 3501 7.4.1 allows after it, and
 * the tagged reply, which is decided during the work and kept in
 * s->tagged until its turn. Commands never overlap: while one runs, no
 * further input is read (RFC 3501 5.5 lets a server run them in order).
 */
#ifndef MAILPROTO_IMAP_INTERNAL_H
#define MAILPROTO_IMAP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "core/reply.h"
#include "core/sasl.h"
#include "core/session.h"
#include "imap/imap_parser.h"
#include "imap/imap_reader.h"
#include "imap/imap_view.h"
#include "imap/imap_writer.h"
#include "mailproto/imap.h"
#include "mime/mime_imap.h"

/* Room above the output watermark for the longest piece written at once
 * (a tagged reply with COPYUID, a FETCH line with 64 keywords, a LIST
 * line): output is produced only below the watermark, so the queue never
 * holds more than watermark + slack. */
#define IMAP_REPLY_SLACK (128u * 1024u)
/* Before login every literal is small (LOGIN's and AUTHENTICATE's
 * arguments), so "{4294967295}" costs nothing and a stranger cannot make
 * the session buffer much. */
#define IMAP_UNAUTH_LITERAL 4096u
#define IMAP_UNAUTH_COMMAND 16384u
/* Longest configured greeting or ID name. */
#define IMAP_TEXT_MAX 200u
/* Longest policy text kept for a NO reply. */
#define IMAP_POLICY_TEXT_MAX 400u
/* Store reads while a message literal is sent: at most this much at once
 * (and never more than the output watermark). */
#define IMAP_READ_CHUNK (64u * 1024u)

enum imap_state {
  IMAP_GREETING, /* not started, or the connect callback is deferred */
  IMAP_NOT_AUTH, /* RFC 3501 3.1 */
  IMAP_AUTH,     /* RFC 3501 3.2 */
  IMAP_SELECTED, /* RFC 3501 3.3 */
  IMAP_LOGOUT    /* RFC 3501 3.4: the last responses are being flushed */
};

/* Where the command in progress is (see the top). */
enum imap_phase {
  IMAP_PHASE_NONE = 0, /* no command: read the next one */
  IMAP_PHASE_WORK,     /* the command's own steps (mailproto_imap_work) */
  IMAP_PHASE_INPUT,    /* waiting for client input: a SASL response,
                          IDLE's DONE, APPEND message data */
  IMAP_PHASE_SYNC,     /* sync the selected mailbox before replying */
  IMAP_PHASE_ANNOUNCE, /* untagged EXPUNGE/EXISTS/FLAGS/FETCH */
  IMAP_PHASE_TAGGED    /* send s->tagged; the command is over */
};

/* What the embedded op is doing (op.kind). */
enum imap_op_kind {
  IMAP_OP_CONNECT = 1,   /* policy: connect callback */
  IMAP_OP_AUTHENTICATE,  /* store: LOGIN, PLAIN, LOGIN-SASL */
  IMAP_OP_LOOKUP_SECRET, /* store: CRAM-MD5 */
  IMAP_OP_AUTH_POLICY,   /* policy: auth callback */
  IMAP_OP_OPEN,          /* store: SELECT/EXAMINE */
  IMAP_OP_SELECT_LIST,   /* store: the LIST line of an IMAP4rev2 SELECT */
  IMAP_OP_SYNC,          /* store: changes of the selected mailbox */
  IMAP_OP_LIST,          /* store: LIST, LSUB */
  IMAP_OP_LIST_STATUS,   /* store: RETURN (STATUS ...) of LIST */
  IMAP_OP_CREATE,
  IMAP_OP_DELETE,
  IMAP_OP_RENAME,
  IMAP_OP_SUBSCRIBE,
  IMAP_OP_STATUS,
  IMAP_OP_APPEND_BEGIN,
  IMAP_OP_WRITE,
  IMAP_OP_APPEND_COMMIT,
  IMAP_OP_READ,       /* store: FETCH body data */
  IMAP_OP_SET_FLAGS,  /* store: STORE, and \Seen of FETCH */
  IMAP_OP_EXPUNGE,    /* store: EXPUNGE, UID EXPUNGE, CLOSE */
  IMAP_OP_COPY,       /* store: COPY, MOVE */
  IMAP_OP_SEARCH_READ /* store: message text for SEARCH, SORT, THREAD */
};

/* Sizes and internal dates of the selected mailbox's messages, which
 * FETCH needs and the view does not keep: 16 bytes per message, sorted
 * by UID (the store reports UIDs in ascending order). Expunged entries
 * are marked and dropped in bulk.
 * When the store has the message_get hook it answers instead, and the
 * table holds only messages a sync reported expunged whose EXPUNGE is not
 * out yet (the store forgets them at its next sync; RFC 2180 4.1 lets the
 * client still fetch their size and date): `pending` lists those the
 * running sync reported, looked up when it is done. */
typedef struct imap_meta_entry {
  uint32_t uid;
  uint32_t size; /* RFC822.SIZE; UINT32_MAX: see `big` */
  /* ((utc * 4096) + (zone minutes + 2048)) * 2 + canonical, where
   * canonical says the stored bytes are the RFC822 bytes (size equals
   * stored_size: every line ends in CRLF and no bare CR/LF remains). */
  int64_t date;
} imap_meta_entry;

typedef struct imap_meta_big {
  uint32_t uid;
  uint64_t size;
} imap_meta_big;

typedef struct imap_meta {
  imap_meta_entry *e;
  size_t n, cap;
  size_t dead; /* entries whose UID was expunged (size 0, uid kept) */
  imap_meta_big *big;
  size_t big_n, big_cap;
  uint32_t *pending;
  size_t pending_n, pending_cap;
} imap_meta;

/* What FETCH needs of one message. */
typedef struct imap_msg_info {
  uint64_t size;
  mailproto_datetime date;
  int canonical;
} imap_msg_info;

/* The selected mailbox. */
typedef struct imap_mailbox {
  void *handle; /* the store's open mailbox */
  char *name;   /* UTF-8 */
  mailproto_imap_view *view;
  imap_meta *meta; /* allocated when it has something to hold */
  unsigned char readonly;
  unsigned char dirty;       /* changes may wait in the store: sync soon */
  unsigned char sync_failed; /* the last sync failed (dirty stays set) */
  unsigned char nomodseq;    /* the store keeps no mod-sequences for it */
} imap_mailbox;

/* Where the announcements after a command are. */
enum imap_announce {
  IMAP_ANN_VANISHED_EARLIER = 0, /* QRESYNC SELECT (imap_vanished.c) */
  IMAP_ANN_EXPUNGE,
  IMAP_ANN_EXISTS,
  IMAP_ANN_KEYWORDS,
  IMAP_ANN_CHANGES_BEGIN,
  IMAP_ANN_CHANGES,
  IMAP_ANN_DONE
};

/* A login attempt from its command to its reply. */
typedef struct imap_login {
  void *account; /* from the store, until the login is complete */
  size_t secret_len;
  char user[MAILPROTO_SASL_FIELD_MAX + 1];
  char secret[MAILPROTO_SECRET_MAX];
} imap_login;

/* A piece of message text being sent as a literal (FETCH BODY[] and
 * friends): the RFC822 form of the stored bytes (every CR, LF or CRLF
 * sent as CRLF, NUL as 0x80) from `start` for `count` octets. */
typedef struct imap_body {
  uint64_t start, count; /* the window, in RFC822 octets */
  uint64_t pos;          /* RFC822 octets passed so far */
  uint64_t offset;       /* stored bytes read so far */
  uint64_t sent;         /* octets of the window sent */
  const uint8_t *data;   /* bytes of the last read not yet converted */
  size_t len;
  unsigned char raw; /* stored bytes are RFC822 bytes: read from `start` */
  unsigned char eof;
  unsigned char cr; /* the last stored byte was a CR (a LF next is its) */
} imap_body;

enum imap_fetch_stage {
  IMAP_FETCH_NEXT = 0, /* pick the next message */
  IMAP_FETCH_PROBE,    /* first read (or header scan) before answering */
  IMAP_FETCH_HEAD,     /* "* n FETCH (" */
  IMAP_FETCH_ITEM,     /* the next item */
  IMAP_FETCH_BODY,     /* a literal's bytes */
  IMAP_FETCH_TAIL,     /* ")" */
  IMAP_FETCH_TREE,     /* the MIME tree, before "* n FETCH (" */
  IMAP_FETCH_MIME,     /* an item of imap_fetch_mime.c (see imap_mitem) */
  IMAP_FETCH_VANISHED  /* VANISHED (EARLIER) before the messages */
};

/* Where a MIME item (imap_fetch_mime.c) is. */
enum imap_mitem_stage {
  IMAP_MITEM_STAT = 0, /* one pass over the data to learn its size */
  IMAP_MITEM_NAME,     /* its name and the literal's "{n}" */
  IMAP_MITEM_STREAM,   /* the literal's bytes, read and transformed */
  IMAP_MITEM_DATA      /* a structure held in `data`, drained to output */
};

/* A MIME item being answered. The stream points into itself: it lives
 * here, in place, from init to finish. */
typedef struct imap_mitem {
  unsigned char stage;  /* enum imap_mitem_stage */
  unsigned char binary; /* BINARY / BINARY.SIZE: decode the part */
  unsigned char lit8;   /* sent as literal8 "~{n}" (NUL in the data) */
  mailproto_mime_range range;
  uint64_t off, end; /* stored bytes [off, end) still to read */
  uint64_t size;     /* the literal's octets */
  uint64_t sent;     /* octets of it written */
  mailproto_mime_stat stat;
  mailproto_mime_stream stream;
  mailproto_buf data; /* ENVELOPE, BODY, BODYSTRUCTURE text */
  size_t data_pos;
} imap_mitem;

/* FETCH in progress. */
typedef struct imap_fetch {
  mailproto_imap_view_iter it;
  uint32_t index; /* the message being answered */
  uint32_t uid;
  unsigned item;             /* its next item */
  int probe_item;            /* the item whose stream the probe began, or -1 */
  unsigned char stage;       /* enum imap_fetch_stage */
  unsigned char first;       /* no item written yet for this message */
  unsigned char add_flags;   /* \Seen was set: FLAGS goes out too */
  unsigned char set_seen;    /* non-PEEK body items on a writable box */
  unsigned char need_body;   /* some items are message text */
  unsigned char need_header; /* HEADER/TEXT items: header length needed */
  unsigned char has_uid;     /* UID is among the items */
  unsigned char has_flags;   /* FLAGS is among the items */
  unsigned char has_modseq;  /* MODSEQ is among the items */
  unsigned char need_meta;   /* an item needs the size or internal date */
  unsigned char skipped;     /* some messages could not be read */
  unsigned char need_tree;   /* some items need the MIME structure */
  int skip_code;             /* why (a store error) */
  /* Messages left out whose \Seen this command set: taken back at the
   * end (imap_message.c fetch_finish). */
  mailproto_uid_range *unseen;
  size_t unseen_n, unseen_cap;
  unsigned char unseen_nomem;
  uint64_t header_len; /* RFC822 octets of the header, blank line
                          included */
  imap_msg_info info;
  imap_body body;
  /* The header scan: RFC822 octets passed, stored bytes read, at a line
   * start, after a CR. */
  uint64_t scan_pos, scan_offset;
  unsigned char scan_line_start, scan_cr;
  /* A read's results (stable while it is deferred). */
  const uint8_t *read_data;
  size_t read_len;
  imap_mitem *m; /* the MIME item in progress (allocated on first use) */
} imap_fetch;

/* One mailbox a LIST gathered. */
typedef struct imap_list_entry {
  char *name; /* UTF-8 */
  unsigned attributes;
  unsigned char childinfo; /* RECURSIVEMATCH: a subscribed child matched */
  unsigned char matched;   /* the name itself matches a pattern */
} imap_list_entry;

typedef struct imap_list {
  char **patterns; /* reference + pattern, UTF-8; NULL: matches nothing */
  unsigned pattern_slots;
  imap_list_entry *e;
  size_t n, cap;
  unsigned char gathered;   /* the store has answered every call */
  size_t pos;               /* next entry to answer */
  unsigned pattern;         /* next pattern to ask the store about */
  unsigned char pass;       /* RECURSIVEMATCH: 0 all mailboxes, 1 subscribed */
  unsigned char status_due; /* the entry at pos-1 still needs STATUS */
  mailproto_mailbox_status status;
} imap_list;

/* One run of COPYUID: source UIDs first.. map to dest first.. */
typedef struct imap_uid_run {
  uint32_t src, dst, len;
} imap_uid_run;

/* APPEND in progress. */
typedef struct imap_append {
  void *writer;
  char *mailbox; /* UTF-8 */
  char **keywords;
  size_t keyword_count;
  mailproto_append_info info;
  mailproto_datetime date;
  uint64_t size;     /* the message literal's size */
  uint64_t received; /* bytes of it received */
  int failed;        /* a store error while writing, or NUL: reply NO/BAD */
  int nul;           /* a NUL in a non-binary literal */
  unsigned char binary;
  unsigned char sync;   /* "{n}": "+" goes out once the writer exists */
  unsigned char at_end; /* the literal is complete */
  uint32_t uidvalidity, uid;
} imap_append;

struct mailproto_imap {
  mailproto_allocator alloc;
  mailproto_imap_config config; /* strings point into `strings` */
  char *strings;
  mailproto_imap_callbacks cb;
  mailproto_store store;
  void *user_data;
  char *client;

  mailproto_session_io io; /* output, op, fatal code, TLS (not its lines) */
  mailproto_imap_reader reader;
  mailproto_imap_parser parser;
  mailproto_buf cmdbuf; /* the command being run, copied from the reader */
  mailproto_imap_command cmd;
  mailproto_buf tag;    /* its tag, NUL-terminated */
  mailproto_buf line;   /* one response being built */
  mailproto_buf tagged; /* the tagged reply waiting for its turn */

  enum imap_state state;
  enum imap_phase phase;
  enum imap_announce announce;
  unsigned errors;
  unsigned auth_failures;
  uint64_t challenges;
  unsigned char rev2;         /* ENABLE IMAP4rev2 (RFC 9051) */
  unsigned char utf8;         /* ENABLE UTF8=ACCEPT or IMAP4rev2 (RFC 6855) */
  unsigned char expunge_ok;   /* EXPUNGE may be announced after this command */
  unsigned char must_sync;    /* sync even when not dirty */
  unsigned char uid_fetch;    /* announcements carry UID (UID commands) */
  unsigned char condstore;    /* a CONDSTORE enabling command was seen */
  unsigned char qresync;      /* ENABLE QRESYNC: VANISHED, not EXPUNGE */
  unsigned char removed_sent; /* this command announced an expunge */
  /* EXPUNGE, MOVE: the text of an OK that gets HIGHESTMODSEQ when the
   * command removed something (imap_session.c); NULL: none. */
  const char *modseq_ok;
  unsigned char closing; /* LOGOUT or BYE: close after the reply */
  unsigned char idle;    /* IDLE: 1 before "+", 2 idling, 3 DONE read */
  unsigned char tls_go;  /* STARTTLS answered OK: begin TLS after it */

  /* login */
  mailproto_sasl *sasl;
  imap_login *login;
  mailproto_reply reply; /* a policy callback's reply */
  void *account;
  char *user;

  imap_mailbox sel;

  /* the command's own state */
  mailproto_imap_range *spans; /* resolved message set */
  size_t span_count;
  mailproto_uid_range *uids; /* the same as UID ranges for the store */
  size_t uid_count;
  const char **keywords; /* STORE's keywords as C strings */
  mailproto_mailbox_status status;
  uint32_t dest_uidvalidity;
  imap_uid_run *runs; /* COPYUID */
  size_t run_count, run_cap;
  int runs_overflow;
  struct imap_vanished *vanished; /* VANISHED (EARLIER) being written */
  uint32_t *modified;             /* UIDs that failed STORE's UNCHANGEDSINCE */
  size_t modified_count, modified_cap;
  /* FETCH, LIST/LSUB and APPEND state: allocated while one runs, so an
   * idle session does not carry it (issue 7: 2 KiB per session). */
  imap_fetch *fetch;
  imap_list *list;
  imap_append *append;
  unsigned select_attrs; /* the LIST line of an IMAP4rev2 SELECT */
  int select_found;
  char *select_name; /* the mailbox a SELECT opens (UTF-8) */
  /* SEARCH, SORT, THREAD in progress (imap_search.c) */
  struct imap_search *search;
  /* The saved search result "$" (RFC 5182) as UID ranges, ascending and
   * disjoint; it names the same messages until they are expunged. */
  mailproto_uid_range *saved;
  size_t saved_count;
  /* The parsed MIME tree of one message (imap_mime_tree.c), allocated on
   * first use, freed after each command. */
  struct imap_tree *tree;
};

/* ---- imap_session.c: output ---- */

/* Flags for the response writer (UTF-8 after ENABLE). */
static inline unsigned mailproto_imap_wflags(const mailproto_imap *s) {
  return s->utf8 ? MAILPROTO_IMAP_WRITE_UTF8 : 0u;
}
/* Sends what s->line holds and empties it. */
int mailproto_imap_emit(mailproto_imap *s);
/* printf-style response text; the caller includes CRLF. */
int mailproto_imap_printf(mailproto_imap *s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "* <status> [<code>] <text>" */
int mailproto_imap_untagged(mailproto_imap *s, const char *status,
                            const char *code, const char *text);
/* A continuation request "+ text". */
int mailproto_imap_continue(mailproto_imap *s, const char *text);

/* ---- imap_session.c: the command pipeline ---- */

/* The command decided its tagged reply: kept until the sync and the
 * announcements after it are done. A BAD counts toward the error limit
 * (then "* BYE" follows and the session closes) and skips the sync. */
int mailproto_imap_done(mailproto_imap *s, const char *status, const char *code,
                        const char *text);
/* After done(): "* BYE <text>" follows the tagged reply and the session
 * closes (too many failed logins). */
int mailproto_imap_bye_after(mailproto_imap *s, const char *text);
/* As done() with a store error code: the response code and text of the
 * error table ("NO [NONEXISTENT] ..."); `missing` replaces NONEXISTENT
 * (APPEND, COPY, MOVE: "TRYCREATE"). Fatal codes are returned as they
 * are. */
int mailproto_imap_fail(mailproto_imap *s, int code, const char *missing);
/* A BAD that does not count toward the error limit (a cancelled
 * AUTHENTICATE). */
int mailproto_imap_done_uncounted(mailproto_imap *s, const char *status,
                                  const char *text);
/* After a store wrapper or policy call of `kind` returned `rc`: a deferred
 * op waits for its completion; anything else is handled now. */
int mailproto_imap_after_op(mailproto_imap *s, int kind, int rc);
/* Starts a policy op of `kind`: clears any previous reply. */
void mailproto_imap_policy_begin(mailproto_imap *s, int kind);
/* Closes a policy call's op bracket: a positive value other than
 * DEFERRED is CALLBACK_FAILURE. */
int mailproto_imap_policy_end(mailproto_imap *s, int rc);
/* The session ends after what is queued: closes the mailbox, releases the
 * account. */
void mailproto_imap_close(mailproto_imap *s);
/* Sets the reader's literal limits for the state (small before login). */
void mailproto_imap_set_reader_limits(mailproto_imap *s);
/* Writes "<unique.stamp@host>" for CRAM-MD5 (size >= 256). */
int mailproto_imap_challenge(mailproto_imap *s, char *out, size_t size);
/* The tag of the command in progress. */
static inline const char *mailproto_imap_tag(const mailproto_imap *s) {
  return (const char *)s->tag.data;
}

/* ---- imap_auth.c ---- */

int mailproto_imap_cmd_login(mailproto_imap *s);
int mailproto_imap_cmd_authenticate(mailproto_imap *s);
int mailproto_imap_cmd_starttls(mailproto_imap *s);
/* A SASL response line (raw-line mode). */
int mailproto_imap_sasl_line(mailproto_imap *s, const uint8_t *data, size_t len,
                             int too_long);
/* Results of the login ops (AUTHENTICATE, LOOKUP_SECRET, AUTH_POLICY). */
int mailproto_imap_auth_done(mailproto_imap *s, int kind, int rc);
/* The connect policy's verdict, then the greeting. */
int mailproto_imap_connect_done(mailproto_imap *s, int rc);
int mailproto_imap_greeting(mailproto_imap *s);
/* Forgets a SASL exchange or login attempt and its secrets. */
void mailproto_imap_auth_reset(mailproto_imap *s);

/* ---- imap_mailbox.c ---- */

/* Writes the capability list with "CAPABILITY " before it (the greeting's
 * and the login reply's response code, the CAPABILITY response) into
 * `out` with a NUL. Returns the length or BUFFER_FULL. */
#define IMAP_CAPABILITY_MAX 1024u
int mailproto_imap_capabilities(mailproto_imap *s, char *out, size_t size);
int mailproto_imap_cmd_capability(mailproto_imap *s);
int mailproto_imap_cmd_id(mailproto_imap *s);
int mailproto_imap_cmd_enable(mailproto_imap *s);
int mailproto_imap_cmd_namespace(mailproto_imap *s);
int mailproto_imap_cmd_select(mailproto_imap *s);
int mailproto_imap_cmd_create(mailproto_imap *s);
int mailproto_imap_cmd_delete(mailproto_imap *s);
int mailproto_imap_cmd_rename(mailproto_imap *s);
int mailproto_imap_cmd_subscribe(mailproto_imap *s, int on);
int mailproto_imap_cmd_list(mailproto_imap *s);
int mailproto_imap_cmd_status(mailproto_imap *s);
/* LIST's output, made as the transport drains (phase WORK). */
int mailproto_imap_list_step(mailproto_imap *s);
/* Results of the mailbox ops. */
int mailproto_imap_mailbox_done(mailproto_imap *s, int kind, int rc);
/* The op sink's mailbox report (LIST, the SELECT LIST line). */
int mailproto_imap_list_add(mailproto_imap *s, int kind,
                            const mailproto_mailbox_info *mb);
/* Frees what a LIST gathered. */
void mailproto_imap_list_free(mailproto_imap *s);
/*
 * A mailbox name from the client (the parser's decoded astring) to UTF-8
 * in a new allocation: modified UTF-7 is decoded (RFC 3501 5.1.3) unless
 * UTF-8 is enabled (RFC 6855 3); `pattern` allows the LIST wildcards.
 * Returns 0, SYNTAX (not valid modified UTF-7 or UTF-8: reply BAD),
 * BAD_NAME (not a possible name: reply NO) or NOMEM.
 */
int mailproto_imap_mailbox_name(mailproto_imap *s, const mailproto_imap_str *in,
                                int pattern, char **out);
/* Closes the selected mailbox (no expunge); back to AUTH. */
void mailproto_imap_unselect(mailproto_imap *s);

/* ---- imap_append.c ---- */

/* A LITERAL event of an APPEND command whose message literal starts here
 * (the parser said so): checks and begins the store's writer, then
 * streams or rejects the literal. */
int mailproto_imap_append_literal(mailproto_imap *s,
                                  const mailproto_imap_event *ev);
/* Message bytes (RAW events) and their end (RAW_END). */
int mailproto_imap_append_data(mailproto_imap *s, const uint8_t *data,
                               size_t len);
int mailproto_imap_append_end(mailproto_imap *s);
/* The piece of the command after the message (a COMMAND or LITERAL event
 * with `continued`). */
int mailproto_imap_append_rest(mailproto_imap *s,
                               const mailproto_imap_event *ev);
int mailproto_imap_append_done(mailproto_imap *s, int kind, int rc);
/* Aborts a writer and forgets the APPEND. */
void mailproto_imap_append_reset(mailproto_imap *s);
/* Whether an APPEND message literal is being received. */
static inline int mailproto_imap_appending(const mailproto_imap *s) {
  return s->append != NULL && s->append->mailbox != NULL;
}

/* ---- imap_message.c ---- */

int mailproto_imap_cmd_fetch(mailproto_imap *s);
int mailproto_imap_cmd_store(mailproto_imap *s);
int mailproto_imap_cmd_copy(mailproto_imap *s, int move);
int mailproto_imap_cmd_expunge(mailproto_imap *s);
int mailproto_imap_cmd_close(mailproto_imap *s, int expunge);
/* FETCH output, made as the transport drains (phase WORK). */
int mailproto_imap_fetch_step(mailproto_imap *s);
int mailproto_imap_message_done(mailproto_imap *s, int kind, int rc);
/* Frees the per-command message state (spans, keywords, runs). */
void mailproto_imap_message_reset(mailproto_imap *s);
/* QRESYNC's VANISHED (EARLIER) (imap_vanished.c): begin sets up the
 * UIDs of `set` (NULL: 1 to UIDNEXT - 1) from `lowest` on; each step
 * writes one response line of the ones no message has, returning 1, or
 * 0 when none is left (the state is then freed). */
typedef struct imap_vanished imap_vanished;
/* A VANISHED line (either form) is closed once it passes this many
 * bytes; the next one goes out when the output has room. */
#define IMAP_VANISHED_LINE 8192u
int mailproto_imap_vanished_begin(mailproto_imap *s,
                                  const mailproto_imap_seqset *set,
                                  uint32_t lowest);
int mailproto_imap_vanished_step(mailproto_imap *s);
void mailproto_imap_vanished_free(mailproto_imap *s);
/* Ends the VANISHED line in s->line (when rc is 0) and sends it: 1, or
 * the error (the line dropped). */
int mailproto_imap_vanished_line_end(mailproto_imap *s, int rc);
/* Appends "lo" or "lo:hi", after a comma unless `first`. */
int mailproto_imap_write_uid_run(mailproto_buf *b, int first, uint32_t lo,
                                 uint32_t hi);

/* The op sink's modified report (STORE UNCHANGEDSINCE). */
int mailproto_imap_store_modified(mailproto_imap *s, uint32_t uid);

/* RFC 7162 3.1: a CONDSTORE enabling command. The first one with a
 * mailbox selected sends its HIGHESTMODSEQ. `uses_modseq`: the command
 * needs mod-sequences (FETCH MODSEQ or CHANGEDSINCE, SEARCH MODSEQ,
 * STORE UNCHANGEDSINCE), which a NOMODSEQ mailbox refuses with BAD
 * (3.1.2.2). Returns 0, 1 when that BAD was sent, or a fatal code. */
int mailproto_imap_condstore_enable(mailproto_imap *s, int uses_modseq);

/* Whether FETCH responses carry MODSEQ: CONDSTORE on, and the selected
 * mailbox keeps mod-sequences. */
static inline int mailproto_imap_modseq_on(const mailproto_imap *s) {
  return s->condstore && !s->sel.nomodseq;
}

/* Writes "MODSEQ (n)". */
int mailproto_imap_write_modseq(mailproto_buf *b, uint64_t modseq);

/* The op sink's uid_map report (COPY, MOVE). */
int mailproto_imap_copy_map(mailproto_imap *s, uint32_t src, uint32_t dst);

/* Writes literal bytes, each NUL as 0x80 (RFC 3501 9: a literal is
 * CHAR8, which excludes NUL; the octet count stays right). */
int mailproto_imap_literal_bytes(mailproto_outq *q, const uint8_t *p, size_t n);
/* FETCH's message loop after imap_fetch_mime.c has the tree: the text
 * probe or the header scan of imap_message.c, or straight to the answer. */
void mailproto_imap_fetch_after_tree(mailproto_imap *s);
/* Leaves the message out of the FETCH (it cannot be read: `code`). */
void mailproto_imap_fetch_skip(mailproto_imap *s, int code);

/* ---- imap_fetch_mime.c ---- */

/* Whether a FETCH item is answered by imap_fetch_mime.c (it needs the
 * MIME structure of the message). */
int mailproto_imap_fetch_is_mime(const mailproto_imap_fetch_item *it);
/* Stage IMAP_FETCH_TREE: gets the message's tree, then checks its BINARY
 * items (UNKNOWN-CTE leaves the message out). */
int mailproto_imap_fetch_tree_step(mailproto_imap *s);
/* Starts the MIME item f->item (stage ITEM; writes its separator). */
int mailproto_imap_fetch_mime_item(mailproto_imap *s);
/* Stage IMAP_FETCH_MIME. */
int mailproto_imap_fetch_mime_step(mailproto_imap *s);
/* An IMAP_OP_READ completion in stage TREE or MIME. */
int mailproto_imap_fetch_mime_read_done(mailproto_imap *s, int rc);
/* Frees the MIME item state. */
void mailproto_imap_fetch_mime_reset(mailproto_imap *s);

/* ---- imap_mime_tree.c: the parsed MIME tree of one message ----
 *
 * Any command of the selected state that needs a message's structure
 * (FETCH here; SEARCH, SORT or THREAD may use it too) gets it like this,
 * one message at a time:
 *
 *   rc = mailproto_imap_tree_begin(s, uid);       1: ready now, 0: read
 *   while (!mailproto_imap_tree_ready(s, uid))
 *     rc = mailproto_imap_tree_read(s, MY_OP_KIND);   issues one store read
 *   ... and the command's completion for MY_OP_KIND calls
 *   rc = mailproto_imap_tree_read_done(s, rc);    feeds what was read
 *   then use mailproto_imap_tree_get(s): the tree (valid until the next
 *   tree_begin for another UID, or mailproto_imap_tree_reset).
 *
 * begin takes the tree from memory (the same UID as last time) or from the
 * store's cache hook (validated by mailproto_mime_deserialize and checked
 * against the message's RFC822.SIZE; a damaged entry is parsed again).
 * Otherwise the message is read from offset 0 in chunks and fed to the
 * streaming parser, which keeps only the structure, never the message;
 * at the end the serialised tree is offered to the store's cache. Only one
 * message is held: memory stays bounded by the parser's limits.
 * tree_read_done returns 0, a non-fatal store error (the message cannot
 * be read: the command leaves it out; the tree is not ready) or a fatal
 * code. A read past the message end ends the parse (len 0).
 */
struct imap_tree;
int mailproto_imap_tree_begin(mailproto_imap *s, uint32_t uid);
/* The same when the caller needs only the top-level header (ENVELOPE,
 * BODY[HEADER.FIELDS ...]): the parse stops where that header ends, and
 * the partial tree is neither cached nor reused for a full request. */
int mailproto_imap_tree_begin_header(mailproto_imap *s, uint32_t uid);
int mailproto_imap_tree_ready(const mailproto_imap *s, uint32_t uid);
int mailproto_imap_tree_read(mailproto_imap *s, int kind);
int mailproto_imap_tree_read_done(mailproto_imap *s, int rc);
const mailproto_mime_tree *mailproto_imap_tree_get(const mailproto_imap *s);
/* Whether the last ready tree came from the cache (tests, benchmarks). */
int mailproto_imap_tree_from_cache(const mailproto_imap *s);
/* Frees the tree and any parse in progress. */
void mailproto_imap_tree_reset(mailproto_imap *s);
/* The held tree did not match the message's bytes: it stays usable until
 * the next tree_begin, which then reads the message again. */
void mailproto_imap_tree_distrust(mailproto_imap *s);

/* ---- imap_idle.c ---- */

int mailproto_imap_cmd_idle(mailproto_imap *s);
/* The announcements before "+ idling" or during IDLE are out. */
int mailproto_imap_idle_announced(mailproto_imap *s);
/* A line while idling. */
int mailproto_imap_idle_line(mailproto_imap *s, const uint8_t *data,
                             size_t len);

/* ---- imap_update.c ---- */

/* The store's notify hook for the selected mailbox. */
void mailproto_imap_notify(void *arg);
/* Starts a sync of the selected mailbox (phase SYNC). */
int mailproto_imap_sync_start(mailproto_imap *s);
int mailproto_imap_sync_done(mailproto_imap *s, int rc);
/* One step of the announcements; sets s->announce to DONE at the end. */
int mailproto_imap_announce_step(mailproto_imap *s);
/* The op sink's reports during open and sync. */
int mailproto_imap_report_message(mailproto_imap *s,
                                  const mailproto_message_info *msg);
int mailproto_imap_report_keyword(mailproto_imap *s, unsigned index,
                                  const char *name);
int mailproto_imap_report_expunged(mailproto_imap *s, uint32_t uid);
/* The size and date of a message by UID: 1 if known, else 0. */
int mailproto_imap_meta_get(const mailproto_imap *s, uint32_t uid,
                            imap_msg_info *out);
/* After open: gives back the growth slack of the sizes and dates, as
 * mailproto_imap_view_opened() does for the view (the idle-session memory
 * goal of issue 7). */
void mailproto_imap_meta_opened(mailproto_imap *s);
void mailproto_imap_meta_free(mailproto_imap *s);
/* Writes the flag list of the view's message `index` (\Recent only for
 * IMAP4rev1). */
int mailproto_imap_write_msg_flags(mailproto_imap *s, mailproto_buf *b,
                                   uint32_t index);
/* Writes "* FLAGS (...)" and "* OK [PERMANENTFLAGS (...)]". */
int mailproto_imap_write_flag_lists(mailproto_imap *s);

#endif
