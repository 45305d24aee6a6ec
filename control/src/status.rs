//! Status writer: patches the `.status` of GatewayClasses, Gateways, HTTPRoutes, GRPCRoutes,
//! TCPRoutes, TLSRoutes, AgentgatewayBackends and AgentgatewayPolicies with what the
//! translator computed, only when it changed and only while this replica leads. Route parents
//! and policy ancestors written by other controllers are kept: ours are replaced, theirs left
//! alone.

use std::sync::Arc;

use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::CONTROLLER_NAME;
use crate::translate::status::ObjectStatus;
use crate::xds::Published;

/// The API of `kind`, in each version its status may be written through, preferred first
/// (the next is tried when the cluster does not serve one).
fn resources(kind: &str) -> Vec<ApiResource> {
    const GW: &str = "gateway.networking.k8s.io";
    let (group, versions, plural): (_, &[&str], _) = match kind {
        "GatewayClass" => (GW, &["v1"], "gatewayclasses"),
        "Gateway" => (GW, &["v1"], "gateways"),
        "HTTPRoute" => (GW, &["v1"], "httproutes"),
        "GRPCRoute" => (GW, &["v1"], "grpcroutes"),
        "TCPRoute" => (GW, crate::source::l4::TCP_ROUTE_VERSIONS, "tcproutes"),
        "TLSRoute" => (GW, crate::source::l4::TLS_ROUTE_VERSIONS, "tlsroutes"),
        "AgentgatewayBackend" => ("agentgateway.dev", &["v1alpha1"], "agentgatewaybackends"),
        "AgentgatewayPolicy" => ("agentgateway.dev", &["v1alpha1"], "agentgatewaypolicies"),
        "InferencePool" => (crate::crd::INFERENCE_GROUP, &["v1"], "inferencepools"),
        _ => return Vec::new(),
    };
    versions
        .iter()
        .map(|version| ApiResource {
            group: group.into(),
            version: (*version).into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        })
        .collect()
}

/// Writes statuses for every published snapshot while `leader` is true.
pub async fn run(
    client: Client,
    outputs: watch::Receiver<Arc<Published>>,
    leader: watch::Receiver<bool>,
) {
    let desired = |p: &Arc<Published>| {
        p.output
            .statuses
            .iter()
            .map(|st| {
                (
                    format!("{}/{}/{}", st.kind, st.namespace, st.name),
                    st.clone(),
                )
            })
            .collect()
    };
    let client = &client;
    crate::leader::reconcile(outputs, leader, desired, |st: ObjectStatus| async move {
        write(client, &st).await.map_err(|e| e.to_string())
    })
    .await;
}

/// Patches one object's status, stamping condition transition times.
pub async fn write(client: &Client, st: &ObjectStatus) -> kube::Result<()> {
    let versions = resources(st.kind);
    for (i, ar) in versions.iter().enumerate() {
        match write_as(client, st, ar).await {
            // This version may not be served; an older one may be.
            Err(kube::Error::Api(e)) if e.is_not_found() && i + 1 < versions.len() => {}
            r => return r,
        }
    }
    Ok(())
}

async fn write_as(client: &Client, st: &ObjectStatus, ar: &ApiResource) -> kube::Result<()> {
    let api: Api<DynamicObject> = if st.namespace.is_empty() {
        Api::all_with(client.clone(), ar)
    } else {
        Api::namespaced_with(client.clone(), &st.namespace, ar)
    };
    let now = jiff::Timestamp::now().to_string();
    let mut status = (*st.status).clone();
    stamp(&mut status, &now);
    // Lists shared with other controllers: keep their entries.
    for (list, owner) in [
        ("parents", "controllerName"),
        ("ancestors", "controllerName"),
    ] {
        if status.get(list).is_none() {
            continue;
        }
        let current = api.get_opt(&st.name).await?;
        let theirs: Vec<Value> = current
            .and_then(|o| o.data.get("status").and_then(|s| s.get(list)).cloned())
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e[owner] != CONTROLLER_NAME)
            .collect();
        if let Some(ours) = status[list].as_array_mut() {
            ours.extend(theirs);
        }
    }
    api.patch_status(
        &st.name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await?;
    Ok(())
}

/// Adds `lastTransitionTime` to every condition, at any depth.
fn stamp(v: &mut Value, now: &str) {
    match v {
        Value::Object(m) => {
            if m.contains_key("type") && m.contains_key("reason") && m.contains_key("status") {
                m.entry("lastTransitionTime").or_insert_with(|| json!(now));
            }
            for x in m.values_mut() {
                stamp(x, now);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| stamp(x, now)),
        _ => {}
    }
}
