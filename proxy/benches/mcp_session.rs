//! Cost of sealing and opening a virtual MCP server's session id (`mcp::session`): every
//! request to the virtual server opens the client's id, every `initialize` seals one.
//!
//! A realistic state: three Streamable HTTP targets, each with a 32-hex upstream session id
//! and an `ip:port` endpoint, and the `initialize` params of a real client. After a warm-up,
//! seals and opens are timed in `ROUNDS` rounds; the median round is reported.
//!
//! Also times the parts, for where the cost goes: the state's JSON (encode, decode), the AEAD
//! (encrypt, decrypt) and base64 (encode, decode), each on its own.
//!
//! Run: `cargo bench -p agora-proxy --bench mcp_session` (iterations: `MCP_SESSION_ITERS`,
//! default 200000 per operation). Besides the text, prints `key=value` lines that
//! `load-tests/bench.sh` (SCENARIO=mcp) puts in its report.

use std::hint::black_box;
use std::time::Instant;

use agora_proxy::mcp::session::{Sealer, SessionState, TargetSession, raw};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use serde_json::json;

const ROUNDS: usize = 5;
const SCOPE: &str = "agentgateway-system/mcp-tools";

fn state() -> SessionState {
    let target = |name: &str, session: &str, endpoint: &str| TargetSession {
        name: name.into(),
        session: Some(session.into()),
        endpoint: Some(endpoint.into()),
    };
    SessionState {
        uid: 0x9f3c_52e1_07ab_44d6,
        targets: vec![
            target(
                "github",
                "3f9a1c0e7b2d48e6a5c1f0d9e8b7a6c5",
                "10.42.1.17:8080",
            ),
            target(
                "filesystem",
                "b41e9d2c6a7f40358e1d2c3b4a596877",
                "10.42.3.5:3000",
            ),
            target(
                "search",
                "0d8c7b6a5f4e3d2c1b0a99887766aa55",
                "10.42.2.201:8000",
            ),
        ],
        version: "2025-06-18".into(),
        init: raw(&json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {
                "sampling": {},
                "elicitation": {},
                "roots": {"listChanged": true},
            },
            "clientInfo": {"name": "claude-code", "title": "Claude Code", "version": "1.0.83"},
        })),
    }
}

/// Runs `op` `n` times; ns per call.
fn time(n: usize, mut op: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        op();
    }
    t.elapsed().as_nanos() as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let iters: usize = std::env::var("MCP_SESSION_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= ROUNDS)
        .unwrap_or(200_000);
    let per_round = iters / ROUNDS;
    let sealer = Sealer::new(&[0x5a; 32]);
    let state = state();
    let id = sealer.seal(&state, SCOPE);
    let opened = sealer
        .open::<SessionState>(&id, SCOPE)
        .expect("a sealed id opens");
    assert_eq!(
        (opened.targets.clone(), opened.init_params()),
        (state.targets.clone(), state.init_params()),
        "a sealed id must open to the same state"
    );
    let state_json = serde_json::to_vec(&state).map_or(0, |v| v.len());

    let seal = || {
        black_box(sealer.seal(black_box(&state), black_box(SCOPE)));
    };
    let open = || {
        black_box(sealer.open::<SessionState>(black_box(&id), black_box(SCOPE)));
    };
    // Warm-up: caches, the allocator, the thread's RNG.
    time(per_round / 4 + 1, seal);
    time(per_round / 4 + 1, open);

    let (mut seals, mut opens) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        seals.push(time(per_round, seal));
        opens.push(time(per_round, open));
    }
    let (seal_ns, open_ns) = (median(seals.clone()), median(opens.clone()));

    // The parts, one at a time (median of ROUNDS rounds each).
    let plain = serde_json::to_vec(&state).unwrap_or_default();
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[0x5a; 32]).expect("key"));
    let nonce = [7u8; 12];
    let encrypt = |buf: &mut Vec<u8>| {
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(SCOPE.as_bytes()),
            buf,
        )
        .ok()
    };
    let mut sealed = plain.clone();
    encrypt(&mut sealed);
    let raw = [&nonce[..], &sealed].concat();
    let part = |op: &mut dyn FnMut()| {
        time(per_round / 4 + 1, &mut *op);
        median((0..ROUNDS).map(|_| time(per_round, &mut *op)).collect())
    };
    let parts = [
        (
            "json_encode_ns",
            part(&mut || {
                black_box(serde_json::to_vec(black_box(&state)).unwrap_or_default());
            }),
        ),
        (
            "json_decode_ns",
            part(&mut || {
                black_box(serde_json::from_slice::<SessionState>(black_box(&plain)).ok());
            }),
        ),
        (
            "aead_encrypt_ns",
            part(&mut || {
                let mut buf = black_box(&plain).clone();
                black_box(encrypt(&mut buf));
            }),
        ),
        (
            "aead_decrypt_ns",
            part(&mut || {
                let mut buf = black_box(&sealed).clone();
                black_box(
                    key.open_in_place(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(SCOPE.as_bytes()),
                        &mut buf,
                    )
                    .is_ok(),
                );
            }),
        ),
        (
            "b64_encode_ns",
            part(&mut || {
                black_box(B64.encode(black_box(&raw)));
            }),
        ),
        (
            "b64_decode_ns",
            part(&mut || {
                black_box(B64.decode(black_box(&id)).ok());
            }),
        ),
    ];
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.0}..{hi:.0}")
    };

    println!(
        "mcp_session: {} targets, state {state_json} B of JSON, id {} B (URL-safe base64 of \
         nonce + ciphertext + tag)",
        state.targets.len(),
        id.len()
    );
    println!(
        "seal: {seal_ns:.0} ns/op (rounds {} ns), open: {open_ns:.0} ns/op (rounds {} ns); \
         {ROUNDS} rounds x {per_round} ops",
        range(&seals),
        range(&opens)
    );
    println!(
        "parts (ns/op): {}",
        parts
            .iter()
            .map(|(k, v)| format!("{} {v:.0}", k.trim_end_matches("_ns")))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("targets={}", state.targets.len());
    println!("state_json_bytes={state_json}");
    println!("id_bytes={}", id.len());
    println!("seal_ns={seal_ns:.0}");
    println!("open_ns={open_ns:.0}");
    println!("ops={}", per_round * ROUNDS);
    for (k, v) in parts {
        println!("{k}={v:.0}");
    }
}
