//! GatewayClasses and Gateways: which Gateways are ours, listener validation (protocol,
//! route kinds, certificates, conflicts), and the Bind / Listener resources of the usable
//! listeners. Routes attach later (`route.rs`), then `GatewayState::finish` writes the status.

use std::collections::BTreeMap;

use agora_proto::resource as pb;
use gateway_api::experimental::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom as From,
    GatewayListenersTlsMode,
};
use serde_json::{Value, json};

use super::grants;
use super::status::{ObjectStatus, condition};
use super::{GATEWAY_GROUP, GatewayResources, generation};
use crate::CONTROLLER_NAME;
use crate::snapshot::{ObjKey, Snapshot};

/// Which namespaces' routes a listener admits.
#[derive(Clone, Debug)]
pub(super) enum AllowedNamespaces {
    Same,
    All,
    Selector {
        labels: Option<BTreeMap<String, String>>,
        expressions: Vec<(String, String, Vec<String>)>,
    },
}

/// A listener as routes see it while attaching.
#[derive(Debug)]
pub(super) struct ListenerState {
    pub name: String,
    pub key: String,
    pub port: i32,
    pub hostname: Option<String>,
    pub allowed: AllowedNamespaces,
    /// Route kinds the listener admits (HTTPRoute and GRPCRoute on HTTP and HTTPS listeners,
    /// TCPRoute on TCP, TLSRoute on TLS, and TCPRoute too on TLS listeners that terminate).
    pub kinds: Vec<String>,
    /// Accepted, not conflicted, references resolved: routes attached here are served.
    pub usable: bool,
    pub attached: i32,
    conditions: Vec<Value>,
}

/// A Gateway of ours, being translated.
#[derive(Debug)]
pub(super) struct GatewayState {
    pub key: ObjKey,
    pub generation: i64,
    /// `status.addresses`, from the Service the deployer made for this Gateway.
    addresses: Vec<Value>,
    pub listeners: Vec<ListenerState>,
    pub resources: GatewayResources,
}

/// Statuses for the GatewayClasses this controller owns.
pub(super) fn classes(s: &Snapshot) -> Vec<ObjectStatus> {
    s.gateway_classes
        .iter()
        .filter(|(_, c)| c.spec.controller_name == CONTROLLER_NAME)
        .map(|(name, c)| {
            let g = generation(&c.metadata);
            ObjectStatus {
                kind: "GatewayClass",
                namespace: String::new(),
                name: name.clone(),
                status: json!({ "conditions": [
                    condition("Accepted", true, "Accepted", "handled by agora", g),
                    condition("SupportedVersion", true, "SupportedVersion", "Gateway API v1.6", g),
                ]})
                .into(),
            }
        })
        .collect()
}

fn ours(s: &Snapshot, class: &str) -> bool {
    s.gateway_classes
        .get(class)
        .is_some_and(|c| c.spec.controller_name == CONTROLLER_NAME)
}

/// Every Gateway whose class is ours, with validated listeners and their resources.
pub(super) fn gateways(s: &Snapshot) -> Vec<GatewayState> {
    s.gateways
        .iter()
        .filter(|(_, g)| ours(s, &g.spec.gateway_class_name))
        .map(|(key, g)| gateway(s, key, g))
        .collect()
}

fn gateway(s: &Snapshot, key: &ObjKey, g: &Gateway) -> GatewayState {
    let gen_ = generation(&g.metadata);
    let mut listeners: Vec<ListenerState> = g
        .spec
        .listeners
        .iter()
        .map(|l| listener(s, key, l, gen_))
        .collect();
    mark_conflicts(&mut listeners, &g.spec.listeners, gen_);

    let mut res = GatewayResources::default();
    let mut bound = std::collections::BTreeSet::new();
    for (l, spec) in listeners.iter().zip(&g.spec.listeners) {
        if !l.usable {
            continue;
        }
        let bind_key = format!("{key}:{}", l.port);
        if bound.insert(l.port) {
            res.binds.push(pb::Bind {
                key: bind_key.clone(),
                address: String::new(),
                port: u32::try_from(l.port).unwrap_or(0),
            });
        }
        let protocol = match spec.protocol.as_str() {
            "HTTPS" => pb::Protocol::Https,
            "HTTP" => pb::Protocol::Http,
            _ => super::l4::protocol(spec).unwrap_or(pb::Protocol::Http),
        };
        let terminates = matches!(protocol, pb::Protocol::Https | pb::Protocol::TlsTerminate);
        res.listeners.push(pb::Listener {
            key: l.key.clone(),
            bind_key,
            gateway: key.to_string(),
            name: l.name.clone(),
            hostname: l.hostname.clone().unwrap_or_default(),
            protocol: protocol as i32,
            tls: if terminates {
                certificate(s, key, spec).ok()
            } else {
                None
            },
        });
    }
    GatewayState {
        key: key.clone(),
        generation: gen_,
        addresses: addresses(s, key),
        listeners,
        resources: res,
    }
}

fn listener(s: &Snapshot, gw: &ObjKey, l: &GatewayListeners, gen_: i64) -> ListenerState {
    let mut conditions = Vec::new();
    let protocol_kinds = protocol_kinds(l);
    let supported_protocol = !protocol_kinds.is_empty();
    let mut accepted = supported_protocol;
    if !supported_protocol {
        conditions.push(condition(
            "Accepted",
            false,
            "UnsupportedProtocol",
            &format!(
                "protocol {} is not supported (HTTP, HTTPS, TCP and TLS are)",
                l.protocol
            ),
            gen_,
        ));
    } else if !(1..=65535).contains(&l.port) {
        accepted = false;
        conditions.push(condition(
            "Accepted",
            false,
            "PortUnavailable",
            "port must be 1..=65535",
            gen_,
        ));
    } else {
        conditions.push(condition("Accepted", true, "Accepted", "", gen_));
    }

    let ar = l.allowed_routes.as_ref();
    let mut resolved = Ok(());
    let mut kinds = Vec::new();
    match ar.and_then(|a| a.kinds.as_ref()) {
        Some(ks) if !ks.is_empty() => {
            for k in ks {
                let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
                let known = protocol_kinds.contains(&k.kind.as_str());
                if group == GATEWAY_GROUP && known {
                    kinds.push(k.kind.clone());
                } else {
                    resolved = Err((
                        "InvalidRouteKinds",
                        format!("route kind {group}/{} is not supported here", k.kind),
                    ));
                }
            }
        }
        _ => kinds.extend(protocol_kinds.iter().map(|k| k.to_string())),
    }
    if resolved.is_ok() && (l.protocol == "HTTPS" || super::l4::terminates(l)) {
        resolved = certificate(s, gw, l).map(|_| ());
    }
    let refs_ok = resolved.is_ok();
    conditions.push(match &resolved {
        Ok(()) => condition("ResolvedRefs", true, "ResolvedRefs", "", gen_),
        Err((reason, msg)) => condition("ResolvedRefs", false, reason, msg, gen_),
    });

    let ns = ar.and_then(|a| a.namespaces.as_ref());
    let allowed = match ns.and_then(|n| n.from.as_ref()) {
        Some(From::All) => AllowedNamespaces::All,
        Some(From::Selector) => {
            let sel = ns.and_then(|n| n.selector.as_ref());
            AllowedNamespaces::Selector {
                labels: sel.and_then(|s| s.match_labels.clone()),
                expressions: sel
                    .and_then(|s| s.match_expressions.as_ref())
                    .into_iter()
                    .flatten()
                    .map(|e| {
                        (
                            e.key.clone(),
                            e.operator.clone(),
                            e.values.clone().unwrap_or_default(),
                        )
                    })
                    .collect(),
            }
        }
        _ => AllowedNamespaces::Same,
    };
    ListenerState {
        name: l.name.clone(),
        key: format!("{gw}/{}", l.name),
        port: l.port,
        // TCP listeners take no hostname (only the port tells them apart).
        hostname: l
            .hostname
            .clone()
            .filter(|h| !h.is_empty() && l.protocol != "TCP"),
        allowed,
        kinds,
        usable: accepted && refs_ok,
        attached: 0,
        conditions,
    }
}

/// The route kinds a listener's protocol (and TLS mode) carries; empty: unsupported protocol.
fn protocol_kinds(l: &GatewayListeners) -> &'static [&'static str] {
    match l.protocol.as_str() {
        "HTTP" | "HTTPS" => &["HTTPRoute", "GRPCRoute"],
        _ => super::l4::listener_kinds(l),
    }
}

/// The load balancer ingress (or cluster IP) of the deployer's Service for this Gateway.
fn addresses(s: &Snapshot, key: &ObjKey) -> Vec<Value> {
    let Some(svc) = s.services.get(key) else {
        return Vec::new();
    };
    let managed = svc
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(crate::deploy::MANAGED_BY.0))
        .is_some_and(|v| v == crate::deploy::MANAGED_BY.1);
    if !managed {
        return Vec::new();
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    let mut out: Vec<Value> = ingress
        .into_iter()
        .flatten()
        .filter_map(|i| {
            i.ip.as_ref()
                .map(|ip| json!({"type": "IPAddress", "value": ip}))
                .or_else(|| {
                    i.hostname
                        .as_ref()
                        .map(|h| json!({"type": "Hostname", "value": h}))
                })
        })
        .collect();
    if out.is_empty()
        && let Some(ip) = svc.spec.as_ref().and_then(|sp| sp.cluster_ip.as_ref())
        && ip != "None"
    {
        out.push(json!({"type": "IPAddress", "value": ip}));
    }
    out
}

/// Listeners on one port must agree on the protocol and differ in hostname.
fn mark_conflicts(ls: &mut [ListenerState], specs: &[GatewayListeners], gen_: i64) {
    let mut conflicted = vec![None; ls.len()];
    for i in 0..ls.len() {
        for j in 0..ls.len() {
            if i == j || ls[i].port != ls[j].port {
                continue;
            }
            if specs[i].protocol != specs[j].protocol {
                conflicted[i] = Some("ProtocolConflict");
            } else if ls[i].hostname == ls[j].hostname && conflicted[i].is_none() {
                conflicted[i] = Some("HostnameConflict");
            }
        }
    }
    for (l, c) in ls.iter_mut().zip(conflicted) {
        match c {
            Some(reason) => {
                l.usable = false;
                l.conditions.push(condition(
                    "Conflicted",
                    true,
                    reason,
                    "another listener on this port conflicts with this one",
                    gen_,
                ));
            }
            None => l
                .conditions
                .push(condition("Conflicted", false, "NoConflicts", "", gen_)),
        }
    }
}

/// The listener's serving certificate from its first certificateRef.
fn certificate(
    s: &Snapshot,
    gw: &ObjKey,
    l: &GatewayListeners,
) -> Result<pb::TlsCertificate, (&'static str, String)> {
    let tls = l.tls.as_ref().ok_or((
        "InvalidCertificateRef",
        format!("a {} listener needs tls.certificateRefs", l.protocol),
    ))?;
    if matches!(tls.mode, Some(GatewayListenersTlsMode::Passthrough)) {
        return Err((
            "UnsupportedValue",
            "TLS passthrough is not supported on HTTPS listeners".into(),
        ));
    }
    let r = tls
        .certificate_refs
        .as_ref()
        .and_then(|r| r.first())
        .ok_or((
            "InvalidCertificateRef",
            "tls.certificateRefs is empty".to_string(),
        ))?;
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    if !group.is_empty() || kind != "Secret" {
        return Err((
            "InvalidCertificateRef",
            format!("certificate ref kind {group}/{kind} is not supported (core Secret is)"),
        ));
    }
    let ns = r.namespace.as_deref().unwrap_or(&gw.namespace);
    let from = grants::From {
        group: GATEWAY_GROUP,
        kind: "Gateway",
        namespace: &gw.namespace,
    };
    let to = grants::To {
        group: "",
        kind: "Secret",
        namespace: ns,
        name: &r.name,
    };
    if !grants::permitted(s, &from, &to) {
        return Err((
            "RefNotPermitted",
            format!(
                "no ReferenceGrant in {ns} lets this Gateway use Secret {}",
                r.name
            ),
        ));
    }
    let secret = s.secrets.get(&ObjKey::new(ns, &r.name)).ok_or((
        "InvalidCertificateRef",
        format!("Secret {ns}/{} not found", r.name),
    ))?;
    let field = |k: &str| -> Option<Vec<u8>> {
        secret
            .data
            .as_ref()
            .and_then(|d| d.get(k))
            .map(|b| b.0.clone())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|v| v.as_bytes().to_vec())
            })
    };
    let (Some(cert), Some(key)) = (field("tls.crt"), field("tls.key")) else {
        return Err((
            "InvalidCertificateRef",
            format!("Secret {ns}/{} lacks tls.crt or tls.key", r.name),
        ));
    };
    let pem = |b: &[u8]| String::from_utf8_lossy(b).contains("-----BEGIN");
    if !pem(&cert) || !pem(&key) {
        return Err((
            "InvalidCertificateRef",
            format!("Secret {ns}/{} does not hold PEM data", r.name),
        ));
    }
    Ok(pb::TlsCertificate {
        cert_pem: cert,
        key_pem: key,
    })
}

impl GatewayState {
    /// The Gateway's resources and status, once routes have attached.
    pub(super) fn finish(self) -> (String, GatewayResources, ObjectStatus) {
        let g = self.generation;
        let invalid = self.listeners.iter().filter(|l| !l.usable).count();
        let programmed = self.listeners.iter().any(|l| l.usable);
        let listeners: Vec<Value> = self
            .listeners
            .into_iter()
            .map(|l| {
                let mut conditions = l.conditions;
                conditions.push(if l.usable {
                    condition("Programmed", true, "Programmed", "", g)
                } else {
                    condition("Programmed", false, "Invalid", "listener is not valid", g)
                });
                json!({
                    "name": l.name,
                    "attachedRoutes": l.attached,
                    "supportedKinds": l.kinds.iter()
                        .map(|k| json!({"group": GATEWAY_GROUP, "kind": k}))
                        .collect::<Vec<_>>(),
                    "conditions": conditions,
                })
            })
            .collect();
        let accepted = if invalid == 0 {
            condition("Accepted", true, "Accepted", "", g)
        } else {
            condition(
                "Accepted",
                true,
                "ListenersNotValid",
                &format!("{invalid} listener(s) are not valid; see listener conditions"),
                g,
            )
        };
        let programmed = if programmed {
            condition("Programmed", true, "Programmed", "", g)
        } else {
            condition("Programmed", false, "Invalid", "no listener is valid", g)
        };
        let status = ObjectStatus {
            kind: "Gateway",
            namespace: self.key.namespace.clone(),
            name: self.key.name.clone(),
            status: if self.addresses.is_empty() {
                json!({"conditions": [accepted, programmed], "listeners": listeners})
            } else {
                json!({
                    "addresses": self.addresses,
                    "conditions": [accepted, programmed],
                    "listeners": listeners,
                })
            }
            .into(),
        };
        (self.key.to_string(), self.resources, status)
    }
}
