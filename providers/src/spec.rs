//! The AI part of an AgentgatewayBackend (`spec.ai` and `spec.policies`): one schema for the
//! proxy's local config file and the controller's CRD, and one conversion into the proto
//! `AiBackend` ([`convert::ai_backend`]). Where credentials come from (a file or environment
//! variable locally, a Secret in a cluster) is the caller's business: it passes a resolver.

pub mod convert;

/// Any object, kept as written (a structural-schema-friendly "free form").
#[cfg(feature = "schema")]
fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

/// Any JSON value (a string or an object), kept as written.
#[cfg(feature = "schema")]
fn any_value(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"x-kubernetes-preserve-unknown-fields": true})
}

use serde::{Deserialize, Serialize};

/// `spec.ai`: one provider, or groups of providers in priority order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AiConfig {
    #[serde(default)]
    pub provider: Option<ProviderConfig>,
    #[serde(default)]
    pub groups: Vec<ProviderGroupConfig>,
    /// Client-facing model names resolved per request to one of several (provider, model)
    /// targets: by condition, priority and weight.
    #[serde(default)]
    pub virtual_models: Vec<VirtualModelConfig>,
}

/// `ai.virtualModels[]`: a model name clients ask for, served by the targets whose `when`
/// holds — the lowest `priority` first, split by `weight` among equals, failing over to the
/// next target (with its own model) on 429, 5xx and connect errors.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualModelConfig {
    pub name: String,
    pub targets: Vec<VirtualModelTargetConfig>,
}

/// One (provider, model) target of a virtual model.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualModelTargetConfig {
    /// The `name` of one of this backend's providers (a single `provider` without a name is
    /// named after the backend).
    pub provider: String,
    /// The model sent to the provider; default: the provider's own `model`.
    #[serde(default)]
    pub model: Option<String>,
    /// Relative share of traffic among matching targets of the same priority (default 1;
    /// 0 takes no traffic).
    #[serde(default)]
    pub weight: Option<u32>,
    /// 0 (the default) is tried first; higher values only when every lower one failed or
    /// did not match.
    #[serde(default)]
    pub priority: Option<u32>,
    /// CEL condition over the request (`request.headers[...]`, `jwt`, `apiKey`, `llm`, ...);
    /// absent: always matches. An evaluation error counts as false.
    #[serde(default)]
    pub when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderGroupConfig {
    pub providers: Vec<ProviderConfig>,
}

/// One provider: exactly one vendor key (`openai`, `anthropic`, ...) plus address overrides.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProviderConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub openai: Option<ModelConfig>,
    #[serde(default)]
    pub anthropic: Option<ModelConfig>,
    #[serde(default)]
    pub gemini: Option<ModelConfig>,
    #[serde(default)]
    pub vertexai: Option<VertexConfig>,
    #[serde(default)]
    pub bedrock: Option<BedrockConfig>,
    #[serde(default)]
    pub azureopenai: Option<AzureOpenAiConfig>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Path prefix replacing the vendor default `/v1` (e.g. `/openai/v1`).
    #[serde(default)]
    pub path: Option<String>,
    /// TLS to the provider; default: on for the vendor's public API and port 443.
    #[serde(default)]
    pub tls: Option<bool>,
    /// Per-provider policies inside `groups` (auth).
    #[serde(default)]
    pub policies: Option<BackendPoliciesConfig>,
    /// Models this provider serves (exact names or `*` globs, e.g. `claude-*`); requests for
    /// other models skip it. Empty: every model.
    #[serde(default)]
    pub models: Vec<String>,
    /// An OpenAI-compatible vendor from the preset table (groq, mistral, deepseek, together,
    /// openrouter, fireworks, xai, cerebras, ollama, vllm): its host, port, TLS and path.
    #[serde(default)]
    pub preset: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelConfig {
    #[serde(default)]
    pub model: Option<String>,
}

/// Vertex AI: Gemini models, or Anthropic models (`claude-*`) through Vertex.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VertexConfig {
    #[serde(default)]
    pub model: Option<String>,
    pub project_id: String,
    /// Default `us-central1`; `global` uses the global endpoint.
    #[serde(default)]
    pub region: Option<String>,
}

/// AWS Bedrock (Converse API).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BedrockConfig {
    #[serde(default)]
    pub model: Option<String>,
    pub region: String,
}

/// Azure OpenAI: a resource endpoint and a deployment (or the v1 API when no deployment).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AzureOpenAiConfig {
    /// `https://RESOURCE.openai.azure.com` or just the host.
    pub endpoint: String,
    #[serde(default)]
    pub deployment_name: Option<String>,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendPoliciesConfig {
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub ai: Option<AiPoliciesConfig>,
}

/// Backend authentication: a key (inline, from a file or an environment variable), the
/// client's own credentials (`passthrough: {}`), or cloud credentials the gateway obtains
/// itself (`aws`, `gcp`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthConfig {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
    #[serde(default)]
    pub key_env: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub passthrough: Option<serde_json::Value>,
    /// Kubernetes Secret reference; only the control plane can resolve it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub secret_ref: Option<serde_json::Value>,
    /// AWS credentials for SigV4 (Bedrock): static keys, a Secret, or (`aws: {}`) the
    /// default credential chain (environment, web identity, container, instance metadata).
    #[serde(default)]
    pub aws: Option<AwsAuthConfig>,
    /// GCP OAuth2 access tokens minted by the gateway (Vertex AI): from a service-account
    /// key, or (`gcp: {}`) Application Default Credentials.
    #[serde(default)]
    pub gcp: Option<GcpAuthConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsAuthConfig {
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    #[serde(default)]
    pub session_token: Option<String>,
    /// A Kubernetes Secret with `accessKey`, `secretKey` and optionally `sessionToken`;
    /// only the control plane can resolve it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub secret_ref: Option<serde_json::Value>,
    /// Assume this IAM role through STS, with the other credentials as the source.
    #[serde(default)]
    pub assume_role: Option<AwsAssumeRoleConfig>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsAssumeRoleConfig {
    /// `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
}

/// `policies.auth.gcp`: at most one key source; none means Application Default Credentials.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GcpAuthConfig {
    /// `AccessToken` (the default); `IdToken` is not supported.
    #[serde(default, rename = "type")]
    pub token_type: Option<String>,
    /// ID token audience (`IdToken` only, so not supported).
    #[serde(default)]
    pub audience: Option<String>,
    /// A service-account key, inline: the JSON document as a string or as an object.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "any_value"))]
    pub service_account_key: Option<serde_json::Value>,
    /// File holding a service-account key (local config only).
    #[serde(default)]
    pub service_account_key_file: Option<String>,
    /// A Kubernetes Secret holding a service-account key (its `key.json`,
    /// `credentials.json` or `serviceAccountKey` entry, or its only entry); only the control
    /// plane can resolve it.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub secret_ref: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AiPoliciesConfig {
    #[serde(default)]
    pub model_aliases: std::collections::BTreeMap<String, String>,
    /// Request fields set when the client did not (e.g. `temperature: 0.2`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub defaults: std::collections::BTreeMap<String, serde_json::Value>,
    /// Request fields always set (e.g. `max_tokens: 1024`).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub overrides: std::collections::BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub prompt: Option<PromptPolicyConfig>,
}

/// Messages added around every prompt.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptPolicyConfig {
    #[serde(default)]
    pub prepend: Vec<PromptMessageConfig>,
    #[serde(default)]
    pub append: Vec<PromptMessageConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PromptMessageConfig {
    pub role: String,
    pub content: String,
}
