//! Delta ADS server. Each proxy opens one `DeltaAggregatedResources` stream and names its
//! Gateway in the node metadata (`gateway: namespace/name`); it is sent that Gateway's
//! resources ([`Output::resources_for`]) and, after each ACK, only what changed since: added
//! or changed resources by name and version, and the names of removed ones. One response is
//! in flight per stream; changes that land meanwhile are coalesced into the next one. A NACK
//! leaves the proxy on its last good config, and that snapshot is not re-sent to it (the
//! next snapshot is). Versions are content hashes, so a reconnecting proxy that reports what
//! it holds (`initial_resource_versions`) is sent only the difference.

pub mod auth;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use agora_proto::xds::aggregated_discovery_service_server::{
    AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
};
use agora_proto::xds::{
    DeltaDiscoveryRequest, DeltaDiscoveryResponse, RESOURCE_TYPE_URL, Resource as XdsResource,
};
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::error::{Error, Result};
use crate::translate::Output;

/// A translated snapshot, numbered in publication order, with each Gateway's resources
/// encoded once for every proxy of that Gateway.
#[derive(Debug, Default)]
pub struct Published {
    pub version: u64,
    pub output: Output,
    encoded: BTreeMap<String, Arc<Encoded>>,
}

/// One Gateway's resources by xDS name; an unchanged resource shares its entry with the
/// previous snapshot.
type Encoded = BTreeMap<String, Arc<Entry>>;

#[derive(Debug)]
struct Entry {
    resource: agora_proto::resource::Resource,
    version: String,
    any: prost_types::Any,
}

impl Published {
    /// Encodes `output` per Gateway; resources equal to those of `previous` keep their
    /// encoding (no re-encode, no re-hash).
    pub fn new(version: u64, output: Output, previous: Option<&Published>) -> Self {
        let encoded = output
            .gateways
            .keys()
            .map(|gw| {
                let prev = previous.and_then(|p| p.encoded.get(gw));
                let enc = encode(&output, gw, prev.map(|p| &**p));
                (gw.clone(), Arc::new(enc))
            })
            .collect();
        Self {
            version,
            output,
            encoded,
        }
    }
}

/// The ADS service; clones share the published snapshot.
#[derive(Clone)]
pub struct AdsService {
    outputs: watch::Receiver<Arc<Published>>,
    auth: Option<Arc<auth::TokenReviewer>>,
}

impl AdsService {
    pub fn new(outputs: watch::Receiver<Arc<Published>>) -> Self {
        Self {
            outputs,
            auth: None,
        }
    }

    /// Requires proxies to present a ServiceAccount token of their Gateway's namespace.
    pub fn with_auth(mut self, reviewer: auth::TokenReviewer) -> Self {
        self.auth = Some(Arc::new(reviewer));
        self
    }
}

/// TLS for the xDS port: PEM certificate chain and key.
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

/// Serves ADS on `addr` until `shutdown` resolves.
pub async fn serve(
    addr: SocketAddr,
    service: AdsService,
    tls: Option<TlsFiles>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)));
    if let Some(t) = tls {
        let cfg = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(t.cert_pem, t.key_pem));
        builder = builder
            .tls_config(cfg)
            .map_err(|e| Error::Serve(e.to_string()))?;
    }
    builder
        .add_service(AggregatedDiscoveryServiceServer::new(service))
        .serve_with_shutdown(addr, shutdown)
        .await
        .map_err(|e| Error::Serve(e.to_string()))
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<DeltaDiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for AdsService {
    type DeltaAggregatedResourcesStream = ResponseStream;

    /// Runs for the life of one proxy connection.
    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<ResponseStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut inbound = request.into_inner();
        let first = inbound
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("stream closed before the first request"))?;
        if !first.type_url.is_empty() && first.type_url != RESOURCE_TYPE_URL {
            return Err(Status::invalid_argument(format!(
                "unknown type URL {:?} (this server serves {RESOURCE_TYPE_URL})",
                first.type_url
            )));
        }
        let node = first.node.clone().unwrap_or_default();
        let gateway = node
            .metadata
            .get("gateway")
            .filter(|g| g.contains('/'))
            .cloned()
            .ok_or_else(|| {
                Status::invalid_argument("node metadata must name the gateway as namespace/name")
            })?;
        if let Some(auth) = &self.auth {
            auth.admit(authorization.as_deref(), &gateway).await?;
        }
        let (tx, rx) = mpsc::channel(4);
        let session = Session {
            node_id: node.id,
            gateway,
            acked: Held::Reported(first.initial_resource_versions.into_iter().collect()),
            outputs: self.outputs.clone(),
            tx,
            nonce: 0,
        };
        tokio::spawn(session.run(inbound));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// A response awaiting its ACK or NACK.
struct Pending {
    nonce: String,
    snapshot: u64,
    /// What the proxy holds once it ACKs.
    desired: Arc<Encoded>,
}

/// What a proxy holds: what it reported when it connected, then what it last ACKed (shared
/// with the published snapshot, not copied).
enum Held {
    Reported(HashMap<String, String>),
    Acked(Arc<Encoded>),
}

impl Held {
    fn version(&self, name: &str) -> Option<&str> {
        match self {
            Held::Reported(m) => m.get(name).map(String::as_str),
            Held::Acked(e) => e.get(name).map(|e| e.version.as_str()),
        }
    }

    /// Names held that `desired` lacks, sorted.
    fn removed(&self, desired: &Encoded) -> Vec<String> {
        let mut out: Vec<String> = match self {
            Held::Reported(m) => m
                .keys()
                .filter(|k| !desired.contains_key(*k))
                .cloned()
                .collect(),
            Held::Acked(e) => e
                .keys()
                .filter(|k| !desired.contains_key(*k))
                .cloned()
                .collect(),
        };
        out.sort();
        out
    }
}

struct Session {
    node_id: String,
    gateway: String,
    /// What the proxy holds: resource name → version.
    acked: Held,
    outputs: watch::Receiver<Arc<Published>>,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    nonce: u64,
}

impl Session {
    async fn run(mut self, mut inbound: Streaming<DeltaDiscoveryRequest>) {
        tracing::info!(node = %self.node_id, gateway = %self.gateway, "proxy connected");
        let mut pending: Option<Pending> = None;
        let mut rejected: Option<u64> = None;
        let mut sent_any = false;
        loop {
            if pending.is_none() {
                let published = self.outputs.borrow_and_update().clone();
                // Version 0 is "nothing translated yet" (a cluster still being listed): say
                // nothing rather than tell a reconnecting proxy to drop its config.
                if published.version > 0 && rejected != Some(published.version) {
                    match self.send_delta(&published, !sent_any).await {
                        Ok(p) => {
                            sent_any |= p.is_some();
                            pending = p;
                        }
                        Err(()) => break,
                    }
                }
            }
            tokio::select! {
                msg = inbound.message() => match msg {
                    Ok(Some(req)) => {
                        let Some(p) = pending.take_if(|p| p.nonce == req.response_nonce) else {
                            continue; // a stale nonce or a subscription change: nothing to settle
                        };
                        match req.error_detail {
                            Some(err) => {
                                tracing::warn!(node = %self.node_id, gateway = %self.gateway,
                                    snapshot = p.snapshot, error = %err.message, "proxy rejected config (NACK)");
                                rejected = Some(p.snapshot);
                            }
                            None => {
                                tracing::debug!(node = %self.node_id, snapshot = p.snapshot, "ACK");
                                self.acked = Held::Acked(p.desired);
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::info!(node = %self.node_id, error = %e, "proxy stream ended");
                        break;
                    }
                },
                changed = self.outputs.changed(), if pending.is_none() => {
                    if changed.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!(node = %self.node_id, gateway = %self.gateway, "proxy disconnected");
    }

    /// Sends what changed between the proxy's state and `published`; `force` sends even an
    /// empty delta (the first response completes the proxy's initial sync).
    async fn send_delta(
        &mut self,
        published: &Published,
        force: bool,
    ) -> Result<Option<Pending>, ()> {
        let desired = published
            .encoded
            .get(&self.gateway)
            .cloned()
            .unwrap_or_default();
        let resources: Vec<XdsResource> = desired
            .iter()
            .filter(|(name, e)| self.acked.version(name) != Some(e.version.as_str()))
            .map(|(name, e)| XdsResource {
                name: name.clone(),
                version: e.version.clone(),
                resource: Some(e.any.clone()),
            })
            .collect();
        let removed = self.acked.removed(&desired);
        if resources.is_empty() && removed.is_empty() && !force {
            return Ok(None);
        }
        self.nonce += 1;
        let nonce = self.nonce.to_string();
        tracing::debug!(node = %self.node_id, snapshot = published.version,
            changed = resources.len(), removed = removed.len(), "sending delta");
        let resp = DeltaDiscoveryResponse {
            system_version_info: published.version.to_string(),
            resources,
            type_url: RESOURCE_TYPE_URL.to_string(),
            nonce: nonce.clone(),
            removed_resources: removed,
        };
        self.tx.send(Ok(resp)).await.map_err(|_| ())?;
        Ok(Some(Pending {
            nonce,
            snapshot: published.version,
            desired,
        }))
    }
}

/// Encodes the resources of `gateway` into `Any`s with a content-hash version each,
/// sharing `previous` entries whose resource is unchanged (compared in place, not copied).
fn encode(output: &Output, gateway: &str, previous: Option<&Encoded>) -> Encoded {
    let mut out = Encoded::new();
    output.each_resource(gateway, |name, resource| {
        if let Some(e) = previous.and_then(|p| p.get(&name))
            && resource.same_as(&e.resource)
        {
            out.insert(name, e.clone());
            return;
        }
        let resource = resource.to_resource();
        let value = resource.encode_to_vec();
        let version = format!("{:016x}", fnv1a(&value));
        let any = prost_types::Any {
            type_url: RESOURCE_TYPE_URL.to_string(),
            value,
        };
        let entry = Arc::new(Entry {
            resource,
            version,
            any,
        });
        out.insert(name, entry);
    });
    out
}

/// FNV-1a, 64 bit: stable across processes, so versions survive a controller restart.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
