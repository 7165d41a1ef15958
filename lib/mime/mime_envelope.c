/*
 * ENVELOPE (RFC 3501 7.4.2, RFC 9051 7.5.2) from the kept header fields
 * of a message part.
 */
#include "imap/imap_writer.h"
#include "mime/mime_header.h"
#include "mime/mime_imap.h"

/* Scratch for unquoted address texts: a field is at most max_field. */
#define SCRATCH_MAX ((size_t)1 << 22)

static int put_span(mailproto_buf *b, const mailproto_mime_span *s,
                    unsigned flags) {
  if (!s->data)
    return mailproto_imap_write_raw(b, "NIL");
  return mailproto_imap_write_string(b, (const char *)s->data, s->len, flags);
}

/* A kept value as an nstring: NIL when absent, else the text. */
static int put_ref(mailproto_buf *b, const mailproto_mime_tree *t,
                   mailproto_mime_ref r, unsigned flags) {
  if (r.off == MAILPROTO_MIME_NONE)
    return mailproto_imap_write_raw(b, "NIL");
  return mailproto_imap_write_string(
      b, (const char *)mailproto_mime_ref_data(t, r), r.len, flags);
}

static int put_address(mailproto_buf *b, const mailproto_mime_address *a,
                       unsigned flags) {
  static const mailproto_mime_span nil = {NULL, 0};
  const mailproto_mime_span *m[4] = {&a->name, &a->route, &a->mailbox,
                                     &a->host};
  if (a->kind == MAILPROTO_MIME_ADDR_GROUP_START) {
    m[0] = m[1] = m[3] = &nil;
    m[2] = &a->name;
  } else if (a->kind == MAILPROTO_MIME_ADDR_GROUP_END) {
    m[0] = m[1] = m[2] = m[3] = &nil;
  }
  int rc = mailproto_imap_write_raw(b, "(");
  for (int i = 0; rc == 0 && i < 4; i++) {
    if (i > 0)
      rc = mailproto_imap_write_raw(b, " ");
    if (rc == 0)
      rc = put_span(b, m[i], flags);
  }
  return rc ? rc : mailproto_imap_write_raw(b, ")");
}

/* An address list: "((...)(...))", or NIL when it holds no address. Sets
 * *count to the addresses written. */
static int put_list(mailproto_buf *b, const mailproto_mime_tree *t,
                    mailproto_mime_ref r, unsigned flags,
                    mailproto_buf *scratch, unsigned long *count) {
  *count = 0;
  size_t mark = b->len;
  int rc = 0;
  if (r.off != MAILPROTO_MIME_NONE) {
    mailproto_mime_addr_iter it;
    mailproto_mime_addr_init(&it, mailproto_mime_ref_data(t, r), r.len,
                             scratch);
    mailproto_mime_address a;
    while (rc == 0 && (rc = mailproto_mime_addr_next(&it, &a)) == 1) {
      rc = *count == 0 ? mailproto_imap_write_raw(b, "(") : 0;
      if (rc == 0)
        rc = put_address(b, &a, flags);
      ++*count;
    }
  }
  if (rc == 0 && *count > 0)
    rc = mailproto_imap_write_raw(b, ")");
  if (rc == 0 && *count == 0) {
    b->len = mark;
    rc = mailproto_imap_write_raw(b, "NIL");
  }
  return rc;
}

int mailproto_mime_write_envelope(mailproto_buf *b,
                                  const mailproto_mime_tree *t, uint32_t part,
                                  unsigned flags) {
  const mailproto_mime_envelope *env = mailproto_mime_envelope_of(t, part);
  mailproto_mime_ref none = {MAILPROTO_MIME_NONE, 0};
  mailproto_mime_ref f[MAILPROTO_MIME_ENV_COUNT];
  for (int i = 0; i < MAILPROTO_MIME_ENV_COUNT; i++)
    f[i] = env ? env->fields[i] : none;
  size_t mark = b->len;
  mailproto_buf scratch;
  mailproto_buf_init(&scratch, b->alloc, SCRATCH_MAX);
  unsigned long n = 0;
  int rc = mailproto_imap_write_raw(b, "(");
  if (rc == 0)
    rc = put_ref(b, t, f[MAILPROTO_MIME_ENV_DATE], flags);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, " ");
  if (rc == 0)
    rc = put_ref(b, t, f[MAILPROTO_MIME_ENV_SUBJECT], flags);
  /* from, then sender and reply-to, which default to from */
  static const mailproto_mime_env_field lists[] = {
      MAILPROTO_MIME_ENV_FROM,     MAILPROTO_MIME_ENV_SENDER,
      MAILPROTO_MIME_ENV_REPLY_TO, MAILPROTO_MIME_ENV_TO,
      MAILPROTO_MIME_ENV_CC,       MAILPROTO_MIME_ENV_BCC};
  for (size_t i = 0; rc == 0 && i < sizeof lists / sizeof lists[0]; i++) {
    rc = mailproto_imap_write_raw(b, " ");
    size_t at = b->len;
    if (rc == 0)
      rc = put_list(b, t, f[lists[i]], flags, &scratch, &n);
    if (rc == 0 && n == 0 &&
        (lists[i] == MAILPROTO_MIME_ENV_SENDER ||
         lists[i] == MAILPROTO_MIME_ENV_REPLY_TO)) {
      b->len = at;
      rc = put_list(b, t, f[MAILPROTO_MIME_ENV_FROM], flags, &scratch, &n);
    }
  }
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, " ");
  if (rc == 0)
    rc = put_ref(b, t, f[MAILPROTO_MIME_ENV_IN_REPLY_TO], flags);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, " ");
  if (rc == 0)
    rc = put_ref(b, t, f[MAILPROTO_MIME_ENV_MESSAGE_ID], flags);
  if (rc == 0)
    rc = mailproto_imap_write_raw(b, ")");
  mailproto_buf_free(&scratch);
  if (rc != 0)
    b->len = mark;
  return rc;
}
