//! runner-patch: patch every gitlab-runner release in a rendered manifest stream.
//!
//! The crate reads as its pipeline:
//!
//! - [`spec`] — the `RunnerPatch` spec: types, loading with positions, validation against the
//!   runner's own key list, certificates.
//! - [`manifest`] — the YAML layer, which knows nothing of runners: reading the input
//!   ([`manifest::source`]), cutting it into documents ([`manifest::stream`]), positions, the
//!   in-place editor of both target documents ([`manifest::edit`]) and the Go-safe reader and
//!   emitter ([`manifest::yaml`]).
//! - [`release`] — one gitlab-runner release: [`release::locate`] finds and pairs the
//!   Deployment and its ConfigMap, [`release::toml`] edits `config.template.toml`,
//!   [`release::pod`] edits the Deployment, [`release::trust`] wires certificates in.
//! - [`pipeline`] — stream → locate → per-release patch → output ([`patch`], [`patch_pieces`]).
//! - [`krm`] — the same pipeline behind a KRM ResourceList; [`cli`] — the command line;
//!   [`diff`] — what a run would change, as unified diffs per document;
//!   [`argocd`] — the Argo CD plugin steps, which check an Application's paths before Helm runs.
//!
//! The library prints nothing and does no I/O but reading the input ([`manifest::source`]),
//! the confined certificate files ([`spec::files`]) and the checks of [`argocd`];
//! `main` owns stdout, stderr and exit codes.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod argocd;
pub mod cli;
pub mod diff;
pub mod error;
pub mod krm;
pub mod manifest;
pub mod par;
pub mod pipeline;
pub mod release;
pub mod spec;

pub use error::{DocRef, Error};
pub use pipeline::{Outcome, Patched, patch, patch_pieces};
pub use spec::{RunnerPatch, RunnerPatchSpec};
