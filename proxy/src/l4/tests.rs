//! L4 routing decisions (listener and route by server name, the oldest route of a conflict,
//! weighted backends), what the IR build refuses, and connections through the accept loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use agora_proto::resource::{self as pb, resource::Kind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::backend::StateRegistry;
use crate::store::Store;

const PORT: u16 = 9000;

fn res(k: Kind) -> pb::Resource {
    pb::Resource { kind: Some(k) }
}

fn bind() -> pb::Resource {
    res(Kind::Bind(pb::Bind {
        key: "b".into(),
        address: "127.0.0.1".into(),
        port: PORT.into(),
    }))
}

fn listener(name: &str, hostname: &str, protocol: pb::Protocol) -> pb::Resource {
    res(Kind::Listener(pb::Listener {
        key: format!("l/{name}"),
        bind_key: "b".into(),
        gateway: "ns/gw".into(),
        name: name.into(),
        hostname: hostname.into(),
        protocol: protocol as i32,
        tls: None,
    }))
}

/// An L4 route `name` on listener `listener` to backends (key, weight).
fn route(
    name: &str,
    listener: &str,
    hosts: &[&str],
    created: i64,
    to: &[(&str, u32)],
) -> pb::Resource {
    res(Kind::L4Route(pb::L4Route {
        key: format!("{name}@{listener}"),
        listener_key: format!("l/{listener}"),
        route_name: format!("ns/{name}"),
        rule_name: String::new(),
        hostnames: hosts.iter().map(|h| h.to_string()).collect(),
        backends: to
            .iter()
            .map(|(k, w)| pb::RouteBackend {
                backend_key: k.to_string(),
                weight: *w,
                ..Default::default()
            })
            .collect(),
        creation_timestamp: created,
    }))
}

fn static_backend(key: &str, addr: SocketAddr) -> pb::Resource {
    res(Kind::Backend(pb::Backend {
        key: key.into(),
        kind: Some(pb::backend::Kind::Static(pb::StaticBackend {
            endpoints: vec![pb::Endpoint {
                host: addr.ip().to_string(),
                port: addr.port().into(),
                weight: 1,
            }],
        })),
        ..Default::default()
    }))
}

fn build(resources: Vec<pb::Resource>) -> crate::error::Result<crate::ir::Ir> {
    crate::ir::build("ns/gw", resources, &StateRegistry::default())
}

fn l4(resources: Vec<pb::Resource>) -> Arc<L4Bind> {
    let ir = build(resources).expect("valid config");
    ir.binds[&PORT].l4.clone().expect("an L4 bind")
}

fn routed(b: &L4Bind, sni: Option<&str>) -> Result<(String, String), Outcome> {
    decide(b, sni)
        .map(|(l, r)| (l.name.clone(), r.route_name.clone()))
        .map_err(|(o, _)| o)
}

fn ok(l: &str, r: &str) -> Result<(String, String), Outcome> {
    Ok((l.to_string(), format!("ns/{r}")))
}

const BE: &[(&str, u32)] = &[("be", 1)];

fn be() -> pb::Resource {
    static_backend("be", "127.0.0.1:1".parse().expect("addr"))
}

#[test]
fn routes_by_server_name_exact_then_wildcard_then_any() {
    use pb::Protocol::TlsPassthrough as P;
    let b = l4(vec![
        bind(),
        be(),
        listener("any", "", P),
        route("exact", "any", &["a.example.com"], 0, BE),
        route("wild", "any", &["*.example.com"], 0, BE),
        route("deeper", "any", &["*.b.example.com"], 0, BE),
        route("rest", "any", &[], 0, BE),
    ]);
    assert!(b.tls);
    assert_eq!(routed(&b, Some("a.example.com")), ok("any", "exact"));
    assert_eq!(routed(&b, Some("z.example.com")), ok("any", "wild"));
    assert_eq!(routed(&b, Some("x.b.example.com")), ok("any", "deeper"));
    assert_eq!(routed(&b, Some("example.com")), ok("any", "rest"));
    assert_eq!(routed(&b, None), ok("any", "rest"));
}

#[test]
fn listeners_by_server_name_then_routes_within_them() {
    use pb::Protocol::{TlsPassthrough as P, TlsTerminate as T};
    let (cert, key) = self_signed("t.example.com");
    let mut term = listener("term", "t.example.com", T);
    if let Some(Kind::Listener(l)) = &mut term.kind {
        l.tls = Some(pb::TlsCertificate {
            cert_pem: cert.into_bytes(),
            key_pem: key.into_bytes(),
        });
    }
    let b = l4(vec![
        bind(),
        be(),
        listener("exact", "a.example.com", P),
        listener("wild", "*.example.com", P),
        term,
        // On `exact`: only its own hostname is served.
        route("ra", "exact", &[], 0, BE),
        // On `wild`: b.example.com, not c.other.org (outside the listener's hostname).
        route("rb", "wild", &["b.example.com", "c.other.org"], 0, BE),
        route("rt", "term", &["t.example.com"], 0, BE),
    ]);
    assert_eq!(routed(&b, Some("a.example.com")), ok("exact", "ra"));
    assert_eq!(routed(&b, Some("b.example.com")), ok("wild", "rb"));
    assert_eq!(routed(&b, Some("t.example.com")), ok("term", "rt"));
    // The wildcard listener takes x.example.com, but has no route for it.
    assert_eq!(routed(&b, Some("x.example.com")), Err(Outcome::NoRoute));
    assert_eq!(routed(&b, Some("c.other.org")), Err(Outcome::NoListener));
    assert_eq!(routed(&b, None), Err(Outcome::NoListener));
    let modes: Vec<&str> = ["a.example.com", "t.example.com"]
        .iter()
        .map(|n| b.listeners.find(Some(n)).expect("listener").mode.label())
        .collect();
    assert_eq!(modes, ["tls-passthrough", "tls-terminate"]);
}

#[test]
fn the_oldest_route_wins_what_routes_share() {
    use pb::Protocol::{Tcp, TlsPassthrough as P};
    let b = l4(vec![
        bind(),
        be(),
        listener("tcp", "", Tcp),
        route("newer", "tcp", &[], 200, BE),
        route("older", "tcp", &[], 100, BE),
        route("older-b", "tcp", &[], 100, BE),
    ]);
    assert!(!b.tls);
    assert_eq!(routed(&b, None), ok("tcp", "older"));

    let b = l4(vec![
        bind(),
        be(),
        listener("tls", "", P),
        route("new-exact", "tls", &["a.example.com"], 200, BE),
        route(
            "old-exact",
            "tls",
            &["a.example.com", "b.example.com"],
            100,
            BE,
        ),
        route("old-wild", "tls", &["*.example.com"], 50, BE),
    ]);
    assert_eq!(routed(&b, Some("a.example.com")), ok("tls", "old-exact"));
    // An exact hostname beats an older wildcard.
    assert_eq!(routed(&b, Some("b.example.com")), ok("tls", "old-exact"));
    assert_eq!(routed(&b, Some("c.example.com")), ok("tls", "old-wild"));
}

#[test]
fn backends_by_weight_and_invalid_shares_refused() {
    let r = L4RouteIr {
        key: "k".into(),
        route_name: "ns/r".into(),
        rule_name: "0".into(),
        backends: vec![
            L4Choice {
                backend: Err("Service ns/missing not found".into()),
                weight: 1,
            },
            L4Choice {
                backend: Ok(Arc::new(BackendIr::new(
                    "be".into(),
                    Vec::new(),
                    Default::default(),
                ))),
                weight: 3,
            },
            L4Choice {
                backend: Err("unused".into()),
                weight: 0,
            },
        ],
        total_weight: 4,
    };
    let picks: Vec<Result<String, String>> = (0..8)
        .map(|roll| r.pick(roll).map(|b| b.name.clone()))
        .collect();
    let refused = picks.iter().filter(|p| p.is_err()).count();
    assert_eq!(refused, 2, "{picks:?}");
    assert!(picks.contains(&Err("Service ns/missing not found".into())));
    assert!(!picks.contains(&Err("unused".into())));
    let none = L4RouteIr {
        backends: Vec::new(),
        total_weight: 0,
        ..r
    };
    assert_eq!(
        none.pick(7).err().as_deref(),
        Some("the route has no backend")
    );
}

#[test]
fn configs_the_build_refuses() {
    use pb::Protocol::{Http, Tcp, TlsPassthrough as P, TlsTerminate as T};
    let refused = |rs: Vec<pb::Resource>| build(rs).expect_err("refused").to_string();
    let e = refused(vec![bind(), listener("a", "", Tcp), listener("b", "", Tcp)]);
    assert!(e.contains("one TCP listener"), "{e}");
    let e = refused(vec![
        bind(),
        listener("a", "", Tcp),
        listener("b", "x.test", P),
    ]);
    assert!(e.contains("TCP and TLS listeners cannot share"), "{e}");
    let e = refused(vec![bind(), listener("a", "", Http), listener("b", "", P)]);
    assert!(e.contains("cannot share a port"), "{e}");
    let e = refused(vec![
        bind(),
        listener("a", "x.test", P),
        listener("b", "x.test", P),
    ]);
    assert!(e.contains("one hostname"), "{e}");
    let e = refused(vec![bind(), listener("t", "", T)]);
    assert!(e.contains("needs a certificate"), "{e}");
    let e = refused(vec![bind(), be(), route("r", "nowhere", &[], 0, BE)]);
    assert!(e.contains("unknown TCP or TLS listener"), "{e}");
    let e = refused(vec![
        bind(),
        be(),
        listener("a", "", Tcp),
        route("r", "a", &["x.test"], 0, BE),
    ]);
    assert!(e.contains("TLS listener"), "{e}");
    let e = refused(vec![
        bind(),
        be(),
        listener("a", "", P),
        route("r", "a", &["Bad_Name"], 0, BE),
    ]);
    assert!(e.contains("hostnames[0]"), "{e}");
}

/// A self-signed certificate and key (PEM) for `name`.
fn self_signed(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    (cert.pem(), key.serialize_pem())
}

/// An echo server: answers every connection with `prefix` then what it receives, and closes
/// its side once the client has closed its own.
async fn echo(prefix: &'static [u8]) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(prefix).await;
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// The L4 accept loop of `resources` (bind port [`PORT`] on an ephemeral local port).
async fn serve(resources: Vec<pb::Resource>) -> (SocketAddr, Arc<crate::metrics::Metrics>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let store = Store::with_port_map(HashMap::from([(PORT, addr.port())]));
    store.apply("ns/gw", resources).expect("config");
    let metrics = Arc::new(crate::metrics::Metrics::new());
    let ctx = Arc::new(L4Context {
        metrics: metrics.clone(),
        inflight: Arc::default(),
        access_log: false,
    });
    let (_stop_tx, stop) = tokio::sync::watch::channel(false);
    let (_shutdown_tx, shutdown) = tokio::sync::watch::channel(false);
    // The senders live as long as the test (leaked into the task).
    tokio::spawn(async move {
        let _keep = (_stop_tx, _shutdown_tx);
        conn::accept_loop(l, addr.port(), store, ctx, stop, shutdown).await;
    });
    (addr, metrics)
}

fn count(m: &crate::metrics::Metrics, route: &str, result: &str) -> u64 {
    let backend = if result == "ok" { "be" } else { "" };
    m.l4.connections
        .get_metric_with_label_values(&["ns/gw", "tcp", route, backend, result])
        .map_or(0, |c| c.get())
}

#[tokio::test]
async fn tcp_bytes_both_ways_and_half_close() {
    let up = echo(b"hello:").await;
    let (addr, metrics) = serve(vec![
        bind(),
        static_backend("be", up),
        listener("tcp", "", pb::Protocol::Tcp),
        route("r", "tcp", &[], 0, BE),
    ])
    .await;
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    c.write_all(b"ping").await.expect("write");
    // Half-close: the upstream sees EOF, answers, and closes; we read it all.
    c.shutdown().await.expect("shutdown");
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.expect("read");
    assert_eq!(got, b"hello:ping");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count(&metrics, "ns/r", "ok") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connection not counted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let bytes = |d: &str| {
        metrics
            .l4
            .bytes
            .with_label_values(&["ns/gw", "tcp", "ns/r", "be", d])
            .get()
    };
    assert_eq!((bytes("received"), bytes("sent")), (4, 10));
}

#[tokio::test]
async fn a_listener_without_route_closes_connections() {
    let (addr, metrics) = serve(vec![bind(), listener("tcp", "", pb::Protocol::Tcp)]).await;
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut got = Vec::new();
    let n = c.read_to_end(&mut got).await.unwrap_or(0);
    assert_eq!(n, 0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while count(&metrics, "", "no_route") == 0 {
        assert!(std::time::Instant::now() < deadline, "refusal not counted");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
