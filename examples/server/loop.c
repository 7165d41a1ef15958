/*
 * The event loop. Both backends first collect a batch of (fd, generation,
 * events) and only then call handlers: a handler may close other
 * descriptors or accept new ones, and the generation check drops events
 * for a descriptor that was removed (and perhaps reused) in the meantime.
 */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MAILPROTO_SERVER_EPOLL
#include <sys/epoll.h>
#endif

#include "mem.h"

enum { BATCH_MAX = 256 };

typedef struct slot {
  loop_handler fn;
  void *arg;
  unsigned events; /* current interest */
  unsigned gen;
  int active;
  int in_kernel; /* epoll: present in the epoll set */
  size_t pidx;   /* poll: index in pfds while interest is set */
} slot;

typedef struct ready {
  int fd;
  unsigned gen;
  unsigned events;
} ready;

struct loop {
  loop_backend backend;
  int epfd;
  slot *slots;
  size_t nslots;
  struct pollfd *pfds;
  size_t npfds;
  size_t cap_pfds;
  ready *batch;
  size_t cap_batch;
  unsigned next_gen;
};

static const size_t NO_INDEX = SIZE_MAX;

int loop_new(loop_backend backend, loop **out) {
#ifdef MAILPROTO_SERVER_EPOLL
  if (backend == LOOP_BACKEND_DEFAULT)
    backend = LOOP_BACKEND_EPOLL;
#else
  if (backend == LOOP_BACKEND_EPOLL) {
    errno = ENOSYS;
    return -1;
  }
  backend = LOOP_BACKEND_POLL;
#endif
  loop *l = mem_calloc(1, sizeof *l);
  if (!l) {
    errno = ENOMEM; /* a replaced allocator need not set it */
    return -1;
  }
  l->backend = backend;
  l->epfd = -1;
#ifdef MAILPROTO_SERVER_EPOLL
  if (backend == LOOP_BACKEND_EPOLL) {
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (l->epfd < 0) {
      mem_free(l);
      return -1;
    }
  }
#endif
  *out = l;
  return 0;
}

void loop_free(loop *l) {
  if (!l)
    return;
  if (l->epfd >= 0)
    close(l->epfd);
  mem_free(l->slots);
  mem_free(l->pfds);
  mem_free(l->batch);
  mem_free(l);
}

const char *loop_backend_name(const loop *l) {
  return l->backend == LOOP_BACKEND_EPOLL ? "epoll" : "poll";
}

static slot *get_slot(loop *l, int fd) {
  if (fd < 0 || (size_t)fd >= l->nslots || !l->slots[fd].active)
    return NULL;
  return &l->slots[fd];
}

static int grow_slots(loop *l, int fd) {
  size_t need = (size_t)fd + 1;
  if (need <= l->nslots)
    return 0;
  size_t n = l->nslots ? l->nslots : 64;
  while (n < need)
    n *= 2;
  slot *s = mem_realloc_array(l->slots, n, sizeof *s);
  if (!s) {
    errno = ENOMEM;
    return -1;
  }
  memset(s + l->nslots, 0, (n - l->nslots) * sizeof *s);
  l->slots = s;
  l->nslots = n;
  return 0;
}

#ifdef MAILPROTO_SERVER_EPOLL
static int epoll_apply(loop *l, int fd, slot *s, unsigned events) {
  if (events == 0) {
    /* epoll reports EPOLLHUP even with an empty mask: leave the set. */
    if (s->in_kernel && epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) != 0)
      return -1;
    s->in_kernel = 0;
    return 0;
  }
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = ((events & LOOP_READ) ? (uint32_t)EPOLLIN : 0u) |
              ((events & LOOP_WRITE) ? (uint32_t)EPOLLOUT : 0u);
  ev.data.u64 = ((uint64_t)s->gen << 32) | (uint32_t)fd;
  int op = s->in_kernel ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  if (epoll_ctl(l->epfd, op, fd, &ev) != 0)
    return -1;
  s->in_kernel = 1;
  return 0;
}
#endif

static short poll_mask(unsigned events) {
  return (short)(((events & LOOP_READ) ? POLLIN : 0) |
                 ((events & LOOP_WRITE) ? POLLOUT : 0));
}

static int poll_apply(loop *l, int fd, slot *s, unsigned events) {
  if (events == 0) {
    if (s->pidx != NO_INDEX) {
      /* Keep the array dense: move the last entry into the hole. */
      size_t last = l->npfds - 1;
      if (s->pidx != last) {
        l->pfds[s->pidx] = l->pfds[last];
        l->slots[l->pfds[s->pidx].fd].pidx = s->pidx;
      }
      l->npfds--;
      s->pidx = NO_INDEX;
    }
    return 0;
  }
  if (s->pidx == NO_INDEX) {
    if (l->npfds == l->cap_pfds) {
      size_t n = l->cap_pfds ? l->cap_pfds * 2 : 64;
      struct pollfd *p = mem_realloc_array(l->pfds, n, sizeof *p);
      if (!p) {
        errno = ENOMEM;
        return -1;
      }
      l->pfds = p;
      l->cap_pfds = n;
    }
    s->pidx = l->npfds++;
    l->pfds[s->pidx].fd = fd;
  }
  l->pfds[s->pidx].events = poll_mask(events);
  l->pfds[s->pidx].revents = 0;
  return 0;
}

static int apply(loop *l, int fd, slot *s, unsigned events) {
#ifdef MAILPROTO_SERVER_EPOLL
  if (l->backend == LOOP_BACKEND_EPOLL)
    return epoll_apply(l, fd, s, events);
#endif
  return poll_apply(l, fd, s, events);
}

int loop_add(loop *l, int fd, unsigned events, loop_handler fn, void *arg) {
  if (fd < 0 || !fn) {
    errno = EINVAL;
    return -1;
  }
  if (grow_slots(l, fd) != 0)
    return -1;
  slot *s = &l->slots[fd];
  if (s->active) {
    errno = EEXIST;
    return -1;
  }
  memset(s, 0, sizeof *s);
  s->fn = fn;
  s->arg = arg;
  s->gen = ++l->next_gen;
  s->pidx = NO_INDEX;
  s->active = 1;
  events &= LOOP_READ | LOOP_WRITE;
  if (apply(l, fd, s, events) != 0) {
    s->active = 0;
    return -1;
  }
  s->events = events;
  return 0;
}

int loop_set(loop *l, int fd, unsigned events) {
  slot *s = get_slot(l, fd);
  if (!s) {
    errno = EBADF;
    return -1;
  }
  events &= LOOP_READ | LOOP_WRITE;
  if (events == s->events)
    return 0;
  if (apply(l, fd, s, events) != 0)
    return -1;
  s->events = events;
  return 0;
}

void loop_del(loop *l, int fd) {
  slot *s = get_slot(l, fd);
  if (!s)
    return;
  /* Leaving the epoll set cannot fail for a registered fd that is still
   * open; the slot is dropped either way. */
  (void)apply(l, fd, s, 0);
  s->active = 0;
  s->fn = NULL;
  s->arg = NULL;
  s->events = 0;
}

static int ensure_batch(loop *l, size_t n) {
  if (n <= l->cap_batch)
    return 0;
  ready *b = mem_realloc_array(l->batch, n, sizeof *b);
  if (!b) {
    errno = ENOMEM;
    return -1;
  }
  l->batch = b;
  l->cap_batch = n;
  return 0;
}

#ifdef MAILPROTO_SERVER_EPOLL
static int collect_epoll(loop *l, int timeout_ms, size_t *count) {
  struct epoll_event evs[BATCH_MAX];
  int n = epoll_wait(l->epfd, evs, BATCH_MAX, timeout_ms);
  if (n < 0)
    return -1;
  if (ensure_batch(l, (size_t)n) != 0)
    return -1;
  for (int i = 0; i < n; i++) {
    uint32_t e = evs[i].events;
    l->batch[i].fd = (int)(uint32_t)(evs[i].data.u64 & 0xffffffffu);
    l->batch[i].gen = (unsigned)(evs[i].data.u64 >> 32);
    l->batch[i].events = ((e & EPOLLIN) ? LOOP_READ : 0u) |
                         ((e & EPOLLOUT) ? LOOP_WRITE : 0u) |
                         ((e & (EPOLLERR | EPOLLHUP)) ? LOOP_HUP : 0u);
  }
  *count = (size_t)n;
  return 0;
}
#endif

static int collect_poll(loop *l, int timeout_ms, size_t *count) {
  int n = poll(l->pfds, (nfds_t)l->npfds, timeout_ms);
  if (n < 0)
    return -1;
  if (ensure_batch(l, (size_t)n) != 0)
    return -1;
  size_t k = 0;
  for (size_t i = 0; i < l->npfds && k < (size_t)n; i++) {
    short re = l->pfds[i].revents;
    if (!re)
      continue;
    int fd = l->pfds[i].fd;
    l->batch[k].fd = fd;
    l->batch[k].gen = l->slots[fd].gen;
    l->batch[k].events =
        ((re & POLLIN) ? LOOP_READ : 0u) | ((re & POLLOUT) ? LOOP_WRITE : 0u) |
        ((re & (POLLERR | POLLHUP | POLLNVAL)) ? LOOP_HUP : 0u);
    k++;
  }
  *count = k;
  return 0;
}

int loop_wait(loop *l, int timeout_ms) {
  size_t count = 0;
  int rc;
#ifdef MAILPROTO_SERVER_EPOLL
  if (l->backend == LOOP_BACKEND_EPOLL)
    rc = collect_epoll(l, timeout_ms, &count);
  else
#endif
    rc = collect_poll(l, timeout_ms, &count);
  if (rc != 0)
    return errno == EINTR ? 0 : -1;

  int called = 0;
  for (size_t i = 0; i < count; i++) {
    ready r = l->batch[i];
    slot *s = get_slot(l, r.fd);
    if (!s || s->gen != r.gen || s->events == 0)
      continue;
    /* An earlier handler in this batch may have narrowed the interest. */
    unsigned ev = r.events & (s->events | LOOP_HUP);
    if (!ev)
      continue;
    s->fn(s->arg, ev);
    called++;
  }
  return called;
}
