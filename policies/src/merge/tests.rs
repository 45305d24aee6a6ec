use super::*;
use crate::compile::compile;

fn policy(key: &str, over: bool, traffic: pb::TrafficPolicy) -> Arc<Policy> {
    Arc::new(
        compile(&pb::Policy {
            key: key.into(),
            target: Some(pb::PolicyTarget {
                kind: Some(pb::policy_target::Kind::Gateway("default/gw".into())),
                section: String::new(),
            }),
            r#override: over,
            traffic: Some(traffic),
            prompt_guard: None,
        })
        .expect("compiles"),
    )
}

fn cors(origin: &str) -> pb::TrafficPolicy {
    pb::TrafficPolicy {
        cors: Some(pb::Cors {
            allow_origins: vec![origin.into()],
            ..Default::default()
        }),
        authorization: Some(pb::Authorization {
            action: 0,
            expressions: vec![format!("request.host == {origin:?}")],
        }),
        ..Default::default()
    }
}

fn origin_of(e: &Effective) -> String {
    let h = e
        .cors
        .as_ref()
        .expect("cors")
        .response_headers(Some("https://route.test"));
    h.first().map(|(_, v)| v.clone()).unwrap_or_default()
}

#[test]
fn most_specific_wins_and_rules_add_up() {
    let gw = [policy("gw", false, cors("https://gw.test"))];
    let route = [policy("route", false, cors("https://route.test"))];
    let e = merge(&[&gw, &[], &route, &[]]);
    assert_eq!(origin_of(&e), "https://route.test");
    assert_eq!(e.authorization.len(), 2);
}

#[test]
fn override_at_a_higher_level_wins() {
    let gw = [policy("gw", true, cors("https://gw.test"))];
    let route = [policy("route", false, cors("https://route.test"))];
    let e = merge(&[&gw, &[], &route, &[]]);
    assert_eq!(
        origin_of(&e),
        "",
        "the gateway's origin list does not admit route.test"
    );
    assert_eq!(e.authorization.len(), 1, "the route's rules are overridden");
}

#[test]
fn nothing_attached() {
    let e = merge(&[&[], &[], &[], &[]]);
    assert!(e.is_empty());
}
