//! Edits the runner manager Deployment's pod template: `hostAliases`, extra `volumes` and
//! `volumeMounts` on the runner container, and the `checksum/configmap` annotation.
//!
//! Edits are computed as RFC 6902 operations (json-patch) against the parsed document, so every
//! change is an explicit add/replace at a known path, and applying the same spec to its own output
//! yields no operations at all (idempotence by construction). The result is the value the
//! Deployment must read as; [`crate::manifest::edit`] then writes it into the document's own
//! text (the Deployment is edited in place, never re-emitted).

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{Volume, VolumeMount};
use serde_json::{Value, json};

use crate::spec::validate::normalize_ip;

/// The annotation the chart uses to roll the pods when the ConfigMap changes.
pub const CHECKSUM_ANNOTATION: &str = "checksum/configmap";

/// What to change in the manager pod.
#[derive(Debug, Default)]
pub struct PodPatch<'a> {
    pub host_aliases: Vec<(String, Vec<String>)>,
    pub volumes: &'a [Volume],
    pub volume_mounts: &'a [VolumeMount],
    /// New value for `checksum/configmap`, when the ConfigMap changed.
    pub checksum: Option<String>,
    /// Certificates for the runner's certs directory: `(directory, projected-volume sources)`.
    pub certs: Option<(&'a str, &'a [Value])>,
    /// Changes to the runner container's `env` (so that the patch wins over an env var that
    /// `register` would prefer to the TOML), applied in order.
    pub env: Vec<EnvEdit>,
}

/// One change to the runner container's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvEdit {
    /// Give every entry named `name` this literal `value` (a `valueFrom` is dropped), or append
    /// `{name, value}` when there is none.
    Set { name: String, value: String },
    /// Remove every entry named `name`.
    Drop { name: String },
}

/// Name of the projected volume runner-patch adds for the certs directory.
pub const CERTS_VOLUME: &str = "runner-patch-certs";

/// A field of the Deployment that conflicts with the patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldFailure {
    pub field: String,
    pub message: String,
}

/// Applies `patch` to `deployment`, whose runner container is `containers[container]`, in place.
/// Returns whether anything changed (on an error the document is left as it was).
///
/// In place because a Deployment is a few thousand nodes: copying it to patch the copy cost as
/// much as the edit itself. Every operation is computed against what is there and only emitted when
/// it changes something, so "any operation" means "changed" (debug builds check it).
pub fn apply(
    deployment: &mut Value,
    container: usize,
    patch: &PodPatch<'_>,
) -> Result<bool, FieldFailure> {
    let mut ops = Vec::new();
    let pod = deployment
        .pointer("/spec/template/spec")
        .unwrap_or(&Value::Null);
    host_alias_ops(pod, &patch.host_aliases, &mut ops)?;
    volume_ops(pod, patch.volumes, &mut ops)?;
    mount_ops(pod, container, patch.volume_mounts, &mut ops)?;
    if let Some((dir, sources)) = patch.certs
        && !sources.is_empty()
    {
        certs_ops(pod, container, dir, sources, &mut ops)?;
    }
    env_ops(pod, container, &patch.env, &mut ops)?;
    if let Some(sum) = &patch.checksum {
        checksum_ops(deployment, sum, &mut ops);
    }
    if ops.is_empty() {
        return Ok(false);
    }
    #[cfg(debug_assertions)]
    let before = deployment.clone();
    // json-patch applies a patch atomically: a failed operation undoes the ones before it.
    json_patch::patch(deployment, &ops).map_err(|e| FieldFailure {
        field: pointer_to_field(&e.path.to_string()),
        message: format!("cannot apply the patch: {}", e.kind),
    })?;
    #[cfg(debug_assertions)]
    assert!(
        *deployment != before,
        "operations that change nothing: {ops:?}"
    );
    Ok(true)
}

fn pod_ptr(tail: &[&str]) -> PointerBuf {
    PointerBuf::from_tokens(
        ["spec", "template", "spec"]
            .iter()
            .chain(tail.iter())
            .copied(),
    )
}

fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

fn list<'v>(pod: &'v Value, key: &str) -> Result<&'v [Value], FieldFailure> {
    match pod.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(FieldFailure {
            field: format!("spec.template.spec.{key}"),
            message: "expected a list".into(),
        }),
    }
}

fn host_alias_ops(
    pod: &Value,
    aliases: &[(String, Vec<String>)],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), FieldFailure> {
    if aliases.is_empty() {
        return Ok(());
    }
    let existing = list(pod, "hostAliases")?;
    // Work on a copy so that several spec entries for one IP merge into one element.
    let mut merged: Vec<Value> = existing.to_vec();
    for (ip, hostnames) in aliases {
        let ip_norm = normalize_ip(ip);
        for (i, entry) in merged.iter().enumerate() {
            let other = entry
                .get("ip")
                .and_then(Value::as_str)
                .map(normalize_ip)
                .unwrap_or_default();
            if other == ip_norm {
                continue;
            }
            let names = entry
                .get("hostnames")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if let Some(h) = hostnames
                .iter()
                .find(|h| names.iter().any(|n| n.as_str() == Some(h.as_str())))
            {
                return Err(FieldFailure {
                    field: format!("spec.template.spec.hostAliases[{i}]"),
                    message: format!(
                        "hostname {h:?} is already mapped to {other}; the patch maps it to {ip}"
                    ),
                });
            }
        }
        match merged.iter_mut().find(|e| {
            e.get("ip")
                .and_then(Value::as_str)
                .map(normalize_ip)
                .as_deref()
                == Some(ip_norm.as_str())
        }) {
            Some(entry) => {
                let names = entry
                    .as_object_mut()
                    .expect("host alias is a mapping")
                    .entry("hostnames")
                    .or_insert_with(|| json!([]));
                if let Value::Array(names) = names {
                    for h in hostnames {
                        if !names.iter().any(|n| n.as_str() == Some(h.as_str())) {
                            names.push(Value::String(h.clone()));
                        }
                    }
                }
            }
            None => merged.push(json!({"ip": ip, "hostnames": hostnames})),
        }
    }
    if pod.get("hostAliases").is_none_or(Value::is_null) {
        ops.push(add(pod_ptr(&["hostAliases"]), Value::Array(merged)));
        return Ok(());
    }
    for (i, entry) in merged.iter().enumerate() {
        match existing.get(i) {
            Some(old) if old == entry => {}
            Some(_) => ops.push(PatchOperation::Replace(ReplaceOperation {
                path: pod_ptr(&["hostAliases", &i.to_string()]),
                value: entry.clone(),
            })),
            None => ops.push(add(pod_ptr(&["hostAliases", "-"]), entry.clone())),
        }
    }
    Ok(())
}

fn volume_ops(
    pod: &Value,
    volumes: &[Volume],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), FieldFailure> {
    if volumes.is_empty() {
        return Ok(());
    }
    let existing = list(pod, "volumes")?;
    let mut to_add = Vec::new();
    for v in volumes {
        let wanted = serde_json::to_value(v).expect("Volume serializes");
        match existing
            .iter()
            .position(|e| e.get("name").and_then(Value::as_str) == Some(v.name.as_str()))
        {
            Some(i) if semantically_equal(&existing[i], &wanted) => {}
            Some(i) => {
                return Err(FieldFailure {
                    field: format!("spec.template.spec.volumes[{i}]"),
                    message: format!(
                        "volume {:?} already exists with another source; rename the volume in spec.manager.volumes",
                        v.name
                    ),
                });
            }
            None => to_add.push(wanted),
        }
    }
    append(pod, "volumes", &["volumes"], to_add, ops);
    Ok(())
}

fn mount_ops(
    pod: &Value,
    container: usize,
    mounts: &[VolumeMount],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), FieldFailure> {
    if mounts.is_empty() {
        return Ok(());
    }
    let c = pod
        .pointer(&format!("/containers/{container}"))
        .unwrap_or(&Value::Null);
    let field = format!("spec.template.spec.containers[{container}].volumeMounts");
    let existing = list(c, "volumeMounts").map_err(|mut e| {
        e.field = field.clone();
        e
    })?;
    let mut to_add = Vec::new();
    for m in mounts {
        let wanted = serde_json::to_value(m).expect("VolumeMount serializes");
        // `/certs` and `/certs/` are the same directory: compare without the trailing slash.
        let path = m.mount_path.trim_end_matches('/');
        let same_path = existing.iter().position(|e| {
            e.get("mountPath")
                .and_then(Value::as_str)
                .map(|p| p.trim_end_matches('/'))
                == Some(path)
        });
        match same_path {
            Some(i) if semantically_equal(&existing[i], &wanted) => {}
            Some(i) => {
                let other = existing[i]
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                return Err(FieldFailure {
                    field: format!("{field}[{i}]"),
                    message: format!(
                        "mount path {:?} is already used by volume {other:?}",
                        m.mount_path
                    ),
                });
            }
            None => to_add.push(wanted),
        }
    }
    let container_key = container.to_string();
    append(
        c,
        "volumeMounts",
        &["containers", &container_key, "volumeMounts"],
        to_add,
        ops,
    );
    Ok(())
}

/// Mounts the certificate sources at the runner's certs directory. When the chart already mounts
/// a volume there (`certsSecretName` → `custom-certs`), that volume becomes a projected volume
/// holding both, because two mounts on one directory would shadow each other and a file mounted
/// into a read-only Secret volume cannot be created.
fn certs_ops(
    pod: &Value,
    container: usize,
    dir: &str,
    sources: &[Value],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), FieldFailure> {
    let c = pod
        .pointer(&format!("/containers/{container}"))
        .unwrap_or(&Value::Null);
    let mounts = list(c, "volumeMounts")?;
    let dir_trimmed = dir.trim_end_matches('/');
    let existing = mounts.iter().find(|m| {
        m.get("mountPath")
            .and_then(Value::as_str)
            .map(|p| p.trim_end_matches('/'))
            == Some(dir_trimmed)
    });
    let volumes = list(pod, "volumes")?;
    let Some(mount) = existing else {
        let volume = json!({"name": CERTS_VOLUME, "projected": {"sources": sources}});
        match volumes
            .iter()
            .position(|v| v.get("name").and_then(Value::as_str) == Some(CERTS_VOLUME))
        {
            Some(i) if volumes[i] == volume => {}
            Some(i) => ops.push(PatchOperation::Replace(ReplaceOperation {
                path: pod_ptr(&["volumes", &i.to_string()]),
                value: volume,
            })),
            None => append(pod, "volumes", &["volumes"], vec![volume], ops),
        }
        let mount = json!({"name": CERTS_VOLUME, "mountPath": dir, "readOnly": true});
        let container_key = container.to_string();
        append(
            c,
            "volumeMounts",
            &["containers", &container_key, "volumeMounts"],
            vec![mount],
            ops,
        );
        return Ok(());
    };
    let name = mount
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(i) = volumes
        .iter()
        .position(|v| v.get("name").and_then(Value::as_str) == Some(name))
    else {
        return Err(FieldFailure {
            field: "spec.template.spec.volumes".into(),
            message: format!("volume {name:?} mounted at {dir} is not defined"),
        });
    };
    let volume = &volumes[i];
    // The sources the directory already has, as projections.
    let mut merged: Vec<Value> = if let Some(secret) = volume.get("secret") {
        let mut projection = serde_json::Map::new();
        projection.insert(
            "name".into(),
            secret.get("secretName").cloned().unwrap_or(Value::Null),
        );
        for key in ["items", "optional"] {
            if let Some(v) = secret.get(key) {
                projection.insert(key.into(), v.clone());
            }
        }
        vec![json!({ "secret": projection })]
    } else if let Some(cm) = volume.get("configMap") {
        let mut projection = cm.clone();
        if let Some(o) = projection.as_object_mut() {
            o.remove("defaultMode");
        }
        vec![json!({ "configMap": projection })]
    } else if let Some(projected) = volume
        .pointer("/projected/sources")
        .and_then(Value::as_array)
    {
        projected.clone()
    } else {
        return Err(FieldFailure {
            field: format!("spec.template.spec.volumes[{i}]"),
            message: format!(
                "volume {name:?} is mounted at the certs directory {dir}; only a secret, configMap or projected volume can be combined with the certificates"
            ),
        });
    };
    for source in sources {
        // Same kind and object name: ours replaces it; otherwise it is added.
        let same = |s: &Value| {
            ["configMap", "secret"].iter().any(|k| {
                s.get(k).is_some()
                    && s.get(k).and_then(|x| x.get("name"))
                        == source.get(k).and_then(|x| x.get("name"))
            })
        };
        match merged.iter().position(same) {
            Some(j) => merged[j] = source.clone(),
            None => merged.push(source.clone()),
        }
    }
    let mut projected = json!({ "sources": merged });
    let default_mode = volume
        .get("secret")
        .or_else(|| volume.get("configMap"))
        .and_then(|v| v.get("defaultMode"));
    if let Some(mode) = default_mode.or_else(|| volume.pointer("/projected/defaultMode")) {
        projected["defaultMode"] = mode.clone();
    }
    let new_volume = json!({ "name": name, "projected": projected });
    if !semantically_equal(volume, &new_volume) {
        ops.push(PatchOperation::Replace(ReplaceOperation {
            path: pod_ptr(&["volumes", &i.to_string()]),
            value: new_volume,
        }));
    }
    Ok(())
}

/// The runner container's `env` after `edits`, as one replacement of the list (the in-place
/// editor turns it into the few lines that change).
fn env_ops(
    pod: &Value,
    container: usize,
    edits: &[EnvEdit],
    ops: &mut Vec<PatchOperation>,
) -> Result<(), FieldFailure> {
    if edits.is_empty() {
        return Ok(());
    }
    let c = pod
        .pointer(&format!("/containers/{container}"))
        .unwrap_or(&Value::Null);
    let existing = list(c, "env").map_err(|mut e| {
        e.field = format!("spec.template.spec.containers[{container}].env");
        e
    })?;
    check_env_references(c, container, existing, edits)?;
    let mut env: Vec<Value> = existing.to_vec();
    let named = |e: &Value, name: &str| e.get("name").and_then(Value::as_str) == Some(name);
    for edit in edits {
        match edit {
            EnvEdit::Set { name, value } => {
                let mut found = false;
                for entry in env.iter_mut().filter(|e| named(e, name)) {
                    found = true;
                    if let Some(m) = entry.as_object_mut() {
                        m.remove("valueFrom");
                        m.insert("value".into(), Value::String(value.clone()));
                    }
                }
                if !found {
                    env.push(json!({"name": name, "value": value}));
                }
            }
            EnvEdit::Drop { name } => env.retain(|e| !named(e, name)),
        }
    }
    if env.as_slice() == existing {
        return Ok(());
    }
    let container_key = container.to_string();
    let path = pod_ptr(&["containers", &container_key, "env"]);
    ops.push(if c.get("env").is_none_or(Value::is_null) {
        add(path, Value::Array(env))
    } else {
        PatchOperation::Replace(ReplaceOperation {
            path,
            value: Value::Array(env),
        })
    });
    Ok(())
}

/// Kubernetes expands `$(X)` in an env entry's value (from the entries before it and `envFrom`)
/// and in the container's `command` and `args` (from its whole environment): removing or
/// changing env var X would silently change what those say, so such an edit is refused, naming
/// the entry that refers to X.
fn check_env_references(
    c: &Value,
    container: usize,
    env: &[Value],
    edits: &[EnvEdit],
) -> Result<(), FieldFailure> {
    let name_of = |e: &Value| e.get("name").and_then(Value::as_str).map(str::to_owned);
    let edited: Vec<&str> = edits
        .iter()
        .map(|e| match e {
            EnvEdit::Set { name, .. } | EnvEdit::Drop { name } => name.as_str(),
        })
        .collect();
    let container_path = format!("spec.template.spec.containers[{container}]");
    let refused = |field: String, what: &str, name: &str| FieldFailure {
        field,
        message: format!(
            "{what} refers to $({name}), which Kubernetes expands from env var {name}; spec.envConflicts: replace would {} env {name} and so change {what} too: remove the reference (or write $$({name}) for the literal text), or remove env {name} yourself",
            match edits
                .iter()
                .find(|e| matches!(e, EnvEdit::Drop { name: n } if n == name))
            {
                Some(_) => "remove",
                None => "change",
            },
        ),
    };
    for (index, entry) in env.iter().enumerate() {
        let Some(value) = entry.get("value").and_then(Value::as_str) else {
            continue;
        };
        let own = name_of(entry);
        for name in &edited {
            // Only a variable defined before this entry is expanded in it; an envFrom value is
            // left as it is by the edit.
            let defined_before = env[..index]
                .iter()
                .any(|e| name_of(e).as_deref() == Some(*name));
            if own.as_deref() != Some(*name) && defined_before && refers_to(value, name) {
                let what = match &own {
                    Some(own) => format!("env {own}"),
                    None => format!("env[{index}]"),
                };
                return Err(refused(
                    format!("{container_path}.env[{index}]"),
                    &what,
                    name,
                ));
            }
        }
    }
    for key in ["command", "args"] {
        let items = c
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for (index, item) in items.iter().enumerate() {
            let Some(text) = item.as_str() else { continue };
            if let Some(name) = edited.iter().find(|name| refers_to(text, name)) {
                return Err(refused(
                    format!("{container_path}.{key}[{index}]"),
                    &format!("{key}[{index}]"),
                    name,
                ));
            }
        }
    }
    Ok(())
}

/// True when Kubernetes' variable expansion of `text` reads `$(name)` (`$$` escapes a `$`, as in
/// `k8s.io/kubernetes/third_party/forked/golang/expansion`).
fn refers_to(text: &str, name: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'$' => i += 2,
            b'(' => match text[i + 2..].find(')') {
                Some(end) => {
                    if &text[i + 2..i + 2 + end] == name {
                        return true;
                    }
                    i += end + 3;
                }
                None => return false,
            },
            _ => i += 1,
        }
    }
    false
}

/// Adds `items` at the end of the list `key` of `parent` (creating it when absent).
fn append(
    parent: &Value,
    key: &str,
    tail: &[&str],
    items: Vec<Value>,
    ops: &mut Vec<PatchOperation>,
) {
    if items.is_empty() {
        return;
    }
    if parent.get(key).is_none_or(Value::is_null) {
        ops.push(add(pod_ptr(tail), Value::Array(items)));
        return;
    }
    let mut path: Vec<&str> = tail.to_vec();
    path.push("-");
    for item in items {
        ops.push(add(pod_ptr(&path), item));
    }
}

fn checksum_ops(deployment: &Value, sum: &str, ops: &mut Vec<PatchOperation>) {
    let meta = deployment.pointer("/spec/template/metadata");
    let annotations = meta.and_then(|m| m.get("annotations"));
    let path = |tail: &[&str]| {
        PointerBuf::from_tokens(
            ["spec", "template", "metadata"]
                .iter()
                .chain(tail.iter())
                .copied(),
        )
    };
    match annotations {
        Some(Value::Object(a)) => {
            if a.get(CHECKSUM_ANNOTATION).and_then(Value::as_str) != Some(sum) {
                ops.push(add(
                    path(&["annotations", CHECKSUM_ANNOTATION]),
                    Value::String(sum.to_owned()),
                ));
            }
        }
        _ if meta.is_some_and(Value::is_object) => {
            ops.push(add(
                path(&["annotations"]),
                json!({ CHECKSUM_ANNOTATION: sum }),
            ));
        }
        _ => ops.push(add(
            path(&[]),
            json!({"annotations": { CHECKSUM_ANNOTATION: sum }}),
        )),
    }
}

/// Equal as Kubernetes would see them: absent and null fields are the same.
fn semantically_equal(a: &Value, b: &Value) -> bool {
    strip_nulls(a) == strip_nulls(b)
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn pointer_to_field(pointer: &str) -> String {
    let mut out = String::new();
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        if token.parse::<usize>().is_ok() || token == "-" {
            out.push_str(&format!("[{token}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&token);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_are_read_as_kubernetes_expands_them() {
        assert!(refers_to("runner-$(X)", "X"));
        assert!(refers_to("$$$(X)", "X"), "an escaped $, then a reference");
        assert!(!refers_to("$$(X)", "X"), "escaped");
        assert!(!refers_to("$(XY) $(X", "X"));
        assert!(!refers_to("$X ${X}", "X"));
        assert!(refers_to("$(Y)$(X)", "X"));
        let drop = vec![EnvEdit::Drop { name: "X".into() }];
        let d = |env: Value, args: Value| json!({"spec": {"template": {"spec": {"containers": [{"name": "r", "env": env, "args": args}]}}}});
        let apply_drop = |mut deployment: Value| {
            let patch = PodPatch {
                env: drop.clone(),
                ..Default::default()
            };
            apply(&mut deployment, 0, &patch)
        };
        let err = apply_drop(d(
            json!([{"name": "X", "value": "a"}, {"name": "N", "value": "r-$(X)"}]),
            json!([]),
        ))
        .unwrap_err();
        assert_eq!(err.field, "spec.template.spec.containers[0].env[1]");
        assert!(
            err.message.starts_with("env N refers to $(X)"),
            "{}",
            err.message
        );
        // Before X is defined, Kubernetes leaves the reference as it is: nothing changes.
        assert!(
            apply_drop(d(
                json!([{"name": "N", "value": "r-$(X)"}, {"name": "X", "value": "a"}, {"name": "E", "value": "$$(X)"}]),
                json!([]),
            ))
            .unwrap()
        );
        let err =
            apply_drop(d(json!([{"name": "X", "value": "a"}]), json!(["--x=$(X)"]))).unwrap_err();
        assert_eq!(err.field, "spec.template.spec.containers[0].args[0]");
    }

    fn deployment() -> Value {
        json!({"spec": {"template": {"metadata": {"annotations": {"checksum/configmap": "old"}}, "spec": {
            "containers": [{"name": "r", "volumeMounts": [{"name": "configmaps", "mountPath": "/configmaps"}]}],
            "volumes": [{"name": "configmaps", "configMap": {"name": "r"}}],
            "hostAliases": [{"hostnames": ["a.example.com"], "ip": "10.0.0.1"}]}}}})
    }

    #[test]
    fn merges_aliases_and_appends_mounts_idempotently() {
        let mounts: Vec<VolumeMount> = serde_json::from_value(
            json!([{"name": "ca", "mountPath": "/etc/ca", "readOnly": true}]),
        )
        .unwrap();
        let volumes: Vec<Volume> =
            serde_json::from_value(json!([{"name": "ca", "configMap": {"name": "ca"}}])).unwrap();
        let patch = PodPatch {
            host_aliases: vec![
                ("10.0.0.1".into(), vec!["b.example.com".into()]),
                ("10.0.0.2".into(), vec!["c.example.com".into()]),
            ],
            volumes: &volumes,
            volume_mounts: &mounts,
            checksum: Some("new".into()),
            certs: None,
            env: Vec::new(),
        };
        let mut out = deployment();
        assert!(apply(&mut out, 0, &patch).unwrap());
        assert_eq!(
            out.pointer("/spec/template/spec/hostAliases/0/hostnames")
                .unwrap(),
            &json!(["a.example.com", "b.example.com"])
        );
        assert_eq!(
            out.pointer("/spec/template/spec/hostAliases/1/ip").unwrap(),
            "10.0.0.2"
        );
        assert_eq!(
            out.pointer("/spec/template/spec/volumes/1/name").unwrap(),
            "ca"
        );
        assert_eq!(
            out.pointer("/spec/template/spec/containers/0/volumeMounts/1/mountPath")
                .unwrap(),
            "/etc/ca"
        );
        assert_eq!(
            out.pointer("/spec/template/metadata/annotations/checksum~1configmap")
                .unwrap(),
            "new"
        );
        let once = out.clone();
        assert!(!apply(&mut out, 0, &patch).unwrap());
        assert_eq!(out, once);
    }

    #[test]
    fn sets_and_drops_env_vars() {
        let mut doc = deployment();
        doc["spec"]["template"]["spec"]["containers"][0]["env"] = json!([
            {"name": "KUBERNETES_PULL_POLICY", "value": "always"},
            {"name": "CI_SERVER_URL", "value": "https://x"},
            {"name": "KUBERNETES_PRIVILEGED", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}
        ]);
        let patch = PodPatch {
            env: vec![
                EnvEdit::Drop {
                    name: "KUBERNETES_PULL_POLICY".into(),
                },
                EnvEdit::Set {
                    name: "KUBERNETES_PRIVILEGED".into(),
                    value: "true".into(),
                },
                EnvEdit::Set {
                    name: "NEW".into(),
                    value: "1".into(),
                },
            ],
            ..Default::default()
        };
        assert!(apply(&mut doc, 0, &patch).unwrap());
        assert_eq!(
            doc["spec"]["template"]["spec"]["containers"][0]["env"],
            json!([
                {"name": "CI_SERVER_URL", "value": "https://x"},
                {"name": "KUBERNETES_PRIVILEGED", "value": "true"},
                {"name": "NEW", "value": "1"}
            ])
        );
        assert!(!apply(&mut doc, 0, &patch).unwrap(), "idempotent");
    }

    #[test]
    fn refuses_mount_path_clash() {
        let mounts: Vec<VolumeMount> =
            serde_json::from_value(json!([{"name": "x", "mountPath": "/configmaps/"}])).unwrap();
        let mut doc = deployment();
        let err = apply(
            &mut doc,
            0,
            &PodPatch {
                volume_mounts: &mounts,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err.field,
            "spec.template.spec.containers[0].volumeMounts[0]"
        );
        assert_eq!(
            doc,
            deployment(),
            "a refused patch leaves the document as it was"
        );
    }
}
