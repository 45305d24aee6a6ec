//! Malformed input gives errors, never panics.

// Test helpers may unwrap too (clippy.toml only covers `#[test]` functions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use agora_providers::{
    ClientApi, Error, WireFormat, inspect, stream_translator, translate_error, translate_request,
    translate_response,
};

const APIS: [ClientApi; 5] = [
    ClientApi::ChatCompletions,
    ClientApi::Messages,
    ClientApi::CountTokens,
    ClientApi::Embeddings,
    ClientApi::Models,
];
const FORMATS: [WireFormat; 2] = [WireFormat::OpenAi, WireFormat::Anthropic];

/// Bodies that are not JSON objects at all.
const GARBAGE: &[&[u8]] = &[
    b"",
    b"   ",
    b"not json",
    b"{\"model\":",
    b"[]",
    b"[\"gpt-4\", []]",
    b"null",
    b"42",
    b"\"text\"",
    b"\xff\xfe{}",
];

#[test]
fn garbage_requests_are_invalid() {
    for api in APIS {
        for to in FORMATS {
            for body in GARBAGE {
                match translate_request(api, to, body, Some("m")) {
                    Err(Error::InvalidRequest(_)) | Err(Error::Unsupported(_)) => {}
                    // Models requests carry no body to read.
                    Ok(t) if api == ClientApi::Models => assert!(t.body.is_none()),
                    other => panic!("{api:?} -> {to:?} {body:?}: {other:?}"),
                }
            }
        }
        for body in GARBAGE {
            if api != ClientApi::Models || !body.iter().all(u8::is_ascii_whitespace) {
                assert!(inspect(api, body).is_err(), "{api:?} {body:?}");
            }
        }
    }
}

fn chat_to_anthropic(body: &str) -> Result<agora_providers::Translated, Error> {
    translate_request(
        ClientApi::ChatCompletions,
        WireFormat::Anthropic,
        body.as_bytes(),
        None,
    )
}

fn messages_to_openai(body: &str) -> Result<agora_providers::Translated, Error> {
    translate_request(
        ClientApi::Messages,
        WireFormat::OpenAi,
        body.as_bytes(),
        None,
    )
}

#[test]
fn wrong_shapes_chat_to_anthropic() {
    let invalid = [
        r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"m"}"#,
        r#"{"model":"m","messages":{}}"#,
        r#"{"model":"m","messages":[{"content":"hi"}]}"#,
        r#"{"model":"m","messages":[{"role":"wizard","content":"hi"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":42}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"video","url":"x"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,notbase64"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{broken"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1,2]"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"tool","content":"x"}]}"#,
        r#"{"model":"m","messages":[],"stop":5}"#,
        r#"{"model":"m","messages":[],"stop":["a",1]}"#,
        r#"{"model":"m","messages":[],"max_tokens":"many"}"#,
        r#"{"model":"m","messages":[],"max_tokens":-1}"#,
        r#"{"model":"m","messages":[],"temperature":"hot"}"#,
        r#"{"model":"m","messages":[],"stream":"yes"}"#,
        r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}"#,
        r#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function"}}"#,
        r#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#,
        r#"{"model":"m","messages":[],"tools":"all"}"#,
    ];
    for body in invalid {
        assert!(
            matches!(chat_to_anthropic(body), Err(Error::InvalidRequest(_))),
            "{body}: {:?}",
            chat_to_anthropic(body)
        );
    }
    let unsupported = [
        r#"{"model":"m","messages":[],"n":2}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AAAA","format":"wav"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}"#,
        r#"{"model":"m","messages":[],"tools":[{"type":"custom","custom":{"name":"x"}}]}"#,
    ];
    for body in unsupported {
        let got = chat_to_anthropic(body);
        assert!(matches!(got, Err(Error::Unsupported(_))), "{body}: {got:?}");
        assert_eq!(got.unwrap_err().status(), 400);
    }
}

#[test]
fn wrong_shapes_messages_to_openai() {
    let invalid = [
        r#"{"max_tokens":10,"messages":[]}"#,
        r#"{"model":"m","messages":"hi"}"#,
        r#"{"model":"m","messages":[{"role":"system","content":"hi"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":7}]}"#,
        r#"{"model":"m","system":5,"messages":[]}"#,
        r#"{"model":"m","system":[{"type":"text"}],"messages":[]}"#,
        r#"{"model":"m","messages":[],"stop_sequences":"END"}"#,
        r#"{"model":"m","messages":[],"tools":[{"name":"t"}]}"#,
        r#"{"model":"m","messages":[],"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"tool"}}"#,
        r#"{"model":"m","messages":[],"tools":[{"name":"t","input_schema":{}}],"tool_choice":{"type":"maybe"}}"#,
        r#"{"model":"m","messages":[],"tools":[{"name":"t","input_schema":{}}],"tool_choice":"auto"}"#,
    ];
    for body in invalid {
        let got = messages_to_openai(body);
        assert!(
            matches!(got, Err(Error::InvalidRequest(_))),
            "{body}: {got:?}"
        );
    }
    let unsupported = [
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"server_tool_use","id":"s","name":"web_search","input":{}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"assistant","content":[{"type":"web_search_tool_result","tool_use_id":"s","content":[]}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]}]}"#,
        r#"{"model":"m","messages":[],"tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}]}"#,
    ];
    for body in unsupported {
        let got = messages_to_openai(body);
        assert!(matches!(got, Err(Error::Unsupported(_))), "{body}: {got:?}");
    }
}

#[test]
fn unsupported_pairs() {
    let body = br#"{"model":"m","messages":[]}"#;
    for (api, to) in [
        (ClientApi::CountTokens, WireFormat::OpenAi),
        (ClientApi::Embeddings, WireFormat::Anthropic),
    ] {
        assert!(matches!(
            translate_request(api, to, body, None),
            Err(Error::Unsupported(_))
        ));
        assert!(matches!(
            translate_response(api, to, b"{}"),
            Err(Error::Unsupported(_))
        ));
    }
}

#[test]
fn malformed_responses() {
    for body in GARBAGE {
        for (api, from) in [
            (ClientApi::ChatCompletions, WireFormat::Anthropic),
            (ClientApi::Messages, WireFormat::OpenAi),
        ] {
            let got = translate_response(api, from, body);
            assert!(
                matches!(got, Err(Error::InvalidResponse(_))),
                "{body:?}: {got:?}"
            );
            assert_eq!(got.unwrap_err().status(), 502);
        }
        // Same format: forwarded as is, usage unknown.
        for (api, from) in [
            (ClientApi::ChatCompletions, WireFormat::OpenAi),
            (ClientApi::Messages, WireFormat::Anthropic),
            (ClientApi::Embeddings, WireFormat::OpenAi),
        ] {
            let (b, u) = translate_response(api, from, body).unwrap();
            assert!(b.is_none());
            assert_eq!(u, Default::default());
        }
    }
    let wrong = [
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            r#"{"id":"x"}"#,
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            r#"{"content":"text"}"#,
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            r#"{"content":[],"usage":{"input_tokens":"many"}}"#,
        ),
        (ClientApi::Messages, WireFormat::OpenAi, r#"{"choices":[]}"#),
        (ClientApi::Messages, WireFormat::OpenAi, r#"{"choices":{}}"#),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            r#"{"choices":[{"message":{"content":5}}]}"#,
        ),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            r#"{"choices":[{"message":{"tool_calls":[{"id":"x"}]}}]}"#,
        ),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            r#"{"choices":[{"message":{}}],"usage":{"prompt_tokens":-3}}"#,
        ),
    ];
    for (api, from, body) in wrong {
        let got = translate_response(api, from, body.as_bytes());
        assert!(
            matches!(got, Err(Error::InvalidResponse(_))),
            "{body}: {got:?}"
        );
    }
}

#[test]
fn malformed_error_bodies_are_wrapped() {
    for body in GARBAGE {
        for api in APIS {
            for from in FORMATS {
                if let Some(out) = translate_error(api, from, 500, body) {
                    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
                    assert!(v["error"]["message"].is_string(), "{body:?}");
                }
            }
        }
    }
}

#[test]
fn malformed_stream_events_are_errors() {
    let cases: [(ClientApi, WireFormat, &str); 9] = [
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "event: message_start\ndata: {not json\n\n",
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "data: [1,2]\n\n",
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "data: {\"type\":\"message_start\",\"message\":5}\n\n",
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":5}}\n\n",
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "data: {\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}\n\n",
        ),
        (
            ClientApi::ChatCompletions,
            WireFormat::Anthropic,
            "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\"}}\n\n",
        ),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            "data: {not json\n\n",
        ),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            "data: {\"choices\":\"many\"}\n\n",
        ),
        (
            ClientApi::Messages,
            WireFormat::OpenAi,
            "data: {\"choices\":[{\"delta\":{\"content\":7}}]}\n\n",
        ),
    ];
    for (api, from, input) in cases {
        let mut t = stream_translator(api, from, false);
        let mut out = Vec::new();
        let got = t.push(input.as_bytes(), &mut out);
        assert!(
            matches!(got, Err(Error::InvalidResponse(_))),
            "{input}: {got:?}"
        );
        // The translator stays usable and still ends the client's stream.
        let mut end = Vec::new();
        assert!(t.finish(&mut end).is_err());
        assert!(!end.is_empty());
    }
}

#[test]
fn invalid_utf8_and_endless_lines_in_streams() {
    for api in [ClientApi::ChatCompletions, ClientApi::Messages] {
        for from in FORMATS {
            let mut t = stream_translator(api, from, false);
            let mut out = Vec::new();
            assert!(t.push(b"data: \xc3\x28\n\n", &mut out).is_err());

            let mut t = stream_translator(api, from, false);
            let chunk = vec![b'a'; 1 << 20];
            let mut result = Ok(());
            for _ in 0..20 {
                result = t.push(&chunk, &mut out);
                if result.is_err() {
                    break;
                }
            }
            assert!(matches!(result, Err(Error::InvalidResponse(_))));
        }
    }
}

#[test]
fn passthrough_forwards_unreadable_events() {
    let input = b"data: {not json}\n\n: comment\n\ndata: [DONE]\n\n";
    let mut t = stream_translator(ClientApi::ChatCompletions, WireFormat::OpenAi, true);
    let mut out = Vec::new();
    t.push(input, &mut out).unwrap();
    t.finish(&mut out).unwrap();
    assert_eq!(out, input);
    let input = b"event: weird\ndata: {not json}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    let mut t = stream_translator(ClientApi::Messages, WireFormat::Anthropic, false);
    let mut out = Vec::new();
    t.push(input, &mut out).unwrap();
    t.finish(&mut out).unwrap();
    assert_eq!(out, input);
}
