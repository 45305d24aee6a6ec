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
            status: json!({ "conditions": [accepted] }),
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
/// entry, a leading `Bearer ` dropped), an inline key, the client's own (`passthrough`), or
/// AWS keys written inline.
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
        let name = r["name"]
            .as_str()
            .ok_or_else(|| err("secretRef.name", "is required".into()))?;
        let secret = s
            .secrets
            .get(&ObjKey::new(ns, name))
            .ok_or_else(|| err("secretRef", format!("Secret {ns}/{name} not found")))?;
        let value = secret
            .data
            .as_ref()
            .and_then(|d| d.get("Authorization"))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .or_else(|| {
                secret
                    .string_data
                    .as_ref()
                    .and_then(|d| d.get("Authorization").cloned())
            })
            .ok_or_else(|| {
                err(
                    "secretRef",
                    format!("Secret {ns}/{name} has no Authorization entry"),
                )
            })?;
        let value = value.trim();
        let key = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .unwrap_or(value);
        Kind::Key(key.trim().to_string())
    } else if let Some(k) = &a.key {
        Kind::Key(k.clone())
    } else if a.passthrough.is_some() {
        Kind::Passthrough(true)
    } else if let Some(aws) = &a.aws {
        Kind::Aws(pb::AwsCredentials {
            access_key_id: aws.access_key_id.clone().unwrap_or_default(),
            secret_access_key: aws.secret_access_key.clone().unwrap_or_default(),
            session_token: aws.session_token.clone().unwrap_or_default(),
        })
    } else {
        return Err(err(
            "",
            "in a cluster, use secretRef, key, passthrough or aws (keyFile and keyEnv are for local files)"
                .into(),
        ));
    };
    Ok(pb::BackendAuth { kind: Some(kind) })
}
