//! Client-facing MCP session ids: the session's state (each target's upstream session id and
//! chosen endpoint, the client's `initialize` parameters) sealed with XChaCha20-Poly1305 under
//! one configured key. Any replica holding the key can open an id, so a session survives a
//! restart or a re-balance; an id that was tampered with, or sealed for another backend, does
//! not open. The key is used as is (no per-request derivation); nonces are random (192 bits).

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a virtual server session remembers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionState {
    /// Random id naming this session in the replica-local tables (live stdio / SSE
    /// connections), stable for the session's life.
    #[serde(rename = "u")]
    pub uid: u64,
    /// Targets that joined the session (in FailOpen, the unreachable ones are absent).
    #[serde(rename = "t")]
    pub targets: Vec<TargetSession>,
    /// The protocol version the client negotiated.
    #[serde(rename = "v")]
    pub version: String,
    /// The client's `initialize` params (capabilities, clientInfo), to set up a target
    /// again on a replica that has no live connection to it.
    #[serde(rename = "i")]
    pub init: Value,
}

/// One target's part of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetSession {
    #[serde(rename = "n")]
    pub name: String,
    /// The target's `Mcp-Session-Id` (Streamable HTTP targets that issue one).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The endpoint (`ip:port`) the session lives on, for targets with several.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A passthrough session: the upstream's own session id and the endpoint that issued it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    #[serde(rename = "s")]
    pub session: String,
    #[serde(rename = "e")]
    pub endpoint: String,
}

/// Seals and opens session ids.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

const NONCE: usize = 24;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seals `state`, bound to `scope` (the backend's key): an id sealed for one backend does
    /// not open for another.
    pub fn seal<T: Serialize>(&self, state: &T, scope: &str) -> String {
        let plain = serde_json::to_vec(state).unwrap_or_default();
        let nonce: [u8; NONCE] = rand::random();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: scope.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut out = Vec::with_capacity(NONCE + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        B64.encode(out)
    }

    /// Opens an id sealed for `scope`; `None` for anything else (tampered, foreign, garbage).
    pub fn open<T: for<'de> Deserialize<'de>>(&self, id: &str, scope: &str) -> Option<T> {
        if id.len() > 16 * 1024 {
            return None;
        }
        let raw = B64.decode(id.trim()).ok()?;
        if raw.len() < NONCE + 16 {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: scope.as_bytes(),
                },
            )
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

static SEALER: OnceLock<Sealer> = OnceLock::new();

/// Sets the process-wide key from `--mcp-session-key` / `AGORA_MCP_SESSION_KEY`: 64 hex
/// digits or the base64 of 32 bytes. Without one, a random key: sessions then do not
/// survive a restart or move between replicas (a warning says so).
pub fn init(key: Option<&str>) -> Result<(), String> {
    let key = match key {
        Some(k) => parse_key(k)?,
        None => {
            tracing::warn!(
                "no MCP session key (--mcp-session-key / AGORA_MCP_SESSION_KEY): using a random \
                 one, so MCP sessions will not survive a restart or move between replicas"
            );
            rand::random()
        }
    };
    let _ = SEALER.set(Sealer::new(&key));
    Ok(())
}

/// The process-wide sealer (a random key if [`init`] was never called, e.g. in tests).
pub fn sealer() -> &'static Sealer {
    SEALER.get_or_init(|| Sealer::new(&rand::random()))
}

fn parse_key(k: &str) -> Result<[u8; 32], String> {
    let k = k.trim();
    let bytes = if k.len() == 64 && k.chars().all(|c| c.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&k[2 * i..2 * i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|e| e.to_string())?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(k)
            .map_err(|_| "MCP session key: expected 64 hex digits or base64 of 32 bytes")?
    };
    bytes
        .try_into()
        .map_err(|_| "MCP session key: must be exactly 32 bytes".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SessionState {
        SessionState {
            uid: 42,
            targets: vec![TargetSession {
                name: "time".into(),
                session: Some("abc".into()),
                endpoint: Some("10.0.0.1:8000".into()),
            }],
            version: "2025-06-18".into(),
            init: serde_json::json!({"clientInfo": {"name": "t", "version": "1"}}),
        }
    }

    #[test]
    fn seals_opens_and_refuses_tampered_or_foreign_ids() {
        let s = Sealer::new(&[7; 32]);
        let id = s.seal(&state(), "backend/a");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(s.open::<SessionState>(&id, "backend/a"), Some(state()));
        // Same state, new nonce: ids differ.
        assert_ne!(id, s.seal(&state(), "backend/a"));
        assert_eq!(s.open::<SessionState>(&id, "backend/b"), None);
        let mut bytes = id.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(s.open::<SessionState>(&tampered, "backend/a"), None);
        assert_eq!(s.open::<SessionState>("garbage", "backend/a"), None);
        assert_eq!(
            Sealer::new(&[8; 32]).open::<SessionState>(&id, "backend/a"),
            None
        );
    }

    #[test]
    fn keys_in_hex_or_base64() {
        let hex = "00".repeat(31) + "ff";
        assert_eq!(parse_key(&hex).expect("hex")[31], 0xff);
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert_eq!(parse_key(&b64).expect("b64"), [1; 32]);
        assert!(parse_key("short").is_err());
    }
}
