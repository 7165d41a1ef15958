/*
 * smtp_stdio: the smallest useful embedding of libmailproto.
 *
 * One SMTP session talks on stdin/stdout. Mail goes into an in-memory store
 * that has one user, "alice" (any domain), and each message is printed on
 * stderr exactly as it is stored. Type at it, or pipe a script in:
 *
 *   printf '%s\n' 'EHLO me' 'MAIL FROM:<bob@example.org>' \
 *     'RCPT TO:<alice@example.org>' DATA 'Subject: hi' '' 'Hello' . QUIT |
 *     ./smtp_stdio
 *
 * What it shows: the library never touches I/O. We read bytes, feed them to
 * the session, and write whatever its send callback hands us.
 */
#define _POSIX_C_SOURCE 200809L /* read() */

#include <stdio.h>
#include <unistd.h>

#include "mailproto/mailproto.h"

/* The session's output. stdout blocks until written, so we always take
 * every byte; a socket program would take what write() took (see
 * examples/server/conn.c). */
static ptrdiff_t on_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                         void *user_data) {
  (void)s;
  (void)user_data;
  if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
    return MAILPROTO_ERR_CALLBACK_FAILURE; /* ends the session */
  return (ptrdiff_t)len;
}

/* The message as stored (Received: header added, dots unstuffed), chunk by
 * chunk: it is never held whole in memory. */
static void on_body(mailproto_smtp *s, const uint8_t *data, size_t len,
                    void *user_data) {
  (void)s;
  (void)user_data;
  fwrite(data, 1, len, stderr);
}

/* The message is complete; returning 0 lets the store commit it. */
static int on_message(mailproto_smtp *s, mailproto_op *op,
                      const mailproto_smtp_message *msg, void *user_data) {
  (void)s;
  (void)op;
  (void)user_data;
  fprintf(stderr, "---- stored %llu bytes for %zu recipient(s) ----\n",
          (unsigned long long)msg->size, msg->recipient_count);
  return 0;
}

int main(void) {
  /* 1. A store, with a user to deliver to. */
  mailproto_memstore *mem;
  mailproto_store store;
  if (mailproto_memstore_new(NULL, &mem) != 0 ||
      mailproto_memstore_add_user(mem, "alice", "secret") != 0)
    return 1;
  mailproto_memstore_store(mem, &store);

  /* 2. A session: configuration and callbacks are copied into it. */
  mailproto_smtp_config cfg;
  mailproto_smtp_config_init(&cfg, sizeof cfg);
  cfg.hostname = "demo.example";
  mailproto_smtp_callbacks cb;
  mailproto_smtp_callbacks_init(&cb, sizeof cb);
  cb.send = on_send;
  cb.body = on_body;
  cb.message = on_message;
  mailproto_smtp *s;
  if (mailproto_smtp_new(&cfg, &cb, &store, NULL, &s) != 0) {
    mailproto_memstore_free(mem);
    return 1;
  }

  /* 3. The greeting, then bytes in until QUIT or the end of input. */
  int status = mailproto_smtp_start(s) == 0 ? 0 : 1;
  uint8_t in[4096], line[2 * sizeof in];
  int prev_cr = 0;
  while (status == 0 && !mailproto_smtp_closed(s)) {
    ssize_t n = read(STDIN_FILENO, in, sizeof in);
    if (n <= 0)
      break;
    /* SMTP lines end in CRLF (RFC 5321 2.3.8); a terminal sends LF. */
    size_t len = 0;
    for (ssize_t i = 0; i < n; i++) {
      if (in[i] == '\n' && !prev_cr)
        line[len++] = '\r';
      prev_cr = in[i] == '\r';
      line[len++] = in[i];
    }
    /* The session may stop consuming (after QUIT); it never defers here:
     * the memory store answers at once. */
    size_t off = 0;
    while (off < len && !mailproto_smtp_closed(s)) {
      ptrdiff_t used = mailproto_smtp_feed(s, line + off, len - off);
      if (used < 0) {
        fprintf(stderr, "session: %s\n", mailproto_strerror((int)used));
        status = 1;
        break;
      }
      if (used == 0)
        break;
      off += (size_t)used;
    }
  }

  /* 4. Free the session before the store it uses. */
  mailproto_smtp_free(s);
  mailproto_memstore_free(mem);
  return status;
}
