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
    serde_saphyr::from_str_with_options(text, read_options())
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
    serde_saphyr::from_str_with_options(text, options)
}

/// Parses YAML, with budgets, into any deserializable type (used for the spec file).
pub fn parse_as<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(text, read_options())
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
