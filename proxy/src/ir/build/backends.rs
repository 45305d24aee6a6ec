//! Backends: endpoints (resolved here, off the request path), balancing, health, TLS.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use agora_proto::resource as pb;

use super::tls::upstream_tls;
use crate::backend::{
    ActiveCheck, BackendIr, BackendSettings, HashOn, LbMode, PassiveCheck, StateRegistry,
};
use crate::error::{Error, Result};

/// Workloads by the key of the Service they belong to.
pub(super) type Workloads<'a> = std::collections::HashMap<&'a str, Vec<&'a pb::Workload>>;

pub(super) fn backend(
    b: &pb::Backend,
    states: &StateRegistry,
    workloads: &Workloads<'_>,
) -> Result<BackendIr> {
    let field = |f: &str| format!("{}.{f}", b.key);
    let hc = b.health_check.clone().unwrap_or_default();
    let passive = (hc.consecutive_failures > 0).then(|| PassiveCheck {
        consecutive_failures: hc.consecutive_failures,
        base_ejection: hc
            .base_ejection
            .map(Into::into)
            .unwrap_or(Duration::from_secs(30)),
    });
    if let Some(pb::backend::Kind::Ai(ai)) = &b.kind {
        let ai = crate::llm::ai_backend(&b.key, ai, passive.clone(), states)?;
        let endpoints = ai
            .groups
            .iter()
            .flatten()
            .filter_map(|p| p.endpoint.clone())
            .collect();
        let pool = b.pool.unwrap_or_default();
        return Ok(BackendIr::new(
            b.key.clone(),
            endpoints,
            BackendSettings {
                passive,
                connect_timeout: pool.connect_timeout.map(Into::into),
                idle_timeout: pool.idle_timeout.map(Into::into),
                ai: Some(Arc::new(ai)),
                ..Default::default()
            },
        ));
    }
    if let Some(pb::backend::Kind::Mcp(m)) = &b.kind {
        let mcp = crate::mcp::McpIr::build(&b.key, m)?;
        return Ok(BackendIr::new(
            b.key.clone(),
            Vec::new(),
            BackendSettings {
                mcp: Some(Arc::new(mcp)),
                ..Default::default()
            },
        ));
    }
    let mut endpoints = Vec::new();
    let eps = match &b.kind {
        Some(pb::backend::Kind::Static(s)) => s.endpoints.as_slice(),
        Some(pb::backend::Kind::InferencePool(p)) => p.endpoints.as_slice(),
        Some(pb::backend::Kind::Ai(_) | pb::backend::Kind::Mcp(_)) => {
            return Err(Error::invalid(
                &b.key,
                "AI or MCP backend on the static path",
            ));
        }
        Some(pb::backend::Kind::Service(sb)) => {
            // Ready workloads of the Service that serve its port; none means 503s.
            for w in workloads.get(sb.service_key.as_str()).into_iter().flatten() {
                let Some(port) = w.ports.get(&sb.port).and_then(|p| u16::try_from(*p).ok()) else {
                    continue;
                };
                let Ok(ip) = w.address.parse::<std::net::IpAddr>() else {
                    return Err(Error::invalid(
                        format!("{}.address", w.key),
                        "workload address must be an IP address",
                    ));
                };
                if w.ready {
                    let addr = SocketAddr::new(ip, port);
                    endpoints.push(states.get(&b.key, addr, &w.address, 1));
                }
            }
            &[]
        }
        None => return Err(Error::invalid(&b.key, "backend has no kind")),
    };
    for (i, e) in eps.iter().enumerate() {
        let port = u16::try_from(e.port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Error::invalid(
                    field(&format!("endpoints[{i}].port")),
                    "port must be 1..=65535",
                )
            })?;
        // A host that does not resolve now adds no endpoint (requests to it answer 503)
        // instead of rejecting the whole config: one bad name must not block every route.
        match resolve(&e.host, port) {
            Ok(addrs) => {
                for addr in addrs {
                    endpoints.push(states.get(&b.key, addr, &e.host, e.weight));
                }
            }
            Err(m) => tracing::warn!(
                field = %field(&format!("endpoints[{i}].host")),
                error = %m,
                "endpoint host does not resolve; it serves nothing until the next config change"
            ),
        }
    }
    let a2a = b.app_protocol == pb::AppProtocol::A2a as i32;
    let mcp_passthrough = b.app_protocol == pb::AppProtocol::Mcp as i32;
    let lb = match &b.load_balancing {
        // An agent's conversations stay on one replica (by context or task id).
        None if a2a => LbMode::ConsistentHash(HashOn::Protocol),
        None => LbMode::RoundRobin,
        Some(l) => {
            use pb::load_balancing::{HashOn as H, Mode};
            match Mode::try_from(l.mode).unwrap_or(Mode::RoundRobin) {
                Mode::RoundRobin => LbMode::RoundRobin,
                Mode::LeastRequest => LbMode::LeastRequest,
                Mode::Random => LbMode::Random,
                Mode::ConsistentHash => LbMode::ConsistentHash(match &l.hash_on {
                    Some(H::Header(h)) => {
                        HashOn::Header(http::HeaderName::try_from(h.as_str()).map_err(|_| {
                            Error::invalid(
                                field("loadBalancing.hashOn.header"),
                                "invalid header name",
                            )
                        })?)
                    }
                    Some(H::Cookie(c)) => HashOn::Cookie(c.clone()),
                    Some(H::SourceIp(_)) => HashOn::SourceIp,
                    None => {
                        return Err(Error::invalid(
                            field("loadBalancing.hashOn"),
                            "consistent hashing needs a hash source",
                        ));
                    }
                }),
            }
        }
    };

    let active = hc.active.map(|a| ActiveCheck {
        path: if a.path.is_empty() {
            "/".into()
        } else {
            a.path
        },
        host: (!a.host.is_empty()).then_some(a.host),
        interval: a.interval.map(Into::into).unwrap_or(Duration::from_secs(5)),
        timeout: a.timeout.map(Into::into).unwrap_or(Duration::from_secs(1)),
        unhealthy_threshold: a.unhealthy_threshold.max(1),
        healthy_threshold: a.healthy_threshold.max(1),
        expected: a
            .expected_statuses
            .iter()
            .filter_map(|s| u16::try_from(*s).ok())
            .collect(),
    });
    let tls = b
        .tls
        .as_ref()
        .map(|t| upstream_tls(t).map_err(|e| Error::invalid(field("tls"), e)))
        .transpose()?;
    let inference = match &b.kind {
        Some(pb::backend::Kind::InferencePool(p)) => {
            let picker = p.picker.clone().unwrap_or_default();
            let ir = crate::inference::PickerIr::new(&picker)
                .map_err(|e| Error::invalid(field("inferencePool.picker"), e))?;
            Some(Arc::new(ir))
        }
        _ => None,
    };
    let pool = b.pool.unwrap_or_default();
    Ok(BackendIr::new(
        b.key.clone(),
        endpoints,
        BackendSettings {
            inference,
            lb,
            passive,
            active,
            tls,
            connect_timeout: pool.connect_timeout.map(Into::into),
            idle_timeout: pool.idle_timeout.map(Into::into),
            h2c: pool.http2,
            ai: None,
            a2a,
            mcp: None,
            mcp_passthrough,
        },
    ))
}

/// Resolves a host to addresses (IPv4 first if the name has both, so "localhost" behaves like
/// most servers bound to 127.0.0.1 expect). Runs off the request path, while building.
fn resolve(host: &str, port: u16) -> std::result::Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let all: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host:?}: {e}"))?
        .collect();
    let v4: Vec<SocketAddr> = all.iter().copied().filter(SocketAddr::is_ipv4).collect();
    let mut out = if v4.is_empty() { all } else { v4 };
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(format!("{host:?} resolved to no address"));
    }
    Ok(out)
}
