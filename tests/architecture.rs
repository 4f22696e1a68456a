//! The module tree is the pipeline: each layer uses only the layers below it, so that the folder
//! tree can be read top-down and no import circle can creep back in.
//!
//! manifest (YAML, knows nothing of runners) → error → spec → release → pipeline → front ends
//! (krm, cli, and the subcommands). A `crate::` path in a module of one layer that names a module
//! of the same or a higher layer fails this test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer; a module may use modules of lower layers only (and `par`, a
/// helper with no dependencies of its own).
const LAYERS: &[&[&str]] = &[
    &["par"],
    &["manifest"],
    &["error"],
    &["spec"],
    &["release"],
    &["pipeline"],
    &["krm", "diff", "argocd", "cli"],
];

/// Functions re-exported at the crate root, and the module they come from.
const ROOT_REEXPORTS: &[(&str, &str)] = &[("patch", "pipeline"), ("patch_pieces", "pipeline")];

fn layer_of(module: &str) -> Option<usize> {
    let module = ROOT_REEXPORTS
        .iter()
        .find(|(name, _)| *name == module)
        .map_or(module, |(_, from)| from);
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/spec/validate.rs` → `spec`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// Every top-level module named as `crate::NAME` or in `use crate::{NAME, …}` (code only: comment
/// lines, doc links included, are left out, and so is the text after `#[cfg(test)]`, since test
/// modules may reach anywhere).
fn used_modules(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name = item.trim().split("::").next().unwrap_or("").trim();
                out.push(name.to_owned());
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn each_layer_uses_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 10, "found only {} source files", files.len());
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut violations = Vec::new();
    for file in &files {
        let module = top_module(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(own) = layer_of(&module) else {
            violations.push(format!(
                "{}: module `{module}` has no layer in tests/architecture.rs",
                file.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for used in used_modules(&text) {
            *checked.entry(module.clone()).or_default() += 1;
            if used == module || used.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                // Same module, or a re-export of the crate root (`crate::Error`).
                continue;
            }
            match layer_of(&used) {
                Some(layer) if layer < own => {}
                Some(_) => violations.push(format!(
                    "{}: `{module}` uses `crate::{used}`, which is not below it",
                    file.strip_prefix(&src).unwrap().display()
                )),
                None => violations.push(format!(
                    "{}: `crate::{used}` is not a known top-level module",
                    file.strip_prefix(&src).unwrap().display()
                )),
            }
        }
    }
    assert!(
        checked.values().sum::<usize>() > 20,
        "too few crate paths seen: {checked:?}"
    );
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// The module path of a source file (`src/spec/validate.rs` → `spec::validate`, `mod.rs` → its
/// folder).
fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// Every `crate::a::b::…` path in code (as for [`used_modules`]), whole.
fn crate_paths(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        for (i, _) in line.match_indices("crate::") {
            let rest = &line[i + "crate::".len()..];
            let path: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            out.push(path.trim_end_matches(':').to_owned());
        }
    }
    out
}

#[test]
fn no_module_imports_itself_through_others() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, PathBuf> = files
        .iter()
        .map(|f| (module_path(&src, f), f.clone()))
        .filter(|(m, _)| m != "lib" && m != "main")
        .collect();
    // Edges: a module → the longest known module prefix of each crate path it names.
    let mut edges: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (module, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let mut deps = Vec::new();
        for path in crate_paths(&text) {
            let parts: Vec<&str> = path.split("::").collect();
            let target = (1..=parts.len())
                .rev()
                .map(|k| parts[..k].join("::"))
                .find_map(|p| modules.get_key_value(&p).map(|(k, _)| k.as_str()));
            if let Some(t) = target.filter(|t| t != module && !deps.contains(t)) {
                deps.push(t);
            }
        }
        edges.insert(module.as_str(), deps);
    }
    assert!(edges.len() > 15, "found only {} modules", edges.len());
    // Depth-first search with colours; a grey node met again closes a circle.
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
        circles: &mut Vec<String>,
    ) {
        state.insert(node, 1);
        stack.push(node);
        for &next in edges.get(node).into_iter().flatten() {
            match state.get(next).copied().unwrap_or(0) {
                0 => visit(next, edges, state, stack, circles),
                1 => {
                    let from = stack.iter().position(|n| *n == next).unwrap();
                    circles.push(format!("{} -> {next}", stack[from..].join(" -> ")));
                }
                _ => {}
            }
        }
        stack.pop();
        state.insert(node, 2);
    }
    let (mut state, mut circles) = (BTreeMap::new(), Vec::new());
    for &node in edges.keys() {
        if !state.contains_key(node) {
            visit(node, &edges, &mut state, &mut Vec::new(), &mut circles);
        }
    }
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn finds_grouped_and_plain_paths() {
    let text = "//! See [`crate::pipeline`].\nuse crate::manifest::{stream, yaml};\nuse crate::{spec, release::toml};\nfn f() { crate::error::x() }\n#[cfg(test)]\nmod t { use crate::krm; }";
    assert_eq!(used_modules(text), ["manifest", "spec", "release", "error"]);
}
