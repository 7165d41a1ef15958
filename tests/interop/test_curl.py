#!/usr/bin/env python3
"""curl as SMTP and POP3 client (smtp://, pop3://, and with TLS when the
server has it). Exits 77 only if curl is not installed."""

import os
import re
import tempfile

from serverlib import (Server, args, need_program, run_program, run_tests)
import test_tls


def write_message(directory, subject, body):
    path = os.path.join(directory, subject.replace(" ", "_") + ".eml")
    with open(path, "wb") as f:
        f.write(("From: sender@example.org\r\nTo: alice@localhost\r\n"
                 "Subject: %s\r\n\r\n%s\r\n" % (subject, body)).encode())
    return path


def curl(*argv, ok=(0,)):
    return run_program([need_program("curl"), "-sS", "--max-time", "30"]
                       + list(argv), ok=ok)


def test_curl_smtp_then_pop3_list_retrieve_delete():
    need_program("curl")
    with Server() as srv, tempfile.TemporaryDirectory() as tmp:
        smtp = "smtp://127.0.0.1:%d" % srv.ports["smtp"]
        pop3 = "pop3://127.0.0.1:%d" % srv.ports["pop3"]
        # Without authentication: mail for a local user is accepted.
        curl(smtp, "--mail-from", "sender@example.org",
             "--mail-rcpt", "alice@localhost",
             "--upload-file", write_message(tmp, "first", "one"))
        # With AUTH PLAIN (curl would pick CRAM-MD5 on its own).
        curl(smtp, "--user", "alice:secret", "--login-options", "AUTH=PLAIN",
             "--mail-from", "alice@localhost",
             "--mail-rcpt", "alice@localhost",
             "--upload-file", write_message(tmp, "second", "two"))
        # An unknown recipient is refused: curl reports the RCPT failure.
        p = curl(smtp, "--mail-from", "sender@example.org",
                 "--mail-rcpt", "nobody@localhost",
                 "--upload-file", write_message(tmp, "lost", "x"), ok=(55,))
        assert "550" in p.stderr, p.stderr

        listing = curl("-u", "alice:secret", pop3 + "/").stdout
        entries = re.findall(r"^(\d+) (\d+)\r?$", listing, re.M)
        assert [n for n, _ in entries] == ["1", "2"], listing
        first = curl("-u", "alice:secret", pop3 + "/1").stdout
        assert "Subject: first" in first and "one" in first, first
        # -X DELE: the custom command instead of RETR; -I: no body.
        curl("-u", "alice:secret", pop3 + "/1", "-X", "DELE", "-I")
        listing = curl("-u", "alice:secret", pop3 + "/").stdout
        assert re.findall(r"^(\d+) ", listing, re.M) == ["1"], listing
        second = curl("-u", "alice:secret", pop3 + "/1").stdout
        assert "Subject: second" in second, second
        assert len(srv.user_files("alice")) == 1
        # A wrong password: curl's "login denied".
        curl("-u", "alice:wrong", pop3 + "/", ok=(67,))
        srv.wait_log(r"auth failed user=alice")
        srv.stop()


def test_curl_with_tls():
    need_program("curl")
    certs = test_tls.cert_args()
    cafile = certs[1]
    with Server(extra=certs, listeners=("smtp", "pop3", "smtps", "pop3s")) \
            as srv, tempfile.TemporaryDirectory() as tmp:
        # STARTTLS (--ssl-reqd on smtp://) and implicit TLS (smtps://).
        curl("smtp://127.0.0.1:%d" % srv.ports["smtp"], "--ssl-reqd",
             "--cacert", cafile, "--user", "alice:secret",
             "--mail-from", "alice@localhost", "--mail-rcpt", "bob@localhost",
             "--upload-file", write_message(tmp, "starttls", "a"))
        curl("smtps://127.0.0.1:%d" % srv.ports["smtps"], "--cacert", cafile,
             "--mail-from", "alice@localhost", "--mail-rcpt", "bob@localhost",
             "--upload-file", write_message(tmp, "smtps", "b"))
        # STLS (--ssl-reqd on pop3://) and implicit TLS (pop3s://).
        listing = curl("--ssl-reqd", "--cacert", cafile, "-u", "bob:hunter2",
                       "pop3://127.0.0.1:%d/" % srv.ports["pop3"]).stdout
        assert len(re.findall(r"^\d+ \d+", listing, re.M)) == 2, listing
        got = curl("--cacert", cafile, "-u", "bob:hunter2",
                   "pop3s://127.0.0.1:%d/2" % srv.ports["pop3s"]).stdout
        assert "Subject: smtps" in got, got
        srv.wait_log(r"tls ok", count=4)
        srv.stop()


if __name__ == "__main__":
    tests = [test_curl_smtp_then_pop3_list_retrieve_delete]
    if args().tls:
        tests.append(test_curl_with_tls)
    try:
        run_tests(tests)
    finally:
        if test_tls.CERT_DIR:
            import shutil
            shutil.rmtree(test_tls.CERT_DIR, ignore_errors=True)
