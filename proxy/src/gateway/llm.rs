//! Pingora glue of the LLM gateway: peer, headers and body of each attempt, failover, and
//! the response translation hooks. The decisions live in `crate::llm`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;

use super::RequestCtx;
use crate::error::Error;
use crate::llm::{AiIr, CloudCredentials, LlmError, ProviderAuth, ProviderIr};
use crate::metrics::Metrics;

/// Client credential headers, removed before a request goes to a provider (unless the
/// backend passes the client's credentials through).
const CLIENT_CREDENTIALS: [&str; 4] = ["authorization", "x-api-key", "api-key", "x-goog-api-key"];

/// The AI backend of the request, if it has one.
pub fn ai(ctx: &RequestCtx) -> Option<Arc<AiIr>> {
    ctx.route.plan.as_ref().and_then(|p| p.backend.ai.clone())
}

/// Runs once an LLM request's body is read, before the policies that read `llm.provider`:
/// evaluates the conditions of the requested virtual model's targets against the request
/// (headers, source, identity, `llm` with the estimated input tokens). A condition that
/// fails to evaluate (e.g. a missing header) counts as false. Nothing to do for other models.
pub fn match_targets(session: &pingora::proxy::Session, ctx: &mut RequestCtx, body: &[u8]) {
    let Some(llm) = ctx.llm.state.as_mut() else {
        return;
    };
    let Some(uses) = llm.target_conditions() else {
        return;
    };
    let attrs_llm = uses.reads_llm().then(|| agora_policies::cel::LlmAttrs {
        request_model: llm.request_model.clone().unwrap_or_default(),
        provider: String::new(),
        input_tokens: crate::policy::estimate_tokens(body),
        output_tokens: 0,
        streaming: llm.stream,
    });
    let (host, source) = super::policy::info(session);
    let req = crate::policy::RequestInfo {
        parts: session.req_header(),
        host: &host,
        source,
    };
    let attrs = crate::policy::attributes(&req, &ctx.policy.identity, attrs_llm.as_ref());
    let cel = attrs.context(uses);
    llm.match_targets(|e| {
        e.eval_bool(&cel).unwrap_or_else(|err| {
            tracing::debug!(error = %err, "virtual model condition does not hold");
            false
        })
    });
}

/// Chooses the provider for this attempt and the peer to reach it.
pub async fn peer(ai: &AiIr, ctx: &mut RequestCtx) -> Result<Box<HttpPeer>, Error> {
    let llm = ctx
        .llm
        .state
        .as_mut()
        .ok_or(Error::Llm(LlmError::NoProvider))?;
    // A provider whose cloud credentials cannot be obtained is skipped like a failed one.
    let (p, cloud) = loop {
        let p = llm.next_attempt(ai)?;
        match p.auth.current().await {
            Ok(cloud) => break (p, cloud),
            Err(e) => {
                let e = Error::Credentials(format!(
                    "cannot obtain credentials for provider {}: {e}",
                    p.name
                ));
                if !llm.can_fail_over(ai) {
                    return Err(e);
                }
                tracing::warn!(error = %e, "failing over to the next provider");
            }
        }
    };
    ctx.llm.cloud = cloud;
    ctx.upstream.attempt += 1;
    ctx.upstream.endpoint = p.endpoint.clone();
    let addr = address(&p).await?;
    let mut peer = HttpPeer::new(addr, p.tls, p.host.clone());
    let backend = ctx.route.plan.as_ref().map(|plan| &plan.backend);
    let o = &mut peer.options;
    o.connection_timeout = Some(
        backend
            .and_then(|b| b.connect_timeout)
            .unwrap_or(Duration::from_secs(10)),
    );
    o.idle_timeout = Some(
        backend
            .and_then(|b| b.idle_timeout)
            .unwrap_or(Duration::from_secs(90)),
    );
    // LLM responses can take minutes; only an explicit route timeout bounds them.
    let rule = ctx.route.plan.as_ref().map(|p| p.rule());
    let per_try = rule.and_then(|r| r.backend_timeout).or_else(|| {
        ctx.upstream
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    });
    o.read_timeout = per_try;
    o.write_timeout = per_try;
    ctx.upstream.connect_started = Some(Instant::now());
    Ok(Box::new(peer))
}

async fn address(p: &ProviderIr) -> Result<SocketAddr, Error> {
    if let Some(e) = &p.endpoint {
        return Ok(e.addr);
    }
    let mut addrs = tokio::net::lookup_host((p.host.as_str(), p.port))
        .await
        .map_err(|e| Error::Llm(LlmError::Unresolved(format!("{}: {e}", p.host))))?;
    addrs
        .next()
        .ok_or_else(|| Error::Llm(LlmError::Unresolved(p.host.clone())))
}

/// Rewrites the upstream request for the chosen provider: path, host, credentials, length.
pub fn upstream_request(ctx: &RequestCtx, req: &mut RequestHeader) -> pingora::Result<()> {
    let Some(llm) = ctx.llm.state.as_ref() else {
        return Ok(());
    };
    let Some(p) = llm.provider.as_ref() else {
        return Ok(());
    };
    if llm.upstream_path.is_empty() {
        // Passthrough: the client's path (after route rewrites), from the vendor's version
        // segment on (`/openai/v1/files` -> `/v1/files`), like the APIs the gateway knows.
        if let Some(uri) = passthrough_uri(p, &req.uri) {
            req.set_uri(uri);
        }
        return finish_upstream_request(p, llm, ctx.llm.cloud.as_ref(), req);
    }
    let sep = if llm.upstream_path.contains('?') {
        '&'
    } else {
        '?'
    };
    // A Gemini client's query (`alt=sse`, perhaps its `key`) is for Gemini's API only; the
    // upstream path already says what the provider needs.
    let gemini =
        p.format.system() == "gemini" || llm.api == agora_providers::ClientApi::GenerateContent;
    let uri = match req.uri.query() {
        Some(q) if !gemini => format!("{}{sep}{q}", llm.upstream_path),
        _ => llm.upstream_path.clone(),
    };
    let uri = uri.parse::<http::Uri>().map_err(|e| {
        pingora::Error::explain(
            pingora::ErrorType::InternalError,
            format!("provider path: {e}"),
        )
    })?;
    req.set_uri(uri);
    finish_upstream_request(p, llm, ctx.llm.cloud.as_ref(), req)
}

fn passthrough_uri(p: &ProviderIr, uri: &http::Uri) -> Option<http::Uri> {
    if p.vendor != crate::llm::Vendor::Direct {
        return None;
    }
    let default = p.format.default_prefix();
    let path = uri.path();
    let at = path.find(&format!("{default}/"))?;
    let prefix = if p.path_prefix.is_empty() {
        default
    } else {
        &p.path_prefix
    };
    let rest = &path[at + default.len()..];
    let new = match uri.query() {
        Some(q) => format!("{prefix}{rest}?{q}"),
        None => format!("{prefix}{rest}"),
    };
    new.parse().ok()
}

/// Host, credentials, length and signing of an upstream request.
fn finish_upstream_request(
    p: &ProviderIr,
    llm: &crate::llm::LlmCtx,
    cloud: Option<&CloudCredentials>,
    req: &mut RequestHeader,
) -> pingora::Result<()> {
    let host = if (p.tls && p.port == 443) || (!p.tls && p.port == 80) {
        p.host.clone()
    } else {
        format!("{}:{}", p.host, p.port)
    };
    req.insert_header(http::header::HOST, host.as_str())?;
    match &p.auth {
        ProviderAuth::Passthrough => {}
        auth => {
            for h in CLIENT_CREDENTIALS {
                req.remove_header(h);
            }
            if let ProviderAuth::Key(name, value) = auth {
                req.insert_header(name.clone(), value.clone())?;
            }
            if let Some(CloudCredentials::Bearer(token)) = cloud {
                req.insert_header(http::header::AUTHORIZATION, token.value.clone())?;
            }
        }
    }
    if p.format == agora_providers::WireFormat::Anthropic
        && !req.headers.contains_key("anthropic-version")
    {
        req.insert_header("anthropic-version", "2023-06-01")?;
    }
    // The response must be readable to translate it and count tokens.
    req.insert_header(http::header::ACCEPT_ENCODING, "identity")?;
    req.remove_header(&http::header::TRANSFER_ENCODING);
    req.insert_header(http::header::CONTENT_LENGTH, llm.upstream_len().to_string())?;
    if let (Some(CloudCredentials::Aws(creds)), crate::llm::Vendor::Bedrock { region }) =
        (cloud, &p.vendor)
    {
        let creds = &creds.value;
        let headers: Vec<(String, String)> = ["content-type", "accept"]
            .iter()
            .filter_map(|h| {
                req.headers
                    .get(*h)
                    .and_then(|v| v.to_str().ok())
                    .map(|v| (h.to_string(), v.to_string()))
            })
            .collect();
        let now = agora_policies::unix_now();
        let signed = agora_providers::bedrock_sign::sign(
            "POST",
            &host,
            &req.uri.to_string(),
            &headers,
            llm.upstream_body_bytes(),
            region,
            "bedrock",
            creds,
            now,
        );
        for (name, value) in signed {
            let mut value = http::HeaderValue::try_from(value).map_err(|e| {
                pingora::Error::explain(pingora::ErrorType::InternalError, format!("SigV4: {e}"))
            })?;
            // Kept out of debug logs of the upstream request.
            value.set_sensitive(matches!(
                name.as_str(),
                "authorization" | "x-amz-security-token"
            ));
            req.insert_header(name, value)?;
        }
    }
    Ok(())
}

/// Reads the upstream status: passive health, and whether to fail over to another provider.
/// Returns true when the attempt should be retried elsewhere.
pub fn upstream_response(ai: &AiIr, ctx: &mut RequestCtx, status: u16, replayable: bool) -> bool {
    let Some(llm) = ctx.llm.state.as_mut() else {
        return false;
    };
    let failed = status == 429 || status >= 500;
    if let Some(p) = &llm.provider {
        ai.record(p, !failed);
    }
    failed && replayable && llm.can_fail_over(ai)
}

/// Adjusts response headers when the body will change.
pub fn response_header(
    ctx: &mut RequestCtx,
    resp: &mut ResponseHeader,
    h2: bool,
) -> pingora::Result<()> {
    let Some(llm) = ctx.llm.state.as_mut() else {
        return Ok(());
    };
    let ct = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if llm.response.on_header(resp.status.as_u16(), ct.as_deref()) {
        resp.remove_header(&http::header::CONTENT_LENGTH);
        if !h2 {
            resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
        }
        if let Some(ct) = llm.response.content_type() {
            resp.insert_header(http::header::CONTENT_TYPE, ct)?;
        }
    }
    Ok(())
}

/// Records the GenAI metrics of a finished LLM request (nothing for other requests).
pub fn observe(metrics: &Metrics, ctx: &RequestCtx, end: Instant) {
    let Some(llm) = ctx.llm.state.as_ref() else {
        return;
    };
    let (gateway, route, backend) = (
        &*ctx.route.gateway,
        ctx.route.route_name(),
        ctx.route.backend_name(),
    );
    let system = llm.provider.as_ref().map_or("", |p| p.format.system());
    let op = llm.api.operation();
    let req_model = llm.request_model.as_deref().unwrap_or("");
    let usage = &llm.response.usage;
    // The provider's answer names the model; else the (virtual model's concrete) one sent.
    let resp_model = usage
        .response_model
        .as_deref()
        .or(llm.upstream_model.as_deref())
        .unwrap_or(req_model);
    let labels = [system, op, req_model, resp_model, gateway, route, backend];
    for (kind, n) in [
        ("input", usage.input_tokens),
        ("output", usage.output_tokens),
        ("cache_read", usage.cache_read_tokens),
        ("cache_write", usage.cache_write_tokens),
        ("reasoning", usage.reasoning_tokens),
    ] {
        if n > 0 || kind == "input" || kind == "output" {
            let mut l = vec![kind];
            l.extend_from_slice(&labels);
            metrics
                .gen_ai_tokens
                .with_label_values(&l)
                .observe(n as f64);
        }
    }
    let total = end.duration_since(ctx.start).as_secs_f64();
    metrics
        .gen_ai_duration
        .with_label_values(&labels)
        .observe(total);
    if let Some(first) = llm.response.first_token {
        let ttft = first.duration_since(ctx.start);
        metrics
            .gen_ai_ttft
            .with_label_values(&labels)
            .observe(ttft.as_secs_f64());
        if usage.output_tokens > 1 {
            let per = end.duration_since(first).as_secs_f64() / (usage.output_tokens - 1) as f64;
            metrics.gen_ai_tpot.with_label_values(&labels).observe(per);
        }
    }
}
