/*
 * The POP3 transcript adapter and the helpers the POP3 suites share.
 *
 * Transcript options ("@ key value"), applied in order:
 *   secure 0|1, allow_insecure_auth 0|1, apop 0|1, user_pass 0|1
 *   max_line N, max_errors N, max_auth_failures N, output_watermark N,
 *   login_delay N, expire N|never, auth_failure_delay_ms N
 *   hostname H, greeting TEXT, implementation TEXT
 *   sasl MECH[,MECH...] | none      the enabled SASL mechanisms
 *   client ADDRESS                  mailproto_pop3_set_client()
 *   connect accept|fail|reject[ TEXT]
 *                                   a connect callback (event
 *                                   "connect ADDRESS"); fail returns
 *                                   MAILPROTO_ERR_TEMPORARY
 *   auth accept|fail|reject[ TEXT]  an auth callback (event "auth USER")
 *   delay 1                         a delay callback (event "delay MS")
 *                                   that does not wait
 *   tls 1                           a start_tls callback (event
 *                                   "starttls"); afterwards the client
 *                                   byte 0x16 (C~ \x16, the first byte of
 *                                   a TLS ClientHello) stands for the
 *                                   finished handshake: the adapter eats
 *                                   it and calls mailproto_pop3_set_secure
 *   user NAME PASSWORD              another memstore user
 *   flags seen,deleted,...|none     flags for the messages that follow
 *   message ESCAPED                 appends a message to alice's INBOX
 *                                   (escapes \r \n \t \\ \xHH)
 *   message_to USER ESCAPED         the same for another user
 *   locked 1                        another session holds alice's lock
 * The time is 1795702707 and the nonce counts 1, 2, ... per session, so
 * the greeting's timestamp is "<1.1795702707@localhost>".
 */
#ifndef MAILPROTO_TEST_POP3_ADAPTER_H
#define MAILPROTO_TEST_POP3_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/memstore.h"
#include "support/transcript.h"

extern const transcript_adapter pop3_transcript_adapter;

/* The fixed clock of transcripts and of the memstore the runner builds. */
#define POP3_TEST_TIME 1795702707

/* Appends a message to `user`'s INBOX through the memstore's hooks.
 * Returns 0 or a negative code. */
int pop3_test_append(mailproto_memstore *ms, const char *user, const void *data,
                     size_t len, uint32_t flags);

/* Opens `user`'s INBOX exclusively, as another POP3 session would; undo
 * with pop3_test_unlock. Returns 0 or a negative code. */
int pop3_test_lock(mailproto_memstore *ms, const char *user, void **account,
                   void **mailbox);
void pop3_test_unlock(mailproto_memstore *ms, void *account, void *mailbox);

/* Counts the messages in `user`'s INBOX (or a negative code). */
long pop3_test_count(mailproto_memstore *ms, const char *user);

#endif
