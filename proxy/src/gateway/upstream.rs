//! Endpoint choice per attempt, retry decisions, timeouts and passive health bookkeeping.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pingora::prelude::HttpPeer;
use pingora::protocols::ALPN;
use pingora::proxy::Session;

use super::RequestCtx;
use crate::backend::{self, EndpointState};
use crate::error::Error;
use crate::ir::RetryIr;
use crate::routing::ProxyPlan;

/// Upstream state of one request.
#[derive(Default)]
pub struct UpstreamCtx {
    /// Attempts made so far (1 after the first `upstream_peer`).
    pub attempt: u32,
    pub endpoint: Option<Arc<EndpointState>>,
    last_failed: Option<SocketAddr>,
    pub deadline: Option<Instant>,
    pub retry: Option<RetryIr>,
    pub connect_started: Option<Instant>,
    inflight: bool,
    endpoints_total: usize,
}

impl UpstreamCtx {
    /// Gives back the in-flight slot of the current endpoint.
    pub fn release(&mut self) {
        if self.inflight {
            if let Some(e) = &self.endpoint {
                e.inflight.fetch_sub(1, Ordering::Relaxed);
            }
            self.inflight = false;
        }
    }
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The peer for the next attempt. Sleeps for the retry backoff first (doubling per attempt);
/// fails with 504 once the request deadline has passed and 503 when no endpoint is healthy.
pub async fn peer(
    plan: &ProxyPlan,
    ctx: &mut RequestCtx,
    session: &Session,
) -> Result<Box<HttpPeer>, Error> {
    let pin = super::mcp::peer_pin(ctx).or_else(|| super::inference::peer_pin(ctx));
    let up = &mut ctx.upstream;
    up.release();
    if up.attempt > 0
        && let Some(r) = &up.retry
    {
        let backoff = r
            .backoff
            .saturating_mul(1 << (up.attempt - 1).min(6))
            .min(Duration::from_secs(10));
        tokio::time::sleep(backoff).await;
    }
    up.attempt += 1;
    let remaining = match up.deadline {
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::UpstreamTimeout(
                    plan.rule().request_timeout.unwrap_or_default(),
                ));
            }
            Some(left)
        }
        None => None,
    };
    let b = &plan.backend;
    let hash = match &b.lb {
        backend::LbMode::ConsistentHash(_) if ctx.a2a.sticky_hash().is_some() => {
            ctx.a2a.sticky_hash()
        }
        backend::LbMode::ConsistentHash(on) => backend::hash_key(
            on,
            session.req_header(),
            ctx.route
                .client
                .or_else(|| session.client_addr().and_then(|a| a.as_inet()).copied())
                .map(|a| a.ip()),
        ),
        _ => None,
    };
    let up = &mut ctx.upstream;
    let pinned = pin
        .filter(|a| up.last_failed.as_ref() != Some(a))
        .and_then(|a| b.endpoint(a));
    let ep = pinned
        .or_else(|| b.select(hash, up.last_failed.as_ref()))
        .ok_or_else(|| Error::NoHealthyEndpoint(b.name.clone()))?;
    ep.inflight.fetch_add(1, Ordering::Relaxed);
    up.inflight = true;
    up.endpoints_total = b.endpoints.len();
    up.endpoint = Some(ep.clone());
    up.connect_started = Some(Instant::now());

    let tls = b.tls.as_ref();
    let sni = tls
        .and_then(|t| t.sni.clone())
        .unwrap_or_else(|| ep.host.clone());
    let mut p = HttpPeer::new(ep.addr, tls.is_some(), sni);
    let o = &mut p.options;
    o.connection_timeout = Some(b.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT));
    o.idle_timeout = Some(b.idle_timeout.unwrap_or(DEFAULT_IDLE_TIMEOUT));
    let per_try = match (plan.rule().backend_timeout, remaining) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    o.read_timeout = per_try;
    o.write_timeout = per_try;
    if let Some(t) = tls {
        o.verify_cert = t.verify;
        o.verify_hostname = t.verify;
        o.ca = t.ca.clone();
        p.client_cert_key = t.client_cert.clone();
        if t.http2 {
            p.options.alpn = ALPN::H2H1;
        }
    } else if b.h2c {
        p.options.alpn = ALPN::H2;
    }
    Ok(Box::new(p))
}

/// Passive health from a response status: 5xx counts as a failure.
pub fn record_response(ctx: &mut RequestCtx, status: u16) {
    record(ctx, status < 500);
}

/// A failed connect or exchange with the current endpoint.
pub fn record_failure(ctx: &mut RequestCtx) {
    record(ctx, false);
}

/// Passive health bookkeeping for the current endpoint; a failure also makes the next
/// attempt avoid it.
fn record(ctx: &mut RequestCtx, success: bool) {
    let passive = ctx
        .route
        .plan
        .as_ref()
        .and_then(|p| p.backend.passive.as_ref());
    if let Some(ep) = &ctx.upstream.endpoint {
        ep.record(success, passive);
        if !success {
            ctx.upstream.last_failed = Some(ep.addr);
        }
    }
}

/// Whether another attempt is allowed: the route's `retry.attempts` extra attempts, or
/// without a retry policy one more try on another endpoint; never past the deadline.
pub fn may_retry(ctx: &RequestCtx) -> bool {
    let up = &ctx.upstream;
    let max = match &up.retry {
        Some(r) => 1 + r.attempts,
        None if up.endpoints_total > 1 => 2,
        None => 1,
    };
    up.attempt < max && up.deadline.is_none_or(|d| Instant::now() < d)
}

/// Whether this response status should be retried under the route's policy.
pub fn retry_on_status(ctx: &RequestCtx, status: u16) -> bool {
    ctx.upstream
        .retry
        .as_ref()
        .is_some_and(|r| r.codes.contains(&status))
        && may_retry(ctx)
}
