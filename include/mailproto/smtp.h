/*
 * SMTP (RFC 5321) and LMTP (RFC 2033) server sessions.
 *
 * A session never touches a socket. The application:
 *   1. creates it with mailproto_smtp_new() and, optionally, tells it the
 *      client's address with mailproto_smtp_set_client();
 *   2. calls mailproto_smtp_start(), which sends the greeting;
 *   3. feeds every byte read from the client to mailproto_smtp_feed() and
 *      writes what the `send` callback hands it;
 *   4. asks mailproto_smtp_want_read() / _want_write() what the connection
 *      needs, and closes it once mailproto_smtp_closed() says so;
 *   5. frees it with mailproto_smtp_free().
 *
 * Input may be split anywhere and may hold many pipelined commands
 * (RFC 2920); the output never depends on the split. mailproto_smtp_feed()
 * consumes what it can now and returns how much it used: it stops early
 * while a callback or store operation is deferred, while output is
 * congested (the client does not read), and once the session has ended.
 * Keep the unconsumed bytes and feed them again when want_read is 1.
 *
 * Mail is delivered through the store given to mailproto_smtp_new(): each
 * recipient is mapped to an account with lookup_recipient; the message is
 * streamed (dot-unstuffed, optionally after a Received: trace header) into
 * one writer from deliver_begin; 250 is sent only after deliver_commit
 * succeeded. In LMTP mode each accepted recipient gets its own reply after
 * the data, reflecting its own commit.
 *
 * Every policy callback below may answer at once (return 0 to accept, or
 * call mailproto_op_set_reply() with a 4xx/5xx code and return 0 to
 * reject) or later (return MAILPROTO_DEFERRED, keep `op`, and call
 * mailproto_op_complete(op, 0) from the event loop after setting the reply,
 * if any). A negative non-fatal return answers the command with a
 * temporary failure (451 4.3.0); a fatal one (<= MAILPROTO_ERR_FATAL) ends
 * the session with 421. Any callback may reject with 4xx or 5xx (421 also
 * closes the session; connect only takes 220, 421 and 554); accepting
 * replies are 250 (helo, mail, message), 250/251/252 (rcpt, vrfy) and 235
 * (auth); other codes make mailproto_op_set_reply() return
 * INVALID_ARGUMENT. Reply text is cut at 200 octets. In LMTP a message
 * rejection is repeated for every accepted recipient. Strings passed to
 * callbacks are valid until the callback returns (copy what a deferred
 * answer needs). Callbacks may call the session's query functions; they
 * must not call feed, writable or free. No callback runs after
 * mailproto_smtp_free() or inside it.
 */
#ifndef MAILPROTO_SMTP_H
#define MAILPROTO_SMTP_H

#include "mailproto/core.h"
#include "mailproto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mailproto_smtp mailproto_smtp;

/* Service extensions (RFC 5321 2.2), a mask in the config; all on by
 * default. STARTTLS and AUTH also depend on the config fields below. */
#define MAILPROTO_SMTP_EXT_PIPELINING 0x001u   /**< RFC 2920 */
#define MAILPROTO_SMTP_EXT_SIZE 0x002u         /**< RFC 1870 */
#define MAILPROTO_SMTP_EXT_8BITMIME 0x004u     /**< RFC 6152 */
#define MAILPROTO_SMTP_EXT_ENHANCED 0x008u     /**< RFC 2034 */
#define MAILPROTO_SMTP_EXT_SMTPUTF8 0x010u     /**< RFC 6531 */
#define MAILPROTO_SMTP_EXT_CHUNKING 0x020u     /**< RFC 3030 BDAT */
#define MAILPROTO_SMTP_EXT_BINARYMIME 0x040u   /**< RFC 3030, needs CHUNKING */
#define MAILPROTO_SMTP_EXT_DSN 0x080u          /**< RFC 3461 */
#define MAILPROTO_SMTP_EXT_STARTTLS 0x100u     /**< RFC 3207 */
#define MAILPROTO_SMTP_EXT_AUTH 0x200u         /**< RFC 4954 */
#define MAILPROTO_SMTP_EXT_ALL 0x3ffu

/** What to do with a bare CR or LF inside DATA (never a line end). */
typedef enum mailproto_smtp_bare_eol {
  /** Read the message to its end, deliver nothing, answer 550 5.6.0. The
   * default: it defeats SMTP smuggling (CVE-2023-51764 class). */
  MAILPROTO_SMTP_BARE_EOL_REJECT = 0,
  /** Store each bare CR or LF as CRLF. Only CRLF.CRLF still ends DATA. */
  MAILPROTO_SMTP_BARE_EOL_NORMALIZE = 1
} mailproto_smtp_bare_eol;

typedef struct mailproto_smtp_config {
  size_t struct_size;
  const mailproto_allocator *allocator; /**< NULL: the C library's */
  int lmtp;                 /**< 1: LMTP (LHLO, per-recipient replies) */
  const char *hostname;     /**< our name in replies: "localhost" */
  const char *greeting;     /**< 220 text after the name; NULL (the
                                 default): "ESMTP ready" or "LMTP ready" */
  unsigned extensions;      /**< MAILPROTO_SMTP_EXT_*: all */
  size_t max_line;          /**< command line with CRLF: 512 (4.5.3.1.4),
                                 64..1 MiB; longer lines get 500 5.5.2.
                                 SASL responses may be up to 12288
                                 (RFC 4954 4) */
  uint64_t max_message_size; /**< octets stored (Received: included),
                                  advertised by SIZE: 32 MiB; 0 means no
                                  limit */
  unsigned max_recipients;  /**< per transaction: 100 (4.5.3.1.8);
                                 1..100000 */
  unsigned max_errors;      /**< bad commands before 421: 10; 0: never */
  unsigned max_auth_failures; /**< failed AUTH before 421: 3; 0: never */
  size_t output_watermark;  /**< output bytes that pause input: 16 KiB;
                                 256..1 GiB */
  unsigned sasl_mechanisms; /**< MAILPROTO_SASL_*: all */
  int secure;               /**< the transport is already encrypted
                                 (implicit TLS): 0 */
  int allow_insecure_auth;  /**< PLAIN/LOGIN without TLS: 0 */
  int require_auth;         /**< MAIL needs AUTH first (submission): 0 */
  mailproto_smtp_bare_eol bare_eol; /**< REJECT */
  int add_received;         /**< prepend a Received: header: 1 */
} mailproto_smtp_config;

/**
 * Fills `config` with the defaults shown above. Pass sizeof *config as
 * `struct_size`, so a program built against an older header keeps working
 * with a newer library.
 */
MAILPROTO_EXTERN void mailproto_smtp_config_init(mailproto_smtp_config *config,
                                                 size_t struct_size);

/** BODY= of MAIL (RFC 6152, RFC 3030). */
typedef enum mailproto_smtp_body {
  MAILPROTO_SMTP_BODY_UNSPECIFIED = 0,
  MAILPROTO_SMTP_BODY_7BIT,
  MAILPROTO_SMTP_BODY_8BITMIME,
  MAILPROTO_SMTP_BODY_BINARYMIME
} mailproto_smtp_body;

/** RET= of MAIL (RFC 3461 4.3). */
typedef enum mailproto_smtp_ret {
  MAILPROTO_SMTP_RET_UNSPECIFIED = 0,
  MAILPROTO_SMTP_RET_FULL,
  MAILPROTO_SMTP_RET_HDRS
} mailproto_smtp_ret;

/** A MAIL command, parsed and validated. */
typedef struct mailproto_smtp_mail {
  size_t struct_size;
  const char *reverse_path; /**< the address, "" for <> */
  uint64_t size;            /**< SIZE=, 0 if absent */
  mailproto_smtp_body body;
  int smtputf8;             /**< SMTPUTF8 given */
  const char *auth;         /**< AUTH= decoded from xtext ("<>" allowed),
                                 NULL if absent (RFC 4954 5) */
  mailproto_smtp_ret ret;
  const char *envid;        /**< ENVID= decoded from xtext, or NULL */
} mailproto_smtp_mail;

/* NOTIFY= of RCPT (RFC 3461 4.1). */
#define MAILPROTO_SMTP_NOTIFY_NEVER 0x1u
#define MAILPROTO_SMTP_NOTIFY_SUCCESS 0x2u
#define MAILPROTO_SMTP_NOTIFY_FAILURE 0x4u
#define MAILPROTO_SMTP_NOTIFY_DELAY 0x8u

/** An RCPT command, parsed and validated. */
typedef struct mailproto_smtp_rcpt {
  size_t struct_size;
  const char *forward_path; /**< the address ("Postmaster" allowed) */
  unsigned notify;          /**< MAILPROTO_SMTP_NOTIFY_*, 0 if absent */
  const char *orcpt_type;   /**< ORCPT= address type ("rfc822"), or NULL */
  const char *orcpt;        /**< ORCPT= address decoded from xtext */
} mailproto_smtp_rcpt;

/** The finished message, before it is committed. */
typedef struct mailproto_smtp_message {
  size_t struct_size;
  uint64_t size;            /**< octets stored, Received: included */
  size_t recipient_count;   /**< accepted recipients, each account once */
  const char *const *recipients;
  const char *id;           /**< the session's id for it (Received:) */
} mailproto_smtp_message;

typedef struct mailproto_smtp_callbacks {
  size_t struct_size;

  /** Required. Hands bytes to the transport; returns how many it took
   * (0..len), or a negative code, which ends the session. */
  ptrdiff_t (*send)(mailproto_smtp *s, const uint8_t *data, size_t len,
                    void *user_data);

  /**
   * STARTTLS was accepted and its 220 reply has been sent in full: begin
   * the TLS handshake on the transport now, and call
   * mailproto_smtp_set_secure() once it is done. Until then the session
   * discards all input. NULL: STARTTLS is not offered. Returns 0 or a
   * negative code (the session ends).
   */
  int (*start_tls)(mailproto_smtp *s, void *user_data);

  /* Policy callbacks; each may be NULL (accept). */

  /** A client connected (called by start); `client` is the address given
   * to mailproto_smtp_set_client(), or NULL. Rejecting with 554 answers
   * 554 instead of 220 and the session then refuses every command but
   * QUIT (RFC 5321 3.1); 421 closes at once. A reply of 220 only changes
   * the greeting's text. No enhanced codes in the greeting (RFC 2034). */
  int (*connect)(mailproto_smtp *s, mailproto_op *op, const char *client,
                 void *user_data);
  /** HELO, EHLO or LHLO with the client's claimed name (checked to be a
   * domain or an address literal). A 250 reply's text follows our name
   * in the reply. */
  int (*helo)(mailproto_smtp *s, mailproto_op *op, const char *verb,
              const char *domain, void *user_data);
  /** MAIL, after its syntax and the SIZE limit were checked. `auth` is
   * the AUTH= parameter as the client gave it; RFC 4954 5 says to treat
   * it as "<>" unless the client authenticated (mailproto_smtp_user())
   * and is trusted. */
  int (*mail)(mailproto_smtp *s, mailproto_op *op,
              const mailproto_smtp_mail *mail, void *user_data);
  /** Called before the store's lookup_recipient; rejecting skips it. */
  int (*rcpt)(mailproto_smtp *s, mailproto_op *op,
              const mailproto_smtp_rcpt *rcpt, void *user_data);
  /** AUTH succeeded at the store for `user`; rejecting turns it into a
   * failure (535). */
  int (*auth)(mailproto_smtp *s, mailproto_op *op, const char *user,
              void *user_data);
  /** DATA or the first BDAT of a transaction, before 354 / any data. */
  int (*data_start)(mailproto_smtp *s, mailproto_op *op, void *user_data);
  /** Observes the message as stored (after dot-unstuffing, Received:
   * included), chunk by chunk. May not defer or reject; NULL: ignored. */
  void (*body)(mailproto_smtp *s, const uint8_t *data, size_t len,
               void *user_data);
  /** The whole message arrived and is about to be committed; rejecting
   * aborts the delivery (nothing becomes visible). */
  int (*message)(mailproto_smtp *s, mailproto_op *op,
                 const mailproto_smtp_message *msg, void *user_data);
  /** VRFY; NULL (or accept without a reply) answers 252 (RFC 5321
   * 3.5.3). */
  int (*vrfy)(mailproto_smtp *s, mailproto_op *op, const char *argument,
              void *user_data);

  /**
   * The time for Received: headers, message ids and CRAM-MD5 challenges;
   * NULL: the system clock in UTC. The session identifier in ids and the
   * CRAM-MD5 nonce mix a counter, this time, the client's address and,
   * only when this callback is NULL, the session's memory address: with a
   * fixed `now` (tests) they are reproducible, so an application that sets
   * it should return a real, changing clock.
   */
  mailproto_datetime (*now)(mailproto_smtp *s, void *user_data);

  /**
   * The store committed a message (called right after its reply was
   * queued). `results` has msg->recipient_count entries, 0 where the
   * message was delivered, else the store's code for that recipient. Not
   * called when nothing was delivered. May be NULL; cannot defer.
   */
  void (*delivered)(mailproto_smtp *s, const mailproto_smtp_message *msg,
                    const int *results, void *user_data);
} mailproto_smtp_callbacks;

/** Zeroes `callbacks` and sets struct_size (pass sizeof *callbacks). */
MAILPROTO_EXTERN void
mailproto_smtp_callbacks_init(mailproto_smtp_callbacks *callbacks,
                              size_t struct_size);

/**
 * Creates a session. `config` (NULL: defaults) and `callbacks` are copied,
 * with the strings they point to; `store` is borrowed and must outlive the
 * session. Returns 0 and sets *out, MAILPROTO_ERR_INVALID_ARGUMENT (no
 * send callback, no store, impossible limits, a hostname that is not a
 * domain), or MAILPROTO_ERR_NOMEM. Sends nothing.
 */
MAILPROTO_EXTERN int mailproto_smtp_new(const mailproto_smtp_config *config,
                                        const mailproto_smtp_callbacks *callbacks,
                                        const mailproto_store *store,
                                        void *user_data, mailproto_smtp **out);

/**
 * Frees the session. A deferred store operation is cancelled through the
 * store's cancel hook, an unfinished delivery is aborted (nothing becomes
 * visible), account handles are released. A deferred policy callback's op
 * is abandoned: the application must not complete it afterwards.
 */
MAILPROTO_EXTERN void mailproto_smtp_free(mailproto_smtp *s);

/**
 * Tells the session the client's address (copied; e.g. "192.0.2.1" or
 * "IPv6:2001:db8::1") for the connect callback and Received: headers.
 * Only before start. Returns 0, STATE, NOMEM, or INVALID_ARGUMENT for an
 * empty or over-long address, or one with spaces, controls, "(", ")" or
 * "\" (it goes into a Received: comment).
 */
MAILPROTO_EXTERN int mailproto_smtp_set_client(mailproto_smtp *s,
                                               const char *address);

/** Sends the greeting (after the connect callback). Returns 0, STATE if
 * already started, or a fatal code. */
MAILPROTO_EXTERN int mailproto_smtp_start(mailproto_smtp *s);

/** Consumes input; see the top of this header. Returns the number of bytes
 * used (0..len) or a negative code; after a fatal code the session only
 * wants to be freed. */
MAILPROTO_EXTERN ptrdiff_t mailproto_smtp_feed(mailproto_smtp *s,
                                               const uint8_t *data,
                                               size_t len);

/** The transport can take more bytes: flushes queued output and resumes
 * work that waited for room. Returns 0 or a fatal code. */
MAILPROTO_EXTERN int mailproto_smtp_writable(mailproto_smtp *s);

/**
 * The transport is now encrypted. Called after the handshake that
 * start_tls asked for, the session forgets everything the client said
 * before (RFC 3207 4.2: it must send EHLO again) and reads commands again.
 * May also be called before start for implicit TLS (port 465). Returns 0
 * or STATE.
 */
MAILPROTO_EXTERN int mailproto_smtp_set_secure(mailproto_smtp *s);

/** 1 if the session can take input now. */
MAILPROTO_EXTERN int mailproto_smtp_want_read(const mailproto_smtp *s);
/** 1 if output is waiting for the transport. */
MAILPROTO_EXTERN int mailproto_smtp_want_write(const mailproto_smtp *s);
/**
 * 1 once the session has ended (QUIT, too many errors, a rejected
 * connection that quit, a fatal error) and has nothing left to send: close
 * the connection. While a callback or store operation is deferred,
 * want_read is 0 (want_write is 1 only while output waits) but the
 * session is not closed. After STARTTLS, until set_secure, want_read is 1
 * and whatever is fed is discarded.
 */
MAILPROTO_EXTERN int mailproto_smtp_closed(const mailproto_smtp *s);

/** The name the client gave in HELO/EHLO/LHLO, or NULL. */
MAILPROTO_EXTERN const char *mailproto_smtp_helo(const mailproto_smtp *s);
/** The authenticated user, or NULL. */
MAILPROTO_EXTERN const char *mailproto_smtp_user(const mailproto_smtp *s);
/** The client's address set by mailproto_smtp_set_client(), or NULL. */
MAILPROTO_EXTERN const char *mailproto_smtp_client(const mailproto_smtp *s);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_SMTP_H */
