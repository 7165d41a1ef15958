/*
 * SEARCH (RFC 3501 6.4.4, RFC 9051 6.4.4) with ESEARCH return options
 * (RFC 4731), SEARCHRES (RFC 5182) and MODSEQ (RFC 7162 3.1.5); SORT and
 * THREAD (RFC 5256). Keys become a tree; recursion is bounded before it
 * happens: parentheses by max_nesting, and parentheses, NOT and OR
 * together by SEARCH_FRAMES_PER_LEVEL times that (OR chains of a few
 * dozen levels are what real clients send for multi-address searches).
 */
#include <string.h>

#include "imap/imap_parse_internal.h"

#define SEARCH_FRAMES_PER_LEVEL 8u

typedef enum arg_kind {
  ARG_NONE,
  ARG_ASTRING,
  ARG_KEYWORD,
  ARG_DATE,
  ARG_NUMBER,
  ARG_SEQSET,
  ARG_HEADER,
  ARG_NOT,
  ARG_OR,
  ARG_MODSEQ
} arg_kind;

static const struct {
  const char *name;
  mailproto_imap_search_type type;
  arg_kind arg;
} keys[] = {
    {"ALL", MAILPROTO_IMAP_SEARCH_ALL, ARG_NONE},
    {"ANSWERED", MAILPROTO_IMAP_SEARCH_ANSWERED, ARG_NONE},
    {"BCC", MAILPROTO_IMAP_SEARCH_BCC, ARG_ASTRING},
    {"BEFORE", MAILPROTO_IMAP_SEARCH_BEFORE, ARG_DATE},
    {"BODY", MAILPROTO_IMAP_SEARCH_BODY, ARG_ASTRING},
    {"CC", MAILPROTO_IMAP_SEARCH_CC, ARG_ASTRING},
    {"DELETED", MAILPROTO_IMAP_SEARCH_DELETED, ARG_NONE},
    {"DRAFT", MAILPROTO_IMAP_SEARCH_DRAFT, ARG_NONE},
    {"FLAGGED", MAILPROTO_IMAP_SEARCH_FLAGGED, ARG_NONE},
    {"FROM", MAILPROTO_IMAP_SEARCH_FROM, ARG_ASTRING},
    {"HEADER", MAILPROTO_IMAP_SEARCH_HEADER, ARG_HEADER},
    {"KEYWORD", MAILPROTO_IMAP_SEARCH_KEYWORD, ARG_KEYWORD},
    {"LARGER", MAILPROTO_IMAP_SEARCH_LARGER, ARG_NUMBER},
    {"MODSEQ", MAILPROTO_IMAP_SEARCH_MODSEQ, ARG_MODSEQ},
    {"NEW", MAILPROTO_IMAP_SEARCH_NEW, ARG_NONE},
    {"NOT", MAILPROTO_IMAP_SEARCH_NOT, ARG_NOT},
    {"OLD", MAILPROTO_IMAP_SEARCH_OLD, ARG_NONE},
    {"ON", MAILPROTO_IMAP_SEARCH_ON, ARG_DATE},
    {"OR", MAILPROTO_IMAP_SEARCH_OR, ARG_OR},
    {"RECENT", MAILPROTO_IMAP_SEARCH_RECENT, ARG_NONE},
    {"SEEN", MAILPROTO_IMAP_SEARCH_SEEN, ARG_NONE},
    {"SENTBEFORE", MAILPROTO_IMAP_SEARCH_SENTBEFORE, ARG_DATE},
    {"SENTON", MAILPROTO_IMAP_SEARCH_SENTON, ARG_DATE},
    {"SENTSINCE", MAILPROTO_IMAP_SEARCH_SENTSINCE, ARG_DATE},
    {"SINCE", MAILPROTO_IMAP_SEARCH_SINCE, ARG_DATE},
    {"SMALLER", MAILPROTO_IMAP_SEARCH_SMALLER, ARG_NUMBER},
    {"SUBJECT", MAILPROTO_IMAP_SEARCH_SUBJECT, ARG_ASTRING},
    {"TEXT", MAILPROTO_IMAP_SEARCH_TEXT, ARG_ASTRING},
    {"TO", MAILPROTO_IMAP_SEARCH_TO, ARG_ASTRING},
    {"UID", MAILPROTO_IMAP_SEARCH_UID, ARG_SEQSET},
    {"UNANSWERED", MAILPROTO_IMAP_SEARCH_UNANSWERED, ARG_NONE},
    {"UNDELETED", MAILPROTO_IMAP_SEARCH_UNDELETED, ARG_NONE},
    {"UNDRAFT", MAILPROTO_IMAP_SEARCH_UNDRAFT, ARG_NONE},
    {"UNFLAGGED", MAILPROTO_IMAP_SEARCH_UNFLAGGED, ARG_NONE},
    {"UNKEYWORD", MAILPROTO_IMAP_SEARCH_UNKEYWORD, ARG_KEYWORD},
    {"UNSEEN", MAILPROTO_IMAP_SEARCH_UNSEEN, ARG_NONE},
};

static int search_key(mailproto_imap_cursor *c,
                      mailproto_imap_search_key **out);

static int too_deep(mailproto_imap_cursor *c) {
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                 "Too deeply nested");
}

static int new_key(mailproto_imap_cursor *c, mailproto_imap_search_type type,
                   mailproto_imap_search_key **out) {
  int rc = mailproto_imap_lex_alloc(c, sizeof **out, (void **)out);
  if (rc == 0)
    (*out)->type = type;
  return rc;
}

/* key *(SP key) up to `close` (")" for a parenthesised list, -1 for the
 * end of the command), as the children of an AND node. */
static int key_list(mailproto_imap_cursor *c, int close,
                    mailproto_imap_search_key **out) {
  mailproto_imap_search_key *and, **tail;
  int rc = new_key(c, MAILPROTO_IMAP_SEARCH_AND, &and);
  if (rc != 0)
    return rc;
  tail = &and->children;
  for (;;) {
    if ((rc = search_key(c, tail)) != 0)
      return rc;
    tail = &(*tail)->next;
    if (mailproto_imap_lex_peek(c) == close) {
      if (close >= 0)
        c->pos++;
      break;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
  }
  *out = and;
  return 0;
}

/* entry-flag-name = DQUOTE "/flags/" attr-flag DQUOTE (RFC 7162 7), where
 * attr-flag is a system flag ("\\" atom) or a keyword atom. */
static int entry_name_ok(const mailproto_imap_str *s) {
  static const char prefix[] = "/flags/";
  size_t n = sizeof prefix - 1;
  if (s->len <= n || memcmp(s->data, prefix, n) != 0)
    return 0;
  if (s->data[n] == '\\')
    n++;
  return mailproto_imap_is_atom(s->data + n, s->len - n);
}

static int key_argument(mailproto_imap_cursor *c, arg_kind arg,
                        mailproto_imap_search_key *k) {
  int rc;
  if (arg == ARG_NONE)
    return 0;
  if ((rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  switch (arg) {
  case ARG_ASTRING:
    return mailproto_imap_lex_astring(c, &k->str);
  case ARG_KEYWORD:
    return mailproto_imap_lex_atom(c, &k->str, "Invalid search key");
  case ARG_DATE:
    return mailproto_imap_lex_date(c, &k->date);
  case ARG_NUMBER:
    return mailproto_imap_lex_number64(c, &k->number, 0);
  case ARG_SEQSET:
    return mailproto_imap_lex_seqset(c, 1, &k->set);
  case ARG_HEADER:
    if ((rc = mailproto_imap_lex_astring(c, &k->field)) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    return mailproto_imap_lex_astring(c, &k->str);
  case ARG_NOT:
    return search_key(c, &k->children);
  case ARG_OR:
    if ((rc = search_key(c, &k->children)) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    return search_key(c, &k->children->next);
  case ARG_MODSEQ:
    /* "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer */
    if (mailproto_imap_lex_peek(c) == '"') {
      size_t n;
      const uint8_t *w;
      if ((rc = mailproto_imap_lex_string(c, &k->str)) != 0 ||
          (rc = mailproto_imap_lex_sp(c)) != 0)
        return rc;
      if (!entry_name_ok(&k->str))
        return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                       "Invalid search key");
      size_t start = c->pos;
      w = mailproto_imap_lex_atom_run(c, &n);
      if (!mailproto_imap_lex_is(w, n, "priv") &&
          !mailproto_imap_lex_is(w, n, "shared") &&
          !mailproto_imap_lex_is(w, n, "all"))
        return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                       "Invalid search key");
      if ((rc = mailproto_imap_lex_copy(c, c->s + start, n, &k->entry_type)) !=
              0 ||
          (rc = mailproto_imap_lex_sp(c)) != 0)
        return rc;
    }
    return mailproto_imap_lex_number64(c, &k->number, 0);
  default:
    return 0;
  }
}

static int search_key(mailproto_imap_cursor *c,
                      mailproto_imap_search_key **out) {
  unsigned max_frames = c->p->limits.max_nesting * SEARCH_FRAMES_PER_LEVEL;
  if (c->frames >= max_frames)
    return too_deep(c);
  int ch = mailproto_imap_lex_peek(c);
  int rc;
  c->frames++;
  if (ch == '(') {
    if (c->depth >= c->p->limits.max_nesting) {
      c->frames--;
      return too_deep(c);
    }
    c->pos++;
    c->depth++;
    rc = key_list(c, ')', out);
    c->depth--;
  } else if ((ch >= '0' && ch <= '9') || ch == '*' || ch == '$') {
    rc = new_key(c, MAILPROTO_IMAP_SEARCH_SEQSET, out);
    if (rc == 0)
      rc = mailproto_imap_lex_seqset(c, 1, &(*out)->set);
  } else {
    size_t n;
    const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
    size_t i = 0;
    while (i < sizeof keys / sizeof keys[0] &&
           !mailproto_imap_lex_is(w, n, keys[i].name))
      i++;
    if (i == sizeof keys / sizeof keys[0]) {
      rc = mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   n == 0 && ch < 0 ? "Missing argument"
                                                    : "Invalid search key");
    } else {
      rc = new_key(c, keys[i].type, out);
      if (rc == 0)
        rc = key_argument(c, keys[i].arg, *out);
    }
  }
  c->frames--;
  return rc;
}

/* Leaves the cursor after `word` and a space if the next token is it. */
static int take_word(mailproto_imap_cursor *c, const char *word) {
  size_t save = c->pos, n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (mailproto_imap_lex_is(w, n, word) && mailproto_imap_lex_peek(c) == ' ') {
    c->pos++;
    return 1;
  }
  c->pos = save;
  return 0;
}

static int return_options(mailproto_imap_cursor *c, mailproto_imap_search *s) {
  static const struct {
    const char *name;
    unsigned bit;
  } opts[] = {{"MIN", MAILPROTO_IMAP_RETURN_MIN},
              {"MAX", MAILPROTO_IMAP_RETURN_MAX},
              {"ALL", MAILPROTO_IMAP_RETURN_ALL},
              {"COUNT", MAILPROTO_IMAP_RETURN_COUNT},
              {"SAVE", MAILPROTO_IMAP_RETURN_SAVE}};
  int rc = mailproto_imap_lex_char(c, '(', "Invalid return option");
  if (rc != 0)
    return rc;
  s->has_return = 1;
  while (mailproto_imap_lex_peek(c) != ')') {
    if (s->return_opts && (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    size_t n, i = 0;
    const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
    while (i < sizeof opts / sizeof opts[0] &&
           !mailproto_imap_lex_is(w, n, opts[i].name))
      i++;
    if (i == sizeof opts / sizeof opts[0])
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     n == 0 && mailproto_imap_lex_end(c)
                                         ? "Missing argument"
                                         : "Invalid return option");
    s->return_opts |= opts[i].bit;
  }
  c->pos++;
  /* RFC 4731 3.1: "RETURN ()" means ALL. */
  if (s->return_opts == 0)
    s->return_opts = MAILPROTO_IMAP_RETURN_ALL;
  return mailproto_imap_lex_sp(c);
}

int mailproto_imap_parse_search(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd) {
  mailproto_imap_search *s = &cmd->u.search;
  int rc = mailproto_imap_lex_sp(c);
  if (rc != 0)
    return rc;
  if (take_word(c, "RETURN") && (rc = return_options(c, s)) != 0)
    return rc;
  if (take_word(c, "CHARSET")) {
    if ((rc = mailproto_imap_lex_astring(c, &s->charset)) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    s->has_charset = 1;
  }
  return key_list(c, -1, &s->key);
}

static int sort_criteria(mailproto_imap_cursor *c, mailproto_imap_sort *s) {
  static const struct {
    const char *name;
    mailproto_imap_sort_key key;
  } names[] = {{"ARRIVAL", MAILPROTO_IMAP_SORT_ARRIVAL},
               {"CC", MAILPROTO_IMAP_SORT_CC},
               {"DATE", MAILPROTO_IMAP_SORT_DATE},
               {"FROM", MAILPROTO_IMAP_SORT_FROM},
               {"SIZE", MAILPROTO_IMAP_SORT_SIZE},
               {"SUBJECT", MAILPROTO_IMAP_SORT_SUBJECT},
               {"TO", MAILPROTO_IMAP_SORT_TO}};
  int rc = mailproto_imap_lex_char(c, '(', "Invalid sort criterion");
  if (rc != 0)
    return rc;
  /* Each criterion takes at least 2 bytes ("CC"): count spaces to size
   * the array once. */
  unsigned cap = 1;
  for (size_t i = c->pos; i < c->len && c->s[i] != ')'; i++)
    cap += c->s[i] == ' ';
  void *mem;
  if ((rc = mailproto_imap_lex_array(c, cap, sizeof *s->criteria, &mem)) != 0)
    return rc;
  s->criteria = mem;
  for (;;) {
    mailproto_imap_sort_criterion *cr = &s->criteria[s->criteria_count];
    cr->reverse = take_word(c, "REVERSE");
    size_t n, i = 0;
    const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
    while (i < sizeof names / sizeof names[0] &&
           !mailproto_imap_lex_is(w, n, names[i].name))
      i++;
    if (i == sizeof names / sizeof names[0])
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid sort criterion");
    cr->key = names[i].key;
    s->criteria_count++;
    if (mailproto_imap_lex_peek(c) == ')') {
      c->pos++;
      return 0;
    }
    if ((rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    if (s->criteria_count == cap)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid sort criterion");
  }
}

/* sort = ["UID" SP] "SORT" SP sort-criteria SP search-criteria, where
 * search-criteria = charset 1*(SP search-key) (RFC 5256 5). */
int mailproto_imap_parse_sort(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd) {
  mailproto_imap_sort *s = &cmd->u.sort;
  int rc;
  if ((rc = mailproto_imap_lex_sp(c)) != 0 || (rc = sort_criteria(c, s)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_astring(c, &s->charset)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return key_list(c, -1, &s->key);
}

int mailproto_imap_parse_thread(mailproto_imap_cursor *c,
                                mailproto_imap_command *cmd) {
  mailproto_imap_thread *t = &cmd->u.thread;
  int rc = mailproto_imap_lex_sp(c);
  if (rc != 0)
    return rc;
  size_t n;
  const uint8_t *w = mailproto_imap_lex_atom_run(c, &n);
  if (mailproto_imap_lex_is(w, n, "ORDEREDSUBJECT"))
    t->algorithm = MAILPROTO_IMAP_THREAD_ORDEREDSUBJECT;
  else if (mailproto_imap_lex_is(w, n, "REFERENCES"))
    t->algorithm = MAILPROTO_IMAP_THREAD_REFERENCES;
  else
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   n == 0 && mailproto_imap_lex_end(c)
                                       ? "Missing argument"
                                       : "Unknown thread algorithm");
  if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
      (rc = mailproto_imap_lex_astring(c, &t->charset)) != 0 ||
      (rc = mailproto_imap_lex_sp(c)) != 0)
    return rc;
  return key_list(c, -1, &t->key);
}
