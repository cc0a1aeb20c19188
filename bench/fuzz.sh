#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a set time each, with a memory limit and a
# per-input timeout, starting from the seed corpus in fuzz/corpus/<target> (libFuzzer adds
# what it finds to a scratch copy, so the repository's corpus only changes by hand), with the
# dictionary fuzz/dict/<target>.dict when there is one.
#
# Usage: bench/fuzz.sh [seconds per target, default 120] [target...]
# Needs: the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# Environment: RSS_LIMIT_MB (default 2048), TIMEOUT (seconds per input, default 10),
#              JOBS (parallel fuzzing jobs per target, default 1).
# A crash, a leak past the RSS limit or a slow input stops that target and is saved under
# fuzz/artifacts/<target>/; the script exits non-zero when any target found something.
# Every target is built once (`cargo +nightly fuzz build -O`) and its binary run directly:
# `cargo fuzz run` checks the build again for each target, which on a loaded machine used the
# whole time budget before the first target ran.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-120}
shift || true
RSS_LIMIT_MB=${RSS_LIMIT_MB:-2048}
TIMEOUT=${TIMEOUT:-10}
JOBS=${JOBS:-1}
command -v cargo-fuzz >/dev/null || {
    echo "fuzz.sh: cargo-fuzz is not installed; run: cargo install cargo-fuzz" >&2
    exit 2
}
cd fuzz
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi
# -jobs makes libFuzzer fork workers that log to fuzz-N.log instead of stdout: only when asked.
PARALLEL=()
[[ $JOBS -gt 1 ]] && PARALLEL=(-jobs="$JOBS" -workers="$JOBS")
echo "== building every target once (cargo +nightly fuzz build -O)"
cargo +nightly fuzz build -O
BIN_DIR=target/x86_64-unknown-linux-gnu/release
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-fuzz.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
failed=0
for target in "${TARGETS[@]}"; do
    mkdir -p "$SCRATCH/$target"
    [[ -d "corpus/$target" ]] && cp -r "corpus/$target/." "$SCRATCH/$target/"
    echo "== $target: ${SECONDS_EACH}s, rss limit ${RSS_LIMIT_MB} MB, timeout ${TIMEOUT}s"
    status=0
    DICT=()
    [[ -f "dict/$target.dict" ]] && DICT=(-dict="dict/$target.dict")
    mkdir -p "artifacts/$target"
    "$BIN_DIR/$target" "$SCRATCH/$target" -artifact_prefix="artifacts/$target/" \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_LIMIT_MB" \
        -timeout="$TIMEOUT" "${PARALLEL[@]}" "${DICT[@]}" -print_final_stats=1 \
        >"$SCRATCH/$target.log" 2>&1 || status=$?
    grep -E '^(#[0-9]+.*(DONE|INITED)|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|==[0-9]+==|SUMMARY|Test unit written)' \
        "$SCRATCH/$target.log" || true
    if [[ $status -ne 0 ]]; then
        tail -40 "$SCRATCH/$target.log"
        echo "== $target: FOUND SOMETHING (exit $status; see fuzz/artifacts/$target)"
        failed=1
    fi
done
exit $failed
