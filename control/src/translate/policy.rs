//! AgentgatewayPolicies → proto Policies, one per resolved target. The sections are parsed
//! and checked with the proxy's own schema (`agora_policies::spec`), so a bad expression,
//! pattern or key is reported on the policy's status, per target, and never reaches a proxy.
//! `metadata.annotations["agora.dev/override"] = "true"` makes the policy win over policies
//! at more specific levels.

use std::collections::BTreeMap;

use agora_policies::spec::convert::{self, Secrets};
use agora_policies::spec::{BackendPolicyConfig, TrafficConfig};
use agora_proto::resource as pb;
use serde_json::{Value, json};

use super::status::{ObjectStatus, condition};
use super::{GATEWAY_GROUP, Output, generation};
use crate::CONTROLLER_NAME;
use crate::crd::{AgentgatewayPolicy, PolicyTargetRef};
use crate::snapshot::{ObjKey, Snapshot};

const AGW_GROUP: &str = "agentgateway.dev";

/// Secrets of the policy's namespace.
struct ClusterSecrets<'a> {
    s: &'a Snapshot,
    ns: &'a str,
}

impl Secrets for ClusterSecrets<'_> {
    fn secret(&mut self, name: &str, at: &str) -> convert::Result<BTreeMap<String, String>> {
        let secret = self
            .s
            .secrets
            .get(&ObjKey::new(self.ns, name))
            .ok_or_else(|| agora_policies::Error::Config {
                field: at.into(),
                message: format!("Secret {}/{name} not found", self.ns),
            })?;
        let mut out: BTreeMap<String, String> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        out.extend(secret.string_data.clone().into_iter().flatten());
        Ok(out)
    }

    fn env(&mut self, var: &str, at: &str) -> convert::Result<String> {
        Err(agora_policies::Error::Config {
            field: at.into(),
            message: format!(
                "keyEnv ({var}) is for local config files; in a cluster use secretRef"
            ),
        })
    }
}

fn convert(
    s: &Snapshot,
    ns: &str,
    p: &AgentgatewayPolicy,
) -> Result<(Option<pb::TrafficPolicy>, Option<pb::PromptGuard>), String> {
    if p.spec.frontend.is_some() {
        return Err("spec.frontend is not supported by this version of agora".into());
    }
    let traffic: Option<TrafficConfig> = p
        .spec
        .traffic
        .as_ref()
        .map(|v| serde_json::from_value(v.clone()).map_err(|e| format!("spec.traffic: {e}")))
        .transpose()?;
    let backend: Option<BackendPolicyConfig> = p
        .spec
        .backend
        .as_ref()
        .map(|v| serde_json::from_value(v.clone()).map_err(|e| format!("spec.backend: {e}")))
        .transpose()?;
    let (traffic, guard) = convert::sections(
        traffic.as_ref(),
        backend.as_ref(),
        "spec",
        &mut ClusterSecrets { s, ns },
    )
    .map_err(|e| e.to_string())?;
    if traffic.is_none() && guard.is_none() {
        return Err(
            "the policy sets nothing (spec.traffic, spec.backend.ai or spec.backend.mcp)".into(),
        );
    }
    Ok((traffic, guard))
}

/// Resolves one target reference in the policy's namespace.
fn target(s: &Snapshot, ns: &str, t: &PolicyTargetRef) -> Result<pb::PolicyTarget, String> {
    use pb::policy_target::Kind as K;
    let key = ObjKey::new(ns, &t.name);
    let section = t.section_name.clone().unwrap_or_default();
    let (kind, section) = match (t.group.as_str(), t.kind.as_str()) {
        (GATEWAY_GROUP, "Gateway") => {
            let gw = s
                .gateways
                .get(&key)
                .ok_or_else(|| format!("Gateway {key} not found"))?;
            if section.is_empty() {
                (K::Gateway(key.to_string()), String::new())
            } else if gw.spec.listeners.iter().any(|l| l.name == section) {
                (K::Listener(format!("{key}/{section}")), String::new())
            } else {
                return Err(format!("Gateway {key} has no listener {section:?}"));
            }
        }
        (GATEWAY_GROUP, "HTTPRoute") => {
            let r = s
                .http_routes
                .get(&key)
                .ok_or_else(|| format!("HTTPRoute {key} not found"))?;
            let rules = r.spec.rules.iter().flatten().enumerate();
            let names: Vec<String> = rules
                .map(|(i, r)| r.name.clone().unwrap_or_else(|| i.to_string()))
                .collect();
            if !section.is_empty() && !names.contains(&section) {
                return Err(format!("HTTPRoute {key} has no rule {section:?}"));
            }
            (K::Route(key.to_string()), section)
        }
        (GATEWAY_GROUP, "GRPCRoute") => {
            s.grpc_routes
                .get(&key)
                .ok_or_else(|| format!("GRPCRoute {key} not found"))?;
            (K::Route(key.to_string()), section)
        }
        (AGW_GROUP, "AgentgatewayBackend") => {
            s.backends
                .get(&key)
                .ok_or_else(|| format!("AgentgatewayBackend {key} not found"))?;
            (K::Backend(super::agw::key(&key)), String::new())
        }
        (g, k) => return Err(format!("targets of kind {g}/{k} are not supported")),
    };
    Ok(pb::PolicyTarget {
        kind: Some(kind),
        section,
    })
}

/// Targets named by `targetSelectors` (Gateways and routes whose labels match).
fn selected(s: &Snapshot, ns: &str, p: &AgentgatewayPolicy) -> Vec<PolicyTargetRef> {
    let mut out = Vec::new();
    for sel in &p.spec.target_selectors {
        let matches = |labels: &Option<BTreeMap<String, String>>| {
            let labels = labels.clone().unwrap_or_default();
            sel.match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v))
        };
        let names: Vec<String> = match (sel.group.as_str(), sel.kind.as_str()) {
            (GATEWAY_GROUP, "Gateway") => s
                .gateways
                .iter()
                .filter(|(k, g)| k.namespace == ns && matches(&g.metadata.labels))
                .map(|(k, _)| k.name.clone())
                .collect(),
            (GATEWAY_GROUP, "HTTPRoute") => s
                .http_routes
                .iter()
                .filter(|(k, r)| k.namespace == ns && matches(&r.metadata.labels))
                .map(|(k, _)| k.name.clone())
                .collect(),
            (GATEWAY_GROUP, "GRPCRoute") => s
                .grpc_routes
                .iter()
                .filter(|(k, r)| k.namespace == ns && matches(&r.metadata.labels))
                .map(|(k, _)| k.name.clone())
                .collect(),
            (AGW_GROUP, "AgentgatewayBackend") => s
                .backends
                .iter()
                .filter(|(k, b)| k.namespace == ns && matches(&b.metadata.labels))
                .map(|(k, _)| k.name.clone())
                .collect(),
            _ => vec![],
        };
        out.extend(names.into_iter().map(|name| PolicyTargetRef {
            group: sel.group.clone(),
            kind: sel.kind.clone(),
            name,
            section_name: None,
        }));
    }
    out
}

pub(super) fn policies(s: &Snapshot, out: &mut Output) {
    for (k, p) in &s.policies {
        let g = generation(&p.metadata);
        let converted = convert(s, &k.namespace, p);
        let over = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("agora.dev/override"))
            .is_some_and(|v| v == "true");
        let refs: Vec<PolicyTargetRef> = p
            .spec
            .target_refs
            .iter()
            .cloned()
            .chain(selected(s, &k.namespace, p))
            .collect();
        let mut ancestors: Vec<Value> = Vec::new();
        for (i, t) in refs.iter().enumerate() {
            let (ok, reason, message) = match (&converted, target(s, &k.namespace, t)) {
                (Err(e), _) => (false, "Invalid", e.clone()),
                (_, Err(e)) => (false, "TargetNotFound", e),
                (Ok((traffic, guard)), Ok(target)) => {
                    let key = format!("agentgateway/{k}#{i}");
                    out.policies.insert(
                        key.clone(),
                        pb::Policy {
                            key,
                            target: Some(target),
                            r#override: over,
                            traffic: traffic.clone(),
                            prompt_guard: guard.clone(),
                        },
                    );
                    (true, "Accepted", "Policy accepted".to_string())
                }
            };
            let mut ancestor = json!({
                "group": t.group, "kind": t.kind, "name": t.name, "namespace": k.namespace,
            });
            if let Some(sn) = &t.section_name {
                ancestor["sectionName"] = json!(sn);
            }
            ancestors.push(json!({
                "ancestorRef": ancestor,
                "controllerName": CONTROLLER_NAME,
                "conditions": [condition("Accepted", ok, reason, &message, g)],
            }));
        }
        out.statuses.push(ObjectStatus {
            kind: "AgentgatewayPolicy",
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            status: json!({ "ancestors": ancestors }).into(),
        });
    }
}
