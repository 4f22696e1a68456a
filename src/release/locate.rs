//! Finds gitlab-runner releases in a split stream: each runner Deployment paired with the
//! ConfigMap its `configmaps` volume mounts. Read-only.
//!
//! Recognition is structural, never by name (the umbrella chart has a `…-test-runner-…` Pod and a
//! `shared-secrets` ConfigMap that mention the runner):
//! - ConfigMap: `data` holds `entrypoint`, `check-live` and `config.template.toml` or `config.toml`;
//! - Deployment: a pod volume `configmaps` (a configMap) mounted at `/configmaps` by a container.
//!
//! Only documents that can be targets are parsed at all. A document's kind is read from its first
//! top-level `kind:` line (Helm, kubectl and every chart write it that way): other kinds are not
//! looked at again, a ConfigMap is parsed only if it contains `check-live`, a Deployment only if
//! it contains `/configmaps/entrypoint`; a document whose kind cannot be read from the text (JSON,
//! flow style, a quoted key) is scanned for both. So the hundreds of CRDs, Services and RBAC
//! documents of an umbrella stream cost a few bytes of reading each.

use std::collections::BTreeMap;

use memchr::memmem;
use serde_json::Value;

use crate::error::{DocRef, Error};
use crate::manifest::stream::Doc;
use crate::manifest::yaml;
use crate::spec::Selector;

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

/// Locates every runner release in `docs` that `selector` selects (the steps of [`Locator`] in a
/// row, for callers that hold a split stream).
pub fn find(docs: &[Doc<'_>], selector: Option<&Selector>) -> Result<Found, Error> {
    let mut locator = Locator::new(selector, true);
    for (pos, doc) in docs.iter().enumerate() {
        if locator.is_candidate(doc) {
            let value = parse_doc(doc)?;
            locator.classify(pos, doc, value);
        }
    }
    let scanned = docs.iter().filter(|d| !d.is_empty()).count();
    locator.finish(scanned)
}

/// [`find`] in steps that a caller can spread over threads: [`Locator::is_candidate`] on every
/// document (a few substring scans, while the document is in cache), [`parse_doc`] on the
/// candidates, [`Locator::classify`] on each parsed one, in stream order, and [`Locator::finish`].
pub struct Locator<'s> {
    selector: Option<&'s Selector>,
    /// Whether to look for ConfigMaps an earlier run generated (only a spec with certificates
    /// generates and updates them).
    find_generated: bool,
    cm_marker: memmem::Finder<'static>,
    deploy_marker: memmem::Finder<'static>,
    generated_marker: memmem::Finder<'static>,
    configmap_word: memmem::Finder<'static>,
    found: Found,
    configmaps: Vec<usize>,
    deployments: Vec<(usize, String, usize)>,
    /// A `kind: List` whose items hold a runner document: reported by [`Locator::finish`].
    runner_in_list: Option<DocRef>,
}

impl<'s> Locator<'s> {
    pub fn new(selector: Option<&'s Selector>, find_generated: bool) -> Self {
        Locator {
            selector,
            find_generated,
            cm_marker: memmem::Finder::new(b"check-live"),
            deploy_marker: memmem::Finder::new(b"/configmaps/entrypoint"),
            generated_marker: memmem::Finder::new(
                crate::release::trust::GENERATED_LABEL.as_bytes(),
            ),
            configmap_word: memmem::Finder::new(b"ConfigMap"),
            found: Found::default(),
            configmaps: Vec::new(),
            deployments: Vec::new(),
            runner_in_list: None,
        }
    }

    /// Whether `doc` may be a target and must be parsed.
    pub fn is_candidate(&self, doc: &Doc<'_>) -> bool {
        if doc.is_empty() {
            return false;
        }
        let bytes = doc.body.as_bytes();
        let (configmap, deployment) = match declared_kind(doc.body) {
            Some("ConfigMap") => (true, false),
            Some("Deployment") => (false, true),
            // A List may hold the runner documents as items (looked at, never patched).
            Some("List") => (true, true),
            Some(_) => return false,
            None => (true, true),
        };
        (configmap && self.find_generated && self.generated_marker.find(bytes).is_some())
            || (configmap && self.cm_marker.find(bytes).is_some())
            || (deployment && self.deploy_marker.find(bytes).is_some())
    }

    /// Whether `doc`, not a candidate, may be a ConfigMap that a runner Deployment refers to
    /// (`envFrom`, `configMapKeyRef`) or that a generated ConfigMap's name could clash with: such
    /// documents are kept unparsed and parsed only when a name is looked up
    /// ([`crate::release::configmaps`]).
    pub fn may_be_configmap(&self, doc: &Doc<'_>) -> bool {
        !doc.is_empty()
            && match declared_kind(doc.body) {
                // A `List` (or `ConfigMapList`) may hold ConfigMaps as items.
                Some(kind) => kind == "ConfigMap" || kind.ends_with("List"),
                // JSON, flow style…: only if the word is there (tiny documents stay unrecorded).
                None => self.configmap_word.find(doc.body.as_bytes()).is_some(),
            }
    }

    /// Records the candidate at position `pos` of the stream, parsed as `value`, if it is a runner
    /// ConfigMap, a runner Deployment or a ConfigMap an earlier run generated.
    pub fn classify(&mut self, pos: usize, doc: &Doc<'_>, value: Value) {
        let doc_ref = doc_ref(doc, &value);
        if self.find_generated
            && value.get("kind").and_then(Value::as_str) == Some("ConfigMap")
            && value
                .pointer("/metadata/labels")
                .and_then(|labels| labels.get(crate::release::trust::GENERATED_LABEL))
                .is_some()
        {
            self.found
                .generated
                .insert((doc_ref.namespace.clone(), doc_ref.name.clone()), pos);
        } else if is_runner_configmap(&value) {
            self.configmaps.push(pos);
        } else if let Some((cm_name, container)) = runner_deployment(&value) {
            self.deployments.push((pos, cm_name, container));
        } else if value.get("kind").and_then(Value::as_str) == Some("List") {
            let items = value.get("items").and_then(Value::as_array);
            if self.runner_in_list.is_none()
                && items.is_some_and(|items| {
                    items
                        .iter()
                        .any(|i| is_runner_configmap(i) || runner_deployment(i).is_some())
                })
            {
                self.runner_in_list = Some(doc_ref);
            }
            return;
        } else {
            return;
        }
        self.found.parsed.insert(pos, Parsed { value, doc_ref });
    }

    /// Pairs what was classified in a stream of which `scanned` documents are non-empty.
    pub fn finish(self, scanned: usize) -> Result<Found, Error> {
        let Locator {
            selector,
            mut found,
            configmaps,
            deployments,
            runner_in_list,
            ..
        } = self;
        if let Some(doc) = runner_in_list {
            return Err(Error::Pairing {
                doc: Box::new(doc),
                message: "holds a gitlab-runner ConfigMap or Deployment in its items; runner-patch patches top-level documents only: render the items as separate documents (helm template and kustomize do)".into(),
            });
        }
        found.scanned = scanned;
        // Paired ConfigMaps by position (a set, not a flag per document of the stream).
        let mut paired = std::collections::BTreeSet::new();
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
            if !paired.insert(configmap) {
                return Err(Error::Pairing {
                    doc: Box::new(d.doc_ref.clone()),
                    message: format!(
                        "a second Deployment mounts ConfigMap {cm_name:?}; cannot tell which release it belongs to"
                    ),
                });
            }
            if selects(selector, &found.parsed[&pos].value) {
                found.releases.push(Release {
                    configmap,
                    deployment: pos,
                    container,
                });
            }
        }
        for &c in &configmaps {
            if !paired.contains(&c) && selects(selector, &found.parsed[&c].value) {
                return Err(Error::Pairing {
                    doc: Box::new(found.parsed[&c].doc_ref.clone()),
                    message: "looks like a gitlab-runner ConfigMap, but no Deployment in the stream mounts it; patching the TOML alone would never roll the runner".into(),
                });
            }
        }
        Ok(found)
    }
}

/// The kind a document's text declares on its first `kind:` line at column 0, if the lines
/// before it are plain `key: value` lines (so that line cannot be inside a flow collection or a
/// multi-line scalar) and the value is a plain word. None means "cannot tell from the text".
fn declared_kind(body: &str) -> Option<&str> {
    let bytes = body.as_bytes();
    let at = if bytes.starts_with(b"kind:") {
        0
    } else {
        static KIND_LINE: std::sync::LazyLock<memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memmem::Finder::new(b"\nkind:"));
        KIND_LINE.find(bytes)? + 1
    };
    if bytes[..at].iter().any(|b| {
        matches!(
            b,
            b'{' | b'[' | b'"' | b'\'' | b'|' | b'>' | b'&' | b'*' | b'!'
        )
    }) {
        return None;
    }
    let line_end = memchr::memchr(b'\n', &bytes[at..]).map_or(bytes.len(), |i| at + i);
    let mut value = body[at + "kind:".len()..line_end].trim();
    // A comment starts at a `#` after a blank (a byte search: this runs on every document).
    if let Some(i) = memchr::memchr(b'#', value.as_bytes())
        && i > 0
        && matches!(value.as_bytes()[i - 1], b' ' | b'\t')
    {
        value = value[..i].trim_end();
    }
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            value = inner;
        }
    }
    let word = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value.chars().all(|c| c.is_ascii_alphanumeric());
    word.then_some(value)
}

/// The largest document runner-patch reads to edit: 1.5 MiB of YAML, etcd's default request
/// limit, so the API server could not store a larger object anyway (and a ConfigMap's data is
/// limited to 1 MiB). Checked on the text, before any of it is parsed.
pub const MAX_TARGET_BYTES: usize = 3 << 19;

/// The most YAML nodes (collections and scalars, keys included) read in a document to edit. The
/// chart's Deployment has about 150 and its ConfigMap about 20; a Deployment with 2,000 `env`
/// entries has about 10,000. Each node costs a few hundred bytes in each of the copies an edit
/// holds (the value read, the value patched, the editor's tree and the read-back), so this, not
/// the text limit, bounds the memory of a dense document such as `[a,a,a,…]` (docs/robustness.md).
pub const MAX_TARGET_NODES: usize = 20_000;

/// Parses a candidate document; an error names the document and never quotes a Secret. A
/// document over [`MAX_TARGET_BYTES`] or [`MAX_TARGET_NODES`] is refused, named from its text.
pub fn parse_doc(doc: &Doc<'_>) -> Result<Value, Error> {
    if doc.body.len() > MAX_TARGET_BYTES {
        return Err(Error::TooLarge {
            doc: Box::new(text_ref(doc)),
            message: format!(
                "its YAML has {} bytes, more than the 1.5 MiB ({MAX_TARGET_BYTES} bytes) runner-patch reads in a document it may edit (its text has the marks of a runner ConfigMap or Deployment); the Kubernetes API server stores no object that large (etcd's default request limit), so it is refused before it is read",
                doc.body.len()
            ),
        });
    }
    yaml::parse_with_node_limit(doc.yaml, MAX_TARGET_NODES).map_err(|e| {
        if yaml::is_node_limit(&e) {
            return Error::TooLarge {
                doc: Box::new(text_ref(doc)),
                message: format!(
                    "more than {} YAML nodes (collections and scalars, an alias counting as the nodes it repeats), the most runner-patch reads in a document it may edit (a runner Deployment has a few hundred); refused while reading, so that a huge document cannot exhaust memory",
                    yaml::thousands(MAX_TARGET_NODES)
                ),
            };
        }
        let (message, position) = yaml::describe_error(&e);
        let kind = guess_kind(doc.body);
        // Never echo anything from what may be a Secret.
        let message = if kind.as_deref() == Some("Secret") {
            "the error message is withheld because the document may be a Secret".to_owned()
        } else {
            // Positions inside the document, said as the stream's lines (as `line` is).
            yaml::shift_lines(&message, doc.body_line - 1)
        };
        Error::Yaml {
            index: doc.index,
            line: position.map_or(doc.body_line, |(l, _)| doc.body_line + l - 1),
            kind,
            message,
        }
    })
}

/// The reference of a document that is not parsed: kind, namespace and name read from its text
/// (the top-level `kind:` line and the `name:` and `namespace:` lines of its `metadata:` block),
/// each left out when the text does not say it plainly.
fn text_ref(doc: &Doc<'_>) -> DocRef {
    let (namespace, name) = metadata_from_text(doc.body);
    DocRef {
        index: doc.index,
        line: doc.line,
        kind: declared_kind(doc.body).unwrap_or("document").to_owned(),
        namespace,
        name: name.unwrap_or_default(),
        source: doc.source_comment().map(str::to_owned),
    }
}

/// `(namespace, name)` from a block-style `metadata:` mapping at column 0: its first-level
/// `namespace:` and `name:` lines with a plain or quoted one-line value.
fn metadata_from_text(body: &str) -> (Option<String>, Option<String>) {
    let start = if body.starts_with("metadata:") {
        0
    } else {
        match memmem::find(body.as_bytes(), b"\nmetadata:") {
            Some(i) => i + 1,
            None => return (None, None),
        }
    };
    let (mut namespace, mut name) = (None, None);
    let mut child_indent = None;
    for line in body[start..].lines().skip(1) {
        let content = line.trim_start_matches(' ');
        if content.trim().is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if indent == 0 {
            break;
        }
        if *child_indent.get_or_insert(indent) != indent {
            continue;
        }
        let slot = if let Some(v) = content.strip_prefix("namespace:") {
            (&mut namespace, v)
        } else if let Some(v) = content.strip_prefix("name:") {
            (&mut name, v)
        } else {
            continue;
        };
        *slot.0 = plain_value(slot.1);
        if namespace.is_some() && name.is_some() {
            break;
        }
    }
    (namespace, name)
}

/// A one-line scalar written plainly or in quotes, without a trailing comment; None for any
/// other shape (a block, a flow collection, an alias, a tag).
fn plain_value(text: &str) -> Option<String> {
    let mut value = text.trim();
    if let Some(i) = value.find(" #") {
        value = value[..i].trim_end();
    }
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return (!inner.contains(['"', '\'', '\\'])).then(|| inner.to_owned());
        }
    }
    let plain =
        !value.is_empty() && !value.starts_with(['{', '[', '|', '>', '&', '*', '!', '"', '\'']);
    plain.then(|| value.to_owned())
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
/// runner container (see [`runner_container`]).
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
    let name = v.pointer("/metadata/name").and_then(Value::as_str);
    let container = runner_container(pod.get("containers")?.as_array()?, name)?;
    Some((cm, container))
}

/// The runner container, found by what it does rather than where it is listed: among the
/// containers that mount the `configmaps` volume at `/configmaps`, the one that runs the chart's
/// entrypoint (`/configmaps/entrypoint` in its command or args); if several do, the one named like
/// the Deployment (the chart names its container after the fullname). Without an entrypoint
/// (a custom command), the one named like the Deployment, or the only one mounting `configmaps`.
/// A sidecar listed first that also mounts `configmaps` is never taken for the runner.
pub fn runner_container(containers: &[Value], deployment_name: Option<&str>) -> Option<usize> {
    let mounts_configmaps = |c: &Value| {
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
    };
    let runs_entrypoint = |c: &Value| {
        ["command", "args"].iter().any(|k| {
            c.get(*k).and_then(Value::as_array).is_some_and(|words| {
                words.iter().any(|w| {
                    w.as_str()
                        .is_some_and(|w| w.trim_end().ends_with("/configmaps/entrypoint"))
                })
            })
        })
    };
    let named = |c: &Value| {
        deployment_name.is_some_and(|n| c.get("name").and_then(Value::as_str) == Some(n))
    };
    let candidates: Vec<usize> = (0..containers.len())
        .filter(|&i| mounts_configmaps(&containers[i]))
        .collect();
    let running: Vec<usize> = candidates
        .iter()
        .copied()
        .filter(|&i| runs_entrypoint(&containers[i]))
        .collect();
    let pick = |among: &[usize]| -> Option<usize> {
        match among {
            [one] => Some(*one),
            [] => None,
            several => several
                .iter()
                .copied()
                .find(|&i| named(&containers[i]))
                .or(Some(several[0])),
        }
    };
    if !running.is_empty() {
        return pick(&running);
    }
    match candidates.as_slice() {
        [one] => Some(*one),
        several => several.iter().copied().find(|&i| named(&containers[i])),
    }
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

#[cfg(test)]
mod tests {
    use super::{declared_kind, metadata_from_text, runner_container};
    use serde_json::json;

    #[test]
    fn finds_the_runner_container_by_what_it_runs() {
        let mount = json!([{"name": "configmaps", "mountPath": "/configmaps"}]);
        let sidecar = json!({"name": "sidecar", "command": ["sh", "-c", "cat /configmaps/x"], "volumeMounts": mount});
        let runner = json!({"name": "gitlab-runner", "command": ["/usr/bin/dumb-init", "--", "/bin/bash", "/configmaps/entrypoint"], "volumeMounts": mount});
        let other = json!({"name": "other"});
        assert_eq!(
            runner_container(&[sidecar.clone(), other.clone(), runner.clone()], Some("x")),
            Some(2)
        );
        // Without the entrypoint: by name, or the only one mounting configmaps.
        let custom =
            json!({"name": "gitlab-runner", "command": ["/my-start"], "volumeMounts": mount});
        assert_eq!(
            runner_container(&[sidecar.clone(), custom.clone()], Some("gitlab-runner")),
            Some(1)
        );
        assert_eq!(runner_container(&[other, custom.clone()], None), Some(1));
        assert_eq!(runner_container(&[sidecar, custom], None), None);
        // Two that run the entrypoint: the one named like the Deployment.
        let mut twin = runner.clone();
        twin["name"] = json!("twin");
        assert_eq!(
            runner_container(&[twin, runner], Some("gitlab-runner")),
            Some(1)
        );
    }

    #[test]
    fn names_a_document_from_its_metadata_lines() {
        assert_eq!(
            metadata_from_text(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    name: no\n  # c\n  name: gitlab-runner # c\n  namespace: \"gitlab-test\"\ndata: {}\n"
            ),
            (Some("gitlab-test".into()), Some("gitlab-runner".into()))
        );
        assert_eq!(
            metadata_from_text("metadata:\n  name: x\nspec:\n  namespace: y\n"),
            (None, Some("x".into()))
        );
        assert_eq!(
            metadata_from_text("metadata: {name: x}\nname: y\n"),
            (None, None)
        );
        assert_eq!(metadata_from_text("kind: List\n"), (None, None));
        assert_eq!(
            metadata_from_text("metadata:\n  name: *a\n  namespace: '\\'\n"),
            (None, None)
        );
    }

    #[test]
    fn reads_the_kind_from_the_text_only_when_it_is_certain() {
        assert_eq!(
            declared_kind("apiVersion: v1\nkind: ConfigMap\n"),
            Some("ConfigMap")
        );
        assert_eq!(
            declared_kind("kind: \"Deployment\" # c\r\nspec: {}\n"),
            Some("Deployment")
        );
        assert_eq!(
            declared_kind("apiVersion: v1\nkind: 'Service'\n"),
            Some("Service")
        );
        // JSON, a quoted key, no kind line, or a line that may sit inside a flow collection.
        assert_eq!(declared_kind("{\"kind\": \"ConfigMap\"}\n"), None);
        assert_eq!(declared_kind("\"kind\": ConfigMap\n"), None);
        assert_eq!(declared_kind("apiVersion: v1\n"), None);
        assert_eq!(
            declared_kind("metadata: {name: x,\nkind: Service\n}\nkind: Deployment\n"),
            None
        );
        assert_eq!(declared_kind("kind: !!str ConfigMap\n"), None);
        assert_eq!(declared_kind("kind: *k\n"), None);
        // Not at column 0: not the document's kind.
        assert_eq!(declared_kind("spec:\n  kind: Service\n"), None);
    }
}
