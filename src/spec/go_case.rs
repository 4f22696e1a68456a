//! Key matching as Go does it. gitlab-runner's TOML decoder (BurntSushi/toml: `strings.EqualFold`)
//! and Go's encoding/json (which reads the YAML Argo CD and Helm turn into JSON) match a key to a
//! struct field exactly first and then with Unicode *simple* case folding, so `Pull_Policy`, and
//! also `\u{212A}ubernetes` (Kelvin sign) and `ſecret` (long s), name the fields `pull_policy`,
//! `kubernetes` and `secret`. The spec checks, the register checks and the TOML editor all
//! compare keys with this one function.

/// `key` with every character replaced by one representative of its simple case-folding class,
/// so that `fold(a) == fold(b)` exactly when Go's `strings.EqualFold(a, b)` holds.
pub fn fold(key: &str) -> String {
    key.chars().map(fold_char).collect()
}

/// Go's `strings.EqualFold`: whether `a` and `b` name the same struct field.
pub fn equal_fold(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        // Pure ASCII folds only within ASCII.
        return a.eq_ignore_ascii_case(b);
    }
    a == b || fold(a) == fold(b)
}

/// The representative of `c`'s simple case-folding class (Unicode CaseFolding.txt, status C and
/// S, as Go's `unicode.SimpleFold` walks it): the lower case of its upper case, which puts the
/// Kelvin sign with `k`, `ſ` with `s`, `ς` with `σ` and `ϑ` with `θ`; where a mapping is not one
/// character (`ß` upper-cases to `SS`, `İ` lower-cases to `i̇`) the simple fold keeps the
/// character or takes its one-character lower case. The dotless `ı` folds to `I` only in Turkish,
/// which Go's simple folding leaves out. Checked against Go's `unicode.SimpleFold` for every
/// code point Go 1.19 knows (Unicode 13).
fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{131}' {
        return c;
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase())
        .or_else(|| single(c.to_lowercase()))
        .unwrap_or(c)
}

fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_go_equal_fold() {
        assert!(equal_fold("Pull_Policy", "pull_policy"));
        assert!(equal_fold("TLS-CA-FILE", "tls-ca-file"));
        assert!(!equal_fold("tls_ca_file", "tls-ca-file"));
        // The two non-ASCII characters that fold into ASCII letters.
        assert!(equal_fold("\u{212A}ubernetes", "kubernetes"));
        assert!(equal_fold("\u{212A}UBERNETES", "kubernetes"));
        assert!(equal_fold("\u{17F}ecret", "secret"));
        assert!(equal_fold("\u{17F}ECRET", "Secret"));
        // Go's simple folding, not Rust's lower case: ς ~ σ ~ Σ, ϑ ~ θ, ß ~ ẞ but not "ss".
        assert!(equal_fold("ς", "Σ") && equal_fold("σ", "ς"));
        assert!(equal_fold("ϑ", "Θ"));
        assert!(equal_fold("ẞ", "ß") && !equal_fold("ß", "ss"));
        // Turkish dotted/dotless i fold to nothing else.
        assert!(!equal_fold("ı", "i") && !equal_fold("ı", "I"));
        assert!(!equal_fold("İ", "i") && !equal_fold("İ", "i\u{307}"));
        assert_eq!(fold("Repo\u{17F}itory"), "repository");
        assert_eq!(fold("\u{212A}ey"), "key");
        assert_ne!(fold("repositöry"), "repository");
    }
}
