//! Canned LLM answers in the real wire formats, for benchmarking the gateway's LLM path:
//! an OpenAI chat completion (JSON, or an SSE stream ending with a usage chunk and
//! `[DONE]`), and an Anthropic message (JSON, or its SSE event sequence).

const CHAT_JSON: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"bench-model","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog."},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":256,"completion_tokens":12,"total_tokens":268,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

const MESSAGES_JSON: &str = r#"{"id":"msg_bench","type":"message","role":"assistant","model":"bench-model","content":[{"type":"text","text":"The quick brown fox jumps over the lazy dog."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":256,"output_tokens":12,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}"#;

const WORDS: [&str; 9] = [
    "The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog.",
];

fn chat_stream() -> String {
    let chunk = |delta: &str, finish: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}],\"usage\":null}}\n\n"
        )
    };
    let mut s = chunk(r#"{"role":"assistant","content":""}"#, "null");
    for w in WORDS {
        s.push_str(&chunk(&format!("{{\"content\":\"{w}\"}}"), "null"));
    }
    s.push_str(&chunk("{}", "\"stop\""));
    s.push_str("data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":256,\"completion_tokens\":12,\"total_tokens\":268}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

fn messages_stream() -> String {
    let mut s = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"bench-model\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":256,\"output_tokens\":1}}}\n\n",
    );
    s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for w in WORDS {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{w}\"}}}}\n\n"));
    }
    s.push_str(
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
    );
    s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12}}\n\n");
    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s
}

/// Appends the whole answer (head and body) for a chat (`chat`) or messages request.
pub fn write(out: &mut Vec<u8>, chat: bool, stream: bool, close: bool) {
    let conn = if close { "close" } else { "keep-alive" };
    if stream {
        let body = if chat {
            chat_stream()
        } else {
            messages_stream()
        };
        out.extend_from_slice(
            format!("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: {conn}\r\n\r\n").as_bytes(),
        );
        // One chunk per event, as a provider flushes them.
        for ev in body.split_inclusive("\n\n") {
            out.extend_from_slice(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
        }
        out.extend_from_slice(b"0\r\n\r\n");
    } else {
        let body = if chat { CHAT_JSON } else { MESSAGES_JSON };
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: {conn}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn answers_are_well_formed() {
        for (chat, stream) in [(true, false), (true, true), (false, false), (false, true)] {
            let mut out = Vec::new();
            super::write(&mut out, chat, stream, false);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
            if !stream {
                let body = text.split("\r\n\r\n").nth(1).unwrap();
                let v: serde_json_free::Value = serde_json_free::parse(body);
                assert!(v.0, "{body}");
            } else {
                assert!(text.ends_with("0\r\n\r\n"));
            }
        }
    }

    /// A tiny well-formedness check (the mock has no JSON dependency).
    mod serde_json_free {
        pub struct Value(pub bool);
        pub fn parse(s: &str) -> Value {
            let mut depth = 0i32;
            let mut in_str = false;
            let mut esc = false;
            for c in s.chars() {
                if in_str {
                    match (esc, c) {
                        (true, _) => esc = false,
                        (false, '\\') => esc = true,
                        (false, '"') => in_str = false,
                        _ => {}
                    }
                    continue;
                }
                match c {
                    '"' => in_str = true,
                    '{' | '[' => depth += 1,
                    '}' | ']' => depth -= 1,
                    _ => {}
                }
            }
            Value(depth == 0 && !in_str)
        }
    }
}
