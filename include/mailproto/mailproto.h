/*
 * libmailproto: transport-agnostic SMTP/LMTP, POP3 and IMAP server sessions.
 *
 * The umbrella header: includes every public header. Each module's header
 * can also be included on its own.
 *   core.h      version, errors, allocator, operations, base64, dates, UTF-7
 *   store.h     the storage interface
 *   memstore.h  the in-memory store
 */
#ifndef MAILPROTO_MAILPROTO_H
#define MAILPROTO_MAILPROTO_H

#include "mailproto/core.h"
#include "mailproto/memstore.h"
#include "mailproto/store.h"

#endif /* MAILPROTO_MAILPROTO_H */
