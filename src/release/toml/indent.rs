//! Indentation of new TOML keys and tables, derived from what the user wrote, so that an edited
//! `config.template.toml` looks as if one person had written it.

use toml_edit::{Item, Table};

/// Indentation of a table's header and of its keys.
#[derive(Debug, Clone)]
pub(super) struct Indent {
    pub(super) header: String,
    pub(super) keys: String,
    /// The table's header is not printed (`[runners.kubernetes.volumes]` above nothing but
    /// `[[runners.kubernetes.volumes.config_map]]` entries): its sub-tables take its place in the
    /// layout, so they sit where its header would, not one level deeper.
    implicit: bool,
}

impl Indent {
    pub(super) fn root() -> Indent {
        Indent {
            header: String::new(),
            keys: String::new(),
            implicit: false,
        }
    }

    /// Indentation for `table`, whose parent is indented as `parent`. The step between a parent's
    /// header and its keys is reused for children that have no keys yet.
    pub(super) fn of(table: &Table, parent: &Indent) -> Indent {
        if table.is_dotted() {
            // Dotted keys sit on the parent's lines: `kubernetes.image = …`.
            let keys = first_key_indent(table).unwrap_or_else(|| parent.keys.clone());
            return Indent {
                header: parent.header.clone(),
                keys,
                implicit: false,
            };
        }
        let header = last_line_indent(table.decor().prefix().and_then(|p| p.as_str()))
            .unwrap_or_else(|| parent.keys.clone());
        let keys = first_key_indent(table).unwrap_or_else(|| {
            let step = parent.keys.len().saturating_sub(parent.header.len()).max(
                if parent.keys.is_empty() && parent.header.is_empty() {
                    2
                } else {
                    0
                },
            );
            format!("{header}{}", " ".repeat(step))
        });
        let implicit = table.is_implicit() && table.iter().all(|(_, item)| !item.is_value());
        Indent {
            header,
            keys,
            implicit,
        }
    }

    /// Indentation for a new entry of an array of tables whose last entry is `last`: its header
    /// and keys where `last` has them, else `fallback`'s.
    pub(super) fn sibling(last: &Table, fallback: &Indent) -> Indent {
        let header = last_line_indent(last.decor().prefix().and_then(|p| p.as_str()))
            .unwrap_or_else(|| fallback.header.clone());
        let step = fallback.keys.len().saturating_sub(fallback.header.len());
        let keys =
            first_key_indent(last).unwrap_or_else(|| format!("{header}{}", " ".repeat(step)));
        Indent {
            header,
            keys,
            implicit: false,
        }
    }

    /// The same indentation for a table whose header is not printed (see `implicit`).
    pub(super) fn implicit(&self) -> Indent {
        Indent {
            implicit: true,
            ..self.clone()
        }
    }

    /// Indentation for a new child table of a table indented as `self`.
    pub(super) fn child(&self) -> Indent {
        let step = self.keys.len().saturating_sub(self.header.len());
        let header = if self.implicit {
            &self.header
        } else {
            &self.keys
        };
        Indent {
            header: header.clone(),
            keys: format!("{header}{}", " ".repeat(step)),
            implicit: false,
        }
    }
}

/// The indentation of the first key/value line of `table` (dotted keys included).
fn first_key_indent(table: &Table) -> Option<String> {
    table.iter().find_map(|(k, item)| match item {
        Item::Value(_) => table
            .key(k)
            .and_then(|key| last_line_indent(key.leaf_decor().prefix().and_then(|p| p.as_str()))),
        Item::Table(t) if t.is_dotted() => first_key_indent(t),
        _ => None,
    })
}

fn last_line_indent(prefix: Option<&str>) -> Option<String> {
    let p = prefix?;
    let last = p.rsplit('\n').next().unwrap_or(p);
    last.chars()
        .all(|c| c == ' ' || c == '\t')
        .then(|| last.to_owned())
}

/// Gives `key` of a header or dotted table the indentation `indent` (and nothing else before
/// it). For a dotted sub-table the line prefix sits on each leaf key.
pub(super) fn indent_key(table: &mut Table, key: &str, indent: &str) {
    let dotted = matches!(table.get(key), Some(Item::Table(t)) if t.is_dotted());
    if dotted {
        if let Some(Item::Table(t)) = table.get_mut(key) {
            let keys: Vec<String> = t.iter().map(|(k, _)| k.to_owned()).collect();
            for k in keys {
                indent_key(t, &k, indent);
            }
        }
    } else if let Some(mut k) = table.key_mut(key) {
        k.leaf_decor_mut().set_prefix(indent);
    }
}

/// A new, empty header table at `indent`.
pub(super) fn new_table(indent: &Indent) -> Table {
    let mut t = Table::new();
    t.decor_mut().set_prefix(indent.header.clone());
    t
}
