//! JWT authentication: bearer tokens checked against each provider's keys (signature,
//! issuer, audiences, expiry). Keys come inline, from a file, or from a URL the proxy fetches
//! and refreshes ([`JwksHandle::set`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use agora_proto::resource as pb;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::{Claims, Mode};
use crate::{Error, Scheme};

/// Parsed verification keys.
#[derive(Default)]
pub struct KeySet {
    keys: Vec<Key>,
}

struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeySet({} keys)", self.keys.len())
    }
}

impl KeySet {
    /// Parses a JWKS document; keys of unsupported types are skipped, an empty result is an
    /// error.
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS: {e}"))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg: jwk
                    .common
                    .key_algorithm
                    .and_then(|a| Algorithm::try_from(a).ok()),
                key,
            });
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable keys".into());
        }
        Ok(KeySet { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Keys fetched from a URL, shared by every policy (and config generation) naming it, so a
/// config reload does not start from an empty key set.
#[derive(Clone, Default)]
pub struct JwksHandle(Arc<RwLock<Arc<KeySet>>>);

impl JwksHandle {
    pub fn set(&self, keys: KeySet) {
        if let Ok(mut g) = self.0.write() {
            *g = Arc::new(keys);
        }
    }

    pub fn get(&self) -> Arc<KeySet> {
        self.0.read().map(|g| g.clone()).unwrap_or_default()
    }
}

/// Every remote JWKS URL in use, with how often to refresh it.
pub fn remote_jwks() -> Vec<(String, Duration, JwksHandle)> {
    registry()
        .lock()
        .map(|m| {
            m.iter()
                .map(|(u, (r, h))| (u.clone(), *r, h.clone()))
                .collect()
        })
        .unwrap_or_default()
}

type Registry = Mutex<HashMap<String, (Duration, JwksHandle)>>;

fn registry() -> &'static Registry {
    static R: OnceLock<Registry> = OnceLock::new();
    R.get_or_init(Default::default)
}

fn remote(url: &str, refresh: Duration) -> JwksHandle {
    let Ok(mut m) = registry().lock() else {
        return JwksHandle::default();
    };
    let e = m
        .entry(url.to_string())
        .or_insert_with(|| (refresh, JwksHandle::default()));
    e.0 = e.0.min(refresh);
    e.1.clone()
}

#[derive(Debug)]
enum Keys {
    Static(Arc<KeySet>),
    Remote(String, JwksHandle),
}

impl std::fmt::Debug for JwksHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwksHandle({:?})", self.get())
    }
}

#[derive(Debug)]
struct Provider {
    issuer: String,
    audiences: Vec<String>,
    keys: Keys,
}

/// A compiled `jwtAuthentication`.
#[derive(Debug)]
pub struct JwtAuth {
    mode: Mode,
    providers: Vec<Provider>,
    /// Tokens already validated, with their claims, until they expire (at most
    /// [`CACHE_TTL`]): clients send the same token on every request.
    cache: Mutex<HashMap<String, (Arc<Claims>, u64)>>,
    /// MCP authentication: the protected resource metadata's extra fields (RFC 9728).
    mcp_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// How long a validated token is trusted without checking it again.
const CACHE_TTL: u64 = 60;
/// Most tokens remembered at once.
const CACHE_LIMIT: usize = 10_000;

/// Default refresh of remote key sets.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

impl JwtAuth {
    /// Compiles the proto form; a `file` is read here (config load).
    pub fn compile(j: &pb::JwtAuthentication) -> Result<JwtAuth, String> {
        let mut providers = Vec::new();
        for p in &j.providers {
            let keys = match &p.jwks {
                Some(pb::jwt_provider::Jwks::Inline(s)) => {
                    Keys::Static(Arc::new(KeySet::parse(s.as_bytes())?))
                }
                Some(pb::jwt_provider::Jwks::File(f)) => {
                    let data = std::fs::read(f).map_err(|e| format!("JWKS file {f}: {e}"))?;
                    Keys::Static(Arc::new(
                        KeySet::parse(&data).map_err(|e| format!("JWKS file {f}: {e}"))?,
                    ))
                }
                Some(pb::jwt_provider::Jwks::Url(u)) => {
                    let refresh = p.refresh.map(Duration::from).unwrap_or(DEFAULT_REFRESH);
                    Keys::Remote(u.clone(), remote(u, refresh))
                }
                None => return Err(format!("JWT provider {}: no keys", p.issuer)),
            };
            providers.push(Provider {
                issuer: p.issuer.clone(),
                audiences: p.audiences.clone(),
                keys,
            });
        }
        let mcp_metadata = match j.mcp_resource_metadata.as_str() {
            "" => None,
            m => Some(serde_json::from_str(m).map_err(|e| format!("MCP resource metadata: {e}"))?),
        };
        Ok(JwtAuth {
            mode: Mode::from_pb(j.mode),
            providers,
            cache: Mutex::default(),
            mcp_metadata,
        })
    }

    /// The RFC 9728 protected resource metadata of MCP authentication for the resource at
    /// `resource` (the URL clients reach it by); `None` unless MCP authentication is on.
    pub fn mcp_metadata(&self, resource: &str) -> Option<serde_json::Value> {
        let extra = self.mcp_metadata.as_ref()?;
        let mut m = serde_json::Map::new();
        m.insert("resource".into(), resource.into());
        m.insert(
            "authorization_servers".into(),
            self.providers
                .iter()
                .map(|p| serde_json::Value::from(p.issuer.clone()))
                .collect(),
        );
        m.insert(
            "bearer_methods_supported".into(),
            serde_json::json!(["header"]),
        );
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
        Some(serde_json::Value::Object(m))
    }

    /// Whether a 401 must name the MCP resource metadata.
    pub fn is_mcp(&self) -> bool {
        self.mcp_metadata.is_some()
    }

    /// Validates the bearer token: `Ok(Some(claims))`, `Ok(None)` when no token was sent and
    /// the mode allows it, or a 401.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Option<Arc<Claims>>, Error> {
        let outcome = match super::bearer(headers) {
            None => Ok(None),
            Some(token) => self.validate_cached(token).map(Some),
        };
        self.mode
            .decide(outcome, || unauthenticated("missing bearer token"))
    }

    fn validate_cached(&self, token: &str) -> Result<Arc<Claims>, Error> {
        let now = crate::unix_now();
        if let Ok(c) = self.cache.lock()
            && let Some((claims, until)) = c.get(token)
            && now < *until
        {
            return Ok(claims.clone());
        }
        let claims = Arc::new(Claims::new(self.validate(token)?));
        let exp = claims.json.get("exp").and_then(serde_json::Value::as_u64);
        let until = exp.map_or(now + CACHE_TTL, |e| e.min(now + CACHE_TTL));
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_LIMIT {
                c.retain(|_, (_, u)| *u > now);
                if c.len() >= CACHE_LIMIT {
                    c.clear();
                }
            }
            c.insert(token.to_string(), (claims.clone(), until));
        }
        Ok(claims)
    }

    /// Checks one token against every provider; the first that accepts it wins.
    pub fn validate(&self, token: &str) -> Result<serde_json::Value, Error> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| unauthenticated(format!("malformed token: {e}")))?;
        let mut last = String::from("no key matches the token");
        for p in &self.providers {
            let set = match &p.keys {
                Keys::Static(k) => k.clone(),
                Keys::Remote(url, h) => {
                    let k = h.get();
                    if k.is_empty() {
                        last = format!("keys from {url} are not loaded yet");
                        continue;
                    }
                    k
                }
            };
            for k in &set.keys {
                if header.kid.is_some() && k.kid.is_some() && header.kid != k.kid {
                    continue;
                }
                if k.alg.is_some_and(|a| a != header.alg) || k.key.family() != header.alg.family() {
                    continue;
                }
                let mut v = Validation::new(header.alg);
                v.set_issuer(&[&p.issuer]);
                if p.audiences.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&p.audiences);
                }
                v.leeway = 30;
                match jsonwebtoken::decode::<serde_json::Value>(token, &k.key, &v) {
                    Ok(d) => return Ok(d.claims),
                    Err(e) => last = describe(&e),
                }
            }
        }
        Err(unauthenticated(last))
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "token expired".into(),
        K::ImmatureSignature => "token not valid yet".into(),
        K::InvalidSignature => "invalid signature".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        other => format!("invalid token: {other:?}"),
    }
}

fn unauthenticated(reason: impl Into<String>) -> Error {
    Error::Unauthenticated {
        scheme: Scheme::Bearer,
        reason: reason.into(),
        realm: String::new(),
    }
}

#[cfg(test)]
mod tests;
