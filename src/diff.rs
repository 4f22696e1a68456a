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
            value: yaml::parse(doc.yaml).unwrap_or(Value::Null),
        }
    }

    /// True for a Secret, and for a document that does not parse but names the kind Secret
    /// somewhere (whose content must not be shown either).
    fn may_be_secret(&self) -> bool {
        match self.value.get("kind") {
            Some(kind) => kind == "Secret",
            None => self.doc.body.lines().any(|l| {
                l.trim_start()
                    .strip_prefix("kind:")
                    .is_some_and(|k| k.contains("Secret"))
            }),
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
    if reference.namespace.is_some() || !reference.name.is_empty() {
        name.push(' ');
    }
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
        [
            Some(&reference.kind),
            reference.namespace.as_ref(),
            Some(&reference.name),
        ]
        .into_iter()
        .flatten()
        .filter(|part| !part.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("/")
    });
    if [&old, &new].into_iter().flatten().any(Side::may_be_secret) {
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
        let mut body = s.doc.yaml.to_owned();
        for key in keys {
            body = edit::replace_data_value(&body, key, PLACEHOLDER)?;
        }
        let text = format!("{}{body}{}", s.doc.head, s.doc.after_yaml());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(input: &str, output: &str) -> Rendered {
        render(input, output, &Options::default())
    }

    const CONFIGMAP: &str = "---\n# Source: r/templates/configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: r\n  namespace: ns\ndata:\n  check-live: |\n    true\n  config.template.toml: |\n    [[runners]]\n      [runners.kubernetes]\n        image = \"alpine\"\n  entrypoint: |\n    run\n";

    #[test]
    fn nothing_changed_prints_nothing() {
        let input = "a: 1\n---\nb: 2\n";
        assert_eq!(plain(input, input), Rendered::default());
    }

    #[test]
    fn a_changed_document_gets_a_header_and_stream_line_numbers() {
        let input = "---\nkind: A\nmetadata:\n  name: a\n---\n# Source: c/templates/b.yaml\nkind: B\nmetadata:\n  name: b\n  namespace: ns\nx: 1\n";
        let output = input.replace("x: 1", "x: 2");
        let got = plain(input, &output);
        assert_eq!(got.documents, 1);
        assert_eq!(
            got.text,
            "=== B ns/b: updated (source c/templates/b.yaml, input document 2, line 5)\n\
             --- a/c/templates/b.yaml (input lines)\n\
             +++ b/c/templates/b.yaml (output lines)\n\
             @@ -8,4 +8,4 @@\n metadata:\n   name: b\n   namespace: ns\n-x: 1\n+x: 2\n"
        );
    }

    #[test]
    fn a_toml_change_is_shown_as_toml_lines_only() {
        let output = CONFIGMAP.replace(
            "        image = \"alpine\"\n",
            "        image = \"alpine\"\n        pull_policy = [\"always\"]\n",
        );
        let got = plain(CONFIGMAP, &output);
        assert_eq!(
            got.text,
            "=== ConfigMap ns/r: updated (source r/templates/configmap.yaml, input document 1, line 1)\n\
             --- a/r/templates/configmap.yaml: data[\"config.template.toml\"] (TOML line numbers; key at input line 11)\n\
             +++ b/r/templates/configmap.yaml: data[\"config.template.toml\"] (TOML line numbers; key at output line 11)\n\
             @@ -1,3 +1,4 @@\n [[runners]]\n   [runners.kubernetes]\n     image = \"alpine\"\n+    pull_policy = [\"always\"]\n"
        );
    }

    #[test]
    fn a_hunk_names_its_toml_table() {
        let toml: String = (1..=12).map(|i| format!("    k{i} = {i}\n")).collect();
        let input = CONFIGMAP.replace(
            "        image = \"alpine\"\n",
            &format!(
                "        image = \"alpine\"\n{}",
                toml.replace("    k", "        k")
            ),
        );
        let output = input.replace("k10 = 10", "k10 = 100");
        let got = plain(&input, &output);
        assert!(
            got.text
                .contains("@@ -10,6 +10,6 @@ [runners.kubernetes]\n"),
            "{}",
            got.text
        );
    }

    #[test]
    fn a_toml_value_rewritten_from_a_quoted_string_shows_only_the_toml() {
        let input = CONFIGMAP.replace(
            "  config.template.toml: |\n    [[runners]]\n      [runners.kubernetes]\n        image = \"alpine\"\n",
            "  config.template.toml: \"[[runners]]\\n  [runners.kubernetes]\\n    image = \\\"alpine\\\"\\n\"\n\n",
        );
        let output = CONFIGMAP
            .replace("\"alpine\"", "\"debian\"")
            .replace("  entrypoint", "\n  entrypoint");
        let got = plain(&input, &output);
        assert!(
            got.text
                .contains("-    image = \"alpine\"\n+    image = \"debian\"\n"),
            "{}",
            got.text
        );
        assert!(!got.text.contains("(input lines)"), "{}", got.text);
    }

    #[test]
    fn other_changes_beside_the_toml_are_shown_as_yaml_too() {
        let output = CONFIGMAP
            .replace("\"alpine\"", "\"debian\"")
            .replace("  name: r\n", "  name: \"r\"\n");
        let got = plain(CONFIGMAP, &output);
        assert!(got.text.contains("(TOML line numbers"), "{}", got.text);
        assert!(
            got.text
                .contains("--- a/r/templates/configmap.yaml (input lines)\n"),
            "{}",
            got.text
        );
        assert!(
            got.text.contains("-  name: r\n+  name: \"r\"\n"),
            "{}",
            got.text
        );
    }

    #[test]
    fn generated_documents_after_a_last_line_without_break() {
        let input = "kind: A\nmetadata:\n  name: a";
        let output =
            format!("{input}\n---\nkind: ConfigMap\nmetadata:\n  name: g\n  namespace: ns\n");
        let got = plain(input, &output);
        assert_eq!(got.documents, 1, "{}", got.text);
        assert_eq!(
            got.text,
            "=== ConfigMap ns/g: generated (output document 2, line 4)\n\
             --- /dev/null\n\
             +++ b/ConfigMap/ns/g (output lines)\n\
             @@ -0,0 +4,5 @@\n+---\n+kind: ConfigMap\n+metadata:\n+  name: g\n+  namespace: ns\n"
        );
    }

    #[test]
    fn a_missing_final_line_break_is_marked() {
        let got = plain("kind: A\nx: 1", "kind: A\nx: 2");
        assert!(
            got.text.ends_with(
                "-x: 1\n\\ No newline at end of file\n+x: 2\n\\ No newline at end of file\n"
            ),
            "{}",
            got.text
        );
    }

    #[test]
    fn crlf_lines_keep_their_ending() {
        let got = plain("kind: A\r\nx: 1\r\n", "kind: A\r\nx: 2\r\n");
        assert!(got.text.contains("-x: 1\r\n+x: 2\r\n"), "{:?}", got.text);
    }

    #[test]
    fn a_secret_is_never_shown() {
        let input = "kind: Secret\nmetadata:\n  name: s\ndata:\n  token: c2VjcmV0\n";
        let output = input.replace("c2VjcmV0", "bmV3c2VjcmV0");
        let got = plain(input, &output);
        assert_eq!(got.documents, 1);
        assert!(
            !got.text.contains("c2VjcmV0") && !got.text.contains("bmV3"),
            "{}",
            got.text
        );
        assert!(got.text.contains("not shown"), "{}", got.text);
    }

    #[test]
    fn an_unreadable_document_naming_secret_is_not_shown_either() {
        let input = "kind: Secret\ndata: [unclosed\n  token: c2VjcmV0\n";
        let got = plain(input, &input.replace("c2VjcmV0", "bmV3"));
        assert!(
            got.text
                .starts_with("=== document: updated (input document 1, line 1)\n"),
            "{}",
            got.text
        );
        assert!(!got.text.contains("c2VjcmV0"), "{}", got.text);
    }

    #[test]
    fn helm4_annotation_names_the_source() {
        let input = "kind: A\nmetadata:\n  name: a\n  annotations:\n    postrenderer.helm.sh/postrender-filename: c/templates/a.yaml\nx: 1\n";
        let got = plain(input, &input.replace("x: 1", "x: 2"));
        assert!(
            got.text
                .starts_with("=== A a: updated (source c/templates/a.yaml, "),
            "{}",
            got.text
        );
        assert!(
            got.text
                .contains("--- a/c/templates/a.yaml (input lines)\n"),
            "{}",
            got.text
        );
    }

    #[test]
    fn colour_wraps_each_line_and_ends_before_the_line_break() {
        let options = Options {
            color: true,
            ..Options::default()
        };
        let got = render("kind: A\nx: 1\n", "kind: A\nx: 2\n", &options);
        let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
        let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
        assert!(
            got.text.contains(&format!("{red}-x: 1{red:#}\n")),
            "{:?}",
            got.text
        );
        assert!(
            got.text.contains(&format!("{green}+x: 2{green:#}\n")),
            "{:?}",
            got.text
        );
        assert!(
            got.text.contains("\n kind: A\n"),
            "context lines stay plain: {:?}",
            got.text
        );
        assert!(
            !plain("kind: A\nx: 1\n", "kind: A\nx: 2\n")
                .text
                .contains('\u{1b}')
        );
    }

    #[test]
    fn context_lines_follow_the_option() {
        let input: String = (1..=20).map(|i| format!("k{i}: {i}\n")).collect();
        let output = input.replace("k10: 10", "k10: 0");
        let got = render(
            &input,
            &output,
            &Options {
                color: false,
                context: 1,
            },
        );
        assert!(
            got.text
                .contains("@@ -9,3 +9,3 @@\n k9: 9\n-k10: 10\n+k10: 0\n k11: 11\n"),
            "{}",
            got.text
        );
    }

    /// Applies the hunks of a one-document diff (stream line numbers = text line numbers) to `old`.
    fn apply(old: &str, diff: &str) -> String {
        let old_lines: Vec<&str> = old.split_inclusive('\n').collect();
        let mut out = String::new();
        let mut next = 0; // index of the next old line not yet copied
        let mut lines = diff.lines().skip_while(|l| !l.starts_with("@@")).peekable();
        while let Some(header) = lines.next() {
            let old_range = header.split(' ').nth(1).unwrap().trim_start_matches('-');
            let (start, len) = match old_range.split_once(',') {
                Some((s, l)) => (s.parse::<usize>().unwrap(), l.parse::<usize>().unwrap()),
                None => (old_range.parse().unwrap(), 1),
            };
            let first = if len == 0 { start } else { start - 1 };
            for line in &old_lines[next..first] {
                out.push_str(line);
            }
            next = first;
            let mut last = ' ';
            while let Some(line) = lines.next_if(|l| !l.starts_with("@@")) {
                let (tag, _) = line.split_at(1);
                match line.split_at(1) {
                    (" ", _) => {
                        out.push_str(old_lines[next]);
                        next += 1;
                    }
                    ("-", _) => next += 1,
                    ("+", text) => {
                        out.push_str(text);
                        out.push('\n');
                    }
                    ("\\", _) => {
                        // Belongs to the line before; only an added line was written with a break.
                        if last == '+' {
                            out.pop();
                        }
                    }
                    _ => panic!("unexpected diff line {line:?}"),
                }
                if tag != "\\" {
                    last = tag.chars().next().unwrap();
                }
            }
        }
        for line in &old_lines[next..] {
            out.push_str(line);
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// The hunks, applied to the input document, give the output document: every change is
        /// shown, at the right line numbers, whatever the context size.
        #[test]
        fn hunks_rebuild_the_output(
            old in proptest::collection::vec(0usize..5, 0..30),
            new in proptest::collection::vec(0usize..5, 0..30),
            old_break: bool,
            new_break: bool,
            context in 0usize..4,
        ) {
            const LINES: [&str; 5] = ["a: 1", "b: 2", "  c: 3", "", "# d"];
            let doc = |picks: &[usize], end: bool| {
                let mut t = String::from("kind: A\n");
                t.push_str(&picks.iter().map(|&i| LINES[i]).collect::<Vec<_>>().join("\n"));
                if end || picks.is_empty() {
                    t.push('\n');
                }
                t
            };
            let (old, new) = (doc(&old, old_break), doc(&new, new_break));
            let got = render(&old, &new, &Options { color: false, context });
            proptest::prop_assert_eq!(got.documents, usize::from(old != new));
            if old != new {
                proptest::prop_assert_eq!(apply(&old, &got.text), new, "{}", got.text);
            }
        }
    }

    #[test]
    fn ranges_follow_diff_u() {
        assert_eq!(range(0..0, 1), "0,0");
        assert_eq!(range(4..4, 10), "13,0");
        assert_eq!(range(2..3, 1), "3");
        assert_eq!(range(2..5, 100), "102,3");
    }
}
