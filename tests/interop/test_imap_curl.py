#!/usr/bin/env python3
"""curl as IMAP client (imap://, and imaps:// plus STARTTLS when the server
has TLS): list mailboxes, fetch a message by UID, a custom command, APPEND
by upload. Exits 77 only if curl is not installed."""

import imaplib
import os
import re
import smtplib
import tempfile

from serverlib import (Server, Skip, args, message, need_program,
                       run_program, run_tests)
import test_tls

LISTENERS = ("smtp", "imap")


def curl(*argv, ok=(0,)):
    return run_program([need_program("curl"), "-sS", "--max-time", "30"]
                       + list(argv), ok=ok)


def deliver(srv, subject, body):
    s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
    s.sendmail("sender@example.org", ["alice@localhost"],
               message(subject, body))
    s.quit()


def test_curl_imap_list_fetch_command_append():
    need_program("curl")
    with Server(listeners=LISTENERS) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        base = "imap://127.0.0.1:%d" % srv.ports["imap"]
        deliver(srv, "for curl", "curl body\r\n")
        m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
        m.login("alice", "secret")
        assert m.create("Projects")[0] == "OK"
        m.logout()

        # The mailbox list (curl sends LIST "" *).
        out = curl("-u", "alice:secret", base + "/").stdout
        assert re.search(r'^\* LIST \(.*\) "/" "?INBOX"?\r?$', out, re.M), out
        assert re.search(r'^\* LIST \(.*\) "/" "?Projects"?\r?$', out,
                         re.M), out

        # One message by UID: curl prints the literal, byte for byte.
        got = os.path.join(tmp, "got.eml")
        curl("-u", "alice:secret", "-o", got, base + "/INBOX;UID=1")
        with open(got, "rb") as f:
            data = f.read()
        assert b"Subject: for curl" in data, data
        assert data.endswith(b"\r\n\r\ncurl body\r\n"), data
        # curl's plain FETCH BODY[] set \Seen (RFC 3501 6.4.5); a custom
        # command shows it.
        out = curl("-u", "alice:secret", "-X", "UID FETCH 1 FLAGS",
                   base + "/INBOX").stdout
        assert re.search(r"^\* 1 FETCH \(UID 1 FLAGS \(.*\\Seen.*\)\)", out,
                         re.M) or re.search(
            r"^\* 1 FETCH \(FLAGS \(.*\\Seen.*\) UID 1\)", out, re.M), out

        # APPEND by upload (-T), then fetched back identical.
        up = os.path.join(tmp, "up.eml")
        msg = (b"From: curl@example.org\r\nSubject: uploaded\r\n\r\n"
               b"line one\r\nline two\r\n")
        with open(up, "wb") as f:
            f.write(msg)
        curl("-u", "alice:secret", "-T", up, base + "/Projects")
        back = os.path.join(tmp, "back.eml")
        curl("-u", "alice:secret", "-o", back, base + "/Projects;UID=1")
        with open(back, "rb") as f:
            assert f.read() == msg
        srv.wait_log(r"imap .* appended %d bytes to Projects" % len(msg))

        # A wrong password: curl fails with "login denied" (67).
        curl("-u", "alice:wrong", base + "/", ok=(67,))
        srv.stop()


def test_curl_imap_tls():
    need_program("curl")
    if not args().tls:
        raise Skip("the server was built without TLS")
    with Server(listeners=LISTENERS + ("imaps",),
                extra=test_tls.cert_args()) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        deliver(srv, "over tls", "secret body\r\n")
        ca = os.path.join(test_tls.CERT_DIR, "cert.pem")
        got = os.path.join(tmp, "got.eml")
        # Implicit TLS (imaps://).
        curl("--cacert", ca, "-u", "alice:secret", "-o", got,
             "imaps://127.0.0.1:%d/INBOX;UID=1" % srv.ports["imaps"])
        with open(got, "rb") as f:
            assert f.read().endswith(b"secret body\r\n")
        # STARTTLS on the plain port, required.
        out = curl("--cacert", ca, "--ssl-reqd", "-u", "alice:secret",
                   "imap://127.0.0.1:%d/" % srv.ports["imap"]).stdout
        assert "INBOX" in out, out
        srv.wait_log(r"imaps .* tls ok TLSv1\.[23] ")
        srv.wait_log(r"imap .* tls ok TLSv1\.[23] ")
        srv.stop()


if __name__ == "__main__":
    run_tests([
        test_curl_imap_list_fetch_command_append,
        test_curl_imap_tls,
    ])
