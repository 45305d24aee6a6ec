//! The admin listener: `/healthz`, `/readyz`, `/metrics`, `/config_dump`. A deliberately
//! small HTTP/1.1 server (GET only, one request per connection): it must keep answering
//! while the data plane is saturated, and it never parses anything but a request line.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::metrics::Metrics;
use crate::store::Store;

/// What the admin endpoints read.
pub struct Admin {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
}

impl Admin {
    /// Answers one request path: (status, content type, body).
    pub fn answer(&self, method: &str, path: &str) -> (u16, &'static str, Vec<u8>) {
        if method != "GET" && method != "HEAD" {
            return (405, "text/plain", b"method not allowed\n".to_vec());
        }
        match path.split('?').next().unwrap_or("") {
            "/healthz" => (200, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                if self.store.is_ready() {
                    (200, "text/plain", b"ready\n".to_vec())
                } else {
                    (503, "text/plain", b"no config loaded yet\n".to_vec())
                }
            }
            "/metrics" => (
                200,
                "text/plain; version=0.0.4",
                self.metrics.render().into_bytes(),
            ),
            "/config_dump" => {
                let ir = self.store.load();
                let dump = serde_json::json!({
                    "gateway": &*ir.gateway,
                    "version": self.store.version(),
                    "resources": ir.resources,
                });
                (
                    200,
                    "application/json",
                    serde_json::to_vec_pretty(&dump).unwrap_or_default(),
                )
            }
            "/budgets" => (
                200,
                "application/json",
                crate::policy::budget::snapshot_json(),
            ),
            _ => (404, "text/plain", b"not found\n".to_vec()),
        }
    }

    /// Serves until the listener fails.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(10), this.handle(stream)).await;
            });
        }
    }

    async fn handle(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 || buf.len() > 16 * 1024 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let line = String::from_utf8_lossy(&buf);
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("");
        let path = parts.next().unwrap_or("/");
        let (status, ctype, body) = self.answer(method, path);
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Service Unavailable",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await?;
        if method != "HEAD" {
            stream.write_all(&body).await?;
        }
        stream.shutdown().await
    }
}
