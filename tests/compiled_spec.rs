//! Parse, don't validate, measured: the spec's `runnerToml` is parsed once per run (when the spec
//! is compiled) and each runner ConfigMap's TOML once per release, however many checks read it
//! (template warnings, the job namespace for certificates, the edit itself).
//!
//! One test in its own binary: the parse counters are process-wide.

use runner_patch::release::toml;
use runner_patch::spec::{self, fragment};

const INPUT: &str = include_str!("../testdata/golden/two-releases/input.yaml");

const SPEC: &str = "apiVersion: runner-patch.dev/v1alpha1
kind: RunnerPatch
spec:
  hostAliases:
    - ip: 172.25.25.32
      hostnames: [gitlab.test.example.com]
  pullPolicy: [if-not-present]
  allowedPullPolicies: [if-not-present, always]
  runnerToml: |
    [runners.kubernetes]
    privileged = true
  certificates:
    - host: gitlab.test.example.com
      for: gitlab
      configMap: {name: gitlab-ca, key: ca.crt}
";

#[test]
fn fragment_once_per_run_and_toml_once_per_configmap() {
    let fragments = fragment::parse_count();
    let tomls = toml::parse_count();
    let compiled = spec::load(SPEC, "spec.yaml")
        .and_then(spec::Draft::compile)
        .expect("the spec compiles");
    assert_eq!(
        fragment::parse_count() - fragments,
        1,
        "compiling parses the fragment once"
    );

    let outcome = runner_patch::patch(INPUT, &compiled).expect("the stream patches");
    assert_eq!(outcome.releases.len(), 2, "{:?}", outcome.releases);
    assert_ne!(outcome.output, INPUT, "both releases were patched");
    assert_eq!(
        toml::parse_count() - tomls,
        2,
        "one TOML parse per runner ConfigMap"
    );
    assert_eq!(
        fragment::parse_count() - fragments,
        1,
        "patching does not parse the fragment again"
    );

    // Patching the output again (idempotence) costs the same: one parse per ConfigMap.
    let again = runner_patch::patch(&outcome.output, &compiled).expect("the output patches");
    assert_eq!(again.output, outcome.output);
    assert_eq!(toml::parse_count() - tomls, 4);
    assert_eq!(fragment::parse_count() - fragments, 1);
}
