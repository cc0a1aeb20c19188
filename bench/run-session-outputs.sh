#!/usr/bin/env bash
# What reading long tool outputs whole costs the session analysis, at 1,000 sessions: generates
# synthetic Claude Code transcripts (bench/gen-transcripts.py; generated here, never committed),
# imports them into a fresh store (not timed), then runs the release example
# `session_outputs` (crates/devtrace-query/examples), which analyses every session with only
# what the spans keep inline and again reading long outputs from their blobs, and prints both
# times, the blob bytes read and the batchable runs each way found.
#
# Usage: bench/run-session-outputs.sh [FILES [TOTAL_MB]]      (default 1000 files, 250 MB)
#
# Environment:
#   TRANSCRIPTS=DIR  use (or create) the transcripts there instead of a temporary directory
#   DEVTRACE=BIN     the devtrace that imports them (default target/release/devtrace, built)
#   KEEP_DATA=1      keep the temporary directory afterwards (its path is printed)
set -euo pipefail

cd "$(dirname "$0")/.."
FILES=${1:-1000}
TOTAL_MB=${2:-250}

cargo build --release -p devtrace-query --example session_outputs
if [[ -z "${DEVTRACE:-}" ]]; then
    cargo build --release -p devtrace-cli
    DEVTRACE=target/release/devtrace
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-outputs.XXXXXX")
[[ -n "${KEEP_DATA:-}" ]] || trap 'rm -rf "$WORK"' EXIT
TRANSCRIPTS=${TRANSCRIPTS:-$WORK/transcripts}
if [[ ! -d "$TRANSCRIPTS" ]]; then
    python3 bench/gen-transcripts.py "$TRANSCRIPTS" --files "$FILES" --total-mb "$TOTAL_MB"
fi
"$DEVTRACE" --data "$WORK/data" import claude-code "$TRANSCRIPTS" --json
target/release/examples/session_outputs "$WORK/data" 3
[[ -z "${KEEP_DATA:-}" ]] || echo "run-session-outputs: kept $WORK"
