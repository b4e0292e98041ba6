#!/usr/bin/env bash
# Whole-run throughput: every figure of README's benchmark and replay sections, printed by the
# command that measures it. Lines/s and peak RSS of `secpipe events`, `secpipe` (run),
# `secpipe --archive` (three layouts), `verify`, `replay` (whole archive and `--from/--to`
# slices) over real sshd lines, a flood of distinct attacking IPs, and fail2ban-regex on the
# same lines. Release build; read the numbers as this machine's, at the load it prints.
#
#   bash benches/throughput.sh [LINES]      (default 1000000)
#
# Environment: RUNS (default 5) runs per measurement: the best and the median wall time are
# printed, with the median user CPU time and the peak RSS of all runs (not of the last one).
# CARGO_TARGET_DIR is honoured (the binary is $CARGO_TARGET_DIR/release/secpipe, or BIN). SRC is the
# sample to repeat: Loghub's OpenSSH_2k.log from ../shared/corpus. There is no stand-in: without
# it the script stops, so no figure is ever measured on other input than it says.
#
# Inputs: OpenSSH_2k.log repeated to LINES lines, each copy a day later (every copy a new date:
# the archive gets two small files per copy); the same lines laid end to end in time (copies
# 250 minutes apart, as one busy host's log: a file per date and table); and a plain `cat` of
# the copies (all on the sample's own date; its last line has no newline, so each copy's last
# line runs into the next copy's first).
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
RUNS=${RUNS:-5}
TARGET=${CARGO_TARGET_DIR:-target}
if [ -z "${SRC:-}" ]; then
    # ../shared beside the checkout, or beside the folder of worktrees that holds it.
    for dir in .. ../..; do
        if [ -f "$dir/shared/corpus/loghub/OpenSSH_2k.log" ]; then
            SRC="$dir/shared/corpus/loghub/OpenSSH_2k.log"
            break
        fi
    done
fi
if [ -z "${SRC:-}" ] || [ ! -f "$SRC" ]; then
    echo "benches/throughput.sh: the sample OpenSSH_2k.log is not in ../shared/corpus/loghub" >&2
    echo "(nor at SRC=${SRC:-unset}); every figure is measured on it, so nothing is measured." >&2
    exit 1
fi
WORK=${WORK:-$TARGET/bench}
mkdir -p "$WORK"
INPUT="$WORK/openssh_${LINES}.log"
[ -f "$INPUT" ] || python3 benches/make_corpus.py "$SRC" "$LINES" "$INPUT"
CONTINUOUS="$WORK/openssh_continuous_${LINES}.log"
[ -f "$CONTINUOUS" ] || python3 benches/make_corpus.py "$SRC" "$LINES" "$CONTINUOUS" 2024-12-10 250
SRC_LINES=$(awk 'END { print NR }' "$SRC")
COPIES=$(( (LINES + SRC_LINES - 1) / SRC_LINES ))
CAT="$WORK/openssh_cat_${COPIES}.log"
if [ ! -f "$CAT" ]; then
    for _ in $(seq "$COPIES"); do cat "$SRC"; done >"$CAT"
fi
# BIN=PATH measures a binary built elsewhere (an older commit, for a before/after table).
if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -q
    BIN=$TARGET/release/secpipe
fi
BYTES=$(stat -c %s "$INPUT")
echo "secpipe $BIN ($(git rev-parse --short HEAD 2>/dev/null || echo '?') checked out), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "input: $INPUT, $LINES lines, $BYTES bytes (from $SRC); $RUNS runs per row"

# measure NAME CMD...: run CMD $RUNS times. Prints the best and the median wall time, the rate
# of each ($COUNT $UNIT, default $LINES lines; MB/s of $BYTES, none when 0), the median user
# CPU time and the peak RSS over all runs. $PREPARE, if set, runs before each run (untimed).
# The best rate is left in $BEST_RATE.
measure() {
    local name=$1; shift
    local count=${COUNT:-$LINES} unit=${UNIT:-lines}
    : >"$WORK/times.txt"
    for _ in $(seq "$RUNS"); do
        if [ -n "${PREPARE:-}" ]; then eval "$PREPARE"; fi
        if ! /usr/bin/time -f '%e %U %M' -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt"; then
            echo "$name: failed: $*" >&2
            cat "$WORK/stderr.txt" "$WORK/time.txt" >&2
            exit 1
        fi
        cat "$WORK/time.txt" >>"$WORK/times.txt"
    done
    local best median user rss
    best=$(cut -d' ' -f1 "$WORK/times.txt" | sort -g | head -n1)
    median=$(cut -d' ' -f1 "$WORK/times.txt" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    user=$(cut -d' ' -f2 "$WORK/times.txt" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    rss=$(cut -d' ' -f3 "$WORK/times.txt" | sort -g | tail -n1)
    BEST_RATE=$(awk -v c="$count" -v s="$best" 'BEGIN { if (s == 0) s = 0.005; printf "%.0f", c / s }')
    # /usr/bin/time reports wall time in hundredths: a run under 10 ms is counted as 5 ms.
    awk -v n="$name" -v s="$best" -v m="$median" -v c="$count" -v u="$unit" -v b="$BYTES" \
        -v user="$user" -v r="$rss" -v runs="$RUNS" \
        'BEGIN { if (s == 0) s = 0.005; if (m == 0) m = 0.005
                 mbs = (b > 0) ? sprintf("%7.1f MB/s", b / s / 1e6) : "      - MB/s"
                 printf "%-36s best %6.2f s %9.0f %s/s %s | median %6.2f s %9.0f %s/s | user %5.2f s | peak RSS %6.1f MiB (max of %d)\n",
                 n, s, c / s, u, mbs, m, c / m, u, user, r / 1024, runs }'
}

# The rows of a replay: the line count of its stderr summary (`secpipe: N lines (…`).
rows_read() {
    sed -n 's/^secpipe: \([0-9]*\) lines (.*/\1/p' "$WORK/stderr.txt" | head -n1
}

measure "secpipe events" $BIN events --tz UTC --year 2024 "$INPUT"
measure "secpipe (run)" $BIN --tz UTC --year 2024 "$INPUT"
RUN_RATE=$BEST_RATE

archive_size() {
    local dir=$1 input=$2
    local bytes input_bytes
    bytes=$(du -sb "$dir" | cut -f1)
    input_bytes=$(stat -c %s "$input")
    echo "  $(ls "$dir/events" | wc -l) dates, $(grep -c '"data"' "$dir/audit/manifests.jsonl") files, $bytes bytes ($(awk -v a="$bytes" -v b="$input_bytes" 'BEGIN { printf "%.3f", a / b }') per input byte)"
}

# Each run writes a new archive; the previous one is removed and synced first, untimed.
PREPARE="rm -rf $WORK/archive_continuous; sync" measure "secpipe --archive (end to end)" \
    $BIN --tz UTC --year 2024 --archive "$WORK/archive_continuous" "$CONTINUOUS"
archive_size "$WORK/archive_continuous" "$CONTINUOUS"
# The same lines into a bucket: moto's S3 server (PyPI moto[server]) on a loopback port, an
# Object Lock bucket; every run writes a new prefix. Not measured without moto_server, nor
# for a binary from before bucket archives (BIN=… of an older commit).
if command -v moto_server >/dev/null && "$BIN" --help | grep -q -- --spool; then
    MOTO_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    moto_server -H 127.0.0.1 -p "$MOTO_PORT" >/dev/null 2>&1 &
    MOTO_PID=$!
    trap 'kill $MOTO_PID 2>/dev/null || true' EXIT
    export AWS_ENDPOINT_URL=http://127.0.0.1:$MOTO_PORT AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
    for _ in $(seq 50); do python3 -c "import socket; socket.create_connection(('127.0.0.1', $MOTO_PORT))" 2>/dev/null && break; sleep 0.2; done
    python3 -c "
import boto3
s3 = boto3.client('s3')
s3.create_bucket(Bucket='bench', ObjectLockEnabledForBucket=True)
s3.put_object_lock_configuration(Bucket='bench', ObjectLockConfiguration={'ObjectLockEnabled': 'Enabled',
    'Rule': {'DefaultRetention': {'Mode': 'COMPLIANCE', 'Days': 1}}})"
    PREPARE="rm -rf $WORK/spool; sync" measure "secpipe --archive s3:// (end to end)" \
        sh -c "'$BIN' --tz UTC --year 2024 --archive s3://bench/run-\$(date +%s%N) --spool '$WORK/spool' '$CONTINUOUS'"
    "$BIN" --tz UTC --year 2024 --archive s3://bench/verify --spool "$WORK/spool" "$CONTINUOUS" >/dev/null 2>&1
    BUCKET_BYTES=$(python3 -c "
import boto3
s3 = boto3.client('s3')
print(sum(o['Size'] for p in s3.get_paginator('list_objects_v2').paginate(Bucket='bench', Prefix='verify/') for o in p.get('Contents', [])))")
    BYTES_SAVED=$BYTES
    BYTES=$BUCKET_BYTES UNIT=rows measure "secpipe verify s3:// (end to end)" $BIN verify s3://bench/verify
    BYTES=$(du -sb "$WORK/archive_continuous" | cut -f1) UNIT=rows measure "secpipe verify DIR (end to end)" $BIN verify "$WORK/archive_continuous"
    BYTES=$BYTES_SAVED
    kill $MOTO_PID 2>/dev/null || true
else
    echo "secpipe --archive s3://: not measured (no moto_server, or $BIN has no bucket archives)"
fi
PREPARE="rm -rf $WORK/archive; sync" measure "secpipe --archive (day per copy)" \
    $BIN --tz UTC --year 2024 --archive "$WORK/archive" "$INPUT"
archive_size "$WORK/archive" "$INPUT"
CAT_LINES=$(awk 'END { print NR }' "$CAT")
BYTES_SAVED=$BYTES; BYTES=$(stat -c %s "$CAT")
PREPARE="rm -rf $WORK/archive_cat; sync" COUNT=$CAT_LINES measure "cat $COPIES copies | secpipe --archive" \
    sh -c "cat '$CAT' | '$BIN' --tz UTC --year 2024 --archive '$WORK/archive_cat'"
archive_size "$WORK/archive_cat" "$CAT"
BYTES=$BYTES_SAVED

ARCHIVE_BYTES=$(du -sb "$WORK/archive" | cut -f1)
BYTES=$ARCHIVE_BYTES COUNT=$LINES UNIT=rows measure "secpipe verify (day per copy)" $BIN verify "$WORK/archive"
UNIT=rows measure "secpipe replay (day per copy)" $BIN replay --tz UTC "$WORK/archive"
for range in "2025-01-01 2025-02-01" "2025-01-05 2025-01-06"; do
    set -- $range
    # The rate here is of the rows actually read: the others are skipped by their manifest's
    # time range and row-group statistics.
    $BIN replay --tz UTC --from "$1" --to "$2" "$WORK/archive" >/dev/null 2>"$WORK/stderr.txt"
    ROWS=$(rows_read)
    [ -n "$ROWS" ] || { echo "replay --from $1 --to $2: no summary line on stderr" >&2; exit 1; }
    # (No MB/s: the bytes behind the rows read are not known here.)
    BYTES=0 COUNT=$ROWS UNIT=rows measure "replay --from $1 --to $2" \
        $BIN replay --tz UTC --from "$1" --to "$2" "$WORK/archive"
    echo "  $ROWS rows read, $(grep -c '"data"' "$WORK/archive/audit/manifests.jsonl") files in the archive"
done

FLOOD="$WORK/flood_${LINES}.log"
[ -f "$FLOOD" ] || python3 benches/make_flood.py "$LINES" "$FLOOD"
BYTES=$(stat -c %s "$FLOOD") measure "secpipe, $LINES distinct IPs" $BIN --tz UTC --year 2024 "$FLOOD"

if command -v fail2ban-regex >/dev/null; then
    # fail2ban is ~25k lines/s: time it once on a 100k-line slice and report its rate.
    F2B_LINES=$(( LINES < 100000 ? LINES : 100000 ))
    head -n "$F2B_LINES" "$INPUT" >"$WORK/f2b.log"
    start=$(date +%s.%N)
    fail2ban-regex "$WORK/f2b.log" sshd >"$WORK/f2b.out" 2>&1
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v l="$F2B_LINES" -v run="$RUN_RATE" \
        'BEGIN { r = l / (e - s); printf "%-36s %6.2f s %9.0f lines/s (one run, on %d lines); secpipe run (best) is %.0fx faster\n", "fail2ban-regex sshd", e - s, r, l, run / r }'
    grep -E '^(Lines|Failregex):' "$WORK/f2b.out" || true
else
    echo "fail2ban-regex not installed (apt-get install fail2ban) - comparison skipped"
fi
