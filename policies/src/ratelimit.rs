//! Rate limits: token buckets of requests or LLM tokens, keyed by CEL descriptors. Local
//! limits live here ([`LocalLimit`]); global ones share the same [`LimitSpec`] and are kept in
//! Redis by the proxy. Token limits are checked before the call with the estimated input
//! tokens and settled after it from the real usage ([`LocalLimit::settle`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use agora_proto::resource as pb;

use crate::cel::{Expr, Uses};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Requests,
    Tokens,
}

/// One limit: `limit` per `window`, bucket size `capacity`.
#[derive(Debug, Clone)]
pub struct LimitSpec {
    pub kind: Kind,
    pub limit: u64,
    pub window: Duration,
    pub capacity: u64,
    descriptors: Vec<(String, Expr)>,
    uses: Uses,
}

impl LimitSpec {
    pub fn compile(r: &pb::RateLimit) -> Result<LimitSpec, String> {
        let window = r
            .window
            .map(Duration::from)
            .filter(|d| !d.is_zero())
            .ok_or("a rate limit needs a window")?;
        if r.limit == 0 {
            return Err("a rate limit of 0 admits nothing".into());
        }
        let descriptors = r
            .descriptors
            .iter()
            .map(|d| Ok((d.name.clone(), Expr::compile(&d.expression)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let uses = descriptors
            .iter()
            .fold(Uses::default(), |u, (_, e)| u.union(e.uses()));
        Ok(LimitSpec {
            kind: if r.kind == pb::RateLimitKind::Tokens as i32 {
                Kind::Tokens
            } else {
                Kind::Requests
            },
            limit: r.limit,
            window,
            capacity: if r.burst > 0 { r.burst } else { r.limit },
            descriptors,
            uses,
        })
    }

    pub fn uses(&self) -> Uses {
        self.uses
    }

    /// Refill rate in units per second.
    pub fn rate(&self) -> f64 {
        self.limit as f64 / self.window.as_secs_f64()
    }

    /// The bucket key of a request: the descriptor values joined (`""` without
    /// descriptors). `None` when a descriptor has no value: the limit does not apply.
    pub fn descriptor(&self, ctx: Option<&cel::Context>) -> Option<String> {
        if self.descriptors.is_empty() {
            return Some(String::new());
        }
        let ctx = ctx?;
        let mut key = String::new();
        for (name, e) in &self.descriptors {
            let v = e.eval_string(ctx)?;
            if !key.is_empty() {
                key.push('|');
            }
            key.push_str(name);
            key.push('=');
            key.push_str(&v);
        }
        Some(key)
    }

    /// What a request must find in the bucket to be admitted, for `amount` units: one
    /// request; for tokens, the estimate (at most a full bucket, so a large prompt is not
    /// refused forever).
    pub fn needed(&self, amount: u64) -> u64 {
        match self.kind {
            Kind::Requests => amount,
            Kind::Tokens => amount.min(self.capacity).max(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, spec: &LimitSpec, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level + dt * spec.rate()).min(spec.capacity as f64);
        self.at = now;
    }
}

/// Buckets kept at once per limit before full ones are dropped.
const MAX_BUCKETS: usize = 100_000;

/// An in-process limit.
#[derive(Debug)]
pub struct LocalLimit {
    pub spec: LimitSpec,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// What an admitted request left in the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub remaining: u64,
}

impl LocalLimit {
    pub fn new(spec: LimitSpec) -> LocalLimit {
        LocalLimit {
            spec,
            buckets: Mutex::default(),
        }
    }

    /// Takes `amount` units (requests, or estimated tokens) from the bucket `key`; on refusal
    /// the error is how long until enough has refilled.
    pub fn acquire(&self, key: &str, amount: u64, now: Instant) -> Result<Admitted, Duration> {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(Admitted { remaining: 0 });
        };
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(key) {
            let spec = &self.spec;
            buckets.retain(|_, b| {
                b.refill(spec, now);
                b.level < spec.capacity as f64
            });
        }
        if !buckets.contains_key(key) {
            buckets.insert(
                key.to_string(),
                Bucket {
                    level: self.spec.capacity as f64,
                    at: now,
                },
            );
        }
        let Some(b) = buckets.get_mut(key) else {
            return Err(Duration::from_secs(1));
        };
        b.refill(&self.spec, now);
        let needed = self.spec.needed(amount) as f64;
        if b.level + 1e-9 < needed {
            let wait = (needed - b.level) / self.spec.rate();
            return Err(Duration::from_secs_f64(wait.max(0.001)));
        }
        b.level -= amount as f64;
        Ok(Admitted {
            remaining: b.level.max(0.0) as u64,
        })
    }

    /// Corrects a token bucket once the real usage is known: `delta` more units were used
    /// than acquired (negative: fewer, which are given back).
    pub fn settle(&self, key: &str, delta: i64, now: Instant) {
        if delta == 0 {
            return;
        }
        if let Ok(mut buckets) = self.buckets.lock()
            && let Some(b) = buckets.get_mut(key)
        {
            b.refill(&self.spec, now);
            b.level = (b.level - delta as f64).min(self.spec.capacity as f64);
        }
    }
}

/// Local limits live across config reloads: a limit with the same owner and parameters keeps
/// its buckets.
pub fn local_limit(owner: &str, spec: LimitSpec) -> Arc<LocalLimit> {
    type Registry = Mutex<HashMap<String, Weak<LocalLimit>>>;
    static R: OnceLock<Registry> = OnceLock::new();
    let id = format!(
        "{owner}|{:?}|{}|{:?}|{}|{:?}",
        spec.kind,
        spec.limit,
        spec.window,
        spec.capacity,
        spec.descriptors
            .iter()
            .map(|(n, e)| (n.as_str(), e.source()))
            .collect::<Vec<_>>()
    );
    let Ok(mut r) = R.get_or_init(Default::default).lock() else {
        return Arc::new(LocalLimit::new(spec));
    };
    if let Some(l) = r.get(&id).and_then(Weak::upgrade) {
        return l;
    }
    r.retain(|_, w| w.strong_count() > 0);
    let l = Arc::new(LocalLimit::new(spec));
    r.insert(id, Arc::downgrade(&l));
    l
}

/// Limits kept in Redis for every replica.
#[derive(Debug)]
pub struct GlobalLimits {
    pub limits: Vec<LimitSpec>,
    pub fail_open: bool,
    /// Per limit, its Redis key without a descriptor (`agora:rl:<owner>:<index>:`).
    keys: Vec<Arc<str>>,
}

impl GlobalLimits {
    /// `owner`: the policy's key, which prefixes its Redis keys.
    pub fn new(owner: &str, limits: Vec<LimitSpec>, fail_open: bool) -> GlobalLimits {
        let keys = (0..limits.len())
            .map(|i| Arc::from(format!("agora:rl:{owner}:{i}:")))
            .collect();
        GlobalLimits {
            limits,
            fail_open,
            keys,
        }
    }

    /// The Redis key of limit `i`'s bucket for a descriptor (the key without one is
    /// shared, not built per request).
    pub fn key(&self, i: usize, descriptor: &str) -> Arc<str> {
        if descriptor.is_empty() {
            self.keys[i].clone()
        } else {
            Arc::from(format!("{}{descriptor}", self.keys[i]))
        }
    }
}

#[cfg(test)]
mod tests;
