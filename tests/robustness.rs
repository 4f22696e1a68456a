//! Property tests and large inputs: no panic, no hang; idempotence, determinism, untouched
//! documents byte-identical and the document count preserved, for streams assembled from real
//! runner documents, odd but valid documents and arbitrary text.

use proptest::prelude::*;
use runner_patch::manifest::stream;
use runner_patch::spec::CompiledPatch;

const BASE: &str = include_str!("../testdata/golden/helm3-runner-0.92.0-base/input.yaml");
const HELM4: &str = include_str!("../testdata/golden/helm4-runner-0.92.0-base/input.yaml");
const SPEC: &str = include_str!("../examples/runner-patch.yaml");

fn spec() -> CompiledPatch {
    runner_patch::spec::load(SPEC, "example")
        .and_then(runner_patch::spec::Draft::compile)
        .unwrap()
}

/// Documents that must pass through untouched, some of them hostile.
const ODD: &[&str] = &[
    "---\n",
    "---\n# only a comment\n",
    "--- |\n  top-level block with check-live\n",
    "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: \"on\"\n",
    "---\nkind: ConfigMap\nmetadata:\n  name: lookalike\ndata:\n  entrypoint: x\n  check-live: y\n",
    "---\n{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"j\"}}\n",
    "---\na: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n...\n",
    "---\r\nkind: Crlf\r\nmetadata:\r\n  name: c\r\n",
    "---\nkey: first\nkey: second\n",
    "---\n\tbad: tab indentation\n",
    "---\nx: [unclosed\n",
];

fn docs_of(text: &str) -> Vec<String> {
    let s = stream::split(text);
    s.docs
        .iter()
        .map(|d| format!("{}{}{}", d.head, d.body, d.tail))
        .collect()
}

fn runner_docs() -> Vec<String> {
    docs_of(BASE)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn split_then_join_is_identity(text in "(\u{feff})?([-.#a-z: \t\r\n|>&*\\[\\]{}\"']{0,40}\n?){0,30}") {
        prop_assert_eq!(stream::join(&stream::split(&text)), text);
    }

    #[test]
    fn patch_never_panics_and_converges(
        picks in proptest::collection::vec(0usize..(ODD.len() + 3), 0..12),
        garbage in proptest::collection::vec("[ -~\t\n]{0,60}", 0..3),
        helm4 in any::<bool>(),
    ) {
        let spec = spec();
        let runner = if helm4 { docs_of(HELM4) } else { runner_docs() };
        let mut input = String::new();
        for p in &picks {
            match p.checked_sub(ODD.len()) {
                None => input.push_str(ODD[*p]),
                Some(0) => input.push_str(&runner.concat()),
                Some(_) => {
                    for g in &garbage {
                        input.push_str("---\n");
                        input.push_str(g);
                        input.push('\n');
                    }
                }
            }
        }
        let first = runner_patch::patch(&input, &spec);
        let second = runner_patch::patch(&input, &spec);
        match (&first, &second) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(&a.output, &b.output, "not deterministic");
                let again = runner_patch::patch(&a.output, &spec).expect("patching the output must succeed");
                prop_assert_eq!(&again.output, &a.output, "not idempotent");
                let (before, after) = (docs_of(&input), docs_of(&a.output));
                prop_assert_eq!(before.len(), after.len(), "document count changed");
                for (x, y) in before.iter().zip(&after) {
                    if x != y {
                        prop_assert!(y.contains("check-live") || y.contains("/configmaps/entrypoint"), "a non-runner document changed:\n{}", x);
                    }
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            _ => prop_assert!(false, "runs disagree"),
        }
    }
}

#[test]
fn a_100_mb_scalar_passes_through() {
    let big = "x".repeat(100 << 20);
    let input = format!(
        "{BASE}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: {big}\n"
    );
    let out = runner_patch::patch(&input, &spec()).unwrap();
    assert!(out.output.ends_with(&format!("  blob: {big}\n")));
    assert_eq!(out.releases.len(), 1);
}

/// The runner ConfigMap of `BASE` with a `blob.txt` value that makes its YAML `body_len` bytes.
fn runner_configmap_of_size(body_len: usize) -> String {
    let with = |blob: &str| {
        BASE.replace(
            "  check-live: |\n",
            &format!("  blob.txt: {blob}\n  check-live: |\n"),
        )
    };
    let configmap_len = |text: &str| {
        stream::split(text)
            .docs
            .iter()
            .find(|d| d.body.contains("check-live"))
            .unwrap()
            .body
            .len()
    };
    let without_blob = configmap_len(&with(""));
    let input = with(&"y".repeat(body_len - without_blob));
    assert_eq!(configmap_len(&input), body_len);
    input
}

#[test]
fn a_large_value_inside_the_runner_configmap_is_kept() {
    let input = runner_configmap_of_size(runner_patch::release::locate::MAX_TARGET_BYTES);
    let out = runner_patch::patch(&input, &spec()).unwrap();
    let blob = "y".repeat(1 << 20);
    assert!(out.output.contains(&format!("  blob.txt: {blob}")));
    assert!(out.output.contains("[[runners.kubernetes.host_aliases]]"));
}

/// One byte over 1.5 MiB: refused before it is parsed, naming the document, its size, the limit
/// and why (what the API server can store).
#[test]
fn a_runner_configmap_over_the_limit_is_refused() {
    let limit = runner_patch::release::locate::MAX_TARGET_BYTES;
    assert_eq!(limit, 1_572_864);
    let input = runner_configmap_of_size(limit + 1);
    let err = runner_patch::patch(&input, &spec()).unwrap_err();
    assert!(
        matches!(err, runner_patch::error::Error::TooLarge { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with("ConfigMap gitlab-test/gitlab-runner (document 3, line 29, gitlab-runner/templates/configmap.yaml): its YAML has 1572865 bytes, more than the 1.5 MiB (1572864 bytes)")
            && message.contains("the Kubernetes API server stores no object that large"),
        "{message}"
    );
}
