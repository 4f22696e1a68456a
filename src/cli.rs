//! Command line: clap derive, doc comments are the help text.
//!
//! Flags cover the simple cases so that `--post-renderer-args` alone can carry a patch; a spec file
//! (`--config`) covers everything. Flags and file combine by one rule (README "Flags and the spec
//! file"): a flag for a list adds to the file's list, except for ordered lists (`--pull-policy`, a
//! fallback order) which it replaces; a flag for a single value replaces the file's value.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, SpecProblem};
use crate::spec::{EnvConflicts, HostAlias, OneOrMany, RunnerPatchSpec, Selector};

const AFTER_HELP: &str = "\
Input: the FILE argument, or stdin when it is not a terminal (the same for every subcommand).
Flags and --config combine: --host-alias and --allowed-pull-policy add to the file's lists,
--pull-policy (an ordered fallback list) replaces it, --release/--namespace/--name replace the
selector's values. A summary of what changed goes to stderr on a terminal or with --verbose.

Examples:
  # Patch a rendered stream
  runner-patch --config examples/runner-patch.yaml examples/gitlab-runner-0.92.0.yaml
  helm template gitlab-runner ./chart | runner-patch --config runner-patch.yaml

  # Helm 4 (plugin installed with `helm plugin install .`): the plugin name
  helm upgrade --install gitlab-runner gitlab/gitlab-runner -f values.yaml \\
    --post-renderer runner-patch --post-renderer-args --config=runner-patch.yaml

  # Helm 3: the path of the binary
  helm upgrade --install gitlab-runner gitlab/gitlab-runner -f values.yaml \\
    --post-renderer \"$(command -v runner-patch)\" --post-renderer-args --config=runner-patch.yaml

  # Flags only
  runner-patch --host-alias 172.25.25.32=gitlab.example.com,registry.example.com --pull-policy if-not-present all.yaml

  # kustomize: legacy exec plugin (kubectl kustomize) and KRM function (kustomize build --enable-exec)
  kubectl kustomize --enable-alpha-plugins deploy/kustomize/legacy-plugin
  runner-patch krm resource-list.yaml

Exit status: 0 ok, 1 internal error or output not written, 2 bad command line or spec,
3 bad input or conflict, 4 no gitlab-runner release found, 5 warnings (as errors; check).";

/// Patch GitLab Runner host aliases, CA volumes and pull policy into rendered gitlab-runner
/// manifests. Every other document passes through byte for byte.
#[derive(Debug, Parser)]
#[command(name = "runner-patch", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub patch: PatchArgs,
}

/// Modes other than the default stream filter.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The stream filter, as the Helm 4 plugin invokes it (same options as the default mode).
    #[command(name = "helm-post-render")]
    HelmPostRender(Box<PatchArgs>),
    /// Print the RunnerPatch CustomResourceDefinition (or, with --json, its JSON schema).
    Schema {
        /// Print the JSON schema of a RunnerPatch document instead of the CRD.
        #[arg(long)]
        json: bool,
    },
    /// KRM function: a ResourceList in (functionConfig = RunnerPatch), a ResourceList on stdout.
    Krm {
        /// ResourceList file to read instead of stdin (`-` is stdin).
        #[arg(value_name = "FILE")]
        input: Option<PathBuf>,
    },
    /// Report on the spec's certificates (subject, issuer, SANs, expiry, fingerprint, where they are
    /// mounted) and, given manifests, what a run would change; writes no manifests. Exit 0: all
    /// well, 5: warnings, 2/3/4: errors as for a run.
    Check(Box<PatchArgs>),
    /// Show what a run would change, as a unified diff per document; writes no manifests.
    ///
    /// One diff per changed or generated document, headed by its kind, namespace/name and source
    /// template; a changed runner TOML is shown as TOML lines with TOML line numbers. Same options
    /// and input as a run, errors as for a run (nothing on stdout). An already patched stream
    /// prints nothing. Exit 0; with --exit-code 0 when nothing would change, 1 when something
    /// would.
    #[command(after_help = "Example (a merge request's CI job):\n  \
        helm template gitlab-runner gitlab/gitlab-runner -f values.yaml | runner-patch diff -c runner-patch.yaml --exit-code")]
    Diff(Box<DiffArgs>),
    /// Argo CD Config Management Plugin steps (deploy/argocd/plugin.yaml): check every path the
    /// Application names against the repository root, then run Helm with runner-patch.
    #[command(subcommand)]
    Argocd(ArgocdStep),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Options of `runner-patch diff`: those of a run, and how to show the changes.
#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    #[command(flatten)]
    pub patch: PatchArgs,
    /// Colour the diff: auto (when stdout is a terminal and NO_COLOR is not set), always, never.
    #[arg(long, value_name = "WHEN", default_value_t = clap::ColorChoice::Auto)]
    pub color: clap::ColorChoice,
    /// Exit 1 when something would change and 0 when nothing would (like `git diff --exit-code`).
    #[arg(long)]
    pub exit_code: bool,
    /// Unchanged lines shown around each change.
    #[arg(
        short = 'U',
        long = "unified",
        value_name = "LINES",
        default_value_t = 3
    )]
    pub context: usize,
}

/// The CMP steps (run in the Argo CD sidecar with the app directory as working directory).
#[derive(Debug, Subcommand)]
pub enum ArgocdStep {
    /// `init`: `helm dependency build` when the chart declares dependencies (in Chart.yaml,
    /// requirements.yaml or a lock file): `file://` ones must be inside the repository, remote
    /// ones need their scheme in RUNNER_PATCH_DEPENDENCY_SCHEMES.
    Init,
    /// `generate`: `helm template` of ARGOCD_ENV_CHART with the `PARAM_VALUES_FILES_<n>` values
    /// files and runner-patch (ARGOCD_ENV_RUNNER_PATCH_CONFIG) as post-renderer; every path must
    /// resolve inside the repository, URLs only for schemes in RUNNER_PATCH_VALUES_SCHEMES.
    Generate,
}

/// Options of the stream filter.
#[derive(Debug, Args, Default, Clone)]
pub struct PatchArgs {
    /// RunnerPatch spec file (YAML, `kind: RunnerPatch`).
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        env = "RUNNER_PATCH_CONFIG"
    )]
    pub config: Option<PathBuf>,
    /// Host alias for job pods and the manager pod; repeatable; added to the spec file's.
    #[arg(long = "host-alias", value_name = "IP=HOST[,HOST…]")]
    pub host_alias: Vec<String>,
    /// Job pull policy (always, if-not-present, never); repeatable, in fallback order; replaces the
    /// spec file's list.
    #[arg(long = "pull-policy", value_name = "POLICY", value_delimiter = ',')]
    pub pull_policy: Vec<String>,
    /// Pull policies jobs may request; repeatable; added to the spec file's.
    #[arg(
        long = "allowed-pull-policy",
        value_name = "POLICY",
        value_delimiter = ','
    )]
    pub allowed_pull_policy: Vec<String>,
    /// Only patch the release with this Helm release name (`release` label).
    #[arg(long, value_name = "NAME")]
    pub release: Option<String>,
    /// Only patch releases in this namespace.
    #[arg(long, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Only patch the runner Deployment with this name.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Pass a stream without any gitlab-runner release through instead of failing.
    #[arg(long)]
    pub allow_missing: bool,
    /// When an env var on the runner container would override a value written to the runner TOML
    /// (e.g. KUBERNETES_PULL_POLICY): refuse (exit 3, the default) or replace (remove the env var).
    #[arg(long, value_name = "MODE", value_parser = ["refuse", "replace"])]
    pub env_conflicts: Option<String>,
    /// Treat warnings (certificate expiry or SANs, pull-policy traps) as errors (exit 5).
    #[arg(long)]
    pub warnings_as_errors: bool,
    /// Also write errors and warnings to this file (Helm 4 discards a plugin's stderr).
    #[arg(long, value_name = "FILE", env = "RUNNER_PATCH_ERROR_FILE")]
    pub error_file: Option<PathBuf>,
    /// Say what changed on stderr even when stderr is not a terminal.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Directory that certificate files must stay inside (default: the spec file's directory).
    /// For the operator only: the Argo CD plugin sets it to the repository root. Under kustomize
    /// only the environment variable counts.
    #[arg(long, value_name = "DIR", env = crate::spec::files::FILE_ROOT_ENV)]
    pub file_root: Option<PathBuf>,
    /// Set when invoked as a kustomize legacy exec plugin: the --config file is kustomize's
    /// temporary copy, so certificate files resolve against the working directory.
    #[arg(long, hide = true)]
    pub config_is_copy: bool,
    /// Manifest stream to read (`-` is stdin); without it, stdin when it is not a terminal.
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
}

impl PatchArgs {
    /// True when no option that changes the patch was given on the command line.
    pub fn has_patch_flags(&self) -> bool {
        !self.host_alias.is_empty()
            || !self.pull_policy.is_empty()
            || !self.allowed_pull_policy.is_empty()
    }

    /// Combines the spec file's content (if any) with the flags (not yet checked as a whole).
    pub fn to_spec(&self, from_file: Option<RunnerPatchSpec>) -> Result<RunnerPatchSpec, Error> {
        let mut spec = from_file.unwrap_or_default();
        let mut problems = Vec::new();
        for (i, raw) in self.host_alias.iter().enumerate() {
            match raw.split_once('=') {
                Some((ip, hosts)) if !hosts.is_empty() => spec.host_aliases.push(HostAlias {
                    ip: ip.trim().to_owned(),
                    hostnames: hosts
                        .split(',')
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                        .collect(),
                    apply_to: None,
                }),
                _ => problems.push(SpecProblem {
                    path: format!("--host-alias[{i}]"),
                    position: None,
                    message: format!("{raw:?} is not IP=HOST[,HOST…]"),
                }),
            }
        }
        if !self.pull_policy.is_empty() {
            spec.pull_policy = Some(OneOrMany::Many(self.pull_policy.clone()));
        }
        if !self.allowed_pull_policy.is_empty() {
            let allowed = spec.allowed_pull_policies.get_or_insert_with(Vec::new);
            for p in &self.allowed_pull_policy {
                if !allowed.contains(p) {
                    allowed.push(p.clone());
                }
            }
        }
        if self.release.is_some() || self.namespace.is_some() || self.name.is_some() {
            let sel = spec.selector.get_or_insert_with(Selector::default);
            sel.release = self.release.clone().or(sel.release.take());
            sel.namespace = self.namespace.clone().or(sel.namespace.take());
            sel.name = self.name.clone().or(sel.name.take());
        }
        match self.env_conflicts.as_deref() {
            Some("replace") => spec.env_conflicts = EnvConflicts::Replace,
            Some(_) => spec.env_conflicts = EnvConflicts::Refuse,
            None => {}
        }
        spec.allow_missing |= self.allow_missing;
        spec.warnings_as_errors |= self.warnings_as_errors;
        if !problems.is_empty() {
            return Err(Error::Spec {
                origin: "(command line)".into(),
                problems,
            });
        }
        // Checked with the rest when the spec is compiled (`spec::Draft::compile`).
        Ok(spec)
    }
}

/// The command-line flag that set a spec field, for problems of a spec made from flags only
/// (`spec.hostAliases[0].ip` → `--host-alias[0].ip`); `None` for other fields.
pub fn flag_for(path: &str) -> Option<String> {
    [
        ("spec.hostAliases", "--host-alias"),
        ("spec.pullPolicy", "--pull-policy"),
        ("spec.allowedPullPolicies", "--allowed-pull-policy"),
        ("spec.selector.release", "--release"),
        ("spec.selector.namespace", "--namespace"),
        ("spec.selector.name", "--name"),
    ]
    .into_iter()
    .find_map(|(field, flag)| {
        path.strip_prefix(field)
            .filter(|rest| rest.is_empty() || rest.starts_with(['[', '.']))
            .map(|rest| format!("{flag}{rest}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_combine_with_file() {
        let cli = Cli::parse_from([
            "runner-patch",
            "--host-alias",
            "10.0.0.1=a.example.com,b.example.com",
            "--pull-policy",
            "IfNotPresent",
            "--release",
            "r",
        ]);
        let file = RunnerPatchSpec {
            allow_missing: true,
            ..Default::default()
        };
        let spec = cli.patch.to_spec(Some(file)).unwrap();
        assert_eq!(
            spec.host_aliases[0].hostnames,
            ["a.example.com", "b.example.com"]
        );
        assert_eq!(
            spec.pull_policy,
            Some(OneOrMany::Many(vec!["IfNotPresent".into()]))
        );
        assert_eq!(spec.selector.unwrap().release.as_deref(), Some("r"));
        assert!(spec.allow_missing);
    }

    #[test]
    fn list_flags_add_to_the_file_and_ordered_lists_replace_it() {
        let cli = Cli::parse_from([
            "runner-patch",
            "--host-alias=10.0.0.2=b.example.com",
            "--allowed-pull-policy=if-not-present",
            "--allowed-pull-policy=always",
            "--pull-policy=if-not-present",
        ]);
        let file = RunnerPatchSpec {
            host_aliases: vec![HostAlias {
                ip: "10.0.0.1".into(),
                hostnames: vec!["a.example.com".into()],
                apply_to: None,
            }],
            allowed_pull_policies: Some(vec!["always".into()]),
            pull_policy: Some(OneOrMany::Many(vec!["always".into()])),
            ..Default::default()
        };
        let spec = cli.patch.to_spec(Some(file)).unwrap();
        let ips: Vec<&str> = spec.host_aliases.iter().map(|a| a.ip.as_str()).collect();
        assert_eq!(ips, ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(
            spec.allowed_pull_policies.unwrap(),
            ["always", "if-not-present"]
        );
        assert_eq!(
            spec.pull_policy,
            Some(OneOrMany::Many(vec!["if-not-present".into()]))
        );
    }

    #[test]
    fn rejects_malformed_host_alias() {
        let cli = Cli::parse_from(["runner-patch", "--host-alias", "10.0.0.1"]);
        assert!(matches!(cli.patch.to_spec(None), Err(Error::Spec { .. })));
    }
}
