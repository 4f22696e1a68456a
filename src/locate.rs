//! Finds gitlab-runner releases in a split stream: each runner Deployment paired with the
//! ConfigMap its `configmaps` volume mounts. Read-only.
//!
//! Recognition is structural, never by name (the umbrella chart has a `…-test-runner-…` Pod and a
//! `shared-secrets` ConfigMap that mention the runner):
//! - ConfigMap: `data` holds `entrypoint`, `check-live` and `config.template.toml` or `config.toml`;
//! - Deployment: a pod volume `configmaps` (a configMap) mounted at `/configmaps` by a container.
//!
//! Only documents containing `check-live` or `/configmaps/entrypoint` are parsed at all, so the
//! hundreds of other documents in an umbrella stream cost one substring scan each.

use std::collections::BTreeMap;

use memchr::memmem;
use serde_json::Value;

use crate::error::{DocRef, Error};
use crate::spec::Selector;
use crate::stream::Doc;
use crate::yaml;

/// Helm 4 records each document's template path in this annotation (and removes it afterwards).
pub const FILENAME_ANNOTATION: &str = "postrenderer.helm.sh/postrender-filename";

/// A parsed target document.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub value: Value,
    pub doc_ref: DocRef,
}

/// One gitlab-runner release: positions (0-based, in the stream's documents) of its two documents.
#[derive(Debug, Clone)]
pub struct Release {
    pub configmap: usize,
    pub deployment: usize,
    /// Index of the runner container in the pod template.
    pub container: usize,
}

/// What was found: selected releases and the parsed documents they refer to.
#[derive(Debug, Default)]
pub struct Found {
    pub releases: Vec<Release>,
    pub parsed: BTreeMap<usize, Parsed>,
    /// Number of non-empty documents scanned.
    pub scanned: usize,
    /// ConfigMaps an earlier run generated (`runner-patch.dev/generated`), by (namespace, name).
    pub generated: BTreeMap<(Option<String>, String), usize>,
}

/// Locates every runner release in `docs` that `selector` selects.
pub fn find(docs: &[Doc<'_>], selector: Option<&Selector>) -> Result<Found, Error> {
    let mut locator = Locator::new(selector);
    for (pos, doc) in docs.iter().enumerate() {
        locator.observe(pos, doc)?;
    }
    locator.finish(docs.len())
}

/// [`find`] one document at a time, for a caller that splits lazily: each document is checked
/// for the markers while it is still in cache.
pub struct Locator<'s> {
    selector: Option<&'s Selector>,
    cm_marker: memmem::Finder<'static>,
    deploy_marker: memmem::Finder<'static>,
    generated_marker: memmem::Finder<'static>,
    found: Found,
    configmaps: Vec<usize>,
    deployments: Vec<(usize, String, usize)>,
}

impl<'s> Locator<'s> {
    pub fn new(selector: Option<&'s Selector>) -> Self {
        Locator {
            selector,
            cm_marker: memmem::Finder::new(b"check-live"),
            deploy_marker: memmem::Finder::new(b"/configmaps/entrypoint"),
            generated_marker: memmem::Finder::new(crate::trust::GENERATED_LABEL.as_bytes()),
            found: Found::default(),
            configmaps: Vec::new(),
            deployments: Vec::new(),
        }
    }

    /// Looks at the document at position `pos` of the stream.
    pub fn observe(&mut self, pos: usize, doc: &Doc<'_>) -> Result<(), Error> {
        if doc.is_empty() {
            return Ok(());
        }
        let found = &mut self.found;
        found.scanned += 1;
        let bytes = doc.body.as_bytes();
        let maybe_generated = self.generated_marker.find(bytes).is_some();
        if !maybe_generated
            && self.cm_marker.find(bytes).is_none()
            && self.deploy_marker.find(bytes).is_none()
        {
            return Ok(());
        }
        let value = parse_doc(doc)?;
        let doc_ref = doc_ref(doc, &value);
        if maybe_generated
            && value.get("kind").and_then(Value::as_str) == Some("ConfigMap")
            && value
                .pointer(&format!(
                    "/metadata/labels/{}",
                    crate::trust::GENERATED_LABEL.replace('/', "~1")
                ))
                .is_some()
        {
            found
                .generated
                .insert((doc_ref.namespace.clone(), doc_ref.name.clone()), pos);
        } else if is_runner_configmap(&value) {
            self.configmaps.push(pos);
        } else if let Some((cm_name, container)) = runner_deployment(&value) {
            self.deployments.push((pos, cm_name, container));
        } else {
            return Ok(());
        }
        found.parsed.insert(pos, Parsed { value, doc_ref });
        Ok(())
    }

    /// Pairs what was seen in a stream of `count` documents.
    pub fn finish(self, count: usize) -> Result<Found, Error> {
        let Locator {
            selector,
            mut found,
            configmaps,
            deployments,
            ..
        } = self;
        let mut paired = vec![false; count];
        for (pos, cm_name, container) in deployments {
            let d = &found.parsed[&pos];
            let ns = &d.doc_ref.namespace;
            let matches: Vec<usize> = configmaps
                .iter()
                .copied()
                .filter(|c| {
                    let r = &found.parsed[c].doc_ref;
                    r.name == cm_name && &r.namespace == ns
                })
                .collect();
            let configmap = match matches.as_slice() {
                [one] => *one,
                [] => {
                    return Err(Error::Pairing {
                        doc: Box::new(d.doc_ref.clone()),
                        message: format!(
                            "mounts ConfigMap {cm_name:?} as volume `configmaps`, but no gitlab-runner ConfigMap of that name{} is in the stream",
                            ns.as_ref()
                                .map(|n| format!(" in namespace {n:?}"))
                                .unwrap_or_default()
                        ),
                    });
                }
                [first, ..] => {
                    return Err(Error::Pairing {
                        doc: Box::new(found.parsed[first].doc_ref.clone()),
                        message: format!(
                            "ConfigMap {cm_name:?} appears more than once in the stream"
                        ),
                    });
                }
            };
            if paired[configmap] {
                return Err(Error::Pairing {
                    doc: Box::new(d.doc_ref.clone()),
                    message: format!(
                        "a second Deployment mounts ConfigMap {cm_name:?}; cannot tell which release it belongs to"
                    ),
                });
            }
            paired[configmap] = true;
            if selects(selector, &found.parsed[&pos].value) {
                found.releases.push(Release {
                    configmap,
                    deployment: pos,
                    container,
                });
            }
        }
        for &c in &configmaps {
            if !paired[c] && selects(selector, &found.parsed[&c].value) {
                return Err(Error::Pairing {
                    doc: Box::new(found.parsed[&c].doc_ref.clone()),
                    message: "looks like a gitlab-runner ConfigMap, but no Deployment in the stream mounts it; patching the TOML alone would never roll the runner".into(),
                });
            }
        }
        Ok(found)
    }
}

fn parse_doc(doc: &Doc<'_>) -> Result<Value, Error> {
    yaml::parse(doc.body).map_err(|e| {
        let (message, position) = yaml::describe_error(&e);
        let kind = guess_kind(doc.body);
        // Never echo anything from what may be a Secret.
        let message = if kind.as_deref() == Some("Secret") {
            "the error message is withheld because the document may be a Secret".to_owned()
        } else {
            message
        };
        Error::Yaml {
            index: doc.index,
            line: position.map_or(doc.body_line, |(l, _)| doc.body_line + l - 1),
            kind,
            message,
        }
    })
}

/// The top-level `kind:` of a document that could not be parsed, from its text.
fn guess_kind(body: &str) -> Option<String> {
    body.lines()
        .find_map(|l| l.strip_prefix("kind:"))
        .map(|k| k.trim().trim_matches(['"', '\'']).to_owned())
}

/// Builds the reference used in messages.
pub fn doc_ref(doc: &Doc<'_>, value: &Value) -> DocRef {
    let meta = value.get("metadata");
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    DocRef {
        index: doc.index,
        line: doc.line,
        kind: text(value.get("kind")).unwrap_or_else(|| "document".into()),
        namespace: text(meta.and_then(|m| m.get("namespace"))),
        name: text(meta.and_then(|m| m.get("name"))).unwrap_or_default(),
        source: doc.source_comment().map(str::to_owned).or_else(|| {
            text(meta.and_then(|m| {
                m.pointer(&format!(
                    "/annotations/{}",
                    FILENAME_ANNOTATION.replace('/', "~1")
                ))
            }))
        }),
    }
}

fn is_runner_configmap(v: &Value) -> bool {
    if v.get("kind").and_then(Value::as_str) != Some("ConfigMap") {
        return false;
    }
    let Some(data) = v.get("data").and_then(Value::as_object) else {
        return false;
    };
    data.contains_key("entrypoint")
        && data.contains_key("check-live")
        && (data.contains_key("config.template.toml") || data.contains_key("config.toml"))
}

/// For a runner Deployment: the ConfigMap name behind its `configmaps` volume and the index of the
/// container that mounts it at `/configmaps`.
fn runner_deployment(v: &Value) -> Option<(String, usize)> {
    if v.get("kind").and_then(Value::as_str) != Some("Deployment") {
        return None;
    }
    let pod = v.pointer("/spec/template/spec")?;
    let cm = pod
        .get("volumes")?
        .as_array()?
        .iter()
        .find(|vol| vol.get("name").and_then(Value::as_str) == Some("configmaps"))?
        .pointer("/configMap/name")?
        .as_str()?
        .to_owned();
    let container = pod.get("containers")?.as_array()?.iter().position(|c| {
        c.get("volumeMounts")
            .and_then(Value::as_array)
            .is_some_and(|mounts| {
                mounts.iter().any(|m| {
                    m.get("name").and_then(Value::as_str) == Some("configmaps")
                        && m.get("mountPath")
                            .and_then(Value::as_str)
                            .map(|p| p.trim_end_matches('/'))
                            == Some("/configmaps")
                })
            })
    })?;
    Some((cm, container))
}

fn selects(selector: Option<&Selector>, v: &Value) -> bool {
    let Some(sel) = selector else { return true };
    let meta = v.get("metadata");
    let field = |ptr: &str| meta.and_then(|m| m.pointer(ptr)).and_then(Value::as_str);
    sel.release
        .as_deref()
        .is_none_or(|r| field("/labels/release") == Some(r))
        && sel
            .name
            .as_deref()
            .is_none_or(|n| field("/name") == Some(n))
        && sel
            .namespace
            .as_deref()
            .is_none_or(|n| field("/namespace") == Some(n))
}
