//! The runner's reading of every real chart render in `testdata/golden/*helm*` and of the
//! `toml-*` cases built on them (issue 12, item 5): in each runner ConfigMap's TOML, every value of the input still reads the same after the
//! patch unless the spec set it, and every value the spec set reads as asked.

mod toml_reading;

use std::path::Path;

use runner_patch::manifest::yaml;
use runner_patch::spec::PullPolicy;
use serde_json::{Value as Json, json};

/// The runner TOMLs of a stream, by ConfigMap name.
fn runner_tomls(stream: &str) -> Vec<(String, String)> {
    // A leading newline makes every document, the first included, follow a line break.
    format!("\n{stream}")
        .split("\n---")
        .map(|doc| doc.split_once('\n').map_or("", |(_, rest)| rest))
        .filter_map(|doc| yaml::parse(doc).ok())
        .filter(|v| v["kind"] == "ConfigMap")
        .filter_map(|v| {
            let data = v.get("data")?;
            let text = data.get("config.template.toml").or_else(|| {
                data.get("config.toml")
                    .filter(|t| t.as_str().is_some_and(|t| t.contains("[[runners]]")))
            })?;
            Some((
                v["metadata"]["name"].as_str()?.to_owned(),
                text.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Whether `out` still holds everything `input` holds: same scalars, tables with at least the
/// same keys, arrays of tables with every entry (matched by identity) still there, arrays of
/// strings still holding every element. `replaced` lists fields the spec replaces outright.
fn keeps(out: &Json, input: &Json, path: &str, replaced: &[&str], problems: &mut Vec<String>) {
    let field = path.rsplit('.').next().unwrap_or(path);
    if replaced.contains(&field) {
        return;
    }
    match (out, input) {
        (Json::Object(o), Json::Object(i)) => {
            for (k, v) in i {
                match o.get(k) {
                    Some(ov) => keeps(ov, v, &format!("{path}.{k}"), replaced, problems),
                    None => problems.push(format!("{path}.{k} is gone")),
                }
            }
        }
        (Json::Array(o), Json::Array(i)) if i.iter().all(Json::is_object) => {
            for (n, entry) in i.iter().enumerate() {
                let id = ["name", "ip", "alias"]
                    .into_iter()
                    .find_map(|k| entry.get(k).map(|v| (k, v)));
                let found = o
                    .iter()
                    .find(|e| id.is_some_and(|(k, v)| e.get(k) == Some(v)));
                match found {
                    Some(e) => keeps(e, entry, &format!("{path}[{n}]"), replaced, problems),
                    None if o.get(n).is_some() && id.is_none() => {
                        keeps(&o[n], entry, &format!("{path}[{n}]"), replaced, problems)
                    }
                    None => problems.push(format!("{path}[{n}] is gone")),
                }
            }
        }
        (Json::Array(o), Json::Array(i)) => {
            for v in i {
                if !o.contains(v) {
                    problems.push(format!("{path}: {v} is gone"));
                }
            }
        }
        (o, i) if o == i => {}
        (o, i) => problems.push(format!("{path}: {i} now reads {o}")),
    }
}

fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::String(s) => vec![s.clone()],
        Json::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn check_case(dir: &Path) -> Vec<String> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let spec_doc = yaml::parse(&read("spec.yaml")).unwrap();
    let spec = &spec_doc["spec"];
    let inputs = runner_tomls(&read("input.yaml"));
    let outputs = runner_tomls(&read("expected.yaml"));
    assert!(!inputs.is_empty(), "{}: no runner TOML", dir.display());
    let mut problems = Vec::new();
    let fragment = spec["runnerToml"].as_str().map(|t| {
        let r = toml_reading::read(t).unwrap();
        match &r["runners"] {
            Json::Array(a) => a[0].clone(),
            other => other.clone(),
        }
    });
    for (name, input) in &inputs {
        let output = &outputs
            .iter()
            .find(|(n, _)| n == name)
            .expect("same ConfigMap")
            .1;
        let before = toml_reading::read(input).unwrap();
        let after =
            toml_reading::read(output).unwrap_or_else(|e| panic!("{}: {name}: {e}", dir.display()));
        // Fields the spec replaces as a whole; everything else must still read the same.
        let mut replaced = vec!["pull_policy", "allowed_pull_policies", "tls-ca-file"];
        let mut fragment_values = Vec::new();
        if let Some(f) = &fragment {
            collect_leaves(f, "", &mut fragment_values);
            replaced.extend(
                fragment_values
                    .iter()
                    .map(|(p, _)| p.rsplit('.').next().unwrap()),
            );
        }
        for (i, (b, a)) in toml_reading::runners(&before)
            .iter()
            .zip(toml_reading::runners(&after))
            .enumerate()
        {
            let at = format!("{name} runners[{i}]");
            // A spec volume is the desired state of the volume of that name: its fields are the
            // spec's (checked below), not the input's.
            let mut b = b.clone();
            if let Some(list) = b
                .pointer_mut("/kubernetes/volumes/config_map")
                .and_then(Json::as_array_mut)
            {
                let spec_names: Vec<&Json> = spec["configMapVolumes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| &v["name"])
                    .collect();
                list.retain(|e| !spec_names.contains(&&e["name"]));
            }
            // A runnerToml entry with the name of an input entry replaces it whole.
            if let Some(f) = &fragment {
                drop_entries_replaced_by(&mut b, f);
            }
            keeps(a, &b, &at, &replaced, &mut problems);
            let k8s = &a["kubernetes"];
            if let Some(p) = spec.get("pullPolicy") {
                let want: Vec<&str> = strings(p)
                    .iter()
                    .filter_map(|p| PullPolicy::parse(p).map(PullPolicy::as_str))
                    .collect();
                if strings(&k8s["pull_policy"]) != want {
                    problems.push(format!("{at}: pull_policy reads {}", k8s["pull_policy"]));
                }
            }
            if let Some(p) = spec.get("allowedPullPolicies") {
                let want: Vec<&str> = strings(p)
                    .iter()
                    .filter_map(|p| PullPolicy::parse(p).map(PullPolicy::as_str))
                    .collect();
                if strings(&k8s["allowed_pull_policies"]) != want {
                    problems.push(format!(
                        "{at}: allowed_pull_policies reads {}",
                        k8s["allowed_pull_policies"]
                    ));
                }
            }
            for alias in spec["hostAliases"].as_array().into_iter().flatten() {
                let for_jobs = alias
                    .get("applyTo")
                    .is_none_or(|t| strings(t).iter().any(|t| t == "jobs"));
                if !for_jobs {
                    continue;
                }
                let entry = k8s["host_aliases"]
                    .as_array()
                    .and_then(|l| l.iter().find(|e| e["ip"] == alias["ip"]));
                let names = entry.map(|e| strings(&e["hostnames"])).unwrap_or_default();
                for h in strings(&alias["hostnames"]) {
                    if !names.contains(&h) {
                        problems.push(format!("{at}: host alias {} lacks {h}", alias["ip"]));
                    }
                }
            }
            for v in spec["configMapVolumes"].as_array().into_iter().flatten() {
                let found = k8s["volumes"]["config_map"]
                    .as_array()
                    .and_then(|l| l.iter().find(|e| e["name"] == v["name"]));
                if found.is_none_or(|e| e["mount_path"] != v["mountPath"]) {
                    problems.push(format!("{at}: config_map volume {} missing", v["name"]));
                }
            }
            for (path, value) in &fragment_values {
                let got = a.pointer(&path.replace('.', "/")).unwrap_or(&Json::Null);
                if got != value {
                    problems.push(format!("{at}{path}: runnerToml sets {value}, reads {got}"));
                }
            }
        }
    }
    problems
}

/// Removes from `input` the entries of arrays of tables (host aliases aside, which merge by IP)
/// that an entry of the same name in `fragment` replaces.
fn drop_entries_replaced_by(input: &mut Json, fragment: &Json) {
    let (Json::Object(i), Json::Object(f)) = (input, fragment) else {
        return;
    };
    for (k, fv) in f {
        let Some(iv) = i.get_mut(k) else { continue };
        match (iv, fv) {
            (iv @ Json::Object(_), Json::Object(_)) => drop_entries_replaced_by(iv, fv),
            (Json::Array(entries), Json::Array(replacing)) if k != "host_aliases" => {
                let names: Vec<&Json> = replacing.iter().filter_map(|e| e.get("name")).collect();
                entries.retain(|e| e.get("name").is_none_or(|n| !names.contains(&n)));
            }
            _ => {}
        }
    }
}

/// Scalar and scalar-array leaves of a fragment, as `.a.b` paths.
fn collect_leaves(v: &Json, path: &str, out: &mut Vec<(String, Json)>) {
    match v {
        Json::Object(m) => {
            for (k, x) in m {
                collect_leaves(x, &format!("{path}.{k}"), out);
            }
        }
        Json::Array(a) if a.iter().any(Json::is_object) => {}
        other => out.push((path.to_owned(), other.clone())),
    }
}

#[test]
fn every_real_render_reads_as_the_input_plus_the_patch() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            // The real renders, and the cases built on them to show each TOML form.
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("helm") || name.starts_with("toml-") || name == "config-override"
        })
        .filter(|p| p.join("expected.yaml").is_file() && p.join("spec.yaml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 10, "real renders found: {cases:?}");
    let mut all = Vec::new();
    for dir in &cases {
        for p in check_case(dir) {
            all.push(format!(
                "{}: {p}",
                dir.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    assert!(all.is_empty(), "{}", all.join("\n"));
    // The reader itself tells a change apart.
    let mut problems = Vec::new();
    keeps(
        &json!({"a": {"b": 1}}),
        &json!({"a": {"b": 2}}),
        "x",
        &[],
        &mut problems,
    );
    assert_eq!(problems, ["x.a.b: 2 now reads 1"]);
}
