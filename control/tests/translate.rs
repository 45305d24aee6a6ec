//! Golden tests for the translator: each `golden/*.yaml` is a set of input objects; its
//! snapshot (`snapshots/`) holds the resources and statuses they translate into.

use agora_control::source::manifests::{Loaded, load_str};
use agora_control::translate;

#[test]
fn golden() {
    insta::glob!("golden/*.yaml", |path| {
        let text = std::fs::read_to_string(path).expect("read golden input");
        let mut loaded = Loaded::default();
        load_str(path, &text, &mut loaded);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        insta::assert_yaml_snapshot!(translate(&loaded.snapshot));
    });
}

/// Translation is a pure function: same snapshot, same output.
#[test]
fn deterministic() {
    let text = include_str!("golden/01-basic-http.yaml");
    let mut loaded = Loaded::default();
    load_str(std::path::Path::new("x.yaml"), text, &mut loaded);
    assert_eq!(translate(&loaded.snapshot), translate(&loaded.snapshot));
}

/// The Kubernetes examples users already write (`examples/kubernetes`, from
/// ../shared/examples) load without a skipped document and translate as snapshotted.
#[test]
fn kubernetes_examples() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/kubernetes");
    let mut loaded = agora_control::source::manifests::load_dir(&dir).expect("examples load");
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let class = "apiVersion: gateway.networking.k8s.io/v1\nkind: GatewayClass\nmetadata: {name: agora}\nspec: {controllerName: agora.dev/gateway-controller}\n";
    load_str(std::path::Path::new("class.yaml"), class, &mut loaded);
    insta::assert_yaml_snapshot!(translate(&loaded.snapshot));
}

/// A Gateway's TCP and TLS routes reach its proxies with the backends, services and
/// workloads behind them.
#[test]
fn l4_routes_are_sent_with_their_backends() {
    let text = include_str!("golden/12-tcp-tls-routes.yaml");
    let mut loaded = Loaded::default();
    load_str(std::path::Path::new("x.yaml"), text, &mut loaded);
    let names: Vec<String> = translate(&loaded.snapshot)
        .resources_for("infra/gw")
        .into_keys()
        .collect();
    for want in [
        "bind/infra/gw:9000",
        "listener/infra/gw/tls-term",
        "l4route/tcp:infra/db/0@infra/gw/tcp",
        "l4route/tls:infra/a/0@infra/gw/tls-wild",
        "backend/infra/db:5432",
        "service/infra/db",
        "workload/infra/db-abc/10.0.0.5",
        "backend/web/granted:8443",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
    }
}
