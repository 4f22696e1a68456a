//! The binary: parse arguments, read input, call the library once, write stdout once, say what
//! happened on stderr, map errors to exit codes. Nothing is written to stdout unless the whole run
//! succeeded (KRM mode excepted: a failed function still answers with a ResourceList).

use std::cell::RefCell;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kube::CustomResourceExt;
use runner_patch::cli::{ArgocdStep, Cli, Command, DiffArgs, PatchArgs};
use runner_patch::manifest::source::Source;
use runner_patch::manifest::yaml;
use runner_patch::spec::files::{FILE_ROOT_ENV, FileRoot};
use runner_patch::spec::{self, certificate};
use runner_patch::{CompiledPatch, Error, RunnerPatch};

/// The process exit codes, the one place they are defined (README "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    /// Success, also when nothing needed to change.
    Ok = 0,
    /// An internal error, or the output could not be written (closed pipe, full disk).
    Internal = 1,
    /// Something is wrong with the command line or the spec file (clap uses 2 as well).
    Usage = 2,
    /// The input manifests are unreadable, or conflict with the patch.
    Input = 3,
    /// A non-empty stream without any gitlab-runner release.
    NoTarget = 4,
    /// Warnings with `--warnings-as-errors`; `check` found warnings.
    Warnings = 5,
}

impl From<&Error> for Exit {
    fn from(e: &Error) -> Self {
        match e {
            Error::Spec { .. } => Exit::Usage,
            Error::Yaml { .. }
            | Error::Input { .. }
            | Error::NotUtf8 { .. }
            | Error::Field { .. }
            | Error::Toml { .. }
            | Error::Pairing { .. }
            | Error::TooLarge { .. } => Exit::Input,
            Error::NoTarget { .. } => Exit::NoTarget,
            Error::Fidelity { .. } => Exit::Internal,
        }
    }
}

/// Why a run stopped: the message said to the user (once) and the exit code.
struct Failure {
    message: String,
    exit: Exit,
}

impl Failure {
    fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            exit,
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::new(Exit::from(&e), e.to_string())
    }
}

/// Whether fd 1 was open when the process started. With `>&-` the output would be lost while the
/// run reports success: Rust's runtime reopens a closed fd 1 on /dev/null before `main` (and
/// otherwise the first file opened would take it), so the question is asked before that, by a
/// constructor run by the loader.
static STDOUT_OPEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CHECK_STDOUT: extern "C" fn() = check_stdout;

#[cfg(target_os = "linux")]
extern "C" fn check_stdout() {
    // SAFETY: fd 1 is only asked about (F_GETFD), never closed or kept.
    let fd1 = unsafe { std::os::fd::BorrowedFd::borrow_raw(1) };
    STDOUT_OPEN.store(
        rustix::io::fcntl_getfd(fd1).is_ok(),
        std::sync::atomic::Ordering::Relaxed,
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(kustomize_legacy_args(std::env::args_os().collect()));
    let exit = match cli.command {
        Some(Command::Schema { json }) => print_schema(json),
        Some(Command::Krm { input }) => run_krm(input.as_deref()),
        Some(Command::Check(args)) => run_check(&args),
        Some(Command::Completions { shell }) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, "runner-patch", &mut buf);
            finish(write_stdout(&buf), &Reporter::new(None))
        }
        Some(Command::HelmPostRender(args)) => run_filter(&args),
        Some(Command::Diff(args)) => run_diff(&args),
        Some(Command::Argocd(step)) => run_argocd(&step),
        None if cli.patch.config_is_copy && legacy_plugin_refusal(&cli.patch).is_some() => {
            let what = legacy_plugin_refusal(&cli.patch).unwrap_or_default();
            Reporter::new(None).error(&format!(
                "{what} cannot be set by the transformer config (argsOneLiner/argsFromFile is written by the kustomization's author); only patch options can"
            ));
            Exit::Usage
        }
        None => run_filter(&cli.patch),
    };
    ExitCode::from(exit as u8)
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
fn run_argocd(step: &ArgocdStep) -> Exit {
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
        Ok(None) => Exit::Ok,
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
            Reporter::new(None).error(&format!("cannot run {}: {error}", helm.to_string_lossy()));
            Exit::Internal
        }
        Err(message) => {
            Reporter::new(None).error(&message);
            Exit::Usage
        }
    }
}

/// Reports a failure and turns the result into an exit code.
fn finish(result: Result<(), Failure>, reporter: &Reporter) -> Exit {
    match result {
        Ok(()) => Exit::Ok,
        Err(f) => {
            reporter.error(&f.message);
            f.exit
        }
    }
}

/// `runner-patch diff`: the run, then its output compared with its input instead of written.
fn run_diff(args: &DiffArgs) -> Exit {
    let reporter = Reporter::new(args.patch.error_file.as_deref());
    reporter.start();
    let result = (|| {
        let (source, _) = open_input(args.patch.input.as_deref())?.ok_or_else(no_input)?;
        let input = source.bytes();
        let (spec, warnings) = prepare_spec(&args.patch)?;
        let (patched, warnings) = patch_stream(&spec, warnings, input)?;
        for w in &warnings {
            reporter.warning(w);
        }
        let output = patched.pieces.concat();
        // A successful run has checked every document to be UTF-8, and keeps it so.
        let (Ok(before), Ok(after)) = (std::str::from_utf8(input), std::str::from_utf8(&output))
        else {
            return Err(Failure::new(
                Exit::Internal,
                "internal error: the stream is not UTF-8 after a run",
            ));
        };
        let color = match args.color {
            clap::ColorChoice::Always => true,
            clap::ColorChoice::Never => false,
            clap::ColorChoice::Auto => {
                anstream::AutoStream::choice(&io::stdout()) == anstream::ColorChoice::Always
            }
        };
        let options = runner_patch::diff::Options {
            color,
            context: args.context,
        };
        let diff = runner_patch::diff::render(before, after, &options);
        write_stdout(diff.text.as_bytes())?;
        Ok(diff.documents > 0)
    })();
    match result {
        // `diff --exit-code`: 1 when something would change (as `git diff --exit-code`).
        Ok(true) if args.exit_code => Exit::Internal,
        Ok(_) => Exit::Ok,
        Err(f) => finish(Err(f), &reporter),
    }
}

/// The patch of `input` by `spec`, with the spec's `warnings` and the run's together; warnings
/// are errors with `warningsAsErrors`.
fn patch_stream<'a>(
    spec: &CompiledPatch,
    mut warnings: Vec<String>,
    input: &'a [u8],
) -> Result<(runner_patch::Patched<'a>, Vec<String>), Failure> {
    let patched = runner_patch::patch_pieces(input, spec)?;
    warnings.extend(patched.warnings.iter().cloned());
    if spec.warnings_as_errors && !warnings.is_empty() {
        return Err(warnings_are_errors(&warnings));
    }
    Ok((patched, warnings))
}

/// The stream filter: the input (a file, or stdin) → stdout.
fn run_filter(args: &PatchArgs) -> Exit {
    // Without a spec and patch flags the input may be a ResourceList from a KRM host (kustomize
    // --enable-exec, kpt), which sets the function's environment from the functionConfig: the
    // kustomization's author then controls RUNNER_PATCH_ERROR_FILE and RUNNER_PATCH_FILE_ROOT.
    // Such a run honours neither, exactly as `runner-patch krm` does: the error file is opened
    // only once the input is known to be a manifest stream.
    let may_be_krm = args.config.is_none() && !args.has_patch_flags();
    let operator = Reporter::new(args.error_file.as_deref());
    let krm_host = Reporter::new(None);
    let before_input = if may_be_krm { &krm_host } else { &operator };
    let input = match open_input(args.input.as_deref()).and_then(|i| i.ok_or_else(no_input)) {
        Ok(input) => input,
        Err(f) => return finish(Err(f), before_input),
    };
    let (source, name) = input;
    let bytes = source.bytes();
    let (result, reporter) = if may_be_krm && runner_patch::krm::is_resource_list(bytes) {
        let result = utf8(bytes, &name, Exit::Input).and_then(|text| krm(text, &krm_host));
        (result, &krm_host)
    } else {
        operator.start();
        (filter(args, bytes, &operator), &operator)
    };
    // The process ends now: unmapping a large input first would only add a TLB flush and a
    // system call to the teardown that exit does anyway.
    std::mem::forget(source);
    finish(result, reporter)
}

/// The filter proper. The input is checked to be UTF-8 document by document as it is split.
fn filter(args: &PatchArgs, input: &[u8], reporter: &Reporter) -> Result<(), Failure> {
    let (spec, warnings) = prepare_spec(args)?;
    if asks_for_nothing(&spec) {
        let why = match &args.config {
            None => "no --config and no patch flags (--host-alias, --pull-policy, --allowed-pull-policy)".to_owned(),
            Some(path) => format!("{} asks for no change", path.display()),
        };
        reporter.note(&format!(
            "nothing to do: {why}; the input passes through unchanged"
        ));
        return write_stdout(input);
    }
    let (patched, warnings) = patch_stream(&spec, warnings, input)?;
    for w in &warnings {
        reporter.warning(w);
    }
    write_chunks(patched.pieces.iter().map(|p| p.as_ref()))?;
    if args.verbose || io::stderr().is_terminal() {
        reporter.note(&summary(&patched.releases, &patched.changes));
    }
    Ok(())
}

/// What a run changed, for people (stderr): one line per release and per changed document.
fn summary(releases: &[String], changes: &[String]) -> String {
    let mut out = match releases.len() {
        0 => "no gitlab-runner release in the input; it passed through unchanged".to_owned(),
        1 => format!("patched 1 release: {}", releases[0]),
        n => format!("patched {n} releases: {}", releases.join(", ")),
    };
    if !releases.is_empty() && changes.is_empty() {
        out.push_str("\n  nothing changed: the manifests already hold everything");
    }
    for c in changes {
        out.push_str("\n  ");
        out.push_str(c);
    }
    out
}

/// True when the spec (file and flags together) would change nothing in any release.
fn asks_for_nothing(spec: &CompiledPatch) -> bool {
    spec.is_empty()
}

fn warnings_are_errors(warnings: &[String]) -> Failure {
    Failure::new(
        Exit::Warnings,
        format!(
            "warnings are errors (warningsAsErrors):\n  - {}",
            warnings.join("\n  - ")
        ),
    )
}

/// The spec from `--config` and the flags, with certificate files read (relative to the spec
/// file, confined to it or to `--file-root`), every certificate checked now, and compiled.
/// Returns the warnings found.
fn prepare_spec(args: &PatchArgs) -> Result<(CompiledPatch, Vec<String>), Failure> {
    let mut base = PathBuf::from(".");
    let mut spec_text = None;
    let mut draft = match &args.config {
        Some(path) => {
            let name = path.display().to_string();
            let bytes = read_spec(path, &name)?;
            let text = spec_text.insert(utf8(&bytes, &name, Exit::Usage)?.to_owned());
            // kustomize's temporary copy sits in /tmp: its files are the kustomization root's.
            if !args.config_is_copy {
                base = path.parent().map(Path::to_path_buf).unwrap_or_default();
            }
            spec::load(text, &name)?
        }
        None => spec::Draft::new(Default::default(), "(command line)"),
    };
    draft.spec = args.to_spec(Some(std::mem::take(&mut draft.spec)))?;
    let origin = draft.origin.clone();
    let files = FileRoot::new(args.file_root.as_deref(), &base);
    spec::resolve_certificate_files(&mut draft.spec, &files, &origin).map_err(
        |e| match &spec_text {
            Some(text) => spec::with_positions(e, text),
            None => e,
        },
    )?;
    let (problems, warnings) = spec::check_certificates(&draft.spec, certificate::now());
    if !problems.is_empty() {
        return Err(Error::Spec { origin, problems }.into());
    }
    let spec = draft.compile().map_err(|mut e| {
        // A spec made of flags only: name the flag, not a field the user never wrote.
        if let (None, Error::Spec { problems, .. }) = (&args.config, &mut e) {
            for p in problems {
                if let Some(flag) = runner_patch::cli::flag_for(&p.path) {
                    p.path = flag;
                }
            }
        }
        e
    })?;
    Ok((spec, warnings))
}

/// The largest spec file accepted (a spec is a few KiB; certificates are read separately).
const MAX_SPEC_BYTES: u64 = 1 << 20;

/// The spec file's bytes: a regular file of at most [`MAX_SPEC_BYTES`] (checked before reading),
/// or a FIFO or pipe (`<(…)`, `/dev/stdin`) read up to that limit. A device, socket or directory
/// is refused unread: `-c /dev/zero` must not read a gigabyte first.
fn read_spec(path: &Path, name: &str) -> Result<Vec<u8>, Failure> {
    use std::io::Read;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let cannot =
        |e: io::Error| Failure::new(Exit::Usage, format!("cannot read the spec {name}: {e}"));
    let too_large = || {
        Failure::new(
            Exit::Usage,
            format!(
                "the spec {name} is larger than the limit of {} MiB",
                MAX_SPEC_BYTES >> 20
            ),
        )
    };
    // Non-blocking: opening a FIFO without a writer must not wait.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY).bits() as i32)
        .open(path)
        .map_err(cannot)?;
    let meta = file.metadata().map_err(cannot)?;
    let kind = meta.file_type();
    if kind.is_file() {
        if meta.len() > MAX_SPEC_BYTES {
            return Err(too_large());
        }
    } else if kind.is_fifo() {
        // A pipe's writer may not have written yet: wait for it as stdin would.
        rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())
            .map_err(|e| cannot(e.into()))?;
    } else {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "a special file"
        };
        return Err(Failure::new(
            Exit::Usage,
            format!("the spec {name} is {what}, not a regular file"),
        ));
    }
    let mut bytes = Vec::with_capacity(if kind.is_file() {
        meta.len() as usize + 1
    } else {
        0
    });
    file.take(MAX_SPEC_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_SPEC_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `runner-patch check`: what the spec's certificates are and what a run would change.
fn run_check(args: &PatchArgs) -> Exit {
    let reporter = Reporter::new(args.error_file.as_deref());
    reporter.start();
    match check(args, &reporter) {
        Ok(warnings) if warnings => Exit::Warnings,
        Ok(_) => Exit::Ok,
        Err(f) => finish(Err(f), &reporter),
    }
}

/// Writes the report; true when there were warnings.
fn check(args: &PatchArgs, reporter: &Reporter) -> Result<bool, Failure> {
    let (spec, mut warnings) = prepare_spec(args)?;
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
    let mut no_release = false;
    // The same input rule as a run: a file argument, or stdin when it is not a terminal.
    if let Some((source, _)) = open_input(args.input.as_deref())? {
        match runner_patch::patch_pieces(source.bytes(), &spec) {
            // An empty stream (or one allowed to miss its release): say so, and not "all well".
            Ok(p) if p.releases.is_empty() => {
                out.push_str("releases: none found\n");
                warnings.extend(p.warnings);
                no_release = true;
            }
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
            // Like a run: on an error, nothing on stdout.
            Err(e) => return Err(e.into()),
        }
    } else {
        // Without manifests, what the spec itself says (a run adds these to its own warnings).
        warnings.extend(spec.warnings.iter().cloned());
    }
    for w in &warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out.push_str(if no_release {
        "result: no gitlab-runner release in the input, nothing checked\n"
    } else if warnings.is_empty() {
        "result: all well\n"
    } else {
        "result: warnings\n"
    });
    for w in &warnings {
        reporter.forward_to_helm(&Reporter::line("warning", w));
    }
    write_stdout(out.as_bytes())?;
    // A gate fed nothing (a failed render) must not pass: exit 4 as for a stream without a
    // release, unless the spec allows a missing release (then as a run: 0, or 5 on warnings).
    if no_release && !spec.allow_missing {
        return Err(Failure::new(
            Exit::NoTarget,
            "no gitlab-runner release in the input (it is empty); pass --allow-missing (or spec.allowMissing: true) if that is expected",
        ));
    }
    Ok(!warnings.is_empty())
}

/// `runner-patch krm [FILE]`: a ResourceList in, a ResourceList out.
fn run_krm(path: Option<&Path>) -> Exit {
    let reporter = Reporter::new(None);
    let result = open_input(path).and_then(|input| {
        let (source, name) = input.ok_or_else(no_input)?;
        let text = utf8(source.bytes(), &name, Exit::Input)?;
        krm(text, &reporter)
    });
    finish(result, &reporter)
}

fn krm(input: &str, reporter: &Reporter) -> Result<(), Failure> {
    // The functionConfig (and the function's envs) come from the kustomization: the working
    // directory is the root, and nothing widens it.
    let files = FileRoot::new(None, Path::new("."));
    let outcome = runner_patch::krm::run(input, &files, certificate::now());
    write_stdout(outcome.output.as_bytes())?;
    for w in &outcome.warnings {
        reporter.warning(w);
    }
    match outcome.error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

fn print_schema(json: bool) -> Exit {
    let reporter = Reporter::new(None);
    let text = if json {
        Ok(serde_json::to_string_pretty(&spec::json_schema()).expect("JSON serializes") + "\n")
    } else {
        let crd = serde_json::to_value(RunnerPatch::crd()).expect("CRD serializes");
        yaml::emit(&crd).map_err(|m| Failure::new(Exit::Internal, m))
    };
    finish(text.and_then(|t| write_stdout(t.as_bytes())), &reporter)
}

fn no_input() -> Failure {
    Failure::new(
        Exit::Usage,
        "no input: name a manifest file, or pipe the manifests into stdin (`-` reads stdin anyway)",
    )
}

/// The one input rule of every subcommand: a file argument (`-` is stdin), or else stdin when it
/// is not a terminal; `None` when there is no input at all.
fn open_input(path: Option<&Path>) -> Result<Option<(Source, String)>, Failure> {
    let stdin = || {
        Source::stdin()
            .map(|s| Some((s, "stdin".to_owned())))
            .map_err(|e| Failure::new(Exit::Input, format!("cannot read stdin: {e}")))
    };
    match path {
        Some(p) if p == Path::new("-") => stdin(),
        Some(p) => {
            let name = p.display().to_string();
            match Source::open(p) {
                Ok(source) => Ok(Some((source, name))),
                Err(e) => Err(Failure::new(
                    Exit::Input,
                    format!("cannot read {name}: {e}"),
                )),
            }
        }
        None if io::stdin().is_terminal() => Ok(None),
        None => stdin(),
    }
}

fn utf8<'b>(bytes: &'b [u8], name: &str, exit: Exit) -> Result<&'b str, Failure> {
    std::str::from_utf8(bytes).map_err(|e| {
        Failure::new(
            exit,
            format!(
                "{name} is not UTF-8: invalid UTF-8 at byte {}",
                e.valid_up_to()
            ),
        )
    })
}

/// Writes the whole output at once.
fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    write_chunks(std::iter::once(bytes))
}

/// Writes the output; a reader that went away before the end (`… | head -c1`) is a failure, since
/// whoever reads the output did not get all of it.
fn write_chunks<'b>(chunks: impl IntoIterator<Item = &'b [u8]>) -> Result<(), Failure> {
    if !STDOUT_OPEN.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(Failure::new(
            Exit::Internal,
            "cannot write the output: stdout is closed",
        ));
    }
    let mut out = io::stdout().lock();
    chunks
        .into_iter()
        .try_for_each(|c| out.write_all(c))
        .and_then(|()| out.flush())
        .map_err(|e| {
            let why = if e.kind() == io::ErrorKind::BrokenPipe {
                "the reader closed the pipe before the end".to_owned()
            } else {
                e.to_string()
            };
            Failure::new(Exit::Internal, format!("cannot write the output: {why}"))
        })
}

/// Says errors, warnings and notes where the user will see them.
///
/// Helm throws a post-renderer's stderr away: Helm 4 always (it prints only "plugin exited with
/// error"), Helm 3 when the run succeeds. So every line also goes to helm's own stderr,
/// `/proc/<helm pid>/fd/2` on Linux: under Helm 4 (HELM_PLUGIN_NAME is set) errors, warnings and
/// notes; under Helm 3 (the parent is a helm binary) warnings and notes only, since Helm 3 prints
/// our stderr itself when we fail. Every line also goes to `--error-file` when given.
struct Reporter {
    error_file: Option<PathBuf>,
    /// Opened (truncated) by [`Reporter::start`] or at the first line, so a run leaves only its
    /// own lines in the file (a clean run an empty one).
    file: RefCell<Option<File>>,
    host: Host,
}

/// Who runs us, as far as reaching the user is concerned.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    /// A Helm 4 post-renderer plugin: our stderr is never shown.
    Helm4Plugin,
    /// Helm 3 with us as `--post-renderer`: our stderr is shown only when we fail.
    Helm3,
    /// Anything else: our stderr is the user's.
    Other,
}

impl Reporter {
    fn new(error_file: Option<&Path>) -> Self {
        let host = if std::env::var_os("HELM_PLUGIN_NAME").is_some() {
            Host::Helm4Plugin
        } else if parent_is_helm() {
            Host::Helm3
        } else {
            Host::Other
        };
        Reporter {
            error_file: error_file.map(Path::to_path_buf),
            file: RefCell::new(None),
            host,
        }
    }

    fn line(level: &str, message: &str) -> String {
        if level.is_empty() {
            format!("runner-patch: {message}\n")
        } else {
            format!("runner-patch: {level}: {message}\n")
        }
    }

    fn error(&self, message: &str) {
        let line = Self::line("error", message);
        let _ = io::stderr().write_all(line.as_bytes());
        self.to_file(&line);
        if self.host == Host::Helm4Plugin {
            write_to_parent_stderr(&line);
        }
    }

    fn warning(&self, message: &str) {
        self.say(&Self::line("warning", message));
    }

    fn note(&self, message: &str) {
        self.say(&Self::line("", message));
    }

    fn say(&self, line: &str) {
        let _ = io::stderr().write_all(line.as_bytes());
        self.forward_to_helm(line);
    }

    /// The channels beside our own stderr for a line that is not an error: the error file and,
    /// under Helm, helm's stderr.
    fn forward_to_helm(&self, line: &str) {
        self.to_file(line);
        if self.host != Host::Other {
            write_to_parent_stderr(line);
        }
    }

    /// Truncates (creates) the error file now: a run without a line to say must not leave the
    /// previous run's lines there.
    fn start(&self) {
        if let Some(path) = &self.error_file {
            let mut file = self.file.borrow_mut();
            if file.is_none() {
                *file = File::create(path).ok();
            }
        }
    }

    fn to_file(&self, line: &str) {
        self.start();
        if let Some(f) = self.file.borrow_mut().as_mut() {
            let _ = f.write_all(line.as_bytes());
        }
    }
}

/// True when our parent process is a helm binary (Helm 3 running us as its post-renderer).
#[cfg(target_os = "linux")]
fn parent_is_helm() -> bool {
    let parent = std::os::unix::process::parent_id();
    std::fs::read_link(format!("/proc/{parent}/exe"))
        .ok()
        .and_then(|exe| {
            exe.file_name()
                .map(|n| n.to_string_lossy().starts_with("helm"))
        })
        .unwrap_or(false)
}

#[cfg(not(target_os = "linux"))]
fn parent_is_helm() -> bool {
    false
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
