//! The binary: parse arguments, read input, call the library once, write stdout once, map errors
//! to exit codes. Nothing is written to stdout unless the whole run succeeded.

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use kube::CustomResourceExt;
use runner_patch::cli::{ArgocdStep, Cli, Command, PatchArgs};
use runner_patch::error::{EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_WARNINGS};
use runner_patch::manifest::source::Source;
use runner_patch::manifest::yaml;
use runner_patch::spec::files::{FILE_ROOT_ENV, FileRoot};
use runner_patch::spec::{self, certificate};
use runner_patch::{Error, RunnerPatch};

fn main() -> ExitCode {
    let cli = Cli::parse_from(kustomize_legacy_args(std::env::args_os().collect()));
    let code = match cli.command {
        Some(Command::Schema { json }) => print_schema(json),
        Some(Command::Krm) => run_krm(),
        Some(Command::Check(args)) => run_check(&args),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "runner-patch", &mut buf);
            write_stdout(&buf)
        }
        Some(Command::HelmPostRender(args)) => run_filter(&args),
        Some(Command::Argocd(step)) => run_argocd(&step),
        None if cli.patch.config_is_copy && legacy_plugin_refusal(&cli.patch).is_some() => {
            let what = legacy_plugin_refusal(&cli.patch).unwrap_or_default();
            report(
                &format!(
                    "{what} cannot be set by the transformer config (argsOneLiner/argsFromFile is written by the kustomization's author); only patch options can"
                ),
                None,
            );
            runner_patch::error::EXIT_SPEC
        }
        None => run_filter(&cli.patch),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// kustomize runs a legacy exec plugin as `…/runnerpatch/RunnerPatch CONFIG [ARGS…]` with the
/// manifests on stdin. Installed under that name (a symlink to this binary), we turn the call into
/// `runner-patch --config CONFIG --config-is-copy ARGS…`: CONFIG is a temporary copy, so
/// certificate files resolve against the working directory (the kustomization root).
fn kustomize_legacy_args(mut args: Vec<OsString>) -> Vec<OsString> {
    let invoked_as = args.first().map(Path::new).and_then(Path::file_name);
    if invoked_as == Some(OsStr::new(spec::KIND)) && args.len() >= 2 {
        let config = args.remove(1);
        args.splice(
            1..1,
            [
                OsString::from("--config"),
                config,
                OsString::from("--config-is-copy"),
            ],
        );
    }
    args
}

/// What the kustomization's author tried to set through the transformer config's
/// `argsOneLiner`/`argsFromFile` that only the operator may: where files are read or written.
fn legacy_plugin_refusal(args: &PatchArgs) -> Option<&'static str> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if args.input.is_some() {
        Some("an input file")
    } else if args.file_root != from_env(FILE_ROOT_ENV) {
        Some("--file-root")
    } else if args.error_file != from_env("RUNNER_PATCH_ERROR_FILE") {
        Some("--error-file")
    } else {
        None
    }
}

/// `runner-patch argocd init|generate`: check the Application's paths, then run helm in our
/// place (exec: its exit status and output are the step's).
fn run_argocd(step: &ArgocdStep) -> i32 {
    let planned = (|| -> Result<Option<(OsString, Vec<OsString>)>, String> {
        let env = runner_patch::argocd::Env::from_process()?;
        let repo = runner_patch::argocd::Repository::locate(&env)?;
        let helm = runner_patch::argocd::helm(&env);
        Ok(match step {
            ArgocdStep::Init => runner_patch::argocd::init_args(&env, &repo)?.map(|a| (helm, a)),
            ArgocdStep::Generate => {
                let major = runner_patch::argocd::helm_major(&env)?;
                let exe = std::env::current_exe()
                    .map_err(|e| format!("cannot locate runner-patch itself: {e}"))?;
                Some((
                    helm,
                    runner_patch::argocd::generate_args(&env, &repo, major, &exe)?,
                ))
            }
        })
    })();
    match planned {
        Ok(None) => EXIT_OK,
        Ok(Some((helm, args))) => {
            let mut command = std::process::Command::new(&helm);
            command.args(&args);
            if matches!(step, ArgocdStep::Init) {
                // Argo CD reads only generate's stdout; keep init's chatter on stderr.
                if let Ok(fd) = io::stderr().as_fd().try_clone_to_owned() {
                    command.stdout(std::process::Stdio::from(fd));
                }
            }
            let error = std::os::unix::process::CommandExt::exec(&mut command);
            report(
                &format!("cannot run {}: {error}", helm.to_string_lossy()),
                None,
            );
            EXIT_INTERNAL
        }
        Err(message) => {
            report(&message, None);
            runner_patch::error::EXIT_SPEC
        }
    }
}

/// The stream filter: stdin (or a file) → stdout.
fn run_filter(args: &PatchArgs) -> i32 {
    let error_file = args.error_file.as_deref();
    with_input(args.input.as_deref(), error_file, |input, name| {
        // A KRM function host (kustomize --enable-exec, kpt) sends a ResourceList: same binary.
        if args.config.is_none()
            && !args.has_patch_flags()
            && runner_patch::krm::is_resource_list(input)
        {
            return match utf8(input, name) {
                Ok(text) => run_krm_on(text),
                Err(e) => input_failure(&e, error_file),
            };
        }
        filter(args, input)
    })
}

/// The filter proper. The input is checked to be UTF-8 document by document as it is split.
fn filter(args: &PatchArgs, input: &[u8]) -> i32 {
    let result = (|| -> Result<(runner_patch::Patched<'_>, Vec<String>), Failure> {
        let (spec, mut warnings) = prepare_spec(args)?;
        let patched = runner_patch::patch_pieces(input, &spec).map_err(Failure::Lib)?;
        warnings.extend(patched.warnings.iter().cloned());
        if spec.warnings_as_errors && !warnings.is_empty() {
            return Err(Failure::Warnings(warnings));
        }
        Ok((patched, warnings))
    })();
    match result {
        Ok((outcome, warnings)) => {
            for w in &warnings {
                eprintln!("runner-patch: warning: {w}");
            }
            write_pieces(&outcome.pieces)
        }
        Err(failure) => {
            let (message, code) = failure.describe();
            report(&message, args.error_file.as_deref());
            code
        }
    }
}

/// The spec from `--config` and the flags, with certificate files read (relative to the spec
/// file, confined to it or `--file-root`) and every certificate checked now. Returns the warnings found.
fn prepare_spec(args: &PatchArgs) -> Result<(runner_patch::RunnerPatchSpec, Vec<String>), Failure> {
    let mut base = PathBuf::from(".");
    let mut spec_text = None;
    let file_spec = match &args.config {
        Some(path) => {
            let text = spec_text.insert(read_text(path).map_err(Failure::Io)?);
            // kustomize's temporary copy sits in /tmp: its files are the kustomization root's.
            if !args.config_is_copy {
                base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            Some(spec::load(text, &path.display().to_string()).map_err(Failure::Lib)?)
        }
        None => None,
    };
    let origin = args
        .config
        .as_ref()
        .map_or_else(|| "(command line)".to_owned(), |p| p.display().to_string());
    let mut spec = args.to_spec(file_spec).map_err(Failure::Lib)?;
    let files = FileRoot::new(args.file_root.as_deref(), &base);
    spec::resolve_certificate_files(&mut spec, &files, &origin).map_err(|e| {
        Failure::Lib(match &spec_text {
            Some(text) => spec::with_positions(e, text),
            None => e,
        })
    })?;
    let (problems, warnings) = spec::check_certificates(&spec, certificate::now());
    if !problems.is_empty() {
        return Err(Failure::Lib(Error::Spec { origin, problems }));
    }
    Ok((spec, warnings))
}

/// `runner-patch check`: what the spec's certificates are and what a run would change.
fn run_check(args: &PatchArgs) -> i32 {
    let (spec, mut warnings) = match prepare_spec(args) {
        Ok(v) => v,
        Err(f) => {
            let (message, code) = f.describe();
            report(&message, None);
            return code;
        }
    };
    let mut out = String::new();
    if !spec.certificates.is_empty() {
        out.push_str("certificates:\n");
    }
    let now = certificate::now();
    for cert in &spec.certificates {
        let source = match (&cert.file, &cert.config_map, &cert.secret) {
            (Some(f), _, _) => format!("file {f}"),
            (_, Some(r), _) => format!(
                "ConfigMap {}[{}] (not inspected: managed by you)",
                r.name, r.key
            ),
            (_, _, Some(r)) => format!(
                "Secret {}[{}] (not inspected: managed by you)",
                r.name, r.key
            ),
            _ => "inline PEM".to_owned(),
        };
        out.push_str(&format!(
            "  - {} ({}, {source})\n",
            cert.host,
            cert.purpose.as_str()
        ));
        if let Some(Ok(infos)) = cert.pem_text().map(certificate::inspect) {
            for c in &infos {
                out.push_str(&format!(
                    "      subject: {}\n      issuer: {}\n      SANs: {}\n      expires: {} ({} days)\n      sha256: {}\n",
                    c.subject,
                    c.issuer,
                    if c.sans.is_empty() { "-".to_owned() } else { c.sans.join(", ") },
                    certificate::date(c.not_after),
                    (c.not_after - now) / 86_400,
                    c.fingerprint
                ));
            }
        }
        let mounted = match cert.purpose {
            spec::CertPurpose::Gitlab => format!(
                "runner manager <config dir>/certs/{}.crt ({}/…); jobs get it as CI_SERVER_TLS_CA_FILE",
                cert.hostname(),
                runner_patch::release::trust::CERTS_DIR
            ),
            _ => format!(
                "job pods {}",
                cert.mount_path
                    .clone()
                    .unwrap_or_else(|| format!("/etc/docker/certs.d/{}/ca.crt", cert.host))
            ),
        };
        out.push_str(&format!("      mounted: {mounted}\n"));
    }
    if let Some(path) = args.input.as_deref() {
        let input = match open_input(Some(path)) {
            Ok((source, _)) => source,
            Err(e) => return input_failure(&e, None),
        };
        match runner_patch::patch_pieces(input.bytes(), &spec) {
            Ok(p) => {
                out.push_str("releases:\n");
                for r in &p.releases {
                    out.push_str(&format!("  - {r}\n"));
                }
                out.push_str("changes:\n");
                if p.changes.is_empty() {
                    out.push_str("  - none: the manifests already hold everything\n");
                }
                for c in &p.changes {
                    out.push_str(&format!("  - {c}\n"));
                }
                warnings.extend(p.warnings);
            }
            Err(e) => {
                write_stdout(out.as_bytes());
                report(&e.to_string(), None);
                return e.exit_code();
            }
        }
    }
    for w in &warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(if warnings.is_empty() {
        "result: all well\n"
    } else {
        "result: warnings\n"
    });
    let code = write_stdout(out.as_bytes());
    if code == EXIT_OK && !warnings.is_empty() {
        EXIT_WARNINGS
    } else {
        code
    }
}

fn run_krm() -> i32 {
    with_input(None, None, |input, name| match utf8(input, name) {
        Ok(text) => run_krm_on(text),
        Err(e) => input_failure(&e, None),
    })
}

fn run_krm_on(input: &str) -> i32 {
    // The functionConfig (and the function's envs) come from the kustomization: the working
    // directory is the root, and nothing widens it.
    let files = FileRoot::new(None, Path::new("."));
    let (output, error) = runner_patch::krm::run(input, &files, certificate::now());
    let code = write_stdout(output.as_bytes());
    match error {
        Some(e) => {
            report(&e.to_string(), None);
            e.exit_code()
        }
        None => code,
    }
}

fn print_schema(json: bool) -> i32 {
    let value = if json {
        spec::json_schema()
    } else {
        serde_json::to_value(RunnerPatch::crd()).expect("CRD serializes")
    };
    let text = if json {
        serde_json::to_string_pretty(&value).expect("JSON serializes") + "\n"
    } else {
        match yaml::emit(&value) {
            Ok(t) => t,
            Err(m) => {
                report(&m, None);
                return EXIT_INTERNAL;
            }
        }
    };
    write_stdout(text.as_bytes())
}

enum Failure {
    Io(anyhow::Error),
    Lib(Error),
    /// Warnings with `warningsAsErrors`.
    Warnings(Vec<String>),
}

impl Failure {
    fn describe(&self) -> (String, i32) {
        match self {
            Failure::Io(e) => (format!("{e:#}"), EXIT_INPUT),
            Failure::Lib(e) => (e.to_string(), e.exit_code()),
            Failure::Warnings(w) => (
                format!(
                    "warnings are errors (warningsAsErrors):\n  - {}",
                    w.join("\n  - ")
                ),
                EXIT_WARNINGS,
            ),
        }
    }
}

/// The input named on the command line (none or "-": stdin), and its name for messages.
fn open_input(path: Option<&Path>) -> anyhow::Result<(Source, String)> {
    match path {
        Some(p) if p != Path::new("-") => {
            let name = p.display().to_string();
            let source = Source::open(p).with_context(|| format!("cannot read {name}"))?;
            Ok((source, name))
        }
        _ => Ok((
            Source::stdin().context("cannot read stdin")?,
            "stdin".into(),
        )),
    }
}

/// Runs `run` on the input's bytes and name, or reports why there are none.
fn with_input(
    path: Option<&Path>,
    error_file: Option<&Path>,
    run: impl FnOnce(&[u8], &str) -> i32,
) -> i32 {
    match open_input(path) {
        Ok((source, name)) => {
            let code = run(source.bytes(), &name);
            // The process ends now: unmapping a large input first would only add a TLB flush
            // and a system call to the teardown that exit does anyway.
            std::mem::forget(source);
            code
        }
        Err(e) => input_failure(&e, error_file),
    }
}

fn input_failure(e: &anyhow::Error, error_file: Option<&Path>) -> i32 {
    report(&format!("{e:#}"), error_file);
    EXIT_INPUT
}

fn utf8<'b>(bytes: &'b [u8], name: &str) -> anyhow::Result<&'b str> {
    std::str::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{name} is not UTF-8: invalid UTF-8 at byte {}",
            e.valid_up_to()
        )
    })
}

/// A small text file (the spec).
fn read_text(path: &Path) -> anyhow::Result<String> {
    let (source, name) = open_input(Some(path))?;
    Ok(utf8(source.bytes(), &name)?.to_owned())
}

/// Writes the pieces of a successful run (nothing was written before the run succeeded).
fn write_pieces(pieces: &[std::borrow::Cow<'_, [u8]>]) -> i32 {
    write_chunks(pieces.iter().map(|p| p.as_ref()))
}

/// Writes the whole output at once.
fn write_stdout(bytes: &[u8]) -> i32 {
    write_chunks(std::iter::once(bytes))
}

/// A closed pipe is not an error (like `head` cutting us off).
fn write_chunks<'b>(chunks: impl IntoIterator<Item = &'b [u8]>) -> i32 {
    let mut out = io::stdout().lock();
    let written = chunks
        .into_iter()
        .try_for_each(|c| out.write_all(c))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => EXIT_OK,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Err(e) => {
            report(&format!("cannot write stdout: {e}"), None);
            EXIT_INTERNAL
        }
    }
}

/// Prints an error where the user will see it.
///
/// Helm 4 runs post-renderer plugins with stderr captured into a buffer it never shows, and
/// prints only "plugin exited with error". When running as a Helm plugin (HELM_PLUGIN_NAME is
/// set) the message therefore also goes to helm's own stderr, `/proc/<helm pid>/fd/2` on Linux,
/// and to `--error-file` when given.
fn report(message: &str, error_file: Option<&Path>) {
    let line = format!("runner-patch: error: {message}\n");
    let _ = io::stderr().write_all(line.as_bytes());
    if let Some(path) = error_file {
        let _ = std::fs::write(path, &line);
    }
    if std::env::var_os("HELM_PLUGIN_NAME").is_some() {
        write_to_parent_stderr(&line);
    }
}

#[cfg(target_os = "linux")]
fn write_to_parent_stderr(line: &str) {
    let parent = std::os::unix::process::parent_id();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .open(format!("/proc/{parent}/fd/2"))
    {
        let _ = f.write_all(line.as_bytes());
    }
}

#[cfg(not(target_os = "linux"))]
fn write_to_parent_stderr(_line: &str) {}
