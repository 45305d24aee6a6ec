//! Statuses the translator computes: Kubernetes-shaped conditions for GatewayClasses,
//! Gateways (with listener statuses) and routes (per parent). `lastTransitionTime` is left
//! to the status writer, so translation stays a pure function of the snapshot.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};

/// One object's computed `.status`.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
    /// Shared: a route unchanged since the last translation reuses its status as is.
    pub status: Arc<Value>,
}

/// A JSON object of `fields`, moved in. (`json!` copies every interpolated `Value` deeply;
/// statuses that nest conditions are built with this instead.)
pub fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::Object(
        fields
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// A condition; `ok` maps to `"True"` / `"False"`.
pub fn condition(kind: &str, ok: bool, reason: &str, message: &str, generation: i64) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
    })
}
