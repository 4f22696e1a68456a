//! Rules that Kubernetes and the runner enforce only at job time, checked up front.
//!
//! A bad host alias or volume name in `config.template.toml` loads fine and then fails every job
//! at pod creation; runner-patch refuses it before anything is deployed.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::error::SpecProblem;
use crate::spec::{ApplyTo, CertPurpose, RunnerPatchSpec};

/// Volume names the Kubernetes executor uses for itself.
const RESERVED_VOLUME_NAMES: [&str; 2] = ["scripts", "logs"];

/// `Err` explains why `ip` is not an IPv4/IPv6 address.
pub fn ip(value: &str) -> Result<(), String> {
    value
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| format!("{value:?} is not a valid IPv4 or IPv6 address"))
}

/// DNS-1123 subdomain: lower-case alphanumerics, `-` and `.`, each label starting and ending with
/// an alphanumeric, at most 253 characters.
pub fn dns_subdomain(value: &str) -> Result<(), String> {
    let fail = |why: &str| {
        Err(format!(
            "{value:?} is not a valid hostname (DNS-1123 subdomain): {why}"
        ))
    };
    if value.is_empty() {
        return fail("empty");
    }
    if value.len() > 253 {
        return fail("longer than 253 characters");
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return fail("upper-case letters are not allowed");
    }
    for label in value.split('.') {
        if let Err(why) = label_shape(label) {
            return fail(&why);
        }
    }
    Ok(())
}

/// DNS-1123 label: what Kubernetes requires of volume names (and so of the runner's ConfigMap names).
/// A job-pod volume name: a DNS label the Kubernetes executor does not use for its own volumes.
pub fn job_volume_name(name: &str) -> Result<(), String> {
    dns_label(name)?;
    if RESERVED_VOLUME_NAMES.contains(&name) {
        return Err(format!("{name:?} is reserved by the Kubernetes executor"));
    }
    Ok(())
}

pub fn dns_label(value: &str) -> Result<(), String> {
    let fail = |why: String| {
        Err(format!(
            "{value:?} is not a valid volume name (DNS-1123 label): {why}"
        ))
    };
    if value.len() > 63 {
        return fail("longer than 63 characters".into());
    }
    if value.contains('.') {
        return fail("dots are not allowed".into());
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return fail("upper-case letters are not allowed".into());
    }
    label_shape(value).or_else(fail)
}

fn label_shape(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("empty label".into());
    }
    if label.len() > 63 {
        return Err("a label is longer than 63 characters".into());
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("only a-z, 0-9 and '-' are allowed".into());
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// ConfigMap key: `[-._a-zA-Z0-9]+`, at most 253 characters.
pub fn configmap_key(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 253
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value != "."
        && value != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{value:?} is not a valid ConfigMap key ([-._a-zA-Z0-9]+)"
        ))
    }
}

/// A relative path without `..` elements (items paths, sub_path).
pub fn relative_path(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.starts_with('/') {
        return Err(format!("{value:?} must be a relative path"));
    }
    if value.split('/').any(|part| part == "..") {
        return Err(format!("{value:?} must not contain '..'"));
    }
    Ok(())
}

/// An absolute mount path.
pub fn mount_path(value: &str) -> Result<(), String> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(format!("{value:?} must be an absolute path"))
    }
}

/// The semantic problems of a spec that compiling it does not find by parsing (see
/// [`crate::spec::compile`]); `root` prefixes the paths (`spec`).
pub fn spec(spec: &RunnerPatchSpec, root: &str) -> Vec<SpecProblem> {
    let mut out = Vec::new();
    let mut push = |path: String, r: Result<(), String>| {
        if let Err(message) = r {
            out.push(SpecProblem {
                path,
                position: None,
                message,
            });
        }
    };
    // Host aliases: valid values, and no hostname bound to two addresses in the same pod.
    let mut owner: BTreeMap<(ApplyTo, &str), (&str, usize)> = BTreeMap::new();
    for (i, alias) in spec.host_aliases.iter().enumerate() {
        let base = format!("{root}.hostAliases[{i}]");
        push(format!("{base}.ip"), ip(&alias.ip));
        if alias.hostnames.is_empty() {
            push(
                format!("{base}.hostnames"),
                Err("must list at least one hostname".into()),
            );
        }
        if alias.apply_to.as_ref().is_some_and(Vec::is_empty) {
            push(
                format!("{base}.applyTo"),
                Err("must name `jobs`, `manager` or both (omit it for both)".into()),
            );
        }
        for (j, host) in alias.hostnames.iter().enumerate() {
            push(format!("{base}.hostnames[{j}]"), dns_subdomain(host));
            let clash = [ApplyTo::Jobs, ApplyTo::Manager]
                .into_iter()
                .filter(|t| alias.applies_to(*t))
                .filter_map(|t| owner.insert((t, host), (&alias.ip, i)))
                .find(|(other_ip, _)| normalize_ip(other_ip) != normalize_ip(&alias.ip));
            if let Some((other_ip, other_i)) = clash {
                push(
                    format!("{base}.hostnames[{j}]"),
                    Err(format!(
                        "hostname {host:?} is mapped to {} here and to {other_ip} in hostAliases[{other_i}]",
                        alias.ip
                    )),
                );
            }
        }
    }
    // Job-pod ConfigMap volumes.
    let mut names = BTreeMap::new();
    let mut paths = BTreeMap::new();
    for (i, v) in spec.config_map_volumes.iter().enumerate() {
        let base = format!("{root}.configMapVolumes[{i}]");
        push(format!("{base}.name"), job_volume_name(&v.name));
        if let Some(prev) = names.insert(v.name.as_str(), i) {
            push(
                format!("{base}.name"),
                Err(format!(
                    "{:?} is already used by configMapVolumes[{prev}]",
                    v.name
                )),
            );
        }
        push(format!("{base}.mountPath"), mount_path(&v.mount_path));
        if let Some(prev) = paths.insert(v.mount_path.trim_end_matches('/'), i) {
            push(
                format!("{base}.mountPath"),
                Err(format!(
                    "{:?} is already used by configMapVolumes[{prev}]",
                    v.mount_path
                )),
            );
        }
        if let Some(sub) = &v.sub_path {
            push(format!("{base}.subPath"), relative_path(sub));
        }
        for (key, path) in v.items.iter().flatten() {
            let item = format!("{base}.items[{key:?}]");
            push(item.clone(), configmap_key(key));
            push(item, relative_path(path));
        }
    }
    // Pull policies and runnerToml are parsed, not just checked: see `compile`.
    // Certificates: one source each, names Kubernetes accepts, no duplicates.
    let mut seen = BTreeMap::new();
    for (i, c) in spec.certificates.iter().enumerate() {
        let base = format!("{root}.certificates[{i}]");
        let sources = [
            c.file.is_some(),
            c.pem.is_some(),
            c.config_map.is_some(),
            c.secret.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            push(
                base.clone(),
                Err("give exactly one of `file`, `pem`, `configMap`, `secret`".into()),
            );
        }
        let host_check = match c.host.rsplit_once(':') {
            Some((h, port)) if c.purpose == CertPurpose::Registry => {
                dns_subdomain(h).and_then(|()| {
                    port.parse::<u16>()
                        .map(|_| ())
                        .map_err(|_| format!("{port:?} is not a port"))
                })
            }
            _ => dns_subdomain(&c.host),
        };
        push(format!("{base}.host"), host_check);
        if let Some((prev, _)) = seen.insert((c.purpose, c.host.as_str()), (i, ())) {
            push(
                format!("{base}.host"),
                Err(format!(
                    "{:?} for {} is already in certificates[{prev}]",
                    c.host,
                    c.purpose.as_str()
                )),
            );
        }
        match (&c.mount_path, c.purpose) {
            (None, CertPurpose::Ca) => push(
                format!("{base}.mountPath"),
                Err("is required for a `ca` bundle".into()),
            ),
            (Some(_), CertPurpose::Gitlab) => push(
                format!("{base}.mountPath"),
                Err(
                    "is not used for `gitlab`: the runner reads <config dir>/certs/<host>.crt"
                        .into(),
                ),
            ),
            (Some(p), _) => push(format!("{base}.mountPath"), mount_path(p)),
            _ => {}
        }
        for (field, r) in [("configMap", &c.config_map), ("secret", &c.secret)] {
            if let Some(r) = r {
                push(format!("{base}.{field}.name"), dns_label(&r.name));
                push(format!("{base}.{field}.key"), configmap_key(&r.key));
            }
        }
        if let Some(pem) = &c.pem
            && pem.contains("PRIVATE KEY-----")
        {
            push(
                format!("{base}.pem"),
                Err("contains a private key; private keys never go into a ConfigMap".into()),
            );
        }
    }
    // Manager pod additions.
    if let Some(manager) = &spec.manager {
        let mut names = BTreeMap::new();
        for (i, v) in manager.volumes.iter().enumerate() {
            push(
                format!("{root}.manager.volumes[{i}].name"),
                dns_label(&v.name),
            );
            if let Some(prev) = names.insert(v.name.as_str(), i) {
                push(
                    format!("{root}.manager.volumes[{i}].name"),
                    Err(format!("{:?} is already used by volumes[{prev}]", v.name)),
                );
            }
        }
        let mut paths = BTreeMap::new();
        for (i, m) in manager.volume_mounts.iter().enumerate() {
            push(
                format!("{root}.manager.volumeMounts[{i}].mountPath"),
                mount_path(&m.mount_path),
            );
            if let Some(prev) = paths.insert(m.mount_path.trim_end_matches('/'), i) {
                push(
                    format!("{root}.manager.volumeMounts[{i}].mountPath"),
                    Err(format!(
                        "{:?} is already used by volumeMounts[{prev}]",
                        m.mount_path
                    )),
                );
            }
        }
    }
    out
}

/// Canonical text of an IP so that `::1` and `0:0::1` compare equal; other text is kept.
pub fn normalize_ip(value: &str) -> String {
    value
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .unwrap_or_else(|_| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        assert!(dns_subdomain("registry.test.example.com").is_ok());
        assert!(dns_subdomain("Registry.example.com").is_err());
        assert!(dns_subdomain("a_b.example.com").is_err());
        assert!(dns_subdomain("example.com.").is_err());
        assert!(dns_subdomain("-a.example.com").is_err());
    }

    #[test]
    fn volume_names() {
        assert!(dns_label("registry-certs").is_ok());
        assert!(dns_label("registry.certs").is_err());
        assert!(dns_label(&"a".repeat(64)).is_err());
    }

    #[test]
    fn ips() {
        assert!(ip("172.25.25.32").is_ok());
        assert!(ip("fd00::1").is_ok());
        assert!(ip("172.25.25.300").is_err());
    }
}
