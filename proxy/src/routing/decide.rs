//! The routing decision for one request: bind → listener → rule → what to do. Pure, so every
//! rule of it is unit-tested without a socket.

use std::sync::Arc;

use bytes::Bytes;

use crate::backend::BackendIr;
use crate::error::Error;
use crate::filters::RedirectInput;
use crate::ir::{FilterIr, Ir, ListenerIr, RuleIr};
use crate::routing::{Matched, hostname};

/// What to do with a request.
#[derive(Debug)]
pub enum Decision {
    /// Answer with a redirect.
    Redirect {
        rule: Arc<RuleIr>,
        status: u16,
        location: String,
    },
    /// Answer with a fixed response.
    Direct {
        rule: Arc<RuleIr>,
        status: u16,
        body: Bytes,
        content_type: Option<String>,
    },
    /// Proxy to a backend.
    Proxy(Arc<ProxyPlan>),
}

impl Decision {
    /// The rule that produced the decision.
    pub fn rule(&self) -> &Arc<RuleIr> {
        match self {
            Decision::Redirect { rule, .. } | Decision::Direct { rule, .. } => rule,
            Decision::Proxy(p) => &p.matched.rule,
        }
    }
}

/// Everything the later phases need to proxy a request.
#[derive(Debug, Clone)]
pub struct ProxyPlan {
    pub listener: Arc<ListenerIr>,
    pub matched: Matched,
    pub backend: Arc<BackendIr>,
    /// Index into `rule.backends` of the chosen reference (its filters apply too).
    pub backend_index: usize,
}

impl ProxyPlan {
    pub fn rule(&self) -> &RuleIr {
        &self.matched.rule
    }

    /// Rule filters, then the chosen backend's filters.
    pub fn filters(&self) -> impl Iterator<Item = &FilterIr> {
        let rule = &self.matched.rule;
        rule.filters
            .iter()
            .chain(rule.backends[self.backend_index].filters.iter())
    }
}

/// Where a request arrived and what it asked for.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    pub port: u16,
    pub tls: bool,
    pub req: &'a http::request::Parts,
}

/// Decides what to do with a request. `roll` is a uniform random number used for the
/// weighted backend choice.
///
/// Errors: no listener or rule → 404; the chosen backend reference is invalid, or the rule
/// has no backend and no filter that answers → 500.
pub fn decide(
    ir: &Ir,
    a: Arrival<'_>,
    roll: u32,
) -> Result<(Decision, Option<Arc<ListenerIr>>), Error> {
    let host = hostname::request_host(a.req);
    let no_route = || Error::NoRoute {
        host: host.to_string(),
        path: a.req.uri.path().to_string(),
    };
    let bind = ir.binds.get(&a.port).ok_or_else(no_route)?;
    let listener = bind.listeners.find(&host).ok_or_else(no_route)?.clone();
    let matched = listener.routes.find(&host, a.req).ok_or_else(no_route)?;
    let rule = matched.rule.clone();
    for f in &rule.filters {
        match f {
            FilterIr::Redirect(r) => {
                let location = r.location(RedirectInput {
                    scheme: if a.tls { "https" } else { "http" },
                    host: &host,
                    listener_port: bind.listener_port,
                    path: a.req.uri.path(),
                    query: a.req.uri.query(),
                    prefix_len: matched.prefix_len,
                });
                return Ok((
                    Decision::Redirect {
                        rule: rule.clone(),
                        status: r.status,
                        location,
                    },
                    Some(listener),
                ));
            }
            FilterIr::Direct {
                status,
                body,
                content_type,
            } => {
                return Ok((
                    Decision::Direct {
                        rule: rule.clone(),
                        status: *status,
                        body: body.clone(),
                        content_type: content_type.clone(),
                    },
                    Some(listener),
                ));
            }
            _ => {}
        }
    }
    if rule.total_weight == 0 {
        return Err(Error::BackendUnavailable(format!(
            "route {} rule {} has no backend with weight > 0",
            rule.route_name, rule.rule_name
        )));
    }
    let backend_index = {
        let target = roll % rule.total_weight;
        let mut acc = 0;
        rule.backends
            .iter()
            .position(|b| {
                acc += b.weight;
                target < acc
            })
            .unwrap_or(0)
    };
    let backend = match &rule.backends[backend_index].backend {
        Ok(b) => b.clone(),
        Err(why) => return Err(Error::BackendUnavailable(why.clone())),
    };
    Ok((
        Decision::Proxy(Arc::new(ProxyPlan {
            listener: listener.clone(),
            matched,
            backend,
            backend_index,
        })),
        Some(listener),
    ))
}
