/*
 * libmailproto core: what every module shares: the version, error codes, the
 * replaceable allocator, the operation handle used by deferred callbacks,
 * and the public helpers of the core (base64, dates, modified UTF-7).
 *
 * Conventions used by every public header:
 *  - Functions return 0 (or a non-negative count) on success and a negative
 *    MAILPROTO_ERR_* code on failure; mailproto_strerror() names it.
 *  - Public structs begin with `size_t struct_size`, which the caller sets
 *    to sizeof the struct it was compiled with (the *_init functions do it),
 *    so later versions can add fields at the end without breaking callers.
 *  - No function keeps a pointer to caller memory after it returns unless
 *    its documentation says so.
 */
#ifndef MAILPROTO_CORE_H
#define MAILPROTO_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "mailproto/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ */
/* Version                                                             */
/* ------------------------------------------------------------------ */

#define MAILPROTO_VERSION_MAJOR 0
#define MAILPROTO_VERSION_MINOR 1
#define MAILPROTO_VERSION_PATCH 0
#define MAILPROTO_VERSION_STRING "0.1.0"
/** The version as one comparable number: 0xMMmmpp. */
#define MAILPROTO_VERSION_NUM                                                  \
  ((MAILPROTO_VERSION_MAJOR << 16) | (MAILPROTO_VERSION_MINOR << 8) |          \
   MAILPROTO_VERSION_PATCH)

/**
 * Returns the version of the library actually linked, as MAILPROTO_VERSION_NUM
 * encodes it. Compare with MAILPROTO_VERSION_NUM to detect a header/library
 * mismatch. If `string` is not NULL it receives a static version string.
 * Thread-safe; may be called from inside callbacks.
 */
MAILPROTO_EXTERN unsigned mailproto_version(const char **string);

/* ------------------------------------------------------------------ */
/* Error codes                                                         */
/* ------------------------------------------------------------------ */

/*
 * One list generates the enum and the texts of mailproto_strerror(), so they
 * can never drift apart. Codes in [-1, -899] concern one command or one
 * operation; the session goes on. Codes <= MAILPROTO_ERR_FATAL (-900) mean
 * the session or object that returned them can no longer be used except to
 * free it.
 */
#define MAILPROTO_ERROR_LIST(X)                                                \
  X(INVALID_ARGUMENT, -1, "invalid argument")                                  \
  X(SYNTAX, -2, "malformed input")                                             \
  X(TOO_LONG, -3, "input exceeds a configured limit")                          \
  X(BUFFER_FULL, -4, "buffer is full")                                         \
  X(NOT_FOUND, -5, "no such object")                                           \
  X(EXISTS, -6, "object already exists")                                       \
  X(BAD_NAME, -7, "invalid name")                                              \
  X(AUTH_FAILED, -8, "authentication failed")                                  \
  X(IN_USE, -9, "resource is locked by another session")                       \
  X(STATE, -10, "operation not allowed in this state")                         \
  X(UNSUPPORTED, -11, "operation not supported")                               \
  X(TEMPORARY, -12, "temporary failure, try again later")                      \
  X(IO, -13, "storage input/output error")                                     \
  X(LIMIT, -14, "quota or size limit reached")                                 \
  X(CANCELLED, -15, "operation cancelled")                                     \
  X(PERMISSION, -16, "permission denied")                                      \
  X(HAS_CHILDREN, -17, "mailbox has child mailboxes")                          \
  X(EXPUNGED, -18, "message has been expunged")                                \
  X(ENCRYPTION_REQUIRED, -19, "mechanism needs an encrypted transport")        \
  X(FATAL, -900, "fatal error boundary")                                       \
  X(NOMEM, -901, "out of memory")                                              \
  X(CALLBACK_FAILURE, -902, "a callback reported a fatal failure")             \
  X(INTERNAL, -903, "internal error")                                          \
  X(CLOSED, -904, "session is closed")

typedef enum mailproto_error {
  MAILPROTO_OK = 0,
  /** Returned by a callback or store hook that will finish later through
   * mailproto_op_complete(). Positive, so it is never mistaken for an error. */
  MAILPROTO_DEFERRED = 1,
#define MAILPROTO_ERROR_ENUM_(name, value, text) MAILPROTO_ERR_##name = value,
  MAILPROTO_ERROR_LIST(MAILPROTO_ERROR_ENUM_)
#undef MAILPROTO_ERROR_ENUM_
} mailproto_error;

/**
 * Returns a static, human-readable English text for `code` (any int; unknown
 * codes give "unknown error"). Never NULL. Thread-safe.
 */
MAILPROTO_EXTERN const char *mailproto_strerror(int code);

/** Returns 1 if `code` is a fatal error (<= MAILPROTO_ERR_FATAL), else 0. */
MAILPROTO_EXTERN int mailproto_is_fatal(int code);

/* ------------------------------------------------------------------ */
/* Allocator                                                           */
/* ------------------------------------------------------------------ */

/**
 * A replaceable allocator. Every allocation the library makes for an object
 * goes through the allocator given when the object was created (a NULL
 * allocator pointer means the C library's malloc/realloc/free), so an
 * application can use an arena per connection or count memory. The struct
 * is copied; user_data is passed back untouched.
 *
 * malloc and realloc return NULL on failure; the library then returns
 * MAILPROTO_ERR_NOMEM and leaks nothing. free(NULL) must be accepted.
 * realloc(ptr, n) with ptr == NULL must behave like malloc(n).
 */
typedef struct mailproto_allocator {
  void *(*malloc)(size_t size, void *user_data);
  void *(*realloc)(void *ptr, size_t size, void *user_data);
  void (*free)(void *ptr, void *user_data);
  void *user_data;
} mailproto_allocator;

/** The default allocator (the C library's). Never NULL. */
MAILPROTO_EXTERN const mailproto_allocator *mailproto_default_allocator(void);

/* ------------------------------------------------------------------ */
/* Operations that may finish later                                    */
/* ------------------------------------------------------------------ */

/**
 * An operation handle. The library creates one for every store hook and
 * policy callback it calls and passes it in. The callee either finishes at
 * once (returns 0 or a negative error code) or returns MAILPROTO_DEFERRED and
 * keeps the handle; it then finishes later, from outside any library
 * callback, with mailproto_op_complete(). Results are reported through the
 * hook's out-parameters and the mailproto_op_* emit functions of store.h
 * before completing. A handle stays valid until it is completed or until
 * the owner cancels it (the store's cancel hook is called; after that the
 * handle must not be touched).
 */
typedef struct mailproto_op mailproto_op;

/**
 * Finishes a deferred operation with `status` (0 or a negative
 * MAILPROTO_ERR_* code). Must not be called from inside a library callback
 * or store hook, and only once per deferred operation. The owning session
 * resumes inside this call and may call other callbacks and `send`.
 * Returns 0, or MAILPROTO_ERR_STATE if the operation was not deferred or
 * was already completed, or a fatal code the owner returned while resuming.
 */
MAILPROTO_EXTERN int mailproto_op_complete(mailproto_op *op, int status);

/**
 * From a policy callback (before it returns, or before it completes a
 * deferred answer): sets the reply the session sends for this decision
 * instead of its default. `code` is the protocol's reply code (SMTP: a
 * three-digit code; 2xx accepts, 4xx and 5xx reject); `enhanced` is an
 * RFC 3463 enhanced status code such as "5.7.1" (NULL: the session picks
 * one matching `code`); `text` is one line of human-readable text (NULL:
 * the default text). Text is copied; CR, LF and other control characters
 * in it are replaced so no caller data can forge a reply. Returns 0,
 * MAILPROTO_ERR_INVALID_ARGUMENT (a code the protocol cannot use here or a
 * malformed enhanced code), MAILPROTO_ERR_STATE (the operation does not
 * take a reply), or NOMEM.
 */
MAILPROTO_EXTERN int mailproto_op_set_reply(mailproto_op *op, int code,
                                            const char *enhanced,
                                            const char *text);

/* ------------------------------------------------------------------ */
/* SASL mechanisms (a bit mask in each protocol's config)              */
/* ------------------------------------------------------------------ */

#define MAILPROTO_SASL_PLAIN 0x1u    /**< RFC 4616 */
#define MAILPROTO_SASL_LOGIN 0x2u    /**< draft-murchison-sasl-login */
#define MAILPROTO_SASL_CRAM_MD5 0x4u /**< RFC 2195 */
#define MAILPROTO_SASL_ALL 0x7u

/* ------------------------------------------------------------------ */
/* Base64 (RFC 4648 section 4)                                         */
/* ------------------------------------------------------------------ */

/** Bytes needed to base64-encode `len` bytes (no terminating NUL), or 0 on
 * overflow (only possible for absurd lengths). */
MAILPROTO_EXTERN size_t mailproto_base64_encoded_len(size_t len);

/**
 * Encodes `in` into `out` (padded, no line breaks). `out_size` must be at
 * least mailproto_base64_encoded_len(in_len). Returns the number of bytes
 * written, or MAILPROTO_ERR_BUFFER_FULL. Does not NUL-terminate.
 */
MAILPROTO_EXTERN long mailproto_base64_encode(const void *in, size_t in_len,
                                              char *out, size_t out_size);

/**
 * Decodes strict RFC 4648 base64 (padding required, no whitespace, no
 * characters outside the alphabet, zero pad bits). Returns the number of
 * bytes written to `out`, MAILPROTO_ERR_SYNTAX for malformed input, or
 * MAILPROTO_ERR_BUFFER_FULL if `out_size` (at least in_len / 4 * 3 is
 * always enough) is too small.
 */
MAILPROTO_EXTERN long mailproto_base64_decode(const char *in, size_t in_len,
                                              void *out, size_t out_size);

/* ------------------------------------------------------------------ */
/* Dates                                                               */
/* ------------------------------------------------------------------ */

/** A point in time with the zone it was written in. */
typedef struct mailproto_datetime {
  int64_t utc;        /**< seconds since 1970-01-01T00:00:00Z */
  int32_t tz_minutes; /**< the zone's offset east of UTC, -1439..1439 */
} mailproto_datetime;

/** Size of a buffer that holds any formatted date with its NUL. */
#define MAILPROTO_DATE_BUFSIZE 40

/**
 * Parses an RFC 5322 date-time (section 3.3), also accepting the obsolete
 * syntax of section 4.3 (two- and three-digit years, named zones, comments
 * and folding whitespace, missing seconds or weekday). An inconsistent
 * weekday is ignored, as RFC 5322 3.3 lets a receiver do. Returns 0, or
 * MAILPROTO_ERR_SYNTAX. Reads exactly `len` bytes; needs no NUL.
 */
MAILPROTO_EXTERN int mailproto_date_parse_rfc5322(const char *s, size_t len,
                                                  mailproto_datetime *out);

/** Formats "Thu, 26 Nov 2026 14:05:07 +0000". Returns the length written
 * (without NUL) or MAILPROTO_ERR_BUFFER_FULL / MAILPROTO_ERR_INVALID_ARGUMENT. */
MAILPROTO_EXTERN int mailproto_date_format_rfc5322(const mailproto_datetime *dt,
                                                   char *out, size_t out_size);

/**
 * Parses an IMAP date-time (RFC 3501 section 9, "date-time"): the quoted form
 * without its quotes, "26-Nov-2026 14:05:07 +0000" (the day may be padded
 * with a space). Returns 0 or MAILPROTO_ERR_SYNTAX.
 */
MAILPROTO_EXTERN int mailproto_date_parse_imap(const char *s, size_t len,
                                               mailproto_datetime *out);

/** Formats an IMAP date-time, " 6-Nov-2026 14:05:07 +0000" (space-padded day,
 * as INTERNALDATE is sent). Same returns as mailproto_date_format_rfc5322. */
MAILPROTO_EXTERN int mailproto_date_format_imap(const mailproto_datetime *dt,
                                                char *out, size_t out_size);

/**
 * Parses an IMAP search date (RFC 3501 "date": "1-Feb-1994", optionally in
 * double quotes). Sets `out->utc` to midnight UTC of that day and
 * `out->tz_minutes` to 0. Returns 0 or MAILPROTO_ERR_SYNTAX.
 */
MAILPROTO_EXTERN int mailproto_date_parse_imap_day(const char *s, size_t len,
                                                   mailproto_datetime *out);

/* ------------------------------------------------------------------ */
/* IMAP modified UTF-7 (RFC 3501 section 5.1.3)                        */
/* ------------------------------------------------------------------ */

/**
 * Converts a modified UTF-7 mailbox name to UTF-8. Rejects what RFC 3501
 * 5.1.3 forbids: printable ASCII encoded in base64, "&" not written "&-",
 * unterminated or non-minimal shifts, non-zero pad bits, bad surrogates,
 * bytes outside 0x20..0x7e. Writes a NUL after the result. Returns the
 * length (without NUL), MAILPROTO_ERR_SYNTAX, or MAILPROTO_ERR_BUFFER_FULL.
 */
MAILPROTO_EXTERN long mailproto_mutf7_to_utf8(const char *in, size_t in_len,
                                              char *out, size_t out_size);

/**
 * Converts UTF-8 to modified UTF-7. Rejects invalid UTF-8 (overlong forms,
 * surrogates, values above U+10FFFF) and control characters. Writes a NUL
 * after the result. Returns the length (without NUL), MAILPROTO_ERR_SYNTAX,
 * or MAILPROTO_ERR_BUFFER_FULL.
 */
MAILPROTO_EXTERN long mailproto_utf8_to_mutf7(const char *in, size_t in_len,
                                              char *out, size_t out_size);

#ifdef __cplusplus
}
#endif

#endif /* MAILPROTO_CORE_H */
