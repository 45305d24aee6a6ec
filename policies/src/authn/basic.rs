//! HTTP basic authentication against htpasswd entries: bcrypt (`$2a$`/`$2b$`/`$2y$`, what
//! `htpasswd -B` writes) and SHA-1 (`{SHA}`). Verified credentials are remembered by digest,
//! so bcrypt's deliberate slowness is paid once per credential, not per request.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use agora_proto::resource as pb;
use base64::Engine;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Mode;
use crate::{Error, Scheme};

#[derive(Debug, Clone)]
pub enum Hash {
    Bcrypt(String),
    Sha1([u8; 20]),
}

/// Parses `user:hash`.
pub fn parse_line(line: &str) -> Result<(String, Hash), String> {
    let (user, hash) = line
        .trim()
        .split_once(':')
        .ok_or("not an htpasswd line (user:hash)")?;
    if user.is_empty() {
        return Err("empty user name".into());
    }
    let hash = if hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$") {
        Hash::Bcrypt(hash.to_string())
    } else if let Some(b64) = hash.strip_prefix("{SHA}") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("user {user}: bad {{SHA}} hash: {e}"))?;
        Hash::Sha1(
            raw.try_into()
                .map_err(|_| format!("user {user}: a {{SHA}} hash has 20 bytes"))?,
        )
    } else {
        return Err(format!(
            "user {user}: unsupported hash (use bcrypt, `htpasswd -B`, or {{SHA}})"
        ));
    };
    Ok((user.to_string(), hash))
}

/// Most verified credentials remembered at once.
const CACHE_LIMIT: usize = 10_000;

/// A compiled `basicAuthentication`.
#[derive(Debug)]
pub struct BasicAuth {
    mode: Mode,
    realm: String,
    users: HashMap<String, Hash>,
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl BasicAuth {
    pub fn compile(b: &pb::BasicAuthentication) -> Result<BasicAuth, String> {
        let mut users = HashMap::new();
        for l in &b.htpasswd {
            let (u, h) = parse_line(l)?;
            users.insert(u, h);
        }
        Ok(BasicAuth {
            mode: Mode::from_pb(b.mode),
            realm: b.realm.clone(),
            users,
            verified: Mutex::default(),
        })
    }

    /// The user name, `Ok(None)` without credentials when the mode allows it, or a 401.
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<Option<String>, Error> {
        let outcome = match credentials(headers) {
            None => Ok(None),
            Some(Err(e)) => Err(self.unauthenticated(&e)),
            Some(Ok((user, pass))) => {
                if self.verify(&user, &pass) {
                    Ok(Some(user))
                } else {
                    Err(self.unauthenticated("invalid user name or password"))
                }
            }
        };
        self.mode
            .decide(outcome, || self.unauthenticated("missing credentials"))
    }

    fn verify(&self, user: &str, pass: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let mut d = Sha256::new();
        d.update(user.as_bytes());
        d.update([0]);
        d.update(pass.as_bytes());
        let digest: [u8; 32] = d.finalize().into();
        if self.verified.lock().is_ok_and(|c| c.contains(&digest)) {
            return true;
        }
        let ok = match hash {
            Hash::Bcrypt(h) => bcrypt::verify(pass, h).unwrap_or(false),
            Hash::Sha1(want) => {
                let got: [u8; 20] = Sha1::digest(pass.as_bytes()).into();
                got.ct_eq(want).into()
            }
        };
        if ok && let Ok(mut c) = self.verified.lock() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(digest);
        }
        ok
    }

    fn unauthenticated(&self, reason: &str) -> Error {
        Error::Unauthenticated {
            scheme: Scheme::Basic,
            reason: reason.into(),
            realm: self.realm.clone(),
        }
    }
}

fn credentials(headers: &http::HeaderMap) -> Option<Result<(String, String), String>> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
            .ok_or_else(|| "malformed basic credentials".to_string()),
    )
}

#[cfg(test)]
mod tests;
