use super::*;

fn header(user: &str, pass: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    h.insert(
        http::header::AUTHORIZATION,
        format!("Basic {v}").parse().expect("value"),
    );
    h
}

fn auth() -> BasicAuth {
    let bcrypt_hash = bcrypt::hash("s3cret", 4).expect("hash");
    // `htpasswd -s`: {SHA} + base64(sha1("hunter2")).
    let sha = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(b"hunter2"));
    BasicAuth::compile(&pb::BasicAuthentication {
        mode: pb::AuthMode::Strict as i32,
        htpasswd: vec![format!("alice:{bcrypt_hash}"), format!("bob:{{SHA}}{sha}")],
        realm: "llm".into(),
    })
    .expect("compiles")
}

#[test]
fn bcrypt_and_sha1() {
    let a = auth();
    assert_eq!(
        a.authenticate(&header("alice", "s3cret")).expect("ok"),
        Some("alice".into())
    );
    // Second time from the cache.
    assert!(a.authenticate(&header("alice", "s3cret")).is_ok());
    assert_eq!(
        a.authenticate(&header("bob", "hunter2")).expect("ok"),
        Some("bob".into())
    );
    let e = a
        .authenticate(&header("alice", "wrong"))
        .expect_err("bad password");
    assert_eq!(e.status(), 401);
    assert!(e.headers()[0].1.starts_with("Basic realm=\"llm\""));
    assert!(a.authenticate(&header("mallory", "s3cret")).is_err());
    assert!(a.authenticate(&http::HeaderMap::new()).is_err());
}

#[test]
fn bad_lines() {
    assert!(parse_line("alice").is_err());
    assert!(parse_line("alice:$apr1$abc$def").is_err());
    assert!(parse_line("alice:{SHA}bm90c2hh").is_err());
}
