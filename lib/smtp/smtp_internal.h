/*
 * The inside of an SMTP/LMTP session, shared by the files of lib/smtp/:
 *   smtp_session.c   lifecycle, the feed loop, queries, the op sink, TLS
 *   smtp_command.c   command dispatch and the envelope commands
 *   smtp_txn.c       the mail transaction (sender, recipients, writer)
 *   smtp_data.c      DATA and BDAT bodies, the end of a message
 *   smtp_auth.c      AUTH (RFC 4954) over the core SASL engine
 *   smtp_reply.c     reply lines, error counting, policy verdicts
 *   smtp_received.c  the Received: header, ids and challenge nonces
 *
 * One embedded op serves every deferred step: a policy callback or a store
 * hook. Its kind says which step resumes when it completes; while it is
 * pending the session consumes no input, so pipelined commands keep their
 * order.
 */
#ifndef MAILPROTO_SMTP_INTERNAL_H
#define MAILPROTO_SMTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/reply.h"
#include "core/sasl.h"
#include "core/session.h"
#include "mailproto/smtp.h"
#include "smtp/smtp_parse.h"

/* RFC 4954 4: SASL responses may be much longer than commands; 12288
 * octets is the length the RFC calls sufficient. */
#define SMTP_AUTH_LINE_MAX 12288u
/* Longest text a policy callback may set (a reply line stays under the
 * 512 octets of RFC 5321 4.5.3.1.5 even with an LMTP address in front). */
#define SMTP_POLICY_TEXT_MAX 200u
/* Room in the output queue beyond the watermark for the replies of one
 * command (EHLO is the longest; LMTP adds one line per recipient). */
#define SMTP_REPLY_SLACK 4096u
#define SMTP_REPLY_LINE_MAX 512u

/* (After STARTTLS the state stays COMMAND; the plumbing's io.tls drops
 * input until the transport is secure.) */
enum smtp_state {
  SMTP_ST_COMMAND, /* reading command lines */
  SMTP_ST_AUTH,    /* reading the client's next SASL response */
  SMTP_ST_DATA,    /* DATA body, up to CRLF.CRLF */
  SMTP_ST_BDAT,    /* the bytes of a BDAT chunk */
  SMTP_ST_CLOSING  /* the last reply is being flushed */
};

/* What the embedded op is doing (op.kind). Policy callbacks come first. */
enum smtp_op_kind {
  SMTP_OP_CONNECT = 1,
  SMTP_OP_HELO,
  SMTP_OP_MAIL,
  SMTP_OP_RCPT,
  SMTP_OP_VRFY,
  SMTP_OP_AUTH_POLICY,
  SMTP_OP_DATA_START,
  SMTP_OP_MESSAGE,
  SMTP_OP_LOOKUP, /* store hooks from here on */
  SMTP_OP_AUTHENTICATE,
  SMTP_OP_SECRET,
  SMTP_OP_BEGIN,
  SMTP_OP_HEADER,
  SMTP_OP_WRITE,
  SMTP_OP_COMMIT
};

static inline int smtp_op_is_policy(int kind) {
  return kind >= SMTP_OP_CONNECT && kind <= SMTP_OP_MESSAGE;
}

/* How a DATA body is being scanned (smtp_data.c). "Real" line starts
 * follow a CRLF; "fake" ones follow a bare CR or LF, which never ends
 * DATA (the SMTP smuggling defence). */
enum smtp_dstate {
  SMTP_D_BOL,      /* at a real line start */
  SMTP_D_BOL_FAKE, /* after a bare CR or LF */
  SMTP_D_TEXT,     /* inside a line */
  SMTP_D_CR,       /* after a CR (already passed on) */
  SMTP_D_DOT,      /* a dot at a real line start was taken */
  SMTP_D_DOT_FAKE, /* a dot after a bare line end was taken */
  SMTP_D_DOT_CR    /* "." CR at a real line start: LF would end DATA */
};

/* What ends once the pending body writes are done. */
enum { SMTP_END_NONE = 0, SMTP_END_DATA = 1, SMTP_END_CHUNK = 2 };

/* A reply: the code, an RFC 3463 enhanced code (NULL: none) and text. */
typedef struct smtp_reply {
  int code;
  const char *enhanced;
  const char *text;
} smtp_reply;

/* A failed message: its reply, kept until the end of the data. `owned`
 * holds text copied from a policy callback. */
typedef struct smtp_failure {
  int code; /* 0: no failure */
  char enhanced[12];
  const char *text;
  char *owned;
} smtp_failure;

/* The mail transaction: from MAIL to the end of the data or RSET. */
typedef struct smtp_txn {
  int active;         /* MAIL was accepted */
  char *reverse_path; /* "" for <> */
  uint64_t declared_size;
  mailproto_smtp_body body;
  int smtputf8;

  /* Recipients: one entry per distinct account (deliver once), and for
   * LMTP, per accepted RCPT command, the index of its entry. */
  size_t accepted; /* accepted RCPT commands */
  size_t count;    /* distinct accounts */
  size_t cap;
  char **addrs;
  void **accounts;
  int *results;
  uint32_t *slots; /* LMTP only; `accepted` entries */
  size_t slot_cap;
  uint32_t *index; /* duplicate finder (smtp_txn.c) */
  size_t index_cap;

  /* The message. */
  int data_used; /* DATA or BDAT started in this transaction */
  int bdat;      /* the body comes in BDAT chunks */
  void *writer;
  uint64_t stored; /* octets written, Received: included */
  unsigned long number;
  char id[40]; /* "<tag>.<number>", made once with the number */
  smtp_failure failure;
} smtp_txn;

/* One AUTH exchange. */
typedef struct smtp_auth {
  mailproto_sasl *sasl;
  void *candidate; /* account handle being checked */
  char secret[MAILPROTO_SECRET_MAX];
  size_t secret_len;
} smtp_auth;

struct mailproto_smtp {
  mailproto_allocator alloc;
  mailproto_smtp_config config; /* strings point to the copies below */
  mailproto_smtp_callbacks cb;
  mailproto_store store;
  void *user_data;
  char *hostname;
  char *greeting;
  char *client;
  unsigned ext; /* extensions on offer (config, made consistent) */

  mailproto_session_io io; /* reader, output, op, fatal code, TLS */
  /* The reply a policy callback chose with mailproto_op_set_reply(); a
   * text it could not copy (nomem) ends the session with NOMEM. */
  mailproto_reply preply;

  enum smtp_state state;
  int rejected; /* the connect callback refused: only QUIT works */
  int esmtp;    /* the client said EHLO or LHLO, not HELO */
  unsigned errors;
  unsigned auth_failures;

  char *helo;
  char *user;    /* after a successful AUTH */
  void *account; /* its account handle */
  smtp_auth *auth;

  char *pending;      /* HELO name, RCPT address or VRFY argument of a
                         step that may be deferred */
  int pending_verb;   /* which greeting verb `pending` came with */
  void *rcpt_account; /* the RCPT lookup's result */
  smtp_txn txn;

  /* Body input. */
  enum smtp_dstate dstate;
  const uint8_t *insert; /* line-end bytes still to write (normalising) */
  size_t insert_len;
  uint8_t insert_buf[4];
  int chunk_done; /* SMTP_END_*: what to do once the writes are done */
  uint64_t bdat_size;
  uint64_t bdat_left;
  int bdat_last;
  /* A BDAT chunk without a usable transaction: read it, then answer 503
   * with this text (NULL: no refusal; "" : no reply at all). */
  const char *chunk_refuse;
  unsigned long messages; /* messages started in this session */

  char tag[17]; /* session identifier, hex */
  unsigned long cram_count;
};

/* ---- smtp_session.c ---- */

/* Brackets a policy callback: begin clears the previous reply and starts
 * the op as `kind`; end takes what the callback returned and returns 0 if
 * it deferred (the session waits), else the continuation's result. */
void mailproto_smtp_policy_begin(mailproto_smtp *s, int kind);
int mailproto_smtp_policy_end(mailproto_smtp *s, int kind, int rc);
/* After a store call: 0 while it is deferred, else its continuation. */
int mailproto_smtp_after_store(mailproto_smtp *s, int kind, int rc);
/* The datetime for headers and ids. */
mailproto_datetime mailproto_smtp_clock(mailproto_smtp *s);
/* Forgets an AUTH, the client's name and the transaction (RSET-like
 * reset after STARTTLS). */
void mailproto_smtp_forget_client(mailproto_smtp *s);

/* ---- smtp_reply.c ---- */

/* Queues "code[ enhanced] text\r\n"; the enhanced code only with
 * ENHANCEDSTATUSCODES and never on 3xx. Returns 0 or a fatal code. */
int mailproto_smtp_reply(mailproto_smtp *s, int code, const char *enhanced,
                         const char *text);
/* Same with a printf-style text. */
int mailproto_smtp_replyf(mailproto_smtp *s, int code, const char *enhanced,
                          const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* A line of a multi-line reply: "code-text". */
int mailproto_smtp_reply_more(mailproto_smtp *s, int code, const char *text);
/* A reply that counts toward max_errors; the last allowed one is followed
 * by 421 and the session closes. */
int mailproto_smtp_error(mailproto_smtp *s, int code, const char *enhanced,
                         const char *text);
/* "421 [4.x.x] <host> text", then the session closes. */
int mailproto_smtp_close_421(mailproto_smtp *s, const char *enhanced,
                             const char *text);

/* What a finished policy callback decided. */
enum smtp_verdict {
  SMTP_ACCEPT,   /* go on (s->preply may hold a 2xx reply to use) */
  SMTP_REJECT,   /* answer with the reply policy_reply() gives */
  SMTP_TEMPFAIL, /* the callback failed: 451 4.3.0 */
  SMTP_CLOSE     /* the callback failed fatally: 421 and close */
};
/* Classifies the callback's result; a negative return is a fatal code
 * (NOMEM while it set a reply). */
int mailproto_smtp_verdict(mailproto_smtp *s, int rc);
/* The policy's reply, with `fallback` filling what it did not set. */
void mailproto_smtp_policy_reply(const mailproto_smtp *s,
                                 const smtp_reply *fallback, smtp_reply *out);
/* Sends a rejection or failure for `verdict` (REJECT, TEMPFAIL, CLOSE):
 * the policy's reply or `fallback`; a 421 closes the session. */
int mailproto_smtp_reply_verdict(mailproto_smtp *s, int verdict,
                                 const smtp_reply *fallback);
/* Frees what the last policy reply holds. */
void mailproto_smtp_policy_clear(mailproto_smtp *s);
/* The op sink's reply hook (mailproto_op_set_reply). */
int mailproto_smtp_set_policy_reply(mailproto_op *op, int code,
                                    const char *enhanced, const char *text);
/* The reply for a failed store hook: LIMIT, PERMISSION, the rest. */
void mailproto_smtp_store_failure(int rc, smtp_reply *out);

/* ---- smtp_command.c ---- */

int mailproto_smtp_command(mailproto_smtp *s, const mailproto_line *line);
int mailproto_smtp_connect_done(mailproto_smtp *s, int rc);
int mailproto_smtp_helo_done(mailproto_smtp *s, int rc);
int mailproto_smtp_mail_done(mailproto_smtp *s, int rc);
int mailproto_smtp_rcpt_done(mailproto_smtp *s, int rc);
int mailproto_smtp_lookup_done(mailproto_smtp *s, int rc);
int mailproto_smtp_vrfy_done(mailproto_smtp *s, int rc);

/* ---- smtp_txn.c ---- */

/* Ends the transaction: aborts a writer, releases accounts, frees. */
void mailproto_smtp_txn_reset(mailproto_smtp *s);
/* Adds an accepted recipient; takes `addr` (allocated) and `account`.
 * Returns 0 or NOMEM (then both are released). */
int mailproto_smtp_txn_add(mailproto_smtp *s, char *addr, void *account);
/* Records why the message failed (the first failure wins) and aborts the
 * writer. `text` is static, or copied when `copy` is set. */
int mailproto_smtp_txn_fail(mailproto_smtp *s, const smtp_reply *r, int copy);
/* The failure as a reply. */
void mailproto_smtp_txn_failure(const mailproto_smtp *s, smtp_reply *out);
/* Drops a recorded failure (a DATA prelude that failed). */
void mailproto_smtp_txn_clear_failure(mailproto_smtp *s);

/* ---- smtp_data.c ---- */

int mailproto_smtp_cmd_data(mailproto_smtp *s);
int mailproto_smtp_cmd_bdat(mailproto_smtp *s, const char *args, size_t len,
                            int has_args);
/* Body bytes in SMTP_ST_DATA / SMTP_ST_BDAT; *used gets what was taken. */
int mailproto_smtp_data_feed(mailproto_smtp *s, const uint8_t *in, size_t len,
                             size_t *used);
int mailproto_smtp_bdat_feed(mailproto_smtp *s, const uint8_t *in, size_t len,
                             size_t *used);
/* Continuations of the data steps. */
int mailproto_smtp_data_start_done(mailproto_smtp *s, int rc);
int mailproto_smtp_begin_done(mailproto_smtp *s, int rc);
int mailproto_smtp_header_done(mailproto_smtp *s, int rc);
int mailproto_smtp_write_done(mailproto_smtp *s, int rc);
int mailproto_smtp_message_done(mailproto_smtp *s, int rc);
int mailproto_smtp_commit_done(mailproto_smtp *s, int rc);

/* ---- smtp_auth.c ---- */

int mailproto_smtp_cmd_auth(mailproto_smtp *s, const char *args, size_t len,
                            int has_args);
/* A line in SMTP_ST_AUTH. */
int mailproto_smtp_auth_line(mailproto_smtp *s, const mailproto_line *line);
int mailproto_smtp_auth_store_done(mailproto_smtp *s, int kind, int rc);
int mailproto_smtp_auth_policy_done(mailproto_smtp *s, int rc);
/* Ends an exchange in progress (wipes it, releases its account). */
void mailproto_smtp_auth_end(mailproto_smtp *s);
/* Writes the usable mechanisms ("PLAIN LOGIN"); returns the length. */
int mailproto_smtp_auth_mechs(const mailproto_smtp *s, char *out, size_t size);

/* ---- smtp_received.c ---- */

/* Sets s->tag from the clock, the client and (without a `now` callback)
 * the session's address. */
void mailproto_smtp_make_tag(mailproto_smtp *s);
/* Writes the Received: header of the current transaction; returns its
 * length or a negative code. */
int mailproto_smtp_received(mailproto_smtp *s, char *out, size_t size);
/* Writes "<tag>.<number>", the message id of the transaction. */
void mailproto_smtp_message_id(const mailproto_smtp *s, char *out, size_t size);
/* Writes a CRAM-MD5 challenge "<nonce.time@host>" (RFC 2195). */
void mailproto_smtp_cram_challenge(mailproto_smtp *s, char *out, size_t size);

#endif
