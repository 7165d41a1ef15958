/*
 * A small level-triggered event loop over epoll (Linux) or poll (anywhere).
 * One handler per file descriptor; the interest set can be changed at any
 * time, also from inside a handler, and a descriptor removed inside a
 * handler never receives a stale event afterwards, even if the number is
 * reused at once by accept().
 */
#ifndef MAILPROTO_SERVER_LOOP_H
#define MAILPROTO_SERVER_LOOP_H

#define LOOP_READ 0x1u
#define LOOP_WRITE 0x2u
/* Error or hang-up on the descriptor; reported only while some interest is
 * set, so a descriptor parked with no interest cannot spin the loop. */
#define LOOP_HUP 0x4u

typedef struct loop loop;
typedef void (*loop_handler)(void *arg, unsigned events);

typedef enum loop_backend {
  LOOP_BACKEND_DEFAULT = 0, /* epoll where built, else poll */
  LOOP_BACKEND_EPOLL,
  LOOP_BACKEND_POLL
} loop_backend;

/* Returns 0 and sets *out, or -1 with errno set (ENOSYS: epoll asked for
 * but not built). */
int loop_new(loop_backend backend, loop **out);
void loop_free(loop *l);
/* "epoll" or "poll". */
const char *loop_backend_name(const loop *l);

/* Watches `fd` (not yet watched) for `events` (LOOP_READ | LOOP_WRITE, or 0
 * to register it parked). Returns 0 or -1 with errno set. */
int loop_add(loop *l, int fd, unsigned events, loop_handler fn, void *arg);
/* Changes the interest of a watched fd. Returns 0 or -1 with errno set. */
int loop_set(loop *l, int fd, unsigned events);
/* Stops watching `fd` (call before closing it). */
void loop_del(loop *l, int fd);

/* Waits up to `timeout_ms` (-1: no limit) and calls the handlers of ready
 * descriptors. Returns the number of handlers called, 0 after a timeout or
 * an interrupting signal, or -1 with errno set. */
int loop_wait(loop *l, int timeout_ms);

#endif
