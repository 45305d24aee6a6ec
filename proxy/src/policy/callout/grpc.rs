//! External authorization over gRPC: Envoy's `envoy.service.auth.v3.Authorization/Check`, the
//! API ext_authz servers (OPA's Envoy plugin, authz services written for Envoy or Istio)
//! implement. Chosen by an `extAuth.url` of scheme `grpc://` (h2c) or `grpcs://` (TLS, system
//! roots).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use agora_policies::Error as PolicyError;
use agora_proto::ext_authz as pb;
use agora_proto::ext_authz::authorization_client::AuthorizationClient;
use agora_proto::resource as rpb;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use super::{SKIP, UpstreamHeaders};

/// One lazily connected channel per URL, shared by every request and config; `endpoint`
/// makes it the first time `url` is asked for.
pub(crate) fn shared_channel(
    url: &str,
    endpoint: impl FnOnce() -> Result<Endpoint, String>,
) -> Result<Channel, String> {
    static CHANNELS: OnceLock<Mutex<HashMap<String, Channel>>> = OnceLock::new();
    let mut map = CHANNELS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = map.get(url) {
        return Ok(c.clone());
    }
    let c = endpoint()?.connect_lazy();
    map.insert(url.to_string(), c.clone());
    Ok(c)
}

/// The channel of a `grpc://` or `grpcs://` service URL.
fn channel(url: &str) -> Result<Channel, String> {
    shared_channel(url, || endpoint(url))
}

fn endpoint(url: &str) -> Result<Endpoint, String> {
    let (tls, rest) = match url.split_once("://") {
        Some(("grpcs", rest)) => (true, rest),
        Some(("grpc", rest)) => (false, rest),
        _ => return Err(format!("{url}: not a grpc:// or grpcs:// URL")),
    };
    let scheme = if tls { "https" } else { "http" };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{rest}"))
        .map_err(|e| format!("{url}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .http2_keep_alive_interval(Duration::from_secs(30));
    if tls {
        endpoint = endpoint
            .tls_config(ClientTlsConfig::new().with_native_roots())
            .map_err(|e| format!("{url}: {e}"))?;
    }
    Ok(endpoint)
}

/// What the check request says about the client.
fn check_request(
    parts: &http::request::Parts,
    x: &rpb::ExtAuth,
    source: Option<SocketAddr>,
    host: &str,
) -> pb::CheckRequest {
    let mut headers: HashMap<String, String> = HashMap::new();
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if SKIP.contains(&n)
            || (!x.include_headers.is_empty() && !x.include_headers.iter().any(|h| h == n))
        {
            continue;
        }
        let v = String::from_utf8_lossy(value.as_bytes());
        headers
            .entry(n.to_string())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    let peer = |a: SocketAddr| pb::attribute_context::Peer {
        address: Some(pb::Address {
            address: Some(pb::address::Address::SocketAddress(pb::SocketAddress {
                protocol: 0,
                address: a.ip().to_string(),
                port_specifier: Some(pb::socket_address::PortSpecifier::PortValue(u32::from(
                    a.port(),
                ))),
            })),
        }),
        ..Default::default()
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    pb::CheckRequest {
        attributes: Some(pb::AttributeContext {
            source: source.map(peer),
            destination: None,
            request: Some(pb::attribute_context::Request {
                time: Some(prost_types::Timestamp {
                    seconds: i64::try_from(now.as_secs()).unwrap_or(0),
                    nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
                }),
                http: Some(pb::attribute_context::HttpRequest {
                    method: parts.method.as_str().to_string(),
                    path: parts
                        .uri
                        .path_and_query()
                        .map_or("/", |p| p.as_str())
                        .to_string(),
                    query: parts.uri.query().unwrap_or_default().to_string(),
                    host: host.to_string(),
                    scheme: parts.uri.scheme_str().unwrap_or("http").to_string(),
                    protocol: format!("{:?}", parts.version),
                    size: -1,
                    headers,
                    ..Default::default()
                }),
            }),
            context_extensions: HashMap::new(),
        }),
    }
}

/// Headers of a `HeaderValueOption` list, valid ones only.
fn header_list(list: &[pb::HeaderValueOption]) -> Vec<(http::HeaderName, http::HeaderValue)> {
    list.iter()
        .filter_map(|o| o.header.as_ref())
        .filter_map(|h| {
            let value = if h.raw_value.is_empty() {
                h.value.as_bytes()
            } else {
                &h.raw_value
            };
            Some((
                http::HeaderName::from_bytes(h.key.as_bytes()).ok()?,
                http::HeaderValue::from_bytes(value).ok()?,
            ))
        })
        .collect()
}

/// Asks an ext_authz gRPC service about the request. `OK` admits, with the headers the
/// service set for the upstream request (only those named in `upstreamHeaders`, when that
/// list is given); any other code is a refusal, answered with the service's denied response
/// (its status, default 403; its body or status message as the reason).
pub async fn check(
    x: &rpb::ExtAuth,
    parts: &http::request::Parts,
    source: Option<SocketAddr>,
    host: &str,
) -> Result<UpstreamHeaders, PolicyError> {
    let timeout = x.timeout.map_or(Duration::from_secs(2), Duration::from);
    let unavailable = |e: String| {
        if x.fail_open {
            tracing::warn!(error = %e, url = %x.url, "external authorization unreachable; admitting (FailOpen)");
            Ok(Vec::new())
        } else {
            Err(PolicyError::Unavailable(format!(
                "external authorization: {e}"
            )))
        }
    };
    let channel = match channel(&x.url) {
        Ok(c) => c,
        Err(e) => return unavailable(e),
    };
    let mut req = tonic::Request::new(check_request(parts, x, source, host));
    req.set_timeout(timeout);
    let answer = match tokio::time::timeout(timeout, AuthorizationClient::new(channel).check(req))
        .await
    {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(status)) => return unavailable(format!("{}: {}", status.code(), status.message())),
        Err(_) => return unavailable("timed out".into()),
    };
    let code = answer.status.as_ref().map_or(0, |s| s.code);
    if code == 0 {
        let mut upstream = Vec::new();
        if let Some(pb::check_response::HttpResponse::OkResponse(ok)) = &answer.http_response {
            upstream = header_list(&ok.headers);
            if !x.upstream_headers.is_empty() {
                upstream.retain(|(n, _)| x.upstream_headers.iter().any(|h| h == n.as_str()));
            }
        }
        return Ok(upstream);
    }
    let message = answer.status.map(|s| s.message).unwrap_or_default();
    let (status, reason) = match answer.http_response {
        Some(pb::check_response::HttpResponse::DeniedResponse(d)) => (
            d.status
                .as_ref()
                .and_then(|s| u16::try_from(s.code).ok())
                .filter(|s| (400..600).contains(s))
                .unwrap_or(403),
            Some(d.body).filter(|b| !b.is_empty()).unwrap_or(message),
        ),
        _ => (403, message),
    };
    Err(PolicyError::ExtAuthDenied { status, reason })
}
