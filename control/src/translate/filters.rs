//! HTTPRoute filters (rule level and per backendRef) → proto filters.

use agora_proto::resource as pb;
use gateway_api::experimental::httproutes::{
    HttpRouteRulesFilters as F, HttpRouteRulesFiltersRequestRedirectScheme as Scheme,
    HttpRouteRulesFiltersType as T,
};
use serde::{Deserialize, Serialize};

use super::Output;
use super::backend::{self, BackendRef, RefError};
use crate::snapshot::{ObjKey, Snapshot};

/// Why a filter cannot apply.
#[derive(Debug)]
pub(super) enum FilterError {
    /// The route cannot be accepted (unsupported filter or value).
    Unsupported(String),
    /// A mirror's backendRef does not resolve: the mirror is dropped, the route still serves.
    Ref(RefError),
}

/// Converts one filter.
pub(super) fn filter(
    s: &Snapshot,
    out: &mut Output,
    route: &ObjKey,
    route_kind: &'static str,
    f: &F,
) -> Result<pb::Filter, FilterError> {
    use pb::filter::Kind;
    let missing =
        |what: &str| FilterError::Unsupported(format!("{what} filter without its config"));
    let kind = match f.r#type {
        T::RequestHeaderModifier => Kind::RequestHeaderModifier(modifier(
            f.request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("RequestHeaderModifier"))?,
        )?),
        T::ResponseHeaderModifier => Kind::ResponseHeaderModifier(modifier(
            f.response_header_modifier
                .as_ref()
                .ok_or_else(|| missing("ResponseHeaderModifier"))?,
        )?),
        T::UrlRewrite => {
            let u = f
                .url_rewrite
                .as_ref()
                .ok_or_else(|| missing("URLRewrite"))?;
            Kind::UrlRewrite(pb::UrlRewrite {
                hostname: u.hostname.clone().unwrap_or_default(),
                path: u.path.as_ref().map(|p| {
                    path_rewrite(p.replace_full_path.clone(), p.replace_prefix_match.clone())
                }),
            })
        }
        T::RequestRedirect => {
            let r = f
                .request_redirect
                .as_ref()
                .ok_or_else(|| missing("RequestRedirect"))?;
            Kind::RequestRedirect(pb::RequestRedirect {
                scheme: match r.scheme {
                    Some(Scheme::Http) => "http".into(),
                    Some(Scheme::Https) => "https".into(),
                    None => String::new(),
                },
                hostname: r.hostname.clone().unwrap_or_default(),
                path: r.path.as_ref().map(|p| {
                    path_rewrite(p.replace_full_path.clone(), p.replace_prefix_match.clone())
                }),
                port: r.port.and_then(|p| u32::try_from(p).ok()).unwrap_or(0),
                status_code: match r.status_code {
                    None => 302,
                    Some(c @ (301 | 302 | 303 | 307 | 308)) => c as u32,
                    Some(c) => {
                        return Err(FilterError::Unsupported(format!(
                            "redirect status {c} is not one of 301, 302, 303, 307, 308"
                        )));
                    }
                },
            })
        }
        T::RequestMirror => {
            let m = f
                .request_mirror
                .as_ref()
                .ok_or_else(|| missing("RequestMirror"))?;
            let b = &m.backend_ref;
            let key = backend::resolve(
                s,
                out,
                route,
                &BackendRef::new(
                    b.group.as_deref(),
                    b.kind.as_deref(),
                    b.namespace.as_deref(),
                    &b.name,
                    b.port,
                    route_kind,
                ),
            )
            .map_err(FilterError::Ref)?;
            let percent = match (&m.fraction, m.percent) {
                (Some(fr), _) => {
                    let den = fr.denominator.unwrap_or(100).max(1);
                    Some(f64::from(fr.numerator) * 100.0 / f64::from(den))
                }
                (None, Some(p)) => Some(f64::from(p)),
                (None, None) => None,
            };
            Kind::RequestMirror(pb::RequestMirror {
                backend_key: key,
                percent: percent.map(|p| p.clamp(0.0, 100.0)),
            })
        }
        T::ExtensionRef | T::Cors | T::ExternalAuth => {
            return Err(FilterError::Unsupported(format!(
                "filter type {:?} is not supported on HTTPRoutes yet",
                f.r#type
            )));
        }
    };
    Ok(pb::Filter { kind: Some(kind) })
}

fn path_rewrite(full: Option<String>, prefix: Option<String>) -> pb::PathRewrite {
    use pb::path_rewrite::Kind;
    pb::PathRewrite {
        kind: match (full, prefix) {
            (Some(f), _) => Some(Kind::Full(f)),
            (None, Some(p)) => Some(Kind::Prefix(p)),
            (None, None) => None,
        },
    }
}

/// The common shape of request and response header modifiers.
#[derive(Deserialize, Default)]
struct Modifier {
    #[serde(default)]
    set: Vec<NameValue>,
    #[serde(default)]
    add: Vec<NameValue>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
struct NameValue {
    name: String,
    value: String,
}

fn modifier<M: Serialize>(m: &M) -> Result<pb::HeaderModifier, FilterError> {
    let m: Modifier = serde_json::to_value(m)
        .and_then(serde_json::from_value)
        .map_err(|e| FilterError::Unsupported(format!("header modifier: {e}")))?;
    let names = m
        .set
        .iter()
        .chain(&m.add)
        .map(|h| h.name.as_str())
        .chain(m.remove.iter().map(String::as_str));
    for n in names {
        if http::HeaderName::from_bytes(n.as_bytes()).is_err() {
            return Err(FilterError::Unsupported(format!(
                "{n:?} is not a valid header name"
            )));
        }
    }
    let pairs = |v: Vec<NameValue>| {
        v.into_iter()
            .map(|h| pb::HeaderValue {
                name: h.name,
                value: h.value,
            })
            .collect()
    };
    Ok(pb::HeaderModifier {
        set: pairs(m.set),
        add: pairs(m.add),
        remove: m.remove,
    })
}
