/*
 * The IMAP session contract on the shared plumbing (core/session.h): the
 * entry points, the feed loop over the command reader, the literal
 * decisions, dispatch by state, the phases every command runs through
 * (see imap_internal.h), output helpers, the op sink and the table that
 * turns store errors into response codes (RFC 5530).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/nonce.h"
#include "imap/imap_internal.h"
#include "imap/imap_search.h"
#include "store/store_call.h"

#define IMAP_LINE_MIN 256u
#define IMAP_LINE_MAX (16u * 1024u * 1024u)
#define IMAP_WATERMARK_MIN 64u
#define IMAP_WATERMARK_MAX (1u << 30)
/* Buffers an idle session keeps for reuse; larger ones are given back. */
#define IMAP_KEEP 1024u
/* Arena of the parser for one command. */
#define IMAP_PARSER_MEMORY (1024u * 1024u)

void mailproto_imap_config_init(mailproto_imap_config *config,
                                size_t struct_size) {
  if (!config || struct_size < sizeof(size_t))
    return;
  mailproto_imap_config d;
  memset(&d, 0, sizeof d);
  d.struct_size = sizeof d;
  d.greeting = "IMAP server ready";
  d.max_line = 8192;
  d.max_literal = 65536;
  d.max_command = 262144;
  d.max_literals = 64;
  d.max_nesting = 32;
  d.max_sequence_ranges = 1000;
  d.max_append = UINT64_C(64) * 1024 * 1024;
  d.max_errors = 20;
  d.max_errors_unauth = 5;
  d.max_auth_failures = 3;
  d.output_watermark = 16 * 1024;
  d.sasl_mechanisms = MAILPROTO_SASL_ALL;
  d.id_name = "libmailproto";
  /* A caller compiled against an older header gets the fields it knows. */
  size_t n = struct_size < sizeof d ? struct_size : sizeof d;
  memcpy(config, &d, n);
  config->struct_size = n;
}

void mailproto_imap_callbacks_init(mailproto_imap_callbacks *callbacks,
                                   size_t struct_size) {
  if (!callbacks || struct_size < sizeof(size_t))
    return;
  size_t n = struct_size < sizeof *callbacks ? struct_size : sizeof *callbacks;
  memset(callbacks, 0, n);
  callbacks->struct_size = n;
}

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int send_to_transport(void *owner, const uint8_t *data, size_t len,
                             size_t *sent) {
  mailproto_imap *s = owner;
  return mailproto_session_sent(s->cb.send(s, data, len, s->user_data), len,
                                sent);
}

static int start_tls(void *owner) {
  mailproto_imap *s = owner;
  return s->cb.start_tls(s, s->user_data);
}

/* A response piece that does not fit is a bug of ours (every piece is
 * bounded by IMAP_REPLY_SLACK): never send half of it. */
static int out_error(int rc) {
  return rc == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_INTERNAL : rc;
}

int mailproto_imap_emit(mailproto_imap *s) {
  int rc = mailproto_outq_write(&s->io.out, s->line.data, s->line.len);
  mailproto_buf_clear(&s->line);
  return out_error(rc);
}

int mailproto_imap_printf(mailproto_imap *s, const char *fmt, ...) {
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof text)
    return MAILPROTO_ERR_INTERNAL;
  return out_error(mailproto_outq_write(&s->io.out, text, (size_t)n));
}

int mailproto_imap_untagged(mailproto_imap *s, const char *status,
                            const char *code, const char *text) {
  int rc = mailproto_imap_write_status(&s->line, NULL, status, code, text,
                                       mailproto_imap_wflags(s));
  return rc == 0 ? mailproto_imap_emit(s) : out_error(rc);
}

int mailproto_imap_continue(mailproto_imap *s, const char *text) {
  int rc = mailproto_imap_write_continuation(&s->line, text, 0);
  return rc == 0 ? mailproto_imap_emit(s) : out_error(rc);
}

/* ------------------------------------------------------------------ */
/* Store errors (RFC 5530 response codes, RFC 9051 7.1)                */
/* ------------------------------------------------------------------ */

static const struct {
  int code;
  const char *resp;
  const char *text;
} store_errors[] = {
    {MAILPROTO_ERR_NOT_FOUND, "NONEXISTENT", "No such mailbox"},
    {MAILPROTO_ERR_EXISTS, "ALREADYEXISTS", "Mailbox already exists"},
    {MAILPROTO_ERR_BAD_NAME, "CANNOT", "Invalid mailbox name"},
    {MAILPROTO_ERR_PERMISSION, "NOPERM", "Permission denied"},
    {MAILPROTO_ERR_HAS_CHILDREN, "HASCHILDREN", "Mailbox has children"},
    {MAILPROTO_ERR_IN_USE, "INUSE", "Mailbox is in use"},
    {MAILPROTO_ERR_LIMIT, "OVERQUOTA", "Quota or limit exceeded"},
    {MAILPROTO_ERR_TEMPORARY, "UNAVAILABLE", "Temporary failure, try again"},
    {MAILPROTO_ERR_IO, "UNAVAILABLE", "Storage failure, try again"},
    {MAILPROTO_ERR_CANCELLED, "UNAVAILABLE", "Operation cancelled"},
    {MAILPROTO_ERR_UNSUPPORTED, "CANNOT", "Operation not supported"},
    {MAILPROTO_ERR_EXPUNGED, "EXPUNGEISSUED", "Message has been expunged"},
    {MAILPROTO_ERR_AUTH_FAILED, "AUTHENTICATIONFAILED",
     "Authentication failed"},
    {MAILPROTO_ERR_TOO_LONG, "TOOBIG", "Too big"},
};

int mailproto_imap_fail(mailproto_imap *s, int code, const char *missing) {
  if (mailproto_is_fatal(code))
    return code;
  for (size_t i = 0; i < sizeof store_errors / sizeof store_errors[0]; i++)
    if (store_errors[i].code == code) {
      const char *resp = store_errors[i].resp;
      if (code == MAILPROTO_ERR_NOT_FOUND && missing)
        resp = missing;
      return mailproto_imap_done(s, "NO", resp, store_errors[i].text);
    }
  /* A store that breaks its contract (INVALID_ARGUMENT, INTERNAL, a code
   * it may not return) is a bug the operator must see. */
  return mailproto_imap_done(s, "NO", "SERVERBUG", "Internal error");
}

/* ------------------------------------------------------------------ */
/* The command pipeline                                                */
/* ------------------------------------------------------------------ */

static int error_limit_reached(mailproto_imap *s) {
  unsigned max = s->state == IMAP_NOT_AUTH ? s->config.max_errors_unauth
                                           : s->config.max_errors;
  return mailproto_session_count(&s->errors, max);
}

static int set_tagged(mailproto_imap *s, const char *status, const char *code,
                      const char *text) {
  mailproto_buf_clear(&s->tagged);
  const char *tag = s->tag.len ? mailproto_imap_tag(s) : NULL;
  return out_error(mailproto_imap_write_status(&s->tagged, tag, status, code,
                                               text, mailproto_imap_wflags(s)));
}

static int decide(mailproto_imap *s, const char *status, const char *code,
                  const char *text, int counted) {
  int rc = set_tagged(s, status, code, text);
  if (rc != 0)
    return rc;
  int bad = strcmp(status, "BAD") == 0;
  /* The tagged BAD first, so the client learns which command failed. */
  if (bad && counted && error_limit_reached(s))
    return mailproto_imap_bye_after(s, "Too many errors");
  /* A BAD command was never in progress (RFC 3501 7.4.1): nothing is
   * announced with it. */
  s->phase = bad || s->closing ? IMAP_PHASE_TAGGED : IMAP_PHASE_SYNC;
  return 0;
}

int mailproto_imap_done(mailproto_imap *s, const char *status, const char *code,
                        const char *text) {
  return decide(s, status, code, text, 1);
}

int mailproto_imap_bye_after(mailproto_imap *s, const char *text) {
  int rc = out_error(
      mailproto_imap_write_status(&s->tagged, NULL, "BYE", "ALERT", text, 0));
  if (rc != 0)
    return rc;
  s->closing = 1;
  s->phase = IMAP_PHASE_TAGGED;
  return 0;
}

int mailproto_imap_done_uncounted(mailproto_imap *s, const char *status,
                                  const char *text) {
  return decide(s, status, NULL, text, 0);
}

/* Phase SYNC: ask the store what changed, if anything may have. */
static int sync_phase(mailproto_imap *s) {
  s->phase = IMAP_PHASE_ANNOUNCE;
  s->announce = IMAP_ANN_VANISHED_EARLIER;
  if (s->state != IMAP_SELECTED || (!s->sel.dirty && !s->must_sync))
    return 0;
  s->must_sync = 0;
  return mailproto_imap_sync_start(s);
}

/* RFC 7162 3.2.7 (with QRESYNC on) and RFC 6851 4.4: the OK of an
 * EXPUNGE or MOVE that removed messages carries "[HIGHESTMODSEQ n]", n
 * as of now, after the sync that announced the removals. */
static int expunge_modseq(mailproto_imap *s) {
  if (!s->modseq_ok || !s->removed_sent || s->state != IMAP_SELECTED)
    return 0;
  char code[48];
  snprintf(code, sizeof code, "HIGHESTMODSEQ %llu",
           (unsigned long long)mailproto_imap_view_safe_modseq(s->sel.view));
  mailproto_buf_clear(&s->tagged);
  return set_tagged(s, "OK", code, s->modseq_ok);
}

static int tagged_phase(mailproto_imap *s) {
  int rc = expunge_modseq(s);
  if (rc != 0)
    return rc;
  s->modseq_ok = NULL;
  s->removed_sent = 0;
  rc = mailproto_outq_write(&s->io.out, s->tagged.data, s->tagged.len);
  mailproto_buf_clear(&s->tagged);
  s->phase = IMAP_PHASE_NONE;
  s->idle = 0;
  mailproto_imap_message_reset(s);
  mailproto_imap_search_reset(s);
  mailproto_imap_list_free(s);
  if (rc != 0)
    return out_error(rc);
  if (s->closing) {
    mailproto_imap_close(s);
    return 0;
  }
  if (s->tls_go) {
    /* RFC 3501 6.2.1: the handshake starts right after the OK; every
     * byte the client pipelined after STARTTLS is dropped. */
    s->tls_go = 0;
    mailproto_session_tls_begin(&s->io);
    mailproto_imap_reader_reset(&s->reader);
  }
  return 0;
}

static int work(mailproto_imap *s) {
  switch (s->cmd.id) {
  case MAILPROTO_IMAP_CMD_FETCH:
    return mailproto_imap_fetch_step(s);
  case MAILPROTO_IMAP_CMD_LIST:
  case MAILPROTO_IMAP_CMD_LSUB:
    return mailproto_imap_list_step(s);
  case MAILPROTO_IMAP_CMD_SEARCH:
  case MAILPROTO_IMAP_CMD_SORT:
  case MAILPROTO_IMAP_CMD_THREAD:
    return mailproto_imap_search_step(s);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

/* Runs the command in progress until it waits: for an op, for output
 * room, for client input, or until its tagged reply is out. */
static int run(mailproto_imap *s) {
  int rc = 0;
  while (rc == 0 && !s->io.fatal && !mailproto_op_pending(&s->io.op) &&
         !mailproto_outq_congested(&s->io.out)) {
    switch (s->phase) {
    case IMAP_PHASE_NONE:
    case IMAP_PHASE_INPUT:
      return 0;
    case IMAP_PHASE_WORK:
      rc = work(s);
      break;
    case IMAP_PHASE_SYNC:
      rc = sync_phase(s);
      break;
    case IMAP_PHASE_ANNOUNCE:
      rc = mailproto_imap_announce_step(s);
      if (rc == 0 && s->announce == IMAP_ANN_DONE) {
        if (s->cmd.id == MAILPROTO_IMAP_CMD_IDLE && s->idle != 3)
          rc = mailproto_imap_idle_announced(s);
        else
          s->phase = IMAP_PHASE_TAGGED;
      }
      break;
    case IMAP_PHASE_TAGGED:
      rc = tagged_phase(s);
      break;
    }
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Operations                                                          */
/* ------------------------------------------------------------------ */

static int finish_op(mailproto_imap *s, int kind, int rc) {
  switch (kind) {
  case IMAP_OP_CONNECT:
    return mailproto_imap_connect_done(s, rc);
  case IMAP_OP_AUTHENTICATE:
  case IMAP_OP_LOOKUP_SECRET:
  case IMAP_OP_AUTH_POLICY:
    return mailproto_imap_auth_done(s, kind, rc);
  case IMAP_OP_OPEN:
  case IMAP_OP_SELECT_LIST:
  case IMAP_OP_LIST:
  case IMAP_OP_LIST_STATUS:
  case IMAP_OP_CREATE:
  case IMAP_OP_DELETE:
  case IMAP_OP_RENAME:
  case IMAP_OP_SUBSCRIBE:
  case IMAP_OP_STATUS:
    return mailproto_imap_mailbox_done(s, kind, rc);
  case IMAP_OP_SYNC:
    return mailproto_imap_sync_done(s, rc);
  case IMAP_OP_APPEND_BEGIN:
  case IMAP_OP_WRITE:
  case IMAP_OP_APPEND_COMMIT:
    return mailproto_imap_append_done(s, kind, rc);
  case IMAP_OP_READ:
  case IMAP_OP_SET_FLAGS:
  case IMAP_OP_EXPUNGE:
  case IMAP_OP_COPY:
    return mailproto_imap_message_done(s, kind, rc);
  case IMAP_OP_SEARCH_READ:
    return mailproto_imap_search_done(s, rc);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

int mailproto_imap_after_op(mailproto_imap *s, int kind, int rc) {
  return rc == MAILPROTO_DEFERRED ? 0 : finish_op(s, kind, rc);
}

void mailproto_imap_policy_begin(mailproto_imap *s, int kind) {
  mailproto_reply_clear(&s->reply, &s->alloc);
  mailproto_op_begin(&s->io.op, kind);
}

int mailproto_imap_policy_end(mailproto_imap *s, int rc) {
  if (rc > 0 && rc != MAILPROTO_DEFERRED)
    rc = MAILPROTO_ERR_CALLBACK_FAILURE;
  return mailproto_op_end(&s->io.op, rc);
}

static int op_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  return mailproto_imap_list_add(op->owner, op->kind, mb);
}

static int op_message(mailproto_op *op, const mailproto_message_info *msg) {
  if (op->kind != IMAP_OP_OPEN && op->kind != IMAP_OP_SYNC)
    return 0;
  return mailproto_imap_report_message(op->owner, msg);
}

static int op_keyword(mailproto_op *op, unsigned index, const char *name) {
  if (op->kind != IMAP_OP_OPEN && op->kind != IMAP_OP_SYNC)
    return 0;
  return mailproto_imap_report_keyword(op->owner, index, name);
}

static int op_expunged(mailproto_op *op, uint32_t uid) {
  if (op->kind != IMAP_OP_SYNC)
    return 0;
  return mailproto_imap_report_expunged(op->owner, uid);
}

static int op_modified(mailproto_op *op, uint32_t uid) {
  if (op->kind != IMAP_OP_SET_FLAGS)
    return 0;
  return mailproto_imap_store_modified(op->owner, uid);
}

static int op_uid_map(mailproto_op *op, uint32_t source, uint32_t dest) {
  if (op->kind != IMAP_OP_COPY)
    return 0;
  return mailproto_imap_copy_map(op->owner, source, dest);
}

static int end_batch(mailproto_imap *s, int rc);

static int op_complete(mailproto_op *op, int status) {
  mailproto_imap *s = op->owner;
  int rc = mailproto_session_resume(&s->io);
  if (rc != 0)
    return rc;
  rc = finish_op(s, op->kind, status);
  if (rc == 0)
    rc = run(s);
  return end_batch(s, rc);
}

/* A policy callback's reply: one line of text after "NO " (RFC 3501 7.1:
 * resp-text), which may start with a response code. */
static int op_reply(mailproto_op *op, int code, const char *enhanced,
                    const char *text) {
  static const mailproto_reply_rules rules = {IMAP_POLICY_TEXT_MAX, 0};
  mailproto_imap *s = op->owner;
  if (op->kind != IMAP_OP_CONNECT && op->kind != IMAP_OP_AUTH_POLICY)
    return MAILPROTO_ERR_STATE;
  return mailproto_reply_set(&s->reply, &s->alloc, &rules, code, enhanced,
                             text);
}

static const mailproto_op_sink op_sink = {.mailbox = op_mailbox,
                                          .message = op_message,
                                          .keyword = op_keyword,
                                          .expunged = op_expunged,
                                          .uid_map = op_uid_map,
                                          .modified = op_modified,
                                          .complete = op_complete,
                                          .reply = op_reply};

/* ------------------------------------------------------------------ */
/* Commands                                                            */
/* ------------------------------------------------------------------ */

static int set_tag(mailproto_imap *s, const char *tag, size_t len) {
  mailproto_buf_clear(&s->tag);
  int rc = mailproto_buf_append(&s->tag, tag, len);
  if (rc == 0)
    rc = mailproto_buf_append_byte(&s->tag, 0);
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  s->tag.len = len; /* the NUL stays after the tag */
  return 0;
}

/* Which states a command is valid in (RFC 3501 6, RFC 9051 6). */
enum { ANY, NOT_AUTH, AUTHED, SELECTED };

static int command_state(mailproto_imap_cmd id) {
  switch (id) {
  case MAILPROTO_IMAP_CMD_CAPABILITY:
  case MAILPROTO_IMAP_CMD_NOOP:
  case MAILPROTO_IMAP_CMD_LOGOUT:
  case MAILPROTO_IMAP_CMD_ID:
    return ANY;
  case MAILPROTO_IMAP_CMD_STARTTLS:
  case MAILPROTO_IMAP_CMD_AUTHENTICATE:
  case MAILPROTO_IMAP_CMD_LOGIN:
    return NOT_AUTH;
  case MAILPROTO_IMAP_CMD_CHECK:
  case MAILPROTO_IMAP_CMD_CLOSE:
  case MAILPROTO_IMAP_CMD_UNSELECT:
  case MAILPROTO_IMAP_CMD_EXPUNGE:
  case MAILPROTO_IMAP_CMD_COPY:
  case MAILPROTO_IMAP_CMD_MOVE:
  case MAILPROTO_IMAP_CMD_FETCH:
  case MAILPROTO_IMAP_CMD_STORE:
  case MAILPROTO_IMAP_CMD_SEARCH:
  case MAILPROTO_IMAP_CMD_SORT:
  case MAILPROTO_IMAP_CMD_THREAD:
    return SELECTED;
  default:
    return AUTHED;
  }
}

/* The BAD reply for a command given in the wrong state, or NULL. */
static const char *wrong_state(const mailproto_imap *s, mailproto_imap_cmd id) {
  switch (command_state(id)) {
  case NOT_AUTH:
    return s->state == IMAP_NOT_AUTH ? NULL : "Already authenticated";
  case AUTHED:
    return s->state == IMAP_NOT_AUTH ? "Log in first" : NULL;
  case SELECTED:
    if (s->state == IMAP_SELECTED)
      return NULL;
    return s->state == IMAP_NOT_AUTH ? "Log in first" : "No mailbox selected";
  default:
    return NULL;
  }
}

static int cmd_noop(mailproto_imap *s) {
  /* RFC 3501 6.1.2: NOOP (and CHECK, 6.4.1) is the client's poll. */
  s->must_sync = 1;
  return mailproto_imap_done(s, "OK", NULL,
                             s->cmd.id == MAILPROTO_IMAP_CMD_CHECK
                                 ? "CHECK completed"
                                 : "NOOP completed");
}

static int cmd_logout(mailproto_imap *s) {
  /* RFC 3501 6.1.3: BYE first, then the tagged OK; nothing is expunged. */
  int rc = mailproto_imap_untagged(s, "BYE", NULL, "Logging out");
  if (rc != 0)
    return rc;
  s->closing = 1;
  s->phase = IMAP_PHASE_TAGGED;
  return set_tagged(s, "OK", NULL, "LOGOUT completed");
}

static int dispatch(mailproto_imap *s) {
  const mailproto_imap_command *c = &s->cmd;
  /* RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE or SEARCH; COPY is
   * kept with them because a client may pipeline it after a FETCH. */
  switch (c->id) {
  case MAILPROTO_IMAP_CMD_FETCH:
  case MAILPROTO_IMAP_CMD_STORE:
  case MAILPROTO_IMAP_CMD_SEARCH:
  case MAILPROTO_IMAP_CMD_SORT:
  case MAILPROTO_IMAP_CMD_THREAD:
  case MAILPROTO_IMAP_CMD_COPY:
    s->expunge_ok = c->uid != 0;
    break;
  default:
    s->expunge_ok = 1;
  }
  s->uid_fetch = c->uid != 0;
  s->must_sync = 0;
  const char *bad = wrong_state(s, c->id);
  if (bad)
    return mailproto_imap_done(s, "BAD", NULL, bad);
  switch (c->id) {
  case MAILPROTO_IMAP_CMD_CAPABILITY:
    return mailproto_imap_cmd_capability(s);
  case MAILPROTO_IMAP_CMD_NOOP:
  case MAILPROTO_IMAP_CMD_CHECK:
    return cmd_noop(s);
  case MAILPROTO_IMAP_CMD_LOGOUT:
    return cmd_logout(s);
  case MAILPROTO_IMAP_CMD_ID:
    return mailproto_imap_cmd_id(s);
  case MAILPROTO_IMAP_CMD_STARTTLS:
    return mailproto_imap_cmd_starttls(s);
  case MAILPROTO_IMAP_CMD_AUTHENTICATE:
    return mailproto_imap_cmd_authenticate(s);
  case MAILPROTO_IMAP_CMD_LOGIN:
    return mailproto_imap_cmd_login(s);
  case MAILPROTO_IMAP_CMD_ENABLE:
    return mailproto_imap_cmd_enable(s);
  case MAILPROTO_IMAP_CMD_SELECT:
  case MAILPROTO_IMAP_CMD_EXAMINE:
    return mailproto_imap_cmd_select(s);
  case MAILPROTO_IMAP_CMD_CREATE:
    return mailproto_imap_cmd_create(s);
  case MAILPROTO_IMAP_CMD_DELETE:
    return mailproto_imap_cmd_delete(s);
  case MAILPROTO_IMAP_CMD_RENAME:
    return mailproto_imap_cmd_rename(s);
  case MAILPROTO_IMAP_CMD_SUBSCRIBE:
    return mailproto_imap_cmd_subscribe(s, 1);
  case MAILPROTO_IMAP_CMD_UNSUBSCRIBE:
    return mailproto_imap_cmd_subscribe(s, 0);
  case MAILPROTO_IMAP_CMD_LIST:
  case MAILPROTO_IMAP_CMD_LSUB:
    return mailproto_imap_cmd_list(s);
  case MAILPROTO_IMAP_CMD_NAMESPACE:
    return mailproto_imap_cmd_namespace(s);
  case MAILPROTO_IMAP_CMD_STATUS:
    return mailproto_imap_cmd_status(s);
  case MAILPROTO_IMAP_CMD_APPEND:
    /* Only an APPEND whose message was accepted inline (it fitted the
     * literal limits) gets here; see literal(). */
    return mailproto_imap_done(s, "BAD", NULL, "Invalid literal");
  case MAILPROTO_IMAP_CMD_IDLE:
    return mailproto_imap_cmd_idle(s);
  case MAILPROTO_IMAP_CMD_CLOSE:
    return mailproto_imap_cmd_close(s, 1);
  case MAILPROTO_IMAP_CMD_UNSELECT:
    return mailproto_imap_cmd_close(s, 0);
  case MAILPROTO_IMAP_CMD_EXPUNGE:
    return mailproto_imap_cmd_expunge(s);
  case MAILPROTO_IMAP_CMD_COPY:
    return mailproto_imap_cmd_copy(s, 0);
  case MAILPROTO_IMAP_CMD_MOVE:
    return mailproto_imap_cmd_copy(s, 1);
  case MAILPROTO_IMAP_CMD_FETCH:
    return mailproto_imap_cmd_fetch(s);
  case MAILPROTO_IMAP_CMD_STORE:
    return mailproto_imap_cmd_store(s);
  case MAILPROTO_IMAP_CMD_SEARCH:
  case MAILPROTO_IMAP_CMD_SORT:
  case MAILPROTO_IMAP_CMD_THREAD:
    return mailproto_imap_cmd_search(s);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

/* parse_copy(): the BAD reply was decided. */
#define PARSE_BAD 2

/* Copies the command out of the reader (its bytes may be the caller's
 * input, gone when feed returns, while the command may wait for the
 * store), then parses it. Returns what the parser returned (0, or 1 from
 * mailproto_imap_parse_append_start) with s->cmd filled, PARSE_BAD when
 * the BAD reply was decided, or a fatal code. */
static int parse_copy(mailproto_imap *s, const uint8_t *data, size_t len,
                      int append_start) {
  mailproto_buf_clear(&s->cmdbuf);
  int rc = mailproto_buf_append(&s->cmdbuf, data, len);
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  if (append_start)
    rc = mailproto_imap_parse_append_start(&s->parser, s->cmdbuf.data, len,
                                           &s->cmd);
  else
    rc = mailproto_imap_parse(&s->parser, s->cmdbuf.data, len, &s->cmd);
  if (rc == MAILPROTO_ERR_NOMEM)
    return rc;
  int trc = set_tag(s, s->cmd.tag.data ? s->cmd.tag.data : "",
                    s->cmd.tag.data ? s->cmd.tag.len : 0);
  if (trc != 0)
    return trc;
  if (rc < 0) {
    trc = mailproto_imap_done(s, "BAD", NULL,
                              mailproto_imap_parser_error(&s->parser));
    return trc != 0 ? trc : PARSE_BAD;
  }
  return rc;
}

static int command(mailproto_imap *s, const uint8_t *data, size_t len) {
  int rc = parse_copy(s, data, len, 0);
  if (rc != 0)
    return rc == PARSE_BAD ? 0 : rc;
  return dispatch(s);
}

/* Whether a LITERAL event's command is an APPEND (so its last literal may
 * be the message): a quick look before parsing. */
static int is_append(const mailproto_imap_event *ev) {
  static const char name[] = "APPEND ";
  size_t at = ev->tag_len + 1;
  if (ev->tag_len == 0 || ev->len < at + sizeof name - 1)
    return 0;
  for (size_t i = 0; i < sizeof name - 1; i++) {
    uint8_t c = ev->data[at + i];
    if (c >= 'a' && c <= 'z')
      c = (uint8_t)(c - 'a' + 'A');
    if (c != (uint8_t)name[i])
      return 0;
  }
  return 1;
}

static int refuse_literal(mailproto_imap *s, const mailproto_imap_event *ev,
                          const char *code, const char *text) {
  int rc = mailproto_imap_reader_reject(&s->reader);
  if (rc == 0)
    rc = set_tag(s, ev->tag, ev->tag_len);
  return rc != 0 ? rc : mailproto_imap_done(s, "BAD", code, text);
}

static int literal(mailproto_imap *s, const mailproto_imap_event *ev) {
  if (is_append(ev)) {
    if (s->state == IMAP_NOT_AUTH)
      return refuse_literal(s, ev, NULL, "Log in first");
    int rc = parse_copy(s, ev->data, ev->len, 1);
    if (rc < 0)
      return rc;
    if (rc == PARSE_BAD) {
      /* The APPEND is malformed before its message: nothing of the
       * message is read (RFC 7888 4 lets the reply come first). */
      return mailproto_imap_reader_reject(&s->reader);
    }
    if (s->cmd.id == MAILPROTO_IMAP_CMD_APPEND && rc == 1 &&
        s->cmd.u.append.message_count > 0 &&
        s->cmd.u.append.messages[s->cmd.u.append.message_count - 1].data ==
            NULL) {
      return mailproto_imap_append_literal(s, ev);
    }
  }
  if (!ev->literal_fits) {
    const char *why = ev->literal_refusal ? ev->literal_refusal : "Too big";
    int count = strcmp(why, "Too many literals") == 0;
    return refuse_literal(s, ev, count ? "LIMIT" : "TOOBIG", why);
  }
  int rc = mailproto_imap_reader_accept(&s->reader);
  if (rc == MAILPROTO_ERR_TOO_LONG)
    return refuse_literal(s, ev, "TOOBIG", "Command too long");
  if (rc != 0)
    return rc;
  /* RFC 3501 7.5: the go-ahead for a synchronising literal. */
  return ev->literal_sync ? mailproto_imap_continue(s, "Ready for literal data")
                          : 0;
}

/* The reader found the command broken (RFC 3501 7.1.5). */
static int reader_error(mailproto_imap *s, const mailproto_imap_event *ev) {
  if (mailproto_imap_appending(s))
    mailproto_imap_append_reset(s);
  int rc = set_tag(s, ev->tag, ev->tag_len);
  if (rc != 0)
    return rc;
  return mailproto_imap_done(s, "BAD", ev->code, ev->text);
}

static int on_event(mailproto_imap *s, const mailproto_imap_event *ev) {
  switch (ev->type) {
  case MAILPROTO_IMAP_EVENT_COMMAND:
    if (ev->continued)
      return mailproto_imap_append_rest(s, ev);
    return command(s, ev->data, ev->len);
  case MAILPROTO_IMAP_EVENT_LITERAL:
    if (ev->continued)
      return mailproto_imap_append_rest(s, ev);
    return literal(s, ev);
  case MAILPROTO_IMAP_EVENT_RAW:
    return mailproto_imap_append_data(s, ev->data, ev->len);
  case MAILPROTO_IMAP_EVENT_RAW_END:
    return mailproto_imap_append_end(s);
  case MAILPROTO_IMAP_EVENT_LINE:
    if (s->idle)
      return mailproto_imap_idle_line(s, ev->data, ev->len);
    if (s->sasl)
      return mailproto_imap_sasl_line(s, ev->data, ev->len, ev->line_too_long);
    return MAILPROTO_ERR_INTERNAL;
  case MAILPROTO_IMAP_EVENT_ERROR:
    return reader_error(s, ev);
  }
  return MAILPROTO_ERR_INTERNAL;
}

/* ------------------------------------------------------------------ */
/* Life cycle helpers                                                  */
/* ------------------------------------------------------------------ */

void mailproto_imap_set_reader_limits(mailproto_imap *s) {
  const mailproto_imap_config *c = &s->config;
  mailproto_imap_reader_limits l = {c->max_line, c->max_literal, c->max_command,
                                    c->max_literals, c->literal_minus};
  if (s->state == IMAP_NOT_AUTH || s->state == IMAP_GREETING) {
    if (l.max_literal > IMAP_UNAUTH_LITERAL)
      l.max_literal = IMAP_UNAUTH_LITERAL;
    if (l.max_command > IMAP_UNAUTH_COMMAND)
      l.max_command = IMAP_UNAUTH_COMMAND;
  }
  mailproto_imap_reader_set_limits(&s->reader, &l);
}

int mailproto_imap_challenge(mailproto_imap *s, char *out, size_t size) {
  s->challenges++;
  uint64_t nonce = mailproto_nonce_default(s, s->challenges);
  int64_t now =
      s->cb.now ? s->cb.now(s, s->user_data).utc : (int64_t)time(NULL);
  char unique[17];
  snprintf(unique, sizeof unique, "%llx", (unsigned long long)nonce);
  int n = mailproto_nonce_challenge(out, size, unique, now, "localhost");
  return n < 0 ? MAILPROTO_ERR_INTERNAL : 0;
}

void mailproto_imap_close(mailproto_imap *s) {
  s->state = IMAP_LOGOUT;
  s->phase = IMAP_PHASE_NONE;
  s->idle = 0;
  mailproto_imap_auth_reset(s);
  mailproto_imap_append_reset(s);
  mailproto_imap_message_reset(s);
  mailproto_imap_search_reset(s);
  mailproto_imap_list_free(s);
  mailproto_imap_unselect(s);
  mailproto_store_call_release_account(&s->store, s->account);
  s->account = NULL;
}

/* An idle session gives back what its commands made it hold (DESIGN.md:
 * an idle session costs about a kilobyte): the next command allocates
 * again what it needs. */
static void trim(mailproto_imap *s) {
  if (s->cmdbuf.data)
    mailproto_secure_zero(s->cmdbuf.data, s->cmdbuf.cap); /* a password? */
  mailproto_buf_free(&s->cmdbuf);
  mailproto_buf_free(&s->line);
  mailproto_buf_free(&s->tagged);
  mailproto_buf_free(&s->tag);
  /* Between commands nothing of the parser's or the reader's is in use. */
  mailproto_imap_parser_free(&s->parser);
  mailproto_imap_reader_reset(&s->reader);
}

static int busy(const mailproto_imap *s) {
  return s->phase != IMAP_PHASE_NONE || mailproto_imap_reader_busy(&s->reader);
}

/* The output queue's buffer too, once the client has taken everything:
 * the session struct alone is about 2 KiB, so the kilobyte the core keeps
 * for reuse (MAILPROTO_SESSION_KEEP) would make an idle IMAP session miss
 * its 2 KiB goal (issue 7); the next response allocates it again. */
static void release_output(mailproto_imap *s) {
  if (!busy(s) && !mailproto_op_pending(&s->io.op) && s->state != IMAP_GREETING)
    mailproto_outq_trim(&s->io.out, 0);
}

/* Every entry point ends here: sends what the batch queued, makes a
 * failure sticky, starts TLS once STARTTLS's OK is out, and gives back
 * the buffers of a burst once nothing is in progress. */
static int end_batch(mailproto_imap *s, int rc) {
  int b = busy(s);
  if (rc == 0 && !b && !mailproto_op_pending(&s->io.op) &&
      s->state != IMAP_GREETING)
    trim(s);
  rc = mailproto_session_leave(&s->io, rc, b);
  if (rc == 0)
    release_output(s);
  return rc;
}

/* ------------------------------------------------------------------ */
/* The contract                                                        */
/* ------------------------------------------------------------------ */

/* Length of a configured text, or -1 if it is too long or not printable
 * ASCII. */
static long text_len(const char *t) {
  size_t n = 0;
  for (; t[n]; n++)
    if (n >= IMAP_TEXT_MAX || (unsigned char)t[n] < 0x20 ||
        (unsigned char)t[n] >= 0x7f)
      return -1;
  return (long)n;
}

static int check_config(const mailproto_imap_config *c) {
  long g = c->greeting ? text_len(c->greeting) : -1;
  long i = c->id_name ? text_len(c->id_name) : 0;
  if (g < 0 || i < 0 || (c->id_name && i == 0) || c->max_line < IMAP_LINE_MIN ||
      c->max_line > IMAP_LINE_MAX || c->max_command < c->max_line ||
      c->max_literal > c->max_command || c->max_nesting == 0 ||
      c->max_sequence_ranges == 0 || c->output_watermark < IMAP_WATERMARK_MIN ||
      c->output_watermark > IMAP_WATERMARK_MAX)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return 0;
}

int mailproto_imap_new(const mailproto_imap_config *config,
                       const mailproto_imap_callbacks *callbacks,
                       const mailproto_store *store, void *user_data,
                       mailproto_imap **out) {
  mailproto_imap_config cfg;
  mailproto_imap_callbacks cb;
  if (!out)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  *out = NULL;
  mailproto_imap_config_init(&cfg, sizeof cfg);
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  if (!callbacks || !store || !store->ops ||
      mailproto_session_copy_sized(&cb, sizeof cb, callbacks,
                                   offsetof(mailproto_imap_callbacks, send) +
                                       sizeof cb.send) != 0 ||
      !cb.send)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (config && mailproto_session_copy_sized(
                    &cfg, sizeof cfg, config,
                    offsetof(mailproto_imap_config, greeting)) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = check_config(&cfg);
  if (rc != 0)
    return rc;

  const mailproto_allocator *alloc =
      cfg.allocator ? cfg.allocator : mailproto_default_allocator();
  mailproto_imap *s = mailproto_mem_calloc(alloc, 1, sizeof *s);
  if (!s)
    return MAILPROTO_ERR_NOMEM;
  s->alloc = *alloc;
  cfg.allocator = NULL; /* the session's copy is s->alloc */
  cfg.sasl_mechanisms &= MAILPROTO_SASL_ALL;
  s->config = cfg;
  const char **const strings[] = {&s->config.greeting, &s->config.id_name};
  if (mailproto_session_copy_strings(&s->alloc, strings, 2, &s->strings) != 0) {
    mailproto_mem_free(&s->alloc, s);
    return MAILPROTO_ERR_NOMEM;
  }
  s->cb = cb;
  s->store = *store;
  s->user_data = user_data;
  mailproto_session_setup io = {.alloc = &s->alloc,
                                .max_line = cfg.max_line + 2,
                                .out_limit =
                                    cfg.output_watermark + IMAP_REPLY_SLACK,
                                .watermark = cfg.output_watermark,
                                .send = send_to_transport,
                                .start_tls = cb.start_tls ? start_tls : NULL,
                                .sink = &op_sink,
                                .owner = s,
                                .secure = cfg.secure};
  mailproto_session_init(&s->io, &io);
  s->state = IMAP_GREETING;
  mailproto_imap_reader_limits l = {0, 0, 0, 0, 0};
  mailproto_imap_reader_init(&s->reader, &s->alloc, &l);
  mailproto_imap_set_reader_limits(s);
  mailproto_imap_parser_limits pl = {cfg.max_nesting, cfg.max_sequence_ranges,
                                     IMAP_PARSER_MEMORY};
  mailproto_imap_parser_init(&s->parser, &s->alloc, &pl);
  mailproto_buf_init(&s->cmdbuf, &s->alloc, cfg.max_command);
  mailproto_buf_init(&s->tag, &s->alloc, cfg.max_line + 1);
  mailproto_buf_init(&s->line, &s->alloc, IMAP_REPLY_SLACK);
  mailproto_buf_init(&s->tagged, &s->alloc, IMAP_REPLY_SLACK);
  *out = s;
  return 0;
}

int mailproto_imap_set_client(mailproto_imap *s, const char *address) {
  if (!s || !address)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.started)
    return MAILPROTO_ERR_STATE;
  char *copy = mailproto_mem_strdup(&s->alloc, address);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  mailproto_mem_free(&s->alloc, s->client);
  s->client = copy;
  return 0;
}

int mailproto_imap_start(mailproto_imap *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_start(&s->io);
  if (rc != 0)
    return rc;
  if (s->cb.connect) {
    mailproto_imap_policy_begin(s, IMAP_OP_CONNECT);
    rc = s->cb.connect(s, &s->io.op, s->client ? s->client : "", s->user_data);
    rc = mailproto_imap_after_op(s, IMAP_OP_CONNECT,
                                 mailproto_imap_policy_end(s, rc));
  } else {
    rc = mailproto_imap_greeting(s);
  }
  return end_batch(s, rc);
}

/* Whether the next input byte may be consumed now. */
static int can_consume(const mailproto_imap *s) {
  return mailproto_session_can_read(&s->io) && s->state != IMAP_GREETING &&
         s->state != IMAP_LOGOUT &&
         (s->phase == IMAP_PHASE_NONE || s->phase == IMAP_PHASE_INPUT);
}

ptrdiff_t mailproto_imap_feed(mailproto_imap *s, const uint8_t *data,
                              size_t len) {
  if (!s || (!data && len))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  size_t used = 0;
  while (rc == 0 && used < len && can_consume(s)) {
    /* Bytes pipelined after STARTTLS came in the clear: a man in the
     * middle may have put them there (RFC 3501 6.2.1, RFC 2595 3.1). */
    if (mailproto_session_drop(&s->io, &used, len))
      break;
    size_t n = 0;
    mailproto_imap_event ev;
    int got = mailproto_imap_reader_next(&s->reader, data + used, len - used,
                                         &n, &ev);
    used += n;
    if (got < 0)
      rc = got == MAILPROTO_ERR_NOMEM ? got : MAILPROTO_ERR_INTERNAL;
    else if (got == 1 && (rc = on_event(s, &ev)) == 0)
      rc = run(s);
  }
  int b = busy(s);
  if (rc == 0 && !b && !mailproto_op_pending(&s->io.op) &&
      s->state != IMAP_GREETING)
    trim(s);
  ptrdiff_t r = mailproto_session_fed(&s->io, rc, used, b);
  if (r >= 0)
    release_output(s);
  return r;
}

int mailproto_imap_writable(mailproto_imap *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_flush(&s->io);
  if (rc != 0)
    return rc;
  /* A fast transport takes each batch at once: keep producing until it
   * pushes back, an op is deferred, or the command waits for input. */
  while (s->phase != IMAP_PHASE_NONE && s->phase != IMAP_PHASE_INPUT &&
         !mailproto_op_pending(&s->io.op) &&
         !mailproto_outq_congested(&s->io.out)) {
    mailproto_session_begin(&s->io);
    if ((rc = end_batch(s, run(s))) < 0)
      return rc;
  }
  rc = mailproto_session_settle(&s->io, busy(s));
  if (rc == 0)
    release_output(s);
  return rc;
}

int mailproto_imap_set_secure(mailproto_imap *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (s->io.fatal)
    return s->io.fatal;
  int was_started = s->io.started;
  int rc = mailproto_session_tls_done(&s->io);
  if (rc != 0 || !was_started)
    return rc;
  /* RFC 3501 6.2.1: nothing said in the clear survives; the client asks
   * for CAPABILITY again. */
  mailproto_imap_reader_reset(&s->reader);
  mailproto_imap_auth_reset(s);
  return 0;
}

int mailproto_imap_sync(mailproto_imap *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  if (s->state == IMAP_SELECTED)
    s->sel.dirty = 1;
  /* RFC 2177 3: while idling, changes go out as they come. Otherwise
   * they wait for the next command that may report them. */
  if (s->idle == 2 && s->phase == IMAP_PHASE_INPUT &&
      s->state == IMAP_SELECTED) {
    s->must_sync = 1;
    s->phase = IMAP_PHASE_SYNC;
    rc = run(s);
  }
  return end_batch(s, rc);
}

int mailproto_imap_keepalive(mailproto_imap *s) {
  if (!s)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  int rc = mailproto_session_enter(&s->io);
  if (rc != 0)
    return rc;
  if (s->idle == 2 && s->phase == IMAP_PHASE_INPUT)
    rc = mailproto_imap_untagged(s, "OK", NULL, "Still here");
  return end_batch(s, rc);
}

int mailproto_imap_want_read(const mailproto_imap *s) {
  return s && can_consume(s);
}

int mailproto_imap_want_write(const mailproto_imap *s) {
  return s && mailproto_session_want_write(
                  &s->io, s->phase != IMAP_PHASE_NONE &&
                              s->phase != IMAP_PHASE_INPUT &&
                              !mailproto_op_pending(&s->io.op));
}

int mailproto_imap_closed(const mailproto_imap *s) {
  return s && mailproto_session_closed(&s->io, s->state == IMAP_LOGOUT);
}

const char *mailproto_imap_user(const mailproto_imap *s) {
  return s ? s->user : NULL;
}

int mailproto_imap_idling(const mailproto_imap *s) {
  return s && s->idle == 2 && !s->io.fatal;
}

void mailproto_imap_free(mailproto_imap *s) {
  if (!s)
    return;
  /* A policy op is abandoned by mailproto_session_free(): the application
   * must not complete it. A store op is cancelled; a handle its hook was
   * to hand over is then the backend's, and cleared here. */
  int kind = s->io.op.kind;
  if (kind != IMAP_OP_CONNECT && kind != IMAP_OP_AUTH_POLICY)
    mailproto_store_call_cancel(&s->store, &s->io.op);
  mailproto_imap_close(s);
  mailproto_reply_clear(&s->reply, &s->alloc);
  mailproto_mem_free(&s->alloc, s->user);
  mailproto_mem_free(&s->alloc, s->client);
  mailproto_mem_free(&s->alloc, s->strings);
  mailproto_imap_reader_free(&s->reader);
  mailproto_imap_parser_free(&s->parser);
  if (s->cmdbuf.data)
    mailproto_secure_zero(s->cmdbuf.data, s->cmdbuf.cap);
  mailproto_buf_free(&s->cmdbuf);
  mailproto_buf_free(&s->tag);
  mailproto_buf_free(&s->line);
  mailproto_buf_free(&s->tagged);
  mailproto_session_free(&s->io);
  mailproto_allocator alloc = s->alloc;
  mailproto_mem_free(&alloc, s);
}
