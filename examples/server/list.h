/* An intrusive circular doubly-linked list: a node unlinks itself in O(1)
 * without knowing which list holds it. */
#ifndef MAILPROTO_SERVER_LIST_H
#define MAILPROTO_SERVER_LIST_H

#include <stddef.h>

typedef struct list_node {
  struct list_node *prev;
  struct list_node *next;
} list_node;

#define LIST_ENTRY(node, type, member)                                         \
  ((type *)(void *)((char *)(node)-offsetof(type, member)))

static inline void list_init(list_node *n) {
  n->prev = n->next = n;
}
static inline int list_empty(const list_node *head) {
  return head->next == head;
}
/* A node is linked while it is in some list (list_init'ed nodes are not). */
static inline int list_linked(const list_node *n) {
  return n->next != n;
}

static inline void list_append(list_node *head, list_node *n) {
  n->prev = head->prev;
  n->next = head;
  head->prev->next = n;
  head->prev = n;
}

static inline void list_unlink(list_node *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  list_init(n);
}

/* Moves every node of `from` to the (empty) list `to`. */
static inline void list_take(list_node *to, list_node *from) {
  list_init(to);
  if (list_empty(from))
    return;
  to->next = from->next;
  to->prev = from->prev;
  to->next->prev = to;
  to->prev->next = to;
  list_init(from);
}

#endif
