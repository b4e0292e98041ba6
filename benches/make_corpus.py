#!/usr/bin/env python3
"""Repeat a syslog file (RFC 3164, no year) to N lines, each copy's dates moved one day later,
so that event time only grows. Usage: make_corpus.py SRC N OUT"""
import sys
from datetime import datetime, timedelta

src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = [l.rstrip("\n") for l in open(src, encoding="utf-8", errors="surrogateescape")]
parsed = []
for l in lines:
    try:
        t = datetime.strptime("2001 " + l[:15], "%Y %b %d %H:%M:%S")  # 2001: not a leap year, like the source
        parsed.append((t, l[15:]))
    except ValueError:
        parsed.append((None, l))
written = 0
with open(out, "w", encoding="utf-8", errors="surrogateescape") as f:
    copy = 0
    while written < n:
        for t, rest in parsed:
            if written >= n:
                break
            if t is None:
                f.write(rest + "\n")
            else:
                u = t + timedelta(days=copy)
                f.write(f"{u.strftime('%b')} {u.day:2d} {u.strftime('%H:%M:%S')}{rest}\n")
            written += 1
        copy += 1
