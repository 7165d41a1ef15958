/*
 * The session's view of the maildrop (RFC 1939 4 and 5): the messages as
 * the exclusive open reported them, numbered from 1 in ascending UID
 * order, with their CRLF sizes and the deleted marks. Marks stay in the
 * session until QUIT, whose UPDATE state (RFC 1939 6) removes exactly the
 * marked messages with one expunge and answers +OK only once the store
 * committed it.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "pop3/pop3_internal.h"
#include "store/store_call.h"

int mailproto_pop3_drop_add(mailproto_pop3 *s,
                            const mailproto_message_info *msg) {
  pop3_maildrop *d = &s->drop;
  if (d->count == d->cap) {
    size_t cap = d->cap ? d->cap : 16;
    if (d->cap && mailproto_size_mul(cap, 2, &cap) != 0)
      return MAILPROTO_ERR_NOMEM;
    pop3_msg *msgs =
        mailproto_mem_reallocarray(&s->alloc, d->msgs, cap, sizeof *msgs);
    if (!msgs)
      return MAILPROTO_ERR_NOMEM;
    d->msgs = msgs;
    d->cap = cap;
  }
  pop3_msg *m = &d->msgs[d->count++];
  m->size = msg->size;
  m->uid = msg->uid;
  m->deleted = 0;
  d->size += msg->size;
  return 0;
}

void mailproto_pop3_drop_close(mailproto_pop3 *s) {
  pop3_maildrop *d = &s->drop;
  mailproto_store_call_close(&s->store, d->handle);
  mailproto_mem_free(&s->alloc, d->msgs);
  memset(d, 0, sizeof *d);
}

/* A reply was sent instead of a number: 1, or the failure to send it. */
static int answered(int rc) {
  return rc != 0 ? rc : 1;
}

int mailproto_pop3_drop_number(mailproto_pop3 *s, const char *arg, size_t len,
                               size_t *index) {
  /* RFC 1939 3: decimal digits only; no sign, no space. */
  size_t n = 0;
  int overflow = 0;
  for (size_t i = 0; i < len; i++) {
    if (arg[i] < '0' || arg[i] > '9')
      return answered(mailproto_pop3_bad(s, "Invalid message number"));
    size_t digit = (size_t)(arg[i] - '0');
    if (n > ((size_t)-1 - digit) / 10)
      overflow = 1;
    else
      n = n * 10 + digit;
  }
  if (len == 0)
    return answered(mailproto_pop3_bad(s, "Invalid message number"));
  if (overflow || n == 0 || n > s->drop.count)
    return answered(mailproto_pop3_err(s, "No such message"));
  if (s->drop.msgs[n - 1].deleted)
    return answered(
        mailproto_pop3_printf(s, "-ERR Message %zu already deleted\r\n", n));
  *index = n - 1;
  return 0;
}

void mailproto_pop3_drop_uid(const mailproto_pop3 *s, size_t index,
                             char out[17]) {
  /* RFC 1939 7: 1 to 70 characters in 0x21..0x7E, never reused in the
   * maildrop: the UID with UIDVALIDITY, which changes whenever UIDs could
   * be reused. */
  snprintf(out, 17, "%08lx%08lx", (unsigned long)s->drop.msgs[index].uid,
           (unsigned long)s->drop.uidvalidity);
}

void mailproto_pop3_drop_mark(mailproto_pop3 *s, size_t index) {
  pop3_maildrop *d = &s->drop;
  d->msgs[index].deleted = 1;
  d->deleted++;
  d->deleted_size += d->msgs[index].size;
}

void mailproto_pop3_drop_unmark_all(mailproto_pop3 *s) {
  pop3_maildrop *d = &s->drop;
  for (size_t i = 0; d->deleted > 0 && i < d->count; i++)
    if (d->msgs[i].deleted) {
      d->msgs[i].deleted = 0;
      d->deleted--;
    }
  d->deleted_size = 0;
}

/* The marked UIDs as ascending ranges. Consecutive UIDs merge: nothing
 * can lie between them, as UIDs only grow. */
static size_t build_ranges(const pop3_maildrop *d, mailproto_uid_range *r) {
  size_t n = 0;
  for (size_t i = 0; i < d->count; i++) {
    uint32_t uid = d->msgs[i].uid;
    if (!d->msgs[i].deleted)
      continue;
    if (n > 0 && r[n - 1].last != UINT32_MAX && r[n - 1].last + 1 == uid)
      r[n - 1].last = uid;
    else {
      r[n].first = uid;
      r[n].last = uid;
      n++;
    }
  }
  return n;
}

int mailproto_pop3_drop_update(mailproto_pop3 *s) {
  pop3_maildrop *d = &s->drop;
  if (d->deleted == 0)
    return mailproto_pop3_drop_update_done(s, 0);
  s->ranges = mailproto_mem_calloc(&s->alloc, d->deleted, sizeof *s->ranges);
  if (!s->ranges)
    return MAILPROTO_ERR_NOMEM;
  size_t n = build_ranges(d, s->ranges);
  /* Without MAILPROTO_EXPUNGE_ONLY_DELETED: exactly these UIDs go. */
  return mailproto_pop3_after_op(
      s, POP3_OP_EXPUNGE,
      mailproto_store_call_expunge(&s->store, &s->io.op, POP3_OP_EXPUNGE,
                                   d->handle, s->ranges, n, 0));
}

int mailproto_pop3_drop_update_done(mailproto_pop3 *s, int rc) {
  mailproto_mem_free(&s->alloc, s->ranges);
  s->ranges = NULL;
  if (mailproto_is_fatal(rc))
    return rc;
  /* RFC 1939 6: whatever the outcome, the lock goes and the session
   * ends. */
  mailproto_pop3_close(s);
  if (rc != 0)
    return mailproto_pop3_err(s, "[SYS/TEMP] Some deleted messages not "
                                 "removed");
  return mailproto_pop3_ok(s, "Bye");
}
