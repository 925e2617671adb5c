#!/usr/bin/env bash
# Builds every cargo-fuzz target with the repository's stable toolchain.
#
# cargo-fuzz passes `-Z` flags to rustc (the sanitizer and the coverage instrumentation), which a
# stable rustc accepts only with RUSTC_BOOTSTRAP=1. Installs cargo-fuzz from crates.io when it is
# missing. Extra arguments go to `cargo fuzz build`, for example `--sanitizer none`.
set -euo pipefail

cd "$(dirname "$0")"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --version '^0.13' --locked
fi

start=$(date +%s)
RUSTC_BOOTSTRAP=1 cargo fuzz build "$@"
echo "built $(cargo fuzz list | wc -l) fuzz targets in $(( $(date +%s) - start )) s"
