/*
 * Every POP3 transcript (the .txt files of tests/transcripts/pop3) through the
 * runner in every feed mode, deferred store, slow transport and split point;
 * the allocation-failure loop on a few that cover the most code.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "pop3/pop3_adapter.h"
#include "suites.h"
#include "support/transcript.h"

#define POP3_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/pop3"
#define REPORT_SIZE 4096

static transcript_list pop3_list;

/* Transcripts whose allocation-failure loop runs: together they allocate
 * in every place a session does (greeting, USER/PASS, APOP, SASL, open,
 * RETR, TOP, LIST, UIDL, DELE, QUIT's expunge). */
static const char *const alloc_failure_files[] = {
    "rfc1939_example_session.txt",
    "auth_sasl_plain.txt",
    "auth_cram_md5.txt",
    "top_bare_lf.txt",
    "uidl_list.txt",
    "policy_callbacks.txt",
};

START_TEST(test_transcript_list_dir_pop3_found) {
  ck_assert_uint_ge(pop3_list.count, 30);
}
END_TEST

START_TEST(test_transcript_run_file_pop3) {
  char report[REPORT_SIZE];
  if (transcript_run_file(pop3_list.paths[_i], &pop3_transcript_adapter, report,
                          sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

START_TEST(test_transcript_run_alloc_failures_pop3) {
  char report[REPORT_SIZE], path[512];
  snprintf(path, sizeof path, "%s/%s", POP3_DIR, alloc_failure_files[_i]);
  if (transcript_run_alloc_failures(path, &pop3_transcript_adapter, report,
                                    sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

Suite *suite_pop3_transcripts(void) {
  Suite *s = suite_create("pop3_transcripts");
  if (transcript_list_dir(POP3_DIR, &pop3_list) != 0)
    pop3_list.count = 0;
  TCase *tc = tcase_create("transcripts");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_transcript_list_dir_pop3_found);
  tcase_add_loop_test(tc, test_transcript_run_file_pop3, 0,
                      (int)pop3_list.count);
  suite_add_tcase(s, tc);

  tc = tcase_create("allocation failures");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(
      tc, test_transcript_run_alloc_failures_pop3, 0,
      (int)(sizeof alloc_failure_files / sizeof alloc_failure_files[0]));
  suite_add_tcase(s, tc);
  return s;
}
