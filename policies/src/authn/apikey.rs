//! API key authentication: keys are looked up by their SHA-256 digest (no key is compared
//! byte by byte, and none is kept in the clear after config load).

use std::collections::HashMap;
use std::sync::Arc;

use agora_proto::resource as pb;
use sha2::{Digest, Sha256};

use super::{ApiKeyEntry, Mode};
use crate::{Error, Scheme};

/// A stable id for a key without one: a prefix of its digest.
pub fn default_id(key: &str) -> String {
    let d = Sha256::digest(key.as_bytes());
    let hex: String = d[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("key-{hex}")
}

/// A compiled `apiKeyAuthentication`.
#[derive(Debug)]
pub struct ApiKeyAuth {
    mode: Mode,
    header: Option<http::HeaderName>,
    keys: HashMap<[u8; 32], Arc<ApiKeyEntry>>,
}

impl ApiKeyAuth {
    pub fn compile(a: &pb::ApiKeyAuthentication) -> Result<ApiKeyAuth, String> {
        let header = if a.header.is_empty() {
            None
        } else {
            Some(
                http::HeaderName::from_bytes(a.header.as_bytes())
                    .map_err(|e| format!("header {:?}: {e}", a.header))?,
            )
        };
        let mut keys = HashMap::new();
        for k in &a.keys {
            let metadata = if k.metadata_json.is_empty() {
                serde_json::Value::Object(Default::default())
            } else {
                serde_json::from_str(&k.metadata_json)
                    .map_err(|e| format!("key {}: metadata: {e}", k.id))?
            };
            let group = if k.group.is_empty() {
                k.id.clone()
            } else {
                k.group.clone()
            };
            let entry = ApiKeyEntry::new(k.id.clone(), group, metadata);
            let digest: [u8; 32] = Sha256::digest(k.key.as_bytes()).into();
            if keys.insert(digest, Arc::new(entry)).is_some() {
                return Err(format!("key {} is configured twice", k.id));
            }
        }
        Ok(ApiKeyAuth {
            mode: Mode::from_pb(a.mode),
            header,
            keys,
        })
    }

    /// The key's entry, `Ok(None)` without a key when the mode allows it, or a 401.
    pub fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Option<Arc<ApiKeyEntry>>, Error> {
        let sent = match &self.header {
            Some(h) => headers.get(h).and_then(|v| v.to_str().ok()).map(|v| {
                // A custom header may still carry the `Bearer ` prefix.
                v.strip_prefix("Bearer ").unwrap_or(v).trim()
            }),
            None => super::bearer(headers).or_else(|| {
                headers
                    .get("x-api-key")
                    .and_then(|v| v.to_str().ok())
                    .map(str::trim)
            }),
        };
        let outcome = match sent {
            None => Ok(None),
            Some(k) => {
                let digest: [u8; 32] = Sha256::digest(k.as_bytes()).into();
                self.keys
                    .get(&digest)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| unauthenticated("invalid API key"))
            }
        };
        self.mode
            .decide(outcome, || unauthenticated("missing API key"))
    }
}

fn unauthenticated(reason: &str) -> Error {
    Error::Unauthenticated {
        scheme: Scheme::ApiKey,
        reason: reason.into(),
        realm: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(mode: pb::AuthMode, header: &str) -> ApiKeyAuth {
        ApiKeyAuth::compile(&pb::ApiKeyAuthentication {
            mode: mode as i32,
            keys: vec![pb::ApiKey {
                key: "sk-team-a-123456".into(),
                id: "team-a".into(),
                metadata_json: r#"{"team":"a"}"#.into(),
                group: String::new(),
            }],
            header: header.into(),
        })
        .expect("compiles")
    }

    fn h(name: &str, v: &str) -> http::HeaderMap {
        let mut m = http::HeaderMap::new();
        m.insert(
            http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
            v.parse().expect("value"),
        );
        m
    }

    #[test]
    fn bearer_x_api_key_and_custom_header() {
        let a = auth(pb::AuthMode::Strict, "");
        let e = a
            .authenticate(&h("authorization", "Bearer sk-team-a-123456"))
            .expect("valid")
            .expect("identity");
        assert_eq!((e.id.as_str(), e.group.as_str()), ("team-a", "team-a"));
        assert!(a.authenticate(&h("x-api-key", "sk-team-a-123456")).is_ok());
        let err = a
            .authenticate(&h("x-api-key", "sk-wrong"))
            .expect_err("invalid");
        assert_eq!(err.status(), 401);
        let err = a
            .authenticate(&http::HeaderMap::new())
            .expect_err("missing");
        assert!(err.to_string().contains("missing API key"));
        let c = auth(pb::AuthMode::Strict, "x-llm-key");
        assert!(c.authenticate(&h("x-llm-key", "sk-team-a-123456")).is_ok());
        assert!(
            c.authenticate(&h("authorization", "Bearer sk-team-a-123456"))
                .is_err()
        );
    }

    #[test]
    fn modes() {
        let opt = auth(pb::AuthMode::Optional, "");
        assert!(
            opt.authenticate(&http::HeaderMap::new())
                .expect("ok")
                .is_none()
        );
        assert!(opt.authenticate(&h("x-api-key", "nope-nope-nope")).is_err());
        let perm = auth(pb::AuthMode::Permissive, "");
        assert!(
            perm.authenticate(&h("x-api-key", "nope-nope-nope"))
                .expect("ok")
                .is_none()
        );
    }
}
