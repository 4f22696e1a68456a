//! The spec's `runnerToml` fragment, parsed once when the spec is compiled: a TOML table checked
//! against the runner's key list, which the TOML editor ([`crate::release::toml`]) merges into
//! every `[[runners]]` entry as it is.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value as Json;
use toml_edit::{DocumentMut, Item, Table, Value};

use crate::spec::{runner, schema};

/// A `runnerToml` fragment: what to merge into each `[[runners]]` entry, keys known to the runner.
#[derive(Debug, Clone)]
pub struct Fragment {
    runner: Table,
    /// Every value it sets, by dotted path (see [`Fragment::values`]).
    values: Vec<(String, Json)>,
}

/// How many fragments have been parsed in this process (the compiled spec parses its fragment
/// once per run; a test holds the pipeline to that).
static PARSES: AtomicUsize = AtomicUsize::new(0);

/// The number of [`Fragment::parse`] calls so far in this process.
pub fn parse_count() -> usize {
    PARSES.load(Ordering::Relaxed)
}

impl Fragment {
    /// Parses `text` (`[runners.kubernetes]` … or one `[[runners]]`), rejecting keys the runner
    /// would silently drop (one problem per key, with the closest known key).
    pub fn parse(text: &str) -> Result<Fragment, Vec<String>> {
        PARSES.fetch_add(1, Ordering::Relaxed);
        let doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let message = e.message().trim_end().to_owned();
            vec![match e.span().map(|s| line_of(text, s.start)) {
                Some(l) => format!("TOML line {l}: {message}"),
                None => message,
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
        // The runner's keys are checked even next to other problems: one run lists them all.
        let runner = runner.unwrap_or_default();
        let json = serde_json::json!({ "runners": [table_to_json(&runner)] });
        problems.extend(
            schema::check(&json, runner::schema(), false)
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}",
                        p.path.replacen("runners[0]", "runners", 1),
                        p.message
                    )
                }),
        );
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Fragment::from_checked_table(runner))
    }

    /// A fragment from a `[runners]` table that the caller has already checked against the
    /// runner's keys (as [`Fragment::parse`] does), e.g. one compiled from other spec fields.
    pub fn from_checked_table(runner: Table) -> Fragment {
        let mut values = Vec::new();
        collect_values(&runner, "", &mut values);
        Fragment { runner, values }
    }

    /// The table merged into each `[[runners]]` entry.
    pub fn runner(&self) -> &Table {
        &self.runner
    }

    /// Every value the fragment sets, as a dotted path under `[[runners]]` (in the fragment's
    /// spelling) and its value; tables, inline tables and dotted keys are walked alike (the runner
    /// reads them alike). Arrays of tables are values of their own (no env var can set them).
    pub fn values(&self) -> &[(String, Json)] {
        &self.values
    }
}

fn collect_values(table: &Table, prefix: &str, out: &mut Vec<(String, Json)>) {
    for (key, item) in table.iter() {
        let path = if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        };
        match item {
            Item::Table(t) => collect_values(t, &path, out),
            Item::Value(Value::InlineTable(t)) => {
                collect_values(&t.clone().into_table(), &path, out)
            }
            other => out.push((path, item_to_json(other))),
        }
    }
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

/// A TOML table as JSON (datetimes as strings), for schema checks and comparisons.
pub fn table_to_json(t: &Table) -> Json {
    Json::Object(
        t.iter()
            .map(|(k, v)| (k.to_owned(), item_to_json(v)))
            .collect(),
    )
}

/// A TOML item as JSON (see [`table_to_json`]).
pub fn item_to_json(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => value_to_json(v),
        Item::Table(t) => table_to_json(t),
        Item::ArrayOfTables(a) => Json::Array(a.iter().map(table_to_json).collect()),
    }
}

/// A TOML value as JSON (see [`table_to_json`]).
pub fn value_to_json(v: &Value) -> Json {
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
    fn rejects_unknown_keys_one_problem_each_with_suggestion() {
        let err = Fragment::parse(
            "[runners]\ntls_ca_file = \"/x\"\n[runners.kubernetes]\nprivilegd = true\n",
        )
        .unwrap_err();
        assert_eq!(err.len(), 2, "{err:?}");
        assert!(err[0].contains("tls-ca-file"), "{err:?}");
        assert!(err[1].contains("privileged"), "{err:?}");
        assert!(Fragment::parse("concurrent = 3\n").is_err());
    }

    #[test]
    fn checks_cache_and_referees_keys() {
        let err = Fragment::parse("[runners.cache]\nTyp = \"s3\"\n").unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert!(
            err[0].contains("runners.cache.Typ") && err[0].contains("`Type`"),
            "{err:?}"
        );
        let err =
            Fragment::parse("[runners.cache.s3]\nServerAdress = \"s3.example.com\"\n").unwrap_err();
        assert!(err[0].contains("`ServerAddress`"), "{err:?}");
        let err = Fragment::parse("[runners.referees.metrics]\nprometheus_adress = \"x:9090\"\n")
            .unwrap_err();
        assert!(err[0].contains("`prometheus_address`"), "{err:?}");
        assert!(
            Fragment::parse("[runners.cache]\nType = \"s3\"\n[runners.cache.s3]\nServerAddress = \"s3.example.com\"\nBucketName = \"b\"\n")
                .is_ok()
        );
    }

    /// The two generated descriptions of the runner agree: every key `register` reads an env var
    /// for is a key the schema knows, with a value of the kind the env table says.
    #[test]
    fn every_env_bound_key_is_in_the_schema() {
        use crate::spec::runner::{EnvKind, env_bindings};
        let mut refused = Vec::new();
        for b in env_bindings() {
            let (table, leaf) = match b.key.rsplit_once('.') {
                Some((t, l)) => (format!("[runners.{t}]"), l),
                None => ("[runners]".to_owned(), b.key),
            };
            let value = match b.kind {
                // Values every enum of the schema accepts.
                EnvKind::String | EnvKind::Duration => "\"\"",
                EnvKind::Int => "1",
                EnvKind::Bool => "true",
                EnvKind::List => "[\"always\"]",
                EnvKind::Map => "{}",
            };
            let key = if leaf.contains('-') {
                format!("\"{leaf}\"")
            } else {
                leaf.to_owned()
            };
            if let Err(e) = Fragment::parse(&format!("{table}\n{key} = {value}\n")) {
                refused.push(format!("{} ({}): {e:?}", b.key, b.env));
            }
        }
        assert!(refused.is_empty(), "{refused:#?}");
    }

    #[test]
    fn a_checked_table_lists_its_values_like_a_parsed_one() {
        let parsed = Fragment::parse("[runners.kubernetes]\nprivileged = true\n").unwrap();
        let built = Fragment::from_checked_table(parsed.runner().clone());
        assert_eq!(built.values(), parsed.values());
        assert_eq!(built.runner().to_string(), parsed.runner().to_string());
    }

    #[test]
    fn reports_syntax_errors_with_the_toml_line() {
        let err = Fragment::parse("[runners.kubernetes]\nprivileged = \n").unwrap_err();
        assert!(err[0].starts_with("TOML line 2: "), "{err:?}");
    }

    #[test]
    fn lists_values_in_every_table_form() {
        let f = Fragment::parse("[runners]\nkubernetes = { privileged = true }\n").unwrap();
        assert_eq!(
            f.values(),
            [("kubernetes.privileged".to_owned(), Json::Bool(true))]
        );
        let f =
            Fragment::parse("[runners]\nkubernetes.namespace = \"ci\"\n[runners.kubernetes.node_selector]\nos = \"linux\"\n").unwrap();
        assert_eq!(
            f.values(),
            [
                ("kubernetes.namespace".to_owned(), Json::from("ci")),
                (
                    "kubernetes.node_selector.os".to_owned(),
                    Json::from("linux")
                ),
            ]
        );
    }
}
