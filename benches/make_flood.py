#!/usr/bin/env python3
"""N sshd password failures, each from a new IPv4 address, 5,000 a second (DESIGN section 8:
peak memory with 1,000,000 distinct attacking IPs).

Usage: make_flood.py N OUT
"""
import sys
from datetime import datetime, timedelta

if len(sys.argv) != 3:
    sys.exit(__doc__)
n, out = int(sys.argv[1]), sys.argv[2]
start = datetime(2024, 3, 10, 12, 0, 0)
with open(out, "w") as f:
    for i in range(n):
        t = start + timedelta(seconds=i // 5000)
        ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        f.write(f"{t.strftime('%b %d %H:%M:%S')} gw sshd[{10000 + i}]: "
                f"Failed password for root from {ip} port 22 ssh2\n")
