//! Deployer: for each Gateway of our class, the proxy's ServiceAccount, Deployment and
//! Service, shaped by AgentgatewayParameters (Gateway `infrastructure.parametersRef`, else
//! the GatewayClass's `parametersRef`): image, resources, env, log level, and JSON merge
//! overlays. [`objects`] is pure; [`run`] applies them with server-side apply (owner: the
//! Gateway, so deleting it deletes them) while this replica leads.

use std::sync::Arc;

use gateway_api::experimental::gateways::Gateway;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::CONTROLLER_NAME;
use crate::crd::AgentgatewayParameters;
use crate::snapshot::{ObjKey, Snapshot};

/// Field manager of our server-side applies.
pub const MANAGER: &str = "agora-controller";
/// Label marking objects the deployer owns.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "agora");

/// What the deployer needs beyond the snapshot.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Default proxy image (`registry/repository:tag`).
    pub image: String,
    /// xDS address proxies connect to, e.g. `http://agora-controller.agora-system.svc:15010`.
    pub xds_url: String,
}

/// The objects for every Gateway whose class we own.
pub fn objects(s: &Snapshot, settings: &Settings) -> Vec<Value> {
    s.gateways
        .iter()
        .filter(|(_, g)| {
            s.gateway_classes
                .get(&g.spec.gateway_class_name)
                .is_some_and(|c| c.spec.controller_name == CONTROLLER_NAME)
        })
        .flat_map(|(k, g)| gateway_objects(k, g, parameters(s, k, g).as_deref(), settings))
        .collect()
}

fn parameters(s: &Snapshot, k: &ObjKey, g: &Gateway) -> Option<Arc<AgentgatewayParameters>> {
    let by_ref = |group: &str, kind: &str, ns: &str, name: &str| {
        (group == crate::crd::GROUP && kind == "AgentgatewayParameters")
            .then(|| s.parameters.get(&ObjKey::new(ns, name)).cloned())
            .flatten()
    };
    if let Some(r) = g
        .spec
        .infrastructure
        .as_ref()
        .and_then(|i| i.parameters_ref.as_ref())
    {
        return by_ref(&r.group, &r.kind, &k.namespace, &r.name);
    }
    let class = s.gateway_classes.get(&g.spec.gateway_class_name)?;
    let r = class.spec.parameters_ref.as_ref()?;
    by_ref(
        &r.group,
        &r.kind,
        r.namespace.as_deref().unwrap_or_default(),
        &r.name,
    )
}

/// ServiceAccount, Deployment and Service of one Gateway.
pub fn gateway_objects(
    k: &ObjKey,
    g: &Gateway,
    params: Option<&AgentgatewayParameters>,
    settings: &Settings,
) -> Vec<Value> {
    let name = &k.name;
    let ns = &k.namespace;
    let labels = json!({
        "app.kubernetes.io/name": "agora-proxy",
        "app.kubernetes.io/instance": name,
        "gateway.networking.k8s.io/gateway-name": name,
        MANAGED_BY.0: MANAGED_BY.1,
    });
    let selector = json!({
        "app.kubernetes.io/name": "agora-proxy",
        "gateway.networking.k8s.io/gateway-name": name,
    });
    let owner = json!([{
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "name": name,
        "uid": g.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
    }]);
    let meta = json!({"name": name, "namespace": ns, "labels": labels, "ownerReferences": owner});
    let mut ports: Vec<i32> = g.spec.listeners.iter().map(|l| l.port).collect();
    ports.sort_unstable();
    ports.dedup();

    let p = params.map(|p| &p.spec);
    let image = p
        .and_then(|p| p.image.as_ref())
        .map(|i| {
            let (default_repo, default_tag) = settings
                .image
                .rsplit_once(':')
                .unwrap_or((settings.image.as_str(), "latest"));
            let repo = match (&i.registry, &i.repository) {
                (Some(reg), Some(repo)) => format!("{reg}/{repo}"),
                (None, Some(repo)) => repo.clone(),
                (Some(reg), None) => format!(
                    "{reg}/{}",
                    default_repo
                        .split_once('/')
                        .map_or(default_repo, |(_, r)| r)
                ),
                (None, None) => default_repo.to_string(),
            };
            format!("{repo}:{}", i.tag.as_deref().unwrap_or(default_tag))
        })
        .unwrap_or_else(|| settings.image.clone());
    let pull = p
        .and_then(|p| p.image.as_ref())
        .and_then(|i| i.pull_policy.clone())
        .unwrap_or_else(|| "IfNotPresent".into());
    let log = p
        .and_then(|p| p.logging.as_ref())
        .and_then(|l| l.level.clone())
        .unwrap_or_else(|| "info".into());
    let mut env = vec![
        json!({"name": "RUST_LOG", "value": log}),
        json!({"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}),
    ];
    env.extend(p.map(|p| p.env.clone()).unwrap_or_default());
    let resources = p
        .and_then(|p| p.resources.clone())
        .unwrap_or_else(|| json!({"requests": {"cpu": "100m", "memory": "64Mi"}}));

    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta});
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": {"runAsNonRoot": true, "runAsUser": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]},
                    "terminationGracePeriodSeconds": 30,
                    "containers": [{
                        "name": "proxy",
                        "image": image,
                        "imagePullPolicy": pull,
                        "args": [
                            "--xds", settings.xds_url,
                            "--gateway", format!("{ns}/{name}"),
                            "--admin", "0.0.0.0:15000",
                            "--xds-token-file", "/var/run/secrets/agora/token",
                        ],
                        "env": env,
                        "ports": ports.iter().map(|p| json!({"containerPort": p, "protocol": "TCP"}))
                            .chain([json!({"name": "admin", "containerPort": 15000})])
                            .collect::<Vec<_>>(),
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 15000}, "periodSeconds": 2},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 15000}, "periodSeconds": 10},
                        "resources": resources,
                        "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                            "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "xds-token", "mountPath": "/var/run/secrets/agora", "readOnly": true}],
                    }],
                    "volumes": [{"name": "xds-token", "projected": {"sources": [{"serviceAccountToken": {
                        "path": "token", "audience": "agora-xds", "expirationSeconds": 3600}}]}}],
                }
            }
        }
    });
    let mut service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "LoadBalancer",
            "selector": selector,
            "ports": ports.iter().map(|p| json!({"name": format!("port-{p}"), "port": p, "targetPort": p, "protocol": "TCP"}))
                .collect::<Vec<_>>(),
        }
    });
    if let Some(o) = p.and_then(|p| p.deployment.as_ref()) {
        merge(&mut deployment, o);
    }
    if let Some(o) = p.and_then(|p| p.service.as_ref()) {
        merge(&mut service, o);
    }
    let mut sa = sa;
    if let Some(o) = p.and_then(|p| p.service_account.as_ref()) {
        merge(&mut sa, o);
    }
    vec![sa, deployment, service]
}

/// JSON merge patch (RFC 7386): objects merge, `null` deletes, anything else replaces.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Applies the objects of every snapshot while `leader` is true.
pub async fn run(
    client: Client,
    settings: Settings,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    leader: watch::Receiver<bool>,
) {
    let desired = |snap: &Arc<Snapshot>| {
        objects(snap, &settings)
            .into_iter()
            .map(|obj| {
                let id = format!(
                    "{}/{}/{}",
                    obj["kind"].as_str().unwrap_or_default(),
                    obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                    obj["metadata"]["name"].as_str().unwrap_or_default()
                );
                (id, obj)
            })
            .collect()
    };
    let client = &client;
    crate::leader::reconcile(snapshots, leader, desired, |obj: Value| async move {
        apply(client, &obj).await.map_err(|e| e.to_string())
    })
    .await;
}

/// Server-side applies one object.
pub async fn apply(client: &Client, obj: &Value) -> kube::Result<()> {
    let (group, version) = obj["apiVersion"]
        .as_str()
        .unwrap_or("v1")
        .rsplit_once('/')
        .map_or(
            ("", obj["apiVersion"].as_str().unwrap_or("v1")),
            |(g, v)| (g, v),
        );
    let kind = obj["kind"].as_str().unwrap_or_default();
    let plural = match kind {
        "ServiceAccount" => "serviceaccounts",
        "Deployment" => "deployments",
        _ => "services",
    };
    let ar = ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: obj["apiVersion"].as_str().unwrap_or("v1").into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or("default");
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
    api.patch(
        name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await?;
    Ok(())
}
