//! Test support: in-process upstreams (hyper) and the proxy binary on loopback.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// What an upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body_len: usize,
    pub body_sum: u64,
}

/// An HTTP/1.1 + h2c upstream that echoes what it received as JSON and records it.
///
/// Paths: `/status/NNN` answers NNN; `/delay/MS` waits; `/healthz` answers 200 or 503 per
/// [`Upstream::set_healthy`]; anything else 200 (or the forced status, see `force_status`).
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    healthy: Arc<AtomicBool>,
    forced: Arc<AtomicU16>,
    pub hits: Arc<AtomicUsize>,
}

/// Sum of bytes, a cheap fingerprint to check bodies arrive intact.
pub fn body_sum(b: &[u8]) -> u64 {
    b.iter().enumerate().fold(0u64, |acc, (i, &x)| {
        acc.wrapping_add((i as u64 + 1).wrapping_mul(x as u64))
    })
}

impl Upstream {
    pub async fn start(name: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let up = Upstream {
            addr,
            seen: Arc::default(),
            healthy: Arc::new(AtomicBool::new(true)),
            forced: Arc::new(AtomicU16::new(0)),
            hits: Arc::default(),
        };
        let (seen, healthy, forced, hits, name) = (
            up.seen.clone(),
            up.healthy.clone(),
            up.forced.clone(),
            up.hits.clone(),
            name.to_string(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (seen, healthy, forced, hits, name) = (
                    seen.clone(),
                    healthy.clone(),
                    forced.clone(),
                    hits.clone(),
                    name.clone(),
                );
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (seen, healthy, forced, hits, name) = (
                            seen.clone(),
                            healthy.clone(),
                            forced.clone(),
                            hits.clone(),
                            name.clone(),
                        );
                        async move {
                            Ok::<_, Infallible>(
                                handle(req, &name, &seen, &healthy, &forced, &hits).await,
                            )
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        up
    }

    pub fn set_healthy(&self, ok: bool) {
        self.healthy.store(ok, Ordering::SeqCst);
    }

    /// Make every non-special request answer `status` (0: normal).
    pub fn force_status(&self, status: u16) {
        self.forced.store(status, Ordering::SeqCst);
    }

    pub fn last(&self) -> Option<Seen> {
        self.seen.lock().expect("lock").last().cloned()
    }

    pub fn count(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn handle(
    req: Request<Incoming>,
    name: &str,
    seen: &Mutex<Vec<Seen>>,
    healthy: &AtomicBool,
    forced: &AtomicU16,
    hits: &AtomicUsize,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        let code = if healthy.load(Ordering::SeqCst) {
            200
        } else {
            503
        };
        return Response::builder()
            .status(code)
            .body(Full::new(Bytes::new()))
            .expect("resp");
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let s = Seen {
        uri: uri.clone(),
        headers: headers.clone(),
        body_len: body.len(),
        body_sum: body_sum(&body),
    };
    seen.lock().expect("lock").push(s.clone());
    let mut status = forced.load(Ordering::SeqCst);
    if let Some(code) = path.strip_prefix("/status/") {
        status = code.parse().unwrap_or(500);
    }
    if let Some(ms) = path.strip_prefix("/delay/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
    }
    let json = serde_json::json!({
        "upstream": name, "method": method, "uri": uri, "headers": headers,
        "body_len": s.body_len, "body_sum": s.body_sum,
    });
    Response::builder()
        .status(if status == 0 { 200 } else { status })
        .header("content-type", "application/json")
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(
            serde_json::to_vec(&json).expect("json"),
        )))
        .expect("resp")
}

/// The proxy binary running on a config file in a temp directory.
pub struct Proxy {
    child: Child,
    pub dir: PathBuf,
    pub admin: SocketAddr,
    pub log: PathBuf,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl Proxy {
    pub async fn start(config: &str) -> Self {
        Self::start_with_files(config, &[]).await
    }

    /// Starts with extra files (certificates, ...) written next to the config first.
    pub async fn start_with_files(config: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "agora-e2e-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        for (name, content) in files {
            std::fs::write(dir.join(name), content).expect("write file");
        }
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let log = dir.join("proxy.log");
        let child = Command::new(env!("CARGO_BIN_EXE_agora-proxy"))
            .arg("-f")
            .arg(dir.join("config.yaml"))
            .arg("--admin")
            .arg(admin.to_string())
            .arg("--drain-timeout")
            .arg("5s")
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("access.log")).expect("log"),
            ))
            .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
            .spawn()
            .expect("spawn proxy");
        let p = Proxy {
            child,
            dir,
            admin,
            log,
        };
        p.wait_ready().await;
        p
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::get(format!("http://{}/readyz", self.admin)).await
                && r.status() == 200
            {
                // Listeners start right after the config is applied.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("proxy not ready; log:\n{}", self.logs());
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Replaces the config file (atomically, as editors and ConfigMaps do).
    pub fn write_config(&self, config: &str) {
        let tmp = self.dir.join("config.yaml.tmp");
        std::fs::write(&tmp, config).expect("write");
        std::fs::rename(&tmp, self.dir.join("config.yaml")).expect("rename");
    }

    /// Replaces a file next to the config (atomically).
    pub fn write_file(&self, name: &str, content: &str) {
        let tmp = self.dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, content).expect("write");
        std::fs::rename(&tmp, self.dir.join(name)).expect("rename");
    }

    pub async fn admin_get(&self, path: &str) -> String {
        reqwest::get(format!("http://{}{path}", self.admin))
            .await
            .expect("admin")
            .text()
            .await
            .expect("text")
    }

    /// Waits until `/metrics` shows `needle`.
    pub async fn wait_metric(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.admin_get("/metrics").await.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let metrics = self.admin_get("/metrics").await;
        let ours: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("agora_config"))
            .collect();
        panic!(
            "metric {needle:?} never appeared; config metrics: {ours:?}; log:\n{}",
            self.logs()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("wait")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A plain HTTP/1.1 client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// An h2c (prior knowledge) client.
pub fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}
