//! The delta-xDS server against a raw gRPC client: initial sync, deltas with only the
//! changed resources, NACK handling, per-gateway subscriptions and reconnects that report
//! what the proxy holds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agora_control::source::manifests::{Loaded, load_str};
use agora_control::translate;
use agora_control::xds::{AdsService, Published, serve};
use agora_proto::xds::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use agora_proto::xds::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node, RESOURCE_TYPE_URL, Status,
};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

const BASE: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agora}
spec: {controllerName: agora.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: a, namespace: ns}
spec:
  gatewayClassName: agora
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: b, namespace: ns}
spec:
  gatewayClassName: agora
  listeners: [{name: http, port: 81, protocol: HTTP}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: ns}
spec: {ports: [{port: 80}]}
"#;

fn route(name: &str, gateway: &str, path: &str) -> String {
    format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: ns}}\n\
         spec:\n  parentRefs: [{{name: {gateway}}}]\n  rules:\n  - matches: [{{path: {{value: {path}}}}}]\n    backendRefs: [{{name: svc, port: 80}}]\n"
    )
}

fn published(version: u64, yaml: &str) -> Arc<Published> {
    let mut loaded = Loaded::default();
    load_str(std::path::Path::new("t.yaml"), yaml, &mut loaded);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    Arc::new(Published::new(version, translate(&loaded.snapshot), None))
}

async fn start(first: Arc<Published>) -> (String, watch::Sender<Arc<Published>>) {
    let (tx, rx) = watch::channel(first);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    tokio::spawn(serve(
        addr,
        AdsService::new(rx),
        None,
        std::future::pending(),
    ));
    let url = format!("http://{addr}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (url, tx)
}

struct Proxy {
    tx: mpsc::Sender<DeltaDiscoveryRequest>,
    rx: tonic::Streaming<DeltaDiscoveryResponse>,
}

impl Proxy {
    async fn connect(url: &str, gateway: &str, held: BTreeMap<String, String>) -> Self {
        let mut client = AggregatedDiscoveryServiceClient::connect(url.to_string())
            .await
            .expect("connect");
        let (tx, rx) = mpsc::channel(4);
        tx.send(DeltaDiscoveryRequest {
            node: Some(Node {
                id: "test".into(),
                metadata: [("gateway".to_string(), gateway.to_string())].into(),
            }),
            type_url: RESOURCE_TYPE_URL.into(),
            initial_resource_versions: held.into_iter().collect(),
            ..Default::default()
        })
        .await
        .expect("send");
        let rx = client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
            .expect("stream")
            .into_inner();
        Self { tx, rx }
    }

    async fn recv(&mut self) -> DeltaDiscoveryResponse {
        tokio::time::timeout(Duration::from_secs(5), self.rx.message())
            .await
            .expect("a response within 5s")
            .expect("stream ok")
            .expect("not closed")
    }

    async fn quiet(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(300), self.rx.message()).await;
        assert!(r.is_err(), "expected no response, got {r:?}");
    }

    async fn reply(&self, nonce: &str, error: Option<&str>) {
        self.tx
            .send(DeltaDiscoveryRequest {
                type_url: RESOURCE_TYPE_URL.into(),
                response_nonce: nonce.into(),
                error_detail: error.map(|m| Status {
                    code: 3,
                    message: m.into(),
                }),
                ..Default::default()
            })
            .await
            .expect("send");
    }
}

fn names(r: &DeltaDiscoveryResponse) -> Vec<&str> {
    r.resources.iter().map(|x| x.name.as_str()).collect()
}

#[tokio::test]
async fn initial_sync_then_only_changes() {
    let yaml1 = format!(
        "{BASE}{}{}",
        route("r1", "a", "/one"),
        route("r2", "a", "/two")
    );
    let (url, publish) = start(published(1, &yaml1)).await;
    let mut p = Proxy::connect(&url, "ns/a", BTreeMap::new()).await;

    let first = p.recv().await;
    assert_eq!(first.type_url, RESOURCE_TYPE_URL);
    assert_eq!(
        names(&first),
        [
            "backend/ns/svc:80",
            "bind/ns/a:80",
            "listener/ns/a/http",
            "route/ns/r1/0@ns/a/http",
            "route/ns/r2/0@ns/a/http",
            "service/ns/svc",
        ]
    );
    assert!(first.removed_resources.is_empty());
    p.reply(&first.nonce, None).await;

    // Edit one route: only that route is sent.
    let yaml2 = format!(
        "{BASE}{}{}",
        route("r1", "a", "/one"),
        route("r2", "a", "/changed")
    );
    publish.send_replace(published(2, &yaml2));
    let delta = p.recv().await;
    assert_eq!(names(&delta), ["route/ns/r2/0@ns/a/http"]);
    assert_eq!(delta.system_version_info, "2");
    p.reply(&delta.nonce, None).await;

    // Delete a route: only its name is removed.
    publish.send_replace(published(3, &format!("{BASE}{}", route("r1", "a", "/one"))));
    let delta = p.recv().await;
    assert!(delta.resources.is_empty());
    assert_eq!(delta.removed_resources, ["route/ns/r2/0@ns/a/http"]);
    p.reply(&delta.nonce, None).await;

    // A change to another Gateway's route sends this proxy nothing.
    let yaml4 = format!(
        "{BASE}{}{}",
        route("r1", "a", "/one"),
        route("rb", "b", "/b")
    );
    publish.send_replace(published(4, &yaml4));
    p.quiet().await;
}

#[tokio::test]
async fn nack_keeps_state_and_is_not_resent() {
    let yaml1 = format!("{BASE}{}", route("r1", "a", "/one"));
    let (url, publish) = start(published(1, &yaml1)).await;
    let mut p = Proxy::connect(&url, "ns/a", BTreeMap::new()).await;
    let first = p.recv().await;
    p.reply(&first.nonce, None).await;

    let yaml2 = format!("{BASE}{}", route("r1", "a", "/rejected"));
    publish.send_replace(published(2, &yaml2));
    let delta = p.recv().await;
    assert_eq!(names(&delta), ["route/ns/r1/0@ns/a/http"]);
    p.reply(&delta.nonce, Some("the proxy did not like it"))
        .await;
    // The rejected snapshot is not pushed again...
    p.quiet().await;
    // ...the next one is, computed against what the proxy still holds (the old route).
    let yaml3 = format!(
        "{BASE}{}{}",
        route("r1", "a", "/rejected"),
        route("r2", "a", "/two")
    );
    publish.send_replace(published(3, &yaml3));
    let delta = p.recv().await;
    assert_eq!(
        names(&delta),
        ["route/ns/r1/0@ns/a/http", "route/ns/r2/0@ns/a/http"]
    );
}

#[tokio::test]
async fn reconnect_sends_only_what_the_proxy_lacks() {
    let yaml1 = format!(
        "{BASE}{}{}",
        route("r1", "a", "/one"),
        route("r2", "a", "/two")
    );
    let (url, publish) = start(published(1, &yaml1)).await;
    let mut p = Proxy::connect(&url, "ns/a", BTreeMap::new()).await;
    let first = p.recv().await;
    let held: BTreeMap<String, String> = first
        .resources
        .iter()
        .map(|r| (r.name.clone(), r.version.clone()))
        .collect();
    p.reply(&first.nonce, None).await;
    drop(p);

    // While the proxy is away, r2 changes and r1 goes.
    publish.send_replace(published(2, &format!("{BASE}{}", route("r2", "a", "/new"))));
    let mut p = Proxy::connect(&url, "ns/a", held).await;
    let r = p.recv().await;
    assert_eq!(names(&r), ["route/ns/r2/0@ns/a/http"]);
    assert_eq!(r.removed_resources, ["route/ns/r1/0@ns/a/http"]);
}

#[tokio::test]
async fn unknown_gateway_gets_an_empty_first_response_and_bad_nodes_are_refused() {
    let (url, _publish) = start(published(1, BASE)).await;
    let mut p = Proxy::connect(&url, "ns/nope", BTreeMap::new()).await;
    let r = p.recv().await;
    assert!(r.resources.is_empty() && r.removed_resources.is_empty());

    let mut client = AggregatedDiscoveryServiceClient::connect(url.clone())
        .await
        .expect("connect");
    let req = DeltaDiscoveryRequest {
        type_url: RESOURCE_TYPE_URL.into(),
        ..Default::default()
    };
    let err = client
        .delta_aggregated_resources(tokio_stream::iter([req]))
        .await
        .expect_err("no gateway in node metadata");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
