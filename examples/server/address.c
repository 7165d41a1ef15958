#include "address.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Parses a decimal port with no sign, no spaces, at most five digits. */
static int parse_port(const char *s, uint16_t *out) {
  size_t n = strlen(s);
  if (n == 0 || n > 5)
    return -1;
  unsigned long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (unsigned long)(s[i] - '0');
  }
  if (v > 65535)
    return -1;
  *out = (uint16_t)v;
  return 0;
}

int address_parse(const char *text, listen_addr *out) {
  memset(out, 0, sizeof *out);
  if (strcmp(text, "off") == 0)
    return 0;

  char host[INET6_ADDRSTRLEN];
  const char *port;
  int v6 = 0;
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close[1] != ':')
      return -1;
    size_t hlen = (size_t)(close - text - 1);
    if (hlen == 0 || hlen >= sizeof host)
      return -1;
    memcpy(host, text + 1, hlen);
    host[hlen] = '\0';
    port = close + 2;
    v6 = 1;
  } else {
    /* IPv4 has exactly one ':' (the port separator); a bare IPv6 address
     * would be ambiguous, so it must be bracketed. */
    const char *colon = strchr(text, ':');
    if (!colon || strchr(colon + 1, ':'))
      return -1;
    size_t hlen = (size_t)(colon - text);
    if (hlen == 0 || hlen >= sizeof host)
      return -1;
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    port = colon + 1;
  }

  uint16_t p;
  if (parse_port(port, &p) != 0)
    return -1;

  /* Built as typed locals, then copied into the storage (see plain()). */
  if (v6) {
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    if (inet_pton(AF_INET6, host, &sin6.sin6_addr) != 1)
      return -1;
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(p);
    memcpy(&out->ss, &sin6, sizeof sin6);
    out->len = sizeof sin6;
  } else {
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    if (strcmp(host, "localhost") == 0)
      strcpy(host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
      return -1;
    sin.sin_family = AF_INET;
    sin.sin_port = htons(p);
    memcpy(&out->ss, &sin, sizeof sin);
    out->len = sizeof sin;
  }
  out->enabled = 1;
  return 0;
}

/* An address read out of a sockaddr by copying (never by casting the
 * pointer: the object behind `sa` has its own type, and the optimizer
 * takes type-based aliasing at its word). IPv4-mapped IPv6 becomes IPv4. */
typedef struct plain_addr {
  int family; /* AF_INET, AF_INET6, or 0 if unknown */
  struct in_addr v4;
  struct in6_addr v6;
  uint16_t port;
} plain_addr;

static void plain(const struct sockaddr *sa, plain_addr *out) {
  memset(out, 0, sizeof *out);
  sa_family_t family;
  memcpy(&family, (const char *)sa + offsetof(struct sockaddr, sa_family),
         sizeof family);
  if (family == AF_INET) {
    struct sockaddr_in sin;
    memcpy(&sin, sa, sizeof sin);
    out->family = AF_INET;
    out->v4 = sin.sin_addr;
    out->port = ntohs(sin.sin_port);
  } else if (family == AF_INET6) {
    struct sockaddr_in6 sin6;
    memcpy(&sin6, sa, sizeof sin6);
    out->port = ntohs(sin6.sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&sin6.sin6_addr)) {
      out->family = AF_INET;
      memcpy(&out->v4, &sin6.sin6_addr.s6_addr[12], sizeof out->v4);
    } else {
      out->family = AF_INET6;
      out->v6 = sin6.sin6_addr;
    }
  }
}

/* Writes the numeric host ("?" for an unknown family). */
static void host_text(const plain_addr *a, char *host, size_t size) {
  const void *bin =
      a->family == AF_INET ? (const void *)&a->v4 : (const void *)&a->v6;
  if (!a->family || !inet_ntop(a->family, bin, host, (socklen_t)size))
    snprintf(host, size, "?");
}

void address_format(const struct sockaddr *sa, char *out, size_t size) {
  plain_addr a;
  char host[INET6_ADDRSTRLEN];
  plain(sa, &a);
  host_text(&a, host, sizeof host);
  snprintf(out, size, a.family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
           (unsigned)a.port);
}

void address_client_literal(const struct sockaddr *sa, char *out, size_t size) {
  plain_addr a;
  char host[INET6_ADDRSTRLEN];
  plain(sa, &a);
  host_text(&a, host, sizeof host);
  /* RFC 5321 4.1.3: IPv6 address literals carry the "IPv6:" tag. */
  snprintf(out, size, a.family == AF_INET6 ? "IPv6:%s" : "%s", host);
}

int address_is_loopback(const struct sockaddr *sa) {
  plain_addr a;
  plain(sa, &a);
  if (a.family == AF_INET)
    return (ntohl(a.v4.s_addr) >> 24) == 127;
  if (a.family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&a.v6);
  return 0;
}
