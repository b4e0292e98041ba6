#!/usr/bin/env python3
"""Delivery latency of the webhook sink: from the moment an alert is on secpipe's stdout to the
moment a webhook receiver on loopback has its request (README, "Webhook and Alertmanager").

    python3 benches/webhook_latency.py [SECPIPE] [ALERTS]

SECPIPE defaults to $CARGO_TARGET_DIR/release/secpipe (or target/release/secpipe); ALERTS
(default 1000) is the number of brute-force sources. Two runs:

- paced: sshd lines written to secpipe's stdin as a live stream (timestamps of now, and
  `--lateness 1s` so that the watermark releases them while the stream goes on), one source
  reaching the threshold every 50 ms; the watermark moves once a second (the lines' timestamps
  are whole seconds), so alerts leave in groups of about 20, as a live stream's would;
- burst: the same kind of lines as one file, so every alert is decided within a few
  milliseconds and the sink works through a queue of them (one request per alert).

Both sinks (`--alerts -` and the webhook) are handed each batch of alerts at the same moment
by the ordered stage; the latency is the receiver's receive time minus the time this script
read the alert's line from secpipe's stdout (the same clock), matched by alert id. The receiver
is Python's http.server on 127.0.0.1, answering 200.
"""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

received = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        at = time.time()
        alert_id = json.loads(body)["id"]
        received.setdefault(alert_id, at)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def sshd_lines(source, when):
    stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
    ip = f"198.51.{source // 250}.{source % 250 + 1}"
    return [
        f"{stamp} bench sshd[{10000 + source * 5 + n}]: Failed password for invalid user u{n} from {ip} port {40000 + n} ssh2\n"
        for n in range(5)
    ]


def run(secpipe, url, feed, live):
    args = [secpipe, "--tz", "UTC", "--drain-timeout", "1m", "--alerts", "-", "--alerts", url]
    if live:
        args += ["--lateness", "1s"]
    else:
        args.append(feed)
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if live else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        env=dict(os.environ, TZ="UTC"),
    )
    printed = {}

    def read():
        for line in proc.stdout:
            at = time.time()
            printed[json.loads(line)["id"]] = at

    reader = threading.Thread(target=read)
    reader.start()
    if live:
        for source in feed:
            for line in sshd_lines(source, datetime.now(timezone.utc)):
                proc.stdin.write(line)
            proc.stdin.flush()
            time.sleep(0.05)
        proc.stdin.close()
    proc.wait()
    reader.join()
    return printed


def report(name, printed):
    latencies = sorted(
        (received[i] - t) * 1000 for i, t in printed.items() if i in received
    )
    lost = len(printed) - len(latencies)
    if not latencies:
        print(f"{name}: no alert received ({len(printed)} printed)")
        return

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))]

    print(
        f"{name}: {len(latencies)} alerts, not received {lost}; latency ms "
        f"p50 {pct(50):.2f}  p99 {pct(99):.2f}  max {latencies[-1]:.2f}"
    )


def main():
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    secpipe = sys.argv[1] if len(sys.argv) > 1 else f"{target}/release/secpipe"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/bench"

    paced = min(count, 200)
    report(
        f"paced (live stdin, {paced} sources, one every 50 ms)",
        run(secpipe, url, range(paced), True),
    )
    received.clear()
    path = "/tmp/secpipe-webhook-latency.log"
    start = datetime(2026, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
    with open(path, "w") as f:
        for source in range(count):
            f.writelines(sshd_lines(source, start))
    report(f"burst (file, {count} sources)", run(secpipe, url, path, False))


if __name__ == "__main__":
    main()
