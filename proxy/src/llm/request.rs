//! The request side of an LLM call: what the client asked, which provider each attempt goes
//! to, and the body that attempt sends.

use std::sync::Arc;

use agora_providers::{ClientApi, inspect, translate_request};
use bytes::Bytes;

use super::response::ResponseState;
use super::{AiIr, ProviderIr};

/// Why an LLM request cannot go upstream.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error(transparent)]
    Provider(#[from] agora_providers::Error),
    #[error("no model in the request and none configured for the provider")]
    NoModel,
    #[error("no provider available")]
    NoProvider,
    #[error("{0} is not an LLM API path this gateway serves")]
    UnknownApi(String),
    #[error("cannot resolve provider host {0}")]
    Unresolved(String),
}

impl LlmError {
    pub fn status(&self) -> u16 {
        match self {
            LlmError::Provider(e) => e.status(),
            LlmError::NoModel => 400,
            LlmError::NoProvider => 503,
            LlmError::UnknownApi(_) => 404,
            LlmError::Unresolved(_) => 503,
        }
    }
}

/// LLM state of one request.
pub struct LlmCtx {
    pub api: ClientApi,
    /// The model the client asked for, after alias resolution.
    pub request_model: Option<String>,
    /// Whether the alias changed the model (the body must then be rewritten).
    aliased: bool,
    pub stream: bool,
    original: Bytes,
    /// Providers tried so far (flat indexes).
    tried: Vec<usize>,
    pub provider: Option<Arc<ProviderIr>>,
    upstream_body: Option<Bytes>,
    pub upstream_path: String,
    body_sent: bool,
    pub response: ResponseState,
}

impl std::fmt::Debug for LlmCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmCtx")
            .field("api", &self.api)
            .field("request_model", &self.request_model)
            .field("provider", &self.provider.as_ref().map(|p| &p.name))
            .finish()
    }
}

impl LlmCtx {
    /// Reads what routing needs from the client's body.
    pub fn new(api: ClientApi, body: Bytes, ai: &AiIr) -> Result<Self, LlmError> {
        let info = if matches!(api, ClientApi::Models) {
            agora_providers::RequestInfo {
                model: None,
                stream: false,
            }
        } else {
            inspect(api, &body)?
        };
        let resolved = ai.resolve_model(info.model.as_deref()).map(str::to_string);
        let aliased = resolved != info.model;
        Ok(Self {
            api,
            request_model: resolved,
            aliased,
            stream: info.stream,
            original: body,
            tried: Vec::new(),
            provider: None,
            upstream_body: None,
            upstream_path: String::new(),
            body_sent: false,
            response: ResponseState::default(),
        })
    }

    /// Chooses the provider for the next attempt and translates the body for it.
    pub fn next_attempt(&mut self, ai: &AiIr) -> Result<Arc<ProviderIr>, LlmError> {
        let (id, p) = ai.choose(&self.tried).ok_or(LlmError::NoProvider)?;
        self.tried.push(id);
        let forced = p.model.as_deref();
        let model = forced.or(self.request_model.as_deref());
        if model.is_none() && !matches!(self.api, ClientApi::Models) {
            return Err(LlmError::NoModel);
        }
        let rewrite = if forced.is_some() || self.aliased {
            model
        } else {
            None
        };
        let t = translate_request(self.api, p.format, &self.original, rewrite)?;
        self.upstream_body = t.body.map(Bytes::from);
        let default = p.format.default_prefix();
        let suffix = t.path.strip_prefix(default).unwrap_or(&t.path);
        let prefix = if p.path_prefix.is_empty() {
            default
        } else {
            &p.path_prefix
        };
        self.upstream_path = format!("{prefix}{suffix}");
        self.stream = t.stream;
        self.body_sent = false;
        self.response = ResponseState::new(self.api, p.format, t.hide_usage_chunk);
        self.provider = Some(p.clone());
        Ok(p)
    }

    /// Bytes the current attempt sends upstream.
    pub fn upstream_len(&self) -> usize {
        self.upstream_body.as_ref().unwrap_or(&self.original).len()
    }

    /// Replaces whatever body Pingora is about to send with this attempt's body, once.
    pub fn fill_body(&mut self, body: &mut Option<Bytes>) {
        if self.body_sent {
            *body = None;
        } else {
            *body = Some(
                self.upstream_body
                    .clone()
                    .unwrap_or_else(|| self.original.clone()),
            );
            self.body_sent = true;
        }
    }

    /// Whether another provider is left to fail over to.
    pub fn can_fail_over(&self, ai: &AiIr) -> bool {
        ai.choose(&self.tried).is_some()
    }
}
