//! The job pod's volumes as the runner builds them from `[runners.kubernetes.volumes]`: every
//! entry of every kind becomes one pod volume named by its `name` (only `pvc` entries of one name
//! are merged into one), and Kubernetes rejects a pod with two volumes of one name. So after the
//! patch the names must be unique across all kinds, whatever spelling (`Secret`, `ſecret`) the
//! TOML gives a kind, a key or the tables above them.

use toml_edit::{Item, TableLike, Value};

use super::keys;
use super::{TomlFailure, TomlPatch, line_of};

/// Volume kinds under `[runners.kubernetes.volumes]`, as the runner spells its fields.
pub(super) const VOLUME_KINDS: [&str; 7] = [
    "host_path",
    "pvc",
    "config_map",
    "secret",
    "empty_dir",
    "csi",
    "nfs",
];

/// One volume entry of a `[[runners]]` entry.
#[derive(Debug, Clone)]
pub(super) struct PodVolume {
    /// Index of the `[[runners]]` entry in the whole TOML.
    runner: usize,
    /// The kind as the runner names it (`secret`).
    kind: &'static str,
    /// The key as the TOML spells it (`Secret`).
    spelled: String,
    /// Index of the entry in its array.
    index: usize,
    name: String,
    /// Line of the entry's `name` in the whole TOML, when read from the chart's text.
    line: Option<usize>,
}

impl PodVolume {
    fn path(&self) -> String {
        format!(
            "runners[{}].kubernetes.volumes.{}[{}]",
            self.runner, self.spelled, self.index
        )
    }

    fn same_entry(&self, other: &PodVolume) -> bool {
        self.runner == other.runner
            && self.kind == other.kind
            && self.spelled == other.spelled
            && self.index == other.index
    }
}

/// The volume entries of every `[[runners]]` entry of `root`. With `text` (the source `root` was
/// parsed from, with spans, starting at line `first_line` of the whole TOML) each gets its line.
pub(super) fn of_document(
    root: &dyn TableLike,
    text: Option<&str>,
    first_line: usize,
    first_runner: usize,
) -> Vec<PodVolume> {
    let mut out = Vec::new();
    let Some(runners) = keys::find(root, "runners", false).and_then(|k| root.get(&k)) else {
        return out;
    };
    for (i, runner) in table_entries(runners).into_iter().enumerate() {
        out.extend(of_runner(runner, first_runner + i, text, first_line));
    }
    out
}

/// The volume entries of one `[[runners]]` entry (or of a `runnerToml` fragment's runner table).
pub(super) fn of_runner(
    runner: &dyn TableLike,
    index: usize,
    text: Option<&str>,
    first_line: usize,
) -> Vec<PodVolume> {
    let mut out = Vec::new();
    // The runner decodes every spelling of a table into one struct, so all are read.
    for kubernetes in spellings(runner, "kubernetes") {
        for volumes in spellings(kubernetes, "volumes") {
            for (spelled, item) in volumes.iter() {
                let Some(kind) = VOLUME_KINDS
                    .into_iter()
                    .find(|k| keys::same_field(k, spelled))
                else {
                    continue;
                };
                for (j, entry) in table_entries(item).into_iter().enumerate() {
                    let Some(name_key) = keys::find(entry, "name", false) else {
                        continue;
                    };
                    let Some(name) = entry.get(&name_key).and_then(Item::as_str) else {
                        continue;
                    };
                    let line = text.and_then(|text| {
                        let span = entry.key(&name_key)?.span()?;
                        Some(line_of(text, span.start) + first_line - 1)
                    });
                    out.push(PodVolume {
                        runner: index,
                        kind,
                        spelled: spelled.to_owned(),
                        index: j,
                        name: name.to_owned(),
                        line,
                    });
                }
            }
        }
    }
    out
}

/// Refuses two volumes of one name in one `[[runners]]` entry of the patched TOML (`after`),
/// naming both: the chart's (with their lines, from `before`) or the patch's. `before` are the
/// chart's entries, read from the TOML before the patch.
pub(super) fn check_unique(
    before: &[PodVolume],
    after: &[PodVolume],
    patch: &TomlPatch,
) -> Result<(), TomlFailure> {
    let written = written_by(patch);
    for (i, a) in after.iter().enumerate() {
        let Some(b) = after[i + 1..].iter().find(|b| {
            b.runner == a.runner && b.name == a.name && !(a.kind == "pvc" && b.kind == "pvc")
        }) else {
            continue;
        };
        let by_patch = |v: &PodVolume| written.iter().any(|(k, n)| *k == v.kind && *n == v.name);
        let chart_line = |v: &PodVolume| {
            before
                .iter()
                .find(|c| c.same_entry(v) && c.name == v.name)
                .and_then(|c| c.line)
        };
        let describe = |v: &PodVolume| match (by_patch(v), chart_line(v)) {
            (true, _) => format!("the {} volume the patch writes ({})", v.kind, v.path()),
            (false, Some(line)) => format!("the chart's {} volume at TOML line {line}", v.kind),
            (false, None) => format!("the chart's {} volume ({})", v.kind, v.path()),
        };
        let whose = if by_patch(a) || by_patch(b) {
            "the patch gives"
        } else {
            "the chart's TOML already gives"
        };
        // The chart's entry first: its line is the one the user finds in the input.
        let (first, second) = if by_patch(a) && !by_patch(b) {
            (b, a)
        } else {
            (a, b)
        };
        return Err(TomlFailure {
            line: chart_line(first),
            path: Some(first.path()),
            message: format!(
                "{whose} two job pod volumes the name {:?}: {} and {}; Kubernetes rejects a pod whose volume names repeat, so every job would fail (names must be unique across all volume kinds)",
                a.name,
                describe(first),
                describe(second),
            ),
        });
    }
    Ok(())
}

/// `(kind, name)` of each volume the patch writes.
fn written_by(patch: &TomlPatch) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    out.extend(
        patch
            .config_map_volumes
            .iter()
            .map(|v| ("config_map", v.name.clone())),
    );
    out.extend(
        patch
            .secret_volumes
            .iter()
            .map(|v| ("secret", v.name.clone())),
    );
    if let Some(fragment) = &patch.fragment {
        out.extend(
            of_runner(fragment.runner(), 0, None, 1)
                .into_iter()
                .map(|v| (v.kind, v.name)),
        );
    }
    out
}

/// The tables under every spelling of struct field `name` in `table`.
fn spellings<'t>(table: &'t dyn TableLike, name: &str) -> Vec<&'t dyn TableLike> {
    table
        .iter()
        .filter(|(k, _)| keys::same_field(k, name))
        .filter_map(|(_, item)| item.as_table_like())
        .collect()
}

/// The entries of an array of tables, in either form.
fn table_entries(item: &Item) -> Vec<&dyn TableLike> {
    match item {
        Item::ArrayOfTables(a) => a.iter().map(|t| t as &dyn TableLike).collect(),
        Item::Value(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_inline_table().map(|t| t as &dyn TableLike))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Fragment, TomlPatch, apply};

    fn fragment(text: &str) -> TomlPatch {
        TomlPatch {
            fragment: Some(Fragment::parse(text).unwrap()),
            ..Default::default()
        }
    }

    /// A `runnerToml` volume named like a chart volume of another kind is refused whatever
    /// form and spelling the chart gives the tables; the chart's entry is named with its line.
    #[test]
    fn a_patch_volume_named_like_a_chart_volume_of_another_kind_is_refused() {
        let patch = fragment(
            "[[runners.kubernetes.volumes.config_map]]\nname = \"x\"\nmount_path = \"/x\"\n",
        );
        for chart in [
            "[[runners]]\n  [[runners.kubernetes.volumes.empty_dir]]\n    name = \"x\"\n    mount_path = \"/e\"\n",
            "[[runners]]\n  [runners.Kubernetes]\n    image = \"a\"\n    [runners.Kubernetes.Volumes]\n      EMPTY_DIR = [{ Name = \"x\", mount_path = \"/e\" }]\n",
            "[[runners]]\n  kubernetes.volumes.\"ſecret\" = [{ name = \"x\", mount_path = \"/e\" }]\n",
        ] {
            let err = apply(chart, &patch).unwrap_err();
            assert!(
                err.message.starts_with("the patch gives"),
                "{chart}: {err:?}"
            );
            assert!(
                err.message.contains("config_map volume the patch writes"),
                "{err:?}"
            );
            assert!(err.line.is_some(), "{chart}: {err:?}");
        }
    }

    /// A clash the chart already has is refused too, and said to be the chart's; `pvc` entries
    /// of one name are one pod volume to the runner, and a same-kind entry the patch replaces is
    /// no clash.
    #[test]
    fn clashes_are_the_charts_or_the_patchs_and_pvcs_merge() {
        let pull = TomlPatch {
            pull_policy: Some(vec!["always"]),
            ..Default::default()
        };
        let err = apply(
            "[[runners]]\n  [[runners.kubernetes.volumes.secret]]\n    name = \"x\"\n    mount_path = \"/s\"\n  [[runners.kubernetes.volumes.host_path]]\n    name = \"x\"\n    mount_path = \"/h\"\n",
            &pull,
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("the chart's TOML already gives"),
            "{err:?}"
        );
        assert!(
            err.message.contains("secret volume at TOML line 3")
                && err.message.contains("host_path volume at TOML line 6"),
            "{err:?}"
        );
        let pvcs = "[[runners]]\n  [[runners.kubernetes.volumes.pvc]]\n    name = \"x\"\n    mount_path = \"/a\"\n  [[runners.kubernetes.volumes.pvc]]\n    name = \"x\"\n    mount_path = \"/b\"\n";
        assert!(apply(pvcs, &pull).is_ok());
        let same_kind = fragment(
            "[[runners.kubernetes.volumes.empty_dir]]\nname = \"x\"\nmount_path = \"/x\"\n",
        );
        assert!(
            apply(
                "[[runners]]\n  [[runners.kubernetes.volumes.empty_dir]]\n    name = \"x\"\n    mount_path = \"/e\"\n",
                &same_kind
            )
            .is_ok()
        );
    }
}
