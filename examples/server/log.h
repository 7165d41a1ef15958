/*
 * One line per event on stderr, each written with a single write(2) so
 * lines never interleave: "2026-11-26T14:05:07.123Z mailproto-server: ...".
 */
#ifndef MAILPROTO_SERVER_LOG_H
#define MAILPROTO_SERVER_LOG_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define LOG_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define LOG_PRINTF(fmt, args)
#endif

/* Longest line written; longer ones are cut and end in "...". */
#define LOG_LINE_MAX 1024

void log_line(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_vline(const char *fmt, va_list ap) LOG_PRINTF(1, 0);

/*
 * Copies `len` bytes of untrusted text for a log line: printable ASCII
 * stays, everything else becomes \xNN (CR and LF included), so a client
 * can never forge or split a log line. Always NUL-terminates; cuts at
 * `size` and ends the cut text in "...". Returns `out`.
 */
char *log_clean(char *out, size_t size, const char *in, size_t len);

#endif
