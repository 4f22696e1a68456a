#!/usr/bin/env bash
# The distribution build, the way ripgrep's release builds are made: the `dist` profile (fat LTO,
# one codegen unit) for an explicit target, so that RUSTFLAGS reach runner-patch's own crates only
# (never proc-macros or build scripts, which must stay dynamic). On Linux with glibc the binary is
# static and non-PIE, like the helm and kubectl binaries it runs beside: it does no NSS lookups or
# dlopen, so nothing needs the shared libc at run time, and it runs in a `FROM scratch` image.
# Usage: scripts/build-dist.sh [TARGET_TRIPLE]    (default: the host's)
# Prints the path of the binary as the last line of stdout (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
case "$target" in
  *-linux-gnu*) export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" ;;
esac
cargo build --profile dist --locked --target "$target" >&2
target_dir="$(cargo metadata --no-deps --format-version 1 --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
echo "$target_dir/$target/dist/runner-patch"
