//! backendRefs: a Service (core group) by name and port, in the route's namespace or, with a
//! ReferenceGrant, another one. A resolved ref registers a Backend (`ns/service:port`) and
//! its Service; an unresolved one says why, in Gateway API's reason vocabulary.

use agora_proto::resource as pb;

use super::grants;
use super::{GATEWAY_GROUP, Output};
use crate::snapshot::{ObjKey, Snapshot};

/// Why a backendRef does not resolve; the route's ResolvedRefs condition carries it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RefError {
    pub reason: &'static str,
    pub message: String,
}

/// A reference to a backend, from a route in `from_ns`.
pub(super) struct BackendRef<'a> {
    pub group: Option<&'a str>,
    pub kind: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub port: Option<i32>,
    /// `HTTPRoute`, `GRPCRoute`, `TCPRoute` or `TLSRoute` (ReferenceGrants name the kind).
    pub route_kind: &'a str,
    /// The route speaks gRPC: the backend gets HTTP/2 (its own Backend resource).
    pub h2: bool,
}

impl<'a> BackendRef<'a> {
    /// A reference from a route of `route_kind` (gRPC routes get HTTP/2 backends).
    pub fn new(
        group: Option<&'a str>,
        kind: Option<&'a str>,
        namespace: Option<&'a str>,
        name: &'a str,
        port: Option<i32>,
        route_kind: &'a str,
    ) -> Self {
        Self {
            group,
            kind,
            namespace,
            name,
            port,
            route_kind,
            h2: route_kind == "GRPCRoute",
        }
    }
}

/// Resolves a reference made by the route `route`, registering what it needs in `out`.
/// Returns the Backend key (also noted in `out.journal` while a route is being recorded).
pub(super) fn resolve(
    s: &Snapshot,
    out: &mut Output,
    route: &ObjKey,
    r: &BackendRef<'_>,
) -> Result<String, RefError> {
    let key = resolve_ref(s, out, route, r)?;
    if let Some(journal) = &mut out.journal {
        journal.push(key.clone());
    }
    Ok(key)
}

fn resolve_ref(
    s: &Snapshot,
    out: &mut Output,
    route: &ObjKey,
    r: &BackendRef<'_>,
) -> Result<String, RefError> {
    let group = r.group.unwrap_or("");
    let kind = r.kind.unwrap_or("Service");
    let agw = group == crate::crd::GROUP && kind == "AgentgatewayBackend";
    let pool = group == crate::crd::INFERENCE_GROUP && kind == "InferencePool";
    if !agw && !pool && (!group.is_empty() || kind != "Service") {
        return Err(RefError {
            reason: "InvalidKind",
            message: format!(
                "backendRef kind {group}/{kind} is not supported (core Service, \
                 agentgateway.dev AgentgatewayBackend and inference.networking.k8s.io \
                 InferencePool are)"
            ),
        });
    }
    let ns = r.namespace.unwrap_or(&route.namespace);
    let from = grants::From {
        group: GATEWAY_GROUP,
        kind: r.route_kind,
        namespace: &route.namespace,
    };
    let to = grants::To {
        group,
        kind,
        namespace: ns,
        name: r.name,
    };
    if !grants::permitted(s, &from, &to) {
        return Err(RefError {
            reason: "RefNotPermitted",
            message: format!(
                "no ReferenceGrant in namespace {ns} lets {}s from {} refer to {kind} {}",
                r.route_kind, route.namespace, r.name
            ),
        });
    }
    if pool {
        return super::inference::backend(s, out, &ObjKey::new(ns, r.name));
    }
    if agw {
        let k = ObjKey::new(ns, r.name);
        let key = super::agw::key(&k);
        return if out.backends.contains_key(&key) {
            Ok(key)
        } else {
            Err(super::agw::error(s, &k))
        };
    }
    let svc_key = ObjKey::new(ns, r.name);
    let Some(svc) = s.services.get(&svc_key) else {
        return Err(RefError {
            reason: "BackendNotFound",
            message: format!("Service {svc_key} not found"),
        });
    };
    let Some(port) = r.port.and_then(|p| u32::try_from(p).ok()) else {
        return Err(RefError {
            reason: "BackendNotFound",
            message: format!("backendRef to Service {svc_key} needs a port"),
        });
    };
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    let svc_port = ports
        .into_iter()
        .flatten()
        .find(|p| u32::try_from(p.port).ok() == Some(port));
    if ports.is_some_and(|p| !p.is_empty()) && svc_port.is_none() {
        return Err(RefError {
            reason: "BackendNotFound",
            message: format!("Service {svc_key} has no port {port}"),
        });
    }
    let app_protocol = svc_port.and_then(|p| p.app_protocol.as_deref());
    let h2c = r.h2 || app_protocol == Some("kubernetes.io/h2c");
    // MCP servers (the appProtocol agentgateway users set) keep each session on the replica
    // that issued it.
    let mcp = matches!(
        app_protocol,
        Some("agentgateway.dev/mcp" | "kgateway.dev/mcp")
    );
    let key = if r.h2 {
        format!("{svc_key}:{port}/grpc")
    } else {
        format!("{svc_key}:{port}")
    };
    out.backends
        .entry(key.clone())
        .or_insert_with(|| pb::Backend {
            key: key.clone(),
            kind: Some(pb::backend::Kind::Service(pb::ServiceBackend {
                service_key: svc_key.to_string(),
                port,
            })),
            pool: h2c.then_some(pb::ConnectionPool {
                http2: true,
                ..Default::default()
            }),
            app_protocol: if mcp {
                pb::AppProtocol::Mcp
            } else {
                pb::AppProtocol::Http
            } as i32,
            ..Default::default()
        });
    out.services.entry(svc_key.to_string()).or_default();
    Ok(key)
}
