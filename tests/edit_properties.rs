//! Properties of the in-place editor (`manifest::edit::rewrite`) on real runner Deployments and
//! ConfigMaps: for random changes to the value (append to any list, add a key to any mapping, set
//! any scalar to a tricky string, remove a list item or a key), the editor either refuses with a
//! field path or returns text that reads as exactly the new value; and when the change only adds,
//! every line of the input is still there, in order (but a one-line flow collection that grows).
//! Also on generated documents with keep-chomped block scalars (`|+`, `>+`, `|2+`) and their
//! kept blank lines, mid-document and at its end, in 2- and 4-space layouts.

use proptest::prelude::*;
use runner_patch::manifest::{edit, stream, yaml};
use serde_json::{Value, json};

/// Target documents of a few real renders (Helm 3 text, Helm 4 re-serialized, JSON).
fn documents() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let mut out = Vec::new();
    for case in [
        "helm3-runner-0.52.0-base",
        "helm3-runner-0.92.0-extras",
        "helm4-runner-0.92.0-hostaliases-certs",
        "adv-json-documents",
        "crlf",
    ] {
        let text = std::fs::read_to_string(root.join(case).join("input.yaml")).unwrap();
        for doc in stream::split(&text).docs {
            let candidate =
                doc.body.contains("/configmaps/entrypoint") || doc.body.contains("check-live");
            if candidate
                && let Ok(v) = yaml::parse(doc.body)
                && matches!(v["kind"].as_str(), Some("Deployment" | "ConfigMap"))
            {
                out.push(doc.body.to_owned());
            }
        }
    }
    assert!(out.len() >= 8, "{} target documents", out.len());
    out
}

const STRINGS: &[&str] = &[
    "plain",
    "y",
    "on",
    "0644",
    "1e5",
    "",
    "- dash",
    "a: b",
    "#hash",
    "multi\nline\n",
    "no final newline\nx",
    " leading space\n",
    "\ttab first\nx\n",
    "quote \" and ' both",
    "\u{2028}separator",
    "ünïcødé",
    "null",
    "~",
    "[flow]",
    "{flow}",
    "*alias",
    "&anchor",
    "!tag",
    "%percent",
    "@at",
    "trailing space ",
];

#[derive(Debug, Clone)]
enum Op {
    Append(usize, usize),
    AddKey(usize, usize),
    SetScalar(usize, usize),
    RemoveItem(usize),
    RemoveKey(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = (any::<usize>(), 0..STRINGS.len());
    prop_oneof![
        ix.clone().prop_map(|(a, b)| Op::Append(a, b)),
        ix.clone().prop_map(|(a, b)| Op::AddKey(a, b)),
        ix.clone().prop_map(|(a, b)| Op::SetScalar(a, b)),
        any::<usize>().prop_map(Op::RemoveItem),
        any::<usize>().prop_map(Op::RemoveKey),
    ]
}

/// JSON pointers of every node, in document order.
fn pointers(v: &Value, at: String, out: &mut Vec<(String, &'static str)>) {
    match v {
        Value::Object(m) => {
            out.push((at.clone(), "map"));
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            out.push((at.clone(), "seq"));
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => out.push((at, "scalar")),
    }
}

fn pick<'p>(all: &'p [(String, &'static str)], kind: &str, n: usize) -> Option<&'p str> {
    let of: Vec<&str> = all
        .iter()
        .filter(|(_, k)| *k == kind)
        .map(|(p, _)| p.as_str())
        .collect();
    (!of.is_empty()).then(|| of[n % of.len()])
}

/// Applies `op` to `v`; returns whether it only adds (no removal, no change of existing text).
fn apply(v: &mut Value, op: &Op) -> bool {
    let mut all = Vec::new();
    pointers(v, String::new(), &mut all);
    let s = |i: usize| Value::String(STRINGS[i].to_owned());
    match *op {
        Op::Append(n, i) => {
            if let Some(p) = pick(&all, "seq", n) {
                let item = if i % 2 == 0 {
                    s(i)
                } else {
                    json!({"name": STRINGS[i], "value": s(i)})
                };
                v.pointer_mut(p).unwrap().as_array_mut().unwrap().push(item);
            }
            true
        }
        Op::AddKey(n, i) => {
            if let Some(p) = pick(&all, "map", n) {
                let m = v.pointer_mut(p).unwrap().as_object_mut().unwrap();
                let key = format!("k-{}", STRINGS[i].len());
                if !m.contains_key(&key) {
                    m.insert(key, if i % 3 == 0 { json!([s(i)]) } else { s(i) });
                }
            }
            true
        }
        Op::SetScalar(n, i) => {
            if let Some(p) = pick(&all, "scalar", n) {
                *v.pointer_mut(p).unwrap() = s(i);
            }
            false
        }
        Op::RemoveItem(n) => {
            if let Some(p) = pick(&all, "seq", n) {
                let a = v.pointer_mut(p).unwrap().as_array_mut().unwrap();
                if a.len() > 1 {
                    a.remove(n % a.len());
                }
            }
            false
        }
        Op::RemoveKey(n) => {
            if let Some(p) = pick(&all, "map", n) {
                let m = v.pointer_mut(p).unwrap().as_object_mut().unwrap();
                if m.len() > 1 {
                    let k = m.keys().nth(n % m.len()).unwrap().clone();
                    m.shift_remove(&k);
                }
            }
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn edits_read_back_exactly_or_are_refused(doc in 0usize..64, ops in prop::collection::vec(op(), 1..4)) {
        let docs = documents();
        let body = &docs[doc % docs.len()];
        let old = yaml::parse(body).unwrap();
        let mut new = old.clone();
        let mut only_adds = true;
        for op in &ops {
            only_adds &= apply(&mut new, op);
        }
        match edit::rewrite(body, &old, &new) {
            Ok(None) => prop_assert_eq!(&old, &new),
            Ok(Some(text)) => {
                prop_assert_eq!(yaml::parse(&text).unwrap(), new);
                if only_adds {
                    // A one-line flow collection that grows changes its line; every other line
                    // stays.
                    let mut rest = text.lines();
                    for line in body.lines().filter(|l| !l.contains(['[', '{'])) {
                        prop_assert!(rest.any(|l| l == line), "line {:?} lost", line);
                    }
                }
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated documents: block scalars with keep chomping (`|+`, `>+`, `|2+`) and kept blank lines,
// in the middle and at the end of the document, in 2- and 4-space layouts with lists indented or
// not (issue 12, gaps 6 and 12).

/// Plain scalars as a chart writes them.
const PLAIN: &[&str] = &["a", "y", "0644", "\"on\"", "'q'", "1.10", "~"];

#[derive(Debug, Clone)]
struct BlockGen {
    /// Index into the headers of [`block_header`].
    header: usize,
    lines: usize,
    /// Blank lines after the content (kept by a `+` header, part of nothing otherwise).
    blanks: usize,
    /// Write the blank lines as lines of spaces (as Helm does) instead of empty lines.
    spaces: bool,
    /// A comment line after the blank lines (it ends the kept lines).
    comment: bool,
}

#[derive(Debug, Clone)]
enum Gen {
    Map(Vec<Gen>),
    Seq(Vec<Gen>),
    Plain(usize),
    Block(BlockGen),
}

#[derive(Debug, Clone, Copy)]
struct Layout {
    step: usize,
    seq_indent: usize,
    gap: usize,
}

fn block_gen() -> impl Strategy<Value = BlockGen> {
    (
        0usize..6,
        1usize..3,
        0usize..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(header, lines, blanks, spaces, comment)| BlockGen {
            header,
            lines,
            blanks,
            spaces,
            comment,
        })
}

fn gen_node() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        (0..PLAIN.len()).prop_map(Gen::Plain),
        block_gen().prop_map(Gen::Block),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Gen::Map),
            prop::collection::vec(inner, 1..4).prop_map(Gen::Seq),
        ]
    })
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop_oneof![Just(2usize), Just(4)],
        prop_oneof![Just(0usize), Just(2)],
        prop_oneof![Just(2usize), Just(4)],
    )
        .prop_map(|(step, seq_indent, gap)| Layout {
            step,
            seq_indent,
            gap,
        })
}

/// A block scalar's header; `|N+` (an indentation indicator) only where the parent's indentation
/// is the key's column (`in_map`).
fn block_header(b: &BlockGen, step: usize, in_map: bool) -> String {
    match b.header {
        0 => "|+".into(),
        1 => ">+".into(),
        2 if in_map => format!("|{step}+"),
        2 => "|+".into(),
        3 => "|".into(),
        4 => "|-".into(),
        _ => ">".into(),
    }
}

/// The content and trailing lines of a block scalar whose parent sits at column `col`, content
/// at `content_col`.
fn block_lines(b: &BlockGen, header: &str, col: usize, content_col: usize, out: &mut String) {
    let pad = " ".repeat(content_col);
    for j in 0..b.lines {
        // With an indentation indicator the first line may start with spaces.
        let lead = if j == 0 && header.starts_with("|") && header[1..].starts_with(char::is_numeric)
        {
            "  "
        } else {
            ""
        };
        out.push_str(&format!("{pad}{lead}line {j}\n"));
    }
    for _ in 0..b.blanks {
        if b.spaces {
            out.push_str(&" ".repeat(col));
        }
        out.push('\n');
    }
    if b.comment {
        out.push_str(&format!("{}# after the block\n", " ".repeat(col)));
    }
}

fn render_map(entries: &[Gen], col: usize, first: Option<&str>, l: Layout, out: &mut String) {
    for (i, v) in entries.iter().enumerate() {
        match (i, first) {
            (0, Some(prefix)) => out.push_str(prefix),
            _ => out.push_str(&" ".repeat(col)),
        }
        match v {
            Gen::Plain(p) => out.push_str(&format!("k{i}: {}\n", PLAIN[*p])),
            Gen::Map(children) => {
                out.push_str(&format!("k{i}:\n"));
                render_map(children, col + l.step, None, l, out);
            }
            Gen::Seq(items) => {
                out.push_str(&format!("k{i}:\n"));
                render_seq(items, col + l.seq_indent, l, out);
            }
            Gen::Block(b) => {
                let header = block_header(b, l.step, true);
                out.push_str(&format!("k{i}: {header}\n"));
                block_lines(b, &header, col, col + l.step, out);
            }
        }
    }
}

fn render_seq(items: &[Gen], dash_col: usize, l: Layout, out: &mut String) {
    let dash = format!("{}-{}", " ".repeat(dash_col), " ".repeat(l.gap - 1));
    for item in items {
        match item {
            Gen::Map(children) => render_map(children, dash_col + l.gap, Some(&dash), l, out),
            Gen::Block(b) => {
                let header = block_header(b, l.step, false);
                out.push_str(&format!("{dash}{header}\n"));
                block_lines(b, &header, dash_col, dash_col + l.gap, out);
            }
            Gen::Plain(p) => out.push_str(&format!("{dash}{}\n", PLAIN[*p])),
            // A list right inside a list item has no layout of its own here.
            Gen::Seq(_) => out.push_str(&format!("{dash}{}\n", PLAIN[0])),
        }
    }
}

/// A document from generated nodes, optionally ending with a keep block and its blank lines.
fn generated_document(root: &[Gen], end_block: Option<BlockGen>, l: Layout) -> String {
    let mut entries = root.to_vec();
    if let Some(mut b) = end_block {
        b.header %= 3; // a keep header
        b.blanks = b.blanks.max(1);
        b.comment = false;
        entries.push(Gen::Block(b));
    }
    let mut out = String::new();
    render_map(&entries, 0, None, l, &mut out);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// On documents with keep-chomped blocks (mid-document and at its end) in several layouts:
    /// a change that only adds is never refused, keeps every line in order and reads back as
    /// the new value (so every block reads as before); any other change reads back exactly or is
    /// refused. And the document's YAML text as the stream splitter cuts it reads the same as the
    /// whole text (its kept blank lines included).
    #[test]
    fn keep_blocks_and_layouts_read_back_exactly(
        root in prop::collection::vec(gen_node(), 1..4),
        end_block in prop::option::of(block_gen()),
        layout in layout(),
        ops in prop::collection::vec(op(), 1..4),
    ) {
        let body = generated_document(&root, end_block, layout);
        let old = yaml::parse(&body).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let split = stream::split(&body);
        prop_assert_eq!(yaml::parse(split.docs[0].yaml).unwrap(), old.clone());
        let mut new = old.clone();
        let mut only_adds = true;
        for op in &ops {
            only_adds &= apply(&mut new, op);
        }
        match edit::rewrite(&body, &old, &new) {
            Ok(None) => prop_assert_eq!(&old, &new),
            Ok(Some(text)) => {
                prop_assert_eq!(yaml::parse(&text).unwrap(), new, "{}", text);
                if only_adds {
                    let mut rest = text.lines();
                    for line in body.lines() {
                        prop_assert!(rest.any(|l| l == line), "line {:?} lost:\n{}", line, text);
                    }
                }
            }
            Err(e) => prop_assert!(!only_adds, "an addition was refused: {} {}\n{}", e.field, e.message, body),
        }
    }
}
