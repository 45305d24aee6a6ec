//! One compiled `HTTPRouteMatch`: path, headers, query parameters and method.

use regex::Regex;

/// A compiled path match.
#[derive(Debug, Clone)]
pub enum PathMatcher {
    Exact(String),
    /// Segment-aware prefix, stored without a trailing slash ("/" stays "/").
    Prefix(String),
    /// The compiled (anchored) regex and the length of the user's pattern, for precedence.
    Regex(Regex, usize),
}

/// A compiled value match (header or query parameter).
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    Exact(String),
    Regex(Regex),
}

impl ValueMatcher {
    fn matches(&self, v: &str) -> bool {
        match self {
            ValueMatcher::Exact(e) => e == v,
            ValueMatcher::Regex(r) => r.is_match(v),
        }
    }
}

/// One match of a rule. All conditions must hold.
#[derive(Debug, Clone)]
pub struct CompiledMatch {
    pub path: PathMatcher,
    /// Header names are lowercase.
    pub headers: Vec<(http::HeaderName, ValueMatcher)>,
    pub query: Vec<(String, ValueMatcher)>,
    pub method: Option<http::Method>,
}

impl CompiledMatch {
    /// The precedence key (greater is more specific); see the module docs of `routing`.
    pub fn rank(&self) -> (u8, usize, u8, bool, usize, usize) {
        let (kind, len, tie) = match &self.path {
            PathMatcher::Exact(p) => (2, p.len(), 1),
            PathMatcher::Prefix(p) => (1, p.len(), 1),
            PathMatcher::Regex(_, len) => (1, *len, 0),
        };
        (
            kind,
            len,
            tie,
            self.method.is_some(),
            self.headers.len(),
            self.query.len(),
        )
    }

    /// Whether the request matches. `Some(Some(n))` for a prefix match of `n` path bytes,
    /// `Some(None)` for other matches, `None` for no match.
    pub fn matches(
        &self,
        path: &str,
        query: Option<&str>,
        req: &http::request::Parts,
    ) -> Option<Option<usize>> {
        let prefix_len = match &self.path {
            PathMatcher::Exact(p) => (p == path).then_some(None)?,
            PathMatcher::Prefix(p) => Some(prefix_match(p, path)?),
            PathMatcher::Regex(r, _) => r.is_match(path).then_some(None)?,
        };
        if let Some(m) = &self.method
            && *m != req.method
        {
            return None;
        }
        for (name, m) in &self.headers {
            let mut values = req.headers.get_all(name).iter().peekable();
            values.peek()?;
            // Repeated headers are compared as one comma-joined value, as RFC 9110 allows.
            let joined = values
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(",");
            if !m.matches(&joined) {
                return None;
            }
        }
        if !self.query.is_empty() {
            let q = query.unwrap_or("");
            for (name, m) in &self.query {
                // The first occurrence of the parameter counts (Gateway API: implementation
                // specific; the first is what most servers read).
                let v = query_param(q, name)?;
                if !m.matches(&v) {
                    return None;
                }
            }
        }
        Some(prefix_len)
    }
}

/// Segment-aware prefix match: "/foo" matches "/foo", "/foo/" and "/foo/bar", not "/foobar".
fn prefix_match(prefix: &str, path: &str) -> Option<usize> {
    if prefix == "/" {
        return Some(1);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
}

/// Percent-decoded value of the first `name` parameter in a query string.
fn query_param(q: &str, name: &str) -> Option<String> {
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == name).then(|| decode(v))
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
