//! Turns `spec.certificates` into what one release needs: ConfigMaps to generate (for PEM given as
//! files or inline), volumes for job pods (TOML), and the sources of the manager pod's certs
//! directory (a projected volume, merged with the chart's `certsSecretName` when present).
//!
//! Generated names are deterministic DNS labels (the runner uses a volume's name as the ConfigMap
//! name, so no dots), derived from the release's fullname, the purpose and the host.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::spec::{CertPurpose, Certificate, ConfigMapVolume, KeyRef};

/// Label on every ConfigMap runner-patch generates (so a later run recognises and updates it).
pub const GENERATED_LABEL: &str = "runner-patch.dev/generated";

/// The runner's certs directory in the chart's pod: `$HOME/.gitlab-runner/certs` as non-root.
pub const CERTS_DIR: &str = "/home/gitlab-runner/.gitlab-runner/certs";
/// The certs directory when the runner runs as uid 0 (`/etc/gitlab-runner`).
pub const ROOT_CERTS_DIR: &str = "/etc/gitlab-runner/certs";

/// Where the release lives.
#[derive(Debug, Clone)]
pub struct ReleaseInfo<'a> {
    /// The Deployment's name (the chart's fullname).
    pub fullname: &'a str,
    pub namespace: Option<&'a str>,
    /// Namespace of job pods (TOML `namespace`), when it differs from the runner's.
    pub job_namespace: Option<&'a str>,
    /// Labels copied onto generated objects (`app`, `release`).
    pub labels: serde_json::Map<String, Value>,
    /// The runner's certs directory.
    pub certs_dir: &'a str,
}

/// What a release needs for its certificates.
#[derive(Debug, Default)]
pub struct Plan {
    /// Complete ConfigMap objects to emit.
    pub generated: Vec<Value>,
    /// TOML `[[runners.kubernetes.volumes.config_map]]` / `.secret` entries for job pods.
    pub job_config_maps: Vec<ConfigMapVolume>,
    pub job_secrets: Vec<ConfigMapVolume>,
    /// Projected-volume sources for the manager's certs directory.
    pub manager_sources: Vec<Value>,
    /// `tls-ca-file` for `[[runners]]`, when a GitLab certificate is mounted.
    pub tls_ca_file: Option<String>,
}

/// Two certificates whose generated ConfigMaps would get one name (`reg.example.com` and
/// `reg-example.com` both become `…-reg-example-com`): one would silently replace the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameClash {
    /// Indexes in `spec.certificates`.
    pub first: usize,
    pub second: usize,
    pub name: String,
}

/// Plans `certificates` for one release.
pub fn plan(certificates: &[Certificate], release: &ReleaseInfo<'_>) -> Result<Plan, NameClash> {
    let mut plan = Plan::default();
    // Generated name → the certificate that got it.
    let mut names: Vec<(String, usize)> = Vec::new();
    for (index, cert) in certificates.iter().enumerate() {
        let file_name = match cert.purpose {
            CertPurpose::Gitlab => format!("{}.crt", cert.hostname()),
            CertPurpose::Registry => "ca.crt".to_owned(),
            CertPurpose::Ca => cert
                .mount_path
                .as_deref()
                .and_then(|p| p.trim_end_matches('/').rsplit('/').next())
                .filter(|n| !n.is_empty())
                .unwrap_or("ca.crt")
                .to_owned(),
        };
        // Where the PEM comes from: a ConfigMap we generate, or one the user manages.
        let namespace = match cert.purpose {
            CertPurpose::Gitlab => release.namespace,
            _ => release.job_namespace.or(release.namespace),
        };
        let (source_kind, source) = match (&cert.config_map, &cert.secret, cert.pem_text()) {
            (Some(r), _, _) => ("configMap", r.clone()),
            (_, Some(r), _) => ("secret", r.clone()),
            (_, _, Some(pem)) => {
                let name = object_name(release.fullname, cert.purpose.as_str(), &cert.host);
                if let Some(&(_, first)) = names.iter().find(|(n, _)| *n == name) {
                    return Err(NameClash {
                        first,
                        second: index,
                        name,
                    });
                }
                names.push((name.clone(), index));
                plan.generated.push(configmap(
                    &name,
                    namespace,
                    &release.labels,
                    &file_name,
                    pem,
                ));
                (
                    "configMap",
                    KeyRef {
                        name,
                        key: file_name.clone(),
                    },
                )
            }
            _ => continue, // validation guarantees a source
        };
        match cert.purpose {
            CertPurpose::Gitlab => {
                let items = json!([{ "key": source.key, "path": file_name }]);
                plan.manager_sources
                    .push(json!({ source_kind: { "name": source.name, "items": items } }));
                plan.tls_ca_file = Some(format!(
                    "{}/{file_name}",
                    release.certs_dir.trim_end_matches('/')
                ));
            }
            CertPurpose::Registry | CertPurpose::Ca => {
                let mount_path = cert
                    .mount_path
                    .clone()
                    .unwrap_or_else(|| format!("/etc/docker/certs.d/{}/ca.crt", cert.host));
                let volume = ConfigMapVolume {
                    name: source.name.clone(),
                    mount_path,
                    sub_path: Some(file_name.clone()),
                    read_only: Some(true),
                    items: Some(
                        [(source.key.clone(), file_name.clone())]
                            .into_iter()
                            .collect(),
                    ),
                };
                if source_kind == "secret" {
                    plan.job_secrets.push(volume);
                } else {
                    plan.job_config_maps.push(volume);
                }
            }
        }
    }
    Ok(plan)
}

/// A DNS label (≤ 63) from `fullname-purpose-host`; long names keep a hash of the whole.
pub fn object_name(fullname: &str, purpose: &str, host: &str) -> String {
    let raw = format!("{fullname}-{purpose}-{host}").to_ascii_lowercase();
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let name = name.trim_matches('-').to_owned();
    if name.len() <= 63 {
        return name;
    }
    let hash: String = Sha256::digest(raw.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}-{hash}", name[..54].trim_end_matches('-'))
}

fn configmap(
    name: &str,
    namespace: Option<&str>,
    labels: &serde_json::Map<String, Value>,
    key: &str,
    pem: &str,
) -> Value {
    let mut labels = labels.clone();
    labels.insert(GENERATED_LABEL.into(), json!("true"));
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    metadata.insert("labels".into(), Value::Object(labels));
    let mut pem = pem.replace("\r\n", "\n");
    if !pem.ends_with('\n') {
        pem.push('\n');
    }
    json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": { key: pem } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(
            object_name(
                "gitlab-runner",
                "registry",
                "registry.test.example.com:5000"
            ),
            "gitlab-runner-registry-registry-test-example-com-5000"
        );
        let long = object_name(
            "my-gitlab-gitlab-runner",
            "registry",
            "a-very-long-registry-name.internal.corp.example.com",
        );
        assert!(
            long.len() <= 63 && crate::spec::validate::dns_label(&long).is_ok(),
            "{long}"
        );
        assert_eq!(
            long,
            object_name(
                "my-gitlab-gitlab-runner",
                "registry",
                "a-very-long-registry-name.internal.corp.example.com"
            )
        );
    }
}
