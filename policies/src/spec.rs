//! The policy sections of an AgentgatewayPolicy (`spec.traffic`, `spec.backend.ai.promptGuard`):
//! one schema for the proxy's local config file and the controller, and one conversion into
//! the proto `TrafficPolicy` / `PromptGuard` ([`convert`]). Unknown fields are errors.

pub mod convert;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `spec.traffic`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TrafficConfig {
    #[serde(default)]
    pub authorization: Option<AuthorizationConfig>,
    #[serde(default)]
    pub jwt_authentication: Option<JwtConfig>,
    #[serde(default)]
    pub api_key_authentication: Option<ApiKeyConfig>,
    #[serde(default)]
    pub basic_authentication: Option<BasicAuthConfig>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitConfig>,
    #[serde(default)]
    pub cors: Option<CorsConfig>,
    #[serde(default)]
    pub ext_auth: Option<ExtAuthConfig>,
    #[serde(default)]
    pub header_modifiers: Option<HeaderModifiersConfig>,
    #[serde(default)]
    pub timeouts: Option<TimeoutsConfig>,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    /// Virtual-key budgets: tokens and USD per key, group or subject over a window.
    #[serde(default)]
    pub budget: Option<BudgetConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum BudgetPer {
    #[default]
    Key,
    Group,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BudgetConfig {
    /// Whose spend is counted: the API key (default) or its group.
    #[serde(default)]
    pub per: BudgetPer,
    /// A CEL expression naming the subject instead (e.g. `jwt.sub`).
    #[serde(default)]
    pub expression: Option<String>,
    /// Window length (`24h`, `720h`); windows are aligned to the Unix epoch.
    pub window: String,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    #[serde(default, rename = "maxCostUSD", alias = "maxCostUsd")]
    pub max_cost_usd: Option<f64>,
    /// USD per million tokens by model (exact names or `prefix*` globs).
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, ModelPriceConfig>,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ModelPriceConfig {
    pub input: f64,
    pub output: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum AuthorizationAction {
    #[default]
    Allow,
    Deny,
    Require,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuthorizationConfig {
    #[serde(default)]
    pub action: AuthorizationAction,
    pub policy: MatchExpressions,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchExpressions {
    pub match_expressions: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum AuthModeConfig {
    #[default]
    Strict,
    Optional,
    Permissive,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtConfig {
    #[serde(default)]
    pub mode: AuthModeConfig,
    pub providers: Vec<JwtProviderConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwtProviderConfig {
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: JwksConfig,
}

/// Exactly one of `inline` (a JWKS document), `file` or `remote`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JwksConfig {
    #[serde(default)]
    pub inline: Option<String>,
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub remote: Option<RemoteJwksConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RemoteJwksConfig {
    pub url: String,
    /// How often the keys are fetched again (default 5m).
    #[serde(default)]
    pub cache_duration: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyConfig {
    #[serde(default)]
    pub mode: AuthModeConfig,
    /// Keys written out (local config); a cluster reads them from Secrets instead.
    #[serde(default)]
    pub keys: Vec<ApiKeyEntryConfig>,
    /// A Secret whose entries are keys (the entry name is the key's id; the value is the key,
    /// or a JSON object `{"key": ..., "metadata": {...}, "group": ...}`).
    #[serde(default)]
    pub secret_ref: Option<SecretRefConfig>,
    /// Header carrying the key (default: `Authorization: Bearer`, then `x-api-key`).
    #[serde(default)]
    pub header: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiKeyEntryConfig {
    /// The key, written out.
    #[serde(default)]
    pub key: Option<String>,
    /// Environment variable holding the key (local config).
    #[serde(default)]
    pub key_env: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(schema_with = "open_object"))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretRefConfig {
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuthConfig {
    #[serde(default)]
    pub mode: AuthModeConfig,
    /// htpasswd lines (`user:hash`).
    #[serde(default)]
    pub users: Vec<String>,
    /// A Secret with an `.htaccess` entry of htpasswd lines.
    #[serde(default)]
    pub secret_ref: Option<SecretRefConfig>,
    #[serde(default)]
    pub realm: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RateLimitConfig {
    #[serde(default)]
    pub local: Vec<LimitConfig>,
    #[serde(default)]
    pub global: Option<GlobalLimitConfig>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum RateUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
}

/// `requests` or `tokens` per `unit`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitConfig {
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub tokens: Option<u64>,
    pub unit: RateUnit,
    /// Bucket size (default: the limit itself).
    #[serde(default)]
    pub burst: Option<u64>,
    /// CEL expressions keying separate buckets (e.g. per user).
    #[serde(default)]
    pub descriptors: Vec<DescriptorConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DescriptorConfig {
    pub name: String,
    pub expression: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum FailureMode {
    #[default]
    FailClosed,
    FailOpen,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GlobalLimitConfig {
    pub limits: Vec<LimitConfig>,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CorsConfig {
    #[serde(default)]
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Seconds browsers may cache a preflight answer.
    #[serde(default)]
    pub max_age: Option<u32>,
    #[serde(default)]
    pub allow_credentials: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtAuthConfig {
    pub url: String,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub failure_mode: FailureMode,
    #[serde(default)]
    pub include_request_headers: Vec<String>,
    #[serde(default)]
    pub upstream_headers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderModifiersConfig {
    #[serde(default)]
    pub request: Option<HeaderModifierConfig>,
    #[serde(default)]
    pub response: Option<HeaderModifierConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderModifierConfig {
    #[serde(default)]
    pub set: Vec<HeaderValueConfig>,
    #[serde(default)]
    pub add: Vec<HeaderValueConfig>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct HeaderValueConfig {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutsConfig {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub backend_request: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryConfig {
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub codes: Vec<u16>,
    #[serde(default)]
    pub backoff: Option<String>,
}

/// `spec.backend` of a policy: the AI part (prompt guards).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendPolicyConfig {
    #[serde(default)]
    pub ai: Option<AiPolicyConfig>,
    /// MCP authentication and authorization of an MCP backend's routes.
    #[serde(default)]
    pub mcp: Option<McpPolicyConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpPolicyConfig {
    /// OAuth 2.1 resource server per the MCP spec: bearer JWTs validated against the
    /// issuer's keys, 401s pointing at the RFC 9728 metadata the gateway serves.
    #[serde(default)]
    pub authentication: Option<McpAuthenticationConfig>,
    /// Rules over `mcp.tool.name`, `mcp.prompt.name`, `mcp.resource.name` (and `jwt`, …):
    /// listings show only what they allow; calls they deny get a JSON-RPC error.
    #[serde(default)]
    pub authorization: Option<AuthorizationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct McpAuthenticationConfig {
    /// The authorization server (token issuer).
    pub issuer: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub jwks: JwksConfig,
    #[serde(default)]
    pub mode: AuthModeConfig,
    /// More protected resource metadata fields (RFC 9728 names, e.g. `scopes_supported`,
    /// `resource_documentation`).
    #[serde(default)]
    pub resource_metadata: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AiPolicyConfig {
    #[serde(default)]
    pub prompt_guard: Option<PromptGuardConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PromptGuardConfig {
    #[serde(default)]
    pub request: Vec<GuardConfig>,
    #[serde(default)]
    pub response: Vec<GuardConfig>,
}

/// One guard: a `regex` detector or a `webhook`, and the answer on rejection.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GuardConfig {
    #[serde(default)]
    pub regex: Option<RegexGuardConfig>,
    #[serde(default)]
    pub webhook: Option<WebhookGuardConfig>,
    #[serde(default)]
    pub response: Option<GuardResponseConfig>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum GuardAction {
    #[default]
    Reject,
    Mask,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Builtin {
    Email,
    PhoneNumber,
    CreditCard,
    Ssn,
    #[serde(alias = "IPAddress")]
    IpAddress,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegexGuardConfig {
    #[serde(default)]
    pub action: GuardAction,
    #[serde(default)]
    pub builtins: Vec<Builtin>,
    /// Custom regular expressions.
    #[serde(default)]
    pub matches: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookGuardConfig {
    pub url: String,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub failure_mode: FailureMode,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GuardResponseConfig {
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(feature = "schema")]
fn open_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}
