//! Local config → proto for AI backends (`backends[].ai`): the shared conversion
//! (`agora_providers::spec`) with keys read from the config, files or the environment.

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
    let mut resolve = |a: &AuthConfig, at: &str| {
        auth_of(a, at, base).map_err(|e| match e {
            Error::InvalidConfig { field, message } => {
                agora_providers::Error::Config { field, message }
            }
            other => agora_providers::Error::Config {
                field: at.to_string(),
                message: other.to_string(),
            },
        })
    };
    let ai = agora_providers::spec::convert::ai_backend(
        &b.name,
        ai,
        b.policies.as_ref(),
        at,
        &mut resolve,
    )
    .map_err(|e| match e {
        agora_providers::Error::Config { field, message } => Error::invalid(field, message),
        other => Error::invalid(at, other.to_string()),
    })?;
    Ok(pb::Backend {
        key: format!("backend/{}", b.name),
        kind: Some(pb::backend::Kind::Ai(ai)),
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
        a.aws.is_some(),
    ];
    if set.iter().filter(|x| **x).count() != 1 {
        return Err(Error::invalid(
            at,
            "set exactly one of key, keyFile, keyEnv, passthrough, aws",
        ));
    }
    let kind = if let Some(aws) = &a.aws {
        let pick = |v: &Option<String>, env: &str| v.clone().or_else(|| std::env::var(env).ok());
        let creds = pb::AwsCredentials {
            access_key_id: pick(&aws.access_key_id, "AWS_ACCESS_KEY_ID").unwrap_or_default(),
            secret_access_key: pick(&aws.secret_access_key, "AWS_SECRET_ACCESS_KEY")
                .unwrap_or_default(),
            session_token: pick(&aws.session_token, "AWS_SESSION_TOKEN").unwrap_or_default(),
        };
        if creds.access_key_id.is_empty() || creds.secret_access_key.is_empty() {
            return Err(Error::invalid(
                format!("{at}.aws"),
                "needs accessKeyId and secretAccessKey (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
            ));
        }
        Kind::Aws(creds)
    } else if a.passthrough.is_some() {
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
