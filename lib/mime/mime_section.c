/*
 * BODY[section] and BINARY[section]: which stored bytes a section names
 * (RFC 3501 6.4.5, RFC 9051 6.4.5.1, RFC 3516 4.1), the HEADER.FIELDS
 * filter, and the pipeline that turns stored bytes into the data sent:
 *
 *   BODY:   [header filter] -> CRLF -> partial window -> out
 *   BINARY: decoder -> [CRLF for text] -> partial window -> out
 *
 * The partial window applies to what the client sees (RFC 3501 6.4.5:
 * "the partial is calculated after subsetting the header"; RFC 3516: on
 * the decoded data).
 */
#include <string.h>

#include "mime/mime_header.h"
#include "mime/mime_imap.h"

static void set_range(mailproto_mime_range *r, uint64_t off, uint64_t size,
                      uint64_t vsize) {
  r->offset = off;
  r->size = size;
  r->vsize = vsize;
}

static void set_header(mailproto_mime_range *r, const mailproto_mime_part *p) {
  set_range(r, p->header_offset, p->header_size, p->header_vsize);
}

static void set_body(mailproto_mime_range *r, const mailproto_mime_part *p) {
  set_range(r, p->body_offset, p->body_size, p->body_vsize);
}

int mailproto_mime_resolve(const mailproto_mime_tree *t,
                           const mailproto_imap_section *section, int binary,
                           mailproto_mime_range *out) {
  memset(out, 0, sizeof *out);
  out->cte = MAILPROTO_MIME_CTE_IDENTITY;
  uint32_t i = 0;
  for (unsigned k = 0; k < section->part_count; k++) {
    const mailproto_mime_part *p = &t->parts[i];
    /* a numbered message/rfc822 part's numbers are those of its
     * encapsulated message (the root's own numbers are the root's) */
    if (k > 0 && (p->flags & MAILPROTO_MIME_PART_MESSAGE) &&
        i + 1 < t->part_count)
      p = &t->parts[++i];
    uint32_t n = section->parts[k];
    if (p->flags & MAILPROTO_MIME_PART_MULTIPART) {
      i = n >= 1 ? mailproto_mime_child(t, i, n - 1) : MAILPROTO_MIME_NONE;
    } else if (n != 1) {
      i = MAILPROTO_MIME_NONE;
    }
    if (i == MAILPROTO_MIME_NONE) {
      out->empty = 1;
      return 0;
    }
  }
  out->part = i;
  const mailproto_mime_part *p = &t->parts[i];
  /* the message whose header HEADER/TEXT name */
  const mailproto_mime_part *msg = NULL;
  if (section->part_count == 0)
    msg = &t->parts[0];
  else if ((p->flags & MAILPROTO_MIME_PART_MESSAGE) && i + 1 < t->part_count)
    msg = &t->parts[i + 1];
  switch (section->text) {
  case MAILPROTO_IMAP_SECTION_ALL:
    if (section->part_count == 0) {
      set_range(out, 0, t->size, t->vsize);
    } else {
      set_body(out, p);
      /* RFC 3516 4.1: only leaf parts are decoded (not multipart, not
       * message/rfc822 or message/global, parsed or not) */
      if (binary && !(p->flags & (MAILPROTO_MIME_PART_MULTIPART |
                                  MAILPROTO_MIME_PART_MESSAGE_TYPE))) {
        mailproto_mime_ref r =
            p->fields[MAILPROTO_MIME_CONTENT_TRANSFER_ENCODING];
        out->cte = mailproto_mime_cte_of(mailproto_mime_ref_data(t, r), r.len);
        if (out->cte == MAILPROTO_MIME_CTE_UNKNOWN)
          return MAILPROTO_ERR_UNSUPPORTED;
        out->text = (p->flags & MAILPROTO_MIME_PART_TEXT) != 0;
      }
    }
    break;
  case MAILPROTO_IMAP_SECTION_MIME:
    set_header(out, p);
    break;
  case MAILPROTO_IMAP_SECTION_HEADER_FIELDS:
  case MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT:
  case MAILPROTO_IMAP_SECTION_HEADER:
    if (section->text != MAILPROTO_IMAP_SECTION_HEADER) {
      out->filter =
          section->text == MAILPROTO_IMAP_SECTION_HEADER_FIELDS ? 1 : 2;
      out->fields = section->fields;
      out->field_count = section->field_count;
    }
    if (msg)
      set_header(out, msg);
    else
      out->empty = 1;
    break;
  case MAILPROTO_IMAP_SECTION_TEXT:
    if (msg)
      set_body(out, msg);
    else
      out->empty = 1;
    break;
  }
  if (out->empty)
    out->filter = 0;
  return 0;
}

static int transformed(const mailproto_mime_range *r) {
  return r->filter != 0 || r->cte != MAILPROTO_MIME_CTE_IDENTITY;
}

static uint64_t window_size(uint64_t total, int has_partial, uint64_t off,
                            uint64_t len) {
  if (!has_partial)
    return total;
  if (off >= total)
    return 0;
  return total - off < len ? total - off : len;
}

int mailproto_mime_range_size(const mailproto_mime_range *r, int has_partial,
                              uint64_t partial_offset, uint64_t partial_length,
                              uint64_t *size) {
  if (r->empty) {
    *size = 0;
    return 1;
  }
  if (transformed(r))
    return 0;
  *size = window_size(r->vsize, has_partial, partial_offset, partial_length);
  return 1;
}

void mailproto_mime_range_read(const mailproto_mime_range *r, int has_partial,
                               uint64_t partial_offset, uint64_t partial_length,
                               uint64_t *offset, uint64_t *len) {
  if (r->empty) {
    *offset = r->offset;
    *len = 0;
    return;
  }
  if (has_partial && !transformed(r) && r->vsize == r->size) {
    /* virtual and stored bytes coincide: read just the window */
    uint64_t n = window_size(r->size, 1, partial_offset, partial_length);
    *offset = r->offset + (n ? partial_offset : 0);
    *len = n;
    return;
  }
  *offset = r->offset;
  *len = r->size;
}

/* ------------------------------------------------------------------ */
/* HEADER.FIELDS                                                       */
/* ------------------------------------------------------------------ */

enum { F_HEAD = 0, F_COPY, F_DROP };

void mailproto_mime_hfilter_init(mailproto_mime_hfilter *f,
                                 const mailproto_imap_str *fields,
                                 unsigned count, int negate,
                                 mailproto_mime_out_fn out, void *arg) {
  memset(f, 0, sizeof *f);
  f->fields = fields;
  f->field_count = count;
  f->negate = negate;
  f->out = out;
  f->arg = arg;
}

static int name_listed(const mailproto_mime_hfilter *f, const uint8_t *name,
                       size_t len) {
  /* The requested names are NUL-terminated and hold no NUL (the parser
   * refuses one). */
  for (unsigned i = 0; i < f->field_count; i++)
    if (mailproto_mime_span_is(name, len, f->fields[i].data))
      return 1;
  return 0;
}

/* The head of a line is complete (colon, line end, or full): decide. */
static int decide(mailproto_mime_hfilter *f, int line_done) {
  const uint8_t *h = f->head;
  size_t n = f->head_len;
  int keep;
  if (h[0] == ' ' || h[0] == '\t') {
    keep = f->keep; /* a continuation line follows its field */
  } else {
    const uint8_t *colon = memchr(h, ':', n);
    if (colon) {
      size_t len = (size_t)(colon - h);
      while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
        len--;
      keep = name_listed(f, h, len) != f->negate;
    } else if (line_done) {
      size_t content = n;
      if (content > 0 && h[content - 1] == '\n')
        content--;
      if (content > 0 && h[content - 1] == '\r')
        content--;
      /* the blank line stays; a line without a field name matches no
       * name, so only .NOT keeps it */
      keep = content == 0 || f->negate;
    } else {
      keep = f->negate; /* a name too long to be in the list */
    }
    f->keep = keep;
  }
  f->state = line_done ? F_HEAD : keep ? F_COPY : F_DROP;
  size_t len = f->head_len;
  f->head_len = 0;
  return keep ? f->out(f->arg, h, len) : 0;
}

int mailproto_mime_hfilter_feed(void *filter, const uint8_t *in, size_t len) {
  mailproto_mime_hfilter *f = filter;
  size_t i = 0;
  while (i < len) {
    if (f->state == F_HEAD) {
      /* gather the head until a colon, the line end or the cap */
      size_t room = sizeof f->head - f->head_len;
      size_t n = len - i < room ? len - i : room;
      size_t k = 0;
      int colon = 0, lf = 0;
      while (k < n) {
        uint8_t c = in[i + k++];
        if (c == '\n') {
          lf = 1;
          break;
        }
        if (c == ':' && f->head_len + k > 1) {
          colon = 1;
          break;
        }
      }
      memcpy(f->head + f->head_len, in + i, k);
      f->head_len += k;
      i += k;
      if (lf || colon || f->head_len == sizeof f->head) {
        int rc = decide(f, lf);
        if (rc)
          return rc;
      }
      continue;
    }
    const uint8_t *nl = memchr(in + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (in + i)) + 1 : len - i;
    if (f->state == F_COPY) {
      int rc = f->out(f->arg, in + i, n);
      if (rc)
        return rc;
    }
    i += n;
    if (nl)
      f->state = F_HEAD;
  }
  return 0;
}

int mailproto_mime_hfilter_finish(mailproto_mime_hfilter *f) {
  if (f->state == F_HEAD && f->head_len > 0)
    return decide(f, 1);
  return 0;
}

/* ------------------------------------------------------------------ */
/* The pipeline                                                        */
/* ------------------------------------------------------------------ */

int mailproto_mime_out_stat(void *arg, const uint8_t *data, size_t len) {
  mailproto_mime_stat *s = arg;
  s->size += len;
  if (!s->has_nul && len > 0 && memchr(data, 0, len))
    s->has_nul = 1;
  return 0;
}

static int to_crlf(void *arg, const uint8_t *data, size_t len) {
  return mailproto_mime_crlf_feed(arg, data, len);
}

static int to_decoder(void *arg, const uint8_t *data, size_t len) {
  return mailproto_mime_decoder_feed(arg, data, len);
}

void mailproto_mime_stream_init(mailproto_mime_stream *s,
                                const mailproto_mime_range *r, int has_partial,
                                uint64_t partial_offset,
                                uint64_t partial_length,
                                mailproto_mime_out_fn out, void *arg) {
  memset(s, 0, sizeof *s);
  s->range = *r;
  uint64_t roff, rlen;
  mailproto_mime_range_read(r, has_partial, partial_offset, partial_length,
                            &roff, &rlen);
  s->left = rlen;
  int direct = roff != r->offset || rlen != r->size;
  /* the last stage: the window (the whole output without a partial, or
   * already applied by reading only the window's bytes) */
  if (has_partial && !direct)
    mailproto_mime_window_init(&s->window, partial_offset, partial_length, out,
                               arg);
  else
    mailproto_mime_window_init(&s->window, 0, UINT64_MAX, out, arg);
  mailproto_mime_out_fn next = mailproto_mime_window_feed;
  void *next_arg = &s->window;
  if (r->cte != MAILPROTO_MIME_CTE_IDENTITY) {
    if (r->text) {
      mailproto_mime_crlf_init(&s->crlf2, next, next_arg);
      next = to_crlf;
      next_arg = &s->crlf2;
    }
    mailproto_mime_decoder_init(&s->decoder, r->cte, next, next_arg);
    s->first = to_decoder;
    s->first_arg = &s->decoder;
    return;
  }
  /* CRLF-free data read from inside the range (the window's bytes only)
   * needs no line end fixing, and must not get it: its first byte may be
   * the LF of a CRLF whose CR was not read. */
  if (!(direct && r->vsize == r->size)) {
    mailproto_mime_crlf_init(&s->crlf, next, next_arg);
    next = to_crlf;
    next_arg = &s->crlf;
  }
  if (r->filter) {
    mailproto_mime_hfilter_init(&s->filter, r->fields, r->field_count,
                                r->filter == 2, next, next_arg);
    next = mailproto_mime_hfilter_feed;
    next_arg = &s->filter;
  }
  s->first = next;
  s->first_arg = next_arg;
}

int mailproto_mime_stream_feed(mailproto_mime_stream *s, const uint8_t *in,
                               size_t len) {
  if (len > s->left)
    len = (size_t)s->left;
  if (len == 0)
    return 0;
  s->left -= len;
  return s->first(s->first_arg, in, len);
}

int mailproto_mime_stream_finish(mailproto_mime_stream *s) {
  /* each stage flushes into the next, so in pipeline order; an unused
   * CRLF stage was zeroed by init and holds nothing */
  int rc;
  if (s->range.cte != MAILPROTO_MIME_CTE_IDENTITY) {
    rc = mailproto_mime_decoder_finish(&s->decoder);
    return rc ? rc : mailproto_mime_crlf_finish(&s->crlf2);
  }
  rc = s->range.filter ? mailproto_mime_hfilter_finish(&s->filter) : 0;
  return rc ? rc : mailproto_mime_crlf_finish(&s->crlf);
}
