use super::*;
use agora_proto::resource as pb;

fn guard(action: pb::guard_rule::Action) -> Arc<Guard> {
    Arc::new(
        Guard::compile(&[pb::GuardRule {
            action: action as i32,
            builtins: vec!["EMAIL".into()],
            regexes: vec![],
            reject_message: "no emails".into(),
            webhook: None,
        }])
        .expect("compiles"),
    )
}

fn openai_event(text: &str) -> String {
    format!(
        "data: {}\n\n",
        serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
    )
}

fn texts(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn masks_an_address_split_across_events_and_chunks() {
    let g = guard(pb::guard_rule::Action::Mask);
    let pieces = [
        "Write to jane.",
        "doe@exam",
        "ple.com today, or call. ",
        "That is all.",
    ];
    let mut stream: String = pieces.iter().map(|p| openai_event(p)).collect();
    stream.push_str(&format!(
        "data: {}\n\ndata: [DONE]\n\n",
        serde_json::json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    ));
    // Delivered in odd-sized network chunks.
    let bytes = stream.as_bytes();
    let mut sg = SseGuard::new(g, agora_providers::ClientApi::ChatCompletions);
    let mut out = Vec::new();
    for c in bytes.chunks(7) {
        out.extend(sg.filter(c.to_vec(), false));
    }
    out.extend(sg.filter(Vec::new(), true));
    assert_eq!(texts(&out), "Write to <EMAIL> today, or call. That is all.");
    assert_eq!(sg.outcome, Outcome::Masked);
    let s = String::from_utf8_lossy(&out);
    assert!(s.ends_with("data: [DONE]\n\n"), "{s}");
    assert!(s.find("finish_reason").expect("final chunk") > s.rfind("That is all").expect("text"));
}

#[test]
fn rejects_mid_stream_with_an_error_event() {
    let g = guard(pb::guard_rule::Action::Reject);
    let stream = format!(
        "{}{}{}",
        openai_event("mail "),
        openai_event("me@x.io and then a long tail of text to push it out of the window..."),
        openai_event("more")
    );
    let mut sg = SseGuard::new(g, agora_providers::ClientApi::ChatCompletions);
    let mut out = sg.filter(stream.into_bytes(), false);
    out.extend(sg.filter(Vec::new(), true));
    let s = String::from_utf8_lossy(&out);
    assert_eq!(sg.outcome, Outcome::Rejected);
    assert!(s.contains("event: error") && s.contains("no emails"), "{s}");
    assert!(!s.contains("me@x.io"), "{s}");
    assert!(!s.contains("more"), "{s}");
}

#[test]
fn json_answers() {
    let g = guard(pb::guard_rule::Action::Mask);
    let body = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": "a@b.io"}, "finish_reason": "stop"}]});
    let (out, o) = check_json(&g, body.to_string().into_bytes());
    assert_eq!(o, Outcome::Masked);
    assert!(String::from_utf8_lossy(&out).contains("<EMAIL>"));
    let r = guard(pb::guard_rule::Action::Reject);
    let (out, o) = check_json(&r, body.to_string().into_bytes());
    assert_eq!(o, Outcome::Rejected);
    let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "no emails");
    assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
}
