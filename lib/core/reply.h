/*
 * What a policy callback answers through mailproto_op_set_reply(): the
 * code, the enhanced status code and the text, kept by the session until
 * the step it decided is answered. The text comes from the application
 * (and often from further away: a blocklist, a database), so it is stored
 * as one safe line: control characters, which could end the line and
 * forge further replies, become spaces; it is cut at the protocol's
 * limit, never inside a UTF-8 sequence; a protocol whose replies are ASCII
 * has other bytes replaced by '?'.
 */
#ifndef MAILPROTO_CORE_REPLY_H
#define MAILPROTO_CORE_REPLY_H

#include <stddef.h>

#include "mailproto/mailproto.h"

typedef struct mailproto_reply {
  int code;          /* 0: the callback set none */
  char enhanced[12]; /* RFC 3463 code, "" for none */
  char *text;        /* NULL: the session's default text */
  int nomem;         /* the text could not be copied */
} mailproto_reply;

/* How a protocol takes reply text. */
typedef struct mailproto_reply_rules {
  size_t max; /* longest text kept, in bytes */
  int ascii;  /* bytes beyond ASCII become '?' */
} mailproto_reply_rules;

/* Replaces what `r` holds with the given reply (arguments already checked
 * for shape by mailproto_op_set_reply). An empty text counts as none.
 * Returns 0, or NOMEM: then the code stands without its text and `nomem`
 * is set, so a session never mistakes a rejection it could not copy for
 * an acceptance. */
int mailproto_reply_set(mailproto_reply *r, const mailproto_allocator *a,
                        const mailproto_reply_rules *rules, int code,
                        const char *enhanced, const char *text);

/* Frees the text and forgets the reply. */
void mailproto_reply_clear(mailproto_reply *r, const mailproto_allocator *a);

#endif
