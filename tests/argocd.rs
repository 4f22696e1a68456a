//! The Argo CD CMP of deploy/argocd/plugin.yaml, run as Argo CD runs it (integrations.md §5.4):
//! the repository copied into a fresh directory (files 0644, dirs 0755, symbolic links kept, as
//! the CMP server's tarball keeps them), cwd = the app directory, the `init` and `generate`
//! commands read from plugin.yaml executed as argv without a shell, the build environment,
//! `ARGOCD_ENV_*` and `PARAM_*` as Argo CD sets them, with the real Helm 4 (and Helm 3) from
//! `.tools/`.
//!
//! An Application must not be able to render anything from outside its repository: values files,
//! the chart, the spec, a chart's `file://` dependency or a certificate file that leaves it —
//! through an absolute path, `..` or a symbolic link — is refused, with nothing on stdout and
//! nothing of the refused file or the environment on stderr. Benign applications whose files live
//! in the app directory or elsewhere in the same repository still render.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use common::{docs, find};

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");
/// Planted in files outside the repository and in the sidecar's environment.
const OTHER_APP_SECRET: &str = "other-app-db-password-271828";
const SIDECAR_TOKEN: &str = "sidecar-token-161803";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm4() -> PathBuf {
    common::tools::helm4()
}

fn helm3() -> PathBuf {
    common::tools::helm3()
}

/// Copies a tree, keeping symbolic links as links (the CMP server's tarball does).
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            symlink(fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Files 0644, directories 0755, links untouched (`preserveFileMode: false`).
fn chmod_tree(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_symlink() {
            continue;
        }
        let mode = if kind.is_dir() {
            chmod_tree(&entry.path());
            0o755
        } else {
            0o644
        };
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// A repository with an app (`apps/gitlab-runner`, the chart itself), shared files elsewhere in
/// it, and — next to it, outside — another application's files holding secrets.
struct Fixture {
    tmp: tempfile::TempDir,
    gitlab_pem: String,
}

const SPEC: &str = "apiVersion: runner-patch.dev/v1alpha1
kind: RunnerPatch
metadata:
  name: gitlab-runner
spec:
  hostAliases:
    - ip: 172.25.25.32
      hostnames: [registry.test.example.com, gitlab.test.example.com]
  pullPolicy: if-not-present
  certificates:
    - host: gitlab.test.example.com
      for: gitlab
      file: ../../shared/certs/gitlab.crt
";

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let app = src.join("apps/gitlab-runner");
        copy_tree(&repo().join("testdata/charts/mini-runner"), &app);
        // A template that shows whatever `dbPassword` the values give: the leak the checks stop.
        fs::write(
            app.join("templates/leak.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values-probe\ndata:\n  dbPassword: {{ .Values.dbPassword | default \"unset\" | quote }}\n",
        )
        .unwrap();
        fs::write(app.join("runner-patch.yaml"), SPEC).unwrap();
        fs::copy(
            repo().join("deploy/argocd/example-app/values-gitlab-test.yaml"),
            app.join("values-gitlab-test.yaml"),
        )
        .unwrap();
        fs::create_dir_all(src.join("shared/certs")).unwrap();
        fs::write(
            src.join("shared/values-shared.yaml"),
            "dbPassword: shared-in-repo\n",
        )
        .unwrap();
        let ca = common::ca("Argo CD Test Root");
        let (gitlab_pem, _) = common::leaf(
            &ca,
            "gitlab.test.example.com",
            &["gitlab.test.example.com"],
            -1,
            365,
        );
        fs::write(src.join("shared/certs/gitlab.crt"), &gitlab_pem).unwrap();
        copy_tree(
            &repo().join("testdata/charts/mini-runner"),
            &src.join("charts/mini-runner"),
        );
        // Outside the repository: another application's values and a secret-laden PEM file.
        let other = tmp.path().join("other-app");
        fs::create_dir_all(&other).unwrap();
        fs::write(
            other.join("values.yaml"),
            format!("dbPassword: {OTHER_APP_SECRET}\n"),
        )
        .unwrap();
        fs::write(
            other.join("secret.crt"),
            format!("TOKEN={OTHER_APP_SECRET}\n{gitlab_pem}"),
        )
        .unwrap();
        copy_tree(
            &repo().join("testdata/charts/mini-runner"),
            &other.join("chart"),
        );
        Fixture { tmp, gitlab_pem }
    }

    fn src(&self) -> PathBuf {
        self.tmp.path().join("src")
    }

    fn other(&self) -> PathBuf {
        self.tmp.path().join("other-app")
    }

    /// Runs init then generate as the CMP server does; `env` adds or overrides variables.
    /// Returns generate's output (or init's, when init fails).
    fn run(&self, helm: &Path, env: &[(&str, &str)]) -> Output {
        self.run_at("apps/gitlab-runner", helm, env)
    }

    fn run_at(&self, source_path: &str, helm: &Path, env: &[(&str, &str)]) -> Output {
        let cmp: Value = runner_patch::manifest::yaml::parse(
            &fs::read_to_string(repo().join("deploy/argocd/plugin.yaml")).unwrap(),
        )
        .unwrap();
        // A fresh copy per run, as the CMP server unpacks one per request.
        let work = tempfile::tempdir_in(self.tmp.path()).unwrap();
        let checkout = work.path().join("repo");
        copy_tree(&self.src(), &checkout);
        chmod_tree(&checkout);
        let app = checkout.join(source_path);
        // The sidecar image: helm and runner-patch on PATH, the Helm 4 plugin in HELM_PLUGINS.
        let bin = work.path().join("bin");
        fs::create_dir_all(&bin).unwrap();
        symlink(helm, bin.join("helm")).unwrap();
        symlink(BIN, bin.join("runner-patch")).unwrap();
        let plugin = work.path().join("plugins/runner-patch");
        fs::create_dir_all(plugin.join("bin")).unwrap();
        fs::create_dir_all(plugin.join("scripts")).unwrap();
        fs::copy(repo().join("plugin.yaml"), plugin.join("plugin.yaml")).unwrap();
        fs::copy(
            repo().join("scripts/helm-plugin.sh"),
            plugin.join("scripts/helm-plugin.sh"),
        )
        .unwrap();
        fs::copy(BIN, plugin.join("bin/runner-patch")).unwrap();
        let path = format!("{}:/usr/bin:/bin", bin.display());
        let step = |name: &str| {
            let argv: Vec<String> = cmp["spec"][name]["command"]
                .as_array()
                .unwrap()
                .iter()
                .chain(cmp["spec"][name]["args"].as_array().into_iter().flatten())
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            let mut command = Command::new(&argv[0]);
            command
                .args(&argv[1..])
                .current_dir(&app)
                .env_clear()
                .env("PATH", &path)
                .env("HOME", work.path())
                .env("HELM_PLUGINS", work.path().join("plugins"))
                .env("HELM_CACHE_HOME", work.path().join("hc"))
                .env("HELM_CONFIG_HOME", work.path().join("hcfg"))
                .env("HELM_DATA_HOME", work.path().join("hd"))
                // The operator's secret in the sidecar's environment.
                .env("SIDECAR_TOKEN", SIDECAR_TOKEN)
                .env("ARGOCD_APP_NAME", "gitlab-runner")
                .env("ARGOCD_APP_NAMESPACE", "gitlab-test")
                .env("ARGOCD_APP_PROJECT_NAME", "default")
                .env("ARGOCD_APP_REVISION", "0123456789abcdef")
                .env("ARGOCD_APP_SOURCE_PATH", source_path)
                .env(
                    "ARGOCD_APP_SOURCE_REPO_URL",
                    "https://git.example.com/platform/deployments.git",
                )
                .env("KUBE_VERSION", "1.33.0")
                .env("KUBE_API_VERSIONS", "v1,apps/v1,batch/v1")
                .env("ARGOCD_ENV_RUNNER_PATCH_CONFIG", "runner-patch.yaml")
                .env("PARAM_VALUES_FILES_0", "values-gitlab-test.yaml");
            for (k, v) in env {
                if v.is_empty() {
                    command.env_remove(k);
                } else {
                    command.env(k, v);
                }
            }
            command.output().unwrap()
        };
        let init = step("init");
        if !init.status.success() {
            return init;
        }
        step("generate")
    }

    /// Plants a symbolic link in the source repository (kept by the copy).
    fn link(&self, target: &Path, at: &str) {
        let at = self.src().join(at);
        fs::create_dir_all(at.parent().unwrap()).unwrap();
        symlink(target, at).unwrap();
    }
}

#[track_caller]
fn rendered(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "generate failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // What Argo CD does with the output: split, drop empty documents, require apiVersion/kind.
    let d = docs(stdout.trim_end_matches('\n'));
    assert!(!d.is_empty());
    assert!(
        d.iter()
            .all(|x| x["apiVersion"].is_string() && x["kind"].is_string())
    );
    d
}

/// A refusal: non-zero, stdout empty, `expect` on stderr, nothing planted printed.
#[track_caller]
fn refused(out: &Output, expect: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail; stderr: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "no manifests may reach Argo CD on a refusal"
    );
    assert!(stderr.contains(expect), "want {expect:?} in:\n{stderr}");
    for planted in [OTHER_APP_SECRET, SIDECAR_TOKEN, "BEGIN CERTIFICATE"] {
        assert!(!stderr.contains(planted), "{planted} printed:\n{stderr}");
    }
}

#[test]
fn benign_app_with_files_in_the_app_and_elsewhere_in_the_repository_renders() {
    let f = Fixture::new();
    for helm in [helm4(), helm3()] {
        let out = f.run(
            &helm,
            &[("PARAM_VALUES_FILES_1", "../../shared/values-shared.yaml")],
        );
        let d = rendered(&out);
        // Values from elsewhere in the repository are used …
        assert_eq!(
            find(&d, "ConfigMap", "values-probe")["data"]["dbPassword"],
            "shared-in-repo"
        );
        // … the spec patched the release, and its certificate file from ../../shared arrived.
        let toml = find(&d, "ConfigMap", "gitlab-runner")["data"]["config.template.toml"]
            .as_str()
            .unwrap();
        assert!(
            toml.contains("[[runners.kubernetes.host_aliases]]"),
            "{toml}"
        );
        assert_eq!(
            find(
                &d,
                "ConfigMap",
                "gitlab-runner-gitlab-gitlab-test-example-com"
            )["data"]["gitlab.test.example.com.crt"],
            f.gitlab_pem.as_str()
        );
    }
}

#[test]
fn chart_elsewhere_in_the_repository_and_links_inside_it_render() {
    let f = Fixture::new();
    // A link inside the repository (to the shared values) is fine.
    f.link(
        Path::new("../../shared/values-shared.yaml"),
        "apps/gitlab-runner/linked-values.yaml",
    );
    let out = f.run(
        &helm4(),
        &[
            ("ARGOCD_ENV_CHART", "../../charts/mini-runner"),
            ("PARAM_VALUES_FILES_1", "linked-values.yaml"),
        ],
    );
    let d = rendered(&out);
    find(&d, "Deployment", "gitlab-runner");
}

#[test]
fn values_files_outside_the_repository_are_refused() {
    let f = Fixture::new();
    let outside = f.other().join("values.yaml").display().to_string();
    for (value, expect) in [
        (outside.as_str(), "is an absolute path"),
        ("/etc/hostname", "is an absolute path"),
        (
            "../../../other-app/values.yaml",
            "leads outside the repository",
        ),
        (
            "../../../../other-app/values.yaml",
            "leads outside the repository",
        ),
    ] {
        for helm in [helm4(), helm3()] {
            let out = f.run(&helm, &[("PARAM_VALUES_FILES_1", value)]);
            refused(&out, expect);
            refused(&out, "PARAM_VALUES_FILES_1");
        }
    }
}

#[test]
fn a_symbolic_link_out_of_the_repository_is_refused_wherever_it_is() {
    for (target, at, env) in [
        // A values file that is a link to another application's values.
        (
            "other-app/values.yaml",
            "apps/gitlab-runner/evil-values.yaml",
            vec![("PARAM_VALUES_FILES_1", "evil-values.yaml")],
        ),
        // A directory on the way.
        (
            "other-app",
            "apps/gitlab-runner/elsewhere",
            vec![("PARAM_VALUES_FILES_1", "elsewhere/values.yaml")],
        ),
        // The spec.
        (
            "other-app/values.yaml",
            "apps/gitlab-runner/evil-spec.yaml",
            vec![("ARGOCD_ENV_RUNNER_PATCH_CONFIG", "evil-spec.yaml")],
        ),
        // The chart.
        (
            "other-app/chart",
            "apps/chart-link",
            vec![("ARGOCD_ENV_CHART", "../chart-link")],
        ),
        // A template in the chart: Helm would follow it.
        (
            "other-app/secret.crt",
            "apps/gitlab-runner/templates/x.yaml",
            vec![],
        ),
        // A certificate file of the spec.
        (
            "other-app/secret.crt",
            "shared/certs/gitlab.crt.link",
            vec![],
        ),
    ] {
        let f = Fixture::new();
        f.link(&f.tmp.path().join(target), at);
        let out = f.run(&helm4(), &env);
        refused(&out, "leads outside it");
    }
    // /proc/self/environ through a link, with a PEM block in an Application's plugin env.
    let f = Fixture::new();
    f.link(
        Path::new("/proc/self/environ"),
        "apps/gitlab-runner/env.crt",
    );
    let pem_env = format!("{}{SIDECAR_TOKEN}", f.gitlab_pem);
    let out = f.run(&helm4(), &[("ARGOCD_ENV_CA", &pem_env)]);
    refused(&out, "leads outside it");
}

#[test]
fn chart_and_spec_paths_outside_the_repository_are_refused() {
    let f = Fixture::new();
    let chart = f.other().join("chart").display().to_string();
    for (name, value, expect) in [
        ("ARGOCD_ENV_CHART", chart.as_str(), "is an absolute path"),
        (
            "ARGOCD_ENV_CHART",
            "../../../other-app/chart",
            "leads outside the repository",
        ),
        (
            "ARGOCD_ENV_CHART",
            "oci://registry.example.com/charts/x",
            "the chart must be a directory in the repository",
        ),
        (
            "ARGOCD_ENV_RUNNER_PATCH_CONFIG",
            "/proc/self/environ",
            "is an absolute path",
        ),
        (
            "ARGOCD_ENV_RUNNER_PATCH_CONFIG",
            "../../../other-app/values.yaml",
            "leads outside the repository",
        ),
        (
            "ARGOCD_ENV_RUNNER_PATCH_CONFIG",
            "missing.yaml",
            "is not inside the repository",
        ),
    ] {
        let out = f.run(&helm4(), &[(name, value)]);
        refused(&out, expect);
        refused(&out, name);
    }
}

#[test]
fn missing_and_existing_outside_paths_get_the_same_message() {
    let f = Fixture::new();
    f.link(
        &f.other().join("values.yaml"),
        "apps/gitlab-runner/exists.yaml",
    );
    let exists = f.run(&helm4(), &[]);
    let g = Fixture::new();
    g.link(
        &g.other().join("nothing.yaml"),
        "apps/gitlab-runner/exists.yaml",
    );
    let missing = g.run(&helm4(), &[]);
    refused(&exists, "leads outside it");
    assert_eq!(exists.stderr, missing.stderr);
    let a = f.run(
        &helm4(),
        &[("PARAM_VALUES_FILES_1", "../../../other-app/values.yaml")],
    );
    let b = f.run(
        &helm4(),
        &[("PARAM_VALUES_FILES_1", "../../../other-app/nothing.yaml")],
    );
    assert_eq!(
        String::from_utf8_lossy(&a.stderr).replace("values.yaml", "X"),
        String::from_utf8_lossy(&b.stderr).replace("nothing.yaml", "X")
    );
}

#[test]
fn certificate_files_are_confined_to_the_repository_root() {
    let f = Fixture::new();
    // The spec's certificate climbs out of the repository: refused by runner-patch, run by Helm 4
    // as its post-renderer, with --file-root = the repository root.
    fs::write(
        f.src().join("apps/gitlab-runner/runner-patch.yaml"),
        SPEC.replace(
            "../../shared/certs/gitlab.crt",
            "../../../other-app/secret.crt",
        ),
    )
    .unwrap();
    for helm in [helm4(), helm3()] {
        let out = f.run(&helm, &[]);
        refused(&out, "leads outside the file root");
        // Paths are given from the app directory: the message does not show where the CMP
        // server unpacked the repository.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("/repo/"), "{stderr}");
        assert!(stderr.contains("./runner-patch.yaml"), "{stderr}");
    }
}

/// The issue's reproduction: `file: /proc/self/environ` plus an Application env var holding a PEM
/// block used to put the sidecar's whole environment into a ConfigMap.
#[test]
fn proc_self_environ_with_a_pem_in_the_environment_is_refused() {
    let f = Fixture::new();
    fs::write(
        f.src().join("apps/gitlab-runner/runner-patch.yaml"),
        SPEC.replace("../../shared/certs/gitlab.crt", "/proc/self/environ"),
    )
    .unwrap();
    let pem_env = format!("{}{SIDECAR_TOKEN}", f.gitlab_pem);
    for helm in [helm4(), helm3()] {
        let out = f.run(&helm, &[("ARGOCD_ENV_CA", &pem_env)]);
        refused(&out, "\"/proc/self/environ\" is an absolute path");
    }
}

#[test]
fn url_values_files_need_the_operators_scheme_allow_list() {
    let f = Fixture::new();
    let out = f.run(
        &helm4(),
        &[(
            "PARAM_VALUES_FILES_1",
            "https://example.invalid/values.yaml",
        )],
    );
    refused(&out, "is a https URL");
    refused(&out, "RUNNER_PATCH_VALUES_SCHEMES");
    // Allowed by the operator: passed to Helm, which fetches it (here: nothing listens).
    let out = f.run(
        &helm4(),
        &[
            ("PARAM_VALUES_FILES_1", "https://127.0.0.1:9/values.yaml"),
            ("RUNNER_PATCH_VALUES_SCHEMES", "https"),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains("RUNNER_PATCH_VALUES_SCHEMES"), "{stderr}");
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
    // Helm reads a value whose scheme it has no getter for as a local path: `..` is refused.
    let out = f.run(
        &helm4(),
        &[
            (
                "PARAM_VALUES_FILES_1",
                "s3://../../../../other-app/values.yaml",
            ),
            ("RUNNER_PATCH_VALUES_SCHEMES", "https,s3"),
        ],
    );
    refused(&out, "`..`");
}

#[test]
fn without_a_source_path_the_app_directory_is_the_root() {
    let f = Fixture::new();
    // ARGOCD_APP_SOURCE_PATH unset: ../../shared is outside the root now.
    let out = f.run(&helm4(), &[("ARGOCD_APP_SOURCE_PATH", "")]);
    refused(&out, "leads outside the file root");
}

#[test]
fn init_refuses_file_dependencies_outside_the_repository() {
    let f = Fixture::new();
    let chart_yaml = f.src().join("apps/gitlab-runner/Chart.yaml");
    let original = fs::read_to_string(&chart_yaml).unwrap();
    fs::write(
        &chart_yaml,
        format!(
            "{original}dependencies:\n  - name: gitlab-runner\n    version: 0.92.0\n    repository: file://../../../other-app/chart\n"
        ),
    )
    .unwrap();
    let out = f.run(&helm4(), &[]);
    refused(&out, "Chart.yaml dependencies[0].repository");
    refused(&out, "leads outside the repository");
    // Inside the repository, init builds the dependency and generate renders.
    fs::write(
        &chart_yaml,
        format!(
            "{original}dependencies:\n  - name: gitlab-runner\n    alias: sub\n    version: 0.92.0\n    repository: file://../../charts/mini-runner\n"
        ),
    )
    .unwrap();
    for helm in [helm4(), helm3()] {
        let d = rendered(&f.run(&helm, &[]));
        assert!(d.iter().any(|x| x["kind"] == "Deployment"));
    }
}

// ---- Dependencies from every file Helm reads them from (review finding F1) ----

/// `other-app/vchart` (outside the repository, its values holding the secret), an in-repo
/// `sub` chart of the same name and version, and a template that shows what `vchart` rendered.
fn with_dependency_probe(f: &Fixture) -> PathBuf {
    let victim = f.other().join("vchart");
    fs::create_dir_all(victim.join("templates")).unwrap();
    fs::write(
        victim.join("Chart.yaml"),
        "apiVersion: v2\nname: vchart\nversion: 0.1.0\n",
    )
    .unwrap();
    fs::write(
        victim.join("values.yaml"),
        format!("dbPassword: {OTHER_APP_SECRET}\n"),
    )
    .unwrap();
    let app = f.src().join("apps/gitlab-runner");
    fs::create_dir_all(app.join("sub/templates")).unwrap();
    fs::write(
        app.join("sub/Chart.yaml"),
        "apiVersion: v2\nname: vchart\nversion: 0.1.0\n",
    )
    .unwrap();
    fs::write(
        app.join("templates/dependency-probe.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependency-probe\ndata:\n  seen: {{ .Values.vchart | toJson | quote }}\n",
    )
    .unwrap();
    victim
}

/// Helm's lock digest (`resolver.HashReq`): sha256 of the JSON of `[requested, locked]`.
fn lock_file(requested: &str, locked: &str) -> String {
    use sha2::Digest;
    let dep =
        |repo: &str| format!(r#"{{"name":"vchart","version":"0.1.0","repository":"{repo}"}}"#);
    let json = format!("[[{}],[{}]]", dep(requested), dep(locked));
    let digest = sha2::Sha256::digest(json.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "dependencies:\n- name: vchart\n  repository: {locked}\n  version: 0.1.0\ndigest: sha256:{hex}\ngenerated: \"2024-01-01T00:00:00Z\"\n"
    )
}

fn add_dependency(f: &Fixture, repository: &str) {
    let chart_yaml = f.src().join("apps/gitlab-runner/Chart.yaml");
    let mut text = fs::read_to_string(&chart_yaml).unwrap();
    text.push_str(&format!(
        "dependencies:\n  - name: vchart\n    version: 0.1.0\n    repository: {repository}\n"
    ));
    fs::write(&chart_yaml, text).unwrap();
}

#[test]
fn dependencies_in_requirements_and_lock_files_are_checked_too() {
    for lock in ["Chart.lock", "requirements.lock"] {
        let f = Fixture::new();
        let victim = with_dependency_probe(&f);
        add_dependency(&f, "file://./sub");
        // The lock names the other application's chart, with the digest Helm checks.
        let locked = format!("file://{}", victim.display());
        fs::write(
            f.src().join("apps/gitlab-runner").join(lock),
            lock_file("file://./sub", &locked),
        )
        .unwrap();
        for helm in [helm4(), helm3()] {
            let out = f.run(&helm, &[]);
            refused(&out, &format!("{lock} dependencies[0].repository"));
            refused(&out, "is an absolute path");
        }
    }
    // requirements.yaml is merged over Chart.yaml even for apiVersion v2.
    let f = Fixture::new();
    with_dependency_probe(&f);
    add_dependency(&f, "file://./sub");
    fs::write(
        f.src().join("apps/gitlab-runner/requirements.yaml"),
        "dependencies:\n  - name: vchart\n    version: 0.1.0\n    repository: file://../../../other-app/vchart\n",
    )
    .unwrap();
    for helm in [helm4(), helm3()] {
        let out = f.run(&helm, &[]);
        refused(&out, "requirements.yaml dependencies[0].repository");
        refused(&out, "leads outside the repository");
    }
}

#[test]
fn dependency_keys_are_matched_as_helm_matches_them_and_subcharts_are_followed() {
    let f = Fixture::new();
    let victim = with_dependency_probe(&f);
    // Go's JSON step matches `Repoſitory` (long s) to `repository`.
    let chart_yaml = f.src().join("apps/gitlab-runner/Chart.yaml");
    let original = fs::read_to_string(&chart_yaml).unwrap();
    fs::write(
        &chart_yaml,
        format!(
            "{original}dependencies:\n  - name: vchart\n    version: 0.1.0\n    Repoſitory: file://{}\n",
            victim.display()
        ),
    )
    .unwrap();
    for helm in [helm4(), helm3()] {
        refused(&f.run(&helm, &[]), "is an absolute path");
    }
    // A file:// subchart inside the repository whose own dependencies leave it.
    let g = Fixture::new();
    with_dependency_probe(&g);
    add_dependency(&g, "file://./sub");
    fs::write(
        g.src().join("apps/gitlab-runner/sub/Chart.yaml"),
        "apiVersion: v2\nname: vchart\nversion: 0.1.0\ndependencies:\n  - name: x\n    version: 0.1.0\n    repository: file://../../../../other-app/vchart\n",
    )
    .unwrap();
    refused(
        &g.run(&helm4(), &[]),
        "sub/Chart.yaml dependencies[0].repository",
    );
}

#[test]
fn remote_dependencies_need_the_operators_scheme_and_local_locks_still_build() {
    let f = Fixture::new();
    with_dependency_probe(&f);
    add_dependency(&f, "https://charts.example.invalid");
    let out = f.run(&helm4(), &[]);
    refused(&out, "RUNNER_PATCH_DEPENDENCY_SCHEMES");
    // Allowed: Helm is asked to fetch it (here it cannot: no network, no such host).
    let out = f.run(
        &helm4(),
        &[("RUNNER_PATCH_DEPENDENCY_SCHEMES", "https,oci")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty());
    assert!(
        !stderr.contains("RUNNER_PATCH_DEPENDENCY_SCHEMES"),
        "{stderr}"
    );
    // A lock inside the repository builds and renders, with Helm 4 and Helm 3.
    let g = Fixture::new();
    with_dependency_probe(&g);
    add_dependency(&g, "file://./sub");
    fs::write(
        g.src().join("apps/gitlab-runner/Chart.lock"),
        lock_file("file://./sub", "file://./sub"),
    )
    .unwrap();
    for helm in [helm4(), helm3()] {
        let d = rendered(&g.run(&helm, &[]));
        assert_eq!(
            find(&d, "ConfigMap", "dependency-probe")["data"]["seen"],
            r#"{"global":{}}"#
        );
    }
}

// ---- values.schema.json references (F2) ----

#[test]
fn schema_references_are_not_followed() {
    let f = Fixture::new();
    // An outside JSON schema whose enum holds the secret: a failed validation would print it.
    fs::write(
        f.other().join("leak.json"),
        format!("{{\"type\":\"string\",\"enum\":[\"{OTHER_APP_SECRET}\"]}}"),
    )
    .unwrap();
    let schema = format!(
        "{{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\",\"properties\":{{\"dbPassword\":{{\"$ref\":\"file://{}\"}}}}}}",
        f.other().join("leak.json").display()
    );
    let app = f.src().join("apps/gitlab-runner");
    fs::write(app.join("values.schema.json"), &schema).unwrap();
    // The same in an unpacked subchart.
    fs::create_dir_all(app.join("charts/sub")).unwrap();
    fs::write(
        app.join("charts/sub/Chart.yaml"),
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    )
    .unwrap();
    fs::write(app.join("charts/sub/values.schema.json"), &schema).unwrap();
    for helm in [helm4(), helm3()] {
        // dbPassword from the shared values does not match the enum: a validation would fail.
        let out = f.run(
            &helm,
            &[("PARAM_VALUES_FILES_1", "../../shared/values-shared.yaml")],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains(OTHER_APP_SECRET), "{stderr}");
        let d = rendered(&out);
        assert_eq!(
            find(&d, "ConfigMap", "values-probe")["data"]["dbPassword"],
            "shared-in-repo"
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(OTHER_APP_SECRET));
    }
}

// ---- Symbolic links to nothing (F3) ----

#[test]
fn dangling_links_and_links_that_climb_out_are_refused() {
    for target in [
        // Through the directory `helm dependency build` creates (`tmpcharts-<pid>`): resolves
        // to the other application once Helm has made it.
        "../../apps/gitlab-runner/tmpcharts-4242/../../../../other-app/values.yaml",
        // To a file that does not exist (yet).
        "../later.yaml",
    ] {
        let f = Fixture::new();
        f.link(Path::new(target), "shared/sub/leak.txt");
        for helm in [helm4(), helm3()] {
            refused(&f.run(&helm, &[]), "leads outside it, to nothing");
        }
    }
}
