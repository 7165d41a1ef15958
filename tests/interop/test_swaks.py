#!/usr/bin/env python3
"""swaks (the Swiss Army Knife for SMTP) against the server: plain, with
AUTH, pipelined, LMTP, and with STARTTLS / implicit TLS when the server has
TLS. Exits 77 only if swaks is not installed."""

import shutil

from serverlib import Server, args, need_program, run_program, run_tests
import test_tls

# swaks exit status when every recipient was refused (its man page).
SWAKS_RCPT_FAILED = 24


def swaks(port, *extra, ok=(0,)):
    return run_program([need_program("swaks"), "--server", "127.0.0.1",
                        "--port", str(port), "--from", "sender@example.org",
                        "--timeout", "30"] + list(extra), ok=ok)


def read_files(srv, user):
    out = []
    for path in srv.user_files(user):
        with open(path, "rb") as f:
            out.append(f.read())
    return out


def test_swaks_delivers_with_and_without_auth():
    need_program("swaks")
    with Server(listeners=("smtp", "pop3", "lmtp")) as srv:
        swaks(srv.ports["smtp"], "--to", "alice@localhost",
              "--header", "Subject: swaks plain", "--body", "plain body")
        out = swaks(srv.ports["smtp"], "--to", "alice@localhost",
                    "--auth", "PLAIN", "--auth-user", "alice",
                    "--auth-password", "secret",
                    "--header", "Subject: swaks auth").stdout
        assert "235 2.7.0" in out, out
        # Pipelined transaction (RFC 2920), one good and one bad recipient.
        out = swaks(srv.ports["smtp"], "--pipeline",
                    "--to", "bob@localhost,nobody@localhost",
                    "--header", "Subject: swaks pipeline").stdout
        assert "550 5.1.1" in out, out
        # Only unknown recipients: swaks reports the failure.
        swaks(srv.ports["smtp"], "--to", "nobody@localhost",
              ok=(SWAKS_RCPT_FAILED,))
        # LMTP, one reply per recipient after the data.
        out = swaks(srv.ports["lmtp"], "--protocol", "LMTP",
                    "--to", "alice@localhost",
                    "--header", "Subject: swaks lmtp").stdout
        assert "250 2.1.5 <alice@localhost>" in out, out

        alice = b"\n".join(read_files(srv, "alice"))
        for subject in (b"swaks plain", b"swaks auth", b"swaks lmtp"):
            assert b"Subject: " + subject in alice, subject
        assert b"plain body" in alice
        assert len(read_files(srv, "bob")) == 1
        srv.stop()


def test_swaks_starttls_and_implicit_tls():
    need_program("swaks")
    certs = test_tls.cert_args()
    with Server(extra=certs, listeners=("smtp", "pop3", "smtps")) as srv:
        out = swaks(srv.ports["smtp"], "--tls", "--to", "alice@localhost",
                    "--auth", "PLAIN", "--auth-user", "alice",
                    "--auth-password", "secret",
                    "--header", "Subject: swaks starttls").stdout
        assert "220 2.0.0" in out and "TLS started" in out, out
        out = swaks(srv.ports["smtps"], "--tls-on-connect",
                    "--to", "bob@localhost",
                    "--header", "Subject: swaks smtps").stdout
        assert "TLS started" in out, out
        assert len(read_files(srv, "alice")) == 1
        assert len(read_files(srv, "bob")) == 1
        srv.wait_log(r"tls ok", count=2)
        srv.stop()


if __name__ == "__main__":
    tests = [test_swaks_delivers_with_and_without_auth]
    if args().tls:
        tests.append(test_swaks_starttls_and_implicit_tls)
    try:
        run_tests(tests)
    finally:
        if test_tls.CERT_DIR:
            shutil.rmtree(test_tls.CERT_DIR, ignore_errors=True)
