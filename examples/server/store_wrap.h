/*
 * Each connection hands its session a thin wrapper of the server's store
 * (ops = store_wrap_ops, ctx = the connection). Every hook forwards to the
 * real backend; a few also:
 *  - lookup_recipient: enforce --domain (no relaying: a recipient must be
 *    a local user at a local domain), log rejected recipients;
 *  - authenticate / lookup_secret / release_account: log failed logins
 *    (a challenge-response login that fails shows as the looked-up
 *    account released before store_wrap_auth_ok());
 *  - deliver_begin/write/commit/abort (and appends): log each delivery
 *    with its size and recipients, and keep the writers in flight on the
 *    connection so a shutdown lets them finish.
 *  - cache_get, cache_put, message_get: forwarded as they are, and offered
 *    only when the backend has them (store_wrap_init picks the table).
 * A hook that the backend defers is forwarded as deferred; its outcome is
 * then not logged here (the shipped Maildir and memory stores never
 * defer).
 */
#ifndef MAILPROTO_SERVER_STORE_WRAP_H
#define MAILPROTO_SERVER_STORE_WRAP_H

#include "mailproto/mailproto.h"

typedef struct conn conn;

extern const mailproto_store_ops store_wrap_ops;

/* Points c->store at the wrapper. */
void store_wrap_init(conn *c);
/* The session's auth policy callback saw a successful login: logs it. */
void store_wrap_auth_ok(conn *c, const char *user);
/* 1 while a delivery or append of the connection is not yet committed or
 * aborted. */
int store_wrap_busy(const conn *c);
/* After the session is gone: frees what a backend never handed back (a
 * writer whose deferred begin failed). */
void store_wrap_release(conn *c);

/* 1 if `address` may receive mail here as far as domains go: no --domain
 * given, no domain in the address (RFC 5321 4.5.1 "Postmaster"), or its
 * domain is one of `domains` (case-insensitive). */
int store_wrap_domain_ok(const char *address, const char *const *domains,
                         size_t domain_count);

#endif
