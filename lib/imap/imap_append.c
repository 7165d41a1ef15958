/*
 * APPEND (RFC 3501 6.3.11, RFC 9051 6.3.12): the message literal goes to
 * the store's writer as it arrives and is never held whole. At the
 * literal's header the session has everything it needs to decide: the
 * mailbox, flags, date and size. Too big for APPENDLIMIT (RFC 7889): NO
 * [TOOBIG] at once; a missing mailbox: NO [TRYCREATE] (RFC 3501 6.3.11);
 * either way a synchronising literal is never read and a
 * non-synchronising one is skipped by the reader (RFC 7888 4). Otherwise
 * "+" goes out (for a synchronising literal) only once the store has
 * begun the message, and the message is committed only when the command
 * line has ended correctly; the tagged OK carries APPENDUID (RFC 4315 3)
 * and comes after the store said the message is committed.
 *
 * MULTIAPPEND (RFC 3502) is not offered: it must be all or nothing, and
 * the store interface commits one message at a time.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "store/store_call.h"

void mailproto_imap_append_reset(mailproto_imap *s) {
  imap_append *a = s->append;
  if (!a)
    return;
  if (a->writer)
    mailproto_store_call_abort(&s->store, a->writer);
  for (size_t i = 0; i < a->keyword_count; i++)
    mailproto_mem_free(&s->alloc, a->keywords[i]);
  mailproto_mem_free(&s->alloc, a->keywords);
  mailproto_mem_free(&s->alloc, a->mailbox);
  mailproto_mem_free(&s->alloc, a);
  s->append = NULL;
}

/* Refuses the message literal with a reply already decided. */
static int refuse(mailproto_imap *s) {
  mailproto_imap_append_reset(s);
  int rc = mailproto_imap_reader_reject(&s->reader);
  return rc == 0 ? 0 : MAILPROTO_ERR_INTERNAL;
}

static int keep_keywords(mailproto_imap *s,
                         const mailproto_imap_append_message *m) {
  imap_append *a = s->append;
  unsigned n = m->has_flags ? m->flags.keyword_count : 0;
  if (n == 0)
    return 0;
  a->keywords = mailproto_mem_calloc(&s->alloc, n, sizeof *a->keywords);
  if (!a->keywords)
    return MAILPROTO_ERR_NOMEM;
  for (unsigned i = 0; i < n; i++) {
    a->keywords[i] = mailproto_mem_strndup(&s->alloc, m->flags.keywords[i].data,
                                           m->flags.keywords[i].len);
    if (!a->keywords[i])
      return MAILPROTO_ERR_NOMEM;
    a->keyword_count = i + 1;
  }
  return 0;
}

int mailproto_imap_append_literal(mailproto_imap *s,
                                  const mailproto_imap_event *ev) {
  const mailproto_imap_append *cmd = &s->cmd.u.append;
  const mailproto_imap_append_message *m =
      &cmd->messages[cmd->message_count - 1];
  (void)ev;
  mailproto_imap_append_reset(s);
  imap_append *a = mailproto_mem_calloc(&s->alloc, 1, sizeof *a);
  if (!a)
    return MAILPROTO_ERR_NOMEM;
  s->append = a;
  int rc;
  if (cmd->message_count > 1) {
    rc = mailproto_imap_done(s, "BAD", NULL, "MULTIAPPEND is not supported");
    return rc != 0 ? rc : refuse(s);
  }
  char *name;
  rc = mailproto_imap_mailbox_name(s, &cmd->mailbox, 0, &name);
  if (rc == MAILPROTO_ERR_SYNTAX || rc == MAILPROTO_ERR_BAD_NAME) {
    rc = rc == MAILPROTO_ERR_SYNTAX
             ? mailproto_imap_done(s, "BAD", NULL, "Invalid mailbox name")
             : mailproto_imap_done(s, "NO", "CANNOT", "Invalid mailbox name");
    return rc != 0 ? rc : refuse(s);
  }
  if (rc != 0)
    return rc;
  a->mailbox = name;
  /* RFC 7889 4: over APPENDLIMIT, refused before a byte is sent. */
  if (s->config.max_append && m->size > s->config.max_append) {
    rc = mailproto_imap_done(s, "NO", "TOOBIG", "Message too big");
    return rc != 0 ? rc : refuse(s);
  }
  if ((rc = keep_keywords(s, m)) != 0)
    return rc;
  a->size = m->size;
  a->binary = (unsigned char)(m->binary != 0);
  a->sync = (unsigned char)(m->sync != 0);
  memset(&a->info, 0, sizeof a->info);
  a->info.struct_size = sizeof a->info;
  a->info.flags =
      m->has_flags ? (m->flags.system & MAILPROTO_FLAGS_SETTABLE) : 0u;
  a->info.keywords = (const char *const *)a->keywords;
  a->info.keyword_count = a->keyword_count;
  if (m->has_date) {
    a->date = m->date;
    a->info.internal_date = &a->date;
  }
  a->info.size_hint = m->size;
  s->phase = IMAP_PHASE_INPUT;
  return mailproto_imap_after_op(
      s, IMAP_OP_APPEND_BEGIN,
      mailproto_store_call_append_begin(&s->store, &s->io.op,
                                        IMAP_OP_APPEND_BEGIN, s->account,
                                        a->mailbox, &a->info, &a->writer));
}

static int begun(mailproto_imap *s, int rc) {
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc != 0) {
    s->append->writer = NULL;
    /* RFC 3501 6.3.11: a missing mailbox gets [TRYCREATE]. */
    int out = rc == MAILPROTO_ERR_LIMIT
                  ? mailproto_imap_done(s, "NO", "OVERQUOTA", "Quota exceeded")
                  : mailproto_imap_fail(s, rc, "TRYCREATE");
    return out != 0 ? out : refuse(s);
  }
  if (mailproto_imap_reader_stream(&s->reader) != 0)
    return MAILPROTO_ERR_INTERNAL;
  /* RFC 3501 7.5: the go-ahead, now that the message has a home. */
  return s->append->sync ? mailproto_imap_continue(s, "Ready for literal data")
                         : 0;
}

int mailproto_imap_append_data(mailproto_imap *s, const uint8_t *data,
                               size_t len) {
  imap_append *a = s->append;
  if (!mailproto_imap_appending(s))
    return MAILPROTO_ERR_INTERNAL;
  a->received += len;
  /* RFC 3501 9: CHAR8 excludes NUL; only literal8 may carry one (RFC
   * 3516). The rest is read and dropped, then the command is BAD. */
  if (!a->binary && !a->nul && memchr(data, 0, len)) {
    a->nul = 1;
    if (a->writer)
      mailproto_store_call_abort(&s->store, a->writer);
    a->writer = NULL;
  }
  if (!a->writer || a->failed || len == 0)
    return 0;
  return mailproto_imap_after_op(
      s, IMAP_OP_WRITE,
      mailproto_store_call_write(&s->store, &s->io.op, IMAP_OP_WRITE, a->writer,
                                 data, len));
}

int mailproto_imap_append_end(mailproto_imap *s) {
  if (!mailproto_imap_appending(s))
    return MAILPROTO_ERR_INTERNAL;
  s->append->at_end = 1;
  return 0;
}

static int commit(mailproto_imap *s) {
  imap_append *a = s->append;
  void *writer = a->writer;
  /* The writer is gone after the commit, whatever happens (store.h). */
  a->writer = NULL;
  return mailproto_imap_after_op(
      s, IMAP_OP_APPEND_COMMIT,
      mailproto_store_call_append_commit(&s->store, &s->io.op,
                                         IMAP_OP_APPEND_COMMIT, writer,
                                         &a->uidvalidity, &a->uid));
}

int mailproto_imap_append_rest(mailproto_imap *s,
                               const mailproto_imap_event *ev) {
  imap_append *a = s->append;
  int final = ev->type == MAILPROTO_IMAP_EVENT_COMMAND;
  if (!mailproto_imap_appending(s) || !a->at_end)
    return MAILPROTO_ERR_INTERNAL;
  int rc = mailproto_imap_parse_append_next(&s->parser, ev->data, ev->len,
                                            final, &s->cmd);
  s->cmd.id = MAILPROTO_IMAP_CMD_APPEND;
  if (rc == MAILPROTO_ERR_NOMEM)
    return rc;
  if (rc < 0 || rc == 1) {
    const char *why = rc == 1 ? "MULTIAPPEND is not supported"
                              : mailproto_imap_parser_error(&s->parser);
    rc = mailproto_imap_done(s, "BAD", NULL, why);
    if (rc != 0)
      return rc;
    mailproto_imap_append_reset(s);
    if (!final && mailproto_imap_reader_reject(&s->reader) != 0)
      return MAILPROTO_ERR_INTERNAL;
    return 0;
  }
  if (a->nul) {
    mailproto_imap_append_reset(s);
    return mailproto_imap_done(s, "BAD", NULL, "NUL in message literal");
  }
  if (a->failed) {
    int code = a->failed;
    mailproto_imap_append_reset(s);
    return mailproto_imap_fail(s, code, "TRYCREATE");
  }
  return commit(s);
}

static int committed(mailproto_imap *s, int rc) {
  imap_append *a = s->append;
  if (mailproto_is_fatal(rc))
    return rc;
  if (rc != 0) {
    mailproto_imap_append_reset(s);
    return rc == MAILPROTO_ERR_LIMIT
               ? mailproto_imap_done(s, "NO", "OVERQUOTA", "Quota exceeded")
               : mailproto_imap_fail(s, rc, "TRYCREATE");
  }
  char code[64] = "";
  /* RFC 4315 3: APPENDUID when the store told the new UID. */
  if (a->uidvalidity && a->uid)
    snprintf(code, sizeof code, "APPENDUID %lu %lu",
             (unsigned long)a->uidvalidity, (unsigned long)a->uid);
  mailproto_imap_append_reset(s);
  return mailproto_imap_done(s, "OK", code, "APPEND completed");
}

int mailproto_imap_append_done(mailproto_imap *s, int kind, int rc) {
  switch (kind) {
  case IMAP_OP_APPEND_BEGIN:
    return begun(s, rc);
  case IMAP_OP_WRITE:
    if (mailproto_is_fatal(rc))
      return rc;
    if (rc != 0 && s->append && !s->append->failed) {
      /* The store refused: the rest of the literal is read and dropped,
       * then the command fails (the client cannot be stopped sooner). */
      s->append->failed = rc;
      mailproto_store_call_abort(&s->store, s->append->writer);
      s->append->writer = NULL;
    }
    return 0;
  case IMAP_OP_APPEND_COMMIT:
    return committed(s, rc);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}
