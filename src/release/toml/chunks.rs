//! Cuts a runner TOML at its top-level `[[runners]]` headers, so that each entry is parsed and
//! patched on its own: toml_edit keeps several hundred bytes per key, and a `config.toml` with
//! thousands of `[[runners]]` would otherwise cost hundreds of times its size in memory.
//!
//! The cut is made with toml_parser's lexer, so a `[[runners]]` inside a multi-line string or a
//! multi-line array is not a header. Every `[runners.…]` table belongs to the last `[[runners]]`
//! before it, so each piece is a TOML document with the same meaning for its entry, provided no
//! other top-level table is spread over two pieces. The same lexer pass finds the top-level
//! keys of each piece; when the pieces would not add up to the same document, the whole text is
//! one piece. That is decided before anything is parsed, so every byte is parsed exactly once.

use std::collections::HashMap;
use std::ops::Range;

use toml_parser::Source;
use toml_parser::lexer::{Token, TokenKind};

use super::keys;

/// A piece of the TOML: its byte range and how many tokens (keys, values, punctuation; not
/// whitespace or comments) it holds, which bounds what parsing it costs.
#[derive(Debug, Clone)]
pub(super) struct Piece {
    pub(super) range: Range<usize>,
    pub(super) tokens: usize,
}

/// Pieces covering `text`: the part before the first `[[runners]]` header (if any), then one
/// piece per header, each starting at the beginning of the header's line. A single piece (the
/// whole text) when a top-level key other than `runners` is defined in two pieces (`[a]` before
/// the runners and `[a.b]` after them), or `runners` is written other than as `[[runners]]`
/// before the first such header or spelled in another case: what the whole document means (or
/// the error it is refused with) would then differ from what the pieces mean.
pub(super) fn split(text: &str) -> Vec<Piece> {
    let mut scan = Scan::default();
    let total = scan.scan(&Source::new(text));
    if !scan.independent {
        return vec![Piece {
            range: 0..text.len(),
            tokens: total,
        }];
    }
    let mut starts = scan.starts;
    let mut counts = scan.counts;
    starts.push(text.len());
    counts.push(total);
    starts
        .windows(2)
        .zip(counts.windows(2))
        .map(|(s, c)| Piece {
            range: s[0]..s[1],
            tokens: c[1] - c[0],
        })
        .collect()
}

/// Whether `text` defines a top-level `runners` key in any form (`[[runners]]`, `runners = […]`,
/// `[runners.…]`, any case), read with the lexer only, so that a text meant to hold runners but
/// refused (not valid TOML, or too large to parse) can be told from one without runners.
pub(super) fn has_runners_key(text: &str) -> bool {
    let mut scan = Scan::default();
    scan.scan(&Source::new(text));
    scan.runners_key
}

/// A table header (`[a.b]` or `[[a.b]]`) of a TOML text: where its bracketed text is, and the
/// key path it decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// From the first `[` to the last `]`.
    pub(super) span: Range<usize>,
    pub(super) array: bool,
    pub(super) path: Vec<String>,
}

/// The table headers of `text`, in order (read with the lexer: a `[` inside a multi-line string
/// or array is no header).
pub(super) fn headers(text: &str) -> Vec<Header> {
    let mut scan = Scan {
        headers: Some(Vec::new()),
        ..Scan::default()
    };
    scan.scan(&Source::new(text));
    scan.headers.unwrap_or_default()
}

/// `after` (an edit of `before`) with every header spelled as in `before`: toml_edit re-renders
/// the header of every table of an edited document from its keys, which loses the spacing of
/// `[ runners . 'kubernetes' ]`. A header is matched by its decoded path and kind, the n-th of
/// `after` with the n-th of `before` (entries of an array of tables keep their order, new ones
/// come after), and a new entry takes the spelling of the first one. A header for a new path
/// continues the spelling of the longest header of `before` its path extends
/// (`[ runners . 'kubernetes' . host_aliases ]`).
pub(super) fn keep_header_spellings(before: &str, after: &str) -> String {
    let old = headers(before);
    let mut spellings: HashMap<(bool, &[String]), Vec<&str>> = HashMap::new();
    let mut by_path: HashMap<&[String], &Header> = HashMap::new();
    for h in &old {
        spellings
            .entry((h.array, h.path.as_slice()))
            .or_default()
            .push(&before[h.span.clone()]);
        by_path.entry(h.path.as_slice()).or_insert(h);
    }
    let mut seen: HashMap<(bool, Vec<String>), usize> = HashMap::new();
    let mut out = String::with_capacity(after.len());
    let mut copied = 0;
    for h in headers(after) {
        let count = seen.entry((h.array, h.path.clone())).or_default();
        let n = *count;
        *count += 1;
        let same = spellings
            .get(&(h.array, h.path.as_slice()))
            .and_then(|s| s.get(n).or(s.first()))
            .map(|raw| raw.to_string());
        let spelled = same.or_else(|| {
            let parent = (1..h.path.len())
                .rev()
                .find_map(|len| by_path.get(&h.path[..len]))?;
            Some(extend_header(before, parent, &h))
        });
        let Some(raw) = spelled else { continue };
        if raw != after[h.span.clone()] {
            out.push_str(&after[copied..h.span.start]);
            out.push_str(&raw);
            copied = h.span.end;
        }
    }
    out.push_str(&after[copied..]);
    out
}

/// The header `new` spelled as a continuation of `parent` (a header of `before` whose path is a
/// prefix of `new`'s): its spacing inside the brackets and around the dots, and its spelling of
/// the keys they share.
fn extend_header(before: &str, parent: &Header, new: &Header) -> String {
    let brackets = if parent.array { 2 } else { 1 };
    let raw = &before[parent.span.clone()];
    let inner = &raw[brackets..raw.len() - brackets];
    let core = inner.trim();
    let lead = &inner[..inner.len() - inner.trim_start().len()];
    let trail = &inner[inner.trim_end().len()..];
    let dot = if core.contains(" . ") { " . " } else { "." };
    let mut text = String::from(core);
    for key in &new.path[parent.path.len()..] {
        text.push_str(dot);
        text.push_str(&toml_edit::Key::new(key.as_str()).to_string());
    }
    let (open, close) = if new.array { ("[[", "]]") } else { ("[", "]") };
    format!("{open}{lead}{text}{trail}{close}")
}

/// What the lexer pass has found so far.
struct Scan {
    /// Byte offset where each piece starts, and the tokens before it.
    starts: Vec<usize>,
    counts: Vec<usize>,
    /// Brackets a value has open across lines (a multi-line array): its lines are no statements.
    depth: usize,
    /// A table header has been seen: key/value lines no longer define top-level keys.
    in_table: bool,
    /// A bare `[[runners]]` header has been seen.
    in_runners: bool,
    /// A top-level `runners` key has been seen, in any form.
    runners_key: bool,
    /// Top-level keys other than `runners`, folded as the runner compares them, with the piece
    /// that defines them.
    roots: HashMap<String, usize>,
    independent: bool,
    /// Every header, when asked for (see [`headers`]).
    headers: Option<Vec<Header>>,
}

impl Default for Scan {
    fn default() -> Self {
        Scan {
            starts: vec![0],
            counts: vec![0],
            depth: 0,
            in_table: false,
            in_runners: false,
            runners_key: false,
            roots: HashMap::new(),
            independent: true,
            headers: None,
        }
    }
}

impl Scan {
    /// Reads `source` line by line; the number of tokens it holds.
    fn scan(&mut self, source: &Source<'_>) -> usize {
        let mut line_start = 0;
        // Tokens seen before the current line, so that a piece's count is a difference.
        let mut tokens_before_line = 0;
        let mut line: Vec<Token> = Vec::with_capacity(8);
        for token in source.lex() {
            match token.kind() {
                TokenKind::Newline | TokenKind::Eof => {
                    self.statement_line(source, &line, line_start, tokens_before_line);
                    tokens_before_line += line.len();
                    line.clear();
                    line_start = token.span().end();
                }
                TokenKind::Whitespace | TokenKind::Comment => {}
                _ => line.push(token),
            }
        }
        self.statement_line(source, &line, line_start, tokens_before_line);
        tokens_before_line + line.len()
    }

    /// One line's significant tokens (`line`, starting at byte `line_start`).
    fn statement_line(
        &mut self,
        source: &Source<'_>,
        line: &[Token],
        line_start: usize,
        tokens_before: usize,
    ) {
        let Some(first) = line.first() else { return };
        let statement = self.depth == 0;
        for t in line {
            match t.kind() {
                TokenKind::LeftSquareBracket | TokenKind::LeftCurlyBracket => self.depth += 1,
                TokenKind::RightSquareBracket | TokenKind::RightCurlyBracket => {
                    self.depth = self.depth.saturating_sub(1)
                }
                _ => {}
            }
        }
        if !statement {
            return;
        }
        if first.kind() == TokenKind::LeftSquareBracket {
            // A header is complete on its line: its brackets do not open a value.
            self.depth = 0;
            self.header(source, line, line_start, tokens_before);
        } else if !self.in_table {
            // `key = value` or `key.sub = value` at the top level.
            let key = decode_key(source, first);
            self.top_level_key(key, false);
        }
    }

    fn header(
        &mut self,
        source: &Source<'_>,
        line: &[Token],
        line_start: usize,
        tokens_before: usize,
    ) {
        self.in_table = true;
        let kinds: Vec<TokenKind> = line.iter().take(5).map(Token::kind).collect();
        let array = kinds.get(1) == Some(&TokenKind::LeftSquareBracket);
        if let Some(headers) = &mut self.headers
            && let Some(header) = read_header(source, line, array)
        {
            headers.push(header);
        }
        let Some(key_token) = line.get(if array { 2 } else { 1 }) else {
            self.independent = false;
            return;
        };
        let bare_runners_array = array
            && line.len() == 5
            && key_token.kind() == TokenKind::Atom
            && source
                .get(key_token)
                .is_some_and(|raw| raw.as_str() == "runners")
            && kinds[3..] == [TokenKind::RightSquareBracket; 2];
        if bare_runners_array {
            self.in_runners = true;
            self.runners_key = true;
            if line_start > 0 {
                self.starts.push(line_start);
                self.counts.push(tokens_before);
            }
            return;
        }
        self.top_level_key(decode_key(source, key_token), true);
    }

    /// Records a top-level key of the current piece (`None`: one the lexer could not read).
    fn top_level_key(&mut self, key: Option<String>, header: bool) {
        let Some(key) = key else {
            self.independent = false;
            return;
        };
        if keys::same_field(&key, "runners") {
            self.runners_key = true;
            // `[runners.kubernetes]` after a `[[runners]]` belongs to that entry; anything else
            // makes `runners` something the pieces cannot agree on.
            if !(header && self.in_runners && key == "runners") {
                self.independent = false;
            }
            return;
        }
        let piece = self.starts.len() - 1;
        if *self.roots.entry(keys::fold(&key)).or_insert(piece) != piece {
            self.independent = false;
        }
    }
}

/// The header on `line` (its significant tokens), `None` if it does not read as one.
fn read_header(source: &Source<'_>, line: &[Token], array: bool) -> Option<Header> {
    let first_key = if array { 2 } else { 1 };
    let close = first_key
        + line
            .get(first_key..)?
            .iter()
            .position(|t| t.kind() == TokenKind::RightSquareBracket)?;
    let last = line.get(if array { close + 1 } else { close })?;
    if last.kind() != TokenKind::RightSquareBracket {
        return None;
    }
    let path = line[first_key..close]
        .iter()
        .filter(|t| t.kind() != TokenKind::Dot)
        .map(|t| decode_key(source, t))
        .collect::<Option<Vec<String>>>()?;
    Some(Header {
        span: line[0].span().start()..last.span().end(),
        array,
        path,
    })
}

/// The key `token` spells (bare or quoted), `None` if it is no key.
fn decode_key(source: &Source<'_>, token: &Token) -> Option<String> {
    match token.kind() {
        TokenKind::Atom | TokenKind::BasicString | TokenKind::LiteralString => {}
        _ => return None,
    }
    let raw = source.get(token)?;
    let mut key = std::borrow::Cow::Borrowed("");
    let mut errors = Vec::new();
    raw.decode_key(&mut key, &mut errors);
    errors.is_empty().then(|| key.into_owned())
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
    fn ignores_headers_in_strings_arrays_and_other_tables() {
        let text = "[[runners]]\nscript = \"\"\"\n[[runners]]\n\"\"\"\n[[runners.kubernetes.host_aliases]]\nx = [[1]]\ny = [\n[[runners]]\n]\n";
        assert_eq!(pieces(text), [text]);
    }

    #[test]
    fn a_table_on_both_sides_of_the_runners_is_one_piece() {
        for text in [
            "[session_server]\na = 1\n[[runners]]\n[[runners]]\n[session_server.x]\n",
            "session_server.a = 1\n[[runners]]\n[\"session_server\"]\n",
            "concurrent = 1\n[[runners]]\n[[runners]]\n[Concurrent]\n",
            "[runners.kubernetes]\n[[runners]]\n",
            "runners = []\n[[runners]]\n",
            "[[runners]]\n[[Runners]]\n[[runners]]\n",
        ] {
            assert_eq!(pieces(text), [text], "{text}");
        }
    }

    #[test]
    fn tables_defined_once_keep_the_cut() {
        let text =
            "concurrent = 1\n[session_server]\n[[runners]]\n[[runners]]\n[\"other\"]\nx = 1\n";
        assert_eq!(pieces(text).len(), 3);
        // A key under a header is not top-level.
        let text = "[session_server]\nconcurrent = 1\n[[runners]]\n[[runners]]\n[concurrent]\n";
        assert_eq!(pieces(text).len(), 3);
    }

    /// Every text of up to four statements from a set that spreads tables, dotted keys, key
    /// case and `runners` forms around `[[runners]]` headers: when it is cut, the pieces are
    /// valid exactly when the whole is, and mean what the whole means.
    #[test]
    fn pieces_mean_what_the_whole_means() {
        use crate::spec::fragment::table_to_json;
        use serde_json::Value as Json;
        const LINES: [&str; 12] = [
            "a = 1",
            "a.b = 1",
            "[a]",
            "[a.c]",
            "['a'.d]",
            "[[runners]]",
            "[runners.kubernetes]",
            "[Runners]",
            "x = [\n  1,\n]",
            "runners = []",
            "[[A]]",
            "s = \"\"\"\n[[runners]]\n\"\"\"",
        ];
        let mut texts = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = texts
                .iter()
                .filter(|t| t.matches('\n').count() < 4)
                .flat_map(|t| LINES.iter().map(move |l| format!("{t}{l}\n")))
                .collect();
            texts.extend(longer);
        }
        let mut cut = 0;
        for text in &texts {
            let pieces = split(text);
            if pieces.len() < 2 {
                continue;
            }
            cut += 1;
            let whole = text.parse::<toml_edit::DocumentMut>();
            let parts: Result<Vec<toml_edit::DocumentMut>, _> = pieces
                .iter()
                .map(|p| text[p.range.clone()].parse())
                .collect();
            assert_eq!(whole.is_ok(), parts.is_ok(), "{text}");
            let (Ok(whole), Ok(parts)) = (whole, parts) else {
                continue;
            };
            let mut merged = serde_json::Map::new();
            for part in &parts {
                let Json::Object(map) = table_to_json(part.as_table()) else {
                    unreachable!()
                };
                for (key, value) in map {
                    match (merged.get_mut(&key), value) {
                        (Some(Json::Array(runners)), Json::Array(more)) if key == "runners" => {
                            runners.extend(more)
                        }
                        (None, value) => {
                            merged.insert(key, value);
                        }
                        (Some(_), _) => panic!("{key} in two pieces of {text}"),
                    }
                }
            }
            assert_eq!(
                table_to_json(whole.as_table()),
                Json::Object(merged),
                "{text}"
            );
        }
        assert!(cut > 1000, "{cut} texts were cut");
    }
}
