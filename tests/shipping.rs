//! Shipping, end to end with the real tools: the signed Helm 4 plugin archive
//! (scripts/package-plugin.sh, GnuPG, `helm plugin install --keyring`), its OCI distribution
//! (scripts/push-plugin.sh, Debian's docker-registry, `helm plugin install oci://…`), and the Argo CD
//! sidecar image (scripts/build-argocd-image.sh, buildah) running the CMP commands of
//! deploy/argocd/plugin.yaml inside it.
//!
//! The binary packaged is `RUNNER_PATCH_DIST_BIN` (scripts/test.sh passes the static distribution
//! build) or, for the archive and OCI tests, the one cargo built for this test run. The image needs
//! a static binary: without `RUNNER_PATCH_DIST_BIN` it runs scripts/build-dist.sh.
//!
//! Also: the archive's plugin.yaml names only the binary's os/arch, packaging twice gives the same
//! .tgz, THIRD-PARTY-LICENSES and the image's licence label, the image's CA bundle is the Mozilla
//! set only, and a tampered .tools/helm4/helm stops the image build.
//!
//! A test whose tool is missing (gpg, docker-registry, buildah as root) is reported as ignored, with
//! the reason on stderr; under scripts/test.sh (RUNNER_PATCH_REQUIRE_ALL=1) it fails instead.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::Value;

mod common;

use common::tools::{self, on_path, repo};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The spec the archive and OCI tests post-render with.
const SPEC: &str = "apiVersion: runner-patch.dev/v1alpha1
kind: RunnerPatch
metadata:
  name: shipping
spec:
  hostAliases:
    - ip: 172.25.25.32
      hostnames: [registry.test.example.com]
  pullPolicy: if-not-present
";

fn main() {
    let args = Arguments::from_args();
    let gpg = on_path("gpg");
    let registry = gpg.clone().and(on_path("docker-registry"));
    let buildah = on_path("buildah").and_then(|p| {
        if is_root() {
            Ok(p)
        } else {
            Err("buildah builds need root (vfs storage, chroot isolation)".into())
        }
    });
    let trial = |name: &'static str, needs: &Result<PathBuf, String>, test: fn()| {
        let skip = needs
            .as_ref()
            .err()
            .is_some_and(|why| tools::skip_suite(&format!("shipping::{name}"), why));
        Trial::test(name, move || {
            test();
            Ok::<(), Failed>(())
        })
        .with_ignored_flag(skip)
    };
    let trials = vec![
        trial(
            "signed_archive_installs_verified_and_runs_its_bundled_binary",
            &gpg,
            signed_archive_installs_verified_and_runs_its_bundled_binary,
        ),
        trial(
            "archive_packaging_is_reproducible",
            &Ok(PathBuf::new()),
            archive_packaging_is_reproducible,
        ),
        trial(
            "tampered_or_unsigned_archive_is_refused",
            &gpg,
            tampered_or_unsigned_archive_is_refused,
        ),
        trial(
            "oci_push_then_verified_install_from_a_real_registry",
            &registry,
            oci_push_then_verified_install_from_a_real_registry,
        ),
        trial(
            "argocd_image_runs_the_cmp_commands_on_the_example_app",
            &buildah,
            argocd_image_runs_the_cmp_commands_on_the_example_app,
        ),
        trial(
            "argocd_image_refuses_a_hostile_app",
            &buildah,
            argocd_image_refuses_a_hostile_app,
        ),
        trial(
            "argocd_image_carries_only_the_mozilla_ca_set",
            &buildah,
            argocd_image_carries_only_the_mozilla_ca_set,
        ),
        trial(
            "argocd_image_build_refuses_a_tampered_helm",
            &buildah,
            argocd_image_build_refuses_a_tampered_helm,
        ),
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    // Statics are never dropped: remove what the shared fixtures left in temp dirs (the image
    // store alone is a few hundred MB of vfs layers).
    if let Some(image) = IMAGE.get() {
        let _ = fs::remove_dir_all(image.store.path());
    }
    if let Some(signed) = SIGNED.get() {
        let _ = fs::remove_dir_all(signed.dist.path());
        let _ = fs::remove_dir_all(signed.keys.dir.path());
    }
    conclusion.exit();
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
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

/// The last line of a script's stdout (its documented result).
fn last_line(stdout: &str) -> String {
    stdout.lines().last().unwrap_or_default().to_owned()
}

/// A helm 4 command with every piece of Helm state in `home`, and a PATH without runner-patch.
fn helm(home: &Path) -> Command {
    let mut c = Command::new(tools::helm4());
    c.env("HELM_DATA_HOME", home.join("data"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("PATH", "/usr/bin:/bin")
        .env_remove("HELM_PLUGINS")
        .env_remove("RUNNER_PATCH_CONFIG");
    c
}

/// A throwaway GnuPG signing key, exported the way Helm reads keyrings (OpenPGP packets in a file).
struct Keys {
    dir: tempfile::TempDir,
    secret: PathBuf,
    public: PathBuf,
    name: &'static str,
}

fn gen_keys(name: &'static str) -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("gnupg");
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let params = dir.path().join("params");
    fs::write(
        &params,
        format!(
            "%no-protection\nKey-Type: RSA\nKey-Length: 2048\nKey-Usage: sign\n\
             Name-Real: runner-patch test signer\nName-Email: {name}\nExpire-Date: 1d\n%commit\n"
        ),
    )
    .unwrap();
    let gpg = |args: &[&str], out: Option<&Path>| {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", &home)
            .args(["--batch", "--quiet"])
            .args(args);
        if let Some(out) = out {
            c.stdout(fs::File::create(out).unwrap());
        }
        ok(c.output().unwrap());
    };
    gpg(&["--gen-key", params.to_str().unwrap()], None);
    let secret = dir.path().join("secring.gpg");
    let public = dir.path().join("pubring.gpg");
    gpg(&["--export-secret-keys", name], Some(&secret));
    gpg(&["--export", name], Some(&public));
    // gpg started an agent for this home: stop it, nothing else will.
    let _ = Command::new("gpgconf")
        .env("GNUPGHOME", &home)
        .args(["--kill", "all"])
        .output();
    assert!(
        fs::metadata(&secret).unwrap().len() > 0,
        "no secret key exported"
    );
    Keys {
        dir,
        secret,
        public,
        name,
    }
}

/// The binary to package: the distribution build when scripts/test.sh passes it.
fn packaged_binary() -> PathBuf {
    std::env::var_os("RUNNER_PATCH_DIST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_runner-patch")))
}

struct Signed {
    keys: Keys,
    dist: tempfile::TempDir,
    archive: PathBuf,
}

/// scripts/package-plugin.sh with a signing key, once per test process.
static SIGNED: OnceLock<Signed> = OnceLock::new();

fn signed_archive() -> &'static Signed {
    SIGNED.get_or_init(|| {
        let keys = gen_keys("signer@runner-patch.test");
        let dist = tempfile::tempdir().unwrap();
        let out = ok(Command::new(repo().join("scripts/package-plugin.sh"))
            .env("DIST", dist.path())
            .env("HELM", tools::helm4())
            .env("RUNNER_PATCH_DIST_BIN", packaged_binary())
            .env("HELM_PLUGIN_SIGN_KEY", keys.name)
            .env("HELM_PLUGIN_KEYRING", &keys.secret)
            .output()
            .unwrap());
        let archive = PathBuf::from(last_line(&out));
        assert_eq!(
            archive,
            dist.path().join(format!("runner-patch-{VERSION}.tgz")),
            "{out}"
        );
        Signed {
            keys,
            dist,
            archive,
        }
    })
}

fn prov(archive: &Path) -> PathBuf {
    PathBuf::from(format!("{}.prov", archive.display()))
}

/// `helm template` of the mini chart with runner-patch as post-renderer, runner-patch not on PATH.
fn post_render(home: &Path) -> String {
    let spec = home.join("runner-patch.yaml");
    fs::write(&spec, SPEC).unwrap();
    ok(helm(home)
        .args(["template", "gitlab-runner"])
        .arg(repo().join("testdata/charts/mini-runner"))
        .args(["-n", "gitlab-test", "--post-renderer", "runner-patch"])
        .arg(format!("--post-renderer-args=--config={}", spec.display()))
        .output()
        .unwrap())
}

/// The runner ConfigMap's TOML and the manager Deployment of a stream carry `ip` as a host alias.
#[track_caller]
fn assert_aliases(stream: &str, ip: &str) {
    let docs = common::docs(stream);
    let toml = docs
        .iter()
        .find_map(|d| d["data"]["config.template.toml"].as_str())
        .unwrap_or_else(|| panic!("no runner ConfigMap in:\n{stream}"));
    assert!(
        toml.contains("[[runners.kubernetes.host_aliases]]") && toml.contains(ip),
        "TOML not patched:\n{toml}"
    );
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("no Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["hostAliases"][0]["ip"], ip,
        "manager pod not patched"
    );
}

fn signed_archive_installs_verified_and_runs_its_bundled_binary() {
    let signed = signed_archive();
    assert!(
        prov(&signed.archive).is_file(),
        "no .prov beside the archive"
    );
    let listing = ok(Command::new("tar")
        .arg("tzf")
        .arg(&signed.archive)
        .output()
        .unwrap());
    for file in [
        "runner-patch/plugin.yaml",
        "runner-patch/scripts/helm-plugin.sh",
        "runner-patch/bin/runner-patch",
        "runner-patch/LICENSE-MIT",
        "runner-patch/LICENSE-APACHE",
        "runner-patch/THIRD-PARTY-LICENSES",
    ] {
        assert!(
            listing.lines().any(|l| l == file),
            "{file} missing:\n{listing}"
        );
    }
    // The archive's plugin.yaml offers exactly the platform its binary was built for.
    let manifest: Value = runner_patch::manifest::yaml::parse(&archive_file(
        &signed.archive,
        "runner-patch/plugin.yaml",
    ))
    .unwrap();
    let platforms: Vec<(String, String)> = manifest["runtimeConfig"]["platformCommand"]
        .as_array()
        .expect("no platformCommand")
        .iter()
        .map(|p| {
            (
                p["os"].as_str().unwrap().into(),
                p["arch"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(platforms, [("linux".to_owned(), host_goarch().to_owned())]);
    // The third-party licences: the crates with version and licence, and glibc's.
    let licenses = archive_file(&signed.archive, "runner-patch/THIRD-PARTY-LICENSES");
    for needle in [
        "\nserde_json ",
        "MIT OR Apache-2.0",
        "GNU C Library (glibc), statically linked",
        "GNU LESSER GENERAL PUBLIC LICENSE",
    ] {
        assert!(
            licenses.contains(needle),
            "THIRD-PARTY-LICENSES lacks {needle:?}"
        );
    }

    let home = tempfile::tempdir().unwrap();
    let out = helm(home.path())
        .args(["plugin", "install"])
        .arg(&signed.archive)
        .arg("--keyring")
        .arg(&signed.keys.public)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Plugin Hash Verified") && said.contains(signed.keys.name),
        "not verified:\n{said}"
    );
    let list = ok(helm(home.path()).args(["plugin", "list"]).output().unwrap());
    assert!(
        list.lines()
            .any(|l| l.starts_with("runner-patch") && l.contains("signed")),
        "{list}"
    );
    // Nothing but the archive's bin/runner-patch can run: not on PATH, no target/ in the plugin.
    assert!(
        Command::new("sh")
            .args(["-c", "command -v runner-patch"])
            .env("PATH", "/usr/bin:/bin")
            .status()
            .is_ok_and(|s| !s.success()),
        "runner-patch is on /usr/bin:/bin"
    );
    assert_aliases(&post_render(home.path()), "172.25.25.32");
}

/// One file of a .tgz, as text.
fn archive_file(archive: &Path, file: &str) -> String {
    ok(Command::new("tar")
        .arg("xzfO")
        .arg(archive)
        .arg(file)
        .output()
        .unwrap())
}

/// This machine's architecture as Helm (Go) names it in platformCommand.
fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => panic!("no Go name for {other}"),
    }
}

/// Packaging the same binary twice, a second apart, gives the same archive byte for byte (fixed
/// entry mtimes; helm writes a zero gzip time).
fn archive_packaging_is_reproducible() {
    let digests: Vec<String> = (0..2)
        .map(|i| {
            if i == 1 {
                std::thread::sleep(Duration::from_millis(1100));
            }
            let dist = tempfile::tempdir().unwrap();
            let out = ok(Command::new(repo().join("scripts/package-plugin.sh"))
                .env("DIST", dist.path())
                .env("HELM", tools::helm4())
                .env("RUNNER_PATCH_DIST_BIN", packaged_binary())
                .env_remove("HELM_PLUGIN_SIGN_KEY")
                .env_remove("SOURCE_DATE_EPOCH")
                .output()
                .unwrap());
            let sum = ok(Command::new("sha256sum")
                .arg(last_line(&out))
                .output()
                .unwrap());
            sum.split_whitespace().next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(digests[0], digests[1], "two packagings differ");
}

fn tampered_or_unsigned_archive_is_refused() {
    let signed = signed_archive();
    let work = tempfile::tempdir().unwrap();
    let name = signed.archive.file_name().unwrap();

    // Repacked with a changed shim (a valid archive, not the signed one), the signature kept.
    let unpacked = work.path().join("unpacked");
    fs::create_dir(&unpacked).unwrap();
    ok(Command::new("tar")
        .arg("xzf")
        .arg(&signed.archive)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap());
    let shim = unpacked.join("runner-patch/scripts/helm-plugin.sh");
    let mut text = fs::read_to_string(&shim).unwrap();
    text.insert_str(text.find('\n').unwrap() + 1, "echo tampered >&2\n");
    fs::write(&shim, text).unwrap();
    let tampered = work.path().join("tampered");
    fs::create_dir(&tampered).unwrap();
    ok(Command::new("tar")
        .arg("czf")
        .arg(tampered.join(name))
        .arg("-C")
        .arg(&unpacked)
        .arg("runner-patch")
        .output()
        .unwrap());
    fs::copy(prov(&signed.archive), prov(&tampered.join(name))).unwrap();

    let unsigned = work.path().join("unsigned");
    fs::create_dir(&unsigned).unwrap();
    fs::copy(&signed.archive, unsigned.join(name)).unwrap();

    // Signed, but by a key the user does not trust.
    let stranger = gen_keys("stranger@runner-patch.test");

    for (case, archive, keyring, reason) in [
        (
            "tampered",
            tampered.join(name),
            &signed.keys.public,
            "sha256 sum does not match",
        ),
        (
            "unsigned",
            unsigned.join(name),
            &signed.keys.public,
            "provenance",
        ),
        (
            "untrusted key",
            signed.archive.clone(),
            &stranger.public,
            UNTRUSTED_KEY_REFUSAL,
        ),
    ] {
        let home = tempfile::tempdir().unwrap();
        let out = helm(home.path())
            .args(["plugin", "install"])
            .arg(&archive)
            .arg("--keyring")
            .arg(keyring)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: installed:\n{stderr}");
        assert!(
            stderr.contains(reason),
            "{case}: unexpected refusal:\n{stderr}"
        );
        let list = ok(helm(home.path()).args(["plugin", "list"]).output().unwrap());
        assert!(
            !list.contains("runner-patch"),
            "{case}: left installed:\n{list}"
        );
    }
}

/// Debian's docker-registry on 127.0.0.1 with storage in a temp dir; stopped when dropped (also
/// when the test panics).
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: runner-patch-test\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let mut registry = Registry { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while registry.get("/v2/").is_none() {
            if let Ok(Some(status)) = registry.child.try_wait() {
                panic!(
                    "docker-registry exited ({status}):\n{}",
                    fs::read_to_string(registry.dir.path().join("log")).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "docker-registry did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        registry
    }

    /// A plain HTTP GET: (status line, body), None while nothing listens.
    fn get(&self, path: &str) -> Option<(String, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
        )
        .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).ok()?;
        let (head, body) = text.split_once("\r\n\r\n")?;
        Some((head.lines().next()?.to_owned(), body.to_owned()))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn oci_push_then_verified_install_from_a_real_registry() {
    let signed = signed_archive();
    let registry = Registry::start();
    // Run from the archive's directory with a relative path: the path is the caller's, not the
    // repository's.
    let out = ok(Command::new(repo().join("scripts/push-plugin.sh"))
        .current_dir(signed.dist.path())
        .arg("--plain-http")
        .arg(format!("oci://127.0.0.1:{}/helm-plugins", registry.port))
        .arg(signed.archive.file_name().unwrap())
        .output()
        .unwrap());
    let reference = format!(
        "oci://127.0.0.1:{}/helm-plugins/runner-patch:{VERSION}",
        registry.port
    );
    assert_eq!(last_line(&out), reference, "{out}");

    // The manifest Helm reads: artifact type, the archive and its provenance by title.
    let (status, body) = registry
        .get(&format!(
            "/v2/helm-plugins/runner-patch/manifests/{VERSION}"
        ))
        .unwrap();
    assert!(status.contains(" 200 "), "{status}\n{body}");
    let manifest: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.helm.plugin.v1+json"
    );
    let titles: Vec<_> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        titles,
        [
            format!("runner-patch-{VERSION}.tgz"),
            format!("runner-patch-{VERSION}.tgz.prov")
        ]
    );

    let home = tempfile::tempdir().unwrap();
    let out = helm(home.path())
        .args(["plugin", "install", &reference, "--plain-http", "--keyring"])
        .arg(&signed.keys.public)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("Plugin Hash Verified"),
        "not verified:\n{said}"
    );
    assert_aliases(&post_render(home.path()), "172.25.25.32");

    // The same artifact, checked against a key the user does not trust: refused.
    let stranger = gen_keys("stranger@runner-patch.test");
    let home = tempfile::tempdir().unwrap();
    let out = helm(home.path())
        .args(["plugin", "install", &reference, "--plain-http", "--keyring"])
        .arg(&stranger.public)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "installed with an untrusted key:\n{stderr}"
    );
    assert!(
        stderr.contains(UNTRUSTED_KEY_REFUSAL),
        "not refused for its signature:\n{stderr}"
    );
    let list = ok(helm(home.path()).args(["plugin", "list"]).output().unwrap());
    assert!(!list.contains("runner-patch"), "left installed:\n{list}");
}

/// What Helm 4.3.1 says when no key in the keyring made the signature.
const UNTRUSTED_KEY_REFUSAL: &str = "openpgp: signature made by unknown entity";

/// The sidecar image, built once per test process into a private buildah store.
struct Image {
    store: tempfile::TempDir,
    reference: String,
}

impl Image {
    fn buildah(&self) -> Command {
        let mut c = Command::new("buildah");
        c.arg("--storage-driver=vfs")
            .arg("--root")
            .arg(self.store.path().join("root"))
            .arg("--runroot")
            .arg(self.store.path().join("run"));
        c
    }
}

static IMAGE: OnceLock<Image> = OnceLock::new();

fn image() -> &'static Image {
    IMAGE.get_or_init(|| {
        let store = tempfile::tempdir().unwrap();
        let mut build = Command::new(repo().join("scripts/build-argocd-image.sh"));
        build
            .env("BUILDAH_ROOT", store.path().join("root"))
            .env("BUILDAH_RUNROOT", store.path().join("run"))
            .env_remove("IMAGE");
        if let Some(bin) = std::env::var_os("RUNNER_PATCH_DIST_BIN") {
            build.env("RUNNER_PATCH_DIST_BIN", bin);
        }
        let reference = last_line(&ok(build.output().unwrap()));
        // The sidecar manifest runs the image the script built.
        let sidecar =
            fs::read_to_string(repo().join("deploy/argocd/repo-server-sidecar.yaml")).unwrap();
        assert!(
            sidecar
                .lines()
                .any(|l| l.trim_start().strip_prefix("image:").map(str::trim) == Some(&reference)),
            "repo-server-sidecar.yaml does not name {reference}"
        );
        let install = fs::read_to_string(repo().join("docs/install.md")).unwrap();
        assert!(
            install.contains(&reference),
            "docs/install.md does not name {reference}"
        );
        Image { store, reference }
    })
}

/// Removes the working container when dropped.
struct Container<'a> {
    image: &'a Image,
    name: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = self.image.buildah().args(["rm", &self.name]).output();
    }
}

/// A copy of the repository as Argo CD makes one (files 0644, dirs 0755), without the build
/// output and tool directories at its top.
fn copy_repo(to: &Path) {
    fn walk(from: &Path, to: &Path, top: bool) {
        fs::create_dir_all(to).unwrap();
        for entry in fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name();
            if top
                && matches!(
                    name.to_str(),
                    Some(".git" | "target" | ".tools" | "dist" | "bench-out" | "fuzz")
                )
            {
                continue;
            }
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                walk(&entry.path(), &to.join(&name), false);
            } else if kind.is_file() {
                fs::copy(entry.path(), to.join(&name)).unwrap();
                fs::set_permissions(
                    to.join(&name),
                    std::os::unix::fs::PermissionsExt::from_mode(0o644),
                )
                .unwrap();
            }
        }
    }
    walk(&repo(), to, true);
}

/// The CMP's commands, read from deploy/argocd/plugin.yaml (not a copy, so they follow its changes).
struct Cmp {
    config: Value,
}

impl Cmp {
    fn load() -> Cmp {
        let text = fs::read_to_string(repo().join("deploy/argocd/plugin.yaml")).unwrap();
        Cmp {
            config: runner_patch::manifest::yaml::parse(&text).unwrap(),
        }
    }

    fn argv(&self, step: &str) -> Option<Vec<String>> {
        let spec = &self.config["spec"][step];
        let command = spec["command"].as_array()?;
        let args = spec["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        Some(
            command
                .iter()
                .chain(args)
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
        )
    }
}

/// What Argo CD's discovery sees in `app` (a host directory): the glob or the file name matches, or
/// (for `find.command`) the command run in the image exits 0 with output.
fn discovered(cmp: &Cmp, app: &Path, mut run_in_image: impl FnMut(&[String]) -> Output) -> bool {
    let discover = &cmp.config["spec"]["discover"];
    if let Some(name) = discover["fileName"].as_str() {
        return app.join(name).exists();
    }
    if let Some(glob) = discover["find"]["glob"].as_str() {
        let name = glob.strip_prefix("**/").unwrap_or(glob);
        assert!(
            !name.contains(['*', '?', '[']),
            "discover glob {glob:?}: extend this test's matcher"
        );
        fn any_named(dir: &Path, name: &str) -> bool {
            fs::read_dir(dir).unwrap().any(|e| {
                let e = e.unwrap();
                e.file_name() == name
                    || (e.file_type().unwrap().is_dir() && any_named(&e.path(), name))
            })
        }
        return if glob.starts_with("**/") {
            any_named(app, name)
        } else {
            app.join(name).exists()
        };
    }
    let command = discover["find"]["command"]
        .as_array()
        .expect("no discover rule");
    let args = discover["find"]["args"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let argv: Vec<String> = command
        .iter()
        .chain(args)
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let out = run_in_image(&argv);
    out.status.success() && !out.stdout.is_empty()
}

/// Runs the CMP on the app at `app_path` (relative to the repository copy `repo_copy`) inside
/// the image, as Argo CD does: discover, init, generate; argv without an implied shell, cwd = the
/// app dir, Argo CD's environment. `outside`, when given, is copied to /tmp/outside, beside the
/// repository copy at /tmp/argocd-repo. Returns generate's output (init must succeed).
fn run_cmp(
    repo_copy: &Path,
    app_path: &str,
    values: &[&str],
    env: &[(&str, &str)],
    outside: Option<&Path>,
) -> Output {
    let image = image();
    let cmp = Cmp::load();
    let name = ok(image
        .buildah()
        .args(["from", "--quiet", &image.reference])
        .output()
        .unwrap())
    .trim()
    .to_owned();
    let container = Container { image, name };
    // Argo CD's copy of the repository, owned by the sidecar's user.
    ok(image
        .buildah()
        .args(["copy", "--quiet", "--chown", "999:999", &container.name])
        .arg(repo_copy)
        .arg("/tmp/argocd-repo")
        .output()
        .unwrap());
    if let Some(outside) = outside {
        ok(image
            .buildah()
            .args(["copy", "--quiet", "--chown", "999:999", &container.name])
            .arg(outside)
            .arg("/tmp/outside")
            .output()
            .unwrap());
    }
    let app_dir = format!("/tmp/argocd-repo/{app_path}");
    let parameters: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    let mut vars: Vec<(String, String)> = vec![
        ("ARGOCD_APP_NAME".into(), "gitlab-runner".into()),
        ("ARGOCD_APP_NAMESPACE".into(), "gitlab-test".into()),
        ("ARGOCD_APP_PROJECT_NAME".into(), "default".into()),
        (
            "ARGOCD_APP_REVISION".into(),
            "0123456789abcdef0123456789abcdef01234567".into(),
        ),
        ("ARGOCD_APP_REVISION_SHORT".into(), "0123456".into()),
        (
            "ARGOCD_APP_SOURCE_REPO_URL".into(),
            "https://git.example.com/platform/deployments.git".into(),
        ),
        ("ARGOCD_APP_SOURCE_PATH".into(), app_path.into()),
        ("ARGOCD_APP_SOURCE_TARGET_REVISION".into(), "main".into()),
        ("KUBE_VERSION".into(), "1.33.0".into()),
        ("KUBE_API_VERSIONS".into(), "v1,apps/v1".into()),
        (
            "ARGOCD_ENV_RUNNER_PATCH_CONFIG".into(),
            "runner-patch.yaml".into(),
        ),
        (
            "ARGOCD_APP_PARAMETERS".into(),
            format!(
                r#"[{{"name":"values-files","array":[{}]}}]"#,
                parameters.join(",")
            ),
        ),
    ];
    for (i, v) in values.iter().enumerate() {
        vars.push((format!("PARAM_VALUES_FILES_{i}"), (*v).to_owned()));
    }
    for (k, v) in env {
        vars.push(((*k).to_owned(), (*v).to_owned()));
    }
    let run = |argv: &[String]| -> Output {
        let mut c = image.buildah();
        c.args(["run", "--isolation", "chroot", "--workingdir", &app_dir]);
        for (k, v) in &vars {
            c.arg("--env").arg(format!("{k}={v}"));
        }
        c.arg(&container.name).arg("--").args(argv);
        c.output().unwrap()
    };
    assert!(
        discovered(&cmp, &repo_copy.join(app_path), run),
        "the CMP does not discover {app_path}"
    );
    if let Some(init) = cmp.argv("init") {
        ok(run(&init));
    }
    let mut out = run(&cmp
        .argv("generate")
        .expect("plugin.yaml has no generate command"));
    // Helm 4 drops a post-renderer plugin's stderr, and under `buildah run --isolation chroot`
    // runner-patch cannot open /proc/<helm>/fd/2 either (permission denied): its message is read
    // from the error file instead, the channel an operator would use, and appended to stderr.
    if let Some((_, file)) = vars.iter().find(|(k, _)| k == "RUNNER_PATCH_ERROR_FILE") {
        let said = run(&["cat".to_owned(), file.clone()]);
        out.stderr.extend_from_slice(&said.stdout);
    }
    out
}

/// The example app, with a chart: its own Chart.yaml when it has one, else the mini chart of
/// testdata named through the CHART plugin env (both inside the repository).
fn example_app_env(repo_copy: &Path) -> Vec<(&'static str, &'static str)> {
    if repo_copy
        .join("deploy/argocd/example-app/Chart.yaml")
        .is_file()
    {
        vec![]
    } else {
        vec![("ARGOCD_ENV_CHART", "../../../testdata/charts/mini-runner")]
    }
}

/// The plugin section of deploy/argocd/application.yaml: its values files and its plugin env as
/// Argo CD passes them (`ARGOCD_ENV_<NAME>`).
fn application_plugin() -> (Vec<String>, Vec<(String, String)>) {
    let app: Value = runner_patch::manifest::yaml::parse(
        &fs::read_to_string(repo().join("deploy/argocd/application.yaml")).unwrap(),
    )
    .unwrap();
    let plugin = &app["spec"]["source"]["plugin"];
    let values = plugin["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "values-files")
        .flat_map(|p| p["array"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let env = plugin["env"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                format!("ARGOCD_ENV_{}", e["name"].as_str().unwrap()),
                e["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (values, env)
}

/// Runs `argv` in a fresh container of the image; its output.
fn in_image(argv: &[&str]) -> Output {
    let image = image();
    let name = ok(image
        .buildah()
        .args(["from", "--quiet", &image.reference])
        .output()
        .unwrap())
    .trim()
    .to_owned();
    let container = Container { image, name };
    image
        .buildah()
        .args(["run", "--isolation", "chroot", &container.name, "--"])
        .args(argv)
        .output()
        .unwrap()
}

fn argocd_image_runs_the_cmp_commands_on_the_example_app() {
    // The image as Argo CD expects it: uid 999, the CMP config where argocd-cmp-server reads it,
    // the plugin Helm 4 loads, the licences.
    assert_eq!(ok(in_image(&["busybox", "id", "-u"])).trim(), "999");
    assert_eq!(
        ok(in_image(&[
            "cat",
            "/home/argocd/cmp-server/config/plugin.yaml"
        ])),
        fs::read_to_string(repo().join("deploy/argocd/plugin.yaml")).unwrap()
    );
    let plugins = ok(in_image(&["helm", "plugin", "list"]));
    assert!(
        plugins
            .lines()
            .any(|l| l.starts_with("runner-patch") && l.contains("postrenderer/v1")),
        "{plugins}"
    );
    ok(in_image(&[
        "ls",
        "/usr/share/doc/runner-patch/LICENSE-MIT",
        "/usr/share/doc/runner-patch/LICENSE-APACHE",
        "/usr/share/doc/helm/NOTICE",
        "/opt/runner-patch/helm-plugins/runner-patch/LICENSE-MIT",
        "/opt/runner-patch/helm-plugins/runner-patch/THIRD-PARTY-LICENSES",
    ]));
    let licenses = ok(in_image(&[
        "cat",
        "/usr/share/doc/runner-patch/THIRD-PARTY-LICENSES",
    ]));
    for needle in [
        "\nserde_json ",
        "GNU C Library (glibc)",
        "BusyBox (/bin/busybox, Debian busybox-static): GPL-2.0-only",
        "GNU GENERAL PUBLIC LICENSE",
        "Helm (/usr/local/bin/helm): Apache-2.0",
        "helm.sh/helm/v4",
        "Go standard library: BSD-3-Clause",
    ] {
        assert!(
            licenses.contains(needle),
            "THIRD-PARTY-LICENSES lacks {needle:?}"
        );
    }
    let inspect: Value = serde_json::from_str(&ok(image()
        .buildah()
        .args(["inspect", "--type", "image", &image().reference])
        .output()
        .unwrap()))
    .unwrap();
    let label = inspect["OCIv1"]["config"]["Labels"]["org.opencontainers.image.licenses"]
        .as_str()
        .unwrap_or_default();
    for spdx in [
        "(MIT OR Apache-2.0)",
        "LGPL-2.1-or-later",
        "GPL-2.0-only",
        "BSD-3-Clause",
    ] {
        assert!(label.contains(spdx), "licence label {label:?} lacks {spdx}");
    }

    let work = tempfile::tempdir().unwrap();
    let repo_copy = work.path().join("repo");
    copy_repo(&repo_copy);
    let (values, mut env) = application_plugin();
    env.extend(
        example_app_env(&repo_copy)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_cmp(&repo_copy, "deploy/argocd/example-app", &values, &env, None);
    let stream = ok(out);
    // The example spec's first host alias reached the job TOML and the manager pod.
    let spec: Value = runner_patch::manifest::yaml::parse(
        &fs::read_to_string(repo_copy.join("deploy/argocd/example-app/runner-patch.yaml")).unwrap(),
    )
    .unwrap();
    let ip = spec["spec"]["hostAliases"][0]["ip"]
        .as_str()
        .expect("the example spec has a host alias");
    assert_aliases(&stream, ip);
}

/// A hostile-app case: name, values files, spec (None: the example's), exit code, refusal text.
type HostileCase = (String, Vec<String>, Option<String>, i32, &'static str);

fn argocd_image_refuses_a_hostile_app() {
    let work = tempfile::tempdir().unwrap();
    let repo_copy = work.path().join("repo");
    copy_repo(&repo_copy);
    let mut env = example_app_env(&repo_copy);
    env.push(("ARGOCD_ENV_RUNNER_PATCH_CONFIG", "runner-patch.yaml"));
    // The sidecar operator's error file: how a post-renderer refusal's text is seen (run_cmp).
    env.push(("RUNNER_PATCH_ERROR_FILE", "/tmp/runner-patch-error.log"));
    let app = repo_copy.join("deploy/argocd/hostile-app");
    fs::create_dir_all(&app).unwrap();
    if repo_copy
        .join("deploy/argocd/example-app/Chart.yaml")
        .is_file()
    {
        // Same chart as the example app, so only the hostile file differs.
        copy_dir(&repo_copy.join("deploy/argocd/example-app"), &app);
    }
    fs::copy(
        repo_copy.join("deploy/argocd/example-app/runner-patch.yaml"),
        app.join("runner-patch.yaml"),
    )
    .unwrap();
    // Files outside the repository copy that an app must never reach: valid YAML and a valid
    // certificate, so that only confinement (not a parse error) can refuse them.
    let outside = "/tmp/outside";
    let secrets = work.path().join("outside");
    fs::create_dir(&secrets).unwrap();
    fs::write(
        secrets.join("values.yaml"),
        "gitlabUrl: https://leaked.example.com\n",
    )
    .unwrap();
    common::write_set(&secrets.join("certs"));
    let spec_with_cert = "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nmetadata:\n  \
                          name: hostile\nspec:\n  certificates:\n    - host: corp-root\n      \
                          for: ca\n      file: FILE\n      mountPath: /etc/ssl/certs/corp-root.crt\n";
    // (case, values files, spec, exit code, refusal text). Values files are refused by
    // `runner-patch argocd` itself (usage error, 2); certificate files by runner-patch as Helm's
    // post-renderer, which fails `helm template` (Helm's exit code 1; runner-patch's message in
    // the error file, see run_cmp).
    let mut cases: Vec<HostileCase> = vec![
        (
            "absolute values file".into(),
            vec![format!("{outside}/values.yaml")],
            None,
            2,
            "is an absolute path: name files by a relative path inside the repository",
        ),
        (
            "values file escaping with ..".into(),
            vec!["../../../../outside/values.yaml".into()],
            None,
            2,
            "leads outside the repository (through `..`)",
        ),
    ];
    for (file, reason) in [
        (
            format!("{outside}/certs/corp-root.crt"),
            "is an absolute path: certificate files are named relative to the spec file",
        ),
        (
            "../../../../outside/certs/corp-root.crt".to_owned(),
            "leads outside the file root (through `..`)",
        ),
    ] {
        cases.push((
            format!("certificate file {file}"),
            vec![],
            Some(spec_with_cert.replace("FILE", &file)),
            1,
            reason,
        ));
    }
    // Every case is tried, so that a failure lists all that were not refused.
    let mut failures = Vec::new();
    for (case, values, spec, code, reason) in cases {
        if let Some(spec) = &spec {
            fs::write(app.join("runner-patch.yaml"), spec).unwrap();
        }
        let values: Vec<&str> = values.iter().map(String::as_str).collect();
        let out = run_cmp(
            &repo_copy,
            "deploy/argocd/hostile-app",
            &values,
            &env,
            Some(&secrets),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!("{case}: accepted (exit 0)"));
        } else if !out.stdout.is_empty() {
            failures.push(format!(
                "{case}: refused, but wrote {} bytes to stdout",
                out.stdout.len()
            ));
        } else if stderr.contains("leaked.example.com") || stderr.contains("BEGIN CERTIFICATE") {
            failures.push(format!(
                "{case}: the refused file's content reached stderr:\n{stderr}"
            ));
        } else if out.status.code() != Some(code) || !stderr.contains(reason) {
            failures.push(format!(
                "{case}: refused ({}), but not with exit code {code} and {reason:?}:\n{stderr}",
                out.status
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "hostile app not refused:\n{}",
        failures.join("\n")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// PEM certificates of a bundle, whitespace-normalized so that the same certificate compares equal.
fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            blocks.push(current.take().expect("END without BEGIN"));
        } else if let Some(block) = current.as_mut() {
            block.push_str(line);
        }
    }
    assert!(current.is_none(), "unterminated certificate");
    blocks
}

/// The image's CA bundle holds nothing but certificates of Debian's Mozilla set: not the build
/// machine's own CAs (/usr/local/share/ca-certificates: here a sandbox egress CA and a custom one).
fn argocd_image_carries_only_the_mozilla_ca_set() {
    let mut mozilla = std::collections::HashSet::new();
    for entry in fs::read_dir("/usr/share/ca-certificates/mozilla").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "crt") {
            mozilla.extend(pem_blocks(&fs::read_to_string(&path).unwrap()));
        }
    }
    assert!(
        !mozilla.is_empty(),
        "no Mozilla certificates on this machine"
    );
    let bundle = pem_blocks(&ok(in_image(&[
        "cat",
        "/etc/ssl/certs/ca-certificates.crt",
    ])));
    let foreign = bundle.iter().filter(|c| !mozilla.contains(*c)).count();
    assert_eq!(foreign, 0, "{foreign} certificates not in the Mozilla set");
    assert_eq!(bundle.len(), mozilla.len(), "the Mozilla set is incomplete");
    // The machine's local CAs, when it has any, are what must stay out.
    if let Ok(dir) = fs::read_dir("/usr/local/share/ca-certificates") {
        for entry in dir {
            let path = entry.unwrap().path();
            if let Ok(text) = fs::read_to_string(&path) {
                for cert in pem_blocks(&text) {
                    assert!(
                        !bundle.contains(&cert),
                        "{} is in the image",
                        path.display()
                    );
                }
            }
        }
    }
}

/// A changed .tools/helm4/helm (one byte appended) stops the image build before buildah runs: in
/// a copy of the repository, so that the real .tools/ stays untouched.
fn argocd_image_build_refuses_a_tampered_helm() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("repo");
    copy_repo(&copy);
    for dir in ["scripts"] {
        // copy_repo made every file 0644: the scripts must run.
        for entry in fs::read_dir(copy.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
    }
    let tools_dir = copy.join(".tools");
    for tool in ["helm4/helm", "helm3/helm", "kubectl/kubectl"] {
        let to = tools_dir.join(tool);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        fs::copy(repo().join(".tools").join(tool), &to).unwrap();
    }
    let helm = tools_dir.join("helm4/helm");
    fs::OpenOptions::new()
        .append(true)
        .open(&helm)
        .unwrap()
        .write_all(b"tampered")
        .unwrap();
    let store = work.path().join("store");
    let out = Command::new(copy.join("scripts/build-argocd-image.sh"))
        .env("BUILDAH_ROOT", store.join("root"))
        .env("BUILDAH_RUNROOT", store.join("run"))
        .env("RUNNER_PATCH_DIST_BIN", packaged_binary())
        .env("IMAGE", "localhost/runner-patch-tampered:test")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "built with a tampered helm:\n{stderr}"
    );
    assert!(out.stdout.is_empty(), "printed an image reference");
    assert!(
        stderr.contains("helm4/helm: FAILED") && stderr.contains("differs from its pinned sha256"),
        "not refused for the helm checksum:\n{stderr}"
    );
    assert!(!store.exists(), "buildah ran");
}
