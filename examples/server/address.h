/*
 * Listener addresses as the command line writes them, and peer addresses as
 * the logs and the sessions want them.
 */
#ifndef MAILPROTO_SERVER_ADDRESS_H
#define MAILPROTO_SERVER_ADDRESS_H

#include <stddef.h>
#include <sys/socket.h>

/* Longest text address_format() writes, with its NUL:
 * "[" IPv6 with zone "]:" port. */
#define ADDRESS_TEXT_MAX 80

typedef struct listen_addr {
  int enabled;
  struct sockaddr_storage ss;
  socklen_t len;
} listen_addr;

/*
 * Parses "off", "IPv4:PORT", "[IPv6]:PORT" or "localhost:PORT" (which means
 * 127.0.0.1). Addresses are numeric (no name lookups); PORT is decimal
 * 0..65535, where 0 asks the system for a free port. Returns 0, or -1 for
 * anything else. `text` must be NUL-terminated.
 */
int address_parse(const char *text, listen_addr *out);

/* Writes "192.0.2.1:25" or "[2001:db8::1]:25" (IPv4-mapped IPv6 addresses
 * shown as IPv4). Always NUL-terminates; `size` >= ADDRESS_TEXT_MAX is
 * always enough. */
void address_format(const struct sockaddr *sa, char *out, size_t size);

/* Writes the client address as SMTP's Received: header and the sessions'
 * set_client take it: "192.0.2.1" or "IPv6:2001:db8::1". */
void address_client_literal(const struct sockaddr *sa, char *out, size_t size);

/* 1 for 127.0.0.0/8, ::1 and IPv4-mapped loopback, else 0. */
int address_is_loopback(const struct sockaddr *sa);

#endif
