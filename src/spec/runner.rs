//! What GitLab Runner does with a configuration template, as data: its key list (the TOML schema),
//! the env vars `register --template-config` prefers over template values, and the sections and
//! keys it throws away (runner-config.md §3, §12).
//!
//! Knowledge only, no YAML and no editing: the spec's `runnerToml` is checked with it when the
//! spec is compiled, and each release's Deployment and chart TOML are checked with it when the
//! release is patched ([`crate::release::register`]).

use std::sync::OnceLock;

use serde_json::Value as Json;

use crate::spec::{go_case, schema};

/// The runner's TOML keys and types (derived from gitlab-runner `common/config.go`, 19.4, with
/// `[runners.cache]` and `[runners.referees]` from v19.3.0), without the descriptions:
/// `schema/runner-template.toml-schema.json` minified and cut into one line per definition and per
/// property ([`schema::LazyDefs`]), which a unit test keeps in step. Parsing the full 80 KB file
/// would cost more than patching an umbrella stream.
const RUNNER_SCHEMA: &str = include_str!("../../schema/runner-template.defs");

/// The runner's TOML schema, embedded from `schema/runner-template.defs`.
pub fn schema() -> &'static schema::LazyDefs {
    static SCHEMA: OnceLock<schema::LazyDefs> = OnceLock::new();
    SCHEMA.get_or_init(|| schema::LazyDefs::new(RUNNER_SCHEMA))
}

/// Drops `description` keywords and formatting from the runner schema and writes it in the
/// line format of [`schema::LazyDefs`] (`schema/runner-template.defs`).
pub fn minify_schema(full: &str) -> String {
    let value: Json = serde_json::from_str(full).expect("schema is JSON");
    schema::LazyDefs::write_without_descriptions(&value)
}

/// The executor the gitlab-runner chart registers (`RUNNER_EXECUTOR`), the only one these rules
/// are written for.
pub const KUBERNETES_EXECUTOR: &str = "kubernetes";

/// `[[runners]]` sections `register` sets to nil when the executor is `kubernetes`, so that
/// whatever a template puts there never reaches `config.toml`.
pub const DISCARDED_SECTIONS: [&str; 7] = [
    "docker",
    "ssh",
    "machine",
    "parallels",
    "virtualbox",
    "custom",
    "referees",
];

/// `[[runners]]` keys of a template that `register` never uses, and what it does instead.
pub const IGNORED_KEYS: [(&str, &str); 4] = [
    (
        "name",
        "names the runner itself (the pod's hostname, or the chart's runners.name)",
    ),
    (
        "url",
        "takes the URL from CI_SERVER_URL (the chart's gitlabUrl)",
    ),
    ("executor", "takes the executor from RUNNER_EXECUTOR"),
    (
        "token",
        "clears the template's token (the chart passes the token from its Secret)",
    ),
];

/// How the runner reads an env var's value into its field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvKind {
    String,
    Int,
    Bool,
    Duration,
    /// A list: a set env var replaces the template's list wholesale.
    List,
    /// A map: entries are unioned with the template's, the env var winning on a shared key.
    Map,
}

/// One env var `register` reads for a `[[runners]]` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvBinding {
    /// Dotted TOML path under `[[runners]]`, in the runner's spelling (`kubernetes.pull_policy`).
    pub key: &'static str,
    pub env: &'static str,
    pub kind: EnvKind,
}

/// `schema/runner-env.tsv`: generated from the runner's struct tags (see its header).
const ENV_TABLE: &str = include_str!("../../schema/runner-env.tsv");

/// Every env var `register` reads for a `[[runners]]` key outside the executor sections it discards.
pub fn env_bindings() -> &'static [EnvBinding] {
    static TABLE: OnceLock<Vec<EnvBinding>> = OnceLock::new();
    TABLE.get_or_init(|| {
        ENV_TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|line| {
                let mut cols = line.split('\t');
                let (Some(key), Some(env), Some(kind)) = (cols.next(), cols.next(), cols.next())
                else {
                    panic!("schema/runner-env.tsv: bad line {line:?}")
                };
                let kind = match kind {
                    "string" => EnvKind::String,
                    "int" => EnvKind::Int,
                    "bool" => EnvKind::Bool,
                    "duration" => EnvKind::Duration,
                    "list" => EnvKind::List,
                    "map" => EnvKind::Map,
                    other => panic!("schema/runner-env.tsv: unknown kind {other:?}"),
                };
                EnvBinding { key, env, kind }
            })
            .collect()
    })
}

/// The env var `register` prefers over the template's `key` (a dotted path under `[[runners]]`,
/// matched case-insensitively like the runner's TOML decoder does).
pub fn env_binding(key: &str) -> Option<&'static EnvBinding> {
    env_bindings()
        .iter()
        .find(|b| go_case::equal_fold(b.key, key))
}

/// What `register` with the kubernetes executor throws away from one `[[runners]]` table of a
/// template: the key as written and why, one per section or key. Keys are matched
/// case-insensitively, as the runner's decoder does.
pub fn discarded(runner: &toml_edit::Table) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, item) in runner.iter() {
        let lower = go_case::fold(key);
        if let Some(section) = DISCARDED_SECTIONS.iter().find(|s| **s == lower) {
            if item.is_table_like() {
                out.push((
                    key.to_owned(),
                    format!(
                        "register discards the [runners.{section}] section with the {KUBERNETES_EXECUTOR} executor; nothing in it reaches the runner"
                    ),
                ));
            }
        } else if let Some((_, why)) = IGNORED_KEYS.iter().find(|(k, _)| *k == lower) {
            out.push((key.to_owned(), format!("ignored by register, which {why}")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minified_schema_is_current() {
        let want = minify_schema(include_str!(
            "../../schema/runner-template.toml-schema.json"
        ));
        if std::env::var_os("RUNNER_PATCH_BLESS").is_some() {
            std::fs::write(
                concat!(env!("CARGO_MANIFEST_DIR"), "/schema/runner-template.defs"),
                &want,
            )
            .unwrap();
            return;
        }
        assert!(
            RUNNER_SCHEMA == want,
            "schema/runner-template.defs is stale: RUNNER_PATCH_BLESS=1 cargo test --lib"
        );
    }

    #[test]
    fn env_table_has_the_vars_the_chart_sets() {
        let env = |k: &str| env_binding(k).map(|b| (b.env, b.kind));
        assert_eq!(
            env("kubernetes.pull_policy"),
            Some(("KUBERNETES_PULL_POLICY", EnvKind::List))
        );
        assert_eq!(
            env("kubernetes.allowed_pull_policies"),
            Some(("KUBERNETES_ALLOWED_PULL_POLICIES", EnvKind::List))
        );
        assert_eq!(
            env("Kubernetes.Privileged"),
            Some(("KUBERNETES_PRIVILEGED", EnvKind::Bool))
        );
        assert_eq!(
            env("tls-ca-file"),
            Some(("CI_SERVER_TLS_CA_FILE", EnvKind::String))
        );
        assert_eq!(
            env("kubernetes.namespace"),
            Some(("KUBERNETES_NAMESPACE", EnvKind::String))
        );
        assert_eq!(
            env("cache.s3.BucketName"),
            Some(("CACHE_S3_BUCKET_NAME", EnvKind::String))
        );
        assert_eq!(
            env("\u{212A}ubernetes.Privileged"),
            Some(("KUBERNETES_PRIVILEGED", EnvKind::Bool))
        );
        assert_eq!(
            env("cache.\u{17F}3.BucketName"),
            Some(("CACHE_S3_BUCKET_NAME", EnvKind::String))
        );
        assert_eq!(env("kubernetes.host_aliases"), None);
        assert!(env_bindings().iter().all(|b| !b.key.starts_with("docker.")));
    }

    #[test]
    fn names_what_register_discards() {
        let doc: toml_edit::DocumentMut = "url = \"https://x\"\nName = \"n\"\n[Docker]\nimage = \"a\"\n[kubernetes]\nimage = \"b\"\n[\"referee\u{17F}\".metrics]\nqueries = []\n"
            .parse()
            .unwrap();
        let found: Vec<String> = discarded(doc.as_table())
            .into_iter()
            .map(|(k, m)| format!("runners[0].{k}: {m}"))
            .collect();
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found[0].starts_with("runners[0].url: ignored by register, which takes the URL"),
            "{found:#?}"
        );
        assert!(
            found[1].starts_with("runners[0].Name: ignored"),
            "{found:#?}"
        );
        assert!(found[2].contains("[runners.docker] section"), "{found:#?}");
        assert!(
            found[3].contains("[runners.referees] section"),
            "{found:#?}"
        );
    }
}
