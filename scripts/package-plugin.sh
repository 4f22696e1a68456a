#!/usr/bin/env bash
# Builds the Helm 4 plugin release archive: dist/runner-patch-<version>.tgz holding plugin.yaml,
# scripts/helm-plugin.sh and bin/runner-patch (linux, this machine's architecture).
# Install it with: helm plugin install dist/runner-patch-<version>.tgz --verify=false
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-tools.sh >/dev/null
cargo build --release --locked
stage="$(mktemp -d)/runner-patch"
mkdir -p "$stage/bin" "$stage/scripts"
cp plugin.yaml "$stage/"
cp scripts/helm-plugin.sh "$stage/scripts/"
# .cargo/config.toml builds for the named host triple (static glibc on Linux).
cp "target/$(rustc -vV | sed -n 's/^host: //p')/release/runner-patch" "$stage/bin/"
mkdir -p dist
.tools/helm4/helm plugin package "$stage" -d dist --sign=false
ls -l dist/
