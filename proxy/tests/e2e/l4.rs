//! TCP and TLS listeners of the binary: TCP bytes both ways with a half-close, TLS passthrough
//! choosing the backend by server name (the client sees the backend's own certificate), an
//! unknown server name refused, TLS terminated with the listener's certificate in front of a
//! plaintext backend; metrics and access log lines per connection.

use std::net::SocketAddr;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().expect("key");
        Self {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca"),
        }
    }

    /// (cert PEM, key PEM) for `name`.
    fn leaf(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_string()])
            .expect("params")
            .signed_by(&key, &self.issuer)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    }

    /// A client that trusts only this CA.
    fn connector(&self) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut self.issuer.pem().as_bytes()) {
            roots.add(c.expect("ca cert")).expect("root");
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(cfg))
    }
}

/// Echoes each connection's bytes after `prefix`, and closes its side once the client has.
async fn serve_echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, prefix: &[u8]) {
    let _ = s.write_all(prefix).await;
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = s.shutdown().await;
}

async fn tcp_echo(prefix: &'static [u8]) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(serve_echo(s, prefix));
        }
    });
    addr
}

/// A TLS echo server with its own certificate for `name`, answering `name:` then the bytes.
async fn tls_echo(ca: &Ca, name: &'static str) -> SocketAddr {
    let (cert, key) = ca.leaf(name);
    let certs = rustls_pemfile::certs(&mut cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("certs");
    let key = rustls_pemfile::private_key(&mut key.as_bytes())
        .expect("key")
        .expect("key");
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("cfg");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    serve_echo(tls, format!("{name}:").as_bytes()).await;
                }
            });
        }
    });
    addr
}

/// Sends `msg` over a TLS connection to `port` with server name `sni`, half-closes, and
/// returns everything the server sent.
async fn tls_round_trip(
    ca: &Ca,
    port: u16,
    sni: &str,
    msg: &[u8],
) -> Result<Vec<u8>, std::io::Error> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = rustls::pki_types::ServerName::try_from(sni.to_string()).expect("name");
    // The handshake verifies the certificate against `sni`: it succeeds only if whoever
    // answered holds a certificate for that name.
    let mut tls = ca.connector().connect(name, tcp).await?;
    tls.write_all(msg).await?;
    tls.shutdown().await?;
    let mut got = Vec::new();
    tls.read_to_end(&mut got).await?;
    Ok(got)
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("        {l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_and_tls_listeners() {
    let ca = Ca::new();
    let plain = tcp_echo(b"plain:").await;
    let a = tls_echo(&ca, "a.test").await;
    let b = tls_echo(&ca, "b.test").await;
    let (t_cert, t_key) = ca.leaf("t.test");
    let (tcp_port, tls_port, term_port) = (free_port(), free_port(), free_port());
    let cfg = format!(
        "gateway: ns/gw
binds:
- port: {tcp_port}
  listeners:
  - name: tcp
    protocol: TCP
    routes: [{{name: echo, backendRefs: [{{name: plain}}]}}]
- port: {tls_port}
  listeners:
  - name: sni
    hostname: \"*.test\"
    protocol: TLS
    tls: {{mode: Passthrough}}
    routes:
    - {{name: to-a, hostnames: [a.test], backendRefs: [{{name: a}}]}}
    - {{name: to-b, hostnames: [b.test], backendRefs: [{{name: b}}]}}
- port: {term_port}
  listeners:
  - name: term
    hostname: t.test
    protocol: TLS
    tls:
      cert: |
{}      key: |
{}    routes: [{{name: to-plain, backendRefs: [{{name: plain}}]}}]
backends:
- {{name: plain, static: {{host: 127.0.0.1, port: {}}}}}
- {{name: a, static: {{host: 127.0.0.1, port: {}}}}}
- {{name: b, static: {{host: 127.0.0.1, port: {}}}}}
",
        indent(&t_cert),
        indent(&t_key),
        plain.port(),
        a.port(),
        b.port(),
    );
    let p = Proxy::start(&cfg).await;

    // TCP: bytes both ways; the client's half-close reaches the backend, whose answer and
    // close come back.
    let mut c = TcpStream::connect(("127.0.0.1", tcp_port))
        .await
        .expect("connect");
    let big = vec![7u8; 256 * 1024];
    c.write_all(&big).await.expect("write");
    c.shutdown().await.expect("half-close");
    let mut got = Vec::new();
    c.read_to_end(&mut got).await.expect("read");
    assert_eq!(&got[..6], b"plain:");
    assert_eq!(&got[6..], &big[..], "{}", p.logs());

    // TLS passthrough: the server name picks the backend, whose own certificate the client
    // verifies (the proxy holds none for these names).
    for name in ["a.test", "b.test"] {
        let got = tls_round_trip(&ca, tls_port, name, b"ping")
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}\n{}", p.logs()));
        assert_eq!(got, format!("{name}:ping").as_bytes());
    }
    // A name no route takes (inside the listener's hostname) or no listener takes: closed.
    for name in ["c.test", "other.example"] {
        assert!(
            tls_round_trip(&ca, tls_port, name, b"ping").await.is_err(),
            "{name} was served"
        );
    }

    // TLS terminate: the listener's certificate, the plaintext to the backend.
    let got = tls_round_trip(&ca, term_port, "t.test", b"hello")
        .await
        .unwrap_or_else(|e| panic!("terminate: {e}\n{}", p.logs()));
    assert_eq!(got, b"plain:hello");

    p.wait_metric(
        r#"agora_l4_connections_total{backend="a",gateway="ns/gw",listener="sni",result="ok",route="ns/gw/to-a"} 1"#,
    )
    .await;
    p.wait_metric(r#"listener="sni",result="no_route",route=""} 1"#)
        .await;
    p.wait_metric(r#"listener="",result="no_listener",route=""} 1"#)
        .await;
    p.wait_metric(
        r#"agora_l4_bytes_total{backend="plain",direction="received",gateway="ns/gw",listener="tcp",route="ns/gw/echo"} 262144"#,
    )
    .await;
    p.wait_metric(r#"listener="term",result="ok",route="ns/gw/to-plain"} 1"#)
        .await;

    // One access log line per connection.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(p.dir.join("access.log")).unwrap_or_default();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let passthrough = lines
            .iter()
            .find(|l| l["sni"] == "b.test" && l["result"] == "ok");
        if let Some(l) = passthrough {
            assert_eq!(l["protocol"], "tls-passthrough");
            assert_eq!(l["route"], "ns/gw/to-b");
            assert_eq!(l["endpoint"], b.to_string());
            assert!(l["bytes_received"].as_u64().unwrap_or(0) > 4, "{l}");
            assert!(
                lines
                    .iter()
                    .any(|l| l["result"] == "no_route" && l["sni"] == "c.test")
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no access log line:\n{log}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
