#!/usr/bin/env python3
"""fetchmail retrieving over POP3 from the server (and over POP3S when the
server has TLS), delivering through an MDA into a file, deleting what it
fetched. Exits 77 only if fetchmail is not installed."""

import os
import shutil
import smtplib
import tempfile

from serverlib import (Server, args, message, need_program, run_program,
                       run_tests)
import test_tls


def fetch(home, port, extra_lines=()):
    """Runs fetchmail once with a generated rc file; returns the mbox text
    its MDA wrote."""
    out = os.path.join(home, "fetched.mbox")
    rc = os.path.join(home, "fetchmailrc")
    with open(rc, "w") as f:
        f.write('set no bouncemail\n'
                'poll 127.0.0.1 with proto POP3 port %d\n'
                '  user "alice" there with password "secret" is "%s" here\n'
                '  mda "/bin/sh -c \'cat >> %s\'"\n'
                '  no keep\n' % (port, os.environ.get("USER", "root"), out))
        for line in extra_lines:
            f.write("  %s\n" % line)
    os.chmod(rc, 0o600)  # fetchmail refuses a readable rc file
    env = dict(os.environ, HOME=home, FETCHMAILHOME=home)
    run_program([need_program("fetchmail"), "-f", rc, "--nodetach",
                 "--nosyslog", "-v"], env=env)
    with open(out, "rb") as f:
        return f.read()


def deliver(srv, subjects):
    s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
    for subject in subjects:
        s.sendmail("sender@example.org", ["alice@localhost"],
                   message(subject, "body of %s\r\n" % subject))
    s.quit()


def test_fetchmail_pop3_fetches_and_deletes():
    need_program("fetchmail")
    with Server() as srv, tempfile.TemporaryDirectory() as home:
        deliver(srv, ["fetch one", "fetch two"])
        assert len(srv.user_files("alice")) == 2
        # This server offers STLS only with TLS files: plain POP3 here.
        mbox = fetch(home, srv.ports["pop3"], ["sslproto ''"])
        assert b"Subject: fetch one" in mbox and b"Subject: fetch two" in mbox
        assert b"body of fetch two" in mbox
        # "no keep": fetchmail deleted both, and QUIT committed it.
        assert srv.user_files("alice") == []
        srv.wait_log(r"auth ok user=alice")
        srv.stop()


def test_fetchmail_over_pop3s():
    need_program("fetchmail")
    certs = test_tls.cert_args()
    with Server(extra=certs, listeners=("smtp", "pop3", "pop3s")) as srv, \
            tempfile.TemporaryDirectory() as home:
        deliver(srv, ["over tls"])
        mbox = fetch(home, srv.ports["pop3s"],
                     ["ssl", "sslcertfile '%s'" % certs[1],
                      "sslcommonname localhost", "sslcertck"])
        assert b"Subject: over tls" in mbox, mbox
        assert srv.user_files("alice") == []
        srv.wait_log(r"tls ok")
        srv.stop()


if __name__ == "__main__":
    tests = [test_fetchmail_pop3_fetches_and_deletes]
    if args().tls:
        tests.append(test_fetchmail_over_pop3s)
    try:
        run_tests(tests)
    finally:
        if test_tls.CERT_DIR:
            shutil.rmtree(test_tls.CERT_DIR, ignore_errors=True)
