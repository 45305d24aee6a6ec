//! Responses the gateway writes itself: redirects, direct responses, JSON errors.

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{ErrorSource, ErrorType};

use super::RequestCtx;
use crate::error::Error;
use crate::ir::RuleIr;

async fn write(
    session: &mut Session,
    status: u16,
    headers: &[(&str, &str)],
    body: Bytes,
    rule: Option<&RuleIr>,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 1))?;
    for (n, v) in headers {
        resp.insert_header(n.to_string(), *v)?;
    }
    if let Some(rule) = rule {
        super::headers::apply_response_filters(rule.filters.iter(), &mut resp);
    }
    resp.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())?;
    let head_only = session.req_header().method == http::Method::HEAD;
    session
        .write_response_header(Box::new(resp), head_only || body.is_empty())
        .await?;
    if !head_only && !body.is_empty() {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// A redirect, with the rule's response header modifiers applied.
pub async fn redirect(
    session: &mut Session,
    rule: &RuleIr,
    status: u16,
    location: &str,
) -> pingora::Result<()> {
    let headers = [("location", location)];
    write(session, status, &headers, Bytes::new(), Some(rule)).await
}

/// A direct response, with the rule's response header modifiers applied.
pub async fn direct(
    session: &mut Session,
    rule: &RuleIr,
    status: u16,
    body: Bytes,
    content_type: Option<&str>,
) -> pingora::Result<()> {
    match content_type {
        Some(ct) => write(session, status, &[("content-type", ct)], body, Some(rule)).await,
        None => write(session, status, &[], body, Some(rule)).await,
    }
}

/// An error body (unless a response has already started); the connection is announced as
/// closing when it will not be reused.
pub async fn json(
    session: &mut Session,
    status: u16,
    body: Bytes,
    reusable: bool,
    extra: &[(&'static str, String)],
) -> pingora::Result<()> {
    if session.response_written().is_some() {
        return Ok(());
    }
    if !reusable {
        // Pingora writes the Connection header from the session's keep-alive state.
        session.set_keepalive(None);
    }
    let mut headers = vec![("content-type", "application/json")];
    headers.extend(extra.iter().map(|(n, v)| (*n, v.as_str())));
    write(session, status, &headers, body, None).await
}

/// The status for a failed request: our own error's, else derived from Pingora's error.
/// Connect failures (refused, unreachable, timed out, TLS) are 503, response timeouts 504, other upstream failures 502; 0 means the client
/// is gone and gets nothing.
pub fn error_status(e: &pingora::Error, ctx: &mut RequestCtx) -> u16 {
    if let Some(err) = &ctx.outcome.error {
        return err.status();
    }
    match e.etype() {
        ErrorType::HTTPStatus(c) => *c,
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            let t = ctx
                .route
                .plan
                .as_ref()
                .and_then(|p| p.rule().backend_timeout)
                .unwrap_or_default();
            ctx.outcome.error = Some(Error::UpstreamTimeout(t));
            504
        }
        ErrorType::ConnectTimedout
        | ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::TLSHandshakeFailure => 503,
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// JSON body for errors that did not come from our own [`Error`].
pub fn generic_error_json(code: u16, e: &pingora::Error) -> Vec<u8> {
    let kind = match code {
        502 => "bad_gateway",
        503 => "upstream_unavailable",
        504 => "upstream_timeout",
        400 => "bad_request",
        _ => "internal",
    };
    serde_json::to_vec(&serde_json::json!({
        "error": { "type": kind, "message": format!("{}", e.etype().as_str()) }
    }))
    .unwrap_or_default()
}
