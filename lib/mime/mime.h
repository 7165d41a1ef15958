/*
 * The MIME structure of a stored message: a streaming parser that turns
 * the message bytes, fed in chunks of any size, into a part tree with the
 * offsets and sizes IMAP needs (RFC 3501 6.4.5 and 7.4.2, RFC 9051 7.5.2),
 * and a compact serialised form of that tree for a store cache.
 *
 * The parser never fails on malformed mail (issue 8: "never fail a FETCH"):
 * whatever the input, it builds a tree that describes it sensibly, the way
 * Dovecot does:
 *  - header fields: folding (RFC 5322 2.2.3), obsolete syntax (RFC 5322 4:
 *    white space before the colon, empty continuation lines), lines without
 *    a colon (skipped, the header goes on), 8-bit and NUL bytes, bare LF
 *    line ends; only the fields IMAP needs are kept, each capped.
 *  - multipart bodies (RFC 2046 5.1): a delimiter line is "--" boundary,
 *    then "--" for the close delimiter, else only white space to the line
 *    end (RFC 2046 5.1.1 grammar). The innermost boundary is tried first;
 *    an outer boundary ends every inner part (missing close delimiter); a
 *    missing final boundary ends the parts at the end of their parent; the
 *    preamble and the epilogue belong to no child. A multipart without a
 *    usable boundary has no children.
 *  - message/rfc822 and message/global (RFC 2046 5.2.1, RFC 6532 3.5) with
 *    an identity transfer encoding are parsed as an encapsulated message
 *    with its own header and structure; encoded ones stay opaque leaves.
 *  - nesting beyond limits.max_depth, and every part past limits.max_parts,
 *    is not parsed further: the rest is the body of the part it is in.
 *
 * Work is linear in the input (lines are scanned with memchr; at most
 * limits.max_depth boundaries are compared at a line that begins with
 * '-'); memory is bounded by the number of parts (each part costs one
 * mailproto_mime_part) plus the kept field values (limits.max_kept).
 *
 * Sizes: every part has stored offsets and sizes (the bytes the store's
 * `read` yields, which may end lines with a bare LF or CR) and the virtual
 * sizes IMAP reports, in which every bare LF or CR counts as CRLF (RFC 3501
 * 2.3.4 and 7.4.2 "body size"). `lines` counts the line ends of the body
 * (RFC 3501 "size of the body in text lines"); as in RFC 2046 5.1.1 the
 * line break before a delimiter belongs to the delimiter, not to the part,
 * so a body "a\r\nb" before a delimiter is 4 octets and 1 line (unless
 * that line break ends the part's header, or its encapsulated message's:
 * a part never ends inside the header blank line it saw).
 *
 * Everything here is internal to the library: the IMAP session and the
 * SEARCH code use it; no public header exposes it.
 */
#ifndef MAILPROTO_MIME_H
#define MAILPROTO_MIME_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "mailproto/mailproto.h"

/* "No such index / absent value" in the tree's 32-bit fields. */
#define MAILPROTO_MIME_NONE 0xffffffffu

/* A kept header field value: [off, off + len) of the tree's pool, or
 * absent (off == MAILPROTO_MIME_NONE; the field was not in the header).
 * A present value can be empty. Values are unfolded (CR and LF removed,
 * the white space that followed them kept), trimmed of leading and
 * trailing white space, NUL bytes replaced by spaces, and cut at
 * limits.max_field bytes. */
typedef struct mailproto_mime_ref {
  uint32_t off;
  uint32_t len;
} mailproto_mime_ref;

/* The MIME fields kept for every part (RFC 2045, RFC 2183, RFC 3282,
 * RFC 2557, RFC 1864). */
typedef enum mailproto_mime_field {
  MAILPROTO_MIME_CONTENT_TYPE = 0,
  MAILPROTO_MIME_CONTENT_TRANSFER_ENCODING,
  MAILPROTO_MIME_CONTENT_ID,
  MAILPROTO_MIME_CONTENT_DESCRIPTION,
  MAILPROTO_MIME_CONTENT_DISPOSITION,
  MAILPROTO_MIME_CONTENT_LANGUAGE,
  MAILPROTO_MIME_CONTENT_LOCATION,
  MAILPROTO_MIME_CONTENT_MD5,
  MAILPROTO_MIME_FIELD_COUNT
} mailproto_mime_field;

/* The fields kept for every message header (the root and each
 * encapsulated message): the ENVELOPE members of RFC 3501 7.4.2 and
 * References for THREAD (RFC 5256). */
typedef enum mailproto_mime_env_field {
  MAILPROTO_MIME_ENV_DATE = 0,
  MAILPROTO_MIME_ENV_SUBJECT,
  MAILPROTO_MIME_ENV_FROM,
  MAILPROTO_MIME_ENV_SENDER,
  MAILPROTO_MIME_ENV_REPLY_TO,
  MAILPROTO_MIME_ENV_TO,
  MAILPROTO_MIME_ENV_CC,
  MAILPROTO_MIME_ENV_BCC,
  MAILPROTO_MIME_ENV_IN_REPLY_TO,
  MAILPROTO_MIME_ENV_MESSAGE_ID,
  MAILPROTO_MIME_ENV_REFERENCES,
  MAILPROTO_MIME_ENV_COUNT
} mailproto_mime_env_field;

/* The header field name of a field / envelope field ("Content-Type"). */
const char *mailproto_mime_field_name(mailproto_mime_field f);
const char *mailproto_mime_env_field_name(mailproto_mime_env_field f);

/* Part flags. */
/* multipart/ *: the children are its body parts (maybe none). */
#define MAILPROTO_MIME_PART_MULTIPART 0x01u
/* message/rfc822 or message/global parsed as a message: exactly one
 * child, the encapsulated message (a part with PART_ENVELOPE whose header
 * and body are the message's). */
#define MAILPROTO_MIME_PART_MESSAGE 0x02u
/* The media type is message/rfc822 or message/global (parsed or not). */
#define MAILPROTO_MIME_PART_MESSAGE_TYPE 0x04u
/* The media type is message/global. */
#define MAILPROTO_MIME_PART_GLOBAL 0x08u
/* The media type is text/ *. */
#define MAILPROTO_MIME_PART_TEXT 0x10u
/* A message header (the root or an encapsulated message): the part has
 * an envelope. */
#define MAILPROTO_MIME_PART_ENVELOPE 0x20u
/* Its header ended with a blank line (else at the end of the part). */
#define MAILPROTO_MIME_PART_BLANK_LINE 0x40u
/* A child of multipart/digest: without a Content-Type it is
 * message/rfc822 (RFC 2046 5.1.5). */
#define MAILPROTO_MIME_PART_DIGEST_CHILD 0x80u
/* Every flag above. */
#define MAILPROTO_MIME_PART_ALL_FLAGS 0xffu

/*
 * One part. Parts are stored in document order, which is a pre-order
 * walk: a part's children follow it, and its next sibling is at index
 * i + subtree. The root (index 0) is the message itself.
 */
typedef struct mailproto_mime_part {
  uint64_t header_offset; /* stored offset of the first header byte */
  uint64_t header_size;   /* stored header bytes, blank line included */
  uint64_t header_vsize;  /* the same, bare LF and CR counted as CRLF */
  uint64_t body_offset;   /* = header_offset + header_size */
  uint64_t body_size;
  uint64_t body_vsize;
  uint64_t lines;       /* line ends (LF, bare CR) in the body */
  uint32_t parent;      /* MAILPROTO_MIME_NONE for the root */
  uint32_t child_count; /* direct children */
  uint32_t subtree;     /* parts in its subtree, itself included */
  uint32_t flags;       /* MAILPROTO_MIME_PART_* */
  uint32_t envelope;    /* index in tree->envelopes, or MAILPROTO_MIME_NONE */
  uint32_t depth;       /* the root is 0 */
  mailproto_mime_ref fields[MAILPROTO_MIME_FIELD_COUNT];
} mailproto_mime_part;

typedef struct mailproto_mime_envelope {
  mailproto_mime_ref fields[MAILPROTO_MIME_ENV_COUNT];
} mailproto_mime_envelope;

/* A parsed message. All memory is owned by the tree (from `alloc`). */
typedef struct mailproto_mime_tree {
  const mailproto_allocator *alloc;
  uint64_t size;  /* stored size of the message */
  uint64_t vsize; /* RFC822.SIZE: bare LF and CR counted as CRLF */
  mailproto_mime_part *parts;
  uint32_t part_count; /* >= 1 once parsed */
  mailproto_mime_envelope *envelopes;
  uint32_t envelope_count; /* >= 1 once parsed */
  uint8_t *pool;
  size_t pool_len;
} mailproto_mime_tree;

/* An empty tree (nothing allocated); free it with mailproto_mime_tree_free
 * whatever happens to it. */
void mailproto_mime_tree_init(mailproto_mime_tree *t,
                              const mailproto_allocator *alloc);
void mailproto_mime_tree_free(mailproto_mime_tree *t);

/* The bytes of a kept value (NULL if absent; not NUL-terminated). */
static inline const uint8_t *
mailproto_mime_ref_data(const mailproto_mime_tree *t, mailproto_mime_ref r) {
  if (r.off == MAILPROTO_MIME_NONE)
    return NULL;
  /* present values are all empty when nothing was ever kept */
  return t->pool ? t->pool + r.off : (const uint8_t *)"";
}

/* Memory the tree holds, its struct not included (benchmarks, tests). */
size_t mailproto_mime_tree_memory(const mailproto_mime_tree *t);

/* ------------------------------------------------------------------ */
/* The streaming parser                                                 */
/* ------------------------------------------------------------------ */

typedef struct mailproto_mime_limits {
  unsigned max_depth; /* deepest part parsed (root 0): 100 */
  unsigned max_parts; /* parts in one tree: 10,000 */
  size_t max_field;   /* bytes kept of one field value: 64 KiB */
  size_t max_kept;    /* bytes kept of all values of a message: 1 MiB */
} mailproto_mime_limits;

/* Fills *l with the defaults above. */
void mailproto_mime_limits_default(mailproto_mime_limits *l);

/* Longest boundary parameter used (RFC 2046 5.1.1 allows 70); a longer
 * one makes its multipart childless. */
#define MAILPROTO_MIME_MAX_BOUNDARY 200

typedef struct mailproto_mime_open mailproto_mime_open;

/* The parser's state; its fields are private to mime_parser.c. */
typedef struct mailproto_mime_parser {
  const mailproto_allocator *alloc;
  mailproto_mime_limits limits;
  int status; /* 0, or NOMEM once an allocation failed */
  int finished;
  /* the tree being built */
  mailproto_mime_part *parts;
  uint32_t part_count, part_cap;
  mailproto_mime_envelope *envelopes;
  uint32_t envelope_count, envelope_cap;
  mailproto_buf pool;
  /* position and counters */
  uint64_t offset;
  uint64_t lf_total;
  uint64_t bare_total;
  int prev_cr;
  uint64_t nl_off, nl_lf, nl_bare; /* the newline that ended the last line */
  /* open parts, outermost first */
  mailproto_mime_open *stack;
  unsigned depth, stack_cap;
  mailproto_buf boundaries;
  unsigned active; /* open multiparts whose boundary is active */
  int in_header;   /* the innermost open part is in its header */
  int frozen;      /* max_parts reached: no more structure */
  /* the current line */
  int line_state;
  uint64_t line_nl_off, line_nl_lf, line_nl_bare;
  size_t head_len;
  uint8_t head[MAILPROTO_MIME_MAX_BOUNDARY + 8];
  int tail;            /* what the rest of the line is used for */
  unsigned cand_level; /* boundary candidate: its stack level */
  /* the field value being kept */
  mailproto_mime_ref *capture; /* NULL: none (points into parts/envelopes) */
  uint32_t capture_part, capture_env;
  int capture_slot;
  int capture_lead; /* still skipping leading white space */
  int capture_full;
} mailproto_mime_parser;

/* Prepares a parser (allocates nothing). NULL alloc: the C library's;
 * NULL limits: the defaults. */
void mailproto_mime_parser_init(mailproto_mime_parser *p,
                                const mailproto_allocator *alloc,
                                const mailproto_mime_limits *limits);

/* Feeds the next `len` bytes of the message. Returns 0, or
 * MAILPROTO_ERR_NOMEM (then only _free may follow). */
int mailproto_mime_parser_feed(mailproto_mime_parser *p, const void *data,
                               size_t len);

/* Ends the message and moves the tree into *out (which must be freed with
 * mailproto_mime_tree_free; its previous content is freed first). The
 * parser is then empty and can be fed the next message. Returns 0 or
 * NOMEM (*out is then empty). */
/* 1 once the message's own header has ended (its blank line was fed):
 * what a caller that needs only that header may stop at, then finish. */
int mailproto_mime_parser_header_done(const mailproto_mime_parser *p);
int mailproto_mime_parser_finish(mailproto_mime_parser *p,
                                 mailproto_mime_tree *out);

/* Frees everything the parser holds (any state). */
void mailproto_mime_parser_free(mailproto_mime_parser *p);

/* The whole message at once: init, feed, finish, free. */
int mailproto_mime_parse(const mailproto_allocator *alloc,
                         const mailproto_mime_limits *limits, const void *data,
                         size_t len, mailproto_mime_tree *out);

/* ------------------------------------------------------------------ */
/* Walking the tree                                                     */
/* ------------------------------------------------------------------ */

/* The n-th (0-based) child of part i, or MAILPROTO_MIME_NONE. O(n). */
uint32_t mailproto_mime_child(const mailproto_mime_tree *t, uint32_t i,
                              uint32_t n);

/* The envelope of a message part: the part itself when it has one (the
 * root), else the encapsulated message of a parsed message/rfc822 part;
 * NULL otherwise. */
const mailproto_mime_envelope *
mailproto_mime_envelope_of(const mailproto_mime_tree *t, uint32_t i);

/* ------------------------------------------------------------------ */
/* The serialised form (a store cache entry)                           */
/* ------------------------------------------------------------------ */

/*
 * Appends the tree's compact serialised form to `out`: a versioned,
 * checksummed byte string of varints and the kept values (typically 30 to
 * 60 bytes per part plus the values). Returns 0, NOMEM or BUFFER_FULL.
 */
int mailproto_mime_serialize(const mailproto_mime_tree *t, mailproto_buf *out);

/*
 * Rebuilds a tree from a serialised form, which is untrusted (it comes
 * from a cache): every offset, size, count, link, flag and value is
 * validated, so a tree that loads is as safe to use as a parsed one.
 * `message_size` is the stored size of the message it must describe.
 * `limits` (NULL: defaults) bound the parts, depth and pool accepted.
 * Returns 0, MAILPROTO_ERR_SYNTAX (not a valid form: re-parse the
 * message), or NOMEM. *out is freed first and empty on failure.
 */
int mailproto_mime_deserialize(const mailproto_allocator *alloc,
                               const mailproto_mime_limits *limits,
                               const void *data, size_t len,
                               uint64_t message_size, mailproto_mime_tree *out);

/*
 * The stored message size a serialised form claims, for a caller that
 * does not know the stored size (a store whose stored bytes differ from
 * the RFC822 form): returns 1 and sets *size, or 0 if the form is not
 * even well begun. The claim is as untrusted as the rest: deserialize
 * with it, then check the tree's vsize against the trusted RFC822.SIZE.
 */
int mailproto_mime_serial_size(const void *data, size_t len, uint64_t *size);

#endif
