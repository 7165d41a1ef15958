/*
 * Challenges for the challenge-response logins: the APOP timestamp of a
 * POP3 greeting (RFC 1939 7) and the CRAM-MD5 challenge (RFC 2195 2) of
 * every protocol. Both take the msg-id form "<unique.stamp@host>" and must
 * never repeat; they need not be secret (the secret is the password they
 * are hashed with).
 */
#ifndef MAILPROTO_CORE_NONCE_H
#define MAILPROTO_CORE_NONCE_H

#include <stddef.h>
#include <stdint.h>

/* A value no other challenge is likely to have: an MD5 over the clock in
 * nanoseconds, `self` (the session's address, unique among the live
 * sessions of a process) and `count` (the session's challenges so far).
 * For sessions without an application clock or nonce callback. */
uint64_t mailproto_nonce_default(const void *self, uint64_t count);

/* Writes "<unique.stamp@host>" with a NUL into `out`, cutting the host
 * name so the whole fits in `size` bytes. Returns the length, or
 * MAILPROTO_ERR_BUFFER_FULL when not even "<unique.stamp@>" fits. */
int mailproto_nonce_challenge(char *out, size_t size, const char *unique,
                              int64_t stamp, const char *host);

#endif
