//! The runner container's environment as Kubernetes builds it, resolved as far as the stream
//! allows: `envFrom` sources in order (a later source wins on a shared name, each `prefix`
//! prepended), then `env` entries, which win over `envFrom` (the last of several entries with one
//! name wins). A value is known when it is a literal, comes from a ConfigMap in the stream
//! (`envFrom.configMapRef`, `valueFrom.configMapKeyRef`) or is the pod's namespace
//! (`fieldRef metadata.namespace`); Secrets, other field references and ConfigMaps that are not
//! in the stream are only described, by name — a Secret's data is never read.

use serde_json::Value as Json;

use crate::error::{DocRef, Error};
use crate::release::configmaps::StreamConfigMaps;

/// Where a value of the runner container's environment comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `env[index]`.
    Env { index: usize },
    /// `envFrom[index]`, a ConfigMap of the stream (`configmap` is `ns/name`, `key` its data key).
    EnvFrom {
        index: usize,
        configmap: String,
        key: String,
    },
}

/// What an env var holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Literal(String),
    /// Known only in the cluster: how it is given (`secretKeyRef runner-env/KEY`), never a value.
    Unknown(String),
}

/// One env var the container sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub value: Value,
    pub origin: Origin,
    /// For an `env` entry whose `valueFrom` was read from the stream: how
    /// (`configMapKeyRef runner-settings/executor`).
    pub via: Option<String>,
}

/// What the environment says about one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup<'e> {
    Set(&'e Var),
    /// Not set by anything the stream shows, but an `envFrom` source that cannot be read offline
    /// (a Secret, a ConfigMap that is not in the stream) may set it: those sources, described.
    Maybe(Vec<&'e str>),
    Unset,
}

/// An `envFrom` source as far as it can be read.
#[derive(Debug, Clone)]
enum Layer {
    /// A ConfigMap of the stream: its variables (prefix applied), in data order.
    Known { vars: Vec<(String, Var)> },
    /// A Secret, or a ConfigMap not in the stream: `prefix` restricts the names it can set.
    Opaque { prefix: String, description: String },
}

/// The runner container's environment (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct RunnerEnv {
    /// `envFrom`, in order.
    layers: Vec<Layer>,
    /// `env`, in order, resolved.
    entries: Vec<(String, Var)>,
    /// Names whose `env` entries `envConflicts: replace` removes.
    dropped: Vec<String>,
    /// `spec.template.spec.containers[N]`.
    pub container_path: String,
}

impl RunnerEnv {
    /// Reads container `container` of `deployment` (documented by `doc`), looking up the
    /// ConfigMaps it names in `configmaps`.
    pub fn read(
        deployment: &Json,
        doc: &DocRef,
        container: usize,
        configmaps: &StreamConfigMaps<'_, '_>,
    ) -> Result<RunnerEnv, Error> {
        let c = deployment
            .pointer(&format!("/spec/template/spec/containers/{container}"))
            .unwrap_or(&Json::Null);
        let namespace = doc.namespace.as_deref();
        let mut env = RunnerEnv {
            container_path: format!("spec.template.spec.containers[{container}]"),
            ..RunnerEnv::default()
        };
        let sources = c
            .get("envFrom")
            .and_then(Json::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (index, source) in sources.iter().enumerate() {
            let prefix = source
                .get("prefix")
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned();
            let name = |kind: &str| {
                source
                    .get(kind)
                    .and_then(|r| r.get("name"))
                    .and_then(Json::as_str)
            };
            if let Some(name) = name("configMapRef")
                && let Some(cm) = configmaps.find(namespace, name)?
            {
                let configmap = short_name(&cm.doc_ref);
                let vars = cm
                    .data
                    .iter()
                    .filter_map(|(key, v)| {
                        let var = Var {
                            value: Value::Literal(v.as_str()?.to_owned()),
                            origin: Origin::EnvFrom {
                                index,
                                configmap: configmap.clone(),
                                key: key.clone(),
                            },
                            via: None,
                        };
                        Some((format!("{prefix}{key}"), var))
                    })
                    .collect();
                env.layers.push(Layer::Known { vars });
                continue;
            }
            let description = match (name("configMapRef"), name("secretRef")) {
                (Some(n), _) => format!("configMapRef {n}, not in the stream"),
                (_, Some(n)) => format!("secretRef {n}"),
                _ => format!("source {index}"),
            };
            env.layers.push(Layer::Opaque {
                prefix,
                description,
            });
        }
        let entries = c
            .get("env")
            .and_then(Json::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (index, entry) in entries.iter().enumerate() {
            let Some(name) = entry.get("name").and_then(Json::as_str) else {
                continue;
            };
            let (value, via) = match entry.get("valueFrom").filter(|v| !v.is_null()) {
                Some(from) => match resolve_value_from(from, namespace, configmaps)? {
                    Resolved::Value(v @ Value::Literal(_)) => (v, Some(describe_value_from(from))),
                    Resolved::Value(v) => (v, None),
                    // An optional key that is missing: Kubernetes leaves the variable unset.
                    Resolved::Unset => continue,
                },
                None => (
                    Value::Literal(
                        entry
                            .get("value")
                            .and_then(Json::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    ),
                    None,
                ),
            };
            env.entries.push((
                name.to_owned(),
                Var {
                    value,
                    origin: Origin::Env { index },
                    via,
                },
            ));
        }
        Ok(env)
    }

    /// What the container's environment holds for `name`, after the drops planned so far.
    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        if !self.dropped.iter().any(|d| d == name)
            && let Some((_, var)) = self.entries.iter().rev().find(|(n, _)| n == name)
        {
            return Lookup::Set(var);
        }
        let mut maybe = Vec::new();
        for layer in self.layers.iter().rev() {
            match layer {
                Layer::Known { vars } => {
                    if let Some((_, var)) = vars.iter().find(|(n, _)| n == name) {
                        return if maybe.is_empty() {
                            Lookup::Set(var)
                        } else {
                            Lookup::Maybe(maybe)
                        };
                    }
                }
                Layer::Opaque {
                    prefix,
                    description,
                } if name.starts_with(prefix.as_str()) => {
                    maybe.push(description.as_str());
                }
                Layer::Opaque { .. } => {}
            }
        }
        if maybe.is_empty() {
            Lookup::Unset
        } else {
            Lookup::Maybe(maybe)
        }
    }

    /// Plans the removal of `name`'s `env` entries: later lookups see what is left (an
    /// `envFrom` value, or nothing).
    pub fn drop_entries(&mut self, name: &str) {
        if !self.dropped.iter().any(|d| d == name) {
            self.dropped.push(name.to_owned());
        }
    }

    /// The field path of `origin` (`spec.template.spec.containers[0].env[3]`).
    pub fn field(&self, origin: &Origin) -> String {
        match origin {
            Origin::Env { index } => format!("{}.env[{index}]", self.container_path),
            Origin::EnvFrom { index, .. } => format!("{}.envFrom[{index}]", self.container_path),
        }
    }
}

enum Resolved {
    Value(Value),
    Unset,
}

fn resolve_value_from(
    from: &Json,
    namespace: Option<&str>,
    configmaps: &StreamConfigMaps<'_, '_>,
) -> Result<Resolved, Error> {
    if let Some(r) = from.get("configMapKeyRef")
        && let (Some(name), Some(key)) = (
            r.get("name").and_then(Json::as_str),
            r.get("key").and_then(Json::as_str),
        )
        && let Some(cm) = configmaps.find(namespace, name)?
    {
        let optional = r.get("optional").and_then(Json::as_bool) == Some(true);
        return Ok(match cm.data.get(key).and_then(Json::as_str) {
            Some(v) => Resolved::Value(Value::Literal(v.to_owned())),
            None if optional => Resolved::Unset,
            None => Resolved::Value(Value::Unknown(format!(
                "configMapKeyRef {name}/{key}, a key ConfigMap {} in the stream does not have (the pod would not start)",
                short_name(&cm.doc_ref)
            ))),
        });
    }
    if let Some(path) = from.pointer("/fieldRef/fieldPath").and_then(Json::as_str)
        && path == "metadata.namespace"
        && let Some(ns) = namespace
    {
        return Ok(Resolved::Value(Value::Literal(ns.to_owned())));
    }
    let mut how = describe_value_from(from);
    if from.get("configMapKeyRef").is_some() {
        how.push_str(", not in the stream");
    }
    Ok(Resolved::Value(Value::Unknown(how)))
}

/// `secretKeyRef name/key`, `configMapKeyRef name/key`, `fieldRef path` — names only, never data.
pub fn describe_value_from(from: &Json) -> String {
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

/// `ns/name` of a document.
fn short_name(r: &DocRef) -> String {
    match &r.namespace {
        Some(ns) => format!("{ns}/{}", r.name),
        None => r.name.clone(),
    }
}
