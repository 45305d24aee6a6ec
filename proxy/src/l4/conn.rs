//! The accept loop of a TCP/TLS bind and the life of one connection: ClientHello, listener
//! and route, backend and endpoint, (TLS termination,) upstream connect, then bytes both
//! ways until both sides are done, half-closes passed on.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::sni::{self, Hello};
use super::{L4Bind, L4Context, L4ListenerIr, L4Mode, L4RouteIr, Outcome, decide};
use crate::backend::{BackendIr, EndpointState, HashOn, LbMode, fnv1a};
use crate::server::InflightGuard;
use crate::store::Store;

/// How long a TLS client may take to send its whole ClientHello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a TLS handshake may take once the ClientHello is in (Terminate).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream connect timeout when the backend sets none (as for HTTP).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Endpoints tried per connection before giving up.
const MAX_CONNECT_ATTEMPTS: usize = 3;

/// Accepts connections on `listener` (the bind of listener port `port`) until `stop` fires
/// or shutdown begins; each connection is served with the config current when it arrived.
pub async fn accept_loop(
    listener: TcpListener,
    port: u16,
    store: Arc<Store>,
    ctx: Arc<L4Context>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
            _ = shutdown.changed() => if *shutdown.borrow() { return } else { continue },
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let guard = ctx.inflight.enter();
        tokio::spawn(serve(stream, peer, port, store.clone(), ctx.clone(), guard));
    }
}

async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    port: u16,
    store: Arc<Store>,
    ctx: Arc<L4Context>,
    _inflight: InflightGuard,
) {
    // Only what this connection uses outlives this block; a long connection does not keep
    // a whole old config alive.
    let (bind, gateway) = {
        let ir = store.load();
        let Some(bind) = ir.binds.get(&port).and_then(|b| b.l4.clone()) else {
            // The port was reconfigured since the accept (no longer TCP/TLS): close.
            return;
        };
        (bind, ir.gateway.clone())
    };
    let mut conn = Conn {
        started: Instant::now(),
        peer,
        gateway,
        protocol: if bind.tls { "tls" } else { "tcp" },
        listener: None,
        route: None,
        backend: None,
        endpoint: None,
        sni: None,
        error: None,
    };
    let mut client = Counted::new(stream);
    let outcome = conn.run(&mut client, &bind, &ctx).await;
    conn.finish(outcome, &client, &ctx);
}

/// What is known of a connection so far (for its metrics and access log line).
struct Conn {
    started: Instant,
    peer: SocketAddr,
    gateway: Arc<str>,
    protocol: &'static str,
    listener: Option<Arc<L4ListenerIr>>,
    route: Option<Arc<L4RouteIr>>,
    backend: Option<String>,
    endpoint: Option<SocketAddr>,
    sni: Option<String>,
    error: Option<String>,
}

impl Conn {
    fn fail(&mut self, outcome: Outcome, error: impl Into<String>) -> Outcome {
        self.error = Some(error.into());
        outcome
    }

    fn finish(&self, outcome: Outcome, client: &Counted<TcpStream>, ctx: &L4Context) {
        let m = &ctx.metrics.l4;
        let listener = self.listener.as_ref().map_or("", |l| l.name.as_str());
        let route = self.route.as_ref().map_or("", |r| r.route_name.as_str());
        let backend = self.backend.as_deref().unwrap_or("");
        let gw = &*self.gateway;
        m.connections
            .with_label_values(&[gw, listener, route, backend, outcome.label()])
            .inc();
        for (direction, n) in [("received", client.received), ("sent", client.sent)] {
            if n > 0 {
                m.bytes
                    .with_label_values(&[gw, listener, route, backend, direction])
                    .inc_by(n);
            }
        }
        let elapsed = self.started.elapsed();
        if self.endpoint.is_some() {
            m.duration
                .with_label_values(&[gw, listener, route, backend])
                .observe(elapsed.as_secs_f64());
        }
        if outcome != Outcome::Ok {
            tracing::debug!(
                client = %self.peer,
                listener,
                sni = self.sni.as_deref().unwrap_or(""),
                result = outcome.label(),
                error = self.error.as_deref().unwrap_or(""),
                "connection closed"
            );
        }
        if ctx.access_log {
            crate::access_log::write_json(&Record {
                ts: crate::access_log::timestamp(),
                gateway: gw,
                listener,
                route,
                backend,
                endpoint: self.endpoint.map(|e| e.to_string()),
                client: self.peer.to_string(),
                protocol: self.protocol,
                sni: self.sni.as_deref(),
                result: outcome.label(),
                bytes_received: client.received,
                bytes_sent: client.sent,
                duration_ms: elapsed.as_secs_f64() * 1000.0,
                error: self.error.as_deref(),
            });
        }
    }
}

impl Conn {
    /// The connection's steps, up to its end; the outcome says how it ended.
    async fn run(
        &mut self,
        client: &mut Counted<TcpStream>,
        bind: &L4Bind,
        ctx: &L4Context,
    ) -> Outcome {
        let conn = self;
        let mut hello = Vec::new();
        if bind.tls {
            match tokio::time::timeout(HELLO_TIMEOUT, read_hello(client, &mut hello)).await {
                Ok(Ok(name)) => conn.sni = name,
                Ok(Err(e)) => return conn.fail(Outcome::BadHello, e),
                Err(_) => {
                    let e = format!("no complete ClientHello within {HELLO_TIMEOUT:?}");
                    return conn.fail(Outcome::BadHello, e);
                }
            }
        }
        let (listener, route) = match decide(bind, conn.sni.as_deref()) {
            Ok((l, r)) => (l.clone(), r.clone()),
            Err((o, listener)) => {
                if let Some(l) = listener {
                    conn.protocol = l.mode.label();
                    conn.listener = Some(l.clone());
                }
                let what = if o == Outcome::NoListener {
                    "listener"
                } else {
                    "route"
                };
                let e = match &conn.sni {
                    Some(name) => format!("no {what} for server name {name:?}"),
                    None => format!("no {what} for a connection without server name"),
                };
                return conn.fail(o, e);
            }
        };
        conn.protocol = listener.mode.label();
        conn.listener = Some(listener.clone());
        conn.route = Some(route.clone());
        let backend = match route.pick(rand::random()) {
            Ok(b) => b.clone(),
            Err(e) => return conn.fail(Outcome::InvalidBackend, e),
        };
        conn.backend = Some(backend.name.clone());
        match &listener.mode {
            L4Mode::Terminate(acceptor) => {
                let io = Prefixed::new(std::mem::take(&mut hello), &mut *client);
                let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(io)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return conn.fail(Outcome::Handshake, e.to_string()),
                    Err(_) => return conn.fail(Outcome::Handshake, "TLS handshake timed out"),
                };
                proxy(conn, tls, &[], &backend, ctx).await
            }
            // Passthrough forwards the ClientHello it read; TCP read nothing.
            L4Mode::Passthrough | L4Mode::Tcp => {
                proxy(conn, &mut *client, &hello, &backend, ctx).await
            }
        }
    }
}

/// Connects to an endpoint of `backend`, sends `first`, then copies both ways until both
/// directions are closed (an EOF on one side shuts down writing on the other).
async fn proxy<S>(
    conn: &mut Conn,
    mut client: S,
    first: &[u8],
    backend: &BackendIr,
    ctx: &L4Context,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut upstream, ep) = match connect(backend, conn.peer.ip(), ctx).await {
        Ok(c) => c,
        Err((outcome, e)) => return conn.fail(outcome, e),
    };
    conn.endpoint = Some(ep.addr);
    let listener = conn.listener.as_ref().map_or("", |l| l.name.as_str());
    let active = ctx
        .metrics
        .l4
        .active
        .with_label_values(&[&*conn.gateway, listener]);
    active.inc();
    ep.inflight.fetch_add(1, Ordering::Relaxed);
    let copied = async {
        if !first.is_empty() {
            upstream.write_all(first).await?;
        }
        super::idle::copy(&mut client, &mut upstream, super::idle::IDLE_TIMEOUT).await
    }
    .await;
    ep.inflight.fetch_sub(1, Ordering::Relaxed);
    active.dec();
    match copied {
        Ok(_) => Outcome::Ok,
        // A TLS client that closes without close_notify (common, and harmless here: the
        // bytes it sent were forwarded).
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Outcome::Ok,
        Err(e) if e.kind() == io::ErrorKind::TimedOut => conn.fail(Outcome::Idle, e.to_string()),
        Err(e) => conn.fail(Outcome::Error, e.to_string()),
    }
}

/// A TCP connection to a healthy endpoint of `b`, chosen by its load balancing (source-IP
/// hashing hashes `client`); up to [`MAX_CONNECT_ATTEMPTS`] endpoints are tried, each
/// failure counting against the endpoint's passive health.
async fn connect(
    b: &BackendIr,
    client: IpAddr,
    ctx: &L4Context,
) -> Result<(TcpStream, Arc<EndpointState>), (Outcome, String)> {
    let hash = match &b.lb {
        LbMode::ConsistentHash(HashOn::SourceIp) => Some(fnv1a(client.to_string().as_bytes())),
        _ => None,
    };
    let limit = b.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut last = String::new();
    for _ in 0..MAX_CONNECT_ATTEMPTS {
        let Some(ep) = b.select(hash, tried.last()) else {
            break;
        };
        if tried.contains(&ep.addr) {
            break;
        }
        tried.push(ep.addr);
        let started = Instant::now();
        match tokio::time::timeout(limit, TcpStream::connect(ep.addr)).await {
            Ok(Ok(s)) => {
                ep.record(true, b.passive.as_ref());
                ctx.metrics
                    .upstream_connect
                    .with_label_values(&[b.name.as_str()])
                    .observe(started.elapsed().as_secs_f64());
                let _ = s.set_nodelay(true);
                return Ok((s, ep));
            }
            Ok(Err(e)) => last = format!("connect to {}: {e}", ep.addr),
            Err(_) => last = format!("connect to {}: no answer within {limit:?}", ep.addr),
        }
        ep.record(false, b.passive.as_ref());
    }
    if tried.is_empty() {
        let e = format!("backend {} has no healthy endpoint", b.name);
        Err((Outcome::NoEndpoint, e))
    } else {
        Err((Outcome::ConnectFailed, last))
    }
}

/// Reads into `buf` until it holds a whole ClientHello; returns its server name. Whatever
/// was read (the ClientHello and anything after it) stays in `buf`, to be forwarded or
/// replayed.
async fn read_hello<S: AsyncRead + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Result<Option<String>, String> {
    let mut chunk = [0u8; 4096];
    loop {
        match sni::parse(buf) {
            Ok(Hello::Complete(name)) => return Ok(name),
            Ok(Hello::Incomplete) if buf.len() >= sni::MAX_HELLO => {
                return Err(sni::SniError::TooLarge.to_string());
            }
            Ok(Hello::Incomplete) => {}
            Err(e) => return Err(e.to_string()),
        }
        let n = s.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the client closed the connection before its ClientHello ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One access log line per connection.
#[derive(Serialize)]
struct Record<'a> {
    ts: String,
    gateway: &'a str,
    listener: &'a str,
    route: &'a str,
    backend: &'a str,
    endpoint: Option<String>,
    client: String,
    /// `tcp`, `tls-passthrough`, `tls-terminate` (`tls` before a TLS listener was chosen).
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<&'a str>,
    result: &'static str,
    bytes_received: u64,
    bytes_sent: u64,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// A stream that counts the bytes read from and written to it.
pub(super) struct Counted<S> {
    inner: S,
    pub received: u64,
    pub sent: u64,
}

impl<S> Counted<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            received: 0,
            sent: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.received += (buf.filled().len() - before) as u64;
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            self.sent += n as u64;
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose first reads return `prefix` (bytes already read from `inner`), then read
/// `inner`; writes go to `inner`.
pub(super) struct Prefixed<S> {
    prefix: Vec<u8>,
    at: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(super) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Self {
            prefix,
            at: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.at < self.prefix.len() {
            let n = buf.remaining().min(self.prefix.len() - self.at);
            let at = self.at;
            buf.put_slice(&self.prefix[at..at + n]);
            self.at += n;
            if self.at == self.prefix.len() {
                self.prefix = Vec::new();
                self.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
