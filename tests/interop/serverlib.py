"""Shared helpers of the interop tests: start the built mailproto-server on
free loopback ports with a temporary Maildir, wait until it is ready, read
its log, stop it with a signal and check its exit status.

Every test script is run by ctest as
    python3 test_x.py --server PATH [--tls] [--sanitized] [--loop poll]
and exits 0 (pass), 1 (fail, with the failing output shown) or 77 (skip:
only when a client program it needs is not installed).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

SKIP = 77
READY_TIMEOUT = 20.0


class Skip(Exception):
    """Raised by a test whose client program is missing."""


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="mailproto-server binary")
    ap.add_argument("--tls", action="store_true",
                    help="the server was built with TLS")
    ap.add_argument("--sanitized", action="store_true",
                    help="the server runs under ASan (memory figures skew)")
    ap.add_argument("--loop", default="",
                    help="MAILPROTO_SERVER_LOOP for every server started")
    ap.add_argument("--demo-dir", default="",
                    help="directory of the demo programs (test_demos.py)")
    return ap.parse_args()


ARGS = None


def args():
    global ARGS
    if ARGS is None:
        ARGS = parse_args()
    return ARGS


class Server:
    """One mailproto-server process. Use as a context manager: on an error
    inside the block, the server's log is printed before the traceback."""

    def __init__(self, extra=(), users=("alice:secret", "bob:hunter2"),
                 memory=False, env=None, listeners=("smtp", "pop3")):
        self.tmp = tempfile.mkdtemp(prefix="mailproto-interop-")
        self.maildir = None if memory else os.path.join(self.tmp, "maildata")
        cmd = [args().server]
        cmd += ["--memory"] if memory else ["--maildir", self.maildir]
        # The default listeners (IMAP's too) are switched off unless asked
        # for: parallel tests must never fight over the fixed ports.
        for name in ("smtp", "pop3", "imap"):
            if name not in listeners:
                cmd += ["--" + name, "off"]
        for name in listeners:
            cmd += ["--" + name, "127.0.0.1:0"]
        for u in users:
            cmd += ["--user", u]
        cmd += list(extra)
        self.cmd = cmd
        e = dict(os.environ)
        if args().loop:
            e["MAILPROTO_SERVER_LOOP"] = args().loop
        e.update(env or {})
        self.lines = []
        self.cond = threading.Condition()
        self.ports = {}
        self.addresses = {}
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=e)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.rc = None
        try:
            self._wait_ready()
        except BaseException:
            self.proc.kill()
            self.proc.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def _read(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)  # end of log
            self.cond.notify_all()

    def _wait_ready(self):
        deadline = time.time() + READY_TIMEOUT
        with self.cond:
            while True:
                for line in self.lines:
                    if line is None:
                        raise AssertionError("server exited before ready:\n"
                                             + self.log())
                    m = re.search(r"listening (\w+) on (\S+):(\d+)$",
                                  line.strip())
                    if m:
                        self.ports[m.group(1)] = int(m.group(3))
                        self.addresses[m.group(1)] = m.group(2)
                if any(l and "ready; try:" in l for l in self.lines):
                    return
                left = deadline - time.time()
                if left <= 0:
                    raise AssertionError("server not ready in time:\n"
                                         + self.log())
                self.cond.wait(left)

    def log(self):
        with self.cond:
            return "".join(l for l in self.lines if l)

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until `count` log lines match `pattern`; returns them."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cond:
            while True:
                hits = [l for l in self.lines if l and rx.search(l)]
                if len(hits) >= count:
                    return hits
                left = deadline - time.time()
                if left <= 0 or (self.lines and self.lines[-1] is None):
                    raise AssertionError(
                        "no log line matching %r (x%d):\n%s"
                        % (pattern, count, self.log()))
                self.cond.wait(left)

    def stop(self, sig=signal.SIGTERM, timeout=30.0, expect=0):
        """Sends `sig`, waits for the exit, checks the status."""
        if self.rc is None:
            self.proc.send_signal(sig)
            try:
                self.rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("server did not exit after signal %d:\n"
                                     % sig + self.log())
            self.reader.join(5)
        if expect is not None and self.rc != expect:
            raise AssertionError("server exit status %r, expected %r:\n%s"
                                 % (self.rc, expect, self.log()))
        return self.rc

    def wait_exit(self, timeout=30.0, expect=0):
        """Waits for an exit the server makes on its own; checks it."""
        try:
            self.rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("server still running after %ss:\n%s"
                                 % (timeout, self.log()))
        self.reader.join(5)
        if expect is not None and self.rc != expect:
            raise AssertionError("server exit status %r, expected %r:\n%s"
                                 % (self.rc, expect, self.log()))
        return self.rc

    def user_files(self, user):
        """Message files of `user`'s INBOX (new/ and cur/)."""
        base = os.path.join(self.maildir, user)
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(base, sub)
            if os.path.isdir(d):
                out += [os.path.join(d, f) for f in sorted(os.listdir(d))]
        return out

    def rss_kb(self, field="VmRSS"):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise AssertionError("no %s for the server" % field)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and exc_type is not Skip:
            if self.rc is None:
                self.proc.kill()
                self.proc.wait()
                self.reader.join(5)
            sys.stdout.write("---- server command: %s\n---- server log:\n%s"
                             "---- end of server log\n"
                             % (" ".join(self.cmd), self.log()))
        elif self.rc is None:
            self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False


def connect(port, host="127.0.0.1", timeout=10.0):
    return socket.create_connection((host, port), timeout=timeout)


def recv_line(sock):
    """Reads one CRLF-terminated line (bytes, without CRLF); b"" at EOF."""
    buf = bytearray()
    while not buf.endswith(b"\r\n"):
        b = sock.recv(1)
        if not b:
            return bytes(buf)
        buf += b
    return bytes(buf[:-2])


def smtp_reply(sock):
    """Reads one (multi-line) SMTP reply; returns (code, [lines])."""
    lines = []
    while True:
        line = recv_line(sock)
        if not line:
            raise AssertionError("connection closed in a reply: %r" % lines)
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), lines


def message(subject, body="hello\r\n", extra_headers=""):
    return ("From: sender@example.org\r\nTo: alice@localhost\r\n"
            "Subject: %s\r\n%s\r\n%s" % (subject, extra_headers, body))


def need_program(name):
    path = shutil.which(name)
    if not path:
        raise Skip("%s is not installed" % name)
    return path


def run_program(cmd, input=None, timeout=60, env=None, ok=(0,)):
    """Runs a client program; fails with its whole output on an unexpected
    exit status. Returns the CompletedProcess (text)."""
    p = subprocess.run(cmd, input=input, capture_output=True, text=True,
                       timeout=timeout, env=env)
    if p.returncode not in ok:
        raise AssertionError("%s exited %d\n---- stdout:\n%s\n---- stderr:\n%s"
                             % (" ".join(cmd), p.returncode, p.stdout,
                                p.stderr))
    return p


def run_tests(tests):
    """Runs each test function; prints ok/FAIL/skip per test and exits."""
    args()
    failed = skipped = 0
    for t in tests:
        name = t.__name__
        try:
            t()
            print("ok   %s" % name)
        except Skip as e:
            skipped += 1
            print("skip %s: %s" % (name, e))
        except Exception:
            failed += 1
            print("FAIL %s" % name)
            traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
    if failed:
        sys.exit(1)
    if skipped == len(tests):
        sys.exit(SKIP)
    sys.exit(0)
