#!/usr/bin/env bash
# Side-by-side wall time and peak memory: runner-patch vs `cat` vs the kustomize post-renderer
# wrapper (kubectl kustomize + a strategic-merge patch for hostAliases and volumes, which cannot
# touch the TOML at all), on the real GitLab umbrella render (1.25 MB, 142 documents); then
# runner-patch vs `cat` on a generated ~100 MB stream with 50 runner releases among 20k documents.
# Needs hyperfine (Debian package) and scripts/install-test-tools.sh. Usage: scripts/bench.sh [--no-large]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine not found: apt-get install hyperfine" >&2; exit 1; }
scripts/install-test-tools.sh >/dev/null
cargo build --release --quiet
bin="$PWD/target/release/runner-patch"
kubectl="$PWD/.tools/kubectl/kubectl"
out="${BENCH_OUT:-$PWD/bench-out}"
mkdir -p "$out"
umbrella="$PWD/testdata/golden/helm3-umbrella-10.3.0/input.yaml"
spec="$PWD/examples/runner-patch.yaml"

# The peer: what users run today as a Helm 3 post-renderer (manager pod only).
wrapper="$out/kustomize-wrapper"
mkdir -p "$wrapper"
cat > "$wrapper/kustomization.yaml" <<'YAML'
resources: [all.yaml]
patches:
- path: patch.yaml
YAML
cat > "$wrapper/patch.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: my-gitlab-gitlab-runner
  namespace: gitlab-test
spec:
  template:
    spec:
      hostAliases:
      - ip: 172.25.25.32
        hostnames: [registry.test.example.com, gitlab.test.example.com]
      volumes:
      - name: gitlab-ca
        configMap: {name: gitlab-ca}
YAML
cat > "$wrapper/run.sh" <<SH
#!/bin/sh
cat > "$wrapper/all.yaml" && exec "$kubectl" kustomize "$wrapper"
SH
chmod +x "$wrapper/run.sh"

echo "## Umbrella chart render ($(wc -c < "$umbrella") bytes)"
# File in, /dev/null out; then pipe in, pipe out (how Helm runs a post-renderer).
hyperfine --style basic --warmup 3 --runs "${RUNS:-30}" --export-markdown "$out/umbrella.md" \
  -n "cat (file)" "cat < '$umbrella' > /dev/null" \
  -n "runner-patch (file)" "'$bin' -c '$spec' < '$umbrella' > /dev/null" \
  -n "cat (pipe)" "cat '$umbrella' | cat | cat > /dev/null" \
  -n "runner-patch (pipe)" "cat '$umbrella' | '$bin' -c '$spec' | cat > /dev/null" \
  -n "kustomize-wrapper (pipe)" "cat '$umbrella' | '$wrapper/run.sh' | cat > /dev/null"
for name in cat runner-patch; do
  case $name in cat) cmd=(cat);; runner-patch) cmd=("$bin" -c "$spec");; esac
  rss=$(/usr/bin/time -f '%M' "${cmd[@]}" < "$umbrella" 2>&1 >/dev/null | tail -n1)
  echo "peak RSS $name: ${rss} KiB"
done
rss=$(/usr/bin/time -f '%M' "$wrapper/run.sh" < "$umbrella" 2>&1 >/dev/null | tail -n1)
echo "peak RSS kustomize-wrapper: ${rss} KiB"

if [ "${1:-}" != "--no-large" ]; then
  large="$out/large.yaml"
  python3 scripts/gen-large-stream.py "$PWD/testdata/golden/helm3-runner-0.92.0-base/input.yaml" "$large"
  echo "## Generated stream ($(wc -c < "$large") bytes)"
  hyperfine --style basic --warmup 1 --runs "${LARGE_RUNS:-5}" --export-markdown "$out/large.md" \
    -n cat "cat < '$large' > /dev/null" \
    -n runner-patch "'$bin' -c '$spec' < '$large' > /dev/null"
  rss=$(/usr/bin/time -f '%M' "$bin" -c "$spec" < "$large" 2>&1 >/dev/null | tail -n1)
  echo "peak RSS runner-patch on the large stream: ${rss} KiB"
fi
