//! AgentgatewayBackends → Backend resources: `ai` through the shared provider conversion
//! (API keys from Secrets), `a2a` and `static` to a Service in the snapshot when the host is
//! its cluster name, else to the host itself; `mcp` as written (the proxy resolves target
//! hosts, cluster names included).
//! Each object gets an Accepted status saying what is wrong, if anything.

use agora_proto::resource as pb;
use agora_providers::spec::AuthConfig;
use serde_json::json;

use super::backend::RefError;
use super::status::{ObjectStatus, condition};
use super::{Output, generation};
use crate::crd::{AgentgatewayBackend, HostPort};
use crate::snapshot::{ObjKey, Snapshot};

/// The Backend key of an AgentgatewayBackend.
pub(super) fn key(k: &ObjKey) -> String {
    format!("agentgateway/{k}")
}

/// Converts every AgentgatewayBackend; the valid ones land in `out.backends`.
pub(super) fn backends(s: &Snapshot, out: &mut Output) {
    for (k, b) in &s.backends {
        let g = generation(&b.metadata);
        let accepted = match convert(s, out, k, b) {
            Ok(pb) => {
                out.backends.insert(pb.key.clone(), pb);
                condition("Accepted", true, "Accepted", "", g)
            }
            Err(e) => condition("Accepted", false, e.reason, &e.message, g),
        };
        out.statuses.push(ObjectStatus {
            kind: "AgentgatewayBackend",
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            status: json!({ "conditions": [accepted] }).into(),
        });
    }
}

/// Why the AgentgatewayBackend `k` did not convert (for a route referring to it).
pub(super) fn error(s: &Snapshot, k: &ObjKey) -> RefError {
    let Some(b) = s.backends.get(k) else {
        return RefError {
            reason: "BackendNotFound",
            message: format!("AgentgatewayBackend {k} not found"),
        };
    };
    match convert(s, &mut Output::default(), k, b) {
        Ok(_) => RefError {
            reason: "BackendNotFound",
            message: format!("AgentgatewayBackend {k} is not ready"),
        },
        Err(e) => e,
    }
}

fn convert(
    s: &Snapshot,
    out: &mut Output,
    k: &ObjKey,
    b: &AgentgatewayBackend,
) -> Result<pb::Backend, RefError> {
    let spec = &b.spec;
    let set = [
        spec.ai.is_some(),
        spec.mcp.is_some(),
        spec.a2a.is_some(),
        spec.static_.is_some(),
    ];
    if set.iter().filter(|x| **x).count() != 1 {
        return Err(RefError {
            reason: "InvalidKind",
            message: format!(
                "AgentgatewayBackend {k} must set exactly one of ai, mcp, a2a, static"
            ),
        });
    }
    let key = key(k);
    let kind = if let Some(ai) = &spec.ai {
        let mut resolve = |a: &AuthConfig, at: &str| auth(s, &k.namespace, a, at);
        let ai = agora_providers::spec::convert::ai_backend(
            &k.name,
            ai,
            spec.policies.as_ref(),
            "spec",
            &mut resolve,
        )
        .map_err(|e| RefError {
            reason: "BackendNotFound",
            message: format!("AgentgatewayBackend {k}: {e}"),
        })?;
        // Conditions compile here too, so a bad one shows in the status, not only as a NACK.
        for (vi, v) in ai.virtual_models.iter().enumerate() {
            for (ti, t) in v.targets.iter().enumerate() {
                if t.when.is_empty() {
                    continue;
                }
                if let Err(e) = agora_policies::cel::Expr::compile(&t.when) {
                    return Err(RefError {
                        reason: "BackendNotFound",
                        message: format!(
                            "AgentgatewayBackend {k}: invalid config at spec.ai.virtualModels[{vi}].targets[{ti}].when: {e}"
                        ),
                    });
                }
            }
        }
        pb::backend::Kind::Ai(ai)
    } else if let Some(mcp) = &spec.mcp {
        let mcp = mcp.to_proto("spec.mcp").map_err(|e| RefError {
            reason: "InvalidTarget",
            message: format!("AgentgatewayBackend {k}: {e}"),
        })?;
        pb::backend::Kind::Mcp(mcp)
    } else {
        let hp = spec
            .a2a
            .as_ref()
            .or(spec.static_.as_ref())
            .ok_or_else(|| RefError {
                reason: "InvalidKind",
                message: format!("AgentgatewayBackend {k} has no kind"),
            })?;
        host_port(s, out, hp)
    };
    Ok(pb::Backend {
        key,
        kind: Some(kind),
        app_protocol: if spec.a2a.is_some() {
            pb::AppProtocol::A2a
        } else {
            pb::AppProtocol::Http
        } as i32,
        ..Default::default()
    })
}

/// `name.namespace.svc[.cluster.local]` of a Service in the snapshot becomes that Service;
/// anything else is a static host.
fn host_port(s: &Snapshot, out: &mut Output, hp: &HostPort) -> pb::backend::Kind {
    let host = hp.host.trim_end_matches('.');
    let labels: Vec<&str> = host.split('.').collect();
    let cluster_name = matches!(
        labels.as_slice(),
        [_, _, "svc"] | [_, _, "svc", "cluster", "local"]
    );
    if cluster_name {
        let svc = ObjKey::new(labels[1], labels[0]);
        if s.services.contains_key(&svc) {
            out.services.entry(svc.to_string()).or_default();
            return pb::backend::Kind::Service(pb::ServiceBackend {
                service_key: svc.to_string(),
                port: u32::from(hp.port),
            });
        }
    }
    pb::backend::Kind::Static(pb::StaticBackend {
        endpoints: vec![pb::Endpoint {
            host: host.to_string(),
            port: u32::from(hp.port),
            weight: 1,
        }],
    })
}

/// Backend credentials in a cluster: a key from a Secret (`secretRef`, its `Authorization`
/// entry, a leading `Bearer ` dropped), an inline key, the client's own (`passthrough`), AWS
/// credentials (inline, from a Secret, or the proxy's default chain) or GCP tokens (a
/// service-account key from a Secret or inline, or the proxy's Application Default
/// Credentials).
fn auth(
    s: &Snapshot,
    ns: &str,
    a: &AuthConfig,
    at: &str,
) -> Result<pb::BackendAuth, agora_providers::Error> {
    use pb::backend_auth::Kind;
    let err = |field: &str, message: String| agora_providers::Error::Config {
        field: format!("{at}.{field}"),
        message,
    };
    let kind = if let Some(r) = &a.secret_ref {
        let (name, secret) = secret(s, ns, r, &format!("{at}.secretRef"))?;
        let value = entry(secret, "Authorization").ok_or_else(|| {
            err(
                "secretRef",
                format!("Secret {ns}/{name} has no Authorization entry"),
            )
        })?;
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(&value);
        Kind::Key(key.trim().to_string())
    } else if let Some(k) = &a.key {
        Kind::Key(k.clone())
    } else if a.passthrough.is_some() {
        Kind::Passthrough(true)
    } else if let Some(aws) = &a.aws {
        let at = format!("{at}.aws");
        let mut creds = agora_providers::spec::convert::aws_credentials(aws, &at)?;
        if let Some(r) = &aws.secret_ref {
            if !creds.access_key_id.is_empty() {
                return Err(err(
                    "aws.secretRef",
                    "set either secretRef or accessKeyId/secretAccessKey".into(),
                ));
            }
            let (name, secret) = secret(s, ns, r, &format!("{at}.secretRef"))?;
            let need = |k: &str| {
                entry(secret, k).ok_or_else(|| {
                    err(
                        "aws.secretRef",
                        format!("Secret {ns}/{name} has no {k} entry"),
                    )
                })
            };
            creds.access_key_id = need("accessKey")?;
            creds.secret_access_key = need("secretKey")?;
            creds.session_token = entry(secret, "sessionToken").unwrap_or_default();
        }
        Kind::Aws(creds)
    } else if let Some(gcp) = &a.gcp {
        let at = format!("{at}.gcp");
        agora_providers::spec::convert::check_gcp(gcp, &at)?;
        if gcp.service_account_key_file.is_some() {
            return Err(err(
                "gcp.serviceAccountKeyFile",
                "is for local files; in a cluster use secretRef".into(),
            ));
        }
        let key = match (&gcp.secret_ref, &gcp.service_account_key) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "gcp",
                    "set at most one of secretRef and serviceAccountKey".into(),
                ));
            }
            (Some(r), None) => {
                let (name, secret) = secret(s, ns, r, &format!("{at}.secretRef"))?;
                gcp_key_entry(secret).ok_or_else(|| {
                    err(
                        "gcp.secretRef",
                        format!(
                            "Secret {ns}/{name} has no key.json, credentials.json or serviceAccountKey entry"
                        ),
                    )
                })?
            }
            (None, Some(v)) => agora_providers::spec::convert::inline_gcp_key(
                v,
                &format!("{at}.serviceAccountKey"),
            )?,
            (None, None) => String::new(),
        };
        Kind::Gcp(pb::GcpAuth {
            service_account_key: key,
        })
    } else {
        return Err(err(
            "",
            "in a cluster, use secretRef, key, passthrough, aws or gcp (keyFile and keyEnv are for local files)"
                .into(),
        ));
    };
    Ok(pb::BackendAuth { kind: Some(kind) })
}

/// The Secret a `secretRef` (`{name: …}`) names, in the backend's namespace.
fn secret<'a>(
    s: &'a Snapshot,
    ns: &str,
    r: &serde_json::Value,
    at: &str,
) -> Result<(String, &'a k8s_openapi::api::core::v1::Secret), agora_providers::Error> {
    let err = |field: &str, message: String| agora_providers::Error::Config {
        field: format!("{at}{field}"),
        message,
    };
    let name = r["name"]
        .as_str()
        .ok_or_else(|| err(".name", "is required".into()))?;
    let secret = s
        .secrets
        .get(&ObjKey::new(ns, name))
        .ok_or_else(|| err("", format!("Secret {ns}/{name} not found")))?;
    Ok((name.to_string(), secret))
}

/// One entry of a Secret (`data`, else `stringData`), as text without the whitespace around
/// it (Secrets made from files often end in a newline).
fn entry(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| secret_text(&b.0))
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|v| v.trim().to_string())
        })
}

/// Secret bytes as trimmed text.
fn secret_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// The service-account key of a Secret: its `key.json`, `credentials.json` or
/// `serviceAccountKey` entry, or its only entry.
fn gcp_key_entry(secret: &k8s_openapi::api::core::v1::Secret) -> Option<String> {
    ["key.json", "credentials.json", "serviceAccountKey"]
        .iter()
        .find_map(|k| entry(secret, k))
        .or_else(|| {
            let data = secret.data.as_ref().filter(|d| d.len() == 1)?;
            data.values().next().map(|b| secret_text(&b.0))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::core::v1::Secret;

    #[test]
    fn secret_entries_are_trimmed_text() {
        let secret = Secret {
            data: Some(
                [
                    (
                        "Authorization".to_string(),
                        ByteString(b"Bearer sk-1\n".to_vec()),
                    ),
                    ("key.json".to_string(), ByteString(b" {}\r\n".to_vec())),
                ]
                .into(),
            ),
            string_data: Some([("sessionToken".to_string(), " tok \n".to_string())].into()),
            ..Default::default()
        };
        assert_eq!(
            entry(&secret, "Authorization").as_deref(),
            Some("Bearer sk-1")
        );
        assert_eq!(entry(&secret, "sessionToken").as_deref(), Some("tok"));
        assert_eq!(entry(&secret, "accessKey"), None);
        assert_eq!(gcp_key_entry(&secret).as_deref(), Some("{}"));
        let only = Secret {
            data: Some([("sa.json".to_string(), ByteString(b"{\"a\":1}\n".to_vec()))].into()),
            ..Default::default()
        };
        assert_eq!(gcp_key_entry(&only).as_deref(), Some("{\"a\":1}"));
    }
}
