//! The proxy's one error type, and the one place that maps it onto an HTTP status and a JSON
//! body for the client.

use std::time::Duration;

/// Everything that can go wrong in the proxy, from config loading to serving a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A config (file or xDS) failed validation; `field` names where.
    #[error("invalid config at {field}: {message}")]
    InvalidConfig { field: String, message: String },
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    /// No listener or route matched the request.
    #[error("no route matches {host}{path}")]
    NoRoute { host: String, path: String },
    /// The chosen rule has no usable backend (all references invalid, or no endpoints).
    #[error("backend unavailable: {0}")]
    BackendUnavailable(String),
    /// Every endpoint of the chosen backend is unhealthy or ejected.
    #[error("no healthy endpoint in backend {0}")]
    NoHealthyEndpoint(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    BodyTooLarge { limit: u64 },
    #[error("upstream request timed out after {0:?}")]
    UpstreamTimeout(Duration),
    /// An LLM request that cannot be served (bad body, no model, no provider, ...).
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
    /// An A2A request that is not valid JSON-RPC (400, a JSON-RPC error body).
    #[error("{message}")]
    A2a { code: i64, message: String },
    /// Cloud credentials for a provider (GCP token, AWS keys) could not be obtained (503).
    #[error("{0}")]
    Credentials(String),
    /// A policy refused the request (401, 403, 429, 503).
    #[error(transparent)]
    Policy(#[from] agora_policies::Error),
    /// An InferencePool's endpoint picker gave no usable answer and the pool fails closed
    /// (503).
    #[error("{0}")]
    EndpointPicker(String),
}

impl Error {
    /// Shorthand for a validation error at `field`.
    pub fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// The HTTP status a client gets for this error.
    pub fn status(&self) -> u16 {
        match self {
            Error::NoRoute { .. } => 404,
            Error::BodyTooLarge { .. } => 413,
            Error::UpstreamTimeout(_) => 504,
            Error::BackendUnavailable(_) => 500,
            Error::NoHealthyEndpoint(_) => 503,
            Error::InvalidConfig { .. } | Error::Read { .. } => 500,
            Error::Llm(e) => e.status(),
            Error::Credentials(_) | Error::EndpointPicker(_) => 503,
            Error::Policy(e) => e.status(),
            Error::A2a { .. } => 400,
        }
    }

    /// A short machine-readable kind, used in the JSON body and the access log.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NoRoute { .. } => "route_not_found",
            Error::BodyTooLarge { .. } => "request_too_large",
            Error::UpstreamTimeout(_) => "upstream_timeout",
            Error::BackendUnavailable(_) => "backend_unavailable",
            Error::NoHealthyEndpoint(_) => "no_healthy_endpoint",
            Error::InvalidConfig { .. } | Error::Read { .. } => "internal",
            Error::Llm(_) => "llm_error",
            Error::Credentials(_) => "credentials_unavailable",
            Error::EndpointPicker(_) => "endpoint_picker_unavailable",
            Error::A2a { .. } => "invalid_jsonrpc",
            Error::Policy(e) => match e.status() {
                401 => "unauthenticated",
                403 => "forbidden",
                429 => "rate_limited",
                _ => "policy_unavailable",
            },
        }
    }

    /// Headers the error response carries (`WWW-Authenticate`, `Retry-After`, ...).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Error::Policy(e) => e.headers(),
            _ => vec![],
        }
    }

    /// The JSON body sent to the client: in the client's LLM API format on LLM routes
    /// (`api`), else `{"error":{"type":..,"message":..}}`.
    pub fn body_for(&self, api: Option<agora_providers::ClientApi>) -> Vec<u8> {
        match api {
            Some(api) => agora_providers::gateway_error(api, self.status(), &self.to_string()),
            None => self.to_json(),
        }
    }

    /// The JSON body sent to the client: `{"error":{"type":..,"message":..}}`.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "error": { "type": self.kind(), "message": self.to_string() }
        }))
        .unwrap_or_default()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
