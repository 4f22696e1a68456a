//! Parse, don't validate, measured: the spec's `runnerToml` is parsed once per run (when the spec
//! is compiled) and each byte of each runner ConfigMap's TOML once per release — piece by piece,
//! one `[[runners]]` entry at a time, never twice — however many checks read it (template
//! warnings, chart keys, the job namespace for certificates, the edit itself).
//!
//! Tests run one after another here: the parse counters are process-wide.

use std::sync::Mutex;

use runner_patch::manifest::yaml;
use runner_patch::release::toml;
use runner_patch::spec::{self, fragment};

/// The counters are process-wide: one test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The bytes of the runner TOMLs of a stream (`config.template.toml`, or `config.toml` with
/// runners), and how many `[[runners]]` entries they hold.
fn runner_tomls(stream: &str) -> (usize, usize) {
    let (mut bytes, mut entries) = (0, 0);
    for doc in format!("\n{stream}").split("\n---") {
        let Ok(value) = yaml::parse(doc.split_once('\n').map_or("", |(_, rest)| rest)) else {
            continue;
        };
        let data = &value["data"];
        let text = data["config.template.toml"].as_str().or_else(|| {
            data["config.toml"]
                .as_str()
                .filter(|t| t.contains("[[runners]]"))
        });
        if let Some(text) = text {
            bytes += text.len();
            entries += text.matches("[[runners]]").count();
        }
    }
    (bytes, entries)
}

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
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (toml_bytes, _) = runner_tomls(INPUT);
    assert!(toml_bytes > 0);
    let bytes = toml::parsed_bytes();
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
        "one TOML parse per runner ConfigMap (one [[runners]] entry each)"
    );
    assert_eq!(
        toml::parsed_bytes() - bytes,
        toml_bytes,
        "every byte of the runner TOMLs parsed once"
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
    assert_eq!(
        toml::parsed_bytes() - bytes,
        toml_bytes + runner_tomls(&outcome.output).0
    );
    assert_eq!(fragment::parse_count() - fragments, 1);
}

/// A `config.toml` with globals before and after several `[[runners]]` entries in every form:
/// one parse per entry (plus the globals before them), every byte once, none twice.
#[test]
fn toml_once_per_entry_never_twice() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/golden/toml-config-override-runners-in-every-form"
    );
    let input = std::fs::read_to_string(format!("{dir}/input.yaml")).unwrap();
    let spec_text = std::fs::read_to_string(format!("{dir}/spec.yaml")).unwrap();
    let (toml_bytes, headers) = runner_tomls(&input);
    assert!(headers >= 2, "the case has several [[runners]] headers");
    let compiled = spec::load(&spec_text, "spec.yaml")
        .and_then(spec::Draft::compile)
        .expect("the spec compiles");
    let (pieces, bytes) = (toml::parse_count(), toml::parsed_bytes());
    let outcome = runner_patch::patch(&input, &compiled).expect("the stream patches");
    assert_ne!(outcome.output, input);
    assert_eq!(
        toml::parsed_bytes() - bytes,
        toml_bytes,
        "every byte of the TOML parsed exactly once"
    );
    assert_eq!(
        toml::parse_count() - pieces,
        headers + 1,
        "one parse per [[runners]] header, plus the globals before the first"
    );
}
