#!/usr/bin/env python3
"""The mission's flow with Python's own clients (smtplib, poplib) against
the example server, plus the server behaviour around it: LMTP, recipient
policy, plaintext-auth rules, large messages, backpressure, logging."""

import base64
import hashlib
import poplib
import smtplib
import socket
import time

from serverlib import (Server, Skip, args, connect, message, recv_line,
                       run_tests, smtp_reply)


def login_plain(s, user, password):
    """AUTH PLAIN explicitly: smtplib would pick CRAM-MD5 first."""
    s.ehlo_or_helo_if_needed()
    s.user, s.password = user, password
    code, resp = s.auth("PLAIN", s.auth_plain)
    assert code == 235, (code, resp)


def pop3_login(port, user="alice", password="secret"):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    p.pass_(password)
    return p


def body_of(lines):
    return b"\r\n".join(lines)


def test_smtp_then_pop3_download_and_delete():
    with Server() as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        login_plain(s, "alice", "secret")
        s.sendmail("sender@example.org", ["alice@localhost"],
                   message("first message", "one\r\n"))
        s.sendmail("sender@example.org", ["alice@localhost"],
                   message("second message", "two\r\n"))
        s.quit()
        srv.wait_log(r"auth ok user=alice")
        srv.wait_log(r"delivery of \d+ bytes from <sender@example.org> to "
                     r"alice@localhost ok", count=2)
        # Both are on disk in alice's Maildir at once.
        assert len(srv.user_files("alice")) == 2, srv.user_files("alice")

        p = pop3_login(srv.ports["pop3"])
        count, size = p.stat()
        assert count == 2, (count, size)
        uidls = p.uidl()[1]
        first = body_of(p.retr(1)[1])
        assert b"Subject: first message" in first, first
        assert b"Received: from" in first, first
        p.dele(1)
        p.quit()  # the delete is committed before +OK
        files = srv.user_files("alice")
        assert len(files) == 1, files
        with open(files[0], "rb") as f:
            assert b"Subject: second message" in f.read()

        p = pop3_login(srv.ports["pop3"])
        assert p.stat()[0] == 1
        second = body_of(p.retr(1)[1])
        assert b"Subject: second message" in second, second
        # RFC 1939 7: a message keeps its unique-id across sessions.
        assert p.uidl()[1][0].split()[1] == uidls[1].split()[1]
        p.quit()
        srv.stop()


def test_memory_store_flow():
    with Server(memory=True) as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        s.sendmail("x@example.org", ["bob@localhost"], message("in memory"))
        s.quit()
        p = pop3_login(srv.ports["pop3"], "bob", "hunter2")
        assert p.stat()[0] == 1
        assert b"Subject: in memory" in body_of(p.retr(1)[1])
        p.quit()
        srv.stop()


def test_lmtp_delivery_per_recipient():
    with Server(listeners=("smtp", "pop3", "lmtp")) as srv:
        lm = smtplib.LMTP("127.0.0.1", srv.ports["lmtp"], timeout=10)
        refused = lm.sendmail("x@example.org", ["bob@localhost"],
                              message("via lmtp"))
        assert refused == {}, refused
        lm.quit()
        # Several recipients: one reply each after the data (RFC 2033 4.2).
        sock = connect(srv.ports["lmtp"])
        assert smtp_reply(sock)[0] == 220
        sock.sendall(b"LHLO client.example\r\n")
        assert smtp_reply(sock)[0] == 250
        sock.sendall(b"MAIL FROM:<x@example.org>\r\n")
        assert smtp_reply(sock)[0] == 250
        for rcpt, want in ((b"alice@localhost", 250), (b"nobody@localhost", 550),
                           (b"bob@localhost", 250)):
            sock.sendall(b"RCPT TO:<" + rcpt + b">\r\n")
            code, lines = smtp_reply(sock)
            assert code == want, (rcpt, lines)
        sock.sendall(b"DATA\r\n")
        assert smtp_reply(sock)[0] == 354
        sock.sendall(message("two at once").encode() + b".\r\n")
        for _ in range(2):
            code, lines = smtp_reply(sock)
            assert code == 250, lines
        sock.sendall(b"QUIT\r\n")
        assert smtp_reply(sock)[0] == 221
        sock.close()
        assert len(srv.user_files("alice")) == 1
        assert len(srv.user_files("bob")) == 2
        srv.wait_log(r"rcpt nobody@localhost rejected: no such user")
        srv.stop()


def test_recipient_domains_and_no_relaying():
    with Server(extra=["--domain", "example.test", "--domain", "mail.test"]) \
            as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        login_plain(s, "alice", "secret")
        s.mail("alice@example.test")
        assert s.rcpt("alice@example.test")[0] == 250
        assert s.rcpt("BOB@MAIL.TEST")[0] == 250
        # RFC 5321 3.6.2: we never relay, even for an authenticated user.
        code, text = s.rcpt("someone@elsewhere.example")
        assert code == 550 and b"5.1.1" in text, (code, text)
        code, text = s.rcpt("nobody@example.test")
        assert code == 550 and b"5.1.1" in text, (code, text)
        code, text = s.data(message("policy"))
        assert code == 250, (code, text)
        s.quit()
        srv.wait_log(r"rcpt someone@elsewhere.example rejected: not a local "
                     r"domain")
        assert len(srv.user_files("alice")) == 1
        assert len(srv.user_files("bob")) == 1
        srv.stop()


def non_loopback_ipv4():
    """An address of this machine that is not loopback, or None."""
    for probe in ("192.0.2.1", "10.255.255.255", "8.8.8.8"):
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect((probe, 9))
            addr = s.getsockname()[0]
            s.close()
        except OSError:
            continue
        if not addr.startswith("127.") and addr != "0.0.0.0":
            return addr
    return None


def test_plaintext_auth_only_on_loopback():
    addr = non_loopback_ipv4()
    if not addr:
        raise Skip("this machine has no non-loopback IPv4 address")
    for allow in (False, True):
        extra = ["--smtp", addr + ":0", "--pop3", addr + ":0"]
        if allow:
            extra.append("--allow-insecure-auth")
        with Server(extra=extra, listeners=()) as srv:
            s = smtplib.SMTP(addr, srv.ports["smtp"], timeout=10)
            s.ehlo()
            mechs = s.esmtp_features.get("auth", "").split()
            assert ("PLAIN" in mechs) == allow, mechs
            if not allow:
                code, text = s.docmd("AUTH", "PLAIN " + base64.b64encode(
                    b"\0alice\0secret").decode())
                assert code == 538, (code, text)  # RFC 4954 6: 5.7.11
            else:
                login_plain(s, "alice", "secret")
            s.quit()
            p = poplib.POP3(addr, srv.ports["pop3"], timeout=10)
            if allow:
                p.user("alice")
                p.pass_("secret")
            else:
                try:
                    p.user("alice")
                    p.pass_("secret")
                    raise AssertionError("USER/PASS accepted without TLS")
                except poplib.error_proto as e:
                    assert b"-ERR" in e.args[0], e
            p.quit()
            srv.stop()


def test_ipv6_loopback_listener():
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        raise Skip("no IPv6 loopback on this machine")
    with Server(extra=["--smtp", "[::1]:0", "--pop3", "[::1]:0"],
                listeners=()) as srv:
        assert srv.addresses["smtp"] == "[::1]", srv.addresses
        s = smtplib.SMTP("::1", srv.ports["smtp"], timeout=10)
        login_plain(s, "alice", "secret")  # ::1 is loopback
        s.sendmail("x@example.org", ["alice@localhost"], message("over v6"))
        s.quit()
        p = poplib.POP3("::1", srv.ports["pop3"], timeout=10)
        p.user("alice")
        p.pass_("secret")
        assert b"IPv6:::1" in body_of(p.retr(1)[1])  # Received: from
        p.quit()
        srv.stop()


def test_large_message_streams_through():
    # Bigger than any buffer of the server, smaller than the 32 MiB limit.
    size_mb = 24
    line = b"x" * 998 + b"\r\n"
    body = line * (size_mb * 1024 * 1024 // len(line))
    digest = hashlib.sha256(body).hexdigest()
    with Server() as srv:
        before = srv.rss_kb("VmHWM")
        sock = connect(srv.ports["smtp"], timeout=60)
        assert smtp_reply(sock)[0] == 220
        sock.sendall(b"EHLO c\r\nMAIL FROM:<x@example.org>\r\n"
                     b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
        for want in (250, 250, 250, 354):
            assert smtp_reply(sock)[0] == want
        sock.sendall(b"Subject: big\r\n\r\n" + body + b".\r\n")
        code, lines = smtp_reply(sock)
        assert code == 250, lines
        sock.sendall(b"QUIT\r\n")
        sock.close()

        # Download it through a client that does not read for a while:
        # the server must stop producing (backpressure), not buffer it.
        sock = connect(srv.ports["pop3"], timeout=60)
        recv_line(sock)
        sock.sendall(b"USER alice\r\nPASS secret\r\nRETR 1\r\n")
        time.sleep(1.0)
        f = sock.makefile("rb")
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK")
        got = []
        while True:
            l = f.readline()
            assert l, "connection closed during RETR"
            if l == b".\r\n":
                break
            got.append(l[1:] if l.startswith(b"..") else l)
        text = b"".join(got)
        received = text[text.index(b"\r\n\r\n") + 4:]
        assert hashlib.sha256(received).hexdigest() == digest
        sock.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
        sock.close()
        grown = srv.rss_kb("VmHWM") - before
        if not args().sanitized:
            assert grown < 8 * 1024, "peak memory grew %d KiB" % grown
        print("     %d MiB message: peak RSS grew %d KiB" % (size_mb, grown))
        srv.stop()


def test_pipelined_commands_with_a_client_that_does_not_read():
    count = 20000
    with Server() as srv:
        sock = connect(srv.ports["smtp"], timeout=60)
        assert smtp_reply(sock)[0] == 220
        before = srv.rss_kb()
        sock.sendall(b"EHLO c\r\n" + b"NOOP\r\n" * count)
        time.sleep(0.5)  # replies pile up: the server must stop reading
        grown = srv.rss_kb() - before
        f = sock.makefile("rb")
        while True:  # EHLO reply
            l = f.readline()
            if l[3:4] == b" ":
                break
        for i in range(count):
            l = f.readline()
            assert l.startswith(b"250"), (i, l)
        sock.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"221")
        sock.close()
        if not args().sanitized:
            assert grown < 4 * 1024, "RSS grew %d KiB" % grown
        srv.stop()


def test_pop3_failed_login_is_delayed_then_works():
    with Server() as srv:
        sock = connect(srv.ports["pop3"])
        assert recv_line(sock).startswith(b"+OK")
        sock.sendall(b"USER alice\r\n")
        assert recv_line(sock).startswith(b"+OK")
        t0 = time.time()
        sock.sendall(b"PASS wrong\r\n")
        assert recv_line(sock).startswith(b"-ERR")
        waited = time.time() - t0
        # The delay is a deferred operation completed by a loop timer.
        assert waited >= 0.9, waited
        sock.sendall(b"USER alice\r\nPASS secret\r\nSTAT\r\n")
        assert recv_line(sock).startswith(b"+OK")
        assert recv_line(sock).startswith(b"+OK")
        assert recv_line(sock).startswith(b"+OK 0 0")
        sock.sendall(b"QUIT\r\n")
        assert recv_line(sock).startswith(b"+OK")
        srv.wait_log(r"auth failed user=alice")
        srv.wait_log(r"auth ok user=alice")
        srv.stop()


def test_cram_md5_logins_are_logged():
    with Server() as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        s.ehlo()
        s.user, s.password = "alice", "not-her-password"
        try:
            s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
            raise AssertionError("a wrong CRAM-MD5 response was accepted")
        except smtplib.SMTPAuthenticationError as e:
            assert e.smtp_code == 535, e
        s.password = "secret"
        code, _ = s.auth("CRAM-MD5", s.auth_cram_md5, initial_response_ok=False)
        assert code == 235, code
        s.quit()
        srv.wait_log(r"auth failed user=alice: wrong challenge response")
        srv.wait_log(r"auth ok user=alice")
        srv.stop()


def test_verbose_transcript_masks_secrets():
    with Server(extra=["--verbose"]) as srv:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        login_plain(s, "alice", "secret")
        s.ehlo()
        s.user, s.password = "bob", "hunter2"
        s.quit()
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        s.ehlo()
        s.user, s.password = "bob", "hunter2"
        code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        assert code == 235, code
        s.quit()
        p = pop3_login(srv.ports["pop3"])
        p.quit()
        srv.stop()
        log = srv.log()
        for secret in (b"secret", b"hunter2"):
            assert secret.decode() not in log, secret
            assert base64.b64encode(secret).decode() not in log
        assert base64.b64encode(b"\0alice\0secret").decode() not in log
        assert "C: AUTH PLAIN ****" in log, log
        assert "C: PASS ****" in log, log
        assert "C: ehlo" in log and "S: 250 " in log, log


if __name__ == "__main__":
    run_tests([
        test_smtp_then_pop3_download_and_delete,
        test_memory_store_flow,
        test_lmtp_delivery_per_recipient,
        test_recipient_domains_and_no_relaying,
        test_plaintext_auth_only_on_loopback,
        test_ipv6_loopback_listener,
        test_large_message_streams_through,
        test_pipelined_commands_with_a_client_that_does_not_read,
        test_pop3_failed_login_is_delayed_then_works,
        test_cram_md5_logins_are_logged,
        test_verbose_transcript_masks_secrets,
    ])
