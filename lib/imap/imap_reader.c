/*
 * The IMAP command reader (see imap_reader.h): lines come from the core
 * line reader (memchr for line ends, bounded partial lines); this file
 * adds literals (RFC 3501 4.3 and 7.5, RFC 7888, RFC 3516) and the
 * discarding of refused or broken commands.
 */
#include "imap/imap_reader.h"

#include <string.h>

#include "core/alloc.h"
#include "imap/imap_parser.h"

/* An assembled command buffer above this size is given back once its
 * command is done, so one big command does not make an idle session
 * expensive. */
#define COMMAND_KEEP_BYTES 4096u

static void clear_command(mailproto_imap_reader *r) {
  if (r->command.cap > COMMAND_KEEP_BYTES) {
    mailproto_secure_zero(r->command.data, r->command.cap);
    mailproto_buf_free(&r->command);
  } else {
    if (r->command.data)
      mailproto_secure_zero(r->command.data, r->command.len);
    mailproto_buf_clear(&r->command);
  }
  r->command.max = r->limits.max_command;
}

/* The command is over (handed out, refused or discarded). */
static void end_command(mailproto_imap_reader *r) {
  r->state = MAILPROTO_IMAP_READER_LINE;
  r->literals = 0;
  r->accepted = 0;
  r->in_command = 0;
  r->continued = 0;
  r->tag_len = 0;
  r->tag[0] = '\0';
}

static size_t line_max(const mailproto_imap_reader_limits *l) {
  size_t m;
  /* The line reader's limit counts the CRLF; max_line does not. */
  if (mailproto_size_add(l->max_line, 2, &m) != 0)
    m = l->max_line;
  return m;
}

void mailproto_imap_reader_init(mailproto_imap_reader *r,
                                const mailproto_allocator *alloc,
                                const mailproto_imap_reader_limits *limits) {
  memset(r, 0, sizeof *r);
  r->alloc = alloc;
  r->limits = *limits;
  mailproto_line_reader_init(&r->lines, alloc, line_max(limits));
  mailproto_buf_init(&r->command, alloc, limits->max_command);
  end_command(r);
}

void mailproto_imap_reader_free(mailproto_imap_reader *r) {
  mailproto_line_reader_free(&r->lines);
  if (r->command.data)
    mailproto_secure_zero(r->command.data, r->command.cap);
  mailproto_buf_free(&r->command);
  end_command(r);
}

void mailproto_imap_reader_reset(mailproto_imap_reader *r) {
  /* Free (not just clear) the line buffer: a reset session is idle. */
  mailproto_line_reader_free(&r->lines);
  mailproto_line_reader_init(&r->lines, r->alloc, line_max(&r->limits));
  if (r->command.data)
    mailproto_secure_zero(r->command.data, r->command.cap);
  mailproto_buf_free(&r->command);
  r->command.max = r->limits.max_command;
  end_command(r);
  r->remaining = 0;
  r->raw_line = 0;
  r->stream_ended = 0;
  r->handed_out = 0;
  r->tail_len = 0;
}

void mailproto_imap_reader_set_limits(mailproto_imap_reader *r,
                                      const mailproto_imap_reader_limits *l) {
  r->limits = *l;
  mailproto_line_reader_set_max(&r->lines, line_max(l));
  /* A command being assembled keeps its limit; the next one gets the new
   * one (clear_command). */
  if (!r->in_command)
    r->command.max = l->max_command;
}

int mailproto_imap_reader_raw_line(mailproto_imap_reader *r) {
  if (mailproto_imap_reader_busy(r))
    return MAILPROTO_ERR_STATE;
  r->raw_line = 1;
  return 0;
}

int mailproto_imap_reader_busy(const mailproto_imap_reader *r) {
  return r->in_command || r->state != MAILPROTO_IMAP_READER_LINE ||
         mailproto_line_reader_buffered(&r->lines) > 0 || r->lines.overflow ||
         r->stream_ended;
}

size_t mailproto_imap_reader_buffered(const mailproto_imap_reader *r) {
  return r->lines.partial.cap + r->command.cap;
}

int mailproto_imap_literal_header(const uint8_t *line, size_t len,
                                  uint64_t *size, int *sync, int *binary,
                                  size_t *start) {
  if (len < 3 || line[len - 1] != '}')
    return 0;
  size_t i = len - 1;
  int plus = 0;
  if (line[i - 1] == '+') {
    plus = 1;
    i--;
  }
  size_t end = i; /* one past the last digit */
  size_t digits = 0;
  while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') {
    i--;
    if (++digits > 20)
      return -1;
  }
  if (digits == 0 || i == 0 || line[i - 1] != '{')
    return 0;
  uint64_t v = 0;
  for (size_t k = i; k < end; k++) {
    uint64_t d = (uint64_t)(line[k] - '0');
    /* number64 (RFC 9051 9): at most 2^63 - 1. */
    if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  i--; /* at "{" */
  *binary = i > 0 && line[i - 1] == '~';
  *start = *binary ? i - 1 : i;
  *size = v;
  *sync = !plus;
  return 1;
}

void mailproto_imap_extract_tag(const uint8_t *data, size_t len,
                                char tag[MAILPROTO_IMAP_TAG_MAX + 1],
                                size_t *tag_len) {
  size_t i = 0;
  while (i < len && i <= MAILPROTO_IMAP_TAG_MAX && data[i] != ' ' &&
         data[i] != '+' && mailproto_imap_is_astring_char(data[i]))
    i++;
  if (i == 0 || i > MAILPROTO_IMAP_TAG_MAX || i >= len || data[i] != ' ') {
    *tag_len = 0;
    tag[0] = '\0';
    return;
  }
  memcpy(tag, data, i);
  tag[i] = '\0';
  *tag_len = i;
}

/* Keeps the last bytes of the line being read, so a literal header at the
 * end of a line too long to keep is still seen. */
static void track_tail(mailproto_imap_reader *r, const uint8_t *p, size_t n) {
  size_t cap = sizeof r->tail;
  if (n >= cap) {
    memcpy(r->tail, p + n - cap, cap);
    r->tail_len = cap;
    return;
  }
  if (r->tail_len + n > cap) {
    size_t drop = r->tail_len + n - cap;
    memmove(r->tail, r->tail + drop, r->tail_len - drop);
    r->tail_len -= drop;
  }
  memcpy(r->tail + r->tail_len, p, n);
  r->tail_len += n;
}

/* After a refused or broken line: a non-synchronising literal at its end
 * is skipped and the command discarded to its end; anything else ends the
 * command here (a client that sent "{n}" waits for "+", which never
 * comes, and takes the tagged reply as the end of the command). */
static void drop_rest(mailproto_imap_reader *r, int lit, uint64_t size,
                      int sync) {
  clear_command(r);
  if (lit == 1 && !sync) {
    r->state =
        size ? MAILPROTO_IMAP_READER_SKIP : MAILPROTO_IMAP_READER_DISCARD;
    r->remaining = size;
    r->in_command = 1;
  } else {
    end_command(r);
  }
}

static void error_event(mailproto_imap_reader *r, mailproto_imap_event *ev,
                        const char *text, const char *code) {
  memset(ev, 0, sizeof *ev);
  ev->type = MAILPROTO_IMAP_EVENT_ERROR;
  memcpy(ev->tag, r->tag, r->tag_len + 1);
  ev->tag_len = r->tag_len;
  ev->text = text;
  ev->code = code;
}

/* Why accepting the pending literal would break a limit, or NULL. `held`
 * counts command bytes not yet in the buffer (a line handed out in
 * place). */
static const char *refusal(const mailproto_imap_reader *r, size_t held) {
  const mailproto_imap_reader_limits *l = &r->limits;
  size_t used;
  if (r->pending_size > l->max_literal)
    return "Literal too big";
  if (r->accepted >= l->max_literals)
    return "Too many literals";
  /* CRLF after the header, then the literal. */
  if (mailproto_size_add(r->command.len, held, &used) != 0 ||
      used > r->command.max || r->command.max - used < 2 ||
      r->pending_size > r->command.max - used - 2)
    return "Command too long";
  return NULL;
}

/* A complete line of a command (state LINE). Returns 1 with an event. */
static int command_line(mailproto_imap_reader *r, const mailproto_line *line,
                        mailproto_imap_event *ev) {
  const uint8_t *d = line->data;
  size_t n = line->len;
  uint64_t size = 0;
  int sync = 0, binary = 0;
  size_t start = 0;
  int lit;

  if (!r->in_command && !r->continued)
    mailproto_imap_extract_tag(d, n, r->tag, &r->tag_len);
  if (line->flags & MAILPROTO_LINE_TOO_LONG) {
    lit = mailproto_imap_literal_header(r->tail, r->tail_len, &size, &sync,
                                        &binary, &start);
    error_event(r, ev, "Command line too long", NULL);
    drop_rest(r, lit, size, sync);
    return 1;
  }
  lit = mailproto_imap_literal_header(d, n, &size, &sync, &binary, &start);
  if (line->flags & MAILPROTO_LINE_HAS_NUL) {
    error_event(r, ev, "NUL in command", NULL);
    drop_rest(r, lit, size, sync);
    return 1;
  }
  if (lit < 0) {
    error_event(r, ev, "Invalid literal size", NULL);
    drop_rest(r, 0, 0, 0);
    return 1;
  }
  if (lit == 1 && !sync && r->limits.literal_minus &&
      size > MAILPROTO_IMAP_LITERAL_MINUS_MAX) {
    /* RFC 7888 5: BAD with TOOBIG; the literal is skipped as section 4
     * says, so its bytes are never commands. */
    error_event(r, ev, "Non-synchronizing literal too big", "TOOBIG");
    drop_rest(r, lit, size, sync);
    return 1;
  }

  if (lit == 0 && r->command.len == 0) {
    /* The common case: the whole command is this line, handed out in
     * place. */
    memset(ev, 0, sizeof *ev);
    ev->type = MAILPROTO_IMAP_EVENT_COMMAND;
    ev->data = d;
    ev->len = n;
    ev->continued = r->continued;
    memcpy(ev->tag, r->tag, r->tag_len + 1);
    ev->tag_len = r->tag_len;
    end_command(r);
    return 1;
  }

  if (lit == 1) {
    r->pending_size = size;
    r->pending_sync = sync;
    r->pending_binary = binary;
  }
  /* A literal that cannot be accepted costs nothing: its line is handed
   * out in place ("{4294967295}" before login allocates nothing). */
  if (lit == 1 && r->command.len == 0 && refusal(r, n) != NULL) {
    r->held = n;
    memset(ev, 0, sizeof *ev);
    ev->data = d;
    ev->len = n;
  } else {
    int rc = mailproto_buf_append(&r->command, d, n);
    if (rc == MAILPROTO_ERR_NOMEM)
      return rc;
    if (rc != 0) {
      error_event(r, ev, "Command too long", NULL);
      drop_rest(r, lit, size, sync);
      return 1;
    }
    r->held = 0;
    memset(ev, 0, sizeof *ev);
    ev->data = r->command.data;
    ev->len = r->command.len;
  }
  ev->continued = r->continued;
  memcpy(ev->tag, r->tag, r->tag_len + 1);
  ev->tag_len = r->tag_len;
  if (lit == 0) {
    ev->type = MAILPROTO_IMAP_EVENT_COMMAND;
    r->handed_out = 1;
    end_command(r);
    return 1;
  }
  ev->type = MAILPROTO_IMAP_EVENT_LITERAL;
  r->state = MAILPROTO_IMAP_READER_DECIDE;
  r->in_command = 1;
  ev->literal_size = size;
  ev->literal_sync = sync;
  ev->literal_binary = binary;
  ev->literal_index = r->literals++;
  ev->literal_refusal = refusal(r, r->held);
  ev->literal_fits = ev->literal_refusal == NULL;
  return 1;
}

/* A complete line while discarding the rest of a refused command. */
static void discard_line(mailproto_imap_reader *r, const mailproto_line *line) {
  uint64_t size = 0;
  int sync = 0, binary = 0;
  size_t start = 0;
  int lit;
  if (line->flags & MAILPROTO_LINE_TOO_LONG)
    lit = mailproto_imap_literal_header(r->tail, r->tail_len, &size, &sync,
                                        &binary, &start);
  else
    lit = mailproto_imap_literal_header(line->data, line->len, &size, &sync,
                                        &binary, &start);
  drop_rest(r, lit, size, sync);
}

static int take_literal_bytes(mailproto_imap_reader *r, const uint8_t *in,
                              size_t len, size_t *used) {
  size_t take = len;
  if (r->remaining < take)
    take = (size_t)r->remaining;
  *used = take;
  if (r->state == MAILPROTO_IMAP_READER_LITERAL) {
    int rc = mailproto_buf_append(&r->command, in, take);
    if (rc != 0) {
      *used = 0;
      return rc; /* NOMEM only: accept reserved the room */
    }
  }
  r->remaining -= take;
  if (r->remaining == 0)
    r->state = r->state == MAILPROTO_IMAP_READER_SKIP
                   ? MAILPROTO_IMAP_READER_DISCARD
                   : MAILPROTO_IMAP_READER_LINE;
  return 0;
}

int mailproto_imap_reader_next(mailproto_imap_reader *r, const uint8_t *in,
                               size_t len, size_t *consumed,
                               mailproto_imap_event *ev) {
  size_t pos = 0;
  *consumed = 0;
  if (r->state == MAILPROTO_IMAP_READER_DECIDE)
    return MAILPROTO_ERR_STATE;
  if (r->handed_out) {
    r->handed_out = 0;
    clear_command(r);
  }
  if (r->stream_ended) {
    r->stream_ended = 0;
    memset(ev, 0, sizeof *ev);
    ev->type = MAILPROTO_IMAP_EVENT_RAW_END;
    return 1;
  }
  while (pos < len) {
    size_t used = 0;
    int rc;
    switch (r->state) {
    case MAILPROTO_IMAP_READER_LITERAL:
    case MAILPROTO_IMAP_READER_SKIP:
      rc = take_literal_bytes(r, in + pos, len - pos, &used);
      pos += used;
      if (rc != 0) {
        *consumed = pos;
        return rc;
      }
      continue;
    case MAILPROTO_IMAP_READER_STREAM:
      rc = take_literal_bytes(r, in + pos, len - pos, &used);
      memset(ev, 0, sizeof *ev);
      ev->type = MAILPROTO_IMAP_EVENT_RAW;
      ev->data = in + pos;
      ev->len = used;
      pos += used;
      *consumed = pos;
      if (r->state == MAILPROTO_IMAP_READER_LINE)
        r->stream_ended = 1;
      return 1;
    default:
      break;
    }

    mailproto_line line;
    rc = mailproto_line_read(&r->lines, in + pos, len - pos, &used, &line);
    if (rc < 0) {
      *consumed = pos;
      return rc;
    }
    track_tail(r, in + pos, rc == 1 ? used - 1 : used);
    pos += used;
    if (rc == 0)
      break;
    if (r->tail_len > 0 && r->tail[r->tail_len - 1] == '\r')
      r->tail_len--;

    if (r->raw_line) {
      r->raw_line = 0;
      r->tail_len = 0;
      memset(ev, 0, sizeof *ev);
      ev->type = MAILPROTO_IMAP_EVENT_LINE;
      ev->data = line.data;
      ev->len = line.len;
      ev->line_too_long = (line.flags & MAILPROTO_LINE_TOO_LONG) != 0;
      *consumed = pos;
      return 1;
    }
    if (r->state == MAILPROTO_IMAP_READER_DISCARD) {
      discard_line(r, &line);
      r->tail_len = 0;
      continue;
    }
    rc = command_line(r, &line, ev);
    if (rc < 0) {
      /* NOMEM with the line already consumed from the line reader: the
       * command cannot be kept; drop it as a broken one would be. */
      discard_line(r, &line);
      r->tail_len = 0;
      *consumed = pos;
      return rc;
    }
    r->tail_len = 0;
    *consumed = pos;
    return 1;
  }
  *consumed = pos;
  return 0;
}

int mailproto_imap_reader_accept(mailproto_imap_reader *r) {
  if (r->state != MAILPROTO_IMAP_READER_DECIDE)
    return MAILPROTO_ERR_STATE;
  if (refusal(r, r->held) != NULL)
    return MAILPROTO_ERR_TOO_LONG;
  /* Reserve all of it now, so reading the bytes cannot fail later. */
  int rc = mailproto_buf_reserve(&r->command, (size_t)r->pending_size + 2);
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_TOO_LONG;
  mailproto_buf_append(&r->command, "\r\n", 2);
  r->accepted++;
  r->remaining = r->pending_size;
  r->state =
      r->remaining ? MAILPROTO_IMAP_READER_LITERAL : MAILPROTO_IMAP_READER_LINE;
  return 0;
}

int mailproto_imap_reader_stream(mailproto_imap_reader *r) {
  if (r->state != MAILPROTO_IMAP_READER_DECIDE)
    return MAILPROTO_ERR_STATE;
  /* The caller parsed the command so far; what follows the literal comes
   * as a piece of its own. */
  clear_command(r);
  r->held = 0;
  r->continued = 1;
  r->remaining = r->pending_size;
  if (r->remaining) {
    r->state = MAILPROTO_IMAP_READER_STREAM;
  } else {
    r->state = MAILPROTO_IMAP_READER_LINE;
    r->stream_ended = 1;
  }
  return 0;
}

int mailproto_imap_reader_reject(mailproto_imap_reader *r) {
  if (r->state != MAILPROTO_IMAP_READER_DECIDE)
    return MAILPROTO_ERR_STATE;
  r->state = MAILPROTO_IMAP_READER_LINE;
  r->held = 0;
  drop_rest(r, 1, r->pending_size, r->pending_sync);
  return 0;
}
