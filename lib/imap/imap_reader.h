/*
 * The IMAP command reader: turns the client's byte stream into complete
 * commands, resumably and with bounded memory. It is mechanism only; the
 * session decides policy at each literal.
 *
 * A command is one or more lines (RFC 3501 2.2): every line that ends
 * with a literal header "{n}", "{n+}" (RFC 7888), "~{n}" or "~{n+}"
 * (RFC 3516 literal8) is followed by n raw bytes and then by more of the
 * same command. At each literal header the reader stops with a LITERAL
 * event; the caller then chooses one of:
 *
 *   accept  the n bytes are kept inline in the command (within
 *           max_literal, max_command and max_literals). For a
 *           synchronising literal the caller sends "+ ..." first
 *           (RFC 3501 7.5); the event says when.
 *   stream  the next n bytes are handed out as RAW events as they arrive,
 *           never buffered (APPEND message data, any size), then
 *           RAW_END; the command goes on after them. What was buffered
 *           before is dropped: the caller has parsed it already (see
 *           mailproto_imap_parse_append_start), and the rest of the
 *           command comes as a separate piece.
 *   reject  a synchronising literal: the client sends nothing more for
 *           this command (it waits for "+", gets the tagged reply
 *           instead); the next line is a new command. A non-synchronising
 *           literal: its n bytes are skipped, then the reader discards to
 *           the end of the command, so none of its bytes is ever taken
 *           for a command.
 *
 * Errors in the framing (a line over max_line, a NUL byte in a command
 * line, a malformed literal size, a LITERAL- violation) give an ERROR
 * event carrying the tag when one could be read; the reader then discards
 * the rest of that command by itself (including any non-synchronising
 * literals in it) and goes on with the next one.
 *
 * The data handed out is exactly what the client sent with these
 * normalisations: line ends are not included at the end of a command,
 * and a literal header is followed by exactly CRLF inside a command even
 * if the client sent a bare LF. Only LF ends a line (lib/core/line.h); a
 * bare CR is data, which the parser refuses.
 *
 * Memory: a command line is held in the line reader (at most max_line
 * bytes, and a longer line costs nothing more while it is skipped); a
 * command with literals is assembled in one buffer bounded by
 * max_command. A literal costs nothing until it is accepted, so
 * "{4294967295}" before login allocates nothing. A command without
 * literals that arrives in one chunk is handed out in place, uncopied.
 */
#ifndef MAILPROTO_IMAP_READER_H
#define MAILPROTO_IMAP_READER_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "core/line.h"

/* RFC 7888 5: with LITERAL-, non-synchronising literals stop here. */
#define MAILPROTO_IMAP_LITERAL_MINUS_MAX 4096u
/* A tag longer than this is not reported with ERROR events (the reply is
 * then "* BAD"); the parser takes tags of any length up to max_line. */
#define MAILPROTO_IMAP_TAG_MAX 64u

typedef enum mailproto_imap_event_type {
  /* A complete command (or, after a streamed literal, the rest of one):
   * data/len, without the final line end. */
  MAILPROTO_IMAP_EVENT_COMMAND = 1,
  /* A line of the command ended with a literal header: data/len is the
   * command so far (or since the last streamed literal), up to and
   * including the header, e.g. "a1 LOGIN {5}". Call accept, stream or
   * reject before reading on. */
  MAILPROTO_IMAP_EVENT_LITERAL,
  /* Bytes of a streamed literal: data/len (valid until the next call). */
  MAILPROTO_IMAP_EVENT_RAW,
  /* The streamed literal is complete; the command continues. */
  MAILPROTO_IMAP_EVENT_RAW_END,
  /* One line read in raw-line mode (mailproto_imap_reader_raw_line):
   * data/len without its line end. line_too_long is set when the line was
   * longer than max_line (data then holds its first max_line bytes). */
  MAILPROTO_IMAP_EVENT_LINE,
  /* The command is bad (see text/code); the reader has already arranged
   * to discard the rest of it. Reply "tag BAD text" (or "* BAD text"
   * when tag_len is 0). */
  MAILPROTO_IMAP_EVENT_ERROR
} mailproto_imap_event_type;

typedef struct mailproto_imap_event {
  mailproto_imap_event_type type;
  const uint8_t *data; /* see the event types; valid until the next call */
  size_t len;
  /* The command's tag, when its first bytes form a valid tag (RFC 3501 9
   * "tag") followed by a space: ERROR and LITERAL events. NUL-terminated;
   * tag_len 0 when there is none. */
  char tag[MAILPROTO_IMAP_TAG_MAX + 1];
  size_t tag_len;

  /* LITERAL */
  uint64_t literal_size;
  int literal_sync;       /* "{n}": send "+ ..." before accepting */
  int literal_binary;     /* "~{n}" (literal8): NUL allowed */
  unsigned literal_index; /* 0 for the command's first literal */
  /* Whether accept would succeed; if not, literal_refusal says why
   * ("Literal too big", "Too many literals", "Command too long"). */
  int literal_fits;
  const char *literal_refusal;

  /* COMMAND: this is the piece after a streamed literal (for APPEND:
   * mailproto_imap_parse_append_next), not a whole command. */
  int continued;
  /* LINE */
  int line_too_long;

  /* ERROR: a static text for the BAD reply and an optional response code
   * without brackets ("TOOBIG" for a LITERAL- violation), else NULL. */
  const char *text;
  const char *code;
} mailproto_imap_event;

typedef struct mailproto_imap_reader_limits {
  size_t max_line;       /* one line, literals excluded */
  size_t max_literal;    /* one accepted literal */
  size_t max_command;    /* a whole command, accepted literals included */
  unsigned max_literals; /* accepted literals in one command */
  int literal_minus;     /* RFC 7888 LITERAL-: non-sync literals <= 4096 */
} mailproto_imap_reader_limits;

typedef enum mailproto_imap_reader_state {
  MAILPROTO_IMAP_READER_LINE = 0, /* reading a command line */
  MAILPROTO_IMAP_READER_DECIDE,   /* LITERAL reported, awaiting decision */
  MAILPROTO_IMAP_READER_LITERAL,  /* reading an accepted literal */
  MAILPROTO_IMAP_READER_STREAM,   /* handing out a streamed literal */
  MAILPROTO_IMAP_READER_SKIP,     /* skipping a refused literal */
  MAILPROTO_IMAP_READER_DISCARD   /* discarding the rest of a command */
} mailproto_imap_reader_state;

typedef struct mailproto_imap_reader {
  const mailproto_allocator *alloc;
  mailproto_imap_reader_limits limits;
  mailproto_line_reader lines;
  mailproto_buf command; /* a command with literals, being assembled */
  mailproto_imap_reader_state state;
  uint64_t remaining;    /* bytes left of the literal being read/skipped */
  uint64_t pending_size; /* the literal awaiting a decision */
  int pending_sync;
  int pending_binary;
  unsigned literals; /* literals seen in this command */
  unsigned accepted; /* literals accepted into this command */
  int in_command;    /* some of a command has been read */
  int continued;     /* the current piece follows a streamed literal */
  int raw_line;      /* the next line is a raw line */
  int stream_ended;  /* RAW_END is due */
  int handed_out;    /* `command` was handed out: clear it next */
  size_t held;       /* LITERAL line handed out in place (not buffered) */
  char tag[MAILPROTO_IMAP_TAG_MAX + 1]; /* of the command in progress */
  size_t tag_len;
  uint8_t tail[32]; /* the last bytes of the line being read */
  size_t tail_len;
} mailproto_imap_reader;

/* Prepares a reader; allocates nothing. */
void mailproto_imap_reader_init(mailproto_imap_reader *r,
                                const mailproto_allocator *alloc,
                                const mailproto_imap_reader_limits *limits);
void mailproto_imap_reader_free(mailproto_imap_reader *r);

/* Forgets everything buffered and any command in progress (after
 * STARTTLS: RFC 3501 6.2.1, no plaintext byte may survive). Keeps the
 * limits and gives back memory. */
void mailproto_imap_reader_reset(mailproto_imap_reader *r);

/* Changes the limits (LITERAL- switched on, a larger literal limit after
 * login, ...); they apply from the next line or literal on. */
void mailproto_imap_reader_set_limits(mailproto_imap_reader *r,
                                      const mailproto_imap_reader_limits *l);

/*
 * The next line is read as a raw line (a SASL continuation response of
 * AUTHENTICATE, RFC 3501 6.2.2, or IDLE's "DONE", RFC 2177): it is handed
 * out as a LINE event with no literal processing. Only between commands.
 * Returns 0 or MAILPROTO_ERR_STATE.
 */
int mailproto_imap_reader_raw_line(mailproto_imap_reader *r);

/*
 * Consumes input up to the next event. Returns 1 with *ev filled, or 0
 * when all of the input was consumed without an event, or
 * MAILPROTO_ERR_STATE while a LITERAL decision is outstanding, or NOMEM
 * (the command in progress may be lost: treat it as fatal; the reader can
 * still be reset or freed).
 * *consumed receives the number of bytes used in every case. ev->data may
 * point into `in` or into the reader; it is valid until the next call on
 * the reader (accept/stream/reject included).
 */
int mailproto_imap_reader_next(mailproto_imap_reader *r, const uint8_t *in,
                               size_t len, size_t *consumed,
                               mailproto_imap_event *ev);

/*
 * Decisions after a LITERAL event (exactly one of them):
 * accept  returns 0, MAILPROTO_ERR_TOO_LONG (the literal does not fit the
 *         limits: nothing changed, reject it instead), or NOMEM (nothing
 *         changed; accept or reject again). A synchronising literal needs
 *         "+ ..." sent by the caller now.
 * stream  returns 0. RAW events follow, then RAW_END. A synchronising
 *         literal needs "+ ..." sent now.
 * reject  returns 0. The caller sends the tagged reply; the reader drops
 *         the command as described at the top.
 * Each returns MAILPROTO_ERR_STATE when no decision is outstanding.
 */
int mailproto_imap_reader_accept(mailproto_imap_reader *r);
int mailproto_imap_reader_stream(mailproto_imap_reader *r);
int mailproto_imap_reader_reject(mailproto_imap_reader *r);

/* 1 while some of a command (or a raw line) has been read but not yet
 * handed out: the connection is mid-command. */
int mailproto_imap_reader_busy(const mailproto_imap_reader *r);

/* Bytes the reader holds (for the memory-per-session figures). */
size_t mailproto_imap_reader_buffered(const mailproto_imap_reader *r);

/*
 * Finds a literal header at the end of a line: "{n}", "{n+}", "~{n}",
 * "~{n+}". Returns 1 and sets *size, *sync, *binary and *start (offset of
 * "{" or "~"), 0 when the line does not end with one, or -1 when it ends
 * with a malformed one (more than 20 digits, or a value of 2^63 or more).
 * Shared with the parser so both agree on the framing.
 */
int mailproto_imap_literal_header(const uint8_t *line, size_t len,
                                  uint64_t *size, int *sync, int *binary,
                                  size_t *start);

/* Copies the tag that starts `data` into tag/tag_len (see the event);
 * tag_len 0 when there is no valid tag. */
void mailproto_imap_extract_tag(const uint8_t *data, size_t len,
                                char tag[MAILPROTO_IMAP_TAG_MAX + 1],
                                size_t *tag_len);

#endif
