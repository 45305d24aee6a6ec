//! Active health checks: probes every endpoint of each backend that configures them and
//! flips its `active_healthy` flag after the configured thresholds. Reconciled with the
//! config: backends that appear get probed, removed ones stop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backend::{ActiveCheck, BackendIr, EndpointState};
use crate::store::Store;

/// Runs the checker until shutdown.
pub async fn run(store: Arc<Store>, mut shutdown: watch::Receiver<bool>) {
    let connector = Arc::new(Connector::new(None));
    let mut next_due: HashMap<(String, SocketAddr), Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => if *shutdown.borrow() { return },
        }
        let ir = store.load();
        let now = Instant::now();
        let mut live = HashMap::new();
        for b in ir.backends.values() {
            let Some(check) = &b.active else { continue };
            for ep in &b.endpoints {
                let key = (b.key.clone(), ep.addr);
                let due = next_due.get(&key).copied().unwrap_or(now);
                if due <= now {
                    tokio::spawn(probe(
                        connector.clone(),
                        b.clone(),
                        ep.clone(),
                        check.clone(),
                    ));
                    live.insert(key, now + check.interval);
                } else {
                    live.insert(key, due);
                }
            }
        }
        next_due = live;
    }
}

async fn probe(
    connector: Arc<Connector>,
    b: Arc<BackendIr>,
    ep: Arc<EndpointState>,
    check: ActiveCheck,
) {
    let ok = match tokio::time::timeout(check.timeout, request(&connector, &b, &ep, &check)).await {
        Ok(Ok(status)) => check.status_ok(status),
        _ => false,
    };
    if ok {
        ep.active_failures.store(0, Ordering::Relaxed);
        let n = ep.active_successes.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= check.healthy_threshold && !ep.active_healthy.swap(true, Ordering::Relaxed) {
            tracing::info!(backend = %b.name, endpoint = %ep.addr, "endpoint healthy again");
        }
    } else {
        ep.active_successes.store(0, Ordering::Relaxed);
        let n = ep.active_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= check.unhealthy_threshold && ep.active_healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(backend = %b.name, endpoint = %ep.addr, "endpoint failed its health check");
        }
    }
}

async fn request(
    connector: &Connector,
    b: &BackendIr,
    ep: &EndpointState,
    check: &ActiveCheck,
) -> pingora::Result<u16> {
    let tls = b.tls.as_ref();
    let sni = tls
        .and_then(|t| t.sni.clone())
        .unwrap_or_else(|| ep.host.clone());
    let mut peer = HttpPeer::new(ep.addr, tls.is_some(), sni);
    peer.options.connection_timeout = Some(check.timeout);
    peer.options.read_timeout = Some(check.timeout);
    if let Some(t) = tls {
        peer.options.verify_cert = t.verify;
        peer.options.verify_hostname = t.verify;
        peer.options.ca = t.ca.clone();
        peer.client_cert_key = t.client_cert.clone();
    }
    let mut req = RequestHeader::build("GET", check.path.as_bytes(), Some(3))?;
    let host = check.host.clone().unwrap_or_else(|| ep.host.clone());
    req.insert_header("host", host)?;
    req.insert_header("user-agent", "agora-health-check")?;
    let (mut session, _) = connector.get_http_session(&peer).await?;
    session.write_request_header(Box::new(req)).await?;
    session.finish_request_body().await?;
    session.read_response_header().await?;
    let status = session.response_header().map_or(0, |h| h.status.as_u16());
    while session.read_response_body().await?.is_some() {}
    connector
        .release_http_session(session, &peer, Some(Duration::from_secs(30)))
        .await;
    Ok(status)
}
