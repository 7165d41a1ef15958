/*
 * The transcript adapter for mailproto_smtp (see support/transcript.h).
 *
 * Options ("@ key value"), one per config field:
 *   lmtp 0|1, hostname NAME, greeting TEXT, max_line N,
 *   max_message_size N, max_recipients N, max_errors N,
 *   max_auth_failures N, output_watermark N, secure 0|1,
 *   allow_insecure_auth 0|1, require_auth 0|1, bare_eol reject|normalize,
 *   add_received 0|1,
 *   extensions NAME,NAME,... (or "none"; names as advertised: PIPELINING
 *   SIZE 8BITMIME ENHANCEDSTATUSCODES SMTPUTF8 CHUNKING BINARYMIME DSN
 *   STARTTLS AUTH), disable NAME (one extension off),
 *   sasl_mechanisms PLAIN,LOGIN,CRAM-MD5 (or "none");
 * and for the application side:
 *   client ADDRESS          mailproto_smtp_set_client()
 *   starttls 0|1            offer a start_tls callback (default 1)
 *   defer_callbacks 0|1     every policy callback defers and is completed
 *                           (its reply set then) from the adapter's next
 *                           writable, outside any library call
 *   reject_connect CODE ENH TEXT       reply of the connect callback
 *   reject_helo DOMAIN CODE ENH TEXT   ... for one HELO/EHLO/LHLO name
 *   reject_mail ADDR CODE ENH TEXT     ... for one reverse-path
 *   reject_rcpt ADDR CODE ENH TEXT     ... for one forward-path
 *   reject_auth USER CODE ENH TEXT     ... for one authenticated user
 *   reject_data CODE ENH TEXT          data_start callback
 *   reject_message CODE ENH TEXT       message callback
 *   vrfy ARG CODE ENH TEXT             the VRFY callback's reply
 *     (ADDR/DOMAIN/USER/ARG "*" matches any; ENH "-" for none; a 2xx
 *     CODE accepts with that reply)
 *   fail_callback KIND ERROR  a callback (connect helo mail rcpt auth
 *                           data message vrfy) returns MAILPROTO_ERR_ERROR
 *   fail_hook HOOK ERROR      a store hook fails (faultstore_fail_hook)
 *
 * STARTTLS: after start_tls is called, everything the client sends is
 * still fed to the session (which must drop it) up to and including the
 * line "[TLS handshake]", the client's stand-in for the handshake; then
 * the adapter calls mailproto_smtp_set_secure(). A transcript writes
 *   C: STARTTLS
 *   S: 220 2.0.0 Ready to start TLS
 *   E: starttls
 *   C: [TLS handshake]
 *   C: EHLO ...
 *
 * Events ("E: text"): "mail <PATH>[ size=N][ body=B][ smtputf8]
 * [ auth=A][ ret=R][ envid=E]", "rcpt <PATH>[ notify=...][ orcpt=T;A]",
 * "data", "message <size> <recipients>", "delivered" (or "delivered K/N"
 * when only K of N recipients got it), "starttls", "auth <user>".
 */
#ifndef MAILPROTO_TEST_SMTP_ADAPTER_H
#define MAILPROTO_TEST_SMTP_ADAPTER_H

#include "support/transcript.h"

extern const transcript_adapter smtp_adapter;
/* The same, with every policy callback deferred whatever the options say;
 * any transcript must give the same output through it. */
extern const transcript_adapter smtp_adapter_deferred;

#endif
