/*
 * The mailbox view of one IMAP session: its picture of the selected
 * mailbox, which lags behind the store on purpose. It is a pure data
 * structure: it never calls the store and never writes output. The
 * session feeds it what the store's `open` and `sync` report, maps
 * sequence numbers and UIDs through it, and asks it what to announce at
 * the moments RFC 3501 7.4.1 (RFC 9051 7.5.1) allows.
 *
 * Terms used below:
 *  - index: the 0-based position of a message in the view; the message
 *    sequence number is index + 1 for every message the client knows.
 *  - visible: the messages the client has been told about (the last
 *    EXISTS minus the EXPUNGEs sent since). Messages a sync reports as new
 *    sit after them, invisible, until mailproto_imap_view_flush_exists().
 *  - expunged (pending): the store removed the message but the client has
 *    not been sent its EXPUNGE yet, so it keeps its sequence number
 *    (RFC 3501 7.4.1) and can still be addressed; the store skips it.
 *
 * Memory (issue 7 goal: at most 16 bytes per message): 10 bytes per message
 * in parallel arrays (UID, mod-sequence as a 32-bit offset, system flags,
 * state bits) plus two sparse hash tables keyed by UID: keyword masks of
 * the messages that have keywords (16 to 32 bytes each) and the rare
 * mod-sequences too far from the view's base to fit 32 bits. Pending
 * announcements cost 4 to 8 bytes per announced message until flushed.
 *
 * Every function that can fail returns 0 (or a documented non-negative
 * value) or a negative MAILPROTO_ERR_* code. A function returning
 * MAILPROTO_ERR_NOMEM has left the view exactly as it was. None of them
 * calls back; all run in O(1) or O(log n) unless stated otherwise.
 */
#ifndef MAILPROTO_IMAP_VIEW_H
#define MAILPROTO_IMAP_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "imap/imap_seqset.h"
#include "mailproto/store.h"

typedef struct mailproto_imap_view mailproto_imap_view;

/* ------------------------------------------------------------------ */
/* Life cycle                                                          */
/* ------------------------------------------------------------------ */

/* Creates an empty view whose memory comes from `alloc` (NULL: the C
 * library's; the struct is copied). Returns 0, NOMEM or INVALID_ARGUMENT. */
int mailproto_imap_view_new(const mailproto_allocator *alloc,
                            mailproto_imap_view **out);

/* Frees the view (NULL is fine). */
void mailproto_imap_view_free(mailproto_imap_view *v);

/* Bytes the view holds right now, its struct included (benchmarks, the
 * per-session memory figure). */
size_t mailproto_imap_view_memory(const mailproto_imap_view *v);

/* ------------------------------------------------------------------ */
/* Feeding it what the store reports (open, then every sync)            */
/* ------------------------------------------------------------------ */

/* Makes room for `messages` messages in total, so a large open does not
 * grow the arrays step by step. Optional. Returns 0 or NOMEM. */
int mailproto_imap_view_reserve(mailproto_imap_view *v, size_t messages);

/*
 * Keyword `index` (< MAILPROTO_KEYWORDS_MAX) of the mailbox's table is
 * `name` (copied). A keyword defined after mailproto_imap_view_opened()
 * makes mailproto_imap_view_flush_keywords() return 1. Redefining an index
 * with the same name (ASCII case ignored) does nothing. Returns 0, NOMEM
 * or INVALID_ARGUMENT (index out of range, NULL or empty name).
 */
int mailproto_imap_view_keyword(mailproto_imap_view *v, unsigned index,
                                const char *name);

/*
 * A message as `open` or `sync` reports it (mailproto_op_add_message):
 *  - a UID above every UID reported so far is a new message: it is added
 *    after the others, invisible until flush_exists (or opened);
 *  - otherwise it is a change: flags (MAILPROTO_FLAGS_SETTABLE bits),
 *    keywords and modseq replace the view's. If the message is visible
 *    and its flags or keywords differ from the view's it is queued for a
 *    FETCH announcement; if only its modseq differs it is queued only
 *    while CONDSTORE is on (set_condstore). A UID the view does not hold,
 *    or holds as expunged, is ignored.
 * MAILPROTO_FLAG_RECENT is taken from the report that adds the message;
 * it is ignored in changes (\Recent never changes within a session).
 * Returns 0, NOMEM, or INVALID_ARGUMENT for UID 0.
 */
int mailproto_imap_view_message(mailproto_imap_view *v, uint32_t uid,
                                uint32_t flags, uint64_t keywords,
                                uint64_t modseq);

/*
 * The store reports `uid` expunged (mailproto_op_add_expunged). A visible
 * message is marked and keeps its sequence number until
 * flush_expunges; a message the client was never told about is dropped
 * silently at the next flush. Unknown or already expunged UIDs are
 * ignored. Returns 0 or NOMEM.
 */
int mailproto_imap_view_expunged(mailproto_imap_view *v, uint32_t uid);

/* The status `open` or `sync` filled: UIDNEXT, UIDVALIDITY and
 * HIGHESTMODSEQ are taken from it (the other counters the view knows
 * better). */
void mailproto_imap_view_status(mailproto_imap_view *v,
                                const mailproto_mailbox_status *status);

/*
 * The open is complete: every message reported so far becomes visible
 * (SELECT/EXAMINE tell the client with EXISTS), the keyword table counts
 * as announced (SELECT sends FLAGS), nothing is pending, and spare array
 * capacity is given back. O(n).
 */
void mailproto_imap_view_opened(mailproto_imap_view *v);

/* CONDSTORE is on for this mailbox (RFC 7162 3.1: after a CONDSTORE
 * enabling command): changes of modseq alone are announced too, and
 * changes carry their modseq. Off by default. */
void mailproto_imap_view_set_condstore(mailproto_imap_view *v, int on);

/* ------------------------------------------------------------------ */
/* Counters (SELECT, EXAMINE, NOOP)                                    */
/* ------------------------------------------------------------------ */

/* Messages the client knows (its EXISTS), expunged-pending ones included. */
uint32_t mailproto_imap_view_exists(const mailproto_imap_view *v);
/* \Recent messages among those (rev1 RECENT; RFC 9051 has none). */
uint32_t mailproto_imap_view_recent(const mailproto_imap_view *v);
/* Sequence number of the first visible message without \Seen, or 0 (rev1
 * "OK [UNSEEN n]"). O(n) in the worst case: call it at SELECT only. */
uint32_t mailproto_imap_view_first_unseen(const mailproto_imap_view *v);
/* Predicted next UID: the store's, but above every UID the view holds. */
uint32_t mailproto_imap_view_uidnext(const mailproto_imap_view *v);
uint32_t mailproto_imap_view_uidvalidity(const mailproto_imap_view *v);
/* The store's HIGHESTMODSEQ (SELECT/EXAMINE, STATUS of the selected
 * mailbox). */
uint64_t mailproto_imap_view_highest_modseq(const mailproto_imap_view *v);
/* The HIGHESTMODSEQ the client may be sent now: the store's value as of
 * the last moment nothing (expunges, changes, new messages) was waiting
 * to be announced, so a client that caches it loses nothing (RFC 7162
 * 3.2). */
uint64_t mailproto_imap_view_safe_modseq(const mailproto_imap_view *v);
/* Visible messages marked expunged and not yet announced. */
uint32_t mailproto_imap_view_pending_expunges(const mailproto_imap_view *v);

/* ------------------------------------------------------------------ */
/* Messages by index (index < exists; O(1))                            */
/* ------------------------------------------------------------------ */

uint32_t mailproto_imap_view_uid(const mailproto_imap_view *v, uint32_t index);
/* MAILPROTO_FLAG_* bits, \Recent included. */
uint32_t mailproto_imap_view_flags(const mailproto_imap_view *v,
                                   uint32_t index);
/* Keyword mask: bit i is keyword i of the table. */
uint64_t mailproto_imap_view_keywords(const mailproto_imap_view *v,
                                      uint32_t index);
uint64_t mailproto_imap_view_modseq(const mailproto_imap_view *v,
                                    uint32_t index);
/* 1 if the store removed it and its EXPUNGE is still pending, else 0. */
int mailproto_imap_view_is_expunged(const mailproto_imap_view *v,
                                    uint32_t index);

/* Finds a visible message by UID (binary search). Returns 1 and sets
 * *index, or 0. */
int mailproto_imap_view_find_uid(const mailproto_imap_view *v, uint32_t uid,
                                 uint32_t *index);
/* The first visible message whose UID is at least `uid` (exists when
 * none is). */
uint32_t mailproto_imap_view_uid_lower_bound(const mailproto_imap_view *v,
                                             uint32_t uid);

/* ------------------------------------------------------------------ */
/* Keyword table                                                       */
/* ------------------------------------------------------------------ */

/* One more than the highest defined keyword index (0: none). */
unsigned mailproto_imap_view_keyword_count(const mailproto_imap_view *v);
/* Name of keyword `index`, or NULL if it is not defined. */
const char *mailproto_imap_view_keyword_name(const mailproto_imap_view *v,
                                             unsigned index);
/* Finds a keyword by name (len bytes, ASCII case ignored: flags are atoms,
 * which compare case-insensitively, RFC 9051 9 note 1). Returns 1 and sets
 * *index, or 0. */
int mailproto_imap_view_keyword_find(const mailproto_imap_view *v,
                                     const char *name, size_t len,
                                     unsigned *index);

/* ------------------------------------------------------------------ */
/* Sequence sets and UID sets                                          */
/* ------------------------------------------------------------------ */

/*
 * Input: ranges as the parser gives them (mailproto_imap_range, numbers
 * as written, MAILPROTO_IMAP_SEQ_STAR for "*", "a:b" equal to "b:a").
 * Output ("spans"): mailproto_imap_range holding 0-based *indexes*,
 * first <= last, sorted ascending, disjoint and not adjacent. `out` must
 * have room for `count` ranges and may be the input array itself. Time
 * O(count log count + count log n), memory O(1): spans never depend on
 * how many numbers a range covers ("1:4294967295" is one span).
 */

/* Checks a message sequence set: MAILPROTO_ERR_NOT_FOUND if a number is
 * above exists, or "*" is used while exists is 0 (RFC 3501 9: the server
 * answers BAD), else 0. */
int mailproto_imap_view_check_seq(const mailproto_imap_view *v,
                                  const mailproto_imap_range *ranges,
                                  size_t count);

/* Resolves a message sequence set to spans. Returns 0 and sets
 * *out_count, or MAILPROTO_ERR_NOT_FOUND as check_seq (then *out_count is
 * 0 and `out` holds nothing useful). */
int mailproto_imap_view_resolve_seq(const mailproto_imap_view *v,
                                    const mailproto_imap_range *ranges,
                                    size_t count, mailproto_imap_range *out,
                                    size_t *out_count);

/* Resolves a UID set to spans of the visible messages whose UIDs are in
 * it. "*" is the UID of the last visible message (RFC 9051 6.4.9: "559:*"
 * always includes it); UIDs the view does not hold match nothing, which is
 * not an error. Returns 0 and sets *out_count. */
int mailproto_imap_view_resolve_uid(const mailproto_imap_view *v,
                                    const mailproto_imap_range *ranges,
                                    size_t count, mailproto_imap_range *out,
                                    size_t *out_count);

/* Converts spans to UID ranges for store calls (set_flags, expunge,
 * copy): one range per span, from its first message's UID to its last
 * one's, so UIDs above the last visible message (new messages the client
 * has not been told about) are never included. `out` needs room for
 * `count` ranges. Returns the number written: `count` for spans from
 * resolve_*; ranges that are not spans of this view are skipped. */
size_t mailproto_imap_view_spans_to_uids(const mailproto_imap_view *v,
                                         const mailproto_imap_range *spans,
                                         size_t count,
                                         mailproto_uid_range *out);

/* Number of messages the spans cover. */
uint64_t mailproto_imap_view_spans_total(const mailproto_imap_range *spans,
                                         size_t count);

/* Walks spans message by message, O(1) per step, no allocation. */
typedef struct mailproto_imap_view_iter {
  const mailproto_imap_range *spans;
  size_t count;
  size_t pos;    /* current span */
  uint64_t next; /* next index within spans[pos] */
} mailproto_imap_view_iter;

static inline void
mailproto_imap_view_iter_init(mailproto_imap_view_iter *it,
                              const mailproto_imap_range *spans, size_t count) {
  it->spans = spans;
  it->count = count;
  it->pos = 0;
  it->next = count ? spans[0].first : 0;
}

/* Sets *index to the next message's index and returns 1, or returns 0 at
 * the end. */
static inline int mailproto_imap_view_iter_next(mailproto_imap_view_iter *it,
                                                uint32_t *index) {
  while (it->pos < it->count) {
    if (it->next <= it->spans[it->pos].last) {
      *index = (uint32_t)it->next++;
      return 1;
    }
    if (++it->pos < it->count)
      it->next = it->spans[it->pos].first;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* The session's own flag changes                                      */
/* ------------------------------------------------------------------ */

/*
 * The session changed a visible message's flags itself (STORE, or \Seen
 * set by a FETCH of BODY[]): apply `mode` with `flags`
 * (MAILPROTO_FLAGS_SETTABLE bits) and `keywords` to the view's copy right
 * away, so the next sync, which reports the same values, announces
 * nothing. With `announce` the message is queued for a FETCH (STORE
 * without .SILENT: RFC 3501 6.4.6 returns the new flags; flush changes
 * after the store call and its sync). Without it nothing is queued, but
 * an announcement already queued for another session's change stays,
 * and a sync reporting values other than the expected ones (someone else
 * changed the message too, or a keyword was new to the table) is still
 * announced. Call it once the store accepted the change and before the
 * sync that reports it. Expunged messages are left alone. Returns 0,
 * NOMEM, or INVALID_ARGUMENT (index not visible, bad mode).
 */
int mailproto_imap_view_store_own(mailproto_imap_view *v, uint32_t index,
                                  mailproto_flag_mode mode, uint32_t flags,
                                  uint64_t keywords, int announce);

/* ------------------------------------------------------------------ */
/* Announcements                                                       */
/* ------------------------------------------------------------------ */

/*
 * EXPUNGE responses. flush_expunges starts a round: it takes every
 * pending expunged message out of the view at once (sequence numbers,
 * exists and recent change now; O(n) from the lowest one) and returns how
 * many EXPUNGE responses the client must be sent. next_expunge then hands
 * them out one by one, highest sequence number first, so each is right
 * when the ones before it have been applied (RFC 3501 7.4.1); the UID is
 * given too (QRESYNC VANISHED). While a round is unfinished,
 * flush_expunges returns what is left of it, flush_exists and
 * flush_changes return MAILPROTO_ERR_STATE, and the session must send
 * nothing else carrying sequence numbers. Only call it where EXPUNGE is
 * allowed (not during FETCH, STORE, SEARCH).
 */
size_t mailproto_imap_view_flush_expunges(mailproto_imap_view *v);
/* Returns 1 and sets *seq and *uid, or 0 when the round is over. */
int mailproto_imap_view_next_expunge(mailproto_imap_view *v, uint32_t *seq,
                                     uint32_t *uid);

/*
 * EXISTS (and RECENT for rev1): makes the new messages visible. Returns
 * 1 and sets *exists and *recent if the client must be told, 0 if nothing
 * new arrived (then both still get the current values), or
 * MAILPROTO_ERR_STATE during an expunge round. Allowed at any time a
 * response may be sent, FETCH/STORE/SEARCH included (RFC 3501 5.2); the
 * count never goes down here because expunged-pending messages still
 * count. Either pointer may be NULL.
 */
int mailproto_imap_view_flush_exists(mailproto_imap_view *v, uint32_t *exists,
                                     uint32_t *recent);

/* One queued FETCH announcement. */
typedef struct mailproto_imap_view_change {
  uint32_t seq;
  uint32_t uid;
  uint32_t flags;    /* MAILPROTO_FLAG_*, \Recent included */
  uint64_t keywords; /* mask over the keyword table */
  uint64_t modseq;
  /* 1: flags or keywords changed (or an own STORE asked for them): send
   * FLAGS. 0: only the modseq changed, which is queued only with
   * CONDSTORE on: send "FETCH (UID n MODSEQ (m))" (RFC 7162 3.1.4). */
  int flags_changed;
} mailproto_imap_view_change;

/*
 * FETCH announcements for flag changes, in ascending sequence order.
 * flush_changes starts a round (sorting the queue: O(k log k) for k
 * queued messages; no allocation) unless one is unfinished; next_change
 * returns 1 and fills *change for each visible, not expunged message
 * queued, with its values at the time of the call, then 0 at the end of
 * the round. Both return MAILPROTO_ERR_STATE during an expunge round.
 * Allowed whenever responses may be sent. Messages changed again during
 * a round are reported once with their latest values, or in the next
 * round if already reported.
 */
int mailproto_imap_view_flush_changes(mailproto_imap_view *v);
int mailproto_imap_view_next_change(mailproto_imap_view *v,
                                    mailproto_imap_view_change *change);

/* Returns 1 (once) if keywords were added to the table since the last
 * call or since opened: send "* FLAGS" and "OK [PERMANENTFLAGS]" again
 * (RFC 3501 7.2.6). */
int mailproto_imap_view_flush_keywords(mailproto_imap_view *v);

#endif
