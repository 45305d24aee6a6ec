//! Everything the translator reads, by kind and `namespace/name`. Sources (the manifest
//! directory, Kubernetes watchers) fill it; the translator only reads it.

use std::collections::BTreeMap;
use std::fmt;

use gateway_api::experimental::{
    gatewayclasses::GatewayClass, gateways::Gateway, httproutes::HttpRoute,
    referencegrants::ReferenceGrant,
};
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
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

/// The objects the translator works from.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub gateway_classes: BTreeMap<String, GatewayClass>,
    pub gateways: BTreeMap<ObjKey, Gateway>,
    pub http_routes: BTreeMap<ObjKey, HttpRoute>,
    pub reference_grants: BTreeMap<ObjKey, ReferenceGrant>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub services: BTreeMap<ObjKey, Service>,
    pub endpoint_slices: BTreeMap<ObjKey, EndpointSlice>,
    pub secrets: BTreeMap<ObjKey, Secret>,
}

impl Snapshot {
    /// Labels of a namespace (empty when the Namespace object is unknown).
    pub fn namespace_labels(&self, ns: &str) -> BTreeMap<String, String> {
        self.namespaces
            .get(ns)
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default()
    }
}
