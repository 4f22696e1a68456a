//! Process behaviour of the binary: exit codes, messages said once and in plain words, the input
//! rule, where warnings and summaries go, and what a failed write means.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render() -> PathBuf {
    repo().join("examples/gitlab-runner-0.92.0.yaml")
}

fn example_spec() -> PathBuf {
    repo().join("examples/runner-patch.yaml")
}

/// runner-patch with `args`, `stdin` piped in (or /dev/null), outside any Helm plugin context.
fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("HELM_PLUGIN_NAME")
        .env_remove("RUNNER_PATCH_CONFIG")
        .env_remove("RUNNER_PATCH_ERROR_FILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap();
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// No Rust debug rendering may reach a user.
#[track_caller]
fn assert_plain_words(message: &str) {
    for debug in [
        "{ ",
        "Some(",
        "Tag(",
        "NomError",
        "Der(",
        "Error {",
        "Documents {",
    ] {
        assert!(
            !message.contains(debug),
            "debug text {debug:?} in: {message}"
        );
    }
}

#[test]
fn an_unreadable_spec_is_a_usage_error_said_once() {
    let out = run(&["--config", "/nonexistent/spec.yaml", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(
        err,
        "runner-patch: error: cannot read the spec /nonexistent/spec.yaml: No such file or directory (os error 2)\n"
    );
}

#[test]
fn a_spec_with_two_documents_is_named_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write(tmp.path(), "two.yaml", "a: 1\n---\nb: 2\n");
    let out = run(
        &["-c", spec.to_str().unwrap(), render().to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        format!(
            "runner-patch: error: invalid spec {}:\n  - line 2, column 1: more than one YAML document where one is expected (a `---` line starts another)\n",
            spec.display()
        )
    );
}

#[test]
fn a_broken_certificate_is_described_in_words() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "bad.crt",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    write(tmp.path(), "cut.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n");
    for (file, says) in [
        ("bad.crt", "is not a valid X.509 certificate"),
        ("cut.crt", "PEM block 1 has no END line"),
    ] {
        let spec = write(
            tmp.path(),
            "spec.yaml",
            &format!(
                "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata: {{name: x}}\nspec:\n  certificates:\n    - {{host: gitlab.test.helm.example.com, for: gitlab, file: {file}}}\n"
            ),
        );
        let out = run(
            &["-c", spec.to_str().unwrap(), render().to_str().unwrap()],
            None,
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(says), "{file}: {err}");
        assert_plain_words(&err);
    }
}

#[test]
fn every_bad_runner_toml_key_is_its_own_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write(
        tmp.path(),
        "spec.yaml",
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata: {name: x}\nspec:\n  runnerToml: |\n    tls_ca_file = \"x\"\n    [runners.kubernetes]\n    privilegd = true\n    image = 5\n",
    );
    let out = run(
        &["-c", spec.to_str().unwrap(), render().to_str().unwrap()],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let problems: Vec<&str> = err.lines().filter(|l| l.starts_with("  - ")).collect();
    assert_eq!(problems.len(), 3, "{err}");
    assert!(problems[0].contains("tls_ca_file"), "{err}");
    assert!(problems[1].contains("did you mean `privileged`"), "{err}");
    assert!(problems[2].contains("runners.kubernetes.image"), "{err}");
}

#[test]
fn a_list_holding_the_release_is_named() {
    // The bundled render's documents as the items of one `kind: List`.
    let text = std::fs::read_to_string(render()).unwrap();
    let items: Vec<Value> = runner_patch::manifest::stream::split(&text)
        .docs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| runner_patch::manifest::yaml::parse(d.body).unwrap())
        .collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"name": "everything"}, "items": items});
    let input = runner_patch::manifest::yaml::emit(&list).unwrap();
    let out = run(
        &["-c", example_spec().to_str().unwrap()],
        Some(input.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.starts_with("runner-patch: error: List everything (document 1, line 1):")
            && err.contains("holds a gitlab-runner ConfigMap or Deployment in its items"),
        "{err}"
    );
    // Without a name: one space between the kind and the position.
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": list["items"]});
    let input = runner_patch::manifest::yaml::emit(&list).unwrap();
    let out = run(
        &["-c", example_spec().to_str().unwrap()],
        Some(input.as_bytes()),
    );
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("runner-patch: error: List (document 1, line 1):"),
        "{err}"
    );
}

#[test]
fn command_line_problems_name_the_flag_and_empty_selectors_are_refused() {
    let render = render();
    let render = render.to_str().unwrap();
    for (args, says) in [
        (
            vec!["--host-alias", "999.1.1.1=gitlab.example.com"],
            r#"--host-alias[0].ip: "999.1.1.1" is not a valid IPv4 or IPv6 address"#,
        ),
        (
            vec!["--pull-policy", "sometimes"],
            r#"--pull-policy[0]: "sometimes" is not a pull policy; use always, if-not-present or never"#,
        ),
        (
            vec![
                "--host-alias",
                "10.0.0.1=gitlab.example.com",
                "--release",
                "",
            ],
            "--release: must not be empty",
        ),
        (
            vec![
                "--host-alias",
                "10.0.0.1=gitlab.example.com",
                "--namespace",
                " ",
            ],
            "--namespace: must not be empty",
        ),
    ] {
        let mut all = args.clone();
        all.push(render);
        let out = run(&all, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert_eq!(
            stderr(&out),
            format!("runner-patch: error: invalid spec (command line):\n  - {says}\n"),
            "{args:?}"
        );
    }
}

#[test]
fn a_closed_stdout_is_a_failure() {
    let input = std::fs::read(render()).unwrap();
    let mut child = Command::new(BIN)
        .args(["-c", example_spec().to_str().unwrap()])
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before runner-patch writes (it writes only after reading all input).
    drop(child.stdout.take());
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        "runner-patch: error: cannot write the output: the reader closed the pipe before the end\n"
    );
}

#[test]
fn check_reads_piped_stdin_like_a_run() {
    let input = std::fs::read(render()).unwrap();
    let out = run(
        &["check", "-c", example_spec().to_str().unwrap()],
        Some(&input),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(
        report.contains("releases:\n  - Deployment gitlab-test/gitlab-runner\n"),
        "{report}"
    );
    // The same report as with a file argument.
    let by_file = run(
        &[
            "check",
            "-c",
            example_spec().to_str().unwrap(),
            render().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(String::from_utf8(by_file.stdout).unwrap(), report);
}

#[test]
fn a_run_with_nothing_to_do_says_so_and_passes_through() {
    let input = std::fs::read(render()).unwrap();
    let out = run(&[], Some(&input));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(out.stdout, input);
    assert_eq!(
        stderr(&out),
        "runner-patch: nothing to do: no --config and no patch flags (--host-alias, --pull-policy, --allowed-pull-policy); the input passes through unchanged\n"
    );
}

#[test]
fn a_summary_goes_to_stderr_with_verbose_and_never_to_stdout() {
    let (spec, input) = (example_spec(), render());
    let args = ["-c", spec.to_str().unwrap(), input.to_str().unwrap()];
    let quiet = run(&args, None);
    assert_eq!(
        stderr(&quiet),
        "",
        "no summary when stderr is not a terminal"
    );
    let verbose = run(&[&["--verbose"][..], &args].concat(), None);
    assert_eq!(verbose.stdout, quiet.stdout);
    assert!(
        stderr(&verbose).starts_with(
            "runner-patch: patched 1 release: Deployment gitlab-test/gitlab-runner\n  updated ConfigMap gitlab-test/gitlab-runner: data[\"config.template.toml\"]\n"
        ),
        "{}",
        stderr(&verbose)
    );
}

/// A spec whose GitLab certificate is for another host than the render's CI_SERVER_URL: two
/// warnings (SANs, URL host).
fn mismatched_spec(dir: &Path) -> PathBuf {
    let pem = std::fs::read_to_string(repo().join("examples/certs/gitlab.crt")).unwrap();
    let indented: String = pem.lines().map(|l| format!("        {l}\n")).collect();
    write(
        dir,
        "spec.yaml",
        &format!(
            "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata: {{name: x}}\nspec:\n  certificates:\n    - host: gitlab.other.example.com\n      for: gitlab\n      pem: |\n{indented}"
        ),
    )
}

#[test]
fn warnings_go_to_stderr_and_the_error_file() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = mismatched_spec(tmp.path());
    let error_file = tmp.path().join("messages.txt");
    let out = run(
        &[
            "-c",
            spec.to_str().unwrap(),
            "--error-file",
            error_file.to_str().unwrap(),
            render().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0));
    let err = stderr(&out);
    assert_eq!(err.matches("runner-patch: warning: ").count(), 2, "{err}");
    assert!(
        err.contains("does not cover \"gitlab.other.example.com\""),
        "{err}"
    );
    assert!(err.contains("CI_SERVER_URL points at"), "{err}");
    assert_eq!(std::fs::read_to_string(&error_file).unwrap(), err);

    let strict = run(
        &[
            "-c",
            spec.to_str().unwrap(),
            "--warnings-as-errors",
            render().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(strict.status.code(), Some(5));
    assert!(strict.stdout.is_empty());
}

#[test]
fn krm_warnings_are_results_with_severity_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: Value = runner_patch::manifest::yaml::parse(
        &std::fs::read_to_string(mismatched_spec(tmp.path())).unwrap(),
    )
    .unwrap();
    let list_text =
        std::fs::read_to_string(repo().join("deploy/kustomize/krm-function/resource-list.yaml"))
            .unwrap();
    let mut list = runner_patch::manifest::yaml::parse(&list_text).unwrap();
    list["functionConfig"] = spec;
    let input = runner_patch::manifest::yaml::emit(&list).unwrap();
    let out = run(&["krm"], Some(input.as_bytes()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let output =
        runner_patch::manifest::yaml::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let results = output["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r["severity"] == "warning"));
    assert!(
        results[0]["message"]
            .as_str()
            .unwrap()
            .contains("does not cover")
    );
}

#[test]
fn command_line_mistakes_exit_2() {
    let out = run(&["--no-such-flag"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["--host-alias", "10.0.0.1", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("is not IP=HOST"), "{}", stderr(&out));
}

#[test]
fn an_unreadable_input_exits_3() {
    let out = run(
        &[
            "-c",
            example_spec().to_str().unwrap(),
            "/nonexistent/in.yaml",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out),
        "runner-patch: error: cannot read /nonexistent/in.yaml: No such file or directory (os error 2)\n"
    );
}

/// Runs `shell_command` with a terminal as stdin and stdout (util-linux `script`).
fn on_a_terminal(shell_command: &str) -> String {
    let out = Command::new("script")
        .args(["-qec", shell_command, "/dev/null"])
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::null())
        .output()
        .expect("util-linux `script` runs");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn a_terminal_is_no_input_and_gets_a_summary() {
    let spec = example_spec();
    let spec = spec.to_str().unwrap();
    let said = on_a_terminal(&format!("{BIN} -c {spec}; echo exit=$?"));
    assert_eq!(
        said,
        "runner-patch: error: no input: name a manifest file, or pipe the manifests into stdin (`-` reads stdin anyway)\nexit=2\n"
    );
    // `check` without input reports on the spec alone.
    let said = on_a_terminal(&format!("{BIN} check -c {spec} | tail -n 1"));
    assert_eq!(said, "result: all well\n");
    // On a terminal, a run says what it changed (stdout goes elsewhere).
    let input = render();
    let said = on_a_terminal(&format!("{BIN} -c {spec} {} > /dev/null", input.display()));
    assert!(
        said.starts_with("runner-patch: patched 1 release: Deployment gitlab-test/gitlab-runner\n"),
        "{said}"
    );
}

/// The TOML lines a run wrote for `key` (`key = …`), over all documents.
fn toml_lines(stdout: &[u8], key: &str) -> Vec<String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&format!("{key} =")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_pull_policy_named_twice_is_written_once() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = write(
        tmp.path(),
        "spec.yaml",
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  pullPolicy: [always, Always]\n  allowedPullPolicies: [if-not-present, always]\n",
    );
    let out = run(
        &[
            "-c",
            spec.to_str().unwrap(),
            "--allowed-pull-policy=Always",
            render().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let pull = toml_lines(&out.stdout, "pull_policy");
    let allowed = toml_lines(&out.stdout, "allowed_pull_policies");
    assert!(!pull.is_empty() && !allowed.is_empty());
    assert!(
        pull.iter().all(|l| l == r#"pull_policy = ["always"]"#),
        "{pull:?}"
    );
    assert!(
        allowed
            .iter()
            .all(|l| l == r#"allowed_pull_policies = ["if-not-present", "always"]"#),
        "{allowed:?}"
    );
}

#[test]
fn the_error_file_holds_only_this_runs_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let error_file = tmp.path().join("messages.txt");
    let old = "runner-patch: error: a line from an earlier run\n";
    let clean = |args: &[&str]| {
        std::fs::write(&error_file, old).unwrap();
        let (command, args) = args.split_at(args.len() - 1);
        let mut all = command.to_vec();
        all.extend([
            "--error-file",
            error_file.to_str().unwrap(),
            "--host-alias",
            "10.0.0.1=gitlab.example.com",
        ]);
        all.extend_from_slice(args);
        let out = run(&all, None);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(
            std::fs::read_to_string(&error_file).unwrap(),
            "",
            "{args:?}"
        );
    };
    let render = render();
    let render = render.to_str().unwrap();
    clean(&[render]);
    clean(&["diff", render]);
    clean(&["check", render]);
}

#[test]
fn check_on_an_empty_input_does_not_say_all_well() {
    let spec = example_spec();
    let spec = spec.to_str().unwrap();
    let out = run(&["check", "-c", spec], Some(b""));
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("\nreleases: none found\n"), "{report}");
    assert!(
        report.ends_with("\nresult: no gitlab-runner release in the input, nothing checked\n"),
        "{report}"
    );
    assert_eq!(
        stderr(&out),
        "runner-patch: error: no gitlab-runner release in the input (it is empty); pass --allow-missing (or spec.allowMissing: true) if that is expected\n"
    );

    let allowed = run(&["check", "--allow-missing", "-c", spec], Some(b""));
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert!(stderr(&allowed).is_empty());
    let report = String::from_utf8_lossy(&allowed.stdout);
    assert!(!report.contains("all well"), "{report}");
}

#[test]
fn a_closed_fd_1_is_a_failure() {
    // `>&-`: fd 1 closed when the process starts (Rust's runtime would reopen it on /dev/null).
    let out = Command::new("sh")
        .args(["-c", r#"exec "$0" "$@" >&-"#, BIN, "-c"])
        .arg(example_spec())
        .arg(render())
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "runner-patch: error: cannot write the output: stdout is closed\n"
    );
}

#[test]
fn the_spec_file_is_capped_and_special_files_are_refused_unread() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.yaml");
    std::fs::write(&big, vec![b'#'; (1 << 20) + 1]).unwrap();
    let render = render();
    let render = render.to_str().unwrap();
    for (spec, says) in [
        (
            "/dev/zero",
            "the spec /dev/zero is a device, not a regular file".to_owned(),
        ),
        (
            big.to_str().unwrap(),
            format!(
                "the spec {} is larger than the limit of 1 MiB",
                big.display()
            ),
        ),
    ] {
        let out = run(&["-c", spec, render], None);
        assert_eq!(out.status.code(), Some(2), "{spec}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr(&out), format!("runner-patch: error: {says}\n"));
    }
    // A pipe (process substitution, /dev/stdin) is read, up to the limit.
    let spec = b"apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  hostAliases:\n    - {ip: 10.0.0.1, hostnames: [gitlab.example.com]}\n";
    let mut child = Command::new(BIN)
        .args(["-c", "/dev/stdin", render])
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(spec).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("10.0.0.1"));
    let mut child = Command::new(BIN)
        .args(["-c", "/dev/stdin", render])
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The writer may see the pipe closed once the limit is passed.
    let _ = child.stdin.take().unwrap().write_all(&vec![b'#'; 2 << 20]);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "runner-patch: error: the spec /dev/stdin is larger than the limit of 1 MiB\n"
    );
}

#[test]
fn krm_says_each_spec_problem_as_its_own_result_and_empty_input_is_an_input_error() {
    let list = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n  apiVersion: runner-patch.dev/v1alpha1\n  kind: RunnerPatch\n  metadata: {name: x}\n  spec:\n    pullPolicy: sometimes\n    runnerToml: |\n      [runners.kubernetes]\n      bogus = 1\n      privileged = \"x\"\n";
    let out = run(&["krm"], Some(list.as_bytes()));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let output =
        runner_patch::manifest::yaml::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let results = output["results"].as_array().expect("results");
    assert_eq!(results.len(), 3, "{results:?}");
    for r in results {
        let message = r["message"].as_str().unwrap();
        assert!(!message.contains('\n'), "{message}");
        assert!(
            message.starts_with("invalid spec functionConfig: spec."),
            "{message}"
        );
        assert_eq!(r["severity"], "error");
    }
    let fields: Vec<_> = results.iter().map(|r| r["field"]["path"].clone()).collect();
    assert_eq!(
        fields,
        ["spec.pullPolicy", "spec.runnerToml", "spec.runnerToml"]
    );

    for (input, says) in [
        ("", "no input: the input is empty, not a ResourceList"),
        (
            "a: 1\n",
            "the input is not a ResourceList (its kind is not ResourceList)",
        ),
    ] {
        let out = run(&["krm"], Some(input.as_bytes()));
        assert_eq!(out.status.code(), Some(3), "{input:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), format!("runner-patch: error: {says}\n"));
    }
}
