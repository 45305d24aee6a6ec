//! OpenAI Responses API clients: golden snapshots of every translation pair (requests and
//! whole responses for OpenAI, Anthropic, Gemini and Bedrock providers; streams from OpenAI,
//! Anthropic and Gemini providers; Bedrock streams are in `bedrock_stream.rs`), and the
//! stream state machine fed in odd chunk splits and cut anywhere.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::sse::SseParser;
use agora_providers::{
    ClientApi, Error, Usage, WireFormat, gateway_error, stream_translator, translate_error,
    translate_request, translate_response,
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

fn request(to: WireFormat, body: &[u8], model: Option<&str>) -> String {
    let t = translate_request(ClientApi::Responses, to, body, model).unwrap();
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
    let (out, usage) = translate_response(ClientApi::Responses, from, body).unwrap();
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
    let mut t = stream_translator(ClientApi::Responses, from, false);
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
    format!(
        "usage: {}\noutput_started: {}\npush_ok: {}\nfinish_ok: {}\n---\n{}",
        serde_json::to_string(&r.usage).unwrap(),
        r.started,
        r.push_ok,
        r.finish_ok,
        r.out
    )
}

// Requests.

#[test]
fn request_to_anthropic_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::Anthropic,
        &fixture("responses_request_tools.json"),
        None
    ));
}

#[test]
fn request_to_anthropic_stream_forced_tool() {
    insta::assert_snapshot!(request(
        WireFormat::Anthropic,
        &fixture("responses_request_stream.json"),
        Some("claude-haiku-4-5")
    ));
}

#[test]
fn request_to_gemini_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::Gemini,
        &fixture("responses_request_tools.json"),
        Some("gemini-2.5-pro")
    ));
}

#[test]
fn request_to_gemini_stream() {
    insta::assert_snapshot!(request(
        WireFormat::Gemini,
        &fixture("responses_request_stream.json"),
        Some("gemini-2.5-flash")
    ));
}

#[test]
fn request_to_bedrock_tools_images_history() {
    insta::assert_snapshot!(request(
        WireFormat::Bedrock,
        &fixture("responses_request_tools.json"),
        Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
    ));
}

#[test]
fn request_to_bedrock_stream() {
    insta::assert_snapshot!(request(
        WireFormat::Bedrock,
        &fixture("responses_request_stream.json"),
        Some("amazon.nova-pro-v1:0")
    ));
}

#[test]
fn request_to_openai_untouched_or_model_only() {
    let body = fixture("responses_request_tools.json");
    let t = translate_request(ClientApi::Responses, WireFormat::OpenAi, &body, None).unwrap();
    assert_eq!(
        (t.body, t.path.as_str(), t.stream),
        (None, "/v1/responses", false)
    );
    insta::assert_snapshot!(request(
        WireFormat::OpenAi,
        &fixture("responses_request_stream.json"),
        Some("gpt-5-mini")
    ));
}

#[test]
fn unsupported_requests_are_client_errors() {
    for (to, body) in [
        (
            WireFormat::Anthropic,
            json!({"model": "m", "input": "hi", "previous_response_id": "resp_1"}),
        ),
        (
            WireFormat::Gemini,
            json!({"model": "m", "input": "hi", "tools": [{"type": "file_search"}]}),
        ),
        (
            WireFormat::Bedrock,
            json!({"model": "m", "input": [{"role": "user", "content": [
                {"type": "input_image", "image_url": "https://x.org/a.png", "detail": "auto"}]}]}),
        ),
    ] {
        let e = translate_request(ClientApi::Responses, to, body.to_string().as_bytes(), None)
            .unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{to:?}: {e}");
        assert_eq!(e.status(), 400);
    }
    for body in [&b"[]"[..], b"nope", br#"{"model":"m","input":5}"#] {
        assert!(matches!(
            translate_request(ClientApi::Responses, WireFormat::Anthropic, body, None),
            Err(Error::InvalidRequest(_))
        ));
    }
}

// Whole responses.

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
fn response_gemini_function_calls() {
    insta::assert_snapshot!(response(
        WireFormat::Gemini,
        &fixture("gemini/response_tools.json")
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
fn response_openai_usage_only() {
    insta::assert_snapshot!(response(
        WireFormat::OpenAi,
        &fixture("openai_responses_response.json")
    ));
}

#[test]
fn errors_take_the_openai_shape() {
    let an = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let out = translate_error(ClientApi::Responses, WireFormat::Anthropic, 429, an).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"429"}}"#
    );
    let oa =
        br#"{"error":{"message":"bad","type":"invalid_request_error","param":null,"code":null}}"#;
    assert!(translate_error(ClientApi::Responses, WireFormat::OpenAi, 400, oa).is_none());
    let v: Value =
        serde_json::from_slice(&gateway_error(ClientApi::Responses, 404, "no model")).unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
}

// Streams.

#[test]
fn stream_anthropic_tools_reasoning() {
    insta::assert_snapshot!(stream(WireFormat::Anthropic, "anthropic_stream_tools.sse"));
}

#[test]
fn stream_anthropic_error() {
    insta::assert_snapshot!(stream(WireFormat::Anthropic, "anthropic_stream_error.sse"));
}

/// The provider stopped at its token limit (Anthropic `max_tokens`, chat `length`): the
/// stream ends with `response.incomplete`, reason `max_output_tokens`, the message item
/// completed and the usage in it.
#[test]
fn stream_anthropic_max_tokens_is_incomplete() {
    let out = stream(WireFormat::Anthropic, "anthropic_stream_max_tokens.sse");
    let last = out.trim_end().rsplit("\n\n").next().unwrap();
    assert!(last.starts_with("event: response.incomplete\n"), "{last}");
    let data: Value = serde_json::from_str(last.split_once("data: ").unwrap().1).unwrap();
    assert_eq!(data["response"]["status"], "incomplete");
    assert_eq!(
        data["response"]["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(
        data["response"]["output"][0]["content"][0]["text"],
        "The history of Rome begins"
    );
    assert_eq!(data["response"]["usage"]["output_tokens"], 4);
    insta::assert_snapshot!(out);
}

#[test]
fn stream_gemini_function_calls() {
    insta::assert_snapshot!(stream(WireFormat::Gemini, "gemini/stream_tools.sse"));
}

#[test]
fn stream_gemini_thoughts_and_text() {
    insta::assert_snapshot!(stream(WireFormat::Gemini, "gemini/stream_text.sse"));
}

#[test]
fn stream_openai_passthrough() {
    let input = fixture("openai_responses_stream.sse");
    let r = run(WireFormat::OpenAi, &[&input]);
    assert_eq!(r.out.as_bytes(), &input[..]);
    assert!(r.finish_ok && r.started);
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.reasoning_tokens
        ),
        (12, 18, 9)
    );
    assert_eq!(
        r.usage.response_model.as_deref(),
        Some("gpt-5-mini-2025-08-07")
    );
    // Cut before response.completed: an error event with the next sequence number.
    let text = String::from_utf8(input).unwrap();
    let cut = text.find("event: response.completed").unwrap();
    let r = run(WireFormat::OpenAi, &[&text.as_bytes()[..cut]]);
    assert!(!r.finish_ok);
    assert!(r.out.ends_with(
        "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"upstream stream ended before completion\",\"param\":null,\"sequence_number\":9}\n\n"
    ), "{}", r.out);
}

/// Every Responses stream case: provider format and fixture.
const CASES: &[(WireFormat, &str)] = &[
    (WireFormat::Anthropic, "anthropic_stream_tools.sse"),
    (WireFormat::Anthropic, "anthropic_stream_error.sse"),
    (WireFormat::Anthropic, "anthropic_stream_max_tokens.sse"),
    (WireFormat::Gemini, "gemini/stream_tools.sse"),
    (WireFormat::Gemini, "gemini/stream_text.sse"),
    (WireFormat::Gemini, "gemini/stream_error.sse"),
    (WireFormat::OpenAi, "openai_responses_stream.sse"),
];

#[test]
fn every_split_point_gives_the_same_output() {
    for &(from, name) in CASES {
        let input = fixture(name);
        let whole = run(from, &[&input]);
        assert!(whole.push_ok && whole.finish_ok, "{name}");
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

/// Checks a Responses stream: every event named after its type, sequence numbers counting
/// from 0 (translated streams), deltas only inside an item that was added and not done, and
/// a terminal last event.
fn assert_well_formed(out: &str, translated: bool, context: &str) {
    let mut p = SseParser::new();
    let events = p.push(out.as_bytes()).unwrap();
    assert_eq!(p.finish().unwrap(), None, "{context}: trailing bytes");
    assert!(!events.is_empty(), "{context}: no events");
    let mut open: Vec<u64> = Vec::new();
    for (n, e) in events.iter().enumerate() {
        let v: Value = serde_json::from_str(&e.data)
            .unwrap_or_else(|err| panic!("{context}: {err}: {}", e.data));
        let kind = v["type"].as_str().unwrap();
        assert_eq!(e.event.as_deref(), Some(kind), "{context}");
        if !translated {
            continue;
        }
        assert_eq!(v["sequence_number"], json!(n), "{context}");
        if n == 0 {
            assert_eq!(kind, "response.created", "{context}");
        }
        let index = v["output_index"].as_u64();
        match kind {
            "response.output_item.added" => open.push(index.unwrap()),
            "response.output_item.done" => {
                assert_eq!(open.pop(), index, "{context}: {}", e.data);
            }
            k if k.ends_with(".delta") || k.ends_with(".added") => {
                assert_eq!(open.last().copied(), index, "{context}: {}", e.data);
            }
            "response.completed" | "response.incomplete" => {
                assert!(open.is_empty(), "{context}");
                assert!(v["response"]["usage"].is_object(), "{context}");
            }
            _ => {}
        }
    }
    let last: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert!(
        matches!(
            last["type"].as_str(),
            Some("response.completed" | "response.incomplete" | "response.failed" | "error")
        ),
        "{context}: ends with {last}"
    );
}

#[test]
fn streams_cut_anywhere_end_well_formed() {
    for &(from, name) in CASES {
        let input = fixture(name);
        for cut in 0..input.len() {
            let mut t = stream_translator(ClientApi::Responses, from, false);
            let mut out = Vec::new();
            t.push(&input[..cut], &mut out).ok();
            let finished = t.finish(&mut out);
            let out = String::from_utf8(out).unwrap();
            let context = format!("{name} cut at {cut}: {finished:?}");
            if cut == 0 {
                assert!(finished.is_err(), "{context}");
            }
            assert_well_formed(&out, from != WireFormat::OpenAi, &context);
            let mut more = Vec::new();
            t.finish(&mut more).ok();
            t.push(b"data: {}\n\n", &mut more).ok();
            assert!(more.is_empty(), "{context}");
        }
    }
}

#[test]
fn complete_outputs_are_well_formed() {
    for &(from, name) in CASES {
        let r = run(from, &[&fixture(name)]);
        assert_well_formed(&r.out, from != WireFormat::OpenAi, name);
    }
}
