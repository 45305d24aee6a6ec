//! The control plane's one error type.

use std::path::PathBuf;

/// Errors of the control plane. Translation itself never fails: problems with user objects
/// become statuses, not errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest file could not be read.
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A YAML document is not a valid object of its kind.
    #[error("{path}: document {index}: {message}")]
    Manifest {
        path: PathBuf,
        index: usize,
        message: String,
    },
    /// The xDS server could not start.
    #[error("xds server: {0}")]
    Serve(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
