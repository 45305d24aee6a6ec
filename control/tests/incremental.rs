//! Incremental translation (`translate_with` and a `Memo` kept across calls) must give what
//! a fresh `translate` gives, whatever changed since the memo's last translation. Checked on
//! every golden input and the users' Kubernetes examples, for each route edited, removed
//! or added back, and for other objects removed (which must invalidate what was remembered).

use std::sync::Arc;

use agora_control::source::manifests::{Loaded, load_str};
use agora_control::translate::{Memo, translate, translate_with};
use agora_control::{ObjKey, Snapshot};

fn inputs() -> Vec<(String, Snapshot)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        let text = std::fs::read_to_string(&p).expect("read");
        let mut loaded = Loaded::default();
        load_str(&p, &text, &mut loaded);
        out.push((p.display().to_string(), loaded.snapshot));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut loaded = agora_control::source::manifests::load_dir(&dir).expect("examples load");
    let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: agora}\nspec: {controllerName: agora.dev/gateway-controller}\n";
    load_str(std::path::Path::new("class.yaml"), class, &mut loaded);
    out.push(("examples/kubernetes".into(), loaded.snapshot));
    out
}

/// Translates `next` with a memo warmed on `prev`, and checks it against a fresh translation.
fn check(name: &str, what: &str, prev: &Snapshot, next: &Snapshot) {
    let mut memo = Memo::default();
    assert_eq!(
        translate_with(prev, &mut memo),
        translate(prev),
        "{name}: warm-up"
    );
    // Twice: the second call replays everything.
    assert_eq!(
        translate_with(prev, &mut memo),
        translate(prev),
        "{name}: replay"
    );
    assert_eq!(
        translate_with(next, &mut memo),
        translate(next),
        "{name}: after {what}"
    );
}

#[test]
fn same_output_as_a_fresh_translation_after_route_edits() {
    for (name, s) in inputs() {
        let keys: Vec<ObjKey> = s.http_routes.keys().cloned().collect();
        for k in &keys {
            // Edited: a new object with a new generation (the status shows it).
            let mut next = s.clone();
            let mut edited = (*s.http_routes[k]).clone();
            edited.metadata.generation = Some(edited.metadata.generation.unwrap_or(0) + 7);
            next.http_routes.insert(k.clone(), Arc::new(edited));
            check(&name, &format!("editing HTTPRoute {k}"), &s, &next);
            // Removed, then added back.
            let mut without = s.clone();
            without.http_routes.remove(k);
            check(&name, &format!("removing HTTPRoute {k}"), &s, &without);
            check(&name, &format!("adding HTTPRoute {k}"), &without, &s);
        }
        for k in s.grpc_routes.keys() {
            let mut without = s.clone();
            without.grpc_routes.remove(k);
            check(&name, &format!("removing GRPCRoute {k}"), &s, &without);
            check(&name, &format!("adding GRPCRoute {k}"), &without, &s);
        }
    }
}

#[test]
fn same_output_as_a_fresh_translation_after_other_changes() {
    for (name, s) in inputs() {
        for k in s.services.keys() {
            let mut next = s.clone();
            next.services.remove(k);
            check(&name, &format!("removing Service {k}"), &s, &next);
        }
        for k in s.reference_grants.keys() {
            let mut next = s.clone();
            next.reference_grants.remove(k);
            check(&name, &format!("removing ReferenceGrant {k}"), &s, &next);
        }
        for k in s.gateways.keys() {
            let mut next = s.clone();
            next.gateways.remove(k);
            check(&name, &format!("removing Gateway {k}"), &s, &next);
        }
        for k in s.backends.keys() {
            let mut next = s.clone();
            next.backends.remove(k);
            check(
                &name,
                &format!("removing AgentgatewayBackend {k}"),
                &s,
                &next,
            );
        }
        for k in s.pods.keys() {
            let mut next = s.clone();
            next.pods.remove(k);
            check(&name, &format!("removing Pod {k}"), &s, &next);
        }
        for k in s.inference_pools.keys() {
            let mut next = s.clone();
            next.inference_pools.remove(k);
            check(&name, &format!("removing InferencePool {k}"), &s, &next);
        }
        for k in s.endpoint_slices.keys() {
            let mut next = s.clone();
            next.endpoint_slices.remove(k);
            check(&name, &format!("removing EndpointSlice {k}"), &s, &next);
        }
    }
}
