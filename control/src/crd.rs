//! The `agentgateway.dev/v1alpha1` custom resources, with the upstream field names:
//! AgentgatewayBackend (LLM providers, MCP targets, A2A agents, static hosts),
//! AgentgatewayPolicy (traffic/backend/frontend policies attached by targetRefs) and
//! AgentgatewayParameters (how the deployer shapes a Gateway's proxy). The CRD YAML under
//! `charts/agora-crds/templates/` is generated from these types (`tests/crds.rs` fails when it
//! is stale; `UPDATE_CRDS=1 cargo test -p agora-control --test crds` rewrites it).

mod backend;
mod inference_pool;
mod parameters;
mod policy;

pub use backend::*;
pub use inference_pool::*;
pub use parameters::*;
pub use policy::*;

/// The API group of the agentgateway CRDs.
pub const GROUP: &str = "agentgateway.dev";

/// A schema for fields whose shape is open (overlays, policy bodies not yet modelled): any
/// object, kept as written.
pub(crate) fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

/// Status conditions as Kubernetes writes them.
#[derive(
    Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ConditionsStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "open_list")]
    pub conditions: Vec<serde_json::Value>,
}

/// A list of open objects (conditions, ancestors, env entries).
pub(crate) fn open_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    })
}
