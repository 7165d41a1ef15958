#!/usr/bin/env python3
"""Command line (bad arguments exit 2, --help), start-up failures (exit 1),
the demo user, and stopping: SIGTERM/SIGINT stop accepting, let a delivery
in progress finish, then exit 0."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from serverlib import (Server, args, connect, recv_line, run_tests,
                       smtp_reply)


def run_server(argv, cwd, timeout=20):
    return subprocess.run([args().server] + argv, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def test_help_prints_usage_and_exits_0():
    tmp = tempfile.mkdtemp()
    try:
        p = run_server(["--help"], tmp)
        assert p.returncode == 0, p
        assert p.stdout.startswith("usage: mailproto-server"), p.stdout
        for opt in ("--maildir", "--memory", "--user", "--users", "--smtp",
                    "--lmtp", "--pop3", "--imap", "--hostname", "--domain",
                    "--allow-insecure-auth", "--tls-cert", "--tls-key",
                    "--smtps", "--pop3s", "--imaps", "--max-connections",
                    "--verbose"):
            assert opt in p.stdout, opt
        assert "IMAP (default 127.0.0.1:2143)" in p.stdout, p.stdout
        assert os.listdir(tmp) == [], "--help created files"
    finally:
        shutil.rmtree(tmp)


def test_bad_arguments_exit_2_with_one_line():
    tmp = tempfile.mkdtemp()
    bad_users = os.path.join(tmp, "users")
    with open(bad_users, "w") as f:
        f.write("# users\nalice:secret\nno-colon-here\n")
    cases = [
        (["--bogus"], "unknown option"),
        (["stray"], "unexpected argument"),
        (["--smtp"], "needs a value"),
        (["--smtp", "nonsense"], "--smtp: expected ADDR:PORT"),
        (["--pop3", "127.0.0.1:65536"], "--pop3: expected ADDR:PORT"),
        (["--lmtp", "::1:24"], "--lmtp: expected ADDR:PORT"),
        (["--smtp", "[::1]25"], "--smtp: expected ADDR:PORT"),
        (["--smtp", "999.1.1.1:25"], "--smtp: expected ADDR:PORT"),
        (["--max-connections", "0"], "--max-connections"),
        (["--max-connections", "12x"], "--max-connections"),
        (["--verbose=yes"], "takes no value"),
        (["--maildir", "x", "--memory"], "exclude each other"),
        (["--maildir", ""], "empty directory"),
        (["--hostname", "bad_name"], "not a domain name"),
        (["--domain", "-bad.example"], "not a domain name"),
        (["--user", "nocolon"], "expected NAME:PASSWORD"),
        (["--user", ":pw"], "empty user name"),
        (["--user", "name:"], "empty password"),
        (["--users", os.path.join(tmp, "missing")], "--users:"),
        (["--users", bad_users], "line 3: expected NAME:PASSWORD"),
        (["--tls-cert", "c.pem"], "go together"),
        (["--smtps", "127.0.0.1:0"], "--smtps needs --tls-cert"),
        (["--imap", "127.0.0.1"], "--imap: expected ADDR:PORT"),
        (["--imaps", "127.0.0.1:0"], "--imaps needs --tls-cert"),
        (["--smtp", "off", "--pop3", "off", "--imap", "off"],
         "nothing to serve"),
    ]
    if not args().tls:
        cases.append((["--tls-cert", "c", "--tls-key", "k"],
                      "TLS is not available in this build"))
    else:
        cases.append((["--tls-cert", os.path.join(tmp, "nope.pem"),
                       "--tls-key", os.path.join(tmp, "nope.pem")],
                      "--tls-cert/--tls-key:"))
    try:
        for argv, want in cases:
            p = run_server(argv, tmp)
            assert p.returncode == 2, (argv, p.returncode, p.stderr)
            lines = p.stderr.splitlines()
            assert len(lines) == 1, (argv, p.stderr)
            assert lines[0].startswith("mailproto-server: "), lines
            assert want in lines[0], (argv, want, lines[0])
        # Bad arguments found before the store opens leave no ./maildata.
        assert not os.path.exists(os.path.join(tmp, "maildata"))
        # User names the store refuses (RFC-free rules of maildir.h).
        for argv, want in ((["--user", "a/b:pw"], "refused"),
                           (["--user", "a@b:pw"], "refused"),
                           (["--user", ".hidden:pw"], "refused"),
                           (["--user", "a:1", "--user", "a:2"],
                            "given twice")):
            p = run_server(argv, tmp)
            assert p.returncode == 2, (argv, p.returncode, p.stderr)
            lines = p.stderr.splitlines()
            assert len(lines) == 1 and want in lines[0], (argv, lines)
    finally:
        shutil.rmtree(tmp)


def test_start_failures_exit_1():
    tmp = tempfile.mkdtemp()
    try:
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        p = run_server(["--memory", "--smtp", "127.0.0.1:%d" % port,
                        "--pop3", "127.0.0.1:0", "--imap", "127.0.0.1:0"],
                       tmp)
        taken.close()
        assert p.returncode == 1, p
        assert "cannot listen for smtp on 127.0.0.1:%d" % port in p.stderr
        # A Maildir root that cannot be a directory.
        blocker = os.path.join(tmp, "file")
        open(blocker, "w").close()
        p = run_server(["--maildir", os.path.join(blocker, "sub"),
                        "--smtp", "127.0.0.1:0", "--pop3", "127.0.0.1:0",
                        "--imap", "127.0.0.1:0"], tmp)
        assert p.returncode == 1, p
        assert "Maildir root" in p.stderr, p.stderr
    finally:
        shutil.rmtree(tmp)


def test_demo_user_and_default_maildir():
    tmp = tempfile.mkdtemp()
    try:
        proc = subprocess.Popen([args().server, "--smtp", "127.0.0.1:0",
                                 "--pop3", "127.0.0.1:0",
                                 "--imap", "127.0.0.1:0"], cwd=tmp,
                                stderr=subprocess.PIPE, text=True)
        log = []
        for line in proc.stderr:
            log.append(line)
            if "stop:" in line:
                break
        text = "".join(log)
        assert 'created the demo user "demo" with password "demo"' in text
        m = re.search(r"listening smtp on 127\.0\.0\.1:(\d+)", text)
        assert m, text
        assert "swaks --server 127.0.0.1 --port %s --to demo@localhost" \
            % m.group(1) in text, text
        assert re.search(r"curl -u demo:demo pop3://127\.0\.0\.1:\d+/", text)
        assert re.search(r"curl -u demo:demo 'imap://127\.0\.0\.1:\d+/INBOX;"
                         r"UID=1'", text), text
        # The default store is ./maildata, and the demo user can log in.
        assert os.path.isdir(os.path.join(tmp, "maildata")), os.listdir(tmp)
        p3 = int(re.search(r"listening pop3 on 127\.0\.0\.1:(\d+)",
                           text).group(1))
        s = connect(p3)
        recv_line(s)
        s.sendall(b"USER demo\r\nPASS demo\r\nQUIT\r\n")
        assert recv_line(s).startswith(b"+OK")
        assert recv_line(s).startswith(b"+OK")
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        assert proc.wait(20) == 0, text + rest
    finally:
        shutil.rmtree(tmp)


def test_sigterm_and_sigint_exit_0_closing_idle_clients():
    for sig in (signal.SIGTERM, signal.SIGINT):
        with Server() as srv:
            s = connect(srv.ports["smtp"])
            assert smtp_reply(s)[0] == 220
            p = connect(srv.ports["pop3"])
            recv_line(p)
            p.sendall(b"USER alice\r\nPASS secret\r\n")
            recv_line(p)
            recv_line(p)
            srv.stop(sig)
            # Idle clients are told, then closed (RFC 5321 3.8: 421).
            assert recv_line(s).startswith(b"421 4.3.2 "), srv.log()
            assert recv_line(p).startswith(b"-ERR [SYS/TEMP]")
            assert "disconnect: server shutting down" in srv.log()


def test_sigterm_lets_a_delivery_in_progress_finish():
    with Server() as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        s.sendall(b"EHLO c\r\nMAIL FROM:<x@example.org>\r\n"
                  b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
        for want in (250, 250, 250, 354):
            assert smtp_reply(s)[0] == want
        s.sendall(b"Subject: in flight\r\n\r\nfirst half\r\n")
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"stopping: no new connections; 1 open")
        # No new connections...
        try:
            connect(srv.ports["smtp"], timeout=2).close()
            raise AssertionError("a connection was accepted while stopping")
        except OSError:
            pass
        # ...but the message in progress is committed and acknowledged.
        time.sleep(0.3)
        s.sendall(b"second half\r\n.\r\n")
        code, lines = smtp_reply(s)
        assert code == 250, lines
        assert recv_line(s).startswith(b"421 4.3.2 ")
        # The last connection is gone: the server exits by itself.
        srv.wait_exit()
        files = srv.user_files("alice")
        assert len(files) == 1, files
        with open(files[0], "rb") as f:
            data = f.read()
        assert b"first half\r\nsecond half\r\n" in data, data


def test_second_signal_stops_at_once():
    with Server() as srv:
        s = connect(srv.ports["smtp"])
        assert smtp_reply(s)[0] == 220
        s.sendall(b"EHLO c\r\nMAIL FROM:<x@example.org>\r\n"
                  b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
        for want in (250, 250, 250, 354):
            assert smtp_reply(s)[0] == want
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"stopping: no new connections; 1 open")
        srv.stop(signal.SIGTERM, timeout=10)
        assert "again: closing every connection now" in srv.log()
        # The unfinished message was abandoned: nothing half-visible.
        assert srv.user_files("alice") == []


if __name__ == "__main__":
    run_tests([
        test_help_prints_usage_and_exits_0,
        test_bad_arguments_exit_2_with_one_line,
        test_start_failures_exit_1,
        test_demo_user_and_default_maildir,
        test_sigterm_and_sigint_exit_0_closing_idle_clients,
        test_sigterm_lets_a_delivery_in_progress_finish,
        test_second_signal_stops_at_once,
    ])
