//! Backends at runtime: endpoint sets with health state and the load-balancing choice.
//! Health state lives in [`EndpointState`], shared across config reloads through
//! [`StateRegistry`] so a reload neither forgets an ejection nor resets counters.

mod lb;

pub use lb::{HashOn, HashRing, LbMode, fnv1a};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One upstream address and its health.
#[derive(Debug)]
pub struct EndpointState {
    pub addr: SocketAddr,
    /// The host name it was configured with (used for SNI and the Host of health checks).
    pub host: String,
    pub weight: u32,
    /// Requests in flight (least-request balancing).
    pub inflight: AtomicU32,
    consecutive_failures: AtomicU32,
    ejections: AtomicU32,
    ejected_until_ms: AtomicU64,
    /// Active health check verdict; endpoints start healthy.
    pub active_healthy: AtomicBool,
    pub active_failures: AtomicU32,
    pub active_successes: AtomicU32,
}

impl EndpointState {
    pub fn new(addr: SocketAddr, host: String, weight: u32) -> Self {
        Self {
            addr,
            host,
            weight,
            inflight: AtomicU32::new(0),
            consecutive_failures: AtomicU32::new(0),
            ejections: AtomicU32::new(0),
            ejected_until_ms: AtomicU64::new(0),
            active_healthy: AtomicBool::new(true),
            active_failures: AtomicU32::new(0),
            active_successes: AtomicU32::new(0),
        }
    }

    /// Whether the endpoint may take traffic at `now_ms` (unix millis).
    pub fn is_healthy(&self, now_ms: u64) -> bool {
        self.active_healthy.load(Ordering::Relaxed)
            && self.ejected_until_ms.load(Ordering::Relaxed) <= now_ms
    }

    /// Records the outcome of a request for passive health checking: `threshold`
    /// consecutive failures eject the endpoint for `base × ejections so far` (capped at 10×).
    pub fn record(&self, success: bool, passive: Option<&PassiveCheck>) {
        let Some(p) = passive else { return };
        if success {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            return;
        }
        let n = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= p.consecutive_failures {
            self.consecutive_failures.store(0, Ordering::Relaxed);
            let k = (self.ejections.fetch_add(1, Ordering::Relaxed) + 1).min(10);
            let until = now_ms() + (p.base_ejection.as_millis() as u64) * u64::from(k);
            self.ejected_until_ms.store(until, Ordering::Relaxed);
            tracing::warn!(endpoint = %self.addr, failures = n, "endpoint ejected by passive health check");
        }
    }

    /// Whether the endpoint is currently ejected by passive checks (for admin and tests).
    pub fn is_ejected(&self) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms()
    }
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Passive health check (outlier detection) settings.
#[derive(Debug, Clone)]
pub struct PassiveCheck {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
}

/// Active health check settings.
#[derive(Debug, Clone)]
pub struct ActiveCheck {
    pub path: String,
    pub host: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub unhealthy_threshold: u32,
    pub healthy_threshold: u32,
    pub expected: Vec<u16>,
}

impl ActiveCheck {
    /// Whether a probe's status counts as healthy.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expected.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expected.contains(&status)
        }
    }
}

/// Upstream TLS, already parsed into what Pingora's connector takes.
#[derive(Clone)]
pub struct UpstreamTls {
    pub sni: Option<String>,
    pub ca: Option<Arc<pingora::protocols::tls::CaType>>,
    pub client_cert: Option<Arc<pingora::utils::tls::CertKey>>,
    pub verify: bool,
    pub http2: bool,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("sni", &self.sni)
            .field("custom_ca", &self.ca.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("verify", &self.verify)
            .finish()
    }
}

/// A backend ready to serve: endpoints, balancing, health and connection settings.
#[derive(Debug)]
pub struct BackendIr {
    pub key: String,
    /// Short name for metrics and logs (the key without its `backend/` prefix).
    pub name: String,
    pub endpoints: Vec<Arc<EndpointState>>,
    pub lb: LbMode,
    /// Weighted schedule of endpoint indexes (round robin and random).
    schedule: Vec<usize>,
    ring: Option<HashRing>,
    rr: AtomicUsize,
    pub passive: Option<PassiveCheck>,
    pub active: Option<ActiveCheck>,
    pub tls: Option<UpstreamTls>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub h2c: bool,
    /// LLM providers, for AI backends (endpoints are then the providers').
    pub ai: Option<Arc<crate::llm::AiIr>>,
    /// An A2A agent.
    pub a2a: bool,
    /// A virtual MCP server (answered by the proxy; no endpoints).
    pub mcp: Option<Arc<crate::mcp::McpIr>>,
    /// MCP passthrough: sessions sealed with the endpoint that issued them.
    pub mcp_passthrough: bool,
    /// An InferencePool: its endpoint picker chooses the endpoint of each request.
    pub inference: Option<Arc<crate::inference::PickerIr>>,
}

/// Everything of a backend except its endpoints (built from the proto resource).
#[derive(Debug, Default)]
pub struct BackendSettings {
    pub lb: LbMode,
    pub passive: Option<PassiveCheck>,
    pub active: Option<ActiveCheck>,
    pub tls: Option<UpstreamTls>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub h2c: bool,
    pub ai: Option<Arc<crate::llm::AiIr>>,
    pub a2a: bool,
    pub mcp: Option<Arc<crate::mcp::McpIr>>,
    pub mcp_passthrough: bool,
    pub inference: Option<Arc<crate::inference::PickerIr>>,
}

impl BackendIr {
    pub fn new(key: String, endpoints: Vec<Arc<EndpointState>>, s: BackendSettings) -> Self {
        let schedule = lb::schedule(&endpoints);
        let ring = matches!(s.lb, LbMode::ConsistentHash(_)).then(|| HashRing::new(&endpoints));
        let name = key.strip_prefix("backend/").unwrap_or(&key).to_string();
        Self {
            key,
            name,
            endpoints,
            lb: s.lb,
            schedule,
            ring,
            rr: AtomicUsize::new(0),
            passive: s.passive,
            active: s.active,
            tls: s.tls,
            connect_timeout: s.connect_timeout,
            idle_timeout: s.idle_timeout,
            h2c: s.h2c,
            ai: s.ai,
            a2a: s.a2a,
            mcp: s.mcp,
            mcp_passthrough: s.mcp_passthrough,
            inference: s.inference,
        }
    }

    /// Chooses a healthy endpoint. `hash` is the consistent-hash key of the request (when
    /// the backend hashes and the request carries the key); `exclude` is an endpoint to avoid
    /// if any other is healthy (the one a retry just failed on).
    /// The endpoint at `addr`, if this backend has it and it is healthy (a pinned session).
    pub fn endpoint(&self, addr: SocketAddr) -> Option<Arc<EndpointState>> {
        let now = now_ms();
        self.endpoints
            .iter()
            .find(|e| e.addr == addr && e.is_healthy(now))
            .cloned()
    }

    pub fn select(
        &self,
        hash: Option<u64>,
        exclude: Option<&SocketAddr>,
    ) -> Option<Arc<EndpointState>> {
        let now = now_ms();
        let ok = |e: &EndpointState| e.is_healthy(now);
        let idx = match (&self.lb, &self.ring, hash) {
            (LbMode::ConsistentHash(_), Some(ring), Some(h)) => ring
                .lookup(h, |i| {
                    ok(&self.endpoints[i]) && exclude != Some(&self.endpoints[i].addr)
                })
                .or_else(|| ring.lookup(h, |i| ok(&self.endpoints[i]))),
            (LbMode::LeastRequest, _, _) => lb::p2c(&self.endpoints, ok, exclude),
            (LbMode::Random, _, _) => lb::random_pick(&self.schedule, &self.endpoints, ok, exclude),
            _ => {
                let start = self.rr.fetch_add(1, Ordering::Relaxed);
                lb::round_robin(start, &self.schedule, &self.endpoints, ok, exclude)
            }
        }?;
        Some(self.endpoints[idx].clone())
    }
}

/// Keeps endpoint health state alive across config reloads, keyed by backend and address.
#[derive(Debug, Default)]
pub struct StateRegistry {
    states: Mutex<HashMap<(String, SocketAddr), Arc<EndpointState>>>,
}

impl StateRegistry {
    /// The state for (backend, addr), created if new.
    pub fn get(
        &self,
        backend: &str,
        addr: SocketAddr,
        host: &str,
        weight: u32,
    ) -> Arc<EndpointState> {
        let mut m = self.states.lock().unwrap_or_else(|e| e.into_inner());
        let e = m
            .entry((backend.to_string(), addr))
            .or_insert_with(|| Arc::new(EndpointState::new(addr, host.to_string(), weight)));
        if e.weight != weight || e.host != host {
            *e = Arc::new(EndpointState::new(addr, host.to_string(), weight));
        }
        e.clone()
    }

    /// Drops states no longer referenced by any config.
    pub fn retain_used(&self) {
        let mut m = self.states.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, v| Arc::strong_count(v) > 1);
    }
}

#[cfg(test)]
mod tests;

/// The consistent-hash key of a request, if it carries the configured attribute.
pub fn hash_key(
    on: &HashOn,
    req: &http::request::Parts,
    client: Option<std::net::IpAddr>,
) -> Option<u64> {
    match on {
        HashOn::Header(name) => req.headers.get(name).map(|v| fnv1a(v.as_bytes())),
        HashOn::Cookie(name) => req
            .headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| fnv1a(v.as_bytes()))
            }),
        HashOn::SourceIp => client.map(|ip| fnv1a(ip.to_string().as_bytes())),
        HashOn::Protocol => None,
    }
}
