//! TCP and TLS (L4) listeners: TCPRoutes and TLSRoutes.
//!
//! A bind whose listeners are TCP or TLS runs its own accept loop ([`conn::accept_loop`]),
//! not the HTTP app. Per connection:
//!
//! - TLS listeners: the ClientHello is read (buffered, not consumed: [`sni`]) until its server
//!   name is known, within [`conn::HELLO_TIMEOUT`] and [`sni::MAX_HELLO`] bytes. The name picks
//!   the listener (exact hostname, then the longest wildcard, then the listener without one)
//!   and, on it, the route (same order over the routes' hostnames intersected with the
//!   listener's). Passthrough forwards the buffered bytes and the rest unchanged; Terminate
//!   completes the handshake with the listener's certificate and forwards the plaintext.
//! - TCP listeners: every connection takes the listener's route.
//!
//! Where several routes claim the same connections (a TCP listener's, or one server name's),
//! the oldest route wins (creation time, then name). The route's backends are chosen by
//! weight; the backend's endpoint by its load balancing, as HTTP requests choose them, with
//! its connect timeout, trying another endpoint when one refuses. No listener, no route, an
//! invalid backend or no endpoint closes the connection; each outcome is counted
//! (`agora_l4_connections_total`) and, with access logs on, logged as one line.

pub mod conn;
mod idle;
mod metrics;
pub mod sni;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

pub use metrics::L4Metrics;

use crate::backend::BackendIr;
use crate::routing::hostname::wildcard_matches;

/// What an L4 connection needs from the rest of the proxy.
pub struct L4Context {
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Open connections count as in flight: shutdown waits for them (up to the drain
    /// timeout).
    pub inflight: Arc<crate::server::Inflight>,
    pub access_log: bool,
}

/// The TCP or TLS listeners of one bind.
#[derive(Debug)]
pub struct L4Bind {
    /// Connections start with a TLS ClientHello (TLS listeners); otherwise plain TCP (one
    /// TCP listener).
    pub tls: bool,
    /// Listeners by hostname (a TCP listener has none).
    pub listeners: HostTable<Arc<L4ListenerIr>>,
}

/// A TCP or TLS listener and its routes.
#[derive(Debug)]
pub struct L4ListenerIr {
    pub key: String,
    pub name: String,
    pub gateway: String,
    pub hostname: String,
    pub mode: L4Mode,
    /// Routes by server name (a TCP listener's routes all take every connection).
    pub routes: HostTable<Arc<L4RouteIr>>,
}

/// How a listener treats the bytes it accepts.
pub enum L4Mode {
    Tcp,
    Passthrough,
    /// TLS terminated with the listener's certificate.
    Terminate(tokio_rustls::TlsAcceptor),
}

impl std::fmt::Debug for L4Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl L4Mode {
    /// The protocol as metrics and access logs name it.
    pub fn label(&self) -> &'static str {
        match self {
            L4Mode::Tcp => "tcp",
            L4Mode::Passthrough => "tls-passthrough",
            L4Mode::Terminate(_) => "tls-terminate",
        }
    }
}

/// One TCPRoute or TLSRoute rule on one listener.
#[derive(Debug)]
pub struct L4RouteIr {
    pub key: String,
    /// `namespace/name` of the route, and the rule's name.
    pub route_name: String,
    pub rule_name: String,
    pub backends: Vec<L4Choice>,
    pub total_weight: u32,
}

/// One weighted backend of an L4 route.
#[derive(Debug)]
pub struct L4Choice {
    /// `Err` holds why the reference is invalid: connections choosing it are closed.
    pub backend: Result<Arc<BackendIr>, String>,
    pub weight: u32,
}

/// Why a connection was not (or not fully) proxied; the `result` label of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Proxied until one side closed.
    Ok,
    /// Not a TLS ClientHello, too large, too slow, or no server name where one is needed.
    BadHello,
    /// No listener takes the server name.
    NoListener,
    /// The listener has no route for the server name.
    NoRoute,
    /// The chosen backend reference is invalid (or no backend has weight).
    InvalidBackend,
    /// The backend has no healthy endpoint.
    NoEndpoint,
    /// Every endpoint tried refused the connection or timed out.
    ConnectFailed,
    /// The TLS handshake with the client failed (Terminate).
    Handshake,
    /// An I/O error while proxying (a reset, usually).
    Error,
    /// No byte moved either way for the idle timeout: closed.
    Idle,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::BadHello => "bad_client_hello",
            Outcome::NoListener => "no_listener",
            Outcome::NoRoute => "no_route",
            Outcome::InvalidBackend => "invalid_backend",
            Outcome::NoEndpoint => "no_endpoint",
            Outcome::ConnectFailed => "connect_failed",
            Outcome::Handshake => "tls_handshake_failed",
            Outcome::Error => "error",
            Outcome::Idle => "idle_timeout",
        }
    }
}

/// A connection's listener and route.
pub type Routed<'a> = (&'a Arc<L4ListenerIr>, &'a Arc<L4RouteIr>);
/// Why a connection has no route, with the listener that took it (if one did).
pub type Unrouted<'a> = (Outcome, Option<&'a Arc<L4ListenerIr>>);

/// The listener and route a connection with server name `sni` (none for TCP, or a TLS client
/// that sent none) goes to.
pub fn decide<'a>(bind: &'a L4Bind, sni: Option<&str>) -> Result<Routed<'a>, Unrouted<'a>> {
    let listener = bind
        .listeners
        .find(sni)
        .ok_or((Outcome::NoListener, None))?;
    let route = listener
        .routes
        .find(sni)
        .ok_or((Outcome::NoRoute, Some(listener)))?;
    Ok((listener, route))
}

impl L4RouteIr {
    /// The backend for a connection; `roll` is uniform over `u32` (weights are spread over
    /// it). An invalid reference's share of connections gets its error.
    pub fn pick(&self, roll: u32) -> Result<&Arc<BackendIr>, String> {
        if self.total_weight == 0 {
            return Err(if self.backends.is_empty() {
                "the route has no backend".into()
            } else {
                "every backend of the route has weight 0".into()
            });
        }
        let mut x = roll % self.total_weight;
        for c in &self.backends {
            if x < c.weight {
                return c.backend.as_ref().map_err(Clone::clone);
            }
            x -= c.weight;
        }
        Err("no backend chosen".into())
    }
}

/// Values by hostname: exact names, `*.` wildcards (the longest matching first) and one
/// value for every name (including none).
#[derive(Debug)]
pub struct HostTable<T> {
    exact: HashMap<String, T>,
    /// Wildcard suffix (`.example.com`) → value, longest suffix first.
    wildcard: Vec<(String, T)>,
    any: Option<T>,
}

impl<T> Default for HostTable<T> {
    fn default() -> Self {
        Self {
            exact: HashMap::new(),
            wildcard: Vec::new(),
            any: None,
        }
    }
}

impl<T> HostTable<T> {
    /// Adds `value` for `host` (exact, `*.` wildcard, or empty for every name). Returns
    /// false, keeping the first value, when the host is taken.
    pub fn insert(&mut self, host: &str, value: T) -> bool {
        if host.is_empty() {
            if self.any.is_some() {
                return false;
            }
            self.any = Some(value);
        } else if let Some(suffix) = host.strip_prefix('*') {
            if self.wildcard.iter().any(|(s, _)| s == suffix) {
                return false;
            }
            self.wildcard.push((suffix.to_string(), value));
            self.wildcard
                .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        } else {
            if self.exact.contains_key(host) {
                return false;
            }
            self.exact.insert(host.to_string(), value);
        }
        true
    }

    /// The value for server name `name`: exact, then the longest wildcard, then the one for
    /// every name. Without a name, only the latter.
    pub fn find(&self, name: Option<&str>) -> Option<&T> {
        let Some(name) = name else {
            return self.any.as_ref();
        };
        self.exact
            .get(name)
            .or_else(|| {
                self.wildcard
                    .iter()
                    .find(|(suffix, _)| wildcard_matches(suffix, name))
                    .map(|(_, v)| v)
            })
            .or(self.any.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.any.is_none()
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.exact
            .values()
            .chain(self.wildcard.iter().map(|(_, v)| v))
            .chain(self.any.iter())
    }
}
