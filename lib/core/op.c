#include "core/op.h"

#include <stddef.h>
#include <string.h>

/* A backend built against an older header passes a shorter struct: copy
 * what it has and leave newer fields zero, so owners always see a whole
 * current struct. */
static void copy_sized(void *dst, size_t dst_size, const void *src,
                       size_t src_size) {
  memset(dst, 0, dst_size);
  memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
  *(size_t *)dst = dst_size;
}

/* Every version of the header has at least the fields of the first one, so
 * a shorter struct_size is a backend that forgot to set it: refused, since
 * its copy would lack the name or UID the backend meant to pass. */
#define MAILBOX_INFO_MIN                                                       \
  (offsetof(mailproto_mailbox_info, attributes) +                              \
   sizeof(((mailproto_mailbox_info *)0)->attributes))
#define MESSAGE_INFO_MIN                                                       \
  (offsetof(mailproto_message_info, modseq) +                                  \
   sizeof(((mailproto_message_info *)0)->modseq))

void mailproto_op_init(mailproto_op *op, const mailproto_op_sink *sink,
                       void *owner) {
  op->sink = sink;
  op->owner = owner;
  op->state = MAILPROTO_OP_IDLE;
  op->kind = 0;
  op->outs = (mailproto_op_outs){NULL, NULL, 0, NULL};
}

int mailproto_op_check(const mailproto_op *op, int rc) {
  const mailproto_op_outs *o = &op->outs;
  if (rc != 0 || !o->len)
    return rc;
  if (*o->len > o->len_max || (o->data && !*o->data && *o->len > 0))
    return MAILPROTO_ERR_INTERNAL;
  return 0;
}

int mailproto_op_complete(mailproto_op *op, int status) {
  if (!op || op->state != MAILPROTO_OP_DEFERRED)
    return MAILPROTO_ERR_STATE;
  if (status > 0)
    status = MAILPROTO_ERR_INVALID_ARGUMENT;
  /* The deferred path gets the same checks as a hook that answered at
   * once (store_call.c). */
  status = mailproto_op_check(op, status);
  op->state = MAILPROTO_OP_IDLE;
  op->outs = (mailproto_op_outs){NULL, NULL, 0, NULL};
  return op->sink->complete ? op->sink->complete(op, status) : 0;
}

/* Reports are accepted while the hook runs or while it is deferred; at any
 * other time they are a backend bug, refused rather than delivered to an
 * owner that no longer expects them. */
static int reporting(const mailproto_op *op) {
  return op && op->state != MAILPROTO_OP_IDLE;
}

int mailproto_op_add_mailbox(mailproto_op *op,
                             const mailproto_mailbox_info *mb) {
  if (!reporting(op) || !mb)
    return MAILPROTO_ERR_STATE;
  if (mb->struct_size < MAILBOX_INFO_MIN)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (!mb->name)
    return MAILPROTO_ERR_STATE;
  mailproto_mailbox_info copy;
  copy_sized(&copy, sizeof copy, mb, mb->struct_size);
  return op->sink->mailbox ? op->sink->mailbox(op, &copy) : 0;
}

int mailproto_op_add_message(mailproto_op *op,
                             const mailproto_message_info *msg) {
  if (!reporting(op) || !msg)
    return MAILPROTO_ERR_STATE;
  if (msg->struct_size < MESSAGE_INFO_MIN)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  mailproto_message_info copy;
  copy_sized(&copy, sizeof copy, msg, msg->struct_size);
  return op->sink->message ? op->sink->message(op, &copy) : 0;
}

int mailproto_op_add_keyword(mailproto_op *op, unsigned index,
                             const char *name) {
  if (!reporting(op) || !name)
    return MAILPROTO_ERR_STATE;
  if (index >= MAILPROTO_KEYWORDS_MAX)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return op->sink->keyword ? op->sink->keyword(op, index, name) : 0;
}

int mailproto_op_add_expunged(mailproto_op *op, uint32_t uid) {
  if (!reporting(op))
    return MAILPROTO_ERR_STATE;
  return op->sink->expunged ? op->sink->expunged(op, uid) : 0;
}

int mailproto_op_add_modified(mailproto_op *op, uint32_t uid) {
  if (!reporting(op))
    return MAILPROTO_ERR_STATE;
  return op->sink->modified ? op->sink->modified(op, uid) : 0;
}

int mailproto_op_add_uid_map(mailproto_op *op, uint32_t source_uid,
                             uint32_t dest_uid) {
  if (!reporting(op))
    return MAILPROTO_ERR_STATE;
  return op->sink->uid_map ? op->sink->uid_map(op, source_uid, dest_uid) : 0;
}

/* "c.sss.ddd" with class 2, 4 or 5, subject 0-999 and detail 0-999
 * (RFC 3463 section 2). */
static int enhanced_code_ok(const char *e) {
  if ((e[0] != '2' && e[0] != '4' && e[0] != '5') || e[1] != '.')
    return 0;
  e += 2;
  for (int part = 0; part < 2; part++) {
    int digits = 0;
    while (*e >= '0' && *e <= '9' && digits < 4) {
      e++;
      digits++;
    }
    if (digits == 0 || digits > 3)
      return 0;
    if (part == 0 && *e++ != '.')
      return 0;
  }
  return *e == '\0';
}

int mailproto_op_set_reply(mailproto_op *op, int code, const char *enhanced,
                           const char *text) {
  if (!reporting(op) || !op->sink->reply)
    return MAILPROTO_ERR_STATE;
  if (code < 200 || code > 599 || (enhanced && !enhanced_code_ok(enhanced)) ||
      (enhanced && enhanced[0] != (char)('0' + code / 100)))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  return op->sink->reply(op, code, enhanced, text);
}
