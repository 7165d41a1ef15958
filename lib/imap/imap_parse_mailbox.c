/*
 * Mailbox commands with structured arguments: SELECT/EXAMINE parameters
 * (RFC 7162), CREATE with USE (RFC 6154), LIST with LIST-EXTENDED (RFC
 * 5258), LIST-STATUS (RFC 5819) and SPECIAL-USE, LSUB, STATUS, and the
 * messages of APPEND / MULTIAPPEND (RFC 3501 6.3.11, RFC 3502, RFC 3516).
 */
#include <string.h>

#include "imap/imap_parse_internal.h"
#include "mailproto/store.h"

typedef struct word_bit {
  const char *word;
  unsigned bit;
} word_bit;

/* The bit of the keyword at the cursor from `table`, or 0 (cursor kept
 * after the word either way; *n is its length). */
static unsigned lookup(mailproto_imap_cursor *c, const word_bit *table,
                       size_t count, size_t *n) {
  const uint8_t *w = mailproto_imap_lex_word(c, n);
  for (size_t i = 0; i < count; i++)
    if (mailproto_imap_lex_is(w, *n, table[i].word))
      return table[i].bit;
  return 0;
}

/* "(" item *(SP item) ")" where each item is parsed by `one`; `empty_ok`
 * allows "()". */
static int paren_list(mailproto_imap_cursor *c, int empty_ok,
                      int (*one)(mailproto_imap_cursor *, void *), void *arg,
                      const char *text) {
  int rc = mailproto_imap_lex_char(c, '(', text);
  if (rc != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == ')') {
    if (!empty_ok)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, text);
    c->pos++;
    return 0;
  }
  for (;;) {
    if ((rc = one(c, arg)) != 0)
      return rc;
    if (mailproto_imap_lex_peek(c) == ')') {
      c->pos++;
      return 0;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
  }
}

/* ------------------------------------------------------------------ */
/* SELECT / EXAMINE                                                    */
/* ------------------------------------------------------------------ */

/* QRESYNC SP "(" uidvalidity SP mod-sequence-value [SP known-uids]
 * [SP seq-match-data] ")" (RFC 7162 7). */
static int qresync_param(mailproto_imap_cursor *c, mailproto_imap_select *s) {
  int rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_char(c, '(', "Invalid parameter")) != 0 ||
      (rc = mailproto_imap_lex_number(c, &s->uidvalidity, 1)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_number64(c, &s->modseq, 1)) != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == ' ' && c->pos + 1 < c->len &&
      c->s[c->pos + 1] != '(') {
    c->pos++;
    if ((rc = mailproto_imap_lex_seqset(c, 0, &s->known_uids)) != 0)
      return rc;
    s->has_known_uids = 1;
  }
  if (mailproto_imap_lex_peek(c) == ' ') {
    c->pos++;
    if ((rc = mailproto_imap_lex_char(c, '(', "Invalid parameter")) != 0 ||
        (rc = mailproto_imap_lex_seqset(c, 0, &s->known_seqs)) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0 ||
        (rc = mailproto_imap_lex_seqset(c, 0, &s->known_seq_uids)) != 0 ||
        (rc = mailproto_imap_lex_char(c, ')', "Invalid parameter")) != 0)
      return rc;
    s->has_seq_match = 1;
  }
  s->qresync = 1;
  return mailproto_imap_lex_char(c, ')', "Invalid parameter");
}

static int select_param(mailproto_imap_cursor *c, void *arg) {
  mailproto_imap_select *s = arg;
  size_t n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (mailproto_imap_lex_is(w, n, "CONDSTORE") && !s->condstore) {
    s->condstore = 1;
    return 0;
  }
  if (mailproto_imap_lex_is(w, n, "QRESYNC") && !s->qresync)
    return qresync_param(c, s);
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid parameter");
}

int mailproto_imap_parse_select(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd) {
  mailproto_imap_select *s = &cmd->u.select;
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &s->mailbox);
  if (rc != 0 || mailproto_imap_lex_end(c))
    return rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return paren_list(c, 0, select_param, s, "Invalid parameter");
}

/* ------------------------------------------------------------------ */
/* CREATE                                                              */
/* ------------------------------------------------------------------ */

static const word_bit use_attrs[] = {
    {"\\All", MAILPROTO_MBOX_SPECIAL_ALL},
    {"\\Archive", MAILPROTO_MBOX_SPECIAL_ARCHIVE},
    {"\\Drafts", MAILPROTO_MBOX_SPECIAL_DRAFTS},
    {"\\Flagged", MAILPROTO_MBOX_SPECIAL_FLAGGED},
    {"\\Junk", MAILPROTO_MBOX_SPECIAL_JUNK},
    {"\\Sent", MAILPROTO_MBOX_SPECIAL_SENT},
    {"\\Trash", MAILPROTO_MBOX_SPECIAL_TRASH}};

static int use_attr(mailproto_imap_cursor *c, void *arg) {
  mailproto_imap_command *cmd = arg;
  /* use-attr = "\" atom */
  if (mailproto_imap_lex_peek(c) != '\\')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid parameter");
  size_t start = c->pos++;
  size_t n;
  mailproto_imap_lex_atom_run(c, &n);
  if (n == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid parameter");
  for (size_t i = 0; i < sizeof use_attrs / sizeof use_attrs[0]; i++)
    if (mailproto_imap_lex_is(c->s + start, n + 1, use_attrs[i].word)) {
      cmd->u.create.use |= use_attrs[i].bit;
      return 0;
    }
  cmd->u.create.use_unknown++;
  return 0;
}

static int create_param(mailproto_imap_cursor *c, void *arg) {
  size_t n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (!mailproto_imap_lex_is(w, n, "USE"))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid parameter");
  int rc = mailproto_imap_lex_sp(c);
  return rc ? rc : paren_list(c, 1, use_attr, arg, "Invalid parameter");
}

int mailproto_imap_parse_create(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.create.mailbox);
  if (rc != 0 || mailproto_imap_lex_end(c))
    return rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return paren_list(c, 0, create_param, cmd, "Invalid parameter");
}

/* ------------------------------------------------------------------ */
/* STATUS                                                              */
/* ------------------------------------------------------------------ */

static const word_bit status_items[] = {
    {"MESSAGES", MAILPROTO_IMAP_STATUS_MESSAGES},
    {"RECENT", MAILPROTO_IMAP_STATUS_RECENT},
    {"UIDNEXT", MAILPROTO_IMAP_STATUS_UIDNEXT},
    {"UIDVALIDITY", MAILPROTO_IMAP_STATUS_UIDVALIDITY},
    {"UNSEEN", MAILPROTO_IMAP_STATUS_UNSEEN},
    {"SIZE", MAILPROTO_IMAP_STATUS_SIZE},
    {"DELETED", MAILPROTO_IMAP_STATUS_DELETED},
    {"APPENDLIMIT", MAILPROTO_IMAP_STATUS_APPENDLIMIT},
    {"HIGHESTMODSEQ", MAILPROTO_IMAP_STATUS_HIGHESTMODSEQ}};

static int status_item(mailproto_imap_cursor *c, void *arg) {
  size_t n;
  unsigned bit =
      lookup(c, status_items, sizeof status_items / sizeof status_items[0], &n);
  if (!bit)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid status item");
  *(unsigned *)arg |= bit;
  return 0;
}

int mailproto_imap_parse_status_items(mailproto_imap_cursor *c,
                                      unsigned *items) {
  *items = 0;
  return paren_list(c, 0, status_item, items, "Invalid status item");
}

int mailproto_imap_parse_status(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.status.mailbox);
  if (rc == 0)
    rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_parse_status_items(c, &cmd->u.status.items);
  return rc;
}

/* ------------------------------------------------------------------ */
/* LIST and LSUB                                                       */
/* ------------------------------------------------------------------ */

static const word_bit select_opts[] = {
    {"SUBSCRIBED", MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED},
    {"REMOTE", MAILPROTO_IMAP_LIST_SEL_REMOTE},
    {"RECURSIVEMATCH", MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH},
    {"SPECIAL-USE", MAILPROTO_IMAP_LIST_SEL_SPECIAL_USE}};

static int select_opt(mailproto_imap_cursor *c, void *arg) {
  size_t n;
  unsigned bit =
      lookup(c, select_opts, sizeof select_opts / sizeof select_opts[0], &n);
  /* RFC 5258 3: unknown selection options are an error. */
  if (!bit)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid list option");
  *(unsigned *)arg |= bit;
  return 0;
}

static int return_opt(mailproto_imap_cursor *c, void *arg) {
  mailproto_imap_list *l = arg;
  size_t n;
  const uint8_t *w = mailproto_imap_lex_word(c, &n);
  if (mailproto_imap_lex_is(w, n, "SUBSCRIBED"))
    l->return_opts |= MAILPROTO_IMAP_LIST_RET_SUBSCRIBED;
  else if (mailproto_imap_lex_is(w, n, "CHILDREN"))
    l->return_opts |= MAILPROTO_IMAP_LIST_RET_CHILDREN;
  else if (mailproto_imap_lex_is(w, n, "SPECIAL-USE"))
    l->return_opts |= MAILPROTO_IMAP_LIST_RET_SPECIAL_USE;
  else if (mailproto_imap_lex_is(w, n, "STATUS") &&
           !(l->return_opts & MAILPROTO_IMAP_LIST_RET_STATUS)) {
    /* RFC 5819 2: STATUS SP "(" status-att *(SP status-att) ")" */
    int rc = mailproto_imap_lex_sp(c);
    if (rc == 0)
      rc = mailproto_imap_parse_status_items(c, &l->status_items);
    if (rc != 0)
      return rc;
    l->return_opts |= MAILPROTO_IMAP_LIST_RET_STATUS;
  } else {
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid return option");
  }
  return 0;
}

static int one_pattern(mailproto_imap_cursor *c, void *arg) {
  mailproto_imap_str *pattern;
  int rc = mailproto_imap_collect_add(c, arg, (void **)&pattern);
  return rc ? rc : mailproto_imap_lex_list_mailbox(c, pattern);
}

static int finish_patterns(mailproto_imap_cursor *c,
                           mailproto_imap_collect *col,
                           mailproto_imap_list *l) {
  return mailproto_imap_collect_finish(c, col, (void **)&l->patterns,
                                       &l->pattern_count);
}

int mailproto_imap_parse_list(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd) {
  mailproto_imap_list *l = &cmd->u.list;
  mailproto_imap_collect acc;
  mailproto_imap_collect_init(&acc, sizeof(mailproto_imap_str));
  int rc = mailproto_imap_lex_sp(c);
  if (rc != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == '(') {
    l->extended = 1;
    if ((rc = paren_list(c, 1, select_opt, &l->select_opts,
                         "Invalid list option")) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    /* RFC 5258 3: RECURSIVEMATCH needs an option it modifies. */
    if ((l->select_opts & MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH) &&
        !(l->select_opts & (MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED |
                            MAILPROTO_IMAP_LIST_SEL_SPECIAL_USE)))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid list option");
  }
  if ((rc = mailproto_imap_lex_astring(c, &l->reference)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) == '(') {
    l->extended = 1;
    rc = paren_list(c, 0, one_pattern, &acc, "Invalid mailbox name");
  } else {
    rc = one_pattern(c, &acc);
  }
  if (rc == 0)
    rc = finish_patterns(c, &acc, l);
  if (rc != 0 || mailproto_imap_lex_end(c))
    return rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  size_t n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (!mailproto_imap_lex_is(w, n, "RETURN"))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid return option");
  l->extended = 1;
  l->has_return = 1;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return paren_list(c, 1, return_opt, l, "Invalid return option");
}

int mailproto_imap_parse_lsub(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd) {
  mailproto_imap_collect acc;
  mailproto_imap_collect_init(&acc, sizeof(mailproto_imap_str));
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_astring(c, &cmd->u.list.reference);
  if (rc == 0)
    rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = one_pattern(c, &acc);
  if (rc == 0)
    rc = finish_patterns(c, &acc, &cmd->u.list);
  return rc;
}

/* ------------------------------------------------------------------ */
/* APPEND messages                                                     */
/* ------------------------------------------------------------------ */

static int finish_messages(mailproto_imap_cursor *c,
                           mailproto_imap_collect *col,
                           mailproto_imap_append *a) {
  return mailproto_imap_collect_finish(c, col, (void **)&a->messages,
                                       &a->message_count);
}

/*
 * *(SP [flag-list SP] [date-time SP] (literal / literal8)), the message
 * part of APPEND (RFC 3502 6: MULTIAPPEND repeats it). With
 * allow_trailing, a literal header that ends the data is the message to
 * stream: it is the last entry and MAILPROTO_IMAP_LEX_TRAILING is
 * returned.
 */
int mailproto_imap_parse_append_messages(mailproto_imap_cursor *c,
                                         mailproto_imap_command *cmd,
                                         int allow_trailing, int need_one) {
  mailproto_imap_collect messages;
  mailproto_imap_collect_init(&messages, sizeof(mailproto_imap_append_message));
  int rc;
  while (!mailproto_imap_lex_end(c) || (need_one && messages.count == 0)) {
    mailproto_imap_append_message *m;
    if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
        (rc = mailproto_imap_collect_add(c, &messages, (void **)&m)) != 0)
      return rc;
    if (mailproto_imap_lex_peek(c) == '(') {
      if ((rc = mailproto_imap_lex_flag_list(c, &m->flags)) != 0 ||
          (rc = mailproto_imap_lex_sp(c)) != 0)
        return rc;
      m->has_flags = 1;
    }
    if (mailproto_imap_lex_peek(c) == '"') {
      if ((rc = mailproto_imap_lex_date_time(c, &m->date)) != 0 ||
          (rc = mailproto_imap_lex_sp(c)) != 0)
        return rc;
      m->has_date = 1;
    }
    int trailing;
    const uint8_t *data = NULL;
    rc = mailproto_imap_lex_literal(c, 1, &trailing, &data, &m->size, &m->sync,
                                    &m->binary);
    if (rc < 0)
      return rc;
    if (rc == 0)
      return mailproto_imap_lex_fail(
          c, MAILPROTO_ERR_SYNTAX,
          mailproto_imap_lex_end(c) ? "Missing argument" : "Invalid literal");
    if (trailing && !allow_trailing)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid literal");
    /* RFC 3516 4.4: only literal8 may carry NUL. */
    if (!trailing && !m->binary && m->size &&
        memchr(data, '\0', (size_t)m->size))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "NUL in string");
    m->data = trailing ? NULL : data;
    if (trailing) {
      rc = finish_messages(c, &messages, &cmd->u.append);
      return rc ? rc : MAILPROTO_IMAP_LEX_TRAILING;
    }
  }
  return finish_messages(c, &messages, &cmd->u.append);
}
