#define _POSIX_C_SOURCE 200809L /* opendir */
#include "support/transcript.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buffer.h"
#include "support/alloc_fail.h"
#include "support/faultstore.h"
#include "support/overread.h"

/* Bounds that keep a malformed transcript from eating the machine. */
#define TRANSCRIPT_MAX_FILE (16u * 1024 * 1024)
#define TRANSCRIPT_MAX_DATA (64u * 1024 * 1024)
#define TRANSCRIPT_MAX_REPEAT 1000000u
/* How much output past the expected end a run keeps, to show it. */
#define TRANSCRIPT_EXTRA_OUTPUT 256u
#define TRANSCRIPT_MAX_ALLOC_RUNS 1000000ul

typedef struct group {
  size_t client_start;  /* first byte of the group in the client stream */
  size_t release_after; /* server bytes the client waits for first */
} group;

typedef struct srecord {
  size_t offset; /* where its bytes start in the server stream */
  unsigned line; /* line in the file */
} srecord;

struct transcript {
  char *name;
  mailproto_buf client;
  mailproto_buf server;
  char **events;
  unsigned *event_lines;
  size_t event_count;
  transcript_option *options; /* views of the strings below */
  char **option_text;         /* key, value, key, value, ... (owned) */
  size_t option_count;
  group *groups;
  size_t group_count;
  srecord *srecords;
  size_t srecord_count;
  int expect_close;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

#if defined(__GNUC__) || defined(__clang__)
static void report_set(char *report, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
static void report_set(char *report, size_t size, const char *fmt, ...) {
  if (!report || size == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(report, size, fmt, ap);
  va_end(ap);
}

/*
 * The arrays here grow one element at a time; their capacity is implicit
 * (4, then doubling), so only the count is stored. Returns `array` or its
 * grown copy with room for element `count`, or NULL (array untouched).
 */
static void *grow(void *array, size_t count, size_t elem) {
  int full = count == 0 || (count >= 4 && (count & (count - 1)) == 0);
  if (!full)
    return array;
  size_t cap = count == 0 ? 4 : count * 2;
  if (cap > (size_t)-1 / elem)
    return NULL;
  return realloc(array, cap * elem);
}

static char *dup_range(const char *s, size_t len) {
  char *copy = malloc(len + 1);
  if (!copy)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

/* Writes `len` bytes as a C-like quoted string into out (always
 * NUL-terminated); long texts are cut with "...". */
static void escape(const uint8_t *data, size_t len, char *out, size_t size) {
  size_t o = 0;
  if (size < 8) {
    if (size)
      out[0] = '\0';
    return;
  }
  out[o++] = '"';
  for (size_t i = 0; i < len; i++) {
    char piece[8];
    uint8_t c = data[i];
    switch (c) {
    case '\r':
      strcpy(piece, "\\r");
      break;
    case '\n':
      strcpy(piece, "\\n");
      break;
    case '\t':
      strcpy(piece, "\\t");
      break;
    case '\\':
      strcpy(piece, "\\\\");
      break;
    case '"':
      strcpy(piece, "\\\"");
      break;
    default:
      if (c < 0x20 || c > 0x7e)
        snprintf(piece, sizeof piece, "\\x%02X", (unsigned)c);
      else {
        piece[0] = (char)c;
        piece[1] = '\0';
      }
    }
    size_t plen = strlen(piece);
    if (o + plen + 5 > size) {
      memcpy(out + o, "...", 3);
      o += 3;
      break;
    }
    memcpy(out + o, piece, plen);
    o += plen;
  }
  out[o++] = '"';
  out[o] = '\0';
}

int transcript_option_size(const char *value, size_t *out) {
  size_t v = 0;
  if (!value || !*value)
    return -1;
  for (const char *p = value; *p; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    size_t digit = (size_t)(*p - '0');
    if (v > ((size_t)-1 - digit) / 10)
      return -1;
    v = v * 10 + digit;
  }
  *out = v;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Parsing                                                             */
/* ------------------------------------------------------------------ */

typedef struct parser {
  transcript *t;
  unsigned line;
  char *report;
  size_t report_size;
} parser;

static int parse_error(parser *p, const char *what) {
  report_set(p->report, p->report_size, "%s:%u: %s", p->t->name, p->line, what);
  return -1;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Appends text with \r \n \t \\ \xHH escapes decoded. */
static int append_escaped(parser *p, mailproto_buf *b, const char *s,
                          size_t len) {
  for (size_t i = 0; i < len; i++) {
    uint8_t c = (uint8_t)s[i];
    if (c == '\\') {
      if (i + 1 >= len)
        return parse_error(p, "escape at the end of the line");
      char e = s[++i];
      if (e == 'r')
        c = '\r';
      else if (e == 'n')
        c = '\n';
      else if (e == 't')
        c = '\t';
      else if (e == '\\')
        c = '\\';
      else if (e == 'x') {
        int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0)
          return parse_error(p, "\\x needs two hex digits");
        c = (uint8_t)(hi * 16 + lo);
        i += 2;
      } else
        return parse_error(p, "unknown escape (use \\r \\n \\t \\\\ \\xHH)");
    }
    if (mailproto_buf_append_byte(b, c) != 0)
      return parse_error(p, "transcript data too large");
  }
  return 0;
}

static int append_line(parser *p, mailproto_buf *b, const char *s, size_t len) {
  if (mailproto_buf_append(b, s, len) != 0 ||
      mailproto_buf_append(b, "\r\n", 2) != 0)
    return parse_error(p, "transcript data too large");
  return 0;
}

/* A C record: starts a new group when server bytes came since the last. */
static int note_client(parser *p) {
  transcript *t = p->t;
  if (t->group_count > 0 &&
      t->groups[t->group_count - 1].release_after == t->server.len)
    return 0;
  group *groups = grow(t->groups, t->group_count, sizeof *groups);
  if (!groups)
    return parse_error(p, "out of memory");
  t->groups = groups;
  t->groups[t->group_count].client_start = t->client.len;
  t->groups[t->group_count].release_after = t->server.len;
  t->group_count++;
  return 0;
}

static int note_server(parser *p) {
  transcript *t = p->t;
  srecord *records = grow(t->srecords, t->srecord_count, sizeof *records);
  if (!records)
    return parse_error(p, "out of memory");
  t->srecords = records;
  t->srecords[t->srecord_count].offset = t->server.len;
  t->srecords[t->srecord_count].line = p->line;
  t->srecord_count++;
  return 0;
}

static int parse_number(const char **s, const char *end, unsigned long *out) {
  unsigned long v = 0;
  const char *q = *s;
  if (q == end || *q < '0' || *q > '9')
    return -1;
  for (; q < end && *q >= '0' && *q <= '9'; q++) {
    if (v > 100000000ul)
      return -1;
    v = v * 10 + (unsigned long)(*q - '0');
  }
  *s = q;
  *out = v;
  return 0;
}

/* "A..B text": text + CRLF for each i, "{}" replaced by i. */
static int parse_repeat(parser *p, mailproto_buf *b, const char *s,
                        size_t len) {
  const char *q = s, *end = s + len;
  unsigned long first, last;
  if (parse_number(&q, end, &first) != 0 || end - q < 2 || q[0] != '.' ||
      q[1] != '.')
    return parse_error(p, "repeat needs FIRST..LAST");
  q += 2;
  if (parse_number(&q, end, &last) != 0 || first > last ||
      last - first >= TRANSCRIPT_MAX_REPEAT)
    return parse_error(p, "repeat needs FIRST..LAST, FIRST <= LAST");
  if (q < end && *q++ != ' ')
    return parse_error(p, "repeat range must be followed by a space");
  for (unsigned long i = first; i <= last; i++) {
    const char *text = q;
    while (text < end) {
      const char *hole = NULL;
      for (const char *h = text; h + 1 < end; h++)
        if (h[0] == '{' && h[1] == '}') {
          hole = h;
          break;
        }
      size_t plain = (size_t)((hole ? hole : end) - text);
      if (mailproto_buf_append(b, text, plain) != 0)
        return parse_error(p, "transcript data too large");
      if (!hole)
        break;
      char num[24];
      int n = snprintf(num, sizeof num, "%lu", i);
      if (mailproto_buf_append(b, num, (size_t)n) != 0)
        return parse_error(p, "transcript data too large");
      text = hole + 2;
    }
    if (mailproto_buf_append(b, "\r\n", 2) != 0)
      return parse_error(p, "transcript data too large");
  }
  return 0;
}

static int parse_option(parser *p, const char *s, size_t len) {
  transcript *t = p->t;
  const char *sp = memchr(s, ' ', len);
  size_t klen = sp ? (size_t)(sp - s) : len;
  if (klen == 0)
    return parse_error(p, "option needs a key: \"@ key value\"");
  transcript_option *options =
      grow(t->options, t->option_count, sizeof *options);
  if (options)
    t->options = options;
  /* Two strings per option: grow at the same points as `options`. */
  char **text = grow(t->option_text, t->option_count, 2 * sizeof *text);
  if (text)
    t->option_text = text;
  char *key = dup_range(s, klen);
  char *value = sp ? dup_range(sp + 1, len - klen - 1) : dup_range("", 0);
  if (!options || !text || !key || !value) {
    free(key);
    free(value);
    return parse_error(p, "out of memory");
  }
  t->option_text[2 * t->option_count] = key;
  t->option_text[2 * t->option_count + 1] = value;
  t->options[t->option_count].key = key;
  t->options[t->option_count].value = value;
  t->option_count++;
  return 0;
}

static int parse_event(parser *p, const char *s, size_t len) {
  transcript *t = p->t;
  char **events = grow(t->events, t->event_count, sizeof *events);
  if (events)
    t->events = events;
  unsigned *lines = grow(t->event_lines, t->event_count, sizeof *lines);
  if (lines)
    t->event_lines = lines;
  if (!events || !lines)
    return parse_error(p, "out of memory");
  char *text = dup_range(s, len);
  if (!text)
    return parse_error(p, "out of memory");
  t->events[t->event_count] = text;
  t->event_lines[t->event_count] = p->line;
  t->event_count++;
  return 0;
}

static int parse_record(parser *p, const char *s, size_t len) {
  transcript *t = p->t;
  if (t->expect_close)
    return parse_error(p, "nothing may follow \"! close\"");
  char kind = s[0];
  if (kind == '@' || kind == '!') {
    const char *text = s + 1;
    size_t tlen = len - 1;
    if (tlen == 0 || text[0] != ' ')
      return parse_error(p, "expected a space after the record type");
    text++;
    tlen--;
    if (kind == '@')
      return parse_option(p, text, tlen);
    if (tlen == 5 && memcmp(text, "close", 5) == 0) {
      t->expect_close = 1;
      return 0;
    }
    return parse_error(p, "unknown directive (only \"! close\")");
  }
  char form = len > 1 ? s[1] : '\0';
  const char *text = len > 1 ? s + 2 : s + len;
  size_t tlen = len > 1 ? len - 2 : 0;
  if ((kind != 'C' && kind != 'S' && kind != 'E') ||
      (form != ':' && form != '~' && form != '*') ||
      (kind == 'E' && form != ':'))
    return parse_error(p, "unknown record (expected C: C~ C* S: S~ S* E: @ !)");
  if (tlen > 0) {
    if (text[0] != ' ')
      return parse_error(p, "expected a space after the record type");
    text++;
    tlen--;
  }
  if (kind == 'E')
    return parse_event(p, text, tlen);
  mailproto_buf *b = kind == 'C' ? &t->client : &t->server;
  int rc = kind == 'C' ? note_client(p) : note_server(p);
  if (rc != 0)
    return rc;
  if (form == ':')
    return append_line(p, b, text, tlen);
  if (form == '~')
    return append_escaped(p, b, text, tlen);
  return parse_repeat(p, b, text, tlen);
}

int transcript_parse(const char *text, size_t len, const char *name,
                     transcript **out, char *report, size_t report_size) {
  transcript *t = calloc(1, sizeof *t);
  if (!t || !(t->name = dup_range(name, strlen(name)))) {
    free(t);
    report_set(report, report_size, "%s: out of memory", name);
    return -1;
  }
  mailproto_buf_init(&t->client, NULL, TRANSCRIPT_MAX_DATA);
  mailproto_buf_init(&t->server, NULL, TRANSCRIPT_MAX_DATA);
  parser p = {t, 0, report, report_size};
  size_t at = 0;
  while (at < len) {
    const char *line = text + at;
    const char *nl = memchr(line, '\n', len - at);
    size_t llen = nl ? (size_t)(nl - line) : len - at;
    at += llen + (nl ? 1 : 0);
    p.line++;
    if (llen > 0 && line[llen - 1] == '\r')
      llen--;
    size_t blank = 0;
    while (blank < llen && (line[blank] == ' ' || line[blank] == '\t'))
      blank++;
    if (blank == llen || line[0] == '#')
      continue;
    if (parse_record(&p, line, llen) != 0) {
      transcript_free(t);
      return -1;
    }
  }
  *out = t;
  return 0;
}

int transcript_load(const char *path, transcript **out, char *report,
                    size_t report_size) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    report_set(report, report_size, "%s: cannot open", path);
    return -1;
  }
  char *text = malloc(TRANSCRIPT_MAX_FILE + 1);
  size_t len = text ? fread(text, 1, TRANSCRIPT_MAX_FILE + 1, f) : 0;
  int bad = !text || ferror(f) || len > TRANSCRIPT_MAX_FILE;
  fclose(f);
  if (bad) {
    free(text);
    report_set(report, report_size, "%s: cannot read (or larger than %u)", path,
               TRANSCRIPT_MAX_FILE);
    return -1;
  }
  /* Reports name the file by its last two components ("core/echo.txt"). */
  const char *name = path + strlen(path);
  int slashes = 0;
  while (name > path && !(name[-1] == '/' && ++slashes == 2))
    name--;
  int rc = transcript_parse(text, len, name, out, report, report_size);
  free(text);
  return rc;
}

void transcript_free(transcript *t) {
  if (!t)
    return;
  for (size_t i = 0; i < t->event_count; i++)
    free(t->events[i]);
  for (size_t i = 0; i < 2 * t->option_count; i++)
    free(t->option_text[i]);
  free(t->option_text);
  free(t->events);
  free(t->event_lines);
  free(t->options);
  free(t->groups);
  free(t->srecords);
  mailproto_buf_free(&t->client);
  mailproto_buf_free(&t->server);
  free(t->name);
  free(t);
}

const uint8_t *transcript_client_bytes(const transcript *t, size_t *len) {
  *len = t->client.len;
  return t->client.data;
}

const uint8_t *transcript_server_bytes(const transcript *t, size_t *len) {
  *len = t->server.len;
  return t->server.data;
}

size_t transcript_event_count(const transcript *t) {
  return t->event_count;
}

const char *transcript_event(const transcript *t, size_t i) {
  return i < t->event_count ? t->events[i] : NULL;
}

int transcript_expects_close(const transcript *t) {
  return t->expect_close;
}

/* ------------------------------------------------------------------ */
/* Running                                                             */
/* ------------------------------------------------------------------ */

/* Why a run stopped. */
enum stop {
  STOP_IDLE,      /* all input consumed, nothing left to do */
  STOP_CLOSED,    /* the session wants the connection closed */
  STOP_STALL,     /* it waits for something that never comes */
  STOP_FATAL,     /* a call returned a negative code */
  STOP_MISMATCH,  /* output or events already differ */
  STOP_VIOLATION, /* the session broke the contract */
  STOP_SETUP      /* the stores or the session could not be built */
};

typedef struct runner {
  const transcript *t;
  const transcript_adapter *a;
  const transcript_mode *mode;
  transcript_env env;
  mailproto_memstore *memstore;
  faultstore *fault;
  mailproto_store inner, outer;
  void *session;
  overread_guard guard;
  mailproto_buf out;
  size_t budget;   /* bytes send may still take this turn */
  uint32_t random; /* state of the random chunk sizes */
  size_t events_seen;
  size_t event_mismatch; /* index + 1 of the first wrong event, or 0 */
  char event_got[256];
  int output_mismatch;
  int destroying;
  char violation[256];
  int fatal; /* first negative code the session returned */
  int closed_after_fatal;
  enum stop stop;
  char stop_detail[256];
} runner;

ptrdiff_t transcript_env_send(transcript_env *env, const uint8_t *data,
                              size_t len) {
  runner *r = env->runner;
  if (r->destroying && !r->violation[0])
    snprintf(r->violation, sizeof r->violation,
             "send called while the session was being destroyed");
  size_t take = len < r->budget ? len : r->budget;
  r->budget -= take;
  size_t at = r->out.len;
  if (!r->output_mismatch && (take > r->t->server.len - at ||
                              memcmp(r->t->server.data + at, data, take) != 0))
    r->output_mismatch = 1;
  /* The buffer keeps a little past the expected end, for the report. */
  size_t room = mailproto_buf_room(&r->out);
  if (mailproto_buf_append(&r->out, data, take < room ? take : room) != 0)
    r->output_mismatch = 1;
  return (ptrdiff_t)take;
}

void transcript_env_event(transcript_env *env, const char *text) {
  runner *r = env->runner;
  if (r->destroying && !r->violation[0])
    snprintf(r->violation, sizeof r->violation,
             "event \"%s\" reported while the session was being destroyed",
             text);
  size_t i = r->events_seen++;
  if (r->event_mismatch)
    return;
  if (i >= r->t->event_count || strcmp(r->t->events[i], text) != 0) {
    r->event_mismatch = i + 1;
    escape((const uint8_t *)text, strlen(text), r->event_got,
           sizeof r->event_got);
  }
}

static mailproto_datetime fixed_clock(void *arg) {
  (void)arg;
  /* 2026-11-26 14:05:07 UTC: internal dates in transcripts never change. */
  mailproto_datetime dt = {1795702707, 0};
  return dt;
}

static int setup_stores(runner *r, const mailproto_allocator *alloc) {
  int rc = mailproto_memstore_new(alloc, &r->memstore);
  if (rc != 0)
    return rc;
  mailproto_memstore_set_clock(r->memstore, fixed_clock, NULL);
  if ((rc = mailproto_memstore_add_user(r->memstore, "alice", "secret")) != 0 ||
      (rc = mailproto_memstore_add_user(r->memstore, "bob", "hunter2")) != 0)
    return rc;
  mailproto_memstore_store(r->memstore, &r->inner);
  if ((rc = faultstore_new(&r->inner, alloc, &r->fault)) != 0)
    return rc;
  faultstore_store(r->fault, &r->outer);
  faultstore_defer_all(r->fault, r->mode->defer_all);
  faultstore_defer_nth(r->fault, r->mode->defer_nth);
  return 0;
}

/* Client bytes the client has sent so far: every group whose replies
 * it has seen. */
static size_t released(const runner *r, size_t *next_group) {
  const transcript *t = r->t;
  while (*next_group < t->group_count &&
         t->groups[*next_group].release_after <= r->out.len &&
         !r->output_mismatch)
    ++*next_group;
  if (*next_group >= t->group_count)
    return t->client.len;
  return t->groups[*next_group].client_start;
}

static size_t arrive(runner *r, size_t avail, size_t limit) {
  const transcript_mode *m = r->mode;
  size_t to = r->t->client.len;
  if (m->split_at)
    to = avail < m->split_at ? m->split_at : to;
  else if (m->chunk)
    to = avail + m->chunk;
  else if (m->seed) {
    /* A fixed LCG (Numerical Recipes): the same sizes on every machine,
     * so a failing seed reproduces. */
    r->random = r->random * 1664525u + 1013904223u;
    to = avail + 1 + (r->random >> 28);
  }
  return to < limit ? to : limit;
}

static int session_pending(runner *r) {
  return (r->a->pending && r->a->pending(r->session)) ||
         faultstore_pending(r->fault) > 0;
}

static void stop_fatal(runner *r, const char *where, long rc) {
  r->stop = STOP_FATAL;
  r->fatal = (int)rc;
  r->closed_after_fatal =
      !r->a->want_read(r->session) && !r->a->want_write(r->session);
  snprintf(r->stop_detail, sizeof r->stop_detail, "%s returned %ld (%s)", where,
           rc, mailproto_strerror((int)rc));
}

static void drive(runner *r) {
  const transcript *t = r->t;
  const transcript_adapter *a = r->a;
  size_t total = t->client.len, pos = 0, avail = 0, next_group = 0;
  /* Every useful turn moves a byte or finishes an operation; anything
   * far beyond that is a session spinning without end. */
  size_t max_turns = 16 * (total + t->server.len + t->event_count + 64);
  int rc = a->start(r->session);
  if (rc < 0) {
    stop_fatal(r, "start", rc);
    return;
  }
  for (size_t turn = 0;; turn++) {
    int progress = 0;
    r->budget = r->mode->send_max ? r->mode->send_max : (size_t)-1;
    if (turn > max_turns) {
      r->stop = STOP_STALL;
      snprintf(r->stop_detail, sizeof r->stop_detail, "no end after %zu turns",
               turn);
      return;
    }
    /* Operations deferred during the previous turn finish now. */
    int done = faultstore_run_pending(r->fault);
    if (done < 0) {
      stop_fatal(r, "completing a deferred operation", done);
      return;
    }
    progress |= done > 0;
    if (a->want_read(r->session)) {
      size_t limit = released(r, &next_group);
      if (pos == avail && avail < limit)
        avail = arrive(r, avail, limit);
      if (pos < avail) {
        const uint8_t *chunk =
            overread_place(&r->guard, t->client.data + pos, avail - pos);
        ptrdiff_t n = a->feed(r->session, chunk, avail - pos);
        if (n < 0) {
          stop_fatal(r, "feed", (long)n);
          return;
        }
        if ((size_t)n > avail - pos) {
          snprintf(r->violation, sizeof r->violation,
                   "feed of %zu bytes claimed to consume %td", avail - pos, n);
          r->stop = STOP_VIOLATION;
          return;
        }
        pos += (size_t)n;
        progress |= n > 0;
      }
    }
    if (a->want_write(r->session)) {
      size_t before = r->out.len;
      rc = a->writable(r->session);
      if (rc < 0) {
        stop_fatal(r, "writable", rc);
        return;
      }
      progress |= r->out.len > before;
    }
    if (r->violation[0]) {
      r->stop = STOP_VIOLATION;
      return;
    }
    if (r->output_mismatch || r->event_mismatch) {
      r->stop = STOP_MISMATCH;
      return;
    }
    int wr = a->want_read(r->session), ww = a->want_write(r->session);
    int pending = session_pending(r);
    if (!wr && !ww && !pending) {
      r->stop = STOP_CLOSED;
      return;
    }
    if (pos == total && !ww && !pending) {
      r->stop = STOP_IDLE;
      return;
    }
    if (!progress) {
      r->stop = STOP_STALL;
      snprintf(r->stop_detail, sizeof r->stop_detail,
               "no progress possible: %zu of %zu client bytes consumed, "
               "want_read %d, want_write %d, operation pending %d",
               pos, total, wr, ww, pending);
      return;
    }
  }
}

/* How the output compares with the transcript. */
enum output_diff {
  OUTPUT_SAME,
  OUTPUT_DIFFERS, /* a wrong byte, or more than expected */
  OUTPUT_SHORT    /* a correct prefix: the run ended before the rest */
};

/* Describes the first output difference. */
static enum output_diff describe_output(const runner *r, char *buf,
                                        size_t size) {
  const transcript *t = r->t;
  const uint8_t *exp = t->server.data, *got = r->out.data;
  size_t elen = t->server.len, glen = r->out.len, d = 0;
  while (d < elen && d < glen && exp[d] == got[d])
    d++;
  if (d == elen && d == glen)
    return OUTPUT_SAME;
  size_t start = d, lineno = 1;
  while (start > 0 && exp[start - 1] != '\n')
    start--;
  for (size_t i = 0; i < start; i++)
    lineno += exp[i] == '\n';
  size_t eend = start, gend = start;
  while (eend < elen && exp[eend++] != '\n')
    ;
  while (gend < glen && got[gend++] != '\n')
    ;
  unsigned fline = 0;
  for (size_t i = 0; i < t->srecord_count && t->srecords[i].offset <= d; i++)
    fline = t->srecords[i].line;
  char e[300], g[300];
  if (start < elen)
    escape(exp + start, eend - start, e, sizeof e);
  else
    snprintf(e, sizeof e, "(nothing more)");
  if (start < glen)
    escape(got + start, gend - start, g, sizeof g);
  else
    snprintf(g, sizeof g, "(nothing more)");
  if (d >= elen)
    snprintf(buf, size,
             "output longer than expected after server line %zu\n"
             "  expected: %s\n  got:      %s",
             lineno, e, g);
  else
    snprintf(buf, size,
             "output differs at transcript line %u (server line %zu)\n"
             "  expected: %s\n  got:      %s",
             fline, lineno, e, g);
  return d == glen ? OUTPUT_SHORT : OUTPUT_DIFFERS;
}

static int describe_events(const runner *r, char *buf, size_t size) {
  const transcript *t = r->t;
  char e[300];
  if (r->event_mismatch) {
    size_t i = r->event_mismatch - 1;
    if (i < t->event_count) {
      escape((const uint8_t *)t->events[i], strlen(t->events[i]), e, sizeof e);
      snprintf(buf, size,
               "event %zu differs (transcript line %u)\n  expected: %s\n"
               "  got:      %s",
               i + 1, t->event_lines[i], e, r->event_got);
    } else
      snprintf(buf, size, "unexpected event %zu: %s", i + 1, r->event_got);
    return 1;
  }
  if (r->events_seen < t->event_count) {
    size_t i = r->events_seen;
    escape((const uint8_t *)t->events[i], strlen(t->events[i]), e, sizeof e);
    snprintf(buf, size, "event %zu missing (transcript line %u): %s", i + 1,
             t->event_lines[i], e);
    return 1;
  }
  return 0;
}

static const char *stop_name(enum stop s) {
  switch (s) {
  case STOP_IDLE:
    return "input consumed";
  case STOP_CLOSED:
    return "session closed";
  case STOP_STALL:
    return "stalled";
  case STOP_FATAL:
    return "fatal error";
  case STOP_MISMATCH:
    return "difference found";
  case STOP_VIOLATION:
    return "contract violation";
  case STOP_SETUP:
    return "setup failed";
  }
  return "?";
}

/* The verdict of one finished run; returns 0 if it matched. */
static int judge(const runner *r, char *report, size_t size) {
  const transcript *t = r->t;
  char what[900];
  const char *mode = r->mode->name;
  if (r->violation[0]) {
    report_set(report, size, "%s [%s]: %s", t->name, mode, r->violation);
    return -1;
  }
  if (r->stop == STOP_SETUP) {
    report_set(report, size, "%s [%s]: setup failed: %s", t->name, mode,
               r->stop_detail);
    return -1;
  }
  /* A wrong byte explains most; a wrong event stops a run early, so it
   * comes before output that is merely missing. */
  char events[900];
  enum output_diff out = describe_output(r, what, sizeof what);
  int bad = out != OUTPUT_SAME;
  if (out != OUTPUT_DIFFERS && describe_events(r, events, sizeof events)) {
    memcpy(what, events, sizeof what);
    bad = 1;
  }
  if (!bad && (r->stop == STOP_STALL || r->stop == STOP_FATAL)) {
    snprintf(what, sizeof what, "output matched, but the run ended early");
    bad = 1;
  }
  if (!bad && (r->stop == STOP_CLOSED) != t->expect_close) {
    snprintf(what, sizeof what, "%s",
             t->expect_close ? "the session should have closed (! close)"
                             : "the session closed, the transcript does "
                               "not end with \"! close\"");
    bad = 1;
  }
  if (!bad)
    return 0;
  report_set(report, size, "%s [%s]: %s\n  (run ended: %s%s%s)", t->name, mode,
             what, stop_name(r->stop), r->stop_detail[0] ? ": " : "",
             r->stop_detail);
  return -1;
}

typedef struct outcome {
  int passed;
  int fatal;                 /* the session's or the setup's negative code */
  int closed_after_fatal;    /* the session wanted to close after it */
  int setup_failed;          /* no session ran */
  unsigned long store_calls; /* store operations the session started */
} outcome;

static void run_once(const transcript *t, const transcript_adapter *a,
                     const transcript_mode *mode,
                     const mailproto_allocator *alloc, outcome *res,
                     char *report, size_t report_size) {
  runner *r = calloc(1, sizeof *r);
  memset(res, 0, sizeof *res);
  if (!r) {
    report_set(report, report_size, "%s: out of memory", t->name);
    return;
  }
  r->t = t;
  r->a = a;
  r->mode = mode;
  r->random = mode->seed;
  mailproto_buf_init(&r->out, NULL, t->server.len + TRANSCRIPT_EXTRA_OUTPUT);
  int rc = overread_init(&r->guard, t->client.len ? t->client.len : 1);
  if (rc != 0) {
    r->stop = STOP_SETUP;
    snprintf(r->stop_detail, sizeof r->stop_detail, "no guard page");
  } else if ((rc = setup_stores(r, alloc)) != 0) {
    r->stop = STOP_SETUP;
    r->fatal = rc;
    snprintf(r->stop_detail, sizeof r->stop_detail, "stores: %s",
             mailproto_strerror(rc));
  } else {
    r->env.alloc = alloc;
    r->env.store = &r->outer;
    r->env.memstore = r->memstore;
    r->env.options = t->options;
    r->env.option_count = t->option_count;
    r->env.runner = r;
    rc = a->create(&r->env, &r->session);
    if (rc != 0) {
      r->stop = STOP_SETUP;
      r->fatal = rc;
      r->session = NULL;
      snprintf(r->stop_detail, sizeof r->stop_detail, "%s create: %s", a->name,
               mailproto_strerror(rc));
    } else
      drive(r);
  }
  if (r->session) {
    r->destroying = 1;
    a->destroy(r->session);
    r->destroying = 0;
  }
  res->store_calls = r->fault ? faultstore_calls(r->fault) : 0;
  faultstore_free(r->fault);
  mailproto_memstore_free(r->memstore);
  overread_free(&r->guard);
  res->passed = judge(r, report, report_size) == 0;
  res->fatal = r->fatal;
  res->closed_after_fatal = r->closed_after_fatal;
  res->setup_failed = r->stop == STOP_SETUP;
  mailproto_buf_free(&r->out);
  free(r);
}

int transcript_run_mode(const transcript *t, const transcript_adapter *a,
                        const transcript_mode *mode,
                        const mailproto_allocator *alloc, char *report,
                        size_t report_size) {
  outcome res;
  run_once(t, a, mode, alloc, &res, report, report_size);
  return res.passed ? 0 : -1;
}

int transcript_run_all(const transcript *t, const transcript_adapter *a,
                       char *report, size_t report_size) {
  static const transcript_mode fixed[] = {
      {.name = "whole"},
      {.name = "bytes", .chunk = 1},
      {.name = "chunks of 2", .chunk = 2},
      {.name = "chunks of 3", .chunk = 3},
      {.name = "chunks of 4", .chunk = 4},
      {.name = "chunks of 5", .chunk = 5},
      {.name = "chunks of 6", .chunk = 6},
      {.name = "chunks of 7", .chunk = 7},
      {.name = "random chunks, seed 1", .seed = 1},
      {.name = "random chunks, seed 2", .seed = 2},
      {.name = "random chunks, seed 3", .seed = 3},
      {.name = "deferred, whole", .defer_all = 1},
      {.name = "deferred, bytes", .chunk = 1, .defer_all = 1},
      {.name = "send 1 byte per turn", .send_max = 1},
      {.name = "send 3 bytes per turn", .send_max = 3},
  };
  /* The plain run also counts the store operations, so each can then be
   * paused alone. */
  outcome plain;
  run_once(t, a, &fixed[0], NULL, &plain, report, report_size);
  if (!plain.passed)
    return -1;
  for (size_t i = 1; i < sizeof fixed / sizeof fixed[0]; i++)
    if (transcript_run_mode(t, a, &fixed[i], NULL, report, report_size) != 0)
      return -1;
  for (unsigned long k = 1; k <= plain.store_calls; k++) {
    char name[48];
    snprintf(name, sizeof name, "store operation %lu deferred", k);
    transcript_mode one = {.name = name, .defer_nth = k};
    if (transcript_run_mode(t, a, &one, NULL, report, report_size) != 0)
      return -1;
  }
  for (size_t k = 1; k < t->client.len; k++) {
    char name[48];
    snprintf(name, sizeof name, "split at byte %zu", k);
    transcript_mode split = {.name = name, .split_at = k};
    if (transcript_run_mode(t, a, &split, NULL, report, report_size) != 0)
      return -1;
  }
  return 0;
}

int transcript_run_file(const char *path, const transcript_adapter *a,
                        char *report, size_t report_size) {
  transcript *t;
  if (transcript_load(path, &t, report, report_size) != 0)
    return -1;
  int rc = transcript_run_all(t, a, report, report_size);
  transcript_free(t);
  return rc;
}

/* Fails allocation 1, 2, ... of runs in `mode` until one does not reach
 * the failure. Returns 0 or -1 (report filled). */
static int alloc_loop(const transcript *t, const transcript_adapter *a,
                      const transcript_mode *mode, char *report,
                      size_t report_size) {
  for (unsigned long n = 1; n <= TRANSCRIPT_MAX_ALLOC_RUNS; n++) {
    alloc_fail af;
    alloc_fail_init(&af, n);
    outcome res;
    char detail[1200];
    run_once(t, a, mode, &af.allocator, &res, detail, sizeof detail);
    if (af.live != 0) {
      report_set(report, report_size,
                 "%s [%s]: allocation %lu failing: %ld allocation(s) leaked",
                 t->name, mode->name, n, af.live);
      return -1;
    }
    if (!alloc_fail_triggered(&af)) {
      if (res.passed)
        return 0;
      report_set(report, report_size, "without failures: %s", detail);
      return -1;
    }
    /* NOMEM from the setup, from create, or from the session, which must
     * then want to close. */
    int clean = res.fatal == MAILPROTO_ERR_NOMEM &&
                (res.closed_after_fatal || res.setup_failed);
    if (!res.passed && !clean) {
      report_set(report, report_size, "allocation %lu failing: %s", n, detail);
      return -1;
    }
  }
  report_set(report, report_size, "%s [%s]: still allocating after %lu runs",
             t->name, mode->name, TRANSCRIPT_MAX_ALLOC_RUNS);
  return -1;
}

int transcript_run_alloc_failures(const char *path, const transcript_adapter *a,
                                  char *report, size_t report_size) {
  /* Deferred completions allocate in the faultstore and fail inside
   * mailproto_op_complete(): a path of its own. */
  static const transcript_mode modes[] = {
      {.name = "whole, allocation failing"},
      {.name = "deferred, allocation failing", .defer_all = 1},
  };
  transcript *t;
  if (transcript_load(path, &t, report, report_size) != 0)
    return -1;
  int rc = 0;
  for (size_t i = 0; i < sizeof modes / sizeof modes[0] && rc == 0; i++)
    rc = alloc_loop(t, a, &modes[i], report, report_size);
  transcript_free(t);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Directories                                                         */
/* ------------------------------------------------------------------ */

static int compare_paths(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

int transcript_list_dir(const char *dir, transcript_list *out) {
  out->paths = NULL;
  out->count = 0;
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t n = strlen(e->d_name);
    if (n < 5 || strcmp(e->d_name + n - 4, ".txt") != 0)
      continue;
    size_t dlen = strlen(dir);
    char *path = malloc(dlen + n + 2);
    char **paths = grow(out->paths, out->count, sizeof *paths);
    if (paths)
      out->paths = paths;
    if (!path || !paths) {
      free(path);
      closedir(d);
      transcript_list_free(out);
      return -1;
    }
    memcpy(path, dir, dlen);
    path[dlen] = '/';
    memcpy(path + dlen + 1, e->d_name, n + 1);
    out->paths[out->count++] = path;
  }
  closedir(d);
  if (out->count > 1)
    qsort(out->paths, out->count, sizeof *out->paths, compare_paths);
  return 0;
}

void transcript_list_free(transcript_list *list) {
  for (size_t i = 0; i < list->count; i++)
    free(list->paths[i]);
  free(list->paths);
  list->paths = NULL;
  list->count = 0;
}
