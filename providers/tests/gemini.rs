//! Gemini as a provider (for OpenAI chat and Anthropic messages clients) and as a client API:
//! golden snapshots of requests, responses and streams (inputs under
//! `tests/fixtures/gemini/`, outputs under `tests/snapshots/`), streams fed in odd chunk
//! splits, and malformed input.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::sse::SseParser;
use agora_providers::{
    ClientApi, Error, Usage, WireFormat, gateway_error, stream_translator, translate_error,
    translate_request, translate_response,
};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    // Names starting with `../` are the fixtures other tests share.
    let path = format!(
        "{}/tests/fixtures/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// JSON bytes, pretty, keys sorted (stable whatever serde_json's features).
fn pretty(bytes: &[u8]) -> String {
    let mut v: Value = serde_json::from_slice(bytes).expect("output is JSON");
    v.sort_all_objects();
    serde_json::to_string_pretty(&v).unwrap()
}

fn request(api: ClientApi, name: &str, model: Option<&str>) -> String {
    let body = fixture(name);
    let t = translate_request(api, WireFormat::Gemini, &body, model).unwrap();
    let shown = match &t.body {
        None => "<original bytes>".to_string(),
        Some(b) if *b == body => "<a copy of the original bytes>".to_string(),
        Some(b) => pretty(b),
    };
    format!(
        "path: {}\nstream: {}\nhide_usage_chunk: {}\nbody: {shown}\n",
        t.path, t.stream, t.hide_usage_chunk
    )
}

fn response(api: ClientApi, name: &str) -> String {
    let (body, usage) = translate_response(api, WireFormat::Gemini, &fixture(name)).unwrap();
    let shown = match &body {
        None => "<original bytes>".to_string(),
        Some(b) => pretty(b),
    };
    format!(
        "usage: {}\nbody: {shown}\n",
        serde_json::to_string(&usage).unwrap()
    )
}

fn stream(api: ClientApi, hide: bool, name: &str) -> String {
    let mut t = stream_translator(api, WireFormat::Gemini, hide);
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
fn request_chat_tools_images_and_tool_results() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        "../chat_request_tools.json",
        Some("gemini-2.5-pro"),
    ));
}

#[test]
fn request_chat_schemas_files_and_stream() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        "chat_request_schemas.json",
        Some("gemini-2.5-flash"),
    ));
}

#[test]
fn request_chat_stream_without_usage() {
    insta::assert_snapshot!(request(
        ClientApi::ChatCompletions,
        "../chat_request_stream.json",
        Some("gemini-2.5-flash-lite"),
    ));
}

#[test]
fn request_messages_tools_thinking_stream() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        "../messages_request_tools.json",
        Some("gemini-2.5-pro"),
    ));
}

#[test]
fn request_messages_documents_and_tool_error() {
    insta::assert_snapshot!(request(
        ClientApi::Messages,
        "messages_request_documents.json",
        Some("gemini-2.5-flash"),
    ));
}

#[test]
fn request_generate_content_is_forwarded() {
    insta::assert_snapshot!(request(
        ClientApi::GenerateContent,
        "generate_content_request.json",
        Some("gemini-2.5-flash"),
    ));
}

#[test]
fn request_model_is_required_and_other_apis_are_unsupported() {
    let chat = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let e = translate_request(ClientApi::ChatCompletions, WireFormat::Gemini, chat, None);
    assert!(matches!(e, Err(Error::InvalidRequest(_))));
    let t = translate_request(
        ClientApi::ChatCompletions,
        WireFormat::Gemini,
        chat,
        Some("g"),
    );
    assert_eq!(t.unwrap().path, "/v1beta/models/g:generateContent");
    let gc = fixture("generate_content_request.json");
    let e = translate_request(ClientApi::GenerateContent, WireFormat::Gemini, &gc, None);
    assert!(matches!(e, Err(Error::InvalidRequest(_))));
    for api in [
        ClientApi::CountTokens,
        ClientApi::Embeddings,
        ClientApi::Models,
    ] {
        let e = translate_request(api, WireFormat::Gemini, chat, Some("g"));
        assert!(matches!(e, Err(Error::Unsupported(_))), "{api:?}");
    }
    // Gemini clients of other formats: see `gemini_client.rs`.
    for to in [
        WireFormat::OpenAi,
        WireFormat::Anthropic,
        WireFormat::Bedrock,
    ] {
        let e = translate_request(ClientApi::GenerateContent, to, &gc, None);
        assert!(matches!(e, Err(Error::InvalidRequest(_))), "{to:?}");
    }
}

// Whole responses.

#[test]
fn response_text_and_thoughts_to_chat() {
    insta::assert_snapshot!(response(ClientApi::ChatCompletions, "response_text.json"));
}

#[test]
fn response_function_calls_to_chat() {
    insta::assert_snapshot!(response(ClientApi::ChatCompletions, "response_tools.json"));
}

#[test]
fn response_text_and_thoughts_to_messages() {
    insta::assert_snapshot!(response(ClientApi::Messages, "response_text.json"));
}

#[test]
fn response_function_calls_to_messages() {
    insta::assert_snapshot!(response(ClientApi::Messages, "response_tools.json"));
}

#[test]
fn response_generate_content_usage_only() {
    insta::assert_snapshot!(format!(
        "{}{}",
        response(ClientApi::GenerateContent, "response_text.json"),
        response(ClientApi::GenerateContent, "response_tools.json"),
    ));
}

// Streams.

#[test]
fn stream_text_and_thoughts_to_chat_with_usage() {
    insta::assert_snapshot!(stream(ClientApi::ChatCompletions, false, "stream_text.sse"));
}

#[test]
fn stream_function_calls_to_chat_no_usage() {
    insta::assert_snapshot!(stream(ClientApi::ChatCompletions, true, "stream_tools.sse"));
}

#[test]
fn stream_error_to_chat() {
    insta::assert_snapshot!(stream(ClientApi::ChatCompletions, true, "stream_error.sse"));
}

#[test]
fn stream_text_and_thoughts_to_messages() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, "stream_text.sse"));
}

#[test]
fn stream_function_calls_to_messages() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, "stream_tools.sse"));
}

#[test]
fn stream_error_to_messages() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, "stream_error.sse"));
}

#[test]
fn stream_passthrough_keeps_every_byte() {
    let mut usages = String::new();
    for name in ["stream_text.sse", "stream_tools.sse", "stream_error.sse"] {
        let input = fixture(name);
        let mut t = stream_translator(ClientApi::GenerateContent, WireFormat::Gemini, false);
        let mut out = Vec::new();
        t.push(&input, &mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(out, input, "{name}");
        assert!(t.output_started(), "{name}");
        usages.push_str(&format!(
            "{name}: {}\n",
            serde_json::to_string(t.usage()).unwrap()
        ));
    }
    insta::assert_snapshot!(usages);
}

// Odd chunk splits and cut streams.

/// Every Gemini stream pairing with each fixture.
const CASES: &[(ClientApi, bool, &str)] = &[
    (ClientApi::ChatCompletions, false, "stream_text.sse"),
    (ClientApi::ChatCompletions, true, "stream_tools.sse"),
    (ClientApi::ChatCompletions, false, "stream_tools.sse"),
    (ClientApi::ChatCompletions, true, "stream_error.sse"),
    (ClientApi::Messages, false, "stream_text.sse"),
    (ClientApi::Messages, false, "stream_tools.sse"),
    (ClientApi::Messages, false, "stream_error.sse"),
    (ClientApi::GenerateContent, false, "stream_text.sse"),
    (ClientApi::GenerateContent, false, "stream_tools.sse"),
    (ClientApi::GenerateContent, false, "stream_error.sse"),
];

#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    usage: Usage,
    started: bool,
    finish_ok: bool,
}

fn run(case: &(ClientApi, bool, &str), chunks: &[&[u8]]) -> Run {
    let (api, hide, _) = *case;
    let mut t = stream_translator(api, WireFormat::Gemini, hide);
    let mut out = Vec::new();
    for c in chunks {
        t.push(c, &mut out).unwrap();
    }
    let finish_ok = t.finish(&mut out).is_ok();
    Run {
        out: String::from_utf8(out).unwrap(),
        usage: t.usage().clone(),
        started: t.output_started(),
        finish_ok,
    }
}

#[test]
fn every_split_point_gives_the_same_output() {
    for case in CASES {
        let input = fixture(case.2);
        let whole = run(case, &[&input]);
        assert!(whole.finish_ok, "{case:?}");
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(run(case, &[a, b]), whole, "{case:?} split at {split}");
        }
    }
}

#[test]
fn one_byte_chunks_give_the_same_output() {
    for case in CASES {
        let input = fixture(case.2);
        let whole = run(case, &[&input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(case, &bytes), whole, "{case:?}");
    }
}

#[test]
fn crlf_line_endings_give_the_same_output() {
    for case in CASES {
        let input = fixture(case.2);
        // Gemini itself ends its events with `\r\n\r\n`.
        let crlf = String::from_utf8(input.clone())
            .unwrap()
            .replace('\n', "\r\n");
        let whole = run(case, &[&input]);
        let chunks: Vec<&[u8]> = crlf.as_bytes().chunks(5).collect();
        for mut got in [run(case, &[crlf.as_bytes()]), run(case, &chunks)] {
            if case.0 == ClientApi::GenerateContent {
                // Passthrough forwards the upstream's own bytes.
                assert_eq!(got.out, crlf, "{case:?}");
                got.out = got.out.replace("\r\n", "\n");
            }
            assert_eq!(got, whole, "{case:?}");
        }
    }
}

#[test]
fn last_event_without_blank_line_is_taken() {
    for case in CASES {
        let input = fixture(case.2);
        let trimmed = input.strip_suffix(b"\n\n").unwrap();
        assert_eq!(run(case, &[trimmed]), run(case, &[&input]), "{case:?}");
    }
}

/// Checks the output is a well-formed stream in the client's format that ends properly.
fn assert_well_formed(api: ClientApi, out: &str, context: &str) {
    let mut p = SseParser::new();
    let events = p.push(out.as_bytes()).unwrap();
    assert_eq!(p.finish().unwrap(), None, "{context}: trailing bytes");
    assert!(!events.is_empty(), "{context}: no events");
    let mut last_json = Value::Null;
    for e in &events {
        if e.data != "[DONE]" {
            last_json = serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("{context}: {err}: {}", e.data));
            if api == ClientApi::Messages {
                assert_eq!(e.event.as_deref(), last_json["type"].as_str(), "{context}");
            }
        }
    }
    let last = events.last().unwrap();
    match api {
        ClientApi::ChatCompletions => assert_eq!(last.data, "[DONE]", "{context}"),
        ClientApi::Messages => assert!(
            matches!(last.event.as_deref(), Some("message_stop" | "error")),
            "{context}: ends with {last:?}"
        ),
        _ => assert!(
            last_json.get("error").is_some()
                || last_json.pointer("/candidates/0/finishReason").is_some(),
            "{context}: ends with {last:?}"
        ),
    }
}

#[test]
fn streams_cut_anywhere_end_well_formed() {
    for case in CASES {
        let input = fixture(case.2);
        for cut in 0..input.len() {
            let (api, hide, name) = *case;
            let mut t = stream_translator(api, WireFormat::Gemini, hide);
            let mut out = Vec::new();
            t.push(&input[..cut], &mut out).unwrap();
            let finished = t.finish(&mut out);
            let out = String::from_utf8(out).unwrap();
            let context = format!("{name} -> {api:?} cut at {cut}: {finished:?}");
            if cut == 0 {
                assert!(finished.is_err(), "{context}");
            }
            assert_well_formed(api, &out, &context);
            // Finishing twice adds nothing.
            let mut more = Vec::new();
            t.finish(&mut more).ok();
            t.push(b"data: {}\n\n", &mut more).ok();
            assert!(more.is_empty(), "{context}");
        }
    }
}

#[test]
fn complete_outputs_are_well_formed() {
    for case in CASES {
        let whole = run(case, &[&fixture(case.2)]);
        assert_well_formed(case.0, &whole.out, case.2);
    }
}

#[test]
fn cut_before_the_finish_reason_is_an_error() {
    let input = String::from_utf8(fixture("stream_tools.sse")).unwrap();
    let cut = input.rfind("data:").unwrap();
    let r = run(
        &(ClientApi::ChatCompletions, false, ""),
        &[&input.as_bytes()[..cut]],
    );
    assert!(!r.finish_ok);
    assert!(r.started);
    assert_eq!(r.usage.input_tokens, 120);
    assert!(r.out.ends_with(
        "data: {\"error\":{\"message\":\"upstream stream ended before completion\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n"
    ), "{}", r.out);
    let r = run(
        &(ClientApi::Messages, false, ""),
        &[&input.as_bytes()[..cut]],
    );
    assert!(!r.finish_ok);
    assert!(r.out.ends_with(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream stream ended before completion\"}}\n\n"
    ), "{}", r.out);
}

// Malformed input.

const GARBAGE: &[&[u8]] = &[
    b"",
    b"   ",
    b"not json",
    b"{\"contents\":",
    b"[]",
    b"null",
    b"42",
    b"\"text\"",
    b"\xff\xfe{}",
];

#[test]
fn garbage_requests_are_invalid() {
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::GenerateContent,
    ] {
        for body in GARBAGE {
            let r = translate_request(api, WireFormat::Gemini, body, Some("g"));
            assert!(
                matches!(r, Err(Error::InvalidRequest(_))),
                "{api:?} {body:?}: {r:?}"
            );
        }
    }
    let wrong_shapes: &[(ClientApi, &str)] = &[
        (ClientApi::ChatCompletions, r#"{"model":"m","messages":{}}"#),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":7}]}"#,
        ),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#,
        ),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{bad"}}]}]}"#,
        ),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#,
        ),
        (
            ClientApi::ChatCompletions,
            r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}"#,
        ),
        (
            ClientApi::Messages,
            r#"{"model":"m","messages":[{"role":"user"}]}"#,
        ),
        (
            ClientApi::Messages,
            r#"{"model":"m","messages":[],"tool_choice":{"type":"maybe"},"tools":[{"name":"f","input_schema":{}}]}"#,
        ),
        (
            ClientApi::Messages,
            r#"{"model":"m","messages":[],"system":5}"#,
        ),
    ];
    for (api, body) in wrong_shapes {
        let r = translate_request(*api, WireFormat::Gemini, body.as_bytes(), None);
        assert!(
            matches!(r, Err(Error::InvalidRequest(_))),
            "{api:?} {body}: {r:?}"
        );
    }
}

#[test]
fn garbage_responses_are_errors_or_empty_usage() {
    let wrong: &[&[u8]] = &[
        b"{}",
        b"{\"candidates\":7}",
        b"{\"candidates\":[{\"content\":{\"parts\":[{\"text\":5}]}}]}",
        b"{\"usageMetadata\":{\"promptTokenCount\":-1},\"candidates\":[{}]}",
    ];
    for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
        for body in GARBAGE.iter().chain(wrong) {
            let r = translate_response(api, WireFormat::Gemini, body);
            assert!(
                matches!(r, Err(Error::InvalidResponse(_))),
                "{api:?} {body:?}: {r:?}"
            );
        }
    }
    for body in GARBAGE.iter().chain(wrong) {
        let (b, u) =
            translate_response(ClientApi::GenerateContent, WireFormat::Gemini, body).unwrap();
        assert!(b.is_none());
        assert_eq!(u, Usage::default());
    }
    for api in [
        ClientApi::Embeddings,
        ClientApi::Models,
        ClientApi::CountTokens,
    ] {
        let r = translate_response(api, WireFormat::Gemini, &fixture("response_text.json"));
        assert!(matches!(r, Err(Error::Unsupported(_))), "{api:?}");
    }
}

#[test]
fn garbage_streams_report_errors_without_panicking() {
    let inputs: &[&[u8]] = &[
        b"data: not json\n\n",
        b"data: []\n\n",
        b"data: {\"candidates\":\"x\"}\n\n",
        b"data: \xff\xfe\n\n",
        b"event: ping\n\n: comment\n\n",
        b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":[1]}}]},\"finishReason\":\"STOP\"}]}\n\n",
    ];
    for api in [
        ClientApi::ChatCompletions,
        ClientApi::Messages,
        ClientApi::GenerateContent,
    ] {
        for input in inputs {
            let mut t = stream_translator(api, WireFormat::Gemini, false);
            let mut out = Vec::new();
            let _ = t.push(input, &mut out);
            let _ = t.finish(&mut out);
            let out = String::from_utf8(out).unwrap();
            let context = format!("{api:?} {input:?}");
            if api == ClientApi::GenerateContent {
                // Passthrough forwards what it cannot read; only the end is checked.
                let last = out.trim_end().rsplit("\n\n").next().unwrap();
                assert!(
                    last.starts_with("data: {\"error\"") || last.contains("finishReason"),
                    "{context}: {out}"
                );
            } else {
                assert_well_formed(api, &out, &context);
            }
        }
    }
}

// Errors.

#[test]
fn errors_translated() {
    let gemini = br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#;
    let mut shown = String::new();
    for (label, api) in [
        ("gemini→chat", ClientApi::ChatCompletions),
        ("gemini→messages", ClientApi::Messages),
    ] {
        let out = translate_error(api, WireFormat::Gemini, 429, gemini).expect("translated");
        shown.push_str(&format!("{label} (429):\n{}\n\n", pretty(&out)));
    }
    let html = b"<html><title>Error 404 (Not Found)!!1</title></html>";
    let out = translate_error(ClientApi::GenerateContent, WireFormat::Gemini, 404, html).unwrap();
    shown.push_str(&format!("html→gemini (404):\n{}\n\n", pretty(&out)));
    let out = gateway_error(
        ClientApi::GenerateContent,
        429,
        "rate limited by the gateway",
    );
    shown.push_str(&format!("gateway→gemini (429):\n{}\n", pretty(&out)));
    insta::assert_snapshot!(shown);
    assert!(translate_error(ClientApi::GenerateContent, WireFormat::Gemini, 429, gemini).is_none());
}
