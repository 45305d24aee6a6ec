use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::*;

fn eps(n: u16) -> Vec<Arc<EndpointState>> {
    (0..n)
        .map(|i| {
            let addr: SocketAddr = format!("10.0.0.{}:80", i + 1).parse().expect("addr");
            Arc::new(EndpointState::new(addr, "h".into(), 1))
        })
        .collect()
}

fn backend(lb: LbMode, e: Vec<Arc<EndpointState>>) -> BackendIr {
    BackendIr::new(
        "backend/b".into(),
        e,
        BackendSettings {
            lb,
            ..Default::default()
        },
    )
}

#[test]
fn round_robin_is_even_and_skips_unhealthy() {
    let b = backend(LbMode::RoundRobin, eps(3));
    let mut counts: HashMap<SocketAddr, u32> = HashMap::new();
    for _ in 0..300 {
        *counts
            .entry(b.select(None, None).expect("ep").addr)
            .or_default() += 1;
    }
    assert!(counts.values().all(|&c| c == 100), "{counts:?}");
    b.endpoints[1]
        .active_healthy
        .store(false, Ordering::Relaxed);
    for _ in 0..50 {
        assert_ne!(b.select(None, None).expect("ep").addr, b.endpoints[1].addr);
    }
    for e in &b.endpoints {
        e.active_healthy.store(false, Ordering::Relaxed);
    }
    assert!(b.select(None, None).is_none());
}

#[test]
fn weights_shape_round_robin() {
    let e = vec![
        Arc::new(EndpointState::new(
            "10.0.0.1:1".parse().expect("a"),
            "h".into(),
            1,
        )),
        Arc::new(EndpointState::new(
            "10.0.0.2:1".parse().expect("a"),
            "h".into(),
            3,
        )),
    ];
    let b = backend(LbMode::RoundRobin, e);
    let heavy = (0..400)
        .filter(|_| b.select(None, None).expect("ep").weight == 3)
        .count();
    assert_eq!(heavy, 300);
}

#[test]
fn exclude_avoids_the_failed_endpoint_when_possible() {
    let b = backend(LbMode::RoundRobin, eps(2));
    let bad = b.endpoints[0].addr;
    for _ in 0..10 {
        assert_ne!(b.select(None, Some(&bad)).expect("ep").addr, bad);
    }
    let one = backend(LbMode::RoundRobin, eps(1));
    let only = one.endpoints[0].addr;
    assert_eq!(one.select(None, Some(&only)).expect("ep").addr, only);
}

#[test]
fn least_request_prefers_idle_endpoints() {
    let b = backend(LbMode::LeastRequest, eps(2));
    b.endpoints[0].inflight.store(100, Ordering::Relaxed);
    let idle = b.endpoints[1].addr;
    let picks = (0..100)
        .filter(|_| b.select(None, None).expect("ep").addr == idle)
        .count();
    assert_eq!(picks, 100);
}

#[test]
fn consistent_hash_is_sticky_and_moves_little() {
    let on = HashOn::Header(http::HeaderName::from_static("x-user"));
    let b = backend(LbMode::ConsistentHash(on.clone()), eps(4));
    let key = |i: u32| fnv1a(format!("user-{i}").as_bytes());
    let before: Vec<SocketAddr> = (0..1000)
        .map(|i| b.select(Some(key(i)), None).expect("ep").addr)
        .collect();
    // Same key, same endpoint, every time.
    for i in 0..1000 {
        assert_eq!(
            b.select(Some(key(i)), None).expect("ep").addr,
            before[i as usize]
        );
    }
    // Every endpoint gets a fair share.
    let mut counts: HashMap<SocketAddr, u32> = HashMap::new();
    for a in &before {
        *counts.entry(*a).or_default() += 1;
    }
    assert!(counts.values().all(|&c| c > 150), "{counts:?}");
    // Losing one endpoint only moves the keys it owned.
    b.endpoints[0]
        .active_healthy
        .store(false, Ordering::Relaxed);
    let moved = (0..1000)
        .filter(|&i| {
            let now = b.select(Some(key(i)), None).expect("ep").addr;
            now != before[i as usize] && before[i as usize] != b.endpoints[0].addr
        })
        .count();
    assert_eq!(moved, 0);
}

#[test]
fn hash_keys_from_header_cookie_and_source() {
    let req = http::Request::builder()
        .header("x-user", "alice")
        .header("cookie", "a=1; session=xyz")
        .body(())
        .expect("req")
        .into_parts()
        .0;
    let h = hash_key(
        &HashOn::Header(http::HeaderName::from_static("x-user")),
        &req,
        None,
    );
    assert_eq!(h, Some(fnv1a(b"alice")));
    assert_eq!(
        hash_key(&HashOn::Cookie("session".into()), &req, None),
        Some(fnv1a(b"xyz"))
    );
    assert_eq!(
        hash_key(&HashOn::Cookie("missing".into()), &req, None),
        None
    );
    let ip = "192.0.2.7".parse().expect("ip");
    assert_eq!(
        hash_key(&HashOn::SourceIp, &req, Some(ip)),
        Some(fnv1a(b"192.0.2.7"))
    );
}

#[test]
fn passive_check_ejects_after_consecutive_failures() {
    let e = EndpointState::new("10.0.0.1:80".parse().expect("a"), "h".into(), 1);
    let p = PassiveCheck {
        consecutive_failures: 3,
        base_ejection: Duration::from_secs(60),
    };
    e.record(false, Some(&p));
    e.record(false, Some(&p));
    e.record(true, Some(&p));
    e.record(false, Some(&p));
    e.record(false, Some(&p));
    assert!(!e.is_ejected(), "a success resets the streak");
    e.record(false, Some(&p));
    assert!(e.is_ejected());
    assert!(!e.is_healthy(now_ms()));
}

#[test]
fn registry_keeps_state_across_builds() {
    let r = StateRegistry::default();
    let addr: SocketAddr = "10.0.0.1:80".parse().expect("a");
    let a = r.get("backend/b", addr, "h", 1);
    a.active_healthy.store(false, Ordering::Relaxed);
    let b = r.get("backend/b", addr, "h", 1);
    assert!(Arc::ptr_eq(&a, &b));
    drop((a, b));
    r.retain_used();
    let c = r.get("backend/b", addr, "h", 1);
    assert!(
        c.active_healthy.load(Ordering::Relaxed),
        "state is fresh after being dropped"
    );
}

#[test]
fn zero_weight_endpoints_get_no_traffic() {
    let e = vec![
        Arc::new(EndpointState::new(
            "10.0.0.1:1".parse().expect("a"),
            "h".into(),
            0,
        )),
        Arc::new(EndpointState::new(
            "10.0.0.2:1".parse().expect("a"),
            "h".into(),
            1,
        )),
    ];
    let live = e[1].addr;
    for lb in [
        LbMode::RoundRobin,
        LbMode::Random,
        LbMode::LeastRequest,
        LbMode::ConsistentHash(HashOn::SourceIp),
    ] {
        let b = backend(lb.clone(), e.clone());
        for i in 0..50u64 {
            assert_eq!(
                b.select(Some(fnv1a(&i.to_le_bytes())), None)
                    .expect("ep")
                    .addr,
                live,
                "{lb:?}"
            );
        }
    }
}

#[test]
fn consistent_hash_retry_falls_back_to_the_failed_endpoint_if_alone_healthy() {
    let b = backend(LbMode::ConsistentHash(HashOn::SourceIp), eps(2));
    b.endpoints[1]
        .active_healthy
        .store(false, Ordering::Relaxed);
    let only = b.endpoints[0].addr;
    assert_eq!(
        b.select(Some(42), Some(&only)).expect("fallback").addr,
        only
    );
}
