/*
 * Parsing of MAIL and RCPT arguments: the path (RFC 5321 4.1.2) and the
 * ESMTP parameters of SIZE (RFC 1870), BODY (RFC 6152, RFC 3030),
 * SMTPUTF8 (RFC 6531), AUTH (RFC 4954 5), RET/ENVID/NOTIFY/ORCPT
 * (RFC 3461). Pure functions over a byte range: no allocation, no
 * callbacks, never a read outside [s, s + len). The session turns a
 * failure into the reply given in `reply`.
 */
#ifndef MAILPROTO_SMTP_PARSE_H
#define MAILPROTO_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/smtp.h"

/* RFC 5321 4.5.3.1: local-part 64, domain 255, path 256 octets. The path
 * limit counts the whole Path as sent: "<", a source route, ">". */
#define MAILPROTO_SMTP_LOCAL_MAX 64
#define MAILPROTO_SMTP_DOMAIN_MAX 255
#define MAILPROTO_SMTP_PATH_MAX 256
/* RFC 3461 4.4: ENVID at most 100 characters; ORCPT at most 500. */
#define MAILPROTO_SMTP_ENVID_MAX 100
#define MAILPROTO_SMTP_ORCPT_MAX 500
/* AUTH= value (RFC 4954 5: an xtext mailbox or "<>"). */
#define MAILPROTO_SMTP_AUTH_PARAM_MAX 500

/* A reply for a refused command: code, enhanced code, text (static). */
typedef struct mailproto_smtp_reply_spec {
  int code;
  const char *enhanced;
  const char *text;
} mailproto_smtp_reply_spec;

/* The arguments of one MAIL or RCPT command. */
typedef struct mailproto_smtp_envelope_args {
  /* The address without "<>", source route dropped: "" for the null
   * reverse-path, "Postmaster" (spelled so, whatever the client's case)
   * for that special forward-path. A quoted local part is given in its
   * simplest equivalent form (RFC 5321 4.1.2): "\"joe\"@x" becomes
   * "joe@x", "\"a\\ b\"@x" becomes "\"a b\"@x". The domain keeps the
   * client's case. NUL-terminated; never holds a control character. */
  char path[MAILPROTO_SMTP_PATH_MAX + 1];
  size_t path_len;
  int path_utf8; /* the path held non-ASCII (needs SMTPUTF8) */

  /* MAIL parameters */
  int has_size;
  uint64_t size;
  mailproto_smtp_body body;
  int smtputf8;
  int has_auth;
  char auth[MAILPROTO_SMTP_AUTH_PARAM_MAX + 1]; /* decoded */
  mailproto_smtp_ret ret;
  int has_envid;
  char envid[MAILPROTO_SMTP_ENVID_MAX + 1]; /* decoded */

  /* RCPT parameters */
  unsigned notify;
  int has_orcpt;
  char orcpt_type[32];
  char orcpt[MAILPROTO_SMTP_ORCPT_MAX + 1]; /* decoded */

  mailproto_smtp_reply_spec reply; /* why parsing failed */
} mailproto_smtp_envelope_args;

/*
 * Parses what follows "MAIL" (" FROM:<path> params") or "RCPT"
 * (" TO:<path> params"): `s` starts right after the verb and excludes the
 * CRLF. `extensions` (MAILPROTO_SMTP_EXT_*) says which parameters exist:
 * a parameter of a disabled extension is unknown. Returns 0, or -1 with
 * out->reply set:
 *   501 5.5.2  no "FROM:" / "TO:" or garbage
 *   501 5.1.7  bad sender address syntax or length (MAIL)
 *   501 5.1.3  bad recipient address syntax or length (RCPT); a path
 *              over 256 octets says "Path too long" (RFC 5321
 *              4.5.3.1.10)
 *   501 5.5.4  malformed, duplicate or out-of-range parameter value
 *   555 5.5.4  unknown parameter (RFC 5321 4.1.1.11)
 *   553 5.6.7 / 550 5.6.7  non-ASCII address without SMTPUTF8 (RFC 6531
 *              3.5: 553 for RCPT, 550 for MAIL); `smtputf8` says whether
 *              this transaction's MAIL carried SMTPUTF8 (for RCPT).
 * Accepts one optional space after the colon (RFC 5321 4.1.2 forbids it
 * but many clients send it) and trailing spaces and tabs (RFC 5321 4.1.1
 * says to tolerate them); requires the angle brackets and exactly one
 * space before each parameter. Keywords and the values of SIZE, BODY,
 * RET and NOTIFY are case-insensitive (RFC 5321 2.4). AUTH= must decode
 * to "<>" or a Mailbox; BODY=BINARYMIME needs both BINARYMIME and
 * CHUNKING; ENVID's and ORCPT's limits count the encoded value, and an
 * ORCPT addr-type may hold 31 characters. Parsing is one pass over `s`
 * with no allocation; on failure the fields of `out` other than `reply`
 * are unspecified.
 */
int mailproto_smtp_parse_mail(const char *s, size_t len, unsigned extensions,
                              mailproto_smtp_envelope_args *out);
int mailproto_smtp_parse_rcpt(const char *s, size_t len, unsigned extensions,
                              int smtputf8, mailproto_smtp_envelope_args *out);

/*
 * Decodes RFC 3461 4 xtext ("+" HEXCHAR HEXCHAR escapes, uppercase hex
 * only) into `out` with a NUL. Refuses characters outside xchar, bad
 * escapes, and decoded control characters (CR, LF, NUL, other C0, DEL:
 * CVE-2020-28026 class). Also refuses decoded octets above 0x7e: RFC
 * 3461 4.2 and 4.4 say the decoded text is printable US-ASCII, and AUTH=
 * carries an RFC 5321 Mailbox. So the result is printable US-ASCII and
 * space. Returns the decoded length, or -1 (also when `out_size` cannot
 * hold it and the NUL).
 */
long mailproto_smtp_xtext_decode(const char *s, size_t len, char *out,
                                 size_t out_size);

/*
 * Checks a domain (RFC 5321 4.1.2 Domain, or an address literal of 4.1.3)
 * as used in HELO/EHLO/LHLO; `utf8` allows U-labels (RFC 6531 3.3).
 * Lenient where real clients need it, and only there: "_" in labels
 * (Windows host names, "_" anywhere a letter may be) and one trailing dot
 * ("host.example."). Refuses an empty name, more than 255 octets, ASCII
 * labels over 63 octets, empty labels, labels that begin or end with
 * "-", "@", "<" and ">" (even inside a general address literal), and
 * anything else outside the grammar (spaces, controls, invalid UTF-8).
 * U-labels are checked for UTF-8 and hyphens only, not for IDNA2008 code
 * point rules. Returns 0 or -1.
 */
int mailproto_smtp_check_domain(const char *s, size_t len, int utf8);

/* Flags of mailproto_smtp_parse_path(). */
#define MAILPROTO_SMTP_PATH_NULL_OK 0x1u       /* "<>" (MAIL) */
#define MAILPROTO_SMTP_PATH_POSTMASTER_OK 0x2u /* "<Postmaster>" (RCPT) */

/*
 * Parses a Path (RFC 5321 4.1.2) starting at s[*pos], "<" included, with
 * UTF-8 where RFC 6531 3.3 allows it. On success writes the address as
 * described for mailproto_smtp_envelope_args.path to `out` (NUL-ended) and
 * its length to *out_len, sets *non_ascii if the path held non-ASCII,
 * moves *pos past ">" and returns 0. Otherwise returns -1 and sets *why to
 * a static description. Reads at most 256 octets.
 */
int mailproto_smtp_parse_path(const char *s, size_t len, size_t *pos,
                              unsigned flags,
                              char out[MAILPROTO_SMTP_PATH_MAX + 1],
                              size_t *out_len, int *non_ascii,
                              const char **why);

/* 0 if all of [s, s + len) is a US-ASCII Mailbox (RFC 5321 4.1.2) that
 * fits in a path, else -1. */
int mailproto_smtp_check_mailbox(const char *s, size_t len);

#endif
