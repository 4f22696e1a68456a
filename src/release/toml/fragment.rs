//! The `runnerToml` fragment of the spec: parsed once, checked against the runner's keys and
//! types (the schema derived from gitlab-runner `common/config.go`), kept as a toml_edit table.

use std::sync::OnceLock;

use serde_json::Value as Json;
use toml_edit::{DocumentMut, Item, Table, Value};

use super::line_of;
use crate::spec::schema;

/// The runner's TOML keys and types (derived from gitlab-runner `common/config.go`, 19.4), without
/// the descriptions: `schema/runner-template.toml-schema.json` minified and cut into one line per
/// definition and per property ([`schema::LazyDefs`]), which a unit test keeps in step.
/// Parsing the full 80 KB file would cost more than patching an umbrella stream.
const RUNNER_SCHEMA: &str = include_str!("../../../schema/runner-template.defs");

/// Drops `description` keywords and formatting from the runner schema and writes it in the
/// line format of [`schema::LazyDefs`] (see `RUNNER_SCHEMA`).
pub fn minify_runner_schema(full: &str) -> String {
    let value: Json = serde_json::from_str(full).expect("schema is JSON");
    schema::LazyDefs::write_without_descriptions(&value)
}

/// A TOML fragment to merge into every `[[runners]]` entry, checked against the runner's keys.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub(super) runner: Table,
}

impl Fragment {
    /// A fragment from a `[runners]` table that the caller has already checked against the
    /// runner's keys (as [`Fragment::parse`] does).
    pub fn from_checked_table(runner: Table) -> Fragment {
        Fragment { runner }
    }

    /// The `[runners]` table merged into every entry.
    pub fn runner_table(&self) -> &Table {
        &self.runner
    }

    /// Parses `text` (`[runners.kubernetes]` … or one `[[runners]]`), rejecting keys the runner
    /// would silently drop, with the closest known key.
    pub fn parse(text: &str) -> Result<Fragment, String> {
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let line = e.span().map(|s| line_of(text, s.start));
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        let mut runner = None;
        for (key, item) in doc.iter() {
            if key != "runners" {
                return Err(format!(
                    "unknown top-level key `{key}`: the fragment is merged into each [[runners]] entry, so write it under [runners] (global settings belong in the chart's values)"
                ));
            }
            runner = match item {
                Item::Table(t) => Some(t.clone()),
                Item::ArrayOfTables(a) if a.len() == 1 => a.get(0).cloned(),
                _ => return Err("`runners` must be a table ([runners.kubernetes] …) or a single [[runners]] entry".into()),
            };
        }
        let runner = runner.unwrap_or_default();
        let json = serde_json::json!({ "runners": [table_to_json(&runner)] });
        let problems = schema::check(&json, runner_schema(), false);
        if !problems.is_empty() {
            let all: Vec<String> = problems
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.path.replacen("runners[0]", "runners", 1),
                        p.message
                    )
                })
                .collect();
            return Err(all.join("; "));
        }
        Ok(Fragment { runner })
    }
}

fn runner_schema() -> &'static schema::LazyDefs {
    static SCHEMA: OnceLock<schema::LazyDefs> = OnceLock::new();
    SCHEMA.get_or_init(|| schema::LazyDefs::new(RUNNER_SCHEMA))
}

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
        let err = Fragment::parse("[runners]\ntls_ca_file = \"/x\"\n").unwrap_err();
        assert!(err.contains("tls-ca-file"), "{err}");
        let err = Fragment::parse("[runners.kubernetes]\nprivilegd = true\n").unwrap_err();
        assert!(err.contains("privileged"), "{err}");
        assert!(Fragment::parse("concurrent = 3\n").is_err());
    }
}
