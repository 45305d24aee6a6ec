//! Hostname rules of Gateway API: listener ∩ route hostnames, and label selectors.

use std::collections::BTreeMap;

/// Whether a route hostname and a listener hostname (either may be a `*.` wildcard) have
/// any host in common.
pub fn intersects(listener: &str, route: &str) -> bool {
    match (listener.strip_prefix("*."), route.strip_prefix("*.")) {
        (None, None) => listener.eq_ignore_ascii_case(route),
        (Some(suffix), None) => under(route, suffix),
        (None, Some(suffix)) => under(listener, suffix),
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) || under(a, b) || under(b, a),
    }
}

/// `host` is a strict subdomain of `suffix`.
fn under(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1
        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
        && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A route may attach to a listener when either side has no hostnames or some pair intersects.
pub fn route_fits(listener: Option<&str>, route: &[String]) -> bool {
    match listener {
        None | Some("") => true,
        Some(l) => route.is_empty() || route.iter().any(|h| intersects(l, h)),
    }
}

/// A label selector (`matchLabels` + `matchExpressions`) against a label set.
pub fn selector_matches(
    match_labels: Option<&BTreeMap<String, String>>,
    expressions: &[(String, String, Vec<String>)],
    labels: &BTreeMap<String, String>,
) -> bool {
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    labels_ok
        && expressions.iter().all(|(key, op, values)| {
            let have = labels.get(key);
            match op.as_str() {
                "In" => have.is_some_and(|v| values.contains(v)),
                "NotIn" => have.is_none_or(|v| !values.contains(v)),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intersections() {
        assert!(intersects("foo.example.com", "foo.example.com"));
        assert!(intersects("foo.example.com", "*.example.com"));
        assert!(intersects("*.example.com", "a.b.example.com"));
        assert!(intersects("*.example.com", "*.example.com"));
        assert!(intersects("*.example.com", "*.com"));
        assert!(!intersects("*.example.com", "example.com"));
        assert!(!intersects("foo.example.com", "*.foo.example.com"));
        assert!(!intersects("very.specific.com", "non.matching.com"));
        assert!(route_fits(None, &["x".into()]));
        assert!(route_fits(Some("a.com"), &[]));
        assert!(!route_fits(Some("a.com"), &["b.com".into()]));
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<_, _> = [("team".to_string(), "a".to_string())].into();
        let want: BTreeMap<_, _> = [("team".to_string(), "a".to_string())].into();
        assert!(selector_matches(Some(&want), &[], &labels));
        let ex = vec![("team".into(), "NotIn".into(), vec!["a".into()])];
        assert!(!selector_matches(None, &ex, &labels));
        let ex = vec![("env".into(), "DoesNotExist".into(), vec![])];
        assert!(selector_matches(None, &ex, &labels));
    }
}
