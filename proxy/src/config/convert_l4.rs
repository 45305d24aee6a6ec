//! TCP and TLS listeners of the local config → a Listener and its L4Routes.
//!
//! A `TCP` listener takes no hostname and at most one route; a `TLS` listener's routes name
//! the server names they take (`hostnames`; none takes every name), each name routed by one
//! route only. Routes take `name`, `hostnames` and `backendRefs` (with `weight`); the HTTP
//! fields (matches, filters, timeouts, retries, body settings) are errors here.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use agora_proto::resource::{self as pb, resource::Kind};

use super::convert::listener_tls;
use super::schema::*;
use crate::error::{Error, Result};

/// The keys and names a listener's resources carry.
pub(super) struct Keys<'a> {
    pub bind: &'a str,
    pub listener: &'a str,
    pub name: &'a str,
    pub gateway: &'a str,
}

/// The Listener and L4Routes of a `TCP` or `TLS` listener at `at`.
pub(super) fn listener(
    l: &ListenerConfig,
    at: &str,
    keys: &Keys<'_>,
    backends: &HashSet<&str>,
    base: &Path,
) -> Result<Vec<Kind>> {
    let (protocol, tls) = match (l.protocol, &l.tls) {
        (ListenerProtocol::Tcp, None) => (pb::Protocol::Tcp, None),
        (ListenerProtocol::Tcp, Some(_)) => {
            return Err(Error::invalid(
                format!("{at}.tls"),
                "tls is not allowed with protocol: TCP",
            ));
        }
        (ListenerProtocol::Tls, None) => {
            return Err(Error::invalid(
                format!("{at}.tls"),
                "TLS listeners need tls: `mode: Passthrough`, or a certificate to terminate with",
            ));
        }
        (ListenerProtocol::Tls, Some(t)) => match t.mode.unwrap_or_default() {
            TlsMode::Passthrough => {
                let cert = [&t.cert, &t.cert_file, &t.key, &t.key_file];
                if cert.iter().any(|v| v.is_some()) {
                    return Err(Error::invalid(
                        format!("{at}.tls"),
                        "Passthrough does not terminate TLS: no certificate or key",
                    ));
                }
                (pb::Protocol::TlsPassthrough, None)
            }
            TlsMode::Terminate => (
                pb::Protocol::TlsTerminate,
                Some(listener_tls(t, &format!("{at}.tls"), base)?),
            ),
        },
        (ListenerProtocol::Http | ListenerProtocol::Https, _) => {
            return Err(Error::invalid(
                format!("{at}.protocol"),
                "not a TCP or TLS listener",
            ));
        }
    };
    let tcp = protocol == pb::Protocol::Tcp;
    if tcp && l.hostname.is_some() {
        return Err(Error::invalid(
            format!("{at}.hostname"),
            "TCP listeners take no hostname (only the port tells them apart)",
        ));
    }
    if tcp && l.routes.len() > 1 {
        return Err(Error::invalid(
            format!("{at}.routes"),
            "a TCP listener takes one route: every connection goes to it",
        ));
    }
    let mut out = vec![Kind::Listener(pb::Listener {
        key: keys.listener.to_string(),
        bind_key: keys.bind.to_string(),
        gateway: keys.gateway.to_string(),
        name: keys.name.to_string(),
        hostname: l.hostname.clone().unwrap_or_default(),
        protocol: protocol as i32,
        tls,
    })];
    // Server name (empty: every name) → the route that takes it.
    let mut claimed: HashMap<String, String> = HashMap::new();
    for (ri, r) in l.routes.iter().enumerate() {
        let at = format!("{at}.routes[{ri}]");
        let rname = r.name.clone().unwrap_or_else(|| format!("route{ri}"));
        let http_only = !r.matches.is_empty()
            || !r.filters.is_empty()
            || r.timeouts.is_some()
            || r.retry.is_some()
            || r.max_request_body_bytes.is_some()
            || r.buffer_request_body;
        if http_only {
            return Err(Error::invalid(
                at,
                "TCP and TLS routes take name, hostnames and backendRefs only",
            ));
        }
        if tcp && !r.hostnames.is_empty() {
            return Err(Error::invalid(
                format!("{at}.hostnames"),
                "a TCP listener routes by port only; server names need a TLS listener",
            ));
        }
        let names = if r.hostnames.is_empty() {
            vec![String::new()]
        } else {
            r.hostnames.clone()
        };
        for (hi, h) in names.iter().enumerate() {
            if let Some(other) = claimed.insert(h.clone(), rname.clone()) {
                let what = if h.is_empty() {
                    "every server name".to_string()
                } else {
                    format!("{h:?}")
                };
                return Err(Error::invalid(
                    if h.is_empty() {
                        format!("{at}.name")
                    } else {
                        format!("{at}.hostnames[{hi}]")
                    },
                    format!("route {other:?} already takes {what}"),
                ));
            }
        }
        let mut refs = Vec::new();
        for (i, b) in r.backend_refs.iter().enumerate() {
            let at = format!("{at}.backendRefs[{i}]");
            if !backends.contains(b.name.as_str()) {
                return Err(Error::invalid(
                    format!("{at}.name"),
                    format!("unknown backend {:?}", b.name),
                ));
            }
            if !b.filters.is_empty() {
                return Err(Error::invalid(
                    format!("{at}.filters"),
                    "filters do not apply to TCP and TLS routes",
                ));
            }
            refs.push(pb::RouteBackend {
                backend_key: format!("backend/{}", b.name),
                weight: b.weight.unwrap_or(1),
                ..Default::default()
            });
        }
        out.push(Kind::L4Route(pb::L4Route {
            key: format!("{}/{rname}", keys.listener),
            listener_key: keys.listener.to_string(),
            route_name: format!("{}/{rname}", keys.gateway),
            rule_name: String::new(),
            hostnames: r.hostnames.clone(),
            backends: refs,
            creation_timestamp: 0,
        }));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    fn err(yaml: &str) -> String {
        load_str(yaml, std::path::Path::new("."))
            .expect_err("invalid")
            .to_string()
    }

    const BACKENDS: &str = "backends: [{name: db, endpoints: [{host: 127.0.0.1, port: 5432}]}]";

    #[test]
    fn tcp_and_tls_listeners_convert() {
        let yaml = format!(
            "gateway: ns/gw
binds:
- port: 5432
  listeners:
  - name: pg
    protocol: TCP
    routes: [{{name: db, backendRefs: [{{name: db, weight: 2}}]}}]
- port: 8443
  listeners:
  - name: sni
    protocol: TLS
    tls: {{mode: Passthrough}}
    routes:
    - {{name: a, hostnames: [a.example.com], backendRefs: [{{name: db}}]}}
    - {{name: rest, backendRefs: [{{name: db}}]}}
{BACKENDS}"
        );
        let loaded = load_str(&yaml, std::path::Path::new(".")).expect("valid");
        let ir = crate::ir::build("ns/gw", loaded.resources, &Default::default()).expect("ir");
        let pg = ir.binds[&5432].l4.clone().expect("TCP bind");
        let (l, r) = crate::l4::decide(&pg, None).expect("routed");
        assert_eq!((l.name.as_str(), r.route_name.as_str()), ("pg", "ns/gw/db"));
        assert_eq!(r.backends[0].weight, 2);
        let tls = ir.binds[&8443].l4.clone().expect("TLS bind");
        let route = |sni| crate::l4::decide(&tls, Some(sni)).map(|(_, r)| r.route_name.clone());
        assert_eq!(route("a.example.com").ok().as_deref(), Some("ns/gw/a"));
        assert_eq!(route("b.example.com").ok().as_deref(), Some("ns/gw/rest"));
    }

    #[test]
    fn what_tcp_and_tls_listeners_refuse() {
        let cases = [
            (
                "protocol: TCP\n    tls: {mode: Passthrough}",
                "tls is not allowed",
            ),
            ("protocol: TCP\n    hostname: a.test", "take no hostname"),
            ("protocol: TLS", "TLS listeners need tls"),
            (
                "protocol: TLS\n    tls: {mode: Passthrough, cert: x}",
                "no certificate",
            ),
            (
                "protocol: TLS\n    tls: {mode: Terminate}",
                "cert or certFile is required",
            ),
            (
                "protocol: HTTPS\n    tls: {mode: Passthrough}",
                "passthrough needs protocol: TLS",
            ),
            (
                "protocol: TCP\n    routes: [{backendRefs: [{name: db}]}, {backendRefs: [{name: db}]}]",
                "takes one route",
            ),
            (
                "protocol: TCP\n    routes: [{hostnames: [a.test], backendRefs: [{name: db}]}]",
                "routes by port only",
            ),
            (
                "protocol: TCP\n    routes: [{matches: [{path: {value: /}}], backendRefs: [{name: db}]}]",
                "name, hostnames and backendRefs only",
            ),
            (
                "protocol: TLS\n    tls: {mode: Passthrough}\n    routes: [{name: x, hostnames: [a.test], backendRefs: [{name: db}]}, {hostnames: [b.test, a.test], backendRefs: [{name: db}]}]",
                "routes[1].hostnames[1]: route \"x\" already takes \"a.test\"",
            ),
            (
                "protocol: TCP\n    routes: [{backendRefs: [{name: nope}]}]",
                "unknown backend",
            ),
        ];
        for (listener, want) in cases {
            let yaml = format!(
                "binds:\n- port: 9000\n  listeners:\n  - name: l\n    {listener}\n{BACKENDS}"
            );
            let e = err(&yaml);
            assert!(e.contains(want), "{listener}: {e}");
        }
    }
}
