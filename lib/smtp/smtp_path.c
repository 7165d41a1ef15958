/*
 * The address grammar of RFC 5321 4.1.2 and 4.1.3, with the UTF-8
 * extensions of RFC 6531 3.3: Path, source route, Mailbox, Local-part,
 * Domain and address literals. One forward scan over a bounded range; no
 * allocation.
 */
#include <string.h>

#include "smtp/smtp_parse.h"

typedef struct cursor {
  const unsigned char *s;
  size_t pos;
  size_t end;
  int utf8_ok;   /* UTF8-non-ascii allowed where RFC 6531 3.3 allows it */
  int lenient;   /* check_domain: underscores and a trailing dot */
  int non_ascii; /* a UTF-8 character was consumed */
  int hit_end;   /* a rule looked for a byte at `end` */
  const char *why;
} cursor;

static int peek_at(cursor *c, size_t k) {
  if (k < c->end - c->pos)
    return c->s[c->pos + k];
  c->hit_end = 1;
  return -1;
}

static int peek(cursor *c) {
  return peek_at(c, 0);
}

static int fail(cursor *c, const char *why) {
  c->why = why;
  return -1;
}

static int is_alpha(int ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static int is_digit(int ch) {
  return ch >= '0' && ch <= '9';
}

static int is_let_dig(int ch) {
  return is_alpha(ch) || is_digit(ch);
}

static int is_hex(int ch) {
  return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* RFC 5322 3.2.3 atext, US-ASCII part. */
static int is_atext(int ch) {
  return ch >= 0 && ch < 0x80 &&
         (is_let_dig(ch) || (ch != 0 && strchr("!#$%&'*+-/=?^_`{|}~", ch)));
}

/* RFC 5321 4.1.3 dcontent: printable US-ASCII but "[", "\" and "]". */
static int is_dcontent(int ch) {
  return (ch >= 33 && ch <= 90) || (ch >= 94 && ch <= 126);
}

static int lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

static int ieq(const unsigned char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower(a[i]) != lower((unsigned char)b[i]))
      return 0;
  return 1;
}

/*
 * Length of the UTF-8 character at the cursor (2..4), or 0 if it is not
 * one: RFC 3629 (no overlong forms, no surrogates, nothing above
 * U+10FFFF) and, beyond RFC 6532's UTF8-non-ascii, no C1 controls
 * (U+0080..U+009F), which RFC 5198 2 bars from network text: an address
 * never needs them and they confuse terminals and logs.
 */
static size_t utf8_char(cursor *c) {
  int b0 = peek(c);
  size_t n;
  int lo = 0x80, hi = 0xbf;
  if (b0 < 0xc2 || b0 > 0xf4)
    return 0;
  if (b0 < 0xe0) {
    n = 2;
    if (b0 == 0xc2)
      lo = 0xa0;
  } else if (b0 < 0xf0) {
    n = 3;
    if (b0 == 0xe0)
      lo = 0xa0;
    else if (b0 == 0xed)
      hi = 0x9f;
  } else {
    n = 4;
    if (b0 == 0xf0)
      lo = 0x90;
    else if (b0 == 0xf4)
      hi = 0x8f;
  }
  int b1 = peek_at(c, 1);
  if (b1 < lo || b1 > hi)
    return 0;
  for (size_t k = 2; k < n; k++) {
    int b = peek_at(c, k);
    if (b < 0x80 || b > 0xbf)
      return 0;
  }
  return n;
}

/* Consumes one UTF8-non-ascii character if non-ASCII is allowed here. */
static int take_utf8(cursor *c) {
  if (!c->utf8_ok)
    return 0;
  size_t n = utf8_char(c);
  if (n == 0)
    return 0;
  c->pos += n;
  c->non_ascii = 1;
  return 1;
}

/*
 * Domain = sub-domain *("." sub-domain), sub-domain = Let-dig [Ldh-str]
 * or a U-label (RFC 6531 3.3). A U-label is checked for UTF-8, hyphens
 * and length only; IDNA2008 code point rules need Unicode tables and are
 * the resolver's business. Labels of US-ASCII hold at most 63 octets (RFC
 * 1035 2.3.4); the 63-octet limit of a U-label applies to its A-label
 * form, so only the name's 255 octets bound it. The callers bound that:
 * a path holds 256 octets, a HELO name is checked for 255. Lenient mode
 * (HELO only) also takes "_" (Windows host names) and one trailing dot.
 */
static int parse_domain(cursor *c) {
  for (;;) {
    size_t label = c->pos;
    int ascii = 1;
    for (;;) {
      int ch = peek(c);
      if (is_let_dig(ch) || ch == '-' || (c->lenient && ch == '_')) {
        c->pos++;
      } else if (ch >= 0x80 && take_utf8(c)) {
        ascii = 0;
      } else {
        break;
      }
    }
    if (c->pos == label)
      return fail(c, "Empty domain label");
    if (c->s[label] == '-' || c->s[c->pos - 1] == '-')
      return fail(c, "Domain label begins or ends with a hyphen");
    if (ascii && c->pos - label > 63)
      return fail(c, "Domain label longer than 63 octets");
    if (peek(c) != '.')
      break;
    c->pos++;
    if (c->lenient) {
      int ch = peek(c);
      if (!(is_let_dig(ch) || ch == '_' || ch == '-' || ch >= 0x80))
        break; /* "host.example." */
    }
  }
  return 0;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT of value 0..255, over [a, b). */
static int ipv4_ok(const unsigned char *a, const unsigned char *b) {
  for (int part = 0; part < 4; part++) {
    if (part > 0) {
      if (a == b || *a != '.')
        return 0;
      a++;
    }
    unsigned v = 0;
    int digits = 0;
    while (a < b && is_digit(*a) && digits < 3) {
      v = v * 10 + (unsigned)(*a - '0');
      a++;
      digits++;
    }
    if (digits == 0 || v > 255)
      return 0;
  }
  return a == b;
}

/*
 * IPv6-addr of RFC 5321 4.1.3 over [a, b): eight groups; or six and an
 * IPv4 address; or "::" standing for at least two zero groups with at
 * most six groups (four next to an IPv4 address) around it.
 */
static int ipv6_ok(const unsigned char *a, const unsigned char *b) {
  int groups = 0, compressed = 0, v4 = 0;
  const unsigned char *p = a;
  if (b - p >= 2 && p[0] == ':' && p[1] == ':') {
    compressed = 1;
    p += 2;
  }
  while (p < b) {
    const unsigned char *q = p;
    int dot = 0;
    while (q < b && *q != ':') {
      if (*q == '.')
        dot = 1;
      q++;
    }
    if (dot) {
      if (q != b || !ipv4_ok(p, q))
        return 0;
      v4 = 1;
      break;
    }
    if (q == p || q - p > 4)
      return 0;
    for (const unsigned char *h = p; h < q; h++)
      if (!is_hex(*h))
        return 0;
    groups++;
    p = q;
    if (p == b)
      break;
    p++; /* ":" */
    if (p < b && *p == ':') {
      if (compressed)
        return 0;
      compressed = 1;
      p++;
    } else if (p == b) {
      return 0; /* a single trailing colon */
    }
  }
  if (compressed)
    return groups <= (v4 ? 4 : 6);
  return groups == (v4 ? 6 : 8);
}

/*
 * address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
 * General-address-literal ) "]". Any syntactically valid General literal
 * is taken ("tag:content"); "IPv6" is the one registered tag and its
 * content must be an IPv6 address.
 */
static int parse_literal(cursor *c) {
  c->pos++; /* "[" */
  size_t a = c->pos;
  while (is_dcontent(peek(c)))
    c->pos++;
  if (peek(c) != ']')
    return fail(c, "Unterminated address literal");
  const unsigned char *p = c->s + a, *q = c->s + c->pos;
  c->pos++;
  const unsigned char *colon = memchr(p, ':', (size_t)(q - p));
  if (!colon)
    return ipv4_ok(p, q) ? 0 : fail(c, "Bad IPv4 address literal");
  /* Standardized-tag = Ldh-str: letters, digits, "-", ends in Let-dig. */
  if (colon == p || !is_let_dig(colon[-1]))
    return fail(c, "Bad address literal tag");
  for (const unsigned char *t = p; t < colon; t++)
    if (!is_let_dig(*t) && *t != '-')
      return fail(c, "Bad address literal tag");
  if (colon - p == 4 && ieq(p, "IPv6", 4))
    return ipv6_ok(colon + 1, q) ? 0 : fail(c, "Bad IPv6 address literal");
  if (colon + 1 == q)
    return fail(c, "Empty address literal");
  return 0;
}

/*
 * Local-part = Dot-string / Quoted-string, written to `out` in its
 * simplest form (RFC 5321 4.1.2: all quoted forms are equivalent): a
 * quoted string that is a valid Dot-string loses its quotes, otherwise
 * only DQUOTE and backslash keep a backslash. Never longer than the input
 * form, which may hold 64 octets (RFC 5321 4.5.3.1.1).
 */
static int parse_local(cursor *c, char *out, size_t *out_len) {
  size_t start = c->pos;
  if (peek(c) != '"') {
    for (;;) {
      size_t atom = c->pos;
      for (;;) {
        int ch = peek(c);
        if (is_atext(ch))
          c->pos++;
        else if (!(ch >= 0x80 && take_utf8(c)))
          break;
      }
      if (c->pos == atom)
        return fail(c, "Bad local part");
      if (peek(c) != '.')
        break;
      c->pos++;
    }
    if (c->pos - start > MAILPROTO_SMTP_LOCAL_MAX)
      return fail(c, "Local part longer than 64 octets");
    memcpy(out, c->s + start, c->pos - start);
    *out_len = c->pos - start;
    return 0;
  }

  unsigned char text[MAILPROTO_SMTP_LOCAL_MAX];
  size_t n = 0;
  int dot_string = 1, prev_dot = 1;
  c->pos++;
  for (;;) {
    int ch = peek(c);
    if (ch == '"')
      break;
    size_t from = c->pos, width = 1;
    if (ch == '\\') {
      ch = peek_at(c, 1);
      if (ch < 32 || ch > 126)
        return fail(c, "Bad quoted pair");
      from++;
      c->pos += 2;
    } else if (ch >= 32 && ch <= 126) {
      c->pos++;
    } else if (ch >= 0x80 && take_utf8(c)) {
      width = c->pos - from;
    } else {
      return fail(c, "Bad character in quoted local part");
    }
    if (width > sizeof text - n)
      return fail(c, "Local part longer than 64 octets");
    memcpy(text + n, c->s + from, width);
    n += width;
    if (ch == '.') {
      if (prev_dot)
        dot_string = 0;
      prev_dot = 1;
    } else {
      if (ch < 0x80 && !is_atext(ch))
        dot_string = 0;
      prev_dot = 0;
    }
  }
  c->pos++;
  if (c->pos - start > MAILPROTO_SMTP_LOCAL_MAX)
    return fail(c, "Local part longer than 64 octets");
  if (dot_string && !prev_dot) {
    memcpy(out, text, n);
    *out_len = n;
    return 0;
  }
  /* Quoted again: two quotes and one backslash per special character fit
   * in what the input spent, since that had at least as much. */
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < n; i++) {
    if (text[i] == '"' || text[i] == '\\')
      out[o++] = '\\';
    out[o++] = (char)text[i];
  }
  out[o++] = '"';
  *out_len = o;
  return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), into `out`. */
static int parse_mailbox(cursor *c, char *out, size_t *out_len) {
  size_t n;
  if (parse_local(c, out, &n) != 0)
    return -1;
  if (peek(c) != '@')
    return fail(c, "No @domain after the local part");
  c->pos++;
  out[n++] = '@';
  size_t d = c->pos;
  int rc = peek(c) == '[' ? parse_literal(c) : parse_domain(c);
  if (rc != 0)
    return -1;
  memcpy(out + n, c->s + d, c->pos - d);
  *out_len = n + (c->pos - d);
  return 0;
}

int mailproto_smtp_parse_path(const char *s, size_t len, size_t *pos,
                              unsigned flags,
                              char out[MAILPROTO_SMTP_PATH_MAX + 1],
                              size_t *out_len, int *non_ascii,
                              const char **why) {
  size_t start = *pos <= len ? *pos : len;
  /* Scanning stops after 256 octets (RFC 5321 4.5.3.1.3): the output
   * needs no further bound, as it is never longer than what was read. */
  size_t end = len - start > MAILPROTO_SMTP_PATH_MAX
                   ? start + MAILPROTO_SMTP_PATH_MAX
                   : len;
  cursor c = {(const unsigned char *)s, start, end, 1, 0, 0, 0, NULL};
  size_t n = 0;
  if (peek(&c) != '<') {
    fail(&c, "Address not in angle brackets");
    goto failed;
  }
  c.pos++;
  if (peek(&c) == '>') {
    if (!(flags & MAILPROTO_SMTP_PATH_NULL_OK)) {
      fail(&c, "Null path not allowed here");
      goto failed;
    }
    c.pos++;
    goto done;
  }
  if (peek(&c) == '@') {
    /* A-d-l (a source route): accepted and dropped (RFC 5321 4.1.1.3). */
    for (;;) {
      c.pos++; /* "@" */
      if (parse_domain(&c) != 0)
        goto failed;
      int ch = peek(&c);
      if (ch == ':')
        break;
      if (ch != ',' || peek_at(&c, 1) != '@') {
        fail(&c, "Bad source route");
        goto failed;
      }
      c.pos++;
    }
    c.pos++;
  } else if ((flags & MAILPROTO_SMTP_PATH_POSTMASTER_OK) &&
             c.end - c.pos >= 11 && ieq(c.s + c.pos, "postmaster>", 11)) {
    /* RFC 5321 4.1.1.3: "<Postmaster>" in any case, with no domain. */
    memcpy(out, "Postmaster", 10);
    n = 10;
    c.pos += 11;
    goto done;
  }
  if (parse_mailbox(&c, out, &n) != 0)
    goto failed;
  if (peek(&c) != '>') {
    fail(&c, "Bad character in address");
    goto failed;
  }
  c.pos++;
done:
  out[n] = '\0';
  *out_len = n;
  *non_ascii = c.non_ascii;
  *pos = c.pos;
  *why = NULL;
  return 0;
failed:
  if (c.hit_end && c.end < len)
    c.why = "Path too long (256 octets at most)";
  *why = c.why;
  return -1;
}

int mailproto_smtp_check_mailbox(const char *s, size_t len) {
  char out[MAILPROTO_SMTP_PATH_MAX + 1];
  size_t n;
  if (len > MAILPROTO_SMTP_PATH_MAX - 2)
    return -1;
  cursor c = {(const unsigned char *)s, 0, len, 0, 0, 0, 0, NULL};
  if (parse_mailbox(&c, out, &n) != 0 || c.pos != len)
    return -1;
  return 0;
}

int mailproto_smtp_check_domain(const char *s, size_t len, int utf8) {
  if (len == 0 || len > MAILPROTO_SMTP_DOMAIN_MAX)
    return -1;
  /* A General-address-literal may hold "@", "<" and ">" (dcontent); a
   * client name is copied into replies and Received: headers, where they
   * would only mislead, and no real client needs them. */
  for (size_t i = 0; i < len; i++)
    if (s[i] == '@' || s[i] == '<' || s[i] == '>')
      return -1;
  cursor c = {(const unsigned char *)s, 0, len, utf8 != 0, 1, 0, 0, NULL};
  int rc = s[0] == '[' ? parse_literal(&c) : parse_domain(&c);
  return rc == 0 && c.pos == len ? 0 : -1;
}
