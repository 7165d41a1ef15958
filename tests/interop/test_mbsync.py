#!/usr/bin/env python3
"""mbsync (Debian package isync) syncing a mailbox tree between the example
server and a local Maildir, both ways: INBOX and folders with their flags
come down; a flag change and a new message made locally go up (checked on
the server with imaplib); a message deleted locally is expunged on the
server. Exits 77 only if mbsync is not installed."""

import imaplib
import os
import re
import smtplib
import tempfile

from serverlib import (Server, message, need_program, run_program, run_tests)

LISTENERS = ("smtp", "imap")


def write_config(path, port, local):
    with open(path, "w") as f:
        f.write("""IMAPAccount server
Host 127.0.0.1
Port %d
User alice
Pass secret
SSLType None
AuthMechs LOGIN
Timeout 20

IMAPStore far
Account server

MaildirStore near
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel both
Far :far:
Near :near:
Patterns *
Create Both
Expunge Both
Remove None
SyncState *
""" % (port, local, local))


def mbsync(config, home):
    env = dict(os.environ, HOME=home)
    return run_program([need_program("mbsync"), "-c", config, "-V", "-a"],
                       env=env, timeout=120)


def maildir_files(folder):
    out = {}
    for sub in ("cur", "new"):
        d = os.path.join(folder, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
            with open(os.path.join(d, name), "rb") as f:
                out[os.path.join(d, name)] = f.read()
    return out


def subject_of(data):
    m = re.search(rb"^Subject: (.*)\r?$", data, re.M)
    return m.group(1).strip() if m else None


def find(files, subject):
    hits = [p for p, d in files.items() if subject_of(d) == subject]
    assert len(hits) == 1, (subject, list(files))
    return hits[0]


def server_state(srv, mailbox):
    """{subject: set of flags} of `mailbox` on the server."""
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    m.login("alice", "secret")
    typ, data = m.select(mailbox, readonly=True)
    assert typ == "OK", data
    out = {}
    if data[0] != b"0":
        typ, data = m.fetch("1:*", "(FLAGS BODY.PEEK[HEADER])")
        assert typ == "OK", data
        for part in data:
            if not isinstance(part, tuple):
                continue
            flags = re.search(rb"FLAGS \(([^)]*)\)", part[0]).group(1)
            out[subject_of(part[1])] = set(flags.split()) - {b"\\Recent"}
    m.logout()
    return out


def test_mbsync_tree_both_ways():
    need_program("mbsync")
    with Server(listeners=LISTENERS) as srv, \
            tempfile.TemporaryDirectory() as tmp:
        s = smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10)
        for i in range(3):
            s.sendmail("x@example.org", ["alice@localhost"],
                       message("inbox %d" % i, "body %d\r\n" % i))
        s.quit()
        m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
        m.login("alice", "secret")
        for box in ("Work", "Work/Reports"):
            assert m.create(box)[0] == "OK"
        for box, subj, flags in (("Work", "work a", "(\\Seen)"),
                                 ("Work", "work b", "(\\Flagged)"),
                                 ("Work/Reports", "report", None)):
            typ, data = m.append(box, flags, None, message(subj).encode())
            assert typ == "OK", data
        m.select("INBOX")
        assert m.store("1", "+FLAGS", "(\\Answered)")[0] == "OK"
        m.logout()

        local = os.path.join(tmp, "mail")
        os.makedirs(local)
        config = os.path.join(tmp, "mbsyncrc")
        write_config(config, srv.ports["imap"], local)

        # Down: the whole tree with flags.
        mbsync(config, tmp)
        inbox = maildir_files(os.path.join(local, "INBOX"))
        assert sorted(subject_of(d) for d in inbox.values()) == \
            [b"inbox 0", b"inbox 1", b"inbox 2"], inbox.keys()
        assert find(inbox, b"inbox 0").endswith(",R"), inbox.keys()
        work = maildir_files(os.path.join(local, "Work"))
        assert find(work, b"work a").endswith(",S")
        assert find(work, b"work b").endswith(",F")
        reports = maildir_files(os.path.join(local, "Work", "Reports"))
        assert [subject_of(d) for d in reports.values()] == [b"report"]

        # Up: a local flag change, a new local message, a local deletion.
        p = find(inbox, b"inbox 1")
        base = p.rsplit(":2,", 1)[0] if ":2," in p else p
        os.rename(p, os.path.join(local, "INBOX", "cur",
                                  os.path.basename(base) + ":2,FS"))
        gone = find(work, b"work b")
        os.rename(gone, gone + "T" if ":2," in gone else gone + ":2,T")
        new = os.path.join(local, "Work", "Reports", "new",
                           "1700000000.localmade.host")
        with open(new, "wb") as f:
            f.write(message("made locally", "from mbsync\r\n").encode())
        mbsync(config, tmp)

        state = server_state(srv, "INBOX")
        assert state[b"inbox 1"] == {b"\\Seen", b"\\Flagged"}, state
        assert state[b"inbox 0"] == {b"\\Answered"}, state
        state = server_state(srv, "Work")
        assert list(state) == [b"work a"], state  # "work b" expunged
        state = server_state(srv, "Work/Reports")
        assert set(state) == {b"report", b"made locally"}, state

        # Another run with nothing changed moves nothing either way.
        def snapshot():
            return ({box: sorted(subject_of(d) for d in maildir_files(
                        os.path.join(local, *box.split("/"))).values())
                     for box in ("INBOX", "Work", "Work/Reports")},
                    {box: server_state(srv, box)
                     for box in ("INBOX", "Work", "Work/Reports")})
        before = snapshot()
        assert before[0]["Work/Reports"] == [b"made locally", b"report"], \
            before
        mbsync(config, tmp)
        assert snapshot() == before
        srv.wait_log(r"imap .* appended \d+ bytes to Work/Reports")
        srv.stop()


if __name__ == "__main__":
    run_tests([test_mbsync_tree_both_ways])
