/* Error codes, strerror and the version query. */
#include <string.h>

#include "mailproto/mailproto.h"
#include "suites.h"

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
  suite_add_tcase(s, tc);
  return s;
}
