//! Pingora glue of the policies: admission once routed, the LLM body's guards and token
//! limits, response headers, settling. The decisions live in `crate::policy`.

use std::sync::Arc;

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

use super::RequestCtx;
use crate::error::Error;
use crate::policy::{self, Admission, RequestInfo};

pub(super) fn info(session: &Session) -> (String, Option<std::net::SocketAddr>) {
    let host = crate::routing::hostname::request_host(session.req_header()).to_string();
    let source = session.client_addr().and_then(|a| a.as_inet()).copied();
    (host, source)
}

/// Where MCP authentication's protected resource metadata is served (RFC 9728), before the
/// resource's path.
pub const WELL_KNOWN_RESOURCE: &str = "/.well-known/oauth-protected-resource";

/// `path` as an absolute URL on the scheme and authority the client used.
pub fn absolute_url(session: &Session, tls: bool, path: &str) -> String {
    let req = session.req_header();
    let authority = req
        .uri
        .authority()
        .map(|a| a.as_str())
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
        })
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{authority}{path}")
}

/// Runs the request's policies once it is routed. `Ok(true)`: answered here (a CORS
/// preflight); `Err`: the refusal to send.
pub async fn admit(
    session: &mut Session,
    ctx: &mut RequestCtx,
    eff: &Arc<agora_policies::Effective>,
    body: policy::BodyFollows,
) -> Result<bool, Error> {
    if eff.is_empty() {
        return Ok(false);
    }
    let (host, source) = info(session);
    let req = RequestInfo {
        parts: session.req_header(),
        host: &host,
        source,
    };
    let admitted = match ctx.policy.admit(eff, req, body).await {
        Err(agora_policies::Error::McpUnauthenticated { reason, .. }) => {
            let metadata = format!("{}{}", WELL_KNOWN_RESOURCE, session.req_header().uri.path());
            return Err(agora_policies::Error::McpUnauthenticated {
                reason,
                metadata: absolute_url(session, ctx.route.tls, &metadata),
            }
            .into());
        }
        r => r?,
    };
    match admitted {
        Admission::Continue => Ok(false),
        Admission::Preflight(headers) => {
            let mut resp = ResponseHeader::build(204, Some(headers.len() + 1))
                .map_err(|e| Error::invalid("cors", e))?;
            for (n, v) in headers {
                resp.insert_header(n, v)
                    .map_err(|e| Error::invalid("cors", e))?;
            }
            resp.insert_header(http::header::CONTENT_LENGTH, "0")
                .map_err(|e| Error::invalid("cors", e))?;
            session
                .write_response_header(Box::new(resp), true)
                .await
                .map_err(|e| Error::invalid("cors", e))?;
            ctx.outcome.status = 204;
            Ok(true)
        }
    }
}

/// Applies the request prompt guards to an LLM body (masking may replace it).
pub fn guard_llm_body(ctx: &mut RequestCtx, body: Bytes) -> Result<Bytes, Error> {
    let Some(eff) = ctx.policy.effective.as_ref() else {
        return Ok(body);
    };
    match policy::guard_request(eff, &body) {
        Ok(Some(masked)) => {
            ctx.policy.guard_outcome = Some("masked");
            Ok(Bytes::from(masked))
        }
        Ok(None) => Ok(body),
        Err(e) => {
            ctx.policy.guard_outcome = Some("rejected");
            Err(e.into())
        }
    }
}

/// The response prompt guards of the request's policies, if any.
pub fn response_guard(ctx: &RequestCtx) -> Option<Arc<agora_policies::guard::Guard>> {
    ctx.policy
        .effective
        .as_ref()
        .and_then(|e| e.guards.as_ref())
        .map(|g| g.response.clone())
        .filter(|g| !g.is_empty())
}

/// Calls the request guard webhooks with the LLM body.
pub async fn guard_webhooks(ctx: &mut RequestCtx, body: &[u8]) -> Result<(), Error> {
    let Some(eff) = ctx.policy.effective.clone() else {
        return Ok(());
    };
    policy::guard_webhooks(&eff, body).await.map_err(|e| {
        ctx.policy.guard_outcome = Some("rejected");
        e.into()
    })
}

/// Adds the headers external authorization asked for to the upstream request.
pub fn upstream_request(
    ctx: &RequestCtx,
    req: &mut pingora::http::RequestHeader,
) -> pingora::Result<()> {
    for (n, v) in &ctx.policy.upstream_headers {
        req.insert_header(n.clone(), v.clone())?;
    }
    Ok(())
}

/// Runs the authorization rules that read `a2a` once the JSON-RPC call is classified.
pub fn authorize_a2a(
    session: &Session,
    ctx: &mut RequestCtx,
    a2a: &serde_json::Value,
) -> Result<(), Error> {
    let (host, source) = info(session);
    let req = RequestInfo {
        parts: session.req_header(),
        host: &host,
        source,
    };
    ctx.policy.authorize_body(req, None, Some(a2a))?;
    Ok(())
}

/// Authorizes by the body (`llm.*`), then charges token limits and checks the budget with
/// the LLM request's estimated input tokens.
pub async fn admit_tokens(
    session: &Session,
    ctx: &mut RequestCtx,
    body: &[u8],
) -> Result<(), Error> {
    let Some(eff) = ctx.policy.effective.clone().filter(|e| !e.is_empty()) else {
        return Ok(());
    };
    let ai = super::llm::ai(ctx);
    let Some(llm) = ctx.llm.state.as_mut() else {
        return Ok(());
    };
    let provider = match &ai {
        Some(ai) if eff.uses.reads_llm() => llm
            .first_provider(ai)
            .map(|p| p.kind.clone())
            .unwrap_or_default(),
        _ => String::new(),
    };
    let attrs = agora_policies::cel::LlmAttrs {
        request_model: llm.request_model.clone().unwrap_or_default(),
        provider,
        input_tokens: policy::estimate_tokens(body),
        output_tokens: 0,
        streaming: llm.stream,
    };
    let (host, source) = info(session);
    let req = RequestInfo {
        parts: session.req_header(),
        host: &host,
        source,
    };
    ctx.policy.authorize_body(req, Some(&attrs), None)?;
    if eff.local_limits.is_empty() && eff.global_limits.is_empty() && eff.budget.is_none() {
        return Ok(());
    }
    ctx.policy
        .admit_tokens(attrs.input_tokens, &attrs, req)
        .await?;
    Ok(())
}

/// Adds the policies' response headers (CORS, rate-limit state).
pub fn response_headers(ctx: &RequestCtx, resp: &mut ResponseHeader) {
    for (n, v) in &ctx.policy.response_headers {
        let _ = resp.insert_header(*n, v.as_str());
    }
}

/// Settles token limits and budgets from the real usage once the request is over.
pub fn settle(ctx: &mut RequestCtx, metrics: &Arc<crate::metrics::Metrics>) {
    let used = match ctx.llm.state.as_ref() {
        Some(l) => {
            let u = &l.response.usage;
            let model = u
                .response_model
                .clone()
                .or_else(|| l.upstream_model.clone())
                .or_else(|| l.request_model.clone())
                .unwrap_or_default();
            if u.input_tokens + u.output_tokens > 0 {
                Some(policy::Used {
                    model,
                    input: u.input_tokens,
                    output: u.output_tokens,
                })
            } else if l.response.status == 0 || l.response.status >= 400 {
                // A failed request gives its estimate back.
                Some(policy::Used::default())
            } else {
                // A success without a usage report keeps its estimate.
                None
            }
        }
        None if ctx.outcome.status >= 400 => Some(policy::Used::default()),
        None => None,
    };
    ctx.policy.settle(used, metrics);
}
