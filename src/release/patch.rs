//! Patches one gitlab-runner release: its ConfigMap's runner TOML, its Deployment's pod template,
//! and the ConfigMaps its certificates need. A pure function of the release and the spec, so
//! that the releases of a large stream can be patched side by side.
//!
//! Both documents are edited in place ([`edit::rewrite`]): what changes is decided on values (the
//! TOML text, the pod template), and only the bytes of what changed are written; the result is
//! read back and compared with the intended value in every build.

use std::collections::BTreeMap;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::error::TomlPosition;
use crate::manifest::stream::Doc;
use crate::manifest::{edit, yaml};
use crate::release::configmaps::StreamConfigMaps;
use crate::release::env::RunnerEnv;
use crate::release::locate::{Found, Parsed, Release};
use crate::release::repeats::Repeats;
use crate::release::toml::{TomlFailure, TomlPatch};
use crate::release::{pod, register, toml, trust};
use crate::spec::{self, CompiledPatch};
use crate::{DocRef, Error};

/// What every release is patched with.
#[derive(Clone, Copy)]
pub(crate) struct Context<'c, 'a> {
    pub spec: &'c CompiledPatch,
    /// The documents that were parsed (candidates), by position in the stream; the others are
    /// never edited, so they are not kept (a stream of millions of tiny documents stays small).
    pub docs: &'c BTreeMap<usize, Doc<'a>>,
    /// The other documents that may be ConfigMaps, unparsed (see [`StreamConfigMaps`]).
    pub configmaps: &'c BTreeMap<usize, Doc<'a>>,
    pub found: &'c Found,
    pub toml_patch: &'c TomlPatch,
}

/// What patching one release produced, merged by the caller in stream order.
#[derive(Default)]
pub(crate) struct Output {
    /// New text of documents of the stream, by position.
    pub rewritten: Vec<(usize, String)>,
    /// New documents (generated ConfigMaps), to go at the end of the stream.
    pub appended: Vec<String>,
    pub changes: Vec<String>,
    pub warnings: Vec<String>,
    /// `Deployment ns/name`.
    pub release: String,
}

/// Patches `release`, whose Deployment it is given to edit (see the module documentation).
pub(crate) fn patch(
    context: &Context<'_, '_>,
    release: &Release,
    deploy: Parsed,
) -> Result<Output, Error> {
    let Context {
        spec,
        docs,
        configmaps,
        found,
        toml_patch,
    } = *context;
    let stream_configmaps = StreamConfigMaps {
        parsed: &found.parsed,
        others: configmaps,
    };
    let mut out = Output::default();
    let cm = &found.parsed[&release.configmap];
    let cm_doc = &docs[&release.configmap];
    // The runner TOML is cut at its [[runners]] entries and each piece parsed once: the first
    // entry's here (for the job namespace and pull policies), the others as they are checked and
    // edited.
    let source = toml_source(cm);
    // `register --template-config` reads the template, and the env vars win over it; with
    // `runners.configOverride` the runner runs config.toml as it is and env vars change nothing.
    let through_register = !matches!(
        source,
        TomlSource::Found {
            key: "config.toml",
            ..
        }
    );
    let chart_value = |key: &str| match &source {
        TomlSource::Found { doc: Ok(doc), .. } => doc.kubernetes_value(key),
        _ => None,
    };
    // The template's `executor`: register's when RUNNER_EXECUTOR is unset or empty.
    let template_executor = match &source {
        TomlSource::Found { key, doc: Ok(doc) } if through_register => {
            doc.runner_value("executor").and_then(|(value, line)| {
                Some(register::TemplateExecutor {
                    name: value.as_str()?.to_owned(),
                    configmap: cm.doc_ref.clone(),
                    key: (*key).to_owned(),
                    position: line.map(|line| TomlPosition {
                        line,
                        stream_line: block_scalar_line(cm_doc, key).map(|l| l + line),
                    }),
                })
            })
        }
        _ => None,
    };
    // The runner container's environment as Kubernetes builds it, which register reads.
    let mut runner_env = match through_register {
        true => Some(RunnerEnv::read(
            &deploy.value,
            &deploy.doc_ref,
            release.container,
            &stream_configmaps,
        )?),
        false => None,
    };
    let job_namespace =
        register::job_namespace(runner_env.as_ref(), spec.fragment.as_ref(), chart_value);
    let plan = plan_certificates(
        &spec.certificates,
        job_namespace.known(),
        &deploy,
        release.container,
        &mut out.warnings,
    )?;
    check_generated_names(&plan.trust, &stream_configmaps, spec, &deploy.doc_ref)?;
    if let register::JobNamespace::Unknowable(why) = &job_namespace {
        out.warnings
            .extend(job_configmap_warnings(&plan.trust, &deploy.doc_ref, why));
    }
    let mut release_toml = toml_patch.clone();
    release_toml
        .config_map_volumes
        .extend(plan.trust.job_config_maps.iter().cloned());
    release_toml
        .secret_volumes
        .extend(plan.trust.job_secrets.iter().cloned());
    release_toml.tls_ca_file = plan.trust.tls_ca_file.clone();
    if let Some(env) = &runner_env
        && let Some(warning) = register::check_executor(
            env,
            &deploy.doc_ref,
            &release_toml,
            template_executor.as_ref(),
        )?
    {
        out.warnings.push(warning);
    }
    let writes = register::writes(&release_toml);
    // What register would do with env vars that shadow what is written.
    let env = match &mut runner_env {
        Some(env) => register::check_env(
            env,
            &deploy.doc_ref,
            &writes,
            &register::TomlPullPolicies::after(&release_toml, chart_value),
            spec.env_conflicts,
        )?,
        None => register::EnvPlan::default(),
    };
    release_toml.pull_policy_from_env = env.pull_policy_from_env;
    // Flags on the register command line beat the template too (chart 0.52).
    if through_register
        && let Some(script) = cm
            .value
            .pointer(&format!("/data/{}", crate::release::flags::SCRIPT_KEY))
            .and_then(Value::as_str)
    {
        out.warnings.extend(register::check_flags(
            &crate::release::flags::read(script),
            &cm.doc_ref,
            &writes,
            spec.env_conflicts,
        )?);
    }
    // The entrypoint's exports from /secrets beat the template too.
    if through_register
        && let Some(script) = cm
            .value
            .pointer(&format!("/data/{}", register::ENTRYPOINT_KEY))
            .and_then(Value::as_str)
    {
        out.warnings.extend(register::check_entrypoint_exports(
            script,
            &cm.doc_ref,
            &writes,
        ));
    }
    let executor = runner_env.as_ref().and_then(|env| {
        register::executor(env, template_executor.as_ref().map(|t| t.name.as_str()))
    });
    let checks = ChartChecks {
        writes: &writes,
        executor: executor.as_ref(),
    };
    let new_cm = patch_configmap(
        cm,
        cm_doc,
        &release_toml,
        source,
        &checks,
        &mut out.warnings,
    )?;
    out.warnings.extend(env.warnings);
    let env_changes: Vec<String> = env
        .reasons
        .iter()
        .map(|why| {
            format!(
                "updated {}: {why} (envConflicts: replace)",
                short(&deploy.doc_ref)
            )
        })
        .collect();
    // The pods roll when the runner TOML or any certificate they mount changes.
    let checksum = (new_cm.is_some() || !plan.trust.generated.is_empty())
        .then(|| checksum(&cm.value, new_cm.as_ref(), &plan.trust.generated));
    if let Some(change) = new_cm {
        // The new TOML moves into the intended value, and the old one is not copied: a TOML at
        // the size limit is held once here, not three times.
        let mut intended = clone_without(&cm.value, change.key);
        intended["data"][change.key] = Value::String(change.text);
        out.rewritten.push((
            release.configmap,
            edit_in_place(cm_doc, &cm.value, &intended, &cm.doc_ref)?,
        ));
        out.changes.push(format!(
            "updated {}: data[{:?}]",
            short(&cm.doc_ref),
            change.key
        ));
    }
    let pod_patch = pod::PodPatch {
        host_aliases: spec.manager_host_aliases.clone(),
        volumes: &spec.manager_volumes,
        volume_mounts: &spec.manager_volume_mounts,
        checksum,
        certs: Some((plan.certs_dir, plan.trust.manager_sources.as_slice())),
        env: env.edits,
    };
    let Parsed {
        value: before,
        doc_ref: deploy_ref,
    } = deploy;
    let mut after = before.clone();
    let changed =
        pod::apply(&mut after, release.container, &pod_patch).map_err(|f| Error::Field {
            doc: Box::new(deploy_ref.clone()),
            field: f.field,
            message: f.message,
        })?;
    if changed {
        out.changes
            .push(format!("updated {}: pod template", short(&deploy_ref)));
        out.changes.extend(env_changes);
        out.rewritten.push((
            release.deployment,
            edit_in_place(&docs[&release.deployment], &before, &after, &deploy_ref)?,
        ));
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
                out.rewritten.push((
                    pos,
                    edit_in_place(&docs[&pos], &found.parsed[&pos].value, generated, &doc_ref)?,
                ));
            }
            None => {
                out.changes.push(format!("generated {}", short(&doc_ref)));
                out.appended
                    .push(yaml::emit(generated).map_err(|message| Error::Fidelity {
                        doc: Box::new(doc_ref),
                        message,
                    })?)
            }
        }
    }
    let r = &deploy_ref;
    out.release = format!(
        "Deployment {}{}",
        r.namespace
            .as_ref()
            .map(|n| format!("{n}/"))
            .unwrap_or_default(),
        r.name
    );
    Ok(out)
}

/// A generated ConfigMap must not take the name of a ConfigMap the stream already holds (one would
/// replace the other when applied): refused, naming both. ConfigMaps an earlier run generated are
/// updated, not clashes.
fn check_generated_names(
    trust: &trust::Plan,
    configmaps: &StreamConfigMaps<'_, '_>,
    spec: &CompiledPatch,
    deployment: &DocRef,
) -> Result<(), Error> {
    for generated in &trust.generated {
        let name = generated
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let namespace = generated
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        let Some(existing) = configmaps.find(namespace, name)? else {
            continue;
        };
        if existing.generated {
            continue;
        }
        let certificate = spec
            .certificates
            .iter()
            .position(|c| trust::object_name(&deployment.name, c.purpose.as_str(), &c.host) == name)
            .map(|i| {
                format!(
                    "spec.certificates[{i}] (host {:?})",
                    spec.certificates[i].host
                )
            })
            .unwrap_or_else(|| "a certificate".into());
        return Err(Error::Field {
            doc: Box::new(existing.doc_ref),
            field: "metadata.name".into(),
            message: format!(
                "runner-patch would generate ConfigMap {} for {certificate} of {}, and one would replace the other when applied; give the certificate a configMap of your own (spec.certificates[].configMap) or rename this ConfigMap",
                namespace.map_or_else(|| name.to_owned(), |ns| format!("{ns}/{name}")),
                short(deployment),
            ),
        });
    }
    Ok(())
}

/// Generated ConfigMaps that job pods mount, put in the runner's namespace because the job
/// namespace cannot be known offline (`why`): job pods elsewhere would not find them.
fn job_configmap_warnings(trust: &trust::Plan, deployment: &DocRef, why: &str) -> Vec<String> {
    trust
        .generated
        .iter()
        .filter_map(|g| {
            let name = g.pointer("/metadata/name").and_then(Value::as_str)?;
            trust.job_config_maps.iter().any(|v| v.name == name).then(|| {
                let place = match g.pointer("/metadata/namespace").and_then(Value::as_str) {
                    Some(ns) => format!("namespace {ns:?}, the runner's"),
                    None => "the runner's namespace".to_owned(),
                };
                format!(
                    "{deployment}: generated ConfigMap {name:?}, which job pods mount, is put in {place}, but the job namespace cannot be known offline ({why}); job pods in another namespace cannot mount it: create the ConfigMap there, or give the certificate a configMap of your own"
                )
            })
        })
        .collect()
}

/// What a release's certificates need, with the directory the manager reads them from.
struct CertPlan {
    trust: trust::Plan,
    certs_dir: &'static str,
}

fn plan_certificates(
    certificates: &[spec::Certificate],
    job_namespace: Option<&str>,
    deploy: &Parsed,
    container: usize,
    warnings: &mut Vec<String>,
) -> Result<CertPlan, Error> {
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
    if certificates.is_empty() {
        return Ok(CertPlan {
            trust: trust::Plan::default(),
            certs_dir,
        });
    }
    let mut labels = serde_json::Map::new();
    for key in ["app", "release"] {
        if let Some(v) = deploy.value.pointer(&format!("/metadata/labels/{key}")) {
            labels.insert(key.into(), v.clone());
        }
    }
    let info = trust::ReleaseInfo {
        fullname: &deploy.doc_ref.name,
        namespace: deploy.doc_ref.namespace.as_deref(),
        job_namespace,
        labels,
        certs_dir,
    };
    let mut plan = trust::plan(certificates, &info).map_err(|clash| {
        let host = |i: usize| &certificates[i].host;
        Error::Spec {
            origin: "(spec)".into(),
            problems: vec![crate::error::SpecProblem {
                path: format!("spec.certificates[{}].host", clash.second),
                position: None,
                message: format!(
                    "{:?} and spec.certificates[{}].host {:?} would both generate ConfigMap {:?} (a name keeps only letters, digits and dashes), and one certificate would be lost; give one of them a configMap or secret of your own",
                    host(clash.second),
                    clash.first,
                    host(clash.first),
                    clash.name
                ),
            }],
        }
    })?;
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
    for cert in certificates
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
    Ok(CertPlan {
        trust: plan,
        certs_dir,
    })
}

/// What the chart's TOML is checked for while it is patched: what the runner and `register`
/// (run by `executor`) will make of it, keys the patch overwrites (`writes`) aside.
struct ChartChecks<'w> {
    writes: &'w [register::Write],
    executor: Option<&'w register::Executor>,
}

impl ChartChecks<'_> {
    /// The notes on one piece of the TOML under `key`, with lines and `[[runners]]` indexes of
    /// the whole TOML.
    fn notes(&self, key: &str, part: &toml::Part<'_>) -> Vec<register::TomlNote> {
        let mut found = register::toml_problems(&part.doc, self.writes);
        if key == TEMPLATE_KEY {
            found.extend(register::template_warnings(&part.doc, self.executor));
        }
        for note in &mut found {
            note.path = part.path(&note.path);
            note.line = note.line.map(|l| part.line(l));
        }
        found
    }
}

/// The warnings for `notes` on the TOML under `data[key]` of `cm`, each with its TOML and stream
/// line.
fn chart_toml_warnings(
    cm: &Parsed,
    cm_doc: &Doc<'_>,
    key: &str,
    notes: Repeats<register::TomlNote>,
) -> Vec<String> {
    let scalar_line = block_scalar_line(cm_doc, key);
    let prefix = format!("{} data[{key:?}] ", cm.doc_ref);
    notes.finish(
        |note| {
            let position = note
                .line
                .map(|line| {
                    let stream = scalar_line
                        .map(|l| format!(", stream line {}", l + line))
                        .unwrap_or_default();
                    format!(" (TOML line {line}{stream})")
                })
                .unwrap_or_default();
            format!("{prefix}{}{position}: {}", note.path, note.message)
        },
        &prefix,
    )
}

/// The key of the chart's template TOML.
const TEMPLATE_KEY: &str = "config.template.toml";

/// Where a ConfigMap holds the runner TOML, parsed.
// One short-lived value per release, moved once into the edit: boxing the document buys nothing.
#[allow(clippy::large_enum_variant)]
enum TomlSource<'v> {
    /// `config.template.toml`, or `config.toml` with `[[runners]]` (`runners.configOverride`).
    Found {
        key: &'static str,
        /// Cut into pieces, the first entry's parsed with key positions (for messages).
        doc: Result<toml::RunnerToml<'v>, TomlFailure>,
    },
    /// `config.template.toml` is there but not a string.
    NotAString,
    /// No runner TOML.
    Missing,
}

fn toml_source(cm: &Parsed) -> TomlSource<'_> {
    let data = cm.value.get("data").and_then(Value::as_object);
    match data.and_then(|d| d.get(TEMPLATE_KEY)) {
        Some(Value::String(text)) => TomlSource::Found {
            key: TEMPLATE_KEY,
            doc: toml::RunnerToml::open(text),
        },
        Some(_) => TomlSource::NotAString,
        None => match data
            .and_then(|d| d.get("config.toml"))
            .and_then(Value::as_str)
        {
            Some(text) => match toml::RunnerToml::open(text) {
                Ok(doc) if doc.has_runners() => TomlSource::Found {
                    key: "config.toml",
                    doc: Ok(doc),
                },
                // Refused (not TOML, or past the size limit), but meant to hold runners: its
                // error is reported.
                Err(failure) if toml::has_runners_key(text) => TomlSource::Found {
                    key: "config.toml",
                    doc: Err(failure),
                },
                _ => TomlSource::Missing,
            },
            None => TomlSource::Missing,
        },
    }
}

/// Applies the TOML patch to the runner ConfigMap, checking each piece of the TOML as it goes
/// (`checks`, into `warnings`); `None` when it already holds everything.
fn patch_configmap(
    cm: &Parsed,
    doc: &Doc<'_>,
    patch: &TomlPatch,
    source: TomlSource<'_>,
    checks: &ChartChecks<'_>,
    warnings: &mut Vec<String>,
) -> Result<Option<ConfigMapChange>, Error> {
    let (key, parsed) = match source {
        TomlSource::Found { key, doc } => (key, doc),
        _ if patch.is_empty() => return Ok(None),
        TomlSource::NotAString => {
            return Err(Error::Field {
                doc: Box::new(cm.doc_ref.clone()),
                field: format!("data[{TEMPLATE_KEY:?}]"),
                message: "expected a string".into(),
            });
        }
        TomlSource::Missing => {
            return Err(Error::Field {
                doc: Box::new(cm.doc_ref.clone()),
                field: "data".into(),
                message: "has no runner TOML to patch: `config.template.toml` is absent (is the chart's `runners.config` empty?) and `config.toml` has no [[runners]]".into(),
            });
        }
    };
    // Collapsed as they come: a warning repeated for each of many entries is said a few times.
    let mut notes = Repeats::default();
    let applied = parsed.and_then(|toml| {
        toml.apply(patch, |part| {
            for note in checks.notes(key, part) {
                let text = note.to_string();
                notes.push(note, &text);
            }
        })
    });
    if patch.is_empty() {
        // Only the checks ran: a TOML the patch leaves alone is not refused here, and what was
        // checked before a piece it stopped at is still said.
        warnings.extend(chart_toml_warnings(cm, doc, key, notes));
        return Ok(None);
    }
    let applied = applied.map_err(|f| Error::Toml {
        doc: Box::new(cm.doc_ref.clone()),
        key: key.to_owned(),
        toml_path: f.path,
        position: f.line.map(|line| TomlPosition {
            line,
            stream_line: block_scalar_line(doc, key).map(|l| l + line),
        }),
        message: f.message,
    })?;
    warnings.extend(chart_toml_warnings(cm, doc, key, notes));
    let r = &cm.doc_ref;
    warnings.extend(
        applied
            .warnings
            .into_iter()
            .map(|w| format!("{r} data[{key:?}] {w}")),
    );
    Ok(applied.text.map(|new_text| ConfigMapChange {
        key,
        text: new_text,
    }))
}

/// A changed runner ConfigMap: which `data` key, and its new text.
struct ConfigMapChange {
    key: &'static str,
    text: String,
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

/// A digest of the ConfigMap's data (as `change` leaves it) that does not depend on YAML
/// formatting (Helm 3 text and Helm 4's re-serialized input give the same value), so repeated
/// runs agree.
fn checksum(configmap: &Value, change: Option<&ConfigMapChange>, generated: &[Value]) -> String {
    // Serialized as JSON straight into the digest (the same bytes as a JSON text of
    // `canonical`, without holding them), the new TOML borrowed, not copied.
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Data<'v> {
        Value(&'v Value),
        Text(&'v str),
    }
    let mut canonical: BTreeMap<String, BTreeMap<&str, Data<'_>>> = BTreeMap::new();
    for field in ["data", "binaryData"] {
        if let Some(map) = configmap.get(field).and_then(Value::as_object) {
            canonical.insert(
                field.to_owned(),
                map.iter()
                    .map(|(k, v)| (k.as_str(), Data::Value(v)))
                    .collect(),
            );
        }
    }
    if let Some(c) = change {
        canonical
            .entry("data".to_owned())
            .or_default()
            .insert(c.key, Data::Text(&c.text));
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
                map.iter()
                    .map(|(k, v)| (k.as_str(), Data::Value(v)))
                    .collect(),
            );
        }
    }
    let mut digest = Digesting(Sha256::new());
    serde_json::to_writer(&mut digest, &canonical).expect("JSON serializes");
    digest
        .0
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A writer that feeds a digest.
struct Digesting(Sha256);

impl std::io::Write for Digesting {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A copy of the ConfigMap `value` without `data[key]` (null in its place, keeping the key's
/// position), to be filled with the new text: the old text, as large as the TOML, is not copied.
fn clone_without(value: &Value, key: &str) -> Value {
    let Value::Object(fields) = value else {
        return value.clone();
    };
    let copy = fields.iter().map(|(field, v)| {
        let v = match v {
            Value::Object(data) if field == "data" => Value::Object(
                data.iter()
                    .map(|(k, v)| (k.clone(), if k == key { Value::Null } else { v.clone() }))
                    .collect(),
            ),
            _ => v.clone(),
        };
        (field.clone(), v)
    });
    Value::Object(copy.collect())
}

/// The document's text edited in place so that it reads as `after` (see [`edit::rewrite`]); its
/// head (`---`, `# Source:` …) and tail stay as they were. The edit is read back and compared
/// with `after` in every build: a mismatch is an error naming the document and the field.
fn edit_in_place(
    doc: &Doc<'_>,
    before: &Value,
    after: &Value,
    doc_ref: &DocRef,
) -> Result<String, Error> {
    // The document's YAML text: its body and the lines of spaces after it (a `|+` block that
    // ends the document holds them; new lines must go after them).
    let body = edit::rewrite(doc.yaml, before, after).map_err(|e| Error::Field {
        doc: Box::new(doc_ref.clone()),
        field: if e.field.is_empty() {
            "(document)".into()
        } else {
            e.field
        },
        message: match e.at {
            Some(at) => format!(
                "{} (stream line {})",
                e.message,
                doc.body_line + doc.yaml[..at].matches('\n').count()
            ),
            None => e.message,
        },
    })?;
    // The head and tail go around the edited YAML in its own buffer: one copy of a large
    // document, not two.
    let mut text = body.unwrap_or_else(|| doc.yaml.to_owned());
    let tail = doc.after_yaml();
    text.reserve_exact(doc.head.len() + tail.len());
    text.insert_str(0, doc.head);
    text.push_str(tail);
    Ok(text)
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
