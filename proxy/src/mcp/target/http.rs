//! Streamable HTTP targets: each message is a POST; the answer is JSON or an SSE stream whose
//! other messages (progress, logging, server requests) go to the side channel; GET opens the
//! target's own stream; DELETE ends the session.

use std::time::Duration;

use agora_providers::sse::SseParser;
use serde_json::Value;

use super::{Side, TargetError};
use crate::mcp::jsonrpc::{self, Kind};

/// Longest non-streamed answer read from a target.
const MAX_ANSWER: usize = 32 * 1024 * 1024;

/// The pooled client every Streamable HTTP and SSE target shares.
pub(super) fn client() -> &'static reqwest::Client {
    static C: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .unwrap_or_default()
    })
}

/// One session with a Streamable HTTP target.
#[derive(Debug, Clone)]
pub struct HttpConn {
    pub url: String,
    /// Host header when `url` names an address.
    pub host: Option<String>,
    pub session: Option<String>,
    pub version: String,
    pub timeout: Option<Duration>,
}

/// A target's answer to a request, and the session id it announced (on `initialize`; live
/// targets have none).
pub struct Answer {
    pub msg: Value,
    pub session: Option<String>,
}

impl HttpConn {
    fn request(&self, method: reqwest::Method, accept: &str) -> reqwest::RequestBuilder {
        let mut rb = client()
            .request(method, &self.url)
            .header("accept", accept)
            .header("mcp-protocol-version", &self.version);
        if let Some(h) = &self.host {
            rb = rb.header("host", h);
        }
        if let Some(s) = &self.session {
            rb = rb.header("mcp-session-id", s);
        }
        if let Some(t) = self.timeout {
            rb = rb.timeout(t);
        }
        rb
    }

    async fn post(&self, msg: &Value) -> Result<reqwest::Response, TargetError> {
        let resp = self
            .request(reqwest::Method::POST, "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(serde_json::to_vec(msg).unwrap_or_default())
            .send()
            .await
            .map_err(|e| TargetError::Unreachable(error_chain(&e)))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND && self.session.is_some() {
            return Err(TargetError::SessionGone);
        }
        Ok(resp)
    }

    /// Sends a request and waits for its answer; messages before it go to `side`.
    pub async fn call(&self, msg: &Value, side: &Side) -> Result<Answer, TargetError> {
        let id = jsonrpc::id_of(msg).clone();
        let mut resp = self.post(msg).await?;
        let session = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let status = resp.status();
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if sse && status.is_success() {
            let mut parser = SseParser::new();
            let mut last_id: Option<String> = None;
            let mut resumes = 0;
            loop {
                while let Some(chunk) = next_chunk(&mut resp).await? {
                    let blocks = parser
                        .push_raw(&chunk)
                        .map_err(|e| TargetError::Protocol(e.to_string()))?;
                    for b in blocks {
                        if let Some(id) = event_id(&b.raw) {
                            last_id = Some(id);
                        }
                        if !b.has_data {
                            continue;
                        }
                        let Ok(m) = serde_json::from_str::<Value>(&b.event.data) else {
                            continue;
                        };
                        if jsonrpc::kind(&m) == Ok(Kind::Response) && jsonrpc::id_of(&m) == &id {
                            return Ok(Answer { msg: m, session });
                        }
                        side.send(m);
                    }
                }
                // The target closed the stream before answering: resume it where it broke
                // off (SSE `Last-Event-ID`), as a client would.
                let Some(last) = last_id.clone().filter(|_| resumes < 5) else {
                    return Err(TargetError::Protocol(
                        "the event stream ended without an answer".into(),
                    ));
                };
                resumes += 1;
                resp = self
                    .request(reqwest::Method::GET, "text/event-stream")
                    .header("last-event-id", last)
                    .send()
                    .await
                    .map_err(|e| TargetError::Unreachable(error_chain(&e)))?;
                if !resp.status().is_success() {
                    return Err(TargetError::Status(
                        resp.status().as_u16(),
                        "resuming the event stream failed".into(),
                    ));
                }
                parser = SseParser::new();
            }
        }
        let body = read_body(resp).await?;
        match serde_json::from_slice::<Value>(&body) {
            // A JSON-RPC answer (an error answer comes with a 4xx too) is the target's word.
            Ok(m) if jsonrpc::kind(&m) == Ok(Kind::Response) => Ok(Answer { msg: m, session }),
            _ if !status.is_success() => Err(TargetError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            )),
            _ => Err(TargetError::Protocol(
                "the answer is not a JSON-RPC response".into(),
            )),
        }
    }

    /// Sends a notification or a response (the target answers 202).
    pub async fn send(&self, msg: &Value) -> Result<(), TargetError> {
        let resp = self.post(msg).await?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_body(resp).await.unwrap_or_default();
            return Err(TargetError::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
            ));
        }
        Ok(())
    }

    /// Opens the target's GET stream; `None` if it offers none (405 or another refusal).
    pub async fn subscribe(&self) -> Result<Option<reqwest::Response>, TargetError> {
        let mut rb = self.request(reqwest::Method::GET, "text/event-stream");
        // A stream lives as long as the session, whatever the request timeout.
        rb = rb.timeout(Duration::from_secs(365 * 24 * 3600));
        let resp = rb
            .send()
            .await
            .map_err(|e| TargetError::Unreachable(error_chain(&e)))?;
        Ok(resp.status().is_success().then_some(resp))
    }

    /// Ends the target's session (best effort).
    pub async fn close(&self) {
        if self.session.is_some() {
            let _ = self
                .request(
                    reqwest::Method::DELETE,
                    "application/json, text/event-stream",
                )
                .send()
                .await;
        }
    }
}

/// Relays a GET stream's messages to `side` until either end closes.
pub async fn pump(mut resp: reqwest::Response, side: &Side) {
    let mut parser = SseParser::new();
    loop {
        let chunk = tokio::select! {
            c = next_chunk(&mut resp) => c,
            () = side.closed() => return,
        };
        let Ok(Some(chunk)) = chunk else { return };
        let Ok(events) = parser.push(&chunk) else {
            return;
        };
        for ev in events {
            if let Ok(m) = serde_json::from_str::<Value>(&ev.data) {
                side.send(m);
            }
        }
    }
}

/// The `id` field of a raw SSE event block.
fn event_id(raw: &[u8]) -> Option<String> {
    std::str::from_utf8(raw).ok()?.lines().find_map(|l| {
        l.strip_prefix("id:").map(|v| {
            v.strip_prefix(' ')
                .unwrap_or(v)
                .trim_end_matches('\r')
                .to_string()
        })
    })
}

async fn next_chunk(resp: &mut reqwest::Response) -> Result<Option<bytes::Bytes>, TargetError> {
    resp.chunk()
        .await
        .map_err(|e| TargetError::Unreachable(error_chain(&e)))
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, TargetError> {
    let mut out = Vec::new();
    while let Some(c) = next_chunk(&mut resp).await? {
        if out.len() + c.len() > MAX_ANSWER {
            return Err(TargetError::Protocol("the answer is too large".into()));
        }
        out.extend_from_slice(&c);
    }
    Ok(out)
}

/// A reqwest error with its causes (reqwest's own message hides them).
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
