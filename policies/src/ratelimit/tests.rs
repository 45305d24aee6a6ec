use super::*;

fn spec(kind: pb::RateLimitKind, limit: u64, secs: u64, burst: u64) -> LimitSpec {
    LimitSpec::compile(&pb::RateLimit {
        kind: kind as i32,
        limit,
        window: Some(Duration::from_secs(secs).into()),
        burst,
        descriptors: vec![],
    })
    .expect("compiles")
}

#[test]
fn request_bucket_refills_at_the_rate() {
    let l = LocalLimit::new(spec(pb::RateLimitKind::Requests, 60, 60, 0));
    let t0 = Instant::now();
    for i in 0..60 {
        assert!(l.acquire("", 1, t0).is_ok(), "request {i}");
    }
    let wait = l.acquire("", 1, t0).expect_err("61st refused");
    assert!((wait.as_secs_f64() - 1.0).abs() < 0.01, "{wait:?}");
    // One request per second comes back.
    assert!(l.acquire("", 1, t0 + Duration::from_millis(1000)).is_ok());
    assert!(l.acquire("", 1, t0 + Duration::from_millis(1000)).is_err());
    // Never more than the bucket holds, however long it waited.
    let later = t0 + Duration::from_secs(3600);
    for _ in 0..60 {
        assert!(l.acquire("", 1, later).is_ok());
    }
    assert!(l.acquire("", 1, later).is_err());
}

#[test]
fn burst_and_separate_keys() {
    let l = LocalLimit::new(spec(pb::RateLimitKind::Requests, 10, 1, 2));
    let t0 = Instant::now();
    assert!(l.acquire("a", 1, t0).is_ok());
    assert!(l.acquire("a", 1, t0).is_ok());
    assert!(l.acquire("a", 1, t0).is_err());
    assert!(l.acquire("b", 1, t0).is_ok());
    assert!(l.acquire("a", 1, t0 + Duration::from_millis(100)).is_ok());
}

#[test]
fn tokens_estimate_then_settle() {
    let l = LocalLimit::new(spec(pb::RateLimitKind::Tokens, 1000, 60, 0));
    let t0 = Instant::now();
    // Estimated 300 input tokens; the real usage was 900.
    let a = l.acquire("", 300, t0).expect("admitted");
    assert_eq!(a.remaining, 700);
    l.settle("", 600, t0);
    assert!(l.acquire("", 200, t0).is_err(), "only 100 left");
    assert!(l.acquire("", 100, t0).is_ok());
    // Overdrawn buckets stay refused until refilled past zero.
    l.settle("", 500, t0);
    let wait = l.acquire("", 1, t0).expect_err("overdrawn");
    assert!(wait > Duration::from_secs(29), "{wait:?}");
    // A refund gives tokens back.
    l.settle("", -1000, t0);
    assert!(l.acquire("", 400, t0).is_ok());
    // A prompt larger than the bucket is admitted from a full bucket.
    let big = LocalLimit::new(spec(pb::RateLimitKind::Tokens, 100, 60, 0));
    assert!(big.acquire("", 5000, t0).is_ok());
    assert!(big.acquire("", 1, t0).is_err());
}

#[test]
fn registry_keeps_buckets_across_reloads() {
    let s = spec(pb::RateLimitKind::Requests, 1, 60, 0);
    let a = local_limit("policy/x#0", s.clone());
    assert!(a.acquire("", 1, Instant::now()).is_ok());
    let b = local_limit("policy/x#0", s.clone());
    assert!(Arc::ptr_eq(&a, &b));
    assert!(b.acquire("", 1, Instant::now()).is_err());
    let other = local_limit("policy/y#0", s);
    assert!(!Arc::ptr_eq(&a, &other));
}
