//! Pingora glue of InferencePool backends: once the body is read, the pool's endpoint picker
//! is asked (`crate::inference`); its verdict picks the peer of each attempt, shapes the
//! upstream request (header changes, replacement body) or answers the client directly.

use std::net::SocketAddr;

use agora_providers::ClientApi;
use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use super::{Gateway, RequestCtx};
use crate::error::Error;
use crate::inference::{self, HeaderSet, Immediate, PickRequest, PickerIr, SetAction, Verdict};
use crate::metrics::Metrics;

/// The picker's decision for one request, carried across phases (and, without the body, into
/// a replay subrequest).
#[derive(Debug, Default, Clone)]
pub struct InferenceCtx {
    /// The client's LLM API when the path is one (errors then take its shape).
    pub api: Option<ClientApi>,
    /// Endpoints the picker chose, in order: the first attempt's, then the retries'.
    pub endpoints: Vec<SocketAddr>,
    /// Header changes for the upstream request.
    pub set: Vec<HeaderSet>,
    pub remove: Vec<http::HeaderName>,
    /// The picker's replacement body, sent instead of the client's.
    pub body: Option<Bytes>,
    /// The attempt that last sent `body`.
    sent_on: u32,
}

/// Runs when a request is routed to a pool, before any error: errors on an LLM path take
/// the client API's shape.
pub fn begin(ctx: &mut RequestCtx, path: &str) {
    ctx.inference.api = ClientApi::from_path(path).filter(|a| *a != ClientApi::Passthrough);
}

/// Runs once the body of a request to a pool is read: asks the picker and records its
/// verdict. `Ok(Some(body))`: proxy on, with this body (the picker's replacement or the
/// client's); `Ok(None)`: the picker's own response was written; `Err`: the answer is an
/// error (503 when the picker fails and the pool fails closed).
pub async fn pick(
    session: &mut Session,
    ctx: &mut RequestCtx,
    picker: &PickerIr,
    body: Bytes,
    metrics: &Metrics,
) -> pingora::Result<Option<Bytes>> {
    let Some(plan) = ctx.route.plan.clone() else {
        return Ok(Some(body));
    };
    let backend = &plan.backend;
    let req = session.req_header();
    let host = crate::routing::hostname::request_host(req);
    let answer = picker
        .pick(PickRequest {
            method: req.method.as_str(),
            path: req.uri.path_and_query().map_or("/", |p| p.as_str()),
            authority: &host,
            scheme: if ctx.route.tls { "https" } else { "http" },
            headers: &req.headers,
            body: &body,
            max_body: ctx.route.rule.as_ref().map_or(u64::MAX, |r| r.max_body),
        })
        .await;
    let in_pool = |a: &SocketAddr| backend.endpoints.iter().any(|e| e.addr == *a);
    let verdict = inference::verdict(answer, in_pool, picker.fail_open);
    metrics
        .inference_picks
        .with_label_values(&[&*ctx.route.gateway, backend.name.as_str(), verdict.label()])
        .inc();
    match verdict {
        Verdict::Route {
            endpoints,
            mutation,
        } => {
            let i = &mut ctx.inference;
            i.endpoints = endpoints;
            i.set = mutation.set;
            i.remove = mutation.remove;
            i.body = mutation.body;
            Ok(Some(i.body.clone().unwrap_or(body)))
        }
        Verdict::AnyEndpoint(why) => {
            tracing::warn!(backend = %backend.name, error = %why, "endpoint picker failed; any pool endpoint serves (FailOpen)");
            Ok(Some(body))
        }
        Verdict::Refuse(why) => Err(Gateway::fail(ctx, Error::EndpointPicker(why))),
        Verdict::Respond(i) => {
            respond(session, &i).await?;
            ctx.outcome.status = i.status;
            Ok(None)
        }
    }
}

/// Writes the picker's immediate response.
async fn respond(session: &mut Session, i: &Immediate) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(i.status, Some(i.headers.len() + 1))?;
    for h in &i.headers {
        resp.append_header(h.name.clone(), h.value.clone())?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, i.body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only || i.body.is_empty())
        .await?;
    if !head_only && !i.body.is_empty() {
        session
            .write_response_body(Some(i.body.clone()), true)
            .await?;
    }
    Ok(())
}

/// The endpoint the picker chose for the coming attempt (its fallbacks on retries); `None`
/// once they are used up, or without a picker's choice (the backend's balancing decides).
pub fn peer_pin(ctx: &RequestCtx) -> Option<SocketAddr> {
    let i = &ctx.inference;
    i.endpoints
        .get(usize::try_from(ctx.upstream.attempt).unwrap_or(usize::MAX))
        .copied()
}

/// Applies the picker's header changes (and the replacement body's length) to the upstream
/// request.
pub fn upstream_request(ctx: &RequestCtx, req: &mut RequestHeader) -> pingora::Result<()> {
    let i = &ctx.inference;
    for n in &i.remove {
        req.remove_header(n);
    }
    for h in &i.set {
        let present = req.headers.contains_key(&h.name);
        match h.action {
            SetAction::Append => {
                req.append_header(h.name.clone(), h.value.clone())?;
            }
            SetAction::AddIfAbsent if present => {}
            SetAction::OverwriteIfExists if !present => {}
            _ => req.insert_header(h.name.clone(), h.value.clone())?,
        }
    }
    if let Some(b) = &i.body {
        req.remove_header(&http::header::TRANSFER_ENCODING);
        req.insert_header(http::header::CONTENT_LENGTH, b.len().to_string())?;
    }
    Ok(())
}

/// Replaces the body Pingora is about to send with the picker's, once per attempt; `false`
/// when the picker did not replace it.
pub fn fill_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>) -> bool {
    let i = &mut ctx.inference;
    let Some(b) = i.body.as_ref() else {
        return false;
    };
    if i.sent_on == ctx.upstream.attempt {
        *body = None;
    } else {
        *body = Some(b.clone());
        i.sent_on = ctx.upstream.attempt;
    }
    true
}

/// What a replay subrequest takes over: the choice and header changes (its preset body is
/// already the replacement).
pub fn for_subrequest(ctx: &RequestCtx) -> InferenceCtx {
    InferenceCtx {
        body: None,
        sent_on: 0,
        ..ctx.inference.clone()
    }
}
