//! The LLM gateway, Pingora-free: an AI backend's providers, model resolution (aliases),
//! provider choice by priority group with passive health, and the per-request state that
//! turns a client request into a provider request and the provider's answer back.

mod build;
pub mod guard;
mod request;
mod response;
pub mod virtual_model;

pub use build::ai_backend;
pub use request::{LlmCtx, LlmError};
pub use virtual_model::VirtualModel;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use agora_providers::WireFormat;
use http::{HeaderName, HeaderValue};

use crate::backend::{EndpointState, PassiveCheck, now_ms};

/// An AI backend's providers and policies.
#[derive(Debug)]
pub struct AiIr {
    /// Priority groups; the first group with a healthy provider serves.
    pub groups: Vec<Vec<Arc<ProviderIr>>>,
    pub aliases: HashMap<String, String>,
    /// Virtual models by client-facing name.
    pub virtual_models: HashMap<String, Arc<VirtualModel>>,
    pub passive: Option<PassiveCheck>,
    /// `policies.ai` request shaping (defaults, overrides, prompt additions).
    pub policy: agora_providers::policy::RequestPolicy,
    rr: AtomicUsize,
}

/// One LLM provider endpoint.
#[derive(Debug)]
pub struct ProviderIr {
    pub name: String,
    /// The provider's kind as configured (`openai`, `anthropic`, `gemini`, `vertexai`,
    /// `bedrock`, `azureopenai`): CEL's `llm.provider`.
    pub kind: String,
    pub format: WireFormat,
    /// Forced model, if configured.
    pub model: Option<String>,
    /// Host name for the `Host` header and SNI.
    pub host: String,
    pub port: u16,
    /// Replaces the vendor's default path prefix; empty keeps it.
    pub path_prefix: String,
    pub tls: bool,
    pub auth: ProviderAuth,
    /// Vendor specifics on top of the wire format (paths, auth headers).
    pub vendor: Vendor,
    /// Models served (exact names or `*` globs); empty serves every model.
    pub models: Vec<String>,
    /// Address and health; `None` when the host did not resolve at load time (retried per
    /// request).
    pub endpoint: Option<Arc<EndpointState>>,
}

/// The vendor of a provider, for what the wire format alone does not decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Vendor {
    /// OpenAI, Anthropic, Gemini (AI Studio) or any OpenAI-compatible vendor.
    Direct,
    /// Vertex AI: publisher paths under a project and region.
    Vertex { project: String, region: String },
    /// AWS Bedrock in a region (SigV4 service `bedrock`).
    Bedrock { region: String },
    /// Azure OpenAI: deployment paths (or the v1 API without a deployment).
    Azure {
        deployment: String,
        api_version: String,
    },
}

/// How the gateway authenticates to a provider.
#[derive(Clone)]
pub enum ProviderAuth {
    None,
    /// A header to set (`authorization: Bearer …` or `x-api-key: …`).
    Key(HeaderName, HeaderValue),
    /// Keep the client's own credentials.
    Passthrough,
    /// Sign each request with AWS SigV4, with the source's current credentials.
    Aws(crate::cloud_auth::AwsCredentials),
    /// `authorization: Bearer <GCP access token>`, minted and refreshed by the gateway.
    Gcp(crate::cloud_auth::GcpTokens),
}

impl std::fmt::Debug for ProviderAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProviderAuth::None => "None",
            ProviderAuth::Key(..) => "Key([redacted])",
            ProviderAuth::Passthrough => "Passthrough",
            ProviderAuth::Aws(_) => "Aws([redacted])",
            ProviderAuth::Gcp(_) => "Gcp([redacted])",
        })
    }
}

/// The cloud credentials one LLM attempt uses, taken from its provider's source before the
/// attempt starts (see `ProviderAuth::current`).
#[derive(Clone)]
pub enum CloudCredentials {
    Aws(Arc<crate::cloud_auth::Entry<agora_providers::bedrock_sign::Credentials>>),
    Bearer(Arc<crate::cloud_auth::Entry<HeaderValue>>),
}

impl ProviderAuth {
    /// The credentials an attempt needs now (`None` for keys and passthrough). Waits only
    /// when no valid credential is cached; the error says why none could be obtained.
    pub async fn current(&self) -> crate::error::Result<Option<CloudCredentials>> {
        Ok(match self {
            ProviderAuth::Aws(src) => Some(CloudCredentials::Aws(src.get().await?)),
            ProviderAuth::Gcp(src) => Some(CloudCredentials::Bearer(src.get().await?)),
            _ => None,
        })
    }
}

impl ProviderIr {
    /// Whether this provider serves `model` (providers without a model list serve all).
    pub fn serves(&self, model: Option<&str>) -> bool {
        self.models.is_empty()
            || model.is_some_and(|m| self.models.iter().any(|p| glob_matches(p, m)))
    }

    /// Whether this provider may take a request now.
    pub fn is_healthy(&self) -> bool {
        self.endpoint
            .as_ref()
            .is_none_or(|e| e.is_healthy(now_ms()))
    }

    /// The upstream path (with query) for a translated request whose default path is
    /// `default_path`; `model` is the model this attempt sends (Anthropic on Vertex names
    /// it in the path), the provider's own when `None`.
    pub fn upstream_path(&self, default_path: &str, model: Option<&str>, stream: bool) -> String {
        let default = self.format.default_prefix();
        let suffix = default_path.strip_prefix(default).unwrap_or(default_path);
        match &self.vendor {
            Vendor::Azure {
                deployment,
                api_version,
            } => {
                if deployment.is_empty() {
                    format!("/openai/v1{suffix}")
                } else {
                    format!("/openai/deployments/{deployment}{suffix}?api-version={api_version}")
                }
            }
            Vendor::Vertex { project, region } => {
                let base = format!("/v1/projects/{project}/locations/{region}/publishers");
                match self.format {
                    // "/models/{model}:generateContent..." after the /v1beta prefix.
                    WireFormat::Gemini => format!("{base}/google{suffix}"),
                    _ => {
                        let model = model.or(self.model.as_deref()).unwrap_or_default();
                        let verb = if stream {
                            "streamRawPredict"
                        } else {
                            "rawPredict"
                        };
                        format!("{base}/anthropic/models/{model}:{verb}")
                    }
                }
            }
            _ => {
                let prefix = if self.path_prefix.is_empty() {
                    default
                } else {
                    &self.path_prefix
                };
                format!("{prefix}{suffix}")
            }
        }
    }
}

impl AiIr {
    pub fn new(
        groups: Vec<Vec<Arc<ProviderIr>>>,
        aliases: HashMap<String, String>,
        passive: Option<PassiveCheck>,
        policy: agora_providers::policy::RequestPolicy,
    ) -> Self {
        Self {
            groups,
            aliases,
            virtual_models: HashMap::new(),
            passive,
            policy,
            rr: AtomicUsize::new(0),
        }
    }

    /// Resolves a requested model through the aliases.
    pub fn resolve_model<'a>(&'a self, requested: Option<&'a str>) -> Option<&'a str> {
        requested.map(|m| self.aliases.get(m).map_or(m, String::as_str))
    }

    /// The provider for the next attempt: the first priority group with a healthy provider
    /// not yet tried, round robin within the group. When every provider is unhealthy, the
    /// untried ones are still used in order (better a try than a certain failure).
    pub fn choose(&self, tried: &[usize], model: Option<&str>) -> Option<(usize, Arc<ProviderIr>)> {
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let mut flat = 0;
        let mut fallback = None;
        for group in &self.groups {
            let n = group.len();
            for k in 0..n {
                let i = (start + k) % n;
                let id = flat + i;
                if tried.contains(&id) || !group[i].serves(model) {
                    continue;
                }
                if group[i].is_healthy() {
                    return Some((id, group[i].clone()));
                }
                fallback.get_or_insert((id, group[i].clone()));
            }
            flat += n;
        }
        fallback
    }

    /// Whether any provider serves `model` at all (a virtual model is served by its targets).
    pub fn serves(&self, model: Option<&str>) -> bool {
        model.is_some_and(|m| self.virtual_models.contains_key(m))
            || self.groups.iter().flatten().any(|p| p.serves(model))
    }

    /// Records a provider's outcome for passive health (429 and 5xx count as failures).
    pub fn record(&self, p: &ProviderIr, success: bool) {
        if let Some(e) = &p.endpoint {
            let passive = self.passive.clone().or(Some(PassiveCheck {
                consecutive_failures: 3,
                base_ejection: std::time::Duration::from_secs(10),
            }));
            e.record(success, passive.as_ref());
        }
    }
}

/// Glob match where `*` stands for any run of characters (`claude-*`, `*-mini`, `gpt-*-turbo`).
pub fn glob_matches(pattern: &str, s: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == s;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !s.starts_with(first)
        || !s[first.len()..].ends_with(last)
        || s.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &s[first.len()..s.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs() {
        assert!(glob_matches("gpt-4o", "gpt-4o"));
        assert!(!glob_matches("gpt-4o", "gpt-4o-mini"));
        assert!(glob_matches("claude-*", "claude-sonnet-4-5"));
        assert!(!glob_matches("claude-*", "gpt-4o"));
        assert!(glob_matches("*-mini", "gpt-4o-mini"));
        assert!(glob_matches("gpt-*-turbo", "gpt-4-turbo"));
        assert!(!glob_matches("gpt-*-turbo", "gpt-turbo"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("a*b*c", "aXcYb"));
    }
}
