#!/usr/bin/env python3
"""The single-file embedding demos of examples/ run and do what their
comments say."""

import os
import subprocess

from serverlib import args, run_tests


def demo(name):
    return os.path.join(args().demo_dir, name)


def test_smtp_stdio_delivers_and_prints():
    script = ("EHLO me\nMAIL FROM:<bob@example.org>\n"
              "RCPT TO:<alice@example.org>\nRCPT TO:<carol@example.org>\n"
              "DATA\nSubject: hi\n\nHello Alice\n..leading dot\n.\nQUIT\n")
    p = subprocess.run([demo("smtp_stdio")], input=script.encode(),
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p
    out = p.stdout.decode()
    # Typed LF line ends become CRLF; replies are real SMTP.
    assert out.startswith("220 demo.example "), out
    assert "250 2.1.5" in out and "550 5.1.1" in out, out  # carol: no user
    assert "\r\n354 " in out and "250 2.0.0" in out, out
    assert out.endswith("221 2.0.0 demo.example closing connection\r\n"), out
    err = p.stderr.decode()
    assert "Received: from me" in err and "Subject: hi" in err, err
    assert "\r\n.leading dot\r\n" in err, err  # dot-unstuffed as stored
    assert "---- stored" in err and "for 1 recipient(s)" in err, err


def test_smtp_stdio_stops_at_end_of_input():
    p = subprocess.run([demo("smtp_stdio")], input=b"EHLO me\r\n",
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p
    assert b"250 " in p.stdout and b"221" not in p.stdout, p.stdout


def test_smtp_to_pop3_transcript():
    p = subprocess.run([demo("smtp_to_pop3")], capture_output=True,
                       timeout=30, text=True)
    assert p.returncode == 0, p
    out = p.stdout
    for want in ("smtp S: 220 demo.example", "smtp C: DATA",
                 "smtp S: 250 2.0.0", "pop3 S: +OK 1 ", "pop3 S: Hi Alice!",
                 "pop3 S: +OK Message 1 deleted", "pop3 C: QUIT"):
        assert want in out, (want, out)
    assert out.rstrip().splitlines()[-1].startswith("pop3 S: +OK"), out


if __name__ == "__main__":
    run_tests([
        test_smtp_stdio_delivers_and_prints,
        test_smtp_stdio_stops_at_end_of_input,
        test_smtp_to_pop3_transcript,
    ])
