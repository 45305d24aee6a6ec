//! Authentication: each method reads its credential from the request headers and either
//! yields an identity, yields nothing (no credential, and the mode allows that), or fails
//! with a 401 naming what was wrong.

pub mod apikey;
pub mod basic;
pub mod jwt;

use std::sync::Arc;

use agora_proto::resource as pb;

/// Who the request is, as far as the policies established.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Validated JWT claims.
    pub jwt: Option<Arc<serde_json::Value>>,
    pub api_key: Option<Arc<ApiKeyEntry>>,
    pub basic_user: Option<String>,
}

/// A configured API key, without the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyEntry {
    pub id: String,
    /// Budget group (the id when not set).
    pub group: String,
    /// A JSON object.
    pub metadata: serde_json::Value,
}

/// How a missing or invalid credential is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A valid credential is required.
    Strict,
    /// No credential is fine; an invalid one is rejected.
    Optional,
    /// Invalid credentials are ignored.
    Permissive,
}

impl Mode {
    pub fn from_pb(m: i32) -> Mode {
        match pb::AuthMode::try_from(m).unwrap_or(pb::AuthMode::Strict) {
            pb::AuthMode::Strict => Mode::Strict,
            pb::AuthMode::Optional => Mode::Optional,
            pb::AuthMode::Permissive => Mode::Permissive,
        }
    }

    /// Applies the mode to the outcome of checking a credential: `Ok(None)` means "no
    /// credential was sent".
    pub(crate) fn decide<T>(
        self,
        outcome: Result<Option<T>, crate::Error>,
        missing: impl FnOnce() -> crate::Error,
    ) -> Result<Option<T>, crate::Error> {
        match (self, outcome) {
            (_, Ok(Some(v))) => Ok(Some(v)),
            (Mode::Strict, Ok(None)) => Err(missing()),
            (_, Ok(None)) => Ok(None),
            (Mode::Permissive, Err(_)) => Ok(None),
            (_, Err(e)) => Err(e),
        }
    }
}

/// The bearer token of an `Authorization` header, if any.
pub(crate) fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
