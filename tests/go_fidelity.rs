//! Fidelity against Helm's real Go YAML readers: go-yaml v2 through sigs.k8s.io/yaml (Helm 3,
//! kubectl) and yaml.v3 (kyaml, Helm 4), via `.tools/go-reader` (built from Debian's Go packages by
//! scripts/install-test-tools.sh), plus PyYAML's YAML 1.1 SafeLoader as a second opinion (`py11`,
//! tests/go-reader/py11-reader.py). Without Debian's Go packages a plain `cargo test` reports this
//! suite as ignored and says so on stderr; under scripts/test.sh a missing reader fails it.
//!
//! - Every golden output: each document runner-patch changed reads, in both Go readers, as exactly
//!   the value runner-patch meant to write; and compared with the input's Go reading, only the
//!   fields the patch owns differ.
//! - The 113 strings and 18 multi-line values of `yaml-fidelity.md` (testdata/fidelity-strings.json),
//!   written by runner-patch's emitter and by its in-place ConfigMap edit, read back unchanged.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Trial};
use serde_json::{Value, json};

mod common;

fn main() {
    let args = Arguments::from_args();
    let skip = common::tools::go_reader()
        .err()
        .is_some_and(|why| common::tools::skip_suite("go_fidelity (Helm's Go YAML readers)", &why));
    let tests: [(&str, fn()); 2] = [
        (
            "go_readers_read_every_golden_output_as_intended",
            go_readers_read_every_golden_output_as_intended,
        ),
        (
            "go_readers_read_tricky_strings_back_unchanged",
            go_readers_read_tricky_strings_back_unchanged,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            Trial::test(name, move || {
                test();
                Ok(())
            })
            .with_ignored_flag(skip)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn go_read(mode: &str, path: &Path) -> Vec<Value> {
    if mode == "py11" {
        let script = repo().join("tests/go-reader/py11-reader.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "PyYAML reader: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap();
    }
    let reader = common::tools::go_reader().unwrap_or_else(|why| panic!("{why}"));
    assert!(
        reader.is_file(),
        "{} not found: run scripts/install-test-tools.sh",
        reader.display()
    );
    let out = Command::new(&reader).arg(mode).arg(path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

fn ours(text: &str) -> Vec<(String, Value)> {
    runner_patch::manifest::stream::split(text)
        .docs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| {
            (
                d.yaml.to_owned(),
                // A document nobody can read (NUL bytes…) still counts, like Go's `__error__`.
                runner_patch::manifest::yaml::parse(d.yaml)
                    .unwrap_or(Value::String("__unparsed__".into())),
            )
        })
        .filter(|(_, v)| !v.is_null())
        .collect()
}

/// Fields a runner patch may change; everything else must read the same before and after.
fn without_owned_fields(mut v: Value) -> Value {
    for ptr in [
        "/data/config.template.toml",
        "/data/config.toml",
        "/spec/template/spec/hostAliases",
        "/spec/template/spec/volumes",
        "/spec/template/metadata/annotations/checksum~1configmap",
    ] {
        if let Some((parent, key)) = ptr.rsplit_once('/')
            && let Some(Value::Object(m)) = v.pointer_mut(parent)
        {
            m.remove(&key.replace("~1", "/"));
        }
    }
    if let Some(Value::Array(cs)) = v.pointer_mut("/spec/template/spec/containers") {
        for c in cs {
            if let Some(m) = c.as_object_mut() {
                m.remove("volumeMounts");
                // With envConflicts: replace, env vars that shadow a TOML key may go.
                if let Some(Value::Array(env)) = m.get_mut("env") {
                    env.retain(|e| {
                        let name = e.get("name").and_then(Value::as_str).unwrap_or_default();
                        !runner_patch::spec::runner::env_bindings()
                            .iter()
                            .any(|b| b.env == name)
                    });
                }
            }
        }
    }
    v
}

fn go_readers_read_every_golden_output_as_intended() {
    let root = repo().join("testdata/golden");
    let mut checked = 0;
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.yaml").is_file())
        .collect();
    cases.sort();
    for case in cases {
        let input = std::fs::read_to_string(case.join("input.yaml")).unwrap();
        let output = std::fs::read_to_string(case.join("expected.yaml")).unwrap();
        if output.is_empty() {
            continue;
        }
        let (ours_in, ours_out) = (ours(&input), ours(&output));
        for mode in ["go2", "go3", "py11"] {
            let go_in = go_read(mode, &case.join("input.yaml"));
            let go_out = go_read(mode, &case.join("expected.yaml"));
            assert_eq!(
                go_out.len(),
                ours_out.len(),
                "{}: {mode} sees another number of documents",
                case.display()
            );
            assert_eq!(
                go_in.len(),
                go_out.len(),
                "{}: {mode} document count changed",
                case.display()
            );
            for (i, ((body_in, _), (body_out, intended))) in
                ours_in.iter().zip(&ours_out).enumerate()
            {
                if body_in == body_out {
                    continue;
                }
                assert!(
                    go_out[i].get("__error__").is_none(),
                    "{} doc {i}: {mode} cannot read our output: {}",
                    case.display(),
                    go_out[i]
                );
                // go2 goes through JSON; compare through JSON on our side too.
                assert_eq!(
                    &go_out[i],
                    intended,
                    "{} doc {i}: {mode} reads something else than intended",
                    case.display()
                );
                checked += 1;
                // An input Go itself rejects (yaml.v3 refuses duplicate keys) has nothing to compare.
                if go_in[i].get("__error__").is_some() {
                    continue;
                }
                assert_eq!(
                    without_owned_fields(go_in[i].clone()),
                    without_owned_fields(go_out[i].clone()),
                    "{} doc {i}: {mode}: a field the patch does not own changed",
                    case.display()
                );
            }
        }
    }
    assert!(checked >= 40, "only {checked} changed documents checked");
}

fn go_readers_read_tricky_strings_back_unchanged() {
    let data: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("testdata/fidelity-strings.json")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::new();
    let mut expected = Vec::new();
    // Each string as its own document, and all of them as one ConfigMap's data.
    let mut all = serde_json::Map::new();
    for (i, s) in data["strings"].as_array().unwrap().iter().enumerate() {
        let doc = json!({"value": s});
        text.push_str("---\n");
        text.push_str(&runner_patch::manifest::yaml::emit(&doc).unwrap());
        expected.push(doc);
        all.insert(format!("k{i}"), s.clone());
    }
    for (k, v) in data["multiline"].as_object().unwrap() {
        all.insert(k.clone(), v.clone());
    }
    let cm =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": all});
    text.push_str("---\n");
    text.push_str(&runner_patch::manifest::yaml::emit(&cm).unwrap());
    expected.push(cm);
    // The in-place editor, for every multi-line value (a ConfigMap's TOML scalar replaced) and
    // every string (a plain scalar replaced, and a new list item and mapping key written).
    let edit = |body: &str, change: &dyn Fn(&mut Value)| {
        let old = runner_patch::manifest::yaml::parse(body).unwrap();
        let mut new = old.clone();
        change(&mut new);
        let edited = runner_patch::manifest::edit::rewrite(body, &old, &new)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .unwrap();
        (edited, new)
    };
    let mut push = |(edited, new): (String, Value)| {
        text.push_str("---\n");
        text.push_str(&edited);
        expected.push(new);
    };
    for v in data["multiline"].as_object().unwrap().values() {
        let body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: inplace\ndata:\n  before: \"on\"\n  config.template.toml:   |\n    old\n  \n  after: |\n    kept\n";
        push(edit(body, &|d| {
            d["data"]["config.template.toml"] = v.clone()
        }));
    }
    for v in data["strings"].as_array().unwrap() {
        let body = "spec:\n  env:\n  - name: A\n    value: y\n  - name: B\n    value: \"x\"\n  m:\n    k: 0644\n";
        push(edit(body, &|d| {
            d["spec"]["env"][0]["value"] = v.clone();
            d["spec"]["env"][1]["value"] = v.clone();
            d["spec"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "C", "value": v}));
            d["spec"]["m"]["new"] = v.clone();
        }));
    }
    let path = tmp.path().join("strings.yaml");
    std::fs::write(&path, &text).unwrap();
    for mode in ["go2", "go3", "py11"] {
        let got = go_read(mode, &path);
        assert_eq!(got.len(), expected.len(), "{mode}");
        for (g, e) in got.iter().zip(&expected) {
            assert_eq!(g, e, "{mode} read a different value");
        }
    }
}
