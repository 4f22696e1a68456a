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
  log="fuzz/$target.log"
  if ! cargo fuzz run "$target" "$corpus" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=4096 > "$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "fuzz $target: $(grep -E '^Done' "$log" | tail -n 1), corpus $(ls "$corpus" | wc -l) inputs"
done
