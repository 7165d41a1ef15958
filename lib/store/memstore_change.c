/* The in-memory store's changes to an open mailbox: flags, expunge, copy
 * and move. Each validates and reserves everything first, then commits. */
#include <stdlib.h>
#include <string.h>

#include "store/memstore_hooks.h"
#include "store/memstore_internal.h"

/* The UID ranges of a call, sorted and disjoint. */
typedef mailproto_uid_set selection;

static int selection_init(mailproto_memstore *s, selection *sel,
                          const mailproto_uid_range *r, size_t n) {
  return mailproto_uid_set_init(&s->alloc, sel, r, n);
}

static void selection_free(mailproto_memstore *s, selection *sel) {
  mailproto_uid_set_free(&s->alloc, sel);
}

typedef struct sel_iter {
  size_t range, index;
} sel_iter;

/* Yields the indices of selected messages with UIDs below `limit`, in
 * ascending order: O(log n) per range plus O(1) per message. */
static int sel_next(const ms_mailbox *mb, const selection *sel, uint32_t limit,
                    sel_iter *it, size_t *out) {
  while (it->range < sel->n) {
    const mailproto_uid_range *rg = &sel->r[it->range];
    if (it->index < mb->count && mb->msgs[it->index].uid < rg->first)
      it->index = mailproto_memstore_lower_bound_from(mb, it->index, rg->first);
    if (it->index < mb->count && mb->msgs[it->index].uid <= rg->last &&
        mb->msgs[it->index].uid < limit) {
      *out = it->index++;
      return 1;
    }
    it->range++;
  }
  return 0;
}

static int wanted(const ms_msg *m, int only_deleted) {
  return !only_deleted || (m->flags & MAILPROTO_FLAG_DELETED);
}

static size_t count_selected(const ms_mailbox *mb, const selection *sel,
                             int only_deleted, uint32_t limit) {
  sel_iter it = {0, 0};
  size_t i, n = 0;
  while (sel_next(mb, sel, limit, &it, &i))
    if (wanted(&mb->msgs[i], only_deleted))
      n++;
  return n;
}

/* Removes the selected messages (log room reserved): one compaction pass. */
static void remove_selected(mailproto_memstore *s, ms_mailbox *mb,
                            const selection *sel, int only_deleted,
                            uint32_t limit, uint64_t modseq) {
  sel_iter it = {0, 0};
  size_t i, write = SIZE_MAX, read = 0;
  while (sel_next(mb, sel, limit, &it, &i)) {
    ms_msg *m = &mb->msgs[i];
    if (!wanted(m, only_deleted))
      continue;
    /* Messages before the first removed one stay where they are. */
    if (write == SIZE_MAX)
      write = read = i;
    memmove(mb->msgs + write, mb->msgs + read, (i - read) * sizeof *m);
    write += i - read;
    read = i + 1;
    mb->size -= m->body->size;
    mb->seen -= (m->flags & MAILPROTO_FLAG_SEEN) != 0;
    mb->deleted -= (m->flags & MAILPROTO_FLAG_DELETED) != 0;
    mailproto_memstore_log_add(mb, m, modseq, 1);
    mailproto_memstore_body_unref(s, m->body);
  }
  if (write == SIZE_MAX)
    return;
  memmove(mb->msgs + write, mb->msgs + read,
          (mb->count - read) * sizeof *mb->msgs);
  mb->count = write + (mb->count - read);
}

int mailproto_memstore_hook_set_flags(
    void *ctx, mailproto_op *op, void *mailbox,
    const mailproto_uid_range *ranges, size_t range_count,
    mailproto_flag_mode mode, uint32_t flags, const char *const *keywords,
    size_t keyword_count, uint64_t unchanged_since) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  if (!s || !op || !h ||
      mailproto_store_flag_args(mode, flags, keywords, keyword_count) != 0)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_mailbox *mb = h->mb;
  if (h->flags & MAILPROTO_OPEN_READONLY)
    return MAILPROTO_ERR_PERMISSION;

  ms_keyword_plan plan;
  uint64_t mask = 0;
  int rc =
      mailproto_memstore_keywords_plan(mb, &plan, keywords, keyword_count,
                                       mode != MAILPROTO_FLAGS_REMOVE, &mask);
  if (rc != 0)
    return rc;
  selection sel;
  if ((rc = selection_init(s, &sel, ranges, range_count)) != 0)
    return rc;

  /* Pass 1: who fails UNCHANGEDSINCE (reported now, before anything
   * changes) and how many messages change. RFC 7162 3.1.3: a message that
   * passes the test gets a new mod-sequence even if its flags stay. */
  sel_iter it = {0, 0};
  size_t i, changes = 0;
  while (rc == 0 && sel_next(mb, &sel, UINT32_MAX, &it, &i)) {
    const ms_msg *m = &mb->msgs[i];
    uint8_t nf;
    uint64_t nk;
    if (unchanged_since && m->modseq > unchanged_since) {
      rc = mailproto_op_add_modified(op, m->uid);
      continue;
    }
    mailproto_store_apply_flags(mode, m->flags, m->keywords, flags, mask, &nf,
                                &nk);
    changes += nf != m->flags || nk != m->keywords || unchanged_since;
  }
  if (rc == 0)
    rc = mailproto_memstore_log_reserve(s, mb, changes);
  if (rc == 0)
    rc = mailproto_memstore_keywords_alloc(s, &plan);
  if (rc != 0) {
    selection_free(s, &sel);
    return rc;
  }

  unsigned added = mailproto_memstore_keywords_commit(mb, &plan);
  if (changes) {
    uint64_t modseq = ++mb->modseq;
    it.range = it.index = 0;
    while (sel_next(mb, &sel, UINT32_MAX, &it, &i)) {
      ms_msg *m = &mb->msgs[i];
      uint8_t nf;
      uint64_t nk;
      if (unchanged_since && m->modseq > unchanged_since)
        continue;
      mailproto_store_apply_flags(mode, m->flags, m->keywords, flags, mask, &nf,
                                  &nk);
      if (nf == m->flags && nk == m->keywords && !unchanged_since)
        continue;
      mb->seen += (size_t)((nf & MAILPROTO_FLAG_SEEN) != 0) -
                  (size_t)((m->flags & MAILPROTO_FLAG_SEEN) != 0);
      mb->deleted += (size_t)((nf & MAILPROTO_FLAG_DELETED) != 0) -
                     (size_t)((m->flags & MAILPROTO_FLAG_DELETED) != 0);
      m->flags = nf;
      m->keywords = nk;
      m->modseq = modseq;
      mailproto_memstore_log_add(mb, m, modseq, 0);
    }
  }
  selection_free(s, &sel);
  if (changes || added)
    mailproto_memstore_notify(mb, h);
  return 0;
}

int mailproto_memstore_hook_expunge(void *ctx, mailproto_op *op, void *mailbox,
                                    const mailproto_uid_range *ranges,
                                    size_t range_count, unsigned flags) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  (void)op;
  if (!s || !h || (flags & ~MAILPROTO_EXPUNGE_ONLY_DELETED))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_mailbox *mb = h->mb;
  if (h->flags & MAILPROTO_OPEN_READONLY)
    return MAILPROTO_ERR_PERMISSION;
  int only = (flags & MAILPROTO_EXPUNGE_ONLY_DELETED) != 0;
  selection sel;
  int rc = selection_init(s, &sel, ranges, range_count);
  if (rc != 0)
    return rc;
  size_t n = count_selected(mb, &sel, only, UINT32_MAX);
  if (n && (rc = mailproto_memstore_log_reserve(s, mb, n)) == 0) {
    remove_selected(s, mb, &sel, only, UINT32_MAX, ++mb->modseq);
    mailproto_memstore_notify(mb, h);
  }
  selection_free(s, &sel);
  return rc;
}

int mailproto_memstore_hook_copy(void *ctx, mailproto_op *op, void *mailbox,
                                 const mailproto_uid_range *ranges,
                                 size_t range_count, const char *dest, int move,
                                 uint32_t *dest_uidvalidity) {
  mailproto_memstore *s = ctx;
  ms_handle *h = mailbox;
  int rc;
  if (!s || !op || !h || !dest || !dest_uidvalidity)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_mailbox *src = h->mb;
  if (move && (h->flags & MAILPROTO_OPEN_READONLY))
    return MAILPROTO_ERR_PERMISSION;
  ms_mailbox *dst = mailproto_memstore_find_selectable(src->user, dest, &rc);
  if (!dst)
    return rc;
  selection sel;
  if ((rc = selection_init(s, &sel, ranges, range_count)) != 0)
    return rc;
  /* Copies of a same-mailbox copy land above this and are not sources. */
  uint32_t limit = src->uidnext;
  size_t n = count_selected(src, &sel, 0, limit), i;
  sel_iter it = {0, 0};

  /* The destination's keyword indices for the source's keywords. */
  unsigned map[MAILPROTO_KEYWORDS_MAX] = {0};
  ms_keyword_plan plan;
  mailproto_memstore_keywords_plan(dst, &plan, NULL, 0, 1, NULL);
  uint64_t used = 0;
  while (sel_next(src, &sel, limit, &it, &i))
    used |= src->msgs[i].keywords;
  for (unsigned k = 0; rc == 0 && k < src->keyword_count; k++) {
    if (!(used >> k & 1u))
      continue;
    rc = mailproto_memstore_keywords_plan_one(dst, &plan, src->keywords[k],
                                              &map[k]);
  }
  if (rc == 0 && (uint64_t)dst->uidnext + n - 1 > MS_UID_MAX && n)
    rc = MAILPROTO_ERR_LIMIT;
  size_t need;
  if (rc == 0 && mailproto_size_add(dst->count, n, &need) != 0)
    rc = MAILPROTO_ERR_NOMEM;
  if (rc == 0)
    rc = mailproto_store_grow(&s->alloc, (void **)&dst->msgs, &dst->cap, need,
                              sizeof *dst->msgs);
  if (rc == 0 && move)
    rc = mailproto_memstore_log_reserve(s, src, n);
  if (rc == 0)
    rc = mailproto_memstore_keywords_alloc(s, &plan);
  /* RFC 4315 COPYUID pairs, reported before anything changes so a failing
   * report leaves the store as it was. */
  uint32_t next = dst->uidnext;
  it.range = it.index = 0;
  while (rc == 0 && sel_next(src, &sel, limit, &it, &i))
    rc = mailproto_op_add_uid_map(op, src->msgs[i].uid, next++);
  if (rc != 0) {
    mailproto_memstore_keywords_free(s, &plan);
    selection_free(s, &sel);
    return rc;
  }

  *dest_uidvalidity = dst->uidvalidity;
  if (n) {
    mailproto_memstore_keywords_commit(dst, &plan);
    uint64_t modseq = ++dst->modseq;
    it.range = it.index = 0;
    while (sel_next(src, &sel, limit, &it, &i)) {
      ms_msg m = src->msgs[i];
      uint64_t kw = 0;
      for (unsigned k = 0; k < src->keyword_count; k++)
        if (m.keywords >> k & 1u)
          kw |= (uint64_t)1 << map[k];
      m.uid = dst->uidnext++;
      m.keywords = kw;
      m.modseq = modseq;
      m.body->refs++;
      /* New UIDs are above recent_from: the copies are \Recent anew. */
      mailproto_memstore_push(dst, &m);
    }
    if (move)
      remove_selected(s, src, &sel, 0, limit, ++src->modseq);
    /* The acting handle learns of its own changes when it syncs. */
    mailproto_memstore_notify(dst, h);
    if (move && src != dst)
      mailproto_memstore_notify(src, h);
  }
  selection_free(s, &sel);
  return 0;
}
