//! Authentication: each method reads its credential from the request headers and either
//! yields an identity, yields nothing (no credential, and the mode allows that), or fails
//! with a 401 naming what was wrong.

pub mod apikey;
pub mod basic;
pub mod jwt;

use std::sync::Arc;

use agora_proto::resource as pb;

use crate::cel::CelVal;

/// Who the request is, as far as the policies established.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Validated JWT claims (with their CEL form, converted once per token).
    pub jwt: Option<Arc<Claims>>,
    pub api_key: Option<Arc<ApiKeyEntry>>,
    pub basic_user: Option<String>,
}

/// Validated JWT claims.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub json: serde_json::Value,
    /// The claims as CEL sees them (`jwt`), converted once per token.
    pub cel: CelVal,
}

impl Claims {
    pub fn new(json: serde_json::Value) -> Claims {
        let cel = CelVal::from_json(&json);
        Claims { json, cel }
    }
}

/// A configured API key, without the key itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyEntry {
    pub id: String,
    /// Budget group (the id when not set).
    pub group: String,
    /// A JSON object.
    pub metadata: serde_json::Value,
    /// The key as CEL sees it (`apiKey`): `id`, `group`, `metadata`, and the metadata's
    /// keys; converted once per config.
    pub cel: CelVal,
}

impl ApiKeyEntry {
    pub fn new(id: String, group: String, metadata: serde_json::Value) -> ApiKeyEntry {
        let mut e = ApiKeyEntry {
            id,
            group,
            metadata,
            cel: CelVal::empty(),
        };
        e.cel = CelVal::from_value(e.cel_value());
        e
    }

    fn cel_value(&self) -> cel::Value {
        let mut m: std::collections::HashMap<String, cel::Value> = std::collections::HashMap::new();
        if let serde_json::Value::Object(o) = &self.metadata {
            for (k, v) in o {
                if let Ok(v) = cel::to_value(v) {
                    m.insert(k.clone(), v);
                }
            }
        }
        if let Ok(v) = cel::to_value(&self.metadata) {
            m.insert("metadata".into(), v);
        }
        m.insert("id".into(), cel::Value::from(self.id.clone()));
        m.insert("group".into(), cel::Value::from(self.group.clone()));
        cel::Value::from(m)
    }
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
