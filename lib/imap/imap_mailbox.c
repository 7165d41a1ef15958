/*
 * Commands about mailboxes and the session itself: CAPABILITY (RFC 3501
 * 6.1.1), ID (RFC 2971), ENABLE (RFC 5161, RFC 9051 6.3.1), NAMESPACE
 * (RFC 2342), SELECT and EXAMINE (RFC 3501 6.3.1-2, RFC 9051 6.3.2-3),
 * CREATE with USE (RFC 6154 3), DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE,
 * LIST with the LIST-EXTENDED options (RFC 5258), SPECIAL-USE attributes
 * (RFC 6154), CHILDREN (RFC 3348) and LIST-STATUS (RFC 5819), LSUB, and
 * STATUS with SIZE, DELETED and APPENDLIMIT (RFC 9051 6.3.11, RFC 7889).
 *
 * Mailbox names are UTF-8 with "/" between levels at the store; on the
 * wire they are modified UTF-7 (RFC 3501 5.1.3) until the client enables
 * UTF-8 (RFC 6855 3, RFC 9051 5.1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "imap/imap_search.h"
#include "store/store_call.h"

/* ------------------------------------------------------------------ */
/* CAPABILITY, ID, ENABLE, NAMESPACE                                   */
/* ------------------------------------------------------------------ */

/* Appends " word" to out (length *n); -1 when it does not fit. */
static int cap_add(char *out, size_t size, size_t *n, const char *word) {
  size_t w = strlen(word);
  if (*n + w + 2 > size)
    return -1;
  if (*n > 0)
    out[(*n)++] = ' ';
  memcpy(out + *n, word, w + 1);
  *n += w;
  return 0;
}

int mailproto_imap_capabilities(mailproto_imap *s, char *out, size_t size) {
  static const char *const fixed[] = {
      "IMAP4rev1",
      "IMAP4rev2",
      "SASL-IR",
      "ID",
      "ENABLE",
      "IDLE",
      "NAMESPACE",
      "UNSELECT",
      "UIDPLUS",
      "MOVE",
      "CHILDREN",
      "LIST-EXTENDED",
      "LIST-STATUS",
      "SPECIAL-USE",
      "CREATE-SPECIAL-USE",
      "STATUS=SIZE",
      "UTF8=ACCEPT",
      "ESEARCH",
      "SEARCHRES",
      "SORT",
      "THREAD=ORDEREDSUBJECT",
      "THREAD=REFERENCES",
      "BINARY",
      "CONDSTORE",
      "QRESYNC",
  };
  size_t n = 0;
  out[0] = '\0';
  if (cap_add(out, size, &n, "CAPABILITY") != 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
    if (cap_add(out, size, &n, fixed[i]) != 0)
      return MAILPROTO_ERR_BUFFER_FULL;
  /* RFC 7888: LITERAL+ and LITERAL- are never advertised together. */
  if (cap_add(out, size, &n, s->config.literal_minus ? "LITERAL-" : "LITERAL+"))
    return MAILPROTO_ERR_BUFFER_FULL;
  char word[64];
  if (s->config.max_append)
    snprintf(word, sizeof word, "APPENDLIMIT=%llu",
             (unsigned long long)s->config.max_append);
  else
    snprintf(word, sizeof word, "APPENDLIMIT");
  if (cap_add(out, size, &n, word) != 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  if (s->state != IMAP_NOT_AUTH && s->state != IMAP_GREETING)
    return (int)n;
  /* Before login: how to log in (RFC 3501 6.2, RFC 9051 7.2.2). */
  if (s->cb.start_tls && !s->io.secure &&
      cap_add(out, size, &n, "STARTTLS") != 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  char mechs[64];
  int m =
      mailproto_sasl_list(s->config.sasl_mechanisms, s->io.secure,
                          s->config.allow_insecure_auth, mechs, sizeof mechs);
  if (m < 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  for (const char *p = mechs; *p;) {
    size_t w = strcspn(p, " ");
    snprintf(word, sizeof word, "AUTH=%.*s", (int)w, p);
    if (cap_add(out, size, &n, word) != 0)
      return MAILPROTO_ERR_BUFFER_FULL;
    p += w + (p[w] == ' ');
  }
  if (!s->io.secure && !s->config.allow_insecure_auth &&
      cap_add(out, size, &n, "LOGINDISABLED") != 0)
    return MAILPROTO_ERR_BUFFER_FULL;
  return (int)n;
}

int mailproto_imap_cmd_capability(mailproto_imap *s) {
  char caps[IMAP_CAPABILITY_MAX];
  if (mailproto_imap_capabilities(s, caps, sizeof caps) < 0)
    return MAILPROTO_ERR_INTERNAL;
  int rc = mailproto_imap_printf(s, "* %s\r\n", caps);
  return rc != 0 ? rc
                 : mailproto_imap_done(s, "OK", NULL, "CAPABILITY completed");
}

int mailproto_imap_cmd_id(mailproto_imap *s) {
  /* RFC 2971 3.1: the server's own fields, or NIL. What the client sent
   * is not kept (nothing here needs it). */
  int rc = mailproto_imap_write_raw(&s->line, "* ID ");
  if (rc == 0 && !s->config.id_name)
    rc = mailproto_imap_write_raw(&s->line, "NIL");
  else if (rc == 0) {
    rc = mailproto_imap_write_raw(&s->line, "(\"name\" ");
    if (rc == 0)
      rc = mailproto_imap_write_string(&s->line, s->config.id_name,
                                       strlen(s->config.id_name), 0);
    if (rc == 0)
      rc = mailproto_imap_write_raw(&s->line, ")");
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, "\r\n");
  if (rc == 0)
    rc = mailproto_imap_emit(s);
  return rc != 0 ? rc : mailproto_imap_done(s, "OK", NULL, "ID completed");
}

static int ascii_caseeq(const char *a, size_t n, const char *b) {
  if (strlen(b) != n)
    return 0;
  for (size_t i = 0; i < n; i++) {
    char x = a[i], y = b[i];
    if (x >= 'a' && x <= 'z')
      x = (char)(x - 'a' + 'A');
    if (y >= 'a' && y <= 'z')
      y = (char)(y - 'a' + 'A');
    if (x != y)
      return 0;
  }
  return 1;
}

int mailproto_imap_condstore_enable(mailproto_imap *s, int uses_modseq) {
  int selected = s->state == IMAP_SELECTED && s->sel.view;
  if (selected && uses_modseq && s->sel.nomodseq) {
    int rc =
        mailproto_imap_done(s, "BAD", NULL, "The mailbox has no mod-sequences");
    return rc != 0 ? rc : 1;
  }
  if (s->condstore)
    return 0;
  s->condstore = 1;
  if (!selected)
    return 0;
  /* RFC 7162 3.1: HIGHESTMODSEQ now, or for a mailbox without
   * mod-sequences the NOMODSEQ its SELECT did not send. */
  if (s->sel.nomodseq)
    return mailproto_imap_untagged(s, "OK", "NOMODSEQ",
                                   "No permanent mod-sequences");
  mailproto_imap_view_set_condstore(s->sel.view, 1);
  char code[48];
  snprintf(code, sizeof code, "HIGHESTMODSEQ %llu",
           (unsigned long long)mailproto_imap_view_safe_modseq(s->sel.view));
  return mailproto_imap_untagged(s, "OK", code, "Highest");
}

int mailproto_imap_cmd_enable(mailproto_imap *s) {
  int rev2 = 0, utf8 = 0, condstore = 0, qresync = 0;
  for (unsigned i = 0; i < s->cmd.u.enable.count; i++) {
    const mailproto_imap_str *c = &s->cmd.u.enable.capabilities[i];
    /* RFC 5161 3.1: unknown names are ignored; each ENABLED lists only
     * what this command turned on. */
    if (ascii_caseeq(c->data, c->len, "IMAP4rev2") && !s->rev2)
      rev2 = 1;
    else if (ascii_caseeq(c->data, c->len, "UTF8=ACCEPT") && !s->utf8)
      utf8 = 1;
    else if (ascii_caseeq(c->data, c->len, "CONDSTORE") && !s->condstore)
      condstore = 1;
    else if (ascii_caseeq(c->data, c->len, "QRESYNC") && !s->qresync)
      qresync = 1;
  }
  int rc = mailproto_imap_printf(
      s, "* ENABLED%s%s%s%s\r\n", rev2 ? " IMAP4rev2" : "",
      utf8 ? " UTF8=ACCEPT" : "", condstore ? " CONDSTORE" : "",
      qresync ? " QRESYNC" : "");
  /* RFC 7162 3.2.3: ENABLE QRESYNC is a CONDSTORE enabling command. */
  if (rc == 0 && (condstore || qresync))
    rc = mailproto_imap_condstore_enable(s, 0);
  if (qresync)
    s->qresync = 1;
  if (rc != 0)
    return rc;
  if (rev2)
    s->rev2 = 1;
  /* RFC 9051 5.1: IMAP4rev2 names and strings are UTF-8. */
  if (rev2 || utf8) {
    s->utf8 = 1;
    mailproto_imap_parser_set_utf8(&s->parser, 1);
  }
  return mailproto_imap_done(s, "OK", NULL, "ENABLE completed");
}

int mailproto_imap_cmd_namespace(mailproto_imap *s) {
  /* RFC 2342 5: one personal namespace, the root, with "/". */
  int rc = mailproto_imap_printf(s, "* NAMESPACE ((\"\" \"/\")) NIL NIL\r\n");
  return rc != 0 ? rc
                 : mailproto_imap_done(s, "OK", NULL, "NAMESPACE completed");
}

/* ------------------------------------------------------------------ */
/* Names                                                               */
/* ------------------------------------------------------------------ */

/* RFC 3501 5.1: the first level INBOX in any case is INBOX. */
static void canon_inbox(char *name) {
  if (mailproto_imap_is_inbox(name, strlen(name)) ||
      (mailproto_imap_is_inbox(name, 5) && strlen(name) > 5 &&
       name[5] == MAILPROTO_MAILBOX_SEPARATOR))
    memcpy(name, "INBOX", 5);
}

int mailproto_imap_mailbox_name(mailproto_imap *s, const mailproto_imap_str *in,
                                int pattern, char **out) {
  *out = NULL;
  /* A pattern may be as long as a reference plus a pattern; names are
   * bounded by the store's limit. */
  size_t max =
      pattern ? 2 * MAILPROTO_MAILBOX_NAME_MAX : MAILPROTO_MAILBOX_NAME_MAX;
  if (in->len > 4 * max)
    return MAILPROTO_ERR_BAD_NAME;
  size_t size = 2 * in->len + 1;
  char *name = mailproto_mem_malloc(&s->alloc, size);
  if (!name)
    return MAILPROTO_ERR_NOMEM;
  size_t len;
  if (s->utf8) {
    const unsigned char *u = (const unsigned char *)in->data;
    for (size_t i = 0; i < in->len; i++)
      if (u[i] < 0x20 || u[i] == 0x7f) {
        mailproto_mem_free(&s->alloc, name);
        return MAILPROTO_ERR_SYNTAX;
      }
    if (!mailproto_imap_is_utf8(in->data, in->len)) {
      mailproto_mem_free(&s->alloc, name);
      return MAILPROTO_ERR_SYNTAX;
    }
    memcpy(name, in->data, in->len);
    name[in->len] = '\0';
    len = in->len;
  } else {
    long n = mailproto_mutf7_to_utf8(in->data, in->len, name, size);
    if (n < 0) {
      mailproto_mem_free(&s->alloc, name);
      return MAILPROTO_ERR_SYNTAX;
    }
    len = (size_t)n;
  }
  canon_inbox(name);
  if (len > max || (!pattern && mailproto_mailbox_name_check(name) != 0)) {
    mailproto_mem_free(&s->alloc, name);
    return MAILPROTO_ERR_BAD_NAME;
  }
  *out = name;
  return 0;
}

/* Converts the command's mailbox argument; on a bad name decides the
 * reply (BAD for broken encoding, NO with `bad_code` for an impossible
 * name) and returns 1. */
static int take_name(mailproto_imap *s, const mailproto_imap_str *in,
                     const char *bad_code, char **out) {
  int rc = mailproto_imap_mailbox_name(s, in, 0, out);
  if (rc == MAILPROTO_ERR_SYNTAX)
    rc = mailproto_imap_done(s, "BAD", NULL, "Invalid mailbox name");
  else if (rc == MAILPROTO_ERR_BAD_NAME)
    rc = mailproto_imap_done(s, "NO", bad_code, "Invalid mailbox name");
  else
    return rc;
  return rc != 0 ? rc : 1;
}

/* ------------------------------------------------------------------ */
/* SELECT and EXAMINE                                                  */
/* ------------------------------------------------------------------ */

void mailproto_imap_unselect(mailproto_imap *s) {
  if (s->sel.handle)
    mailproto_store_call_close(&s->store, s->sel.handle);
  s->sel.handle = NULL;
  mailproto_imap_view_free(s->sel.view);
  s->sel.view = NULL;
  mailproto_imap_meta_free(s);
  mailproto_mem_free(&s->alloc, s->sel.name);
  s->sel.name = NULL;
  s->sel.readonly = 0;
  s->sel.dirty = 0;
  /* RFC 5182 2.1: "$" is empty in a newly selected mailbox. */
  mailproto_imap_search_forget(s);
  if (s->state == IMAP_SELECTED)
    s->state = IMAP_AUTH;
}

int mailproto_imap_cmd_select(mailproto_imap *s) {
  const mailproto_imap_select *a = &s->cmd.u.select;
  char *name;
  /* RFC 9051 6.3.2: a SELECT always leaves the old mailbox, even when it
   * fails; [CLOSED] tells the client where the old one's responses end
   * (RFC 7162 3.2.11 introduced it; IMAP4rev2 has it in the base). */
  if (s->state == IMAP_SELECTED) {
    mailproto_imap_unselect(s);
    int rc = mailproto_imap_untagged(s, "OK", "CLOSED",
                                     "Previous mailbox is now closed");
    if (rc != 0)
      return rc;
  }
  int rc = take_name(s, &a->mailbox, "NONEXISTENT", &name);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  /* RFC 7162 3.2.5: QRESYNC only after ENABLE QRESYNC. */
  if (a->qresync && !s->qresync) {
    mailproto_mem_free(&s->alloc, name);
    return mailproto_imap_done(s, "BAD", NULL, "QRESYNC is not enabled");
  }
  /* RFC 7162 3.1.8: enabling; the reply below carries HIGHESTMODSEQ. */
  if (a->condstore || a->qresync)
    s->condstore = 1;
  s->sel.name = name;
  s->sel.readonly = s->cmd.id == MAILPROTO_IMAP_CMD_EXAMINE;
  if ((rc = mailproto_imap_view_new(&s->alloc, &s->sel.view)) != 0)
    return rc;
  return mailproto_imap_after_op(
      s, IMAP_OP_OPEN,
      mailproto_store_call_open(
          &s->store, &s->io.op, IMAP_OP_OPEN, s->account, name,
          s->sel.readonly ? MAILPROTO_OPEN_READONLY : 0u, mailproto_imap_notify,
          s, &s->sel.handle, &s->status));
}

/* Writes " (attr attr ...)" of a LIST or LSUB line. */
static int write_attributes(mailproto_imap *s, unsigned a, int lsub,
                            int subscribed_shown) {
  static const struct {
    unsigned bit;
    const char *name;
  } names[] = {{MAILPROTO_MBOX_NOINFERIORS, "\\Noinferiors"},
               {MAILPROTO_MBOX_HAS_CHILDREN, "\\HasChildren"},
               {MAILPROTO_MBOX_HAS_NO_CHILDREN, "\\HasNoChildren"},
               {MAILPROTO_MBOX_MARKED, "\\Marked"},
               {MAILPROTO_MBOX_UNMARKED, "\\Unmarked"},
               {MAILPROTO_MBOX_SUBSCRIBED, "\\Subscribed"},
               {MAILPROTO_MBOX_SPECIAL_ALL, "\\All"},
               {MAILPROTO_MBOX_SPECIAL_ARCHIVE, "\\Archive"},
               {MAILPROTO_MBOX_SPECIAL_DRAFTS, "\\Drafts"},
               {MAILPROTO_MBOX_SPECIAL_FLAGGED, "\\Flagged"},
               {MAILPROTO_MBOX_SPECIAL_JUNK, "\\Junk"},
               {MAILPROTO_MBOX_SPECIAL_SENT, "\\Sent"},
               {MAILPROTO_MBOX_SPECIAL_TRASH, "\\Trash"}};
  mailproto_buf *b = &s->line;
  int first = 1;
  int rc = mailproto_imap_write_raw(b, "(");
  /* RFC 5258 3: \NonExistent (which implies \Noselect) in extended
   * replies; LSUB and plain LIST say \Noselect. */
  const char *nosel = NULL;
  if (a & MAILPROTO_MBOX_NONEXISTENT)
    nosel = lsub ? "\\Noselect" : "\\NonExistent";
  else if (a & MAILPROTO_MBOX_NOSELECT)
    nosel = "\\Noselect";
  if (rc == 0 && nosel) {
    rc = mailproto_imap_write_raw(b, nosel);
    first = 0;
  }
  /* RFC 3501 6.3.9: LSUB's attributes need not be accurate; only
   * \Noselect means something there. */
  for (size_t i = 0; rc == 0 && !lsub && i < sizeof names / sizeof names[0];
       i++) {
    if (!(a & names[i].bit))
      continue;
    if (names[i].bit == MAILPROTO_MBOX_SUBSCRIBED && !subscribed_shown)
      continue;
    if (!first)
      rc = mailproto_imap_write_raw(b, " ");
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, names[i].name);
    first = 0;
  }
  return rc == 0 ? mailproto_imap_write_raw(b, ")") : rc;
}

/* One "* LIST (...) "/" name" line in s->line (not emitted). Returns
 * INVALID_ARGUMENT for a name the wire cannot carry. */
static int write_list_line(mailproto_imap *s, const char *what,
                           const char *name, unsigned attrs, int lsub,
                           int subscribed_shown, int childinfo) {
  size_t mark = s->line.len;
  int rc = mailproto_imap_write_raw(&s->line, "* ");
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, what);
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, " ");
  if (rc == 0)
    rc = write_attributes(s, attrs, lsub, subscribed_shown);
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, " \"/\" ");
  if (rc == 0)
    rc = mailproto_imap_write_mailbox(&s->line, name, strlen(name),
                                      mailproto_imap_wflags(s));
  /* RFC 5258 3.5: CHILDINFO extended data. */
  if (rc == 0 && childinfo)
    rc =
        mailproto_imap_write_raw(&s->line, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, "\r\n");
  if (rc != 0)
    s->line.len = mark;
  return rc;
}

static int qresync_select(mailproto_imap *s);

static int select_responses(mailproto_imap *s) {
  mailproto_imap_view *v = s->sel.view;
  int rc = mailproto_imap_printf(s, "* %lu EXISTS\r\n",
                                 (unsigned long)mailproto_imap_view_exists(v));
  /* RFC 3501 6.3.1: RECENT and [UNSEEN] are IMAP4rev1's (RFC 9051 dropped
   * them). */
  if (rc == 0 && !s->rev2)
    rc = mailproto_imap_printf(s, "* %lu RECENT\r\n",
                               (unsigned long)mailproto_imap_view_recent(v));
  uint32_t unseen = s->rev2 ? 0 : mailproto_imap_view_first_unseen(v);
  char code[64];
  if (rc == 0 && unseen) {
    snprintf(code, sizeof code, "UNSEEN %lu", (unsigned long)unseen);
    rc = mailproto_imap_untagged(s, "OK", code, "First unseen");
  }
  if (rc == 0) {
    snprintf(code, sizeof code, "UIDVALIDITY %lu",
             (unsigned long)mailproto_imap_view_uidvalidity(v));
    rc = mailproto_imap_untagged(s, "OK", code, "UIDs valid");
  }
  if (rc == 0) {
    snprintf(code, sizeof code, "UIDNEXT %lu",
             (unsigned long)mailproto_imap_view_uidnext(v));
    rc = mailproto_imap_untagged(s, "OK", code, "Predicted next UID");
  }
  if (rc == 0)
    rc = mailproto_imap_write_flag_lists(s);
  /* RFC 7162 3.1.2: HIGHESTMODSEQ always (clients may ask for it before
   * enabling CONDSTORE); NOMODSEQ, for a store that keeps none, once
   * CONDSTORE is on. */
  uint64_t hms = mailproto_imap_view_highest_modseq(v);
  s->sel.nomodseq = hms == 0;
  mailproto_imap_view_set_condstore(v, s->condstore && hms != 0);
  if (rc == 0 && hms) {
    snprintf(code, sizeof code, "HIGHESTMODSEQ %llu", (unsigned long long)hms);
    rc = mailproto_imap_untagged(s, "OK", code, "Highest");
  } else if (rc == 0 && s->condstore) {
    rc = mailproto_imap_untagged(s, "OK", "NOMODSEQ",
                                 "No permanent mod-sequences");
  }
  if (rc == 0 && s->cmd.u.select.qresync)
    rc = qresync_select(s);
  /* RFC 9051 6.3.2: IMAP4rev2 wants the mailbox's LIST line. */
  if (rc == 0 && s->rev2) {
    rc = write_list_line(s, "LIST", s->sel.name,
                         s->select_found ? s->select_attrs : 0, 0, 0, 0);
    if (rc == 0)
      rc = mailproto_imap_emit(s);
  }
  if (rc != 0)
    return rc;
  return mailproto_imap_done(
      s, "OK", s->sel.readonly ? "READ-ONLY" : "READ-WRITE",
      s->cmd.id == MAILPROTO_IMAP_CMD_EXAMINE ? "EXAMINE completed"
                                              : "SELECT completed");
}

/* RFC 7162 3.2.5.2: the UID of the last (seq, UID) pair of the client's
 * sample that still holds, walking the two sets in step up to the first
 * that does not; UIDs up to it need no VANISHED. 0: none holds. */
static uint32_t seq_match_bound(mailproto_imap *s) {
  const mailproto_imap_select *a = &s->cmd.u.select;
  const mailproto_imap_view *v = s->sel.view;
  uint32_t exists = mailproto_imap_view_exists(v), bound = 0;
  const mailproto_imap_seqset *seqs = &a->known_seqs;
  const mailproto_imap_seqset *uids = &a->known_seq_uids;
  unsigned rs = 0, ru = 0;
  uint32_t seq = 0, uid = 0; /* 0: at the start of the current range */
  while (rs < seqs->count && ru < uids->count) {
    const mailproto_imap_range *sr = &seqs->ranges[rs];
    const mailproto_imap_range *ur = &uids->ranges[ru];
    if (sr->first == MAILPROTO_IMAP_SEQ_STAR ||
        sr->last == MAILPROTO_IMAP_SEQ_STAR ||
        ur->first == MAILPROTO_IMAP_SEQ_STAR ||
        ur->last == MAILPROTO_IMAP_SEQ_STAR)
      break; /* "*" has no place in a sample */
    uint32_t s_lo = sr->first < sr->last ? sr->first : sr->last;
    uint32_t s_hi = sr->first < sr->last ? sr->last : sr->first;
    uint32_t u_lo = ur->first < ur->last ? ur->first : ur->last;
    uint32_t u_hi = ur->first < ur->last ? ur->last : ur->first;
    if (seq == 0)
      seq = s_lo;
    if (uid == 0)
      uid = u_lo;
    if (seq > exists || mailproto_imap_view_uid(v, seq - 1) != uid)
      break;
    bound = uid;
    if (seq == s_hi) {
      rs++;
      seq = 0;
    } else {
      seq++;
    }
    if (uid == u_hi) {
      ru++;
      uid = 0;
    } else {
      uid++;
    }
  }
  return bound;
}

/* RFC 7162 3.2.5.1: after the usual replies, the known UIDs that are
 * gone (VANISHED (EARLIER), first among the announcements) and FETCH for
 * what changed since the client's mod-sequence (queued as announcements,
 * so they stream). A different UIDVALIDITY, or a mailbox without
 * mod-sequences, gets nothing more. */
static int qresync_select(mailproto_imap *s) {
  const mailproto_imap_select *a = &s->cmd.u.select;
  mailproto_imap_view *v = s->sel.view;
  if (s->sel.nomodseq || a->uidvalidity != mailproto_imap_view_uidvalidity(v))
    return 0;
  uint32_t bound = a->has_seq_match ? seq_match_bound(s) : 0;
  uint32_t lowest = bound == UINT32_MAX ? UINT32_MAX : bound + 1;
  int rc = mailproto_imap_vanished_begin(
      s, a->has_known_uids ? &a->known_uids : NULL, lowest);
  uint32_t exists = mailproto_imap_view_exists(v);
  uint32_t star = exists ? mailproto_imap_view_uid(v, exists - 1) : 0;
  /* The known UIDs sorted and merged, walked beside the messages (whose
   * UIDs ascend): one pass over both. */
  mailproto_imap_range *known = NULL;
  size_t nk = 0, r = 0;
  if (rc == 0 && a->has_known_uids) {
    known =
        mailproto_mem_calloc(&s->alloc, a->known_uids.count + 1, sizeof *known);
    if (!known)
      return MAILPROTO_ERR_NOMEM;
    nk = mailproto_imap_seqset_normalize(&a->known_uids, star, known);
  }
  for (uint32_t i = 0; rc == 0 && i < exists; i++) {
    uint32_t uid = mailproto_imap_view_uid(v, i);
    if (known) {
      while (r < nk && known[r].last < uid)
        r++;
      if (r == nk)
        break;
      if (uid < known[r].first)
        continue;
    }
    if (mailproto_imap_view_modseq(v, i) <= a->modseq)
      continue;
    /* Its flags stay; the message is queued to be announced with them. */
    rc = mailproto_imap_view_store_own(v, i, MAILPROTO_FLAGS_ADD, 0, 0, 1);
  }
  mailproto_mem_free(&s->alloc, known);
  return rc;
}

static int opened(mailproto_imap *s, int rc) {
  if (rc != 0) {
    /* The view may hold half an open: forget it all. */
    s->sel.handle = NULL;
    mailproto_imap_unselect(s);
    return mailproto_imap_fail(s, rc, NULL);
  }
  mailproto_imap_view_status(s->sel.view, &s->status);
  mailproto_imap_view_opened(s->sel.view);
  mailproto_imap_meta_opened(s);
  s->state = IMAP_SELECTED;
  s->sel.dirty = 0;
  if (!s->rev2)
    return select_responses(s);
  s->select_found = 0;
  s->select_attrs = 0;
  return mailproto_imap_after_op(
      s, IMAP_OP_SELECT_LIST,
      mailproto_store_call_list(&s->store, &s->io.op, IMAP_OP_SELECT_LIST,
                                s->account, s->sel.name, 0));
}

/* ------------------------------------------------------------------ */
/* CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE                      */
/* ------------------------------------------------------------------ */

static int store_result(mailproto_imap *s, int rc, const char *ok) {
  if (rc != 0)
    return mailproto_imap_fail(s, rc, NULL);
  return mailproto_imap_done(s, "OK", NULL, ok);
}

int mailproto_imap_cmd_create(mailproto_imap *s) {
  mailproto_imap_str in = s->cmd.u.create.mailbox;
  /* RFC 3501 6.3.3: a trailing separator declares a parent to be. */
  while (in.len > 1 && in.data[in.len - 1] == MAILPROTO_MAILBOX_SEPARATOR)
    in.len--;
  if (s->cmd.u.create.use_unknown)
    return mailproto_imap_done(s, "NO", "USEATTR",
                               "Unsupported special-use attribute");
  char *name;
  int rc = take_name(s, &in, "CANNOT", &name);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  rc = mailproto_store_call_create(&s->store, &s->io.op, IMAP_OP_CREATE,
                                   s->account, name, s->cmd.u.create.use);
  mailproto_mem_free(&s->alloc, name);
  return mailproto_imap_after_op(s, IMAP_OP_CREATE, rc);
}

int mailproto_imap_cmd_delete(mailproto_imap *s) {
  char *name;
  int rc = take_name(s, &s->cmd.u.mailbox.mailbox, "NONEXISTENT", &name);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  if (mailproto_mailbox_is_inbox(name)) {
    /* RFC 3501 6.3.4: it is an error to delete INBOX. */
    mailproto_mem_free(&s->alloc, name);
    return mailproto_imap_done(s, "NO", "CANNOT", "INBOX cannot be deleted");
  }
  rc = mailproto_store_call_delete(&s->store, &s->io.op, IMAP_OP_DELETE,
                                   s->account, name);
  mailproto_mem_free(&s->alloc, name);
  return mailproto_imap_after_op(s, IMAP_OP_DELETE, rc);
}

int mailproto_imap_cmd_rename(mailproto_imap *s) {
  char *from, *to;
  int rc = take_name(s, &s->cmd.u.rename.from, "NONEXISTENT", &from);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  rc = take_name(s, &s->cmd.u.rename.to, "CANNOT", &to);
  if (rc != 0) {
    mailproto_mem_free(&s->alloc, from);
    return rc < 0 ? rc : 0;
  }
  rc = mailproto_store_call_rename(&s->store, &s->io.op, IMAP_OP_RENAME,
                                   s->account, from, to);
  mailproto_mem_free(&s->alloc, from);
  mailproto_mem_free(&s->alloc, to);
  return mailproto_imap_after_op(s, IMAP_OP_RENAME, rc);
}

int mailproto_imap_cmd_subscribe(mailproto_imap *s, int on) {
  char *name;
  int rc = take_name(s, &s->cmd.u.mailbox.mailbox, "CANNOT", &name);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  rc = mailproto_store_call_subscribe(&s->store, &s->io.op, IMAP_OP_SUBSCRIBE,
                                      s->account, name, on);
  mailproto_mem_free(&s->alloc, name);
  return mailproto_imap_after_op(s, IMAP_OP_SUBSCRIBE, rc);
}

/* ------------------------------------------------------------------ */
/* STATUS                                                              */
/* ------------------------------------------------------------------ */

/* "* STATUS name (ITEM n ...)" for the items asked. */
static int write_status_line(mailproto_imap *s, const char *name,
                             unsigned items,
                             const mailproto_mailbox_status *st) {
  static const struct {
    unsigned bit;
    const char *name;
  } order[] = {{MAILPROTO_IMAP_STATUS_MESSAGES, "MESSAGES"},
               {MAILPROTO_IMAP_STATUS_RECENT, "RECENT"},
               {MAILPROTO_IMAP_STATUS_UIDNEXT, "UIDNEXT"},
               {MAILPROTO_IMAP_STATUS_UIDVALIDITY, "UIDVALIDITY"},
               {MAILPROTO_IMAP_STATUS_UNSEEN, "UNSEEN"},
               {MAILPROTO_IMAP_STATUS_DELETED, "DELETED"},
               {MAILPROTO_IMAP_STATUS_SIZE, "SIZE"},
               {MAILPROTO_IMAP_STATUS_APPENDLIMIT, "APPENDLIMIT"},
               {MAILPROTO_IMAP_STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ"}};
  mailproto_buf *b = &s->line;
  size_t mark = b->len;
  int rc = mailproto_imap_write_raw(b, "* STATUS ");
  if (rc == 0)
    rc = mailproto_imap_write_mailbox(b, name, strlen(name),
                                      mailproto_imap_wflags(s));
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, " (");
  int first = 1;
  for (size_t i = 0; rc == 0 && i < sizeof order / sizeof order[0]; i++) {
    if (!(items & order[i].bit))
      continue;
    uint64_t v = 0;
    switch (order[i].bit) {
    case MAILPROTO_IMAP_STATUS_MESSAGES:
      v = st->messages;
      break;
    case MAILPROTO_IMAP_STATUS_RECENT:
      v = st->recent;
      break;
    case MAILPROTO_IMAP_STATUS_UIDNEXT:
      v = st->uidnext;
      break;
    case MAILPROTO_IMAP_STATUS_UIDVALIDITY:
      v = st->uidvalidity;
      break;
    case MAILPROTO_IMAP_STATUS_UNSEEN:
      v = st->unseen;
      break;
    case MAILPROTO_IMAP_STATUS_DELETED:
      v = st->deleted;
      break;
    case MAILPROTO_IMAP_STATUS_SIZE:
      v = st->size;
      break;
    case MAILPROTO_IMAP_STATUS_APPENDLIMIT:
      v = s->config.max_append;
      break;
    default:
      v = st->highest_modseq;
      break;
    }
    rc = mailproto_imap_write_raw(b, first ? "" : " ");
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, order[i].name);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, " ");
    /* RFC 7889 4: APPENDLIMIT NIL means no limit. */
    if (rc == 0 && order[i].bit == MAILPROTO_IMAP_STATUS_APPENDLIMIT && !v)
      rc = mailproto_imap_write_raw(b, "NIL");
    else if (rc == 0)
      rc = mailproto_imap_write_number(b, v);
    first = 0;
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, ")\r\n");
  if (rc != 0) {
    b->len = mark;
    return rc;
  }
  return mailproto_imap_emit(s);
}

int mailproto_imap_cmd_status(mailproto_imap *s) {
  char *name;
  int rc = take_name(s, &s->cmd.u.status.mailbox, "NONEXISTENT", &name);
  if (rc != 0)
    return rc < 0 ? rc : 0;
  mailproto_mem_free(&s->alloc, s->select_name);
  s->select_name = name;
  /* RFC 7162 3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE. */
  if (s->cmd.u.status.items & MAILPROTO_IMAP_STATUS_HIGHESTMODSEQ &&
      (rc = mailproto_imap_condstore_enable(s, 0)) != 0)
    return rc;
  return mailproto_imap_after_op(
      s, IMAP_OP_STATUS,
      mailproto_store_call_status(&s->store, &s->io.op, IMAP_OP_STATUS,
                                  s->account, name, &s->status));
}

static int status_done(mailproto_imap *s, int rc) {
  if (rc != 0)
    return mailproto_imap_fail(s, rc, NULL);
  rc = write_status_line(s, s->select_name, s->cmd.u.status.items, &s->status);
  if (rc == MAILPROTO_ERR_INVALID_ARGUMENT)
    return mailproto_imap_done(s, "NO", "CANNOT", "Invalid mailbox name");
  if (rc != 0)
    return rc;
  return mailproto_imap_done(s, "OK", NULL, "STATUS completed");
}

/* ------------------------------------------------------------------ */
/* LIST and LSUB                                                       */
/* ------------------------------------------------------------------ */

static void free_patterns(mailproto_imap *s);

void mailproto_imap_list_free(mailproto_imap *s) {
  imap_list *l = s->list;
  if (l) {
    free_patterns(s);
    for (size_t i = 0; i < l->n; i++)
      mailproto_mem_free(&s->alloc, l->e[i].name);
    mailproto_mem_free(&s->alloc, l->e);
    mailproto_mem_free(&s->alloc, l);
    s->list = NULL;
  }
  mailproto_mem_free(&s->alloc, s->select_name);
  s->select_name = NULL;
}

static char **patterns(mailproto_imap *s) {
  return s->list->patterns;
}

static void free_patterns(mailproto_imap *s) {
  char **p = s->list->patterns;
  if (!p)
    return;
  for (unsigned i = 0; i < s->list->pattern_slots; i++)
    mailproto_mem_free(&s->alloc, p[i]);
  mailproto_mem_free(&s->alloc, p);
  s->list->patterns = NULL;
  s->list->pattern_slots = 0;
}

static int add_entry(mailproto_imap *s, const char *name, unsigned attrs) {
  imap_list *l = s->list;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 16;
    imap_list_entry *e =
        mailproto_mem_reallocarray(&s->alloc, l->e, cap, sizeof *e);
    if (!e)
      return MAILPROTO_ERR_NOMEM;
    l->e = e;
    l->cap = cap;
  }
  char *copy = mailproto_mem_strdup(&s->alloc, name);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  imap_list_entry *e = &l->e[l->n++];
  memset(e, 0, sizeof *e);
  e->name = copy;
  e->attributes = attrs;
  return 0;
}

int mailproto_imap_list_add(mailproto_imap *s, int kind,
                            const mailproto_mailbox_info *mb) {
  if (!mb->name)
    return 0;
  if (kind == IMAP_OP_SELECT_LIST) {
    if (strcmp(mb->name, s->sel.name) == 0) {
      s->select_found = 1;
      s->select_attrs = mb->attributes;
    }
    return 0;
  }
  if (kind != IMAP_OP_LIST || !s->list)
    return 0;
  unsigned attrs = mb->attributes;
  /* The second pass of RECURSIVEMATCH (and LSUB) asks for subscribed
   * names only. */
  if (s->list->pass == 1)
    attrs |= MAILPROTO_MBOX_SUBSCRIBED;
  return add_entry(s, mb->name, attrs);
}

/* INBOX first, then byte order: a stable, readable listing. */
static int name_cmp(const char *a, const char *b) {
  int ia = strcmp(a, "INBOX") == 0, ib = strcmp(b, "INBOX") == 0;
  if (ia != ib)
    return ib - ia;
  return strcmp(a, b);
}

static int entry_cmp(const void *x, const void *y) {
  return name_cmp(((const imap_list_entry *)x)->name,
                  ((const imap_list_entry *)y)->name);
}

/* Sorts and merges entries of the same name (several patterns, or the
 * two passes). */
static void sort_merge(mailproto_imap *s) {
  imap_list *l = s->list;
  if (l->n < 2)
    return;
  qsort(l->e, l->n, sizeof *l->e, entry_cmp);
  size_t k = 0;
  for (size_t i = 1; i < l->n; i++) {
    if (strcmp(l->e[k].name, l->e[i].name) == 0) {
      unsigned merged = l->e[k].attributes | l->e[i].attributes;
      /* A name both passes report exists after all. */
      if (!(l->e[k].attributes & MAILPROTO_MBOX_NONEXISTENT) ||
          !(l->e[i].attributes & MAILPROTO_MBOX_NONEXISTENT))
        merged &= ~MAILPROTO_MBOX_NONEXISTENT;
      l->e[k].attributes = merged;
      l->e[k].childinfo |= l->e[i].childinfo;
      mailproto_mem_free(&s->alloc, l->e[i].name);
    } else {
      l->e[++k] = l->e[i];
    }
  }
  l->n = k + 1;
}

/* Binary search among the first `sorted` entries. */
static imap_list_entry *find_entry(mailproto_imap *s, const char *name,
                                   size_t sorted) {
  size_t lo = 0, hi = sorted;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = name_cmp(s->list->e[mid].name, name);
    if (c == 0)
      return &s->list->e[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static int matches_any(mailproto_imap *s, const char *name) {
  const mailproto_imap_list *a = &s->cmd.u.list;
  for (unsigned i = 0; i < a->pattern_count; i++)
    if (patterns(s)[i] && mailproto_mailbox_match(patterns(s)[i], name))
      return 1;
  return 0;
}

/* Whether LSUB and RECURSIVEMATCH work from the complete subscription
 * list, matching in the session: they report parents of what matches. */
static int whole_tree(const mailproto_imap *s) {
  const mailproto_imap_list *a = &s->cmd.u.list;
  return s->cmd.id == MAILPROTO_IMAP_CMD_LSUB ||
         ((a->select_opts & MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH) &&
          (a->select_opts & MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED));
}

/*
 * After the store's answers: which names are reported and how.
 *  - LSUB (RFC 3501 6.3.9): subscribed names that match; a parent that
 *    matches with "%" while only a child is subscribed is reported with
 *    \Noselect.
 *  - RECURSIVEMATCH (RFC 5258 3.5): a matching name is reported when it
 *    is subscribed, or gets CHILDINFO when a descendant that does not
 *    match is.
 */
static int resolve_tree(mailproto_imap *s) {
  imap_list *l = s->list;
  int lsub = s->cmd.id == MAILPROTO_IMAP_CMD_LSUB;
  sort_merge(s);
  size_t n = l->n;
  for (size_t i = 0; i < n; i++) {
    imap_list_entry *e = &l->e[i];
    e->matched = (unsigned char)matches_any(s, e->name);
    if (!(e->attributes & MAILPROTO_MBOX_SUBSCRIBED) || e->matched)
      continue;
    /* Each ancestor of a subscribed name that does not match. */
    char buf[MAILPROTO_MAILBOX_NAME_MAX + 1];
    size_t len = strlen(l->e[i].name);
    if (len > MAILPROTO_MAILBOX_NAME_MAX)
      continue;
    memcpy(buf, l->e[i].name, len + 1);
    for (char *cut = strrchr(buf, MAILPROTO_MAILBOX_SEPARATOR); cut;
         cut = strrchr(buf, MAILPROTO_MAILBOX_SEPARATOR)) {
      *cut = '\0';
      canon_inbox(buf);
      if (!matches_any(s, buf))
        continue;
      imap_list_entry *p = find_entry(s, buf, n);
      if (p) {
        p->childinfo = 1;
        continue;
      }
      /* An ancestor added for another descendant already. */
      size_t k = n;
      while (k < l->n && strcmp(l->e[k].name, buf) != 0)
        k++;
      if (k < l->n)
        continue;
      int rc = add_entry(s, buf,
                         MAILPROTO_MBOX_NONEXISTENT | MAILPROTO_MBOX_NOSELECT);
      if (rc != 0)
        return rc;
      l->e[l->n - 1].childinfo = 1;
      l->e[l->n - 1].matched = 1;
    }
  }
  sort_merge(s);
  for (size_t i = 0; i < l->n; i++) {
    imap_list_entry *e = &l->e[i];
    e->matched = (unsigned char)matches_any(s, e->name);
    int subscribed = (e->attributes & MAILPROTO_MBOX_SUBSCRIBED) != 0;
    if (lsub && e->childinfo && !subscribed)
      e->attributes |= MAILPROTO_MBOX_NOSELECT;
    if (!e->matched || (!subscribed && !e->childinfo))
      e->matched = 0;
    if (lsub)
      e->childinfo = 0;
  }
  return 0;
}

/* Asks the store for the next pattern (or pass). */
static int list_next_call(mailproto_imap *s) {
  imap_list *l = s->list;
  const mailproto_imap_list *a = &s->cmd.u.list;
  const char *pattern;
  unsigned flags = 0;
  if (whole_tree(s)) {
    /* LSUB: one pass over the subscriptions; RECURSIVEMATCH: all
     * mailboxes (accurate attributes), then the subscriptions. */
    unsigned passes = s->cmd.id == MAILPROTO_IMAP_CMD_LSUB ? 1 : 2;
    if (l->pattern >= passes)
      return 1;
    l->pass = (unsigned char)(passes == 1 ? 1 : l->pattern);
    pattern = "*";
    flags = l->pass == 1 ? MAILPROTO_LIST_SUBSCRIBED : 0;
  } else {
    while (l->pattern < a->pattern_count && !patterns(s)[l->pattern])
      l->pattern++;
    if (l->pattern >= a->pattern_count)
      return 1;
    l->pass = 0;
    pattern = patterns(s)[l->pattern];
    if (a->select_opts & MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED)
      flags = MAILPROTO_LIST_SUBSCRIBED;
  }
  l->pattern++;
  int rc = mailproto_store_call_list(&s->store, &s->io.op, IMAP_OP_LIST,
                                     s->account, pattern, flags);
  return mailproto_imap_after_op(s, IMAP_OP_LIST, rc);
}

int mailproto_imap_cmd_list(mailproto_imap *s) {
  const mailproto_imap_list *a = &s->cmd.u.list;
  int lsub = s->cmd.id == MAILPROTO_IMAP_CMD_LSUB;
  /* RFC 3501 6.3.8: an empty pattern asks for the hierarchy delimiter
   * and the root of the reference (here always ""). */
  if (!lsub && a->pattern_count == 1 && a->patterns[0].len == 0) {
    int rc = mailproto_imap_printf(s, "* LIST (\\Noselect) \"/\" \"\"\r\n");
    return rc != 0 ? rc : mailproto_imap_done(s, "OK", NULL, "LIST completed");
  }
  mailproto_imap_str ref = a->reference;
  if (!s->list &&
      !(s->list = mailproto_mem_calloc(&s->alloc, 1, sizeof *s->list)))
    return MAILPROTO_ERR_NOMEM;
  char **p = mailproto_mem_calloc(&s->alloc, a->pattern_count, sizeof *p);
  if (!p)
    return MAILPROTO_ERR_NOMEM;
  s->list->patterns = p;
  s->list->pattern_slots = a->pattern_count;
  for (unsigned i = 0; i < a->pattern_count; i++) {
    const mailproto_imap_str *pat = &a->patterns[i];
    if (pat->len == 0)
      continue;
    /* RFC 3501 6.3.8: the reference and the pattern are read together;
     * a pattern that starts at the root ignores the reference. */
    size_t rlen = pat->data[0] == MAILPROTO_MAILBOX_SEPARATOR ? 0 : ref.len;
    size_t total = rlen + pat->len;
    char *joined = mailproto_mem_malloc(&s->alloc, total + 1);
    if (!joined)
      return MAILPROTO_ERR_NOMEM;
    memcpy(joined, ref.data, rlen);
    memcpy(joined + rlen, pat->data, pat->len);
    joined[total] = '\0';
    mailproto_imap_str in = {joined, total};
    int rc = mailproto_imap_mailbox_name(s, &in, 1, &p[i]);
    mailproto_mem_free(&s->alloc, joined);
    if (rc == MAILPROTO_ERR_SYNTAX)
      return mailproto_imap_done(s, "BAD", NULL, "Invalid mailbox name");
    if (rc == MAILPROTO_ERR_BAD_NAME)
      p[i] = NULL; /* matches nothing */
    else if (rc != 0)
      return rc;
  }
  s->phase = IMAP_PHASE_WORK;
  return 0;
}

static int list_status_call(mailproto_imap *s, const imap_list_entry *e) {
  return mailproto_imap_after_op(
      s, IMAP_OP_LIST_STATUS,
      mailproto_store_call_status(&s->store, &s->io.op, IMAP_OP_LIST_STATUS,
                                  s->account, e->name, &s->list->status));
}

/* Which gathered entries are answered. */
static int wanted(const mailproto_imap *s, const imap_list_entry *e) {
  const mailproto_imap_list *a = &s->cmd.u.list;
  if (whole_tree(s) && !e->matched)
    return 0;
  /* RFC 6154 5: the SPECIAL-USE selection option. */
  if ((a->select_opts & MAILPROTO_IMAP_LIST_SEL_SPECIAL_USE) &&
      !(e->attributes & MAILPROTO_MBOX_SPECIAL_USE_MASK))
    return 0;
  return 1;
}

int mailproto_imap_list_step(mailproto_imap *s) {
  imap_list *l = s->list;
  const mailproto_imap_list *a = &s->cmd.u.list;
  int lsub = s->cmd.id == MAILPROTO_IMAP_CMD_LSUB;
  if (!l->gathered) {
    int rc = list_next_call(s);
    if (rc != 1)
      return rc;
    l->gathered = 1;
    rc = whole_tree(s) ? resolve_tree(s) : (sort_merge(s), 0);
    free_patterns(s);
    if (rc != 0)
      return rc;
  }
  if (l->status_due) {
    l->status_due = 0;
    return list_status_call(s, &l->e[l->pos - 1]);
  }
  while (l->pos < l->n && !wanted(s, &l->e[l->pos]))
    l->pos++;
  if (l->pos >= l->n)
    return mailproto_imap_done(s, "OK", NULL,
                               lsub ? "LSUB completed" : "LIST completed");
  const imap_list_entry *e = &l->e[l->pos++];
  int shown = (a->select_opts & MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED) ||
              (a->return_opts & MAILPROTO_IMAP_LIST_RET_SUBSCRIBED);
  int rc = write_list_line(s, lsub ? "LSUB" : "LIST", e->name, e->attributes,
                           lsub, shown, e->childinfo && a->extended);
  if (rc == MAILPROTO_ERR_INVALID_ARGUMENT)
    return 0; /* a name the wire cannot carry is left out */
  if (rc == 0)
    rc = mailproto_imap_emit(s);
  /* RFC 5819 2: STATUS follows the LIST line of a selectable mailbox. */
  if (rc == 0 && (a->return_opts & MAILPROTO_IMAP_LIST_RET_STATUS) &&
      !(e->attributes & (MAILPROTO_MBOX_NOSELECT | MAILPROTO_MBOX_NONEXISTENT)))
    l->status_due = 1;
  return rc;
}

static int list_done(mailproto_imap *s, int kind, int rc) {
  if (kind == IMAP_OP_LIST_STATUS) {
    if (mailproto_is_fatal(rc))
      return rc;
    /* RFC 5819 2: no STATUS when it cannot be had. */
    if (rc != 0)
      return 0;
    rc = write_status_line(s, s->list->e[s->list->pos - 1].name,
                           s->cmd.u.list.status_items, &s->list->status);
    return rc == MAILPROTO_ERR_INVALID_ARGUMENT ? 0 : rc;
  }
  if (rc == 0)
    return 0; /* list_step asks for the next pattern */
  free_patterns(s);
  return mailproto_imap_fail(s, rc, NULL);
}

int mailproto_imap_mailbox_done(mailproto_imap *s, int kind, int rc) {
  switch (kind) {
  case IMAP_OP_OPEN:
    return opened(s, rc);
  case IMAP_OP_SELECT_LIST:
    if (mailproto_is_fatal(rc))
      return rc;
    return select_responses(s);
  case IMAP_OP_LIST:
  case IMAP_OP_LIST_STATUS:
    return list_done(s, kind, rc);
  case IMAP_OP_CREATE:
    return store_result(s, rc, "CREATE completed");
  case IMAP_OP_DELETE:
    return store_result(s, rc, "DELETE completed");
  case IMAP_OP_RENAME:
    return store_result(s, rc, "RENAME completed");
  case IMAP_OP_SUBSCRIBE:
    if (rc == MAILPROTO_ERR_NOT_FOUND)
      return mailproto_imap_done(s, "NO", "NONEXISTENT", "Not subscribed");
    return store_result(s, rc,
                        s->cmd.id == MAILPROTO_IMAP_CMD_SUBSCRIBE
                            ? "SUBSCRIBE completed"
                            : "UNSUBSCRIBE completed");
  case IMAP_OP_STATUS:
    return status_done(s, rc);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}
