//! The request side of an LLM call: what the client asked, which provider each attempt goes
//! to, and the body that attempt sends.

use std::sync::Arc;

use agora_policies::cel::{Expr, Uses};
use agora_providers::{ClientApi, inspect, translate_gemini_request, translate_request};
use bytes::Bytes;

use super::response::ResponseState;
use super::{AiIr, ProviderIr, VirtualModel};

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
    #[error("no provider serves model {0:?}")]
    UnknownModel(String),
    #[error("no target of virtual model {0:?} matches this request")]
    NoTarget(String),
}

impl LlmError {
    pub fn status(&self) -> u16 {
        match self {
            LlmError::Provider(e) => e.status(),
            LlmError::NoModel => 400,
            LlmError::NoProvider => 503,
            LlmError::UnknownApi(_) => 404,
            LlmError::Unresolved(_) => 503,
            LlmError::UnknownModel(_) | LlmError::NoTarget(_) => 404,
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
    /// The first attempt's provider, when chosen before the attempt (for the policies).
    first: Option<(usize, Arc<ProviderIr>)>,
    pub provider: Option<Arc<ProviderIr>>,
    /// The model the current attempt sends upstream (a virtual model's concrete target).
    pub upstream_model: Option<String>,
    /// The virtual model the client asked for, if any.
    virtual_route: Option<VirtualRoute>,
    upstream_body: Option<Bytes>,
    pub upstream_path: String,
    body_sent: bool,
    pub response: ResponseState,
    /// Response prompt guards of the route, applied to every attempt's answer.
    pub response_guard: Option<Arc<agora_policies::guard::Guard>>,
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
    /// Reads what routing needs from the client's body (and, for Gemini clients, from the
    /// path: `…/models/{model}:generateContent` or `:streamGenerateContent`).
    pub fn new(api: ClientApi, path: &str, body: Bytes, ai: &AiIr) -> Result<Self, LlmError> {
        let info = if api == ClientApi::GenerateContent {
            let (model, verb) =
                gemini_path(path).ok_or_else(|| LlmError::UnknownApi(path.to_string()))?;
            agora_providers::RequestInfo {
                model: Some(model.to_string()),
                stream: verb == "streamGenerateContent",
            }
        } else if matches!(api, ClientApi::Models | ClientApi::Passthrough) {
            agora_providers::RequestInfo {
                model: None,
                stream: false,
            }
        } else {
            inspect(api, &body)?
        };
        let body = match ai.policy.apply(api, &body)? {
            Some(shaped) => Bytes::from(shaped),
            None => body,
        };
        let resolved = ai.resolve_model(info.model.as_deref()).map(str::to_string);
        let aliased = resolved != info.model;
        let virtual_route = resolved
            .as_deref()
            .and_then(|m| ai.virtual_models.get(m))
            .map(|v| VirtualRoute::new(v.clone()));
        Ok(Self {
            api,
            request_model: resolved,
            aliased,
            stream: info.stream,
            original: body,
            tried: Vec::new(),
            first: None,
            provider: None,
            upstream_model: None,
            virtual_route,
            upstream_body: None,
            upstream_path: String::new(),
            body_sent: false,
            response: ResponseState::default(),
            response_guard: None,
        })
    }

    /// What the conditions of the requested virtual model read, when it has conditions
    /// that [`LlmCtx::match_targets`] has not evaluated yet; `None` otherwise.
    pub fn target_conditions(&self) -> Option<Uses> {
        self.virtual_route
            .as_ref()
            .filter(|v| !v.matched)
            .map(|v| v.model.uses)
    }

    /// Runs once the body is read, before the first provider is chosen: evaluates the
    /// virtual model's target conditions (`eval` answers for one; an evaluation error should
    /// answer false). Until it runs, only targets without a condition serve.
    pub fn match_targets(&mut self, eval: impl FnMut(&Expr) -> bool) {
        if let Some(v) = self.virtual_route.as_mut() {
            v.candidates = v.model.matching(eval);
            v.matched = true;
        }
    }

    /// The provider the first attempt will use, chosen now (before the body's policies run,
    /// which read its kind as `llm.provider`); `None` when no provider serves the model.
    pub fn first_provider(&mut self, ai: &AiIr) -> Option<&Arc<ProviderIr>> {
        if let Some(v) = self.virtual_route.as_mut() {
            if v.first.is_none() && v.tried.is_empty() {
                v.first = v.next();
            }
            return v.first.map(|i| &v.model.targets[i].provider);
        }
        let model = self.request_model.as_deref();
        if self.first.is_none() && self.tried.is_empty() && ai.serves(model) {
            self.first = ai.choose(&[], model);
        }
        self.first.as_ref().map(|(_, p)| p)
    }

    /// Chooses the provider for the next attempt and translates the body for it.
    pub fn next_attempt(&mut self, ai: &AiIr) -> Result<Arc<ProviderIr>, LlmError> {
        let (p, target_model) = match self.virtual_route.as_mut() {
            Some(v) => {
                let i = match v.first.take() {
                    Some(i) if v.tried.is_empty() => i,
                    _ => v.next().ok_or_else(|| {
                        if v.tried.is_empty() {
                            LlmError::NoTarget(v.model.name.clone())
                        } else {
                            LlmError::NoProvider
                        }
                    })?,
                };
                v.tried.push(i);
                let t = &v.model.targets[i];
                (t.provider.clone(), Some(t.model.clone()))
            }
            None => {
                let model_name = self.request_model.as_deref();
                if self.tried.is_empty() && !ai.serves(model_name) {
                    return Err(LlmError::UnknownModel(
                        model_name.unwrap_or_default().to_string(),
                    ));
                }
                let (id, p) = match self.first.take() {
                    Some(first) if self.tried.is_empty() => first,
                    _ => ai
                        .choose(&self.tried, model_name)
                        .ok_or(LlmError::NoProvider)?,
                };
                self.tried.push(id);
                (p, None)
            }
        };
        // A virtual model's target model, else the provider's forced one.
        let forced = target_model.as_deref().or(p.model.as_deref());
        let model = forced.or(self.request_model.as_deref());
        if model.is_none() && !matches!(self.api, ClientApi::Models | ClientApi::Passthrough) {
            return Err(LlmError::NoModel);
        }
        let rewrite = if forced.is_some() || self.aliased || self.api == ClientApi::GenerateContent
        {
            model
        } else {
            None
        };
        // Azure serves the Responses API on its v1 path only, the deployment as the model
        // (without a deployment, the provider's usual v1 path is that path already).
        let azure_responses = match &p.vendor {
            super::Vendor::Azure { deployment, .. } if self.api == ClientApi::Responses => {
                Some(deployment.as_str()).filter(|d| !d.is_empty())
            }
            _ => None,
        };
        let rewrite = azure_responses.or(rewrite);
        let t = if self.api == ClientApi::GenerateContent {
            // A Gemini client says whether it streams in its path, not its body.
            translate_gemini_request(p.format, &self.original, rewrite, self.stream)?
        } else {
            translate_request(self.api, p.format, &self.original, rewrite)?
        };
        self.upstream_body = t.body.map(Bytes::from);
        // Passthrough keeps the client's (possibly rewritten) path: an empty upstream path.
        self.upstream_path = if t.path.is_empty() {
            String::new()
        } else if azure_responses.is_some() {
            "/openai/v1/responses".to_string()
        } else {
            p.upstream_path(&t.path, model, t.stream)
        };
        if let super::Vendor::Vertex { .. } = p.vendor
            && p.format == agora_providers::WireFormat::Anthropic
            && self.api != ClientApi::Passthrough
        {
            // Anthropic on Vertex: the model is in the path, the version in the body.
            let body = self.upstream_body.as_deref().unwrap_or(&self.original);
            self.upstream_body = Some(Bytes::from(vertex_anthropic_body(body)?));
        }
        self.upstream_model = model.map(str::to_string);
        self.stream = t.stream;
        self.body_sent = false;
        self.response = ResponseState::new(
            self.api,
            p.format,
            t.hide_usage_chunk,
            self.response_guard.clone(),
        );
        self.provider = Some(p.clone());
        Ok(p)
    }

    /// The body the current attempt sends upstream.
    pub fn upstream_body_bytes(&self) -> &[u8] {
        self.upstream_body.as_ref().unwrap_or(&self.original)
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
        match &self.virtual_route {
            Some(v) => v.peek().is_some(),
            None => ai
                .choose(&self.tried, self.request_model.as_deref())
                .is_some(),
        }
    }
}

/// The virtual model a request asked for, and how far its targets have been tried.
struct VirtualRoute {
    model: Arc<VirtualModel>,
    /// The targets that may serve the request (those without a condition until the
    /// conditions are evaluated).
    candidates: Vec<usize>,
    /// Whether the conditions have been evaluated.
    matched: bool,
    tried: Vec<usize>,
    /// The first attempt's target, when chosen before the attempt (for the policies).
    first: Option<usize>,
}

impl VirtualRoute {
    fn new(model: Arc<VirtualModel>) -> Self {
        let candidates = model.matching(|_| false);
        Self {
            matched: !model.conditional,
            model,
            candidates,
            tried: Vec::new(),
            first: None,
        }
    }

    /// The target of the next attempt (a fresh weighted draw), `None` when all were tried.
    fn next(&self) -> Option<usize> {
        self.model.pick(
            &self.candidates,
            &self.tried,
            |t| t.provider.is_healthy(),
            rand::random(),
        )
    }

    /// Whether a target is left to fail over to.
    fn peek(&self) -> Option<usize> {
        self.candidates
            .iter()
            .copied()
            .find(|i| !self.tried.contains(i))
    }
}

/// An Anthropic request body as Vertex AI wants it: no `model`, and
/// `anthropic_version: vertex-2023-10-16`.
fn vertex_anthropic_body(body: &[u8]) -> Result<Vec<u8>, LlmError> {
    let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|e| agora_providers::Error::InvalidRequest(e.to_string()))?;
    v.remove("model");
    v.entry("anthropic_version")
        .or_insert_with(|| "vertex-2023-10-16".into());
    serde_json::to_vec(&v).map_err(|e| agora_providers::Error::InvalidRequest(e.to_string()).into())
}

/// The model and verb of a Gemini path: `…/models/{model}:{verb}`.
fn gemini_path(path: &str) -> Option<(&str, &str)> {
    let path = path.split('?').next().unwrap_or(path);
    let rest = &path[path.rfind("/models/")? + "/models/".len()..];
    let (model, verb) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, verb))
}
