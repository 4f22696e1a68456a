//! The generic merge of a `runnerToml` fragment into a `[[runners]]` entry, with the meaning
//! the runner gives the data rather than its layout: tables merge key by key whichever form
//! (header, dotted keys, inline) either side uses; any other value is replaced. Arrays of tables
//! (`[[…]]` or `[{…}, {…}]`) merge entry by entry, an entry being "the same" as the runner and
//! Kubernetes see it: host aliases by IP, their hostnames unioned (as `spec.hostAliases` does);
//! every other array (volumes, `pod_spec`, services, `dns_config.options`, …) by `name`, the
//! fragment's entry replacing the existing one whole (a key it leaves out, such as a `pod_spec`'s
//! `patch_type`, is not kept from the chart); an entry without a name is appended unless an equal
//! one is there. Struct fields match ignoring case and are written into the existing spelling; map
//! keys match exactly.

use toml_edit::{Item, TableLike, Value};

use super::TomlFailure;
use super::host_aliases;
use super::indent::Indent;
use super::keys::{self, is_go_map};
use super::node::{Node, TableArray, inline_value, same_value};

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
        if !in_map
            && keys::same_field(key, "host_aliases")
            && let Some(aliases) = host_alias_entries(src_item)
        {
            // Merged as `spec.hostAliases` merges: by IP, hostnames unioned, a hostname on two
            // IPs refused.
            host_aliases::merge(dst, &aliases, indent, path)?;
            continue;
        }
        if !in_map && let Some(src_table) = table_like(src_item) {
            let spellings: Vec<String> = dst
                .like()
                .iter()
                .filter(|(k, item)| keys::same_field(k, key) && item.is_table_like())
                .map(|(k, _)| k.to_owned())
                .collect();
            if spellings.len() > 1 {
                // The chart spells this table in two ways, which the runner merges into one
                // struct: each key goes to the spelling that holds it (else the exact one), so
                // that none gets a second value.
                let preferred = dst.find(key, false).expect("spelled at least twice");
                for (child_key, child_item) in src_table.iter() {
                    let holder = spellings
                        .iter()
                        .find(|s| {
                            dst.like()
                                .get(s)
                                .and_then(Item::as_table_like)
                                .is_some_and(|t| keys::find(t, child_key, map).is_some())
                        })
                        .unwrap_or(&preferred)
                        .clone();
                    let mut one = toml_edit::Table::new();
                    one.insert(child_key, child_item.clone());
                    let item = dst.get_mut(&holder).expect("listed above");
                    let mut child = Node::of(item).expect("a table");
                    let child_indent = child.indent(indent);
                    merge(&mut child, &one, &child_indent, &here, map)?;
                }
                continue;
            }
        }
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
                merge_entry(&mut entries, src_entry, &entry_indent, map);
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

/// Replaces the entry of an array of tables with the same `name` as the fragment entry `src`
/// (keeping the entry's place and layout), or appends `src`.
fn merge_entry(entries: &mut TableArray<'_>, src: &dyn TableLike, indent: &Indent, in_map: bool) {
    let name_of = |t: &dyn TableLike| -> Option<String> {
        let key = keys::find(t, "name", in_map)?;
        t.get(&key)?.as_str().map(str::to_owned)
    };
    let found = match name_of(src) {
        Some(name) => {
            (0..entries.len()).find(|&i| entries.get(i).and_then(name_of).as_ref() == Some(&name))
        }
        // An entry without a name is added once: not again when an equal one is there.
        None => {
            let wanted = inline_value(table_item(src));
            (0..entries.len()).find(|&i| {
                entries
                    .get(i)
                    .is_some_and(|t| same_value(&inline_value(table_item(t)), &wanted))
            })
        }
    };
    match found {
        Some(i) => {
            let mut entry = entries.get_mut(i).expect("found above");
            let entry_indent = entry.indent(indent);
            replace_entry(&mut entry, src, &entry_indent, in_map);
        }
        None => entries.push(src, indent),
    }
}

/// Makes `entry` hold exactly what `src` holds: keys `src` lacks are removed, the others set
/// whole (in the entry's spelling and form); a key whose value already reads the same is left
/// as written.
fn replace_entry(entry: &mut Node<'_>, src: &dyn TableLike, indent: &Indent, in_map: bool) {
    let stale: Vec<String> = entry
        .like()
        .iter()
        .filter(|(k, _)| keys::find(src, k, in_map).is_none())
        .map(|(k, _)| k.to_owned())
        .collect();
    for key in stale {
        entry.remove(&key);
    }
    for (key, src_item) in src.iter() {
        let dst_key = entry.find(key, in_map).unwrap_or_else(|| key.to_owned());
        let unchanged = entry
            .like()
            .get(&dst_key)
            .is_some_and(|d| same_value(&inline_value(d.clone()), &inline_value(src_item.clone())));
        if !unchanged {
            entry.insert(&dst_key, src_item.clone(), indent);
        }
    }
}

/// The fragment's host aliases as `(ip, hostnames)`, when every entry has that shape (the
/// fragment's schema check makes sure it does).
fn host_alias_entries(item: &Item) -> Option<Vec<(String, Vec<String>)>> {
    table_entries(item)?
        .into_iter()
        .map(|entry| {
            let field = |name: &str| entry.get(&keys::find(entry, name, false)?);
            let ip = field("ip")?.as_str()?.to_owned();
            let hostnames = match field("hostnames") {
                None => Vec::new(),
                Some(h) => h
                    .as_array()?
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<_>>()?,
            };
            Some((ip, hostnames))
        })
        .collect()
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
