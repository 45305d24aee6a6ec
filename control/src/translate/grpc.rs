//! GRPCRoutes ride the HTTPRoute pipeline: a GRPCRoute is rewritten into the HTTPRoute it is
//! equivalent to (parentRefs, hostnames, backendRefs and filters have the same shape), its
//! method matches becoming path matches on `/{service}/{method}`; its backends speak HTTP/2.

use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use serde_json::{Value, json};

/// The HTTPRoute a GRPCRoute means.
pub(super) fn as_http(r: &GrpcRoute) -> Result<HttpRoute, String> {
    let mut v = serde_json::to_value(r).map_err(|e| e.to_string())?;
    if let Some(rules) = v.pointer_mut("/spec/rules").and_then(Value::as_array_mut) {
        for (i, rule) in rules.iter_mut().enumerate() {
            let Some(matches) = rule.get_mut("matches").and_then(Value::as_array_mut) else {
                continue;
            };
            for m in matches.iter_mut() {
                let method = m.get("method").cloned();
                let obj = m.as_object_mut().ok_or("a match must be an object")?;
                obj.remove("method");
                if let Some(method) = method {
                    obj.insert(
                        "path".into(),
                        path(&method).map_err(|e| format!("rules[{i}].matches.method: {e}"))?,
                    );
                }
                // gRPC requests are POSTs.
                obj.insert("method".into(), json!("POST"));
            }
        }
    }
    v["kind"] = json!("HTTPRoute");
    serde_json::from_value(v).map_err(|e| e.to_string())
}

fn path(m: &Value) -> Result<Value, String> {
    let service = m["service"].as_str().filter(|s| !s.is_empty());
    let method = m["method"].as_str().filter(|s| !s.is_empty());
    let regex = m["type"].as_str() == Some("RegularExpression");
    Ok(match (regex, service, method) {
        (_, None, None) => return Err("set service, method or both".into()),
        (false, Some(s), Some(me)) => json!({"type": "Exact", "value": format!("/{s}/{me}")}),
        (false, Some(s), None) => json!({"type": "PathPrefix", "value": format!("/{s}")}),
        (false, None, Some(me)) => json!({
            "type": "RegularExpression",
            "value": format!("/[^/]+/{}", regex::escape(me)),
        }),
        (true, s, me) => json!({
            "type": "RegularExpression",
            "value": format!("/{}/{}", s.unwrap_or("[^/]+"), me.unwrap_or("[^/]+")),
        }),
    })
}
