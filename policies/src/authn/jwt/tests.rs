use super::*;
use base64::Engine;
use jsonwebtoken::{EncodingKey, Header, encode};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn jwks(kid: &str) -> String {
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SECRET);
    format!(r#"{{"keys":[{{"kty":"oct","kid":"{kid}","alg":"HS256","k":"{k}"}}]}}"#)
}

fn auth(mode: pb::AuthMode) -> JwtAuth {
    JwtAuth::compile(&pb::JwtAuthentication {
        mode: mode as i32,
        providers: vec![pb::JwtProvider {
            issuer: "https://issuer.example".into(),
            audiences: vec!["agora".into()],
            jwks: Some(pb::jwt_provider::Jwks::Inline(jwks("k1"))),
            refresh: None,
        }],
        mcp_resource_metadata: String::new(),
    })
    .expect("compiles")
}

#[test]
fn mcp_authentication_publishes_resource_metadata() {
    assert!(!auth(pb::AuthMode::Strict).is_mcp());
    let a = JwtAuth::compile(&pb::JwtAuthentication {
        mode: 0,
        providers: vec![pb::JwtProvider {
            issuer: "https://issuer.example".into(),
            audiences: vec![],
            jwks: Some(pb::jwt_provider::Jwks::Inline(jwks("k1"))),
            refresh: None,
        }],
        mcp_resource_metadata: r#"{"scopes_supported":["tools"]}"#.into(),
    })
    .expect("compiles");
    assert!(a.is_mcp());
    assert_eq!(
        a.mcp_metadata("https://gw.example/mcp"),
        Some(serde_json::json!({
            "resource": "https://gw.example/mcp",
            "authorization_servers": ["https://issuer.example"],
            "bearer_methods_supported": ["header"],
            "scopes_supported": ["tools"],
        }))
    );
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn token(claims: serde_json::Value, secret: &[u8], kid: &str) -> String {
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some(kid.into());
    encode(&h, &claims, &EncodingKey::from_secret(secret)).expect("encode")
}

fn good_claims() -> serde_json::Value {
    serde_json::json!({"iss": "https://issuer.example", "aud": "agora", "sub": "alice", "exp": now() + 600})
}

fn bearer(t: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {t}").parse().expect("value"),
    );
    h
}

fn reason(e: Error) -> String {
    match e {
        Error::Unauthenticated { reason, .. } => reason,
        other => panic!("not a 401: {other}"),
    }
}

#[test]
fn valid_token_yields_claims() {
    let a = auth(pb::AuthMode::Strict);
    let c = a
        .authenticate(&bearer(&token(good_claims(), SECRET, "k1")))
        .expect("valid")
        .expect("claims");
    assert_eq!(c.json["sub"], "alice");
}

#[test]
fn rejections_say_why() {
    let a = auth(pb::AuthMode::Strict);
    let mut expired = good_claims();
    expired["exp"] = (now() - 3600).into();
    assert_eq!(
        reason(
            a.authenticate(&bearer(&token(expired, SECRET, "k1")))
                .expect_err("expired")
        ),
        "token expired"
    );
    let bad_sig = token(good_claims(), b"another-secret-another-secret-xx", "k1");
    assert_eq!(
        reason(a.authenticate(&bearer(&bad_sig)).expect_err("signature")),
        "invalid signature"
    );
    let mut aud = good_claims();
    aud["aud"] = "someone-else".into();
    assert_eq!(
        reason(
            a.authenticate(&bearer(&token(aud, SECRET, "k1")))
                .expect_err("aud")
        ),
        "wrong audience"
    );
    let mut iss = good_claims();
    iss["iss"] = "https://evil.example".into();
    assert_eq!(
        reason(
            a.authenticate(&bearer(&token(iss, SECRET, "k1")))
                .expect_err("iss")
        ),
        "wrong issuer"
    );
    assert!(
        reason(a.authenticate(&bearer("not.a.jwt")).expect_err("malformed"))
            .starts_with("malformed token")
    );
    assert_eq!(
        reason(
            a.authenticate(&http::HeaderMap::new())
                .expect_err("missing")
        ),
        "missing bearer token"
    );
    // An unknown key id matches no key.
    let other_kid = token(good_claims(), SECRET, "k2");
    assert!(a.authenticate(&bearer(&other_kid)).is_err());
}

#[test]
fn optional_and_permissive() {
    let o = auth(pb::AuthMode::Optional);
    assert!(
        o.authenticate(&http::HeaderMap::new())
            .expect("ok")
            .is_none()
    );
    assert!(o.authenticate(&bearer("not.a.jwt")).is_err());
    let p = auth(pb::AuthMode::Permissive);
    assert!(p.authenticate(&bearer("not.a.jwt")).expect("ok").is_none());
}

#[test]
fn remote_keys_arrive_later() {
    let a = JwtAuth::compile(&pb::JwtAuthentication {
        mode: 0,
        providers: vec![pb::JwtProvider {
            issuer: "https://issuer.example".into(),
            audiences: vec![],
            jwks: Some(pb::jwt_provider::Jwks::Url(
                "https://idp.test/jwks-unit".into(),
            )),
            refresh: None,
        }],
        mcp_resource_metadata: String::new(),
    })
    .expect("compiles");
    let t = token(good_claims(), SECRET, "k1");
    assert!(reason(a.authenticate(&bearer(&t)).expect_err("no keys")).contains("not loaded yet"));
    let (_, refresh, handle) = remote_jwks()
        .into_iter()
        .find(|(u, ..)| u == "https://idp.test/jwks-unit")
        .expect("registered");
    assert_eq!(refresh, DEFAULT_REFRESH);
    handle.set(KeySet::parse(jwks("k1").as_bytes()).expect("jwks"));
    assert!(a.authenticate(&bearer(&t)).is_ok());
}
