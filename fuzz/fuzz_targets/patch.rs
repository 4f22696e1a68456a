//! The whole filter over arbitrary streams, alone and around a real runner release: no panic; on
//! success the output is a fixed point, deterministic, and keeps the document count.
#![no_main]

use libfuzzer_sys::fuzz_target;

const BASE: &str = include_str!("../../testdata/golden/helm3-runner-0.92.0-base/input.yaml");
const SPEC: &str = include_str!("../../examples/runner-patch.yaml");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let spec = runner_patch::spec::load(SPEC, "spec").expect("example spec loads");
    for input in [text.to_owned(), format!("{BASE}{text}"), format!("{text}\n{BASE}")] {
        let Ok(first) = runner_patch::patch(&input, &spec) else { continue };
        let second = runner_patch::patch(&input, &spec).expect("second run failed where the first succeeded");
        assert_eq!(first.output, second.output, "not deterministic");
        let again = runner_patch::patch(&first.output, &spec).expect("patching the output failed");
        assert_eq!(again.output, first.output, "not idempotent");
        let before = runner_patch::manifest::stream::split(&input).docs.len();
        let after = runner_patch::manifest::stream::split(&first.output).docs.len();
        assert_eq!(before, after, "document count changed");
    }
});
