#!/usr/bin/env bash
# Fuzzes the filter and the spec loader with cargo-fuzz (libFuzzer). Seeds come from the golden
# inputs. Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60; CI runs a short smoke)
# cargo-fuzz needs nightly features; the stable toolchain is allowed to use them here.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in patch spec; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  if [ "$target" = patch ]; then
    for f in testdata/golden/*/input.yaml; do
      size=$(wc -c < "$f")
      [ "$size" -lt 20000 ] && cp "$f" "$corpus/$(basename "$(dirname "$f")").yaml"
    done
  else
    for f in testdata/golden/*/spec.yaml examples/runner-patch.yaml; do cp "$f" "$corpus/$(echo "$f" | tr / _)"; done
  fi
  cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 2>&1 | tail -n 5
done
