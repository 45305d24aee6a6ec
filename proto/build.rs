//! Compiles the resource model with protox (no system `protoc`) and prost.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["proto/agora/resource/v1/resource.proto"];
    let fds = protox::compile(files, ["proto"])?;
    let mut config = prost_build::Config::new();
    config
        // Ordered maps: the encoding (and the xDS content-hash version) is deterministic.
        .btree_map(["."])
        .type_attribute(".agora", "#[derive(serde::Serialize)]")
        .type_attribute(".agora", "#[serde(rename_all = \"camelCase\")]")
        .field_attribute(
            "agora.resource.v1.TlsCertificate.key_pem",
            "#[serde(serialize_with = \"crate::redact\")]",
        )
        .field_attribute(
            "agora.resource.v1.UpstreamTls.client_key_pem",
            "#[serde(serialize_with = \"crate::redact\")]",
        )
        .field_attribute(
            "agora.resource.v1.BackendAuth.kind.key",
            "#[serde(serialize_with = \"crate::redact_str\")]",
        )
        .field_attribute(
            "agora.resource.v1.ApiKey.key",
            "#[serde(serialize_with = \"crate::redact_str\")]",
        )
        .field_attribute(
            "agora.resource.v1.BasicAuthentication.htpasswd",
            "#[serde(serialize_with = \"crate::redact_strs\")]",
        )
        .field_attribute(
            "agora.resource.v1.AwsCredentials.secret_access_key",
            "#[serde(serialize_with = \"crate::redact_str\")]",
        )
        .field_attribute(
            "agora.resource.v1.GcpAuth.service_account_key",
            "#[serde(serialize_with = \"crate::redact_str\")]",
        )
        .field_attribute(
            "agora.resource.v1.AwsCredentials.session_token",
            "#[serde(serialize_with = \"crate::redact_str\")]",
        )
        .extern_path(".google.protobuf.Duration", "crate::Duration");
    config.compile_fds(fds)?;

    // The delta-xDS envelope and its gRPC service (client for the proxy, server for the
    // controller). Resources inside it are `agora.resource.v1.Resource` messages in an `Any`.
    if std::env::var_os("CARGO_FEATURE_XDS").is_some() {
        let xds = protox::compile(["proto/agora/xds/v1/xds.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(xds)?;
        // Envoy's external authorization API, for the `extAuth` policy's gRPC client.
        let authz = protox::compile(
            ["proto/envoy/service/auth/v3/external_auth.proto"],
            ["proto"],
        )?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            .compile_fds(authz)?;
        // Envoy's external processing API, for InferencePool endpoint pickers (the client;
        // the server side serves tests).
        let ext_proc = protox::compile(
            ["proto/envoy/service/ext_proc/v3/external_processor.proto"],
            ["proto"],
        )?;
        tonic_prost_build::configure()
            .build_client(true)
            .build_server(true)
            // Request bodies go out as `Bytes` slices of the buffered body (no copies).
            .bytes(".envoy.service.ext_proc.v3")
            .compile_fds(ext_proc)?;
    }
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
