#!/usr/bin/env python3
"""IMAP with Python's imaplib (and a raw socket where imaplib has no
command, such as IDLE) against the example server: the mission's flow
(a message sent over SMTP is read and flagged over IMAP and stays there),
mailbox and message commands, two sessions on one mailbox, IDLE woken by an
SMTP delivery, and the server's IMAP behaviour around them (timeouts,
keep-alive, connection limit, shutdown, plaintext-login rule)."""

import imaplib
import os
import re
import signal
import smtplib
import socket
import time

from serverlib import (Server, Skip, connect, message, recv_line, run_tests)
from test_flow import non_loopback_ipv4

LISTENERS = ("smtp", "imap")


def deliver(srv, subject, body="hello\r\n", rcpt="alice@localhost"):
    s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
    s.sendmail("sender@example.org", [rcpt], message(subject, body))
    s.quit()


def imap_login(srv, user="alice", password="secret"):
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    typ, data = m.login(user, password)
    assert typ == "OK", data
    return m


def ok(result):
    typ, data = result
    assert typ == "OK", (typ, data)
    return data


def fetch_items(data):
    """imaplib's FETCH data as {seq: (header bytes, literal or None)}."""
    out = {}
    for part in data:
        # Items after a literal come as a bytes piece of their own
        # (b" FLAGS (...))"); only the start of a response has the number.
        if part is None or (not isinstance(part, tuple) and
                            not part[:1].isdigit()):
            continue
        head, lit = (part[0], part[1]) if isinstance(part, tuple) else \
            (part, None)
        seq = int(head.split(b" ", 1)[0])
        prev = out.get(seq)
        out[seq] = (head if prev is None else prev[0] + b" " + head,
                    lit if lit is not None else (prev[1] if prev else None))
    return out


def flags_of(m, seq="1:*", uid=False):
    """{seq: set of flags} from FETCH (FLAGS), \\Recent left out."""
    data = ok(m.uid("FETCH", seq, "(FLAGS)") if uid else
              m.fetch(seq, "(FLAGS)"))
    out = {}
    for part in data:
        head = part[0] if isinstance(part, tuple) else part
        mm = re.match(rb"(\d+) \(.*FLAGS \(([^)]*)\)", head)
        assert mm, head
        out[int(mm.group(1))] = set(mm.group(2).split()) - {b"\\Recent"}
    return out


class Raw:
    """A hand-driven IMAP connection, for IDLE and exact replies."""

    def __init__(self, port, host="127.0.0.1"):
        self.sock = connect(port, host)
        self.greeting = recv_line(self.sock)
        assert self.greeting.startswith(b"* OK"), self.greeting
        self.n = 0

    def send(self, line):
        self.sock.sendall(line + b"\r\n")

    def line(self, timeout=10.0):
        self.sock.settimeout(timeout)
        return recv_line(self.sock)

    def command(self, text):
        """Sends "tN text"; returns (untagged lines, tagged line)."""
        self.n += 1
        tag = b"t%d" % self.n
        self.send(tag + b" " + text)
        untagged = []
        while True:
            line = self.line()
            if not line:
                raise AssertionError("closed in %r after %r" % (text, untagged))
            if line.startswith(tag + b" "):
                return untagged, line
            untagged.append(line)

    def ok(self, text):
        untagged, tagged = self.command(text)
        assert tagged.split(b" ")[1] == b"OK", (text, untagged, tagged)
        return untagged

    def close(self):
        self.sock.close()


# ---- the mission's flow ----------------------------------------------------

def test_smtp_message_read_and_flagged_over_imap_stays():
    with Server(listeners=LISTENERS) as srv:
        deliver(srv, "read me", "first body\r\n")
        m = imap_login(srv)
        caps = ok(m.capability())[0].split()
        for cap in (b"IMAP4rev1", b"IDLE", b"UIDPLUS", b"MOVE"):
            assert cap in caps, caps
        boxes = ok(m.list())
        assert any(b'"INBOX"' in b or b.endswith(b" INBOX") for b in boxes), \
            boxes
        assert ok(m.select("INBOX")) == [b"1"]
        items = fetch_items(ok(m.fetch("1", "(FLAGS RFC822.SIZE BODY.PEEK[])")))
        head, body = items[1]
        assert b"\\Seen" not in head, head
        size = int(re.search(rb"RFC822.SIZE (\d+)", head).group(1))
        assert len(body) == size, (len(body), size)
        assert b"Subject: read me" in body and body.endswith(b"first body\r\n")
        # BODY.PEEK left \Seen alone; BODY[] sets it (RFC 3501 6.4.5).
        assert "\\Seen" not in str(flags_of(m)[1])
        assert fetch_items(ok(m.fetch("1", "(BODY[])")))[1][1] == body
        assert b"\\Seen" in flags_of(m)[1]
        ok(m.store("1", "+FLAGS", "(\\Flagged)"))
        assert {b"\\Seen", b"\\Flagged"} <= flags_of(m)[1]
        m.logout()
        # It stays on the server, flags and all: on disk and over IMAP.
        files = srv.user_files("alice")
        assert len(files) == 1 and files[0].endswith(":2,FS"), files
        m = imap_login(srv)
        assert ok(m.select("INBOX", readonly=True)) == [b"1"]
        assert {b"\\Seen", b"\\Flagged"} <= flags_of(m)[1]
        m.logout()
        srv.wait_log(r"imap .* auth ok user=alice", count=2)
        srv.stop()


def test_store_copy_move_expunge():
    with Server(listeners=LISTENERS) as srv:
        for i in range(4):
            deliver(srv, "msg %d" % i)
        m = imap_login(srv)
        ok(m.select("INBOX"))
        ok(m.create("Archive"))
        # STORE forms: FLAGS, +FLAGS, -FLAGS, .SILENT, keywords.
        data = ok(m.store("1", "FLAGS", "(\\Answered $Label1)"))
        assert b"$Label1" in data[0] and b"\\Answered" in data[0], data
        ok(m.store("1", "-FLAGS", "(\\Answered)"))
        assert flags_of(m, "1")[1] == {b"$Label1"}
        assert ok(m.store("2", "+FLAGS.SILENT", "(\\Draft)")) == [None]
        assert b"\\Draft" in flags_of(m, "2")[2]
        # COPY keeps the source; COPYUID names the new UIDs (RFC 4315).
        typ, data = m.copy("1:2", "Archive")
        assert typ == "OK", data
        assert re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0]), data
        # UID MOVE (RFC 6851): gone here at once, with EXPUNGE responses.
        typ, data = m.uid("MOVE", "3", "Archive")
        assert typ == "OK", data
        assert ok(m.select("INBOX")) == [b"3"]
        # EXPUNGE removes only \Deleted ones.
        ok(m.store("1", "+FLAGS", "(\\Deleted)"))
        assert ok(m.expunge()) == [b"1"]
        assert ok(m.select("INBOX")) == [b"2"]
        uids = ok(m.uid("FETCH", "1:*", "(UID)"))
        assert [int(re.search(rb"UID (\d+)", u).group(1)) for u in uids] == \
            [2, 4], uids
        # A copy into a missing mailbox: NO [TRYCREATE] (RFC 3501 6.4.7).
        typ, data = m.copy("1", "Nowhere")
        assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)
        st = ok(m.status("Archive", "(MESSAGES UNSEEN)"))[0]
        assert b"MESSAGES 3" in st and b"UNSEEN 3" in st, st
        ok(m.select("Archive"))
        subjects = [fetch_items([p])[int(p[0].split()[0])][1]
                    for p in ok(m.fetch("1:*", "(BODY.PEEK[HEADER])"))
                    if isinstance(p, tuple)]
        assert [re.search(rb"Subject: (.*)\r\n", s).group(1)
                for s in subjects] == [b"msg 0", b"msg 1", b"msg 2"], subjects
        # The keyword went along with the copy.
        assert b"$Label1" in flags_of(m, "1")[1]
        m.logout()
        srv.stop()


def test_append_then_fetch_back_byte_identical():
    with Server(listeners=LISTENERS) as srv:
        m = imap_login(srv)
        small = (b"From: me@example.org\r\nSubject: appended\r\n\r\n"
                 b"8-bit \xc3\xa9 and a lone dot:\r\n.\r\nend\r\n")
        # 300 KiB: streamed into the store through the literal.
        big = b"Subject: big\r\n\r\n" + b"".join(
            b"%06d %s\r\n" % (i, b"x" * 90) for i in range(3200))
        for msg, flags in ((small, "(\\Seen $Work)"), (big, None)):
            typ, data = m.append("INBOX", flags, None, msg)
            assert typ == "OK", data
            assert re.match(rb"\[APPENDUID \d+ \d+\]", data[0]), data
        assert ok(m.select("INBOX")) == [b"2"]
        got = fetch_items(ok(m.fetch("1:2", "(RFC822.SIZE BODY.PEEK[])")))
        assert got[1][1] == small, got[1]
        assert got[2][1] == big, len(got[2][1] or b"")
        assert b"RFC822.SIZE %d" % len(big) in got[2][0], got[2][0]
        assert flags_of(m, "1")[1] >= {b"\\Seen", b"$Work"}
        # A partial fetch <offset.length> of the big one.
        part = fetch_items(ok(m.fetch("2", "(BODY.PEEK[]<1000.50>)")))[2][1]
        assert part == big[1000:1050], part
        # APPEND to a mailbox that does not exist: NO [TRYCREATE].
        typ, data = m.append("Missing", None, None, small)
        assert typ == "NO" and b"TRYCREATE" in data[0], (typ, data)
        m.logout()
        srv.wait_log(r"appended %d bytes to INBOX" % len(big))
        srv.stop()


def test_mailbox_management():
    with Server(listeners=LISTENERS) as srv:
        deliver(srv, "one")
        m = imap_login(srv)
        for name in ("Work", "Work/Reports", "Old"):
            ok(m.create(name))
        typ, data = m.create("Work")
        assert typ == "NO" and b"ALREADYEXISTS" in data[0], data
        names = ok(m.list('""', "*"))
        text = b"\n".join(names)
        for name in (b"INBOX", b"Work", b"Work/Reports", b"Old"):
            assert re.search(rb' "?%s"?$' % re.escape(name), text, re.M), text
        assert re.search(rb"\(\\HasChildren\) \"/\" \"?Work\"?$", text, re.M), \
            text
        # "%" stops at the hierarchy delimiter.
        top = ok(m.list('""', "%"))
        assert not any(b"Reports" in x for x in top), top
        ok(m.rename("Old", "Work/Older"))
        names = b"\n".join(ok(m.list('""', "Work/*")))
        assert b"Work/Older" in names and b"Work/Reports" in names, names
        # Renaming INBOX moves its messages and leaves it empty (RFC 3501
        # 6.3.5).
        ok(m.rename("INBOX", "Saved"))
        st = ok(m.status("Saved", "(MESSAGES UIDNEXT UIDVALIDITY)"))[0]
        assert b"MESSAGES 1" in st and b"UIDNEXT" in st, st
        assert b"MESSAGES 0" in ok(m.status("INBOX", "(MESSAGES)"))[0]
        ok(m.subscribe("Work"))
        assert any(b"Work" in x for x in ok(m.lsub('""', "*")))
        ok(m.delete("Work/Older"))
        ok(m.delete("Saved"))
        typ, data = m.delete("INBOX")
        assert typ == "NO", data
        typ, data = m.select("NoSuchBox")
        assert typ == "NO" and b"NONEXISTENT" in data[0], data
        names = b"\n".join(ok(m.list('""', "*")))
        assert b"Older" not in names and b"Saved" not in names, names
        m.logout()
        srv.stop()


# ---- other sessions' changes ---------------------------------------------

def test_idle_woken_by_smtp_delivery():
    for memory in (False, True):
        idle_woken_by_smtp_delivery(memory)


def idle_woken_by_smtp_delivery(memory):
    with Server(listeners=LISTENERS, memory=memory) as srv:
        deliver(srv, "before")
        r = Raw(srv.ports["imap"])
        r.ok(b"LOGIN alice secret")
        untagged = r.ok(b"SELECT INBOX")
        assert b"* 1 EXISTS" in untagged, untagged
        r.send(b"i1 IDLE")
        assert r.line().startswith(b"+ "), "no IDLE continuation"
        started = time.time()
        deliver(srv, "while idling")
        # The store's watch interface wakes the session at once: no
        # polling interval to wait for.
        lines = [r.line(timeout=5), r.line(timeout=5)]
        # Both are \Recent: this read-write SELECT was the first to see
        # either (RFC 3501 2.3.2).
        assert lines == [b"* 2 EXISTS", b"* 2 RECENT"], lines
        assert time.time() - started < 3, time.time() - started
        r.send(b"DONE")
        assert r.line().startswith(b"i1 OK"), "IDLE not ended"
        untagged = r.ok(b"FETCH 2 (UID RFC822.SIZE)")
        assert re.match(rb"\* 2 FETCH \(UID 2 RFC822.SIZE \d+\)$", untagged[0]), \
            untagged
        r.ok(b"LOGOUT")
        r.close()
        srv.stop()


def test_noop_sees_delivery():
    with Server(listeners=LISTENERS) as srv:
        m = imap_login(srv)
        assert ok(m.select("INBOX")) == [b"0"]
        deliver(srv, "seen at noop")
        ok(m.noop())
        # imaplib keeps SELECT's "0" too: the last one is the NOOP's.
        assert m.response("EXISTS")[1][-1] == b"1"
        assert m.response("RECENT")[1][-1] == b"1"
        m.logout()
        srv.stop()


def test_two_sessions_see_each_others_changes():
    with Server(listeners=LISTENERS) as srv:
        for i in range(3):
            deliver(srv, "shared %d" % i)
        a = imap_login(srv)
        b = imap_login(srv)
        ok(a.select("INBOX"))
        ok(b.select("INBOX"))
        # A flags message 2: B is told with its next command.
        ok(a.store("2", "+FLAGS", "(\\Flagged)"))
        ok(b.noop())
        fetches = b.response("FETCH")[1]
        assert any(re.match(rb"2 \(FLAGS \(.*\\Flagged", f) for f in fetches
                   if f), fetches
        # A expunges message 1. During B's FETCH no EXPUNGE may be sent
        # (RFC 3501 7.4.1): sequence numbers stay put, the message can still
        # be fetched or is reported gone, but never renumbered under B.
        ok(a.store("1", "+FLAGS.SILENT", "(\\Deleted)"))
        assert ok(a.expunge()) == [b"1"]
        b.untagged_responses.clear()
        data = ok(b.fetch("1:3", "(FLAGS)"))
        assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
        assert len([d for d in data if d]) >= 2, data
        # At NOOP, B hears of it.
        ok(b.noop())
        assert b.response("EXPUNGE")[1] == [b"1"], b.untagged_responses
        assert flags_of(b).keys() == {1, 2}
        assert b"\\Flagged" in flags_of(b)[1]
        # A new delivery reaches both.
        deliver(srv, "for both")
        for m in (a, b):
            ok(m.noop())
            assert m.response("EXISTS")[1][-1] == b"3", m.untagged_responses
        a.logout()
        b.logout()
        srv.stop()


# ---- the server's side -----------------------------------------------------

def test_idle_keepalive_outlives_the_idle_timeout():
    # With every idle timeout at 3 s the keep-alive comes at half of it
    # (conn.c), well before the deadline even on a loaded machine.
    env = {"MAILPROTO_SERVER_IDLE_TIMEOUT_MS": "3000"}
    with Server(listeners=LISTENERS, env=env) as srv:
        idler = Raw(srv.ports["imap"])
        idler.ok(b"LOGIN alice secret")
        idler.ok(b"SELECT INBOX")
        idler.send(b"i1 IDLE")
        assert idler.line().startswith(b"+ ")
        quiet = Raw(srv.ports["imap"])
        quiet.ok(b"LOGIN alice secret")
        # The quiet one is logged out (RFC 3501 5.4 autologout)...
        assert quiet.line(timeout=10).startswith(b"* BYE Autologout")
        # ...the idler gets keep-alives and stays.
        seen = [idler.line(timeout=10) for _ in range(3)]
        assert seen == [b"* OK Still here"] * 3, seen
        idler.send(b"DONE")
        assert idler.line().startswith(b"i1 OK")
        idler.ok(b"LOGOUT")
        srv.wait_log(r"imap .* disconnect: idle timeout")
        srv.stop()


def test_connection_limit_imap_bye():
    with Server(listeners=LISTENERS, extra=["--max-connections", "1"]) as srv:
        first = Raw(srv.ports["imap"])
        s = connect(srv.ports["imap"])
        line = recv_line(s)
        assert line.startswith(b"* BYE [UNAVAILABLE]"), line
        assert recv_line(s) == b""
        s.close()
        first.ok(b"NOOP")
        first.close()
        srv.wait_log(r"imap .* refused: 1 connections open")
        srv.stop()


def test_sigterm_says_bye_and_lets_an_append_finish():
    with Server(listeners=LISTENERS) as srv:
        idle = Raw(srv.ports["imap"])
        idle.ok(b"LOGIN alice secret")
        r = Raw(srv.ports["imap"])
        r.ok(b"LOGIN alice secret")
        msg = b"Subject: in flight\r\n\r\nfirst half\r\nsecond half\r\n"
        r.send(b"a1 APPEND INBOX {%d}" % len(msg))
        assert r.line().startswith(b"+ ")
        r.sock.sendall(msg[:25])
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"stopping: no new connections; 2 open")
        # The idle session is told and closed.
        assert idle.line().startswith(b"* BYE [UNAVAILABLE] Server shutting"
                                      b" down")
        time.sleep(0.3)
        r.sock.sendall(msg[25:] + b"\r\n")
        line = r.line()
        assert line.startswith(b"a1 OK [APPENDUID "), line
        assert r.line().startswith(b"* BYE")
        srv.wait_exit()
        files = srv.user_files("alice")
        assert len(files) == 1, files
        with open(files[0], "rb") as f:
            assert f.read() == msg


def test_login_needs_tls_off_loopback():
    addr = non_loopback_ipv4()
    if not addr:
        raise Skip("this machine has no non-loopback IPv4 address")
    for allow in (False, True):
        extra = ["--imap", addr + ":0"]
        if allow:
            extra.append("--allow-insecure-auth")
        with Server(extra=extra, listeners=()) as srv:
            r = Raw(srv.ports["imap"], addr)
            caps = r.ok(b"CAPABILITY")[0].split()
            # RFC 3501 6.2.3 / 7.2.1: LOGINDISABLED, no plaintext SASL.
            assert (b"LOGINDISABLED" in caps) != allow, caps
            assert (b"AUTH=PLAIN" in caps) == allow, caps
            untagged, tagged = r.command(b"LOGIN alice secret")
            if allow:
                assert tagged.startswith(b"t2 OK"), tagged
            else:
                assert tagged.startswith(b"t2 NO") or \
                    tagged.startswith(b"t2 BAD"), tagged
            r.ok(b"LOGOUT")
            r.close()
            srv.stop()


def test_verbose_transcript_masks_login():
    with Server(listeners=LISTENERS, extra=["--verbose"]) as srv:
        m = imap_login(srv, "bob", "hunter2")
        ok(m.select("INBOX"))
        m.logout()
        # A literal password is masked through the "+ " continuation.
        r = Raw(srv.ports["imap"])
        r.send(b"x1 LOGIN alice {6}")
        assert r.line().startswith(b"+ ")
        r.send(b"secret")
        assert r.line().startswith(b"x1 OK")
        r.ok(b"LOGOUT")
        # LITERAL+ (RFC 7888): no continuation announces the password.
        r = Raw(srv.ports["imap"])
        r.send(b"x2 LOGIN alice {6+}")
        r.send(b"secret")
        assert r.line().startswith(b"x2 OK")
        r.ok(b"LOGOUT")
        srv.stop()
        log = srv.log()
        assert "hunter2" not in log and "secret" not in log, log
        assert re.search(r'imap .* C: \S+ LOGIN "?bob"? \*\*\*\*', log), log
        assert re.search(r"imap .* S: \S+ OK .*SELECT", log), log


if __name__ == "__main__":
    run_tests([
        test_smtp_message_read_and_flagged_over_imap_stays,
        test_store_copy_move_expunge,
        test_append_then_fetch_back_byte_identical,
        test_mailbox_management,
        test_idle_woken_by_smtp_delivery,
        test_noop_sees_delivery,
        test_two_sessions_see_each_others_changes,
        test_idle_keepalive_outlives_the_idle_timeout,
        test_connection_limit_imap_bye,
        test_sigterm_says_bye_and_lets_an_append_finish,
        test_login_needs_tls_off_loopback,
        test_verbose_transcript_masks_login,
    ])
