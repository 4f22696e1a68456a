//! Edits the runner TOML (`config.template.toml`, or `config.toml` with `configOverride`) with
//! toml_edit, so the user's comments (Chinese ones too), key order and layout survive.
//!
//! Every `[[runners]]` entry gets the same patch, merged with the meaning the runner gives the
//! TOML, not its layout (`node`, `keys`): a table written as a `[header]`, as dotted keys or
//! inline is the same table, keys match ignoring case and are written into their existing
//! spelling. Host aliases merge by IP (hostnames unioned in order), volumes by name (unique
//! across all volume kinds, as Kubernetes requires), pull policies are replaced as a whole, a
//! `runnerToml` fragment merges table by table (`merge`). New keys and tables are laid out like
//! their neighbours. Entries are parsed one at a time (`chunks`) so memory stays proportional
//! to the largest entry. This module knows nothing about YAML.

mod chunks;
mod fragment;
mod host_aliases;
mod indent;
mod keys;
mod merge;
mod node;
mod pull_policy;
mod volumes;

use toml_edit::{Array, Document, DocumentMut, Item, TableLike, Value};

pub use fragment::{Fragment, minify_runner_schema};

use crate::spec::ConfigMapVolume;
use crate::spec::validate::normalize_ip;
use indent::Indent;
use node::Node;

/// What to apply to each `[[runners]]` entry.
#[derive(Debug, Default, Clone)]
pub struct TomlPatch {
    /// IP and hostnames, in spec order.
    pub host_aliases: Vec<(String, Vec<String>)>,
    pub config_map_volumes: Vec<ConfigMapVolume>,
    /// `[[runners.kubernetes.volumes.secret]]` entries (same keys as config_map).
    pub secret_volumes: Vec<ConfigMapVolume>,
    /// `tls-ca-file` of each `[[runners]]` (the GitLab CA the manager mounts).
    pub tls_ca_file: Option<String>,
    /// Runner spellings (`if-not-present`).
    pub pull_policy: Option<Vec<&'static str>>,
    pub allowed_pull_policies: Option<Vec<&'static str>>,
    pub fragment: Option<Fragment>,
}

impl TomlPatch {
    /// True when nothing would be written to the TOML.
    pub fn is_empty(&self) -> bool {
        self.host_aliases.is_empty()
            && self.config_map_volumes.is_empty()
            && self.secret_volumes.is_empty()
            && self.tls_ca_file.is_none()
            && self.pull_policy.is_none()
            && self.allowed_pull_policies.is_none()
            && self.fragment.is_none()
    }

    fn touches_kubernetes(&self) -> bool {
        !(self.host_aliases.is_empty()
            && self.config_map_volumes.is_empty()
            && self.secret_volumes.is_empty()
            && self.pull_policy.is_none()
            && self.allowed_pull_policies.is_none())
    }
}

/// Why the TOML could not be patched, with the TOML line when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlFailure {
    /// 1-based line in the TOML text.
    pub line: Option<usize>,
    /// Key path, e.g. `runners[0].kubernetes.host_aliases`.
    pub path: Option<String>,
    pub message: String,
}

/// Result of a successful edit.
#[derive(Debug)]
pub struct Applied {
    /// The new text; `None` when the TOML already held everything.
    pub text: Option<String>,
    pub warnings: Vec<String>,
}

/// Applies `patch` to every `[[runners]]` entry of `text`.
pub fn apply(text: &str, patch: &TomlPatch) -> Result<Applied, TomlFailure> {
    let pieces = chunks::split(text);
    if let Some(applied) = apply_pieces(text, &pieces, patch)? {
        return Ok(applied);
    }
    let whole = chunks::Piece {
        range: 0..text.len(),
        tokens: pieces.iter().map(|p| p.tokens).sum(),
    };
    let applied = apply_pieces(text, &[whole], patch)?;
    Ok(applied.expect("a single piece stands on its own"))
}

/// The most tokens one piece of the TOML (one `[[runners]]` entry, or the globals before them)
/// may hold. toml_edit keeps a few hundred bytes per token, so this bounds the memory a piece
/// costs (to about 20 MB); a real entry holds a few hundred tokens.
const MAX_TOKENS_PER_PIECE: usize = 100_000;

/// Applies `patch` piece by piece; `None` when the pieces turn out not to stand on their own:
/// a top-level key other than `runners` defined in two pieces (a table continued further down,
/// or a redefinition the whole document must be refused for), or runners not written as
/// `[[runners]]` entries.
fn apply_pieces(
    text: &str,
    pieces: &[chunks::Piece],
    patch: &TomlPatch,
) -> Result<Option<Applied>, TomlFailure> {
    let mut warnings = Vec::new();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut runners_seen = 0;
    let mut first_line = 1;
    let mut roots = Roots::default();
    for chunks::Piece { range, tokens } in pieces {
        let piece = &text[range.clone()];
        if *tokens > MAX_TOKENS_PER_PIECE {
            return Err(TomlFailure {
                line: Some(first_line),
                path: Some(format!("runners[{runners_seen}]")),
                message: format!(
                    "this part of the TOML holds {tokens} keys, values and brackets; runner-patch refuses more than {MAX_TOKENS_PER_PIECE} in one [[runners]] entry to keep its memory bounded (a real entry holds a few hundred)"
                ),
            });
        }
        let spanned = parse(piece, first_line)?;
        if pieces.len() > 1 && !roots.add(spanned.as_table()) {
            return Ok(None);
        }
        let (new_text, runners) = apply_piece(
            spanned,
            piece,
            first_line,
            runners_seen,
            patch,
            &mut warnings,
        )?;
        runners_seen += runners;
        first_line += line_of(piece, piece.len()) - 1;
        match new_text {
            Some(new_text) => {
                changed = true;
                out.push_str(&new_text);
            }
            None => out.push_str(piece),
        }
    }
    if runners_seen == 0 {
        return Err(TomlFailure {
            line: None,
            path: Some("runners".into()),
            message: "no [[runners]] entry to patch".into(),
        });
    }
    Ok(Some(Applied {
        text: (changed && out != text).then_some(out),
        warnings,
    }))
}

/// The top-level keys of the pieces seen so far.
#[derive(Default)]
struct Roots {
    runners: Option<String>,
    others: Vec<String>,
}

impl Roots {
    /// Adds the top-level keys of a piece; `false` if the pieces no longer stand on their own.
    fn add(&mut self, root: &toml_edit::Table) -> bool {
        for (key, item) in root.iter() {
            if keys::same_field(key, "runners") {
                let spelling = self.runners.get_or_insert_with(|| key.to_owned());
                if spelling != key || !matches!(item, Item::ArrayOfTables(_)) {
                    return false;
                }
            } else if self.others.iter().any(|k| keys::same_field(k, key)) {
                return false;
            } else {
                self.others.push(key.to_owned());
            }
        }
        true
    }
}

/// Parses one piece of the TOML (starting at `first_line` of the whole text), keeping spans.
fn parse(piece: &str, first_line: usize) -> Result<Document<&str>, TomlFailure> {
    Document::parse(piece).map_err(|e| TomlFailure {
        line: e.span().map(|s| line_of(piece, s.start) + first_line - 1),
        path: None,
        message: format!("invalid TOML: {}", e.message().trim_end()),
    })
}

/// Patches the runners of one piece; the new text (`None` if unchanged) and how many
/// `[[runners]]` entries the piece holds.
fn apply_piece(
    spanned: Document<&str>,
    piece: &str,
    first_line: usize,
    first_runner: usize,
    patch: &TomlPatch,
    warnings: &mut Vec<String>,
) -> Result<(Option<String>, usize), TomlFailure> {
    keys::check_spellings(spanned.as_table(), piece, first_line, first_runner)?;
    let mut doc = spanned.into_mut();
    let shift = |mut f: TomlFailure| {
        f.line = f.line.map(|l| l + first_line - 1);
        f
    };
    let Some(key) = keys::find(doc.as_table(), "runners", false) else {
        return Ok((None, 0));
    };
    let mut runners = match doc.get_mut(&key) {
        Some(Item::ArrayOfTables(a)) => node::TableArray::Tables(a),
        Some(Item::Value(Value::Array(a))) if a.iter().all(Value::is_inline_table) => {
            node::TableArray::Inline(a)
        }
        _ => {
            return Err(TomlFailure {
                line: None,
                path: Some(key),
                message: "expected [[runners]] tables".into(),
            });
        }
    };
    let count = runners.len();
    for i in 0..count {
        let mut runner = runners.get_mut(i).expect("in range");
        patch_runner(&mut runner, patch, first_runner + i, warnings).map_err(shift)?;
    }
    let out = doc.to_string();
    // toml_edit always ends with a newline; keep the YAML scalar's chomping (`|-` has none).
    let out = if piece.ends_with('\n') {
        out
    } else {
        out.trim_end_matches('\n').to_owned()
    };
    Ok(((out != piece).then_some(out), count))
}

/// Applies `patch` to one `[[runners]]` entry.
fn patch_runner(
    runner: &mut Node<'_>,
    patch: &TomlPatch,
    index: usize,
    warnings: &mut Vec<String>,
) -> Result<(), TomlFailure> {
    let base = format!("runners[{index}]");
    let indent = runner.indent(&Indent::root());
    let inline_before = match runner {
        Node::Table(t) => node::inline_snapshot(t),
        Node::Inline(_) => Vec::new(),
    };
    patch_entry(runner, patch, &base, &indent, warnings)?;
    // `kubernetes = { … }` grown past a readable line becomes `[runners.kubernetes]`.
    if let Node::Table(t) = runner {
        node::expand_grown_inline(t, &inline_before, &indent);
    }
    Ok(())
}

/// The edits of [`patch_runner`], in the forms the entry already has.
fn patch_entry(
    runner: &mut Node<'_>,
    patch: &TomlPatch,
    base: &str,
    indent: &Indent,
    warnings: &mut Vec<String>,
) -> Result<(), TomlFailure> {
    if let Some(fragment) = &patch.fragment {
        merge::merge(runner, &fragment.runner, indent, base, false)?;
    }
    if let Some(path) = &patch.tls_ca_file {
        runner.set_value("tls-ca-file", path.as_str().into(), indent);
    }
    if !patch.touches_kubernetes() {
        return Ok(());
    }
    let mut k8s = runner
        .child("kubernetes", indent)
        .map_err(|key| TomlFailure {
            line: None,
            path: Some(format!("{base}.{key}")),
            message: "must be a table ([runners.kubernetes])".into(),
        })?;
    let k8s_indent = k8s.indent(indent);
    let k8s_path = format!("{base}.kubernetes");
    host_aliases::merge(&mut k8s, &patch.host_aliases, &k8s_indent, &k8s_path)?;
    volumes::merge(
        &mut k8s,
        &patch.config_map_volumes,
        "config_map",
        &k8s_indent,
        &k8s_path,
    )?;
    volumes::merge(
        &mut k8s,
        &patch.secret_volumes,
        "secret",
        &k8s_indent,
        &k8s_path,
    )?;
    pull_policy::set(&mut k8s, patch, &k8s_indent, &k8s_path, warnings)
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

/// The job namespace of the first `[[runners]]` (`[runners.kubernetes] namespace`), if set.
pub fn job_namespace(text: &str) -> Option<String> {
    let pieces = chunks::split(text);
    // The first `[[runners]]` is in the first or (after a global prefix) the second piece.
    pieces.iter().take(2).find_map(|piece| {
        let doc: DocumentMut = text[piece.range.clone()].parse().ok()?;
        let runners = doc.get(&keys::find(doc.as_table(), "runners", false)?)?;
        let first: &dyn TableLike = match runners {
            Item::ArrayOfTables(a) => a.get(0)?,
            Item::Value(Value::Array(a)) => a.get(0)?.as_inline_table()?,
            _ => return None,
        };
        let k8s = first
            .get(&keys::find(first, "kubernetes", false)?)?
            .as_table_like()?;
        let ns = k8s.get(&keys::find(k8s, "namespace", false)?)?.as_str()?;
        Some(ns.to_owned())
    })
}

/// Whether a TOML text holds at least one `[[runners]]` entry (in any form).
pub fn has_runners(text: &str) -> bool {
    if chunks::split(text).len() > 1 {
        // A `[[runners]]` header below the first line (a broken TOML is reported by `apply`).
        return true;
    }
    text.parse::<DocumentMut>().is_ok_and(|d| {
        keys::find(d.as_table(), "runners", false)
            .and_then(|k| d.get(&k))
            .is_some_and(|item| match item {
                Item::ArrayOfTables(a) => !a.is_empty(),
                Item::Value(Value::Array(a)) => {
                    !a.is_empty() && a.iter().all(Value::is_inline_table)
                }
                _ => false,
            })
    })
}

fn string_array(items: &[impl AsRef<str>]) -> Array {
    items.iter().map(|s| s.as_ref()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Given(&'static str);

    fn given(toml: &'static str) -> Given {
        Given(toml)
    }

    impl Given {
        #[track_caller]
        fn running(&self, patch: &TomlPatch) -> String {
            let applied = apply(self.0, patch).unwrap();
            let out = applied.text.unwrap_or_else(|| self.0.to_owned());
            // Idempotence on every unit case too.
            let again = apply(&out, patch).unwrap();
            assert_eq!(again.text, None, "second run changed:\n{out}");
            out
        }
    }

    fn aliases(ip: &str, hosts: &[&str]) -> TomlPatch {
        TomlPatch {
            host_aliases: vec![(ip.into(), hosts.iter().map(|s| s.to_string()).collect())],
            ..Default::default()
        }
    }

    #[test]
    fn adds_host_alias_indented_like_neighbours() {
        let out = given("[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n")
            .running(&aliases("10.0.0.1", &["a.example.com"]));
        assert_eq!(
            out,
            "[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.1\"\n      hostnames = [\"a.example.com\"]\n"
        );
    }

    #[test]
    fn unions_hostnames_of_same_ip() {
        let out = given("[[runners]]\n[runners.kubernetes]\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.1\" # 注释\nhostnames = [\"a.example.com\"]\n")
            .running(&aliases("10.0.0.1", &["a.example.com", "b.example.com"]));
        assert!(
            out.contains("hostnames = [\"a.example.com\", \"b.example.com\"]"),
            "{out}"
        );
        assert!(out.contains("# 注释"), "{out}");
    }

    #[test]
    fn refuses_hostname_on_two_ips() {
        let err = apply("[[runners]]\n[runners.kubernetes]\nhost_aliases = [{ip = \"10.0.0.2\", hostnames = [\"a.example.com\"]}]\n", &aliases("10.0.0.1", &["a.example.com"])).unwrap_err();
        assert!(
            err.message.contains("10.0.0.2") && err.message.contains("10.0.0.1"),
            "{err:?}"
        );
    }

    #[test]
    fn keeps_strip_chomping() {
        let out = given("[[runners]]\n  [runners.kubernetes]\n    privileged = true").running(
            &TomlPatch {
                pull_policy: Some(vec!["if-not-present"]),
                ..Default::default()
            },
        );
        assert!(!out.ends_with('\n'), "{out:?}");
        assert!(out.contains("pull_policy = [\"if-not-present\"]"));
    }

    #[test]
    fn fragment_merges_tables_and_arrays_by_name() {
        let fragment = Fragment::parse("[runners.kubernetes]\nprivileged = true\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"docker-certs\"\nmount_path = \"/certs/client\"\nmedium = \"Memory\"\n").unwrap();
        let patch = TomlPatch {
            fragment: Some(fragment),
            ..Default::default()
        };
        let out = given("[[runners]]\n  [runners.kubernetes]\n    image = \"alpine\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"docker-certs\"\n      mount_path = \"/old\"\n").running(&patch);
        assert_eq!(out.matches("docker-certs").count(), 1, "{out}");
        assert!(out.contains("mount_path = \"/certs/client\""), "{out}");
        assert!(out.contains("    privileged = true"), "{out}");
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    #[track_caller]
    fn patched(input: &str, patch: &TomlPatch) -> String {
        let out = apply(input, patch)
            .unwrap()
            .text
            .unwrap_or_else(|| input.to_owned());
        assert_eq!(
            apply(&out, patch).unwrap().text,
            None,
            "not idempotent:\n{out}"
        );
        out
    }

    #[test]
    fn creates_kubernetes_table_under_a_runner_without_one() {
        let patch = TomlPatch {
            pull_policy: Some(vec!["always"]),
            ..Default::default()
        };
        assert_eq!(
            patched("[[runners]]\n  name = \"x\"\n", &patch),
            "[[runners]]\n  name = \"x\"\n  [runners.kubernetes]\n    pull_policy = [\"always\"]\n"
        );
    }

    #[test]
    fn extends_a_multi_line_hostnames_array_one_per_line() {
        let input = "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.1\"\n      hostnames = [\n        \"a.example.com\",\n      ]\n";
        let patch = TomlPatch {
            host_aliases: vec![("10.0.0.1".into(), vec!["b.example.com".into()])],
            ..Default::default()
        };
        assert_eq!(
            patched(input, &patch),
            "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.1\"\n      hostnames = [\n        \"a.example.com\",\n        \"b.example.com\",\n      ]\n"
        );
    }

    #[test]
    fn job_namespace_reads_any_form_and_case() {
        assert_eq!(
            job_namespace("concurrent = 1\n[[runners]]\n  Kubernetes = { NameSpace = \"ci\" }\n")
                .as_deref(),
            Some("ci")
        );
        assert!(has_runners("runners = [{ name = \"a\" }]\n"));
        assert!(!has_runners("concurrent = 1\n"));
    }
}

#[cfg(test)]
mod implicit_tests {
    use super::*;

    #[test]
    fn values_added_to_an_implicit_table_get_its_header() {
        let input = "[[runners]]\n  [[runners.kubernetes.host_aliases]]\n    ip = \"10.0.0.1\"\n    hostnames = [\"a\"]\n";
        let patch = TomlPatch {
            pull_policy: Some(vec!["always"]),
            ..Default::default()
        };
        let out = apply(input, &patch).unwrap().text.unwrap();
        let doc: DocumentMut = out.parse().unwrap();
        let k8s = &doc["runners"][0]["kubernetes"];
        assert_eq!(k8s["pull_policy"][0].as_str(), Some("always"), "{out}");
        assert_eq!(
            k8s["host_aliases"][0]["ip"].as_str(),
            Some("10.0.0.1"),
            "{out}"
        );
        assert_eq!(apply(&out, &patch).unwrap().text, None);
    }
}
