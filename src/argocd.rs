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
//! - The chart (`ARGOCD_ENV_CHART`, default `.`), every values file (`PARAM_VALUES_FILES_<n>`) and
//!   the spec (`ARGOCD_ENV_RUNNER_PATCH_CONFIG`, default `runner-patch.yaml`) are resolved beneath
//!   the repository root ([`cap_std`], as for certificate files) and refused when absolute, when
//!   `..` or a symbolic link leads out, or when they are not what they should be (a regular file;
//!   a directory or archive for the chart).
//! - The chart's dependencies, from every file Helm reads them from (`Chart.yaml`,
//!   `requirements.yaml`, `Chart.lock`, `requirements.lock`, recursively in `file://` subcharts),
//!   must be `file://` paths inside the repository, or remote repositories whose scheme the
//!   operator allows in `RUNNER_PATCH_DEPENDENCY_SCHEMES` (`argocd::dependencies`).
//! - Every symbolic link in the repository must resolve, now, inside it, and its text must not
//!   climb out (absolute, or `..` above the root): Helm follows links when it loads a chart
//!   directory, so a link anywhere in it (`templates/x.yaml -> /proc/self/environ`) would
//!   otherwise be read, and a link to nothing may lead somewhere once Helm creates a directory.
//! - `helm template` runs with `--skip-schema-validation`: Helm's JSON-Schema loader follows
//!   `$ref`/`$id`/`$schema` URLs of a chart's `values.schema.json` to any file or host.
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

mod dependencies;
pub use dependencies::DEPENDENCY_SCHEMES_ENV;

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
                "{shown} is an absolute path: name files by a relative path inside the repository (from the application directory; a dependency from its chart)"
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
                    self.check_link(&name)?;
                }
            }
        }
        Ok(())
    }

    /// Refuses the symbolic link `name` (relative to the root) unless it resolves, now, to
    /// something inside the repository *and* its text stays inside lexically. A link to nothing
    /// is refused too: Helm creates directories while it runs (`tmpcharts-<pid>` during
    /// `dependency build`), so a link through one that does not exist yet would lead wherever
    /// its `..` climb once it does. One message for every case.
    fn check_link(&self, name: &Path) -> Result<(), String> {
        let refused = || {
            format!(
                "the symbolic link {:?} in the repository leads outside it, to nothing, or into a loop",
                name.display().to_string()
            )
        };
        let target = std::fs::read_link(self.root.join(name)).map_err(|_| refused())?;
        let from = name.parent().unwrap_or(Path::new(""));
        if target.has_root() || leaves_lexically(&from.join(&target)) {
            return Err(refused());
        }
        self.dir.metadata(name).map(|_| ()).map_err(|_| refused())
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
    let allowed = schemes(env, VALUES_SCHEMES_ENV);
    let mut values = Vec::new();
    for i in 0.. {
        let name = format!("{VALUES_PARAM_PREFIX}{i}");
        let Some(written) = env.get(&name) else { break };
        refuse_comma(&name, written)?;
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
    refuse_comma(CONFIG_ENV, spec_written)?;
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
    // Helm's JSON-Schema loader follows `$ref`, `$id` and `$schema` of a chart's (or a
    // subchart's, archives included) values.schema.json to file:// and http(s) URLs: any file
    // of the machine into an error message, an existence oracle, a FIFO that hangs. The schema
    // is the chart author's; skipping it costs a benign chart only an early values check.
    let mut args: Vec<OsString> = vec!["template".into(), "--skip-schema-validation".into()];
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

/// Helm splits the values of `--values` and `--post-renderer-args` at commas (they are string
/// slices), so `a,/elsewhere/values.yaml` would be checked as one path inside the repository and
/// read by Helm as two, the second outside it. A comma is refused in every path handed to Helm.
fn refuse_comma(name: &str, written: &str) -> Result<(), String> {
    if written.contains(',') {
        return Err(format!(
            "{name} {written:?} contains a comma: Helm would split it into several paths, so it is refused"
        ));
    }
    Ok(())
}

/// `helm dependency build` argv for the init step when the chart declares dependencies (after
/// checking every dependency source Helm reads, see `argocd::dependencies`), else `None`.
pub fn init_args(env: &Env, repo: &Repository) -> Result<Option<Vec<OsString>>, String> {
    repo.check_symlinks()?;
    let chart = chart(repo, env)?;
    if !repo.root.join(&chart).is_dir() {
        return Ok(None); // an archive carries its dependencies
    }
    let allowed = schemes(env, DEPENDENCY_SCHEMES_ENV);
    if !dependencies::check(repo, &chart, &allowed)? {
        return Ok(None);
    }
    let mut args: Vec<OsString> = vec!["dependency".into(), "build".into(), "--".into()];
    args.push(repo.seen_from_app(&chart).into_os_string());
    Ok(Some(args))
}

/// The operator's comma- (or space-) separated scheme list in `name`, lower-case.
fn schemes(env: &Env, name: &str) -> Vec<String> {
    env.get(name)
        .unwrap_or("")
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
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
                "--skip-schema-validation",
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
    fn links_must_resolve_inside_now_and_stay_inside_lexically() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("repo");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::write(root.join("a/v.yaml"), "").unwrap();
        let e = env(&[], &root);
        let repo = Repository::locate(&e).unwrap();
        let link = |target: &str| {
            let at = root.join("a/b/l");
            let _ = std::fs::remove_file(&at);
            std::os::unix::fs::symlink(target, &at).unwrap();
            repo.check_link(Path::new("a/b/l"))
        };
        assert!(link("../v.yaml").is_ok());
        assert!(link("../../a/v.yaml").is_ok());
        // To nothing (yet), through a directory Helm would create, absolute, out and back in.
        assert!(link("../missing.yaml").is_err());
        assert!(link("../tmpcharts-1/../../../x").is_err());
        assert!(link(&root.join("a/v.yaml").display().to_string()).is_err());
        assert!(link("../../../repo/a/v.yaml").is_err());
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
