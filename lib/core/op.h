/*
 * The inside of mailproto_op. The owner (a session, a test) embeds an op,
 * points it at a sink that receives what the callee reports, and brackets
 * every hook call with mailproto_op_begin()/mailproto_op_end().
 */
#ifndef MAILPROTO_CORE_OP_H
#define MAILPROTO_CORE_OP_H

#include "mailproto/store.h"

typedef struct mailproto_op_sink {
  /* Each may be NULL (the report is then ignored). Returns 0 or NOMEM.
   * Strings (mailbox and keyword names) still point into the backend's
   * memory, which store.h lets it reuse as soon as the report returns: a
   * sink copies whatever it keeps past the call (e.g. until a deferred op
   * completes). */
  int (*mailbox)(mailproto_op *op, const mailproto_mailbox_info *mb);
  int (*message)(mailproto_op *op, const mailproto_message_info *msg);
  int (*keyword)(mailproto_op *op, unsigned index, const char *name);
  int (*expunged)(mailproto_op *op, uint32_t uid);
  int (*modified)(mailproto_op *op, uint32_t uid);
  int (*uid_map)(mailproto_op *op, uint32_t source, uint32_t dest);
  /* A deferred op finished; its return is mailproto_op_complete()'s. */
  int (*complete)(mailproto_op *op, int status);
  /* A policy callback's reply (mailproto_op_set_reply); NULL: the op takes
   * none. Arguments are already checked for shape. */
  int (*reply)(mailproto_op *op, int code, const char *enhanced,
               const char *text);
} mailproto_op_sink;

enum {
  MAILPROTO_OP_IDLE = 0, /* not in use, or finished */
  MAILPROTO_OP_RUNNING,  /* inside the hook */
  MAILPROTO_OP_DEFERRED  /* hook returned DEFERRED; awaiting complete */
};

/* Out-parameters of the store call in flight that the library checks or
 * gives up; the store_call wrappers fill this in, mailproto_op_begin()
 * empties it. A backend may write out-parameters any time before it
 * completes, so they are checked when the call finishes, at once or
 * deferred (mailproto_op_check). */
typedef struct mailproto_op_outs {
  /* A handle the hook hands over (account, mailbox, writer). Once the
   * call is cancelled it belongs to the backend (store.h, `cancel`), so
   * the caller's copy is cleared: the caller must not release it. */
  void **handle;
  /* A length the hook reports and the most it may be (lookup_secret's
   * secret_len, read's len), and for read the bytes it counts. */
  const size_t *len;
  size_t len_max;
  const uint8_t *const *data;
} mailproto_op_outs;

struct mailproto_op {
  const mailproto_op_sink *sink;
  void *owner;
  int state;
  int kind; /* the owner's note of what this op is doing */
  mailproto_op_outs outs;
};

void mailproto_op_init(mailproto_op *op, const mailproto_op_sink *sink,
                       void *owner);

static inline void mailproto_op_begin(mailproto_op *op, int kind) {
  op->state = MAILPROTO_OP_RUNNING;
  op->kind = kind;
  op->outs = (mailproto_op_outs){NULL, NULL, 0, NULL};
}

/* A call that finished with `rc`: a success whose out-values break the
 * hook's contract (a length past its bound, a length without bytes) is a
 * backend bug and becomes MAILPROTO_ERR_INTERNAL, so no caller reads past
 * a buffer it handed out. Returns rc otherwise. */
int mailproto_op_check(const mailproto_op *op, int rc);

/* Records the hook's return; returns it unchanged. */
static inline int mailproto_op_end(mailproto_op *op, int rc) {
  op->state =
      rc == MAILPROTO_DEFERRED ? MAILPROTO_OP_DEFERRED : MAILPROTO_OP_IDLE;
  return rc;
}

static inline int mailproto_op_pending(const mailproto_op *op) {
  return op->state == MAILPROTO_OP_DEFERRED;
}

#endif
