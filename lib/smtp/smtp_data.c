/*
 * The message: DATA (RFC 5321 4.1.1.4, 4.5.2) and BDAT (RFC 3030), the
 * steps before the first byte (data_start policy, deliver_begin, the
 * Received: header) and after the last (message policy, deliver_commit,
 * the replies; per recipient in LMTP, RFC 2033 4.2).
 *
 * Body bytes go to the store's writer as spans of the caller's input:
 * nothing is copied here, and a line is never held in memory. Only the
 * bytes that change are handled one by one: the dot a sender added for
 * transparency, and (when normalising) a bare CR or LF. A deferred write
 * stops the feed right after the bytes it covers.
 *
 * DATA ends only at CRLF "." CRLF. A CR or LF that is not part of a CRLF
 * is never a line end here: a "." after it cannot end the data, so input
 * that other software splits differently (SMTP smuggling, CVE-2023-51764)
 * is read as one message. By default such a message is refused with 550
 * 5.6.0 after its end; with BARE_EOL_NORMALIZE the stray byte is stored
 * as CRLF.
 */
#include <string.h>

#include "core/alloc.h"
#include "smtp/smtp_internal.h"
#include "store/store_call.h"

static const uint8_t crlf[2] = {'\r', '\n'};

/* Enough for any Received: header (smtp_received.c). */
#define RECEIVED_MAX 1536

static int finish_message(mailproto_smtp *s);
static int chunk_end(mailproto_smtp *s);

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

/* A reply that may be a 421 from a policy (which closes the session). */
static int send_reply(mailproto_smtp *s, const smtp_reply *r) {
  if (r->code == 421)
    return mailproto_smtp_close_421(s, r->enhanced, r->text);
  return mailproto_smtp_reply(s, r->code, r->enhanced, r->text);
}

/* The answer to the end of the data: one reply in SMTP, one per accepted
 * RCPT in LMTP (RFC 2033 4.2), each naming its recipient. */
static int reply_all(mailproto_smtp *s, const smtp_reply *r) {
  const smtp_txn *t = &s->txn;
  if (!s->config.lmtp || r->code == 421)
    return send_reply(s, r);
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < t->accepted; i++)
    rc = mailproto_smtp_replyf(s, r->code, r->enhanced, "<%s> %s",
                               t->addrs[t->slots[i]], r->text);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                             */
/* ------------------------------------------------------------------ */

/* A write's outcome: 0, or the message fails (the writer is aborted and
 * the rest of the data is read and dropped). Returns 0 or a fatal code. */
static int write_result(mailproto_smtp *s, int rc) {
  if (rc == 0 || mailproto_is_fatal(rc))
    return rc;
  smtp_reply r;
  mailproto_smtp_store_failure(rc, &r);
  return mailproto_smtp_txn_fail(s, &r, 0);
}

/*
 * Passes message bytes to the writer (nothing once the message failed).
 * The size limit counts what is stored (RFC 1870 6.3: the message is read
 * to its end, then refused with 552). Returns 0 when done, 1 when the
 * write was deferred, or a fatal code.
 */
static int body_write(mailproto_smtp *s, int kind, const uint8_t *p, size_t n) {
  smtp_txn *t = &s->txn;
  if (n == 0 || !t->writer)
    return 0;
  uint64_t max = s->config.max_message_size;
  if (max && ((uint64_t)n > max || t->stored > max - (uint64_t)n)) {
    smtp_reply r = {552, "5.3.4", "Message too big"};
    return mailproto_smtp_txn_fail(s, &r, 0);
  }
  t->stored += n;
  if (s->cb.body)
    s->cb.body(s, p, n, s->user_data);
  int rc =
      mailproto_store_call_write(&s->store, &s->io.op, kind, t->writer, p, n);
  return rc == MAILPROTO_DEFERRED ? 1 : write_result(s, rc);
}

/* Writes the line end still owed (normalising). Returns 0 when done, 1
 * when a write was deferred, or a fatal code. */
static int write_insert(mailproto_smtp *s) {
  while (s->insert_len) {
    const uint8_t *p = s->insert;
    size_t n = s->insert_len;
    s->insert_len = 0;
    int rc = body_write(s, SMTP_OP_WRITE, p, n);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* After a deferred write: the line end still owed, then the end of the
 * data or chunk if it was reached. */
static int body_next(mailproto_smtp *s) {
  int rc = write_insert(s);
  if (rc != 0)
    return rc == 1 ? 0 : rc;
  int end = s->chunk_done;
  s->chunk_done = 0;
  if (end == SMTP_END_CHUNK)
    return chunk_end(s);
  return end == SMTP_END_DATA ? finish_message(s) : 0;
}

int mailproto_smtp_write_done(mailproto_smtp *s, int rc) {
  rc = write_result(s, rc);
  return rc != 0 ? rc : body_next(s);
}

/* Writes a span of input, then `insert` (a line end replacing a bare CR
 * or LF). Returns 0 when done, 1 when a write was deferred (the rest
 * follows from write_done), or a fatal code. */
static int put(mailproto_smtp *s, const uint8_t *p, size_t n,
               const uint8_t *insert, size_t insert_len) {
  s->insert = insert;
  s->insert_len = s->txn.writer ? insert_len : 0;
  int rc = body_write(s, SMTP_OP_WRITE, p, n);
  return rc != 0 ? rc : write_insert(s);
}

/* A CR or LF outside CRLF (RFC 5321 2.3.8): refused, or stored as CRLF. */
static int bare_eol(mailproto_smtp *s, const uint8_t *p, size_t n,
                    const uint8_t *insert, size_t insert_len) {
  if (s->config.bare_eol == MAILPROTO_SMTP_BARE_EOL_REJECT) {
    smtp_reply r = {550, "5.6.0", "Message contains bare CR or LF"};
    return mailproto_smtp_txn_fail(s, &r, 0);
  }
  return put(s, p, n, insert, insert_len);
}

/*
 * A CR turned out bare when byte `c` (not LF) followed it. `owed` is what
 * completes its line end: LF when the CR was passed on, CRLF when it was
 * held back. The byte `c` is handled here as well, so that a deferred
 * write never leaves the feed without having consumed a byte: it is a
 * dot at a (fake) line start, dropped; a new CR, passed on; or text.
 * Returns the bytes to write (at most 3) in s->insert_buf.
 */
static size_t bare_cr(mailproto_smtp *s, const char *owed, uint8_t c) {
  size_t n = strlen(owed);
  memcpy(s->insert_buf, owed, n);
  if (c == '.') {
    s->dstate = SMTP_D_DOT_FAKE;
    return n;
  }
  s->insert_buf[n++] = c;
  s->dstate = c == '\r' ? SMTP_D_CR : SMTP_D_TEXT;
  return n;
}

/* ------------------------------------------------------------------ */
/* DATA body                                                           */
/* ------------------------------------------------------------------ */

/* Where the scan of one feed stopped looking for LF: `lf` is the first
 * LF at or after every position scanned since (the input's length when
 * there is none), so no byte is searched for LF twice in a feed, however
 * often bare CRs interrupt a long line. */
typedef struct lf_cache {
  size_t lf;
  int known;
} lf_cache;

static size_t next_lf(lf_cache *c, const uint8_t *in, size_t len, size_t pos) {
  if (!c->known || c->lf < pos) {
    const uint8_t *p = memchr(in + pos, '\n', len - pos);
    c->lf = p ? (size_t)(p - in) : len;
    c->known = 1;
  }
  return c->lf;
}

/* Why the text scan stopped. */
enum text_stop {
  TEXT_END, /* the input ended inside a line */
  TEXT_BOL, /* a line start after CRLF that needs a look: "." or no byte */
  TEXT_CR,  /* just after a CR that is not the one of a CRLF (or is last) */
  TEXT_LF   /* at a bare LF */
};

/*
 * Text from `pos` (inside a line, no CR pending) up to the first byte that
 * needs attention. Every other byte is stored as it is: lines that end in
 * CRLF, have no other CR, and are followed by a line that does not start
 * with ".". Per line one memchr finds the LF and one over the same line
 * the first CR; the line is plain when that CR comes right before the LF.
 * Returns where the scan stopped (see `enum text_stop`).
 */
static size_t scan_text(lf_cache *c, const uint8_t *in, size_t len, size_t pos,
                        enum text_stop *stop) {
  const uint8_t *p = in + pos, *end = in + len;
  const uint8_t *lf = in + next_lf(c, in, len, pos), *cr;
  for (;;) {
    cr = memchr(p, '\r', (size_t)(lf - p));
    if (lf == end || !cr || cr + 1 != lf)
      break;
    p = lf + 1;
    if (p == end || *p == '.') {
      *stop = TEXT_BOL;
      return (size_t)(p - in);
    }
    lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
      lf = end;
  }
  c->lf = (size_t)(lf - in);
  if (cr) {
    *stop = TEXT_CR;
    return (size_t)(cr - in) + 1;
  }
  *stop = lf == end ? TEXT_END : TEXT_LF;
  return (size_t)(lf - in);
}

int mailproto_smtp_data_feed(mailproto_smtp *s, const uint8_t *in, size_t len,
                             size_t *used) {
  /* Once the message failed the body is only scanned for its end. A
   * write may end the message (size limit, store failure), so this is
   * read again after each write. The feed stops only where a write is
   * deferred (having consumed at least one byte) or the data ended. */
  int discard = s->txn.writer == NULL;
  lf_cache lfc = {0, 0};
  size_t pos = 0, span = 0; /* [span, pos) is stored as it is */
  int rc = 0;
  while (pos < len) {
    uint8_t c = in[pos];
    switch (s->dstate) {
    case SMTP_D_TEXT: {
      enum text_stop stop;
      pos = scan_text(&lfc, in, len, pos, &stop);
      if (stop == TEXT_BOL)
        s->dstate = SMTP_D_BOL;
      else if (stop == TEXT_CR)
        s->dstate = SMTP_D_CR;
      else if (stop == TEXT_LF) {
        s->dstate = SMTP_D_BOL_FAKE; /* a bare LF */
        pos++;
        if (!discard) {
          rc = bare_eol(s, in + span, pos - 1 - span, crlf, 2);
          span = pos;
        }
      }
      break;
    }
    case SMTP_D_CR:
      if (c == '\n') {
        pos++;
        s->dstate = SMTP_D_BOL;
        break;
      }
      /* A bare CR; it was passed on already, so only LF is owed. */
      s->dstate = SMTP_D_BOL_FAKE;
      if (discard)
        break;
      pos++;
      rc = bare_eol(s, in + span, pos - 1 - span, s->insert_buf,
                    bare_cr(s, "\n", c));
      span = pos;
      break;
    case SMTP_D_BOL:
    case SMTP_D_BOL_FAKE:
      if (c != '.') {
        s->dstate = SMTP_D_TEXT;
        break;
      }
      /* RFC 5321 4.5.2: a leading dot is dropped; followed by CRLF at a
       * real line start it ends the data. After a bare CR or LF it is
       * dropped too, so no stored line is a lone "." that came from a
       * terminator another parser would have seen. */
      s->dstate = s->dstate == SMTP_D_BOL ? SMTP_D_DOT : SMTP_D_DOT_FAKE;
      pos++;
      if (!discard)
        rc = put(s, in + span, pos - 1 - span, NULL, 0);
      span = pos;
      break;
    case SMTP_D_DOT:
      /* Entered right after the dot was dropped, so span == pos here. */
      if (c == '\r') {
        pos++;
        span = pos; /* the CR is held back */
        s->dstate = SMTP_D_DOT_CR;
        break;
      }
      s->dstate = SMTP_D_TEXT;
      break;
    case SMTP_D_DOT_FAKE:
      s->dstate = SMTP_D_TEXT;
      break;
    case SMTP_D_DOT_CR:
      if (c == '\n') {
        /* CRLF "." CRLF (RFC 5321 4.1.1.4); nothing is pending. */
        *used = pos + 1;
        s->dstate = SMTP_D_BOL;
        s->state = SMTP_ST_COMMAND;
        s->chunk_done = SMTP_END_DATA;
        return body_next(s);
      }
      /* "." CR without LF: the held CR is bare. */
      s->dstate = SMTP_D_BOL_FAKE;
      if (discard)
        break;
      pos++;
      rc = bare_eol(s, in, 0, s->insert_buf, bare_cr(s, "\r\n", c));
      span = pos;
      break;
    }
    if (rc != 0) {
      /* Deferred: the feed stops after the bytes the write covered. */
      *used = pos;
      return rc == 1 ? 0 : rc;
    }
    discard = s->txn.writer == NULL;
  }
  *used = len;
  rc = put(s, in + span, len - span, NULL, 0);
  return rc == 1 ? 0 : rc;
}

/* ------------------------------------------------------------------ */
/* BDAT chunks                                                         */
/* ------------------------------------------------------------------ */

int mailproto_smtp_bdat_feed(mailproto_smtp *s, const uint8_t *in, size_t len,
                             size_t *used) {
  size_t take = len;
  if ((uint64_t)take > s->bdat_left)
    take = (size_t)s->bdat_left;
  s->bdat_left -= take;
  *used = take;
  if (s->bdat_left == 0)
    s->chunk_done = SMTP_END_CHUNK;
  /* RFC 3030 2: the bytes are read even when they are not wanted. */
  int rc = body_write(s, SMTP_OP_WRITE, in, take);
  if (rc != 0)
    return rc == 1 ? 0 : rc;
  return body_next(s);
}

/* "BDAT" SP chunk-size [ SP "LAST" ] (RFC 3030 2). */
static int parse_bdat(const char *a, size_t len, uint64_t *size, int *last) {
  size_t i = 0;
  uint64_t v = 0;
  for (; i < len && a[i] >= '0' && a[i] <= '9'; i++) {
    unsigned d = (unsigned)(a[i] - '0');
    if (v > (UINT64_MAX - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  if (i == 0)
    return -1;
  *size = v;
  *last = 0;
  if (i == len)
    return 0;
  if (len - i != 5 || a[i] != ' ')
    return -1;
  for (size_t k = 0; k < 4; k++)
    if ((a[i + 1 + k] & ~0x20) != "LAST"[k])
      return -1;
  *last = 1;
  return 0;
}

static int data_start(mailproto_smtp *s);

int mailproto_smtp_cmd_bdat(mailproto_smtp *s, const char *args, size_t len,
                            int has_args) {
  uint64_t size;
  int last;
  if (!has_args || parse_bdat(args, len, &size, &last) != 0)
    return mailproto_smtp_error(s, 501, "5.5.4", "Syntax: BDAT size [LAST]");
  smtp_txn *t = &s->txn;
  s->state = SMTP_ST_BDAT;
  s->bdat_size = size;
  s->bdat_left = size;
  s->bdat_last = last;
  s->chunk_done = 0;
  if (!t->active)
    s->chunk_refuse = "Error: need MAIL command";
  else if (t->accepted == 0)
    /* RFC 2033 4.3: in LMTP, BDAT LAST answers once per accepted RCPT:
     * here not at all. */
    s->chunk_refuse =
        s->config.lmtp && last ? "" : "Error: no valid recipients";
  else if (!t->data_used) {
    t->bdat = 1;
    return data_start(s);
  }
  /* Streamed to the writer, or read and dropped after a failure. */
  return s->bdat_left == 0 ? chunk_end(s) : 0;
}

/* The end of a BDAT chunk: 250 for each but the last (RFC 3030 2); the
 * last ends the message. A failed transaction repeats its failure until
 * its last chunk, then ends. */
static int chunk_end(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  int last = s->bdat_last;
  s->state = SMTP_ST_COMMAND;
  if (s->chunk_refuse) {
    const char *text = s->chunk_refuse;
    s->chunk_refuse = NULL;
    if (last)
      mailproto_smtp_txn_reset(s);
    return text[0] ? mailproto_smtp_error(s, 503, "5.5.1", text) : 0;
  }
  if (t->failure.code) {
    smtp_reply r;
    mailproto_smtp_txn_failure(s, &r);
    if (!last)
      return send_reply(s, &r);
    int rc = reply_all(s, &r);
    mailproto_smtp_txn_reset(s);
    return rc;
  }
  if (!last)
    return mailproto_smtp_replyf(s, 250, "2.0.0", "%llu octets received",
                                 (unsigned long long)s->bdat_size);
  return finish_message(s);
}

/* ------------------------------------------------------------------ */
/* Before the first byte                                               */
/* ------------------------------------------------------------------ */

int mailproto_smtp_cmd_data(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  if (!t->active)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: need MAIL command");
  /* RFC 3030 2 and 3: not after BDAT, not for BINARYMIME. */
  if (t->data_used)
    return mailproto_smtp_error(s, 503, "5.5.1", "Error: DATA after BDAT");
  if (t->body == MAILPROTO_SMTP_BODY_BINARYMIME)
    return mailproto_smtp_error(s, 503, "5.5.1",
                                "Error: BINARYMIME needs BDAT");
  if (t->accepted == 0) {
    /* RFC 2033 4.2: 503 in LMTP; RFC 2920 3.2 (3) in SMTP. */
    if (s->config.lmtp)
      return mailproto_smtp_error(s, 503, "5.5.1",
                                  "Error: no valid recipients");
    return mailproto_smtp_reply(s, 554, "5.5.1", "Error: no valid recipients");
  }
  t->bdat = 0;
  return data_start(s);
}

static int data_start(mailproto_smtp *s) {
  s->txn.data_used = 1;
  mailproto_smtp_policy_begin(s, SMTP_OP_DATA_START);
  int rc = s->cb.data_start ? s->cb.data_start(s, &s->io.op, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_DATA_START, rc);
}

/* The steps before the data are done: DATA answers 354 or the failure;
 * BDAT goes on with its chunk (streamed, or dropped after a failure). */
static int prelude_end(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  if (t->bdat)
    return s->bdat_left == 0 ? chunk_end(s) : 0;
  if (t->failure.code) {
    smtp_reply r;
    mailproto_smtp_txn_failure(s, &r);
    int rc = send_reply(s, &r);
    /* The envelope stays; DATA may be tried again. */
    mailproto_smtp_txn_clear_failure(s);
    t->data_used = 0;
    t->stored = 0;
    return rc;
  }
  s->state = SMTP_ST_DATA;
  s->dstate = SMTP_D_BOL;
  return mailproto_smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

int mailproto_smtp_data_start_done(mailproto_smtp *s, int rc) {
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  if (verdict == SMTP_CLOSE)
    return mailproto_smtp_close_421(s, "4.3.0", "Error: internal failure");
  if (verdict != SMTP_ACCEPT) {
    smtp_reply r = {451, "4.3.0", "Temporary failure, try again later"};
    if (verdict == SMTP_REJECT) {
      smtp_reply fallback = {554, "5.7.1", "Message rejected"};
      mailproto_smtp_policy_reply(s, &fallback, &r);
    }
    rc = mailproto_smtp_txn_fail(s, &r, r.text == s->preply.text);
    return rc != 0 ? rc : prelude_end(s);
  }
  smtp_txn *t = &s->txn;
  mailproto_delivery_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.reverse_path = t->reverse_path;
  info.recipients = (const char *const *)t->addrs;
  info.size_hint = t->declared_size;
  return mailproto_smtp_after_store(
      s, SMTP_OP_BEGIN,
      mailproto_store_call_deliver_begin(&s->store, &s->io.op, SMTP_OP_BEGIN,
                                         t->accounts, t->count, &info,
                                         &t->writer));
}

int mailproto_smtp_begin_done(mailproto_smtp *s, int rc) {
  smtp_txn *t = &s->txn;
  if (rc != 0) {
    t->writer = NULL;
    if (mailproto_is_fatal(rc))
      return rc;
    smtp_reply r;
    mailproto_smtp_store_failure(rc, &r);
    rc = mailproto_smtp_txn_fail(s, &r, 0);
    return rc != 0 ? rc : prelude_end(s);
  }
  t->number = ++s->messages;
  mailproto_smtp_message_id(s, t->id, sizeof t->id);
  if (!s->config.add_received)
    return prelude_end(s);
  /* RFC 5321 4.4: the trace header goes first. */
  char header[RECEIVED_MAX];
  int n = mailproto_smtp_received(s, header, sizeof header);
  if (n < 0) {
    /* Only a clock far outside the years a date can name gets here. */
    smtp_reply r = {451, "4.3.0", "Temporary failure, try again later"};
    rc = mailproto_smtp_txn_fail(s, &r, 0);
    return rc != 0 ? rc : prelude_end(s);
  }
  rc = body_write(s, SMTP_OP_HEADER, (const uint8_t *)header, (size_t)n);
  if (rc != 0)
    return rc == 1 ? 0 : rc;
  return prelude_end(s);
}

int mailproto_smtp_header_done(mailproto_smtp *s, int rc) {
  rc = write_result(s, rc);
  return rc != 0 ? rc : prelude_end(s);
}

/* ------------------------------------------------------------------ */
/* After the last byte                                                 */
/* ------------------------------------------------------------------ */

static void describe(const mailproto_smtp *s, mailproto_smtp_message *m) {
  const smtp_txn *t = &s->txn;
  memset(m, 0, sizeof *m);
  m->struct_size = sizeof *m;
  m->size = t->stored;
  m->recipient_count = t->count;
  m->recipients = (const char *const *)t->addrs;
  m->id = t->id;
}

static int finish_message(mailproto_smtp *s) {
  smtp_txn *t = &s->txn;
  if (t->failure.code) {
    smtp_reply r;
    mailproto_smtp_txn_failure(s, &r);
    int rc = reply_all(s, &r);
    mailproto_smtp_txn_reset(s);
    return rc;
  }
  mailproto_smtp_message m;
  describe(s, &m);
  mailproto_smtp_policy_begin(s, SMTP_OP_MESSAGE);
  int rc = s->cb.message ? s->cb.message(s, &s->io.op, &m, s->user_data) : 0;
  return mailproto_smtp_policy_end(s, SMTP_OP_MESSAGE, rc);
}

int mailproto_smtp_message_done(mailproto_smtp *s, int rc) {
  smtp_txn *t = &s->txn;
  int verdict = mailproto_smtp_verdict(s, rc);
  if (verdict < 0)
    return verdict;
  if (verdict != SMTP_ACCEPT) {
    /* Refused before the commit: nothing becomes visible. */
    mailproto_store_call_abort(&s->store, t->writer);
    t->writer = NULL;
    if (verdict == SMTP_CLOSE) {
      mailproto_smtp_txn_reset(s);
      return mailproto_smtp_close_421(s, "4.3.0", "Error: internal failure");
    }
    smtp_reply r = {451, "4.3.0", "Temporary failure, try again later"};
    if (verdict == SMTP_REJECT) {
      smtp_reply fallback = {554, "5.7.1", "Message rejected"};
      mailproto_smtp_policy_reply(s, &fallback, &r);
    }
    rc = reply_all(s, &r);
    mailproto_smtp_txn_reset(s);
    return rc;
  }
  /* The writer is gone after the commit whatever happens. */
  void *writer = t->writer;
  t->writer = NULL;
  return mailproto_smtp_after_store(
      s, SMTP_OP_COMMIT,
      mailproto_store_call_deliver_commit(&s->store, &s->io.op, SMTP_OP_COMMIT,
                                          writer, !s->config.lmtp, t->results,
                                          t->count));
}

int mailproto_smtp_commit_done(mailproto_smtp *s, int rc) {
  smtp_txn *t = &s->txn;
  if (mailproto_is_fatal(rc))
    return rc;
  /* SMTP commits all or nothing; LMTP reports each account. A slot the
   * store left at its initial INTERNAL (store_call.h) is a failure for
   * that recipient; any other fatal code ends the session. */
  size_t delivered = 0;
  int first_error = rc;
  for (size_t i = 0; i < t->count; i++) {
    if (rc != 0 && !s->config.lmtp)
      t->results[i] = rc;
    if (t->results[i] == MAILPROTO_ERR_INTERNAL)
      t->results[i] = MAILPROTO_ERR_TEMPORARY;
    if (mailproto_is_fatal(t->results[i]))
      return t->results[i];
    if (t->results[i] == 0)
      delivered++;
    else if (first_error == 0)
      first_error = t->results[i];
  }
  mailproto_smtp_message m;
  describe(s, &m);
  int out = 0;
  if (!s->config.lmtp) {
    static const char accepted[] = "Message accepted as ";
    char text[sizeof accepted + sizeof t->id];
    smtp_reply r;
    if (first_error == 0) {
      memcpy(text, accepted, sizeof accepted - 1);
      memcpy(text + sizeof accepted - 1, t->id, strlen(t->id) + 1);
      smtp_reply fallback = {250, "2.0.0", text};
      mailproto_smtp_policy_reply(s, &fallback, &r);
    } else
      mailproto_smtp_store_failure(first_error, &r);
    out = mailproto_smtp_reply(s, r.code, r.enhanced, r.text);
  } else {
    for (size_t i = 0; out == 0 && i < t->accepted; i++) {
      uint32_t e = t->slots[i];
      smtp_reply r = {250, "2.1.5", "Delivered"};
      if (t->results[e] != 0)
        mailproto_smtp_store_failure(t->results[e], &r);
      out = mailproto_smtp_replyf(s, r.code, r.enhanced, "<%s> %s", t->addrs[e],
                                  r.text);
    }
  }
  if (out == 0 && delivered > 0 && s->cb.delivered)
    s->cb.delivered(s, &m, t->results, s->user_data);
  mailproto_smtp_txn_reset(s);
  return out;
}
