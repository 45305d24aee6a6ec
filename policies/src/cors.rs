//! CORS: preflight requests are answered by the gateway; simple and actual requests from an
//! allowed origin get the `Access-Control-Allow-*` headers on their response.

use std::time::Duration;

use agora_proto::resource as pb;

/// One `allowOrigins` entry.
#[derive(Debug, Clone, PartialEq)]
pub enum OriginMatcher {
    Any,
    Exact(String),
    /// `scheme://*.suffix`: any subdomain of `suffix`.
    Wildcard {
        scheme: String,
        suffix: String,
    },
}

impl OriginMatcher {
    pub fn parse(o: &str) -> Result<OriginMatcher, String> {
        if o == "*" {
            return Ok(OriginMatcher::Any);
        }
        let (scheme, host) = o
            .split_once("://")
            .ok_or_else(|| format!("{o:?} is not an origin (scheme://host[:port])"))?;
        if host.is_empty() || host.contains('/') {
            return Err(format!("{o:?} is not an origin (scheme://host[:port])"));
        }
        match host.strip_prefix("*.") {
            Some(suffix) => Ok(OriginMatcher::Wildcard {
                scheme: scheme.to_ascii_lowercase(),
                suffix: format!(".{}", suffix.to_ascii_lowercase()),
            }),
            None if host.contains('*') => Err(format!("{o:?}: `*` only as the first label")),
            None => Ok(OriginMatcher::Exact(o.to_ascii_lowercase())),
        }
    }

    fn matches(&self, origin: &str) -> bool {
        match self {
            OriginMatcher::Any => true,
            OriginMatcher::Exact(o) => o.eq_ignore_ascii_case(origin),
            OriginMatcher::Wildcard { scheme, suffix } => {
                let origin = origin.to_ascii_lowercase();
                origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|r| r.strip_prefix("://"))
                    .is_some_and(|host| {
                        host.ends_with(suffix.as_str()) && host.len() > suffix.len()
                    })
            }
        }
    }
}

/// A compiled `cors`.
#[derive(Debug)]
pub struct Cors {
    origins: Vec<OriginMatcher>,
    methods: String,
    headers: String,
    expose: String,
    max_age: Option<Duration>,
    credentials: bool,
}

pub type Headers = Vec<(&'static str, String)>;

impl Cors {
    pub fn compile(c: &pb::Cors) -> Result<Cors, String> {
        Ok(Cors {
            origins: c
                .allow_origins
                .iter()
                .map(|o| OriginMatcher::parse(o))
                .collect::<Result<_, _>>()?,
            methods: if c.allow_methods.is_empty() {
                "GET, HEAD, POST".into()
            } else {
                c.allow_methods.join(", ")
            },
            headers: c.allow_headers.join(", "),
            expose: c.expose_headers.join(", "),
            max_age: c.max_age.map(Duration::from),
            credentials: c.allow_credentials,
        })
    }

    fn allowed(&self, origin: &str) -> Option<String> {
        let m = self.origins.iter().find(|m| m.matches(origin))?;
        Some(if *m == OriginMatcher::Any && !self.credentials {
            "*".into()
        } else {
            origin.to_string()
        })
    }

    /// For a preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`): the
    /// headers of the gateway's 204 answer (without any `Access-Control-Allow-*` when the
    /// origin is not allowed, so the browser refuses). `None`: not a preflight.
    pub fn preflight(&self, method: &str, headers: &http::HeaderMap) -> Option<Headers> {
        if method != "OPTIONS" {
            return None;
        }
        let origin = headers.get(http::header::ORIGIN)?.to_str().ok()?;
        headers.get(http::header::ACCESS_CONTROL_REQUEST_METHOD)?;
        let mut out: Headers = vec![("vary", "Origin".into())];
        let Some(allow) = self.allowed(origin) else {
            return Some(out);
        };
        out.push(("access-control-allow-origin", allow));
        out.push(("access-control-allow-methods", self.methods.clone()));
        let requested = headers
            .get(http::header::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok());
        if !self.headers.is_empty() {
            out.push(("access-control-allow-headers", self.headers.clone()));
        } else if let Some(r) = requested.filter(|_| self.origins.contains(&OriginMatcher::Any)) {
            out.push(("access-control-allow-headers", r.to_string()));
        }
        if let Some(m) = self.max_age {
            out.push(("access-control-max-age", m.as_secs().to_string()));
        }
        if self.credentials {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        Some(out)
    }

    /// Headers for the response to an actual request from `origin`.
    pub fn response_headers(&self, origin: Option<&str>) -> Headers {
        let Some(allow) = origin.and_then(|o| self.allowed(o)) else {
            return vec![];
        };
        let mut out: Headers = vec![
            ("access-control-allow-origin", allow),
            ("vary", "Origin".into()),
        ];
        if self.credentials {
            out.push(("access-control-allow-credentials", "true".into()));
        }
        if !self.expose.is_empty() {
            out.push(("access-control-expose-headers", self.expose.clone()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], creds: bool) -> Cors {
        Cors::compile(&pb::Cors {
            allow_origins: origins.iter().map(|s| s.to_string()).collect(),
            allow_methods: vec!["POST".into(), "OPTIONS".into()],
            allow_headers: vec!["content-type".into()],
            expose_headers: vec!["x-request-id".into()],
            max_age: Some(Duration::from_secs(600).into()),
            allow_credentials: creds,
        })
        .expect("compiles")
    }

    fn preflight(origin: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::ORIGIN, origin.parse().expect("v"));
        h.insert(
            http::header::ACCESS_CONTROL_REQUEST_METHOD,
            "POST".parse().expect("v"),
        );
        h
    }

    fn get<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
        h.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn preflight_answers() {
        let c = cors(&["https://chat.example.com", "https://*.corp.test"], true);
        let h = c
            .preflight("OPTIONS", &preflight("https://chat.example.com"))
            .expect("preflight");
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://chat.example.com")
        );
        assert_eq!(
            get(&h, "access-control-allow-methods"),
            Some("POST, OPTIONS")
        );
        assert_eq!(get(&h, "access-control-max-age"), Some("600"));
        assert_eq!(get(&h, "access-control-allow-credentials"), Some("true"));
        let h = c
            .preflight("OPTIONS", &preflight("https://a.corp.test"))
            .expect("wildcard");
        assert_eq!(
            get(&h, "access-control-allow-origin"),
            Some("https://a.corp.test")
        );
        let h = c
            .preflight("OPTIONS", &preflight("https://evil.test"))
            .expect("still answered");
        assert_eq!(get(&h, "access-control-allow-origin"), None);
        assert!(
            c.preflight("OPTIONS", &preflight("https://corp.test"))
                .is_some_and(|h| get(&h, "access-control-allow-origin").is_none())
        );
        assert!(
            c.preflight("POST", &preflight("https://chat.example.com"))
                .is_none()
        );
    }

    #[test]
    fn actual_requests() {
        let c = cors(&["*"], false);
        let h = c.response_headers(Some("https://x.test"));
        assert_eq!(get(&h, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            get(&h, "access-control-expose-headers"),
            Some("x-request-id")
        );
        assert!(c.response_headers(None).is_empty());
        assert!(OriginMatcher::parse("chat.example.com").is_err());
        assert!(OriginMatcher::parse("https://a.*.com").is_err());
    }
}
