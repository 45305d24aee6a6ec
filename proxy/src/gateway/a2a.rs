//! Pingora glue of the A2A handling: card requests, JSON-RPC classification and the body it
//! may rewrite, conversation stickiness, card rewriting on the way back, JSON-RPC errors. The
//! decisions live in `crate::a2a`.

use bytes::Bytes;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::proxy::Session;

use super::RequestCtx;
use crate::a2a::{self, Call};
use crate::error::Error;

/// A2A state of one request.
#[derive(Default)]
pub struct A2aCtx {
    /// The request goes to an A2A backend.
    pub active: bool,
    pub call: Option<Call>,
    /// The body to send instead of the client's (a context id was added).
    body: Option<Bytes>,
    /// The attempt that last sent `body`.
    sent_on: u32,
    /// An agent-card request: the client-facing base URL, and the prefix the agent sees.
    card: Option<(String, String)>,
    rewrite: bool,
    buf: Vec<u8>,
    /// The answer to a message, kept (up to a bound) to learn its task ids.
    answer: Vec<u8>,
}

/// Most answer bytes kept to learn task ids from.
const ANSWER_LIMIT: usize = 256 * 1024;

impl A2aCtx {
    /// The consistent-hash key of the conversation, if the request belongs to one.
    pub fn sticky_hash(&self) -> Option<u64> {
        self.call
            .as_ref()
            .and_then(Call::sticky_key)
            .map(|k| crate::backend::fnv1a(k.as_bytes()))
    }

    /// The request id, for JSON-RPC error bodies.
    pub fn rpc_id(&self) -> serde_json::Value {
        self.call
            .as_ref()
            .map_or(serde_json::Value::Null, |c| c.id.clone())
    }
}

/// Runs once an A2A request is routed: notes a card request. Returns whether the body must
/// be read (a JSON-RPC call).
pub fn request(session: &Session, ctx: &mut RequestCtx) -> bool {
    ctx.a2a.active = true;
    let req = session.req_header();
    if req.method == http::Method::GET
        && let Some(prefix) = a2a::card_prefix(req.uri.path())
    {
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.authority().map(|a| a.as_str()))
            .unwrap_or("localhost");
        let scheme = if ctx.route.tls { "https" } else { "http" };
        ctx.a2a.card = Some((format!("{scheme}://{host}{prefix}"), String::new()));
        return false;
    }
    req.method == http::Method::POST
}

/// Classifies the JSON-RPC body (a parse error is the client's answer), then runs the
/// authorization rules that read `a2a` (`method`, `rawMethod`, `contextId`, `taskId`).
pub fn classify(session: &Session, ctx: &mut RequestCtx, body: &[u8]) -> Result<(), Error> {
    match a2a::classify(body, new_context_id) {
        Ok((mut call, rewritten)) => {
            call.resolve_context();
            let attrs = ctx.policy.has_body_rules().then(|| {
                serde_json::json!({
                    "method": call.kind,
                    "rawMethod": call.method,
                    "contextId": call.context_id,
                    "taskId": call.task_id,
                })
            });
            ctx.a2a.call = Some(call);
            ctx.a2a.body = rewritten.map(Bytes::from);
            match attrs {
                Some(a) => super::policy::authorize_a2a(session, ctx, &a),
                None => Ok(()),
            }
        }
        Err(e) => {
            ctx.a2a.call = Some(Call {
                id: e.id.clone(),
                method: String::new(),
                kind: "invalid",
                context_id: None,
                task_id: None,
            });
            Err(Error::A2a {
                code: e.code,
                message: e.message,
            })
        }
    }
}

fn new_context_id() -> String {
    let r: u128 = rand::random();
    let h = format!("{r:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Runs the authorization rules that read `a2a` for a request without a JSON-RPC body: an
/// agent-card request is method `agent_card`, anything else `other`.
pub fn authorize_without_body(session: &Session, ctx: &mut RequestCtx) -> Result<(), Error> {
    if !ctx.policy.has_body_rules() {
        return Ok(());
    }
    let method = if ctx.a2a.card.is_some() {
        "agent_card"
    } else {
        "other"
    };
    let attrs = serde_json::json!({
        "method": method,
        "rawMethod": session.req_header().method.as_str(),
    });
    super::policy::authorize_a2a(session, ctx, &attrs)
}

/// Replaces the body Pingora is about to send with the rewritten one (once per attempt).
/// Returns false when this request's body is not rewritten.
pub fn fill_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>) -> bool {
    let Some(b) = ctx.a2a.body.as_ref() else {
        return false;
    };
    if ctx.a2a.sent_on == ctx.upstream.attempt {
        *body = None;
    } else {
        *body = Some(b.clone());
        ctx.a2a.sent_on = ctx.upstream.attempt;
    }
    true
}

/// Shapes the upstream request: the rewritten body's length; for a card request, the prefix
/// the agent sees (after route rewrites).
pub fn upstream_request(ctx: &mut RequestCtx, req: &mut RequestHeader) -> pingora::Result<()> {
    if let Some(b) = &ctx.a2a.body {
        req.remove_header(&http::header::TRANSFER_ENCODING);
        req.insert_header(http::header::CONTENT_LENGTH, b.len().to_string())?;
    }
    if let Some((_, upstream)) = ctx.a2a.card.as_mut() {
        *upstream = a2a::card_prefix(req.uri.path()).unwrap_or("").to_string();
    }
    Ok(())
}

/// A successful card answer will be rewritten: its length changes.
pub fn response_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    h2: bool,
) -> pingora::Result<()> {
    if ctx.a2a.card.is_some() && resp.status.as_u16() == 200 {
        ctx.a2a.rewrite = true;
        resp.remove_header(&http::header::CONTENT_LENGTH);
        if !h2 {
            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        }
    }
    Ok(())
}

/// Buffers a card answer and rewrites its URLs at the end; everything else (SSE streams
/// included) passes through as it arrives.
pub fn response_body(ctx: &mut RequestCtx, body: &mut Option<Bytes>, end: bool) {
    learn_tasks(ctx, body.as_ref(), end);
    if !ctx.a2a.rewrite {
        return;
    }
    if let Some(b) = body.take() {
        ctx.a2a.buf.extend_from_slice(&b);
    }
    if end {
        let buf = std::mem::take(&mut ctx.a2a.buf);
        let out = match &ctx.a2a.card {
            Some((public, upstream)) => a2a::rewrite_card(&buf, public, upstream).unwrap_or(buf),
            None => buf,
        };
        *body = Some(Bytes::from(out));
    }
}

/// Remembers which conversation the tasks in an answer to a message belong to.
fn learn_tasks(ctx: &mut RequestCtx, chunk: Option<&Bytes>, end: bool) {
    let Some(call) = &ctx.a2a.call else { return };
    let Some(context) = call.context_id.clone() else {
        return;
    };
    if !matches!(call.kind, "message/send" | "message/stream") {
        return;
    }
    if let Some(c) = chunk
        && ctx.a2a.answer.len() + c.len() <= ANSWER_LIMIT
    {
        ctx.a2a.answer.extend_from_slice(c);
    }
    if end {
        for t in a2a::task_ids(&std::mem::take(&mut ctx.a2a.answer)) {
            a2a::tasks::learn(&t, &context);
        }
    }
}

/// The JSON-RPC error body of a gateway error on an A2A route.
pub fn error_body(ctx: &RequestCtx, e: Option<&Error>, status: u16, fallback: &str) -> Vec<u8> {
    let (code, message) = match e {
        Some(Error::A2a { code, message }) => (*code, message.clone()),
        Some(e) => (a2a::INTERNAL_ERROR, e.to_string()),
        None => (
            a2a::INTERNAL_ERROR,
            format!("gateway error {status}: {fallback}"),
        ),
    };
    a2a::error_body(&ctx.a2a.rpc_id(), code, &message)
}

/// Counts the call for metrics.
pub fn observe(metrics: &crate::metrics::Metrics, ctx: &RequestCtx) {
    if !ctx.a2a.active {
        return;
    }
    let method = match (&ctx.a2a.call, &ctx.a2a.card) {
        (Some(c), _) => c.kind,
        (None, Some(_)) => "agent_card",
        _ => "other",
    };
    metrics
        .a2a_requests
        .with_label_values(&[
            &*ctx.route.gateway,
            ctx.route.route_name(),
            ctx.route.backend_name(),
            method,
            &ctx.outcome.status.to_string(),
        ])
        .inc();
}
