/*
 * Reply lines (RFC 5321 4.2), enhanced status codes (RFC 2034, RFC 3463),
 * the error counter, and what policy callbacks answer.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"

/* RFC 2034 3: enhanced codes preface every 2xx, 4xx and 5xx reply when the
 * extension is on; 3xx replies never carry one. */
static int with_enhanced(const mailproto_smtp *s, int code,
                         const char *enhanced) {
  return enhanced && (s->ext & MAILPROTO_SMTP_EXT_ENHANCED) && code / 100 != 3;
}

int mailproto_smtp_reply(mailproto_smtp *s, int code, const char *enhanced,
                         const char *text) {
  if (with_enhanced(s, code, enhanced))
    return mailproto_outq_printf(&s->io.out, "%03d %s %s\r\n", code, enhanced,
                                 text);
  return mailproto_outq_printf(&s->io.out, "%03d %s\r\n", code, text);
}

int mailproto_smtp_replyf(mailproto_smtp *s, int code, const char *enhanced,
                          const char *fmt, ...) {
  char text[SMTP_REPLY_LINE_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0)
    return MAILPROTO_ERR_INTERNAL;
  return mailproto_smtp_reply(s, code, enhanced, text);
}

int mailproto_smtp_reply_more(mailproto_smtp *s, int code, const char *text) {
  return mailproto_outq_printf(&s->io.out, "%03d-%s\r\n", code, text);
}

int mailproto_smtp_close_421(mailproto_smtp *s, const char *enhanced,
                             const char *text) {
  s->state = SMTP_ST_CLOSING;
  return mailproto_smtp_replyf(s, 421, enhanced, "%s %s", s->hostname, text);
}

int mailproto_smtp_error(mailproto_smtp *s, int code, const char *enhanced,
                         const char *text) {
  int rc = mailproto_smtp_reply(s, code, enhanced, text);
  if (rc != 0)
    return rc;
  if (mailproto_session_count(&s->errors, s->config.max_errors))
    return mailproto_smtp_close_421(s, "4.7.0", "Error: too many errors");
  return 0;
}

void mailproto_smtp_store_failure(int rc, smtp_reply *out) {
  switch (rc) {
  case MAILPROTO_ERR_LIMIT:
    *out = (smtp_reply){452, "4.2.2", "Mailbox full, try again later"};
    break;
  case MAILPROTO_ERR_PERMISSION:
    *out = (smtp_reply){550, "5.7.1", "Delivery not authorized"};
    break;
  default:
    *out = (smtp_reply){451, "4.3.0", "Temporary failure, try again later"};
    break;
  }
}

/* ------------------------------------------------------------------ */
/* Policy replies                                                      */
/* ------------------------------------------------------------------ */

void mailproto_smtp_policy_clear(mailproto_smtp *s) {
  mailproto_reply_clear(&s->preply, &s->alloc);
}

/* The 2xx codes a callback may answer with for each decision; rejections
 * (4xx, 5xx) are allowed everywhere but the greeting, which has its own
 * codes (RFC 5321 4.3.2: 220, 554, and 421 at any time). */
static int code_allowed(int kind, int code) {
  int cls = code / 100;
  if (kind == SMTP_OP_CONNECT)
    return code == 220 || code == 421 || code == 554;
  if (cls == 4 || cls == 5)
    return 1;
  switch (kind) {
  case SMTP_OP_HELO:
  case SMTP_OP_MAIL:
  case SMTP_OP_MESSAGE:
    return code == 250;
  case SMTP_OP_RCPT:
  case SMTP_OP_VRFY:
    return code == 250 || code == 251 || code == 252;
  case SMTP_OP_AUTH_POLICY:
    return code == 235;
  default:
    return 0;
  }
}

int mailproto_smtp_set_policy_reply(mailproto_op *op, int code,
                                    const char *enhanced, const char *text) {
  /* One line of text, which keeps the reply within RFC 5321's 512 octets;
   * UTF-8 may pass (RFC 6531 3.7.4 lets SMTPUTF8 servers use it). */
  static const mailproto_reply_rules rules = {SMTP_POLICY_TEXT_MAX, 0};
  mailproto_smtp *s = op->owner;
  if (!smtp_op_is_policy(op->kind))
    return MAILPROTO_ERR_STATE;
  if (!code_allowed(op->kind, code))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return mailproto_reply_set(&s->preply, &s->alloc, &rules, code, enhanced,
                             text);
}

int mailproto_smtp_verdict(mailproto_smtp *s, int rc) {
  if (s->preply.nomem)
    return MAILPROTO_ERR_NOMEM;
  if (rc < 0)
    return mailproto_is_fatal(rc) ? SMTP_CLOSE : SMTP_TEMPFAIL;
  int cls = s->preply.code / 100;
  return cls == 4 || cls == 5 ? SMTP_REJECT : SMTP_ACCEPT;
}

void mailproto_smtp_policy_reply(const mailproto_smtp *s,
                                 const smtp_reply *fallback, smtp_reply *out) {
  *out = *fallback;
  if (s->preply.code == 0)
    return;
  out->code = s->preply.code;
  if (s->preply.enhanced[0])
    out->enhanced = s->preply.enhanced;
  else if (out->code / 100 != fallback->code / 100) {
    /* The default's class must agree with the code (RFC 3463 2). */
    static const char *const by_class[] = {"2.0.0", "4.7.1", "5.7.1"};
    out->enhanced = by_class[out->code / 100 == 2 ? 0 : out->code / 100 - 3];
  }
  if (s->preply.text)
    out->text = s->preply.text;
}

int mailproto_smtp_reply_verdict(mailproto_smtp *s, int verdict,
                                 const smtp_reply *fallback) {
  if (verdict == SMTP_TEMPFAIL)
    return mailproto_smtp_reply(s, 451, "4.3.0",
                                "Temporary failure, try again later");
  if (verdict == SMTP_CLOSE)
    return mailproto_smtp_close_421(s, "4.3.0", "Error: internal failure");
  smtp_reply r;
  mailproto_smtp_policy_reply(s, fallback, &r);
  if (r.code == 421)
    return mailproto_smtp_close_421(s, r.enhanced, r.text);
  return mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
}
