//! MCP passthrough: requests go to the upstream as they are, but the `Mcp-Session-Id` the
//! client sees seals the upstream's id with the endpoint that issued it, so every request of
//! a session reaches that endpoint, from any replica.

use std::net::SocketAddr;

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;
use serde_json::Value;

use super::super::RequestCtx;
use crate::mcp::jsonrpc;
use crate::mcp::session::{Pinned, sealer};

/// Passthrough state of one request.
#[derive(Debug, Default)]
pub struct McpCtx {
    /// The route goes to an MCP backend: errors are JSON-RPC errors.
    pub jsonrpc: bool,
    /// Scope of sealed ids (the backend key), set on passthrough requests only.
    scope: Option<String>,
    /// The endpoint the session lives on.
    pin: Option<SocketAddr>,
    /// The upstream's own session id, sent instead of the sealed one.
    upstream_sid: Option<String>,
}

/// Runs once a request is routed to an MCP passthrough backend: opens the session id.
/// `Err`: the JSON-RPC error to answer with 404 (an id this gateway did not issue).
pub fn request(session: &Session, ctx: &mut RequestCtx, scope: &str) -> Result<(), Value> {
    ctx.mcp.scope = Some(scope.to_string());
    let Some(sid) = session
        .req_header()
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    match sealer().open::<Pinned>(sid, scope) {
        Some(p) => {
            ctx.mcp.pin = p.endpoint.parse().ok();
            ctx.mcp.upstream_sid = Some(p.session);
            Ok(())
        }
        None => Err(jsonrpc::error(
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Session not found: the Mcp-Session-Id is unknown or expired; initialize again",
        )),
    }
}

/// The endpoint the request's session is pinned to.
pub fn peer_pin(ctx: &RequestCtx) -> Option<SocketAddr> {
    ctx.mcp.pin
}

/// Puts the upstream's own session id on the upstream request.
pub fn upstream_request(ctx: &RequestCtx, req: &mut RequestHeader) -> pingora::Result<()> {
    if let Some(s) = &ctx.mcp.upstream_sid {
        req.insert_header("mcp-session-id", s.as_str())?;
    }
    Ok(())
}

/// Seals a session id the upstream issued with the endpoint that answered.
pub fn response_header(ctx: &RequestCtx, resp: &mut ResponseHeader) -> pingora::Result<()> {
    let Some(scope) = &ctx.mcp.scope else {
        return Ok(());
    };
    let Some(ep) = &ctx.upstream.endpoint else {
        return Ok(());
    };
    let Some(sid) = resp
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let sealed = sealer().seal(
        &Pinned {
            session: sid.to_string(),
            endpoint: ep.addr.to_string(),
        },
        scope,
    );
    resp.insert_header("mcp-session-id", sealed)?;
    Ok(())
}
