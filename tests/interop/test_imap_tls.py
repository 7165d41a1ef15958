#!/usr/bin/env python3
"""IMAP over TLS with imaplib (registered only when the server was built
with OpenSSL): STARTTLS on the plain port, implicit TLS on --imaps, the
plaintext-injection defence of STARTTLS, and LOGIN refused off loopback
until the connection is encrypted."""

import imaplib
import smtplib
import ssl

from serverlib import (Server, Skip, args, connect, message, recv_line,
                       run_tests)
from test_flow import non_loopback_ipv4
from test_tls import cert_args, client_context


def need_tls():
    if not args().tls:
        raise Skip("the server was built without TLS")


def deliver(srv, subject):
    s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
    s.sendmail("x@example.org", ["alice@localhost"], message(subject))
    s.quit()


def test_imap_starttls_then_login_and_fetch():
    need_tls()
    with Server(listeners=("smtp", "imap"), extra=cert_args()) as srv:
        deliver(srv, "over starttls")
        m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
        assert "STARTTLS" in m.capabilities, m.capabilities
        typ, data = m.starttls(ssl_context=client_context())
        assert typ == "OK", data
        # RFC 3501 6.2.1: capabilities asked again; no STARTTLS now.
        assert "STARTTLS" not in m.capabilities, m.capabilities
        m.login("alice", "secret")
        assert m.select("INBOX") == ("OK", [b"1"])
        typ, data = m.fetch("1", "(BODY[])")
        assert typ == "OK" and b"Subject: over starttls" in data[0][1], data
        m.logout()
        srv.wait_log(r"imap .* tls ok TLSv1\.[23] ")
        srv.stop()


def test_imaps_implicit_tls():
    need_tls()
    with Server(listeners=("smtp", "imaps"), extra=cert_args()) as srv:
        deliver(srv, "over imaps")
        m = imaplib.IMAP4_SSL("127.0.0.1", srv.ports["imaps"],
                              ssl_context=client_context(), timeout=10)
        assert "STARTTLS" not in m.capabilities, m.capabilities
        assert "AUTH=PLAIN" in m.capabilities, m.capabilities
        m.login("alice", "secret")
        assert m.select("INBOX") == ("OK", [b"1"])
        typ, data = m.fetch("1", "(BODY.PEEK[])")
        assert typ == "OK" and b"Subject: over imaps" in data[0][1], data
        m.logout()
        srv.wait_log(r"imaps .* tls ok TLSv1\.[23] ")
        srv.stop()


def test_imap_starttls_discards_pipelined_plaintext():
    need_tls()
    with Server(listeners=("imap",), extra=cert_args()) as srv:
        sock = connect(srv.ports["imap"])
        assert recv_line(sock).startswith(b"* OK")
        # The injected LOGOUT rides in the same segment as STARTTLS.
        sock.sendall(b"a STARTTLS\r\nb LOGOUT\r\n")
        assert recv_line(sock).startswith(b"a OK"), "no STARTTLS go-ahead"
        tls = client_context().wrap_socket(sock, server_hostname="localhost")
        tls.sendall(b"c NOOP\r\n")
        line = recv_line(tls)
        # Nothing of "b LOGOUT" may show after the handshake.
        assert line.startswith(b"c OK"), line
        tls.sendall(b"d LOGOUT\r\n")
        assert recv_line(tls).startswith(b"* BYE")
        tls.close()
        srv.stop()


def test_imap_login_off_loopback_needs_tls():
    need_tls()
    addr = non_loopback_ipv4()
    if not addr:
        raise Skip("this machine has no non-loopback IPv4 address")
    with Server(listeners=(), extra=cert_args() + ["--imap", addr + ":0"]) \
            as srv:
        m = imaplib.IMAP4(addr, srv.ports["imap"], timeout=10)
        assert "LOGINDISABLED" in m.capabilities, m.capabilities
        try:
            m.login("alice", "secret")
            raise AssertionError("LOGIN accepted in the clear off loopback")
        except imaplib.IMAP4.error:
            pass
        ctx = client_context()
        ctx.check_hostname = False  # the address is not in the certificate
        ctx.verify_mode = ssl.CERT_NONE
        m.starttls(ssl_context=ctx)
        assert "LOGINDISABLED" not in m.capabilities, m.capabilities
        m.login("alice", "secret")
        m.logout()
        srv.stop()


if __name__ == "__main__":
    run_tests([
        test_imap_starttls_then_login_and_fetch,
        test_imaps_implicit_tls,
        test_imap_starttls_discards_pipelined_plaintext,
        test_imap_login_off_loopback_needs_tls,
    ])
