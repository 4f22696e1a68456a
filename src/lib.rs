//! runner-patch: patch every gitlab-runner release in a rendered manifest stream.
//!
//! The pipeline, as [`patch`] runs it: [`stream::split`] cuts the text into documents without
//! parsing YAML → [`locate::find`] parses only runner candidates and pairs each Deployment with
//! its ConfigMap → [`runner_toml::apply`] edits the embedded TOML → [`pod::apply`] edits the
//! Deployment and rolls it through `checksum/configmap` → untouched documents are copied byte for
//! byte and only the changed ones are re-emitted by [`yaml::emit`].
//!
//! The library prints nothing and does no I/O but reading the input ([`source`]); `main` owns
//! stdout, stderr and exit codes.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod certs;
pub mod cli;
pub mod configmap;
pub mod error;
pub mod krm;
pub mod locate;
pub mod pod;
pub mod runner_toml;
pub mod schema_check;
pub mod source;
pub mod spec;
pub mod stream;
pub mod trust;
pub mod validate;
pub mod yaml;
pub mod yaml_positions;

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

pub use error::{DocRef, Error};
pub use spec::{RunnerPatch, RunnerPatchSpec};

use crate::error::TomlPosition;
use crate::locate::Parsed;
use crate::runner_toml::{Fragment, TomlPatch};
use crate::spec::ApplyTo;
use crate::stream::Doc;

/// The result of a successful run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The complete output stream.
    pub output: String,
    /// Things the user should know that do not stop the run.
    pub warnings: Vec<String>,
    /// One line per patched release (`Deployment ns/name`), in stream order.
    pub releases: Vec<String>,
}

/// The output as pieces that borrow the untouched stretches of the input, so that a caller can
/// write a large stream without copying it.
#[derive(Debug, Default)]
pub struct Patched<'a> {
    /// In order: verbatim input ranges and re-emitted documents.
    pub pieces: Vec<std::borrow::Cow<'a, [u8]>>,
    /// What changed, one line per document (`updated ConfigMap ns/name`, `generated …`).
    pub changes: Vec<String>,
    /// Things the user should know that do not stop the run.
    pub warnings: Vec<String>,
    /// One line per patched release (`Deployment ns/name`), in stream order.
    pub releases: Vec<String>,
}

/// Patches every selected gitlab-runner release in `input` according to `spec`.
pub fn patch(input: &str, spec: &RunnerPatchSpec) -> Result<Outcome, Error> {
    let patched = patch_pieces(input.as_bytes(), spec)?;
    Ok(Outcome {
        output: String::from_utf8(patched.pieces.concat()).expect("the pieces of a str are UTF-8"),
        warnings: patched.warnings,
        releases: patched.releases,
    })
}

/// Like [`patch`], over bytes (checked to be UTF-8 document by document, so that a large stream
/// is read once), returning the output as pieces (see [`Patched`]).
pub fn patch_pieces<'a>(input: &'a [u8], spec: &RunnerPatchSpec) -> Result<Patched<'a>, Error> {
    // Split and prefilter in one pass, each document while it is in cache.
    let (bom, split) = stream::documents(input);
    let mut locator = locate::Locator::new(spec.selector.as_ref(), !spec.certificates.is_empty());
    let mut docs = Vec::new();
    for doc in split {
        let doc = doc?;
        locator.observe(docs.len(), &doc)?;
        docs.push(doc);
    }
    let stream = stream::Stream { bom, docs };
    let passthrough = || Patched {
        pieces: vec![input.into()],
        ..Patched::default()
    };
    if stream.docs.iter().all(Doc::is_empty) {
        return Ok(passthrough());
    }
    let found = locator.finish(stream.docs.len())?;
    if found.releases.is_empty() {
        if spec.allow_missing {
            return Ok(passthrough());
        }
        return Err(Error::NoTarget {
            documents: found.scanned,
            selector: describe_selector(spec),
        });
    }
    let toml_patch = toml_patch(spec)?;
    let manager_aliases = aliases_for(spec, ApplyTo::Manager);
    let (volumes, mounts) = spec
        .manager
        .as_ref()
        .map(|m| (m.volumes.as_slice(), m.volume_mounts.as_slice()))
        .unwrap_or_default();

    let mut outcome = Patched::default();
    let mut rewritten: BTreeMap<usize, String> = BTreeMap::new();
    let mut appended: Vec<String> = Vec::new();
    for release in &found.releases {
        let cm = &found.parsed[&release.configmap];
        let cm_doc = &stream.docs[release.configmap];
        let deploy = &found.parsed[&release.deployment];
        let plan = plan_certificates(spec, cm, deploy, release.container, &mut outcome.warnings);
        let mut release_toml = toml_patch.clone();
        release_toml
            .config_map_volumes
            .extend(plan.trust.job_config_maps.iter().cloned());
        release_toml
            .secret_volumes
            .extend(plan.trust.job_secrets.iter().cloned());
        release_toml.tls_ca_file = plan.trust.tls_ca_file.clone();
        let new_cm = patch_configmap(cm, cm_doc, &release_toml, &mut outcome.warnings)?;
        // The pods roll when the runner TOML or any certificate they mount changes.
        let checksum = (new_cm.is_some() || !plan.trust.generated.is_empty()).then(|| {
            let final_cm = new_cm.as_ref().map_or(&cm.value, |c| &c.value);
            checksum(final_cm, &plan.trust.generated)
        });
        if let Some(change) = &new_cm {
            let text = match render_in_place(cm_doc, change) {
                Some(text) => text,
                None => render(cm_doc, &change.value, &cm.doc_ref)?,
            };
            rewritten.insert(release.configmap, text);
            outcome.changes.push(format!(
                "updated {}: data[{:?}]",
                short(&cm.doc_ref),
                change.key
            ));
        }
        let pod_patch = pod::PodPatch {
            host_aliases: manager_aliases.clone(),
            volumes,
            volume_mounts: mounts,
            checksum,
            certs: Some((plan.certs_dir, plan.trust.manager_sources.as_slice())),
        };
        let new_deploy =
            pod::apply(&deploy.value, release.container, &pod_patch).map_err(|f| Error::Field {
                doc: Box::new(deploy.doc_ref.clone()),
                field: f.field,
                message: f.message,
            })?;
        if let Some(value) = &new_deploy {
            outcome
                .changes
                .push(format!("updated {}: pod template", short(&deploy.doc_ref)));
            rewritten.insert(
                release.deployment,
                render(&stream.docs[release.deployment], value, &deploy.doc_ref)?,
            );
        }
        // Generated ConfigMaps: updated where an earlier run put them, otherwise appended.
        for generated in &plan.trust.generated {
            let key = (
                generated
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                generated
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            );
            let doc_ref = DocRef {
                kind: "ConfigMap".into(),
                namespace: key.0.clone(),
                name: key.1.clone(),
                ..DocRef::default()
            };
            match found.generated.get(&key) {
                Some(&pos) if found.parsed[&pos].value == *generated => {}
                Some(&pos) => {
                    rewritten.insert(pos, render(&stream.docs[pos], generated, &doc_ref)?);
                }
                None => {
                    outcome
                        .changes
                        .push(format!("generated {}", short(&doc_ref)));
                    appended.push(yaml::emit(generated).map_err(|message| Error::Fidelity {
                        doc: Box::new(doc_ref),
                        message,
                    })?)
                }
            }
        }
        let r = &deploy.doc_ref;
        outcome.releases.push(format!(
            "Deployment {}{}",
            r.namespace
                .as_ref()
                .map(|n| format!("{n}/"))
                .unwrap_or_default(),
            r.name
        ));
    }

    // Untouched documents are contiguous stretches of the input: emit each stretch as one slice.
    let mut start = 0usize;
    let mut offset = stream.bom.len();
    for (pos, doc) in stream.docs.iter().enumerate() {
        let len = doc.head.len() + doc.body.len() + doc.tail.len();
        if let Some(text) = rewritten.remove(&pos) {
            outcome.pieces.push(input[start..offset].into());
            outcome.pieces.push(text.into_bytes().into());
            start = offset + len;
        }
        offset += len;
    }
    outcome.pieces.push(input[start..].into());
    if !appended.is_empty() {
        // New documents go at the end; Helm 4 names them `generated-by-postrender-N.yaml`.
        let crlf = stream.docs.last().is_some_and(Doc::uses_crlf);
        if !input.is_empty() && !input.ends_with(b"\n") {
            outcome.pieces.push(b"\n".into());
        }
        for text in appended {
            let doc = format!("---\n{text}");
            outcome.pieces.push(
                if crlf { doc.replace('\n', "\r\n") } else { doc }
                    .into_bytes()
                    .into(),
            );
        }
    }
    Ok(outcome)
}

/// What a release's certificates need, with the directory the manager reads them from.
struct CertPlan {
    trust: trust::Plan,
    certs_dir: &'static str,
}

fn plan_certificates(
    spec: &RunnerPatchSpec,
    cm: &Parsed,
    deploy: &Parsed,
    container: usize,
    warnings: &mut Vec<String>,
) -> CertPlan {
    let pod = deploy.value.pointer("/spec/template/spec");
    let runs_as_root = |ctx: Option<&Value>| {
        ctx.and_then(|c| c.get("runAsUser")).and_then(Value::as_i64) == Some(0)
    };
    let c = pod.and_then(|p| p.pointer(&format!("/containers/{container}")));
    let certs_dir = if runs_as_root(c.and_then(|c| c.get("securityContext")))
        || runs_as_root(pod.and_then(|p| p.get("securityContext")))
    {
        trust::ROOT_CERTS_DIR
    } else {
        trust::CERTS_DIR
    };
    if spec.certificates.is_empty() {
        return CertPlan {
            trust: trust::Plan::default(),
            certs_dir,
        };
    }
    let data = cm.value.get("data");
    let toml_text = data
        .and_then(|d| {
            d.get("config.template.toml")
                .or_else(|| d.get("config.toml"))
        })
        .and_then(Value::as_str);
    let job_namespace = toml_text.and_then(runner_toml::job_namespace);
    let mut labels = serde_json::Map::new();
    for key in ["app", "release"] {
        if let Some(v) = deploy.value.pointer(&format!("/metadata/labels/{key}")) {
            labels.insert(key.into(), v.clone());
        }
    }
    let info = trust::ReleaseInfo {
        fullname: &deploy.doc_ref.name,
        namespace: deploy.doc_ref.namespace.as_deref(),
        job_namespace: job_namespace.as_deref(),
        labels,
        certs_dir,
    };
    let mut plan = trust::plan(&spec.certificates, &info);
    // The runner uses certs/<host>.crt for the URL's host only: say so when they differ.
    let url = c
        .and_then(|c| c.get("env"))
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some("CI_SERVER_URL"))
        })
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(|u| {
            u.split("://")
                .nth(1)
                .unwrap_or(u)
                .split(['/', ':'])
                .next()
                .unwrap_or_default()
                .to_owned()
        });
    for cert in spec
        .certificates
        .iter()
        .filter(|c| c.purpose == spec::CertPurpose::Gitlab)
    {
        if let Some(host) = &url
            && host != cert.hostname()
        {
            warnings.push(format!(
                "{}: the GitLab certificate is for {:?} but CI_SERVER_URL points at {host:?}; the runner only uses certs/<URL host>.crt",
                deploy.doc_ref, cert.host
            ));
            plan.tls_ca_file = None;
        }
    }
    CertPlan {
        trust: plan,
        certs_dir,
    }
}

/// Builds the TOML part of the patch from the spec.
fn toml_patch(spec: &RunnerPatchSpec) -> Result<TomlPatch, Error> {
    let spec_error = |path: &str, message: String| Error::Spec {
        origin: "(spec)".into(),
        problems: vec![error::SpecProblem {
            path: path.into(),
            position: None,
            message,
        }],
    };
    let policies = |list: Vec<String>, path: &str| -> Result<Vec<&'static str>, Error> {
        list.iter()
            .map(|p| {
                validate::pull_policy(p)
                    .ok_or_else(|| spec_error(path, format!("{p:?} is not a pull policy")))
            })
            .collect()
    };
    Ok(TomlPatch {
        host_aliases: aliases_for(spec, ApplyTo::Jobs),
        config_map_volumes: spec.config_map_volumes.clone(),
        secret_volumes: Vec::new(),
        tls_ca_file: None,
        pull_policy: spec
            .pull_policy
            .as_ref()
            .map(|p| policies(p.to_vec(), "spec.pullPolicy"))
            .transpose()?,
        allowed_pull_policies: spec
            .allowed_pull_policies
            .as_ref()
            .map(|p| policies(p.clone(), "spec.allowedPullPolicies"))
            .transpose()?,
        fragment: spec
            .runner_toml
            .as_deref()
            .map(|t| Fragment::parse(t).map_err(|m| spec_error("spec.runnerToml", m)))
            .transpose()?,
    })
}

/// Host aliases for one target, entries for the same IP folded together in spec order.
fn aliases_for(spec: &RunnerPatchSpec, target: ApplyTo) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for alias in spec.host_aliases.iter().filter(|a| a.applies_to(target)) {
        let ip = validate::normalize_ip(&alias.ip);
        let pos = match out
            .iter()
            .position(|(i, _)| validate::normalize_ip(i) == ip)
        {
            Some(p) => p,
            None => {
                out.push((alias.ip.clone(), Vec::new()));
                out.len() - 1
            }
        };
        for h in &alias.hostnames {
            if !out[pos].1.contains(h) {
                out[pos].1.push(h.clone());
            }
        }
    }
    out
}

/// Applies the TOML patch to the runner ConfigMap; `None` when it already holds everything.
fn patch_configmap(
    cm: &Parsed,
    doc: &Doc<'_>,
    patch: &TomlPatch,
    warnings: &mut Vec<String>,
) -> Result<Option<ConfigMapChange>, Error> {
    if patch.is_empty() {
        return Ok(None);
    }
    let data = cm.value.get("data").and_then(Value::as_object);
    let text_of = |key: &str| data.and_then(|d| d.get(key)).and_then(Value::as_str);
    let key = if data.is_some_and(|d| d.contains_key("config.template.toml")) {
        "config.template.toml"
    } else if text_of("config.toml").is_some_and(runner_toml::has_runners) {
        // `runners.configOverride`: the whole config.toml, [[runners]] included.
        "config.toml"
    } else {
        return Err(Error::Field {
            doc: Box::new(cm.doc_ref.clone()),
            field: "data".into(),
            message: "has no runner TOML to patch: `config.template.toml` is absent (is the chart's `runners.config` empty?) and `config.toml` has no [[runners]]".into(),
        });
    };
    let Some(text) = text_of(key) else {
        return Err(Error::Field {
            doc: Box::new(cm.doc_ref.clone()),
            field: format!("data[{key:?}]"),
            message: "expected a string".into(),
        });
    };
    let applied = runner_toml::apply(text, patch).map_err(|f| Error::Toml {
        doc: Box::new(cm.doc_ref.clone()),
        key: key.to_owned(),
        toml_path: f.path,
        position: f.line.map(|line| TomlPosition {
            line,
            stream_line: block_scalar_line(doc, key).map(|l| l + line),
        }),
        message: f.message,
    })?;
    let r = &cm.doc_ref;
    warnings.extend(
        applied
            .warnings
            .into_iter()
            .map(|w| format!("{r} data[{key:?}] {w}")),
    );
    Ok(applied.text.map(|new_text| {
        let mut value = cm.value.clone();
        value["data"][key] = Value::String(new_text.clone());
        ConfigMapChange {
            key,
            text: new_text,
            value,
        }
    }))
}

/// A changed runner ConfigMap: which key, its new text, and the whole new value.
struct ConfigMapChange {
    key: &'static str,
    text: String,
    value: Value,
}

/// Rewrites only the TOML scalar in the document's own text, so that the rest of the ConfigMap
/// stays byte for byte. `None` (fall back to re-emitting) when the text cannot be edited in place;
/// [`configmap::replace_data_value`] verifies what it wrote.
fn render_in_place(doc: &Doc<'_>, change: &ConfigMapChange) -> Option<String> {
    if doc.uses_crlf() || doc.body.starts_with("---") {
        return None;
    }
    let body = configmap::replace_data_value(doc.body, change.key, &change.text)?;
    Some([doc.head, body.as_str(), doc.tail].concat())
}

/// The stream line of `key:` when its value is a block scalar (TOML line n is at that line + n).
fn block_scalar_line(doc: &Doc<'_>, key: &str) -> Option<usize> {
    doc.body.lines().enumerate().find_map(|(i, line)| {
        let t = line.trim_start();
        let rest = t
            .strip_prefix(key)
            .or_else(|| t.strip_prefix(&format!("\"{key}\"")))?;
        let rest = rest.strip_prefix(':')?.trim();
        rest.starts_with('|').then_some(doc.body_line + i)
    })
}

/// A digest of the ConfigMap's data that does not depend on YAML formatting (Helm 3 text and
/// Helm 4's re-serialized input give the same value), so repeated runs agree.
fn checksum(configmap: &Value, generated: &[Value]) -> String {
    let mut canonical: BTreeMap<String, BTreeMap<&str, &Value>> = BTreeMap::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = configmap.get(field).and_then(Value::as_object) {
            canonical.insert(
                field.to_owned(),
                map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            );
        }
    }
    // Certificates the pods mount: a renewed certificate rolls them too.
    for g in generated {
        let name = g
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(map) = g.get("data").and_then(Value::as_object) {
            canonical.insert(
                format!("generated/{name}"),
                map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            );
        }
    }
    let bytes = serde_json::to_vec(&canonical).expect("JSON serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Re-emits a changed document: its head (`---`, `# Source:` …) and tail stay as they were.
fn render(doc: &Doc<'_>, value: &Value, doc_ref: &DocRef) -> Result<String, Error> {
    let mut body = yaml::emit(value).map_err(|message| Error::Fidelity {
        doc: Box::new(doc_ref.clone()),
        message,
    })?;
    if doc.body.starts_with("---") {
        // The marker shared its line with content (`--- {…}`); give it a line of its own.
        body.insert_str(0, "---\n");
    }
    if !doc.body.ends_with('\n') && doc.tail.is_empty() {
        body.truncate(body.trim_end_matches('\n').len());
    }
    if doc.uses_crlf() {
        body = body.replace('\n', "\r\n");
    }
    let mut out = String::with_capacity(doc.head.len() + body.len() + doc.tail.len());
    out.push_str(doc.head);
    out.push_str(&body);
    out.push_str(doc.tail);
    Ok(out)
}

/// `Kind ns/name` for change lines.
fn short(r: &DocRef) -> String {
    format!(
        "{} {}{}",
        r.kind,
        r.namespace
            .as_ref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default(),
        r.name
    )
}

fn describe_selector(spec: &RunnerPatchSpec) -> String {
    let Some(sel) = &spec.selector else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(r) = &sel.release {
        parts.push(format!("release={r}"));
    }
    if let Some(n) = &sel.name {
        parts.push(format!("name={n}"));
    }
    if let Some(n) = &sel.namespace {
        parts.push(format!("namespace={n}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" matching {}", parts.join(", "))
    }
}
