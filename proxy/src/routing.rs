//! Gateway API HTTPRoute matching: hostnames, path, headers, query parameters and method,
//! with the spec's precedence across routes. Pure: it sees an `http::request::Parts` and the
//! compiled tables, nothing of Pingora.
//!
//! Precedence, in order (first difference wins):
//! 1. hostname: an exact hostname match beats a wildcard, a longer wildcard beats a shorter
//!    one, and both beat routes without hostnames;
//! 2. path: `Exact` beats `PathPrefix` and `RegularExpression`; between those, the longer
//!    value wins, `PathPrefix` before a regex of equal length;
//! 3. a method match, then the number of header matches, then of query-parameter matches;
//! 4. the older route (creation timestamp), then the route name alphabetically, then the rule
//!    order within the route.

mod decide;
pub mod hostname;
mod matcher;

pub use decide::{Arrival, Decision, ProxyPlan, decide};
pub use matcher::{CompiledMatch, PathMatcher, ValueMatcher};

use std::collections::HashMap;
use std::sync::Arc;

use crate::ir::RuleIr;

/// One (match, rule) pair in a listener's table, with its precedence key.
#[derive(Debug)]
pub struct MatchEntry {
    pub matcher: CompiledMatch,
    pub rule: Arc<RuleIr>,
}

/// What a request matched: the rule and, for prefix matches, how much of the path matched
/// (URL rewrites with `ReplacePrefixMatch` replace exactly that).
#[derive(Debug, Clone)]
pub struct Matched {
    pub rule: Arc<RuleIr>,
    pub prefix_len: Option<usize>,
}

/// The routes of one listener, grouped by route hostname and sorted by precedence.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<String, Vec<MatchEntry>>,
    /// Wildcard suffix (".example.com") → entries, longest suffix first.
    wildcard: Vec<(String, Vec<MatchEntry>)>,
    any: Vec<MatchEntry>,
}

impl RouteTable {
    /// Builds the table from (effective hostnames, match, rule) triples. An empty hostname
    /// list means the rule applies to every host of the listener.
    pub fn build(entries: Vec<(Vec<String>, MatchEntry)>) -> Self {
        let mut t = RouteTable::default();
        let mut wild: HashMap<String, Vec<MatchEntry>> = HashMap::new();
        for (hosts, entry) in entries {
            if hosts.is_empty() {
                t.any.push(entry);
                continue;
            }
            for h in hosts {
                let e = MatchEntry {
                    matcher: entry.matcher.clone(),
                    rule: entry.rule.clone(),
                };
                match h.strip_prefix('*') {
                    Some(suffix) => wild.entry(suffix.to_string()).or_default().push(e),
                    None => t.exact.entry(h).or_default().push(e),
                }
            }
        }
        t.wildcard = wild.into_iter().collect();
        t.wildcard
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        for v in t.exact.values_mut() {
            sort_entries(v);
        }
        for (_, v) in t.wildcard.iter_mut() {
            sort_entries(v);
        }
        sort_entries(&mut t.any);
        t
    }

    /// Finds the rule for a request. `host` is lowercase and without a port.
    pub fn find(&self, host: &str, req: &http::request::Parts) -> Option<Matched> {
        let path = req.uri.path();
        let query = req.uri.query();
        let exact = self.exact.get(host).into_iter();
        let wild = self
            .wildcard
            .iter()
            .filter(|(suffix, _)| hostname::wildcard_matches(suffix, host))
            .map(|(_, v)| v);
        for group in exact.chain(wild).chain(std::iter::once(&self.any)) {
            for e in group {
                if let Some(prefix_len) = e.matcher.matches(path, query, req) {
                    return Some(Matched {
                        rule: e.rule.clone(),
                        prefix_len,
                    });
                }
            }
        }
        None
    }
}

fn sort_entries(v: &mut [MatchEntry]) {
    v.sort_by(|a, b| {
        b.matcher
            .rank()
            .cmp(&a.matcher.rank())
            .then(a.rule.creation_timestamp.cmp(&b.rule.creation_timestamp))
            .then(a.rule.route_name.cmp(&b.rule.route_name))
            .then(a.rule.rule_index.cmp(&b.rule.rule_index))
    });
}

#[cfg(test)]
mod tests;
