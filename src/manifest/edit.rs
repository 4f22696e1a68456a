//! Rewrites one `data` value of a ConfigMap in place: only the bytes of that scalar change, the
//! rest of the document (other keys, quoting, comments, Helm's whitespace quirks) stays as it was.
//!
//! The new value is written as a literal block (`|`, or `|-` when it has no final newline), the
//! form charts use for TOML. Strings a literal block cannot carry exactly (CR, control characters,
//! YAML line separators, leading blanks, several trailing newlines) return `None`, and the caller
//! re-emits the whole document instead. The caller also re-reads the result and compares it with
//! the intended value, so a wrong edit can never go out.

use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

/// Where a `data` value sits in a document's text.
struct ValueSite {
    /// Byte offset right after the key (where `:` follows).
    key_end: usize,
    /// Column of the key (content of a block goes two columns further in).
    key_col: usize,
    /// Byte offset where the text after the value starts (the next line for a block scalar).
    value_end: usize,
}

/// `body` with `data[key]` replaced by `value` written as a literal block, or `None` when that is
/// not possible (see the module docs). The replacement is verified: the rewritten `key: value`
/// region must read back as exactly `value` (the region is all that changed, from right after the
/// key to the start of the next line, so the surrounding structure cannot move).
pub fn replace_data_value(body: &str, key: &str, value: &str) -> Option<String> {
    if !literal_block_can_hold(value) {
        return None;
    }
    let site = find(body, key)?;
    let indent = " ".repeat(site.key_col + 2);
    let mut out = String::with_capacity(body.len() + value.len());
    out.push_str(&body[..site.key_end]);
    out.push_str(if value.ends_with('\n') {
        ": |\n"
    } else {
        ": |-\n"
    });
    for line in value.strip_suffix('\n').unwrap_or(value).split('\n') {
        if !line.is_empty() {
            out.push_str(&indent);
            out.push_str(line);
        }
        out.push('\n');
    }
    out.push_str(&body[site.value_end..]);
    Some(out)
}

fn literal_block_can_hold(value: &str) -> bool {
    !value.is_empty()
        && !value.starts_with([' ', '\t', '\n'])
        && !value.ends_with("\n\n")
        && !value.chars().any(|c| {
            (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
        })
}

/// Finds `data.<key>` of the top-level mapping. Only plain block layout is handled (what Helm
/// writes); anything unusual returns `None`.
fn find(body: &str, key: &str) -> Option<ValueSite> {
    let mut depth = 0usize;
    // Per open mapping: is the next node a key?
    let mut expect_key: Vec<bool> = Vec::new();
    let mut in_data = false;
    let mut pending: Option<(usize, usize)> = None; // key_end, key_col of the matched key
    let mut last_top_key: Option<String> = None;
    let mut seen_data = false;
    // The whole document is read, so that a duplicate key or `data:` is noticed.
    let mut found: Option<ValueSite> = None;
    for item in Parser::new_from_str(body) {
        let (event, span) = item.ok()?;
        let at_key = expect_key.last().copied().unwrap_or(false);
        match &event {
            Event::Scalar(text, style, ..) => {
                if at_key {
                    if depth == 1 {
                        // A second `data:` would win over the first (last-wins, like go-yaml v2).
                        if text == "data" && seen_data {
                            return None;
                        }
                        seen_data |= text == "data";
                        last_top_key = Some(text.to_string());
                    } else if depth == 2 && in_data && text == key {
                        if found.is_some() {
                            return None; // duplicate key: the in-place edit could hit the wrong one
                        }
                        pending = Some((span.end.byte_offset()?, span.start.col()));
                    }
                } else if let Some((key_end, key_col)) = pending.take() {
                    let end = span.end.byte_offset()?;
                    let value_end = match style {
                        ScalarStyle::Literal | ScalarStyle::Folded => {
                            // A block ends at the start of the line holding its end marker.
                            body[..end]
                                .rfind('\n')
                                .map_or(end, |i| i + 1)
                                .max(span.start.byte_offset()?)
                        }
                        _ => {
                            // A flow scalar: take the rest of its line too (spaces, a comment).
                            let rest = &body[end..];
                            let line_end = rest.find('\n').map_or(body.len(), |i| end + i + 1);
                            if !body[end..line_end].trim_start().is_empty()
                                && !body[end..line_end].trim_start().starts_with('#')
                            {
                                return None;
                            }
                            line_end
                        }
                    };
                    found = Some(ValueSite {
                        key_end,
                        key_col,
                        value_end,
                    });
                }
                if let Some(flag) = expect_key.last_mut() {
                    *flag = !*flag;
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                if pending.is_some() {
                    return None; // `data.<key>` is not a scalar
                }
                if depth == 1 && at_key {
                    return None; // complex key at the top level: not a Helm document
                }
                // A literal block cannot stand inside a flow collection (`{"data": {…}}`, JSON).
                if depth < 2 && matches!(event, Event::MappingStart(StructureStyle::Flow, ..)) {
                    return None;
                }
                in_data = depth == 1
                    && last_top_key.as_deref() == Some("data")
                    && matches!(event, Event::MappingStart(..));
                depth += 1;
                expect_key.push(matches!(event, Event::MappingStart(..)));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                depth = depth.checked_sub(1)?;
                expect_key.pop();
                if depth == 1 {
                    in_data = false;
                }
                if let Some(flag) = expect_key.last_mut() {
                    *flag = !*flag;
                }
            }
            Event::Alias(..) => {
                if pending.is_some() {
                    return None;
                }
                if let Some(flag) = expect_key.last_mut() {
                    *flag = !*flag;
                }
            }
            Event::DocumentEnd | Event::StreamEnd => break,
            _ => {}
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_only_the_value() {
        let body =
            "kind: ConfigMap\ndata:\n  a: \"x\"\n  t:   |\n    old\n  \n\n  z: |\n    keep\n";
        let out = replace_data_value(body, "t", "new\nlines\n").unwrap();
        assert_eq!(
            out,
            "kind: ConfigMap\ndata:\n  a: \"x\"\n  t: |\n    new\n    lines\n  z: |\n    keep\n"
        );
    }

    #[test]
    fn handles_quoted_and_strip() {
        let body = "data:\n  t:   \"a\\n b \\n\"  # c\n  z: 1\n";
        let out = replace_data_value(body, "t", "a\n b \nc").unwrap();
        assert_eq!(out, "data:\n  t: |-\n    a\n     b \n    c\n  z: 1\n");
    }

    #[test]
    fn declines_flow_style() {
        assert!(replace_data_value("{\"data\": {\"t\": \"a\"}}\n", "t", "v\n").is_none());
        assert!(replace_data_value("data: {t: a}\n", "t", "v\n").is_none());
    }

    #[test]
    fn declines_duplicate_keys() {
        assert!(replace_data_value("data:\n  t: a\n  t: b\n", "t", "v\n").is_none());
        assert!(replace_data_value("data:\n  t: a\ndata:\n  t: b\n", "t", "v\n").is_none());
    }

    #[test]
    fn refuses_what_a_block_cannot_carry() {
        assert!(replace_data_value("data:\n  t: x\n", "t", " lead\n").is_none());
        assert!(replace_data_value("data:\n  t: x\n", "t", "cr\r\n").is_none());
        assert!(replace_data_value("data:\n  t: x\n", "missing", "v\n").is_none());
    }
}
