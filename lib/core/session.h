/*
 * The plumbing every protocol session shares. SMTP/LMTP, POP3, IMAP and
 * the test protocol each embed one mailproto_session_io and drive it with
 * the functions below, so the session contract of DESIGN.md is written
 * once: the bounded output queue and its backpressure, the one op that
 * may be deferred, fatal errors that stick, the STARTTLS sequence and the
 * memory an idle session keeps. What a protocol says, and when, stays in
 * its own folder, and so do its callbacks (their types name the
 * protocol's session): the protocol hands two small adapters that call
 * them, `send` for the output queue and `start_tls`.
 *
 * Every entry point has the same shape:
 *
 *   int rc = mailproto_session_enter(&s->io);   fatal? started? cork
 *   if (rc != 0)
 *     return rc;
 *   rc = ...the protocol's work, queueing replies...;
 *   return mailproto_session_leave(&s->io, rc, busy);
 *
 * feed() runs its steps in `while (mailproto_session_feeding(...))` and
 * returns through mailproto_session_fed(); an op's completion opens with
 * mailproto_session_resume(); writable() is mailproto_session_flush(),
 * then whatever the protocol produces, then mailproto_session_settle().
 *
 * leave() sends what the batch queued, makes a failure sticky (every
 * later call returns the same fatal code and nothing more is sent),
 * starts TLS once the go-ahead is on the wire, and gives back the buffers
 * of a burst when the session is idle.
 */
#ifndef MAILPROTO_CORE_SESSION_H
#define MAILPROTO_CORE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "core/line.h"
#include "core/op.h"
#include "core/outq.h"

/* An idle session keeps output and line buffers of up to this many bytes
 * for reuse and gives larger ones back (DESIGN.md: an idle session costs
 * about a kilobyte). */
#define MAILPROTO_SESSION_KEEP 1024u

/* The STARTTLS sequence (RFC 3207 4, RFC 2595 4, RFC 3501 6.2.1): the
 * go-ahead is queued, every byte after the command is discarded (it came
 * in the clear and may have been injected), start_tls is called once the
 * go-ahead has been sent in full, and input is discarded until the
 * application reports the transport secure. */
enum {
  MAILPROTO_TLS_OFF = 0, /* no STARTTLS in progress */
  MAILPROTO_TLS_FLUSH,   /* go-ahead queued: start_tls once it is sent */
  MAILPROTO_TLS_WAIT     /* start_tls called: waiting for set_secure */
};

/* Calls the application's start_tls callback; returns what it returned. */
typedef int (*mailproto_session_tls_fn)(void *owner);

typedef struct mailproto_session_io {
  mailproto_line_reader lines;
  mailproto_outq out;
  mailproto_op op; /* the one step that may be deferred */
  mailproto_session_tls_fn start_tls;
  void *owner;           /* the protocol's session, for the adapters */
  int fatal;             /* sticky fatal code, or 0 */
  unsigned char started; /* start() was called */
  unsigned char secure;  /* the transport is encrypted */
  unsigned char tls;     /* MAILPROTO_TLS_* */
} mailproto_session_io;

typedef struct mailproto_session_setup {
  const mailproto_allocator *alloc; /* the session's; must outlive it */
  size_t max_line;                  /* line reader limit, line end included */
  size_t out_limit;                 /* hard limit of pending output */
  size_t watermark;                 /* congested at this much pending */
  mailproto_outq_send_fn send;
  mailproto_session_tls_fn start_tls; /* NULL: STARTTLS never begins */
  const mailproto_op_sink *sink;
  void *owner;
  int secure; /* the transport starts encrypted (implicit TLS) */
} mailproto_session_setup;

/* ---- creation ---- */

/* The body of a public *_config_init() / *_callbacks_init(): fills the
 * caller's struct, `struct_size` bytes as its header knows it, with our
 * `defaults` (NULL: zeros) of `size` bytes, as far as both go, and sets
 * its struct_size to what was filled. Does nothing for a NULL `dst` or a
 * struct_size too small to hold struct_size itself. */
void mailproto_session_init_sized(void *dst, size_t struct_size,
                                  const void *defaults, size_t size);

/* Copies a caller's config or callbacks struct, which may come from an
 * older header (a smaller struct_size, its first field), over the defaults
 * in `dst`, and sets dst's struct_size to dst_size. INVALID_ARGUMENT when
 * the caller's struct is shorter than `min_size` (it lacks fields every
 * version has, so struct_size was not set). */
int mailproto_session_copy_sized(void *dst, size_t dst_size, const void *src,
                                 size_t min_size);

/* Copies the config's strings *fields[0..n) (NULL ones stay NULL) into
 * one block from `alloc`, so the session does not keep the caller's
 * pointers, and points each field at its copy. Sets *block, which the
 * session frees. Returns 0 or NOMEM (the fields are then unchanged). */
int mailproto_session_copy_strings(const mailproto_allocator *alloc,
                                   const char **const fields[], size_t n,
                                   char **block);

/* Prepares `io`; allocates nothing. */
void mailproto_session_init(mailproto_session_io *io,
                            const mailproto_session_setup *setup);

/* Frees the buffers. A pending op is forgotten: the protocol first cancels
 * a store op through mailproto_store_call_cancel(); a policy callback's
 * op is abandoned (the application was told not to complete it). */
void mailproto_session_free(mailproto_session_io *io);

/* ---- the adapters ---- */

/* Turns what an application's send callback returned for `len` offered
 * bytes into the output queue's contract: *sent, or a fatal code (the
 * callback's own fatal code, else CALLBACK_FAILURE; claiming more than
 * was offered is a failure too). */
int mailproto_session_sent(ptrdiff_t n, size_t len, size_t *sent);

/* The code that ends a session whose callback failed with negative `rc`:
 * its own fatal code, else CALLBACK_FAILURE. */
int mailproto_session_callback_error(int rc);

/* ---- entry points ---- */

/* start(): 0 and the batch is open (corked), or the sticky fatal code,
 * or STATE when already started. */
int mailproto_session_start(mailproto_session_io *io);

/* feed() and the like: 0 and the batch is open, or the sticky fatal code,
 * or STATE before start. */
int mailproto_session_enter(mailproto_session_io *io);

/* An op's completion resumes the session: 0 and the batch is open, or the
 * sticky fatal code. */
int mailproto_session_resume(mailproto_session_io *io);

/* Opens one more batch inside an entry point (a loop that produces while
 * the transport keeps up). */
static inline void mailproto_session_begin(mailproto_session_io *io) {
  mailproto_outq_cork(&io->out);
}

/*
 * Closes a batch whose work returned `rc`: sends what was queued; on
 * failure (rc or the transport's) makes it sticky and discards the queue;
 * else settles (below). `busy`: a response or command is still in
 * progress, so its buffers stay. Returns 0 or the fatal code.
 */
int mailproto_session_leave(mailproto_session_io *io, int rc, int busy);

/* writable(): offers the queued bytes to the transport. Returns 0, the
 * sticky fatal code (now also for a failed send), or STATE before start. */
int mailproto_session_flush(mailproto_session_io *io);

/*
 * After output was offered: once the queue is empty, calls start_tls if
 * the go-ahead was waiting for that, and, unless `busy` or an op is
 * pending, gives back buffers grown past MAILPROTO_SESSION_KEEP. Returns 0
 * or the fatal code (start_tls failed).
 */
int mailproto_session_settle(mailproto_session_io *io, int busy);

/* Makes `code` the session's sticky fatal error (a non-fatal code becomes
 * INTERNAL: reaching here with one is a bug) and discards queued output.
 * Returns the sticky code. */
int mailproto_session_fail(mailproto_session_io *io, int code);

/* Gives back the output and line buffers grown past `keep` bytes, if no
 * output is pending and no line is half read. */
void mailproto_session_trim(mailproto_session_io *io, size_t keep);

/* ---- input ---- */

/* Whether input may be consumed now, as far as the plumbing knows:
 * started, not failed, no op pending, and output not congested (input
 * after STARTTLS is consumed, and dropped, even then). The protocol adds
 * its own conditions (closing, a response still being produced). */
int mailproto_session_can_read(const mailproto_session_io *io);

/* Whether input is being dropped (STARTTLS in progress). */
static inline int mailproto_session_discarding(const mailproto_session_io *io) {
  return io->tls != MAILPROTO_TLS_OFF;
}

/* Inside the feed loop: while STARTTLS is in progress every byte left is
 * consumed and dropped (*used becomes len) and the loop must stop: 1.
 * Else 0. */
static inline int mailproto_session_drop(const mailproto_session_io *io,
                                         size_t *used, size_t len) {
  if (!mailproto_session_discarding(io))
    return 0;
  *used = len;
  return 1;
}

/*
 * The condition of every feed loop:
 *
 *   while (mailproto_session_feeding(&s->io, rc, &used, len, can_consume(s)))
 *     ...one step: a line, or body bytes...
 *
 * Goes on while the last step returned 0, input is left and the protocol
 * can take it (`can`, which includes mailproto_session_can_read()). Input
 * after STARTTLS is consumed here and dropped: it came in the clear, and a
 * man in the middle may have put it there (the CVE-2011-0411 class).
 */
static inline int mailproto_session_feeding(const mailproto_session_io *io,
                                            int rc, size_t *used, size_t len,
                                            int can) {
  return rc == 0 && *used < len && can &&
         !mailproto_session_drop(io, used, len);
}

/* Ends feed(): closes the batch as mailproto_session_leave() does and
 * returns the bytes used, or the fatal code. */
static inline ptrdiff_t mailproto_session_fed(mailproto_session_io *io, int rc,
                                              size_t used, int busy) {
  rc = mailproto_session_leave(io, rc, busy);
  return rc < 0 ? rc : (ptrdiff_t)used;
}

/* ---- STARTTLS ---- */

/* The go-ahead has just been queued: from now on input is dropped, and
 * start_tls is called once the go-ahead is sent. */
void mailproto_session_tls_begin(mailproto_session_io *io);

/* The application reports the transport secure. Before start: implicit
 * TLS, 0. After start: STATE unless start_tls was called and this is the
 * first report; then input is read again from a clean line reader and the
 * protocol resets its own state. Fatal sessions are the caller's to
 * check (protocols document different answers). */
int mailproto_session_tls_done(mailproto_session_io *io);

/* ---- queries ---- */

/* Output waits, or `more` (a response the session is still producing). */
int mailproto_session_want_write(const mailproto_session_io *io, int more);

/* Failed, or `closing` with all output sent and no op pending. */
int mailproto_session_closed(const mailproto_session_io *io, int closing);

/* An op is deferred (and the session has not failed). */
int mailproto_session_pending(const mailproto_session_io *io);

/* ---- commands ---- */

/* 1 if the `len` bytes at `text` are `word` (upper case) in any case: the
 * verbs of every protocol are case-insensitive ASCII (RFC 5321 2.4, RFC
 * 1939 3, RFC 3501 9). */
int mailproto_session_verb_is(const char *text, size_t len, const char *word);

/* ---- counters ---- */

/* Counts one more error or failed login in *n (saturating); returns 1 when
 * the count reaches `max` (0: no limit), the point where the protocol
 * answers "too many" and closes. */
static inline int mailproto_session_count(unsigned *n, unsigned max) {
  if (*n < (unsigned)-1)
    (*n)++;
  return max != 0 && *n >= max;
}

#endif
