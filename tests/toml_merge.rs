//! The TOML merge means what TOML means (issue 12, items 1 and 5): inline tables, dotted keys
//! and table headers are the same data, keys match as the runner matches them, and the result
//! reads — with the runner's semantics, [`toml_reading`] — as the input plus exactly the patch.

mod toml_reading;

use runner_patch::release::toml::{Fragment, TomlPatch, apply};
use runner_patch::spec::ConfigMapVolume;
use serde_json::{Value as Json, json};

/// The chart's stock template (gitlab-runner chart 0.92.0 `runners.config`).
const STOCK: &str = "[[runners]]\n  [runners.kubernetes]\n    namespace = \"gitlab-test\"\n    image = \"alpine\"\n";

fn fragment(text: &str) -> TomlPatch {
    TomlPatch {
        fragment: Some(Fragment::parse(text).expect("fragment is valid")),
        ..TomlPatch::default()
    }
}

/// Applies `patch`, checks idempotence, and returns the new text.
#[track_caller]
fn patched(input: &str, patch: &TomlPatch) -> String {
    let out = apply(input, patch)
        .unwrap_or_else(|e| panic!("apply failed: {e:?}"))
        .text
        .unwrap_or_else(|| input.to_owned());
    let again = apply(&out, patch).expect("patched text applies again");
    assert_eq!(again.text, None, "not idempotent; first output:\n{out}");
    out
}

/// Checks that `out` reads as `input` with the fragment merged in, entry by entry.
#[track_caller]
fn reads_as_merged(input: &str, fragment_text: &str, out: &str) {
    let mut want = toml_reading::read(input).expect("input reads");
    let frag = toml_reading::read(fragment_text).expect("fragment reads");
    let frag_runner = match &frag["runners"] {
        Json::Array(a) => a[0].clone(),
        other => other.clone(),
    };
    for runner in want["runners"].as_array_mut().unwrap() {
        toml_reading::merge(runner, &frag_runner);
    }
    let got = toml_reading::read(out).unwrap_or_else(|e| panic!("{e} in:\n{out}"));
    assert_eq!(got, want, "output:\n{out}");
}

fn k8s(reading: &Json) -> &Json {
    &toml_reading::runners(reading)[0]["kubernetes"]
}

#[test]
fn inline_node_selector_keeps_its_keys_when_the_fragment_uses_a_header() {
    let input = "[[runners]]\n  [runners.kubernetes]\n    node_selector = { \"kubernetes.io/os\" = \"linux\", \"node-pool\" = \"ci\" }\n";
    let frag = "[runners.kubernetes.node_selector]\n\"disk\" = \"ssd\"\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "[[runners]]\n  [runners.kubernetes]\n    node_selector = { \"kubernetes.io/os\" = \"linux\", \"node-pool\" = \"ci\", disk = \"ssd\" }\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn inline_kubernetes_in_the_fragment_keeps_the_charts_namespace_and_image() {
    let frag = "[runners]\nkubernetes = { privileged = true }\n";
    let out = patched(STOCK, &fragment(frag));
    assert_eq!(
        out,
        "[[runners]]\n  [runners.kubernetes]\n    namespace = \"gitlab-test\"\n    image = \"alpine\"\n    privileged = true\n"
    );
    reads_as_merged(STOCK, frag, &out);
}

#[test]
fn inline_kubernetes_in_the_chart_keeps_everything_and_grows_inline() {
    let input = "[[runners]]\n  kubernetes = { namespace = \"gitlab-test\", image = \"alpine\" }\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "[[runners]]\n  kubernetes = { namespace = \"gitlab-test\", image = \"alpine\", privileged = true }\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn an_inline_table_grown_past_a_line_becomes_a_sub_table() {
    let input = "[[runners]]\n  name = \"r\"\n  kubernetes = { namespace = \"gitlab-test\", image = \"alpine\" }\n  [runners.cache]\n    Type = \"s3\"\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n[runners.kubernetes.node_selector]\ndisk = \"ssd\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"docker-certs\"\nmount_path = \"/certs/client\"\nmedium = \"Memory\"\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "[[runners]]\n  name = \"r\"\n  [runners.kubernetes]\n    namespace = \"gitlab-test\"\n    image = \"alpine\"\n    privileged = true\n    node_selector = { disk = \"ssd\" }\n    [runners.kubernetes.volumes]\n      empty_dir = [{ name = \"docker-certs\", mount_path = \"/certs/client\", medium = \"Memory\" }]\n  [runners.cache]\n    Type = \"s3\"\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn dotted_kubernetes_in_the_chart_grows_dotted() {
    let input =
        "[[runners]]\n  kubernetes.namespace = \"gitlab-test\"\n  kubernetes.image = \"alpine\"\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n[runners.kubernetes.node_selector]\ndisk = \"ssd\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"cache\"\nmount_path = \"/cache\"\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "[[runners]]\n  kubernetes.namespace = \"gitlab-test\"\n  kubernetes.image = \"alpine\"\n  kubernetes.privileged = true\n  kubernetes.node_selector.disk = \"ssd\"\n  kubernetes.volumes.empty_dir = [{ name = \"cache\", mount_path = \"/cache\" }]\n"
    );
    reads_as_merged(input, frag, &out);
}

/// Every field runner-patch writes itself, into a chart TOML written inline.
#[test]
fn the_patchs_own_keys_go_into_an_inline_kubernetes_table() {
    let input = "[[runners]]\n  kubernetes = { namespace = \"gitlab-test\", host_aliases = [{ ip = \"10.0.0.1\", hostnames = [\"a.example.com\"] }] }\n";
    let patch = TomlPatch {
        host_aliases: vec![
            ("10.0.0.1".into(), vec!["b.example.com".into()]),
            ("10.0.0.2".into(), vec!["c.example.com".into()]),
        ],
        config_map_volumes: vec![ConfigMapVolume {
            name: "ca".into(),
            mount_path: "/etc/ca".into(),
            sub_path: None,
            read_only: Some(true),
            items: Some([("ca.crt".to_owned(), "ca.crt".to_owned())].into()),
        }],
        pull_policy: Some(vec!["if-not-present"]),
        allowed_pull_policies: Some(vec!["if-not-present", "always"]),
        tls_ca_file: Some("/certs/gitlab.crt".into()),
        ..TomlPatch::default()
    };
    let out = patched(input, &patch);
    let got = toml_reading::read(&out).unwrap();
    let runner = &toml_reading::runners(&got)[0];
    assert_eq!(runner["tls-ca-file"], "/certs/gitlab.crt");
    assert_eq!(
        runner["kubernetes"],
        json!({
            "namespace": "gitlab-test",
            "host_aliases": [
                {"ip": "10.0.0.1", "hostnames": ["a.example.com", "b.example.com"]},
                {"ip": "10.0.0.2", "hostnames": ["c.example.com"]}
            ],
            "volumes": {"config_map": [{"name": "ca", "mount_path": "/etc/ca", "read_only": true, "items": {"ca.crt": "ca.crt"}}]},
            "pull_policy": ["if-not-present"],
            "allowed_pull_policies": ["if-not-present", "always"]
        })
    );
    // Grown past a readable line, the inline table became `[runners.kubernetes]`, and inside
    // it the arrays of inline tables became `[[…]]` entries.
    assert!(
        out.starts_with("[[runners]]\n  tls-ca-file = \"/certs/gitlab.crt\"\n  [runners.kubernetes]\n    namespace")
            && out.contains("\n    [[runners.kubernetes.host_aliases]]\n      ip = \"10.0.0.2\"\n")
            && out.contains("\n    [[runners.kubernetes.volumes.config_map]]\n      name = \"ca\"\n"),
        "{out}"
    );
}

#[test]
fn pull_policy_in_another_case_is_replaced_in_place() {
    let input = "[[runners]]\n  [runners.Kubernetes]\n    Pull_Policy = \"never\" # pinned\n";
    let patch = TomlPatch {
        pull_policy: Some(vec!["if-not-present"]),
        ..TomlPatch::default()
    };
    let out = patched(input, &patch);
    assert_eq!(
        out,
        "[[runners]]\n  [runners.Kubernetes]\n    Pull_Policy = [\"if-not-present\"] # pinned\n"
    );
    assert_eq!(
        k8s(&toml_reading::read(&out).unwrap())["pull_policy"],
        json!(["if-not-present"])
    );
}

#[test]
fn host_aliases_in_another_case_are_extended() {
    let input = "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.Host_Aliases]]\n      IP = \"10.0.0.1\"\n      HostNames = [\"a.example.com\"]\n";
    let patch = TomlPatch {
        host_aliases: vec![
            ("10.0.0.1".into(), vec!["b.example.com".into()]),
            ("10.0.0.2".into(), vec!["c.example.com".into()]),
        ],
        ..TomlPatch::default()
    };
    let out = patched(input, &patch);
    assert_eq!(
        out,
        "[[runners]]\n  [runners.kubernetes]\n    [[runners.kubernetes.Host_Aliases]]\n      IP = \"10.0.0.1\"\n      HostNames = [\"a.example.com\", \"b.example.com\"]\n    [[runners.kubernetes.Host_Aliases]]\n      ip = \"10.0.0.2\"\n      hostnames = [\"c.example.com\"]\n"
    );
    assert_eq!(
        k8s(&toml_reading::read(&out).unwrap())["host_aliases"],
        json!([
            {"ip": "10.0.0.1", "hostnames": ["a.example.com", "b.example.com"]},
            {"ip": "10.0.0.2", "hostnames": ["c.example.com"]}
        ])
    );
}

#[test]
fn fragment_keys_go_into_the_existing_spelling() {
    let input = "[[runners]]\n  [runners.KUBERNETES]\n    Privileged = false\n    [runners.KUBERNETES.Node_Selector]\n      disk = \"hdd\"\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n[runners.kubernetes.node_selector]\nDisk = \"ssd\"\n";
    let out = patched(input, &fragment(frag));
    // `Disk` is a map key (data), distinct from `disk`; `privileged` is a struct field.
    assert_eq!(
        out,
        "[[runners]]\n  [runners.KUBERNETES]\n    Privileged = true\n    [runners.KUBERNETES.Node_Selector]\n      disk = \"hdd\"\n      Disk = \"ssd\"\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn two_spellings_of_one_field_in_the_input_are_refused_with_both_lines() {
    let input = "[[runners]]\n  [runners.kubernetes]\n    pull_policy = \"always\"\n    image = \"alpine\"\n    Pull_Policy = \"never\"\n";
    let err = apply(input, &TomlPatch::default()).unwrap_err();
    assert_eq!(err.line, Some(3));
    assert_eq!(
        err.path.as_deref(),
        Some("runners[0].kubernetes.pull_policy")
    );
    assert!(
        err.message.contains("(line 3)") && err.message.contains("(line 5)"),
        "{err:?}"
    );
    // Map keys differing in case are two keys, not two spellings.
    let maps =
        "[[runners]]\n  [runners.kubernetes.node_selector]\n    disk = \"a\"\n    Disk = \"b\"\n";
    assert!(apply(maps, &fragment("[runners.kubernetes]\nprivileged = true\n")).is_ok());
}

#[test]
fn two_spellings_in_a_later_runner_name_its_lines_in_the_whole_toml() {
    // Two spellings of a table are one struct to the runner: they merge.
    let input = "concurrent = 2\n[[runners]]\n  name = \"a\"\n[[runners]]\n  name = \"b\"\n  [runners.kubernetes]\n  [runners.Kubernetes.node_selector]\n";
    assert!(apply(input, &TomlPatch::default()).is_ok());
    // A key set in both is two values for one field.
    let input = "concurrent = 2\n[[runners]]\n  name = \"a\"\n[[runners]]\n  name = \"b\"\n  [runners.kubernetes]\n    image = \"a\"\n  [runners.Kubernetes]\n    image = \"b\"\n";
    let err = apply(input, &TomlPatch::default()).unwrap_err();
    assert_eq!(err.line, Some(7), "{err:?}");
    assert_eq!(err.path.as_deref(), Some("runners[1].kubernetes.image"));
    assert!(err.message.contains("(line 9)"), "{err:?}");
}

/// `config.toml` (configOverride) with globals and several runners: every entry is patched
/// alike, the globals stay, and patching entry by entry reads like patching the whole.
#[test]
fn every_runner_of_a_config_toml_is_patched() {
    let input = "concurrent = 4 # global\n\n[[runners]]\n  name = \"a\"\n  [runners.kubernetes]\n    image = \"a\"\n\n# the second one\n[[runners]]\n  name = \"b\"\n  kubernetes = { image = \"b\" }\n\n[session_server]\n  listen_address = \"[::]:8093\"\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "concurrent = 4 # global\n\n[[runners]]\n  name = \"a\"\n  [runners.kubernetes]\n    image = \"a\"\n    privileged = true\n\n# the second one\n[[runners]]\n  name = \"b\"\n  kubernetes = { image = \"b\", privileged = true }\n\n[session_server]\n  listen_address = \"[::]:8093\"\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn a_table_continued_after_the_runners_is_patched_as_one_document() {
    // `[a]` before and `[a.b]` after the runners: one document, not pieces.
    let input = "[a]\nx = 1\n[[runners]]\n  name = \"r\"\n[a.b]\ny = 2\n";
    let out = patched(
        input,
        &fragment("[runners.kubernetes]\nprivileged = true\n"),
    );
    reads_as_merged(input, "[runners.kubernetes]\nprivileged = true\n", &out);
}

#[test]
fn runners_written_as_an_inline_array_are_patched() {
    let input = "runners = [{ name = \"a\", kubernetes = { image = \"x\" } }]\n";
    let frag = "[runners.kubernetes]\nprivileged = true\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        "runners = [{ name = \"a\", kubernetes = { image = \"x\", privileged = true } }]\n"
    );
    reads_as_merged(input, frag, &out);
}

#[test]
fn arrays_of_tables_merge_by_identity_whichever_form() {
    let input = "[[runners]]\n  [runners.kubernetes]\n    volumes = { empty_dir = [{ name = \"a\", mount_path = \"/a\" }] }\n";
    let frag = "[[runners.kubernetes.volumes.empty_dir]]\nname = \"a\"\nmedium = \"Memory\"\n[[runners.kubernetes.volumes.empty_dir]]\nname = \"b\"\nmount_path = \"/b\"\n";
    let out = patched(input, &fragment(frag));
    assert_eq!(
        out,
        // The fragment's entry `a` replaces the chart's whole: its mount_path is not kept.
        "[[runners]]\n  [runners.kubernetes]\n    volumes = { empty_dir = [{ name = \"a\", medium = \"Memory\" }, { name = \"b\", mount_path = \"/b\" }] }\n"
    );
    reads_as_merged(input, frag, &out);
}

/// Memory (issue 12, item 4): entries are parsed one at a time, so a `config.toml` with many
/// `[[runners]]` costs about one entry's parse, and one absurdly large entry is refused with a
/// limit error instead of costing hundreds of times its size.
#[test]
fn many_runners_are_patched_entry_by_entry_and_one_huge_entry_is_refused() {
    let many: String = std::iter::once("concurrent = 3\n".to_owned())
        .chain(
            (0..2000).map(|i| format!("[[runners]]\n  name = \"r{i}\"\n  [runners.kubernetes]\n")),
        )
        .collect();
    let patch = TomlPatch {
        pull_policy: Some(vec!["always"]),
        ..TomlPatch::default()
    };
    let out = patched(&many, &patch);
    let reading = toml_reading::read(&out).unwrap();
    let runners = toml_reading::runners(&reading);
    assert_eq!(runners.len(), 2000);
    assert!(
        runners
            .iter()
            .all(|r| r["kubernetes"]["pull_policy"] == json!(["always"]))
    );
    assert_eq!(reading["concurrent"], 3);

    // Dense (a few bytes per token), so that the entry stays under the 1 MiB TOML limit.
    let huge = format!(
        "[[runners]]\n  [runners.kubernetes]\n    host_aliases = [{}]\n",
        "{ip=\"1\"},".repeat(40_000)
    );
    assert!(huge.len() < runner_patch::release::toml::MAX_TOML_BYTES);
    let err = apply(&huge, &patch).unwrap_err();
    assert_eq!(err.line, Some(1));
    assert_eq!(err.path.as_deref(), Some("runners[0]"));
    assert!(err.message.contains("refuses more than 100000"), "{err:?}");
}

#[test]
fn an_entry_without_identity_is_added_once() {
    let frag = "[[runners.kubernetes.pod_spec]]\npatch = '[{\"op\": \"add\", \"path\": \"/x\", \"value\": 1}]'\npatch_type = \"json\"\n";
    let out = patched(STOCK, &fragment(frag));
    assert_eq!(out.matches("pod_spec").count(), 1, "{out}");
    reads_as_merged(STOCK, frag, &out);
}
