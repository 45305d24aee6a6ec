//! The legacy HTTP+SSE transport (MCP 2024-11-05) for old clients: `GET …/sse` opens the
//! stream and names an endpoint (`…/message?sessionId=…`); messages POSTed there are
//! answered on the stream. The stream lives on one replica, so its session table is local.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use bytes::Bytes;
use pingora::proxy::Session;
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::super::RequestCtx;
use super::{RequestView, observe, pump, read_message, request, write_json, write_sse_head};
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::server::{self, Reply};
use crate::mcp::{McpIr, lock};
use crate::metrics::Metrics;

struct Legacy {
    tx: UnboundedSender<Value>,
    /// The sealed session, once `initialize` succeeded.
    sid: Mutex<Option<String>>,
}

fn table() -> &'static Mutex<HashMap<String, Arc<Legacy>>> {
    static T: OnceLock<Mutex<HashMap<String, Arc<Legacy>>>> = OnceLock::new();
    T.get_or_init(Mutex::default)
}

/// The `sessionId` query parameter of a legacy message POST.
pub fn session_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("sessionId="))
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Removes the stream's entry and ends its target sessions when the stream ends.
struct Guard {
    key: String,
    ir: Arc<McpIr>,
    scope: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(l) = lock(table()).remove(&self.key) else {
            return;
        };
        let Some(sid) = lock(&l.sid).take() else {
            return;
        };
        let (ir, scope) = (self.ir.clone(), self.scope.clone());
        tokio::spawn(async move {
            let req = server::Request {
                ir: &ir,
                scope: &scope,
                authorize: None,
                timeout: None,
                stream_ok: false,
            };
            if let Ok(sess) = server::session(&req, Some(&sid), &Value::Null) {
                server::close(&req, &sess).await;
            }
        });
    }
}

/// `GET …/sse`: opens the stream and announces where to POST.
pub async fn stream(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
) -> pingora::Result<bool> {
    let key = format!("{:032x}", rand::random::<u128>());
    let (tx, rx) = unbounded_channel();
    lock(table()).insert(
        key.clone(),
        Arc::new(Legacy {
            tx,
            sid: Mutex::new(None),
        }),
    );
    let _guard = Guard {
        key: key.clone(),
        ir,
        scope: scope.to_string(),
    };
    let path = session.req_header().uri.path();
    let base = path.strip_suffix("/sse").unwrap_or(path);
    let endpoint = format!("event: endpoint\ndata: {base}/message?sessionId={key}\n\n");
    write_sse_head(session, ctx).await?;
    session
        .write_response_body(Some(Bytes::from(endpoint)), false)
        .await?;
    pump(session, rx, true).await
}

/// `POST …/message?sessionId=…`: handles the message; answers travel on the stream.
pub async fn message(
    session: &mut Session,
    ctx: &mut RequestCtx,
    ir: Arc<McpIr>,
    scope: &str,
    key: String,
    metrics: &Metrics,
) -> pingora::Result<bool> {
    let Some(l) = lock(table()).get(&key).cloned() else {
        let body = jsonrpc::error(
            Value::Null,
            jsonrpc::INVALID_REQUEST,
            "Session not found: open the SSE stream first (it lives on the replica that opened it)",
        );
        return write_json(session, ctx, 404, &body, None).await;
    };
    let (msg, kind) = match read_message(session, ctx).await {
        Ok(m) => m,
        Err((status, body)) => return write_json(session, ctx, status, &body, None).await,
    };
    let started = Instant::now();
    let initialized =
        kind == Kind::Notification && jsonrpc::method(&msg) == "notifications/initialized";
    let sid = lock(&l.sid).clone();
    let view = RequestView::new(session, ctx);
    let (reply, op) = {
        let authorize = |attrs: &Value| view.allows(&ctx.policy, attrs);
        let req = request(&ir, scope, ctx, true, view.rules().then_some(&authorize));
        let out = server::handle(&req, sid.as_deref(), msg, kind).await;
        if initialized
            && let Some(sid) = &sid
            && let Ok(sess) = server::session(&req, Some(sid), &Value::Null)
            && let Some(mut rx) = server::subscribe(&req, sess).await
        {
            let tx = l.tx.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            });
        }
        out
    };
    match reply {
        Reply::Json(body, new_sid) => {
            if new_sid.is_some() {
                *lock(&l.sid) = new_sid;
            }
            let _ = l.tx.send(body);
        }
        Reply::Accepted => {}
        Reply::Stream(mut rx) => {
            let tx = l.tx.clone();
            tokio::spawn(async move {
                while let Some(m) = rx.recv().await {
                    if tx.send(m).is_err() {
                        break;
                    }
                }
            });
        }
        Reply::BadRequest(body) | Reply::NoSession(body) => {
            let _ = l.tx.send(body);
        }
    }
    observe(metrics, ctx, &op, started);
    let mut resp = pingora::http::ResponseHeader::build(202, Some(2))?;
    resp.insert_header(http::header::CONTENT_LENGTH, "8")?;
    ctx.outcome.status = 202;
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(b"Accepted")), true)
        .await?;
    Ok(true)
}
