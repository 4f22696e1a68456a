//! The flags of the `/entrypoint register` command in the chart's `register-the-runner` script
//! (chart 0.52 passes `--env`, `--kubernetes-image-pull-secrets`, `--kubernetes-node-selector` …
//! there, chart-anatomy.md §5). A flag beats the template like an env var does
//! (runner-config.md §3), so what the patch writes is checked against them as against the env;
//! only literal flags are read: a script that builds the command some other way (a `$VAR`, a
//! command substitution, an escape) is a warning, since it cannot be read offline.

use crate::spec::runner::{self, EnvBinding, EnvKind};

/// The data key of the chart's register script.
pub const SCRIPT_KEY: &str = "register-the-runner";

/// One flag of the register command: its name without dashes, its value, its script line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    pub value: String,
    /// 1-based line of `script`.
    pub line: usize,
}

/// What the register command line says, as far as it can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterFlags {
    /// No `/entrypoint register` command in the script.
    NoCommand,
    /// The flags that take a value and bind a `[[runners]]` key, in order.
    Read(Vec<Flag>),
    /// The command is there but not literal: why, and its 1-based line.
    Unreadable { line: usize, why: String },
}

/// Flags the chart passes whose name is not the lower-cased env var of their key.
const FLAG_KEYS: [(&str, &str, EnvKind); 6] = [
    ("env", "environment", EnvKind::List),
    (
        "kubernetes-pod-labels",
        "kubernetes.pod_labels",
        EnvKind::Map,
    ),
    (
        "kubernetes-pod-annotations",
        "kubernetes.pod_annotations",
        EnvKind::Map,
    ),
    (
        "kubernetes-node-selector",
        "kubernetes.node_selector",
        EnvKind::Map,
    ),
    (
        "kubernetes-node-tolerations",
        "kubernetes.node_tolerations",
        EnvKind::Map,
    ),
    (
        "kubernetes-pod-security-context-supplemental-groups",
        "kubernetes.pod_security_context.supplemental_groups",
        EnvKind::List,
    ),
];

/// The `[[runners]]` key a value flag sets and how it is read: the chart's flags above, else the
/// key whose env var is the flag's name upper-cased (`kubernetes-image-pull-secrets` →
/// `KUBERNETES_IMAGE_PULL_SECRETS`), as the runner's flag and env tags pair up.
pub fn flag_key(flag: &str) -> Option<(&'static str, EnvKind)> {
    if let Some((_, key, kind)) = FLAG_KEYS.iter().find(|(f, _, _)| *f == flag) {
        return Some((key, *kind));
    }
    let env = flag.to_ascii_uppercase().replace('-', "_");
    runner::env_bindings()
        .iter()
        .find(|b: &&EnvBinding| b.env == env)
        .map(|b| (b.key, b.kind))
}

/// Reads the register command of `script` (see [`RegisterFlags`]).
pub fn read(script: &str) -> RegisterFlags {
    let lines: Vec<&str> = script.lines().collect();
    let mut tokens: Vec<(String, usize)> = Vec::new();
    let mut start = None;
    for (i, line) in lines.iter().enumerate() {
        if start.is_none() {
            // `/entrypoint register`, `"/entrypoint" register`, `/usr/bin/gitlab-runner register`,
            // and the program at the end of a line continued by `register`.
            let program = |w: &str| {
                let w = w.trim_matches(['"', '\'']);
                w.ends_with("/entrypoint") || w == "gitlab-runner" || w.ends_with("/gitlab-runner")
            };
            let mut words: Vec<&str> = line.split_whitespace().collect();
            if words.last() == Some(&"\\")
                && let Some(next) = lines.get(i + 1)
            {
                words.pop();
                words.extend(next.split_whitespace().take(1));
            }
            let is_register = words
                .windows(2)
                .any(|w| program(w[0]) && w[1].trim_matches(['"', '\'']) == "register");
            if !is_register {
                continue;
            }
            start = Some(i);
        }
        let (text, continued) = match line.trim_end().strip_suffix('\\') {
            Some(text) => (text, true),
            None => (*line, false),
        };
        match words(text) {
            Ok((words, ended)) => {
                for word in words {
                    match word {
                        Word::Literal(w) => tokens.push((w, i + 1)),
                        Word::Variable(name) => {
                            if let Err(why) = harmless_variable(&lines, &name) {
                                return RegisterFlags::Unreadable { line: i + 1, why };
                            }
                        }
                    }
                }
                if ended || !continued {
                    break;
                }
            }
            Err(why) => return RegisterFlags::Unreadable { line: i + 1, why },
        }
    }
    if start.is_none() {
        return RegisterFlags::NoCommand;
    }
    let Some(at) = tokens.iter().position(|(w, _)| w == "register") else {
        return RegisterFlags::NoCommand;
    };
    let mut flags = Vec::new();
    let mut rest = tokens[at + 1..].iter();
    while let Some((token, line)) = rest.next() {
        let Some(flag) = token.strip_prefix("--").or_else(|| token.strip_prefix('-')) else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (flag, None),
        };
        let Some((_, kind)) = flag_key(name) else {
            continue;
        };
        let value = match value {
            Some(v) => v,
            // A bool flag (urfave/cli) never takes the next word: `--kubernetes-privileged
            // --env …` sets it to true and leaves `--env` a flag of its own.
            None if kind == EnvKind::Bool => "true".to_owned(),
            None => match rest.next() {
                Some((v, _)) => v.clone(),
                None => {
                    return RegisterFlags::Unreadable {
                        line: *line,
                        why: format!("--{name} has no value"),
                    };
                }
            },
        };
        flags.push(Flag {
            name: name.to_owned(),
            value,
            line: *line,
        });
    }
    RegisterFlags::Read(flags)
}

/// One word of a command line: literal, or a whole unquoted `$NAME` / `${NAME}`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Literal(String),
    Variable(String),
}

/// `Ok` when every value `script` assigns to the variable `name` (chart scripts set
/// `RUN_UNTAGGED=""`, `ACCESS_LEVEL="--access-level=…"`) is literal and passes no flag that binds
/// a `[[runners]]` key; else why the command cannot be read.
fn harmless_variable(lines: &[&str], name: &str) -> Result<(), String> {
    let mut assigned = false;
    for line in lines {
        let t = line.trim_start();
        let t = t.strip_prefix("export ").unwrap_or(t);
        let Some(value) = t.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')) else {
            continue;
        };
        assigned = true;
        let unreadable = || format!("${name} is not a literal in the script");
        let (words, _) = words(value).map_err(|_| unreadable())?;
        for word in words {
            let Word::Literal(text) = word else {
                return Err(unreadable());
            };
            for flag in text.split_whitespace() {
                let bare = flag.trim_start_matches('-');
                let bare = bare.split_once('=').map_or(bare, |(n, _)| n);
                if flag.starts_with('-') && flag_key(bare).is_some() {
                    return Err(format!("${name} may pass {flag}"));
                }
            }
        }
    }
    if assigned {
        Ok(())
    } else {
        Err(format!("${name} is not set in the script"))
    }
}

/// The words of one line of a shell command, quotes removed, and whether the command ends on
/// it (`;`, `&`, `|`, a comment); an error for anything the shell would expand or that runner-
/// patch does not read (`$`, backquotes, escapes, redirections).
fn words(text: &str) -> Result<(Vec<Word>, bool), String> {
    let mut out: Vec<Word> = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                out.extend(word.take().map(Word::Literal));
            }
            '$' if word.is_none() => {
                let mut rest = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '\t' {
                        break;
                    }
                    rest.push(c);
                    chars.next();
                }
                let name = rest
                    .strip_prefix('{')
                    .and_then(|r| r.strip_suffix('}'))
                    .unwrap_or(&rest);
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err("'$' in the command".into());
                }
                out.push(Word::Variable(name.to_owned()));
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a quote is not closed on its line".into()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c @ ('$' | '`' | '\\')) => {
                            return Err(format!("{c:?} inside double quotes"));
                        }
                        Some(c) => w.push(c),
                        None => return Err("a quote is not closed on its line".into()),
                    }
                }
            }
            ';' | '&' | '|' => {
                out.extend(word.take().map(Word::Literal));
                return Ok((out, true));
            }
            '#' if word.is_none() => return Ok((out, true)),
            '$' | '`' | '\\' | '<' | '>' | '(' | ')' | '{' | '}' | '*' | '?' | '[' | '~' => {
                return Err(format!("{c:?} in the command"));
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word.map(Word::Literal));
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_literal_flags_of_the_register_command() {
        let script = "#!/bin/bash\nfor i in $(seq 1 3); do\n  /entrypoint register \\\n    --kubernetes-image-pull-secrets \"regcred\" \\\n    --env 'A=b c' --env=X=1 \\\n    --template-config /configmaps/config.template.toml \\\n    --non-interactive\n  retval=$?\ndone\n";
        let flag = |name: &str, value: &str, line| Flag {
            name: name.into(),
            value: value.into(),
            line,
        };
        assert_eq!(
            read(script),
            RegisterFlags::Read(vec![
                flag("kubernetes-image-pull-secrets", "regcred", 4),
                flag("env", "A=b c", 5),
                flag("env", "X=1", 5),
            ])
        );
        assert_eq!(read("echo hi\n"), RegisterFlags::NoCommand);
        // Other spellings of the program and a continued line before `register`.
        for script in [
            "\"/entrypoint\" register --env A=1\n",
            "/usr/bin/gitlab-runner register --env A=1\n",
            "/entrypoint \\\n  register --env A=1\n",
        ] {
            let RegisterFlags::Read(flags) = read(script) else {
                panic!("{script:?} not read")
            };
            assert_eq!(flags.len(), 1, "{script:?}");
            assert_eq!(
                (flags[0].name.as_str(), flags[0].value.as_str()),
                ("env", "A=1")
            );
        }
        // A bool flag takes no separate value: the next flag is read as a flag.
        assert_eq!(
            read("/entrypoint register --kubernetes-privileged --env A=1\n"),
            RegisterFlags::Read(vec![
                flag("kubernetes-privileged", "true", 1),
                flag("env", "A=1", 1),
            ])
        );
        let unreadable =
            read("/entrypoint register \\\n  --env \"$PROXY\" \\\n  --non-interactive\n");
        assert!(
            matches!(&unreadable, RegisterFlags::Unreadable { line: 2, why } if why.contains("'$'")),
            "{unreadable:?}"
        );
        assert_eq!(
            read("/entrypoint register --non-interactive; echo --env x\n"),
            RegisterFlags::Read(vec![])
        );
        assert_eq!(
            flag_key("kubernetes-pull-policy").map(|k| k.0),
            Some("kubernetes.pull_policy")
        );
        assert_eq!(flag_key("template-config"), None);
        // The chart's own variables, set to literals that pass no such flag, are read through.
        let chart = "RUN_UNTAGGED=\"\"\nACCESS_LEVEL=\"--access-level=ref_protected\"\n/entrypoint register \\\n  ${RUN_UNTAGGED} \\\n  $ACCESS_LEVEL --env A=1 &\n";
        assert_eq!(
            read(chart),
            RegisterFlags::Read(vec![flag("env", "A=1", 5)])
        );
        let env = read("X=\"--env A=1\"\n/entrypoint register ${X}\n");
        assert!(
            matches!(&env, RegisterFlags::Unreadable { why, .. } if why.contains("may pass --env")),
            "{env:?}"
        );
        let unset = read("/entrypoint register ${FROM_ENV}\n");
        assert!(
            matches!(&unset, RegisterFlags::Unreadable { why, .. } if why.contains("not set in the script")),
            "{unset:?}"
        );
    }
}
