/* Mailbox names: LIST matching, the name rules, INBOX. */
#include <stdlib.h>
#include <string.h>

#include "mailproto/store.h"
#include "suites.h"
#include "support/overread.h"

/* ------------------------------------------------------------------ */
/* mailproto_mailbox_match                                             */
/* ------------------------------------------------------------------ */

static const struct {
  const char *pattern, *name;
  int match;
} cases[] = {
    /* RFC 3501 6.3.8: '*' matches anything, '%' anything but the
     * hierarchy delimiter. */
    {"*", "a/b/c", 1},
    {"*", "", 1},
    {"%", "a", 1},
    {"%", "a/b", 0},
    {"a/%", "a/b", 1},
    {"a/%", "a/b/c", 0},
    {"a/%", "a", 0},
    {"a/*", "a/b/c", 1},
    {"a*", "abc/d", 1},
    {"a%", "abc/d", 0},
    {"a%", "abc", 1},
    {"%/%", "a/b", 1},
    {"%/%", "a/b/c", 0},
    {"*/b", "x/y/b", 1},
    {"%b", "ab", 1},
    {"%b", "a/b", 0},
    {"*%", "a/b", 1},
    {"%*", "a/b", 1},
    {"%%", "a/b", 0},
    {"a**b", "a/x/b", 1},
    {"", "", 1},
    {"", "a", 0},
    {"a", "", 0},
    {"abc", "abc", 1},
    {"abc", "abd", 0},
    {"abc", "ab", 0},
    {"ab", "abc", 0},
    /* Other names are case-sensitive. */
    {"a", "A", 0},
    {"Sent", "sent", 0},
    /* RFC 3501 5.1: INBOX is case-insensitive. */
    {"inbox", "INBOX", 1},
    {"INBOX", "inbox", 1},
    {"InBoX", "INBOX", 1},
    {"inbox/%", "INBOX/Sent", 1},
    {"InBoX/*", "INBOX/a/b", 1},
    {"inbox*", "INBOX", 1},
    {"inbox*", "INBOX/x", 1},
    {"inbox%", "INBOX", 1},
    {"inbox%", "INBOX/x", 0},
    {"inbox*", "INBOXES", 0},
    {"INBOX*", "INBOXES", 1},
    {"inboxes", "INBOXES", 0},
    {"i*", "INBOX", 0},
    {"I*", "INBOX", 1},
    {"inbox/a", "INBOX/A", 0},
    {"INBOX", "INBOX/a", 0},
    /* UTF-8 is bytes to the matcher. */
    {"Entw%rfe", "Entw\xc3\xbcrfe", 1},
    {"\xe6\x97\xa5*", "\xe6\x97\xa5\xe6\x9c\xac", 1},
};

START_TEST(test_mailbox_match_table) {
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    ck_assert_msg(mailproto_mailbox_match(cases[i].pattern, cases[i].name) ==
                      cases[i].match,
                  "\"%s\" vs \"%s\"", cases[i].pattern, cases[i].name);
  ck_assert_int_eq(mailproto_mailbox_match(NULL, "a"), 0);
  ck_assert_int_eq(mailproto_mailbox_match("*", NULL), 0);
}
END_TEST

/* The definition, written the obvious (exponential) way. */
static int reference(const char *p, const char *n) {
  if (*p == '\0')
    return *n == '\0';
  if (*p == '*')
    return reference(p + 1, n) || (*n && reference(p, n + 1));
  if (*p == '%')
    return reference(p + 1, n) || (*n && *n != '/' && reference(p, n + 1));
  return *n == *p && reference(p + 1, n + 1);
}

/* Fills s with the k-th string of length len over `alphabet`. */
static void nth_string(char *s, size_t len, unsigned long k,
                       const char *alphabet) {
  size_t base = strlen(alphabet);
  for (size_t i = 0; i < len; i++) {
    s[i] = alphabet[k % base];
    k /= base;
  }
  s[len] = '\0';
}

START_TEST(test_mailbox_match_agrees_with_definition) {
  /* Every pattern up to 5 characters over {a, b, /, *, %} against every
   * name up to 6 characters over {a, b, /}. */
  char p[8], n[8];
  unsigned long checked = 0;
  for (size_t pl = 0; pl <= 5; pl++) {
    unsigned long pc = 1;
    for (size_t i = 0; i < pl; i++)
      pc *= 5;
    for (unsigned long pk = 0; pk < pc; pk++) {
      nth_string(p, pl, pk, "ab/*%");
      for (size_t nl = 0; nl <= 6; nl++) {
        unsigned long nc = 1;
        for (size_t i = 0; i < nl; i++)
          nc *= 3;
        for (unsigned long nk = 0; nk < nc; nk++) {
          nth_string(n, nl, nk, "ab/");
          int want = reference(p, n);
          if (mailproto_mailbox_match(p, n) != want)
            ck_abort_msg("\"%s\" vs \"%s\": want %d", p, n, want);
          checked++;
        }
      }
    }
  }
  ck_assert_uint_gt(checked, 1000000);
}
END_TEST

START_TEST(test_mailbox_match_pathological_patterns) {
  char name[MAILPROTO_MAILBOX_NAME_MAX + 1];
  memset(name, 'a', MAILPROTO_MAILBOX_NAME_MAX);
  name[MAILPROTO_MAILBOX_NAME_MAX] = '\0';
  /* Backtracking matchers take exponential time on these. */
  ck_assert_int_eq(mailproto_mailbox_match("*a*a*a*a*a*b", name), 0);
  ck_assert_int_eq(mailproto_mailbox_match("%a%a%a%a%a%b", name), 0);
  ck_assert_int_eq(mailproto_mailbox_match("*a*a*a*a*a*a", name), 1);
  char pattern[4 * MAILPROTO_MAILBOX_NAME_MAX + 2];
  size_t k = 0;
  for (int i = 0; i < 2 * MAILPROTO_MAILBOX_NAME_MAX; i++) {
    pattern[k++] = i % 2 ? 'a' : (i % 4 ? '%' : '*');
  }
  pattern[k++] = 'b';
  pattern[k] = '\0';
  ck_assert_int_eq(mailproto_mailbox_match(pattern, name), 0);
  pattern[k - 1] = '\0';
  ck_assert_int_eq(mailproto_mailbox_match(pattern, name), 1);
  /* A pattern of wildcards only, far longer than any name. */
  memset(pattern, '*', sizeof pattern - 1);
  pattern[sizeof pattern - 1] = '\0';
  ck_assert_int_eq(mailproto_mailbox_match(pattern, name), 1);
  memset(pattern, '%', sizeof pattern - 1);
  ck_assert_int_eq(mailproto_mailbox_match(pattern, name), 1);
  /* More literals than the name has characters. */
  memset(pattern, 'a', sizeof pattern - 1);
  ck_assert_int_eq(mailproto_mailbox_match(pattern, name), 0);
  /* With separators: "a/a/a/.../a" against "%/%/.../%b". */
  for (int i = 0; i < MAILPROTO_MAILBOX_NAME_MAX; i++)
    name[i] = i % 2 ? '/' : 'a';
  name[MAILPROTO_MAILBOX_NAME_MAX - 1] = 'a';
  ck_assert_int_eq(mailproto_mailbox_match("*a*a*a*a*a*b", name), 0);
  ck_assert_int_eq(mailproto_mailbox_match("*/*/*/*/*/*", name), 1);
  ck_assert_int_eq(mailproto_mailbox_match("%", name), 0);
}
END_TEST

START_TEST(test_mailbox_match_rejects_overlong_names) {
  char *name = malloc(MAILPROTO_MAILBOX_NAME_MAX + 2);
  ck_assert_ptr_nonnull(name);
  memset(name, 'x', MAILPROTO_MAILBOX_NAME_MAX + 1);
  name[MAILPROTO_MAILBOX_NAME_MAX + 1] = '\0';
  /* No mailbox has such a name, so no pattern lists it. */
  ck_assert_int_eq(mailproto_mailbox_match("*", name), 0);
  name[MAILPROTO_MAILBOX_NAME_MAX] = '\0';
  ck_assert_int_eq(mailproto_mailbox_match("*", name), 1);
  free(name);
}
END_TEST

START_TEST(test_mailbox_match_reads_only_its_strings) {
  overread_guard g1, g2;
  ck_assert_int_eq(overread_init(&g1, 64), 0);
  ck_assert_int_eq(overread_init(&g2, 64), 0);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *p = (const char *)overread_place(&g1, cases[i].pattern,
                                                 strlen(cases[i].pattern) + 1);
    const char *n = (const char *)overread_place(&g2, cases[i].name,
                                                 strlen(cases[i].name) + 1);
    ck_assert_int_eq(mailproto_mailbox_match(p, n), cases[i].match);
  }
  overread_free(&g1);
  overread_free(&g2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* mailproto_mailbox_name_check                                        */
/* ------------------------------------------------------------------ */

static const char *const good_names[] = {"a",
                                         "INBOX",
                                         "inbox/Sent",
                                         "a/b/c",
                                         "a.b",
                                         "a..b",
                                         ".a",
                                         "..a",
                                         "a.",
                                         "a b",
                                         "a%b",
                                         "a*b",
                                         "[Gmail]/All Mail",
                                         "Entw\xc3\xbcrfe",
                                         "\xe6\x97\xa5\xe6\x9c\xac",
                                         "\xf0\x9f\x93\xab",
                                         "\xef\xbf\xbd",
                                         "\xf4\x8f\xbf\xbf",
                                         "~x",
                                         NULL};

static const char *const bad_names[] = {"",
                                        "/",
                                        "/a",
                                        "a/",
                                        "a//b",
                                        ".",
                                        "..",
                                        "a/.",
                                        "a/..",
                                        "./a",
                                        "../a",
                                        "a/./b",
                                        "a/../b",
                                        "a\x01"
                                        "b",
                                        "\x1f",
                                        "a\x7f",
                                        "tab\t",
                                        "nl\n",
                                        "cr\r",
                                        "\xc2\x80",
                                        "\xc2\x9f",
                                        "\x80",
                                        "a\xbf",
                                        "a\xc3",
                                        "a\xe6\x97",
                                        "\xf0\x9f\x93",
                                        "\xc0\x80",
                                        "\xc1\xbf",
                                        "\xe0\x80\xaf",
                                        "\xe0\x9f\xbf",
                                        "\xf0\x80\x80\x80",
                                        "\xf0\x8f\xbf\xbf",
                                        "\xed\xa0\x80",
                                        "\xed\xbf\xbf",
                                        "\xf4\x90\x80\x80",
                                        "\xf5\x80\x80\x80",
                                        "\xf8\x88\x80\x80\x80",
                                        "\xfe",
                                        "\xff",
                                        "\xc3\x28",
                                        "\xe2\x28\xa1",
                                        NULL};

START_TEST(test_name_check_accepts_valid_names) {
  for (size_t i = 0; good_names[i]; i++)
    ck_assert_msg(mailproto_mailbox_name_check(good_names[i]) == 0,
                  "rejected good name #%zu", i);
}
END_TEST

START_TEST(test_name_check_rejects_bad_names) {
  for (size_t i = 0; bad_names[i]; i++)
    ck_assert_msg(mailproto_mailbox_name_check(bad_names[i]) ==
                      MAILPROTO_ERR_BAD_NAME,
                  "accepted bad name #%zu", i);
  ck_assert_int_eq(mailproto_mailbox_name_check(NULL), MAILPROTO_ERR_BAD_NAME);
}
END_TEST

START_TEST(test_name_check_length_limit) {
  char name[MAILPROTO_MAILBOX_NAME_MAX + 2];
  memset(name, 'n', sizeof name);
  name[MAILPROTO_MAILBOX_NAME_MAX] = '\0';
  ck_assert_int_eq(mailproto_mailbox_name_check(name), 0);
  name[MAILPROTO_MAILBOX_NAME_MAX] = 'n';
  name[MAILPROTO_MAILBOX_NAME_MAX + 1] = '\0';
  ck_assert_int_eq(mailproto_mailbox_name_check(name), MAILPROTO_ERR_BAD_NAME);
  /* A multi-byte character may not straddle the limit. */
  memset(name, 'n', sizeof name);
  name[MAILPROTO_MAILBOX_NAME_MAX - 1] = '\xc3';
  name[MAILPROTO_MAILBOX_NAME_MAX] = '\xbc';
  name[MAILPROTO_MAILBOX_NAME_MAX + 1] = '\0';
  ck_assert_int_eq(mailproto_mailbox_name_check(name), MAILPROTO_ERR_BAD_NAME);
  name[MAILPROTO_MAILBOX_NAME_MAX - 2] = '\xc3';
  name[MAILPROTO_MAILBOX_NAME_MAX - 1] = '\xbc';
  name[MAILPROTO_MAILBOX_NAME_MAX] = '\0';
  ck_assert_int_eq(mailproto_mailbox_name_check(name), 0);
  /* Deep hierarchies are fine within the limit. */
  for (int i = 0; i < MAILPROTO_MAILBOX_NAME_MAX; i++)
    name[i] = i % 2 ? '/' : 'x';
  name[MAILPROTO_MAILBOX_NAME_MAX - 1] = '\0';
  ck_assert_int_eq(mailproto_mailbox_name_check(name), 0);
}
END_TEST

START_TEST(test_name_check_reads_only_the_name) {
  overread_guard g;
  ck_assert_int_eq(overread_init(&g, 64), 0);
  for (size_t i = 0; good_names[i]; i++) {
    const char *n = (const char *)overread_place(&g, good_names[i],
                                                 strlen(good_names[i]) + 1);
    ck_assert_int_eq(mailproto_mailbox_name_check(n), 0);
  }
  for (size_t i = 0; bad_names[i]; i++) {
    const char *n = (const char *)overread_place(&g, bad_names[i],
                                                 strlen(bad_names[i]) + 1);
    ck_assert_int_eq(mailproto_mailbox_name_check(n), MAILPROTO_ERR_BAD_NAME);
  }
  /* Truncated sequences right before the terminator. */
  static const char *const cut[] = {"\xc3", "\xe6\x97", "\xf0\x9f\x93", NULL};
  for (size_t i = 0; cut[i]; i++) {
    const char *n =
        (const char *)overread_place(&g, cut[i], strlen(cut[i]) + 1);
    ck_assert_int_eq(mailproto_mailbox_name_check(n), MAILPROTO_ERR_BAD_NAME);
  }
  overread_free(&g);
}
END_TEST

/* ------------------------------------------------------------------ */
/* mailproto_mailbox_is_inbox                                          */
/* ------------------------------------------------------------------ */

START_TEST(test_is_inbox_any_case) {
  ck_assert_int_eq(mailproto_mailbox_is_inbox("INBOX"), 1);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("inbox"), 1);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("iNbOx"), 1);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("INBOX/"), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("INBOX/a"), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("INBOXX"), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox("INBO"), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox(" INBOX"), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox(""), 0);
  ck_assert_int_eq(mailproto_mailbox_is_inbox(NULL), 0);
  overread_guard g;
  ck_assert_int_eq(overread_init(&g, 16), 0);
  static const char *const probes[] = {"", "I", "IN", "INB", "INBO", "inbox"};
  for (size_t i = 0; i < 6; i++) {
    const char *n =
        (const char *)overread_place(&g, probes[i], strlen(probes[i]) + 1);
    ck_assert_int_eq(mailproto_mailbox_is_inbox(n), i == 5);
  }
  overread_free(&g);
}
END_TEST

Suite *suite_store_names(void) {
  Suite *s = suite_create("store_names");
  TCase *match = tcase_create("match");
  tcase_set_timeout(match, 120);
  tcase_add_test(match, test_mailbox_match_table);
  tcase_add_test(match, test_mailbox_match_agrees_with_definition);
  tcase_add_test(match, test_mailbox_match_pathological_patterns);
  tcase_add_test(match, test_mailbox_match_rejects_overlong_names);
  tcase_add_test(match, test_mailbox_match_reads_only_its_strings);
  suite_add_tcase(s, match);
  TCase *check = tcase_create("name_check");
  tcase_add_test(check, test_name_check_accepts_valid_names);
  tcase_add_test(check, test_name_check_rejects_bad_names);
  tcase_add_test(check, test_name_check_length_limit);
  tcase_add_test(check, test_name_check_reads_only_the_name);
  tcase_add_test(check, test_is_inbox_any_case);
  suite_add_tcase(s, check);
  return s;
}
