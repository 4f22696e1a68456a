//! Edits the runner TOML (`config.template.toml`, or `config.toml` with `configOverride`) with
//! toml_edit, so the user's comments (Chinese ones too), key order and layout survive.
//!
//! Every `[[runners]]` entry gets the same patch, merged with the meaning the runner gives the
//! TOML, not its layout (`node`, `keys`): a table written as a `[header]`, as dotted keys or
//! inline is the same table, keys match ignoring case and are written into their existing
//! spelling. Host aliases merge by IP (hostnames unioned in order), volumes by name (unique
//! across all volume kinds, as Kubernetes requires), pull policies are replaced as a whole, a
//! `runnerToml` fragment merges table by table (`merge`). New keys and tables are laid out like
//! their neighbours. Entries are parsed one at a time (`chunks`, [`RunnerToml`]) so memory stays
//! proportional to the largest entry; each piece is parsed once, and the caller's checks read it
//! (with lines and entry indexes of the whole TOML) before it is edited. This module knows
//! nothing about YAML.

mod chunks;
mod host_aliases;
mod indent;
mod keys;
mod merge;
mod node;
mod pod_volumes;
mod pull_policy;
mod volumes;

use std::sync::atomic::{AtomicUsize, Ordering};

use toml_edit::{Array, Document, Item, TableLike, Value};

pub use crate::spec::fragment::Fragment;

use crate::release::repeats::Repeats;
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
    /// The runner container's env gives `pull_policy` (`KUBERNETES_PULL_POLICY`, which register
    /// prefers over the template): a TOML without one is then no trap. Not a value to write.
    pub pull_policy_from_env: bool,
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

/// How many pieces of runner TOML, and how many bytes, have been parsed in this process. Each
/// byte of a ConfigMap's TOML is parsed once: the checks and the edit share each piece's
/// document (a test holds the pipeline to that).
static PARSES: AtomicUsize = AtomicUsize::new(0);
static PARSED_BYTES: AtomicUsize = AtomicUsize::new(0);

/// The number of pieces of runner TOML parsed so far in this process (one per `[[runners]]`
/// entry, plus the globals before them).
pub fn parse_count() -> usize {
    PARSES.load(Ordering::Relaxed)
}

/// The number of bytes of runner TOML parsed so far in this process.
pub fn parsed_bytes() -> usize {
    PARSED_BYTES.load(Ordering::Relaxed)
}

/// The most tokens one piece of the TOML (one `[[runners]]` entry, or the globals before them)
/// may hold. toml_edit keeps a few hundred bytes per token, so this bounds the memory a piece
/// costs (to about 20 MB); a real entry holds a few hundred tokens.
const MAX_TOKENS_PER_PIECE: usize = 100_000;

/// The largest runner TOML read or written: 1 MiB, what Kubernetes accepts as a ConfigMap's (or a
/// Secret's) whole `data` (`MaxSecretSize`; it answers "Too long: must have at most 1048576
/// bytes"). A larger TOML could never reach a runner, and holding to it keeps runner-patch's
/// memory to a small multiple of its input (docs/robustness.md).
pub const MAX_TOML_BYTES: usize = 1 << 20;

/// The refusal of a TOML over [`MAX_TOML_BYTES`]: the chart's, of `Some(bytes)`, or the patched
/// one (`None`: its building stops as soon as it passes the limit).
fn too_large(read: Option<usize>) -> TomlFailure {
    let what = match read {
        Some(bytes) => format!("the TOML has {bytes} bytes, more than"),
        None => "the patched TOML would be larger than".to_owned(),
    };
    TomlFailure {
        line: None,
        path: None,
        message: format!(
            "{what} the 1 MiB ({MAX_TOML_BYTES} bytes) Kubernetes accepts in a ConfigMap's data; refused rather than write a ConfigMap the API server would reject"
        ),
    }
}

/// A runner TOML cut at its `[[runners]]` headers (see `chunks`), read piece by piece: each
/// piece is parsed once, shown to the caller's checks with its key positions, then edited and
/// dropped, so memory stays proportional to the largest entry. The pieces up to the first
/// `[[runners]]` entry are parsed when it is opened, for [`RunnerToml::job_namespace`].
pub struct RunnerToml<'t> {
    text: &'t str,
    pieces: Vec<chunks::Piece>,
    /// The pieces parsed ahead, in order, from the first.
    head: Vec<Part<'t>>,
}

/// One parsed piece of a runner TOML: a TOML document of its own, with the positions of its keys.
pub struct Part<'t> {
    /// The piece, parsed with spans (its lines count from the piece's first line, see
    /// [`Part::line`]; its `[[runners]]` from the piece's first entry, see [`Part::path`]).
    pub doc: Document<&'t str>,
    place: Place,
}

/// Where a piece sits in the whole TOML.
#[derive(Debug, Clone)]
struct Place {
    range: std::ops::Range<usize>,
    /// The line of the whole TOML the piece starts on.
    first_line: usize,
    /// The index, in the whole TOML, of the piece's first `[[runners]]` entry.
    first_runner: usize,
    /// How many `[[runners]]` entries the piece holds.
    runners: usize,
}

impl Part<'_> {
    /// The line of the whole TOML for `line` of the piece.
    pub fn line(&self, line: usize) -> usize {
        line + self.place.first_line - 1
    }

    /// `path` of the piece (`runners[0].kubernetes`) as a path of the whole TOML (`runners[7]…`).
    pub fn path(&self, path: &str) -> String {
        let renumbered = path.split_once('[').and_then(|(key, rest)| {
            let (index, rest) = rest.split_once(']')?;
            let index: usize = index.parse().ok()?;
            keys::same_field(key, "runners")
                .then(|| format!("{key}[{}]{rest}", index + self.place.first_runner))
        });
        renumbered.unwrap_or_else(|| path.to_owned())
    }

    /// The first `[[runners]]` entry of the piece, in any of its forms.
    fn first_runner_table(&self) -> Option<&dyn TableLike> {
        let runners = self
            .doc
            .get(&keys::find(self.doc.as_table(), "runners", false)?)?;
        match runners {
            Item::ArrayOfTables(a) => a.get(0).map(|t| t as &dyn TableLike),
            Item::Value(Value::Array(a)) => a.get(0)?.as_inline_table().map(|t| t as _),
            _ => None,
        }
    }
}

impl<'t> RunnerToml<'t> {
    /// Cuts `text` into pieces and parses those up to its first `[[runners]]` entry.
    pub fn open(text: &'t str) -> Result<RunnerToml<'t>, TomlFailure> {
        if text.len() > MAX_TOML_BYTES {
            return Err(too_large(Some(text.len())));
        }
        let mut toml = RunnerToml {
            text,
            pieces: chunks::split(text),
            head: Vec::new(),
        };
        while toml.head.len() < toml.pieces.len()
            && toml.head.last().is_none_or(|p| p.place.runners == 0)
        {
            let next = parse_piece(
                text,
                &toml.pieces[toml.head.len()],
                toml.head.last().map(|p| &p.place),
            )?;
            toml.head.push(next);
        }
        Ok(toml)
    }

    /// True when the TOML has at least one `[[runners]]` entry (in any form).
    pub fn has_runners(&self) -> bool {
        self.head.last().is_some_and(|p| p.place.runners > 0)
    }

    /// The job namespace of the first `[[runners]]` (`[runners.kubernetes] namespace`, in any
    /// table form and key case), if set.
    pub fn job_namespace(&self) -> Option<String> {
        self.kubernetes_value("namespace")?
            .as_str()
            .map(str::to_owned)
    }

    /// The value of `key` under `[runners.kubernetes]` of the first `[[runners]]` (in any table
    /// form and key case), as JSON, if set.
    pub fn kubernetes_value(&self, key: &str) -> Option<serde_json::Value> {
        let first = self.head.last()?.first_runner_table()?;
        let k8s = first
            .get(&keys::find(first, "kubernetes", false)?)?
            .as_table_like()?;
        let item = k8s.get(&keys::find(k8s, key, false)?)?;
        Some(crate::spec::fragment::item_to_json(item))
    }

    /// The value of `key` directly under the first `[[runners]]` (in any key case), as JSON,
    /// with the line of the whole TOML it is on.
    pub fn runner_value(&self, key: &str) -> Option<(serde_json::Value, Option<usize>)> {
        let part = self.head.last()?;
        let first = part.first_runner_table()?;
        let found = keys::find(first, key, false)?;
        let line = first.key(&found).and_then(|k| k.span()).map(|span| {
            let before = &part.doc.raw().as_bytes()[..span.start.min(part.doc.raw().len())];
            part.line(1 + memchr::memchr_iter(b'\n', before).count())
        });
        Some((
            crate::spec::fragment::item_to_json(first.get(&found)?),
            line,
        ))
    }

    /// Applies `patch` to every `[[runners]]` entry, piece by piece; `inspect` sees each piece
    /// as parsed (with its key positions) before it is edited. With an empty patch the pieces
    /// are only inspected.
    pub fn apply(
        self,
        patch: &TomlPatch,
        mut inspect: impl FnMut(&Part<'_>),
    ) -> Result<Applied, TomlFailure> {
        let RunnerToml { text, pieces, head } = self;
        // Collapsed as they come (one per entry would grow with the TOML).
        let mut warnings = Repeats::default();
        let mut out = String::new();
        let mut changed = false;
        let mut runners_seen = 0;
        let mut roots = Roots::default();
        let mut head = head.into_iter();
        let mut previous: Option<Place> = None;
        for piece in &pieces {
            // The head pieces were parsed by `open`; the others are parsed here, once.
            let part = match head.next() {
                Some(part) => part,
                None => parse_piece(text, piece, previous.as_ref())?,
            };
            if pieces.len() > 1 && !roots.add(part.doc.as_table()) {
                // `chunks::split` keeps a TOML whose pieces would not stand on their own in one
                // piece; reaching this is a bug there, refused rather than reinterpreted.
                return Err(TomlFailure {
                    line: Some(part.place.first_line),
                    path: None,
                    message: "runner-patch cut this TOML at a [[runners]] header that a table continues across (a bug: please report it with the TOML)".into(),
                });
            }
            inspect(&part);
            let Part { doc, place } = part;
            let piece_text = &text[place.range.clone()];
            let spelled_twice = keys::check_spellings(
                doc.as_table(),
                piece_text,
                place.first_line,
                place.first_runner,
            )?;
            runners_seen += place.runners;
            if !patch.is_empty() {
                match apply_piece(doc, piece_text, &place, patch, spelled_twice, &mut warnings)? {
                    Some(new_text) => {
                        changed = true;
                        out.push_str(&new_text);
                    }
                    None => out.push_str(piece_text),
                }
                // Stopped as soon as it grows past the limit, so the text never gets larger.
                if out.len() > MAX_TOML_BYTES {
                    return Err(too_large(None));
                }
            }
            previous = Some(place);
        }
        if runners_seen == 0 && !patch.is_empty() {
            return Err(TomlFailure {
                line: None,
                path: Some("runners".into()),
                message: "no [[runners]] entry to patch".into(),
            });
        }
        Ok(Applied {
            text: (changed && out != text).then_some(out),
            warnings: warnings.finish(|w| w, ""),
        })
    }
}

/// Parses `piece` of `text`, which follows the piece at `previous`, keeping spans.
fn parse_piece<'t>(
    text: &'t str,
    piece: &chunks::Piece,
    previous: Option<&Place>,
) -> Result<Part<'t>, TomlFailure> {
    let chunks::Piece { range, tokens } = piece.clone();
    let (first_line, first_runner) = previous.map_or((1, 0), |p| {
        (
            p.first_line + line_of(&text[p.range.clone()], p.range.len()) - 1,
            p.first_runner + p.runners,
        )
    });
    if tokens > MAX_TOKENS_PER_PIECE {
        return Err(TomlFailure {
            line: Some(first_line),
            path: Some(format!("runners[{first_runner}]")),
            message: format!(
                "this part of the TOML holds {tokens} keys, values and brackets; runner-patch refuses more than {MAX_TOKENS_PER_PIECE} in one [[runners]] entry (or in the whole TOML when its runners are written inline, `runners = [{{…}}, …]`) to keep its memory bounded (a real entry holds a few hundred)"
            ),
        });
    }
    let source = &text[range.clone()];
    PARSES.fetch_add(1, Ordering::Relaxed);
    PARSED_BYTES.fetch_add(source.len(), Ordering::Relaxed);
    let doc = Document::parse(source).map_err(|e| TomlFailure {
        line: e.span().map(|s| line_of(source, s.start) + first_line - 1),
        path: None,
        message: format!("invalid TOML: {}", e.message().trim_end()),
    })?;
    let runners = runner_count(doc.as_table());
    Ok(Part {
        doc,
        place: Place {
            range,
            first_line,
            first_runner,
            runners,
        },
    })
}

/// How many `[[runners]]` entries (in either array form) a document holds.
fn runner_count(root: &toml_edit::Table) -> usize {
    let Some(key) = keys::find(root, "runners", false) else {
        return 0;
    };
    match root.get(&key) {
        Some(Item::ArrayOfTables(a)) => a.len(),
        Some(Item::Value(Value::Array(a))) if a.iter().all(Value::is_inline_table) => a.len(),
        _ => 0,
    }
}

/// Applies `patch` to every `[[runners]]` entry of `text`.
pub fn apply(text: &str, patch: &TomlPatch) -> Result<Applied, TomlFailure> {
    RunnerToml::open(text)?.apply(patch, |_| {})
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

/// Patches the runners of one piece (at `place`): the new text, `None` if unchanged.
/// `spelled_twice` when the piece spells a table in two ways (see [`keys::check_spellings`]): the
/// edit writes into the spelling that holds a key, and the result is checked again so that it
/// never gives a key a second value there.
fn apply_piece(
    spanned: Document<&str>,
    piece: &str,
    place: &Place,
    patch: &TomlPatch,
    spelled_twice: bool,
    warnings: &mut Repeats<String>,
) -> Result<Option<String>, TomlFailure> {
    let Place {
        first_line,
        first_runner,
        ..
    } = *place;
    let chart_volumes =
        pod_volumes::of_document(spanned.as_table(), Some(piece), first_line, first_runner);
    let mut doc = spanned.into_mut();
    let shift = |mut f: TomlFailure| {
        f.line = f.line.map(|l| l + first_line - 1);
        f
    };
    let Some(key) = keys::find(doc.as_table(), "runners", false) else {
        return Ok(None);
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
    let volumes = pod_volumes::of_document(doc.as_table(), None, first_line, first_runner);
    pod_volumes::check_unique(&chart_volumes, &volumes, patch)?;
    if spelled_twice {
        keys::check_spellings(doc.as_table(), "", first_line, first_runner).map_err(|f| {
            TomlFailure {
                line: None,
                path: f.path,
                message: format!(
                    "the patch cannot be written without giving a key a second value: this TOML spells a table in two ways, and after the patch {}",
                    f.message
                ),
            }
        })?;
    }
    let mut out = chunks::keep_header_spellings(piece, &doc.to_string());
    // A TOML written with CRLF line ends (possible in a double-quoted YAML scalar) keeps them:
    // new lines get them too, so every untouched line keeps its bytes.
    let lines = piece.matches('\n').count();
    if lines > 0 && piece.matches("\r\n").count() == lines {
        out = out.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    // toml_edit always ends with a newline; keep the YAML scalar's chomping (`|-` has none).
    let out = if piece.ends_with('\n') {
        out
    } else {
        out.trim_end_matches(['\r', '\n']).to_owned()
    };
    Ok((out != piece).then_some(out))
}

/// Applies `patch` to one `[[runners]]` entry.
fn patch_runner(
    runner: &mut Node<'_>,
    patch: &TomlPatch,
    index: usize,
    warnings: &mut Repeats<String>,
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
    warnings: &mut Repeats<String>,
) -> Result<(), TomlFailure> {
    if let Some(fragment) = &patch.fragment {
        merge::merge(runner, fragment.runner(), indent, base, false)?;
    }
    if let Some(path) = &patch.tls_ca_file {
        runner.set_value("tls-ca-file", path.as_str().into(), indent);
    }
    if !patch.touches_kubernetes() {
        return Ok(());
    }
    let k8s_path = format!("{base}.kubernetes");
    // Each edit goes to the spelling of `[runners.kubernetes]` that already holds its key (a
    // chart may write `Kubernetes.pull_policy = …` beside `[runners.kubernetes]`).
    let mut k8s = kubernetes(runner, "host_aliases", indent, base)?;
    let k8s_indent = k8s.indent(indent);
    host_aliases::merge(&mut k8s, &patch.host_aliases, &k8s_indent, &k8s_path)?;
    let mut k8s = kubernetes(runner, "volumes", indent, base)?;
    let k8s_indent = k8s.indent(indent);
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
    let pull_field = if patch.pull_policy.is_some() {
        "pull_policy"
    } else {
        "allowed_pull_policies"
    };
    let mut k8s = kubernetes(runner, pull_field, indent, base)?;
    let k8s_indent = k8s.indent(indent);
    pull_policy::set(&mut k8s, patch, &k8s_indent, &k8s_path, warnings)
}

/// The `[runners.kubernetes]` table of `runner` that holds `field` (see [`Node::child_holding`]).
fn kubernetes<'r>(
    runner: &'r mut Node<'_>,
    field: &str,
    indent: &Indent,
    base: &str,
) -> Result<Node<'r>, TomlFailure> {
    runner
        .child_holding("kubernetes", field, indent)
        .map_err(|key| TomlFailure {
            line: None,
            path: Some(format!("{base}.{key}")),
            message: "must be a table ([runners.kubernetes])".into(),
        })
}

/// 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..offset.min(text.len())]).count()
}

/// The job namespace of the first `[[runners]]` of `text` (see [`RunnerToml::job_namespace`]).
pub fn job_namespace(text: &str) -> Option<String> {
    RunnerToml::open(text).ok()?.job_namespace()
}

/// Whether a TOML text holds at least one `[[runners]]` entry (in any form), or, when it is
/// refused (not valid TOML, or past the size limit), a top-level `runners` key (its error is
/// then the runner TOML's to report).
pub fn has_runners(text: &str) -> bool {
    match RunnerToml::open(text) {
        Ok(toml) => toml.has_runners(),
        Err(_) => has_runners_key(text),
    }
}

/// Whether `text` has a top-level `runners` key in any form (`[[runners]]`, `runners = […]`),
/// read with the lexer only (nothing is parsed): tells a runner TOML that cannot be read (broken,
/// or past the size limit) from a TOML without runners.
pub fn has_runners_key(text: &str) -> bool {
    chunks::has_runners_key(text)
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

    fn fragment(text: &str) -> TomlPatch {
        TomlPatch {
            fragment: Some(Fragment::parse(text).unwrap()),
            ..Default::default()
        }
    }

    /// A fragment host alias for an IP the chart maps already adds its hostnames, as
    /// `spec.hostAliases` does, in either array form; a hostname on another IP is refused.
    #[test]
    fn fragment_host_aliases_union_hostnames_by_ip() {
        let patch = fragment(
            "[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.1\"\nhostnames = [\"b.example.com\"]\n",
        );
        let out = given("[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.1\"\n      hostnames = [\"a.example.com\"]\n")
            .running(&patch);
        assert!(
            out.contains("hostnames = [\"a.example.com\", \"b.example.com\"]"),
            "{out}"
        );
        let out = given("[[runners]]\n  kubernetes = { host_aliases = [{ ip = \"10.0.0.1\", hostnames = [\"a.example.com\"] }] }\n")
            .running(&patch);
        assert!(
            out.contains("hostnames = [\"a.example.com\", \"b.example.com\"]"),
            "{out}"
        );
        let err = apply(
            "[[runners]]\n  [runners.kubernetes]\n    host_aliases = [{ ip = \"10.0.0.2\", hostnames = [\"b.example.com\"] }]\n",
            &patch,
        )
        .unwrap_err();
        assert!(err.message.contains("10.0.0.2"), "{err:?}");
    }

    /// A fragment entry with the name of a chart entry replaces it whole: what the user left out
    /// (`patch_type`) does not survive from the chart's entry; other entries stay.
    #[test]
    fn fragment_entries_with_a_chart_name_replace_it_whole() {
        let patch = fragment(
            "[[runners.kubernetes.pod_spec]]\nname = \"a\"\npatch = \"{}\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"certs\"\nmount_path = \"/certs\"\n",
        );
        let out = given("[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.pod_spec]]\n      name = \"a\" # kept\n      patch = \"[]\"\n      patch_type = \"json\"\n    [[runners.kubernetes.pod_spec]]\n      name = \"b\"\n      patch_type = \"json\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"certs\"\n      mount_path = \"/old\"\n      medium = \"Memory\"\n")
            .running(&patch);
        assert_eq!(
            out,
            "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.pod_spec]]\n      name = \"a\" # kept\n      patch = \"{}\"\n    [[runners.kubernetes.pod_spec]]\n      name = \"b\"\n      patch_type = \"json\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"certs\"\n      mount_path = \"/certs\"\n"
        );
        let out = given(
            "[[runners]]\n  kubernetes.pod_spec = [{ name = \"a\", patch_type = \"json\" }]\n",
        )
        .running(&patch);
        assert!(
            out.contains("pod_spec = [{ name = \"a\", patch = \"{}\" }]"),
            "{out}"
        );
    }

    /// `Kubernetes.x = …` beside `[runners.kubernetes]` is one struct to the runner, which merges
    /// both: accepted, and each edit lands in the spelling that holds its key.
    #[test]
    fn a_table_in_two_spellings_merges_and_edits_land_where_the_key_is() {
        let chart = "[[runners]]\n  Kubernetes.pull_policy = \"always\"\n  [runners.kubernetes]\n    namespace = \"ci\"\n";
        let pull = TomlPatch {
            pull_policy: Some(vec!["never"]),
            ..Default::default()
        };
        assert_eq!(
            given(chart).running(&pull),
            "[[runners]]\n  Kubernetes.pull_policy = [\"never\"]\n  [runners.kubernetes]\n    namespace = \"ci\"\n"
        );
        let out = given(chart).running(&fragment(
            "[runners.kubernetes]\npull_policy = \"if-not-present\"\nimage = \"alpine\"\n",
        ));
        assert_eq!(
            out,
            "[[runners]]\n  Kubernetes.pull_policy = \"if-not-present\"\n  [runners.kubernetes]\n    namespace = \"ci\"\n    image = \"alpine\"\n"
        );
        let out = given(chart).running(&aliases("10.0.0.1", &["a.example.com"]));
        assert!(
            out.contains("    [[runners.kubernetes.host_aliases]]"),
            "{out}"
        );
    }

    /// The same key in both spellings is two values for one field: refused, naming both lines.
    #[test]
    fn a_key_in_both_spellings_of_a_table_is_refused() {
        let err = apply(
            "[[runners]]\n  Kubernetes = { namespace = \"a\" }\n  [runners.kubernetes]\n    image = \"x\"\n    namespace = \"b\"\n",
            &TomlPatch::default(),
        )
        .unwrap_err();
        assert_eq!(err.line, Some(2), "{err:?}");
        assert_eq!(err.path.as_deref(), Some("runners[0].Kubernetes.namespace"));
        assert!(
            err.message.contains("(line 2)") && err.message.contains("(line 5)"),
            "{err:?}"
        );
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

    /// toml_edit re-renders every header of an edited document from its keys; the headers the
    /// patch does not add keep their bytes, and new entries of an array take their siblings'.
    #[test]
    fn untouched_headers_stay_byte_identical() {
        let input = "[[runners]]\n  [ runners . 'kubernetes' ] # k8s\n    namespace = \"x\"\n    [[ runners.kubernetes.host_aliases ]]\n      ip = \"10.0.0.2\"\n      hostnames = [\"b\"]\n  [runners . \"cache\"]\n    Type = \"s3\"\n";
        let patch = TomlPatch {
            pull_policy: Some(vec!["always"]),
            host_aliases: vec![("10.0.0.1".into(), vec!["a".into()])],
            tls_ca_file: Some("/x".into()),
            ..Default::default()
        };
        assert_eq!(
            patched(input, &patch),
            "[[runners]]\n  tls-ca-file = \"/x\"\n  [ runners . 'kubernetes' ] # k8s\n    namespace = \"x\"\n    pull_policy = [\"always\"]\n    [[ runners.kubernetes.host_aliases ]]\n      ip = \"10.0.0.2\"\n      hostnames = [\"b\"]\n    [[ runners.kubernetes.host_aliases ]]\n      ip = \"10.0.0.1\"\n      hostnames = [\"a\"]\n  [runners . \"cache\"]\n    Type = \"s3\"\n"
        );
    }

    /// A new `[[…]]` entry under a table whose header is not printed (`volumes`) sits beside its
    /// siblings, not one level deeper, whether `volumes` was there or comes with the fragment.
    #[test]
    fn new_array_headers_are_indented_like_their_siblings() {
        let patch = TomlPatch {
            fragment: Some(
                Fragment::parse(
                    "[[runners.kubernetes.volumes.empty_dir]]\nname = \"e\"\nmount_path = \"/e\"\n",
                )
                .unwrap(),
            ),
            ..Default::default()
        };
        assert_eq!(
            patched(
                "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.volumes.config_map]]\n      name = \"c\"\n      mount_path = \"/c\"\n",
                &patch
            ),
            "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.volumes.config_map]]\n      name = \"c\"\n      mount_path = \"/c\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"e\"\n      mount_path = \"/e\"\n"
        );
        assert_eq!(
            patched(
                "[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n",
                &patch
            ),
            "[[runners]]\n  [runners.kubernetes]\n    namespace = \"x\"\n    [[runners.kubernetes.volumes.empty_dir]]\n      name = \"e\"\n      mount_path = \"/e\"\n"
        );
    }

    /// A new `[[…]]` entry of an existing array sits where its siblings sit, even when the
    /// table above it is laid out differently (an unindented TOML).
    #[test]
    fn new_array_entries_sit_where_their_siblings_sit() {
        let patch = TomlPatch {
            host_aliases: vec![("10.0.0.2".into(), vec!["b".into()])],
            pull_policy: Some(vec!["always"]),
            ..Default::default()
        };
        assert_eq!(
            patched(
                "[[runners]]\n[runners.kubernetes]\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.1\"\nhostnames = [\"a\"]\n",
                &patch
            ),
            "[[runners]]\n[runners.kubernetes]\n  pull_policy = [\"always\"]\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.1\"\nhostnames = [\"a\"]\n[[runners.kubernetes.host_aliases]]\nip = \"10.0.0.2\"\nhostnames = [\"b\"]\n"
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
        let doc: toml_edit::DocumentMut = out.parse().unwrap();
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

#[cfg(test)]
mod piece_tests {
    use super::*;
    use crate::release::register;

    /// The chart-key checks see one piece at a time and still name the entry and line of the
    /// whole TOML; the pieces before the first entry are parsed once, when the TOML is opened.
    #[test]
    fn checks_per_piece_name_lines_and_entries_of_the_whole_toml() {
        let text = "concurrent = 1\n\n[[runners]]\n  name = \"a\"\n[[runners]]\n  [runners.kubernetes]\n    namespace = \"ci\"\n[[runners]]\n  [runners.cache]\n    Typ = \"s3\"\n";
        let toml = RunnerToml::open(text).unwrap();
        assert!(toml.has_runners());
        assert_eq!(toml.job_namespace(), None, "the first entry sets none");
        // (The process-wide parse counters are `tests/compiled_spec.rs`'s: tests here run in
        // parallel.)
        assert_eq!(toml.pieces.len(), 4);
        assert_eq!(toml.head.len(), 2, "the globals and the first entry");
        let mut notes = Vec::new();
        let mut firsts = Vec::new();
        let applied = toml
            .apply(&TomlPatch::default(), |part| {
                firsts.push((part.line(1), part.path("runners[0]")));
                for note in register::toml_problems(&part.doc, &[]) {
                    notes.push((part.path(&note.path), note.line.map(|l| part.line(l))));
                }
            })
            .unwrap();
        assert_eq!(applied.text, None);
        assert_eq!(
            firsts,
            [
                (1, "runners[0]".to_owned()),
                (3, "runners[0]".to_owned()),
                (5, "runners[1]".to_owned()),
                (8, "runners[2]".to_owned()),
            ]
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].0.starts_with("runners[2].cache.Typ"), "{notes:?}");
        assert_eq!(notes[0].1, Some(10));
    }
}
