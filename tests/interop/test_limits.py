#!/usr/bin/env python3
"""Connection limit with a polite refusal, idle timeouts per protocol."""

import socket
import time

from serverlib import Server, connect, recv_line, run_tests, smtp_reply


def expect_closed(sock, timeout=10.0):
    """The server closes: EOF (or a reset) within `timeout`."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return b""
    assert data == b"", "expected the connection closed, got %r" % data
    return data


def test_connection_limit_smtp_421():
    with Server(extra=["--max-connections", "2"]) as srv:
        port = srv.ports["smtp"]
        a, b = connect(port), connect(port)
        assert smtp_reply(a)[0] == 220 and smtp_reply(b)[0] == 220
        c = connect(port)
        line = recv_line(c)
        # RFC 5321 3.8 / 4.2.3: 421, then the server closes.
        assert line.startswith(b"421 4.7.0 "), line
        expect_closed(c)
        srv.wait_log(r"refused: 2 connections open")
        # The two that were in keep working.
        a.sendall(b"NOOP\r\n")
        assert smtp_reply(a)[0] == 250
        # A free slot is taken again.
        b.sendall(b"QUIT\r\n")
        assert smtp_reply(b)[0] == 221
        srv.wait_log(r"disconnect: session ended")
        d = connect(port)
        assert smtp_reply(d)[0] == 220
        for s in (a, d):
            s.sendall(b"QUIT\r\n")
            assert smtp_reply(s)[0] == 221
        srv.stop()


def test_connection_limit_pop3_err():
    with Server(extra=["--max-connections", "1"]) as srv:
        a = connect(srv.ports["pop3"])
        assert recv_line(a).startswith(b"+OK")
        # The limit counts every protocol together.
        b = connect(srv.ports["smtp"])
        assert recv_line(b).startswith(b"421 ")
        c = connect(srv.ports["pop3"])
        line = recv_line(c)
        assert line.startswith(b"-ERR [SYS/TEMP] "), line
        expect_closed(c)
        a.sendall(b"QUIT\r\n")
        assert recv_line(a).startswith(b"+OK")
        srv.stop()


def test_idle_timeout_smtp_sends_421():
    with Server(env={"MAILPROTO_SERVER_IDLE_TIMEOUT_MS": "1500"}) as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        t0 = time.time()
        line = recv_line(s)
        assert line.startswith(b"421 4.4.2 "), line
        expect_closed(s)
        assert 1.0 < time.time() - t0 < 15
        srv.wait_log(r"disconnect: idle timeout")
        srv.stop()


def test_idle_timeout_pop3_closes_silently():
    with Server(env={"MAILPROTO_SERVER_IDLE_TIMEOUT_MS": "1500"}) as srv:
        s = connect(srv.ports["pop3"])
        assert recv_line(s).startswith(b"+OK")
        s.sendall(b"USER alice\r\nPASS secret\r\n")
        assert recv_line(s).startswith(b"+OK")
        assert recv_line(s).startswith(b"+OK")
        # RFC 1939 3: no response, no UPDATE state; just the close.
        expect_closed(s)
        srv.wait_log(r"disconnect: idle timeout")
        srv.stop()


def test_traffic_keeps_a_connection_alive():
    with Server(env={"MAILPROTO_SERVER_IDLE_TIMEOUT_MS": "2000"}) as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        for _ in range(8):  # 4 s in all, never 2 s idle
            time.sleep(0.5)
            s.sendall(b"NOOP\r\n")
            assert smtp_reply(s)[0] == 250
        s.sendall(b"QUIT\r\n")
        assert smtp_reply(s)[0] == 221
        assert "idle timeout" not in srv.log()
        srv.stop()


def test_half_closed_client_gets_its_replies():
    # A client that sends everything and then shuts down its side still
    # receives every reply (pipelining, RFC 2920) before the server closes.
    with Server() as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        s.sendall(b"EHLO c\r\nMAIL FROM:<x@example.org>\r\n"
                  b"RCPT TO:<alice@localhost>\r\nDATA\r\n"
                  b"Subject: half\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        s.shutdown(socket.SHUT_WR)
        codes = [smtp_reply(s)[0] for _ in range(6)]
        assert codes == [250, 250, 250, 354, 250, 221], codes
        expect_closed(s)
        assert len(srv.user_files("alice")) == 1
        srv.stop()


def test_client_vanishing_mid_data_delivers_nothing():
    with Server() as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        s.sendall(b"EHLO c\r\nMAIL FROM:<x@example.org>\r\n"
                  b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
        for want in (250, 250, 250, 354):
            assert smtp_reply(s)[0] == want
        s.sendall(b"Subject: cut\r\n\r\nhalf a mess")
        s.close()
        srv.wait_log(r"delivery abandoned after \d+ bytes")
        srv.wait_log(r"disconnect: client closed the connection")
        assert srv.user_files("alice") == []
        srv.stop()


if __name__ == "__main__":
    run_tests([
        test_connection_limit_smtp_421,
        test_connection_limit_pop3_err,
        test_idle_timeout_smtp_sends_421,
        test_idle_timeout_pop3_closes_silently,
        test_traffic_keeps_a_connection_alive,
        test_half_closed_client_gets_its_replies,
        test_client_vanishing_mid_data_delivers_nothing,
    ])
