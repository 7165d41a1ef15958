/*
 * Runs the Check suites: `mailproto_tests NAME...` runs the named suites,
 * no argument runs them all. ctest has one entry per suite.
 */
#include <stdio.h>
#include <string.h>

#include "suites.h"

static const struct {
  const char *name;
  Suite *(*make)(void);
} suites[] = {
    {"core_errors", suite_core_errors},
    {"core_buffer", suite_core_buffer},
    {"core_line", suite_core_line},
    {"core_outq", suite_core_outq},
    {"core_base64", suite_core_base64},
    {"core_md5", suite_core_md5},
    {"core_utf8", suite_core_utf8},
    {"core_saslprep", suite_core_saslprep},
    {"core_sort", suite_core_sort},
    {"core_sasl", suite_core_sasl},
    {"core_date", suite_core_date},
    {"core_mutf7", suite_core_mutf7},
    {"core_session", suite_core_session},
    {"store_names", suite_store_names},
    {"store_memstore", suite_store_memstore},
    {"store_fault", suite_store_fault},
    {"harness", suite_harness},
    {"smtp_parse", suite_smtp_parse},
    {"smtp_session", suite_smtp_session},
    {"smtp_transcripts", suite_smtp_transcripts},
    {"pop3_session", suite_pop3_session},
    {"pop3_transcripts", suite_pop3_transcripts},
    {"store_maildir", suite_store_maildir},
    {"imap_parser", suite_imap_parser},
    {"imap_view", suite_imap_view},
    {"imap_session", suite_imap_session},
    {"imap_transcripts", suite_imap_transcripts},
    {"imap_search", suite_imap_search},
    {"mime_parser", suite_mime_parser},
    {"mime_imap", suite_mime_imap},
    {"mime_fetch", suite_mime_fetch},
};

enum { SUITE_COUNT = sizeof suites / sizeof suites[0] };

int main(int argc, char **argv) {
  SRunner *runner = NULL;
  for (size_t i = 0; i < SUITE_COUNT; i++) {
    int wanted = argc < 2;
    for (int a = 1; a < argc; a++)
      if (strcmp(argv[a], suites[i].name) == 0)
        wanted = 1;
    if (!wanted)
      continue;
    if (!runner)
      runner = srunner_create(suites[i].make());
    else
      srunner_add_suite(runner, suites[i].make());
  }
  if (!runner) {
    fprintf(stderr, "usage: %s [suite...]\nsuites:", argv[0]);
    for (size_t i = 0; i < SUITE_COUNT; i++)
      fprintf(stderr, " %s", suites[i].name);
    fputc('\n', stderr);
    return 2;
  }
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed == 0 ? 0 : 1;
}
