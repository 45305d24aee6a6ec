//! `policies[]` of the local config → proto Policies, one per target. Keys in `keyEnv` come
//! from the environment; `secretRef` needs a cluster.

use std::collections::BTreeMap;

use agora_policies::spec::convert::{self, Secrets};
use agora_proto::resource as pb;

use super::schema::{LocalConfig, PolicyConfig};
use crate::error::{Error, Result};

struct LocalSecrets;

impl Secrets for LocalSecrets {
    fn secret(
        &mut self,
        name: &str,
        at: &str,
    ) -> agora_policies::spec::convert::Result<BTreeMap<String, String>> {
        Err(agora_policies::Error::Config {
            field: at.into(),
            message: format!(
                "Secret {name:?} cannot be read outside a cluster; list the keys (or htpasswd lines) inline"
            ),
        })
    }

    fn env(&mut self, var: &str, at: &str) -> agora_policies::spec::convert::Result<String> {
        std::env::var(var).map_err(|_| agora_policies::Error::Config {
            field: at.into(),
            message: format!("environment variable {var} is not set"),
        })
    }
}

fn config_error(e: agora_policies::Error) -> Error {
    match e {
        agora_policies::Error::Config { field, message } => Error::invalid(field, message),
        other => Error::invalid("policies", other),
    }
}

/// Converts one policy into a resource per target.
pub fn policy(
    p: &PolicyConfig,
    at: &str,
    cfg: &LocalConfig,
    gateway: &str,
) -> Result<Vec<pb::Policy>> {
    let (traffic, prompt_guard) = convert::sections(
        p.traffic.as_ref(),
        p.backend.as_ref(),
        at,
        &mut LocalSecrets,
    )
    .map_err(config_error)?;
    if p.target_refs.is_empty() {
        return Err(Error::invalid(
            format!("{at}.targetRefs"),
            "a policy needs a target",
        ));
    }
    let mut out = Vec::new();
    for (i, t) in p.target_refs.iter().enumerate() {
        let at = format!("{at}.targetRefs[{i}]");
        use pb::policy_target::Kind as K;
        let kind = match t.kind.as_str() {
            "Gateway" => K::Gateway(gateway.to_string()),
            "Listener" => K::Listener(listener_key(cfg, &t.name, &at)?),
            "HTTPRoute" | "Route" => {
                if !cfg
                    .binds
                    .iter()
                    .flat_map(|b| &b.listeners)
                    .flat_map(|l| l.routes.iter().enumerate())
                    .any(|(ri, r)| r.name.clone().unwrap_or_else(|| format!("route{ri}")) == t.name)
                {
                    return Err(Error::invalid(
                        format!("{at}.name"),
                        format!("no route named {:?}", t.name),
                    ));
                }
                K::Route(format!("{gateway}/{}", t.name))
            }
            "Backend" | "AgentgatewayBackend" => {
                if !cfg.backends.iter().any(|b| b.name == t.name) {
                    return Err(Error::invalid(
                        format!("{at}.name"),
                        format!("no backend named {:?}", t.name),
                    ));
                }
                K::Backend(format!("backend/{}", t.name))
            }
            other => {
                return Err(Error::invalid(
                    format!("{at}.kind"),
                    format!("{other:?} is not Gateway, Listener, HTTPRoute or Backend"),
                ));
            }
        };
        out.push(pb::Policy {
            key: format!("policy/{}/{i}", p.name),
            target: Some(pb::PolicyTarget {
                kind: Some(kind),
                section: String::new(),
            }),
            r#override: p.override_,
            traffic: traffic.clone(),
            prompt_guard: prompt_guard.clone(),
        });
    }
    Ok(out)
}

/// The key of the listener called `name` (which must be unique across ports).
fn listener_key(cfg: &LocalConfig, name: &str, at: &str) -> Result<String> {
    let found: Vec<String> = cfg
        .binds
        .iter()
        .flat_map(|b| {
            b.listeners.iter().enumerate().filter_map(move |(li, l)| {
                let n = l.name.clone().unwrap_or_else(|| format!("listener{li}"));
                (n == name).then(|| format!("listener/{}/{n}", b.port))
            })
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Error::invalid(
            format!("{at}.name"),
            format!("no listener named {name:?}"),
        )),
        _ => Err(Error::invalid(
            format!("{at}.name"),
            format!("listener name {name:?} is used on several ports"),
        )),
    }
}
