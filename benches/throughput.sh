#!/usr/bin/env bash
# Whole-run throughput: lines/s and peak RSS of `secpipe events` and `secpipe` (and, when built,
# `secpipe --archive`, `replay`, `verify`) over sshd lines, next to fail2ban-regex on the same
# file. Release build; run it on an otherwise idle machine, and read the numbers as this
# machine's.
#
#   bash benches/throughput.sh [LINES]      (default 1000000)
#
# Inputs: OpenSSH_2k.log repeated to LINES lines, each copy a day later (every copy a new date:
# the archive gets two small files per copy), and the same lines laid end to end in time
# (copies 250 minutes apart, as one busy host's log: a file per date and table). The archive
# is measured on both.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${1:-1000000}
SRC=${SRC:-../shared/corpus/loghub/OpenSSH_2k.log}
WORK=${WORK:-target/bench}
mkdir -p "$WORK"
INPUT="$WORK/openssh_${LINES}.log"
[ -f "$INPUT" ] || python3 benches/make_corpus.py "$SRC" "$LINES" "$INPUT"
CONTINUOUS="$WORK/openssh_continuous_${LINES}.log"
[ -f "$CONTINUOUS" ] || python3 benches/make_corpus.py "$SRC" "$LINES" "$CONTINUOUS" 2024-12-10 250
cargo build --release --locked -q
BIN=target/release/secpipe
BYTES=$(stat -c %s "$INPUT")
echo "input: $INPUT, $LINES lines, $BYTES bytes"

# measure NAME CMD...: best wall time of 3 runs, and the peak RSS of the last. $PREPARE, if
# set, runs before each (untimed).
measure() {
    local name=$1; shift
    local best=""
    for _ in 1 2 3; do
        if [ -n "${PREPARE:-}" ]; then eval "$PREPARE"; fi
        /usr/bin/time -f '%e %M' -o "$WORK/time.txt" "$@" >/dev/null 2>"$WORK/stderr.txt"
        read -r secs rss <"$WORK/time.txt"
        if [ -z "$best" ] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; fi
    done
    awk -v n="$name" -v s="$best" -v l="$LINES" -v b="$BYTES" -v r="$rss" \
        'BEGIN{printf "%-28s %8.2f s %12.0f lines/s %8.1f MB/s %8.1f MiB peak RSS\n", n, s, l/s, b/s/1e6, r/1024}'
}

measure "secpipe events" $BIN events --tz UTC --year 2024 "$INPUT"
measure "secpipe (run)" $BIN --tz UTC --year 2024 "$INPUT"
if $BIN --help | grep -q -- '--archive'; then
    # Each run writes a new archive; the previous one is removed and synced first, untimed.
    PREPARE="rm -rf $WORK/archive_continuous; sync" measure "secpipe --archive (end to end)" \
        $BIN --tz UTC --year 2024 --archive "$WORK/archive_continuous" "$CONTINUOUS"
    echo "  $(ls "$WORK/archive_continuous/events" | wc -l) dates, $(grep -c '"data"' "$WORK/archive_continuous/audit/manifests.jsonl") files, $(du -sb "$WORK/archive_continuous" | cut -f1) bytes"
    PREPARE="rm -rf $WORK/archive; sync" measure "secpipe --archive (day per copy)" \
        $BIN --tz UTC --year 2024 --archive "$WORK/archive" "$INPUT"
    ARCHIVE_BYTES=$(du -sb "$WORK/archive" | cut -f1)
    echo "  $(ls "$WORK/archive/events" | wc -l) dates, $(grep -c '"data"' "$WORK/archive/audit/manifests.jsonl") files, $ARCHIVE_BYTES bytes ($(awk -v a="$ARCHIVE_BYTES" -v b="$BYTES" 'BEGIN{printf "%.3f", a/b}') per input byte)"
    if $BIN verify --help >/dev/null 2>&1; then
        BYTES_SAVED=$BYTES; BYTES=$ARCHIVE_BYTES
        measure "secpipe verify (MB/s of archive)" $BIN verify "$WORK/archive"
        BYTES=$BYTES_SAVED
    fi
    if $BIN replay --help >/dev/null 2>&1; then
        measure "secpipe replay (archive)" $BIN replay --tz UTC "$WORK/archive"
    fi
fi

FLOOD="$WORK/flood_${LINES}.log"
[ -f "$FLOOD" ] || python3 benches/make_flood.py "$LINES" "$FLOOD"
measure "secpipe, $LINES distinct IPs" $BIN --tz UTC --year 2024 "$FLOOD"

if command -v fail2ban-regex >/dev/null; then
    # fail2ban is ~25k lines/s: time it on a 100k-line slice and report its rate.
    F2B_LINES=$(( LINES < 100000 ? LINES : 100000 ))
    head -n "$F2B_LINES" "$INPUT" >"$WORK/f2b.log"
    start=$(date +%s.%N)
    fail2ban-regex "$WORK/f2b.log" sshd >"$WORK/f2b.out" 2>&1
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v l="$F2B_LINES" \
        'BEGIN{printf "%-28s %8.2f s %12.0f lines/s (on %d lines)\n", "fail2ban-regex sshd", e-s, l/(e-s), l}'
    grep -E '^(Lines|Failregex):' "$WORK/f2b.out" || true
else
    echo "fail2ban-regex not installed (apt-get install fail2ban) - comparison skipped"
fi
