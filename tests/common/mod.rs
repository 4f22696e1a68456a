//! Test certificates, generated relative to now so that no date can make the suite fail later.
#![allow(dead_code)]

pub(crate) mod tools;

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use time::{Duration, OffsetDateTime};

pub(crate) struct Ca {
    pub(crate) issuer: CertifiedIssuer<'static, KeyPair>,
}

fn params(cn: &str, sans: &[&str], from_days: i64, to_days: i64) -> CertificateParams {
    let mut p =
        CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    let now = OffsetDateTime::now_utc();
    p.not_before = now + Duration::days(from_days);
    p.not_after = now + Duration::days(to_days);
    p
}

pub(crate) fn ca(cn: &str) -> Ca {
    let mut p = params(cn, &[], -1, 3650);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    Ca {
        issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
    }
}

/// A leaf for `sans`, valid from `from_days` to `to_days` around now, signed by `ca`: (cert PEM, key PEM).
pub(crate) fn leaf(
    ca: &Ca,
    cn: &str,
    sans: &[&str],
    from_days: i64,
    to_days: i64,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = params(cn, sans, from_days, to_days)
        .signed_by(&key, &ca.issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

/// Writes the standard set of test certificates into `dir`.
pub(crate) fn write_set(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let root = ca("Test Root CA");
    let w = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    let (gitlab, _) = leaf(
        &root,
        "gitlab.test.helm.example.com",
        &["gitlab.test.helm.example.com"],
        -1,
        365,
    );
    w("gitlab.crt", &format!("{gitlab}{}", root.issuer.pem()));
    let (registry, key) = leaf(
        &root,
        "registry.test.example.com",
        &["registry.test.example.com"],
        -1,
        365,
    );
    w("registry.crt", &registry);
    w("with-key.pem", &format!("{registry}{key}"));
    w("corp-root.crt", &root.issuer.pem());
    w(
        "expired.crt",
        &leaf(
            &root,
            "registry.test.example.com",
            &["registry.test.example.com"],
            -400,
            -1,
        )
        .0,
    );
    w(
        "expiring.crt",
        &leaf(
            &root,
            "registry.test.example.com",
            &["registry.test.example.com"],
            -1,
            10,
        )
        .0,
    );
    w(
        "wrong-san.crt",
        &leaf(&root, "other.example.com", &["other.example.com"], -1, 365).0,
    );
    std::fs::write(dir.join("der.crt"), root.issuer.der().as_ref()).unwrap();
    w("garbage.crt", "this is not a certificate\n");
}

/// The example spec, with certificate files relative to it.
pub(crate) const SPEC: &str = "apiVersion: runner-patch.dev/v1alpha1
kind: RunnerPatch
metadata:
  name: certs
spec:
  certificates:
    - host: gitlab.test.helm.example.com
      for: gitlab
      file: certs/gitlab.crt
    - host: registry.test.example.com
      for: registry
      file: certs/registry.crt
    - host: corp-root
      for: ca
      file: certs/corp-root.crt
      mountPath: /etc/ssl/certs/corp-root.crt
";

/// The non-empty documents of a stream, parsed.
pub(crate) fn docs(stream: &str) -> Vec<Value> {
    runner_patch::manifest::stream::split(stream)
        .docs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| runner_patch::manifest::yaml::parse(d.body).unwrap())
        .collect()
}

/// The document of `kind` named `name`.
pub(crate) fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in output"))
}

/// Runs `cmd` with `input` on stdin, capturing stdout and stderr.
pub(crate) fn run_with_stdin(cmd: &mut std::process::Command, input: &str) -> std::process::Output {
    let mut child = cmd
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A run that fails before reading stdin (a missing input file) may exit before the write ends.
    if let Err(e) = child.stdin.take().unwrap().write_all(input.as_bytes()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// `helm` (either major) with its state — plugins, repositories, cache — isolated in `home`, and
/// none of the caller's runner-patch or plugin settings.
pub(crate) fn helm_cmd(helm: &Path, home: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(helm);
    c.env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env_remove("HELM_PLUGINS")
        .env_remove("RUNNER_PATCH_CONFIG");
    c
}

/// Runs `cmd` to completion and returns its output and its own peak RSS (KiB).
///
/// Measured through a small python3 parent: Linux carries the peak RSS of the process that
/// execs into the new image's `maxrss`, and this test process (which holds other tests' large
/// outputs) would otherwise leak its own peak into the child's figure. python3's own few MiB are
/// the floor of what this reports.
pub(crate) fn run_measured(
    cmd: &mut std::process::Command,
    input: &[u8],
) -> (std::process::Output, i64) {
    const PARENT: &str = "import resource, subprocess, sys\n\
        code = subprocess.run(sys.argv[2:]).returncode\n\
        open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n\
        sys.exit(code if code >= 0 else 128 - code)\n";
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut measured = std::process::Command::new("python3");
    measured
        .arg("-c")
        .arg(PARENT)
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        measured.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => measured.env(key, v),
            None => measured.env_remove(key),
        };
    }
    let mut child = measured
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Fed from a thread, so that a child that answers before reading all of it cannot block us.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    let max_rss_kib = std::fs::read_to_string(report.path())
        .unwrap()
        .trim()
        .parse()
        .expect("python3 reported the peak RSS");
    (out, max_rss_kib)
}
