#!/usr/bin/env bash
# Side-by-side wall time and peak memory: runner-patch vs `cat` vs the kustomize post-renderer
# wrapper (kubectl kustomize + a strategic-merge patch for hostAliases and volumes, which cannot
# touch the TOML at all), on the real GitLab umbrella render (1.25 MB, 142 documents); then
# runner-patch vs `cat` on a generated ~100 MB stream with 50 runner releases among 20k documents
# (also with one thread), and runner-patch on that mix at 1/4, 1/2 and full size (linearity).
# Needs hyperfine (Debian package) and scripts/install-test-tools.sh. Usage: scripts/bench.sh [--no-large]
# Env: ROUNDS (15), RUNS (30), LARGE_RUNS (5), PEER_RUNS (5), BENCH_OUT (bench-out/).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine not found: apt-get install hyperfine" >&2; exit 1; }
scripts/install-test-tools.sh helm >/dev/null
# The shipped binary: the distribution build (static, fat LTO) of scripts/build-dist.sh.
bin="$(scripts/build-dist.sh | tail -n1)"
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

# This VM's speed drifts by up to 2x over seconds to minutes (shared host, steal time), so a
# ratio is only fair between runs taken close together: many short rounds each run cat and
# runner-patch back to back, and the summary is the median over rounds of each round's median,
# with the median and the range of the per-round ratios.
rounds="${ROUNDS:-15}"
summarize() { # title, then pairs of JSON files per round: prints per-round and median figures
  python3 - "$@" <<'PY'
import json, statistics, sys
title, files = sys.argv[1], sys.argv[2:]
rows = {}
for f in files:
    for r in json.load(open(f))["results"]:
        rows.setdefault(r["command"], []).append(r["median"] * 1e3)
names = list(rows)
base = rows[names[0]]
print(f"### {title}: median of {len(base)} round medians (ms), ratio to {names[0]!r}")
for n in names:
    ratios = [a / b for a, b in zip(rows[n], base)]
    print(f"  {n:32} {statistics.median(rows[n]):9.2f} ms   x{statistics.median(ratios):6.2f}"
          f"   (rounds x{min(ratios):.2f}-{max(ratios):.2f})"
          f"   rounds: {' '.join(f'{v:.2f}' for v in rows[n])}")
PY
}

echo "## Umbrella chart render ($(wc -c < "$umbrella") bytes)"
# File in, /dev/null out; then pipe in, pipe out (how Helm runs a post-renderer).
files=()
pipes=()
for r in $(seq "$rounds"); do
  hyperfine -N --style none --warmup 10 --runs "${RUNS:-30}" --export-json "$out/umbrella-$r.json" \
    -n "cat (file)" "cat '$umbrella'" \
    -n "runner-patch (file)" "'$bin' -c '$spec' '$umbrella'" >/dev/null
  hyperfine --style none --warmup 5 --runs "${RUNS:-30}" --export-json "$out/umbrella-pipe-$r.json" \
    -n "cat (pipe)" "cat '$umbrella' | cat | cat > /dev/null" \
    -n "runner-patch (pipe)" "cat '$umbrella' | '$bin' -c '$spec' | cat > /dev/null" >/dev/null
  files+=("$out/umbrella-$r.json")
  pipes+=("$out/umbrella-pipe-$r.json")
done
summarize "umbrella, file in, stdout to /dev/null" "${files[@]}" | tee "$out/umbrella.txt"
summarize "umbrella, through pipes" "${pipes[@]}" | tee -a "$out/umbrella.txt"
hyperfine --style none --warmup 1 --runs "${PEER_RUNS:-5}" --export-json "$out/peer.json" \
  -n "cat (pipe)" "cat '$umbrella' | cat | cat > /dev/null" \
  -n "kustomize-wrapper (pipe)" "cat '$umbrella' | '$wrapper/run.sh' | cat > /dev/null" >/dev/null
summarize "umbrella, the kustomize post-renderer wrapper" "$out/peer.json" | tee -a "$out/umbrella.txt"
for name in cat runner-patch; do
  case $name in cat) cmd=(cat);; runner-patch) cmd=("$bin" -c "$spec");; esac
  rss=$(/usr/bin/time -f '%M' "${cmd[@]}" < "$umbrella" 2>&1 >/dev/null | tail -n1)
  echo "peak RSS $name: ${rss} KiB"
done
rss=$(/usr/bin/time -f '%M' "$wrapper/run.sh" < "$umbrella" 2>&1 >/dev/null | tail -n1)
echo "peak RSS kustomize-wrapper: ${rss} KiB"

if [ "${1:-}" != "--no-large" ]; then
  base="$PWD/testdata/golden/helm3-runner-0.92.0-base/input.yaml"
  large="$out/large.yaml"
  python3 scripts/gen-large-stream.py "$base" "$large"
  echo "## Generated stream ($(wc -c < "$large") bytes, 50 releases among 20,000 documents)"
  files=()
  for r in $(seq "$rounds"); do
    hyperfine -N --style none --warmup 1 --runs "${LARGE_RUNS:-5}" --export-json "$out/large-$r.json" \
      -n cat "cat '$large'" \
      -n runner-patch "'$bin' -c '$spec' '$large'" \
      -n "runner-patch, 1 thread" "env RUNNER_PATCH_THREADS=1 '$bin' -c '$spec' '$large'" >/dev/null
    files+=("$out/large-$r.json")
  done
  summarize "88 MB stream" "${files[@]}" | tee "$out/large.txt"
  rss=$(/usr/bin/time -f '%M' "$bin" -c "$spec" "$large" 2>&1 >/dev/null | tail -n1)
  echo "peak RSS runner-patch on the large stream: ${rss} KiB ($(wc -c < "$large") bytes in)" | tee -a "$out/large.txt"

  # Linearity: the same mix at a quarter, half and the full size.
  echo "## Cost against input size"
  for scale in 0.25 0.5 1; do
    python3 scripts/gen-large-stream.py "$base" "$out/scale-$scale.yaml" "$scale"
  done
  hyperfine -N --style none --warmup 1 --runs "${LARGE_RUNS:-10}" --export-json "$out/linear.json" \
    -n "0.25" "'$bin' -c '$spec' '$out/scale-0.25.yaml'" \
    -n "0.5" "'$bin' -c '$spec' '$out/scale-0.5.yaml'" \
    -n "1" "'$bin' -c '$spec' '$out/scale-1.yaml'" >/dev/null
  python3 - "$out" <<'PY' | tee "$out/linear.txt"
import json, os, sys
out = sys.argv[1]
for r in json.load(open(f"{out}/linear.json"))["results"]:
    size = os.path.getsize(f"{out}/scale-{r['command']}.yaml") / 1e6
    print(f"  {size:6.1f} MB  {r['median']*1e3:8.1f} ms  {r['median']*1e3/size:6.3f} ms/MB")
PY
  rm -f "$out"/scale-*.yaml
fi
