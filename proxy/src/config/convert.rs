//! Local config → proto resources. Structural validation lives here (filter `type` matches its
//! field, durations parse, backend references exist, files are readable); semantic validation
//! shared with xDS (regexes, hostnames, certificates) happens when the IR is built.

use std::collections::HashSet;
use std::path::Path;

use agora_proto::resource::{self as pb, resource::Kind};

use super::schema::*;
use crate::error::{Error, Result};

/// Converts a parsed config into resources: one Bind per port, one Listener per listener, one
/// Route per route, one Backend per backend.
pub fn to_resources(cfg: &LocalConfig, base: &Path) -> Result<Vec<pb::Resource>> {
    let gateway = cfg.gateway.clone().unwrap_or_else(|| "local".into());
    let mut out = Vec::new();
    let backend_names: HashSet<&str> = cfg.backends.iter().map(|b| b.name.as_str()).collect();
    let mut seen_backends = HashSet::new();
    for (i, b) in cfg.backends.iter().enumerate() {
        let at = format!("backends[{i}]");
        if !seen_backends.insert(b.name.as_str()) {
            return Err(Error::invalid(
                format!("{at}.name"),
                format!("duplicate backend {:?}", b.name),
            ));
        }
        out.push(Kind::Backend(backend(b, &at, base)?));
    }
    let mut ports = HashSet::new();
    for (bi, bind) in cfg.binds.iter().enumerate() {
        let at = format!("binds[{bi}]");
        if bind.port == 0 {
            return Err(Error::invalid(
                format!("{at}.port"),
                "port must be 1..=65535",
            ));
        }
        if !ports.insert(bind.port) {
            return Err(Error::invalid(
                format!("{at}.port"),
                format!("port {} is bound twice", bind.port),
            ));
        }
        let bind_key = format!("bind/{}", bind.port);
        out.push(Kind::Bind(pb::Bind {
            key: bind_key.clone(),
            address: bind.address.clone().unwrap_or_default(),
            port: bind.port.into(),
        }));
        let mut names = HashSet::new();
        for (li, l) in bind.listeners.iter().enumerate() {
            let at = format!("{at}.listeners[{li}]");
            let name = l.name.clone().unwrap_or_else(|| format!("listener{li}"));
            if !names.insert(name.clone()) {
                return Err(Error::invalid(
                    format!("{at}.name"),
                    format!("duplicate listener {name:?}"),
                ));
            }
            let listener_key = format!("listener/{}/{name}", bind.port);
            if matches!(l.protocol, ListenerProtocol::Tcp | ListenerProtocol::Tls) {
                let keys = super::convert_l4::Keys {
                    bind: &bind_key,
                    listener: &listener_key,
                    name: &name,
                    gateway: &gateway,
                };
                out.extend(super::convert_l4::listener(
                    l,
                    &at,
                    &keys,
                    &backend_names,
                    base,
                )?);
                continue;
            }
            let tls = match (l.protocol, &l.tls) {
                (ListenerProtocol::Https, Some(t)) if t.mode == Some(TlsMode::Passthrough) => {
                    return Err(Error::invalid(
                        format!("{at}.tls.mode"),
                        "HTTPS listeners terminate TLS; passthrough needs protocol: TLS",
                    ));
                }
                (ListenerProtocol::Https, Some(t)) => {
                    Some(listener_tls(t, &format!("{at}.tls"), base)?)
                }
                (ListenerProtocol::Https, None) => {
                    return Err(Error::invalid(
                        format!("{at}.tls"),
                        "HTTPS listeners need tls",
                    ));
                }
                (ListenerProtocol::Http, Some(_)) => {
                    return Err(Error::invalid(
                        format!("{at}.tls"),
                        "tls is only allowed with protocol: HTTPS",
                    ));
                }
                // TCP and TLS listeners were converted above.
                (ListenerProtocol::Http, None)
                | (ListenerProtocol::Tcp | ListenerProtocol::Tls, _) => None,
            };
            out.push(Kind::Listener(pb::Listener {
                key: listener_key.clone(),
                bind_key: bind_key.clone(),
                gateway: gateway.clone(),
                name: name.clone(),
                hostname: l.hostname.clone().unwrap_or_default(),
                protocol: if l.protocol == ListenerProtocol::Https {
                    pb::Protocol::Https
                } else {
                    pb::Protocol::Http
                } as i32,
                tls,
            }));
            let mut route_names = HashSet::new();
            for (ri, r) in l.routes.iter().enumerate() {
                let at = format!("{at}.routes[{ri}]");
                let rname = r.name.clone().unwrap_or_else(|| format!("route{ri}"));
                if !route_names.insert(rname.clone()) {
                    return Err(Error::invalid(
                        format!("{at}.name"),
                        format!("duplicate route {rname:?}"),
                    ));
                }
                let route = route(r, &at, &backend_names)?;
                out.push(Kind::Route(pb::Route {
                    key: format!("{listener_key}/{rname}"),
                    listener_key: listener_key.clone(),
                    route_name: format!("{gateway}/{rname}"),
                    rule_name: String::new(),
                    rule_index: u32::try_from(ri).unwrap_or(u32::MAX),
                    ..route
                }));
            }
        }
    }
    for (i, p) in cfg.policies.iter().enumerate() {
        out.extend(
            super::convert_policy::policy(p, &format!("policies[{i}]"), cfg, &gateway)?
                .into_iter()
                .map(Kind::Policy),
        );
    }
    Ok(out
        .into_iter()
        .map(|k| pb::Resource { kind: Some(k) })
        .collect())
}

fn route(r: &RouteConfig, at: &str, backends: &HashSet<&str>) -> Result<pb::Route> {
    let matches = r
        .matches
        .iter()
        .enumerate()
        .map(|(i, m)| route_match(m, &format!("{at}.matches[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let filters = filters(&r.filters, &format!("{at}.filters"), backends)?;
    let mut refs = Vec::new();
    for (i, b) in r.backend_refs.iter().enumerate() {
        let at = format!("{at}.backendRefs[{i}]");
        if !backends.contains(b.name.as_str()) {
            return Err(Error::invalid(
                format!("{at}.name"),
                format!("unknown backend {:?}", b.name),
            ));
        }
        refs.push(pb::RouteBackend {
            backend_key: format!("backend/{}", b.name),
            weight: b.weight.unwrap_or(1),
            filters: filters_of(&b.filters, &format!("{at}.filters"), backends)?,
            invalid: String::new(),
            port: 0,
        });
    }
    let timeouts = match &r.timeouts {
        Some(t) => Some(pb::Timeouts {
            request: opt_duration(&t.request, &format!("{at}.timeouts.request"))?,
            backend_request: opt_duration(
                &t.backend_request,
                &format!("{at}.timeouts.backendRequest"),
            )?,
        }),
        None => None,
    };
    let retry = match &r.retry {
        Some(rt) => {
            for (i, c) in rt.codes.iter().enumerate() {
                if !(400..=599).contains(c) {
                    return Err(Error::invalid(
                        format!("{at}.retry.codes[{i}]"),
                        "retry codes must be 400..=599",
                    ));
                }
            }
            Some(pb::Retry {
                attempts: rt.attempts.unwrap_or(1),
                codes: rt.codes.iter().map(|&c| c.into()).collect(),
                backoff: opt_duration(&rt.backoff, &format!("{at}.retry.backoff"))?,
            })
        }
        None => None,
    };
    Ok(pb::Route {
        hostnames: r.hostnames.clone(),
        matches,
        filters,
        backends: refs,
        timeouts,
        retry,
        max_request_body_bytes: r.max_request_body_bytes.unwrap_or(0),
        buffer_request_body: r.buffer_request_body,
        ..Default::default()
    })
}

fn route_match(m: &MatchConfig, at: &str) -> Result<pb::RouteMatch> {
    let path = m.path.as_ref().map(|p| {
        let kind = match p.kind {
            PathMatchType::Exact => pb::path_match::Kind::Exact(p.value.clone()),
            PathMatchType::PathPrefix => pb::path_match::Kind::Prefix(p.value.clone()),
            PathMatchType::RegularExpression => pb::path_match::Kind::Regex(p.value.clone()),
        };
        pb::PathMatch { kind: Some(kind) }
    });
    if let Some(pb::PathMatch {
        kind: Some(pb::path_match::Kind::Exact(v) | pb::path_match::Kind::Prefix(v)),
    }) = &path
        && !v.starts_with('/')
    {
        return Err(Error::invalid(
            format!("{at}.path.value"),
            "must start with '/'",
        ));
    }
    let values = |list: &[ValueMatchConfig]| {
        list.iter()
            .map(|h| pb::HeaderMatch {
                name: h.name.clone(),
                value: Some(pb::StringMatch {
                    kind: Some(match h.kind {
                        ValueMatchType::Exact => pb::string_match::Kind::Exact(h.value.clone()),
                        ValueMatchType::RegularExpression => {
                            pb::string_match::Kind::Regex(h.value.clone())
                        }
                    }),
                }),
            })
            .collect()
    };
    Ok(pb::RouteMatch {
        path,
        headers: values(&m.headers),
        query_params: values(&m.query_params),
        method: m.method.clone().unwrap_or_default(),
    })
}

fn filters(list: &[FilterConfig], at: &str, backends: &HashSet<&str>) -> Result<Vec<pb::Filter>> {
    filters_of(list, at, backends)
}

fn filters_of(
    list: &[FilterConfig],
    at: &str,
    backends: &HashSet<&str>,
) -> Result<Vec<pb::Filter>> {
    use pb::filter::Kind as F;
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            let at = format!("{at}[{i}]");
            let missing = |field: &str| {
                Error::invalid(
                    format!("{at}.{field}"),
                    format!("required when type is {:?}", f.kind),
                )
            };
            let kind = match f.kind {
                FilterType::RequestHeaderModifier => F::RequestHeaderModifier(header_mod(
                    f.request_header_modifier
                        .as_ref()
                        .ok_or_else(|| missing("requestHeaderModifier"))?,
                )),
                FilterType::ResponseHeaderModifier => F::ResponseHeaderModifier(header_mod(
                    f.response_header_modifier
                        .as_ref()
                        .ok_or_else(|| missing("responseHeaderModifier"))?,
                )),
                FilterType::UrlRewrite => {
                    let u = f
                        .url_rewrite
                        .as_ref()
                        .ok_or_else(|| missing("urlRewrite"))?;
                    F::UrlRewrite(pb::UrlRewrite {
                        hostname: u.hostname.clone().unwrap_or_default(),
                        path: path_mod(u.path.as_ref(), &format!("{at}.urlRewrite.path"))?,
                    })
                }
                FilterType::RequestRedirect => {
                    let r = f
                        .request_redirect
                        .as_ref()
                        .ok_or_else(|| missing("requestRedirect"))?;
                    let status = r.status_code.unwrap_or(302);
                    if ![301, 302, 303, 307, 308].contains(&status) {
                        return Err(Error::invalid(
                            format!("{at}.requestRedirect.statusCode"),
                            "must be one of 301, 302, 303, 307, 308",
                        ));
                    }
                    if let Some(s) = &r.scheme
                        && s != "http"
                        && s != "https"
                    {
                        return Err(Error::invalid(
                            format!("{at}.requestRedirect.scheme"),
                            "must be http or https",
                        ));
                    }
                    F::RequestRedirect(pb::RequestRedirect {
                        scheme: r.scheme.clone().unwrap_or_default(),
                        hostname: r.hostname.clone().unwrap_or_default(),
                        path: path_mod(r.path.as_ref(), &format!("{at}.requestRedirect.path"))?,
                        port: r.port.map(u32::from).unwrap_or(0),
                        status_code: status.into(),
                    })
                }
                FilterType::RequestMirror => {
                    let m = f
                        .request_mirror
                        .as_ref()
                        .ok_or_else(|| missing("requestMirror"))?;
                    if !backends.contains(m.backend_ref.name.as_str()) {
                        return Err(Error::invalid(
                            format!("{at}.requestMirror.backendRef.name"),
                            format!("unknown backend {:?}", m.backend_ref.name),
                        ));
                    }
                    if let Some(p) = m.percent
                        && !(0.0..=100.0).contains(&p)
                    {
                        return Err(Error::invalid(
                            format!("{at}.requestMirror.percent"),
                            "must be 0..=100",
                        ));
                    }
                    F::RequestMirror(pb::RequestMirror {
                        backend_key: format!("backend/{}", m.backend_ref.name),
                        percent: m.percent,
                    })
                }
                FilterType::DirectResponse => {
                    let d = f
                        .direct_response
                        .as_ref()
                        .ok_or_else(|| missing("directResponse"))?;
                    if !(200..=599).contains(&d.status) {
                        return Err(Error::invalid(
                            format!("{at}.directResponse.status"),
                            "must be 200..=599",
                        ));
                    }
                    F::DirectResponse(pb::DirectResponse {
                        status: d.status.into(),
                        body: d.body.clone().unwrap_or_default().into_bytes(),
                        content_type: d.content_type.clone().unwrap_or_default(),
                    })
                }
            };
            Ok(pb::Filter { kind: Some(kind) })
        })
        .collect()
}

fn header_mod(h: &HeaderModifierConfig) -> pb::HeaderModifier {
    let pairs = |v: &[HeaderValueConfig]| {
        v.iter()
            .map(|h| pb::HeaderValue {
                name: h.name.clone(),
                value: h.value.clone(),
            })
            .collect()
    };
    pb::HeaderModifier {
        set: pairs(&h.set),
        add: pairs(&h.add),
        remove: h.remove.clone(),
    }
}

fn path_mod(p: Option<&PathModifierConfig>, at: &str) -> Result<Option<pb::PathRewrite>> {
    let Some(p) = p else { return Ok(None) };
    let kind = match p.kind {
        PathModifierType::ReplaceFullPath => pb::path_rewrite::Kind::Full(
            p.replace_full_path
                .clone()
                .ok_or_else(|| Error::invalid(format!("{at}.replaceFullPath"), "required"))?,
        ),
        PathModifierType::ReplacePrefixMatch => pb::path_rewrite::Kind::Prefix(
            p.replace_prefix_match
                .clone()
                .ok_or_else(|| Error::invalid(format!("{at}.replacePrefixMatch"), "required"))?,
        ),
    };
    Ok(Some(pb::PathRewrite { kind: Some(kind) }))
}

fn backend(b: &BackendConfig, at: &str, base: &Path) -> Result<pb::Backend> {
    if let Some(ai) = &b.ai {
        return super::convert_ai::ai_backend(b, ai, at, base);
    }
    if let Some(mcp) = b.mcp.as_ref().filter(|m| !m.targets.is_empty()) {
        if b.single.is_some() || !b.endpoints.is_empty() || b.a2a.is_some() {
            return Err(Error::invalid(
                format!("{at}.mcp"),
                "an MCP backend with targets takes no `static`, `endpoints` or `a2a`",
            ));
        }
        let mcp = mcp
            .to_proto(&format!("{at}.mcp"))
            .map_err(|e| Error::invalid(e.field, e.message))?;
        return Ok(pb::Backend {
            key: format!("backend/{}", b.name),
            kind: Some(pb::backend::Kind::Mcp(mcp)),
            ..Default::default()
        });
    }
    if b.policies.is_some() {
        return Err(Error::invalid(
            format!("{at}.policies"),
            "backend policies (auth, ai) apply to AI backends only",
        ));
    }
    let mut endpoints: Vec<pb::Endpoint> = b
        .endpoints
        .iter()
        .chain(b.single.iter())
        .map(|e| pb::Endpoint {
            host: e.host.clone(),
            port: e.port.into(),
            weight: e.weight.unwrap_or(1),
        })
        .collect();
    if let Some(a) = &b.a2a {
        match (&a.host, a.port) {
            (Some(host), Some(port)) => endpoints.push(pb::Endpoint {
                host: host.clone(),
                port: port.into(),
                weight: 1,
            }),
            (None, None) => {}
            _ => {
                return Err(Error::invalid(
                    format!("{at}.a2a"),
                    "set both host and port (or neither, and list the agent's endpoints)",
                ));
            }
        }
    }
    if endpoints.is_empty() {
        return Err(Error::invalid(
            format!("{at}.endpoints"),
            "a backend needs `static` or at least one of `endpoints`",
        ));
    }
    endpoints.dedup();
    let load_balancing = b.load_balancing.as_ref().map(|lb| {
        use pb::load_balancing::{HashOn, Mode};
        let hash_on = lb.hash_on.as_ref().and_then(|h| {
            if let Some(name) = &h.header {
                Some(HashOn::Header(name.to_ascii_lowercase()))
            } else if let Some(c) = &h.cookie {
                Some(HashOn::Cookie(c.clone()))
            } else if h.source_ip {
                Some(HashOn::SourceIp(true))
            } else {
                None
            }
        });
        pb::LoadBalancing {
            mode: match lb.mode {
                LbMode::RoundRobin => Mode::RoundRobin,
                LbMode::LeastRequest => Mode::LeastRequest,
                LbMode::ConsistentHash => Mode::ConsistentHash,
                LbMode::Random => Mode::Random,
            } as i32,
            hash_on,
        }
    });
    if let Some(lb) = &b.load_balancing
        && lb.mode == LbMode::ConsistentHash
        && lb.hash_on.is_none()
    {
        return Err(Error::invalid(
            format!("{at}.loadBalancing.hashOn"),
            "ConsistentHash needs hashOn (header, cookie or sourceIP)",
        ));
    }
    let health_check = match &b.health_check {
        Some(h) => Some(pb::HealthCheck {
            consecutive_failures: h.consecutive_failures.unwrap_or(0),
            base_ejection: opt_duration(
                &h.base_ejection_time,
                &format!("{at}.healthCheck.baseEjectionTime"),
            )?,
            active: match &h.active {
                Some(a) => {
                    let at = format!("{at}.healthCheck.active");
                    Some(pb::ActiveHealthCheck {
                        path: a.path.clone(),
                        interval: opt_duration(&a.interval, &format!("{at}.interval"))?,
                        timeout: opt_duration(&a.timeout, &format!("{at}.timeout"))?,
                        unhealthy_threshold: a.unhealthy_threshold.unwrap_or(2),
                        healthy_threshold: a.healthy_threshold.unwrap_or(1),
                        expected_statuses: a.expected_statuses.iter().map(|&s| s.into()).collect(),
                        host: a.host.clone().unwrap_or_default(),
                    })
                }
                None => None,
            },
        }),
        None => None,
    };
    let tls = match &b.tls {
        Some(t) => {
            let at = format!("{at}.tls");
            Some(pb::UpstreamTls {
                sni: t.sni.clone().unwrap_or_default(),
                ca_pem: inline_or_file(&t.ca, &t.ca_file, &format!("{at}.ca"), base)?
                    .unwrap_or_default(),
                client_cert_pem: inline_or_file(
                    &t.client_cert,
                    &t.client_cert_file,
                    &format!("{at}.clientCert"),
                    base,
                )?
                .unwrap_or_default(),
                client_key_pem: inline_or_file(
                    &t.client_key,
                    &t.client_key_file,
                    &format!("{at}.clientKey"),
                    base,
                )?
                .unwrap_or_default(),
                insecure_skip_verify: t.insecure_skip_verify,
                http2: t.http2,
            })
        }
        None => None,
    };
    let kind = match &b.endpoint_picker {
        Some(p) => super::convert_inference::pool(p, endpoints, &format!("{at}.endpointPicker"))?,
        None => pb::backend::Kind::Static(pb::StaticBackend { endpoints }),
    };
    Ok(pb::Backend {
        key: format!("backend/{}", b.name),
        kind: Some(kind),
        app_protocol: if b.a2a.is_some() {
            pb::AppProtocol::A2a
        } else if b.mcp.is_some() {
            pb::AppProtocol::Mcp
        } else {
            pb::AppProtocol::Http
        } as i32,
        load_balancing,
        health_check,
        tls,
        pool: Some(pb::ConnectionPool {
            connect_timeout: opt_duration(&b.connect_timeout, &format!("{at}.connectTimeout"))?,
            idle_timeout: opt_duration(&b.idle_timeout, &format!("{at}.idleTimeout"))?,
            http2: b.http2,
        }),
    })
}

pub(super) fn listener_tls(t: &ListenerTls, at: &str, base: &Path) -> Result<pb::TlsCertificate> {
    let cert = inline_or_file(&t.cert, &t.cert_file, &format!("{at}.cert"), base)?
        .ok_or_else(|| Error::invalid(format!("{at}.cert"), "cert or certFile is required"))?;
    let key = inline_or_file(&t.key, &t.key_file, &format!("{at}.key"), base)?
        .ok_or_else(|| Error::invalid(format!("{at}.key"), "key or keyFile is required"))?;
    Ok(pb::TlsCertificate {
        cert_pem: cert,
        key_pem: key,
    })
}

pub(super) fn inline_or_file(
    inline: &Option<String>,
    file: &Option<String>,
    at: &str,
    base: &Path,
) -> Result<Option<Vec<u8>>> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(Error::invalid(
            at,
            "set either the inline value or the file, not both",
        )),
        (Some(v), None) => Ok(Some(v.clone().into_bytes())),
        (None, Some(f)) => {
            let path = base.join(f);
            std::fs::read(&path).map(Some).map_err(|e| {
                Error::invalid(format!("{at}File"), format!("{}: {e}", path.display()))
            })
        }
        (None, None) => Ok(None),
    }
}

pub(super) fn opt_duration(v: &Option<String>, at: &str) -> Result<Option<agora_proto::Duration>> {
    v.as_deref()
        .map(|s| {
            parse_duration(s).map(Into::into).ok_or_else(|| {
                Error::invalid(
                    at,
                    format!("{s:?} is not a duration like 10s, 500ms or 1m30s"),
                )
            })
        })
        .transpose()
}

pub use agora_proto::parse_duration;
