//! Certificates end to end through the binary, on real gitlab-runner renders, with certificates
//! generated for this run (a CA, leaves, a chain, an expired one, a wrong SAN, a key, DER, garbage).

mod common;

use common::{docs, find, run_with_stdin};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("testdata/golden").join(name).join("input.yaml")).unwrap()
}

/// A temp dir with `certs/` and `runner-patch.yaml` (the given spec text).
fn workspace(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write_set(&dir.path().join("certs"));
    std::fs::write(dir.path().join("runner-patch.yaml"), spec).unwrap();
    dir
}

fn run(dir: &Path, args: &[&str], input: &str) -> Output {
    run_with_stdin(
        Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .env_remove("HELM_PLUGIN_NAME"),
        input,
    )
}

fn patch(dir: &Path, input: &str) -> String {
    let out = run(dir, &["--config", "runner-patch.yaml"], input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Certificates and checksums differ per run; everything else is compared as bytes.
fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut in_pem = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t == "-----BEGIN CERTIFICATE-----" {
            in_pem = true;
            out.push_str(&line.replace("-----BEGIN CERTIFICATE-----", "<certificate>"));
            continue;
        }
        if in_pem {
            in_pem = t != "-----END CERTIFICATE-----";
            continue;
        }
        match line.find("checksum/configmap: ") {
            Some(i) => out.push_str(&format!("{}checksum/configmap: <sha256>\n", &line[..i])),
            None => out.push_str(line),
        }
    }
    out
}

#[track_caller]
fn golden(case: &str, output: &str) {
    let path = repo()
        .join("testdata/golden-certs")
        .join(case)
        .join("expected.yaml");
    let got = normalize(output);
    if std::env::var_os("RUNNER_PATCH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} missing: bless with RUNNER_PATCH_BLESS=1",
            path.display()
        )
    });
    assert!(
        want == got,
        "{case}: output differs from {} (re-bless and review the diff)",
        path.display()
    );
}

#[test]
fn gitlab_registry_and_ca_certificates_on_a_render_without_certs_secret() {
    let dir = workspace(common::SPEC);
    let input = fixture("helm3-runner-0.92.0-base");
    let out = patch(dir.path(), &input);
    golden("runner-0.92.0-base", &out);
    let d = docs(&out);
    assert_eq!(
        d.len(),
        docs(&input).len() + 3,
        "three ConfigMaps generated"
    );
    let gitlab_pem = std::fs::read_to_string(dir.path().join("certs/gitlab.crt")).unwrap();
    let gitlab_cm = find(
        &d,
        "ConfigMap",
        "gitlab-runner-gitlab-gitlab-test-helm-example-com",
    );
    assert_eq!(gitlab_cm["metadata"]["namespace"], "gitlab-test");
    assert_eq!(
        gitlab_cm["data"]["gitlab.test.helm.example.com.crt"],
        gitlab_pem.as_str()
    );
    let registry_cm = find(
        &d,
        "ConfigMap",
        "gitlab-runner-registry-registry-test-example-com",
    );
    assert!(
        registry_cm["data"]["ca.crt"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    find(&d, "ConfigMap", "gitlab-runner-ca-corp-root");
    // Job pods: registry certs.d and the CA bundle, from the generated ConfigMaps.
    let toml = find(&d, "ConfigMap", "gitlab-runner")["data"]["config.template.toml"]
        .as_str()
        .unwrap();
    assert!(toml.contains("tls-ca-file = \"/home/gitlab-runner/.gitlab-runner/certs/gitlab.test.helm.example.com.crt\""), "{toml}");
    assert!(
        toml.contains("name = \"gitlab-runner-registry-registry-test-example-com\"")
            && toml
                .contains("mount_path = \"/etc/docker/certs.d/registry.test.example.com/ca.crt\""),
        "{toml}"
    );
    assert!(
        toml.contains("items = { \"ca.crt\" = \"ca.crt\" }"),
        "{toml}"
    );
    assert!(
        toml.contains("mount_path = \"/etc/ssl/certs/corp-root.crt\"")
            && toml.contains("sub_path = \"corp-root.crt\""),
        "{toml}"
    );
    // Manager pod: the certs directory as a projected volume.
    let deploy = find(&d, "Deployment", "gitlab-runner");
    let pod = &deploy["spec"]["template"]["spec"];
    let vol = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "runner-patch-certs")
        .expect("certs volume");
    assert_eq!(
        vol["projected"]["sources"][0]["configMap"]["items"][0]["path"],
        "gitlab.test.helm.example.com.crt"
    );
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "runner-patch-certs")
        .unwrap();
    assert_eq!(
        mount["mountPath"],
        "/home/gitlab-runner/.gitlab-runner/certs"
    );
    // Idempotent, deterministic.
    assert_eq!(patch(dir.path(), &out), out);
    assert_eq!(patch(dir.path(), &input), out);
}

#[test]
fn combines_with_the_charts_certs_secret() {
    let dir = workspace(common::SPEC);
    let input = fixture("helm3-runner-0.92.0-hostaliases-certs");
    let out = patch(dir.path(), &input);
    golden("runner-0.92.0-hostaliases-certs", &out);
    let d = docs(&out);
    let pod = &find(&d, "Deployment", "gitlab-runner")["spec"]["template"]["spec"];
    let custom = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "custom-certs")
        .unwrap();
    let sources = custom["projected"]["sources"]
        .as_array()
        .expect("custom-certs became projected");
    assert_eq!(
        sources[0]["secret"]["name"],
        "gitlab-test-helm-example-com-certs"
    );
    assert_eq!(
        sources[1]["configMap"]["name"],
        "gitlab-runner-gitlab-gitlab-test-helm-example-com"
    );
    // One mount on the directory, not two.
    let mounts = pod["containers"][0]["volumeMounts"].as_array().unwrap();
    assert_eq!(
        mounts
            .iter()
            .filter(|m| m["mountPath"]
                .as_str()
                .unwrap()
                .starts_with("/home/gitlab-runner/.gitlab-runner/certs"))
            .count(),
        1
    );
    assert!(
        !pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "runner-patch-certs")
    );
    assert_eq!(patch(dir.path(), &out), out);
}

#[test]
fn a_renewed_certificate_rolls_the_pods_and_updates_its_configmap() {
    let dir = workspace(common::SPEC);
    let first = patch(dir.path(), &fixture("helm3-runner-0.92.0-base"));
    let sum = |t: &str| {
        find(&docs(t), "Deployment", "gitlab-runner")["spec"]["template"]["metadata"]["annotations"]
            ["checksum/configmap"]
            .clone()
    };
    // Renew: a new certificate for the same host.
    let root = common::ca("Renewed Root");
    let (leaf, _) = common::leaf(
        &root,
        "gitlab.test.helm.example.com",
        &["gitlab.test.helm.example.com"],
        -1,
        400,
    );
    std::fs::write(dir.path().join("certs/gitlab.crt"), &leaf).unwrap();
    let second = patch(dir.path(), &first);
    assert_ne!(sum(&first), sum(&second), "checksum must change");
    assert_eq!(
        docs(&second).len(),
        docs(&first).len(),
        "updated in place, not duplicated"
    );
    assert_eq!(
        find(
            &docs(&second),
            "ConfigMap",
            "gitlab-runner-gitlab-gitlab-test-helm-example-com"
        )["data"]["gitlab.test.helm.example.com.crt"],
        leaf.as_str()
    );
}

fn spec_with(file: &str, host: &str, purpose: &str) -> String {
    format!(
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  certificates:\n    - host: {host}\n      for: {purpose}\n      file: certs/{file}\n"
    )
}

#[test]
fn refuses_expired_keys_der_and_garbage() {
    let input = fixture("helm3-runner-0.92.0-base");
    for (file, expect) in [
        ("expired.crt", "expired on"),
        ("with-key.pem", "contains a private key"),
        ("der.crt", "no PEM certificate found"),
        ("garbage.crt", "no PEM certificate found"),
    ] {
        let dir = workspace(&spec_with(file, "registry.test.example.com", "registry"));
        let out = run(dir.path(), &["--config", "runner-patch.yaml"], &input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
        assert!(out.stdout.is_empty());
        assert!(stderr.contains(expect), "{file}: {stderr}");
        assert!(!stderr.contains("BEGIN"), "{file}: PEM content printed");
    }
}

#[test]
fn warns_about_expiry_and_sans_and_can_fail_on_warnings() {
    let input = fixture("helm3-runner-0.92.0-base");
    for (file, expect) in [
        ("expiring.crt", "expires on"),
        (
            "wrong-san.crt",
            "does not cover \"registry.test.example.com\"",
        ),
    ] {
        let dir = workspace(&spec_with(file, "registry.test.example.com", "registry"));
        let out = run(dir.path(), &["--config", "runner-patch.yaml"], &input);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expect),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let strict = run(
            dir.path(),
            &["--config", "runner-patch.yaml", "--warnings-as-errors"],
            &input,
        );
        assert_eq!(strict.status.code(), Some(5));
        assert!(strict.stdout.is_empty());
    }
}

#[test]
fn check_reports_certificates_and_changes() {
    let dir = workspace(common::SPEC);
    std::fs::write(
        dir.path().join("rendered.yaml"),
        fixture("helm3-runner-0.92.0-base"),
    )
    .unwrap();
    let out = run(
        dir.path(),
        &["check", "--config", "runner-patch.yaml", "rendered.yaml"],
        "",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "gitlab.test.helm.example.com (gitlab, file certs/gitlab.crt)",
        "subject: CN=gitlab.test.helm.example.com",
        "issuer: CN=Test Root CA",
        "SANs: gitlab.test.helm.example.com",
        "sha256: ",
        "mounted: job pods /etc/docker/certs.d/registry.test.example.com/ca.crt",
        "Deployment gitlab-test/gitlab-runner",
        "generated ConfigMap gitlab-test/gitlab-runner-registry-registry-test-example-com",
        "result: all well",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let dir = workspace(&spec_with(
        "wrong-san.crt",
        "registry.test.example.com",
        "registry",
    ));
    // An empty stdin is no release (exit 4): the warning is checked against manifests.
    let out = run(
        dir.path(),
        &["check", "--config", "runner-patch.yaml"],
        &fixture("helm3-runner-0.92.0-base"),
    );
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stdout).contains("result: warnings"));
}

/// Job pods mount the registry and CA ConfigMaps, so they go to the job namespace. When that
/// cannot be known offline they are put in the runner's namespace with a warning saying why; when
/// the stream tells (a `configMapKeyRef` to a ConfigMap in the stream) they go there, silently.
#[test]
fn job_configmaps_where_the_job_namespace_is_unknowable_or_read_from_the_stream() {
    let dir = workspace(common::SPEC);
    let base = fixture("helm3-runner-0.92.0-base");
    let generated_namespace = |out: &str, name: &str| {
        find(&docs(out), "ConfigMap", name)["metadata"]["namespace"]
            .as_str()
            .map(str::to_owned)
    };
    let registry = "gitlab-runner-registry-registry-test-example-com";

    // namespace_per_job = true in the chart's TOML: each job gets a namespace of its own.
    let per_job = base.replacen(
        "        namespace = \"gitlab-test\"\n",
        "        namespace = \"gitlab-test\"\n        namespace_per_job = true\n",
        1,
    );
    assert_ne!(per_job, base);
    let out = run(dir.path(), &["--config", "runner-patch.yaml"], &per_job);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        generated_namespace(&stdout, registry).as_deref(),
        Some("gitlab-test")
    );
    for name in [registry, "gitlab-runner-ca-corp-root"] {
        assert!(
            stderr.contains(&format!("generated ConfigMap \"{name}\", which job pods mount, is put in namespace \"gitlab-test\", the runner's, but the job namespace cannot be known offline (namespace_per_job = true")),
            "{stderr}"
        );
    }
    // The GitLab certificate is the manager's, in the runner's namespace whatever the jobs do.
    assert!(!stderr.contains("gitlab-runner-gitlab-gitlab"), "{stderr}");

    // KUBERNETES_NAMESPACE from a Secret: unknowable too.
    let anchor = "        - name: SESSION_SERVER_ADDRESS\n          value:\n";
    let from = |value_from: &str| {
        base.replacen(
            anchor,
            &format!(
                "{anchor}        - name: KUBERNETES_NAMESPACE\n          valueFrom:\n{value_from}"
            ),
            1,
        )
    };
    let secret =
        from("            secretKeyRef:\n              name: runner-ns\n              key: ns\n");
    let out = run(dir.path(), &["--config", "runner-patch.yaml"], &secret);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("(KUBERNETES_NAMESPACE comes from secretKeyRef runner-ns/ns)"),
        "{stderr}"
    );

    // From a ConfigMap of the stream: read, and the ConfigMaps go there.
    let configmap = from(
        "            configMapKeyRef:\n              name: runner-ns\n              key: ns\n",
    ) + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: runner-ns\n  namespace: gitlab-test\ndata:\n  ns: ci-jobs\n";
    let out = run(dir.path(), &["--config", "runner-patch.yaml"], &configmap);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("cannot be known offline"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        generated_namespace(&stdout, registry).as_deref(),
        Some("ci-jobs")
    );
}
