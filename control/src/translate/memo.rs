//! Incremental translation. A controller keeps a [`Memo`] across translations; each
//! HTTPRoute or GRPCRoute whose object is unchanged (the same `Arc` as last time), in a
//! snapshot whose other objects are all unchanged too, replays what it produced last time
//! instead of being translated again: the Route resources it attached, the listeners'
//! attachedRoutes it counted, the backends it registered and its status. Editing one route
//! of thousands thus translates one route; any change to another kind (a Gateway, a Service,
//! a ReferenceGrant, ...) translates everything again. EndpointSlices are outside the rule:
//! route translation never reads them (endpoints are resolved afterwards, every time); so
//! are Pods while there is no InferencePool.
//!
//! The output is the same as a fresh [`translate`](super::translate) of the snapshot; tests
//! check that on every golden input and on edits.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use agora_proto::resource as pb;

use super::Output;
use super::gateway::GatewayState;
use super::status::ObjectStatus;
use crate::snapshot::{ObjKey, Snapshot};

/// What translations remember of each other. Empty at first; see the module docs.
#[derive(Default)]
pub struct Memo {
    /// The previous snapshot's objects other than routes, to tell whether they changed.
    env: Option<Snapshot>,
    http: HashMap<ObjKey, Remembered>,
    grpc: HashMap<ObjKey, Remembered>,
}

/// A route object (held, so its address is never reused while remembered) and what it
/// produced.
struct Remembered {
    object: Object,
    outcome: Arc<Outcome>,
}

/// The route object a translation started from.
#[derive(Clone)]
pub(super) enum Object {
    Http(Arc<gateway_api::experimental::httproutes::HttpRoute>),
    Grpc(Arc<gateway_api::experimental::grpcroutes::GrpcRoute>),
}

impl Object {
    fn same(&self, other: &Object) -> bool {
        match (self, other) {
            (Object::Http(a), Object::Http(b)) => Arc::ptr_eq(a, b),
            (Object::Grpc(a), Object::Grpc(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What translating one route did to the output.
#[derive(Default)]
pub(super) struct Outcome {
    /// Routes pushed, by Gateway index.
    routes: Vec<(usize, Arc<pb::Route>)>,
    /// Listeners it was counted on, by Gateway and listener index.
    attached: Vec<(usize, usize)>,
    /// Backends it refers to (and the Service of each, if any).
    backends: Vec<(String, pb::Backend)>,
    status: Option<ObjectStatus>,
}

impl Memo {
    /// Starts a translation of `s`: forgets every route if anything but routes changed.
    pub(super) fn begin(&mut self, s: &Snapshot) {
        let env = without_routes(s);
        if !self.env.as_ref().is_some_and(|e| same_env(e, &env)) {
            self.http.clear();
            self.grpc.clear();
        }
        self.env = Some(env);
    }

    /// What `object` produced last time, if it is unchanged.
    pub(super) fn recall(
        &self,
        kind: &'static str,
        key: &ObjKey,
        object: &Object,
    ) -> Option<Arc<Outcome>> {
        let r = self.kind(kind).get(key)?;
        r.object.same(object).then(|| r.outcome.clone())
    }

    pub(super) fn remember(
        &mut self,
        kind: &'static str,
        key: &ObjKey,
        object: Object,
        outcome: Outcome,
    ) {
        let map = if kind == "GRPCRoute" {
            &mut self.grpc
        } else {
            &mut self.http
        };
        map.insert(
            key.clone(),
            Remembered {
                object,
                outcome: Arc::new(outcome),
            },
        );
    }

    /// Drops routes that are no longer in the snapshot.
    pub(super) fn end(&mut self, s: &Snapshot) {
        self.http.retain(|key, _| s.http_routes.contains_key(key));
        self.grpc.retain(|key, _| s.grpc_routes.contains_key(key));
    }

    fn kind(&self, kind: &str) -> &HashMap<ObjKey, Remembered> {
        if kind == "GRPCRoute" {
            &self.grpc
        } else {
            &self.http
        }
    }
}

/// Records what one route's translation adds, from the state before and after it.
pub(super) struct Recorder {
    gateways: Vec<(usize, usize, Vec<i32>)>,
    statuses: usize,
}

impl Recorder {
    /// Before translating a route that may attach to the Gateways at `candidates`.
    pub(super) fn before(gws: &[GatewayState], candidates: &[usize], out: &mut Output) -> Self {
        out.journal = Some(Vec::new());
        Self {
            gateways: candidates
                .iter()
                .map(|&i| {
                    let g = &gws[i];
                    let counts = g.listeners.iter().map(|l| l.attached).collect();
                    (i, g.resources.routes.len(), counts)
                })
                .collect(),
            statuses: out.statuses.len(),
        }
    }

    /// After it: what it added.
    pub(super) fn after(self, gws: &[GatewayState], out: &mut Output) -> Outcome {
        let mut o = Outcome::default();
        for (i, routes_before, counts) in self.gateways {
            let g = &gws[i];
            o.routes.extend(
                g.resources.routes[routes_before..]
                    .iter()
                    .map(|r| (i, r.clone())),
            );
            for (li, (l, before)) in g.listeners.iter().zip(counts).enumerate() {
                for _ in before..l.attached {
                    o.attached.push((i, li));
                }
            }
        }
        let mut keys = out.journal.take().unwrap_or_default();
        keys.sort();
        keys.dedup();
        o.backends = keys
            .into_iter()
            .filter_map(|k| out.backends.get(&k).cloned().map(|b| (k, b)))
            .collect();
        o.status = out.statuses.get(self.statuses).cloned();
        o
    }
}

/// Replays a remembered outcome.
pub(super) fn replay(o: &Outcome, gws: &mut [GatewayState], out: &mut Output) {
    for (i, r) in &o.routes {
        gws[*i].resources.routes.push(r.clone());
    }
    for (i, li) in &o.attached {
        gws[*i].listeners[*li].attached += 1;
    }
    for (k, b) in &o.backends {
        if !out.backends.contains_key(k) {
            out.backends.insert(k.clone(), b.clone());
        }
        if let Some(pb::backend::Kind::Service(sb)) = &b.kind {
            out.services.entry(sb.service_key.clone()).or_default();
        }
    }
    if let Some(st) = &o.status {
        out.statuses.push(st.clone());
    }
}

/// `s` without its routes and EndpointSlices (the objects route translation depends on).
fn without_routes(s: &Snapshot) -> Snapshot {
    Snapshot {
        http_routes: BTreeMap::new(),
        grpc_routes: BTreeMap::new(),
        endpoint_slices: BTreeMap::new(),
        ..s.clone()
    }
}

/// Whether two snapshots hold the very same objects (by identity), routes and
/// EndpointSlices aside. Every field is named, so a new kind cannot be forgotten here.
fn same_env(a: &Snapshot, b: &Snapshot) -> bool {
    fn same<K: Eq, V>(a: &BTreeMap<K, Arc<V>>, b: &BTreeMap<K, Arc<V>>) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ka, va), (kb, vb))| ka == kb && Arc::ptr_eq(va, vb))
    }
    let Snapshot {
        gateway_classes,
        gateways,
        http_routes: _,
        grpc_routes: _,
        tcp_routes,
        tls_routes,
        reference_grants,
        namespaces,
        services,
        endpoint_slices: _,
        secrets,
        backends,
        policies,
        parameters,
        inference_pools,
        pods,
    } = a;
    same(gateway_classes, &b.gateway_classes)
        && same(gateways, &b.gateways)
        && same(tcp_routes, &b.tcp_routes)
        && same(tls_routes, &b.tls_routes)
        && same(reference_grants, &b.reference_grants)
        && same(namespaces, &b.namespaces)
        && same(services, &b.services)
        && same(secrets, &b.secrets)
        && same(backends, &b.backends)
        && same(policies, &b.policies)
        && same(parameters, &b.parameters)
        && same(inference_pools, &b.inference_pools)
        // Pods matter only to InferencePools (their endpoints); without pools, Pod churn
        // does not undo what is remembered.
        && (inference_pools.is_empty() || same(pods, &b.pods))
}
