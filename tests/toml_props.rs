//! Property tests: the TOML merge is form-independent (issue 12, items 1 and 5). Random runner
//! entries and `runnerToml` fragments are written in all three table forms (`[header]`, dotted
//! keys, inline), arrays of tables as `[[…]]` or inline arrays, and struct keys in random case;
//! whatever the layout, the patched TOML must read — with the runner's semantics — as the input
//! plus the fragment plus the spec's own keys, and patching again must change nothing.

mod toml_reading;

use proptest::prelude::*;
use runner_patch::release::toml::{Fragment, TomlPatch, apply};
use serde_json::{Map, Value as Json, json};

// ---------------------------------------------------------------------------------------------
// The data: a runner entry as the runner reads it.

fn pick(options: &'static [&'static str]) -> impl Strategy<Value = Json> {
    proptest::sample::select(options).prop_map(Json::from)
}

fn node_selector() -> impl Strategy<Value = Json> {
    proptest::collection::btree_map(
        proptest::sample::select(&["disk", "Disk", "kubernetes.io/os", "pool"][..]),
        pick(&["ssd", "linux", "ci"]),
        1..3,
    )
    .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn host_aliases(tag: &'static str) -> impl Strategy<Value = Json> {
    proptest::collection::btree_map(0..3usize, 1..3usize, 1..3).prop_map(move |m| {
        Json::Array(
            m.into_iter()
                .map(|(ip, n)| {
                    let hostnames: Vec<String> =
                        (0..n).map(|h| format!("{tag}{h}-{ip}.example")).collect();
                    json!({"ip": format!("10.0.0.{}", ip + 1), "hostnames": hostnames})
                })
                .collect(),
        )
    })
}

fn empty_dirs() -> impl Strategy<Value = Json> {
    proptest::collection::btree_map(
        proptest::sample::select(&["a", "b", "c"][..]),
        (pick(&["/x", "/y"]), proptest::option::of(pick(&["Memory", ""]))),
        1..3,
    )
    .prop_map(|m| {
        Json::Array(
            m.into_iter()
                .map(|(name, (mount, medium))| {
                    let mut e = json!({"name": name, "mount_path": format!("{}/{name}", mount.as_str().unwrap())});
                    if let Some(medium) = medium {
                        e["medium"] = medium;
                    }
                    e
                })
                .collect(),
        )
    })
}

/// A `[[runners]]` entry; `tag` keeps hostnames of different sources apart (a hostname bound
/// to two addresses is refused, which is not what these properties test).
fn runner(tag: &'static str) -> impl Strategy<Value = Json> {
    (
        proptest::option::of(pick(&["/builds", "/b"])),
        proptest::option::of(pick(&["ns-a", "ns-b"])),
        proptest::option::of(pick(&["alpine", "ubuntu"])),
        proptest::option::of(any::<bool>()),
        proptest::option::of(node_selector()),
        proptest::option::of(host_aliases(tag)),
        proptest::option::of(empty_dirs()),
        proptest::option::of(prop_oneof![
            pick(&["always", "never"]),
            proptest::collection::vec(pick(&["always", "if-not-present"]), 1..3)
                .prop_map(Json::from),
        ]),
    )
        .prop_map(
            |(builds, ns, image, privileged, selector, aliases, dirs, policy)| {
                let mut k8s = Map::new();
                let mut put = |k: &str, v: Option<Json>| {
                    if let Some(v) = v {
                        k8s.insert(k.to_owned(), v);
                    }
                };
                put("namespace", ns);
                put("image", image);
                put("privileged", privileged.map(Json::Bool));
                put("node_selector", selector);
                put("host_aliases", aliases);
                put("volumes", dirs.map(|d| json!({ "empty_dir": d })));
                put("pull_policy", policy);
                let mut runner = Map::new();
                if let Some(b) = builds {
                    runner.insert("builds_dir".into(), b);
                }
                if !k8s.is_empty() {
                    runner.insert("kubernetes".into(), Json::Object(k8s));
                }
                Json::Object(runner)
            },
        )
}

// ---------------------------------------------------------------------------------------------
// The layout: the same data written in a form chosen for every table and key.

/// Layout decisions, taken in turn from a random byte string.
struct Choices {
    bytes: Vec<u8>,
    next: usize,
    /// Whether struct keys get a random case (the fragment's keys are checked against the
    /// runner's exact spellings, so they cannot).
    vary_case: bool,
}

impl Choices {
    fn take(&mut self, n: u8) -> u8 {
        let b = self.bytes[self.next % self.bytes.len()];
        self.next += 1;
        b % n
    }

    fn spell(&mut self, key: &str, in_map: bool) -> String {
        if in_map || !self.vary_case {
            return key.to_owned();
        }
        match self.take(3) {
            0 => key.to_owned(),
            1 => key.to_uppercase(),
            _ => {
                let mut c = key.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            }
        }
    }
}

fn quoted(key: &str) -> String {
    if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        key.to_owned()
    } else {
        format!("{key:?}")
    }
}

fn is_table_array(v: &Json) -> bool {
    matches!(v, Json::Array(a) if !a.is_empty() && a.iter().all(Json::is_object))
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Array(a) => format!("[{}]", a.iter().map(scalar).collect::<Vec<_>>().join(", ")),
        Json::Object(m) => format!(
            "{{ {} }}",
            m.iter()
                .map(|(k, v)| format!("{} = {}", quoted(k), scalar(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

/// Spells the keys of `v` (recursively), for the inline and dotted forms.
fn spelled(v: &Json, in_map: bool, c: &mut Choices) -> Json {
    match v {
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| {
                    let map = in_map || k == "node_selector";
                    (c.spell(k, in_map), spelled(x, map, c))
                })
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(|x| spelled(x, in_map, c)).collect()),
        other => other.clone(),
    }
}

/// The keys and sub-tables of a header table at `path`.
fn header_body(
    path: &str,
    obj: &Map<String, Json>,
    in_map: bool,
    c: &mut Choices,
    out: &mut String,
) {
    let mut later: Vec<(String, &Json, bool)> = Vec::new();
    for (k, v) in obj {
        let map = in_map || k == "node_selector";
        let key = c.spell(k, in_map);
        match v {
            Json::Object(sub) => match c.take(3) {
                0 => later.push((key, v, map)),
                1 if !sub.is_empty() => dotted(&quoted(&key), sub, map, c, out),
                _ => out.push_str(&format!(
                    "{} = {}\n",
                    quoted(&key),
                    scalar(&spelled(v, map, c))
                )),
            },
            _ if is_table_array(v) && c.take(2) == 0 => later.push((key, v, map)),
            _ => out.push_str(&format!(
                "{} = {}\n",
                quoted(&key),
                scalar(&spelled(v, map, c))
            )),
        }
    }
    for (key, v, map) in later {
        let here = format!("{path}.{}", quoted(&key));
        match v {
            Json::Object(sub) => {
                out.push_str(&format!("[{here}]\n"));
                header_body(&here, sub, map, c, out);
            }
            Json::Array(entries) => {
                for e in entries {
                    out.push_str(&format!("[[{here}]]\n"));
                    header_body(&here, e.as_object().unwrap(), map, c, out);
                }
            }
            _ => unreachable!(),
        }
    }
}

fn dotted(prefix: &str, obj: &Map<String, Json>, in_map: bool, c: &mut Choices, out: &mut String) {
    for (k, v) in obj {
        let map = in_map || k == "node_selector";
        let key = format!("{prefix}.{}", quoted(&c.spell(k, in_map)));
        match v {
            Json::Object(sub) if !sub.is_empty() && c.take(2) == 0 => {
                dotted(&key, sub, map, c, out)
            }
            _ => out.push_str(&format!("{key} = {}\n", scalar(&spelled(v, map, c)))),
        }
    }
}

/// `runner` as a `[[runners]]` entry (or, for a fragment, `[runners]`) in the chosen layout.
fn render(runner: &Json, header: &str, c: &mut Choices) -> String {
    let mut out = format!("{header}\n");
    header_body("runners", runner.as_object().unwrap(), false, c, &mut out);
    out
}

fn choices() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..64)
}

// ---------------------------------------------------------------------------------------------
// The properties.

/// What the patch must read as: the fragment merged, then the spec's pull policy and aliases.
fn expected(input: &Json, fragment: &Json, patch: &TomlPatch) -> Json {
    let mut runner = input.clone();
    toml_reading::merge(&mut runner, fragment);
    if patch.pull_policy.is_none() && patch.host_aliases.is_empty() {
        return runner;
    }
    let k8s = runner
        .as_object_mut()
        .unwrap()
        .entry("kubernetes")
        .or_insert_with(|| json!({}));
    if let Some(p) = &patch.pull_policy {
        k8s["pull_policy"] = json!(p);
    }
    for (ip, hostnames) in &patch.host_aliases {
        let list = k8s
            .as_object_mut()
            .unwrap()
            .entry("host_aliases")
            .or_insert_with(|| json!([]));
        let list = list.as_array_mut().unwrap();
        match list.iter_mut().find(|e| e["ip"] == json!(ip)) {
            Some(e) => {
                let names = e["hostnames"].as_array_mut().unwrap();
                for h in hostnames {
                    if !names.contains(&json!(h)) {
                        names.push(json!(h));
                    }
                }
            }
            None => list.push(json!({"ip": ip, "hostnames": hostnames})),
        }
    }
    runner
}

fn check(
    input: &Json,
    fragment: &Json,
    with_spec: bool,
    input_layout: Vec<u8>,
    fragment_layout: Vec<u8>,
) -> Result<(), TestCaseError> {
    let text = render(
        input,
        "[[runners]]",
        &mut Choices {
            bytes: input_layout,
            next: 0,
            vary_case: true,
        },
    );
    // The layout is only a layout: the input reads as the data it was written from.
    let read_input =
        toml_reading::read(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    prop_assert_eq!(
        &toml_reading::runners(&read_input)[0],
        input,
        "input:\n{}",
        text
    );
    let header = if fragment_layout[0].is_multiple_of(2) {
        "[runners]"
    } else {
        "[[runners]]"
    };
    let fragment_text = render(
        fragment,
        header,
        &mut Choices {
            bytes: fragment_layout,
            next: 1,
            vary_case: false,
        },
    );
    let mut patch = TomlPatch {
        fragment: Some(
            Fragment::parse(&fragment_text)
                .map_err(|e| TestCaseError::fail(format!("{}\n{fragment_text}", e.join("; "))))?,
        ),
        ..TomlPatch::default()
    };
    if with_spec {
        patch.pull_policy = Some(vec!["if-not-present"]);
        patch.host_aliases = vec![("10.0.0.2".into(), vec!["spec0.example".into()])];
    }
    let out = apply(&text, &patch)
        .map_err(|e| {
            TestCaseError::fail(format!("{e:?}\ninput:\n{text}\nfragment:\n{fragment_text}"))
        })?
        .text
        .unwrap_or_else(|| text.clone());
    let got = toml_reading::read(&out)
        .map_err(|e| TestCaseError::fail(format!("{e}\noutput:\n{out}")))?;
    prop_assert_eq!(
        &toml_reading::runners(&got)[0],
        &expected(input, fragment, &patch),
        "input:\n{}\nfragment:\n{}\noutput:\n{}",
        text,
        fragment_text,
        out
    );
    let again = apply(&out, &patch).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    prop_assert!(again.text.is_none(), "second run changed:\n{}", out);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn fragment_merge_reads_the_same_in_every_layout(
        input in runner("in"),
        fragment in runner("frag"),
        input_layout in choices(),
        fragment_layout in choices(),
    ) {
        check(&input, &fragment, false, input_layout, fragment_layout)?;
    }

    #[test]
    fn spec_keys_land_in_every_layout(
        input in runner("in"),
        fragment in runner("frag"),
        input_layout in choices(),
        fragment_layout in choices(),
    ) {
        check(&input, &fragment, true, input_layout, fragment_layout)?;
    }
}
