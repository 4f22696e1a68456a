//! Peak memory against input size (issue 12): the binary's peak RSS on the worst inputs stays
//! within 3 × the input plus its own peak on a tiny input (the constant), plus, for a runner TOML
//! edited at its 1 MiB limit, the fixed cost of that edit; a larger TOML is refused early.
//! Measured through a python3 parent (`common::run_measured`), on the debug binary.

mod common;

use std::process::Command;

use common::run_measured;

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");
const RENDER: &str = include_str!("../testdata/golden/helm3-runner-0.92.0-base/input.yaml");
const SPEC: &str = "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata:\n  name: m\nspec:\n  pullPolicy: [if-not-present]\n";

/// What editing a TOML at the 1 MiB limit may cost beyond 3 × the input: the old and new TOML,
/// the edited document, and serde-saphyr's read-back of its block scalar (which it copies twice
/// while reading it), each about 1 MiB (docs/robustness.md).
const TOML_EDIT_KIB: i64 = 8 * 1024;

/// The chart's one `[[runners]]` entry, `n` times.
fn with_runners(n: usize, extra: &str) -> String {
    let entry = "    [[runners]]\n      [runners.kubernetes]\n        namespace = \"gitlab-test\"\n        image = \"alpine\"\n";
    assert!(RENDER.contains(entry));
    RENDER.replace(entry, &format!("{entry}{extra}").repeat(n))
}

/// Runs the binary on `input` with the pull-policy spec: output, stderr, peak RSS in KiB.
fn measure(input: &str) -> (std::process::Output, i64) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spec.yaml"), SPEC).unwrap();
    run_measured(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["--config", "spec.yaml"])
            .env_remove("HELM_PLUGIN_NAME"),
        input.as_bytes(),
    )
}

fn baseline_kib() -> i64 {
    let (out, kib) = measure(RENDER);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kib
}

#[track_caller]
fn assert_within(input: &str, peak_kib: i64, allowance_kib: i64, case: &str) {
    let baseline = baseline_kib();
    let input_kib = (input.len() / 1024) as i64;
    let bound = baseline + 3 * input_kib + allowance_kib;
    eprintln!(
        "{case}: input {input_kib} KiB, peak {peak_kib} KiB, baseline {baseline} KiB, bound {bound} KiB"
    );
    assert!(
        peak_kib <= bound,
        "{case}: peak RSS {peak_kib} KiB > {bound} KiB (baseline {baseline} + 3 × {input_kib} + {allowance_kib})"
    );
}

/// 5 M empty documents (20 MB): only candidates are kept, so memory does not grow with the count.
#[test]
fn many_documents_stay_within_three_times_the_input() {
    let input = format!("{RENDER}{}", "---\n".repeat(5_000_000));
    let (out, peak) = measure(&input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_within(&input, peak, 0, "5 M documents");
}

/// The largest TOML the patch may write (just under 1 MiB once patched: 5,500 entries), each
/// entry with a key the runner does not know: within the bound, and the warning said for the
/// first entries and then once as a count, not 5,500 times.
#[test]
fn a_toml_at_the_limit_is_patched_within_the_bound_with_collapsed_warnings() {
    let input = with_runners(5_500, "      [runners.cache]\n        Typ = \"s3\"\n");
    let (out, peak) = measure(&input);
    check_patched_at_limit(&input, &out, peak);
}

fn check_patched_at_limit(input: &str, out: &std::process::Output, peak: i64) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("pull_policy = [\"if-not-present\"]").count(),
        input.matches("[[runners]]").count()
    );
    let typo_warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("Typ")).collect();
    assert_eq!(typo_warnings.len(), 4, "{stderr}");
    assert!(
        typo_warnings[0].contains("runners[0].cache.Typ (TOML line 6"),
        "{stderr}"
    );
    let more = input.matches("[[runners]]").count() - 3;
    assert!(
        typo_warnings[3].contains("runners[*].cache.Typ: unknown field `Typ`")
            && typo_warnings[3].contains(&format!("and {more} more like the 3 above")),
        "{stderr}"
    );
    assert_within(input, peak, TOML_EDIT_KIB, "TOML at the 1 MiB limit");
}

/// 60,000 entries (5 MB of TOML): refused before any of it is parsed as TOML, naming the
/// ConfigMap, the key and the limit, with nothing on stdout.
#[test]
fn a_toml_over_the_limit_is_refused_early() {
    let input = with_runners(60_000, "");
    let (out, peak) = measure(&input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("ConfigMap gitlab-test/gitlab-runner")
            && stderr.contains("data[\"config.template.toml\"]: the TOML has 5160000 bytes, more than the 1 MiB (1048576 bytes) Kubernetes accepts"),
        "{stderr}"
    );
    // The ConfigMap is still read as YAML before its TOML is measured: serde-saphyr holds a
    // block scalar up to three times while reading it (docs/robustness.md).
    let baseline = baseline_kib();
    let input_kib = (input.len() / 1024) as i64;
    assert!(
        peak <= baseline + 4 * input_kib,
        "peak RSS {peak} KiB for {input_kib} KiB of input (baseline {baseline})"
    );
}
