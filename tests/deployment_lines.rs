//! The line property of the in-place Deployment edit (issue 12): the output Deployment contains
//! every line of the input Deployment, byte for byte and in order, except the line holding the
//! `checksum/configmap` value. Checked on every golden case that succeeds, and on every real
//! chart render in testdata/golden (`helm3-*`, `helm4-*`) patched with a spec that touches every
//! part of the pod template (new and existing host alias IPs, volumes, mounts, checksum).

use std::path::{Path, PathBuf};

use runner_patch::manifest::stream;
use serde_json::Value;

fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden")
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

fn is_checksum_line(line: &str) -> bool {
    let t = line.trim_start().trim_start_matches('"');
    t.starts_with("checksum/configmap")
}

/// A key whose value is null or an empty collection (`hostAliases: null`, `volumes: []`): when
/// the patch fills it, the value, on that line, is what changes. The only other line allowed to.
fn is_empty_value_line(line: &str) -> bool {
    let value = line
        .trim_end()
        .rsplit_once(':')
        .map_or("", |(_, v)| v.trim());
    matches!(value, "null" | "~" | "[]" | "{}" | "Null" | "NULL")
}

/// `before` without the env entries (`- name: X` and the lines under it) that `after` no longer
/// has, for env vars that shadow a runner TOML key: with `envConflicts: replace` the patch removes
/// those, and nothing else.
fn without_removed_env(before: &str, after: &str) -> String {
    let removed = |name: &str| {
        runner_patch::spec::runner::env_bindings()
            .iter()
            .any(|b| b.env == name)
            && !after
                .lines()
                .any(|l| l.trim_start().strip_prefix("- name: ") == Some(name))
    };
    let mut out = String::new();
    let mut skipping: Option<usize> = None;
    for line in before.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        if let Some(dash) = skipping {
            if indent > dash && !line.trim().is_empty() {
                continue;
            }
            skipping = None;
        }
        if let Some(name) = line.trim().strip_prefix("- name: ")
            && removed(name.trim_matches('"'))
        {
            skipping = Some(indent);
            continue;
        }
        out.push_str(line);
    }
    out
}

/// The header line of a block scalar that ends `text` without a line break, and that line with
/// strip chomping: when lines are added after such a scalar, its header becomes `|-` so that it
/// keeps its value (review1 finding 4). The only other line allowed to change.
fn strip_chomped_header(text: &str) -> Option<(usize, String)> {
    let header = runner_patch::manifest::yaml::strip_chomping_at_end_of_input(text)?;
    let stripped = [&text[..header.start], "-", &text[header.end..]].concat();
    let index = text[..header.start].matches('\n').count();
    Some((index, stripped.lines().nth(index)?.to_owned()))
}

/// Every line of `before` (but the checksum line) appears in `after`, in order.
fn keeps_every_line(before: &str, after: &str) -> Result<(), String> {
    let stripped = strip_chomped_header(before);
    let mut rest = after.lines();
    for (i, line) in before.lines().enumerate() {
        if let Some((at, header)) = &stripped
            && *at == i
        {
            if !rest.any(|l| l == line || l == header) {
                return Err(format!("input line {} {line:?} is missing or moved", i + 1));
            }
            continue;
        }
        if is_checksum_line(line) {
            continue;
        }
        if is_empty_value_line(line) {
            // Its key must still be there (checked as a prefix); the value may be filled.
            let key = line.trim_end().rsplit_once(':').map_or(line, |(k, _)| k);
            if !rest.any(|l| l.starts_with(key)) {
                return Err(format!("input line {} {line:?} is missing or moved", i + 1));
            }
            continue;
        }
        if !rest.any(|l| l == line) {
            return Err(format!("input line {} {line:?} is missing or moved", i + 1));
        }
    }
    Ok(())
}

/// Checks the property for every Deployment of `input`; returns how many were checked (and how
/// many of them changed).
fn check_stream(what: &str, input: &str, output: &str) -> (usize, usize) {
    let a = stream::split(input);
    let b = stream::split(output);
    assert!(
        b.docs.len() >= a.docs.len(),
        "{what}: documents went missing"
    );
    let (mut checked, mut changed) = (0, 0);
    for (x, y) in a.docs.iter().zip(&b.docs) {
        let Ok(value) = runner_patch::manifest::yaml::parse(x.body) else {
            continue;
        };
        if value.get("kind").and_then(Value::as_str) != Some("Deployment") {
            continue;
        }
        checked += 1;
        if x.body != y.body {
            changed += 1;
        }
        let text_in = without_removed_env(
            &format!("{}{}{}", x.head, x.body, x.tail),
            &format!("{}{}{}", y.head, y.body, y.tail),
        );
        let text_out = format!("{}{}{}", y.head, y.body, y.tail);
        if let Err(e) = keeps_every_line(&text_in, &text_out) {
            panic!("{what}: Deployment (document {}): {e}", x.index);
        }
    }
    (checked, changed)
}

#[test]
fn every_golden_output_keeps_every_deployment_line() {
    let (mut checked, mut changed) = (0, 0);
    for case in cases() {
        let Ok(output) = std::fs::read_to_string(case.join("expected.yaml")) else {
            continue;
        };
        let input = std::fs::read_to_string(case.join("input.yaml")).unwrap();
        let (c, d) = check_stream(&case.display().to_string(), &input, &output);
        checked += c;
        changed += d;
    }
    assert!(
        checked >= 30 && changed >= 25,
        "only {checked} Deployments checked ({changed} changed)"
    );
}

/// Touches every list and key the pod patch writes: a host alias for an IP the chart's
/// `hostAliases` may already map (merged into that entry), one for a new IP, a volume and a mount.
const SPEC: &str = r#"apiVersion: runner-patch.dev/v1alpha1
kind: RunnerPatch
metadata:
  name: lines
spec:
  hostAliases:
    - ip: 192.168.80.3
      hostnames: [extra.test.helm.example.com]
      applyTo: [manager]
    - ip: 10.9.8.7
      hostnames: [registry.lines.example.com]
  manager:
    volumes:
      - name: lines-ca
        configMap:
          name: lines-ca
    volumeMounts:
      - name: lines-ca
        mountPath: /etc/lines-ca
        readOnly: true
"#;

#[test]
fn every_real_render_keeps_every_deployment_line() {
    let spec = runner_patch::spec::load(SPEC, "lines.yaml")
        .and_then(runner_patch::spec::Draft::compile)
        .unwrap();
    let mut renders = 0;
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("helm3-") || name.starts_with("helm4-")) {
            continue;
        }
        let input = std::fs::read_to_string(case.join("input.yaml")).unwrap();
        let outcome = runner_patch::patch(&input, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (checked, changed) = check_stream(&name, &input, &outcome.output);
        assert!(
            checked >= 1 && changed >= 1,
            "{name}: no Deployment patched"
        );
        // And patching again changes nothing.
        let again = runner_patch::patch(&outcome.output, &spec).unwrap();
        assert_eq!(again.output, outcome.output, "{name}: not idempotent");
        renders += 1;
    }
    assert!(renders >= 12, "only {renders} real renders found");
}

/// A keep-chomped block (`|+`) that ends the Deployment owns the blank lines after it: with one
/// added to every real render, the patch still keeps every line and the block reads the same
/// (issue 12, gap 6).
#[test]
fn a_keep_block_ending_the_deployment_keeps_its_lines() {
    let spec = runner_patch::spec::load(SPEC, "lines.yaml")
        .and_then(runner_patch::spec::Draft::compile)
        .unwrap();
    let (mut renders, mut in_pod_spec_count) = (0, 0);
    for case in cases() {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("helm3-") || name.starts_with("helm4-")) {
            continue;
        }
        let original = std::fs::read_to_string(case.join("input.yaml")).unwrap();
        let split = stream::split(&original);
        let mut input = String::from(split.bom);
        for d in &split.docs {
            input.push_str(d.head);
            input.push_str(d.body);
            if d.body.contains("/configmaps/entrypoint") && d.body.contains("kind: Deployment") {
                // As the pod spec's last key when the pod spec ends the document (new keys such
                // as `hostAliases` then go after it), else as the document's last key.
                let col = d
                    .body
                    .lines()
                    .find_map(|l| {
                        let key = l.trim_start();
                        (key == "containers:").then(|| l.len() - key.len())
                    })
                    .unwrap_or(0);
                let pad = " ".repeat(col);
                let in_pod = format!("{}{pad}runnerPatchNote: |+\n{pad}  kept\n\n{pad}\n", d.body);
                let in_pod_spec = runner_patch::manifest::yaml::parse(&in_pod)
                    .ok()
                    .is_some_and(|v| v.pointer("/spec/template/spec/runnerPatchNote").is_some());
                if in_pod_spec {
                    input.truncate(input.len() - d.body.len());
                    input.push_str(&in_pod);
                    in_pod_spec_count += 1;
                } else {
                    input.push_str("runnerPatchNote: |+\n  kept\n\n  \n");
                }
            }
            input.push_str(d.tail);
        }
        let outcome = runner_patch::patch(&input, &spec).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (checked, changed) = check_stream(&name, &input, &outcome.output);
        assert!(
            checked >= 1 && changed >= 1,
            "{name}: no Deployment patched"
        );
        let notes = |text: &str| -> Vec<Value> {
            stream::split(text)
                .docs
                .iter()
                .filter_map(|d| runner_patch::manifest::yaml::parse(d.yaml).ok())
                .filter_map(|v| {
                    v.get("runnerPatchNote")
                        .or_else(|| v.pointer("/spec/template/spec/runnerPatchNote"))
                        .cloned()
                })
                .collect()
        };
        let before = notes(&input);
        assert!(!before.is_empty(), "{name}: no note added");
        assert!(
            before
                .iter()
                .all(|n| n.as_str().unwrap().starts_with("kept\n\n"))
        );
        assert_eq!(
            notes(&outcome.output),
            before,
            "{name}: the |+ block changed"
        );
        renders += 1;
    }
    assert!(renders >= 12, "only {renders} real renders found");
    assert!(
        in_pod_spec_count >= 6,
        "only {in_pod_spec_count} renders end with the pod spec"
    );
}

#[test]
fn the_property_notices_a_lost_line() {
    assert!(keeps_every_line("a: 1\nb: 2\n", "a: 1\nx: 0\nb: 2\n").is_ok());
    assert!(keeps_every_line("a: 1\nb: 2\n", "b: 2\na: 1\n").is_err());
    assert!(keeps_every_line("a: 1\nb:  2\n", "a: 1\nb: 2\n").is_err());
    assert!(keeps_every_line("  checksum/configmap: x\n", "  checksum/configmap: y\n").is_ok());
    assert!(keeps_every_line("  hostAliases: null\n", "  hostAliases:\n  - ip: x\n").is_ok());
    assert!(keeps_every_line("  hostAliases: null\n", "  other:\n").is_err());
    assert!(keeps_every_line("a: |\n  x", "a: |-\n  x\nb: 1").is_ok());
    assert!(keeps_every_line("a: |\n  x\n", "a: |-\n  x\nb: 1\n").is_err());
}
