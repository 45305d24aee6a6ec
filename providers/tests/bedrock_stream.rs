//! Bedrock ConverseStream (AWS event-stream binary framing): golden snapshots for both
//! client formats, frames split at every byte, streams cut anywhere, CRC mismatches and
//! garbage. The fixtures are built here with an encoder independent of the crate's decoder.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::sse::SseParser;
use agora_providers::{ClientApi, Error, Usage, WireFormat, stream_translator};
use serde_json::{Value, json};

// The event-stream encoder.

/// CRC-32 (IEEE), bit by bit: independent of the crate's table-driven one.
fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// One event-stream message with string headers.
fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = (16 + h.len() + payload.len()) as u32;
    let mut m = total.to_be_bytes().to_vec();
    m.extend_from_slice(&(h.len() as u32).to_be_bytes());
    m.extend_from_slice(&crc32(&m).to_be_bytes());
    m.extend_from_slice(&h);
    m.extend_from_slice(payload);
    m.extend_from_slice(&crc32(&m).to_be_bytes());
    m
}

/// A ConverseStream event (with the random-looking `p` padding Bedrock adds).
fn event(kind: &str, mut payload: Value) -> Vec<u8> {
    payload["p"] = "abcdefghijklmnopqrstu".into();
    message(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message_text: &str) -> Vec<u8> {
    message(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({ "message": message_text }).to_string().as_bytes(),
    )
}

fn text(index: u32, t: &str) -> Vec<u8> {
    event(
        "contentBlockDelta",
        json!({"contentBlockIndex": index, "delta": {"text": t}}),
    )
}

fn stop(index: u32) -> Vec<u8> {
    event("contentBlockStop", json!({ "contentBlockIndex": index }))
}

fn tool_start(index: u32, id: &str, name: &str) -> Vec<u8> {
    event(
        "contentBlockStart",
        json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}),
    )
}

fn tool_input(index: u32, input: &str) -> Vec<u8> {
    event(
        "contentBlockDelta",
        json!({"contentBlockIndex": index, "delta": {"toolUse": {"input": input}}}),
    )
}

fn message_start() -> Vec<u8> {
    event("messageStart", json!({"role": "assistant"}))
}

fn message_stop(reason: &str) -> Vec<u8> {
    event("messageStop", json!({ "stopReason": reason }))
}

fn metadata() -> Vec<u8> {
    event(
        "metadata",
        json!({
            "usage": {"inputTokens": 412, "outputTokens": 87, "totalTokens": 3059,
                      "cacheReadInputTokens": 2048, "cacheWriteInputTokens": 512},
            "metrics": {"latencyMs": 1834}
        }),
    )
}

/// Text, then two tool calls with their input in pieces.
fn tools_stream() -> Vec<u8> {
    [
        message_start(),
        text(0, "Let me check "),
        text(0, "both cities — 東京 too."),
        stop(0),
        tool_start(1, "tooluse_kZJMlvQmRJ6eAyJE5GIl7Q", "get_weather"),
        tool_input(1, "{\"location\": \"Pa"),
        tool_input(1, "ris, France\"}"),
        stop(1),
        tool_start(2, "tooluse_Qm1sYb7cZ2aE9Xr3KkQw0Y", "get_weather"),
        tool_input(2, "{\"location\": \"Tokyo, Japan\", \"unit\": \"celsius\"}"),
        stop(2),
        message_stop("tool_use"),
        metadata(),
    ]
    .concat()
}

/// Reasoning (text, then signature), then text; stopped by a stop sequence.
fn reasoning_stream() -> Vec<u8> {
    let reasoning = |delta: Value| {
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": delta}}),
        )
    };
    [
        message_start(),
        reasoning(json!({"text": "The user wants a haiku. "})),
        reasoning(json!({"text": "Five, seven, five."})),
        reasoning(json!({"signature": "EqoBCkgIARABGAIiQL2sig=="})),
        stop(0),
        text(1, "Autumn moonlight—\n"),
        text(1, "a worm digs silently\ninto the chestnut."),
        stop(1),
        event(
            "messageStop",
            json!({"stopReason": "stop_sequence", "additionalModelResponseFields": {"stop_sequence": "END"}}),
        ),
        metadata(),
    ]
    .concat()
}

/// Some text, then a throttling exception.
fn exception_stream() -> Vec<u8> {
    [
        message_start(),
        text(0, "Hel"),
        exception(
            "throttlingException",
            "Too many requests, please wait before trying again.",
        ),
    ]
    .concat()
}
// Running translations.

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

#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    usage: Usage,
    started: bool,
    push_ok: bool,
    finish_ok: bool,
}

fn run(api: ClientApi, hide: bool, chunks: &[&[u8]]) -> Run {
    let mut t = stream_translator(api, WireFormat::Bedrock, hide);
    let mut out = Vec::new();
    let mut push_ok = true;
    for c in chunks {
        push_ok &= t.push(c, &mut out).is_ok();
    }
    let finish_ok = t.finish(&mut out).is_ok();
    Run {
        out: normalize_ids(&String::from_utf8(out).unwrap()),
        usage: t.usage().clone(),
        started: t.output_started(),
        push_ok,
        finish_ok,
    }
}

fn stream(api: ClientApi, hide: bool, input: &[u8]) -> String {
    let r = run(api, hide, &[input]);
    format!(
        "usage: {}\noutput_started: {}\npush_ok: {}\nfinish_ok: {}\n---\n{}",
        serde_json::to_string(&r.usage).unwrap(),
        r.started,
        r.push_ok,
        r.finish_ok,
        r.out
    )
}
// Streams.

#[test]
fn stream_to_chat_tools_with_usage() {
    insta::assert_snapshot!(stream(ClientApi::ChatCompletions, false, &tools_stream()));
}

#[test]
fn stream_to_chat_tools_no_usage() {
    insta::assert_snapshot!(stream(ClientApi::ChatCompletions, true, &tools_stream()));
}

#[test]
fn stream_to_chat_reasoning() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        false,
        &reasoning_stream()
    ));
}

#[test]
fn stream_to_chat_exception() {
    insta::assert_snapshot!(stream(
        ClientApi::ChatCompletions,
        true,
        &exception_stream()
    ));
}

#[test]
fn stream_to_messages_tools() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, &tools_stream()));
}

#[test]
fn stream_to_messages_reasoning() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, &reasoning_stream()));
}

#[test]
fn stream_to_messages_exception() {
    insta::assert_snapshot!(stream(ClientApi::Messages, false, &exception_stream()));
}

#[test]
fn stream_to_responses_tools() {
    insta::assert_snapshot!(stream(ClientApi::Responses, false, &tools_stream()));
}

#[test]
fn stream_to_responses_reasoning() {
    insta::assert_snapshot!(stream(ClientApi::Responses, false, &reasoning_stream()));
}

#[test]
fn stream_to_responses_exception() {
    insta::assert_snapshot!(stream(ClientApi::Responses, false, &exception_stream()));
}

#[test]
fn stream_to_generate_content_tools() {
    insta::assert_snapshot!(stream(ClientApi::GenerateContent, false, &tools_stream()));
}

#[test]
fn stream_to_generate_content_exception() {
    insta::assert_snapshot!(stream(
        ClientApi::GenerateContent,
        false,
        &exception_stream()
    ));
}

const CLIENTS: [(ClientApi, bool); 5] = [
    (ClientApi::ChatCompletions, false),
    (ClientApi::ChatCompletions, true),
    (ClientApi::Messages, false),
    (ClientApi::Responses, false),
    (ClientApi::GenerateContent, false),
];

fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tools", tools_stream()),
        ("reasoning", reasoning_stream()),
        ("exception", exception_stream()),
    ]
}

#[test]
fn every_split_point_gives_the_same_output() {
    for (name, input) in fixtures() {
        for (api, hide) in CLIENTS {
            let whole = run(api, hide, &[&input]);
            assert!(whole.push_ok && whole.finish_ok, "{name} {api:?}");
            for split in 0..=input.len() {
                let (a, b) = input.split_at(split);
                assert_eq!(
                    run(api, hide, &[a, b]),
                    whole,
                    "{name} {api:?} split at {split}"
                );
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            assert_eq!(
                run(api, hide, &bytes),
                whole,
                "{name} {api:?} 1-byte chunks"
            );
            let threes: Vec<&[u8]> = input.chunks(3).collect();
            assert_eq!(
                run(api, hide, &threes),
                whole,
                "{name} {api:?} 3-byte chunks"
            );
        }
    }
}

/// The output is a well-formed stream in the client's format that ends properly.
fn assert_well_formed(api: ClientApi, out: &str, context: &str) {
    let mut p = SseParser::new();
    let events = p.push(out.as_bytes()).unwrap();
    assert_eq!(p.finish().unwrap(), None, "{context}: trailing bytes");
    assert!(!events.is_empty(), "{context}: no events");
    for e in &events {
        if e.data != "[DONE]" {
            let v: Value = serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("{context}: {err}: {}", e.data));
            if matches!(api, ClientApi::Messages | ClientApi::Responses) {
                assert_eq!(e.event.as_deref(), v["type"].as_str(), "{context}");
            }
        }
    }
    let last = events.last().unwrap();
    if api == ClientApi::Responses {
        assert!(
            matches!(
                last.event.as_deref(),
                Some("response.completed" | "response.incomplete" | "response.failed")
            ),
            "{context}: ends with {last:?}"
        );
    } else if api == ClientApi::GenerateContent {
        let v: Value = serde_json::from_str(&last.data).unwrap();
        assert!(
            v["error"].is_object() || v["candidates"][0]["finishReason"].is_string(),
            "{context}: ends with {last:?}"
        );
    } else if api == ClientApi::Messages {
        assert!(
            matches!(last.event.as_deref(), Some("message_stop" | "error")),
            "{context}: ends with {last:?}"
        );
    } else {
        assert_eq!(last.data, "[DONE]", "{context}");
    }
}

#[test]
fn streams_cut_anywhere_end_well_formed() {
    let input = tools_stream();
    // Where the messageStop message ends: from there on the stream is complete.
    let complete_at = input.len() - metadata().len();
    for (api, hide) in CLIENTS {
        for cut in 0..input.len() {
            let r = run(api, hide, &[&input[..cut]]);
            let context = format!("{api:?} cut at {cut}");
            assert!(r.push_ok, "{context}");
            assert_eq!(r.finish_ok, cut >= complete_at, "{context}");
            assert_well_formed(api, &r.out, &context);
        }
    }
    // Complete without metadata: the usage is empty, the stream ends normally.
    let r = run(ClientApi::Messages, false, &[&input[..complete_at]]);
    assert!(r.out.contains(r#""stop_reason":"tool_use""#), "{}", r.out);
    assert_eq!(r.usage.input_tokens, 0);
    let r = run(ClientApi::ChatCompletions, false, &[&input[..complete_at]]);
    assert!(r.out.ends_with("data: [DONE]\n\n"), "{}", r.out);
}

#[test]
fn crc_mismatch_is_an_error() {
    let first = message_start();
    let second = text(0, "Hello");
    for corrupt_at in [2, 9, 20, second.len() - 10, second.len() - 1] {
        let mut bad = second.clone();
        bad[corrupt_at] ^= 0x01;
        let input = [
            first.clone(),
            bad,
            text(0, "ignored"),
            message_stop("end_turn"),
        ]
        .concat();
        for (api, hide) in CLIENTS {
            let mut t = stream_translator(api, WireFormat::Bedrock, hide);
            let mut out = Vec::new();
            let e = t.push(&input, &mut out).unwrap_err();
            assert!(matches!(e, Error::InvalidResponse(_)), "{e:?}");
            assert!(e.to_string().contains("CRC mismatch"), "{e}");
            // The client is told at once; the rest of the upstream bytes are ignored.
            let mut tail = Vec::new();
            t.push(&metadata(), &mut tail).unwrap();
            t.finish(&mut tail).unwrap();
            assert!(tail.is_empty());
            let out = String::from_utf8(out).unwrap();
            assert!(
                out.contains("CRC mismatch") && !out.contains("ignored"),
                "{out}"
            );
            assert_well_formed(api, &out, &format!("corrupt at {corrupt_at}"));
        }
    }
}

#[test]
fn oversized_and_garbage_streams_are_errors() {
    let mut huge = (16 * 1024 * 1024u32 + 1).to_be_bytes().to_vec();
    huge.extend_from_slice(&0u32.to_be_bytes());
    let c = crc32(&huge);
    huge.extend_from_slice(&c.to_be_bytes());
    let garbage: &[&[u8]] = &[
        &huge,
        b"data: {\"not\": \"an event stream\"}\n\n",
        &[0xff; 64],
        &[0; 16],
    ];
    for input in garbage {
        for (api, hide) in CLIENTS {
            let r = run(api, hide, &[input]);
            assert!(!r.push_ok, "{api:?} {input:?}");
            assert_well_formed(api, &r.out, &format!("{input:?}"));
        }
    }
    // Well-framed but malformed events are reported and skipped; the stream goes on.
    let input = [
        message_start(),
        event("contentBlockDelta", json!({"delta": {"text": 5}})),
        message(&[(":message-type", "event")], b"{}"),
        message(&[(":message-type", "other")], b"{}"),
        tool_input(3, "{}"),
        text(0, "ok"),
        event("somethingNew", json!({})),
        message_stop("end_turn"),
    ]
    .concat();
    for (api, hide) in CLIENTS {
        let r = run(api, hide, &[&input]);
        assert!(!r.push_ok && r.finish_ok, "{api:?}");
        assert!(r.out.contains("\"ok\""), "{}", r.out);
        assert_well_formed(api, &r.out, "malformed events");
    }
}
