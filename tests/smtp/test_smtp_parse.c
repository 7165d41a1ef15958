/*
 * MAIL/RCPT argument parsing (RFC 5321 4.1.2, 4.1.3, 4.5.3.1; RFC 1870,
 * 6152, 3030, 6531, 4954 5, 3461 4) and the xtext and HELO domain checks.
 * Every input is placed right before an unreadable page, and so is every
 * prefix of every table input: a read past the end crashes at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mailproto/smtp.h"
#include "smtp/smtp_parse.h"
#include "suites.h"
#include "support/overread.h"

/* Without fork, Check records every passing ck_assert; loops use this,
 * which calls Check only on failure. */
#define REQUIRE(cond)                                                          \
  do {                                                                         \
    if (!(cond))                                                               \
      ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);                    \
  } while (0)

#define ALL MAILPROTO_SMTP_EXT_ALL
#define S(str) str, sizeof(str) - 1

static overread_guard guard;

static void guard_setup(void) {
  ck_assert_int_eq(overread_init(&guard, 8192), 0);
}

static void guard_teardown(void) {
  overread_free(&guard);
}

/* A printable rendering of test input for failure messages. */
static const char *show(const char *s, size_t len) {
  static char buf[2048];
  size_t o = 0;
  for (size_t i = 0; i < len && o + 5 < sizeof buf; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\')
      buf[o++] = (char)ch;
    else
      o += (size_t)snprintf(buf + o, sizeof buf - o, "\\x%02x", ch);
  }
  buf[o] = '\0';
  return buf;
}

/* The replies smtp_parse.h documents, and nothing else. */
static int documented(const mailproto_smtp_reply_spec *r, int rcpt) {
  if (!r->enhanced || !r->text)
    return 0;
  if (r->code == 501)
    return strcmp(r->enhanced, "5.5.2") == 0 ||
           strcmp(r->enhanced, "5.5.4") == 0 ||
           strcmp(r->enhanced, rcpt ? "5.1.3" : "5.1.7") == 0;
  if (r->code == 555)
    return strcmp(r->enhanced, "5.5.4") == 0;
  return r->code == (rcpt ? 553 : 550) && strcmp(r->enhanced, "5.6.7") == 0;
}

static int parse_at_guard(int rcpt, const char *in, size_t len, unsigned ext,
                          int smtputf8, mailproto_smtp_envelope_args *out) {
  const char *p = (const char *)overread_place(&guard, in, len);
  REQUIRE(p != NULL);
  return rcpt ? mailproto_smtp_parse_rcpt(p, len, ext, smtputf8, out)
              : mailproto_smtp_parse_mail(p, len, ext, out);
}

/* Checks what any successful parse promises. */
static void check_result(const mailproto_smtp_envelope_args *a) {
  REQUIRE(a->path_len <= MAILPROTO_SMTP_PATH_MAX);
  REQUIRE(strlen(a->path) == a->path_len);
  for (size_t i = 0; i < a->path_len; i++) {
    unsigned char ch = (unsigned char)a->path[i];
    REQUIRE(ch >= 0x20 && ch != 0x7f);
    REQUIRE(ch < 0x80 || a->path_utf8);
  }
}

/* Every prefix of `in`, also at the guard: an answer, never a crash. */
static void parse_prefixes(int rcpt, const char *in, size_t len, unsigned ext,
                           int smtputf8) {
  mailproto_smtp_envelope_args a;
  for (size_t k = 0; k < len; k++) {
    if (parse_at_guard(rcpt, in, k, ext, smtputf8, &a) == 0)
      check_result(&a);
    else
      REQUIRE(documented(&a.reply, rcpt));
  }
}

typedef struct env_case {
  int rcpt;
  unsigned off; /* extensions switched off; all others are on */
  int smtputf8; /* RCPT: the transaction's MAIL had SMTPUTF8 */
  const char *in;
  size_t len;
  int code; /* 0: accepted */
  const char *enhanced;
  const char *path; /* the address when accepted */
} env_case;

#define MAIL_OK(in, path)                                                      \
  { 0, 0, 0, S(in), 0, NULL, path }
#define MAIL_BAD(in, code, enh)                                                \
  { 0, 0, 0, S(in), code, enh, NULL }
#define MAIL_BAD_OFF(off, in, code, enh)                                       \
  { 0, off, 0, S(in), code, enh, NULL }
#define RCPT_OK(in, path)                                                      \
  { 1, 0, 0, S(in), 0, NULL, path }
#define RCPT8_OK(in, path)                                                     \
  { 1, 0, 1, S(in), 0, NULL, path }
#define RCPT_BAD(in, code, enh)                                                \
  { 1, 0, 0, S(in), code, enh, NULL }
#define RCPT8_BAD(in, code, enh)                                               \
  { 1, 0, 1, S(in), code, enh, NULL }
#define RCPT_BAD_OFF(off, in, code, enh)                                       \
  { 1, off, 0, S(in), code, enh, NULL }

static void run_cases(const env_case *t, size_t n) {
  for (size_t i = 0; i < n; i++) {
    mailproto_smtp_envelope_args a;
    unsigned ext = ALL & ~t[i].off;
    int rc =
        parse_at_guard(t[i].rcpt, t[i].in, t[i].len, ext, t[i].smtputf8, &a);
    const char *what = t[i].rcpt ? "RCPT" : "MAIL";
    if (t[i].code == 0) {
      if (rc != 0)
        ck_abort_msg("%s%s refused: %d %s %s", what, show(t[i].in, t[i].len),
                     a.reply.code, a.reply.enhanced, a.reply.text);
      check_result(&a);
      if (strcmp(a.path, t[i].path) != 0)
        ck_abort_msg("%s%s gave path \"%s\", want \"%s\"", what,
                     show(t[i].in, t[i].len), a.path, t[i].path);
    } else {
      if (rc != -1 || a.reply.code != t[i].code ||
          strcmp(a.reply.enhanced, t[i].enhanced) != 0)
        ck_abort_msg("%s%s gave %d %d %s (%s), want %d %s", what,
                     show(t[i].in, t[i].len), rc, a.reply.code,
                     rc ? a.reply.enhanced : "-", rc ? a.reply.text : "-",
                     t[i].code, t[i].enhanced);
      REQUIRE(documented(&a.reply, t[i].rcpt));
    }
    parse_prefixes(t[i].rcpt, t[i].in, t[i].len, ext, t[i].smtputf8);
  }
}

#define RUN(table) run_cases(table, sizeof table / sizeof table[0])

/* Parses and requires success; the result stays valid until the next. */
static const mailproto_smtp_envelope_args *must_parse(int rcpt, const char *in,
                                                      unsigned ext) {
  static mailproto_smtp_envelope_args a;
  size_t len = strlen(in);
  int rc = parse_at_guard(rcpt, in, len, ext, 0, &a);
  if (rc != 0)
    ck_abort_msg("%s refused: %d %s %s", show(in, len), a.reply.code,
                 a.reply.enhanced, a.reply.text);
  check_result(&a);
  parse_prefixes(rcpt, in, len, ext, 0);
  return &a;
}

/* ------------------------------------------------------------------ */
/* The command shape: "FROM:" / "TO:", brackets, spaces */

START_TEST(test_parse_mail_rfc_examples) {
  static const env_case t[] = {
      /* RFC 5321 4.1.1.3 and Appendix D.1 */
      MAIL_OK(" FROM:<userx@y.foo.org>", "userx@y.foo.org"),
      MAIL_OK(" FROM:<Smith@bar.com>", "Smith@bar.com"),
      RCPT_OK(" TO:<Jones@foo.com>", "Jones@foo.com"),
      RCPT_OK(" TO:<@hosta.int,@jkl.org:userc@d.bar.org>", "userc@d.bar.org"),
      /* RFC 1870 7, RFC 6152 4, RFC 3030 5 */
      MAIL_OK(" FROM:<ned@thor.innosoft.com> SIZE=500000",
              "ned@thor.innosoft.com"),
      MAIL_OK(" FROM:<ned@ymir.claremont.edu> BODY=8BITMIME",
              "ned@ymir.claremont.edu"),
      MAIL_OK(" FROM:<ned@ymir.claremont.edu> BODY=BINARYMIME",
              "ned@ymir.claremont.edu"),
      /* RFC 4954 5.1 */
      MAIL_OK(" FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com",
              "e=mc2@example.com"),
      MAIL_OK(" FROM:<john+@example.org> AUTH=<>", "john+@example.org"),
      /* RFC 3461 9 */
      MAIL_OK(" FROM:<Alice@Example.ORG> RET=HDRS ENVID=QQ314159",
              "Alice@Example.ORG"),
      RCPT_OK(
          " TO:<Bob@Example.COM> NOTIFY=SUCCESS ORCPT=rfc822;Bob@Example.COM",
          "Bob@Example.COM"),
      RCPT_OK(" TO:<Dana@Ivory.EDU> NOTIFY=SUCCESS,FAILURE "
              "ORCPT=rfc822;Dana@Ivory.EDU",
              "Dana@Ivory.EDU"),
      RCPT_OK(" TO:<Fred@Bombs.AF.MIL> NOTIFY=NEVER", "Fred@Bombs.AF.MIL"),
      RCPT_OK(" TO:<George@Tax-ME.GOV> NOTIFY=FAILURE "
              "ORCPT=rfc822;George@Tax-ME.GOV",
              "George@Tax-ME.GOV"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_command_shape) {
  static const env_case t[] = {
      /* RFC 5321 2.4: "FROM:" / "TO:" in any case */
      MAIL_OK(" from:<a@b>", "a@b"),
      MAIL_OK(" FrOm:<a@b>", "a@b"),
      RCPT_OK(" to:<a@b>", "a@b"),
      /* One space after the colon: RFC 5321 says none, clients send it. */
      MAIL_OK(" FROM: <a@b>", "a@b"),
      RCPT_OK(" TO: <a@b>", "a@b"),
      MAIL_BAD(" FROM:  <a@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:\t<a@b>", 501, "5.1.7"),
      /* Trailing white space is tolerated (RFC 5321 4.1.1). */
      MAIL_OK(" FROM:<a@b> ", "a@b"),
      MAIL_OK(" FROM:<a@b>\t", "a@b"),
      MAIL_OK(" FROM:<a@b> \t  ", "a@b"),
      MAIL_OK(" FROM:<a@b> SIZE=1 ", "a@b"),
      MAIL_OK(" FROM:<a@b> SIZE=1\t \t", "a@b"),
      /* No "FROM:" / "TO:" */
      MAIL_BAD("", 501, "5.5.2"),
      MAIL_BAD(" ", 501, "5.5.2"),
      MAIL_BAD(" FROM", 501, "5.5.2"),
      MAIL_BAD(" FROM<a@b>", 501, "5.5.2"),
      MAIL_BAD(" FROM :<a@b>", 501, "5.5.2"),
      MAIL_BAD("FROM:<a@b>", 501, "5.5.2"),
      MAIL_BAD("  FROM:<a@b>", 501, "5.5.2"),
      MAIL_BAD("\tFROM:<a@b>", 501, "5.5.2"),
      MAIL_BAD(" TO:<a@b>", 501, "5.5.2"),
      RCPT_BAD(" FROM:<a@b>", 501, "5.5.2"),
      RCPT_BAD(" T0:<a@b>", 501, "5.5.2"),
      RCPT_BAD(" TO", 501, "5.5.2"),
      /* The angle brackets are required. */
      MAIL_BAD(" FROM:", 501, "5.1.7"),
      MAIL_BAD(" FROM: ", 501, "5.1.7"),
      MAIL_BAD(" FROM:a@b", 501, "5.1.7"),
      RCPT_BAD(" TO:a@b", 501, "5.1.3"),
      MAIL_BAD(" FROM:<a@b", 501, "5.1.7"),
      MAIL_BAD(" FROM:<", 501, "5.1.7"),
      MAIL_BAD(" FROM:<<a@b>>", 501, "5.1.7"),
      MAIL_BAD(" FROM:\"<a@b>\"", 501, "5.1.7"),
      RCPT_BAD(" TO:<a@b", 501, "5.1.3"),
      /* Anything but a space (or trailing white space) after ">" */
      MAIL_BAD(" FROM:<a@b>x", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@b>>", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@b><c@d>", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@b>\tSIZE=1", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@b>  SIZE=1", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@b> \tSIZE=1", 501, "5.5.2"),
      RCPT_BAD(" TO:<a@b>,<c@d>", 501, "5.5.2"),
  };
  RUN(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Reverse-path, Forward-path, Postmaster, source routes */

START_TEST(test_parse_mail_null_reverse_path) {
  static const env_case t[] = {
      MAIL_OK(" FROM:<>", ""),
      MAIL_OK(" FROM: <>", ""),
      MAIL_OK(" FROM:<> SIZE=10", ""),
      MAIL_OK(" FROM:<> ", ""),
      /* "<>" is a Reverse-path only (RFC 5321 4.1.2). */
      RCPT_BAD(" TO:<>", 501, "5.1.3"),
      RCPT_BAD(" TO:<> NOTIFY=NEVER", 501, "5.1.3"),
      MAIL_BAD(" FROM:< >", 501, "5.1.7"),
      MAIL_BAD(" FROM:<@>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<@:>", 501, "5.1.7"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_rcpt_postmaster) {
  static const env_case t[] = {
      /* RFC 5321 4.1.1.3: "<Postmaster>" without a domain, any case; the
       * path is always spelled "Postmaster". */
      RCPT_OK(" TO:<Postmaster>", "Postmaster"),
      RCPT_OK(" TO:<postmaster>", "Postmaster"),
      RCPT_OK(" TO:<POSTMASTER>", "Postmaster"),
      RCPT_OK(" TO:<PoStMaStEr> NOTIFY=NEVER", "Postmaster"),
      RCPT_OK(" TO:<Postmaster@example.com>", "Postmaster@example.com"),
      /* Only as a Forward-path, and only exactly so. */
      MAIL_BAD(" FROM:<Postmaster>", 501, "5.1.7"),
      MAIL_OK(" FROM:<Postmaster@example.com>", "Postmaster@example.com"),
      RCPT_BAD(" TO:<Postmaster >", 501, "5.1.3"),
      RCPT_BAD(" TO:<Postmasters>", 501, "5.1.3"),
      RCPT_BAD(" TO:<Postmaste>", 501, "5.1.3"),
      RCPT_BAD(" TO:<\"Postmaster\">", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a.example:Postmaster>", 501, "5.1.3"),
      RCPT_BAD(" TO:<Postmaster", 501, "5.1.3"),
      RCPT_BAD(" TO:<Postmaster>x", 501, "5.5.2"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_rcpt_source_route) {
  static const env_case t[] = {
      /* A-d-l: accepted, dropped (RFC 5321 4.1.1.3, Appendix C). */
      RCPT_OK(" TO:<@a:u@c>", "u@c"),
      RCPT_OK(" TO:<@a,@b:user@c>", "user@c"),
      RCPT_OK(" TO:<@a.example,@b-1.example,@c.example:u@[192.0.2.1]>",
              "u@[192.0.2.1]"),
      MAIL_OK(" FROM:<@a,@b:user@c>", "user@c"),
      RCPT_OK(" TO:<@a:\"x y\"@c>", "\"x y\"@c"),
      /* At-domain = "@" Domain: no literals, no empty parts. */
      RCPT_BAD(" TO:<@a>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a:>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a,b:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a,,@b:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a,:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a;@b:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a:@b:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@[192.0.2.1]:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@-a:u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a::u@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a:u>", 501, "5.1.3"),
      RCPT_BAD(" TO:<@a :u@c>", 501, "5.1.3"),
      MAIL_BAD(" FROM:<@a,@b:>", 501, "5.1.7"),
  };
  RUN(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Local-part: Dot-string and Quoted-string */

START_TEST(test_parse_path_dot_string) {
  static const env_case t[] = {
      MAIL_OK(" FROM:<a@b>", "a@b"),
      MAIL_OK(" FROM:<first.last@b>", "first.last@b"),
      MAIL_OK(" FROM:<a.b.c.d@b>", "a.b.c.d@b"),
      /* Every atext character (RFC 5322 3.2.3) stands unquoted. */
      MAIL_OK(" FROM:<!#$%&'*+-/=?^_`{|}~@b>", "!#$%&'*+-/=?^_`{|}~@b"),
      MAIL_OK(" FROM:<0123456789@b>", "0123456789@b"),
      MAIL_OK(" FROM:<user+tag@example.com>", "user+tag@example.com"),
      /* The local part keeps its case (RFC 5321 2.4). */
      MAIL_OK(" FROM:<SmItH@Example.COM>", "SmItH@Example.COM"),
      /* Dot-string = Atom *("." Atom) */
      MAIL_BAD(" FROM:<.a@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a.@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a..b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<.@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<@b>", 501, "5.1.7"),
      /* specials are not atext */
      MAIL_BAD(" FROM:<a(b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a)b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a,b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a:b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a;b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a<b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a[b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a]b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a\\b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a\"b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a b@b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b@c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@>", 501, "5.1.7"),
      RCPT_BAD(" TO:<a b@c>", 501, "5.1.3"),
      RCPT_BAD(" TO:<user>", 501, "5.1.3"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_path_quoted_local_part) {
  static const env_case t[] = {
      /* Kept quoted when it must be, with the least escaping. */
      MAIL_OK(" FROM:<\"a b\"@x>", "\"a b\"@x"),
      MAIL_OK(" FROM:<\"a\\ b\"@x>", "\"a b\"@x"),
      MAIL_OK(" FROM:<\"a\\\\b\"@x>", "\"a\\\\b\"@x"),
      MAIL_OK(" FROM:<\"a\\\"b\"@x>", "\"a\\\"b\"@x"),
      MAIL_OK(" FROM:<\"a@b\"@x>", "\"a@b\"@x"),
      MAIL_OK(" FROM:<\"<>\"@x>", "\"<>\"@x"),
      MAIL_OK(" FROM:<\"a..b\"@x>", "\"a..b\"@x"),
      MAIL_OK(" FROM:<\".a\"@x>", "\".a\"@x"),
      MAIL_OK(" FROM:<\"a.\"@x>", "\"a.\"@x"),
      MAIL_OK(" FROM:<\"\"@x>", "\"\"@x"),
      MAIL_OK(" FROM:<\" \"@x>", "\" \"@x"),
      MAIL_OK(" FROM:<\"a;b c\"@x>", "\"a;b c\"@x"),
      /* RFC 5321 4.1.2's example: "Joe\,Smith" is Joe,Smith */
      MAIL_OK(" FROM:<\"Joe\\,Smith\"@x>", "\"Joe,Smith\"@x"),
      /* ... and unquoted when a Dot-string says the same (4.1.2: all
       * quoted forms are equivalent). */
      MAIL_OK(" FROM:<\"joe\"@x>", "joe@x"),
      MAIL_OK(" FROM:<\"\\j\\o\\e\"@x>", "joe@x"),
      MAIL_OK(" FROM:<\"a.b\"@x>", "a.b@x"),
      MAIL_OK(" FROM:<\"a+b=c\"@x>", "a+b=c@x"),
      RCPT_OK(" TO:<\"Postmaster\"@x>", "Postmaster@x"),
      /* Malformed */
      MAIL_BAD(" FROM:<\"a@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\"b@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a\"b\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\".b@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\"\"b\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\">", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"", 501, "5.1.7"),
      /* qtextSMTP and quoted-pairSMTP are %d32-126 only */
      MAIL_BAD(" FROM:<\"a\tb\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\\tb\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\x7f\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\\x7f\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\rb\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\\rb\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\nb\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\x01\"@x>", 501, "5.1.7"),
      RCPT_BAD(" TO:<\"a\"@>", 501, "5.1.3"),
  };
  RUN(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Domain and address literals */

START_TEST(test_parse_path_domain) {
  static const env_case t[] = {
      MAIL_OK(" FROM:<a@b>", "a@b"),
      MAIL_OK(" FROM:<a@mail.example.com>", "a@mail.example.com"),
      MAIL_OK(" FROM:<a@a-b.c-d.e>", "a@a-b.c-d.e"),
      MAIL_OK(" FROM:<a@a--b.example>", "a@a--b.example"),
      MAIL_OK(" FROM:<a@xn--bcher-kva.example>", "a@xn--bcher-kva.example"),
      MAIL_OK(" FROM:<a@1.2.3.4>", "a@1.2.3.4"),
      MAIL_OK(" FROM:<a@123>", "a@123"),
      MAIL_OK(" FROM:<a@EXAMPLE.Com>", "a@EXAMPLE.Com"),
      /* sub-domain = Let-dig [Ldh-str]: no "-" at either end, no "_"
       * (RFC 5321 4.1.2 requires 501 for those in an address). */
      MAIL_BAD(" FROM:<a@-b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b->", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b.-c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b-.c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b_c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@.b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b.>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b..c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@.>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b/c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b:c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b,c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b\\c>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@\"b\">", 501, "5.1.7"),
      RCPT_BAD(" TO:<a@-b>", 501, "5.1.3"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_path_address_literals) {
  static const env_case t[] = {
      /* IPv4-address-literal: four Snum of 0..255 (1*3DIGIT) */
      MAIL_OK(" FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]"),
      MAIL_OK(" FROM:<a@[0.0.0.0]>", "a@[0.0.0.0]"),
      MAIL_OK(" FROM:<a@[255.255.255.255]>", "a@[255.255.255.255]"),
      MAIL_OK(" FROM:<a@[001.02.3.004]>", "a@[001.02.3.004]"),
      /* IPv6-full */
      MAIL_OK(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8]>", "a@[IPv6:1:2:3:4:5:6:7:8]"),
      MAIL_OK(" FROM:<a@[IPv6:2001:0db8:0000:0000:0000:ff00:0042:8329]>",
              "a@[IPv6:2001:0db8:0000:0000:0000:ff00:0042:8329]"),
      /* IPv6-comp: "::" and at most six other groups */
      MAIL_OK(" FROM:<a@[IPv6:2001:db8::1]>", "a@[IPv6:2001:db8::1]"),
      MAIL_OK(" FROM:<a@[IPv6:::]>", "a@[IPv6:::]"),
      MAIL_OK(" FROM:<a@[IPv6:::1]>", "a@[IPv6:::1]"),
      MAIL_OK(" FROM:<a@[IPv6:1::]>", "a@[IPv6:1::]"),
      MAIL_OK(" FROM:<a@[IPv6:1:2:3:4:5:6::]>", "a@[IPv6:1:2:3:4:5:6::]"),
      MAIL_OK(" FROM:<a@[IPv6:::1:2:3:4:5:6]>", "a@[IPv6:::1:2:3:4:5:6]"),
      MAIL_OK(" FROM:<a@[IPv6:1:2:3::4:5:6]>", "a@[IPv6:1:2:3::4:5:6]"),
      MAIL_OK(" FROM:<a@[IPv6:ABCD:ef01::FfFf]>", "a@[IPv6:ABCD:ef01::FfFf]"),
      /* ABNF strings are case-insensitive (RFC 5234 2.3): "ipv6:" too */
      MAIL_OK(" FROM:<a@[ipv6:::1]>", "a@[ipv6:::1]"),
      /* IPv6v4-full: six groups and an IPv4 address */
      MAIL_OK(" FROM:<a@[IPv6:1:2:3:4:5:6:192.0.2.1]>",
              "a@[IPv6:1:2:3:4:5:6:192.0.2.1]"),
      /* IPv6v4-comp: "::" and at most four groups, then IPv4 */
      MAIL_OK(" FROM:<a@[IPv6:::192.0.2.1]>", "a@[IPv6:::192.0.2.1]"),
      MAIL_OK(" FROM:<a@[IPv6:::ffff:192.0.2.1]>", "a@[IPv6:::ffff:192.0.2.1]"),
      MAIL_OK(" FROM:<a@[IPv6:1:2:3:4::192.0.2.1]>",
              "a@[IPv6:1:2:3:4::192.0.2.1]"),
      MAIL_OK(" FROM:<a@[IPv6:1:2::3:4:192.0.2.1]>",
              "a@[IPv6:1:2::3:4:192.0.2.1]"),
      MAIL_OK(" FROM:<a@[IPv6:1::192.0.2.1]>", "a@[IPv6:1::192.0.2.1]"),
      /* General-address-literal: Standardized-tag ":" 1*dcontent */
      MAIL_OK(" FROM:<a@[x400:c=us;a=b]>", "a@[x400:c=us;a=b]"),
      MAIL_OK(" FROM:<a@[tag-1:a]>", "a@[tag-1:a]"),
      MAIL_OK(" FROM:<a@[-t:a]>", "a@[-t:a]"),
      MAIL_OK(" FROM:<a@[t:a:b:c]>", "a@[t:a:b:c]"),
      RCPT_OK(" TO:<\"x\"@[IPv6:::1]>", "x@[IPv6:::1]"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_path_bad_address_literals) {
  static const env_case t[] = {
      /* IPv4 */
      MAIL_BAD(" FROM:<a@[1.2.3.256]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.999]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[256.1.1.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4.5]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1..2.3]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[.1.2.3]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4.]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1234.1.1.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[0001.1.1.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.a]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.-1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[ 1.2.3.4]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4]x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4].b>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@b[1.2.3.4]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[[1.2.3.4]]>", 501, "5.1.7"),
      /* IPv6: one "::" at most, 8 groups (6 + IPv4) when there is none,
       * at most 6 (4 + IPv4) besides it, 1-4 hex digits per group */
      MAIL_BAD(" FROM:<a@[IPv6:1::2::3]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8:9]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:::1:2:3:4:5:6:7]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4::5:6:7]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:12345::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:g::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6::1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1::2:]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6::::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:::::1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:::2]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8 ]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:192.0.2.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:192.0.2.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5::192.0.2.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:192.0.2.1::]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:192.0.2.1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:::1.2.3]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:::1.2.3.256]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:::1.2.3.4:1]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1::2.3.4.5.6]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8]x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[IPv6:1:2:3:4:5:6:7:8>", 501, "5.1.7"),
      /* General literals: a tag, a colon, at least one dcontent */
      MAIL_BAD(" FROM:<a@[tag:]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[:x]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[t-:x]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[-:x]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[t_g:x]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[t.g:x]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[tag:a b]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[tag:a\\b]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[tag:a[b]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[tag:\x7f]>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[tag:\xc3\xa9]> SMTPUTF8", 501, "5.1.7"),
      RCPT_BAD(" TO:<a@[IPv6:1::2::3]>", 501, "5.1.3"),
  };
  RUN(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits: RFC 5321 4.5.3.1 */

/* `n` octets of domain: labels of at most 50 "d"s joined by dots. */
static void make_domain(char *out, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = (i % 51 == 50 && i + 1 < n) ? '.' : 'd';
  out[n] = '\0';
}

static int parse_built(int rcpt, const char *local, size_t domain_len,
                       const char *params, mailproto_smtp_envelope_args *a) {
  char domain[512], in[1024];
  make_domain(domain, domain_len);
  snprintf(in, sizeof in, "%s<%s@%s>%s", rcpt ? " TO:" : " FROM:", local,
           domain, params);
  size_t len = strlen(in);
  parse_prefixes(rcpt, in, len, ALL, 0);
  return parse_at_guard(rcpt, in, len, ALL, 0, a);
}

START_TEST(test_parse_path_length_limits) {
  mailproto_smtp_envelope_args a;
  char local[128];

  /* Local-part: 64 octets, as sent (quotes included). */
  memset(local, 'l', 64);
  local[64] = '\0';
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), 0);
  ck_assert_uint_eq(a.path_len, 64 + 1 + 10);
  local[64] = 'l';
  local[65] = '\0';
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), -1);
  ck_assert_int_eq(a.reply.code, 501);
  ck_assert_str_eq(a.reply.enhanced, "5.1.7");
  ck_assert_int_eq(parse_built(1, local, 10, "", &a), -1);
  ck_assert_str_eq(a.reply.enhanced, "5.1.3");
  local[0] = '"';
  local[63] = '"';
  local[64] = '\0';
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), 0);
  /* quotes dropped, as the content is a Dot-string */
  ck_assert_uint_eq(a.path_len, 62 + 1 + 10);
  local[63] = 'l';
  local[64] = '"';
  local[65] = '\0';
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), -1);
  ck_assert_int_eq(a.reply.code, 501);
  /* 40 escaped characters decode to 40 octets but take 82. */
  char *p = local;
  *p++ = '"';
  for (int i = 0; i < 40; i++) {
    *p++ = '\\';
    *p++ = 'q';
  }
  *p++ = '"';
  *p = '\0';
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), -1);
  /* 100 quoted characters: too long before the closing quote */
  local[0] = '"';
  memset(local + 1, 'q', 100);
  memcpy(local + 101, "\"", 2);
  ck_assert_int_eq(parse_built(0, local, 10, "", &a), -1);
  ck_assert_str_eq(a.reply.text, "Local part longer than 64 octets");

  /* Path: 256 octets with "<" and ">". */
  memset(local, 'l', 64);
  local[64] = '\0';
  ck_assert_int_eq(parse_built(0, local, 256 - 2 - 65, "", &a), 0);
  ck_assert_uint_eq(a.path_len, 254);
  ck_assert_int_eq(parse_built(0, local, 256 - 2 - 65, " SIZE=1", &a), 0);
  ck_assert_int_eq(parse_built(1, local, 256 - 2 - 65, "", &a), 0);
  ck_assert_int_eq(parse_built(0, local, 257 - 2 - 65, "", &a), -1);
  ck_assert_int_eq(a.reply.code, 501);
  ck_assert_str_eq(a.reply.enhanced, "5.1.7");
  ck_assert_str_eq(a.reply.text, "Path too long (256 octets at most)");
  ck_assert_int_eq(parse_built(1, local, 257 - 2 - 65, " NOTIFY=NEVER", &a),
                   -1);
  ck_assert_str_eq(a.reply.enhanced, "5.1.3");
  /* Domain: 255 octets can only be reached with a tiny local part, and
   * then the path is already too long (1 + 2 + 255 + 1 = 259). */
  ck_assert_int_eq(parse_built(0, "a", 252, "", &a), 0);
  ck_assert_int_eq(parse_built(0, "a", 253, "", &a), -1);
  ck_assert_int_eq(parse_built(0, "a", 255, "", &a), -1);
  ck_assert_int_eq(parse_built(0, "a", 256, "", &a), -1);
  ck_assert_int_eq(a.reply.code, 501);
  ck_assert_int_eq(parse_built(0, "a", 400, "", &a), -1);

  /* A source route counts toward the 256 octets (4.5.3.1.3). */
  char in[600], domain[300];
  make_domain(domain, 250);
  snprintf(in, sizeof in, " TO:<@%s:u@x>", domain); /* 2 + 250 + 5 */
  ck_assert_int_eq(parse_at_guard(1, in, strlen(in), ALL, 0, &a), -1);
  ck_assert_str_eq(a.reply.text, "Path too long (256 octets at most)");
  make_domain(domain, 249);
  snprintf(in, sizeof in, " TO:<@%s:u@x>", domain);
  ck_assert_int_eq(parse_at_guard(1, in, strlen(in), ALL, 0, &a), 0);
  ck_assert_str_eq(a.path, "u@x");
}
END_TEST

START_TEST(test_parse_path_label_limit) {
  mailproto_smtp_envelope_args a;
  char label[80], in[200];
  memset(label, 'x', 63);
  label[63] = '\0';
  snprintf(in, sizeof in, " FROM:<a@%s.example>", label);
  ck_assert_int_eq(parse_at_guard(0, in, strlen(in), ALL, 0, &a), 0);
  memset(label, 'x', 64);
  label[64] = '\0';
  snprintf(in, sizeof in, " FROM:<a@%s.example>", label);
  ck_assert_int_eq(parse_at_guard(0, in, strlen(in), ALL, 0, &a), -1);
  ck_assert_int_eq(a.reply.code, 501);
  ck_assert_str_eq(a.reply.enhanced, "5.1.7");
  snprintf(in, sizeof in, " TO:<a@b.%s>", label);
  ck_assert_int_eq(parse_at_guard(1, in, strlen(in), ALL, 0, &a), -1);
  ck_assert_str_eq(a.reply.enhanced, "5.1.3");
}
END_TEST

START_TEST(test_parse_path_long_input_is_bounded) {
  /* A path of 4000 octets (no ">" in reach) is refused for its length
   * after reading 256 octets; a long parameter list is fine. */
  static char in[4100];
  mailproto_smtp_envelope_args a;
  memcpy(in, " FROM:<", 7);
  memset(in + 7, 'a', 4000);
  ck_assert_int_eq(parse_at_guard(0, in, 4007, ALL, 0, &a), -1);
  ck_assert_str_eq(a.reply.text, "Path too long (256 octets at most)");
  memcpy(in, " FROM:<a@b>", 11);
  size_t n = 11;
  while (n + 8 < sizeof in) {
    memcpy(in + n, " XFOO=1", 7);
    n += 7;
  }
  ck_assert_int_eq(parse_at_guard(0, in, n, ALL, 0, &a), -1);
  ck_assert_int_eq(a.reply.code, 555);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Hostile input */

START_TEST(test_parse_mail_hostile_input) {
  /* atext allows "`", "$", "|", "{", "}", "'", "&", "!", "#", "*", "?",
   * "~", "/" and "=", and a quoted local part allows anything printable,
   * ";" and spaces included. Such addresses are valid RFC 5321 addresses
   * and are accepted as such: they are data, which the library never
   * hands to a shell, and the path can never hold CR, LF, NUL or another
   * control character (checked for every accepted input by
   * check_result), so it cannot smuggle a header line or a command. An
   * application that builds a command line from an address must quote
   * it; refusing legal addresses here would not make that unnecessary. */
  static const env_case t[] = {
      MAIL_BAD(" FROM:<;sleep 66;>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<;sleep 66;@x>", 501, "5.1.7"),
      RCPT_BAD(" TO:<;sleep 66;>", 501, "5.1.3"),
      MAIL_OK(" FROM:<`id`@x>", "`id`@x"),
      MAIL_OK(" FROM:<|cmd@x>", "|cmd@x"),
      MAIL_OK(" FROM:<${IFS}@x>", "${IFS}@x"),
      MAIL_OK(" FROM:<a'b@x>", "a'b@x"),
      MAIL_OK(" FROM:<\";sleep 66;\"@x>", "\";sleep 66;\"@x"),
      MAIL_BAD(" FROM:<$(id)@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<`id`>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x;id>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x`id`>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x>;id", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@x> SIZE=1;id", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> ;id", 501, "5.5.4"),
      MAIL_BAD(" FROM:<../../etc/passwd>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a/../../b@x>", 501, "5.1.7"),
      MAIL_OK(" FROM:<a/b/c@x>", "a/b/c@x"),
      MAIL_OK(" FROM:<%s%s%n@x>", "%s%s%n@x"),
      /* NUL bytes anywhere (the session refuses such lines first) */
      MAIL_BAD(" FROM:<a\0b@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x\0>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\0>", 501, "5.1.7"),
      MAIL_BAD(" FROM:\0<a@x>", 501, "5.1.7"),
      MAIL_BAD(" FR\0M:<a@x>", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@x>\0", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a@x> \0", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> SIZE=1\0", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> SIZE=\0", 501, "5.5.4"),
      MAIL_BAD(" FROM:<\"a\0\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"a\\\0\"@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@[1.2.3.4\0]>", 501, "5.1.7"),
      RCPT_BAD(" TO:<a@x> NOTIFY=NEVER\0", 501, "5.5.4"),
      /* CR and LF (a line never holds them; the parser refuses them) */
      MAIL_BAD(" FROM:<a@x>\r\n", 501, "5.5.2"),
      MAIL_BAD(" FROM:<a\r\n@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x\r\nRCPT TO:<b@y>>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x> SIZE=1\r\nRSET", 501, "5.5.4"),
      /* Tabs: only trailing white space */
      MAIL_BAD(" FROM:<a\t@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x\t>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x> SIZE=1\tBODY=7BIT", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> SIZE=\t1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> SIZE\t=1", 501, "5.5.4"),
      /* Other controls and DEL */
      MAIL_BAD(" FROM:<a\x1b[2J@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a\x7f@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@x> SIZE=1\x7f", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> X\x7f=1", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* UTF-8 (RFC 6531) */

START_TEST(test_parse_path_utf8) {
  static const env_case t[] = {
      /* Valid UTF-8 needs SMTPUTF8 in this MAIL (RFC 6531 3.5: 550) ... */
      MAIL_OK(" FROM:<j\xc3\xb6"
              "e@x> SMTPUTF8",
              "j\xc3\xb6"
              "e@x"),
      MAIL_OK(" FROM:<a@b\xc3\xbc"
              "cher.example> SMTPUTF8",
              "a@b\xc3\xbc"
              "cher.example"),
      MAIL_OK(" FROM:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90."
              "\xe5\xb9\xbf\xe5\x91\x8a> smtputf8 BODY=8BITMIME",
              "\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90."
              "\xe5\xb9\xbf\xe5\x91\x8a"),
      MAIL_OK(" FROM:<\xf0\x9f\x98\x80@x> SMTPUTF8", "\xf0\x9f\x98\x80@x"),
      MAIL_OK(" FROM:<\"j \xc3\xb6\"@x> SMTPUTF8", "\"j \xc3\xb6\"@x"),
      MAIL_OK(" FROM:<\"j\xc3\xb6\"@x> SMTPUTF8", "j\xc3\xb6@x"),
      MAIL_OK(" FROM:<\xc2\xa0@x> SMTPUTF8", "\xc2\xa0@x"),
      MAIL_OK(" FROM:<\xf4\x8f\xbf\xbf@x> SMTPUTF8", "\xf4\x8f\xbf\xbf@x"),
      MAIL_OK(" FROM:<\xf1\x80\x80\x80@x> SMTPUTF8", "\xf1\x80\x80\x80@x"),
      MAIL_OK(" FROM:<\xef\xbf\xbd@x> SMTPUTF8", "\xef\xbf\xbd@x"),
      MAIL_BAD(" FROM:<j\xc3\xb6"
               "e@x>",
               550, "5.6.7"),
      MAIL_BAD(" FROM:<a@b\xc3\xbc"
               "cher.example>",
               550, "5.6.7"),
      MAIL_BAD(" FROM:<j\xc3\xb6"
               "e@x> SIZE=10",
               550, "5.6.7"),
      /* ... even in a source route, which is dropped */
      MAIL_BAD(" FROM:<@\xc3\xbc.example:a@x>", 550, "5.6.7"),
      MAIL_OK(" FROM:<@\xc3\xbc.example:a@x> SMTPUTF8", "a@x"),
      /* with the extension off, SMTPUTF8 is unknown */
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_SMTPUTF8,
                   " FROM:<j\xc3\xb6"
                   "e@x> SMTPUTF8",
                   555, "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_SMTPUTF8,
                   " FROM:<j\xc3\xb6"
                   "e@x>",
                   550, "5.6.7"),
      /* ... and RCPT depends on the transaction's MAIL (3.5: 553). */
      RCPT8_OK(" TO:<j\xc3\xb6"
               "e@x>",
               "j\xc3\xb6"
               "e@x"),
      RCPT_BAD(" TO:<j\xc3\xb6"
               "e@x>",
               553, "5.6.7"),
      RCPT_BAD(" TO:<a@\xc3\xbc>", 553, "5.6.7"),
      /* Invalid UTF-8 is a syntax error, with or without SMTPUTF8. */
      MAIL_BAD(" FROM:<j\xc3@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<j\xc3@x>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xc3>", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xbf@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xc0\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xc1\xbf@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xe0\x80\xaf@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xf0\x80\x80\xaf@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xed\xa0\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xed\xbf\xbf@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xf4\x90\x80\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xf5\x80\x80\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xfe@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xff@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xe4\xbe@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xe4\xbe\xc0@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xf1\x80\x80\xff@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xf0\x9f\x98@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@\xc3> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"\xc3\"@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\"\\\xc3\xb6\"@x> SMTPUTF8", 501, "5.1.7"),
      /* C1 controls (U+0080..U+009F) are refused (RFC 5198 2). */
      MAIL_BAD(" FROM:<\xc2\x80@x> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<\xc2\x9b@x> SMTPUTF8", 501, "5.1.7"),
      RCPT8_BAD(" TO:<j\xc3@x>", 501, "5.1.3"),
      RCPT8_BAD(" TO:<\xc2\x85@x>", 501, "5.1.3"),
      /* U-labels follow the hyphen rules too */
      MAIL_BAD(" FROM:<a@-\xc3\xbc> SMTPUTF8", 501, "5.1.7"),
      MAIL_BAD(" FROM:<a@\xc3\xbc-> SMTPUTF8", 501, "5.1.7"),
      /* non-ASCII in parameter values: no parameter takes it */
      MAIL_BAD(" FROM:<a@x> SMTPUTF8 ENVID=\xc3\xa9", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> SIZE=1\xc3\xa9", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> X\xc3\xa9=1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@x> XFOO=\xc3\xa9", 555, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_path_utf8_flag) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->path_utf8, 0);
  a = must_parse(0,
                 " FROM:<j\xc3\xb6"
                 "e@x> SMTPUTF8",
                 ALL);
  ck_assert_int_eq(a->path_utf8, 1);
  ck_assert_int_eq(a->smtputf8, 1);
  a = must_parse(0, " FROM:<a@x> SMTPUTF8", ALL);
  ck_assert_int_eq(a->path_utf8, 0);
  ck_assert_int_eq(a->smtputf8, 1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parameters */

START_TEST(test_parse_mail_param_syntax) {
  static const env_case t[] = {
      MAIL_OK(" FROM:<a@b> SIZE=1 BODY=7BIT", "a@b"),
      MAIL_OK(" FROM:<a@b> size=1 body=7bit", "a@b"),
      /* duplicates (RFC 1870 6, RFC 3461 4.5), in any case */
      MAIL_BAD(" FROM:<a@b> SIZE=1 SIZE=2", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1 size=1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY=7BIT BODY=8BITMIME", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SMTPUTF8 SMTPUTF8", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=<> AUTH=<>", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> RET=FULL RET=HDRS", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=1 ENVID=1", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a@b ORCPT=rfc822;a@b", 501, "5.5.4"),
      /* empty values, missing values, "=" without a keyword */
      MAIL_BAD(" FROM:<a@b> SIZE=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> RET=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> RET", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> XFOO=", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> =", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> =1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE==1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1=2", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1 =", 501, "5.5.4"),
      /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
      MAIL_BAD(" FROM:<a@b> -X=1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> X_Y=1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> X.Y=1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE:1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> <c@d>", 501, "5.5.4"),
      /* separators: exactly one space */
      MAIL_BAD(" FROM:<a@b> SIZE=1  BODY=7BIT", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1 \tBODY=7BIT", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1,BODY=7BIT", 501, "5.5.4"),
      /* unknown parameters: 555 (RFC 5321 4.1.1.11) */
      MAIL_BAD(" FROM:<a@b> XFOO", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> XFOO=bar", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> FOO-BAR=1", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> 8BITMIME", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1 XFOO=1", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZES=1", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZ=1", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> NOTIFY=NEVER", 555, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ORCPT=rfc822;a@b", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> SIZE=1", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> BODY=7BIT", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> SMTPUTF8", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> AUTH=<>", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> RET=FULL", 555, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ENVID=x", 555, "5.5.4"),
      /* parameters of a disabled extension are unknown */
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_SIZE, " FROM:<a@b> SIZE=1", 555, "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_8BITMIME | MAILPROTO_SMTP_EXT_BINARYMIME,
                   " FROM:<a@b> BODY=7BIT", 555, "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_SMTPUTF8, " FROM:<a@b> SMTPUTF8", 555,
                   "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_AUTH, " FROM:<a@b> AUTH=<>", 555,
                   "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_DSN, " FROM:<a@b> RET=FULL", 555,
                   "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_DSN, " FROM:<a@b> ENVID=x", 555, "5.5.4"),
      RCPT_BAD_OFF(MAILPROTO_SMTP_EXT_DSN, " TO:<a@b> NOTIFY=NEVER", 555,
                   "5.5.4"),
      RCPT_BAD_OFF(MAILPROTO_SMTP_EXT_DSN, " TO:<a@b> ORCPT=rfc822;a@b", 555,
                   "5.5.4"),
      MAIL_BAD_OFF(ALL, " FROM:<a@b> SIZE=1", 555, "5.5.4"),
      /* ... and other extensions do not matter */
      {0, MAILPROTO_SMTP_EXT_DSN | MAILPROTO_SMTP_EXT_AUTH, 0,
       S(" FROM:<a@b> SIZE=1 BODY=8BITMIME SMTPUTF8"), 0, NULL, "a@b"},
      {0, ALL, 0, S(" FROM:<a@b>"), 0, NULL, "a@b"},
      {1, ALL, 0, S(" TO:<a@b>"), 0, NULL, "a@b"},
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_size) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->has_size, 0);
  a = must_parse(0, " FROM:<a@b> SIZE=0", ALL);
  ck_assert_int_eq(a->has_size, 1);
  ck_assert_uint_eq(a->size, 0);
  a = must_parse(0, " FROM:<a@b> SIZE=500000", ALL);
  ck_assert_uint_eq(a->size, 500000);
  a = must_parse(0, " FROM:<a@b> size=42", ALL);
  ck_assert_uint_eq(a->size, 42);
  /* 1*20DIGIT (RFC 1870 4), within 64 bits */
  a = must_parse(0, " FROM:<a@b> SIZE=18446744073709551615", ALL);
  ck_assert(a->size == UINT64_MAX);
  a = must_parse(0, " FROM:<a@b> SIZE=00000000000000000007", ALL);
  ck_assert_uint_eq(a->size, 7);

  static const env_case t[] = {
      MAIL_BAD(" FROM:<a@b> SIZE=18446744073709551616", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=99999999999999999999", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=000000000000000000007", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=123456789012345678901234567890", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=-1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=+1", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1k", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=0x10", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1.5", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SIZE=1,000", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_body) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_UNSPECIFIED);
  a = must_parse(0, " FROM:<a@b> BODY=7BIT", ALL);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_7BIT);
  a = must_parse(0, " FROM:<a@b> BODY=8bitMIME", ALL);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_8BITMIME);
  a = must_parse(0, " FROM:<a@b> BODY=BINARYMIME", ALL);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_BINARYMIME);
  /* BINARYMIME alone keeps BODY known, with 7BIT still allowed. */
  a = must_parse(0, " FROM:<a@b> BODY=7BIT",
                 ALL & ~MAILPROTO_SMTP_EXT_8BITMIME);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_7BIT);

  static const env_case t[] = {
      MAIL_BAD(" FROM:<a@b> BODY=8BIT", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY=BINARY", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY=7BITX", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> BODY=8BITMIME,7BIT", 501, "5.5.4"),
      /* a value whose extension is off */
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_8BITMIME, " FROM:<a@b> BODY=8BITMIME",
                   501, "5.5.4"),
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_BINARYMIME, " FROM:<a@b> BODY=BINARYMIME",
                   501, "5.5.4"),
      /* BINARYMIME only works with BDAT (RFC 3030 3) */
      MAIL_BAD_OFF(MAILPROTO_SMTP_EXT_CHUNKING, " FROM:<a@b> BODY=BINARYMIME",
                   501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_smtputf8) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->smtputf8, 0);
  a = must_parse(0, " FROM:<a@b> SMTPUTF8", ALL);
  ck_assert_int_eq(a->smtputf8, 1);
  a = must_parse(0, " FROM:<a@b> SmtpUtf8 BODY=8BITMIME", ALL);
  ck_assert_int_eq(a->smtputf8, 1);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_8BITMIME);
  static const env_case t[] = {
      /* RFC 6531 3.4: no value */
      MAIL_BAD(" FROM:<a@b> SMTPUTF8=yes", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> SMTPUTF8=", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_auth) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->has_auth, 0);
  /* RFC 4954 5.1 */
  a = must_parse(0, " FROM:<e=mc2@example.com> AUTH=e+3Dmc2@example.com", ALL);
  ck_assert_int_eq(a->has_auth, 1);
  ck_assert_str_eq(a->auth, "e=mc2@example.com");
  a = must_parse(0, " FROM:<john+@example.org> AUTH=<>", ALL);
  ck_assert_int_eq(a->has_auth, 1);
  ck_assert_str_eq(a->auth, "<>");
  a = must_parse(0, " FROM:<a@b> AUTH=+3C+3E", ALL);
  ck_assert_str_eq(a->auth, "<>");
  a = must_parse(0, " FROM:<a@b> AUTH=+22a+20b+22@[192.0.2.1]", ALL);
  ck_assert_str_eq(a->auth, "\"a b\"@[192.0.2.1]");
  a = must_parse(0, " FROM:<a@b> AUTH=a+2Bb@c", ALL);
  ck_assert_str_eq(a->auth, "a+b@c");

  /* 500 octets of xtext at most; this mailbox, hex-encoded octet by
   * octet, takes 3 * (64 + 1 + d). */
  char in[700];
  size_t n = (size_t)snprintf(in, sizeof in, " FROM:<a@b> AUTH=");
  for (int i = 0; i < 64; i++)
    n += (size_t)snprintf(in + n, sizeof in - n, "+61");
  n += (size_t)snprintf(in + n, sizeof in - n, "+40");
  for (int i = 0; i < 101; i++) /* "b" * 50 "." "b" * 50 */
    n += (size_t)snprintf(in + n, sizeof in - n, i == 50 ? "+2E" : "+62");
  ck_assert_uint_eq(n - 17, 498);
  a = must_parse(0, in, ALL);
  ck_assert_uint_eq(strlen(a->auth), 64 + 1 + 101);
  n += (size_t)snprintf(in + n, sizeof in - n, "+62");
  mailproto_smtp_envelope_args b;
  ck_assert_int_eq(parse_at_guard(0, in, n, ALL, 0, &b), -1);
  ck_assert_int_eq(b.reply.code, 501);
  ck_assert_str_eq(b.reply.enhanced, "5.5.4");

  /* a decoded Mailbox longer than a path can hold */
  n = (size_t)snprintf(in, sizeof in, " FROM:<a@b> AUTH=");
  memset(in + n, 'a', 60);
  n += 60;
  in[n++] = '@';
  make_domain(in + n, 200);
  n += 200;
  ck_assert_int_eq(parse_at_guard(0, in, n, ALL, 0, &b), -1);
  ck_assert_str_eq(b.reply.text, "Bad AUTH value");
  in[n - 7] = '\0'; /* 254 octets */
  a = must_parse(0, in, ALL);
  ck_assert_uint_eq(strlen(a->auth), 254);

  static const env_case t[] = {
      /* the decoded value must be "<>" or a Mailbox */
      MAIL_BAD(" FROM:<a@b> AUTH=user", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=<a@b>", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=<", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@b@c", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+20b@c", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@", 501, "5.5.4"),
      /* decoded controls (CVE-2020-28026 class), bad xtext */
      MAIL_BAD(" FROM:<a@b> AUTH=a+0D+0A@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@b+0D", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@b+0A", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+00@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+0d@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+3d@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+C3+A9@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a+@b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@b+4", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> AUTH=a@b+", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_ret) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->ret, MAILPROTO_SMTP_RET_UNSPECIFIED);
  a = must_parse(0, " FROM:<a@b> RET=FULL", ALL);
  ck_assert_int_eq(a->ret, MAILPROTO_SMTP_RET_FULL);
  a = must_parse(0, " FROM:<a@b> ret=hdrs", ALL);
  ck_assert_int_eq(a->ret, MAILPROTO_SMTP_RET_HDRS);
  static const env_case t[] = {
      MAIL_BAD(" FROM:<a@b> RET=NONE", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> RET=FULL,HDRS", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> RET=FUL", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_envid) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(0, " FROM:<a@b>", ALL);
  ck_assert_int_eq(a->has_envid, 0);
  a = must_parse(0, " FROM:<a@b> ENVID=QQ314159", ALL);
  ck_assert_int_eq(a->has_envid, 1);
  ck_assert_str_eq(a->envid, "QQ314159");
  a = must_parse(0, " FROM:<a@b> ENVID=a+2Bb+3Dc+20d", ALL);
  ck_assert_str_eq(a->envid, "a+b=c d");
  a = must_parse(0, " FROM:<a@b> ENVID=<id@host>", ALL);
  ck_assert_str_eq(a->envid, "<id@host>");

  /* 100 characters (RFC 3461 4.4), counted as sent */
  char in[200];
  size_t n = (size_t)snprintf(in, sizeof in, " FROM:<a@b> ENVID=");
  memset(in + n, 'e', 100);
  in[n + 100] = '\0';
  a = must_parse(0, in, ALL);
  ck_assert_uint_eq(strlen(a->envid), 100);
  in[n + 100] = 'e';
  in[n + 101] = '\0';
  mailproto_smtp_envelope_args b;
  ck_assert_int_eq(parse_at_guard(0, in, n + 101, ALL, 0, &b), -1);
  ck_assert_int_eq(b.reply.code, 501);
  ck_assert_str_eq(b.reply.enhanced, "5.5.4");

  static const env_case t[] = {
      MAIL_BAD(" FROM:<a@b> ENVID=a+0Db", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+0Ab", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+00b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+0D+0AX-Evil:+201", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+09b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+7Fb", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+80b", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+2bb", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+0db", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+2", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a+G0", 501, "5.5.4"),
      MAIL_BAD(" FROM:<a@b> ENVID=a++2B", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_rcpt_notify) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(1, " TO:<a@b>", ALL);
  ck_assert_uint_eq(a->notify, 0);
  a = must_parse(1, " TO:<a@b> NOTIFY=NEVER", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_NEVER);
  a = must_parse(1, " TO:<a@b> NOTIFY=SUCCESS", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_SUCCESS);
  a = must_parse(1, " TO:<a@b> NOTIFY=failure,Delay", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_FAILURE |
                                   MAILPROTO_SMTP_NOTIFY_DELAY);
  a = must_parse(1, " TO:<a@b> NOTIFY=DELAY,FAILURE,SUCCESS", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_SUCCESS |
                                   MAILPROTO_SMTP_NOTIFY_FAILURE |
                                   MAILPROTO_SMTP_NOTIFY_DELAY);
  /* RFC 822 "#" lists allow empty elements */
  a = must_parse(1, " TO:<a@b> NOTIFY=SUCCESS,,DELAY,", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_SUCCESS |
                                   MAILPROTO_SMTP_NOTIFY_DELAY);
  a = must_parse(1, " TO:<a@b> NOTIFY=SUCCESS,SUCCESS", ALL);
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_SUCCESS);
  static const env_case t[] = {
      /* NEVER must stand alone (RFC 3461 4.1 a) */
      RCPT_BAD(" TO:<a@b> NOTIFY=NEVER,SUCCESS", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=DELAY,NEVER", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=NEVER,NEVER", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=,", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=,,", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=ALWAYS", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=SUCCESS,BOGUS", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=SUCCESS;DELAY", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> NOTIFY=SUCCES", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_rcpt_orcpt) {
  const mailproto_smtp_envelope_args *a;
  a = must_parse(1, " TO:<a@b>", ALL);
  ck_assert_int_eq(a->has_orcpt, 0);
  a = must_parse(1, " TO:<Bob@Example.COM> ORCPT=rfc822;Bob@Example.COM", ALL);
  ck_assert_int_eq(a->has_orcpt, 1);
  ck_assert_str_eq(a->orcpt_type, "rfc822");
  ck_assert_str_eq(a->orcpt, "Bob@Example.COM");
  a = must_parse(1, " TO:<a@b> ORCPT=RFC822;a+2Bb+3Dc@d", ALL);
  ck_assert_str_eq(a->orcpt_type, "RFC822");
  ck_assert_str_eq(a->orcpt, "a+b=c@d");
  /* RFC 6533's utf-8 type travels as ASCII inside the xtext */
  a = must_parse(1, " TO:<a@b> ORCPT=utf-8;j\\x{00F6}e@x", ALL);
  ck_assert_str_eq(a->orcpt_type, "utf-8");
  ck_assert_str_eq(a->orcpt, "j\\x{00F6}e@x");
  /* The address part is not checked against the type (4.2), and the
   * xtext of the grammar may be empty. */
  a = must_parse(1, " TO:<a@b> ORCPT=x400;c+3Dus;a+3D+20;", ALL);
  ck_assert_str_eq(a->orcpt_type, "x400");
  ck_assert_str_eq(a->orcpt, "c=us;a= ;");
  a = must_parse(1, " TO:<a@b> ORCPT=rfc822;", ALL);
  ck_assert_str_eq(a->orcpt, "");

  /* 500 characters for the whole value (4.2) */
  char in[700];
  size_t n = (size_t)snprintf(in, sizeof in, " TO:<a@b> ORCPT=rfc822;");
  memset(in + n, 'o', 493);
  in[n + 493] = '\0';
  a = must_parse(1, in, ALL);
  ck_assert_uint_eq(strlen(a->orcpt), 493);
  in[n + 493] = 'o';
  in[n + 494] = '\0';
  mailproto_smtp_envelope_args b;
  ck_assert_int_eq(parse_at_guard(1, in, n + 494, ALL, 0, &b), -1);
  ck_assert_int_eq(b.reply.code, 501);
  ck_assert_str_eq(b.reply.enhanced, "5.5.4");

  /* addr-type: up to 31 atom characters here */
  n = (size_t)snprintf(in, sizeof in, " TO:<a@b> ORCPT=");
  memset(in + n, 't', 31);
  memcpy(in + n + 31, ";x", 3);
  a = must_parse(1, in, ALL);
  ck_assert_uint_eq(strlen(a->orcpt_type), 31);
  memset(in + n, 't', 32);
  memcpy(in + n + 32, ";x", 3);
  ck_assert_int_eq(parse_at_guard(1, in, strlen(in), ALL, 0, &b), -1);
  ck_assert_int_eq(b.reply.code, 501);

  static const env_case t[] = {
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+0D+0Ab", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+0Db", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+0Ab", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+00b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+0d+0ab", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+2bb", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a+", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=;a@b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc(822);a@b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc.822;a@b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc:822;a@b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc\"822;a@b", 501, "5.5.4"),
      RCPT_BAD(" TO:<a@b> ORCPT=rfc822;a=b", 501, "5.5.4"),
  };
  RUN(t);
}
END_TEST

START_TEST(test_parse_mail_all_parameters) {
  const mailproto_smtp_envelope_args *a = must_parse(
      0,
      " FROM:<a@b> SIZE=1000 BODY=8BITMIME SMTPUTF8 AUTH=a@b RET=HDRS "
      "ENVID=id1 ",
      ALL);
  ck_assert_int_eq(a->has_size, 1);
  ck_assert_uint_eq(a->size, 1000);
  ck_assert_int_eq(a->body, MAILPROTO_SMTP_BODY_8BITMIME);
  ck_assert_int_eq(a->smtputf8, 1);
  ck_assert_str_eq(a->auth, "a@b");
  ck_assert_int_eq(a->ret, MAILPROTO_SMTP_RET_HDRS);
  ck_assert_str_eq(a->envid, "id1");
  ck_assert_int_eq(a->reply.code, 0);
  a = must_parse(1, " TO:<c@d> ORCPT=rfc822;c@d NOTIFY=DELAY", ALL);
  ck_assert_str_eq(a->path, "c@d");
  ck_assert_str_eq(a->orcpt, "c@d");
  ck_assert_uint_eq(a->notify, MAILPROTO_SMTP_NOTIFY_DELAY);
}
END_TEST

/* ------------------------------------------------------------------ */
/* xtext */

static long xtext_at_guard(const char *in, size_t len, char *out,
                           size_t out_size) {
  const char *p = (const char *)overread_place(&guard, in, len);
  REQUIRE(p != NULL);
  return mailproto_smtp_xtext_decode(p, len, out, out_size);
}

START_TEST(test_xtext_decode_valid) {
  static const struct {
    const char *in, *out;
  } t[] = {
      {"", ""},
      {"abc", "abc"},
      {"+2B", "+"},
      {"+3D", "="},
      {"+20", " "},
      {"+7E", "~"},
      {"+41+42", "AB"},
      {"e+3Dmc2@example.com", "e=mc2@example.com"},
      {"!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~",
       "!\"#$%&'()*,-./09:;<>?@AZ[\\]^_`az{|}~"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char out[64];
    size_t len = strlen(t[i].in);
    long n = xtext_at_guard(t[i].in, len, out, sizeof out);
    ck_assert_msg(n == (long)strlen(t[i].out), "%s gave %ld", t[i].in, n);
    ck_assert_str_eq(out, t[i].out);
    /* the result and its NUL need n + 1 bytes */
    ck_assert_int_eq(xtext_at_guard(t[i].in, len, out, (size_t)n + 1), n);
    ck_assert_int_eq(xtext_at_guard(t[i].in, len, out, (size_t)n), -1);
    for (size_t k = 0; k < len; k++)
      xtext_at_guard(t[i].in, k, out, sizeof out);
  }
  char out[4];
  ck_assert_int_eq(xtext_at_guard("", 0, out, 0), -1);
}
END_TEST

START_TEST(test_xtext_decode_rejects) {
  static const struct {
    const char *in;
    size_t len;
  } t[] = {
      /* decoded CR, LF, NUL, other controls, DEL, non-ASCII */
      {S("+0D")},
      {S("+0A")},
      {S("+00")},
      {S("a+0D+0Ab")},
      {S("+09")},
      {S("+1F")},
      {S("+7F")},
      {S("+80")},
      {S("+C3+A9")},
      {S("+FF")},
      /* uppercase hex only */
      {S("+0d")},
      {S("+0a")},
      {S("+2b")},
      {S("+aB")},
      /* truncated or bad escapes */
      {S("+")},
      {S("+2")},
      {S("a+")},
      {S("+G0")},
      {S("+0G")},
      {S("++2B")},
      {S("+ 2B")},
      {S("+-1")},
      /* characters outside xchar */
      {S("=")},
      {S("a=b")},
      {S(" ")},
      {S("a b")},
      {S("\t")},
      {S("\r\n")},
      {S("\0")},
      {S("a\0")},
      {S("\x7f")},
      {S("\xc3\xa9")},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    char out[64];
    long n = xtext_at_guard(t[i].in, t[i].len, out, sizeof out);
    ck_assert_msg(n == -1, "%s gave %ld", show(t[i].in, t[i].len), n);
  }
}
END_TEST

START_TEST(test_xtext_decode_every_octet) {
  /* Each octet as itself and as a hexchar: accepted exactly when RFC
   * 3461 4 and the printable-ASCII rule say so. */
  for (int ch = 0; ch < 256; ch++) {
    char in[4], out[4];
    in[0] = (char)ch;
    long n = xtext_at_guard(in, 1, out, sizeof out);
    int xchar = ch >= '!' && ch <= '~' && ch != '+' && ch != '=';
    REQUIRE(n == (xchar ? 1 : -1));
    snprintf(in, sizeof in, "+%02X", (unsigned)ch);
    n = xtext_at_guard(in, 3, out, sizeof out);
    REQUIRE(n == ((ch >= 0x20 && ch <= 0x7e) ? 1 : -1));
    if (n == 1)
      REQUIRE((unsigned char)out[0] == ch && out[1] == '\0');
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* HELO/EHLO/LHLO domain */

static int domain_at_guard(const char *in, size_t len, int utf8) {
  const char *p = (const char *)overread_place(&guard, in, len);
  REQUIRE(p != NULL);
  for (size_t k = 0; k < len; k++)
    mailproto_smtp_check_domain((const char *)overread_place(&guard, in, k), k,
                                utf8);
  p = (const char *)overread_place(&guard, in, len);
  return mailproto_smtp_check_domain(p, len, utf8);
}

START_TEST(test_check_domain_accepts) {
  static const char *ok[] = {
      "mail.example.com", "localhost", "a", "A.B.C", "xn--bcher-kva.example",
      "a-b.c--d", "123", "192.0.2.1",
      /* lenient on purpose: a trailing dot, "_" (Windows host names) */
      "mail.example.com.", "a.", "my_host.example", "_dmarc.example",
      "DESKTOP-AB12_3", "a_", "_",
      /* address literals (RFC 5321 4.1.4: when the client has no name) */
      "[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:::1]",
      "[IPv6:::ffff:192.0.2.1]", "[x400:foo]"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    ck_assert_msg(domain_at_guard(ok[i], strlen(ok[i]), 0) == 0, "%s refused",
                  ok[i]);
    ck_assert_msg(domain_at_guard(ok[i], strlen(ok[i]), 1) == 0, "%s refused",
                  ok[i]);
  }
  ck_assert_int_eq(domain_at_guard(S("b\xc3\xbc"
                                     "cher.example"),
                                   1),
                   0);
  ck_assert_int_eq(
      domain_at_guard(S("\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"), 1), 0);
}
END_TEST

START_TEST(test_check_domain_refuses) {
  static const struct {
    const char *in;
    size_t len;
  } bad[] = {
      {S("")},
      {S(" ")},
      {S("a b")},
      {S(" a")},
      {S("a ")},
      {S("a\tb")},
      {S("a\r\n")},
      {S("a\0b")},
      {S("a\0")},
      {S("\x7f")},
      {S("a@b")},
      {S("@b")},
      {S("<a>")},
      {S("a<")},
      {S("a>")},
      {S("a..b")},
      {S(".a")},
      {S(".")},
      {S("..")},
      {S("a..")},
      {S("-a")},
      {S("a-")},
      {S("a.-b")},
      {S("a-.b")},
      {S("a/b")},
      {S("a:b")},
      {S("a,b")},
      {S("\"a\"")},
      {S("a\\b")},
      {S("[1.2.3.256]")},
      {S("[IPv6:1::2::3]")},
      {S("[IPv6:1:2:3:4:5:6:7:8:9]")},
      {S("[tag:]")},
      {S("[1.2.3.4]x")},
      {S("[1.2.3.4")},
      {S("[]")},
      {S("[x:a@b]")},
      {S("[x:<a>]")},
      {S("[x:a>]")},
      {S("b\xc3\xbc"
         "cher.example")}, /* U-label without utf8 */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_msg(domain_at_guard(bad[i].in, bad[i].len, 0) == -1,
                  "%s accepted", show(bad[i].in, bad[i].len));
  static const struct {
    const char *in;
    size_t len;
  } bad8[] = {
      {S("a\xc3")},        {S("\xc3\xa9\xc3")},     {S("\xc0\x80")},
      {S("\xed\xa0\x80")}, {S("\xf4\x90\x80\x80")}, {S("\xff")},
      {S("\xc2\x85")},     {S("-\xc3\xa9")},        {S("a b\xc3\xa9")},
  };
  for (size_t i = 0; i < sizeof bad8 / sizeof bad8[0]; i++)
    ck_assert_msg(domain_at_guard(bad8[i].in, bad8[i].len, 1) == -1,
                  "%s accepted", show(bad8[i].in, bad8[i].len));
}
END_TEST

START_TEST(test_check_domain_limits) {
  char name[400];
  /* labels: 63 octets */
  memset(name, 'x', 63);
  memcpy(name + 63, ".example", 9);
  ck_assert_int_eq(domain_at_guard(name, strlen(name), 0), 0);
  memset(name, 'x', 64);
  memcpy(name + 64, ".example", 9);
  ck_assert_int_eq(domain_at_guard(name, strlen(name), 0), -1);
  /* names: 255 octets */
  make_domain(name, 255);
  ck_assert_int_eq(domain_at_guard(name, 255, 0), 0);
  make_domain(name, 256);
  ck_assert_int_eq(domain_at_guard(name, 256, 0), -1);
  make_domain(name, 254);
  name[254] = '.';
  ck_assert_int_eq(domain_at_guard(name, 255, 0), 0);
  make_domain(name, 255);
  name[255] = '.';
  ck_assert_int_eq(domain_at_guard(name, 256, 0), -1);
  /* a long U-label is bounded by the 255 octets only (its A-label may
   * still fit in 63) */
  size_t n = 0;
  for (int i = 0; i < 30; i++) {
    memcpy(name + n, "\xe4\xbe\x8b", 3);
    n += 3;
  }
  ck_assert_int_eq(domain_at_guard(name, n, 1), 0);
  for (int i = 0; i < 55; i++) {
    memcpy(name + n, "\xe4\xbe\x8b", 3);
    n += 3;
  }
  ck_assert_int_eq(domain_at_guard(name, n, 1), 0);
  memcpy(name + n, "\xe4\xbe\x8b", 3);
  ck_assert_int_eq(domain_at_guard(name, n + 3, 1), -1);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Robustness: random input */

static uint32_t rng_state = 2463534242u;
static uint32_t rng(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

START_TEST(test_parse_mail_random_input) {
  /* Random mutations of valid commands: never a crash or an over-read,
   * only documented replies, and an accepted path obeys its contract. */
  static const char *seeds[] = {
      " FROM:<a.b@[IPv6:1::2]> SIZE=12 BODY=8BITMIME AUTH=a+2Bb@c",
      " TO:<@r,@s:\"q\\\"x\"@d.e> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+2Bb",
      " FROM:<j\xc3\xb6@x> SMTPUTF8 RET=FULL ENVID=x+20y",
      " TO:<Postmaster>",
  };
  static const char alphabet[] = "<>@.:,;\"\\[]=+ \t\r\n\0-_aZ09\x80\xc3\xff";
  char buf[160];
  for (int iter = 0; iter < 20000; iter++) {
    const char *seed = seeds[rng() % 4];
    size_t len = strlen(seed);
    memcpy(buf, seed, len);
    int edits = 1 + (int)(rng() % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = rng() % (len + 1);
      char ch = alphabet[rng() % (sizeof alphabet - 1)];
      switch (rng() % 3) {
      case 0:
        if (at < len)
          buf[at] = ch;
        break;
      case 1:
        if (len < sizeof buf) {
          memmove(buf + at + 1, buf + at, len - at);
          buf[at] = ch;
          len++;
        }
        break;
      default:
        if (at < len) {
          memmove(buf + at, buf + at + 1, len - at - 1);
          len--;
        }
        break;
      }
    }
    int rcpt = buf[1] == 'T';
    mailproto_smtp_envelope_args a;
    unsigned ext = rng() & ALL;
    int rc = parse_at_guard(rcpt, buf, len, ext, (int)(rng() & 1), &a);
    if (rc == 0)
      check_result(&a);
    else
      REQUIRE(rc == -1 && documented(&a.reply, rcpt));
  }
}
END_TEST

Suite *suite_smtp_parse(void) {
  Suite *s = suite_create("smtp_parse");
  TCase *tc = tcase_create("envelope");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_parse_mail_rfc_examples);
  tcase_add_test(tc, test_parse_mail_command_shape);
  tcase_add_test(tc, test_parse_mail_null_reverse_path);
  tcase_add_test(tc, test_parse_rcpt_postmaster);
  tcase_add_test(tc, test_parse_rcpt_source_route);
  tcase_add_test(tc, test_parse_path_dot_string);
  tcase_add_test(tc, test_parse_path_quoted_local_part);
  tcase_add_test(tc, test_parse_path_domain);
  tcase_add_test(tc, test_parse_path_address_literals);
  tcase_add_test(tc, test_parse_path_bad_address_literals);
  tcase_add_test(tc, test_parse_path_length_limits);
  tcase_add_test(tc, test_parse_path_label_limit);
  tcase_add_test(tc, test_parse_path_long_input_is_bounded);
  tcase_add_test(tc, test_parse_mail_hostile_input);
  tcase_add_test(tc, test_parse_path_utf8);
  tcase_add_test(tc, test_parse_path_utf8_flag);
  tcase_add_test(tc, test_parse_mail_param_syntax);
  tcase_add_test(tc, test_parse_mail_size);
  tcase_add_test(tc, test_parse_mail_body);
  tcase_add_test(tc, test_parse_mail_smtputf8);
  tcase_add_test(tc, test_parse_mail_auth);
  tcase_add_test(tc, test_parse_mail_ret);
  tcase_add_test(tc, test_parse_mail_envid);
  tcase_add_test(tc, test_parse_rcpt_notify);
  tcase_add_test(tc, test_parse_rcpt_orcpt);
  tcase_add_test(tc, test_parse_mail_all_parameters);
  tcase_add_test(tc, test_parse_mail_random_input);
  suite_add_tcase(s, tc);

  tc = tcase_create("xtext_domain");
  tcase_add_checked_fixture(tc, guard_setup, guard_teardown);
  tcase_add_test(tc, test_xtext_decode_valid);
  tcase_add_test(tc, test_xtext_decode_rejects);
  tcase_add_test(tc, test_xtext_decode_every_octet);
  tcase_add_test(tc, test_check_domain_accepts);
  tcase_add_test(tc, test_check_domain_refuses);
  tcase_add_test(tc, test_check_domain_limits);
  suite_add_tcase(s, tc);
  return s;
}
