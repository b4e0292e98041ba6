#!/usr/bin/env bash
# Events/s through edge → JetStream → workers, next to `secpipe run` on the same input.
# Usage: BIN=target/release/secpipe INPUT=file.log bash benches/nats.sh
# Needs nats-server (Debian's package). Two edges read the two halves of INPUT (alternate
# blocks of 1000 lines); the workers run with --once, so the time is from the first edge's
# start to the last worker's exit: publishing, the bus and detection together.
set -euo pipefail
BIN=${BIN:-target/release/secpipe}
INPUT=${INPUT:?INPUT=file.log}
PORT=${PORT:-14333}
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK/server.pid" 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT
awk 'int((NR-1)/1000)%2==0' "$INPUT" > "$WORK/a.log"
awk 'int((NR-1)/1000)%2==1' "$INPUT" > "$WORK/b.log"
LINES=$(wc -l < "$INPUT")

now() { date +%s.%N; }

start=$(now)
"$BIN" run --tz UTC "$INPUT" > "$WORK/run.out" 2>/dev/null
end=$(now)
echo "secpipe run: $(echo "$end - $start" | bc) s, $(echo "$LINES / ($end - $start)" | bc) lines/s, $(wc -l < "$WORK/run.out") alerts"

for workers in 1 2; do
    rm -rf "$WORK/js"
    nats-server -js -a 127.0.0.1 -p "$PORT" -sd "$WORK/js" > "$WORK/server.log" 2>&1 &
    echo $! > "$WORK/server.pid"
    sleep 1
    start=$(now)
    pids=()
    for w in $(seq 1 "$workers"); do
        "$BIN" worker "nats://127.0.0.1:$PORT" --once --edges a,b --tz UTC --id "w$w" \
            > "$WORK/w$w.out" 2>/dev/null &
        pids+=($!)
    done
    "$BIN" --emit "nats://127.0.0.1:$PORT" --edge-id a --tz UTC "$WORK/a.log" 2>/dev/null &
    "$BIN" --emit "nats://127.0.0.1:$PORT" --edge-id b --tz UTC "$WORK/b.log" 2>/dev/null
    wait "${pids[@]}"
    end=$(now)
    alerts=$(cat "$WORK"/w*.out | wc -l)
    echo "2 edges + $workers worker(s): $(echo "$end - $start" | bc) s, $(echo "$LINES / ($end - $start)" | bc) lines/s, $alerts alerts"
    kill "$(cat "$WORK/server.pid")"; wait "$(cat "$WORK/server.pid")" 2>/dev/null || true
    rm -f "$WORK"/w*.out
done
