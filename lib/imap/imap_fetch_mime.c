/*
 * The FETCH items built on a message's MIME structure (RFC 3501 6.4.5 and
 * 7.4.2, RFC 9051 6.4.5 and 7.5.2, RFC 3516): ENVELOPE, BODY,
 * BODYSTRUCTURE, BODY[section] and BODY.PEEK[section] for part numbers,
 * HEADER.FIELDS (.NOT) and MIME, BINARY[section], BINARY.PEEK and
 * BINARY.SIZE. imap_message.c runs the FETCH loop and hands these items
 * here; the steps follow lib/mime/mime_imap.h:
 *  1. the tree (imap_mime_tree.c), before the message's FETCH line, so a
 *     message that cannot be read, or whose BINARY part has an unknown
 *     transfer encoding (RFC 3516 4.1: UNKNOWN-CTE), is left out whole;
 *  2. per item, the section resolved to stored bytes;
 *  3. the literal's size from the tree when no transformation is needed,
 *     else from one counting pass over the data (which also says whether
 *     BINARY data holds a NUL and so goes as literal8, RFC 3516 4.3);
 *  4. the data read again from the store in chunks, through the MIME
 *     stream, into the output queue as the transport drains.
 * ENVELOPE, BODY and BODYSTRUCTURE are written into a buffer of their own
 * first (a structure can exceed one response line) and drained likewise.
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "store/store_call.h"

/* A written structure may be long (10,000 parts, each with up to the
 * parser's kept values): a hostile message of about 1 MB can ask for
 * 10 MB. Past this bound the item gets a fallback (see structure()). */
#define MITEM_DATA_MAX (16u * 1024u * 1024u)
/* Above this the buffer is given back after each item, so one large
 * structure is not kept for the rest of the command. */
#define MITEM_DATA_KEEP (64u * 1024u)
/* Stored bytes read at once while streaming: the stream can double them
 * (bare LF to CRLF), and what one read produces must fit the room above
 * the watermark (IMAP_REPLY_SLACK). */
#define MITEM_READ_CHUNK (32u * 1024u)

int mailproto_imap_fetch_is_mime(const mailproto_imap_fetch_item *it) {
  switch (it->type) {
  case MAILPROTO_IMAP_FETCH_ENVELOPE:
  case MAILPROTO_IMAP_FETCH_BODY:
  case MAILPROTO_IMAP_FETCH_BODYSTRUCTURE:
  case MAILPROTO_IMAP_FETCH_BINARY:
  case MAILPROTO_IMAP_FETCH_BINARY_SIZE:
    return 1;
  case MAILPROTO_IMAP_FETCH_BODY_SECTION:
    /* [], [HEADER] and [TEXT] of the whole message are plain message
     * text, which imap_message.c sends without the structure. */
    return it->section.part_count != 0 ||
           (it->section.text != MAILPROTO_IMAP_SECTION_ALL &&
            it->section.text != MAILPROTO_IMAP_SECTION_HEADER &&
            it->section.text != MAILPROTO_IMAP_SECTION_TEXT);
  default:
    return 0;
  }
}

static int is_binary(const mailproto_imap_fetch_item *it) {
  return it->type == MAILPROTO_IMAP_FETCH_BINARY ||
         it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE;
}

static unsigned write_flags(const mailproto_imap *s) {
  /* RFC 9051 7.5.2: message/global has the message form in IMAP4rev2. */
  return mailproto_imap_wflags(s) | (s->rev2 ? MAILPROTO_MIME_WRITE_GLOBAL : 0);
}

void mailproto_imap_fetch_mime_reset(mailproto_imap *s) {
  imap_mitem *m = s->fetch ? s->fetch->m : NULL;
  if (!m)
    return;
  mailproto_buf_free(&m->data);
  mailproto_mem_free(&s->alloc, m);
  s->fetch->m = NULL;
}

static int out_error(int rc) {
  /* Output is made only below the watermark and bounded per step, so a
   * full queue here is a bug, not a client's doing. */
  return rc == MAILPROTO_ERR_BUFFER_FULL ? MAILPROTO_ERR_INTERNAL : rc;
}

/* ------------------------------------------------------------------ */
/* The tree, before the FETCH line                                     */
/* ------------------------------------------------------------------ */

/* RFC 3516 4.1: BINARY of a part whose encoding is unknown fails. */
static int binary_unknown(mailproto_imap *s) {
  const mailproto_imap_fetch *a = &s->cmd.u.fetch;
  const mailproto_mime_tree *t = mailproto_imap_tree_get(s);
  for (unsigned i = 0; i < a->item_count; i++) {
    const mailproto_imap_fetch_item *it = &a->items[i];
    mailproto_mime_range r;
    if (is_binary(it) && mailproto_mime_resolve(t, &it->section, 1, &r) ==
                             MAILPROTO_ERR_UNSUPPORTED)
      return 1;
  }
  return 0;
}

/* Whether every MIME item needs only the message's own header: ENVELOPE
 * (RFC 3501 7.4.2: from the header fields) and [HEADER.FIELDS (.NOT)] of
 * the message itself. Clients ask exactly these for every message on a
 * first sync; the attachments then are never read. */
static int header_only(const mailproto_imap *s) {
  const mailproto_imap_fetch *a = &s->cmd.u.fetch;
  for (unsigned i = 0; i < a->item_count; i++) {
    const mailproto_imap_fetch_item *it = &a->items[i];
    if (!mailproto_imap_fetch_is_mime(it) ||
        it->type == MAILPROTO_IMAP_FETCH_ENVELOPE)
      continue;
    if (it->type != MAILPROTO_IMAP_FETCH_BODY_SECTION ||
        it->section.part_count != 0 ||
        (it->section.text != MAILPROTO_IMAP_SECTION_HEADER_FIELDS &&
         it->section.text != MAILPROTO_IMAP_SECTION_HEADER_FIELDS_NOT))
      return 0;
  }
  return 1;
}

int mailproto_imap_fetch_tree_step(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  int rc = header_only(s) ? mailproto_imap_tree_begin_header(s, f->uid)
                          : mailproto_imap_tree_begin(s, f->uid);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return mailproto_imap_tree_read(s, IMAP_OP_READ);
  if (binary_unknown(s)) {
    mailproto_imap_fetch_skip(s, MAILPROTO_ERR_UNSUPPORTED);
    return 0;
  }
  mailproto_imap_fetch_after_tree(s);
  return 0;
}

/* ------------------------------------------------------------------ */
/* Item names                                                          */
/* ------------------------------------------------------------------ */

static int write_name(mailproto_imap *s, mailproto_buf *b,
                      const mailproto_imap_fetch_item *it) {
  const char *name = it->type == MAILPROTO_IMAP_FETCH_BINARY ? "BINARY"
                     : it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE
                         ? "BINARY.SIZE"
                         : "BODY";
  int rc = mailproto_imap_write_raw(b, name);
  if (rc == 0)
    rc =
        mailproto_imap_write_section(b, &it->section, mailproto_imap_wflags(s));
  if (rc == 0 && it->has_partial) {
    /* RFC 3501 7.4.2: the response names the origin only. */
    rc = mailproto_imap_write_raw(b, "<");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, it->partial_offset);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, ">");
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* Items                                                               */
/* ------------------------------------------------------------------ */

static const mailproto_imap_fetch_item *current(const mailproto_imap *s) {
  return &s->cmd.u.fetch.items[s->fetch->item];
}

static void item_done(mailproto_imap *s) {
  s->fetch->item++;
  s->fetch->stage = IMAP_FETCH_ITEM;
}

static int mitem(mailproto_imap *s, imap_mitem **out) {
  imap_mitem *m = s->fetch->m;
  if (!m) {
    m = mailproto_mem_calloc(&s->alloc, 1, sizeof *m);
    if (!m)
      return MAILPROTO_ERR_NOMEM;
    mailproto_buf_init(&m->data, &s->alloc, MITEM_DATA_MAX);
    s->fetch->m = m;
  }
  m->stage = IMAP_MITEM_STAT;
  m->binary = m->lit8 = 0;
  m->off = m->end = m->size = m->sent = 0;
  memset(&m->stat, 0, sizeof m->stat);
  mailproto_buf_clear(&m->data);
  m->data_pos = 0;
  *out = m;
  return 0;
}

/* A structure longer than MITEM_DATA_MAX: the FETCH line is begun, so
 * the item still gets a value that keeps the response valid IMAP (RFC
 * 3501 9: an envelope of NILs; the whole message as one opaque
 * application/octet-stream body of its RFC822.SIZE), and the command
 * ends with NO [LIMIT] so the client knows it is not the real one. */
static int structure_fallback(mailproto_imap *s, imap_mitem *m,
                              const mailproto_imap_fetch_item *it, int first,
                              const char *name) {
  imap_fetch *f = s->fetch;
  mailproto_buf *b = &m->data;
  mailproto_buf_free(b);
  f->skipped = 1;
  if (f->skip_code != MAILPROTO_ERR_UNSUPPORTED)
    f->skip_code = MAILPROTO_ERR_LIMIT;
  int rc = mailproto_imap_write_raw(b, first ? "" : " ");
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, name);
  if (it->type == MAILPROTO_IMAP_FETCH_ENVELOPE) {
    if (rc == 0)
      rc = mailproto_imap_write_raw(
          b, "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)");
    return rc;
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(
        b, "(\"application\" \"octet-stream\" NIL NIL NIL \"binary\" ");
  if (rc == 0)
    rc = mailproto_imap_write_number(b, s->fetch->info.size);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, ")");
  return rc;
}

/* ENVELOPE, BODY, BODYSTRUCTURE into m->data (separator included). */
static int structure(mailproto_imap *s, imap_mitem *m,
                     const mailproto_imap_fetch_item *it, int first) {
  const mailproto_mime_tree *t = mailproto_imap_tree_get(s);
  mailproto_buf *b = &m->data;
  const char *name = it->type == MAILPROTO_IMAP_FETCH_ENVELOPE ? "ENVELOPE "
                     : it->type == MAILPROTO_IMAP_FETCH_BODY   ? "BODY "
                                                             : "BODYSTRUCTURE ";
  int rc = mailproto_imap_write_raw(b, first ? "" : " ");
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, name);
  if (rc == 0 && it->type == MAILPROTO_IMAP_FETCH_ENVELOPE)
    rc = mailproto_mime_write_envelope(b, t, 0, write_flags(s));
  else if (rc == 0)
    rc = mailproto_mime_write_body(
        b, t, 0, it->type == MAILPROTO_IMAP_FETCH_BODYSTRUCTURE,
        write_flags(s));
  if (rc == MAILPROTO_ERR_BUFFER_FULL)
    rc = structure_fallback(s, m, it, first, name);
  if (rc != 0)
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  m->stage = IMAP_MITEM_DATA;
  return 0;
}

/* Sets up a pass over the item's data into `out`. */
static void pass_begin(imap_mitem *m, const mailproto_imap_fetch_item *it,
                       mailproto_mime_out_fn out, void *arg) {
  int partial = it->has_partial && it->type != MAILPROTO_IMAP_FETCH_BINARY_SIZE;
  uint64_t off, len;
  mailproto_mime_range_read(&m->range, partial, it->partial_offset,
                            it->partial_length, &off, &len);
  m->off = off;
  m->end = off + len;
  mailproto_mime_stream_init(&m->stream, &m->range, partial, it->partial_offset,
                             it->partial_length, out, arg);
}

int mailproto_imap_fetch_mime_item(mailproto_imap *s) {
  imap_fetch *f = s->fetch;
  const mailproto_imap_fetch_item *it = current(s);
  imap_mitem *m;
  int rc = mitem(s, &m);
  if (rc != 0)
    return rc;
  int first = f->first;
  f->first = 0;
  f->stage = IMAP_FETCH_MIME;
  if (it->type == MAILPROTO_IMAP_FETCH_ENVELOPE ||
      it->type == MAILPROTO_IMAP_FETCH_BODY ||
      it->type == MAILPROTO_IMAP_FETCH_BODYSTRUCTURE)
    return structure(s, m, it, first);
  /* the separator goes out now; the name once the size is known */
  if (!first) {
    rc = mailproto_imap_write_raw(&s->line, " ");
    if (rc == 0)
      rc = mailproto_imap_emit(s);
    if (rc != 0)
      return out_error(rc);
  }
  m->binary = (unsigned char)is_binary(it);
  rc = mailproto_mime_resolve(mailproto_imap_tree_get(s), &it->section,
                              m->binary, &m->range);
  if (rc != 0) /* UNKNOWN-CTE was ruled out before the FETCH line */
    return MAILPROTO_ERR_INTERNAL;
  uint64_t size;
  int partial = it->has_partial && it->type != MAILPROTO_IMAP_FETCH_BINARY_SIZE;
  /* BINARY takes the counting pass, which alone tells NUL apart (literal
   * or literal8); BINARY.SIZE sends no literal, so a known size does. */
  if ((!m->binary || it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE) &&
      mailproto_mime_range_size(&m->range, partial, it->partial_offset,
                                it->partial_length, &size)) {
    m->size = size;
    m->stage = IMAP_MITEM_NAME;
    return 0;
  }
  pass_begin(m, it, mailproto_mime_out_stat, &m->stat);
  m->stage = IMAP_MITEM_STAT;
  return 0;
}

/* The literal's bytes, from the stream. Never more than the size the
 * literal announced (the store's bytes changed between the passes: the
 * shortfall then closes the connection, see stream_end). */
static int out_literal(void *arg, const uint8_t *p, size_t n) {
  mailproto_imap *s = arg;
  imap_mitem *m = s->fetch->m;
  if (n > m->size - m->sent)
    n = (size_t)(m->size - m->sent);
  m->sent += n;
  if (n == 0)
    return 0;
  if (m->lit8)
    return mailproto_outq_write(&s->io.out, p, n);
  return mailproto_imap_literal_bytes(&s->io.out, p, n);
}

static int write_head(mailproto_imap *s, imap_mitem *m) {
  const mailproto_imap_fetch_item *it = current(s);
  mailproto_buf *b = &s->line;
  int rc = write_name(s, b, it);
  if (it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE) {
    /* RFC 3516 4.2: the size of the decoded data, as a number */
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, " ");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, m->size);
  } else {
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, m->lit8 ? " ~{" : " {");
    if (rc == 0)
      rc = mailproto_imap_write_number(b, m->size);
    if (rc == 0)
      rc = mailproto_imap_write_raw(b, "}\r\n");
  }
  if (rc != 0) {
    mailproto_buf_clear(b);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  rc = mailproto_imap_emit(s);
  if (rc != 0)
    return rc;
  if (it->type == MAILPROTO_IMAP_FETCH_BINARY_SIZE || m->size == 0) {
    item_done(s);
    return 0;
  }
  pass_begin(m, it, out_literal, s);
  m->stage = IMAP_MITEM_STREAM;
  return 0;
}

/* The message's bytes do not match its tree (the store gave fewer than
 * the tree says, or failed reading them): the cache entry the tree may
 * have come from is wrong for this message, so it goes (store.h:
 * cache_put with len 0) and the next FETCH parses the message again
 * instead of failing the same way for ever. */
static void drop_entry(mailproto_imap *s) {
  (void)mailproto_store_call_cache_put(&s->store, s->sel.handle, s->fetch->uid,
                                       NULL, 0);
  mailproto_imap_tree_distrust(s);
}

/* A counting pass failed: nothing of the item is out but its separator,
 * so the item goes as NIL (an nstring: RFC 3501 7.4.2, RFC 3516 4.2;
 * BINARY.SIZE has no NIL form, so it is answered as BINARY[...] NIL),
 * the FETCH goes on and ends with NO, as for a message left out. */
static int item_failed(mailproto_imap *s, int code) {
  imap_fetch *f = s->fetch;
  const mailproto_imap_fetch_item *it = current(s);
  mailproto_imap_fetch_item nil = *it;
  if (nil.type == MAILPROTO_IMAP_FETCH_BINARY_SIZE) {
    nil.type = MAILPROTO_IMAP_FETCH_BINARY;
    nil.has_partial = 0;
  }
  f->skipped = 1;
  /* RFC 3516 4.1: UNKNOWN-CTE stays the reason when it is one */
  if (f->skip_code != MAILPROTO_ERR_UNSUPPORTED)
    f->skip_code = code;
  int rc = write_name(s, &s->line, &nil);
  if (rc == 0)
    rc = mailproto_imap_write_raw(&s->line, " NIL");
  if (rc != 0) {
    mailproto_buf_clear(&s->line);
    return rc == MAILPROTO_ERR_NOMEM ? rc : MAILPROTO_ERR_INTERNAL;
  }
  rc = mailproto_imap_emit(s);
  if (rc != 0)
    return rc;
  item_done(s);
  return 0;
}

/* The end of a pass (all bytes read, or the store ended early). */
static int pass_end(mailproto_imap *s, imap_mitem *m) {
  int rc = mailproto_mime_stream_finish(&m->stream);
  if (rc != 0)
    return out_error(rc);
  if (m->stage == IMAP_MITEM_STAT && m->off < m->end) {
    /* the store ended before the bytes the tree says the part has */
    drop_entry(s);
    return item_failed(s, MAILPROTO_ERR_IO);
  }
  if (m->stage == IMAP_MITEM_STAT) {
    m->size = m->stat.size;
    /* RFC 3516 4.3: NUL can only travel in literal8 */
    m->lit8 = (unsigned char)(m->binary && m->stat.has_nul);
    m->stage = IMAP_MITEM_NAME;
    return 0;
  }
  if (m->sent < m->size) {
    /* The store gave fewer octets than the literal announced: it cannot
     * be completed, so the connection ends here (and the entry that
     * announced them is gone first). */
    drop_entry(s);
    mailproto_imap_close(s);
    return 0;
  }
  item_done(s);
  return 0;
}

static int pass_read(mailproto_imap *s, imap_mitem *m) {
  imap_fetch *f = s->fetch;
  if (m->off >= m->end)
    return pass_end(s, m);
  size_t max = MITEM_READ_CHUNK;
  if (m->stage == IMAP_MITEM_STREAM && s->config.output_watermark < max)
    max = s->config.output_watermark;
  if (m->end - m->off < max)
    max = (size_t)(m->end - m->off);
  return mailproto_imap_after_op(
      s, IMAP_OP_READ,
      mailproto_store_call_read(&s->store, &s->io.op, IMAP_OP_READ,
                                s->sel.handle, f->uid, m->off, max,
                                &f->read_data, &f->read_len));
}

/* Drains a written structure into the output as room allows. */
static int drain(mailproto_imap *s, imap_mitem *m) {
  mailproto_outq *q = &s->io.out;
  size_t left = m->data.len - m->data_pos;
  if (left == 0) {
    if (m->data.cap > MITEM_DATA_KEEP)
      mailproto_buf_free(&m->data);
    item_done(s);
    return 0;
  }
  size_t pending = mailproto_outq_pending(q);
  size_t room = q->watermark > pending ? q->watermark - pending : 1;
  if (room > left)
    room = left;
  int rc = mailproto_outq_write(q, m->data.data + m->data_pos, room);
  if (rc != 0)
    return out_error(rc);
  m->data_pos += room;
  return 0;
}

int mailproto_imap_fetch_mime_step(mailproto_imap *s) {
  imap_mitem *m = s->fetch->m;
  if (!m)
    return MAILPROTO_ERR_INTERNAL;
  switch (m->stage) {
  case IMAP_MITEM_STAT:
  case IMAP_MITEM_STREAM:
    return pass_read(s, m);
  case IMAP_MITEM_NAME:
    return write_head(s, m);
  case IMAP_MITEM_DATA:
    return drain(s, m);
  default:
    return MAILPROTO_ERR_INTERNAL;
  }
}

int mailproto_imap_fetch_mime_read_done(mailproto_imap *s, int rc) {
  imap_fetch *f = s->fetch;
  if (f->stage == IMAP_FETCH_TREE) {
    rc = mailproto_imap_tree_read_done(s, rc);
    if (rc != 0 && !mailproto_is_fatal(rc)) {
      mailproto_imap_fetch_skip(s, rc);
      rc = 0;
    }
    return rc;
  }
  imap_mitem *m = f->m;
  if (mailproto_is_fatal(rc))
    return rc;
  const uint8_t *data = f->read_data;
  size_t len = f->read_len;
  f->read_data = NULL;
  f->read_len = 0;
  if (!m)
    return MAILPROTO_ERR_INTERNAL;
  if (rc != 0 && m->stage == IMAP_MITEM_STAT) {
    /* Counting: nothing of the literal is out yet. The bytes may be
     * fine and the store only failing now, but a wrong entry looks the
     * same, so it goes too. */
    drop_entry(s);
    return item_failed(s, rc);
  }
  if (rc != 0) {
    /* A literal is half sent: nothing valid can follow. */
    drop_entry(s);
    mailproto_imap_close(s);
    return 0;
  }
  if (len == 0)
    return pass_end(s, m);
  m->off += len;
  rc = mailproto_mime_stream_feed(&m->stream, data, len);
  if (rc != 0)
    return out_error(rc);
  return m->off >= m->end ? pass_end(s, m) : 0;
}
