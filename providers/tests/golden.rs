//! Golden-file tests: every translation pair, requests and responses, whole and streamed.
//! Inputs are under `tests/fixtures/`, outputs are snapshots under `tests/snapshots/`.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::{
    ClientApi, StreamTranslator, Translated, WireFormat, stream_translator, translate_error,
    translate_request, translate_response,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// JSON bytes, pretty, keys sorted (stable whatever serde_json's features).
fn pretty(bytes: &[u8]) -> String {
    let mut v: Value = serde_json::from_slice(bytes).expect("output is JSON");
    v.sort_all_objects();
    serde_json::to_string_pretty(&v).unwrap()
}

fn request(api: ClientApi, to: WireFormat, name: &str, model: Option<&str>) -> String {
    let body = fixture(name);
    let t: Translated = translate_request(api, to, &body, model).unwrap();
    let shown = match &t.body {
        None => "<original bytes>".to_string(),
        Some(b) => pretty(b),
    };
    format!(
        "path: {}\nstream: {}\nhide_usage_chunk: {}\nbody: {shown}\n",
        t.path, t.stream, t.hide_usage_chunk
    )
}

fn response(api: ClientApi, from: WireFormat, name: &str) -> String {
    let (body, usage) = translate_response(api, from, &fixture(name)).unwrap();
    let shown = match &body {
        None => "<original bytes>".to_string(),
        Some(b) => pretty(b),
    };
    format!(
        "usage: {}\nbody: {shown}\n",
        serde_json::to_string(&usage).unwrap()
    )
}

fn stream(api: ClientApi, from: WireFormat, hide: bool, name: &str) -> String {
    let mut t: Box<dyn StreamTranslator> = stream_translator(api, from, hide);
    let mut out = Vec::new();
    t.push(&fixture(name), &mut out).unwrap();
    let finish = t.finish(&mut out);
    format!(
        "usage: {}\noutput_started: {}\nfinish: {:?}\n---\n{}",
        serde_json::to_string(t.usage()).unwrap(),
        t.output_started(),
        finish,
        String::from_utf8(out).unwrap()
    )
}

// Requests.

#[test]
fn request_chat_to_anthropic_tools() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        "chat_request_tools.json",
        Some("claude-sonnet-4-5-20250929"),
    ));
}

#[test]
fn request_chat_to_anthropic_stream() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        "chat_request_stream.json",
        None,
    ));
}

#[test]
fn request_chat_to_anthropic_stream_usage_file() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        "chat_request_stream_usage.json",
        Some("claude-3-5-haiku-latest"),
    ));
}

#[test]
fn request_chat_to_openai_untouched() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        "chat_request_tools.json",
        None,
    ));
}

#[test]
fn request_chat_to_openai_model_override() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        "chat_request_tools.json",
        Some("gpt-4.1-mini"),
    ));
}

#[test]
fn request_chat_to_openai_stream_adds_usage() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        "chat_request_stream.json",
        None,
    ));
}

#[test]
fn request_chat_to_openai_stream_with_usage() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        "chat_request_stream_usage.json",
        None,
    ));
}

#[test]
fn request_messages_to_openai_tools() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        WireFormat::OpenAi,
        "messages_request_tools.json",
        Some("gpt-4.1"),
    ));
}

#[test]
fn request_messages_to_openai_simple() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        WireFormat::OpenAi,
        "messages_request_simple.json",
        None,
    ));
}

#[test]
fn request_messages_to_anthropic_untouched() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        WireFormat::Anthropic,
        "messages_request_tools.json",
        None,
    ));
}

#[test]
fn request_messages_to_anthropic_model_override() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        WireFormat::Anthropic,
        "messages_request_simple.json",
        Some("claude-haiku-4-5"),
    ));
}

#[test]
fn request_other_apis() {
    let count = br#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"Hi"}]}"#;
    let t = translate_request(ClientApi::CountTokens, WireFormat::Anthropic, count, None).unwrap();
    assert_eq!(
        (t.body, t.path),
        (None, "/v1/messages/count_tokens".to_string())
    );
    let e = translate_request(ClientApi::CountTokens, WireFormat::OpenAi, count, None);
    assert!(matches!(e, Err(agora_providers::Error::Unsupported(_))));

    let emb = br#"{"model":"text-embedding-3-small","input":"hello"}"#;
    let t = translate_request(ClientApi::Embeddings, WireFormat::OpenAi, emb, None).unwrap();
    assert_eq!(
        (t.body, t.path, t.stream),
        (None, "/v1/embeddings".to_string(), false)
    );
    let t = translate_request(ClientApi::Embeddings, WireFormat::OpenAi, emb, Some("e5")).unwrap();
    assert_eq!(
        t.body.unwrap(),
        br#"{"model":"e5","input":"hello"}"#.to_vec()
    );
    let e = translate_request(ClientApi::Embeddings, WireFormat::Anthropic, emb, None);
    assert!(matches!(e, Err(agora_providers::Error::Unsupported(_))));

    for to in [WireFormat::OpenAi, WireFormat::Anthropic] {
        let t = translate_request(ClientApi::Models, to, b"", Some("x")).unwrap();
        assert_eq!((t.body, t.path), (None, "/v1/models".to_string()));
    }
}

// Whole responses.

#[test]
fn response_anthropic_to_chat_tools() {
    insta::assert_snapshot!(response(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        "anthropic_response_tools.json",
    ));
}

#[test]
fn response_anthropic_to_chat_text() {
    insta::assert_snapshot!(response(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        "anthropic_response_text.json",
    ));
}

#[test]
fn response_openai_to_messages_tools() {
    insta::assert_snapshot!(response(
        ClientApi::Messages,
        WireFormat::OpenAi,
        "openai_response_tools.json",
    ));
}

#[test]
fn response_openai_to_messages_reasoning() {
    insta::assert_snapshot!(response(
        ClientApi::Messages,
        WireFormat::OpenAi,
        "openai_response_text.json",
    ));
}

#[test]
fn response_same_format_usage_only() {
    insta::assert_snapshot!(format!(
        "{}{}{}",
        response(
            ClientApi::ChatCompletions,
            WireFormat::OpenAi,
            "openai_response_tools.json"
        ),
        response(
            ClientApi::Messages,
            WireFormat::Anthropic,
            "anthropic_response_tools.json"
        ),
        response(
            ClientApi::Embeddings,
            WireFormat::OpenAi,
            "openai_embeddings_response.json"
        ),
    ));
}

// Streams.

#[test]
fn stream_anthropic_to_chat_tools_with_usage() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        false,
        "anthropic_stream_tools.sse",
    ));
}

#[test]
fn stream_anthropic_to_chat_tools_no_usage() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        true,
        "anthropic_stream_tools.sse",
    ));
}

#[test]
fn stream_anthropic_to_chat_error() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        true,
        "anthropic_stream_error.sse",
    ));
}

#[test]
fn stream_openai_to_messages_tools() {
    insta::assert_snapshot!(stream(
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_tools.sse",
    ));
}

#[test]
fn stream_openai_to_messages_reasoning() {
    insta::assert_snapshot!(stream(
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_reasoning.sse",
    ));
}

#[test]
fn stream_openai_to_messages_error() {
    insta::assert_snapshot!(stream(
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_error.sse",
    ));
}

#[test]
fn stream_openai_passthrough_hides_usage_chunk() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        true,
        "openai_stream_tools.sse",
    ));
}

#[test]
fn stream_openai_passthrough_keeps_everything() {
    let input = fixture("openai_stream_tools.sse");
    let mut t = stream_translator(ClientApi::ChatCompletions, WireFormat::OpenAi, false);
    let mut out = Vec::new();
    t.push(&input, &mut out).unwrap();
    t.finish(&mut out).unwrap();
    assert_eq!(out, input);
    assert_eq!(t.usage().input_tokens, 1117);
    assert_eq!(t.usage().cache_read_tokens, 1024);
    assert_eq!(
        t.usage().response_model.as_deref(),
        Some("gpt-4.1-2025-04-14")
    );
    assert!(t.output_started());
}

#[test]
fn stream_openai_passthrough_usage_in_finish_chunk() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        true,
        "openai_stream_reasoning.sse",
    ));
}

#[test]
fn stream_anthropic_passthrough() {
    let input = fixture("anthropic_stream_tools.sse");
    let mut t = stream_translator(ClientApi::Messages, WireFormat::Anthropic, false);
    let mut out = Vec::new();
    t.push(&input, &mut out).unwrap();
    t.finish(&mut out).unwrap();
    assert_eq!(out, input);
    insta::assert_snapshot!(serde_json::to_string_pretty(t.usage()).unwrap());
    assert!(t.output_started());
}

// Errors.

#[test]
fn errors_translated() {
    let anthropic = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;
    let openai = br#"{"error":{"message":"Rate limit reached for gpt-4.1 in organization org-x on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.","type":"tokens","param":null,"code":"rate_limit_exceeded"}}"#;
    let html = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n";
    let cases: [(&str, ClientApi, WireFormat, u16, &[u8]); 6] = [
        (
            "anthropic→chat",
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            529,
            anthropic,
        ),
        (
            "openai→messages",
            ClientApi::Messages,
            WireFormat::OpenAi,
            429,
            openai,
        ),
        (
            "html→chat",
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            502,
            html,
        ),
        (
            "html→messages",
            ClientApi::Messages,
            WireFormat::OpenAi,
            502,
            html,
        ),
        (
            "html→chat same format",
            ClientApi::ChatCompletions,
            WireFormat::OpenAi,
            502,
            html,
        ),
        (
            "html→messages same format",
            ClientApi::Messages,
            WireFormat::Anthropic,
            502,
            html,
        ),
    ];
    let mut shown = String::new();
    for (label, api, from, status, body) in cases {
        let out = translate_error(api, from, status, body).expect("translated");
        shown.push_str(&format!("{label} ({status}):\n{}\n\n", pretty(&out)));
    }
    insta::assert_snapshot!(shown);
    assert!(translate_error(ClientApi::Messages, WireFormat::Anthropic, 529, anthropic).is_none());
    assert!(translate_error(ClientApi::ChatCompletions, WireFormat::OpenAi, 429, openai).is_none());
}
