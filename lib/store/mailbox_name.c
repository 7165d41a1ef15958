/* Mailbox name rules and LIST pattern matching (RFC 3501 5.1, 6.3.8). */
#include <stddef.h>
#include <string.h>

#include "mailproto/store.h"

static unsigned char fold(unsigned char c) {
  return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* True if `s` begins with "INBOX" in any case. */
static int inbox_prefix(const char *s) {
  static const char inbox[] = "inbox";
  for (size_t i = 0; i < 5; i++)
    if (fold((unsigned char)s[i]) != (unsigned char)inbox[i])
      return 0;
  return 1;
}

int mailproto_mailbox_is_inbox(const char *name) {
  return name && inbox_prefix(name) && name[5] == '\0';
}

/*
 * LIST matching as a simulation of the pattern's automaton over the name:
 * state i means "the first i pattern elements have matched what was read
 * so far". That is O(pattern * name) with no backtracking, so hostile
 * patterns like "*a*a*a*a*b" cannot blow up.
 *
 * The pattern is first reduced: a run of wildcards containing '*' is one
 * '*' and a run of '%' is one '%'. A pattern with more literal characters
 * than the name cannot match, so the reduced pattern of any pattern that
 * still can is at most 2 * len(name) + 1 elements long. Names longer than
 * MAILPROTO_MAILBOX_NAME_MAX are not mailbox names and never match; that
 * bound lets the automaton live on the stack.
 */
enum { STATES_MAX = 2 * MAILPROTO_MAILBOX_NAME_MAX + 2 };

static size_t reduce(const char *pattern, size_t name_len, char *out) {
  size_t n = 0, literals = 0;
  for (const char *p = pattern; *p;) {
    if (*p == '*' || *p == '%') {
      char w = '%';
      for (; *p == '*' || *p == '%'; p++)
        if (*p == '*')
          w = '*';
      out[n++] = w;
      continue;
    }
    if (++literals > name_len)
      return (size_t)-1;
    out[n++] = *p++;
  }
  return n;
}

/* Follows the empty moves: a wildcard may match nothing. */
static void close_states(unsigned char *st, const char *pat, size_t len) {
  for (size_t i = 0; i < len; i++)
    if (st[i] && (pat[i] == '*' || pat[i] == '%'))
      st[i + 1] = 1;
}

int mailproto_mailbox_match(const char *pattern, const char *name) {
  if (!pattern || !name)
    return 0;
  size_t name_len = strlen(name);
  if (name_len > MAILPROTO_MAILBOX_NAME_MAX)
    return 0;
  /* RFC 3501 5.1: INBOX is case-insensitive. A pattern whose first level
   * is INBOX in any case (or INBOX followed by a wildcard) matches the
   * inbox and its children whatever the case on either side. */
  if (inbox_prefix(pattern) && inbox_prefix(name) &&
      (pattern[5] == '\0' || pattern[5] == MAILPROTO_MAILBOX_SEPARATOR ||
       pattern[5] == '*' || pattern[5] == '%') &&
      (name[5] == '\0' || name[5] == MAILPROTO_MAILBOX_SEPARATOR)) {
    pattern += 5;
    name += 5;
    name_len -= 5;
  }

  char pat[STATES_MAX];
  size_t len = reduce(pattern, name_len, pat);
  if (len == (size_t)-1)
    return 0;
  unsigned char a[STATES_MAX], b[STATES_MAX];
  unsigned char *cur = a, *next = b;
  memset(cur, 0, len + 1);
  cur[0] = 1;
  close_states(cur, pat, len);
  for (size_t k = 0; k < name_len; k++) {
    char c = name[k];
    int alive = 0;
    memset(next, 0, len + 1);
    for (size_t i = 0; i < len; i++) {
      if (!cur[i])
        continue;
      if (pat[i] == '*' || (pat[i] == '%' && c != MAILPROTO_MAILBOX_SEPARATOR))
        next[i] = 1;
      else if (pat[i] == c)
        next[i + 1] = 1;
      else
        continue;
      alive = 1;
    }
    if (!alive)
      return 0;
    close_states(next, pat, len);
    unsigned char *t = cur;
    cur = next;
    next = t;
  }
  return cur[len];
}

/*
 * Length of the UTF-8 sequence at s (with n bytes available) if it is well
 * formed (RFC 3629: shortest form, no surrogates, at most U+10FFFF), else 0.
 * Sets *cp to the code point.
 */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp) {
  unsigned char c = s[0];
  size_t len;
  unsigned long v, min;
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, v = c & 0x1fu, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, v = c & 0x0fu, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, v = c & 0x07u, min = 0x10000;
  else
    return 0;
  if (n < len)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0u) != 0x80u)
      return 0;
    v = (v << 6) | (s[i] & 0x3fu);
  }
  if (v < min || v > 0x10ffffUL || (v >= 0xd800UL && v <= 0xdfffUL))
    return 0;
  *cp = v;
  return len;
}

int mailproto_mailbox_name_check(const char *name) {
  if (!name)
    return MAILPROTO_ERR_BAD_NAME;
  size_t n = strlen(name);
  if (n == 0 || n > MAILPROTO_MAILBOX_NAME_MAX)
    return MAILPROTO_ERR_BAD_NAME;
  const unsigned char *s = (const unsigned char *)name;
  size_t comp = 0; /* start of the current component */
  for (size_t i = 0; i <= n;) {
    if (i == n || s[i] == MAILPROTO_MAILBOX_SEPARATOR) {
      size_t clen = i - comp;
      /* Empty components come from leading, trailing or doubled
       * separators; "." and ".." would let a file-based store climb out
       * of its directory. */
      if (clen == 0 || (clen == 1 && s[comp] == '.') ||
          (clen == 2 && s[comp] == '.' && s[comp + 1] == '.'))
        return MAILPROTO_ERR_BAD_NAME;
      comp = ++i;
      continue;
    }
    unsigned long cp;
    size_t len = utf8_seq(s + i, n - i, &cp);
    /* C0, DEL and C1 controls are unprintable in any client. */
    if (len == 0 || cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
      return MAILPROTO_ERR_BAD_NAME;
    i += len;
  }
  return 0;
}
