//! Endpoint choice: weighted round robin, random, power-of-two-choices least request, and a
//! consistent-hash ring (stable across processes, so every replica agrees).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::Rng;

use super::EndpointState;

/// How a backend spreads requests over its endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LbMode {
    #[default]
    RoundRobin,
    LeastRequest,
    Random,
    ConsistentHash(HashOn),
}

/// The request attribute a consistent hash is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOn {
    Header(http::HeaderName),
    Cookie(String),
    SourceIp,
    /// The protocol's conversation key (an A2A context or task id), when the request has one.
    Protocol,
}

/// 64-bit FNV-1a: a fixed hash, identical in every process (unlike `std`'s `DefaultHasher`).
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // Final avalanche so nearby inputs spread over the ring.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Endpoint indexes repeated by weight (weights above 100 are scaled to keep it small).
pub fn schedule(endpoints: &[Arc<EndpointState>]) -> Vec<usize> {
    let max = endpoints.iter().map(|e| e.weight).max().unwrap_or(1).max(1);
    let scale = if max > 100 {
        f64::from(max) / 100.0
    } else {
        1.0
    };
    let mut out = Vec::new();
    for (i, e) in endpoints.iter().enumerate() {
        let w = ((f64::from(e.weight) / scale).round() as usize).max(usize::from(e.weight > 0));
        out.extend(std::iter::repeat_n(i, w));
    }
    out
}

fn usable(
    e: &EndpointState,
    ok: &impl Fn(&EndpointState) -> bool,
    exclude: Option<&SocketAddr>,
) -> bool {
    ok(e) && exclude != Some(&e.addr)
}

/// Round robin over the weighted schedule from `start`, skipping unhealthy endpoints; the
/// excluded endpoint is used only when nothing else is healthy.
pub fn round_robin(
    start: usize,
    schedule: &[usize],
    eps: &[Arc<EndpointState>],
    ok: impl Fn(&EndpointState) -> bool,
    exclude: Option<&SocketAddr>,
) -> Option<usize> {
    let n = schedule.len();
    if n == 0 {
        return None;
    }
    (0..n)
        .map(|k| schedule[(start + k) % n])
        .find(|&i| usable(&eps[i], &ok, exclude))
        .or_else(|| {
            (0..n)
                .map(|k| schedule[(start + k) % n])
                .find(|&i| ok(&eps[i]))
        })
}

/// A weighted random healthy endpoint.
pub fn random_pick(
    schedule: &[usize],
    eps: &[Arc<EndpointState>],
    ok: impl Fn(&EndpointState) -> bool,
    exclude: Option<&SocketAddr>,
) -> Option<usize> {
    if schedule.is_empty() {
        return None;
    }
    let start = rand::rng().random_range(0..schedule.len());
    round_robin(start, schedule, eps, ok, exclude)
}

/// Power of two choices: two random healthy endpoints, the one with fewer requests in flight.
pub fn p2c(
    eps: &[Arc<EndpointState>],
    ok: impl Fn(&EndpointState) -> bool,
    exclude: Option<&SocketAddr>,
) -> Option<usize> {
    let healthy: Vec<usize> = (0..eps.len())
        .filter(|&i| eps[i].weight > 0 && usable(&eps[i], &ok, exclude))
        .collect();
    let healthy = if healthy.is_empty() {
        (0..eps.len())
            .filter(|&i| eps[i].weight > 0 && ok(&eps[i]))
            .collect()
    } else {
        healthy
    };
    match healthy.len() {
        0 => None,
        1 => Some(healthy[0]),
        n => {
            let mut rng = rand::rng();
            let a = healthy[rng.random_range(0..n)];
            let mut b = healthy[rng.random_range(0..n - 1)];
            if b == a {
                b = healthy[n - 1];
            }
            let load = |i: usize| eps[i].inflight.load(Ordering::Relaxed);
            Some(if load(b) < load(a) { b } else { a })
        }
    }
}

/// A ring of virtual nodes (160 per unit of weight, capped) over the endpoints.
#[derive(Debug)]
pub struct HashRing {
    points: Vec<(u64, usize)>,
}

impl HashRing {
    pub fn new(eps: &[Arc<EndpointState>]) -> Self {
        let mut points = Vec::new();
        for (i, e) in eps.iter().enumerate().filter(|(_, e)| e.weight > 0) {
            let vnodes = 160 * e.weight.min(16) as usize;
            for v in 0..vnodes {
                points.push((fnv1a(format!("{}#{v}", e.addr).as_bytes()), i));
            }
        }
        points.sort_unstable();
        Self { points }
    }

    /// The first endpoint clockwise from `hash` that `ok` accepts.
    pub fn lookup(&self, hash: u64, ok: impl Fn(usize) -> bool) -> Option<usize> {
        if self.points.is_empty() {
            return None;
        }
        let start = self.points.partition_point(|(h, _)| *h < hash);
        let n = self.points.len();
        (0..n)
            .map(|k| self.points[(start + k) % n].1)
            .find(|&i| ok(i))
    }
}
