/* The in-memory store's mailbox tree: list, create, delete, rename,
 * subscribe and status (choices documented in memstore_internal.h). */
#include <stdlib.h>
#include <string.h>

#include "store/memstore_hooks.h"
#include "store/memstore_internal.h"

/* Most levels a valid name can have ("a/b/c/..."), so most parents. */
#define MAX_LEVELS (MAILPROTO_MAILBOX_NAME_MAX / 2 + 1)

/* Index of the first mailbox whose name is >= key. */
static size_t lower_bound(const ms_user *u, const char *key) {
  size_t lo = 0, hi = u->box_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(u->boxes[mid]->name, key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

ms_mailbox *mailproto_memstore_find(const ms_user *u, const char *name) {
  size_t i = lower_bound(u, name);
  return i < u->box_count && strcmp(u->boxes[i]->name, name) == 0 ? u->boxes[i]
                                                                  : NULL;
}

ms_mailbox *mailproto_memstore_find_selectable(const ms_user *u,
                                               const char *name, int *rc) {
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  if (mailproto_store_canon_name(name, canon) != 0) {
    *rc = MAILPROTO_ERR_BAD_NAME;
    return NULL;
  }
  ms_mailbox *mb = mailproto_memstore_find(u, canon);
  if (!mb || !mb->selectable) {
    *rc = MAILPROTO_ERR_NOT_FOUND;
    return NULL;
  }
  *rc = 0;
  return mb;
}

/* Range [*first, *last) of the mailboxes strictly below `name`: their
 * names start with name + "/", so they sort next to each other. */
static void children(const ms_user *u, const char *name, size_t *first,
                     size_t *last) {
  char key[MAILPROTO_MAILBOX_NAME_MAX + 2];
  size_t n = strlen(name);
  memcpy(key, name, n);
  key[n] = MAILPROTO_MAILBOX_SEPARATOR;
  key[n + 1] = '\0';
  size_t i = lower_bound(u, key), j = i;
  while (j < u->box_count && strncmp(u->boxes[j]->name, key, n + 1) == 0)
    j++;
  *first = i;
  *last = j;
}

static int has_children(const ms_user *u, const char *name) {
  size_t a, b;
  children(u, name, &a, &b);
  return b > a;
}

ms_mailbox *mailproto_memstore_mailbox_new(mailproto_memstore *s, ms_user *u,
                                           const char *name) {
  ms_mailbox *mb = mailproto_mem_calloc(&s->alloc, 1, sizeof *mb);
  if (!mb)
    return NULL;
  mb->name = mailproto_mem_strdup(&s->alloc, name);
  if (!mb->name) {
    mailproto_mem_free(&s->alloc, mb);
    return NULL;
  }
  mb->user = u;
  mb->modseq = 1;
  return mb;
}

int mailproto_memstore_make_selectable(mailproto_memstore *s, ms_mailbox *mb) {
  uint32_t v;
  int rc = mailproto_memstore_next_uidvalidity(s, &v);
  if (rc != 0)
    return rc;
  mb->selectable = 1;
  mb->uidvalidity = v;
  mb->uidnext = 1;
  mb->recent_from = 1;
  mb->modseq = 1;
  return 0;
}

static void free_messages(mailproto_memstore *s, ms_mailbox *mb) {
  for (size_t i = 0; i < mb->count; i++)
    mailproto_memstore_body_unref(s, mb->msgs[i].body);
  mailproto_mem_free(&s->alloc, mb->msgs);
  mb->msgs = NULL;
  mb->count = mb->cap = 0;
  mb->seen = mb->deleted = 0;
  mb->size = 0;
}

static void free_keywords(mailproto_memstore *s, ms_mailbox *mb) {
  for (unsigned i = 0; i < mb->keyword_count; i++)
    mailproto_mem_free(&s->alloc, mb->keywords[i]);
  mb->keyword_count = 0;
}

void mailproto_memstore_mailbox_free(mailproto_memstore *s, ms_mailbox *mb) {
  if (!mb)
    return;
  free_messages(s, mb);
  free_keywords(s, mb);
  mailproto_mem_free(&s->alloc, mb->log);
  mailproto_mem_free(&s->alloc, mb->name);
  mailproto_mem_free(&s->alloc, mb);
}

void mailproto_memstore_user_free(mailproto_memstore *s, ms_user *u) {
  if (!u)
    return;
  for (size_t i = 0; i < u->box_count; i++)
    mailproto_memstore_mailbox_free(s, u->boxes[i]);
  mailproto_mem_free(&s->alloc, u->boxes);
  for (size_t i = 0; i < u->sub_count; i++)
    mailproto_mem_free(&s->alloc, u->subs[i]);
  mailproto_mem_free(&s->alloc, u->subs);
  mailproto_mem_free(&s->alloc, u->name);
  if (u->password)
    mailproto_secure_zero(u->password, u->password_len);
  mailproto_mem_free(&s->alloc, u->password);
  mailproto_mem_free(&s->alloc, u);
}

/* Inserts mb in sorted position; room was reserved. */
static void insert_box(ms_user *u, ms_mailbox *mb) {
  size_t i = lower_bound(u, mb->name);
  memmove(u->boxes + i + 1, u->boxes + i,
          (u->box_count - i) * sizeof *u->boxes);
  u->boxes[i] = mb;
  u->box_count++;
}

static void remove_box_at(ms_user *u, size_t i) {
  memmove(u->boxes + i, u->boxes + i + 1,
          (u->box_count - i - 1) * sizeof *u->boxes);
  u->box_count--;
}

static size_t index_of(const ms_user *u, const ms_mailbox *mb) {
  return lower_bound(u, mb->name);
}

/*
 * Allocates placeholders for the missing parents of `name` (RFC 3501 6.3.3
 * and 6.3.5: superior names are created as needed) and reserves room in
 * the user's mailbox array for them plus `extra` more.
 */
static int plan_parents(mailproto_memstore *s, ms_user *u, const char *name,
                        size_t extra, ms_mailbox **parents, size_t *count) {
  char prefix[MAILPROTO_MAILBOX_NAME_MAX + 1];
  *count = 0;
  for (const char *p = name; (p = strchr(p, MAILPROTO_MAILBOX_SEPARATOR));
       p++) {
    size_t n = (size_t)(p - name);
    memcpy(prefix, name, n);
    prefix[n] = '\0';
    if (mailproto_memstore_find(u, prefix))
      continue;
    ms_mailbox *mb = mailproto_memstore_mailbox_new(s, u, prefix);
    if (!mb)
      goto nomem;
    parents[(*count)++] = mb;
  }
  if (mailproto_store_grow(&s->alloc, (void **)&u->boxes, &u->box_cap,
                           u->box_count + *count + extra,
                           sizeof *u->boxes) == 0)
    return 0;
nomem:
  for (size_t i = 0; i < *count; i++)
    mailproto_memstore_mailbox_free(s, parents[i]);
  *count = 0;
  return MAILPROTO_ERR_NOMEM;
}

static int is_subscribed(const ms_user *u, const char *name, size_t *pos) {
  size_t lo = 0, hi = u->sub_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(u->subs[mid], name) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (pos)
    *pos = lo;
  return lo < u->sub_count && strcmp(u->subs[lo], name) == 0;
}

static unsigned attributes(const ms_user *u, const ms_mailbox *mb) {
  unsigned a = mb->special_use;
  if (!mb->selectable)
    a |= MAILPROTO_MBOX_NOSELECT;
  a |= has_children(u, mb->name) ? MAILPROTO_MBOX_HAS_CHILDREN
                                 : MAILPROTO_MBOX_HAS_NO_CHILDREN;
  if (is_subscribed(u, mb->name, NULL))
    a |= MAILPROTO_MBOX_SUBSCRIBED;
  return a;
}

int mailproto_memstore_hook_list(void *ctx, mailproto_op *op, void *account,
                                 const char *pattern, unsigned flags) {
  ms_user *u = account;
  if (!ctx || !op || !u || !pattern || (flags & ~MAILPROTO_LIST_SUBSCRIBED))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (flags & MAILPROTO_LIST_SUBSCRIBED) {
    for (size_t i = 0; i < u->sub_count; i++) {
      const char *name = u->subs[i];
      if (!mailproto_mailbox_match(pattern, name))
        continue;
      ms_mailbox *mb = mailproto_memstore_find(u, name);
      /* RFC 5258 3: \NonExistent implies \NoSelect. */
      unsigned a = mb ? attributes(u, mb)
                      : MAILPROTO_MBOX_SUBSCRIBED | MAILPROTO_MBOX_NONEXISTENT |
                            MAILPROTO_MBOX_NOSELECT;
      int rc = mailproto_store_report_mailbox(op, name, a);
      if (rc != 0)
        return rc;
    }
    return 0;
  }
  for (size_t i = 0; i < u->box_count; i++) {
    const ms_mailbox *mb = u->boxes[i];
    if (!mailproto_mailbox_match(pattern, mb->name))
      continue;
    int rc = mailproto_store_report_mailbox(op, mb->name, attributes(u, mb));
    if (rc != 0)
      return rc;
  }
  return 0;
}

int mailproto_memstore_hook_create(void *ctx, mailproto_op *op, void *account,
                                   const char *name, unsigned special_use) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !name || (special_use & ~MAILPROTO_MBOX_SPECIAL_USE_MASK))
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  ms_mailbox *mb = mailproto_memstore_find(u, canon);
  if (mb && mb->selectable)
    return MAILPROTO_ERR_EXISTS; /* INBOX always is */
  if (mb) {
    /* A hierarchy placeholder becomes a real mailbox. */
    int rc = mailproto_memstore_make_selectable(s, mb);
    if (rc == 0)
      mb->special_use = special_use;
    return rc;
  }
  ms_mailbox *parents[MAX_LEVELS];
  size_t np;
  int rc = plan_parents(s, u, canon, 1, parents, &np);
  if (rc != 0)
    return rc;
  mb = mailproto_memstore_mailbox_new(s, u, canon);
  rc = mb ? mailproto_memstore_make_selectable(s, mb) : MAILPROTO_ERR_NOMEM;
  if (rc != 0) {
    mailproto_memstore_mailbox_free(s, mb);
    for (size_t i = 0; i < np; i++)
      mailproto_memstore_mailbox_free(s, parents[i]);
    return rc;
  }
  mb->special_use = special_use;
  for (size_t i = 0; i < np; i++)
    insert_box(u, parents[i]);
  insert_box(u, mb);
  return 0;
}

int mailproto_memstore_hook_delete(void *ctx, mailproto_op *op, void *account,
                                   const char *name) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !name)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  if (mailproto_mailbox_is_inbox(canon))
    return MAILPROTO_ERR_PERMISSION; /* RFC 3501 6.3.4 */
  ms_mailbox *mb = mailproto_memstore_find(u, canon);
  if (!mb)
    return MAILPROTO_ERR_NOT_FOUND;
  int kids = has_children(u, canon);
  /* RFC 3501 6.3.4: a \Noselect name with inferiors cannot be deleted; a
   * mailbox with inferiors loses its messages and becomes \Noselect. */
  if (!mb->selectable && kids)
    return MAILPROTO_ERR_HAS_CHILDREN;
  size_t at = index_of(u, mb);

  if (!mb->handles) {
    if (kids) {
      free_messages(s, mb);
      free_keywords(s, mb);
      mb->selectable = 0;
      mb->special_use = 0;
      mb->uidvalidity = mb->uidnext = mb->recent_from = 0;
      mb->modseq = 1;
    } else {
      remove_box_at(u, at);
      mailproto_memstore_mailbox_free(s, mb);
    }
    return 0;
  }
  /* Sessions have it open: they keep the old object, see every message
   * expunged, and the name (if it has children) gets a fresh placeholder. */
  ms_mailbox *placeholder = NULL;
  if (kids && !(placeholder = mailproto_memstore_mailbox_new(s, u, canon)))
    return MAILPROTO_ERR_NOMEM;
  if (mailproto_memstore_reserve_empty(s, mb) != 0) {
    mailproto_memstore_mailbox_free(s, placeholder);
    return MAILPROTO_ERR_NOMEM;
  }
  mailproto_memstore_empty(s, mb, NULL);
  mb->detached = 1;
  if (placeholder)
    u->boxes[at] = placeholder;
  else
    remove_box_at(u, at);
  return 0;
}

/* A new object for `src`'s contents under `name`, with a copy of its
 * keyword table (the old object's handles still index the old one). */
static ms_mailbox *clone_shell(mailproto_memstore *s, const ms_mailbox *src,
                               const char *name) {
  ms_mailbox *mb = mailproto_memstore_mailbox_new(s, src->user, name);
  if (!mb)
    return NULL;
  for (unsigned i = 0; i < src->keyword_count; i++) {
    mb->keywords[i] = mailproto_mem_strdup(&s->alloc, src->keywords[i]);
    if (!mb->keywords[i]) {
      mailproto_memstore_mailbox_free(s, mb);
      return NULL;
    }
    mb->keyword_count = i + 1;
  }
  return mb;
}

static int cmp_box(const void *a, const void *b) {
  return strcmp((*(ms_mailbox *const *)a)->name,
                (*(ms_mailbox *const *)b)->name);
}

/* RENAME INBOX (RFC 3501 6.3.5): its messages move to a new mailbox; INBOX
 * stays, empty, with its UIDVALIDITY, UIDNEXT and children. */
static int rename_inbox(mailproto_memstore *s, ms_user *u, const char *to) {
  ms_mailbox *inbox = mailproto_memstore_find(u, "INBOX");
  ms_mailbox *parents[MAX_LEVELS];
  size_t np;
  uint32_t v = 0;
  int rc = plan_parents(s, u, to, 1, parents, &np);
  if (rc != 0)
    return rc;
  ms_mailbox *dst = clone_shell(s, inbox, to);
  if (!dst)
    rc = MAILPROTO_ERR_NOMEM;
  else if ((rc = mailproto_memstore_reserve_empty(s, inbox)) == 0)
    rc = mailproto_memstore_next_uidvalidity(s, &v);
  if (rc != 0) {
    mailproto_memstore_mailbox_free(s, dst);
    for (size_t i = 0; i < np; i++)
      mailproto_memstore_mailbox_free(s, parents[i]);
    return rc;
  }
  mailproto_memstore_empty(s, inbox, dst);
  dst->uidvalidity = v;
  for (size_t i = 0; i < np; i++)
    insert_box(u, parents[i]);
  insert_box(u, dst);
  return 0;
}

int mailproto_memstore_hook_rename(void *ctx, mailproto_op *op, void *account,
                                   const char *from, const char *to) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  char cf[MAILPROTO_MAILBOX_NAME_MAX + 1], ct[MAILPROTO_MAILBOX_NAME_MAX + 1];
  (void)op;
  if (!s || !u || !from || !to)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(from, cf) != 0 ||
      mailproto_store_canon_name(to, ct) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  ms_mailbox *src = mailproto_memstore_find(u, cf);
  if (!src)
    return MAILPROTO_ERR_NOT_FOUND;
  if (mailproto_memstore_find(u, ct))
    return MAILPROTO_ERR_EXISTS; /* also INBOX and from == to */
  if (mailproto_mailbox_is_inbox(cf))
    return rename_inbox(s, u, ct);
  size_t fl = strlen(cf);
  /* A mailbox cannot become its own descendant. */
  if (strncmp(ct, cf, fl) == 0 && ct[fl] == MAILPROTO_MAILBOX_SEPARATOR)
    return MAILPROTO_ERR_BAD_NAME;
  size_t first, last;
  children(u, cf, &first, &last);
  size_t n = last - first + 1, tl = strlen(ct);
  /* Every moved name must stay a valid name under the new prefix. */
  for (size_t i = first; i < last; i++)
    if (strlen(u->boxes[i]->name) - fl + tl > MAILPROTO_MAILBOX_NAME_MAX)
      return MAILPROTO_ERR_BAD_NAME;

  /* Plan: per moved mailbox its new name, and a new object if handles
   * are open on it (they stay with the old one); then parents. */
  ms_mailbox **set = NULL, **shells = NULL, *parents[MAX_LEVELS];
  size_t *at = NULL;
  char **names = NULL;
  size_t np = 0, selectable = 0;
  int rc = MAILPROTO_ERR_NOMEM;
  set = mailproto_mem_calloc(&s->alloc, n, sizeof *set);
  shells = mailproto_mem_calloc(&s->alloc, n, sizeof *shells);
  names = mailproto_mem_calloc(&s->alloc, n, sizeof *names);
  at = mailproto_mem_calloc(&s->alloc, n, sizeof *at);
  if (!set || !shells || !names || !at)
    goto fail;
  /* Positions are taken now: the array is unsorted while names change. */
  set[0] = src;
  at[0] = index_of(u, src);
  for (size_t i = first; i < last; i++) {
    set[i - first + 1] = u->boxes[i];
    at[i - first + 1] = i;
  }
  for (size_t i = 0; i < n; i++) {
    const char *old = set[i]->name;
    size_t rest = strlen(old) - fl;
    names[i] = mailproto_mem_malloc(&s->alloc, tl + rest + 1);
    if (!names[i])
      goto fail;
    memcpy(names[i], ct, tl);
    memcpy(names[i] + tl, old + fl, rest + 1);
    selectable += set[i]->selectable != 0;
    if (set[i]->handles) {
      shells[i] = clone_shell(s, set[i], names[i]);
      if (!shells[i] || mailproto_memstore_reserve_empty(s, set[i]) != 0)
        goto fail;
    }
  }
  if (s->next_uidvalidity == 0 ||
      (uint64_t)s->next_uidvalidity + selectable - 1 > 0xffffffffu) {
    rc = MAILPROTO_ERR_LIMIT;
    goto fail;
  }
  if ((rc = plan_parents(s, u, ct, 0, parents, &np)) != 0)
    goto fail;

  for (size_t i = 0; i < n; i++) {
    ms_mailbox *mb = set[i];
    if (shells[i]) {
      ms_mailbox *dst = shells[i];
      mailproto_memstore_empty(s, mb, dst);
      mb->detached = 1;
      u->boxes[at[i]] = dst;
      mailproto_mem_free(&s->alloc, names[i]);
      mb = dst;
    } else {
      mailproto_mem_free(&s->alloc, mb->name);
      mb->name = names[i];
    }
    if (mb->selectable)
      mailproto_memstore_next_uidvalidity(s, &mb->uidvalidity);
  }
  for (size_t i = 0; i < np; i++)
    u->boxes[u->box_count++] = parents[i];
  qsort(u->boxes, u->box_count, sizeof *u->boxes, cmp_box);
  rc = 0;
  goto done;
fail:
  for (size_t i = 0; names && shells && i < n; i++) {
    mailproto_mem_free(&s->alloc, names[i]);
    mailproto_memstore_mailbox_free(s, shells[i]);
  }
done:
  mailproto_mem_free(&s->alloc, at);
  mailproto_mem_free(&s->alloc, set);
  mailproto_mem_free(&s->alloc, shells);
  mailproto_mem_free(&s->alloc, names);
  return rc;
}

int mailproto_memstore_hook_subscribe(void *ctx, mailproto_op *op,
                                      void *account, const char *name,
                                      int subscribed) {
  mailproto_memstore *s = ctx;
  ms_user *u = account;
  char canon[MAILPROTO_MAILBOX_NAME_MAX + 1];
  size_t pos;
  (void)op;
  if (!s || !u || !name)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  if (mailproto_store_canon_name(name, canon) != 0)
    return MAILPROTO_ERR_BAD_NAME;
  int found = is_subscribed(u, canon, &pos);
  if (!subscribed) {
    if (!found)
      return MAILPROTO_ERR_NOT_FOUND;
    mailproto_mem_free(&s->alloc, u->subs[pos]);
    memmove(u->subs + pos, u->subs + pos + 1,
            (u->sub_count - pos - 1) * sizeof *u->subs);
    u->sub_count--;
    return 0;
  }
  if (found)
    return 0;
  if (mailproto_store_grow(&s->alloc, (void **)&u->subs, &u->sub_cap,
                           u->sub_count + 1, sizeof *u->subs) != 0)
    return MAILPROTO_ERR_NOMEM;
  char *copy = mailproto_mem_strdup(&s->alloc, canon);
  if (!copy)
    return MAILPROTO_ERR_NOMEM;
  memmove(u->subs + pos + 1, u->subs + pos,
          (u->sub_count - pos) * sizeof *u->subs);
  u->subs[pos] = copy;
  u->sub_count++;
  return 0;
}

int mailproto_memstore_hook_status(void *ctx, mailproto_op *op, void *account,
                                   const char *name,
                                   mailproto_mailbox_status *status) {
  ms_user *u = account;
  int rc;
  (void)op;
  if (!ctx || !u || !name || !status)
    return MAILPROTO_ERR_INVALID_ARGUMENT;
  ms_mailbox *mb = mailproto_memstore_find_selectable(u, name, &rc);
  if (!mb)
    return rc;
  mailproto_memstore_fill_status(mb, NULL, status);
  return 0;
}
