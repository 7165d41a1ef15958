/*
 * Fuzzes the IMAP command parser of lib/imap/imap_parser.h with the
 * round-trip oracle: whatever parses is written back by the command
 * writer, the output must parse again to an equal command, and writing
 * that gives the same bytes (the canonical form is a fixed point). The
 * first byte chooses:
 *   bits 0-1  0, 1: mailproto_imap_parse; 2: parse_append_start;
 *             3: parse_append_next (bit 2: final)
 *   bit 3     UTF8=ACCEPT mode (parser and writer)
 *   bit 4     small limits (nesting 4, 8 ranges, 4 KiB arena)
 * The rest is the command, in an exact-size buffer. Failures must be one
 * of the documented codes with a non-empty text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_writer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok) {
  if (!ok)
    abort();
}

static int str_eq(const mailproto_imap_str *a, const mailproto_imap_str *b) {
  if (a->len != b->len)
    return 0;
  if (a->len == 0)
    return 1;
  return memcmp(a->data, b->data, a->len) == 0;
}

static int set_eq(const mailproto_imap_seqset *a,
                  const mailproto_imap_seqset *b) {
  if (a->saved != b->saved || a->count != b->count)
    return 0;
  for (unsigned i = 0; i < a->count; i++) {
    /* "5:5" and "5" are the same range. */
    if (a->ranges[i].first != b->ranges[i].first ||
        a->ranges[i].last != b->ranges[i].last)
      return 0;
  }
  return 1;
}

static int flags_eq(const mailproto_imap_flags *a,
                    const mailproto_imap_flags *b) {
  if (a->system != b->system || a->keyword_count != b->keyword_count)
    return 0;
  for (unsigned i = 0; i < a->keyword_count; i++)
    if (!str_eq(&a->keywords[i], &b->keywords[i]))
      return 0;
  return 1;
}

static int key_eq(const mailproto_imap_search_key *a,
                  const mailproto_imap_search_key *b) {
  for (; a && b; a = a->next, b = b->next) {
    if (a->type != b->type || !str_eq(&a->str, &b->str) ||
        !str_eq(&a->field, &b->field) || a->date != b->date ||
        a->number != b->number || !str_eq(&a->entry_type, &b->entry_type) ||
        !set_eq(&a->set, &b->set) || !key_eq(a->children, b->children))
      return 0;
  }
  return a == NULL && b == NULL;
}

static int section_eq(const mailproto_imap_section *a,
                      const mailproto_imap_section *b) {
  if (a->part_count != b->part_count || a->text != b->text ||
      a->field_count != b->field_count)
    return 0;
  for (unsigned i = 0; i < a->part_count; i++)
    if (a->parts[i] != b->parts[i])
      return 0;
  for (unsigned i = 0; i < a->field_count; i++)
    if (!str_eq(&a->fields[i], &b->fields[i]))
      return 0;
  return 1;
}

static int fetch_eq(const mailproto_imap_fetch *a,
                    const mailproto_imap_fetch *b) {
  if (!set_eq(&a->set, &b->set) || a->macro != b->macro ||
      a->item_count != b->item_count ||
      a->has_changedsince != b->has_changedsince ||
      a->changedsince != b->changedsince || a->vanished != b->vanished)
    return 0;
  for (unsigned i = 0; i < a->item_count; i++) {
    const mailproto_imap_fetch_item *x = &a->items[i], *y = &b->items[i];
    if (x->type != y->type || x->peek != y->peek ||
        !section_eq(&x->section, &y->section) ||
        x->has_partial != y->has_partial ||
        x->partial_offset != y->partial_offset ||
        x->partial_length != y->partial_length)
      return 0;
  }
  return 1;
}

static int append_eq(const mailproto_imap_append *a,
                     const mailproto_imap_append *b) {
  if (!str_eq(&a->mailbox, &b->mailbox) || a->message_count != b->message_count)
    return 0;
  for (unsigned i = 0; i < a->message_count; i++) {
    const mailproto_imap_append_message *x = &a->messages[i],
                                        *y = &b->messages[i];
    if (x->has_flags != y->has_flags || !flags_eq(&x->flags, &y->flags) ||
        x->has_date != y->has_date || x->date.utc != y->date.utc ||
        x->date.tz_minutes != y->date.tz_minutes || x->size != y->size ||
        x->sync != y->sync || x->binary != y->binary ||
        (x->data == NULL) != (y->data == NULL))
      return 0;
    if (x->data && x->size && memcmp(x->data, y->data, (size_t)x->size) != 0)
      return 0;
  }
  return 1;
}

static int list_eq(const mailproto_imap_list *a, const mailproto_imap_list *b) {
  if (a->extended != b->extended || a->select_opts != b->select_opts ||
      a->has_return != b->has_return || a->return_opts != b->return_opts ||
      a->status_items != b->status_items ||
      !str_eq(&a->reference, &b->reference) ||
      a->pattern_count != b->pattern_count)
    return 0;
  for (unsigned i = 0; i < a->pattern_count; i++)
    if (!str_eq(&a->patterns[i], &b->patterns[i]))
      return 0;
  return 1;
}

static int select_eq(const mailproto_imap_select *a,
                     const mailproto_imap_select *b) {
  return str_eq(&a->mailbox, &b->mailbox) && a->condstore == b->condstore &&
         a->qresync == b->qresync && a->uidvalidity == b->uidvalidity &&
         a->modseq == b->modseq && a->has_known_uids == b->has_known_uids &&
         set_eq(&a->known_uids, &b->known_uids) &&
         a->has_seq_match == b->has_seq_match &&
         set_eq(&a->known_seqs, &b->known_seqs) &&
         set_eq(&a->known_seq_uids, &b->known_seq_uids);
}

static int command_eq(const mailproto_imap_command *a,
                      const mailproto_imap_command *b) {
  if (!str_eq(&a->tag, &b->tag) || a->id != b->id || a->uid != b->uid)
    return 0;
  switch (a->id) {
  case MAILPROTO_IMAP_CMD_LOGIN:
    return str_eq(&a->u.login.user, &b->u.login.user) &&
           str_eq(&a->u.login.password, &b->u.login.password);
  case MAILPROTO_IMAP_CMD_AUTHENTICATE:
    return str_eq(&a->u.authenticate.mechanism, &b->u.authenticate.mechanism) &&
           a->u.authenticate.has_initial == b->u.authenticate.has_initial &&
           str_eq(&a->u.authenticate.initial, &b->u.authenticate.initial);
  case MAILPROTO_IMAP_CMD_SELECT:
  case MAILPROTO_IMAP_CMD_EXAMINE:
    return select_eq(&a->u.select, &b->u.select);
  case MAILPROTO_IMAP_CMD_CREATE:
    /* Unknown USE attributes are counted, not kept, so not written. */
    return str_eq(&a->u.create.mailbox, &b->u.create.mailbox) &&
           a->u.create.use == b->u.create.use;
  case MAILPROTO_IMAP_CMD_DELETE:
  case MAILPROTO_IMAP_CMD_SUBSCRIBE:
  case MAILPROTO_IMAP_CMD_UNSUBSCRIBE:
    return str_eq(&a->u.mailbox.mailbox, &b->u.mailbox.mailbox);
  case MAILPROTO_IMAP_CMD_RENAME:
    return str_eq(&a->u.rename.from, &b->u.rename.from) &&
           str_eq(&a->u.rename.to, &b->u.rename.to);
  case MAILPROTO_IMAP_CMD_LIST:
  case MAILPROTO_IMAP_CMD_LSUB:
    return list_eq(&a->u.list, &b->u.list);
  case MAILPROTO_IMAP_CMD_STATUS:
    return str_eq(&a->u.status.mailbox, &b->u.status.mailbox) &&
           a->u.status.items == b->u.status.items;
  case MAILPROTO_IMAP_CMD_APPEND:
    return append_eq(&a->u.append, &b->u.append);
  case MAILPROTO_IMAP_CMD_ENABLE:
    if (a->u.enable.count != b->u.enable.count)
      return 0;
    for (unsigned i = 0; i < a->u.enable.count; i++)
      if (!str_eq(&a->u.enable.capabilities[i], &b->u.enable.capabilities[i]))
        return 0;
    return 1;
  case MAILPROTO_IMAP_CMD_ID:
    if (a->u.id.nil != b->u.id.nil || a->u.id.count != b->u.id.count)
      return 0;
    for (unsigned i = 0; i < a->u.id.count; i++) {
      const mailproto_imap_id_param *x = &a->u.id.params[i],
                                    *y = &b->u.id.params[i];
      if (!str_eq(&x->field, &y->field) || x->value.nil != y->value.nil ||
          !str_eq(&x->value.str, &y->value.str))
        return 0;
    }
    return 1;
  case MAILPROTO_IMAP_CMD_COPY:
  case MAILPROTO_IMAP_CMD_MOVE:
    return set_eq(&a->u.copy.set, &b->u.copy.set) &&
           str_eq(&a->u.copy.mailbox, &b->u.copy.mailbox);
  case MAILPROTO_IMAP_CMD_EXPUNGE:
    return !a->uid || set_eq(&a->u.expunge.set, &b->u.expunge.set);
  case MAILPROTO_IMAP_CMD_FETCH:
    return fetch_eq(&a->u.fetch, &b->u.fetch);
  case MAILPROTO_IMAP_CMD_STORE:
    return set_eq(&a->u.store.set, &b->u.store.set) &&
           a->u.store.has_unchangedsince == b->u.store.has_unchangedsince &&
           a->u.store.unchangedsince == b->u.store.unchangedsince &&
           a->u.store.op == b->u.store.op &&
           a->u.store.silent == b->u.store.silent &&
           flags_eq(&a->u.store.flags, &b->u.store.flags);
  case MAILPROTO_IMAP_CMD_SEARCH:
    return a->u.search.has_return == b->u.search.has_return &&
           a->u.search.return_opts == b->u.search.return_opts &&
           a->u.search.has_charset == b->u.search.has_charset &&
           str_eq(&a->u.search.charset, &b->u.search.charset) &&
           key_eq(a->u.search.key, b->u.search.key);
  case MAILPROTO_IMAP_CMD_SORT:
    if (a->u.sort.criteria_count != b->u.sort.criteria_count ||
        !str_eq(&a->u.sort.charset, &b->u.sort.charset) ||
        !key_eq(a->u.sort.key, b->u.sort.key))
      return 0;
    for (unsigned i = 0; i < a->u.sort.criteria_count; i++)
      if (a->u.sort.criteria[i].key != b->u.sort.criteria[i].key ||
          a->u.sort.criteria[i].reverse != b->u.sort.criteria[i].reverse)
        return 0;
    return 1;
  case MAILPROTO_IMAP_CMD_THREAD:
    return a->u.thread.algorithm == b->u.thread.algorithm &&
           str_eq(&a->u.thread.charset, &b->u.thread.charset) &&
           key_eq(a->u.thread.key, b->u.thread.key);
  default:
    return 1;
  }
}

/* Every string the parser hands out is NUL-terminated with no NUL
 * inside. */
static void check_str(const mailproto_imap_str *s) {
  if (!s->data)
    return;
  require(s->data[s->len] == '\0');
  require(strlen(s->data) == s->len);
}

static void check_failure(const mailproto_imap_parser *p, int rc) {
  require(rc == MAILPROTO_ERR_SYNTAX || rc == MAILPROTO_ERR_TOO_LONG ||
          rc == MAILPROTO_ERR_NOMEM);
  require(mailproto_imap_parser_error(p)[0] != '\0');
}

static void round_trip(const mailproto_imap_command *cmd, unsigned flags,
                       int utf8) {
  mailproto_buf out, again;
  mailproto_buf_init(&out, NULL, (size_t)1 << 24);
  mailproto_buf_init(&again, NULL, (size_t)1 << 24);
  require(mailproto_imap_write_command(&out, cmd, flags) == 0);
  require(out.len >= 2 && out.data[out.len - 1] == '\n' &&
          out.data[out.len - 2] == '\r');

  /* The parser takes the command without its CRLF, in exact-size memory. */
  size_t n = out.len - 2;
  uint8_t *copy = malloc(n ? n : 1);
  require(copy != NULL);
  if (n)
    memcpy(copy, out.data, n);
  mailproto_imap_parser p2;
  mailproto_imap_parser_init(&p2, NULL, NULL);
  mailproto_imap_parser_set_utf8(&p2, utf8);
  mailproto_imap_command cmd2;
  require(mailproto_imap_parse(&p2, copy, n, &cmd2) == 0);
  require(command_eq(cmd, &cmd2));
  require(mailproto_imap_write_command(&again, &cmd2, flags) == 0);
  require(again.len == out.len && memcmp(again.data, out.data, out.len) == 0);
  mailproto_imap_parser_free(&p2);
  free(copy);
  mailproto_buf_free(&out);
  mailproto_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1 || size > 65536)
    return 0;
  unsigned mode = data[0];
  int utf8 = (mode & 0x08) != 0;
  mailproto_imap_parser_limits small = {4, 8, 4096};
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, (mode & 0x10) ? &small : NULL);
  mailproto_imap_parser_set_utf8(&p, utf8);

  size_t len = size - 1;
  uint8_t *in = malloc(len ? len : 1);
  require(in != NULL);
  if (len)
    memcpy(in, data + 1, len);
  mailproto_imap_command cmd;
  int rc;
  switch (mode & 3) {
  case 2:
    rc = mailproto_imap_parse_append_start(&p, in, len, &cmd);
    if (rc < 0)
      check_failure(&p, rc);
    if (rc == 1) {
      require(cmd.id == MAILPROTO_IMAP_CMD_APPEND);
      require(cmd.u.append.message_count >= 1);
      require(cmd.u.append.messages[cmd.u.append.message_count - 1].data ==
              NULL);
      check_str(&cmd.u.append.mailbox);
    }
    break;
  case 3:
    rc = mailproto_imap_parse_append_next(&p, in, len, (mode & 4) != 0, &cmd);
    if (rc < 0)
      check_failure(&p, rc);
    require(rc <= 1);
    if (rc == 1)
      require(!(mode & 4) && cmd.u.append.message_count >= 1);
    break;
  default:
    rc = mailproto_imap_parse(&p, in, len, &cmd);
    if (rc != 0) {
      check_failure(&p, rc);
      break;
    }
    check_str(&cmd.tag);
    require(cmd.tag.len > 0 && cmd.id != MAILPROTO_IMAP_CMD_NONE);
    round_trip(&cmd, utf8 ? MAILPROTO_IMAP_WRITE_UTF8 : 0, utf8);
    break;
  }
  mailproto_imap_parser_free(&p);
  free(in);
  return 0;
}
