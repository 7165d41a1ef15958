#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void log_vline(const char *fmt, va_list ap) {
  char line[LOG_LINE_MAX + 2];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
  int k = snprintf(line + n, sizeof line - n,
                   ".%03ldZ mailproto-server: ", ts.tv_nsec / 1000000);
  if (k > 0)
    n += (size_t)k;
  if (n < LOG_LINE_MAX) {
    int m = vsnprintf(line + n, LOG_LINE_MAX - n, fmt, ap);
    if (m > 0 && (size_t)m >= LOG_LINE_MAX - n) {
      n = LOG_LINE_MAX - 1;
      memcpy(line + n - 3, "...", 3);
    } else if (m > 0) {
      n += (size_t)m;
    }
  }
  line[n++] = '\n';
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(STDERR_FILENO, line + off, n - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      break;
    off += (size_t)w;
  }
}

void log_line(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_vline(fmt, ap);
  va_end(ap);
}

char *log_clean(char *out, size_t size, const char *in, size_t len) {
  static const char hex[] = "0123456789abcdef";
  if (size == 0)
    return out;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)in[i];
    size_t need = (c >= 0x20 && c < 0x7f && c != '\\') ? 1 : 4;
    if (o + need + 4 > size) { /* keep room for "..." and the NUL */
      if (size >= 4) {
        o = o + 4 > size ? size - 4 : o;
        memcpy(out + o, "...", 3);
        o += 3;
      }
      break;
    }
    if (need == 1) {
      out[o++] = (char)c;
    } else {
      out[o++] = '\\';
      out[o++] = 'x';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    }
  }
  out[o < size ? o : size - 1] = '\0';
  return out;
}
