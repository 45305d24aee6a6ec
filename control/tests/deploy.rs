//! The deployer's objects for a Gateway shaped by AgentgatewayParameters (golden), and the
//! checks a cluster would make: ports from listeners, owner reference, overlays applied.

use agora_control::deploy::{Settings, objects};
use agora_control::source::manifests::{Loaded, load_str};

const INPUT: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: agora}
spec: {controllerName: agora.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: edge, namespace: prod, uid: 4b1f0c9e-0000-4000-8000-000000000001}
spec:
  gatewayClassName: agora
  infrastructure:
    parametersRef: {group: agentgateway.dev, kind: AgentgatewayParameters, name: big}
  listeners:
  - {name: http, port: 80, protocol: HTTP}
  - {name: https, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: cert}]}}
  - {name: https-b, port: 443, protocol: HTTPS, hostname: b.example.com, tls: {certificateRefs: [{name: cert}]}}
---
apiVersion: agentgateway.dev/v1alpha1
kind: AgentgatewayParameters
metadata: {name: big, namespace: prod}
spec:
  image: {registry: registry.example.com, tag: v9}
  logging: {level: debug}
  resources: {requests: {cpu: "2", memory: 1Gi}}
  env: [{name: EXTRA, value: "1"}]
  deployment: {spec: {replicas: 3}}
  service: {spec: {type: ClusterIP}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: other, namespace: prod}
spec:
  gatewayClassName: not-ours
  listeners: [{name: http, port: 80, protocol: HTTP}]
"#;

#[test]
fn objects_for_a_gateway_with_parameters() {
    let mut loaded = Loaded::default();
    load_str(std::path::Path::new("in.yaml"), INPUT, &mut loaded);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let settings = Settings {
        image: "ghcr.io/agora-gateway/agora-proxy:0.1.0".into(),
        xds_url: "http://agora-controller.agora-system.svc:15010".into(),
    };
    let objs = objects(&loaded.snapshot, &settings);
    let kinds: Vec<&str> = objs
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["ServiceAccount", "Deployment", "Service"],
        "only our Gateway"
    );
    let (deploy, svc) = (&objs[1], &objs[2]);
    for o in &objs {
        assert_eq!(
            o["metadata"]["ownerReferences"][0]["uid"],
            "4b1f0c9e-0000-4000-8000-000000000001"
        );
        assert_eq!(o["metadata"]["namespace"], "prod");
    }
    let ports: Vec<i64> = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["port"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(ports, [80, 443]);
    assert_eq!(svc["spec"]["type"], "ClusterIP", "service overlay");
    assert_eq!(deploy["spec"]["replicas"], 3, "deployment overlay");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["image"],
        "registry.example.com/agora-gateway/agora-proxy:v9"
    );
    assert_eq!(c["args"][3], "prod/edge");
    insta::assert_yaml_snapshot!(objs);
}
