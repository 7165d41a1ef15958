/*
 * The IMAP command parser (see imap_parser.h): the arena, the lexical
 * rules of RFC 3501 9 / RFC 9051 9, the command dispatch and the commands
 * with simple arguments. FETCH/STORE, SEARCH/SORT/THREAD and the mailbox
 * commands have files of their own.
 */
#include "imap/imap_parser.h"

#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "core/alloc.h"
#include "imap/imap_parse_internal.h"
#include "imap/imap_reader.h"

#define LEX_TRAILING MAILPROTO_IMAP_LEX_TRAILING

#define ARENA_FIRST_BLOCK 2048u
#define DEFAULT_MAX_MEMORY ((size_t)1 << 20)

struct mailproto_imap_arena_block {
  mailproto_imap_arena_block *next;
  size_t size; /* bytes in data */
  size_t used;
  max_align_t data[];
};

/* ------------------------------------------------------------------ */
/* Character classes (RFC 3501 9)                                      */
/* ------------------------------------------------------------------ */

/* Bit 0: ATOM-CHAR, any CHAR except atom-specials ("(" ")" "{" SP CTL
 * list-wildcards quoted-specials resp-specials); bit 1: ASTRING-CHAR
 * (ATOM-CHAR or "]"). CHAR is 7-bit, so 8-bit bytes are in neither. */
const uint8_t mailproto_imap_char_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 3, 3, 0, 3, 3, 0, 0, 0, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 2, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 0, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

int mailproto_imap_is_atom_char(unsigned char ch) {
  return mailproto_imap_atom_ch(ch);
}

int mailproto_imap_is_astring_char(unsigned char ch) {
  return mailproto_imap_astring_ch(ch);
}

int mailproto_imap_is_atom(const char *s, size_t len) {
  if (len == 0)
    return 0;
  for (size_t i = 0; i < len; i++)
    if (!mailproto_imap_atom_ch((uint8_t)s[i]))
      return 0;
  return 1;
}

static int upper(int ch) {
  return ch >= 'a' && ch <= 'z' ? ch - 32 : ch;
}

int mailproto_imap_lex_is(const uint8_t *s, size_t n, const char *word) {
  size_t i = 0;
  for (; i < n; i++)
    if (word[i] == '\0' || upper(s[i]) != upper((unsigned char)word[i]))
      return 0;
  return word[i] == '\0';
}

int mailproto_imap_is_inbox(const char *s, size_t len) {
  return mailproto_imap_lex_is((const uint8_t *)s, len, "INBOX");
}

/* ------------------------------------------------------------------ */
/* Parser object and arena                                             */
/* ------------------------------------------------------------------ */

void mailproto_imap_parser_init(mailproto_imap_parser *p,
                                const mailproto_allocator *alloc,
                                const mailproto_imap_parser_limits *limits) {
  memset(p, 0, sizeof *p);
  p->alloc = alloc;
  if (limits) {
    p->limits = *limits;
  } else {
    p->limits.max_nesting = 32;
    p->limits.max_sequence_ranges = 1000;
    p->limits.max_memory = DEFAULT_MAX_MEMORY;
  }
  p->error = "";
}

static void free_blocks(mailproto_imap_parser *p,
                        mailproto_imap_arena_block *b) {
  while (b) {
    mailproto_imap_arena_block *next = b->next;
    /* Blocks may hold passwords (LOGIN) and SASL responses. */
    mailproto_secure_zero(b->data, b->used);
    mailproto_mem_free(p->alloc, b);
    b = next;
  }
}

void mailproto_imap_parser_free(mailproto_imap_parser *p) {
  free_blocks(p, p->blocks);
  p->blocks = NULL;
  p->cur = NULL;
  p->used = 0;
}

/* Starts a new command: the first block is reused, later ones freed. */
static void arena_reset(mailproto_imap_parser *p) {
  if (p->blocks) {
    free_blocks(p, p->blocks->next);
    p->blocks->next = NULL;
    mailproto_secure_zero(p->blocks->data, p->blocks->used);
    p->blocks->used = 0;
  }
  p->cur = p->blocks;
  p->used = 0;
}

void mailproto_imap_parser_trim(mailproto_imap_parser *p) {
  if (p->blocks && p->blocks->size > ARENA_FIRST_BLOCK) {
    mailproto_imap_parser_free(p);
    return;
  }
  arena_reset(p);
}

size_t mailproto_imap_parser_memory(const mailproto_imap_parser *p) {
  size_t n = 0;
  for (const mailproto_imap_arena_block *b = p->blocks; b; b = b->next)
    n += sizeof *b + b->size;
  return n;
}

void mailproto_imap_parser_set_utf8(mailproto_imap_parser *p, int on) {
  p->utf8 = on != 0;
}

const char *mailproto_imap_parser_error(const mailproto_imap_parser *p) {
  return p->error ? p->error : "";
}

int mailproto_imap_lex_fail(mailproto_imap_cursor *c, int rc,
                            const char *text) {
  /* The first failure names the problem; later ones only unwind. */
  if (c->p->error[0] == '\0')
    c->p->error = text;
  return rc;
}

int mailproto_imap_lex_alloc(mailproto_imap_cursor *c, size_t n, void **out) {
  mailproto_imap_parser *p = c->p;
  const size_t align = alignof(max_align_t);
  size_t need;
  if (mailproto_size_add(n, align - 1, &need) != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                   "Command too complex");
  need &= ~(align - 1);
  if (need == 0)
    need = align;
  if (need > p->limits.max_memory - p->used || p->used > p->limits.max_memory)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                   "Command too complex");
  mailproto_imap_arena_block *b = p->cur;
  if (!b || b->size - b->used < need) {
    if (b && b->next && b->next->size >= need) {
      b = b->next;
    } else {
      size_t size = b ? b->size * 2 : ARENA_FIRST_BLOCK;
      if (size < need)
        size = need;
      size_t bytes;
      if (mailproto_size_add(size, sizeof *b, &bytes) != 0)
        return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                       "Command too complex");
      mailproto_imap_arena_block *nb = mailproto_mem_malloc(p->alloc, bytes);
      if (!nb)
        return mailproto_imap_lex_fail(c, MAILPROTO_ERR_NOMEM, "Out of memory");
      nb->size = size;
      nb->used = 0;
      nb->next = b ? b->next : NULL;
      if (b)
        b->next = nb;
      else
        p->blocks = nb;
      b = nb;
    }
    p->cur = b;
  }
  void *mem = (unsigned char *)b->data + b->used;
  memset(mem, 0, need);
  b->used += need;
  p->used += need;
  *out = mem;
  return 0;
}

int mailproto_imap_lex_array(mailproto_imap_cursor *c, size_t n, size_t size,
                             void **out) {
  size_t bytes;
  if (mailproto_size_mul(n, size, &bytes) != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                   "Command too complex");
  return mailproto_imap_lex_alloc(c, bytes, out);
}

int mailproto_imap_lex_copy(mailproto_imap_cursor *c, const uint8_t *s,
                            size_t n, mailproto_imap_str *out) {
  size_t bytes;
  void *mem;
  if (mailproto_size_add(n, 1, &bytes) != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                   "Command too complex");
  int rc = mailproto_imap_lex_alloc(c, bytes, &mem);
  if (rc != 0)
    return rc;
  if (n)
    memcpy(mem, s, n);
  out->data = mem;
  out->len = n;
  return 0;
}

/* A collected element follows its link, aligned for any type. */
typedef union collect_link {
  void *next;
  max_align_t align;
} collect_link;

void mailproto_imap_collect_init(mailproto_imap_collect *col, size_t size) {
  col->size = size;
  col->head = NULL;
  col->tail = &col->head;
  col->count = 0;
}

int mailproto_imap_collect_add(mailproto_imap_cursor *c,
                               mailproto_imap_collect *col, void **out) {
  collect_link *link;
  int rc =
      mailproto_imap_lex_alloc(c, sizeof *link + col->size, (void **)&link);
  if (rc != 0)
    return rc;
  *col->tail = link;
  col->tail = &link->next;
  col->count++;
  *out = link + 1;
  return 0;
}

int mailproto_imap_collect_finish(mailproto_imap_cursor *c,
                                  mailproto_imap_collect *col, void **array,
                                  unsigned *count) {
  unsigned char *mem;
  int rc = mailproto_imap_lex_array(c, col->count, col->size, (void **)&mem);
  if (rc != 0)
    return rc;
  size_t i = 0;
  for (collect_link *l = col->head; l; l = l->next)
    memcpy(mem + col->size * i++, l + 1, col->size);
  *array = mem;
  *count = col->count;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Lexical rules                                                       */
/* ------------------------------------------------------------------ */

int mailproto_imap_lex_sp(mailproto_imap_cursor *c) {
  if (mailproto_imap_lex_end(c))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing argument");
  if (c->s[c->pos] != ' ')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid syntax");
  c->pos++;
  return 0;
}

int mailproto_imap_lex_char(mailproto_imap_cursor *c, int ch,
                            const char *text) {
  if (mailproto_imap_lex_end(c))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing argument");
  if (c->s[c->pos] != ch)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, text);
  c->pos++;
  return 0;
}

const uint8_t *mailproto_imap_lex_atom_run(mailproto_imap_cursor *c,
                                           size_t *n) {
  size_t start = c->pos;
  while (c->pos < c->len && mailproto_imap_atom_ch(c->s[c->pos]))
    c->pos++;
  *n = c->pos - start;
  return c->s + start;
}

const uint8_t *mailproto_imap_lex_word(mailproto_imap_cursor *c, size_t *n) {
  size_t start = c->pos;
  while (c->pos < c->len && mailproto_imap_astring_ch(c->s[c->pos]))
    c->pos++;
  *n = c->pos - start;
  return c->s + start;
}

int mailproto_imap_lex_atom(mailproto_imap_cursor *c, mailproto_imap_str *out,
                            const char *text) {
  size_t n;
  const uint8_t *a = mailproto_imap_lex_atom_run(c, &n);
  if (n == 0)
    return mailproto_imap_lex_fail(
        c, MAILPROTO_ERR_SYNTAX,
        mailproto_imap_lex_end(c) ? "Missing argument" : text);
  return mailproto_imap_lex_copy(c, a, n, out);
}

int mailproto_imap_is_utf8(const void *data, size_t n) {
  const uint8_t *s = data;
  size_t i = 0;
  while (i < n) {
    uint8_t b = s[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint32_t cp;
    if (b >= 0xc2 && b <= 0xdf) {
      k = 1;
      cp = b & 0x1fu;
    } else if (b >= 0xe0 && b <= 0xef) {
      k = 2;
      cp = b & 0x0fu;
    } else if (b >= 0xf0 && b <= 0xf4) {
      k = 3;
      cp = b & 0x07u;
    } else {
      return 0;
    }
    if (n - i <= k)
      return 0;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + j] & 0x3fu);
    }
    if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
      return 0;
    i += k + 1;
  }
  return 1;
}

/* quoted = DQUOTE *QUOTED-CHAR DQUOTE; the cursor is at the DQUOTE. */
static int lex_quoted(mailproto_imap_cursor *c, mailproto_imap_str *out) {
  size_t i = c->pos + 1;
  const uint8_t *s = c->s;
  /* Find the end first, so the copy is sized exactly once. */
  size_t escapes = 0;
  int high = 0;
  for (;;) {
    if (i >= c->len)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid string");
    uint8_t ch = s[i];
    if (ch == '"')
      break;
    if (ch == '\\') {
      if (i + 1 >= c->len || (s[i + 1] != '"' && s[i + 1] != '\\'))
        return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                       "Invalid string");
      escapes++;
      i += 2;
      continue;
    }
    if (ch == '\0')
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "NUL in string");
    if (ch == '\r' || ch == '\n')
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid string");
    if (ch >= 0x80)
      high = 1;
    i++;
  }
  size_t raw = i - c->pos - 1;
  if (high && c->p->utf8 && !mailproto_imap_is_utf8(s + c->pos + 1, raw))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid UTF-8 in string");
  void *mem;
  int rc = mailproto_imap_lex_alloc(c, raw - escapes + 1, &mem);
  if (rc != 0)
    return rc;
  char *d = mem;
  size_t n = 0;
  for (size_t k = c->pos + 1; k < i; k++) {
    if (s[k] == '\\')
      k++;
    d[n++] = (char)s[k];
  }
  out->data = d;
  out->len = n;
  c->pos = i + 1;
  return 0;
}

int mailproto_imap_lex_literal(mailproto_imap_cursor *c, int allow_binary,
                               int *trailing, const uint8_t **data,
                               uint64_t *size, int *sync, int *binary) {
  size_t i = c->pos;
  *binary = 0;
  *trailing = 0;
  if (i < c->len && c->s[i] == '~') {
    if (i + 1 >= c->len || c->s[i + 1] != '{')
      return 0;
    *binary = 1;
    i++;
  }
  if (i >= c->len || c->s[i] != '{')
    return 0;
  i++;
  size_t digits = 0;
  uint64_t v = 0;
  while (i < c->len && c->s[i] >= '0' && c->s[i] <= '9') {
    uint64_t d = (uint64_t)(c->s[i] - '0');
    if (++digits > 20 || v > (UINT64_C(0x7fffffffffffffff) - d) / 10)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid literal");
    v = v * 10 + d;
    i++;
  }
  int plus = 0;
  if (i < c->len && c->s[i] == '+') {
    plus = 1;
    i++;
  }
  if (digits == 0 || i >= c->len || c->s[i] != '}')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  i++;
  if (*binary && !allow_binary)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  *size = v;
  *sync = !plus;
  if (i == c->len) {
    /* The reader stops at this header: the bytes are not here (yet). */
    *trailing = 1;
    c->pos = i;
    return 1;
  }
  if (c->len - i < 2 || c->s[i] != '\r' || c->s[i + 1] != '\n')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  i += 2;
  if (v > c->len - i)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  *data = c->s + i;
  c->pos = i + (size_t)v;
  return 1;
}

/* A literal in a string position (never literal8). */
static int lex_string_literal(mailproto_imap_cursor *c,
                              mailproto_imap_str *out) {
  int trailing, sync, binary;
  const uint8_t *data = NULL;
  uint64_t size;
  size_t start = c->pos;
  int rc =
      mailproto_imap_lex_literal(c, 0, &trailing, &data, &size, &sync, &binary);
  if (rc < 0)
    return rc;
  if (rc == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid string");
  if (trailing) {
    /* Only APPEND pieces accept an unfinished literal (finish() turns it
     * into an error elsewhere). */
    c->pos = start;
    return LEX_TRAILING;
  }
  size_t n = (size_t)size;
  if (n && memchr(data, '\0', n))
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "NUL in string");
  return mailproto_imap_lex_copy(c, data, n, out);
}

int mailproto_imap_lex_string(mailproto_imap_cursor *c,
                              mailproto_imap_str *out) {
  int ch = mailproto_imap_lex_peek(c);
  if (ch < 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing argument");
  if (ch == '"')
    return lex_quoted(c, out);
  if (ch == '{')
    return lex_string_literal(c, out);
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid string");
}

int mailproto_imap_lex_astring(mailproto_imap_cursor *c,
                               mailproto_imap_str *out) {
  int ch = mailproto_imap_lex_peek(c);
  if (ch == '"' || ch == '{')
    return mailproto_imap_lex_string(c, out);
  size_t n;
  const uint8_t *a = mailproto_imap_lex_word(c, &n);
  if (n == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   ch < 0 ? "Missing argument"
                                          : "Invalid string");
  return mailproto_imap_lex_copy(c, a, n, out);
}

int mailproto_imap_lex_nstring(mailproto_imap_cursor *c,
                               mailproto_imap_nstr *out) {
  size_t save = c->pos;
  size_t n;
  const uint8_t *a = mailproto_imap_lex_atom_run(c, &n);
  if (n > 0) {
    if (!mailproto_imap_lex_is(a, n, "NIL"))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid string");
    out->nil = 1;
    out->str.data = NULL;
    out->str.len = 0;
    return 0;
  }
  c->pos = save;
  out->nil = 0;
  return mailproto_imap_lex_string(c, &out->str);
}

int mailproto_imap_lex_mailbox(mailproto_imap_cursor *c,
                               mailproto_imap_str *out) {
  int rc = mailproto_imap_lex_astring(c, out);
  if (rc != 0)
    return rc;
  if (mailproto_imap_is_inbox(out->data, out->len))
    out->data = "INBOX";
  return 0;
}

int mailproto_imap_lex_list_mailbox(mailproto_imap_cursor *c,
                                    mailproto_imap_str *out) {
  int ch = mailproto_imap_lex_peek(c);
  if (ch == '"' || ch == '{')
    return mailproto_imap_lex_string(c, out);
  size_t start = c->pos;
  while (c->pos < c->len && (mailproto_imap_astring_ch(c->s[c->pos]) ||
                             c->s[c->pos] == '%' || c->s[c->pos] == '*'))
    c->pos++;
  if (c->pos == start)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   ch < 0 ? "Missing argument"
                                          : "Invalid mailbox name");
  return mailproto_imap_lex_copy(c, c->s + start, c->pos - start, out);
}

int mailproto_imap_lex_number64(mailproto_imap_cursor *c, uint64_t *out,
                                int nonzero) {
  size_t start = c->pos;
  uint64_t v = 0;
  while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
    uint64_t d = (uint64_t)(c->s[c->pos] - '0');
    if (v > (UINT64_C(0x7fffffffffffffff) - d) / 10)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid number");
    v = v * 10 + d;
    c->pos++;
  }
  if (c->pos == start)
    return mailproto_imap_lex_fail(
        c, MAILPROTO_ERR_SYNTAX,
        mailproto_imap_lex_end(c) ? "Missing argument" : "Invalid number");
  if (nonzero && v == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid number");
  *out = v;
  return 0;
}

int mailproto_imap_lex_number(mailproto_imap_cursor *c, uint32_t *out,
                              int nonzero) {
  uint64_t v;
  int rc = mailproto_imap_lex_number64(c, &v, nonzero);
  if (rc != 0)
    return rc;
  if (v > UINT32_MAX)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid number");
  *out = (uint32_t)v;
  return 0;
}

int mailproto_imap_lex_seqset(mailproto_imap_cursor *c, int allow_saved,
                              mailproto_imap_seqset *out) {
  size_t start = c->pos;
  while (c->pos < c->len) {
    uint8_t ch = c->s[c->pos];
    if (!((ch >= '0' && ch <= '9') || ch == ':' || ch == ',' || ch == '*' ||
          ch == '$'))
      break;
    c->pos++;
  }
  size_t n = c->pos - start;
  if (n == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   mailproto_imap_lex_end(c)
                                       ? "Missing argument"
                                       : "Invalid sequence set");
  const char *s = (const char *)c->s + start;
  unsigned ranges = mailproto_imap_seqset_count_ranges(s, n);
  if (ranges > c->p->limits.max_sequence_ranges)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_TOO_LONG,
                                   "Too many sequence ranges");
  void *mem;
  int rc =
      mailproto_imap_lex_array(c, ranges, sizeof(mailproto_imap_range), &mem);
  if (rc != 0)
    return rc;
  out->ranges = mem;
  rc = mailproto_imap_seqset_parse(s, n, allow_saved, out->ranges, ranges,
                                   &out->count, &out->saved);
  if (rc != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   "Invalid sequence set");
  return 0;
}

/* One flag of a flag list: a system flag, or a keyword atom. */
static int lex_flag(mailproto_imap_cursor *c, mailproto_imap_flags *f,
                    mailproto_imap_str *kw, int *is_kw) {
  *is_kw = 0;
  int backslash = mailproto_imap_lex_peek(c) == '\\';
  if (backslash)
    c->pos++;
  size_t n;
  const uint8_t *a = mailproto_imap_lex_atom_run(c, &n);
  if (n == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid flag");
  if (!backslash) {
    *is_kw = 1;
    return mailproto_imap_lex_copy(c, a, n, kw);
  }
  static const struct {
    const char *name;
    unsigned bit;
  } system[] = {{"Seen", MAILPROTO_IMAP_FLAG_SEEN},
                {"Answered", MAILPROTO_IMAP_FLAG_ANSWERED},
                {"Flagged", MAILPROTO_IMAP_FLAG_FLAGGED},
                {"Deleted", MAILPROTO_IMAP_FLAG_DELETED},
                {"Draft", MAILPROTO_IMAP_FLAG_DRAFT}};
  for (size_t i = 0; i < sizeof system / sizeof system[0]; i++)
    if (mailproto_imap_lex_is(a, n, system[i].name)) {
      f->system |= system[i].bit;
      return 0;
    }
  /* "\Recent" and flag-extension: a client cannot set them (RFC 9051 9
   * "flag"). */
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid flag");
}

static int lex_flags(mailproto_imap_cursor *c, mailproto_imap_flags *out,
                     int paren) {
  mailproto_imap_collect kws;
  mailproto_imap_collect_init(&kws, sizeof(mailproto_imap_str));
  memset(out, 0, sizeof *out);
  int rc;
  if (!paren || mailproto_imap_lex_peek(c) != ')') {
    for (;;) {
      mailproto_imap_str kw;
      int is_kw;
      void *slot;
      if ((rc = lex_flag(c, out, &kw, &is_kw)) != 0)
        return rc;
      if (is_kw) {
        if ((rc = mailproto_imap_collect_add(c, &kws, &slot)) != 0)
          return rc;
        *(mailproto_imap_str *)slot = kw;
      }
      if (paren ? mailproto_imap_lex_peek(c) == ')'
                : mailproto_imap_lex_peek(c) != ' ')
        break;
      if ((rc = mailproto_imap_lex_sp(c)) != 0)
        return rc;
    }
  }
  if (paren)
    c->pos++;
  return mailproto_imap_collect_finish(c, &kws, (void **)&out->keywords,
                                       &out->keyword_count);
}

int mailproto_imap_lex_flag_list(mailproto_imap_cursor *c,
                                 mailproto_imap_flags *out) {
  int rc = mailproto_imap_lex_char(c, '(', "Invalid flag");
  if (rc != 0)
    return rc;
  return lex_flags(c, out, 1);
}

int mailproto_imap_lex_flags_bare(mailproto_imap_cursor *c,
                                  mailproto_imap_flags *out) {
  return lex_flags(c, out, 0);
}

int mailproto_imap_lex_date_time(mailproto_imap_cursor *c,
                                 mailproto_datetime *out) {
  if (mailproto_imap_lex_peek(c) != '"')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid date");
  const uint8_t *s = c->s + c->pos + 1;
  const uint8_t *q = memchr(s, '"', c->len - c->pos - 1);
  if (!q ||
      mailproto_date_parse_imap((const char *)s, (size_t)(q - s), out) != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid date");
  c->pos = (size_t)(q - c->s) + 1;
  return 0;
}

int mailproto_imap_lex_date(mailproto_imap_cursor *c, int64_t *out) {
  size_t start = c->pos;
  if (mailproto_imap_lex_peek(c) == '"') {
    const uint8_t *q = memchr(c->s + start + 1, '"', c->len - start - 1);
    if (!q)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid date");
    c->pos = (size_t)(q - c->s) + 1;
  } else {
    size_t n;
    mailproto_imap_lex_atom_run(c, &n);
    if (n == 0)
      return mailproto_imap_lex_fail(
          c, MAILPROTO_ERR_SYNTAX,
          mailproto_imap_lex_end(c) ? "Missing argument" : "Invalid date");
  }
  mailproto_datetime dt;
  if (mailproto_date_parse_imap_day((const char *)c->s + start, c->pos - start,
                                    &dt) != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid date");
  *out = dt.utc;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Commands with simple arguments                                      */
/* ------------------------------------------------------------------ */

#define UID_OK 0x1u

static const struct {
  const char *name;
  mailproto_imap_cmd id;
  unsigned flags;
} commands[] = {
    {"FETCH", MAILPROTO_IMAP_CMD_FETCH, UID_OK},
    {"STORE", MAILPROTO_IMAP_CMD_STORE, UID_OK},
    {"NOOP", MAILPROTO_IMAP_CMD_NOOP, 0},
    {"IDLE", MAILPROTO_IMAP_CMD_IDLE, 0},
    {"SEARCH", MAILPROTO_IMAP_CMD_SEARCH, UID_OK},
    {"SELECT", MAILPROTO_IMAP_CMD_SELECT, 0},
    {"LIST", MAILPROTO_IMAP_CMD_LIST, 0},
    {"STATUS", MAILPROTO_IMAP_CMD_STATUS, 0},
    {"APPEND", MAILPROTO_IMAP_CMD_APPEND, 0},
    {"COPY", MAILPROTO_IMAP_CMD_COPY, UID_OK},
    {"MOVE", MAILPROTO_IMAP_CMD_MOVE, UID_OK},
    {"EXPUNGE", MAILPROTO_IMAP_CMD_EXPUNGE, UID_OK},
    {"CAPABILITY", MAILPROTO_IMAP_CMD_CAPABILITY, 0},
    {"LOGOUT", MAILPROTO_IMAP_CMD_LOGOUT, 0},
    {"ID", MAILPROTO_IMAP_CMD_ID, 0},
    {"STARTTLS", MAILPROTO_IMAP_CMD_STARTTLS, 0},
    {"AUTHENTICATE", MAILPROTO_IMAP_CMD_AUTHENTICATE, 0},
    {"LOGIN", MAILPROTO_IMAP_CMD_LOGIN, 0},
    {"ENABLE", MAILPROTO_IMAP_CMD_ENABLE, 0},
    {"EXAMINE", MAILPROTO_IMAP_CMD_EXAMINE, 0},
    {"CREATE", MAILPROTO_IMAP_CMD_CREATE, 0},
    {"DELETE", MAILPROTO_IMAP_CMD_DELETE, 0},
    {"RENAME", MAILPROTO_IMAP_CMD_RENAME, 0},
    {"SUBSCRIBE", MAILPROTO_IMAP_CMD_SUBSCRIBE, 0},
    {"UNSUBSCRIBE", MAILPROTO_IMAP_CMD_UNSUBSCRIBE, 0},
    {"LSUB", MAILPROTO_IMAP_CMD_LSUB, 0},
    {"NAMESPACE", MAILPROTO_IMAP_CMD_NAMESPACE, 0},
    {"CHECK", MAILPROTO_IMAP_CMD_CHECK, 0},
    {"CLOSE", MAILPROTO_IMAP_CMD_CLOSE, 0},
    {"UNSELECT", MAILPROTO_IMAP_CMD_UNSELECT, 0},
    {"SORT", MAILPROTO_IMAP_CMD_SORT, UID_OK},
    {"THREAD", MAILPROTO_IMAP_CMD_THREAD, UID_OK},
};

enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };

const char *mailproto_imap_cmd_name(mailproto_imap_cmd id) {
  for (size_t i = 0; i < COMMAND_COUNT; i++)
    if (commands[i].id == id)
      return commands[i].name;
  return NULL;
}

static int no_arguments(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  (void)c;
  (void)cmd;
  return 0;
}

static int parse_login(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_astring(c, &cmd->u.login.user);
  if (rc == 0)
    rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_astring(c, &cmd->u.login.password);
  return rc;
}

static int is_base64_char(uint8_t ch) {
  return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
         (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

/* authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp]
 * (RFC 9051 9, RFC 4959): initial-resp = base64 / "=". */
static int parse_authenticate(mailproto_imap_cursor *c,
                              mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_atom(c, &cmd->u.authenticate.mechanism,
                                 "Invalid syntax");
  if (rc != 0 || mailproto_imap_lex_end(c))
    return rc;
  rc = mailproto_imap_lex_sp(c);
  if (rc != 0)
    return rc;
  size_t start = c->pos;
  while (c->pos < c->len && c->s[c->pos] != ' ')
    c->pos++;
  size_t n = c->pos - start;
  const uint8_t *b = c->s + start;
  cmd->u.authenticate.has_initial = 1;
  if (n == 1 && b[0] == '=')
    return mailproto_imap_lex_copy(c, b, 0, &cmd->u.authenticate.initial);
  /* base64 = *(4base64-char) [base64-terminal]: whole quads, "=" only as
   * padding at the end. */
  size_t pad = 0;
  while (pad < 2 && pad < n && b[n - 1 - pad] == '=')
    pad++;
  if (n == 0 || n % 4 != 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid base64");
  for (size_t i = 0; i < n - pad; i++)
    if (!is_base64_char(b[i]))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid base64");
  return mailproto_imap_lex_copy(c, b, n, &cmd->u.authenticate.initial);
}

/* RFC 2971 3.3: fields up to 30 octets, values up to 1024, at most 30
 * pairs. */
#define ID_FIELD_MAX 30u
#define ID_VALUE_MAX 1024u
#define ID_PAIRS_MAX 30u

static int parse_id(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc != 0)
    return rc;
  if (mailproto_imap_lex_peek(c) != '(') {
    size_t n;
    const uint8_t *a = mailproto_imap_lex_atom_run(c, &n);
    if (!mailproto_imap_lex_is(a, n, "NIL"))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid parameter");
    cmd->u.id.nil = 1;
    return 0;
  }
  c->pos++;
  mailproto_imap_id_param params[ID_PAIRS_MAX];
  unsigned count = 0;
  while (mailproto_imap_lex_peek(c) != ')') {
    if (count > 0 && (rc = mailproto_imap_lex_sp(c)) != 0)
      return rc;
    if (count == ID_PAIRS_MAX)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid parameter");
    mailproto_imap_id_param *pr = &params[count];
    if ((rc = mailproto_imap_lex_string(c, &pr->field)) != 0 ||
        (rc = mailproto_imap_lex_sp(c)) != 0 ||
        (rc = mailproto_imap_lex_nstring(c, &pr->value)) != 0)
      return rc == LEX_TRAILING
                 ? mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                           "Invalid literal")
                 : rc;
    if (pr->field.len > ID_FIELD_MAX || pr->value.str.len > ID_VALUE_MAX)
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Invalid parameter");
    count++;
  }
  c->pos++;
  void *mem;
  rc = mailproto_imap_lex_array(c, count, sizeof *params, &mem);
  if (rc != 0)
    return rc;
  if (count)
    memcpy(mem, params, count * sizeof *params);
  cmd->u.id.params = mem;
  cmd->u.id.count = count;
  return 0;
}

static int parse_enable(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  /* enable = "ENABLE" 1*(SP capability); count the spaces first. */
  unsigned count = 0;
  for (size_t i = c->pos; i < c->len; i++)
    count += c->s[i] == ' ';
  if (count == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing argument");
  void *mem;
  int rc = mailproto_imap_lex_array(c, count, sizeof(mailproto_imap_str), &mem);
  if (rc != 0)
    return rc;
  cmd->u.enable.capabilities = mem;
  for (unsigned i = 0; i < count; i++) {
    if ((rc = mailproto_imap_lex_sp(c)) != 0 ||
        (rc = mailproto_imap_lex_atom(c, &cmd->u.enable.capabilities[i],
                                      "Invalid parameter")) != 0)
      return rc;
  }
  cmd->u.enable.count = count;
  return 0;
}

static int parse_one_mailbox(mailproto_imap_cursor *c,
                             mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  return rc ? rc : mailproto_imap_lex_mailbox(c, &cmd->u.mailbox.mailbox);
}

static int parse_rename(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.rename.from);
  if (rc == 0)
    rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.rename.to);
  return rc;
}

static int parse_copy(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_seqset(c, 1, &cmd->u.copy.set);
  if (rc == 0)
    rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.copy.mailbox);
  return rc;
}

static int parse_expunge(mailproto_imap_cursor *c,
                         mailproto_imap_command *cmd) {
  if (!cmd->uid)
    return 0;
  /* RFC 4315 2.1: UID EXPUNGE sequence-set. */
  int rc = mailproto_imap_lex_sp(c);
  return rc ? rc : mailproto_imap_lex_seqset(c, 1, &cmd->u.expunge.set);
}

static int parse_append(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  int rc = mailproto_imap_lex_sp(c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(c, &cmd->u.append.mailbox);
  if (rc == 0)
    rc = mailproto_imap_parse_append_messages(c, cmd, 0, 1);
  return rc;
}

typedef int (*arg_parser)(mailproto_imap_cursor *, mailproto_imap_command *);

static arg_parser parser_for(mailproto_imap_cmd id) {
  switch (id) {
  case MAILPROTO_IMAP_CMD_LOGIN:
    return parse_login;
  case MAILPROTO_IMAP_CMD_AUTHENTICATE:
    return parse_authenticate;
  case MAILPROTO_IMAP_CMD_ID:
    return parse_id;
  case MAILPROTO_IMAP_CMD_ENABLE:
    return parse_enable;
  case MAILPROTO_IMAP_CMD_SELECT:
  case MAILPROTO_IMAP_CMD_EXAMINE:
    return mailproto_imap_parse_select;
  case MAILPROTO_IMAP_CMD_CREATE:
    return mailproto_imap_parse_create;
  case MAILPROTO_IMAP_CMD_DELETE:
  case MAILPROTO_IMAP_CMD_SUBSCRIBE:
  case MAILPROTO_IMAP_CMD_UNSUBSCRIBE:
    return parse_one_mailbox;
  case MAILPROTO_IMAP_CMD_RENAME:
    return parse_rename;
  case MAILPROTO_IMAP_CMD_LIST:
    return mailproto_imap_parse_list;
  case MAILPROTO_IMAP_CMD_LSUB:
    return mailproto_imap_parse_lsub;
  case MAILPROTO_IMAP_CMD_STATUS:
    return mailproto_imap_parse_status;
  case MAILPROTO_IMAP_CMD_APPEND:
    return parse_append;
  case MAILPROTO_IMAP_CMD_COPY:
  case MAILPROTO_IMAP_CMD_MOVE:
    return parse_copy;
  case MAILPROTO_IMAP_CMD_EXPUNGE:
    return parse_expunge;
  case MAILPROTO_IMAP_CMD_FETCH:
    return mailproto_imap_parse_fetch;
  case MAILPROTO_IMAP_CMD_STORE:
    return mailproto_imap_parse_store;
  case MAILPROTO_IMAP_CMD_SEARCH:
    return mailproto_imap_parse_search;
  case MAILPROTO_IMAP_CMD_SORT:
    return mailproto_imap_parse_sort;
  case MAILPROTO_IMAP_CMD_THREAD:
    return mailproto_imap_parse_thread;
  default:
    return no_arguments;
  }
}

/* tag SP ["UID" SP] command-name; leaves the cursor after the name. */
static int parse_head(mailproto_imap_cursor *c, mailproto_imap_command *cmd) {
  size_t start = c->pos;
  while (c->pos < c->len && c->s[c->pos] != '+' &&
         mailproto_imap_astring_ch(c->s[c->pos]))
    c->pos++;
  if (c->pos == start)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                   c->len == 0 ? "Missing tag" : "Invalid tag");
  if (c->pos < c->len && c->s[c->pos] != ' ')
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid tag");
  int rc = mailproto_imap_lex_copy(c, c->s + start, c->pos - start, &cmd->tag);
  if (rc != 0)
    return rc;
  if (mailproto_imap_lex_end(c) || c->s[c->pos] != ' ' || c->pos + 1 == c->len)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing command");
  c->pos++;
  size_t n;
  const uint8_t *name = mailproto_imap_lex_atom_run(c, &n);
  if (n == 0)
    return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Missing command");
  if (mailproto_imap_lex_is(name, n, "UID")) {
    cmd->uid = 1;
    if (mailproto_imap_lex_end(c) || c->s[c->pos] != ' ')
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Missing command");
    c->pos++;
    name = mailproto_imap_lex_atom_run(c, &n);
  }
  for (size_t i = 0; i < COMMAND_COUNT; i++) {
    if (!mailproto_imap_lex_is(name, n, commands[i].name))
      continue;
    if (cmd->uid && !(commands[i].flags & UID_OK))
      return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX,
                                     "Command does not take UID");
    cmd->id = commands[i].id;
    return 0;
  }
  return mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Unknown command");
}

static void start(mailproto_imap_parser *p, mailproto_imap_cursor *c,
                  const uint8_t *data, size_t len,
                  mailproto_imap_command *cmd) {
  arena_reset(p);
  p->error = "";
  memset(c, 0, sizeof *c);
  c->p = p;
  c->s = data;
  c->len = len;
  memset(cmd, 0, sizeof *cmd);
  cmd->tag.data = "";
}

/* Any positive code a lexer leaked (an unfinished literal where the full
 * command was expected) is a syntax error. */
static int finish(mailproto_imap_cursor *c, int rc) {
  if (rc == LEX_TRAILING)
    rc = mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  if (rc == 0 && !mailproto_imap_lex_end(c))
    rc = mailproto_imap_lex_fail(c, MAILPROTO_ERR_SYNTAX, "Extra arguments");
  if (rc < 0 && c->p->error[0] == '\0')
    c->p->error = "Invalid syntax";
  return rc;
}

int mailproto_imap_parse(mailproto_imap_parser *p, const uint8_t *data,
                         size_t len, mailproto_imap_command *cmd) {
  mailproto_imap_cursor c;
  start(p, &c, data, len, cmd);
  int rc = parse_head(&c, cmd);
  if (rc == 0)
    rc = parser_for(cmd->id)(&c, cmd);
  return finish(&c, rc);
}

int mailproto_imap_parse_append_start(mailproto_imap_parser *p,
                                      const uint8_t *data, size_t len,
                                      mailproto_imap_command *cmd) {
  mailproto_imap_cursor c;
  start(p, &c, data, len, cmd);
  int rc = parse_head(&c, cmd);
  if (rc != 0)
    return finish(&c, rc);
  if (cmd->id != MAILPROTO_IMAP_CMD_APPEND)
    return 0;
  rc = mailproto_imap_lex_sp(&c);
  if (rc == 0)
    rc = mailproto_imap_lex_mailbox(&c, &cmd->u.append.mailbox);
  if (rc == LEX_TRAILING)
    return 0; /* the mailbox name is the literal: an argument */
  if (rc == 0)
    rc = mailproto_imap_parse_append_messages(&c, cmd, 1, 1);
  if (rc == LEX_TRAILING)
    return 1;
  if (rc == 0)
    rc = mailproto_imap_lex_fail(&c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  return finish(&c, rc);
}

int mailproto_imap_parse_append_next(mailproto_imap_parser *p,
                                     const uint8_t *data, size_t len, int final,
                                     mailproto_imap_command *cmd) {
  mailproto_imap_cursor c;
  start(p, &c, data, len, cmd);
  cmd->id = MAILPROTO_IMAP_CMD_APPEND;
  int rc = mailproto_imap_parse_append_messages(&c, cmd, !final, 0);
  if (rc == LEX_TRAILING)
    return 1;
  if (rc == 0 && !final)
    rc = mailproto_imap_lex_fail(&c, MAILPROTO_ERR_SYNTAX, "Invalid literal");
  return finish(&c, rc);
}
