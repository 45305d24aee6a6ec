//! The virtual server's side as an MCP client: one [`Conn`] per target and session, over
//! Streamable HTTP (stateless on our side: everything needed is in the sealed session id) or
//! a live connection (stdio process, legacy SSE) kept in a replica-local table and set up
//! again, from the client's `initialize` params, on a replica that has none.

mod http;
mod live;

pub use http::{Answer, HttpConn};
pub use live::Live;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc::UnboundedSender;

use super::session::{SessionState, TargetSession};
use super::{jsonrpc, lock};

/// A target as configured, with its addresses resolved.
#[derive(Debug)]
pub struct TargetIr {
    pub name: String,
    pub kind: TargetKind,
}

#[derive(Debug)]
pub enum TargetKind {
    Http {
        /// Addresses the host resolved to (plain HTTP); empty with TLS (the URL names the
        /// host).
        addrs: Vec<SocketAddr>,
        /// `host:port`, the Host header.
        authority: String,
        path: String,
        tls: bool,
        sse: bool,
    },
    Stdio {
        cmd: String,
        args: Vec<String>,
        env: std::collections::BTreeMap<String, String>,
    },
}

/// Why a target did not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("answered HTTP {0} {1}")]
    Status(u16, String),
    #[error("session expired")]
    SessionGone,
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Where a target's messages that are not the awaited answer go, tagged with its index.
#[derive(Clone, Default)]
pub struct Side {
    tx: Option<UnboundedSender<(usize, Value)>>,
    target: usize,
}

impl Side {
    pub fn new(tx: UnboundedSender<(usize, Value)>, target: usize) -> Self {
        Self {
            tx: Some(tx),
            target,
        }
    }

    /// A side that drops everything.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn send(&self, m: Value) {
        if let Some(tx) = &self.tx {
            let _ = tx.send((self.target, m));
        }
    }

    pub fn is_open(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| !t.is_closed())
    }

    pub fn is_closed(&self) -> bool {
        !self.is_open()
    }

    /// Resolves when the receiver is gone (never for a side that drops everything).
    pub async fn closed(&self) {
        match &self.tx {
            Some(tx) => tx.closed().await,
            None => std::future::pending().await,
        }
    }
}

/// One target's connection within a session.
pub enum Conn {
    Http(HttpConn),
    Live(Arc<Live>),
}

impl Conn {
    pub async fn call(&self, msg: &Value, side: &Side) -> Result<Answer, TargetError> {
        match self {
            Conn::Http(h) => h.call(msg, side).await,
            Conn::Live(l) => l
                .call(msg, side)
                .await
                .map(|msg| Answer { msg, session: None }),
        }
    }

    pub async fn send(&self, msg: &Value) -> Result<(), TargetError> {
        match self {
            Conn::Http(h) => h.send(msg).await,
            Conn::Live(l) => l.send(msg).await,
        }
    }

    /// Opens the target's stream of unsolicited messages; `None` if it offers none.
    pub async fn subscribe(&self) -> Result<Option<Subscription>, TargetError> {
        match self {
            Conn::Http(h) => Ok(h.subscribe().await?.map(Subscription::Http)),
            Conn::Live(l) => Ok(Some(Subscription::Live(l.clone()))),
        }
    }
}

/// An open stream of a target's unsolicited messages.
pub enum Subscription {
    Http(reqwest::Response),
    Live(Arc<Live>),
}

impl Subscription {
    /// Relays messages to `side` until either end closes.
    pub async fn pump(self, side: Side) {
        match self {
            Subscription::Http(r) => http::pump(r, &side).await,
            Subscription::Live(l) => l.stream(&side).await,
        }
    }
}

impl TargetIr {
    /// Addresses a session may pin, as `ip:port` strings.
    fn pick_endpoint(&self, pinned: Option<&str>) -> Option<SocketAddr> {
        let TargetKind::Http { addrs, .. } = &self.kind else {
            return None;
        };
        pinned
            .and_then(|p| p.parse().ok())
            .filter(|a| addrs.contains(a))
            .or_else(|| (!addrs.is_empty()).then(|| addrs[rand::random_range(0..addrs.len())]))
    }

    fn http_conn(
        &self,
        endpoint: Option<SocketAddr>,
        session: Option<String>,
        version: &str,
        timeout: Option<Duration>,
    ) -> Option<HttpConn> {
        let TargetKind::Http {
            authority,
            path,
            tls,
            ..
        } = &self.kind
        else {
            return None;
        };
        let (url, host) = match (endpoint, tls) {
            (Some(a), false) => (format!("http://{a}{path}"), Some(authority.clone())),
            (_, true) => (format!("https://{authority}{path}"), None),
            (None, false) => (format!("http://{authority}{path}"), None),
        };
        Some(HttpConn {
            url,
            host,
            session,
            version: version.to_string(),
            timeout,
        })
    }

    /// Opens a new session with this target: `initialize` with the client's params, then
    /// `notifications/initialized` for live targets (Streamable HTTP targets get the
    /// client's own when it arrives). Returns the connection, the target's result and what
    /// the sealed session must remember.
    pub async fn open(
        &self,
        init: &Value,
        version: &str,
        timeout: Option<Duration>,
    ) -> Result<(Conn, Value, TargetSession), TargetError> {
        let msg = jsonrpc::request(0.into(), "initialize", init.clone());
        let mut ts = TargetSession {
            name: self.name.clone(),
            session: None,
            endpoint: None,
        };
        let (conn, answer) = match &self.kind {
            TargetKind::Http { sse: false, .. } => {
                let ep = self.pick_endpoint(None);
                let mut h = self
                    .http_conn(ep, None, version, timeout)
                    .ok_or_else(|| TargetError::Unreachable("no address".into()))?;
                let a = h.call(&msg, &Side::none()).await?;
                h.session = a.session.clone();
                ts.session = a.session;
                ts.endpoint = ep.map(|e| e.to_string());
                (Conn::Http(h), a.msg)
            }
            _ => {
                let live = self.connect_live().await?;
                let answer = live.call(&msg, &Side::none()).await;
                let answer = match answer {
                    Ok(a) if a.get("result").is_some() => a,
                    Ok(a) => {
                        live.close();
                        return Ok((Conn::Live(live), a, ts));
                    }
                    Err(e) => {
                        live.close();
                        return Err(e);
                    }
                };
                live.send(&jsonrpc::notification("notifications/initialized", None))
                    .await?;
                (Conn::Live(live), answer)
            }
        };
        Ok((conn, answer, ts))
    }

    async fn connect_live(&self) -> Result<Arc<Live>, TargetError> {
        match &self.kind {
            TargetKind::Stdio { cmd, args, env } => Live::spawn(cmd, args, env),
            TargetKind::Http { .. } => {
                let ep = self.pick_endpoint(None);
                let h = self
                    .http_conn(ep, None, "", None)
                    .ok_or_else(|| TargetError::Unreachable("no address".into()))?;
                Live::connect_sse(&h.url, h.host.as_deref()).await
            }
        }
    }

    /// The connection of a session that was opened before (maybe on another replica): a
    /// Streamable HTTP target is addressed from the sealed state; a live one is looked up
    /// here, and opened again if this replica has none.
    pub async fn resume(
        &self,
        state: &SessionState,
        ts: &TargetSession,
        timeout: Option<Duration>,
    ) -> Result<Conn, TargetError> {
        if let TargetKind::Http { sse: false, .. } = &self.kind {
            let key = (state.uid, self.name.clone());
            let rebound = lock(registry()).rebound.get(&key).cloned();
            let (session, endpoint) = match rebound {
                Some(r) => (r.session, r.endpoint),
                None => (ts.session.clone(), ts.endpoint.clone()),
            };
            let ep = self.pick_endpoint(endpoint.as_deref());
            return self
                .http_conn(ep, session, &state.version, timeout)
                .map(Conn::Http)
                .ok_or_else(|| TargetError::Unreachable("no address".into()));
        }
        let key = (state.uid, self.name.clone());
        if let Some(l) = lock(registry())
            .live
            .get(&key)
            .filter(|l| l.alive())
            .cloned()
        {
            l.last_used.store(live::now(), Ordering::Relaxed);
            return Ok(Conn::Live(l));
        }
        let (conn, answer, _) = self
            .open(&state.init_params(), &state.version, timeout)
            .await?;
        let Conn::Live(l) = conn else {
            return Err(TargetError::Protocol("not a live target".into()));
        };
        if answer.get("result").is_none() {
            return Err(TargetError::Protocol(format!(
                "initialize failed: {}",
                answer.get("error").unwrap_or(&Value::Null)
            )));
        }
        remember(key, l.clone());
        Ok(Conn::Live(l))
    }

    /// Replaces a Streamable HTTP target's expired session with a new one for the rest of
    /// the client's session (on this replica).
    pub async fn reopen(
        &self,
        state: &SessionState,
        timeout: Option<Duration>,
    ) -> Result<Conn, TargetError> {
        let (conn, answer, ts) = self
            .open(&state.init_params(), &state.version, timeout)
            .await?;
        if answer.get("result").is_none() {
            return Err(TargetError::Protocol("initialize failed".into()));
        }
        conn.send(&jsonrpc::notification("notifications/initialized", None))
            .await?;
        lock(registry())
            .rebound
            .insert((state.uid, self.name.clone()), ts);
        Ok(conn)
    }
}

/// Replica-local session tables.
#[derive(Default)]
struct Registry {
    live: HashMap<(u64, String), Arc<Live>>,
    /// Streamable HTTP sessions opened again after the target forgot the sealed one.
    rebound: HashMap<(u64, String), TargetSession>,
}

/// Live connections idle this long are closed.
const IDLE: u64 = 30 * 60;

fn registry() -> &'static Mutex<Registry> {
    static R: std::sync::OnceLock<Mutex<Registry>> = std::sync::OnceLock::new();
    R.get_or_init(Mutex::default)
}

/// Keeps a session's live connection (and drops idle or dead ones).
pub fn remember(key: (u64, String), l: Arc<Live>) {
    let now = live::now();
    let mut r = lock(registry());
    r.live.retain(|_, l| {
        let keep = l.alive() && now.saturating_sub(l.last_used.load(Ordering::Relaxed)) < IDLE;
        if !keep {
            l.close();
        }
        keep
    });
    r.live.insert(key, l);
}

/// Forgets a session on this replica: its live connections are closed.
pub fn forget(uid: u64) {
    let mut r = lock(registry());
    r.live.retain(|(u, _), l| {
        if *u == uid {
            l.close();
        }
        *u != uid
    });
    r.rebound.retain(|(u, _), _| *u != uid);
}

/// Ends the sessions of Streamable HTTP targets (DELETE), best effort.
pub async fn close(conn: &Conn) {
    match conn {
        Conn::Http(h) => h.close().await,
        Conn::Live(l) => l.close(),
    }
}

/// Forgets one target's live connection of a session (it died).
pub fn forget_one(uid: u64, name: &str) {
    let mut r = lock(registry());
    if let Some(l) = r.live.remove(&(uid, name.to_string())) {
        l.close();
    }
}
