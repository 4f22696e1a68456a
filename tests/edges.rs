//! Edges of issue 12 that need generated inputs (the other edges are golden cases): two registry
//! hosts whose generated ConfigMap names would collide are refused, naming both; a TOML too large
//! to parse is refused with the limit it hits.

mod common;

use std::path::PathBuf;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/golden")
        .join(name)
        .join("input.yaml");
    std::fs::read_to_string(path).unwrap()
}

fn spec(hosts: &[&str]) -> String {
    let mut text = String::from(
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  certificates:\n",
    );
    for host in hosts {
        text.push_str(&format!(
            "    - host: {host}\n      for: registry\n      file: certs/registry.crt\n"
        ));
    }
    text
}

fn run(spec_text: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    common::write_set(&dir.path().join("certs"));
    std::fs::write(dir.path().join("spec.yaml"), spec_text).unwrap();
    common::run_with_stdin(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["--config", "spec.yaml"])
            .env_remove("HELM_PLUGIN_NAME"),
        &fixture("helm3-runner-0.92.0-base"),
    )
}

#[test]
fn refuses_hosts_whose_generated_names_collide() {
    let out = run(&spec(&["reg.example.com", "reg-example.com"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    assert!(
        stderr.contains("spec.certificates[1].host")
            && stderr.contains("\"reg-example.com\"")
            && stderr.contains("spec.certificates[0].host \"reg.example.com\"")
            && stderr.contains("gitlab-runner-registry-reg-example-com"),
        "{stderr}"
    );
}

#[test]
fn distinct_names_are_accepted() {
    let out = run(&spec(&["reg.example.com", "other.example.com"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let docs = common::docs(&String::from_utf8(out.stdout).unwrap());
    for name in [
        "gitlab-runner-registry-reg-example-com",
        "gitlab-runner-registry-other-example-com",
    ] {
        common::find(&docs, "ConfigMap", name);
    }
}

/// The env edits `register`'s conflict handling asks for, through the in-place editor, on the
/// chart's real Deployment: only the lines of the changed entries change.
#[test]
fn env_edits_change_only_their_lines() {
    use runner_patch::release::pod::{EnvEdit, PodPatch, apply};
    let input = fixture("helm3-runner-0.92.0-base");
    let stream = runner_patch::manifest::stream::split(&input);
    let doc = stream
        .docs
        .iter()
        .find(|d| d.body.contains("kind: Deployment"))
        .unwrap();
    let before = runner_patch::manifest::yaml::parse(doc.body).unwrap();
    let mut after = before.clone();
    let patch = PodPatch {
        env: vec![
            EnvEdit::Set {
                name: "RUNNER_EXECUTOR".into(),
                value: "kubernetes".into(),
            },
            EnvEdit::Drop {
                name: "REGISTER_LOCKED".into(),
            },
            EnvEdit::Set {
                name: "SESSION_SERVER_ADDRESS".into(),
                value: "on".into(),
            },
            EnvEdit::Set {
                name: "KUBERNETES_PULL_POLICY".into(),
                value: "if-not-present".into(),
            },
        ],
        ..Default::default()
    };
    assert!(apply(&mut after, 0, &patch).unwrap());
    let edited = runner_patch::manifest::edit::rewrite(doc.body, &before, &after)
        .unwrap()
        .unwrap();
    let removed: Vec<&str> = doc
        .body
        .lines()
        .filter(|l| !edited.lines().any(|e| e == *l))
        .collect();
    assert_eq!(
        removed,
        [
            "        - name: REGISTER_LOCKED",
            "          value: \"true\"",
            "          value:"
        ]
    );
    assert!(
        edited.contains(
            "        - name: SESSION_SERVER_ADDRESS\n          value: \"on\"\n        - name: KUBERNETES_PULL_POLICY\n          value: if-not-present\n        livenessProbe:"
        ),
        "{edited}"
    );
}

/// A `config.toml` (`runners.configOverride`) whose runners are written inline and too many to
/// parse is refused with the size limit it hits, not as "no [[runners]]".
#[test]
fn inline_runners_past_the_size_limit_name_the_limit() {
    let input = fixture("helm3-runner-0.92.0-base");
    // config.toml and config.template.toml are replaced by a config.toml with inline runners.
    let start = input.find("  config.toml: |\n").unwrap();
    let after_template = input.find("  register-the-runner: |").unwrap();
    let runners = vec!["{}"; 100_000].join(", ");
    let input = format!(
        "{}  config.toml: |\n    concurrent = 1\n    runners = [{runners}]\n{}",
        &input[..start],
        &input[after_template..]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("spec.yaml"),
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  pullPolicy: always\n",
    )
    .unwrap();
    let out = common::run_with_stdin(
        Command::new(BIN)
            .current_dir(dir.path())
            .args(["--config", "spec.yaml"])
            .env_remove("HELM_PLUGIN_NAME"),
        &input,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("data[\"config.toml\"]")
            && stderr.contains("refuses more than 100000")
            && !stderr.contains("no [[runners]]"),
        "{stderr}"
    );
}
