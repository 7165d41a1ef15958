/* SASLprep (RFC 4013) over stringprep (RFC 3454): mapping, normalisation
 * form KC of Unicode 3.2, prohibited output, the bidirectional check,
 * unassigned code points in stored strings. */
#include <string.h>

#include "core/saslprep.h"
#include "mailproto/mailproto.h"
#include "suites.h"

static int prep_kind(const char *in, mailproto_prep_kind kind, char *out,
                     size_t out_size) {
  size_t n = 0;
  int rc = mailproto_saslprep(in, strlen(in), kind, out, out_size - 1, &n);
  out[rc == 0 ? n : 0] = '\0';
  return rc;
}

static int prep(const char *in, char *out) {
  return prep_kind(in, MAILPROTO_PREP_QUERY, out, 64);
}

/* RFC 4013 3: every example of the table. */
START_TEST(test_saslprep_rfc4013_examples) {
  char out[64];
  /* 1. "I<U+00AD>X" -> "IX": SOFT HYPHEN mapped to nothing. */
  ck_assert_int_eq(prep("I\xc2\xadX", out), 0);
  ck_assert_str_eq(out, "IX");
  /* 2, 3. No transformation; case is preserved. */
  ck_assert_int_eq(prep("user", out), 0);
  ck_assert_str_eq(out, "user");
  ck_assert_int_eq(prep("USER", out), 0);
  ck_assert_str_eq(out, "USER");
  /* 4. "<U+00AA>" (FEMININE ORDINAL INDICATOR) -> "a": NFKC. */
  ck_assert_int_eq(prep("\xc2\xaa", out), 0);
  ck_assert_str_eq(out, "a");
  /* 5. "<U+2168>" (ROMAN NUMERAL NINE) -> "IX": NFKC. */
  ck_assert_int_eq(prep("\xe2\x85\xa8", out), 0);
  ck_assert_str_eq(out, "IX");
  /* 6. "<U+0007>": prohibited character. */
  ck_assert_int_eq(prep("\x07", out), MAILPROTO_ERR_SYNTAX);
  /* 7. "<U+0627><U+0031>": bidirectional check (ARABIC LETTER ALEF first
   * but a digit last). */
  ck_assert_int_eq(prep("\xd8\xa7"
                        "1",
                        out),
                   MAILPROTO_ERR_SYNTAX);
}
END_TEST

START_TEST(test_saslprep_maps_spaces_and_invisibles) {
  char out[64];
  /* NO-BREAK SPACE and IDEOGRAPHIC SPACE -> SPACE (C.1.2). */
  ck_assert_int_eq(prep("a\xc2\xa0"
                        "b\xe3\x80\x80"
                        "c",
                        out),
                   0);
  ck_assert_str_eq(out, "a b c");
  /* ZERO WIDTH SPACE, ZERO WIDTH JOINER, BOM, variation selector: B.1. */
  ck_assert_int_eq(prep("p\xe2\x80\x8b"
                        "a\xe2\x80\x8d"
                        "s\xef\xbb\xbf"
                        "s\xef\xb8\x8f",
                        out),
                   0);
  ck_assert_str_eq(out, "pass");
  /* Text already in NFKC is kept as it is. */
  ck_assert_int_eq(prep("j\xc3\xb6rg", out), 0);
  ck_assert_str_eq(out, "j\xc3\xb6rg");
}
END_TEST

/* UAX #15: compatibility decomposition, canonical reordering, canonical
 * composition (blocked marks stay apart), Hangul by arithmetic. */
START_TEST(test_saslprep_normalises_kc) {
  char out[64];
  /* Fullwidth letters and a ligature: compatibility decompositions. */
  ck_assert_int_eq(prep("\xef\xbc\xb0\xef\xbd\x81"
                        "\xef\xac\x81",
                        out),
                   0);
  ck_assert_str_eq(out, "Pafi");
  /* "e" + COMBINING ACUTE composes to U+00E9: the form a Mac keyboard
   * and a Windows one give compare equal. */
  ck_assert_int_eq(prep("caf"
                        "e\xcc\x81",
                        out),
                   0);
  ck_assert_str_eq(out, "caf\xc3\xa9");
  /* "a" + CIRCUMFLEX (class 230) + DOT BELOW (class 220): reordered,
   * then composed to U+1EAD. */
  ck_assert_int_eq(prep("a\xcc\x82\xcc\xa3", out), 0);
  ck_assert_str_eq(out, "\xe1\xba\xad");
  /* A second ACUTE is blocked by the first (same class): "á" + U+0301. */
  ck_assert_int_eq(prep("a\xcc\x81\xcc\x81", out), 0);
  ck_assert_str_eq(out, "\xc3\xa1\xcc\x81");
  /* U+1100 U+1161 U+11A8 (conjoining jamo) -> U+AC01; U+AC01 stays. */
  ck_assert_int_eq(prep("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", out), 0);
  ck_assert_str_eq(out, "\xea\xb0\x81");
  ck_assert_int_eq(prep("\xea\xb0\x81", out), 0);
  ck_assert_str_eq(out, "\xea\xb0\x81");
  /* CIRCLED DIGIT ONE and SUPERSCRIPT TWO -> "12". */
  ck_assert_int_eq(prep("\xe2\x91\xa0\xc2\xb2", out), 0);
  ck_assert_str_eq(out, "12");
  /* U+2F868: RFC 3454 6 pins Unicode 3.2, whose mapping (U+2136A)
   * Corrigendum 4 later changed. */
  ck_assert_int_eq(prep("\xf0\xaf\xa1\xa8", out), 0);
  ck_assert_str_eq(out, "\xf0\xa1\x8d\xaa");
}
END_TEST

/* RFC 3454 6: RandALCat text must not hold LCat characters and must
 * start and end with RandALCat; neutral characters may stand between. */
START_TEST(test_saslprep_bidi_check) {
  char out[64];
  ck_assert_int_eq(prep("\xd7\x90\xd7\x91", out), 0); /* Hebrew alef bet */
  ck_assert_str_eq(out, "\xd7\x90\xd7\x91");
  ck_assert_int_eq(prep("\xd7\x90"
                        "1\xd7\x91",
                        out),
                   0); /* a digit between */
  ck_assert_int_eq(prep("\xd7\x90"
                        "a\xd7\x91",
                        out),
                   MAILPROTO_ERR_SYNTAX); /* a Latin letter among them */
  ck_assert_int_eq(prep("1\xd7\x90", out), MAILPROTO_ERR_SYNTAX);
  /* The check is on the normalised form: U+FB21 (wide alef) is R too. */
  ck_assert_int_eq(prep("\xef\xac\xa1", out), 0);
  ck_assert_str_eq(out, "\xd7\x90");
  ck_assert_int_eq(prep("latin only", out), 0);
}
END_TEST

START_TEST(test_saslprep_prohibited_output) {
  static const char *const bad[] = {
      "a\x7f",             /* C.2.1 DELETE */
      "a\xc2\x85",         /* C.2.2 NEXT LINE */
      "a\xe2\x80\xa8",     /* C.2.2 LINE SEPARATOR */
      "a\xee\x80\x80",     /* C.3 private use U+E000 */
      "a\xf3\xb0\x80\x80", /* C.3 plane 15 private use */
      "a\xef\xb7\x90",     /* C.4 non-character U+FDD0 */
      "a\xef\xbf\xbe",     /* C.4 U+FFFE */
      "a\xf0\x9f\xbf\xbf", /* C.4 U+1FFFF */
      "a\xef\xbf\xbd",     /* C.6 REPLACEMENT CHARACTER */
      "a\xe2\xbf\xb0",     /* C.7 U+2FF0 */
      "a\xe2\x80\x8e",     /* C.8 LEFT-TO-RIGHT MARK */
      "a\xe2\x80\xae",     /* C.8 RIGHT-TO-LEFT OVERRIDE */
      "a\xf3\xa0\x80\x81", /* C.9 LANGUAGE TAG */
      "a\xc3",             /* not UTF-8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char out[16];
    ck_assert_msg(prep_kind(bad[i], MAILPROTO_PREP_QUERY, out, sizeof out) ==
                      MAILPROTO_ERR_SYNTAX,
                  "case %zu", i);
  }
}
END_TEST

/* RFC 3454 7 (RFC 4013 2.5): code points Unicode 3.2 had not assigned
 * pass in a query but not in a stored string. */
START_TEST(test_saslprep_unassigned_code_points) {
  char out[64];
  static const char *const later[] = {
      "d\xc8\xa1",         /* U+0221, Unicode 4.0 */
      "x\xf0\x9f\x98\x80", /* U+1F600, Unicode 6.1 */
  };
  for (size_t i = 0; i < sizeof later / sizeof later[0]; i++) {
    ck_assert_int_eq(prep_kind(later[i], MAILPROTO_PREP_QUERY, out, 64), 0);
    ck_assert_str_eq(out, later[i]);
    ck_assert_int_eq(prep_kind(later[i], MAILPROTO_PREP_STORED, out, 64),
                     MAILPROTO_ERR_SYNTAX);
  }
  ck_assert_int_eq(prep_kind("j\xc3\xb6rg", MAILPROTO_PREP_STORED, out, 64), 0);
  ck_assert(mailproto_unicode32_unassigned(0x0221));
  ck_assert(!mailproto_unicode32_unassigned(0x0220));
  ck_assert(!mailproto_unicode32_unassigned(0xFDD0)); /* non-character */
}
END_TEST

/* Normalisation lengthens: U+FDFA is 3 bytes in and 33 out. */
START_TEST(test_saslprep_result_must_fit) {
  char out[64];
  const char *fdfa = "\xef\xb7\xba";
  ck_assert_int_eq(prep_kind(fdfa, MAILPROTO_PREP_QUERY, out, 34), 0);
  ck_assert_uint_eq(strlen(out), 33);
  ck_assert_int_eq(prep_kind(fdfa, MAILPROTO_PREP_QUERY, out, 33),
                   MAILPROTO_ERR_TOO_LONG);
  /* 85 of them (255 bytes, the field limit) decompose to more code points
   * than the work area holds: refused, not cut. */
  char in[256];
  for (size_t i = 0; i < 85; i++)
    memcpy(in + 3 * i, fdfa, 3);
  size_t n;
  char big[4096];
  ck_assert_int_eq(
      mailproto_saslprep(in, 255, MAILPROTO_PREP_QUERY, big, sizeof big, &n),
      MAILPROTO_ERR_TOO_LONG);
  /* Eight (24 bytes) give 264, more than a 255-byte field holds. */
  ck_assert_int_eq(
      mailproto_credential_prepare(in, 24, MAILPROTO_PREP_QUERY, big, 256, &n),
      MAILPROTO_ERR_TOO_LONG);
  ck_assert_str_eq(big, "");
}
END_TEST

static int credential(const char *in, char *out, size_t out_size, size_t *n) {
  return mailproto_credential_prepare(in, strlen(in), MAILPROTO_PREP_QUERY, out,
                                      out_size, n);
}

/* What every login path and the shipped stores apply: SASLprep for
 * UTF-8, the rest as it is, ASCII controls refused everywhere, and an
 * input that prepares to nothing refused (RFC 4616 2). */
START_TEST(test_credential_prepare_paths) {
  char out[32];
  size_t n = 99;
  ck_assert_int_eq(credential("", out, sizeof out, &n), 0);
  ck_assert_uint_eq(n, 0);
  ck_assert_int_eq(credential("p w", out, sizeof out, &n), 0);
  ck_assert_str_eq(out, "p w");
  ck_assert_int_eq(credential("p\xe4ss", out, sizeof out, &n), 0);
  ck_assert_str_eq(out, "p\xe4ss"); /* Latin-1: not UTF-8, as it is */
  ck_assert_int_eq(credential("k\xc2\xa0"
                              "ey",
                              out, sizeof out, &n),
                   0);
  ck_assert_str_eq(out, "k ey");
  ck_assert_uint_eq(n, 4);
  ck_assert_int_eq(credential("\xe2\x85\xa8", out, sizeof out, &n), 0);
  ck_assert_str_eq(out, "IX");
  ck_assert_int_eq(credential("a\tb", out, sizeof out, &n),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(credential("\xe4\x7f", out, sizeof out, &n),
                   MAILPROTO_ERR_SYNTAX);
  ck_assert_int_eq(credential("\xc2\xad", out, sizeof out, &n),
                   MAILPROTO_ERR_SYNTAX);
  /* Room for the NUL is part of out_size. */
  ck_assert_int_eq(credential("abc", out, 4, &n), 0);
  ck_assert_int_eq(credential("abc", out, 3, &n), MAILPROTO_ERR_TOO_LONG);
}
END_TEST

Suite *suite_core_saslprep(void) {
  Suite *s = suite_create("core_saslprep");
  TCase *tc = tcase_create("saslprep");
  tcase_add_test(tc, test_saslprep_rfc4013_examples);
  tcase_add_test(tc, test_saslprep_maps_spaces_and_invisibles);
  tcase_add_test(tc, test_saslprep_normalises_kc);
  tcase_add_test(tc, test_saslprep_bidi_check);
  tcase_add_test(tc, test_saslprep_prohibited_output);
  tcase_add_test(tc, test_saslprep_unassigned_code_points);
  tcase_add_test(tc, test_saslprep_result_must_fit);
  tcase_add_test(tc, test_credential_prepare_paths);
  suite_add_tcase(s, tc);
  return s;
}
