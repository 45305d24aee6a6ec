//! The per-request context: one sub-struct per concern, plus the end-of-request observation
//! (metrics and access log).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use pingora::proxy::Session;

use super::Gateway;
use super::upstream::UpstreamCtx;
use crate::access_log;
use crate::body::{BodyCtx, SubrequestInfo};
use crate::error::Error;
use crate::ir::{ListenerIr, RuleIr};
use crate::llm::LlmCtx;
use crate::mirror::MirrorCtx;
use crate::routing::ProxyPlan;

/// State of one request across Pingora's phases.
pub struct RequestCtx {
    pub start: Instant,
    pub route: RouteCtx,
    pub upstream: UpstreamCtx,
    pub body: BodyCtx,
    pub mirror: MirrorCtx,
    pub llm: LlmSlot,
    pub policy: crate::policy::PolicyCtx,
    pub a2a: super::a2a::A2aCtx,
    pub mcp: super::mcp::McpCtx,
    /// An InferencePool's endpoint choice.
    pub inference: super::inference::InferenceCtx,
    pub outcome: Outcome,
    /// Released when the request ends (dropped with the context).
    pub inflight: Option<crate::server::InflightGuard>,
}

/// LLM state: the client API is known from the path before the body is read (so early errors
/// already take the client's format); the rest once the body is in.
#[derive(Default)]
pub struct LlmSlot {
    pub api: Option<agora_providers::ClientApi>,
    pub state: Option<Box<LlmCtx>>,
    /// Cloud credentials (GCP token, AWS keys) of the current attempt's provider.
    pub cloud: Option<crate::llm::CloudCredentials>,
}

/// Routing results.
#[derive(Default)]
pub struct RouteCtx {
    pub gateway: Arc<str>,
    pub tls: bool,
    pub listener: Option<Arc<ListenerIr>>,
    pub plan: Option<Arc<ProxyPlan>>,
    /// The matched rule (also for redirects and direct responses).
    pub rule: Option<Arc<RuleIr>>,
    /// This request is a replay subrequest; its parent did routing and body checks.
    pub from_subrequest: bool,
    /// The client address (carried over into replay subrequests).
    pub client: Option<SocketAddr>,
}

/// How the request ended.
#[derive(Default)]
pub struct Outcome {
    pub error: Option<Error>,
    pub status: u16,
    /// A replay subrequest served this request and logs it; the parent stays quiet.
    pub delegated: bool,
}

impl RouteCtx {
    /// The matched route's name ("" before routing, or when nothing matched).
    pub fn route_name(&self) -> &str {
        self.rule.as_ref().map_or("", |r| r.route_name.as_str())
    }

    /// The chosen backend's name ("" when the request was not proxied).
    pub fn backend_name(&self) -> &str {
        self.plan.as_ref().map_or("", |p| p.backend.name.as_str())
    }
}

impl RequestCtx {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            route: RouteCtx::default(),
            upstream: UpstreamCtx::default(),
            body: BodyCtx::default(),
            mirror: MirrorCtx::default(),
            llm: LlmSlot::default(),
            policy: Default::default(),
            a2a: Default::default(),
            mcp: Default::default(),
            inference: Default::default(),
            outcome: Outcome::default(),
            inflight: None,
        }
    }

    /// Takes over the parent's routing decision in a replay subrequest.
    pub fn adopt(&mut self, info: &SubrequestInfo) {
        self.start = info.start;
        self.route.gateway = info.gateway.clone();
        self.route.listener = Some(info.plan.listener.clone());
        self.route.plan = Some(info.plan.clone());
        self.route.rule = Some(info.plan.matched.rule.clone());
        self.route.from_subrequest = true;
        self.route.client = info.client;
        self.upstream.deadline = info.deadline;
        self.upstream.retry = info.plan.rule().retry.clone();
        self.body.limit = info.limit;
        if let Some(p) = info.policy.lock().ok().and_then(|mut p| p.take()) {
            self.policy = p;
        }
        self.inference = info.inference.clone();
        if let Some((api, body)) = &info.llm {
            self.llm.api = Some(*api);
            // The subrequest carries no body; mirrors take the client's from here.
            self.body.buffered = Some(body.clone());
            // The parent's LLM state (model, chosen targets, response guard) carries over.
            self.llm.state = info.llm_state.lock().ok().and_then(|mut s| s.take());
        }
    }
}

impl Default for RequestCtx {
    fn default() -> Self {
        Self::new()
    }
}

/// Records metrics and writes the access log line for a finished request.
pub fn observe(
    gw: &Gateway,
    session: &Session,
    e: Option<&pingora::Error>,
    ctx: &RequestCtx,
    now: Instant,
) {
    let listener = ctx.route.listener.as_ref().map_or("", |l| l.name.as_str());
    let (route, backend) = (ctx.route.route_name(), ctx.route.backend_name());
    let req = session.req_header();
    let status = ctx.outcome.status;
    let status_str = status.to_string();
    let status_str = status_str.as_str();
    let method = req.method.as_str();
    let elapsed = now.duration_since(ctx.start);
    gw.metrics
        .requests
        .with_label_values(&[
            &*ctx.route.gateway,
            listener,
            route,
            backend,
            method,
            status_str,
        ])
        .inc();
    gw.metrics
        .duration
        .with_label_values(&[&*ctx.route.gateway, listener, route, backend, method])
        .observe(elapsed.as_secs_f64());
    if let Some(e @ Error::Policy(_)) = &ctx.outcome.error {
        gw.metrics
            .policy_denials
            .with_label_values(&[&*ctx.route.gateway, route, e.kind()])
            .inc();
    }
    if let Some(outcome) = ctx.policy.guard_outcome {
        gw.metrics
            .prompt_guard
            .with_label_values(&[&*ctx.route.gateway, route, "request", outcome])
            .inc();
    }
    let response_guard = ctx
        .llm
        .state
        .as_ref()
        .and_then(|l| l.response.guard_outcome);
    if let Some(outcome) = response_guard {
        let outcome = match outcome {
            crate::llm::guard::Outcome::Masked => "masked",
            crate::llm::guard::Outcome::Rejected => "rejected",
            crate::llm::guard::Outcome::Clean => "clean",
        };
        gw.metrics
            .prompt_guard
            .with_label_values(&[&*ctx.route.gateway, route, "response", outcome])
            .inc();
    }
    if gw.access_log {
        let host = crate::routing::hostname::request_host(req);
        let client = ctx
            .route
            .client
            .or_else(|| session.client_addr().and_then(|a| a.as_inet()).copied());
        let llm = ctx.llm.state.as_deref();
        access_log::write(&access_log::Record {
            ts: access_log::timestamp(),
            gateway: &ctx.route.gateway,
            listener,
            route,
            backend,
            endpoint: ctx.upstream.endpoint.as_ref().map(|e| e.addr.to_string()),
            client: client.map(|c| c.to_string()),
            method,
            host: &host,
            path: req.uri.path(),
            protocol: if session.is_http2() {
                "HTTP/2"
            } else {
                "HTTP/1.1"
            },
            status,
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            attempts: ctx.upstream.attempt,
            provider: llm
                .and_then(|l| l.provider.as_ref())
                .map(|p| p.name.as_str()),
            request_model: llm.and_then(|l| l.request_model.as_deref()),
            model: llm.and_then(|l| l.upstream_model.as_deref()),
            error: ctx
                .outcome
                .error
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| e.map(|e| e.to_string())),
        });
    }
}
