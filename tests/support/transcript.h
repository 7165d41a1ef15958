/*
 * The transcript runner: plays a readable client/server script against a
 * protocol session in many feed modes and checks that the session says
 * exactly what the script expects, whatever the input split, whatever the
 * transport's write speed, and with every store operation deferred.
 *
 * File format (text, one record per line; '#' comment lines and blank lines
 * are ignored; a CR before the line's LF is dropped):
 *
 *   @ key value     an option handed to the session adapter ("@ max_line 64")
 *   C: text         the client sends text + CRLF ("C:" alone: an empty line)
 *   C~ text         the client sends text with escapes, nothing appended:
 *                   \r \n \t \\ \xHH
 *   S: text         the server sends text + CRLF
 *   S~ text         the server sends escaped text, nothing appended
 *   C* A..B text    the client sends text + CRLF for i = A..B, each "{}" in
 *                   text replaced by i (S* likewise for the server)
 *   E: text         the session reports the callback event `text`
 *   ! close         the session closes the connection (last record only)
 *
 * Consecutive C records form a group the client sends at once (pipelining).
 * The client sends a group only after the server has sent everything the
 * S records before it expect, as a client waits for a reply; so a
 * transcript can hold continuations ("+ go") and commands that must not be
 * pipelined. Events are compared in order, independently of the output.
 *
 * The session is plugged in through a transcript_adapter, so SMTP, POP3 and
 * IMAP sessions run the same transcripts machinery as the test protocol.
 */
#ifndef MAILPROTO_TEST_TRANSCRIPT_H
#define MAILPROTO_TEST_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/memstore.h"

typedef struct transcript transcript;

typedef struct transcript_option {
  const char *key;
  const char *value; /* "" when the record has no value */
} transcript_option;

/*
 * What the runner gives an adapter to build a session with. The env stays
 * valid (at the same address) until the adapter's destroy returns, so an
 * adapter passes it as the session's user data and forwards the session's
 * send and event callbacks to transcript_env_send()/transcript_env_event().
 */
typedef struct transcript_env {
  const mailproto_allocator *alloc; /* the session's allocator */
  const mailproto_store *store;     /* faultstore over `memstore` */
  mailproto_memstore *memstore;     /* users alice/secret, bob/hunter2 */
  const transcript_option *options; /* the transcript's @ records */
  size_t option_count;
  void *runner; /* the runner's own state */
} transcript_env;

/* The session's send callback: returns how many bytes the simulated
 * transport took (0..len; it may take fewer, as a full socket does). */
ptrdiff_t transcript_env_send(transcript_env *env, const uint8_t *data,
                              size_t len);

/* The session's event callback: records `text` for the E: records. */
void transcript_env_event(transcript_env *env, const char *text);

/* Parses an option value as a decimal size. Returns 0, or -1 if it is not
 * a plain decimal number that fits. */
int transcript_option_size(const char *value, size_t *out);

/*
 * A protocol session as the runner drives it. Every function gets the
 * pointer create set. `pending` (may be NULL) says the session waits for a
 * deferred operation: neither reading nor writing is wanted then, but the
 * connection stays open. The session counts as closed when want_read,
 * want_write and pending are all 0.
 */
typedef struct transcript_adapter {
  const char *name;
  /* Builds a session from env (options: reject unknown keys with
   * MAILPROTO_ERR_INVALID_ARGUMENT). Returns 0 or a negative code. */
  int (*create)(transcript_env *env, void **session);
  int (*start)(void *session);
  ptrdiff_t (*feed)(void *session, const uint8_t *data, size_t len);
  int (*writable)(void *session);
  int (*want_read)(void *session);
  int (*want_write)(void *session);
  int (*pending)(void *session);
  void (*destroy)(void *session);
} transcript_adapter;

/* How one run feeds input and takes output. */
typedef struct transcript_mode {
  const char *name;
  size_t chunk;    /* bytes arriving per turn; 0: everything released */
  size_t split_at; /* not 0: input arrives as [0, split_at) then the rest */
  uint32_t seed;   /* not 0: 1..16 bytes per turn, drawn from this seed */
  int defer_all;   /* the faultstore defers every store operation */
  size_t send_max; /* bytes the transport takes per turn; 0: unlimited */
  unsigned long defer_nth; /* not 0: only this store operation deferred */
} transcript_mode;

/* ---- loading ---- */

/*
 * Parses transcript text; `name` labels reports. Returns 0 and sets *out,
 * or -1 with the reason (and line number) in `report`.
 */
int transcript_parse(const char *text, size_t len, const char *name,
                     transcript **out, char *report, size_t report_size);
/* Reads and parses a file; same returns. */
int transcript_load(const char *path, transcript **out, char *report,
                    size_t report_size);
void transcript_free(transcript *t);

/* What the parsed transcript expects, for tests of the parser. */
const uint8_t *transcript_client_bytes(const transcript *t, size_t *len);
const uint8_t *transcript_server_bytes(const transcript *t, size_t *len);
size_t transcript_event_count(const transcript *t);
const char *transcript_event(const transcript *t, size_t i);
int transcript_expects_close(const transcript *t);

/* ---- running ---- */

/*
 * One run in `mode`; `alloc` (NULL: libc) serves the session and the
 * stores. Returns 0 if output, events and the close all match, else -1
 * with a readable report: the mode, the transcript line of the first
 * difference, expected and actual text (escaped).
 */
int transcript_run_mode(const transcript *t, const transcript_adapter *a,
                        const transcript_mode *mode,
                        const mailproto_allocator *alloc, char *report,
                        size_t report_size);

/*
 * Every mode: whole, byte by byte, chunks of 2..7 bytes, random chunks
 * (three fixed seeds), every split point into two feeds, every store
 * operation deferred (whole and byte by byte), each store operation
 * deferred alone in turn (whole), and a transport taking at most 1 and 3
 * bytes per turn. Stops at the first failing mode. Returns 0
 * or -1 (report filled).
 */
int transcript_run_all(const transcript *t, const transcript_adapter *a,
                       char *report, size_t report_size);

/* transcript_load + transcript_run_all. */
int transcript_run_file(const char *path, const transcript_adapter *a,
                        char *report, size_t report_size);

/*
 * The allocation-failure loop: runs the transcript fed whole with
 * allocation N failing, for N = 1, 2, ... until a run does not reach N;
 * then the same with every store operation deferred. Every run must leak
 * nothing and either match the transcript or end with the session
 * reporting MAILPROTO_ERR_NOMEM and wanting to close. Returns 0 or -1
 * (report filled, naming the mode and N).
 */
int transcript_run_alloc_failures(const char *path, const transcript_adapter *a,
                                  char *report, size_t report_size);

/* ---- directories ---- */

typedef struct transcript_list {
  char **paths; /* sorted */
  size_t count;
} transcript_list;

/* Lists every *.txt in `dir`. Returns 0, or -1 if the directory cannot be
 * read (an empty directory is not an error). */
int transcript_list_dir(const char *dir, transcript_list *out);
void transcript_list_free(transcript_list *list);

#endif
