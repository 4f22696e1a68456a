#!/usr/bin/env bash
# The distribution build, the way ripgrep's release builds are made: the `dist` profile (fat LTO,
# one codegen unit, stripped) for an explicit target, so that RUSTFLAGS reach runner-patch's own
# crates only (never proc-macros or build scripts, which must stay dynamic). On Linux with glibc the
# binary is static and non-PIE, like the helm and kubectl binaries it runs beside: it does no NSS
# lookups or dlopen, so nothing needs the shared libc at run time, and it runs in a `FROM scratch`
# image.
# Reproducible-ish: symbols stripped, and the build machine's paths (CARGO_HOME, this checkout)
# remapped to fixed names (/cargo, /runner-patch) so that the binary does not depend on where it was
# built; checked below (panic messages would otherwise carry them).
# Usage: scripts/build-dist.sh [TARGET_TRIPLE]    (default: the host's)
# Prints the path of the binary as the last line of stdout (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
cargo_home="$(cd "${CARGO_HOME:-$HOME/.cargo}" && pwd -P)"
target="${1:-$(rustc -vV | sed -n 's/^host: //p')}"
case "$repo$cargo_home" in
  *[[:space:]]*) echo "build-dist: paths with white space cannot be remapped through RUSTFLAGS: $repo, $cargo_home" >&2; exit 1 ;;
esac
flags="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$repo=/runner-patch"
[ "$(pwd -P)" != "$repo" ] && flags="$flags --remap-path-prefix=$(pwd -P)=/runner-patch"
case "$target" in
  *-linux-gnu*) flags="$flags -C target-feature=+crt-static -C relocation-model=static" ;;
esac
export RUSTFLAGS="${RUSTFLAGS:-} $flags"
cargo build --profile dist --locked --target "$target" >&2
target_dir="$(cargo metadata --no-deps --format-version 1 --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target_dir/$target/dist/runner-patch"
for path in "$repo" "$cargo_home"; do
  if grep -qF "$path" "$bin"; then
    echo "build-dist: $bin still names the build path $path (--remap-path-prefix missed it)" >&2
    exit 1
  fi
done
echo "$bin"
