/*
 * POP3 (RFC 1939) server sessions with CAPA (RFC 2449), extended response
 * codes (RFC 2449, RFC 3206), STLS (RFC 2595), SASL AUTH (RFC 5034) and
 * UTF8 (RFC 6856).
 *
 * The life of a session is the one described at the top of smtp.h:
 * mailproto_pop3_new, _start (greeting), _feed with every byte read (it
 * returns how many it used; keep the rest and feed it again when
 * want_read is 1), the `send` callback for output, _writable when the
 * transport can take more, _closed to know when to close, _free.
 *
 * The maildrop is the user's INBOX in the store given to _new. After a
 * successful login the session opens it exclusively (the RFC 1939 section
 * 8 lock: a second session of the same user gets "-ERR [IN-USE]"). Message
 * numbers, sizes and the deleted marks are fixed for the session; DELE
 * only marks; QUIT in the TRANSACTION state expunges the marked messages
 * through the store and answers +OK only after the store committed
 * (RFC 1939 section 6). Multi-line responses (RETR, TOP, LIST, UIDL,
 * CAPA) are produced incrementally as the transport drains: a message is
 * never held in memory, and is always sent with CRLF line ends and
 * dot-stuffed, also when the store holds it with bare LF.
 *
 * UIDL values are "UUUUUUUUVVVVVVVV": the UID and the mailbox's
 * UIDVALIDITY as 8 lowercase hex digits each, so they stay the same
 * across sessions and are never reused (RFC 1939 section 7).
 *
 * Policy callbacks follow the rules at the top of smtp.h: answer at once
 * (0 accepts; mailproto_op_set_reply() with a code of 400 or above
 * rejects, the text is sent after "-ERR "), or return MAILPROTO_DEFERRED
 * and complete later. For POP3 the reply code only tells accept (2xx) from
 * reject; an `enhanced` argument is not used, and a response code such as
 * "[LOGIN-DELAY]" belongs at the start of the text (at most 400 bytes are
 * used; control characters and bytes beyond ASCII are replaced). A
 * negative non-fatal return answers "-ERR [SYS/TEMP] ..." (connect: and
 * ends the session); a fatal one ends the session.
 *
 * Decisions where the RFCs leave room: keywords are case-insensitive and
 * arguments follow after exactly one space each (an empty argument is a
 * syntax error); arguments are limited only by max_line (RFC 2449 section
 * 4 raised RFC 1939's 47-octet command for this); PASS takes the rest of
 * the line. User names and passwords may be UTF-8 whenever "UTF8 USER" is
 * announced (RFC 6856 section 2.2; malformed UTF-8 is refused). They are
 * prepared with SASLprep (RFC 4013: mapping, NFKC over Unicode 3.2,
 * prohibited output, the bidirectional check); APOP prepares the stored
 * secret likewise, as a stored string (no unassigned code points). A message whose header holds
 * bytes beyond ASCII gets "-ERR [UTF8]" from RETR and TOP until the client
 * sends UTF8 (RFC 6856 2.1, 5; see send_8bit_headers). Unknown
 * commands, commands in the wrong state, syntax errors, over-long lines
 * and NUL bytes count toward max_errors; failed logins ([AUTH], including
 * an auth callback's rejection) toward max_auth_failures.
 */
#ifndef MAILPROTO_POP3_H
#define MAILPROTO_POP3_H

#include "mailproto/core.h"
#include "mailproto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mailproto_pop3 mailproto_pop3;

typedef struct mailproto_pop3_config {
  size_t struct_size;
  const mailproto_allocator *allocator; /**< NULL: the C library's */
  const char *hostname;       /**< for the APOP timestamp: "localhost" */
  const char *greeting;       /**< +OK text: "POP3 server ready" */
  const char *implementation; /**< CAPA IMPLEMENTATION, NULL: omitted */
  size_t max_line;            /**< command line with CRLF: 255 (RFC 2449
                                   section 4); longer: -ERR, goes on */
  unsigned max_errors;        /**< bad commands before the session ends
                                   (0: no limit): 10 */
  unsigned max_auth_failures; /**< failed logins before it ends (0: no
                                   limit): 3 */
  unsigned auth_failure_delay_ms; /**< pause before answering a failed
                                       login (needs the delay callback): 0 */
  int login_delay;            /**< CAPA LOGIN-DELAY seconds, -1: omitted */
  int expire;                 /**< CAPA EXPIRE days, -1: NEVER, -2: omitted */
  size_t output_watermark;    /**< output bytes that pause work: 16 KiB */
  unsigned sasl_mechanisms;   /**< MAILPROTO_SASL_*: all */
  int apop;                   /**< offer APOP (timestamp in greeting): 1 */
  int user_pass;              /**< offer USER/PASS: 1 */
  int secure;                 /**< the transport is already encrypted: 0 */
  int allow_insecure_auth;    /**< USER/PASS, PLAIN, LOGIN without TLS: 0 */
  /** RFC 6856 2.1: a message whose header holds bytes beyond ASCII is not
   * sent as is to a client that did not send UTF8; RETR and TOP get
   * "-ERR [UTF8]" (section 5) instead. 1 sends such messages unchanged,
   * as servers before RFC 6856 did (for clients that never send UTF8 and
   * would otherwise never get the message). Default 0. */
  int send_8bit_headers;
} mailproto_pop3_config;

/** Fills `config` with the defaults above; pass sizeof *config. */
MAILPROTO_EXTERN void mailproto_pop3_config_init(mailproto_pop3_config *config,
                                                 size_t struct_size);

typedef struct mailproto_pop3_callbacks {
  size_t struct_size;

  /** Required; as in smtp.h. */
  ptrdiff_t (*send)(mailproto_pop3 *s, const uint8_t *data, size_t len,
                    void *user_data);
  /** STLS was accepted and its +OK fully sent: start the TLS handshake,
   * then call mailproto_pop3_set_secure(). NULL: STLS is not offered. */
  int (*start_tls)(mailproto_pop3 *s, void *user_data);

  /** A client connected; rejecting answers "-ERR <text>" and ends the
   * session. May be NULL. */
  int (*connect)(mailproto_pop3 *s, mailproto_op *op, const char *client,
                 void *user_data);
  /** The store accepted `user`'s credentials; rejecting (e.g. with
   * "[LOGIN-DELAY] ...") turns the login into a failure. May be NULL. */
  int (*auth)(mailproto_pop3 *s, mailproto_op *op, const char *user,
              void *user_data);
  /** Wait `milliseconds` (a timer in the event loop) then complete `op`;
   * used for auth_failure_delay_ms. Must return MAILPROTO_DEFERRED or 0
   * (no wait). NULL: no delay. */
  int (*delay)(mailproto_pop3 *s, mailproto_op *op, unsigned milliseconds,
               void *user_data);
  /** The time for the APOP timestamp; NULL: the system clock. */
  mailproto_datetime (*now)(mailproto_pop3 *s, void *user_data);
  /** A value that makes each challenge unique: the greeting's APOP
   * timestamp "<NONCE.TIME@hostname>" and every CRAM-MD5 challenge (RFC
   * 1939 section 7 and RFC 2195 want one that no other greeting or
   * challenge ever used). Return a fresh, ideally random, number per
   * call. NULL: the session derives one from the clock's nanoseconds, its
   * own address and a per-session counter. Since 0.1.0. */
  uint64_t (*nonce)(mailproto_pop3 *s, void *user_data);
} mailproto_pop3_callbacks;

/** Zeroes `callbacks` and sets struct_size (pass sizeof *callbacks). */
MAILPROTO_EXTERN void
mailproto_pop3_callbacks_init(mailproto_pop3_callbacks *callbacks,
                              size_t struct_size);

/**
 * As mailproto_smtp_new. The config is checked: hostname 1 to 200 letters,
 * digits, '-' and '.'; greeting at most 200 printable ASCII characters
 * without '<' or '>' (so the APOP timestamp is unambiguous, RFC 2449
 * section 3); implementation 1 to 200 printable ASCII characters; max_line
 * 32 to 65536; output_watermark 64 to 1 GiB; login_delay >= -1; expire
 * >= -2. Anything else gives MAILPROTO_ERR_INVALID_ARGUMENT, as do a
 * missing send callback or store.
 */
MAILPROTO_EXTERN int mailproto_pop3_new(const mailproto_pop3_config *config,
                                        const mailproto_pop3_callbacks *callbacks,
                                        const mailproto_store *store,
                                        void *user_data, mailproto_pop3 **out);

/** Frees the session: cancels a deferred store operation, closes the
 * maildrop without expunging anything (RFC 1939 section 6: deletes happen
 * only after QUIT), releases the account. */
MAILPROTO_EXTERN void mailproto_pop3_free(mailproto_pop3 *s);

/** The client's address (copied), for the connect callback. Before start. */
MAILPROTO_EXTERN int mailproto_pop3_set_client(mailproto_pop3 *s,
                                               const char *address);

/** As mailproto_smtp_start: the connect callback, then the greeting. */
MAILPROTO_EXTERN int mailproto_pop3_start(mailproto_pop3 *s);
/** As mailproto_smtp_feed. After STLS every byte is consumed and dropped
 * until mailproto_pop3_set_secure (want_read stays 1 meanwhile). */
MAILPROTO_EXTERN ptrdiff_t mailproto_pop3_feed(mailproto_pop3 *s,
                                               const uint8_t *data,
                                               size_t len);
/** As mailproto_smtp_writable; also produces more of a RETR, TOP, LIST or
 * UIDL response. */
MAILPROTO_EXTERN int mailproto_pop3_writable(mailproto_pop3 *s);
/** As mailproto_smtp_set_secure: after STLS's handshake (back to the
 * AUTHORIZATION state, RFC 2595 section 4, with no new greeting; the
 * error and failed-login counts are kept), or before start for implicit
 * TLS (port 995). May be called from inside start_tls when the handshake
 * finishes at once. Returns 0 or MAILPROTO_ERR_STATE. */
MAILPROTO_EXTERN int mailproto_pop3_set_secure(mailproto_pop3 *s);
MAILPROTO_EXTERN int mailproto_pop3_want_read(const mailproto_pop3 *s);
MAILPROTO_EXTERN int mailproto_pop3_want_write(const mailproto_pop3 *s);
/** As mailproto_smtp_closed. */
MAILPROTO_EXTERN int mailproto_pop3_closed(const mailproto_pop3 *s);
/** The logged-in user, or NULL. */
MAILPROTO_EXTERN const char *mailproto_pop3_user(const mailproto_pop3 *s);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_POP3_H */
