//! CPU cost of the request path's policies for one LLM call, without sockets: what
//! `load-tests/bench.sh` SCENARIO=llm-policy adds to a request (JWT authentication, a CEL
//! `Require` rule on a claim, a local token limit: admit → admit_tokens → settle).
//!
//! The policy is written as the local config a user writes, loaded by the real config
//! loader and compiled as at config load. After a warm-up, `ITERS` requests are timed in
//! `ROUNDS` rounds; the median round is reported, with the parts on their own (JWT, CEL
//! context + rule, token limit).
//!
//! With `POLICY_PATH_REDIS=redis://HOST:PORT` (a running redis-server), also the global
//! limits of SCENARIO=llm-redis (a request limit and a token limit in Redis): 1, 4 and 16
//! concurrent requests for 3 s each on one thread, reporting the process CPU per request (the Redis client
//! included, redis-server not).
//!
//! Run: `cargo bench -p agora-proxy --bench policy_path` (iterations: `POLICY_PATH_ITERS`,
//! default 200000).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use agora_policies::cel::{Attributes, LlmAttrs, RequestView};
use agora_proto::resource::resource::Kind;
use agora_proxy::metrics::Metrics;
use agora_proxy::policy::{BodyFollows, PolicyCtx, RequestInfo, Used};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

const ROUNDS: usize = 5;
const SECRET: &[u8] = b"agora-bench-secret-0123456789abcdef";

fn config(traffic: &str) -> String {
    format!(
        r#"
binds:
- port: 18080
  listeners:
  - name: http
    routes:
    - name: llm
      backendRefs: [{{name: mock}}]
backends:
- name: mock
  static: {{host: 127.0.0.1, port: 18081}}
policies:
- name: bench
  targetRefs: [{{kind: HTTPRoute, name: llm}}]
  traffic:
{traffic}"#
    )
}

/// The policy of SCENARIO=llm-policy.
fn local_traffic() -> String {
    let k = B64.encode(SECRET);
    format!(
        r#"    jwtAuthentication:
      providers:
      - issuer: https://idp.bench
        audiences: [agora]
        jwks: {{inline: '{{"keys":[{{"kty":"oct","kid":"bench","alg":"HS256","k":"{k}"}}]}}'}}
    authorization:
      action: Require
      policy: {{matchExpressions: ['"ml" in jwt.groups']}}
    rateLimit:
      local: [{{tokens: 1000000000000, unit: Minutes}}]
"#
    )
}

/// The policy of SCENARIO=llm-redis.
const GLOBAL_TRAFFIC: &str = r#"    rateLimit:
      global:
        limits:
        - {requests: 1000000000000, unit: Minutes}
        - {tokens: 1000000000000, unit: Minutes}
"#;

fn jwt() -> String {
    let head = B64.encode(br#"{"alg":"HS256","typ":"JWT","kid":"bench"}"#);
    let exp = agora_policies::unix_now() + 3600;
    let body = B64.encode(format!(
        r#"{{"iss":"https://idp.bench","aud":"agora","sub":"bench","groups":["ml"],"exp":{exp}}}"#
    ));
    let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
    let sig = hmac::sign(&key, format!("{head}.{body}").as_bytes());
    format!("{head}.{body}.{}", B64.encode(sig.as_ref()))
}

fn effective(traffic: &str) -> Arc<agora_policies::Effective> {
    let loaded = agora_proxy::config::load_str(&config(traffic), std::path::Path::new("."))
        .expect("bench config loads");
    let policies: Vec<Arc<agora_policies::Policy>> = loaded
        .resources
        .iter()
        .filter_map(|r| match &r.kind {
            Some(Kind::Policy(p)) => Some(Arc::new(agora_policies::compile(p).expect("compiles"))),
            _ => None,
        })
        .collect();
    assert!(!policies.is_empty(), "the bench config has a policy");
    Arc::new(agora_policies::merge(&[&[], &[], &policies, &[]]))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times `f` over `iters` calls per round; the median round in ns per call.
fn time(name: &str, iters: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iters / 10 {
        f();
    }
    let rounds = (0..ROUNDS)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    let ns = median(rounds);
    println!("{name:<40} {:>8.2} µs", ns / 1000.0);
    ns
}

fn main() {
    let iters = std::env::var("POLICY_PATH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000usize);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let eff = effective(&local_traffic());
    let metrics = Arc::new(Metrics::new());
    let req = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("host", "localhost:18080")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", jwt()))
        .header("user-agent", "oha/1.16.0")
        .body(())
        .expect("request");
    let (parts, ()) = req.into_parts();
    let info = RequestInfo {
        parts: &parts,
        host: "localhost",
        source: Some("127.0.0.1:40000".parse().expect("addr")),
    };
    let llm = LlmAttrs {
        request_model: "bench-model".into(),
        provider: "mock".into(),
        ..LlmAttrs::default()
    };

    println!("policy path of one LLM request (JWT + CEL Require + local token limit)");
    time("whole: admit + admit_tokens + settle", iters, || {
        let mut p = PolicyCtx::default();
        rt.block_on(async {
            p.admit(&eff, info, BodyFollows::Llm)
                .await
                .expect("admitted");
            p.admit_tokens(256, &llm, info).await.expect("tokens");
        });
        p.settle(
            Some(Used {
                model: "bench-model".into(),
                input: 200,
                output: 20,
            }),
            &metrics,
        );
        black_box(p);
    });
    let jwt = eff.jwt.clone().expect("jwt");
    time("  JWT authenticate (cached token)", iters, || {
        black_box(jwt.authenticate(&parts.headers).expect("valid"));
    });
    let identity = {
        let mut p = PolicyCtx::default();
        rt.block_on(p.admit(&eff, info, BodyFollows::No))
            .expect("admitted");
        p.identity
    };
    let attrs = Attributes {
        request: RequestView {
            method: "POST",
            path: "/v1/chat/completions",
            host: "localhost",
            headers: &parts.headers,
        },
        source: info.source,
        identity: &identity,
        llm: None,
        mcp: None,
        a2a: None,
    };
    time("  CEL context", iters, || {
        black_box(attrs.context(eff.uses));
    });
    let ctx = attrs.context(eff.uses);
    let rule = eff.authorization[0].clone();
    time("  CEL rule check", iters, || {
        rule.check(&ctx).expect("allowed");
    });
    let limit = eff.local_limits[0].clone();
    time("  token limit acquire + settle", iters, || {
        let now = Instant::now();
        limit.acquire("", 256, now).expect("room");
        limit.settle("", -36, now);
    });
    if let Ok(url) = std::env::var("POLICY_PATH_REDIS") {
        agora_proxy::policy::redis::init(Some(url));
        for conc in [1, 4, 16] {
            redis_path(&rt, conc);
        }
    }
}

/// Process CPU time (user + system) from /proc/self/stat, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The global limits of SCENARIO=llm-redis against a running redis-server.
fn redis_path(rt: &tokio::runtime::Runtime, conc: usize) {
    let eff = effective(GLOBAL_TRAFFIC);
    let parts = http::Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("host", "localhost:18080")
        .body(())
        .expect("request")
        .into_parts()
        .0;
    let parts = Arc::new(parts);
    let metrics = Arc::new(Metrics::new());
    let run = |secs: u64| {
        let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let until = Instant::now() + std::time::Duration::from_secs(secs);
        let cpu = cpu_seconds();
        rt.block_on(async {
            let tasks: Vec<_> = (0..conc)
                .map(|_| {
                    let (eff, parts, metrics, done) =
                        (eff.clone(), parts.clone(), metrics.clone(), done.clone());
                    tokio::spawn(async move {
                        let llm = LlmAttrs::default();
                        while Instant::now() < until {
                            let info = RequestInfo {
                                parts: &parts,
                                host: "localhost",
                                source: None,
                            };
                            let mut p = PolicyCtx::default();
                            p.admit(&eff, info, BodyFollows::Llm)
                                .await
                                .expect("admitted");
                            p.admit_tokens(256, &llm, info).await.expect("tokens");
                            p.settle(
                                Some(Used {
                                    model: "bench-model".into(),
                                    input: 200,
                                    output: 20,
                                }),
                                &metrics,
                            );
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        });
        let n = done.load(std::sync::atomic::Ordering::Relaxed);
        (n, cpu_seconds() - cpu, secs)
    };
    run(1);
    let (n, cpu, secs) = run(3);
    println!(
        "global limits in Redis, {conc:>2} concurrent: {:>6.0} requests/s, {:.2} µs CPU per request",
        n as f64 / secs as f64,
        cpu * 1e6 / n as f64
    );
}
