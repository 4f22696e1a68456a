#!/usr/bin/env bash
# The whole test suite, from a clean checkout: installs the real helm 4 / helm 3 / kubectl the
# end-to-end tests drive (into .tools/), then format, lint and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-tools.sh
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked
# Fuzz smoke: a short run of each cargo-fuzz target (longer runs: scripts/fuzz.sh SECONDS).
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
