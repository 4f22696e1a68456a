//! `runner-patch diff` through the binary.
//!
//! - Golden diffs: `testdata/diff/<case>/` holds `input.yaml`, optionally `spec.yaml` (passed as
//!   `--config`) and `args` (one argument per line), and `expected.diff`; bytes are compared.
//!   Re-bless with `SNAPSHOTS=overwrite cargo test --test diff` (or `RUNNER_PATCH_BLESS=1`).
//! - Every golden case of `testdata/golden/` agrees with a run: same exit code and stderr and
//!   nothing on stdout when the run fails; otherwise `--exit-code` is 1 exactly when the run
//!   changes the stream, one header per changed document, and the run's own output diffs empty.
//! - Colour (`--color`, NO_COLOR, a real terminal through `script`), generated documents, and the
//!   real Helm 4 (`helm template | runner-patch diff`, and its post-renderer output diffs empty).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::run_with_stdin;
use runner_patch::manifest::stream;

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");
const ESC: char = '\u{1b}';

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The binary in `dir` with `args`, the colour environment cleared so that output is the same
/// wherever the tests run.
fn runner_patch(dir: &Path, args: &[String]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .args(args)
        .env_remove("RUNNER_PATCH_CONFIG")
        .env_remove("HELM_PLUGIN_NAME")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE");
    cmd
}

/// A case's arguments as the golden harness passes them: `--config spec.yaml`, then `args`.
fn case_args(dir: &Path) -> Vec<String> {
    let mut args = Vec::new();
    if dir.join("spec.yaml").is_file() {
        args.extend(["--config".to_owned(), "spec.yaml".to_owned()]);
    }
    if let Ok(extra) = fs::read_to_string(dir.join("args")) {
        args.extend(extra.lines().filter(|l| !l.is_empty()).map(str::to_owned));
    }
    args
}

fn diff_args(extra: &[&str], case: &[String]) -> Vec<String> {
    let mut args = vec!["diff".to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(case.iter().cloned());
    args
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

fn cases(root: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(repo().join(root))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("input.yaml").is_file())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases under {root}");
    cases
}

fn bless() -> bool {
    std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite")
        || std::env::var_os("RUNNER_PATCH_BLESS").is_some()
}

#[test]
fn golden_diffs() {
    let mut failures = Vec::new();
    for dir in cases("testdata/diff") {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let input = fs::read_to_string(dir.join("input.yaml")).unwrap();
        let args = case_args(&dir);
        let out = run_with_stdin(&mut runner_patch(&dir, &diff_args(&[], &args)), &input);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let got = text(&out.stdout);
        assert!(!got.is_empty(), "{name}: the case changes nothing");
        let expected_path = dir.join("expected.diff");
        if bless() {
            fs::write(&expected_path, &got).unwrap();
        }
        let want = fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!("{name}: expected.diff missing (SNAPSHOTS=overwrite cargo test --test diff)")
        });
        if got != want {
            failures.push(format!(
                "{name}: differs from expected.diff (re-bless and review)"
            ));
        }
        // Deterministic, and --exit-code only changes the status.
        let again = run_with_stdin(
            &mut runner_patch(&dir, &diff_args(&["--exit-code"], &args)),
            &input,
        );
        assert_eq!(again.status.code(), Some(1), "{name}: --exit-code");
        assert_eq!(text(&again.stdout), got, "{name}: not deterministic");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Documents whose text differs between a stream and a run's output over it (appended ones
/// included), by position.
fn changed_documents(input: &str, output: &str) -> usize {
    let before = stream::split(input);
    let after = stream::split(output);
    let doc_text = |s: &str, d: &stream::Doc<'_>| s[d.offset..d.offset + d.text_len()].to_owned();
    (0..before.docs.len().max(after.docs.len()))
        .filter(|&i| {
            before.docs.get(i).map(|d| doc_text(input, d))
                != after.docs.get(i).map(|d| doc_text(output, d))
        })
        .count()
}

#[test]
fn every_golden_case_agrees_with_a_run() {
    for dir in cases("testdata/golden") {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let input = fs::read(dir.join("input.yaml")).unwrap();
        let args = case_args(&dir);
        let run = run_bytes(&mut runner_patch(&dir, &args), &input);
        let diff = run_bytes(
            &mut runner_patch(&dir, &diff_args(&["--exit-code"], &args)),
            &input,
        );
        if !run.status.success() {
            assert_eq!(diff.status.code(), run.status.code(), "{name}: exit code");
            assert!(diff.stdout.is_empty(), "{name}: stdout on error");
            assert_eq!(text(&diff.stderr), text(&run.stderr), "{name}: stderr");
            continue;
        }
        let (input, output) = (text(&input), text(&run.stdout));
        let changed = changed_documents(&input, &output);
        let diff_text = text(&diff.stdout);
        assert_eq!(
            diff.status.code(),
            Some(if changed > 0 { 1 } else { 0 }),
            "{name}: --exit-code with {changed} changed documents\n{}",
            text(&diff.stderr)
        );
        assert_eq!(
            diff_text.lines().filter(|l| l.starts_with("=== ")).count(),
            changed,
            "{name}: one header per changed document:\n{diff_text}"
        );
        // Warnings are reported as by a run.
        assert_eq!(text(&diff.stderr), text(&run.stderr), "{name}: stderr");
        // An already patched stream prints nothing.
        let twice = run_bytes(
            &mut runner_patch(&dir, &diff_args(&["--exit-code"], &args)),
            output.as_bytes(),
        );
        assert_eq!(
            twice.status.code(),
            Some(0),
            "{name}: {}",
            text(&twice.stdout)
        );
        assert!(twice.stdout.is_empty(), "{name}: diff of the output");
    }
}

fn run_bytes(cmd: &mut Command, input: &[u8]) -> Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A run that fails early may close stdin before reading it all.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn generated_configmaps_from_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    common::write_set(&dir.path().join("certs"));
    fs::write(dir.path().join("runner-patch.yaml"), common::SPEC).unwrap();
    let input =
        fs::read_to_string(repo().join("testdata/golden/helm3-runner-0.92.0-base/input.yaml"))
            .unwrap();
    let args: Vec<String> = ["diff", "--exit-code", "--config", "runner-patch.yaml"]
        .map(str::to_owned)
        .to_vec();
    let out = run_with_stdin(&mut runner_patch(dir.path(), &args), &input);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    let ca_pem = fs::read_to_string(dir.path().join("certs/corp-root.crt")).unwrap();
    let generated =
        "=== ConfigMap gitlab-test/gitlab-runner-ca-corp-root: generated (output document ";
    let at = diff.find(generated).unwrap_or_else(|| panic!("{diff}"));
    let section = &diff[at..];
    let section = &section[..section[4..].find("=== ").map_or(section.len(), |i| i + 4)];
    assert!(
        section.contains("\n--- /dev/null\n+++ b/ConfigMap/gitlab-test/gitlab-runner-ca-corp-root (output lines)\n@@ -0,0 +"),
        "{section}"
    );
    // Every line of a new document is an addition; the certificate (public) is shown in full.
    assert!(
        section
            .lines()
            .skip_while(|l| !l.starts_with("@@"))
            .skip(1)
            .all(|l| l.starts_with('+')),
        "{section}"
    );
    for line in ca_pem.lines() {
        assert!(section.contains(&format!("    {line}\n")), "{line} missing");
    }
    // The runner TOML change is shown as TOML lines, with the CA mount the certificate needs.
    assert!(
        diff.contains("data[\"config.template.toml\"] (TOML line numbers; key at input line ")
            && diff.contains("+      mount_path = \"/etc/ssl/certs/corp-root.crt\"\n"),
        "{diff}"
    );
    assert_eq!(diff.lines().filter(|l| l.starts_with("=== ")).count(), 5);
}

fn flags_only() -> (PathBuf, String, Vec<String>) {
    let dir = repo().join("testdata/diff/flags-only-color");
    let input = fs::read_to_string(dir.join("input.yaml")).unwrap();
    let args = vec![
        "--host-alias=172.25.25.32=registry.test.example.com".to_owned(),
        "--pull-policy=IfNotPresent".to_owned(),
    ];
    (dir, input, args)
}

#[test]
fn colour_follows_the_flag_and_no_color() {
    let (dir, input, args) = flags_only();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut cmd = runner_patch(&dir, &diff_args(extra, &args));
        cmd.envs(env.iter().copied());
        let out = run_with_stdin(&mut cmd, &input);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let plain = run(&[], &[]);
    assert!(
        !plain.is_empty() && !plain.contains(ESC),
        "auto into a pipe"
    );
    assert_eq!(run(&["--color", "never"], &[]), plain);
    let coloured = run(&["--color", "always"], &[]);
    assert!(coloured.contains(&format!("{ESC}[32m+")), "{coloured:?}");
    // An explicit flag wins over NO_COLOR (no-color.org); stripping the codes gives the plain diff.
    assert_eq!(run(&["--color=always"], &[("NO_COLOR", "1")]), coloured);
    assert_eq!(strip_ansi(&coloured), plain);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == ESC {
            // CSI: ESC [ parameters… final byte (a letter).
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `script` (util-linux) runs the command on a pseudo-terminal, as a user's shell would.
#[test]
fn colour_on_a_terminal_unless_no_color() {
    let (dir, _, args) = flags_only();
    let on_tty = |no_color: bool| {
        let command = format!(
            "{BIN} diff {} input.yaml",
            args.iter()
                .map(|a| format!("'{a}'"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let mut cmd = Command::new("script");
        cmd.current_dir(&dir)
            .args(["-qec", &command, "/dev/null"])
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm-256color");
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        let out = cmd.output().expect("script (util-linux) runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let coloured = on_tty(false);
    assert!(coloured.contains(&format!("{ESC}[32m+")), "{coloured:?}");
    let plain = on_tty(true);
    assert!(
        plain.contains("=== ConfigMap") && !plain.contains(ESC),
        "{plain:?}"
    );
}

#[test]
fn errors_leave_stdout_empty() {
    let (dir, input, _) = flags_only();
    let cases: [(&[&str], i32); 3] = [
        (&["--host-alias=not-an-alias"], 2),
        (
            &["--host-alias=10.0.0.1=a.example.com", "--release=nope"],
            4,
        ),
        (&["--host-alias=10.0.0.1=a.example.com", "missing.yaml"], 3),
    ];
    for (args, code) in cases {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_with_stdin(
            &mut runner_patch(&dir, &diff_args(&["--exit-code"], &args)),
            &input,
        );
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(text(&out.stderr).starts_with("runner-patch: error: "));
    }
}

// --- The real Helm 4 -------------------------------------------------------------------------

fn helm4() -> PathBuf {
    common::tools::helm4()
}

fn helm(home: &Path) -> Command {
    common::helm_cmd(&helm4(), home)
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\n{}",
        out.status,
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn template(home: &Path, extra: &[&str]) -> String {
    ok(helm(home)
        .args(["template", "gitlab-runner"])
        .arg(repo().join("testdata/charts/mini-runner"))
        .args(["-n", "gitlab-test"])
        .args(extra)
        .output()
        .unwrap())
}

#[test]
fn helm4_template_piped_into_diff() {
    let home = tempfile::tempdir().unwrap();
    let spec = repo().join("deploy/kustomize/legacy-plugin/runner-patch.yaml");
    let spec_arg = format!("--config={}", spec.display());
    let render = template(home.path(), &[]);
    let args = vec![
        "diff".to_owned(),
        "--exit-code".to_owned(),
        spec_arg.clone(),
    ];
    let out = run_with_stdin(&mut runner_patch(home.path(), &args), &render);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains(
            "=== ConfigMap gitlab-test/gitlab-runner: updated (source gitlab-runner/templates/configmap.yaml, input document 1, line 1)\n\
             --- a/gitlab-runner/templates/configmap.yaml: data[\"config.template.toml\"] (TOML line numbers; key at input line "
        ),
        "{diff}"
    );
    assert!(
        diff.contains("+    pull_policy = [\"if-not-present\"]\n")
            && diff.contains("+    [[runners.kubernetes.host_aliases]]\n"),
        "{diff}"
    );
    assert!(
        diff.contains("=== Deployment gitlab-test/gitlab-runner: updated (source gitlab-runner/templates/deployment.yaml, input document 2, ")
            && diff.contains("+      hostAliases:\n+      - ip: \"172.25.25.32\"\n"),
        "{diff}"
    );
    assert_eq!(
        diff.lines().filter(|l| l.starts_with("=== ")).count(),
        2,
        "untouched documents (the hook Job) are not shown"
    );

    // Helm 4 with runner-patch as its post-renderer plugin: that output has nothing left to change.
    let plugin = plugin_dir(home.path());
    ok(helm(home.path())
        .args(["plugin", "install"])
        .arg(&plugin)
        .output()
        .unwrap());
    let patched = template(
        home.path(),
        &[
            "--post-renderer",
            "runner-patch",
            "--post-renderer-args",
            &spec_arg,
        ],
    );
    assert!(patched.contains("172.25.25.32"), "post-rendered: {patched}");
    let out = run_with_stdin(&mut runner_patch(home.path(), &args), &patched);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty());
}

/// A plugin directory laid out like the release archive: plugin.yaml, scripts/, bin/runner-patch.
fn plugin_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("runner-patch");
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("scripts")).unwrap();
    fs::copy(repo().join("plugin.yaml"), dir.join("plugin.yaml")).unwrap();
    let script = dir.join("scripts/helm-plugin.sh");
    fs::copy(repo().join("scripts/helm-plugin.sh"), &script).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    fs::copy(BIN, dir.join("bin/runner-patch")).unwrap();
    dir
}
