//! The generic merge of a `runnerToml` fragment into a `[[runners]]` entry, with the meaning
//! the runner gives the data rather than its layout: tables merge key by key whichever form
//! (header, dotted keys, inline) either side uses; arrays of tables (`[[…]]` or
//! `[{…}, {…}]`) merge entry by entry, matched by identity (`name`, `ip`, `alias`); any other
//! value is replaced. Struct fields match ignoring case and are written into the existing
//! spelling; map keys match exactly.

use toml_edit::{Item, TableLike, Value};

use super::indent::Indent;
use super::keys::{self, is_go_map};
use super::node::{Node, TableArray, inline_value, same_value};
use super::{TomlFailure, normalize_ip};

/// Merges `src` into `dst` (indented as `indent`), `path` naming `dst` for errors; `in_map`
/// when `dst` is (inside) a Go map.
pub(super) fn merge(
    dst: &mut Node<'_>,
    src: &dyn TableLike,
    indent: &Indent,
    path: &str,
    in_map: bool,
) -> Result<(), TomlFailure> {
    for (key, src_item) in src.iter() {
        if src_item.is_none() {
            continue;
        }
        let here = format!("{path}.{key}");
        let map = in_map || is_go_map(key);
        let Some(dst_key) = dst.find(key, in_map) else {
            dst.insert(key, src_item.clone(), indent);
            continue;
        };
        let dst_item = dst.get_mut(&dst_key).expect("found above");
        if table_like(src_item).is_some() && Node::of(dst_item).is_some() {
            let mut child = Node::of(dst_item).expect("checked");
            let child_indent = child.indent(indent);
            merge(
                &mut child,
                table_like(src_item).expect("checked"),
                &child_indent,
                &here,
                map,
            )?;
        } else if let (Some(src_entries), true) =
            (table_entries(src_item), is_table_array(dst_item))
        {
            let mut entries = match dst_item {
                Item::ArrayOfTables(a) => TableArray::Tables(a),
                Item::Value(Value::Array(a)) => TableArray::Inline(a),
                _ => unreachable!("is_table_array"),
            };
            let entry_indent = indent.child();
            for src_entry in src_entries {
                merge_entry(&mut entries, src_entry, &entry_indent, &here, map)?;
            }
        } else {
            match (dst_item, src_item) {
                (Item::Value(d), Item::Value(s)) if same_value(d, s) => {}
                _ => dst.insert(&dst_key, src_item.clone(), indent),
            }
        }
    }
    Ok(())
}

/// Merges one fragment entry of an array of tables into the entry with the same identity, or
/// appends it.
fn merge_entry(
    entries: &mut TableArray<'_>,
    src: &dyn TableLike,
    indent: &Indent,
    path: &str,
    in_map: bool,
) -> Result<(), TomlFailure> {
    let found = identity(src).and_then(|(field, id)| {
        (0..entries.len()).find(|&i| {
            entries
                .get(i)
                .and_then(|t| {
                    keys::find(t, field, in_map)
                        .and_then(|k| t.get(&k)?.as_value().map(|v| id_of(field, v)))
                })
                .flatten()
                .as_ref()
                == Some(&id)
        })
    });
    // An entry without identity is added once: not again when an equal one is there.
    let found = found.or_else(|| {
        identity(src).is_none().then(|| {
            let wanted = inline_value(table_item(src));
            (0..entries.len()).find(|&i| {
                entries
                    .get(i)
                    .is_some_and(|t| same_value(&inline_value(table_item(t)), &wanted))
            })
        })?
    });
    match found {
        Some(i) => {
            let mut entry = entries.get_mut(i).expect("found above");
            let entry_indent = entry.indent(indent);
            merge(
                &mut entry,
                src,
                &entry_indent,
                &format!("{path}[{i}]"),
                in_map,
            )
        }
        None => {
            entries.push(src, indent);
            Ok(())
        }
    }
}

/// The field that identifies an entry of an array of tables (volumes, pod_spec: `name`; host
/// aliases: `ip`; services: `alias`) and its value.
pub(super) fn identity(t: &dyn TableLike) -> Option<(&'static str, String)> {
    ["name", "ip", "alias"].into_iter().find_map(|field| {
        let key = keys::find(t, field, false)?;
        let v = t.get(&key)?.as_value()?;
        id_of(field, v).map(|id| (field, id))
    })
}

fn id_of(field: &str, v: &Value) -> Option<String> {
    let s = v.as_str()?;
    Some(if field == "ip" {
        normalize_ip(s)
    } else {
        s.to_owned()
    })
}

/// The table an item holds, in any form.
fn table_like(item: &Item) -> Option<&dyn TableLike> {
    match item {
        Item::Table(t) => Some(t),
        Item::Value(Value::InlineTable(t)) => Some(t),
        _ => None,
    }
}

/// The entries of a non-empty array of tables, in either form.
fn table_entries(item: &Item) -> Option<Vec<&dyn TableLike>> {
    match item {
        Item::ArrayOfTables(a) if !a.is_empty() => {
            Some(a.iter().map(|t| t as &dyn TableLike).collect())
        }
        Item::Value(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => None,
    }
}

fn is_table_array(item: &Item) -> bool {
    match item {
        Item::ArrayOfTables(a) => !a.is_empty(),
        Item::Value(Value::Array(a)) => !a.is_empty() && a.iter().all(Value::is_inline_table),
        _ => false,
    }
}

/// A copy of a table-like value as an item (for comparing entries in any form).
fn table_item(t: &dyn TableLike) -> Item {
    let mut out = toml_edit::InlineTable::new();
    for (k, item) in t.iter() {
        if let Some(v) = item.as_value() {
            out.insert(k, v.clone());
        } else {
            out.insert(k, inline_value(item.clone()));
        }
    }
    Item::Value(Value::InlineTable(out))
}
