//! Peak memory against input size (issue 12): the binary's peak RSS on the worst inputs stays
//! within 3 × the input plus its own peak on a tiny input (the constant), plus, for a runner TOML
//! edited at its 1 MiB limit or a document at the node limit, the fixed cost of that edit. A
//! larger TOML, a runner document over 1.5 MiB or over 20,000 YAML nodes is refused early, within
//! 3 × the input; a pass-through document of any size is copied, within 3 × the input.
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

/// What editing a document at the node limit (20,000 nodes) may cost beyond 3 × the input: a
/// few hundred bytes per node in each of the value read, the value patched, the editor's tree and
/// the read-back (measured: 10 MiB for 19,500 nodes in `env` entries, 9.3 MiB for a flow list of
/// 19,000 scalars; docs/robustness.md).
const NODES_KIB: i64 = 12 * 1024;

const DEPLOYMENT_META: &str =
    "kind: Deployment\nmetadata:\n  name: gitlab-runner\n  namespace: \"gitlab-test\"\n";

/// The chart's runner Deployment with `extra` lines after its metadata's name and namespace.
fn with_deployment_metadata(extra: &str) -> String {
    assert!(RENDER.contains(DEPLOYMENT_META));
    RENDER.replace(DEPLOYMENT_META, &format!("{DEPLOYMENT_META}{extra}"))
}

/// The runner container's `env` list with `n` more entries.
fn with_env(n: usize) -> String {
    let env = "        env:        \n";
    assert!(RENDER.contains(env));
    let entries: String = (0..n)
        .map(|i| format!("        - name: E{i}\n          value: \"v\"\n"))
        .collect();
    RENDER.replace(env, &format!("{env}{entries}"))
}

/// The runner Deployment (the stream's last document) with a top-level flow list of `n` scalars,
/// the densest YAML: a node per two bytes.
fn with_flow_list(n: usize) -> String {
    assert!(RENDER.rfind("\n---").unwrap() < RENDER.find(DEPLOYMENT_META).unwrap());
    format!("{RENDER}x: [{}a]\n", "a,".repeat(n - 1))
}

#[track_caller]
fn assert_patched(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("pull_policy = [\"if-not-present\"]"));
}

#[track_caller]
fn assert_refused(out: &std::process::Output, wanted: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(stderr.contains(wanted), "{stderr}");
}

const DEPLOYMENT: &str = "Deployment gitlab-test/gitlab-runner (document 6, line 215, gitlab-runner/templates/deployment.yaml): ";

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

/// 15,000 entries (a 1.05 MB TOML in a 1.3 MB ConfigMap, under the document limit): refused
/// before any of it is parsed as TOML, naming the ConfigMap, the key and the limit, with nothing
/// on stdout. The ConfigMap is read as YAML first: serde-saphyr holds a block scalar up to three
/// times while reading it (docs/robustness.md), within the edit's allowance.
#[test]
fn a_toml_over_the_limit_is_refused_early() {
    let input = with_runners(15_000, "");
    let (out, peak) = measure(&input);
    assert_refused(
        &out,
        "ConfigMap gitlab-test/gitlab-runner (document 3, line 29, gitlab-runner/templates/configmap.yaml) data[\"config.template.toml\"]: the TOML has 1290000 bytes, more than the 1 MiB (1048576 bytes) Kubernetes accepts",
    );
    assert_within(&input, peak, TOML_EDIT_KIB, "TOML over the 1 MiB limit");
}

/// 60,000 entries (a 5 MB ConfigMap): refused on its size, before it is parsed as YAML.
#[test]
fn a_runner_configmap_over_the_document_limit_is_refused_before_parsing() {
    let input = with_runners(60_000, "");
    let (out, peak) = measure(&input);
    assert_refused(
        &out,
        "ConfigMap gitlab-test/gitlab-runner (document 3, line 29, gitlab-runner/templates/configmap.yaml): its YAML has 6124157 bytes, more than the 1.5 MiB (1572864 bytes)",
    );
    assert_within(&input, peak, 0, "5 MB runner ConfigMap");
}

/// A 10 MB annotation on the runner Deployment (4.9 × the input before the limit): refused before
/// parsing. Just under the limit, it is patched within the bound.
#[test]
fn a_big_annotation_on_the_deployment_is_refused_or_patched_within_the_bound() {
    let annotated = |n: usize| {
        with_deployment_metadata(&format!("  annotations:\n    big: \"{}\"\n", "x".repeat(n)))
    };
    let input = annotated(10_000_000);
    let (out, peak) = measure(&input);
    assert_refused(&out, &format!("{DEPLOYMENT}its YAML has 10003195 bytes"));
    assert_within(&input, peak, 0, "10 MB annotation");

    let input = annotated(1_500_000);
    let (out, peak) = measure(&input);
    assert_patched(&out);
    assert_within(&input, peak, NODES_KIB, "1.5 MB annotation");
}

/// 100,000 `env` entries (4.9 MB, 267 MB of peak before the limits): refused on size; 4,000
/// (180 KB, 20,000 nodes) on the node limit while it is read; 3,900 are patched within the bound.
#[test]
fn a_huge_env_list_is_refused_or_patched_within_the_bound() {
    let input = with_env(100_000);
    let (out, peak) = measure(&input);
    assert_refused(&out, &format!("{DEPLOYMENT}its YAML has"));
    assert_within(&input, peak, 0, "100,000 env entries");

    let input = with_env(4_000);
    let (out, peak) = measure(&input);
    assert_refused(&out, &format!("{DEPLOYMENT}more than 20,000 YAML nodes"));
    // Up to 20,000 nodes are held once before the refusal: a quarter of the edit's allowance.
    assert_within(&input, peak, NODES_KIB / 4, "4,000 env entries");

    let input = with_env(3_900);
    let (out, peak) = measure(&input);
    assert_patched(&out);
    assert_within(&input, peak, NODES_KIB, "3,900 env entries");
}

/// The densest YAML, `[a,a,a,…]`: 700,000 scalars (1.4 MB, under the size limit) are refused on
/// the node limit within 3 × the input; 19,000 are patched within the bound.
#[test]
fn a_dense_flow_list_is_refused_or_patched_within_the_bound() {
    let input = with_flow_list(700_000);
    let (out, peak) = measure(&input);
    assert_refused(&out, &format!("{DEPLOYMENT}more than 20,000 YAML nodes"));
    assert_within(&input, peak, 0, "flow list of 700,000");

    let input = with_flow_list(19_000);
    let (out, peak) = measure(&input);
    assert_patched(&out);
    assert_within(&input, peak, NODES_KIB, "flow list of 19,000");
}

/// A 10 MB ConfigMap that is not the runner's is copied untouched, within 3 × the input.
#[test]
fn a_huge_pass_through_document_is_copied_within_the_bound() {
    let big = "x".repeat(10_000_000);
    let input = format!(
        "{RENDER}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  big: \"{big}\"\n"
    );
    let (out, peak) = measure(&input);
    assert_patched(&out);
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(&format!("  big: \"{big}\"\n")));
    assert_within(&input, peak, 0, "10 MB pass-through ConfigMap");
}
