//! A stream large enough to be read and patched on several threads gives the same bytes, and the
//! same error (same document, same line), whatever the thread count; and the same bytes whether
//! it comes as a file argument, as stdin redirected from a file (both memory-mapped) or a pipe.

use std::io::Write;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");
const BASE: &str = include_str!("../testdata/golden/helm3-runner-0.92.0-base/input.yaml");
const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/runner-patch.yaml");

const FILLER: usize = 3000;

/// ~10 MB: `releases` renamed copies of a real 0.92.0 release spread among filler ConfigMaps,
/// so that the runs each thread reads hold releases too.
fn large_stream(releases: usize) -> String {
    let body: String = (0..52)
        .map(|j| format!("    {{\"key_{j}\": \"value {j} with some text\", \"enabled\": true}}\n"))
        .collect();
    let mut out = String::new();
    for i in 0..FILLER {
        out.push_str(&format!(
            "---\n# Source: app/templates/cm-{i}.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-{i}\ndata:\n  settings.json: |\n{body}"
        ));
        if i % (FILLER / releases) == 0 {
            let r = format!("rel{i}");
            out.push_str(
                &BASE
                    .replace("\"gitlab-runner\"", &format!("\"{r}\""))
                    .replace("name: gitlab-runner", &format!("name: {r}-gitlab-runner")),
            );
        }
    }
    assert!(out.len() > 8 << 20, "large enough for a parallel read");
    out
}

fn run(threads: usize, input: &[u8]) -> Output {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(input).unwrap();
    Command::new(BIN)
        .args(["-c", SPEC])
        .arg(file.path())
        .env("RUNNER_PATCH_THREADS", threads.to_string())
        .output()
        .unwrap()
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let input = large_stream(6);
    let one = run(1, input.as_bytes());
    assert!(
        one.status.success(),
        "{}",
        String::from_utf8_lossy(&one.stderr)
    );
    let text = String::from_utf8(one.stdout.clone()).unwrap();
    // Every release was patched: each Deployment got the manager's host aliases.
    assert_eq!(text.matches("kind: Deployment").count(), 6);
    assert_eq!(
        text.matches("hostAliases:").count(),
        6,
        "every Deployment patched"
    );
    for threads in [2, 3, 5] {
        let many = run(threads, input.as_bytes());
        assert!(many.status.success());
        assert!(
            many.stdout == one.stdout,
            "{threads} threads: different bytes"
        );
    }
}

#[test]
fn errors_name_the_same_document_and_line_whatever_the_thread_count() {
    let input = large_stream(3);
    // A byte that is not UTF-8, in the last third of the stream, and the same position's line and
    // document as a reader counting from the start would give them.
    let at = input.len() * 5 / 6;
    let at = at + input[at..].find("value").unwrap();
    let mut bytes = input.clone().into_bytes();
    bytes[at] = 0xff;
    let line = input[..at].matches('\n').count() + 1;
    let document = input[..at].matches("\n---\n").count() + 1;
    let want = format!("document {document} (line {line}): invalid UTF-8 at byte {at}");
    for threads in [1, 2, 4] {
        let out = run(threads, &bytes);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(out.stdout.is_empty());
        assert!(
            stderr.contains(&want),
            "{threads} threads: {stderr}\nwanted: {want}"
        );
    }

    // A runner ConfigMap that does not parse, late in the stream: same message everywhere.
    let broken = input.replacen(
        "\n---\n# Source: app/templates/cm-2500.yaml",
        "\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  check-live: [unclosed\n---\n# Source: app/templates/cm-2500.yaml",
        1,
    );
    // The broken document's first and last lines.
    let start = broken[..broken.find("name: broken").unwrap()]
        .matches('\n')
        .count()
        - 2;
    let lines = start..=start + 7;
    let outs: Vec<Output> = [1, 2, 4]
        .iter()
        .map(|&t| run(t, broken.as_bytes()))
        .collect();
    let first = String::from_utf8_lossy(&outs[0].stderr).into_owned();
    assert_eq!(outs[0].status.code(), Some(3), "{first}");
    assert!(
        first.contains("ConfigMap: cannot be parsed as YAML"),
        "{first}"
    );
    let reported: usize = first
        .split("(line ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .expect("a line number");
    assert!(
        lines.contains(&reported),
        "line {reported} not in {lines:?}: {first}"
    );
    for out in &outs[1..] {
        assert_eq!(String::from_utf8_lossy(&out.stderr), first);
    }
}

#[test]
fn a_file_argument_stdin_from_a_file_and_a_pipe_give_the_same_bytes() {
    // Large enough to be memory-mapped (≥ 64 KiB) when it is a file.
    let input = large_stream(6);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(input.as_bytes()).unwrap();
    let by_path = Command::new(BIN)
        .args(["-c", SPEC])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(by_path.status.success());
    let redirected = Command::new(BIN)
        .args(["-c", SPEC])
        .stdin(std::fs::File::open(file.path()).unwrap())
        .output()
        .unwrap();
    assert!(
        redirected.stdout == by_path.stdout,
        "stdin from a file differs"
    );
    let mut child = Command::new(BIN)
        .args(["-c", SPEC])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()).unwrap());
    let piped = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(piped.status.success());
    assert!(piped.stdout == by_path.stdout, "a pipe differs");
}
