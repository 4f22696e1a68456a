//! Edits the runner TOML (`config.template.toml`, or `config.toml` with `configOverride`) with
//! toml_edit, so the user's comments (Chinese ones too), key order and layout survive.
//!
//! Every `[[runners]]` entry gets the same patch. Existing entries are merged, never duplicated:
//! host aliases by IP (hostnames unioned in order), volumes by name (unique across all volume
//! kinds, as Kubernetes requires), pull policies replaced as a whole. New keys and tables are
//! indented like their neighbours. This module knows nothing about YAML.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde_json::Value as Json;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::spec::ConfigMapVolume;
use crate::spec::schema;
use crate::spec::validate::normalize_ip;

/// The runner's TOML keys and types (derived from gitlab-runner `common/config.go`, 19.4), without
/// the descriptions: `schema/runner-template.toml-schema.json` minified and cut into one line per
/// definition and per property ([`schema::LazyDefs`]), which a unit test keeps in step.
/// Parsing the full 80 KB file would cost more than patching an umbrella stream.
const RUNNER_SCHEMA: &str = include_str!("../../../schema/runner-template.defs");

/// Drops `description` keywords and formatting from the runner schema and writes it in the
/// line format of [`schema::LazyDefs`] (see [`RUNNER_SCHEMA`]).
pub fn minify_runner_schema(full: &str) -> String {
    let value: Json = serde_json::from_str(full).expect("schema is JSON");
    schema::LazyDefs::write_without_descriptions(&value)
}

/// Volume kinds under `[runners.kubernetes.volumes]`; names must be unique across all of them.
const VOLUME_KINDS: [&str; 7] = [
    "host_path",
    "pvc",
    "config_map",
    "secret",
    "empty_dir",
    "csi",
    "nfs",
];

/// What to apply to each `[[runners]]` entry.
#[derive(Debug, Default, Clone)]
pub struct TomlPatch {
    /// IP and hostnames, in spec order.
    pub host_aliases: Vec<(String, Vec<String>)>,
    pub config_map_volumes: Vec<ConfigMapVolume>,
    /// `[[runners.kubernetes.volumes.secret]]` entries (same keys as config_map).
    pub secret_volumes: Vec<ConfigMapVolume>,
    /// `tls-ca-file` of each `[[runners]]` (the GitLab CA the manager mounts).
    pub tls_ca_file: Option<String>,
    /// Runner spellings (`if-not-present`).
    pub pull_policy: Option<Vec<&'static str>>,
    pub allowed_pull_policies: Option<Vec<&'static str>>,
    pub fragment: Option<Fragment>,
}

impl TomlPatch {
    /// True when nothing would be written to the TOML.
    pub fn is_empty(&self) -> bool {
        self.host_aliases.is_empty()
            && self.config_map_volumes.is_empty()
            && self.secret_volumes.is_empty()
            && self.tls_ca_file.is_none()
            && self.pull_policy.is_none()
            && self.allowed_pull_policies.is_none()
            && self.fragment.is_none()
    }
}

/// A TOML fragment to merge into every `[[runners]]` entry, checked against the runner's keys.
#[derive(Debug, Clone)]
pub struct Fragment {
    runner: Table,
}

impl Fragment {
    /// Parses `text` (`[runners.kubernetes]` … or one `[[runners]]`), rejecting keys the runner
    /// would silently drop, with the closest known key: one problem per offending key.
    pub fn parse(text: &str) -> Result<Fragment, Vec<String>> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let line = e.span().map(|s| line_of(text, s.start));
            vec![match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_owned(),
            }]
        })?;
        let mut runner = None;
        let mut problems = Vec::new();
        for (key, item) in doc.iter() {
            if key != "runners" {
                problems.push(format!(
                    "unknown top-level key `{key}`: the fragment is merged into each [[runners]] entry, so write it under [runners] (global settings belong in the chart's values)"
                ));
                continue;
            }
            runner = match item {
                Item::Table(t) => Some(t.clone()),
                Item::ArrayOfTables(a) if a.len() == 1 => a.get(0).cloned(),
                _ => {
                    problems.push("`runners` must be a table ([runners.kubernetes] …) or a single [[runners]] entry".into());
                    None
                }
            };
        }
        let runner = runner.unwrap_or_default();
        let json = serde_json::json!({ "runners": [table_to_json(&runner)] });
        problems.extend(
            schema::check(&json, runner_schema(), false)
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.path.replacen("runners[0]", "runners", 1),
                        p.message
                    )
                }),
        );
        if problems.is_empty() {
            Ok(Fragment { runner })
        } else {
            Err(problems)
        }
    }
}

/// Why the TOML could not be patched, with the TOML line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlFailure {
    /// 1-based line in the TOML text.
    pub line: Option<usize>,
    /// Key path, e.g. `runners[0].kubernetes.host_aliases`.
    pub path: Option<String>,
    pub message: String,
}

/// Result of a successful edit.
#[derive(Debug)]
pub struct Applied {
    /// The new text; `None` when the TOML already held everything.
    pub text: Option<String>,
    pub warnings: Vec<String>,
}

/// Applies `patch` to every `[[runners]]` entry of `text`.
pub fn apply(text: &str, patch: &TomlPatch) -> Result<Applied, TomlFailure> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| TomlFailure {
            line: e.span().map(|s| line_of(text, s.start)),
            path: None,
            message: format!("invalid TOML: {}", e.message().trim_end()),
        })?;
    let mut warnings = Vec::new();
    let fail = |path: String, message: String| TomlFailure {
        line: None,
        path: Some(path),
        message,
    };
    let runners = match doc.get_mut("runners") {
        Some(Item::ArrayOfTables(a)) if !a.is_empty() => a,
        Some(_) => return Err(fail("runners".into(), "expected [[runners]] tables".into())),
        None => {
            return Err(fail(
                "runners".into(),
                "no [[runners]] entry to patch".into(),
            ));
        }
    };
    for (i, runner) in runners.iter_mut().enumerate() {
        let base = format!("runners[{i}]");
        let indent = Indent::of(runner, &Indent::root());
        if let Some(fragment) = &patch.fragment {
            merge_table(runner, &fragment.runner, &indent, &base)?;
        }
        if let Some(path) = &patch.tls_ca_file {
            set_value(runner, "tls-ca-file", path.as_str().into(), &indent);
        }
        if patch.host_aliases.is_empty()
            && patch.config_map_volumes.is_empty()
            && patch.secret_volumes.is_empty()
            && patch.pull_policy.is_none()
            && patch.allowed_pull_policies.is_none()
        {
            continue;
        }
        let (k8s, k8s_indent) =
            child_table(runner, "kubernetes", &indent, &format!("{base}.kubernetes"))?;
        let k8s_path = format!("{base}.kubernetes");
        merge_host_aliases(k8s, &patch.host_aliases, &k8s_indent, &k8s_path)?;
        merge_volumes(
            k8s,
            &patch.config_map_volumes,
            "config_map",
            &k8s_indent,
            &k8s_path,
        )?;
        merge_volumes(k8s, &patch.secret_volumes, "secret", &k8s_indent, &k8s_path)?;
        set_pull_policies(k8s, patch, &k8s_indent, &k8s_path, &mut warnings)?;
    }
    let out = doc.to_string();
    // toml_edit always ends with a newline; keep the YAML scalar's chomping (`|-` has none).
    let out = if !text.ends_with('\n') {
        out.trim_end_matches('\n').to_owned()
    } else {
        out
    };
    Ok(Applied {
        text: (out != text).then_some(out),
        warnings,
    })
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

/// The job namespace of the first `[[runners]]` (`[runners.kubernetes] namespace`), if set.
pub fn job_namespace(text: &str) -> Option<String> {
    let doc: DocumentMut = text.parse().ok()?;
    let runners = doc.get("runners")?.as_array_of_tables()?;
    let ns = runners
        .get(0)?
        .get("kubernetes")?
        .get("namespace")?
        .as_str()?;
    Some(ns.to_owned())
}

/// Reads the first `[[runners]]` table-count of a TOML text (for locating the target key).
pub fn has_runners(text: &str) -> bool {
    text.parse::<DocumentMut>()
        .map(|d| matches!(d.get("runners"), Some(Item::ArrayOfTables(a)) if !a.is_empty()))
        .unwrap_or(false)
}

fn runner_schema() -> &'static schema::LazyDefs {
    static SCHEMA: OnceLock<schema::LazyDefs> = OnceLock::new();
    SCHEMA.get_or_init(|| schema::LazyDefs::new(RUNNER_SCHEMA))
}

/// Indentation of a table's header and of its keys, derived from what the user wrote.
#[derive(Debug, Clone)]
struct Indent {
    header: String,
    keys: String,
}

impl Indent {
    fn root() -> Indent {
        Indent {
            header: String::new(),
            keys: String::new(),
        }
    }

    /// Indentation for `table`, whose parent is indented as `parent`. The step between a parent's
    /// header and its keys is reused for children that have no keys yet.
    fn of(table: &Table, parent: &Indent) -> Indent {
        let header = last_line_indent(table.decor().prefix().and_then(|p| p.as_str()))
            .unwrap_or_else(|| parent.keys.clone());
        let keys = table
            .iter()
            .filter(|(_, item)| item.is_value())
            .find_map(|(k, _)| {
                table.key(k).and_then(|key| {
                    last_line_indent(key.leaf_decor().prefix().and_then(|p| p.as_str()))
                })
            })
            .unwrap_or_else(|| {
                let step = parent.keys.len().saturating_sub(parent.header.len()).max(
                    if parent.keys.is_empty() && parent.header.is_empty() {
                        2
                    } else {
                        0
                    },
                );
                format!("{header}{}", " ".repeat(step))
            });
        Indent { header, keys }
    }

    fn child(&self) -> Indent {
        let step = self.keys.len().saturating_sub(self.header.len());
        Indent {
            header: self.keys.clone(),
            keys: format!("{}{}", self.keys, " ".repeat(step)),
        }
    }
}

fn last_line_indent(prefix: Option<&str>) -> Option<String> {
    let p = prefix?;
    let last = p.rsplit('\n').next().unwrap_or(p);
    last.chars()
        .all(|c| c == ' ' || c == '\t')
        .then(|| last.to_owned())
}

/// Gives `key` the indentation `indent` (and nothing else before it).
fn indent_key(table: &mut Table, key: &str, indent: &str) {
    if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(indent);
    }
}

fn new_table(indent: &Indent) -> Table {
    let mut t = Table::new();
    t.decor_mut().set_prefix(indent.header.clone());
    t
}

/// The sub-table `key` of `parent`, created (indented) when missing.
fn child_table<'t>(
    parent: &'t mut Table,
    key: &str,
    indent: &Indent,
    path: &str,
) -> Result<(&'t mut Table, Indent), TomlFailure> {
    let child_indent = indent.child();
    if !parent.contains_key(key) {
        parent.insert(key, Item::Table(new_table(&child_indent)));
    }
    match parent.get_mut(key) {
        Some(Item::Table(t)) => {
            let ind = Indent::of(t, indent);
            Ok((t, ind))
        }
        _ => Err(TomlFailure {
            line: None,
            path: Some(path.to_owned()),
            message: format!(
                "`{key}` must be a table ([{path}]); inline tables are not supported here"
            ),
        }),
    }
}

/// Sets `key = value` in `table`, keeping the existing value's comments; `false` if unchanged.
fn set_value(table: &mut Table, key: &str, value: Value, indent: &Indent) -> bool {
    match table.get_mut(key) {
        Some(Item::Value(existing)) => {
            if same_value(existing, &value) {
                return false;
            }
            let decor = existing.decor().clone();
            *existing = value;
            *existing.decor_mut() = decor;
            true
        }
        _ => {
            table.insert(key, Item::Value(value));
            indent_key(table, key, &indent.keys);
            true
        }
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    value_to_json(a) == value_to_json(b)
}

// ---------------------------------------------------------------------------------------------
// host_aliases

/// One `host_aliases` element, whichever TOML shape it was written in.
enum AliasRef<'a> {
    Table(&'a mut Table),
    Inline(&'a mut InlineTable),
}

impl AliasRef<'_> {
    fn ip(&self) -> Option<String> {
        let v = match self {
            AliasRef::Table(t) => t.get("ip").and_then(Item::as_str),
            AliasRef::Inline(t) => t.get("ip").and_then(Value::as_str),
        };
        v.map(normalize_ip)
    }

    fn hostnames_mut(&mut self) -> Option<&mut Array> {
        match self {
            AliasRef::Table(t) => {
                if !t.contains_key("hostnames") {
                    t.insert("hostnames", toml_edit::value(Array::new()));
                }
                t.get_mut("hostnames").and_then(Item::as_array_mut)
            }
            AliasRef::Inline(t) => {
                if !t.contains_key("hostnames") {
                    t.insert("hostnames", Value::Array(Array::new()));
                }
                t.get_mut("hostnames").and_then(Value::as_array_mut)
            }
        }
    }
}

fn merge_host_aliases(
    k8s: &mut Table,
    aliases: &[(String, Vec<String>)],
    indent: &Indent,
    path: &str,
) -> Result<(), TomlFailure> {
    if aliases.is_empty() {
        return Ok(());
    }
    let path = format!("{path}.host_aliases");
    let fail = |message: String| TomlFailure {
        line: None,
        path: Some(path.clone()),
        message,
    };
    if !k8s.contains_key("host_aliases") {
        k8s.insert("host_aliases", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    let child = indent.child();
    for (ip, hostnames) in aliases {
        let ip_norm = normalize_ip(ip);
        let mut entries: Vec<AliasRef<'_>> = match k8s.get_mut("host_aliases") {
            Some(Item::ArrayOfTables(a)) => a.iter_mut().map(AliasRef::Table).collect(),
            Some(Item::Value(Value::Array(a))) => a
                .iter_mut()
                .map(|v| {
                    v.as_inline_table_mut()
                        .map(AliasRef::Inline)
                        .ok_or_else(|| {
                            fail(
                                "every host alias must be a table with `ip` and `hostnames`".into(),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(fail(
                    "must be an array of tables ([[runners.kubernetes.host_aliases]])".into(),
                ));
            }
        };
        // A hostname already bound to another address would make /etc/hosts ambiguous.
        for entry in entries.iter_mut() {
            let other_ip = entry.ip().unwrap_or_default();
            if other_ip == ip_norm {
                continue;
            }
            let existing: Vec<String> = entry
                .hostnames_mut()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(h) = hostnames.iter().find(|h| existing.contains(h)) {
                return Err(fail(format!(
                    "hostname {h:?} is already mapped to {other_ip}; the patch maps it to {ip}"
                )));
            }
        }
        if let Some(entry) = entries
            .iter_mut()
            .find(|e| e.ip().as_deref() == Some(ip_norm.as_str()))
        {
            let list = entry.hostnames_mut().ok_or_else(|| {
                fail(format!(
                    "`hostnames` of the entry for {ip} must be an array"
                ))
            })?;
            let present: BTreeSet<String> = list
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            for h in hostnames.iter().filter(|h| !present.contains(*h)) {
                list.push(h.as_str());
            }
            continue;
        }
        drop(entries);
        match k8s.get_mut("host_aliases") {
            Some(Item::ArrayOfTables(a)) => {
                let mut t = new_table(&child);
                t.insert("ip", toml_edit::value(ip.as_str()));
                t.insert("hostnames", toml_edit::value(string_array(hostnames)));
                indent_key(&mut t, "ip", &child.keys);
                indent_key(&mut t, "hostnames", &child.keys);
                a.push(t);
            }
            Some(Item::Value(Value::Array(a))) => {
                let mut t = InlineTable::new();
                t.insert("ip", ip.as_str().into());
                t.insert("hostnames", Value::Array(string_array(hostnames)));
                a.push(Value::InlineTable(t));
            }
            _ => unreachable!("checked above"),
        }
    }
    Ok(())
}

fn string_array(items: &[impl AsRef<str>]) -> Array {
    items.iter().map(|s| s.as_ref()).collect()
}

// ---------------------------------------------------------------------------------------------
// volumes.config_map

fn merge_volumes(
    k8s: &mut Table,
    volumes: &[ConfigMapVolume],
    target: &str,
    indent: &Indent,
    path: &str,
) -> Result<(), TomlFailure> {
    if volumes.is_empty() {
        return Ok(());
    }
    let vol_path = format!("{path}.volumes");
    if !k8s.contains_key("volumes") {
        let mut t = Table::new();
        t.set_implicit(true);
        k8s.insert("volumes", Item::Table(t));
    }
    let Some(Item::Table(vols)) = k8s.get_mut("volumes") else {
        return Err(TomlFailure {
            line: None,
            path: Some(vol_path),
            message: "must be a table of volume arrays".into(),
        });
    };
    let entry_indent = indent.child();
    for v in volumes {
        // Names and mount paths in use by other volumes (any kind).
        for kind in VOLUME_KINDS {
            let Some(Item::ArrayOfTables(list)) = vols.get(kind) else {
                continue;
            };
            for (j, other) in list.iter().enumerate() {
                let name = other.get("name").and_then(Item::as_str);
                let mount = other.get("mount_path").and_then(Item::as_str);
                let here = format!("{vol_path}.{kind}[{j}]");
                if name == Some(v.name.as_str()) && kind != target {
                    return Err(TomlFailure {
                        line: None,
                        path: Some(here),
                        message: format!(
                            "volume name {:?} is already used by the {kind} volume of that name; volume names must be unique across kinds",
                            v.name
                        ),
                    });
                }
                if name != Some(v.name.as_str())
                    && mount.map(|m| m.trim_end_matches('/'))
                        == Some(v.mount_path.trim_end_matches('/'))
                {
                    return Err(TomlFailure {
                        line: None,
                        path: Some(here),
                        message: format!(
                            "mount path {:?} is already used by volume {:?}",
                            v.mount_path,
                            name.unwrap_or("?")
                        ),
                    });
                }
            }
        }
        if !vols.contains_key(target) {
            vols.insert(target, Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let Some(Item::ArrayOfTables(list)) = vols.get_mut(target) else {
            return Err(TomlFailure {
                line: None,
                path: Some(format!("{vol_path}.{target}")),
                message: format!(
                    "must be an array of tables ([[runners.kubernetes.volumes.{target}]])"
                ),
            });
        };
        let existing = list
            .iter_mut()
            .find(|t| t.get("name").and_then(Item::as_str) == Some(v.name.as_str()));
        match existing {
            Some(table) => {
                let ind = Indent::of(table, &entry_indent);
                fill_config_map(table, v, &ind);
            }
            None => {
                let mut table = new_table(&entry_indent);
                fill_config_map(&mut table, v, &entry_indent);
                list.push(table);
            }
        }
    }
    Ok(())
}

/// Writes the spec's fields into a `config_map` volume table (the spec is the desired state).
fn fill_config_map(table: &mut Table, v: &ConfigMapVolume, indent: &Indent) {
    set_value(table, "name", v.name.as_str().into(), indent);
    set_value(table, "mount_path", v.mount_path.as_str().into(), indent);
    if let Some(sub) = &v.sub_path {
        set_value(table, "sub_path", sub.as_str().into(), indent);
    }
    if let Some(ro) = v.read_only {
        set_value(table, "read_only", ro.into(), indent);
    }
    if let Some(items) = &v.items {
        let mut inline = InlineTable::new();
        for (key, path) in items {
            inline.insert(key, path.as_str().into());
        }
        // Items may also be written as a sub-table `[runners.kubernetes.volumes.config_map.items]`.
        if let Some(Item::Table(existing)) = table.get("items") {
            if table_to_json(existing) == value_to_json(&Value::InlineTable(inline.clone())) {
                return;
            }
            table.remove("items");
        }
        set_value(table, "items", Value::InlineTable(inline), indent);
    }
}

// ---------------------------------------------------------------------------------------------
// pull_policy / allowed_pull_policies

fn set_pull_policies(
    k8s: &mut Table,
    patch: &TomlPatch,
    indent: &Indent,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<(), TomlFailure> {
    if let Some(policies) = &patch.pull_policy
        && !matches!(k8s.get("pull_policy").and_then(Item::as_value), Some(v) if policy_list(v) == *policies)
    {
        set_value(
            k8s,
            "pull_policy",
            Value::Array(string_array(policies)),
            indent,
        );
    }
    if let Some(allowed) = &patch.allowed_pull_policies
        && !matches!(k8s.get("allowed_pull_policies").and_then(Item::as_value), Some(v) if policy_list(v) == *allowed)
    {
        set_value(
            k8s,
            "allowed_pull_policies",
            Value::Array(string_array(allowed)),
            indent,
        );
    }
    let configured = k8s
        .get("pull_policy")
        .and_then(Item::as_value)
        .map(policy_list);
    let allowed = k8s
        .get("allowed_pull_policies")
        .and_then(Item::as_value)
        .map(policy_list);
    match (configured, allowed) {
        (Some(configured), Some(allowed)) => {
            if let Some(p) = configured.iter().find(|p| !p.is_empty() && !allowed.contains(p)) {
                return Err(TomlFailure {
                    line: None,
                    path: Some(format!("{path}.allowed_pull_policies")),
                    message: format!(
                        "pull policy {p:?} is not among allowed_pull_policies {allowed:?}, so every job without its own pull_policy would fail; set allowedPullPolicies in the spec"
                    ),
                });
            }
        }
        (None, Some(_)) => warnings.push(format!(
            "{path}: allowed_pull_policies is set but pull_policy is not; jobs without their own pull_policy will fail (gitlab-org/gitlab#479766)"
        )),
        _ => {}
    }
    Ok(())
}

fn policy_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.value().clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// free-form fragment merge

/// Merges `src` into `dst`: tables recursively, arrays of tables by identity, values replaced.
fn merge_table(
    dst: &mut Table,
    src: &Table,
    indent: &Indent,
    path: &str,
) -> Result<(), TomlFailure> {
    for (key, src_item) in src.iter() {
        let here = format!("{path}.{key}");
        let child_indent = match dst.get(key) {
            Some(Item::Table(t)) => Indent::of(t, indent),
            _ => indent.child(),
        };
        match (dst.get_mut(key), src_item) {
            (Some(Item::Table(d)), Item::Table(s)) => merge_table(d, s, &child_indent, &here)?,
            (Some(Item::ArrayOfTables(d)), Item::ArrayOfTables(s)) => {
                for s_entry in s.iter() {
                    let id = identity(s_entry);
                    let found = id.as_ref().and_then(|(k, v)| {
                        d.iter_mut().find(|t| {
                            t.get(k)
                                .and_then(Item::as_value)
                                .map(value_to_json)
                                .as_ref()
                                == Some(v)
                        })
                    });
                    match found {
                        Some(d_entry) => {
                            let ind = Indent::of(d_entry, &child_indent);
                            merge_table(d_entry, s_entry, &ind, &here)?;
                        }
                        None => d.push(restyled_table(s_entry, &child_indent)),
                    }
                }
            }
            (Some(Item::Value(d)), Item::Value(s)) => {
                if !same_value(d, s) {
                    let decor = d.decor().clone();
                    *d = s.clone();
                    *d.decor_mut() = decor;
                }
            }
            (_, s) => {
                let restyled = match s {
                    Item::Table(t) => Item::Table(restyled_table(t, &child_indent)),
                    Item::ArrayOfTables(a) => {
                        let mut out = ArrayOfTables::new();
                        for t in a.iter() {
                            out.push(restyled_table(t, &child_indent));
                        }
                        Item::ArrayOfTables(out)
                    }
                    Item::Value(v) => {
                        let mut v = v.clone();
                        v.decor_mut().clear();
                        Item::Value(v)
                    }
                    Item::None => continue,
                };
                dst.insert(key, restyled);
                if restyled_is_value(dst.get(key)) {
                    indent_key(dst, key, &indent.keys);
                }
            }
        }
    }
    Ok(())
}

fn restyled_is_value(item: Option<&Item>) -> bool {
    matches!(item, Some(Item::Value(_)))
}

/// A copy of a fragment table with the destination's indentation and no fragment positions.
fn restyled_table(src: &Table, indent: &Indent) -> Table {
    let mut t = Table::new();
    t.set_implicit(src.is_implicit());
    t.decor_mut().set_prefix(indent.header.clone());
    for (key, item) in src.iter() {
        let copy = match item {
            Item::Table(sub) => Item::Table(restyled_table(sub, &indent.child())),
            Item::ArrayOfTables(a) => {
                let mut out = ArrayOfTables::new();
                for sub in a.iter() {
                    out.push(restyled_table(sub, &indent.child()));
                }
                Item::ArrayOfTables(out)
            }
            Item::Value(v) => {
                let mut v = v.clone();
                v.decor_mut().clear();
                Item::Value(v)
            }
            Item::None => continue,
        };
        let is_value = copy.is_value();
        t.insert(key, copy);
        if is_value {
            indent_key(&mut t, key, &indent.keys);
        }
    }
    t
}

/// The key that identifies an element of an array of tables (volumes, pod_spec: `name`;
/// host aliases: `ip`; services: `alias`).
fn identity(t: &Table) -> Option<(&'static str, Json)> {
    ["name", "ip", "alias"].into_iter().find_map(|k| {
        t.get(k)
            .and_then(Item::as_value)
            .map(|v| (k, value_to_json(v)))
    })
}

// ---------------------------------------------------------------------------------------------
// TOML → JSON (for schema checks and comparisons)

fn table_to_json(t: &Table) -> Json {
    Json::Object(
        t.iter()
            .map(|(k, v)| (k.to_owned(), item_to_json(v)))
            .collect(),
    )
}

fn item_to_json(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => table_to_json(t),
        Item::ArrayOfTables(a) => Json::Array(a.iter().map(table_to_json).collect()),
    }
}

fn value_to_json(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f.value()).map_or(Json::Null, Json::Number)
        }
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(a) => Json::Array(a.iter().map(value_to_json).collect()),
        Value::InlineTable(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.to_owned(), value_to_json(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Given(&'static str);

    fn given(toml: &'static str) -> Given {
        Given(toml)
    }

    impl Given {
        #[track_caller]
        fn running(&self, patch: &TomlPatch) -> String {
            let applied = apply(self.0, patch).unwrap();
            let out = applied.text.unwrap_or_else(|| self.0.to_owned());
            // Idempotence on every unit case too.
            let again = apply(&out, patch).unwrap();
            assert_eq!(again.text, None, "second run changed:\n{out}");
            out
        }
    }

    fn aliases(ip: &str, hosts: &[&str]) -> TomlPatch {
        TomlPatch {
            host_aliases: vec![(ip.into(), hosts.iter().map(|s| s.to_string()).collect())],
            ..Default::default()
        }
    }

    #[test]
    fn adds_host_alias_indented_like_neighbours() {
        let out = given("[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n")
            .running(&aliases("10.0.0.1", &["a.example.com"]));
        assert_eq!(
            out,
            "[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.1\"\n      hostnames = [\"a.example.com\"]\n"
        );
    }

    #[test]
    fn unions_hostnames_of_same_ip() {
        let out = given("[[runners]]\n[runners.kubernetes]\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.1\" # 注释\nhostnames = [\"a.example.com\"]\n")
            .running(&aliases("10.0.0.1", &["a.example.com", "b.example.com"]));
        assert!(
            out.contains("hostnames = [\"a.example.com\", \"b.example.com\"]"),
            "{out}"
        );
        assert!(out.contains("# 注释"), "{out}");
    }

    #[test]
    fn refuses_hostname_on_two_ips() {
        let err = apply("[[runners]]\n[runners.kubernetes]\nhost_aliases = [{ip = \"10.0.0.2\", hostnames = [\"a.example.com\"]}]\n", &aliases("10.0.0.1", &["a.example.com"])).unwrap_err();
        assert!(
            err.message.contains("10.0.0.2") && err.message.contains("10.0.0.1"),
            "{err:?}"
        );
    }

    #[test]
    fn keeps_strip_chomping() {
        let out = given("[[runners]]\n  [runners.kubernetes]\n    privileged = true").running(
            &TomlPatch {
                pull_policy: Some(vec!["if-not-present"]),
                ..Default::default()
            },
        );
        assert!(!out.ends_with('\n'), "{out:?}");
        assert!(out.contains("pull_policy = [\"if-not-present\"]"));
    }

    #[test]
    fn minified_runner_schema_is_current() {
        let want = minify_runner_schema(include_str!(
            "../../../schema/runner-template.toml-schema.json"
        ));
        if std::env::var_os("RUNNER_PATCH_BLESS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/schema/runner-template.defs"),
                &want,
            )
            .unwrap();
            return;
        }
        assert!(
            RUNNER_SCHEMA == want,
            "schema/runner-template.defs is stale: RUNNER_PATCH_BLESS=1 cargo test --lib"
        );
    }

    #[test]
    fn fragment_rejects_unknown_keys_with_suggestion() {
        let err = Fragment::parse("[runners]\ntls_ca_file = \"/x\"\n")
            .unwrap_err()
            .join("\n");
        assert!(err.contains("tls-ca-file"), "{err}");
        let err = Fragment::parse("[runners.kubernetes]\nprivilegd = true\n")
            .unwrap_err()
            .join("\n");
        assert!(err.contains("privileged"), "{err}");
        assert!(Fragment::parse("concurrent = 3\n").is_err());
    }

    #[test]
    fn fragment_merges_tables_and_arrays_by_name() {
        let fragment = Fragment::parse("[runners.kubernetes]\nprivileged = true\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"docker-certs\"\nmount_path = \"/certs/client\"\nmedium = \"Memory\"\n").unwrap();
        let patch = TomlPatch {
            fragment: Some(fragment),
            ..Default::default()
        };
        let out = given("[[runners]]\n  [runners.kubernetes]\n    image = \"alpine\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"docker-certs\"\n      mount_path = \"/old\"\n").running(&patch);
        assert_eq!(out.matches("docker-certs").count(), 1, "{out}");
        assert!(out.contains("mount_path = \"/certs/client\""), "{out}");
        assert!(out.contains("    privileged = true"), "{out}");
    }
}
