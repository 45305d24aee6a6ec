//! Messages between a target and the client beyond request/answer: what a target says while
//! a call runs (progress, logging, its own requests such as sampling or elicitation), its
//! stream of unsolicited messages, and the client's answers to the target's requests.
//!
//! A target's request reaches the client under the id `agora:<target>:<original id as
//! JSON>`, so the client's answer finds its way back with nothing remembered here.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use super::{Op, Reply, Request, Sess};
use crate::mcp::McpIr;
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::target::Side;

const ID_PREFIX: &str = "agora:";

/// Rewrites a target's message for the client.
pub struct Relay {
    ir: Arc<McpIr>,
}

impl Relay {
    pub fn new(ir: Arc<McpIr>) -> Self {
        Self { ir }
    }

    /// The client's view of a message from target `idx`: its requests under an id that
    /// names the target, resource URIs under their exposed name.
    pub fn outbound(&self, idx: usize, mut m: Value) -> Value {
        let Some(t) = self.ir.targets.get(idx) else {
            return m;
        };
        match jsonrpc::kind(&m) {
            Ok(Kind::Request) => {
                let id = jsonrpc::id_of(&m).to_string();
                m["id"] = format!("{ID_PREFIX}{}:{id}", t.name).into();
            }
            Ok(Kind::Notification) => match jsonrpc::method(&m) {
                "notifications/resources/updated" => {
                    if let Some(Value::String(uri)) = m.pointer_mut("/params/uri") {
                        *uri = self.ir.naming.uri(&t.name, uri);
                    }
                }
                "notifications/cancelled" => {
                    if let Some(r) = m.pointer_mut("/params/requestId") {
                        *r = format!("{ID_PREFIX}{}:{r}", t.name).into();
                    }
                }
                _ => {}
            },
            _ => {}
        }
        m
    }

    /// The target and original id of a client's answer to a relayed request.
    pub fn inbound(&self, id: &Value) -> Option<(usize, Value)> {
        let rest = id.as_str()?.strip_prefix(ID_PREFIX)?;
        let (name, original) = rest.split_once(':')?;
        let idx = self.ir.targets.iter().position(|t| t.name == name)?;
        Some((idx, serde_json::from_str(original).ok()?))
    }
}

/// Sends a routed request to its target. When the client takes SSE, what the target says
/// before its answer streams through; otherwise only the answer comes back.
pub async fn forward(req: &Request<'_>, sess: Sess, idx: usize, msg: Value) -> Reply {
    let ir = req.ir.clone();
    let timeout = req.timeout;
    if !req.stream_ok {
        let id = jsonrpc::id_of(&msg).clone();
        let r = sess.call(&ir, idx, &msg, &Side::none(), timeout).await;
        sess.finish().await;
        return Reply::Json(answer_or_error(&ir, idx, id, r), None);
    }
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        let id = jsonrpc::id_of(&msg).clone();
        let relay = Relay::new(ir.clone());
        let (side_tx, mut side_rx) = unbounded_channel();
        let side = Side::new(side_tx, idx);
        let call = sess.call(&ir, idx, &msg, &side, timeout);
        tokio::pin!(call);
        let r = loop {
            tokio::select! {
                biased;
                Some((i, m)) = side_rx.recv() => send(&tx, relay.outbound(i, m)),
                r = &mut call => break r,
            }
        };
        while let Ok((i, m)) = side_rx.try_recv() {
            send(&tx, relay.outbound(i, m));
        }
        send(&tx, answer_or_error(&ir, idx, id, r));
        sess.finish().await;
    });
    Reply::Stream(rx)
}

fn send(tx: &UnboundedSender<Value>, m: Value) {
    let _ = tx.send(m);
}

fn answer_or_error(
    ir: &McpIr,
    idx: usize,
    id: Value,
    r: Result<Value, crate::mcp::target::TargetError>,
) -> Value {
    match r {
        Ok(a) => a,
        Err(e) => jsonrpc::error(
            id,
            jsonrpc::TARGET_ERROR,
            &format!("target {}: {e}", ir.targets[idx].name),
        ),
    }
}

/// The client answers a request a target made (sampling, elicitation, roots): back to that
/// target under its own id.
pub async fn answer(req: &Request<'_>, sess: &Sess, mut msg: Value, op: &mut Op) -> Reply {
    let relay = Relay::new(req.ir.clone());
    let Some((idx, original)) = relay.inbound(jsonrpc::id_of(&msg)) else {
        // Not ours to route: nothing was waiting for it.
        tracing::debug!(id = %jsonrpc::id_of(&msg), "MCP answer to an unknown request dropped");
        return Reply::Accepted;
    };
    op.server = req.ir.targets[idx].name.clone();
    msg["id"] = original;
    if let Err(e) = sess.send(req.ir, idx, &msg, req.timeout).await {
        tracing::warn!(target = %op.server, error = %e, "MCP answer not delivered");
    }
    sess.finish().await;
    Reply::Accepted
}

/// The client's GET stream: every target's unsolicited messages, merged. `None` when no
/// target offers a stream.
pub async fn subscribe(
    req: &Request<'_>,
    sess: Sess,
) -> Option<tokio::sync::mpsc::UnboundedReceiver<Value>> {
    let ir = req.ir.clone();
    let members = sess.members(&ir);
    let subs = futures_util::future::join_all(members.iter().map(|&i| {
        let sess = &sess;
        let ir = &ir;
        async move {
            let c = sess.conn(ir, i, req.timeout).await.ok()?;
            c.subscribe().await.ok().flatten().map(|s| (i, s))
        }
    }))
    .await;
    let subs: Vec<_> = subs.into_iter().flatten().collect();
    if subs.is_empty() {
        return None;
    }
    let (tx, rx) = unbounded_channel();
    let (side_tx, mut side_rx) = unbounded_channel();
    for (i, s) in subs {
        tokio::spawn(s.pump(Side::new(side_tx.clone(), i)));
    }
    drop(side_tx);
    let relay = Relay::new(ir);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                m = side_rx.recv() => match m {
                    Some((i, m)) => {
                        if tx.send(relay.outbound(i, m)).is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                () = tx.closed() => break,
            }
        }
    });
    Some(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::names::Naming;
    use crate::mcp::target::{TargetIr, TargetKind};
    use serde_json::json;

    fn ir() -> Arc<McpIr> {
        let t = |n: &str| TargetIr {
            name: n.into(),
            kind: TargetKind::Stdio {
                cmd: "x".into(),
                args: vec![],
                env: Default::default(),
            },
        };
        Arc::new(McpIr {
            targets: vec![t("time"), t("docs")],
            naming: Naming::new(true, vec!["time".into(), "docs".into()]),
            stateless: false,
            fail_open: false,
        })
    }

    #[test]
    fn target_requests_round_trip_through_the_client() {
        let r = Relay::new(ir());
        let asked =
            json!({"jsonrpc": "2.0", "id": 5, "method": "sampling/createMessage", "params": {}});
        let out = r.outbound(1, asked);
        assert_eq!(out["id"], "agora:docs:5");
        assert_eq!(r.inbound(&out["id"]), Some((1, json!(5))));
        let out = r.outbound(
            0,
            json!({"jsonrpc": "2.0", "id": "a:b", "method": "roots/list"}),
        );
        assert_eq!(r.inbound(&out["id"]), Some((0, json!("a:b"))));
        assert_eq!(r.inbound(&json!("agora:nope:1")), None);
        assert_eq!(r.inbound(&json!(7)), None);
    }

    #[test]
    fn notifications_name_resources_as_the_client_knows_them() {
        let r = Relay::new(ir());
        let n = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "file:///a"}});
        assert_eq!(r.outbound(0, n)["params"]["uri"], "time+file:///a");
        let c = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}});
        assert_eq!(r.outbound(1, c)["params"]["requestId"], "agora:docs:3");
        let p = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1}});
        assert_eq!(r.outbound(1, p.clone()), p);
    }
}
