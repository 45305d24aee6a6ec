//! TCP and TLS listeners with their L4 routes → one [`L4Bind`] per bind that has them.
//!
//! A bind holds either one TCP listener or TLS listeners (Passthrough and Terminate may mix),
//! told apart by hostname. On each listener, routes are placed by their hostnames intersected
//! with the listener's, the oldest route first, so a later route claiming the same hostname
//! (or, on TCP, any second route) stays unused.

use std::collections::HashMap;
use std::sync::Arc;

use agora_proto::resource as pb;

use super::tls::certified_key;
use crate::backend::BackendIr;
use crate::error::{Error, Result};
use crate::l4::{HostTable, L4Bind, L4Choice, L4ListenerIr, L4Mode, L4RouteIr};
use crate::routing::hostname;

/// Whether the listener is TCP or TLS (served by the L4 accept loop).
pub(super) fn is_l4(l: &pb::Listener) -> bool {
    use pb::Protocol as P;
    matches!(
        P::try_from(l.protocol),
        Ok(P::Tcp | P::TlsPassthrough | P::TlsTerminate)
    )
}

/// The L4 binds by bind key, from every TCP and TLS listener and every L4 route.
pub(super) fn binds<'a>(
    listeners: &[&'a pb::Listener],
    routes: &[&pb::L4Route],
    bind_ports: &HashMap<&str, u16>,
    backends: &HashMap<String, Arc<BackendIr>>,
) -> Result<HashMap<&'a str, L4Bind>> {
    let mut by_listener: HashMap<&str, Vec<&pb::L4Route>> = HashMap::new();
    for r in routes {
        by_listener.entry(&r.listener_key).or_default().push(r);
    }
    let mut out: HashMap<&'a str, L4Bind> = HashMap::new();
    for l in listeners.iter().filter(|l| is_l4(l)) {
        if !bind_ports.contains_key(l.bind_key.as_str()) {
            return Err(Error::invalid(
                format!("{}.bindKey", l.key),
                format!("unknown bind {:?}", l.bind_key),
            ));
        }
        let rs = by_listener.remove(l.key.as_str()).unwrap_or_default();
        let ir = Arc::new(listener(l, rs, backends)?);
        let tls = !matches!(ir.mode, L4Mode::Tcp);
        let bind = out.entry(l.bind_key.as_str()).or_insert_with(|| L4Bind {
            tls,
            listeners: HostTable::default(),
        });
        if bind.tls != tls {
            return Err(Error::invalid(
                &l.key,
                "TCP and TLS listeners cannot share a port",
            ));
        }
        if !tls && !bind.listeners.is_empty() {
            return Err(Error::invalid(
                &l.key,
                "a port takes one TCP listener (TCP has no hostname to tell two apart)",
            ));
        }
        if !bind.listeners.insert(&ir.hostname.clone(), ir) {
            return Err(Error::invalid(
                &l.key,
                "two TLS listeners with one hostname on one port",
            ));
        }
    }
    if let Some((key, _)) = by_listener.into_iter().next() {
        return Err(Error::invalid(
            key,
            "L4 route refers to an unknown TCP or TLS listener",
        ));
    }
    Ok(out)
}

fn listener(
    l: &pb::Listener,
    mut routes: Vec<&pb::L4Route>,
    backends: &HashMap<String, Arc<BackendIr>>,
) -> Result<L4ListenerIr> {
    use pb::Protocol as P;
    let protocol = P::try_from(l.protocol).unwrap_or(P::Tcp);
    // A TCP listener has no hostname: it takes every connection on its port.
    let host = if protocol == P::Tcp { "" } else { &l.hostname };
    if !host.is_empty() {
        hostname::validate(host).map_err(|e| Error::invalid(format!("{}.hostname", l.key), e))?;
    }
    let mode = match (protocol, &l.tls) {
        (P::TlsTerminate, Some(t)) => {
            let ck = certified_key(&t.cert_pem, &t.key_pem)
                .map_err(|e| Error::invalid(format!("{}.tls", l.key), e))?;
            L4Mode::Terminate(acceptor(ck))
        }
        (P::TlsTerminate, None) => {
            return Err(Error::invalid(
                format!("{}.tls", l.key),
                "a TLS listener in Terminate mode needs a certificate",
            ));
        }
        (P::TlsPassthrough, _) => L4Mode::Passthrough,
        _ => L4Mode::Tcp,
    };
    // The oldest route first: it keeps the hostnames (or, on TCP, the port) it shares with
    // later ones.
    routes.sort_by(|a, b| {
        (a.creation_timestamp, &a.route_name, &a.key).cmp(&(
            b.creation_timestamp,
            &b.route_name,
            &b.key,
        ))
    });
    let mut table = HostTable::default();
    for r in routes {
        for (i, h) in r.hostnames.iter().enumerate() {
            hostname::validate(h)
                .map_err(|e| Error::invalid(format!("{}.hostnames[{i}]", r.key), e))?;
        }
        if matches!(mode, L4Mode::Tcp) && !r.hostnames.is_empty() {
            return Err(Error::invalid(
                format!("{}.hostnames", r.key),
                "a TCP listener routes by port only; server names need a TLS listener",
            ));
        }
        let ir = Arc::new(route(r, backends));
        // Hostnames that do not meet the listener's are not served here.
        let Some(hosts) = hostname::intersect(host, &r.hostnames) else {
            continue;
        };
        if hosts.is_empty() {
            table.insert("", ir.clone());
        }
        for h in &hosts {
            table.insert(h, ir.clone());
        }
    }
    Ok(L4ListenerIr {
        key: l.key.clone(),
        name: l.name.clone(),
        gateway: l.gateway.clone(),
        hostname: host.to_string(),
        mode,
        routes: table,
    })
}

fn route(r: &pb::L4Route, backends: &HashMap<String, Arc<BackendIr>>) -> L4RouteIr {
    let choices: Vec<L4Choice> = r
        .backends
        .iter()
        .map(|b| {
            let backend = if !b.invalid.is_empty() {
                Err(b.invalid.clone())
            } else {
                match backends.get(&b.backend_key) {
                    None => Err(format!("backend {:?} not found", b.backend_key)),
                    Some(be) => usable(be).map(|()| be.clone()),
                }
            };
            L4Choice {
                backend,
                weight: b.weight,
            }
        })
        .collect();
    L4RouteIr {
        key: r.key.clone(),
        route_name: r.route_name.clone(),
        rule_name: if r.rule_name.is_empty() {
            "0".into()
        } else {
            r.rule_name.clone()
        },
        total_weight: choices.iter().map(|c| c.weight).sum(),
        backends: choices,
    }
}

/// Whether a backend can take raw connections: LLM and MCP backends are HTTP protocols the
/// proxy speaks itself, and upstream TLS is not originated for L4 routes.
fn usable(b: &BackendIr) -> std::result::Result<(), String> {
    if b.ai.is_some() || b.mcp.is_some() {
        return Err(format!(
            "backend {} is an LLM or MCP backend, which takes HTTP, not TCP connections",
            b.name
        ));
    }
    if b.tls.is_some() {
        return Err(format!(
            "backend {} connects over TLS, which TCP and TLS routes do not originate",
            b.name
        ));
    }
    Ok(())
}

/// A TLS acceptor serving one certificate.
fn acceptor(ck: rustls::sign::CertifiedKey) -> tokio_rustls::TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(ck)));
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}
