use super::*;

#[test]
fn card_paths() {
    assert_eq!(card_prefix("/.well-known/agent-card.json"), Some(""));
    assert_eq!(
        card_prefix("/planner/.well-known/agent.json"),
        Some("/planner")
    );
    assert_eq!(card_prefix("/planner/rpc"), None);
}

#[test]
fn card_urls_point_at_the_gateway() {
    let v03 = serde_json::json!({
        "name": "planner", "protocolVersion": "0.3.0",
        "url": "http://10.0.0.7:9999/",
        "additionalInterfaces": [{"url": "http://10.0.0.7:9999/", "transport": "JSONRPC"}],
        "skills": [{"id": "plan", "examples": ["http://example.com/not-a-url-field"]}],
    });
    let out = rewrite_card(
        v03.to_string().as_bytes(),
        "https://gw.example.com/planner",
        "",
    )
    .expect("json");
    let out: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(out["url"], "https://gw.example.com/planner/");
    assert_eq!(
        out["additionalInterfaces"][0]["url"],
        "https://gw.example.com/planner/"
    );
    assert_eq!(
        out["skills"][0]["examples"][0],
        "http://example.com/not-a-url-field"
    );
    let v10 = serde_json::json!({
        "name": "planner",
        "supportedInterfaces": [{"url": "http://agent:8000/a2a/v1", "protocolBinding": "JSONRPC"}],
    });
    let out =
        rewrite_card(v10.to_string().as_bytes(), "http://gw:8080/agents", "/a2a").expect("json");
    let out: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(
        out["supportedInterfaces"][0]["url"],
        "http://gw:8080/agents/v1"
    );
    assert!(rewrite_card(b"not json", "http://gw", "").is_none());
}

#[test]
fn classify_v03_and_v10() {
    let send = br#"{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","parts":[{"kind":"text","text":"hi"}],"messageId":"m1"}}}"#;
    let (call, body) = classify(send, || "ctx-new".into()).expect("valid");
    assert_eq!(
        (call.kind, call.context_id.as_deref()),
        ("message/send", Some("ctx-new"))
    );
    let body: Value = serde_json::from_slice(&body.expect("rewritten")).expect("json");
    assert_eq!(body["params"]["message"]["contextId"], "ctx-new");
    assert_eq!(body["params"]["message"]["messageId"], "m1");

    let follow = br#"{"jsonrpc":"2.0","id":"2","method":"SendStreamingMessage","params":{"message":{"contextId":"c1","taskId":"t1","parts":[]}}}"#;
    let (call, body) = classify(follow, || unreachable!()).expect("valid");
    assert_eq!(call.kind, "message/stream");
    assert_eq!(call.sticky_key(), Some("c1"));
    assert!(body.is_none());

    let get = br#"{"jsonrpc":"2.0","id":3,"method":"tasks/get","params":{"id":"t9"}}"#;
    let (call, _) = classify(get, || unreachable!()).expect("valid");
    assert_eq!((call.kind, call.sticky_key()), ("tasks/get", Some("t9")));
    let get10 = br#"{"jsonrpc":"2.0","id":3,"method":"GetTask","params":{"name":"tasks/t9"}}"#;
    assert_eq!(
        classify(get10, || unreachable!())
            .expect("valid")
            .0
            .sticky_key(),
        Some("t9")
    );

    let e = classify(b"{oops", String::new).expect_err("parse");
    assert_eq!(e.code, PARSE_ERROR);
    let e = classify(br#"{"jsonrpc":"2.0","id":7}"#, String::new).expect_err("no method");
    assert_eq!(
        (e.code, e.id.clone()),
        (INVALID_REQUEST, serde_json::json!(7))
    );
    let body: Value = serde_json::from_slice(&error_body(&e.id, e.code, &e.message)).expect("json");
    assert_eq!(body["error"]["code"], -32600);
    assert_eq!(body["id"], 7);
}

#[test]
fn task_ids_in_answers() {
    let v10 = br#"{"jsonrpc":"2.0","id":"1","result":{"task":{"id":"t1","contextId":"c1"}}}"#;
    assert_eq!(task_ids(v10), vec!["t1"]);
    let v03 = br#"{"jsonrpc":"2.0","id":1,"result":{"kind":"task","id":"t2","contextId":"c"}}"#;
    assert_eq!(task_ids(v03), vec!["t2"]);
    let sse = b"data: {\"jsonrpc\":\"2.0\",\"result\":{\"task\":{\"id\":\"t3\"}}}\n\ndata: {\"result\":{\"statusUpdate\":{\"taskId\":\"t3\"}}}\n\n";
    assert_eq!(task_ids(sse), vec!["t3"]);
    let msg = br#"{"jsonrpc":"2.0","result":{"message":{"messageId":"m"}}}"#;
    assert!(task_ids(msg).is_empty());
}

#[test]
fn calls_naming_a_known_task_follow_its_conversation() {
    tasks::learn("task-42", "ctx-42");
    let get = br#"{"jsonrpc":"2.0","id":3,"method":"GetTask","params":{"id":"task-42"}}"#;
    let (mut call, _) = classify(get, || unreachable!()).expect("valid");
    call.resolve_context();
    assert_eq!(call.sticky_key(), Some("ctx-42"));
}
