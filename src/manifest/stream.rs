//! Splits a multi-document YAML stream into documents without parsing YAML.
//!
//! Invariant: concatenating `bom` and every document's `text` gives back the input byte for byte,
//! so documents that are not patched are emitted exactly as they came.
//!
//! A document starts at a line that begins with `---` followed by end of line, a space or a TAB
//! (YAML forbids such a line inside content at column 0, so this is exact, not a heuristic).
//! Everything before the first marker is a document too (Helm 4 input has no leading `---`).
//! A `...` end marker stays in the document it closes.

/// A stream split into documents.
#[derive(Debug)]
pub struct Stream<'a> {
    /// A UTF-8 byte-order mark at the very start, kept verbatim.
    pub bom: &'a str,
    pub docs: Vec<Doc<'a>>,
}

/// One document: its full text split into three consecutive parts.
#[derive(Debug, Clone, Copy)]
pub struct Doc<'a> {
    /// The `---` line and the comment/blank lines that follow it (e.g. Helm's `# Source:`).
    pub head: &'a str,
    /// The YAML content, from the first content line to the last one.
    pub body: &'a str,
    /// Blank lines, comment lines and `...` markers after the content.
    pub tail: &'a str,
    /// `body` and the lines of spaces that directly follow it (the start of `tail`): the text a
    /// YAML reader reads the document's value from. Those lines are part of the value of a
    /// keep-chomped block scalar (`|+`) that ends the document, so a document is parsed and
    /// edited as this text, never as `body` alone.
    pub yaml: &'a str,
    /// 1-based position in the stream.
    pub index: usize,
    /// 1-based line of the stream where `body` starts.
    pub body_line: usize,
    /// 1-based line of the stream where `head` starts.
    pub line: usize,
    /// 0-based byte offset of the stream where `head` starts.
    pub offset: usize,
}

impl<'a> Doc<'a> {
    /// Length of the document's text in bytes (head, body and tail).
    pub fn text_len(&self) -> usize {
        self.head.len() + self.body.len() + self.tail.len()
    }

    /// What follows `yaml`: the comment lines, `...` markers and anything after them of `tail`.
    pub fn after_yaml(&self) -> &'a str {
        &self.tail[self.yaml.len() - self.body.len()..]
    }

    /// True when the document holds no YAML node (only a marker, comments or blank lines).
    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    /// True when the document's lines end with CR LF.
    pub fn uses_crlf(&self) -> bool {
        let text = if self.body.is_empty() {
            self.head
        } else {
            self.body
        };
        memchr::memchr(b'\n', text.as_bytes())
            .is_some_and(|i| i > 0 && text.as_bytes()[i - 1] == b'\r')
    }

    /// The `# Source: …` path from Helm 3 text, if the head carries one.
    pub fn source_comment(&self) -> Option<&str> {
        self.head.lines().find_map(|l| {
            l.trim_start()
                .strip_prefix("# Source:")
                .map(|s| s.trim().trim_end_matches('\r'))
        })
    }
}

/// Splits `input` into documents. Never fails: any text is some sequence of documents.
pub fn split(input: &str) -> Stream<'_> {
    let (bom, docs) = documents(input.as_bytes());
    Stream {
        bom,
        docs: docs
            .map(|d| d.expect("a str cut at line starts is UTF-8"))
            .collect(),
    }
}

/// A byte that is not UTF-8, and the document that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8 {
    /// 1-based position of the document in the stream.
    pub index: usize,
    /// 1-based line of the stream that holds the byte.
    pub line: usize,
    /// 0-based offset of the byte in the stream.
    pub offset: usize,
}

/// The byte-order mark of `input` (or "") and its documents, one at a time, each checked to be
/// UTF-8 (the first that is not ends the iteration with an error).
///
/// Lazy on purpose: the UTF-8 check, the line count and the caller's own inspection of each
/// document (the locator's substring prefilter) all run while the document is still in cache, so
/// a 100 MB stream is read from memory once instead of once per pass.
pub fn documents(input: &[u8]) -> (&'static str, Documents<'_>) {
    let (bom, text) = strip_bom(input);
    (bom, Documents::new(text, bom.len()))
}

/// Splits a UTF-8 byte-order mark (kept verbatim in the output) off the start of `input`.
pub fn strip_bom(input: &[u8]) -> (&'static str, &[u8]) {
    const BOM: &str = "\u{feff}";
    match input.strip_prefix(BOM.as_bytes()) {
        Some(rest) => (BOM, rest),
        None => ("", input),
    }
}

/// Cuts `text` (after the BOM) into at most `parts` runs of whole documents of about equal size,
/// so that each run can be split on its own: every run but the first starts at a marker line.
pub fn chunks(text: &[u8], parts: usize) -> Vec<std::ops::Range<usize>> {
    let mut bounds = vec![0];
    for i in 1..parts.max(1) {
        let target = (text.len() / parts * i).max(bounds[bounds.len() - 1] + 1);
        if target >= text.len() {
            break;
        }
        let next = memchr::memmem::find_iter(&text[target - 1..], b"\n---")
            .map(|nl| target + nl)
            .find(|&s| is_doc_start(&text[s..]));
        match next {
            Some(start) => bounds.push(start),
            None => break,
        }
    }
    bounds.push(text.len());
    bounds
        .windows(2)
        .map(|w| w[0]..w[1])
        .filter(|r| !r.is_empty())
        .collect()
}

/// Iterator over the documents of a stream (see [`documents`]).
pub struct Documents<'a> {
    text: &'a [u8],
    markers: memchr::memmem::FindIter<'a, 'static>,
    /// Offset of `text` in the stream (the BOM's length).
    base: usize,
    /// Where the next document starts; past the end when done.
    start: usize,
    index: usize,
    line: usize,
}

impl<'a> Documents<'a> {
    /// The documents of `text`, a run of whole documents that starts at offset `base` of the
    /// stream. Indexes and lines count from 1 within the run.
    pub fn new(text: &'a [u8], base: usize) -> Self {
        Documents {
            text,
            // Searching for "\n---" skips the ~99 % of lines that cannot start a document at
            // SIMD speed; the run's first line starts its first document (offset 0).
            markers: memchr::memmem::find_iter(text, b"\n---"),
            base,
            start: 0,
            index: 0,
            line: 1,
        }
    }

    /// Line breaks in the documents returned so far.
    pub fn newlines(&self) -> usize {
        self.line - 1
    }
}

impl<'a> Iterator for Documents<'a> {
    type Item = Result<Doc<'a>, NotUtf8>;

    fn next(&mut self) -> Option<Self::Item> {
        // An empty stream (or one that is only a BOM) has no documents at all.
        if self.start >= self.text.len() {
            return None;
        }
        let bytes = self.text;
        let end = self
            .markers
            .by_ref()
            .map(|nl| nl + 1)
            .find(|&s| is_doc_start(&bytes[s..]))
            .unwrap_or(bytes.len());
        let raw = &bytes[self.start..end];
        self.index += 1;
        // simdutf8 checks in one SIMD pass what std's check does a word at a time; std then only
        // locates the first bad byte of a document already known to hold one.
        let checked = match simdutf8::basic::from_utf8(raw) {
            Ok(slice) => Ok(slice),
            Err(_) => std::str::from_utf8(raw),
        };
        let slice = match checked {
            Ok(slice) => slice,
            Err(e) => {
                let valid = &raw[..e.valid_up_to()];
                let error = NotUtf8 {
                    index: self.index,
                    line: self.line + bytecount::count(valid, b'\n'),
                    offset: self.base + self.start + valid.len(),
                };
                self.start = bytes.len();
                return Some(Err(error));
            }
        };
        let doc = carve(slice, self.index, self.line, self.base + self.start);
        // bytecount sums SIMD compare results a vector at a time; memchr's count stops at each hit.
        self.line += bytecount::count(raw, b'\n');
        self.start = end;
        Some(Ok(doc))
    }
}

/// Concatenates the stream back into text.
pub fn join(stream: &Stream<'_>) -> String {
    let mut out = String::with_capacity(stream.docs.iter().map(Doc::text_len).sum::<usize>() + 3);
    out.push_str(stream.bom);
    for d in &stream.docs {
        out.push_str(d.head);
        out.push_str(d.body);
        out.push_str(d.tail);
    }
    out
}

fn is_doc_start(line: &[u8]) -> bool {
    line.starts_with(b"---") && matches!(line.get(3), None | Some(b'\n' | b'\r' | b' ' | b'\t'))
}

fn is_doc_end(line: &str) -> bool {
    let b = line.as_bytes();
    b.starts_with(b"...") && matches!(b.get(3), None | Some(b'\n' | b'\r' | b' ' | b'\t'))
}

/// True for lines that carry no YAML node: blank, whitespace-only or a comment.
fn is_trivia(line: &str) -> bool {
    // Byte tests: this runs on the first and last lines of every document of the stream.
    let bytes = line.as_bytes();
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    matches!(&bytes[start..], [] | [b'#', ..] | b"\n" | b"\r\n" | b"\r")
}

/// Splits one document's text into head, body and tail. Only the leading and trailing trivia
/// lines are visited, so a large document costs no more than its line count from `split`.
fn carve(slice: &str, index: usize, first_line: usize, offset: usize) -> Doc<'_> {
    let bytes = slice.as_bytes();
    let mut head_end = 0usize;
    let mut head_lines = 0usize;
    while head_end < slice.len() {
        let line_end =
            memchr::memchr(b'\n', &bytes[head_end..]).map_or(slice.len(), |i| head_end + i + 1);
        let line = &slice[head_end..line_end];
        let is_marker = head_end == 0 && is_doc_start(line.as_bytes());
        // A marker followed by content on the same line (`--- |`, `--- {…}`) is content.
        let trivia = if is_marker {
            is_trivia(&line[3..])
        } else {
            is_trivia(line)
        };
        if !trivia {
            break;
        }
        head_end = line_end;
        head_lines += 1;
    }
    let mut tail_start = slice.len();
    while tail_start > head_end {
        // The line that ends at `tail_start` (its terminator included).
        let search_end = if bytes[tail_start - 1] == b'\n' {
            tail_start - 1
        } else {
            tail_start
        };
        let line_start = memchr::memrchr(b'\n', &bytes[head_end..search_end])
            .map_or(head_end, |i| head_end + i + 1);
        let line = &slice[line_start..tail_start];
        if is_trivia(line) || is_doc_end(line) {
            tail_start = line_start;
        } else {
            break;
        }
    }
    // Lines of spaces after the content (TABs are left out: a TAB-only line is a comment line
    // to every reader, never part of a block scalar).
    let mut yaml_end = tail_start;
    while yaml_end < slice.len() {
        let line_end =
            memchr::memchr(b'\n', &bytes[yaml_end..]).map_or(slice.len(), |i| yaml_end + i + 1);
        let line = &slice[yaml_end..line_end];
        if !line
            .trim_end_matches(['\n', '\r'])
            .bytes()
            .all(|b| b == b' ')
        {
            break;
        }
        yaml_end = line_end;
    }
    Doc {
        head: &slice[..head_end],
        body: &slice[head_end..tail_start],
        tail: &slice[tail_start..],
        yaml: &slice[head_end..yaml_end],
        index,
        line: first_line,
        body_line: first_line + head_lines,
        offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn roundtrip(input: &str) -> Stream<'_> {
        let s = split(input);
        assert_eq!(join(&s), input);
        s
    }

    #[test]
    fn joins_back_every_shape() {
        for input in [
            "",
            "\u{feff}",
            "---\n",
            "a: 1\n",
            "---\n# Source: x\na: 1\n---\nb: 2\n",
            "a: 1\n---\nb: 2",
            "--- |\n  text\n---\nb: 2\n...\n",
            "---\r\n# c\r\na: 1\r\n---\r\nb: 2\r\n",
            "\u{feff}---\na: 1\n",
            "----\n---x\n--- # c\na: 1\n",
        ] {
            roundtrip(input);
        }
    }

    #[test]
    fn carves_head_body_tail() {
        let s = roundtrip("---\n# Source: a.yaml\nkind: A\nx: 1\n\n  \n---\nkind: B\n...\n");
        assert_eq!(s.docs.len(), 2);
        assert_eq!(s.docs[0].head, "---\n# Source: a.yaml\n");
        assert_eq!(s.docs[0].body, "kind: A\nx: 1\n");
        assert_eq!(s.docs[0].tail, "\n  \n");
        assert_eq!(s.docs[0].yaml, "kind: A\nx: 1\n\n  \n");
        assert_eq!(s.docs[0].body_line, 3);
        assert_eq!(s.docs[0].source_comment(), Some("a.yaml"));
        assert_eq!(s.docs[1].body, "kind: B\n");
        assert_eq!(s.docs[1].tail, "...\n");
        assert_eq!(s.docs[1].yaml, "kind: B\n");
        assert_eq!(s.docs[1].line, 7);
    }

    #[test]
    fn yaml_text_takes_the_lines_of_spaces_up_to_a_comment() {
        let s = roundtrip("a: |+\n  x\n\n   \n# c\n\n---\nb: 1\n\t\n");
        assert_eq!(s.docs[0].yaml, "a: |+\n  x\n\n   \n");
        assert_eq!(s.docs[0].after_yaml(), "# c\n\n");
        assert_eq!(s.docs[1].yaml, "b: 1\n");
        assert_eq!(s.docs[1].after_yaml(), "\t\n");
    }

    #[test]
    fn marker_with_content_is_body() {
        let s = roundtrip("--- |\n  text\n");
        assert_eq!(s.docs[0].head, "");
        assert_eq!(s.docs[0].body, "--- |\n  text\n");
    }

    #[test]
    fn not_markers() {
        let s = roundtrip("a: |\n  ---\n----\nb: ---x\n");
        assert_eq!(s.docs.len(), 1);
    }

    #[test]
    fn comment_only_and_empty_documents() {
        let s = roundtrip("---\n# only a comment\n---\n---\na: 1\n");
        assert_eq!(s.docs.len(), 3);
        assert!(s.docs[0].is_empty());
        assert!(s.docs[1].is_empty());
        assert!(!s.docs[2].is_empty());
    }

    #[test]
    fn chunks_cut_only_at_document_starts() {
        let text = "a: 1\n---\nb: 2\n--- # c\nc: 3\n---\n---x: not a marker\nd: 4\n";
        let whole: Vec<String> = split(text)
            .docs
            .iter()
            .map(|d| format!("{}{}{}", d.head, d.body, d.tail))
            .collect();
        for parts in 1..8 {
            let ranges = chunks(text.as_bytes(), parts);
            assert_eq!(ranges.first().map(|r| r.start), Some(0));
            assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
            let pieces: Vec<String> = ranges
                .iter()
                .flat_map(|r| Documents::new(&text.as_bytes()[r.clone()], r.start))
                .map(|d| d.unwrap())
                .inspect(|d| {
                    assert_eq!(
                        &text[d.offset..d.offset + d.text_len()],
                        format!("{}{}{}", d.head, d.body, d.tail)
                    )
                })
                .map(|d| format!("{}{}{}", d.head, d.body, d.tail))
                .collect();
            assert_eq!(pieces, whole, "{parts} parts");
        }
    }

    #[test]
    fn detects_crlf() {
        let s = roundtrip("---\r\na: 1\r\n");
        assert!(s.docs[0].uses_crlf());
    }
}
