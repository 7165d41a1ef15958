/* Error codes, strerror and the version query. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/op.h"
#include "mailproto/mailproto.h"
#include "suites.h"

/* The op handle: completion rules and policy replies. */
typedef struct reply_seen {
  int code;
  char enhanced[16];
  char text[64];
  int completed;
  int status;
} reply_seen;

static int record_reply(mailproto_op *op, int code, const char *enhanced,
                        const char *text) {
  reply_seen *r = op->owner;
  r->code = code;
  snprintf(r->enhanced, sizeof r->enhanced, "%s", enhanced ? enhanced : "");
  snprintf(r->text, sizeof r->text, "%s", text ? text : "");
  return 0;
}

static int record_complete(mailproto_op *op, int status) {
  reply_seen *r = op->owner;
  r->completed++;
  r->status = status;
  return 0;
}

static const mailproto_op_sink reply_sink = {.complete = record_complete,
                                             .reply = record_reply};

START_TEST(test_op_complete_only_when_deferred) {
  reply_seen r = {0};
  mailproto_op op;
  mailproto_op_init(&op, &reply_sink, &r);
  ck_assert_int_eq(mailproto_op_complete(&op, 0), MAILPROTO_ERR_STATE);
  mailproto_op_begin(&op, 1);
  /* From inside the hook: refused, the hook must return first. */
  ck_assert_int_eq(mailproto_op_complete(&op, 0), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_op_end(&op, MAILPROTO_DEFERRED),
                   MAILPROTO_DEFERRED);
  ck_assert(mailproto_op_pending(&op));
  ck_assert_int_eq(mailproto_op_complete(&op, MAILPROTO_ERR_IO), 0);
  ck_assert_int_eq(r.completed, 1);
  ck_assert_int_eq(r.status, MAILPROTO_ERR_IO);
  /* Twice is a caller bug, refused without a second callback. */
  ck_assert_int_eq(mailproto_op_complete(&op, 0), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(r.completed, 1);
  ck_assert_int_eq(mailproto_op_complete(NULL, 0), MAILPROTO_ERR_STATE);
}
END_TEST

START_TEST(test_op_set_reply_checks_shape) {
  reply_seen r = {0};
  mailproto_op op;
  mailproto_op_init(&op, &reply_sink, &r);
  /* Not while idle. */
  ck_assert_int_eq(mailproto_op_set_reply(&op, 550, "5.7.1", "no"),
                   MAILPROTO_ERR_STATE);
  mailproto_op_begin(&op, 1);
  ck_assert_int_eq(mailproto_op_set_reply(&op, 550, "5.7.1", "go away"), 0);
  ck_assert_int_eq(r.code, 550);
  ck_assert_str_eq(r.enhanced, "5.7.1");
  ck_assert_str_eq(r.text, "go away");
  ck_assert_int_eq(mailproto_op_set_reply(&op, 451, NULL, NULL), 0);
  ck_assert_int_eq(mailproto_op_set_reply(&op, 199, NULL, "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_op_set_reply(&op, 600, NULL, "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  /* The enhanced code's class must agree with the reply code. */
  ck_assert_int_eq(mailproto_op_set_reply(&op, 550, "4.7.1", "x"),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  static const char *const bad[] = {"5",     "5.",       "5.7",   "5.7.",
                                    "3.1.1", "5.1234.1", "5.1.x", "5.1.1 ",
                                    "",      "5..1",     "x.1.1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(mailproto_op_set_reply(&op, 550, bad[i], "x"),
                     MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_op_set_reply(&op, 250, "2.999.999", "ok"), 0);
  mailproto_op_end(&op, 0);
  /* An op whose owner takes no reply refuses one. */
  static const mailproto_op_sink no_reply = {.complete = record_complete};
  mailproto_op_init(&op, &no_reply, &r);
  mailproto_op_begin(&op, 1);
  ck_assert_int_eq(mailproto_op_set_reply(&op, 550, NULL, "x"),
                   MAILPROTO_ERR_STATE);
  mailproto_op_end(&op, 0);
}
END_TEST

/* Reports from a backend: what the owner's sink receives is always a whole
 * struct with the fields every version of the header has. */
static int reports_seen;

static int count_mailbox(mailproto_op *op, const mailproto_mailbox_info *mb) {
  (void)op;
  ck_assert_ptr_nonnull(mb->name);
  reports_seen++;
  return 0;
}

static int count_message(mailproto_op *op, const mailproto_message_info *m) {
  (void)op;
  ck_assert_uint_ne(m->uid, 0);
  reports_seen++;
  return 0;
}

static const mailproto_op_sink report_sink = {.mailbox = count_mailbox,
                                              .message = count_message};

START_TEST(test_op_add_refuses_undersized_structs) {
  mailproto_op op;
  mailproto_op_init(&op, &report_sink, NULL);
  mailproto_op_begin(&op, 1);
  reports_seen = 0;
  /* A backend that forgot struct_size (or set it too small) would hand
   * the owner a copy without the name or UID it did pass. */
  mailproto_mailbox_info mb = {0, "INBOX", 0};
  ck_assert_int_eq(mailproto_op_add_mailbox(&op, &mb),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mb.struct_size = sizeof(size_t);
  ck_assert_int_eq(mailproto_op_add_mailbox(&op, &mb),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  mailproto_message_info msg;
  memset(&msg, 0, sizeof msg);
  msg.uid = 7;
  msg.modseq = 1;
  ck_assert_int_eq(mailproto_op_add_message(&op, &msg),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  msg.struct_size = offsetof(mailproto_message_info, flags);
  ck_assert_int_eq(mailproto_op_add_message(&op, &msg),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(reports_seen, 0);
  /* Whole structs pass. */
  mb.struct_size = sizeof mb;
  msg.struct_size = sizeof msg;
  ck_assert_int_eq(mailproto_op_add_mailbox(&op, &mb), 0);
  ck_assert_int_eq(mailproto_op_add_message(&op, &msg), 0);
  ck_assert_int_eq(reports_seen, 2);
  mailproto_op_end(&op, 0);
}
END_TEST

START_TEST(test_strerror_every_code_has_text) {
#define CHECK_TEXT_(name, value, text)                                         \
  ck_assert_str_eq(mailproto_strerror(MAILPROTO_ERR_##name), text);
  MAILPROTO_ERROR_LIST(CHECK_TEXT_)
#undef CHECK_TEXT_
  ck_assert_str_eq(mailproto_strerror(0), "success");
  ck_assert_str_eq(mailproto_strerror(-12345), "unknown error");
  ck_assert_str_eq(mailproto_strerror(77), "unknown error");
}
END_TEST

START_TEST(test_is_fatal_boundary) {
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_OK), 0);
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_DEFERRED), 0);
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_ERR_SYNTAX), 0);
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_ERR_ENCRYPTION_REQUIRED), 0);
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_ERR_NOMEM), 1);
  ck_assert_int_eq(mailproto_is_fatal(MAILPROTO_ERR_CLOSED), 1);
}
END_TEST

START_TEST(test_version_matches_header) {
  const char *s = NULL;
  ck_assert_uint_eq(mailproto_version(&s), MAILPROTO_VERSION_NUM);
  ck_assert_str_eq(s, MAILPROTO_VERSION_STRING);
  ck_assert_uint_eq(mailproto_version(NULL), MAILPROTO_VERSION_NUM);
}
END_TEST

Suite *suite_core_errors(void) {
  Suite *s = suite_create("core_errors");
  TCase *tc = tcase_create("errors");
  tcase_add_test(tc, test_strerror_every_code_has_text);
  tcase_add_test(tc, test_is_fatal_boundary);
  tcase_add_test(tc, test_version_matches_header);
  tcase_add_test(tc, test_op_complete_only_when_deferred);
  tcase_add_test(tc, test_op_set_reply_checks_shape);
  tcase_add_test(tc, test_op_add_refuses_undersized_structs);
  suite_add_tcase(s, tc);
  return s;
}
