//! AgentgatewayPolicy: policies attached to Gateways, listeners, routes or backends.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Targets plus the policy sections; the sections' bodies are evaluated by the proxy's
/// policy engine (CEL, authn, rate limits, CORS, ...).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "agentgateway.dev",
    version = "v1alpha1",
    kind = "AgentgatewayPolicy",
    plural = "agentgatewaypolicies",
    namespaced,
    status = "PolicyStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct AgentgatewayPolicySpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_refs: Vec<PolicyTargetRef>,
    /// Targets chosen by labels instead of names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_selectors: Vec<PolicyTargetSelector>,
    /// Request-path policies: rateLimit, cors, authorization, jwtAuthentication, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::open_object")]
    pub traffic: Option<serde_json::Value>,
    /// Policies on the connection to the backend (auth, TLS, AI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::open_object")]
    pub backend: Option<serde_json::Value>,
    /// Listener-level policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::open_object")]
    pub frontend: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRef {
    pub group: String,
    pub kind: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetSelector {
    pub group: String,
    pub kind: String,
    #[serde(default)]
    pub match_labels: std::collections::BTreeMap<String, String>,
}

/// Per-ancestor status, as Gateway API policies report it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::open_list")]
    pub ancestors: Vec<serde_json::Value>,
}
