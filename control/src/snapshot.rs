//! Everything the translator reads, by kind and `namespace/name`. Sources (the manifest
//! directory, Kubernetes watchers) fill it; the translator only reads it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gateway_api::experimental::{
    gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute, httproutes::HttpRoute,
    referencegrants::ReferenceGrant, tcproutes::TcpRoute, tlsroutes::TlsRoute,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};

use crate::crd::{AgentgatewayBackend, AgentgatewayParameters, AgentgatewayPolicy};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// `namespace/name` of a namespaced object (namespace empty for cluster-scoped ones).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ObjKey {
    pub namespace: String,
    pub name: String,
}

impl ObjKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// The objects the translator works from. Objects are shared (`Arc`): a source that
/// rebuilds the snapshot after a change copies pointers, not objects.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub gateway_classes: BTreeMap<String, Arc<GatewayClass>>,
    pub gateways: BTreeMap<ObjKey, Arc<Gateway>>,
    pub http_routes: BTreeMap<ObjKey, Arc<HttpRoute>>,
    pub grpc_routes: BTreeMap<ObjKey, Arc<GrpcRoute>>,
    /// TCPRoutes (any served version, read as the v1alpha2 shape).
    pub tcp_routes: BTreeMap<ObjKey, Arc<TcpRoute>>,
    /// TLSRoutes (v1alpha2 and v1, read as the v1 shape).
    pub tls_routes: BTreeMap<ObjKey, Arc<TlsRoute>>,
    pub reference_grants: BTreeMap<ObjKey, Arc<ReferenceGrant>>,
    pub namespaces: BTreeMap<String, Arc<Namespace>>,
    pub services: BTreeMap<ObjKey, Arc<Service>>,
    pub endpoint_slices: BTreeMap<ObjKey, Arc<EndpointSlice>>,
    pub secrets: BTreeMap<ObjKey, Arc<Secret>>,
    pub backends: BTreeMap<ObjKey, Arc<AgentgatewayBackend>>,
    pub policies: BTreeMap<ObjKey, Arc<AgentgatewayPolicy>>,
    pub parameters: BTreeMap<ObjKey, Arc<AgentgatewayParameters>>,
    /// InferencePools (`inference.networking.k8s.io/v1`).
    pub inference_pools: BTreeMap<ObjKey, Arc<crate::crd::InferencePool>>,
    /// Pods (labels, `status.podIP`, the Ready condition), for InferencePool selectors.
    pub pods: BTreeMap<ObjKey, Arc<k8s_openapi::api::core::v1::Pod>>,
}

impl Snapshot {
    /// Adds (or replaces) every object of `other`.
    pub fn merge(&mut self, other: &Snapshot) {
        fn add<K: Ord + Clone, V: Clone>(to: &mut BTreeMap<K, V>, from: &BTreeMap<K, V>) {
            to.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        add(&mut self.gateway_classes, &other.gateway_classes);
        add(&mut self.gateways, &other.gateways);
        add(&mut self.http_routes, &other.http_routes);
        add(&mut self.grpc_routes, &other.grpc_routes);
        add(&mut self.tcp_routes, &other.tcp_routes);
        add(&mut self.tls_routes, &other.tls_routes);
        add(&mut self.reference_grants, &other.reference_grants);
        add(&mut self.namespaces, &other.namespaces);
        add(&mut self.services, &other.services);
        add(&mut self.endpoint_slices, &other.endpoint_slices);
        add(&mut self.secrets, &other.secrets);
        add(&mut self.backends, &other.backends);
        add(&mut self.policies, &other.policies);
        add(&mut self.parameters, &other.parameters);
        add(&mut self.inference_pools, &other.inference_pools);
        add(&mut self.pods, &other.pods);
    }

    /// Labels of a namespace (empty when the Namespace object is unknown).
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default()
    }
}
