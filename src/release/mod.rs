//! One gitlab-runner release: find it, then patch its ConfigMap's TOML and its Deployment.

pub mod configmaps;
pub mod env;
pub mod flags;
pub mod locate;
mod patch;
pub mod pod;
pub mod register;
mod repeats;
pub mod toml;
pub mod trust;

pub(crate) use patch::{Context, patch};
