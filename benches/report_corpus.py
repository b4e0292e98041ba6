#!/usr/bin/env python3
"""A synthetic, mixed security log for `secpipe report`: N lines over D days ending at a fixed
date, with the ground truth of what it holds.

Usage: report_corpus.py --lines N --days D --out FILE [--seed S] [--end YYYY-MM-DD]
                        [--truth FILE] [--untimed N] [--late N]

What it writes, in event-time order (every line carries its own RFC 3339 / RFC 5424
timestamp, so no `--year` is needed; read it with `--tz UTC`):
- sshd (journalctl short-iso-precise form): `Failed password for USER`, `Failed password for
  invalid user USER`, `Accepted password for USER`, from thousands of IPv4 and IPv6 addresses
  (a skewed choice, so top lists have a head and a long tail);
- nginx combined access lines inside RFC 5424 syslog, with some 403s and some injection
  attempts (SQLi, XSS, path traversal) in the request path;
- JSON application events: `data_access` reads and searches with `actor` and `count`, and a
  few `level: error` lines;
- `kernel` lines no grammar knows (kind `other`);
- `--untimed` lines with no envelope and no timestamp (kind `unparsed`, `ts_inferred`): secpipe
  stamps them with the time it receives them, so they land at today's date, not in the corpus;
- `--late` lines written 5 minutes after their own time (out of order), one of them across
  midnight.

Attacks cross the default rules' thresholds so alerts exist: a few brute-force bursts (20
failed passwords in 40 s from one address, on the last day and on the day before), a 403
flood, an injection series and a bulk read. One host (`db-07`) stops logging 36 hours before
the end, so a daily review of the last day names it silent.

Deterministic: the same arguments give the same bytes. With `--truth FILE` the counts it wrote
(lines per kind, per host, per day, attackers) go to FILE as JSON; without, to stdout.
"""
import argparse
import ipaddress
import json
import random
import sys
from datetime import datetime, timedelta, timezone

USERS = ["root", "admin", "oracle", "ubuntu", "test", "postgres", "git", "deploy", "alice",
         "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
         "oscar", "peggy", "trent", "victor", "walter", "backup", "jenkins", "ftp", "www",
         "mysql", "guest"]
ACTORS = [f"agent-{i}" for i in range(1, 31)]
PATHS = ["/", "/index.html", "/login", "/api/v1/items", "/api/v1/users", "/static/app.js",
         "/static/app.css", "/favicon.ico", "/health", "/search?q=shoes"]
FORBIDDEN = ["/admin", "/.git/config", "/wp-admin/", "/server-status"]
INJECTIONS = ["/item?id=1%27%20OR%201=1--", "/search?q=<script>alert(1)</script>",
              "/download?file=../../../../etc/passwd", "/item?id=1;cat%20/etc/passwd"]
AGENTS = ["Mozilla/5.0", "curl/8.5.0", "python-requests/2.31", "Go-http-client/1.1"]
SILENT_HOST = "db-07"
# Hours before the end when SILENT_HOST stops logging.
SILENT_HOURS = 36
GARBAGE = ["*** stack trace follows ***", "\tat com.example.Main(Main.java:42)", "-- MARK --",
           "panic: runtime error: index out of range"]


def address_pool(rng, size):
    """`size` distinct source addresses, about one in five IPv6, in canonical text form
    (the form secpipe stores)."""
    pool, seen = [], set()
    while len(pool) < size:
        if rng.random() < 0.2:
            net = rng.randrange(1 << 16)
            host = rng.randrange(1, 1 << 16)
            addr = ipaddress.IPv6Address(f"2001:db8:{net:x}:{rng.randrange(4):x}::{host:x}")
        else:
            # Public-looking IPv4 in a few hundred /24s, so prefixes group several addresses.
            addr = ipaddress.IPv4Address(
                f"{rng.choice([45, 61, 91, 103, 141, 185, 193, 212])}.{rng.randrange(256)}."
                f"{rng.randrange(3)}.{rng.randrange(1, 255)}")
        text = addr.compressed
        if text not in seen:
            seen.add(text)
            pool.append(text)
    return pool


def skewed(rng, items):
    """A skewed pick: the first items far more often (a head and a long tail)."""
    return items[int(len(items) * rng.random() ** 3)]


class Corpus:
    def __init__(self, args):
        self.rng = random.Random(args.seed)
        self.end = datetime.strptime(args.end, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        self.start = self.end - timedelta(days=args.days)
        self.silent_from = self.end - timedelta(hours=SILENT_HOURS)
        n_hosts = max(8, min(200, args.lines // 5000))
        self.hosts = [f"web-{i:02d}" for i in range(1, n_hosts // 2 + 1)] + \
                     [f"api-{i:02d}" for i in range(1, n_hosts // 4 + 1)] + \
                     [f"db-{i:02d}" for i in range(1, n_hosts - n_hosts // 2 - n_hosts // 4 + 1)]
        if SILENT_HOST not in self.hosts:
            self.hosts.append(SILENT_HOST)
        self.addresses = address_pool(self.rng, max(1000, min(50000, args.lines // 20)))
        self.truth = {"lines": 0, "kinds": {}, "hosts": {}, "days": {}, "untimed": 0,
                      "start": iso(self.start), "end": iso(self.end),
                      "silent_host": SILENT_HOST, "silent_from": iso(self.silent_from),
                      "attackers": {}}
        self.pid = 1000

    def count(self, t, kind, host):
        tr = self.truth
        tr["lines"] += 1
        tr["kinds"][kind] = tr["kinds"].get(kind, 0) + 1
        if host is not None:
            tr["hosts"][host] = tr["hosts"].get(host, 0) + 1
        if t is not None:
            day = t.strftime("%Y-%m-%d")
            tr["days"][day] = tr["days"].get(day, 0) + 1

    def next_pid(self):
        self.pid = 1000 + (self.pid - 999) % 60000
        return self.pid

    def host(self, i, t):
        """The host of background line `i`: hosts take turns, so each one logs every few
        seconds or minutes (no spurious `log.silence`), except SILENT_HOST once it stopped."""
        h = self.hosts[i % len(self.hosts)]
        if h == SILENT_HOST and t >= self.silent_from:
            h = self.hosts[(i + 1) % len(self.hosts)]
        return h

    # One line of each form: (text, kind, host).
    def sshd(self, t, host, ip, user, how):
        pid = self.next_pid()
        port = self.rng.randrange(1024, 65536)
        if how == "fail":
            msg, kind = f"Failed password for {user} from {ip} port {port} ssh2", "auth.failure"
        elif how == "invalid":
            msg, kind = (f"Failed password for invalid user {user} from {ip} port {port} ssh2",
                         "auth.failure")
        else:
            msg, kind = f"Accepted password for {user} from {ip} port {port} ssh2", "auth.success"
        return f"{t.isoformat(timespec='microseconds')} {host} sshd[{pid}]: {msg}", kind, host

    def nginx(self, t, host, ip, path, status):
        clf = t.strftime("%d/%b/%Y:%H:%M:%S +0000")
        ua = self.rng.choice(AGENTS)
        size = self.rng.randrange(200, 50000)
        kind = "injection.attempt" if path in INJECTIONS else "http.request"
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"
        return (f"<190>1 {stamp} {host} nginx - - - {ip} - - [{clf}] \"GET {path} HTTP/1.1\" "
                f"{status} {size} \"-\" \"{ua}\"", kind, host)

    def data(self, t, host, actor, operation, count, ip):
        event = {"ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z",
                 "event": "data_access", "operation": operation, "actor": actor,
                 "count": count, "ip": ip, "host": host}
        return json.dumps(event, separators=(",", ":")), f"data.{operation}", host

    def error(self, t, host):
        event = {"ts": t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z",
                 "level": "error", "msg": "upstream timed out", "host": host}
        return json.dumps(event, separators=(",", ":")), "log.error", host

    def kernel(self, t, host):
        return (f"{t.isoformat(timespec='microseconds')} {host} kernel: eth0: link up, 1000Mbps",
                "other", host)

    def background(self, i, t):
        host = self.host(i, t)
        r = self.rng.random()
        ip = skewed(self.rng, self.addresses)
        role = host.split("-")[0]
        if role == "web" and r < 0.75:
            p = self.rng.random()
            if p < 0.03:
                return self.nginx(t, host, ip, self.rng.choice(FORBIDDEN), 403)
            if p < 0.035:
                return self.nginx(t, host, ip, self.rng.choice(INJECTIONS), 400)
            return self.nginx(t, host, ip, self.rng.choice(PATHS), self.rng.choice([200, 200, 200, 304, 404]))
        if role == "api" and r < 0.85:
            if r < 0.08:
                return self.error(t, host)
            op = "read" if r < 0.7 else "search"
            return self.data(t, host, skewed(self.rng, ACTORS), op, self.rng.randrange(1, 20), ip)
        if role == "db" and r < 0.2:
            return self.kernel(t, host)
        user = skewed(self.rng, USERS)
        p = self.rng.random()
        # Logins succeed by day, mostly from the user's own address (a few night logins and
        # roaming users still raise auth.night_login and auth.concurrent_ips).
        if p < 0.1 and (6 <= t.hour < 22 or p < 0.002):
            home = self.addresses[-1 - USERS.index(user)]
            return self.sshd(t, host, home if p > 0.005 else ip, user, "ok")
        return self.sshd(t, host, ip, user, "fail" if p < 0.6 else "invalid")

    def attacks(self):
        """(time, line, kind, host) of the bursts that cross rule thresholds, time-ordered."""
        out = []
        rng = self.rng
        attackers = ["185.220.101.7", "2001:db8:bad:1::66", "45.155.205.99"]
        for i, ip in enumerate(attackers):
            # auth.bruteforce: 20 failures in 40 s (≥ 5 in 1 min: HIGH), on the last day
            # and the day before (so the previous period of a daily review has them too).
            for day_back in (1, 2):
                t0 = self.end - timedelta(days=day_back) + timedelta(hours=3 + 5 * i, minutes=7)
                host = self.hosts[i % len(self.hosts)]
                for k in range(20):
                    t = t0 + timedelta(seconds=2 * k)
                    user = USERS[(k + i) % len(USERS)]
                    line = self.sshd(t, host, ip, user, "invalid" if k % 2 else "fail")
                    out.append((t,) + line)
            self.truth["attackers"][ip] = 40
        # http.forbidden_rate: 30 403s in 30 s from one address.
        t0 = self.end - timedelta(hours=10)
        for k in range(30):
            t = t0 + timedelta(seconds=k)
            out.append((t,) + self.nginx(t, "web-01", "91.240.118.5", FORBIDDEN[k % len(FORBIDDEN)], 403))
        # http.injection: 8 attempts in an hour (HIGH past 5).
        t0 = self.end - timedelta(hours=20)
        for k in range(8):
            t = t0 + timedelta(minutes=5 * k)
            out.append((t,) + self.nginx(t, "web-02", "103.77.192.4", INJECTIONS[k % len(INJECTIONS)], 400))
        # data.bulk_read: 1500 records in one minute by one actor.
        t0 = self.end - timedelta(hours=6)
        for k in range(3):
            t = t0 + timedelta(seconds=10 * k)
            out.append((t,) + self.data(t, "api-01", "agent-exfil", "read", 500, "10.9.8.7"))
        out = [a for a in out if a[0] >= self.start]
        out.sort(key=lambda a: a[0])
        return out


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lines", type=int, required=True)
    ap.add_argument("--days", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--end", default="2026-01-08", help="end date (exclusive), UTC")
    ap.add_argument("--truth", help="write the ground truth here as JSON (default: stdout)")
    ap.add_argument("--untimed", type=int, default=None,
                    help="lines without a timestamp (default: one in 10,000)")
    ap.add_argument("--late", type=int, default=None,
                    help="lines written 5 minutes after their time (default: one in 2,000)")
    args = ap.parse_args()
    if args.lines < 1 or args.days < 1:
        sys.exit("report_corpus.py: --lines and --days must be at least 1")
    corpus = Corpus(args)
    attacks = corpus.attacks()
    untimed = args.untimed if args.untimed is not None else args.lines // 10000
    late = args.late if args.late is not None else args.lines // 2000
    background = max(0, args.lines - len(attacks) - untimed)
    span_us = args.days * 86_400_000_000
    # Untimed lines spread evenly through the file; so are late ones, and one more is the
    # first line after 23:57 of the day before the last, so it arrives after midnight (its
    # date's file is then written after the next date's began).
    untimed_every = (background + len(attacks)) // untimed + 1 if untimed else 0
    late_every = background // late + 1 if late else 0
    midnight = corpus.end - timedelta(days=1)
    crossing = midnight - timedelta(minutes=3) if late and args.days >= 2 else None
    delay = timedelta(minutes=5)
    truth = corpus.truth
    truth.update({"late": 0, "late_lines": 0, "lateness_s": 10})
    written = 0
    highest = None
    held = []  # (due, t, line, kind, host), written once the stream passes `due`
    a = 0
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        def put(t, line, kind, host):
            nonlocal written, highest
            f.write(line)
            f.write("\n")
            corpus.count(t, kind, host)
            # Late by the review's definition: older than the highest time written before it
            # minus the lateness (10 s).
            if highest is not None and t < highest - timedelta(seconds=10):
                truth["late"] += 1
            highest = t if highest is None else max(highest, t)
            written += 1
            if untimed_every and written % untimed_every == 0 and truth["untimed"] < untimed:
                f.write(corpus.rng.choice(GARBAGE))
                f.write("\n")
                corpus.count(None, "unparsed", None)
                truth["untimed"] += 1

        def release(now):
            while held and held[0][0] <= now:
                put(*held.pop(0)[1:])

        for i in range(background):
            t = corpus.start + timedelta(microseconds=i * span_us // max(1, background))
            release(t)
            while a < len(attacks) and attacks[a][0] <= t:
                put(*attacks[a])
                a += 1
            line = corpus.background(i, t)
            if (late_every and i % late_every == late_every // 2) or (crossing and t >= crossing):
                if crossing and t >= crossing:
                    crossing = None
                held.append((t + delay, t) + line)
                truth["late_lines"] += 1
                continue
            put(t, *line)
        release(corpus.end + delay)
        while a < len(attacks):
            put(*attacks[a])
            a += 1
        while truth["untimed"] < untimed:
            f.write(corpus.rng.choice(GARBAGE) + "\n")
            corpus.count(None, "unparsed", None)
            truth["untimed"] += 1
    text = json.dumps(truth, sort_keys=True, indent=1)
    if args.truth:
        with open(args.truth, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
