//! Typed errors of the library (the binary maps them to exit codes).
//!
//! Every error names *where*: the document (kind/namespace/name, its index in the stream and the
//! Helm source path when known), the field, and for TOML the line inside the TOML value and in the
//! stream. Messages never quote document content, so no Secret data can leak through them.

use std::fmt;

/// Identifies one document of the stream in messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocRef {
    /// 1-based position of the document in the stream.
    pub index: usize,
    /// 1-based line of the stream where the document's text starts.
    pub line: usize,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    /// `# Source:` comment (Helm 3) or `postrenderer.helm.sh/postrender-filename` (Helm 4).
    pub source: Option<String>,
}

impl fmt::Display for DocRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (&self.namespace, self.name.as_str()) {
            (Some(ns), name) => write!(f, " {ns}/{name}")?,
            // An unnamed document (a List): no empty name between two spaces.
            (None, "") => {}
            (None, name) => write!(f, " {name}")?,
        }
        write!(f, " (document {}, line {}", self.index, self.line)?;
        if let Some(src) = &self.source {
            write!(f, ", {src}")?;
        }
        write!(f, ")")
    }
}

/// A position inside a TOML value embedded in a ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TomlPosition {
    /// 1-based line inside the TOML text.
    pub line: usize,
    /// 1-based line in the stream, when the value is a block scalar whose lines map 1:1.
    pub stream_line: Option<usize>,
}

/// One problem found in the spec (all are reported together).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecProblem {
    /// JSON-pointer-like path, e.g. `spec.hostAliases[0].ip`.
    pub path: String,
    /// 1-based line and column in the spec file, when known.
    pub position: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((line, col)) = self.position {
            write!(f, "line {line}, column {col}: ")?;
        }
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec (file or flags) is invalid; every problem found is listed.
    #[error("invalid spec {origin}:{}", format_problems(.problems))]
    Spec {
        origin: String,
        problems: Vec<SpecProblem>,
    },

    /// The input is not what the mode reads (an empty input, or no ResourceList for a KRM
    /// function).
    #[error("{message}")]
    Input { message: String },

    /// A document of the stream could not be read as YAML.
    #[error("document {index} (line {line}){kind}: cannot be parsed as YAML: {message}", kind = .kind.as_ref().map(|k| format!(" {k}")).unwrap_or_default())]
    Yaml {
        index: usize,
        line: usize,
        kind: Option<String>,
        message: String,
    },

    /// The stream holds a byte sequence that is not UTF-8.
    #[error(
        "document {index} (line {line}): invalid UTF-8 at byte {offset} of the stream; Kubernetes manifests are UTF-8"
    )]
    NotUtf8 {
        index: usize,
        line: usize,
        offset: usize,
    },

    /// A field of a target document is missing, has the wrong type, or conflicts with the patch.
    #[error("{doc} {field}: {message}")]
    Field {
        doc: Box<DocRef>,
        field: String,
        message: String,
    },

    /// The TOML inside a runner ConfigMap is invalid or conflicts with the patch.
    #[error("{doc} data[\"{key}\"]{}: {message}", fmt_toml_pos(.position, .toml_path))]
    Toml {
        doc: Box<DocRef>,
        key: String,
        toml_path: Option<String>,
        position: Option<TomlPosition>,
        message: String,
    },

    /// Releases could not be paired (a Deployment without its ConfigMap, two Deployments on one ConfigMap…).
    #[error("{doc}: {message}")]
    Pairing { doc: Box<DocRef>, message: String },

    /// A document runner-patch would read to edit is larger than it accepts (named from its text:
    /// it is refused before it is parsed).
    #[error("{doc}: {message}")]
    TooLarge { doc: Box<DocRef>, message: String },

    /// No gitlab-runner release in a non-empty stream.
    #[error(
        "no gitlab-runner release found in {documents} document(s){selector}; pass --allow-missing (or spec.allowMissing: true) if that is expected"
    )]
    NoTarget { documents: usize, selector: String },

    /// Re-emitting a document would not read back as the intended value (an emitter bug guard).
    #[error(
        "{doc}: internal error: re-emitted YAML does not read back identically ({message}); nothing was written"
    )]
    Fidelity { doc: Box<DocRef>, message: String },
}

impl From<crate::manifest::stream::NotUtf8> for Error {
    fn from(e: crate::manifest::stream::NotUtf8) -> Self {
        Error::NotUtf8 {
            index: e.index,
            line: e.line,
            offset: e.offset,
        }
    }
}

impl Error {
    /// The same error for a document found in a run of the stream that starts after `documents`
    /// documents and `lines` line breaks (the errors a reading thread can meet name the document
    /// by index and line only).
    pub fn shifted(mut self, documents: usize, lines: usize) -> Self {
        if let Error::Yaml { message, .. } = &mut self {
            *message = crate::manifest::yaml::shift_lines(message, lines);
        }
        if let Error::Yaml { index, line, .. } | Error::NotUtf8 { index, line, .. } = &mut self {
            *index += documents;
            *line += lines;
        }
        if let Error::TooLarge { doc, message } = &mut self {
            doc.index += documents;
            doc.line += lines;
            *message = crate::manifest::yaml::shift_lines(message, lines);
        }
        self
    }
}

fn format_problems(problems: &[SpecProblem]) -> String {
    let mut out = String::new();
    for p in problems {
        out.push_str("\n  - ");
        out.push_str(&p.to_string());
    }
    out
}

fn fmt_toml_pos(position: &Option<TomlPosition>, toml_path: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(path) = toml_path {
        out.push(' ');
        out.push_str(path);
    }
    if let Some(pos) = position {
        out.push_str(&format!(" (TOML line {}", pos.line));
        if let Some(sl) = pos.stream_line {
            out.push_str(&format!(", stream line {sl}"));
        }
        out.push(')');
    }
    out
}
