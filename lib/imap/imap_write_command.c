/*
 * The command writer: a parsed command back to a canonical wire form
 * (RFC 3501 9 / RFC 9051 9). Used by the tests and by the round-trip fuzz
 * oracle (parse -> write -> parse gives an equal command), so its output
 * is exactly what the parser reads back.
 */
#include <string.h>

#include "imap/imap_writer.h"
#include "mailproto/store.h"

typedef struct out {
  mailproto_buf *b;
  unsigned flags;
  int rc;
} out;

static void raw(out *o, const char *s) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_raw(o->b, s);
}

static void sp(out *o) {
  raw(o, " ");
}

static void num(out *o, uint64_t n) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_number(o->b, n);
}

static void astr(out *o, const mailproto_imap_str *s) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_astring(o->b, s->data, s->len, o->flags);
}

static void str(out *o, const mailproto_imap_str *s) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_string(o->b, s->data, s->len, o->flags);
}

static void seqset(out *o, const mailproto_imap_seqset *set) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_seqset(o->b, set);
}

/* list-mailbox: 1*list-char, else a string. */
static void list_mailbox(out *o, const mailproto_imap_str *s) {
  int plain = s->len > 0;
  for (size_t i = 0; plain && i < s->len; i++) {
    unsigned char ch = (unsigned char)s->data[i];
    plain = mailproto_imap_is_astring_char(ch) || ch == '%' || ch == '*';
  }
  if (plain)
    raw(o, s->data);
  else
    str(o, s);
}

static void flags(out *o, const mailproto_imap_flags *f, int paren) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{MAILPROTO_IMAP_FLAG_SEEN, "\\Seen"},
               {MAILPROTO_IMAP_FLAG_ANSWERED, "\\Answered"},
               {MAILPROTO_IMAP_FLAG_FLAGGED, "\\Flagged"},
               {MAILPROTO_IMAP_FLAG_DELETED, "\\Deleted"},
               {MAILPROTO_IMAP_FLAG_DRAFT, "\\Draft"}};
  int first = 1;
  if (paren)
    raw(o, "(");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(f->system & names[i].bit))
      continue;
    if (!first)
      sp(o);
    raw(o, names[i].name);
    first = 0;
  }
  for (unsigned i = 0; i < f->keyword_count; i++) {
    if (!first)
      sp(o);
    raw(o, f->keywords[i].data);
    first = 0;
  }
  if (paren)
    raw(o, ")");
}

static void status_items(out *o, unsigned items) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{MAILPROTO_IMAP_STATUS_MESSAGES, "MESSAGES"},
               {MAILPROTO_IMAP_STATUS_RECENT, "RECENT"},
               {MAILPROTO_IMAP_STATUS_UIDNEXT, "UIDNEXT"},
               {MAILPROTO_IMAP_STATUS_UIDVALIDITY, "UIDVALIDITY"},
               {MAILPROTO_IMAP_STATUS_UNSEEN, "UNSEEN"},
               {MAILPROTO_IMAP_STATUS_SIZE, "SIZE"},
               {MAILPROTO_IMAP_STATUS_DELETED, "DELETED"},
               {MAILPROTO_IMAP_STATUS_APPENDLIMIT, "APPENDLIMIT"},
               {MAILPROTO_IMAP_STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ"}};
  int first = 1;
  raw(o, "(");
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!(items & names[i].bit))
      continue;
    if (!first)
      sp(o);
    raw(o, names[i].name);
    first = 0;
  }
  raw(o, ")");
}

/* A date-time in quotes, as APPEND takes it. */
static void date_time(out *o, const mailproto_datetime *dt) {
  char tmp[MAILPROTO_DATE_BUFSIZE];
  if (o->rc == 0 && mailproto_date_format_imap(dt, tmp, sizeof tmp) < 0)
    o->rc = MAILPROTO_ERR_INVALID_ARGUMENT;
  raw(o, "\"");
  raw(o, tmp);
  raw(o, "\"");
}

/* A search date "1-Feb-1994" (the day of `utc`). */
static void day(out *o, int64_t utc) {
  mailproto_datetime dt = {utc, 0};
  char tmp[MAILPROTO_DATE_BUFSIZE];
  if (o->rc != 0)
    return;
  if (mailproto_date_format_imap(&dt, tmp, sizeof tmp) < 0) {
    o->rc = MAILPROTO_ERR_INVALID_ARGUMENT;
    return;
  }
  char *p = tmp[0] == ' ' ? tmp + 1 : tmp;
  char *space = strchr(p, ' ');
  if (space)
    *space = '\0';
  raw(o, p);
}

static void select_cmd(out *o, const mailproto_imap_select *s) {
  sp(o);
  astr(o, &s->mailbox);
  if (!s->condstore && !s->qresync)
    return;
  raw(o, " (");
  if (s->condstore)
    raw(o, s->qresync ? "CONDSTORE " : "CONDSTORE");
  if (s->qresync) {
    raw(o, "QRESYNC (");
    num(o, s->uidvalidity);
    sp(o);
    num(o, s->modseq);
    if (s->has_known_uids) {
      sp(o);
      seqset(o, &s->known_uids);
    }
    if (s->has_seq_match) {
      raw(o, " (");
      seqset(o, &s->known_seqs);
      sp(o);
      seqset(o, &s->known_seq_uids);
      raw(o, ")");
    }
    raw(o, ")");
  }
  raw(o, ")");
}

static void create_cmd(out *o, const mailproto_imap_command *cmd) {
  static const struct {
    unsigned bit;
    const char *name;
  } uses[] = {{MAILPROTO_MBOX_SPECIAL_ALL, "\\All"},
              {MAILPROTO_MBOX_SPECIAL_ARCHIVE, "\\Archive"},
              {MAILPROTO_MBOX_SPECIAL_DRAFTS, "\\Drafts"},
              {MAILPROTO_MBOX_SPECIAL_FLAGGED, "\\Flagged"},
              {MAILPROTO_MBOX_SPECIAL_JUNK, "\\Junk"},
              {MAILPROTO_MBOX_SPECIAL_SENT, "\\Sent"},
              {MAILPROTO_MBOX_SPECIAL_TRASH, "\\Trash"}};
  sp(o);
  astr(o, &cmd->u.create.mailbox);
  /* Unknown USE attributes are counted, not kept: they are not written. */
  if (!cmd->u.create.use)
    return;
  raw(o, " (USE (");
  int first = 1;
  for (size_t i = 0; i < sizeof uses / sizeof uses[0]; i++) {
    if (!(cmd->u.create.use & uses[i].bit))
      continue;
    if (!first)
      sp(o);
    raw(o, uses[i].name);
    first = 0;
  }
  raw(o, "))");
}

static void list_cmd(out *o, const mailproto_imap_command *cmd) {
  const mailproto_imap_list *l = &cmd->u.list;
  static const struct {
    unsigned bit;
    const char *name;
  } sel[] = {{MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED, "SUBSCRIBED"},
             {MAILPROTO_IMAP_LIST_SEL_REMOTE, "REMOTE"},
             {MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH, "RECURSIVEMATCH"},
             {MAILPROTO_IMAP_LIST_SEL_SPECIAL_USE, "SPECIAL-USE"}},
    ret[] = {{MAILPROTO_IMAP_LIST_RET_SUBSCRIBED, "SUBSCRIBED"},
             {MAILPROTO_IMAP_LIST_RET_CHILDREN, "CHILDREN"},
             {MAILPROTO_IMAP_LIST_RET_SPECIAL_USE, "SPECIAL-USE"}};
  int lsub = cmd->id == MAILPROTO_IMAP_CMD_LSUB;
  sp(o);
  if (!lsub && l->select_opts) {
    raw(o, "(");
    int first = 1;
    for (size_t i = 0; i < sizeof sel / sizeof sel[0]; i++) {
      if (!(l->select_opts & sel[i].bit))
        continue;
      if (!first)
        sp(o);
      raw(o, sel[i].name);
      first = 0;
    }
    raw(o, ") ");
  }
  astr(o, &l->reference);
  sp(o);
  /* Parentheses keep "extended" when nothing else shows it. */
  int paren = !lsub && (l->pattern_count != 1 ||
                        (l->extended && !l->select_opts && !l->has_return));
  if (paren)
    raw(o, "(");
  for (unsigned i = 0; i < l->pattern_count; i++) {
    if (i > 0)
      sp(o);
    list_mailbox(o, &l->patterns[i]);
  }
  if (paren)
    raw(o, ")");
  if (lsub || !l->has_return)
    return;
  raw(o, " RETURN (");
  int first = 1;
  for (size_t i = 0; i < sizeof ret / sizeof ret[0]; i++) {
    if (!(l->return_opts & ret[i].bit))
      continue;
    if (!first)
      sp(o);
    raw(o, ret[i].name);
    first = 0;
  }
  if (l->return_opts & MAILPROTO_IMAP_LIST_RET_STATUS) {
    raw(o, first ? "STATUS " : " STATUS ");
    status_items(o, l->status_items);
  }
  raw(o, ")");
}

static void append_cmd(out *o, const mailproto_imap_append *a) {
  sp(o);
  astr(o, &a->mailbox);
  for (unsigned i = 0; i < a->message_count; i++) {
    const mailproto_imap_append_message *m = &a->messages[i];
    if (m->has_flags) {
      sp(o);
      flags(o, &m->flags, 1);
    }
    if (m->has_date) {
      sp(o);
      date_time(o, &m->date);
    }
    raw(o, m->binary ? " ~{" : " {");
    num(o, m->size);
    raw(o, m->sync ? "}\r\n" : "+}\r\n");
    if (o->rc == 0 && m->data)
      o->rc = mailproto_buf_append(o->b, m->data, (size_t)m->size);
  }
}

int mailproto_imap_write_section(mailproto_buf *b,
                                 const mailproto_imap_section *s,
                                 unsigned flags) {
  out o = {b, flags, 0};
  out *op = &o;
  raw(op, "[");
  for (unsigned i = 0; i < s->part_count; i++) {
    if (i > 0)
      raw(op, ".");
    num(op, s->parts[i]);
  }
  if (s->text != MAILPROTO_IMAP_SECTION_ALL && s->part_count > 0)
    raw(op, ".");
  switch (s->text) {
  case MAILPROTO_IMAP_SECTION_HEADER:
    raw(op, "HEADER");
    break;
  case MAILPROTO_IMAP_SECTION_HEADER_FIELDS:
  case MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT:
    raw(op, s->text == MAILPROTO_IMAP_SECTION_HEADER_FIELDS
                ? "HEADER.FIELDS ("
                : "HEADER.FIELDS.NOT (");
    for (unsigned i = 0; i < s->field_count; i++) {
      if (i > 0)
        sp(op);
      astr(op, &s->fields[i]);
    }
    raw(op, ")");
    break;
  case MAILPROTO_IMAP_SECTION_TEXT:
    raw(op, "TEXT");
    break;
  case MAILPROTO_IMAP_SECTION_MIME:
    raw(op, "MIME");
    break;
  default:
    break;
  }
  raw(op, "]");
  return o.rc;
}

static void section(out *o, const mailproto_imap_section *s) {
  if (o->rc == 0)
    o->rc = mailproto_imap_write_section(o->b, s, o->flags);
}

static void fetch_item(out *o, const mailproto_imap_fetch_item *it) {
  static const char *const names[] = {
      [MAILPROTO_IMAP_FETCH_ENVELOPE] = "ENVELOPE",
      [MAILPROTO_IMAP_FETCH_FLAGS] = "FLAGS",
      [MAILPROTO_IMAP_FETCH_INTERNALDATE] = "INTERNALDATE",
      [MAILPROTO_IMAP_FETCH_RFC822_SIZE] = "RFC822.SIZE",
      [MAILPROTO_IMAP_FETCH_RFC822] = "RFC822",
      [MAILPROTO_IMAP_FETCH_RFC822_HEADER] = "RFC822.HEADER",
      [MAILPROTO_IMAP_FETCH_RFC822_TEXT] = "RFC822.TEXT",
      [MAILPROTO_IMAP_FETCH_BODY] = "BODY",
      [MAILPROTO_IMAP_FETCH_BODYSTRUCTURE] = "BODYSTRUCTURE",
      [MAILPROTO_IMAP_FETCH_UID] = "UID",
      [MAILPROTO_IMAP_FETCH_BODY_SECTION] = "BODY",
      [MAILPROTO_IMAP_FETCH_BINARY] = "BINARY",
      [MAILPROTO_IMAP_FETCH_BINARY_SIZE] = "BINARY.SIZE",
      [MAILPROTO_IMAP_FETCH_MODSEQ] = "MODSEQ"};
  if ((unsigned)it->type >= sizeof names / sizeof names[0] ||
      !names[it->type]) {
    if (o->rc == 0)
      o->rc = MAILPROTO_ERR_INVALID_ARGUMENT;
    return;
  }
  raw(o, names[it->type]);
  if (it->type != MAILPROTO_IMAP_FETCH_BODY_SECTION &&
      it->type != MAILPROTO_IMAP_FETCH_BINARY &&
      it->type != MAILPROTO_IMAP_FETCH_BINARY_SIZE)
    return;
  if (it->peek)
    raw(o, ".PEEK");
  section(o, &it->section);
  if (it->has_partial) {
    raw(o, "<");
    num(o, it->partial_offset);
    raw(o, ".");
    num(o, it->partial_length);
    raw(o, ">");
  }
}

static void fetch_cmd(out *o, const mailproto_imap_fetch *f) {
  sp(o);
  seqset(o, &f->set);
  sp(o);
  if (f->macro != MAILPROTO_IMAP_MACRO_NONE) {
    raw(o, f->macro == MAILPROTO_IMAP_MACRO_ALL    ? "ALL"
           : f->macro == MAILPROTO_IMAP_MACRO_FAST ? "FAST"
                                                   : "FULL");
  } else {
    int paren = f->list || f->item_count != 1;
    if (paren)
      raw(o, "(");
    for (unsigned i = 0; i < f->item_count; i++) {
      if (i > 0)
        sp(o);
      fetch_item(o, &f->items[i]);
    }
    if (paren)
      raw(o, ")");
  }
  if (f->has_changedsince) {
    raw(o, " (CHANGEDSINCE ");
    num(o, f->changedsince);
    if (f->vanished)
      raw(o, " VANISHED");
    raw(o, ")");
  }
}

static void store_cmd(out *o, const mailproto_imap_store *s) {
  sp(o);
  seqset(o, &s->set);
  sp(o);
  if (s->has_unchangedsince) {
    raw(o, "(UNCHANGEDSINCE ");
    num(o, s->unchangedsince);
    raw(o, ") ");
  }
  raw(o, s->op == MAILPROTO_IMAP_STORE_ADD      ? "+"
         : s->op == MAILPROTO_IMAP_STORE_REMOVE ? "-"
                                                : "");
  raw(o, s->silent ? "FLAGS.SILENT " : "FLAGS ");
  flags(o, &s->flags,
        s->list || (s->flags.system == 0 && s->flags.keyword_count == 0));
}

static const char *const key_names[] = {
    [MAILPROTO_IMAP_SEARCH_ALL] = "ALL",
    [MAILPROTO_IMAP_SEARCH_ANSWERED] = "ANSWERED",
    [MAILPROTO_IMAP_SEARCH_DELETED] = "DELETED",
    [MAILPROTO_IMAP_SEARCH_DRAFT] = "DRAFT",
    [MAILPROTO_IMAP_SEARCH_FLAGGED] = "FLAGGED",
    [MAILPROTO_IMAP_SEARCH_SEEN] = "SEEN",
    [MAILPROTO_IMAP_SEARCH_RECENT] = "RECENT",
    [MAILPROTO_IMAP_SEARCH_NEW] = "NEW",
    [MAILPROTO_IMAP_SEARCH_OLD] = "OLD",
    [MAILPROTO_IMAP_SEARCH_UNANSWERED] = "UNANSWERED",
    [MAILPROTO_IMAP_SEARCH_UNDELETED] = "UNDELETED",
    [MAILPROTO_IMAP_SEARCH_UNDRAFT] = "UNDRAFT",
    [MAILPROTO_IMAP_SEARCH_UNFLAGGED] = "UNFLAGGED",
    [MAILPROTO_IMAP_SEARCH_UNSEEN] = "UNSEEN",
    [MAILPROTO_IMAP_SEARCH_KEYWORD] = "KEYWORD",
    [MAILPROTO_IMAP_SEARCH_UNKEYWORD] = "UNKEYWORD",
    [MAILPROTO_IMAP_SEARCH_BCC] = "BCC",
    [MAILPROTO_IMAP_SEARCH_BODY] = "BODY",
    [MAILPROTO_IMAP_SEARCH_CC] = "CC",
    [MAILPROTO_IMAP_SEARCH_FROM] = "FROM",
    [MAILPROTO_IMAP_SEARCH_SUBJECT] = "SUBJECT",
    [MAILPROTO_IMAP_SEARCH_TEXT] = "TEXT",
    [MAILPROTO_IMAP_SEARCH_TO] = "TO",
    [MAILPROTO_IMAP_SEARCH_HEADER] = "HEADER",
    [MAILPROTO_IMAP_SEARCH_BEFORE] = "BEFORE",
    [MAILPROTO_IMAP_SEARCH_ON] = "ON",
    [MAILPROTO_IMAP_SEARCH_SINCE] = "SINCE",
    [MAILPROTO_IMAP_SEARCH_SENTBEFORE] = "SENTBEFORE",
    [MAILPROTO_IMAP_SEARCH_SENTON] = "SENTON",
    [MAILPROTO_IMAP_SEARCH_SENTSINCE] = "SENTSINCE",
    [MAILPROTO_IMAP_SEARCH_LARGER] = "LARGER",
    [MAILPROTO_IMAP_SEARCH_SMALLER] = "SMALLER",
    [MAILPROTO_IMAP_SEARCH_MODSEQ] = "MODSEQ",
    [MAILPROTO_IMAP_SEARCH_NOT] = "NOT",
    [MAILPROTO_IMAP_SEARCH_OR] = "OR",
    [MAILPROTO_IMAP_SEARCH_UID] = "UID"};

static void search_key(out *o, const mailproto_imap_search_key *k);

static void key_children(out *o, const mailproto_imap_search_key *k) {
  for (const mailproto_imap_search_key *c = k; c; c = c->next) {
    if (c != k)
      sp(o);
    search_key(o, c);
  }
}

static void search_key(out *o, const mailproto_imap_search_key *k) {
  if (k->type == MAILPROTO_IMAP_SEARCH_AND) {
    raw(o, "(");
    key_children(o, k->children);
    raw(o, ")");
    return;
  }
  if (k->type == MAILPROTO_IMAP_SEARCH_SEQSET) {
    seqset(o, &k->set);
    return;
  }
  if ((unsigned)k->type >= sizeof key_names / sizeof key_names[0] ||
      !key_names[k->type]) {
    if (o->rc == 0)
      o->rc = MAILPROTO_ERR_INVALID_ARGUMENT;
    return;
  }
  raw(o, key_names[k->type]);
  switch (k->type) {
  case MAILPROTO_IMAP_SEARCH_NOT:
    sp(o);
    search_key(o, k->children);
    break;
  case MAILPROTO_IMAP_SEARCH_OR:
    sp(o);
    search_key(o, k->children);
    sp(o);
    search_key(o, k->children->next);
    break;
  case MAILPROTO_IMAP_SEARCH_UID:
    sp(o);
    seqset(o, &k->set);
    break;
  case MAILPROTO_IMAP_SEARCH_KEYWORD:
  case MAILPROTO_IMAP_SEARCH_UNKEYWORD:
    sp(o);
    raw(o, k->str.data);
    break;
  case MAILPROTO_IMAP_SEARCH_BCC:
  case MAILPROTO_IMAP_SEARCH_BODY:
  case MAILPROTO_IMAP_SEARCH_CC:
  case MAILPROTO_IMAP_SEARCH_FROM:
  case MAILPROTO_IMAP_SEARCH_SUBJECT:
  case MAILPROTO_IMAP_SEARCH_TEXT:
  case MAILPROTO_IMAP_SEARCH_TO:
    sp(o);
    astr(o, &k->str);
    break;
  case MAILPROTO_IMAP_SEARCH_HEADER:
    sp(o);
    astr(o, &k->field);
    sp(o);
    astr(o, &k->str);
    break;
  case MAILPROTO_IMAP_SEARCH_BEFORE:
  case MAILPROTO_IMAP_SEARCH_ON:
  case MAILPROTO_IMAP_SEARCH_SINCE:
  case MAILPROTO_IMAP_SEARCH_SENTBEFORE:
  case MAILPROTO_IMAP_SEARCH_SENTON:
  case MAILPROTO_IMAP_SEARCH_SENTSINCE:
    sp(o);
    day(o, k->date);
    break;
  case MAILPROTO_IMAP_SEARCH_LARGER:
  case MAILPROTO_IMAP_SEARCH_SMALLER:
    sp(o);
    num(o, k->number);
    break;
  case MAILPROTO_IMAP_SEARCH_MODSEQ:
    if (k->str.data) {
      sp(o);
      str(o, &k->str);
      sp(o);
      raw(o, k->entry_type.data);
    }
    sp(o);
    num(o, k->number);
    break;
  default:
    break;
  }
}

static void search_cmd(out *o, const mailproto_imap_search *s) {
  static const struct {
    unsigned bit;
    const char *name;
  } opts[] = {{MAILPROTO_IMAP_RETURN_MIN, "MIN"},
              {MAILPROTO_IMAP_RETURN_MAX, "MAX"},
              {MAILPROTO_IMAP_RETURN_ALL, "ALL"},
              {MAILPROTO_IMAP_RETURN_COUNT, "COUNT"},
              {MAILPROTO_IMAP_RETURN_SAVE, "SAVE"}};
  sp(o);
  if (s->has_return) {
    raw(o, "RETURN (");
    int first = 1;
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
      if (!(s->return_opts & opts[i].bit))
        continue;
      if (!first)
        sp(o);
      raw(o, opts[i].name);
      first = 0;
    }
    raw(o, ") ");
  }
  if (s->has_charset) {
    raw(o, "CHARSET ");
    astr(o, &s->charset);
    sp(o);
  }
  key_children(o, s->key->children);
}

static void sort_cmd(out *o, const mailproto_imap_sort *s) {
  static const char *const names[] = {[MAILPROTO_IMAP_SORT_ARRIVAL] = "ARRIVAL",
                                      [MAILPROTO_IMAP_SORT_CC] = "CC",
                                      [MAILPROTO_IMAP_SORT_DATE] = "DATE",
                                      [MAILPROTO_IMAP_SORT_FROM] = "FROM",
                                      [MAILPROTO_IMAP_SORT_SIZE] = "SIZE",
                                      [MAILPROTO_IMAP_SORT_SUBJECT] = "SUBJECT",
                                      [MAILPROTO_IMAP_SORT_TO] = "TO"};
  raw(o, " (");
  for (unsigned i = 0; i < s->criteria_count; i++) {
    const mailproto_imap_sort_criterion *c = &s->criteria[i];
    if (i > 0)
      sp(o);
    if (c->reverse)
      raw(o, "REVERSE ");
    if ((unsigned)c->key >= sizeof names / sizeof names[0] || !names[c->key]) {
      if (o->rc == 0)
        o->rc = MAILPROTO_ERR_INVALID_ARGUMENT;
      return;
    }
    raw(o, names[c->key]);
  }
  raw(o, ") ");
  astr(o, &s->charset);
  sp(o);
  key_children(o, s->key->children);
}

static void id_cmd(out *o, const mailproto_imap_command *cmd) {
  if (cmd->u.id.nil) {
    raw(o, " NIL");
    return;
  }
  raw(o, " (");
  for (unsigned i = 0; i < cmd->u.id.count; i++) {
    const mailproto_imap_id_param *p = &cmd->u.id.params[i];
    if (i > 0)
      sp(o);
    str(o, &p->field);
    sp(o);
    if (p->value.nil)
      raw(o, "NIL");
    else
      str(o, &p->value.str);
  }
  raw(o, ")");
}

static void arguments(out *o, const mailproto_imap_command *cmd) {
  switch (cmd->id) {
  case MAILPROTO_IMAP_CMD_LOGIN:
    sp(o);
    astr(o, &cmd->u.login.user);
    sp(o);
    astr(o, &cmd->u.login.password);
    break;
  case MAILPROTO_IMAP_CMD_AUTHENTICATE:
    sp(o);
    raw(o, cmd->u.authenticate.mechanism.data);
    if (cmd->u.authenticate.has_initial) {
      sp(o);
      raw(o, cmd->u.authenticate.initial.len ? cmd->u.authenticate.initial.data
                                             : "=");
    }
    break;
  case MAILPROTO_IMAP_CMD_ID:
    id_cmd(o, cmd);
    break;
  case MAILPROTO_IMAP_CMD_ENABLE:
    for (unsigned i = 0; i < cmd->u.enable.count; i++) {
      sp(o);
      raw(o, cmd->u.enable.capabilities[i].data);
    }
    break;
  case MAILPROTO_IMAP_CMD_SELECT:
  case MAILPROTO_IMAP_CMD_EXAMINE:
    select_cmd(o, &cmd->u.select);
    break;
  case MAILPROTO_IMAP_CMD_CREATE:
    create_cmd(o, cmd);
    break;
  case MAILPROTO_IMAP_CMD_DELETE:
  case MAILPROTO_IMAP_CMD_SUBSCRIBE:
  case MAILPROTO_IMAP_CMD_UNSUBSCRIBE:
    sp(o);
    astr(o, &cmd->u.mailbox.mailbox);
    break;
  case MAILPROTO_IMAP_CMD_RENAME:
    sp(o);
    astr(o, &cmd->u.rename.from);
    sp(o);
    astr(o, &cmd->u.rename.to);
    break;
  case MAILPROTO_IMAP_CMD_LIST:
  case MAILPROTO_IMAP_CMD_LSUB:
    list_cmd(o, cmd);
    break;
  case MAILPROTO_IMAP_CMD_STATUS:
    sp(o);
    astr(o, &cmd->u.status.mailbox);
    sp(o);
    status_items(o, cmd->u.status.items);
    break;
  case MAILPROTO_IMAP_CMD_APPEND:
    append_cmd(o, &cmd->u.append);
    break;
  case MAILPROTO_IMAP_CMD_COPY:
  case MAILPROTO_IMAP_CMD_MOVE:
    sp(o);
    seqset(o, &cmd->u.copy.set);
    sp(o);
    astr(o, &cmd->u.copy.mailbox);
    break;
  case MAILPROTO_IMAP_CMD_EXPUNGE:
    if (cmd->uid) {
      sp(o);
      seqset(o, &cmd->u.expunge.set);
    }
    break;
  case MAILPROTO_IMAP_CMD_FETCH:
    fetch_cmd(o, &cmd->u.fetch);
    break;
  case MAILPROTO_IMAP_CMD_STORE:
    store_cmd(o, &cmd->u.store);
    break;
  case MAILPROTO_IMAP_CMD_SEARCH:
    search_cmd(o, &cmd->u.search);
    break;
  case MAILPROTO_IMAP_CMD_SORT:
    sort_cmd(o, &cmd->u.sort);
    break;
  case MAILPROTO_IMAP_CMD_THREAD:
    raw(o, cmd->u.thread.algorithm == MAILPROTO_IMAP_THREAD_REFERENCES
               ? " REFERENCES "
               : " ORDEREDSUBJECT ");
    astr(o, &cmd->u.thread.charset);
    sp(o);
    key_children(o, cmd->u.thread.key->children);
    break;
  default:
    break;
  }
}

int mailproto_imap_write_command(mailproto_buf *b,
                                 const mailproto_imap_command *cmd,
                                 unsigned flags) {
  const char *name = mailproto_imap_cmd_name(cmd->id);
  if (!name || !cmd->tag.data || cmd->tag.len == 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  out o = {b, flags, 0};
  size_t mark = b->len;
  raw(&o, cmd->tag.data);
  raw(&o, cmd->uid ? " UID " : " ");
  raw(&o, name);
  arguments(&o, cmd);
  raw(&o, "\r\n");
  if (o.rc != 0)
    b->len = mark;
  return o.rc;
}
