use super::*;

fn guard(action: pb::guard_rule::Action, builtins: &[&str], regexes: &[&str]) -> Guard {
    Guard::compile(&[pb::GuardRule {
        action: action as i32,
        builtins: builtins.iter().map(|s| s.to_string()).collect(),
        regexes: regexes.iter().map(|s| s.to_string()).collect(),
        reject_message: "no PII please".into(),
        webhook: None,
    }])
    .expect("compiles")
}

const ALL: [&str; 5] = ["EMAIL", "PHONE_NUMBER", "CREDIT_CARD", "SSN", "IP_ADDRESS"];

#[test]
fn luhn_checks() {
    assert!(luhn("4111 1111 1111 1111"));
    assert!(luhn("5500-0000-0000-0004"));
    assert!(!luhn("4111 1111 1111 1112"));
    assert!(!luhn("1234"));
}

#[test]
fn builtins_mask() {
    let g = guard(pb::guard_rule::Action::Mask, &ALL, &[]);
    let t = "mail bob@example.co.uk or call (555) 123-4567, card 4111 1111 1111 1111, \
             ssn 123-45-6789, host 10.0.0.12";
    assert_eq!(
        g.scan(t).expect("masked"),
        "mail <EMAIL> or call <PHONE_NUMBER>, card <CREDIT_CARD>, ssn <SSN>, host <IP_ADDRESS>"
    );
    // Not a card (Luhn fails), not an SSN (area 000), not an IP (octet 300).
    let clean = "order 4111 1111 1111 1112, id 000-12-3456, version 300.1.1.1";
    assert!(
        matches!(g.scan(clean), Ok(Cow::Borrowed(_))),
        "{:?}",
        g.scan(clean)
    );
}

#[test]
fn reject_and_custom_regex() {
    let g = guard(
        pb::guard_rule::Action::Reject,
        &["SSN"],
        &[r"(?i)project\s+falcon"],
    );
    assert_eq!(
        g.scan("my ssn is 123-45-6789").expect_err("rejected"),
        "no PII please"
    );
    assert!(g.scan("tell me about Project  Falcon").is_err());
    assert!(g.scan("nothing to see").is_ok());
}

#[test]
fn json_bodies_of_each_format() {
    let g = guard(pb::guard_rule::Action::Mask, &["EMAIL"], &[]);
    let mut openai = serde_json::json!({"model": "m", "messages": [
        {"role": "user", "content": "I am a@b.io"},
        {"role": "user", "content": [{"type": "text", "text": "and c@d.io"}]}]});
    assert_eq!(g.apply_json(&mut openai), Ok(true));
    assert_eq!(openai["messages"][0]["content"], "I am <EMAIL>");
    assert_eq!(openai["messages"][1]["content"][0]["text"], "and <EMAIL>");
    let mut gemini = serde_json::json!({"contents": [{"parts": [{"text": "x@y.dev"}]}],
        "systemInstruction": {"parts": [{"text": "ok"}]}});
    assert_eq!(g.apply_json(&mut gemini), Ok(true));
    assert_eq!(gemini["contents"][0]["parts"][0]["text"], "<EMAIL>");
    // The model name and other fields are left alone.
    let mut other = serde_json::json!({"model": "a@b.io", "messages": []});
    assert_eq!(g.apply_json(&mut other), Ok(false));
}

#[test]
fn stream_masking_across_chunk_boundaries() {
    let g = guard(pb::guard_rule::Action::Mask, &ALL, &[]);
    let text = "Sure! Reach me at jane.doe@example.com or 4111-1111-1111-1111; \
                the server is 192.168.10.20 and that is all there is to say about it.";
    let full = g.scan(text).expect("masked").into_owned();
    // Every way of cutting the text into two pieces, and 1-byte pieces.
    for cut in 0..=text.len() {
        let mut m = StreamMasker::default();
        let mut out = m.push(&g, &text[..cut]).expect("ok");
        out += &m.push(&g, &text[cut..]).expect("ok");
        out += &m.finish(&g).expect("ok");
        assert_eq!(out, full, "cut at {cut}");
    }
    let mut m = StreamMasker::default();
    let mut out = String::new();
    for ch in text.chars() {
        out += &m.push(&g, &ch.to_string()).expect("ok");
    }
    out += &m.finish(&g).expect("ok");
    assert_eq!(out, full);
}

#[test]
fn stream_reject() {
    let g = guard(pb::guard_rule::Action::Reject, &["SSN"], &[]);
    let mut m = StreamMasker::default();
    let _ = m.push(&g, "the number is 123-4");
    let rest = m.push(
        &g,
        "5-6789 and a lot more text after it to push it out of the held window",
    );
    let fin = m.finish(&g);
    assert!(rest.is_err() || fin.is_err());
}
