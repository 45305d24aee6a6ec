//! Gemini clients (`generateContent` / `streamGenerateContent`) of OpenAI, Anthropic and
//! Bedrock providers: golden snapshots of every translation pair (requests streaming and
//! not, whole responses, streams from OpenAI and Anthropic providers; Bedrock streams are in
//! `bedrock_stream.rs`), errors in Google's shape, and the stream state machine fed in odd
//! chunk splits and cut anywhere.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::sse::SseParser;
use agora_providers::{
    ClientApi, Error, Usage, WireFormat, gateway_error, stream_translator, translate_error,
    translate_gemini_request, translate_response,
};
use serde_json::{Value, json};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// JSON bytes, pretty, keys sorted.
fn pretty(bytes: &[u8]) -> String {
    let mut v: Value = serde_json::from_slice(bytes).expect("output is JSON");
    v.sort_all_objects();
    serde_json::to_string_pretty(&v).unwrap()
}

/// Replaces Bedrock's random ids (`bdrk-<16 hex>`) with `bdrk-<id>`.
fn normalize_ids(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("bdrk-") {
        let (head, tail) = rest.split_at(i + 5);
        out.push_str(head);
        match tail.get(..16) {
            Some(id) if id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                out.push_str("<id>");
                rest = &tail[16..];
            }
            _ => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn request(to: WireFormat, name: &str, model: &str, stream: bool) -> String {
    let t = translate_gemini_request(to, &fixture(name), Some(model), stream).unwrap();
    let shown = match &t.body {
        None => "<original bytes>".to_string(),
        Some(b) => pretty(b),
    };
    format!(
        "path: {}\nstream: {}\nhide_usage_chunk: {}\nbody: {shown}\n",
        t.path, t.stream, t.hide_usage_chunk
    )
}

fn response(from: WireFormat, body: &[u8]) -> String {
    let (out, usage) = translate_response(ClientApi::GenerateContent, from, body).unwrap();
    let shown = match &out {
        None => "<original bytes>".to_string(),
        Some(b) => normalize_ids(&pretty(b)),
    };
    format!(
        "usage: {}\nbody: {shown}\n",
        serde_json::to_string(&usage).unwrap()
    )
}

#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    usage: Usage,
    started: bool,
    push_ok: bool,
    finish_ok: bool,
}

fn run(from: WireFormat, chunks: &[&[u8]]) -> Run {
    let mut t = stream_translator(ClientApi::GenerateContent, from, false);
    let mut out = Vec::new();
    let mut push_ok = true;
    for c in chunks {
        push_ok &= t.push(c, &mut out).is_ok();
    }
    let finish_ok = t.finish(&mut out).is_ok();
    Run {
        out: String::from_utf8(out).unwrap(),
        usage: t.usage().clone(),
        started: t.output_started(),
        push_ok,
        finish_ok,
    }
}

fn stream(from: WireFormat, name: &str) -> String {
    let r = run(from, &[&fixture(name)]);
    assert_well_formed(&r.out, name);
    format!(
        "usage: {}\noutput_started: {}\npush_ok: {}\nfinish_ok: {}\n---\n{}",
        serde_json::to_string(&r.usage).unwrap(),
        r.started,
        r.push_ok,
        r.finish_ok,
        r.out
    )
}

/// Checks a Gemini stream: every event a `data:` line holding a `GenerateContentResponse`
/// (one candidate, role `model`) or, last only, a Google error; the finish reason and usage
/// on the last event only; each function call whole (an `args` object).
fn assert_well_formed(out: &str, context: &str) {
    let mut p = SseParser::new();
    let events = p.push(out.as_bytes()).unwrap();
    assert_eq!(p.finish().unwrap(), None, "{context}: trailing bytes");
    assert!(!events.is_empty(), "{context}: no events");
    for (n, e) in events.iter().enumerate() {
        let last = n + 1 == events.len();
        assert_eq!(e.event, None, "{context}");
        let v: Value = serde_json::from_str(&e.data).unwrap();
        if let Some(err) = v.get("error") {
            assert!(last, "{context}: error before the end");
            assert!(
                err["code"].is_u64() && err["status"].is_string(),
                "{context}"
            );
            continue;
        }
        let c = &v["candidates"][0];
        assert_eq!(v["candidates"].as_array().unwrap().len(), 1, "{context}");
        assert_eq!(c["content"]["role"], "model", "{context}");
        assert_eq!(c["finishReason"].is_string(), last, "{context}: {v}");
        assert_eq!(v["usageMetadata"].is_object(), last, "{context}: {v}");
        for part in c["content"]["parts"].as_array().unwrap() {
            if let Some(call) = part.get("functionCall") {
                assert!(call["args"].is_object(), "{context}: {part}");
            }
        }
    }
}

// Requests.

#[test]
fn request_to_openai_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::OpenAi,
        "gemini/client_request_tools.json",
        "gpt-4.1",
        false
    ));
}

#[test]
fn request_to_openai_stream_forced_function() {
    insta::assert_snapshot!(request(
        WireFormat::OpenAi,
        "gemini/client_request_stream.json",
        "gpt-5-mini",
        true
    ));
}

#[test]
fn request_to_anthropic_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::Anthropic,
        "gemini/client_request_tools.json",
        "claude-sonnet-4-5",
        false
    ));
}

#[test]
fn request_to_anthropic_stream_forced_function() {
    insta::assert_snapshot!(request(
        WireFormat::Anthropic,
        "gemini/client_request_stream.json",
        "claude-haiku-4-5",
        true
    ));
}

#[test]
fn request_to_bedrock_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::Bedrock,
        "gemini/client_request_tools.json",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        false
    ));
}

#[test]
fn request_to_bedrock_stream_forced_function() {
    insta::assert_snapshot!(request(
        WireFormat::Bedrock,
        "gemini/client_request_stream.json",
        "us.anthropic.claude-haiku-4-5-20251001-v1:0",
        true
    ));
}

#[test]
fn request_to_gemini_untouched() {
    let body = fixture("gemini/client_request_tools.json");
    for (stream, path) in [
        (false, "/v1beta/models/gemini-2.5-pro:generateContent"),
        (
            true,
            "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse",
        ),
    ] {
        let t = translate_gemini_request(WireFormat::Gemini, &body, Some("gemini-2.5-pro"), stream)
            .unwrap();
        assert_eq!((t.body, t.path.as_str(), t.stream), (None, path, stream));
    }
}

#[test]
fn unsupported_requests_are_client_errors() {
    for (to, body) in [
        (
            WireFormat::OpenAi,
            json!({"contents": [{"parts": [{"text": "hi"}]}], "tools": [{"codeExecution": {}}]}),
        ),
        (
            WireFormat::Anthropic,
            json!({"contents": [{"parts": [{"text": "hi"}]}],
                   "generationConfig": {"candidateCount": 3}}),
        ),
        (
            WireFormat::Bedrock,
            json!({"contents": [{"parts": [{"fileData": {"mimeType": "video/mp4",
                   "fileUri": "https://files/x.mp4"}}]}]}),
        ),
    ] {
        let e = translate_gemini_request(to, body.to_string().as_bytes(), Some("m"), false)
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{to:?}: {e}");
        assert_eq!(e.status(), 400);
    }
    for body in [
        &b"[]"[..],
        b"nope",
        br#"{"contents":5}"#,
        br#"{"contents":[]}"#,
    ] {
        assert!(matches!(
            translate_gemini_request(WireFormat::OpenAi, body, Some("m"), false),
            Err(Error::InvalidRequest(_))
        ));
    }
}

// Whole responses.

#[test]
fn response_openai_function_calls() {
    insta::assert_snapshot!(response(
        WireFormat::OpenAi,
        &fixture("openai_response_tools.json")
    ));
}

#[test]
fn response_openai_text() {
    insta::assert_snapshot!(response(
        WireFormat::OpenAi,
        &fixture("openai_response_text.json")
    ));
}

#[test]
fn response_anthropic_tools_reasoning() {
    insta::assert_snapshot!(response(
        WireFormat::Anthropic,
        &fixture("anthropic_response_tools.json")
    ));
}

#[test]
fn response_anthropic_text() {
    insta::assert_snapshot!(response(
        WireFormat::Anthropic,
        &fixture("anthropic_response_text.json")
    ));
}

#[test]
fn response_bedrock_tools_reasoning_max_tokens() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "Two cities: two calls.", "signature": "sig"}}},
            {"text": "Let me check both cities."},
            {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather", "input": {"location": "Paris, France"}}}
        ]}},
        "stopReason": "max_tokens",
        "usage": {"inputTokens": 412, "outputTokens": 87, "totalTokens": 3059, "cacheReadInputTokens": 2048, "cacheWriteInputTokens": 512},
        "metrics": {"latencyMs": 1834}
    });
    insta::assert_snapshot!(response(WireFormat::Bedrock, body.to_string().as_bytes()));
}

#[test]
fn response_content_filter_is_safety() {
    let body = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
        "model": "gpt-4.1", "choices": [{"index": 0, "finish_reason": "content_filter",
        "message": {"role": "assistant", "content": null}}]});
    let (out, _) = translate_response(
        ClientApi::GenerateContent,
        WireFormat::OpenAi,
        body.to_string().as_bytes(),
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out.unwrap()).unwrap();
    assert_eq!(
        v,
        json!({"candidates": [{"content": {"role": "model", "parts": []},
            "finishReason": "SAFETY", "index": 0}],
            "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
            "modelVersion": "gpt-4.1", "responseId": "chatcmpl-1"})
    );
}

#[test]
fn errors_take_the_google_shape() {
    let oa = br#"{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
    let out = translate_error(ClientApi::GenerateContent, WireFormat::OpenAi, 429, oa).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"error":{"code":429,"message":"Rate limit reached","status":"RESOURCE_EXHAUSTED"}}"#
    );
    let an = br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: too large"}}"#;
    let out = translate_error(ClientApi::GenerateContent, WireFormat::Anthropic, 400, an).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"error":{"code":400,"message":"max_tokens: too large","status":"INVALID_ARGUMENT"}}"#
    );
    let out = translate_error(
        ClientApi::GenerateContent,
        WireFormat::Bedrock,
        403,
        br#"{"message":"The security token included in the request is invalid."}"#,
    )
    .unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["error"]["status"], "PERMISSION_DENIED");
    let v: Value =
        serde_json::from_slice(&gateway_error(ClientApi::GenerateContent, 404, "no model"))
            .unwrap();
    assert_eq!(
        v,
        json!({"error": {"code": 404, "message": "no model", "status": "NOT_FOUND"}})
    );
}

// Streams.

#[test]
fn stream_openai_function_calls() {
    insta::assert_snapshot!(stream(WireFormat::OpenAi, "openai_stream_tools.sse"));
}

#[test]
fn stream_openai_reasoning() {
    insta::assert_snapshot!(stream(WireFormat::OpenAi, "openai_stream_reasoning.sse"));
}

#[test]
fn stream_openai_error() {
    insta::assert_snapshot!(stream(WireFormat::OpenAi, "openai_stream_error.sse"));
}

#[test]
fn stream_anthropic_tools_reasoning() {
    insta::assert_snapshot!(stream(WireFormat::Anthropic, "anthropic_stream_tools.sse"));
}

#[test]
fn stream_anthropic_error() {
    insta::assert_snapshot!(stream(WireFormat::Anthropic, "anthropic_stream_error.sse"));
}

/// Every Gemini-client stream case: provider format and fixture.
const CASES: &[(WireFormat, &str)] = &[
    (WireFormat::OpenAi, "openai_stream_tools.sse"),
    (WireFormat::OpenAi, "openai_stream_reasoning.sse"),
    (WireFormat::OpenAi, "openai_stream_error.sse"),
    (WireFormat::Anthropic, "anthropic_stream_tools.sse"),
    (WireFormat::Anthropic, "anthropic_stream_error.sse"),
];

#[test]
fn every_split_point_gives_the_same_output() {
    for &(from, name) in CASES {
        let input = fixture(name);
        let whole = run(from, &[&input]);
        if !name.contains("error") {
            assert!(whole.push_ok && whole.finish_ok, "{name}");
        }
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(run(from, &[a, b]), whole, "{name} split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(from, &bytes), whole, "{name} 1-byte chunks");
        let step = input.len() / 17 + 1;
        for i in (0..input.len()).step_by(step) {
            for j in (i..input.len()).step_by(11) {
                let got = run(from, &[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, whole, "{name} split at {i}, {j}");
            }
        }
    }
}

#[test]
fn streams_cut_anywhere_end_well_formed() {
    for &(from, name) in CASES {
        let input = fixture(name);
        for cut in 0..input.len() {
            let r = run(from, &[&input[..cut]]);
            assert_well_formed(&r.out, &format!("{name} cut at {cut}"));
            let last = r.out.trim_end().rsplit("\n\n").next().unwrap_or_default();
            if !r.finish_ok {
                assert!(last.contains("\"error\""), "{name} cut at {cut}: {last}");
            }
        }
    }
}
