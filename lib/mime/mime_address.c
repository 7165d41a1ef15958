/*
 * Address lists (RFC 5322 3.4, obsolete forms of 4.4) read the tolerant
 * way ENVELOPE needs (see mailproto_mime_addr_next). A small lexer turns
 * the value into words, dots, domain literals and specials, skipping
 * white space and comments (remembering the last comment, which names a
 * mailbox written "addr (Name)"); each address is then read in one pass.
 */
#include <string.h>

#include "mime/mime_header.h"
#include "mailproto/mailproto.h"

enum { T_END = 0, T_ATOM, T_QUOTED, T_DOT, T_DLIT, T_SPECIAL };

typedef struct tok {
  int type;
  uint8_t c;     /* T_SPECIAL: which */
  size_t start;  /* T_QUOTED: after the quote */
  size_t len;    /* T_QUOTED: content, escapes still in */
  int space;     /* white space or a comment came before it */
  size_t cstart; /* the last comment before it: its content */
  size_t clen;
  int has_comment;
} tok;

static int is_special(uint8_t c) {
  return c == '<' || c == '>' || c == ':' || c == ';' || c == '@' || c == ',' ||
         c == '"' || c == '.' || c == '[' || c == '(';
}

/* Reads the token at *pos and moves *pos past it. */
static tok lex(const mailproto_mime_addr_iter *it, size_t *pos) {
  const uint8_t *s = it->data;
  size_t len = it->len, p = *pos;
  tok t;
  memset(&t, 0, sizeof t);
  for (;;) {
    while (p < len &&
           (s[p] == ' ' || s[p] == '\t' || s[p] == '\r' || s[p] == '\n')) {
      p++;
      t.space = 1;
    }
    if (p >= len || s[p] != '(')
      break;
    size_t depth = 0, start = p + 1;
    while (p < len) {
      uint8_t c = s[p++];
      if (c == '\\') {
        if (p < len)
          p++;
      } else if (c == '(') {
        depth++;
      } else if (c == ')' && --depth == 0) {
        break;
      }
    }
    t.space = 1;
    t.has_comment = 1;
    t.cstart = start;
    t.clen = (depth == 0 ? p - 1 : p) - start;
  }
  if (p >= len) {
    t.type = T_END;
  } else if (s[p] == '"') {
    size_t q = ++p;
    while (q < len && s[q] != '"') {
      if (s[q] == '\\' && q + 1 < len)
        q++;
      q++;
    }
    t.type = T_QUOTED;
    t.start = p;
    t.len = (q < len ? q : len) - p;
    p = q < len ? q + 1 : len;
  } else if (s[p] == '[') {
    size_t q = p;
    while (q < len && s[q] != ']')
      q++;
    t.type = T_DLIT;
    t.start = p;
    p = q < len ? q + 1 : len;
    t.len = p - t.start;
  } else if (s[p] == '.') {
    t.type = T_DOT;
    t.start = p++;
    t.len = 1;
  } else if (is_special(s[p])) {
    t.type = T_SPECIAL;
    t.c = s[p];
    t.start = p++;
    t.len = 1;
  } else {
    size_t q = p;
    while (q < len && !is_special(s[q]) && s[q] != ' ' && s[q] != '\t' &&
           s[q] != '\r' && s[q] != '\n')
      q++;
    t.type = T_ATOM;
    t.start = p;
    t.len = q - p;
    p = q;
  }
  *pos = p;
  return t;
}

static int is_word(const tok *t) {
  return t->type == T_ATOM || t->type == T_QUOTED || t->type == T_DOT;
}

/* A text being built in the scratch buffer: offsets, since appending may
 * move the buffer. */
typedef struct piece {
  size_t off, len;
  int set;
} piece;

static int put_tok(mailproto_mime_addr_iter *it, const tok *t) {
  mailproto_mime_span v = {it->data + t->start, t->len};
  return mailproto_mime_unquote(&v, t->type == T_QUOTED, it->scratch);
}

void mailproto_mime_addr_init(mailproto_mime_addr_iter *it, const uint8_t *v,
                              size_t len, mailproto_buf *scratch) {
  it->data = v;
  it->len = v ? len : 0;
  it->pos = 0;
  it->in_group = 0;
  it->scratch = scratch;
}

/* Skips the rest of a malformed address: to the next "," (or ";" that
 * ends the group) at the top level. */
static void skip_junk(mailproto_mime_addr_iter *it) {
  for (;;) {
    size_t p = it->pos;
    tok t = lex(it, &p);
    if (t.type == T_END ||
        (t.type == T_SPECIAL && (t.c == ',' || (t.c == ';' && it->in_group))))
      return;
    it->pos = p;
  }
}

/* Reads "domain" tokens (atoms, dots, literals) into the scratch. */
static int read_domain(mailproto_mime_addr_iter *it, piece *out) {
  out->off = it->scratch->len;
  out->set = 1;
  for (;;) {
    size_t p = it->pos;
    tok t = lex(it, &p);
    if (t.type != T_ATOM && t.type != T_DOT && t.type != T_DLIT)
      break;
    int rc = mailproto_buf_append(it->scratch, it->data + t.start, t.len);
    if (rc)
      return rc;
    it->pos = p;
  }
  out->len = it->scratch->len - out->off;
  return 0;
}

/* Reads a local part: words joined without the white space between them
 * (obs-local-part allows it around dots). */
static int read_local(mailproto_mime_addr_iter *it, piece *out) {
  out->off = it->scratch->len;
  out->set = 1;
  for (;;) {
    size_t p = it->pos;
    tok t = lex(it, &p);
    if (!is_word(&t))
      break;
    int rc = put_tok(it, &t);
    if (rc)
      return rc;
    it->pos = p;
  }
  out->len = it->scratch->len - out->off;
  return 0;
}

/* "<[route:]local@domain>" from just after "<". */
static int read_angle(mailproto_mime_addr_iter *it, piece *route, piece *local,
                      piece *domain) {
  size_t p = it->pos;
  tok t = lex(it, &p);
  int rc;
  if (t.type == T_SPECIAL && t.c == '@') {
    /* obs-route: "@a,@b:" */
    route->off = it->scratch->len;
    route->set = 1;
    for (;;) {
      p = it->pos;
      t = lex(it, &p);
      if (t.type == T_SPECIAL && (t.c == '@' || t.c == ',')) {
        rc = mailproto_buf_append_byte(it->scratch, t.c);
        if (rc)
          return rc;
        it->pos = p;
      } else if (t.type == T_ATOM || t.type == T_DOT || t.type == T_DLIT) {
        rc = mailproto_buf_append(it->scratch, it->data + t.start, t.len);
        if (rc)
          return rc;
        it->pos = p;
      } else {
        break;
      }
    }
    route->len = it->scratch->len - route->off;
    if (t.type == T_SPECIAL && t.c == ':')
      it->pos = p;
  }
  if ((rc = read_local(it, local)) != 0)
    return rc;
  p = it->pos;
  t = lex(it, &p);
  if (t.type == T_SPECIAL && t.c == '@') {
    it->pos = p;
    if ((rc = read_domain(it, domain)) != 0)
      return rc;
  }
  p = it->pos;
  t = lex(it, &p);
  if (t.type == T_SPECIAL && t.c == '>')
    it->pos = p;
  return 0;
}

static void set_span(const mailproto_mime_addr_iter *it, const piece *pc,
                     mailproto_mime_span *out) {
  if (pc->set && pc->len > 0) {
    out->data = it->scratch->data + pc->off;
    out->len = pc->len;
  } else {
    out->data = NULL;
    out->len = 0;
  }
}

int mailproto_mime_addr_next(mailproto_mime_addr_iter *it,
                             mailproto_mime_address *out) {
  memset(out, 0, sizeof *out);
  for (;;) {
    mailproto_buf_clear(it->scratch);
    size_t p = it->pos;
    tok t = lex(it, &p);
    if (t.type == T_END) {
      it->pos = it->len;
      if (it->in_group) { /* close a group left open */
        it->in_group = 0;
        out->kind = MAILPROTO_MIME_ADDR_GROUP_END;
        return 1;
      }
      return 0;
    }
    if (t.type == T_SPECIAL && t.c == ',') {
      it->pos = p; /* an empty member (RFC 5322 4.4) */
      continue;
    }
    if (t.type == T_SPECIAL && t.c == ';' && it->in_group) {
      it->pos = p;
      it->in_group = 0;
      out->kind = MAILPROTO_MIME_ADDR_GROUP_END;
      return 1;
    }
    /* the phrase, or the local part of an addr-spec */
    piece phrase = {it->scratch->len, 0, 1};
    size_t words_start = it->pos;
    int words = 0, rc;
    for (;;) {
      p = it->pos;
      t = lex(it, &p);
      if (!is_word(&t))
        break;
      if (it->scratch->len > phrase.off && t.space && t.type != T_DOT &&
          (rc = mailproto_buf_append_byte(it->scratch, ' ')) != 0)
        return rc;
      if ((rc = put_tok(it, &t)) != 0)
        return rc;
      words++;
      it->pos = p;
    }
    phrase.len = it->scratch->len - phrase.off;
    while (phrase.len > 0 &&
           it->scratch->data[phrase.off + phrase.len - 1] == ' ')
      phrase.len--; /* after an empty quoted word */
    piece route = {0, 0, 0}, local = {0, 0, 0}, domain = {0, 0, 0};
    piece name = phrase;
    size_t after = p; /* just past the token that ended the words */
    if (t.type == T_SPECIAL && t.c == '<') {
      it->pos = after;
      if ((rc = read_angle(it, &route, &local, &domain)) != 0)
        return rc;
    } else if (t.type == T_SPECIAL && t.c == ':' && !it->in_group) {
      it->pos = after;
      it->in_group = 1;
      out->kind = MAILPROTO_MIME_ADDR_GROUP_START;
      set_span(it, &phrase, &out->name);
      if (!out->name.data) { /* ":;" : an empty group name is "" */
        out->name.data =
            it->scratch->data ? it->scratch->data : (const uint8_t *)"";
        out->name.len = 0;
      }
      return 1;
    } else if (words == 0 && !(t.type == T_SPECIAL && t.c == '@')) {
      it->pos = after; /* a stray special: skip it alone */
      continue;
    } else {
      /* an addr-spec: read it again as a local part, then "@domain" */
      name.set = 0;
      it->pos = words_start;
      if ((rc = read_local(it, &local)) != 0)
        return rc;
      p = it->pos;
      t = lex(it, &p);
      if (t.type == T_SPECIAL && t.c == '@') {
        it->pos = p;
        if ((rc = read_domain(it, &domain)) != 0)
          return rc;
      }
      /* "addr (Name)": the comment after it names it */
      p = it->pos;
      t = lex(it, &p);
      if (t.has_comment) {
        name.off = it->scratch->len;
        rc = mailproto_buf_append(it->scratch, it->data + t.cstart, t.clen);
        if (rc)
          return rc;
        name.len = t.clen;
        name.set = 1;
      }
    }
    skip_junk(it);
    out->kind = MAILPROTO_MIME_ADDR_MAILBOX;
    set_span(it, &name, &out->name);
    set_span(it, &route, &out->route);
    set_span(it, &local, &out->mailbox);
    set_span(it, &domain, &out->host);
    if (!out->mailbox.data) {
      out->mailbox.data = (const uint8_t *)"MISSING_MAILBOX";
      out->mailbox.len = 15;
    }
    if (!out->host.data) {
      out->host.data = (const uint8_t *)"MISSING_DOMAIN";
      out->host.len = 14;
    }
    return 1;
  }
}
