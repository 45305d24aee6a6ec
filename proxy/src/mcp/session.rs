//! Client-facing MCP session ids: the session's state (each target's upstream session id and
//! chosen endpoint, the client's `initialize` parameters) sealed with AES-256-GCM under one
//! configured key. Any replica holding the key can open an id, so a session survives a
//! restart or a re-balance; an id that was tampered with, or sealed for another backend (the
//! backend key is the associated data), does not open. The key is used as is (no derivation);
//! nonces are random 96-bit values, drawn once per session (not per request), which keeps a
//! key well inside GCM's bound of 2^32 random nonces for billions of sessions; rotate the key
//! long before that.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// What a virtual server session remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// again on a replica that has no live connection to it. Kept as raw JSON: opening an id
    /// does not build it into a value.
    #[serde(rename = "i")]
    pub init: Box<RawValue>,
}

impl SessionState {
    /// The client's `initialize` params as a value.
    pub fn init_params(&self) -> serde_json::Value {
        serde_json::from_str(self.init.get()).unwrap_or_default()
    }
}

/// Raw JSON of a value (for [`SessionState::init`]).
pub fn raw(v: &serde_json::Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v)
        .unwrap_or_else(|_| RawValue::from_string("{}".into()).expect("valid JSON"))
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
    key: LessSafeKey,
}

const NONCE: usize = NONCE_LEN;
const TAG: usize = 16;

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte key fits AES-256");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    /// Seals `state`, bound to `scope` (the backend's key): an id sealed for one backend does
    /// not open for another.
    pub fn seal<T: Serialize>(&self, state: &T, scope: &str) -> String {
        let nonce: [u8; NONCE] = rand::random();
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&nonce);
        let _ = serde_json::to_writer(&mut out, state);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(scope.as_bytes()),
                &mut out[NONCE..],
            )
            .expect("sealing a short message cannot fail");
        out.extend_from_slice(tag.as_ref());
        B64.encode(out)
    }

    /// Opens an id sealed for `scope`; `None` for anything else (tampered, foreign, garbage).
    pub fn open<T: for<'de> Deserialize<'de>>(&self, id: &str, scope: &str) -> Option<T> {
        if id.len() > 16 * 1024 {
            return None;
        }
        let mut raw = B64.decode(id.trim()).ok()?;
        if raw.len() < NONCE + TAG {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&raw[..NONCE]).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(scope.as_bytes()), &mut raw[NONCE..])
            .ok()?;
        serde_json::from_slice(plain).ok()
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
            init: raw(&serde_json::json!({"clientInfo": {"name": "t", "version": "1"}})),
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
        let opened = s.open::<SessionState>(&id, "backend/a").expect("opens");
        assert_eq!(opened.targets, state().targets);
        assert_eq!(opened.init_params(), state().init_params());
        // Same state, new nonce: ids differ.
        assert_ne!(id, s.seal(&state(), "backend/a"));
        assert!(s.open::<SessionState>(&id, "backend/b").is_none());
        let mut bytes = id.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).expect("ascii");
        assert!(s.open::<SessionState>(&tampered, "backend/a").is_none());
        assert!(s.open::<SessionState>("garbage", "backend/a").is_none());
        assert!(
            Sealer::new(&[8; 32])
                .open::<SessionState>(&id, "backend/a")
                .is_none()
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
