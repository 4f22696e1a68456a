#!/bin/sh
# Helm 4 plugin entry point: find the runner-patch binary and exec it (exec keeps this process's
# PID, so the binary stays helm's direct child and can show its errors on helm's stderr).
# Looked up in order: bin/ in the plugin dir (release archive, image), target/release and
# target/debug (a checkout built with cargo), then PATH (cargo install).
dir="${HELM_PLUGIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
for candidate in "$dir/bin/runner-patch" "$dir/target/release/runner-patch" "$dir/target/debug/runner-patch"; do
  if [ -x "$candidate" ]; then
    exec "$candidate" "$@"
  fi
done
if command -v runner-patch >/dev/null 2>&1; then
  exec runner-patch "$@"
fi
msg="runner-patch: error: binary not found in $dir/bin, $dir/target/release, $dir/target/debug or PATH; run 'cargo build --release' in $dir or 'cargo install --path $dir'"
echo "$msg" >&2
# Helm 4 discards plugin stderr; write to helm's own stderr too.
[ -w "/proc/$PPID/fd/2" ] && echo "$msg" >> "/proc/$PPID/fd/2"
exit 1
