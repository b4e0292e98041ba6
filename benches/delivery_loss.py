#!/usr/bin/env python3
"""Alerts lost across a receiver outage and a SIGKILL of secpipe (issue 13): must be 0.

    python3 benches/delivery_loss.py [ATTACKERS_PER_PHASE]   (default 500)

Phase 1: the webhook receiver is down. secpipe (release build, `--follow --state`) reads a
log to which ATTACKERS brute-force sources are appended (ten failed logins each, stamped now,
so the live watermark decides them); once its alert file holds an alert per attacker, it is
SIGKILLed. Phase 2: the receiver (tests/peers/webhook_receiver.py) comes up on the same port,
secpipe restarts with the same --state, another ATTACKERS sources attack, and once the receiver
holds every id it is stopped with SIGTERM. Prints the alerts raised (both alert files), the
ids received, how many are missing (lost) and how many requests repeated an id.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
SECPIPE = os.environ.get("SECPIPE", os.path.join(TARGET, "release", "secpipe"))
RECEIVER = os.path.join(ROOT, "tests", "peers", "webhook_receiver.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def attack(log, first, count):
    with open(log, "a") as f:
        for a in range(first, first + count):
            ip = f"198.{18 + a // 65536}.{a // 256 % 256}.{a % 256}"
            for n in range(10):
                now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                pid = 10_000 + a * 10 + n
                f.write(f"<38>1 {now} gw sshd {pid} - - Failed password for root from {ip} "
                        f"port {40000 + n} ssh2\n")


def ids_in(path):
    try:
        with open(path) as f:
            return [json.loads(l)["id"] for l in f if l.strip()]
    except FileNotFoundError:
        return []


def wait(what, check, patience=300):
    start = time.time()
    while time.time() - start < patience:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    sys.exit(f"gave up waiting for {what}")


def main():
    attackers = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    work = tempfile.mkdtemp(prefix="secpipe-loss-")
    log, state = os.path.join(work, "auth.log"), os.path.join(work, "state")
    open(log, "w").close()
    port = free_port()

    def secpipe(alerts):
        return subprocess.Popen(
            [SECPIPE, "--tz", "UTC", "--lateness", "1s", "--follow", "--state", state,
             "--alerts", f"http://127.0.0.1:{port}/hook", "--alerts", alerts, log],
            stderr=open(os.path.join(work, "stderr.txt"), "a"))

    first_alerts = os.path.join(work, "first.jsonl")
    run = secpipe(first_alerts)
    attack(log, 0, attackers)
    wait("the first run's alerts", lambda: len(ids_in(first_alerts)) >= attackers)
    run.send_signal(signal.SIGKILL)
    run.wait()

    received_log = os.path.join(work, "received.jsonl")
    receiver = subprocess.Popen([sys.executable, RECEIVER, "--port-file",
                                 os.path.join(work, "port"), "--log", received_log,
                                 "--port", str(port)])
    wait("the receiver", lambda: os.path.exists(os.path.join(work, "port")))
    second_alerts = os.path.join(work, "second.jsonl")
    run = secpipe(second_alerts)
    attack(log, attackers, attackers)
    raised = set(ids_in(first_alerts))
    wait("the second run's alerts", lambda: len(ids_in(second_alerts)) >= attackers)
    raised |= set(ids_in(second_alerts))

    def received():
        try:
            with open(received_log) as f:
                return [json.loads(json.loads(l)["body"])["id"] for l in f if l.strip()]
        except FileNotFoundError:
            return []

    wait("every alert at the receiver", lambda: raised <= set(received()))
    run.send_signal(signal.SIGTERM)
    run.wait()
    receiver.terminate()
    got = received()
    print(f"attackers per phase: {attackers}")
    print(f"alerts raised: {len(raised)} (first run, killed: {len(set(ids_in(first_alerts)))})")
    print(f"ids received: {len(set(got))} in {len(got)} requests")
    print(f"lost: {len(raised - set(got))}; repeated: {len(got) - len(set(got))}")
    print(f"work dir: {work}")


if __name__ == "__main__":
    main()
