//! Stream translators fed in odd chunk splits (every split point, single bytes, CRLF line
//! endings) must produce exactly what one whole push produces; streams cut anywhere must
//! still end in a well-formed client stream, with an error, never a panic.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::sse::SseParser;
use agora_providers::{ClientApi, Usage, WireFormat, stream_translator};
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every stream pairing with each fixture it applies to.
const CASES: &[(ClientApi, WireFormat, bool, &str)] = &[
    (
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        false,
        "anthropic_stream_tools.sse",
    ),
    (
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        true,
        "anthropic_stream_tools.sse",
    ),
    (
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        true,
        "anthropic_stream_error.sse",
    ),
    (
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_tools.sse",
    ),
    (
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_reasoning.sse",
    ),
    (
        ClientApi::Messages,
        WireFormat::OpenAi,
        true,
        "openai_stream_error.sse",
    ),
    (
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        true,
        "openai_stream_tools.sse",
    ),
    (
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        false,
        "openai_stream_reasoning.sse",
    ),
    (
        ClientApi::ChatCompletions,
        WireFormat::OpenAi,
        true,
        "openai_stream_error.sse",
    ),
    (
        ClientApi::Messages,
        WireFormat::Anthropic,
        false,
        "anthropic_stream_tools.sse",
    ),
    (
        ClientApi::Messages,
        WireFormat::Anthropic,
        false,
        "anthropic_stream_error.sse",
    ),
];

#[derive(Debug, PartialEq)]
struct Run {
    out: String,
    usage: Usage,
    started: bool,
    finish_ok: bool,
}

fn run(case: &(ClientApi, WireFormat, bool, &str), chunks: &[&[u8]]) -> Run {
    let (api, from, hide, _) = *case;
    let mut t = stream_translator(api, from, hide);
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

fn same_format(case: &(ClientApi, WireFormat, bool, &str)) -> bool {
    case.0.format() == case.1
}

#[test]
fn every_split_point_gives_the_same_output() {
    for case in CASES {
        let input = fixture(case.3);
        let whole = run(case, &[&input]);
        assert!(whole.finish_ok, "{}", case.3);
        for split in 0..=input.len() {
            let (a, b) = input.split_at(split);
            assert_eq!(run(case, &[a, b]), whole, "{case:?} split at {split}");
        }
    }
}

#[test]
fn three_way_splits_give_the_same_output() {
    for case in CASES {
        let input = fixture(case.3);
        let whole = run(case, &[&input]);
        let step = input.len() / 23 + 1;
        for i in (0..input.len()).step_by(step) {
            for j in (i..input.len()).step_by(7) {
                let got = run(case, &[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(got, whole, "{case:?} split at {i}, {j}");
            }
        }
    }
}

#[test]
fn one_byte_chunks_give_the_same_output() {
    for case in CASES {
        let input = fixture(case.3);
        let whole = run(case, &[&input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(case, &bytes), whole, "{case:?}");
    }
}

#[test]
fn crlf_line_endings_give_the_same_output() {
    for case in CASES {
        let input = fixture(case.3);
        let crlf = String::from_utf8(input.clone())
            .unwrap()
            .replace('\n', "\r\n");
        let whole = run(case, &[&input]);
        let bytes: Vec<&[u8]> = crlf.as_bytes().chunks(5).collect();
        for mut got in [run(case, &[crlf.as_bytes()]), run(case, &bytes)] {
            if same_format(case) {
                // Passthrough forwards the upstream's own bytes (its own events end in CRLF).
                assert!(got.out.contains("}\r\n\r\n"), "{case:?}");
                got.out = got.out.replace("\r\n", "\n");
            }
            assert_eq!(got, whole, "{case:?}");
        }
    }
}

/// Checks the output is a well-formed stream in the client's format that ends properly.
fn assert_well_formed(api: ClientApi, out: &str, context: &str) {
    let mut p = SseParser::new();
    let events = p.push(out.as_bytes()).unwrap();
    assert_eq!(p.finish().unwrap(), None, "{context}: trailing bytes");
    assert!(!events.is_empty(), "{context}: no events");
    for e in &events {
        if e.data != "[DONE]" {
            let v: Value = serde_json::from_str(&e.data)
                .unwrap_or_else(|err| panic!("{context}: {err}: {}", e.data));
            if api.format() == WireFormat::Anthropic {
                assert_eq!(e.event.as_deref(), v["type"].as_str(), "{context}");
            }
        }
    }
    let last = events.last().unwrap();
    match api.format() {
        WireFormat::OpenAi => assert_eq!(last.data, "[DONE]", "{context}"),
        WireFormat::Anthropic => assert!(
            matches!(last.event.as_deref(), Some("message_stop" | "error")),
            "{context}: ends with {last:?}"
        ),
        other => panic!("{context}: no stream cases for client format {other:?}"),
    }
}

#[test]
fn streams_cut_anywhere_end_well_formed() {
    for case in CASES {
        let input = fixture(case.3);
        for cut in 0..input.len() {
            let (api, from, hide, name) = *case;
            let mut t = stream_translator(api, from, hide);
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
        let whole = run(case, &[&fixture(case.3)]);
        assert_well_formed(case.0, &whole.out, case.3);
    }
}

#[test]
fn last_event_without_blank_line_is_taken() {
    let input = fixture("openai_stream_tools.sse");
    let trimmed = input.strip_suffix(b"\n\n").unwrap();
    for (api, hide) in [
        (ClientApi::ChatCompletions, true),
        (ClientApi::Messages, true),
    ] {
        let case = (api, WireFormat::OpenAi, hide, "");
        let a = run(&case, &[&input]);
        let b = run(&case, &[trimmed]);
        assert_eq!(a, b, "{api:?}");
    }
    let input = fixture("anthropic_stream_tools.sse");
    let trimmed = input.strip_suffix(b"\n").unwrap();
    for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
        let case = (api, WireFormat::Anthropic, false, "");
        assert_eq!(run(&case, &[&input]), run(&case, &[trimmed]), "{api:?}");
    }
}

#[test]
fn truncated_streams_report_errors() {
    // Cut after the first content event: the client gets an error event, finish errs.
    let input = String::from_utf8(fixture("anthropic_stream_tools.sse")).unwrap();
    let cut = input.find("event: content_block_stop").unwrap();
    let case = (ClientApi::ChatCompletions, WireFormat::Anthropic, false, "");
    let r = run(&case, &[&input.as_bytes()[..cut]]);
    assert!(!r.finish_ok);
    assert!(r.out.ends_with(
        "data: {\"error\":{\"message\":\"upstream stream ended before completion\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\ndata: [DONE]\n\n"
    ), "{}", r.out);
    assert!(r.started);
    assert_eq!(r.usage.input_tokens, 2520);

    let input = String::from_utf8(fixture("openai_stream_tools.sse")).unwrap();
    let cut = input.find("\"finish_reason\":\"tool_calls\"").unwrap();
    let case = (ClientApi::Messages, WireFormat::OpenAi, true, "");
    let r = run(&case, &[&input.as_bytes()[..cut]]);
    assert!(!r.finish_ok);
    assert!(r.out.ends_with(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\nevent: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"upstream stream ended before completion\"}}\n\n"
    ), "{}", r.out);

    // Cut after the finish reason but before the usage chunk and [DONE]: complete.
    let cut = input.find("\"choices\":[],").unwrap();
    let cut = input[..cut].rfind("data:").unwrap();
    let r = run(&case, &[&input.as_bytes()[..cut]]);
    assert!(r.finish_ok);
    assert!(
        r.out
            .ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
    );

    // Anthropic passthrough with message_delta but no message_stop: message_stop is added.
    let input = String::from_utf8(fixture("anthropic_stream_tools.sse")).unwrap();
    let cut = input.find("event: message_stop").unwrap();
    let case = (ClientApi::Messages, WireFormat::Anthropic, false, "");
    let r = run(&case, &[&input.as_bytes()[..cut]]);
    assert!(r.finish_ok);
    assert_eq!(r.out, input);
}
