//! HTTPRoutes (and GRPCRoutes, rewritten into HTTPRoutes by `grpc.rs`): attach to the listeners of our Gateways (parentRef sectionName/port,
//! allowedRoutes, hostname intersection), translate each rule into one Route per attached
//! listener, and write the per-parent status (Accepted, ResolvedRefs).

use std::str::FromStr;

use agora_proto::resource as pb;
use gateway_api::experimental::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesFilters,
    HttpRouteRulesFiltersType as FT, HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType as HT,
    HttpRouteRulesMatchesPathType as PT, HttpRouteRulesMatchesQueryParamsType as QT,
};
use serde_json::{Value, json};

use super::backend::{self, BackendRef, RefError};
use super::filters::{FilterError, filter};
use super::gateway::{AllowedNamespaces, GatewayState, ListenerState};
use super::hostname::{route_fits, selector_matches};
use super::memo::{self, Memo, Object, Recorder};
use super::status::{ObjectStatus, condition, object};
use super::{GATEWAY_GROUP, Output, generation};
use crate::CONTROLLER_NAME;
use crate::snapshot::{ObjKey, Snapshot};

/// A rule translated independently of the listener it lands on.
struct Rule {
    index: u32,
    name: String,
    template: pb::Route,
}

/// Attaches and translates every HTTPRoute and GRPCRoute. With a `memo`, routes unchanged
/// since its last translation replay what they produced then (see `memo.rs`).
pub(super) fn routes(
    s: &Snapshot,
    gws: &mut [GatewayState],
    out: &mut Output,
    mut memo: Option<&mut Memo>,
) {
    let http = s
        .http_routes
        .iter()
        .map(|(k, r)| (k, "HTTPRoute", Object::Http(r.clone())));
    let grpc = s
        .grpc_routes
        .iter()
        .map(|(k, r)| (k, "GRPCRoute", Object::Grpc(r.clone())));
    for (key, kind, object) in http.chain(grpc) {
        if let Some(done) = memo.as_ref().and_then(|m| m.recall(kind, key, &object)) {
            memo::replay(&done, gws, out);
            continue;
        }
        let r = match &object {
            Object::Http(r) => std::borrow::Cow::Borrowed(&**r),
            Object::Grpc(g) => match super::grpc::as_http(g) {
                Ok(r) => std::borrow::Cow::Owned(r),
                Err(e) => {
                    tracing::warn!(route = %key, error = %e, "GRPCRoute cannot be translated");
                    continue;
                }
            },
        };
        match memo.as_deref_mut() {
            Some(m) => {
                let recorder = Recorder::before(gws, &candidates(gws, key, &r), out);
                route(s, gws, out, key, kind, &r);
                m.remember(kind, key, object, recorder.after(gws, out));
            }
            None => route(s, gws, out, key, kind, &r),
        }
    }
}

/// Indices of the Gateways a route's parentRefs may name.
fn candidates(gws: &[GatewayState], key: &ObjKey, r: &HttpRoute) -> Vec<usize> {
    let mut v: Vec<usize> = r
        .spec
        .parent_refs
        .iter()
        .flatten()
        .filter_map(|p| {
            let ns = p.namespace.as_deref().unwrap_or(&key.namespace);
            gws.iter()
                .position(|g| g.key.namespace == ns && g.key.name == p.name)
        })
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Translates one route: its rules, attached to the listeners of our Gateways that admit
/// it, and its status.
fn route(
    s: &Snapshot,
    gws: &mut [GatewayState],
    out: &mut Output,
    key: &ObjKey,
    kind: &'static str,
    r: &HttpRoute,
) {
    let g = generation(&r.metadata);
    let hostnames = r.spec.hostnames.clone().unwrap_or_default();
    let mut unresolved: Option<RefError> = None;
    let rules = rules(s, out, key, r, kind, &mut unresolved);
    let mut parents = Vec::new();
    for p in r.spec.parent_refs.iter().flatten() {
        let group = p.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let parent_kind = p.kind.as_deref().unwrap_or("Gateway");
        if group != GATEWAY_GROUP || parent_kind != "Gateway" {
            continue;
        }
        let ns = p.namespace.as_deref().unwrap_or(&key.namespace);
        let Some(gw) = gws
            .iter_mut()
            .find(|g| g.key.namespace == ns && g.key.name == p.name)
        else {
            // Not a Gateway of ours (or none at all): another controller reports it.
            continue;
        };
        let accepted = match &rules {
            Err(msg) => condition("Accepted", false, "UnsupportedValue", msg, g),
            Ok(rules) => attach(s, key, kind, &hostnames, p, gw, rules, g),
        };
        let resolved = match &unresolved {
            None => condition("ResolvedRefs", true, "ResolvedRefs", "", g),
            Some(e) => condition("ResolvedRefs", false, e.reason, &e.message, g),
        };
        parents.push(object([
            ("parentRef", parent_ref(p, ns)),
            ("controllerName", CONTROLLER_NAME.into()),
            ("conditions", Value::Array(vec![accepted, resolved])),
        ]));
    }
    if !parents.is_empty() {
        out.statuses.push(ObjectStatus {
            kind,
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            status: object([("parents", Value::Array(parents))]).into(),
        });
    }
}

pub(super) fn parent_ref(p: &HttpRouteParentRefs, ns: &str) -> Value {
    let mut v = json!({
        "group": GATEWAY_GROUP,
        "kind": "Gateway",
        "namespace": ns,
        "name": p.name,
    });
    if let Some(sn) = &p.section_name {
        v["sectionName"] = json!(sn);
    }
    if let Some(port) = p.port {
        v["port"] = json!(port);
    }
    v
}

/// Attaches the route's rules to the Gateway's listeners that admit them; returns the
/// Accepted condition for this parent.
#[allow(clippy::too_many_arguments)]
fn attach(
    s: &Snapshot,
    key: &ObjKey,
    kind: &str,
    hostnames: &[String],
    p: &HttpRouteParentRefs,
    gw: &mut GatewayState,
    rules: &[Rule],
    g: i64,
) -> Value {
    let gw_ns = gw.key.namespace.clone();
    let mut candidates = 0;
    let mut not_allowed = 0;
    let mut attached = 0;
    for l in gw.listeners.iter_mut() {
        if p.section_name.as_deref().is_some_and(|sn| sn != l.name) {
            continue;
        }
        if p.port.is_some_and(|port| port != l.port) {
            continue;
        }
        candidates += 1;
        if !admits(s, l, kind, &gw_ns, &key.namespace) {
            not_allowed += 1;
            continue;
        }
        if !route_fits(l.hostname.as_deref(), hostnames) {
            continue;
        }
        attached += 1;
        l.attached += 1;
        if l.usable {
            for rule in rules {
                let mut r = rule.template.clone();
                let prefix = if kind == "GRPCRoute" { "grpc:" } else { "" };
                r.key = format!("{prefix}{key}/{}@{}", rule.index, l.key);
                r.listener_key = l.key.clone();
                r.rule_name.clone_from(&rule.name);
                gw.resources.routes.push(std::sync::Arc::new(r));
            }
        }
    }
    accepted(attached, candidates, not_allowed, "", g)
}

/// The Accepted condition of a route for one parent, from how many listeners the parentRef
/// selected (`candidates`), how many of those refused the route's kind or namespace
/// (`not_allowed`, explained by `why_not_allowed` after the usual message) and how many took
/// it (`attached`).
pub(super) fn accepted(
    attached: usize,
    candidates: usize,
    not_allowed: usize,
    why_not_allowed: &str,
    g: i64,
) -> Value {
    if attached > 0 {
        condition("Accepted", true, "Accepted", "", g)
    } else if candidates == 0 {
        condition(
            "Accepted",
            false,
            "NoMatchingParent",
            "no listener matches the parentRef's sectionName/port",
            g,
        )
    } else if not_allowed == candidates {
        condition(
            "Accepted",
            false,
            "NotAllowedByListeners",
            &format!("the listeners' allowedRoutes{why_not_allowed} do not admit this route"),
            g,
        )
    } else {
        condition(
            "Accepted",
            false,
            "NoMatchingListenerHostname",
            "no listener hostname intersects the route's hostnames",
            g,
        )
    }
}

pub(super) fn admits(
    s: &Snapshot,
    l: &ListenerState,
    kind: &str,
    gw_ns: &str,
    route_ns: &str,
) -> bool {
    if !l.kinds.iter().any(|k| k == kind) {
        return false;
    }
    match &l.allowed {
        AllowedNamespaces::Same => gw_ns == route_ns,
        AllowedNamespaces::All => true,
        AllowedNamespaces::Selector {
            labels,
            expressions,
        } => selector_matches(labels.as_ref(), expressions, &s.namespace_labels(route_ns)),
    }
}

/// Translates every rule. `Err` means the route cannot be accepted (and says why);
/// unresolved backendRefs only set `unresolved` (their share of traffic answers 500).
fn rules(
    s: &Snapshot,
    out: &mut Output,
    key: &ObjKey,
    r: &HttpRoute,
    kind: &'static str,
    unresolved: &mut Option<RefError>,
) -> Result<Vec<Rule>, String> {
    let created = r
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_second());
    let mut rules = Vec::new();
    for (i, rule) in r.spec.rules.iter().flatten().enumerate() {
        let index = u32::try_from(i).unwrap_or(u32::MAX);
        let name = rule.name.clone().unwrap_or_else(|| i.to_string());
        let ctx = format!("rules[{i}]");
        let mut template = pb::Route {
            route_name: key.to_string(),
            hostnames: r.spec.hostnames.clone().unwrap_or_default(),
            creation_timestamp: created,
            rule_index: index,
            ..Default::default()
        };
        for m in rule.matches.iter().flatten() {
            template
                .matches
                .push(route_match(m).map_err(|e| format!("{ctx}: {e}"))?);
        }
        template.filters = filters(s, out, key, kind, rule.filters.iter().flatten(), unresolved)
            .map_err(|e| format!("{ctx}: {e}"))?;
        for (j, b) in rule.backend_refs.iter().flatten().enumerate() {
            let resolved = backend::resolve(
                s,
                out,
                key,
                &BackendRef::new(
                    b.group.as_deref(),
                    b.kind.as_deref(),
                    b.namespace.as_deref(),
                    &b.name,
                    b.port,
                    kind,
                ),
            );
            let bfilters: Vec<HttpRouteRulesFilters> = b
                .filters
                .iter()
                .flatten()
                .map(|f| serde_json::to_value(f).and_then(serde_json::from_value))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("{ctx}.backendRefs[{j}].filters: {e}"))?;
            let mut rb = pb::RouteBackend {
                weight: b.weight.map_or(1, |w| u32::try_from(w).unwrap_or(0)),
                filters: filters(s, out, key, kind, bfilters.iter(), unresolved)
                    .map_err(|e| format!("{ctx}.backendRefs[{j}]: {e}"))?,
                ..Default::default()
            };
            match resolved {
                Ok(k) => rb.backend_key = k,
                Err(e) => {
                    rb.invalid = e.message.clone();
                    unresolved.get_or_insert(e);
                }
            }
            template.backends.push(rb);
        }
        timeouts_and_retry(rule, &mut template).map_err(|e| format!("{ctx}: {e}"))?;
        rules.push(Rule {
            index,
            name,
            template,
        });
    }
    Ok(rules)
}

fn filters<'a>(
    s: &Snapshot,
    out: &mut Output,
    key: &ObjKey,
    kind: &'static str,
    fs: impl Iterator<Item = &'a HttpRouteRulesFilters>,
    unresolved: &mut Option<RefError>,
) -> Result<Vec<pb::Filter>, String> {
    let mut v = Vec::new();
    for f in fs {
        match filter(s, out, key, kind, f) {
            Ok(pf) => v.push(pf),
            Err(FilterError::Unsupported(m)) => return Err(m),
            Err(FilterError::Ref(e)) if f.r#type == FT::RequestMirror => {
                unresolved.get_or_insert(e);
            }
            Err(FilterError::Ref(e)) => return Err(e.message),
        }
    }
    Ok(v)
}

fn route_match(m: &HttpRouteRulesMatches) -> Result<pb::RouteMatch, String> {
    use pb::path_match::Kind as P;
    use pb::string_match::Kind as S;
    let path = m.path.as_ref().map(|p| {
        let v = p.value.clone().unwrap_or_else(|| "/".into());
        match p.r#type {
            Some(PT::Exact) => Ok(P::Exact(v)),
            Some(PT::RegularExpression) => valid_regex(&v).map(|()| P::Regex(v)),
            Some(PT::PathPrefix) | None => Ok(P::Prefix(v)),
        }
    });
    let path = match path {
        Some(p) => Some(pb::PathMatch { kind: Some(p?) }),
        None => None,
    };
    let value = |regex: bool, v: &str| -> Result<pb::StringMatch, String> {
        let kind = if regex {
            valid_regex(v)?;
            S::Regex(v.to_string())
        } else {
            S::Exact(v.to_string())
        };
        Ok(pb::StringMatch { kind: Some(kind) })
    };
    let mut headers = Vec::new();
    for h in m.headers.iter().flatten() {
        let regex = matches!(h.r#type, Some(HT::RegularExpression));
        headers.push(pb::HeaderMatch {
            name: h.name.clone(),
            value: Some(value(regex, &h.value)?),
        });
    }
    let mut query_params = Vec::new();
    for q in m.query_params.iter().flatten() {
        let regex = matches!(q.r#type, Some(QT::RegularExpression));
        query_params.push(pb::HeaderMatch {
            name: q.name.clone(),
            value: Some(value(regex, &q.value)?),
        });
    }
    let method = m
        .method
        .as_ref()
        .and_then(|m| serde_json::to_value(m).ok())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    Ok(pb::RouteMatch {
        path,
        headers,
        query_params,
        method,
    })
}

fn valid_regex(v: &str) -> Result<(), String> {
    regex::Regex::new(v)
        .map(|_| ())
        .map_err(|e| format!("invalid regular expression {v:?}: {e}"))
}

fn duration(field: &str, v: &str) -> Result<Option<agora_proto::Duration>, String> {
    let d = gateway_api::Duration::from_str(v).map_err(|e| format!("{field} {v:?}: {e}"))?;
    if d.is_zero() {
        return Ok(None);
    }
    Ok(Some(
        std::time::Duration::new(d.as_secs(), d.subsec_nanos()).into(),
    ))
}

fn timeouts_and_retry(rule: &HttpRouteRules, r: &mut pb::Route) -> Result<(), String> {
    if let Some(t) = &rule.timeouts {
        let request = match &t.request {
            Some(v) => duration("timeouts.request", v)?,
            None => None,
        };
        let backend_request = match &t.backend_request {
            Some(v) => duration("timeouts.backendRequest", v)?,
            None => None,
        };
        r.timeouts = Some(pb::Timeouts {
            request,
            backend_request,
        });
    }
    if let Some(rt) = &rule.retry {
        let backoff = match &rt.backoff {
            Some(v) => duration("retry.backoff", v)?,
            None => None,
        };
        r.retry = Some(pb::Retry {
            attempts: rt
                .attempts
                .map_or(1, |a| u32::try_from(a.max(0)).unwrap_or(u32::MAX)),
            codes: rt
                .codes
                .iter()
                .flatten()
                .filter_map(|c| u32::try_from(*c).ok())
                .collect(),
            backoff,
        });
    }
    Ok(())
}
