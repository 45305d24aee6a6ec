//! AgentgatewayPolicies: until the policy engine lands, each target reports plainly that the
//! policy is not enforced, so nobody believes a rate limit or an authorization rule is on.

use serde_json::json;

use super::status::{ObjectStatus, condition};
use super::{Output, generation};
use crate::CONTROLLER_NAME;
use crate::snapshot::Snapshot;

pub(super) fn policies(s: &Snapshot, out: &mut Output) {
    for (k, p) in &s.policies {
        let g = generation(&p.metadata);
        let ancestors: Vec<_> = p
            .spec
            .target_refs
            .iter()
            .map(|t| {
                json!({
                    "ancestorRef": {
                        "group": t.group, "kind": t.kind, "name": t.name, "namespace": k.namespace,
                    },
                    "controllerName": CONTROLLER_NAME,
                    "conditions": [condition(
                        "Accepted",
                        false,
                        "Unsupported",
                        "AgentgatewayPolicy is not enforced by this version of agora yet; \
                         the target serves without it",
                        g,
                    )],
                })
            })
            .collect();
        out.statuses.push(ObjectStatus {
            kind: "AgentgatewayPolicy",
            namespace: k.namespace.clone(),
            name: k.name.clone(),
            status: json!({ "ancestors": ancestors }),
        });
    }
}
