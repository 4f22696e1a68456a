//! What `gitlab-runner register --template-config` will do with the patched TOML, checked before
//! anything is deployed (runner-config.md §3, §6), on the runner container's environment as
//! Kubernetes builds it ([`RunnerEnv`]: `envFrom`, then `env`, ConfigMaps of the stream read):
//!
//! - an env var that `register` reads for a key the patch writes (`KUBERNETES_PULL_POLICY`,
//!   `KUBERNETES_PRIVILEGED`, `CI_SERVER_TLS_CA_FILE`, `KUBERNETES_NAMESPACE` …) beats the
//!   template unless it holds its type's zero value (`""`, `false`, `0`), which register's merge
//!   fills from the template: the run is refused, naming both values, or with
//!   `spec.envConflicts: replace` the `env` entry is removed so that the patched TOML applies. A
//!   value from an `envFrom` ConfigMap is refused in both modes: runner-patch does not edit a
//!   ConfigMap other workloads may read, and an `env` entry it added would have to spell lists
//!   the way the runner's flag parser reads them, which cannot be checked offline;
//! - the pull policies the runner ends up with (env beating template) must fit together, or
//!   every job without its own `pull_policy` fails: refused, or the env entry removed;
//! - `RUNNER_EXECUTOR` other than kubernetes is refused (register drops `[runners.kubernetes]`);
//! - what cannot be read offline (a Secret, a ConfigMap not in the stream, another `fieldRef`):
//!   a warning;
//! - sections and keys `register` throws away (`[runners.docker]` with the kubernetes executor,
//!   `url`, `token` …) in the chart's TOML: a warning each (the spec's own `runnerToml` is
//!   checked when the spec is compiled).

use serde_json::Value as Json;
use toml_edit::{Document, Item, Value};

use crate::error::{DocRef, Error};
use crate::release::env::{Lookup, Origin, RunnerEnv, Value as EnvValue, Var};
use crate::release::flags::{self, Flag, RegisterFlags};
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
/// (`envConflicts: replace`), what they do, and warnings.
#[derive(Debug, Default, PartialEq)]
pub struct EnvPlan {
    /// Env vars to drop from the runner container, in the order their conflicts were found.
    pub edits: Vec<EnvEdit>,
    /// Why each of `edits` is made, in the same order (`removed env X, which …`).
    pub reasons: Vec<String>,
    pub warnings: Vec<String>,
    /// The env gives `pull_policy` (after the edits): see [`TomlPatch::pull_policy_from_env`].
    pub pull_policy_from_env: bool,
}

/// `pull_policy` and `allowed_pull_policies` of the runner TOML as the patch leaves them (what
/// the patch writes, else what the chart's TOML has), before env vars are considered.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TomlPullPolicies {
    pub pull_policy: Option<Vec<String>>,
    pub allowed_pull_policies: Option<Vec<String>>,
}

impl TomlPullPolicies {
    /// The policies once `patch` is applied to a TOML whose first runner reads `chart_value`
    /// (`kubernetes.KEY` → its value).
    pub fn after(patch: &TomlPatch, chart_value: impl Fn(&str) -> Option<Json>) -> Self {
        let owned = |l: &Vec<&str>| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let read = |key: &str| chart_value(key).map(|v| policy_list(&v));
        TomlPullPolicies {
            pull_policy: patch
                .pull_policy
                .as_ref()
                .map(owned)
                .or_else(|| read("pull_policy")),
            allowed_pull_policies: patch
                .allowed_pull_policies
                .as_ref()
                .map(owned)
                .or_else(|| read("allowed_pull_policies")),
        }
    }
}

/// A pull policy list as the runner reads it: a string or an array of strings.
fn policy_list(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .filter_map(Json::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

const PULL_POLICY_ENV: &str = "KUBERNETES_PULL_POLICY";
const ALLOWED_PULL_POLICIES_ENV: &str = "KUBERNETES_ALLOWED_PULL_POLICIES";

/// Checks the runner container's environment (`env`, as Kubernetes builds it) for env vars that
/// `register` would prefer over the values in `writes`, and for pull policies that would not fit
/// together once register has merged env and template (`toml_policies`, runner-config.md §6).
/// With `envConflicts: replace` the offending `env` entries are dropped (recorded in `env` too);
/// a value that comes from an `envFrom` ConfigMap is refused in every mode, since runner-patch
/// does not edit a ConfigMap that other workloads may read.
pub fn check_env(
    env: &mut RunnerEnv,
    doc: &DocRef,
    writes: &[Write],
    toml_policies: &TomlPullPolicies,
    mode: EnvConflicts,
) -> Result<EnvPlan, Error> {
    let mut plan = EnvPlan::default();
    let mut conflicts: Vec<Conflict> = Vec::new();
    // Names an unreadable envFrom source may set, with those sources.
    let mut maybe: Vec<(&'static str, Vec<String>)> = Vec::new();
    for write in writes {
        let Some((binding, entry_key)) = binding_for(&write.key) else {
            continue;
        };
        let key = entry_key.unwrap_or(&write.key);
        loop {
            let var = match env.lookup(binding.env) {
                Lookup::Unset => break,
                Lookup::Maybe(sources) => {
                    note_maybe(&mut maybe, binding.env, &sources);
                    break;
                }
                Lookup::Set(var) => var.clone(),
            };
            if binding.kind == EnvKind::Map {
                plan.warnings.push(format!(
                    "{doc} {}: env var {} is merged with runners.{} by register, its entries winning over the template's; runner-patch writes runners.{} = {} and cannot tell offline whether {} sets that entry",
                    env.field(&var.origin),
                    binding.env,
                    binding.key,
                    write.key,
                    show(&write.value),
                    binding.env,
                ));
                break;
            }
            if reads_as(&var.value, binding.kind, &write.value) {
                break;
            }
            let overrides = format!(
                "{} overrides runners.{key} = {}, which runner-patch writes (register --template-config prefers env vars over the template, so the runner would use {})",
                describe_var(binding.env, &var),
                show(&write.value),
                show_value(&var.value),
            );
            match (&var.origin, mode) {
                (Origin::Env { .. }, EnvConflicts::Replace) => {
                    drop_env(
                        env,
                        &mut plan,
                        binding.env,
                        &format!("which would override runners.{key}"),
                    );
                    // What is left (an envFrom value) is checked in turn.
                    continue;
                }
                (Origin::Env { .. }, EnvConflicts::Refuse) => conflicts.push(Conflict {
                    field: env.field(&var.origin),
                    message: overrides,
                    from_env_entry: true,
                }),
                (Origin::EnvFrom { .. }, _) => conflicts.push(Conflict {
                    field: env.field(&var.origin),
                    message: format!(
                        "{overrides}; {}",
                        env_from_advice(binding.env, &var.origin, mode)
                    ),
                    from_env_entry: false,
                }),
            }
            break;
        }
    }
    let writes_pull_policies = writes.iter().any(|w| {
        ["kubernetes.pull_policy", "kubernetes.allowed_pull_policies"]
            .iter()
            .any(|k| go_case::equal_fold(&w.key, k))
    });
    if conflicts.is_empty() && writes_pull_policies {
        check_pull_policies(
            env,
            doc,
            toml_policies,
            mode,
            &mut plan,
            &mut conflicts,
            &mut maybe,
        );
    }
    if let Some(first) = conflicts.first() {
        let mut message = conflicts
            .iter()
            .map(|c| c.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if conflicts.iter().any(|c| c.from_env_entry) {
            message.push_str("; remove the env var (chart values envVars / extraEnv) or set spec.envConflicts: replace to have runner-patch remove it");
        }
        return Err(Error::Field {
            doc: Box::new(doc.clone()),
            field: first.field.clone(),
            message,
        });
    }
    if !maybe.is_empty() {
        maybe.sort_unstable();
        let mut sources: Vec<String> = maybe.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
        sources.sort_unstable();
        sources.dedup();
        let names: Vec<&str> = maybe.iter().map(|(n, _)| *n).collect();
        plan.warnings.push(format!(
            "{doc} {}.envFrom ({}) may set {}, which register would prefer over what runner-patch writes to the runner TOML; runner-patch cannot check that offline",
            env.container_path,
            sources.join(", "),
            names.join(", "),
        ));
    }
    plan.pull_policy_from_env = match env.lookup(PULL_POLICY_ENV) {
        Lookup::Set(var) => var.value != EnvValue::Literal(String::new()),
        _ => false,
    };
    Ok(plan)
}

/// The chart's `entrypoint` script exports some env vars from files of the projected `/secrets`
/// volume before it runs register (`CACHE_S3_ACCESS_KEY`, `GOOGLE_APPLICATION_CREDENTIALS`,
/// `CACHE_AZURE_ACCOUNT_KEY` …): such a var beats the template like any other env var, but
/// whether the Secret holds that file cannot be known offline, so a key the patch writes that one
/// of them sets gets a warning (like an `envFrom` Secret).
pub fn check_entrypoint_exports(script: &str, cm: &DocRef, writes: &[Write]) -> Vec<String> {
    let exported: Vec<(usize, &str)> = script
        .lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let rest = line.trim_start().strip_prefix("export ")?.trim_start();
            let name = &rest[..rest.find('=')?];
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
                .then_some((i + 1, name))
        })
        .collect();
    let mut warnings = Vec::new();
    for write in writes {
        let Some((binding, _)) = binding_for(&write.key) else {
            continue;
        };
        if let Some((line, name)) = exported.iter().find(|(_, name)| *name == binding.env) {
            warnings.push(format!(
                "{cm} data[\"{ENTRYPOINT_KEY}\"] (script line {line}): the entrypoint exports {name} (from a file of the runner's projected /secrets volume, when it is there) before register, which prefers it over the runners.{} that runner-patch writes; runner-patch cannot tell offline whether the Secret holds that file",
                write.key,
            ));
        }
    }
    warnings
}

/// The ConfigMap key of the chart's entrypoint script.
pub const ENTRYPOINT_KEY: &str = "entrypoint";

/// Checks the flags of the register command in the chart's `register-the-runner` script
/// (`flags`, of ConfigMap `cm`) against the values the patch writes (`writes`): a flag beats the
/// template like an env var, so one that says otherwise is refused, in every mode
/// (`envConflicts: replace` edits env entries, never a script). A map flag is merged with the
/// template's map, and a command runner-patch cannot read is a warning.
pub fn check_flags(
    flags: &RegisterFlags,
    cm: &DocRef,
    writes: &[Write],
    mode: EnvConflicts,
) -> Result<Vec<String>, Error> {
    let script = flags::SCRIPT_KEY;
    let flags = match flags {
        RegisterFlags::NoCommand => return Ok(Vec::new()),
        RegisterFlags::Unreadable { line, why } => {
            let mut keys: Vec<&str> = writes
                .iter()
                .filter(|w| binding_for(&w.key).is_some())
                .map(|w| w.key.as_str())
                .collect();
            keys.dedup();
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            return Ok(vec![format!(
                "{cm} data[{script:?}] (script line {line}): runner-patch cannot read the register command offline ({why}); its flags beat the template as env vars do, so check yourself that none sets {}",
                keys.iter()
                    .map(|k| format!("runners.{k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )]);
        }
        RegisterFlags::Read(flags) => flags,
    };
    let mut warnings = Vec::new();
    let mut conflicts = Vec::new();
    for write in writes {
        let mut keys: Vec<(&str, EnvKind)> = Vec::new();
        for key in flags.iter().filter_map(|f| flags::flag_key(&f.name)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        for (flag_key, kind) in keys {
            let direct = go_case::equal_fold(&write.key, flag_key);
            let entry = kind == EnvKind::Map
                && write.key.len() > flag_key.len()
                && write.key.is_char_boundary(flag_key.len())
                && go_case::equal_fold(&write.key[..flag_key.len()], flag_key)
                && write.key[flag_key.len()..].starts_with('.');
            if !direct && !entry {
                continue;
            }
            let given: Vec<&Flag> = flags
                .iter()
                .filter(|f| flags::flag_key(&f.name).is_some_and(|(k, _)| k == flag_key))
                .collect();
            let Some(last) = given.last() else { continue };
            let shown = given
                .iter()
                .map(|f| format!("--{} {:?}", f.name, f.value))
                .collect::<Vec<_>>()
                .join(" ");
            if kind == EnvKind::Map {
                warnings.push(format!(
                    "{cm} data[{script:?}] (script line {}): {shown} of the register command is merged with runners.{flag_key} by register, its entries winning over the template's; runner-patch writes runners.{} = {} and does not read the flag's entries",
                    last.line,
                    write.key,
                    show(&write.value),
                ));
                continue;
            }
            let agrees = match kind {
                EnvKind::List => {
                    let wanted: Vec<String> = write
                        .value
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                    given.iter().map(|f| f.value.clone()).collect::<Vec<_>>() == wanted
                }
                _ => reads_as(&EnvValue::Literal(last.value.clone()), kind, &write.value),
            };
            if !agrees {
                conflicts.push((
                    last.line,
                    format!(
                        "{shown} of the register command overrides runners.{} = {}, which runner-patch writes (register --template-config prefers command-line flags over the template{})",
                        write.key,
                        show(&write.value),
                        if kind == EnvKind::List {
                            ", and drops the template's list whole"
                        } else {
                            ""
                        },
                    ),
                ));
            }
        }
    }
    if let Some((line, _)) = conflicts.first() {
        let advice = match mode {
            EnvConflicts::Replace => {
                "spec.envConflicts: replace removes env entries only: runner-patch does not edit the register script; remove the flag (its chart value) or leave the key out of the spec"
            }
            EnvConflicts::Refuse => {
                "remove the flag (its chart value) or leave the key out of the spec"
            }
        };
        return Err(Error::Field {
            doc: Box::new(cm.clone()),
            field: format!("data[{script:?}]"),
            message: format!(
                "script line {line}: {}; {advice}",
                conflicts
                    .iter()
                    .map(|(_, m)| m.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    Ok(warnings)
}

/// One env var that register would prefer over what the patch means.
struct Conflict {
    field: String,
    message: String,
    /// From an `env` entry (which `envConflicts: replace` can remove), not from `envFrom`.
    from_env_entry: bool,
}

fn note_maybe(maybe: &mut Vec<(&'static str, Vec<String>)>, name: &'static str, sources: &[&str]) {
    if !maybe.iter().any(|(n, _)| *n == name) {
        maybe.push((name, sources.iter().map(|s| (*s).to_owned()).collect()));
    }
}

/// Plans the removal of `name`'s `env` entries (`envConflicts: replace`).
fn drop_env(env: &mut RunnerEnv, plan: &mut EnvPlan, name: &str, why: &str) {
    env.drop_entries(name);
    let drop = EnvEdit::Drop {
        name: name.to_owned(),
    };
    if !plan.edits.contains(&drop) {
        plan.edits.push(drop);
        plan.reasons.push(format!("removed env {name}, {why}"));
    }
}

/// What to do about a value from an `envFrom` ConfigMap.
fn env_from_advice(name: &str, origin: &Origin, mode: EnvConflicts) -> String {
    let Origin::EnvFrom { configmap, key, .. } = origin else {
        return String::new();
    };
    let why = match mode {
        EnvConflicts::Replace => {
            "spec.envConflicts: replace removes env entries only: runner-patch does not edit ConfigMap"
        }
        EnvConflicts::Refuse => "runner-patch does not edit ConfigMap",
    };
    format!(
        "{why} {configmap}, which other workloads may read; remove {key:?} from it, or give the runner container an env entry {name} (chart values envVars) that agrees, which wins over envFrom"
    )
}

/// `env var NAME = "v"`, with where it comes from when that is not an `env` entry.
fn describe_var(name: &str, var: &Var) -> String {
    match &var.origin {
        Origin::Env { .. } => match &var.via {
            Some(via) => format!("env var {name} = {} (from {via})", show_value(&var.value)),
            None => format!("env var {name} = {}", show_value(&var.value)),
        },
        Origin::EnvFrom { configmap, key, .. } => format!(
            "env var {name} = {} from ConfigMap {configmap} (key {key:?}, envFrom)",
            show_value(&var.value)
        ),
    }
}

/// The pull policies the runner ends up with once register has merged env and template must fit
/// together: every `pull_policy` among `allowed_pull_policies`, or every job without its own
/// `pull_policy` fails (runner-config.md §6). Only a mismatch an env var causes is checked here;
/// the TOML's own pair is checked when it is patched.
fn check_pull_policies(
    env: &mut RunnerEnv,
    doc: &DocRef,
    toml: &TomlPullPolicies,
    mode: EnvConflicts,
    plan: &mut EnvPlan,
    conflicts: &mut Vec<Conflict>,
    maybe: &mut Vec<(&'static str, Vec<String>)>,
) {
    loop {
        let pull = effective_policies(env, PULL_POLICY_ENV, toml.pull_policy.as_ref());
        let allowed = effective_policies(
            env,
            ALLOWED_PULL_POLICIES_ENV,
            toml.allowed_pull_policies.as_ref(),
        );
        let mut unknown = false;
        for (name, side) in [
            (PULL_POLICY_ENV, &pull),
            (ALLOWED_PULL_POLICIES_ENV, &allowed),
        ] {
            match side {
                Effective::Unknown(var) => {
                    unknown = true;
                    plan.warnings.push(format!(
                        "{doc} {}: {name} comes from {}; runner-patch cannot check offline that pull_policy is among allowed_pull_policies once register prefers it over the template (a job without its own pull_policy fails otherwise)",
                        env.field(&var.origin),
                        show_value(&var.value),
                    ));
                }
                Effective::Maybe(sources) => {
                    unknown = true;
                    note_maybe(
                        maybe,
                        name,
                        &sources.iter().map(String::as_str).collect::<Vec<_>>(),
                    );
                }
                _ => {}
            }
        }
        if unknown {
            return;
        }
        let (Some((pull_list, pull_var)), Some((allowed_list, allowed_var))) =
            (pull.known(), allowed.known())
        else {
            return;
        };
        let Some(outside) = pull_list
            .iter()
            .find(|p| !p.is_empty() && !allowed_list.contains(p))
        else {
            return;
        };
        if pull_var.is_none() && allowed_var.is_none() {
            return; // the TOML's own pair: checked by the TOML patch
        }
        let side = |name: &str, list: &[String], var: Option<&Var>, key: &str| match var {
            Some(var) => format!(
                "{} (register prefers it over runners.kubernetes.{key})",
                describe_var(name, var)
            ),
            None => format!("runners.kubernetes.{key} = {}", show_list(list)),
        };
        let message = format!(
            "pull policy {outside:?} of {} is not among the allowed pull policies of {}, so every job without its own pull_policy would fail",
            side(PULL_POLICY_ENV, pull_list, pull_var, "pull_policy"),
            side(
                ALLOWED_PULL_POLICIES_ENV,
                allowed_list,
                allowed_var,
                "allowed_pull_policies"
            ),
        );
        let env_entries: Vec<&'static str> = [
            (PULL_POLICY_ENV, pull_var),
            (ALLOWED_PULL_POLICIES_ENV, allowed_var),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some_and(|v| matches!(v.origin, Origin::Env { .. })))
        .map(|(n, _)| n)
        .collect();
        let from_env_from = [
            (PULL_POLICY_ENV, pull_var),
            (ALLOWED_PULL_POLICIES_ENV, allowed_var),
        ]
        .into_iter()
        .find_map(|(n, v)| {
            v.filter(|v| matches!(v.origin, Origin::EnvFrom { .. }))
                .map(|v| (n, v.clone()))
        });
        let field_var = pull_var
            .or(allowed_var)
            .map(|v| env.field(&v.origin))
            .unwrap_or_default();
        match (mode, from_env_from) {
            (_, Some((name, var))) => {
                conflicts.push(Conflict {
                    field: env.field(&var.origin),
                    message: format!("{message}; {}", env_from_advice(name, &var.origin, mode)),
                    from_env_entry: false,
                });
                return;
            }
            (EnvConflicts::Replace, None) => {
                for name in env_entries {
                    drop_env(
                        env,
                        plan,
                        name,
                        "whose pull policies would not fit with the ones in the runner TOML",
                    );
                }
                // The TOML's own pair, or an envFrom value left below: checked again.
            }
            (EnvConflicts::Refuse, None) => {
                conflicts.push(Conflict {
                    field: field_var,
                    message,
                    from_env_entry: true,
                });
                return;
            }
        }
    }
}

/// A pull policy list as register ends up with it.
enum Effective<'e> {
    /// From the env var (`Some`), or the TOML (`None`); `None` as a whole when neither sets it.
    Known(Option<(Vec<String>, Option<&'e Var>)>),
    Unknown(&'e Var),
    Maybe(Vec<String>),
}

impl<'e> Effective<'e> {
    fn known(&self) -> Option<(&[String], Option<&'e Var>)> {
        match self {
            Effective::Known(Some((list, var))) => Some((list.as_slice(), *var)),
            _ => None,
        }
    }
}

fn effective_policies<'e>(
    env: &'e RunnerEnv,
    name: &str,
    toml: Option<&Vec<String>>,
) -> Effective<'e> {
    let from_toml = || Effective::Known(toml.map(|l| (l.clone(), None)));
    match env.lookup(name) {
        // An empty value leaves the list empty, and the template fills it.
        Lookup::Set(var) => match &var.value {
            EnvValue::Literal(text) if text.is_empty() => from_toml(),
            EnvValue::Literal(text) => Effective::Known(Some((env_list(text), Some(var)))),
            EnvValue::Unknown(_) => Effective::Unknown(var),
        },
        Lookup::Maybe(sources) => {
            Effective::Maybe(sources.iter().map(|s| (*s).to_owned()).collect())
        }
        Lookup::Unset => from_toml(),
    }
}

/// A list env var as the runner reads it: comma-separated.
fn env_list(text: &str) -> Vec<String> {
    text.split(',').map(|s| s.trim().to_owned()).collect()
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

/// True when the runner ends up with `wanted` although the env var holds `value`: it says the
/// same, or it is a scalar's zero value (`""`, `false`, `0`, `0s`), which `register`'s merge
/// (mergo, runner-config.md §3) fills from the template, so the template wins.
fn reads_as(value: &EnvValue, kind: EnvKind, wanted: &Json) -> bool {
    let EnvValue::Literal(text) = value else {
        return false;
    };
    match kind {
        // Every scalar's and a list's zero value (an empty list, as `effective_policies` and
        // `pull_policy_from_env` read it too): the template fills it.
        EnvKind::String | EnvKind::Int | EnvKind::Bool | EnvKind::Duration | EnvKind::List
            if text.is_empty() =>
        {
            true
        }
        EnvKind::Bool => match go_bool(text) {
            Some(false) => true,
            parsed => parsed.is_some() && parsed == wanted.as_bool(),
        },
        EnvKind::Int => match text.trim().parse::<i64>() {
            Ok(0) => true,
            Ok(n) => Some(n) == wanted.as_i64(),
            Err(_) => false,
        },
        EnvKind::Duration => go_duration_is_zero(text) || wanted.as_str() == Some(text.as_str()),
        EnvKind::String => wanted.as_str() == Some(text.as_str()),
        EnvKind::List => {
            let Some(items) = wanted.as_array() else {
                return false;
            };
            let items: Vec<&str> = items.iter().filter_map(Json::as_str).collect();
            env_list(text) == items
        }
        EnvKind::Map => false,
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

/// True for a Go duration that parses as zero (`0`, `0s`, `0h0m`, `-0.0s`).
fn go_duration_is_zero(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    if t == "0" {
        return true;
    }
    let units = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"];
    let mut rest = t;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty()
            || number.chars().any(|c| c != '0' && c != '.')
            || !number.contains('0')
        {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = units.iter().find(|u| rest.starts_with(**u)) else {
            return false;
        };
        rest = &rest[unit.len()..];
        any = true;
    }
    any
}

/// An env value as messages show it: the literal quoted, else how it is given.
fn show_value(value: &EnvValue) -> String {
    match value {
        EnvValue::Literal(text) => format!("{text:?}"),
        EnvValue::Unknown(how) => format!("(from {how})"),
    }
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

fn show_list(list: &[String]) -> String {
    format!(
        "[{}]",
        list.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The namespace job pods run in, as far as it can be known offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobNamespace {
    Known(String),
    /// Nothing sets one: the runner's own namespace.
    Release,
    /// Cannot be known offline: why.
    Unknowable(String),
}

impl JobNamespace {
    pub fn known(&self) -> Option<&str> {
        match self {
            JobNamespace::Known(ns) => Some(ns),
            _ => None,
        }
    }
}

/// The namespace job pods will run in: none with `namespace_per_job` (each job gets its own);
/// else the patch's own `namespace` when the fragment sets one (an env var that disagrees is
/// refused or removed, see [`check_env`]); else — when the TOML goes through `register`, whose
/// runner container's environment is `register_env` — `KUBERNETES_NAMESPACE` there (it beats the
/// template); else the chart TOML's `namespace` (`toml_value` reads the chart TOML's first
/// `[runners.kubernetes]`).
pub fn job_namespace(
    register_env: Option<&RunnerEnv>,
    fragment: Option<&crate::spec::fragment::Fragment>,
    toml_value: impl Fn(&str) -> Option<Json>,
) -> JobNamespace {
    let fragment_value = |key: &str| {
        fragment.and_then(|f| {
            f.values()
                .iter()
                .find(|(k, _)| go_case::equal_fold(k, &format!("kubernetes.{key}")))
                .map(|(_, v)| v.clone())
        })
    };
    // mergo: a `true` from either env or template wins (`false` is the zero value).
    let per_job_toml =
        fragment_value("namespace_per_job").or_else(|| toml_value("namespace_per_job"));
    let per_job_env = register_env.is_some_and(|env| {
        matches!(env.lookup("KUBERNETES_NAMESPACE_PER_JOB"), Lookup::Set(Var { value: EnvValue::Literal(text), .. }) if go_bool(text) == Some(true))
    });
    if per_job_env {
        return JobNamespace::Unknowable(
            "KUBERNETES_NAMESPACE_PER_JOB is true: each job runs in a namespace of its own".into(),
        );
    }
    if per_job_toml == Some(Json::Bool(true)) {
        return JobNamespace::Unknowable(
            "namespace_per_job = true: each job runs in a namespace of its own".into(),
        );
    }
    if let Some(ns) = fragment_value("namespace").and_then(|v| v.as_str().map(str::to_owned)) {
        return JobNamespace::Known(ns);
    }
    let toml_namespace =
        || match toml_value("namespace").and_then(|v| v.as_str().map(str::to_owned)) {
            Some(ns) if !ns.is_empty() => JobNamespace::Known(ns),
            _ => JobNamespace::Release,
        };
    let Some(env) = register_env else {
        return toml_namespace();
    };
    match env.lookup("KUBERNETES_NAMESPACE") {
        Lookup::Set(Var {
            value: EnvValue::Literal(ns),
            ..
        }) if !ns.is_empty() => JobNamespace::Known(ns.clone()),
        Lookup::Set(Var {
            value: EnvValue::Unknown(how),
            ..
        }) => JobNamespace::Unknowable(format!("KUBERNETES_NAMESPACE comes from {how}")),
        Lookup::Maybe(sources) => JobNamespace::Unknowable(format!(
            "envFrom ({}) may set KUBERNETES_NAMESPACE",
            sources.join(", ")
        )),
        _ => toml_namespace(),
    }
}

/// The template's `executor` (first `[[runners]]`), where it is: `register` uses it when
/// `RUNNER_EXECUTOR` is unset or empty (mergo fills a zero value from the template).
#[derive(Debug, Clone)]
pub struct TemplateExecutor {
    pub name: String,
    /// The runner ConfigMap and its data key.
    pub configmap: DocRef,
    pub key: String,
    pub position: Option<crate::error::TomlPosition>,
}

/// The executor `register` ends up with, and whether `RUNNER_EXECUTOR` gave it (then the
/// template's `executor` is ignored) or the template did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executor {
    pub name: String,
    pub from_env: bool,
}

/// The executor `register` uses for the runner container: a non-empty `RUNNER_EXECUTOR`, else
/// (unset or `""`, the zero value mergo fills) the template's `executor`; `None` when it cannot
/// be read offline or nothing sets it.
pub fn executor(env: &RunnerEnv, template: Option<&str>) -> Option<Executor> {
    let from_template = || {
        template.filter(|t| !t.is_empty()).map(|t| Executor {
            name: t.to_owned(),
            from_env: false,
        })
    };
    match env.lookup(EXECUTOR_ENV) {
        Lookup::Set(Var {
            value: EnvValue::Literal(executor),
            ..
        }) if !executor.is_empty() => Some(Executor {
            name: executor.clone(),
            from_env: true,
        }),
        Lookup::Set(Var {
            value: EnvValue::Literal(_),
            ..
        })
        | Lookup::Unset => from_template(),
        _ => None,
    }
}

/// With an executor other than kubernetes, `register` keeps no `[runners.kubernetes]`: the host
/// aliases, volumes and pull policies runner-patch writes there would never reach the runner, so
/// such a release is refused rather than patched for nothing. The executor is `RUNNER_EXECUTOR`
/// unless that is unset or empty, then the template's (see [`executor`]). One that cannot be
/// read offline (a Secret, a ConfigMap not in the stream) is a warning.
pub fn check_executor(
    env: &RunnerEnv,
    doc: &DocRef,
    patch: &TomlPatch,
    template: Option<&TemplateExecutor>,
) -> Result<Option<String>, Error> {
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
        return Ok(None);
    }
    let consequence = format!(
        "register keeps [runners.kubernetes] only for the {} executor, so what runner-patch writes there (host aliases, volumes, pull policies) would never reach the runner",
        runner::KUBERNETES_EXECUTOR
    );
    match env.lookup(EXECUTOR_ENV) {
        Lookup::Set(Var {
            value: EnvValue::Literal(executor),
            origin,
            via,
        }) if !executor.is_empty() => {
            if executor == runner::KUBERNETES_EXECUTOR {
                return Ok(None);
            }
            let (field, from) = match (origin, via) {
                // A literal: the field that users know, the env list.
                (Origin::Env { .. }, None) => {
                    (format!("{}.env", env.container_path), String::new())
                }
                (Origin::Env { .. }, Some(via)) => (env.field(origin), format!(" (from {via})")),
                (Origin::EnvFrom { configmap, key, .. }, _) => (
                    env.field(origin),
                    format!(" (from ConfigMap {configmap}, key {key:?}, envFrom)"),
                ),
            };
            Err(Error::Field {
                doc: Box::new(doc.clone()),
                field,
                message: format!("RUNNER_EXECUTOR is {executor:?}{from}: {consequence}"),
            })
        }
        Lookup::Set(
            var @ Var {
                value: EnvValue::Unknown(how),
                ..
            },
        ) => Ok(Some(format!(
            "{doc} {}: RUNNER_EXECUTOR comes from {how}, which runner-patch cannot read offline; unless it is {}, {consequence}",
            env.field(&var.origin),
            runner::KUBERNETES_EXECUTOR,
        ))),
        Lookup::Maybe(sources) => Ok(Some(format!(
            "{doc} {}.envFrom ({}) may set RUNNER_EXECUTOR, which runner-patch cannot check offline; unless it is {}, {consequence}",
            env.container_path,
            sources.join(", "),
            runner::KUBERNETES_EXECUTOR,
        ))),
        // Unset or empty: mergo fills the executor from the template.
        _ => match template {
            Some(t) if !t.name.is_empty() && t.name != runner::KUBERNETES_EXECUTOR => {
                let unset = match env.lookup(EXECUTOR_ENV) {
                    Lookup::Set(var) => format!("is empty ({})", env.field(&var.origin)),
                    _ => format!("is not set on {}", env.container_path),
                };
                Err(Error::Toml {
                    doc: Box::new(t.configmap.clone()),
                    key: t.key.clone(),
                    toml_path: Some("runners[0].executor".into()),
                    position: t.position.clone(),
                    message: format!(
                        "executor is {:?} and RUNNER_EXECUTOR of {doc} {unset}, so register takes the template's executor: {consequence}",
                        t.name
                    ),
                })
            }
            _ => Ok(None),
        },
    }
}

const EXECUTOR_ENV: &str = "RUNNER_EXECUTOR";

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

/// Warnings for what `register` with `executor` discards from the chart's template TOML (its
/// `executor` only when `RUNNER_EXECUTOR` gave the executor: otherwise it is the one used).
pub fn template_warnings(doc: &Document<&str>, executor: Option<&Executor>) -> Vec<TomlNote> {
    let Some(executor) = executor.filter(|e| e.name == runner::KUBERNETES_EXECUTOR) else {
        return Vec::new();
    };
    let Some(Item::ArrayOfTables(runners)) = doc.get("runners") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, t) in runners.iter().enumerate() {
        for (key, message) in runner::discarded(t) {
            if !executor.from_env && go_case::equal_fold(&key, "executor") {
                continue;
            }
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
    use crate::release::configmaps::StreamConfigMaps;
    use crate::spec::fragment::Fragment;
    use serde_json::json;
    use std::collections::BTreeMap;

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

    /// `check_env` on container 0 of `d`, with a stream that holds no other ConfigMap and a TOML
    /// whose pull policies are the ones written.
    fn check(d: &Json, writes: &[Write], mode: EnvConflicts) -> Result<EnvPlan, Error> {
        let written = |key: &str| {
            writes
                .iter()
                .find(|w| w.key == key)
                .map(|w| policy_list(&w.value))
        };
        let toml = TomlPullPolicies {
            pull_policy: written("kubernetes.pull_policy"),
            allowed_pull_policies: written("kubernetes.allowed_pull_policies"),
        };
        check_env(&mut runner_env(d), &doc(), writes, &toml, mode)
    }

    fn runner_env(d: &Json) -> RunnerEnv {
        let (parsed, others) = (BTreeMap::new(), BTreeMap::new());
        let configmaps = StreamConfigMaps {
            parsed: &parsed,
            others: &others,
        };
        RunnerEnv::read(d, &doc(), 0, &configmaps).unwrap()
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
        let err = check(
            &d,
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
        assert_eq!(check(&d, &w, EnvConflicts::Refuse).unwrap().edits, []);
        let d = deployment(json!([
            {"name": "KUBERNETES_PULL_POLICY", "value": "never"},
            {"name": "KUBERNETES_ALLOWED_PULL_POLICIES", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ]));
        let plan = check(&d, &w, EnvConflicts::Replace).unwrap();
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
        let plan = check(&d, &w, EnvConflicts::Replace).unwrap();
        // The typed list is what the Deployment editor consumes.
        let patch = crate::release::pod::PodPatch {
            env: plan.edits,
            ..Default::default()
        };
        assert!(crate::release::pod::apply(&mut d, 0, &patch).unwrap());
        assert_eq!(
            check(&d, &w, EnvConflicts::Refuse).unwrap().edits,
            [],
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
        let err = check(&d, &writes(&patch), EnvConflicts::Refuse).unwrap_err();
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
        let plan = check(&d, &writes(&patch), EnvConflicts::Refuse).unwrap();
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
    fn zero_values_in_env_leave_the_template_value() {
        // register merges with mergo: a scalar env value that is its type's zero value is filled
        // from the template, so the patch wins; a non-zero one beats the template.
        let fragment =
            Fragment::parse("[runners.kubernetes]\nprivileged = true\npoll_timeout = 300\n")
                .unwrap();
        let patch = TomlPatch {
            fragment: Some(fragment),
            ..TomlPatch::default()
        };
        let w = writes(&patch);
        // An empty list env var is an empty list: the written pull policies apply.
        let pull = writes(&pull(&["if-not-present"]));
        for mode in [EnvConflicts::Refuse, EnvConflicts::Replace] {
            let d = deployment(json!([{"name": "KUBERNETES_PULL_POLICY", "value": ""}]));
            let plan = check(&d, &pull, mode).unwrap();
            assert_eq!(plan.edits, [], "{mode:?}");
            assert!(!plan.pull_policy_from_env);
        }
        for zero in ["false", "0", "f", "FALSE", ""] {
            let d = deployment(json!([{"name": "KUBERNETES_PRIVILEGED", "value": zero}]));
            assert!(check(&d, &w, EnvConflicts::Refuse).is_ok(), "{zero:?}");
        }
        let d = deployment(json!([{"name": "KUBERNETES_POLL_TIMEOUT", "value": "0"}]));
        assert!(check(&d, &w, EnvConflicts::Refuse).is_ok());
        let d = deployment(json!([{"name": "KUBERNETES_POLL_TIMEOUT", "value": "60"}]));
        assert!(check(&d, &w, EnvConflicts::Refuse).is_err());
        // `true` over a written `false`: the env wins, refused.
        let off = TomlPatch {
            fragment: Some(Fragment::parse("[runners.kubernetes]\nprivileged = false\n").unwrap()),
            ..TomlPatch::default()
        };
        let d = deployment(json!([{"name": "KUBERNETES_PRIVILEGED", "value": "true"}]));
        let err = check(&d, &writes(&off), EnvConflicts::Refuse).unwrap_err();
        assert!(
            err.to_string()
                .contains("KUBERNETES_PRIVILEGED = \"true\" overrides"),
            "{err}"
        );
        assert!(
            go_duration_is_zero("0s")
                && go_duration_is_zero("0h0m0.0s")
                && go_duration_is_zero("0")
        );
        assert!(
            !go_duration_is_zero("1s") && !go_duration_is_zero("s") && !go_duration_is_zero("0x")
        );
    }

    #[test]
    fn env_from_a_stream_configmap_is_read_with_its_prefix_and_env_wins_over_it() {
        let text = "kind: ConfigMap\nmetadata:\n  name: runner-env\ndata:\n  PULL_POLICY: never\n";
        let split = crate::manifest::stream::split(text);
        let others: BTreeMap<usize, crate::manifest::stream::Doc<'_>> =
            split.docs.iter().copied().enumerate().collect();
        let parsed = BTreeMap::new();
        let cms = StreamConfigMaps {
            parsed: &parsed,
            others: &others,
        };
        let mut d = deployment(json!([{"name": "KUBERNETES_PULL_POLICY", "value": "always"}]));
        d["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
            json!([{"configMapRef": {"name": "runner-env"}, "prefix": "KUBERNETES_"}]);
        let w = writes(&pull(&["if-not-present"]));
        let toml = TomlPullPolicies {
            pull_policy: Some(vec!["if-not-present".into()]),
            allowed_pull_policies: Some(vec!["if-not-present".into()]),
        };
        let mut env = RunnerEnv::read(&d, &doc(), 0, &cms).unwrap();
        // The explicit entry wins over envFrom.
        let err = check_env(&mut env.clone(), &doc(), &w, &toml, EnvConflicts::Refuse).unwrap_err();
        assert!(
            err.to_string()
                .contains("KUBERNETES_PULL_POLICY = \"always\" overrides"),
            "{err}"
        );
        // Removing it would let the ConfigMap's value through: refused, naming the ConfigMap.
        let err = check_env(&mut env, &doc(), &w, &toml, EnvConflicts::Replace).unwrap_err();
        let Error::Field { field, message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(field, "spec.template.spec.containers[0].envFrom[0]");
        assert!(
            message.contains("KUBERNETES_PULL_POLICY = \"never\" from ConfigMap runner-env (key \"PULL_POLICY\", envFrom)")
                && message.contains("does not edit ConfigMap runner-env"),
            "{message}"
        );
        // A prefix limits what an unreadable source can set.
        let mut s = deployment(json!([]));
        s["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
            json!([{"secretRef": {"name": "s"}, "prefix": "CACHE_"}]);
        let plan = check(&s, &w, EnvConflicts::Refuse).unwrap();
        assert!(plan.warnings.is_empty(), "{:#?}", plan.warnings);
    }

    #[test]
    fn job_namespace_is_what_register_will_use() {
        let with_env = runner_env(&deployment(
            json!([{"name": "KUBERNETES_NAMESPACE", "value": "from-env"}]),
        ));
        let without = runner_env(&deployment(json!([])));
        let toml = |key: &str| (key == "namespace").then(|| json!("from-toml"));
        let known = |ns: &str| JobNamespace::Known(ns.into());
        assert_eq!(
            job_namespace(Some(&with_env), None, toml),
            known("from-env")
        );
        assert_eq!(
            job_namespace(Some(&without), None, toml),
            known("from-toml")
        );
        assert_eq!(
            job_namespace(Some(&without), None, |_| None),
            JobNamespace::Release
        );
        // `runners.configOverride`: no register step, the env var changes nothing.
        assert_eq!(job_namespace(None, None, toml), known("from-toml"));
        let fragment = Fragment::parse(
            "[runners.kubernetes]
namespace = \"from-spec\"\n",
        )
        .unwrap();
        assert_eq!(
            job_namespace(Some(&with_env), Some(&fragment), toml),
            known("from-spec")
        );
    }

    #[test]
    fn job_namespace_that_cannot_be_known_offline_says_why() {
        let why = |ns: JobNamespace| match ns {
            JobNamespace::Unknowable(why) => why,
            other => panic!("{other:?}"),
        };
        let env = |e: Json| runner_env(&deployment(e));
        let per_job = |key: &str| (key == "namespace_per_job").then_some(Json::Bool(true));
        assert!(
            why(job_namespace(Some(&env(json!([]))), None, per_job))
                .contains("namespace_per_job = true")
        );
        // mergo: an env `false` is the zero value, the template's `true` stays.
        let off = env(json!([{"name": "KUBERNETES_NAMESPACE_PER_JOB", "value": "false"}]));
        assert!(why(job_namespace(Some(&off), None, per_job)).contains("namespace_per_job"));
        let on = env(json!([{"name": "KUBERNETES_NAMESPACE_PER_JOB", "value": "true"}]));
        assert!(
            why(job_namespace(Some(&on), None, |_| None)).contains("KUBERNETES_NAMESPACE_PER_JOB")
        );
        let secret = env(
            json!([{"name": "KUBERNETES_NAMESPACE", "valueFrom": {"secretKeyRef": {"name": "s", "key": "ns"}}}]),
        );
        assert_eq!(
            why(job_namespace(Some(&secret), None, |_| None)),
            "KUBERNETES_NAMESPACE comes from secretKeyRef s/ns"
        );
        let mut from = deployment(json!([]));
        from["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
            json!([{"secretRef": {"name": "runner-env"}}]);
        assert_eq!(
            why(job_namespace(Some(&runner_env(&from)), None, |_| None)),
            "envFrom (secretRef runner-env) may set KUBERNETES_NAMESPACE"
        );
        // The pod's own namespace, from the downward API, is known.
        let mut field = deployment(
            json!([{"name": "KUBERNETES_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]),
        );
        field["metadata"] = json!({"namespace": "runners"});
        let d = DocRef {
            namespace: Some("runners".into()),
            ..doc()
        };
        let (parsed, others) = (BTreeMap::new(), BTreeMap::new());
        let cms = StreamConfigMaps {
            parsed: &parsed,
            others: &others,
        };
        let field = RunnerEnv::read(&field, &d, 0, &cms).unwrap();
        assert_eq!(
            job_namespace(Some(&field), None, |_| None),
            JobNamespace::Known("runners".into())
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
        let kubernetes = |from_env| Executor {
            name: "kubernetes".into(),
            from_env,
        };
        let found = template_warnings(&doc, Some(&kubernetes(true)));
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[0].line, Some(2));
        assert!(
            found[1]
                .to_string()
                .starts_with("runners[0].docker: register discards"),
            "{found:#?}"
        );
        assert_eq!(found[1].line, Some(3));
        let docker = Executor {
            name: "docker".into(),
            from_env: true,
        };
        assert!(template_warnings(&doc, Some(&docker)).is_empty());
        // From the template, the template's own `executor` is the one used: no warning for it.
        let doc = Document::parse("[[runners]]\n  executor = \"kubernetes\"\n  [runners.docker]\n")
            .unwrap();
        assert_eq!(template_warnings(&doc, Some(&kubernetes(true))).len(), 2);
        let found = template_warnings(&doc, Some(&kubernetes(false)));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert!(found[0].path.ends_with("docker"), "{found:#?}");
    }
}
