//! proto `AiBackend` → [`AiIr`].

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use agora_proto::resource as pb;
use agora_providers::WireFormat;
use agora_providers::policy::{PromptMessage, RequestPolicy};
use http::{HeaderName, HeaderValue};

use super::{AiIr, ProviderAuth, ProviderIr, Vendor, VirtualModel};
use crate::backend::{PassiveCheck, StateRegistry};
use crate::error::{Error, Result};

/// Builds the AI part of a backend. Provider hosts resolve now when they can; one that does
/// not (no DNS at load time) is resolved per request instead of failing the whole config.
pub fn ai_backend(
    key: &str,
    ai: &pb::AiBackend,
    passive: Option<PassiveCheck>,
    states: &StateRegistry,
) -> Result<AiIr> {
    if ai.groups.iter().all(|g| g.providers.is_empty()) {
        return Err(Error::invalid(format!("{key}.ai"), "no providers"));
    }
    let mut groups = Vec::new();
    for (gi, g) in ai.groups.iter().enumerate() {
        let mut providers = Vec::new();
        for (pi, p) in g.providers.iter().enumerate() {
            let at = format!("{key}.ai.groups[{gi}].providers[{pi}]");
            providers.push(Arc::new(provider(key, p, &at, states)?));
        }
        groups.push(providers);
    }
    let aliases: HashMap<String, String> = ai.model_aliases.clone().into_iter().collect();
    let all: Vec<Arc<ProviderIr>> = groups.iter().flatten().cloned().collect();
    let mut virtual_models = HashMap::new();
    for (i, v) in ai.virtual_models.iter().enumerate() {
        let at = format!("{key}.ai.virtualModels[{i}]");
        if v.name.is_empty() || aliases.contains_key(&v.name) {
            return Err(Error::invalid(
                format!("{at}.name"),
                "empty, or also a model alias",
            ));
        }
        let built = Arc::new(VirtualModel::build(v, &all, &at)?);
        if virtual_models.insert(v.name.clone(), built).is_some() {
            return Err(Error::invalid(format!("{at}.name"), "defined twice"));
        }
    }
    let json = |m: &std::collections::BTreeMap<String, String>, field: &str| {
        m.iter()
            .map(|(k, v)| {
                serde_json::from_str(v)
                    .map(|v| (k.clone(), v))
                    .map_err(|e| Error::invalid(format!("{key}.ai.{field}.{k}"), e))
            })
            .collect::<Result<serde_json::Map<String, serde_json::Value>>>()
    };
    let message = |m: &pb::PromptMessage| PromptMessage {
        role: m.role.clone(),
        content: m.content.clone(),
    };
    let policy = RequestPolicy {
        defaults: json(&ai.defaults, "defaults")?,
        overrides: json(&ai.overrides, "overrides")?,
        prepend: ai.prompt_prepend.iter().map(message).collect(),
        append: ai.prompt_append.iter().map(message).collect(),
    };
    let mut ir = AiIr::new(groups, aliases, passive, policy);
    ir.virtual_models = virtual_models;
    Ok(ir)
}

fn provider(key: &str, p: &pb::AiProvider, at: &str, states: &StateRegistry) -> Result<ProviderIr> {
    use pb::ai_provider::Format;
    let format = match Format::try_from(p.format) {
        Ok(Format::Openai) => WireFormat::OpenAi,
        Ok(Format::Anthropic) => WireFormat::Anthropic,
        Ok(Format::Gemini) => WireFormat::Gemini,
        Ok(Format::Bedrock) => WireFormat::Bedrock,
        Err(_) => {
            return Err(Error::invalid(
                format!("{at}.format"),
                "unknown provider format",
            ));
        }
    };
    let port = u16::try_from(p.port)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::invalid(format!("{at}.port"), "port must be 1..=65535"))?;
    if p.host.is_empty() {
        return Err(Error::invalid(
            format!("{at}.host"),
            "provider host is empty",
        ));
    }
    let vendor = match p.vendor.as_str() {
        "vertexai" => Vendor::Vertex {
            project: p.project_id.clone(),
            region: p.region.clone(),
        },
        "bedrock" => Vendor::Bedrock {
            region: p.region.clone(),
        },
        "azureopenai" => Vendor::Azure {
            deployment: p.deployment.clone(),
            api_version: p.api_version.clone(),
        },
        _ => Vendor::Direct,
    };
    let auth = match p.auth.as_ref().and_then(|a| a.kind.as_ref()) {
        None => ProviderAuth::None,
        Some(pb::backend_auth::Kind::Passthrough(_)) => ProviderAuth::Passthrough,
        Some(pb::backend_auth::Kind::Aws(c)) => {
            let source = crate::cloud_auth::aws(c)
                .map_err(|e| Error::invalid(format!("{at}.auth.aws"), e))?;
            source.warm();
            ProviderAuth::Aws(source)
        }
        Some(pb::backend_auth::Kind::Gcp(g)) => {
            let source = crate::cloud_auth::gcp(g)
                .map_err(|e| Error::invalid(format!("{at}.auth.gcp"), e))?;
            source.warm();
            ProviderAuth::Gcp(source)
        }
        Some(pb::backend_auth::Kind::Key(k)) => {
            let (name, value) = match (&vendor, format) {
                (Vendor::Azure { .. }, _) => ("api-key", k.clone()),
                // A GCP access token.
                (Vendor::Vertex { .. }, _) => ("authorization", format!("Bearer {k}")),
                (_, f) => match f {
                    WireFormat::OpenAi => ("authorization", format!("Bearer {k}")),
                    WireFormat::Anthropic => ("x-api-key", k.clone()),
                    WireFormat::Gemini => ("x-goog-api-key", k.clone()),
                    // Bedrock API keys are bearer tokens (SigV4 credentials sign instead).
                    WireFormat::Bedrock => ("authorization", format!("Bearer {k}")),
                },
            };
            let mut value = HeaderValue::try_from(value).map_err(|_| {
                Error::invalid(format!("{at}.auth.key"), "not a valid header value")
            })?;
            value.set_sensitive(true);
            ProviderAuth::Key(HeaderName::from_static(name), value)
        }
    };
    let endpoint = resolve(&p.host, port)
        .map(|addr| states.get(&format!("{key}/{}", p.name), addr, &p.host, 1));
    if endpoint.is_none() {
        tracing::warn!(provider = %p.name, host = %p.host, "provider host does not resolve now; will resolve per request");
    }
    let kind = if p.vendor.is_empty() {
        format.system().to_string()
    } else {
        p.vendor.clone()
    };
    Ok(ProviderIr {
        name: p.name.clone(),
        kind,
        format,
        model: (!p.model.is_empty()).then(|| p.model.clone()),
        host: p.host.clone(),
        port,
        path_prefix: p.path_prefix.clone(),
        tls: p.tls,
        auth,
        vendor,
        models: p.models.clone(),
        endpoint,
    })
}

fn resolve(host: &str, port: u16) -> Option<SocketAddr> {
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    let all: Vec<SocketAddr> = (host, port).to_socket_addrs().ok()?.collect();
    all.iter()
        .copied()
        .find(SocketAddr::is_ipv4)
        .or_else(|| all.first().copied())
}
