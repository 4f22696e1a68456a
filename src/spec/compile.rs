//! Parse, don't validate: a checked spec becomes a [`CompiledPatch`], the typed form the pipeline
//! consumes. Every rule is applied here once, and what a rule establishes is kept in the type
//! (pull policies as [`PullPolicy`], the `runnerToml` fragment as a parsed [`Fragment`], host
//! aliases merged per target), so the patch code has no error path for a bad spec.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Volume, VolumeMount};

use crate::error::SpecProblem;
use crate::spec::fragment::Fragment;
use crate::spec::{
    ApplyTo, Certificate, ConfigMapVolume, EnvConflicts, OneOrMany, RunnerPatchSpec, Selector,
    go_case, runner, validate,
};

/// A pull policy in the runner's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PullPolicy {
    Always,
    IfNotPresent,
    Never,
}

impl PullPolicy {
    /// Reads the runner's spelling, or the Kubernetes one (`IfNotPresent` would load and then
    /// fail every job, so it is mapped here rather than written as is).
    pub fn parse(value: &str) -> Option<PullPolicy> {
        match value {
            "always" | "Always" => Some(PullPolicy::Always),
            "if-not-present" | "IfNotPresent" => Some(PullPolicy::IfNotPresent),
            "never" | "Never" => Some(PullPolicy::Never),
            _ => None,
        }
    }

    /// The runner's spelling, as written to the TOML.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Never => "never",
        }
    }
}

/// IP and hostnames of one host alias, entries for the same IP folded together in spec order.
pub type HostAliasEntry = (String, Vec<String>);

/// Everything a run patches, checked and in the form the pipeline uses.
#[derive(Debug, Clone, Default)]
pub struct CompiledPatch {
    pub selector: Option<Selector>,
    pub allow_missing: bool,
    pub warnings_as_errors: bool,
    /// What to do when an env var on the runner container overrides a value the patch writes.
    pub env_conflicts: EnvConflicts,
    /// `[[runners.kubernetes.host_aliases]]` entries.
    pub job_host_aliases: Vec<HostAliasEntry>,
    /// The manager Deployment's `hostAliases`.
    pub manager_host_aliases: Vec<HostAliasEntry>,
    pub pull_policy: Option<Vec<PullPolicy>>,
    pub allowed_pull_policies: Option<Vec<PullPolicy>>,
    pub config_map_volumes: Vec<ConfigMapVolume>,
    /// `runnerToml`, parsed and checked against the runner's keys.
    pub fragment: Option<Fragment>,
    pub manager_volumes: Vec<Volume>,
    pub manager_volume_mounts: Vec<VolumeMount>,
    /// Certificates, with `file` entries already read.
    pub certificates: Vec<Certificate>,
    /// Things the user should know about the spec itself (sections register discards …).
    pub warnings: Vec<String>,
}

impl CompiledPatch {
    /// True when the patch asks for nothing at all (a run would change nothing).
    pub fn is_empty(&self) -> bool {
        self.job_host_aliases.is_empty()
            && self.manager_host_aliases.is_empty()
            && self.pull_policy.is_none()
            && self.allowed_pull_policies.is_none()
            && self.config_map_volumes.is_empty()
            && self.fragment.is_none()
            && self.manager_volumes.is_empty()
            && self.manager_volume_mounts.is_empty()
            && self.certificates.is_empty()
    }
}

/// Checks `spec` and compiles it; `root` prefixes the paths of problems (`spec`).
pub fn compile(spec: RunnerPatchSpec, root: &str) -> Result<CompiledPatch, Vec<SpecProblem>> {
    let mut problems = validate::spec(&spec, root);
    let mut problem = |path: String, message: String| {
        problems.push(SpecProblem {
            path,
            position: None,
            message,
        })
    };
    let pull_policy = spec.pull_policy.as_ref().map(|p| {
        let (list, one) = match p {
            OneOrMany::One(s) => (std::slice::from_ref(s), true),
            OneOrMany::Many(v) => (v.as_slice(), false),
        };
        if list.is_empty() {
            problem(format!("{root}.pullPolicy"), "must not be empty".into());
        }
        let (good, bad) = policies(list, |i| {
            if one {
                format!("{root}.pullPolicy")
            } else {
                format!("{root}.pullPolicy[{i}]")
            }
        });
        bad.into_iter().for_each(|(p, m)| problem(p, m));
        good
    });
    let allowed_pull_policies = spec.allowed_pull_policies.as_ref().map(|list| {
        if list.is_empty() {
            problem(
                format!("{root}.allowedPullPolicies"),
                "must not be empty".into(),
            );
        }
        let (good, bad) = policies(list, |i| format!("{root}.allowedPullPolicies[{i}]"));
        bad.into_iter().for_each(|(p, m)| problem(p, m));
        good
    });
    if let (Some(configured), Some(allowed)) = (&pull_policy, &allowed_pull_policies)
        && !allowed.is_empty()
    {
        let allowed: BTreeSet<_> = allowed.iter().collect();
        for p in configured.iter().filter(|p| !allowed.contains(p)) {
            problem(
                format!("{root}.allowedPullPolicies"),
                format!(
                    "must include the configured pull policy {:?}, or every job without its own pull_policy fails",
                    p.as_str()
                ),
            );
        }
    }
    if let Some(selector) = &spec.selector {
        // An empty value would select nothing (or, read as "unset", everything): refuse it.
        for (key, value) in [
            ("release", &selector.release),
            ("name", &selector.name),
            ("namespace", &selector.namespace),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                problem(format!("{root}.selector.{key}"), "must not be empty".into());
            }
        }
    }
    let mut warnings = Vec::new();
    let fragment = spec
        .runner_toml
        .as_deref()
        .and_then(|text| match Fragment::parse(text) {
            Ok(fragment) => {
                warnings.extend(
                    runner::discarded(fragment.runner())
                        .into_iter()
                        .map(|(key, why)| format!("{root}.runnerToml: runners.{key}: {why}")),
                );
                Some(fragment)
            }
            Err(found) => {
                for message in found {
                    problem(format!("{root}.runnerToml"), message);
                }
                None
            }
        });
    if let Some(fragment) = &fragment {
        // Job-pod volumes of the fragment follow the rules of configMapVolumes.
        for (key, value) in fragment.values() {
            let Some((section, kind)) = key.rsplit_once('.') else {
                continue;
            };
            if !go_case::equal_fold(section, "kubernetes.volumes") {
                continue;
            }
            for (i, entry) in value.as_array().into_iter().flatten().enumerate() {
                let name = entry.as_object().and_then(|o| {
                    o.iter()
                        .find(|(k, _)| go_case::equal_fold(k, "name"))
                        .and_then(|(_, v)| v.as_str())
                });
                if let Some(Err(why)) = name.map(validate::job_volume_name) {
                    problem(
                        format!("{root}.runnerToml"),
                        format!("runners.kubernetes.volumes.{kind}[{i}].name: {why}"),
                    );
                }
            }
        }
        for (spec_field, toml_key, wanted) in [
            ("pullPolicy", "pull_policy", &pull_policy),
            (
                "allowedPullPolicies",
                "allowed_pull_policies",
                &allowed_pull_policies,
            ),
        ] {
            if let Some(message) = fragment_disagrees(fragment, toml_key, wanted.as_deref()) {
                problem(format!("{root}.{spec_field}"), message);
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let manager = spec.manager.unwrap_or_default();
    Ok(CompiledPatch {
        job_host_aliases: aliases_for(&spec.host_aliases, ApplyTo::Jobs),
        manager_host_aliases: aliases_for(&spec.host_aliases, ApplyTo::Manager),
        selector: spec.selector,
        allow_missing: spec.allow_missing,
        warnings_as_errors: spec.warnings_as_errors,
        env_conflicts: spec.env_conflicts,
        pull_policy,
        allowed_pull_policies,
        config_map_volumes: spec.config_map_volumes,
        fragment,
        manager_volumes: manager.volumes,
        manager_volume_mounts: manager.volume_mounts,
        certificates: spec.certificates,
        warnings,
    })
}

/// The policies of `list` in order, each once (`always` and `Always` are one policy, and a flag
/// may repeat what the spec says: the runner would list a duplicate as written), and a problem
/// for every entry that is not one (path from `path_of(index)`).
fn policies(
    list: &[String],
    path_of: impl Fn(usize) -> String,
) -> (Vec<PullPolicy>, Vec<(String, String)>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for (i, p) in list.iter().enumerate() {
        match PullPolicy::parse(p) {
            Some(policy) if good.contains(&policy) => {}
            Some(policy) => good.push(policy),
            None => bad.push((
                path_of(i),
                format!("{p:?} is not a pull policy; use always, if-not-present or never"),
            )),
        }
    }
    (good, bad)
}

/// Why `runnerToml` and the spec field for `[runners.kubernetes] toml_key` cannot both be set:
/// the spec field is written after the fragment is merged, so a different value in the fragment
/// would be silently overridden. The same policies (in the same order) are fine.
fn fragment_disagrees(
    fragment: &Fragment,
    toml_key: &str,
    wanted: Option<&[PullPolicy]>,
) -> Option<String> {
    let wanted = wanted?;
    let key = format!("kubernetes.{toml_key}");
    let (_, value) = fragment.values().iter().find(|(k, _)| *k == key)?;
    let written: Vec<&str> = match value {
        serde_json::Value::String(s) => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    };
    let (read, bad) = policies(
        &written.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        |_| String::new(),
    );
    if bad.is_empty() && read == wanted {
        return None;
    }
    let shown: Vec<&str> = wanted.iter().map(|p| p.as_str()).collect();
    Some(format!(
        "is {shown:?} but runnerToml sets [runners.kubernetes] {toml_key} = {value}; set it in one place (the spec field would silently replace the fragment's value)"
    ))
}

/// Host aliases for one target, entries for the same IP folded together in spec order.
fn aliases_for(aliases: &[crate::spec::HostAlias], target: ApplyTo) -> Vec<HostAliasEntry> {
    let mut out: Vec<HostAliasEntry> = Vec::new();
    for alias in aliases.iter().filter(|a| a.applies_to(target)) {
        let ip = validate::normalize_ip(&alias.ip);
        let pos = match out
            .iter()
            .position(|(i, _)| validate::normalize_ip(i) == ip)
        {
            Some(p) => p,
            None => {
                out.push((alias.ip.clone(), Vec::new()));
                out.len() - 1
            }
        };
        for h in &alias.hostnames {
            if !out[pos].1.contains(h) {
                out[pos].1.push(h.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::HostAlias;

    fn spec() -> RunnerPatchSpec {
        RunnerPatchSpec::default()
    }

    #[test]
    fn policies_become_the_runner_vocabulary() {
        let compiled = compile(
            RunnerPatchSpec {
                pull_policy: Some(OneOrMany::One("IfNotPresent".into())),
                allowed_pull_policies: Some(vec!["if-not-present".into(), "Always".into()]),
                ..spec()
            },
            "spec",
        )
        .unwrap();
        assert_eq!(compiled.pull_policy, Some(vec![PullPolicy::IfNotPresent]));
        assert_eq!(
            compiled.allowed_pull_policies,
            Some(vec![PullPolicy::IfNotPresent, PullPolicy::Always])
        );
    }

    #[test]
    fn every_policy_problem_is_reported() {
        let problems = compile(
            RunnerPatchSpec {
                pull_policy: Some(OneOrMany::Many(vec!["sometimes".into(), "never".into()])),
                allowed_pull_policies: Some(vec!["always".into()]),
                ..spec()
            },
            "spec",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.pullPolicy[0]", "spec.allowedPullPolicies"],
            "{problems:#?}"
        );
        assert!(problems[1].message.contains("\"never\""), "{problems:#?}");
    }

    #[test]
    fn pull_policy_in_the_spec_and_in_runner_toml_must_agree() {
        let with = |pull: &str, allowed: Option<Vec<String>>, toml: &str| {
            compile(
                RunnerPatchSpec {
                    pull_policy: Some(OneOrMany::One(pull.into())),
                    allowed_pull_policies: allowed,
                    runner_toml: Some(toml.into()),
                    ..spec()
                },
                "spec",
            )
        };
        // The same value, in either spelling and form, is fine.
        assert!(
            with(
                "IfNotPresent",
                None,
                "[runners.kubernetes]\npull_policy = \"if-not-present\"\n"
            )
            .is_ok()
        );
        assert!(
            with(
                "always",
                Some(vec!["always".into()]),
                "[runners]\nkubernetes = { pull_policy = [\"always\"], allowed_pull_policies = [\"always\"] }\n"
            )
            .is_ok()
        );
        let problems = with(
            "always",
            Some(vec!["always".into()]),
            "[runners.kubernetes]\npull_policy = \"never\"\nallowed_pull_policies = [\"always\", \"never\"]\n",
        )
        .unwrap_err();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.pullPolicy", "spec.allowedPullPolicies"],
            "{problems:#?}"
        );
        assert!(
            problems[0].message.contains("pull_policy = \"never\""),
            "{problems:#?}"
        );
    }

    #[test]
    fn aliases_merge_per_target() {
        let alias = |ip: &str, hosts: &[&str], to: Option<Vec<ApplyTo>>| HostAlias {
            ip: ip.into(),
            hostnames: hosts.iter().map(|h| h.to_string()).collect(),
            apply_to: to,
        };
        let compiled = compile(
            RunnerPatchSpec {
                host_aliases: vec![
                    alias("fd00::1", &["a.example.com"], None),
                    alias("fd00:0::1", &["b.example.com"], Some(vec![ApplyTo::Jobs])),
                    alias("10.0.0.1", &["c.example.com"], Some(vec![ApplyTo::Manager])),
                ],
                ..spec()
            },
            "spec",
        )
        .unwrap();
        assert_eq!(
            compiled.job_host_aliases,
            [(
                "fd00::1".to_owned(),
                vec!["a.example.com".to_owned(), "b.example.com".to_owned()]
            )]
        );
        assert_eq!(compiled.manager_host_aliases.len(), 2);
    }

    #[test]
    fn fragment_is_parsed_into_the_patch_with_one_problem_per_key() {
        let compiled = compile(
            RunnerPatchSpec {
                runner_toml: Some(
                    "[runners.kubernetes]\nprivileged = true\n[runners.docker]\nimage = \"x\"\n"
                        .into(),
                ),
                ..spec()
            },
            "spec",
        )
        .unwrap();
        assert!(compiled.fragment.is_some());
        assert_eq!(compiled.warnings.len(), 1, "{:?}", compiled.warnings);
        assert!(
            compiled.warnings[0].starts_with("spec.runnerToml: runners.docker: register discards"),
            "{:?}",
            compiled.warnings
        );
        let problems = compile(
            RunnerPatchSpec {
                runner_toml: Some(
                    "[runners.kubernetes]\nprivilegd = true\n[runners.cache]\nTyp = \"s3\"\n"
                        .into(),
                ),
                ..spec()
            },
            "spec",
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().all(|p| p.path == "spec.runnerToml"));
    }

    /// Job-pod volumes in `runnerToml` follow the rules of `configMapVolumes`: a DNS label, not
    /// one of the executor's own volume names.
    #[test]
    fn runner_toml_volume_names_are_checked_like_config_map_volumes() {
        let problems = compile(
            RunnerPatchSpec {
                runner_toml: Some(
                    "[[runners.kubernetes.volumes.config_map]]\nname = \"scripts\"\nmount_path = \"/x\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"Build_Settings\"\nmount_path = \"/y\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"fine\"\nmount_path = \"/z\"\n"
                        .into(),
                ),
                ..spec()
            },
            "spec",
        )
        .unwrap_err();
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(messages.len(), 2, "{messages:#?}");
        assert!(
            messages[0].starts_with(
                "runners.kubernetes.volumes.config_map[0].name: \"scripts\" is reserved"
            )
        );
        assert!(
            messages[1]
                .starts_with("runners.kubernetes.volumes.empty_dir[0].name: \"Build_Settings\"")
        );
    }
}
