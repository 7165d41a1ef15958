#include "core/op.h"

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

void mailproto_op_init(mailproto_op *op, const mailproto_op_sink *sink,
                       void *owner) {
  op->sink = sink;
  op->owner = owner;
  op->state = MAILPROTO_OP_IDLE;
  op->kind = 0;
}

int mailproto_op_complete(mailproto_op *op, int status) {
  if (!op || op->state != MAILPROTO_OP_DEFERRED)
    return MAILPROTO_ERR_STATE;
  if (status > 0)
    status = MAILPROTO_ERR_INVALID_ARGUMENT;
  op->state = MAILPROTO_OP_IDLE;
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
  if (!reporting(op) || !mb || !mb->name)
    return MAILPROTO_ERR_STATE;
  mailproto_mailbox_info copy;
  copy_sized(&copy, sizeof copy, mb, mb->struct_size);
  return op->sink->mailbox ? op->sink->mailbox(op, &copy) : 0;
}

int mailproto_op_add_message(mailproto_op *op,
                             const mailproto_message_info *msg) {
  if (!reporting(op) || !msg)
    return MAILPROTO_ERR_STATE;
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
