/*
 * IDLE (RFC 2177, RFC 9051 6.3.13): the client waits for news without
 * polling. What is pending is reported first, then "+ idling"; while
 * idling every sync (mailproto_imap_sync, called when the store's notify
 * hook woke the application, or periodically) reports changes at once,
 * EXPUNGE included, and mailproto_imap_keepalive() sends "* OK Still
 * here" so idle connections survive NAT timeouts. The line "DONE" ends
 * it; any other line is a protocol error that ends it too.
 */
#include <string.h>

#include "imap/imap_internal.h"

int mailproto_imap_cmd_idle(mailproto_imap *s) {
  s->idle = 1;
  s->phase = IMAP_PHASE_SYNC;
  return 0;
}

int mailproto_imap_idle_announced(mailproto_imap *s) {
  if (s->idle == 1) {
    int rc = mailproto_imap_continue(s, "idling");
    if (rc != 0)
      return rc;
    /* DONE is a line of its own, not a command (RFC 2177 3). */
    if (mailproto_imap_reader_raw_line(&s->reader) != 0)
      return MAILPROTO_ERR_INTERNAL;
    s->idle = 2;
  }
  /* A change noted while this round was syncing or its output drained
   * (mailproto_imap_sync only marks dirty then) gets a round of its own
   * now, or it would wait for the keep-alive; not after a failed sync,
   * which would only fail again at once. */
  s->phase = s->state == IMAP_SELECTED && s->sel.dirty && !s->sel.sync_failed
                 ? IMAP_PHASE_SYNC
                 : IMAP_PHASE_INPUT;
  return 0;
}

static int is_done(const uint8_t *p, size_t len) {
  static const char done[] = "DONE";
  if (len != 4)
    return 0;
  for (size_t i = 0; i < 4; i++) {
    uint8_t c = p[i];
    if (c >= 'a' && c <= 'z')
      c = (uint8_t)(c - 'a' + 'A');
    if (c != (uint8_t)done[i])
      return 0;
  }
  return 1;
}

int mailproto_imap_idle_line(mailproto_imap *s, const uint8_t *data,
                             size_t len) {
  s->idle = 3;
  if (is_done(data, len))
    return mailproto_imap_done(s, "OK", NULL, "IDLE terminated");
  /* RFC 2177 3: nothing but DONE may be sent while idling. */
  return mailproto_imap_done(s, "BAD", "CLIENTBUG", "Expected DONE");
}
