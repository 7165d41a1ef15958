/*
 * The search key program (RFC 3501 6.4.4, RFC 9051 6.4.4): a key tree
 * evaluated in three-valued logic, so the keys the view answers (flags,
 * keywords, sequence numbers, UIDs, size, internal date) decide a message
 * whenever they can before any of it is read; the string keys and the
 * sent-date keys are "content keys" whose answers come from the header
 * fields and text parts as they stream by.
 *
 * Matching is the MIME module's case-insensitive substring matcher over
 * UTF-8: header values after RFC 2047 decoding, text parts after
 * transfer decoding and conversion from their charset.
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "imap/imap_search.h"
#include "mime/mime_header.h"

/* A keyword the mailbox does not know: matches no message. */
#define NO_KEYWORD UINT64_MAX

static int is_content(mailproto_imap_search_type t) {
  switch (t) {
  case MAILPROTO_IMAP_SEARCH_BCC:
  case MAILPROTO_IMAP_SEARCH_BODY:
  case MAILPROTO_IMAP_SEARCH_CC:
  case MAILPROTO_IMAP_SEARCH_FROM:
  case MAILPROTO_IMAP_SEARCH_SUBJECT:
  case MAILPROTO_IMAP_SEARCH_TEXT:
  case MAILPROTO_IMAP_SEARCH_TO:
  case MAILPROTO_IMAP_SEARCH_HEADER:
  case MAILPROTO_IMAP_SEARCH_SENTBEFORE:
  case MAILPROTO_IMAP_SEARCH_SENTON:
  case MAILPROTO_IMAP_SEARCH_SENTSINCE:
    return 1;
  default:
    return 0;
  }
}

static int is_sent(mailproto_imap_search_type t) {
  return t == MAILPROTO_IMAP_SEARCH_SENTBEFORE ||
         t == MAILPROTO_IMAP_SEARCH_SENTON ||
         t == MAILPROTO_IMAP_SEARCH_SENTSINCE;
}

/* Counts content keys and checks what is supported; numbers them. */
static int walk(imap_search_prog *p, mailproto_imap_search_key *k,
                const mailproto_imap *s, unsigned *n, int fill) {
  for (; k; k = k->next) {
    if (k->type == MAILPROTO_IMAP_SEARCH_MODSEQ)
      p->uses_modseq = 1;
    if (k->type == MAILPROTO_IMAP_SEARCH_SEQSET && !k->set.saved)
      p->uses_seqnums = 1;
    if (fill && (k->type == MAILPROTO_IMAP_SEARCH_KEYWORD ||
                 k->type == MAILPROTO_IMAP_SEARCH_UNKEYWORD)) {
      unsigned idx;
      k->number = mailproto_imap_view_keyword_find(s->sel.view, k->str.data,
                                                   k->str.len, &idx)
                      ? idx
                      : NO_KEYWORD;
    }
    switch (k->type) {
    case MAILPROTO_IMAP_SEARCH_LARGER:
    case MAILPROTO_IMAP_SEARCH_SMALLER:
    case MAILPROTO_IMAP_SEARCH_BEFORE:
    case MAILPROTO_IMAP_SEARCH_ON:
    case MAILPROTO_IMAP_SEARCH_SINCE:
      p->need_meta = 1;
      break;
    case MAILPROTO_IMAP_SEARCH_KEYWORD:
    case MAILPROTO_IMAP_SEARCH_UNKEYWORD:
      p->need_keywords = 1;
      break;
    default:
      break;
    }
    /* HEADER looks at every occurrence of its field (RFC 3501 6.4.4: "a
     * header with the specified field-name"); an envelope keeps one. */
    if (k->type == MAILPROTO_IMAP_SEARCH_TEXT ||
        k->type == MAILPROTO_IMAP_SEARCH_HEADER)
      p->env_short = 1;
    if (is_content(k->type)) {
      if (fill) {
        imap_search_ckey *c = &p->ck[*n];
        c->key = k;
        k->number = *n;
        if (!is_sent(k->type)) {
          int rc = mailproto_mime_matcher_init(
              &c->m, p->alloc, (const uint8_t *)k->str.data, k->str.len);
          if (rc != 0)
            return rc;
        }
      }
      (*n)++;
      if (k->type == MAILPROTO_IMAP_SEARCH_BODY ||
          k->type == MAILPROTO_IMAP_SEARCH_TEXT)
        p->need_body = 1;
      if (k->type != MAILPROTO_IMAP_SEARCH_BODY)
        p->need_header = 1;
    }
    if (k->type == MAILPROTO_IMAP_SEARCH_AND ||
        k->type == MAILPROTO_IMAP_SEARCH_OR ||
        k->type == MAILPROTO_IMAP_SEARCH_NOT) {
      int rc = walk(p, k->children, s, n, fill);
      if (rc != 0)
        return rc;
    }
  }
  return 0;
}

static void fields_init(imap_search_fields *f, const mailproto_allocator *a) {
  memset(f, 0, sizeof *f);
  mailproto_buf *b[] = {&f->subject,    &f->from,        &f->to,        &f->cc,
                        &f->message_id, &f->in_reply_to, &f->references};
  for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
    mailproto_buf_init(b[i], a, IMAP_FIELD_MAX);
}

static void fields_clear(imap_search_fields *f) {
  f->seen = 0;
  f->have_date = 0;
  mailproto_buf_clear(&f->subject);
  mailproto_buf_clear(&f->from);
  mailproto_buf_clear(&f->to);
  mailproto_buf_clear(&f->cc);
  mailproto_buf_clear(&f->message_id);
  mailproto_buf_clear(&f->in_reply_to);
  mailproto_buf_clear(&f->references);
}

static void fields_free(imap_search_fields *f) {
  mailproto_buf_free(&f->subject);
  mailproto_buf_free(&f->from);
  mailproto_buf_free(&f->to);
  mailproto_buf_free(&f->cc);
  mailproto_buf_free(&f->message_id);
  mailproto_buf_free(&f->in_reply_to);
  mailproto_buf_free(&f->references);
}

int mailproto_imap_search_compile(imap_search_prog *p,
                                  const mailproto_allocator *alloc,
                                  mailproto_imap_search_key *root,
                                  const mailproto_imap *s, unsigned want) {
  memset(p, 0, sizeof *p);
  p->alloc = alloc;
  p->root = root;
  p->want = want;
  fields_init(&p->fields, alloc);
  mailproto_buf_init(&p->scratch, alloc, 4 * IMAP_FIELD_MAX);
  mailproto_buf_init(&p->hdr.field, alloc, IMAP_FIELD_MAX);
  unsigned n = 0;
  int rc = walk(p, root, s, &n, 0);
  if (rc != 0)
    return rc;
  if (n) {
    p->ck = mailproto_mem_calloc(alloc, n, sizeof *p->ck);
    p->hit = mailproto_mem_calloc(alloc, n, 1);
    if (!p->ck || !p->hit)
      return MAILPROTO_ERR_NOMEM;
  }
  p->nck = n;
  n = 0;
  rc = walk(p, root, s, &n, 1);
  if (want)
    p->need_header = 1;
  return rc;
}

void mailproto_imap_search_prog_free(imap_search_prog *p) {
  for (unsigned i = 0; i < p->nck; i++)
    mailproto_mime_matcher_free(&p->ck[i].m);
  mailproto_mem_free(p->alloc, p->ck);
  mailproto_mem_free(p->alloc, p->hit);
  fields_free(&p->fields);
  mailproto_buf_free(&p->scratch);
  mailproto_buf_free(&p->hdr.field);
  memset(p, 0, sizeof *p);
}

void mailproto_imap_search_begin_msg(imap_search_prog *p) {
  if (p->nck)
    memset(p->hit, 0, p->nck);
  for (unsigned i = 0; i < p->nck; i++)
    if (!is_sent(p->ck[i].key->type))
      mailproto_mime_matcher_reset(&p->ck[i].m);
  fields_clear(&p->fields);
  mailproto_buf_clear(&p->hdr.field);
  p->hdr.line_start = 1;
  p->hdr.done = 0;
  p->env_seen = 0;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */
/* ------------------------------------------------------------------ */

/* The day a date falls on in its own zone (RFC 3501 6.4.4: "disregarding
 * time and timezone"). */
static int64_t local_day(const mailproto_datetime *d) {
  int64_t t = d->utc + (int64_t)d->tz_minutes * 60;
  return t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
}

static int64_t key_day(const mailproto_imap_search_key *k) {
  return k->date >= 0 ? k->date / 86400 : -((-k->date + 86399) / 86400);
}

static int day_cmp(mailproto_imap_search_type t, int64_t day, int64_t key) {
  switch (t) {
  case MAILPROTO_IMAP_SEARCH_BEFORE:
  case MAILPROTO_IMAP_SEARCH_SENTBEFORE:
    return day < key;
  case MAILPROTO_IMAP_SEARCH_ON:
  case MAILPROTO_IMAP_SEARCH_SENTON:
    return day == key;
  default: /* SINCE: on or after */
    return day >= key;
  }
}

static int in_set(const mailproto_imap *s, const mailproto_imap_search_key *k,
                  uint32_t n, uint32_t star, uint32_t uid) {
  /* "$" (RFC 5182 2.1): the saved messages, whatever the set's kind. */
  if (k->set.saved)
    return mailproto_imap_search_saved_has(s, uid);
  return mailproto_imap_seqset_contains(&k->set, n, star);
}

static int eval_key(const imap_search_prog *p, const mailproto_imap *s,
                    const mailproto_imap_search_key *k,
                    const imap_search_msg *m, int final);

static int eval_and(const imap_search_prog *p, const mailproto_imap *s,
                    const mailproto_imap_search_key *k,
                    const imap_search_msg *m, int final) {
  int r = IMAP_SR_YES;
  for (; k; k = k->next) {
    int v = eval_key(p, s, k, m, final);
    if (v == IMAP_SR_NO)
      return IMAP_SR_NO;
    if (v == IMAP_SR_UNKNOWN)
      r = IMAP_SR_UNKNOWN;
  }
  return r;
}

static int flag(const imap_search_msg *m, uint32_t bit, int want) {
  return ((m->flags & bit) != 0) == want ? IMAP_SR_YES : IMAP_SR_NO;
}

static int eval_key(const imap_search_prog *p, const mailproto_imap *s,
                    const mailproto_imap_search_key *k,
                    const imap_search_msg *m, int final) {
  switch (k->type) {
  case MAILPROTO_IMAP_SEARCH_AND:
    return eval_and(p, s, k->children, m, final);
  case MAILPROTO_IMAP_SEARCH_OR: {
    int a = eval_key(p, s, k->children, m, final);
    if (a == IMAP_SR_YES)
      return a;
    int b = eval_key(p, s, k->children->next, m, final);
    if (b == IMAP_SR_YES)
      return b;
    return a == IMAP_SR_NO && b == IMAP_SR_NO ? IMAP_SR_NO : IMAP_SR_UNKNOWN;
  }
  case MAILPROTO_IMAP_SEARCH_NOT: {
    int a = eval_key(p, s, k->children, m, final);
    return a == IMAP_SR_UNKNOWN ? a : !a;
  }
  case MAILPROTO_IMAP_SEARCH_SEQSET:
    return in_set(s, k, m->index + 1, m->exists, m->uid);
  case MAILPROTO_IMAP_SEARCH_UID:
    return in_set(s, k, m->uid, m->last_uid, m->uid);
  case MAILPROTO_IMAP_SEARCH_ALL:
    return IMAP_SR_YES;
  case MAILPROTO_IMAP_SEARCH_ANSWERED:
    return flag(m, MAILPROTO_FLAG_ANSWERED, 1);
  case MAILPROTO_IMAP_SEARCH_DELETED:
    return flag(m, MAILPROTO_FLAG_DELETED, 1);
  case MAILPROTO_IMAP_SEARCH_DRAFT:
    return flag(m, MAILPROTO_FLAG_DRAFT, 1);
  case MAILPROTO_IMAP_SEARCH_FLAGGED:
    return flag(m, MAILPROTO_FLAG_FLAGGED, 1);
  case MAILPROTO_IMAP_SEARCH_SEEN:
    return flag(m, MAILPROTO_FLAG_SEEN, 1);
  case MAILPROTO_IMAP_SEARCH_RECENT:
    return flag(m, MAILPROTO_FLAG_RECENT, 1);
  case MAILPROTO_IMAP_SEARCH_OLD:
    return flag(m, MAILPROTO_FLAG_RECENT, 0);
  case MAILPROTO_IMAP_SEARCH_NEW: /* RECENT UNSEEN */
    return (m->flags & (MAILPROTO_FLAG_RECENT | MAILPROTO_FLAG_SEEN)) ==
           MAILPROTO_FLAG_RECENT;
  case MAILPROTO_IMAP_SEARCH_UNANSWERED:
    return flag(m, MAILPROTO_FLAG_ANSWERED, 0);
  case MAILPROTO_IMAP_SEARCH_UNDELETED:
    return flag(m, MAILPROTO_FLAG_DELETED, 0);
  case MAILPROTO_IMAP_SEARCH_UNDRAFT:
    return flag(m, MAILPROTO_FLAG_DRAFT, 0);
  case MAILPROTO_IMAP_SEARCH_UNFLAGGED:
    return flag(m, MAILPROTO_FLAG_FLAGGED, 0);
  case MAILPROTO_IMAP_SEARCH_UNSEEN:
    return flag(m, MAILPROTO_FLAG_SEEN, 0);
  case MAILPROTO_IMAP_SEARCH_KEYWORD:
  case MAILPROTO_IMAP_SEARCH_UNKEYWORD: {
    int has = k->number != NO_KEYWORD &&
              ((m->keywords >> (unsigned)k->number) & 1u) != 0;
    return k->type == MAILPROTO_IMAP_SEARCH_KEYWORD ? has : !has;
  }
  case MAILPROTO_IMAP_SEARCH_MODSEQ:
    /* One mod-sequence per message: the entry name is ignored (RFC 7162
     * 3.1.5). */
    return m->modseq >= k->number;
  case MAILPROTO_IMAP_SEARCH_LARGER:
    return m->have_meta && m->size > k->number;
  case MAILPROTO_IMAP_SEARCH_SMALLER:
    return m->have_meta && m->size < k->number;
  case MAILPROTO_IMAP_SEARCH_BEFORE:
  case MAILPROTO_IMAP_SEARCH_ON:
  case MAILPROTO_IMAP_SEARCH_SINCE:
    return m->have_meta && day_cmp(k->type, local_day(&m->date), key_day(k));
  case MAILPROTO_IMAP_SEARCH_SENTBEFORE:
  case MAILPROTO_IMAP_SEARCH_SENTON:
  case MAILPROTO_IMAP_SEARCH_SENTSINCE:
    if (p->fields.have_date)
      return day_cmp(k->type, local_day(&p->fields.date), key_day(k));
    return final || p->hdr.done ? IMAP_SR_NO : IMAP_SR_UNKNOWN;
  default: { /* string keys */
    size_t i = (size_t)k->number;
    if (i < p->nck && p->hit[i])
      return IMAP_SR_YES;
    /* Header keys are decided once the header is over. */
    int header_key = k->type != MAILPROTO_IMAP_SEARCH_BODY &&
                     k->type != MAILPROTO_IMAP_SEARCH_TEXT;
    /* The empty string is in every body, one without a text part too
     * (RFC 3501 6.4.4: a substring of the body). */
    if (!header_key && k->str.len == 0)
      return IMAP_SR_YES;
    if (final || (header_key && p->hdr.done))
      return IMAP_SR_NO;
    return IMAP_SR_UNKNOWN;
  }
  }
}

int mailproto_imap_search_flag_masks(const mailproto_imap_search_key *root,
                                     uint32_t *mask, uint32_t *want) {
  *mask = *want = 0;
  if (root->type != MAILPROTO_IMAP_SEARCH_AND)
    return 0;
  for (const mailproto_imap_search_key *k = root->children; k; k = k->next) {
    uint32_t m = 0, w = 0;
    switch (k->type) {
    case MAILPROTO_IMAP_SEARCH_ALL:
      break;
    case MAILPROTO_IMAP_SEARCH_ANSWERED:
      m = w = MAILPROTO_FLAG_ANSWERED;
      break;
    case MAILPROTO_IMAP_SEARCH_DELETED:
      m = w = MAILPROTO_FLAG_DELETED;
      break;
    case MAILPROTO_IMAP_SEARCH_DRAFT:
      m = w = MAILPROTO_FLAG_DRAFT;
      break;
    case MAILPROTO_IMAP_SEARCH_FLAGGED:
      m = w = MAILPROTO_FLAG_FLAGGED;
      break;
    case MAILPROTO_IMAP_SEARCH_SEEN:
      m = w = MAILPROTO_FLAG_SEEN;
      break;
    case MAILPROTO_IMAP_SEARCH_RECENT:
      m = w = MAILPROTO_FLAG_RECENT;
      break;
    case MAILPROTO_IMAP_SEARCH_NEW:
      m = MAILPROTO_FLAG_RECENT | MAILPROTO_FLAG_SEEN;
      w = MAILPROTO_FLAG_RECENT;
      break;
    case MAILPROTO_IMAP_SEARCH_OLD:
      m = MAILPROTO_FLAG_RECENT;
      break;
    case MAILPROTO_IMAP_SEARCH_UNANSWERED:
      m = MAILPROTO_FLAG_ANSWERED;
      break;
    case MAILPROTO_IMAP_SEARCH_UNDELETED:
      m = MAILPROTO_FLAG_DELETED;
      break;
    case MAILPROTO_IMAP_SEARCH_UNDRAFT:
      m = MAILPROTO_FLAG_DRAFT;
      break;
    case MAILPROTO_IMAP_SEARCH_UNFLAGGED:
      m = MAILPROTO_FLAG_FLAGGED;
      break;
    case MAILPROTO_IMAP_SEARCH_UNSEEN:
      m = MAILPROTO_FLAG_SEEN;
      break;
    default:
      return 0;
    }
    /* "SEEN UNSEEN" asks for both values of a bit: the general walk
     * answers it (with nothing). */
    if ((*mask & m & (*want ^ w)) != 0)
      return 0;
    *mask |= m;
    *want |= w;
  }
  return 1;
}

int mailproto_imap_search_eval(const imap_search_prog *p,
                               const mailproto_imap *s,
                               const imap_search_msg *m, int final) {
  return eval_key(p, s, p->root, m, final);
}

/* ------------------------------------------------------------------ */
/* Header fields                                                       */
/* ------------------------------------------------------------------ */

static int name_is(const uint8_t *n, size_t len, const char *want) {
  return mailproto_mime_span_is(n, len, want);
}

/* Feeds one decoded value to a matcher on its own (a match never spans
 * two fields or parts). */
static int match_value(imap_search_ckey *c, const uint8_t *v, size_t len) {
  mailproto_mime_matcher_reset(&c->m);
  int r = mailproto_mime_matcher_feed(&c->m, v, len);
  mailproto_mime_matcher_reset(&c->m);
  return r;
}

static int keep(mailproto_buf *b, const uint8_t *v, size_t len) {
  if (b->len)
    return 0; /* the first occurrence counts */
  if (len > b->max)
    len = b->max;
  int rc = mailproto_buf_append(b, v, len);
  return rc == MAILPROTO_ERR_NOMEM ? rc : 0;
}

/* The env_seen bit of an envelope field the search keys name, or 0. */
static unsigned env_bit(const uint8_t *name, size_t nlen) {
  static const char *const names[] = {"Subject", "From", "To", "Cc", "Bcc"};
  for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
    if (name_is(name, nlen, names[i]))
      return 1u << i;
  return 0;
}

/* A complete field: the header keys it concerns, and what SORT/THREAD
 * keep of it. */
static int on_field(imap_search_prog *p, const uint8_t *name, size_t nlen,
                    const uint8_t *v, size_t vlen);

int mailproto_imap_search_envelope(imap_search_prog *p,
                                   const mailproto_mime_tree *t) {
  const mailproto_mime_envelope *e = mailproto_mime_envelope_of(t, 0);
  p->hdr.done = 1;
  if (!e)
    return 0;
  for (int f = 0; f < MAILPROTO_MIME_ENV_COUNT; f++) {
    mailproto_mime_ref r = e->fields[f];
    const uint8_t *v = mailproto_mime_ref_data(t, r);
    if (!v)
      continue;
    const char *name =
        mailproto_mime_env_field_name((mailproto_mime_env_field)f);
    int rc = on_field(p, (const uint8_t *)name, strlen(name), v, r.len);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int on_field(imap_search_prog *p, const uint8_t *name, size_t nlen,
                    const uint8_t *v, size_t vlen) {
  imap_search_fields *f = &p->fields;
  int rc = 0;
  if (name_is(name, nlen, "Date") && !(f->seen & IMAP_WANT_DATE)) {
    f->seen |= IMAP_WANT_DATE;
    f->have_date =
        mailproto_date_parse_rfc5322((const char *)v, vlen, &f->date) == 0;
  }
  if (p->want) {
    static const struct {
      const char *name;
      unsigned bit;
      size_t off;
    } kept[] = {
        {"Subject", IMAP_WANT_SUBJECT, offsetof(imap_search_fields, subject)},
        {"From", IMAP_WANT_FROM, offsetof(imap_search_fields, from)},
        {"To", IMAP_WANT_TO, offsetof(imap_search_fields, to)},
        {"Cc", IMAP_WANT_CC, offsetof(imap_search_fields, cc)},
        {"Message-ID", IMAP_WANT_IDS, offsetof(imap_search_fields, message_id)},
        {"In-Reply-To", IMAP_WANT_IDS,
         offsetof(imap_search_fields, in_reply_to)},
        {"References", IMAP_WANT_IDS, offsetof(imap_search_fields, references)},
    };
    for (size_t i = 0; rc == 0 && i < sizeof kept / sizeof kept[0]; i++)
      if ((p->want & kept[i].bit) && name_is(name, nlen, kept[i].name)) {
        f->seen |= kept[i].bit;
        rc = keep((mailproto_buf *)((char *)f + kept[i].off), v, vlen);
      }
    if (rc != 0)
      return rc;
  }
  /* BCC, CC, FROM, SUBJECT and TO search the envelope's field (RFC 3501
   * 6.4.4), the first occurrence, as the cached envelope does; HEADER
   * and TEXT see every occurrence. */
  unsigned bit = env_bit(name, nlen);
  int repeated = (p->env_seen & bit) != 0;
  p->env_seen |= bit;
  /* RFC 2047 decoding once per field, only when a key looks at it. */
  int decoded = 0;
  for (unsigned i = 0; i < p->nck; i++) {
    imap_search_ckey *c = &p->ck[i];
    const mailproto_imap_search_key *k = c->key;
    const char *want = NULL;
    switch (k->type) {
    case MAILPROTO_IMAP_SEARCH_BCC:
      want = "Bcc";
      break;
    case MAILPROTO_IMAP_SEARCH_CC:
      want = "Cc";
      break;
    case MAILPROTO_IMAP_SEARCH_FROM:
      want = "From";
      break;
    case MAILPROTO_IMAP_SEARCH_TO:
      want = "To";
      break;
    case MAILPROTO_IMAP_SEARCH_SUBJECT:
      want = "Subject";
      break;
    case MAILPROTO_IMAP_SEARCH_HEADER:
      want = k->field.data;
      break;
    case MAILPROTO_IMAP_SEARCH_TEXT:
      break;
    default:
      continue;
    }
    if (p->hit[i] || (want && !name_is(name, nlen, want)) ||
        (repeated && k->type != MAILPROTO_IMAP_SEARCH_HEADER &&
         k->type != MAILPROTO_IMAP_SEARCH_TEXT))
      continue;
    if (!decoded) {
      mailproto_buf_clear(&p->scratch);
      rc = mailproto_mime_decode_words(v, vlen, &p->scratch);
      if (rc == MAILPROTO_ERR_NOMEM)
        return rc;
      if (rc != 0) { /* too long to decode: match the raw value */
        mailproto_buf_clear(&p->scratch);
        rc = mailproto_buf_append(&p->scratch, v, vlen);
        if (rc == MAILPROTO_ERR_NOMEM)
          return rc;
      }
      decoded = 1;
    }
    if (k->type == MAILPROTO_IMAP_SEARCH_TEXT) {
      /* TEXT: the field as a line of the header. */
      mailproto_mime_matcher_reset(&c->m);
      mailproto_mime_matcher_feed(&c->m, name, nlen);
      mailproto_mime_matcher_feed(&c->m, (const uint8_t *)": ", 2);
      p->hit[i] = (uint8_t)mailproto_mime_matcher_feed(&c->m, p->scratch.data,
                                                       p->scratch.len);
      mailproto_mime_matcher_reset(&c->m);
    } else {
      p->hit[i] = (uint8_t)match_value(c, p->scratch.data, p->scratch.len);
    }
  }
  return 0;
}

/* "Name: value" in p->hdr.field: splits, trims, and hands it on. Lines
 * without a colon name no field (RFC 5322 2.2) and are skipped. */
static int flush_field(imap_search_prog *p) {
  mailproto_buf *b = &p->hdr.field;
  if (b->len == 0)
    return 0;
  const uint8_t *d = b->data;
  const uint8_t *colon = memchr(d, ':', b->len);
  int rc = 0;
  if (colon) {
    size_t nlen = (size_t)(colon - d);
    while (nlen && (d[nlen - 1] == ' ' || d[nlen - 1] == '\t'))
      nlen--;
    const uint8_t *v = colon + 1, *end = d + b->len;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    rc = on_field(p, d, nlen, v, (size_t)(end - v));
  }
  mailproto_buf_clear(b);
  return rc;
}

/* Appends to the field, dropping what does not fit the cap. */
static int field_add(imap_search_prog *p, const uint8_t *d, size_t n) {
  mailproto_buf *b = &p->hdr.field;
  size_t room = mailproto_buf_room(b);
  if (n > room)
    n = room;
  int rc = n ? mailproto_buf_append(b, d, n) : 0;
  return rc == MAILPROTO_ERR_NOMEM ? rc : 0;
}

long mailproto_imap_search_header(imap_search_prog *p, const uint8_t *data,
                                  size_t len) {
  imap_hdr *h = &p->hdr;
  size_t i = 0;
  int rc = 0;
  while (rc == 0 && i < len && !h->done) {
    if (h->line_start) {
      uint8_t c = data[i];
      if (c == '\r') { /* its LF (or nothing) follows */
        i++;
        continue;
      }
      if (c == '\n') { /* the blank line: the header is over */
        i++;
        h->done = 1;
        rc = flush_field(p);
        break;
      }
      h->line_start = 0;
      /* A line not beginning with white space starts a new field
       * (RFC 5322 2.2.3: folded lines begin with WSP). */
      if (c != ' ' && c != '\t')
        rc = flush_field(p);
      continue;
    }
    const uint8_t *lf = memchr(data + i, '\n', len - i);
    size_t end = lf ? (size_t)(lf - data) : len;
    size_t run = end - i;
    /* Unfolding removes the CR and LF (RFC 5322 2.2.3). */
    if (lf && run && data[end - 1] == '\r')
      run--;
    rc = field_add(p, data + i, run);
    i = lf ? end + 1 : len;
    if (lf)
      h->line_start = 1;
  }
  if (rc != 0)
    return rc;
  return (long)i;
}

int mailproto_imap_search_header_end(imap_search_prog *p) {
  if (p->hdr.done)
    return 0;
  p->hdr.done = 1;
  return flush_field(p);
}

/* ------------------------------------------------------------------ */
/* Text                                                                */
/* ------------------------------------------------------------------ */

int mailproto_imap_search_text(void *prog, const uint8_t *data, size_t len) {
  imap_search_prog *p = prog;
  for (unsigned i = 0; i < p->nck; i++) {
    mailproto_imap_search_type t = p->ck[i].key->type;
    if ((t == MAILPROTO_IMAP_SEARCH_BODY || t == MAILPROTO_IMAP_SEARCH_TEXT) &&
        !p->hit[i])
      p->hit[i] = (uint8_t)mailproto_mime_matcher_feed(&p->ck[i].m, data, len);
  }
  return 0;
}

void mailproto_imap_search_text_end(imap_search_prog *p) {
  for (unsigned i = 0; i < p->nck; i++)
    mailproto_mime_matcher_reset(&p->ck[i].m);
}
