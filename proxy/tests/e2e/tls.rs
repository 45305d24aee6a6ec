//! TLS: termination with SNI certificate choice and HTTP/2 over ALPN, and upstream TLS with a
//! custom CA.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

use crate::support::*;

struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "agora test CA");
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

    fn pem(&self) -> String {
        self.issuer.pem()
    }
}

fn indent(pem: &str) -> String {
    pem.lines().map(|l| format!("        {l}\n")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listeners_choose_certificate_by_sni_and_speak_h2() {
    let up = Upstream::start("up").await;
    let ca = Ca::new();
    let (a_cert, a_key) = ca.leaf("a.test");
    let (b_cert, b_key) = ca.leaf("b.test");
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - name: a
    hostname: a.test
    protocol: HTTPS
    tls:
      cert: |
{}      key: |
{}    routes: [{{name: ra, backendRefs: [{{name: up}}], filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{set: [{{name: x-listener, value: a}}]}}}}]}}]
  - name: b
    hostname: b.test
    protocol: HTTPS
    tls:
      cert: |
{}      key: |
{}    routes: [{{name: rb, backendRefs: [{{name: up}}], filters: [{{type: ResponseHeaderModifier, responseHeaderModifier: {{set: [{{name: x-listener, value: b}}]}}}}]}}]
backends:
- name: up
  static: {{host: 127.0.0.1, port: {}}}
",
        indent(&a_cert),
        indent(&a_key),
        indent(&b_cert),
        indent(&b_key),
        up.addr.port()
    );
    let p = Proxy::start(&cfg).await;
    let root = reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("root");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(root)
        .resolve("a.test", addr)
        .resolve("b.test", addr)
        .build()
        .expect("client");
    for name in ["a", "b"] {
        // Hostname verification passes only if the proxy served this name's certificate.
        let r = c
            .get(format!("https://{name}.test:{port}/"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}\n{}", p.logs()));
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.version(),
            reqwest::Version::HTTP_2,
            "h2 negotiated by ALPN"
        );
        assert_eq!(r.headers()["x-listener"], name);
    }
    // HTTP/1.1 over TLS works too.
    let h1 = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("root"))
        .resolve("a.test", addr)
        .http1_only()
        .build()
        .expect("client");
    let r = h1
        .get(format!("https://a.test:{port}/"))
        .send()
        .await
        .expect("h1 tls");
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    // The private key never shows up in the config dump.
    let dump = p.admin_get("/config_dump").await;
    assert!(
        dump.contains("[redacted]") && !dump.contains("PRIVATE KEY"),
        "{dump}"
    );
}

/// A TLS upstream (HTTP/1.1) that answers 200 with its name.
async fn tls_upstream(cert: &str, key: &str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nx-upstream: secure\r\nconnection: close\r\n\r\nsecure")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_tls_verifies_against_configured_ca() {
    let ca = Ca::new();
    let (cert, key) = ca.leaf("up.test");
    let addr = tls_upstream(&cert, &key).await;
    let other_ca = Ca::new();
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: good
      matches: [{{path: {{type: PathPrefix, value: /good}}}}]
      backendRefs: [{{name: good}}]
    - name: wrong-ca
      matches: [{{path: {{type: PathPrefix, value: /bad}}}}]
      backendRefs: [{{name: bad}}]
backends:
- name: good
  static: {{host: 127.0.0.1, port: {p}}}
  tls:
    sni: up.test
    ca: |
{ca}
- name: bad
  static: {{host: 127.0.0.1, port: {p}}}
  tls:
    sni: up.test
    ca: |
{other}
",
        p = addr.port(),
        ca = ca
            .pem()
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        other = other_ca
            .pem()
            .lines()
            .map(|l| format!("      {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let p = Proxy::start(&cfg).await;
    let c = client();
    let r = c
        .get(format!("http://127.0.0.1:{port}/good"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "{}", p.logs());
    assert_eq!(r.text().await.expect("body"), "secure");
    let r = c
        .get(format!("http://127.0.0.1:{port}/bad"))
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.status(),
        503,
        "an untrusted upstream certificate fails the request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewed_certificate_files_are_picked_up() {
    let up = Upstream::start("up").await;
    let old_ca = Ca::new();
    let new_ca = Ca::new();
    let (cert, key) = old_ca.leaf("a.test");
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - hostname: a.test
    protocol: HTTPS
    tls: {{certFile: tls.crt, keyFile: tls.key}}
    routes: [{{name: r, backendRefs: [{{name: up}}]}}]
backends:
- name: up
  static: {{host: 127.0.0.1, port: {}}}
",
        up.addr.port()
    );
    let p = Proxy::start_with_files(&cfg, &[("tls.crt", &cert), ("tls.key", &key)]).await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let trusting = |ca: &Ca| {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(ca.pem().as_bytes()).expect("root"),
            )
            .resolve("a.test", addr)
            .build()
            .expect("client")
    };
    let url = format!("https://a.test:{port}/");
    assert_eq!(
        trusting(&old_ca)
            .get(&url)
            .send()
            .await
            .expect("old cert")
            .status(),
        200
    );
    let (cert, key) = new_ca.leaf("a.test");
    p.write_file("tls.key", &key);
    p.write_file("tls.crt", &cert);
    // The key alone does not match the old certificate: that state is rejected, then the
    // pair is applied once the certificate follows.
    let new_client = trusting(&new_ca);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while new_client.get(&url).send().await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "new certificate never served:\n{}",
            p.logs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        trusting(&old_ca).get(&url).send().await.is_err(),
        "the old certificate is gone"
    );
}
