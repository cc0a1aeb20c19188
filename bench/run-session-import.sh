#!/usr/bin/env bash
# Session-import benchmark: generates synthetic Claude Code transcripts (bench/gen-transcripts.py;
# generated here, never committed), imports them with the release `devtrace import claude-code`
# into a fresh store, and prints the throughput (MB of transcript per second) and the peak
# resident memory. Then imports again (nothing changed: every file is skipped) and appends to a
# tenth of the files and imports once more (only the new lines are read).
#
# Usage: bench/run-session-import.sh [FILES [TOTAL_MB]]      (default 1000 files, 1000 MB)
#
# Environment:
#   TRANSCRIPTS=DIR  use (or create) the transcripts there instead of a temporary directory
#   KEEP_DATA=1      keep the temporary directory afterwards
#   NO_BUILD=1       skip `cargo build --release -p devtrace-cli`
set -euo pipefail

cd "$(dirname "$0")/.."
FILES=${1:-1000}
TOTAL_MB=${2:-1000}
DEVTRACE=target/release/devtrace

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p devtrace-cli
fi
[[ -x "$DEVTRACE" ]] || { echo "run-session-import: $DEVTRACE was not built" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-sessions.XXXXXX")
cleanup() {
    if [[ -n "${KEEP_DATA:-}" ]]; then
        echo "run-session-import: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
TRANSCRIPTS=${TRANSCRIPTS:-$WORK/transcripts}
DATA="$WORK/data"

if [[ ! -d "$TRANSCRIPTS" ]]; then
    echo "run-session-import: generating $FILES transcripts ($TOTAL_MB MB) in $TRANSCRIPTS"
    python3 bench/gen-transcripts.py "$TRANSCRIPTS" --files "$FILES" --total-mb "$TOTAL_MB"
fi
bytes=$(find "$TRANSCRIPTS" -name '*.jsonl' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
files=$(find "$TRANSCRIPTS" -name '*.jsonl' | wc -l)

# Drop the transcripts from the page cache is not possible without root; read them once so
# every run reads from memory alike (the figure is the importer's, not the disk's).
cat "$TRANSCRIPTS"/*/*.jsonl >/dev/null

measure() {  # label, bytes read, then the command; prints seconds, MB/s, peak RSS
    local label=$1 size=$2
    shift 2
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >"$WORK/out.json" 2>"$WORK/err.log" || {
        echo "run-session-import: $label failed:" >&2
        cat "$WORK/err.log" >&2
        exit 1
    }
    read -r seconds kib <"$WORK/time"
    echo "$label: $(cat "$WORK/out.json")"
    awk -v s="$seconds" -v k="$kib" -v b="$size" -v l="$label" 'BEGIN {
        printf "%-22s %8.2f s  %7.1f MB/s  peak RSS %.0f MiB\n", l, s, (b / 1e6) / (s > 0 ? s : 1e-9), k / 1024 }'
}

echo "transcripts        $files files, $(awk -v b="$bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }')"
measure "import (fresh store)" "$bytes" "$DEVTRACE" --data "$DATA" import claude-code "$TRANSCRIPTS" --json
measure "import again" "$bytes" "$DEVTRACE" --data "$DATA" import claude-code "$TRANSCRIPTS" --json

# Grow a tenth of the transcripts by re-appending their own last 20 lines (new uuids are not
# needed: the importer's cursor, not the content, decides what is new).
grown=0
for f in $(find "$TRANSCRIPTS" -name '*.jsonl' | sort | awk 'NR % 10 == 0'); do
    tail -n 20 "$f" >"$WORK/tail"
    cat "$WORK/tail" >>"$f"
    grown=$((grown + $(stat -c %s "$WORK/tail")))
done
measure "import grown files" "$grown" "$DEVTRACE" --data "$DATA" import claude-code "$TRANSCRIPTS" --json

store=$(find "$DATA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
echo "store on disk      $(awk -v s="$store" -v b="$bytes" 'BEGIN { printf "%.1f MB (%.1f%% of the transcripts)", s / 1e6, 100 * s / b }')"
"$DEVTRACE" --data "$DATA" sessions --limit 3
