use std::collections::HashSet;
use std::sync::Arc;

use agora_policies::cel::Expr;
use agora_proto::resource as pb;
use rand::{Rng, SeedableRng};

use super::VirtualModel;
use crate::llm::{ProviderAuth, ProviderIr, Vendor};

fn provider(name: &str, model: Option<&str>, models: &[&str]) -> Arc<ProviderIr> {
    Arc::new(ProviderIr {
        name: name.into(),
        kind: "openai".into(),
        format: agora_providers::WireFormat::OpenAi,
        model: model.map(str::to_string),
        host: "127.0.0.1".into(),
        port: 1,
        path_prefix: String::new(),
        tls: false,
        auth: ProviderAuth::None,
        vendor: Vendor::Direct,
        models: models.iter().map(|m| m.to_string()).collect(),
        endpoint: None,
    })
}

fn providers() -> Vec<Arc<ProviderIr>> {
    vec![
        provider("a", None, &[]),
        provider("b", Some("claude-sonnet-4-5"), &[]),
        provider("c", None, &["gpt-*"]),
    ]
}

fn target(
    provider: &str,
    model: &str,
    weight: u32,
    priority: u32,
    when: &str,
) -> pb::VirtualModelTarget {
    pb::VirtualModelTarget {
        provider: provider.into(),
        model: model.into(),
        weight,
        priority,
        when: when.into(),
    }
}

fn build(targets: Vec<pb::VirtualModelTarget>) -> crate::error::Result<VirtualModel> {
    let v = pb::VirtualModel {
        name: "smart".into(),
        targets,
    };
    VirtualModel::build(&v, &providers(), "backend/x.ai.virtualModels[0]")
}

fn healthy(_: &super::Target) -> bool {
    true
}

#[test]
fn weights_split_exactly_over_every_draw_residue() {
    let v = build(vec![
        target("a", "gpt-4o", 90, 0, ""),
        target("b", "", 10, 0, ""),
    ])
    .unwrap();
    assert_eq!(
        v.targets[1].model, "claude-sonnet-4-5",
        "the provider's model"
    );
    let all = v.matching(|_| unreachable!("no conditions"));
    let mut counts = [0u32; 2];
    for draw in 0..1000u64 {
        counts[v.pick(&all, &[], healthy, draw).unwrap()] += 1;
    }
    assert_eq!(counts, [900, 100]);
}

#[test]
fn weights_split_random_draws_in_proportion() {
    let v = build(vec![
        target("a", "gpt-4o", 3, 0, ""),
        target("b", "", 1, 0, ""),
        target("a", "gpt-4o-mini", 0, 0, ""),
    ])
    .unwrap();
    let all = v.matching(|_| true);
    assert_eq!(all, vec![0, 1], "weight 0 takes no traffic");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut counts = [0u32; 3];
    for _ in 0..20_000 {
        counts[v.pick(&all, &[], healthy, rng.random()).unwrap()] += 1;
    }
    assert_eq!(counts[2], 0);
    let share = f64::from(counts[0]) / 20_000.0;
    assert!((0.73..0.77).contains(&share), "{counts:?}");
}

#[test]
fn failover_follows_priority_then_ends() {
    let v = build(vec![
        target("c", "gpt-4o-mini", 1, 2, ""),
        target("a", "gpt-4o", 1, 0, ""),
        target("b", "", 1, 1, ""),
    ])
    .unwrap();
    let all = v.matching(|_| true);
    let mut tried = Vec::new();
    while let Some(i) = v.pick(&all, &tried, healthy, 12345) {
        tried.push(i);
    }
    let order: Vec<&str> = tried.iter().map(|&i| v.targets[i].model.as_str()).collect();
    assert_eq!(order, ["gpt-4o", "claude-sonnet-4-5", "gpt-4o-mini"]);
}

#[test]
fn same_priority_targets_are_all_tried_before_the_next_level() {
    let v = build(vec![
        target("a", "gpt-4o", 1, 0, ""),
        target("c", "gpt-4.1", 1, 0, ""),
        target("b", "", 1, 1, ""),
    ])
    .unwrap();
    let all = v.matching(|_| true);
    for draw in 0..4 {
        let mut tried = Vec::new();
        while let Some(i) = v.pick(&all, &tried, healthy, draw) {
            tried.push(i);
        }
        assert_eq!(tried.len(), 3);
        assert_eq!(tried[2], 2, "priority 1 comes last");
        assert_eq!(tried[..2].iter().collect::<HashSet<_>>().len(), 2);
    }
}

#[test]
fn unhealthy_targets_are_skipped_while_a_healthy_one_is_left() {
    let v = build(vec![
        target("a", "gpt-4o", 1, 0, ""),
        target("b", "", 1, 1, ""),
    ])
    .unwrap();
    let all = v.matching(|_| true);
    let only_b = |t: &super::Target| t.provider.name == "b";
    assert_eq!(v.pick(&all, &[], only_b, 0), Some(1));
    // Nothing healthy: still the first by priority, then the rest.
    let none = |_: &super::Target| false;
    assert_eq!(v.pick(&all, &[], none, 0), Some(0));
    assert_eq!(v.pick(&all, &[0], none, 0), Some(1));
    assert_eq!(v.pick(&all, &[0, 1], none, 0), None);
}

#[test]
fn health_that_changes_during_a_pick_still_gives_a_target() {
    let v = build(vec![
        target("a", "gpt-4o", 1, 0, ""),
        target("c", "gpt-4o-mini", 1, 0, ""),
        target("b", "", 1, 1, ""),
    ])
    .unwrap();
    let all = v.matching(|_| true);
    // Healthy while the best priority and its weights are read, then ejected.
    for healthy_reads in 0..8 {
        let reads = std::cell::Cell::new(0);
        let flaky = |_: &super::Target| {
            reads.set(reads.get() + 1);
            reads.get() <= healthy_reads
        };
        let got = v.pick(&all, &[], flaky, 1);
        assert!(got.is_some(), "{healthy_reads} healthy reads");
    }
}

#[test]
fn conditions_choose_the_targets() {
    let v = build(vec![
        target("b", "", 1, 0, r#"request.headers["x-tier"] == "premium""#),
        target("a", "gpt-4o-mini", 1, 1, ""),
    ])
    .unwrap();
    assert!(v.conditional);
    assert!(!v.uses.reads_body());
    let headers = |tier: Option<&str>| {
        let mut h = http::HeaderMap::new();
        if let Some(t) = tier {
            h.insert("x-tier", t.parse().unwrap());
        }
        h
    };
    let identity = agora_policies::authn::Identity::default();
    for (tier, first) in [
        (Some("premium"), "claude-sonnet-4-5"),
        (Some("free"), "gpt-4o-mini"),
        (None, "gpt-4o-mini"),
    ] {
        let h = headers(tier);
        let attrs = agora_policies::cel::Attributes {
            request: agora_policies::cel::RequestView {
                method: "POST",
                path: "/v1/chat/completions",
                host: "gw",
                headers: &h,
            },
            source: None,
            identity: &identity,
            llm: None,
            mcp: None,
            a2a: None,
        };
        let cel = attrs.context(v.uses);
        // A missing header is an evaluation error: the condition does not hold.
        let all = v.matching(|e: &Expr| e.eval_bool(&cel).unwrap_or(false));
        let i = v.pick(&all, &[], healthy, 0).unwrap();
        assert_eq!(v.targets[i].model, first, "tier {tier:?}");
    }
}

#[test]
fn conditions_on_llm_attributes() {
    let v = build(vec![
        target("b", "", 1, 0, "llm.inputTokens > 1000u"),
        target("a", "gpt-4o-mini", 1, 0, "llm.inputTokens <= 1000u"),
    ])
    .unwrap();
    assert!(v.uses.reads_llm());
    let h = http::HeaderMap::new();
    let identity = agora_policies::authn::Identity::default();
    for (tokens, model) in [(5000, "claude-sonnet-4-5"), (10, "gpt-4o-mini")] {
        let llm = agora_policies::cel::LlmAttrs {
            request_model: "smart".into(),
            input_tokens: tokens,
            ..Default::default()
        };
        let attrs = agora_policies::cel::Attributes {
            request: agora_policies::cel::RequestView {
                method: "POST",
                path: "/",
                host: "gw",
                headers: &h,
            },
            source: None,
            identity: &identity,
            llm: Some(&llm),
            mcp: None,
            a2a: None,
        };
        let cel = attrs.context(v.uses);
        let all = v.matching(|e: &Expr| e.eval_bool(&cel).unwrap_or(false));
        assert_eq!(all.len(), 1);
        assert_eq!(v.targets[all[0]].model, model);
    }
}

#[test]
fn bad_config_is_rejected_naming_the_field() {
    let err = |targets| build(targets).unwrap_err().to_string();
    let e = err(vec![target("nope", "gpt-4o", 1, 0, "")]);
    assert!(
        e.contains("virtualModels[0].targets[0].provider") && e.contains("nope"),
        "{e}"
    );
    let e = err(vec![target("a", "", 1, 0, "")]);
    assert!(e.contains("targets[0].model"), "{e}");
    let e = err(vec![target("c", "claude-3", 1, 0, "")]);
    assert!(e.contains("targets[0].model") && e.contains("gpt-*"), "{e}");
    let e = err(vec![
        target("a", "gpt-4o", 1, 0, ""),
        target("a", "gpt-4o", 1, 0, "request.headers["),
    ]);
    assert!(e.contains("targets[1].when"), "{e}");
    let e = err(vec![target("a", "gpt-4o", 1, 0, "nosuchvar == 1")]);
    assert!(
        e.contains("targets[0].when") && e.contains("nosuchvar"),
        "{e}"
    );
    let e = err(vec![]);
    assert!(e.contains("virtualModels[0].targets"), "{e}");
}

/// An AI backend over an OpenAI and an Anthropic provider, with virtual models.
fn backend(virtual_models: Vec<pb::VirtualModel>) -> crate::error::Result<crate::llm::AiIr> {
    backend_with_aliases(virtual_models, &[])
}

/// [`backend`] with model aliases.
fn backend_with_aliases(
    virtual_models: Vec<pb::VirtualModel>,
    aliases: &[(&str, &str)],
) -> crate::error::Result<crate::llm::AiIr> {
    let p = |name: &str, format: pb::ai_provider::Format, port| pb::AiProvider {
        name: name.into(),
        format: format as i32,
        host: "127.0.0.1".into(),
        port,
        ..Default::default()
    };
    let ai = pb::AiBackend {
        groups: vec![pb::AiProviderGroup {
            providers: vec![
                p("oai", pb::ai_provider::Format::Openai, 9001),
                p("ant", pb::ai_provider::Format::Anthropic, 9002),
            ],
        }],
        virtual_models,
        model_aliases: aliases
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    crate::llm::ai_backend("backend/llm", &ai, None, &Default::default())
}

fn body_model(llm: &crate::llm::LlmCtx) -> String {
    let v: serde_json::Value = serde_json::from_slice(llm.upstream_body_bytes()).unwrap();
    v["model"].as_str().unwrap_or_default().to_string()
}

#[test]
fn a_request_fails_over_through_the_targets_with_their_models() {
    let ai = backend(vec![pb::VirtualModel {
        name: "smart".into(),
        targets: vec![
            target("ant", "claude-sonnet-4-5", 1, 1, ""),
            target("oai", "gpt-4o", 1, 0, ""),
        ],
    }])
    .unwrap();
    let body = br#"{"model":"smart","messages":[{"role":"user","content":"hi"}]}"#;
    let mut llm = crate::llm::LlmCtx::new(
        agora_providers::ClientApi::ChatCompletions,
        "/v1/chat/completions",
        bytes::Bytes::from_static(body),
        &ai,
    )
    .unwrap();
    assert_eq!(llm.target_conditions(), None);
    assert_eq!(llm.first_provider(&ai).unwrap().name, "oai");
    let p = llm.next_attempt(&ai).unwrap();
    assert_eq!(
        (p.name.as_str(), body_model(&llm)),
        ("oai", "gpt-4o".into())
    );
    assert_eq!(llm.upstream_model.as_deref(), Some("gpt-4o"));
    assert_eq!(llm.request_model.as_deref(), Some("smart"));
    assert!(llm.can_fail_over(&ai));
    let p = llm.next_attempt(&ai).unwrap();
    assert_eq!(p.name, "ant");
    assert_eq!(body_model(&llm), "claude-sonnet-4-5");
    assert_eq!(llm.upstream_path, "/v1/messages");
    assert!(!llm.can_fail_over(&ai));
    assert!(matches!(
        llm.next_attempt(&ai),
        Err(crate::llm::LlmError::NoProvider)
    ));
}

#[test]
fn no_matching_target_is_a_404_naming_the_virtual_model() {
    let ai = backend(vec![pb::VirtualModel {
        name: "vip".into(),
        targets: vec![target("oai", "gpt-4o", 1, 0, "has(jwt.sub)")],
    }])
    .unwrap();
    let body = br#"{"model":"vip","messages":[{"role":"user","content":"hi"}]}"#;
    let mut llm = crate::llm::LlmCtx::new(
        agora_providers::ClientApi::ChatCompletions,
        "/v1/chat/completions",
        bytes::Bytes::from_static(body),
        &ai,
    )
    .unwrap();
    assert!(llm.target_conditions().is_some());
    llm.match_targets(|_| false);
    assert_eq!(llm.target_conditions(), None);
    let e = llm.next_attempt(&ai).unwrap_err();
    assert_eq!(e.status(), 404);
    assert!(e.to_string().contains("vip"), "{e}");
}

#[test]
fn backend_rejects_unknown_providers_and_alias_clashes() {
    let e = backend(vec![pb::VirtualModel {
        name: "smart".into(),
        targets: vec![target("missing", "gpt-4o", 1, 0, "")],
    }])
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("backend/llm.ai.virtualModels[0].targets[0].provider"),
        "{e}"
    );
    let twice = pb::VirtualModel {
        name: "smart".into(),
        targets: vec![target("oai", "gpt-4o", 1, 0, "")],
    };
    let e = backend(vec![twice.clone(), twice]).unwrap_err().to_string();
    assert!(e.contains("virtualModels[1].name"), "{e}");
}

/// A name both an alias and a virtual model is refused (docs: "a name used twice or also
/// used as an alias key"), so neither shadows the other; an alias may point at a virtual
/// model, which then serves (aliases resolve first, once).
#[test]
fn virtual_model_names_and_aliases() {
    let smart = || pb::VirtualModel {
        name: "smart".into(),
        targets: vec![target("oai", "gpt-4o", 1, 0, "")],
    };
    let e = backend_with_aliases(vec![smart()], &[("smart", "gpt-4o-mini")])
        .unwrap_err()
        .to_string();
    assert!(e.contains("backend/llm.ai.virtualModels[0].name"), "{e}");

    let ai = backend_with_aliases(vec![smart()], &[("fast", "smart")]).unwrap();
    let body = br#"{"model":"fast","messages":[{"role":"user","content":"hi"}]}"#;
    let mut llm = crate::llm::LlmCtx::new(
        agora_providers::ClientApi::ChatCompletions,
        "/v1/chat/completions",
        bytes::Bytes::from_static(body),
        &ai,
    )
    .unwrap();
    let p = llm.next_attempt(&ai).unwrap();
    assert_eq!(
        (p.name.as_str(), body_model(&llm)),
        ("oai", "gpt-4o".into())
    );
    assert_eq!(llm.request_model.as_deref(), Some("smart"));
    assert!(!llm.can_fail_over(&ai));
}
