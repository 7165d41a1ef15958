/*
 * A connection's byte stream: the plain socket, or TLS on it once the
 * handshake began (implicit TLS ports, STARTTLS/STLS). The only file that
 * knows whether this build has TLS.
 */
#ifndef MAILPROTO_SERVER_TRANSPORT_H
#define MAILPROTO_SERVER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct conn conn;

#define TRANSPORT_AGAIN (-1) /* would block */
#define TRANSPORT_FAIL (-2)  /* the stream is broken; c->fail_* say why */

/* Reads: > 0 bytes, 0 at the end of the stream, AGAIN or FAIL. */
ssize_t transport_read(conn *c, uint8_t *buf, size_t len);
/* Takes up to `len` bytes for sending: the count (0 when the socket is
 * full) or FAIL. A short count arms c->write_blocked. */
ssize_t transport_write(conn *c, const uint8_t *data, size_t len);
/* Pushes bytes the transport still holds (TLS): 0 when none are left,
 * AGAIN or FAIL. */
int transport_flush(conn *c);
/* 1 while the transport holds bytes the socket has not taken (TLS). */
int transport_has_output(const conn *c);
/* LOOP_* interest the transport needs: to read (if `want_read`), to
 * finish a handshake, to drain held or blocked output. */
unsigned transport_interest(const conn *c, int want_read);

/* Starts TLS on the socket (server side). Returns 0 or -1. */
int transport_tls_begin(conn *c);
/* Advances the handshake: 1 done, AGAIN, or FAIL. */
int transport_tls_handshake(conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384". */
void transport_tls_describe(const conn *c, char *out, size_t size);
/* Sends close_notify if possible and frees the TLS state. */
void transport_close(conn *c);

#endif
