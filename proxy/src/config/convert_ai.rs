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
    .map_err(config_error(at))?;
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
        a.gcp.is_some(),
    ];
    if set.iter().filter(|x| **x).count() != 1 {
        return Err(Error::invalid(
            at,
            "set exactly one of key, keyFile, keyEnv, passthrough, aws, gcp",
        ));
    }
    let kind = if let Some(aws) = &a.aws {
        if aws.secret_ref.is_some() {
            return Err(Error::invalid(
                format!("{at}.aws.secretRef"),
                "Secrets are resolved by the control plane; in a local file use accessKeyId and secretAccessKey, or aws: {} for the default credential chain",
            ));
        }
        Kind::Aws(
            agora_providers::spec::convert::aws_credentials(aws, &format!("{at}.aws"))
                .map_err(config_error(&format!("{at}.aws")))?,
        )
    } else if let Some(gcp) = &a.gcp {
        Kind::Gcp(gcp_auth(gcp, &format!("{at}.gcp"), base)?)
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

/// `gcp`: a service-account key inline or from a file (read now), or neither for
/// Application Default Credentials.
fn gcp_auth(gcp: &GcpAuthConfig, at: &str, base: &Path) -> Result<pb::GcpAuth> {
    if gcp.secret_ref.is_some() {
        return Err(Error::invalid(
            format!("{at}.secretRef"),
            "Secrets are resolved by the control plane; in a local file use serviceAccountKeyFile or serviceAccountKey",
        ));
    }
    agora_providers::spec::convert::check_gcp(gcp, at).map_err(config_error(at))?;
    let key = match (&gcp.service_account_key, &gcp.service_account_key_file) {
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                at,
                "set at most one of serviceAccountKey and serviceAccountKeyFile",
            ));
        }
        (Some(v), None) => {
            let at = format!("{at}.serviceAccountKey");
            agora_providers::spec::convert::inline_gcp_key(v, &at).map_err(config_error(&at))?
        }
        (None, Some(_)) => {
            let bytes = super::convert::inline_or_file(
                &None,
                &gcp.service_account_key_file,
                &format!("{at}.serviceAccountKey"),
                base,
            )?
            .unwrap_or_default();
            String::from_utf8(bytes)
                .map_err(|_| Error::invalid(format!("{at}.serviceAccountKeyFile"), "not UTF-8"))?
        }
        (None, None) => String::new(),
    };
    Ok(pb::GcpAuth {
        service_account_key: key,
    })
}

/// The proxy's config error for an error of the shared conversion: its field, or `at` for
/// an error that names none.
fn config_error(at: &str) -> impl Fn(agora_providers::Error) -> Error + '_ {
    move |e| match e {
        agora_providers::Error::Config { field, message } => Error::invalid(field, message),
        other => Error::invalid(at, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::backend_auth::Kind;

    fn auth(json: serde_json::Value) -> Result<Option<Kind>> {
        let a: AuthConfig = serde_json::from_value(json).expect("auth config");
        auth_of(&a, "b.policies.auth", Path::new("/nonexistent")).map(|a| a.kind)
    }

    fn field(r: Result<Option<Kind>>) -> String {
        match r {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn gcp_sources() {
        let Ok(Some(Kind::Gcp(g))) = auth(serde_json::json!({"gcp": {}})) else {
            panic!("gcp: {{}}")
        };
        assert_eq!(g.service_account_key, "");
        let Ok(Some(Kind::Gcp(g))) =
            auth(serde_json::json!({"gcp": {"serviceAccountKey": {"type": "service_account"}}}))
        else {
            panic!("inline object")
        };
        assert_eq!(g.service_account_key, r#"{"type":"service_account"}"#);
        let dir = std::env::temp_dir().join(format!("agora-gcp-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("sa.json"), "{\"type\":\"service_account\"}\n").unwrap();
        let a: AuthConfig = serde_json::from_value(
            serde_json::json!({"gcp": {"serviceAccountKeyFile": "sa.json"}}),
        )
        .unwrap();
        let Some(Kind::Gcp(g)) = auth_of(&a, "x", &dir).unwrap().kind else {
            panic!("file")
        };
        assert!(g.service_account_key.starts_with("{\"type\""));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn gcp_refusals() {
        assert_eq!(
            field(auth(
                serde_json::json!({"gcp": {"secretRef": {"name": "s"}}})
            )),
            "b.policies.auth.gcp.secretRef"
        );
        assert_eq!(
            field(auth(serde_json::json!({"gcp": {"type": "IdToken"}}))),
            "b.policies.auth.gcp.type"
        );
        assert_eq!(
            field(auth(
                serde_json::json!({"gcp": {"serviceAccountKey": "{}", "serviceAccountKeyFile": "f"}})
            )),
            "b.policies.auth.gcp"
        );
        assert_eq!(
            field(auth(
                serde_json::json!({"gcp": {"serviceAccountKeyFile": "missing.json"}})
            )),
            "b.policies.auth.gcp.serviceAccountKeyFile"
        );
        assert_eq!(
            field(auth(serde_json::json!({"gcp": {}, "key": "k"}))),
            "b.policies.auth"
        );
    }

    #[test]
    fn aws_static_or_chain() {
        let Ok(Some(Kind::Aws(c))) = auth(serde_json::json!({"aws": {}})) else {
            panic!("aws: {{}}")
        };
        assert_eq!(
            c.access_key_id, "",
            "the default chain, resolved by the proxy at run time"
        );
        let Ok(Some(Kind::Aws(c))) = auth(serde_json::json!({"aws": {
            "accessKeyId": "AKID", "secretAccessKey": "s",
            "assumeRole": {"roleArn": "arn:aws:iam::123456789012:role/r"}}}))
        else {
            panic!("static + role")
        };
        assert_eq!(
            (c.access_key_id.as_str(), c.assume_role_arn.as_str()),
            ("AKID", "arn:aws:iam::123456789012:role/r")
        );
        assert_eq!(
            field(auth(serde_json::json!({"aws": {"accessKeyId": "AKID"}}))),
            "b.policies.auth.aws"
        );
        assert_eq!(
            field(auth(
                serde_json::json!({"aws": {"assumeRole": {"roleArn": "bedrock"}}})
            )),
            "b.policies.auth.aws.assumeRole.roleArn"
        );
        assert_eq!(
            field(auth(
                serde_json::json!({"aws": {"secretRef": {"name": "s"}}})
            )),
            "b.policies.auth.aws.secretRef"
        );
    }

    const VIRTUAL: &str = "
backends:
- name: llm
  ai:
    groups:
    - providers:
      - {name: oai, openai: {}, host: 127.0.0.1, port: 9001}
      - {name: ant, anthropic: {model: claude-sonnet-4-5}, host: 127.0.0.1, port: 9002}
    virtualModels:
    - name: smart
      targets:
      - {provider: oai, model: gpt-4o, weight: 90}
      - {provider: ant, weight: 10}
    - name: tiered
      targets:
      - {provider: ant, when: 'request.headers[\"x-tier\"] == \"premium\"'}
      - {provider: oai, model: gpt-4o-mini, priority: 1}
";

    fn ai_of(loaded: &crate::config::Loaded) -> pb::AiBackend {
        loaded
            .resources
            .iter()
            .find_map(|r| match &r.kind {
                Some(agora_proto::resource::resource::Kind::Backend(b)) => match &b.kind {
                    Some(pb::backend::Kind::Ai(ai)) => Some(ai.clone()),
                    _ => None,
                },
                _ => None,
            })
            .expect("an AI backend")
    }

    #[test]
    fn virtual_models_convert_with_defaults() {
        let loaded = crate::config::load_str(VIRTUAL, Path::new(".")).unwrap();
        let ai = ai_of(&loaded);
        let smart = &ai.virtual_models[0];
        assert_eq!(smart.name, "smart");
        let t: Vec<_> = smart
            .targets
            .iter()
            .map(|t| (t.provider.as_str(), t.model.as_str(), t.weight, t.priority))
            .collect();
        assert_eq!(t, [("oai", "gpt-4o", 90, 0), ("ant", "", 10, 0)]);
        let tiered = &ai.virtual_models[1];
        assert_eq!(tiered.targets[0].weight, 1, "default weight");
        assert_eq!(tiered.targets[1].priority, 1);
        assert!(tiered.targets[0].when.contains("x-tier"));
        let ir = crate::ir::build(
            &loaded.gateway,
            loaded.resources,
            &crate::backend::StateRegistry::default(),
        );
        assert!(ir.is_ok(), "{:?}", ir.err());
    }

    #[test]
    fn virtual_model_refusals_name_the_field() {
        let convert_err = |from: &str, to: &str| {
            let yaml = VIRTUAL.replacen(from, to, 1);
            crate::config::load_str(&yaml, Path::new("."))
                .expect_err(&yaml)
                .to_string()
        };
        let e = convert_err(
            "{provider: oai, model: gpt-4o",
            "{provider: nope, model: gpt-4o",
        );
        assert!(
            e.contains("backends[0].ai.virtualModels[0].targets[0].provider")
                && e.contains("oai, ant"),
            "{e}"
        );
        let e = convert_err("model: gpt-4o-mini, priority", "priority");
        assert!(e.contains("virtualModels[1].targets[1].model"), "{e}");
        let e = convert_err("name: tiered", "name: smart");
        assert!(e.contains("virtualModels[1].name"), "{e}");
        let e = convert_err("weight: 90}", "weight: 90, colour: red}");
        assert!(e.contains("colour"), "{e}");
        // A virtual model's name may not also be an alias key (neither would shadow the other).
        let yaml =
            format!("{VIRTUAL}  policies:\n    ai:\n      modelAliases: {{smart: gpt-4o}}\n");
        let e = crate::config::load_str(&yaml, Path::new("."))
            .expect_err(&yaml)
            .to_string();
        assert!(
            e.contains("virtualModels[0].name") && e.contains("modelAliases"),
            "{e}"
        );
        // CEL compiles when the config is built.
        let yaml = VIRTUAL.replacen("== \"premium\"", "== ", 1);
        let loaded = crate::config::load_str(&yaml, Path::new(".")).unwrap();
        let e = crate::ir::build(
            &loaded.gateway,
            loaded.resources,
            &crate::backend::StateRegistry::default(),
        )
        .expect_err("bad CEL")
        .to_string();
        assert!(e.contains("ai.virtualModels[1].targets[0].when"), "{e}");
    }
}
