//! The YAML layer: it knows manifests and documents, nothing of runners.

pub mod edit;
pub mod positions;
pub mod source;
pub mod stream;
pub mod yaml;
