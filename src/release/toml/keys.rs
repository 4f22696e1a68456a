//! Keys as the runner reads them. gitlab-runner decodes its TOML with BurntSushi/toml straight
//! into Go structs, matching each TOML key to a struct field exactly first and then ignoring case
//! (`Pull_Policy` fills `pull_policy`). Keys of Go *maps* (`node_selector`, `items`, …) are data
//! and compared exactly. Two spellings of one struct field in one table make the runner keep
//! whichever it meets last in Go's random map order, so an input that has them is refused and an
//! edit always writes into the existing spelling.

use toml_edit::{Item, TableLike, Value};

use super::{TomlFailure, line_of};
use crate::spec::go_case;

/// Fields of the runner's config structs whose Go type is a map (keys are data, compared
/// exactly), and open tables decoded as `map[string]any`. Everything else is a struct field.
/// The unit test `go_maps_match_the_schema` keeps this list in step with the runner schema.
pub(super) const GO_MAPS: [&str; 20] = [
    "container_labels",
    "feature_flags",
    "items",
    "labels",
    "log_options",
    "match_labels",
    "nesting_config",
    "node_selector",
    "node_tolerations",
    "plugin_config",
    "pod_annotations",
    "pod_labels",
    "retry_limits",
    "services_devices",
    "services_tmpfs",
    "sysctls",
    "tmpfs",
    "ulimit",
    "volume_attributes",
    "volume_driver_ops",
];

/// Whether the value under struct field `key` is a Go map.
pub(super) fn is_go_map(key: &str) -> bool {
    GO_MAPS
        .iter()
        .any(|m| (m.len() == key.len() || !key.is_ascii()) && same_field(m, key))
}

/// Whether two TOML keys name the same struct field for the runner (Go's `strings.EqualFold`).
pub(super) fn same_field(a: &str, b: &str) -> bool {
    go_case::equal_fold(a, b)
}

/// `key` case-folded as the runner compares struct fields (see [`go_case::fold`]).
pub(super) fn fold(key: &str) -> String {
    go_case::fold(key)
}

/// The key of `table` the runner reads as `name`: the exact spelling first, then one that
/// differs in case only (struct fields; `exact` for map keys).
pub(super) fn find(table: &dyn TableLike, name: &str, exact: bool) -> Option<String> {
    if table.contains_key(name) {
        return Some(name.to_owned());
    }
    if exact {
        return None;
    }
    table
        .iter()
        .find(|(k, _)| same_field(k, name))
        .map(|(k, _)| k.to_owned())
}

/// Refuses a document in which one struct field gets two values (`pull_policy` and `Pull_Policy`
/// in one table), naming both lines. Two spellings of a field that both hold tables
/// (`Kubernetes.image = …` beside `[runners.kubernetes]`) are one struct to the runner, which
/// decodes both into it: they are checked as one table, and only a key both set is refused.
/// `document` must still carry its spans (parsed with `toml_edit::Document::parse`) for the
/// lines; `first_line` is the line of `text` in the whole TOML and `first_runner` the index of
/// the document's first `[[runners]]` entry. `Ok(true)` when some table is spelled twice.
pub(super) fn check_spellings(
    root: &dyn TableLike,
    text: &str,
    first_line: usize,
    first_runner: usize,
) -> Result<bool, TomlFailure> {
    let mut walk = Walk {
        text,
        first_line,
        first_runner,
        spelled_twice: false,
    };
    walk.tables(&[root], "", false)?;
    Ok(walk.spelled_twice)
}

struct Walk<'t> {
    text: &'t str,
    first_line: usize,
    first_runner: usize,
    spelled_twice: bool,
}

/// A key of one of the tables the runner reads as one, with the table that holds it.
struct Entry<'d> {
    owner: &'d dyn TableLike,
    key: &'d str,
    item: &'d Item,
}

impl Walk<'_> {
    fn line(&self, table: &dyn TableLike, key: &str) -> Option<usize> {
        let span = table.key(key)?.span()?;
        Some(line_of(self.text, span.start) + self.first_line - 1)
    }

    /// Checks `tables`, which the runner decodes into one struct (or map, `in_map`).
    fn tables(
        &mut self,
        tables: &[&dyn TableLike],
        path: &str,
        in_map: bool,
    ) -> Result<(), TomlFailure> {
        // The keys of all the tables, grouped by the field they fill, in order: one pass with the
        // folded spelling of each key, so a wide table stays linear.
        let mut groups: Vec<Vec<Entry<'_>>> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for &owner in tables {
            for (key, item) in owner.iter() {
                let field = if in_map { key.to_owned() } else { fold(key) };
                let entry = Entry { owner, key, item };
                match index.get(&field) {
                    Some(&i) => groups[i].push(entry),
                    None => {
                        index.insert(field, groups.len());
                        groups.push(vec![entry]);
                    }
                }
            }
        }
        for group in &groups {
            let first = &group[0];
            let here = join(path, first.key);
            let map = in_map || is_go_map(first.key);
            if group.len() > 1 {
                let tables: Option<Vec<&dyn TableLike>> =
                    group.iter().map(|e| e.item.as_table_like()).collect();
                let Some(tables) = tables else {
                    return Err(self.two_values(&group[0], &group[1], path));
                };
                self.spelled_twice = true;
                self.tables(&tables, &here, map)?;
                continue;
            }
            let runners = path.is_empty() && same_field(first.key, "runners");
            match first.item {
                Item::Table(t) => self.tables(&[t], &here, map)?,
                Item::Value(Value::InlineTable(t)) => self.tables(&[t], &here, map)?,
                Item::ArrayOfTables(a) => {
                    for (i, t) in a.iter().enumerate() {
                        let i = if runners { i + self.first_runner } else { i };
                        self.tables(&[t], &format!("{here}[{i}]"), map)?;
                    }
                }
                Item::Value(Value::Array(a)) => {
                    for (i, v) in a.iter().enumerate() {
                        if let Value::InlineTable(t) = v {
                            let i = if runners { i + self.first_runner } else { i };
                            self.tables(&[t], &format!("{here}[{i}]"), map)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The failure for two keys that give one field two values.
    fn two_values(&self, a: &Entry<'_>, b: &Entry<'_>, path: &str) -> TomlFailure {
        let (la, lb) = (self.line(a.owner, a.key), self.line(b.owner, b.key));
        let at = |l: Option<usize>| l.map(|l| format!(" (line {l})")).unwrap_or_default();
        let (ka, kb) = (a.key, b.key);
        let message = if ka == kb {
            // Only tables spelled in two ways put one key twice: name the key in both.
            format!(
                "`{ka}`{} and `{kb}`{} are set in two spellings of one table, which the runner decodes into one struct, keeping either value at random; set it once",
                at(la),
                at(lb)
            )
        } else {
            format!(
                "`{ka}`{} and `{kb}`{} are one field to the runner, which matches keys ignoring case and then reads either of them at random; keep one spelling",
                at(la),
                at(lb)
            )
        };
        TomlFailure {
            line: la.or(lb),
            path: Some(join(path, ka)),
            message,
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_maps_match_the_schema() {
        // Every property whose schema is an object with typed additionalProperties is a Go map;
        // `plugin_config` and `nesting_config` are `map[string]any` (open objects).
        let defs = include_str!("../../../schema/runner-template.defs");
        let mut from_schema: Vec<&str> = defs
            .lines()
            .filter_map(|l| l.strip_prefix('\t'))
            .filter_map(|l| l.split_once('\t'))
            .filter(|(_, s)| s.starts_with(r#"{"type":"object","additionalProperties":{"#))
            .map(|(k, _)| k)
            .chain(["plugin_config", "nesting_config"])
            .collect();
        from_schema.sort_unstable();
        from_schema.dedup();
        assert_eq!(from_schema, GO_MAPS);
    }

    #[test]
    fn fields_match_ignoring_case_only() {
        assert!(same_field("Pull_Policy", "pull_policy"));
        assert!(same_field("TLS-CA-FILE", "tls-ca-file"));
        assert!(!same_field("tls_ca_file", "tls-ca-file"));
        assert!(!same_field("pull_policy", "pull_polic"));
        // Go's EqualFold: the Kelvin sign folds to k, the long s to s.
        assert!(same_field("\u{212a}ubernetes", "kubernetes"));
        assert!(same_field("\u{17f}ecret", "secret"));
    }
}
