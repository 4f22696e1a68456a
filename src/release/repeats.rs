//! Warnings that repeat for every `[[runners]]` entry, collapsed while they are collected: a TOML
//! with 60,000 entries that each carry the same unknown key gives the first few warnings and one
//! line "…and N more", not 60,000 lines (and their memory).

use std::collections::HashMap;

/// How many warnings of one kind are said in full.
pub(crate) const SHOWN_PER_KIND: usize = 3;

/// How many kinds are told apart; warnings of further kinds are only counted.
const KINDS: usize = 64;

/// Warnings collected in arrival order, at most [`SHOWN_PER_KIND`] of a kind (the warning with
/// its `[[runners]]` index and line numbers left out) and at most [`KINDS`] kinds.
pub(crate) struct Repeats<T> {
    shown: Vec<T>,
    /// Per kind: an example (the first of the kind) and how many were collected.
    kinds: HashMap<String, usize>,
    counts: Vec<(String, usize)>,
    /// Warnings of kinds past the limit.
    others: usize,
}

impl<T> Default for Repeats<T> {
    fn default() -> Self {
        Repeats {
            shown: Vec::new(),
            kinds: HashMap::new(),
            counts: Vec::new(),
            others: 0,
        }
    }
}

impl<T> Repeats<T> {
    /// Adds `warning`, whose text (path and message) is `text`.
    pub(crate) fn push(&mut self, warning: T, text: &str) {
        let kind = kind_of(text);
        let index = match self.kinds.get(&kind) {
            Some(&i) => i,
            None if self.kinds.len() < KINDS => {
                self.counts.push((kind.clone(), 0));
                self.kinds.insert(kind, self.counts.len() - 1);
                self.counts.len() - 1
            }
            None => {
                self.others += 1;
                return;
            }
        };
        self.counts[index].1 += 1;
        if self.counts[index].1 <= SHOWN_PER_KIND {
            self.shown.push(warning);
        }
    }

    /// The warnings said in full, in arrival order, then one line per kind that repeated more
    /// and one for the kinds not told apart, each after `prefix`.
    pub(crate) fn finish(self, show: impl FnMut(T) -> String, prefix: &str) -> Vec<String> {
        let mut out: Vec<String> = self.shown.into_iter().map(show).collect();
        for (kind, n) in self.counts {
            if n > SHOWN_PER_KIND {
                out.push(format!(
                    "{prefix}{kind}: and {} more like the {SHOWN_PER_KIND} above (one per [[runners]] entry)",
                    n - SHOWN_PER_KIND
                ));
            }
        }
        if self.others > 0 {
            out.push(format!(
                "{prefix}and {} more warnings about this TOML, not shown",
                self.others
            ));
        }
        out
    }
}

/// `text` with what differs between entries masked: `runners[7]` → `runners[*]`, `line 12` →
/// `line *`.
fn kind_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, after) = rest.split_at(i);
        out.push_str(before);
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        let masked = before.ends_with("runners[") || before.ends_with("line ");
        out.push_str(if masked { "*" } else { &after[..digits] });
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_of_one_kind_collapse_into_one_line() {
        let mut r = Repeats::default();
        for i in 0..10_000 {
            let text = format!(
                "runners[{i}].cache.Typ (TOML line {}): unknown field",
                3 * i + 2
            );
            r.push(text.clone(), &text);
        }
        r.push(
            "runners[5].name: discarded".to_owned(),
            "runners[5].name: discarded",
        );
        let out = r.finish(|t| format!("cm {t}"), "cm ");
        assert_eq!(
            out,
            [
                "cm runners[0].cache.Typ (TOML line 2): unknown field",
                "cm runners[1].cache.Typ (TOML line 5): unknown field",
                "cm runners[2].cache.Typ (TOML line 8): unknown field",
                "cm runners[5].name: discarded",
                "cm runners[*].cache.Typ (TOML line *): unknown field: and 9997 more like the 3 above (one per [[runners]] entry)",
            ]
        );
    }

    #[test]
    fn kinds_past_the_limit_are_counted() {
        let mut r = Repeats::default();
        for i in 0..(KINDS + 5) {
            let text = format!("runners[0].key_{}x: unknown field", "k".repeat(i));
            r.push(text.clone(), &text);
        }
        let out = r.finish(|t| t, "");
        assert_eq!(out.len(), KINDS + 1);
        assert_eq!(out[KINDS], "and 5 more warnings about this TOML, not shown");
    }
}
