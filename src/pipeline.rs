//! The pipeline: stream → locate → per-release patch → output.
//!
//! [`stream::Documents`] cuts the text into documents without parsing YAML, and
//! [`locate::Locator`] picks the few that may be targets while each is in cache → only those are
//! parsed, and each runner Deployment is paired with its ConfigMap → per release
//! (`release::patch`) the embedded TOML and the Deployment are edited → untouched documents
//! are copied byte for byte and only the changed ones are re-emitted. A large stream is read, and
//! its releases patched, on several threads ([`par`]); the output does not depend on how many.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Error;
use crate::manifest::source;
use crate::manifest::stream::{self, Doc};
use crate::par;
use crate::release::toml::TomlPatch;
use crate::release::{self, locate};
use crate::spec::{CompiledPatch, PullPolicy};

/// The result of a successful run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The complete output stream.
    pub output: String,
    /// Things the user should know that do not stop the run.
    pub warnings: Vec<String>,
    /// One line per patched release (`Deployment ns/name`), in stream order.
    pub releases: Vec<String>,
}

/// The output as pieces that borrow the untouched stretches of the input, so that a caller can
/// write a large stream without copying it.
#[derive(Debug, Default)]
pub struct Patched<'a> {
    /// In order: verbatim input ranges and re-emitted documents.
    pub pieces: Vec<std::borrow::Cow<'a, [u8]>>,
    /// What changed, one line per document (`updated ConfigMap ns/name`, `generated …`).
    pub changes: Vec<String>,
    /// Things the user should know that do not stop the run.
    pub warnings: Vec<String>,
    /// One line per patched release (`Deployment ns/name`), in stream order.
    pub releases: Vec<String>,
}

/// Patches every selected gitlab-runner release in `input` according to `spec`.
pub fn patch(input: &str, spec: &CompiledPatch) -> Result<Outcome, Error> {
    let patched = patch_pieces(input.as_bytes(), spec)?;
    Ok(Outcome {
        output: String::from_utf8(patched.pieces.concat()).expect("the pieces of a str are UTF-8"),
        warnings: patched.warnings,
        releases: patched.releases,
    })
}

/// Like [`patch`], over bytes (checked to be UTF-8 document by document, so that a large stream
/// is read once), returning the output as pieces (see [`Patched`]).
pub fn patch_pieces<'a>(input: &'a [u8], spec: &CompiledPatch) -> Result<Patched<'a>, Error> {
    let locator = locate::Locator::new(spec.selector.as_ref(), !spec.certificates.is_empty());
    let mut scanned = scan(input, &locator)?;
    let passthrough = || Patched {
        pieces: vec![input.into()],
        warnings: spec.warnings.clone(),
        ..Patched::default()
    };
    if scanned.non_empty == 0 {
        return Ok(passthrough());
    }
    let candidates = std::mem::take(&mut scanned.candidates);
    let mut found = locate_releases(&scanned, candidates, locator)?;
    if found.releases.is_empty() {
        if spec.allow_missing {
            return Ok(passthrough());
        }
        return Err(Error::NoTarget {
            documents: found.scanned,
            selector: describe_selector(spec),
        });
    }
    let toml_patch = toml_patch(spec);

    // Each release owns its Deployment (one per release, by construction of the pairing), so
    // that it is patched in place; ConfigMaps stay shared (read-only).
    let work: Vec<(locate::Release, locate::Parsed)> = std::mem::take(&mut found.releases)
        .into_iter()
        .map(|r| {
            let deployment = found
                .parsed
                .remove(&r.deployment)
                .expect("each paired Deployment belongs to one release");
            (r, deployment)
        })
        .collect();
    let context = release::Context {
        spec,
        docs: &scanned.kept,
        configmaps: &scanned.configmaps,
        found: &found,
        toml_patch: &toml_patch,
    };
    // Releases are independent: patched side by side when a stream holds many.
    let results = par::map(work, 4, |(r, deployment)| {
        release::patch(&context, &r, deployment)
    });
    let mut outcome = Patched {
        warnings: spec.warnings.clone(),
        ..Patched::default()
    };
    let mut rewritten: BTreeMap<usize, String> = BTreeMap::new();
    let mut appended: Vec<String> = Vec::new();
    for result in results {
        let done = result?;
        outcome.warnings.extend(done.warnings);
        outcome.changes.extend(done.changes);
        rewritten.extend(done.rewritten);
        appended.extend(done.appended);
        outcome.releases.push(done.release);
    }

    // Untouched documents are contiguous stretches of the input: emit each stretch as one slice.
    let mut start = 0usize;
    for (pos, text) in rewritten {
        let doc = &scanned.kept[&pos];
        outcome.pieces.push(input[start..doc.offset].into());
        outcome.pieces.push(text.into_bytes().into());
        start = doc.offset + doc.text_len();
    }
    outcome.pieces.push(input[start..].into());
    if !appended.is_empty() {
        // New documents go at the end; Helm 4 names them `generated-by-postrender-N.yaml`.
        let crlf = scanned.last.as_ref().is_some_and(Doc::uses_crlf);
        if !input.is_empty() && !input.ends_with(b"\n") {
            outcome.pieces.push(b"\n".into());
        }
        for text in appended {
            let doc = format!("---\n{text}");
            outcome.pieces.push(
                if crlf { doc.replace('\n', "\r\n") } else { doc }
                    .into_bytes()
                    .into(),
            );
        }
    }
    Ok(outcome)
}

/// What reading the stream keeps: only the documents that may be targets (parsed), and counts.
/// Memory is bounded by the input plus the candidates, whatever the number of documents: a
/// stream of 5 M `---` lines keeps no per-document record.
struct Scanned<'a> {
    /// Candidate documents by position (0-based), with their parsed values in `candidates`.
    kept: BTreeMap<usize, Doc<'a>>,
    candidates: Vec<(usize, Value)>,
    /// The other documents that may be ConfigMaps, unparsed (see [`locate::Locator::may_be_configmap`]).
    configmaps: BTreeMap<usize, Doc<'a>>,
    /// Number of documents (to make run-relative positions stream-wide), and of those holding
    /// YAML content.
    count: usize,
    non_empty: usize,
    /// The last document (its line ending is used for appended documents).
    last: Option<Doc<'a>>,
}

/// Splits `input` into documents, checks each is UTF-8, asks `locator` which may be targets and
/// parses those: one pass, each document handled while it is in cache. A large stream is cut into
/// runs of whole documents read side by side; their indexes and lines are then made stream-wide,
/// and the first error in stream order wins, as in a single-threaded read.
fn scan<'a>(input: &'a [u8], locator: &locate::Locator<'_>) -> Result<Scanned<'a>, Error> {
    let (bom, text) = stream::strip_bom(input);
    // Several runs per thread, taken in turn (see `par::map`), so that a thread slowed down by
    // its vCPU does not hold the others up at the end.
    let parts = if text.len() >= source::LARGE_STREAM_BYTES {
        par::threads() * 4
    } else {
        1
    };
    let runs = stream::chunks(text, parts);
    let scanned = par::map(runs, 1, |run| {
        let mut split = stream::Documents::new(&text[run.clone()], bom.len() + run.start);
        let mut run = Run::default();
        for doc in split.by_ref() {
            let doc = match doc {
                Ok(doc) => doc,
                Err(e) => {
                    run.error = Some(e.into());
                    break;
                }
            };
            if locator.is_candidate(&doc) {
                match locate::parse_doc(&doc) {
                    Ok(value) => {
                        run.candidates.push((run.count, value));
                        run.kept.push((run.count, doc));
                    }
                    Err(e) => {
                        run.error = Some(e);
                        break;
                    }
                }
            } else if locator.may_be_configmap(&doc) {
                run.configmaps.push((run.count, doc));
            }
            run.non_empty += usize::from(!doc.is_empty());
            run.count += 1;
            run.last = Some(doc);
        }
        run.newlines = split.newlines();
        run
    });
    let mut out = Scanned {
        kept: BTreeMap::new(),
        candidates: Vec::new(),
        configmaps: BTreeMap::new(),
        count: 0,
        non_empty: 0,
        last: None,
    };
    let mut lines = 0;
    for run in scanned {
        let first = out.count;
        if let Some(e) = run.error {
            return Err(e.shifted(first, lines));
        }
        let shift = |mut doc: Doc<'a>| {
            doc.index += first;
            doc.line += lines;
            doc.body_line += lines;
            doc
        };
        out.kept.extend(
            run.kept
                .into_iter()
                .map(|(pos, doc)| (pos + first, shift(doc))),
        );
        out.candidates
            .extend(run.candidates.into_iter().map(|(c, v)| (c + first, v)));
        out.configmaps.extend(
            run.configmaps
                .into_iter()
                .map(|(pos, doc)| (pos + first, shift(doc))),
        );
        if run.last.is_some() {
            out.last = run.last.map(shift);
        }
        out.count += run.count;
        out.non_empty += run.non_empty;
        lines += run.newlines;
    }
    Ok(out)
}

/// What one thread's read of a run of documents found (indexes and lines relative to the run).
#[derive(Default)]
struct Run<'a> {
    /// Candidates: position in the run, document and value.
    kept: Vec<(usize, Doc<'a>)>,
    candidates: Vec<(usize, Value)>,
    /// Other documents that may be ConfigMaps: position in the run and document.
    configmaps: Vec<(usize, Doc<'a>)>,
    count: usize,
    non_empty: usize,
    last: Option<Doc<'a>>,
    newlines: usize,
    error: Option<Error>,
}

/// Classifies the parsed candidates in stream order and pairs the releases.
fn locate_releases(
    scanned: &Scanned<'_>,
    candidates: Vec<(usize, Value)>,
    mut locator: locate::Locator<'_>,
) -> Result<locate::Found, Error> {
    for (pos, value) in candidates {
        locator.classify(pos, &scanned.kept[&pos], value);
    }
    locator.finish(scanned.non_empty)
}

/// The TOML part of the patch, common to every release (each adds its certificates' volumes).
fn toml_patch(spec: &CompiledPatch) -> TomlPatch {
    let spelled = |list: &Vec<PullPolicy>| list.iter().map(|p| p.as_str()).collect();
    TomlPatch {
        host_aliases: spec.job_host_aliases.clone(),
        config_map_volumes: spec.config_map_volumes.clone(),
        secret_volumes: Vec::new(),
        tls_ca_file: None,
        pull_policy: spec.pull_policy.as_ref().map(spelled),
        allowed_pull_policies: spec.allowed_pull_policies.as_ref().map(spelled),
        fragment: spec.fragment.clone(),
        pull_policy_from_env: false,
    }
}

fn describe_selector(spec: &CompiledPatch) -> String {
    let Some(sel) = &spec.selector else {
        return String::new();
    };
    let mut parts = Vec::new();
    if let Some(r) = &sel.release {
        parts.push(format!("release={r}"));
    }
    if let Some(n) = &sel.name {
        parts.push(format!("name={n}"));
    }
    if let Some(n) = &sel.namespace {
        parts.push(format!("namespace={n}"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" matching {}", parts.join(", "))
    }
}
