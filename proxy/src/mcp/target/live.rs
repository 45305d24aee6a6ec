//! Targets held open for the life of a session: a spawned process speaking MCP over
//! stdin/stdout, or a legacy SSE server (a GET stream carrying every answer, POSTs to the
//! endpoint it names). One reader task matches answers to waiting requests by a
//! gateway-assigned id; everything else goes to the request in flight, else to the client's
//! GET stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agora_providers::sse::SseParser;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::oneshot;

use super::http::{client, error_chain};
use super::{Side, TargetError};
use crate::mcp::jsonrpc::{self, Kind};
use crate::mcp::lock;

/// How long a live target may take to answer one request.
const CALL_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest line a stdio target may write.
const MAX_LINE: usize = 16 * 1024 * 1024;

enum Out {
    Stdio(tokio::sync::Mutex<tokio::process::ChildStdin>),
    Sse { post_url: String },
}

/// A live connection to one target of one session.
pub struct Live {
    out: Out,
    pending: Mutex<HashMap<u64, oneshot::Sender<Value>>>,
    /// The id each request in flight was sent under, by the caller's id (as JSON), so a
    /// cancellation names the request the target knows.
    sent_as: Mutex<HashMap<String, u64>>,
    /// Where unsolicited messages go: the newest request in flight, else the GET stream.
    sinks: Mutex<Vec<(u64, Side)>>,
    next: AtomicU64,
    alive: AtomicBool,
    pub last_used: AtomicU64,
    /// Stops the reader and, for stdio, kills the process.
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Live {
    fn new(out: Out, stop: oneshot::Sender<()>) -> Arc<Live> {
        Arc::new(Live {
            out,
            pending: Mutex::default(),
            sent_as: Mutex::default(),
            sinks: Mutex::default(),
            next: AtomicU64::new(1),
            alive: AtomicBool::new(true),
            last_used: AtomicU64::new(now()),
            stop: Mutex::new(Some(stop)),
        })
    }

    pub fn alive(&self) -> bool {
        self.alive.load(Ordering::Relaxed)
    }

    /// Spawns `cmd` and reads its stdout.
    pub fn spawn(
        cmd: &str,
        args: &[String],
        env: &std::collections::BTreeMap<String, String>,
    ) -> Result<Arc<Live>, TargetError> {
        let mut child = tokio::process::Command::new(cmd)
            .args(args)
            .envs(env)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TargetError::Unreachable(format!("cannot start {cmd:?}: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(TargetError::Unreachable("no stdio pipes".into()));
        };
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let live = Live::new(Out::Stdio(tokio::sync::Mutex::new(stdin)), stop_tx);
        let me = live.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                let mut limited = (&mut lines).take(MAX_LINE as u64);
                let read = tokio::select! {
                    r = limited.read_until(b'\n', &mut line) => r,
                    _ = &mut stop_rx => break,
                };
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Ok(m) = serde_json::from_slice::<Value>(&line) {
                            me.dispatch(m);
                        }
                    }
                }
            }
            me.died();
            let _ = child.kill().await;
        });
        Ok(live)
    }

    /// Opens a legacy SSE session at `url` (waits for its `endpoint` event).
    pub async fn connect_sse(url: &str, host: Option<&str>) -> Result<Arc<Live>, TargetError> {
        let mut rb = client().get(url).header("accept", "text/event-stream");
        if let Some(h) = host {
            rb = rb.header("host", h);
        }
        let mut resp = rb
            .send()
            .await
            .map_err(|e| TargetError::Unreachable(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(TargetError::Status(resp.status().as_u16(), String::new()));
        }
        let mut parser = SseParser::new();
        let mut early = Vec::new();
        let endpoint = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let Some(chunk) = resp
                    .chunk()
                    .await
                    .map_err(|e| TargetError::Unreachable(error_chain(&e)))?
                else {
                    return Err(TargetError::Protocol("the SSE stream ended".into()));
                };
                let events = parser
                    .push(&chunk)
                    .map_err(|e| TargetError::Protocol(e.to_string()))?;
                let mut found = None;
                for ev in events {
                    if ev.event.as_deref() == Some("endpoint") && found.is_none() {
                        found = Some(ev.data);
                    } else {
                        early.push(ev);
                    }
                }
                if let Some(e) = found {
                    return Ok(e);
                }
            }
        })
        .await
        .map_err(|_| TargetError::Protocol("no endpoint event within 10s".into()))??;
        let post_url = reqwest::Url::parse(url)
            .and_then(|u| u.join(endpoint.trim()))
            .map_err(|e| TargetError::Protocol(format!("bad endpoint {endpoint:?}: {e}")))?
            .to_string();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let live = Live::new(Out::Sse { post_url }, stop_tx);
        let me = live.clone();
        tokio::spawn(async move {
            for ev in early {
                me.event(&ev.data);
            }
            loop {
                let chunk = tokio::select! {
                    c = resp.chunk() => c,
                    _ = &mut stop_rx => break,
                };
                let Ok(Some(chunk)) = chunk else { break };
                let Ok(events) = parser.push(&chunk) else {
                    break;
                };
                for ev in events {
                    if ev.event.as_deref().is_none_or(|e| e == "message") {
                        me.event(&ev.data);
                    }
                }
            }
            me.died();
        });
        Ok(live)
    }

    fn event(&self, data: &str) {
        if let Ok(m) = serde_json::from_str::<Value>(data) {
            self.dispatch(m);
        }
    }

    fn dispatch(&self, m: Value) {
        if jsonrpc::kind(&m) == Ok(Kind::Response)
            && let Some(id) = jsonrpc::id_of(&m).as_u64()
            && let Some(tx) = lock(&self.pending).remove(&id)
        {
            let _ = tx.send(m);
            return;
        }
        let sinks = lock(&self.sinks);
        if let Some((_, side)) = sinks.iter().rev().find(|(_, s)| !s.is_closed()) {
            side.send(m);
        }
    }

    fn died(&self) {
        self.alive.store(false, Ordering::Relaxed);
        // Waiting requests see their sender dropped.
        lock(&self.pending).clear();
        lock(&self.sinks).clear();
    }

    async fn write(&self, m: &Value) -> Result<(), TargetError> {
        self.last_used.store(now(), Ordering::Relaxed);
        if !self.alive() {
            return Err(TargetError::SessionGone);
        }
        match &self.out {
            Out::Stdio(stdin) => {
                let mut line = serde_json::to_vec(m).unwrap_or_default();
                line.push(b'\n');
                let mut w = stdin.lock().await;
                w.write_all(&line)
                    .await
                    .map_err(|e| TargetError::Unreachable(e.to_string()))?;
                w.flush()
                    .await
                    .map_err(|e| TargetError::Unreachable(e.to_string()))
            }
            Out::Sse { post_url } => {
                let resp = client()
                    .post(post_url)
                    .header("content-type", "application/json")
                    .body(serde_json::to_vec(m).unwrap_or_default())
                    .send()
                    .await
                    .map_err(|e| TargetError::Unreachable(error_chain(&e)))?;
                if resp.status().is_success() {
                    Ok(())
                } else if resp.status() == reqwest::StatusCode::NOT_FOUND {
                    Err(TargetError::SessionGone)
                } else {
                    Err(TargetError::Status(resp.status().as_u16(), String::new()))
                }
            }
        }
    }

    /// Sends a request under a gateway-assigned id and waits for the answer (given back
    /// under the caller's id). Unsolicited messages meanwhile go to `side`.
    pub async fn call(&self, msg: &Value, side: &Side) -> Result<Value, TargetError> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let mut out = msg.clone();
        out["id"] = id.into();
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let caller_id = jsonrpc::id_of(msg).to_string();
        lock(&self.sent_as).insert(caller_id.clone(), id);
        if side.is_open() {
            lock(&self.sinks).push((id, side.clone()));
        }
        let result = async {
            self.write(&out).await?;
            match tokio::time::timeout(CALL_TIMEOUT, rx).await {
                Ok(Ok(mut answer)) => {
                    answer["id"] = jsonrpc::id_of(msg).clone();
                    Ok(answer)
                }
                Ok(Err(_)) => Err(TargetError::Unreachable("the target went away".into())),
                Err(_) => Err(TargetError::Protocol("no answer within 300s".into())),
            }
        }
        .await;
        lock(&self.pending).remove(&id);
        lock(&self.sent_as).remove(&caller_id);
        lock(&self.sinks).retain(|(k, _)| *k != id);
        result
    }

    /// Sends a notification or a response. A cancellation of a request in flight names it
    /// by the id it was sent under; one of a request this target never got is dropped.
    pub async fn send(&self, msg: &Value) -> Result<(), TargetError> {
        if jsonrpc::method(msg) == "notifications/cancelled" {
            let Some(r) = msg.pointer("/params/requestId") else {
                return Ok(());
            };
            let Some(id) = lock(&self.sent_as).get(&r.to_string()).copied() else {
                return Ok(());
            };
            let mut out = msg.clone();
            out["params"]["requestId"] = id.into();
            return self.write(&out).await;
        }
        self.write(msg).await
    }

    /// Makes `side` the receiver of unsolicited messages while no request is in flight,
    /// until it closes.
    pub async fn stream(&self, side: &Side) {
        lock(&self.sinks).insert(0, (0, side.clone()));
        side.closed().await;
        lock(&self.sinks).retain(|(_, s)| !s.is_closed());
    }

    /// Stops the reader (and the process).
    pub fn close(&self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
        self.alive.store(false, Ordering::Relaxed);
    }
}

pub(super) fn now() -> u64 {
    agora_policies::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `cat` as the target: every message comes back as if the target had sent it.
    #[tokio::test]
    async fn requests_go_under_our_ids_and_cancellations_follow_them() {
        let live = Live::spawn("cat", &[], &Default::default()).expect("cat runs");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let side = Side::new(tx, 3);
        let call = tokio::spawn({
            let live = live.clone();
            async move {
                let m =
                    json!({"jsonrpc": "2.0", "id": "c-1", "method": "tools/call", "params": {}});
                live.call(&m, &side).await
            }
        });
        // The request comes back as a request (not an answer): it goes to the side.
        let (idx, echoed) = rx.recv().await.expect("echo");
        assert_eq!(idx, 3);
        let sent_as = echoed["id"].clone();
        assert!(sent_as.is_u64(), "{echoed}");
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": "c-1", "reason": "user"}});
        live.send(&cancel).await.expect("sent");
        let (_, c) = rx.recv().await.expect("cancel echo");
        assert_eq!(c["params"]["requestId"], sent_as);
        // The answer under our id resolves the call under the caller's.
        live.send(&json!({"jsonrpc": "2.0", "id": sent_as, "result": {"ok": true}}))
            .await
            .expect("sent");
        let answer = call.await.expect("joined").expect("answered");
        assert_eq!(
            answer,
            json!({"jsonrpc": "2.0", "id": "c-1", "result": {"ok": true}})
        );
        // A cancellation of nothing in flight is dropped.
        live.send(&cancel).await.expect("dropped quietly");
        live.close();
    }
}
