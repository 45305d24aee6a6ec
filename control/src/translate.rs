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
mod memo;
mod policy;
mod route;
pub mod status;

use std::collections::{BTreeMap, BTreeSet};

use agora_proto::resource::{self as pb, resource::Kind};
use serde::Serialize;

use crate::snapshot::Snapshot;
pub use memo::Memo;
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
    /// Backend keys resolved while one route's translation is being recorded (`memo.rs`).
    #[serde(skip)]
    pub(crate) journal: Option<Vec<String>>,
}

/// The resources one Gateway contributes.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct GatewayResources {
    pub binds: Vec<pb::Bind>,
    pub listeners: Vec<pb::Listener>,
    /// Shared: a route unchanged since the last translation reuses its resource as is.
    pub routes: Vec<std::sync::Arc<pb::Route>>,
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
    translate_inner(s, None)
}

/// Translates a snapshot like [`translate`], reusing what `memo` remembers of the
/// translations before it for routes that did not change (and remembering this one).
pub fn translate_with(s: &Snapshot, memo: &mut Memo) -> Output {
    memo.begin(s);
    let out = translate_inner(s, Some(&mut *memo));
    memo.end(s);
    out
}

fn translate_inner(s: &Snapshot, memo: Option<&mut Memo>) -> Output {
    let mut out = Output::default();
    out.statuses.extend(gateway::classes(s));
    agw::backends(s, &mut out);
    let mut gws = gateway::gateways(s);
    route::routes(s, &mut gws, &mut out, memo);
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
        self.each_resource(gateway, |name, r| {
            out.insert(name, r.to_resource());
        });
        out
    }

    /// [`Output::resources_for`] without copies: calls `put` with each resource's name and
    /// a reference to it (a name may come more than once; the last one counts).
    pub fn each_resource<'a>(&'a self, gateway: &str, mut put: impl FnMut(String, Borrowed<'a>)) {
        use Borrowed as Kind;
        let Some(g) = self.gateways.get(gateway) else {
            return;
        };
        for b in &g.binds {
            put(format!("bind/{}", b.key), Kind::Bind(b));
        }
        for l in &g.listeners {
            put(format!("listener/{}", l.key), Kind::Listener(l));
        }
        let mut backends = BTreeSet::new();
        for r in &g.routes {
            put(format!("route/{}", r.key), Kind::Route(r));
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
            put(format!("l4route/{}", r.key), Kind::L4Route(r));
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
                put(format!("policy/{}", p.key), Kind::Policy(p));
            }
        }
        for key in backends {
            let Some(b) = self.backends.get(key) else {
                continue;
            };
            put(format!("backend/{key}"), Kind::Backend(b));
            if let Some(pb::backend::Kind::Service(sb)) = &b.kind
                && let Some(svc) = self.services.get(&sb.service_key)
            {
                put(
                    format!("service/{}", svc.service.key),
                    Kind::Service(&svc.service),
                );
                for w in &svc.workloads {
                    put(format!("workload/{}", w.key), Kind::Workload(w));
                }
            }
        }
    }
}

/// A resource of an [`Output`], borrowed.
#[derive(Clone, Copy, Debug)]
pub enum Borrowed<'a> {
    Bind(&'a pb::Bind),
    Listener(&'a pb::Listener),
    Route(&'a pb::Route),
    L4Route(&'a pb::L4Route),
    Backend(&'a pb::Backend),
    Policy(&'a pb::Policy),
    Service(&'a pb::Service),
    Workload(&'a pb::Workload),
}

impl Borrowed<'_> {
    /// An owned copy.
    pub fn to_resource(self) -> pb::Resource {
        let kind = match self {
            Borrowed::Bind(r) => Kind::Bind(r.clone()),
            Borrowed::Listener(r) => Kind::Listener(r.clone()),
            Borrowed::Route(r) => Kind::Route(r.clone()),
            Borrowed::L4Route(r) => Kind::L4Route(r.clone()),
            Borrowed::Backend(r) => Kind::Backend(r.clone()),
            Borrowed::Policy(r) => Kind::Policy(r.clone()),
            Borrowed::Service(r) => Kind::Service(r.clone()),
            Borrowed::Workload(r) => Kind::Workload(r.clone()),
        };
        pb::Resource { kind: Some(kind) }
    }

    /// Whether `r` holds an equal resource.
    pub fn same_as(self, r: &pb::Resource) -> bool {
        match (self, r.kind.as_ref()) {
            (Borrowed::Bind(a), Some(Kind::Bind(b))) => a == b,
            (Borrowed::Listener(a), Some(Kind::Listener(b))) => a == b,
            (Borrowed::Route(a), Some(Kind::Route(b))) => a == b,
            (Borrowed::L4Route(a), Some(Kind::L4Route(b))) => a == b,
            (Borrowed::Backend(a), Some(Kind::Backend(b))) => a == b,
            (Borrowed::Policy(a), Some(Kind::Policy(b))) => a == b,
            (Borrowed::Service(a), Some(Kind::Service(b))) => a == b,
            (Borrowed::Workload(a), Some(Kind::Workload(b))) => a == b,
            _ => false,
        }
    }
}

/// Gateway API's group, the default for parentRefs and many other references.
pub(crate) const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// `metadata.generation` (0 when unset, as in a manifest file).
pub(crate) fn generation(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    m.generation.unwrap_or(0)
}
