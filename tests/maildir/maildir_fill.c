/*
 * maildir_fill ROOT USER: writes a small Maildir through the Maildir store
 * (APPEND with flags and keywords, flag changes, a delivery, folders with
 * hierarchy and a non-ASCII name, subscriptions), then prints what another
 * program reading ROOT/USER must find, one line per message:
 *   <mailbox as Dovecot names it>\t<subject>\t<flags, sorted>\t<RFC822.SIZE>
 * followed by "subscribed\t<name>" lines. interop_dovecot.sh compares this
 * with what Dovecot's doveadm reads from the same directory.
 *
 * maildir_fill --dump ROOT USER prints the same lines as the store reads the
 * Maildir now (after another program changed it), each with the message's
 * UID as a fifth field.
 *
 * It calls the store's hooks as the protocol sessions do (through the
 * library's internal store_call wrappers, which need an operation handle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/maildir.h"
#include "store/store_call.h"

static mailproto_store st;
static mailproto_op op;
static void *account;

static void check(int rc, const char *what) {
  if (rc != 0) {
    fprintf(stderr, "maildir_fill: %s: %s\n", what, mailproto_strerror(rc));
    exit(1);
  }
}

static mailproto_op *fresh(void) {
  static const mailproto_op_sink sink = {0};
  mailproto_op_init(&op, &sink, NULL);
  return &op;
}

/* RFC822.SIZE: every bare LF counts as CRLF. */
static unsigned long vsize(const char *text) {
  unsigned long n = 0;
  for (const char *p = text; *p; p++)
    n += 1 + (*p == '\n' && (p == text || p[-1] != '\r'));
  return n;
}

static uint32_t append(const char *box, const char *text, uint32_t flags,
                       const char *const *kw, size_t nkw) {
  mailproto_append_info info = {sizeof info, flags, kw, nkw, NULL, 0};
  void *w = NULL;
  uint32_t uv, uid;
  check(mailproto_store_call_append_begin(&st, fresh(), 0, account, box, &info,
                                          &w),
        "append");
  check(mailproto_store_call_write(&st, fresh(), 0, w, (const uint8_t *)text,
                                   strlen(text)),
        "write");
  check(mailproto_store_call_append_commit(&st, fresh(), 0, w, &uv, &uid),
        "commit");
  return uid;
}

/* ---- --dump ---- */

typedef struct seen {
  char names[32][128];
  size_t boxes;
  mailproto_message_info msgs[64];
  size_t count;
  char kw[64][64];
} seen;

static int on_mailbox(mailproto_op *o, const mailproto_mailbox_info *mb) {
  seen *v = o->owner;
  if (v->boxes < 32 && !(mb->attributes & MAILPROTO_MBOX_NOSELECT))
    snprintf(v->names[v->boxes++], sizeof v->names[0], "%s", mb->name);
  return 0;
}

static int on_message(mailproto_op *o, const mailproto_message_info *msg) {
  seen *v = o->owner;
  if (v->count < 64)
    v->msgs[v->count++] = *msg;
  return 0;
}

static int on_keyword(mailproto_op *o, unsigned index, const char *name) {
  seen *v = o->owner;
  if (index < 64)
    snprintf(v->kw[index], sizeof v->kw[0], "%s", name);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "<flags sorted>" as Dovecot prints them, without \Recent. */
static void flag_text(const seen *v, const mailproto_message_info *msg,
                      char *out, size_t size) {
  static const struct {
    uint32_t bit;
    const char *name;
  } sys[] = {{MAILPROTO_FLAG_ANSWERED, "\\Answered"},
             {MAILPROTO_FLAG_DELETED, "\\Deleted"},
             {MAILPROTO_FLAG_DRAFT, "\\Draft"},
             {MAILPROTO_FLAG_FLAGGED, "\\Flagged"},
             {MAILPROTO_FLAG_SEEN, "\\Seen"}};
  const char *names[80];
  size_t n = 0;
  for (unsigned i = 0; i < 64; i++)
    if (msg->keywords >> i & 1u)
      names[n++] = v->kw[i];
  for (size_t i = 0; i < 5; i++)
    if (msg->flags & sys[i].bit)
      names[n++] = sys[i].name;
  qsort(names, n, sizeof *names, cmp_str);
  out[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(out);
    snprintf(out + len, size - len, "%s%s", i ? " " : "", names[i]);
  }
}

static int dump(const char *root, const char *user) {
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = root;
  mailproto_maildir *m = NULL;
  check(mailproto_maildir_new(&cfg, &m), "new");
  check(mailproto_maildir_add_user(m, user, "pass"), "add_user");
  mailproto_maildir_store(m, &st);
  check(mailproto_store_call_authenticate(&st, fresh(), 0, "", user, "pass", 4,
                                          &account),
        "authenticate");
  static const mailproto_op_sink sink = {
      .mailbox = on_mailbox, .message = on_message, .keyword = on_keyword};
  static seen v;
  mailproto_op_init(&op, &sink, &v);
  check(mailproto_store_call_list(&st, &op, 0, account, "*", 0), "list");
  for (size_t b = 0; b < v.boxes; b++) {
    void *h = NULL;
    mailproto_mailbox_status status;
    v.count = 0;
    memset(v.kw, 0, sizeof v.kw);
    mailproto_op_init(&op, &sink, &v);
    check(mailproto_store_call_open(&st, &op, 0, account, v.names[b],
                                    MAILPROTO_OPEN_READONLY, NULL, NULL, &h,
                                    &status),
          "open");
    char box[128];
    snprintf(box, sizeof box, "%s", v.names[b]);
    for (char *p = box; *p; p++)
      if (*p == '/')
        *p = '.';
    for (size_t i = 0; i < v.count; i++) {
      const mailproto_message_info *msg = &v.msgs[i];
      char text[512], flags[512];
      size_t len = 0;
      for (;;) {
        const uint8_t *data;
        size_t got = 0;
        check(mailproto_store_call_read(&st, fresh(), 0, h, msg->uid, len,
                                        sizeof text - 1 - len, &data, &got),
              "read");
        if (got == 0)
          break;
        memcpy(text + len, data, got);
        len += got;
      }
      text[len] = '\0';
      const char *subject = strstr(text, "Subject: ");
      size_t sl = subject ? strcspn(subject + 9, "\r\n") : 0;
      flag_text(&v, msg, flags, sizeof flags);
      printf("%s\t%.*s\t%s\t%llu\t%lu\n", box, (int)sl,
             subject ? subject + 9 : "", flags, (unsigned long long)msg->size,
             (unsigned long)msg->uid);
    }
    mailproto_store_call_close(&st, h);
  }
  mailproto_store_call_release_account(&st, account);
  mailproto_maildir_free(m);
  return 0;
}

static void expect(const char *dovecot_box, const char *subject,
                   const char *flags, const char *text) {
  printf("%s\t%s\t%s\t%lu\n", dovecot_box, subject, flags, vsize(text));
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--dump") == 0)
    return dump(argv[2], argv[3]);
  if (argc != 3) {
    fprintf(stderr, "usage: %s [--dump] ROOT USER\n", argv[0]);
    return 2;
  }
  mailproto_maildir_config cfg;
  mailproto_maildir_config_init(&cfg, sizeof cfg);
  cfg.root = argv[1];
  mailproto_maildir *m = NULL;
  check(mailproto_maildir_new(&cfg, &m), "new");
  check(mailproto_maildir_add_user(m, argv[2], "pass"), "add_user");
  mailproto_maildir_store(m, &st);
  check(mailproto_store_call_authenticate(&st, fresh(), 0, "", argv[2], "pass",
                                          4, &account),
        "authenticate");

  static const char t1[] = "Subject: plain\r\n\r\nno flags\r\n";
  static const char t2[] = "Subject: seen-flagged\r\n\r\nset later\r\n";
  static const char t3[] = "Subject: answered-label\r\n\r\nkeyword\r\n";
  static const char t4[] = "Subject: draft-two-keywords\n\nbare LF lines\n";
  static const char t5[] = "Subject: deleted\r\n\r\ngoing\r\n";
  static const char t6[] = "Subject: delivered\r\n\r\nvia SMTP\r\n";
  static const char t7[] = "Subject: report\r\n\r\nQ3\r\n";
  static const char t8[] = "Subject: utf8-folder\r\n\r\nEntwurf\r\n";
  const char *label[] = {"$Label1"}, *two[] = {"Work", "$Label1"};
  const char *quarter[] = {"Quarterly"};

  append("INBOX", t1, 0, NULL, 0);
  uint32_t u2 = append("INBOX", t2, 0, NULL, 0);
  append("INBOX", t3, MAILPROTO_FLAG_ANSWERED, label, 1);
  append("INBOX", t4, MAILPROTO_FLAG_DRAFT, two, 2);
  append("INBOX", t5, MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_DELETED, NULL, 0);

  /* A flag change renames the file. */
  void *h = NULL;
  mailproto_mailbox_status status;
  check(mailproto_store_call_open(&st, fresh(), 0, account, "INBOX", 0, NULL,
                                  NULL, &h, &status),
        "open");
  mailproto_uid_range r = {u2, u2};
  check(mailproto_store_call_set_flags(
            &st, fresh(), 0, h, &r, 1, MAILPROTO_FLAGS_ADD,
            MAILPROTO_FLAG_SEEN | MAILPROTO_FLAG_FLAGGED, NULL, 0, 0),
        "set_flags");
  mailproto_store_call_close(&st, h);

  /* A delivery stays in new/ until a session opens INBOX. */
  void *to[1] = {account};
  int results[1];
  void *w = NULL;
  check(mailproto_store_call_deliver_begin(&st, fresh(), 0, to, 1, NULL, &w),
        "deliver");
  check(mailproto_store_call_write(&st, fresh(), 0, w, (const uint8_t *)t6,
                                   strlen(t6)),
        "write");
  check(mailproto_store_call_deliver_commit(&st, fresh(), 0, w, 1, results, 1),
        "deliver_commit");
  check(results[0], "delivery");

  check(
      mailproto_store_call_create(&st, fresh(), 0, account, "Work/Reports", 0),
      "create");
  check(mailproto_store_call_create(&st, fresh(), 0, account, "Entw\xc3\xbcrfe",
                                    0),
        "create");
  append("Work/Reports", t7, MAILPROTO_FLAG_SEEN, quarter, 1);
  append("Entw\xc3\xbcrfe", t8, MAILPROTO_FLAG_DRAFT, NULL, 0);
  check(mailproto_store_call_subscribe(&st, fresh(), 0, account, "Work/Reports",
                                       1),
        "subscribe");
  check(mailproto_store_call_subscribe(&st, fresh(), 0, account, "INBOX", 1),
        "subscribe");
  mailproto_store_call_release_account(&st, account);
  mailproto_maildir_free(m);

  /* Dovecot's view: Maildir++ separator '.', flags as IMAP names. */
  expect("INBOX", "plain", "", t1);
  expect("INBOX", "seen-flagged", "\\Flagged \\Seen", t2);
  expect("INBOX", "answered-label", "$Label1 \\Answered", t3);
  expect("INBOX", "draft-two-keywords", "$Label1 Work \\Draft", t4);
  expect("INBOX", "deleted", "\\Deleted \\Seen", t5);
  expect("INBOX", "delivered", "", t6);
  expect("Work.Reports", "report", "Quarterly \\Seen", t7);
  expect("Entw\xc3\xbcrfe", "utf8-folder", "\\Draft", t8);
  printf("subscribed\tINBOX\nsubscribed\tWork.Reports\n");
  return 0;
}
