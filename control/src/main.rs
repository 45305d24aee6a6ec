//! `agora-controller`: translates Gateway API + agentgateway.dev objects and streams the
//! result to proxies over delta xDS. `--manifests DIR` runs it on a directory of Kubernetes
//! YAML (watched), no cluster needed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agora_control::source::manifests;
use agora_control::translate;
use agora_control::xds::{self, AdsService, Published};
use clap::Parser;
use tokio::sync::watch;

/// Agora control plane.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Directory of Kubernetes YAML to serve instead of a cluster's objects (watched). Without
    /// it the controller watches the cluster (in-cluster config or kubeconfig).
    #[arg(long)]
    manifests: Option<PathBuf>,
    /// Address of the delta-xDS (gRPC) server.
    #[arg(long, default_value = "0.0.0.0:15010")]
    xds_listen: SocketAddr,
    /// PEM certificate chain and key: serve xDS over TLS.
    #[arg(long, requires = "xds_tls_key")]
    xds_tls_cert: Option<PathBuf>,
    #[arg(long, requires = "xds_tls_cert")]
    xds_tls_key: Option<PathBuf>,
    /// Quiet time after a manifest change before re-translating.
    #[arg(long, default_value = "5", value_name = "MILLISECONDS")]
    debounce_ms: u64,
    /// In a cluster: elect a leader (Lease `agora-controller` in $POD_NAMESPACE) to write
    /// statuses; `--leader-election=false` writes from this replica unconditionally.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// In a cluster: proxies must present a ServiceAccount token (audience `agora-xds`) of
    /// their Gateway's namespace, checked with TokenReview.
    #[arg(long, env = "XDS_AUTH", default_value_t = true, action = clap::ArgAction::Set)]
    xds_auth: bool,
    /// In a cluster: the proxy image the deployer runs for each Gateway.
    #[arg(
        long,
        env = "PROXY_IMAGE",
        default_value = "ghcr.io/agora-gateway/agora-proxy:0.1.0"
    )]
    proxy_image: String,
    /// In a cluster: the xDS URL deployed proxies connect to (default: this controller's
    /// Service, `http://agora-controller.$POD_NAMESPACE.svc:PORT`).
    #[arg(long, env = "XDS_URL")]
    xds_url: Option<String>,
    /// Manifest mode: write the computed statuses here (YAML) after every translation.
    #[arg(long)]
    status_file: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let debounce = Duration::from_millis(args.debounce_ms);
    let mut cluster = None;
    let mut snapshots = match args.manifests.clone() {
        Some(dir) => {
            let (snapshots, watcher) = manifests::watch_dir(dir.clone(), debounce)?;
            tokio::spawn(watcher);
            tracing::info!(dir = %dir.display(), "serving manifests");
            snapshots
        }
        None => {
            let client = kube::Client::try_default().await.map_err(|e| {
                anyhow::anyhow!("no Kubernetes config (in-cluster or kubeconfig): {e}; use --manifests DIR to run without a cluster")
            })?;
            tracing::info!("watching the cluster");
            cluster = Some(client.clone());
            agora_control::source::kube::watch_cluster(client, debounce)
        }
    };
    let in_cluster = cluster.is_some();
    let deploy_rx = snapshots.clone();
    let (out_tx, out_rx) = watch::channel(Arc::new(Published::default()));
    let status_file = args.status_file.clone();
    tokio::spawn(async move {
        let mut version = 0;
        let mut previous: Option<Arc<Published>> = None;
        // What the last translation produced per route: an edit translates only what changed.
        let mut memo = Some(translate::Memo::default());
        if in_cluster && snapshots.changed().await.is_err() {
            return; // wait for the first complete listing
        }
        loop {
            let snap = snapshots.borrow_and_update().clone();
            let started = Instant::now();
            version += 1;
            let prev = previous.clone();
            let mut m = memo.take().unwrap_or_default();
            let published = tokio::task::spawn_blocking(move || {
                let output = translate::translate_with(&snap, &mut m);
                let took = started.elapsed();
                let published = Published::new(version, output, prev.as_deref());
                (published, took, started.elapsed() - took, m)
            })
            .await;
            match published {
                Ok((published, took, encode, m)) => {
                    memo = Some(m);
                    let published = Arc::new(published);
                    out_tx.send_replace(published.clone());
                    // Reporting, and freeing the snapshot before, wait until the proxies
                    // have been told.
                    report(&published.output, version, took, status_file.as_deref());
                    tracing::debug!(
                        version,
                        encode_ms = encode.as_secs_f64() * 1000.0,
                        "encoded"
                    );
                    previous = Some(published);
                }
                Err(e) => {
                    tracing::error!(error = %e, "translation failed; keeping the last published config");
                }
            }
            if snapshots.changed().await.is_err() {
                return;
            }
        }
    });

    if let Some(client) = cluster.clone() {
        let (leader_tx, leader_rx) = watch::channel(!args.leader_election);
        if args.leader_election {
            let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
            let id = std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("agora-controller-{}", std::process::id()));
            tokio::spawn(agora_control::leader::run(
                client.clone(),
                ns,
                "agora-controller".into(),
                id,
                leader_tx,
            ));
        }
        tokio::spawn(agora_control::status::run(
            client.clone(),
            out_rx.clone(),
            leader_rx.clone(),
        ));
        let ns = std::env::var("POD_NAMESPACE").unwrap_or_else(|_| "default".into());
        let settings = agora_control::deploy::Settings {
            image: args.proxy_image.clone(),
            xds_url: args.xds_url.clone().unwrap_or_else(|| {
                format!(
                    "http://agora-controller.{ns}.svc:{}",
                    args.xds_listen.port()
                )
            }),
        };
        tokio::spawn(agora_control::deploy::run(
            client, settings, deploy_rx, leader_rx,
        ));
    }

    let tls = match (&args.xds_tls_cert, &args.xds_tls_key) {
        (Some(c), Some(k)) => Some(xds::TlsFiles {
            cert_pem: std::fs::read(c)?,
            key_pem: std::fs::read(k)?,
        }),
        _ => None,
    };
    tracing::info!(addr = %args.xds_listen, tls = tls.is_some(), "xDS listening");
    let (stop_tx, mut stop_rx) = watch::channel(false);
    let mut ads = AdsService::new(out_rx);
    if let Some(client) = &cluster
        && args.xds_auth
    {
        ads = ads.with_auth(xds::auth::TokenReviewer::new(client.clone()));
    }
    let server = tokio::spawn(xds::serve(args.xds_listen, ads, tls, async move {
        let _ = stop_rx.wait_for(|s| *s).await;
    }));
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        r = server => return Ok(r??),
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    // Proxies keep their streams open; they reconnect to another replica, so do not wait
    // long for them.
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(())
}

/// Logs what a translation produced and what did not apply; writes the status file.
fn report(
    out: &translate::Output,
    version: u64,
    took: Duration,
    status_file: Option<&std::path::Path>,
) {
    let routes: usize = out.gateways.values().map(|g| g.routes.len()).sum();
    tracing::info!(
        version,
        gateways = out.gateways.len(),
        routes,
        backends = out.backends.len(),
        took_ms = took.as_secs_f64() * 1000.0,
        "translated"
    );
    for st in &out.statuses {
        let parents = st.status["parents"].as_array().into_iter().flatten();
        let mut conditions = st.status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(parents.flat_map(|p| p["conditions"].as_array().into_iter().flatten()));
        if conditions.any(|c| c["status"] == "False" && c["type"] != "Conflicted") {
            tracing::warn!(kind = st.kind, namespace = %st.namespace, name = %st.name,
                status = %st.status, "object not fully applied");
        }
    }
    if let Some(path) = status_file {
        match serde_saphyr::to_string(&out.statuses) {
            Ok(text) => {
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, text)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .is_err()
                {
                    tracing::warn!(path = %path.display(), "cannot write the status file");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize statuses"),
        }
    }
}
