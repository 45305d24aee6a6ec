//! Virtual models: a client-facing model name that each request resolves to one of several
//! (provider, model) targets. Conditions (`when`, CEL) decide which targets may serve a
//! request; among those, the lowest priority value with a healthy target serves, targets of
//! one priority sharing the traffic by weight; a failed attempt moves on to the next target,
//! which sends its own model.

use std::sync::Arc;

use agora_policies::cel::{Expr, Uses};
use agora_proto::resource as pb;

use super::{ProviderIr, glob_matches};
use crate::error::{Error, Result};

/// One virtual model of an AI backend.
#[derive(Debug)]
pub struct VirtualModel {
    pub name: String,
    /// In configuration order (target indexes below refer to it).
    pub targets: Vec<Target>,
    /// What the targets' conditions read (nothing: no CEL context is needed).
    pub uses: Uses,
    /// Whether any target has a condition.
    pub conditional: bool,
}

/// One (provider, model) target.
#[derive(Debug)]
pub struct Target {
    pub provider: Arc<ProviderIr>,
    /// The model sent to the provider (the target's own, else the provider's).
    pub model: String,
    pub weight: u32,
    pub priority: u32,
    pub when: Option<Expr>,
}

impl VirtualModel {
    /// Builds a virtual model at config load: `providers` are the backend's providers (in
    /// group order); a target naming none of them, a bad condition or a model the provider
    /// does not serve rejects the config, naming the field (`at` is the virtual model's path).
    pub fn build(v: &pb::VirtualModel, providers: &[Arc<ProviderIr>], at: &str) -> Result<Self> {
        if v.targets.is_empty() {
            return Err(Error::invalid(
                format!("{at}.targets"),
                "needs at least one target",
            ));
        }
        let mut targets = Vec::with_capacity(v.targets.len());
        let mut uses = Uses::default();
        for (i, t) in v.targets.iter().enumerate() {
            let tat = format!("{at}.targets[{i}]");
            let provider = providers
                .iter()
                .find(|p| p.name == t.provider)
                .ok_or_else(|| {
                    Error::invalid(
                        format!("{tat}.provider"),
                        format!("no provider named {:?} in this backend", t.provider),
                    )
                })?
                .clone();
            let model = if t.model.is_empty() {
                provider.model.clone().ok_or_else(|| {
                    Error::invalid(
                        format!("{tat}.model"),
                        format!("needed: provider {:?} has no model of its own", t.provider),
                    )
                })?
            } else {
                t.model.clone()
            };
            if !provider.models.is_empty()
                && !provider.models.iter().any(|p| glob_matches(p, &model))
            {
                return Err(Error::invalid(
                    format!("{tat}.model"),
                    format!(
                        "provider {:?} does not serve {model:?} (its models: {})",
                        t.provider,
                        provider.models.join(", ")
                    ),
                ));
            }
            let when = if t.when.is_empty() {
                None
            } else {
                let e =
                    Expr::compile(&t.when).map_err(|e| Error::invalid(format!("{tat}.when"), e))?;
                uses = uses.union(e.uses());
                Some(e)
            };
            targets.push(Target {
                provider,
                model,
                weight: t.weight,
                priority: t.priority,
                when,
            });
        }
        let conditional = targets.iter().any(|t| t.when.is_some());
        Ok(Self {
            name: v.name.clone(),
            targets,
            uses,
            conditional,
        })
    }

    /// Runs once per request, before its first attempt: the targets that may serve it, in
    /// configuration order — those without a condition and those whose condition `eval`
    /// finds true. Targets of weight 0 take no traffic and are left out.
    pub fn matching(&self, mut eval: impl FnMut(&Expr) -> bool) -> Vec<usize> {
        self.targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.weight > 0 && t.when.as_ref().is_none_or(&mut eval))
            .map(|(i, _)| i)
            .collect()
    }

    /// Runs before each attempt: the target to try among `candidates` not yet `tried`. The
    /// lowest priority value that has a healthy target wins, and among its healthy targets
    /// `draw` (uniform over `u64`) picks one in proportion to the weights. When no candidate
    /// left is healthy, the first left by priority is tried anyway (better a try than a
    /// certain failure). `None`: every candidate has been tried.
    pub fn pick(
        &self,
        candidates: &[usize],
        tried: &[usize],
        healthy: impl Fn(&Target) -> bool,
        draw: u64,
    ) -> Option<usize> {
        let left = || candidates.iter().copied().filter(|i| !tried.contains(i));
        let best = left()
            .filter(|&i| healthy(&self.targets[i]))
            .map(|i| self.targets[i].priority)
            .min();
        let Some(best) = best else {
            return left().min_by_key(|&i| self.targets[i].priority);
        };
        // The healthy targets of that priority, walked twice (weights, then the draw)
        // rather than collected.
        let level =
            || left().filter(|&i| self.targets[i].priority == best && healthy(&self.targets[i]));
        let total: u64 = level().map(|i| u64::from(self.targets[i].weight)).sum();
        let mut x = draw % total.max(1);
        let mut last = None;
        for i in level() {
            let w = u64::from(self.targets[i].weight);
            if x < w {
                return Some(i);
            }
            x -= w;
            last = Some(i);
        }
        // Health read differently on the second walk: the last one seen, else the best left.
        last.or_else(|| left().min_by_key(|&i| self.targets[i].priority))
    }
}

#[cfg(test)]
mod tests;
