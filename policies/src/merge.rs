//! Which policies apply to a request: those of its gateway, listener, route (rule) and
//! backend, merged per section. A section set at several levels takes the most specific one,
//! unless a less specific level marks its policy `override` (then the least specific override
//! wins). Authorization rules and rate limits add up across levels (an override drops the
//! more specific levels' ones).

use std::sync::Arc;

use agora_proto::resource as pb;

use crate::authn::apikey::ApiKeyAuth;
use crate::authn::basic::BasicAuth;
use crate::authn::jwt::JwtAuth;
use crate::authz::Authorization;
use crate::budget::Budget;
use crate::cel::Uses;
use crate::compile::{Policy, PromptGuards};
use crate::cors::Cors;
use crate::ratelimit::{GlobalLimits, LocalLimit};

/// The policies in force for one route rule and backend.
#[derive(Debug, Default, Clone)]
pub struct Effective {
    pub authorization: Vec<Arc<Authorization>>,
    pub jwt: Option<Arc<JwtAuth>>,
    pub api_key: Option<Arc<ApiKeyAuth>>,
    pub basic: Option<Arc<BasicAuth>>,
    pub local_limits: Vec<Arc<LocalLimit>>,
    pub global_limits: Vec<Arc<GlobalLimits>>,
    pub cors: Option<Arc<Cors>>,
    pub ext_auth: Option<Arc<pb::ExtAuth>>,
    pub request_headers: Option<Arc<pb::HeaderModifier>>,
    pub response_headers: Option<Arc<pb::HeaderModifier>>,
    pub timeouts: Option<pb::Timeouts>,
    pub retry: Option<pb::Retry>,
    pub guards: Option<Arc<PromptGuards>>,
    pub budget: Option<Arc<Budget>>,
    /// Variables the authorization rules and limit descriptors read.
    pub uses: Uses,
}

impl Effective {
    pub fn is_empty(&self) -> bool {
        self.authorization.is_empty()
            && self.jwt.is_none()
            && self.api_key.is_none()
            && self.basic.is_none()
            && self.local_limits.is_empty()
            && self.global_limits.is_empty()
            && self.cors.is_none()
            && self.ext_auth.is_none()
            && self.request_headers.is_none()
            && self.response_headers.is_none()
            && self.timeouts.is_none()
            && self.retry.is_none()
            && self.guards.is_none()
            && self.budget.is_none()
    }

    /// Whether anything needs the request's identity or a CEL context.
    pub fn needs_identity(&self) -> bool {
        self.jwt.is_some() || self.api_key.is_some() || self.basic.is_some()
    }
}

type Levels<'a> = [&'a [Arc<Policy>]];

fn pick<T>(levels: &Levels, get: impl Fn(&Policy) -> Option<T>) -> Option<T> {
    for l in levels {
        if let Some(v) = l.iter().filter(|p| p.override_).find_map(|p| get(p)) {
            return Some(v);
        }
    }
    levels
        .iter()
        .rev()
        .find_map(|l| l.iter().find_map(|p| get(p)))
}

fn collect<T>(levels: &Levels, get: impl Fn(&Policy) -> Vec<T>) -> Vec<T> {
    let end = levels
        .iter()
        .position(|l| l.iter().any(|p| p.override_ && !get(p).is_empty()))
        .map_or(levels.len(), |i| i + 1);
    levels[..end]
        .iter()
        .flat_map(|l| l.iter())
        .flat_map(|p| get(p))
        .collect()
}

/// Merges the policies of `levels`, least specific first (gateway, listener, route,
/// backend).
pub fn merge(levels: &Levels) -> Effective {
    if levels.iter().all(|l| l.is_empty()) {
        return Effective::default();
    }
    let mut e = Effective {
        authorization: collect(levels, |p| {
            p.traffic.authorization.iter().cloned().collect()
        }),
        jwt: pick(levels, |p| p.traffic.jwt.clone()),
        api_key: pick(levels, |p| p.traffic.api_key.clone()),
        basic: pick(levels, |p| p.traffic.basic.clone()),
        local_limits: collect(levels, |p| p.traffic.local_limits.clone()),
        global_limits: collect(levels, |p| {
            p.traffic.global_limits.iter().cloned().collect()
        }),
        cors: pick(levels, |p| p.traffic.cors.clone()),
        ext_auth: pick(levels, |p| p.traffic.ext_auth.clone()),
        request_headers: pick(levels, |p| p.traffic.request_headers.clone()),
        response_headers: pick(levels, |p| p.traffic.response_headers.clone()),
        timeouts: pick(levels, |p| p.traffic.timeouts),
        retry: pick(levels, |p| p.traffic.retry.clone()),
        guards: pick(levels, |p| p.guards.clone()),
        budget: pick(levels, |p| p.traffic.budget.clone()),
        uses: Uses::default(),
    };
    e.uses = e
        .authorization
        .iter()
        .map(|a| a.uses())
        .chain(e.local_limits.iter().map(|l| l.spec.uses()))
        .chain(
            e.global_limits
                .iter()
                .flat_map(|g| g.limits.iter().map(|l| l.uses())),
        )
        .fold(Uses::default(), Uses::union);
    e
}

#[cfg(test)]
mod tests;
