//! The crate's one error type. [`Error::status`] and [`Error::headers`] are its HTTP mapping;
//! the proxy writes the body in the client's protocol.

use std::time::Duration;

/// Which credential an authentication failure asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Basic,
    ApiKey,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A policy in the configuration is invalid (rejects the config).
    #[error("{field}: {message}")]
    Config { field: String, message: String },
    /// No valid credential (401).
    #[error("authentication failed: {reason}")]
    Unauthenticated {
        scheme: Scheme,
        reason: String,
        realm: String,
    },
    /// No valid bearer token for an MCP resource (401); the challenge names the resource's
    /// RFC 9728 metadata, where MCP clients learn which authorization server to use.
    #[error("authentication failed: {reason}")]
    McpUnauthenticated { reason: String, metadata: String },
    /// An authorization rule denied the request (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A rate limit or budget is exhausted (429).
    #[error("rate limit exceeded: {what}")]
    RateLimited {
        what: String,
        limit: u64,
        retry_after: Duration,
    },
    /// A prompt guard rejected the request or response (403).
    #[error("{0}")]
    PromptRejected(String),
    /// A policy service (Redis, ext_authz, guard webhook) failed and the policy fails closed
    /// (503).
    #[error("policy service unavailable: {0}")]
    Unavailable(String),
    /// The external authorization service denied the request with this status (and, from a
    /// gRPC service, the reason its denied response gave).
    #[error("denied by external authorization ({status}){}", if reason.is_empty() { String::new() } else { format!(": {reason}") })]
    ExtAuthDenied { status: u16, reason: String },
}

impl Error {
    pub fn status(&self) -> u16 {
        match self {
            Error::Config { .. } => 500,
            Error::Unauthenticated { .. } | Error::McpUnauthenticated { .. } => 401,
            Error::Forbidden(_) | Error::PromptRejected(_) => 403,
            Error::RateLimited { .. } => 429,
            Error::Unavailable(_) => 503,
            Error::ExtAuthDenied { status, .. } => *status,
        }
    }

    /// Headers the answer must carry (`WWW-Authenticate`, `Retry-After`, ...).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Error::Unauthenticated {
                scheme,
                reason,
                realm,
            } => {
                let realm = if realm.is_empty() { "agora" } else { realm };
                let v = match scheme {
                    Scheme::Bearer => format!(
                        "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                        reason.replace('"', "'")
                    ),
                    Scheme::Basic => format!("Basic realm=\"{realm}\", charset=\"UTF-8\""),
                    Scheme::ApiKey => format!("Bearer realm=\"{realm}\""),
                };
                vec![("www-authenticate", v)]
            }
            Error::McpUnauthenticated { reason, metadata } => vec![(
                "www-authenticate",
                format!(
                    "Bearer resource_metadata=\"{metadata}\", error=\"invalid_token\", \
                     error_description=\"{}\"",
                    reason.replace('"', "'")
                ),
            )],
            Error::RateLimited {
                limit, retry_after, ..
            } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                vec![
                    ("retry-after", secs.max(1).to_string()),
                    ("x-ratelimit-limit", limit.to_string()),
                    ("x-ratelimit-remaining", "0".into()),
                    ("x-ratelimit-reset", secs.max(1).to_string()),
                ]
            }
            _ => vec![],
        }
    }
}
