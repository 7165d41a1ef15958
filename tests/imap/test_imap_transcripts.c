/*
 * Every IMAP transcript (the .txt files of tests/transcripts/imap) through
 * the runner in every feed mode, deferred store, slow transport and split
 * point; the allocation-failure loop on those that cover the most code.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "imap/imap_adapter.h"
#include "suites.h"
#include "support/transcript.h"

#define IMAP_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/imap"
#define REPORT_SIZE 4096

static transcript_list imap_list;

/* Transcripts whose allocation-failure loop runs: together they allocate
 * in every place a session does (greeting, LOGIN, AUTHENTICATE, SELECT,
 * FETCH with and without the MIME structure, STORE, COPY, EXPUNGE,
 * APPEND, LIST, STATUS, IDLE). */
static const char *const alloc_failure_files[] = {
    "login_select_fetch.txt",
    "authenticate_plain.txt",
    "append.txt",
    "list_extended.txt",
    "store.txt",
    "copy_move.txt",
    "idle.txt",
    "fetch_body.txt",
    "fetch_structure.txt", /* the MIME tree, its cache, ENVELOPE, BODY */
    "fetch_binary.txt",    /* sections through the MIME stream */
};

START_TEST(test_transcript_list_dir_imap_found) {
  ck_assert_uint_ge(imap_list.count, 30);
}
END_TEST

START_TEST(test_transcript_run_file_imap) {
  char report[REPORT_SIZE];
  if (transcript_run_file(imap_list.paths[_i], &imap_transcript_adapter, report,
                          sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

START_TEST(test_transcript_run_alloc_failures_imap) {
  char report[REPORT_SIZE], path[512];
  snprintf(path, sizeof path, "%s/%s", IMAP_DIR, alloc_failure_files[_i]);
  if (transcript_run_alloc_failures(path, &imap_transcript_adapter, report,
                                    sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

Suite *suite_imap_transcripts(void) {
  Suite *s = suite_create("imap_transcripts");
  if (transcript_list_dir(IMAP_DIR, &imap_list) != 0)
    imap_list.count = 0;
  TCase *tc = tcase_create("transcripts");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_transcript_list_dir_imap_found);
  tcase_add_loop_test(tc, test_transcript_run_file_imap, 0,
                      (int)imap_list.count);
  suite_add_tcase(s, tc);

  tc = tcase_create("allocation failures");
  tcase_set_timeout(tc, 1200);
  tcase_add_loop_test(
      tc, test_transcript_run_alloc_failures_imap, 0,
      (int)(sizeof alloc_failure_files / sizeof alloc_failure_files[0]));
  suite_add_tcase(s, tc);
  return s;
}
