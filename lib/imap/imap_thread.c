/*
 * THREAD (RFC 5256 3): ORDEREDSUBJECT, and REFERENCES (the algorithm of
 * RFC 5256 3 "REFERENCES", after Jamie Zawinski's): containers linked by
 * Message-ID / References / In-Reply-To with duplicate ids made unique and
 * links that would close a loop refused, dummies pruned, roots gathered
 * by base subject, siblings ordered by sent date (ties by sequence
 * number). Every walk is iterative, so a reply chain of any length costs
 * no stack.
 */
#include <string.h>

#include "core/alloc.h"
#include "core/sort.h"
#include "imap/imap_search.h"

#define NONE UINT32_MAX

/* ------------------------------------------------------------------ */
/* Output                                                              */
/* ------------------------------------------------------------------ */

static int put_num(mailproto_buf *b, uint32_t n) {
  return mailproto_imap_search_put_num(b, n);
}

static int put(mailproto_buf *b, const char *s) {
  return mailproto_buf_append_str(b, s);
}

static uint32_t number(const imap_sort_set *set, uint32_t rec, int uid) {
  return uid ? set->r[rec].uid : set->r[rec].index + 1;
}

/* ------------------------------------------------------------------ */
/* ORDEREDSUBJECT                                                      */
/* ------------------------------------------------------------------ */

/* Records a and b by sent date, ties by sequence number. */
static int cmp_sent(const imap_sort_set *set, uint32_t a, uint32_t b) {
  const imap_sort_rec *x = &set->r[a], *y = &set->r[b];
  if (x->sent != y->sent)
    return x->sent < y->sent ? -1 : 1;
  return (x->index > y->index) - (x->index < y->index);
}

/* mailproto_heap_sort() over record numbers. */
static int cmp_sent_at(const void *a, const void *b, const void *set) {
  return cmp_sent(set, *(const uint32_t *)a, *(const uint32_t *)b);
}

static int same_subject(const imap_sort_set *set, const imap_sort_rec *a,
                        const imap_sort_rec *b) {
  return a->len[IMAP_SORT_S_SUBJECT] == b->len[IMAP_SORT_S_SUBJECT] &&
         memcmp(imap_sort_at(set, a->str[IMAP_SORT_S_SUBJECT]),
                imap_sort_at(set, b->str[IMAP_SORT_S_SUBJECT]),
                a->len[IMAP_SORT_S_SUBJECT]) == 0;
}

static int ordered_subject(imap_sort_set *set, int uid,
                           const mailproto_allocator *alloc,
                           mailproto_buf *out) {
  /* RFC 5256 3: sorted by base subject, then sent date; each run of one
   * subject is a thread whose first message is the parent of the rest;
   * threads in the order of their first messages' sent dates. */
  static const mailproto_imap_sort_criterion by[] = {
      {MAILPROTO_IMAP_SORT_SUBJECT, 0}, {MAILPROTO_IMAP_SORT_DATE, 0}};
  mailproto_imap_sort_run(set, by, 2);
  size_t n = set->n;
  uint32_t *roots = mailproto_mem_calloc(alloc, n ? n : 1, sizeof *roots);
  uint32_t *end = mailproto_mem_calloc(alloc, n ? n : 1, sizeof *end);
  if (!roots || !end) {
    mailproto_mem_free(alloc, roots);
    mailproto_mem_free(alloc, end);
    return MAILPROTO_ERR_NOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (i == 0 || !same_subject(set, &set->r[i - 1], &set->r[i])) {
      if (k)
        end[roots[k - 1]] = (uint32_t)i;
      roots[k++] = (uint32_t)i;
    }
  if (k)
    end[roots[k - 1]] = (uint32_t)n;
  mailproto_heap_sort(roots, k, sizeof *roots, cmp_sent_at, set);
  int rc = 0;
  for (size_t t = 0; rc == 0 && t < k; t++) {
    uint32_t first = roots[t], last = end[first];
    rc = put(out, "(");
    if (rc == 0)
      rc = put_num(out, number(set, first, uid));
    if (last - first == 2) {
      if ((rc = put(out, " ")) == 0)
        rc = put_num(out, number(set, first + 1, uid));
    } else if (last - first > 2) {
      if (rc == 0)
        rc = put(out, " ");
      for (uint32_t c = first + 1; rc == 0 && c < last; c++)
        if ((rc = put(out, "(")) == 0 &&
            (rc = put_num(out, number(set, c, uid))) == 0)
          rc = put(out, ")");
    }
    if (rc == 0)
      rc = put(out, ")");
  }
  mailproto_mem_free(alloc, roots);
  mailproto_mem_free(alloc, end);
  return rc;
}

/* ------------------------------------------------------------------ */
/* REFERENCES                                                          */
/* ------------------------------------------------------------------ */

typedef struct node {
  uint32_t parent, child, next;
  uint32_t rec;    /* the message, or NONE for a dummy */
  uint32_t id_off; /* its message-id in the arena (NONE: none) */
  uint32_t id_len;
} node;

typedef struct threader {
  imap_sort_set *set;
  const mailproto_allocator *alloc;
  node *n;
  uint32_t count, cap;
  uint32_t *table; /* id hash: node indexes, NONE empty */
  size_t mask;
  uint32_t root; /* a virtual node whose children are the root set */
  uint32_t *tmp; /* scratch for sorting and walks (cap entries) */
  uint32_t *stack;
} threader;

static uint32_t new_node(threader *t, uint32_t rec) {
  node *x = &t->n[t->count];
  x->parent = x->child = x->next = NONE;
  x->rec = rec;
  x->id_off = NONE;
  x->id_len = 0;
  return t->count++;
}

static size_t hash(const uint8_t *d, size_t n) {
  uint64_t h = UINT64_C(1469598103934665603);
  for (size_t i = 0; i < n; i++)
    h = (h ^ d[i]) * UINT64_C(1099511628211);
  return (size_t)(h ^ (h >> 29));
}

/* The container of an id, created (as a dummy) if new. */
static uint32_t lookup(threader *t, uint32_t off, uint32_t len) {
  const uint8_t *d = imap_sort_at(t->set, off);
  size_t i = hash(d, len) & t->mask;
  for (; t->table[i] != NONE; i = (i + 1) & t->mask) {
    node *x = &t->n[t->table[i]];
    if (x->id_len == len &&
        memcmp(imap_sort_at(t->set, x->id_off), d, len) == 0)
      return t->table[i];
  }
  uint32_t k = new_node(t, NONE);
  t->n[k].id_off = off;
  t->n[k].id_len = len;
  t->table[i] = k;
  return k;
}

/* Whether `a` is `b` or one of its ancestors. */
static int is_ancestor(const threader *t, uint32_t a, uint32_t b) {
  /* A node without children is nobody's ancestor but its own: no walk
   * up from b (which made a long reply chain quadratic). */
  if (t->n[a].child == NONE)
    return a == b;
  for (; b != NONE; b = t->n[b].parent)
    if (b == a)
      return 1;
  return 0;
}

static void unlink_node(threader *t, uint32_t c) {
  uint32_t p = t->n[c].parent;
  if (p == NONE)
    return;
  uint32_t *link = &t->n[p].child;
  while (*link != c)
    link = &t->n[*link].next;
  *link = t->n[c].next;
  t->n[c].parent = t->n[c].next = NONE;
}

static void add_child(threader *t, uint32_t p, uint32_t c) {
  t->n[c].parent = p;
  t->n[c].next = t->n[p].child;
  t->n[p].child = c;
}

/* RFC 5256 3 (1): link a message's references and the message. */
static void link_message(threader *t, uint32_t rec) {
  const imap_sort_rec *r = &t->set->r[rec];
  uint32_t off = r->ids;
  const uint8_t *a = imap_sort_at(t->set, 0);
  uint32_t me;
  size_t len = strlen((const char *)a + off);
  /* (A) the message's own container; a missing or duplicate id gets a
   * container of its own. */
  if (len == 0) {
    me = new_node(t, rec);
  } else {
    me = lookup(t, off, (uint32_t)len);
    if (t->n[me].rec != NONE)
      me = new_node(t, rec);
    else
      t->n[me].rec = rec;
  }
  off += (uint32_t)len + 1;
  /* (B) the references in order, each the parent of the next, unless
   * already linked or a loop would result. */
  uint32_t prev = NONE;
  for (unsigned i = 1; i < r->ids_count; i++) {
    len = strlen((const char *)a + off);
    uint32_t c = lookup(t, off, (uint32_t)len);
    off += (uint32_t)len + 1;
    if (prev != NONE && t->n[c].parent == NONE && !is_ancestor(t, c, prev))
      add_child(t, prev, c);
    prev = c;
  }
  /* (C) the last reference is the parent, replacing any guess. */
  unlink_node(t, me);
  if (prev != NONE && !is_ancestor(t, me, prev))
    add_child(t, prev, me);
}

/* Pre-order of the tree under the root into t->tmp; returns the count. */
static uint32_t preorder(threader *t) {
  uint32_t k = 0, sp = 0;
  t->stack[sp++] = t->root;
  while (sp) {
    uint32_t x = t->stack[--sp];
    t->tmp[k++] = x;
    for (uint32_t c = t->n[x].child; c != NONE; c = t->n[c].next)
      t->stack[sp++] = c;
  }
  return k;
}

/* RFC 5256 3 (3): dummies without children go; dummies with children
 * give them to their parent, except at the root with more than one. */
static void prune(threader *t) {
  uint32_t k = preorder(t);
  while (k--) {
    uint32_t x = t->tmp[k];
    uint32_t c = t->n[x].child, head = NONE, *tail = &head;
    while (c != NONE) {
      uint32_t next = t->n[c].next;
      node *cn = &t->n[c];
      int promote = cn->rec == NONE && cn->child != NONE &&
                    (x != t->root || t->n[cn->child].next == NONE);
      if (cn->rec == NONE && cn->child == NONE) {
        cn->parent = NONE; /* deleted */
      } else if (promote) {
        for (uint32_t g = cn->child; g != NONE; g = t->n[g].next) {
          t->n[g].parent = x;
          *tail = g;
          tail = &t->n[g].next;
        }
        cn->child = NONE;
        cn->parent = NONE;
      } else {
        *tail = c;
        tail = &cn->next;
      }
      c = next;
    }
    *tail = NONE;
    t->n[x].child = head;
  }
}

/* A container's message for dates and subjects: its own, else its first
 * child's (a dummy). */
static uint32_t message_of(const threader *t, uint32_t x) {
  while (x != NONE && t->n[x].rec == NONE)
    x = t->n[x].child;
  return x == NONE ? NONE : t->n[x].rec;
}

/* mailproto_heap_sort() over containers. */
static int cmp_node(const void *pa, const void *pb, const void *ctx) {
  const threader *t = ctx;
  uint32_t ra = message_of(t, *(const uint32_t *)pa);
  uint32_t rb = message_of(t, *(const uint32_t *)pb);
  if (ra == NONE || rb == NONE)
    return (ra == NONE) - (rb == NONE);
  return cmp_sent(t->set, ra, rb);
}

/* Sorts x's children by sent date. */
static void sort_children(threader *t, uint32_t x, uint32_t *buf) {
  uint32_t k = 0;
  for (uint32_t c = t->n[x].child; c != NONE; c = t->n[c].next)
    buf[k++] = c;
  if (k < 2)
    return;
  mailproto_heap_sort(buf, k, sizeof *buf, cmp_node, t);
  t->n[x].child = buf[0];
  for (uint32_t i = 0; i + 1 < k; i++)
    t->n[buf[i]].next = buf[i + 1];
  t->n[buf[k - 1]].next = NONE;
}

/* Every sibling list, deepest first (a dummy's first child is then its
 * earliest). */
static void sort_all(threader *t) {
  uint32_t k = preorder(t);
  uint32_t *buf = t->stack; /* free after preorder */
  while (k--)
    sort_children(t, t->tmp[k], buf);
}

static int subject_of(const threader *t, uint32_t x, const uint8_t **s,
                      size_t *len, int *reply) {
  uint32_t r = message_of(t, x);
  if (r == NONE)
    return 0;
  const imap_sort_rec *m = &t->set->r[r];
  *s = imap_sort_at(t->set, m->str[IMAP_SORT_S_SUBJECT]);
  *len = m->len[IMAP_SORT_S_SUBJECT];
  *reply = m->is_reply;
  return *len > 0;
}

/* The subject table of gather(): open addressing, NONE for empty. */
typedef struct subject_table {
  uint32_t *slot;
  size_t mask;
} subject_table;

/* The slot of base subject s[0..len): the container holding it, or the
 * empty slot where it would go. A container's subject is read afresh,
 * which is sound because gather() never changes it (see there). */
static size_t subject_slot(const threader *t, const subject_table *tab,
                           const uint8_t *s, size_t len) {
  size_t h = hash(s, len) & tab->mask;
  for (; tab->slot[h] != NONE; h = (h + 1) & tab->mask) {
    const uint8_t *s2 = NULL;
    size_t len2 = 0;
    int reply2;
    if (subject_of(t, tab->slot[h], &s2, &len2, &reply2) && len2 == len &&
        memcmp(s, s2, len) == 0)
      break;
  }
  return h;
}

/* Moves x's children to the end of y's list, so y's first child, whose
 * subject is y's, stays first. */
static void append_children(threader *t, uint32_t y, uint32_t x) {
  uint32_t *tail = &t->n[y].child;
  while (*tail != NONE)
    tail = &t->n[*tail].next;
  *tail = t->n[x].child;
  for (uint32_t c = t->n[x].child; c != NONE; c = t->n[c].next)
    t->n[c].parent = y;
  t->n[x].child = NONE;
}

/* RFC 5256 3 (4): roots with the same base subject are gathered. */
static void gather(threader *t) {
  uint32_t k = 0;
  for (uint32_t c = t->n[t->root].child; c != NONE; c = t->n[c].next)
    t->tmp[k++] = c;
  size_t size = 1;
  while (size < 2 * (size_t)k + 2)
    size <<= 1;
  subject_table tab = {t->stack, size - 1};
  for (size_t i = 0; i < size; i++)
    tab.slot[i] = NONE;
  const uint8_t *s;
  size_t len;
  int reply;
  /* (4.B) Each subject's container: a dummy if there is one, else a
   * message whose subject is not a reply if there is one. */
  for (uint32_t i = 0; i < k; i++) {
    uint32_t x = t->tmp[i];
    if (!subject_of(t, x, &s, &len, &reply))
      continue;
    uint32_t *y = &tab.slot[subject_slot(t, &tab, s, len)];
    if (*y == NONE)
      *y = x;
    else if (t->n[*y].rec != NONE &&
             (t->n[x].rec == NONE ||
              (t->set->r[t->n[*y].rec].is_reply && !reply)))
      *y = x;
  }
  /* (4.C) Every other root with that subject joins the container. By
   * the choice above, a dummy root finds a dummy there, and a message
   * that is not a reply finds one that is not either (the RFC's cases
   * "the table's is a message, this one a dummy" and "the table's is a
   * reply, this one not" cannot arise). No container's subject changes
   * on the way: children join a dummy behind its first child or, being
   * of its subject, in front; a new dummy's first child has its subject. */
  for (uint32_t i = 0; i < k; i++) {
    uint32_t x = t->tmp[i];
    if (t->n[x].parent != t->root || !subject_of(t, x, &s, &len, &reply))
      continue;
    uint32_t *slot = &tab.slot[subject_slot(t, &tab, s, len)];
    uint32_t y = *slot;
    if (y == NONE || y == x)
      continue;
    int x_dummy = t->n[x].rec == NONE, y_dummy = t->n[y].rec == NONE;
    if (x_dummy && y_dummy) {
      /* Both dummies: x's children join y's. */
      unlink_node(t, x);
      append_children(t, y, x);
    } else if (y_dummy || (reply && !t->set->r[t->n[y].rec].is_reply)) {
      /* Under the dummy; or a reply under the message it answers. */
      unlink_node(t, x);
      add_child(t, y, x);
    } else {
      /* Both replies or neither: siblings under a new dummy. */
      uint32_t d = new_node(t, NONE);
      unlink_node(t, y);
      unlink_node(t, x);
      add_child(t, d, y);
      add_child(t, d, x);
      add_child(t, t->root, d);
      *slot = d;
    }
  }
}

/* Writes one thread (RFC 5256 4: a chain of single children as
 * "a b c", two or more children each in parentheses), iteratively. */
static int write_thread(threader *t, uint32_t x, int uid, mailproto_buf *out) {
  uint32_t sp = 0;
  int first = 1;
  int rc = put(out, "(");
  while (rc == 0) {
    node *n = &t->n[x];
    if (n->rec != NONE) {
      if (!first)
        rc = put(out, " ");
      if (rc == 0)
        rc = put_num(out, number(t->set, n->rec, uid));
      first = 0;
    }
    uint32_t c = n->child;
    if (rc == 0 && c != NONE && t->n[c].next == NONE && n->rec != NONE) {
      x = c;
      continue;
    }
    if (rc == 0 && c != NONE) {
      if (!first)
        rc = put(out, " ");
      if (rc == 0)
        rc = put(out, "(");
      t->stack[sp++] = t->n[c].next;
      x = c;
      first = 1;
      continue;
    }
    /* A leaf: close lists until a sibling is left to write. */
    uint32_t next = NONE;
    while (rc == 0 && sp > 0) {
      rc = put(out, ")");
      next = t->stack[--sp];
      if (next != NONE) {
        if (rc == 0)
          rc = put(out, "(");
        t->stack[sp++] = t->n[next].next;
        break;
      }
    }
    if (next == NONE)
      break;
    x = next;
    first = 1;
  }
  return rc == 0 ? put(out, ")") : rc;
}

static int references(imap_sort_set *set, int uid,
                      const mailproto_allocator *alloc, mailproto_buf *out) {
  threader t;
  memset(&t, 0, sizeof t);
  t.set = set;
  t.alloc = alloc;
  size_t cap = 2;
  for (size_t i = 0; i < set->n; i++)
    cap += 2u + set->r[i].ids_count; /* ids, a duplicate, a dummy */
  if (cap > UINT32_MAX / 2)
    return MAILPROTO_ERR_NOMEM;
  size_t tsize = 1;
  while (tsize < 2 * cap)
    tsize <<= 1;
  t.cap = (uint32_t)cap;
  t.n = mailproto_mem_calloc(alloc, cap, sizeof *t.n);
  t.tmp = mailproto_mem_calloc(alloc, cap, sizeof *t.tmp);
  /* The stack also holds gather()'s subject table (< 4 * cap). */
  t.stack = mailproto_mem_calloc(alloc, 4 * cap + 8, sizeof *t.stack);
  t.table = mailproto_mem_calloc(alloc, tsize, sizeof *t.table);
  int rc = 0;
  if (!t.n || !t.tmp || !t.stack || !t.table) {
    rc = MAILPROTO_ERR_NOMEM;
    goto out;
  }
  t.mask = tsize - 1;
  for (size_t i = 0; i < tsize; i++)
    t.table[i] = NONE;
  /* (1) link every message, in sequence order. */
  for (uint32_t i = 0; i < set->n; i++)
    link_message(&t, i);
  /* (2) the root set: containers without a parent. */
  t.root = new_node(&t, NONE);
  for (uint32_t i = 0; i + 1 < t.count; i++)
    if (t.n[i].parent == NONE)
      add_child(&t, t.root, i);
  /* (3) prune, (4) sort, (5) gather by subject, (6) sort again. */
  prune(&t);
  sort_all(&t);
  gather(&t);
  sort_all(&t);
  for (uint32_t c = t.n[t.root].child; rc == 0 && c != NONE; c = t.n[c].next)
    rc = write_thread(&t, c, uid, out);
out:
  mailproto_mem_free(alloc, t.n);
  mailproto_mem_free(alloc, t.tmp);
  mailproto_mem_free(alloc, t.stack);
  mailproto_mem_free(alloc, t.table);
  return rc;
}

int mailproto_imap_thread_run(imap_sort_set *set, mailproto_imap_thread_alg alg,
                              int uid, const mailproto_allocator *alloc,
                              mailproto_buf *out) {
  if (alg == MAILPROTO_IMAP_THREAD_ORDEREDSUBJECT)
    return ordered_subject(set, uid, alloc, out);
  return references(set, uid, alloc, out);
}
