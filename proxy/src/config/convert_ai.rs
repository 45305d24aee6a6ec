//! Local config → proto for AI backends (`backends[].ai`).

use std::path::Path;

use agora_proto::resource as pb;

use super::schema::*;
use crate::error::{Error, Result};

/// Converts an AI backend: `ai.provider` (one provider) or `ai.groups` (priority groups).
pub fn ai_backend(b: &BackendConfig, ai: &AiConfig, at: &str, base: &Path) -> Result<pb::Backend> {
    if b.single.is_some() || !b.endpoints.is_empty() {
        return Err(Error::invalid(
            format!("{at}.ai"),
            "an AI backend takes its addresses from its providers, not static/endpoints",
        ));
    }
    let backend_auth = b.policies.as_ref().and_then(|p| p.auth.as_ref());
    let groups = match (&ai.provider, ai.groups.is_empty()) {
        (Some(p), true) => vec![pb::AiProviderGroup {
            providers: vec![provider(
                p,
                &format!("{at}.ai.provider"),
                backend_auth,
                base,
                &b.name,
            )?],
        }],
        (None, false) => ai
            .groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                if g.providers.is_empty() {
                    return Err(Error::invalid(
                        format!("{at}.ai.groups[{gi}].providers"),
                        "a group needs a provider",
                    ));
                }
                let providers = g
                    .providers
                    .iter()
                    .enumerate()
                    .map(|(pi, p)| {
                        provider(
                            p,
                            &format!("{at}.ai.groups[{gi}].providers[{pi}]"),
                            backend_auth,
                            base,
                            &format!("{}-{gi}-{pi}", b.name),
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(pb::AiProviderGroup { providers })
            })
            .collect::<Result<Vec<_>>>()?,
        (Some(_), false) => {
            return Err(Error::invalid(
                format!("{at}.ai"),
                "set either provider or groups, not both",
            ));
        }
        (None, true) => {
            return Err(Error::invalid(
                format!("{at}.ai"),
                "needs a provider or groups",
            ));
        }
    };
    let model_aliases = b
        .policies
        .as_ref()
        .and_then(|p| p.ai.as_ref())
        .map(|a| a.model_aliases.clone().into_iter().collect())
        .unwrap_or_default();
    Ok(pb::Backend {
        key: format!("backend/{}", b.name),
        kind: Some(pb::backend::Kind::Ai(pb::AiBackend {
            groups,
            model_aliases,
        })),
        health_check: b
            .health_check
            .as_ref()
            .map(|h| -> Result<pb::HealthCheck> {
                if h.active.is_some() {
                    return Err(Error::invalid(
                        format!("{at}.healthCheck.active"),
                        "AI backends use passive checks only",
                    ));
                }
                Ok(pb::HealthCheck {
                    consecutive_failures: h.consecutive_failures.unwrap_or(0),
                    base_ejection: super::convert::opt_duration(
                        &h.base_ejection_time,
                        &format!("{at}.healthCheck.baseEjectionTime"),
                    )?,
                    active: None,
                })
            })
            .transpose()?,
        pool: Some(pb::ConnectionPool {
            connect_timeout: super::convert::opt_duration(
                &b.connect_timeout,
                &format!("{at}.connectTimeout"),
            )?,
            idle_timeout: super::convert::opt_duration(
                &b.idle_timeout,
                &format!("{at}.idleTimeout"),
            )?,
            http2: false,
        }),
        ..Default::default()
    })
}

fn provider(
    p: &ProviderConfig,
    at: &str,
    backend_auth: Option<&AuthConfig>,
    base: &Path,
    default_name: &str,
) -> Result<pb::AiProvider> {
    use pb::ai_provider::Format;
    let unsupported = [
        ("gemini", p.gemini.is_some()),
        ("vertexai", p.vertexai.is_some()),
        ("bedrock", p.bedrock.is_some()),
        ("azureopenai", p.azureopenai.is_some()),
    ];
    if let Some((name, _)) = unsupported.iter().find(|(_, set)| *set) {
        return Err(Error::invalid(
            format!("{at}.{name}"),
            "this provider is not supported yet (openai and anthropic are)",
        ));
    }
    let (format, model) = match (&p.openai, &p.anthropic) {
        (Some(m), None) => (Format::Openai, m),
        (None, Some(m)) => (Format::Anthropic, m),
        _ => {
            return Err(Error::invalid(
                at,
                "set exactly one provider kind (openai or anthropic)",
            ));
        }
    };
    let default_host = match format {
        Format::Openai => "api.openai.com",
        Format::Anthropic => "api.anthropic.com",
    };
    let host = p.host.clone().unwrap_or_else(|| default_host.to_string());
    let tls = p.tls.unwrap_or(p.host.is_none() || p.port == Some(443));
    let port = p.port.unwrap_or(if tls { 443 } else { 80 });
    // Empty: the vendor's default prefix (`/v1`, `/v1beta`, ...).
    let path_prefix = p.path.clone().unwrap_or_default();
    if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
        return Err(Error::invalid(format!("{at}.path"), "must start with '/'"));
    }
    let own_auth = p.policies.as_ref().and_then(|pp| pp.auth.as_ref());
    let auth = own_auth
        .or(backend_auth)
        .map(|a| auth_of(a, &format!("{at}.policies.auth"), base))
        .transpose()?;
    Ok(pb::AiProvider {
        name: p.name.clone().unwrap_or_else(|| default_name.to_string()),
        format: format as i32,
        model: model.model.clone().unwrap_or_default(),
        host,
        port: port.into(),
        path_prefix: path_prefix.trim_end_matches('/').to_string(),
        tls,
        auth,
    })
}

fn auth_of(a: &AuthConfig, at: &str, base: &Path) -> Result<pb::BackendAuth> {
    use pb::backend_auth::Kind;
    if a.secret_ref.is_some() {
        return Err(Error::invalid(
            format!("{at}.secretRef"),
            "Secrets are resolved by the control plane; in a local file use key, keyFile or keyEnv",
        ));
    }
    let set = [
        a.key.is_some(),
        a.key_file.is_some(),
        a.key_env.is_some(),
        a.passthrough.is_some(),
    ];
    if set.iter().filter(|x| **x).count() != 1 {
        return Err(Error::invalid(
            at,
            "set exactly one of key, keyFile, keyEnv, passthrough",
        ));
    }
    let kind = if a.passthrough.is_some() {
        Kind::Passthrough(true)
    } else if let Some(env) = &a.key_env {
        Kind::Key(std::env::var(env).map_err(|_| {
            Error::invalid(
                format!("{at}.keyEnv"),
                format!("environment variable {env} is not set"),
            )
        })?)
    } else {
        let bytes =
            super::convert::inline_or_file(&a.key, &a.key_file, &format!("{at}.key"), base)?
                .unwrap_or_default();
        Kind::Key(
            String::from_utf8(bytes)
                .map_err(|_| Error::invalid(format!("{at}.key"), "not UTF-8"))?
                .trim()
                .to_string(),
        )
    };
    Ok(pb::BackendAuth { kind: Some(kind) })
}
