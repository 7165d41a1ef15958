/*
 * MAIL FROM / RCPT TO arguments: the path (smtp_path.c) and the ESMTP
 * parameters of RFC 5321 4.1.2, checked against the extensions on offer.
 */
#include <string.h>

#include "smtp/smtp_parse.h"

#define SEEN_SIZE 0x01u
#define SEEN_BODY 0x02u
#define SEEN_SMTPUTF8 0x04u
#define SEEN_AUTH 0x08u
#define SEEN_RET 0x10u
#define SEEN_ENVID 0x20u
#define SEEN_NOTIFY 0x40u
#define SEEN_ORCPT 0x80u

static int lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* Case-insensitive comparison of [s, s + n) with the whole of `word`. */
static int word_is(const char *s, size_t n, const char *word) {
  if (strlen(word) != n)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)s[i]) != lower((unsigned char)word[i]))
      return 0;
  return 1;
}

static int is_alnum(int ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z');
}

static int is_wsp(int ch) {
  return ch == ' ' || ch == '\t';
}

static int reply(mailproto_smtp_envelope_args *out, int code,
                 const char *enhanced, const char *text) {
  out->reply.code = code;
  out->reply.enhanced = enhanced;
  out->reply.text = text;
  return -1;
}

static int bad_param(mailproto_smtp_envelope_args *out, const char *text) {
  return reply(out, 501, "5.5.4", text);
}

static int hexval(int ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

long mailproto_smtp_xtext_decode(const char *s, size_t len, char *out,
                                 size_t out_size) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    int ch = (unsigned char)s[i];
    if (ch == '+') {
      if (len - i < 3)
        return -1;
      int hi = hexval((unsigned char)s[i + 1]);
      int lo = hexval((unsigned char)s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      ch = hi * 16 + lo;
      if (ch < 0x20 || ch > 0x7e)
        return -1;
      i += 2;
    } else if (ch < '!' || ch > '~' || ch == '=') {
      return -1;
    }
    if (n + 1 >= out_size)
      return -1;
    out[n++] = (char)ch;
  }
  if (out_size == 0)
    return -1;
  out[n] = '\0';
  return (long)n;
}

/* SIZE=: RFC 1870 size-value = 1*20DIGIT, and it must fit in 64 bits. */
static int parse_size(const char *v, size_t n, uint64_t *size) {
  uint64_t x = 0;
  if (n == 0 || n > 20)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (v[i] < '0' || v[i] > '9')
      return -1;
    uint64_t d = (uint64_t)(v[i] - '0');
    if (x > (UINT64_MAX - d) / 10)
      return -1;
    x = x * 10 + d;
  }
  *size = x;
  return 0;
}

/* NOTIFY=: "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY") (RFC 3461
 * 4.1); NEVER stands alone. The list is RFC 822's "#", which allows empty
 * elements ("SUCCESS,,DELAY"). */
static int parse_notify(const char *v, size_t n, unsigned *notify) {
  unsigned bits = 0, elements = 0;
  size_t i = 0;
  while (i <= n) {
    size_t j = i;
    while (j < n && v[j] != ',')
      j++;
    if (j > i) {
      if (word_is(v + i, j - i, "NEVER"))
        bits |= MAILPROTO_SMTP_NOTIFY_NEVER;
      else if (word_is(v + i, j - i, "SUCCESS"))
        bits |= MAILPROTO_SMTP_NOTIFY_SUCCESS;
      else if (word_is(v + i, j - i, "FAILURE"))
        bits |= MAILPROTO_SMTP_NOTIFY_FAILURE;
      else if (word_is(v + i, j - i, "DELAY"))
        bits |= MAILPROTO_SMTP_NOTIFY_DELAY;
      else
        return -1;
      elements++;
    }
    i = j + 1;
  }
  if (elements == 0 || ((bits & MAILPROTO_SMTP_NOTIFY_NEVER) && elements > 1))
    return -1;
  *notify = bits;
  return 0;
}

/* RFC 822 atom text: a CHAR but specials, SPACE and CTLs (for ORCPT's
 * addr-type; "=" cannot occur in an esmtp-value anyway). */
static int is_atom_char(int ch) {
  return ch > ' ' && ch < 0x7f && !strchr("()<>@,;:\\\".[]", ch);
}

/* ORCPT=: addr-type ";" xtext (RFC 3461 4.2). */
static int parse_orcpt(const char *v, size_t n,
                       mailproto_smtp_envelope_args *out) {
  if (n > MAILPROTO_SMTP_ORCPT_MAX)
    return -1;
  const char *semi = memchr(v, ';', n);
  if (!semi || semi == v)
    return -1;
  size_t type_len = (size_t)(semi - v);
  if (type_len >= sizeof out->orcpt_type)
    return -1;
  for (size_t i = 0; i < type_len; i++)
    if (!is_atom_char((unsigned char)v[i]))
      return -1;
  if (mailproto_smtp_xtext_decode(semi + 1, n - type_len - 1, out->orcpt,
                                  sizeof out->orcpt) < 0)
    return -1;
  memcpy(out->orcpt_type, v, type_len);
  out->orcpt_type[type_len] = '\0';
  return 0;
}

/* AUTH=: xtext of a Mailbox or "<>" (RFC 4954 5). */
static int parse_auth(const char *v, size_t n,
                      mailproto_smtp_envelope_args *out) {
  if (n > MAILPROTO_SMTP_AUTH_PARAM_MAX)
    return -1;
  long m = mailproto_smtp_xtext_decode(v, n, out->auth, sizeof out->auth);
  if (m < 0)
    return -1;
  if (strcmp(out->auth, "<>") == 0)
    return 0;
  return mailproto_smtp_check_mailbox(out->auth, (size_t)m);
}

/* One parameter: `k` is its keyword (kn octets), `v` its value or NULL. */
static int apply_param(const char *k, size_t kn, const char *v, size_t vn,
                       unsigned ext, int rcpt, unsigned *seen,
                       mailproto_smtp_envelope_args *out) {
  unsigned bit;
  if (!rcpt && word_is(k, kn, "SIZE") && (ext & MAILPROTO_SMTP_EXT_SIZE))
    bit = SEEN_SIZE;
  else if (!rcpt && word_is(k, kn, "BODY") &&
           (ext &
            (MAILPROTO_SMTP_EXT_8BITMIME | MAILPROTO_SMTP_EXT_BINARYMIME)))
    bit = SEEN_BODY;
  else if (!rcpt && word_is(k, kn, "SMTPUTF8") &&
           (ext & MAILPROTO_SMTP_EXT_SMTPUTF8))
    bit = SEEN_SMTPUTF8;
  else if (!rcpt && word_is(k, kn, "AUTH") && (ext & MAILPROTO_SMTP_EXT_AUTH))
    bit = SEEN_AUTH;
  else if (!rcpt && word_is(k, kn, "RET") && (ext & MAILPROTO_SMTP_EXT_DSN))
    bit = SEEN_RET;
  else if (!rcpt && word_is(k, kn, "ENVID") && (ext & MAILPROTO_SMTP_EXT_DSN))
    bit = SEEN_ENVID;
  else if (rcpt && word_is(k, kn, "NOTIFY") && (ext & MAILPROTO_SMTP_EXT_DSN))
    bit = SEEN_NOTIFY;
  else if (rcpt && word_is(k, kn, "ORCPT") && (ext & MAILPROTO_SMTP_EXT_DSN))
    bit = SEEN_ORCPT;
  else
    return reply(out, 555, "5.5.4", "Unsupported parameter");

  /* RFC 1870 6, RFC 3461 4.5: each at most once. */
  if (*seen & bit)
    return bad_param(out, "Duplicate parameter");
  *seen |= bit;

  if (bit == SEEN_SMTPUTF8) {
    if (v) /* RFC 6531 3.4: it takes no value */
      return bad_param(out, "SMTPUTF8 takes no value");
    out->smtputf8 = 1;
    return 0;
  }
  if (!v)
    return bad_param(out, "Parameter needs a value");
  for (size_t i = 0; i < vn; i++) {
    int ch = (unsigned char)v[i];
    if (ch < 33 || ch > 126)
      return bad_param(out, "Bad character in parameter value");
  }

  switch (bit) {
  case SEEN_SIZE:
    if (parse_size(v, vn, &out->size) != 0)
      return bad_param(out, "Bad SIZE value");
    out->has_size = 1;
    return 0;
  case SEEN_BODY:
    if (word_is(v, vn, "7BIT"))
      out->body = MAILPROTO_SMTP_BODY_7BIT;
    else if (word_is(v, vn, "8BITMIME") && (ext & MAILPROTO_SMTP_EXT_8BITMIME))
      out->body = MAILPROTO_SMTP_BODY_8BITMIME;
    else if (word_is(v, vn, "BINARYMIME") &&
             (ext & MAILPROTO_SMTP_EXT_BINARYMIME) &&
             (ext & MAILPROTO_SMTP_EXT_CHUNKING))
      out->body = MAILPROTO_SMTP_BODY_BINARYMIME;
    else
      return bad_param(out, "Unsupported BODY type");
    return 0;
  case SEEN_AUTH:
    if (parse_auth(v, vn, out) != 0)
      return bad_param(out, "Bad AUTH value");
    out->has_auth = 1;
    return 0;
  case SEEN_RET:
    if (word_is(v, vn, "FULL"))
      out->ret = MAILPROTO_SMTP_RET_FULL;
    else if (word_is(v, vn, "HDRS"))
      out->ret = MAILPROTO_SMTP_RET_HDRS;
    else
      return bad_param(out, "Bad RET value");
    return 0;
  case SEEN_ENVID:
    if (vn > MAILPROTO_SMTP_ENVID_MAX ||
        mailproto_smtp_xtext_decode(v, vn, out->envid, sizeof out->envid) < 0)
      return bad_param(out, "Bad ENVID value");
    out->has_envid = 1;
    return 0;
  case SEEN_NOTIFY:
    if (parse_notify(v, vn, &out->notify) != 0)
      return bad_param(out, "Bad NOTIFY value");
    return 0;
  default: /* SEEN_ORCPT */
    if (parse_orcpt(v, vn, out) != 0)
      return bad_param(out, "Bad ORCPT value");
    out->has_orcpt = 1;
    return 0;
  }
}

/* Mail-parameters / Rcpt-parameters from s[pos], which is a space. */
static int parse_params(const char *s, size_t len, size_t pos, unsigned ext,
                        int rcpt, mailproto_smtp_envelope_args *out) {
  unsigned seen = 0;
  for (;;) {
    pos++; /* the SP before each esmtp-param */
    /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
    size_t k = pos;
    if (pos == len || !is_alnum((unsigned char)s[pos]))
      return bad_param(out, "Bad parameter syntax");
    while (pos < len && (is_alnum((unsigned char)s[pos]) || s[pos] == '-'))
      pos++;
    size_t kn = pos - k;
    const char *v = NULL;
    size_t vn = 0;
    if (pos < len && s[pos] == '=') {
      /* esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531
       * 3.3), which no parameter we know accepts. */
      v = s + ++pos;
      while (pos < len && !is_wsp((unsigned char)s[pos]) && s[pos] != '=') {
        if ((unsigned char)s[pos] < 33 || s[pos] == 127)
          return bad_param(out, "Bad character in parameter value");
        pos++;
      }
      vn = (size_t)(s + pos - v);
      if (vn == 0)
        return bad_param(out, "Empty parameter value");
    }
    if (pos < len && !is_wsp((unsigned char)s[pos]))
      return bad_param(out, "Bad parameter syntax");
    if (apply_param(s + k, kn, v, vn, ext, rcpt, &seen, out) != 0)
      return -1;
    size_t rest = pos;
    while (rest < len && is_wsp((unsigned char)s[rest]))
      rest++;
    if (rest == len)
      return 0; /* trailing white space (RFC 5321 4.1.1) */
    if (s[pos] != ' ' || rest != pos + 1)
      return bad_param(out, "Bad parameter separator");
  }
}

static int parse_envelope(const char *s, size_t len, unsigned ext, int rcpt,
                          int smtputf8, mailproto_smtp_envelope_args *out) {
  memset(out, 0, sizeof *out);
  const char *prefix = rcpt ? " TO:" : " FROM:";
  size_t pn = strlen(prefix);
  if (len < pn || !word_is(s, pn, prefix))
    return reply(out, 501, "5.5.2",
                 rcpt ? "Syntax: RCPT TO:<address> [parameters]"
                      : "Syntax: MAIL FROM:<address> [parameters]");
  size_t pos = pn;
  if (pos < len && s[pos] == ' ')
    pos++;

  const char *enh = rcpt ? "5.1.3" : "5.1.7";
  const char *why;
  int non_ascii;
  unsigned flags =
      rcpt ? MAILPROTO_SMTP_PATH_POSTMASTER_OK : MAILPROTO_SMTP_PATH_NULL_OK;
  if (mailproto_smtp_parse_path(s, len, &pos, flags, out->path, &out->path_len,
                                &non_ascii, &why) != 0)
    return reply(out, 501, enh, why);
  out->path_utf8 = non_ascii;

  size_t rest = pos;
  while (rest < len && is_wsp((unsigned char)s[rest]))
    rest++;
  if (rest < len) {
    if (s[pos] != ' ' || rest != pos + 1)
      return reply(out, 501, "5.5.2", "Syntax error after the address");
    if (parse_params(s, len, pos, ext, rcpt, out) != 0)
      return -1;
  }

  /* RFC 6531 3.5: an address needing SMTPUTF8 without it. */
  if (non_ascii && !(rcpt ? smtputf8 : out->smtputf8))
    return rcpt ? reply(out, 553, "5.6.7",
                        "Non-ASCII recipient address needs SMTPUTF8")
                : reply(out, 550, "5.6.7",
                        "Non-ASCII sender address needs SMTPUTF8");
  return 0;
}

int mailproto_smtp_parse_mail(const char *s, size_t len, unsigned extensions,
                              mailproto_smtp_envelope_args *out) {
  return parse_envelope(s, len, extensions, 0, 0, out);
}

int mailproto_smtp_parse_rcpt(const char *s, size_t len, unsigned extensions,
                              int smtputf8, mailproto_smtp_envelope_args *out) {
  return parse_envelope(s, len, extensions, 1, smtputf8, out);
}
