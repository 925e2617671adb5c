#!/usr/bin/env bash
# Counts the instructions of each case of the decision benchmark with callgrind, which gives the
# same count on a busy machine as on an idle one. Each case runs with 0 and with N iterations;
# the difference divided by N is the count per iteration, with the setup cancelled out.
#
# Usage: benches/instruction_counts.sh [ITERATIONS]   (default 2000; needs valgrind)
set -euo pipefail

cd "$(dirname "$0")/.."
iterations=${1:-2000}
cases=(axes_steps_4_to_7 parse_headers_and_hash_body evaluate_without_signature bare_verify_strict evaluate_with_signature
       cedar_is_authorized cedar_build_and_authorize)

cargo build --release -p guardrail-benches --example instruction_counts >&2
binary=target/release/examples/instruction_counts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() {
    valgrind --tool=callgrind --callgrind-out-file="$work/out" "$binary" "$1" "$2" \
        2>&1 >/dev/null | sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}

printf '%-30s %15s\n' case instructions/iteration
for case in "${cases[@]}"; do
    base=$(count "$case" 0)
    total=$(count "$case" "$iterations")
    printf '%-30s %15d\n' "$case" $(( (total - base) / iterations ))
done
