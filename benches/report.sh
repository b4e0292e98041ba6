#!/usr/bin/env bash
# Report time: `secpipe report` over the last 30 days, week and day of a 30-day archive of
# LINES mixed lines (benches/report_corpus.py: sshd, nginx, JSON app events, attacks), with the
# rows each period holds, seconds, rows/s and peak RSS. Release build; read the numbers as this
# machine's, at the load it prints.
#
#   bash benches/report.sh [LINES]      (default 10000000)
#
# Environment: RUNS (default 3) runs per period: the best and the median wall time are printed,
# with the peak RSS of all runs. BIN=PATH measures a binary built elsewhere (else
# $CARGO_TARGET_DIR/release/secpipe, built here). WORK (default $CARGO_TARGET_DIR/bench) holds
# the corpus and its archive, made once per LINES and reused (delete them to make them again).
# OUTPUTS (default `--json /dev/null --html /dev/null`) are the renderings asked for.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-10000000}
RUNS=${RUNS:-3}
TARGET=${CARGO_TARGET_DIR:-target}
WORK=${WORK:-$TARGET/bench}
DAYS=30
END=2026-01-08
mkdir -p "$WORK"
CORPUS="$WORK/report_corpus_${LINES}.log"
ARCHIVE="$WORK/report_archive_${LINES}"
if [ -z "${BIN:-}" ]; then
    cargo build --release --locked -q
    BIN=$TARGET/release/secpipe
fi
echo "secpipe $BIN ($(git rev-parse --short HEAD 2>/dev/null || echo '?') checked out), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if [ ! -f "$CORPUS" ]; then
    start=$(date +%s.%N)
    python3 benches/report_corpus.py --lines "$LINES" --days "$DAYS" --end "$END" \
        --out "$CORPUS.tmp" --truth "$WORK/report_truth_${LINES}.json"
    mv "$CORPUS.tmp" "$CORPUS"
    echo "corpus: $CORPUS written in $(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }') s"
fi
if [ ! -f "$ARCHIVE/audit/manifests.jsonl" ]; then
    rm -rf "$ARCHIVE"
    /usr/bin/time -f '%e %M' -o "$WORK/report_time.txt" \
        "$BIN" --tz UTC --archive "$ARCHIVE" --alerts /dev/null "$CORPUS" 2>"$WORK/report_stderr.txt" \
        || { cat "$WORK/report_stderr.txt" >&2; exit 1; }
    read -r secs rss <"$WORK/report_time.txt"
    awk -v n="$LINES" -v s="$secs" -v r="$rss" \
        'BEGIN { printf "archive: %d lines in %.1f s (%.0f lines/s), peak RSS %.1f MiB\n", n, s, n / s, r / 1024 }'
fi
echo "input: $CORPUS, $LINES lines over $DAYS days to $END; archive $ARCHIVE, $(du -sb "$ARCHIVE" | cut -f1) bytes, $(grep -c '"data"' "$ARCHIVE/audit/manifests.jsonl") files; $RUNS runs per row"

OUTPUTS=${OUTPUTS:---json /dev/null --html /dev/null}
if ! "$BIN" report "$ARCHIVE" --from 2026-01-07 --to "$END" $OUTPUTS >/dev/null 2>"$WORK/report_stderr.txt"; then
    cat "$WORK/report_stderr.txt" >&2
    exit 1
fi

# period NAME FROM: time `secpipe report` over [FROM, END).
period() {
    local name=$1 from=$2
    # The rows of the period, from the review itself (untimed).
    "$BIN" report "$ARCHIVE" --from "$from" --to "$END" --json "$WORK/report_review.json" 2>/dev/null
    local rows
    rows=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["counts"]["lines"]["now"])' "$WORK/report_review.json")
    : >"$WORK/report_times.txt"
    for _ in $(seq "$RUNS"); do
        if ! /usr/bin/time -v -o "$WORK/report_time.txt" "$BIN" report "$ARCHIVE" --from "$from" --to "$END" $OUTPUTS \
            >/dev/null 2>"$WORK/report_stderr.txt"; then
            echo "$name: failed" >&2
            cat "$WORK/report_stderr.txt" "$WORK/report_time.txt" >&2
            exit 1
        fi
        # Elapsed (wall clock) time as h:mm:ss or m:ss.cc, in seconds; peak RSS in KiB.
        awk -F': ' '/Elapsed \(wall clock\)/ { n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; w = s }
                    /Maximum resident set size/ { r = $2 }
                    END { print w, r }' "$WORK/report_time.txt" >>"$WORK/report_times.txt"
    done
    local best median rss
    best=$(cut -d' ' -f1 "$WORK/report_times.txt" | sort -g | head -n1)
    median=$(cut -d' ' -f1 "$WORK/report_times.txt" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    rss=$(cut -d' ' -f2 "$WORK/report_times.txt" | sort -g | tail -n1)
    awk -v n="$name" -v rows="$rows" -v s="$best" -v m="$median" -v r="$rss" -v runs="$RUNS" \
        'BEGIN { if (s == 0) s = 0.005; if (m == 0) m = 0.005
                 printf "%-22s %10d rows | best %7.2f s %11.0f rows/s | median %7.2f s | peak RSS %6.1f MiB (max of %d)\n",
                 n, rows, s, rows / s, m, r / 1024, runs }'
}

echo "outputs: $OUTPUTS"
period "report, last $DAYS days" "$(date -u -d "$END - $DAYS days" +%F)"
period "report, last week" "$(date -u -d "$END - 7 days" +%F)"
period "report, last day" "$(date -u -d "$END - 1 day" +%F)"
