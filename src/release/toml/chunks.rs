//! Cuts a runner TOML at its top-level `[[runners]]` headers, so that each entry is parsed and
//! patched on its own: toml_edit keeps several hundred bytes per key, and a `config.toml` with
//! thousands of `[[runners]]` would otherwise cost hundreds of times its size in memory.
//!
//! The cut is made with toml_parser's lexer, so a `[[runners]]` inside a multi-line string is not
//! a header. Every `[runners.…]` table belongs to the last `[[runners]]` before it, so each piece
//! is a TOML document with the same meaning for its entry; the caller falls back to one piece
//! when the pieces would not add up to the same document (see [`super::apply`]).

use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::TokenKind;

/// Byte ranges covering `text`: the part before the first `[[runners]]` header (possibly
/// empty), then one range per header, each starting at the beginning of the header's line.
pub(super) fn split(text: &str) -> Vec<Range<usize>> {
    let mut starts = vec![0];
    let source = Source::new(text);
    // State: where the current line starts, and how far a `[[runners]]` header has been seen.
    let mut line_start = 0;
    let mut at_line_start = true;
    let mut seen: Vec<TokenKind> = Vec::with_capacity(8);
    let mut atom_ok = false;
    for token in source.lex() {
        let kind = token.kind();
        let span = token.span();
        match kind {
            TokenKind::Newline => {
                line_start = span.end();
                at_line_start = true;
                seen.clear();
                atom_ok = false;
                continue;
            }
            TokenKind::Whitespace => continue,
            _ => {}
        }
        if !at_line_start {
            continue;
        }
        seen.push(kind);
        match seen.as_slice() {
            [TokenKind::LeftSquareBracket]
            | [TokenKind::LeftSquareBracket, TokenKind::LeftSquareBracket] => {}
            [_, _, TokenKind::Atom] => {
                atom_ok = source
                    .get(span)
                    .is_some_and(|raw| raw.as_str() == "runners");
                if !atom_ok {
                    at_line_start = false;
                }
            }
            [_, _, _, TokenKind::RightSquareBracket] if atom_ok => {}
            [_, _, _, _, TokenKind::RightSquareBracket] if atom_ok => {
                if line_start > 0 {
                    starts.push(line_start);
                }
                at_line_start = false;
            }
            _ => at_line_start = false,
        }
    }
    let mut ranges: Vec<Range<usize>> = starts.windows(2).map(|w| w[0]..w[1]).collect();
    ranges.push(*starts.last().expect("starts with 0")..text.len());
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        split(text).into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn cuts_before_each_runners_header() {
        let text = "concurrent = 1\n[[runners]]\n  name = \"a\"\n  [runners.kubernetes]\n  # c\n  [[runners]]\nname = \"b\"";
        assert_eq!(
            pieces(text),
            [
                "concurrent = 1\n",
                "[[runners]]\n  name = \"a\"\n  [runners.kubernetes]\n  # c\n",
                "  [[runners]]\nname = \"b\""
            ]
        );
    }

    #[test]
    fn ignores_headers_in_strings_and_other_tables() {
        let text = "[[runners]]\nscript = \"\"\"\n[[runners]]\n\"\"\"\n[[runners.kubernetes.host_aliases]]\nx = [[1]]\n";
        assert_eq!(pieces(text), [text]);
    }
}
