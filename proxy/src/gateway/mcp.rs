//! Pingora glue of MCP: the virtual server's transports (Streamable HTTP: POST answered as
//! JSON or SSE, GET for the server's stream, DELETE; the legacy SSE transport: a GET stream
//! plus POSTed messages), Host/Origin checks, metrics; and MCP passthrough, where the
//! upstream's session id is sealed with the endpoint that issued it. The protocol work is
//! in `crate::mcp`.

mod legacy;
mod passthrough;

pub use passthrough::McpCtx;
pub(super) use passthrough::{
    peer_pin, request as passthrough_request, response_header as passthrough_response,
    upstream_request as passthrough_upstream,
};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use super::RequestCtx;
use crate::body::{self, ReadError};
use crate::mcp::McpIr;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::server::{self, Op, Reply, Request};
use crate::metrics::Metrics;

/// Comment lines that keep idle streams open (and tell us when the client left).
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Answers a request routed to a virtual MCP server. Always answers here (`Ok(true)`).
pub async fn serve(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
    metrics: &Metrics,
) -> pingora::Result<bool> {
    let declared = ctx
        .route
        .listener
        .as_ref()
        .is_some_and(|l| !l.hostname.is_empty());
    if let Err(why) = check_origin(session, declared) {
        let body = jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, &why);
        return write_json(session, ctx, 403, &body, None).await;
    }
    let req = session.req_header();
    let method = req.method.clone();
    let legacy_sid = legacy::session_param(req.uri.query());
    let header_sid = req
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match method {
        http::Method::POST if legacy_sid.is_some() => {
            legacy::message(
                session,
                ctx,
                ir,
                scope,
                legacy_sid.unwrap_or_default(),
                metrics,
            )
            .await
        }
        http::Method::POST => post(session, ctx, ir, scope, header_sid, metrics).await,
        http::Method::GET if header_sid.is_none() && req.uri.path().ends_with("/sse") => {
            legacy::stream(session, ctx, ir, scope).await
        }
        http::Method::GET => get(session, ctx, ir, scope, header_sid).await,
        http::Method::DELETE => delete(session, ctx, ir, scope, header_sid).await,
        _ => {
            let body = jsonrpc::error(
                Value::Null,
                jsonrpc::INVALID_REQUEST,
                "Method not allowed: use POST, GET or DELETE",
            );
            write_json(session, ctx, 405, &body, None).await
        }
    }
}

/// `GET /.well-known/oauth-protected-resource/<path>`: the RFC 9728 metadata of the MCP
/// resource at `<path>`, if that routes to an MCP backend with MCP authentication.
pub fn resource_metadata(
    session: &Session,
    ir: &crate::ir::Ir,
    port: u16,
    tls: bool,
) -> Option<Value> {
    let mut parts = session.req_header().as_owned_parts();
    let rest = parts
        .uri
        .path()
        .strip_prefix(super::policy::WELL_KNOWN_RESOURCE)?
        .to_string();
    let path = if rest.is_empty() {
        "/".to_string()
    } else {
        rest
    };
    parts.uri = path.parse().ok()?;
    let arrival = crate::routing::Arrival {
        port,
        tls,
        req: &parts,
    };
    let (decision, _) = crate::routing::decide(ir, arrival, 0).ok()?;
    let crate::routing::Decision::Proxy(plan) = decision else {
        return None;
    };
    if plan.backend.mcp.is_none() && !plan.backend.mcp_passthrough {
        return None;
    }
    let jwt = plan.rule().backends[plan.backend_index]
        .policies
        .jwt
        .clone()?;
    jwt.mcp_metadata(&super::policy::absolute_url(session, tls, &path))
}

/// DNS-rebinding defence: an `Origin` must name the host the request was sent to, and on a
/// loopback address only loopback host names are taken (a rebound domain is not), unless the
/// listener names its hosts (`declared`: routing already checked the name).
fn check_origin(session: &Session, declared: bool) -> Result<(), String> {
    let req = session.req_header();
    let host = crate::routing::hostname::request_host(req).to_ascii_lowercase();
    let loopback = session
        .server_addr()
        .and_then(|a| a.as_inet())
        .is_some_and(|a| a.ip().is_loopback());
    let local = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "::1");
    if loopback && !declared && !local(&host) {
        return Err(format!(
            "Forbidden: host {host:?} is not a local name (DNS rebinding protection)"
        ));
    }
    if let Some(origin) = req.headers.get(http::header::ORIGIN) {
        let o = origin.to_str().unwrap_or("");
        let o_host = o
            .split_once("://")
            .map(|(_, rest)| rest)
            .map(|rest| crate::routing::hostname::strip_port(rest).to_ascii_lowercase());
        let ok = match o_host {
            Some(oh) => oh == host || (loopback && local(&oh)),
            None => false,
        };
        if !ok {
            return Err(format!(
                "Forbidden: origin {o:?} does not match host {host:?}"
            ));
        }
    }
    Ok(())
}

/// The body of an error the gateway answers on an MCP route (a policy refusal, an upstream
/// failure in passthrough): a JSON-RPC error (id unknown: `null`).
pub fn error_body(e: Option<&crate::error::Error>, status: u16, fallback: &str) -> Vec<u8> {
    let (code, message) = match e {
        Some(e) if status < 500 => (jsonrpc::INVALID_REQUEST, e.to_string()),
        Some(e) => (jsonrpc::INTERNAL_ERROR, e.to_string()),
        None => (
            jsonrpc::INTERNAL_ERROR,
            format!("gateway error {status}: {fallback}"),
        ),
    };
    serde_json::to_vec(&jsonrpc::error(Value::Null, code, &message)).unwrap_or_default()
}

/// The request as authorization rules that read `mcp` see it (they run per operation, after
/// the body was read); nothing is copied when no such rule applies.
pub(super) struct RequestView {
    parts: Option<http::request::Parts>,
    host: String,
    source: Option<std::net::SocketAddr>,
}

impl RequestView {
    pub(super) fn new(session: &Session, ctx: &RequestCtx) -> Self {
        let parts = ctx
            .policy
            .has_body_rules()
            .then(|| session.req_header().as_owned_parts());
        let (host, source) = super::policy::info(session);
        Self {
            parts,
            host,
            source,
        }
    }

    /// Whether any rule reads `mcp` (else nothing needs checking per operation).
    pub(super) fn rules(&self) -> bool {
        self.parts.is_some()
    }

    /// Whether the rules let the operation described by `attrs` through.
    pub(super) fn allows(&self, policy: &crate::policy::PolicyCtx, attrs: &Value) -> bool {
        match &self.parts {
            Some(p) => policy.authorize_mcp(
                crate::policy::RequestInfo {
                    parts: p,
                    host: &self.host,
                    source: self.source,
                },
                attrs,
            ),
            None => true,
        }
    }
}

/// The virtual server's request context for this request (policies decide per operation).
fn request<'a>(
    ir: &'a Arc<McpIr>,
    scope: &'a str,
    ctx: &RequestCtx,
    stream_ok: bool,
    authorize: Option<server::Authorize<'a>>,
) -> Request<'a> {
    Request {
        ir,
        scope,
        authorize,
        timeout: ctx
            .route
            .plan
            .as_ref()
            .and_then(|p| p.rule().backend_timeout.or(p.rule().request_timeout)),
        stream_ok,
    }
}

async fn read_message(
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(Value, Kind), (u16, Value)> {
    let body = match body::read_all(session, ctx.body.limit).await {
        Ok(b) => b,
        Err(ReadError::Gateway(e)) => {
            let status = e.status();
            return Err((
                status,
                jsonrpc::error(Value::Null, jsonrpc::INVALID_REQUEST, &e.to_string()),
            ));
        }
        Err(ReadError::Downstream(_)) => {
            return Err((
                400,
                jsonrpc::error(Value::Null, jsonrpc::PARSE_ERROR, "request body not read"),
            ));
        }
    };
    jsonrpc::parse(&body).map_err(|e| (400, e))
}

async fn post(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
    sid: Option<String>,
    metrics: &Metrics,
) -> pingora::Result<bool> {
    let accept = session
        .req_header()
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let stream_ok = accept.contains("text/event-stream") || accept.contains("*/*");
    let (msg, kind) = match read_message(session, ctx).await {
        Ok(m) => m,
        Err((status, body)) => return write_json(session, ctx, status, &body, None).await,
    };
    let id = jsonrpc::id_of(&msg).clone();
    let started = Instant::now();
    let view = RequestView::new(session, ctx);
    let (reply, op) = {
        let authorize = |attrs: &Value| view.allows(&ctx.policy, attrs);
        let req = request(
            &ir,
            scope,
            ctx,
            stream_ok,
            view.rules().then_some(&authorize),
        );
        server::handle(&req, sid.as_deref(), msg, kind).await
    };
    let r = write_reply(session, ctx, reply, &id).await;
    observe(metrics, ctx, &op, started);
    r
}

/// Writes the virtual server's answer.
async fn write_reply(
    session: &mut Session,
    ctx: &mut RequestCtx,
    reply: Reply,
    id: &Value,
) -> pingora::Result<bool> {
    match reply {
        Reply::Json(body, sid) => write_json(session, ctx, 200, &body, sid.as_deref()).await,
        Reply::Accepted => write_empty(session, ctx, 202).await,
        Reply::BadRequest(body) => write_json(session, ctx, 400, &body, None).await,
        Reply::NoSession(body) => write_json(session, ctx, 404, &body, None).await,
        Reply::Stream(mut rx) => {
            // An answer with nothing before it goes back as plain JSON.
            let Some(first) = rx.recv().await else {
                let body = jsonrpc::error(id.clone(), jsonrpc::INTERNAL_ERROR, "no answer");
                return write_json(session, ctx, 502, &body, None).await;
            };
            if jsonrpc::kind(&first) == Ok(Kind::Response) {
                return write_json(session, ctx, 200, &first, None).await;
            }
            write_sse_head(session, ctx).await?;
            write_event(session, &first).await?;
            pump(session, rx, false).await
        }
    }
}

/// Relays messages as SSE events until the channel ends (or, `forever`, the client
/// leaves), then ends the response.
async fn pump(
    session: &mut Session,
    mut rx: UnboundedReceiver<Value>,
    keepalive: bool,
) -> pingora::Result<bool> {
    loop {
        let next = if keepalive {
            match tokio::time::timeout(KEEPALIVE, rx.recv()).await {
                Ok(m) => m,
                Err(_) => {
                    session
                        .write_response_body(Some(Bytes::from_static(b": keepalive\n\n")), false)
                        .await?;
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        match next {
            Some(m) => write_event(session, &m).await?,
            None => break,
        }
    }
    session.write_response_body(None, true).await?;
    Ok(true)
}

async fn get(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
    sid: Option<String>,
) -> pingora::Result<bool> {
    if ir.stateless {
        let body = jsonrpc::error(
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Method not allowed: this server is stateless and offers no stream",
        );
        return write_json(session, ctx, 405, &body, None).await;
    }
    let req = request(&ir, scope, ctx, true, None);
    let sess = match server::session(&req, sid.as_deref(), &Value::Null) {
        Ok(s) => s,
        Err(refusal) => return write_reply(session, ctx, refusal, &Value::Null).await,
    };
    let Some(rx) = server::subscribe(&req, sess).await else {
        let body = jsonrpc::error(
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Method not allowed: no target offers a stream",
        );
        return write_json(session, ctx, 405, &body, None).await;
    };
    write_sse_head(session, ctx).await?;
    pump(session, rx, true).await
}

async fn delete(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
    sid: Option<String>,
) -> pingora::Result<bool> {
    let req = request(&ir, scope, ctx, false, None);
    match server::session(&req, sid.as_deref(), &Value::Null) {
        Ok(sess) => {
            server::close(&req, &sess).await;
            write_empty(session, ctx, 200).await
        }
        Err(refusal) => write_reply(session, ctx, refusal, &Value::Null).await,
    }
}

pub(super) async fn write_json(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
    body: &Value,
    sid: Option<&str>,
) -> pingora::Result<bool> {
    let body = Bytes::from(serde_json::to_vec(body).unwrap_or_default());
    let mut resp = ResponseHeader::build(status, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    if let Some(s) = sid {
        resp.insert_header("mcp-session-id", s)?;
    }
    finish_head(ctx, &mut resp);
    ctx.outcome.status = status;
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await?;
    Ok(true)
}

async fn write_empty(
    session: &mut Session,
    ctx: &mut RequestCtx,
    status: u16,
) -> pingora::Result<bool> {
    let mut resp = ResponseHeader::build(status, Some(2))?;
    resp.insert_header(http::header::CONTENT_LENGTH, "0")?;
    finish_head(ctx, &mut resp);
    ctx.outcome.status = status;
    session.write_response_header(Box::new(resp), true).await?;
    Ok(true)
}

pub(super) async fn write_sse_head(
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(200, Some(4))?;
    resp.insert_header(http::header::CONTENT_TYPE, "text/event-stream")?;
    resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
    if !session.is_http2() {
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    finish_head(ctx, &mut resp);
    ctx.outcome.status = 200;
    session.write_response_header(Box::new(resp), false).await
}

/// Route response header modifiers and policy headers (CORS) on answers written here.
fn finish_head(ctx: &mut RequestCtx, resp: &mut ResponseHeader) {
    if let Some(plan) = &ctx.route.plan {
        super::headers::apply_response_filters(plan.filters(), resp);
    }
    super::policy::response_headers(ctx, resp);
}

pub(super) async fn write_event(session: &mut Session, m: &Value) -> pingora::Result<()> {
    let mut ev = Vec::with_capacity(128);
    ev.extend_from_slice(b"event: message\ndata: ");
    let _ = serde_json::to_writer(&mut ev, m);
    ev.extend_from_slice(b"\n\n");
    session
        .write_response_body(Some(Bytes::from(ev)), false)
        .await
}

/// Counts one MCP message and times its answer.
pub(super) fn observe(metrics: &Metrics, ctx: &RequestCtx, op: &Op, started: Instant) {
    let route = ctx
        .route
        .rule
        .as_ref()
        .map_or("", |r| r.route_name.as_str());
    let gateway = &*ctx.route.gateway;
    metrics
        .mcp_requests
        .with_label_values(&[
            gateway,
            route,
            &op.method,
            op.resource_type,
            &op.server,
            &op.resource,
        ])
        .inc();
    metrics
        .mcp_duration
        .with_label_values(&[gateway, route, &op.method, &op.server])
        .observe(started.elapsed().as_secs_f64());
}
