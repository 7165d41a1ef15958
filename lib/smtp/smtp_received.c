/*
 * The Received: trace header (RFC 5321 4.4) with the protocol names of
 * RFC 3848 and RFC 6531 4.3, message ids, and CRAM-MD5 challenge nonces.
 *
 * Ids and nonces only need to be unique, not secret: the session tag is
 * an MD5 over the clock, the client's and our name and (when the
 * application did not set a `now` callback) the session's address; a
 * counter makes each message id and each challenge of a session unique.
 * With a fixed `now` callback everything is reproducible, which is what
 * tests need.
 */
#include <stdio.h>
#include <string.h>

#include "core/md5.h"
#include "core/nonce.h"
#include "smtp/smtp_internal.h"

static void hash_text(mailproto_md5 *m, const char *t) {
  if (!t)
    t = "";
  /* The length first, so "ab"+"c" and "a"+"bc" differ. */
  size_t len = strlen(t);
  mailproto_md5_update(m, &len, sizeof len);
  mailproto_md5_update(m, t, len);
}

/* An MD5 over the session's identity, the clock and `extra`, as `digits`
 * hex digits (at most 32). */
static void mix(mailproto_smtp *s, unsigned long extra, char *out,
                size_t digits) {
  mailproto_md5 m;
  uint8_t digest[MAILPROTO_MD5_DIGEST_LEN];
  char hex[2 * MAILPROTO_MD5_DIGEST_LEN + 1];
  mailproto_datetime now = mailproto_smtp_clock(s);
  mailproto_md5_init(&m);
  mailproto_md5_update(&m, &now.utc, sizeof now.utc);
  mailproto_md5_update(&m, &now.tz_minutes, sizeof now.tz_minutes);
  mailproto_md5_update(&m, &extra, sizeof extra);
  hash_text(&m, s->hostname);
  hash_text(&m, s->client);
  hash_text(&m, s->tag);
  if (!s->cb.now) {
    const void *self = s;
    mailproto_md5_update(&m, &self, sizeof self);
  }
  mailproto_md5_final(&m, digest);
  mailproto_hex_lower(digest, sizeof digest, hex);
  for (size_t i = 0; i < digits; i++)
    out[i] = hex[i] >= 'a' ? (char)(hex[i] - 'a' + 'A') : hex[i];
  out[digits] = '\0';
}

void mailproto_smtp_make_tag(mailproto_smtp *s) {
  s->tag[0] = '\0';
  mix(s, 0, s->tag, sizeof s->tag - 1);
}

void mailproto_smtp_message_id(const mailproto_smtp *s, char *out,
                               size_t size) {
  snprintf(out, size, "%s.%lu", s->tag, s->txn.number);
}

void mailproto_smtp_cram_challenge(mailproto_smtp *s, char *out, size_t size) {
  char nonce[17];
  mix(s, ++s->cram_count, nonce, 16);
  /* RFC 2195 2: "<unique.timestamp@hostname>"; the name is cut so the
   * challenge fits the engine's limit (`size` always holds the rest). */
  (void)mailproto_nonce_challenge(out, size, nonce, mailproto_smtp_clock(s).utc,
                                  s->hostname);
}

/* RFC 3848 and RFC 6531 4.3: ESMTP, ESMTPS, ESMTPA, ESMTPSA, LMTP...,
 * UTF8SMTP..., UTF8LMTP...; plain SMTP only for HELO without TLS/AUTH. */
static void protocol(const mailproto_smtp *s, char *out, size_t size) {
  const char *base;
  if (s->txn.smtputf8)
    base = s->config.lmtp ? "UTF8LMTP" : "UTF8SMTP";
  else if (s->config.lmtp)
    base = "LMTP";
  else if (s->esmtp || s->io.secure || s->user)
    base = "ESMTP";
  else
    base = "SMTP";
  snprintf(out, size, "%s%s%s", base, s->io.secure ? "S" : "",
           s->user ? "A" : "");
}

int mailproto_smtp_received(mailproto_smtp *s, char *out, size_t size) {
  char proto[16], id[48], date[MAILPROTO_DATE_BUFSIZE];
  mailproto_datetime now = mailproto_smtp_clock(s);
  /* An application clock with an impossible zone still gives a date. */
  if (now.tz_minutes < -1439 || now.tz_minutes > 1439)
    now.tz_minutes = 0;
  if (mailproto_date_format_rfc5322(&now, date, sizeof date) < 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  protocol(s, proto, sizeof proto);
  mailproto_smtp_message_id(s, id, sizeof id);
  int n;
  /* RFC 5321 4.4: the "for" clause names the recipient only when there
   * is exactly one, so others' addresses are not disclosed. */
  if (s->txn.count == 1)
    n = snprintf(out, size,
                 "Received: from %s (%s)\r\n\tby %s with %s id %s\r\n"
                 "\tfor <%s>; %s\r\n",
                 s->helo ? s->helo : "unknown",
                 s->client ? s->client : "unknown", s->hostname, proto, id,
                 s->txn.addrs[0], date);
  else
    n = snprintf(out, size,
                 "Received: from %s (%s)\r\n\tby %s with %s id %s;\r\n"
                 "\t%s\r\n",
                 s->helo ? s->helo : "unknown",
                 s->client ? s->client : "unknown", s->hostname, proto, id,
                 date);
  if (n < 0 || (size_t)n >= size)
    return MAILPROTO_ERR_BUFFER_FULL;
  return n;
}
