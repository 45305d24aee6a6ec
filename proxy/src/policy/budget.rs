//! Budget spend: in Redis when the proxy has one (every replica sees one total), otherwise in
//! process. The last spend seen per subject feeds the metrics and the admin endpoint
//! (`/budgets`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use agora_policies::budget::{Budget, MICROS_PER_USD, Spend};

/// The Redis (or in-process) key of a subject's spend in one window.
pub fn key(b: &Budget, subject: &str, window_start: u64) -> String {
    format!("agora:budget:{}:{subject}:{window_start}", b.owner)
}

fn local() -> &'static Mutex<HashMap<String, (Spend, u64)>> {
    static L: OnceLock<Mutex<HashMap<String, (Spend, u64)>>> = OnceLock::new();
    L.get_or_init(Default::default)
}

/// The subject's spend so far in the window.
pub async fn read(key: &str) -> Result<Spend, String> {
    let redis = super::redis::global();
    if redis.configured() {
        let (t, c) = redis.read_spend(key).await?;
        return Ok(Spend {
            tokens: t,
            cost_micros: c,
        });
    }
    Ok(local()
        .lock()
        .map(|m| m.get(key).map(|(s, _)| *s).unwrap_or_default())
        .unwrap_or_default())
}

/// Adds to the subject's spend; returns the new total. `expires_at` (Unix seconds) is the
/// end of the window.
pub async fn add(
    key: &str,
    tokens: u64,
    micros: u64,
    ttl_secs: u64,
    now: u64,
) -> Result<Spend, String> {
    let redis = super::redis::global();
    if redis.configured() {
        let (t, c) = redis.add_spend(key, tokens, micros, ttl_secs).await?;
        return Ok(Spend {
            tokens: t,
            cost_micros: c,
        });
    }
    let mut m = local()
        .lock()
        .map_err(|_| "budget store poisoned".to_string())?;
    m.retain(|_, (_, exp)| *exp > now);
    let e = m
        .entry(key.to_string())
        .or_insert((Spend::default(), now + ttl_secs));
    e.0.tokens += tokens;
    e.0.cost_micros += micros;
    Ok(e.0)
}

/// What the admin endpoint shows for one subject.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Seen {
    pub policy: String,
    pub subject: String,
    pub window_start: u64,
    pub window_seconds: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    pub max_tokens: u64,
    pub max_cost_usd: f64,
}

fn seen() -> &'static Mutex<BTreeMap<(String, String), Seen>> {
    static S: OnceLock<Mutex<BTreeMap<(String, String), Seen>>> = OnceLock::new();
    S.get_or_init(Default::default)
}

/// Records the latest spend of a subject (after a read or an add).
pub fn record(
    b: &Budget,
    subject: &str,
    window_start: u64,
    spend: Spend,
    metrics: Option<&crate::metrics::Metrics>,
) {
    let cost = spend.cost_micros as f64 / MICROS_PER_USD;
    if let Some(m) = metrics {
        m.budget_tokens
            .with_label_values(&[b.owner.as_str(), subject])
            .set(i64::try_from(spend.tokens).unwrap_or(i64::MAX));
        m.budget_cost
            .with_label_values(&[b.owner.as_str(), subject])
            .set(cost);
    }
    if let Ok(mut s) = seen().lock() {
        s.insert(
            (b.owner.clone(), subject.to_string()),
            Seen {
                policy: b.owner.clone(),
                subject: subject.to_string(),
                window_start,
                window_seconds: b.window.as_secs(),
                tokens: spend.tokens,
                cost_usd: cost,
                max_tokens: b.max_tokens,
                max_cost_usd: b.max_cost_micros as f64 / MICROS_PER_USD,
            },
        );
    }
}

/// Every subject seen by this replica, with its latest spend (JSON).
pub fn snapshot_json() -> Vec<u8> {
    let list: Vec<Seen> = seen()
        .lock()
        .map(|s| s.values().cloned().collect())
        .unwrap_or_default();
    serde_json::to_vec_pretty(&serde_json::json!({ "budgets": list })).unwrap_or_default()
}
