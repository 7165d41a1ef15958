/*
 * The inside of a POP3 session, shared by the pop3_*.c files:
 *   pop3_session.c   the contract (new, start, feed, writable, queries,
 *                    free), output helpers, the op sink, STLS
 *   pop3_command.c   command lines: checks, dispatch per state, the
 *                    TRANSACTION commands, CAPA, UTF8, STLS, QUIT
 *   pop3_auth.c      USER/PASS, APOP, AUTH (SASL), and the login that
 *                    follows any of them: policy callback, maildrop lock
 *   pop3_maildrop.c  the session's view of the maildrop: numbers, sizes,
 *                    deleted marks, UIDL, the UPDATE state's expunge
 *   pop3_stream.c    multi-line output made as the transport drains:
 *                    RETR and TOP from the store, LIST and UIDL
 */
#ifndef MAILPROTO_POP3_INTERNAL_H
#define MAILPROTO_POP3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/reply.h"
#include "core/sasl.h"
#include "core/session.h"
#include "mailproto/pop3.h"

/* Room above the output watermark for the longest reply written in one
 * piece (CAPA, the AUTH mechanism list, a policy text, a SASL challenge);
 * streamed output never passes the watermark by more than 2 bytes. */
#define POP3_REPLY_SLACK 4096u
/* Longest configured hostname, greeting or IMPLEMENTATION text: keeps the
 * greeting and CAPA lines under RFC 2449's 512 octets and a CRAM-MD5
 * challenge under MAILPROTO_SASL_CHALLENGE_MAX. */
#define POP3_TEXT_MAX 200u
/* Longest policy text sent after "-ERR " (RFC 1939 3: 512 octets a line). */
#define POP3_POLICY_TEXT_MAX 400u

/* (STLS, RFC 2595 4, keeps AUTHORIZATION: the plumbing's io.tls drops
 * input until the transport is secure.) */
enum pop3_state {
  POP3_GREETING,      /* not started, or the connect callback is deferred */
  POP3_AUTHORIZATION, /* RFC 1939 4 */
  POP3_TRANSACTION,   /* RFC 1939 5 */
  POP3_CLOSING        /* the last reply is being flushed */
};

/* What the embedded op is doing (op.kind). */
enum pop3_op_kind {
  POP3_OP_CONNECT = 1,   /* policy: connect callback */
  POP3_OP_AUTHENTICATE,  /* store: USER/PASS, PLAIN, LOGIN */
  POP3_OP_LOOKUP_SECRET, /* store: APOP, CRAM-MD5 */
  POP3_OP_AUTH_POLICY,   /* policy: auth callback */
  POP3_OP_OPEN,          /* store: the maildrop, exclusively */
  POP3_OP_DELAY,         /* policy: pause before a failed login's reply */
  POP3_OP_READ,          /* store: a chunk of a RETR/TOP message */
  POP3_OP_EXPUNGE        /* store: QUIT's deletes */
};

/* How a login attempt went wrong; each has its own reply. */
enum pop3_failure {
  POP3_FAIL_AUTH = 1, /* bad credentials or a policy rejection */
  POP3_FAIL_IN_USE,   /* the maildrop is locked (RFC 2449 8.1.2) */
  POP3_FAIL_TEMP,     /* store trouble likely to pass (RFC 3206 4) */
  POP3_FAIL_PERM      /* store trouble that needs an operator */
};

/* One message of the maildrop as the session sees it: 16 bytes. */
typedef struct pop3_msg {
  uint64_t size; /* octets with CRLF line ends (message_info.size) */
  uint32_t uid;
  uint32_t deleted; /* DELE marked it (RFC 1939 5) */
} pop3_msg;

/* The maildrop as opened at login; message n is msgs[n - 1]. Numbers,
 * sizes and UIDs never change during the session. */
typedef struct pop3_maildrop {
  void *handle; /* the store's open mailbox (holds the lock) */
  pop3_msg *msgs;
  size_t count, cap;
  size_t deleted; /* messages marked */
  uint64_t size;  /* octets of all messages */
  uint64_t deleted_size;
  uint32_t uidvalidity;
} pop3_maildrop;

enum pop3_stream_kind {
  POP3_STREAM_NONE = 0,
  POP3_STREAM_MESSAGE, /* RETR, TOP */
  POP3_STREAM_LIST,
  POP3_STREAM_UIDL
};

/* A multi-line response in progress. */
typedef struct pop3_stream {
  enum pop3_stream_kind kind;
  size_t next;         /* LIST/UIDL: index of the next message */
  uint64_t offset;     /* MESSAGE: stored bytes read so far */
  const uint8_t *data; /* bytes of the last read not yet sent */
  size_t len;
  uint64_t lines_left; /* TOP: body lines still to send */
  uint32_t uid;
  uint32_t number;
  unsigned char announced;  /* the +OK line went out */
  unsigned char eof;        /* a read found the end of the message */
  unsigned char line_start; /* the next byte starts a line */
  unsigned char skip_lf;    /* a CR was sent as CRLF; drop an LF after it */
  unsigned char top;        /* TOP: stop after lines_left body lines */
  unsigned char in_body;    /* TOP: the blank line after the header passed */
  /* RFC 6856 2.1: the header is scanned for 8-bit bytes before the +OK;
   * these follow the scan across reads (same line-end rules as TOP). */
  unsigned char scanning;    /* the scan is not done */
  unsigned char scan_start;  /* the next byte starts a header line */
  unsigned char scan_cr;     /* the last byte was a CR */
  unsigned char scan_reread; /* the scan read past the first read */
} pop3_stream;

/* A login attempt from its command to its reply. */
typedef struct pop3_login {
  void *account; /* from the store, until the maildrop opens */
  mailproto_mailbox_status status;
  size_t secret_len;
  char user[MAILPROTO_SASL_FIELD_MAX + 1];
  char secret[MAILPROTO_SECRET_MAX];
  char digest[32]; /* APOP: the client's digest, lowercase hex */
  int apop;
} pop3_login;

struct mailproto_pop3 {
  mailproto_allocator alloc;
  mailproto_pop3_config config; /* strings point into `strings` */
  char *strings;
  mailproto_pop3_callbacks cb;
  mailproto_store store;
  void *user_data;
  char *client;

  mailproto_session_io io; /* reader, output, op, fatal code, TLS */
  enum pop3_state state;
  unsigned char utf8;        /* the UTF8 command was given (RFC 6856) */
  unsigned char sasl_active; /* the next line is a SASL response */
  unsigned errors;
  unsigned auth_failures;
  uint64_t challenges; /* challenges issued (greeting, CRAM-MD5) */

  char *timestamp; /* the greeting's "<...>", when APOP is offered */
  char *user_arg;  /* USER's name, waiting for PASS */
  mailproto_sasl *sasl;
  pop3_login *login;
  enum pop3_failure failure; /* the reply owed after a delay */
  mailproto_reply reply;     /* a policy callback's reply */

  void *account;
  char *user; /* after login */
  pop3_maildrop drop;
  pop3_stream stream;
  mailproto_uid_range *ranges; /* QUIT's expunge, while it runs */
};

/* ---- pop3_session.c: output and operations ---- */

/* "+OK text" / "-ERR text" with CRLF (text may be NULL or empty). */
int mailproto_pop3_ok(mailproto_pop3 *s, const char *text);
int mailproto_pop3_err(mailproto_pop3 *s, const char *text);
/* A bad command's -ERR: counts toward max_errors, and at the limit answers
 * "-ERR Too many errors" instead and ends the session. */
int mailproto_pop3_bad(mailproto_pop3 *s, const char *text);
/* printf-style line; the caller includes CRLF. */
int mailproto_pop3_printf(mailproto_pop3 *s, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* After a store wrapper or policy call of `kind` returned `rc`: a deferred
 * op waits for its completion, anything else is finished now. */
int mailproto_pop3_after_op(mailproto_pop3 *s, int kind, int rc);
/* Calls a policy callback's result through the op bracket: maps a positive
 * value other than DEFERRED to CALLBACK_FAILURE. */
int mailproto_pop3_policy_end(mailproto_pop3 *s, int rc);
/* Starts a policy op of `kind`: clears any previous reply. */
void mailproto_pop3_policy_begin(mailproto_pop3 *s, int kind);
/* The session ends after what is queued: releases the maildrop lock. */
void mailproto_pop3_close(mailproto_pop3 *s);
/* Writes a fresh "<NONCE.TIME@hostname>" into out (size >= 256). */
int mailproto_pop3_challenge(mailproto_pop3 *s, char *out, size_t size);

/* ---- pop3_command.c ---- */

int mailproto_pop3_command(mailproto_pop3 *s, const mailproto_line *line);
/* Whether USER/PASS may be used now (offered, and not plaintext on an
 * insecure transport unless allowed). */
int mailproto_pop3_user_pass_usable(const mailproto_pop3 *s);
/* Whether `text` is acceptable as a user name or password: printable
 * ASCII (space too if `spaces`), or well-formed UTF-8 beyond ASCII when
 * the session accepts it (RFC 6856 2.2). */
int mailproto_pop3_text_ok(const mailproto_pop3 *s, const char *text,
                           size_t len, int spaces);

/* ---- pop3_auth.c ---- */

int mailproto_pop3_cmd_user(mailproto_pop3 *s, const char *arg, size_t len);
int mailproto_pop3_cmd_pass(mailproto_pop3 *s, const char *arg, size_t len);
int mailproto_pop3_cmd_apop(mailproto_pop3 *s, const char *args, size_t len);
int mailproto_pop3_cmd_auth(mailproto_pop3 *s, const char *args, size_t len,
                            int present);
/* A line while a SASL exchange waits for the client's response. */
int mailproto_pop3_sasl_line(mailproto_pop3 *s, const char *text, size_t len);
/* Ends a SASL exchange or login attempt and forgets its secrets. */
void mailproto_pop3_auth_reset(mailproto_pop3 *s);
/* The result of an op of the auth kinds (connect is in pop3_session.c). */
int mailproto_pop3_auth_done(mailproto_pop3 *s, int kind, int rc);

/* ---- pop3_maildrop.c ---- */

/* The op sink's message report during open: appends one message. */
int mailproto_pop3_drop_add(mailproto_pop3 *s,
                            const mailproto_message_info *msg);
/* Forgets the view and releases the lock (no expunge). */
void mailproto_pop3_drop_close(mailproto_pop3 *s);
/* Parses a message-number argument: 0 and the index in *index, or the
 * -ERR already answered (a positive 1 tells the caller to stop). */
int mailproto_pop3_drop_number(mailproto_pop3 *s, const char *arg, size_t len,
                               size_t *index);
/* Writes the UIDL unique-id of message `index` (17 bytes with the NUL). */
void mailproto_pop3_drop_uid(const mailproto_pop3 *s, size_t index,
                             char out[17]);
void mailproto_pop3_drop_mark(mailproto_pop3 *s, size_t index);
void mailproto_pop3_drop_unmark_all(mailproto_pop3 *s);
/* QUIT in TRANSACTION (RFC 1939 6): expunges the marked messages. */
int mailproto_pop3_drop_update(mailproto_pop3 *s);
int mailproto_pop3_drop_update_done(mailproto_pop3 *s, int rc);

/* ---- pop3_stream.c ---- */

/* RETR (top 0) or TOP (top 1, `lines` body lines) of message `index`. */
int mailproto_pop3_stream_message(mailproto_pop3 *s, size_t index, int top,
                                  uint64_t lines);
/* LIST or UIDL without an argument. */
int mailproto_pop3_stream_listing(mailproto_pop3 *s,
                                  enum pop3_stream_kind kind);
/* A read finished (at once or deferred). */
int mailproto_pop3_stream_read_done(mailproto_pop3 *s, int rc);
/* Produces output while the queue has room; stops when congested, when a
 * read is deferred, or when the response is complete. */
int mailproto_pop3_produce(mailproto_pop3 *s);

static inline int mailproto_pop3_streaming(const mailproto_pop3 *s) {
  return s->stream.kind != POP3_STREAM_NONE;
}

#endif
