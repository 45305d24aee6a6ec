//! The virtual MCP server: answers one client message for a backend of several targets.
//! `initialize` fans out and merges; lists fan out and merge under target-prefixed names;
//! calls route by prefix; answers to server-initiated requests go back to the target that
//! asked. Transports (Streamable HTTP, legacy SSE) are the caller's business.

mod lists;
mod relay;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::UnboundedReceiver;

use super::McpIr;
use super::jsonrpc::{self, Kind};
use super::names::Listed;
use super::session::{SessionState, sealer};
use super::target::{self, Conn, Side, TargetError};

pub use relay::{Relay, subscribe};

/// Protocol versions the gateway speaks with clients, newest first.
pub const VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];
/// The version assumed when a client names none (the spec's default for HTTP).
pub const DEFAULT_VERSION: &str = "2025-03-26";

/// What one request may do, decided by the caller's policies: `true` lets the operation
/// described by the `mcp` attributes through.
pub type Authorize<'a> = &'a (dyn Fn(&Value) -> bool + Sync);

/// One request's view of the backend.
pub struct Request<'a> {
    pub ir: &'a Arc<McpIr>,
    /// Scope of sealed ids (the backend key).
    pub scope: &'a str,
    /// `None`: no rule reads `mcp`, everything is allowed (and no attributes are built).
    pub authorize: Option<Authorize<'a>>,
    pub timeout: Option<Duration>,
    /// The client takes an SSE answer.
    pub stream_ok: bool,
}

impl Request<'_> {
    /// Whether the rules let `method` touch the `rtype` named `name` of `target` (a call, or
    /// one item of a listing).
    pub fn allows(&self, method: &str, target: &str, rtype: &str, name: &str) -> bool {
        self.authorize
            .is_none_or(|f| f(&lists::attrs(method, target, rtype, name)))
    }
}

/// The answer to one client message.
pub enum Reply {
    /// A JSON-RPC answer; on `initialize`, the new session id.
    Json(Value, Option<String>),
    /// A notification or response was taken (202).
    Accepted,
    /// Messages as they come, the answer last.
    Stream(UnboundedReceiver<Value>),
    /// HTTP 400 with this JSON-RPC error (missing session id).
    BadRequest(Value),
    /// HTTP 404 with this JSON-RPC error (unknown, expired or tampered session id).
    NoSession(Value),
}

/// What a message was about, for metrics: method, resource type, target, resource name.
#[derive(Debug, Default, Clone)]
pub struct Op {
    pub method: String,
    pub resource_type: &'static str,
    pub server: String,
    pub resource: String,
}

/// A session for the span of one request: the sealed state and the connections opened.
pub struct Sess {
    pub state: SessionState,
    /// Stateless mode: target sessions opened for this request only.
    ephemeral: bool,
    conns: tokio::sync::Mutex<Vec<Option<Arc<Conn>>>>,
}

impl Sess {
    fn new(state: SessionState, ephemeral: bool, n: usize) -> Self {
        Self {
            state,
            ephemeral,
            conns: tokio::sync::Mutex::new(vec![None; n]),
        }
    }

    /// Index in the session's target list of the backend's target `idx`.
    fn joined(&self, ir: &McpIr, idx: usize) -> Option<usize> {
        let name = &ir.targets.get(idx)?.name;
        self.state.targets.iter().position(|t| &t.name == name)
    }

    /// Backend target indexes of the session's targets.
    pub fn members(&self, ir: &McpIr) -> Vec<usize> {
        self.state
            .targets
            .iter()
            .filter_map(|t| ir.targets.iter().position(|x| x.name == t.name))
            .collect()
    }

    /// The connection to target `idx`, resumed (or, stateless, opened) on first use.
    pub async fn conn(
        &self,
        ir: &McpIr,
        idx: usize,
        timeout: Option<Duration>,
    ) -> Result<Arc<Conn>, TargetError> {
        if let Some(c) = self.conns.lock().await.get(idx).and_then(Clone::clone) {
            return Ok(c);
        }
        // Opened without the lock: a fan-out opens its targets side by side.
        let t = &ir.targets[idx];
        let c = if self.ephemeral {
            let (c, answer, _) = t
                .open(&self.state.init_params(), &self.state.version, timeout)
                .await?;
            if answer.get("result").is_none() {
                return Err(TargetError::Protocol("initialize failed".into()));
            }
            if let Conn::Http(_) = c {
                c.send(&jsonrpc::notification("notifications/initialized", None))
                    .await?;
            }
            c
        } else {
            let j = self
                .joined(ir, idx)
                .ok_or_else(|| TargetError::Unreachable("not part of this session".into()))?;
            t.resume(&self.state, &self.state.targets[j], timeout)
                .await?
        };
        let c = Arc::new(c);
        let mut conns = self.conns.lock().await;
        match conns.get(idx).and_then(Clone::clone) {
            // Another caller of this request got there first; keep one.
            Some(first) => {
                if self.ephemeral {
                    target::close(&c).await;
                }
                Ok(first)
            }
            None => {
                conns[idx] = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Sends a request to target `idx`; a Streamable HTTP target that forgot its session
    /// gets a new one and the request once more.
    pub async fn call(
        &self,
        ir: &McpIr,
        idx: usize,
        msg: &Value,
        side: &Side,
        timeout: Option<Duration>,
    ) -> Result<Value, TargetError> {
        let c = self.conn(ir, idx, timeout).await?;
        match c.call(msg, side).await {
            Err(TargetError::SessionGone) if !self.ephemeral => {
                let t = &ir.targets[idx];
                tracing::info!(target = %t.name, "MCP target forgot the session; opening a new one");
                let c = Arc::new(match &*c {
                    Conn::Http(_) => t.reopen(&self.state, timeout).await?,
                    Conn::Live(_) => {
                        target::forget_one(self.state.uid, &t.name);
                        let j = self.joined(ir, idx).unwrap_or_default();
                        t.resume(&self.state, &self.state.targets[j], timeout)
                            .await?
                    }
                });
                self.conns.lock().await[idx] = Some(c.clone());
                c.call(msg, side).await.map(|a| a.msg)
            }
            r => r.map(|a| a.msg),
        }
    }

    /// Sends a notification or response to target `idx`.
    pub async fn send(
        &self,
        ir: &McpIr,
        idx: usize,
        msg: &Value,
        timeout: Option<Duration>,
    ) -> Result<(), TargetError> {
        self.conn(ir, idx, timeout).await?.send(msg).await
    }

    /// Stateless mode: ends the target sessions this request opened.
    pub async fn finish(&self) {
        if !self.ephemeral {
            return;
        }
        let conns = std::mem::take(&mut *self.conns.lock().await);
        for c in conns.into_iter().flatten() {
            target::close(&c).await;
        }
    }
}

/// Opens the session named by a client's `Mcp-Session-Id` (or, stateless, a fresh one).
pub fn session(req: &Request<'_>, id: Option<&str>, msg: &Value) -> Result<Sess, Reply> {
    let n = req.ir.targets.len();
    if req.ir.stateless {
        // Every target takes part; each request opens (and closes) the ones it needs.
        let state = SessionState {
            uid: rand::random(),
            targets: req
                .ir
                .targets
                .iter()
                .map(|t| super::session::TargetSession {
                    name: t.name.clone(),
                    session: None,
                    endpoint: None,
                })
                .collect(),
            version: DEFAULT_VERSION.to_string(),
            init: super::session::raw(&default_init()),
        };
        return Ok(Sess::new(state, true, n));
    }
    let rpc_id = jsonrpc::id_of(msg).clone();
    let Some(id) = id else {
        return Err(Reply::BadRequest(jsonrpc::error(
            rpc_id,
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required (send initialize first)",
        )));
    };
    match sealer().open::<SessionState>(id, req.scope) {
        Some(state) => Ok(Sess::new(state, false, n)),
        None => Err(Reply::NoSession(jsonrpc::error(
            rpc_id,
            jsonrpc::INVALID_REQUEST,
            "Session not found: the Mcp-Session-Id is unknown or expired; initialize again",
        ))),
    }
}

fn default_init() -> Value {
    json!({
        "protocolVersion": DEFAULT_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "agora", "version": env!("CARGO_PKG_VERSION")},
    })
}

/// Answers one client message. `session_id` is the client's `Mcp-Session-Id`.
pub async fn handle(
    req: &Request<'_>,
    session_id: Option<&str>,
    msg: Value,
    kind: Kind,
) -> (Reply, Op) {
    let method = jsonrpc::method(&msg).to_string();
    let mut op = Op {
        method: method.clone(),
        ..Op::default()
    };
    if kind == Kind::Request && method == "initialize" {
        return (initialize(req, &msg).await, op);
    }
    if kind == Kind::Request && method == "ping" {
        return (
            Reply::Json(
                jsonrpc::result(jsonrpc::id_of(&msg).clone(), json!({})),
                None,
            ),
            op,
        );
    }
    let sess = match session(req, session_id, &msg) {
        Ok(s) => s,
        Err(r) => return (r, op),
    };
    let reply = match kind {
        Kind::Response => {
            op.method = "response".into();
            relay::answer(req, &sess, msg, &mut op).await
        }
        Kind::Notification => {
            fan_out_notification(req, &sess, &msg).await;
            Reply::Accepted
        }
        Kind::Request => request(req, sess, msg, &mut op).await,
    };
    (reply, op)
}

async fn request(req: &Request<'_>, sess: Sess, msg: Value, op: &mut Op) -> Reply {
    let id = jsonrpc::id_of(&msg).clone();
    let method = op.method.clone();
    if let Some(what) = Listed::from_method(&method) {
        op.resource_type = what.resource_type();
        let r = lists::list(req, &sess, &msg, what).await;
        sess.finish().await;
        return Reply::Json(r, None);
    }
    if method == "logging/setLevel" {
        let r = broadcast(req, &sess, &msg).await;
        sess.finish().await;
        return Reply::Json(r, None);
    }
    let routed = match lists::route(req, &sess, msg).await {
        Ok(r) => r,
        Err(e) => {
            sess.finish().await;
            return Reply::Json(e, None);
        }
    };
    let Some((idx, out, attrs)) = routed else {
        sess.finish().await;
        return Reply::Json(
            jsonrpc::error(
                id,
                jsonrpc::METHOD_NOT_FOUND,
                &format!("Method not found: {method}"),
            ),
            None,
        );
    };
    let target = req.ir.targets[idx].name.clone();
    op.server = target.clone();
    op.resource_type = attrs.0;
    op.resource = attrs.1.clone();
    if !req.allows(&method, &target, attrs.0, &attrs.1) {
        sess.finish().await;
        return Reply::Json(
            jsonrpc::error(
                id,
                jsonrpc::ACCESS_DENIED,
                &format!("access denied: {} {:?} is not allowed", attrs.0, attrs.1),
            ),
            None,
        );
    }
    relay::forward(req, sess, idx, out).await
}

/// `initialize`: opens a session with every target at once and merges their answers.
async fn initialize(req: &Request<'_>, msg: &Value) -> Reply {
    let id = jsonrpc::id_of(msg).clone();
    let ir = req.ir;
    let params = jsonrpc::params(msg).cloned().unwrap_or_else(|| json!({}));
    let asked = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_VERSION);
    let version = if VERSIONS.contains(&asked) {
        asked
    } else {
        VERSIONS[1]
    };
    let opened = futures_util::future::join_all(
        ir.targets
            .iter()
            .map(|t| t.open(&params, version, req.timeout)),
    )
    .await;
    let mut state = SessionState {
        uid: rand::random(),
        targets: Vec::new(),
        version: version.to_string(),
        init: super::session::raw(&params),
    };
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut opened_conns = Vec::new();
    for (t, r) in ir.targets.iter().zip(opened) {
        match r {
            Ok((conn, answer, ts)) => match answer.get("result") {
                Some(res) => {
                    results.push((t.name.clone(), res.clone()));
                    state.targets.push(ts);
                    opened_conns.push((t.name.clone(), conn));
                }
                None => {
                    let e = answer.get("error").cloned().unwrap_or(Value::Null);
                    failures.push(format!("{}: {}", t.name, e));
                    target::close(&conn).await;
                }
            },
            Err(e) => failures.push(format!("{}: {e}", t.name)),
        }
    }
    if !failures.is_empty() {
        tracing::warn!(failures = ?failures, "MCP targets failed to initialize");
    }
    if (!failures.is_empty() && !ir.fail_open) || results.is_empty() {
        for (_, c) in &opened_conns {
            target::close(c).await;
        }
        return Reply::Json(
            jsonrpc::error(
                id,
                jsonrpc::TARGET_ERROR,
                &format!("MCP targets failed to initialize: {}", failures.join("; ")),
            ),
            None,
        );
    }
    let merged = merge_init(ir, &results, version);
    if ir.stateless {
        for (_, c) in &opened_conns {
            target::close(c).await;
        }
        return Reply::Json(jsonrpc::result(id, merged), None);
    }
    for (name, c) in opened_conns {
        if let Conn::Live(l) = c {
            target::remember((state.uid, name), l);
        }
    }
    let sid = sealer().seal(&state, req.scope);
    Reply::Json(jsonrpc::result(id, merged), Some(sid))
}

/// One target's answer as is (its name, instructions); several merged: every capability
/// any target has, the gateway's name, the instructions of each under its target's name.
fn merge_init(ir: &McpIr, results: &[(String, Value)], version: &str) -> Value {
    if ir.targets.len() == 1 && !ir.naming.prefix {
        let mut r = results[0].1.clone();
        r["protocolVersion"] = version.into();
        return r;
    }
    let mut caps = serde_json::Map::new();
    let mut instructions = Vec::new();
    for (name, r) in results {
        if let Some(c) = r.get("capabilities").and_then(Value::as_object) {
            for (k, v) in c {
                let slot = caps.entry(k.clone()).or_insert_with(|| json!({}));
                if let (Some(slot), Some(v)) = (slot.as_object_mut(), v.as_object()) {
                    for (f, x) in v {
                        let on = x.as_bool().unwrap_or(false)
                            || slot.get(f).and_then(Value::as_bool).unwrap_or(false);
                        if x.is_boolean() {
                            slot.insert(f.clone(), on.into());
                        } else {
                            slot.entry(f.clone()).or_insert_with(|| x.clone());
                        }
                    }
                }
            }
        }
        if let Some(i) = r.get("instructions").and_then(Value::as_str) {
            instructions.push(format!("{name}: {i}"));
        }
    }
    let mut out = json!({
        "protocolVersion": version,
        "capabilities": caps,
        "serverInfo": {"name": "agora", "version": env!("CARGO_PKG_VERSION")},
    });
    if !instructions.is_empty() {
        out["instructions"] = instructions.join("\n\n").into();
    }
    out
}

/// Ends a session: every target's session is closed (DELETE, or the process / stream
/// stopped) and this replica forgets it.
pub async fn close(req: &Request<'_>, sess: &Sess) {
    let ir = req.ir;
    for i in sess.members(ir) {
        // Live targets are only closed where they live (below); no need to open them.
        if matches!(
            ir.targets[i].kind,
            target::TargetKind::Http { sse: false, .. }
        ) && let Ok(c) = sess.conn(ir, i, req.timeout).await
        {
            target::close(&c).await;
        }
    }
    target::forget(sess.state.uid);
}

/// Notifications from the client go to every target of the session (`cancelled` names a
/// request only one of them knows; the others ignore it).
async fn fan_out_notification(req: &Request<'_>, sess: &Sess, msg: &Value) {
    let ir = req.ir;
    let members = sess.members(ir);
    let sends = members.iter().map(|&i| sess.send(ir, i, msg, req.timeout));
    for (i, r) in members
        .iter()
        .zip(futures_util::future::join_all(sends).await)
    {
        if let Err(e) = r {
            tracing::debug!(target = %ir.targets[*i].name, error = %e, "MCP notification not delivered");
        }
    }
    sess.finish().await;
}

/// A request every target gets (`logging/setLevel`); the first error wins in FailClosed.
async fn broadcast(req: &Request<'_>, sess: &Sess, msg: &Value) -> Value {
    let ir = req.ir;
    let id = jsonrpc::id_of(msg).clone();
    let members = sess.members(ir);
    let none = Side::none();
    let calls = members
        .iter()
        .map(|&i| sess.call(ir, i, msg, &none, req.timeout));
    for (i, r) in members
        .iter()
        .zip(futures_util::future::join_all(calls).await)
    {
        let failed = match &r {
            Ok(a) if a.get("error").is_some() => Some(a["error"].to_string()),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        if let Some(f) = failed
            && !ir.fail_open
        {
            return jsonrpc::error(
                id,
                jsonrpc::TARGET_ERROR,
                &format!("target {}: {f}", ir.targets[*i].name),
            );
        }
    }
    jsonrpc::result(id, json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::names::Naming;
    use crate::mcp::target::{TargetIr, TargetKind};

    fn ir(names: &[&str], prefix: bool) -> McpIr {
        McpIr {
            targets: names
                .iter()
                .map(|n| TargetIr {
                    name: (*n).into(),
                    kind: TargetKind::Stdio {
                        cmd: "x".into(),
                        args: vec![],
                        env: Default::default(),
                    },
                })
                .collect(),
            naming: Naming::new(prefix, names.iter().map(|n| n.to_string()).collect()),
            stateless: false,
            fail_open: false,
        }
    }

    #[test]
    fn one_target_answers_as_itself_several_merge() {
        let one = json!({"protocolVersion": "2025-03-26", "capabilities": {"tools": {}},
            "serverInfo": {"name": "time", "version": "1"}, "instructions": "ask"});
        let r = merge_init(
            &ir(&["time"], false),
            &[("time".into(), one.clone())],
            "2025-06-18",
        );
        assert_eq!(r["serverInfo"]["name"], "time");
        assert_eq!(r["protocolVersion"], "2025-06-18");
        let two = json!({"capabilities": {"tools": {"listChanged": true}, "resources": {"subscribe": true}},
            "instructions": "read docs"});
        let r = merge_init(
            &ir(&["time", "docs"], true),
            &[("time".into(), one), ("docs".into(), two)],
            "2025-06-18",
        );
        assert_eq!(r["serverInfo"]["name"], "agora");
        assert_eq!(
            r["capabilities"],
            json!({"tools": {"listChanged": true}, "resources": {"subscribe": true}})
        );
        assert_eq!(r["instructions"], "time: ask\n\ndocs: read docs");
    }

    #[test]
    fn sessions_must_be_named_and_sealed_for_this_backend() {
        let ir = Arc::new(ir(&["time"], false));
        let req = Request {
            ir: &ir,
            scope: "backend/a",
            authorize: None,
            timeout: None,
            stream_ok: false,
        };
        let msg = jsonrpc::request(1.into(), "tools/list", json!({}));
        assert!(matches!(
            session(&req, None, &msg),
            Err(Reply::BadRequest(_))
        ));
        assert!(matches!(
            session(&req, Some("x"), &msg),
            Err(Reply::NoSession(_))
        ));
        let state = SessionState {
            uid: 1,
            targets: vec![],
            version: DEFAULT_VERSION.into(),
            init: crate::mcp::session::raw(&json!({})),
        };
        let other = sealer().seal(&state, "backend/b");
        assert!(matches!(
            session(&req, Some(&other), &msg),
            Err(Reply::NoSession(_))
        ));
        let mine = sealer().seal(&state, "backend/a");
        assert!(session(&req, Some(&mine), &msg).is_ok());
    }

    #[tokio::test]
    async fn completions_and_subscriptions_route_by_prefix() {
        let ir = Arc::new(ir(&["time", "docs"], true));
        let req = Request {
            ir: &ir,
            scope: "backend/a",
            authorize: None,
            timeout: None,
            stream_ok: false,
        };
        let targets = ["time", "docs"]
            .iter()
            .map(|n| crate::mcp::session::TargetSession {
                name: (*n).into(),
                session: None,
                endpoint: None,
            })
            .collect();
        let state = SessionState {
            uid: 1,
            targets,
            version: DEFAULT_VERSION.into(),
            init: crate::mcp::session::raw(&json!({})),
        };
        let sess = Sess::new(state, false, 2);
        let call = |method: &str, params: Value| jsonrpc::request(1.into(), method, params);
        let prompt = call(
            "completion/complete",
            json!({"ref": {"type": "ref/prompt", "name": "docs_greet"}, "argument": {"name": "n", "value": "B"}}),
        );
        let (idx, out, what) = lists::route(&req, &sess, prompt)
            .await
            .expect("ok")
            .expect("routed");
        assert_eq!((idx, what), (1, ("prompt", "greet".to_string())));
        assert_eq!(out["params"]["ref"]["name"], "greet");
        assert_eq!(out["params"]["argument"]["value"], "B");
        let template = call(
            "completion/complete",
            json!({"ref": {"type": "ref/resource", "uri": "time+file:///{x}"}, "argument": {"name": "x", "value": ""}}),
        );
        let (idx, out, _) = lists::route(&req, &sess, template)
            .await
            .expect("ok")
            .expect("routed");
        assert_eq!(
            (idx, out["params"]["ref"]["uri"].clone()),
            (0, json!("file:///{x}"))
        );
        let sub = call("resources/subscribe", json!({"uri": "docs+mem://a"}));
        let (idx, out, _) = lists::route(&req, &sess, sub)
            .await
            .expect("ok")
            .expect("routed");
        assert_eq!((idx, out["params"]["uri"].clone()), (1, json!("mem://a")));
        let unknown = call("resources/unsubscribe", json!({"uri": "mem://a"}));
        let e = lists::route(&req, &sess, unknown)
            .await
            .expect_err("no prefix");
        assert_eq!(e["error"]["code"], jsonrpc::INVALID_PARAMS);
        let other = call("tasks/list", json!({}));
        assert!(
            lists::route(&req, &sess, other)
                .await
                .expect("ok")
                .is_none()
        );
    }
}
