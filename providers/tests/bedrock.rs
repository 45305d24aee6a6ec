//! Bedrock Converse requests and whole responses: golden snapshots of every translation
//! pair, and malformed input (errors, never panics). Streams are in `bedrock_stream.rs`,
//! SigV4 signing in `bedrock_sigv4.rs`.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::{ClientApi, Error, WireFormat, translate_request, translate_response};
use serde_json::{Value, json};

/// Replaces the random response ids (`chatcmpl-bdrk-<16 hex>`, `msg_bdrk_<16 hex>`) with
/// `<id>` so outputs compare and snapshot stably.
fn normalize_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("bdrk") {
        let (head, tail) = rest.split_at(i + 4);
        out.push_str(head);
        let id = tail.get(1..17).filter(|id| {
            matches!(tail.as_bytes()[0], b'-' | b'_') && id.bytes().all(|b| b.is_ascii_hexdigit())
        });
        match id {
            Some(_) => {
                out.push_str(&tail[..1]);
                out.push_str("<id>");
                rest = &tail[17..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn request(api: ClientApi, body: Value, model: Option<&str>) -> String {
    let t =
        translate_request(api, WireFormat::Bedrock, body.to_string().as_bytes(), model).unwrap();
    format!(
        "path: {}\nstream: {}\nhide_usage_chunk: {}\nbody: {}\n",
        t.path,
        t.stream,
        t.hide_usage_chunk,
        pretty(&t.body.unwrap())
    )
}

fn pretty(bytes: &[u8]) -> String {
    let mut v: Value = serde_json::from_slice(bytes).expect("output is JSON");
    v.sort_all_objects();
    serde_json::to_string_pretty(&v).unwrap()
}

fn response(api: ClientApi, body: Value) -> String {
    let (out, usage) =
        translate_response(api, WireFormat::Bedrock, body.to_string().as_bytes()).unwrap();
    format!(
        "usage: {}\nbody: {}\n",
        serde_json::to_string(&usage).unwrap(),
        normalize_ids(&pretty(&out.unwrap()))
    )
}
// Requests.

fn chat_request() -> Value {
    json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What's the weather in Paris and Tokyo? Here is a map."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}},
                {"type": "file", "file": {"filename": "forecast notes.pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="}}
            ]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris, France\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C, sunny"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "24°C, humid"}]},
            {"role": "user", "content": "And tomorrow?"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}},
            {"type": "function", "function": {"name": "no_params"}}
        ],
        "tool_choice": "required",
        "max_completion_tokens": 1024,
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "seed": 7,
        "user": "u-1"
    })
}

#[test]
fn request_chat_to_converse_tools_images_system() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        chat_request(),
        Some("anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ));
}

#[test]
fn request_chat_to_converse_stream() {
    let body = json!({
        "model": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": true,
        "stop": "STOP",
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}}
    });
    insta::assert_snapshot!(request(ClientApi::ChatCompletions, body, None));
}

#[test]
fn request_chat_stream_usage_and_tool_choice_none() {
    let base = json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "none"
    });
    let t = translate_request(
        ClientApi::ChatCompletions,
        WireFormat::Bedrock,
        base.to_string().as_bytes(),
        None,
    )
    .unwrap();
    assert!(t.stream && !t.hide_usage_chunk);
    assert_eq!(t.path, "/model/m/converse-stream");
    let v: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
    // `none` without tool blocks in the conversation: no tools at all.
    assert!(v.get("toolConfig").is_none(), "{v}");

    // With tool blocks, the tools stay (Bedrock needs them) but there is no toolChoice.
    let mut body = chat_request();
    body["tool_choice"] = "none".into();
    let t = translate_request(
        ClientApi::ChatCompletions,
        WireFormat::Bedrock,
        body.to_string().as_bytes(),
        None,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&t.body.unwrap()).unwrap();
    assert_eq!(v["toolConfig"]["tools"].as_array().unwrap().len(), 2);
    assert!(v["toolConfig"].get("toolChoice").is_none());
    assert_eq!(t.path, "/model/gpt-4.1/converse");
}

#[test]
fn request_messages_to_converse() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "system": [
            {"type": "text", "text": "You are a weather assistant."},
            {"type": "text", "text": "Long reference text.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": "What's the weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Use the tool.", "signature": "sig=="},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
                    {"type": "text", "text": "timeout"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
                ]},
                {"type": "text", "text": "Thanks. And this chart?", "cache_control": {"type": "ephemeral"}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGRg=="}},
                {"type": "document", "title": "report.v2", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}}
            ]},
            {"role": "user", "content": "One more thing."}
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}, "cache_control": {"type": "ephemeral"}},
            {"type": "custom", "name": "noop"}
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
        "stop_sequences": ["END", "STOP"],
        "temperature": 1,
        "top_p": 0.95,
        "top_k": 40,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "metadata": {"user_id": "u-1"},
        "stream": true
    });
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        body,
        Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ));
}

// Whole responses.

fn converse_tools_response() -> Value {
    json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Two cities: two calls.", "signature": "EqoBsig=="}}},
            {"text": "Let me check both cities."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Paris, France"}}},
            {"toolUse": {"toolUseId": "tooluse_2", "name": "get_weather", "input": {"location": "Tokyo, Japan", "unit": "celsius"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 412, "outputTokens": 87, "totalTokens": 3059, "cacheReadInputTokens": 2048, "cacheWriteInputTokens": 512},
        "metrics": {"latencyMs": 1834}
    })
}

#[test]
fn response_converse_to_chat_text() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "Hello! "}, {"text": "How can I help?"}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 9, "totalTokens": 21},
        "metrics": {"latencyMs": 420}
    });
    insta::assert_snapshot!(response(ClientApi::ChatCompletions, body));
}

#[test]
fn response_converse_to_chat_tools_reasoning() {
    insta::assert_snapshot!(response(
        ClientApi::ChatCompletions,
        converse_tools_response()
    ));
}

#[test]
fn response_converse_to_messages_tools_reasoning() {
    insta::assert_snapshot!(response(ClientApi::Messages, converse_tools_response()));
}

#[test]
fn response_converse_to_messages_stop_sequence_and_redacted() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"redactedContent": "ZW5jcnlwdGVk"}},
            {"text": "Autumn moonlight"}
        ]}},
        "stopReason": "stop_sequence",
        "additionalModelResponseFields": {"stop_sequence": "END"},
        "usage": {"inputTokens": 5, "outputTokens": 4}
    });
    insta::assert_snapshot!(response(ClientApi::Messages, body));
}

#[test]
fn response_ids_differ() {
    let body = converse_tools_response().to_string();
    let id = |api| {
        let (out, _) = translate_response(api, WireFormat::Bedrock, body.as_bytes()).unwrap();
        let v: Value = serde_json::from_slice(&out.unwrap()).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let (a, b) = (id(ClientApi::Messages), id(ClientApi::Messages));
    assert_ne!(a, b);
    assert!(
        a.starts_with("msg_bdrk_") && normalize_ids(&a) == "msg_bdrk_<id>",
        "{a}"
    );
    let c = id(ClientApi::ChatCompletions);
    assert_eq!(normalize_ids(&c), "chatcmpl-bdrk-<id>", "{c}");
}

#[test]
fn finish_and_stop_reasons() {
    for (bedrock, chat, messages) in [
        ("end_turn", "stop", "end_turn"),
        ("stop_sequence", "stop", "stop_sequence"),
        ("tool_use", "tool_calls", "tool_use"),
        ("max_tokens", "length", "max_tokens"),
        ("guardrail_intervened", "content_filter", "refusal"),
        ("content_filtered", "content_filter", "refusal"),
    ] {
        let body = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": bedrock});
        let body = body.to_string();
        let (c, _) = translate_response(
            ClientApi::ChatCompletions,
            WireFormat::Bedrock,
            body.as_bytes(),
        )
        .unwrap();
        let c: Value = serde_json::from_slice(&c.unwrap()).unwrap();
        assert_eq!(c["choices"][0]["finish_reason"], chat, "{bedrock}");
        let (m, _) =
            translate_response(ClientApi::Messages, WireFormat::Bedrock, body.as_bytes()).unwrap();
        let m: Value = serde_json::from_slice(&m.unwrap()).unwrap();
        assert_eq!(m["stop_reason"], messages, "{bedrock}");
    }
}
// Malformed requests and responses.

#[test]
fn malformed_requests_are_errors() {
    let chat = |body: Value| {
        translate_request(
            ClientApi::ChatCompletions,
            WireFormat::Bedrock,
            body.to_string().as_bytes(),
            None,
        )
    };
    let user =
        |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let image = |url: &str| user(json!([{"type": "image_url", "image_url": {"url": url}}]));
    assert!(
        matches!(chat(image("https://x/cat.png")), Err(Error::Unsupported(m)) if m.contains("inline images"))
    );
    assert!(matches!(
        chat(image("data:image/bmp;base64,AA==")),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        chat(image("ftp://x")),
        Err(Error::InvalidRequest(_))
    ));
    let call = |args: &str| {
        json!({"model": "m", "messages": [{"role": "assistant", "content": null, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": args}}]}]})
    };
    assert!(matches!(chat(call("{bad")), Err(Error::InvalidRequest(_))));
    assert!(matches!(chat(call("[1]")), Err(Error::InvalidRequest(_))));
    assert!(matches!(
        chat(json!({"messages": []})),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        chat(json!({"model": "m", "messages": [], "n": 2})),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        chat(json!({"model": "m", "messages": [], "stop": 1})),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        chat(json!({"model": "m", "messages": [], "tool_choice": "maybe"})),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        chat(user(json!([{"type": "input_audio", "input_audio": {}}]))),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        chat(user(json!([{"type": "file", "file": {"file_id": "f"}}]))),
        Err(Error::Unsupported(_))
    ));

    let messages = |content: Value| {
        translate_request(
            ClientApi::Messages,
            WireFormat::Bedrock,
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": content}]})
                .to_string()
                .as_bytes(),
            None,
        )
    };
    let url_image = json!([{"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}]);
    assert!(matches!(messages(url_image), Err(Error::Unsupported(_))));
    let server = json!([{"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}]);
    assert!(matches!(messages(server), Err(Error::Unsupported(_))));
    let tools = json!({"model": "m", "messages": [], "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
    let r = translate_request(
        ClientApi::Messages,
        WireFormat::Bedrock,
        tools.to_string().as_bytes(),
        None,
    );
    assert!(matches!(r, Err(Error::Unsupported(_))));

    for api in [
        ClientApi::Embeddings,
        ClientApi::CountTokens,
        ClientApi::Models,
    ] {
        let r = translate_request(
            api,
            WireFormat::Bedrock,
            br#"{"model":"m","input":"x"}"#,
            None,
        );
        assert!(matches!(r, Err(Error::Unsupported(_))), "{api:?}");
    }
    for body in [&b""[..], b"[]", b"null", b"{\"model\":", b"\xff"] {
        for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
            let r = translate_request(api, WireFormat::Bedrock, body, Some("m"));
            assert!(
                matches!(r, Err(Error::InvalidRequest(_))),
                "{api:?} {body:?}"
            );
        }
    }
}

#[test]
fn malformed_responses_are_errors() {
    let bodies: &[&[u8]] = &[
        b"",
        b"not json",
        b"[]",
        b"{}",
        br#"{"output": {}}"#,
        br#"{"output": {"message": {"content": "text"}}}"#,
        br#"{"output": {"message": {"content": [{"toolUse": {"name": "f"}}]}}}"#,
        br#"{"output": {"message": {"content": []}}, "usage": {"inputTokens": -1}}"#,
    ];
    for body in bodies {
        for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
            let r = translate_response(api, WireFormat::Bedrock, body);
            assert!(
                matches!(r, Err(Error::InvalidResponse(_))),
                "{api:?} {body:?}: {r:?}"
            );
        }
    }
    let r = translate_response(ClientApi::Embeddings, WireFormat::Bedrock, b"{}");
    assert!(matches!(r, Err(Error::Unsupported(_))));
}
