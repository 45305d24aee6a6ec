//! The cluster as a source: one kube-rs watcher per kind feeds a shared snapshot, published
//! after a quiet `debounce` once every kind has completed its first list (so the first
//! translation never sees a half-listed cluster and withdraws routes). A kind whose CRD is
//! not installed counts as listed and empty, and is retried in the background.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};

use super::l4;
use crate::snapshot::{ObjKey, Snapshot};

/// Where one kind lives in the snapshot.
struct Slot<K> {
    insert: fn(&mut Snapshot, Arc<K>),
    remove: fn(&mut Snapshot, &K),
    clear: fn(&mut Snapshot),
}

fn obj_key(m: &ObjectMeta) -> Option<ObjKey> {
    Some(ObjKey::new(
        m.namespace.clone().unwrap_or_default(),
        m.name.clone()?,
    ))
}

macro_rules! namespaced {
    ($field:ident) => {
        Slot {
            insert: |s, o| {
                if let Some(k) = obj_key(&o.meta()) {
                    s.$field.insert(k, o);
                }
            },
            remove: |s, o| {
                if let Some(k) = obj_key(o.meta()) {
                    s.$field.remove(&k);
                }
            },
            clear: |s| s.$field.clear(),
        }
    };
}

macro_rules! cluster {
    ($field:ident) => {
        Slot {
            insert: |s, o| {
                if let Some(n) = o.meta().name.clone() {
                    s.$field.insert(n, o);
                }
            },
            remove: |s, o| {
                if let Some(n) = &o.meta().name {
                    s.$field.remove(n);
                }
            },
            clear: |s| s.$field.clear(),
        }
    };
}

/// Pods, kept lean (labels, IPs, readiness) for InferencePool selectors.
fn pods() -> Slot<k8s_openapi::api::core::v1::Pod> {
    Slot {
        insert: |s, o| {
            if let Some(k) = obj_key(&o.metadata) {
                let lean = super::lean_pod(Arc::unwrap_or_clone(o));
                s.pods.insert(k, Arc::new(lean));
            }
        },
        remove: |s, o| {
            if let Some(k) = obj_key(&o.metadata) {
                s.pods.remove(&k);
            }
        },
        clear: |s| s.pods.clear(),
    }
}

/// A slot for a kind watched as [`DynamicObject`]s: `$convert` turns the object's JSON into
/// the typed object (one that does not convert is skipped with a warning, as the API server
/// would have refused it).
macro_rules! dynamic {
    ($field:ident, $convert:path) => {
        Slot::<DynamicObject> {
            insert: |s, o| {
                let typed = serde_json::to_value(&*o)
                    .map_err(|e| e.to_string())
                    .and_then($convert);
                match (typed, obj_key(&o.metadata)) {
                    (Ok(t), Some(k)) => {
                        s.$field.insert(k, Arc::new(t));
                    }
                    (Err(e), k) => {
                        tracing::warn!(object = ?k, error = %e, "object skipped");
                    }
                    (Ok(_), None) => {}
                }
            },
            remove: |s, o| {
                if let Some(k) = obj_key(&o.metadata) {
                    s.$field.remove(&k);
                }
            },
            clear: |s| s.$field.clear(),
        }
    };
}

struct Shared {
    snapshot: Mutex<Snapshot>,
    listed: Vec<AtomicBool>,
    changed: mpsc::UnboundedSender<()>,
}

/// Watches every kind the translator reads and publishes snapshots.
pub fn watch_cluster(client: Client, debounce: Duration) -> watch::Receiver<Arc<Snapshot>> {
    use crate::crd::{AgentgatewayBackend, AgentgatewayParameters, AgentgatewayPolicy};
    use gateway_api::experimental::{
        gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute,
        httproutes::HttpRoute, referencegrants::ReferenceGrant,
    };
    use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
    use k8s_openapi::api::discovery::v1::EndpointSlice;

    const KINDS: usize = 16;
    let (changed, mut changes) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        snapshot: Mutex::new(Snapshot::default()),
        listed: (0..KINDS).map(|_| AtomicBool::new(false)).collect(),
        changed,
    });
    let c = &client;
    spawn::<GatewayClass>(c, &shared, 0, cluster!(gateway_classes));
    spawn::<Gateway>(c, &shared, 1, namespaced!(gateways));
    spawn::<HttpRoute>(c, &shared, 2, namespaced!(http_routes));
    spawn::<ReferenceGrant>(c, &shared, 3, namespaced!(reference_grants));
    spawn::<Namespace>(c, &shared, 4, cluster!(namespaces));
    spawn::<Service>(c, &shared, 5, namespaced!(services));
    spawn::<EndpointSlice>(c, &shared, 6, namespaced!(endpoint_slices));
    spawn::<Secret>(c, &shared, 7, namespaced!(secrets));
    spawn::<AgentgatewayBackend>(c, &shared, 8, namespaced!(backends));
    spawn::<AgentgatewayPolicy>(c, &shared, 9, namespaced!(policies));
    spawn::<AgentgatewayParameters>(c, &shared, 10, namespaced!(parameters));
    spawn::<GrpcRoute>(c, &shared, 11, namespaced!(grpc_routes));
    spawn::<crate::crd::InferencePool>(c, &shared, 12, namespaced!(inference_pools));
    spawn::<k8s_openapi::api::core::v1::Pod>(c, &shared, 13, pods());
    let (tcp, tls) = (l4::TCP_ROUTE_VERSIONS, l4::TLS_ROUTE_VERSIONS);
    let tcp_slot = dynamic!(tcp_routes, l4::tcp_route);
    spawn_versions(c, &shared, 14, ("TCPRoute", "tcproutes", tcp), tcp_slot);
    let tls_slot = dynamic!(tls_routes, l4::tls_route);
    spawn_versions(c, &shared, 15, ("TLSRoute", "tlsroutes", tls), tls_slot);

    let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
    tokio::spawn(async move {
        let mut first = true;
        while super::next_burst(&mut changes, debounce).await {
            if !shared.listed.iter().all(|l| l.load(Ordering::Acquire)) {
                continue;
            }
            if first {
                tracing::info!("cluster listed; translating");
                first = false;
            }
            let snap = shared
                .snapshot
                .lock()
                .map(|s| s.clone())
                .unwrap_or_else(|p| p.into_inner().clone());
            if tx.send(Arc::new(snap)).is_err() {
                return;
            }
        }
    });
    rx
}

fn spawn<K>(client: &Client, shared: &Arc<Shared>, index: usize, slot: Slot<K>)
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let kind = K::kind(&()).to_string();
    tokio::spawn(watch(api, kind, shared.clone(), index, slot));
}

/// Lists and watches `api` into the snapshot through `slot`.
async fn watch<K>(api: Api<K>, kind: String, shared: Arc<Shared>, index: usize, slot: Slot<K>)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let mut stream = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut buffer: Vec<Arc<K>> = Vec::new();
    while let Some(ev) = stream.next().await {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                let missing = matches!(
                    &e,
                    watcher::Error::InitialListFailed(kube::Error::Api(s)) if s.is_not_found()
                );
                if missing && !shared.listed[index].swap(true, Ordering::AcqRel) {
                    tracing::warn!(%kind, "API not installed; treating it as empty");
                    let _ = shared.changed.send(());
                } else if !missing {
                    tracing::warn!(%kind, error = %e, "watch failed; retrying");
                }
                continue;
            }
        };
        let mut s = match shared.snapshot.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match ev {
            Event::Init => buffer.clear(),
            Event::InitApply(o) => buffer.push(Arc::new(o)),
            Event::InitDone => {
                (slot.clear)(&mut s);
                for o in buffer.drain(..) {
                    (slot.insert)(&mut s, o);
                }
                shared.listed[index].store(true, Ordering::Release);
            }
            Event::Apply(o) => (slot.insert)(&mut s, Arc::new(o)),
            Event::Delete(o) => (slot.remove)(&mut s, &o),
        }
        drop(s);
        let _ = shared.changed.send(());
    }
}

/// Watches a kind served in several versions (TCPRoute, TLSRoute) in the first of `versions`
/// the cluster serves, as [`DynamicObject`]s that `slot` converts. While no version is served
/// (the CRD is not installed), the kind counts as listed and empty, and discovery is retried
/// every 30 s.
fn spawn_versions(
    client: &Client,
    shared: &Arc<Shared>,
    index: usize,
    (kind, plural, versions): (&'static str, &'static str, &'static [&'static str]),
    slot: Slot<DynamicObject>,
) {
    let client = client.clone();
    let shared = shared.clone();
    tokio::spawn(async move {
        let version = loop {
            match served_version(&client, plural, versions).await {
                Ok(Some(v)) => break v,
                Ok(None) => {
                    if !shared.listed[index].swap(true, Ordering::AcqRel) {
                        tracing::warn!(%kind, "API not installed; treating it as empty");
                        let _ = shared.changed.send(());
                    }
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                Err(e) => {
                    tracing::warn!(%kind, error = %e, "API discovery failed; retrying");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        tracing::info!(%kind, %version, "watching");
        let group = crate::translate::GATEWAY_GROUP;
        let ar = ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        };
        watch(Api::all_with(client, &ar), kind.into(), shared, index, slot).await;
    });
}

/// The first of `versions` in which the cluster serves `plural` of the Gateway API group.
async fn served_version(
    client: &Client,
    plural: &str,
    versions: &[&'static str],
) -> kube::Result<Option<&'static str>> {
    for v in versions {
        let gv = format!("{}/{v}", crate::translate::GATEWAY_GROUP);
        match client.list_api_group_resources(&gv).await {
            Ok(list) if list.resources.iter().any(|r| r.name == plural) => return Ok(Some(v)),
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}
