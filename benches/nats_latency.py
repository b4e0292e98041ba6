#!/usr/bin/env python3
"""Alert latency added by the bus: the time from writing the line that completes a brute force
(the 5th failure of an address) to its alert on stdout, for `secpipe run --follow` and for an
edge (`--emit --follow`) with one worker. Both use --lateness 1s, so both wait about a second
of wall clock before deciding; the difference is the bus (publish, beats, merge, alerts
stream, delivery consumer).

Usage: BIN=target/release/secpipe python3 benches/nats_latency.py [TRIALS]
Needs nats-server (Debian's package).
"""
import json, os, socket, subprocess, sys, tempfile, threading, time
from datetime import datetime, timezone

BIN = os.environ.get("BIN", "target/release/secpipe")
TRIALS = int(sys.argv[1]) if len(sys.argv) > 1 else 40


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reader(proc, arrivals):
    for line in proc.stdout:
        try:
            alert = json.loads(line)
        except ValueError:
            continue
        if alert.get("rule") == "auth.bruteforce":
            arrivals.setdefault(alert["key"]["value"], time.time())


def attack(path, trials):
    """Five failures per address, the addresses 0.4 s apart; when each 5th line was written."""
    written = {}
    with open(path, "a") as f:
        for i in range(trials):
            ip = f"198.51.{100 + i // 250}.{i % 250 + 1}"
            for n in range(5):
                now = datetime.now(timezone.utc)
                f.write(f"{now:%b} {now.day:2d} {now:%H:%M:%S} bench sshd[{4000 + i}]: "
                        f"Failed password for root from {ip} port {40000 + n} ssh2\n")
                f.flush()
            written[ip] = time.time()
            time.sleep(0.4)
    return written


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def report(name, written, arrivals):
    lat = [arrivals[ip] - t for ip, t in written.items() if ip in arrivals]
    if not lat:
        print(f"{name}: no alerts")
        return
    print(f"{name}: {len(lat)}/{len(written)} alerts, latency p50 {percentile(lat, 50):.2f} s, "
          f"p99 {percentile(lat, 99):.2f} s")


def main():
    work = tempfile.mkdtemp()
    # Baseline: one process.
    log = os.path.join(work, "run.log")
    open(log, "w").close()
    run = subprocess.Popen([BIN, "run", "--follow", "--lateness", "1s", "--tz", "UTC", log],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    arrivals = {}
    threading.Thread(target=reader, args=(run, arrivals), daemon=True).start()
    time.sleep(1)
    written = attack(log, TRIALS)
    time.sleep(5)
    run.terminate()
    run.wait()
    report("secpipe run --follow", written, arrivals)

    # The bus: one edge, one worker.
    port = free_port()
    url = f"nats://127.0.0.1:{port}"
    server = subprocess.Popen(["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port),
                               "-sd", os.path.join(work, "js")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    log = os.path.join(work, "edge.log")
    open(log, "w").close()
    worker = subprocess.Popen([BIN, "worker", url, "--lateness", "1s", "--tz", "UTC"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    edge = subprocess.Popen([BIN, "--emit", url, "--edge-id", "bench", "--follow", "--tz",
                             "UTC", log], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    arrivals = {}
    threading.Thread(target=reader, args=(worker, arrivals), daemon=True).start()
    time.sleep(3)
    written = attack(log, TRIALS)
    time.sleep(8)
    for p in (edge, worker, server):
        p.terminate()
        p.wait()
    report("edge → JetStream → worker", written, arrivals)


if __name__ == "__main__":
    main()
