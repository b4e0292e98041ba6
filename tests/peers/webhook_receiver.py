#!/usr/bin/env python3
"""A webhook receiver for tests/webhook_sink.rs (stdlib only).

Listens on 127.0.0.1 on an ephemeral port (or --port), writes the port to PORT_FILE once it listens, and
answers the POSTs it receives in order by a script: `--script 500,429:1,200` answers the first
request 500, the second 429 with `Retry-After: 1`, and 200 from then on (the last entry
repeats). Every request is appended to LOG as one JSON line: the status answered, the
headers secpipe sent, and the body exactly as received (latin-1 decoded, so no byte is lost),
with the receive time (epoch seconds, float) for latency measurements.
"""

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--script", default="200")
    # A fixed port (0: any free one): a test that restarts the receiver at the same URL.
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    script = []
    for step in args.script.split(","):
        status, _, retry_after = step.partition(":")
        script.append((int(status), retry_after or None))
    answered = [0]
    lock = threading.Lock()
    log = open(args.log, "a", encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            received = time.time()
            with lock:
                n = answered[0]
                answered[0] = n + 1
                status, retry_after = script[min(n, len(script) - 1)]
                record = {
                    "received": received,
                    "status": status,
                    "path": self.path,
                    "headers": {k: v for k, v in self.headers.items()},
                    "body": body.decode("latin-1"),
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
            self.send_response(status)
            if retry_after is not None:
                self.send_header("Retry-After", retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os

    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
