//! What `gitlab-runner register --template-config` will do with the patched TOML, checked before
//! anything is deployed (runner-config.md §3):
//!
//! - an env var on the runner container that `register` reads for a key the patch writes
//!   (`KUBERNETES_PULL_POLICY`, `KUBERNETES_PRIVILEGED`, `CI_SERVER_TLS_CA_FILE`,
//!   `KUBERNETES_NAMESPACE` …) beats the template: the run is refused, naming both values, or
//!   with `spec.envConflicts: replace` the env var is removed so that the patched TOML applies;
//! - `envFrom` may set such env vars too, which cannot be checked offline: a warning;
//! - sections and keys `register` throws away (`[runners.docker]` with the kubernetes executor,
//!   `url`, `token` …) in the chart's TOML: a warning each (the spec's own `runnerToml` is
//!   checked when the spec is compiled).

use serde_json::Value as Json;
use toml_edit::{Document, Item, Value};

use crate::error::{DocRef, Error};
use crate::release::pod::EnvEdit;
use crate::release::toml::TomlPatch;
use crate::spec::EnvConflicts;
use crate::spec::go_case;
use crate::spec::runner::{self, EnvBinding, EnvKind};

/// A value the patch writes into every `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// Dotted path under `[[runners]]`, in the spelling the patch uses.
    pub key: String,
    pub value: Json,
}

/// Every value `patch` writes that an env var could override.
pub fn writes(patch: &TomlPatch) -> Vec<Write> {
    let mut out = Vec::new();
    let list = |l: &[&str]| Json::from(l.iter().map(|s| Json::from(*s)).collect::<Vec<_>>());
    if let Some(p) = &patch.pull_policy {
        out.push(Write {
            key: "kubernetes.pull_policy".into(),
            value: list(p),
        });
    }
    if let Some(p) = &patch.allowed_pull_policies {
        out.push(Write {
            key: "kubernetes.allowed_pull_policies".into(),
            value: list(p),
        });
    }
    if let Some(path) = &patch.tls_ca_file {
        out.push(Write {
            key: "tls-ca-file".into(),
            value: Json::from(path.as_str()),
        });
    }
    if let Some(fragment) = &patch.fragment {
        out.extend(fragment.values().iter().map(|(key, value)| Write {
            key: key.clone(),
            value: value.clone(),
        }));
    }
    out
}

/// What the Deployment's env asks of the patch: env edits for the Deployment editor
/// (`envConflicts: replace`) and warnings.
#[derive(Debug, Default, PartialEq)]
pub struct EnvPlan {
    /// Env vars to drop from the runner container, in the order their conflicts were found.
    pub edits: Vec<EnvEdit>,
    pub warnings: Vec<String>,
}

/// Checks the runner container (`containers[container]` of `deployment`) for env vars that
/// `register` would prefer over the values in `writes`.
pub fn check_env(
    deployment: &Json,
    doc: &DocRef,
    container: usize,
    writes: &[Write],
    mode: EnvConflicts,
) -> Result<EnvPlan, Error> {
    let mut plan = EnvPlan::default();
    if writes.is_empty() {
        return Ok(plan);
    }
    let c = deployment
        .pointer(&format!("/spec/template/spec/containers/{container}"))
        .unwrap_or(&Json::Null);
    let env_path = format!("spec.template.spec.containers[{container}].env");
    let env: &[Json] = c
        .get("env")
        .and_then(Json::as_array)
        .map_or(&[], Vec::as_slice);
    let mut conflicts: Vec<(usize, String)> = Vec::new();
    let mut bound: Vec<&'static str> = Vec::new();
    for write in writes {
        let Some((binding, entry_key)) = binding_for(&write.key) else {
            continue;
        };
        bound.push(binding.env);
        // Kubernetes keeps the last of several entries with one name.
        let Some((index, entry)) = env
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| e.get("name").and_then(Json::as_str) == Some(binding.env))
        else {
            continue;
        };
        let env_value = EnvValue::of(entry);
        if binding.kind == EnvKind::Map {
            plan.warnings.push(format!(
                "{doc} {env_path}[{index}]: env var {} is merged with runners.{} by register, its entries winning over the template's; runner-patch writes runners.{} = {} and cannot tell offline whether {} sets that entry",
                binding.env,
                binding.key,
                write.key,
                show(&write.value),
                binding.env,
            ));
            continue;
        }
        if env_value.reads_as(binding.kind, &write.value) {
            continue;
        }
        let key = entry_key.unwrap_or(&write.key);
        match mode {
            EnvConflicts::Replace => {
                let drop = EnvEdit::Drop {
                    name: binding.env.to_owned(),
                };
                if !plan.edits.contains(&drop) {
                    plan.edits.push(drop);
                }
            }
            EnvConflicts::Refuse => conflicts.push((
                index,
                format!(
                    "env var {} = {} overrides runners.{key} = {}, which runner-patch writes (register --template-config prefers env vars over the template, so the runner would use {})",
                    binding.env,
                    env_value.show(),
                    show(&write.value),
                    env_value.show(),
                ),
            )),
        }
    }
    if let Some((index, _)) = conflicts.first() {
        let lines: Vec<&str> = conflicts.iter().map(|(_, m)| m.as_str()).collect();
        return Err(Error::Field {
            doc: Box::new(doc.clone()),
            field: format!("{env_path}[{index}]"),
            message: format!(
                "{}; remove the env var (chart values envVars / extraEnv) or set spec.envConflicts: replace to have runner-patch remove it",
                lines.join("; ")
            ),
        });
    }
    if !bound.is_empty()
        && let Some(from) = c.get("envFrom").and_then(Json::as_array)
        && !from.is_empty()
    {
        bound.sort_unstable();
        bound.dedup();
        let sources: Vec<String> = from.iter().map(describe_env_from).collect();
        plan.warnings.push(format!(
            "{doc} spec.template.spec.containers[{container}].envFrom ({}) may set {}, which register would prefer over what runner-patch writes to the runner TOML; runner-patch cannot check that offline",
            sources.join(", "),
            bound.join(", "),
        ));
    }
    Ok(plan)
}

/// The env binding of `key` (a dotted path under `[[runners]]`), or of the map that holds it;
/// keys that register ignores whatever the env says (`url`, `name` …) have none here.
fn binding_for(key: &str) -> Option<(&'static EnvBinding, Option<&str>)> {
    if runner::IGNORED_KEYS
        .iter()
        .any(|(k, _)| go_case::equal_fold(k, key))
    {
        return None;
    }
    if let Some(b) = runner::env_binding(key) {
        return Some((b, None));
    }
    // A map entry (`kubernetes.node_selector.os`, `feature_flags.FF_X`): the map's binding.
    let mut prefix = key;
    while let Some((parent, _)) = prefix.rsplit_once('.') {
        if let Some(b) = runner::env_binding(parent) {
            return (b.kind == EnvKind::Map).then_some((b, Some(key)));
        }
        prefix = parent;
    }
    None
}

/// An env var's value as the Deployment gives it.
enum EnvValue<'a> {
    Literal(&'a str),
    /// `valueFrom`: known only in the cluster.
    From(String),
}

impl<'a> EnvValue<'a> {
    fn of(entry: &'a Json) -> EnvValue<'a> {
        if let Some(from) = entry.get("valueFrom").filter(|v| !v.is_null()) {
            return EnvValue::From(describe_value_from(from));
        }
        EnvValue::Literal(entry.get("value").and_then(Json::as_str).unwrap_or(""))
    }

    /// True when the runner reads this env value as `wanted`, so the patch's intent holds.
    fn reads_as(&self, kind: EnvKind, wanted: &Json) -> bool {
        let EnvValue::Literal(text) = self else {
            return false;
        };
        match kind {
            // An empty value leaves a scalar at its zero value, and the template fills it.
            EnvKind::String | EnvKind::Int | EnvKind::Bool | EnvKind::Duration
                if text.is_empty() =>
            {
                true
            }
            EnvKind::Bool => go_bool(text).is_some_and(|b| Some(b) == wanted.as_bool()),
            EnvKind::Int => text.trim().parse::<i64>().ok() == wanted.as_i64(),
            EnvKind::String | EnvKind::Duration => wanted.as_str() == Some(*text),
            EnvKind::List => {
                let Some(items) = wanted.as_array() else {
                    return false;
                };
                let items: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
                let given: Vec<&str> = text.split(',').map(str::trim).collect();
                given == items
            }
            EnvKind::Map => false,
        }
    }

    fn show(&self) -> String {
        match self {
            EnvValue::Literal(text) => format!("{text:?}"),
            EnvValue::From(how) => format!("(from {how})"),
        }
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `secretKeyRef name/key`, `configMapKeyRef name/key`, `fieldRef path` — names only, never data.
fn describe_value_from(from: &Json) -> String {
    let Some(map) = from.as_object() else {
        return "valueFrom".into();
    };
    map.iter()
        .map(|(kind, r)| {
            let name = r.get("name").and_then(Json::as_str);
            let key = r
                .get("key")
                .or_else(|| r.get("fieldPath"))
                .or_else(|| r.get("resource"))
                .and_then(Json::as_str);
            match (name, key) {
                (Some(n), Some(k)) => format!("{kind} {n}/{k}"),
                (None, Some(k)) => format!("{kind} {k}"),
                (Some(n), None) => format!("{kind} {n}"),
                (None, None) => kind.clone(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_env_from(source: &Json) -> String {
    for kind in ["configMapRef", "secretRef"] {
        if let Some(name) = source
            .get(kind)
            .and_then(|r| r.get("name"))
            .and_then(Json::as_str)
        {
            return format!("{kind} {name}");
        }
    }
    "a source".into()
}

/// A value as TOML writes it (`"x"`, `["a", "b"]`, `true`).
fn show(value: &Json) -> String {
    match value {
        Json::Array(items) => format!(
            "[{}]",
            items.iter().map(show).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// The namespace job pods will run in: the patch's own `namespace` when the fragment sets one (an
/// env var that disagrees is refused or removed, see [`check_env`]), else — when the TOML goes
/// through `register`, whose runner container is `register_env` — a literal `KUBERNETES_NAMESPACE`
/// there (it beats the template), else the chart TOML's `namespace`.
pub fn job_namespace(
    register_env: Option<(&Json, usize)>,
    fragment: Option<&crate::spec::fragment::Fragment>,
    toml_namespace: Option<String>,
) -> Option<String> {
    if let Some(ns) = fragment.and_then(|f| {
        f.values()
            .iter()
            .find(|(k, _)| go_case::equal_fold(k, "kubernetes.namespace"))
            .and_then(|(_, v)| v.as_str().map(str::to_owned))
    }) {
        return Some(ns);
    }
    let env = register_env
        .and_then(|(deployment, container)| {
            deployment.pointer(&format!("/spec/template/spec/containers/{container}/env"))
        })
        .and_then(Json::as_array)
        .and_then(|env| {
            env.iter()
                .rev()
                .find(|e| e.get("name").and_then(Json::as_str) == Some("KUBERNETES_NAMESPACE"))
        });
    match env.map(EnvValue::of) {
        Some(EnvValue::Literal(ns)) if !ns.is_empty() => Some(ns.to_owned()),
        _ => toml_namespace,
    }
}

/// With an executor other than kubernetes, `register` keeps no `[runners.kubernetes]`: the host
/// aliases, volumes and pull policies runner-patch writes there would never reach the runner, so
/// such a release is refused rather than patched for nothing.
pub fn check_executor(
    deployment: &Json,
    doc: &DocRef,
    container: usize,
    patch: &TomlPatch,
) -> Result<(), Error> {
    let Some(executor) = executor(deployment, container) else {
        return Ok(());
    };
    if executor == runner::KUBERNETES_EXECUTOR {
        return Ok(());
    }
    let writes_kubernetes = !patch.host_aliases.is_empty()
        || !patch.config_map_volumes.is_empty()
        || !patch.secret_volumes.is_empty()
        || patch.pull_policy.is_some()
        || patch.allowed_pull_policies.is_some()
        || patch.fragment.as_ref().is_some_and(|f| {
            f.values().iter().any(|(key, _)| {
                key.split_once('.')
                    .is_some_and(|(first, _)| go_case::equal_fold(first, "kubernetes"))
            })
        });
    if !writes_kubernetes {
        return Ok(());
    }
    Err(Error::Field {
        doc: Box::new(doc.clone()),
        field: format!("spec.template.spec.containers[{container}].env"),
        message: format!(
            "RUNNER_EXECUTOR is {executor:?}: register keeps [runners.kubernetes] only for the {} executor, so what runner-patch writes there (host aliases, volumes, pull policies) would never reach the runner",
            runner::KUBERNETES_EXECUTOR
        ),
    })
}

/// The executor `register` uses for the runner container: its `RUNNER_EXECUTOR` env var.
pub fn executor(deployment: &Json, container: usize) -> Option<&str> {
    deployment
        .pointer(&format!("/spec/template/spec/containers/{container}/env"))
        .and_then(Json::as_array)?
        .iter()
        .rev()
        .find(|e| e.get("name").and_then(Json::as_str) == Some("RUNNER_EXECUTOR"))?
        .get("value")
        .and_then(Json::as_str)
}

/// Warnings for keys of the chart's runner TOML that the runner does not know (it ignores them
/// silently) or cannot read (wrong type, a value outside an enum), matched case-insensitively as
/// the runner's decoder does.
/// Problems at a key the patch writes (`writes`) are left out: the patch replaces that value.
pub fn toml_problems(doc: &Document<&str>, writes: &[Write]) -> Vec<TomlNote> {
    let json = crate::spec::fragment::table_to_json(doc.as_table());
    crate::spec::schema::check_folding_case(&json, runner::schema())
        .into_iter()
        .filter(|p| !overwritten(&p.path, writes))
        .map(|p| TomlNote {
            line: line_of_path(doc, &p.path),
            message: if p.message.starts_with("unknown field") {
                format!("{} (the runner ignores keys it does not know)", p.message)
            } else {
                p.message
            },
            path: p.path,
        })
        .collect()
}

/// A warning about a runner TOML: the key it is about, its 1-based TOML line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlNote {
    /// `runners[0].cache.Typ`.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl std::fmt::Display for TomlNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The line of the key at `path` (`runners[0].cache.Typ`, `items["ca.crt"]`) in the parsed text,
/// or of its closest ancestor that has a position.
fn line_of_path(doc: &Document<&str>, path: &str) -> Option<usize> {
    let text = doc.raw();
    let mut node = Node::Item(doc.as_item());
    let mut found = None;
    for segment in path_segments(path) {
        let (next, span) = match (node, segment) {
            (Node::Item(Item::Table(t)), Step::Key(k)) => {
                (t.get(&k).map(Node::Item), t.key(&k).and_then(|k| k.span()))
            }
            (Node::Item(Item::ArrayOfTables(a)), Step::Index(i)) => {
                (a.get(i).map(Node::Table), a.get(i).and_then(|t| t.span()))
            }
            (Node::Table(t), Step::Key(k)) => {
                (t.get(&k).map(Node::Item), t.key(&k).and_then(|k| k.span()))
            }
            (Node::Item(Item::Value(v)), step) | (Node::Value(v), step) => match (v, step) {
                (Value::InlineTable(t), Step::Key(k)) => {
                    (t.get(&k).map(Node::Value), t.key(&k).and_then(|k| k.span()))
                }
                (Value::Array(a), Step::Index(i)) => {
                    (a.get(i).map(Node::Value), a.get(i).and_then(Value::span))
                }
                _ => (None, None),
            },
            _ => (None, None),
        };
        if let Some(span) = span {
            found = Some(
                1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..span.start.min(text.len())])
                    .count(),
            );
        }
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    found
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a toml_edit::Table),
    Value(&'a Value),
}

enum Step {
    Key(String),
    Index(usize),
}

/// Splits a rendered path (`a.b[0]["c.d"]`, see `manifest::positions::render_path`) into steps.
fn path_segments(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            if let Some(quoted) = r.strip_prefix('"') {
                // A quoted key, written with Rust's `{:?}`: find its closing quote. (Escapes JSON
                // does not share, such as `\u{1b}`, leave the key unmatched: the line is then
                // its table's.)
                let mut escaped = false;
                let end = quoted.char_indices().find_map(|(i, c)| {
                    let close = c == '"' && !escaped;
                    escaped = c == '\\' && !escaped;
                    close.then_some(i + 1)
                });
                let Some(end) = end else { break };
                let key = serde_json::from_str::<String>(&r[..=end]).unwrap_or_default();
                out.push(Step::Key(key));
                rest = r[end + 1..].strip_prefix(']').unwrap_or("");
            } else {
                let Some((n, r)) = r.split_once(']') else {
                    break;
                };
                match n.parse() {
                    Ok(i) => out.push(Step::Index(i)),
                    Err(_) => break,
                }
                rest = r;
            }
        } else {
            let r = rest.strip_prefix('.').unwrap_or(rest);
            let end = r.find(['.', '[']).unwrap_or(r.len());
            out.push(Step::Key(r[..end].to_owned()));
            rest = &r[end..];
        }
    }
    out
}

/// True when `path` (`runners[0].kubernetes.pull_policy[1]`) is, or is inside, a key of `writes`
/// (keys compared as the runner compares them, quoted ones such as `["\u{212A}ubernetes"]` too).
fn overwritten(path: &str, writes: &[Write]) -> bool {
    let steps = path_segments(path);
    let [Step::Key(runners), Step::Index(_), rest @ ..] = steps.as_slice() else {
        return false;
    };
    if runners != "runners" {
        return false;
    }
    writes.iter().any(|w| {
        let wanted: Vec<&str> = w.key.split('.').collect();
        rest.len() >= wanted.len()
            && rest.iter().zip(&wanted).all(|(step, want)| match step {
                Step::Key(k) => go_case::equal_fold(k, want),
                Step::Index(_) => false,
            })
    })
}

/// Warnings for what `register` with `executor` discards from the chart's template TOML.
pub fn template_warnings(doc: &Document<&str>, executor: Option<&str>) -> Vec<TomlNote> {
    if executor != Some(runner::KUBERNETES_EXECUTOR) {
        return Vec::new();
    }
    let Some(Item::ArrayOfTables(runners)) = doc.get("runners") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, t) in runners.iter().enumerate() {
        for (key, message) in runner::discarded(t) {
            let path = format!("runners[{i}].{key}");
            out.push(TomlNote {
                line: line_of_path(doc, &path),
                path,
                message,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::fragment::Fragment;
    use serde_json::json;

    fn deployment(env: Json) -> Json {
        json!({"spec": {"template": {"spec": {"containers": [{"name": "r", "env": env}]}}}})
    }

    fn doc() -> DocRef {
        DocRef {
            kind: "Deployment".into(),
            name: "r".into(),
            ..DocRef::default()
        }
    }

    fn pull(p: &[&'static str]) -> TomlPatch {
        TomlPatch {
            pull_policy: Some(p.to_vec()),
            allowed_pull_policies: Some(p.to_vec()),
            ..TomlPatch::default()
        }
    }

    #[test]
    fn refuses_env_that_overrides_a_written_value_naming_both() {
        let d = deployment(json!([
            {"name": "RUNNER_EXECUTOR", "value": "kubernetes"},
            {"name": "KUBERNETES_PULL_POLICY", "value": "always"}
        ]));
        let err = check_env(
            &d,
            &doc(),
            0,
            &writes(&pull(&["if-not-present"])),
            EnvConflicts::Refuse,
        )
        .unwrap_err();
        let Error::Field { field, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(field, "spec.template.spec.containers[0].env[1]");
        assert!(
            message.contains("KUBERNETES_PULL_POLICY = \"always\"")
                && message.contains("runners.kubernetes.pull_policy = [\"if-not-present\"]"),
            "{message}"
        );
        // A conflict with the input: main maps `Field` to exit 3 (golden error-env-overrides-*).
        assert!(matches!(err, Error::Field { .. }));
    }

    #[test]
    fn same_value_is_no_conflict_and_replace_removes() {
        let d = deployment(json!([{"name": "KUBERNETES_PULL_POLICY", "value": "if-not-present"}]));
        let w = writes(&pull(&["if-not-present"]));
        assert_eq!(
            check_env(&d, &doc(), 0, &w, EnvConflicts::Refuse).unwrap(),
            EnvPlan::default()
        );
        let d = deployment(json!([
            {"name": "KUBERNETES_PULL_POLICY", "value": "never"},
            {"name": "KUBERNETES_ALLOWED_PULL_POLICIES", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ]));
        let plan = check_env(&d, &doc(), 0, &w, EnvConflicts::Replace).unwrap();
        let drop = |name: &str| EnvEdit::Drop { name: name.into() };
        assert_eq!(
            plan.edits,
            [
                drop("KUBERNETES_PULL_POLICY"),
                drop("KUBERNETES_ALLOWED_PULL_POLICIES")
            ]
        );
    }

    #[test]
    fn after_replace_register_reads_what_was_written() {
        let mut d = deployment(json!([
            {"name": "KUBERNETES_PULL_POLICY", "value": "always"},
            {"name": "RUNNER_EXECUTOR", "value": "kubernetes"},
            {"name": "KUBERNETES_PULL_POLICY", "value": "never"},
            {"name": "KUBERNETES_ALLOWED_PULL_POLICIES", "value": "if-not-present"}
        ]));
        let w = writes(&pull(&["if-not-present"]));
        let plan = check_env(&d, &doc(), 0, &w, EnvConflicts::Replace).unwrap();
        // The typed list is what the Deployment editor consumes.
        let patch = crate::release::pod::PodPatch {
            env: plan.edits,
            ..Default::default()
        };
        assert!(crate::release::pod::apply(&mut d, 0, &patch).unwrap());
        assert_eq!(
            check_env(&d, &doc(), 0, &w, EnvConflicts::Refuse).unwrap(),
            EnvPlan::default(),
            "no env var left that register would prefer"
        );
        let env = d.pointer("/spec/template/spec/containers/0/env").unwrap();
        assert_eq!(
            env,
            &json!([
                {"name": "RUNNER_EXECUTOR", "value": "kubernetes"},
                {"name": "KUBERNETES_ALLOWED_PULL_POLICIES", "value": "if-not-present"}
            ]),
            "an env var that agrees with what is written stays"
        );
    }

    #[test]
    fn fragment_values_map_to_env_case_insensitively() {
        let fragment =
            Fragment::parse("[runners.Kubernetes]\nPrivileged = true\nnamespace = \"ci\"\n");
        // The schema is stricter than the runner about case; only lower-case keys pass today.
        assert!(fragment.is_err());
        let fragment =
            Fragment::parse("[runners]\nkubernetes = { privileged = true, namespace = \"ci\" }\n")
                .unwrap();
        let patch = TomlPatch {
            fragment: Some(fragment),
            ..TomlPatch::default()
        };
        let d = deployment(json!([
            {"name": "KUBERNETES_PRIVILEGED", "value": "TRUE"},
            {"name": "KUBERNETES_NAMESPACE", "value": "gitlab"}
        ]));
        let err = check_env(&d, &doc(), 0, &writes(&patch), EnvConflicts::Refuse).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(
                "KUBERNETES_NAMESPACE = \"gitlab\" overrides runners.kubernetes.namespace = \"ci\""
            ),
            "{message}"
        );
        assert!(!message.contains("KUBERNETES_PRIVILEGED"), "{message}");
    }

    #[test]
    fn env_from_and_map_entries_warn() {
        let fragment =
            Fragment::parse("[runners.kubernetes.node_selector]\nos = \"linux\"\n").unwrap();
        let patch = TomlPatch {
            fragment: Some(fragment),
            ..pull(&["always"])
        };
        let mut d =
            deployment(json!([{"name": "KUBERNETES_NODE_SELECTOR", "value": "os=windows"}]));
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
            json!([{"secretRef": {"name": "runner-env"}}]);
        let plan = check_env(&d, &doc(), 0, &writes(&patch), EnvConflicts::Refuse).unwrap();
        assert_eq!(plan.warnings.len(), 2, "{:#?}", plan.warnings);
        assert!(plan.warnings[0].contains("KUBERNETES_NODE_SELECTOR is merged"));
        assert!(
            plan.warnings[1].contains("envFrom (secretRef runner-env)")
                && plan.warnings[1].contains("KUBERNETES_PULL_POLICY"),
            "{:#?}",
            plan.warnings
        );
    }

    #[test]
    fn job_namespace_is_what_register_will_use() {
        let with_env = deployment(json!([{"name": "KUBERNETES_NAMESPACE", "value": "from-env"}]));
        let without = deployment(json!([]));
        let toml = || Some("from-toml".to_owned());
        assert_eq!(
            job_namespace(Some((&with_env, 0)), None, toml()).as_deref(),
            Some("from-env")
        );
        assert_eq!(
            job_namespace(Some((&without, 0)), None, toml()).as_deref(),
            Some("from-toml")
        );
        // `runners.configOverride`: no register step, the env var changes nothing.
        assert_eq!(
            job_namespace(None, None, toml()).as_deref(),
            Some("from-toml")
        );
        let fragment = Fragment::parse(
            "[runners.kubernetes]
namespace = \"from-spec\"\n",
        )
        .unwrap();
        assert_eq!(
            job_namespace(Some((&with_env, 0)), Some(&fragment), toml()).as_deref(),
            Some("from-spec")
        );
    }

    #[test]
    fn chart_toml_keys_are_checked_like_the_runner_reads_them() {
        let text = "[[runners]]\n  [runners.Kubernetes]\n    Pull_Policy = \"always\"\n    privilegd = true\n  [runners.cache]\n    Typ = \"s3\"\n  [[runners.kubernetes.volumes.config_map]]\n    name = \"ca\"\n    mount_path = \"/ca\"\n    items = { \"ca.crt\" = 1 }\n";
        let doc = Document::parse(text).unwrap();
        let found: Vec<(String, Option<usize>)> = toml_problems(&doc, &[])
            .into_iter()
            .map(|n| (n.to_string(), n.line))
            .collect();
        assert_eq!(found.len(), 3, "{found:#?}");
        assert!(
            found[0]
                .0
                .starts_with("runners[0].Kubernetes.privilegd: unknown field")
                && found[0].0.contains("`privileged`"),
            "{found:#?}"
        );
        assert_eq!(found[0].1, Some(4), "the key's own TOML line");
        assert!(
            found[1]
                .0
                .starts_with("runners[0].cache.Typ: unknown field `Typ`, did you mean `Type`?"),
            "{found:#?}"
        );
        assert_eq!(found[1].1, Some(6));
        assert!(
            found[2].0.starts_with(
                "runners[0].kubernetes.volumes.config_map[0].items[\"ca.crt\"]: expected a string"
            ),
            "{found:#?}"
        );
        assert_eq!(found[2].1, Some(10), "inside an inline table, quoted key");

        // What the patch writes replaces what was there: nothing to say about it.
        let doc = Document::parse(
            "[[runners]]\n  [runners.kubernetes]\n    pull_policy = \"IfNotPresent\"\n    privileged = \"yes\"\n",
        )
        .unwrap();
        assert_eq!(toml_problems(&doc, &[]).len(), 2);
        let found = toml_problems(&doc, &writes(&pull(&["if-not-present"])));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(
            found[0]
                .to_string()
                .starts_with("runners[0].kubernetes.privileged: expected a boolean"),
            "{found:#?}"
        );
        assert_eq!(found[0].line, Some(4));
    }

    /// The runner folds keys with Unicode simple folding: the Kelvin sign is a `k`, the long s
    /// an `s`, so neither key is unknown to it, and a patch writing the field overwrites them.
    #[test]
    fn keys_fold_beyond_ascii_as_the_runner_folds_them() {
        let text = "[[runners]]\n  [runners.\"\u{212A}ubernetes\"]\n    \"\u{17F}ervice_account\" = \"sa\"\n    \"pull_policy\" = \"IfNotPresent\"\n    [[runners.kubernetes.volumes.\"\u{17F}ecret\"]]\n      name = \"s\"\n      mount_path = \"/s\"\n";
        let doc = Document::parse(text).unwrap();
        let found: Vec<String> = toml_problems(&doc, &[])
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(found.len(), 1, "only the bad pull policy: {found:#?}");
        assert!(found[0].contains("pull_policy"), "{found:#?}");
        let found = toml_problems(&doc, &writes(&pull(&["if-not-present"])));
        assert!(found.is_empty(), "{found:#?}");
        assert!(binding_for("\u{212A}ubernetes.pull_policy").is_some());
        assert!(binding_for("\u{17F}ervice_account").is_none());
    }

    #[test]
    fn chart_template_sections_register_discards() {
        let doc = Document::parse("[[runners]]\n  url = \"https://x\"\n  [runners.docker]\n    image = \"a\"\n  [runners.kubernetes]\n    image = \"b\"\n")
            .unwrap();
        let found = template_warnings(&doc, Some("kubernetes"));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].line, Some(2));
        assert!(
            found[1]
                .to_string()
                .starts_with("runners[0].docker: register discards"),
            "{found:#?}"
        );
        assert_eq!(found[1].line, Some(3));
        assert!(template_warnings(&doc, Some("docker")).is_empty());
    }
}
