#!/usr/bin/env python3
"""TLS (registered only when the server was built with OpenSSL): STARTTLS
and STLS on the plain ports, implicit TLS on the s ports, the plaintext
injection defence, large transfers through TLS, failed handshakes."""

import hashlib
import os
import poplib
import shutil
import smtplib
import ssl
import tempfile
import time

from serverlib import (Server, Skip, args, connect, message, recv_line,
                       run_program, run_tests, smtp_reply)
from test_flow import login_plain, non_loopback_ipv4

CERT_DIR = None


def cert_args():
    global CERT_DIR
    if CERT_DIR is None:
        CERT_DIR = tempfile.mkdtemp(prefix="mailproto-tls-")
        cert = os.path.join(CERT_DIR, "cert.pem")
        key = os.path.join(CERT_DIR, "key.pem")
        # A throwaway self-signed certificate for 127.0.0.1 and localhost.
        run_program(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                     "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                     "-subj", "/CN=localhost", "-addext",
                     "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    return ["--tls-cert", os.path.join(CERT_DIR, "cert.pem"),
            "--tls-key", os.path.join(CERT_DIR, "key.pem")]


def client_context():
    """Verifies the server against the throwaway certificate."""
    cert_args()
    ctx = ssl.create_default_context(
        cafile=os.path.join(CERT_DIR, "cert.pem"))
    return ctx


def test_smtp_starttls_then_auth_and_delivery():
    with Server(extra=cert_args()) as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        s.ehlo()
        assert s.has_extn("starttls")
        s.starttls(context=client_context())
        s.ehlo()
        assert not s.has_extn("starttls")  # RFC 3207 4.2: not again
        login_plain(s, "alice", "secret")
        s.sendmail("x@example.org", ["alice@localhost"],
                   message("over starttls"))
        s.quit()
        srv.wait_log(r"tls ok TLSv1\.[23] ")
        srv.wait_log(r"delivery of \d+ bytes")
        assert len(srv.user_files("alice")) == 1
        srv.stop()


def test_pop3_stls_then_login():
    with Server(extra=cert_args()) as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        s.sendmail("x@example.org", ["bob@localhost"], message("for stls"))
        s.quit()
        p = poplib.POP3("127.0.0.1", srv.ports["pop3"], timeout=10)
        assert "STLS" in p.capa()
        p.stls(context=client_context())
        p.user("bob")
        p.pass_("hunter2")
        assert b"Subject: for stls" in b"\r\n".join(p.retr(1)[1])
        p.quit()
        srv.stop()


def test_implicit_tls_ports():
    with Server(extra=cert_args(),
                listeners=("smtp", "pop3", "smtps", "pop3s")) as srv:
        ctx = client_context()
        s = smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], timeout=10,
                             context=ctx)
        s.ehlo()
        assert not s.has_extn("starttls")
        login_plain(s, "alice", "secret")
        s.sendmail("x@example.org", ["alice@localhost"], message("smtps"))
        s.quit()
        p = poplib.POP3_SSL("127.0.0.1", srv.ports["pop3s"], timeout=10,
                            context=ctx)
        assert "STLS" not in p.capa()
        p.user("alice")
        p.pass_("secret")
        assert b"Subject: smtps" in b"\r\n".join(p.retr(1)[1])
        p.quit()
        srv.stop()


def test_starttls_discards_pipelined_plaintext():
    # RFC 3207 6 / CVE-2011-0411: commands sent with STARTTLS, before the
    # handshake, must not run afterwards.
    with Server(extra=cert_args()) as srv:
        raw = connect(srv.ports["smtp"])
        assert smtp_reply(raw)[0] == 220
        raw.sendall(b"EHLO c\r\n")
        assert smtp_reply(raw)[0] == 250
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
        code, lines = smtp_reply(raw)
        assert code == 220, lines
        tls = client_context().wrap_socket(raw, server_hostname="localhost")
        tls.sendall(b"EHLO c\r\n")
        code, lines = smtp_reply(tls)
        assert code == 250 and len(lines) > 1, lines
        # Had the injected MAIL run, this one would be a nested MAIL (503).
        tls.sendall(b"MAIL FROM:<good@example.org>\r\n")
        code, lines = smtp_reply(tls)
        assert code == 250, lines
        tls.sendall(b"QUIT\r\n")
        assert smtp_reply(tls)[0] == 221
        tls.close()
        srv.stop()


def test_stls_discards_pipelined_plaintext():
    with Server(extra=cert_args()) as srv:
        raw = connect(srv.ports["pop3"])
        assert recv_line(raw).startswith(b"+OK")
        raw.sendall(b"STLS\r\nUSER alice\r\n")
        assert recv_line(raw).startswith(b"+OK")
        tls = client_context().wrap_socket(raw, server_hostname="localhost")
        # The injected USER is gone: PASS has no user to go with.
        tls.sendall(b"PASS secret\r\n")
        assert recv_line(tls).startswith(b"-ERR")
        tls.sendall(b"USER alice\r\nPASS secret\r\nQUIT\r\n")
        assert recv_line(tls).startswith(b"+OK")
        assert recv_line(tls).startswith(b"+OK")
        assert recv_line(tls).startswith(b"+OK")
        tls.close()
        srv.stop()


def test_plaintext_auth_needs_tls_off_loopback():
    addr = non_loopback_ipv4()
    if not addr:
        raise Skip("this machine has no non-loopback IPv4 address")
    with Server(extra=cert_args() + ["--smtp", addr + ":0",
                                     "--pop3", addr + ":0"],
                listeners=()) as srv:
        ctx = client_context()
        ctx.check_hostname = False  # the certificate names 127.0.0.1
        s = smtplib.SMTP(addr, srv.ports["smtp"], timeout=10)
        s.ehlo()
        assert "PLAIN" not in s.esmtp_features.get("auth", "")
        s.starttls(context=ctx)
        s.ehlo()
        assert "PLAIN" in s.esmtp_features.get("auth", "")
        login_plain(s, "alice", "secret")
        s.quit()
        p = poplib.POP3(addr, srv.ports["pop3"], timeout=10)
        p.stls(context=ctx)
        p.user("alice")
        p.pass_("secret")
        p.quit()
        srv.stop()


def test_large_message_through_tls():
    line = b"y" * 76 + b"\r\n"
    body = line * (6 * 1024 * 1024 // len(line))
    digest = hashlib.sha256(body).hexdigest()
    with Server(extra=cert_args(),
                listeners=("smtp", "pop3", "smtps", "pop3s")) as srv:
        ctx = client_context()
        s = smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], timeout=60,
                             context=ctx)
        s.sendmail("x@example.org", ["alice@localhost"],
                   b"Subject: big tls\r\n\r\n" + body)
        s.quit()
        raw = connect(srv.ports["pop3s"], timeout=60)
        tls = ctx.wrap_socket(raw, server_hostname="localhost")
        f = tls.makefile("rb")
        assert f.readline().startswith(b"+OK")
        tls.sendall(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
        time.sleep(1.0)  # let the server hit backpressure inside TLS
        for _ in range(3):
            assert f.readline().startswith(b"+OK")
        got = []
        while True:
            l = f.readline()
            assert l, "closed during RETR"
            if l == b".\r\n":
                break
            got.append(l[1:] if l.startswith(b"..") else l)
        text = b"".join(got)
        assert hashlib.sha256(text[text.index(b"\r\n\r\n") + 4:]).hexdigest() \
            == digest
        tls.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
        tls.close()
        srv.stop()


def test_failed_handshake_is_logged_and_harmless():
    with Server(extra=cert_args() + ["--max-connections", "4"],
                listeners=("smtp", "pop3", "smtps")) as srv:
        s = connect(srv.ports["smtps"])
        s.sendall(b"EHLO this is not TLS\r\n")
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except ConnectionResetError:
            pass
        s.close()
        srv.wait_log(r"disconnect: TLS handshake")
        ok = smtplib.SMTP_SSL("127.0.0.1", srv.ports["smtps"], timeout=10,
                              context=client_context())
        assert ok.noop()[0] == 250
        ok.quit()
        srv.stop()


if __name__ == "__main__":
    if not args().tls:
        raise SystemExit("test_tls.py needs --tls (a server built with TLS)")
    try:
        run_tests([
            test_smtp_starttls_then_auth_and_delivery,
            test_pop3_stls_then_login,
            test_implicit_tls_ports,
            test_starttls_discards_pipelined_plaintext,
            test_stls_discards_pipelined_plaintext,
            test_plaintext_auth_needs_tls_off_loopback,
            test_large_message_through_tls,
            test_failed_handshake_is_logged_and_harmless,
        ])
    finally:
        if CERT_DIR:
            shutil.rmtree(CERT_DIR, ignore_errors=True)
