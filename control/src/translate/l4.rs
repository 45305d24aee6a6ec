//! TCP and TLS listeners, and the TCPRoutes and TLSRoutes that attach to them.
//!
//! Listeners: `TCP` carries TCPRoutes; `TLS` with `tls.mode: Passthrough` carries TLSRoutes
//! (the proxy reads the server name from the ClientHello and forwards the bytes unchanged);
//! `TLS` in `Terminate` mode (the default) needs a certificate like HTTPS, and carries
//! TLSRoutes and TCPRoutes (the proxy terminates TLS and forwards the plaintext).
//!
//! Routes attach like HTTPRoutes (`route.rs`): parentRef sectionName/port, allowedRoutes, and
//! for a TLSRoute the intersection of its hostnames with the listener's. Gateway API v1.6
//! gives each route one rule (v1 allows exactly one): an older object's further rules are
//! dropped, which its status reports (`PartiallyInvalid`, "Dropped Rule…"), and its first
//! rule becomes one L4Route per attached listener. Several routes may attach to one listener
//! and all are accepted and counted; for the connections they share (a TCP listener's, or
//! one server name's) the proxy uses the oldest. Backends are core Services; a reference
//! that does not resolve keeps its weight, and that share of connections is refused.

use agora_proto::resource as pb;
use gateway_api::experimental::gateways::{GatewayListeners, GatewayListenersTlsMode};
use gateway_api::experimental::httproutes::HttpRouteParentRefs;
use gateway_api::experimental::{tcproutes::TcpRoute, tlsroutes::TlsRoute};
use serde_json::{Value, json};

use super::backend::{self, BackendRef, RefError};
use super::gateway::GatewayState;
use super::hostname::route_fits;
use super::route::{accepted, admits, parent_ref};
use super::status::{ObjectStatus, condition};
use super::{GATEWAY_GROUP, Output, generation};
use crate::CONTROLLER_NAME;
use crate::snapshot::{ObjKey, Snapshot};

/// The route kinds a TCP or TLS listener carries; empty for other protocols.
pub(super) fn listener_kinds(l: &GatewayListeners) -> &'static [&'static str] {
    match l.protocol.as_str() {
        "TCP" => &["TCPRoute"],
        "TLS" if passthrough(l) => &["TLSRoute"],
        "TLS" => &["TLSRoute", "TCPRoute"],
        _ => &[],
    }
}

/// Whether the listener is TLS in Terminate mode (it then needs a certificate).
pub(super) fn terminates(l: &GatewayListeners) -> bool {
    l.protocol == "TLS" && !passthrough(l)
}

/// The resource protocol of a TCP or TLS listener.
pub(super) fn protocol(l: &GatewayListeners) -> Option<pb::Protocol> {
    match l.protocol.as_str() {
        "TCP" => Some(pb::Protocol::Tcp),
        "TLS" if passthrough(l) => Some(pb::Protocol::TlsPassthrough),
        "TLS" => Some(pb::Protocol::TlsTerminate),
        _ => None,
    }
}

fn passthrough(l: &GatewayListeners) -> bool {
    l.tls
        .as_ref()
        .and_then(|t| t.mode.as_ref())
        .is_some_and(|m| matches!(m, GatewayListenersTlsMode::Passthrough))
}

/// A TCPRoute or TLSRoute in the shape both kinds share.
struct L4Route<'a> {
    key: &'a ObjKey,
    kind: &'static str,
    generation: i64,
    created: i64,
    /// SNI hostnames (TLSRoute); none for a TCPRoute.
    hostnames: Vec<String>,
    parent_refs: Vec<HttpRouteParentRefs>,
    /// Each rule's name and backendRefs.
    rules: Vec<(Option<String>, Vec<Ref>)>,
}

/// A backendRef of either kind.
struct Ref {
    group: Option<String>,
    kind: Option<String>,
    namespace: Option<String>,
    name: String,
    port: Option<i32>,
    weight: Option<i32>,
}

macro_rules! l4_route {
    ($key:expr, $kind:literal, $r:expr, $hostnames:expr) => {{
        let r = $r;
        L4Route {
            key: $key,
            kind: $kind,
            generation: generation(&r.metadata),
            created: r
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_second()),
            hostnames: $hostnames,
            parent_refs: r
                .spec
                .parent_refs
                .iter()
                .flatten()
                .map(|p| HttpRouteParentRefs {
                    group: p.group.clone(),
                    kind: p.kind.clone(),
                    name: p.name.clone(),
                    namespace: p.namespace.clone(),
                    port: p.port,
                    section_name: p.section_name.clone(),
                })
                .collect(),
            rules: r
                .spec
                .rules
                .iter()
                .map(|rule| {
                    let refs = rule
                        .backend_refs
                        .iter()
                        .map(|b| Ref {
                            group: b.group.clone(),
                            kind: b.kind.clone(),
                            namespace: b.namespace.clone(),
                            name: b.name.clone(),
                            port: b.port,
                            weight: b.weight,
                        })
                        .collect();
                    (rule.name.clone(), refs)
                })
                .collect(),
        }
    }};
}

impl<'a> L4Route<'a> {
    fn tcp(key: &'a ObjKey, r: &TcpRoute) -> Self {
        l4_route!(key, "TCPRoute", r, Vec::new())
    }

    fn tls(key: &'a ObjKey, r: &TlsRoute) -> Self {
        l4_route!(key, "TLSRoute", r, r.spec.hostnames.clone())
    }

    /// Prefix of the L4Route keys, so a TCPRoute and a TLSRoute of one name stay apart.
    fn prefix(&self) -> &'static str {
        if self.kind == "TCPRoute" {
            "tcp:"
        } else {
            "tls:"
        }
    }
}

/// Attaches and translates every TCPRoute and TLSRoute.
pub(super) fn routes(s: &Snapshot, gws: &mut [GatewayState], out: &mut Output) {
    let tcp = s.tcp_routes.iter().map(|(k, r)| L4Route::tcp(k, r));
    let tls = s.tls_routes.iter().map(|(k, r)| L4Route::tls(k, r));
    for r in tcp.chain(tls).collect::<Vec<_>>() {
        route(s, gws, out, &r);
    }
}

fn route(s: &Snapshot, gws: &mut [GatewayState], out: &mut Output, r: &L4Route<'_>) {
    let g = r.generation;
    let mut unresolved: Option<RefError> = None;
    let rule = match (r.rules.first(), bad_hostname(&r.hostnames)) {
        (_, Some(h)) => Err(format!(
            "hostname {h:?} is not valid (lowercase DNS labels, an optional leading '*.', no IP address)"
        )),
        (None, None) => Err(format!("a {} needs one rule", r.kind)),
        (Some((name, refs)), None) => Ok(rule(s, out, r, name.as_deref(), refs, &mut unresolved)),
    };
    let dropped = (rule.is_ok() && r.rules.len() > 1).then(|| {
        let names: Vec<String> = r.rules[1..]
            .iter()
            .enumerate()
            .map(|(i, (name, _))| name.clone().unwrap_or_else(|| (i + 1).to_string()))
            .collect();
        condition(
            "PartiallyInvalid",
            true,
            "UnsupportedValue",
            &format!(
                "Dropped Rule(s) {}: a {} has one rule (Gateway API v1 allows exactly one); \
                 the first is used",
                names.join(", "),
                r.kind
            ),
            g,
        )
    });
    let mut parents = Vec::new();
    for p in &r.parent_refs {
        let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let parent_kind = p.kind.as_deref().unwrap_or("Gateway");
        if group != GATEWAY_GROUP || parent_kind != "Gateway" {
            continue;
        }
        let ns = p.namespace.as_deref().unwrap_or(&r.key.namespace);
        let Some(gw) = gws
            .iter_mut()
            .find(|g| g.key.namespace == ns && g.key.name == p.name)
        else {
            // Not a Gateway of ours (or none at all): another controller reports it.
            continue;
        };
        let accepted = match &rule {
            Err(msg) => condition("Accepted", false, "UnsupportedValue", msg, g),
            Ok(rule) => attach(s, r, p, gw, rule),
        };
        let resolved = match &unresolved {
            None => condition("ResolvedRefs", true, "ResolvedRefs", "", g),
            Some(e) => condition("ResolvedRefs", false, e.reason, &e.message, g),
        };
        let mut conditions = vec![accepted, resolved];
        conditions.extend(dropped.clone());
        parents.push(json!({
            "parentRef": parent_ref(p, ns),
            "controllerName": CONTROLLER_NAME,
            "conditions": conditions,
        }));
    }
    if !parents.is_empty() {
        out.statuses.push(ObjectStatus {
            kind: r.kind,
            namespace: r.key.namespace.clone(),
            name: r.key.name.clone(),
            status: json!({ "parents": parents }).into(),
        });
    }
}

/// The route's (first) rule as an L4Route template (key and listener set on attachment).
fn rule(
    s: &Snapshot,
    out: &mut Output,
    r: &L4Route<'_>,
    name: Option<&str>,
    refs: &[Ref],
    unresolved: &mut Option<RefError>,
) -> pb::L4Route {
    let backends = refs
        .iter()
        .map(|b| {
            let group = b.group.as_deref().unwrap_or("");
            let kind = b.kind.as_deref().unwrap_or("Service");
            let resolved = if group.is_empty() && kind == "Service" {
                backend::resolve(
                    s,
                    out,
                    r.key,
                    &BackendRef::new(None, None, b.namespace.as_deref(), &b.name, b.port, r.kind),
                )
            } else {
                Err(RefError {
                    reason: "InvalidKind",
                    message: format!(
                        "backendRef kind {group}/{kind} is not supported on a {} (core \
                         Service is)",
                        r.kind
                    ),
                })
            };
            let mut rb = pb::RouteBackend {
                weight: b.weight.map_or(1, |w| u32::try_from(w).unwrap_or(0)),
                ..Default::default()
            };
            match resolved {
                Ok(k) => rb.backend_key = k,
                Err(e) => {
                    rb.invalid = e.message.clone();
                    unresolved.get_or_insert(e);
                }
            }
            rb
        })
        .collect();
    pb::L4Route {
        route_name: r.key.to_string(),
        rule_name: name.unwrap_or("0").to_string(),
        hostnames: r.hostnames.clone(),
        backends,
        creation_timestamp: r.created,
        ..Default::default()
    }
}

/// Attaches the rule to the Gateway's listeners that admit it; returns the Accepted
/// condition for this parent.
fn attach(
    s: &Snapshot,
    r: &L4Route<'_>,
    p: &HttpRouteParentRefs,
    gw: &mut GatewayState,
    rule: &pb::L4Route,
) -> Value {
    let g = r.generation;
    let gw_ns = gw.key.namespace.clone();
    let (mut candidates, mut not_allowed, mut attached) = (0, 0, 0);
    for l in gw.listeners.iter_mut() {
        if p.section_name.as_deref().is_some_and(|sn| sn != l.name) {
            continue;
        }
        if p.port.is_some_and(|port| port != l.port) {
            continue;
        }
        candidates += 1;
        if !admits(s, l, r.kind, &gw_ns, &r.key.namespace) {
            not_allowed += 1;
            continue;
        }
        if !route_fits(l.hostname.as_deref(), &r.hostnames) {
            continue;
        }
        attached += 1;
        l.attached += 1;
        if l.usable {
            let mut x = rule.clone();
            x.key = format!("{}{}/0@{}", r.prefix(), r.key, l.key);
            x.listener_key = l.key.clone();
            gw.resources.l4_routes.push(x);
        }
    }
    accepted(attached, candidates, not_allowed, " (or protocol)", g)
}

/// The first hostname that is not a valid SNI pattern (lowercase DNS labels, optionally one
/// leading `*.`, not an IP address), which the proxy would refuse.
fn bad_hostname(hostnames: &[String]) -> Option<&str> {
    hostnames
        .iter()
        .find(|h| {
            let body = h.strip_prefix("*.").unwrap_or(h);
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            body.is_empty()
                || body.len() > 253
                || h.parse::<std::net::IpAddr>().is_ok()
                || !body.split('.').all(label_ok)
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames() {
        let v = |h: &[&str]| {
            bad_hostname(&h.iter().map(|s| s.to_string()).collect::<Vec<_>>()).map(str::to_string)
        };
        assert_eq!(v(&["a.example.com", "*.example.com", "x"]), None);
        for bad in ["Upper.com", "1.2.3.4", "*.*.com", "a..b", "*.", "-a.com"] {
            assert_eq!(v(&["ok.com", bad]).as_deref(), Some(bad));
        }
    }
}
