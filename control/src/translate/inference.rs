//! InferencePools (`inference.networking.k8s.io/v1`) as route backends: a backendRef of kind
//! InferencePool becomes a Backend (`inference/ns/name`) whose endpoints are the ready
//! selected Pods' IPs × `targetPorts`, with the endpoint picker (EPP) the proxy asks per
//! request. The picker is the `endpointPickerRef` Service, reached at its cluster IP (its DNS
//! name when headless) on the referenced port (9002 by default).
//!
//! Statuses: every pool an HTTPRoute of ours refers to gets one `status.parents` entry per
//! Gateway that route is attached to: Accepted (False `HTTPRouteNotAccepted` when the route
//! is not accepted there) and ResolvedRefs (False `InvalidExtensionRef` when the picker
//! reference does not resolve).

use std::collections::BTreeMap;

use agora_proto::resource as pb;
use serde_json::{Value, json};

use super::backend::RefError;
use super::grants;
use super::status::{ObjectStatus, condition};
use super::{GATEWAY_GROUP, Output, generation};
use crate::CONTROLLER_NAME;
use crate::crd::{DEFAULT_PICKER_PORT, INFERENCE_GROUP, InferencePool};
use crate::snapshot::{ObjKey, Snapshot};

/// The Backend key of an InferencePool.
pub(super) fn key(k: &ObjKey) -> String {
    format!("inference/{k}")
}

/// Registers the Backend of the pool `k` (once) and returns its key; `Err` says why the pool
/// cannot serve (the route's ResolvedRefs carries it).
pub(super) fn backend(s: &Snapshot, out: &mut Output, k: &ObjKey) -> Result<String, RefError> {
    let key = key(k);
    if out.backends.contains_key(&key) {
        return Ok(key);
    }
    let Some(pool) = s.inference_pools.get(k) else {
        return Err(RefError {
            reason: "BackendNotFound",
            message: format!("InferencePool {k} not found"),
        });
    };
    let picker = picker(s, k, pool).map_err(|message| RefError {
        reason: "BackendNotFound",
        message: format!("InferencePool {k}: {message}"),
    })?;
    let h2c = pool.spec.app_protocol.as_deref() == Some("kubernetes.io/h2c");
    out.backends.insert(
        key.clone(),
        pb::Backend {
            key: key.clone(),
            kind: Some(pb::backend::Kind::InferencePool(pb::InferencePoolBackend {
                endpoints: endpoints(s, k, pool),
                picker: Some(picker),
            })),
            pool: h2c.then_some(pb::ConnectionPool {
                http2: true,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    Ok(key)
}

/// The pool's endpoints: every ready Pod of its namespace whose labels include the
/// selector's, on every target port. An empty selector selects nothing (as a Service's).
fn endpoints(s: &Snapshot, k: &ObjKey, pool: &InferencePool) -> Vec<pb::Endpoint> {
    let want = &pool.spec.selector.match_labels;
    if want.is_empty() {
        return Vec::new();
    }
    let ports: Vec<u32> = pool
        .spec
        .target_ports
        .iter()
        .filter_map(|p| {
            u32::try_from(p.number)
                .ok()
                .filter(|n| (1..=65535).contains(n))
        })
        .collect();
    let empty = BTreeMap::new();
    let mut out = Vec::new();
    let pods = s.pods.range(ObjKey::new(&k.namespace, "")..);
    for (_, pod) in pods.take_while(|(pk, _)| pk.namespace == k.namespace) {
        let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
        if !want.iter().all(|(l, v)| labels.get(l) == Some(v)) || !crate::source::pod_ready(pod) {
            continue;
        }
        let ip = pod.status.as_ref().and_then(|st| st.pod_ip.clone());
        for port in &ports {
            out.push(pb::Endpoint {
                host: ip.clone().unwrap_or_default(),
                port: *port,
                weight: 1,
            });
        }
    }
    out
}

/// The endpoint picker of the pool, or why its reference does not resolve.
fn picker(s: &Snapshot, k: &ObjKey, pool: &InferencePool) -> Result<pb::EndpointPicker, String> {
    let Some(r) = &pool.spec.endpoint_picker_ref else {
        return Err("spec.endpointPickerRef is required".into());
    };
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err(format!(
            "endpointPickerRef kind {group}/{kind} is not supported (a core Service is)"
        ));
    }
    let svc_key = ObjKey::new(&k.namespace, &r.name);
    let Some(svc) = s.services.get(&svc_key) else {
        return Err(format!("endpoint picker Service {svc_key} not found"));
    };
    let spec = svc.spec.clone().unwrap_or_default();
    if spec.type_.as_deref() == Some("ExternalName") {
        return Err(format!(
            "endpoint picker Service {svc_key} is an ExternalName Service"
        ));
    }
    let port = r
        .port
        .as_ref()
        .map_or(i32::from(DEFAULT_PICKER_PORT), |p| p.number);
    let ports = spec.ports.unwrap_or_default();
    if !ports.is_empty() && !ports.iter().any(|p| p.port == port) {
        return Err(format!(
            "endpoint picker Service {svc_key} has no port {port}"
        ));
    }
    let port = u32::try_from(port)
        .ok()
        .filter(|p| (1..=65535).contains(p))
        .ok_or_else(|| format!("endpointPickerRef port {port} is not 1..=65535"))?;
    let host = match spec.cluster_ip.as_deref() {
        Some(ip) if !ip.is_empty() && ip != "None" => ip.to_string(),
        _ => format!("{}.{}.svc.cluster.local", svc_key.name, svc_key.namespace),
    };
    let fail_open = match r.failure_mode.as_deref() {
        None | Some("FailClose") => false,
        Some("FailOpen") => true,
        Some(other) => {
            return Err(format!(
                "endpointPickerRef failureMode {other:?} is not FailOpen or FailClose"
            ));
        }
    };
    Ok(pb::EndpointPicker {
        host,
        port,
        fail_open,
        timeout: None,
    })
}

/// Statuses of the pools HTTPRoutes refer to, from the routes' own (already computed)
/// statuses: one parent per Gateway a referring route is attached to.
pub(super) fn statuses(s: &Snapshot, out: &mut Output) {
    if s.inference_pools.is_empty() {
        return;
    }
    // Pool -> Gateway parentRef (as JSON, ordered) -> whether a route is accepted there.
    let mut parents: BTreeMap<ObjKey, BTreeMap<String, (Value, bool)>> = BTreeMap::new();
    for st in out.statuses.iter().filter(|st| st.kind == "HTTPRoute") {
        let rk = ObjKey::new(&st.namespace, &st.name);
        let Some(route) = s.http_routes.get(&rk) else {
            continue;
        };
        let pools: Vec<ObjKey> = route
            .spec
            .rules
            .iter()
            .flatten()
            .flat_map(|r| r.backend_refs.iter().flatten())
            .filter(|b| {
                b.group.as_deref() == Some(INFERENCE_GROUP)
                    && b.kind.as_deref() == Some("InferencePool")
            })
            .map(|b| ObjKey::new(b.namespace.as_deref().unwrap_or(&rk.namespace), &b.name))
            .filter(|k| {
                let from = grants::From {
                    group: GATEWAY_GROUP,
                    kind: "HTTPRoute",
                    namespace: &rk.namespace,
                };
                let to = grants::To {
                    group: INFERENCE_GROUP,
                    kind: "InferencePool",
                    namespace: &k.namespace,
                    name: &k.name,
                };
                s.inference_pools.contains_key(k) && grants::permitted(s, &from, &to)
            })
            .collect();
        if pools.is_empty() {
            continue;
        }
        for p in st.status["parents"].as_array().into_iter().flatten() {
            let gw = &p["parentRef"];
            let accepted = p["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Accepted" && c["status"] == "True");
            let parent = json!({
                "group": GATEWAY_GROUP,
                "kind": "Gateway",
                "namespace": gw["namespace"],
                "name": gw["name"],
            });
            for pool in &pools {
                let e = parents
                    .entry(pool.clone())
                    .or_default()
                    .entry(parent.to_string())
                    .or_insert((parent.clone(), false));
                e.1 |= accepted;
            }
        }
    }
    for (k, gws) in parents {
        let Some(pool) = s.inference_pools.get(&k) else {
            continue;
        };
        let g = generation(&pool.metadata);
        let resolved = match picker(s, &k, pool) {
            Ok(_) => condition("ResolvedRefs", true, "ResolvedRefs", "", g),
            Err(m) => condition("ResolvedRefs", false, "InvalidExtensionRef", &m, g),
        };
        let entries: Vec<Value> = gws
            .into_values()
            .map(|(parent, accepted)| {
                let accepted = if accepted {
                    condition("Accepted", true, "Accepted", "", g)
                } else {
                    condition(
                        "Accepted",
                        false,
                        "HTTPRouteNotAccepted",
                        "no HTTPRoute referring to this pool is accepted by the Gateway",
                        g,
                    )
                };
                json!({
                    "parentRef": parent,
                    "controllerName": CONTROLLER_NAME,
                    "conditions": [accepted, resolved.clone()],
                })
            })
            .collect();
        out.statuses.push(ObjectStatus {
            kind: "InferencePool",
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            status: json!({ "parents": entries }).into(),
        });
    }
}
