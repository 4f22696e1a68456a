//! KRM function mode (kustomize `--enable-exec`, kpt): a `ResourceList` in, a `ResourceList` out.
//!
//! The items are turned into a plain stream, patched by the same [`crate::patch`] as every other
//! mode, and read back; items the patch does not touch come back as the same values, annotations
//! (kustomize's `config.kubernetes.io/*` and `internal.config.kubernetes.io/*`) included. On
//! failure the output still is a `ResourceList`, with the items unchanged and an error in
//! `results`, and the caller exits non-zero (kustomize only looks at the exit code). Warnings go
//! into `results` with severity `warning`, as kyaml's framework reports them.

use serde_json::{Map, Value, json};

use crate::error::{DocRef, Error};
use crate::manifest::{stream, yaml};
use crate::spec;

/// True when the first document of `input` is a `kind: ResourceList` (KRM function input).
pub fn is_resource_list(input: &[u8]) -> bool {
    stream::documents(input)
        .1
        .map_while(Result::ok)
        .find(|d| !d.is_empty())
        .is_some_and(|d| d.body.lines().any(|l| l.trim_end() == "kind: ResourceList"))
}

/// Where certificate `file:` entries are read: the working directory, confined to it (the
/// functionConfig, envs included, is written by the kustomization's author, so nothing widens it).
pub type ReadFile<'r> = &'r spec::files::FileRoot;

/// What a function run answers.
#[derive(Debug)]
pub struct Outcome {
    /// The output ResourceList (also on failure).
    pub output: String,
    /// Warnings, also listed in the output's `results`.
    pub warnings: Vec<String>,
    /// Why the run failed, also listed in the output's `results`.
    pub error: Option<Error>,
}

/// Runs the function over a ResourceList text at time `now`.
pub fn run(input: &str, read: ReadFile<'_>, now: i64) -> Outcome {
    let done = |items, warnings: Vec<String>, error: Option<Error>| Outcome {
        output: render(items, &warnings, error.as_ref()),
        warnings,
        error,
    };
    let list: Value = match yaml::parse(input) {
        Ok(v) => v,
        Err(e) => {
            let (message, position) = yaml::describe_error(&e);
            let err = Error::Yaml {
                index: 1,
                line: position.map_or(1, |p| p.0),
                kind: Some("ResourceList".into()),
                message,
            };
            return done(Vec::new(), Vec::new(), Some(err));
        }
    };
    let items: Vec<Value> = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut warnings = Vec::new();
    match patch_items(&list, &items, read, now, &mut warnings) {
        Ok(out) => done(out, warnings, None),
        Err(err) => done(items, warnings, Some(err)),
    }
}

fn patch_items(
    list: &Value,
    items: &[Value],
    read: ReadFile<'_>,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<Vec<Value>, Error> {
    if list.is_null() {
        return Err(Error::Input {
            message: "no input: the input is empty, not a ResourceList".into(),
        });
    }
    if list.get("kind").and_then(Value::as_str) != Some("ResourceList") {
        return Err(Error::Input {
            message: "the input is not a ResourceList (its kind is not ResourceList)".into(),
        });
    }
    let config = list.get("functionConfig").cloned().unwrap_or(Value::Null);
    let mut draft = spec::from_value(&config, "functionConfig")?;
    spec::resolve_certificate_files(&mut draft.spec, read, "functionConfig")?;
    let (problems, found) = spec::check_certificates(&draft.spec, now);
    warnings.extend(found);
    if !problems.is_empty() {
        return Err(Error::Spec {
            origin: "functionConfig".into(),
            problems,
        });
    }
    let spec = draft.compile()?;
    warnings_are_errors(&spec, warnings)?;
    let mut text = String::new();
    for item in items {
        text.push_str("---\n");
        let emitted = yaml::emit(item).map_err(|message| Error::Fidelity {
            doc: Box::new(DocRef::default()),
            message,
        })?;
        text.push_str(&emitted);
    }
    let outcome = crate::patch(&text, &spec)?;
    warnings.extend(outcome.warnings);
    warnings_are_errors(&spec, warnings)?;
    let out_stream = stream::split(&outcome.output);
    out_stream
        .docs
        .iter()
        .filter(|d| !d.is_empty())
        .map(|d| {
            yaml::parse(d.body).map_err(|e| Error::Yaml {
                index: d.index,
                line: d.body_line,
                kind: None,
                message: yaml::shift_lines(&yaml::describe_error(&e).0, d.body_line - 1),
            })
        })
        .collect()
}

/// With `warningsAsErrors`, any warning (each one listed in `results`) fails the run.
fn warnings_are_errors(spec: &spec::CompiledPatch, warnings: &[String]) -> Result<(), Error> {
    if spec.warnings_as_errors && !warnings.is_empty() {
        return Err(spec_error(
            "spec.warningsAsErrors",
            format!(
                "is true and there are {} warning(s), listed in results",
                warnings.len()
            ),
        ));
    }
    Ok(())
}

fn spec_error(path: &str, message: String) -> Error {
    Error::Spec {
        origin: "functionConfig".into(),
        problems: vec![crate::error::SpecProblem {
            path: path.into(),
            position: None,
            message,
        }],
    }
}

fn render(items: Vec<Value>, warnings: &[String], err: Option<&Error>) -> String {
    let mut list = Map::new();
    list.insert("apiVersion".into(), json!("config.kubernetes.io/v1"));
    list.insert("kind".into(), json!("ResourceList"));
    list.insert("items".into(), Value::Array(items));
    let mut results: Vec<Value> = warnings
        .iter()
        .map(|w| json!({ "message": w, "severity": "warning" }))
        .collect();
    // One result per problem of an invalid spec, each with its field.
    if let Some(Error::Spec { origin, problems }) = err {
        for p in problems {
            let mut result = Map::new();
            result.insert(
                "message".into(),
                json!(format!("invalid spec {origin}: {p}")),
            );
            result.insert("severity".into(), json!("error"));
            if !p.path.is_empty() {
                result.insert("field".into(), json!({ "path": p.path }));
            }
            results.push(Value::Object(result));
        }
    } else if let Some(e) = err {
        let mut result = Map::new();
        result.insert("message".into(), json!(e.to_string()));
        result.insert("severity".into(), json!("error"));
        if let Some(doc) = doc_of(e) {
            let mut r = Map::new();
            r.insert("kind".into(), json!(doc.kind));
            r.insert("name".into(), json!(doc.name));
            if let Some(ns) = &doc.namespace {
                r.insert("namespace".into(), json!(ns));
            }
            result.insert("resourceRef".into(), Value::Object(r));
        }
        if let Error::Field { field, .. } = e {
            result.insert("field".into(), json!({ "path": field }));
        }
        results.push(Value::Object(result));
    }
    if !results.is_empty() {
        list.insert("results".into(), Value::Array(results));
    }
    yaml::emit(&Value::Object(list))
        .unwrap_or_else(|m| format!("# runner-patch: could not render the ResourceList: {m}\n"))
}

fn doc_of(e: &Error) -> Option<&DocRef> {
    match e {
        Error::Field { doc, .. }
        | Error::Toml { doc, .. }
        | Error::Pairing { doc, .. }
        | Error::TooLarge { doc, .. }
        | Error::Fidelity { doc, .. } => Some(doc),
        _ => None,
    }
}
