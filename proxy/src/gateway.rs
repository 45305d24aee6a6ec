//! The Pingora adapter: each `ProxyHttp` phase is a thin delegation to a module that knows
//! nothing of Pingora (routing, filters, backend) plus the small glue in `gateway/`.

mod a2a;
mod ctx;
mod headers;
mod inference;
mod llm;
mod mcp;
mod policy;
mod respond;
mod upstream;

pub use ctx::RequestCtx;
pub use inference::InferenceCtx;

use self::llm as llm_glue;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error as PError, ErrorType};

use crate::body::{self, ReadError, SubrequestInfo};
use crate::error::Error;
use crate::ir::FilterIr;
use crate::llm::LlmCtx;
use crate::metrics::Metrics;
use crate::mirror::Mirror;
use crate::routing::{self, Arrival, Decision};
use crate::store::Store;
use agora_providers::ClientApi;

/// The gateway's `ProxyHttp` implementation.
pub struct Gateway {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub mirror: Arc<Mirror>,
    pub access_log: bool,
    /// Requests in flight (graceful shutdown waits for them).
    pub inflight: Arc<crate::server::Inflight>,
}

impl Gateway {
    /// Records `e` as the request's outcome and turns it into a Pingora error carrying its
    /// status; `fail_to_proxy` then writes the JSON body.
    fn fail(ctx: &mut RequestCtx, e: Error) -> Box<PError> {
        let status = e.status();
        let msg = e.to_string();
        ctx.outcome.error = Some(e);
        PError::explain(ErrorType::HTTPStatus(status), msg)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        let mut ctx = RequestCtx::new();
        ctx.inflight = Some(self.inflight.enter());
        ctx
    }

    /// No downstream modules: Pingora's default adds a (disabled) response compression
    /// module that every request would pass through for nothing.
    fn init_downstream_modules(&self, _modules: &mut pingora::modules::http::HttpModules) {}

    fn allow_spawning_subrequest(&self, _session: &Session, _ctx: &RequestCtx) -> bool {
        true
    }

    /// Runs first for every request: routes it, answers redirects and direct responses,
    /// enforces the body limit and buffers the body when the route asks for it. `Ok(true)`
    /// means the response has been written here.
    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        if let Some(info) = body::subrequest_info(session) {
            ctx.adopt(info);
            if info.llm.is_none() {
                let len = info.body_len;
                headers::set_body_length(session.req_header_mut(), len)?;
                session.enable_retry_buffering();
            }
            return Ok(false);
        }
        let ir = self.store.load();
        let port = session
            .server_addr()
            .and_then(|a| a.as_inet())
            .map_or(0, |a| a.port());
        let tls = ir.binds.get(&port).is_some_and(|b| b.tls);
        ctx.route.gateway = ir.gateway.clone();
        ctx.route.tls = tls;
        if session
            .req_header()
            .uri
            .path()
            .starts_with(policy::WELL_KNOWN_RESOURCE)
            && let Some(meta) = mcp::resource_metadata(session, &ir, port, tls)
        {
            return mcp::write_json(session, ctx, 200, &meta, None).await;
        }
        let arrival = Arrival {
            port,
            tls,
            req: session.req_header(),
        };
        let (decision, listener) = match routing::decide(&ir, arrival, rand::random()) {
            Ok(d) => d,
            Err(e) => return Err(Self::fail(ctx, e)),
        };
        ctx.route.listener = listener;
        let decision_rule = decision.rule().clone();
        ctx.route.rule = Some(decision_rule.clone());
        let mut body_follows = crate::policy::BodyFollows::No;
        let policies = match &decision {
            Decision::Proxy(plan) => {
                if plan.backend.ai.is_some() {
                    body_follows = crate::policy::BodyFollows::Llm;
                } else if plan.backend.a2a || plan.backend.mcp.is_some() {
                    body_follows = crate::policy::BodyFollows::JsonRpc;
                }
                // Known before any refusal, so every error is a JSON-RPC error.
                ctx.a2a.active = plan.backend.a2a;
                ctx.mcp.jsonrpc = plan.backend.mcp.is_some() || plan.backend.mcp_passthrough;
                if plan.backend.ai.is_some() {
                    // Known before any error, so every error takes the client's format.
                    // Paths that are not an LLM API pass through to the provider untouched.
                    let req = session.req_header();
                    let api =
                        ClientApi::from_path(req.uri.path()).unwrap_or(ClientApi::Passthrough);
                    // Only a POST creates a response; other methods on `/responses` pass.
                    let creates = api != ClientApi::Responses || req.method == http::Method::POST;
                    ctx.llm.api = Some(if creates { api } else { ClientApi::Passthrough });
                }
                plan.rule().backends[plan.backend_index].policies.clone()
            }
            _ => decision_rule.policies.clone(),
        };
        match policy::admit(session, ctx, &policies, body_follows).await {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => return Err(Self::fail(ctx, e)),
        }
        match decision {
            Decision::Redirect {
                status, location, ..
            } => {
                respond::redirect(session, &decision_rule, status, &location).await?;
                ctx.outcome.status = status;
                Ok(true)
            }
            Decision::Direct {
                status,
                body,
                content_type,
                ..
            } => {
                respond::direct(
                    session,
                    &decision_rule,
                    status,
                    body,
                    content_type.as_deref(),
                )
                .await?;
                ctx.outcome.status = status;
                Ok(true)
            }
            Decision::Proxy(plan) => {
                let rule = plan.rule();
                ctx.upstream.deadline = rule.request_timeout.map(|t| ctx.start + t);
                ctx.upstream.retry = rule.retry.clone();
                ctx.body.limit = rule.max_body;
                let buffer = rule.buffer_body;
                let limit = rule.max_body;
                if let Some(ir) = plan.backend.mcp.clone() {
                    let scope = plan.backend.key.clone();
                    ctx.route.plan = Some(plan);
                    return mcp::serve(session, ctx, ir, &scope, &self.metrics).await;
                }
                if plan.backend.mcp_passthrough
                    && let Err(body) = mcp::passthrough_request(session, ctx, &plan.backend.key)
                {
                    ctx.route.plan = Some(plan);
                    return mcp::write_json(session, ctx, 404, &body, None).await;
                }
                let ai = plan.backend.ai.clone();
                let picker = plan.backend.inference.clone();
                if picker.is_some() {
                    inference::begin(ctx, session.req_header().uri.path());
                }
                let is_a2a = plan.backend.a2a;
                let declared = body::content_length(session.req_header());
                let retry = rule.retry.is_some();
                ctx.route.plan = Some(plan);
                if declared.is_some_and(|len| len > limit) {
                    return Err(Self::fail(ctx, Error::BodyTooLarge { limit }));
                }
                if retry {
                    session.enable_retry_buffering();
                }
                let rpc = is_a2a && a2a::request(session, ctx);
                if is_a2a
                    && !rpc
                    && let Err(e) = a2a::authorize_without_body(session, ctx)
                {
                    return Err(Self::fail(ctx, e));
                }
                if ai.is_none() && !buffer && !rpc && picker.is_none() {
                    return Ok(false);
                }
                let mut body = match body::read_all(session, limit).await {
                    Ok(b) => b,
                    Err(ReadError::Gateway(e)) => return Err(Self::fail(ctx, e)),
                    Err(ReadError::Downstream(e)) => return Err(e),
                };
                if let (Some(ai), Some(api)) = (&ai, ctx.llm.api) {
                    // Masking replaces the body for the provider, mirrors and replays alike.
                    body = match policy::guard_llm_body(ctx, body) {
                        Ok(b) => b,
                        Err(e) => return Err(Self::fail(ctx, e)),
                    };
                    if let Err(e) = policy::guard_webhooks(ctx, &body).await {
                        return Err(Self::fail(ctx, e));
                    }
                    let path = session.req_header().uri.path().to_string();
                    match LlmCtx::new(api, &path, body.clone(), ai) {
                        Ok(mut l) => {
                            l.response_guard = policy::response_guard(ctx);
                            ctx.llm.state = Some(Box::new(l));
                        }
                        Err(e) => return Err(Self::fail(ctx, e.into())),
                    }
                    llm_glue::match_targets(session, ctx, &body);
                    if let Err(e) = policy::admit_tokens(session, ctx, &body).await {
                        return Err(Self::fail(ctx, e));
                    }
                }
                if rpc && let Err(e) = a2a::classify(session, ctx, &body) {
                    return Err(Self::fail(ctx, e));
                }
                if let Some(p) = &picker {
                    match inference::pick(session, ctx, p, body, &self.metrics).await? {
                        Some(b) => body = b,
                        None => return Ok(true),
                    }
                }
                if body.len() < body::RETRY_BUFFER_LIMIT {
                    ctx.body.buffered = Some(body);
                    return Ok(false);
                }
                let info = SubrequestInfo {
                    plan: ctx
                        .route
                        .plan
                        .clone()
                        .ok_or_else(|| PError::explain(ErrorType::InternalError, "no plan"))?,
                    gateway: ctx.route.gateway.clone(),
                    body_len: body.len(),
                    start: ctx.start,
                    deadline: ctx.upstream.deadline,
                    client: session.client_addr().and_then(|a| a.as_inet()).copied(),
                    limit,
                    llm: ctx.llm.api.map(|api| (api, body.clone())),
                    llm_state: std::sync::Mutex::new(ctx.llm.state.take()),
                    policy: std::sync::Mutex::new(Some(std::mem::take(&mut ctx.policy))),
                    inference: inference::for_subrequest(ctx),
                };
                ctx.outcome.delegated = true;
                body::replay_via_subrequest(session, info, body).await?;
                Ok(true)
            }
        }
    }

    /// Picks the endpoint for this attempt (retries land here again).
    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        if let Some(ai) = llm_glue::ai(ctx) {
            return llm_glue::peer(&ai, ctx)
                .await
                .map_err(|e| Self::fail(ctx, e));
        }
        let plan = ctx.route.plan.clone().ok_or_else(|| {
            PError::explain(ErrorType::InternalError, "upstream_peer without a route")
        })?;
        match upstream::peer(&plan, ctx, session).await {
            Ok(p) => Ok(p),
            Err(e) => Err(Self::fail(ctx, e)),
        }
    }

    /// Counts streamed body bytes against the limit and feeds a mirror, if any.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(llm) = ctx.llm.state.as_mut() {
            // The whole body was read (and translated) up front: send this attempt's body.
            llm.fill_body(body);
            return Ok(());
        }
        if a2a::fill_body(ctx, body) || inference::fill_body(ctx, body) {
            return Ok(());
        }
        // A replay subrequest's body was already counted by its parent.
        if !ctx.route.from_subrequest
            && let Err(e) = ctx.body.account(body.as_ref())
        {
            return Err(Self::fail(ctx, e));
        }
        ctx.mirror.feed(body.as_ref(), end_of_stream);
        Ok(())
    }

    /// Applies request header modifiers and URL rewrites to the upstream request, and starts
    /// mirrors with the final headers.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        req: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let Some(plan) = ctx.route.plan.clone() else {
            return Ok(());
        };
        headers::apply_request_filters(&plan, req)?;
        policy::upstream_request(ctx, req)?;
        // Mirrors copy the client's request as the route filters shaped it, before any
        // provider credentials are added below.
        if ctx.upstream.attempt == 1 {
            for f in plan.filters() {
                if let FilterIr::Mirror { backend, fraction } = f {
                    let has_body = ctx.body.buffered.is_some() || headers::has_body(req);
                    self.mirror.start(
                        backend.clone(),
                        *fraction,
                        req,
                        ctx.body.buffered.clone(),
                        has_body,
                        &mut ctx.mirror,
                        &self.metrics,
                    );
                }
            }
            if !headers::has_body(session.req_header()) {
                ctx.mirror.feed(None, true);
            }
        }
        llm_glue::upstream_request(ctx, req)?;
        a2a::upstream_request(ctx, req)?;
        inference::upstream_request(ctx, req)?;
        mcp::passthrough_upstream(ctx, req)
    }

    /// Sees the upstream's response header first: passive health, retry on status codes.
    async fn upstream_response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let status = resp.status.as_u16();
        if let Some(ai) = llm_glue::ai(ctx) {
            let replayable = !session.as_ref().retry_buffer_truncated();
            if llm_glue::upstream_response(&ai, ctx, status, replayable) {
                let mut e = PError::explain(
                    ErrorType::HTTPStatus(status),
                    "failing over to the next provider",
                );
                e.set_retry(true);
                return Err(e);
            }
            return Ok(());
        }
        upstream::record_response(ctx, status);
        if upstream::retry_on_status(ctx, status) {
            let mut e = PError::explain(ErrorType::HTTPStatus(status), "retrying on status");
            e.set_retry(true);
            return Err(e);
        }
        Ok(())
    }

    /// Applies response header modifiers, and prepares LLM response translation.
    async fn response_filter(
        &self,
        session: &mut Session,
        resp: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.outcome.status = resp.status.as_u16();
        if let Some(plan) = &ctx.route.plan {
            headers::apply_response_filters(plan.filters(), resp);
        }
        policy::response_headers(ctx, resp);
        a2a::response_header(ctx, resp, session.is_http2())?;
        mcp::passthrough_response(ctx, resp)?;
        llm_glue::response_header(ctx, resp, session.is_http2())
    }

    /// Translates LLM response bodies (JSON at the end, SSE event by event) and reads usage.
    fn response_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Option<std::time::Duration>> {
        if let Some(llm) = ctx.llm.state.as_mut() {
            llm.response.on_body(body, end_of_stream);
        }
        a2a::response_body(ctx, body, end_of_stream);
        Ok(None)
    }

    /// Measures new upstream connections.
    async fn connected_to_upstream(
        &self,
        _session: &mut Session,
        reused: bool,
        _peer: &HttpPeer,
        #[cfg(unix)] _fd: std::os::unix::io::RawFd,
        _digest: Option<&pingora::protocols::Digest>,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let (false, Some(t), Some(plan)) =
            (reused, ctx.upstream.connect_started, &ctx.route.plan)
        {
            self.metrics
                .upstream_connect
                .with_label_values(&[plan.backend.name.as_str()])
                .observe(t.elapsed().as_secs_f64());
        }
        Ok(())
    }

    /// A connect failure: count it against the endpoint and decide whether to retry.
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<PError>,
    ) -> Box<PError> {
        if let Some(ai) = llm_glue::ai(ctx) {
            let retry = llm_glue::upstream_response(&ai, ctx, 503, true);
            e.set_retry(retry);
            return e;
        }
        upstream::record_failure(ctx);
        e.set_retry(upstream::may_retry(ctx));
        e
    }

    /// An error after connecting: retry only what the route allows and the body permits.
    fn error_while_proxy(
        &self,
        peer: &HttpPeer,
        session: &mut Session,
        e: Box<PError>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<PError> {
        let mut e = e.more_context(format!("peer: {peer}"));
        let status_retry = matches!(e.etype(), ErrorType::HTTPStatus(_)) && e.retry();
        if ctx.llm.state.is_some() {
            // Failover was decided in upstream_response_filter; other errors after
            // connecting (a reset mid-response) are not retried: output may have started.
            let replayable = !session.as_ref().retry_buffer_truncated();
            e.set_retry(status_retry && replayable);
            return e;
        }
        if !status_retry {
            upstream::record_failure(ctx);
        }
        if session.as_ref().retry_buffer_truncated() {
            e.set_retry(false);
        } else if status_retry || ctx.upstream.retry.is_some() {
            e.set_retry(upstream::may_retry(ctx));
        } else {
            // Without a retry policy, only a stale pooled connection is worth another try.
            e.retry.decide_reuse(client_reused);
        }
        e
    }

    /// Our own verdicts (404, 413, ...) are outcomes, not proxy errors worth an ERROR line.
    fn suppress_error_log(&self, _session: &Session, ctx: &RequestCtx, _e: &PError) -> bool {
        ctx.outcome.error.is_some()
    }

    /// Writes the error response in our JSON shape.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &PError,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = respond::error_status(e, ctx);
        // The connection stays usable for the gateway's own early verdicts (no upstream
        // attempt, request body fully read); after an upstream failure, or with an unread
        // body that would be parsed as the next request, it closes (and says so).
        let reusable = ctx.upstream.attempt == 0 && session.as_mut().is_body_done();
        if code > 0 && !ctx.outcome.delegated {
            let body = if ctx.a2a.active {
                a2a::error_body(ctx, ctx.outcome.error.as_ref(), code, e.etype().as_str())
            } else if ctx.mcp.jsonrpc {
                mcp::error_body(ctx.outcome.error.as_ref(), code, e.etype().as_str())
            } else {
                ctx.outcome
                    .error
                    .as_ref()
                    .map(|err| err.body_for(ctx.llm.api.or(ctx.inference.api)))
                    .unwrap_or_else(|| match ctx.llm.api.or(ctx.inference.api) {
                        Some(api) => agora_providers::gateway_error(api, code, e.etype().as_str()),
                        None => respond::generic_error_json(code, e),
                    })
            };
            let mut extra = ctx
                .outcome
                .error
                .as_ref()
                .map(Error::headers)
                .unwrap_or_default();
            extra.extend(ctx.policy.response_headers.iter().cloned());
            let _ = respond::json(session, code, Bytes::from(body), reusable, &extra).await;
        }
        ctx.outcome.status = code;
        FailToProxy {
            error_code: code,
            can_reuse_downstream: reusable,
        }
    }

    /// Runs once per request at the end: metrics, access log, endpoint bookkeeping.
    async fn logging(&self, session: &mut Session, e: Option<&PError>, ctx: &mut RequestCtx) {
        ctx.upstream.release();
        if ctx.outcome.delegated {
            return;
        }
        if ctx.outcome.status == 0
            && let Some(resp) = session.response_written()
        {
            ctx.outcome.status = resp.status.as_u16();
        }
        policy::settle(ctx, &self.metrics);
        let now = Instant::now();
        ctx::observe(self, session, e, ctx, now);
        a2a::observe(&self.metrics, ctx);
        llm_glue::observe(&self.metrics, ctx, now);
    }
}
