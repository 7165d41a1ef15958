/*
 * smtp_to_pop3: two sessions over one store, and no network at all.
 *
 * A scripted client hands a message to an SMTP session; a POP3 session on
 * the same in-memory store then downloads and deletes it. Every line either
 * side "sends" is printed, so the output reads like a transcript:
 *
 *   $ ./smtp_to_pop3
 *   smtp S: 220 demo.example ESMTP ready
 *   smtp C: EHLO client.example
 *   ...
 *
 * A session is bytes in (feed) and bytes out (the send callback); whether
 * those bytes travel over TCP, TLS or a function call is the application's
 * business.
 */
#include <stdio.h>
#include <string.h>

#include "mailproto/mailproto.h"

/* Prints what a session sends, prefixed per line. */
static void print_lines(const char *who, const uint8_t *data, size_t len) {
  static int at_line_start = 1;
  for (size_t i = 0; i < len; i++) {
    if (at_line_start)
      printf("%s S: ", who);
    at_line_start = data[i] == '\n';
    if (data[i] != '\r')
      putchar(data[i]);
  }
}

static ptrdiff_t smtp_send(mailproto_smtp *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  (void)user_data;
  print_lines("smtp", data, len);
  return (ptrdiff_t)len; /* took it all */
}

static ptrdiff_t pop3_send(mailproto_pop3 *s, const uint8_t *data, size_t len,
                           void *user_data) {
  (void)s;
  (void)user_data;
  print_lines("pop3", data, len);
  return (ptrdiff_t)len;
}

/* Feeds one client line and prints it. The memory store never defers and
 * our send takes everything, so the session consumes the whole line. */
typedef ptrdiff_t (*feed_fn)(void *session, const char *line);

static ptrdiff_t feed_smtp(void *s, const char *line) {
  return mailproto_smtp_feed(s, (const uint8_t *)line, strlen(line));
}

static ptrdiff_t feed_pop3(void *s, const char *line) {
  return mailproto_pop3_feed(s, (const uint8_t *)line, strlen(line));
}

static int run_script(const char *who, void *session, feed_fn feed,
                      const char *const *script) {
  for (size_t i = 0; script[i]; i++) {
    for (const char *p = script[i]; *p; p += strcspn(p, "\n") + 1)
      printf("%s C: %.*s\n", who, (int)strcspn(p, "\r"), p);
    if (feed(session, script[i]) != (ptrdiff_t)strlen(script[i]))
      return -1;
  }
  return 0;
}

static const char *const smtp_script[] = {
    "EHLO client.example\r\n",
    "MAIL FROM:<bob@example.org>\r\n",
    "RCPT TO:<alice@example.org>\r\n",
    "DATA\r\n",
    "Subject: hello\r\n\r\nHi Alice!\r\n.\r\n",
    "QUIT\r\n",
    NULL};

static const char *const pop3_script[] = {
    "USER alice\r\n", "PASS secret\r\n", "STAT\r\n", "RETR 1\r\n",
    "DELE 1\r\n",     "QUIT\r\n",        NULL};

int main(void) {
  mailproto_memstore *mem;
  mailproto_store store;
  if (mailproto_memstore_new(NULL, &mem) != 0 ||
      mailproto_memstore_add_user(mem, "alice", "secret") != 0)
    return 1;
  mailproto_memstore_store(mem, &store);
  int status = 1;

  /* SMTP: deliver one message to alice. */
  mailproto_smtp_config sc;
  mailproto_smtp_config_init(&sc, sizeof sc);
  sc.hostname = "demo.example";
  mailproto_smtp_callbacks scb;
  mailproto_smtp_callbacks_init(&scb, sizeof scb);
  scb.send = smtp_send;
  mailproto_smtp *smtp;
  if (mailproto_smtp_new(&sc, &scb, &store, NULL, &smtp) != 0)
    goto out;
  int rc = mailproto_smtp_start(smtp);
  if (rc == 0)
    rc = run_script("smtp", smtp, feed_smtp, smtp_script);
  mailproto_smtp_free(smtp);
  if (rc != 0)
    goto out;

  /* POP3: download and delete it. Plaintext USER/PASS needs TLS or an
   * explicit opt-in; a function call is as private as it gets. */
  mailproto_pop3_config pc;
  mailproto_pop3_config_init(&pc, sizeof pc);
  pc.hostname = "demo.example";
  pc.allow_insecure_auth = 1;
  mailproto_pop3_callbacks pcb;
  mailproto_pop3_callbacks_init(&pcb, sizeof pcb);
  pcb.send = pop3_send;
  mailproto_pop3 *pop3;
  if (mailproto_pop3_new(&pc, &pcb, &store, NULL, &pop3) != 0)
    goto out;
  rc = mailproto_pop3_start(pop3);
  if (rc == 0)
    rc = run_script("pop3", pop3, feed_pop3, pop3_script);
  /* QUIT committed the deletion before its +OK (RFC 1939 section 6). */
  if (rc == 0 && mailproto_pop3_closed(pop3))
    status = 0;
  mailproto_pop3_free(pop3);

out:
  mailproto_memstore_free(mem);
  return status;
}
