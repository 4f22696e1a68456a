//! `runner-patch diff`: what a run would change, as one unified diff per changed or generated
//! document, for review (`helm template … | runner-patch diff -c spec.yaml` in a merge request).
//!
//! Pure: it compares the input stream with the output of a run ([`crate::patch_pieces`]) and
//! needs nothing else, so what it shows is exactly what a run writes, never a second guess of
//! it. The output of a run is the input with some documents rewritten in place and generated ones
//! appended, so the two streams pair document by document.
//!
//! Each document gets a header naming its kind, namespace/name and source template (Helm 3's
//! `# Source:` comment or Helm 4's `postrenderer.helm.sh/postrender-filename` annotation), then:
//! - for a runner TOML value (`data` keys ending in `.toml`) that changed, a diff of the TOML
//!   itself with TOML line numbers, whatever YAML scalar style carries it (a double-quoted
//!   one-line string included);
//! - a diff of the document's YAML text with stream line numbers, unless the TOML diff already
//!   shows everything that changed in it.
//!
//! The line diff is `similar`'s Myers diff without a deadline, so the output is deterministic.
//! Secrets are never shown: a changed Secret gets its header and a note, no lines.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Style};
use serde_json::Value;
use similar::{ChangeTag, DiffOp, TextDiff};

use crate::manifest::stream::{self, Doc};
use crate::manifest::{edit, positions, yaml};
use crate::release::locate;

/// How the diff is rendered.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// ANSI colours (the caller decides: `--color`, NO_COLOR, terminal).
    pub color: bool,
    /// Unchanged lines shown around each change.
    pub context: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            color: false,
            context: 3,
        }
    }
}

/// The rendered diff of a run.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    /// The diffs, one per changed document, in stream order; empty when nothing would change.
    pub text: String,
    /// How many documents would change (updated, generated or removed).
    pub documents: usize,
}

/// Compares `input` with the `output` of a run over it (see the module documentation).
pub fn render(input: &str, output: &str, options: &Options) -> Rendered {
    let before = stream::split(input);
    let after = stream::split(output);
    let appended = after.docs.len() > before.docs.len();
    let mut rendered = Rendered::default();
    for i in 0..before.docs.len().max(after.docs.len()) {
        let old = before.docs.get(i);
        let new = after.docs.get(i);
        if let (Some(o), Some(n)) = (old, new) {
            let (o, n) = (text(input, o), text(output, n));
            // A run that appends documents after a last line without a line break adds the
            // break, which separates the documents and changes nothing in the last one.
            let separator_only = appended
                && i + 1 == before.docs.len()
                && n.strip_suffix('\n')
                    .is_some_and(|s| s == o || s.strip_suffix('\r') == Some(o));
            if o == n || separator_only {
                continue;
            }
        }
        rendered.documents += 1;
        let old = old.map(|d| Side::new(input, d));
        let new = new.map(|d| Side::new(output, d));
        document(&mut rendered.text, old, new, options);
    }
    rendered
}

/// A document's whole text (marker, comments, content, trailing lines) in `stream`, the text it
/// was split from.
fn text<'a>(stream: &'a str, doc: &Doc<'_>) -> &'a str {
    &stream[doc.offset..doc.offset + doc.text_len()]
}

/// What is known of one side of a changed document.
struct Side<'d, 'a> {
    doc: &'d Doc<'a>,
    /// The document's whole text.
    text: &'a str,
    /// The parsed content (Null when it does not parse: the header then says less).
    value: Value,
}

impl<'d, 'a> Side<'d, 'a> {
    fn new(stream: &'a str, doc: &'d Doc<'a>) -> Self {
        Side {
            doc,
            text: text(stream, doc),
            value: yaml::parse(doc.body).unwrap_or(Value::Null),
        }
    }

    /// A `data` string of a ConfigMap.
    fn data(&self, key: &str) -> Option<&str> {
        self.value.get("data")?.get(key)?.as_str()
    }

    /// The 1-based stream line of `data[key]`.
    fn data_line(&self, key: &str) -> Option<usize> {
        let (line, _) = positions::collect(self.doc.body).find(&format!("data[{key:?}]"))?;
        Some(self.doc.body_line + line - 1)
    }
}

fn document(
    out: &mut String,
    old: Option<Side<'_, '_>>,
    new: Option<Side<'_, '_>>,
    options: &Options,
) {
    let (what, known) = match (&old, &new) {
        (Some(o), Some(n)) => ("updated", if n.value.is_null() { o } else { n }),
        (None, Some(n)) => ("generated", n),
        (Some(o), None) => ("removed", o),
        (None, None) => return,
    };
    let mut reference = locate::doc_ref(known.doc, &known.value);
    // The template path belongs to the input document (Helm 4 removes its annotation later).
    if let Some(o) = &old {
        reference.source = locate::doc_ref(o.doc, &o.value).source.or(reference.source);
    }
    let mut name = reference.kind.clone();
    name.push(' ');
    if let Some(ns) = &reference.namespace {
        name.push_str(ns);
        name.push('/');
    }
    name.push_str(&reference.name);
    let mut title = format!("=== {name}: {what} (");
    if let Some(source) = &reference.source {
        let _ = write!(title, "source {source}, ");
    }
    let _ = match (&old, &new) {
        (Some(o), _) => write!(
            title,
            "input document {}, line {})",
            o.doc.index, o.doc.line
        ),
        (None, Some(n)) => write!(
            title,
            "output document {}, line {})",
            n.doc.index, n.doc.line
        ),
        (None, None) => unreachable!("checked above"),
    };
    let paint = Paint(options.color);
    paint.line(out, Style::new().bold(), &title);
    // Files-style labels, so that diff viewers recognise the sections.
    let label = reference.source.clone().unwrap_or_else(|| {
        let mut l = reference.kind.clone();
        if let Some(ns) = &reference.namespace {
            l = format!("{l}/{ns}");
        }
        format!("{l}/{}", reference.name)
    });
    if reference.kind == "Secret" {
        paint.line(out, Style::new(), "(the content of a Secret is not shown)");
        return;
    }

    let toml_keys = changed_toml(old.as_ref(), new.as_ref());
    for key in &toml_keys {
        let side = |s: &Option<Side<'_, '_>>, input: bool| match s {
            Some(s) if s.data(key).is_some() => format!(
                "a/{label}: data[{key:?}] (TOML line numbers; key at {} line {})",
                if input { "input" } else { "output" },
                s.data_line(key).map_or("?".to_owned(), |l| l.to_string())
            ),
            _ => "/dev/null".to_owned(),
        };
        let from = side(&old, true);
        let to = side(&new, false).replacen("a/", "b/", 1);
        let old_text = old.as_ref().and_then(|s| s.data(key)).unwrap_or_default();
        let new_text = new.as_ref().and_then(|s| s.data(key)).unwrap_or_default();
        paint.line(out, Style::new().bold(), &format!("--- {from}"));
        paint.line(out, Style::new().bold(), &format!("+++ {to}"));
        hunks(out, old_text, new_text, (1, 1), options, toml_section);
    }
    let yaml_needed =
        toml_keys.is_empty() || !same_but_toml(old.as_ref(), new.as_ref(), &toml_keys);
    if yaml_needed {
        let old_text = old.as_ref().map_or("", |s| s.text);
        let new_text = new.as_ref().map_or("", |s| s.text);
        let from = match &old {
            Some(_) => format!("a/{label} (input lines)"),
            None => "/dev/null".to_owned(),
        };
        let to = match &new {
            Some(_) => format!("b/{label} (output lines)"),
            None => "/dev/null".to_owned(),
        };
        paint.line(out, Style::new().bold(), &format!("--- {from}"));
        paint.line(out, Style::new().bold(), &format!("+++ {to}"));
        let first = |s: &Option<Side<'_, '_>>| s.as_ref().map_or(1, |s| s.doc.line);
        hunks(
            out,
            old_text,
            new_text,
            (first(&old), first(&new)),
            options,
            |_, _| None,
        );
    }
}

/// The `data` keys of a ConfigMap that hold TOML (`….toml`) and differ between the two sides.
fn changed_toml(old: Option<&Side<'_, '_>>, new: Option<&Side<'_, '_>>) -> Vec<String> {
    let is_configmap = |s: Option<&Side<'_, '_>>| {
        s.is_some_and(|s| s.value.get("kind") == Some(&"ConfigMap".into()))
    };
    if !is_configmap(old) && !is_configmap(new) {
        return Vec::new();
    }
    let keys = |s: Option<&Side<'_, '_>>| -> Vec<String> {
        s.and_then(|s| s.value.get("data"))
            .and_then(Value::as_object)
            .map(|d| d.keys().filter(|k| k.ends_with(".toml")).cloned().collect())
            .unwrap_or_default()
    };
    let mut all = keys(new);
    for k in keys(old) {
        if !all.contains(&k) {
            all.push(k);
        }
    }
    all.retain(|k| old.and_then(|s| s.data(k)) != new.and_then(|s| s.data(k)));
    all
}

/// True when the two sides differ only in the values of `keys` (so the TOML diffs show it all):
/// each value is replaced by the same placeholder, in place, and the texts compared. Blank lines
/// right after a value do not count: a block scalar takes them in, a quoted string leaves them.
fn same_but_toml(old: Option<&Side<'_, '_>>, new: Option<&Side<'_, '_>>, keys: &[String]) -> bool {
    const PLACEHOLDER: &str = "runner-patch-diff-toml-value";
    let masked = |s: Option<&Side<'_, '_>>| -> Option<String> {
        let s = s?;
        let mut body = s.doc.body.to_owned();
        for key in keys {
            body = edit::replace_data_value(&body, key, PLACEHOLDER)?;
        }
        let text = format!("{}{body}{}", s.doc.head, s.doc.tail);
        let mut kept = String::with_capacity(text.len());
        let mut after_value = false;
        for line in text.split_inclusive('\n') {
            let blank = line.trim().is_empty();
            if !(after_value && blank) {
                kept.push_str(line);
            }
            after_value = line.trim() == PLACEHOLDER || (after_value && blank);
        }
        Some(kept)
    };
    match (masked(old), masked(new)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The TOML table a line belongs to: the last `[table]` or `[[array]]` header above it.
fn toml_section<'t>(lines: &[&'t str], before: usize) -> Option<&'t str> {
    lines[..before.min(lines.len())]
        .iter()
        .rev()
        .map(|l| l.trim())
        .find(|l| l.starts_with('['))
}

/// Writes the hunks of a line diff of `old` and `new`, whose first lines are lines `first.0` and
/// `first.1` of what the numbers refer to; `section` names the context of a hunk (git's
/// "function context") from the old lines and the hunk's first old line.
fn hunks(
    out: &mut String,
    old: &str,
    new: &str,
    first: (usize, usize),
    options: &Options,
    section: impl for<'t> Fn(&[&'t str], usize) -> Option<&'t str>,
) {
    let paint = Paint(options.color);
    let diff = TextDiff::from_lines(old, new);
    let old_lines: Vec<&str> = diff.iter_old_slices().collect();
    for group in diff.grouped_ops(options.context) {
        let (Some(head), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = head.old_range().start..last.old_range().end;
        let new_range = head.new_range().start..last.new_range().end;
        let mut header = format!(
            "@@ -{} +{} @@",
            range(old_range.clone(), first.0),
            range(new_range, first.1)
        );
        if let Some(s) = section(&old_lines, old_range.start) {
            header.push(' ');
            header.push_str(s);
        }
        paint.line(
            out,
            Style::new().fg_color(Some(AnsiColor::Cyan.into())),
            &header,
        );
        for op in &group {
            change_lines(out, &diff, op, paint);
        }
    }
}

fn change_lines(out: &mut String, diff: &TextDiff<'_, '_, str>, op: &DiffOp, paint: Paint) {
    for change in diff.iter_changes(op) {
        let (sign, style) = match change.tag() {
            ChangeTag::Equal => (' ', Style::new()),
            ChangeTag::Delete => ('-', Style::new().fg_color(Some(AnsiColor::Red.into()))),
            ChangeTag::Insert => ('+', Style::new().fg_color(Some(AnsiColor::Green.into()))),
        };
        let value = change.value();
        // The line's own terminator is kept (a CRLF stream stays CRLF, a change of line ending
        // stays visible); the colour ends before it.
        let (content, end) = match value.strip_suffix('\n') {
            Some(line) => match line.strip_suffix('\r') {
                Some(content) => (content, "\r\n"),
                None => (line, "\n"),
            },
            None => (value, ""),
        };
        paint.write(out, style, &format!("{sign}{content}"), end);
        if end.is_empty() {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// A unified-diff range: 1-based start (offset so that index 0 is line `first`) and length; an
/// empty range starts at the line before it, as in `diff -u`.
fn range(r: std::ops::Range<usize>, first: usize) -> String {
    let len = r.end - r.start;
    let start = r.start + first;
    match len {
        0 => format!("{},0", start - 1),
        1 => start.to_string(),
        _ => format!("{start},{len}"),
    }
}

/// Writes lines with or without ANSI styles.
#[derive(Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn line(self, out: &mut String, style: Style, text: &str) {
        self.write(out, style, text, "\n");
    }

    fn write(self, out: &mut String, style: Style, text: &str, end: &str) {
        if self.0 && style != Style::new() {
            let _ = write!(out, "{style}{text}{style:#}{end}");
        } else {
            out.push_str(text);
            out.push_str(end);
        }
    }
}
