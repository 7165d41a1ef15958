/*
 * RFC 2047 encoded words, decoded to UTF-8 for SEARCH (ENVELOPE sends
 * header text raw, RFC 3501 7.4.2). Tolerant as readers are: words are
 * found anywhere in the text, not only between white space, and a word
 * that does not parse stays text.
 */
#include <string.h>

#include "mime/mime_codec.h"

typedef struct word {
  const uint8_t *charset;
  size_t charset_len;
  int b; /* "B" (base64) rather than "Q" */
  const uint8_t *text;
  size_t text_len;
  size_t end; /* just past "?=" */
} word;

/* Parses "=?charset?X?text?=" at in[k] (which is "=?"). */
static int parse_word(const uint8_t *in, size_t len, size_t k, word *w) {
  size_t p = k + 2, start = p;
  while (p < len && in[p] != '?' && in[p] > ' ' && in[p] < 0x7f)
    p++;
  if (p == start || p + 3 >= len || in[p] != '?')
    return 0;
  w->charset = in + start;
  w->charset_len = p - start;
  uint8_t e = (uint8_t)(in[p + 1] | 0x20);
  if ((e != 'b' && e != 'q') || in[p + 2] != '?')
    return 0;
  w->b = e == 'b';
  p += 3;
  start = p;
  while (p + 1 < len && !(in[p] == '?' && in[p + 1] == '=')) {
    if (in[p] == ' ' || in[p] == '\t' || in[p] == '\r' || in[p] == '\n')
      return 0;
    p++;
  }
  if (p + 1 >= len)
    return 0;
  w->text = in + start;
  w->text_len = p - start;
  w->end = p + 2;
  return 1;
}

static int hexval(uint8_t c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (uint8_t)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Appends a word's decoded bytes to run. */
static int decode_payload(const word *w, mailproto_buf *run) {
  if (w->b) {
    mailproto_mime_decoder d;
    mailproto_mime_decoder_init(&d, MAILPROTO_MIME_CTE_BASE64,
                                mailproto_mime_out_buf, run);
    int rc = mailproto_mime_decoder_feed(&d, w->text, w->text_len);
    return rc ? rc : mailproto_mime_decoder_finish(&d);
  }
  const uint8_t *t = w->text;
  size_t i = 0;
  while (i < w->text_len) {
    uint8_t c = t[i];
    int rc;
    if (c == '_') {
      rc = mailproto_buf_append_byte(run, ' ');
      i++;
    } else if (c == '=' && i + 2 < w->text_len && hexval(t[i + 1]) >= 0 &&
               hexval(t[i + 2]) >= 0) {
      rc = mailproto_buf_append_byte(
          run, (uint8_t)(hexval(t[i + 1]) << 4 | hexval(t[i + 2])));
      i += 3;
    } else {
      rc = mailproto_buf_append_byte(run, c);
      i++;
    }
    if (rc)
      return rc;
  }
  return 0;
}

static int only_space(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return 0;
  return 1;
}

int mailproto_mime_decode_words(const uint8_t *in, size_t len,
                                mailproto_buf *out) {
  size_t mark = out->len;
  mailproto_buf run; /* decoded bytes of adjacent words of one charset */
  mailproto_buf_init(&run, out->alloc, (size_t)-1);
  mailproto_mime_charset run_cs = MAILPROTO_MIME_CHARSET_UNKNOWN;
  const uint8_t *run_name = NULL;
  size_t run_name_len = 0;
  int rc = 0, after_word = 0;
  size_t pos = 0, scan = 0;
  while (rc == 0) {
    const uint8_t *eq = NULL;
    for (size_t k = scan; k + 1 < len; k++)
      if (in[k] == '=' && in[k + 1] == '?') {
        eq = in + k;
        break;
      }
    word w;
    memset(&w, 0, sizeof w);
    size_t k = eq ? (size_t)(eq - in) : len;
    if (eq && !parse_word(in, len, k, &w)) {
      scan = k + 2;
      continue;
    }
    /* the text before the word (or the rest) */
    int drop = eq && after_word && only_space(in + pos, k - pos);
    mailproto_mime_charset cs =
        eq ? mailproto_mime_charset_lookup(w.charset, w.charset_len)
           : MAILPROTO_MIME_CHARSET_UNKNOWN;
    int same = eq && drop && run.len > 0 && cs == run_cs &&
               run_name_len == w.charset_len &&
               (cs != MAILPROTO_MIME_CHARSET_UNKNOWN ||
                memcmp(run_name, w.charset, run_name_len) == 0);
    if (!same && run.len > 0) {
      rc = mailproto_mime_charset_to_utf8(run_cs, run.data, run.len, out);
      mailproto_buf_clear(&run);
    }
    if (rc == 0 && !drop && k > pos)
      rc = mailproto_buf_append(out, in + pos, k - pos);
    if (!eq || rc)
      break;
    run_cs = cs;
    run_name = w.charset;
    run_name_len = w.charset_len;
    rc = decode_payload(&w, &run);
    pos = scan = w.end;
    after_word = 1;
  }
  mailproto_buf_free(&run);
  if (rc != 0)
    out->len = mark;
  return rc;
}
