use super::*;
use crate::authn::{ApiKeyEntry, Identity};

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
            http::HeaderValue::from_str(v).expect("value"),
        );
    }
    h
}

fn eval(src: &str, identity: &Identity, llm: Option<&LlmAttrs>) -> Result<bool, String> {
    let h = headers(&[("x-team", "ml-platform"), ("accept", "a"), ("accept", "b")]);
    let e = Expr::compile(src)?;
    let a = Attributes {
        request: RequestView {
            method: "POST",
            path: "/v1/chat/completions",
            host: "api.example.com",
            headers: &h,
        },
        source: Some("10.1.2.3:5555".parse().expect("addr")),
        identity,
        llm,
        mcp: None,
        a2a: None,
    };
    e.eval_bool(&a.context(e.uses()))
}

#[test]
fn request_source_and_headers() {
    let id = Identity::default();
    assert_eq!(
        eval(r#"request.headers["x-team"] == "ml-platform""#, &id, None),
        Ok(true)
    );
    assert_eq!(
        eval(r#"request.headers["accept"] == "a,b""#, &id, None),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"request.method == "POST" && request.path.startsWith("/v1/")"#,
            &id,
            None
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"source.address == "10.1.2.3" && source.port == 5555"#,
            &id,
            None
        ),
        Ok(true)
    );
    assert_eq!(
        eval(r#"request.host.endsWith(".example.com")"#, &id, None),
        Ok(true)
    );
}

#[test]
fn jwt_api_key_and_llm() {
    let id = Identity {
        jwt: Some(Arc::new(crate::authn::Claims::new(
            serde_json::json!({"sub": "alice", "groups": ["eng", "ml"], "tier": 3}),
        ))),
        api_key: Some(Arc::new(ApiKeyEntry::new(
            "team-a".into(),
            "ml".into(),
            serde_json::json!({"team": "ml-platform", "limit": 10}),
        ))),
        basic_user: None,
    };
    let llm = LlmAttrs {
        request_model: "gpt-4o".into(),
        provider: "openai".into(),
        input_tokens: 12,
        ..Default::default()
    };
    assert_eq!(
        eval(
            r#"jwt.sub == "alice" && "ml" in jwt.groups && jwt.tier > 2"#,
            &id,
            None
        ),
        Ok(true)
    );
    assert_eq!(
        eval(r#"jwt.groups.exists(g, g == "ml")"#, &id, None),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"apiKey.team == "ml-platform" && apiKey.metadata.limit == 10 && apiKey.id == "team-a""#,
            &id,
            None
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"llm.requestModel.startsWith("gpt-") && llm.inputTokens < 100u"#,
            &id,
            Some(&llm)
        ),
        Ok(true)
    );
    // Absent credentials are empty maps: `has` tests for them, field access is an error.
    let anon = Identity::default();
    assert_eq!(eval("has(jwt.sub)", &anon, None), Ok(false));
    assert!(eval(r#"jwt.sub == "alice""#, &anon, None).is_err());
}

#[test]
fn compile_errors_name_the_expression() {
    let e = Expr::compile("request.path ==").expect_err("parse error");
    assert!(e.contains("request.path =="), "{e}");
    let e = Expr::compile("reqest.path == '/'").expect_err("unknown variable");
    assert!(e.contains("unknown variable \"reqest\""), "{e}");
    assert!(
        eval("request.path", &Identity::default(), None).is_err(),
        "not a boolean"
    );
}

#[test]
fn expressions_are_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Expr>();
}
