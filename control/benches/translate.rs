//! What one change costs the controller at scale, without sockets: the snapshot of
//! `load-tests/control-plane.py` (one Gateway, one Service, N HTTPRoutes of one rule each)
//! parsed by the manifest loader, then, for one route edited, each step the controller runs
//! between the manifest change and the delta it sends: re-loading the directory from the
//! file cache, translation with the controller's memo (`translate_with`: only the edited
//! route is translated again), and encoding the Gateway's resources against the previous
//! snapshot (`Published::new`). A fresh `translate()` of the whole snapshot is timed too.
//!
//! Run: `cargo bench -p agora-control --bench translate` (`TRANSLATE_ROUTES`, default 5000;
//! `TRANSLATE_ROUNDS`, default 20). Prints the median and the worst round of each step.

use std::hint::black_box;
use std::time::{Duration, Instant};

use agora_control::source::manifests::FileCache;
use agora_control::translate::{Memo, translate, translate_with};
use agora_control::xds::Published;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const BASE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agora}
spec: {controllerName: agora.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: bench}
spec:
  gatewayClassName: agora
  listeners: [{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Same}}}]
---
apiVersion: v1
kind: Service
metadata: {name: svc, namespace: bench}
spec: {ports: [{name: http, port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: svc-1, namespace: bench, labels: {kubernetes.io/service-name: svc}}
addressType: IPv4
ports: [{name: http, port: 8080}]
endpoints: [{addresses: [127.0.0.1]}]
";

fn route(i: usize, path: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r{i}, namespace: bench}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [h{i}.example.com]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: svc, port: 80}}]
"
    )
}

fn report(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<44} median {:>8.2} ms   max {:>8.2} ms",
        ms(xs[xs.len() / 2]),
        ms(xs[xs.len() - 1])
    );
}

fn main() {
    let n = env("TRANSLATE_ROUTES", 5000);
    let rounds = env("TRANSLATE_ROUNDS", 20).max(1);
    let dir = std::env::temp_dir().join(format!("agora-translate-bench-{}", std::process::id()));
    let routes = dir.join("routes");
    std::fs::create_dir_all(&routes).expect("temp dir");
    std::fs::write(dir.join("base.yaml"), BASE).expect("write");
    // Files of 500 routes, as control-plane.py writes them, plus the one edited.
    for start in (1..n).step_by(500) {
        let text: Vec<String> = (start..n.min(start + 500))
            .map(|i| route(i, &format!("/p{i}")))
            .collect();
        std::fs::write(routes.join(format!("r{start:06}.yaml")), text.join("---\n"))
            .expect("write");
    }
    let edit = routes.join("edit.yaml");
    std::fs::write(&edit, route(0, "/v0")).expect("write");

    let mut cache = FileCache::default();
    let started = Instant::now();
    let first = cache.load(&dir).expect("load");
    println!(
        "{n} HTTPRoutes: first load (parse) {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let mut memo = Memo::default();
    let started = Instant::now();
    let output = translate_with(&first.snapshot, &mut memo);
    println!(
        "first translate() {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let routes_out: usize = output.gateways.values().map(|g| g.routes.len()).sum();
    assert_eq!(routes_out, n, "every route translates");
    let mut previous = Published::new(1, output, None);

    let (mut load, mut tr, mut enc, mut total) = (vec![], vec![], vec![], vec![]);
    let mut fresh = vec![];
    for round in 0..rounds {
        std::fs::write(&edit, route(0, &format!("/v{}", round + 1))).expect("write");
        // Distinct modification times even on coarse clocks: the size changes too.
        let t0 = Instant::now();
        let loaded = cache.load(&dir).expect("load");
        let t1 = Instant::now();
        let output = translate_with(&loaded.snapshot, &mut memo);
        let t2 = Instant::now();
        let published = Published::new(round as u64 + 2, output, Some(&previous));
        let t3 = Instant::now();
        load.push(t1 - t0);
        tr.push(t2 - t1);
        enc.push(t3 - t2);
        total.push(t3 - t0);
        previous = black_box(published);
        let t = Instant::now();
        black_box(translate(&loaded.snapshot));
        fresh.push(t.elapsed());
    }
    report("reload directory (one file changed)", load);
    report("translate_with() (memo: the edited route)", tr);
    report("encode (Published::new vs previous)", enc);
    report("total per change", total);
    report("fresh translate() of the whole snapshot", fresh);
    let _ = std::fs::remove_dir_all(&dir);
}
