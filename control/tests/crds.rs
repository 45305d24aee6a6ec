//! The CRD YAML in `charts/agora-crds/templates/` is generated from the Rust types; this
//! test fails when it is stale. Regenerate: `UPDATE_CRDS=1 cargo test -p agora-control --test crds`.

use agora_control::crd::{AgentgatewayBackend, AgentgatewayParameters, AgentgatewayPolicy};
use kube::CustomResourceExt;

#[test]
fn crd_yaml_is_current() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/agora-crds/templates");
    let crds = [
        AgentgatewayBackend::crd(),
        AgentgatewayPolicy::crd(),
        AgentgatewayParameters::crd(),
    ];
    let mut stale = Vec::new();
    for crd in crds {
        let name = crd.metadata.name.clone().expect("CRDs are named");
        let yaml = format!(
            "# Generated from control/src/crd (cargo test -p agora-control --test crds). Do not edit.\n{}",
            serde_saphyr::to_string(&crd).expect("CRD serializes")
        );
        let path = dir.join(format!("{name}.yaml"));
        if std::env::var_os("UPDATE_CRDS").is_some() {
            std::fs::write(&path, &yaml).expect("write CRD");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(yaml.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale CRD YAML (run UPDATE_CRDS=1 cargo test -p agora-control --test crds): {stale:?}"
    );
}

/// Every generated CRD is structural enough for the API server: each version has a schema
/// whose root is an object, and the examples' objects parse with the same types.
#[test]
fn crds_have_schemas() {
    for crd in [
        AgentgatewayBackend::crd(),
        AgentgatewayPolicy::crd(),
        AgentgatewayParameters::crd(),
    ] {
        assert_eq!(crd.spec.group, "agentgateway.dev");
        for v in &crd.spec.versions {
            let schema = v
                .schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .expect("a schema");
            assert_eq!(schema.type_.as_deref(), Some("object"));
            assert!(v.subresources.is_some() || crd.spec.names.kind == "AgentgatewayParameters");
        }
    }
}
