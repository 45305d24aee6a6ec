//! The crate's single error type.

/// Why a body could not be read or translated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not valid JSON, or not the expected shape. Maps to HTTP 400.
    #[error("invalid request body: {0}")]
    InvalidRequest(String),
    /// The upstream sent something we cannot translate. Maps to 502.
    #[error("invalid upstream response: {0}")]
    InvalidResponse(String),
    /// This client API cannot be served by this provider format, or the request uses a
    /// feature the target format has no equivalent for. Maps to 400.
    #[error("{0}")]
    Unsupported(String),
    /// A provider configuration (`spec.ai`) is invalid; `field` names where. Rejects the
    /// config, never a request.
    #[error("invalid config at {field}: {message}")]
    Config { field: String, message: String },
}

impl Error {
    /// The HTTP status the gateway answers with for this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::InvalidRequest(_) | Error::Unsupported(_) => 400,
            Error::InvalidResponse(_) => 502,
            Error::Config { .. } => 500,
        }
    }

    pub(crate) fn request(e: impl std::fmt::Display) -> Self {
        Error::InvalidRequest(e.to_string())
    }

    pub(crate) fn response(e: impl std::fmt::Display) -> Self {
        Error::InvalidResponse(e.to_string())
    }
}
