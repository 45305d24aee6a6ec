//! End-to-end tests: the `agora-proxy` binary on loopback in front of in-process upstreams.

mod l4;
mod support;
mod tls;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::*;

fn one_route(port: u16, route_extra: &str, backends: &str) -> String {
    format!(
        "gateway: test/gw
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: main
      backendRefs: [{{name: up}}]
{route_extra}
backends:
{backends}"
    )
}

fn backend(name: &str, addrs: &[std::net::SocketAddr], extra: &str) -> String {
    let eps: Vec<String> = addrs
        .iter()
        .map(|a| format!("{{host: 127.0.0.1, port: {}}}", a.port()))
        .collect();
    format!("- name: {name}\n  endpoints: [{}]\n{extra}", eps.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_filters_and_errors() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let port = free_port();
    let cfg = format!(
        "gateway: test/gw
binds:
- port: {port}
  listeners:
  - name: http
    routes:
    - name: headers
      matches: [{{path: {{type: PathPrefix, value: /headers}}}}]
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier:
          set: [{{name: x-set, value: one}}]
          add: [{{name: x-add, value: two}}]
          remove: [x-drop]
      - type: ResponseHeaderModifier
        responseHeaderModifier:
          set: [{{name: x-resp, value: 'yes'}}]
          remove: [x-upstream]
      backendRefs: [{{name: a}}]
    - name: rewrite
      matches: [{{path: {{type: PathPrefix, value: /api/v1}}}}]
      filters:
      - type: URLRewrite
        urlRewrite: {{hostname: internal.example, path: {{type: ReplacePrefixMatch, replacePrefixMatch: /v2}}}}
      backendRefs: [{{name: a}}]
    - name: full
      matches: [{{path: {{type: PathPrefix, value: /full}}}}]
      filters:
      - type: URLRewrite
        urlRewrite: {{path: {{type: ReplaceFullPath, replaceFullPath: /replaced}}}}
      backendRefs: [{{name: a}}]
    - name: by-header
      matches: [{{path: {{type: PathPrefix, value: /}}, headers: [{{name: x-to, value: b}}]}}]
      backendRefs:
      - name: b
        filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {{set: [{{name: x-backend-filter, value: b}}]}}
    - name: redirect
      matches: [{{path: {{type: PathPrefix, value: /old}}}}]
      filters:
      - type: RequestRedirect
        requestRedirect: {{scheme: https, port: 8443, statusCode: 308, path: {{type: ReplacePrefixMatch, replacePrefixMatch: /new}}}}
    - name: direct
      matches: [{{path: {{type: Exact, value: /direct}}}}]
      filters:
      - type: DirectResponse
        directResponse: {{status: 418, contentType: text/plain, body: teapot}}
      - type: ResponseHeaderModifier
        responseHeaderModifier: {{add: [{{name: x-direct, value: '1'}}]}}
    - name: broken
      matches: [{{path: {{type: Exact, value: /nobackend}}}}]
    - name: catchall
      matches: [{{path: {{type: Exact, value: /}}}}]
      backendRefs: [{{name: b}}]
backends:
{}
{}",
        backend("a", &[a.addr], ""),
        backend("b", &[b.addr], "")
    );
    let _p = Proxy::start(&cfg).await;
    let c = client();
    let base = format!("http://127.0.0.1:{port}");

    let r = c
        .get(format!("{base}/headers/x?q=1"))
        .header("x-add", "one")
        .header("x-drop", "gone")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-resp"], "yes");
    assert!(r.headers().get("x-upstream").is_none());
    let seen = a.last().expect("seen");
    assert_eq!(seen.uri, "/headers/x?q=1");
    assert_eq!(seen.headers["x-set"], "one");
    assert_eq!(seen.headers["x-add"], "one,two");
    assert!(!seen.headers.contains_key("x-drop"));

    let r = c
        .get(format!("{base}/api/v1/users?id=7"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let seen = a.last().expect("seen");
    assert_eq!(seen.uri, "/v2/users?id=7");
    assert_eq!(seen.headers["host"], "internal.example");

    c.get(format!("{base}/full/deep/path"))
        .send()
        .await
        .expect("send");
    assert_eq!(a.last().expect("seen").uri, "/replaced");

    let r = c
        .get(format!("{base}/anything"))
        .header("x-to", "b")
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["x-upstream"], "b");
    assert_eq!(b.last().expect("seen").headers["x-backend-filter"], "b");

    let r = c
        .get(format!("{base}/old/page?x=1"))
        .header("host", "site.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "https://site.example:8443/new/page?x=1"
    );

    let r = c.get(format!("{base}/direct")).send().await.expect("send");
    assert_eq!(r.status(), 418);
    assert_eq!(r.headers()["x-direct"], "1");
    assert_eq!(r.text().await.expect("body"), "teapot");

    let r = c.get(format!("{base}/nowhere")).send().await.expect("send");
    assert_eq!(r.status(), 404);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "route_not_found");

    let r = c
        .get(format!("{base}/nobackend"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 500);

    // HTTP/2 cleartext on the same port.
    let r = h2c_client()
        .get(format!("{base}/"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.headers()["x-upstream"], "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_balancing_distribution_and_affinity() {
    let ups = [
        Upstream::start("u0").await,
        Upstream::start("u1").await,
        Upstream::start("u2").await,
    ];
    let addrs: Vec<_> = ups.iter().map(|u| u.addr).collect();
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: rr
      matches: [{{path: {{type: PathPrefix, value: /rr}}}}]
      backendRefs: [{{name: rr}}]
    - name: hash
      matches: [{{path: {{type: PathPrefix, value: /hash}}}}]
      backendRefs: [{{name: hash}}]
    - name: split
      matches: [{{path: {{type: PathPrefix, value: /split}}}}]
      backendRefs: [{{name: one, weight: 90}}, {{name: two, weight: 10}}]
backends:
{}
{}
{}
{}",
        backend("rr", &addrs, ""),
        backend(
            "hash",
            &addrs,
            "  loadBalancing: {mode: ConsistentHash, hashOn: {header: x-user}}\n"
        ),
        backend("one", &addrs[..1], ""),
        backend("two", &addrs[1..2], ""),
    );
    let _p = Proxy::start(&cfg).await;
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..60 {
        assert_eq!(
            c.get(format!("{base}/rr"))
                .send()
                .await
                .expect("send")
                .status(),
            200
        );
    }
    let counts: Vec<usize> = ups.iter().map(Upstream::count).collect();
    assert_eq!(counts, vec![20, 20, 20], "round robin spreads evenly");

    for user in ["alice", "bob", "carol", "dave"] {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10 {
            let r = c
                .get(format!("{base}/hash"))
                .header("x-user", user)
                .send()
                .await
                .expect("send");
            seen.insert(r.headers()["x-upstream"].to_str().expect("str").to_string());
        }
        assert_eq!(seen.len(), 1, "{user} stuck to one endpoint");
    }

    let mut split: HashMap<String, usize> = HashMap::new();
    for _ in 0..400 {
        let r = c.get(format!("{base}/split")).send().await.expect("send");
        *split
            .entry(r.headers()["x-upstream"].to_str().expect("str").to_string())
            .or_default() += 1;
    }
    assert!(
        (320..=390).contains(&split["u0"]),
        "90/10 weights: {split:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_evict_and_restore() {
    let good = Upstream::start("good").await;
    let flaky = Upstream::start("flaky").await;
    let port = free_port();
    let cfg = one_route(
        port,
        "",
        &backend(
            "up",
            &[good.addr, flaky.addr],
            "  healthCheck:\n    active: {path: /healthz, interval: 100ms, timeout: 500ms, unhealthyThreshold: 2, healthyThreshold: 1}\n",
        ),
    );
    let _p = Proxy::start(&cfg).await;
    let c = client();
    let url = format!("http://127.0.0.1:{port}/x");
    flaky.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let before = flaky.count();
    for _ in 0..20 {
        assert_eq!(c.get(&url).send().await.expect("send").status(), 200);
    }
    assert_eq!(flaky.count(), before, "unhealthy endpoint gets no traffic");
    flaky.set_healthy(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    for _ in 0..20 {
        c.get(&url).send().await.expect("send");
    }
    assert!(
        flaky.count() >= before + 5,
        "restored endpoint gets traffic again"
    );

    // Every endpoint unhealthy: a clear 503 JSON error, not a hang.
    good.set_healthy(false);
    flaky.set_healthy(false);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let r = c.get(&url).send().await.expect("send");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "no_healthy_endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_health_ejects_failing_endpoint() {
    let good = Upstream::start("good").await;
    let bad = Upstream::start("bad").await;
    bad.force_status(500);
    let port = free_port();
    let cfg = one_route(
        port,
        "",
        &backend(
            "up",
            &[good.addr, bad.addr],
            "  healthCheck: {consecutiveFailures: 2, baseEjectionTime: 30s}\n",
        ),
    );
    let _p = Proxy::start(&cfg).await;
    let c = client();
    for _ in 0..10 {
        c.get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect("send");
    }
    let after_ejection = bad.count();
    assert!(
        after_ejection <= 3,
        "bad endpoint ejected after 2 failures, got {after_ejection}"
    );
    for _ in 0..10 {
        assert_eq!(
            c.get(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .expect("send")
                .status(),
            200
        );
    }
    assert_eq!(bad.count(), after_ejection);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_status_and_connect_failure() {
    let good = Upstream::start("good").await;
    let bad = Upstream::start("bad").await;
    bad.force_status(503);
    let dead = free_port();
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: status
      matches: [{{path: {{type: PathPrefix, value: /status-retry}}}}]
      backendRefs: [{{name: mixed}}]
      retry: {{attempts: 2, codes: [503], backoff: 10ms}}
    - name: noretry
      matches: [{{path: {{type: PathPrefix, value: /no-retry}}}}]
      backendRefs: [{{name: onlybad}}]
    - name: exhausted
      matches: [{{path: {{type: PathPrefix, value: /exhausted}}}}]
      backendRefs: [{{name: onlybad}}]
      retry: {{attempts: 2, codes: [503], backoff: 10ms}}
    - name: connect
      matches: [{{path: {{type: PathPrefix, value: /connect}}}}]
      backendRefs: [{{name: withdead}}]
backends:
{}
{}
- name: withdead
  endpoints: [{{host: 127.0.0.1, port: {dead}}}, {{host: 127.0.0.1, port: {}}}]
",
        backend("mixed", &[bad.addr, good.addr], ""),
        backend("onlybad", &[bad.addr], ""),
        good.addr.port()
    );
    let _p = Proxy::start(&cfg).await;
    let c = client();
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..10 {
        let r = c
            .post(format!("{base}/status-retry"))
            .body("payload")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "a 503 is retried on the other endpoint");
        assert_eq!(
            good.last().expect("seen").body_len,
            7,
            "the body is re-sent on retry"
        );
    }
    let before = bad.count();
    assert_eq!(
        c.get(format!("{base}/no-retry"))
            .send()
            .await
            .expect("send")
            .status(),
        503
    );
    assert_eq!(bad.count(), before + 1, "no retry policy: one attempt");
    let before = bad.count();
    assert_eq!(
        c.get(format!("{base}/exhausted"))
            .send()
            .await
            .expect("send")
            .status(),
        503
    );
    assert_eq!(bad.count(), before + 3, "1 attempt + 2 retries");
    for _ in 0..6 {
        assert_eq!(
            c.get(format!("{base}/connect"))
                .send()
                .await
                .expect("send")
                .status(),
            200
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_answer_504() {
    let slow = Upstream::start("slow").await;
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: backend-timeout
      matches: [{{path: {{type: PathPrefix, value: /delay/2000}}}}]
      backendRefs: [{{name: up}}]
      timeouts: {{backendRequest: 200ms}}
    - name: request-timeout
      matches: [{{path: {{type: PathPrefix, value: /delay/1500}}}}]
      backendRefs: [{{name: up}}]
      timeouts: {{request: 300ms}}
    - name: fast-enough
      backendRefs: [{{name: up}}]
      timeouts: {{request: 2s}}
backends:
{}",
        backend("up", &[slow.addr], "")
    );
    let p = Proxy::start(&cfg).await;
    let c = client();
    for path in ["/delay/2000", "/delay/1500"] {
        let t = Instant::now();
        let r = c
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e:?}\n{}", p.logs()));
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert_eq!(status, 504, "{path}: {body}\n{}", p.logs());
        assert!(
            t.elapsed() < Duration::from_millis(1200),
            "{path} took {:?}",
            t.elapsed()
        );
    }
    let r = c
        .get(format!("http://127.0.0.1:{port}/delay/100"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_limits_and_large_buffered_bodies() {
    let up = Upstream::start("up").await;
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: small
      matches: [{{path: {{type: PathPrefix, value: /small}}}}]
      backendRefs: [{{name: up}}]
      maxRequestBodyBytes: 1024
    - name: buffered
      matches: [{{path: {{type: PathPrefix, value: /buffered}}}}]
      backendRefs: [{{name: up}}]
      bufferRequestBody: true
      maxRequestBodyBytes: 10000000
    - name: buffered-small
      matches: [{{path: {{type: PathPrefix, value: /bsmall}}}}]
      backendRefs: [{{name: up}}]
      bufferRequestBody: true
      maxRequestBodyBytes: 1024
backends:
{}",
        backend("up", &[up.addr], "")
    );
    let p = Proxy::start(&cfg).await;
    let base = format!("http://127.0.0.1:{port}");
    for c in [client(), h2c_client()] {
        let r = c
            .post(format!("{base}/small"))
            .body(vec![b'x'; 2048])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 413);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["type"], "request_too_large");
        let r = c
            .post(format!("{base}/bsmall"))
            .body(vec![b'x'; 2048])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 413);
        assert_eq!(
            c.post(format!("{base}/small"))
                .body(vec![b'x'; 1000])
                .send()
                .await
                .expect("send")
                .status(),
            200
        );

        for size in [1024usize, 70 * 1024, 8 * 1024 * 1024] {
            let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let sum = body_sum(&body);
            let r = c
                .post(format!("{base}/buffered"))
                .body(body)
                .send()
                .await
                .expect("send");
            assert_eq!(r.status(), 200, "size {size}; log: {}", p.logs());
            let j: serde_json::Value = r.json().await.expect("json");
            assert_eq!(j["body_len"], size, "size {size}");
            assert_eq!(j["body_sum"], sum, "size {size}");
        }
    }
    // A streamed (chunked) body that outgrows the limit is cut off with 413.
    let stream =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 512])));
    let r = client()
        .post(format!("{base}/small"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    match r {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_sends_a_copy() {
    let main = Upstream::start("main").await;
    let shadow = Upstream::start("shadow").await;
    let port = free_port();
    let cfg = format!(
        "binds:
- port: {port}
  listeners:
  - routes:
    - name: big
      matches: [{{path: {{type: PathPrefix, value: /big}}}}]
      bufferRequestBody: true
      filters:
      - type: RequestMirror
        requestMirror: {{backendRef: {{name: shadow}}}}
      backendRefs: [{{name: main}}]
    - name: m
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {{set: [{{name: x-mod, value: '1'}}]}}
      - type: RequestMirror
        requestMirror: {{backendRef: {{name: shadow}}}}
      backendRefs: [{{name: main}}]
backends:
{}
{}",
        backend("main", &[main.addr], ""),
        backend("shadow", &[shadow.addr], "")
    );
    let p = Proxy::start(&cfg).await;
    let c = client();
    let r = c
        .get(format!("http://127.0.0.1:{port}/m?a=1"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["x-upstream"], "main");
    let r = c
        .post(format!("http://127.0.0.1:{port}/post"))
        .body("hello mirror")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    p.wait_metric("agora_mirror_requests_total{backend=\"shadow\",result=\"ok\"} 2")
        .await;
    // Mirrors are sent concurrently: find each copy by its path.
    let seen = shadow.seen.lock().expect("lock").clone();
    let get = seen
        .iter()
        .find(|s| s.uri == "/m?a=1")
        .expect("GET mirrored");
    assert_eq!(
        get.headers["x-mod"], "1",
        "mirror sees the modified headers"
    );
    let post = seen
        .iter()
        .find(|s| s.uri == "/post")
        .expect("POST mirrored");
    assert_eq!(post.body_len, 12, "mirror gets the body");

    // A buffered body past Pingora's 64 KiB retry buffer (replayed through a subrequest) is
    // mirrored whole too.
    let big: Vec<u8> = (0..100 * 1024).map(|i| (i % 251) as u8).collect();
    let sum = body_sum(&big);
    let r = c
        .post(format!("http://127.0.0.1:{port}/big"))
        .body(big)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    p.wait_metric("agora_mirror_requests_total{backend=\"shadow\",result=\"ok\"} 3")
        .await;
    let seen = shadow.seen.lock().expect("lock").clone();
    let big = seen
        .iter()
        .find(|s| s.uri == "/big")
        .expect("big body mirrored");
    assert_eq!((big.body_len, big.body_sum), (100 * 1024, sum));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_applies_and_rejects_whole() {
    let a = Upstream::start("a").await;
    let b = Upstream::start("b").await;
    let port = free_port();
    let p = Proxy::start(&one_route(port, "", &backend("up", &[a.addr], ""))).await;
    let c = client();
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(
        c.get(&url).send().await.expect("send").headers()["x-upstream"],
        "a"
    );

    // Switch the backend; a slow request in flight during the swap still completes.
    let slow = tokio::spawn({
        let c = c.clone();
        let url = format!("http://127.0.0.1:{port}/delay/800");
        async move { c.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.write_config(&one_route(port, "", &backend("up", &[b.addr], "")));
    p.wait_metric("agora_config_updates_total{result=\"ok\"} 2")
        .await;
    assert_eq!(
        c.get(&url).send().await.expect("send").headers()["x-upstream"],
        "b"
    );
    assert_eq!(
        slow.await
            .expect("join")
            .expect("in-flight request survived"),
        200
    );

    // An invalid file is rejected whole: b keeps serving.
    let broken = "    - name: broken\n      matches: [{path: {type: RegularExpression, value: '('}}]\n      backendRefs: [{name: up}]";
    p.write_config(&one_route(port, broken, &backend("up", &[a.addr], "")));
    p.wait_metric("agora_config_updates_total{result=\"rejected\"} 1")
        .await;
    assert_eq!(
        c.get(&url).send().await.expect("send").headers()["x-upstream"],
        "b"
    );
    p.write_config("binds: [{port: 0}]\n");
    p.wait_metric("agora_config_updates_total{result=\"rejected\"} 2")
        .await;
    assert_eq!(
        c.get(&url).send().await.expect("send").headers()["x-upstream"],
        "b"
    );
    assert!(
        p.logs().contains("invalid regex"),
        "the log names the problem"
    );

    // A new port in a reloaded config is served without a restart.
    let port2 = free_port();
    let two = format!(
        "binds:\n- port: {port}\n  listeners:\n  - routes: [{{name: r, backendRefs: [{{name: up}}]}}]\n- port: {port2}\n  listeners:\n  - routes: [{{name: r2, backendRefs: [{{name: up}}]}}]\nbackends:\n{}",
        backend("up", &[a.addr], "")
    );
    p.write_config(&two);
    p.wait_metric("agora_config_updates_total{result=\"ok\"} 3")
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = c
        .get(format!("http://127.0.0.1:{port2}/"))
        .send()
        .await
        .expect("new port");
    assert_eq!(r.headers()["x-upstream"], "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_endpoints() {
    let a = Upstream::start("a").await;
    let port = free_port();
    let p = Proxy::start(&one_route(port, "", &backend("up", &[a.addr], ""))).await;
    client()
        .get(format!("http://127.0.0.1:{port}/x"))
        .send()
        .await
        .expect("send");
    assert_eq!(p.admin_get("/healthz").await, "ok\n");
    assert_eq!(p.admin_get("/readyz").await, "ready\n");
    p.wait_metric(
        "agora_requests_total{backend=\"up\",gateway=\"test/gw\",listener=\"http\",method=\"GET\",route=\"test/gw/main\",status=\"200\"} 1",
    )
    .await;
    let m = p.admin_get("/metrics").await;
    assert!(m.contains("agora_request_duration_seconds_bucket"));
    assert!(m.contains("agora_upstream_connect_duration_seconds_count{backend=\"up\"} 1"));
    let dump: serde_json::Value =
        serde_json::from_str(&p.admin_get("/config_dump").await).expect("json");
    assert_eq!(dump["gateway"], "test/gw");
    assert!(dump["resources"].as_array().expect("array").len() >= 4);
    // The access log is flushed in the background, at least every 100 ms.
    let mut access = String::new();
    for _ in 0..40 {
        access = std::fs::read_to_string(p.dir.join("access.log")).expect("access log");
        if !access.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line: serde_json::Value =
        serde_json::from_str(access.lines().last().expect("a line")).expect("json line");
    assert_eq!(line["status"], 200);
    assert_eq!(line["route"], "test/gw/main");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests() {
    let a = Upstream::start("a").await;
    let port = free_port();
    let mut p = Proxy::start(&one_route(port, "", &backend("up", &[a.addr], ""))).await;
    let slow = tokio::spawn(async move {
        client()
            .get(format!("http://127.0.0.1:{port}/delay/700"))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let kill = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(p.pid().to_string())
        .status()
        .expect("kill");
    assert!(kill.success());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // New connections are refused while draining.
    assert!(
        client()
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .is_err()
    );
    assert_eq!(
        slow.await
            .expect("join")
            .expect("in-flight request completed"),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.try_wait().is_none() {
        assert!(Instant::now() < deadline, "proxy exits after draining");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn every_example_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("examples dir") {
        let path = e.expect("entry").path();
        if path.extension().is_some_and(|x| x == "yaml") {
            let loaded = agora_proxy::config::load_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let store = agora_proxy::store::Store::new();
            store
                .apply(&loaded.gateway, loaded.resources)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1);
}
