/*
 * FETCH (RFC 3501 6.4.5, RFC 9051 6.4.5, BINARY RFC 3516, CONDSTORE and
 * QRESYNC modifiers RFC 7162) and STORE (RFC 3501 6.4.6, RFC 7162 3.1.3).
 */
#include <string.h>

#include "imap/imap_parse_internal.h"

/* The name of a fetch item: ATOM-CHARs up to "[" or "<" (both are
 * ATOM-CHARs, but start a section or a partial here). */
static const uint8_t *item_name(mailproto_imap_cursor *c, size_t *n) {
  size_t start = c->pos;
  while (c->pos < c->len && c->s[c->pos] != '[' && c->s[c->pos] != '<' &&
         mailproto_imap_atom_ch(c->s[c->pos]))
    c->pos++;
  *n = c->pos - start;
  return c->s + start;
}

static int bad_section(mailproto_imap_cursor *c) {
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid section");
}

/* A number at the cursor without recording a failure (the caller names
 * the error): 1*DIGIT up to `max`. Returns 0 or -1. */
static int quiet_number(mailproto_imap_cursor *c, uint64_t max, uint64_t *out) {
  size_t start = c->pos;
  uint64_t v = 0;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
    uint64_t d = (uint64_t)(c->s[c->pos] - '0');
    if (v > (max - d) / 10)
      return -1;
    v = v * 10 + d;
    c->pos++;
  }
  if (c->pos == start)
    return -1;
  *out = v;
  return 0;
}

/* header-list = "(" header-fld-name *(SP header-fld-name) ")" */
static int header_list(mailproto_imap_cursor *c, mailproto_imap_section *sec) {
  mailproto_imap_collect names;
  mailproto_imap_collect_init(&names, sizeof(mailproto_imap_str));
  int rc = mailproto_imap_lex_char(c, '(', "Invalid section");
  if (rc != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == ')')
    return bad_section(c);
  for (;;) {
    mailproto_imap_str *name;
    if ((rc = mailproto_imap_collect_add(c, &names, (void **)&name)) != 0 ||
        (rc = mailproto_imap_lex_astring(c, name)) != 0)
      return rc;
    /* A header name is printable ASCII without ":" (RFC 5322 2.2). */
    if (name->len == 0)
      return bad_section(c);
    for (size_t i = 0; i < name->len; i++) {
      unsigned char ch = (unsigned char)name->data[i];
      if (ch <= ' ' || ch >= 0x7f || ch == ':')
        return bad_section(c);
    }
    if (mailproto_imap_lex_peek(c) == ')') {
      c->pos++;
      break;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
  }
  return mailproto_imap_collect_finish(c, &names, (void **)&sec->fields,
                                       &sec->field_count);
}

/* section-part = nz-number *("." nz-number) */
static int section_part(mailproto_imap_cursor *c, mailproto_imap_section *sec) {
  unsigned count = 1;
  for (size_t i = c->pos; i < c->len; i++) {
    uint8_t ch = c->s[i];
    if (ch == '.' && i + 1 < c->len && c->s[i + 1] >= '0' && c->s[i + 1] <= '9')
      count++;
    else if (ch < '0' || ch > '9')
      break;
  }
  void *mem;
  int rc = mailproto_imap_lex_array(c, count, sizeof(uint32_t), &mem);
  if (rc != 0)
    return rc;
  sec->parts = mem;
  for (unsigned i = 0; i < count; i++) {
    uint64_t v;
    if (i > 0)
      c->pos++; /* the "." counted above */
    if (quiet_number(c, UINT32_MAX, &v) != 0 || v == 0)
      return bad_section(c);
    sec->parts[i] = (uint32_t)v;
  }
  sec->part_count = count;
  return 0;
}

/* section = "[" [section-spec] "]"; binary: "[" [section-part] "]". */
static int section(mailproto_imap_cursor *c, mailproto_imap_section *sec,
                   int binary) {
  int rc = mailproto_imap_lex_char(c, '[', "Invalid section");
  if (rc != 0)
    return rc;
  int ch = mailproto_imap_lex_peek(c);
  if (ch >= '0' && ch <= '9') {
    if ((rc = section_part(c, sec)) != 0)
      return rc;
    if (!binary && mailproto_imap_lex_peek(c) == '.')
      c->pos++;
    else
      return mailproto_imap_lex_char(c, ']', "Invalid section");
  } else if (ch == ']' || binary) {
    return mailproto_imap_lex_char(c, ']', "Invalid section");
  }
  size_t start = c->pos;
  while (c->pos < c->len &&
         ((c->s[c->pos] >= 'A' && c->s[c->pos] <= 'Z') ||
          (c->s[c->pos] >= 'a' && c->s[c->pos] <= 'z') || c->s[c->pos] == '.'))
    c->pos++;
  const uint8_t *w = c->s + start;
  size_t n = c->pos - start;
  if (mailproto_imap_lex_is(w, n, "HEADER")) {
    sec->text = MAILPROTO_IMAP_SECTION_HEADER;
  } else if (mailproto_imap_lex_is(w, n, "TEXT")) {
    sec->text = MAILPROTO_IMAP_SECTION_TEXT;
  } else if (mailproto_imap_lex_is(w, n, "MIME") && sec->part_count > 0) {
    sec->text = MAILPROTO_IMAP_SECTION_MIME;
  } else if (mailproto_imap_lex_is(w, n, "HEADER.FIELDS") ||
             mailproto_imap_lex_is(w, n, "HEADER.FIELDS.NOT")) {
    sec->text = n == 13 ? MAILPROTO_IMAP_SECTION_HEADER_FIELDS
                        : MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT;
    if ((rc = mailproto_imap_lex_sp(c)) != 0 || (rc = header_list(c, sec)) != 0)
      return rc;
  } else {
    return bad_section(c);
  }
  return mailproto_imap_lex_char(c, ']', "Invalid section");
}

/* partial = "<" number64 "." nz-number64 ">" (RFC 9051 9) */
static int partial(mailproto_imap_cursor *c, mailproto_imap_fetch_item *it) {
  if (mailproto_imap_lex_peek(c) != '<')
    return 0;
  const uint64_t max = UINT64_C(0x7fffffffffffffff);
  c->pos++;
  if (quiet_number(c, max, &it->partial_offset) != 0 ||
      mailproto_imap_lex_peek(c) != '.')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid fetch item");
  c->pos++;
  if (quiet_number(c, max, &it->partial_length) != 0 ||
      it->partial_length == 0 || mailproto_imap_lex_peek(c) != '>')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid fetch item");
  c->pos++;
  it->has_partial = 1;
  return 0;
}

static const struct {
  const char *name;
  mailproto_imap_fetch_type type;
} simple_items[] = {{"FLAGS", MAILPROTO_IMAP_FETCH_FLAGS},
                    {"UID", MAILPROTO_IMAP_FETCH_UID},
                    {"INTERNALDATE", MAILPROTO_IMAP_FETCH_INTERNALDATE},
                    {"RFC822.SIZE", MAILPROTO_IMAP_FETCH_RFC822_SIZE},
                    {"ENVELOPE", MAILPROTO_IMAP_FETCH_ENVELOPE},
                    {"BODYSTRUCTURE", MAILPROTO_IMAP_FETCH_BODYSTRUCTURE},
                    {"RFC822", MAILPROTO_IMAP_FETCH_RFC822},
                    {"RFC822.HEADER", MAILPROTO_IMAP_FETCH_RFC822_HEADER},
                    {"RFC822.TEXT", MAILPROTO_IMAP_FETCH_RFC822_TEXT},
                    {"MODSEQ", MAILPROTO_IMAP_FETCH_MODSEQ}};

static int fetch_att(mailproto_imap_cursor *c, mailproto_imap_fetch_item *it) {
  size_t n;
  const uint8_t *w = item_name(c, &n);
  int ch = mailproto_imap_lex_peek(c);
  int rc;
  for (size_t i = 0; i < sizeof simple_items / sizeof simple_items[0]; i++)
    if (mailproto_imap_lex_is(w, n, simple_items[i].name)) {
      it->type = simple_items[i].type;
      return 0;
    }
  if (mailproto_imap_lex_is(w, n, "BODY") && ch != '[') {
    it->type = MAILPROTO_IMAP_FETCH_BODY;
    return 0;
  }
  if (mailproto_imap_lex_is(w, n, "BODY") ||
      mailproto_imap_lex_is(w, n, "BODY.PEEK")) {
    it->type = MAILPROTO_IMAP_FETCH_BODY_SECTION;
    it->peek = n == 9;
    rc = section(c, &it->section, 0);
    return rc ? rc : partial(c, it);
  }
  if (mailproto_imap_lex_is(w, n, "BINARY") ||
      mailproto_imap_lex_is(w, n, "BINARY.PEEK")) {
    it->type = MAILPROTO_IMAP_FETCH_BINARY;
    it->peek = n == 11;
    rc = section(c, &it->section, 1);
    return rc ? rc : partial(c, it);
  }
  if (mailproto_imap_lex_is(w, n, "BINARY.SIZE")) {
    it->type = MAILPROTO_IMAP_FETCH_BINARY_SIZE;
    return section(c, &it->section, 1);
  }
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                 n == 0 && mailproto_imap_lex_end(c)
                                     ? "Missing argument"
                                     : "Invalid fetch item");
}

static int expand_macro(mailproto_imap_cursor *c, mailproto_imap_fetch *f) {
  static const mailproto_imap_fetch_type all[] = {
      MAILPROTO_IMAP_FETCH_FLAGS, MAILPROTO_IMAP_FETCH_INTERNALDATE,
      MAILPROTO_IMAP_FETCH_RFC822_SIZE, MAILPROTO_IMAP_FETCH_ENVELOPE,
      MAILPROTO_IMAP_FETCH_BODY};
  /* RFC 3501 6.4.5: FAST is the first three, ALL the first four, FULL
   * all five. */
  unsigned count = f->macro == MAILPROTO_IMAP_MACRO_FAST  ? 3u
                   : f->macro == MAILPROTO_IMAP_MACRO_ALL ? 4u
                                                          : 5u;
  void *mem;
  int rc = mailproto_imap_lex_array(c, count, sizeof(mailproto_imap_fetch_item),
                                    &mem);
  if (rc != 0)
    return rc;
  f->items = mem;
  f->item_count = count;
  for (unsigned i = 0; i < count; i++)
    f->items[i].type = all[i];
  return 0;
}

static int fetch_items(mailproto_imap_cursor *c, mailproto_imap_fetch *f) {
  size_t save = c->pos;
  size_t n;
  const uint8_t *w = item_name(c, &n);
  if (mailproto_imap_lex_is(w, n, "ALL"))
    f->macro = MAILPROTO_IMAP_MACRO_ALL;
  else if (mailproto_imap_lex_is(w, n, "FAST"))
    f->macro = MAILPROTO_IMAP_MACRO_FAST;
  else if (mailproto_imap_lex_is(w, n, "FULL"))
    f->macro = MAILPROTO_IMAP_MACRO_FULL;
  if (f->macro != MAILPROTO_IMAP_MACRO_NONE)
    return expand_macro(c, f);
  c->pos = save;

  mailproto_imap_collect items;
  mailproto_imap_collect_init(&items, sizeof(mailproto_imap_fetch_item));
  int rc;
  f->list = mailproto_imap_lex_peek(c) == '(';
  if (f->list)
    c->pos++;
  for (;;) {
    mailproto_imap_fetch_item *it;
    if ((rc = mailproto_imap_collect_add(c, &items, (void **)&it)) != 0 ||
        (rc = fetch_att(c, it)) != 0)
      return rc;
    if (!f->list)
      break;
    if (mailproto_imap_lex_peek(c) == ')') {
      c->pos++;
      break;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
  }
  return mailproto_imap_collect_finish(c, &items, (void **)&f->items,
                                       &f->item_count);
}

/* fetch-modifier list (RFC 4466 2.4, RFC 7162 3.1.4.1 and 3.2.6). */
static int fetch_modifiers(mailproto_imap_cursor *c,
                           mailproto_imap_command *cmd) {
  mailproto_imap_fetch *f = &cmd->u.fetch;
  int rc = mailproto_imap_lex_char(c, '(', "Invalid parameter");
  if (rc != 0)
    return rc;
  for (;;) {
    size_t n;
    const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
    if (mailproto_imap_lex_is(w, n, "CHANGEDSINCE") && !f->has_changedsince) {
      if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
          (rc = mailproto_imap_lex_number64(c, &f->changedsince, 0)) != 0)
        return rc;
      f->has_changedsince = 1;
    } else if (mailproto_imap_lex_is(w, n, "VANISHED") && cmd->uid &&
               !f->vanished) {
      f->vanished = 1;
    } else {
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid parameter");
    }
    if (mailproto_imap_lex_peek(c) == ')') {
      c->pos++;
      break;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
  }
  /* RFC 7162 3.2.6: VANISHED only together with CHANGEDSINCE. */
  if (f->vanished && !f->has_changedsince)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid parameter");
  return 0;
}

int mailproto_imap_parse_fetch(mailproto_imap_cursor *c,
                               mailproto_imap_command *cmd) {
  int rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_seqset(c, 1, &cmd->u.fetch.set)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = fetch_items(c, &cmd->u.fetch)) != 0)
    return rc;
  if (mailproto_imap_lex_end(c))
    return 0;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return fetch_modifiers(c, cmd);
}

/* store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags */
int mailproto_imap_parse_store(mailproto_imap_cursor *c,
                               mailproto_imap_command *cmd) {
  mailproto_imap_store *st = &cmd->u.store;
  int rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_seqset(c, 1, &st->set)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == '(') {
    c->pos++;
    size_t n;
    const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
    if (!mailproto_imap_lex_is(w, n, "UNCHANGEDSINCE"))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid parameter");
    if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
        (rc = mailproto_imap_lex_number64(c, &st->unchangedsince, 0)) != 0 ||
        (rc = mailproto_imap_lex_char(c, ')', "Invalid parameter")) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    st->has_unchangedsince = 1;
  }
  int ch = mailproto_imap_lex_peek(c);
  if (ch == '+' || ch == '-') {
    st->op = ch == '+' ? MAILPROTO_IMAP_STORE_ADD : MAILPROTO_IMAP_STORE_REMOVE;
    c->pos++;
  }
  size_t n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (mailproto_imap_lex_is(w, n, "FLAGS.SILENT"))
    st->silent = 1;
  else if (!mailproto_imap_lex_is(w, n, "FLAGS"))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   n == 0 && mailproto_imap_lex_end(c)
                                       ? "Missing argument"
                                       : "Invalid store item");
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == '(') {
    st->list = 1;
    return mailproto_imap_lex_flag_list(c, &st->flags);
  }
  return mailproto_imap_lex_flags_bare(c, &st->flags);
}
