/*
 * Decoders for message text: content-transfer-encodings (RFC 2045 6.7
 * quoted-printable, 6.8 base64) and the CRLF form IMAP sends, as streams
 * that take input in chunks of any size; charsets to UTF-8 (libc only, no
 * iconv); RFC 2047 encoded words; and a streaming case-insensitive UTF-8
 * substring matcher for SEARCH.
 *
 * Streams write their output through a mailproto_mime_out_fn. An output
 * function returns 0 to go on or a negative code, which the stream stops
 * at and returns. The decoders are tolerant, as readers of mail must be:
 * they never fail on bad input, they decode what can be decoded (see each
 * one) and every state they keep across chunks is bounded.
 */
#ifndef MAILPROTO_MIME_CODEC_H
#define MAILPROTO_MIME_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"
#include "mailproto/mailproto.h"

typedef int (*mailproto_mime_out_fn)(void *arg, const uint8_t *data,
                                     size_t len);

/* Output functions for the common sinks: append to a mailproto_buf (arg),
 * or add the length to a uint64_t counter (arg). */
int mailproto_mime_out_buf(void *arg, const uint8_t *data, size_t len);
int mailproto_mime_out_count(void *arg, const uint8_t *data, size_t len);

/* ------------------------------------------------------------------ */
/* Content-transfer-encodings                                          */
/* ------------------------------------------------------------------ */

typedef enum mailproto_mime_cte {
  MAILPROTO_MIME_CTE_IDENTITY = 0, /* 7bit, 8bit, binary, or none */
  MAILPROTO_MIME_CTE_BASE64,
  MAILPROTO_MIME_CTE_QP,
  MAILPROTO_MIME_CTE_UNKNOWN /* anything else (RFC 3516: UNKNOWN-CTE) */
} mailproto_mime_cte;

/* The encoding a Content-Transfer-Encoding value names (its first token,
 * case-insensitive; NULL or empty: identity). */
mailproto_mime_cte mailproto_mime_cte_of(const uint8_t *v, size_t len);

/* Pending trailing white space a quoted-printable decoder holds back; a
 * longer run is let through as content (it cannot all be trailing in any
 * sensible mail). */
#define MAILPROTO_MIME_QP_WS_MAX 256

typedef struct mailproto_mime_decoder {
  mailproto_mime_cte cte;
  mailproto_mime_out_fn out;
  void *arg;
  uint32_t acc;   /* base64: bits gathered */
  unsigned count; /* base64: symbols gathered (0..3) */
  int state;      /* quoted-printable */
  uint8_t hex;    /* quoted-printable: the first hex digit of "=XY" */
  size_t ws_len;
  uint8_t ws[MAILPROTO_MIME_QP_WS_MAX];
} mailproto_mime_decoder;

/*
 * Starts decoding `cte` (IDENTITY and UNKNOWN pass bytes through).
 * base64: characters outside the alphabet are ignored; "=" ends a group
 * (a partial group gives its whole bytes) and decoding goes on after it,
 * so concatenated blocks decode; a lone trailing symbol is dropped.
 * quoted-printable: "=XY" (either case) gives the byte; a "=" that does
 * not begin a valid escape or soft line break is kept as it is; a soft
 * line break is "=" with optional white space before the line end; every
 * hard line break (LF or CRLF) is output as CRLF (RFC 2045 6.7 rule 4);
 * white space at the end of a line is removed (rule 3).
 */
void mailproto_mime_decoder_init(mailproto_mime_decoder *d,
                                 mailproto_mime_cte cte,
                                 mailproto_mime_out_fn out, void *arg);
int mailproto_mime_decoder_feed(mailproto_mime_decoder *d, const uint8_t *in,
                                size_t len);
/* Flushes what an incomplete input left pending. */
int mailproto_mime_decoder_finish(mailproto_mime_decoder *d);

/* A bare LF or a bare CR becomes CRLF (RFC 3501 2.3.4, RFC 3516 4.2; the
 * store's rule for RFC822.SIZE, store_util.h). A CR that ends the input
 * is held until the next feed or finish. */
typedef struct mailproto_mime_crlf {
  mailproto_mime_out_fn out;
  void *arg;
  int prev_cr;
} mailproto_mime_crlf;

void mailproto_mime_crlf_init(mailproto_mime_crlf *c, mailproto_mime_out_fn out,
                              void *arg);
int mailproto_mime_crlf_feed(mailproto_mime_crlf *c, const uint8_t *in,
                             size_t len);
/* Sends a held final CR as CRLF. */
int mailproto_mime_crlf_finish(mailproto_mime_crlf *c);

/* Passes bytes [offset, offset + length) of what it is fed (the partial
 * "<o.n>" of a FETCH) and drops the rest. */
typedef struct mailproto_mime_window {
  mailproto_mime_out_fn out;
  void *arg;
  uint64_t skip;  /* still to drop */
  uint64_t left;  /* still to pass */
  uint64_t total; /* bytes fed so far */
} mailproto_mime_window;

void mailproto_mime_window_init(mailproto_mime_window *w, uint64_t offset,
                                uint64_t length, mailproto_mime_out_fn out,
                                void *arg);
int mailproto_mime_window_feed(void *window, const uint8_t *in, size_t len);

/* ------------------------------------------------------------------ */
/* Charsets                                                            */
/* ------------------------------------------------------------------ */

typedef enum mailproto_mime_charset {
  MAILPROTO_MIME_CHARSET_UNKNOWN = 0,
  MAILPROTO_MIME_CHARSET_UTF8,
  MAILPROTO_MIME_CHARSET_ASCII,
  MAILPROTO_MIME_CHARSET_LATIN1, /* ISO-8859-1 */
  MAILPROTO_MIME_CHARSET_CP1252, /* Windows-1252 */
  MAILPROTO_MIME_CHARSET_LATIN9  /* ISO-8859-15 */
} mailproto_mime_charset;

/* The charset a name (any case, common aliases, an RFC 2231 "*lang"
 * suffix ignored) denotes, or UNKNOWN. */
mailproto_mime_charset mailproto_mime_charset_lookup(const uint8_t *name,
                                                     size_t len);

/*
 * Appends [in, in + len) converted from `cs` to UTF-8. Malformed UTF-8
 * and 8-bit bytes in US-ASCII become U+FFFD; an UNKNOWN charset passes the
 * bytes through unchanged. Returns 0, NOMEM or BUFFER_FULL (nothing
 * appended).
 */
int mailproto_mime_charset_to_utf8(mailproto_mime_charset cs, const uint8_t *in,
                                   size_t len, mailproto_buf *out);

/* The same as a stream (SEARCH BODY over a transfer-decoded text part):
 * the single-byte charsets convert byte by byte, so any chunking gives
 * the same output; UTF-8 and unknown charsets pass through unchanged (the
 * matcher reads malformed UTF-8 itself, across chunks). */
typedef struct mailproto_mime_to_utf8 {
  mailproto_mime_charset cs;
  mailproto_mime_out_fn out;
  void *arg;
} mailproto_mime_to_utf8;

void mailproto_mime_to_utf8_init(mailproto_mime_to_utf8 *c,
                                 mailproto_mime_charset cs,
                                 mailproto_mime_out_fn out, void *arg);
int mailproto_mime_to_utf8_feed(void *conv, const uint8_t *in, size_t len);

/* ------------------------------------------------------------------ */
/* RFC 2047 encoded words                                              */
/* ------------------------------------------------------------------ */

/*
 * Appends an unfolded header value with its encoded words
 * ("=?charset?B?...?=" and "?Q?") decoded to UTF-8: white space between
 * two encoded words is dropped (RFC 2047 6.2), adjacent words of one
 * charset are joined before conversion (a character may be split between
 * them), text outside encoded words is copied as it is, and a malformed
 * word is kept as text. Words in an unknown charset give their decoded
 * bytes. Returns 0, NOMEM or BUFFER_FULL (nothing appended).
 */
int mailproto_mime_decode_words(const uint8_t *in, size_t len,
                                mailproto_buf *out);

/* ------------------------------------------------------------------ */
/* Case-insensitive matching                                           */
/* ------------------------------------------------------------------ */

/*
 * A streaming substring search, for SEARCH (RFC 3501 6.4.4: "case-
 * insensitive substring"). Needle and text are UTF-8; both are compared
 * after Unicode's simple (one-to-one) case folding. Limits: no full case
 * folding
 * ("ß" does not match "ss"), no Unicode normalisation (a precomposed
 * letter does not match its decomposed form), and malformed UTF-8 in the
 * text never matches a needle character. Memory: 12 bytes per needle
 * character; time linear in the text (Knuth-Morris-Pratt).
 */
typedef struct mailproto_mime_matcher {
  const mailproto_allocator *alloc;
  uint32_t *needle; /* folded code points */
  size_t *next;     /* KMP failure links */
  size_t len;
  size_t state;
  int matched;
  uint32_t cp;   /* UTF-8 sequence being read */
  unsigned need; /* continuation bytes still expected */
  uint32_t min;  /* smallest code point the sequence may encode */
  /* The bytes a match can start at when the needle starts with an ASCII
   * character (its two cases, and the lead byte of the one non-ASCII
   * character folding to it, if any): between matches the text jumps
   * from one to the next with memchr. 0 of them: no jumping. */
  uint8_t first[3];
  unsigned char first_count;
} mailproto_mime_matcher;

/* Prepares a matcher for `needle` (an empty needle matches everything).
 * Returns 0 or NOMEM. */
int mailproto_mime_matcher_init(mailproto_mime_matcher *m,
                                const mailproto_allocator *alloc,
                                const uint8_t *needle, size_t len);
/* Forgets the text fed so far (the next message or field). */
void mailproto_mime_matcher_reset(mailproto_mime_matcher *m);
/* Feeds text; returns 1 once the needle has been seen (and stays 1 until
 * reset), else 0. */
int mailproto_mime_matcher_feed(mailproto_mime_matcher *m, const uint8_t *text,
                                size_t len);
/* An output function that feeds a matcher (arg); never fails. */
int mailproto_mime_out_match(void *arg, const uint8_t *data, size_t len);
void mailproto_mime_matcher_free(mailproto_mime_matcher *m);

/* The simple case folding used above, for one code point. */
uint32_t mailproto_mime_fold(uint32_t cp);

#endif
