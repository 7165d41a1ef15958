/* Every Check suite of tests/main.c; one per module. */
#ifndef MAILPROTO_TESTS_SUITES_H
#define MAILPROTO_TESTS_SUITES_H

#include <check.h>

Suite *suite_core_errors(void);
Suite *suite_core_buffer(void);
Suite *suite_core_line(void);
Suite *suite_core_outq(void);
Suite *suite_core_base64(void);
Suite *suite_core_md5(void);
Suite *suite_core_utf8(void);
Suite *suite_core_saslprep(void);
Suite *suite_core_sort(void);
Suite *suite_core_sasl(void);
Suite *suite_core_date(void);
Suite *suite_core_mutf7(void);
Suite *suite_core_session(void);
Suite *suite_store_names(void);
Suite *suite_store_memstore(void);
Suite *suite_store_fault(void);
Suite *suite_harness(void);
Suite *suite_smtp_parse(void);
Suite *suite_smtp_session(void);
Suite *suite_smtp_transcripts(void);
Suite *suite_pop3_session(void);
Suite *suite_pop3_transcripts(void);
Suite *suite_store_maildir(void);
Suite *suite_imap_parser(void);
Suite *suite_imap_view(void);
Suite *suite_imap_session(void);
Suite *suite_imap_transcripts(void);
Suite *suite_imap_search(void);
Suite *suite_mime_parser(void);
Suite *suite_mime_imap(void);
Suite *suite_mime_fetch(void);

/* Directory of tests/ in the source tree (transcripts, corpora). */
#ifndef MAILPROTO_TEST_DATA_DIR
#define MAILPROTO_TEST_DATA_DIR "."
#endif

#endif
