/*
 * IMAP server sessions: IMAP4rev1 (RFC 3501) by default, IMAP4rev2
 * (RFC 9051) after "ENABLE IMAP4rev2", with the extensions listed in the
 * CAPABILITY response (LITERAL+/LITERAL-, SASL-IR, ID, ENABLE, IDLE,
 * NAMESPACE, UNSELECT, UIDPLUS, MOVE, CHILDREN, LIST-EXTENDED,
 * LIST-STATUS, SPECIAL-USE, APPENDLIMIT, MULTIAPPEND, STATUS=SIZE, ...).
 *
 * CONDSTORE (RFC 7162 3.1) uses the mod-sequences the store reports
 * (mailproto_message_info.modseq, mailproto_mailbox_status.highest_modseq,
 * set_flags' unchanged_since); a mailbox whose status reports
 * highest_modseq 0 is answered with NOMODSEQ. Decisions: HIGHESTMODSEQ
 * goes out at every SELECT, before CONDSTORE is enabled too (3.1.2.1
 * allows it); after a FETCH that sets \Seen the new MODSEQ follows in an
 * unsolicited FETCH; UNCHANGEDSINCE 0 fails where a system flag is
 * stored (always) or a keyword being stored is already set, and, since
 * the store checks it atomically against the mod-sequence the session
 * last saw, where the message changed since (the client learns the
 * change with the answer and may retry, RFC 7162 3.1.3).
 *
 * QRESYNC (RFC 7162 3.2): after ENABLE QRESYNC expunges go out as
 * VANISHED; SELECT/EXAMINE (QRESYNC ...) and UID FETCH (VANISHED) answer
 * VANISHED (EARLIER). The stores keep no history of expunges, so that
 * lists every UID of the client's set (narrowed by its sequence match
 * data) that no message has, whenever it went, as RFC 7162 3.2.5.2
 * allows; a client therefore never misses an expunge, whatever
 * mod-sequence it cached.
 *
 * The life of a session is the one described at the top of smtp.h:
 * mailproto_imap_new, _start (greeting), _feed with every byte read (it
 * returns how many it used; keep the rest and feed it again when
 * want_read is 1), the `send` callback for output, _writable when the
 * transport can take more, _closed to know when to close, _free.
 *
 * Other sessions' changes: a selected mailbox is watched through the
 * store's notify hook. When it fires, the session calls the `wakeup`
 * callback (from inside another session's store operation: it must only
 * schedule work). The application then calls mailproto_imap_sync() from
 * its loop; the session reports the changes (EXISTS, EXPUNGE, FETCH)
 * at once if it is idling, or with the next command where RFC 3501 7.4.1
 * allows them. A store whose changes can come from other processes (the
 * Maildir store) is not able to notify: call mailproto_imap_sync()
 * periodically (every few seconds) for sessions that are in IDLE.
 *
 * IDLE keep-alive: call mailproto_imap_keepalive() every few minutes (RFC
 * 2177 asks for less than 29); an idling session then sends
 * "* OK Still here" so NAT boxes keep the connection.
 *
 * Policy callbacks follow the rules at the top of smtp.h; for IMAP a
 * reply code of 400 or above rejects (the text is sent after "NO "; a
 * response code such as "[UNAVAILABLE]" belongs at its start) and
 * `enhanced` is not used.
 */
#ifndef MAILPROTO_IMAP_H
#define MAILPROTO_IMAP_H

#include "mailproto/core.h"
#include "mailproto/store.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mailproto_imap mailproto_imap;

typedef struct mailproto_imap_config {
  size_t struct_size;
  const mailproto_allocator *allocator; /**< NULL: the C library's */
  const char *greeting;      /**< text of "* OK [CAPABILITY ...] <text>":
                                  "IMAP server ready" */
  size_t max_line;           /**< one command line, literals excluded:
                                  8192 (RFC 7162 section 4 asks >= 8192) */
  size_t max_literal;        /**< one literal outside APPEND: 65536
                                  (before login at most 4096, whatever
                                  this says) */
  size_t max_command;        /**< a whole command outside APPEND message
                                  data, literals included: 262144 */
  unsigned max_literals;     /**< literals in one command: 64 */
  unsigned max_nesting;      /**< parenthesis depth: 32 */
  unsigned max_sequence_ranges; /**< ranges in one sequence set: 1000 */
  uint64_t max_append;       /**< one APPEND message, APPENDLIMIT: 64 MiB;
                                  0 means no limit */
  unsigned max_errors;       /**< BAD replies before BYE once logged in: 20 */
  unsigned max_errors_unauth; /**< ... before login: 5 */
  unsigned max_auth_failures; /**< failed logins before BYE: 3 */
  size_t output_watermark;   /**< output bytes that pause work: 16 KiB */
  unsigned sasl_mechanisms;  /**< MAILPROTO_SASL_*: all */
  int secure;                /**< the transport is already encrypted: 0 */
  int allow_insecure_auth;   /**< LOGIN, PLAIN, LOGIN-SASL without TLS: 0 */
  int literal_minus;         /**< advertise LITERAL- (RFC 7888: only
                                  non-synchronising literals up to 4096)
                                  instead of LITERAL+: 0 */
  const char *id_name;       /**< ID response "name": "libmailproto";
                                  NULL: send ID NIL */
} mailproto_imap_config;

/** Fills `config` with the defaults above; pass sizeof *config. */
MAILPROTO_EXTERN void mailproto_imap_config_init(mailproto_imap_config *config,
                                                 size_t struct_size);

typedef struct mailproto_imap_callbacks {
  size_t struct_size;

  /** Required; as in smtp.h. */
  ptrdiff_t (*send)(mailproto_imap *s, const uint8_t *data, size_t len,
                    void *user_data);
  /** STARTTLS was accepted and its OK fully sent: start the handshake,
   * then call mailproto_imap_set_secure(). NULL: STARTTLS not offered. */
  int (*start_tls)(mailproto_imap *s, void *user_data);
  /** A client connected; rejecting sends "* BYE <text>" and ends the
   * session. May be NULL. */
  int (*connect)(mailproto_imap *s, mailproto_op *op, const char *client,
                 void *user_data);
  /** The store accepted `user`'s credentials; rejecting turns the login
   * into a failure (NO [AUTHENTICATIONFAILED] or the reply's text). May be
   * NULL. */
  int (*auth)(mailproto_imap *s, mailproto_op *op, const char *user,
              void *user_data);
  /** Another session changed the selected mailbox: call
   * mailproto_imap_sync() soon, from the event loop (not from here). It
   * may also come from inside this session's own store call (an APPEND
   * to the selected mailbox, with stores that notify every handle). May
   * be NULL (then poll mailproto_imap_sync()). */
  void (*wakeup)(mailproto_imap *s, void *user_data);
  /** The time for INTERNALDATE of APPENDs without a date is the store's;
   * this clock serves keep-alive texts and nonces. NULL: system clock. */
  mailproto_datetime (*now)(mailproto_imap *s, void *user_data);
} mailproto_imap_callbacks;

/** Zeroes `callbacks` and sets struct_size (pass sizeof *callbacks). */
MAILPROTO_EXTERN void
mailproto_imap_callbacks_init(mailproto_imap_callbacks *callbacks,
                              size_t struct_size);

/** As mailproto_smtp_new. */
MAILPROTO_EXTERN int mailproto_imap_new(const mailproto_imap_config *config,
                                        const mailproto_imap_callbacks *callbacks,
                                        const mailproto_store *store,
                                        void *user_data, mailproto_imap **out);

/** Frees the session: cancels a deferred store operation, aborts an
 * unfinished APPEND, closes the selected mailbox, releases the account. */
MAILPROTO_EXTERN void mailproto_imap_free(mailproto_imap *s);

/** The client's address (copied), for the connect callback. Before start. */
MAILPROTO_EXTERN int mailproto_imap_set_client(mailproto_imap *s,
                                               const char *address);
MAILPROTO_EXTERN int mailproto_imap_start(mailproto_imap *s);
MAILPROTO_EXTERN ptrdiff_t mailproto_imap_feed(mailproto_imap *s,
                                               const uint8_t *data,
                                               size_t len);
MAILPROTO_EXTERN int mailproto_imap_writable(mailproto_imap *s);
/** As mailproto_smtp_set_secure (RFC 3501 6.2.1: the client must ask for
 * CAPABILITY again; nothing else is reset because only the not
 * authenticated state allows STARTTLS). */
MAILPROTO_EXTERN int mailproto_imap_set_secure(mailproto_imap *s);

/**
 * Reports changes other sessions made to the selected mailbox: at once
 * while idling, else they are kept for the next command that may report
 * them. Call it after the wakeup callback fired, or periodically for
 * stores that cannot notify. Returns 0 or a fatal code. Never call it from
 * inside a callback.
 */
MAILPROTO_EXTERN int mailproto_imap_sync(mailproto_imap *s);

/** Sends "* OK Still here" if the session is idling (RFC 2177). Returns 0
 * or a fatal code. */
MAILPROTO_EXTERN int mailproto_imap_keepalive(mailproto_imap *s);

MAILPROTO_EXTERN int mailproto_imap_want_read(const mailproto_imap *s);
MAILPROTO_EXTERN int mailproto_imap_want_write(const mailproto_imap *s);
/** As mailproto_smtp_closed. */
MAILPROTO_EXTERN int mailproto_imap_closed(const mailproto_imap *s);
/** The logged-in user, or NULL. */
MAILPROTO_EXTERN const char *mailproto_imap_user(const mailproto_imap *s);
/** 1 while the session is in IDLE (the application may use a longer
 * timeout then: RFC 3501 5.4 asks for at least 30 minutes anyway). */
MAILPROTO_EXTERN int mailproto_imap_idling(const mailproto_imap *s);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_IMAP_H */
