//! `pull_policy` / `allowed_pull_policies` under `[runners.kubernetes]`: replaced as a whole, in
//! the existing key whatever its case, and checked together (runner-config.md §6: a
//! `pull_policy` outside `allowed_pull_policies` fails every job that does not set its own).

use toml_edit::Value;

use super::indent::Indent;
use super::node::Node;
use super::{TomlFailure, TomlPatch, string_array};
use crate::release::repeats::Repeats;

pub(super) fn set(
    k8s: &mut Node<'_>,
    patch: &TomlPatch,
    indent: &Indent,
    path: &str,
    warnings: &mut Repeats<String>,
) -> Result<(), TomlFailure> {
    for (field, wanted) in [
        ("pull_policy", &patch.pull_policy),
        ("allowed_pull_policies", &patch.allowed_pull_policies),
    ] {
        if let Some(policies) = wanted
            && k8s.value(field).is_none_or(|v| policy_list(v) != *policies)
        {
            k8s.set_value(field, Value::Array(string_array(policies)), indent);
        }
    }
    let configured = k8s.value("pull_policy").map(policy_list);
    let allowed = k8s.value("allowed_pull_policies").map(policy_list);
    match (configured, allowed) {
        (Some(configured), Some(allowed)) => {
            if let Some(p) = configured
                .iter()
                .find(|p| !p.is_empty() && !allowed.contains(p))
            {
                let key = k8s
                    .find("allowed_pull_policies", false)
                    .unwrap_or_else(|| "allowed_pull_policies".into());
                return Err(TomlFailure {
                    line: None,
                    path: Some(format!("{path}.{key}")),
                    message: format!(
                        "pull policy {p:?} is not among allowed_pull_policies {allowed:?}, so every job without its own pull_policy would fail; set allowedPullPolicies in the spec"
                    ),
                });
            }
        }
        (None, Some(_)) if !patch.pull_policy_from_env => {
            let warning = format!(
                "{path}: allowed_pull_policies is set but pull_policy is not; jobs without their own pull_policy will fail (gitlab-org/gitlab#479766)"
            );
            let text = warning.clone();
            warnings.push(warning, &text);
        }
        _ => {}
    }
    Ok(())
}

fn policy_list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.value().clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
