#!/usr/bin/env python3
"""Many syslog senders over UDP, for measuring loss (issue 10.5): not a test, a load generator.

    python3 benches/udp_senders.py PORT SENDERS RATE TOTAL [--burst]

SENDERS sockets, each bound to its own port on 127.0.0.1, send TOTAL datagrams in all, round
robin, at RATE datagrams/s overall (paced every millisecond; --burst sends as fast as possible).
Prints the number sent. Compare with secpipe's /metrics:
secpipe_lines_read_total{input="syslog+udp://..."} and secpipe_dropped_total.
"""

import socket
import sys
import time


def main() -> None:
    port, senders, rate, total = (int(a) for a in sys.argv[1:5])
    burst = "--burst" in sys.argv[5:]
    sockets = []
    for _ in range(senders):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    target = ("127.0.0.1", port)
    start = time.monotonic()
    sent = 0
    i = 0
    while i < total:
        if not burst:
            due = int((time.monotonic() - start) * rate) + 1
            if i >= due:
                time.sleep(0.001)
                continue
            end = min(total, due)
        else:
            end = total
        while i < end:
            s = sockets[i % senders]
            msg = (
                f"<38>Nov 23 10:00:00 host{i % senders} sshd[{i}]: "
                f"Failed password for root from 203.0.113.{i % 250} port 22 ssh2"
            )
            try:
                s.sendto(msg.encode(), target)
                sent += 1
            except OSError:
                pass
            i += 1
    elapsed = time.monotonic() - start
    print(f"sent {sent} from {senders} senders in {elapsed:.2f}s ({sent / elapsed:.0f}/s)")


if __name__ == "__main__":
    main()
