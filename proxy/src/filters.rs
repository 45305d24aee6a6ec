//! HTTPRoute filters as pure functions: header modifiers, URL rewrites, redirects. Header
//! edits go through the small [`HeaderOps`] trait so this module needs no Pingora types.

use http::{HeaderName, HeaderValue};

/// What a filter needs from a header collection.
pub trait HeaderOps {
    /// Replaces every value of `name` with `value`.
    fn set(&mut self, name: &HeaderName, value: &HeaderValue);
    /// Appends `value`; an existing value is joined with a comma, as Gateway API specifies.
    fn add(&mut self, name: &HeaderName, value: &HeaderValue);
    fn remove(&mut self, name: &HeaderName);
}

impl HeaderOps for http::HeaderMap {
    fn set(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.insert(name.clone(), value.clone());
    }
    fn add(&mut self, name: &HeaderName, value: &HeaderValue) {
        let joined = join(self.get(name), value);
        self.insert(name.clone(), joined);
    }
    fn remove(&mut self, name: &HeaderName) {
        HeaderMap::remove(self, name);
    }
}

use http::HeaderMap;

/// `existing` (if any) and `value` joined as "existing,value".
pub fn join(existing: Option<&HeaderValue>, value: &HeaderValue) -> HeaderValue {
    match existing {
        Some(old) => {
            let mut v = old.as_bytes().to_vec();
            v.push(b',');
            v.extend_from_slice(value.as_bytes());
            HeaderValue::from_bytes(&v).unwrap_or_else(|_| value.clone())
        }
        None => value.clone(),
    }
}

/// A compiled `RequestHeaderModifier` / `ResponseHeaderModifier`.
#[derive(Debug, Clone, Default)]
pub struct HeaderModifier {
    pub set: Vec<(HeaderName, HeaderValue)>,
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub remove: Vec<HeaderName>,
}

impl HeaderModifier {
    /// Applies set, then add, then remove (the order Gateway API conformance expects).
    pub fn apply(&self, h: &mut impl HeaderOps) {
        for (n, v) in &self.set {
            h.set(n, v);
        }
        for (n, v) in &self.add {
            h.add(n, v);
        }
        for n in &self.remove {
            h.remove(n);
        }
    }
}

/// How a path is replaced by a rewrite or redirect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    Full(String),
    Prefix(String),
}

/// The new path for `path`, given the matched prefix length (from a `PathPrefix` match).
/// A `Prefix` rewrite without a prefix match leaves the path alone.
pub fn rewrite_path(rewrite: &PathRewrite, path: &str, prefix_len: Option<usize>) -> String {
    match rewrite {
        PathRewrite::Full(p) => p.clone(),
        PathRewrite::Prefix(repl) => {
            let Some(n) = prefix_len else {
                return path.to_string();
            };
            // The matched prefix without its trailing slash; "/" stands for the empty prefix.
            let n = if n == 1 { 0 } else { n.min(path.len()) };
            let rest = &path[n..];
            if rest.is_empty() {
                return if repl.is_empty() {
                    "/".into()
                } else {
                    repl.clone()
                };
            }
            let joined = format!("{}{rest}", repl.trim_end_matches('/'));
            if joined.is_empty() {
                "/".into()
            } else {
                joined
            }
        }
    }
}

/// A compiled `RequestRedirect`.
#[derive(Debug, Clone, Default)]
pub struct Redirect {
    pub scheme: Option<String>,
    pub hostname: Option<String>,
    pub path: Option<PathRewrite>,
    pub port: Option<u16>,
    pub status: u16,
}

/// What a redirect needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct RedirectInput<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub listener_port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub prefix_len: Option<usize>,
}

impl Redirect {
    /// The `Location` value, following Gateway API's port rules: an explicit port wins; a
    /// changed scheme uses that scheme's well-known port; otherwise the listener's port; the
    /// port is left out when it is the scheme's default (80 for http, 443 for https).
    pub fn location(&self, r: RedirectInput<'_>) -> String {
        let scheme = self.scheme.as_deref().unwrap_or(r.scheme);
        let host = self.hostname.as_deref().unwrap_or(r.host);
        let port = match (self.port, &self.scheme) {
            (Some(p), _) => p,
            (None, Some(s)) => default_port(s).unwrap_or(r.listener_port),
            (None, None) => r.listener_port,
        };
        let path = match &self.path {
            Some(p) => rewrite_path(p, r.path, r.prefix_len),
            None => r.path.to_string(),
        };
        let mut out = format!("{scheme}://{host}");
        if default_port(scheme) != Some(port) {
            out.push(':');
            out.push_str(&port.to_string());
        }
        out.push_str(&path);
        if let Some(q) = r.query {
            out.push('?');
            out.push_str(q);
        }
        out
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rewrites() {
        let p = |r: &str, path: &str, n: usize| {
            rewrite_path(&PathRewrite::Prefix(r.into()), path, Some(n))
        };
        assert_eq!(p("/one", "/prefix/one/two", 11), "/one/two");
        assert_eq!(p("/", "/strip-prefix/three", 13), "/three");
        assert_eq!(p("/", "/strip-prefix", 13), "/");
        assert_eq!(p("/", "/strip-prefix/", 13), "/");
        assert_eq!(p("/one/", "/prefix/one/two", 11), "/one/two");
        assert_eq!(p("/new", "/old", 4), "/new");
        assert_eq!(p("/new", "/", 1), "/new/");
        assert_eq!(p("/xyz", "/foo/", 4), "/xyz/");
        assert_eq!(p("/new", "/x/y", 1), "/new/x/y");
        assert_eq!(p("", "/api/v1", 4), "/v1");
    }

    #[test]
    fn full_rewrite_ignores_prefix() {
        assert_eq!(
            rewrite_path(&PathRewrite::Full("/one".into()), "/full/path", Some(5)),
            "/one"
        );
    }

    fn input(path: &str) -> RedirectInput<'_> {
        RedirectInput {
            scheme: "http",
            host: "example.com",
            listener_port: 80,
            path,
            query: None,
            prefix_len: None,
        }
    }

    #[test]
    fn redirect_ports() {
        let r = |scheme: Option<&str>, port: Option<u16>| Redirect {
            scheme: scheme.map(Into::into),
            port,
            status: 302,
            ..Default::default()
        };
        assert_eq!(r(None, None).location(input("/a")), "http://example.com/a");
        assert_eq!(
            r(None, Some(8083)).location(input("/a")),
            "http://example.com:8083/a"
        );
        assert_eq!(
            r(Some("https"), None).location(input("/a")),
            "https://example.com/a"
        );
        assert_eq!(
            r(Some("https"), Some(8443)).location(input("/a")),
            "https://example.com:8443/a"
        );
        assert_eq!(
            r(Some("http"), Some(80)).location(input("/a")),
            "http://example.com/a"
        );
        let mut i = input("/a");
        i.listener_port = 8080;
        assert_eq!(r(None, None).location(i), "http://example.com:8080/a");
        // A changed scheme takes the scheme's port, not the listener's.
        assert_eq!(r(Some("https"), None).location(i), "https://example.com/a");
    }

    #[test]
    fn redirect_keeps_query_and_rewrites_path() {
        let r = Redirect {
            hostname: Some("example.org".into()),
            path: Some(PathRewrite::Prefix("/new".into())),
            status: 301,
            ..Default::default()
        };
        let mut i = input("/old/x");
        i.prefix_len = Some(4);
        i.query = Some("a=1");
        assert_eq!(r.location(i), "http://example.org/new/x?a=1");
    }

    #[test]
    fn header_modifier_order_and_append() {
        let mut h = HeaderMap::new();
        h.insert("x-a", "1".parse().unwrap());
        h.insert("x-gone", "1".parse().unwrap());
        let m = HeaderModifier {
            set: vec![("x-set".parse().unwrap(), "s".parse().unwrap())],
            add: vec![("x-a".parse().unwrap(), "2".parse().unwrap())],
            remove: vec!["x-gone".parse().unwrap()],
        };
        m.apply(&mut h);
        assert_eq!(h["x-a"], "1,2");
        assert_eq!(h["x-set"], "s");
        assert!(h.get("x-gone").is_none());
    }
}
