//! Golden cases: `testdata/golden/<case>/` holds `input.yaml`, optionally `spec.yaml` (passed as
//! `--config`) and `args` (one extra argument per line), and either `expected.yaml` or
//! `expected.stderr` + `expected.status`. The real binary runs with the case directory as its
//! working directory and the input on stdin; bytes are compared exactly.
//!
//! Every successful case is also checked for idempotence (patching the output changes nothing),
//! determinism (a second run gives the same bytes), passthrough (every document that differs from
//! the input is a runner ConfigMap or Deployment, and the document count is unchanged) and
//! Kubernetes validity (changed documents read into k8s-openapi types without losing a field).
//!
//! Re-bless with `RUNNER_PATCH_BLESS=1 cargo test --test golden`, then review `git diff testdata`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("testdata/golden exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no golden cases found under {}",
        root.display()
    );
    let trials = cases
        .into_iter()
        .map(|dir| {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            Trial::test(name, move || run_case(&dir))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

struct Run {
    status: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn run_binary(dir: &Path, input: &[u8]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner-patch"));
    cmd.current_dir(dir)
        .env_remove("RUNNER_PATCH_CONFIG")
        .env_remove("HELM_PLUGIN_NAME");
    if dir.join("spec.yaml").is_file() {
        cmd.arg("--config").arg("spec.yaml");
    }
    if let Ok(extra) = std::fs::read_to_string(dir.join("args")) {
        cmd.args(extra.lines().filter(|l| !l.is_empty()));
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

fn bless() -> bool {
    std::env::var_os("RUNNER_PATCH_BLESS").is_some()
}

fn run_case(dir: &Path) -> Result<(), Failed> {
    let input = std::fs::read(dir.join("input.yaml")).unwrap();
    let first = run_binary(dir, &input);
    let second = run_binary(dir, &input);
    if first.stdout != second.stdout
        || first.stderr != second.stderr
        || first.status != second.status
    {
        return Err("not deterministic: two runs differ".into());
    }
    let expected_yaml = dir.join("expected.yaml");
    let expected_stderr = dir.join("expected.stderr");
    let expected_status = dir.join("expected.status");
    if bless() {
        let _ = std::fs::remove_file(&expected_yaml);
        let _ = std::fs::remove_file(&expected_stderr);
        let _ = std::fs::remove_file(&expected_status);
        if first.status == 0 {
            std::fs::write(&expected_yaml, &first.stdout).unwrap();
            if !first.stderr.is_empty() {
                std::fs::write(&expected_stderr, &first.stderr).unwrap();
            }
        } else {
            std::fs::write(&expected_stderr, &first.stderr).unwrap();
            std::fs::write(&expected_status, format!("{}\n", first.status)).unwrap();
        }
    }
    if expected_yaml.is_file() {
        if first.status != 0 {
            return Err(format!(
                "exit status {}; stderr:\n{}",
                first.status,
                String::from_utf8_lossy(&first.stderr)
            )
            .into());
        }
        let want = std::fs::read(&expected_yaml).unwrap();
        compare("stdout", &want, &first.stdout)?;
        let want_err = std::fs::read(&expected_stderr).unwrap_or_default();
        compare("stderr", &want_err, &first.stderr)?;
        // Idempotence: the output is a fixed point.
        let again = run_binary(dir, &first.stdout);
        if again.status != 0 {
            return Err(format!(
                "patching the output failed: {}",
                String::from_utf8_lossy(&again.stderr)
            )
            .into());
        }
        compare(
            "idempotence (patch of expected.yaml)",
            &first.stdout,
            &again.stdout,
        )?;
        check_passthrough(&input, &first.stdout)?;
        Ok(())
    } else if expected_stderr.is_file() {
        let want = std::fs::read_to_string(&expected_stderr).unwrap();
        compare("stderr", want.as_bytes(), &first.stderr)?;
        let status: i32 = std::fs::read_to_string(&expected_status)
            .map_err(|_| "expected.status missing")?
            .trim()
            .parse()
            .unwrap();
        if first.status != status {
            return Err(format!("exit status {} (want {status})", first.status).into());
        }
        if !first.stdout.is_empty() {
            return Err("stdout must be empty on error".into());
        }
        Ok(())
    } else {
        Err("case has neither expected.yaml nor expected.stderr (bless it with RUNNER_PATCH_BLESS=1)".into())
    }
}

fn compare(what: &str, want: &[u8], got: &[u8]) -> Result<(), Failed> {
    if want == got {
        return Ok(());
    }
    let want = String::from_utf8_lossy(want);
    let got = String::from_utf8_lossy(got);
    let line = want
        .lines()
        .zip(got.lines())
        .position(|(a, b)| a != b)
        .unwrap_or_else(|| want.lines().count().min(got.lines().count()));
    Err(format!(
        "{what} differs (first difference at line {}):\n--- want\n{}\n--- got\n{}",
        line + 1,
        want.lines()
            .skip(line.saturating_sub(2))
            .take(8)
            .collect::<Vec<_>>()
            .join("\n"),
        got.lines()
            .skip(line.saturating_sub(2))
            .take(8)
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .into())
}

/// Documents that differ must be runner targets, and must be valid Kubernetes objects.
fn check_passthrough(input: &[u8], output: &[u8]) -> Result<(), Failed> {
    let input = std::str::from_utf8(input).unwrap();
    let output = std::str::from_utf8(output).unwrap();
    let a = runner_patch::manifest::stream::split(input);
    let b = runner_patch::manifest::stream::split(output);
    if a.docs.len() != b.docs.len() {
        return Err(format!(
            "document count changed: {} → {}",
            a.docs.len(),
            b.docs.len()
        )
        .into());
    }
    for (x, y) in a.docs.iter().zip(&b.docs) {
        let same = x.head == y.head && x.body == y.body && x.tail == y.tail;
        if same {
            continue;
        }
        // The blank lines after the content may end up inside it (a new key after a `|+` block
        // that ends the document goes after them); comments and markers after it stay.
        if x.head != y.head || x.after_yaml() != y.after_yaml() {
            return Err(format!("document {}: head or tail changed", x.index).into());
        }
        let before = runner_patch::manifest::yaml::parse(x.yaml)
            .map_err(|e| format!("document {}: {e}", x.index))?;
        let after = runner_patch::manifest::yaml::parse(y.yaml)
            .map_err(|e| format!("document {} (output): {e}", y.index))?;
        let kind = after.get("kind").and_then(Value::as_str).unwrap_or("");
        let target = (kind == "ConfigMap" && y.body.contains("check-live"))
            || (kind == "Deployment" && y.body.contains("/configmaps/entrypoint"));
        if !target {
            return Err(
                format!("document {} ({kind}) was not a target but changed", x.index).into(),
            );
        }
        if before.get("metadata").map(|m| m.get("annotations"))
            != after.get("metadata").map(|m| m.get("annotations"))
        {
            return Err(format!("document {}: metadata.annotations changed", x.index).into());
        }
        strict_kubernetes(kind, &after)
            .map_err(|e| format!("document {} ({kind}) is not a valid object: {e}", y.index))?;
    }
    Ok(())
}

/// Reads the object into its k8s-openapi type and back; any field that does not survive is unknown
/// to Kubernetes (strict validation, like `kubectl --validate=strict`).
fn strict_kubernetes(kind: &str, value: &Value) -> Result<(), String> {
    let back = match kind {
        "Deployment" => serde_json::to_value(
            serde_json::from_value::<k8s_openapi::api::apps::v1::Deployment>(value.clone())
                .map_err(|e| e.to_string())?,
        ),
        "ConfigMap" => serde_json::to_value(
            serde_json::from_value::<k8s_openapi::api::core::v1::ConfigMap>(value.clone())
                .map_err(|e| e.to_string())?,
        ),
        _ => return Ok(()),
    }
    .unwrap();
    let (a, b) = (prune(value), prune(&back));
    if a != b {
        return Err(
            first_difference(&a, &b, String::new()).unwrap_or_else(|| "values differ".into())
        );
    }
    Ok(())
}

/// Drops nulls and empty containers, which Kubernetes treats as absent.
fn prune(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), prune(v)))
                .filter(|(_, v)| {
                    !v.is_null()
                        && v != &Value::Object(Default::default())
                        && v != &Value::Array(vec![])
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(prune).collect()),
        other => other.clone(),
    }
}

fn first_difference(a: &Value, b: &Value, path: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("unknown field {path}.{k}")),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{path}: {a} became {b}")),
    }
}
