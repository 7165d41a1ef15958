/*
 * Streaming transfer decoders (RFC 2045 6.7, 6.8), the CRLF normaliser
 * and the partial-fetch window. Output is gathered in a small local array
 * and handed on in batches, so a caller's output function runs once per
 * few hundred bytes, not per byte.
 */
#include <string.h>

#include "mime/mime_codec.h"
#include "mime/mime_header.h"

int mailproto_mime_out_buf(void *arg, const uint8_t *data, size_t len) {
  return mailproto_buf_append(arg, data, len);
}

int mailproto_mime_out_count(void *arg, const uint8_t *data, size_t len) {
  (void)data;
  *(uint64_t *)arg += len;
  return 0;
}

mailproto_mime_cte mailproto_mime_cte_of(const uint8_t *v, size_t len) {
  mailproto_mime_span tok;
  if (!v || !mailproto_mime_token_parse(v, len, &tok, NULL))
    return MAILPROTO_MIME_CTE_IDENTITY;
  if (mailproto_mime_span_is(tok.data, tok.len, "7bit") ||
      mailproto_mime_span_is(tok.data, tok.len, "8bit") ||
      mailproto_mime_span_is(tok.data, tok.len, "binary"))
    return MAILPROTO_MIME_CTE_IDENTITY;
  if (mailproto_mime_span_is(tok.data, tok.len, "base64"))
    return MAILPROTO_MIME_CTE_BASE64;
  if (mailproto_mime_span_is(tok.data, tok.len, "quoted-printable"))
    return MAILPROTO_MIME_CTE_QP;
  return MAILPROTO_MIME_CTE_UNKNOWN;
}

/* Output gathering: a batch array flushed when full and at the end. */
typedef struct batch {
  mailproto_mime_out_fn out;
  void *arg;
  size_t n;
  int rc;
  uint8_t b[512];
} batch;

static void emit(batch *o, uint8_t c) {
  if (o->n == sizeof o->b) {
    if (o->rc == 0)
      o->rc = o->out(o->arg, o->b, o->n);
    o->n = 0;
  }
  o->b[o->n++] = c;
}

static int flush(batch *o) {
  if (o->n > 0 && o->rc == 0)
    o->rc = o->out(o->arg, o->b, o->n);
  o->n = 0;
  return o->rc;
}

/* base64 alphabet values (RFC 2045 6.8 table 1); 0xff: not in it */
static const uint8_t b64_table[256] = {
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3e, 0xff, 0xff, 0xff, 0x3f,
    0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06,
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12,
    0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24,
    0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30,
    0x31, 0x32, 0x33, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff,
};

static int hex_value(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (uint8_t)(c | 0x20);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

void mailproto_mime_decoder_init(mailproto_mime_decoder *d,
                                 mailproto_mime_cte cte,
                                 mailproto_mime_out_fn out, void *arg) {
  memset(d, 0, sizeof *d);
  d->cte = cte;
  d->out = out;
  d->arg = arg;
}

/* A base64 group cut short by "=" or the end: its whole bytes. */
static void b64_partial(mailproto_mime_decoder *d, batch *o) {
  if (d->count == 2) {
    emit(o, (uint8_t)(d->acc >> 4));
  } else if (d->count == 3) {
    emit(o, (uint8_t)(d->acc >> 10));
    emit(o, (uint8_t)(d->acc >> 2));
  }
  d->count = 0;
  d->acc = 0;
}

static void b64_feed(mailproto_mime_decoder *d, batch *o, const uint8_t *in,
                     size_t len) {
  const uint8_t *v = b64_table;
  size_t i = 0;
  while (i < len) {
    /* whole groups of four alphabet characters go straight out */
    if (d->count == 0) {
      while (i + 4 <= len && o->rc == 0) {
        uint8_t a = v[in[i]], b = v[in[i + 1]], c = v[in[i + 2]],
                e = v[in[i + 3]];
        if ((a | b | c | e) & 0x80)
          break;
        if (o->n + 3 > sizeof o->b) {
          o->rc = o->out(o->arg, o->b, o->n);
          o->n = 0;
        }
        uint32_t g =
            (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | e;
        o->b[o->n++] = (uint8_t)(g >> 16);
        o->b[o->n++] = (uint8_t)(g >> 8);
        o->b[o->n++] = (uint8_t)g;
        i += 4;
      }
      if (i >= len)
        break;
    }
    uint8_t x = v[in[i]];
    if (x & 0x80) {
      if (in[i] == '=')
        b64_partial(d, o);
    } else {
      d->acc = (d->acc << 6) | x;
      if (++d->count == 4) {
        emit(o, (uint8_t)(d->acc >> 16));
        emit(o, (uint8_t)(d->acc >> 8));
        emit(o, (uint8_t)d->acc);
        d->count = 0;
        d->acc = 0;
      }
    }
    i++;
  }
}

/* quoted-printable states */
enum {
  QP_TEXT = 0,
  QP_CR,    /* a CR: a line break if LF follows */
  QP_EQ,    /* "=" */
  QP_EQ1,   /* "=X" */
  QP_EQ_WS, /* "=" and white space (in ws[]) */
  QP_EQ_CR  /* "=" [white space] CR */
};

static void ws_flush(mailproto_mime_decoder *d, batch *o) {
  for (size_t i = 0; i < d->ws_len; i++)
    emit(o, d->ws[i]);
  d->ws_len = 0;
}

static void ws_add(mailproto_mime_decoder *d, batch *o, uint8_t c) {
  if (d->ws_len == sizeof d->ws)
    ws_flush(d, o);
  d->ws[d->ws_len++] = c;
}

static void qp_byte(mailproto_mime_decoder *d, batch *o, uint8_t c) {
  for (;;) {
    switch (d->state) {
    case QP_TEXT:
      if (c == '=') {
        ws_flush(d, o); /* white space before "=" is content */
        d->state = QP_EQ;
      } else if (c == ' ' || c == '\t') {
        ws_add(d, o, c);
      } else if (c == '\r') {
        d->state = QP_CR;
      } else if (c == '\n') {
        d->ws_len = 0; /* rule 3: trailing white space goes */
        emit(o, '\r');
        emit(o, '\n');
      } else {
        ws_flush(d, o);
        emit(o, c);
      }
      return;
    case QP_CR:
      d->state = QP_TEXT;
      if (c == '\n') {
        d->ws_len = 0;
        emit(o, '\r');
        emit(o, '\n');
        return;
      }
      ws_flush(d, o);
      emit(o, '\r'); /* a lone CR is data */
      continue;
    case QP_EQ:
      if (hex_value(c) >= 0) {
        d->hex = c;
        d->state = QP_EQ1;
        return;
      }
      if (c == '\n') {
        d->state = QP_TEXT; /* soft line break */
        return;
      }
      if (c == '\r') {
        d->state = QP_EQ_CR;
        return;
      }
      if (c == ' ' || c == '\t') {
        ws_add(d, o, c);
        d->state = QP_EQ_WS;
        return;
      }
      emit(o, '=');
      d->state = QP_TEXT;
      continue;
    case QP_EQ1:
      d->state = QP_TEXT;
      if (hex_value(c) >= 0) {
        emit(o, (uint8_t)(hex_value(d->hex) << 4 | hex_value(c)));
        return;
      }
      emit(o, '=');
      emit(o, d->hex);
      continue;
    case QP_EQ_WS:
      if (c == ' ' || c == '\t') {
        ws_add(d, o, c);
        return;
      }
      if (c == '\n' || c == '\r') {
        d->ws_len = 0;
        d->state = c == '\n' ? QP_TEXT : QP_EQ_CR;
        return;
      }
      emit(o, '=');
      ws_flush(d, o);
      d->state = QP_TEXT;
      continue;
    default: /* QP_EQ_CR */
      if (c == '\n') {
        d->state = QP_TEXT;
        return;
      }
      emit(o, '=');
      d->state = QP_CR;
      continue;
    }
  }
}

static void qp_feed(mailproto_mime_decoder *d, batch *o, const uint8_t *in,
                    size_t len) {
  size_t i = 0;
  while (i < len) {
    if (d->state == QP_TEXT && d->ws_len == 0) {
      /* a run of plain bytes goes out in one piece */
      size_t j = i;
      while (j < len && in[j] != '=' && in[j] != ' ' && in[j] != '\t' &&
             in[j] != '\r' && in[j] != '\n')
        j++;
      if (j > i) {
        if (flush(o))
          return;
        if (j - i > sizeof o->b) {
          o->rc = o->out(o->arg, in + i, j - i);
          if (o->rc)
            return;
        } else {
          memcpy(o->b, in + i, j - i);
          o->n = j - i;
        }
        i = j;
        continue;
      }
    }
    qp_byte(d, o, in[i++]);
  }
}

int mailproto_mime_decoder_feed(mailproto_mime_decoder *d, const uint8_t *in,
                                size_t len) {
  if (len == 0)
    return 0;
  if (d->cte == MAILPROTO_MIME_CTE_IDENTITY ||
      d->cte == MAILPROTO_MIME_CTE_UNKNOWN)
    return d->out(d->arg, in, len);
  batch o = {d->out, d->arg, 0, 0, {0}};
  if (d->cte == MAILPROTO_MIME_CTE_BASE64)
    b64_feed(d, &o, in, len);
  else
    qp_feed(d, &o, in, len);
  return flush(&o);
}

int mailproto_mime_decoder_finish(mailproto_mime_decoder *d) {
  batch o = {d->out, d->arg, 0, 0, {0}};
  if (d->cte == MAILPROTO_MIME_CTE_BASE64) {
    b64_partial(d, &o);
  } else if (d->cte == MAILPROTO_MIME_CTE_QP) {
    switch (d->state) {
    case QP_CR:
      ws_flush(d, &o);
      emit(&o, '\r');
      break;
    case QP_EQ:
    case QP_EQ_WS:
    case QP_EQ_CR:
      emit(&o, '=');
      break;
    case QP_EQ1:
      emit(&o, '=');
      emit(&o, d->hex);
      break;
    default:
      break; /* white space at the very end is trailing: dropped */
    }
    d->state = QP_TEXT;
    d->ws_len = 0;
  }
  return flush(&o);
}

/* ------------------------------------------------------------------ */
/* CRLF and the window                                                 */
/* ------------------------------------------------------------------ */

void mailproto_mime_crlf_init(mailproto_mime_crlf *c, mailproto_mime_out_fn out,
                              void *arg) {
  c->out = out;
  c->arg = arg;
  c->prev_cr = 0;
}

/* Passes runs of bytes through and ends every line with CRLF: a bare LF
 * and a bare CR each become CRLF (the store's rule, store_util.h). A CR
 * at the end of the input waits for the next byte (or finish). */
int mailproto_mime_crlf_feed(mailproto_mime_crlf *c, const uint8_t *in,
                             size_t len) {
  static const uint8_t crlf[2] = {'\r', '\n'};
  size_t i = 0, start = 0;
  int rc;
  if (c->prev_cr && len > 0) {
    c->prev_cr = 0;
    if ((rc = c->out(c->arg, crlf, 2)) != 0)
      return rc;
    if (in[0] == '\n')
      i = start = 1;
  }
  while (i < len) {
    const uint8_t *lf = memchr(in + i, '\n', len - i);
    size_t j = lf ? (size_t)(lf - in) : len;
    /* bare CRs in [i, j): all but one right before the LF */
    size_t k = i;
    const uint8_t *cr;
    while (k < j && (cr = memchr(in + k, '\r', j - k)) != NULL) {
      size_t at = (size_t)(cr - in);
      if (lf && at == j - 1)
        break;
      if (at > start && (rc = c->out(c->arg, in + start, at - start)) != 0)
        return rc;
      start = at + 1;
      if (at + 1 == len) {
        c->prev_cr = 1; /* bare, or half of a CRLF split here */
        return 0;
      }
      if ((rc = c->out(c->arg, crlf, 2)) != 0)
        return rc;
      k = at + 1;
    }
    if (!lf)
      break;
    /* in[j - 1] is not a bare CR here: those were handled above */
    if (j == i || in[j - 1] != '\r') {
      if (j > start && (rc = c->out(c->arg, in + start, j - start)) != 0)
        return rc;
      if ((rc = c->out(c->arg, crlf, 2)) != 0)
        return rc;
      start = j + 1;
    }
    i = j + 1;
  }
  if (len > start)
    return c->out(c->arg, in + start, len - start);
  return 0;
}

int mailproto_mime_crlf_finish(mailproto_mime_crlf *c) {
  static const uint8_t crlf[2] = {'\r', '\n'};
  if (!c->prev_cr)
    return 0;
  c->prev_cr = 0;
  return c->out(c->arg, crlf, 2);
}

void mailproto_mime_window_init(mailproto_mime_window *w, uint64_t offset,
                                uint64_t length, mailproto_mime_out_fn out,
                                void *arg) {
  w->out = out;
  w->arg = arg;
  w->skip = offset;
  w->left = length;
  w->total = 0;
}

int mailproto_mime_window_feed(void *window, const uint8_t *in, size_t len) {
  mailproto_mime_window *w = window;
  w->total += len;
  if (w->skip >= len) {
    w->skip -= len;
    return 0;
  }
  in += w->skip;
  len -= (size_t)w->skip;
  w->skip = 0;
  if (len > w->left)
    len = (size_t)w->left;
  if (len == 0)
    return 0;
  w->left -= len;
  return w->out(w->arg, in, len);
}
