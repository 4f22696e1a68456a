//! The chart dependencies `helm dependency build` (the init step) would fetch, checked before it
//! runs.
//!
//! Helm reads dependencies from more places than `Chart.yaml`: it merges `requirements.yaml`
//! over the chart's metadata (even for `apiVersion: v2`), and when a lock file is present
//! (`Chart.lock`, `requirements.lock`) it builds from the lock's entries, whose digest anyone can
//! compute. A `file://` entry is archived into `charts/` from wherever it points, so each of these
//! files — in the chart and, recursively, in every `file://` subchart — is read and every
//! repository in it must be one of:
//!
//! - `file://PATH` resolving inside the repository (relative to the chart, symbolic links
//!   included; the same resolution and messages as every other path);
//! - empty (the chart already sits in `charts/NAME`), with a plain `NAME`;
//! - a remote repository whose scheme the operator lists in `RUNNER_PATCH_DEPENDENCY_SCHEMES`
//!   (`https`, `oci`, …; `alias` for `@name`/`alias:name`, which name repositories the operator
//!   configured in Helm's `repositories.yaml`).
//!
//! Helm decodes these files with sigs.k8s.io/yaml, whose JSON step matches field names
//! case-insensitively (Unicode simple folding: `Repoſitory` is `repository`). So keys are compared
//! folded (anchors, merge keys, duplicate keys and `!!binary` decode as in Go's YAML), every key that folds to `repository` is checked (whichever Helm ends up using), and on
//! top of that every string anywhere in the file that starts with `file://` must resolve inside
//! the repository, whatever key it sits under.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

use serde_json::Value;

use super::{Kind, Repository, url_scheme};
use crate::spec::go_case;

/// Operator setting (sidecar env): what chart dependencies may be fetched from, comma-separated
/// URL schemes (`https`, `oci`, …) and `alias` for repositories named `@name`/`alias:name`.
pub const DEPENDENCY_SCHEMES_ENV: &str = "RUNNER_PATCH_DEPENDENCY_SCHEMES";

/// The files Helm reads dependencies from (`pkg/chart/v2/loader`).
const SOURCES: [&str; 4] = [
    "Chart.yaml",
    "requirements.yaml",
    "Chart.lock",
    "requirements.lock",
];

/// Largest dependency file read.
const MAX_SOURCE_BYTES: u64 = 1 << 20;

/// Checks the dependencies of the chart at `chart` (a directory relative to the repository root)
/// and of its `file://` subcharts; true when the chart declares any.
pub(super) fn check(repo: &Repository, chart: &Path, allowed: &[String]) -> Result<bool, String> {
    let mut pending = vec![chart.to_path_buf()];
    let mut seen = BTreeSet::new();
    let mut any = false;
    while let Some(dir) = pending.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        for source in SOURCES {
            let Some(document) = read(repo, &dir, source)? else {
                continue;
            };
            let shown = shown(chart, &dir, source);
            any |= !dependencies(&document).is_empty();
            for (i, dependency) in dependencies(&document).into_iter().enumerate() {
                let at = format!("{shown} dependencies[{i}]");
                check_name(dependency, &at)?;
                for repository in fields(dependency, "repository") {
                    let Some(repository) = repository.as_str() else {
                        return Err(format!("{at}.repository is not a string"));
                    };
                    check_remote(repository, &at, allowed)?;
                    if let Some(local) = repository.strip_prefix("file://") {
                        let what = format!("{at}.repository");
                        pending.extend(local_chart(repo, &dir, &what, local)?);
                    }
                }
            }
            // Every `file://` string, under whatever key: resolved inside the repository.
            let mut local = Vec::new();
            file_urls(&document, &mut local);
            for url in local {
                let what = format!("{shown} (a file:// string)");
                pending.extend(local_chart(repo, &dir, &what, &url["file://".len()..])?);
            }
        }
    }
    Ok(any)
}

/// Resolves a `file://` path of the chart `dir` inside the repository; the chart directory to
/// check next, when it is one.
fn local_chart(
    repo: &Repository,
    dir: &Path,
    what: &str,
    written: &str,
) -> Result<Option<std::path::PathBuf>, String> {
    Ok(match repo.resolve_from(dir, what, written)? {
        (resolved, Kind::Directory) => Some(resolved),
        (_, Kind::File) => None,
    })
}

/// How a dependency file is named in messages: relative to the chart.
fn shown(chart: &Path, dir: &Path, source: &str) -> String {
    let relative = dir.strip_prefix(chart).unwrap_or(dir);
    relative.join(source).display().to_string()
}

/// The parsed file `source` of the chart `dir`, when there is one.
fn read(repo: &Repository, dir: &Path, source: &str) -> Result<Option<Value>, String> {
    let path = dir.join(source);
    let shown = path.display();
    let meta = match repo.dir.metadata(&path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(_) => return Err(format!("the chart's {shown} cannot be read")),
    };
    if !meta.is_file() || meta.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "the chart's {shown} is not a regular file of at most 1 MiB"
        ));
    }
    let mut text = String::new();
    repo.dir
        .open(&path)
        .and_then(|f| f.take(MAX_SOURCE_BYTES).read_to_string(&mut text))
        .map_err(|e| format!("the chart's {shown} cannot be read: {}", e.kind()))?;
    crate::manifest::yaml::parse(&text)
        .map(Some)
        .map_err(|_| format!("the chart's {shown} is not valid YAML"))
}

/// The values of every key of `value` (a mapping) that folds to `name`.
fn fields<'v>(value: &'v Value, name: &str) -> Vec<&'v Value> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| go_case::equal_fold(k, name))
        .map(|(_, v)| v)
        .collect()
}

/// Every dependency entry of a document: the elements of every top-level key that folds to
/// `dependencies`.
fn dependencies(document: &Value) -> Vec<&Value> {
    fields(document, "dependencies")
        .into_iter()
        .flat_map(|d| d.as_array().into_iter().flatten())
        .collect()
}

/// Every string in `value` that starts with `file://`, at any depth.
fn file_urls<'v>(value: &'v Value, out: &mut Vec<&'v str>) {
    match value {
        Value::String(s) if s.starts_with("file://") => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| file_urls(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                if k.starts_with("file://") {
                    out.push(k);
                }
                file_urls(v, out);
            }
        }
        _ => {}
    }
}

/// A dependency's name is a plain file name: with an empty repository Helm loads `charts/NAME`.
fn check_name(dependency: &Value, at: &str) -> Result<(), String> {
    for name in fields(dependency, "name") {
        let plain = name
            .as_str()
            .is_some_and(|n| !n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\\']));
        if !plain {
            return Err(format!(
                "{at}.name is not a plain chart name (no `/`, not `..`)"
            ));
        }
    }
    Ok(())
}

/// A repository that is not `file://`: empty, or a scheme the operator allows.
fn check_remote(repository: &str, at: &str, allowed: &[String]) -> Result<(), String> {
    if repository.is_empty() || repository.starts_with("file://") {
        return Ok(()); // charts/NAME, or checked as a path
    }
    let scheme = if repository.starts_with('@') {
        Some("alias".to_owned())
    } else {
        url_scheme(repository).map(str::to_ascii_lowercase)
    };
    match scheme {
        Some(scheme) if allowed.contains(&scheme) => Ok(()),
        Some(scheme) => Err(format!(
            "{at}.repository {repository:?} is a remote repository ({scheme}): chart dependencies are fetched only from schemes the operator allows in {DEPENDENCY_SCHEMES_ENV}; vendor the chart into the repository and use file://"
        )),
        None => Err(format!(
            "{at}.repository {repository:?} is neither a file:// path nor a URL"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_as_go_json_folds_them() {
        // encoding/json folds like strings.EqualFold (Unicode simple folding), as the runner's
        // TOML decoder does: the same function serves both.
        let doc = crate::manifest::yaml::parse(
            "dependencies:\n- name: a\n  Repo\u{17F}itory: file://a\n\u{212A}ind: x\n",
        )
        .unwrap();
        assert_eq!(dependencies(&doc).len(), 1);
        assert_eq!(fields(dependencies(&doc)[0], "repository").len(), 1);
        assert_eq!(fields(&doc, "kind").len(), 1);
        assert!(fields(&doc, "repositöry").is_empty());
    }

    #[test]
    fn tags_decode_as_helm_decodes_them() {
        // Go's YAML decodes `!!binary` into the string; so does ours, so it is checked too.
        let doc = crate::manifest::yaml::parse("r: !!binary ZmlsZTovLy9ldGM=\n").unwrap();
        let mut found = Vec::new();
        file_urls(&doc, &mut found);
        assert_eq!(found, ["file:///etc"]);
    }

    #[test]
    fn every_file_url_is_found_whatever_its_key() {
        let doc = crate::manifest::yaml::parse(
            "x-evil: &e {repository: \"file:///etc\"}\ndependencies:\n  - <<: *e\n    name: v\nother: [file://../a]\n",
        )
        .unwrap();
        let mut found = Vec::new();
        file_urls(&doc, &mut found);
        found.sort();
        assert_eq!(found, ["file://../a", "file:///etc", "file:///etc"]);
    }

    #[test]
    fn remote_repositories_need_the_operators_scheme() {
        let allowed = ["https".to_owned(), "alias".to_owned()];
        assert!(check_remote("https://charts.gitlab.io", "d", &allowed).is_ok());
        assert!(check_remote("@stable", "d", &allowed).is_ok());
        assert!(check_remote("alias:stable", "d", &allowed).is_ok());
        assert!(check_remote("", "d", &[]).is_ok());
        let err = check_remote("oci://r.example/c", "d", &allowed).unwrap_err();
        assert!(err.contains(DEPENDENCY_SCHEMES_ENV), "{err}");
        assert!(check_remote("https://charts.gitlab.io", "d", &[]).is_err());
        assert!(check_remote("../x", "d", &allowed).is_err());
        assert!(check_remote("/etc", "d", &allowed).is_err());
    }
}
