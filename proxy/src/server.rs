//! Listeners: one accept loop per bind, started and stopped as the config changes (so a new
//! port in a reloaded config is served without a restart), TLS with the certificate chosen
//! by SNI from the live config, and a graceful drain on shutdown. Binds of TCP and TLS
//! listeners run the L4 accept loop ([`crate::l4`]) instead of the HTTP app.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pingora::apps::ServerApp;
use pingora::listeners::tls::Acceptor;
use pingora::protocols::Stream;
use pingora::protocols::l4::listener::Listener;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::sync::{Notify, watch};

use crate::store::Store;

/// Counts requests in flight so shutdown can wait for them (idle keep-alive connections
/// are not waited for: they are closed at exit, as clients expect of a draining server).
#[derive(Default)]
pub struct Inflight {
    open: AtomicUsize,
    idle: Notify,
}

/// Held by a request while it is in flight.
pub struct InflightGuard(Arc<Inflight>);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Inflight {
    pub fn enter(self: &Arc<Self>) -> InflightGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        InflightGuard(self.clone())
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until no request is in flight, or `timeout` passes; returns how many remain.
    pub async fn drain(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.idle.notified();
            if self.open() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open();
            }
        }
    }
}

/// Picks the certificate of the listener whose hostname matches the SNI name.
struct SniResolver {
    store: Arc<Store>,
    port: u16,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("port", &self.port)
            .finish()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let ir = self.store.load();
        let bind = ir.binds.get(&self.port)?;
        let sni = hello.server_name().map(str::to_ascii_lowercase);
        let listener = match &sni {
            Some(name) => bind.listeners.find(name),
            None => bind.listeners.any.as_ref(),
        }
        .or_else(|| bind.listeners.iter().next())?;
        listener.cert.clone()
    }
}

fn tls_acceptor(store: Arc<Store>, port: u16) -> Acceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { store, port }));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Acceptor::from_server_config(Arc::new(cfg))
}

/// What identifies a running listener; any change restarts it.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct ListenKey {
    address: String,
    port: u16,
    tls: bool,
    l4: bool,
}

/// Keeps the set of accept loops equal to the binds of the current config, until shutdown.
pub async fn run<A: ServerApp + Send + Sync + 'static>(
    store: Arc<Store>,
    app: Arc<A>,
    l4: Arc<crate::l4::L4Context>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: HashMap<ListenKey, watch::Sender<bool>> = HashMap::new();
    let mut changes = store.subscribe();
    loop {
        let ir = store.load();
        let wanted: HashMap<ListenKey, ()> = ir
            .binds
            .values()
            .map(|b| {
                (
                    ListenKey {
                        address: if b.address.is_empty() {
                            "0.0.0.0".into()
                        } else {
                            b.address.clone()
                        },
                        port: b.port,
                        tls: b.tls,
                        l4: b.l4.is_some(),
                    },
                    (),
                )
            })
            .collect();
        running.retain(|k, stop| {
            let keep = wanted.contains_key(k);
            if !keep {
                tracing::info!(port = k.port, "stopping listener");
                let _ = stop.send(true);
            }
            keep
        });
        for k in wanted.keys() {
            if running.contains_key(k) {
                continue;
            }
            let addr = format!("{}:{}", k.address, k.port);
            match bind(&addr).await {
                Ok(l) => {
                    tracing::info!(%addr, tls = k.tls, l4 = k.l4, "listening");
                    let (stop_tx, stop_rx) = watch::channel(false);
                    running.insert(k.clone(), stop_tx);
                    if k.l4 {
                        tokio::spawn(crate::l4::conn::accept_loop(
                            l,
                            k.port,
                            store.clone(),
                            l4.clone(),
                            stop_rx,
                            shutdown.clone(),
                        ));
                        continue;
                    }
                    let acceptor = k.tls.then(|| Arc::new(tls_acceptor(store.clone(), k.port)));
                    tokio::spawn(accept_loop(
                        Listener::from(l),
                        acceptor,
                        app.clone(),
                        stop_rx,
                        shutdown.clone(),
                    ));
                }
                Err(e) => {
                    tracing::error!(%addr, error = %e, "cannot listen; will retry on the next config change")
                }
            }
        }
        tokio::select! {
            r = changes.changed() => if r.is_err() { break },
            _ = shutdown.changed() => if *shutdown.borrow() { break },
        }
    }
    for (_, stop) in running {
        let _ = stop.send(true);
    }
}

/// Binds `addr`. A port whose listener was just replaced (HTTP ↔ TLS ↔ TCP) may still be
/// held by the stopping accept loop for a moment: "in use" is retried for up to a second.
async fn bind(addr: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && tries < 40 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            r => return r,
        }
    }
}

async fn accept_loop<A: ServerApp + Send + Sync + 'static>(
    listener: Listener,
    tls: Option<Arc<Acceptor>>,
    app: Arc<A>,
    mut stop: watch::Receiver<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
            _ = shutdown.changed() => if *shutdown.borrow() { return } else { continue },
        };
        let mut stream = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay();
        let app = app.clone();
        let tls = tls.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let stream: Stream = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        acceptor.tls_handshake(stream),
                    )
                    .await
                    {
                        Ok(Ok(s)) => Box::new(s),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => Box::new(stream),
            };
            let mut next = Some(stream);
            while let Some(s) = next {
                next = app.process_new(s, &shutdown).await;
            }
        });
    }
}
