//! Request mirroring: a copy of the request (final headers, and the body as it streams) goes
//! to another backend; its response is read and discarded, and nothing about it affects the
//! client's request.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::prelude::HttpPeer;
use tokio::sync::mpsc;

use crate::backend::BackendIr;
use crate::metrics::Metrics;

/// Longest a mirrored exchange may take before it is abandoned.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(30);
/// Body chunks buffered for a slow mirror before it is abandoned.
const MIRROR_QUEUE: usize = 64;

/// Sends mirrored requests over its own pooled connections.
pub struct Mirror {
    connector: Connector,
}

/// The body feeds of the mirrors one request started.
#[derive(Default)]
pub struct MirrorCtx {
    feeds: Vec<mpsc::Sender<Bytes>>,
}

impl MirrorCtx {
    /// Passes a body chunk to every mirror; a mirror that cannot keep up is dropped (its
    /// request is cut short, the client's is not).
    pub fn feed(&mut self, chunk: Option<&Bytes>, end_of_stream: bool) {
        if let Some(c) = chunk.filter(|c| !c.is_empty()) {
            self.feeds.retain(|tx| tx.try_send(c.clone()).is_ok());
        }
        if end_of_stream {
            self.feeds.clear();
        }
    }
}

impl Default for Mirror {
    fn default() -> Self {
        Self {
            connector: Connector::new(None),
        }
    }
}

impl Mirror {
    /// Starts mirroring `req` to `backend` for a `fraction` of requests.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        self: &Arc<Self>,
        backend: Arc<BackendIr>,
        fraction: f64,
        req: &RequestHeader,
        buffered: Option<Bytes>,
        has_body: bool,
        ctx: &mut MirrorCtx,
        metrics: &Arc<Metrics>,
    ) {
        if fraction < 1.0 && rand::random::<f64>() >= fraction {
            return;
        }
        let Some(ep) = backend.select(None, None) else {
            metrics
                .mirrors
                .with_label_values(&[&backend.name, "no_endpoint"])
                .inc();
            return;
        };
        let body = match (buffered, has_body) {
            (Some(b), _) => Body::Whole(b),
            (None, true) => {
                let (tx, rx) = mpsc::channel(MIRROR_QUEUE);
                ctx.feeds.push(tx);
                Body::Stream(rx)
            }
            (None, false) => Body::Whole(Bytes::new()),
        };
        let mut peer = HttpPeer::new(ep.addr, backend.tls.is_some(), ep.host.clone());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        if let Some(t) = &backend.tls {
            peer.options.verify_cert = t.verify;
            peer.options.ca = t.ca.clone();
        }
        let header = req.clone();
        let this = self.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let result = tokio::time::timeout(MIRROR_TIMEOUT, this.send(&peer, header, body)).await;
            let outcome = match result {
                Ok(Ok(())) => "ok",
                Ok(Err(e)) => {
                    tracing::debug!(backend = %backend.name, error = %e, "mirror failed");
                    "error"
                }
                Err(_) => "timeout",
            };
            metrics
                .mirrors
                .with_label_values(&[&backend.name, outcome])
                .inc();
        });
    }

    async fn send(
        &self,
        peer: &HttpPeer,
        header: RequestHeader,
        body: Body,
    ) -> pingora::Result<()> {
        let (mut session, _reused) = self.connector.get_http_session(peer).await?;
        session.write_request_header(Box::new(header)).await?;
        match body {
            Body::Whole(b) => {
                if !b.is_empty() {
                    session.write_request_body(b, true).await?;
                }
            }
            Body::Stream(mut rx) => {
                while let Some(chunk) = rx.recv().await {
                    session.write_request_body(chunk, false).await?;
                }
            }
        }
        session.finish_request_body().await?;
        session.read_response_header().await?;
        while session.read_response_body().await?.is_some() {}
        self.connector
            .release_http_session(session, peer, Some(Duration::from_secs(60)))
            .await;
        Ok(())
    }
}

enum Body {
    Whole(Bytes),
    Stream(mpsc::Receiver<Bytes>),
}
