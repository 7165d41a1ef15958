/*
 * SEARCH, SORT and THREAD inside the IMAP session (RFC 3501 6.4.4, RFC
 * 9051 6.4.4, RFC 4731 ESEARCH, RFC 5182 SEARCHRES, RFC 5256 SORT and
 * THREAD). The files:
 *   imap_search.c       the commands: message walk, store reads (which
 *                       may defer), the result forms, the saved result
 *   imap_search_eval.c  the key program: cheap keys from the view,
 *                       header fields and text parts from a streamed read
 *   imap_sort.c         base subjects (RFC 5256 2.1) and SORT's order
 *   imap_thread.c       THREAD=ORDEREDSUBJECT and THREAD=REFERENCES
 *
 * A message is read only when the cheap keys (flags, UID, sequence
 * numbers, size, internal date) leave the answer open, or when SORT or
 * THREAD need its header. The read is a stream: the header (field by
 * field, each capped) and, for BODY and TEXT, one parse into the MIME part
 * tree and a second read of the text parts, decoded; a message is never
 * held whole in memory, the mailbox never at all: memory is one small
 * record per message (plus capped sort strings).
 */
#ifndef MAILPROTO_IMAP_SEARCH_H
#define MAILPROTO_IMAP_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "imap/imap_parser.h"
#include "mime/mime.h"
#include "mime/mime_codec.h"

struct mailproto_imap;

/* ------------------------------------------------------------------ */
/* The key program (imap_search_eval.c)                                */
/* ------------------------------------------------------------------ */

/* A tri-state answer: keys that need the message's text are unknown
 * until it is read. */
enum { IMAP_SR_NO = 0, IMAP_SR_YES = 1, IMAP_SR_UNKNOWN = 2 };

/* Header fields SORT and THREAD want of each message. */
#define IMAP_WANT_SUBJECT 0x01u
#define IMAP_WANT_FROM 0x02u
#define IMAP_WANT_TO 0x04u
#define IMAP_WANT_CC 0x08u
#define IMAP_WANT_DATE 0x10u
#define IMAP_WANT_IDS 0x20u /* Message-ID, In-Reply-To, References */

/* Longest field value kept (RFC 5322 2.1.1 lines are 998 octets; a
 * folded field may be longer, and a search string is unlikely to sit
 * beyond this). */
#define IMAP_FIELD_MAX (64u * 1024u)

/* The header fields a message gave (first occurrence of each), raw and
 * unfolded. */
typedef struct imap_search_fields {
  unsigned seen; /* IMAP_WANT_* bits of the fields found */
  mailproto_buf subject, from, to, cc, message_id, in_reply_to, references;
  int have_date;
  mailproto_datetime date;
} imap_search_fields;

/* What a message looks like to the cheap keys. */
typedef struct imap_search_msg {
  uint32_t index; /* 0-based; the sequence number is index + 1 */
  uint32_t uid;
  uint32_t exists;   /* "*" of a sequence set */
  uint32_t last_uid; /* "*" of a UID set */
  uint32_t flags;
  uint64_t keywords;
  uint64_t modseq;
  int have_meta; /* size and date below are known */
  uint64_t size;
  mailproto_datetime date;
} imap_search_msg;

/* A content key: a string (or sent date) key whose answer needs the
 * message's text. */
typedef struct imap_search_ckey {
  const mailproto_imap_search_key *key;
  mailproto_mime_matcher m;
} imap_search_ckey;

/* The header field collector: bytes in, one callback per complete field
 * (name and unfolded value), up to the blank line that ends the header. */
typedef struct imap_hdr {
  mailproto_buf field; /* "Name: value" of the field being read */
  unsigned char line_start;
  unsigned char done;
} imap_hdr;

typedef struct imap_search_prog {
  const mailproto_allocator *alloc;
  const mailproto_imap_search_key *root;
  imap_search_ckey *ck;
  unsigned nck;
  unsigned char need_header;   /* some key reads header fields */
  unsigned char need_body;     /* BODY or TEXT */
  unsigned char uses_modseq;   /* a MODSEQ key appears (RFC 7162 3.1.5) */
  unsigned char uses_seqnums;  /* a key names message sequence numbers */
  unsigned char need_meta;     /* size or internal date keys */
  unsigned char need_keywords; /* KEYWORD, UNKEYWORD */
  /* Some key reads what a MIME tree's envelope does not keep (TEXT, and
   * HEADER, which sees every occurrence of a field): the header must be
   * read. */
  unsigned char env_short;
  unsigned want;         /* IMAP_WANT_* for SORT and THREAD */
  unsigned env_seen;     /* envelope fields seen in this message's header */
  uint8_t *hit;          /* per content key: seen in this message */
  mailproto_buf scratch; /* RFC 2047 decoding of one field */
  imap_search_fields fields;
  imap_hdr hdr;
} imap_search_prog;

/* Builds the program for a key tree: numbers the content keys (in their
 * `number`, which string keys leave unused), looks up keywords, prepares
 * matchers. Returns 0 or NOMEM. */
int mailproto_imap_search_compile(imap_search_prog *p,
                                  const mailproto_allocator *alloc,
                                  mailproto_imap_search_key *root,
                                  const struct mailproto_imap *s,
                                  unsigned want);
void mailproto_imap_search_prog_free(imap_search_prog *p);

/* Starts a message: forgets the content answers of the last one. */
void mailproto_imap_search_begin_msg(imap_search_prog *p);

/* Evaluates the program. With `final` the content keys not seen are
 * false. Returns IMAP_SR_*. `s` resolves "$". */
int mailproto_imap_search_eval(const imap_search_prog *p,
                               const struct mailproto_imap *s,
                               const imap_search_msg *m, int final);

/* Whether the keys are only system flags under the top AND (the common
 * "UNSEEN", "FLAGGED UNDELETED"): then a message matches when its flags
 * masked with *mask equal *want, and the walk needs nothing else. */
int mailproto_imap_search_flag_masks(const mailproto_imap_search_key *root,
                                     uint32_t *mask, uint32_t *want);

/* The header fields from a parsed tree's envelope instead of a read (the
 * tree came from memory or the store's cache; !p->env_short): sets
 * p->hdr.done. Returns 0 or NOMEM. */
int mailproto_imap_search_envelope(imap_search_prog *p,
                                   const mailproto_mime_tree *t);

/* Feeds header bytes (from the message's first byte). Returns how many
 * bytes belong to the header (== len until its end is seen), or NOMEM.
 * p->hdr.done says the header is over. */
long mailproto_imap_search_header(imap_search_prog *p, const uint8_t *data,
                                  size_t len);
/* The header ended without a blank line (end of message): flushes the
 * last field. Returns 0 or NOMEM. */
int mailproto_imap_search_header_end(imap_search_prog *p);

/* Text of one part, transfer-decoded and converted to UTF-8, for the
 * BODY and TEXT keys; call text_end after each part. */
int mailproto_imap_search_text(void *prog, const uint8_t *data, size_t len);
void mailproto_imap_search_text_end(imap_search_prog *p);

/* ------------------------------------------------------------------ */
/* SORT and THREAD                                                     */
/* ------------------------------------------------------------------ */

/* Longest sort string kept (base subject, address mailbox): strings that
 * agree this far sort as equal, then by sequence number. */
#define IMAP_SORT_STRING_MAX 255u
/* References kept per message for THREAD=REFERENCES (the last ones: the
 * parent is the last, RFC 5256 3), and the longest message-id. */
#define IMAP_THREAD_REFS_MAX 32u
#define IMAP_THREAD_ID_MAX 250u

enum {
  IMAP_SORT_S_SUBJECT = 0,
  IMAP_SORT_S_FROM,
  IMAP_SORT_S_TO,
  IMAP_SORT_S_CC,
  IMAP_SORT_S_COUNT
};

/* One matching message: a small fixed record; strings live in the
 * arena. */
typedef struct imap_sort_rec {
  uint32_t index, uid;
  uint64_t size;
  int64_t arrival; /* internal date, UTC */
  int64_t sent;    /* Date header, UTC; the internal date without one */
  uint32_t str[IMAP_SORT_S_COUNT]; /* arena offsets */
  uint16_t len[IMAP_SORT_S_COUNT];
  uint32_t ids;       /* THREAD: arena offset of "msgid\0ref1\0..." */
  uint16_t ids_count; /* message-id (maybe empty) + references */
  uint16_t ids_len;
  uint8_t is_reply; /* the subject had a reply/forward marker */
} imap_sort_rec;

typedef struct imap_sort_set {
  imap_sort_rec *r;
  size_t n, cap;
  mailproto_buf arena;
} imap_sort_set;

/* Arena bytes at `off` (an empty arena has no memory yet). */
static inline const uint8_t *imap_sort_at(const imap_sort_set *set,
                                          uint32_t off) {
  return set->arena.data ? set->arena.data + off : (const uint8_t *)"";
}

/* Appends to `out` the base subject of RFC 5256 2.1 of an unfolded
 * Subject value: RFC 2047 words decoded to UTF-8, white space runs made
 * one space, then the subj-leader / subj-trailer / [fwd] rules applied
 * until nothing changes; the result in i;unicode-casemap form (RFC 5256
 * 7, RFC 5051: titlecase, then canonical decomposition; imap_sort.c
 * says which letters), so base subjects compare as octets.
 * Sets *is_reply when a reply or forward marker was removed (THREAD
 * ORDEREDSUBJECT and REFERENCES use it). Returns 0, NOMEM or
 * BUFFER_FULL. */
int mailproto_imap_base_subject(const uint8_t *subject, size_t len,
                                mailproto_buf *out, int *is_reply);

/* Adds a record for a matching message from the collected fields. */
int mailproto_imap_sort_add(imap_sort_set *set, const imap_search_msg *m,
                            const imap_search_fields *f, unsigned want);
void mailproto_imap_sort_free(imap_sort_set *set,
                              const mailproto_allocator *alloc);
/* Sorts the records by the criteria (RFC 5256 3), ties by sequence
 * number. */
void mailproto_imap_sort_run(imap_sort_set *set,
                             const mailproto_imap_sort_criterion *c,
                             unsigned n);
/* Appends the THREAD response's body ("(1 2)(3 (4)(5))") for the
 * records (in sequence order) to `out`; `uid` writes UIDs. Returns 0,
 * NOMEM or BUFFER_FULL. */
int mailproto_imap_thread_run(imap_sort_set *set, mailproto_imap_thread_alg alg,
                              int uid, const mailproto_allocator *alloc,
                              mailproto_buf *out);

/* ------------------------------------------------------------------ */
/* The session side (imap_search.c)                                    */
/* ------------------------------------------------------------------ */

int mailproto_imap_cmd_search(struct mailproto_imap *s);
/* Appends a decimal number (the responses' numbers, without printf). */
int mailproto_imap_search_put_num(mailproto_buf *b, uint64_t n);
/* The command's output and reads, made as the transport drains. */
int mailproto_imap_search_step(struct mailproto_imap *s);
/* A store read of the search finished. */
int mailproto_imap_search_done(struct mailproto_imap *s, int rc);
/* Frees the command's state (after its tagged reply). */
void mailproto_imap_search_reset(struct mailproto_imap *s);
/* Forgets the saved result (SELECT, EXAMINE, CLOSE, UNSELECT: RFC 5182
 * 2.1). */
void mailproto_imap_search_forget(struct mailproto_imap *s);
/* Whether the saved result holds `uid`. */
int mailproto_imap_search_saved_has(const struct mailproto_imap *s,
                                    uint32_t uid);
/*
 * "$" for FETCH, STORE, COPY, MOVE, UID EXPUNGE: the saved result as
 * spans of the view (messages expunged since are gone, RFC 5182 2.1).
 * Allocates *spans (free with the session allocator; room for at least
 * one). Returns 0 or NOMEM.
 */
int mailproto_imap_search_saved_spans(struct mailproto_imap *s,
                                      mailproto_imap_range **spans,
                                      size_t *count);

#endif
