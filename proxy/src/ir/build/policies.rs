//! Policies: compiled once per config, indexed by what they target, and merged into each
//! rule (gateway, listener, route levels) and each of its backend references (plus the
//! backend level).

use std::collections::HashMap;
use std::sync::Arc;

use agora_policies::{Effective, Policy, Target};
use agora_proto::resource as pb;

use crate::error::{Error, Result};

/// Compiled policies by target.
#[derive(Default)]
pub struct PolicyIndex {
    gateway: HashMap<String, Vec<Arc<Policy>>>,
    listener: HashMap<String, Vec<Arc<Policy>>>,
    route: HashMap<String, Vec<Arc<Policy>>>,
    backend: HashMap<String, Vec<Arc<Policy>>>,
}

impl PolicyIndex {
    /// Compiles `policies` (ordered by key, so a level with several policies setting one
    /// section resolves the same way every time).
    pub fn build(mut policies: Vec<&pb::Policy>) -> Result<PolicyIndex> {
        policies.sort_by(|a, b| a.key.cmp(&b.key));
        let mut idx = PolicyIndex::default();
        for p in policies {
            let c = agora_policies::compile(p).map_err(|e| match e {
                agora_policies::Error::Config { field, message } => Error::invalid(field, message),
                other => Error::invalid(&p.key, other),
            })?;
            let map = match &c.target {
                Target::Gateway(g) => idx.gateway.entry(g.clone()),
                Target::Listener(l) => idx.listener.entry(l.clone()),
                Target::Route { name, .. } => idx.route.entry(name.clone()),
                Target::Backend(b) => idx.backend.entry(b.clone()),
            };
            map.or_default().push(Arc::new(c));
        }
        Ok(idx)
    }

    /// The gateway, listener and route levels of a rule.
    pub fn rule_levels(&self, l: &pb::Listener, r: &pb::Route) -> [Vec<Arc<Policy>>; 3] {
        let get =
            |m: &HashMap<String, Vec<Arc<Policy>>>, k: &str| m.get(k).cloned().unwrap_or_default();
        let rule_name = if r.rule_name.is_empty() {
            r.rule_index.to_string()
        } else {
            r.rule_name.clone()
        };
        let route = self
            .route
            .get(&r.route_name)
            .map(|ps| {
                ps.iter()
                    .filter(|p| match &p.target {
                        Target::Route { rule: Some(s), .. } => *s == rule_name,
                        _ => true,
                    })
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        [
            get(&self.gateway, &l.gateway),
            get(&self.listener, &l.key),
            route,
        ]
    }

    pub fn backend(&self, key: &str) -> &[Arc<Policy>] {
        self.backend.get(key).map_or(&[], Vec::as_slice)
    }
}

/// Merges a rule's levels, and (when the backend has policies of its own) a backend's.
pub fn effective(levels: &[Vec<Arc<Policy>>; 3], backend: &[Arc<Policy>]) -> Effective {
    agora_policies::merge(&[&levels[0], &levels[1], &levels[2], backend])
}
