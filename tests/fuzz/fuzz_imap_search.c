/*
 * Fuzzes SEARCH, SORT and THREAD evaluation (the key parser itself is
 * covered by fuzz_imap_parser): a session logs in and selects a small
 * fixed mailbox (multipart, base64, quoted-printable, 8-bit, RFC 2047
 * words, References chains and cycles, bare LF, no header end), then
 * every input line becomes one command. The first 2 bytes choose:
 *   0  bit 0 defer every store op, bit 1 ENABLE IMAP4rev2 first,
 *      bits 2-3 the command (SEARCH, UID SEARCH, SORT, THREAD; SORT
 *      and THREAD lines carry their own criteria / algorithm),
 *      bit 4 fail store ops at random, bit 5 a tiny output watermark,
 *      bit 6 FETCH BODYSTRUCTURE first (the trees go to the store's
 *      cache, and the commands take their fields from there)
 *   1  input chunk size (0: whole lines), and the random seed
 * Checks: no crash, no leak, the session reaches quiescence.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/imap.h"
#include "mailproto/memstore.h"
#include "store/store_call.h"
#include "support/faultstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADER 2
#define MAX_TURNS 100000
#define MAX_LINE 4000

static ptrdiff_t h_send(mailproto_imap *s, const uint8_t *data, size_t len,
                        void *user_data) {
  (void)s;
  (void)data;
  (void)user_data;
  return (ptrdiff_t)len;
}

static const mailproto_op_sink quiet = {0};

static void add_message(mailproto_memstore *ms, const char *text,
                        uint32_t flags) {
  mailproto_store st;
  mailproto_op op;
  void *account = NULL, *writer = NULL;
  uint32_t v, u;
  size_t len = strlen(text);
  mailproto_memstore_store(ms, &st);
  mailproto_op_init(&op, &quiet, NULL);
  if (mailproto_store_call_lookup_recipient(&st, &op, 0, "alice", &account))
    abort();
  mailproto_append_info info;
  memset(&info, 0, sizeof info);
  info.struct_size = sizeof info;
  info.flags = flags;
  int rc = mailproto_store_call_append_begin(&st, &op, 0, account, "INBOX",
                                             &info, &writer);
  if (rc == 0 && len)
    rc = mailproto_store_call_write(&st, &op, 0, writer, (const uint8_t *)text,
                                    len);
  if (rc == 0)
    rc = mailproto_store_call_append_commit(&st, &op, 0, writer, &v, &u);
  mailproto_store_call_release_account(&st, account);
  if (rc != 0)
    abort();
}

static const char *const messages[] = {
    "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n"
    "Subject: =?UTF-8?B?R3LDvMOfZQ==?= hello\r\nDate: Mon, 2 Feb 2026 "
    "10:00:00 +0100\r\nMessage-ID: <1@x>\r\n\r\nPlain needle body\r\n",
    "From: =?ISO-8859-1?Q?Andr=E9?= <a@x>\r\nSubject: Re: [list] hello\r\n"
    "Message-ID: <2@x>\r\nIn-Reply-To: <1@x>\r\nContent-Type: multipart/"
    "alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; "
    "charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    "caf=C3=A9=\r\n au lait\r\n--b\r\nContent-Type: text/html\r\n"
    "Content-Transfer-Encoding: "
    "base64\r\n\r\nPHA+bmVlZGxlPC9wPg==\r\n--b--\r\n",
    "Subject: lf only\nReferences: <3@x> <2@x>\nMessage-ID: "
    "<3@x>\n\nna\xefve\n",
    "Subject: Fwd: [fwd: hello] (fwd)\r\nReferences: <9@x>\r\n"
    "Message-ID: <9@x>\r\nContent-Type: message/rfc822\r\n\r\n"
    "Subject: inner\r\n\r\ninner needle\r\n",
    "no header end",
    "",
    "Subject: =?bogus?Q?x?= =?UTF-8?B?====?=\r\nDate: garbage\r\n\r\n\r\n",
};

/* The command for one input line. */
static size_t command(char *out, size_t cap, unsigned n, int kind,
                      const uint8_t *line, size_t len) {
  static const char *const names[] = {"SEARCH", "UID SEARCH", "SORT", "THREAD"};
  int k = snprintf(out, cap, "t%u %s ", n, names[kind]);
  if (k < 0 || (size_t)k >= cap)
    return 0;
  size_t used = (size_t)k;
  if (len > cap - used - 2)
    len = cap - used - 2;
  memcpy(out + used, line, len);
  used += len;
  out[used++] = '\r';
  out[used++] = '\n';
  return used;
}

static void run(const uint8_t *cfg, const uint8_t *in, size_t len,
                faultstore *fault, const mailproto_store *store) {
  mailproto_imap_config c;
  mailproto_imap_config_init(&c, sizeof c);
  c.allow_insecure_auth = 1;
  if (cfg[0] & 0x20)
    c.output_watermark = 64;
  mailproto_imap_callbacks cb;
  mailproto_imap_callbacks_init(&cb, sizeof cb);
  cb.send = h_send;
  mailproto_imap *s;
  if (mailproto_imap_new(&c, &cb, store, NULL, &s) != 0)
    abort();
  /* The script: prologue, then one command per input line. */
  size_t cap = 256 + len * 2 + 64 * (len / 4 + 1);
  char *script = malloc(cap);
  if (!script)
    abort();
  size_t slen = 0;
  slen += (size_t)sprintf(script,
                          "a LOGIN alice secret\r\n%s"
                          "b SELECT INBOX\r\n%s",
                          cfg[0] & 2 ? "e ENABLE IMAP4rev2\r\n" : "",
                          cfg[0] & 0x40 ? "c FETCH 1:* BODYSTRUCTURE\r\n" : "");
  int kind = (cfg[0] >> 2) & 3;
  unsigned n = 0;
  for (size_t i = 0; i < len;) {
    const uint8_t *nl = memchr(in + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - in) : len;
    size_t l = end - i;
    if (l > MAX_LINE)
      l = MAX_LINE;
    slen += command(script + slen, cap - slen, n++, kind, in + i, l);
    i = end + 1;
  }
  size_t chunk = cfg[1];
  uint32_t seed = 0x9e3779b9u ^ cfg[1];
  int rc = mailproto_imap_start(s);
  size_t pos = 0;
  for (int turn = 0; rc >= 0 && turn < MAX_TURNS; turn++) {
    int progress = 0;
    int done = faultstore_run_pending(fault);
    if (done < 0)
      break;
    progress |= done > 0;
    if (mailproto_imap_want_read(s) && pos < slen) {
      size_t k = chunk;
      if (k == 0) {
        seed = seed * 1664525u + 1013904223u;
        k = 1 + (seed >> 24);
      }
      if (k > slen - pos)
        k = slen - pos;
      ptrdiff_t used = mailproto_imap_feed(s, (const uint8_t *)script + pos, k);
      if (used < 0)
        break;
      pos += (size_t)used;
      progress |= used > 0;
    }
    if (mailproto_imap_want_write(s)) {
      if (mailproto_imap_writable(s) < 0)
        break;
      progress = 1;
    }
    if (!progress && faultstore_pending(fault) == 0 &&
        !mailproto_imap_want_write(s))
      break;
  }
  mailproto_imap_free(s);
  free(script);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < HEADER)
    return 0;
  mailproto_memstore *ms;
  if (mailproto_memstore_new(NULL, &ms) != 0 ||
      mailproto_memstore_add_user(ms, "alice", "secret") != 0)
    abort();
  for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++)
    add_message(ms, messages[i], (uint32_t)i & MAILPROTO_FLAGS_SETTABLE);
  mailproto_store inner, outer;
  mailproto_memstore_store(ms, &inner);
  faultstore *fault;
  if (faultstore_new(&inner, NULL, &fault) != 0)
    abort();
  faultstore_store(fault, &outer);
  faultstore_defer_all(fault, data[0] & 1);
  if (data[0] & 0x10)
    faultstore_fail_random(fault, data[1], 10, MAILPROTO_ERR_IO);
  run(data, data + HEADER, size - HEADER, fault, &outer);
  faultstore_free(fault);
  mailproto_memstore_free(ms);
  return 0;
}
