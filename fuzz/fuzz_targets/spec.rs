//! The spec loader over arbitrary text: no panic, every failure is a spec error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = runner_patch::spec::load(text, "fuzz") {
        assert!(matches!(e, runner_patch::Error::Spec { .. }), "{e}");
    }
});
