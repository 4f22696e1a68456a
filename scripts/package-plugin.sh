#!/usr/bin/env bash
# Builds the Helm 4 plugin release archive dist/runner-patch-<version>.tgz: plugin.yaml,
# scripts/helm-plugin.sh, bin/runner-patch (the static distribution build for this machine's
# architecture, scripts/build-dist.sh) and the licence files.
#
# Signed when HELM_PLUGIN_SIGN_KEY (the key's name, uid or e-mail) and HELM_PLUGIN_KEYRING (a
# secret keyring in the legacy OpenPGP format Helm reads, e.g. `gpg --export-secret-keys KEY >
# secring.gpg`) are set: dist/runner-patch-<version>.tgz.prov is written beside the archive, and
# `helm plugin install` verifies it (its default). HELM_PLUGIN_PASSPHRASE_FILE names the key's
# passphrase file, if it has one. Unsigned otherwise (installing then needs --verify=false).
#
# Env: HELM (default .tools/helm4/helm, installed by scripts/install-test-tools.sh), DIST (dist/),
# RUNNER_PATCH_DIST_BIN (use this binary instead of building one). Last line of stdout: the archive path.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
if [ -z "${HELM:-}" ]; then
  scripts/install-test-tools.sh helm >&2
  HELM="$repo/.tools/helm4/helm"
fi
bin="${RUNNER_PATCH_DIST_BIN:-$(scripts/build-dist.sh | tail -n1)}"
dist="${DIST:-$repo/dist}"
version="$(sed -n 's/^version: *//p' plugin.yaml)"
crate_version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
if [ "$version" != "$crate_version" ]; then
  echo "package-plugin: plugin.yaml version $version differs from Cargo.toml version $crate_version" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/runner-patch"
mkdir -p "$stage/bin" "$stage/scripts" "$dist"
cp plugin.yaml LICENSE-MIT LICENSE-APACHE "$stage/"
cp scripts/helm-plugin.sh "$stage/scripts/"
cp "$bin" "$stage/bin/runner-patch"
chmod 0755 "$stage/bin/runner-patch" "$stage/scripts/helm-plugin.sh"

archive="$dist/runner-patch-$version.tgz"
rm -f "$archive" "$archive.prov"
if [ -n "${HELM_PLUGIN_SIGN_KEY:-}" ]; then
  : "${HELM_PLUGIN_KEYRING:?HELM_PLUGIN_SIGN_KEY is set: HELM_PLUGIN_KEYRING must name the secret keyring}"
  set -- --sign --key "$HELM_PLUGIN_SIGN_KEY" --keyring "$HELM_PLUGIN_KEYRING"
  [ -n "${HELM_PLUGIN_PASSPHRASE_FILE:-}" ] && set -- "$@" --passphrase-file "$HELM_PLUGIN_PASSPHRASE_FILE"
else
  echo "package-plugin: HELM_PLUGIN_SIGN_KEY not set: the archive is unsigned (no .prov)" >&2
  set -- --sign=false
fi
"$HELM" plugin package "$stage" -d "$dist" "$@" >&2
[ -f "$archive" ] || { echo "package-plugin: helm wrote no $archive" >&2; exit 1; }
if [ -n "${HELM_PLUGIN_SIGN_KEY:-}" ] && [ ! -f "$archive.prov" ]; then
  echo "package-plugin: helm wrote no $archive.prov" >&2
  exit 1
fi
echo "$archive"
