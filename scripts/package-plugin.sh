#!/usr/bin/env bash
# Builds the Helm 4 plugin release archive dist/runner-patch-<version>.tgz: plugin.yaml (with
# one platformCommand: the os/arch of the binary, e.g. linux/amd64), scripts/helm-plugin.sh,
# bin/runner-patch (the static distribution build for this machine's architecture,
# scripts/build-dist.sh), the licence files and THIRD-PARTY-LICENSES (crates, glibc). Entries carry
# the mtime SOURCE_DATE_EPOCH (default: the last commit's time): packaging the same binary twice
# gives the same .tgz.
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

# The archive runs only where its binary does: its plugin.yaml names exactly that os/arch (Helm's
# platformCommand matches GOOS/GOARCH), so Helm elsewhere says "no platform command" instead of
# running a binary that cannot execute. Read from the binary's ELF header, not assumed.
read -r goos goarch target <<<"$(python3 - "$bin" <<'PY'
import struct, sys
head = open(sys.argv[1], "rb").read(20)
if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
    sys.exit(f"package-plugin: {sys.argv[1]} is not a 64-bit little-endian ELF binary (only Linux archives are built)")
machine = struct.unpack_from("<H", head, 18)[0]
arch = {0x3E: ("amd64", "x86_64"), 0xB7: ("arm64", "aarch64")}.get(machine)
if not arch:
    sys.exit(f"package-plugin: unknown ELF machine {machine:#x} in {sys.argv[1]}")
print("linux", arch[0], f"{arch[1]}-unknown-linux-gnu")
PY
)"
[ -n "$goarch" ] || exit 1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
stage="$work/runner-patch"
mkdir -p "$stage/bin" "$stage/scripts" "$dist"
cp LICENSE-MIT LICENSE-APACHE "$stage/"
python3 - plugin.yaml "$goos" "$goarch" > "$stage/plugin.yaml" <<'PY'
import re, sys
text, goos, goarch = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
head, sep, _ = text.partition("  platformCommand:\n")
if not sep:
    sys.exit("package-plugin: plugin.yaml has no runtimeConfig.platformCommand")
sys.stdout.write(head + sep +
    f"    - os: {goos}\n      arch: {goarch}\n"
    "      command: ${HELM_PLUGIN_DIR}/scripts/helm-plugin.sh\n"
    '      args: ["helm-post-render"]\n')
PY
grep -q "arch: $goarch" "$stage/plugin.yaml" || { echo "package-plugin: could not write the archive's plugin.yaml" >&2; exit 1; }
cp scripts/helm-plugin.sh "$stage/scripts/"
cp "$bin" "$stage/bin/runner-patch"
scripts/third-party-licenses.sh --target "$target" > "$stage/THIRD-PARTY-LICENSES"
chmod 0755 "$stage/bin/runner-patch" "$stage/scripts/helm-plugin.sh"
chmod 0644 "$stage/plugin.yaml" "$stage/LICENSE-MIT" "$stage/LICENSE-APACHE" "$stage/THIRD-PARTY-LICENSES"
# Reproducible: helm writes each entry's mtime (and gzip's is zero), so fix them all to the
# commit's time; the same sources and binary then give the same .tgz, byte for byte.
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
find "$work" -exec touch -h -d "@$epoch" {} +

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
