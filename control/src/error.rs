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

impl Error {
    /// A copy for reporting again (I/O errors keep their kind and message).
    pub fn duplicate(&self) -> Self {
        match self {
            Error::Read { path, source } => Error::Read {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Manifest {
                path,
                index,
                message,
            } => Error::Manifest {
                path: path.clone(),
                index: *index,
                message: message.clone(),
            },
            Error::Serve(m) => Error::Serve(m.clone()),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
