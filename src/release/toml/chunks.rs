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

/// A piece of the TOML: its byte range and how many tokens (keys, values, punctuation; not
/// whitespace or comments) it holds, which bounds what parsing it costs.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    pub(super) range: Range<usize>,
    pub(super) tokens: usize,
}

/// Pieces covering `text`: the part before the first `[[runners]]` header (if any), then one
/// piece per header, each starting at the beginning of the header's line.
pub(super) fn split(text: &str) -> Vec<Piece> {
    let mut starts = vec![0];
    // Tokens seen before each start, so that a piece's count is a difference.
    let mut counts = vec![0];
    let mut tokens = 0;
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
            TokenKind::Whitespace | TokenKind::Comment | TokenKind::Eof => continue,
            _ => tokens += 1,
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
                    // This header's five tokens belong to the new piece.
                    counts.push(tokens - 5);
                }
                at_line_start = false;
            }
            _ => at_line_start = false,
        }
    }
    counts.push(tokens);
    starts.push(text.len());
    starts
        .windows(2)
        .zip(counts.windows(2))
        .map(|(s, c)| Piece {
            range: s[0]..s[1],
            tokens: c[1] - c[0],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str) -> Vec<&str> {
        split(text).into_iter().map(|p| &text[p.range]).collect()
    }

    #[test]
    fn counts_tokens_per_piece() {
        let text = "a = 1 # c\n[[runners]]\n  name = \"x\"\n";
        let counts: Vec<usize> = split(text).iter().map(|p| p.tokens).collect();
        assert_eq!(counts, [3, 8]);
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
