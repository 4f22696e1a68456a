//! The `RunnerPatch` spec: what users declare, typed with kube-derive so that its CRD and JSON
//! schema can be printed for editors and kustomize, strictly checked, and merged with CLI flags.
//!
//! A spec goes through two steps. [`load`] (or [`from_value`]) reads it into a [`Draft`]: the
//! file is read into a JSON value and walked against the generated JSON schema (unknown fields,
//! types). Command-line flags are then merged into the draft, certificate files read, and
//! [`Draft::compile`] checks the rules Kubernetes and the runner would only enforce at job time
//! (IPs, hostnames, volume names, pull policies, the `runnerToml` keys) and returns the
//! [`CompiledPatch`] the pipeline consumes. Every problem is reported at once, with its line and
//! column in the spec file.

pub mod certificate;
pub mod compile;
pub mod files;
pub mod fragment;
pub mod go_case;
pub mod runner;
pub mod schema;
pub mod validate;

pub use compile::{CompiledPatch, PullPolicy};

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, SpecProblem};
use crate::manifest::{positions, yaml};

/// API group/version of the spec; also the `apiVersion` of a kustomize `functionConfig`.
pub const API_VERSION: &str = "runner-patch.dev/v1alpha1";
/// Kind of the spec object.
pub const KIND: &str = "RunnerPatch";

/// Declares what to add to every selected gitlab-runner release in a rendered stream.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "runner-patch.dev",
    version = "v1alpha1",
    kind = "RunnerPatch",
    namespaced,
    doc = "Patches gitlab-runner releases in rendered manifests (job-pod TOML and manager Deployment)."
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunnerPatchSpec {
    /// Which releases to patch; default: every gitlab-runner release in the stream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<Selector>,
    /// When true, a stream without any gitlab-runner release passes through unchanged.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_missing: bool,
    /// `/etc/hosts` entries for job pods (TOML `host_aliases`) and the manager pod (`hostAliases`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_aliases: Vec<HostAlias>,
    /// Job image pull policy: `always`, `if-not-present`, `never` (Kubernetes spellings accepted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<OneOrMany>,
    /// Pull policies a job may ask for; the configured `pullPolicy` must be among them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_pull_policies: Option<Vec<String>>,
    /// ConfigMap volumes for job pods (`[[runners.kubernetes.volumes.config_map]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_volumes: Vec<ConfigMapVolume>,
    /// A TOML fragment merged into every `[[runners]]` entry (tables merged, arrays of tables merged
    /// by identity, other values replaced). Keys must be known to the runner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_toml: Option<String>,
    /// Extra volumes and mounts for the runner manager pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<Manager>,
    /// Certificates to trust: the GitLab host (manager pod and jobs), registries (docker-in-docker
    /// in jobs), CA bundles for jobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<Certificate>,
    /// Treat warnings (certificate expiry or SAN mismatch, pull-policy traps) as errors.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warnings_as_errors: bool,
    /// What to do when an env var on the runner container (`KUBERNETES_PULL_POLICY`,
    /// `KUBERNETES_PRIVILEGED`, `CI_SERVER_TLS_CA_FILE`, `KUBERNETES_NAMESPACE` …) would override
    /// a value runner-patch writes to the runner TOML (`register --template-config` prefers env
    /// values): `refuse` (default: fail, naming both values) or `replace` (remove the env var from
    /// the Deployment so that the patched TOML applies).
    #[serde(default, skip_serializing_if = "EnvConflicts::is_refuse")]
    pub env_conflicts: EnvConflicts,
}

/// What to do about an env var that overrides a value runner-patch writes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum EnvConflicts {
    /// Fail (exit 3), naming the env var, the TOML key and both values.
    #[default]
    Refuse,
    /// Remove the env var from the runner container so that the patched TOML applies.
    Replace,
}

impl EnvConflicts {
    fn is_refuse(&self) -> bool {
        *self == EnvConflicts::Refuse
    }
}

/// One certificate (or CA bundle) and what it is for. Exactly one of `file`, `pem`, `configMap`,
/// `secret` gives the PEM.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// The host the certificate is for (`registry.example.com[:port]` for registries); for a CA
    /// bundle, a name used to name its ConfigMap.
    pub host: String,
    /// `gitlab`, `registry` or `ca`.
    #[serde(rename = "for")]
    pub purpose: CertPurpose,
    /// PEM file, relative to the spec file and inside its directory (or the operator's
    /// `--file-root`); only the certificates in it are used, re-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Inline PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pem: Option<String>,
    /// A ConfigMap the user manages (in the namespace where it is mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<KeyRef>,
    /// A Secret the user manages (in the namespace where it is mounted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<KeyRef>,
    /// Where job containers see the file (required for `ca`; registries default to
    /// `/etc/docker/certs.d/<host>/ca.crt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mount_path: Option<String>,
    /// The certificates of `file` or `pem`, re-encoded from their DER (filled in by
    /// [`resolve_certificate_files`]): the only PEM that reaches the output.
    #[serde(skip)]
    #[schemars(skip)]
    pub resolved_pem: Option<String>,
}

impl Certificate {
    /// The PEM text runner-patch holds for this certificate: the re-encoded certificates once
    /// resolved, else the inline text.
    pub fn pem_text(&self) -> Option<&str> {
        self.resolved_pem.as_deref().or(self.pem.as_deref())
    }

    /// The host without a port.
    pub fn hostname(&self) -> &str {
        self.host.rsplit_once(':').map_or(&self.host, |(h, _)| h)
    }
}

/// What a certificate is for.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum CertPurpose {
    /// The GitLab server: trusted by the runner manager (certs directory) and passed to jobs.
    #[default]
    Gitlab,
    /// A container registry used from job pods (docker-in-docker `certs.d`).
    Registry,
    /// An extra CA bundle for job pods at `mountPath`.
    Ca,
}

impl CertPurpose {
    /// The spelling used in the spec and in generated names.
    pub fn as_str(self) -> &'static str {
        match self {
            CertPurpose::Gitlab => "gitlab",
            CertPurpose::Registry => "registry",
            CertPurpose::Ca => "ca",
        }
    }
}

/// A key of a ConfigMap or Secret the user manages.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyRef {
    pub name: String,
    pub key: String,
}

/// Reads every `certificates[].file` through `files` (confined to the file root, see
/// [`files::FileRoot`]) and re-encodes the certificates of every `file` and inline `pem` from their
/// DER ([`certificate::normalize`]): whatever else the text holds (comments, other blocks, lines
/// such as `PASSWORD=…` around a certificate) never reaches the output, and no message quotes it.
pub fn resolve_certificate_files(
    spec: &mut RunnerPatchSpec,
    files: &files::FileRoot,
    origin: &str,
) -> Result<(), Error> {
    let mut problems = Vec::new();
    // A file is read once however often it is named, but every reference writes its
    // certificates out again (a ConfigMap per host): the cap is on what the references produce,
    // so that a 1 MiB bundle named by a hundred hosts cannot make a hundred copies.
    let mut produced: u64 = 0;
    for (i, cert) in spec.certificates.iter_mut().enumerate() {
        let (field, text) = match (&cert.file, &cert.pem) {
            (Some(file), _) => ("file", files.read(file)),
            (None, Some(pem)) => ("pem", Ok(pem.clone().into_bytes())),
            (None, None) => continue,
        };
        let normalized = text.and_then(|bytes| certificate::normalize(&bytes));
        let problem = |message| SpecProblem {
            path: format!("spec.certificates[{i}].{field}"),
            position: None,
            message,
        };
        match normalized {
            Ok(pem) => {
                produced += pem.len() as u64;
                if produced > files::MAX_TOTAL_BYTES {
                    problems.push(problem(format!(
                        "the certificates of all references together come to more than the {} MiB allowed (a file named for several hosts counts once per host)",
                        files::MAX_TOTAL_BYTES >> 20
                    )));
                    break;
                }
                cert.resolved_pem = Some(pem);
            }
            Err(message) => problems.push(problem(message)),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::Spec {
            origin: origin.to_owned(),
            problems,
        })
    }
}

/// `error` with the line and column of each problem's field in the spec `text`.
pub fn with_positions(error: Error, text: &str) -> Error {
    match error {
        Error::Spec { origin, problems } => {
            let positions = positions::collect(text);
            Error::Spec {
                origin,
                problems: problems
                    .into_iter()
                    .map(|p| SpecProblem {
                        position: p.position.or_else(|| positions.find(&p.path)),
                        ..p
                    })
                    .collect(),
            }
        }
        other => other,
    }
}

/// Checks the PEM of every certificate at time `now`: errors (private keys, garbage, expired) and
/// warnings (expiring within 30 days, SANs not covering the host).
pub fn check_certificates(spec: &RunnerPatchSpec, now: i64) -> (Vec<SpecProblem>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (i, cert) in spec.certificates.iter().enumerate() {
        let path = format!("spec.certificates[{i}]");
        let Some(pem) = cert.pem_text() else { continue };
        match certificate::inspect(pem) {
            Err(message) => errors.push(SpecProblem {
                path,
                position: None,
                message,
            }),
            Ok(infos) => {
                let (errs, warns) = certificate::assess(
                    &infos,
                    cert.hostname(),
                    cert.purpose != CertPurpose::Ca,
                    now,
                );
                errors.extend(errs.into_iter().map(|message| SpecProblem {
                    path: path.clone(),
                    position: None,
                    message,
                }));
                warnings.extend(
                    warns
                        .into_iter()
                        .map(|w| format!("{path} ({}): {w}", cert.host)),
                );
            }
        }
    }
    (errors, warnings)
}

/// Selects releases; every given field must match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// Helm release name (the `release` label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Deployment name (the chart's fullname).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace of the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One IP address and the hostnames that resolve to it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HostAlias {
    /// IPv4 or IPv6 address.
    pub ip: String,
    /// Lower-case DNS-1123 subdomains.
    pub hostnames: Vec<String>,
    /// Where the alias goes: `jobs` (TOML), `manager` (Deployment); default both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apply_to: Option<Vec<ApplyTo>>,
}

impl HostAlias {
    /// True when the alias is meant for `target`.
    pub fn applies_to(&self, target: ApplyTo) -> bool {
        self.apply_to.as_ref().is_none_or(|t| t.contains(&target))
    }
}

/// A pod a host alias is written to.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum ApplyTo {
    /// Job pods, through `[[runners.kubernetes.host_aliases]]`.
    Jobs,
    /// The runner manager pod, through the Deployment's `hostAliases`.
    Manager,
}

/// A string or a list of strings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The values as a list.
    pub fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A ConfigMap mounted into every job-pod container.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigMapVolume {
    /// Volume name, which the runner also uses as the ConfigMap name (DNS label, ≤ 63 characters).
    pub name: String,
    /// Absolute path in the job containers.
    pub mount_path: String,
    /// Path inside the volume to mount instead of its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// ConfigMap key → relative file path; only listed keys are projected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<BTreeMap<String, String>>,
}

/// Additions to the runner manager pod, in Kubernetes field names and types.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manager {
    /// core/v1 Volume objects appended to the pod's volumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// core/v1 VolumeMount objects appended to the runner container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

/// The JSON schema of a whole `RunnerPatch` document (for editors and validation).
pub fn json_schema() -> Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(RunnerPatchDocument))
        .expect("schema serializes");
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), Value::String(KIND.into()));
    }
    schema
}

/// The schema used for validation: [`json_schema`] without the Kubernetes type definitions
/// (`spec.manager` items are checked against k8s-openapi's types directly, see
/// [`manager_problems`]). It is generated into `schema/runner-patch.validation.defs` (no
/// descriptions, one line per definition and per property, see [`schema::LazyDefs`]) and
/// embedded, because generating it with schemars on every run, or parsing the 100 KB full schema,
/// costs more than patching a whole umbrella stream. A unit test keeps the file current.
const VALIDATION_SCHEMA: &str = include_str!("../../schema/runner-patch.validation.defs");

fn validation_schema() -> &'static schema::LazyDefs {
    static SCHEMA: std::sync::OnceLock<schema::LazyDefs> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| schema::LazyDefs::new(VALIDATION_SCHEMA))
}

/// Derives the validation schema from the full one: Kubernetes definitions dropped, manager
/// items accepted as any mapping.
pub fn validation_schema_from(full: &Value) -> Value {
    let mut slim = full.clone();
    if let Some(defs) = slim.get_mut("$defs").and_then(Value::as_object_mut) {
        defs.retain(|name, _| !name.starts_with("io.k8s."));
        if let Some(props) = defs
            .get_mut("Manager")
            .and_then(|m| m.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            for list in props.values_mut() {
                list["items"] = serde_json::json!({ "type": "object" });
            }
        }
    }
    slim
}

/// Problems of `spec.manager`: each volume and mount must read into its k8s-openapi type without
/// losing a field (an unknown field would be dropped silently by Kubernetes clients).
fn manager_problems(value: &Value) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    let Some(manager) = value.pointer("/spec/manager") else {
        return out;
    };
    check_k8s_list::<Volume>(manager.get("volumes"), "spec.manager.volumes", &mut out);
    check_k8s_list::<VolumeMount>(
        manager.get("volumeMounts"),
        "spec.manager.volumeMounts",
        &mut out,
    );
    out
}

fn check_k8s_list<T: serde::de::DeserializeOwned + Serialize>(
    list: Option<&Value>,
    path: &str,
    out: &mut Vec<SpecProblem>,
) {
    let Some(items) = list.and_then(Value::as_array) else {
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let here = format!("{path}[{i}]");
        match serde_json::from_value::<T>(item.clone()) {
            Err(e) => out.push(SpecProblem {
                path: here,
                position: None,
                message: e.to_string(),
            }),
            Ok(typed) => {
                let back = serde_json::to_value(typed).unwrap_or(Value::Null);
                dropped_fields(item, &back, &here, out);
            }
        }
    }
}

/// Reports keys of `original` that did not survive the typed round trip (`back`).
fn dropped_fields(original: &Value, back: &Value, path: &str, out: &mut Vec<SpecProblem>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, v) in a {
                let here = format!("{path}.{key}");
                match b.get(key) {
                    None if !v.is_null() => {
                        let known = schema::closest(key, b.keys().map(String::as_str));
                        let hint = known
                            .map(|k| format!(", did you mean `{k}`?"))
                            .unwrap_or_default();
                        out.push(SpecProblem {
                            path: here,
                            position: None,
                            message: format!("unknown field `{key}`{hint}"),
                        });
                    }
                    Some(w) => dropped_fields(v, w, &here, out),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                dropped_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The top-level shape accepted in a spec file. `argsOneLiner`/`argsFromFile` belong to
/// kustomize's legacy exec plugin config and are ignored here.
#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RunnerPatchDocument {
    /// Must be `runner-patch.dev/v1alpha1`.
    api_version: String,
    /// Must be `RunnerPatch`.
    kind: String,
    #[serde(default)]
    metadata: Option<Value>,
    spec: RunnerPatchSpec,
    #[serde(default)]
    args_one_liner: Option<String>,
    #[serde(default)]
    args_from_file: Option<String>,
}

/// A spec read and shape-checked (schema: unknown fields, types), to be completed (flags,
/// certificate files) and then compiled. It keeps the file's text so that problems found when
/// compiling still point at their line.
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub spec: RunnerPatchSpec,
    /// Names the spec in messages (the file, `functionConfig`, `(command line)`).
    pub origin: String,
    text: Option<String>,
}

impl Draft {
    /// A draft that did not come from a file (flags only, tests).
    pub fn new(spec: RunnerPatchSpec, origin: &str) -> Draft {
        Draft {
            spec,
            origin: origin.to_owned(),
            text: None,
        }
    }

    /// Checks every rule and compiles the spec; problems are listed in file order.
    pub fn compile(self) -> Result<CompiledPatch, Error> {
        let Draft { spec, origin, text } = self;
        compile::compile(spec, "spec").map_err(|problems| {
            let positions = text.as_deref().map(positions::collect);
            spec_error(&origin, problems, &|p| {
                positions.as_ref().and_then(|all| all.find(p))
            })
        })
    }
}

/// Reads a spec file's text and checks its shape; `origin` names the file in messages.
pub fn load(text: &str, origin: &str) -> Result<Draft, Error> {
    let value: Value = yaml::parse_as(text).map_err(|e| {
        let (mut message, position) = yaml::describe_error(&e);
        // The problem shows its position up front: do not say it twice.
        if let Some((line, column)) = position
            && let Some(stripped) =
                message.strip_suffix(&format!(" at line {line}, column {column}"))
        {
            message = stripped.to_owned();
        }
        Error::Spec {
            origin: origin.to_owned(),
            problems: vec![SpecProblem {
                path: String::new(),
                position,
                message,
            }],
        }
    })?;
    // Positions are only needed to report problems, so the text is walked again only then.
    let positions = std::sync::OnceLock::new();
    let spec = checked(&value, origin, &|p| {
        positions.get_or_init(|| positions::collect(text)).find(p)
    })?;
    Ok(Draft {
        spec,
        origin: origin.to_owned(),
        text: Some(text.to_owned()),
    })
}

/// Reads a spec given as a JSON value (a kustomize `functionConfig`) and checks its shape; no
/// positions.
pub fn from_value(value: &Value, origin: &str) -> Result<Draft, Error> {
    let spec = checked(value, origin, &|_| None)?;
    Ok(Draft::new(spec, origin))
}

/// The spec error for `problems`, positioned and in file order.
fn spec_error(
    origin: &str,
    problems: Vec<SpecProblem>,
    position: &dyn Fn(&str) -> Option<(usize, usize)>,
) -> Error {
    let mut problems: Vec<SpecProblem> = problems
        .into_iter()
        .map(|mut p| {
            p.position = position(&p.path);
            p
        })
        .collect();
    // In file order, so the list reads top to bottom like the spec.
    problems.sort_by_key(|p| p.position.unwrap_or((usize::MAX, usize::MAX)));
    Error::Spec {
        origin: origin.to_owned(),
        problems,
    }
}

/// The typed spec when its shape is right. When it is not, the semantic problems of what remains
/// are reported together with the shape ones (compiling the rest is cheap and only happens then).
fn checked(
    value: &Value,
    origin: &str,
    position: &dyn Fn(&str) -> Option<(usize, usize)>,
) -> Result<RunnerPatchSpec, Error> {
    let mut problems = Vec::new();
    if value.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION) {
        problems.push(SpecProblem {
            path: "apiVersion".into(),
            position: None,
            message: format!("must be {API_VERSION:?}"),
        });
    }
    if value.get("kind").and_then(Value::as_str) != Some(KIND) {
        problems.push(SpecProblem {
            path: "kind".into(),
            position: None,
            message: format!("must be {KIND:?}"),
        });
    }
    let mut unknown = Vec::new();
    if problems.is_empty() {
        let (found, unknown_keys) =
            schema::check_reporting_unknown(value, validation_schema(), true);
        problems.extend(found);
        problems.extend(manager_problems(value));
        unknown = unknown_keys;
    }
    if problems.is_empty() {
        return match serde_json::from_value::<RunnerPatchDocument>(value.clone()) {
            Ok(doc) => Ok(doc.spec),
            Err(e) => Err(spec_error(
                origin,
                vec![SpecProblem {
                    path: "spec".into(),
                    position: None,
                    message: e.to_string(),
                }],
                position,
            )),
        };
    }
    // Validate what remains once the unknown fields are set aside (when the rest has the right
    // types), so that one run lists every problem.
    let mut cleaned = value.clone();
    for pointer in unknown.iter().rev() {
        remove_pointer(&mut cleaned, pointer);
    }
    if let Ok(doc) = serde_json::from_value::<RunnerPatchDocument>(cleaned)
        && let Err(more) = compile::compile(doc.spec, "spec")
    {
        problems.extend(more);
    }
    Err(spec_error(origin, problems, position))
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, key)) = pointer.rsplit_once('/') else {
        return;
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(map)) = value.pointer_mut(parent) {
        map.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_is_current() {
        let want =
            schema::LazyDefs::write_without_descriptions(&validation_schema_from(&json_schema()));
        if std::env::var_os("RUNNER_PATCH_BLESS").is_some() {
            std::fs::write(
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/schema/runner-patch.validation.defs"
                ),
                want,
            )
            .unwrap();
            return;
        }
        assert!(
            VALIDATION_SCHEMA == want,
            "schema/runner-patch.validation.defs is stale: re-bless with RUNNER_PATCH_BLESS=1 cargo test --lib"
        );
    }

    #[test]
    fn loads_the_documented_example() {
        let text = include_str!("../../examples/runner-patch.yaml");
        let compiled = load(text, "example").unwrap().compile().unwrap();
        assert_eq!(compiled.job_host_aliases.len(), 1);
        assert!(compiled.fragment.is_some());
    }

    #[test]
    fn compile_problems_keep_their_positions_and_file_order() {
        let text = "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  runnerToml: |\n    [runners.cache]\n    Typ = \"s3\"\n  pullPolicy: sometimes\n  hostAliases:\n  - ip: 10.0.0.300\n    hostnames: [a.example.com]\n";
        let draft = load(text, "t").expect("the shape is right");
        let Err(Error::Spec { problems, .. }) = draft.compile() else {
            panic!("expected spec error")
        };
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 3, "{rendered:#?}");
        assert!(
            rendered[0]
                .starts_with("line 4, column 3: spec.runnerToml: runners.cache.Typ: unknown")
                && rendered[0].contains("`Type`"),
            "{rendered:#?}"
        );
        assert!(
            rendered[1].starts_with("line 7, column 3: spec.pullPolicy: \"sometimes\""),
            "{rendered:#?}"
        );
        assert!(
            rendered[2].starts_with("line 9, column 5: spec.hostAliases[0].ip"),
            "{rendered:#?}"
        );
    }

    #[test]
    fn reports_every_problem_with_positions() {
        let text = "apiVersion: runner-patch.dev/v1alpha1\nkind: RunnerPatch\nspec:\n  hostAlias: []\n  pullPolicy: 3\n  manager:\n    volumes:\n    - name: x\n      emptyDir: {}\n      bogus: 1\n";
        let Err(Error::Spec { problems, .. }) = load(text, "t") else {
            panic!("expected spec error")
        };
        let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(rendered.len(), 3, "{rendered:#?}");
        assert!(
            rendered[0].starts_with("line 4, column 3: spec.hostAlias: unknown field"),
            "{rendered:#?}"
        );
        assert!(rendered[0].contains("hostAliases"), "{rendered:#?}");
        assert!(
            rendered[1].starts_with(
                "line 5, column 3: spec.pullPolicy: expected a string or a list of strings"
            ),
            "{rendered:#?}"
        );
        assert!(
            rendered[2].starts_with("line 10, column 7: spec.manager.volumes[0].bogus"),
            "{rendered:#?}"
        );
    }
}
