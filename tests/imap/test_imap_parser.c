/*
 * The IMAP command reader, parser and writer: every command form of RFC
 * 3501 9 and the extension RFCs through a parse -> write -> parse round
 * trip, every error with its exact BAD text, literals of every kind split
 * at every byte, the attack inputs of issue 7, bounded memory,
 * allocation failures and over-reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_reader.h"
#include "imap/imap_seqset.h"
#include "imap/imap_writer.h"
#include "suites.h"
#include "support/alloc_fail.h"
#include "support/overread.h"

/* A string literal with its length, NULs included. */
#define S(lit) lit, sizeof(lit) - 1

static overread_guard guard, chunk_guard;
static int guard_ready, chunk_guard_ready;

static const uint8_t *place(const void *data, size_t len) {
  if (!guard_ready) {
    ck_assert_int_eq(overread_init(&guard, 4u << 20), 0);
    guard_ready = 1;
  }
  return overread_place(&guard, data, len);
}

/* Parses `len` bytes placed right before an unreadable page. */
static int parse(mailproto_imap_parser *p, const char *s, size_t len,
                 mailproto_imap_command *cmd) {
  return mailproto_imap_parse(p, place(s, len), len, cmd);
}

static int parse_str(mailproto_imap_parser *p, const char *s,
                     mailproto_imap_command *cmd) {
  return parse(p, s, strlen(s), cmd);
}

static int str_is(const mailproto_imap_str *s, const char *want) {
  return s->data && s->len == strlen(want) &&
         memcmp(s->data, want, s->len) == 0;
}

/* ------------------------------------------------------------------ */
/* Round trip over every command form                                  */
/* ------------------------------------------------------------------ */

typedef struct rt_case {
  const char *in;
  size_t in_len;
  const char *canonical; /* NULL: the input followed by CRLF */
} rt_case;

#define RT(in)                                                                 \
  { S(in), NULL }
#define RTC(in, out)                                                           \
  { S(in), out "\r\n" }

static const rt_case rt_cases[] = {
    /* RFC 3501 6.1 - 6.2 */
    RT("abcd CAPABILITY"),
    RT("a002 NOOP"),
    RT("A023 LOGOUT"),
    RT("a001 STARTTLS"),
    RT("A001 AUTHENTICATE GSSAPI"),
    RT("a001 LOGIN SMITH SESAME"),
    RTC("a001 login \"SMITH\" {6}\r\nSESAME", "a001 LOGIN SMITH SESAME"),
    RTC("a1 LOGIN \"fred smith\" \"\"", "a1 LOGIN \"fred smith\" \"\""),
    RT("a1 LOGIN \"a\\\"b\" \"c\\\\d\""),
    RTC("a1 LOGIN nil \"NIL\"", "a1 LOGIN \"nil\" \"NIL\""),
    /* RFC 7888 2: non-synchronising literals */
    RTC("A001 LOGIN {11+}\r\nFRED FOOBAR {7+}\r\nfat man",
        "A001 LOGIN \"FRED FOOBAR\" \"fat man\""),
    RTC("a LOGIN {2}\r\na\r x", "a LOGIN {2}\r\na\r x"),
    /* RFC 4959 SASL-IR */
    RT("a01 AUTHENTICATE PLAIN dGVzdAB0ZXN0AHRlc3Q="),
    RT("a01 AUTHENTICATE PLAIN ="),
    /* RFC 3501 6.3 */
    RT("A142 SELECT INBOX"),
    RTC("A142 SELECT inbox", "A142 SELECT INBOX"),
    RTC("A142 SELECT \"InBoX\"", "A142 SELECT INBOX"),
    RT("A932 EXAMINE blurdybloop"),
    RT("a SELECT \"my box\""),
    RT("A003 CREATE owatagusiam/"),
    RT("A004 CREATE owatagusiam/blurdybloop"),
    RT("A683 DELETE blurdybloop"),
    RT("A683 RENAME blurdybloop sarasoop"),
    RT("A684 RENAME foo zowie"),
    RT("A002 SUBSCRIBE #news.comp.mail.mime"),
    RT("A002 UNSUBSCRIBE #news.comp.mail.mime"),
    RT("A101 LIST \"\" \"\""),
    RT("A102 LIST #news.comp.mail.misc \"\""),
    RT("A103 LIST /usr/staff/jones \"\""),
    RT("A202 LIST ~/Mail/ %"),
    RTC("A1 LIST \"\" \"*\"", "A1 LIST \"\" *"),
    RTC("A002 LSUB \"#news.\" \"comp.mail.*\"", "A002 LSUB #news. comp.mail.*"),
    RTC("A042 STATUS blurdybloop (UIDNEXT MESSAGES)",
        "A042 STATUS blurdybloop (MESSAGES UIDNEXT)"),
    RTC("a STATUS INBOX (messages recent uidnext uidvalidity unseen size "
        "deleted appendlimit highestmodseq)",
        "a STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE "
        "DELETED APPENDLIMIT HIGHESTMODSEQ)"),
    RT("A003 APPEND saved-messages (\\Seen) {11}\r\nhello world"),
    RT("A003 APPEND saved-messages {0}\r\n"),
    RTC("A003 APPEND x (\\Seen \\Draft $MDNSent) \" 6-Nov-2026 14:05:07 "
        "+0100\" "
        "{3+}\r\nabc",
        "A003 APPEND x (\\Seen \\Draft $MDNSent) \" 6-Nov-2026 14:05:07 "
        "+0100\" {3+}\r\nabc"),
    RTC("A003 APPEND x \"06-Nov-2026 14:05:07 -0830\" {1}\r\nz",
        "A003 APPEND x \" 6-Nov-2026 14:05:07 -0830\" {1}\r\nz"),
    RT("A003 APPEND x () {1}\r\nz"),
    /* RFC 3502 MULTIAPPEND, RFC 3516 literal8 */
    RT("A003 APPEND saved (\\Seen) {3}\r\nabc (\\Draft) {3+}\r\ndef {1}\r\ng"),
    RT("A003 APPEND Drafts ~{5}\r\nab\0cd"),
    /* RFC 3501 6.4 */
    RT("FXXZ CHECK"),
    RT("A341 CLOSE"),
    RT("A202 EXPUNGE"),
    RT("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM Smith"),
    RTC("A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\"",
        "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM Smith"),
    RT("A283 SEARCH TEXT \"string not in mailbox\""),
    RTC("A284 SEARCH CHARSET UTF-8 TEXT {6}\r\nXXXXXX",
        "A284 SEARCH CHARSET UTF-8 TEXT XXXXXX"),
    RT("A285 SEARCH CHARSET UTF-8 TEXT {4}\r\n\xd0\x9d\xd0\xb0"),
    RTC("A286 search since \"1-Feb-1994\"", "A286 SEARCH SINCE 1-Feb-1994"),
    RT("A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])"),
    RT("A003 STORE 2:4 +FLAGS (\\Deleted)"),
    RT("A003 STORE 2:4 -FLAGS.SILENT \\Seen $Label1"),
    RT("A003 STORE 1 FLAGS ()"),
    RTC("A003 STORE 1 flags (\\seen \\ANSWERED \\flagged \\deleted \\draft)",
        "A003 STORE 1 FLAGS (\\Seen \\Answered \\Flagged \\Deleted "
        "\\Draft)"),
    RT("A003 COPY 2:4 MEETING"),
    RT("A999 UID FETCH 4827313:4828442 FLAGS"),
    RT("A999 UID STORE 1:* +FLAGS.SILENT (\\Deleted)"),
    RT("A999 UID COPY 1:*,5 Trash"),
    RT("A999 UID SEARCH UID 1:100 DELETED"),
    /* FETCH items, sections, partials, macros (RFC 3501 6.4.5) */
    RTC("a fetch 1:* fast", "a FETCH 1:* FAST"),
    RT("a FETCH 1 ALL"),
    RT("a FETCH 1 FULL"),
    RT("a FETCH 1 BODY.PEEK[]<0.2048>"),
    RT("a FETCH 1 (BODY[1.2.MIME] BODY[1.2.HEADER] BODY[3.TEXT] BODY[2])"),
    RT("a FETCH 1 (BODY[TEXT]<100.50> RFC822.SIZE ENVELOPE BODYSTRUCTURE BODY "
       "UID INTERNALDATE RFC822 RFC822.HEADER RFC822.TEXT MODSEQ)"),
    RTC("a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Received \"X-Spam\")]",
        "a FETCH 1 BODY.PEEK[HEADER.FIELDS.NOT (Received X-Spam)]"),
    RT("a FETCH 1 (FLAGS)"),
    RT("a FETCH $ (UID INTERNALDATE FLAGS)"),
    /* RFC 3516 BINARY */
    RT("t FETCH 1 (BINARY.PEEK[1.2] BINARY.SIZE[1] BINARY[]<0.10>)"),
    /* RFC 7162 CONDSTORE / QRESYNC */
    RT("a103 SELECT INBOX (CONDSTORE)"),
    RT("A160 SELECT INBOX (QRESYNC (67890007 20050715194045000 "
       "41,43:211,214:541))"),
    RT("B202 EXAMINE INBOX (QRESYNC (67890007 90060115194045000 41:211,214:541 "
       "(1:20 1:20)))"),
    RT("B203 SELECT INBOX (QRESYNC (67890007 90060115194045000 (1:20 1:20)))"),
    RT("B204 SELECT INBOX (CONDSTORE QRESYNC (1 2))"),
    RT("a FETCH 1:* (FLAGS) (CHANGEDSINCE 12345)"),
    RT("a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)"),
    RT("a STORE 1:* (UNCHANGEDSINCE 320162338) +FLAGS.SILENT (\\Deleted)"),
    RT("a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338"),
    RT("a SEARCH MODSEQ 5"),
    /* RFC 4315, 6851, 3691, 2177, 2971, 5161 */
    RT("A003 UID EXPUNGE 3000:3002"),
    RT("a UID MOVE 42:69 foo"),
    RT("a MOVE 1 \"Junk Mail\""),
    RT("A342 UNSELECT"),
    RT("A002 IDLE"),
    RT("a ID (\"name\" \"sodr\" \"version\" \"19.34\" \"vendor\" NIL)"),
    RT("a ID NIL"),
    RT("a ID ()"),
    RT("A01 ENABLE IMAP4rev2"),
    RT("A01 ENABLE CONDSTORE UTF8=ACCEPT"),
    RT("A1 NAMESPACE"),
    /* RFC 5258 LIST-EXTENDED, RFC 5819 LIST-STATUS, RFC 6154 */
    RTC("A02 LIST (SUBSCRIBED) \"\" \"*\"", "A02 LIST (SUBSCRIBED) \"\" *"),
    RTC("A03 LIST () \"\" \"%\" RETURN (CHILDREN)",
        "A03 LIST \"\" % RETURN (CHILDREN)"),
    RT("A04 LIST (REMOTE) \"\" % RETURN (CHILDREN)"),
    RTC("A05 LIST (REMOTE SUBSCRIBED) \"\" *",
        "A05 LIST (SUBSCRIBED REMOTE) \"\" *"),
    RT("A06 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" % RETURN (CHILDREN)"),
    RTC("C04 LIST () \"\" (\"INBOX\" \"Drafts\" \"Sent/%\")",
        "C04 LIST \"\" (INBOX Drafts Sent/%)"),
    RT("C05 LIST \"\" (INBOX)"),
    RT("A02 LIST \"\" % RETURN (STATUS (MESSAGES UNSEEN))"),
    RT("A02 LIST \"\" % RETURN (SUBSCRIBED CHILDREN STATUS (SIZE))"),
    RT("A02 LIST \"\" % RETURN ()"),
    RT("t1 CREATE \"Important Messages\" (USE (\\Flagged))"),
    RTC("t1 CREATE x (USE (\\Drafts \\Sent \\All \\Archive \\Junk \\Trash))",
        "t1 CREATE x (USE (\\All \\Archive \\Drafts \\Junk \\Sent \\Trash))"),
    RT("t1 LIST (SPECIAL-USE) \"\" *"),
    RT("t3 LIST \"\" * RETURN (SPECIAL-USE)"),
    /* RFC 4731 ESEARCH, RFC 5182 SEARCHRES */
    RT("A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "
       "Smith"),
    RTC("A283 SEARCH RETURN () FLAGGED", "A283 SEARCH RETURN (ALL) FLAGGED"),
    RT("A283 SEARCH RETURN (SAVE) FLAGGED"),
    RT("A285 SEARCH $ SMALLER 4096"),
    RT("A286 UID SEARCH UID $"),
    RT("A287 UID COPY $ Other"),
    /* RFC 5256 SORT and THREAD */
    RT("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994"),
    RT("A283 SORT (SUBJECT REVERSE DATE) UTF-8 ALL"),
    RT("A284 SORT (SUBJECT) US-ASCII TEXT \"not in mailbox\""),
    RT("A285 UID SORT (ARRIVAL CC FROM SIZE TO REVERSE SUBJECT) UTF-8 1:*"),
    RTC("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000",
        "A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-Mar-2000"),
    RT("A284 THREAD REFERENCES US-ASCII TEXT gewp"),
    RT("A285 UID THREAD REFERENCES UTF-8 ALL"),
    /* Every search key (RFC 3501 6.4.4, RFC 9051 6.4.4) */
    RT("a SEARCH ALL ANSWERED BCC x BEFORE 1-Jan-2000 BODY y CC z DELETED "
       "DRAFT FLAGGED FROM f HEADER Message-ID <a@b> KEYWORD $Forwarded "
       "LARGER 100 NEW NOT SEEN OLD ON 2-Feb-2002 OR RECENT UNSEEN "
       "SENTBEFORE 3-Mar-2003 SENTON 4-Apr-2004 SENTSINCE 5-May-2005 "
       "SINCE 6-Jun-2006 SMALLER 9223372036854775807 SUBJECT s TEXT t TO u "
       "UID 1,2:* UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD "
       "$Junk UNSEEN 1:5,7 (SEEN (FLAGGED OR DRAFT (NOT DELETED)))"),
    RT("a SEARCH OR OR OR FROM a FROM b FROM c FROM d"),
    RTC("a SEARCH HEADER \"Subject\" \"\"", "a SEARCH HEADER Subject \"\""),
};

static void write_ok(const mailproto_imap_command *cmd, mailproto_buf *b) {
  mailproto_buf_clear(b);
  ck_assert_int_eq(mailproto_imap_write_command(b, cmd, 0), 0);
}

START_TEST(test_imap_parse_round_trip_every_form) {
  const rt_case *c = &rt_cases[_i];
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command cmd;
  int rc = parse(&p, c->in, c->in_len, &cmd);
  if (rc != 0)
    ck_abort_msg("parse failed (%s): %s", mailproto_imap_parser_error(&p),
                 c->in);
  mailproto_buf out, again;
  mailproto_buf_init(&out, NULL, 1 << 20);
  mailproto_buf_init(&again, NULL, 1 << 20);
  write_ok(&cmd, &out);
  char want[2048];
  size_t want_len;
  if (c->canonical) {
    want_len = strlen(c->canonical);
    memcpy(want, c->canonical, want_len);
  } else {
    memcpy(want, c->in, c->in_len);
    memcpy(want + c->in_len, "\r\n", 2);
    want_len = c->in_len + 2;
  }
  if (out.len != want_len || memcmp(out.data, want, want_len) != 0)
    ck_abort_msg("wrote [%.*s] for [%s], want [%.*s]", (int)out.len,
                 (const char *)out.data, c->in, (int)want_len, want);
  /* The canonical form is a fixed point. */
  mailproto_imap_parser p2;
  mailproto_imap_parser_init(&p2, NULL, NULL);
  mailproto_imap_command cmd2;
  ck_assert_int_eq(mailproto_imap_parse(&p2, place(out.data, out.len - 2),
                                        out.len - 2, &cmd2),
                   0);
  write_ok(&cmd2, &again);
  ck_assert_uint_eq(again.len, out.len);
  ck_assert(memcmp(again.data, out.data, out.len) == 0);
  mailproto_imap_parser_free(&p2);
  mailproto_imap_parser_free(&p);
  mailproto_buf_free(&out);
  mailproto_buf_free(&again);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Errors: each class with its exact BAD text                          */
/* ------------------------------------------------------------------ */

typedef struct err_case {
  const char *in;
  size_t in_len;
  int rc;
  const char *text;
  const char *tag;
  mailproto_imap_cmd id;
} err_case;

#define SYN MAILPROTO_ERR_SYNTAX
#define TOOLONG MAILPROTO_ERR_TOO_LONG
#define CMD(x) MAILPROTO_IMAP_CMD_##x

static const err_case err_cases[] = {
    {S(""), SYN, "Missing tag", "", CMD(NONE)},
    {S(" NOOP"), SYN, "Invalid tag", "", CMD(NONE)},
    {S("+a NOOP"), SYN, "Invalid tag", "", CMD(NONE)},
    {S("a+ NOOP"), SYN, "Invalid tag", "", CMD(NONE)},
    {S("a(b NOOP"), SYN, "Invalid tag", "", CMD(NONE)},
    {S("a"), SYN, "Missing command", "a", CMD(NONE)},
    {S("a "), SYN, "Missing command", "a", CMD(NONE)},
    {S("a  NOOP"), SYN, "Missing command", "a", CMD(NONE)},
    {S("a FOO"), SYN, "Unknown command", "a", CMD(NONE)},
    {S("a UID"), SYN, "Missing command", "a", CMD(NONE)},
    {S("a UID NOOP"), SYN, "Command does not take UID", "a", CMD(NONE)},
    {S("a UID FOO"), SYN, "Unknown command", "a", CMD(NONE)},
    {S("a NOOP extra"), SYN, "Extra arguments", "a", CMD(NOOP)},
    {S("a NOOP "), SYN, "Extra arguments", "a", CMD(NOOP)},
    {S("a EXPUNGE 1"), SYN, "Extra arguments", "a", CMD(EXPUNGE)},
    {S("a LOGIN"), SYN, "Missing argument", "a", CMD(LOGIN)},
    {S("a LOGIN user"), SYN, "Missing argument", "a", CMD(LOGIN)},
    {S("a LOGIN user "), SYN, "Missing argument", "a", CMD(LOGIN)},
    {S("a LOGIN  user pass"), SYN, "Invalid string", "a", CMD(LOGIN)},
    {S("a LOGIN \"a\0b\" c"), SYN, "NUL in string", "a", CMD(LOGIN)},
    {S("a LOGIN {3}\r\na\0b c"), SYN, "NUL in string", "a", CMD(LOGIN)},
    {S("a LOGIN \"abc d"), SYN, "Invalid string", "a", CMD(LOGIN)},
    {S("a LOGIN \"a\\x\" b"), SYN, "Invalid string", "a", CMD(LOGIN)},
    {S("a LOGIN \"a\rb\" b"), SYN, "Invalid string", "a", CMD(LOGIN)},
    {S("a LOGIN {5}\r\nab"), SYN, "Invalid literal", "a", CMD(LOGIN)},
    {S("a LOGIN {5}"), SYN, "Invalid literal", "a", CMD(LOGIN)},
    {S("a LOGIN {5}x"), SYN, "Invalid literal", "a", CMD(LOGIN)},
    {S("a LOGIN {}\r\n b"), SYN, "Invalid literal", "a", CMD(LOGIN)},
    {S("a LOGIN {99999999999999999999}\r\n"), SYN, "Invalid literal", "a",
     CMD(LOGIN)},
    {S("a LOGIN {1} b"), SYN, "Invalid literal", "a", CMD(LOGIN)},
    {S("a LOGIN u p q"), SYN, "Extra arguments", "a", CMD(LOGIN)},
    {S("a FETCH x FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH 0 FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH 01 FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH 1: FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH 1,,2 FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH 4294967296 FLAGS"), SYN, "Invalid sequence set", "a",
     CMD(FETCH)},
    {S("a FETCH 1,$ FLAGS"), SYN, "Invalid sequence set", "a", CMD(FETCH)},
    {S("a FETCH"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1 FOO"), SYN, "Invalid fetch item", "a", CMD(FETCH)},
    {S("a FETCH 1 (FLAGS"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1 (FLAGS FOO)"), SYN, "Invalid fetch item", "a", CMD(FETCH)},
    {S("a FETCH 1 FLAGS)"), SYN, "Invalid syntax", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[FOO]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[MIME]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[0]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[1.]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[HEADER.FIELDS ()]"), SYN, "Invalid section", "a",
     CMD(FETCH)},
    {S("a FETCH 1 BODY[HEADER.FIELDS (a:b)]"), SYN, "Invalid section", "a",
     CMD(FETCH)},
    {S("a FETCH 1 BODY[HEADER"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1 BINARY[TEXT]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BINARY.SIZE"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1 BINARY.SIZE[1]<0.1>"), SYN, "Invalid syntax", "a",
     CMD(FETCH)},
    {S("a FETCH 1 BODY[HEADER.FIELDS (a b)"), SYN, "Missing argument", "a",
     CMD(FETCH)},
    {S("a FETCH 1 BODY[HEADER.FIELDS (\"a b\")]"), SYN, "Invalid section", "a",
     CMD(FETCH)},
    {S("a FETCH 1 BODY[4294967296]"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY.PEEK"), SYN, "Missing argument", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY.PEEK FLAGS"), SYN, "Invalid section", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[]<1>"), SYN, "Invalid fetch item", "a", CMD(FETCH)},
    {S("a FETCH 1 BODY[]<1.0>"), SYN, "Invalid fetch item", "a", CMD(FETCH)},
    {S("a FETCH 1 (FLAGS) (VANISHED)"), SYN, "Invalid parameter", "a",
     CMD(FETCH)},
    {S("a UID FETCH 1 (FLAGS) (VANISHED)"), SYN, "Invalid parameter", "a",
     CMD(FETCH)},
    {S("a FETCH 1 (FLAGS) (CHANGEDSINCE x)"), SYN, "Invalid number", "a",
     CMD(FETCH)},
    {S("a FETCH 1 (FLAGS) (FOO)"), SYN, "Invalid parameter", "a", CMD(FETCH)},
    {S("a STORE 1 +FLAGS (\\Recent)"), SYN, "Invalid flag", "a", CMD(STORE)},
    {S("a STORE 1 +FLAGS (\\Foo)"), SYN, "Invalid flag", "a", CMD(STORE)},
    {S("a STORE 1 +FLAGS (\\)"), SYN, "Invalid flag", "a", CMD(STORE)},
    {S("a STORE 1 +FLAGS (a b"), SYN, "Missing argument", "a", CMD(STORE)},
    {S("a STORE 1 FLAGZ \\Seen"), SYN, "Invalid store item", "a", CMD(STORE)},
    {S("a STORE 1 (FOO 1) FLAGS \\Seen"), SYN, "Invalid parameter", "a",
     CMD(STORE)},
    {S("a STORE 1 FLAGS"), SYN, "Missing argument", "a", CMD(STORE)},
    {S("a SELECT"), SYN, "Missing argument", "a", CMD(SELECT)},
    {S("a SELECT INBOX (FOO)"), SYN, "Invalid parameter", "a", CMD(SELECT)},
    {S("a SELECT INBOX ()"), SYN, "Invalid parameter", "a", CMD(SELECT)},
    {S("a SELECT INBOX (CONDSTORE CONDSTORE)"), SYN, "Invalid parameter", "a",
     CMD(SELECT)},
    {S("a SELECT INBOX (QRESYNC (0 1))"), SYN, "Invalid number", "a",
     CMD(SELECT)},
    {S("a STATUS INBOX (FOO)"), SYN, "Invalid status item", "a", CMD(STATUS)},
    {S("a STATUS INBOX ()"), SYN, "Invalid status item", "a", CMD(STATUS)},
    {S("a STATUS INBOX"), SYN, "Missing argument", "a", CMD(STATUS)},
    {S("a LIST (FOO) \"\" *"), SYN, "Invalid list option", "a", CMD(LIST)},
    {S("a LIST (RECURSIVEMATCH) \"\" *"), SYN, "Invalid list option", "a",
     CMD(LIST)},
    {S("a LIST \"\" * RETURN (FOO)"), SYN, "Invalid return option", "a",
     CMD(LIST)},
    {S("a LIST \"\" * FOO"), SYN, "Invalid return option", "a", CMD(LIST)},
    {S("a LIST \"\" ()"), SYN, "Invalid mailbox name", "a", CMD(LIST)},
    {S("a LIST \"\""), SYN, "Missing argument", "a", CMD(LIST)},
    {S("a CREATE x (FOO)"), SYN, "Invalid parameter", "a", CMD(CREATE)},
    {S("a SEARCH FOO"), SYN, "Invalid search key", "a", CMD(SEARCH)},
    {S("a SEARCH"), SYN, "Missing argument", "a", CMD(SEARCH)},
    {S("a SEARCH "), SYN, "Missing argument", "a", CMD(SEARCH)},
    {S("a SEARCH BEFORE 32-Jan-2000"), SYN, "Invalid date", "a", CMD(SEARCH)},
    {S("a SEARCH BEFORE"), SYN, "Missing argument", "a", CMD(SEARCH)},
    {S("a SEARCH LARGER x"), SYN, "Invalid number", "a", CMD(SEARCH)},
    {S("a SEARCH LARGER 9223372036854775808"), SYN, "Invalid number", "a",
     CMD(SEARCH)},
    {S("a SEARCH KEYWORD \\Seen"), SYN, "Invalid search key", "a", CMD(SEARCH)},
    {S("a SEARCH (SEEN"), SYN, "Missing argument", "a", CMD(SEARCH)},
    {S("a SEARCH ()"), SYN, "Invalid search key", "a", CMD(SEARCH)},
    {S("a SEARCH OR SEEN"), SYN, "Missing argument", "a", CMD(SEARCH)},
    {S("a SEARCH RETURN (FOO) ALL"), SYN, "Invalid return option", "a",
     CMD(SEARCH)},
    {S("a SEARCH MODSEQ \"/flags/x\" bad 5"), SYN, "Invalid search key", "a",
     CMD(SEARCH)},
    /* Found by fuzzing: an entry name must be "/flags/" and a flag. */
    {S("a SEARCH MODSEQ \"s\xd8/\\\\draft\" all 5"), SYN, "Invalid search key",
     "a", CMD(SEARCH)},
    {S("a SEARCH MODSEQ \"/flags/\" all 5"), SYN, "Invalid search key", "a",
     CMD(SEARCH)},
    {S("a SORT (FOO) UTF-8 ALL"), SYN, "Invalid sort criterion", "a",
     CMD(SORT)},
    {S("a SORT () UTF-8 ALL"), SYN, "Invalid sort criterion", "a", CMD(SORT)},
    {S("a SORT (DATE) UTF-8"), SYN, "Missing argument", "a", CMD(SORT)},
    {S("a THREAD FOO UTF-8 ALL"), SYN, "Unknown thread algorithm", "a",
     CMD(THREAD)},
    {S("a AUTHENTICATE"), SYN, "Missing argument", "a", CMD(AUTHENTICATE)},
    {S("a AUTHENTICATE PLAIN abc"), SYN, "Invalid base64", "a",
     CMD(AUTHENTICATE)},
    {S("a AUTHENTICATE PLAIN ab=c"), SYN, "Invalid base64", "a",
     CMD(AUTHENTICATE)},
    {S("a AUTHENTICATE PLAIN a==="), SYN, "Invalid base64", "a",
     CMD(AUTHENTICATE)},
    {S("a AUTHENTICATE PLAIN dGVz dA=="), SYN, "Extra arguments", "a",
     CMD(AUTHENTICATE)},
    {S("a APPEND INBOX"), SYN, "Missing argument", "a", CMD(APPEND)},
    {S("a APPEND INBOX (\\Seen)"), SYN, "Missing argument", "a", CMD(APPEND)},
    {S("a APPEND INBOX hello"), SYN, "Invalid literal", "a", CMD(APPEND)},
    {S("a APPEND INBOX {3}\r\na\0c"), SYN, "NUL in string", "a", CMD(APPEND)},
    {S("a APPEND INBOX \"bad date\" {1}\r\nx"), SYN, "Invalid date", "a",
     CMD(APPEND)},
    {S("a APPEND INBOX (\\Recent) {1}\r\nx"), SYN, "Invalid flag", "a",
     CMD(APPEND)},
    {S("a APPEND INBOX {1}"), SYN, "Invalid literal", "a", CMD(APPEND)},
    {S("a ENABLE"), SYN, "Missing argument", "a", CMD(ENABLE)},
    {S("a ENABLE (x)"), SYN, "Invalid parameter", "a", CMD(ENABLE)},
    {S("a ID"), SYN, "Missing argument", "a", CMD(ID)},
    {S("a ID FOO"), SYN, "Invalid parameter", "a", CMD(ID)},
    {S("a ID (\"a\")"), SYN, "Invalid syntax", "a", CMD(ID)},
    {S("a ID (\"a\" \"b\""), SYN, "Missing argument", "a", CMD(ID)},
    {S("a ID (\"0123456789012345678901234567890\" NIL)"), SYN,
     "Invalid parameter", "a", CMD(ID)},
    {S("a COPY 1"), SYN, "Missing argument", "a", CMD(COPY)},
    {S("a UID EXPUNGE"), SYN, "Missing argument", "a", CMD(EXPUNGE)},
    {S("a RENAME a"), SYN, "Missing argument", "a", CMD(RENAME)},
};

START_TEST(test_imap_parse_error_texts) {
  const err_case *c = &err_cases[_i];
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command cmd;
  int rc = parse(&p, c->in, c->in_len, &cmd);
  if (rc != c->rc || strcmp(mailproto_imap_parser_error(&p), c->text) != 0)
    ck_abort_msg("[%.*s]: rc %d text \"%s\", want %d \"%s\"", (int)c->in_len,
                 c->in, rc, mailproto_imap_parser_error(&p), c->rc, c->text);
  ck_assert(str_is(&cmd.tag, c->tag) ||
            (c->tag[0] == '\0' && cmd.tag.len == 0));
  ck_assert_int_eq(cmd.id, c->id);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Parsed fields                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_imap_parse_fetch_fields) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      parse_str(&p,
                "A1 UID FETCH 1:*,7,$x (BODY.PEEK[1.2.HEADER.FIELDS (From "
                "{2}\r\nTo)]<5.10> BINARY.SIZE[3] FLAGS) (CHANGEDSINCE 9)",
                &c),
      SYN);
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Invalid sequence set");
  ck_assert_int_eq(
      parse_str(&p,
                "A1 UID FETCH 1:*,7 (BODY.PEEK[1.2.HEADER.FIELDS (From "
                "{2}\r\nTo)]<5.10> BINARY.SIZE[3] FLAGS) (CHANGEDSINCE 9)",
                &c),
      0);
  ck_assert(str_is(&c.tag, "A1"));
  ck_assert_int_eq(c.id, MAILPROTO_IMAP_CMD_FETCH);
  ck_assert_int_eq(c.uid, 1);
  const mailproto_imap_fetch *f = &c.u.fetch;
  ck_assert_uint_eq(f->set.count, 2);
  ck_assert_uint_eq(f->set.ranges[0].first, 1);
  ck_assert_uint_eq(f->set.ranges[0].last, MAILPROTO_IMAP_SEQ_STAR);
  ck_assert_uint_eq(f->set.ranges[1].first, 7);
  ck_assert_uint_eq(f->item_count, 3);
  ck_assert_int_eq(f->list, 1);
  const mailproto_imap_fetch_item *it = &f->items[0];
  ck_assert_int_eq(it->type, MAILPROTO_IMAP_FETCH_BODY_SECTION);
  ck_assert_int_eq(it->peek, 1);
  ck_assert_uint_eq(it->section.part_count, 2);
  ck_assert_uint_eq(it->section.parts[0], 1);
  ck_assert_uint_eq(it->section.parts[1], 2);
  ck_assert_int_eq(it->section.text, MAILPROTO_IMAP_SECTION_HEADER_FIELDS);
  ck_assert_uint_eq(it->section.field_count, 2);
  ck_assert(str_is(&it->section.fields[0], "From"));
  ck_assert(str_is(&it->section.fields[1], "To"));
  ck_assert_int_eq(it->has_partial, 1);
  ck_assert_uint_eq(it->partial_offset, 5);
  ck_assert_uint_eq(it->partial_length, 10);
  ck_assert_int_eq(f->items[1].type, MAILPROTO_IMAP_FETCH_BINARY_SIZE);
  ck_assert_uint_eq(f->items[1].section.part_count, 1);
  ck_assert_int_eq(f->items[2].type, MAILPROTO_IMAP_FETCH_FLAGS);
  ck_assert_int_eq(f->has_changedsince, 1);
  ck_assert_uint_eq(f->changedsince, 9);

  ck_assert_int_eq(parse_str(&p, "a FETCH 1 FULL", &c), 0);
  ck_assert_int_eq(c.u.fetch.macro, MAILPROTO_IMAP_MACRO_FULL);
  ck_assert_uint_eq(c.u.fetch.item_count, 5);
  ck_assert_int_eq(c.u.fetch.items[3].type, MAILPROTO_IMAP_FETCH_ENVELOPE);
  ck_assert_int_eq(c.u.fetch.items[4].type, MAILPROTO_IMAP_FETCH_BODY);
  ck_assert_int_eq(parse_str(&p, "a FETCH 1 FAST", &c), 0);
  ck_assert_uint_eq(c.u.fetch.item_count, 3);
  ck_assert_int_eq(parse_str(&p, "a FETCH 1 ALL", &c), 0);
  ck_assert_uint_eq(c.u.fetch.item_count, 4);
  ck_assert_int_eq(parse_str(&p, "a FETCH 1 BODY[]", &c), 0);
  ck_assert_int_eq(c.u.fetch.items[0].type, MAILPROTO_IMAP_FETCH_BODY_SECTION);
  ck_assert_int_eq(c.u.fetch.items[0].peek, 0);
  ck_assert_int_eq(c.u.fetch.items[0].section.text, MAILPROTO_IMAP_SECTION_ALL);
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_store_and_flags) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      parse_str(&p,
                "a STORE 2:4 (UNCHANGEDSINCE 0) -FLAGS.SILENT (\\Seen foo "
                "\\Deleted $Junk foo)",
                &c),
      0);
  const mailproto_imap_store *st = &c.u.store;
  ck_assert_int_eq(st->op, MAILPROTO_IMAP_STORE_REMOVE);
  ck_assert_int_eq(st->silent, 1);
  ck_assert_int_eq(st->has_unchangedsince, 1);
  ck_assert_uint_eq(st->unchangedsince, 0);
  ck_assert_uint_eq(st->flags.system,
                    MAILPROTO_IMAP_FLAG_SEEN | MAILPROTO_IMAP_FLAG_DELETED);
  ck_assert_uint_eq(st->flags.keyword_count, 3);
  ck_assert(str_is(&st->flags.keywords[0], "foo"));
  ck_assert(str_is(&st->flags.keywords[1], "$Junk"));
  ck_assert(str_is(&st->flags.keywords[2], "foo"));
  ck_assert_int_eq(parse_str(&p, "a STORE 1 FLAGS \\Answered", &c), 0);
  ck_assert_int_eq(c.u.store.op, MAILPROTO_IMAP_STORE_REPLACE);
  ck_assert_int_eq(c.u.store.list, 0);
  ck_assert_uint_eq(c.u.store.flags.system, MAILPROTO_IMAP_FLAG_ANSWERED);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* The number of nodes of a search tree and its depth. */
static void tree_stats(const mailproto_imap_search_key *k, unsigned depth,
                       unsigned *nodes, unsigned *max_depth) {
  for (; k; k = k->next) {
    (*nodes)++;
    if (depth > *max_depth)
      *max_depth = depth;
    tree_stats(k->children, depth + 1, nodes, max_depth);
  }
}

START_TEST(test_imap_parse_search_tree) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      parse_str(&p,
                "a UID SEARCH RETURN (MIN MAX SAVE) CHARSET UTF-8 OR FROM "
                "{3}\r\nbob NOT (SEEN 2:3) HEADER X-A \"b c\" SINCE "
                "1-Feb-1994",
                &c),
      0);
  const mailproto_imap_search *s = &c.u.search;
  ck_assert_int_eq(s->has_return, 1);
  ck_assert_uint_eq(s->return_opts, MAILPROTO_IMAP_RETURN_MIN |
                                        MAILPROTO_IMAP_RETURN_MAX |
                                        MAILPROTO_IMAP_RETURN_SAVE);
  ck_assert_int_eq(s->has_charset, 1);
  ck_assert(str_is(&s->charset, "UTF-8"));
  const mailproto_imap_search_key *k = s->key;
  ck_assert_int_eq(k->type, MAILPROTO_IMAP_SEARCH_AND);
  const mailproto_imap_search_key * or = k->children;
  ck_assert_int_eq(or->type, MAILPROTO_IMAP_SEARCH_OR);
  ck_assert_int_eq(or->children->type, MAILPROTO_IMAP_SEARCH_FROM);
  ck_assert(str_is(& or->children->str, "bob"));
  const mailproto_imap_search_key *not = or->children->next;
  ck_assert_int_eq(not ->type, MAILPROTO_IMAP_SEARCH_NOT);
  ck_assert_ptr_null(not ->next);
  const mailproto_imap_search_key *paren = not ->children;
  ck_assert_int_eq(paren->type, MAILPROTO_IMAP_SEARCH_AND);
  ck_assert_int_eq(paren->children->type, MAILPROTO_IMAP_SEARCH_SEEN);
  ck_assert_int_eq(paren->children->next->type, MAILPROTO_IMAP_SEARCH_SEQSET);
  ck_assert_uint_eq(paren->children->next->set.ranges[0].first, 2);
  const mailproto_imap_search_key *hdr = or->next;
  ck_assert_int_eq(hdr->type, MAILPROTO_IMAP_SEARCH_HEADER);
  ck_assert(str_is(&hdr->field, "X-A"));
  ck_assert(str_is(&hdr->str, "b c"));
  ck_assert_int_eq(hdr->next->type, MAILPROTO_IMAP_SEARCH_SINCE);
  ck_assert_int_eq(hdr->next->date, 760060800); /* 1994-02-01T00:00:00Z */
  ck_assert_ptr_null(hdr->next->next);
  unsigned nodes = 0, depth = 0;
  tree_stats(k, 0, &nodes, &depth);
  ck_assert_uint_eq(nodes, 9);
  ck_assert_uint_eq(depth, 4);

  ck_assert_int_eq(parse_str(&p, "a SEARCH $", &c), 0);
  ck_assert_int_eq(c.u.search.key->children->set.saved, 1);
  ck_assert_int_eq(parse_str(&p, "a SORT (REVERSE DATE SUBJECT) UTF-8 ALL", &c),
                   0);
  ck_assert_uint_eq(c.u.sort.criteria_count, 2);
  ck_assert_int_eq(c.u.sort.criteria[0].reverse, 1);
  ck_assert_int_eq(c.u.sort.criteria[0].key, MAILPROTO_IMAP_SORT_DATE);
  ck_assert_int_eq(c.u.sort.criteria[1].reverse, 0);
  ck_assert_int_eq(parse_str(&p, "a THREAD REFERENCES UTF-8 ALL", &c), 0);
  ck_assert_int_eq(c.u.thread.algorithm, MAILPROTO_IMAP_THREAD_REFERENCES);
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_mailbox_commands) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      parse_str(&p,
                "a LIST (SUBSCRIBED RECURSIVEMATCH) ref (\"a b\" %/x) RETURN "
                "(CHILDREN STATUS (MESSAGES SIZE))",
                &c),
      0);
  const mailproto_imap_list *l = &c.u.list;
  ck_assert_int_eq(l->extended, 1);
  ck_assert_uint_eq(l->select_opts, MAILPROTO_IMAP_LIST_SEL_SUBSCRIBED |
                                        MAILPROTO_IMAP_LIST_SEL_RECURSIVEMATCH);
  ck_assert_uint_eq(l->return_opts, MAILPROTO_IMAP_LIST_RET_CHILDREN |
                                        MAILPROTO_IMAP_LIST_RET_STATUS);
  ck_assert_uint_eq(l->status_items, MAILPROTO_IMAP_STATUS_MESSAGES |
                                         MAILPROTO_IMAP_STATUS_SIZE);
  ck_assert(str_is(&l->reference, "ref"));
  ck_assert_uint_eq(l->pattern_count, 2);
  ck_assert(str_is(&l->patterns[0], "a b"));
  ck_assert(str_is(&l->patterns[1], "%/x"));
  ck_assert_int_eq(parse_str(&p, "a LIST \"\" *", &c), 0);
  ck_assert_int_eq(c.u.list.extended, 0);

  ck_assert_int_eq(
      parse_str(&p, "a SELECT \"Sent\" (QRESYNC (7 9 1:5 (1 2)) CONDSTORE)",
                &c),
      0);
  const mailproto_imap_select *s = &c.u.select;
  ck_assert(str_is(&s->mailbox, "Sent"));
  ck_assert_int_eq(s->qresync, 1);
  ck_assert_int_eq(s->condstore, 1);
  ck_assert_uint_eq(s->uidvalidity, 7);
  ck_assert_uint_eq(s->modseq, 9);
  ck_assert_int_eq(s->has_known_uids, 1);
  ck_assert_uint_eq(s->known_uids.ranges[0].last, 5);
  ck_assert_int_eq(s->has_seq_match, 1);
  ck_assert_uint_eq(s->known_seq_uids.ranges[0].first, 2);

  ck_assert_int_eq(parse_str(&p, "a CREATE x (USE (\\Sent \\Foo \\Bar))", &c),
                   0);
  ck_assert_uint_eq(c.u.create.use, 0x2000u);
  ck_assert_uint_eq(c.u.create.use_unknown, 2);

  ck_assert_int_eq(parse_str(&p, "a RENAME INBOX \"old inbox\"", &c), 0);
  ck_assert(str_is(&c.u.rename.from, "INBOX"));
  ck_assert(str_is(&c.u.rename.to, "old inbox"));
  ck_assert_int_eq(parse_str(&p, "a LSUB \"\" \"*\"", &c), 0);
  ck_assert_uint_eq(c.u.list.pattern_count, 1);
  ck_assert(str_is(&c.u.list.patterns[0], "*"));

  ck_assert_int_eq(parse_str(&p, "a ID (\"name\" NIL \"x\" {1}\r\ny)", &c), 0);
  ck_assert_uint_eq(c.u.id.count, 2);
  ck_assert_int_eq(c.u.id.params[0].value.nil, 1);
  ck_assert(str_is(&c.u.id.params[1].value.str, "y"));
  ck_assert_int_eq(parse_str(&p, "a ENABLE IMAP4rev2 UTF8=ACCEPT", &c), 0);
  ck_assert_uint_eq(c.u.enable.count, 2);
  ck_assert(str_is(&c.u.enable.capabilities[1], "UTF8=ACCEPT"));
  ck_assert_int_eq(parse_str(&p, "a AUTHENTICATE plain =", &c), 0);
  ck_assert(str_is(&c.u.authenticate.mechanism, "plain"));
  ck_assert_int_eq(c.u.authenticate.has_initial, 1);
  ck_assert_uint_eq(c.u.authenticate.initial.len, 0);
  ck_assert_int_eq(parse_str(&p,
                             "a LOGIN {5+}\r\nfr\xc3\xa9"
                             "d \"p w\"",
                             &c),
                   0);
  ck_assert(str_is(&c.u.login.user, "fr\xc3\xa9"
                                    "d"));
  ck_assert(str_is(&c.u.login.password, "p w"));
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_append_fields) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  ck_assert_int_eq(
      parse(&p,
            S("a APPEND Drafts (\\Draft kw) \"26-Nov-2026 14:05:07 +0000\" "
              "~{3}\r\na\0b (\\Seen) {2+}\r\nxy"),
            &c),
      0);
  const mailproto_imap_append *a = &c.u.append;
  ck_assert(str_is(&a->mailbox, "Drafts"));
  ck_assert_uint_eq(a->message_count, 2);
  ck_assert_int_eq(a->messages[0].has_flags, 1);
  ck_assert_uint_eq(a->messages[0].flags.system, MAILPROTO_IMAP_FLAG_DRAFT);
  ck_assert_int_eq(a->messages[0].has_date, 1);
  ck_assert_int_eq(a->messages[0].date.utc, 1795701907);
  ck_assert_int_eq(a->messages[0].binary, 1);
  ck_assert_uint_eq(a->messages[0].size, 3);
  ck_assert(memcmp(a->messages[0].data, "a\0b", 3) == 0);
  ck_assert_int_eq(a->messages[1].sync, 0);
  ck_assert_int_eq(a->messages[1].has_date, 0);
  ck_assert(memcmp(a->messages[1].data, "xy", 2) == 0);
  mailproto_imap_parser_free(&p);
}
END_TEST

static int app_start(mailproto_imap_parser *p, const char *s,
                     mailproto_imap_command *c) {
  return mailproto_imap_parse_append_start(p, place(s, strlen(s)), strlen(s),
                                           c);
}

static int app_next(mailproto_imap_parser *p, const char *s, int final,
                    mailproto_imap_command *c) {
  return mailproto_imap_parse_append_next(p, place(s, strlen(s)), strlen(s),
                                          final, c);
}

START_TEST(test_imap_parse_append_start_and_next) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  const char *h =
      "a APPEND INBOX (\\Seen) \" 6-Nov-2026 14:05:07 +0000\" {310}";
  ck_assert_int_eq(
      mailproto_imap_parse_append_start(&p, place(h, strlen(h)), strlen(h), &c),
      1);
  ck_assert_int_eq(c.id, MAILPROTO_IMAP_CMD_APPEND);
  ck_assert(str_is(&c.tag, "a"));
  ck_assert(str_is(&c.u.append.mailbox, "INBOX"));
  ck_assert_uint_eq(c.u.append.message_count, 1);
  ck_assert_uint_eq(c.u.append.messages[0].size, 310);
  ck_assert_int_eq(c.u.append.messages[0].sync, 1);
  ck_assert_ptr_null(c.u.append.messages[0].data);
  ck_assert_uint_eq(c.u.append.messages[0].flags.system,
                    MAILPROTO_IMAP_FLAG_SEEN);

  /* A literal mailbox name, another command: not a message. */
  ck_assert_int_eq(app_start(&p, "a APPEND {5}", &c), 0);
  ck_assert_int_eq(app_start(&p, "a LOGIN {5}", &c), 0);
  ck_assert_int_eq(c.id, MAILPROTO_IMAP_CMD_LOGIN);
  /* A malformed APPEND is refused before its message. */
  ck_assert_int_eq(app_start(&p, "a APPEND INBOX (\\Bad) {5}", &c), SYN);
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Invalid flag");
  ck_assert_int_eq(app_start(&p, "a APPEND INBOX", &c), SYN);
  /* An earlier message accepted inline. */
  ck_assert_int_eq(app_start(&p, "a APPEND x {3}\r\nabc (\\Draft) ~{5+}", &c),
                   1);
  ck_assert_uint_eq(c.u.append.message_count, 2);
  ck_assert(memcmp(c.u.append.messages[0].data, "abc", 3) == 0);
  ck_assert_int_eq(c.u.append.messages[1].binary, 1);
  ck_assert_int_eq(c.u.append.messages[1].sync, 0);

  /* The pieces after a streamed message. */
  ck_assert_int_eq(app_next(&p, " (\\Draft) {20}", 0, &c), 1);
  ck_assert_uint_eq(c.u.append.message_count, 1);
  ck_assert_uint_eq(c.u.append.messages[0].size, 20);
  ck_assert_int_eq(app_next(&p, "", 1, &c), 0);
  ck_assert_uint_eq(c.u.append.message_count, 0);
  ck_assert_int_eq(app_next(&p, " x", 1, &c), SYN);
  ck_assert_int_eq(app_next(&p, " {3}\r\nabc", 1, &c), 0);
  ck_assert_uint_eq(c.u.append.message_count, 1);
  ck_assert_int_eq(app_next(&p, " {3}", 1, &c), SYN);
  ck_assert_int_eq(app_next(&p, "", 0, &c), SYN);
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_utf8_mode) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  /* Without UTF8=ACCEPT 8-bit bytes pass (the session checks names). */
  ck_assert_int_eq(parse_str(&p, "a SELECT \"\xff\"", &c), 0);
  mailproto_imap_parser_set_utf8(&p, 1);
  ck_assert_int_eq(parse_str(&p, "a SELECT \"\xff\"", &c), SYN);
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Invalid UTF-8 in string");
  ck_assert_int_eq(parse_str(&p, "a SELECT \"\xc0\x80\"", &c), SYN);
  ck_assert_int_eq(parse_str(&p, "a SELECT \"\xed\xa0\x80\"", &c), SYN);
  ck_assert_int_eq(parse_str(&p, "a SELECT \"Entw\xc3\xbcrfe\"", &c), 0);
  ck_assert(str_is(&c.u.select.mailbox, "Entw\xc3\xbcrfe"));
  /* The writer sends it quoted only when UTF8 is on. */
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 4096);
  ck_assert_int_eq(
      mailproto_imap_write_command(&b, &c, MAILPROTO_IMAP_WRITE_UTF8), 0);
  ck_assert_uint_eq(b.len, strlen("a SELECT \"Entw\xc3\xbcrfe\"\r\n"));
  ck_assert(memcmp(b.data, "a SELECT \"Entw\xc3\xbcrfe\"\r\n", b.len) == 0);
  mailproto_buf_clear(&b);
  ck_assert_int_eq(mailproto_imap_write_command(&b, &c, 0), 0);
  ck_assert(memcmp(b.data, "a SELECT {9}\r\n", 14) == 0);
  mailproto_buf_free(&b);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Limits and attack inputs                                            */
/* ------------------------------------------------------------------ */

START_TEST(test_imap_parse_nesting_bounded) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  size_t n = 10000;
  char *in = malloc(16 + 2 * n);
  ck_assert_ptr_nonnull(in);
  /* 32 levels pass (the default max_nesting), 33 do not. */
  for (size_t depth = 32; depth <= 33; depth++) {
    size_t len = (size_t)sprintf(in, "a SEARCH ");
    memset(in + len, '(', depth);
    len += depth;
    memcpy(in + len, "ALL", 3);
    len += 3;
    memset(in + len, ')', depth);
    len += depth;
    int rc = parse(&p, in, len, &c);
    ck_assert_int_eq(rc, depth == 32 ? 0 : TOOLONG);
  }
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Too deeply nested");
  /* Ten thousand nested parentheses stop at once, cheaply. */
  size_t len = (size_t)sprintf(in, "a SEARCH ");
  memset(in + len, '(', n);
  len += n;
  ck_assert_int_eq(parse(&p, in, len, &c), TOOLONG);
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Too deeply nested");
  ck_assert_uint_le(mailproto_imap_parser_memory(&p), 8192);
  /* NOT and OR chains recurse too: bounded the same way. */
  len = (size_t)sprintf(in, "a SEARCH ");
  for (size_t i = 0; i < 2000; i++)
    len += (size_t)sprintf(in + len, "NOT ");
  len += (size_t)sprintf(in + len, "ALL");
  ck_assert_int_eq(parse(&p, in, len, &c), TOOLONG);
  len = (size_t)sprintf(in, "a SEARCH ");
  for (size_t i = 0; i < 100; i++)
    len += (size_t)sprintf(in + len, "OR ALL ");
  len += (size_t)sprintf(in + len, "ALL");
  ck_assert_int_eq(parse(&p, in, len, &c), 0);
  free(in);
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_huge_sequence_sets) {
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_imap_command c;
  /* The span costs nothing. */
  ck_assert_int_eq(parse_str(&p, "a UID FETCH 1:4294967295 FLAGS", &c), 0);
  ck_assert_uint_eq(c.u.fetch.set.count, 1);
  ck_assert_uint_le(mailproto_imap_parser_memory(&p), 4096);
  /* 1000 ranges pass, 1001 do not. */
  char *in = malloc(20000);
  ck_assert_ptr_nonnull(in);
  for (unsigned count = 1000; count <= 1001; count++) {
    size_t len = (size_t)sprintf(in, "a FETCH ");
    for (unsigned i = 0; i < count; i++)
      len += (size_t)sprintf(in + len, "%s%u", i ? "," : "", 2 * i + 1);
    len += (size_t)sprintf(in + len, " FLAGS");
    int rc = parse(&p, in, len, &c);
    ck_assert_int_eq(rc, count == 1000 ? 0 : TOOLONG);
    if (rc == 0)
      ck_assert_uint_eq(c.u.fetch.set.count, 1000);
  }
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Too many sequence ranges");
  free(in);
  mailproto_imap_parser_free(&p);
}
END_TEST

START_TEST(test_imap_parse_memory_bounded) {
  mailproto_imap_parser_limits lim = {32, 1000, 8192};
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, &lim);
  mailproto_imap_command c;
  /* Many tiny search keys need more arena than allowed. */
  char *in = malloc(40000);
  ck_assert_ptr_nonnull(in);
  size_t len = (size_t)sprintf(in, "a SEARCH");
  for (int i = 0; i < 5000; i++)
    len += (size_t)sprintf(in + len, " 1");
  ck_assert_int_eq(parse(&p, in, len, &c), TOOLONG);
  ck_assert_str_eq(mailproto_imap_parser_error(&p), "Command too complex");
  ck_assert_uint_le(mailproto_imap_parser_memory(&p), 2 * 8192 + 1024);
  /* The parser works on afterwards, and trim gives memory back. */
  ck_assert_int_eq(parse_str(&p, "b NOOP", &c), 0);
  mailproto_imap_parser_trim(&p);
  ck_assert_uint_le(mailproto_imap_parser_memory(&p), 4096);
  free(in);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* Parsing under the failing allocator: NOMEM or the right result, never a
 * leak. */
START_TEST(test_imap_parse_nomem_loop) {
  static const char *const inputs[] = {
      "a LOGIN user pass",
      "a UID FETCH 1:*,3 (FLAGS BODY.PEEK[1.HEADER.FIELDS (A B)]<0.5>)",
      "a SEARCH OR (FROM x TO y) NOT SUBJECT {3}\r\nabc",
      "a LIST (SUBSCRIBED) \"\" (a b c) RETURN (STATUS (MESSAGES))",
      "a APPEND x (\\Seen k) {3}\r\nabc {1}\r\nd",
      "a ID (\"a\" \"b\")",
  };
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    int done = 0;
    for (unsigned long n = 1; !done && n < 100; n++) {
      alloc_fail af;
      alloc_fail_init(&af, n);
      mailproto_imap_parser p;
      mailproto_imap_parser_init(&p, &af.allocator, NULL);
      mailproto_imap_command c;
      int rc = parse_str(&p, inputs[i], &c);
      if (alloc_fail_triggered(&af)) {
        ck_assert_int_eq(rc, MAILPROTO_ERR_NOMEM);
      } else {
        ck_assert_int_eq(rc, 0);
        done = 1;
      }
      mailproto_imap_parser_free(&p);
      ck_assert_int_eq(af.live, 0);
    }
    ck_assert(done);
  }
}
END_TEST

/* ------------------------------------------------------------------ */
/* Sequence sets                                                       */
/* ------------------------------------------------------------------ */

START_TEST(test_imap_seqset_parse_and_normalize) {
  mailproto_imap_range r[8], out[8];
  unsigned n;
  int saved;
  ck_assert_int_eq(
      mailproto_imap_seqset_parse(S("5:2,*,1,3,9:*"), 0, r, 8, &n, &saved), 0);
  ck_assert_uint_eq(n, 5);
  mailproto_imap_seqset set = {0, n, r};
  ck_assert_uint_eq(mailproto_imap_seqset_normalize(&set, 10, out), 2);
  ck_assert_uint_eq(out[0].first, 1);
  ck_assert_uint_eq(out[0].last, 5);
  ck_assert_uint_eq(out[1].first, 9);
  ck_assert_uint_eq(out[1].last, 10);
  /* "*" is the largest number in use even below a range's start. */
  ck_assert(mailproto_imap_seqset_contains(&set, 4, 10));
  ck_assert(!mailproto_imap_seqset_contains(&set, 6, 10));
  ck_assert(mailproto_imap_seqset_contains(&set, 7, 7));
  ck_assert(mailproto_imap_seqset_contains(&set, 8, 7));
  ck_assert_uint_eq(mailproto_imap_seqset_normalize(&set, 3, out), 1);
  ck_assert_uint_eq(out[0].last, 9);
  char text[64];
  ck_assert_int_eq(mailproto_imap_seqset_format(&set, text, sizeof text), 13);
  ck_assert_str_eq(text, "5:2,*,1,3,9:*");
  ck_assert_int_eq(mailproto_imap_seqset_format(&set, text, 10),
                   MAILPROTO_ERR_BUFFER_FULL);
  /* Adjacent ranges merge, the top of the number space too. */
  ck_assert_int_eq(mailproto_imap_seqset_parse(S("4294967295,1:4294967294"), 0,
                                               r, 8, &n, &saved),
                   0);
  set.count = n;
  ck_assert_uint_eq(mailproto_imap_seqset_normalize(&set, 1, out), 1);
  ck_assert_uint_eq(out[0].last, 4294967295u);
  /* "$" alone, and only when allowed. */
  ck_assert_int_eq(mailproto_imap_seqset_parse(S("$"), 1, r, 8, &n, &saved), 0);
  ck_assert_int_eq(saved, 1);
  mailproto_imap_seqset dollar = {1, 0, r};
  ck_assert_uint_eq(mailproto_imap_seqset_normalize(&dollar, 5, out), 0);
  ck_assert_int_eq(mailproto_imap_seqset_format(&dollar, text, sizeof text), 1);
  ck_assert_int_eq(mailproto_imap_seqset_parse(S("$"), 0, r, 8, &n, &saved),
                   SYN);
  static const char *const bad[] = {"",   ",",    "1,",  ":1", "1::2",
                                    "0",  "01",   "1:0", "$1", "4294967296",
                                    "*:", "1:*:", "a"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    ck_assert_int_eq(mailproto_imap_seqset_parse(bad[i], strlen(bad[i]), 1, r,
                                                 8, &n, &saved),
                     SYN);
  ck_assert_int_eq(mailproto_imap_seqset_parse(S("1,2,3"), 0, r, 2, &n, &saved),
                   TOOLONG);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The writer                                                          */
/* ------------------------------------------------------------------ */

static const char *wrote(mailproto_buf *b) {
  static char text[4096];
  memcpy(text, b->data, b->len);
  text[b->len] = '\0';
  mailproto_buf_clear(b);
  return text;
}

START_TEST(test_imap_write_strings_by_content) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 8192);
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("abc"), 0), 0);
  ck_assert_str_eq(wrote(&b), "abc");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("a]b"), 0), 0);
  ck_assert_str_eq(wrote(&b), "a]b");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S(""), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"\"");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("nIl"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"nIl\"");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("a b"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"a b\"");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("a\"b\\c"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"a\\\"b\\\\c\"");
  ck_assert_int_eq(mailproto_imap_write_string(&b, S("abc"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"abc\"");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("a\r\nb"), 0), 0);
  ck_assert_str_eq(wrote(&b), "{4}\r\na\r\nb");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("\xc3\xa9"), 0), 0);
  ck_assert_str_eq(wrote(&b), "{2}\r\n\xc3\xa9");
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("\xc3\xa9"),
                                                MAILPROTO_IMAP_WRITE_UTF8),
                   0);
  ck_assert_str_eq(wrote(&b), "\"\xc3\xa9\"");
  ck_assert_int_eq(
      mailproto_imap_write_astring(&b, S("\xc3"), MAILPROTO_IMAP_WRITE_UTF8),
      0);
  ck_assert_str_eq(wrote(&b), "{1}\r\n\xc3");
  ck_assert_int_eq(mailproto_imap_write_nstring(&b, NULL, 0, 0), 0);
  ck_assert_str_eq(wrote(&b), "NIL");
  ck_assert_int_eq(mailproto_imap_write_nstring(&b, S("NIL"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"NIL\"");
  char big[1500];
  memset(big, 'x', sizeof big);
  big[0] = ' ';
  ck_assert_int_eq(mailproto_imap_write_astring(&b, big, sizeof big, 0), 0);
  ck_assert(memcmp(wrote(&b), "{1500}\r\n x", 10) == 0);
  /* NUL only in literal8. */
  ck_assert_int_eq(mailproto_imap_write_astring(&b, S("a\0b"), 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_uint_eq(b.len, 0);
  ck_assert_int_eq(mailproto_imap_write_literal(&b, S("a\0b"), 1), 0);
  ck_assert_uint_eq(b.len, 9);
  ck_assert(memcmp(b.data, "~{3}\r\na\0b", 9) == 0);
  mailproto_buf_clear(&b);
  ck_assert_int_eq(mailproto_imap_write_number(&b, UINT64_MAX), 0);
  ck_assert_str_eq(wrote(&b), "18446744073709551615");
  /* A full buffer leaves nothing behind. */
  mailproto_buf small;
  mailproto_buf_init(&small, NULL, 6);
  ck_assert_int_eq(mailproto_imap_write_astring(&small, S("a b c d"), 0),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(small.len, 0);
  ck_assert_int_eq(mailproto_imap_write_status(&small, "a", "OK", NULL, "x", 0),
                   MAILPROTO_ERR_BUFFER_FULL);
  ck_assert_uint_eq(small.len, 0);
  mailproto_buf_free(&small);
  mailproto_buf_free(&b);
}
END_TEST

START_TEST(test_imap_write_mailbox_and_flags) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 8192);
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("Entw\xc3\xbcrfe"), 0),
                   0);
  ck_assert_str_eq(wrote(&b), "Entw&APw-rfe");
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("Entw\xc3\xbcrfe"),
                                                MAILPROTO_IMAP_WRITE_UTF8),
                   0);
  ck_assert_str_eq(wrote(&b), "\"Entw\xc3\xbcrfe\"");
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("inbox"), 0), 0);
  ck_assert_str_eq(wrote(&b), "INBOX");
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("a & b"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"a &- b\"");
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("a\"b"), 0), 0);
  ck_assert_str_eq(wrote(&b), "\"a\\\"b\"");
  ck_assert_int_eq(mailproto_imap_write_mailbox(&b, S("a\r\nb"), 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      mailproto_imap_write_mailbox(&b, S("a\x01"), MAILPROTO_IMAP_WRITE_UTF8),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(
      mailproto_imap_write_mailbox(&b, S("\xff"), MAILPROTO_IMAP_WRITE_UTF8),
      MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_uint_eq(b.len, 0);

  const char *kw[] = {"$Forwarded", "bad kw", "\\Seen",    "x]",
                      "ok",         NULL,     "a\r\n* BYE"};
  ck_assert_int_eq(mailproto_imap_write_flags(&b, 0x3fu, kw, 7, 1), 0);
  ck_assert_str_eq(wrote(&b), "(\\Seen \\Answered \\Flagged \\Deleted \\Draft "
                              "\\Recent $Forwarded ok \\*)");
  ck_assert_int_eq(mailproto_imap_write_flags(&b, 0, NULL, 0, 0), 0);
  ck_assert_str_eq(wrote(&b), "()");
  ck_assert_int_eq(mailproto_imap_write_flags(&b, 0, NULL, 0, 1), 0);
  ck_assert_str_eq(wrote(&b), "(\\*)");
  mailproto_imap_range r[2] = {{1, 5}, {7, MAILPROTO_IMAP_SEQ_STAR}};
  mailproto_imap_seqset set = {0, 2, r};
  ck_assert_int_eq(mailproto_imap_write_seqset(&b, &set), 0);
  ck_assert_str_eq(wrote(&b), "1:5,7:*");
  mailproto_buf_free(&b);
}
END_TEST

START_TEST(test_imap_write_status_cannot_be_injected) {
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 8192);
  ck_assert_int_eq(
      mailproto_imap_write_status(
          &b, "a1", "OK", "COPYUID 38505 304,319:320 3956:3958", "Done", 0),
      0);
  ck_assert_str_eq(wrote(&b), "a1 OK [COPYUID 38505 304,319:320 3956:3958] "
                              "Done\r\n");
  ck_assert_int_eq(mailproto_imap_write_status(&b, NULL, "BYE", NULL,
                                               "x\r\n* OK [ALERT] y", 0),
                   0);
  ck_assert_str_eq(wrote(&b), "* BYE x  * OK [ALERT] y\r\n");
  ck_assert_int_eq(
      mailproto_imap_write_status(&b, "t", "NO", "ALERT] x\r\n", "[z", 0), 0);
  ck_assert_str_eq(wrote(&b), "t NO [ALERT  x  ] (z\r\n");
  ck_assert_int_eq(
      mailproto_imap_write_status(&b, "t", "NO", NULL, "[ALERT] fake", 0), 0);
  ck_assert_str_eq(wrote(&b), "t NO (ALERT] fake\r\n");
  ck_assert_int_eq(mailproto_imap_write_status(&b, "t", "OK", "", "", 0), 0);
  ck_assert_str_eq(wrote(&b), "t OK .\r\n");
  ck_assert_int_eq(
      mailproto_imap_write_status(&b, "t", "OK", NULL, "caf\xc3\xa9", 0), 0);
  ck_assert_str_eq(wrote(&b), "t OK caf??\r\n");
  ck_assert_int_eq(mailproto_imap_write_status(&b, "t", "OK", NULL,
                                               "caf\xc3\xa9",
                                               MAILPROTO_IMAP_WRITE_UTF8),
                   0);
  ck_assert_str_eq(wrote(&b), "t OK caf\xc3\xa9\r\n");
  ck_assert_int_eq(mailproto_imap_write_status(&b, "a b", "OK", NULL, "x", 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_write_status(&b, "+", "OK", NULL, "x", 0),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_int_eq(mailproto_imap_write_continuation(&b, "Ready", 0), 0);
  ck_assert_str_eq(wrote(&b), "+ Ready\r\n");
  ck_assert_int_eq(mailproto_imap_write_continuation(&b, "a\r\nb", 0), 0);
  ck_assert_str_eq(wrote(&b), "+ a  b\r\n");
  ck_assert_int_eq(mailproto_imap_write_continuation(&b, "dGVzdA==", 1), 0);
  ck_assert_str_eq(wrote(&b), "+ dGVzdA==\r\n");
  ck_assert_int_eq(mailproto_imap_write_continuation(&b, "", 1), 0);
  ck_assert_str_eq(wrote(&b), "+ \r\n");
  ck_assert_int_eq(mailproto_imap_write_continuation(&b, "a b", 1),
                   MAILPROTO_ERR_INVALID_ARGUMENT);
  ck_assert_uint_eq(b.len, 0);
  mailproto_buf_free(&b);
}
END_TEST

/* Hostile strings go out in a form that parses back to themselves. */
START_TEST(test_imap_write_hostile_strings_round_trip) {
  static const char *const hostile[] = {"x\r\n* OK [ALERT] owned",
                                        "\"",
                                        "\\",
                                        ")",
                                        "(",
                                        "{5}",
                                        "a\nb",
                                        "NIL",
                                        "",
                                        " ",
                                        "]",
                                        "\x7f",
                                        "%*",
                                        "\xc3\xa9t\xc3\xa9"};
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  mailproto_buf b;
  mailproto_buf_init(&b, NULL, 8192);
  for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
    for (unsigned flags = 0; flags <= 1; flags++) {
      mailproto_buf_clear(&b);
      mailproto_buf_append_str(&b, "t LOGIN ");
      ck_assert_int_eq(mailproto_imap_write_astring(&b, hostile[i],
                                                    strlen(hostile[i]), flags),
                       0);
      mailproto_buf_append_str(&b, " ");
      ck_assert_int_eq(mailproto_imap_write_string(&b, hostile[i],
                                                   strlen(hostile[i]), flags),
                       0);
      mailproto_imap_command c;
      ck_assert_int_eq(
          mailproto_imap_parse(&p, place(b.data, b.len), b.len, &c), 0);
      ck_assert(str_is(&c.u.login.user, hostile[i]));
      ck_assert(str_is(&c.u.login.password, hostile[i]));
    }
  }
  mailproto_buf_free(&b);
  mailproto_imap_parser_free(&p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The reader                                                          */
/* ------------------------------------------------------------------ */

typedef struct run {
  mailproto_imap_reader r;
  char log[16384];
  size_t log_len;
  const char *decisions; /* 'a'ccept, 's'tream, 'r'eject, per literal */
  size_t next_decision;
  int last_raw; /* the last logged entry is RAW bytes */
} run;

static void log_bytes(run *x, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n && x->log_len + 5 < sizeof x->log; i++) {
    uint8_t ch = d[i];
    if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
      x->log[x->log_len++] = (char)ch;
    } else {
      x->log_len += (size_t)snprintf(x->log + x->log_len,
                                     sizeof x->log - x->log_len, "\\%02x", ch);
    }
  }
  x->log[x->log_len] = '\0';
}

static void log_str(run *x, const char *s) {
  log_bytes(x, (const uint8_t *)s, strlen(s));
}

static void on_event(run *x, const mailproto_imap_event *ev) {
  char head[128];
  if (ev->type == MAILPROTO_IMAP_EVENT_RAW && x->last_raw) {
    log_bytes(x, ev->data, ev->len);
    return;
  }
  x->last_raw = ev->type == MAILPROTO_IMAP_EVENT_RAW;
  switch (ev->type) {
  case MAILPROTO_IMAP_EVENT_COMMAND:
    log_str(x, ev->continued ? "|C+:" : "|C:");
    log_bytes(x, ev->data, ev->len);
    /* IDLE's DONE and SASL responses are raw lines. */
    if (ev->len >= 5 && memcmp(ev->data + ev->len - 5, " IDLE", 5) == 0)
      ck_assert_int_eq(mailproto_imap_reader_raw_line(&x->r), 0);
    break;
  case MAILPROTO_IMAP_EVENT_LITERAL: {
    snprintf(head, sizeof head,
             "|L%llu%s%s%s@%s:", (unsigned long long)ev->literal_size,
             ev->literal_sync ? "" : "+", ev->literal_binary ? "~" : "",
             ev->literal_fits ? "" : "!", ev->tag);
    log_str(x, head);
    log_bytes(x, ev->data, ev->len);
    char d = x->decisions[x->next_decision];
    if (d)
      x->next_decision++;
    else
      d = 'a';
    int rc;
    if (d == 'a') {
      rc = mailproto_imap_reader_accept(&x->r);
      if (rc == MAILPROTO_ERR_TOO_LONG) {
        ck_assert_int_eq(ev->literal_fits, 0);
        log_str(x, "|T:");
        log_str(x, ev->literal_refusal);
        rc = mailproto_imap_reader_reject(&x->r);
      } else {
        ck_assert_int_eq(ev->literal_fits, 1);
      }
    } else if (d == 's') {
      rc = mailproto_imap_reader_stream(&x->r);
    } else {
      rc = mailproto_imap_reader_reject(&x->r);
    }
    ck_assert_int_eq(rc, 0);
    break;
  }
  case MAILPROTO_IMAP_EVENT_RAW:
    log_str(x, "|R:");
    log_bytes(x, ev->data, ev->len);
    break;
  case MAILPROTO_IMAP_EVENT_RAW_END:
    log_str(x, "|E");
    break;
  case MAILPROTO_IMAP_EVENT_LINE:
    log_str(x, ev->line_too_long ? "|N!:" : "|N:");
    log_bytes(x, ev->data, ev->len);
    break;
  case MAILPROTO_IMAP_EVENT_ERROR:
    snprintf(head, sizeof head, "|X:%s:%s%s%s", ev->tag, ev->text,
             ev->code ? ":" : "", ev->code ? ev->code : "");
    log_str(x, head);
    break;
  }
}

static const mailproto_imap_reader_limits default_limits = {64, 1024, 4096, 8,
                                                            0};

/* Feeds `in` in chunks of `chunk` bytes (0: whole) and logs the events. */
static void feed(run *x, const uint8_t *in, size_t len, size_t chunk) {
  size_t pos = 0;
  while (pos < len) {
    size_t n = chunk && chunk < len - pos ? chunk : len - pos;
    /* Each piece ends right before an unreadable page: the reader may
     * read no further than it was given, chunk by chunk. */
    if (!chunk_guard_ready) {
      ck_assert_int_eq(overread_init(&chunk_guard, 4u << 20), 0);
      chunk_guard_ready = 1;
    }
    const uint8_t *piece = overread_place(&chunk_guard, in + pos, n);
    size_t off = 0;
    for (;;) {
      size_t used;
      mailproto_imap_event ev;
      int rc =
          mailproto_imap_reader_next(&x->r, piece + off, n - off, &used, &ev);
      ck_assert_int_ge(rc, 0);
      off += used;
      if (rc == 1)
        on_event(x, &ev);
      else if (off == n)
        break;
    }
    pos += n;
  }
  /* Events that need no input (RAW_END). */
  size_t used;
  mailproto_imap_event ev;
  while (mailproto_imap_reader_next(&x->r, in, 0, &used, &ev) == 1)
    on_event(x, &ev);
}

static void run_init(run *x, const mailproto_imap_reader_limits *lim,
                     const mailproto_allocator *alloc, const char *decisions) {
  memset(x, 0, sizeof *x);
  mailproto_imap_reader_init(&x->r, alloc, lim ? lim : &default_limits);
  x->decisions = decisions;
}

typedef struct reader_case {
  const char *in;
  size_t in_len;
  const char *decisions;
  const char *log;
  const mailproto_imap_reader_limits *limits;
} reader_case;

static const mailproto_imap_reader_limits minus_limits = {64, 8192, 16384, 8,
                                                          1};
static const mailproto_imap_reader_limits three_literals = {64, 1024, 4096, 3,
                                                            0};
static const mailproto_imap_reader_limits small_command = {64, 1024, 40, 8, 0};

static const reader_case reader_cases[] = {
    /* Plain commands, pipelined, CRLF or bare LF. */
    {S("a1 NOOP\r\na2 CAPABILITY\nb\r\n"), "", "|C:a1 NOOP|C:a2 CAPABILITY|C:b",
     NULL},
    /* Accepted literals of every kind, inline. */
    {S("a2 LOGIN {5}\r\nhello {5+}\r\nworld\r\n"), "aa",
     "|L5@a2:a2 LOGIN {5}|L5+@a2:a2 LOGIN {5}\\0d\\0ahello "
     "{5+}|C:a2 LOGIN {5}\\0d\\0ahello {5+}\\0d\\0aworld",
     NULL},
    {S("a LOGIN {0}\r\n {0+}\n\r\n"), "aa",
     "|L0@a:a LOGIN {0}|L0+@a:a LOGIN {0}\\0d\\0a {0+}|C:a LOGIN "
     "{0}\\0d\\0a {0+}\\0d\\0a",
     NULL},
    /* literal8 accepted inline (NUL allowed there) or refused. */
    {S("a X ~{3}\r\na\0b\r\nb X ~{2+}\r\nxy\r\n"), "ar",
     "|L3~@a:a X ~{3}|C:a X ~{3}\\0d\\0aa\\00b|L2+~@b:b X ~{2+}", NULL},
    /* A streamed APPEND message (literal8), then MULTIAPPEND. */
    {S("a3 APPEND INBOX ~{4}\r\nab\0c (\\Seen) {2+}\r\nxy\r\nz NOOP\r\n"), "ss",
     "|L4~@a3:a3 APPEND INBOX ~{4}|R:ab\\00c|E|L2+@a3: (\\5cSeen) "
     "{2+}|R:xy|E|C+:|C:z NOOP",
     NULL},
    {S("a APPEND x {0}\r\n\r\n"), "s", "|L0@a:a APPEND x {0}|E|C+:", NULL},
    /* A refused synchronising literal: the client sends nothing more. */
    {S("a LOGIN {5}\r\nb NOOP\r\n"), "r", "|L5@a:a LOGIN {5}|C:b NOOP", NULL},
    /* A refused non-synchronising one: skipped, command discarded. */
    {S("a LOGIN {5+}\r\nhello {3+}\r\nabc\r\nb NOOP\r\n"), "r",
     "|L5+@a:a LOGIN {5+}|C:b NOOP", NULL},
    {S("a LOGIN {5+}\r\nhello {3}\r\nb NOOP\r\n"), "r",
     "|L5+@a:a LOGIN {5+}|C:b NOOP", NULL},
    /* Framing errors carry the tag; the rest of the command is dropped. */
    {S("a NOOP\0x\r\nb NOOP\r\n"), "", "|X:a:NUL in command|C:b NOOP", NULL},
    {S("a NOOP\0 {2+}\r\nxy\r\nb NOOP\r\n"), "", "|X:a:NUL in command|C:b NOOP",
     NULL},
    {S("a LOGIN {99999999999999999999999}\r\nb NOOP\r\n"), "",
     "|X:a:Invalid literal size|C:b NOOP", NULL},
    {S("a LOGIN {9223372036854775808}\r\nb NOOP\r\n"), "",
     "|X:a:Invalid literal size|C:b NOOP", NULL},
    {S("a LOGIN {9223372036854775807}\r\nb NOOP\r\n"), "a",
     "|L9223372036854775807!@a:a LOGIN {9223372036854775807}|T:Literal too "
     "big|C:b NOOP",
     NULL},
    {S("a LOGIN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx "
       "{4+}\r\nb NO\r\nc NOOP\r\n"),
     "", "|X:a:Command line too long|C:c NOOP", NULL},
    {S("a LOGIN xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "\r\nc NOOP\r\n"),
     "", "|X:a:Command line too long|C:c NOOP", NULL},
    {S("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx NOOP\r\n"),
     "", "|X::Command line too long", NULL},
    /* RFC 7888 5: LITERAL- refuses non-sync literals over 4096. */
    {S("a LOGIN {4097+}\r\nb NOOP\r\n"), "",
     "|X:a:Non-synchronizing literal too big:TOOBIG", &minus_limits},
    {S("a LOGIN {4096+}\r\n"), "r", "|L4096+@a:a LOGIN {4096+}", &minus_limits},
    {S("a LOGIN {5000}\r\n"), "r", "|L5000@a:a LOGIN {5000}", &minus_limits},
    /* Limits reported before any byte is read. */
    {S("a X {1+}\r\na {1+}\r\nb {1+}\r\nc {1+}\r\nd\r\nz NOOP\r\n"), "aaaa",
     "|L1+@a:a X {1+}|L1+@a:a X {1+}\\0d\\0aa {1+}|L1+@a:a X "
     "{1+}\\0d\\0aa {1+}\\0d\\0ab {1+}|L1+!@a:a X {1+}\\0d\\0aa "
     "{1+}\\0d\\0ab {1+}\\0d\\0ac {1+}|T:Too many literals|C:z NOOP",
     &three_literals},
    {S("a LOGIN {30}\r\n"), "a", "|L30!@a:a LOGIN {30}|T:Command too long",
     &small_command},
    {S("a LOGIN {20}\r\n01234567890123456789 xxxxxxxxxxxxxxxxxxxxxxx\r\n"
       "b NOOP\r\n"),
     "a", "|L20@a:a LOGIN {20}|X:a:Command too long|C:b NOOP", &small_command},
    /* IDLE's DONE is a raw line, whatever it looks like. */
    {S("a IDLE\r\nDONE {5}\r\nb NOOP\r\n"), "", "|C:a IDLE|N:DONE {5}|C:b NOOP",
     NULL},
    /* Tags on errors: none when the first token is not a tag. */
    {S("+x NOOP\0\r\n"), "", "|X::NUL in command", NULL},
};

START_TEST(test_imap_reader_every_split) {
  const reader_case *c = &reader_cases[_i];
  const uint8_t *in = place(c->in, c->in_len);
  run *whole = malloc(sizeof *whole);
  run *x = malloc(sizeof *x);
  ck_assert_ptr_nonnull(whole);
  ck_assert_ptr_nonnull(x);
  run_init(whole, c->limits, NULL, c->decisions);
  feed(whole, in, c->in_len, 0);
  if (strcmp(whole->log, c->log) != 0)
    ck_abort_msg("log\n  %s\nwant\n  %s", whole->log, c->log);
  mailproto_imap_reader_free(&whole->r);
  /* Every chunk size and every two-piece split gives the same events. */
  for (size_t chunk = 1; chunk < c->in_len; chunk++) {
    run_init(x, c->limits, NULL, c->decisions);
    feed(x, in, c->in_len, chunk);
    if (strcmp(x->log, c->log) != 0)
      ck_abort_msg("chunk %zu: log\n  %s\nwant\n  %s", chunk, x->log, c->log);
    mailproto_imap_reader_free(&x->r);
  }
  for (size_t split = 1; split < c->in_len; split++) {
    run_init(x, c->limits, NULL, c->decisions);
    feed(x, in, split, 0);
    feed(x, in + split, c->in_len - split, 0);
    if (strcmp(x->log, c->log) != 0)
      ck_abort_msg("split %zu: log\n  %s\nwant\n  %s", split, x->log, c->log);
    mailproto_imap_reader_free(&x->r);
  }
  free(whole);
  free(x);
}
END_TEST

START_TEST(test_imap_reader_huge_literal_allocates_nothing) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  run *x = malloc(sizeof *x);
  ck_assert_ptr_nonnull(x);
  run_init(x, NULL, &af.allocator, "r");
  const char *in = "a LOGIN {4294967295}\r\n";
  feed(x, place(in, strlen(in)), strlen(in), 0);
  ck_assert_str_eq(x->log, "|L4294967295!@a:a LOGIN {4294967295}");
  ck_assert_uint_eq(af.calls, 0);
  const char *next = "b NOOP\r\n";
  feed(x, place(next, strlen(next)), strlen(next), 0);
  ck_assert_uint_eq(af.calls, 0);
  /* Streaming it costs nothing either (APPEND message data). */
  x->decisions = "s";
  x->next_decision = 0;
  const char *app = "c APPEND x {4294967295}\r\nsome bytes";
  feed(x, place(app, strlen(app)), strlen(app), 0);
  ck_assert_uint_eq(af.calls, 0);
  ck_assert_int_eq(mailproto_imap_reader_busy(&x->r), 1);
  mailproto_imap_reader_free(&x->r);
  ck_assert_int_eq(af.live, 0);
  free(x);
}
END_TEST

START_TEST(test_imap_reader_endless_line_bounded) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_reader_limits lim = {8192, 65536, 262144, 64, 0};
  run *x = malloc(sizeof *x);
  ck_assert_ptr_nonnull(x);
  run_init(x, &lim, &af.allocator, "");
  uint8_t *chunk = malloc(65536);
  ck_assert_ptr_nonnull(chunk);
  memset(chunk, 'x', 65536);
  memcpy(chunk, "tag ", 4);
  /* 10 MB without a line end. */
  for (int i = 0; i < 160; i++) {
    feed(x, chunk, 65536, 0);
    memset(chunk, 'x', 4);
  }
  ck_assert_str_eq(x->log, "");
  ck_assert_uint_le(af.peak_bytes, 16384);
  ck_assert_uint_le(mailproto_imap_reader_buffered(&x->r), 16384);
  const char *end = " {3+}\r\nabc\r\nb NOOP\r\n";
  feed(x, (const uint8_t *)end, strlen(end), 0);
  ck_assert_str_eq(x->log, "|X:tag:Command line too long|C:b NOOP");
  mailproto_imap_reader_free(&x->r);
  ck_assert_int_eq(af.live, 0);
  free(chunk);
  free(x);
}
END_TEST

START_TEST(test_imap_reader_thousand_literals_bounded) {
  alloc_fail af;
  alloc_fail_init(&af, 0);
  mailproto_imap_reader_limits lim = {8192, 65536, 262144, 64, 0};
  mailproto_imap_reader r;
  mailproto_imap_reader_init(&r, &af.allocator, &lim);
  size_t cap = 1000 * 16 + 64, len = 0;
  char *in = malloc(cap);
  ck_assert_ptr_nonnull(in);
  len += (size_t)sprintf(in, "a SEARCH");
  for (int i = 0; i < 1000; i++)
    len += (size_t)sprintf(in + len, " TEXT {1+}\r\nx");
  len += (size_t)sprintf(in + len, "\r\nb NOOP\r\n");
  const uint8_t *p = place(in, len);
  size_t pos = 0;
  unsigned literals = 0, refused_at = 0;
  int commands = 0;
  while (pos < len) {
    size_t used;
    mailproto_imap_event ev;
    int rc = mailproto_imap_reader_next(&r, p + pos, len - pos, &used, &ev);
    pos += used;
    ck_assert_int_ge(rc, 0);
    if (rc == 0)
      break;
    if (ev.type == MAILPROTO_IMAP_EVENT_LITERAL) {
      literals++;
      if (ev.literal_fits) {
        ck_assert_int_eq(mailproto_imap_reader_accept(&r), 0);
      } else {
        /* The 65th literal is refused; the rest of the command goes. */
        ck_assert_str_eq(ev.literal_refusal, "Too many literals");
        refused_at = ev.literal_index;
        ck_assert_int_eq(mailproto_imap_reader_reject(&r), 0);
      }
    } else {
      ck_assert_int_eq(ev.type, MAILPROTO_IMAP_EVENT_COMMAND);
      ck_assert_uint_eq(ev.len, 6);
      ck_assert(memcmp(ev.data, "b NOOP", 6) == 0);
      commands++;
    }
  }
  ck_assert_uint_eq(literals, 65);
  ck_assert_uint_eq(refused_at, 64);
  ck_assert_int_eq(commands, 1);
  ck_assert_uint_le(af.peak_bytes, 16384);
  mailproto_imap_reader_free(&r);
  ck_assert_int_eq(af.live, 0);
  free(in);
}
END_TEST

START_TEST(test_imap_reader_decisions_and_state) {
  mailproto_imap_reader r;
  mailproto_imap_reader_init(&r, NULL, &default_limits);
  ck_assert_int_eq(mailproto_imap_reader_accept(&r), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_reader_stream(&r), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_reader_reject(&r), MAILPROTO_ERR_STATE);
  size_t used;
  mailproto_imap_event ev;
  const uint8_t *in = (const uint8_t *)"a LOGIN {3}\r\nabc x\r\n";
  ck_assert_int_eq(mailproto_imap_reader_next(&r, in, 20, &used, &ev), 1);
  ck_assert_uint_eq(used, 13);
  ck_assert_int_eq(ev.type, MAILPROTO_IMAP_EVENT_LITERAL);
  ck_assert_str_eq(ev.tag, "a");
  /* No reading on before the decision; no raw line mid-command. */
  ck_assert_int_eq(mailproto_imap_reader_next(&r, in + used, 7, &used, &ev),
                   MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_reader_raw_line(&r), MAILPROTO_ERR_STATE);
  ck_assert_int_eq(mailproto_imap_reader_busy(&r), 1);
  ck_assert_int_eq(mailproto_imap_reader_accept(&r), 0);
  ck_assert_int_eq(mailproto_imap_reader_accept(&r), MAILPROTO_ERR_STATE);
  /* STARTTLS: nothing survives a reset. */
  ck_assert_int_eq(mailproto_imap_reader_next(&r, in + 13, 3, &used, &ev), 0);
  mailproto_imap_reader_reset(&r);
  ck_assert_int_eq(mailproto_imap_reader_busy(&r), 0);
  ck_assert_uint_eq(mailproto_imap_reader_buffered(&r), 0);
  const uint8_t *cmd = (const uint8_t *)"b NOOP\r\n";
  ck_assert_int_eq(mailproto_imap_reader_next(&r, cmd, 8, &used, &ev), 1);
  ck_assert_int_eq(ev.type, MAILPROTO_IMAP_EVENT_COMMAND);
  /* A one-line command in one chunk is handed out in place. */
  ck_assert_ptr_eq(ev.data, cmd);
  ck_assert_uint_eq(ev.len, 6);
  /* A raw line longer than the limit is flagged. */
  ck_assert_int_eq(mailproto_imap_reader_raw_line(&r), 0);
  char line[200];
  memset(line, 'y', sizeof line);
  line[198] = '\r';
  line[199] = '\n';
  ck_assert_int_eq(
      mailproto_imap_reader_next(&r, (const uint8_t *)line, 200, &used, &ev),
      1);
  ck_assert_int_eq(ev.type, MAILPROTO_IMAP_EVENT_LINE);
  ck_assert_int_eq(ev.line_too_long, 1);
  mailproto_imap_reader_free(&r);
}
END_TEST

/* The reader feeding the parser: a MULTIAPPEND whose messages stream. */
START_TEST(test_imap_reader_with_parser_append) {
  mailproto_imap_reader r;
  mailproto_imap_reader_init(&r, NULL, &default_limits);
  mailproto_imap_parser p;
  mailproto_imap_parser_init(&p, NULL, NULL);
  const char *script = "A1 APPEND {5}\r\nDraft (\\Seen) {4}\r\nabcd "
                       "\"1-Jan-2020 00:00:00 +0000\" ~{3+}\r\nxyz\r\n";
  size_t len = strlen(script), pos = 0;
  const uint8_t *in = place(script, len);
  char data[64];
  size_t data_len = 0;
  unsigned messages = 0;
  int done = 0;
  while (!done) {
    size_t used;
    mailproto_imap_event ev;
    int rc = mailproto_imap_reader_next(&r, in + pos, len - pos, &used, &ev);
    pos += used;
    ck_assert_int_eq(rc, 1);
    mailproto_imap_command c;
    switch (ev.type) {
    case MAILPROTO_IMAP_EVENT_LITERAL:
      rc = messages == 0
               ? mailproto_imap_parse_append_start(&p, ev.data, ev.len, &c)
               : mailproto_imap_parse_append_next(&p, ev.data, ev.len, 0, &c);
      if (rc == 0) {
        ck_assert_int_eq(mailproto_imap_reader_accept(&r), 0);
      } else {
        ck_assert_int_eq(rc, 1);
        const mailproto_imap_append_message *m =
            &c.u.append.messages[c.u.append.message_count - 1];
        if (messages == 0) {
          ck_assert(str_is(&c.u.append.mailbox, "Draft"));
          ck_assert_uint_eq(m->flags.system, MAILPROTO_IMAP_FLAG_SEEN);
          ck_assert_uint_eq(m->size, 4);
        } else {
          ck_assert_int_eq(m->has_date, 1);
          ck_assert_int_eq(m->binary, 1);
          ck_assert_uint_eq(m->size, 3);
        }
        messages++;
        ck_assert_int_eq(mailproto_imap_reader_stream(&r), 0);
      }
      break;
    case MAILPROTO_IMAP_EVENT_RAW:
      memcpy(data + data_len, ev.data, ev.len);
      data_len += ev.len;
      break;
    case MAILPROTO_IMAP_EVENT_RAW_END:
      data[data_len++] = '|';
      break;
    case MAILPROTO_IMAP_EVENT_COMMAND:
      ck_assert_int_eq(ev.continued, 1);
      ck_assert_int_eq(
          mailproto_imap_parse_append_next(&p, ev.data, ev.len, 1, &c), 0);
      done = 1;
      break;
    default:
      ck_abort_msg("unexpected event %d", (int)ev.type);
    }
  }
  ck_assert_uint_eq(messages, 2);
  ck_assert_uint_eq(data_len, 9);
  ck_assert(memcmp(data, "abcd|xyz|", 9) == 0);
  ck_assert_uint_eq(pos, len);
  mailproto_imap_parser_free(&p);
  mailproto_imap_reader_free(&r);
}
END_TEST

START_TEST(test_imap_reader_nomem_loop) {
  const char *script = "a LOGIN {5}\r\nhello {5+}\r\nworld\r\nb NOOP\r\n"
                       "c SEARCH TEXT {3}\r\nabc\r\n";
  size_t len = strlen(script);
  const uint8_t *in = place(script, len);
  int done = 0;
  for (unsigned long n = 1; !done && n < 100; n++) {
    for (size_t chunk = 1; chunk <= len; chunk *= 3) {
      alloc_fail af;
      alloc_fail_init(&af, n);
      mailproto_imap_reader r;
      mailproto_imap_reader_init(&r, &af.allocator, &default_limits);
      size_t pos = 0;
      int failed = 0, commands = 0;
      while (pos < len && !failed) {
        size_t end = chunk < len - pos ? pos + chunk : len;
        while (pos < end && !failed) {
          size_t used;
          mailproto_imap_event ev;
          int rc =
              mailproto_imap_reader_next(&r, in + pos, end - pos, &used, &ev);
          pos += used;
          if (rc == MAILPROTO_ERR_NOMEM) {
            failed = 1;
            break;
          }
          ck_assert_int_ge(rc, 0);
          if (rc == 0)
            break;
          if (ev.type == MAILPROTO_IMAP_EVENT_COMMAND)
            commands++;
          if (ev.type == MAILPROTO_IMAP_EVENT_LITERAL) {
            int arc = mailproto_imap_reader_accept(&r);
            if (arc == MAILPROTO_ERR_NOMEM)
              failed = 1;
            else
              ck_assert_int_eq(arc, 0);
          }
        }
      }
      ck_assert_int_eq(failed, alloc_fail_triggered(&af));
      if (!failed) {
        ck_assert_int_eq(commands, 3);
        if (chunk == 1)
          done = 1;
      }
      mailproto_imap_reader_free(&r);
      ck_assert_int_eq(af.live, 0);
    }
  }
  ck_assert(done);
}
END_TEST

START_TEST(test_imap_literal_header_forms) {
  uint64_t size;
  int sync, binary;
  size_t start;
  ck_assert_int_eq(mailproto_imap_literal_header((const uint8_t *)"a {12}", 6,
                                                 &size, &sync, &binary, &start),
                   1);
  ck_assert_uint_eq(size, 12);
  ck_assert_int_eq(sync, 1);
  ck_assert_int_eq(binary, 0);
  ck_assert_uint_eq(start, 2);
  ck_assert_int_eq(mailproto_imap_literal_header((const uint8_t *)"~{0+}", 5,
                                                 &size, &sync, &binary, &start),
                   1);
  ck_assert_int_eq(binary, 1);
  ck_assert_int_eq(sync, 0);
  ck_assert_uint_eq(start, 0);
  static const char *const not_headers[] = {"",   "}",    "{}",  "{+}", "a}",
                                            "{1", "{1}x", "{a}", "1}"};
  for (size_t i = 0; i < sizeof not_headers / sizeof not_headers[0]; i++)
    ck_assert_int_eq(mailproto_imap_literal_header(
                         (const uint8_t *)not_headers[i],
                         strlen(not_headers[i]), &size, &sync, &binary, &start),
                     0);
  ck_assert_int_eq(
      mailproto_imap_literal_header((const uint8_t *)"{123456789012345678901}",
                                    23, &size, &sync, &binary, &start),
      -1);
}
END_TEST

Suite *suite_imap_parser(void) {
  Suite *s = suite_create("imap_parser");
  TCase *tc = tcase_create("parser");
  tcase_add_loop_test(tc, test_imap_parse_round_trip_every_form, 0,
                      sizeof rt_cases / sizeof rt_cases[0]);
  tcase_add_loop_test(tc, test_imap_parse_error_texts, 0,
                      sizeof err_cases / sizeof err_cases[0]);
  tcase_add_test(tc, test_imap_parse_fetch_fields);
  tcase_add_test(tc, test_imap_parse_store_and_flags);
  tcase_add_test(tc, test_imap_parse_search_tree);
  tcase_add_test(tc, test_imap_parse_mailbox_commands);
  tcase_add_test(tc, test_imap_parse_append_fields);
  tcase_add_test(tc, test_imap_parse_append_start_and_next);
  tcase_add_test(tc, test_imap_parse_utf8_mode);
  tcase_add_test(tc, test_imap_parse_nesting_bounded);
  tcase_add_test(tc, test_imap_parse_huge_sequence_sets);
  tcase_add_test(tc, test_imap_parse_memory_bounded);
  tcase_add_test(tc, test_imap_parse_nomem_loop);
  tcase_add_test(tc, test_imap_seqset_parse_and_normalize);
  suite_add_tcase(s, tc);

  TCase *w = tcase_create("writer");
  tcase_add_test(w, test_imap_write_strings_by_content);
  tcase_add_test(w, test_imap_write_mailbox_and_flags);
  tcase_add_test(w, test_imap_write_status_cannot_be_injected);
  tcase_add_test(w, test_imap_write_hostile_strings_round_trip);
  suite_add_tcase(s, w);

  TCase *r = tcase_create("reader");
  tcase_set_timeout(r, 60);
  tcase_add_loop_test(r, test_imap_reader_every_split, 0,
                      sizeof reader_cases / sizeof reader_cases[0]);
  tcase_add_test(r, test_imap_reader_huge_literal_allocates_nothing);
  tcase_add_test(r, test_imap_reader_endless_line_bounded);
  tcase_add_test(r, test_imap_reader_thousand_literals_bounded);
  tcase_add_test(r, test_imap_reader_decisions_and_state);
  tcase_add_test(r, test_imap_reader_with_parser_append);
  tcase_add_test(r, test_imap_reader_nomem_loop);
  tcase_add_test(r, test_imap_literal_header_forms);
  suite_add_tcase(s, r);
  return s;
}
