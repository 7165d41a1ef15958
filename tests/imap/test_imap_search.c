/*
 * SEARCH, SORT and THREAD pieces where a transcript would be clumsy:
 * base-subject extraction (RFC 5256 2.1) case by case, the REFERENCES
 * threading algorithm (RFC 5256 3) on hand-built records (self
 * references, cycles, duplicates, a very long chain), and the
 * allocation-failure loop over the search transcripts.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_adapter.h"
#include "imap/imap_search.h"
#include "suites.h"
#include "support/transcript.h"

#define IMAP_DIR MAILPROTO_TEST_DATA_DIR "/transcripts/imap"

/* ------------------------------------------------------------------ */
/* Base subject                                                        */
/* ------------------------------------------------------------------ */

static const struct {
  const char *in, *out;
  int reply;
} subjects[] = {
    {"Re: hello", "HELLO", 1},
    {"RE: Re: re: hello", "HELLO", 1},
    {"Fwd: hello", "HELLO", 1},
    {"FW: hello", "HELLO", 1},
    {"fwd:hello", "HELLO", 1},
    {"hello (fwd)", "HELLO", 1},
    {"hello (fwd) (FWD)  ", "HELLO", 1},
    {"[Fwd: hello]", "HELLO", 1},
    {"[fwd: Re: [list] hello (fwd)]", "HELLO", 1},
    {"Re: [fwd: hello]", "HELLO", 1},
    {"[list] Re: hello", "HELLO", 1},
    {"Re [list]: hello", "HELLO", 1},
    {"Re: [list] Re: [other] hello", "HELLO", 1},
    {"[list] hello", "HELLO", 0},
    {"[list]", "[LIST]", 0},
    {"[a] [b]", "[B]", 0},
    {"  hello \t  world  ", "HELLO WORLD", 0},
    /* i;unicode-casemap (RFC 5256 7, RFC 5051 2): titlecase, then
     * canonical decomposition (é is E U+0301); ß has no titlecase. */
    {"=?UTF-8?Q?Re:_caf=C3=A9?=", "CAFE\xcc\x81", 1},
    {"=?ISO-8859-1?Q?Gr=FC=DFe?= =?ISO-8859-1?Q?_aus?= Bern",
     "GRU\xcc\x88\xc3\x9f"
     "E AUS BERN",
     0},
    {"\303\211change", "E\314\201CHANGE", 0}, /* octal: "\x89c" runs on */
    {"\303\251CHANGE", "E\314\201CHANGE", 0},
    {"\xc3\xbf \xc5\xbe \xc4\xb1", "Y\xcc\x88 Z\xcc\x8c I", 0},
    {"\xce\xac\xcf\x82", "\xce\x91\xcc\x81\xce\xa3", 0},
    {"\xd1\x91\xd0\xbb\xd0\xba\xd0\xb0",
     "\xd0\x95\xcc\x88\xd0\x9b\xd0\x9a\xd0\x90", 0},
    /* Every script UnicodeData.txt cases: Vietnamese (two marks, in
     * canonical order), Romanian comma below, Armenian; a titlecase
     * letter (U+01C5) and a ligature have no canonical decomposition,
     * and Hangul syllables have none in UnicodeData.txt either. */
    {"Ti\xe1\xba\xbfng Vi\xe1\xbb\x87t",
     "TIE\xcc\x82\xcc\x81NG VIE\xcc\xa3\xcc\x82T", 0},
    {"\xc8\x99ir", "S\xcc\xa6IR", 0},
    {"\xd5\xa2\xd5\xa1\xd6\x80\xd5\xa5\xd6\x82",
     "\xd4\xb2\xd4\xb1\xd5\x90\xd4\xb5\xd5\x92", 0},
    {"\xc7\x86ungla", "\xc7\x85UNGLA", 0},
    {"\xef\xac\x81le", "\xef\xac\x81LE", 0},
    {"\xed\x95\x9c\xea\xb5\xad", "\xed\x95\x9c\xea\xb5\xad", 0},
    {"Re: \xe2\x82\xac \xff", "\xe2\x82\xac \xff", 1},
    {"", "", 0},
    {"Re:", "", 1},
    {"Ref: x", "REF: X", 0},
    {"Review: x", "REVIEW: X", 0},
    {"Re: Fwd: Re: deep", "DEEP", 1},
    {"[x]hello", "HELLO", 0},
    {"hello [fwd: x]", "HELLO [FWD: X]", 0},
};

START_TEST(test_base_subject_rfc5256_cases) {
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, 1 << 20);
  const char *in = subjects[_i].in;
  int reply = -1;
  int rc = mailproto_imap_base_subject((const uint8_t *)in, strlen(in), &out,
                                       &reply);
  ck_assert_int_eq(rc, 0);
  ck_assert_msg(
      out.len == strlen(subjects[_i].out) &&
          (out.len == 0 || memcmp(out.data, subjects[_i].out, out.len) == 0),
      "\"%s\" gave \"%.*s\", expected \"%s\"", in, (int)out.len,
      out.len ? (const char *)out.data : "", subjects[_i].out);
  ck_assert_int_eq(reply, subjects[_i].reply);
  mailproto_buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Threading on records                                                */
/* ------------------------------------------------------------------ */

typedef struct tmsg {
  const char *id, *refs, *irt, *subject;
  int64_t date;
} tmsg;

static void set_field(mailproto_buf *b, const char *v) {
  mailproto_buf_clear(b);
  if (v)
    ck_assert_int_eq(mailproto_buf_append_str(b, v), 0);
}

/* Threads the messages (sequence numbers 1..n) and returns the THREAD
 * data in a static buffer. */
static const char *thread(const tmsg *m, size_t n,
                          mailproto_imap_thread_alg alg) {
  static char text[65536];
  imap_sort_set set;
  imap_search_fields f;
  memset(&set, 0, sizeof set);
  memset(&f, 0, sizeof f);
  mailproto_buf_init(&set.arena, NULL, (size_t)1 << 30);
  mailproto_buf *bufs[] = {&f.subject,    &f.from,        &f.to,        &f.cc,
                           &f.message_id, &f.in_reply_to, &f.references};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    mailproto_buf_init(bufs[i], NULL, IMAP_FIELD_MAX);
  for (size_t i = 0; i < n; i++) {
    imap_search_msg msg;
    memset(&msg, 0, sizeof msg);
    msg.index = (uint32_t)i;
    msg.uid = (uint32_t)(i + 100);
    msg.have_meta = 1;
    msg.date.utc = 1000;
    set_field(&f.message_id, m[i].id);
    set_field(&f.references, m[i].refs);
    set_field(&f.in_reply_to, m[i].irt);
    set_field(&f.subject, m[i].subject ? m[i].subject : "s");
    f.have_date = 1;
    f.date.utc = m[i].date;
    ck_assert_int_eq(
        mailproto_imap_sort_add(
            &set, &msg, &f, IMAP_WANT_SUBJECT | IMAP_WANT_DATE | IMAP_WANT_IDS),
        0);
  }
  mailproto_buf out;
  mailproto_buf_init(&out, NULL, (size_t)1 << 30);
  ck_assert_int_eq(mailproto_imap_thread_run(&set, alg, 0, NULL, &out), 0);
  size_t len = out.len < sizeof text - 1 ? out.len : sizeof text - 1;
  if (len)
    memcpy(text, out.data, len);
  text[len] = '\0';
  mailproto_buf_free(&out);
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    mailproto_buf_free(bufs[i]);
  mailproto_imap_sort_free(&set, NULL);
  return text;
}

START_TEST(test_thread_references_self_reference) {
  /* A message naming itself as its parent stays a root. */
  const tmsg m[] = {{"<a@x>", "<a@x>", NULL, "s", 1}};
  ck_assert_str_eq(thread(m, 1, MAILPROTO_IMAP_THREAD_REFERENCES), "(1)");
}
END_TEST

START_TEST(test_thread_references_cycle_in_one_field) {
  /* <a> <b> <a>: the second a->b link would close a loop; the message
   * hangs under the last reference. */
  const tmsg m[] = {{"<a@x>", NULL, NULL, "s", 1},
                    {"<b@x>", "<a@x>", NULL, "s", 2},
                    {"<c@x>", "<a@x> <b@x> <a@x>", NULL, "s", 3}};
  ck_assert_str_eq(thread(m, 3, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "(1 (2)(3))");
}
END_TEST

START_TEST(test_thread_references_reparent_on_own_message) {
  /* 3 first guessed under 2 (from 4's References), then its own
   * References say 1: the message wins (RFC 5256 3 (1)(C)). */
  const tmsg m[] = {{"<1@x>", NULL, NULL, "s", 1},
                    {"<2@x>", "<1@x>", NULL, "s", 2},
                    {"<4@x>", "<2@x> <3@x>", NULL, "s", 4},
                    {"<3@x>", "<1@x>", NULL, "s", 3}};
  ck_assert_str_eq(thread(m, 4, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "(1 (2)(4 3))");
}
END_TEST

START_TEST(test_thread_references_duplicates_and_missing) {
  const tmsg m[] = {{"<d@x>", NULL, NULL, "one", 5},
                    {"<d@x>", NULL, NULL, "two", 1},
                    {NULL, NULL, "<gone@x>", "three", 3},
                    {"<e@x>", "<gone@x>", NULL, "four", 4}};
  /* The duplicate is a message of its own; the two replies to a missing
   * message share a dummy root; roots by date. */
  ck_assert_str_eq(thread(m, 4, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "(2)((3)(4))(1)");
}
END_TEST

START_TEST(test_thread_references_normalized_ids) {
  /* RFC 5256 3: ids compare after normalization (<"a.b"@x> is <a.b@x>);
   * a References field without a valid id (RFC 5322 3.6.4: no "@")
   * gives way to In-Reply-To; an invalid own id is replaced by a unique
   * one, so a reference to it links nothing. */
  const tmsg m[] = {{"<\"a.b\"@x>", NULL, NULL, "one", 1},
                    {"<2@x>", "<a.b@x>", NULL, "two", 2},
                    {"<3@x>", "<bad>", "<\"a\\.b\"@x>", "three", 3},
                    {"<bad>", NULL, NULL, "four", 4},
                    {"<5@x>", "<bad>", NULL, "five", 5}};
  ck_assert_str_eq(thread(m, 5, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "(1 (2)(3))(4)(5)");
}
END_TEST

START_TEST(test_thread_references_gathering_after_merge) {
  /* Two dummy roots whose first children share "foo" merge (RFC 5256 3
   * (5)(C)); the merged dummy's first child is then "baz", yet the table
   * still holds it under "foo", so message 5 ("foo", no references)
   * joins it too. */
  const tmsg m[] = {{"<a@x>", "<x@x>", NULL, "foo", 1},
                    {"<b@x>", "<x@x>", NULL, "bar", 2},
                    {"<c@x>", "<y@x>", NULL, "foo", 3},
                    {"<d@x>", "<y@x>", NULL, "baz", 4},
                    {"<e@x>", NULL, NULL, "foo", 5}};
  ck_assert_str_eq(thread(m, 5, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "((1)(2)(3)(4)(5))");
}
END_TEST

START_TEST(test_thread_references_subject_gathering) {
  /* Same base subject, no references: the reply goes under the
   * original; two non-replies become siblings under a dummy. */
  const tmsg m[] = {{"<1@x>", NULL, NULL, "Topic", 1},
                    {"<2@x>", NULL, NULL, "Re: Topic", 2},
                    {"<3@x>", NULL, NULL, "Other", 3},
                    {"<4@x>", NULL, NULL, "Other", 4}};
  ck_assert_str_eq(thread(m, 4, MAILPROTO_IMAP_THREAD_REFERENCES),
                   "(1 2)((3)(4))");
}
END_TEST

START_TEST(test_thread_references_long_chain) {
  /* A reply chain of 20,000 messages: no recursion, one thread. */
  enum { N = 20000 };
  tmsg *m = calloc(N, sizeof *m);
  char(*ids)[32] = calloc(N, sizeof *ids);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_nonnull(ids);
  for (int i = 0; i < N; i++) {
    snprintf(ids[i], sizeof ids[i], "<%d@x>", i);
    m[i].id = ids[i];
    m[i].irt = i ? ids[i - 1] : NULL;
    m[i].subject = "chain";
    m[i].date = i;
  }
  const char *t = thread(m, N, MAILPROTO_IMAP_THREAD_REFERENCES);
  ck_assert(strncmp(t, "(1 2 3 4 ", 9) == 0);
  ck_assert_ptr_null(strchr(t + 1, '('));
  free(m);
  free(ids);
}
END_TEST

START_TEST(test_thread_orderedsubject_groups) {
  const tmsg m[] = {{NULL, NULL, NULL, "b", 5},
                    {NULL, NULL, NULL, "Re: a", 2},
                    {NULL, NULL, NULL, "a", 3},
                    {NULL, NULL, NULL, "Re: b", 1},
                    {NULL, NULL, NULL, "A", 4}};
  /* a: 2 (date 2), 3, 5... sorted by date inside; threads by their first
   * message's date: b's first is 4 (date 1). */
  ck_assert_str_eq(thread(m, 5, MAILPROTO_IMAP_THREAD_ORDEREDSUBJECT),
                   "(4 1)(2 (3)(5))");
}
END_TEST

/* ------------------------------------------------------------------ */
/* "$" in the commands that take a sequence set (RFC 5182 2.2)         */
/* ------------------------------------------------------------------ */

static const char *const saved_commands[] = {
    "a FETCH $ FLAGS",
    "a UID FETCH $ (UID FLAGS)",
    "a STORE $ +FLAGS (\\Seen)",
    "a UID STORE $ -FLAGS.SILENT (x)",
    "a COPY $ Trash",
    "a UID MOVE $ Trash",
    "a UID EXPUNGE $",
    "a SEARCH $",
    "a UID SEARCH UID $",
    "a SORT (DATE) UTF-8 $",
    "a THREAD REFERENCES UTF-8 NOT $",
};

static int set_is_saved(const mailproto_imap_command *c) {
  switch (c->id) {
  case MAILPROTO_IMAP_CMD_FETCH:
    return c->u.fetch.set.saved;
  case MAILPROTO_IMAP_CMD_STORE:
    return c->u.store.set.saved;
  case MAILPROTO_IMAP_CMD_COPY:
  case MAILPROTO_IMAP_CMD_MOVE:
    return c->u.copy.set.saved;
  case MAILPROTO_IMAP_CMD_EXPUNGE:
    return c->u.expunge.set.saved;
  case MAILPROTO_IMAP_CMD_SEARCH: {
    const mailproto_imap_search_key *k = c->u.search.key->children;
    return k->set.saved;
  }
  case MAILPROTO_IMAP_CMD_SORT:
    return c->u.sort.key->children->set.saved;
  default: /* THREAD ... NOT $ */
    return c->u.thread.key->children->children->set.saved;
  }
}

START_TEST(test_parse_saved_set_accepted) {
  mailproto_imap_parser p;
  mailproto_imap_command c;
  mailproto_imap_parser_init(&p, NULL, NULL);
  const char *cmd = saved_commands[_i];
  memset(&c, 0, sizeof c);
  int rc = mailproto_imap_parse(&p, (const uint8_t *)cmd, strlen(cmd), &c);
  ck_assert_msg(rc == 0, "%s: %s", cmd, mailproto_imap_parser_error(&p));
  ck_assert_msg(set_is_saved(&c), "%s: not the saved set", cmd);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Large messages: many store reads, each deferred in one run mode     */
/* ------------------------------------------------------------------ */

static void append_escaped(char **p, const char *s, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '\r') {
      memcpy(*p, "\\r", 2);
      *p += 2;
    } else if (s[i] == '\n') {
      memcpy(*p, "\\n", 2);
      *p += 2;
    } else {
      *(*p)++ = s[i];
    }
  }
}

START_TEST(test_search_large_messages_streamed) {
  /* Message 1: plain text of 200 KB with "straddle" across the 64 KB read
   * boundary. Message 2: a multipart whose base64 text part decodes to
   * 150 KB ending in "deepneedle", then an attachment. */
  enum { BIG = 200000 };
  char *m1 = malloc(BIG), *m2 = malloc(2 * BIG);
  char *text = malloc(8 * BIG);
  ck_assert(m1 && m2 && text);
  const char *h1 = "Subject: big one\r\n\r\n";
  size_t n1 = strlen(h1);
  memcpy(m1, h1, n1);
  while (n1 < BIG) {
    m1[n1] = n1 % 70 == 68 ? '\r' : n1 % 70 == 69 ? '\n' : 'a';
    n1++;
  }
  memcpy(m1 + 65536 - 4, "straddle", 8);
  static const char b64[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t n2 = (size_t)sprintf(
      m2, "Subject: big two\r\nContent-Type: multipart/mixed; boundary=XX\r\n"
          "\r\n--XX\r\nContent-Type: text/plain\r\n"
          "Content-Transfer-Encoding: base64\r\n\r\n");
  /* 150,000 bytes of "b", then "deepneedle", base64 encoded by hand. */
  size_t plain_len = 150010;
  unsigned char *plain = malloc(plain_len);
  ck_assert_ptr_nonnull(plain);
  memset(plain, 'b', plain_len);
  memcpy(plain + 150000, "deepneedle", 10);
  size_t col = 0;
  for (size_t i = 0; i < plain_len; i += 3) {
    uint32_t v = (uint32_t)plain[i] << 16;
    size_t k = plain_len - i;
    if (k > 1)
      v |= (uint32_t)plain[i + 1] << 8;
    if (k > 2)
      v |= plain[i + 2];
    m2[n2++] = b64[(v >> 18) & 63];
    m2[n2++] = b64[(v >> 12) & 63];
    m2[n2++] = k > 1 ? b64[(v >> 6) & 63] : '=';
    m2[n2++] = k > 2 ? b64[v & 63] : '=';
    if ((col += 4) == 76) {
      m2[n2++] = '\r';
      m2[n2++] = '\n';
      col = 0;
    }
  }
  n2 += (size_t)sprintf(m2 + n2,
                        "\r\n--XX\r\nContent-Type: application/octet-stream\r\n"
                        "\r\nstraddle deepneedle\r\n--XX--\r\n");
  free(plain);
  char *p = text;
  p += sprintf(p, "@ allow_insecure_auth 1\n@ message ");
  append_escaped(&p, m1, n1);
  p += sprintf(p, "\n@ message ");
  append_escaped(&p, m2, n2);
  p += sprintf(
      p,
      "\nS: * OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE "
      "NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS "
      "SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE UTF8=ACCEPT ESEARCH "
      "SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY CONDSTORE "
      "QRESYNC LITERAL+ "
      "APPENDLIMIT=67108864 AUTH=PLAIN AUTH=LOGIN AUTH=CRAM-MD5] IMAP server "
      "ready\n"
      "C: a1 LOGIN alice secret\n"
      "C: a2 EXAMINE INBOX\n"
      "C: a3 SEARCH BODY straddle\n"
      "C: a4 SEARCH BODY deepneedle\n"
      "C: a5 SEARCH SUBJECT two\n"
      "C: a6 SEARCH TEXT deepneedle NOT BODY aaaa\n"
      "C: a7 SORT (SUBJECT) UTF-8 BODY b\n"
      "C: a8 LOGOUT\n"
      "S~ a1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 SASL-IR ID ENABLE IDLE "
      "NAMESPACE UNSELECT UIDPLUS MOVE CHILDREN LIST-EXTENDED LIST-STATUS "
      "SPECIAL-USE CREATE-SPECIAL-USE STATUS=SIZE UTF8=ACCEPT ESEARCH "
      "SEARCHRES SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES BINARY CONDSTORE "
      "QRESYNC LITERAL+ "
      "APPENDLIMIT=67108864] Logged in\\r\\n"
      "* 2 EXISTS\\r\\n* 2 RECENT\\r\\n* OK [UNSEEN 1] First unseen\\r\\n"
      "* OK [UIDVALIDITY 1] UIDs valid\\r\\n"
      "* OK [UIDNEXT 3] Predicted next UID\\r\\n"
      "* FLAGS (\\\\Seen \\\\Answered \\\\Flagged \\\\Deleted \\\\Draft)\\r\\n"
      "* OK [PERMANENTFLAGS ()] No permanent flags permitted\\r\\n"
      "* OK [HIGHESTMODSEQ 3] Highest\\r\\n"
      "a2 OK [READ-ONLY] EXAMINE completed\\r\\n"
      "* SEARCH 1\\r\\na3 OK SEARCH completed\\r\\n"
      "* SEARCH 2\\r\\na4 OK SEARCH completed\\r\\n"
      "* SEARCH 2\\r\\na5 OK SEARCH completed\\r\\n"
      "* SEARCH 2\\r\\na6 OK SEARCH completed\\r\\n"
      "* SORT 2\\r\\na7 OK SORT completed\\r\\n"
      "* BYE Logging out\\r\\na8 OK LOGOUT completed\\r\\n\n"
      "! close\n");
  transcript *t = NULL;
  char report[4096];
  int rc = transcript_parse(text, (size_t)(p - text), "large", &t, report,
                            sizeof report);
  ck_assert_msg(rc == 0, "%s", report);
  transcript_mode mode;
  memset(&mode, 0, sizeof mode);
  rc = transcript_run_mode(t, &imap_transcript_adapter, &mode, NULL, report,
                           sizeof report);
  ck_assert_msg(rc == 0, "%s", report);
  mode.defer_all = 1;
  rc = transcript_run_mode(t, &imap_transcript_adapter, &mode, NULL, report,
                           sizeof report);
  ck_assert_msg(rc == 0, "%s", report);
  transcript_free(t);
  free(m1);
  free(m2);
  free(text);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Allocation failures over the search transcripts                     */
/* ------------------------------------------------------------------ */

static const char *const alloc_files[] = {
    "search_esearch.txt",    "sort_criteria.txt", "sort_collation.txt",
    "thread_references.txt", "search_text.txt",
};

START_TEST(test_transcript_run_alloc_failures_search) {
  char report[4096], path[512];
  snprintf(path, sizeof path, "%s/%s", IMAP_DIR, alloc_files[_i]);
  if (transcript_run_alloc_failures(path, &imap_transcript_adapter, report,
                                    sizeof report))
    ck_abort_msg("%s", report);
}
END_TEST

Suite *suite_imap_search(void) {
  Suite *s = suite_create("imap_search");
  TCase *tc = tcase_create("search");
  tcase_set_timeout(tc, 1200);
  tcase_add_loop_test(tc, test_base_subject_rfc5256_cases, 0,
                      (int)(sizeof subjects / sizeof subjects[0]));
  tcase_add_test(tc, test_thread_references_self_reference);
  tcase_add_test(tc, test_thread_references_cycle_in_one_field);
  tcase_add_test(tc, test_thread_references_reparent_on_own_message);
  tcase_add_test(tc, test_thread_references_duplicates_and_missing);
  tcase_add_test(tc, test_thread_references_normalized_ids);
  tcase_add_test(tc, test_thread_references_subject_gathering);
  tcase_add_test(tc, test_thread_references_gathering_after_merge);
  tcase_add_test(tc, test_thread_references_long_chain);
  tcase_add_test(tc, test_thread_orderedsubject_groups);
  tcase_add_test(tc, test_search_large_messages_streamed);
  tcase_add_loop_test(tc, test_parse_saved_set_accepted, 0,
                      (int)(sizeof saved_commands / sizeof saved_commands[0]));
  tcase_add_loop_test(tc, test_transcript_run_alloc_failures_search, 0,
                      (int)(sizeof alloc_files / sizeof alloc_files[0]));
  suite_add_tcase(s, tc);
  return s;
}
