/*
 * The IMAP transcript adapter and the store helpers the IMAP suites share.
 *
 * Transcript options ("@ key value"), applied in order:
 *   secure 0|1, allow_insecure_auth 0|1, literal_minus 0|1
 *   max_line N, max_literal N, max_command N, max_literals N,
 *   max_nesting N, max_sequence_ranges N, max_append N, max_errors N,
 *   max_errors_unauth N, max_auth_failures N, output_watermark N
 *   greeting TEXT, id_name TEXT|none
 *   sasl MECH[,MECH...] | none      the enabled SASL mechanisms
 *   client ADDRESS                  mailproto_imap_set_client()
 *   connect accept|fail|reject[ TEXT]
 *                                   a connect callback (event
 *                                   "connect ADDRESS"); fail returns
 *                                   MAILPROTO_ERR_TEMPORARY
 *   auth accept|fail|reject[ TEXT]  an auth callback (event "auth USER")
 *   tls 1                           a start_tls callback (event
 *                                   "starttls"); afterwards the client
 *                                   byte 0x16 (C~ \x16) stands for the
 *                                   finished handshake: the adapter eats
 *                                   it and calls mailproto_imap_set_secure
 *   user NAME PASSWORD              another memstore user
 *   mailbox NAME[ USE]              creates alice's mailbox NAME (UTF-8),
 *                                   USE one of all, archive, drafts,
 *                                   flagged, junk, sent, trash
 *   subscribe NAME                  alice subscribes to NAME
 *   flags seen,deleted,...|none     flags for the messages that follow
 *   keywords K1,K2,...|none         keywords for the messages that follow
 *   message ESCAPED                 appends a message to alice's INBOX
 *                                   (escapes \r \n \t \\ \xHH)
 *   message_in MAILBOX ESCAPED      the same into another of her mailboxes
 * The client byte 0x01 (C~ \x01) stands for another session delivering
 * IMAP_TEST_DELIVERY to alice's INBOX at that moment: the adapter eats it,
 * appends through the memory store directly, and then calls
 * mailproto_imap_sync() as an application woken by the wakeup callback
 * would.
 * Internal dates are the runner's fixed clock, 26-Nov-2026 14:05:07 +0000.
 */
#ifndef MAILPROTO_TEST_IMAP_ADAPTER_H
#define MAILPROTO_TEST_IMAP_ADAPTER_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/memstore.h"
#include "support/transcript.h"

extern const transcript_adapter imap_transcript_adapter;

/* The message the 0x01 marker delivers (23 octets). */
#define IMAP_TEST_DELIVERY "Subject: new\r\n\r\nHello\r\n"

/* Appends a message to `user`'s mailbox through the memstore's hooks,
 * with flags and keywords (NULL: none). Returns 0 or a negative code. */
int imap_test_append(mailproto_memstore *ms, const char *user,
                     const char *mailbox, const void *data, size_t len,
                     uint32_t flags, const char *const *keywords,
                     size_t keyword_count);

/* Creates `user`'s mailbox (special: MAILPROTO_MBOX_SPECIAL_* or 0). */
int imap_test_create(mailproto_memstore *ms, const char *user,
                     const char *mailbox, unsigned special);

/* Subscribes `user` to `mailbox`. */
int imap_test_subscribe(mailproto_memstore *ms, const char *user,
                        const char *mailbox);

/* The status of `user`'s mailbox. Returns 0 or a negative code. */
int imap_test_status(mailproto_memstore *ms, const char *user,
                     const char *mailbox, mailproto_mailbox_status *out);

#endif
