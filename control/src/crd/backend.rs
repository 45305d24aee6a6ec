//! AgentgatewayBackend: what a route's `backendRef` of kind AgentgatewayBackend points at.

use agora_proto::mcp_spec::McpSpec;
use agora_providers::spec::{AiConfig, BackendPoliciesConfig};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ConditionsStatus;

/// Exactly one of `ai`, `mcp`, `a2a`, `static`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "agentgateway.dev",
    version = "v1alpha1",
    kind = "AgentgatewayBackend",
    plural = "agentgatewaybackends",
    namespaced,
    status = "ConditionsStatus",
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AgentgatewayBackendSpec {
    /// LLM providers: one `provider`, or `groups` of providers in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ai: Option<AiConfig>,
    /// MCP servers multiplexed behind one endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpSpec>,
    /// An A2A agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub a2a: Option<HostPort>,
    /// A plain host and port.
    #[serde(default, rename = "static", skip_serializing_if = "Option::is_none")]
    pub static_: Option<HostPort>,
    /// Backend policies: `auth` (API keys from Secrets, passthrough, AWS), `ai` (model
    /// aliases, defaults, overrides, prompts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<BackendPoliciesConfig>,
}

/// `host` + `port` (+ optional `path`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostPort {
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
