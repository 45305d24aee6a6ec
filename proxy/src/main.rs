//! `agora-proxy`: runs the gateway on a local config file (watched for changes) or on the
//! config the controller streams over delta xDS.

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
    #[arg(
        short = 'f',
        long = "config",
        required_unless_present = "xds",
        conflicts_with = "xds"
    )]
    config: Option<PathBuf>,
    /// Controller address (`http://HOST:PORT` or `https://…`): take config over delta xDS.
    #[arg(long, requires = "gateway")]
    xds: Option<String>,
    /// The Gateway (`NAMESPACE/NAME`) this proxy serves, with --xds.
    #[arg(long)]
    gateway: Option<String>,
    /// PEM CA bundle that verifies an `https://` controller.
    #[arg(long)]
    xds_ca: Option<PathBuf>,
    /// File holding the bearer token sent to the controller (a ServiceAccount token).
    #[arg(long)]
    xds_token_file: Option<PathBuf>,
    /// Listen on other local ports than the config names: `80=18080,443=18443`.
    #[arg(long, value_parser = parse_port_map, default_value = "")]
    port_map: agora_proxy::ir::PortMap,
    /// Redis for global rate limits (`redis://HOST:PORT/DB`).
    #[arg(long, env = "AGORA_REDIS_URL")]
    redis: Option<String>,
    /// Key sealing MCP session ids (64 hex digits or base64 of 32 bytes); every replica
    /// needs the same one to resume each other's sessions.
    #[arg(long, env = "AGORA_MCP_SESSION_KEY", hide_env_values = true)]
    mcp_session_key: Option<String>,
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

fn parse_port_map(s: &str) -> Result<agora_proxy::ir::PortMap, String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (from, to) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not LISTENER_PORT=LOCAL_PORT"))?;
            let port = |p: &str| {
                p.trim()
                    .parse::<u16>()
                    .map_err(|_| format!("{p:?} is not a port"))
            };
            Ok((port(from)?, port(to)?))
        })
        .collect()
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

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all().thread_name("agora-worker");
    if let Some(n) = args.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    agora_proxy::policy::redis::init(args.redis.clone());
    agora_proxy::mcp::session::init(args.mcp_session_key.as_deref())
        .map_err(|e| anyhow::anyhow!("--mcp-session-key: {e}"))?;
    let store = Store::with_port_map(args.port_map.clone());
    let metrics = Arc::new(Metrics::new());
    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    if let Some(config) = &args.config {
        watch::reload(config, &store, &metrics)
            .map_err(|e| anyhow::anyhow!("{}: {e}", config.display()))?;
        watch::spawn(config.clone(), store.clone(), metrics.clone())?;
    }
    if let Some(url) = &args.xds {
        let gateway = args.gateway.clone().unwrap_or_default();
        anyhow::ensure!(
            gateway
                .split_once('/')
                .is_some_and(|(n, g)| !n.is_empty() && !g.is_empty()),
            "--gateway must be NAMESPACE/NAME, got {gateway:?}"
        );
        let read = |p: &Option<PathBuf>| -> anyhow::Result<Option<Vec<u8>>> {
            p.as_ref()
                .map(|p| std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
                .transpose()
        };
        let cfg = agora_proxy::xds::XdsConfig {
            url: url.clone(),
            gateway,
            node_id: std::env::var("POD_NAME")
                .unwrap_or_else(|_| format!("agora-proxy-{}", std::process::id())),
            ca_pem: read(&args.xds_ca)?,
            token_file: args.xds_token_file.clone(),
        };
        tokio::spawn(agora_proxy::xds::run(
            cfg,
            store.clone(),
            metrics.clone(),
            shutdown_rx.clone(),
        ));
    }

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

    tokio::spawn(health::run(store.clone(), shutdown_rx.clone()));
    tokio::spawn(agora_proxy::policy::jwks::run(shutdown_rx.clone()));
    let l4 = Arc::new(agora_proxy::l4::L4Context {
        metrics: metrics.clone(),
        inflight: inflight.clone(),
        access_log: !args.no_access_log,
    });
    let listeners = tokio::spawn(server::run(store.clone(), app, l4, shutdown_rx));

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
