//! Reading the few target documents, and emitting the documents runner-patch adds (generated
//! ConfigMaps) and the scalars the in-place editor writes.
//!
//! Why serde-saphyr: its emitter quotes every YAML 1.1 spelling (`on`, `yes`, `y`, `0644`…) that
//! Helm's Go readers (go-yaml v2 via sigs.k8s.io/yaml, yaml.v3 in Helm 4) would otherwise turn into
//! booleans or numbers, it keeps multi-line strings as literal blocks with the right chomping, and
//! it has resource budgets. The settings follow `yaml-fidelity.md`: read like go-yaml v2
//! (`0644` is octal, duplicate keys last-wins), never fold long lines.
//!
//! `serde_json::Value` (with `preserve_order`) is the document model: it is exactly the JSON model
//! Helm and kubectl use after `YAMLToJSON`, and keeps key order.

use serde::Serialize;
use serde_json::Value;
use serde_saphyr::budget::BudgetBreach;

/// Parses one YAML document into a JSON value the way Helm's Go readers would.
pub fn parse(text: &str) -> Result<Value, serde_saphyr::Error> {
    parse_as(text)
}

/// Like [`parse`], refusing a document of more than `max_nodes` nodes (collections and scalars,
/// keys included) while it is read, before it is all held: the parsed value costs a few hundred
/// bytes per node, so a node limit bounds its memory where a limit on the text cannot (`[a,a,…]`
/// is a node per two bytes).
pub fn parse_with_node_limit(text: &str, max_nodes: usize) -> Result<Value, serde_saphyr::Error> {
    let mut options = read_options();
    if let Some(budget) = options.budget.as_mut() {
        budget.max_nodes = max_nodes;
    }
    parse_with(text, options)
}

/// Parses YAML, with budgets, into any deserializable type (used for the spec file).
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    parse_with(text, read_options())
}

/// Every parse goes through here, so that a block scalar ending the input reads as YAML says
/// (see [`strip_chomping_at_end_of_input`]) whichever budget applies.
fn parse_with<T: serde::de::DeserializeOwned>(
    text: &str,
    options: serde_saphyr::Options,
) -> Result<T, serde_saphyr::Error> {
    match strip_chomping_at_end_of_input(text) {
        Some(header) => {
            let fixed = [&text[..header.start], "-", &text[header.end..]].concat();
            serde_saphyr::from_str_with_options(&fixed, options)
        }
        None => serde_saphyr::from_str_with_options(text, options),
    }
}

/// When `text` ends inside the last content line of a block scalar (`|`, `>`, `|+`… and no line
/// break at the end of input): the bytes of its header that, replaced with `-`, make the text read
/// as YAML says it reads (`|` → `|-`, `|+` → `|-`, `>2` → `>2-`); `None` otherwise.
///
/// YAML 1.2 §8.1.1.2 (`b-chomped-last`): the end of input ends such a scalar's last line without
/// a line break, so `k: |⏎  keep` reads as "keep" whatever its chomping — as PyYAML, go-yaml v2
/// and yaml.v3 read it. granit-parser reads the end of input as a line break ("keep\n"). The same
/// scalar with strip chomping (`|-`) reads as "keep" in every reader, granit-parser included, so
/// the text is parsed with that indicator instead. Only the last line of the last document of a
/// stream without a final newline can be in this state, so the events are walked only then.
pub fn strip_chomping_at_end_of_input(text: &str) -> Option<std::ops::Range<usize>> {
    use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
    let last_line = &text[text.rfind('\n').map_or(0, |i| i + 1)..];
    if last_line.is_empty() {
        return None;
    }
    // The last node of the text, when it is a block scalar: its content span, and the end of
    // the token before it (end events carry no text of their own and are skipped).
    let (mut prev_end, mut block) = (0, None);
    for item in Parser::new_from_str(text) {
        let (event, span) = item.ok()?;
        if matches!(
            event,
            Event::MappingEnd | Event::SequenceEnd | Event::DocumentEnd | Event::StreamEnd
        ) {
            continue;
        }
        let (Some(s), Some(e)) = (span.start.byte_offset(), span.end.byte_offset()) else {
            return None;
        };
        block = match event {
            Event::Scalar(_, ScalarStyle::Literal | ScalarStyle::Folded, ..) => {
                Some((prev_end, s, e))
            }
            _ => None,
        };
        if block.is_none() {
            prev_end = prev_end.max(e);
        }
    }
    let (from, content_start, span_end) = block?;
    if span_end < text.len() {
        return None;
    }
    // The `|`/`>` indicator: after the previous token, past `:`/`-`/`?`, comments, an anchor or
    // a tag (the content itself starts on a later line).
    let bytes = text.as_bytes();
    let mut i = from;
    while i < content_start {
        match bytes[i] {
            b' ' | b'\t' | b'\r' | b'\n' | b':' | b'-' | b'?' => i += 1,
            b'#' => i += text[i..].find('\n').map_or(text.len() - i, |n| n + 1),
            b'&' | b'!' => {
                while i < content_start && !matches!(bytes[i], b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                }
            }
            _ => break,
        }
    }
    if !matches!(bytes.get(i), Some(b'|' | b'>')) {
        return None;
    }
    // A last line of spaces is content only deeper than the content's indentation (that of its
    // first non-blank line; an explicit indentation digit is not looked at); no deeper, it is a
    // trailing blank line and holds no line break either.
    if last_line.bytes().all(|b| b == b' ') {
        let header_end = text[i..].find('\n').map_or(text.len(), |n| i + n + 1);
        let indent = text[header_end..]
            .split('\n')
            .find(|l| !l.trim().is_empty())
            .map_or(usize::MAX, |l| l.len() - l.trim_start_matches(' ').len());
        if last_line.len() <= indent {
            return None;
        }
    }
    // The chomping indicator (`+`, or `-` already) follows `|`/`>` or its indentation digit;
    // a clip header has none, and `-` goes after the digit.
    let header = &bytes[i + 1..];
    let run = header
        .iter()
        .take_while(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-'))
        .count();
    match header[..run].iter().position(|&b| matches!(b, b'+' | b'-')) {
        Some(p) if header[p] == b'-' => None,
        Some(p) => Some(i + 1 + p..i + 2 + p),
        None => Some(i + 1 + run..i + 1 + run),
    }
}

/// A parse error's message and 1-based line, without the source snippet (which could quote a Secret).
pub fn describe_error(err: &serde_saphyr::Error) -> (String, Option<(usize, usize)>) {
    let bare = err.without_snippet();
    let position = bare
        .location()
        .map(|loc| (loc.line() as usize, loc.column() as usize));
    let mut message = bare.to_string();
    // The plain rendering may still end with "at line X column Y"; keep it short and single-line.
    if let Some(i) = message.find('\n') {
        message.truncate(i);
    }
    // serde-saphyr names a breached budget with Rust debug text (`budget breached: Documents {
    // documents: 2 }`); say it in words instead, keeping the positions that follow.
    if let Some(breach) = budget_breach(err) {
        let debug = format!("budget breached: {breach:?}");
        message = message.replacen(&debug, &budget_words(breach), 1);
    }
    (message, position)
}

/// `message` with every `line N` read as `line N + delta`: a document's parse error counts lines
/// from the document's start, the user reads the stream's.
pub fn shift_lines(message: &str, delta: usize) -> String {
    const WORD: &str = "line ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find(WORD) {
        let (before, after) = rest.split_at(i + WORD.len());
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        match after[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + delta).to_string()),
            Err(_) => out.push_str(&after[..digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// True when `err` is a breach of the node limit (also one met while expanding an alias).
pub fn is_node_limit(err: &serde_saphyr::Error) -> bool {
    matches!(budget_breach(err), Some(BudgetBreach::Nodes { .. }))
}

fn budget_breach(mut err: &serde_saphyr::Error) -> Option<&BudgetBreach> {
    loop {
        match err {
            serde_saphyr::Error::WithSnippet { error, .. }
            | serde_saphyr::Error::AliasError { error, .. } => err = error,
            serde_saphyr::Error::Budget { breach, .. } => return Some(breach),
            _ => return None,
        }
    }
}

/// A breached budget in plain words (the limits are those of [`read_options`]).
fn budget_words(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Documents { .. } => {
            "more than one YAML document where one is expected (a `---` line starts another)".into()
        }
        BudgetBreach::Nodes { nodes } => format!(
            "too large: more than {} YAML nodes",
            thousands(nodes.saturating_sub(1))
        ),
        BudgetBreach::Events { .. } => "too large: more than 2,000,000 YAML parser events".into(),
        BudgetBreach::Depth { .. } => "nested more than 256 levels deep".into(),
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            "aliases expand beyond the limit of 100,000 events or 8 MiB (an alias bomb)".into()
        }
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. } => "too many aliases or anchors".into(),
        BudgetBreach::ScalarBytes { .. } => "more than 64 MiB of scalar text".into(),
        _ => "exceeds one of runner-patch's size limits for a parsed document".into(),
    }
}

/// `n` with a comma between groups of three digits (`1,000,000`).
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Emits `value` as one YAML document (no leading `---`), safe for Go readers.
pub fn emit(value: &Value) -> Result<String, String> {
    let text = serde_saphyr::to_string_with_options(&GoSafe(value), write_options())
        .map_err(|e| e.to_string())?;
    // Guard against emitter bugs, in every build: the text must read back as exactly the same
    // value. Only new documents (generated ConfigMaps, a few hundred bytes) are emitted whole;
    // edited documents are checked by `edit::rewrite` the same way.
    match parse(&text) {
        Ok(back) if &back == value => Ok(text),
        Ok(_) => Err("value changed on re-read".to_owned()),
        Err(e) => Err(describe_error(&e).0),
    }
}

/// Budgets for the few documents that are parsed (the spec, the read-back of an edit; runner
/// candidates with a tighter node limit, see [`parse_with_node_limit`]). These limits keep an
/// alias bomb to well under a second and ~100 MB. Documented in docs/robustness.md.
fn read_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1;
    budget.max_nodes = 1_000_000;
    budget.max_events = 2_000_000;
    budget.max_depth = 256;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 8 << 20;
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        budget: Some(budget),
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
    }
}

fn write_options() -> serde_saphyr::SerializerOptions {
    serde_saphyr::ser_options! {
        folded_wrap_chars: usize::MAX,
        min_fold_chars: usize::MAX,
    }
}

/// Serializes a JSON value, forcing double quotes for the one string shape serde-saphyr would emit
/// as a block that Go cannot read back: a multi-line string whose first line starts with a TAB.
struct GoSafe<'a>(&'a Value);

impl Serialize for GoSafe<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::String(s) if s.contains('\n') && s.starts_with('\t') => {
                serde_saphyr::DoubleQuoted(s.as_str()).serialize(serializer)
            }
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&GoSafe(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = serializer.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, &GoSafe(v))?;
                }
                m.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn positions_in_a_message_are_shifted_to_the_stream() {
        assert_eq!(
            shift_lines(
                "x at line 8, column 58 (defined at line 12, column 9) line",
                329
            ),
            "x at line 337, column 58 (defined at line 341, column 9) line"
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_yaml11_spellings_and_keeps_blocks() {
        let v = json!({"a": "on", "b": "yes", "c": "0644", "d": "line1\nline2\n", "e": "x\ny", "f": "\tfirst\nsecond\n"});
        let text = emit(&v).unwrap();
        assert!(text.contains("d: |\n"), "{text}");
        assert!(text.contains("e: |-\n"), "{text}");
        assert!(!text.contains("a: on\n"), "{text}");
        assert_eq!(parse(&text).unwrap(), v);
    }

    #[test]
    fn a_node_limit_is_said_with_its_number() {
        let err = parse_with_node_limit("[a, a, a, a]\n", 3).unwrap_err();
        assert!(
            describe_error(&err)
                .0
                .contains("too large: more than 3 YAML nodes"),
            "{}",
            describe_error(&err).0
        );
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(20_000), "20,000");
        assert_eq!(thousands(999), "999");
        assert!(is_node_limit(&err));
        assert!(parse_with_node_limit("[a, a]\n", 3).is_ok());
        // Nodes an alias repeats count too.
        let err = parse_with_node_limit("a: &x [b, c]\nd: [*x, *x, *x]\n", 12).unwrap_err();
        assert!(is_node_limit(&err));
    }

    #[test]
    fn reads_octal_like_go_yaml_v2() {
        assert_eq!(parse("m: 0644\n").unwrap(), json!({"m": 420}));
    }
}

#[cfg(test)]
mod end_of_input_tests {
    use super::*;

    #[test]
    fn a_block_scalar_ending_the_input_without_a_line_break_reads_without_one() {
        for (text, fixed, value) in [
            ("a: |\n  keep", "a: |-\n  keep", "keep"),
            ("a: >\n  one\n  two", "a: >-\n  one\n  two", "one two"),
            ("a: |+\n  keep", "a: |-\n  keep", "keep"),
            ("a: |2\n   keep", "a: |2-\n   keep", " keep"),
            ("a: >+2 # c |\n   keep", "a: >-2 # c |\n   keep", " keep"),
            (
                "b: 1\na: &x !!str | # c\n  one\n\n  keep",
                "b: 1\na: &x !!str |- # c\n  one\n\n  keep",
                "one\n\nkeep",
            ),
            ("l:\n- x\n- |\n  keep", "l:\n- x\n- |-\n  keep", ""),
            ("--- |\n  keep", "--- |-\n  keep", ""),
            (
                "a: |+\n  keep\n\n     ",
                "a: |-\n  keep\n\n     ",
                "keep\n\n   ",
            ),
        ] {
            let header = strip_chomping_at_end_of_input(text).expect(text);
            let fixed_text = [&text[..header.start], "-", &text[header.end..]].concat();
            assert_eq!(fixed_text, fixed, "{text:?}");
            if !value.is_empty() {
                assert_eq!(parse(text).unwrap()["a"], value, "{text:?}");
            }
        }
        for text in [
            "a: |\n  keep\n",
            "a: |+\n  keep\n\n  ",
            "a: |+\n  keep\n\n \t",
            "a: |\n  keep\n# c",
            "a: |\n  keep\nb: x",
            "a: |-\n  keep",
            "a: \"|\"\nb: x",
        ] {
            assert_eq!(strip_chomping_at_end_of_input(text), None, "{text:?}");
        }
    }
}
