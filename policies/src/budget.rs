//! Virtual-key budgets: how much (tokens, USD) a subject — an API key, a key group, or what a
//! CEL expression names — may spend per fixed window. Pure: the proxy reads and adds spend
//! (in Redis or in process) and asks here whether the subject is still within budget and what
//! a response cost.

use std::time::Duration;

use agora_proto::resource as pb;

use crate::Error;
use crate::authn::Identity;
use crate::cel::{Expr, Uses};

/// Spend is counted in micro-dollars, so Redis can add it atomically as an integer.
pub const MICROS_PER_USD: f64 = 1_000_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    Key,
    Group,
}

/// A compiled budget.
#[derive(Debug)]
pub struct Budget {
    /// Names the budget in Redis keys, metrics and the admin endpoint.
    pub owner: String,
    per: Per,
    expression: Option<Expr>,
    pub window: Duration,
    pub max_tokens: u64,
    pub max_cost_micros: u64,
    /// Exact names first, then globs by decreasing prefix length.
    prices: Vec<(String, bool, f64, f64)>,
    pub fail_open: bool,
}

/// What a subject has spent in the current window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spend {
    pub tokens: u64,
    pub cost_micros: u64,
}

impl Budget {
    pub fn compile(owner: &str, b: &pb::Budget) -> Result<Budget, String> {
        let window = b
            .window
            .map(Duration::from)
            .filter(|d| d.as_secs() > 0)
            .ok_or("a budget needs a window")?;
        let mut prices: Vec<(String, bool, f64, f64)> = b
            .prices
            .iter()
            .map(|(m, p)| match m.strip_suffix('*') {
                Some(prefix) => (prefix.to_string(), true, p.input, p.output),
                None => (m.clone(), false, p.input, p.output),
            })
            .collect();
        prices.sort_by(|a, b| a.1.cmp(&b.1).then(b.0.len().cmp(&a.0.len())));
        Ok(Budget {
            owner: owner.to_string(),
            per: if b.per == pb::budget::Per::Group as i32 {
                Per::Group
            } else {
                Per::Key
            },
            expression: (!b.expression.is_empty())
                .then(|| Expr::compile(&b.expression))
                .transpose()?,
            window,
            max_tokens: b.max_tokens,
            max_cost_micros: (b.max_cost_usd * MICROS_PER_USD).round() as u64,
            prices,
            fail_open: b.fail_open,
        })
    }

    pub fn uses(&self) -> Uses {
        self.expression.as_ref().map(Expr::uses).unwrap_or_default()
    }

    /// Whose budget a request spends: `None` when it has no such subject (no API key, or
    /// the expression has no value), and the budget does not apply.
    pub fn subject(&self, identity: &Identity, ctx: Option<&cel::Context>) -> Option<String> {
        match &self.expression {
            Some(e) => e.eval_string(ctx?),
            None => identity.api_key.as_ref().map(|k| match self.per {
                Per::Key => k.id.clone(),
                Per::Group => k.group.clone(),
            }),
        }
    }

    /// The start (Unix seconds) of the window `now` falls in, and the time left in it.
    pub fn window_at(&self, now_unix: u64) -> (u64, Duration) {
        let w = self.window.as_secs();
        let start = now_unix - now_unix % w;
        (start, Duration::from_secs(start + w - now_unix))
    }

    /// Admits a request while the subject's spend is under every cap.
    pub fn check(&self, spent: Spend, left_in_window: Duration) -> Result<(), Error> {
        let over_tokens = self.max_tokens > 0 && spent.tokens >= self.max_tokens;
        let over_cost = self.max_cost_micros > 0 && spent.cost_micros >= self.max_cost_micros;
        if !(over_tokens || over_cost) {
            return Ok(());
        }
        Err(Error::RateLimited {
            what: if over_cost {
                format!(
                    "budget of ${:.2} per {}s spent",
                    self.max_cost_micros as f64 / MICROS_PER_USD,
                    self.window.as_secs()
                )
            } else {
                format!(
                    "budget of {} tokens per {}s spent",
                    self.max_tokens,
                    self.window.as_secs()
                )
            },
            limit: if over_cost {
                self.max_cost_micros
            } else {
                self.max_tokens
            },
            retry_after: left_in_window,
        })
    }

    /// What a response cost, in micro-dollars (0 for a model without a price).
    pub fn cost_micros(&self, model: &str, input: u64, output: u64) -> u64 {
        let Some((_, _, pin, pout)) = self.prices.iter().find(|(m, glob, ..)| {
            if *glob {
                model.starts_with(m.as_str())
            } else {
                m == model
            }
        }) else {
            return 0;
        };
        // USD per million tokens = micro-dollars per token.
        (input as f64 * pin + output as f64 * pout).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::ApiKeyEntry;
    use std::sync::Arc;

    fn budget(per: pb::budget::Per, tokens: u64, usd: f64) -> Budget {
        Budget::compile(
            "p#0",
            &pb::Budget {
                per: per as i32,
                expression: String::new(),
                window: Some(Duration::from_secs(3600).into()),
                max_tokens: tokens,
                max_cost_usd: usd,
                prices: [
                    (
                        "gpt-4o".to_string(),
                        pb::ModelPrice {
                            input: 2.5,
                            output: 10.0,
                        },
                    ),
                    (
                        "gpt-*".to_string(),
                        pb::ModelPrice {
                            input: 1.0,
                            output: 2.0,
                        },
                    ),
                ]
                .into(),
                fail_open: false,
            },
        )
        .expect("compiles")
    }

    #[test]
    fn prices_exact_before_glob() {
        let b = budget(pb::budget::Per::Key, 0, 1.0);
        assert_eq!(b.cost_micros("gpt-4o", 1000, 100), 2500 + 1000);
        assert_eq!(b.cost_micros("gpt-4o-mini", 1000, 100), 1000 + 200);
        assert_eq!(b.cost_micros("claude", 1000, 100), 0);
    }

    #[test]
    fn caps_and_windows() {
        let b = budget(pb::budget::Per::Key, 1000, 0.01);
        let left = Duration::from_secs(60);
        assert!(
            b.check(
                Spend {
                    tokens: 999,
                    cost_micros: 9_999
                },
                left
            )
            .is_ok()
        );
        let e = b
            .check(
                Spend {
                    tokens: 1000,
                    cost_micros: 0,
                },
                left,
            )
            .expect_err("tokens");
        assert_eq!(e.status(), 429);
        let e = b
            .check(
                Spend {
                    tokens: 0,
                    cost_micros: 10_000,
                },
                left,
            )
            .expect_err("cost");
        assert!(e.to_string().contains("$0.01"), "{e}");
        assert_eq!(e.headers()[0], ("retry-after", "60".into()));
        assert_eq!(b.window_at(7200 + 5), (7200, Duration::from_secs(3595)));
    }

    #[test]
    fn subjects() {
        let id = Identity {
            api_key: Some(Arc::new(ApiKeyEntry::new(
                "alice".into(),
                "ml".into(),
                serde_json::json!({}),
            ))),
            ..Default::default()
        };
        assert_eq!(
            budget(pb::budget::Per::Key, 1, 0.0)
                .subject(&id, None)
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            budget(pb::budget::Per::Group, 1, 0.0)
                .subject(&id, None)
                .as_deref(),
            Some("ml")
        );
        assert_eq!(
            budget(pb::budget::Per::Key, 1, 0.0).subject(&Identity::default(), None),
            None
        );
    }
}
