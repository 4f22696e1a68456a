//! Properties of the in-place editor (`manifest::edit::rewrite`) on real runner Deployments and
//! ConfigMaps: for random changes to the value (append to any list, add a key to any mapping, set
//! any scalar to a tricky string, remove a list item or a key), the editor either refuses with a
//! field path or returns text that reads as exactly the new value; and when the change only adds,
//! every line of the input is still there, in order (but a one-line flow collection that grows).

use proptest::prelude::*;
use runner_patch::manifest::{edit, stream, yaml};
use serde_json::{Value, json};

/// Target documents of a few real renders (Helm 3 text, Helm 4 re-serialized, JSON).
fn documents() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/golden");
    let mut out = Vec::new();
    for case in [
        "helm3-runner-0.52.0-base",
        "helm3-runner-0.92.0-extras",
        "helm4-runner-0.92.0-hostaliases-certs",
        "adv-json-documents",
        "crlf",
    ] {
        let text = std::fs::read_to_string(root.join(case).join("input.yaml")).unwrap();
        for doc in stream::split(&text).docs {
            let candidate =
                doc.body.contains("/configmaps/entrypoint") || doc.body.contains("check-live");
            if candidate
                && let Ok(v) = yaml::parse(doc.body)
                && matches!(v["kind"].as_str(), Some("Deployment" | "ConfigMap"))
            {
                out.push(doc.body.to_owned());
            }
        }
    }
    assert!(out.len() >= 8, "{} target documents", out.len());
    out
}

const STRINGS: &[&str] = &[
    "plain",
    "y",
    "on",
    "0644",
    "1e5",
    "",
    "- dash",
    "a: b",
    "#hash",
    "multi\nline\n",
    "no final newline\nx",
    " leading space\n",
    "\ttab first\nx\n",
    "quote \" and ' both",
    "\u{2028}separator",
    "ünïcødé",
    "null",
    "~",
    "[flow]",
    "{flow}",
    "*alias",
    "&anchor",
    "!tag",
    "%percent",
    "@at",
    "trailing space ",
];

#[derive(Debug, Clone)]
enum Op {
    Append(usize, usize),
    AddKey(usize, usize),
    SetScalar(usize, usize),
    RemoveItem(usize),
    RemoveKey(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let ix = (any::<usize>(), 0..STRINGS.len());
    prop_oneof![
        ix.clone().prop_map(|(a, b)| Op::Append(a, b)),
        ix.clone().prop_map(|(a, b)| Op::AddKey(a, b)),
        ix.clone().prop_map(|(a, b)| Op::SetScalar(a, b)),
        any::<usize>().prop_map(Op::RemoveItem),
        any::<usize>().prop_map(Op::RemoveKey),
    ]
}

/// JSON pointers of every node, in document order.
fn pointers(v: &Value, at: String, out: &mut Vec<(String, &'static str)>) {
    match v {
        Value::Object(m) => {
            out.push((at.clone(), "map"));
            for (k, c) in m {
                pointers(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            out.push((at.clone(), "seq"));
            for (i, c) in a.iter().enumerate() {
                pointers(c, format!("{at}/{i}"), out);
            }
        }
        _ => out.push((at, "scalar")),
    }
}

fn pick<'p>(all: &'p [(String, &'static str)], kind: &str, n: usize) -> Option<&'p str> {
    let of: Vec<&str> = all
        .iter()
        .filter(|(_, k)| *k == kind)
        .map(|(p, _)| p.as_str())
        .collect();
    (!of.is_empty()).then(|| of[n % of.len()])
}

/// Applies `op` to `v`; returns whether it only adds (no removal, no change of existing text).
fn apply(v: &mut Value, op: &Op) -> bool {
    let mut all = Vec::new();
    pointers(v, String::new(), &mut all);
    let s = |i: usize| Value::String(STRINGS[i].to_owned());
    match *op {
        Op::Append(n, i) => {
            if let Some(p) = pick(&all, "seq", n) {
                let item = if i % 2 == 0 {
                    s(i)
                } else {
                    json!({"name": STRINGS[i], "value": s(i)})
                };
                v.pointer_mut(p).unwrap().as_array_mut().unwrap().push(item);
            }
            true
        }
        Op::AddKey(n, i) => {
            if let Some(p) = pick(&all, "map", n) {
                let m = v.pointer_mut(p).unwrap().as_object_mut().unwrap();
                let key = format!("k-{}", STRINGS[i].len());
                if !m.contains_key(&key) {
                    m.insert(key, if i % 3 == 0 { json!([s(i)]) } else { s(i) });
                }
            }
            true
        }
        Op::SetScalar(n, i) => {
            if let Some(p) = pick(&all, "scalar", n) {
                *v.pointer_mut(p).unwrap() = s(i);
            }
            false
        }
        Op::RemoveItem(n) => {
            if let Some(p) = pick(&all, "seq", n) {
                let a = v.pointer_mut(p).unwrap().as_array_mut().unwrap();
                if a.len() > 1 {
                    a.remove(n % a.len());
                }
            }
            false
        }
        Op::RemoveKey(n) => {
            if let Some(p) = pick(&all, "map", n) {
                let m = v.pointer_mut(p).unwrap().as_object_mut().unwrap();
                if m.len() > 1 {
                    let k = m.keys().nth(n % m.len()).unwrap().clone();
                    m.shift_remove(&k);
                }
            }
            false
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn edits_read_back_exactly_or_are_refused(doc in 0usize..64, ops in prop::collection::vec(op(), 1..4)) {
        let docs = documents();
        let body = &docs[doc % docs.len()];
        let old = yaml::parse(body).unwrap();
        let mut new = old.clone();
        let mut only_adds = true;
        for op in &ops {
            only_adds &= apply(&mut new, op);
        }
        match edit::rewrite(body, &old, &new) {
            Ok(None) => prop_assert_eq!(&old, &new),
            Ok(Some(text)) => {
                prop_assert_eq!(yaml::parse(&text).unwrap(), new);
                if only_adds {
                    // A one-line flow collection that grows changes its line; every other line
                    // stays.
                    let mut rest = text.lines();
                    for line in body.lines().filter(|l| !l.contains(['[', '{'])) {
                        prop_assert!(rest.any(|l| l == line), "line {:?} lost", line);
                    }
                }
            }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }
}
