//! In-place editing of one YAML document: the document's text is rewritten so that it reads as a
//! new value, by splicing text only where the value differs. Every other byte — comments, key
//! order, quoting, the spelling of scalars (`y`, `0644`, `"on"`), Helm's whitespace quirks — stays.
//!
//! One layer for every document runner-patch changes: the runner ConfigMap (one `data` scalar) and
//! the runner Deployment (a checksum, lists to extend, keys to add, env entries to change or drop).
//! The caller states the intent as two values, what the document reads as now and what it must
//! read as afterwards; [`rewrite`] finds the differences on the document's node tree (built from
//! the parser's events and their byte spans) and turns each into a splice:
//!
//! - a changed scalar is rewritten in its own style (a multi-line string as a literal block,
//!   keeping the node's anchor and tag);
//! - list items and mapping entries that are new go after the last existing one, at its
//!   indentation and in its layout (block lists keep their dash column; flow collections, `[]` or
//!   `{…}`, are extended inside their brackets, on a new line of their own when the collection
//!   spans several lines, so that every existing line stays); a null value that must become a
//!   list or mapping becomes a block on the following lines;
//! - removed items and entries lose exactly their lines.
//!
//! Why not a lossless YAML syntax-tree crate: the spans come from granit-parser, the parser
//! serde-saphyr itself reads with, so the node tree and the value it is compared with are the
//! same reading of the same text (YAML 1.1 scalars, duplicate keys, anchors); a second YAML
//! implementation could disagree with the value model on exactly the inputs that matter here.
//!
//! What a splice cannot express (a change through an alias, or to an anchored node that an alias
//! repeats, a merge key, a list that is reordered) is refused with the field's path, never
//! re-emitted. And the result is always read again and compared with the intended value, in every
//! build: a rewrite that does not read back as exactly `new` is an error, never output.

use std::collections::HashMap;

use serde_json::Value;
use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

use crate::manifest::yaml;

/// Why a document could not be edited in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    /// Path of the field (`spec.template.spec.volumes[2]`, `data["config.toml"]`); empty for the
    /// whole document.
    pub field: String,
    pub message: String,
    /// A byte offset of `body` the message refers to (an alias), if any.
    pub at: Option<usize>,
}

/// `body` (one document's YAML, which reads as `old`) rewritten so that it reads as `new`, or
/// `None` when the two are equal. See the module documentation.
pub fn rewrite(body: &str, old: &Value, new: &Value) -> Result<Option<String>, EditError> {
    rewrite_with(body, old, new, false)
}

/// [`rewrite`]; with `block_strings`, a string written into block context is a literal block
/// even when it is a single line (the layout the ConfigMap's TOML value keeps).
fn rewrite_with(
    body: &str,
    old: &Value,
    new: &Value,
    block_strings: bool,
) -> Result<Option<String>, EditError> {
    if old == new {
        return Ok(None);
    }
    let tree = Tree::build(body)?;
    let mut editor = Editor {
        text: body,
        eol: if body.contains("\r\n") { "\r\n" } else { "\n" },
        aliased: &tree.aliased,
        style: tree.style,
        block_strings,
        splices: Vec::new(),
        stripped_at_end_of_input: false,
    };
    let mut path = Vec::new();
    editor.diff(&tree.root, old, new, Place::Root, &mut path)?;
    let out = editor.apply()?;
    read_back(&out, new)?;
    Ok(Some(out))
}

/// `body` (a ConfigMap) with `data[key]` set to `value`, edited in place like [`rewrite`] does;
/// `None` when the document does not parse, has no such key, or cannot be edited in place.
pub fn replace_data_value(body: &str, key: &str, value: &str) -> Option<String> {
    let old = yaml::parse(body).ok()?;
    old.get("data")?.get(key)?;
    let mut new = old.clone();
    new["data"][key] = Value::String(value.to_owned());
    match rewrite_with(body, &old, &new, true) {
        Ok(text) => Some(text.unwrap_or_else(|| body.to_owned())),
        Err(_) => None,
    }
}

/// The read-back check: `text` must parse as exactly `intended`.
pub fn read_back(text: &str, intended: &Value) -> Result<(), EditError> {
    match yaml::parse(text) {
        Ok(back) if &back == intended => Ok(()),
        Ok(back) => Err(EditError {
            field: first_difference(&back, intended, &mut Vec::new()).unwrap_or_default(),
            message:
                "the edited document does not read back as the intended value; nothing was written"
                    .into(),
            at: None,
        }),
        Err(e) => Err(EditError {
            field: String::new(),
            message: format!(
                "the edited document does not parse ({}); nothing was written",
                yaml::describe_error(&e).0
            ),
            at: None,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// The node tree: every node with the byte range of its own text.

#[derive(Debug)]
struct Node {
    /// First byte of the node's content: after its anchor and tag; the `|`/`>` indicator of a
    /// block scalar; the bracket of a flow collection; the first key or item of a block one.
    start: usize,
    /// End of the node's content (exclusive): a block scalar ends with its last non-blank line
    /// (its line break and trailing blank lines are not part of it).
    end: usize,
    /// Where the node's text ends for a sibling written after it: `end`, but for a keep-chomped
    /// block scalar (`|+`, `>+`, `|2+`) the end of its trailing blank lines, which are part of its
    /// value (new lines inserted before them would take them away from it). For a block
    /// collection, that of its last entry or item.
    trail_end: usize,
    /// Anchor id (0 = none).
    anchor: usize,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Scalar {
        style: ScalarStyle,
        /// An empty plain scalar (`key:` with nothing after it); `start == end` sits right after
        /// the `:` or `-` indicator.
        empty: bool,
        /// Tagged `!!binary`: the text is base64 of the value, which a splice cannot write.
        binary: bool,
    },
    Map {
        flow: bool,
        /// Key text (None for a complex key), key node, value node.
        entries: Vec<(Option<String>, Node, Node)>,
    },
    Seq {
        flow: bool,
        items: Vec<Node>,
    },
    Alias,
}

struct Tree {
    root: Node,
    /// Anchor ids some alias refers to, with the offset of the first such alias.
    aliased: HashMap<usize, usize>,
    /// The document's block layout, as most of its nested mappings and lists write it: what a
    /// new block follows where its surroundings show no layout of their own.
    style: Style,
}

/// How a document lays out its blocks (new blocks follow the layout around them, so that a
/// 4-space document with indentless lists does not get 2-space blocks with indented ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Style {
    /// How far a nested block mapping's keys are indented past its key (2: `key:⏎  a: 1`).
    map_step: usize,
    /// How far a block list under a key is indented past the key (0: `key:⏎- a`, 2: `key:⏎  - a`).
    seq_indent: usize,
    /// From a list item's dash to its content (2: `- name: a`, 4: `-   name: a`).
    item_gap: usize,
}

impl Style {
    /// Kubernetes' (and Helm's) usual layout: 2 spaces, lists not indented under their key.
    const USUAL: Style = Style {
        map_step: 2,
        seq_indent: 0,
        item_gap: 2,
    };
}

type Events<'a> = std::iter::Peekable<std::vec::IntoIter<(Event<'a>, usize, usize)>>;

impl Tree {
    fn build(text: &str) -> Result<Tree, EditError> {
        let mut events = Vec::new();
        for item in Parser::new_from_str(text) {
            let (event, span) = item.map_err(|e| EditError {
                field: String::new(),
                message: format!("cannot be parsed for editing: {e}"),
                at: None,
            })?;
            let keep = matches!(
                event,
                Event::Scalar(..)
                    | Event::SequenceStart(..)
                    | Event::SequenceEnd
                    | Event::MappingStart(..)
                    | Event::MappingEnd
                    | Event::Alias(..)
            );
            if matches!(event, Event::DocumentEnd) {
                break;
            }
            if keep {
                let (Some(s), Some(e)) = (span.start.byte_offset(), span.end.byte_offset()) else {
                    return Err(unsupported("", "the parser gave no byte positions"));
                };
                events.push((event, s, e));
            }
        }
        let mut builder = Builder {
            text,
            prev_end: 0,
            aliased: HashMap::new(),
            seq_indent: Votes::default(),
            map_step: Votes::default(),
            item_gap: Votes::default(),
        };
        let mut events: Events<'_> = events.into_iter().peekable();
        let root = builder.node(&mut events, None)?;
        Ok(Tree {
            root,
            aliased: builder.aliased,
            style: Style {
                map_step: builder.map_step.winner().unwrap_or(Style::USUAL.map_step),
                seq_indent: builder
                    .seq_indent
                    .winner()
                    .unwrap_or(Style::USUAL.seq_indent),
                item_gap: builder.item_gap.winner().unwrap_or(Style::USUAL.item_gap),
            },
        })
    }
}

struct Builder<'t> {
    text: &'t str,
    /// End of the last token read (a scalar, an alias or a bracket).
    prev_end: usize,
    aliased: HashMap<usize, usize>,
    seq_indent: Votes,
    map_step: Votes,
    item_gap: Votes,
}

/// Counts how often each width (0..=8) is seen; the most frequent wins, the first seen on a tie.
/// (Helm renders mix layouts: a chart's own lists are not indented, lists pasted in with
/// `nindent` are.)
#[derive(Default)]
struct Votes {
    counts: [usize; 9],
    first: Option<usize>,
}

impl Votes {
    fn add(&mut self, width: usize) {
        let width = width.min(8);
        self.counts[width] += 1;
        self.first.get_or_insert(width);
    }

    fn winner(&self) -> Option<usize> {
        let first = self.first?;
        let best = *self.counts.iter().max()?;
        Some(if self.counts[first] == best {
            first
        } else {
            self.counts.iter().position(|&c| c == best)?
        })
    }
}

impl Builder<'_> {
    /// Reads one node. `key_col` is the column of the key whose value it is, if any.
    fn node(&mut self, events: &mut Events<'_>, key_col: Option<usize>) -> Result<Node, EditError> {
        let Some((event, s, e)) = events.next() else {
            return Err(unsupported("", "unexpected end of the document"));
        };
        match event {
            Event::Scalar(_, style, anchor, tag) => {
                // (`Tag::core_suffix` knows only the seven core-schema tags, not `binary`.)
                let binary = tag.is_some_and(|t| {
                    format!("{}{}", t.handle(), t.suffix()) == "tag:yaml.org,2002:binary"
                });
                let mut node = self.scalar(style, anchor, s, e)?;
                if let Kind::Scalar { binary: b, .. } = &mut node.kind {
                    *b = binary;
                }
                self.prev_end = self.prev_end.max(e);
                Ok(node)
            }
            Event::Alias(id) => {
                self.aliased.entry(id).or_insert(s);
                self.prev_end = e;
                Ok(Node {
                    start: s,
                    end: e,
                    trail_end: e,
                    anchor: 0,
                    kind: Kind::Alias,
                })
            }
            Event::MappingStart(style, anchor, _) => {
                let flow = style == StructureStyle::Flow;
                if flow {
                    self.prev_end = e;
                }
                let mut entries: Vec<(Option<String>, Node, Node)> = Vec::new();
                loop {
                    if let Some((Event::MappingEnd, _, end)) = events.peek() {
                        let end = *end;
                        events.next();
                        if !flow
                            && let (Some(kc), Some((_, first, _))) = (key_col, entries.first())
                            && column(self.text, first.start) > kc
                        {
                            self.map_step.add(column(self.text, first.start) - kc);
                        }
                        let (end, trail_end) = if flow {
                            self.prev_end = end;
                            (end, end)
                        } else {
                            entries
                                .last()
                                .map_or((s, s), |(_, _, v): &(Option<String>, Node, Node)| {
                                    (v.end, v.trail_end)
                                })
                        };
                        return Ok(Node {
                            start: s,
                            end,
                            trail_end,
                            anchor,
                            kind: Kind::Map { flow, entries },
                        });
                    }
                    let key_text = match events.peek() {
                        Some((Event::Scalar(text, ..), ..)) => Some(text.to_string()),
                        _ => None,
                    };
                    let key = self.node(events, None)?;
                    let col = column(self.text, key.start);
                    let value = self.node(events, Some(col))?;
                    entries.push((key_text, key, value));
                }
            }
            Event::SequenceStart(style, anchor, _) => {
                let flow = style == StructureStyle::Flow;
                if flow {
                    self.prev_end = e;
                }
                let mut items = Vec::new();
                loop {
                    if let Some((Event::SequenceEnd, _, end)) = events.peek() {
                        let end = *end;
                        events.next();
                        let (end, trail_end) = if flow {
                            self.prev_end = end;
                            (end, end)
                        } else {
                            items.last().map_or((s, s), |n: &Node| (n.end, n.trail_end))
                        };
                        if !flow
                            && let Some(first) = items.first()
                            && let Some((dash, content)) = dash_layout(self.text, first.start)
                        {
                            if let Some(kc) = key_col {
                                self.seq_indent.add(dash.saturating_sub(kc));
                            }
                            self.item_gap.add((content - dash).max(2));
                        }
                        return Ok(Node {
                            start: s,
                            end,
                            trail_end,
                            anchor,
                            kind: Kind::Seq { flow, items },
                        });
                    }
                    items.push(self.node(events, None)?);
                }
            }
            _ => Err(unsupported("", "unexpected parser event")),
        }
    }

    fn scalar(
        &mut self,
        style: ScalarStyle,
        anchor: usize,
        s: usize,
        e: usize,
    ) -> Result<Node, EditError> {
        let bytes = self.text.as_bytes();
        match style {
            ScalarStyle::Literal | ScalarStyle::Folded => {
                // The span starts at the content; the node starts at its `|`/`>` indicator,
                // found by skipping what may stand between the previous token and it.
                let mut i = self.prev_end;
                let limit = e.max(s).min(bytes.len());
                while i < limit {
                    match bytes[i] {
                        b' ' | b'\t' | b'\r' | b'\n' | b':' | b'-' | b'?' => i += 1,
                        b'#' => i = line_end(self.text, i),
                        b'&' | b'!' => {
                            while i < limit && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                                i += 1;
                            }
                        }
                        _ => break,
                    }
                }
                if i >= limit || !matches!(bytes.get(i), Some(b'|' | b'>')) {
                    return Err(unsupported("", "cannot find a block scalar's indicator"));
                }
                let end = block_scalar_end(self.text, i, e);
                let trail_end = if keeps_trailing_lines(self.text, i) {
                    kept_lines_end(self.text, end)
                } else {
                    end
                };
                Ok(Node {
                    start: i,
                    end,
                    trail_end,
                    anchor,
                    kind: Kind::Scalar {
                        style,
                        empty: false,
                        binary: false,
                    },
                })
            }
            ScalarStyle::Plain if s == e => {
                // An empty value: place it right after its `:` or `-` indicator.
                let mut i = s;
                while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
                    i += 1;
                }
                let at = if matches!(bytes.get(i), Some(b':' | b'-')) {
                    i + 1
                } else {
                    s
                };
                Ok(Node {
                    start: at,
                    end: at,
                    trail_end: at,
                    anchor,
                    kind: Kind::Scalar {
                        style,
                        empty: true,
                        binary: false,
                    },
                })
            }
            _ => Ok(Node {
                start: s,
                end: e,
                trail_end: e,
                anchor,
                kind: Kind::Scalar {
                    style,
                    empty: false,
                    binary: false,
                },
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Turning differences into splices.

/// Where a node sits, for writing a replacement in the right layout.
#[derive(Clone, Copy)]
enum Place {
    Root,
    /// The value of a block mapping key at this column, in a mapping laid out so.
    BlockValue {
        key_col: usize,
        style: Style,
    },
    /// An item of a block list whose dash is at this column, in a list laid out so.
    BlockItem {
        dash_col: usize,
        style: Style,
    },
    /// Inside a flow collection.
    Flow,
}

#[derive(Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

struct Splice {
    start: usize,
    end: usize,
    text: String,
}

struct Editor<'t> {
    text: &'t str,
    eol: &'static str,
    aliased: &'t HashMap<usize, usize>,
    /// The document's layout (see [`Tree::style`]).
    style: Style,
    /// Write every replaced string in block context as a literal block (see [`rewrite_with`]).
    block_strings: bool,
    splices: Vec<Splice>,
    /// The header of a block scalar ending the text without a line break is already given strip
    /// chomping (see [`Editor::insert_lines`]).
    stripped_at_end_of_input: bool,
}

impl Editor<'_> {
    fn diff(
        &mut self,
        node: &Node,
        old: &Value,
        new: &Value,
        place: Place,
        path: &mut Vec<Segment>,
    ) -> Result<(), EditError> {
        if old == new {
            return Ok(());
        }
        if matches!(node.kind, Kind::Alias) {
            return Err(refuse(
                path,
                "is an alias (`*…`); an edit here would not stay local",
            ));
        }
        if node.anchor != 0
            && let Some(&alias) = self.aliased.get(&node.anchor)
        {
            let mut err = refuse(
                path,
                "carries an anchor (`&…`) that an alias elsewhere in the document repeats; editing it would change both, so runner-patch refuses",
            );
            err.at = Some(alias);
            return Err(err);
        }
        if matches!(node.kind, Kind::Scalar { binary: true, .. }) {
            return Err(refuse(
                path,
                "is tagged `!!binary` (its text is the base64 of the value), which runner-patch does not write; make it a plain string in the chart (`|` block)",
            ));
        }
        match (&node.kind, old, new) {
            (Kind::Map { flow, entries }, Value::Object(o), Value::Object(n)) => {
                let flow = *flow;
                let mut added = Vec::new();
                for (k, nv) in n {
                    match o.get(k) {
                        Some(ov) if ov == nv => {}
                        Some(ov) => {
                            let (_, key, value) = entry(entries, k).ok_or_else(|| {
                                refuse(
                                    path,
                                    "takes a key from a merge key (`<<`); cannot edit it in place",
                                )
                            })?;
                            let place = if flow {
                                Place::Flow
                            } else {
                                Place::BlockValue {
                                    key_col: column(self.text, key.start),
                                    style: self.local_style(node),
                                }
                            };
                            path.push(Segment::Key(k.clone()));
                            self.diff(value, ov, nv, place, path)?;
                            // Earlier entries of a repeated key are shadowed (go-yaml v2 keeps
                            // the last, yaml.v3 rejects the document): the edited key loses them,
                            // so that every reader reads the one that was edited.
                            for (_, dup_key, dup_value) in
                                entries.iter().filter(|(text, key, _)| {
                                    text.as_deref() == Some(k.as_str())
                                        && key.start != entry_key_start(entries, k)
                                })
                            {
                                self.remove_entry(node, dup_key, dup_value, path)?;
                            }
                            path.pop();
                        }
                        None => added.push((k.as_str(), nv)),
                    }
                }
                for k in o.keys().filter(|k| !n.contains_key(*k)) {
                    path.push(Segment::Key(k.clone()));
                    let found = entries
                        .iter()
                        .filter(|(text, ..)| text.as_deref() == Some(k.as_str()))
                        .collect::<Vec<_>>();
                    let [(_, key, value)] = found.as_slice() else {
                        return Err(refuse(
                            path,
                            "cannot be removed in place (a merge key or a duplicate key)",
                        ));
                    };
                    self.remove_entry(node, key, value, path)?;
                    path.pop();
                }
                if !added.is_empty() {
                    self.add_entries(node, &added, path)?;
                }
                Ok(())
            }
            (Kind::Seq { items, .. }, Value::Array(o), Value::Array(n)) => {
                if items.len() != o.len() {
                    return Err(refuse(path, "does not match the parsed document"));
                }
                let place = self.item_place(node, items.first());
                if n.len() >= o.len() {
                    for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                        path.push(Segment::Index(i));
                        self.diff(&items[i], ov, nv, place, path)?;
                        path.pop();
                    }
                    if n.len() > o.len() {
                        self.append_items(node, &n[o.len()..], path)?;
                    }
                    return Ok(());
                }
                // Fewer items: removals, order kept; the items that stay (the same value, or an
                // entry of the same `name`) may change.
                let mut removed = Vec::new();
                let mut kept = Vec::new();
                let mut j = 0;
                for (i, ov) in o.iter().enumerate() {
                    if j < n.len() && same_item(ov, &n[j]) {
                        kept.push((i, j));
                        j += 1;
                    } else {
                        removed.push(i);
                    }
                }
                if j != n.len() || n.is_empty() {
                    return Err(refuse(
                        path,
                        "would have to be rewritten as a whole (items reordered, or every item removed); runner-patch only appends, changes or removes items in place",
                    ));
                }
                for (i, j) in kept {
                    path.push(Segment::Index(i));
                    self.diff(&items[i], &o[i], &n[j], place, path)?;
                    path.pop();
                }
                for i in removed {
                    path.push(Segment::Index(i));
                    self.remove_item(node, i, path)?;
                    path.pop();
                }
                Ok(())
            }
            (Kind::Scalar { .. } | Kind::Map { .. } | Kind::Seq { .. }, _, _) => {
                self.replace(node, new, place, path)
            }
            (Kind::Alias, ..) => unreachable!("refused above"),
        }
    }

    fn item_place(&self, seq: &Node, first: Option<&Node>) -> Place {
        match (&seq.kind, first) {
            (Kind::Seq { flow: true, .. }, _) => Place::Flow,
            (_, Some(first)) => {
                dash_layout(self.text, first.start).map_or(Place::Flow, |(dash_col, _)| {
                    Place::BlockItem {
                        dash_col,
                        style: self.local_style(seq),
                    }
                })
            }
            _ => Place::Flow,
        }
    }

    /// Replaces a node (a scalar, or a collection that changes type) with `value`.
    fn replace(
        &mut self,
        node: &Node,
        value: &Value,
        place: Place,
        path: &[Segment],
    ) -> Result<(), EditError> {
        let block_collection = matches!(
            node.kind,
            Kind::Map { flow: false, .. } | Kind::Seq { flow: false, .. }
        );
        if block_collection {
            return Err(refuse(
                path,
                "changes type; cannot edit a block collection into something else in place",
            ));
        }
        let (indent, in_flow, style) = match place {
            Place::Root => (0, false, self.style),
            Place::BlockValue { key_col, style } => (key_col, false, style),
            Place::BlockItem { dash_col, style } => (dash_col, false, style),
            Place::Flow => (0, true, self.style),
        };
        let empty_collection = matches!(value, Value::Object(m) if m.is_empty())
            || matches!(value, Value::Array(a) if a.is_empty());
        let collection = matches!(value, Value::Object(_) | Value::Array(_));
        if in_flow || (collection && (empty_collection || matches!(place, Place::Root))) {
            let text = flow_text(value);
            self.splice(node.start, node.end, text);
            return Ok(());
        }
        if collection {
            // A scalar (`key:`, `key: ~`) becomes a block collection on the following lines.
            let lines = match value {
                Value::Array(items) => {
                    let dash_col = match place {
                        Place::BlockValue { .. } => indent + style.seq_indent,
                        _ => indent + style.item_gap,
                    };
                    self.seq_lines(items, dash_col, style)
                }
                _ => {
                    let col = match place {
                        Place::BlockValue { .. } => indent + style.map_step,
                        _ => indent + style.item_gap,
                    };
                    self.map_lines(value, col, style)
                }
            };
            let line_start = line_start(self.text, node.start);
            let before = &self.text[line_start..node.start];
            let trimmed = before.trim_end_matches([' ', '\t']).len() + line_start;
            let rest = &self.text[node.end..line_end(self.text, node.end)];
            let comment = rest.trim();
            if !comment.is_empty() && !comment.starts_with('#') {
                return Err(refuse(
                    path,
                    "has more content on its line; cannot turn it into a block",
                ));
            }
            let keep = if comment.is_empty() {
                String::new()
            } else {
                format!(" {comment}")
            };
            let cut_end = node.end + rest.trim_end_matches(['\r', '\n']).len();
            let text = format!("{keep}\n{}", lines.join("\n"));
            self.splice(trimmed, cut_end, text);
            return Ok(());
        }
        let Kind::Scalar { style, empty, .. } = node.kind else {
            unreachable!("collections handled above")
        };
        if let Value::String(s) = value
            && (s.contains('\n') || self.block_strings)
        {
            let old_block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
            // An old block's content indentation is kept (when deeper than the key's).
            let content_indent = old_block
                .then(|| block_content_indent(self.text, node))
                .flatten()
                .filter(|&i| i > indent)
                .unwrap_or(indent + 2);
            if let Some(block) = literal_block(s, content_indent, content_indent - indent) {
                // The block's content goes on the following lines: a comment after the old
                // scalar (or on an old block's indicator line) moves onto the indicator's line.
                let le = line_end(self.text, node.end);
                let rest = if old_block {
                    let header_line = &self.text[node.start..line_end(self.text, node.start)];
                    header_line
                        .find(" #")
                        .map_or("", |i| header_line[i..].trim())
                } else {
                    self.text[node.end..le].trim()
                };
                if !rest.is_empty() && !rest.starts_with('#') {
                    return Err(refuse(
                        path,
                        "has more content on its line; cannot write a block there",
                    ));
                }
                let header = if rest.is_empty() {
                    block.header
                } else {
                    format!("{} {rest}", block.header)
                };
                let lead = if empty { " " } else { "" };
                let cut_end =
                    node.end + self.text[node.end..le].trim_end_matches(['\r', '\n']).len();
                let mut lines = if style == ScalarStyle::Literal {
                    self.keep_unchanged_lines(node, block.lines)
                } else {
                    block.lines
                };
                // Put in front in the lines' own buffer: a block as large as the TOML is not
                // copied once more.
                lines.insert_str(0, &format!("{lead}{header}\n"));
                self.splice(node.start, cut_end, lines);
                return Ok(());
            }
            self.splice(node.start, node.end, json_quoted(s));
            return Ok(());
        }
        let text = match (style, value) {
            (ScalarStyle::DoubleQuoted, Value::String(s)) => json_quoted(s),
            (ScalarStyle::SingleQuoted, Value::String(s)) if single_line_safe(s) => {
                format!("'{}'", s.replace('\'', "''"))
            }
            _ => scalar_text(value),
        };
        let text = if empty { format!(" {text}") } else { text };
        self.splice(node.start, node.end, text);
        Ok(())
    }

    /// The content lines of a literal block replacing the literal block `node`: where a line
    /// reads the same as one of the old block (matched in order, Myers), the old line's bytes are
    /// kept (a whitespace-only blank line stays whitespace-only), so only lines that changed
    /// differ. Applies when both blocks have the same content indentation.
    fn keep_unchanged_lines(&self, node: &Node, new: String) -> String {
        let content_start = line_end(self.text, node.start);
        if content_start >= node.end {
            return new;
        }
        let old_raw: Vec<&str> = self.text[content_start..node.end]
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let new_raw: Vec<&str> = new.split('\n').collect();
        let indent_of = |lines: &[&str]| {
            lines
                .iter()
                .find(|l| !l.trim().is_empty())
                .map(|l| l.len() - l.trim_start_matches(' ').len())
        };
        let indent = indent_of(&old_raw);
        if indent.is_none() || indent != indent_of(&new_raw) {
            drop(new_raw);
            return new;
        }
        let indent = indent.unwrap_or(0);
        // Only a whitespace-only line of the old block can differ in its bytes from the same line
        // written anew (`new` writes a blank line empty): without one, `new` is the answer, and
        // a large block is not diffed.
        let blank_with_spaces =
            |l: &&str| !l.is_empty() && l.len() <= indent && l.trim().is_empty();
        if !old_raw.iter().any(blank_with_spaces) {
            drop(new_raw);
            return new;
        }
        let old_text: Vec<&str> = old_raw.iter().map(|l| decode(l, indent)).collect();
        let new_text: Vec<&str> = new_raw.iter().map(|l| decode(l, indent)).collect();
        let mut out: Vec<&str> = Vec::with_capacity(new_raw.len());
        for op in similar::capture_diff_slices(similar::Algorithm::Myers, &old_text, &new_text) {
            match op {
                similar::DiffOp::Equal { old_index, len, .. } => {
                    out.extend(&old_raw[old_index..old_index + len]);
                }
                similar::DiffOp::Insert {
                    new_index, new_len, ..
                }
                | similar::DiffOp::Replace {
                    new_index, new_len, ..
                } => out.extend(&new_raw[new_index..new_index + new_len]),
                similar::DiffOp::Delete { .. } => {}
            }
        }
        out.join("\n")
    }

    fn add_entries(
        &mut self,
        map: &Node,
        added: &[(&str, &Value)],
        path: &[Segment],
    ) -> Result<(), EditError> {
        let Kind::Map { flow, entries } = &map.kind else {
            unreachable!()
        };
        if *flow {
            let parts: Vec<String> = added
                .iter()
                .map(|(k, v)| format!("{}: {}", json_quoted(k), flow_text(v)))
                .collect();
            // After the last entry (so a multi-line flow mapping keeps its closing line), or
            // inside the braces of an empty one.
            let (at, sep) = entries
                .last()
                .map_or((map.end - 1, String::new()), |(_, _, v)| {
                    (v.end, self.flow_separator(map, v.end))
                });
            self.splice(at, at, format!("{sep}{}", parts.join(", ")));
            return Ok(());
        }
        let Some((_, first_key, _)) = entries.first() else {
            return Err(refuse(path, "is an empty block mapping"));
        };
        let col = column(self.text, first_key.start);
        let style = self.local_style(map);
        let mut lines = Vec::new();
        for (k, v) in added {
            self.entry_lines(k, v, col, style, &mut lines);
        }
        self.insert_lines(map.trail_end, lines);
        Ok(())
    }

    fn append_items(
        &mut self,
        seq: &Node,
        added: &[Value],
        path: &[Segment],
    ) -> Result<(), EditError> {
        let Kind::Seq { flow, items } = &seq.kind else {
            unreachable!()
        };
        if *flow {
            let parts: Vec<String> = added.iter().map(flow_text).collect();
            let (at, sep) = items.last().map_or((seq.end - 1, String::new()), |last| {
                (last.end, self.flow_separator(seq, last.end))
            });
            self.splice(at, at, format!("{sep}{}", parts.join(", ")));
            return Ok(());
        }
        let Some((dash_col, content_col)) =
            items.first().and_then(|f| dash_layout(self.text, f.start))
        else {
            return Err(refuse(
                path,
                "is a block list in a layout runner-patch cannot extend",
            ));
        };
        let style = Style {
            item_gap: content_col - dash_col,
            ..self.local_style(seq)
        };
        let mut lines = Vec::new();
        for item in added {
            self.item_lines(item, dash_col, style, &mut lines);
        }
        self.insert_lines(seq.trail_end, lines);
        Ok(())
    }

    /// What goes between a flow collection's last item (ending at `last_end`) and new ones: in
    /// a collection written over several lines, a line break, the last item's indentation and
    /// the comma, so that every existing line stays as it was.
    fn flow_separator(&self, collection: &Node, last_end: usize) -> String {
        if !self.text[collection.start..collection.end].contains('\n') {
            return ", ".into();
        }
        let ls = line_start(self.text, last_end);
        let line = &self.text[ls..last_end];
        let pad = line.len() - line.trim_start_matches(' ').len();
        format!("\n{}, ", " ".repeat(pad))
    }

    fn remove_item(&mut self, seq: &Node, i: usize, path: &[Segment]) -> Result<(), EditError> {
        let Kind::Seq { flow, items } = &seq.kind else {
            unreachable!()
        };
        let item = &items[i];
        if *flow {
            return self.remove_flow(items, i);
        }
        let Some((dash_col, _)) = dash_layout(self.text, item.start) else {
            return Err(refuse(
                path,
                "is a list item in a layout runner-patch cannot remove",
            ));
        };
        let ls = line_start(self.text, item.start);
        if !self.text[ls..ls + dash_col].bytes().all(|b| b == b' ') {
            return Err(refuse(
                path,
                "shares its line with another item; cannot remove it",
            ));
        }
        self.splice(ls, line_end(self.text, item.trail_end), String::new());
        Ok(())
    }

    fn remove_entry(
        &mut self,
        map: &Node,
        key: &Node,
        value: &Node,
        path: &[Segment],
    ) -> Result<(), EditError> {
        let Kind::Map { flow, entries } = &map.kind else {
            unreachable!()
        };
        if *flow {
            let i = entries
                .iter()
                .position(|(_, k, _)| k.start == key.start)
                .expect("entry of this mapping");
            let (s, e) = flow_removal(
                self.text,
                &entries
                    .iter()
                    .map(|(_, k, v)| (k.start, v.end))
                    .collect::<Vec<_>>(),
                i,
            );
            self.splice(s, e, String::new());
            return Ok(());
        }
        let ls = line_start(self.text, key.start);
        if !self.text[ls..key.start].bytes().all(|b| b == b' ') {
            // The first key of a list item (`- name: a`): the next key moves up onto the dash's
            // line, if it starts a line of its own.
            let i = entries
                .iter()
                .position(|(_, k, _)| k.start == key.start)
                .expect("entry of this mapping");
            if let Some((_, next, _)) = entries.get(i + 1)
                && i == 0
                && self.text[line_start(self.text, next.start)..next.start]
                    .bytes()
                    .all(|b| b == b' ')
                && line_start(self.text, next.start) > value.end.max(key.end)
            {
                self.splice(key.start, next.start, String::new());
                return Ok(());
            }
            return Err(refuse(
                path,
                "shares its line with a list dash or another key; cannot remove it in place",
            ));
        }
        self.splice(
            ls,
            line_end(self.text, value.trail_end.max(key.end)),
            String::new(),
        );
        Ok(())
    }

    fn remove_flow(&mut self, items: &[Node], i: usize) -> Result<(), EditError> {
        let spans: Vec<(usize, usize)> = items.iter().map(|n| (n.start, n.end)).collect();
        let (s, e) = flow_removal(self.text, &spans, i);
        self.splice(s, e, String::new());
        Ok(())
    }

    // --- writing new nodes in block layout ---

    /// The layout new blocks inside `node` (a block mapping or list) follow: what its own
    /// entries, or its items' entries, show (a nested mapping's step, a list's indentation under
    /// its key, an item's dash gap); the document's layout for what they do not show.
    fn local_style(&self, node: &Node) -> Style {
        let mut style = self.style;
        let (mut step, mut indent, mut gap) = (None, None, None);
        let mut observe = |entries: &[(Option<String>, Node, Node)]| {
            for (_, key, value) in entries {
                let key_col = column(self.text, key.start);
                match &value.kind {
                    Kind::Map {
                        flow: false,
                        entries: inner,
                    } => {
                        if let Some((_, first, _)) = inner.first() {
                            let col = column(self.text, first.start);
                            if col > key_col {
                                step.get_or_insert(col - key_col);
                            }
                        }
                    }
                    Kind::Seq { flow: false, items } => {
                        if let Some((dash, content)) =
                            items.first().and_then(|f| dash_layout(self.text, f.start))
                            && dash >= key_col
                        {
                            indent.get_or_insert(dash - key_col);
                            gap.get_or_insert(content - dash);
                        }
                    }
                    _ => {}
                }
            }
        };
        match &node.kind {
            Kind::Map {
                flow: false,
                entries,
            } => observe(entries),
            Kind::Seq { flow: false, items } => {
                for item in items {
                    if let Kind::Map {
                        flow: false,
                        entries,
                    } = &item.kind
                    {
                        observe(entries);
                    }
                }
                if let Some((dash, content)) =
                    items.first().and_then(|f| dash_layout(self.text, f.start))
                {
                    gap = Some(content - dash);
                }
            }
            _ => {}
        }
        style.map_step = step.map_or(style.map_step, |s| s.min(8));
        style.seq_indent = indent.map_or(style.seq_indent, |i| i.min(8));
        style.item_gap = gap.map_or(style.item_gap, |g| g.clamp(2, 8));
        style
    }

    fn entry_lines(
        &self,
        key: &str,
        value: &Value,
        col: usize,
        style: Style,
        out: &mut Vec<String>,
    ) {
        let pad = " ".repeat(col);
        let key = key_text(key);
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push(format!("{pad}{key}:"));
                out.extend(self.map_lines(value, col + style.map_step, style));
            }
            Value::Array(a) if !a.is_empty() => {
                out.push(format!("{pad}{key}:"));
                out.extend(self.seq_lines(a, col + style.seq_indent, style));
            }
            Value::String(s) if s.contains('\n') => {
                match literal_block(s, col + style.map_step, style.map_step) {
                    Some(block) => {
                        out.push(format!("{pad}{key}: {}", block.header));
                        out.extend(block.lines.split('\n').map(str::to_owned));
                    }
                    None => out.push(format!("{pad}{key}: {}", json_quoted(s))),
                }
            }
            other => out.push(format!("{pad}{key}: {}", scalar_text(other))),
        }
    }

    /// The lines of a mapping at column `col`; `name` (and a host alias's `ip`) first, the way
    /// the chart writes its own entries.
    fn map_lines(&self, value: &Value, col: usize, style: Style) -> Vec<String> {
        let Value::Object(m) = value else {
            return vec![format!("{}{}", " ".repeat(col), flow_text(value))];
        };
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by_key(|k| match k.as_str() {
            "name" => 0,
            "ip" => 1,
            _ => 2,
        });
        let mut out = Vec::new();
        for k in keys {
            self.entry_lines(k, &m[k.as_str()], col, style, &mut out);
        }
        out
    }

    fn seq_lines(&self, items: &[Value], dash_col: usize, style: Style) -> Vec<String> {
        let mut out = Vec::new();
        for item in items {
            self.item_lines(item, dash_col, style, &mut out);
        }
        out
    }

    fn item_lines(&self, item: &Value, dash_col: usize, style: Style, out: &mut Vec<String>) {
        let gap = style.item_gap.max(2);
        let dash = format!("{}-{}", " ".repeat(dash_col), " ".repeat(gap - 1));
        match item {
            Value::Object(m) if !m.is_empty() => {
                let mut lines = self.map_lines(item, dash_col + gap, style);
                lines[0] = format!("{dash}{}", &lines[0][dash_col + gap..]);
                out.extend(lines);
            }
            Value::String(s) if s.contains('\n') => out.push(format!("{dash}{}", json_quoted(s))),
            Value::Object(_) | Value::Array(_) => out.push(format!("{dash}{}", flow_text(item))),
            other => out.push(format!("{dash}{}", scalar_text(other))),
        }
    }

    /// Inserts whole lines after the line holding `after` (the end of a node's content).
    fn insert_lines(&mut self, after: usize, lines: Vec<String>) {
        let col = lines
            .first()
            .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
        let at = self.past_deeper_comments(line_end(self.text, after), col);
        let mut text = lines.join("\n");
        if at == self.text.len() && !self.text.ends_with('\n') {
            // The last line gains a line break. When it is the last content line of a block
            // scalar, that break would become part of the value (`k: |⏎  keep` reads as "keep",
            // YAML 1.2 `b-chomped-last`; with a line break and more lines after it, as "keep\n").
            // Its header gets strip chomping (`|` → `|-`, `|+` → `|-`), which reads as "keep"
            // either way: one byte in the header the edit already borders, where moving the new
            // lines before the scalar's key would reorder the document, and a refusal would turn
            // away a stream that only lacks a final newline.
            if !self.stripped_at_end_of_input {
                self.stripped_at_end_of_input = true;
                if let Some(header) = yaml::strip_chomping_at_end_of_input(self.text) {
                    self.splice(header.start, header.end, "-".into());
                }
            }
            text.insert(0, '\n');
        } else {
            text.push('\n');
        }
        self.splice(at, at, text);
    }

    /// Where new lines at column `col` go when `at` is the end of the node they follow: past
    /// comment lines indented deeper than `col` (and blank lines before such a comment). Those
    /// comments belong to what comes before, and in front of a new block scalar they would be
    /// read as its content.
    fn past_deeper_comments(&self, at: usize, col: usize) -> usize {
        let mut end = at;
        let mut probe = at;
        while probe < self.text.len() {
            let next = line_end(self.text, probe);
            let line = self.text[probe..next].trim_end_matches(['\r', '\n']);
            let trimmed = line.trim_start_matches(' ');
            let indent = line.len() - trimmed.len();
            if trimmed.starts_with('#') && indent > col {
                end = next;
            } else if !trimmed.trim().is_empty() {
                break;
            }
            probe = next;
        }
        end
    }

    fn splice(&mut self, start: usize, end: usize, text: String) {
        let text = if self.eol == "\n" {
            text
        } else {
            text.replace('\n', self.eol)
        };
        self.splices.push(Splice { start, end, text });
    }

    fn apply(mut self) -> Result<String, EditError> {
        // Insertions at one point keep the order they were made in.
        self.splices.sort_by_key(|s| (s.start, s.end));
        let mut out = String::with_capacity(
            self.text.len() + self.splices.iter().map(|s| s.text.len()).sum::<usize>(),
        );
        let mut at = 0;
        for s in &self.splices {
            if s.start < at {
                return Err(unsupported("", "two edits overlap"));
            }
            out.push_str(&self.text[at..s.start]);
            out.push_str(&s.text);
            at = s.end;
        }
        out.push_str(&self.text[at..]);
        Ok(out)
    }
}

/// Whether `b` is `a`, possibly changed: equal, or both entries with the same `name`.
fn same_item(a: &Value, b: &Value) -> bool {
    a == b
        || matches!(
            (a.get("name").and_then(Value::as_str), b.get("name").and_then(Value::as_str)),
            (Some(x), Some(y)) if x == y
        )
}

fn entry_key_start(entries: &[(Option<String>, Node, Node)], k: &str) -> usize {
    entry(entries, k).map_or(usize::MAX, |(_, key, _)| key.start)
}

/// The last entry with key `k` (the one a reader keeps when a key is repeated).
fn entry<'n>(
    entries: &'n [(Option<String>, Node, Node)],
    k: &str,
) -> Option<&'n (Option<String>, Node, Node)> {
    entries
        .iter()
        .rev()
        .find(|(text, ..)| text.as_deref() == Some(k))
}

/// The byte range that removes item `i` of a flow collection, with one separating comma.
fn flow_removal(text: &str, spans: &[(usize, usize)], i: usize) -> (usize, usize) {
    if i + 1 < spans.len() {
        (spans[i].0, spans[i + 1].0)
    } else if i > 0 {
        (spans[i - 1].1, spans[i].1)
    } else {
        // The only item: up to the closing bracket, spaces and a trailing comma included.
        let rest = &text[spans[i].1..];
        let skip = rest.len() - rest.trim_start_matches([' ', ',', '\t', '\n', '\r']).len();
        (spans[i].0, spans[i].1 + skip)
    }
}

/// For a list item starting at `start`: the column of its dash and of its content, when the item
/// sits on its dash's line (`- name: x`, `  -   x`).
fn dash_layout(text: &str, start: usize) -> Option<(usize, usize)> {
    let ls = line_start(text, start);
    let prefix = &text[ls..start];
    let dash = prefix.rfind('-')?;
    if !prefix[dash + 1..].bytes().all(|b| b == b' ') || prefix.len() == dash + 1 {
        return None;
    }
    if !prefix[..dash].bytes().all(|b| b == b' ' || b == b'-') {
        return None;
    }
    Some((dash, prefix.len()))
}

/// What a line of a block scalar with content at column `indent` holds (a blank line no deeper
/// than that holds nothing).
fn decode(line: &str, indent: usize) -> &str {
    if line.len() <= indent && line.trim().is_empty() {
        ""
    } else {
        line.get(indent..).unwrap_or(line)
    }
}

/// The column of a block scalar's content: the indentation of its first non-blank line.
fn block_content_indent(text: &str, node: &Node) -> Option<usize> {
    let content_start = line_end(text, node.start);
    text.get(content_start..node.end)?
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
}

/// The end of a block scalar whose indicator is at `indicator` and whose span ends at `span_end`
/// (the next token): the end of its last line that is content. Trailing blank lines no deeper
/// than the content's indentation are not content (Helm leaves such lines after every block);
/// whitespace-only lines deeper than that are (they read as spaces).
fn block_scalar_end(text: &str, indicator: usize, span_end: usize) -> usize {
    let header_end = line_end(text, indicator);
    let region_end = if span_end >= text.len() || column(text, span_end) == 0 {
        span_end.min(text.len())
    } else {
        line_start(text, span_end)
    };
    if region_end <= header_end {
        return indicator + text[indicator..header_end.min(text.len())].trim_end().len();
    }
    let lines = &text[header_end..region_end];
    let indent = lines
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .map_or(0, |l| l.len() - l.trim_start_matches(' ').len());
    let mut end = region_end;
    while end > header_end {
        let ls = line_start(text, end - 1).max(header_end);
        let line = text[ls..end].trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() && line.len() <= indent {
            end = ls;
        } else {
            return ls + line.len();
        }
    }
    indicator + text[indicator..header_end].trim_end().len()
}

/// Whether the block scalar whose `|`/`>` indicator is at `indicator` has keep chomping (`+`
/// among the indicators that follow it).
fn keeps_trailing_lines(text: &str, indicator: usize) -> bool {
    text[indicator + 1..]
        .bytes()
        .take_while(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-'))
        .any(|b| b == b'+')
}

/// The end of the blank lines that follow a block scalar's last content line (ending at
/// `content_end`): up to the first line that holds anything, a comment included (a comment line
/// ends a block scalar's trailing lines). Whitespace deeper than the content is content, so
/// every line skipped here is one of the scalar's kept line breaks. A last line of spaces with
/// no line break (the end of input) holds no line break to keep: new lines go before it, so that
/// it stays without one and the value stays as it was.
fn kept_lines_end(text: &str, content_end: usize) -> usize {
    let mut trail_end = content_end;
    let mut at = line_end(text, content_end);
    while at < text.len() {
        let next = line_end(text, at);
        if !text[at..next].ends_with('\n') {
            break;
        }
        let line = text[at..next].trim_end_matches(['\n', '\r']);
        if !line.bytes().all(|b| b == b' ' || b == b'\t') {
            break;
        }
        trail_end = at + line.len();
        at = next;
    }
    trail_end
}

fn line_start(text: &str, pos: usize) -> usize {
    text[..pos].rfind('\n').map_or(0, |i| i + 1)
}

fn line_end(text: &str, pos: usize) -> usize {
    text[pos..].find('\n').map_or(text.len(), |i| pos + i + 1)
}

fn column(text: &str, pos: usize) -> usize {
    pos - line_start(text, pos)
}

fn unsupported(field: &str, message: &str) -> EditError {
    EditError {
        field: field.to_owned(),
        message: format!("cannot be edited in place: {message}"),
        at: None,
    }
}

fn refuse(path: &[Segment], message: &str) -> EditError {
    EditError {
        field: render_path(path),
        message: message.to_owned(),
        at: None,
    }
}

/// `spec.template.spec.volumes[2]`, `data["config.template.toml"]`.
fn render_path(path: &[Segment]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
            Segment::Key(k)
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Segment::Key(k) => out.push_str(&format!("[{k:?}]")),
        }
    }
    out
}

fn first_difference(a: &Value, b: &Value, path: &mut Vec<Segment>) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                path.push(Segment::Key(k.clone()));
                let found = match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => first_difference(v, w, path),
                    _ => Some(render_path(path)),
                };
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            x.iter().zip(y).enumerate().find_map(|(i, (v, w))| {
                path.push(Segment::Index(i));
                let found = first_difference(v, w, path);
                path.pop();
                found
            })
        }
        _ if a == b => None,
        _ => Some(render_path(path)),
    }
}

// ---------------------------------------------------------------------------------------------
// Scalars.

/// A literal block for `s` with content at column `indent`, `indicator` columns deeper than its
/// parent: the header (`|`, `|-`, with that indentation indicator when the first line starts with
/// a space) and the content lines. `None`
/// when a literal block cannot carry `s` exactly (control characters, CR, YAML line separators,
/// several trailing line breaks, a TAB-first line Go readers reject).
struct Block {
    header: String,
    lines: String,
}

fn literal_block(s: &str, indent: usize, indicator: usize) -> Option<Block> {
    let can = !s.is_empty()
        && !s.starts_with(['\t', '\n'])
        && !s.ends_with("\n\n")
        && !s.chars().any(|c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        });
    if !can {
        return None;
    }
    let mut header = String::from("|");
    if s.starts_with(' ') {
        if !(1..=9).contains(&indicator) {
            return None;
        }
        header.push(char::from(b'0' + indicator as u8));
    }
    if !s.ends_with('\n') {
        header.push('-');
    }
    let pad = " ".repeat(indent);
    let body = s.strip_suffix('\n').unwrap_or(s);
    // Sized exactly (an indentation per non-empty line), so that the buffer of a large block
    // is never grown by copying.
    let indented = body.split('\n').filter(|l| !l.is_empty()).count();
    let mut lines = String::with_capacity(body.len() + indented * indent);
    for (i, l) in body.split('\n').enumerate() {
        if i > 0 {
            lines.push('\n');
        }
        if !l.is_empty() {
            lines.push_str(&pad);
            lines.push_str(l);
        }
    }
    Some(Block { header, lines })
}

/// A scalar in block context, written so that go-yaml v2, yaml.v3 and YAML 1.1 readers all read
/// it as exactly this value (serde-saphyr quotes every spelling one of them would reinterpret).
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => {
            if single_line_safe(s)
                && let Ok(text) = serde_saphyr::to_string(s)
            {
                let text = text.strip_suffix('\n').unwrap_or(&text);
                if !text.contains('\n') && !text.starts_with(['|', '>']) && !text.starts_with("---")
                {
                    return text.to_owned();
                }
            }
            json_quoted(s)
        }
        Value::Object(_) | Value::Array(_) => flow_text(v),
        other => other.to_string(),
    }
}

fn key_text(k: &str) -> String {
    let text = scalar_text(&Value::String(k.to_owned()));
    if text.starts_with(['?', '-']) || text.contains(": ") {
        json_quoted(k)
    } else {
        text
    }
}

fn single_line_safe(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}'))
}

/// Flow (JSON) text: valid YAML in any context, strings double-quoted.
fn flow_text(v: &Value) -> String {
    match v {
        Value::String(s) => json_quoted(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(flow_text).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}: {}", json_quoted(k), flow_text(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// A YAML double-quoted scalar: JSON string syntax, with the characters YAML 1.1 readers take as
/// line breaks (or reject) escaped, which JSON leaves raw.
pub fn json_quoted(s: &str) -> String {
    let json = serde_json::to_string(s).expect("a string serializes");
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[track_caller]
    fn edit(body: &str, change: impl FnOnce(&mut Value)) -> String {
        let old = yaml::parse(body).unwrap();
        let mut new = old.clone();
        change(&mut new);
        rewrite(body, &old, &new)
            .unwrap()
            .unwrap_or_else(|| body.to_owned())
    }

    #[test]
    fn replaces_a_data_value_keeping_everything_else() {
        let body =
            "kind: ConfigMap\ndata:\n  a: \"x\"\n  t:   |\n    old\n  \n\n  z: |\n    keep\n";
        let out = edit(body, |v| v["data"]["t"] = json!("new\nlines\n"));
        assert_eq!(
            out,
            "kind: ConfigMap\ndata:\n  a: \"x\"\n  t:   |\n    new\n    lines\n  \n\n  z: |\n    keep\n"
        );
    }

    #[test]
    fn unchanged_block_lines_keep_their_bytes() {
        // Helm writes blank TOML lines of a configOverride block as two-space lines.
        let body = "data:\n  t:   |\n    a = 1\n  \n    [x]\n    b = 2\nz: 1\n";
        let out = edit(body, |v| {
            v["data"]["t"] = json!("a = 1\n\n[x]\nb = 3\nc = 4\n")
        });
        assert_eq!(
            out,
            "data:\n  t:   |\n    a = 1\n  \n    [x]\n    b = 3\n    c = 4\nz: 1\n"
        );
    }

    #[test]
    fn a_block_keeps_its_indentation_and_header_comment() {
        let body = "data:\n  t: |  # toml\n      a = 1\n      b = 2\n  z: 1\n";
        let out = edit(body, |v| {
            v["data"]["t"] = json!(" lead = 0\na = 1\nb = 2\n")
        });
        assert_eq!(
            out,
            "data:\n  t: |4 # toml\n       lead = 0\n      a = 1\n      b = 2\n  z: 1\n"
        );
    }

    #[test]
    fn quoted_value_becomes_a_block_keeping_its_comment() {
        let body = "data:\n  t:   \"a\\n b \\n\"  # c\n  z: 1\n";
        let out = edit(body, |v| v["data"]["t"] = json!("a\n b \nc"));
        assert_eq!(out, "data:\n  t:   |- # c\n    a\n     b \n    c\n  z: 1\n");
    }

    #[test]
    fn flow_documents_are_extended_inside_their_brackets() {
        let body = "{\"data\": {\"t\": \"a\"}, \"l\": [1], \"e\": []}\n";
        let out = edit(body, |v| {
            v["data"]["t"] = json!("v\n");
            v["data"]["u"] = json!("on");
            v["l"].as_array_mut().unwrap().push(json!({"a": "y"}));
            v["e"].as_array_mut().unwrap().push(json!(2));
        });
        assert_eq!(
            out,
            "{\"data\": {\"t\": \"v\\n\", \"u\": \"on\"}, \"l\": [1, {\"a\": \"y\"}], \"e\": [2]}\n"
        );
    }

    #[test]
    fn keeps_an_unused_anchor_and_a_tag() {
        let body = "data:\n  t: &t !!str |\n    old\n  z: 1\n";
        let out = edit(body, |v| v["data"]["t"] = json!("new\n"));
        assert_eq!(out, "data:\n  t: &t !!str |\n    new\n  z: 1\n");
    }

    /// A `!!binary` scalar reads as its decoded text; what a splice writes is plain text, which
    /// the tag would make invalid base64: refused, naming the tag.
    #[test]
    fn refuses_a_binary_scalar_naming_the_tag() {
        let body = "data:\n  t: !!binary aGVsbG8K\n  u: !<tag:yaml.org,2002:binary> aGVsbG8K\n";
        let old = yaml::parse(body).unwrap();
        for key in ["t", "u"] {
            let mut new = old.clone();
            new["data"][key] = json!("new\n");
            let err = rewrite(body, &old, &new).unwrap_err();
            assert_eq!(err.field, format!("data.{key}"));
            assert!(err.message.contains("`!!binary`"), "{}", err.message);
        }
    }

    #[test]
    fn refuses_an_anchor_an_alias_repeats() {
        let body = "data:\n  t: &t |\n    old\n  u: *t\n";
        let old = yaml::parse(body).unwrap();
        let mut new = old.clone();
        new["data"]["t"] = json!("new\n");
        let err = rewrite(body, &old, &new).unwrap_err();
        assert_eq!(err.field, "data.t");
        assert!(err.message.contains("anchor"), "{}", err.message);
    }

    #[test]
    fn appends_in_the_lists_own_layout_and_adds_keys() {
        let body = "spec:\n  env:\n    - name: A\n      value: y\n  mounts:\n  - name: m\n    mountPath: /m\n  # trailing comment\nother: 0644\n";
        let out = edit(body, |v| {
            v["spec"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"value": "n", "name": "B"}));
            v["spec"]["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"mountPath": "/c", "name": "c", "readOnly": true}));
            v["spec"]["hostAliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a", "b"]}]);
        });
        assert_eq!(
            out,
            "spec:\n  env:\n    - name: A\n      value: y\n    - name: B\n      value: \"n\"\n  mounts:\n  - name: m\n    mountPath: /m\n  - name: c\n    mountPath: /c\n    readOnly: true\n  hostAliases:\n    - ip: \"10.0.0.1\"\n      hostnames:\n        - a\n        - b\n  # trailing comment\nother: 0644\n"
        );
    }

    #[test]
    fn null_becomes_a_block_and_items_are_removed() {
        let body =
            "m:\n  annotations:\n  x: 1\nenv:\n- name: A\n  value: a\n- name: B\n  value: b\n";
        let out = edit(body, |v| {
            v["m"]["annotations"] = json!({"checksum/configmap": "12e4"});
            v["env"].as_array_mut().unwrap().remove(0);
            v["env"][0]["value"] = json!("c");
        });
        assert_eq!(
            out,
            "m:\n  annotations:\n    checksum/configmap: \"12e4\"\n  x: 1\nenv:\n- name: B\n  value: c\n"
        );
    }

    #[test]
    fn crlf_lines_stay_crlf() {
        let body = "a:\r\n- x\r\nb: 1\r\n";
        let out = edit(body, |v| v["a"].as_array_mut().unwrap().push(json!("z")));
        assert_eq!(out, "a:\r\n- x\r\n- z\r\nb: 1\r\n");
    }

    #[test]
    fn strings_a_block_cannot_carry_are_double_quoted() {
        let body = "data:\n  t: x\n";
        let out = edit(body, |v| v["data"]["t"] = json!("\tcr\r\nz\u{2028}\n"));
        assert_eq!(out, "data:\n  t: \"\\tcr\\r\\nz\\u2028\\n\"\n");
    }
    /// A comment indented deeper than a new key stays in front of it: behind a new block
    /// scalar it would be read as the block's content (found by tests/edit_properties.rs).
    #[test]
    fn new_block_goes_past_a_deeper_comment() {
        let body = "k0:\n  - |+\n    line 0\n  # after the block\n\nnext: 1\n";
        let out = edit(body, |v| v["k-18"] = json!("two\nlines"));
        assert_eq!(
            out,
            "k0:\n  - |+\n    line 0\n  # after the block\n\nnext: 1\nk-18: |-\n  two\n  lines\n"
        );
        // A comment at the new item's own column is left where it is.
        let out = edit(body, |v| {
            v["k0"].as_array_mut().unwrap().push(json!("x\ny"))
        });
        assert_eq!(
            out,
            "k0:\n  - |+\n    line 0\n  - \"x\\ny\"\n  # after the block\n\nnext: 1\n"
        );
    }

    /// A keep-chomped block (`|+`, `>+`, `|2+`) owns its trailing blank lines: whatever is
    /// inserted after it goes after them, so that it reads the same (issue 12, gap 6).
    #[test]
    fn inserts_after_the_kept_lines_of_a_keep_block() {
        let add = |v: &mut Value| {
            v["spec"]["hostAliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a"]}])
        };
        let alias = "  hostAliases:\n  - ip: \"10.0.0.1\"\n    hostnames:\n    - a\n";
        for header in ["|+", ">+", "|2+"] {
            // In the middle of the document, with a whitespace-only kept line.
            let body = format!("spec:\n  a: 1\n  s: {header}\n    echo\n\n  \nother: 1\n");
            let out = edit(&body, add);
            assert_eq!(
                out,
                format!("spec:\n  a: 1\n  s: {header}\n    echo\n\n  \n{alias}other: 1\n")
            );
            // As the last value of the document.
            let body = format!("spec:\n  a: 1\n  s: {header}\n    echo\n\n\n");
            assert_eq!(
                edit(&body, add),
                format!("spec:\n  a: 1\n  s: {header}\n    echo\n\n\n{alias}")
            );
        }
        // A comment line ends the kept lines: the new key goes between them and the comment.
        let body = "spec:\n  s: |+\n    echo\n\n  # c\n\nother: 1\n";
        assert_eq!(
            edit(body, add),
            format!("spec:\n  s: |+\n    echo\n\n{alias}  # c\n\nother: 1\n")
        );
        // A clip block's trailing blank lines are not its value: new lines go before them, as
        // they always did.
        let body = "spec:\n  s: |\n    echo\n\nother: 1\n";
        assert_eq!(
            edit(body, add),
            format!("spec:\n  s: |\n    echo\n{alias}\nother: 1\n")
        );
    }

    /// A stream without a final newline that ends inside a block scalar's last line (review1
    /// finding 4): the scalar reads without a final line break (YAML 1.2 `b-chomped-last`, as
    /// PyYAML and go-yaml read it), and still does once lines are added after it — its header
    /// gets strip chomping. Nothing else changes.
    #[test]
    fn a_block_scalar_ending_the_input_keeps_its_value_when_lines_follow_it() {
        let add = |v: &mut Value| {
            v["spec"]["hostAliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a"]}])
        };
        let alias = "  hostAliases:\n  - ip: \"10.0.0.1\"\n    hostnames:\n    - a";
        for (header, stripped) in [
            ("|", "|-"),
            (">", ">-"),
            ("|+", "|-"),
            ("|2", "|2-"),
            ("|-", "|-"),
        ] {
            let body = format!("spec:\n  a: 1\n  n:\n    s: {header}\n      keep");
            assert_eq!(
                yaml::parse(&body).unwrap()["spec"]["n"]["s"],
                "keep",
                "{header}"
            );
            assert_eq!(
                edit(&body, add),
                format!("spec:\n  a: 1\n  n:\n    s: {stripped}\n      keep\n{alias}"),
                "{header}"
            );
        }
        // Spaces deeper than the content are content: the scalar ends the input.
        let body = "spec:\n  s: |+\n    keep\n\n      ";
        assert_eq!(yaml::parse(body).unwrap()["spec"]["s"], "keep\n\n  ");
        assert_eq!(
            edit(body, add),
            format!("spec:\n  s: |-\n    keep\n\n      \n{alias}")
        );
        // Two additions at the end of input change the header once.
        let out = edit("spec:\n  s: |\n    keep", |v| {
            v["spec"]["hostAliases"] = json!([]);
            v["spec"]["b"] = json!(1);
        });
        assert_eq!(out, "spec:\n  s: |-\n    keep\n  hostAliases: []\n  b: 1");
        // With a final newline nothing is stripped.
        let body = "spec:\n  s: |\n    keep\n";
        assert_eq!(
            edit(body, add),
            format!("spec:\n  s: |\n    keep\n{alias}\n")
        );
    }

    /// A keep block followed by a last line of spaces without a line break (review1 finding 7a):
    /// that line holds no line break of the value, so new lines go before it and it stays last.
    #[test]
    fn a_keep_block_before_a_last_line_of_spaces_grows_before_that_line() {
        let add = |v: &mut Value| {
            v["spec"]["hostAliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a"]}])
        };
        let alias = "  hostAliases:\n  - ip: \"10.0.0.1\"\n    hostnames:\n    - a\n";
        for (tail, value) in [
            ("\n\n  ", "keep\n\n"),
            ("\n  ", "keep\n"),
            ("\n\n    ", "keep\n\n"),
        ] {
            let body = format!("spec:\n  s: |+\n    keep{tail}");
            assert_eq!(yaml::parse(&body).unwrap()["spec"]["s"], value, "{tail:?}");
            let spaces = &tail[tail.rfind('\n').unwrap() + 1..];
            let kept = &tail[..=tail.rfind('\n').unwrap()];
            assert_eq!(
                edit(&body, add),
                format!("spec:\n  s: |+\n    keep{kept}{alias}{spaces}"),
                "{tail:?}"
            );
        }
    }

    #[test]
    fn lists_ending_in_a_keep_block_grow_and_shrink_around_its_kept_lines() {
        let body = "l:\n- name: a\n  s: |+\n    x\n\n- name: b\n  s: |+\n    y\n\n\nz: 1\n";
        let out = edit(body, |v| {
            v["l"].as_array_mut().unwrap().push(json!({"name": "c"}));
        });
        assert_eq!(
            out,
            "l:\n- name: a\n  s: |+\n    x\n\n- name: b\n  s: |+\n    y\n\n\n- name: c\nz: 1\n"
        );
        let out = edit(body, |v| {
            v["l"].as_array_mut().unwrap().remove(0);
        });
        assert_eq!(out, "l:\n- name: b\n  s: |+\n    y\n\n\nz: 1\n");
    }
    /// New blocks follow the layout around them (issue 12, gap 12): here 4 spaces deep with
    /// lists not indented under their key and `-   ` items.
    #[test]
    fn new_blocks_follow_a_four_space_indentless_layout() {
        let body = "spec:\n    containers:\n    -   name: r\n        env:\n        -   name: A\n            value: a\n    aliases: null\n    volumes:\n    -   name: v\n        emptyDir:\n            medium: Memory\n";
        let out = edit(body, |v| {
            let spec = &mut v["spec"];
            spec["containers"][0]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "B", "value": "b"}));
            spec["containers"][0]["volumeMounts"] = json!([{"name": "v", "mountPath": "/v"}]);
            spec["aliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a"]}]);
            spec["volumes"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "c", "configMap": {"name": "c", "items": [{"key": "k", "path": "p"}]}}));
            spec["hostAliases"] = json!([{"ip": "10.0.0.2", "hostnames": ["b"]}]);
        });
        assert_eq!(
            out,
            "spec:\n    containers:\n    -   name: r\n        env:\n        -   name: A\n            value: a\n        -   name: B\n            value: b\n        volumeMounts:\n        -   name: v\n            mountPath: /v\n    aliases:\n    -   ip: \"10.0.0.1\"\n        hostnames:\n        -   a\n    volumes:\n    -   name: v\n        emptyDir:\n            medium: Memory\n    -   name: c\n        configMap:\n            name: c\n            items:\n            -   key: k\n                path: p\n    hostAliases:\n    -   ip: \"10.0.0.2\"\n        hostnames:\n        -   b\n"
        );
    }

    /// Where a mapping shows its own layout (its lists indented), that wins over the document's
    /// (most lists not indented).
    #[test]
    fn new_blocks_follow_the_surrounding_block_over_the_document() {
        let body =
            "a:\n- 1\nb:\n- 2\nspec:\n  containers:\n    - name: r\n  volumes:\n    - name: v\n";
        let out = edit(body, |v| {
            v["spec"]["hostAliases"] = json!([{"ip": "10.0.0.1", "hostnames": ["a"]}]);
            v["c"] = json!(["3"]);
        });
        assert_eq!(
            out,
            "a:\n- 1\nb:\n- 2\nspec:\n  containers:\n    - name: r\n  volumes:\n    - name: v\n  hostAliases:\n    - ip: \"10.0.0.1\"\n      hostnames:\n        - a\nc:\n- \"3\"\n"
        );
    }
}
