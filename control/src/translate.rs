//! The pure translator: `translate(&Snapshot) -> Output`, Gateway API semantics (v1.6) over
//! the objects of a snapshot. Nothing here does I/O or fails: an object that cannot apply
//! says why in its status, and the rest of the snapshot still translates.
//!
//! Resource keys: Bind `ns/gateway:port`, Listener `ns/gateway/listener`, Route
//! `ns/route/rule@ns/gateway/listener` (`grpc:` before a GRPCRoute's), L4Route
//! `tcp:ns/route/rule@ns/gateway/listener` (`tls:` for a TLSRoute's), Backend
//! `ns/service:port`, Service `ns/name`, Workload `ns/slice/address`, AgentgatewayBackend
//! `agentgateway/ns/name`. xDS names prefix them with the kind (`route/…`, `l4route/…`).

mod agw;
mod backend;
mod endpoints;
mod filters;
mod gateway;
mod grants;
mod grpc;
mod hostname;
mod inference;
mod l4;
mod policy;
mod route;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};

use agora_proto::resource::{self as pb, resource::Kind};
use serde::Serialize;

use crate::snapshot::Snapshot;
use status::ObjectStatus;

/// What a snapshot translates into.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Output {
    /// Per Gateway (`namespace/name`): its binds, listeners and routes.
    pub gateways: BTreeMap<String, GatewayResources>,
    /// Backends by key, shared by every Gateway whose routes refer to them.
    pub backends: BTreeMap<String, pb::Backend>,
    /// Services by key, with their workloads.
    pub services: BTreeMap<String, ServiceResources>,
    /// Policies by key, one per resolved target of an AgentgatewayPolicy.
    pub policies: BTreeMap<String, pb::Policy>,
    /// Computed statuses of GatewayClasses, Gateways and routes.
    pub statuses: Vec<ObjectStatus>,
}

/// The resources one Gateway contributes.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GatewayResources {
    pub binds: Vec<pb::Bind>,
    pub listeners: Vec<pb::Listener>,
    pub routes: Vec<pb::Route>,
    /// TCPRoute and TLSRoute rules on the TCP and TLS listeners.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub l4_routes: Vec<pb::L4Route>,
}

/// A Service and the endpoints behind it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct ServiceResources {
    pub service: pb::Service,
    pub workloads: Vec<pb::Workload>,
}

/// Translates a whole snapshot.
pub fn translate(s: &Snapshot) -> Output {
    let mut out = Output::default();
    out.statuses.extend(gateway::classes(s));
    agw::backends(s, &mut out);
    let mut gws = gateway::gateways(s);
    route::routes(s, &mut gws, &mut out);
    l4::routes(s, &mut gws, &mut out);
    for g in gws {
        let (key, res, st) = g.finish();
        out.statuses.push(st);
        out.gateways.insert(key, res);
    }
    inference::statuses(s, &mut out);
    policy::policies(s, &mut out);
    endpoints::resolve(s, &mut out);
    out
}

impl Output {
    /// The named resources (`kind/key`) a proxy serving `gateway` needs: the Gateway's binds,
    /// listeners, routes and L4 routes, the backends those routes (and their mirrors) use, and
    /// the services and workloads behind those backends. An unknown Gateway yields nothing.
    pub fn resources_for(&self, gateway: &str) -> BTreeMap<String, pb::Resource> {
        let mut out = BTreeMap::new();
        let Some(g) = self.gateways.get(gateway) else {
            return out;
        };
        let mut put = |name: String, kind: Kind| {
            out.insert(name, pb::Resource { kind: Some(kind) });
        };
        for b in &g.binds {
            put(format!("bind/{}", b.key), Kind::Bind(b.clone()));
        }
        for l in &g.listeners {
            put(format!("listener/{}", l.key), Kind::Listener(l.clone()));
        }
        let mut backends = BTreeSet::new();
        for r in &g.routes {
            put(format!("route/{}", r.key), Kind::Route(r.clone()));
            let all_filters = r
                .filters
                .iter()
                .chain(r.backends.iter().flat_map(|b| b.filters.iter()));
            for f in all_filters {
                if let Some(pb::filter::Kind::RequestMirror(m)) = &f.kind {
                    backends.insert(m.backend_key.as_str());
                }
            }
            backends.extend(
                r.backends
                    .iter()
                    .filter(|b| !b.backend_key.is_empty())
                    .map(|b| b.backend_key.as_str()),
            );
        }
        for r in &g.l4_routes {
            put(format!("l4route/{}", r.key), Kind::L4Route(r.clone()));
            backends.extend(
                r.backends
                    .iter()
                    .filter(|b| !b.backend_key.is_empty())
                    .map(|b| b.backend_key.as_str()),
            );
        }
        let routes: BTreeSet<&str> = g.routes.iter().map(|r| r.route_name.as_str()).collect();
        for p in self.policies.values() {
            use pb::policy_target::Kind as T;
            let applies = match p.target.as_ref().and_then(|t| t.kind.as_ref()) {
                Some(T::Gateway(name)) => name == gateway,
                Some(T::Listener(l)) => g.listeners.iter().any(|x| x.key == *l),
                Some(T::Route(r)) => routes.contains(r.as_str()),
                Some(T::Backend(b)) => backends.contains(b.as_str()),
                None => false,
            };
            if applies {
                put(format!("policy/{}", p.key), Kind::Policy(p.clone()));
            }
        }
        for key in backends {
            let Some(b) = self.backends.get(key) else {
                continue;
            };
            put(format!("backend/{key}"), Kind::Backend(b.clone()));
            if let Some(pb::backend::Kind::Service(sb)) = &b.kind
                && let Some(svc) = self.services.get(&sb.service_key)
            {
                put(
                    format!("service/{}", svc.service.key),
                    Kind::Service(svc.service.clone()),
                );
                for w in &svc.workloads {
                    put(format!("workload/{}", w.key), Kind::Workload(w.clone()));
                }
            }
        }
        out
    }
}

/// Gateway API's group, the default for parentRefs and many other references.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// `metadata.generation` (0 when unset, as in a manifest file).
pub(crate) fn generation(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    m.generation.unwrap_or(0)
}
