#!/usr/bin/env bash
# Bounded smoke run of every cargo-fuzz target in this directory (for CI and developers).
#   FUZZ_SECONDS   seconds per target (default 30)
#   FUZZ_NO_INSTALL=1  do not install cargo-fuzz when it is missing
# Needs a nightly toolchain (libFuzzer instrumentation); without one it says so and exits 0,
# since the stable property tests in crates/wire/tests/properties.rs check the same invariants.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-30}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke: no nightly toolchain, skipped (stable property tests cover the invariants)"
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    if [ "${FUZZ_NO_INSTALL:-0}" = 1 ]; then
        echo "fuzz smoke: cargo-fuzz not installed and FUZZ_NO_INSTALL=1, skipped"
        exit 0
    fi
    cargo install cargo-fuzz --locked
fi

targets=$(cargo +nightly fuzz list)
for t in $targets; do
    echo "fuzz smoke: $t for ${seconds}s"
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=2048
done
echo "fuzz smoke: all targets ran without a crash"
