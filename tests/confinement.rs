//! Certificate files named by a spec someone else wrote: every refusal of issue 14 through the
//! real binary (and kustomize's legacy exec plugin through the real kubectl), with stdout empty,
//! nothing of the refused file or the environment printed, and the same message whether or not
//! an outside file exists. Only re-encoded certificates reach the output.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{docs, find, run_measured, run_with_stdin};

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

/// Words planted in files and the environment that must never be printed.
const SECRET: &str = "hunter2-db-password";
const ENV_SECRET: &str = "tok-env-3141592653";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn input() -> String {
    fs::read_to_string(repo().join("testdata/golden/helm3-runner-0.92.0-base/input.yaml")).unwrap()
}

/// `tmp/outside/` (files the spec must not reach) and `tmp/app/` (the spec's directory).
struct Layout {
    tmp: tempfile::TempDir,
    gitlab_pem: String,
    root_pem: String,
}

impl Layout {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let ca = common::ca("Confinement Root");
        let (gitlab_pem, _) = common::leaf(
            &ca,
            "gitlab.test.helm.example.com",
            &["gitlab.test.helm.example.com"],
            -1,
            365,
        );
        let root_pem = ca.issuer.pem();
        let outside = tmp.path().join("outside");
        fs::create_dir_all(outside.join("dir")).unwrap();
        // A file holding a secret, a certificate and another secret: the example.
        let mixed = format!("DB_PASSWORD={SECRET}\n{gitlab_pem}AWS_SECRET_ACCESS_KEY={SECRET}\n");
        fs::write(outside.join("secret.crt"), &mixed).unwrap();
        fs::write(outside.join("dir/ca.crt"), &mixed).unwrap();
        let app = tmp.path().join("app");
        fs::create_dir_all(app.join("certs")).unwrap();
        fs::write(app.join("certs/gitlab.crt"), &gitlab_pem).unwrap();
        Layout {
            tmp,
            gitlab_pem,
            root_pem,
        }
    }

    fn app(&self) -> PathBuf {
        self.tmp.path().join("app")
    }

    fn outside(&self) -> PathBuf {
        self.tmp.path().join("outside")
    }

    /// Runs the binary in `app/` with a spec naming `file` for the GitLab host.
    fn run(&self, file: &str, extra: &[&str]) -> Output {
        self.run_spec(&spec(&[file]), extra)
    }

    fn run_spec(&self, spec_text: &str, extra: &[&str]) -> Output {
        fs::write(self.app().join("runner-patch.yaml"), spec_text).unwrap();
        run_with_stdin(
            Command::new(BIN)
                .current_dir(self.app())
                .args(["--config", "runner-patch.yaml"])
                .args(extra)
                .env_remove("HELM_PLUGIN_NAME")
                .env_remove("RUNNER_PATCH_FILE_ROOT")
                .env("RUNNER_PATCH_TEST_TOKEN", ENV_SECRET),
            &input(),
        )
    }
}

/// A spec with one certificate per file: the first for the GitLab host, the others CA bundles.
fn spec(files: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  certificates:\n",
    );
    for (i, f) in files.iter().enumerate() {
        if i == 0 {
            s.push_str(&format!(
                "    - host: gitlab.test.helm.example.com\n      for: gitlab\n      file: {f:?}\n"
            ));
        } else {
            s.push_str(&format!(
                "    - host: bundle-{i}\n      for: ca\n      file: {f:?}\n      mountPath: /etc/ssl/certs/bundle-{i}.crt\n"
            ));
        }
    }
    s
}

/// A refusal: exit 2, nothing on stdout, the spec field and `expect` in the message, nothing
/// planted printed. Returns stderr.
#[track_caller]
fn refused(out: &Output, expect: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "stdout must be empty on a refusal");
    assert!(stderr.contains("spec.certificates["), "{stderr}");
    assert!(stderr.contains(expect), "want {expect:?} in: {stderr}");
    for planted in [SECRET, ENV_SECRET, "BEGIN CERTIFICATE", "DB_PASSWORD"] {
        assert!(!stderr.contains(planted), "{planted} printed: {stderr}");
    }
    stderr
}

#[test]
fn parent_directory_escape_is_refused() {
    let l = Layout::new();
    let stderr = refused(
        &l.run("../outside/secret.crt", &[]),
        "\"../outside/secret.crt\" leads outside the file root",
    );
    // The path as written, not what it resolved to.
    assert!(
        !stderr.contains(&l.outside().display().to_string()),
        "{stderr}"
    );
    refused(
        &l.run("certs/../../outside/secret.crt", &[]),
        "leads outside",
    );
}

#[test]
fn absolute_paths_are_refused_proc_included() {
    let l = Layout::new();
    let abs = l.outside().join("secret.crt").display().to_string();
    refused(&l.run(&abs, &[]), "is an absolute path");
    refused(&l.run("/proc/self/environ", &[]), "is an absolute path");
}

#[test]
fn symlinked_file_and_symlinked_directory_leaving_the_root_are_refused() {
    let l = Layout::new();
    symlink(
        l.outside().join("secret.crt"),
        l.app().join("certs/link.crt"),
    )
    .unwrap();
    symlink(l.outside().join("dir"), l.app().join("linkdir")).unwrap();
    // Relative links that climb out are refused the same way as absolute ones.
    symlink("../../outside/secret.crt", l.app().join("certs/rel.crt")).unwrap();
    symlink("/proc/self/environ", l.app().join("environ.crt")).unwrap();
    let not_inside = "is not a file inside the file root";
    refused(&l.run("certs/link.crt", &[]), not_inside);
    refused(&l.run("linkdir/ca.crt", &[]), not_inside);
    refused(&l.run("certs/rel.crt", &[]), not_inside);
    // /proc/self/environ holds the environment, a PEM-looking variable included: never read.
    let pem_env = format!("{}{ENV_SECRET}", l.gitlab_pem);
    fs::write(l.app().join("runner-patch.yaml"), spec(&["environ.crt"])).unwrap();
    let out = run_with_stdin(
        Command::new(BIN)
            .current_dir(l.app())
            .args(["--config", "runner-patch.yaml"])
            .env_remove("HELM_PLUGIN_NAME")
            .env("ARGOCD_ENV_CA", &pem_env)
            .env("RUNNER_PATCH_TEST_TOKEN", ENV_SECRET),
        &input(),
    );
    refused(&out, not_inside);
}

#[test]
fn symlinks_inside_the_root_still_work() {
    let l = Layout::new();
    fs::create_dir_all(l.app().join("certs/v2")).unwrap();
    fs::write(l.app().join("certs/v2/gitlab.crt"), &l.gitlab_pem).unwrap();
    symlink("v2/gitlab.crt", l.app().join("certs/current.crt")).unwrap();
    symlink("certs/v2", l.app().join("current")).unwrap();
    for file in [
        "certs/current.crt",
        "current/gitlab.crt",
        "./certs/v2/../gitlab.crt",
    ] {
        let out = l.run(file, &[]);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn missing_and_existing_outside_files_get_the_same_message() {
    let l = Layout::new();
    let mask = |stderr: &str, written: &str| stderr.replace(written, "<path>");
    // Through `..`.
    let existing = refused(&l.run("../outside/secret.crt", &[]), "leads outside");
    let missing = refused(&l.run("../outside/nothing.crt", &[]), "leads outside");
    assert_eq!(
        mask(&existing, "../outside/secret.crt"),
        mask(&missing, "../outside/nothing.crt")
    );
    // Absolute.
    let existing = refused(&l.run("/etc/hostname", &[]), "absolute");
    let missing = refused(&l.run("/etc/no-such-file-here", &[]), "absolute");
    assert_eq!(
        mask(&existing, "/etc/hostname"),
        mask(&missing, "/etc/no-such-file-here")
    );
    // Through a symbolic link: to an existing file, to a missing one, and a missing file inside.
    symlink(l.outside().join("secret.crt"), l.app().join("a.crt")).unwrap();
    symlink(l.outside().join("nothing.crt"), l.app().join("b.crt")).unwrap();
    let a = refused(&l.run("a.crt", &[]), "not a file inside");
    let b = refused(&l.run("b.crt", &[]), "not a file inside");
    let c = refused(&l.run("c.crt", &[]), "not a file inside");
    assert_eq!(mask(&a, "a.crt"), mask(&b, "b.crt"));
    assert_eq!(mask(&a, "a.crt"), mask(&c, "c.crt"));
}

#[test]
fn directories_fifos_devices_and_proc_entries_are_refused_unread() {
    let l = Layout::new();
    refused(
        &l.run("certs", &[]),
        "\"certs\" is a directory, not a regular file",
    );
    // A FIFO nobody writes to: refused at once, no hang.
    let fifo = l.app().join("pipe.crt");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    let out = with_timeout(
        Command::new(BIN)
            .current_dir(l.app())
            .args(["--config", "runner-patch.yaml"]),
        &spec(&["pipe.crt"]),
        &l.app(),
        Duration::from_secs(20),
    );
    refused(&out, "\"pipe.crt\" is a FIFO, not a regular file");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Devices and /proc can only be reached when the operator makes `/` the root.
    let depth = fs::canonicalize(l.app()).unwrap().components().count() - 1;
    let up = "../".repeat(depth);
    refused(
        &l.run(&format!("{up}dev/zero"), &["--file-root", "/"]),
        "is a device, not a regular file",
    );
    refused(
        &l.run(&format!("{up}proc/self/environ"), &["--file-root", "/"]),
        "is a /proc or /sys entry",
    );
    refused(
        &l.run(&format!("{up}proc/self/status"), &["--file-root", "/"]),
        "/proc or /sys entry",
    );
}

/// Runs `cmd` (spec written to `dir/runner-patch.yaml`) with the render on stdin, killing it after
/// `limit`.
fn with_timeout(cmd: &mut Command, spec_text: &str, dir: &Path, limit: Duration) -> Output {
    fs::write(dir.join("runner-patch.yaml"), spec_text).unwrap();
    let mut child = cmd
        .env_remove("HELM_PLUGIN_NAME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let text = input();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            panic!("runner-patch hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    writer.join().unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn eight_references_to_a_60_mb_file_are_refused_fast_and_small() {
    let l = Layout::new();
    let big = l.app().join("big.crt");
    let f = fs::File::create(&big).unwrap();
    f.set_len(60 << 20).unwrap();
    drop(f);
    let files = ["big.crt"; 8];
    fs::write(l.app().join("runner-patch.yaml"), spec(&files)).unwrap();
    let started = Instant::now();
    let (out, max_rss_kib) = run_measured(
        Command::new(BIN)
            .current_dir(l.app())
            .args(["--config", "runner-patch.yaml"])
            .env_remove("HELM_PLUGIN_NAME"),
        input().as_bytes(),
    );
    let elapsed = started.elapsed();
    let stderr = refused(&out, "\"big.crt\" has 62914560 bytes, more than the 1 MiB");
    assert_eq!(stderr.matches("more than the 1 MiB").count(), 8, "{stderr}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert!(
        max_rss_kib < 40 * 1024,
        "max RSS {max_rss_kib} KiB: the file was read"
    );
}

#[test]
fn the_total_of_all_files_is_capped_before_reading() {
    let l = Layout::new();
    // Five distinct files just under the per-file cap: the fifth passes the total.
    let mut names = Vec::new();
    for i in 0..5 {
        let name = format!("part{i}.crt");
        let f = fs::File::create(l.app().join(&name)).unwrap();
        f.set_len(1_000_000).unwrap();
        names.push(name);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let stderr = refused(
        &l.run_spec(&spec(&refs), &[]),
        "\"part4.crt\": the certificate files together have more than the 4 MiB allowed",
    );
    assert!(!stderr.contains("part3.crt\": the certificate"), "{stderr}");
}

#[test]
fn only_the_certificates_reach_the_output_re_encoded() {
    let l = Layout::new();
    // The secret-laden file, a comment, and the root after it: inside the root this time.
    let text = format!(
        "DB_PASSWORD={SECRET}\n{}# {SECRET}\n\n{}AWS_SECRET_ACCESS_KEY={SECRET}\n",
        l.gitlab_pem, l.root_pem
    );
    fs::write(l.app().join("certs/mixed.crt"), &text).unwrap();
    let out = l.run("certs/mixed.crt", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains(SECRET) && !stdout.contains("DB_PASSWORD"));
    let d = docs(&stdout);
    let cm = find(
        &d,
        "ConfigMap",
        "gitlab-runner-gitlab-gitlab-test-helm-example-com",
    );
    let pem = cm["data"]["gitlab.test.helm.example.com.crt"]
        .as_str()
        .unwrap();
    // Exactly the two certificates, each one block with 64-character lines.
    assert_eq!(pem, format!("{}{}", l.gitlab_pem, l.root_pem));
    assert_eq!(pem.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert!(
        pem.lines()
            .filter(|line| !line.starts_with("-----"))
            .all(|line| line.len() <= 64)
    );
    // A certificate written with odd line lengths and CRLF comes out the same.
    let b64: String = l
        .gitlab_pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    let odd = format!(
        "-----BEGIN CERTIFICATE-----\r\n{}\r\n{}\r\n-----END CERTIFICATE-----\r\n",
        &b64[..10],
        &b64[10..]
    );
    fs::write(l.app().join("certs/odd.crt"), odd).unwrap();
    let out = l.run("certs/odd.crt", &[]);
    assert!(out.status.success());
    let d = docs(&String::from_utf8(out.stdout).unwrap());
    assert_eq!(
        find(
            &d,
            "ConfigMap",
            "gitlab-runner-gitlab-gitlab-test-helm-example-com"
        )["data"]["gitlab.test.helm.example.com.crt"],
        l.gitlab_pem.as_str()
    );
}

#[test]
fn non_certificate_blocks_are_described_not_quoted() {
    let l = Layout::new();
    let text = format!(
        "{}-----BEGIN {SECRET} TOKEN-----\nAAAA\n-----END {SECRET} TOKEN-----\n",
        l.gitlab_pem
    );
    fs::write(l.app().join("certs/token.crt"), text).unwrap();
    let stderr = refused(
        &l.run("certs/token.crt", &[]),
        "PEM block 2 is another PEM block, not a CERTIFICATE",
    );
    assert!(!stderr.contains("TOKEN"), "{stderr}");
    fs::write(
        l.app().join("certs/key.crt"),
        format!(
            "{}-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
            l.gitlab_pem
        ),
    )
    .unwrap();
    let stderr = refused(&l.run("certs/key.crt", &[]), "contains a private key");
    assert!(!stderr.contains("EC PRIVATE"), "{stderr}");
    // Inline PEM is held to the same rules.
    let inline = format!(
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  certificates:\n    - host: gitlab.test.helm.example.com\n      for: gitlab\n      pem: |\n        -----BEGIN {SECRET}-----\n        AAAA\n        -----END {SECRET}-----\n"
    );
    let out = l.run_spec(&inline, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("another PEM block"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[test]
fn the_operator_widens_the_root_by_flag_or_environment_and_only_so() {
    let l = Layout::new();
    let shared = l.tmp.path().join("shared");
    fs::create_dir_all(&shared).unwrap();
    fs::write(shared.join("gitlab.crt"), &l.gitlab_pem).unwrap();
    refused(
        &l.run("../shared/gitlab.crt", &[]),
        "leads outside the file root",
    );
    let root = l.tmp.path().display().to_string();
    let out = l.run("../shared/gitlab.crt", &["--file-root", &root]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::write(
        l.app().join("runner-patch.yaml"),
        spec(&["../shared/gitlab.crt"]),
    )
    .unwrap();
    let out = run_with_stdin(
        Command::new(BIN)
            .current_dir(l.app())
            .args(["--config", "runner-patch.yaml"])
            .env_remove("HELM_PLUGIN_NAME")
            .env("RUNNER_PATCH_FILE_ROOT", &root),
        &input(),
    );
    assert!(out.status.success());
    // Still nothing outside the widened root.
    let stderr = refused(
        &l.run("../../etc/hostname", &["--file-root", &root]),
        "leads outside the file root",
    );
    assert!(!stderr.contains(&root), "{stderr}");
    // A spec outside the root the operator set is an error of the setup.
    let out = l.run(
        "certs/gitlab.crt",
        &["--file-root", &shared.display().to_string()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not inside the file root"));
}

/// kustomize's legacy exec plugin: the config is a temporary copy in /tmp, the working directory
/// is the kustomization root: files resolve there, and the transformer config's argsOneLiner
/// (the kustomization author's) cannot widen the root, name an input file or an error file.
#[test]
fn kustomize_legacy_plugin_resolves_against_the_kustomization_root() {
    let kubectl = common::tools::kubectl();
    let l = Layout::new();
    let app = l.app();
    fs::copy(
        repo().join("testdata/golden/helm3-runner-0.92.0-base/input.yaml"),
        app.join("rendered.yaml"),
    )
    .unwrap();
    fs::write(
        app.join("kustomization.yaml"),
        "resources: [rendered.yaml]\ntransformers: [runner-patch.yaml]\n",
    )
    .unwrap();
    let plugin_home = l.tmp.path().join("plugin");
    let dir = plugin_home.join("runner-patch.dev/v1alpha1/runnerpatch");
    fs::create_dir_all(&dir).unwrap();
    symlink(BIN, dir.join("RunnerPatch")).unwrap();
    let build = |spec_text: &str| {
        fs::write(app.join("runner-patch.yaml"), spec_text).unwrap();
        Command::new(&kubectl)
            .args(["kustomize", "--enable-alpha-plugins"])
            .arg(&app)
            .env("KUSTOMIZE_PLUGIN_HOME", &plugin_home)
            .env_remove("RUNNER_PATCH_FILE_ROOT")
            .env("RUNNER_PATCH_TEST_TOKEN", ENV_SECRET)
            .output()
            .unwrap()
    };
    let with_meta = |extra: &str, file: &str| {
        spec(&[file]).replacen(
            "spec:\n",
            &format!("metadata:\n  name: runner-patch\n{extra}spec:\n"),
            1,
        )
    };
    let out = build(&with_meta("", "certs/gitlab.crt"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = docs(&String::from_utf8(out.stdout).unwrap());
    find(
        &d,
        "ConfigMap",
        "gitlab-runner-gitlab-gitlab-test-helm-example-com",
    );
    for (extra, file, expect) in [
        ("", "../outside/secret.crt", "leads outside the file root"),
        (
            "argsOneLiner: --file-root=/\n",
            "../outside/secret.crt",
            "--file-root cannot be set by the transformer config",
        ),
        (
            "argsOneLiner: /etc/hostname --allow-missing\n",
            "certs/gitlab.crt",
            "an input file cannot be set by the transformer config",
        ),
        (
            "argsOneLiner: --error-file=/tmp/x\n",
            "certs/gitlab.crt",
            "--error-file cannot be set",
        ),
    ] {
        let out = build(&with_meta(extra, file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}{file}: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains(expect), "{extra}{file}: {stderr}");
        assert!(!stderr.contains(SECRET) && !stderr.contains(ENV_SECRET));
    }
}

/// KRM function: the functionConfig's files resolve against the working directory, confined.
#[test]
fn krm_function_config_files_are_confined_to_the_working_directory() {
    let l = Layout::new();
    let list = |file: &str| {
        format!(
            "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n  apiVersion: runner-patch.dev/v1alpha1\n  kind: RunnerPatch\n  metadata:\n    name: x\n  spec:\n    allowMissing: true\n    certificates:\n      - host: gitlab.test.helm.example.com\n        for: gitlab\n        file: {file:?}\n"
        )
    };
    let run = |file: &str| {
        run_with_stdin(
            Command::new(BIN)
                .arg("krm")
                .current_dir(l.app())
                .env("RUNNER_PATCH_FILE_ROOT", "/"),
            &list(file),
        )
    };
    let ok = run("certs/gitlab.crt");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (file, expect) in [
        ("../outside/secret.crt", "leads outside the file root"),
        ("/etc/hostname", "is an absolute path"),
    ] {
        let out = run(file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "{file}: RUNNER_PATCH_FILE_ROOT must not widen KRM"
        );
        assert!(stderr.contains(expect), "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    }
}

/// Kernels before 5.6 (RHEL 8's 4.18, for one) and some seccomp sandboxes have no `openat2`:
/// cap-std then resolves component by component itself. The same refusals and the same benign
/// reads, with `openat2` made to fail with ENOSYS by a seccomp filter on the child.
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
#[test]
fn the_same_without_openat2() {
    use std::os::unix::process::CommandExt;

    fn without_openat2(cmd: &mut Command) -> &mut Command {
        const OPENAT2: u32 = 437; // the same number on x86_64 and aarch64
        // BPF: load the syscall number; if openat2, fail with ENOSYS; else allow.
        let filter = [
            libc::sock_filter {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            }, // ld [nr]
            libc::sock_filter {
                code: 0x15,
                jt: 0,
                jf: 1,
                k: OPENAT2,
            }, // jeq
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            },
            libc::sock_filter {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            },
        ];
        // SAFETY: only async-signal-safe calls (prctl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let program = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                    || libc::prctl(
                        libc::PR_SET_SECCOMP,
                        libc::SECCOMP_MODE_FILTER,
                        &program as *const libc::sock_fprog,
                    ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }

    let l = Layout::new();
    fs::create_dir_all(l.app().join("certs/v2")).unwrap();
    fs::write(l.app().join("certs/v2/gitlab.crt"), &l.gitlab_pem).unwrap();
    symlink("v2/gitlab.crt", l.app().join("certs/current.crt")).unwrap();
    symlink(
        l.outside().join("secret.crt"),
        l.app().join("certs/link.crt"),
    )
    .unwrap();
    symlink(l.outside().join("dir"), l.app().join("linkdir")).unwrap();
    symlink("../../outside/secret.crt", l.app().join("certs/rel.crt")).unwrap();
    symlink("/proc/self/environ", l.app().join("environ.crt")).unwrap();
    let fifo = l.app().join("pipe.crt");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let run = |file: &str| {
        fs::write(l.app().join("runner-patch.yaml"), spec(&[file])).unwrap();
        run_with_stdin(
            without_openat2(
                Command::new(BIN)
                    .current_dir(l.app())
                    .args(["--config", "runner-patch.yaml"])
                    .env_remove("HELM_PLUGIN_NAME")
                    .env("RUNNER_PATCH_TEST_TOKEN", ENV_SECRET),
            ),
            &input(),
        )
    };
    for file in ["certs/current.crt", "certs/v2/../gitlab.crt"] {
        let out = run(file);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let not_inside = "is not a file inside the file root";
    for file in [
        "certs/link.crt",
        "linkdir/ca.crt",
        "certs/rel.crt",
        "environ.crt",
        "nothing.crt",
    ] {
        refused(&run(file), not_inside);
    }
    refused(&run("pipe.crt"), "is a FIFO");
    refused(&run("../outside/secret.crt"), "leads outside");
}

/// One ~1 MiB bundle named for a hundred hosts: read once, but each reference writes it out
/// again; what the references produce together is capped (review finding F4: 111 MB of output
/// and 320 MB of memory before).
#[test]
fn a_bundle_named_for_a_hundred_hosts_is_capped_on_what_it_produces() {
    let l = Layout::new();
    let copies = (1_000_000 / l.root_pem.len()).max(1);
    fs::write(l.app().join("bundle.crt"), l.root_pem.repeat(copies)).unwrap();
    let mut refs = vec!["certs/gitlab.crt"];
    refs.extend(std::iter::repeat_n("bundle.crt", 100));
    fs::write(l.app().join("runner-patch.yaml"), spec(&refs)).unwrap();
    let (out, max_rss_kib) = run_measured(
        Command::new(BIN)
            .current_dir(l.app())
            .args(["--config", "runner-patch.yaml"])
            .env_remove("HELM_PLUGIN_NAME"),
        input().as_bytes(),
    );
    let stderr = refused(
        &out,
        "the certificates of all references together come to more than the 4 MiB allowed",
    );
    // The fifth copy passes the cap: the fourth is still fine.
    assert!(stderr.contains("spec.certificates[5].file"), "{stderr}");
    assert!(
        max_rss_kib < 60 * 1024,
        "max RSS {max_rss_kib} KiB: the copies were made"
    );
    // Three references to it are fine.
    let out = l.run_spec(
        &spec(&["certs/gitlab.crt", "bundle.crt", "bundle.crt", "bundle.crt"]),
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A ResourceList on stdin (no `krm` subcommand) is a KRM run: the function's envs come from
/// the kustomization, so RUNNER_PATCH_ERROR_FILE is ignored as under `runner-patch krm` (F5).
#[test]
fn a_resource_list_on_stdin_ignores_the_error_file_like_krm() {
    let l = Layout::new();
    let victim = l.outside().join("victim.log");
    fs::write(&victim, "operator's log\n").unwrap();
    let list = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\nfunctionConfig:\n  apiVersion: runner-patch.dev/v1alpha1\n  kind: RunnerPatch\n  metadata:\n    name: x\n  spec:\n    certificates:\n      - host: gitlab.test.helm.example.com\n        for: gitlab\n        file: ../outside/secret.crt\n";
    for krm_subcommand in [true, false] {
        let mut cmd = Command::new(BIN);
        if krm_subcommand {
            cmd.arg("krm");
        }
        let out = run_with_stdin(
            cmd.current_dir(l.app())
                .env_remove("HELM_PLUGIN_NAME")
                .env("RUNNER_PATCH_ERROR_FILE", &victim)
                .env("RUNNER_PATCH_FILE_ROOT", "/"),
            list,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        // KRM answers with a ResourceList holding the error, on stdout.
        assert!(stdout.contains("leads outside the file root"), "{stdout}");
        assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
        assert_eq!(
            fs::read_to_string(&victim).unwrap(),
            "operator's log\n",
            "krm subcommand: {krm_subcommand}"
        );
    }
}
