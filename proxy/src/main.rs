//! `agora-proxy`: runs the gateway on a local config file (watched for changes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use pingora::server::configuration::ServerConf;

use agora_proxy::{
    admin::Admin, gateway::Gateway, health, metrics::Metrics, mirror::Mirror, server, store::Store,
    watch,
};

/// Agora gateway proxy.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Local YAML config file; watched, and re-applied on every change.
    #[arg(short = 'f', long = "config")]
    config: PathBuf,
    /// Admin listener (health, readiness, metrics, config dump).
    #[arg(long, default_value = "127.0.0.1:15000")]
    admin: String,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
    /// How long SIGTERM waits for open connections to finish.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// Disable the JSON access log on stdout.
    #[arg(long)]
    no_access_log: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    agora_proxy::config::parse_duration(s)
        .ok_or_else(|| format!("{s:?} is not a duration like 10s"))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("agora-worker");
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let store = Store::new();
    let metrics = Arc::new(Metrics::new());
    watch::reload(&args.config, &store, &metrics)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    watch::spawn(args.config.clone(), store.clone(), metrics.clone())?;

    let conf = ServerConf {
        max_retries: 16,
        upstream_keepalive_pool_size: 1024,
        ..Default::default()
    };
    let inflight = Arc::new(server::Inflight::default());
    let gateway = Gateway {
        inflight: inflight.clone(),
        store: store.clone(),
        metrics: metrics.clone(),
        mirror: Arc::new(Mirror::default()),
        access_log: !args.no_access_log,
    };
    let mut proxy = pingora::proxy::http_proxy(&Arc::new(conf), gateway);
    let mut opts = pingora::apps::HttpServerOptions::default();
    opts.h2c = true;
    proxy.server_options = Some(opts);
    let app = Arc::new(proxy);

    let admin_listener = tokio::net::TcpListener::bind(&args.admin)
        .await
        .map_err(|e| anyhow::anyhow!("admin listener {}: {e}", args.admin))?;
    tracing::info!(addr = %args.admin, "admin listening");
    tokio::spawn(
        Arc::new(Admin {
            store: store.clone(),
            metrics: metrics.clone(),
        })
        .serve(admin_listener),
    );

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(health::run(store.clone(), shutdown_rx.clone()));
    let listeners = tokio::spawn(server::run(store.clone(), app, shutdown_rx));

    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {
            tracing::info!(in_flight = inflight.open(), "SIGTERM: draining");
            let _ = shutdown_tx.send(true);
            let _ = listeners.await;
            let left = inflight.drain(args.drain_timeout).await;
            tracing::info!(left, "drained; exiting");
        }
        _ = int.recv() => tracing::info!("SIGINT: exiting"),
    }
    agora_proxy::access_log::flush();
    Ok(())
}
