/*
 * testproto: a small line protocol that follows the session contract of
 * DESIGN.md exactly, built from the core pieces (line reader, output
 * queue, SASL engine, store wrappers). It proves the transcript runner and
 * is the template the SMTP, POP3 and IMAP sessions follow.
 *
 * Greeting "* READY testproto". Commands (verbs case-insensitive), each
 * answered with one "OK ..." or "ERR ..." line:
 *   ECHO <text>               OK <text>
 *   B64 ENC <text>            OK <base64>
 *   B64 DEC <base64>          OK <text> (ERR syntax if it decodes to CR,
 *                             LF or NUL, which would break the line)
 *   DATE <RFC 5322 date>      OK <IMAP date-time>
 *   MUTF7 <name>              OK <UTF-8>
 *   UTF8 <text>               OK <modified UTF-7>
 *   AUTH <mech> [initial]     SASL (PLAIN, LOGIN, CRAM-MD5); continuations
 *                             "+ <base64>", answered by one line each;
 *                             OK authenticated / ERR authentication failed
 *                             / ERR cancelled; event "auth <user>"
 *   STATUS <mailbox>          OK messages=N uidnext=N uidvalidity=N
 *   APPEND <mailbox> {n}      "+ go", then exactly n raw bytes (not lines),
 *                             streamed to the store as they arrive;
 *                             OK uid=N; event "append <mailbox> <n>"
 *   BIG <n>                   "* line 1" .. "* line n" then OK big,
 *                             produced only while the output queue is not
 *                             congested (backpressure)
 *   QUIT                      OK bye, then close
 * STATUS and APPEND need a successful AUTH. Errors: ERR unknown command,
 * ERR syntax (also for a CR inside a line, which a reply would echo), ERR
 * line too long (the session goes on), ERR nul, and after max_errors
 * consecutive ERR replies "ERR too many errors" and close. Lines end with
 * CRLF or a bare LF.
 *
 * The session contract:
 *  - Nothing is sent before testproto_start().
 *  - testproto_feed() consumes what it can now and returns the number of
 *    bytes used; it stops early while a store operation is deferred, while
 *    output is congested or a BIG reply is being produced, and once the
 *    session closes. The application keeps the rest and feeds it again
 *    when testproto_want_read() is 1. The result never depends on how the
 *    input was split.
 *  - Output goes through callbacks.send, which may take fewer bytes than
 *    offered; the rest waits in a bounded queue until testproto_writable().
 *  - A store hook may defer; mailproto_op_complete() then resumes the
 *    command (its reply is sent) but parses no further input.
 *  - want_read / want_write tell what the connection needs. While an
 *    operation is deferred both are 0 and testproto_pending() is 1; the
 *    application closes the connection when all three are 0.
 *  - Fatal errors (negative codes <= MAILPROTO_ERR_FATAL, e.g. NOMEM) end
 *    the session: every later call returns the same code, nothing more is
 *    sent, and all three queries are 0. No callback runs after
 *    testproto_free() or from inside it.
 */
#ifndef MAILPROTO_TEST_TESTPROTO_H
#define MAILPROTO_TEST_TESTPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/store.h"

typedef struct testproto testproto;

typedef struct testproto_config {
  size_t struct_size;
  const mailproto_allocator *allocator; /* NULL: the C library's */
  size_t max_line;          /* longest command line with its CRLF: 256 */
  unsigned max_errors;      /* consecutive ERR replies before closing: 3 */
  size_t output_watermark;  /* output bytes that make the queue congested:
                               4096; the hard limit adds room for the
                               longest single reply */
  uint64_t max_append;      /* largest APPEND literal: 1 MiB */
  unsigned sasl_mechanisms; /* MAILPROTO_SASL_*: all */
  int secure;               /* the transport is encrypted: 1 */
  int allow_plaintext;      /* PLAIN/LOGIN without encryption: 0 */
  /* The CRAM-MD5 challenge (copied). NULL: "<N.testproto@localhost>" with
   * N counting this session's CRAM-MD5 exchanges from 1. */
  const char *cram_challenge;
} testproto_config;

/* Sets struct_size and every default. */
void testproto_config_init(testproto_config *config);

typedef struct testproto_callbacks {
  size_t struct_size;
  /* Returns the bytes taken (0..len) or a negative code (fatal). */
  ptrdiff_t (*send)(testproto *s, const uint8_t *data, size_t len,
                    void *user_data);
  /* Reports "auth <user>" and "append <mailbox> <n>"; may be NULL. */
  void (*event)(testproto *s, const char *text, void *user_data);
} testproto_callbacks;

void testproto_callbacks_init(testproto_callbacks *callbacks);

/*
 * Creates a session. config, callbacks and the cram challenge are copied;
 * `store` is borrowed and must outlive the session. Returns 0 and sets
 * *out, or MAILPROTO_ERR_INVALID_ARGUMENT (missing send, bad limits) or
 * MAILPROTO_ERR_NOMEM.
 */
int testproto_new(const testproto_config *config,
                  const testproto_callbacks *callbacks,
                  const mailproto_store *store, void *user_data,
                  testproto **out);

/* Sends the greeting. Returns 0, MAILPROTO_ERR_STATE if already started,
 * or a fatal code. */
int testproto_start(testproto *s);

/* See the contract above. Returns bytes consumed or a negative code. */
ptrdiff_t testproto_feed(testproto *s, const uint8_t *data, size_t len);

/* The transport can take more: flushes, and produces more of a BIG reply.
 * Returns 0 or a fatal code. */
int testproto_writable(testproto *s);

int testproto_want_read(const testproto *s);
int testproto_want_write(const testproto *s);
int testproto_pending(const testproto *s);

/* Frees the session; cancels a deferred operation through the store's
 * cancel hook, aborts an unfinished APPEND, releases the account. */
void testproto_free(testproto *s);

#endif
