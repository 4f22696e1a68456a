//! `[[runners.kubernetes.volumes.config_map]]` / `.secret`: entries merged by name. Kubernetes
//! wants volume names unique across all kinds and one volume per mount path, so a clash with
//! any kind is refused rather than written.

use toml_edit::{InlineTable, Item, Value};

use super::TomlFailure;
use super::indent::Indent;
use super::indent::indent_key;
use super::node::{Node, inline_value, same_value};
use super::pod_volumes::VOLUME_KINDS;
use crate::spec::ConfigMapVolume;

/// Merges `volumes` into the `target` kind (`config_map` or `secret`).
pub(super) fn merge(
    k8s: &mut Node<'_>,
    volumes: &[ConfigMapVolume],
    target: &str,
    indent: &Indent,
    path: &str,
) -> Result<(), TomlFailure> {
    if volumes.is_empty() {
        return Ok(());
    }
    let fail = |path: String, message: String| TomlFailure {
        line: None,
        path: Some(path),
        message,
    };
    let mut vols = k8s.child("volumes", indent).map_err(|key| {
        fail(
            format!("{path}.{key}"),
            "must be a table of volume arrays".into(),
        )
    })?;
    let vol_path = format!("{path}.volumes");
    let vol_indent = vols.indent(indent);
    let entry_indent = indent.child();
    for v in volumes {
        check_clashes(&mut vols, v, target, &vol_path, &vol_indent)?;
        let mut list = vols.table_array(target, &vol_indent).map_err(|key| {
            fail(
                format!("{vol_path}.{key}"),
                format!("must be an array of tables ([[runners.kubernetes.volumes.{target}]])"),
            )
        })?;
        let existing =
            (0..list.len()).find(|&i| list.get(i).and_then(name_of).is_some_and(|n| n == v.name));
        match existing {
            Some(i) => {
                let mut entry = list.get_mut(i).expect("in range");
                let ind = entry.indent(&entry_indent);
                drop_keys_the_spec_leaves_out(&mut entry, v);
                fill(&mut entry, v, &ind);
            }
            None => {
                let mut t = InlineTable::new();
                let mut node = Node::Inline(&mut t);
                fill(&mut node, v, &entry_indent);
                list.push(&t, &entry_indent);
            }
        }
    }
    Ok(())
}

fn name_of(t: &dyn toml_edit::TableLike) -> Option<String> {
    let key = super::keys::find(t, "name", false)?;
    t.get(&key)?.as_str().map(str::to_owned)
}

/// Refuses `v` when another volume (any kind) already has its name, or another name its mount
/// path.
fn check_clashes(
    vols: &mut Node<'_>,
    v: &ConfigMapVolume,
    target: &str,
    vol_path: &str,
    vol_indent: &Indent,
) -> Result<(), TomlFailure> {
    for kind in VOLUME_KINDS {
        if vols.find(kind, false).is_none() {
            continue;
        }
        let Ok(list) = vols.table_array(kind, vol_indent) else {
            continue;
        };
        for j in 0..list.len() {
            let Some(other) = list.get(j) else { continue };
            let name = name_of(other);
            let mount = super::keys::find(other, "mount_path", false)
                .and_then(|k| other.get(&k)?.as_str().map(str::to_owned));
            let here = format!("{vol_path}.{kind}[{j}]");
            if name.as_deref() == Some(v.name.as_str()) && kind != target {
                return Err(TomlFailure {
                    line: None,
                    path: Some(here),
                    message: format!(
                        "volume name {:?} is already used by the {kind} volume of that name; volume names must be unique across kinds",
                        v.name
                    ),
                });
            }
            if name.as_deref() != Some(v.name.as_str())
                && mount.as_deref().map(|m| m.trim_end_matches('/'))
                    == Some(v.mount_path.trim_end_matches('/'))
            {
                return Err(TomlFailure {
                    line: None,
                    path: Some(here),
                    message: format!(
                        "mount path {:?} is already used by volume {:?}",
                        v.mount_path,
                        name.as_deref().unwrap_or("?")
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The spec's entry defines the volume, as a `runnerToml` entry of that name does: a key of the
/// chart's entry the spec does not set (`items`, `read_only`, `sub_path`, anything else) is
/// removed, so that the same intent gives the same volume whichever field says it.
fn drop_keys_the_spec_leaves_out(entry: &mut Node<'_>, v: &ConfigMapVolume) {
    let mut wanted = vec!["name", "mount_path"];
    wanted.extend(v.sub_path.as_ref().map(|_| "sub_path"));
    wanted.extend(v.read_only.map(|_| "read_only"));
    wanted.extend(v.items.as_ref().map(|_| "items"));
    let stale: Vec<String> = entry
        .like()
        .iter()
        .filter(|(key, _)| !wanted.iter().any(|w| super::keys::same_field(key, w)))
        .map(|(key, _)| key.to_owned())
        .collect();
    for key in stale {
        entry.remove(&key);
    }
}

/// Writes the spec's fields into a volume entry (the spec is the desired state).
fn fill(entry: &mut Node<'_>, v: &ConfigMapVolume, indent: &Indent) {
    entry.set_value("name", v.name.as_str().into(), indent);
    entry.set_value("mount_path", v.mount_path.as_str().into(), indent);
    if let Some(sub) = &v.sub_path {
        entry.set_value("sub_path", sub.as_str().into(), indent);
    }
    if let Some(ro) = v.read_only {
        entry.set_value("read_only", ro.into(), indent);
    }
    if let Some(items) = &v.items {
        let mut inline = InlineTable::new();
        for (key, path) in items {
            inline.insert(key, path.as_str().into());
        }
        let wanted = Value::InlineTable(inline);
        // `items` may be inline or a sub-table `[runners.kubernetes.volumes.config_map.items]`;
        // either way the spec's map replaces it, in the form it has.
        let Some(key) = entry.find("items", false) else {
            entry.insert("items", Item::Value(wanted), indent);
            return;
        };
        let current = entry.get_mut(&key).map(|item| inline_value(item.clone()));
        if current.is_some_and(|c| same_value(&c, &wanted)) {
            return;
        }
        if let Some(Item::Table(t)) = entry.get_mut(&key)
            && !t.is_dotted()
        {
            let keys_indent = Indent::of(t, indent);
            t.clear();
            for (k, p) in items {
                t.insert(k, toml_edit::value(p.as_str()));
                indent_key(t, k, &keys_indent.keys);
            }
            return;
        }
        entry.insert(&key, Item::Value(wanted), indent);
    }
}
