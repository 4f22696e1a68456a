//! The Argo CD Config Management Plugin steps (`runner-patch argocd init|generate`, called by
//! `deploy/argocd/plugin.yaml`): check every path an Application names, then run Helm.
//!
//! Everything an Application sets — `ARGOCD_ENV_*` (its `plugin.env`), `PARAM_*` (its plugin
//! parameters) and every file of its repository — is written by someone who must not read the
//! machine that renders it. Argo CD shipped this class of bug itself (CVE-2022-24348: Helm values
//! files outside the repository; CVE-2022-24731) and fixed it by resolving every path, symlinks
//! included, and refusing what leaves the repository root. These steps do the same before Helm
//! sees a path:
//!
//! - The **repository root** is the working directory (the app directory the CMP server laid out)
//!   minus `ARGOCD_APP_SOURCE_PATH`; the app directory when that is unset.
//! - The chart (`ARGOCD_ENV_CHART`, default `.`), every values file (`PARAM_VALUES_FILES_<n>`), the
//!   spec (`ARGOCD_ENV_RUNNER_PATCH_CONFIG`, default `runner-patch.yaml`) and the `file://`
//!   dependencies of the chart are resolved beneath the repository root ([`cap_std`], as for
//!   certificate files) and refused when absolute, when `..` or a symbolic link leads out, or when
//!   they are not what they should be (a regular file; a directory or archive for the chart).
//! - Every symbolic link in the repository must resolve inside it: Helm follows links when it
//!   loads a chart directory, so a link anywhere in it (`templates/x.yaml -> /proc/self/environ`)
//!   would otherwise be read.
//! - Values files given as URLs are refused unless the operator names the scheme in
//!   `RUNNER_PATCH_VALUES_SCHEMES` (e.g. `https`).
//! - Helm gets the checked paths, resolved (no symbolic link left in them) and written relative to
//!   the app directory (so that messages do not show where the CMP server unpacked the
//!   repository), each value glued to its flag (`--values=…`) and the positional arguments after
//!   `--`, so no value can become a flag; runner-patch gets `--file-root=<repository root>`, so
//!   certificate files may live anywhere in the repository but nowhere else.
//!
//! Refusals name the variable and the value as the Application wrote it, never a file's content,
//! and never tell whether something outside the repository exists.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use cap_std::fs::Dir;

use crate::spec::files::leaves_lexically;

/// Operator setting (sidecar env): URL schemes allowed for values files, comma-separated.
pub const VALUES_SCHEMES_ENV: &str = "RUNNER_PATCH_VALUES_SCHEMES";
/// Operator setting: the Helm 4 post-renderer plugin name (default `runner-patch`).
pub const PLUGIN_ENV: &str = "RUNNER_PATCH_PLUGIN";
/// Operator setting: the runner-patch binary Helm 3 runs (default: this executable).
pub const BIN_ENV: &str = "RUNNER_PATCH_BIN";
/// Operator setting: the helm binary (default `helm` on `PATH`).
pub const HELM_ENV: &str = "RUNNER_PATCH_HELM";

/// Application setting: the chart directory, relative to the app directory.
pub const CHART_ENV: &str = "ARGOCD_ENV_CHART";
/// Application setting: the RunnerPatch spec, relative to the app directory.
pub const CONFIG_ENV: &str = "ARGOCD_ENV_RUNNER_PATCH_CONFIG";
/// Application parameter: values files, `PARAM_VALUES_FILES_0`, `_1`, …
pub const VALUES_PARAM_PREFIX: &str = "PARAM_VALUES_FILES_";

/// Largest Chart.yaml read to find `file://` dependencies.
const MAX_CHART_YAML_BYTES: u64 = 1 << 20;

/// The environment of a CMP step: variables and working directory.
#[derive(Debug, Clone)]
pub struct Env {
    vars: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl Env {
    /// This process's environment and working directory.
    pub fn from_process() -> Result<Self, String> {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot determine the working directory: {e}"))?;
        Ok(Self::new(
            std::env::vars_os().map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            }),
            cwd,
        ))
    }

    /// An environment given explicitly (tests).
    pub fn new(vars: impl IntoIterator<Item = (String, String)>, cwd: PathBuf) -> Self {
        Env {
            vars: vars.into_iter().collect(),
            cwd,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }
}

/// The repository as the CMP server laid it out, opened for resolution beneath its root.
#[derive(Debug)]
pub struct Repository {
    /// Canonical absolute path of the repository root.
    pub root: PathBuf,
    /// The app directory relative to the root.
    pub app: PathBuf,
    dir: Dir,
}

impl Repository {
    /// The repository around the working directory (see the module documentation).
    pub fn locate(env: &Env) -> Result<Self, String> {
        let cwd = std::fs::canonicalize(&env.cwd)
            .map_err(|e| format!("cannot resolve the working directory: {e}"))?;
        let source = env.get("ARGOCD_APP_SOURCE_PATH").unwrap_or("");
        let mut app = PathBuf::new();
        for component in Path::new(source).components() {
            match component {
                Component::Normal(c) => app.push(c),
                Component::CurDir => {}
                _ => {
                    return Err(format!(
                        "ARGOCD_APP_SOURCE_PATH {source:?} is not a relative path inside the repository"
                    ));
                }
            }
        }
        let mut root = cwd.clone();
        for _ in app.components() {
            root.pop();
        }
        if root.join(&app) != cwd {
            return Err(format!(
                "the working directory does not end with ARGOCD_APP_SOURCE_PATH {source:?} (a symbolic link in the application path?): cannot tell the repository root"
            ));
        }
        let dir = Dir::open_ambient_dir(&root, cap_std::ambient_authority())
            .map_err(|e| format!("cannot open the repository root: {e}"))?;
        Ok(Repository { root, app, dir })
    }

    /// Resolves `written` (relative to the app directory, as the Application wrote it in
    /// `source`) beneath the repository root; returns its resolved path (no symbolic link left
    /// in it) relative to the root, and what it is.
    fn resolve(&self, source: &str, written: &str) -> Result<(PathBuf, Kind), String> {
        self.resolve_from(&self.app, source, written)
    }

    /// Like [`Self::resolve`], relative to `base` (a directory relative to the root).
    fn resolve_from(
        &self,
        base: &Path,
        source: &str,
        written: &str,
    ) -> Result<(PathBuf, Kind), String> {
        let shown = format!("{source} {written:?}");
        if written.is_empty() {
            return Err(format!("{source} is empty"));
        }
        let path = Path::new(written);
        if path.has_root() {
            return Err(format!(
                "{shown} is an absolute path: name files relative to the application directory, inside the repository"
            ));
        }
        let relative = base.join(path);
        if leaves_lexically(&relative) {
            return Err(format!(
                "{shown} leads outside the repository (through `..`)"
            ));
        }
        let meta = self.dir.metadata(&relative).map_err(|_| {
            // Missing, or an escape through `..` or a symbolic link: one message, so that
            // nothing tells whether something exists outside the repository.
            format!(
                "{shown} is not inside the repository (it does not exist there, or `..` or a symbolic link on the way leads outside it)"
            )
        })?;
        let kind = if meta.is_file() {
            Kind::File
        } else if meta.is_dir() {
            Kind::Directory
        } else {
            return Err(format!("{shown} is not a regular file or a directory"));
        };
        let absolute = std::fs::canonicalize(self.root.join(&relative))
            .map_err(|e| format!("{shown} cannot be resolved: {}", e.kind()))?;
        let Ok(in_repo) = absolute.strip_prefix(&self.root) else {
            return Err(format!("{shown} is not inside the repository"));
        };
        Ok((in_repo.to_path_buf(), kind))
    }

    /// `in_repo` (a resolved path relative to the root) as a path from the app directory, the
    /// working directory of Helm and of runner-patch: `./…` or `../…`, never absolute. The app
    /// directory itself has no symbolic link in it (it is the canonical working directory), so
    /// `..` climbs physically.
    fn seen_from_app(&self, in_repo: &Path) -> PathBuf {
        let mut app = self.app.components().peekable();
        let mut rest = in_repo.components().peekable();
        // Drop the start the app directory and the target have in common …
        while app.peek().is_some() && app.peek() == rest.peek() {
            app.next();
            rest.next();
        }
        // … climb out of the rest of the app directory, then down to the target.
        let mut out = PathBuf::from(".");
        out.extend(app.map(|_| ".."));
        out.extend(rest);
        out
    }

    /// Refuses the repository when a symbolic link anywhere in it resolves outside it (Helm
    /// follows links when loading a chart, and values files may name any path in it).
    pub fn check_symlinks(&self) -> Result<(), String> {
        let mut pending = vec![PathBuf::new()];
        while let Some(relative) = pending.pop() {
            let entries = std::fs::read_dir(self.root.join(&relative))
                .map_err(|e| format!("cannot list {}: {}", relative.display(), e.kind()))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| format!("cannot list {}: {}", relative.display(), e.kind()))?;
                let name = relative.join(entry.file_name());
                let file_type = entry
                    .file_type()
                    .map_err(|e| format!("cannot inspect {}: {}", name.display(), e.kind()))?;
                if file_type.is_dir() {
                    pending.push(name);
                } else if file_type.is_symlink() {
                    match self.dir.metadata(&name) {
                        Ok(_) => {}
                        // A link to nothing inside the repository reads nothing.
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                            ) => {}
                        Err(_) => {
                            return Err(format!(
                                "the symbolic link {:?} in the repository leads outside it (or into a loop)",
                                name.display().to_string()
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// What a resolved path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Directory,
}

/// The URL scheme of `value` when it looks like a URL (`scheme:` as RFC 3986 spells it; Helm
/// hands anything its getters know to them instead of reading a file).
fn url_scheme(value: &str) -> Option<&str> {
    let (scheme, _) = value.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some(scheme)
}

/// The chart directory (or archive), checked, relative to the repository root.
fn chart(repo: &Repository, env: &Env) -> Result<PathBuf, String> {
    let written = env.non_empty(CHART_ENV).unwrap_or(".");
    if let Some(scheme) = url_scheme(written) {
        return Err(format!(
            "{CHART_ENV} {written:?} is a {scheme} URL: the chart must be a directory in the repository"
        ));
    }
    let (path, _) = repo.resolve(CHART_ENV, written)?;
    Ok(path)
}

/// `helm template` argv for the generate step, after every check.
pub fn generate_args(
    env: &Env,
    repo: &Repository,
    helm_major: u32,
    self_exe: &Path,
) -> Result<Vec<OsString>, String> {
    repo.check_symlinks()?;
    let chart = chart(repo, env)?;
    let allowed: Vec<String> = env
        .get(VALUES_SCHEMES_ENV)
        .unwrap_or("")
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let mut values = Vec::new();
    for i in 0.. {
        let name = format!("{VALUES_PARAM_PREFIX}{i}");
        let Some(written) = env.get(&name) else { break };
        match url_scheme(written) {
            Some(scheme) if allowed.contains(&scheme.to_ascii_lowercase()) => {
                // Helm reads a value whose scheme it has no getter for as a local path, so an
                // allowed URL may not climb with `..` either.
                if Path::new(written)
                    .components()
                    .any(|c| c == Component::ParentDir)
                {
                    return Err(format!(
                        "{name} {written:?} contains `..`: refused even for an allowed scheme"
                    ));
                }
                values.push(OsString::from(written));
            }
            Some(scheme) => {
                return Err(format!(
                    "{name} {written:?} is a {scheme} URL: URL values files are refused unless the operator allows the scheme in {VALUES_SCHEMES_ENV}"
                ));
            }
            None => match repo.resolve(&name, written)? {
                (path, Kind::File) => values.push(repo.seen_from_app(&path).into_os_string()),
                (_, Kind::Directory) => {
                    return Err(format!(
                        "{name} {written:?} is a directory, not a values file"
                    ));
                }
            },
        }
    }
    let spec_written = env.non_empty(CONFIG_ENV).unwrap_or("runner-patch.yaml");
    let spec = match repo.resolve(CONFIG_ENV, spec_written)? {
        (path, Kind::File) => repo.seen_from_app(&path),
        (_, Kind::Directory) => {
            return Err(format!(
                "{CONFIG_ENV} {spec_written:?} is a directory, not a RunnerPatch spec"
            ));
        }
    };
    let name = env
        .non_empty("ARGOCD_APP_NAME")
        .ok_or("ARGOCD_APP_NAME is not set")?;
    let mut args: Vec<OsString> = vec!["template".into()];
    if let Some(ns) = env.non_empty("ARGOCD_APP_NAMESPACE") {
        args.push(format!("--namespace={ns}").into());
    }
    if let Some(v) = env.non_empty("KUBE_VERSION") {
        args.push(format!("--kube-version={v}").into());
    }
    if let Some(v) = env.non_empty("KUBE_API_VERSIONS") {
        args.push(format!("--api-versions={v}").into());
    }
    for v in values {
        let mut arg = OsString::from("--values=");
        arg.push(v);
        args.push(arg);
    }
    // Helm 4 takes a postrenderer/v1 plugin name; Helm 3 an executable.
    let post_renderer = if helm_major >= 4 {
        OsString::from(env.non_empty(PLUGIN_ENV).unwrap_or("runner-patch"))
    } else {
        env.non_empty(BIN_ENV)
            .map_or_else(|| self_exe.as_os_str().to_owned(), OsString::from)
    };
    let mut flag = OsString::from("--post-renderer=");
    flag.push(post_renderer);
    args.push(flag);
    let mut config = OsString::from("--post-renderer-args=--config=");
    config.push(&spec);
    args.push(config);
    let mut root = OsString::from("--post-renderer-args=--file-root=");
    root.push(repo.seen_from_app(Path::new("")));
    args.push(root);
    args.push("--".into());
    args.push(name.into());
    args.push(repo.seen_from_app(&chart).into_os_string());
    Ok(args)
}

/// `helm dependency build` argv for the init step when the chart declares dependencies (after
/// checking that every `file://` dependency is inside the repository), else `None`.
pub fn init_args(env: &Env, repo: &Repository) -> Result<Option<Vec<OsString>>, String> {
    repo.check_symlinks()?;
    let chart = chart(repo, env)?;
    let chart_dir = repo.root.join(&chart);
    if !chart_dir.is_dir() {
        return Ok(None); // an archive carries its dependencies
    }
    let chart_yaml = chart_dir.join("Chart.yaml");
    // Every link in the repository was checked to stay inside it: following is safe.
    let Ok(meta) = std::fs::metadata(&chart_yaml) else {
        return Ok(None);
    };
    if !meta.is_file() || meta.len() > MAX_CHART_YAML_BYTES {
        return Err("the chart's Chart.yaml is not a regular file of at most 1 MiB".into());
    }
    let text = std::fs::read_to_string(&chart_yaml)
        .map_err(|e| format!("the chart's Chart.yaml cannot be read: {}", e.kind()))?;
    let parsed: serde_json::Value = crate::manifest::yaml::parse(&text)
        .map_err(|_| "the chart's Chart.yaml is not valid YAML".to_owned())?;
    let Some(dependencies) = parsed.get("dependencies").and_then(|d| d.as_array()) else {
        return Ok(None);
    };
    for (i, dep) in dependencies.iter().enumerate() {
        let Some(repository) = dep.get("repository").and_then(|r| r.as_str()) else {
            continue;
        };
        let Some(local) = repository.strip_prefix("file://") else {
            continue; // chart repositories: fetched by Helm as Argo CD's own Helm support does
        };
        let source = format!("Chart.yaml dependencies[{i}].repository");
        repo.resolve_from(&chart, &source, local)?;
    }
    let mut args: Vec<OsString> = vec!["dependency".into(), "build".into(), "--".into()];
    args.push(repo.seen_from_app(&chart).into_os_string());
    Ok(Some(args))
}

/// The helm binary the steps run.
pub fn helm(env: &Env) -> OsString {
    OsString::from(env.non_empty(HELM_ENV).unwrap_or("helm"))
}

/// The major version of `helm` (`helm version --template {{.Version}}` → `v4.3.1` → 4).
pub fn helm_major(env: &Env) -> Result<u32, String> {
    let out = Command::new(helm(env))
        .args(["version", "--template", "{{.Version}}"])
        .output()
        .map_err(|e| format!("cannot run helm: {e}"))?;
    let version = String::from_utf8_lossy(&out.stdout);
    version
        .trim()
        .strip_prefix('v')
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .filter(|_| out.status.success())
        .ok_or_else(|| format!("cannot tell helm's version from {:?}", version.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes() {
        assert_eq!(url_scheme("https://x/v.yaml"), Some("https"));
        assert_eq!(url_scheme("s3:bucket/v.yaml"), Some("s3"));
        assert_eq!(url_scheme("values.yaml"), None);
        assert_eq!(url_scheme("./a:b.yaml"), None);
        assert_eq!(url_scheme("1x:y"), None);
    }

    fn env(vars: &[(&str, &str)], cwd: &Path) -> Env {
        Env::new(
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
            cwd.to_path_buf(),
        )
    }

    #[test]
    fn generate_glues_every_value_to_its_flag_and_ends_flags_before_positionals() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("apps/x");
        std::fs::create_dir_all(&app).unwrap();
        std::fs::write(app.join("Chart.yaml"), "name: x\n").unwrap();
        std::fs::write(app.join("runner-patch.yaml"), "").unwrap();
        std::fs::write(app.join("-v.yaml"), "").unwrap();
        let e = env(
            &[
                ("ARGOCD_APP_SOURCE_PATH", "apps/x"),
                ("ARGOCD_APP_NAME", "--set=a=b"),
                ("ARGOCD_APP_NAMESPACE", "ns --debug"),
                ("PARAM_VALUES_FILES_0", "-v.yaml"),
                ("PARAM_VALUES_FILES_1", "https://example.com/v.yaml"),
                (VALUES_SCHEMES_ENV, "HTTPS"),
            ],
            &app,
        );
        let repo = Repository::locate(&e).unwrap();
        let args = generate_args(&e, &repo, 4, Path::new("/bin/rp")).unwrap();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "template",
                "--namespace=ns --debug",
                "--values=./-v.yaml",
                "--values=https://example.com/v.yaml",
                "--post-renderer=runner-patch",
                "--post-renderer-args=--config=./runner-patch.yaml",
                "--post-renderer-args=--file-root=./../..",
                "--",
                "--set=a=b",
                ".",
            ]
        );
        // Helm 3 runs this binary (or the operator's RUNNER_PATCH_BIN).
        let args = generate_args(&e, &repo, 3, Path::new("/bin/rp")).unwrap();
        assert!(args.iter().any(|a| a == "--post-renderer=/bin/rp"));
    }

    #[test]
    fn resolved_paths_are_written_from_the_app_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("apps/x")).unwrap();
        let e = env(
            &[("ARGOCD_APP_SOURCE_PATH", "apps/x")],
            &tmp.path().join("apps/x"),
        );
        let repo = Repository::locate(&e).unwrap();
        let from = |p: &str| repo.seen_from_app(Path::new(p)).display().to_string();
        assert_eq!(from("apps/x"), ".");
        assert_eq!(from("apps/x/v.yaml"), "./v.yaml");
        assert_eq!(from("apps/y/v.yaml"), "./../y/v.yaml");
        assert_eq!(from("shared/v.yaml"), "./../../shared/v.yaml");
        assert_eq!(from(""), "./../..");
    }

    #[test]
    fn repository_root_is_cwd_minus_source_path() {
        let tmp = tempfile::tempdir().unwrap();
        let app = tmp.path().join("apps/runner");
        std::fs::create_dir_all(&app).unwrap();
        let env = |source: &str| {
            Env::new(
                [("ARGOCD_APP_SOURCE_PATH".to_owned(), source.to_owned())],
                app.clone(),
            )
        };
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(Repository::locate(&env("apps/runner")).unwrap().root, root);
        assert_eq!(
            Repository::locate(&env("./apps/runner/")).unwrap().root,
            root
        );
        assert_eq!(
            Repository::locate(&env("")).unwrap().root,
            root.join("apps/runner")
        );
        assert!(Repository::locate(&env("other/runner")).is_err());
        assert!(Repository::locate(&env("../runner")).is_err());
        assert!(Repository::locate(&env("/apps/runner")).is_err());
    }
}
