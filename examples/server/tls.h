/*
 * TLS for the example server, on OpenSSL, non-blocking. Built only when
 * CMake found OpenSSL (MAILPROTO_SERVER_TLS); the library itself never
 * sees TLS: it only asks for it through its start_tls callback and is told
 * with *_set_secure() once the handshake is done.
 *
 * Writes go through a staging buffer owned by the connection: the session's
 * send callback may offer different bytes on every call, while OpenSSL
 * wants a blocked SSL_write() retried with the same bytes. The staging
 * buffer gives it exactly that.
 */
#ifndef MAILPROTO_SERVER_TLS_H
#define MAILPROTO_SERVER_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tls_server tls_server;
typedef struct tls_conn tls_conn;

/* Results of the calls below besides byte counts. */
#define TLS_AGAIN (-1) /* would block: see tls_wants() */
#define TLS_ERROR (-2) /* fatal: see tls_error() */

/* What a blocked call waits for. */
#define TLS_WANT_READ 0x1u
#define TLS_WANT_WRITE 0x2u

/* Loads a PEM certificate chain and private key. Returns 0, or -1 with the
 * reason in err. */
int tls_server_new(const char *cert_file, const char *key_file,
                   tls_server **out, char *err, size_t err_size);
void tls_server_free(tls_server *t);
/* "OpenSSL 3.0.x ..." for the startup line. */
const char *tls_library_version(void);

/* A server-side TLS stream on a connected non-blocking socket. Returns 0
 * or -1 (out of memory). */
int tls_conn_new(tls_server *t, int fd, tls_conn **out);
void tls_conn_free(tls_conn *c);

/* Advances the handshake: 1 done, TLS_AGAIN, or TLS_ERROR. */
int tls_handshake(tls_conn *c);
/* Reads decrypted bytes: > 0, 0 at the end of the stream, TLS_AGAIN or
 * TLS_ERROR. */
ssize_t tls_read(tls_conn *c, uint8_t *buf, size_t len);
/* 1 if decrypted bytes wait inside OpenSSL (the socket may not be readable
 * although tls_read would return data). */
int tls_has_pending(const tls_conn *c);
/* Takes up to `len` bytes into the staging buffer and flushes what it can.
 * Returns the bytes taken (0 when the buffer is full) or TLS_ERROR. */
ssize_t tls_write(tls_conn *c, const uint8_t *data, size_t len);
/* Flushes the staging buffer: 0 when empty, TLS_AGAIN, or TLS_ERROR. */
int tls_flush(tls_conn *c);
/* 1 while staged bytes wait for the socket. */
int tls_has_output(const tls_conn *c);
/* TLS_WANT_* a blocked read or handshake waits for (TLS_WANT_READ also
 * when nothing is blocked: reading always waits for the socket). */
unsigned tls_read_wants(const tls_conn *c);
/* TLS_WANT_* the staged output waits for, 0 when none is staged. */
unsigned tls_write_wants(const tls_conn *c);
/* Sends close_notify if it can without blocking. */
void tls_close(tls_conn *c);
/* The reason of the last TLS_ERROR, for the log. */
const char *tls_error(const tls_conn *c);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384" once the handshake is done. */
void tls_describe(const tls_conn *c, char *out, size_t size);

#endif
