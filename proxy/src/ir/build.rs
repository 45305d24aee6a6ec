//! proto resources → IR. Every check that applies to any config source lives here, and any
//! failure rejects the whole update with the resource key and field that caused it.

mod backends;
mod l4;
mod policies;
mod tls;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use agora_proto::resource::{self as pb, resource::Kind};
use bytes::Bytes;
use regex::Regex;

use self::backends::backend;
use self::policies::PolicyIndex;
use self::tls::certified_key;
use super::*;
use crate::backend::{BackendIr, StateRegistry};
use crate::error::{Error, Result};
use crate::filters::{HeaderModifier, PathRewrite, Redirect};
use crate::routing::{CompiledMatch, MatchEntry, PathMatcher, RouteTable, ValueMatcher};

/// Builds the IR from a full set of resources. `states` keeps endpoint health across builds.
pub fn build(gateway: &str, resources: Vec<Resource>, states: &StateRegistry) -> Result<Ir> {
    let resources = resources.into_iter().map(Arc::new).collect();
    build_with(gateway, resources, states, &PortMap::new())
}

/// Listener port → the local port actually bound (`agora-proxy --port-map`).
pub type PortMap = HashMap<u16, u16>;

/// [`build`], binding each listener port to what `port_map` says.
pub fn build_with(
    gateway: &str,
    resources: Vec<Arc<Resource>>,
    states: &StateRegistry,
    port_map: &PortMap,
) -> Result<Ir> {
    let mut binds = Vec::new();
    let mut listeners = Vec::new();
    let mut routes = Vec::new();
    let mut backend_defs = Vec::new();
    let mut workloads = backends::Workloads::new();
    let mut policy_defs = Vec::new();
    let mut l4_routes = Vec::new();
    for r in &resources {
        match &r.kind {
            Some(Kind::Bind(b)) => binds.push(b),
            Some(Kind::Listener(l)) => listeners.push(l),
            Some(Kind::Route(rt)) => routes.push(rt),
            Some(Kind::Backend(b)) => backend_defs.push(b),
            Some(Kind::Workload(w)) => workloads.entry(&w.service_key).or_default().push(w),
            Some(Kind::Policy(p)) => policy_defs.push(p),
            Some(Kind::L4Route(r)) => l4_routes.push(r),
            // Services only name their workloads.
            Some(Kind::Service(_)) | None => {}
        }
    }

    let policies = PolicyIndex::build(policy_defs)?;
    let mut backends = HashMap::new();
    for b in backend_defs {
        let ir = backend(b, states, &workloads)?;
        if backends.insert(b.key.clone(), Arc::new(ir)).is_some() {
            return Err(Error::invalid(&b.key, "duplicate backend key"));
        }
    }

    let mut routes_by_listener: HashMap<&str, Vec<&pb::Route>> = HashMap::new();
    for r in &routes {
        routes_by_listener
            .entry(&r.listener_key)
            .or_default()
            .push(r);
    }

    let mut bind_listeners: HashMap<&str, Vec<Arc<ListenerIr>>> = HashMap::new();
    let bind_ports: HashMap<&str, u16> = binds
        .iter()
        .map(|b| (b.key.as_str(), u16::try_from(b.port).unwrap_or(0)))
        .collect();
    let mut l4_binds = l4::binds(&listeners, &l4_routes, &bind_ports, &backends)?;
    for l in listeners.iter().filter(|l| !l4::is_l4(l)) {
        let port = *bind_ports.get(l.bind_key.as_str()).ok_or_else(|| {
            Error::invalid(
                format!("{}.bindKey", l.key),
                format!("unknown bind {:?}", l.bind_key),
            )
        })?;
        let rs = routes_by_listener
            .remove(l.key.as_str())
            .unwrap_or_default();
        let ir = listener(l, port, &rs, &backends, &policies)?;
        bind_listeners
            .entry(&l.bind_key)
            .or_default()
            .push(Arc::new(ir));
    }
    if let Some((key, _)) = routes_by_listener.into_iter().next() {
        return Err(Error::invalid(key, "route refers to an unknown listener"));
    }

    let mut out = HashMap::new();
    for b in binds {
        let port = u16::try_from(b.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Error::invalid(format!("{}.port", b.key), "port must be 1..=65535"))?;
        let ls = bind_listeners.remove(b.key.as_str()).unwrap_or_default();
        let l4 = l4_binds.remove(b.key.as_str());
        if l4.is_some() && !ls.is_empty() {
            return Err(Error::invalid(
                &b.key,
                "HTTP or HTTPS listeners cannot share a port with TCP or TLS listeners",
            ));
        }
        let tls = ls.iter().any(|l| l.https);
        if tls && ls.iter().any(|l| !l.https) {
            return Err(Error::invalid(
                &b.key,
                "HTTP and HTTPS listeners cannot share a port",
            ));
        }
        let mut set = ListenerSet::default();
        for l in ls {
            if l.hostname.is_empty() {
                if set.any.replace(l.clone()).is_some() {
                    return Err(Error::invalid(
                        &l.key,
                        "two listeners without hostname on one port",
                    ));
                }
            } else if let Some(suffix) = l.hostname.strip_prefix('*') {
                if set.wildcard.iter().any(|(s, _)| s == suffix) {
                    return Err(Error::invalid(
                        &l.key,
                        "two listeners with one hostname on one port",
                    ));
                }
                set.wildcard.push((suffix.to_string(), l));
            } else if set.exact.insert(l.hostname.clone(), l.clone()).is_some() {
                return Err(Error::invalid(
                    &l.key,
                    "two listeners with one hostname on one port",
                ));
            }
        }
        set.wildcard.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        let listener_port = port;
        let port = port_map.get(&port).copied().unwrap_or(port);
        let ir = BindIr {
            key: b.key.clone(),
            address: b.address.clone(),
            port,
            listener_port,
            tls,
            listeners: set,
            l4: l4.map(Arc::new),
        };
        if out.insert(port, Arc::new(ir)).is_some() {
            return Err(Error::invalid(
                &b.key,
                format!("port {port} is bound twice"),
            ));
        }
    }
    states.retain_used();
    Ok(Ir {
        gateway: Arc::from(gateway),
        binds: out,
        backends,
        resources,
    })
}

fn listener(
    l: &pb::Listener,
    port: u16,
    routes: &[&pb::Route],
    backends: &HashMap<String, Arc<BackendIr>>,
    policies: &PolicyIndex,
) -> Result<ListenerIr> {
    if !l.hostname.is_empty() {
        hostname::validate(&l.hostname)
            .map_err(|e| Error::invalid(format!("{}.hostname", l.key), e))?;
    }
    let https = l.protocol == pb::Protocol::Https as i32;
    let cert = match (&l.tls, https) {
        (Some(t), true) => Some(Arc::new(
            certified_key(&t.cert_pem, &t.key_pem)
                .map_err(|e| Error::invalid(format!("{}.tls", l.key), e))?,
        )),
        (None, true) => {
            return Err(Error::invalid(
                format!("{}.tls", l.key),
                "HTTPS needs a certificate",
            ));
        }
        _ => None,
    };
    let mut entries = Vec::new();
    for r in routes {
        for (i, h) in r.hostnames.iter().enumerate() {
            hostname::validate(h)
                .map_err(|e| Error::invalid(format!("{}.hostnames[{i}]", r.key), e))?;
        }
        let rule = Arc::new(rule(r, backends, &policies.rule_levels(l, r), policies)?);
        let matches = if r.matches.is_empty() {
            vec![pb::RouteMatch::default()]
        } else {
            r.matches.clone()
        };
        let compiled = matches
            .iter()
            .enumerate()
            .map(|(i, m)| {
                compile_match(m).map_err(|e| Error::invalid(format!("{}.matches[{i}]", r.key), e))
            })
            .collect::<Result<Vec<_>>>()?;
        // A route whose hostnames do not intersect the listener's does not attach (but was
        // still validated above).
        let Some(hosts) = hostname::intersect(&l.hostname, &r.hostnames) else {
            continue;
        };
        for matcher in compiled {
            entries.push((
                hosts.clone(),
                MatchEntry {
                    matcher,
                    rule: rule.clone(),
                },
            ));
        }
    }
    Ok(ListenerIr {
        key: l.key.clone(),
        name: l.name.clone(),
        gateway: l.gateway.clone(),
        hostname: l.hostname.clone(),
        https,
        port,
        cert,
        routes: RouteTable::build(entries),
    })
}

fn compile_match(m: &pb::RouteMatch) -> std::result::Result<CompiledMatch, String> {
    use pb::path_match::Kind as P;
    let path = match m.path.as_ref().and_then(|p| p.kind.as_ref()) {
        None => PathMatcher::Prefix("/".into()),
        Some(P::Exact(p)) => PathMatcher::Exact(p.clone()),
        Some(P::Prefix(p)) => {
            if !p.starts_with('/') {
                return Err(format!("path prefix {p:?} must start with '/'"));
            }
            let trimmed = p.trim_end_matches('/');
            PathMatcher::Prefix(if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            })
        }
        Some(P::Regex(r)) => PathMatcher::Regex(anchored(r)?, r.len()),
    };
    let values = |list: &[pb::HeaderMatch], header: bool| {
        list.iter()
            .map(|h| {
                let m = match h.value.as_ref().and_then(|v| v.kind.as_ref()) {
                    Some(pb::string_match::Kind::Exact(e)) => ValueMatcher::Exact(e.clone()),
                    Some(pb::string_match::Kind::Regex(r)) => ValueMatcher::Regex(anchored(r)?),
                    None => return Err(format!("match on {:?} has no value", h.name)),
                };
                Ok((h.name.clone(), m))
            })
            .collect::<std::result::Result<Vec<_>, String>>()
            .map(|v| {
                if header {
                    v.into_iter()
                        .map(|(n, m)| (n.to_ascii_lowercase(), m))
                        .collect()
                } else {
                    v
                }
            })
    };
    let headers = values(&m.headers, true)?
        .into_iter()
        .map(|(n, m)| {
            http::HeaderName::try_from(n.as_str())
                .map(|n| (n, m))
                .map_err(|_| format!("{n:?} is not a valid header name"))
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    let method = if m.method.is_empty() {
        None
    } else {
        Some(
            http::Method::from_bytes(m.method.as_bytes())
                .map_err(|_| format!("{:?} is not a valid method", m.method))?,
        )
    };
    Ok(CompiledMatch {
        path,
        headers,
        query: values(&m.query_params, false)?,
        method,
    })
}

/// Compiles a regex that must match the whole value (Gateway API regexes are full matches).
fn anchored(r: &str) -> std::result::Result<Regex, String> {
    Regex::new(&format!("^(?:{r})$")).map_err(|e| format!("invalid regex {r:?}: {e}"))
}

fn rule(
    r: &pb::Route,
    backends: &HashMap<String, Arc<BackendIr>>,
    levels: &[Vec<Arc<agora_policies::Policy>>; 3],
    index: &PolicyIndex,
) -> Result<RuleIr> {
    let rule_policies = Arc::new(policies::effective(levels, &[]));
    let mut filters = r
        .filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            filter(f, backends).map_err(|e| Error::invalid(format!("{}.filters[{i}]", r.key), e))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut choices = Vec::new();
    for (i, b) in r.backends.iter().enumerate() {
        let backend = if !b.invalid.is_empty() {
            Err(b.invalid.clone())
        } else {
            backends
                .get(&b.backend_key)
                .cloned()
                .ok_or_else(|| format!("backend {:?} not found", b.backend_key))
        };
        let filters = b
            .filters
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let at = || format!("{}.backends[{i}].filters[{j}]", r.key);
                match filter(f, backends).map_err(|e| Error::invalid(at(), e))? {
                    FilterIr::Redirect(_) | FilterIr::Direct { .. } => Err(Error::invalid(
                        at(),
                        "redirects and direct responses belong on the rule, not on a backend",
                    )),
                    other => Ok(other),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let backend_policies = index.backend(&b.backend_key);
        choices.push(BackendChoice {
            backend,
            weight: b.weight,
            filters,
            policies: if backend_policies.is_empty() {
                rule_policies.clone()
            } else {
                Arc::new(policies::effective(levels, backend_policies))
            },
        });
    }
    let total_weight = choices.iter().map(|c| c.weight).sum();
    // Header modifiers, timeouts and retries of policies: the route's own settings win.
    let p = &rule_policies;
    if let Some(h) = &p.request_headers {
        let m = header_mod(h)
            .map_err(|e| Error::invalid(format!("{}.policy.requestHeaders", r.key), e))?;
        filters.push(FilterIr::RequestHeaders(m));
    }
    if let Some(h) = &p.response_headers {
        let m = header_mod(h)
            .map_err(|e| Error::invalid(format!("{}.policy.responseHeaders", r.key), e))?;
        filters.push(FilterIr::ResponseHeaders(m));
    }
    let retry = r.retry.as_ref().or(p.retry.as_ref()).map(|rt| RetryIr {
        attempts: rt.attempts,
        codes: rt
            .codes
            .iter()
            .filter_map(|c| u16::try_from(*c).ok())
            .collect(),
        backoff: rt
            .backoff
            .map(Into::into)
            .unwrap_or(Duration::from_millis(25)),
    });
    let timeouts = r.timeouts.or(p.timeouts).unwrap_or_default();
    Ok(RuleIr {
        key: r.key.clone(),
        route_name: r.route_name.clone(),
        rule_name: if r.rule_name.is_empty() {
            r.rule_index.to_string()
        } else {
            r.rule_name.clone()
        },
        rule_index: r.rule_index,
        creation_timestamp: r.creation_timestamp,
        filters,
        backends: choices,
        total_weight,
        request_timeout: timeouts
            .request
            .map(Into::into)
            .filter(|d: &Duration| !d.is_zero()),
        backend_timeout: timeouts
            .backend_request
            .map(Into::into)
            .filter(|d: &Duration| !d.is_zero()),
        retry,
        max_body: if r.max_request_body_bytes == 0 {
            DEFAULT_MAX_BODY
        } else {
            r.max_request_body_bytes
        },
        buffer_body: r.buffer_request_body,
        policies: rule_policies,
    })
}

fn filter(
    f: &pb::Filter,
    backends: &HashMap<String, Arc<BackendIr>>,
) -> std::result::Result<FilterIr, String> {
    use pb::filter::Kind as F;
    Ok(match f.kind.as_ref().ok_or("empty filter")? {
        F::RequestHeaderModifier(h) => FilterIr::RequestHeaders(header_mod(h)?),
        F::ResponseHeaderModifier(h) => FilterIr::ResponseHeaders(header_mod(h)?),
        F::UrlRewrite(u) => {
            if !u.hostname.is_empty() {
                hostname::validate(&u.hostname)?;
            }
            FilterIr::Rewrite {
                hostname: (!u.hostname.is_empty()).then(|| u.hostname.clone()),
                path: u.path.as_ref().and_then(path_rewrite),
            }
        }
        F::RequestRedirect(r) => FilterIr::Redirect(Redirect {
            scheme: (!r.scheme.is_empty()).then(|| r.scheme.clone()),
            hostname: (!r.hostname.is_empty()).then(|| r.hostname.clone()),
            path: r.path.as_ref().and_then(path_rewrite),
            port: u16::try_from(r.port).ok().filter(|p| *p != 0),
            status: match r.status_code {
                0 => 302,
                c @ (301 | 302 | 303 | 307 | 308) => c as u16,
                c => {
                    return Err(format!(
                        "redirect status {c} is not 301, 302, 303, 307 or 308"
                    ));
                }
            },
        }),
        F::RequestMirror(m) => FilterIr::Mirror {
            backend: backends
                .get(&m.backend_key)
                .cloned()
                .ok_or_else(|| format!("mirror backend {:?} not found", m.backend_key))?,
            fraction: m.percent.unwrap_or(100.0).clamp(0.0, 100.0) / 100.0,
        },
        F::DirectResponse(d) => FilterIr::Direct {
            status: u16::try_from(d.status)
                .ok()
                .filter(|s| (200..=599).contains(s))
                .ok_or_else(|| format!("direct response status {} is not 200..=599", d.status))?,
            body: Bytes::from(d.body.clone()),
            content_type: (!d.content_type.is_empty()).then(|| d.content_type.clone()),
        },
    })
}

fn path_rewrite(p: &pb::PathRewrite) -> Option<PathRewrite> {
    Some(match p.kind.as_ref()? {
        pb::path_rewrite::Kind::Full(f) => PathRewrite::Full(f.clone()),
        pb::path_rewrite::Kind::Prefix(p) => PathRewrite::Prefix(p.clone()),
    })
}

fn header_mod(h: &pb::HeaderModifier) -> std::result::Result<HeaderModifier, String> {
    let pair = |v: &pb::HeaderValue| {
        Ok((
            http::HeaderName::try_from(v.name.as_str())
                .map_err(|_| format!("{:?} is not a valid header name", v.name))?,
            http::HeaderValue::try_from(v.value.as_str())
                .map_err(|_| format!("{:?} is not a valid header value", v.value))?,
        ))
    };
    Ok(HeaderModifier {
        set: h
            .set
            .iter()
            .map(pair)
            .collect::<std::result::Result<_, String>>()?,
        add: h
            .add
            .iter()
            .map(pair)
            .collect::<std::result::Result<_, String>>()?,
        remove: h
            .remove
            .iter()
            .map(|n| {
                http::HeaderName::try_from(n.as_str())
                    .map_err(|_| format!("{n:?} is not a valid header name"))
            })
            .collect::<std::result::Result<_, String>>()?,
    })
}
