#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another, on the nightly
# toolchain. Each target starts from its committed seeds (fuzz/seeds/TARGET) plus what earlier
# runs found (fuzz/corpus/TARGET, not committed), and prints its executions and coverage. A
# crash stops the script with the input in fuzz/artifacts/TARGET: turn it into a regression
# test before anything else.
#
#   fuzz/run.sh 600                              # ten minutes each
#   FUZZ_TARGETS="framing metadata" fuzz/run.sh 30
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")"
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}
cargo +nightly fuzz build
for target in $targets; do
    mkdir -p "corpus/$target"
    log="corpus/$target.log"
    status=0
    cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        -max_len=65536 >"$log" 2>&1 || status=$?
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    cov=$(grep -oE '#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED).*cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+' || true)
    echo "$target: ${seconds}s, $execs executions, $cov, corpus $(ls "corpus/$target" | wc -l) inputs"
    if [ "$status" -ne 0 ]; then
        grep -E "panicked|ERROR|SUMMARY" -A3 "$log" | head -20 >&2
        echo "$target failed (exit $status): see fuzz/$log and fuzz/artifacts/$target" >&2
        exit 1
    fi
done
