/*
 * Fuzzes the SMTP argument parsers of lib/smtp/smtp_parse.h. The first
 * byte chooses the entry point and its options:
 *   bits 0-1  0: MAIL, 1: RCPT, 2: xtext_decode, 3: check_domain
 *   bit 2     RCPT: the MAIL had SMTPUTF8; check_domain: allow U-labels
 *   bits 3-7  switch off SIZE, 8BITMIME, SMTPUTF8, DSN, AUTH+CHUNKING
 * The rest is the input, in an exact-size buffer. Oracles:
 *  - MAIL/RCPT success: the path fits, holds no control character, is
 *    ASCII unless path_utf8 says otherwise, and parses back to itself
 *    (the simplest quoting is a fixed point); decoded ENVID, ORCPT and
 *    AUTH are printable ASCII; failure: one of the documented replies;
 *  - xtext: the decoded text is printable ASCII, no longer than the
 *    input, and needs exactly its length + 1 bytes of buffer;
 *  - check_domain: an accepted name fits in 255 octets and holds no
 *    space, control character, "@" or "<"; ASCII unless U-labels are on.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

static void require_printable(const char *s, int allow_space) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    require(ch < 0x7f && (ch > 0x20 || (allow_space && ch == 0x20)));
  }
}

static void check_reply(const mailproto_smtp_reply_spec *r, int rcpt) {
  require(r->enhanced != NULL && r->text != NULL);
  if (r->code == 501)
    require(strcmp(r->enhanced, "5.5.2") == 0 ||
            strcmp(r->enhanced, "5.5.4") == 0 ||
            strcmp(r->enhanced, rcpt ? "5.1.3" : "5.1.7") == 0);
  else if (r->code == 555)
    require(strcmp(r->enhanced, "5.5.4") == 0);
  else
    require(r->code == (rcpt ? 553 : 550) && strcmp(r->enhanced, "5.6.7") == 0);
}

static void check_path(const mailproto_smtp_envelope_args *a) {
  require(a->path_len <= MAILPROTO_SMTP_PATH_MAX);
  require(a->path_len == strlen(a->path));
  for (size_t i = 0; i < a->path_len; i++) {
    unsigned char ch = (unsigned char)a->path[i];
    require(ch >= 0x20 && ch != 0x7f);
    require(ch < 0x80 || a->path_utf8);
  }
}

/* The accepted path, given back in brackets, must come out unchanged. */
static void check_round_trip(const mailproto_smtp_envelope_args *a, int rcpt,
                             unsigned ext) {
  if (a->path_len == 0 || strcmp(a->path, "Postmaster") == 0)
    return;
  char line[MAILPROTO_SMTP_PATH_MAX + 32];
  size_t n = 0;
  const char *head = rcpt ? " TO:<" : " FROM:<";
  memcpy(line, head, strlen(head));
  n += strlen(head);
  memcpy(line + n, a->path, a->path_len);
  n += a->path_len;
  line[n++] = '>';
  if (!rcpt && a->path_utf8) {
    memcpy(line + n, " SMTPUTF8", 9);
    n += 9;
  }
  mailproto_smtp_envelope_args b;
  int rc = rcpt ? mailproto_smtp_parse_rcpt(line, n, ext, 1, &b)
                : mailproto_smtp_parse_mail(line, n, ext, &b);
  require(rc == 0);
  require(b.path_len == a->path_len && strcmp(b.path, a->path) == 0);
}

static void fuzz_envelope(int rcpt, const char *in, size_t len, unsigned ext,
                          int smtputf8) {
  mailproto_smtp_envelope_args a;
  int rc = rcpt ? mailproto_smtp_parse_rcpt(in, len, ext, smtputf8, &a)
                : mailproto_smtp_parse_mail(in, len, ext, &a);
  if (rc != 0) {
    require(rc == -1);
    check_reply(&a.reply, rcpt);
    return;
  }
  check_path(&a);
  if (a.has_envid)
    require_printable(a.envid, 1);
  if (a.has_auth)
    require_printable(a.auth, 1);
  if (a.has_orcpt) {
    require_printable(a.orcpt, 1);
    require_printable(a.orcpt_type, 0);
    require(a.orcpt_type[0] != '\0');
  }
  if (a.path_utf8 && rcpt)
    require(smtputf8);
  if (a.path_utf8 && !rcpt)
    require(a.smtputf8);
  check_round_trip(&a, rcpt, ext);
}

static void fuzz_xtext(const char *in, size_t len) {
  char *out = malloc(len + 1);
  require(out != NULL);
  long n = mailproto_smtp_xtext_decode(in, len, out, len + 1);
  if (n >= 0) {
    require((size_t)n <= len && out[n] == '\0' && strlen(out) == (size_t)n);
    require_printable(out, 1);
    require(mailproto_smtp_xtext_decode(in, len, out, (size_t)n) == -1);
    require(mailproto_smtp_xtext_decode(in, len, out, (size_t)n + 1) == n);
  } else {
    require(n == -1);
  }
  free(out);
}

static void fuzz_domain(const char *in, size_t len, int utf8) {
  if (mailproto_smtp_check_domain(in, len, utf8) != 0)
    return;
  require(len > 0 && len <= MAILPROTO_SMTP_DOMAIN_MAX);
  for (size_t i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)in[i];
    require(ch > 0x20 && ch != 0x7f && ch != '@' && ch != '<');
    require(ch < 0x80 || utf8);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 4096)
    return 0;
  unsigned mode = data[0];
  unsigned ext = MAILPROTO_SMTP_EXT_ALL;
  if (mode & 0x08)
    ext &= ~MAILPROTO_SMTP_EXT_SIZE;
  if (mode & 0x10)
    ext &= ~MAILPROTO_SMTP_EXT_8BITMIME;
  if (mode & 0x20)
    ext &= ~MAILPROTO_SMTP_EXT_SMTPUTF8;
  if (mode & 0x40)
    ext &= ~MAILPROTO_SMTP_EXT_DSN;
  if (mode & 0x80)
    ext &= ~(MAILPROTO_SMTP_EXT_AUTH | MAILPROTO_SMTP_EXT_CHUNKING);
  int flag = (mode & 0x04) != 0;

  /* An exact-size copy, so reading past the end is an ASan error. */
  size_t len = size - 1;
  char *in = malloc(len ? len : 1);
  require(in != NULL);
  if (len)
    memcpy(in, data + 1, len);
  switch (mode & 3) {
  case 0:
    fuzz_envelope(0, in, len, ext, 0);
    break;
  case 1:
    fuzz_envelope(1, in, len, ext, flag);
    break;
  case 2:
    fuzz_xtext(in, len);
    break;
  default:
    fuzz_domain(in, len, flag);
    break;
  }
  free(in);
  return 0;
}
