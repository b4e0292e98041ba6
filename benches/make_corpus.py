#!/usr/bin/env python3
"""Repeat a syslog file (RFC 3164, no year) to N lines, each copy's dates moved one day later
(or STEP_MINUTES later).

Usage: make_corpus.py SRC N OUT [FIRST_DAY [STEP_MINUTES]]

FIRST_DAY (YYYY-MM-DD) moves the first copy to that day, and its year is the calendar the
copies are dated in: pass the same year to `secpipe --year`, so that Feb 29 exists exactly when
secpipe thinks it does. Without it the source's own dates are kept, in the non-leap calendar of
2001. Copies cross the year end as syslog does (`Dec 31` is followed by `Jan  1`).

STEP_MINUTES 250 lays Loghub's OpenSSH_2k.log (four hours and nine minutes) end to end: event
time runs on continuously, as one busy host's log would. The default (a day per copy) makes every
copy a new date, so an archive gets one small file per copy.

Event time only grows when the source spans less than a step (Loghub's OpenSSH_2k.log spans
four hours of Dec 10); a longer source's copies overlap in time. Lines without a timestamp are
copied unchanged.
"""
import sys
from datetime import datetime, timedelta

if len(sys.argv) not in (4, 5, 6):
    sys.exit(__doc__)
src, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
first_day = datetime.strptime(sys.argv[4], "%Y-%m-%d") if len(sys.argv) >= 5 else None
step = timedelta(minutes=int(sys.argv[5])) if len(sys.argv) == 6 else timedelta(days=1)
year = first_day.year if first_day else 2001

lines = [l.rstrip("\n") for l in open(src, encoding="utf-8", errors="surrogateescape")]
parsed = []
for l in lines:
    try:
        # "%Y" first: strptime needs the year to accept Feb 29 in a leap year.
        t = datetime.strptime(f"{year} " + l[:15], "%Y %b %d %H:%M:%S")
        parsed.append((t, l[15:]))
    except ValueError:
        parsed.append((None, l))

shift = timedelta(0)
first = next((t for t, _ in parsed if t is not None), None)
if first_day and first:
    shift = first_day - datetime(first.year, first.month, first.day)

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
                u = t + shift + step * copy
                # Syslog pads the day to two columns ("Jan  1"); %b is English in the C locale.
                f.write(f"{u.strftime('%b')} {u.day:2d} {u.strftime('%H:%M:%S')}{rest}\n")
            written += 1
        copy += 1
