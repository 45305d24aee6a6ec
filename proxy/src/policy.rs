//! The policies of the request path, Pingora-free: what runs once a request is routed
//! ([`PolicyCtx::admit`]: CORS, authentication, authorization, request limits), once an LLM
//! body is known ([`PolicyCtx::admit_tokens`], [`guard_request`]), and after the response
//! ([`PolicyCtx::settle`]: token limits corrected from the real usage). The evaluation itself
//! lives in `agora-policies`; this module sequences it and talks to Redis.

pub mod budget;
pub mod callout;
pub mod jwks;
pub mod redis;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use agora_policies::authn::Identity;
use agora_policies::cel::{Attributes, Context, LlmAttrs, RequestView, Uses};
use agora_policies::ratelimit::{GlobalLimits, Kind, LimitSpec, LocalLimit};
use agora_policies::{Effective, Error as PolicyError, unix_now};

use self::redis::{Charge, Outcome};

/// What the request looks like to the policies.
#[derive(Clone, Copy)]
pub struct RequestInfo<'a> {
    pub parts: &'a http::request::Parts,
    pub host: &'a str,
    pub source: Option<SocketAddr>,
}

/// What the gateway reads after admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFollows {
    No,
    /// An LLM request body.
    Llm,
    /// A JSON-RPC body (A2A).
    JsonRpc,
}

/// What `admit` decided.
#[derive(Debug, PartialEq)]
pub enum Admission {
    /// Go on with the request.
    Continue,
    /// A CORS preflight: answer 204 with these headers.
    Preflight(Vec<(&'static str, String)>),
}

/// Policy state of one request.
#[derive(Debug, Default)]
pub struct PolicyCtx {
    pub effective: Option<Arc<Effective>>,
    pub identity: Identity,
    /// Headers added to the response (CORS, rate-limit state).
    pub response_headers: Vec<(&'static str, String)>,
    /// What the request prompt guard did (`masked`, `rejected`), for metrics.
    pub guard_outcome: Option<&'static str>,
    /// Headers the external authorization service asked to add upstream.
    pub upstream_headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Token buckets charged with an estimate, to settle once the usage is known.
    local_tokens: Vec<(Arc<LocalLimit>, String, u64)>,
    global_tokens: Vec<(Charge, u64)>,
    /// Authorization rules that read the body's attributes, run once it is known.
    deferred_authz: Vec<Arc<agora_policies::authz::Authorization>>,
    /// Global request charges held back to go to Redis with the token charges (LLM routes:
    /// one round trip per request).
    pending_global: Vec<(Charge, Arc<GlobalLimits>, usize)>,
    /// The budget this request spends from: the budget, its subject and window start.
    budget: Option<(Arc<agora_policies::budget::Budget>, String, u64)>,
}

/// The real usage of an LLM request, known once its response is over.
#[derive(Debug, Clone, Default)]
pub struct Used {
    pub model: String,
    pub input: u64,
    pub output: u64,
}

/// The CEL attributes of a request (no `mcp` or `a2a`), for the policies and for the
/// conditions of virtual model targets.
pub(crate) fn attributes<'a>(
    req: &RequestInfo<'a>,
    identity: &'a Identity,
    llm: Option<&'a LlmAttrs>,
) -> Attributes<'a> {
    Attributes {
        request: RequestView {
            method: req.parts.method.as_str(),
            path: req.parts.uri.path(),
            host: req.host,
            headers: &req.parts.headers,
        },
        source: req.source,
        identity,
        llm,
        mcp: None,
        a2a: None,
    }
}

fn refused(spec: &LimitSpec, wait: std::time::Duration) -> PolicyError {
    PolicyError::RateLimited {
        what: format!(
            "{} {} per {}s",
            spec.limit,
            match spec.kind {
                Kind::Requests => "requests",
                Kind::Tokens => "tokens",
            },
            spec.window.as_secs()
        ),
        limit: spec.limit,
        retry_after: wait,
    }
}

/// The global charges of one kind, keyed by policy, limit index and descriptor.
fn global_charges(
    globals: &[Arc<GlobalLimits>],
    kind: Kind,
    amount: u64,
    ctx: Option<&Context>,
) -> Vec<(Charge, Arc<GlobalLimits>, usize)> {
    let mut out = Vec::new();
    for g in globals {
        for (i, spec) in g.limits.iter().enumerate() {
            if spec.kind != kind {
                continue;
            }
            let Some(d) = spec.descriptor(ctx) else {
                continue;
            };
            out.push((
                Charge {
                    key: g.key(i, &d),
                    capacity: spec.capacity,
                    rate: spec.rate(),
                    needed: spec.needed(amount),
                    amount,
                    window: spec.window,
                },
                g.clone(),
                i,
            ));
        }
    }
    out
}

impl PolicyCtx {
    /// Runs once the request is routed, before its body is read: answers CORS preflights,
    /// authenticates, authorizes, and takes one request from every request limit. An `Err`
    /// is the client's answer (401, 403, 429, 503).
    ///
    /// `body`: what is read next. For an LLM call, global request charges wait for
    /// [`PolicyCtx::admit_tokens`] to share its Redis round trip; for LLM and A2A calls, rules
    /// reading `llm`, `mcp` or `a2a` wait for [`PolicyCtx::authorize_body`].
    pub async fn admit(
        &mut self,
        eff: &Arc<Effective>,
        req: RequestInfo<'_>,
        body: BodyFollows,
    ) -> Result<Admission, PolicyError> {
        let defer_global = body == BodyFollows::Llm;
        self.effective = Some(eff.clone());
        if eff.is_empty() {
            return Ok(Admission::Continue);
        }
        let headers = &req.parts.headers;
        if let Some(c) = &eff.cors {
            if let Some(h) = c.preflight(req.parts.method.as_str(), headers) {
                return Ok(Admission::Preflight(h));
            }
            let origin = headers
                .get(http::header::ORIGIN)
                .and_then(|v| v.to_str().ok());
            self.response_headers.extend(c.response_headers(origin));
        }
        if let Some(j) = &eff.jwt {
            self.identity.jwt = j.authenticate(headers).map_err(|e| match e {
                // MCP clients learn from the challenge where the resource metadata is (the
                // glue fills in the URL).
                PolicyError::Unauthenticated { reason, .. } if j.is_mcp() => {
                    PolicyError::McpUnauthenticated {
                        reason,
                        metadata: String::new(),
                    }
                }
                e => e,
            })?;
        }
        if let Some(k) = &eff.api_key {
            self.identity.api_key = k.authenticate(headers)?;
        }
        if let Some(b) = &eff.basic {
            self.identity.basic_user = b.authenticate(headers)?;
        }
        let charges = {
            let attrs = attributes(&req, &self.identity, None);
            let cel = (eff.uses != Uses::default()).then(|| attrs.context(eff.uses));
            for a in &eff.authorization {
                if body != BodyFollows::No && a.uses().reads_body() {
                    self.deferred_authz.push(a.clone());
                    continue;
                }
                a.check(cel.as_ref().ok_or_else(|| {
                    PolicyError::Forbidden("authorization context unavailable".into())
                })?)?;
            }
            let now = Instant::now();
            let mut tightest: Option<(u64, u64)> = None;
            for l in eff
                .local_limits
                .iter()
                .filter(|l| l.spec.kind == Kind::Requests)
            {
                let Some(key) = l.spec.descriptor(cel.as_ref()) else {
                    continue;
                };
                let a = l.acquire(&key, 1, now).map_err(|w| refused(&l.spec, w))?;
                if tightest.is_none_or(|(_, r)| a.remaining < r) {
                    tightest = Some((l.spec.limit, a.remaining));
                }
            }
            if let Some((limit, remaining)) = tightest {
                self.response_headers
                    .push(("x-ratelimit-limit", limit.to_string()));
                self.response_headers
                    .push(("x-ratelimit-remaining", remaining.to_string()));
            }
            global_charges(&eff.global_limits, Kind::Requests, 1, cel.as_ref())
        };
        if defer_global {
            self.pending_global = charges;
        } else {
            self.charge_global(charges).await?;
        }
        if let Some(x) = &eff.ext_auth {
            self.upstream_headers = callout::ext_auth(x, req.parts, req.source, req.host).await?;
        }
        Ok(Admission::Continue)
    }

    /// Whether rules wait for the body's attributes.
    pub fn has_body_rules(&self) -> bool {
        !self.deferred_authz.is_empty()
    }

    /// Runs the authorization rules that read `llm`, `mcp` or `a2a`, once the body told them.
    pub fn authorize_body(
        &mut self,
        req: RequestInfo<'_>,
        llm: Option<&LlmAttrs>,
        a2a: Option<&serde_json::Value>,
    ) -> Result<(), PolicyError> {
        let rules = std::mem::take(&mut self.deferred_authz);
        if rules.is_empty() {
            return Ok(());
        }
        let uses = rules.iter().fold(Uses::default(), |u, a| u.union(a.uses()));
        let mut attrs = attributes(&req, &self.identity, llm);
        attrs.a2a = a2a;
        let cel = attrs.context(uses);
        for a in &rules {
            a.check(&cel)?;
        }
        Ok(())
    }

    /// Runs the authorization rules that read `mcp` for one MCP operation on a tool, prompt
    /// or resource (a call, or one item of a listing). The rules stay for the next
    /// operation. `true`: allowed.
    pub fn authorize_mcp(&self, req: RequestInfo<'_>, mcp: &serde_json::Value) -> bool {
        if self.deferred_authz.is_empty() {
            return true;
        }
        let uses = self
            .deferred_authz
            .iter()
            .fold(Uses::default(), |u, a| u.union(a.uses()));
        let mut attrs = attributes(&req, &self.identity, None);
        attrs.mcp = Some(mcp);
        let cel = attrs.context(uses);
        self.deferred_authz.iter().all(|a| a.check(&cel).is_ok())
    }

    /// Runs once an LLM request's body is read: checks the subject's budget, and takes the
    /// estimated input tokens from every token limit (the real usage settles both later).
    pub async fn admit_tokens(
        &mut self,
        estimated: u64,
        llm: &LlmAttrs,
        req: RequestInfo<'_>,
    ) -> Result<(), PolicyError> {
        let Some(eff) = self.effective.clone() else {
            return Ok(());
        };
        let has_local = eff.local_limits.iter().any(|l| l.spec.kind == Kind::Tokens);
        let has_global = eff
            .global_limits
            .iter()
            .any(|g| g.limits.iter().any(|l| l.kind == Kind::Tokens));
        if !has_local && !has_global && eff.budget.is_none() {
            let pending = std::mem::take(&mut self.pending_global);
            return self.charge_global(pending).await;
        }
        let (charges, subject) = {
            let attrs = attributes(&req, &self.identity, Some(llm));
            // Rules ran already: only token-limit descriptors and a budget's subject read
            // the context here.
            let uses = eff
                .local_limits
                .iter()
                .map(|l| &l.spec)
                .chain(eff.global_limits.iter().flat_map(|g| g.limits.iter()))
                .filter(|l| l.kind == Kind::Tokens)
                .fold(
                    eff.budget.as_ref().map_or(Uses::default(), |b| b.uses()),
                    |u, l| u.union(l.uses()),
                );
            let cel = (uses != Uses::default()).then(|| attrs.context(uses));
            let subject = eff.budget.as_ref().and_then(|b| {
                b.subject(&self.identity, cel.as_ref())
                    .map(|s| (b.clone(), s))
            });
            let now = Instant::now();
            for l in eff
                .local_limits
                .iter()
                .filter(|l| l.spec.kind == Kind::Tokens)
            {
                let Some(key) = l.spec.descriptor(cel.as_ref()) else {
                    continue;
                };
                l.acquire(&key, estimated, now)
                    .map_err(|w| refused(&l.spec, w))?;
                self.local_tokens.push((l.clone(), key, estimated));
            }
            (
                global_charges(&eff.global_limits, Kind::Tokens, estimated, cel.as_ref()),
                subject,
            )
        };
        if let Some((b, subject)) = subject {
            let (start, left) = b.window_at(unix_now());
            let key = budget::key(&b, &subject, start);
            match budget::read(&key).await {
                Ok(spent) => {
                    budget::record(&b, &subject, start, spent, None);
                    b.check(spent, left)?;
                }
                Err(e) if b.fail_open => {
                    tracing::warn!(error = %e, "budget store unavailable; admitting (FailOpen)");
                }
                Err(e) => return Err(PolicyError::Unavailable(e)),
            }
            self.budget = Some((b, subject, start));
        }
        let tokens: Vec<Charge> = charges.iter().map(|(c, ..)| c.clone()).collect();
        let mut all = std::mem::take(&mut self.pending_global);
        all.extend(charges);
        self.charge_global(all).await?;
        self.global_tokens
            .extend(tokens.into_iter().map(|c| (c, estimated)));
        Ok(())
    }

    async fn charge_global(
        &mut self,
        charges: Vec<(Charge, Arc<GlobalLimits>, usize)>,
    ) -> Result<(), PolicyError> {
        if charges.is_empty() {
            return Ok(());
        }
        let list: Vec<Charge> = charges.iter().map(|(c, ..)| c.clone()).collect();
        match redis::global().acquire(list).await {
            Ok(Outcome::Admitted(_)) => Ok(()),
            Ok(Outcome::Refused(wait)) => {
                // Name the tightest limit; all were checked together.
                let (_, g, i) = &charges[0];
                Err(refused(&g.limits[*i], wait))
            }
            Err(e) => {
                if charges.iter().all(|(_, g, _)| g.fail_open) {
                    tracing::warn!(error = %e, "global rate limit unavailable; admitting (FailOpen)");
                    Ok(())
                } else {
                    Err(PolicyError::Unavailable(e))
                }
            }
        }
    }

    /// Runs when the request is over: corrects token limits by the difference between the
    /// real usage and the estimate (`None`: keep the estimate; a failed request passes zero
    /// usage and gets its estimate back), and adds the usage to the budget.
    pub fn settle(&mut self, used: Option<Used>, metrics: &Arc<crate::metrics::Metrics>) {
        let Some(used) = used else {
            return;
        };
        let used_tokens = used.input + used.output;
        if let Some((b, subject, start)) = self.budget.take()
            && used_tokens > 0
        {
            let micros = b.cost_micros(&used.model, used.input, used.output);
            let metrics = metrics.clone();
            let ttl = b.window.as_secs() * 2;
            tokio::spawn(async move {
                let key = budget::key(&b, &subject, start);
                match budget::add(&key, used_tokens, micros, ttl, unix_now()).await {
                    Ok(total) => budget::record(&b, &subject, start, total, Some(&metrics)),
                    Err(e) => tracing::warn!(error = %e, %key, "adding to a budget failed"),
                }
            });
        }
        let now = Instant::now();
        for (l, key, acquired) in self.local_tokens.drain(..) {
            l.settle(&key, used_tokens as i64 - acquired as i64, now);
        }
        for (charge, acquired) in self.global_tokens.drain(..) {
            redis::global().settle_later(charge, used_tokens as i64 - acquired as i64);
        }
    }
}

/// Input tokens of an LLM request, estimated before the call without parsing it again:
/// about four bytes of body per token (JSON framing makes it an overestimate, which the
/// settlement gives back).
pub fn estimate_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(4).max(1)
}

/// Calls the request guard webhooks of `eff`, if any, with the LLM body.
pub async fn guard_webhooks(eff: &Effective, body: &[u8]) -> Result<(), PolicyError> {
    let Some(g) = eff.guards.as_ref() else {
        return Ok(());
    };
    for w in &g.request.webhooks {
        callout::guard_webhook(w, body, "the request was rejected by a content policy").await?;
    }
    Ok(())
}

/// Applies the request prompt guards to an LLM body: `Ok(None)` unchanged, `Ok(Some(body))`
/// masked, `Err` rejected (403 in the client's format).
pub fn guard_request(eff: &Effective, body: &[u8]) -> Result<Option<Vec<u8>>, PolicyError> {
    let Some(g) = eff.guards.as_ref().filter(|g| !g.request.is_empty()) else {
        return Ok(None);
    };
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(None);
    };
    match g.request.apply_json(&mut v) {
        Ok(false) => Ok(None),
        Ok(true) => Ok(Some(
            serde_json::to_vec(&v).unwrap_or_else(|_| body.to_vec()),
        )),
        Err(m) => Err(PolicyError::PromptRejected(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_estimates() {
        assert_eq!(estimate_tokens(b"12345678"), 2);
        assert_eq!(estimate_tokens(b""), 1);
    }
}
