//! `--manifests DIR`: every `*.yaml` / `*.yml` / `*.json` file under DIR (recursively) holds
//! Kubernetes objects, many per file. The directory is watched; a change re-reads it whole
//! after a short debounce and publishes a new snapshot. A document that is not a valid object
//! is skipped with an error naming its file and index (as the API server would refuse it);
//! the rest of the directory still applies.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::snapshot::{ObjKey, Snapshot};

/// What loading a directory produced: the snapshot and the documents that were skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    pub errors: Vec<Error>,
}

/// Reads every manifest file under `dir` into one snapshot.
pub fn load_dir(dir: &Path) -> Result<Loaded> {
    FileCache::default().load(dir)
}

/// Parsed files by path, re-parsed only when their size or modification time changes, so a
/// change to one file of a large directory costs one file's parse.
#[derive(Default)]
pub struct FileCache {
    files: std::collections::HashMap<PathBuf, (Stamp, Loaded)>,
}

type Stamp = (Option<std::time::SystemTime>, u64);

impl FileCache {
    /// The directory's snapshot, from cached files where they are unchanged.
    pub fn load(&mut self, dir: &Path) -> Result<Loaded> {
        let mut paths = Vec::new();
        collect(dir, &mut paths)?;
        paths.sort();
        let mut fresh = std::collections::HashMap::new();
        for p in paths {
            let meta = std::fs::metadata(&p).map_err(|source| Error::Read {
                path: p.clone(),
                source,
            })?;
            let stamp = (meta.modified().ok(), meta.len());
            let entry = match self.files.remove(&p) {
                Some((old, loaded)) if old == stamp && old.0.is_some() => (old, loaded),
                _ => {
                    let text = std::fs::read_to_string(&p).map_err(|source| Error::Read {
                        path: p.clone(),
                        source,
                    })?;
                    let mut loaded = Loaded::default();
                    load_str(&p, &text, &mut loaded);
                    (stamp, loaded)
                }
            };
            fresh.insert(p, entry);
        }
        self.files = fresh;
        let mut keys: Vec<&PathBuf> = self.files.keys().collect();
        keys.sort();
        let mut out = Loaded::default();
        for k in keys {
            let (_, part) = &self.files[k];
            out.snapshot.merge(&part.snapshot);
            out.errors.extend(part.errors.iter().map(Error::duplicate));
        }
        Ok(out)
    }
}

/// Adds the objects of one file's text to `out`.
pub fn load_str(path: &Path, text: &str, out: &mut Loaded) {
    let docs: Vec<Option<Value>> = match serde_saphyr::from_multiple(text) {
        Ok(d) => d,
        Err(e) => {
            out.errors.push(Error::Manifest {
                path: path.to_path_buf(),
                index: 0,
                message: format!("not YAML: {e}"),
            });
            return;
        }
    };
    for (index, doc) in docs.into_iter().enumerate() {
        let Some(doc) = doc.filter(|d| !d.is_null()) else {
            continue;
        };
        if let Err(message) = add_object(&mut out.snapshot, doc) {
            out.errors.push(Error::Manifest {
                path: path.to_path_buf(),
                index,
                message,
            });
        }
    }
}

/// Puts one object into the snapshot by its `apiVersion` and `kind`; a `List` adds its items.
/// Kinds the translator does not read (Deployments, ConfigMaps, ...) are ignored.
pub fn add_object(s: &mut Snapshot, doc: Value) -> Result<(), String> {
    let api = doc.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
    let group = api.rsplit_once('/').map_or("", |(g, _)| g);
    match (group, kind) {
        (_, "List") => {
            let items = doc.get("items").and_then(Value::as_array).cloned();
            for item in items.unwrap_or_default() {
                add_object(s, item)?;
            }
        }
        ("gateway.networking.k8s.io", "GatewayClass") => {
            let o: gateway_api::experimental::gatewayclasses::GatewayClass = parse(doc)?;
            s.gateway_classes
                .insert(o.metadata.name.clone().unwrap_or_default(), Arc::new(o));
        }
        ("gateway.networking.k8s.io", "Gateway") => {
            let o: gateway_api::experimental::gateways::Gateway = parse(doc)?;
            s.gateways.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("gateway.networking.k8s.io", "HTTPRoute") => {
            let o: gateway_api::experimental::httproutes::HttpRoute = parse(doc)?;
            s.http_routes.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("gateway.networking.k8s.io", "GRPCRoute") => {
            let o: gateway_api::experimental::grpcroutes::GrpcRoute = parse(doc)?;
            s.grpc_routes.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("gateway.networking.k8s.io", "TCPRoute") => {
            let o = super::l4::tcp_route(doc)?;
            s.tcp_routes.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("gateway.networking.k8s.io", "TLSRoute") => {
            let o = super::l4::tls_route(doc)?;
            s.tls_routes.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("gateway.networking.k8s.io", "ReferenceGrant") => {
            let o: gateway_api::experimental::referencegrants::ReferenceGrant = parse(doc)?;
            s.reference_grants.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("", "Namespace") => {
            let o: k8s_openapi::api::core::v1::Namespace = parse(doc)?;
            s.namespaces
                .insert(o.metadata.name.clone().unwrap_or_default(), Arc::new(o));
        }
        ("", "Service") => {
            let o: k8s_openapi::api::core::v1::Service = parse(doc)?;
            s.services.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("", "Secret") => {
            let o: k8s_openapi::api::core::v1::Secret = parse(doc)?;
            s.secrets.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("discovery.k8s.io", "EndpointSlice") => {
            let o: k8s_openapi::api::discovery::v1::EndpointSlice = parse(doc)?;
            s.endpoint_slices.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("agentgateway.dev", "AgentgatewayBackend") => {
            let o: crate::crd::AgentgatewayBackend = parse(doc)?;
            s.backends.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("agentgateway.dev", "AgentgatewayPolicy") => {
            let o: crate::crd::AgentgatewayPolicy = parse(doc)?;
            s.policies.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("inference.networking.k8s.io", "InferencePool") => {
            let o: crate::crd::InferencePool = parse(doc)?;
            s.inference_pools.insert(key(&o.metadata)?, Arc::new(o));
        }
        ("", "Pod") => {
            let o: k8s_openapi::api::core::v1::Pod = parse(doc)?;
            s.pods
                .insert(key(&o.metadata)?, Arc::new(super::lean_pod(o)));
        }
        ("agentgateway.dev", "AgentgatewayParameters") => {
            let o: crate::crd::AgentgatewayParameters = parse(doc)?;
            s.parameters.insert(key(&o.metadata)?, Arc::new(o));
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn parse<T: DeserializeOwned>(doc: Value) -> Result<T, String> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    serde_json::from_value(doc).map_err(|e| format!("{kind} {name:?}: {e}"))
}

/// `namespace/name`, the namespace defaulting to `default` as kubectl does.
fn key(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Result<ObjKey, String> {
    let name = m
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("metadata.name is required")?;
    Ok(ObjKey::new(
        m.namespace.clone().unwrap_or_else(|| "default".into()),
        name,
    ))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|source| Error::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in rd.flatten() {
        let p = entry.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            collect(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

/// Watches `dir` and publishes a fresh snapshot after every burst of changes (quiet for
/// `debounce`). Skipped documents are logged. Runs until the receiver side is dropped.
pub fn watch_dir(
    dir: PathBuf,
    debounce: Duration,
) -> Result<(
    watch::Receiver<std::sync::Arc<Snapshot>>,
    impl std::future::Future<Output = ()>,
)> {
    use notify::Watcher;
    let mut cache = FileCache::default();
    let first = load_logged(&mut cache, &dir)?;
    let (tx, rx) = watch::channel(std::sync::Arc::new(first));
    let (ev_tx, mut ev_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Our own reads show up as access events; only changes count.
        use notify::EventKind as K;
        use notify::event::{MetadataKind, ModifyKind};
        if let Ok(ev) = res
            && match ev.kind {
                K::Access(_) | K::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
                K::Any | K::Create(_) | K::Modify(_) | K::Remove(_) | K::Other => true,
            }
        {
            let _ = ev_tx.send(());
        }
    })
    .map_err(|e| Error::Serve(format!("watch {}: {e}", dir.display())))?;
    watcher
        .watch(&dir, notify::RecursiveMode::Recursive)
        .map_err(|e| Error::Serve(format!("watch {}: {e}", dir.display())))?;
    let task = async move {
        let _watcher = watcher;
        while super::next_burst(&mut ev_rx, debounce).await {
            match load_logged(&mut cache, &dir) {
                Ok(s) => {
                    if tx.send(std::sync::Arc::new(s)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "manifest directory unreadable; keeping the last snapshot")
                }
            }
        }
    };
    Ok((rx, task))
}

fn load_logged(cache: &mut FileCache, dir: &Path) -> Result<Snapshot> {
    let started = std::time::Instant::now();
    let loaded = cache.load(dir)?;
    tracing::info!(
        took_ms = started.elapsed().as_secs_f64() * 1000.0,
        routes = loaded.snapshot.http_routes.len(),
        "manifests loaded"
    );
    for e in &loaded.errors {
        tracing::warn!(error = %e, "manifest skipped");
    }
    Ok(loaded.snapshot)
}
