//! Kubernetes mode against an in-process fake API server (HTTP on loopback): list + watch
//! into the snapshot (a kind whose API is not installed counts as empty), live watch events,
//! status patches that keep other controllers' route parents, and Lease election.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_control::leader::try_acquire;
use agora_control::source::kube::watch_cluster;
use agora_control::translate;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use serde_json::{Value, json};
use tokio::sync::broadcast;

type Body = BoxBody<Bytes, Infallible>;

#[derive(Default)]
struct Fake {
    /// Collection path (`/apis/g/v/plural` or `/api/v1/plural`) → objects.
    lists: Mutex<HashMap<String, Vec<Value>>>,
    /// Single objects by full path (leases, status reads).
    objects: Mutex<HashMap<String, Value>>,
    patches: Mutex<Vec<(String, Value)>>,
    events: Option<broadcast::Sender<(String, Value)>>,
}

fn full(v: Value, status: u16) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())).boxed())
        .expect("response")
}

fn not_found() -> Response<Body> {
    full(
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
        404,
    )
}

async fn handle(
    fake: Arc<Fake>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let body: Value = req
        .into_body()
        .collect()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b.to_bytes()).ok())
        .unwrap_or(Value::Null);
    if method == "GET" && query.contains("watch=true") {
        if !fake.lists.lock().expect("lock").contains_key(&path) {
            return Ok(not_found());
        }
        let mut rx = fake.events.as_ref().expect("events").subscribe();
        let stream = async_stream(path, &mut rx).await;
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .expect("response"));
    }
    if method == "GET" {
        if let Some(items) = fake.lists.lock().expect("lock").get(&path) {
            return Ok(full(
                json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": items}),
                200,
            ));
        }
        return Ok(match fake.objects.lock().expect("lock").get(&path) {
            Some(o) => full(o.clone(), 200),
            None => not_found(),
        });
    }
    if method == "PATCH" {
        // A Gateway API object's status, in a version whose collection is not served: 404.
        let collection = path
            .trim_end_matches("/status")
            .rsplit_once('/')
            .and_then(|(c, _)| c.rsplit_once("/namespaces/"))
            .map(|(api, rest)| format!("{api}/{}", rest.split('/').nth(1).unwrap_or("")));
        if let Some(c) = collection.filter(|c| c.starts_with("/apis/gateway.networking.k8s.io/"))
            && !fake.lists.lock().expect("lock").contains_key(&c)
        {
            return Ok(not_found());
        }
        let path = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        fake.patches
            .lock()
            .expect("lock")
            .push((path, body.clone()));
        return Ok(full(json!({"metadata": {"name": "x"}}), 200));
    }
    if method == "POST" && path.ends_with("/tokenreviews") {
        let token = body["spec"]["token"].as_str().unwrap_or_default();
        let ok = token == "good-token" && body["spec"]["audiences"][0] == "agora-xds";
        let user = "system:serviceaccount:ns:gw";
        return Ok(full(
            json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": body["spec"],
                "status": {"authenticated": ok, "user": {"username": user}}}),
            201,
        ));
    }
    if method == "POST" || method == "PUT" {
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = if method == "POST" {
            format!("{path}/{name}")
        } else {
            path.clone()
        };
        let mut objects = fake.objects.lock().expect("lock");
        if method == "POST" && objects.contains_key(&key) {
            return Ok(full(
                json!({"kind": "Status", "status": "Failure", "reason": "AlreadyExists", "code": 409}),
                409,
            ));
        }
        let mut stored = body.clone();
        let rv = objects.get(&key).and_then(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .map(str::to_string)
        });
        if method == "PUT"
            && rv.is_some()
            && body["metadata"]["resourceVersion"].as_str() != rv.as_deref()
        {
            return Ok(full(
                json!({"kind": "Status", "status": "Failure", "reason": "Conflict", "code": 409}),
                409,
            ));
        }
        let next = rv.and_then(|r| r.parse::<u64>().ok()).unwrap_or(0) + 1;
        stored["metadata"]["resourceVersion"] = json!(next.to_string());
        objects.insert(key, stored.clone());
        return Ok(full(stored, if method == "POST" { 201 } else { 200 }));
    }
    Ok(not_found())
}

/// A watch body: this collection's events as JSON lines, open until the test ends.
async fn async_stream(
    path: String,
    rx: &mut broadcast::Receiver<(String, Value)>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send + Sync + use<> {
    let rx = rx.resubscribe();
    futures_util::stream::unfold((rx, path), |(mut rx, path)| async move {
        loop {
            match rx.recv().await {
                Ok((p, ev)) if p == path => {
                    let line = Bytes::from(format!("{ev}\n"));
                    return Some((Ok(Frame::data(line)), (rx, path)));
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    })
}

async fn start(fake: Arc<Fake>) -> kube::Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let fake = fake.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(fake.clone(), req));
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
            });
        }
    });
    let config = kube::Config::new(format!("http://{addr}").parse().expect("uri"));
    kube::Client::try_from(config).expect("client")
}

fn seeded() -> (Arc<Fake>, broadcast::Sender<(String, Value)>) {
    let (tx, _) = broadcast::channel(16);
    let fake = Fake {
        events: Some(tx.clone()),
        ..Default::default()
    };
    let gw = "/apis/gateway.networking.k8s.io/v1";
    let route = |name: &str| {
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": "1", "generation": 4},
            "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}})
    };
    let lists = HashMap::from([
        (
            format!("{gw}/gatewayclasses"),
            vec![
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": "agora", "resourceVersion": "1"}, "spec": {"controllerName": "agora.dev/gateway-controller"}}),
            ],
        ),
        (
            format!("{gw}/gateways"),
            vec![
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"gatewayClassName": "agora", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
            ],
        ),
        (format!("{gw}/httproutes"), vec![route("r1")]),
        (format!("{gw}/referencegrants"), vec![]),
        (
            "/api/v1/namespaces".to_string(),
            vec![
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "resourceVersion": "1"}}),
            ],
        ),
        (
            "/api/v1/services".to_string(),
            vec![json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc", "namespace": "ns", "resourceVersion": "1"}, "spec": {"ports": [{"port": 80, "name": "http"}]}})],
        ),
        (
            "/apis/discovery.k8s.io/v1/endpointslices".to_string(),
            vec![
                json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "svc-1", "namespace": "ns", "resourceVersion": "1", "labels": {"kubernetes.io/service-name": "svc"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}], "endpoints": [{"addresses": ["10.0.0.7"]}]}),
            ],
        ),
        ("/api/v1/secrets".to_string(), vec![]),
        // agentgateway.dev CRDs are not installed: their lists answer 404.
    ]);
    *fake.lists.lock().expect("lock") = lists;
    // The route already carries a parent status written by another controller.
    fake.objects.lock().expect("lock").insert(
        format!("{gw}/namespaces/ns/httproutes/r1"),
        json!({"metadata": {"name": "r1", "namespace": "ns"}, "status": {"parents": [
            {"controllerName": "example.com/other", "parentRef": {"name": "theirs"}, "conditions": []}]}}),
    );
    (Arc::new(fake), tx)
}

async fn wait_for(
    rx: &mut tokio::sync::watch::Receiver<Arc<agora_control::Snapshot>>,
    pred: impl Fn(&agora_control::Snapshot) -> bool,
) -> Arc<agora_control::Snapshot> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let s = rx.borrow_and_update().clone();
            if pred(&s) {
                return s;
            }
            rx.changed().await.expect("publisher alive");
        }
    })
    .await
    .expect("snapshot within 10s")
}

#[tokio::test]
async fn watchers_statuses_and_leases() {
    let (fake, events) = seeded();
    let client = start(fake.clone()).await;

    // List: a complete snapshot, published once every kind is listed (missing CRDs = empty).
    let mut snaps = watch_cluster(client.clone(), Duration::from_millis(10));
    let snap = wait_for(&mut snaps, |s| !s.http_routes.is_empty()).await;
    assert_eq!(snap.gateways.len(), 1);
    assert_eq!(snap.endpoint_slices.len(), 1);
    assert!(snap.backends.is_empty());
    let out = translate(&snap);
    let routes = &out.gateways["ns/gw"].routes;
    assert_eq!(routes.len(), 1);
    assert_eq!(out.services["ns/svc"].workloads[0].address, "10.0.0.7");

    // Watch: a new route arrives as an event.
    let r2 = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "r2", "namespace": "ns", "resourceVersion": "2"},
        "spec": {"parentRefs": [{"name": "gw"}], "rules": [{"backendRefs": [{"name": "svc", "port": 80}]}]}});
    let path = "/apis/gateway.networking.k8s.io/v1/httproutes".to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let _ = events.send((path.clone(), json!({"type": "ADDED", "object": r2})));
        let s = snaps.borrow().clone();
        if s.http_routes.len() == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "watch event not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Status: our parent replaces nothing of the other controller's.
    let st = out
        .statuses
        .iter()
        .find(|s| s.kind == "HTTPRoute")
        .expect("route status");
    agora_control::status::write(&client, st)
        .await
        .expect("patch");
    let patches = fake.patches.lock().expect("lock").clone();
    let (p, body) = patches.last().expect("a patch");
    assert_eq!(
        p,
        "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes/r1/status"
    );
    let parents = body["status"]["parents"].as_array().expect("parents");
    assert_eq!(parents.len(), 2);
    assert_eq!(parents[0]["controllerName"], "agora.dev/gateway-controller");
    assert_eq!(parents[1]["controllerName"], "example.com/other");
    let cond = &parents[0]["conditions"][0];
    assert_eq!(cond["observedGeneration"], 4);
    assert!(cond["lastTransitionTime"].is_string());

    // Deploy: server-side apply, as our field manager, forced.
    let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "gw", "namespace": "ns"}, "spec": {"replicas": 1}});
    agora_control::deploy::apply(&client, &obj)
        .await
        .expect("apply");
    let patches = fake.patches.lock().expect("lock").clone();
    let (p, body) = patches.last().expect("an apply");
    assert!(
        p.starts_with("/apis/apps/v1/namespaces/ns/deployments/gw?"),
        "{p}"
    );
    assert!(
        p.contains("fieldManager=agora-controller") && p.contains("force=true"),
        "{p}"
    );
    assert_eq!(body["spec"]["replicas"], 1);

    // Leases: the first replica creates and holds it, a second is refused, the first renews.
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(client.clone(), "agora-system");
    assert!(
        try_acquire(&leases, "agora-controller", "a")
            .await
            .expect("acquire")
    );
    assert!(
        !try_acquire(&leases, "agora-controller", "b")
            .await
            .expect("refused")
    );
    assert!(
        try_acquire(&leases, "agora-controller", "a")
            .await
            .expect("renew")
    );
}

/// TCPRoutes and TLSRoutes are watched in the first version the cluster serves (here TCPRoute
/// only as v1alpha2, TLSRoute as v1), and their statuses are written through it.
#[tokio::test]
async fn l4_routes_are_watched_and_patched_in_the_served_version() {
    let (tx, _) = broadcast::channel(16);
    let fake = Fake {
        events: Some(tx),
        ..Default::default()
    };
    let api = "/apis/gateway.networking.k8s.io";
    let resources = |gv: &str, plural: &str, kind: &str| {
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": [
            {"name": plural, "singularName": "", "namespaced": true, "kind": kind,
             "verbs": ["get", "list", "watch"]}]})
    };
    fake.objects.lock().expect("lock").extend([
        (
            format!("{api}/v1"),
            resources("gateway.networking.k8s.io/v1", "tlsroutes", "TLSRoute"),
        ),
        (
            format!("{api}/v1alpha2"),
            resources(
                "gateway.networking.k8s.io/v1alpha2",
                "tcproutes",
                "TCPRoute",
            ),
        ),
    ]);
    let parent = json!([{"name": "gw"}]);
    let rules = json!([{"backendRefs": [{"name": "svc", "port": 80}]}]);
    *fake.lists.lock().expect("lock") = HashMap::from([
        (
            format!("{api}/v1alpha2/tcproutes"),
            vec![
                json!({"apiVersion": "gateway.networking.k8s.io/v1alpha2", "kind": "TCPRoute",
                "metadata": {"name": "db", "namespace": "ns", "resourceVersion": "1"},
                "spec": {"parentRefs": parent, "rules": rules}}),
            ],
        ),
        (
            format!("{api}/v1/tlsroutes"),
            vec![
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "TLSRoute",
                "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "1"},
                "spec": {"parentRefs": parent, "hostnames": ["a.example.com"], "rules": rules}}),
            ],
        ),
    ]);
    let fake = Arc::new(fake);
    let client = start(fake.clone()).await;
    let mut snaps = watch_cluster(client.clone(), Duration::from_millis(10));
    let snap = wait_for(&mut snaps, |s| {
        !s.tcp_routes.is_empty() && !s.tls_routes.is_empty()
    })
    .await;
    assert_eq!(
        snap.tls_routes.values().next().expect("tls").spec.hostnames,
        ["a.example.com"]
    );

    // TCPRoute's status goes through v1alpha2 once v1 answers 404.
    let st = translate::status::ObjectStatus {
        kind: "TCPRoute",
        namespace: "ns".into(),
        name: "db".into(),
        status: json!({"parents": []}).into(),
    };
    agora_control::status::write(&client, &st)
        .await
        .expect("patch");
    let patches = fake.patches.lock().expect("lock").clone();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(
        patches[0].0,
        format!("{api}/v1alpha2/namespaces/ns/tcproutes/db/status")
    );
}

#[tokio::test]
async fn xds_requires_a_service_account_token_of_the_gateway_namespace() {
    use agora_control::xds::{AdsService, Published, auth::TokenReviewer, serve};
    use agora_proto::xds::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    use agora_proto::xds::{DeltaDiscoveryRequest, Node, RESOURCE_TYPE_URL};

    let (fake, _events) = seeded();
    let client = start(fake).await;
    let (_tx, rx) =
        tokio::sync::watch::channel(Arc::new(Published::new(1, Default::default(), None)));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let ads = AdsService::new(rx).with_auth(TokenReviewer::new(client));
    tokio::spawn(serve(addr, ads, None, std::future::pending()));
    tokio::time::sleep(Duration::from_millis(200)).await;

    let open = |token: Option<&'static str>, gateway: &'static str| async move {
        let mut c = AggregatedDiscoveryServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let first = DeltaDiscoveryRequest {
            node: Some(Node {
                id: "p".into(),
                metadata: [("gateway".to_string(), gateway.to_string())].into(),
            }),
            type_url: RESOURCE_TYPE_URL.into(),
            ..Default::default()
        };
        let mut req = tonic::Request::new(
            futures_util::stream::iter([first]).chain(futures_util::stream::pending()),
        );
        if let Some(t) = token {
            req.metadata_mut().insert(
                "authorization",
                format!("Bearer {t}").parse().expect("header"),
            );
        }
        c.delta_aggregated_resources(req).await.map(|_| ())
    };
    use futures_util::StreamExt;
    assert_eq!(
        open(None, "ns/gw").await.expect_err("no token").code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        open(Some("bad"), "ns/gw")
            .await
            .expect_err("bad token")
            .code(),
        tonic::Code::Unauthenticated
    );
    assert_eq!(
        open(Some("good-token"), "elsewhere/gw")
            .await
            .expect_err("other namespace")
            .code(),
        tonic::Code::PermissionDenied
    );
    open(Some("good-token"), "ns/gw").await.expect("admitted");
}
