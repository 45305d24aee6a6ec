//! Proto `Policy` → a compiled [`Policy`]: expressions parsed, keys hashed, buckets made.
//! Runs at config load; an error rejects the config and names the policy and field.

use std::sync::Arc;

use agora_proto::resource as pb;

use crate::Error;
use crate::authn::apikey::ApiKeyAuth;
use crate::authn::basic::BasicAuth;
use crate::authn::jwt::JwtAuth;
use crate::authz::Authorization;
use crate::budget::Budget;
use crate::cors::Cors;
use crate::guard::Guard;
use crate::ratelimit::{GlobalLimits, LimitSpec, LocalLimit, local_limit};

/// What a policy attaches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Gateway(String),
    Listener(String),
    /// A route (`namespace/name`), or one of its rules.
    Route {
        name: String,
        rule: Option<String>,
    },
    Backend(String),
}

/// The request-path sections of a policy.
#[derive(Debug, Default)]
pub struct Traffic {
    pub authorization: Option<Arc<Authorization>>,
    pub jwt: Option<Arc<JwtAuth>>,
    pub api_key: Option<Arc<ApiKeyAuth>>,
    pub basic: Option<Arc<BasicAuth>>,
    pub local_limits: Vec<Arc<LocalLimit>>,
    pub global_limits: Option<Arc<GlobalLimits>>,
    pub cors: Option<Arc<Cors>>,
    pub ext_auth: Option<Arc<pb::ExtAuth>>,
    pub request_headers: Option<Arc<pb::HeaderModifier>>,
    pub response_headers: Option<Arc<pb::HeaderModifier>>,
    pub timeouts: Option<pb::Timeouts>,
    pub retry: Option<pb::Retry>,
    pub budget: Option<Arc<Budget>>,
}

/// Prompt guards of both directions.
#[derive(Debug, Default)]
pub struct PromptGuards {
    pub request: Arc<Guard>,
    pub response: Arc<Guard>,
}

/// A compiled policy.
#[derive(Debug)]
pub struct Policy {
    pub key: String,
    pub target: Target,
    pub override_: bool,
    pub traffic: Traffic,
    pub guards: Option<Arc<PromptGuards>>,
}

fn invalid(key: &str, field: &str, message: String) -> Error {
    Error::Config {
        field: format!("policy {key}: {field}"),
        message,
    }
}

/// Compiles one policy.
pub fn compile(p: &pb::Policy) -> Result<Policy, Error> {
    let key = p.key.as_str();
    let target = match p
        .target
        .as_ref()
        .and_then(|t| t.kind.as_ref().map(|k| (k, &t.section)))
    {
        Some((pb::policy_target::Kind::Gateway(g), _)) => Target::Gateway(g.clone()),
        Some((pb::policy_target::Kind::Listener(l), _)) => Target::Listener(l.clone()),
        Some((pb::policy_target::Kind::Route(r), s)) => Target::Route {
            name: r.clone(),
            rule: (!s.is_empty()).then(|| s.clone()),
        },
        Some((pb::policy_target::Kind::Backend(b), _)) => Target::Backend(b.clone()),
        None => return Err(invalid(key, "target", "a policy needs a target".into())),
    };
    let mut traffic = Traffic::default();
    if let Some(t) = &p.traffic {
        let f = |field: &'static str| move |m: String| invalid(key, field, m);
        if let Some(a) = &t.authorization {
            traffic.authorization = Some(Arc::new(
                Authorization::compile(a).map_err(f("authorization"))?,
            ));
        }
        if let Some(j) = &t.jwt {
            traffic.jwt = Some(Arc::new(
                JwtAuth::compile(j).map_err(f("jwtAuthentication"))?,
            ));
        }
        if let Some(k) = &t.api_key {
            traffic.api_key = Some(Arc::new(
                ApiKeyAuth::compile(k).map_err(f("apiKeyAuthentication"))?,
            ));
        }
        if let Some(b) = &t.basic {
            traffic.basic = Some(Arc::new(
                BasicAuth::compile(b).map_err(f("basicAuthentication"))?,
            ));
        }
        for (i, l) in t.local_rate_limits.iter().enumerate() {
            let spec = LimitSpec::compile(l).map_err(f("rateLimit.local"))?;
            traffic
                .local_limits
                .push(local_limit(&format!("{key}#{i}"), spec));
        }
        if let Some(g) = &t.global_rate_limit {
            let limits = g
                .limits
                .iter()
                .map(LimitSpec::compile)
                .collect::<Result<_, _>>()
                .map_err(f("rateLimit.global"))?;
            traffic.global_limits = Some(Arc::new(GlobalLimits::new(key, limits, g.fail_open)));
        }
        if let Some(c) = &t.cors {
            traffic.cors = Some(Arc::new(Cors::compile(c).map_err(f("cors"))?));
        }
        traffic.ext_auth = t.ext_auth.clone().map(Arc::new);
        traffic.request_headers = t.request_headers.clone().map(Arc::new);
        traffic.response_headers = t.response_headers.clone().map(Arc::new);
        traffic.timeouts = t.timeouts;
        traffic.retry = t.retry.clone();
        if let Some(b) = &t.budget {
            traffic.budget = Some(Arc::new(Budget::compile(key, b).map_err(f("budget"))?));
        }
    }
    let guards = match &p.prompt_guard {
        Some(g) => Some(Arc::new(PromptGuards {
            request: Arc::new(
                Guard::compile(&g.request).map_err(|m| invalid(key, "promptGuard.request", m))?,
            ),
            response: Arc::new(
                Guard::compile(&g.response).map_err(|m| invalid(key, "promptGuard.response", m))?,
            ),
        })),
        None => None,
    };
    Ok(Policy {
        key: key.to_string(),
        target,
        override_: p.r#override,
        traffic,
        guards,
    })
}
