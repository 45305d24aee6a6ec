//! HTTP callouts of the policies: external authorization (`extAuth`) and prompt guard
//! webhooks. One shared client; each call bounded by its policy's timeout.

pub(crate) mod grpc;

use std::sync::OnceLock;
use std::time::Duration;

use agora_policies::Error as PolicyError;
use agora_proto::resource as pb;

fn client() -> &'static reqwest::Client {
    static C: OnceLock<reqwest::Client> = OnceLock::new();
    C.get_or_init(|| {
        reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default()
    })
}

/// Headers never forwarded to an authorization service (hop-by-hop and the body's).
const SKIP: [&str; 6] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
];

/// Headers the authorization service asked to set on the upstream request.
pub type UpstreamHeaders = Vec<(http::HeaderName, http::HeaderValue)>;

/// Asks the authorization service about a request, over gRPC (Envoy's ext_authz API) when
/// its URL is `grpc://` or `grpcs://`, else over HTTP. `Ok`: admitted, with the headers to
/// set upstream; `Err`: the client's answer (the service's refusal, or 503 when it cannot
/// be reached and the policy fails closed).
pub async fn ext_auth(
    x: &pb::ExtAuth,
    parts: &http::request::Parts,
    source: Option<std::net::SocketAddr>,
    host: &str,
) -> Result<UpstreamHeaders, PolicyError> {
    if agora_policies::spec::convert::is_grpc_url(&x.url) {
        return grpc::check(x, parts, source, host).await;
    }
    ext_auth_http(x, parts).await
}

/// ext_authz over HTTP: the same method and path (appended to the service URL) with the
/// client's headers, no body. A 2xx admits and yields the headers to copy onto the upstream
/// request; any other status is the client's answer.
async fn ext_auth_http(
    x: &pb::ExtAuth,
    parts: &http::request::Parts,
) -> Result<UpstreamHeaders, PolicyError> {
    let timeout = x.timeout.map_or(Duration::from_secs(2), Duration::from);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{}", x.url.trim_end_matches('/'), path);
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut req = client().request(method, &url).timeout(timeout);
    for (name, value) in &parts.headers {
        let n = name.as_str();
        if SKIP.contains(&n)
            || (!x.include_headers.is_empty() && !x.include_headers.iter().any(|h| h == n))
        {
            continue;
        }
        req = req.header(n, value.as_bytes());
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if x.fail_open => {
            tracing::warn!(error = %e, %url, "external authorization unreachable; admitting (FailOpen)");
            return Ok(vec![]);
        }
        Err(e) => {
            return Err(PolicyError::Unavailable(format!(
                "external authorization: {e}"
            )));
        }
    };
    let status = resp.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(PolicyError::ExtAuthDenied {
            status: if (400..600).contains(&status) {
                status
            } else {
                403
            },
            reason: String::new(),
        });
    }
    let mut out = Vec::new();
    for h in &x.upstream_headers {
        if let Some(v) = resp.headers().get(h.as_str())
            && let (Ok(n), Ok(v)) = (
                http::HeaderName::from_bytes(h.as_bytes()),
                http::HeaderValue::from_bytes(v.as_bytes()),
            )
        {
            out.push((n, v));
        }
    }
    Ok(out)
}

/// Sends an LLM request body to a guard webhook: it answers `{"allow": true}` or
/// `{"allow": false, "reason": "..."}`.
pub async fn guard_webhook(
    w: &pb::GuardWebhook,
    body: &[u8],
    message: &str,
) -> Result<(), PolicyError> {
    let timeout = w.timeout.map_or(Duration::from_secs(2), Duration::from);
    let sent = client()
        .post(&w.url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await;
    let verdict = match sent {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .map_err(|e| format!("guard webhook answer: {e}")),
        Ok(r) => Err(format!("guard webhook answered {}", r.status())),
        Err(e) => Err(format!("guard webhook: {e}")),
    };
    match verdict {
        Ok(v) if v["allow"] == serde_json::Value::Bool(true) => Ok(()),
        Ok(v) => Err(PolicyError::PromptRejected(
            v["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
                .unwrap_or(message)
                .to_string(),
        )),
        Err(e) if w.fail_open => {
            tracing::warn!(error = %e, url = %w.url, "guard webhook failed; admitting (FailOpen)");
            Ok(())
        }
        Err(e) => Err(PolicyError::Unavailable(e)),
    }
}
