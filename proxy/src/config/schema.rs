//! The local YAML config file, as typed structs. Field names follow Gateway API (`HTTPRoute`)
//! wherever a concept exists there, so a route written for a cluster reads the same here.
//! Unknown fields are errors, so a typo never silently disables a feature.

use serde::Deserialize;

pub use agora_providers::spec::{
    AiConfig, AiPoliciesConfig, AuthConfig, AwsAuthConfig, BackendPoliciesConfig, GcpAuthConfig,
    PromptMessageConfig, PromptPolicyConfig, ProviderConfig,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalConfig {
    /// `namespace/name` of the gateway this file stands for (labels metrics and logs).
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub binds: Vec<BindConfig>,
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    /// Policies (AgentgatewayPolicy `spec`), attached by `targetRefs`.
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
}

/// A policy: what it attaches to and its sections, as in an AgentgatewayPolicy.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyConfig {
    pub name: String,
    pub target_refs: Vec<PolicyTargetConfig>,
    /// Wins over policies at more specific levels (default: yields to them).
    #[serde(default, rename = "override")]
    pub override_: bool,
    #[serde(default)]
    pub traffic: Option<agora_policies::spec::TrafficConfig>,
    #[serde(default)]
    pub backend: Option<agora_policies::spec::BackendPolicyConfig>,
}

/// `kind`: Gateway, Listener, HTTPRoute (or Route), Backend (or AgentgatewayBackend).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyTargetConfig {
    #[serde(default)]
    pub group: Option<String>,
    pub kind: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BindConfig {
    pub port: u16,
    #[serde(default)]
    pub address: Option<String>,
    pub listeners: Vec<ListenerConfig>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ListenerProtocol {
    #[default]
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    /// TCP connections, forwarded to the listener's route (a TCPRoute).
    #[serde(rename = "TCP")]
    Tcp,
    /// TLS connections routed by server name (TLSRoutes): passed through, or terminated.
    #[serde(rename = "TLS")]
    Tls,
}

/// What a `TLS` listener does with TLS (`tls.mode`), as in a Gateway listener.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum TlsMode {
    /// Terminate with the listener's certificate; the backend gets the plaintext.
    #[default]
    Terminate,
    /// Forward the encrypted bytes unchanged; the backend terminates TLS.
    Passthrough,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub protocol: ListenerProtocol,
    #[serde(default)]
    pub tls: Option<ListenerTls>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A certificate and key, each inline (PEM) or from a file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ListenerTls {
    /// `TLS` listeners only: `Terminate` (default) or `Passthrough`.
    #[serde(default)]
    pub mode: Option<TlsMode>,
    #[serde(default)]
    pub cert: Option<String>,
    #[serde(default)]
    pub cert_file: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RouteConfig {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub hostnames: Vec<String>,
    #[serde(default)]
    pub matches: Vec<MatchConfig>,
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
    #[serde(default)]
    pub backend_refs: Vec<BackendRefConfig>,
    #[serde(default)]
    pub timeouts: Option<TimeoutsConfig>,
    #[serde(default)]
    pub retry: Option<RetryConfig>,
    #[serde(default)]
    pub max_request_body_bytes: Option<u64>,
    #[serde(default)]
    pub buffer_request_body: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum PathMatchType {
    Exact,
    PathPrefix,
    RegularExpression,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum ValueMatchType {
    #[default]
    Exact,
    RegularExpression,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathMatchConfig {
    #[serde(rename = "type", default = "default_path_type")]
    pub kind: PathMatchType,
    #[serde(default = "default_path")]
    pub value: String,
}

fn default_path_type() -> PathMatchType {
    PathMatchType::PathPrefix
}

fn default_path() -> String {
    "/".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueMatchConfig {
    #[serde(rename = "type", default)]
    pub kind: ValueMatchType,
    pub name: String,
    #[serde(deserialize_with = "scalar_string")]
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MatchConfig {
    #[serde(default)]
    pub path: Option<PathMatchConfig>,
    #[serde(default)]
    pub headers: Vec<ValueMatchConfig>,
    #[serde(default)]
    pub query_params: Vec<ValueMatchConfig>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum FilterType {
    RequestHeaderModifier,
    ResponseHeaderModifier,
    #[serde(rename = "URLRewrite")]
    UrlRewrite,
    RequestRedirect,
    RequestMirror,
    DirectResponse,
}

/// A Gateway API style filter: `type` names which one of the fields below is set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FilterConfig {
    #[serde(rename = "type")]
    pub kind: FilterType,
    #[serde(default)]
    pub request_header_modifier: Option<HeaderModifierConfig>,
    #[serde(default)]
    pub response_header_modifier: Option<HeaderModifierConfig>,
    #[serde(default, rename = "urlRewrite")]
    pub url_rewrite: Option<UrlRewriteConfig>,
    #[serde(default)]
    pub request_redirect: Option<RedirectConfig>,
    #[serde(default)]
    pub request_mirror: Option<MirrorConfig>,
    #[serde(default)]
    pub direct_response: Option<DirectResponseConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderValueConfig {
    pub name: String,
    #[serde(deserialize_with = "scalar_string")]
    pub value: String,
}

/// Header values are strings, but YAML reads `yes`, `on` or `42` as other types; take any
/// scalar as its text so users need not quote them.
fn scalar_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Bool(b) => Ok(if b { "true" } else { "false" }.into()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a string, got {other}"
        ))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderModifierConfig {
    #[serde(default)]
    pub set: Vec<HeaderValueConfig>,
    #[serde(default)]
    pub add: Vec<HeaderValueConfig>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum PathModifierType {
    ReplaceFullPath,
    ReplacePrefixMatch,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathModifierConfig {
    #[serde(rename = "type")]
    pub kind: PathModifierType,
    #[serde(default)]
    pub replace_full_path: Option<String>,
    #[serde(default)]
    pub replace_prefix_match: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UrlRewriteConfig {
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifierConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RedirectConfig {
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub path: Option<PathModifierConfig>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub status_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MirrorConfig {
    pub backend_ref: BackendName,
    #[serde(default)]
    pub percent: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendName {
    pub name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DirectResponseConfig {
    pub status: u16,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendRefConfig {
    pub name: String,
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default)]
    pub filters: Vec<FilterConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TimeoutsConfig {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub backend_request: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetryConfig {
    #[serde(default)]
    pub attempts: Option<u32>,
    #[serde(default)]
    pub codes: Vec<u16>,
    #[serde(default)]
    pub backoff: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackendConfig {
    pub name: String,
    /// A single endpoint (shorthand for a one-element `endpoints`).
    #[serde(default, rename = "static")]
    pub single: Option<EndpointConfig>,
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    #[serde(default)]
    pub load_balancing: Option<LoadBalancingConfig>,
    #[serde(default)]
    pub health_check: Option<HealthCheckConfig>,
    #[serde(default)]
    pub tls: Option<UpstreamTlsConfig>,
    #[serde(default)]
    pub connect_timeout: Option<String>,
    #[serde(default)]
    pub idle_timeout: Option<String>,
    /// Plaintext HTTP/2 (prior knowledge) to the upstream, e.g. for gRPC.
    #[serde(default)]
    pub http2: bool,
    /// LLM providers (AgentgatewayBackend `spec.ai`); excludes `static`/`endpoints`.
    #[serde(default)]
    pub ai: Option<AiConfig>,
    /// Backend policies (AgentgatewayBackend `spec.policies`).
    #[serde(default)]
    pub policies: Option<BackendPoliciesConfig>,
    /// An A2A agent (AgentgatewayBackend `spec.a2a`): `host` and `port`, or replicas listed
    /// under `endpoints`.
    #[serde(default)]
    pub a2a: Option<A2aConfig>,
    /// MCP (AgentgatewayBackend `spec.mcp`): with `targets`, a virtual MCP server fanning
    /// out to them; without (`mcp: {}` plus `endpoints`), MCP passthrough that keeps each
    /// session on the replica that issued it.
    #[serde(default)]
    pub mcp: Option<agora_proto::mcp_spec::McpSpec>,
    /// An inference pool: `endpoints` are the model servers, and this endpoint picker (an
    /// ext_proc gRPC service, as for an InferencePool) chooses one per request.
    #[serde(default)]
    pub endpoint_picker: Option<EndpointPickerConfig>,
}

/// The endpoint picker of an inference pool backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EndpointPickerConfig {
    pub host: String,
    pub port: u16,
    /// `FailClose` (default: 503 when the picker does not answer) or `FailOpen` (any of
    /// the endpoints serves).
    #[serde(default)]
    pub failure_mode: Option<String>,
    /// Bound on one picker call (default 10s).
    #[serde(default)]
    pub timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct A2aConfig {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub enum LbMode {
    #[default]
    RoundRobin,
    LeastRequest,
    ConsistentHash,
    Random,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoadBalancingConfig {
    #[serde(default)]
    pub mode: LbMode,
    #[serde(default)]
    pub hash_on: Option<HashOnConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HashOnConfig {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub cookie: Option<String>,
    #[serde(default, rename = "sourceIP")]
    pub source_ip: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheckConfig {
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    #[serde(default)]
    pub base_ejection_time: Option<String>,
    #[serde(default)]
    pub active: Option<ActiveHealthCheckConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActiveHealthCheckConfig {
    #[serde(default = "default_path")]
    pub path: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub unhealthy_threshold: Option<u32>,
    #[serde(default)]
    pub healthy_threshold: Option<u32>,
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
    #[serde(default)]
    pub host: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpstreamTlsConfig {
    #[serde(default)]
    pub sni: Option<String>,
    #[serde(default)]
    pub ca: Option<String>,
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default)]
    pub client_cert: Option<String>,
    #[serde(default)]
    pub client_cert_file: Option<String>,
    #[serde(default)]
    pub client_key: Option<String>,
    #[serde(default)]
    pub client_key_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(default)]
    pub http2: bool,
}
