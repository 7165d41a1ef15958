/*
 * libmailproto: transport-agnostic SMTP/LMTP, POP3 and IMAP server sessions.
 *
 * The umbrella header: includes every public header. Each module's header
 * can also be included on its own.
 *   core.h      version, errors, allocator, operations, base64, dates, UTF-7
 *   store.h     the storage interface
 *   memstore.h  the in-memory store
 *   maildir.h   the Maildir store
 *   smtp.h      SMTP and LMTP server sessions
 *   pop3.h      POP3 server sessions
 */
#ifndef MAILPROTO_MAILPROTO_H
#define MAILPROTO_MAILPROTO_H

#include "mailproto/core.h"
#include "mailproto/imap.h"
#include "mailproto/maildir.h"
#include "mailproto/memstore.h"
#include "mailproto/pop3.h"
#include "mailproto/smtp.h"
#include "mailproto/store.h"

#endif /* MAILPROTO_MAILPROTO_H */
