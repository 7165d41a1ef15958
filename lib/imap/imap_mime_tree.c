/*
 * The parsed MIME tree of one message of the selected mailbox, for the
 * commands that need a message's structure (see imap_internal.h for the
 * calling sequence). The tree comes from the store's optional cache hook
 * when it holds a valid entry, else from one streamed parse of the
 * message's `read` chunks, whose result is offered back to the cache so
 * a second FETCH BODYSTRUCTURE costs no parse (issue 8).
 */
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_internal.h"
#include "mime/mime.h"
#include "store/store_call.h"

/* Longest serialised tree offered to the cache: the parser's limits
 * bound it (10,000 parts and 1 MiB of kept values give about 2 MiB). */
#define TREE_SERIAL_MAX (8u * 1024u * 1024u)

struct imap_tree {
  mailproto_mime_tree tree;
  uint32_t uid;              /* the message `tree` describes, or is parsing */
  unsigned char ready;       /* `tree` is complete */
  unsigned char parsing;     /* `parser` is fed (reads in progress) */
  unsigned char cached;      /* `tree` came from the cache */
  unsigned char stale;       /* `tree` did not match the bytes: not reused */
  unsigned char header_only; /* the parse stops after the top header */
  unsigned char partial;     /* `tree` describes only the top header */
  uint64_t offset;           /* stored bytes fed so far */
  mailproto_mime_parser parser;
  const uint8_t *read_data; /* a read's results (stable while deferred) */
  size_t read_len;
};

static void forget(mailproto_imap *s, struct imap_tree *t) {
  if (t->parsing)
    mailproto_mime_parser_free(&t->parser);
  mailproto_mime_tree_free(&t->tree);
  mailproto_mime_tree_init(&t->tree, &s->alloc);
  t->ready = t->parsing = t->cached = t->stale = 0;
  t->header_only = t->partial = 0;
  t->uid = 0;
  t->offset = 0;
}

void mailproto_imap_tree_reset(mailproto_imap *s) {
  struct imap_tree *t = s->tree;
  if (!t)
    return;
  forget(s, t);
  mailproto_mem_free(&s->alloc, t);
  s->tree = NULL;
}

/* The octets the store's `read` yields for `uid`: RFC822.SIZE when the
 * stored bytes are the RFC822 bytes, else the store's own lookup. 1 if
 * known (the store may have no lookup, or have forgotten the message). */
static int stored_size(const mailproto_imap *s, uint32_t uid,
                       const imap_msg_info *info, uint64_t *out) {
  if (info->canonical) {
    *out = info->size;
    return 1;
  }
  mailproto_message_info mi;
  if (mailproto_store_call_message_get(&s->store, s->sel.handle, uid, &mi) != 0)
    return 0;
  *out = mi.stored_size;
  return 1;
}

/* The entry's bytes are valid only until the next call into the store
 * (store.h), so a backend may keep them until then: a Maildir handle
 * holds a copy of up to 8 MiB. A lookup that must miss (no message has
 * UID 0) is such a call, made once the tree is decoded, so a selected
 * mailbox does not hold the copy while it idles. */
static void release_entry(mailproto_imap *s) {
  const uint8_t *data;
  size_t len;
  (void)mailproto_store_call_cache_get(&s->store, s->sel.handle, 0, &data,
                                       &len);
}

/* A cache entry, validated: the form itself by deserialize, and its sizes
 * against what the store says of the message, never against what the
 * entry claims of itself alone: its virtual size against RFC822.SIZE,
 * its stored size against the store's stored size. What is left (an
 * entry of another message of the same sizes) the backend rules out by
 * tying its entries to the message's file (maildir_cache.c), and a
 * section found short while streaming drops the entry
 * (imap_fetch_mime.c). */
static int from_cache(mailproto_imap *s, struct imap_tree *t, uint32_t uid) {
  const uint8_t *data;
  size_t len;
  imap_msg_info info;
  if (!mailproto_imap_meta_get(s, uid, &info))
    return 0;
  uint64_t real;
  int known = stored_size(s, uid, &info, &real);
  if (mailproto_store_call_cache_get(&s->store, s->sel.handle, uid, &data,
                                     &len) != 0)
    return 0;
  uint64_t stored;
  int ok = mailproto_mime_serial_size(data, len, &stored) &&
           (!known || stored == real) &&
           mailproto_mime_deserialize(&s->alloc, NULL, data, len, stored,
                                      &t->tree) == 0;
  release_entry(s);
  if (!ok)
    return 0;
  if (t->tree.vsize != info.size) {
    mailproto_mime_tree_free(&t->tree);
    mailproto_mime_tree_init(&t->tree, &s->alloc);
    return 0;
  }
  return 1;
}

static int begin(mailproto_imap *s, uint32_t uid, int header_only) {
  struct imap_tree *t = s->tree;
  if (!t) {
    t = mailproto_mem_calloc(&s->alloc, 1, sizeof *t);
    if (!t)
      return MAILPROTO_ERR_NOMEM;
    mailproto_mime_tree_init(&t->tree, &s->alloc);
    s->tree = t;
  }
  /* held, or a parse to go on with; a header-only one serves only
   * header-only requests */
  if (t->uid == uid && !t->stale && (t->ready || t->parsing) &&
      (header_only || !(t->partial || t->header_only)))
    return t->ready;
  forget(s, t);
  t->uid = uid;
  t->header_only = (unsigned char)(header_only != 0);
  /* NOMEM while loading an entry is only a miss: the parse that follows
   * reports its own. */
  if (from_cache(s, t, uid)) {
    t->ready = t->cached = 1;
    return 1;
  }
  mailproto_mime_parser_init(&t->parser, &s->alloc, NULL);
  t->parsing = 1;
  return 0;
}

void mailproto_imap_tree_distrust(mailproto_imap *s) {
  if (s->tree)
    s->tree->stale = 1;
}

int mailproto_imap_tree_begin(mailproto_imap *s, uint32_t uid) {
  return begin(s, uid, 0);
}

int mailproto_imap_tree_begin_header(mailproto_imap *s, uint32_t uid) {
  return begin(s, uid, 1);
}

int mailproto_imap_tree_ready(const mailproto_imap *s, uint32_t uid) {
  return s->tree && s->tree->ready && s->tree->uid == uid;
}

const mailproto_mime_tree *mailproto_imap_tree_get(const mailproto_imap *s) {
  return s->tree && s->tree->ready ? &s->tree->tree : NULL;
}

int mailproto_imap_tree_from_cache(const mailproto_imap *s) {
  return s->tree && s->tree->ready && s->tree->cached;
}

int mailproto_imap_tree_read(mailproto_imap *s, int kind) {
  struct imap_tree *t = s->tree;
  if (!t || !t->parsing)
    return MAILPROTO_ERR_INTERNAL;
  /* a header is mostly a few KiB: smaller reads stop nearer its end */
  size_t max = t->header_only ? IMAP_READ_CHUNK / 4 : IMAP_READ_CHUNK;
  return mailproto_imap_after_op(
      s, kind,
      mailproto_store_call_read(&s->store, &s->io.op, kind, s->sel.handle,
                                t->uid, t->offset, max, &t->read_data,
                                &t->read_len));
}

/* Offers the finished tree to the cache. Failures only cost a parse next
 * time, so they are ignored (but NOMEM of our own buffer is not hidden
 * from the allocation-failure tests: it is simply a miss too). */
static void offer(mailproto_imap *s, struct imap_tree *t) {
  if (!s->store.ops)
    return;
  /* Only a tree that agrees with what the store says of the message:
   * one parsed from bytes that changed under it (or that disagree with
   * RFC822.SIZE) would be served to every later FETCH. */
  imap_msg_info info;
  uint64_t real;
  if (!mailproto_imap_meta_get(s, t->uid, &info) ||
      t->tree.vsize != info.size ||
      (stored_size(s, t->uid, &info, &real) && t->tree.size != real))
    return;
  mailproto_buf b;
  mailproto_buf_init(&b, &s->alloc, TREE_SERIAL_MAX);
  if (mailproto_mime_serialize(&t->tree, &b) == 0)
    (void)mailproto_store_call_cache_put(&s->store, s->sel.handle, t->uid,
                                         b.data, b.len);
  mailproto_buf_free(&b);
}

int mailproto_imap_tree_read_done(mailproto_imap *s, int rc) {
  struct imap_tree *t = s->tree;
  if (mailproto_is_fatal(rc))
    return rc;
  if (!t || !t->parsing)
    return MAILPROTO_ERR_INTERNAL;
  const uint8_t *data = t->read_data;
  size_t len = t->read_len;
  t->read_data = NULL;
  t->read_len = 0;
  if (rc != 0) {
    forget(s, t);
    return rc;
  }
  if (len > 0) {
    t->offset += len;
    rc = mailproto_mime_parser_feed(&t->parser, data, len);
    /* ENVELOPE and top-level header fields: the rest of the message
     * (its attachments) is not read at all */
    if (rc != 0 || !t->header_only ||
        !mailproto_mime_parser_header_done(&t->parser))
      return rc;
  }
  rc = mailproto_mime_parser_finish(&t->parser, &t->tree);
  mailproto_mime_parser_free(&t->parser);
  t->parsing = 0;
  if (rc != 0) {
    forget(s, t);
    return rc;
  }
  t->ready = 1;
  t->partial = (unsigned char)(len > 0); /* stopped before the end */
  if (!t->partial)
    offer(s, t);
  return 0;
}
