//! TCPRoutes and TLSRoutes of any served version, read into the types the translator uses.
//!
//! TCPRoute: the `gateway-api` crate's `v1alpha2` shape (`v1` has the same fields). TLSRoute:
//! the crate's `v1` shape; `v1alpha2` / `v1alpha3` objects may omit `hostnames`, which `v1`
//! requires, and read as having none. A rule without `backendRefs` reads as having none (its
//! connections are refused).

use gateway_api::experimental::{tcproutes::TcpRoute, tlsroutes::TlsRoute};
use serde_json::{Value, json};

/// Versions of each kind a watcher looks for, the preferred first.
pub(crate) const TCP_ROUTE_VERSIONS: &[&str] = &["v1", "v1alpha2"];
pub(crate) const TLS_ROUTE_VERSIONS: &[&str] = &["v1", "v1alpha3", "v1alpha2"];

/// A TCPRoute from its JSON (a manifest document or a watched object).
pub(crate) fn tcp_route(doc: Value) -> Result<TcpRoute, String> {
    super::manifests::parse(defaults(doc, false))
}

/// A TLSRoute from its JSON (a manifest document or a watched object).
pub(crate) fn tls_route(doc: Value) -> Result<TlsRoute, String> {
    super::manifests::parse(defaults(doc, true))
}

fn defaults(mut doc: Value, hostnames: bool) -> Value {
    let Some(spec) = doc.get_mut("spec").and_then(Value::as_object_mut) else {
        return doc;
    };
    if hostnames {
        spec.entry("hostnames").or_insert_with(|| json!([]));
    }
    if let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut) {
        for r in rules.iter_mut().filter_map(Value::as_object_mut) {
            r.entry("backendRefs").or_insert_with(|| json!([]));
        }
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_versions_read_as_the_current_shape() {
        let tls = tls_route(json!({
            "apiVersion": "gateway.networking.k8s.io/v1alpha2",
            "kind": "TLSRoute",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"rules": [{"backendRefs": [{"name": "s", "port": 443}]}]},
        }))
        .expect("v1alpha2 TLSRoute without hostnames");
        assert!(tls.spec.hostnames.is_empty());
        assert_eq!(tls.spec.rules[0].backend_refs[0].name, "s");
        let tcp = tcp_route(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "TCPRoute",
            "metadata": {"name": "r"},
            "spec": {"rules": [{}]},
        }))
        .expect("v1 TCPRoute");
        assert!(tcp.spec.rules[0].backend_refs.is_empty());
        assert!(
            tls_route(json!({"kind": "TLSRoute", "metadata": {"name": "r"}, "spec": {}})).is_err()
        );
    }
}
