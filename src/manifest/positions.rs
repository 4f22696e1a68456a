//! Maps value paths (`spec.hostAliases[0].ip`) of a small YAML file to line and column, so that
//! spec problems found after parsing still point into the user's file.
//!
//! Uses the event parser that serde-saphyr is built on (granit-parser, re-exported), so no second
//! YAML implementation is compiled.

use std::collections::HashMap;

use serde_saphyr::granit_parser::{Event, Parser};

/// Positions of every mapping key and sequence item, by rendered path.
#[derive(Debug, Default)]
pub struct Positions {
    by_path: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// The 1-based line and column of the key (or sequence item) at `path`, or of its closest
    /// ancestor that has one.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(pos) = self.by_path.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Mapping { key: Option<Segment> },
    Sequence { next: usize },
}

/// Collects positions from the first document of `text`. A text that fails to parse yields what
/// was collected before the error (the parse error itself is reported elsewhere).
pub fn collect(text: &str) -> Positions {
    let mut positions = Positions::default();
    let mut path: Vec<Segment> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let pos = (span.start.line(), span.start.col() + 1);
        let is_node = matches!(
            event,
            Event::Scalar(..)
                | Event::MappingStart(..)
                | Event::SequenceStart(..)
                | Event::Alias(..)
        );
        if is_node {
            // Where does this node sit in its parent?
            match stack.last_mut() {
                Some(Frame::Mapping { key }) if key.is_none() => {
                    let name = match &event {
                        Event::Scalar(s, ..) => s.to_string(),
                        _ => String::from("?"),
                    };
                    path.push(Segment::Key(name.clone()));
                    positions.by_path.entry(render_path(&path)).or_insert(pos);
                    path.pop();
                    *key = Some(Segment::Key(name));
                    if !matches!(event, Event::Scalar(..)) {
                        // A complex key: skip its content by treating it as an opaque value.
                        stack.push(Frame::Mapping {
                            key: Some(Segment::Key("?".into())),
                        });
                    }
                    continue;
                }
                Some(Frame::Mapping { key }) => {
                    path.push(key.take().expect("value follows key"));
                }
                Some(Frame::Sequence { next }) => {
                    path.push(Segment::Index(*next));
                    positions.by_path.entry(render_path(&path)).or_insert(pos);
                    *next += 1;
                }
                None => {}
            }
            match event {
                Event::MappingStart(..) => stack.push(Frame::Mapping { key: None }),
                Event::SequenceStart(..) => stack.push(Frame::Sequence { next: 0 }),
                _ => {
                    if !stack.is_empty() {
                        path.pop();
                    }
                }
            }
        } else if matches!(event, Event::MappingEnd | Event::SequenceEnd) {
            stack.pop();
            if !stack.is_empty() {
                path.pop();
            }
        } else if matches!(event, Event::DocumentEnd) {
            break;
        }
    }
    positions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let p = collect(
            "spec:\n  hostAliases:\n  - ip: 1.2.3.4\n    hostnames: [a, b]\n  pullPolicy: x\n",
        );
        assert_eq!(p.find("spec"), Some((1, 1)));
        assert_eq!(p.find("spec.hostAliases[0]"), Some((3, 5)));
        assert_eq!(p.find("spec.hostAliases[0].ip"), Some((3, 5)));
        assert_eq!(p.find("spec.hostAliases[0].hostnames[1]"), Some((4, 20)));
        assert_eq!(p.find("spec.pullPolicy"), Some((5, 3)));
        assert_eq!(p.find("spec.pullPolicy.deeper"), Some((5, 3)));
    }
}

/// Renders a path the way every message of runner-patch does: `spec.hostAliases[0].ip`,
/// with keys that are not plain identifiers quoted: `items["ca.crt"]`.
pub fn render_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
            Segment::Key(k) => {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                } else {
                    out.push_str(&format!("[{k:?}]"));
                }
            }
        }
    }
    out
}

/// One step of a path into a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}
