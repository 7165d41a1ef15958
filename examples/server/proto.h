/*
 * A protocol adapter: everything the connection layer needs to know about
 * one protocol, so that adding a protocol is one small file (proto_smtp.c,
 * proto_pop3.c, proto_imap.c) plus a line in server.c's listener table.
 * The connection layer only ever calls these, never a
 * mailproto_<protocol>_* function.
 */
#ifndef MAILPROTO_SERVER_PROTO_H
#define MAILPROTO_SERVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/mailproto.h"

typedef struct conn conn;

/* Lines the server sends on its own before it closes a connection. */
typedef enum proto_reply {
  PROTO_REPLY_BUSY,    /* connection limit reached */
  PROTO_REPLY_TIMEOUT, /* idle timeout */
  PROTO_REPLY_SHUTDOWN /* the server is stopping */
} proto_reply;

/* What a new session needs to know about its connection. */
typedef struct proto_env {
  const char *hostname;
  const mailproto_store *store; /* the connection's store (see store_wrap.h) */
  const char *client;           /* "192.0.2.1" or "IPv6:2001:db8::1" */
  int secure;                   /* implicit TLS: encrypted from the start */
  int starttls;                 /* offer STARTTLS / STLS */
  int allow_insecure_auth;      /* plaintext passwords without TLS */
} proto_env;

typedef struct proto_adapter {
  const char *name;         /* "smtp", "lmtp", "pop3", "imap" */
  unsigned idle_timeout_ms; /* close after this long without traffic */
  /* Period of the keepalive hook below (0: none). conn.c never lets it
   * exceed half the idle timeout. */
  unsigned keepalive_ms;
  /* A server line starting with this asks the client for SASL data: the
   * client's next line is masked in transcripts. */
  const char *continuation;

  /* Creates the session with the connection as its user data; its
   * callbacks call conn_send(), conn_start_tls(), conn_log(). Returns 0 or
   * a negative MAILPROTO_ERR_* code. */
  int (*create)(conn *c, const proto_env *env, void **session);
  void (*destroy)(void *session);
  /* The session contract of mailproto (see smtp.h). */
  int (*start)(void *session);
  ptrdiff_t (*feed)(void *session, const uint8_t *data, size_t len);
  int (*writable)(void *session);
  int (*set_secure)(void *session);
  int (*want_read)(const void *session);
  int (*want_write)(const void *session);
  int (*closed)(const void *session);
  /* Optional (IMAP): the session asked, through conn_notify(), to hear
   * about changes other sessions made; called from the pump. Returns 0 or
   * a negative fatal code. */
  int (*sync)(void *session);
  /* Optional (IMAP): called every keepalive_ms; an idling session sends
   * its keep-alive. Returns 0 or a negative fatal code. */
  int (*keepalive)(void *session);

  /* How many bytes of a client line a transcript may show; the rest (a
   * password, SASL data) is masked. */
  size_t (*visible)(const char *line, size_t len);
  /* Writes the line for `kind` with CRLF into `out`; returns its length,
   * or 0 when the protocol closes silently (POP3 on timeout, RFC 1939 3). */
  size_t (*reply)(proto_reply kind, const char *hostname, char *out,
                  size_t size);
} proto_adapter;

extern const proto_adapter proto_smtp;
extern const proto_adapter proto_lmtp;
extern const proto_adapter proto_pop3;
extern const proto_adapter proto_imap;

/* Shared by the adapters: the length of the prefix of `line` up to and
 * including the first `words` space-separated words (and the space after
 * the last), or `len` if the line has no more. */
size_t proto_visible_words(const char *line, size_t len, unsigned words);
/* 1 if `line` starts with the ASCII word `word` followed by a space or its
 * end, ignoring case. */
int proto_starts_with_word(const char *line, size_t len, const char *word);

#endif
