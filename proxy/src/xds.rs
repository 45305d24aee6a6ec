//! Delta-xDS client: `agora-proxy --xds URL --gateway NS/NAME`. Holds the resources the
//! controller sent (name → version, resource), applies each response whole to the same
//! store the local file feeds, and ACKs it, or NACKs it with the reason and keeps serving
//! the last good config. On a broken stream it reconnects with exponential backoff and
//! reports what it holds, so the controller resends only what changed meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agora_proto::resource::Resource;
use agora_proto::xds::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
use agora_proto::xds::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node, RESOURCE_TYPE_URL, Status,
};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use crate::metrics::Metrics;
use crate::store::Store;

/// Where to get config and who we are.
#[derive(Clone, Debug)]
pub struct XdsConfig {
    /// `http://host:port` or `https://host:port`.
    pub url: String,
    /// `namespace/name` of the Gateway this proxy serves.
    pub gateway: String,
    pub node_id: String,
    /// PEM CA to verify an `https://` controller with (default: system roots).
    pub ca_pem: Option<Vec<u8>>,
    /// File whose content is sent as `authorization: Bearer …` (the pod's projected
    /// ServiceAccount token in a cluster); re-read on every connect, as kubelet rotates it.
    pub token_file: Option<std::path::PathBuf>,
}

/// Resources held from the controller, by xDS name: version and resource (shared with the
/// IR built from them).
type Held = BTreeMap<String, HeldEntry>;
type HeldEntry = (String, Arc<Resource>);

/// What each name touched by an update held before it (`None`: absent), newest last.
type Undo = Vec<(String, Option<HeldEntry>)>;

/// Keeps a stream to the controller open until `shutdown`.
pub async fn run(
    cfg: XdsConfig,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut held = Held::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut synced = false;
        let outcome = tokio::select! {
            r = session(&cfg, &store, &metrics, &mut held, &mut synced) => r,
            _ = shutdown.changed() => return,
        };
        match outcome {
            Ok(()) => {
                tracing::warn!(url = %cfg.url, "xDS stream closed by the controller; reconnecting")
            }
            Err(e) => {
                tracing::warn!(url = %cfg.url, error = %e, retry_in = ?backoff, "xDS stream failed; serving the last good config")
            }
        }
        // A stream that delivered config is retried quickly; repeated failures back off.
        if synced {
            backoff = Duration::from_millis(100);
        }
        let half = u64::try_from(backoff.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter = Duration::from_millis(rand::random::<u64>() % (half + 1));
        tokio::select! {
            _ = tokio::time::sleep(backoff + jitter) => {},
            _ = shutdown.changed() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn session(
    cfg: &XdsConfig,
    store: &Store,
    metrics: &Metrics,
    held: &mut Held,
    synced: &mut bool,
) -> Result<(), String> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(cfg.url.clone())
        .map_err(|e| format!("bad xDS URL: {e}"))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30));
    if cfg.url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(ca) = &cfg.ca_pem {
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(ca));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| e.to_string())?;
    }
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut client =
        AggregatedDiscoveryServiceClient::new(channel).max_decoding_message_size(256 << 20);
    let (tx, rx) = mpsc::channel(4);
    let first = DeltaDiscoveryRequest {
        node: Some(Node {
            id: cfg.node_id.clone(),
            metadata: [("gateway".to_string(), cfg.gateway.clone())].into(),
        }),
        type_url: RESOURCE_TYPE_URL.to_string(),
        initial_resource_versions: held
            .iter()
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect(),
        ..Default::default()
    };
    tx.send(first).await.map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    if let Some(path) = &cfg.token_file {
        let t = std::fs::read_to_string(path)
            .map_err(|e| format!("token file {}: {e}", path.display()))?;
        let v = format!("Bearer {}", t.trim())
            .parse()
            .map_err(|_| "the token is not a valid header value".to_string())?;
        request.metadata_mut().insert("authorization", v);
    }
    let mut stream = client
        .delta_aggregated_resources(request)
        .await
        .map_err(|e| format!("open stream: {e}"))?
        .into_inner();
    tracing::info!(url = %cfg.url, gateway = %cfg.gateway, "xDS stream open");
    while let Some(resp) = stream.message().await.map_err(|e| e.to_string())? {
        let nonce = resp.nonce.clone();
        let outcome = apply(cfg, store, held, resp);
        let error_detail = match outcome {
            Ok(v) => {
                *synced = true;
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                metrics
                    .config_version
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
                None
            }
            Err(message) => {
                metrics
                    .config_reloads
                    .with_label_values(&["rejected"])
                    .inc();
                tracing::error!(error = %message, "xDS update rejected (NACK); keeping the last good config");
                Some(Status { code: 3, message })
            }
        };
        let ack = DeltaDiscoveryRequest {
            type_url: RESOURCE_TYPE_URL.to_string(),
            response_nonce: nonce,
            error_detail,
            ..Default::default()
        };
        tx.send(ack).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Applies one response to what is held, in place; if the response is malformed or the
/// store rejects the result, the held set is put back as it was.
fn apply(
    cfg: &XdsConfig,
    store: &Store,
    held: &mut Held,
    resp: DeltaDiscoveryResponse,
) -> Result<u64, String> {
    if resp.type_url != RESOURCE_TYPE_URL {
        return Err(format!("unexpected type URL {:?}", resp.type_url));
    }
    let started = std::time::Instant::now();
    let mut undo = Undo::new();
    let outcome = apply_in_place(cfg, store, held, &resp, &mut undo);
    match &outcome {
        Ok(v) => tracing::info!(
            snapshot = %resp.system_version_info,
            changed = resp.resources.len(),
            removed = resp.removed_resources.len(),
            total = held.len(),
            version = v,
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "xDS update applied"
        ),
        Err(_) => {
            for (name, before) in undo.into_iter().rev() {
                match before {
                    Some(entry) => held.insert(name, entry),
                    None => held.remove(&name),
                };
            }
        }
    }
    outcome
}

fn apply_in_place(
    cfg: &XdsConfig,
    store: &Store,
    held: &mut Held,
    resp: &DeltaDiscoveryResponse,
    undo: &mut Undo,
) -> Result<u64, String> {
    for name in &resp.removed_resources {
        if let Some(before) = held.remove(name) {
            undo.push((name.clone(), Some(before)));
        }
    }
    for r in &resp.resources {
        let any = r
            .resource
            .as_ref()
            .ok_or_else(|| format!("resource {} has no body", r.name))?;
        if any.type_url != RESOURCE_TYPE_URL {
            return Err(format!(
                "resource {}: unexpected type {:?}",
                r.name, any.type_url
            ));
        }
        let res = Resource::decode(any.value.as_slice())
            .map_err(|e| format!("resource {}: {e}", r.name))?;
        let before = held.insert(r.name.clone(), (r.version.clone(), Arc::new(res)));
        undo.push((r.name.clone(), before));
    }
    let resources = held.values().map(|(_, r)| r.clone()).collect();
    store
        .apply_shared(&cfg.gateway, resources)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
