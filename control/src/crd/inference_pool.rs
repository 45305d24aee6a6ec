//! InferencePool (`inference.networking.k8s.io/v1`, the Gateway API Inference Extension): a
//! set of model-server Pods, selected by label, and the endpoint picker (EPP) that chooses one
//! of them per request. Not our CRD (the extension's project publishes it): the type only
//! reads and writes objects, with the upstream field names, so it carries no schema.

use std::collections::BTreeMap;

use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The API group of InferencePool.
pub const INFERENCE_GROUP: &str = "inference.networking.k8s.io";

/// The endpoint picker's port when `endpointPickerRef.port` is left out.
pub const DEFAULT_PICKER_PORT: u16 = 9002;

/// Which Pods are in the pool, on which ports, and who picks among them.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "inference.networking.k8s.io",
    version = "v1",
    kind = "InferencePool",
    plural = "inferencepools",
    namespaced,
    status = "InferencePoolStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolSpec {
    /// Pods of the pool's namespace whose labels include all of these.
    #[serde(default)]
    pub selector: PoolSelector,
    /// Ports the model servers listen on; every Pod IP × port is one endpoint.
    #[serde(default)]
    pub target_ports: Vec<PoolPort>,
    /// `http` (default) or `kubernetes.io/h2c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// The endpoint picker extension (a Service, by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_picker_ref: Option<EndpointPickerRef>,
}

/// A label selector (matchLabels only, as the API defines it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `{number}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PoolPort {
    pub number: i32,
}

/// Where the endpoint picker runs and what to do when it does not answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointPickerRef {
    /// Empty (core) by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `Service` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    /// The Service port; 9002 when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PoolPort>,
    /// `FailOpen` or `FailClose` (the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
}

/// `status.parents`: one entry per Gateway whose routes use the pool.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferencePoolStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<serde_json::Value>,
}
