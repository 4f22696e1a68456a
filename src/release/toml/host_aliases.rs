//! `[[runners.kubernetes.host_aliases]]`: entries merged by IP (hostnames unioned in order),
//! whichever form the array has (`[[…]]` entries or `host_aliases = [{ ip = …, hostnames = […] }]`).

use std::collections::BTreeSet;

use toml_edit::{Array, InlineTable, Item, Value};

use super::indent::Indent;
use super::node::{Node, push_styled};
use super::{TomlFailure, normalize_ip, string_array};

pub(super) fn merge(
    k8s: &mut Node<'_>,
    aliases: &[(String, Vec<String>)],
    indent: &Indent,
    path: &str,
) -> Result<(), TomlFailure> {
    if aliases.is_empty() {
        return Ok(());
    }
    let fail = |path: String, message: String| TomlFailure {
        line: None,
        path: Some(path),
        message,
    };
    let mut entries = k8s.table_array("host_aliases", indent).map_err(|key| {
        fail(
            format!("{path}.{key}"),
            "must be an array of tables ([[runners.kubernetes.host_aliases]])".into(),
        )
    })?;
    let path = format!("{path}.host_aliases");
    for (ip, hostnames) in aliases {
        let ip_norm = normalize_ip(ip);
        let mut same_ip = None;
        for i in 0..entries.len() {
            let mut entry = entries.get_mut(i).expect("in range");
            let here = format!("{path}[{i}]");
            let other_ip = entry.value("ip").and_then(Value::as_str).map(normalize_ip);
            let existing = hostnames_mut(&mut entry).map_err(|m| fail(here.clone(), m))?;
            if other_ip.as_deref() == Some(ip_norm.as_str()) {
                same_ip.get_or_insert(i);
                continue;
            }
            // A hostname already bound to another address would make /etc/hosts ambiguous.
            if let Some(h) = hostnames
                .iter()
                .find(|h| existing.iter().any(|e| e.as_str() == Some(h.as_str())))
            {
                return Err(fail(
                    here,
                    format!(
                        "hostname {h:?} is already mapped to {}; the patch maps it to {ip}",
                        other_ip.unwrap_or_default()
                    ),
                ));
            }
        }
        match same_ip {
            Some(i) => {
                let mut entry = entries.get_mut(i).expect("in range");
                let list =
                    hostnames_mut(&mut entry).map_err(|m| fail(format!("{path}[{i}]"), m))?;
                let present: BTreeSet<String> = list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                for h in hostnames.iter().filter(|h| !present.contains(*h)) {
                    push_styled(list, h.as_str().into());
                }
            }
            None => {
                let mut t = InlineTable::new();
                t.insert("ip", ip.as_str().into());
                t.insert("hostnames", Value::Array(string_array(hostnames)));
                entries.push(&t, &indent.child());
            }
        }
    }
    Ok(())
}

/// The `hostnames` array of a host alias entry, created empty when missing.
fn hostnames_mut<'e>(entry: &'e mut Node<'_>) -> Result<&'e mut Array, String> {
    let key = match entry.find("hostnames", false) {
        Some(key) => key,
        None => {
            entry.insert(
                "hostnames",
                Item::Value(Value::Array(Array::new())),
                &Indent::root(),
            );
            "hostnames".to_owned()
        }
    };
    match entry.get_mut(&key) {
        Some(Item::Value(Value::Array(a))) => Ok(a),
        _ => Err(format!("`{key}` must be an array of hostnames")),
    }
}
