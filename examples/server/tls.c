#include "tls.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "mem.h"

/* One TLS record's worth of plaintext. */
enum { STAGE_SIZE = 16384 };

struct tls_server {
  SSL_CTX *ctx;
};

struct tls_conn {
  SSL *ssl;
  unsigned read_wants;  /* what a blocked read or handshake waits for */
  unsigned write_wants; /* what a blocked flush waits for */
  size_t used;          /* staged bytes */
  size_t retry_len;     /* length of a blocked SSL_write, to repeat */
  char err[160];
  uint8_t stage[STAGE_SIZE];
};

static void last_error(char *out, size_t size, const char *what) {
  unsigned long e = ERR_get_error();
  if (e) {
    char buf[120];
    ERR_error_string_n(e, buf, sizeof buf);
    snprintf(out, size, "%s: %s", what, buf);
  } else {
    snprintf(out, size, "%s: %s", what,
             errno ? strerror(errno) : "unexpected end of stream");
  }
}

int tls_server_new(const char *cert_file, const char *key_file,
                   tls_server **out, char *err, size_t err_size) {
  tls_server *t = mem_calloc(1, sizeof *t);
  if (!t) {
    snprintf(err, err_size, "out of memory");
    return -1;
  }
  ERR_clear_error();
  t->ctx = SSL_CTX_new(TLS_server_method());
  if (!t->ctx) {
    last_error(err, err_size, "TLS context");
    mem_free(t);
    return -1;
  }
  SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
  /* Partial writes and a moving buffer let the staging buffer drain in
   * pieces; released buffers keep idle TLS connections small. */
  SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                               SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_options(t->ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
#ifdef SSL_OP_NO_RENEGOTIATION
  SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION);
#endif
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
  /* Mail clients often close without close_notify; that is an end of
   * stream here, not an error. */
  SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
  if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
    last_error(err, err_size, cert_file);
    tls_server_free(t);
    return -1;
  }
  if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1) {
    last_error(err, err_size, key_file);
    tls_server_free(t);
    return -1;
  }
  if (SSL_CTX_check_private_key(t->ctx) != 1) {
    last_error(err, err_size, "the key does not match the certificate");
    tls_server_free(t);
    return -1;
  }
  *out = t;
  return 0;
}

void tls_server_free(tls_server *t) {
  if (!t)
    return;
  SSL_CTX_free(t->ctx);
  mem_free(t);
}

const char *tls_library_version(void) {
  return OpenSSL_version(OPENSSL_VERSION);
}

int tls_conn_new(tls_server *t, int fd, tls_conn **out) {
  tls_conn *c = mem_malloc(sizeof *c);
  if (!c)
    return -1;
  memset(c, 0, offsetof(tls_conn, stage));
  ERR_clear_error();
  c->ssl = SSL_new(t->ctx);
  if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
    SSL_free(c->ssl);
    mem_free(c);
    return -1;
  }
  SSL_set_accept_state(c->ssl);
  *out = c;
  return 0;
}

void tls_conn_free(tls_conn *c) {
  if (!c)
    return;
  SSL_free(c->ssl);
  mem_free(c);
}

/* Maps a failed call's result: TLS_AGAIN (setting *wants) or TLS_ERROR. */
static int classify(tls_conn *c, int ret, unsigned *wants, const char *what) {
  int e = SSL_get_error(c->ssl, ret);
  if (e == SSL_ERROR_WANT_READ) {
    *wants = TLS_WANT_READ;
    return TLS_AGAIN;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    *wants = TLS_WANT_WRITE;
    return TLS_AGAIN;
  }
  last_error(c->err, sizeof c->err, what);
  return TLS_ERROR;
}

int tls_handshake(tls_conn *c) {
  ERR_clear_error();
  errno = 0;
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->read_wants = 0;
    return 1;
  }
  return classify(c, r, &c->read_wants, "TLS handshake");
}

ssize_t tls_read(tls_conn *c, uint8_t *buf, size_t len) {
  int n = len > (size_t)INT32_MAX ? INT32_MAX : (int)len;
  ERR_clear_error();
  errno = 0;
  int r = SSL_read(c->ssl, buf, n);
  if (r > 0) {
    c->read_wants = 0;
    return r;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_ZERO_RETURN)
    return 0;
  /* A peer that vanishes without close_notify (older OpenSSL reports it
   * this way) has simply ended the stream. */
  if (e == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0)
    return 0;
  return classify(c, r, &c->read_wants, "TLS read");
}

int tls_has_pending(const tls_conn *c) {
  return SSL_pending(c->ssl) > 0;
}

int tls_flush(tls_conn *c) {
  while (c->used > 0) {
    size_t n = c->retry_len ? c->retry_len : c->used;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write(c->ssl, c->stage, (int)n);
    if (r <= 0) {
      int rc = classify(c, r, &c->write_wants, "TLS write");
      if (rc == TLS_AGAIN)
        c->retry_len = n; /* OpenSSL wants this very write repeated */
      return rc;
    }
    c->retry_len = 0;
    c->used -= (size_t)r;
    memmove(c->stage, c->stage + r, c->used);
  }
  c->write_wants = 0;
  return 0;
}

ssize_t tls_write(tls_conn *c, const uint8_t *data, size_t len) {
  size_t room = sizeof c->stage - c->used;
  size_t take = len < room ? len : room;
  memcpy(c->stage + c->used, data, take);
  c->used += take;
  if (tls_flush(c) == TLS_ERROR)
    return TLS_ERROR;
  return (ssize_t)take;
}

int tls_has_output(const tls_conn *c) {
  return c->used > 0;
}

unsigned tls_read_wants(const tls_conn *c) {
  return c->read_wants ? c->read_wants : TLS_WANT_READ;
}

unsigned tls_write_wants(const tls_conn *c) {
  return c->used > 0 ? (c->write_wants ? c->write_wants : TLS_WANT_WRITE) : 0u;
}

void tls_close(tls_conn *c) {
  ERR_clear_error();
  if (SSL_is_init_finished(c->ssl))
    (void)SSL_shutdown(c->ssl);
  ERR_clear_error();
}

const char *tls_error(const tls_conn *c) {
  return c->err;
}

void tls_describe(const tls_conn *c, char *out, size_t size) {
  snprintf(out, size, "%s %s", SSL_get_version(c->ssl),
           SSL_get_cipher_name(c->ssl));
}
