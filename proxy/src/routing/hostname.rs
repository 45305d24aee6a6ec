//! Hostname rules of Gateway API: wildcard matching and listener ∩ route intersection.

/// Whether `host` matches the wildcard whose suffix (after `*`) is `suffix`, e.g. suffix
/// `.example.com` matches `a.example.com` and `a.b.example.com` but not `example.com`.
pub fn wildcard_matches(suffix: &str, host: &str) -> bool {
    host.len() > suffix.len() && host.ends_with(suffix)
}

/// The hostnames a route serves on a listener: the intersection of the listener's hostname
/// (empty: any) with the route's hostnames (empty: any). `None` means the route does not
/// attach to this listener at all; `Some(vec![])` means "every host the listener takes".
pub fn intersect(listener: &str, route: &[String]) -> Option<Vec<String>> {
    if route.is_empty() {
        return Some(if listener.is_empty() {
            vec![]
        } else {
            vec![listener.to_string()]
        });
    }
    if listener.is_empty() {
        return Some(route.to_vec());
    }
    let out: Vec<String> = route
        .iter()
        .filter_map(|r| intersect_one(listener, r))
        .collect();
    if out.is_empty() { None } else { Some(out) }
}

fn intersect_one(listener: &str, route: &str) -> Option<String> {
    match (listener.strip_prefix('*'), route.strip_prefix('*')) {
        (None, None) => (listener == route).then(|| route.to_string()),
        (Some(ls), None) => wildcard_matches(ls, route).then(|| route.to_string()),
        (None, Some(rs)) => wildcard_matches(rs, listener).then(|| listener.to_string()),
        // Both wildcards: the more specific one, if one contains the other.
        (Some(ls), Some(rs)) => {
            if ls.ends_with(rs) {
                Some(listener.to_string())
            } else if rs.ends_with(ls) {
                Some(route.to_string())
            } else {
                None
            }
        }
    }
}

/// Validates a hostname pattern: lowercase DNS labels, optionally one leading `*.`.
pub fn validate(h: &str) -> Result<(), String> {
    let body = h.strip_prefix("*.").unwrap_or(h);
    if body.is_empty() || body.len() > 253 {
        return Err(format!("{h:?} is not a valid hostname"));
    }
    if h.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!("{h:?}: IP addresses are not allowed as hostnames"));
    }
    for label in body.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{h:?} is not a valid hostname (lowercase DNS labels, optional leading '*.')"
            ));
        }
    }
    Ok(())
}

/// The host of a request, lowercased, without port: from the `Host` header (HTTP/1.1) or the
/// URI authority (HTTP/2 `:authority`).
pub fn request_host(req: &http::request::Parts) -> std::borrow::Cow<'_, str> {
    let raw = req
        .uri
        .host()
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(strip_port)
        })
        .unwrap_or_default();
    if raw.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(raw.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

pub fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        // [v6]:port
        return h.split(']').next().map(|s| &h[..s.len() + 1]).unwrap_or(h);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}
