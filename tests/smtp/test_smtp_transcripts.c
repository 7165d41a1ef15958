/*
 * The SMTP and LMTP transcripts: every file of tests/transcripts/smtp and
 * tests/transcripts/lmtp through the runner in all its modes (whole, byte
 * by byte, chunked, every split point, store operations deferred, a slow
 * transport), again with every policy callback deferred (the output must
 * not change), and the allocation-failure loop on a representative few.
 */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "smtp/smtp_adapter.h"
#include "suites.h"
#include "support/transcript.h"

#define SMTP_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/smtp"
#define LMTP_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/lmtp"
#define REPORT_SIZE 4096

/* Listed when the suite is built, so each file is its own test. */
static transcript_list smtp_list, lmtp_list;

START_TEST(test_transcript_list_dir_smtp_found) {
  /* Empty directories would make the loops below pass vacuously. */
  ck_assert_uint_ge(smtp_list.count, 30);
  ck_assert_uint_ge(lmtp_list.count, 4);
}
END_TEST

static void run_all(const char *path) {
  char report[REPORT_SIZE];
  if (transcript_run_file(path, &smtp_adapter, report, sizeof report))
    ck_abort_msg("%s", report);
}

/* Deferring every policy callback gives byte-identical output; a few
 * modes suffice (the split points are the same code path). */
static void run_deferred(const char *path) {
  static const transcript_mode modes[] = {
      {.name = "callbacks deferred, whole"},
      {.name = "callbacks deferred, bytes", .chunk = 1},
      {.name = "callbacks and store deferred", .defer_all = 1},
      {.name = "callbacks and store deferred, bytes",
       .chunk = 1,
       .defer_all = 1},
      {.name = "callbacks deferred, send 1 byte per turn", .send_max = 1},
  };
  char report[REPORT_SIZE];
  transcript *t;
  if (transcript_load(path, &t, report, sizeof report) != 0)
    ck_abort_msg("%s", report);
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (transcript_run_mode(t, &smtp_adapter_deferred, &modes[i], NULL, report,
                            sizeof report) != 0) {
      transcript_free(t);
      ck_abort_msg("%s", report);
    }
  transcript_free(t);
}

START_TEST(test_transcript_run_file_smtp) {
  run_all(smtp_list.paths[_i]);
}
END_TEST

START_TEST(test_transcript_run_file_lmtp) {
  run_all(lmtp_list.paths[_i]);
}
END_TEST

START_TEST(test_transcript_run_mode_smtp_callbacks_deferred) {
  run_deferred(smtp_list.paths[_i]);
}
END_TEST

START_TEST(test_transcript_run_mode_lmtp_callbacks_deferred) {
  run_deferred(lmtp_list.paths[_i]);
}
END_TEST

/* The allocation-failure loop is slow (one run per allocation); these
 * cover every allocating path: envelope, DATA with normalisation and the
 * Received header, BDAT, AUTH with deferred policy, STARTTLS, LMTP. */
static const char *const alloc_files[] = {
    SMTP_DIR "/rfc5321_d1_typical.txt",
    SMTP_DIR "/data_bare_eol_normalize.txt",
    SMTP_DIR "/bdat_rfc3030_pipelining_binarymime.txt",
    SMTP_DIR "/auth_plain.txt",
    SMTP_DIR "/starttls_pipelined_injection.txt",
    LMTP_DIR "/rfc2033_example.txt",
    SMTP_DIR "/policy_rejections.txt",
};

START_TEST(test_transcript_run_alloc_failures_smtp) {
  char report[REPORT_SIZE];
  if (transcript_run_alloc_failures(alloc_files[_i], &smtp_adapter, report,
                                    sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

/* Allocation failures while deferred callbacks complete. */
static const char *const alloc_deferred_files[] = {
    SMTP_DIR "/policy_rejections.txt",
    SMTP_DIR "/auth_plain.txt",
};

START_TEST(test_transcript_run_alloc_failures_smtp_callbacks_deferred) {
  char report[REPORT_SIZE];
  if (transcript_run_alloc_failures(alloc_deferred_files[_i],
                                    &smtp_adapter_deferred, report,
                                    sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

Suite *suite_smtp_transcripts(void) {
  Suite *s = suite_create("smtp_transcripts");
  TCase *tc = tcase_create("transcripts");
  tcase_set_timeout(tc, 600);
  if (transcript_list_dir(SMTP_DIR, &smtp_list) != 0)
    smtp_list.count = 0;
  if (transcript_list_dir(LMTP_DIR, &lmtp_list) != 0)
    lmtp_list.count = 0;
  tcase_add_test(tc, test_transcript_list_dir_smtp_found);
  tcase_add_loop_test(tc, test_transcript_run_file_smtp, 0,
                      (int)smtp_list.count);
  tcase_add_loop_test(tc, test_transcript_run_file_lmtp, 0,
                      (int)lmtp_list.count);
  tcase_add_loop_test(tc, test_transcript_run_mode_smtp_callbacks_deferred, 0,
                      (int)smtp_list.count);
  tcase_add_loop_test(tc, test_transcript_run_mode_lmtp_callbacks_deferred, 0,
                      (int)lmtp_list.count);
  suite_add_tcase(s, tc);

  TCase *alloc = tcase_create("allocation failures");
  tcase_set_timeout(alloc, 1200);
  tcase_add_loop_test(alloc, test_transcript_run_alloc_failures_smtp, 0,
                      (int)(sizeof alloc_files / sizeof alloc_files[0]));
  tcase_add_loop_test(
      alloc, test_transcript_run_alloc_failures_smtp_callbacks_deferred, 0,
      (int)(sizeof alloc_deferred_files / sizeof alloc_deferred_files[0]));
  suite_add_tcase(s, alloc);
  return s;
}
